/*
 * sbuf.h - a growable byte buffer for building responses (JSON, Prometheus text).
 * Appends never fail visibly: on out-of-memory the buffer marks itself failed, further
 * appends do nothing, and the caller checks ts_sbuf_failed() once at the end.
 */
#ifndef TS_SERVER_SBUF_H
#define TS_SERVER_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct ts_sbuf {
	char *p; /* owned; NUL-terminated when not failed */
	size_t len, cap;
	int failed;
};

void ts_sbuf_init(struct ts_sbuf *b);
void ts_sbuf_fini(struct ts_sbuf *b);
/* Takes the buffer (caller frees with ts_free); b is left empty. NULL if failed. */
char *ts_sbuf_take(struct ts_sbuf *b, size_t *len);
void ts_sbuf_add(struct ts_sbuf *b, const void *p, size_t n);
void ts_sbuf_str(struct ts_sbuf *b, const char *s);
void ts_sbuf_printf(struct ts_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
void ts_sbuf_json_str(struct ts_sbuf *b, const char *s, size_t n);
/* A Prometheus text-format label value (escapes \ " and newline), no quotes. */
void ts_sbuf_prom_escape(struct ts_sbuf *b, const char *s, size_t n);
int ts_sbuf_failed(const struct ts_sbuf *b);

#endif
