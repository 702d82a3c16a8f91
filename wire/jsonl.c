/*
 * jsonl.c - strict JSON tokenizer, VictoriaMetrics JSON-lines import parser and
 * export encoder (rules in jsonl.h).
 *
 * Tokenizer invariants: it never reads at or past `end`; every token it returns is
 * grammatical in its position (a state machine tracks what may come next, a bit stack
 * tracks object vs array for up to TS_JSONL_MAX_DEPTH levels); string tokens are
 * validated completely when returned (escapes, surrogate pairing, UTF-8, no raw
 * control characters), so ts_jsonl_unescape() cannot fail and never grows the text.
 *
 * Import invariants: one line is one JSON text; the scratch buffer that receives
 * unescaped strings is sized to the whole line before parsing it (decoded strings are
 * never longer than the line), so pointers into it never move while a line is parsed.
 */
#include "wire/jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/fmtnum.h"
#include "wire/text.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"
#include "storage/err.h"
#include "storage/mem.h"


enum {
	S_VALUE,	/* a value must come (top level, after ':' or ',' in an array) */
	S_VALUE_OR_END, /* after '[' */
	S_KEY_OR_END,	/* after '{' */
	S_KEY,		/* after ',' in an object */
	S_COLON,	/* after a member name */
	S_AFTER,	/* after a value inside a container */
	S_DONE,		/* the top-level value is complete */
	S_FAILED,
};

void ts_jsonl_lex_init(struct ts_jsonl_lex *lx, const char *text, size_t len)
{
	memset(lx, 0, sizeof *lx);
	lx->begin = text;
	lx->p = text;
	lx->end = text + len;
	lx->state = S_VALUE;
}

static int lex_fail(struct ts_jsonl_lex *lx, const char *at, const char *what)
{
	lx->err = what;
	lx->err_off = (size_t)(at - lx->begin);
	lx->state = S_FAILED;
	return TS_EINVALID;
}

static void skip_ws(struct ts_jsonl_lex *lx)
{
	const char *p = lx->p;
	while (p < lx->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	lx->p = p;
}

/* Reads 4 hex digits at p (bounds checked by the caller). */
static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int h = ts_text_hexval(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Scans a string whose opening quote is at lx->p. */
static int lex_string(struct ts_jsonl_lex *lx)
{
	const char *start = lx->p + 1, *p = start, *end = lx->end;
	unsigned high = 0;
	int esc = 0;
	for (;;) {
		while (p < end) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\' || c < 0x20)
				break;
			high |= c;
			p++;
		}
		if (p >= end)
			return lex_fail(lx, lx->p, "unterminated string");
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20)
			return lex_fail(lx, p, "control character in string");
		/* backslash */
		esc = 1;
		if (end - p < 2)
			return lex_fail(lx, p, "unterminated escape");
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't': p += 2; continue;
		case 'u': break;
		default: return lex_fail(lx, p, "invalid escape in string");
		}
		if (end - p < 6)
			return lex_fail(lx, p, "truncated \\u escape");
		int u = hex4(p + 2);
		if (u < 0)
			return lex_fail(lx, p, "invalid \\u escape");
		if (u >= 0xDC00 && u <= 0xDFFF)
			return lex_fail(lx, p, "lone low surrogate in \\u escape");
		if (u >= 0xD800 && u <= 0xDBFF) {
			if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
				return lex_fail(lx, p, "high surrogate not followed by a low one");
			int l = hex4(p + 8);
			if (l < 0xDC00 || l > 0xDFFF)
				return lex_fail(lx, p, "high surrogate not followed by a low one");
			p += 12;
		} else {
			p += 6;
		}
	}
	if ((high & 0x80) && !ts_utf8_valid(start, (size_t)(p - start)))
		return lex_fail(lx, start, "invalid UTF-8 in string");
	lx->tok = start;
	lx->tok_len = (size_t)(p - start);
	lx->tok_esc = esc;
	lx->p = p + 1;
	return 0;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int lex_number(struct ts_jsonl_lex *lx)
{
	const char *s = lx->p, *p = s, *end = lx->end;
	if (p < end && *p == '-')
		p++;
	if (p >= end || !is_digit(*p))
		return lex_fail(lx, s, "invalid number");
	if (*p == '0') {
		p++;
	} else {
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p))
			return lex_fail(lx, s, "invalid number: digit expected after '.'");
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p))
			return lex_fail(lx, s, "invalid number: digit expected in exponent");
		while (p < end && is_digit(*p))
			p++;
	}
	lx->tok = s;
	lx->tok_len = (size_t)(p - s);
	lx->tok_esc = 0;
	lx->p = p;
	return 0;
}

