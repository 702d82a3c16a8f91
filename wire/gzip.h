/*
 * gzip.h - request body decoding for the ingest handlers and importers: Content-Encoding gzip
 * (and deflate) inflated with a hard output limit, so a compressed bomb costs at most
 * `limit` bytes of memory before it is refused.
 */
#ifndef TS_WIRE_GZIP_H
#define TS_WIRE_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* Inflates a gzip (or zlib) stream src[0..len) into *buf (grown with ts_realloc; *cap
 * tracks its size; reused across calls). Returns 0 with *out_len set, TS_ELIMIT when the
 * output would pass `limit`, TS_ECORRUPT for a bad stream, -ENOMEM. */
int ts_gzip_inflate(const uint8_t *src, size_t len, size_t limit, uint8_t **buf, size_t *cap,
		   size_t *out_len);

#endif
