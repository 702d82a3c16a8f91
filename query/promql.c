/*
 * promql.c - PromQL parser: a recursive-descent / precedence-climbing parser that
 * accepts the language of Prometheus 2.42's yacc grammar (generated_parser.y) and
 * then type-checks the tree the way its checkAST does.
 *
 * How the yacc precedences map onto this parser:
 *   or < and,unless < comparisons < + - < * / % atan2 < ^ (right-assoc)
 *   unary +/- binds like '*' and its operand may contain only '^' operators, so
 *   "-1 ^ 2" is -(1 ^ 2) and "-a * b" is (-a) * b; a unary sign on a number
 *   literal folds into the literal (Prometheus does the same);
 *   "[range]", "[range:step]", "offset" and "@" are postfix and bind tightest, to
 *   the closest operand ("a + b offset 1m" offsets b), chained left to right.
 * Two phases, as in Prometheus: parsing stops at the first syntax error or at the
 * first error Prometheus raises while reducing (unknown function, bad duration,
 * range on a non-selector, repeated offset, ...); only a tree without such errors
 * is type-checked, and checking stops at the first error in Prometheus' order.
 *
 * Ownership: every parse_* function returns an owned node or NULL with p->rc set;
 * on failure it frees whatever it built. Regular expressions are compiled with
 * PCRE2 (using ts_malloc through a general context, so allocation failures are
 * seen) only to validate them and to learn whether they match the empty string;
 * constructs Go's RE2 syntax lacks are refused like Prometheus refuses them.
 *
 * Invariants: p->rc != 0 means an error is recorded and nothing more is parsed;
 * recursion depth <= TS_PROMQL_MAX_DEPTH; tree height <= MAX_HEIGHT.
 */
#include "query/promql.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "query/promql_lex.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

/* Bounds the recursion of every tree walk (print, equal, free, evaluation). */
#define MAX_HEIGHT 2000

struct parser {
	struct ts_promql_lexer lx;
	struct ts_promql_token tok; /* the lookahead */
	const char *q;
	size_t len;
	struct ts_promql_error *err;
	int rc;
	int depth;
	int agg_depth; /* open aggregation argument lists: "... in aggregation" */
	pcre2_general_context *gctx;
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
	bool re_oom;
};

static void fail(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, size_t pos, const char *fmt, ...)
{
	va_list ap;
	if (p->rc)
		return;
	p->rc = TS_EINVALID;
	p->err->pos = (int)pos;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
}

static void nomem(struct parser *p)
{
	if (p->rc == TS_EINVALID)
		return;
	p->rc = -ENOMEM;
	p->err->pos = 0;
	snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
}

static void advance(struct parser *p)
{
	ts_promql_lex_next(&p->lx, &p->tok);
	if (p->tok.type == TS_TOK_ERROR)
		fail(p, p->lx.err_pos, "%s", p->lx.err);
}

static const char *tok_text(const struct parser *p)
{
	return p->q + p->tok.pos;
}
static int tok_len(const struct parser *p)
{
	return (int)p->tok.len;
}

/* Go's %q of text[0..n), cut to `max_runes` runes ("%.10q") when max_runes > 0. */
static void go_quote(char *buf, size_t cap, const char *s, size_t n, int max_runes)
{
	size_t o = 0;
	int runes = 0;
	buf[o++] = '"';
	for (size_t i = 0; i < n && o + 12 < cap;) {
		size_t w;
		int r = ts_promql_utf8_decode((const unsigned char *)s + i, n - i, &w);
		if (max_runes > 0 && runes++ == max_runes)
			break;
		const char *e = r == '\a'   ? "\\a"
				: r == '\b' ? "\\b"
				: r == '\f' ? "\\f"
				: r == '\n' ? "\\n"
				: r == '\r' ? "\\r"
				: r == '\t' ? "\\t"
				: r == '\v' ? "\\v"
					    : NULL;
		if (e) {
			memcpy(buf + o, e, 2);
			o += 2;
		} else if (r == '"' || r == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)r;
		} else if (r < 0x20 || r == 0x7F || (r == 0xFFFD && w == 1)) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", (unsigned char)s[i]);
		} else if (!ts_promql_rune_printable(r) && r != 0xFFFD) {
			o += (size_t)snprintf(buf + o, cap - o, r < 0x10000 ? "\\u%04x" : "\\U%08x",
					      (unsigned)r);
		} else {
			memcpy(buf + o, s + i, w);
			o += w;
		}
		i += w;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* Prometheus' Item.desc() of the lookahead, e.g. `identifier "x"`, `<op:+>`. */
static void tok_desc(const struct parser *p, char *buf, size_t cap)
{
	enum ts_promql_tok t = p->tok.type;
	char q[100];
	const char *kind = NULL;
	switch (t) {
	case TS_TOK_EOF: snprintf(buf, cap, "end of input"); return;
	case TS_TOK_IDENT: kind = "identifier"; break;
	case TS_TOK_METRIC_IDENT: kind = "metric identifier"; break;
	case TS_TOK_NUMBER: kind = "number"; break;
	case TS_TOK_STRING: kind = "string"; break;
	case TS_TOK_DURATION: kind = "duration"; break;
	default: break;
	}
	if (kind) {
		bool longer = t != TS_TOK_IDENT && t != TS_TOK_METRIC_IDENT && p->tok.len > 10;
		go_quote(q, sizeof(q), tok_text(p), p->tok.len, longer ? 10 : 0);
		snprintf(buf, cap, "%s %s%s", kind, q, longer ? "..." : "");
	} else if (TS_TOK_IS_KEYWORD(t)) {
		snprintf(buf, cap, "<%.*s>", tok_len(p), tok_text(p));
	} else if (TS_TOK_IS_AGGREGATOR(t)) {
		snprintf(buf, cap, "<aggr:%.*s>", tok_len(p), tok_text(p));
	} else if (TS_TOK_IS_OPERATOR(t) && t != TS_TOK_AT) {
		snprintf(buf, cap, "<op:%.*s>", tok_len(p), tok_text(p));
	} else {
		go_quote(q, sizeof(q), tok_text(p), p->tok.len, 0);
		snprintf(buf, cap, "%s", q);
	}
}

/* "unexpected <lookahead>[ in <ctx>][, expected <exp>]". A lexing error has been
 * reported already and is not reported twice. */
static void unexpected(struct parser *p, const char *ctx, const char *exp)
{
	char d[256];
	if (p->tok.type == TS_TOK_ERROR || p->rc)
		return;
	if (!ctx && p->agg_depth > 0)
		ctx = "aggregation";
	tok_desc(p, d, sizeof(d));
	fail(p, p->tok.pos, "unexpected %s%s%s%s%s", d, ctx ? " in " : "", ctx ? ctx : "",
	     exp ? ", expected " : "", exp ? exp : "");
}

/* Node heights bound every recursive walk of the tree. */
static bool set_height(struct parser *p, struct ts_ast *n, const struct ts_ast *child)
{
	if (child && child->height + 1 > n->height)
		n->height = child->height + 1;
	if (n->height > MAX_HEIGHT) {
		fail(p, (size_t)n->pos, "expression nested too deeply");
		return false;
	}
	return true;
}

static struct ts_ast *new_node(struct parser *p, enum ts_ast_kind kind, size_t pos)
{
	struct ts_ast *n = ts_ast_new(kind, (int)pos);
	if (!n)
		nomem(p);
	return n;
}

