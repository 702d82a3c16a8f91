/*
 * snappy_io.c - limit-checked snappy block decompression and compression.
 *
 * Invariant: we allocate only after the declared length passed both checks (caller
 * limit, then plausibility), and libsnappy never writes beyond the length we give it.
 *
 * Snappy block layout (https://github.com/google/snappy/blob/main/format_description.txt):
 *
 *   | part      | encoding                                                        |
 *   |-----------|-----------------------------------------------------------------|
 *   | preamble  | uncompressed length as a little-endian base-128 varint, <= 2^32-1 |
 *   | elements  | tag byte, low 2 bits: 00 literal (len in tag or 1-4 more bytes), |
 *   |           | 01 copy, 1 offset byte (len 4..11), 10 copy, 2 offset bytes      |
 *   |           | (len 1..64), 11 copy, 4 offset bytes (len 1..64)                 |
 *
 * The densest element is the 3-byte copy of 64 bytes, so a block of n element bytes
 * cannot decompress to more than n*64/3 bytes: anything declaring more is corrupt and
 * is refused before allocating.
 */
#include "wire/snappy_io.h"

#include <errno.h>
#include <snappy-c.h>

#include "storage/err.h"
#include "storage/mem.h"

int ts_snappy_declared_len(const uint8_t *src, size_t src_len, size_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 5; i++) {
		if (i >= src_len)
			return TS_ECORRUPT;
		v |= (uint64_t)(src[i] & 0x7f) << (7 * i);
		if (src[i] < 0x80) {
			if (v > UINT32_MAX)
				return TS_ECORRUPT;
			*out = (size_t)v;
			return 0;
		}
	}
	return TS_ECORRUPT;
}

static size_t preamble_len(size_t n)
{
	size_t k = 1;
	while (n >= 0x80) {
		n >>= 7;
		k++;
	}
	return k;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap && *buf)
		return 0;
	uint8_t *p = ts_realloc(*buf, need ? need : 1);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need ? need : 1;
	return 0;
}

int ts_snappy_decompress(const uint8_t *src, size_t src_len, size_t limit, uint8_t **buf,
			 size_t *cap, size_t *out_len)
{
	size_t n;
	int rc;

	*out_len = 0;
	if (!src)
		return TS_CORRUPT();
	if ((rc = ts_snappy_declared_len(src, src_len, &n)) != 0)
		return TS_CORRUPT();
	if (n > limit)
		return TS_ELIMIT;
	/* Our own preamble parse accepts non-minimal varints; the element bytes are what
	 * follows the minimal one at best, which only makes the bound looser. */
	size_t pre = preamble_len(n);
	uint64_t body = src_len > pre ? (uint64_t)(src_len - pre) : 0;
	if (body < ((uint64_t)1 << 48) &&
	    (uint64_t)n * TS_SNAPPY_MAX_RATIO_DEN > body * TS_SNAPPY_MAX_RATIO_NUM)
		return TS_CORRUPT();
	if (n == 0) {
		/* Still let libsnappy judge trailing garbage after an empty preamble. */
		if (snappy_validate_compressed_buffer((const char *)src, src_len) != SNAPPY_OK)
			return TS_CORRUPT();
		return 0;
	}
	if ((rc = grow(buf, cap, n)) != 0)
		return rc;
	size_t got = n;
	if (snappy_uncompress((const char *)src, src_len, (char *)*buf, &got) != SNAPPY_OK ||
	    got != n)
		return TS_CORRUPT();
	*out_len = n;
	return 0;
}

int ts_snappy_compress(const uint8_t *src, size_t src_len, uint8_t **buf, size_t *cap,
		       size_t *out_len)
{
	static const char empty[1];
	size_t max = snappy_max_compressed_length(src_len);
	int rc;

	*out_len = 0;
	if ((rc = grow(buf, cap, max)) != 0)
		return rc;
	size_t got = *cap;
	if (snappy_compress(src ? (const char *)src : empty, src_len, (char *)*buf, &got) !=
	    SNAPPY_OK)
		return -ENOMEM; /* only a too-small buffer can fail, and we sized it */
	*out_len = got;
	return 0;
}
