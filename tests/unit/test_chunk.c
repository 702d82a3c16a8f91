/*
 * test_chunk.c - chunk keys and records: key order under memcmp (negative times
 * included), the exact version-1 byte layout against a golden record written out below
 * (never regenerate it: a change here is a format change), round trips, and rejection
 * of every kind of malformed record.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/chunk.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/xor.h"
#include "testutil.h"

/* Version 1 record: XOR, flags 0x0001, 4 samples, min_t 1700000000000, max_t
 * 1700000045000, payload = Prometheus' chunk of vector "V1" (22 bytes). */
static const uint8_t golden_v1[] = {
	0x01, 0x01, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01,
	0x00, 0x00, 0xc8, 0x17, 0xe6, 0xcf, 0x8b, 0x01, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00,
	0x48, 0x50, 0x23, 0x1f, 0x00, 0x04, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x3f, 0xf0,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x98, 0x75, 0x30, 0x97, 0xff, 0xc0,
};
#define GOLDEN_PAYLOAD (golden_v1 + TS_CHUNK_HDR_LEN)
#define GOLDEN_PAYLOAD_LEN 22u

static int quiet(void **state)
{
	(void)state;
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	return 0;
}

static int cmp_tuple(uint64_t s1, int64_t t1, uint64_t s2, int64_t t2)
{
	if (s1 != s2)
		return s1 < s2 ? -1 : 1;
	if (t1 != t2)
		return t1 < t2 ? -1 : 1;
	return 0;
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static void test_key_order(void **state)
{
	(void)state;
	static const uint64_t ids[] = { 0,
					1,
					2,
					255,
					256,
					0x00ffffffffffffffull,
					0x8000000000000000ull,
					UINT64_MAX - 1,
					UINT64_MAX };
	static const int64_t ts[] = {
		INT64_MIN, INT64_MIN + 1, -1700000000000, -256,		 -255,	   -1, 0, 1,
		255,	   256,		  1700000000000,  INT64_MAX - 1, INT64_MAX
	};
	size_t ni = sizeof ids / sizeof ids[0], nt = sizeof ts / sizeof ts[0];
	for (size_t a = 0; a < ni * nt; a++) {
		uint8_t ka[TS_CHUNK_KEY_LEN];
		uint64_t sa = ids[a / nt];
		int64_t ta = ts[a % nt];
		ts_chunk_key(ka, sa, ta);
		uint64_t ps;
		int64_t pt;
		assert_int_equal(ts_chunk_key_parse(ka, sizeof ka, &ps, &pt), 0);
		assert_int_equal(ps, sa);
		assert_int_equal(pt, ta);
		for (size_t b = 0; b < ni * nt; b++) {
			uint8_t kb[TS_CHUNK_KEY_LEN];
			uint64_t sb = ids[b / nt];
			int64_t tb = ts[b % nt];
			ts_chunk_key(kb, sb, tb);
			assert_int_equal(sign(memcmp(ka, kb, TS_CHUNK_KEY_LEN)),
					 cmp_tuple(sa, ta, sb, tb));
		}
	}
}

static void test_key_layout(void **state)
{
	(void)state;
	uint8_t k[TS_CHUNK_KEY_LEN];
	ts_chunk_key(k, 0x0102030405060708ull, -1);
	static const uint8_t want[16] = { 1,	2,    3,    4,	  5,	6,    7,    8,
					  0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_memory_equal(k, want, 16);
	ts_chunk_key(k, 0, 0);
	static const uint8_t want0[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0 };
	assert_memory_equal(k, want0, 16);
	uint64_t s;
	int64_t t;
	assert_int_equal(ts_chunk_key_parse(k, 15, &s, &t), TS_ECORRUPT);
	assert_int_equal(ts_chunk_key_parse(k, 17, &s, &t), TS_ECORRUPT);
	assert_int_equal(ts_chunk_key_parse(k, 0, &s, &t), TS_ECORRUPT);
}

static void test_golden(void **state)
{
	(void)state;
	uint8_t out[sizeof golden_v1];
	size_t n = ts_chunk_encode(out, TS_CHUNK_ENC_XOR, TS_CHUNK_FLAG_OVERLAP, 4, 1700000000000,
				   1700000045000, GOLDEN_PAYLOAD, GOLDEN_PAYLOAD_LEN);
	assert_int_equal(n, sizeof golden_v1);
	assert_memory_equal(out, golden_v1, sizeof golden_v1);

	struct ts_chunk_hdr h;
	const uint8_t *p = NULL;
	assert_int_equal(ts_chunk_decode(golden_v1, sizeof golden_v1, &h, &p), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.encoding, TS_CHUNK_ENC_XOR);
	assert_int_equal(h.flags, TS_CHUNK_FLAG_OVERLAP);
	assert_int_equal(h.n_samples, 4);
	assert_int_equal(h.min_t, 1700000000000);
	assert_int_equal(h.max_t, 1700000045000);
	assert_int_equal(h.payload_len, GOLDEN_PAYLOAD_LEN);
	assert_int_equal(h.crc, ts_crc32c(0, GOLDEN_PAYLOAD, GOLDEN_PAYLOAD_LEN));
	assert_ptr_equal(p, golden_v1 + TS_CHUNK_HDR_LEN); /* aliases the input */
	/* And the payload is a chunk that decodes. */
	struct ts_xor_it it;
	assert_int_equal(ts_xor_it_init(&it, p, h.payload_len), 0);
	int k = 0;
	while (ts_xor_next(&it) == 1)
		k++;
	assert_int_equal(k, 4);
	assert_int_equal(it.t, 1700000045000);
}

/* Records built with the encoder from real chunks, negative times included. */
static void test_roundtrip(void **state)
{
	(void)state;
	for (int64_t base = -3000000; base <= 3000000; base += 1500000) {
		for (uint32_t n = 0; n <= 130; n += 13) {
			struct ts_xor_enc e;
			ts_xor_enc_init(&e);
			for (uint32_t i = 0; i < n; i++)
				assert_int_equal(ts_xor_append(&e, base + (int64_t)i * 15000,
							       (uint64_t)i * 0x1000),
						 0);
			static const uint8_t empty[2] = { 0, 0 };
			const uint8_t *chunk = n ? e.buf : empty;
			uint32_t clen = (uint32_t)ts_xor_enc_bytes(&e);
			int64_t max_t = n ? base + (int64_t)(n - 1) * 15000 : base;
			uint8_t *rec = malloc(TS_CHUNK_HDR_LEN + clen);
			size_t len = ts_chunk_encode(rec, TS_CHUNK_ENC_XOR, 0, n, base, max_t,
						     chunk, clen);
			assert_int_equal(len, TS_CHUNK_HDR_LEN + clen);
			struct ts_chunk_hdr h;
			const uint8_t *p;
			assert_int_equal(ts_chunk_decode(rec, len, &h, &p), 0);
			assert_int_equal(h.n_samples, n);
			assert_int_equal(h.min_t, base);
			assert_int_equal(h.max_t, max_t);
			assert_int_equal(h.flags, 0);
			assert_int_equal(h.payload_len, clen);
			assert_memory_equal(p, chunk, clen);
			free(rec);
			ts_xor_enc_fini(&e);
		}
	}
}

/* A mutable copy of the golden record with the CRC recomputed after edits. */
static uint8_t rec[sizeof golden_v1 + 8];

static void fix_crc(size_t payload_len)
{
	uint32_t c = ts_crc32c(0, rec + TS_CHUNK_HDR_LEN, payload_len);
	for (int i = 0; i < 4; i++)
		rec[28 + i] = (uint8_t)(c >> (8 * i));
}

static int decode_rec(size_t len)
{
	struct ts_chunk_hdr h;
	const uint8_t *p;
	/* From an exact-size heap copy, so ASan catches any read past the end. */
	uint8_t *copy = tu_memdup(rec, len);
	int rc = ts_chunk_decode(copy, len, &h, &p);
	free(copy);
	return rc;
}

static void reset_rec(void)
{
	memset(rec, 0, sizeof rec);
	memcpy(rec, golden_v1, sizeof golden_v1);
}

static void test_malformed(void **state)
{
	(void)state;
	size_t len = sizeof golden_v1;
	reset_rec();
	assert_int_equal(decode_rec(len), 0);

	/* Short: every length below the header, and every cut into the payload. */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(decode_rec(l), TS_ECORRUPT);
	/* Longer than the header says. */
	assert_int_equal(decode_rec(len + 1), TS_ECORRUPT);

	/* Bad version: TS_EVERSION, whatever follows (even a too-short record). */
	for (int v = 0; v < 256; v++) {
		if (v == TS_CHUNK_VERSION)
			continue;
		reset_rec();
		rec[0] = (uint8_t)v;
		assert_int_equal(decode_rec(len), TS_EVERSION);
		assert_int_equal(decode_rec(1), TS_EVERSION);
	}

	/* Bad encoding. */
	for (int enc = 0; enc < 256; enc++) {
		if (enc == TS_CHUNK_ENC_XOR)
			continue;
		reset_rec();
		rec[1] = (uint8_t)enc;
		assert_int_equal(decode_rec(len), TS_ECORRUPT);
	}

	/* Payload length field not matching the record. */
	static const uint32_t lens[] = { 0, 21, 23, 0xffffffffu, 0x80000016u };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		reset_rec();
		for (int b = 0; b < 4; b++)
			rec[24 + b] = (uint8_t)(lens[i] >> (8 * b));
		assert_int_equal(decode_rec(len), TS_ECORRUPT);
	}

	/* min_t > max_t (and equal is fine). */
	reset_rec();
	memcpy(rec + 8, golden_v1 + 16, 8);
	memcpy(rec + 16, golden_v1 + 8, 8);
	assert_int_equal(decode_rec(len), TS_ECORRUPT);
	reset_rec();
	memcpy(rec + 16, golden_v1 + 8, 8);
	assert_int_equal(decode_rec(len), 0);
	/* Signed comparison: min_t = -1, max_t = 1 is valid, the reverse is not. */
	reset_rec();
	memset(rec + 8, 0xff, 8);
	memset(rec + 16, 0, 8);
	rec[16] = 1;
	assert_int_equal(decode_rec(len), 0);
	memset(rec + 16, 0xff, 8);
	memset(rec + 8, 0, 8);
	rec[8] = 1;
	assert_int_equal(decode_rec(len), TS_ECORRUPT);

	/* CRC mismatch: every payload bit and every CRC bit. */
	for (size_t bit = 0; bit < (GOLDEN_PAYLOAD_LEN + 4) * 8; bit++) {
		reset_rec();
		rec[28 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(decode_rec(len), TS_ECORRUPT);
	}

	/* XOR payload count != n_samples, with a correct CRC. */
	static const uint32_t counts[] = { 0, 3, 5, 65535, 65536, 0x10004, 0xffffffffu };
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		reset_rec();
		for (int b = 0; b < 4; b++)
			rec[4 + b] = (uint8_t)(counts[i] >> (8 * b));
		assert_int_equal(decode_rec(len), TS_ECORRUPT);
	}
	reset_rec();
	rec[TS_CHUNK_HDR_LEN + 1] = 5; /* the chunk's own count */
	fix_crc(GOLDEN_PAYLOAD_LEN);
	assert_int_equal(decode_rec(len), TS_ECORRUPT);
	/* A payload too short to have a count at all. */
	reset_rec();
	rec[24] = 1;
	fix_crc(1);
	assert_int_equal(decode_rec(TS_CHUNK_HDR_LEN + 1), TS_ECORRUPT);
	reset_rec();
	memset(rec + 4, 0, 4);
	rec[24] = 0;
	fix_crc(0);
	assert_int_equal(decode_rec(TS_CHUNK_HDR_LEN), TS_ECORRUPT);

	/* Flags are carried, not judged (bit 0 is set in the golden record already). */
	reset_rec();
	rec[2] = 0xff;
	rec[3] = 0xff;
	struct ts_chunk_hdr h;
	const uint8_t *p;
	assert_int_equal(ts_chunk_decode(rec, len, &h, &p), 0);
	assert_int_equal(h.flags, 0xffff);
}

static int64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (int64_t)v;
}