/* ---- literals ---- */

/* Prometheus' number(): strconv.ParseInt(s, 0, 64) (so "010" is octal 8 and
 * "0x1f" hex), else strconv.ParseFloat(s, 64). 0 or -1 with an error recorded. */
static int number_value(struct parser *p, const char *s, size_t n, size_t pos, double *out)
{
	char *buf = ts_strndup(s, n);
	const char *why = "invalid syntax";
	int rc = -1;
	if (!buf) {
		nomem(p);
		return -1;
	}
	if (strcasecmp(buf, "inf") == 0) {
		*out = INFINITY;
		rc = 0;
	} else if (strcasecmp(buf, "nan") == 0) {
		*out = NAN;
		rc = 0;
	} else if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		/* Hex parses only as an integer: Go's ParseFloat wants a 'p' exponent. */
		uint64_t v = 0;
		size_t i;
		for (i = 2; i < n; i++) {
			int c = buf[i], d;
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				break;
			if (v > (uint64_t)INT64_MAX >> 4)
				break;
			v = v * 16 + (uint64_t)d;
			if (v > (uint64_t)INT64_MAX)
				break;
		}
		if (i == n) {
			*out = (double)v;
			rc = 0;
		}
	} else {
		bool octal = n > 1 && buf[0] == '0';
		uint64_t v = 0;
		for (size_t i = 1; octal && i < n; i++) {
			if (buf[i] < '0' || buf[i] > '7' || v > (uint64_t)INT64_MAX >> 3)
				octal = false;
			else
				v = v * 8 + (uint64_t)(buf[i] - '0');
		}
		if (octal && v <= (uint64_t)INT64_MAX) {
			*out = (double)v;
			rc = 0;
		} else {
			char *end;
			double d = strtod(buf, &end);
			if (end == buf + n && n > 0) {
				if (isinf(d)) {
					why = "value out of range";
				} else {
					*out = d;
					rc = 0;
				}
			}
		}
	}
	if (rc)
		fail(p, pos, "error parsing number: strconv.ParseFloat: parsing \"%s\": %s", buf,
		     why);
	ts_free(buf);
	return rc;
}

/* Prometheus' parseDuration (model.ParseDuration, then "> 0"): units y w d h m s
 * ms, each at most once and in that order; the total must fit time.Duration. */
static int duration_value(struct parser *p, const struct ts_promql_token *t, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "y", 365LL * 86400000 },
		{ "w", 7LL * 86400000 },
		{ "d", 86400000 },
		{ "h", 3600000 },
		{ "m", 60000 },
		{ "s", 1000 },
		{ "ms", 1 },
	};
	const char *s = p->q + t->pos;
	size_t n = t->len, i = 0, next_unit = 0;
	int64_t total_ns = 0;
	bool overflow = false;
	char q[200];
	while (i < n) {
		uint64_t v = 0;
		size_t d0 = i;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (v < (uint64_t)INT64_MAX / 10)
				v = v * 10 + (uint64_t)(s[i] - '0');
			else
				v = (uint64_t)INT64_MAX; /* saturate: reported as out of range */
			i++;
		}
		size_t u;
		for (u = next_unit; u < 7 && i > d0; u++) {
			size_t ul = strlen(units[u].unit);
			/* "m" must not take the "m" of "ms" */
			if (i + ul <= n && memcmp(s + i, units[u].unit, ul) == 0 &&
			    !(ul == 1 && s[i] == 'm' && i + 1 < n && s[i + 1] == 's'))
				break;
		}
		if (i == d0 || u == 7) {
			go_quote(q, sizeof(q), s, n, 0);
			fail(p, t->pos, "not a valid duration string: %s", q);
			return -1;
		}
		i += strlen(units[u].unit);
		next_unit = u + 1;
		int64_t mult_ns = units[u].ms * 1000000;
		if (v > (uint64_t)(INT64_MAX / mult_ns)) {
			overflow = true;
		} else {
			int64_t add = (int64_t)v * mult_ns;
			if (total_ns > INT64_MAX - add)
				overflow = true;
			else
				total_ns += add;
		}
	}
	if (overflow) {
		fail(p, t->pos, "duration out of range");
		return -1;
	}
	if (total_ns == 0) {
		fail(p, t->pos, "duration must be greater than 0");
		return -1;
	}
	*out_ms = total_ns / 1000000;
	return 0;
}

/* Unquotes a STRING token the lexer has validated (Go escape rules for "..." and
 * '...', raw for `...`). Owned result with *len_out bytes plus a NUL; NULL on OOM. */
static char *unquote(struct parser *p, const struct ts_promql_token *t, size_t *len_out)
{
	const char *s = p->q + t->pos + 1;
	size_t n = t->len - 2, o = 0;
	char quote = p->q[t->pos];
	char *out = ts_malloc(n + 1);
	if (!out) {
		nomem(p);
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		if (quote == '`' || s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		char c = s[i + 1];
		i += 2;
		switch (c) {
		case 'a': out[o++] = '\a'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'v': out[o++] = '\v'; break;
		case 'x':
		case 'u':
		case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			unsigned v = 0;
			for (int k = 0; k < nd; k++, i++) {
				char h = s[i];
				v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
			}
			if (c == 'x') {
				out[o++] = (char)v;
			} else if (v < 0x80) {
				out[o++] = (char)v;
			} else if (v < 0x800) {
				out[o++] = (char)(0xC0 | (v >> 6));
				out[o++] = (char)(0x80 | (v & 0x3F));
			} else if (v < 0x10000) {
				out[o++] = (char)(0xE0 | (v >> 12));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
				out[o++] = (char)(0x80 | (v & 0x3F));
			} else {
				out[o++] = (char)(0xF0 | (v >> 18));
				out[o++] = (char)(0x80 | ((v >> 12) & 0x3F));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
				out[o++] = (char)(0x80 | (v & 0x3F));
			}
			break;
		}
		default:
			if (c >= '0' && c <= '7') {
				unsigned v = (unsigned)(c - '0');
				for (int k = 0; k < 2; k++, i++)
					v = v * 8 + (unsigned)(s[i] - '0');
				out[o++] = (char)v;
			} else {
				out[o++] = c; /* \\ \" \' */
			}
		}
	}
	out[o] = '\0';
	*len_out = o;
	return out;
}

/* ---- regular expressions ---- */

static void *re_malloc(size_t size, void *data)
{
	void *m = ts_malloc(size);
	if (!m)
		((struct parser *)data)->re_oom = true;
	return m;
}

static void re_free(void *ptr, void *data)
{
	(void)data;
	ts_free(ptr);
}

/* Does the '}' at v[i] end a {n}, {n,} or {n,m} repetition? */
static bool closes_repeat(const char *v, size_t i)
{
	size_t k = i;
	while (k > 0 && ((v[k - 1] >= '0' && v[k - 1] <= '9') || v[k - 1] == ','))
		k--;
	return k > 0 && v[k - 1] == '{' && k < i && v[k] >= '0' && v[k] <= '9';
}

/* Syntax PCRE2 accepts but Go's RE2 (and so Prometheus) refuses. Returns the Go
 * error text or NULL; `bad` receives the offending snippet. */
