/*
 * fuzz_chunk.c - chunk records and keys on arbitrary bytes.
 *
 * ts_chunk_decode must return 0, TS_ECORRUPT or TS_EVERSION and never read past the
 * input; an accepted record must re-encode (ts_chunk_encode) to identical bytes, its
 * payload must alias the input, and the payload is then walked with the XOR iterator.
 * The first 16 bytes are also parsed as a key, which must re-encode to the same bytes.
 * Since random bytes rarely carry a good CRC, the input is also read as fields plus a
 * payload, encoded, and decoded back: accepted exactly when the fields are valid, with
 * every field intact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "fuzz_util.h"
#include "storage/xor.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* data = encoding:1 flags:2 n_samples:4 min_t:8 max_t:8 | payload. */
static void encode_decode(const uint8_t *data, size_t size)
{
	if (size < 23)
		return;
	uint8_t enc = data[0];
	uint16_t flags = (uint16_t)le(data + 1, 2);
	uint32_t n = (uint32_t)le(data + 3, 4);
	int64_t min_t = (int64_t)le(data + 7, 8), max_t = (int64_t)le(data + 15, 8);
	uint32_t plen = (uint32_t)(size - 23);
	uint8_t *payload = malloc(plen ? plen : 1);
	uint8_t *rec = malloc(TS_CHUNK_HDR_LEN + (size_t)plen);
	CHECK(payload && rec);
	if (plen)
		memcpy(payload, data + 23, plen);
	/* Mostly give the record the payload's own count, so valid ones are common. */
	if ((flags & 0x8000) && plen >= 2)
		n = (uint32_t)ts_xor_count(payload, plen);
	size_t len = ts_chunk_encode(rec, enc, flags, n, min_t, max_t, payload, plen);
	CHECK(len == TS_CHUNK_HDR_LEN + (size_t)plen);
	struct ts_chunk_hdr h;
	const uint8_t *p;
	int rc = ts_chunk_decode(rec, len, &h, &p);
	int valid = enc == TS_CHUNK_ENC_XOR && min_t <= max_t &&
		    (int64_t)n == ts_xor_count(payload, plen);
	CHECK((rc == 0) == valid);
	if (rc == 0) {
		CHECK(h.version == TS_CHUNK_VERSION && h.encoding == enc && h.flags == flags);
		CHECK(h.n_samples == n && h.min_t == min_t && h.max_t == max_t);
		CHECK(h.payload_len == plen && p == rec + TS_CHUNK_HDR_LEN);
		CHECK(memcmp(p, payload, plen) == 0);
	} else {
		CHECK(rc == TS_ECORRUPT);
	}
	free(payload);
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	uint8_t *rec = fz_memdup(data, size);
	CHECK(rec);

	struct ts_chunk_hdr h;
	const uint8_t *payload = NULL;
	int rc = ts_chunk_decode(rec, size, &h, &payload);
	if (rc == 0) {
		CHECK(size >= TS_CHUNK_HDR_LEN);
		CHECK(payload == rec + TS_CHUNK_HDR_LEN);
		CHECK(h.payload_len == size - TS_CHUNK_HDR_LEN);
		CHECK(h.version == TS_CHUNK_VERSION && h.encoding == TS_CHUNK_ENC_XOR);
		CHECK(h.min_t <= h.max_t);
		CHECK((int64_t)h.n_samples == ts_xor_count(payload, h.payload_len));
		uint8_t *out = malloc(size);
		CHECK(out);
		size_t n = ts_chunk_encode(out, h.encoding, h.flags, h.n_samples, h.min_t, h.max_t,
					   payload, h.payload_len);
		CHECK(n == size);
		CHECK(memcmp(out, rec, size) == 0);
		free(out);
		struct ts_xor_it it;
		CHECK(ts_xor_it_init(&it, payload, h.payload_len) == 0);
		uint32_t k = 0;
		int r;
		while ((r = ts_xor_next(&it)) == 1)
			k++;
		CHECK(r == 0 || r == TS_ECORRUPT);
		CHECK(k <= h.n_samples);
	} else {
		CHECK(rc == TS_ECORRUPT || rc == TS_EVERSION);
		CHECK(rc != TS_EVERSION || (size >= 1 && rec[0] != TS_CHUNK_VERSION));
	}

	if (size >= TS_CHUNK_KEY_LEN) {
		uint64_t id;
		int64_t min_t;
		CHECK(ts_chunk_key_parse(rec, TS_CHUNK_KEY_LEN, &id, &min_t) == 0);
		uint8_t key[TS_CHUNK_KEY_LEN];
		ts_chunk_key(key, id, min_t);
		CHECK(memcmp(key, rec, TS_CHUNK_KEY_LEN) == 0);
	}
	CHECK(ts_chunk_key_parse(rec, size == TS_CHUNK_KEY_LEN ? size + 1 : size, &(uint64_t){ 0 },
				 &(int64_t){ 0 }) == TS_ECORRUPT);
	free(rec);
	encode_decode(data, size);
	return 0;
}
