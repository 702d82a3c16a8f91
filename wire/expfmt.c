/*
 * expfmt.c - Prometheus text exposition format decoder (grammar in expfmt.h).
 *
 * The code is a hand-written equivalent of promlex.l + promparse.go: the lexer states
 * become positions in straight-line code, one entry per ts_expfmt_next() call.
 * Invariants:
 *   - the body is never read at or past len; the end of the body behaves as the LF
 *     Prometheus appends to its input;
 *   - tokens without escapes alias the body; escaped ones are decoded into the scratch
 *     buffer, which never moves while an entry is decoded: when it lacks room it is
 *     grown to the raw size of the entry so far and the entry is decoded again (the
 *     same scheme as lineproto.c; decoded text is never longer than raw text);
 *   - every label name and value, family name and HELP text handed out is valid UTF-8;
 *   - on an error pos is moved past the current line so decoding can go on.
 */
#include "wire/expfmt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wire/fmtnum.h"
#include "wire/text.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"
#include "storage/err.h"
#include "storage/mem.h"

#define RESTART TS_TEXT_RESTART

void ts_expfmt_init(struct ts_expfmt_parser *p, const char *body, size_t len, int64_t default_ms)
{
	memset(p, 0, sizeof *p);
	p->buf = body;
	p->len = len;
	p->line = 1;
	p->default_ms = default_ms;
}

void ts_expfmt_fini(struct ts_expfmt_parser *p)
{
	if (!p)
		return;
	ts_free(p->labels);
	ts_free(p->scratch);
	p->labels = NULL;
	p->scratch = NULL;
	p->labels_cap = 0;
	p->scratch_cap = p->scratch_len = 0;
}

const char *ts_expfmt_type_name(int type)
{
	static const char *const names[] = { "untyped", "counter", "gauge", "histogram",
					     "summary" };
	return type >= 0 && type <= TS_EXPFMT_SUMMARY ? names[type] : "untyped";
}