/* Every single-bit flip of the header is rejected unless it lands in the flags or
 * leaves min_t <= max_t; accepted ones re-encode to the same bytes. */
static void test_header_bitflips(void **state)
{
	(void)state;
	size_t len = sizeof golden_v1;
	int rejected = 0;
	for (size_t bit = 0; bit < TS_CHUNK_HDR_LEN * 8; bit++) {
		reset_rec();
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		size_t byte = bit / 8;
		int want_ok = (byte >= 2 && byte < 4) ||
			      (byte >= 8 && byte < 24 && le64_at(rec + 8) <= le64_at(rec + 16));
		struct ts_chunk_hdr h;
		const uint8_t *p;
		int rc = ts_chunk_decode(rec, len, &h, &p);
		assert_int_equal(rc == 0, want_ok);
		if (rc) {
			assert_int_equal(rc, byte == 0 ? TS_EVERSION : TS_ECORRUPT);
			rejected++;
			continue;
		}
		uint8_t out[sizeof golden_v1];
		assert_int_equal(ts_chunk_encode(out, h.encoding, h.flags, h.n_samples, h.min_t,
						 h.max_t, p, h.payload_len),
				 len);
		assert_memory_equal(out, rec, len);
	}
	print_message("%d of %d header bit flips rejected\n", rejected, TS_CHUNK_HDR_LEN * 8);
	assert_true(rejected >= 150);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_order), cmocka_unit_test(test_key_layout),
		cmocka_unit_test(test_golden),	  cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_malformed), cmocka_unit_test(test_header_bitflips),
	};
	return cmocka_run_group_tests(tests, quiet, NULL);
}