static int lex_literal(struct ts_jsonl_lex *lx, const char *word, size_t n)
{
	if ((size_t)(lx->end - lx->p) < n || memcmp(lx->p, word, n) != 0)
		return lex_fail(lx, lx->p, "invalid literal");
	lx->p += n;
	return 0;
}

static int after_value(struct ts_jsonl_lex *lx, int tok)
{
	lx->state = lx->depth == 0 ? S_DONE : S_AFTER;
	return tok;
}

static int lex_value(struct ts_jsonl_lex *lx)
{
	if (lx->p >= lx->end)
		return lex_fail(lx, lx->p, "value expected, got end of input");
	int rc;
	switch (*lx->p) {
	case '{':
	case '[':
		if (lx->depth >= TS_JSONL_MAX_DEPTH)
			return lex_fail(lx, lx->p, "nesting too deep");
		if (*lx->p == '{')
			lx->objbits |= 1ULL << lx->depth;
		else
			lx->objbits &= ~(1ULL << lx->depth);
		lx->depth++;
		lx->state = *lx->p == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
		return *lx->p++ == '{' ? TS_JSONL_OBJ : TS_JSONL_ARR;
	case '"':
		if ((rc = lex_string(lx)) != 0)
			return rc;
		return after_value(lx, TS_JSONL_STR);
	case 't':
		if ((rc = lex_literal(lx, "true", 4)) != 0)
			return rc;
		return after_value(lx, TS_JSONL_TRUE);
	case 'f':
		if ((rc = lex_literal(lx, "false", 5)) != 0)
			return rc;
		return after_value(lx, TS_JSONL_FALSE);
	case 'n':
		if ((rc = lex_literal(lx, "null", 4)) != 0)
			return rc;
		return after_value(lx, TS_JSONL_NULL);
	default:
		if (*lx->p == '-' || is_digit(*lx->p)) {
			if ((rc = lex_number(lx)) != 0)
				return rc;
			return after_value(lx, TS_JSONL_NUM);
		}
		return lex_fail(lx, lx->p, "value expected");
	}
}

static int lex_key(struct ts_jsonl_lex *lx)
{
	if (lx->p >= lx->end || *lx->p != '"')
		return lex_fail(lx, lx->p, "member name expected");
	int rc = lex_string(lx);
	if (rc != 0)
		return rc;
	lx->state = S_COLON;
	return TS_JSONL_KEY;
}

static int lex_close(struct ts_jsonl_lex *lx)
{
	lx->depth--;
	lx->p++;
	int obj = (lx->objbits >> lx->depth) & 1;
	lx->state = lx->depth == 0 ? S_DONE : S_AFTER;
	return obj ? TS_JSONL_OBJ_END : TS_JSONL_ARR_END;
}

int ts_jsonl_lex_next(struct ts_jsonl_lex *lx)
{
	if (lx->state == S_FAILED)
		return TS_EINVALID;
	skip_ws(lx);
	int in_obj = lx->depth > 0 && ((lx->objbits >> (lx->depth - 1)) & 1);
	switch (lx->state) {
	case S_DONE:
		if (lx->p != lx->end)
			return lex_fail(lx, lx->p, "unexpected data after the JSON value");
		return TS_JSONL_END;
	case S_COLON:
		if (lx->p >= lx->end || *lx->p != ':')
			return lex_fail(lx, lx->p, "':' expected after member name");
		lx->p++;
		skip_ws(lx);
		return lex_value(lx);
	case S_AFTER:
		if (lx->p >= lx->end)
			return lex_fail(lx, lx->p,
					"',' or closing bracket expected, got end of input");
		if (*lx->p == ',') {
			lx->p++;
			skip_ws(lx);
			return in_obj ? lex_key(lx) : lex_value(lx);
		}
		if ((*lx->p == '}' && in_obj) || (*lx->p == ']' && !in_obj))
			return lex_close(lx);
		return lex_fail(lx, lx->p, "',' or closing bracket expected");
	case S_KEY_OR_END:
		if (lx->p < lx->end && *lx->p == '}')
			return lex_close(lx);
		return lex_key(lx);
	case S_KEY: return lex_key(lx);
	case S_VALUE_OR_END:
		if (lx->p < lx->end && *lx->p == ']')
			return lex_close(lx);
		return lex_value(lx);
	default: return lex_value(lx);
	}
}