static int perr(struct ts_expfmt_parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(struct ts_expfmt_parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ts_text_verr(p->err, sizeof p->err, p->line,
		     at >= p->line_start ? at - p->line_start + 1 : 1, fmt, ap);
	va_end(ap);
	p->err_line = p->line;
	return TS_EINVALID;
}

/* The byte at i, with the end of input reading as the LF Prometheus appends. */
static char at(const struct ts_expfmt_parser *p, size_t i)
{
	return i < p->len ? p->buf[i] : '\n';
}

static void skip_blanks(struct ts_expfmt_parser *p)
{
	while (p->pos < p->len && (p->buf[p->pos] == ' ' || p->buf[p->pos] == '\t'))
		p->pos++;
}

/* Consumes the LF (or the end of input) at pos. */
static void eat_newline(struct ts_expfmt_parser *p)
{
	if (p->pos < p->len) {
		p->pos++;
		p->line++;
		p->line_start = p->pos;
	}
}

static int is_name_start(char c, int colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static int is_name_char(char c, int colon)
{
	return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

struct tok {
	const char *s;
	size_t len;
};

/* A bare name at pos ([a-zA-Z_:][a-zA-Z0-9_:]*, without ':' for label names). */
static struct tok take_name(struct ts_expfmt_parser *p, int colon)
{
	size_t i = p->pos;
	if (i < p->len && is_name_start(p->buf[i], colon)) {
		i++;
		while (i < p->len && is_name_char(p->buf[i], colon))
			i++;
	}
	struct tok t = { p->buf + p->pos, i - p->pos };
	p->pos = i;
	return t;
}

/* Grows the scratch buffer so the current entry fits, for a restart (text.h). */
static int grow_scratch(struct ts_expfmt_parser *p, size_t entry_begin, size_t upto)
{
	return ts_text_scratch_grow(&p->scratch, &p->scratch_cap, upto - entry_begin + 64);
}

/*
 * Decodes raw[0..n) with Prometheus' replacer rules into scratch when it holds a
 * backslash: "\\" -> '\', "\n" -> LF and, unless help, "\"" -> '"'; other pairs stay.
 */
static int unescape(struct ts_expfmt_parser *p, size_t entry_begin, struct tok *t, int help)
{
	if (!memchr(t->s, '\\', t->len))
		return 0;
	if (p->scratch_cap - p->scratch_len < t->len)
		return grow_scratch(p, entry_begin, (size_t)(t->s - p->buf) + t->len);
	char *d = p->scratch + p->scratch_len;
	size_t o = 0;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->s[i];
		if (c == '\\' && i + 1 < t->len) {
			char n = t->s[i + 1];
			if (n == '\\' || n == 'n' || (n == '"' && !help)) {
				d[o++] = n == 'n' ? '\n' : n;
				i++;
				continue;
			}
		}
		d[o++] = c;
	}
	t->s = d;
	t->len = o;
	p->scratch_len += o;
	return 0;
}

/* A quoted string at pos: "(\\.|[^\\"])*" where '.' is any byte but LF. Raw LFs are
 * allowed (promlex.l's [^\\"] includes them); lines are counted. Returns the contents
 * (escapes intact) or TS_EINVALID. */
static int take_quoted(struct ts_expfmt_parser *p, struct tok *t)
{
	size_t start = p->pos + 1, i = start;
	for (;;) {
		if (i >= p->len)
			return perr(p, p->pos, "unterminated quoted string");
		char c = p->buf[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= p->len || p->buf[i + 1] == '\n')
				return perr(p, i, "invalid escape in quoted string");
			i += 2;
			continue;
		}
		if (c == '\n') {
			p->line++;
			p->line_start = i + 1;
		}
		i++;
	}
	t->s = p->buf + start;
	t->len = i - start;
	p->pos = i + 1;
	if (!ts_utf8_valid(t->s, t->len))
		return perr(p, start, "invalid UTF-8 in quoted string");
	if (t->len > UINT32_MAX)
		return perr(p, start, "string too long");
	return 0;
}

static int push_label(struct ts_expfmt_parser *p, uint32_t n, struct tok name, struct tok value)
{
	int rc = ts_text_put_label(&p->labels, &p->labels_cap, n, name.s, name.len, value.s,
				   value.len);
	return rc == TS_ELIMIT ? perr(p, p->pos, "too many labels") : rc;
}

/* "# HELP" / "# TYPE": pos is just past the keyword and its blanks. */
static int parse_meta(struct ts_expfmt_parser *p, size_t begin, int is_help,
		      struct ts_expfmt_entry *e)
{
	int rc;
	skip_blanks(p);
	struct tok name;
	if (at(p, p->pos) == '"') {
		if ((rc = take_quoted(p, &name)) != 0)
			return rc;
		if ((rc = unescape(p, begin, &name, 0)) != 0)
			return rc;
		if (name.len == 0)
			return perr(p, p->pos, "empty metric name after %s",
				    is_help ? "HELP" : "TYPE");
	} else {
		name = take_name(p, 1);
		if (name.len == 0)
			return perr(p, p->pos, "expected metric name after %s",
				    is_help ? "HELP" : "TYPE");
	}
	/* The text token is the rest of the line; a rest of only blanks lexes as white
	 * space and leaves an empty text. Otherwise its first byte is dropped. */
	size_t rest = p->pos, end = rest;
	int only_blanks = 1;
	while (end < p->len && p->buf[end] != '\n') {
		if (p->buf[end] != ' ' && p->buf[end] != '\t')
			only_blanks = 0;
		end++;
	}
	struct tok text = { p->buf + rest, 0 };
	if (!only_blanks && end - rest > 1)
		text = (struct tok){ p->buf + rest + 1, end - rest - 1 };
	p->pos = end;
	e->name = name.s;
	e->name_len = (uint32_t)name.len;
	if (is_help) {
		if (!ts_utf8_valid(text.s, text.len))
			return perr(p, rest, "HELP text is not valid UTF-8");
		if (text.len > UINT32_MAX)
			return perr(p, rest, "HELP text too long");
		if ((rc = unescape(p, begin, &text, 1)) != 0)
			return rc;
		e->kind = TS_EXPFMT_HELP;
		e->help = text.s;
		e->help_len = (uint32_t)text.len;
	} else {
		static const char *const types[] = { "untyped", "counter", "gauge", "histogram",
						     "summary" };
		int found = -1;
		for (int i = 0; i < 5; i++)
			if (strlen(types[i]) == text.len && memcmp(types[i], text.s, text.len) == 0)
				found = i;
		if (found < 0)
			return perr(p, rest, "invalid metric type \"%.*s\"",
				    (int)(text.len > 32 ? 32 : text.len), text.s);
		p->mtype = (uint8_t)found;
		e->kind = TS_EXPFMT_TYPE;
		e->type = (uint8_t)found;
	}
	eat_newline(p);
	return 0;
}

/* The inside of {...}; pos is past '{'. */
static int parse_labels(struct ts_expfmt_parser *p, size_t begin, uint32_t *n_labels,
			struct tok *mname)
{
	uint32_t n = *n_labels;
	int rc;
	skip_blanks(p);
	for (;;) {
		char c = at(p, p->pos);
		if (c == '}') {
			p->pos++;
			break;
		}
		struct tok name;
		int quoted = c == '"';
		size_t npos = p->pos;
		if (quoted) {
			if ((rc = take_quoted(p, &name)) != 0)
				return rc;
		} else {
			name = take_name(p, 0);
			if (name.len == 0)
				return perr(p, npos, "expected label name");
		}
		skip_blanks(p);
		c = at(p, p->pos);
		if (quoted && (c == ',' || c == '}')) {
			/* {"metric.name", ...}: a quoted string alone is the metric name. */
			if (mname->s)
				return perr(p, npos, "metric name already set");
			if ((rc = unescape(p, begin, &name, 0)) != 0)
				return rc;
			*mname = name;
			p->pos++;
			if (c == '}')
				break;
			skip_blanks(p);
			continue;
		}
		if (quoted && (rc = unescape(p, begin, &name, 0)) != 0)
			return rc;
		if (c != '=')
			return perr(p, p->pos, "expected '=' after label name");
		p->pos++;
		skip_blanks(p);
		if (at(p, p->pos) != '"')
			return perr(p, p->pos, "expected quoted label value");
		struct tok value;
		if ((rc = take_quoted(p, &value)) != 0)
			return rc;
		if ((rc = unescape(p, begin, &value, 0)) != 0)
			return rc;
		if (name.len == 0)
			return perr(p, npos, "empty label name");
		if (value.len > 0) {
			if ((rc = push_label(p, n, name, value)) != 0)
				return rc;
			n++;
		}
		skip_blanks(p);
		if (at(p, p->pos) == ',') {
			p->pos++;
			skip_blanks(p);
		}
	}
	*n_labels = n;
	return 0;
}

/* Go's strconv.ParseFloat, minus hex and underscores (promparse rejects p, P, _). */
static int parse_value(const char *s, size_t n, double *v)
{
	const char *w = s;
	size_t k = n;
	int neg = 0, sign = 0;
	if (k > 0 && (w[0] == '+' || w[0] == '-')) {
		neg = w[0] == '-';
		sign = 1;
		w++;
		k--;
	}
	if ((k == 3 || k == 8) && strncasecmp(w, "infinity", k) == 0) {
		*v = neg ? -INFINITY : INFINITY;
		return 0;
	}
	if (!sign && k == 3 && strncasecmp(w, "nan", 3) == 0) {
		*v = ts_fmt_normal_nan();
		return 0;
	}
	return ts_fmtnum_parse_double(s, n, v);
}

/* A sample line; pos is at its first non-blank byte (a name or '{'). */
static int parse_series(struct ts_expfmt_parser *p, size_t begin, struct ts_expfmt_entry *e)
{
	int rc;
	uint32_t n = 0;
	struct tok mname = { NULL, 0 };
	if (at(p, p->pos) != '{') {
		mname = take_name(p, 1);
		if (mname.len == 0)
			return perr(p, p->pos, "expected a metric name, '{', '#' or a blank line");
		skip_blanks(p);
	}
	if (at(p, p->pos) == '{') {
		p->pos++;
		if ((rc = parse_labels(p, begin, &n, &mname)) != 0)
			return rc;
	}
	if (!mname.s)
		return perr(p, begin, "metric name not set");
	if (mname.len == 0)
		return perr(p, begin, "empty metric name");
	skip_blanks(p);
	size_t vpos = p->pos;
	while (p->pos < p->len && p->buf[p->pos] != '{' && p->buf[p->pos] != ' ' &&
	       p->buf[p->pos] != '\t' && p->buf[p->pos] != '\n')
		p->pos++;
	if (p->pos == vpos)
		return perr(p, vpos, "expected value after metric");
	const char *vs = p->buf + vpos;
	size_t vn = p->pos - vpos;
	double v;
	if (parse_value(vs, vn, &v) != 0)
		return perr(p, vpos, "invalid value \"%.*s\"", (int)(vn > 40 ? 40 : vn), vs);
	skip_blanks(p);
	e->has_ts = 0;
	e->sample.t_ms = p->default_ms;
	if (at(p, p->pos) >= '0' && at(p, p->pos) <= '9') {
		size_t tpos = p->pos;
		while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9')
			p->pos++;
		if (ts_fmtnum_parse_int64(p->buf + tpos, p->pos - tpos, &e->sample.t_ms) != 0)
			return perr(p, tpos, "timestamp out of range");
		e->has_ts = 1;
		skip_blanks(p);
	}
	if (at(p, p->pos) != '\n')
		return perr(p, p->pos,
			    e->has_ts ? "expected end of line after timestamp"
				      : "expected timestamp or end of line");
	if ((rc = push_label(p, n, (struct tok){ "__name__", 8 }, mname)) != 0)
		return rc;
	n++;
	int dup = ts_labels_sort(p->labels, n);
	if (dup > 0)
		return perr(p, begin, "duplicate label name \"%.*s\"",
			    (int)(p->labels[dup].name_len > 64 ? 64 : p->labels[dup].name_len),
			    p->labels[dup].name);
	eat_newline(p);
	e->kind = TS_EXPFMT_SERIES;
	e->type = p->mtype;
	e->labels = p->labels;
	e->n_labels = n;
	e->sample.v = v;
	return 0;
}

static int has_word(const struct ts_expfmt_parser *p, const char *w)
{
	size_t n = strlen(w);
	return p->len - p->pos > n && memcmp(p->buf + p->pos, w, n) == 0 &&
	       (p->buf[p->pos + n] == ' ' || p->buf[p->pos + n] == '\t');
}

static void skip_to_eol(struct ts_expfmt_parser *p)
{
	const char *nl = p->pos < p->len ? memchr(p->buf + p->pos, '\n', p->len - p->pos) : NULL;
	p->pos = nl ? (size_t)(nl - p->buf) : p->len;
}

/* One entry; pos is at the start of a line. Returns 0 (entry), 2 (end), or an error. */
static int parse_entry(struct ts_expfmt_parser *p, struct ts_expfmt_entry *e)
{
	for (;;) {
		skip_blanks(p);
		if (p->pos >= p->len)
			return 2;
		size_t begin = p->pos;
		char c = p->buf[p->pos];
		e->line = p->line;
		p->scratch_len = 0;
		if (c == '\n') {
			eat_newline(p);
			continue;
		}
		if (c == '#') {
			p->pos++;
			char b = at(p, p->pos);
			if (b == ' ' || b == '\t') {
				skip_blanks(p);
				if (has_word(p, "HELP") || has_word(p, "TYPE")) {
					int help = p->buf[p->pos] == 'H';
					p->pos += 4;
					return parse_meta(p, begin, help, e);
				}
			}
			skip_to_eol(p);
			eat_newline(p);
			continue;
		}
		if (c == 0)
			return perr(p, p->pos, "NUL byte at start of line");
		return parse_series(p, begin, e);
	}
}

int ts_expfmt_next(struct ts_expfmt_parser *p, struct ts_expfmt_entry *e)
{
	memset(e, 0, sizeof *e);
	for (;;) {
		size_t pos0 = p->pos, ls0 = p->line_start;
		uint64_t line0 = p->line;
		uint8_t mtype0 = p->mtype;
		int rc = parse_entry(p, e);
		if (rc == 0)
			return 1;
		if (rc == 2)
			return 0;
		if (rc == RESTART) {
			p->pos = pos0;
			p->line = line0;
			p->line_start = ls0;
			p->mtype = mtype0;
			continue;
		}
		if (rc == -ENOMEM) {
			ts_text_oom(p->err, sizeof p->err, p->line);
			p->err_line = p->line;
		}
		/* Resume at the next line. */
		skip_to_eol(p);
		eat_newline(p);
		return rc;
	}
}