static const char *re2_unsupported(const char *v, size_t n, char *bad, size_t cap)
{
	static const char ok_escapes[] = "aftnrvxpPdDsSwWbBAz0";
	bool in_class = false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '\\' && i + 1 < n) {
			char d = v[i + 1];
			if (d == 'Q') { /* literal text up to \E */
				const char *e = NULL;
				for (size_t k = i + 2; k + 1 < n; k++)
					if (v[k] == '\\' && v[k + 1] == 'E') {
						e = v + k;
						break;
					}
				if (!e) {
					/* In Prometheus' "^(?:v)$" it quotes the ")$" too. */
					snprintf(bad, cap, "^(?:%.*s)$",
						 (int)(cap > 8 ? cap - 8 : 0), v);
					return "missing closing )";
				}
				i = (size_t)(e - v) + 1;
				continue;
			}
			bool alnum = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') ||
				     (d >= '0' && d <= '9');
			bool octal_follows = i + 2 < n && v[i + 2] >= '0' && v[i + 2] <= '7';
			if (alnum && !strchr(ok_escapes, d) &&
			    !(d >= '1' && d <= '7' && octal_follows)) {
				snprintf(bad, cap, "\\%c", d);
				return "invalid escape sequence";
			}
			i++;
			continue;
		}
		if (in_class) {
			if (c == '[' && i + 1 < n && v[i + 1] == ':') {
				const char *e = memchr(v + i + 2, ']', n - i - 2);
				if (e && e[-1] == ':')
					i = (size_t)(e - v);
			} else if (c == ']') {
				in_class = false;
			}
			continue;
		}
		if (c == '[') {
			in_class = true;
			if (i + 1 < n && v[i + 1] == '^')
				i++;
			if (i + 1 < n && v[i + 1] == ']')
				i++;
			continue;
		}
		if (c == '(' && i + 1 < n && (v[i + 1] == '?' || v[i + 1] == '*')) {
			if (v[i + 1] == '*') {
				snprintf(bad, cap, "*");
				return "missing argument to repetition operator";
			}
			size_t k = i + 2;
			if (k < n && v[k] == ':')
				continue;
			if (k + 1 < n && v[k] == 'P' && v[k + 1] == '<')
				continue;
			while (k < n && strchr("imsU-", v[k]) && v[k])
				k++;
			if (k < n && k > i + 2 && (v[k] == ')' || v[k] == ':'))
				continue;
			snprintf(bad, cap, "%.*s", (int)(k + 1 < n ? k + 1 - i : n - i), v + i);
			return "invalid or unsupported Perl syntax";
		}
		if ((c == '*' || c == '+' || c == '?' || (c == '}' && closes_repeat(v, i))) &&
		    i + 1 < n && v[i + 1] == '+') {
			snprintf(bad, cap, "%c+", c);
			return "invalid nested repetition operator";
		}
	}
	return NULL;
}

/* Validates a =~ / !~ value as Prometheus does (anchored "^(?:v)$") and tells
 * whether it matches "". 0, or -1 with an error recorded at `pos`. */
static int regex_check(struct parser *p, const char *v, size_t n, size_t pos, bool *empty)
{
	char bad[128];
	const char *why = re2_unsupported(v, n, bad, sizeof(bad));
	if (why) {
		fail(p, pos, "error parsing regexp: %s: `%s`", why, bad);
		return -1;
	}
	if (!p->gctx) {
		p->gctx = pcre2_general_context_create(re_malloc, re_free, p);
		if (p->gctx)
			p->cctx = pcre2_compile_context_create(p->gctx);
		if (p->cctx)
			p->mctx = pcre2_match_context_create(p->gctx);
		if (!p->mctx) {
			nomem(p);
			return -1;
		}
		pcre2_set_match_limit(p->mctx, 100000);
	}
	/* Prometheus compiles "^(?:v)$" and also parses v on its own, so "a)|(b"
	 * is refused; anchoring by flags compiles v alone with the same meaning. */
	int errcode;
	PCRE2_SIZE erroff;
	p->re_oom = false;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)(n ? v : ""), n,
				       PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
					       PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
				       &errcode, &erroff, p->cctx);
	if (!re) {
		if (p->re_oom) {
			nomem(p);
		} else {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(errcode, msg, sizeof(msg));
			fail(p, pos, "error parsing regexp: %s", (const char *)msg);
		}
		return -1;
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, p->gctx);
	if (!md) {
		pcre2_code_free(re);
		nomem(p);
		return -1;
	}
	int rc = pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, p->mctx);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	if (rc == PCRE2_ERROR_NOMEMORY || p->re_oom) {
		nomem(p);
		return -1;
	}
	*empty = rc >= 0;
	return 0;
}

/* ---- selectors ---- */

static int push_matcher(struct parser *p, struct ts_ast *vs, enum ts_match_type type,
			const char *name, size_t name_len, char *value, size_t value_len)
{
	struct ts_ast_matcher *m = ts_realloc(vs->vs.matchers,
					      (vs->vs.n_matchers + 1) * sizeof(*m));
	if (!m) {
		ts_free(value);
		nomem(p);
		return -1;
	}
	vs->vs.matchers = m;
	m += vs->vs.n_matchers;
	memset(m, 0, sizeof(*m));
	m->name = ts_strndup(name, name_len);
	if (!m->name) {
		ts_free(value);
		nomem(p);
		return -1;
	}
	m->type = type;
	m->value = value;
	m->value_len = value_len;
	vs->vs.n_matchers++;
	switch (type) {
	case TS_MATCH_EQ: m->matches_empty = value_len == 0; break;
	case TS_MATCH_NEQ: m->matches_empty = value_len != 0; break;
	default: break;
	}
	return 0;
}

