/*
 * gzip.h - request body decoding for the ingest handlers and importers: Content-Encoding
 * gzip (and zlib-wrapped deflate) inflated with a hard output limit, so a compressed
 * bomb costs at most `limit` bytes of memory before it is refused.
 *
 * Threading: no shared state; the caller's buffer belongs to one thread at a time.
 */
#ifndef TS_WIRE_GZIP_H
#define TS_WIRE_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* Inflates one gzip (or zlib) stream src[0..len) (borrowed for the call) into *buf, a
 * caller-owned buffer of *cap bytes (NULL and 0 at first) that is grown with
 * ts_realloc, never beyond `limit` bytes, and kept for reuse across calls; free it with
 * ts_free. Returns 0 with *out_len set to the inflated size;
 *   TS_ELIMIT    the output would pass `limit` (or len does not fit 32 bits);
 *   TS_ECORRUPT  a malformed or truncated stream, or bytes after its end (logged once);
 *   -ENOMEM      zlib or the buffer could not allocate (*buf and *cap stay valid).
 * On error *out_len is untouched and the buffer's contents are unspecified. */
int ts_gzip_inflate(const uint8_t *src, size_t len, size_t limit, uint8_t **buf, size_t *cap,
		    size_t *out_len);

#endif
