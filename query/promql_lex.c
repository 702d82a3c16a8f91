/*
 * promql_lex.c - PromQL tokenizer, a port of the state machine of Prometheus 2.42's
 * promql/parser/lex.go (read for behaviour, not copied).
 *
 * Why a port rather than a "clean" lexer: what Prometheus accepts is decided here as
 * much as in its grammar. Examples kept on purpose: "010" is a NUMBER (the parser
 * reads it as octal 8); "5m" outside brackets is a DURATION token; inside [...] a
 * letter after the duration is taken as the subquery colon ("x[5m y]" is x[5m:]);
 * a literal U+FFFD in a quoted string is rejected as invalid UTF-8, like Go's
 * decoder reports it; an unbalanced ')' or '[' is a lexing error.
 *
 * Invariants: tokens alias the input; the first ERROR ends the stream (every later
 * call returns EOF); positions are byte offsets; err_pos is where Prometheus puts
 * the error (the start of the token being read, which for a stray ')' is just after
 * it).
 */
#include "query/promql_lex.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EOF_RUNE (-1)
#define RUNE_ERROR 0xFFFD

static const struct {
	const char *word;
	enum ts_promql_tok type;
} keywords[] = {
	{ "and", TS_TOK_LAND },
	{ "or", TS_TOK_LOR },
	{ "unless", TS_TOK_LUNLESS },
	{ "atan2", TS_TOK_ATAN2 },
	{ "sum", TS_TOK_SUM },
	{ "avg", TS_TOK_AVG },
	{ "count", TS_TOK_COUNT },
	{ "min", TS_TOK_MIN },
	{ "max", TS_TOK_MAX },
	{ "group", TS_TOK_GROUP },
	{ "stddev", TS_TOK_STDDEV },
	{ "stdvar", TS_TOK_STDVAR },
	{ "topk", TS_TOK_TOPK },
	{ "bottomk", TS_TOK_BOTTOMK },
	{ "count_values", TS_TOK_COUNT_VALUES },
	{ "quantile", TS_TOK_QUANTILE },
	{ "offset", TS_TOK_OFFSET },
	{ "by", TS_TOK_BY },
	{ "without", TS_TOK_WITHOUT },
	{ "on", TS_TOK_ON },
	{ "ignoring", TS_TOK_IGNORING },
	{ "group_left", TS_TOK_GROUP_LEFT },
	{ "group_right", TS_TOK_GROUP_RIGHT },
	{ "bool", TS_TOK_BOOL },
	{ "start", TS_TOK_START },
	{ "end", TS_TOK_END },
	{ "inf", TS_TOK_NUMBER },
	{ "nan", TS_TOK_NUMBER },
};

enum ts_promql_tok ts_promql_keyword(const char *word, size_t len)
{
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const char *k = keywords[i].word;
		if (strlen(k) == len && strncasecmp(k, word, len) == 0)
			return keywords[i].type;
	}
	return TS_TOK_IDENT;
}

const char *ts_promql_tok_str(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_LPAREN: return "(";
	case TS_TOK_RPAREN: return ")";
	case TS_TOK_LBRACE: return "{";
	case TS_TOK_RBRACE: return "}";
	case TS_TOK_LBRACKET: return "[";
	case TS_TOK_RBRACKET: return "]";
	case TS_TOK_COMMA: return ",";
	case TS_TOK_EQL: return "=";
	case TS_TOK_COLON: return ":";
	case TS_TOK_ADD: return "+";
	case TS_TOK_SUB: return "-";
	case TS_TOK_MUL: return "*";
	case TS_TOK_DIV: return "/";
	case TS_TOK_MOD: return "%";
	case TS_TOK_POW: return "^";
	case TS_TOK_EQLC: return "==";
	case TS_TOK_NEQ: return "!=";
	case TS_TOK_LSS: return "<";
	case TS_TOK_LTE: return "<=";
	case TS_TOK_GTR: return ">";
	case TS_TOK_GTE: return ">=";
	case TS_TOK_EQL_REGEX: return "=~";
	case TS_TOK_NEQ_REGEX: return "!~";
	case TS_TOK_AT: return "@";
	default: break;
	}
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (keywords[i].type == t)
			return keywords[i].word;
	return NULL;
}