/* label_matchers: '{' [matcher {',' matcher} [',']] '}'; the lookahead is '{'. */
static int parse_matchers(struct parser *p, struct ts_ast *vs)
{
	advance(p);
	if (p->tok.type == TS_TOK_RBRACE) {
		advance(p);
		return p->rc ? -1 : 0;
	}
	for (;;) {
		if (p->tok.type != TS_TOK_IDENT) {
			unexpected(p, "label matching", "identifier or \"}\"");
			return -1;
		}
		struct ts_promql_token name = p->tok;
		advance(p);
		enum ts_match_type type;
		switch (p->tok.type) {
		case TS_TOK_EQL: type = TS_MATCH_EQ; break;
		case TS_TOK_NEQ: type = TS_MATCH_NEQ; break;
		case TS_TOK_EQL_REGEX: type = TS_MATCH_RE; break;
		case TS_TOK_NEQ_REGEX: type = TS_MATCH_NRE; break;
		default: unexpected(p, "label matching", "label matching operator"); return -1;
		}
		advance(p);
		if (p->tok.type != TS_TOK_STRING) {
			unexpected(p, "label matching", "string");
			return -1;
		}
		/* Prometheus builds (and validates) the matcher before it reads on. */
		struct ts_promql_token value = p->tok;
		size_t vlen;
		char *v = unquote(p, &value, &vlen);
		if (!v)
			return -1;
		if (push_matcher(p, vs, type, p->q + name.pos, name.len, v, vlen))
			return -1;
		if (type == TS_MATCH_RE || type == TS_MATCH_NRE) {
			struct ts_ast_matcher *m = &vs->vs.matchers[vs->vs.n_matchers - 1];
			bool empty;
			if (regex_check(p, v, vlen, name.pos, &empty))
				return -1;
			m->matches_empty = type == TS_MATCH_RE ? empty : !empty;
		}
		advance(p);
		if (p->tok.type == TS_TOK_COMMA) {
			advance(p);
			if (p->tok.type == TS_TOK_RBRACE) {
				advance(p);
				break;
			}
			continue;
		}
		if (p->tok.type == TS_TOK_RBRACE) {
			advance(p);
			break;
		}
		unexpected(p, "label matching", "\",\" or \"}\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

/* A vector selector: `name` is the metric identifier token already consumed (or
 * NULL); the lookahead may be '{'. */
static struct ts_ast *parse_selector(struct parser *p, const struct ts_promql_token *name,
				     size_t pos)
{
	struct ts_ast *vs = new_node(p, TS_AST_VECTOR_SELECTOR, pos);
	if (!vs)
		return NULL;
	vs->type = TS_VT_VECTOR;
	if (p->tok.type == TS_TOK_LBRACE && parse_matchers(p, vs))
		goto err;
	if (name) {
		const char *s = p->q + name->pos;
		char *v;
		vs->vs.name = ts_strndup(s, name->len);
		v = ts_strndup(s, name->len);
		if (!vs->vs.name || !v) {
			ts_free(v);
			nomem(p);
			goto err;
		}
		if (push_matcher(p, vs, TS_MATCH_EQ, "__name__", 8, v, name->len))
			goto err;
	}
	return vs;
err:
	ts_ast_free(vs);
	return NULL;
}

/* ---- lists ---- */

static bool maybe_label(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_IDENT:
	case TS_TOK_METRIC_IDENT:
	case TS_TOK_BOOL:
	case TS_TOK_BY:
	case TS_TOK_GROUP_LEFT:
	case TS_TOK_GROUP_RIGHT:
	case TS_TOK_IGNORING:
	case TS_TOK_LAND:
	case TS_TOK_LOR:
	case TS_TOK_LUNLESS:
	case TS_TOK_OFFSET:
	case TS_TOK_ON:
	case TS_TOK_START:
	case TS_TOK_END:
	case TS_TOK_ATAN2: return true;
	default:
		/* WITHOUT is missing from Prometheus' maybe_label, so it is here too. */
		return TS_TOK_IS_AGGREGATOR(t);
	}
}

/* grouping_labels: '(' [label {',' label} [',']] ')'. Returns with the ')' still
 * the lookahead: Prometheus reduces what it closes before reading on, so callers
 * raise their errors first and then advance. */
static int parse_grouping(struct parser *p, struct ts_label_list *l)
{
	if (p->tok.type != TS_TOK_LPAREN) {
		unexpected(p, "grouping opts", "\"(\"");
		return -1;
	}
	advance(p);
	if (p->tok.type == TS_TOK_RPAREN)
		return p->rc ? -1 : 0;
	for (;;) {
		if (!maybe_label(p->tok.type) || p->tok.type == TS_TOK_METRIC_IDENT) {
			unexpected(p, "grouping opts", "label");
			return -1;
		}
		if (ts_label_list_push(l, tok_text(p), p->tok.len)) {
			nomem(p);
			return -1;
		}
		advance(p);
		if (p->tok.type == TS_TOK_COMMA) {
			advance(p);
			if (p->tok.type == TS_TOK_RPAREN)
				break;
			continue;
		}
		if (p->tok.type == TS_TOK_RPAREN)
			break;
		unexpected(p, "grouping opts", "\",\" or \")\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

/* Tokens that can begin an expression. */
static bool starts_expr(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_NUMBER:
	case TS_TOK_STRING:
	case TS_TOK_LPAREN:
	case TS_TOK_LBRACE:
	case TS_TOK_IDENT:
	case TS_TOK_METRIC_IDENT:
	case TS_TOK_ADD:
	case TS_TOK_SUB:
	case TS_TOK_BY:
	case TS_TOK_WITHOUT:
	case TS_TOK_LAND:
	case TS_TOK_LOR:
	case TS_TOK_LUNLESS:
	case TS_TOK_OFFSET:
	case TS_TOK_START:
	case TS_TOK_END: return true;
	default: return TS_TOK_IS_AGGREGATOR(t);
	}
}

static struct ts_ast *parse_expr(struct parser *p, int min_prec);

/* function_call_body: '(' [expr {',' expr}] ')'; the lookahead is '('. On success
 * *args is an owned array (possibly NULL when empty) and the ')' is still the
 * lookahead (see parse_grouping). */
static int parse_args(struct parser *p, struct ts_ast ***args, size_t *n_args)
{
	struct ts_ast **a = NULL;
	size_t n = 0;
	advance(p);
	if (p->tok.type == TS_TOK_RPAREN)
		goto out;
	for (;;) {
		struct ts_ast *e = parse_expr(p, 0);
		if (!e)
			goto out;
		struct ts_ast **na = ts_realloc(a, (n + 1) * sizeof(*na));
		if (!na) {
			ts_ast_free(e);
			nomem(p);
			goto out;
		}
		a = na;
		a[n++] = e;
		if (p->tok.type == TS_TOK_COMMA) {
			size_t comma = p->tok.pos;
			advance(p);
			/* Prometheus' grammar takes any comma not followed by an argument
			 * as a trailing one, as in "f(a,)" and "f(a,,b)". */
			if (!starts_expr(p->tok.type)) {
				fail(p, comma, "trailing commas not allowed in function call args");
				goto out;
			}
			continue;
		}
		if (p->tok.type == TS_TOK_RPAREN)
			break;
		unexpected(p, NULL, NULL);
		goto out;
	}
out:
	if (p->rc) {
		for (size_t i = 0; i < n; i++)
			ts_ast_free(a[i]);
		ts_free(a);
		return -1;
	}
	*args = a;
	*n_args = n;
	return 0;
}

static struct ts_ast *parse_call(struct parser *p, const struct ts_promql_token *name)
{
	struct ts_ast *n = new_node(p, TS_AST_CALL, name->pos);
	if (!n)
		return NULL;
	if (parse_args(p, &n->call.args, &n->call.n_args))
		goto err;
	n->call.func = ts_function_lookup(p->q + name->pos, name->len);
	if (!n->call.func) {
		char q[200];
		go_quote(q, sizeof(q), p->q + name->pos, name->len, 0);
		fail(p, name->pos, "unknown function with name %s", q);
		goto err;
	}
	advance(p);
	if (p->rc)
		goto err;
	n->type = n->call.func->return_type;
	for (size_t i = 0; i < n->call.n_args; i++)
		if (!set_height(p, n, n->call.args[i]))
			goto err;
	return n;
err:
	ts_ast_free(n);
	return NULL;
}

static enum ts_aggop aggop_of(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_SUM: return TS_AGG_SUM;
	case TS_TOK_AVG: return TS_AGG_AVG;
	case TS_TOK_MIN: return TS_AGG_MIN;
	case TS_TOK_MAX: return TS_AGG_MAX;
	case TS_TOK_COUNT: return TS_AGG_COUNT;
	case TS_TOK_GROUP: return TS_AGG_GROUP;
	case TS_TOK_STDDEV: return TS_AGG_STDDEV;
	case TS_TOK_STDVAR: return TS_AGG_STDVAR;
	case TS_TOK_TOPK: return TS_AGG_TOPK;
	case TS_TOK_BOTTOMK: return TS_AGG_BOTTOMK;
	case TS_TOK_QUANTILE: return TS_AGG_QUANTILE;
	default: return TS_AGG_COUNT_VALUES;
	}
}

static bool aggop_has_param(enum ts_aggop op)
{
	return op == TS_AGG_TOPK || op == TS_AGG_BOTTOMK || op == TS_AGG_QUANTILE ||
	       op == TS_AGG_COUNT_VALUES;
}

/* aggregate_expr; the aggregator token is consumed, the lookahead is '(', by or
 * without. */
static struct ts_ast *parse_aggregate(struct parser *p, const struct ts_promql_token *op)
{
	struct ts_ast **args = NULL;
	size_t n_args = 0;
	bool modifier = false;
	struct ts_ast *n = new_node(p, TS_AST_AGGREGATE, op->pos);
	if (!n)
		return NULL;
	n->type = TS_VT_VECTOR;
	n->aggregate.op = aggop_of(op->type);
	if (p->tok.type == TS_TOK_BY || p->tok.type == TS_TOK_WITHOUT) {
		n->aggregate.without = p->tok.type == TS_TOK_WITHOUT;
		modifier = true;
		advance(p);
		if (parse_grouping(p, &n->aggregate.grouping))
			goto err;
		advance(p);
		if (p->tok.type != TS_TOK_LPAREN) {
			unexpected(p, "aggregation", NULL);
			goto err;
		}
	}
	p->agg_depth++;
	int rc = parse_args(p, &args, &n_args);
	p->agg_depth--;
	if (rc)
		goto err;
	/* Whatever closes the aggregation is still the lookahead (see parse_grouping),
	 * except after "sum(x)", where a following by/without had to be looked for. */
	bool closing = true;
	if (!modifier) {
		advance(p);
		closing = p->tok.type == TS_TOK_BY || p->tok.type == TS_TOK_WITHOUT;
		if (closing) {
			n->aggregate.without = p->tok.type == TS_TOK_WITHOUT;
			advance(p);
			if (parse_grouping(p, &n->aggregate.grouping))
				goto err;
		}
	}
	if (n_args == 0) {
		fail(p, op->pos, "no arguments for aggregate expression provided");
		goto err;
	}
	size_t want = aggop_has_param(n->aggregate.op) ? 2 : 1;
	if (n_args != want) {
		fail(p, op->pos,
		     "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
		     want, n_args);
		goto err;
	}
	n->aggregate.expr = args[want - 1];
	n->aggregate.param = want == 2 ? args[0] : NULL;
	ts_free(args);
	args = NULL;
	n_args = 0;
	if (closing)
		advance(p);
	if (p->rc)
		goto err;
	if (!set_height(p, n, n->aggregate.expr) || !set_height(p, n, n->aggregate.param))
		goto err;
	return n;
err:
	for (size_t i = 0; i < n_args; i++)
		ts_ast_free(args[i]);
	ts_free(args);
	ts_ast_free(n);
	return NULL;
}

/* ---- primary and postfix ---- */

static struct ts_ast *parse_primary(struct parser *p)
{
	struct ts_promql_token t = p->tok;
	struct ts_ast *n, *e;
	switch (t.type) {
	case TS_TOK_NUMBER: {
		double v;
		if (number_value(p, p->q + t.pos, t.len, t.pos, &v))
			return NULL;
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_NUMBER, t.pos)))
			return NULL;
		n->type = TS_VT_SCALAR;
		n->number.value = v;
		return n;
	}
	case TS_TOK_STRING:
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_STRING, t.pos)))
			return NULL;
		n->type = TS_VT_STRING;
		n->string.value = unquote(p, &t, &n->string.len);
		if (!n->string.value) {
			ts_ast_free(n);
			return NULL;
		}
		return n;
	case TS_TOK_LPAREN:
		advance(p);
		if (!(e = parse_expr(p, 0)))
			return NULL;
		if (p->tok.type != TS_TOK_RPAREN) {
			unexpected(p, NULL, NULL);
			ts_ast_free(e);
			return NULL;
		}
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_PAREN, t.pos))) {
			ts_ast_free(e);
			return NULL;
		}
		n->type = e->type;
		n->paren.expr = e;
		if (!set_height(p, n, e)) {
			ts_ast_free(n);
			return NULL;
		}
		return n;
	case TS_TOK_LBRACE: return parse_selector(p, NULL, t.pos);
	case TS_TOK_IDENT:
		advance(p);
		if (p->tok.type == TS_TOK_LPAREN)
			return parse_call(p, &t);
		return p->rc ? NULL : parse_selector(p, &t, t.pos);
	case TS_TOK_METRIC_IDENT:
	case TS_TOK_BY:
	case TS_TOK_WITHOUT:
	case TS_TOK_LAND:
	case TS_TOK_LOR:
	case TS_TOK_LUNLESS:
	case TS_TOK_OFFSET:
	case TS_TOK_START:
	case TS_TOK_END: advance(p); return p->rc ? NULL : parse_selector(p, &t, t.pos);
	default: break;
	}
	if (TS_TOK_IS_AGGREGATOR(t.type)) {
		advance(p);
		if (p->tok.type == TS_TOK_LPAREN || p->tok.type == TS_TOK_BY ||
		    p->tok.type == TS_TOK_WITHOUT)
			return parse_aggregate(p, &t);
		/* Not followed by '(', by or without: a metric called "sum". */
		return p->rc ? NULL : parse_selector(p, &t, t.pos);
	}
	unexpected(p, NULL, NULL);
	return NULL;
}

