/*
 * test_pb.c - the protobuf wire primitives of server/pb.c and the snappy wrappers of
 * server/snappy_io.c: varint limits, tags, fixed widths, length overruns, skipping of
 * every wire type (nested groups), the writer's canonical lengths and its behaviour
 * under allocation failure; snappy round trips, the decompression-bomb refusal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire/pb.h"
#include "wire/snappy_io.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

static int rd_varint(const uint8_t *b, size_t n, uint64_t *v, size_t *used)
{
	struct ts_pb_reader r;
	ts_pb_reader_init(&r, b, n);
	int rc = ts_pb_read_varint(&r, v);
	*used = (size_t)(r.p - b);
	return rc;
}

static void test_varint(void **state)
{
	(void)state;
	uint64_t v;
	size_t used;
	static const uint8_t max[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	assert_int_equal(rd_varint(max, sizeof max, &v, &used), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(used, 10);
	static const uint8_t over[] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
	};
	assert_int_equal(rd_varint(over, sizeof over, &v, &used), TS_ECORRUPT);
	static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					  0x80, 0x80, 0x80, 0x80, 0x00 };
	assert_int_equal(rd_varint(eleven, sizeof eleven, &v, &used), TS_ECORRUPT);
	/* A non-minimal encoding is accepted, as every protobuf parser does. */
	static const uint8_t padded[] = { 0x81, 0x80, 0x00 };
	assert_int_equal(rd_varint(padded, sizeof padded, &v, &used), 0);
	assert_int_equal(v, 1);
	assert_int_equal(used, 3);
	for (size_t n = 0; n < sizeof max; n++) {
		assert_int_equal(rd_varint(max, n, &v, &used), TS_ECORRUPT);
		assert_int_equal(used, 0); /* the cursor does not move on failure */
	}
	/* every size class round trips through the writer */
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	for (int shift = 0; shift < 64; shift++) {
		uint64_t x = (uint64_t)1 << shift;
		uint64_t vals[] = { x - 1, x, x + 1, ~x };
		for (size_t i = 0; i < 4; i++) {
			b.len = 0;
			assert_int_equal(ts_pb_put_varint(&b, vals[i]), 0);
			assert_int_equal(b.len, ts_pb_varint_size(vals[i]));
			assert_int_equal(rd_varint(b.data, b.len, &v, &used), 0);
			assert_true(v == vals[i]);
			assert_int_equal(used, b.len);
		}
	}
	ts_pb_buf_fini(&b);
	int64_t zz[] = { 0, -1, 1, INT64_MIN, INT64_MAX, -1234567 };
	for (size_t i = 0; i < 6; i++)
		assert_true(ts_pb_zigzag_dec64(ts_pb_zigzag_enc64(zz[i])) == zz[i]);
	assert_int_equal(ts_pb_zigzag_enc64(-1), 1);
	assert_int_equal(ts_pb_zigzag_enc64(1), 2);
}

static void test_tags_and_fixed(void **state)
{
	(void)state;
	struct ts_pb_reader r;
	uint32_t f;
	enum ts_pb_wire w;
	static const uint8_t field0[] = { 0x02 };
	ts_pb_reader_init(&r, field0, 1);
	assert_int_equal(ts_pb_read_tag(&r, &f, &w), TS_ECORRUPT);
	for (unsigned wt = 0; wt < 8; wt++) {
		uint8_t t = (uint8_t)(1 << 3 | wt);
		ts_pb_reader_init(&r, &t, 1);
		assert_int_equal(ts_pb_read_tag(&r, &f, &w), wt <= 5 ? 0 : TS_ECORRUPT);
	}
	/* largest field number and one above it */
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	assert_int_equal(ts_pb_put_tag(&b, TS_PB_MAX_FIELD, TS_PB_FIXED32), 0);
	ts_pb_reader_init(&r, b.data, b.len);
	assert_int_equal(ts_pb_read_tag(&r, &f, &w), 0);
	assert_int_equal(f, TS_PB_MAX_FIELD);
	assert_int_equal(w, TS_PB_FIXED32);
	b.len = 0;
	assert_int_equal(ts_pb_put_varint(&b, ((uint64_t)TS_PB_MAX_FIELD + 1) << 3), 0);
	ts_pb_reader_init(&r, b.data, b.len);
	assert_int_equal(ts_pb_read_tag(&r, &f, &w), TS_ECORRUPT);

	b.len = 0;
	assert_int_equal(ts_pb_put_double_field(&b, 1, -2.5), 0);
	assert_int_equal(ts_pb_put_fixed32_field(&b, 2, 0xdeadbeef), 0);
	ts_pb_reader_init(&r, b.data, b.len);
	double d;
	uint32_t u;
	assert_int_equal(ts_pb_read_tag(&r, &f, &w), 0);
	assert_int_equal(ts_pb_read_double(&r, &d), 0);
	assert_true(d == -2.5);
	assert_int_equal(ts_pb_read_tag(&r, &f, &w), 0);
	assert_int_equal(ts_pb_read_fixed32(&r, &u), 0);
	assert_true(u == 0xdeadbeef);
	assert_true(ts_pb_eof(&r));
	uint64_t x;
	for (size_t n = 0; n < 8; n++) {
		ts_pb_reader_init(&r, b.data + 1, n);
		assert_int_equal(ts_pb_read_fixed64(&r, &x), TS_ECORRUPT);
		if (n < 4) {
			assert_int_equal(ts_pb_read_fixed32(&r, &u), TS_ECORRUPT);
		}
	}
	ts_pb_buf_fini(&b);
}