int ts_jsonl_lex_skip(struct ts_jsonl_lex *lx, int tok)
{
	if (tok != TS_JSONL_OBJ && tok != TS_JSONL_ARR)
		return tok < 0 ? tok : 0;
	uint32_t depth = lx->depth - 1;
	while (lx->depth > depth) {
		int t = ts_jsonl_lex_next(lx);
		if (t < 0)
			return t;
		if (t == TS_JSONL_END)
			return lex_fail(lx, lx->p, "unexpected end");
	}
	return 0;
}

size_t ts_jsonl_unescape(char *dst, const char *raw, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		const char *bs = memchr(raw + i, '\\', len - i);
		size_t run = bs ? (size_t)(bs - raw) - i : len - i;
		memmove(dst + o, raw + i, run);
		o += run;
		i += run;
		if (!bs)
			break;
		char c = raw[i + 1];
		i += 2;
		switch (c) {
		case 'b': dst[o++] = '\b'; break;
		case 'f': dst[o++] = '\f'; break;
		case 'n': dst[o++] = '\n'; break;
		case 'r': dst[o++] = '\r'; break;
		case 't': dst[o++] = '\t'; break;
		case 'u': {
			uint32_t cp = (uint32_t)hex4(raw + i);
			i += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				uint32_t lo = (uint32_t)hex4(raw + i + 2);
				i += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			o += ts_utf8_encode(dst + o, cp);
			break;
		}
		default: dst[o++] = c; break; /* " \ / */
		}
	}
	return o;
}

/* ---- import ---- */

void ts_jsonl_init(struct ts_jsonl_parser *p, const char *body, size_t len)
{
	memset(p, 0, sizeof *p);
	p->buf = body;
	p->len = len;
}

void ts_jsonl_fini(struct ts_jsonl_parser *p)
{
	if (!p)
		return;
	ts_free(p->labels);
	ts_free(p->samples);
	ts_free(p->scratch);
	p->labels = NULL;
	p->samples = NULL;
	p->scratch = NULL;
	p->labels_cap = 0;
	p->samples_cap = p->scratch_cap = 0;
}