/* '[' DURATION (']' | ':' [DURATION] ']'); the lookahead is '['. Consumes e. */
static struct ts_ast *parse_range(struct parser *p, struct ts_ast *e)
{
	size_t lbracket = p->tok.pos;
	int64_t range_ms, step_ms = 0;
	struct ts_ast *n = NULL;
	advance(p);
	if (p->tok.type != TS_TOK_DURATION) {
		unexpected(p, "subquery selector", "duration");
		goto err;
	}
	if (duration_value(p, &p->tok, &range_ms))
		goto err;
	advance(p);
	if (p->tok.type == TS_TOK_RBRACKET) {
		if (e->kind != TS_AST_VECTOR_SELECTOR) {
			fail(p, lbracket, "ranges only allowed for vector selectors");
			goto err;
		}
		if (e->vs.offset_ms) {
			fail(p, lbracket, "no offset modifiers allowed before range");
			goto err;
		}
		if (e->vs.at) {
			fail(p, lbracket, "no @ modifiers allowed before range");
			goto err;
		}
		if (!(n = new_node(p, TS_AST_MATRIX_SELECTOR, (size_t)e->pos)))
			goto err;
		n->type = TS_VT_MATRIX;
		n->matrix.vs = e;
		n->matrix.range_ms = range_ms;
		advance(p);
		if (p->rc || !set_height(p, n, e))
			goto err_n;
		return n;
	}
	if (p->tok.type != TS_TOK_COLON) {
		unexpected(p, "subquery or range", "\":\" or \"]\"");
		goto err;
	}
	advance(p);
	if (p->tok.type == TS_TOK_DURATION) {
		if (duration_value(p, &p->tok, &step_ms))
			goto err;
		advance(p);
		if (p->tok.type != TS_TOK_RBRACKET) {
			unexpected(p, "subquery selector", "\"]\"");
			goto err;
		}
	} else if (p->tok.type != TS_TOK_RBRACKET) {
		unexpected(p, "subquery selector", "duration or \"]\"");
		goto err;
	}
	advance(p);
	if (p->rc || !(n = new_node(p, TS_AST_SUBQUERY, (size_t)e->pos)))
		goto err;
	n->type = TS_VT_MATRIX;
	n->subquery.expr = e;
	n->subquery.range_ms = range_ms;
	n->subquery.step_ms = step_ms;
	if (!set_height(p, n, e))
		goto err_n;
	return n;
err_n:
	ts_ast_free(n);
	return NULL;
err:
	ts_ast_free(e);
	return NULL;
}