static void test_bytes_bounds(void **state)
{
	(void)state;
	struct ts_pb_reader r;
	const uint8_t *p;
	size_t n;
	static const uint8_t ok[] = { 0x03, 'a', 'b', 'c', 'z' };
	ts_pb_reader_init(&r, ok, sizeof ok);
	assert_int_equal(ts_pb_read_bytes(&r, &p, &n), 0);
	assert_int_equal(n, 3);
	assert_ptr_equal(p, ok + 1);
	static const uint8_t over[] = { 0x04, 'a', 'b', 'c' };
	ts_pb_reader_init(&r, over, sizeof over);
	assert_int_equal(ts_pb_read_bytes(&r, &p, &n), TS_ECORRUPT);
	/* a length near 2^64 must not wrap the pointer */
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0x01, 'x' };
	ts_pb_reader_init(&r, huge, sizeof huge);
	assert_int_equal(ts_pb_read_bytes(&r, &p, &n), TS_ECORRUPT);
	ts_pb_reader_init(&r, NULL, 0);
	assert_true(ts_pb_eof(&r));
	assert_int_equal(ts_pb_read_bytes(&r, &p, &n), TS_ECORRUPT);
}

static int skip_all(const uint8_t *b, size_t n)
{
	struct ts_pb_reader r;
	ts_pb_reader_init(&r, b, n);
	while (!ts_pb_eof(&r)) {
		uint32_t f;
		enum ts_pb_wire w;
		int rc = ts_pb_read_tag(&r, &f, &w);
		if (rc)
			return rc;
		if ((rc = ts_pb_skip(&r, f, w)) != 0)
			return rc;
	}
	return 0;
}

static void test_skip(void **state)
{
	(void)state;
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	assert_int_equal(ts_pb_put_uint64_field(&b, 1, UINT64_MAX), 0);
	assert_int_equal(ts_pb_put_double_field(&b, 2, 1.0), 0);
	assert_int_equal(ts_pb_put_bytes_field(&b, 3, "hello", 5), 0);
	assert_int_equal(ts_pb_put_fixed32_field(&b, 4, 7), 0);
	/* group 5 { varint 1; group 6 { bytes 2 } } */
	assert_int_equal(ts_pb_put_tag(&b, 5, TS_PB_SGROUP), 0);
	assert_int_equal(ts_pb_put_uint64_field(&b, 1, 9), 0);
	assert_int_equal(ts_pb_put_tag(&b, 6, TS_PB_SGROUP), 0);
	assert_int_equal(ts_pb_put_bytes_field(&b, 2, "x", 1), 0);
	assert_int_equal(ts_pb_put_tag(&b, 6, TS_PB_EGROUP), 0);
	assert_int_equal(ts_pb_put_tag(&b, 5, TS_PB_EGROUP), 0);
	assert_int_equal(skip_all(b.data, b.len), 0);
	for (size_t n = 0; n < b.len; n++) {
		int rc = skip_all(b.data, n);
		assert_true(rc == 0 || rc == TS_ECORRUPT);
	}
	/* mismatched group end, stray group end */
	b.len = 0;
	ts_pb_put_tag(&b, 5, TS_PB_SGROUP);
	ts_pb_put_tag(&b, 6, TS_PB_EGROUP);
	assert_int_equal(skip_all(b.data, b.len), TS_ECORRUPT);
	b.len = 0;
	ts_pb_put_tag(&b, 5, TS_PB_EGROUP);
	assert_int_equal(skip_all(b.data, b.len), TS_ECORRUPT);
	/* nesting depth: the limit is fine, one more is refused */
	for (int depth = TS_PB_MAX_GROUP_DEPTH; depth <= TS_PB_MAX_GROUP_DEPTH + 1; depth++) {
		b.len = 0;
		for (int i = 0; i < depth; i++)
			ts_pb_put_tag(&b, 1, TS_PB_SGROUP);
		for (int i = 0; i < depth; i++)
			ts_pb_put_tag(&b, 1, TS_PB_EGROUP);
		assert_int_equal(skip_all(b.data, b.len),
				 depth <= TS_PB_MAX_GROUP_DEPTH ? 0 : TS_ECORRUPT);
	}
	ts_pb_buf_fini(&b);
}

