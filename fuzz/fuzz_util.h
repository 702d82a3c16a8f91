/*
 * fuzz_util.h - the few lines every fuzz target would otherwise copy. Header-only (static
 * inline): each target is linked alone, with replay.c or with libFuzzer.
 *
 * - fz_check(): a failed property is a finding: abort() so that libFuzzer and the
 *   corpus replay report it.
 * - fz_quiet(): decoders log corrupt input (TS_CORRUPT) by design; a fuzzer feeds
 *   nothing else, so logging is turned off once per process.
 * - fz_within(), fz_same(): where a decoded string points, and byte equality.
 * - fz_memdup(), fz_body(): the input as an exact-size heap copy, so ASan flags any read
 *   past its end; fz_body() also lets byte 0 choose a snappy-compressed body.
 */
#ifndef TS_FUZZ_UTIL_H
#define TS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/log.h"
#include "storage/mem.h"
#include "wire/snappy_io.h"

/* Aborts unless ok. */
static inline void fz_check(int ok)
{
	if (!ok)
		abort();
}

/* Turns logging off, once per process. */
static inline void fz_quiet(void)
{
	static int quiet;
	if (!quiet) {
		ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
		quiet = 1;
	}
}

/* 1 if p[0..n) lies inside buf[0..len] (an empty p may point at its end); an empty p of
 * an empty buf may point anywhere. Else 0. */
static inline int fz_within(const void *p, size_t n, const void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;
	if (n == 0 && len == 0)
		return 1;
	return a >= b && a <= b + len && n <= b + len - a;
}

/* 1 if a[0..an) and b[0..bn) hold the same bytes (either may be NULL when empty). */
static inline int fz_same(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* An exact-size malloc() copy of data[0..size) (one byte when size is 0); free() it.
 * NULL on out of memory. */
static inline uint8_t *fz_memdup(const uint8_t *data, size_t size)
{
	uint8_t *d = malloc(size ? size : 1);
	if (d && size)
		memcpy(d, data, size);
	return d;
}

/*
 * The body of a protocol input: byte 0 odd, the rest is one snappy block decompressed
 * (at most 1 MiB); byte 0 even, an exact-size copy of the rest. On 0, *buf (ts_free()
 * it; may be NULL when *len is 0) and *len are the body. Returns ts_snappy_decompress()'s
 * error (negative; nothing to free), or 1 when size is 0 or the copy cannot be allocated
 * (nothing to test).
 */
static inline int fz_body(const uint8_t *data, size_t size, uint8_t **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (size == 0)
		return 1;
	if (data[0] & 1) {
		size_t cap = 0;
		int rc = ts_snappy_decompress(data + 1, size - 1, 1 << 20, buf, &cap, len);
		if (rc != 0) {
			ts_free(*buf);
			*buf = NULL;
		}
		return rc;
	}
	*len = size - 1;
	*buf = ts_malloc(*len ? *len : 1);
	if (!*buf)
		return 1;
	memcpy(*buf, data + 1, *len);
	return 0;
}

#endif