static int jerr(struct ts_jsonl_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int jerr(struct ts_jsonl_parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ts_text_verr(p->err, sizeof p->err, p->line, 0, fmt, ap);
	va_end(ap);
	p->err_line = p->line;
	return TS_EINVALID;
}

static int lexerr(struct ts_jsonl_parser *p, const struct ts_jsonl_lex *lx)
{
	return jerr(p, "invalid JSON at col %zu: %s", lx->err_off + 1, lx->err);
}

/* The string token's bytes, unescaped into scratch when needed. */
static void tok_string(struct ts_jsonl_parser *p, const struct ts_jsonl_lex *lx, size_t *used,
		       const char **s, size_t *n)
{
	if (!lx->tok_esc) {
		*s = lx->tok;
		*n = lx->tok_len;
		return;
	}
	char *d = p->scratch + *used;
	*n = ts_jsonl_unescape(d, lx->tok, lx->tok_len);
	*s = d;
	*used += *n;
}

static int parse_metric(struct ts_jsonl_parser *p, struct ts_jsonl_lex *lx, uint32_t *n_labels)
{
	size_t used = 0;
	uint32_t n = 0;
	int t = ts_jsonl_lex_next(lx);
	if (t < 0)
		return lexerr(p, lx);
	if (t != TS_JSONL_OBJ)
		return jerr(p, "\"metric\" must be an object");
	for (;;) {
		t = ts_jsonl_lex_next(lx);
		if (t < 0)
			return lexerr(p, lx);
		if (t == TS_JSONL_OBJ_END)
			break;
		const char *name, *value;
		size_t name_len, value_len;
		tok_string(p, lx, &used, &name, &name_len);
		t = ts_jsonl_lex_next(lx);
		if (t < 0)
			return lexerr(p, lx);
		if (t != TS_JSONL_STR)
			return jerr(p, "label values must be strings");
		tok_string(p, lx, &used, &value, &value_len);
		if (name_len == 0 || value_len == 0)
			continue;
		int rc = ts_text_put_label(&p->labels, &p->labels_cap, n, name, name_len, value,
					   value_len);
		if (rc == TS_ELIMIT)
			return jerr(p, "too many labels, or a label too long");
		if (rc != 0)
			return rc;
		n++;
	}
	*n_labels = n;
	return 0;
}

/* Room for sample n (values and timestamps fill the same array). */
static int grow_samples(struct ts_jsonl_parser *p, size_t n)
{
	return ts_grow((void **)&p->samples, &p->samples_cap, n + 1, sizeof *p->samples);
}

/* The '[' that opens the array of member `what`. */
static int open_array(struct ts_jsonl_parser *p, struct ts_jsonl_lex *lx, const char *what)
{
	int t = ts_jsonl_lex_next(lx);
	if (t < 0)
		return lexerr(p, lx);
	if (t != TS_JSONL_ARR)
		return jerr(p, "\"%s\" must be an array", what);
	return 0;
}

/* VictoriaMetrics' getSpecialFloat64FromString. */
static int special_value(const char *s, size_t n, double *v)
{
	int neg = 0;
	if (n > 0 && s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	static const char *const infs[] = { "infinity", "Infinity", "Inf", "inf" };
	static const char *const nans[] = { "null", "Null", "nan", "NaN" };
	for (int i = 0; i < 4; i++) {
		if (strlen(infs[i]) == n && memcmp(infs[i], s, n) == 0) {
			*v = neg ? -INFINITY : INFINITY;
			return 0;
		}
		if (strlen(nans[i]) == n && memcmp(nans[i], s, n) == 0) {
			*v = ts_fmt_normal_nan();
			return 0;
		}
	}
	return TS_EINVALID;
}

/* The next element of an array opened by open_array, with room for sample n made: 1
 * (*tok is its first token), 0 (the array ended), or an error. */
static int next_elem(struct ts_jsonl_parser *p, struct ts_jsonl_lex *lx, size_t n, int *tok)
{
	int t = ts_jsonl_lex_next(lx);
	if (t < 0)
		return lexerr(p, lx);
	if (t == TS_JSONL_ARR_END)
		return 0;
	int rc = grow_samples(p, n);
	if (rc != 0)
		return rc;
	*tok = t;
	return 1;
}

static int parse_values(struct ts_jsonl_parser *p, struct ts_jsonl_lex *lx, size_t *count)
{
	int t = 0, rc = open_array(p, lx, "values");
	size_t n = 0;
	while (rc == 0 && (rc = next_elem(p, lx, n, &t)) == 1) {
		double v;
		if (t == TS_JSONL_NUM) {
			if (ts_fmtnum_parse_double(lx->tok, lx->tok_len, &v) != 0)
				return jerr(p, "value %zu out of range", n);
		} else if (t == TS_JSONL_NULL) {
			v = ts_fmt_normal_nan();
		} else if (t == TS_JSONL_STR) {
			char tmp[16];
			const char *s = lx->tok;
			size_t sl = lx->tok_len;
			if (lx->tok_esc && sl <= sizeof tmp) {
				sl = ts_jsonl_unescape(tmp, lx->tok, lx->tok_len);
				s = tmp;
			}
			if (special_value(s, sl, &v) != 0)
				return jerr(p, "value %zu: unsupported string", n);
		} else {
			return jerr(p, "value %zu: must be a number, null or a special string", n);
		}
		p->samples[n++].v = v;
		rc = 0;
	}
	*count = n;
	return rc;
}

static int parse_timestamps(struct ts_jsonl_parser *p, struct ts_jsonl_lex *lx, size_t *count)
{
	int t = 0, rc = open_array(p, lx, "timestamps");
	size_t n = 0;
	while (rc == 0 && (rc = next_elem(p, lx, n, &t)) == 1) {
		if (t != TS_JSONL_NUM)
			return jerr(p, "timestamp %zu: must be an integer", n);
		rc = ts_fmtnum_parse_int64(lx->tok, lx->tok_len, &p->samples[n].t_ms);
		if (rc != 0)
			return jerr(p, "timestamp %zu: %s", n,
				    rc == TS_ELIMIT ? "out of range" : "must be an integer");
		n++;
	}
	*count = n;
	return rc;
}

static int parse_line(struct ts_jsonl_parser *p, const char *s, size_t n,
		      struct ts_jsonl_series *out)
{
	if (memchr(s, '\\', n) && ts_grow((void **)&p->scratch, &p->scratch_cap, n, 1) != 0)
		return -ENOMEM;
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, s, n);
	int t = ts_jsonl_lex_next(&lx);
	if (t < 0)
		return lexerr(p, &lx);
	if (t != TS_JSONL_OBJ)
		return jerr(p, "a JSON object expected");
	int have_m = 0, have_v = 0, have_t = 0, rc;
	uint32_t n_labels = 0;
	size_t n_values = 0, n_ts = 0;
	for (;;) {
		t = ts_jsonl_lex_next(&lx);
		if (t < 0)
			return lexerr(p, &lx);
		if (t == TS_JSONL_OBJ_END)
			break;
		char key[16];
		size_t kl = 0;
		if (lx.tok_len <= sizeof key)
			kl = ts_jsonl_unescape(key, lx.tok, lx.tok_len);
		if (kl == 6 && memcmp(key, "metric", 6) == 0) {
			if (have_m++)
				return jerr(p, "duplicate \"metric\"");
			rc = parse_metric(p, &lx, &n_labels);
		} else if (kl == 6 && memcmp(key, "values", 6) == 0) {
			if (have_v++)
				return jerr(p, "duplicate \"values\"");
			rc = parse_values(p, &lx, &n_values);
		} else if (kl == 10 && memcmp(key, "timestamps", 10) == 0) {
			if (have_t++)
				return jerr(p, "duplicate \"timestamps\"");
			rc = parse_timestamps(p, &lx, &n_ts);
		} else {
			t = ts_jsonl_lex_next(&lx);
			rc = t < 0 || ts_jsonl_lex_skip(&lx, t) != 0 ? lexerr(p, &lx) : 0;
		}
		if (rc != 0)
			return rc;
	}
	if (ts_jsonl_lex_next(&lx) != TS_JSONL_END)
		return lexerr(p, &lx);
	if (!have_m)
		return jerr(p, "missing \"metric\" object");
	if (n_labels == 0)
		return jerr(p, "\"metric\" has no labels");
	if (!have_v || n_values == 0)
		return jerr(p, "missing \"values\" array");
	if (!have_t || n_ts == 0)
		return jerr(p, "missing \"timestamps\" array");
	if (n_values != n_ts)
		return jerr(p, "%zu values but %zu timestamps", n_values, n_ts);
	int dup = ts_labels_sort(p->labels, n_labels);
	if (dup > 0)
		return jerr(p, "duplicate label name \"%.*s\"",
			    (int)(p->labels[dup].name_len > 64 ? 64 : p->labels[dup].name_len),
			    p->labels[dup].name);
	out->labels = p->labels;
	out->n_labels = n_labels;
	out->samples = p->samples;
	out->n_samples = n_values;
	out->line = p->line;
	return 0;
}

int ts_jsonl_next(struct ts_jsonl_parser *p, struct ts_jsonl_series *s)
{
	while (p->pos < p->len) {
		const char *line = p->buf + p->pos;
		const char *nl = memchr(line, '\n', p->len - p->pos);
		size_t n = nl ? (size_t)(nl - line) : p->len - p->pos;
		p->pos += n + (nl ? 1 : 0);
		p->line++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		size_t k = 0;
		while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
			k++;
		if (k == n)
			continue;
		int rc = parse_line(p, line, n, s);
		if (rc == -ENOMEM) {
			ts_text_oom(p->err, sizeof p->err, p->line);
			p->err_line = p->line;
		}
		return rc == 0 ? 1 : rc;
	}
	return 0;
}

/* ---- export ---- */

size_t ts_jsonl_encode_bound(const struct ts_label *labels, size_t n_labels, size_t n_samples)
{
	/* {"metric":{},"values":[],"timestamps":[]}\n is 44 bytes. A label costs at most
	 * 6 bytes per input byte (\u00XX or \ufffd) plus quotes, ':' and ','. A sample
	 * costs a formatted value or "-Infinity", a timestamp (20) and two commas. */
	size_t b = 64;
	for (size_t i = 0; i < n_labels; i++) {
		size_t l = (size_t)labels[i].name_len + labels[i].value_len;
		if (l > (SIZE_MAX - b) / 6 - 8)
			return SIZE_MAX;
		b += 6 * l + 8;
	}
	size_t per = TS_FMT_DOUBLE_MAX + 21 + 2;
	if (n_samples > (SIZE_MAX - b) / per)
		return SIZE_MAX;
	return b + n_samples * per;
}

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t k = s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
	if (k > n || !ts_utf8_valid(s, k))
		return 0;
	return k;
}