static void test_begin_end(void **state)
{
	(void)state;
	size_t sizes[] = { 0, 1, 127, 128, 16383, 16384, 70000 };
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		b.len = 0;
		size_t outer, inner;
		assert_int_equal(ts_pb_begin(&b, 1, &outer), 0);
		assert_int_equal(ts_pb_begin(&b, 2, &inner), 0);
		for (size_t k = 0; k < sizes[i]; k++)
			assert_int_equal(ts_pb_put_raw(&b, "z", 1), 0);
		assert_int_equal(ts_pb_end(&b, inner), 0);
		assert_int_equal(ts_pb_end(&b, outer), 0);
		size_t inner_len = 1 + ts_pb_varint_size(sizes[i]) + sizes[i];
		assert_int_equal(b.len, 1 + ts_pb_varint_size(inner_len) + inner_len);
		struct ts_pb_reader r, s;
		uint32_t f;
		enum ts_pb_wire w;
		const uint8_t *p;
		size_t n;
		ts_pb_reader_init(&r, b.data, b.len);
		assert_int_equal(ts_pb_read_tag(&r, &f, &w), 0);
		assert_int_equal(ts_pb_read_bytes(&r, &p, &n), 0);
		assert_true(ts_pb_eof(&r));
		ts_pb_reader_sub(&s, &r, p, n);
		assert_int_equal(ts_pb_read_tag(&s, &f, &w), 0);
		assert_int_equal(f, 2);
		assert_int_equal(ts_pb_read_bytes(&s, &p, &n), 0);
		assert_int_equal(n, sizes[i]);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(p[k], 'z');
	}
	ts_pb_buf_fini(&b);
}

static void test_writer_oom(void **state)
{
	(void)state;
	for (unsigned long n = 1; n < 50; n++) {
		struct ts_pb_buf b;
		ts_pb_buf_init(&b);
		ts_mem_fail_at(n, 1);
		int rc = 0;
		size_t last_ok = 0;
		for (int i = 0; i < 2000 && rc == 0; i++) {
			rc = ts_pb_put_bytes_field(&b, 3, "0123456789", 10);
			if (rc == 0)
				last_ok = b.len;
		}
		assert_true(rc == 0 || rc == -ENOMEM);
		/* a failed append leaves what was there */
		assert_int_equal(b.len, last_ok);
		ts_mem_fail_at(0, 0);
		ts_pb_buf_fini(&b);
	}
}

static void test_snappy(void **state)
{
	(void)state;
	uint8_t src[5000];
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (uint8_t)(i % 7 == 0 ? i : 'a');
	uint8_t *c = NULL, *d = NULL;
	size_t ccap = 0, dcap = 0, clen, dlen;
	assert_int_equal(ts_snappy_compress(src, sizeof src, &c, &ccap, &clen), 0);
	assert_int_equal(ts_snappy_decompress(c, clen, sizeof src, &d, &dcap, &dlen), 0);
	assert_int_equal(dlen, sizeof src);
	assert_memory_equal(d, src, sizeof src);
	/* limit one below the declared size */
	assert_int_equal(ts_snappy_decompress(c, clen, sizeof src - 1, &d, &dcap, &dlen),
			 TS_ELIMIT);
	/* every truncation and many bit flips: never a crash, never a wrong success size */
	for (size_t n = 0; n < clen; n++) {
		int rc = ts_snappy_decompress(c, n, sizeof src, &d, &dcap, &dlen);
		assert_true(rc == TS_ECORRUPT || (rc == 0 && dlen == sizeof src));
	}
	for (size_t bit = 0; bit < clen * 8; bit += 3) {
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = ts_snappy_decompress(c, clen, 1 << 20, &d, &dcap, &dlen);
		assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_ELIMIT);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* empty */
	assert_int_equal(ts_snappy_compress(NULL, 0, &c, &ccap, &clen), 0);
	assert_int_equal(ts_snappy_decompress(c, clen, 10, &d, &dcap, &dlen), 0);
	assert_int_equal(dlen, 0);
	assert_int_equal(ts_snappy_decompress(c, 0, 10, &d, &dcap, &dlen), TS_ECORRUPT);
	ts_free(c);
	ts_free(d);
}

