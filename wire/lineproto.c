/*
 * lineproto.c - InfluxDB line protocol decoder (grammar and semantics in lineproto.h)
 * and the point -> series mapper.
 *
 * Shape: ts_lp_next() decodes one line into the parser's reusable arrays. Tokens
 * without escapes alias the body (zero copy); escaped ones are unescaped into the
 * scratch buffer. Invariants:
 *   - the body is never read at or past len (no NUL terminator is assumed);
 *   - within one line the scratch buffer never moves, so pointers into it stay valid:
 *     before unescaping a token the buffer must have room for it; when it does not,
 *     it is grown to at least the raw length of the line so far (unescaped text is
 *     never longer than raw text) and the line is decoded again from its start. A
 *     line therefore restarts at most O(log) times, and only while the buffer is
 *     still warming up;
 *   - every token handed out is valid UTF-8 and, except string values, free of
 *     control characters;
 *   - on a syntax error pos is left past the bad line (the Go decoder's recovery),
 *     so decoding can continue.
 * Byte classes come from one table (generated; bit meanings at its definition).
 */
#include "wire/lineproto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/fmtnum.h"
#include "wire/text.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"
#include "storage/err.h"
#include "storage/mem.h"

/* Byte classes. C_*: may appear unescaped in a token of that kind; E_*: may follow a
 * backslash as an escape in that kind of token.
 *   C_MEAS    measurement: not ',' ' ' or a control character (0x00-0x1F, 0x7F)
 *   C_TAG     tag key, tag value, field key: not ',' '=' ' ' or a control character
 *   C_FVAL    unquoted field value: not ',' ' ' CR LF
 *   E_MEAS    ' ' ','            E_TAG  ',' '=' ' '
 *   E_STR     '\\' '"' 'n' 'r' 't' (string values)
 *   C_TIME    '-' '0'..'9'
 *   C_COMMENT comment text: not a control character
 *   C_STR     string value: not '"' */
enum {
	C_MEAS = 1 << 0,
	C_TAG = 1 << 1,
	C_FVAL = 1 << 2,
	E_MEAS = 1 << 3,
	E_TAG = 1 << 4,
	E_STR = 1 << 5,
	C_TIME = 1 << 6,
	C_COMMENT = 1 << 7,
	C_STR = 1 << 8,
};

static const uint16_t ctab[256] = {
	0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x100, 0x104, 0x104,
	0x100, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x104,
	0x104, 0x104, 0x104, 0x104, 0x104, 0x104, 0x198, 0x187, 0x0a7, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x198, 0x1c7, 0x187, 0x187, 0x1c7, 0x1c7, 0x1c7, 0x1c7,
	0x1c7, 0x1c7, 0x1c7, 0x1c7, 0x1c7, 0x1c7, 0x187, 0x187, 0x187, 0x195, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x1a7, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x1a7, 0x187, 0x187, 0x187, 0x1a7, 0x187, 0x1a7,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x104, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
	0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187, 0x187,
};

/* ts_lp_next's internal "grow the scratch buffer and decode this line again". */
#define RESTART TS_TEXT_RESTART

static const int64_t prec_ns[] = {
	[TS_LP_NS] = 1,
	[TS_LP_US] = 1000,
	[TS_LP_MS] = 1000000,
	[TS_LP_S] = 1000000000,
	[TS_LP_M] = 60LL * 1000000000,
	[TS_LP_H] = 3600LL * 1000000000,
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int ts_lp_precision_parse(const char *s, size_t len, enum ts_lp_precision *out)
{
	static const struct {
		const char *name;
		enum ts_lp_precision prec;
	} names[] = {
		{ "", TS_LP_NS },   { "n", TS_LP_NS },	{ "ns", TS_LP_NS },
		{ "u", TS_LP_US },  { "us", TS_LP_US }, { "\xc2\xb5s", TS_LP_US },
		{ "ms", TS_LP_MS }, { "s", TS_LP_S },	{ "m", TS_LP_M },
		{ "h", TS_LP_H },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
			*out = names[i].prec;
			return 0;
		}
	}
	return TS_EINVALID;
}