static size_t put_json_string(char *d, const char *sv, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)sv;
	int valid = ts_utf8_valid(s, n);
	size_t o = 0;
	d[o++] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || valid)) {
			d[o++] = (char)c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t k = utf8_seq(s + i, n - i);
			if (k) {
				memcpy(d + o, s + i, k);
				o += k;
				i += k;
			} else {
				memcpy(d + o, "\\ufffd", 6);
				o += 6;
				i++;
			}
			continue;
		}
		d[o++] = '\\';
		switch (c) {
		case '"': d[o++] = '"'; break;
		case '\\': d[o++] = '\\'; break;
		case '\n': d[o++] = 'n'; break;
		case '\r': d[o++] = 'r'; break;
		case '\t': d[o++] = 't'; break;
		case '\b': d[o++] = 'b'; break;
		case '\f': d[o++] = 'f'; break;
		default:
			memcpy(d + o, "u00", 3);
			o += 3;
			d[o++] = hex[c >> 4];
			d[o++] = hex[c & 15];
			break;
		}
		i++;
	}
	d[o++] = '"';
	return o;
}

static size_t put_label(char *d, const struct ts_label *l, int comma)
{
	size_t o = 0;
	if (comma)
		d[o++] = ',';
	o += put_json_string(d + o, l->name, l->name_len);
	d[o++] = ':';
	o += put_json_string(d + o, l->value, l->value_len);
	return o;
}