static void test_snappy_bomb(void **state)
{
	(void)state;
	/* 48 bytes declaring 4 GiB - 1: refused at once, nothing allocated. */
	uint8_t bomb[48];
	memset(bomb, 0xfe, sizeof bomb);
	bomb[0] = 0xff, bomb[1] = 0xff, bomb[2] = 0xff, bomb[3] = 0xff, bomb[4] = 0x0f;
	uint8_t *d = NULL;
	size_t dcap = 0, dlen;
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_snappy_decompress(bomb, sizeof bomb, 32u << 20, &d, &dcap, &dlen),
			 TS_ELIMIT);
	assert_int_equal(ts_mem_count(), 0);
	assert_null(d);
	/* under the limit but more than 48 bytes can expand to: corrupt, still no allocation */
	bomb[0] = 0x80, bomb[1] = 0x80, bomb[2] = 0x40; /* 1 MiB */
	assert_int_equal(ts_snappy_decompress(bomb, sizeof bomb, 32u << 20, &d, &dcap, &dlen),
			 TS_ECORRUPT);
	assert_int_equal(ts_mem_count(), 0);
	/* a bad preamble: more than 5 bytes, or above 2^32-1 */
	uint8_t pre[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	assert_int_equal(ts_snappy_decompress(pre, sizeof pre, SIZE_MAX, &d, &dcap, &dlen),
			 TS_ECORRUPT);
	uint8_t pre2[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };
	assert_int_equal(ts_snappy_decompress(pre2, sizeof pre2, SIZE_MAX, &d, &dcap, &dlen),
			 TS_ECORRUPT);
	/* the densest legal block (64-byte copies) passes the plausibility bound */
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	size_t copies = 1000, total = 1 + copies * 64;
	ts_pb_put_varint(&b, total);
	uint8_t lit[] = { 0x00, 'q' }; /* literal of 1 byte */
	ts_pb_put_raw(&b, lit, 2);
	for (size_t i = 0; i < copies; i++) {
		uint8_t cp[] = { (uint8_t)(63 << 2 | 2), 1, 0 }; /* copy 64 bytes from offset 1 */
		ts_pb_put_raw(&b, cp, 3);
	}
	assert_int_equal(ts_snappy_decompress(b.data, b.len, 1 << 20, &d, &dcap, &dlen), 0);
	assert_int_equal(dlen, total);
	assert_int_equal(d[total - 1], 'q');
	ts_pb_buf_fini(&b);
	ts_free(d);
}

static void test_snappy_oom(void **state)
{
	(void)state;
	uint8_t src[300] = { 1, 2, 3 };
	uint8_t *c = NULL, *d = NULL;
	size_t ccap = 0, dcap = 0, clen, dlen;
	ts_mem_fail_at(1, 1);
	assert_int_equal(ts_snappy_compress(src, sizeof src, &c, &ccap, &clen), -ENOMEM);
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_snappy_compress(src, sizeof src, &c, &ccap, &clen), 0);
	ts_mem_fail_at(1, 1);
	assert_int_equal(ts_snappy_decompress(c, clen, 1000, &d, &dcap, &dlen), -ENOMEM);
	assert_null(d);
	assert_int_equal(dcap, 0);
	ts_mem_fail_at(0, 0);
	ts_free(c);
}

int main(void)
{
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint),	     cmocka_unit_test(test_tags_and_fixed),
		cmocka_unit_test(test_bytes_bounds), cmocka_unit_test(test_skip),
		cmocka_unit_test(test_begin_end),    cmocka_unit_test(test_writer_oom),
		cmocka_unit_test(test_snappy),	     cmocka_unit_test(test_snappy_bomb),
		cmocka_unit_test(test_snappy_oom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