/* Where the offset/@ of e lives; NULL (error recorded) when e cannot take one. */
static int64_t *offset_slot(struct parser *p, struct ts_ast *e)
{
	switch (e->kind) {
	case TS_AST_VECTOR_SELECTOR: return &e->vs.offset_ms;
	case TS_AST_MATRIX_SELECTOR: return &e->matrix.vs->vs.offset_ms;
	case TS_AST_SUBQUERY: return &e->subquery.offset_ms;
	default:
		fail(p, (size_t)e->pos,
		     "offset modifier must be preceded by an instant vector "
		     "selector or range vector selector or a subquery");
		return NULL;
	}
}

static bool at_slot(struct parser *p, struct ts_ast *e, enum ts_at **at, int64_t **at_ms)
{
	switch (e->kind) {
	case TS_AST_VECTOR_SELECTOR: *at = &e->vs.at, *at_ms = &e->vs.at_ms; break;
	case TS_AST_MATRIX_SELECTOR:
		*at = &e->matrix.vs->vs.at, *at_ms = &e->matrix.vs->vs.at_ms;
		break;
	case TS_AST_SUBQUERY: *at = &e->subquery.at, *at_ms = &e->subquery.at_ms; break;
	default:
		fail(p, (size_t)e->pos,
		     "@ modifier must be preceded by an instant vector selector "
		     "or range vector selector or a subquery");
		return false;
	}
	if (**at) {
		fail(p, (size_t)e->pos, "@ <timestamp> may not be set multiple times");
		return false;
	}
	return true;
}

/* Milliseconds of an @ number literal. Prometheus computes round(seconds * 1000) in
 * float64; a plain decimal with at most 3 decimals is converted exactly instead,
 * which gives the same result wherever float64 is exact and lets the printer's
 * "S.mmm" form round-trip for every int64. */