size_t ts_jsonl_encode(char *dst, const struct ts_label *labels, size_t n_labels,
		       const struct ts_sample *samples, size_t n_samples)
{
	size_t o = 0;
	memcpy(dst, "{\"metric\":{", 11);
	o = 11;
	int first = 1;
	for (size_t i = 0; i < n_labels; i++) {
		if (labels[i].name_len == 8 && memcmp(labels[i].name, "__name__", 8) == 0) {
			o += put_label(dst + o, &labels[i], 0);
			first = 0;
			break;
		}
	}
	for (size_t i = 0; i < n_labels; i++) {
		if (labels[i].name_len == 8 && memcmp(labels[i].name, "__name__", 8) == 0)
			continue;
		o += put_label(dst + o, &labels[i], !first);
		first = 0;
	}
	memcpy(dst + o, "},\"values\":[", 12);
	o += 12;
	for (size_t i = 0; i < n_samples; i++) {
		if (i)
			dst[o++] = ',';
		double v = samples[i].v;
		if (isnan(v)) {
			memcpy(dst + o, "null", 4);
			o += 4;
		} else if (isinf(v)) {
			const char *s = v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
			size_t l = strlen(s);
			memcpy(dst + o, s, l);
			o += l;
		} else {
			char tmp[TS_FMT_DOUBLE_MAX];
			size_t l = ts_fmt_double(tmp, v);
			memcpy(dst + o, tmp, l);
			o += l;
		}
	}
	memcpy(dst + o, "],\"timestamps\":[", 16);
	o += 16;
	for (size_t i = 0; i < n_samples; i++) {
		if (i)
			dst[o++] = ',';
		char tmp[24];
		int l = snprintf(tmp, sizeof tmp, "%lld", (long long)samples[i].t_ms);
		memcpy(dst + o, tmp, (size_t)l);
		o += (size_t)l;
	}
	memcpy(dst + o, "]}\n", 3);
	return o + 3;
}
