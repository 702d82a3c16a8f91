/*
 * sbuf.c - growable response buffer with JSON and Prometheus-text escaping.
 */
#include "server/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "storage/mem.h"
#include "tsdb/utf8.h"

void ts_sbuf_init(struct ts_sbuf *b)
{
	memset(b, 0, sizeof *b);
}

void ts_sbuf_fini(struct ts_sbuf *b)
{
	ts_free(b->p);
	memset(b, 0, sizeof *b);
}

static int reserve(struct ts_sbuf *b, size_t more)
{
	if (b->failed)
		return -1;
	size_t need = b->len + more + 1;
	if (need <= b->cap && need > b->len)
		return 0; /* the common case, without a call */
	if (need < b->len || ts_grow((void **)&b->p, &b->cap, need < 256 ? 256 : need, 1) != 0) {
		b->failed = 1;
		return -1;
	}
	return 0;
}

char *ts_sbuf_take(struct ts_sbuf *b, size_t *len)
{
	if (b->failed || reserve(b, 0)) {
		ts_sbuf_fini(b);
		return NULL;
	}
	char *p = b->p;
	*len = b->len;
	memset(b, 0, sizeof *b);
	return p;
}

void ts_sbuf_add(struct ts_sbuf *b, const void *p, size_t n)
{
	if (reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

void ts_sbuf_str(struct ts_sbuf *b, const char *s)
{
	ts_sbuf_add(b, s, strlen(s));
}

void ts_sbuf_printf(struct ts_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[512];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		ts_sbuf_add(b, tmp, (size_t)n);
		return;
	}
	if (reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void ts_sbuf_json_str(struct ts_sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	ts_sbuf_add(b, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		const char *rep = NULL;
		char u[6];
		size_t skip = 1;
		if (c == '"')
			rep = "\\\"";
		else if (c == '\\')
			rep = "\\\\";
		else if (c == '\n')
			rep = "\\n";
		else if (c == '\r')
			rep = "\\r";
		else if (c == '\t')
			rep = "\\t";
		else if (c < 0x20) {
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			ts_sbuf_add(b, s + start, i - start);
			ts_sbuf_add(b, u, 6);
			start = ++i;
			continue;
		} else if (c >= 0x80) {
			/* Find this UTF-8 sequence's length and check it. */
			size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
			if (len > n - i || !ts_utf8_valid(s + i, len))
				rep = "\xef\xbf\xbd";
			else
				skip = len;
			if (!rep) {
				i += skip;
				continue;
			}
		}
		if (rep) {
			ts_sbuf_add(b, s + start, i - start);
			ts_sbuf_str(b, rep);
			i += skip;
			start = i;
			continue;
		}
		i++;
	}
	ts_sbuf_add(b, s + start, n - start);
	ts_sbuf_add(b, "\"", 1);
}

void ts_sbuf_prom_escape(struct ts_sbuf *b, const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep = s[i] == '\\'	 ? "\\\\"
				  : s[i] == '"'	 ? "\\\""
				  : s[i] == '\n' ? "\\n"
						 : NULL;
		if (!rep)
			continue;
		ts_sbuf_add(b, s + start, i - start);
		ts_sbuf_str(b, rep);
		start = i + 1;
	}
	ts_sbuf_add(b, s + start, n - start);
}

int ts_sbuf_failed(const struct ts_sbuf *b)
{
	return b->failed;
}
