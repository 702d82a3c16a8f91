/*
 * fuzz_gzip.c - gzip/zlib inflation with an output limit (wire/gzip.c, ts_gzip_inflate)
 * on arbitrary bytes, with the output buffer reused across inputs as an ingest context
 * reuses it.
 * Properties: the result is 0, TS_ELIMIT, TS_ECORRUPT or -ENOMEM; the buffer never
 * grows past the limit; a stream that inflates, deflated again by zlib and inflated by
 * us once more, gives the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "wire/gzip.h"
#include "fuzz_util.h"

#define LIMIT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	static size_t cap;
	fz_quiet();
	uint8_t *in = fz_memdup(data, size); /* exact size: ASan sees any overread */
	if (!in)
		return 0;
	size_t out_len = 0;
	int rc = ts_gzip_inflate(in, size, LIMIT, &buf, &cap, &out_len);
	free(in);
	fz_check(rc == 0 || rc == TS_ELIMIT || rc == TS_ECORRUPT || rc == -ENOMEM);
	fz_check(cap <= LIMIT);
	if (rc != 0)
		return 0;
	fz_check(out_len <= cap || out_len == 0);

	/* Round trip through zlib's own deflate (zlib wrapper). */
	uLongf zlen = compressBound((uLong)out_len);
	uint8_t *z = malloc(zlen ? zlen : 1);
	if (!z)
		return 0;
	fz_check(compress2(z, &zlen, buf, (uLong)out_len, Z_BEST_SPEED) == Z_OK);
	uint8_t *copy = fz_memdup(buf, out_len);
	uint8_t *buf2 = NULL;
	size_t cap2 = 0, len2 = 0;
	if (copy) {
		fz_check(ts_gzip_inflate(z, zlen, LIMIT, &buf2, &cap2, &len2) == 0);
		fz_check(len2 == out_len && (out_len == 0 || memcmp(buf2, copy, out_len) == 0));
	}
	ts_free(buf2);
	free(copy);
	free(z);
	return 0;
}
