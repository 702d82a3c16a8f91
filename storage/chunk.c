/*
 * chunk.c - chunk records: the 16-byte key that sorts by (series id, min_t) and the
 * value with its 32-byte header (layout table in chunk.h).
 *
 * Key: min_t is stored big-endian with its sign bit flipped, so memcmp order of keys is
 * numeric order of (series id, min_t) for every int64, negative timestamps included.
 * Value: all multi-byte header fields are little-endian; the payload is the XOR chunk
 * byte for byte, protected by a CRC32C. ts_chunk_decode() trusts nothing: it checks the
 * version first (a later version may have another header size), then every length, the
 * time range, the CRC and, for XOR, the payload's own sample count.
 */
#include "storage/chunk.h"

#include <string.h>

#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/xor.h"

#define SIGN64 0x8000000000000000ULL

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void ts_chunk_key(uint8_t key[TS_CHUNK_KEY_LEN], uint64_t series_id, int64_t min_t)
{
	put_be64(key, series_id);
	put_be64(key + 8, (uint64_t)min_t ^ SIGN64);
}

int ts_chunk_key_parse(const void *key, size_t klen, uint64_t *series_id, int64_t *min_t)
{
	if (klen != TS_CHUNK_KEY_LEN)
		return TS_CORRUPT();
	const uint8_t *k = key;
	*series_id = get_be64(k);
	*min_t = (int64_t)(get_be64(k + 8) ^ SIGN64);
	return 0;
}

size_t ts_chunk_encode(uint8_t *out, uint8_t encoding, uint16_t flags, uint32_t n_samples,
		       int64_t min_t, int64_t max_t, const uint8_t *payload, uint32_t payload_len)
{
	out[0] = TS_CHUNK_VERSION;
	out[1] = encoding;
	put_le(out + 2, flags, 2);
	put_le(out + 4, n_samples, 4);
	put_le(out + 8, (uint64_t)min_t, 8);
	put_le(out + 16, (uint64_t)max_t, 8);
	put_le(out + 24, payload_len, 4);
	put_le(out + 28, ts_crc32c(0, payload, payload_len), 4);
	if (payload_len)
		memcpy(out + TS_CHUNK_HDR_LEN, payload, payload_len);
	return TS_CHUNK_HDR_LEN + (size_t)payload_len;
}

int ts_chunk_decode(const void *rec, size_t len, struct ts_chunk_hdr *h, const uint8_t **payload)
{
	const uint8_t *r = rec;
	struct ts_chunk_hdr x;

	if (len < 1)
		return TS_CORRUPT();
	if (r[0] != TS_CHUNK_VERSION)
		return TS_EVERSION;
	if (len < TS_CHUNK_HDR_LEN)
		return TS_CORRUPT();
	x.version = r[0];
	x.encoding = r[1];
	x.flags = (uint16_t)get_le(r + 2, 2);
	x.n_samples = (uint32_t)get_le(r + 4, 4);
	x.min_t = (int64_t)get_le(r + 8, 8);
	x.max_t = (int64_t)get_le(r + 16, 8);
	x.payload_len = (uint32_t)get_le(r + 24, 4);
	x.crc = (uint32_t)get_le(r + 28, 4);
	if (x.encoding != TS_CHUNK_ENC_XOR)
		return TS_CORRUPT();
	if (x.payload_len != len - TS_CHUNK_HDR_LEN)
		return TS_CORRUPT();
	if (x.min_t > x.max_t)
		return TS_CORRUPT();
	const uint8_t *p = r + TS_CHUNK_HDR_LEN;
	if (ts_crc32c(0, p, x.payload_len) != x.crc)
		return TS_CORRUPT();
	if (ts_xor_count(p, x.payload_len) != (int64_t)x.n_samples)
		return TS_CORRUPT();
	*h = x;
	*payload = p;
	return 0;
}