int ts_promql_utf8_decode(const unsigned char *s, size_t n, size_t *width)
{
	unsigned c = s[0];
	unsigned need, r, min;
	*width = 1;
	if (c < 0x80)
		return (int)c;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1, r = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2, r = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3, r = c & 0x07, min = 0x10000;
	} else {
		return RUNE_ERROR;
	}
	if (n < need + 1)
		return RUNE_ERROR;
	for (unsigned i = 1; i <= need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return RUNE_ERROR;
		r = (r << 6) | (s[i] & 0x3F);
	}
	if (r < min || r > 0x10FFFF || (r >= 0xD800 && r < 0xE000))
		return RUNE_ERROR;
	*width = need + 1;
	return (int)r;
}

static int next(struct ts_promql_lexer *lx)
{
	if (lx->pos >= lx->len) {
		lx->width = 0;
		return EOF_RUNE;
	}
	int r = ts_promql_utf8_decode((const unsigned char *)lx->in + lx->pos, lx->len - lx->pos,
				      &lx->width);
	lx->pos += lx->width;
	return r;
}

static void backup(struct ts_promql_lexer *lx)
{
	lx->pos -= lx->width;
}

static int peek(struct ts_promql_lexer *lx)
{
	int r = next(lx);
	backup(lx);
	return r;
}

static bool accept(struct ts_promql_lexer *lx, const char *valid)
{
	int r = next(lx);
	if (r > 0 && r < 0x80 && strchr(valid, r))
		return true;
	backup(lx);
	return false;
}

static void accept_run(struct ts_promql_lexer *lx, const char *valid)
{
	while (accept(lx, valid))
		;
}

static bool is_space(int r)
{
	return r == ' ' || r == '\t' || r == '\n' || r == '\r';
}
static bool is_digit(int r)
{
	return r >= '0' && r <= '9';
}
static bool is_alpha(int r)
{
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}
static bool is_alnum(int r)
{
	return is_alpha(r) || is_digit(r);
}

