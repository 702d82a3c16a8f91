/*
 * gzip.c - gzip/zlib inflation with an output limit (zlib's inflate, window bits 15+32
 * so both gzip and zlib headers are accepted). Output grows geometrically up to limit.
 */
#include "wire/gzip.h"

#include <errno.h>
#include <zlib.h>

#include "storage/err.h"
#include "storage/mem.h"

int ts_gzip_inflate(const uint8_t *src, size_t len, size_t limit, uint8_t **buf, size_t *cap,
		    size_t *out_len)
{
	z_stream z = { 0 };
	if (len > UINT32_MAX)
		return TS_ELIMIT;
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)(uintptr_t)src;
	z.avail_in = (uInt)len;
	size_t out = 0;
	int rc = 0;
	for (;;) {
		if (out == *cap) {
			/* Not ts_grow: growth is clamped to the limit, so a bomb costs at most
			 * `limit` bytes (ts_grow would round up past it). */
			if (*cap >= limit) {
				rc = TS_ELIMIT;
				break;
			}
			size_t ncap = *cap ? *cap * 2 : 64 * 1024;
			if (ncap > limit)
				ncap = limit;
			uint8_t *nb = ts_realloc(*buf, ncap);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			*buf = nb;
			*cap = ncap;
		}
		z.next_out = *buf + out;
		z.avail_out = (uInt)(*cap - out > UINT32_MAX ? UINT32_MAX : *cap - out);
		uInt before = z.avail_out;
		int zr = inflate(&z, Z_NO_FLUSH);
		out += before - z.avail_out;
		if (zr == Z_STREAM_END) {
			/* Trailing bytes after the stream are not gzip members we read: reject. */
			if (z.avail_in != 0)
				rc = TS_CORRUPT();
			break;
		}
		if (zr == Z_BUF_ERROR && z.avail_out != 0) {
			rc = TS_CORRUPT(); /* input ended before the stream did */
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			rc = zr == Z_MEM_ERROR ? -ENOMEM : TS_CORRUPT();
			break;
		}
	}
	inflateEnd(&z);
	if (rc == 0)
		*out_len = out;
	return rc;
}
