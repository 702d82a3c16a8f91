/*
 * promql_error.c - how the parser reports errors, in Prometheus' words: the first error
 * is recorded with its byte position (later ones are ignored), tokens are described
 * as Prometheus' Item.desc() does ("identifier \"x\"", "<op:+>", "end of input"),
 * text is quoted as Go's %q, and ts_promql_error_format() prefixes "line:col: parse
 * error: " as Prometheus' ParseErr.Error() does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "query/promql_int.h"
#include "storage/err.h"

void ts__promql_fail(struct parser *p, size_t pos, const char *fmt, ...)
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

void ts__promql_nomem(struct parser *p)
{
	if (p->rc == TS_EINVALID)
		return;
	p->rc = -ENOMEM;
	p->err->pos = 0;
	snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
}

void ts__promql_quote(char *buf, size_t cap, const char *s, size_t n, int max_runes)
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
		ts__promql_quote(q, sizeof(q), ts__promql_tok_text(p), p->tok.len, longer ? 10 : 0);
		snprintf(buf, cap, "%s %s%s", kind, q, longer ? "..." : "");
	} else if (TS_TOK_IS_KEYWORD(t)) {
		snprintf(buf, cap, "<%.*s>", (int)p->tok.len, ts__promql_tok_text(p));
	} else if (TS_TOK_IS_AGGREGATOR(t)) {
		snprintf(buf, cap, "<aggr:%.*s>", (int)p->tok.len, ts__promql_tok_text(p));
	} else if (TS_TOK_IS_OPERATOR(t) && t != TS_TOK_AT) {
		snprintf(buf, cap, "<op:%.*s>", (int)p->tok.len, ts__promql_tok_text(p));
	} else {
		ts__promql_quote(q, sizeof(q), ts__promql_tok_text(p), p->tok.len, 0);
		snprintf(buf, cap, "%s", q);
	}
}

void ts__promql_unexpected(struct parser *p, const char *ctx, const char *exp)
{
	char d[256];
	if (p->tok.type == TS_TOK_ERROR || p->rc)
		return;
	if (!ctx && p->agg_depth > 0)
		ctx = "aggregation";
	tok_desc(p, d, sizeof(d));
	ts__promql_fail(p, p->tok.pos, "unexpected %s%s%s%s%s", d, ctx ? " in " : "",
			ctx ? ctx : "", exp ? ", expected " : "", exp ? exp : "");
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