/* Appends rune r encoded as UTF-8; returns bytes written (buf has room for 4). */
static size_t utf8_put(char *buf, int r)
{
	unsigned u = (unsigned)r;
	if (u < 0x80) {
		buf[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		buf[0] = (char)(0xC0 | (u >> 6));
		buf[1] = (char)(0x80 | (u & 0x3F));
		return 2;
	}
	if (u < 0x10000) {
		buf[0] = (char)(0xE0 | (u >> 12));
		buf[1] = (char)(0x80 | ((u >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (u & 0x3F));
		return 3;
	}
	buf[0] = (char)(0xF0 | (u >> 18));
	buf[1] = (char)(0x80 | ((u >> 12) & 0x3F));
	buf[2] = (char)(0x80 | ((u >> 6) & 0x3F));
	buf[3] = (char)(0x80 | (u & 0x3F));
	return 4;
}

bool ts_promql_rune_printable(int r)
{
	if (r < 0x20 || (r >= 0x7F && r < 0xA1) || r == 0xAD)
		return false;
	if (r == 0x1680 || (r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
	    (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0xFEFF ||
	    (r >= 0xFFF0 && r <= 0xFFFC) || (r >= 0xE000 && r <= 0xF8FF) ||
	    (r & 0xFFFE) == 0xFFFE || (r >= 0x3134B && r < 0xE0100) || r >= 0xE01F0 ||
	    (r >= 0xD800 && r < 0xE000))
		return false;
	return true;
}

/* Go's %q of a rune, for messages: 'x', '\n', '\x00', '\u0085'. */
static void quote_rune(char *buf, size_t cap, int r)
{
	static const char esc[] = "a\ab\bf\fn\nr\rt\tv\v";
	for (size_t i = 0; esc[i]; i += 2)
		if (r == esc[i + 1]) {
			snprintf(buf, cap, "'\\%c'", esc[i]);
			return;
		}
	if (r == '\'' || r == '\\') {
		snprintf(buf, cap, "'\\%c'", r);
	} else if (r == EOF_RUNE) {
		snprintf(buf, cap, "'\xef\xbf\xbd'"); /* Go quotes rune(-1) as U+FFFD */
	} else if (r < 0x20 || r == 0x7F) {
		snprintf(buf, cap, "'\\x%02x'", (unsigned)r);
	} else if (r != RUNE_ERROR && !ts_promql_rune_printable(r)) {
		snprintf(buf, cap, r < 0x10000 ? "'\\u%04x'" : "'\\U%08x'", (unsigned)r);
	} else {
		char u[5];
		u[utf8_put(u, r)] = '\0';
		snprintf(buf, cap, "'%s'", u);
	}
}

/* Go's %#U: U+0063 'c' (the quoted form only for printable runes). */
static void rune_U(char *buf, size_t cap, int r)
{
	if (!ts_promql_rune_printable(r) && r != RUNE_ERROR) {
		snprintf(buf, cap, "U+%04X", (unsigned)r);
	} else {
		char u[5];
		u[utf8_put(u, r)] = '\0';
		snprintf(buf, cap, "U+%04X '%s'", (unsigned)r, u);
	}
}

/* Go's %q of a byte string, shortened for messages (no need to be exact). */
static void quote_str(char *buf, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	if (cap < 8)
		return;
	buf[o++] = '"';
	for (size_t i = 0; i < n && o + 6 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = c == '\a'   ? "\\a"
				: c == '\b' ? "\\b"
				: c == '\f' ? "\\f"
				: c == '\n' ? "\\n"
				: c == '\r' ? "\\r"
				: c == '\t' ? "\\t"
				: c == '\v' ? "\\v"
					    : NULL;
		if (e) {
			buf[o++] = e[0];
			buf[o++] = e[1];
		} else if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

static void errorf(struct ts_promql_lexer *lx, struct ts_promql_token *tok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errorf(struct ts_promql_lexer *lx, struct ts_promql_token *tok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(lx->err, sizeof(lx->err), fmt, ap);
	va_end(ap);
	lx->err_pos = lx->start;
	lx->done = true;
	tok->type = TS_TOK_ERROR;
	tok->pos = lx->start;
	tok->len = 0;
}

static void emit(struct ts_promql_lexer *lx, struct ts_promql_token *tok, enum ts_promql_tok type)
{
	tok->type = type;
	tok->pos = lx->start;
	tok->len = lx->pos - lx->start;
	lx->start = lx->pos;
}

/* Scans a number (decimal or 0x hex, fraction, exponent). True when the next
 * character cannot continue it; false when it is followed by a letter or digit (it
 * may then be a duration). */
static bool scan_number(struct ts_promql_lexer *lx)
{
	const char *digits = "0123456789";
	if (accept(lx, "0") && accept(lx, "xX"))
		digits = "0123456789abcdefABCDEF";
	accept_run(lx, digits);
	if (accept(lx, "."))
		accept_run(lx, digits);
	if (accept(lx, "eE")) {
		accept(lx, "+-");
		accept_run(lx, "0123456789");
	}
	return !is_alnum(peek(lx));
}

/* After a number: unit letters, maybe more number+unit pairs. Consumes one
 * character past the end, like Prometheus. */
static bool accept_remaining_duration(struct ts_promql_lexer *lx)
{
	if (!accept(lx, "smhdwy"))
		return false;
	accept(lx, "s"); /* "ms"; bad pairs like "hs" fail when the duration is parsed */
	while (accept(lx, "0123456789")) {
		while (accept(lx, "0123456789"))
			;
		if (!accept(lx, "smhdw"))
			return false;
		accept(lx, "s");
	}
	return !is_alnum(next(lx));
}

static void lex_duration(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	char q[200];
	if (scan_number(lx)) {
		errorf(lx, tok, "missing unit character in duration");
		return;
	}
	if (!accept_remaining_duration(lx)) {
		quote_str(q, sizeof(q), lx->in + lx->start, lx->pos - lx->start);
		errorf(lx, tok, "bad duration syntax: %s", q);
		return;
	}
	backup(lx);
	emit(lx, tok, TS_TOK_DURATION);
}

static void lex_number_or_duration(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	char q[200];
	if (scan_number(lx)) {
		emit(lx, tok, TS_TOK_NUMBER);
		return;
	}
	if (accept_remaining_duration(lx)) {
		backup(lx);
		emit(lx, tok, TS_TOK_DURATION);
		return;
	}
	quote_str(q, sizeof(q), lx->in + lx->start, lx->pos - lx->start);
	errorf(lx, tok, "bad number or duration syntax: %s", q);
}

/* Reads the body of an escape after '\'; false (and an ERROR token) when invalid. */
static bool lex_escape(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	int n;
	unsigned base, max;
	char u[32];
	int ch = next(lx);
	switch (ch) {
	case 'a':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
	case 'v':
	case '\\': return true;
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7': n = 3, base = 8, max = 255; break;
	case 'x':
		ch = next(lx);
		n = 2, base = 16, max = 255;
		break;
	case 'u':
		ch = next(lx);
		n = 4, base = 16, max = 0x10FFFF;
		break;
	case 'U':
		ch = next(lx);
		n = 8, base = 16, max = 0x10FFFF;
		break;
	case EOF_RUNE: errorf(lx, tok, "escape sequence not terminated"); return false;
	default:
		if (ch == lx->string_open)
			return true;
		rune_U(u, sizeof(u), ch);
		errorf(lx, tok, "unknown escape sequence %s", u);
		return false;
	}
	unsigned long x = 0;
	while (n > 0) {
		unsigned d = 16;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		if (d >= base) {
			if (ch == EOF_RUNE) {
				errorf(lx, tok, "escape sequence not terminated");
				return false;
			}
			rune_U(u, sizeof(u), ch);
			errorf(lx, tok, "illegal character %s in escape sequence", u);
			return false;
		}
		x = x * base + d;
		n--;
		if (n > 0)
			ch = next(lx);
	}
	if (x > max || (x >= 0xD800 && x < 0xE000)) {
		errorf(lx, tok, "escape sequence is an invalid Unicode code point");
		return false;
	}
	return true;
}

static void lex_string(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	for (;;) {
		int r = next(lx);
		if (r == '\\') {
			if (!lex_escape(lx, tok))
				return;
		} else if (r == RUNE_ERROR) {
			errorf(lx, tok, "invalid UTF-8 rune");
			return;
		} else if (r == EOF_RUNE || r == '\n') {
			errorf(lx, tok, "unterminated quoted string");
			return;
		} else if (r == lx->string_open) {
			break;
		}
	}
	emit(lx, tok, TS_TOK_STRING);
}

static void lex_raw_string(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	for (;;) {
		int r = next(lx);
		if (r == RUNE_ERROR) {
			errorf(lx, tok, "invalid UTF-8 rune");
			return;
		} else if (r == EOF_RUNE) {
			errorf(lx, tok, "unterminated raw string");
			return;
		} else if (r == lx->string_open) {
			break;
		}
	}
	emit(lx, tok, TS_TOK_STRING);
}

/* Skips a '#' comment up to (not including) the end of line. */
static void skip_comment(struct ts_promql_lexer *lx)
{
	while (lx->pos < lx->len && lx->in[lx->pos] != '\n' && lx->in[lx->pos] != '\r')
		lx->pos++;
	lx->start = lx->pos;
}

/* One token inside {...}. False when nothing was emitted (space). */
static bool lex_inside_braces(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	char q[16];
	int r = next(lx);
	if (r == EOF_RUNE) {
		errorf(lx, tok, "unexpected end of input inside braces");
	} else if (is_space(r)) {
		lx->start = lx->pos;
		return false;
	} else if (is_alpha(r)) {
		while (is_alnum(next(lx)))
			;
		backup(lx);
		emit(lx, tok, TS_TOK_IDENT);
	} else if (r == ',') {
		emit(lx, tok, TS_TOK_COMMA);
	} else if (r == '"' || r == '\'') {
		lx->string_open = r;
		lex_string(lx, tok);
	} else if (r == '`') {
		lx->string_open = r;
		lex_raw_string(lx, tok);
	} else if (r == '=') {
		if (next(lx) == '~') {
			emit(lx, tok, TS_TOK_EQL_REGEX);
		} else {
			backup(lx);
			emit(lx, tok, TS_TOK_EQL);
		}
	} else if (r == '!') {
		int nr = next(lx);
		if (nr == '~') {
			emit(lx, tok, TS_TOK_NEQ_REGEX);
		} else if (nr == '=') {
			emit(lx, tok, TS_TOK_NEQ);
		} else {
			quote_rune(q, sizeof(q), nr);
			errorf(lx, tok, "unexpected character after '!' inside braces: %s", q);
		}
	} else if (r == '{') {
		quote_rune(q, sizeof(q), r);
		errorf(lx, tok, "unexpected left brace %s", q);
	} else if (r == '}') {
		emit(lx, tok, TS_TOK_RBRACE);
		lx->brace_open = false;
	} else {
		quote_rune(q, sizeof(q), r);
		errorf(lx, tok, "unexpected character inside braces: %s", q);
	}
	return true;
}

static void lex_word(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	bool colon = false;
	for (;;) {
		int r = next(lx);
		if (is_alnum(r)) {
			continue;
		} else if (r == ':') {
			colon = true;
			continue;
		}
		break;
	}
	backup(lx);
	enum ts_promql_tok kw = ts_promql_keyword(lx->in + lx->start, lx->pos - lx->start);
	if (kw != TS_TOK_IDENT)
		emit(lx, tok, kw);
	else
		emit(lx, tok, colon ? TS_TOK_METRIC_IDENT : TS_TOK_IDENT);
}

/* '=', '!', '<' or '>' (r) and what may follow it. */
static void lex_comparison(struct ts_promql_lexer *lx, struct ts_promql_token *tok, int r)
{
	char q[16];
	int t;
	switch (r) {
	case '=':
		t = peek(lx);
		if (t == '=') {
			next(lx);
			emit(lx, tok, TS_TOK_EQLC);
		} else if (t == '~') {
			quote_rune(q, sizeof(q), t);
			errorf(lx, tok, "unexpected character after '=': %s", q);
		} else {
			emit(lx, tok, TS_TOK_EQL);
		}
		return;
	case '!':
		t = next(lx);
		if (t == '=') {
			emit(lx, tok, TS_TOK_NEQ);
		} else {
			quote_rune(q, sizeof(q), t);
			errorf(lx, tok, "unexpected character after '!': %s", q);
		}
		return;
	default: {
		bool eq = peek(lx) == '=';
		if (eq)
			next(lx);
		if (r == '<')
			emit(lx, tok, eq ? TS_TOK_LTE : TS_TOK_LSS);
		else
			emit(lx, tok, eq ? TS_TOK_GTE : TS_TOK_GTR);
	}
	}
}

/* '[' (r) opens a range or subquery, where a duration comes first; ']' closes it. */
static void lex_bracket(struct ts_promql_lexer *lx, struct ts_promql_token *tok, int r)
{
	char q[16];
	if (r == ']') {
		if (!lx->bracket_open) {
			quote_rune(q, sizeof(q), r);
			errorf(lx, tok, "unexpected right bracket %s", q);
			return;
		}
		emit(lx, tok, TS_TOK_RBRACKET);
		lx->bracket_open = false;
		return;
	}
	if (lx->bracket_open) {
		quote_rune(q, sizeof(q), r);
		errorf(lx, tok, "unexpected left bracket %s", q);
		return;
	}
	lx->got_colon = false;
	emit(lx, tok, TS_TOK_LBRACKET);
	while (is_space(peek(lx)))
		next(lx);
	lx->start = lx->pos;
	lx->bracket_open = true;
	lx->want_duration = true;
}

/* A letter or ':' (r): a word, except inside [...], where it is a (single) colon. */
static void lex_word_or_colon(struct ts_promql_lexer *lx, struct ts_promql_token *tok, int r)
{
	char q[16];
	if (!lx->bracket_open) {
		backup(lx);
		lex_word(lx, tok);
		return;
	}
	if (lx->got_colon) {
		quote_rune(q, sizeof(q), r);
		errorf(lx, tok, "unexpected colon %s", q);
		return;
	}
	emit(lx, tok, TS_TOK_COLON);
	lx->got_colon = true;
}

static void lex_eof(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	if (lx->paren_depth != 0)
		errorf(lx, tok, "unclosed left parenthesis");
	else if (lx->bracket_open)
		errorf(lx, tok, "unclosed left bracket");
	else
		emit(lx, tok, TS_TOK_EOF);
	lx->done = true;
}

/* One token outside braces. False when nothing was emitted (space). */
static bool lex_statement(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	char q[16];
	int r = next(lx);
	switch (r) {
	case EOF_RUNE: lex_eof(lx, tok); return true;
	case ',': emit(lx, tok, TS_TOK_COMMA); return true;
	case '*': emit(lx, tok, TS_TOK_MUL); return true;
	case '/': emit(lx, tok, TS_TOK_DIV); return true;
	case '%': emit(lx, tok, TS_TOK_MOD); return true;
	case '+': emit(lx, tok, TS_TOK_ADD); return true;
	case '-': emit(lx, tok, TS_TOK_SUB); return true;
	case '^': emit(lx, tok, TS_TOK_POW); return true;
	case '@': emit(lx, tok, TS_TOK_AT); return true;
	case '=':
	case '!':
	case '<':
	case '>': lex_comparison(lx, tok, r); return true;
	case '"':
	case '\'':
		lx->string_open = r;
		lex_string(lx, tok);
		return true;
	case '`':
		lx->string_open = r;
		lex_raw_string(lx, tok);
		return true;
	case '(':
		emit(lx, tok, TS_TOK_LPAREN);
		lx->paren_depth++;
		return true;
	case ')':
		emit(lx, tok, TS_TOK_RPAREN);
		if (--lx->paren_depth < 0) {
			quote_rune(q, sizeof(q), r);
			errorf(lx, tok, "unexpected right parenthesis %s", q);
		}
		return true;
	case '{':
		emit(lx, tok, TS_TOK_LBRACE);
		lx->brace_open = true;
		return true;
	case '[':
	case ']': lex_bracket(lx, tok, r); return true;
	default: break;
	}
	if (is_space(r)) {
		lx->start = lx->pos;
		return false;
	}
	if (is_digit(r) || (r == '.' && is_digit(peek(lx)))) {
		backup(lx);
		lex_number_or_duration(lx, tok);
		return true;
	}
	if (is_alpha(r) || r == ':') {
		lex_word_or_colon(lx, tok, r);
		return true;
	}
	quote_rune(q, sizeof(q), r);
	errorf(lx, tok, "unexpected character: %s", q);
	return true;
}

void ts_promql_lex_init(struct ts_promql_lexer *lx, const char *in, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->in = in;
	lx->len = len;
}

void ts_promql_lex_next(struct ts_promql_lexer *lx, struct ts_promql_token *tok)
{
	if (lx->done) {
		tok->type = TS_TOK_EOF;
		tok->pos = lx->len;
		tok->len = 0;
		return;
	}
	if (lx->want_duration) {
		lx->want_duration = false;
		lex_duration(lx, tok);
		return;
	}
	for (;;) {
		/* A '#' comment runs to the end of the line, inside braces too. */
		if (lx->pos < lx->len && lx->in[lx->pos] == '#') {
			skip_comment(lx);
			continue;
		}
		bool got = lx->brace_open ? lex_inside_braces(lx, tok) : lex_statement(lx, tok);
		if (got)
			return;
	}
}
