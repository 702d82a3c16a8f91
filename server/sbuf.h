/*
 * sbuf.h - a growable byte buffer for building responses (JSON, Prometheus text).
 * Appends never fail visibly: on out-of-memory the buffer marks itself failed, further
 * appends do nothing, and the caller checks once at the end (ts_sbuf_failed, or a
 * NULL from ts_sbuf_take). Sources passed to appends are borrowed for the call.
 *
 * Threading: a buffer belongs to one thread at a time.
 */
#ifndef TS_SERVER_SBUF_H
#define TS_SERVER_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct ts_sbuf {
	char *p; /* owned; NUL-terminated when not failed and not empty */
	size_t len, cap;
	int failed;
};

/* Zeroes b (no allocation). Cannot fail. */
void ts_sbuf_init(struct ts_sbuf *b);
/* Frees b's memory and zeroes it (a failed buffer becomes usable again). */
void ts_sbuf_fini(struct ts_sbuf *b);
/* Takes the bytes (NUL-terminated, *len without the NUL; the caller frees them with
 * ts_free); b is left zeroed. NULL, with b freed and zeroed, if b failed or cannot
 * hold the NUL. */
char *ts_sbuf_take(struct ts_sbuf *b, size_t *len);
/* Appends p[0..n); s up to its NUL; printf-style text (any length). */
void ts_sbuf_add(struct ts_sbuf *b, const void *p, size_t n);
void ts_sbuf_str(struct ts_sbuf *b, const char *s);
void ts_sbuf_printf(struct ts_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0..n) as a JSON string literal, quotes included; invalid UTF-8 bytes
 * become U+FFFD, control characters \n, \r, \t or \u00XX. */
void ts_sbuf_json_str(struct ts_sbuf *b, const char *s, size_t n);
/* Appends s[0..n) as a Prometheus text-format label value (escapes \ " and newline),
 * without quotes. */
void ts_sbuf_prom_escape(struct ts_sbuf *b, const char *s, size_t n);
/* Non-zero once an append could not allocate. */
int ts_sbuf_failed(const struct ts_sbuf *b);

#endif