void ts_lp_init(struct ts_lp_parser *p, const char *body, size_t len, enum ts_lp_precision prec,
		int64_t default_ns)
{
	memset(p, 0, sizeof *p);
	p->buf = body;
	p->len = len;
	p->line = 1;
	if ((unsigned)prec > TS_LP_H)
		prec = TS_LP_NS;
	p->mult_ns = prec_ns[prec];
	/* Go's time.Truncate floors toward the past relative to year 1, an exact number
	 * of hours before the epoch, so flooring relative to the epoch is the same. */
	p->default_ns = floor_div(default_ns, p->mult_ns) * p->mult_ns;
}

void ts_lp_fini(struct ts_lp_parser *p)
{
	if (!p)
		return;
	ts_free(p->tags);
	ts_free(p->fields);
	ts_free(p->scratch);
	p->tags = NULL;
	p->fields = NULL;
	p->scratch = NULL;
	p->tags_cap = p->fields_cap = 0;
	p->scratch_cap = p->scratch_len = 0;
}

/* Records a syntax error at body offset `at` and returns TS_EINVALID. The message is
 * "line L col C: " + the formatted text; a trailing %T in the format is not used -
 * tokens are appended with err_tok() instead. */
static int lp_err(struct ts_lp_parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int lp_err(struct ts_lp_parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ts_text_verr(p->err, sizeof p->err, p->line,
		     at >= p->line_start ? at - p->line_start + 1 : 1, fmt, ap);
	va_end(ap);
	p->err_line = p->line;
	return TS_EINVALID;
}

/* Appends " " + the token, quoted and shown printably (at most 40 bytes of it), to the
 * current error message. */
static int err_tok(struct ts_lp_parser *p, const char *s, size_t n)
{
	size_t o = strlen(p->err);
	if (o + 10 < sizeof p->err) {
		p->err[o++] = ' ';
		p->err[o++] = '"';
		o += ts_text_escape(p->err + o, sizeof p->err - o - 1, s, n, 40);
		p->err[o++] = '"';
		p->err[o] = '\0';
	}
	return TS_EINVALID;
}

/* Printable name of the byte at body offset i (or "end of input"). */
static const char *at_desc(const struct ts_lp_parser *p, size_t i, char tmp[16])
{
	if (i >= p->len)
		return "end of input";
	unsigned char c = (unsigned char)p->buf[i];
	if (c >= 0x21 && c < 0x7f)
		snprintf(tmp, 16, "'%c'", c);
	else if (c == ' ')
		snprintf(tmp, 16, "space");
	else
		snprintf(tmp, 16, "byte 0x%02x", c);
	return tmp;
}

struct tok {
	const char *s;
	size_t len;
};

/* Grows the scratch buffer so the current line fits, for a restart (text.h). */
static int grow_scratch(struct ts_lp_parser *p, size_t line_begin, size_t upto)
{
	return ts_text_scratch_grow(&p->scratch, &p->scratch_cap, upto - line_begin + 64);
}

/*
 * Takes a token at p->pos whose unescaped bytes are in class `cls`, where a backslash
 * followed by a byte of class `esc` is an escape (for string values, E_STR bytes map
 * n/r/t to LF/CR/TAB); any other backslash is literal. Leaves p->pos at the first byte
 * not taken. Returns 0, RESTART (scratch grown; decode the line again), -ENOMEM, or
 * TS_EINVALID for invalid UTF-8.
 */
static int take_esc(struct ts_lp_parser *p, size_t line_begin, unsigned cls, unsigned esc,
		    struct tok *t)
{
	const unsigned char *b = (const unsigned char *)p->buf;
	size_t i = p->pos, end = p->len, start = p->pos;
	unsigned high = 0;
	int escaped = 0;
	while (i < end) {
		unsigned c = b[i];
		if (c == '\\') {
			if (i + 1 < end && (ctab[b[i + 1]] & esc)) {
				escaped = 1;
				i += 2;
			} else {
				i++;
			}
			continue;
		}
		if (!(ctab[c] & cls))
			break;
		high |= c;
		i++;
	}
	size_t raw_len = i - start;
	if (cls == C_STR) {
		/* String values may span lines; keep line numbers right. */
		const char *nl = memchr(b + start, '\n', raw_len);
		while (nl) {
			p->line++;
			p->line_start = (size_t)(nl - p->buf) + 1;
			nl = memchr(nl + 1, '\n', (size_t)(p->buf + i - nl - 1));
		}
	}
	p->pos = i;
	t->s = p->buf + start;
	t->len = raw_len;
	if (escaped) {
		if (p->scratch_cap - p->scratch_len < raw_len)
			return grow_scratch(p, line_begin, i);
		char *d = p->scratch + p->scratch_len;
		size_t o = 0;
		for (size_t k = start; k < i; k++) {
			unsigned char c = b[k];
			if (c == '\\' && k + 1 < i && (ctab[b[k + 1]] & esc)) {
				unsigned char n = b[++k];
				if (esc == E_STR)
					c = n == 'n' ? '\n' : n == 'r' ? '\r' : n == 't' ? '\t' : n;
				else
					c = n;
			}
			d[o++] = (char)c;
		}
		t->s = d;
		t->len = o;
		p->scratch_len += o;
	}
	if ((high & 0x80) && !ts_utf8_valid(t->s, t->len)) {
		lp_err(p, start, "invalid UTF-8 in token");
		return err_tok(p, t->s, t->len);
	}
	if (t->len > UINT32_MAX)
		return lp_err(p, start, "token longer than 4 GiB");
	return 0;
}

/* Takes bytes of class cls without escapes. */
static struct tok take(struct ts_lp_parser *p, unsigned cls)
{
	size_t i = p->pos;
	while (i < p->len && (ctab[(unsigned char)p->buf[i]] & cls))
		i++;
	struct tok t = { p->buf + p->pos, i - p->pos };
	p->pos = i;
	return t;
}

static void skip_spaces(struct ts_lp_parser *p)
{
	while (p->pos < p->len && p->buf[p->pos] == ' ')
		p->pos++;
}

/* Consumes an end of line: LF, CRLF, CR at the end of input, or the end of input. */
static int take_eol(struct ts_lp_parser *p)
{
	if (p->pos >= p->len)
		return 1;
	char c = p->buf[p->pos];
	if (c == '\n') {
		p->pos++;
		p->line++;
		p->line_start = p->pos;
		return 1;
	}
	if (c == '\r') {
		if (p->pos + 1 >= p->len) {
			p->pos++;
			return 1;
		}
		if (p->buf[p->pos + 1] == '\n') {
			p->pos += 2;
			p->line++;
			p->line_start = p->pos;
			return 1;
		}
	}
	return 0;
}

/* Skips blank lines, lines of spaces and comments. A comment with a control
 * character is left in place: the measurement rule then rejects the line. */
static void skip_empty_lines(struct ts_lp_parser *p)
{
	for (;;) {
		size_t start = p->pos;
		skip_spaces(p);
		if (p->pos >= p->len)
			return;
		switch (p->buf[p->pos]) {
		case '#':
			take(p, C_COMMENT);
			if (!take_eol(p)) {
				p->pos = start;
				return;
			}
			break;
		case '\n':
			p->pos++;
			p->line++;
			p->line_start = p->pos;
			break;
		case '\r':
			if (!take_eol(p))
				return;
			break;
		default: return;
		}
	}
}

static int is_ws(size_t pos, const struct ts_lp_parser *p)
{
	char c = p->buf[pos];
	return c == ' ' || c == '\r' || c == '\n';
}

/* After a measurement or tag value: a comma must be followed by a tag key. */
static int tag_comma(struct ts_lp_parser *p)
{
	if (p->pos >= p->len || p->buf[p->pos] != ',')
		return 0;
	p->pos++;
	if (p->pos >= p->len)
		return lp_err(p, p->pos, "expected tag key after comma, got end of input");
	if (is_ws(p->pos, p))
		return lp_err(p, p->pos, "expected tag key after comma, got white space");
	return 0;
}

static int push_tag(struct ts_lp_parser *p, uint32_t n, struct tok k, struct tok v)
{
	int rc = ts_text_put_label(&p->tags, &p->tags_cap, n, k.s, k.len, v.s, v.len);
	return rc == TS_ELIMIT ? lp_err(p, p->pos, "too many tags") : rc;
}

static int push_field(struct ts_lp_parser *p, uint32_t n)
{
	if (n == UINT32_MAX)
		return lp_err(p, p->pos, "too many fields");
	return ts_grow((void **)&p->fields, &p->fields_cap, (size_t)n + 1, sizeof *p->fields);
}

static int parse_bool(struct tok t, int *out)
{
	static const char *const yes[] = { "t", "T", "true", "True", "TRUE" };
	static const char *const no[] = { "f", "F", "false", "False", "FALSE" };
	for (int i = 0; i < 5; i++) {
		if (strlen(yes[i]) == t.len && memcmp(yes[i], t.s, t.len) == 0) {
			*out = 1;
			return 0;
		}
		if (strlen(no[i]) == t.len && memcmp(no[i], t.s, t.len) == 0) {
			*out = 0;
			return 0;
		}
	}
	return TS_EINVALID;
}

/* Parses an unquoted numeric field value (type suffix included) into f. */
static int parse_number(struct ts_lp_parser *p, size_t at, struct tok v, struct ts_lp_field *f)
{
	char last = v.s[v.len - 1];
	int rc;
	if (last == 'i') {
		f->type = TS_LP_INT;
		rc = ts_fmtnum_parse_int64(v.s, v.len - 1, &f->v.i);
	} else if (last == 'u') {
		f->type = TS_LP_UINT;
		rc = ts_fmtnum_parse_uint64(v.s, v.len - 1, &f->v.u);
	} else {
		f->type = TS_LP_FLOAT;
		rc = ts_fmtnum_parse_double(v.s, v.len, &f->v.f);
	}
	if (rc == 0)
		return 0;
	static const char *const kind[] = { "float", "integer", "unsigned integer" };
	lp_err(p, at, "%s %s value for field", rc == TS_ELIMIT ? "out of range" : "invalid",
	       kind[f->type]);
	err_tok(p, f->key, f->key_len);
	return err_tok(p, v.s, v.len);
}

/* Decodes the fields section; p->pos is at the first field key. */
static int parse_fields(struct ts_lp_parser *p, size_t line_begin, uint32_t *n_fields, int *at_eol)
{
	uint32_t n = 0;
	char tmp[16];
	for (;;) {
		struct tok k;
		size_t kpos = p->pos;
		int rc = take_esc(p, line_begin, C_TAG, E_TAG, &k);
		if (rc != 0)
			return rc;
		if (k.len == 0) {
			if (p->pos >= p->len)
				return lp_err(p, kpos, "expected field key but none found");
			return lp_err(p, kpos, "invalid character %s at start of field key",
				      at_desc(p, p->pos, tmp));
		}
		if (p->pos >= p->len || p->buf[p->pos] != '=') {
			lp_err(p, p->pos, "want '=' after field key, found %s",
			       at_desc(p, p->pos, tmp));
			return err_tok(p, k.s, k.len);
		}
		p->pos++;
		if ((rc = push_field(p, n)) != 0)
			return rc;
		struct ts_lp_field *f = &p->fields[n];
		memset(f, 0, sizeof *f);
		f->key = k.s;
		f->key_len = (uint32_t)k.len;
		if (p->pos >= p->len) {
			lp_err(p, p->pos, "expected value for field, found end of input");
			return err_tok(p, k.s, k.len);
		}
		size_t vpos = p->pos;
		char c = p->buf[p->pos];
		if (c == '"') {
			p->pos++;
			struct tok s;
			if ((rc = take_esc(p, line_begin, C_STR, E_STR, &s)) != 0)
				return rc;
			if (p->pos >= p->len) {
				lp_err(p, vpos, "expected closing quote for string field");
				return err_tok(p, k.s, k.len);
			}
			p->pos++;
			f->type = TS_LP_STRING;
			f->str = s.s;
			f->str_len = (uint32_t)s.len;
		} else if (c == 't' || c == 'T' || c == 'f' || c == 'F') {
			struct tok v = take(p, C_FVAL);
			f->type = TS_LP_BOOL;
			if (parse_bool(v, &f->v.b) != 0) {
				lp_err(p, vpos, "invalid bool value");
				return err_tok(p, v.s, v.len);
			}
		} else if (c == '-' || c == '.' || (c >= '0' && c <= '9')) {
			struct tok v = take(p, C_FVAL);
			if ((rc = parse_number(p, vpos, v, f)) != 0)
				return rc;
		} else if (c == ' ' || c == ',') {
			lp_err(p, vpos, "missing value for field");
			return err_tok(p, k.s, k.len);
		} else {
			struct tok v = take(p, C_FVAL);
			lp_err(p, vpos, "value of unrecognized type for field");
			err_tok(p, k.s, k.len);
			return err_tok(p, v.s, v.len);
		}
		n++;
		if (p->pos >= p->len) {
			*at_eol = 1;
			break;
		}
		c = p->buf[p->pos];
		if (c == ',') {
			p->pos++;
			continue;
		}
		if (!is_ws(p->pos, p)) {
			lp_err(p, p->pos, "unexpected character %s after field",
			       at_desc(p, p->pos, tmp));
			return err_tok(p, k.s, k.len);
		}
		skip_spaces(p);
		*at_eol = take_eol(p);
		break;
	}
	*n_fields = n;
	return 0;
}

/* Decodes the optional timestamp and the end of the line. */
static int parse_time(struct ts_lp_parser *p, int64_t *t_ns)
{
	size_t tpos = p->pos;
	struct tok t = take(p, C_TIME);
	if (p->pos < p->len && !is_ws(p->pos, p)) {
		/* Absorb the rest of the token so the message shows it. */
		while (p->pos < p->len && !is_ws(p->pos, p))
			p->pos++;
		lp_err(p, tpos, "invalid timestamp");
		return err_tok(p, p->buf + tpos, p->pos - tpos);
	}
	if (t.len == 0) {
		*t_ns = p->default_ns;
	} else {
		int64_t v;
		int rc = ts_fmtnum_parse_int64(t.s, t.len, &v);
		if (rc == 0 && t.s[0] == '+')
			rc = TS_EINVALID;
		if (rc == 0 && __builtin_mul_overflow(v, p->mult_ns, t_ns))
			rc = TS_ELIMIT;
		if (rc != 0) {
			lp_err(p, tpos, "%s timestamp",
			       rc == TS_ELIMIT ? "out of range" : "invalid");
			return err_tok(p, t.s, t.len);
		}
	}
	skip_spaces(p);
	if (!take_eol(p)) {
		size_t xpos = p->pos;
		while (p->pos < p->len && p->buf[p->pos] != '\n' && p->buf[p->pos] != '\r')
			p->pos++;
		lp_err(p, xpos, "unexpected text after timestamp");
		return err_tok(p, p->buf + xpos, p->pos - xpos);
	}
	return 0;
}

/* Decodes one line starting at p->pos (not at the end, not blank). */
static int parse_line(struct ts_lp_parser *p, struct ts_lp_point *pt)
{
	size_t line_begin = p->pos;
	char tmp[16];
	int rc;
	p->scratch_len = 0;
	pt->line = p->line;

	struct tok m;
	if ((rc = take_esc(p, line_begin, C_MEAS, E_MEAS, &m)) != 0)
		return rc;
	if (m.len == 0) {
		if (p->pos >= p->len)
			return lp_err(p, line_begin, "no measurement name found");
		return lp_err(p, line_begin, "invalid character %s at start of measurement name",
			      at_desc(p, p->pos, tmp));
	}
	if (m.s[0] == '#')
		return lp_err(p, line_begin, "invalid character in comment line");
	if ((rc = tag_comma(p)) != 0)
		return rc;

	uint32_t n_tags = 0;
	size_t key_end = 0;
	for (;;) {
		if (p->pos < p->len && p->buf[p->pos] == ' ') {
			key_end = p->pos;
			skip_spaces(p);
			break;
		}
		size_t kpos = p->pos;
		struct tok k, v;
		if ((rc = take_esc(p, line_begin, C_TAG, E_TAG, &k)) != 0)
			return rc;
		if (k.len == 0 || p->pos >= p->len || p->buf[p->pos] != '=') {
			if (k.len == 0 && p->pos < p->len && p->buf[p->pos] == '=')
				return lp_err(p, kpos, "empty tag key");
			if (k.len == 0)
				return lp_err(p, kpos, "expected tag key or field but found %s",
					      at_desc(p, p->pos, tmp));
			lp_err(p, p->pos, "expected '=' after tag key but got %s",
			       at_desc(p, p->pos, tmp));
			return err_tok(p, k.s, k.len);
		}
		p->pos++;
		size_t vpos = p->pos;
		if ((rc = take_esc(p, line_begin, C_TAG, E_TAG, &v)) != 0)
			return rc;
		if (v.len == 0) {
			lp_err(p, vpos, "expected tag value after tag key but none found");
			return err_tok(p, k.s, k.len);
		}
		if ((rc = push_tag(p, n_tags, k, v)) != 0)
			return rc;
		n_tags++;
		if (p->pos >= p->len)
			break; /* the fields section reports the missing field */
		if ((rc = tag_comma(p)) != 0)
			return rc;
	}
	int dup = ts_labels_sort(p->tags, n_tags);
	if (dup > 0) {
		lp_err(p, line_begin, "duplicate tag key");
		return err_tok(p, p->tags[dup].name, p->tags[dup].name_len);
	}

	uint32_t n_fields = 0;
	int at_eol = 0;
	if ((rc = parse_fields(p, line_begin, &n_fields, &at_eol)) != 0)
		return rc;
	int64_t t_ns = p->default_ns;
	if (!at_eol && (rc = parse_time(p, &t_ns)) != 0)
		return rc;

	pt->measurement = m.s;
	pt->measurement_len = (uint32_t)m.len;
	pt->tags = p->tags;
	pt->n_tags = n_tags;
	pt->fields = p->fields;
	pt->n_fields = n_fields;
	pt->t_ns = t_ns;
	pt->t_ms = floor_div(t_ns, 1000000);
	pt->key = p->buf + line_begin;
	pt->key_len = key_end > line_begin ? (uint32_t)(key_end - line_begin) : 0;
	return 0;
}

/* Error recovery: drop the rest of the current line. */
static void skip_line(struct ts_lp_parser *p)
{
	if (p->pos >= p->len)
		return;
	const char *nl = memchr(p->buf + p->pos, '\n', p->len - p->pos);
	if (!nl) {
		p->pos = p->len;
		return;
	}
	p->pos = (size_t)(nl - p->buf) + 1;
	p->line++;
	p->line_start = p->pos;
}

int ts_lp_next(struct ts_lp_parser *p, struct ts_lp_point *pt)
{
	skip_empty_lines(p);
	if (p->pos >= p->len)
		return 0;
	size_t pos0 = p->pos, ls0 = p->line_start;
	uint64_t line0 = p->line;
	int rc;
	while ((rc = parse_line(p, pt)) == RESTART) {
		p->pos = pos0;
		p->line = line0;
		p->line_start = ls0;
	}
	if (rc == 0)
		return 1;
	if (rc == -ENOMEM) {
		p->err_line = p->line;
		ts_text_oom(p->err, sizeof p->err, p->line);
	}
	skip_line(p);
	return rc;
}

void ts_lp_mapper_init(struct ts_lp_mapper *m)
{
	memset(m, 0, sizeof *m);
}

void ts_lp_mapper_fini(struct ts_lp_mapper *m)
{
	if (!m)
		return;
	ts_free(m->series);
	ts_free(m->labels);
	ts_free(m->names);
	memset(m, 0, sizeof *m);
}

static int name_is(const struct ts_label *l, const char *s, size_t n)
{
	return l->name_len == n && memcmp(l->name, s, n) == 0;
}

int ts_lp_field_value(const struct ts_lp_field *f, double *v)
{
	switch (f->type) {
	case TS_LP_FLOAT: *v = f->v.f; return 1;
	case TS_LP_INT: *v = (double)f->v.i; return 1;
	case TS_LP_UINT: *v = (double)f->v.u; return 1;
	case TS_LP_BOOL: *v = f->v.b ? 1.0 : 0.0; return 1;
	default: return 0;
	}
}

int ts_lp_map(struct ts_lp_mapper *m, const struct ts_lp_point *pt, const char *db, size_t db_len)
{
	m->n_series = 0;
	m->n_skipped = 0;
	uint32_t n_num = 0, n_skipped = 0;
	size_t names_len = 0;
	for (uint32_t i = 0; i < pt->n_fields; i++) {
		const struct ts_lp_field *f = &pt->fields[i];
		if (f->type == TS_LP_STRING) {
			n_skipped++;
			continue;
		}
		size_t nl = (size_t)pt->measurement_len + 1 + f->key_len;
		if (nl > UINT32_MAX)
			return TS_ELIMIT;
		n_num++;
		names_len += nl;
	}
	int has_db = 0;
	size_t n_base = 0;
	for (uint32_t i = 0; i < pt->n_tags; i++) {
		if (name_is(&pt->tags[i], "__name__", 8))
			continue;
		has_db |= name_is(&pt->tags[i], "db", 2);
		n_base++;
	}
	if (!has_db && db_len > 0) {
		if (db_len > UINT32_MAX)
			return TS_ELIMIT;
		n_base++;
	}
	size_t per = n_base + 1;
	if (per > UINT32_MAX || (n_num && per > SIZE_MAX / sizeof(struct ts_label) / n_num))
		return TS_ELIMIT;

	/* Grow everything first so a failure leaves no half-built output. */
	if (ts_grow((void **)&m->series, &m->series_cap, n_num, sizeof *m->series) ||
	    ts_grow((void **)&m->labels, &m->labels_cap, per * n_num, sizeof *m->labels) ||
	    ts_grow((void **)&m->names, &m->names_cap, names_len, 1))
		return -ENOMEM;
	m->n_skipped = n_skipped;
	if (n_num == 0)
		return 0;

	/* The label set shared by all fields, with a __name__ slot to fill per field. */
	struct ts_label *base = m->labels;
	size_t k = 0;
	for (uint32_t i = 0; i < pt->n_tags; i++)
		if (!name_is(&pt->tags[i], "__name__", 8))
			base[k++] = pt->tags[i];
	if (!has_db && db_len > 0)
		base[k++] = (struct ts_label){
			.name = "db", .name_len = 2, .value = db, .value_len = (uint32_t)db_len
		};
	base[k++] = (struct ts_label){ .name = "__name__", .name_len = 8 };
	ts_labels_sort(base, k);
	size_t name_at = 0;
	while (!(base[name_at].name_len == 8 && base[name_at].value == NULL &&
		 memcmp(base[name_at].name, "__name__", 8) == 0))
		name_at++;

	char *w = m->names;
	uint32_t s = 0;
	for (uint32_t i = 0; i < pt->n_fields; i++) {
		const struct ts_lp_field *f = &pt->fields[i];
		double v;
		if (!ts_lp_field_value(f, &v))
			continue;
		struct ts_label *l = m->labels + (size_t)s * per;
		if (s > 0)
			memcpy(l, base, per * sizeof *l);
		size_t nl = (size_t)pt->measurement_len + 1 + f->key_len;
		memcpy(w, pt->measurement, pt->measurement_len);
		w[pt->measurement_len] = '_';
		memcpy(w + pt->measurement_len + 1, f->key, f->key_len);
		l[name_at].value = w;
		l[name_at].value_len = (uint32_t)nl;
		w += nl;
		m->series[s] = (struct ts_lp_series){ .labels = l,
						      .n_labels = (uint32_t)per,
						      .sample = { .t_ms = pt->t_ms, .v = v } };
		s++;
	}
	m->n_series = s;
	return 0;
}