static int64_t at_millis(const char *s, size_t n, bool neg, double ts)
{
	size_t i = 0, dot = n;
	uint64_t v = 0;
	bool exact = n > 0 && !(n > 1 && s[0] == '0' && s[1] != '.');
	for (i = 0; exact && i < n; i++) {
		if (s[i] == '.' && dot == n) {
			dot = i;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				exact = false;
			else
				v = v * 10 + (uint64_t)(s[i] - '0');
		} else {
			exact = false;
		}
	}
	size_t frac = dot == n ? 0 : n - dot - 1;
	if (exact && frac <= 3 && dot > 0) {
		for (; frac < 3 && exact; frac++) {
			if (v > UINT64_MAX / 10)
				exact = false;
			v *= 10;
		}
		if (exact && v <= (uint64_t)INT64_MAX)
			return neg ? -(int64_t)v : (int64_t)v;
		if (exact && neg && v == (uint64_t)INT64_MAX + 1)
			return INT64_MIN;
	}
	double ms = round(ts * 1000);
	/* Go's int64() of an out-of-range float yields MinInt64 on amd64. */
	if (!(ms >= -9223372036854775808.0 && ms < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)ms;
}

static int parse_at(struct parser *p, struct ts_ast *e)
{
	enum ts_at *at;
	int64_t *at_ms;
	advance(p);
	if (p->tok.type == TS_TOK_START || p->tok.type == TS_TOK_END) {
		enum ts_at which = p->tok.type == TS_TOK_START ? TS_AT_START : TS_AT_END;
		advance(p);
		if (p->tok.type != TS_TOK_LPAREN) {
			unexpected(p, "@", "timestamp");
			return -1;
		}
		advance(p);
		if (p->tok.type != TS_TOK_RPAREN) {
			unexpected(p, "@", "timestamp");
			return -1;
		}
		if (!at_slot(p, e, &at, &at_ms))
			return -1;
		*at = which;
		advance(p);
		return p->rc ? -1 : 0;
	}
	bool neg = false;
	if (p->tok.type == TS_TOK_ADD || p->tok.type == TS_TOK_SUB) {
		neg = p->tok.type == TS_TOK_SUB;
		advance(p);
	}
	if (p->tok.type != TS_TOK_NUMBER) {
		unexpected(p, "@", "timestamp");
		return -1;
	}
	struct ts_promql_token num = p->tok;
	double ts;
	if (number_value(p, p->q + num.pos, num.len, num.pos, &ts))
		return -1;
	if (neg)
		ts = -ts;
	if (isnan(ts) || isinf(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0) {
		if (isnan(ts) || isinf(ts))
			fail(p, (size_t)e->pos, "timestamp out of bounds for @ modifier: %s",
			     isnan(ts) ? "NaN"
			     : ts > 0  ? "+Inf"
				       : "-Inf");
		else
			fail(p, (size_t)e->pos, "timestamp out of bounds for @ modifier: %f", ts);
		return -1;
	}
	if (!at_slot(p, e, &at, &at_ms))
		return -1;
	*at = TS_AT_TIMESTAMP;
	*at_ms = at_millis(p->q + num.pos, num.len, neg, ts);
	advance(p);
	return p->rc ? -1 : 0;
}

static int parse_offset(struct parser *p, struct ts_ast *e)
{
	bool neg = false;
	int64_t d;
	advance(p);
	if (p->tok.type == TS_TOK_SUB) {
		neg = true;
		advance(p);
	}
	if (p->tok.type != TS_TOK_DURATION) {
		unexpected(p, "offset", "duration");
		return -1;
	}
	if (duration_value(p, &p->tok, &d))
		return -1;
	int64_t *slot = offset_slot(p, e);
	if (!slot)
		return -1;
	if (*slot) {
		fail(p, (size_t)e->pos, "offset may not be set multiple times");
		return -1;
	}
	*slot = neg ? -d : d;
	advance(p);
	return p->rc ? -1 : 0;
}

static struct ts_ast *parse_postfix(struct parser *p)
{
	struct ts_ast *e = parse_primary(p);
	while (e) {
		if (p->tok.type == TS_TOK_LBRACKET) {
			e = parse_range(p, e);
		} else if (p->tok.type == TS_TOK_OFFSET || p->tok.type == TS_TOK_AT) {
			int rc = p->tok.type == TS_TOK_OFFSET ? parse_offset(p, e) : parse_at(p, e);
			if (rc) {
				ts_ast_free(e);
				return NULL;
			}
		} else {
			break;
		}
	}
	return e;
}

/* ---- operators ---- */

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

static int binop_of(enum ts_promql_tok t, enum ts_binop *op)
{
	switch (t) {
	case TS_TOK_LOR: *op = TS_OP_OR; return PREC_OR;
	case TS_TOK_LAND: *op = TS_OP_AND; return PREC_AND;
	case TS_TOK_LUNLESS: *op = TS_OP_UNLESS; return PREC_AND;
	case TS_TOK_EQLC: *op = TS_OP_EQLC; return PREC_CMP;
	case TS_TOK_NEQ: *op = TS_OP_NEQ; return PREC_CMP;
	case TS_TOK_GTR: *op = TS_OP_GTR; return PREC_CMP;
	case TS_TOK_LSS: *op = TS_OP_LSS; return PREC_CMP;
	case TS_TOK_GTE: *op = TS_OP_GTE; return PREC_CMP;
	case TS_TOK_LTE: *op = TS_OP_LTE; return PREC_CMP;
	case TS_TOK_ADD: *op = TS_OP_ADD; return PREC_ADD;
	case TS_TOK_SUB: *op = TS_OP_SUB; return PREC_ADD;
	case TS_TOK_MUL: *op = TS_OP_MUL; return PREC_MUL;
	case TS_TOK_DIV: *op = TS_OP_DIV; return PREC_MUL;
	case TS_TOK_MOD: *op = TS_OP_MOD; return PREC_MUL;
	case TS_TOK_ATAN2: *op = TS_OP_ATAN2; return PREC_MUL;
	case TS_TOK_POW: *op = TS_OP_POW; return PREC_POW;
	default: return 0;
	}
}

static struct ts_ast *parse_unary(struct parser *p)
{
	if (p->tok.type != TS_TOK_ADD && p->tok.type != TS_TOK_SUB)
		return parse_postfix(p);
	struct ts_promql_token t = p->tok;
	advance(p);
	/* The operand is everything that binds tighter than '*', i.e. '^' chains. */
	struct ts_ast *e = parse_expr(p, PREC_POW);
	if (!e)
		return NULL;
	if (e->kind == TS_AST_NUMBER) {
		if (t.type == TS_TOK_SUB)
			e->number.value = -e->number.value;
		e->pos = (int)t.pos;
		return e;
	}
	struct ts_ast *n = new_node(p, TS_AST_UNARY, t.pos);
	if (!n) {
		ts_ast_free(e);
		return NULL;
	}
	n->type = e->type;
	n->unary.op = t.type == TS_TOK_SUB ? TS_OP_SUB : TS_OP_ADD;
	n->unary.expr = e;
	if (!set_height(p, n, e)) {
		ts_ast_free(n);
		return NULL;
	}
	return n;
}

/* bool, on/ignoring (...), group_left/group_right [(...)] after an operator. */
static int parse_bin_modifiers(struct parser *p, struct ts_ast *n)
{
	struct ts_vector_matching *vm = &n->binary.matching;
	if (p->tok.type == TS_TOK_BOOL) {
		n->binary.return_bool = true;
		advance(p);
	}
	if (p->tok.type != TS_TOK_ON && p->tok.type != TS_TOK_IGNORING)
		return p->rc ? -1 : 0;
	vm->on = p->tok.type == TS_TOK_ON;
	advance(p);
	if (parse_grouping(p, &vm->labels))
		return -1;
	advance(p);
	if (p->tok.type != TS_TOK_GROUP_LEFT && p->tok.type != TS_TOK_GROUP_RIGHT)
		return p->rc ? -1 : 0;
	vm->card = p->tok.type == TS_TOK_GROUP_LEFT ? TS_CARD_MANY_TO_ONE : TS_CARD_ONE_TO_MANY;
	advance(p);
	if (p->tok.type == TS_TOK_LPAREN) {
		if (parse_grouping(p, &vm->include))
			return -1;
		advance(p);
	} else if (!starts_expr(p->tok.type)) {
		/* Prometheus' grammar tries a label list here first. */
		unexpected(p, "grouping opts", "\"(\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

static struct ts_ast *parse_expr(struct parser *p, int min_prec)
{
	struct ts_ast *lhs = NULL;
	if (++p->depth > TS_PROMQL_MAX_DEPTH) {
		fail(p, p->tok.pos, "expression nested too deeply");
		goto out;
	}
	lhs = parse_unary(p);
	while (lhs) {
		enum ts_binop op;
		int prec = binop_of(p->tok.type, &op);
		if (!prec || prec < min_prec)
			break;
		struct ts_ast *n = new_node(p, TS_AST_BINARY, (size_t)lhs->pos);
		if (!n) {
			ts_ast_free(lhs);
			lhs = NULL;
			break;
		}
		n->binary.op = op;
		n->binary.op_pos = (int)p->tok.pos;
		n->binary.lhs = lhs;
		lhs = n;
		advance(p);
		if (parse_bin_modifiers(p, n))
			goto fail;
		/* '^' is right-associative, everything else left. */
		n->binary.rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
		if (!n->binary.rhs)
			goto fail;
		bool scalars = n->binary.lhs->type == TS_VT_SCALAR &&
			       n->binary.rhs->type == TS_VT_SCALAR;
		n->type = scalars ? TS_VT_SCALAR : TS_VT_VECTOR;
		if (!set_height(p, n, n->binary.lhs) || !set_height(p, n, n->binary.rhs))
			goto fail;
	}
	goto out;
fail:
	ts_ast_free(lhs);
	lhs = NULL;
out:
	p->depth--;
	return lhs;
}

/* ---- type checking (Prometheus' checkAST, in its order) ---- */

static void check(struct parser *p, struct ts_ast *n);

static void expect_type(struct parser *p, struct ts_ast *n, enum ts_value_type want,
			const char *ctx)
{
	check(p, n);
	if (!p->rc && n->type != want)
		fail(p, (size_t)n->pos, "expected type %s in %s, got %s", ts_value_type_str(want),
		     ctx, ts_value_type_str(n->type));
}

/* Go's ValueType.String(), used by the subquery message. */
static const char *go_type_name(enum ts_value_type t)
{
	switch (t) {
	case TS_VT_SCALAR: return "scalar";
	case TS_VT_VECTOR: return "vector";
	case TS_VT_MATRIX: return "matrix";
	case TS_VT_STRING: return "string";
	default: return "none";
	}
}

static void check_binary(struct parser *p, struct ts_ast *n)
{
	struct ts_vector_matching *vm = &n->binary.matching;
	enum ts_binop op = n->binary.op;
	enum ts_value_type lt, rt;
	check(p, n->binary.lhs);
	check(p, n->binary.rhs);
	if (p->rc)
		return;
	lt = n->binary.lhs->type;
	rt = n->binary.rhs->type;
	if (n->binary.return_bool && !TS_OP_IS_COMPARISON(op)) {
		fail(p, (size_t)n->binary.op_pos,
		     "bool modifier can only be used on comparison operators");
		return;
	}
	if (TS_OP_IS_COMPARISON(op) && !n->binary.return_bool && lt == TS_VT_SCALAR &&
	    rt == TS_VT_SCALAR) {
		fail(p, (size_t)n->binary.op_pos,
		     "comparisons between scalars must use BOOL modifier");
		return;
	}
	if (TS_OP_IS_SET(op) && vm->card == TS_CARD_ONE_TO_ONE)
		vm->card = TS_CARD_MANY_TO_MANY;
	if (vm->on)
		for (size_t i = 0; i < vm->labels.n; i++)
			for (size_t j = 0; j < vm->include.n; j++)
				if (strcmp(vm->labels.names[i], vm->include.names[j]) == 0) {
					char q[200];
					go_quote(q, sizeof(q), vm->labels.names[i],
						 strlen(vm->labels.names[i]), 0);
					{
						fail(p, (size_t)n->binary.op_pos,
						     "label %s must not occur in ON and GROUP clause at once",
						     q);
						return;
					}
				}
	if (lt != TS_VT_SCALAR && lt != TS_VT_VECTOR) {
		fail(p, (size_t)n->binary.lhs->pos,
		     "binary expression must contain only scalar and instant vector types");
		return;
	}
	if (rt != TS_VT_SCALAR && rt != TS_VT_VECTOR) {
		fail(p, (size_t)n->binary.rhs->pos,
		     "binary expression must contain only scalar and instant vector types");
		return;
	}
	if (lt != TS_VT_VECTOR || rt != TS_VT_VECTOR) {
		if (vm->labels.n > 0) {
			fail(p, (size_t)n->pos,
			     "vector matching only allowed between instant vectors");
			return;
		}
		/* Prometheus drops the matching: it means nothing with a scalar. */
		ts_label_list_fini(&vm->labels);
		ts_label_list_fini(&vm->include);
		vm->on = false;
		vm->card = TS_CARD_ONE_TO_ONE;
	} else if (TS_OP_IS_SET(op) &&
		   (vm->card == TS_CARD_ONE_TO_MANY || vm->card == TS_CARD_MANY_TO_ONE)) {
		{
			fail(p, (size_t)n->pos, "no grouping allowed for \"%s\" operation",
			     ts_binop_str(op));
			return;
		}
	}
	if ((lt == TS_VT_SCALAR || rt == TS_VT_SCALAR) && TS_OP_IS_SET(op)) {
		fail(p, (size_t)n->pos,
		     "set operator \"%s\" not allowed in binary scalar expression",
		     ts_binop_str(op));
		return;
	}
}

static void check_call(struct parser *p, struct ts_ast *n)
{
	const struct ts_function *f = n->call.func;
	size_t na = n->call.n_args;
	char ctx[64];
	if (f->variadic == 0) {
		if ((size_t)f->n_args != na) {
			fail(p, (size_t)n->pos,
			     "expected %d argument(s) in call to \"%s\", got %zu", f->n_args,
			     f->name, na);
			return;
		}
	} else {
		size_t min = (size_t)f->n_args - 1;
		if (min > na) {
			fail(p, (size_t)n->pos,
			     "expected at least %zu argument(s) in call to \"%s\", got %zu", min,
			     f->name, na);
			return;
		}
		if (f->variadic > 0 && min + (size_t)f->variadic < na) {
			fail(p, (size_t)n->pos,
			     "expected at most %zu argument(s) in call to \"%s\", got %zu",
			     min + (size_t)f->variadic, f->name, na);
			return;
		}
	}
	snprintf(ctx, sizeof(ctx), "call to function \"%s\"", f->name);
	for (size_t i = 0; i < na && !p->rc; i++) {
		size_t k = i < (size_t)f->n_args ? i : (size_t)f->n_args - 1;
		expect_type(p, n->call.args[i], f->arg_types[k], ctx);
	}
}

static void check_selector(struct parser *p, struct ts_ast *n)
{
	size_t nm = n->vs.n_matchers;
	if (n->vs.name) {
		/* The last matcher is the name given outside the braces. */
		for (size_t i = 0; i + 1 < nm; i++)
			if (strcmp(n->vs.matchers[i].name, "__name__") == 0) {
				char a[96], b[96];
				go_quote(a, sizeof(a), n->vs.name, strlen(n->vs.name), 0);
				go_quote(b, sizeof(b), n->vs.matchers[i].value,
					 n->vs.matchers[i].value_len, 0);
				{
					fail(p, (size_t)n->pos,
					     "metric name must not be set twice: %s or %s", a, b);
					return;
				}
			}
		return;
	}
	for (size_t i = 0; i < nm; i++)
		if (!n->vs.matchers[i].matches_empty)
			return;
	fail(p, (size_t)n->pos, "vector selector must contain at least one non-empty matcher");
}

static void check(struct parser *p, struct ts_ast *n)
{
	if (p->rc)
		return;
	switch (n->kind) {
	case TS_AST_AGGREGATE:
		expect_type(p, n->aggregate.expr, TS_VT_VECTOR, "aggregation expression");
		if (n->aggregate.op == TS_AGG_COUNT_VALUES)
			expect_type(p, n->aggregate.param, TS_VT_STRING, "aggregation parameter");
		else if (n->aggregate.param)
			expect_type(p, n->aggregate.param, TS_VT_SCALAR, "aggregation parameter");
		break;
	case TS_AST_BINARY: check_binary(p, n); break;
	case TS_AST_CALL: check_call(p, n); break;
	case TS_AST_PAREN: check(p, n->paren.expr); break;
	case TS_AST_UNARY:
		check(p, n->unary.expr);
		if (!p->rc && n->type != TS_VT_SCALAR && n->type != TS_VT_VECTOR)
			fail(p, (size_t)n->pos,
			     "unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
			     ts_value_type_str(n->type));
		break;
	case TS_AST_SUBQUERY:
		check(p, n->subquery.expr);
		if (!p->rc && n->subquery.expr->type != TS_VT_VECTOR)
			fail(p, (size_t)n->pos,
			     "subquery is only allowed on instant vector, got %s instead",
			     go_type_name(n->subquery.expr->type));
		break;
	case TS_AST_MATRIX_SELECTOR: check(p, n->matrix.vs); break;
	case TS_AST_VECTOR_SELECTOR: check_selector(p, n); break;
	case TS_AST_NUMBER:
	case TS_AST_STRING: break;
	}
}

/* ---- entry points ---- */

int ts_promql_parse(const char *q, size_t len, struct ts_ast **out, struct ts_promql_error *err)
{
	struct ts_promql_error dummy;
	struct parser p;
	struct ts_ast *root = NULL;
	memset(&p, 0, sizeof(p));
	p.err = err ? err : &dummy;
	memset(p.err, 0, sizeof(*p.err));
	*out = NULL;
	if (len > INT32_MAX) {
		fail(&p, 0, "query too long");
		return p.rc;
	}
	p.q = q;
	p.len = len;
	ts_promql_lex_init(&p.lx, q, len);
	advance(&p);
	if (p.tok.type == TS_TOK_EOF) {
		fail(&p, 0, "no expression found in input");
		goto out;
	}
	root = parse_expr(&p, 0);
	if (root && !p.rc && p.tok.type != TS_TOK_EOF)
		unexpected(&p, NULL, NULL);
	if (root && !p.rc)
		check(&p, root);
out:
	pcre2_match_context_free(p.mctx);
	pcre2_compile_context_free(p.cctx);
	pcre2_general_context_free(p.gctx);
	if (p.rc) {
		ts_ast_free(root);
		return p.rc;
	}
	*out = root;
	return 0;
}

int ts_promql_error_format(const char *q, size_t len, const struct ts_promql_error *err, char *buf,
			   size_t cap)
{
	int line = 1;
	long last_nl = -1;
	if (err->pos < 0 || (size_t)err->pos > len)
		return snprintf(buf, cap, "invalid position: parse error: %s", err->msg);
	for (int i = 0; i < err->pos; i++)
		if (q[i] == '\n') {
			line++;
			last_nl = i;
		}
	return snprintf(buf, cap, "%d:%ld: parse error: %s", line, (long)err->pos - last_nl,
			err->msg);
}
