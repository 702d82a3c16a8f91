/*
 * test_remote_read.c - ReadRequest decoding against the golden vectors of tests/data/rw/
 * (python3-protobuf encodings), hostile input, and the response encoders: SAMPLES and
 * chunked frames must equal python3-protobuf's bytes for the same content, frames parse
 * back with a small independent frame reader (length, CRC32C, size bound), and a large
 * series is split across frames.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/pb.h"
#include "wire/remote_read.h"
#include "wire/snappy_io.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "testutil.h"

/* Vector tests/data/rw/<name>, decompressed into an exactly-sized heap copy (so ASan
 * sees any overread). Caller frees. */
static uint8_t *load_vector(const char *name, size_t *len)
{
	char rel[256];
	snprintf(rel, sizeof rel, "rw/%s", name);
	return tu_load_snappy(rel, 1 << 20, len);
}

static int hex_eq(const char *hex, struct ts_pb_str s)
{
	return tu_hex_eq(hex, s.p, s.len);
}

static void check_vector(const struct ts_rr_request *r, char **pos)
{
	char *line;
	long qi = -1;
	uint32_t mi = 0, gi = 0;
	const struct ts_rr_query *q = NULL;
	while ((line = strsep(pos, "\n")) != NULL && strcmp(line, "end") != 0) {
		char a[512], b[512];
		long long x, y, z, w;
		unsigned n1, n2, n3, n4;
		if (sscanf(line, "rtype %u", &n1) == 1) {
			assert_int_equal(r->response_type, n1);
		} else if (sscanf(line, "query %lld %lld %u %u", &x, &y, &n1, &n2) == 4) {
			q = &r->queries[++qi];
			assert_true((size_t)qi < r->n_queries);
			assert_int_equal(q->start_ms, x);
			assert_int_equal(q->end_ms, y);
			assert_int_equal(q->n_matchers, n1);
			assert_int_equal(q->has_hints, n2);
			mi = gi = 0;
		} else if (sscanf(line, "matcher %u %511s %511s", &n1, a, b) == 3) {
			const struct ts_rr_matcher *m = &q->matchers[mi++];
			assert_int_equal(m->type, n1);
			assert_true(hex_eq(a, m->name));
			assert_true(hex_eq(b, m->value));
		} else if (sscanf(line, "hints %lld %511s %lld %lld %u %lld %u", &x, a, &y, &z, &n3,
				  &w, &n4) == 7) {
			assert_int_equal(q->hints.step_ms, x);
			assert_true(hex_eq(a, q->hints.func));
			assert_int_equal(q->hints.start_ms, y);
			assert_int_equal(q->hints.end_ms, z);
			assert_int_equal(q->hints.by, n3);
			assert_int_equal(q->hints.range_ms, w);
			assert_int_equal(q->hints.n_grouping, n4);
		} else if (sscanf(line, "group %511s", a) == 1) {
			assert_true(hex_eq(a, q->hints.grouping[gi++]));
		} else {
			fail_msg("bad expectation line %s", line);
		}
	}
	assert_int_equal((size_t)(qi + 1), r->n_queries);
}

static void hostile(struct ts_rr_request *r, const uint8_t *buf, size_t len)
{
	for (size_t n = 0; n <= len; n++) {
		uint8_t *cut = tu_memdup(buf, n);
		int rc = ts_rr_decode(r, cut, n);
		assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_EINVALID);
		free(cut);
	}
	uint8_t *m = tu_memdup(buf, len);
	for (size_t bit = 0; bit < len * 8; bit++) {
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = ts_rr_decode(r, m, len);
		assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_EINVALID);
		if (rc == 0)
			for (size_t i = 0; i < r->n_queries; i++)
				for (uint32_t k = 0; k < r->queries[i].n_matchers; k++) {
					const struct ts_rr_matcher *mt = &r->queries[i].matchers[k];
					assert_true(mt->type <= TS_RR_NRE);
					assert_true((const uint8_t *)mt->name.p >= m &&
						    (const uint8_t *)mt->name.p + mt->name.len <=
							    m + len);
				}
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(m);
}

static void test_vectors(void **state)
{
	(void)state;
	size_t elen;
	char *exp = tu_load_data("rw/expected.txt", &elen);
	char *pos = exp, *line;
	int n = 0;
	struct ts_rr_request r;
	ts_rr_request_init(&r);
	while ((line = strsep(&pos, "\n")) != NULL) {
		char file[128], kind[8], expect[16];
		if (sscanf(line, "vector %127s %7s %15s", file, kind, expect) != 3 ||
		    strcmp(kind, "rr"))
			continue;
		size_t len;
		uint8_t *buf = load_vector(file, &len);
		int rc = ts_rr_decode(&r, buf, len);
		if (!strcmp(expect, "ok")) {
			if (rc)
				fail_msg("%s: rc %d %s", file, rc, r.err);
			check_vector(&r, &pos);
		} else {
			assert_int_equal(rc,
					 !strcmp(expect, "invalid") ? TS_EINVALID : TS_ECORRUPT);
			assert_true(strlen(r.err) > 0);
			while ((line = strsep(&pos, "\n")) != NULL && strcmp(line, "end"))
				;
		}
		hostile(&r, buf, len);
		free(buf);
		n++;
	}
	assert_int_equal(n, 7);
	ts_rr_request_fini(&r);
	ts_rr_request_fini(NULL);
	free(exp);
}

static void test_decode_alloc_failures(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = load_vector("rr_basic.sz", &len);
	for (unsigned long n = 1;; n++) {
		struct ts_rr_request r;
		ts_rr_request_init(&r);
		ts_mem_fail_at(n, 0);
		int rc = ts_rr_decode(&r, b, len);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		assert_int_equal(rc, fired ? -ENOMEM : 0);
		ts_rr_request_fini(&r);
		if (!fired)
			break;
	}
	struct ts_rr_request r;
	ts_rr_request_init(&r);
	r.max_matchers = 3;
	assert_int_equal(ts_rr_decode(&r, b, len), TS_ELIMIT);
	r.max_matchers = 4;
	assert_int_equal(ts_rr_decode(&r, b, len), 0);
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_rr_decode(&r, b, len), 0);
	assert_int_equal(ts_mem_count(), 0); /* reuse allocates nothing */
	ts_rr_request_fini(&r);
	free(b);
}

static struct ts_label L(const char *n, const char *v) {
	struct ts_label l = { n, v, (uint32_t)strlen(n), (uint32_t)strlen(v) };
	return l;
}

/* The same content as gen_rw_vectors.py's rr_samples.pb. */
static int encode_samples(struct ts_rr_samples_writer *w)
{
	struct ts_label l1[] = { L("__name__", "up"), L("job", "a") };
	struct ts_label l2[] = { L("__name__", "x"), L("e", "") };
	struct ts_sample s1[] = { { 1000, 1.0 }, { 2000, 0 }, { -5, 0.0 }, { 0, -2.5 } };
	s1[1].v = tu_f64(TS_STALE_NAN_BITS);
	int rc;
	if ((rc = ts_rr_samples_begin_result(w)) || (rc = ts_rr_samples_begin_series(w, l1, 2)) ||
	    (rc = ts_rr_samples_add(w, s1, 2)) || (rc = ts_rr_samples_add(w, s1 + 2, 2)) ||
	    (rc = ts_rr_samples_end_series(w)) || (rc = ts_rr_samples_begin_series(w, l2, 2)) ||
	    (rc = ts_rr_samples_end_series(w)) || (rc = ts_rr_samples_end_result(w)) ||
	    (rc = ts_rr_samples_begin_result(w)) || (rc = ts_rr_samples_end_result(w)))
		return rc;
	return 0;
}

static void test_samples_encoding(void **state)
{
	(void)state;
	size_t rlen;
	char *ref = tu_load_data("rw/rr_samples.pb", &rlen);
	struct ts_rr_samples_writer w;
	ts_rr_samples_init(&w);
	assert_int_equal(encode_samples(&w), 0);
	assert_int_equal(w.out.len, rlen);
	assert_memory_equal(w.out.data, ref, rlen);
	/* out-of-order calls are refused */
	assert_int_equal(ts_rr_samples_end_result(&w), TS_EINVALID);
	assert_int_equal(ts_rr_samples_add(&w, NULL, 0), TS_EINVALID);
	assert_int_equal(ts_rr_samples_begin_series(&w, NULL, 0), TS_EINVALID);
	ts_rr_samples_fini(&w);

	/* Parse it back with our own reader: 2 results, the first with 2 series. */
	struct ts_pb_reader r, res, ts;
	uint32_t f;
	enum ts_pb_wire wt;
	const uint8_t *p;
	size_t n;
	int n_results = 0, n_series = 0, n_samples = 0;
	ts_pb_reader_init(&r, (const uint8_t *)ref, rlen);
	while (!ts_pb_eof(&r)) {
		assert_int_equal(ts_pb_read_tag(&r, &f, &wt), 0);
		assert_int_equal(f, 1);
		assert_int_equal(ts_pb_read_bytes(&r, &p, &n), 0);
		n_results++;
		ts_pb_reader_sub(&res, &r, p, n);
		while (!ts_pb_eof(&res)) {
			assert_int_equal(ts_pb_read_tag(&res, &f, &wt), 0);
			assert_int_equal(ts_pb_read_bytes(&res, &p, &n), 0);
			n_series++;
			ts_pb_reader_sub(&ts, &res, p, n);
			while (!ts_pb_eof(&ts)) {
				assert_int_equal(ts_pb_read_tag(&ts, &f, &wt), 0);
				if (f == 2)
					n_samples++;
				assert_int_equal(ts_pb_skip(&ts, f, wt), 0);
			}
		}
	}
	assert_int_equal(n_results, 2);
	assert_int_equal(n_series, 2);
	assert_int_equal(n_samples, 4);
	free(ref);

	for (unsigned long k = 1;; k++) {
		ts_rr_samples_init(&w);
		ts_mem_fail_at(k, 0);
		int rc = encode_samples(&w);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		assert_int_equal(rc, fired ? -ENOMEM : 0);
		ts_rr_samples_fini(&w);
		if (!fired)
			break;
	}
}

/* Independent frame reader: returns the message of the next frame, checks its CRC. */
static const uint8_t *next_frame(const uint8_t **p, const uint8_t *end, size_t *msg_len)
{
	uint64_t len = 0;
	int shift = 0;
	while (1) {
		assert_true(*p < end);
		uint8_t b = *(*p)++;
		len |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80)
			break;
		shift += 7;
		assert_true(shift < 35);
	}
	assert_true((size_t)(end - *p) >= 4 + len);
	uint32_t crc = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 |
		       (*p)[3];
	const uint8_t *msg = *p + 4;
	assert_int_equal(crc, ts_crc32c(0, msg, len));
	*p = msg + len;
	*msg_len = len;
	return msg;
}

static void test_chunked_reference(void **state)
{
	(void)state;
	assert_int_equal(ts_crc32c(0, "123456789", 9), 0xE3069283);
	size_t rlen;
	char *ref = tu_load_data("rw/rr_chunked.pb", &rlen);
	struct ts_rr_chunked_writer w;
	ts_rr_chunked_init(&w, 0);
	struct ts_label l[] = { L("__name__", "up"), L("job", "a") };
	uint8_t data[40];
	for (int i = 0; i < 40; i++)
		data[i] = (uint8_t)i;
	assert_int_equal(ts_rr_chunked_add_chunk(&w, 0, 0, 1, data, 1), TS_EINVALID);
	assert_int_equal(ts_rr_chunked_begin_series(&w, 3, l, 2), 0);
	assert_int_equal(ts_rr_chunked_begin_series(&w, 3, l, 2), TS_EINVALID);
	assert_int_equal(ts_rr_chunked_add_chunk(&w, 1000, 2000, TS_RR_CHUNK_XOR, data, 40), 0);
	assert_int_equal(ts_rr_chunked_add_chunk(&w, -3000, 0, TS_RR_CHUNK_XOR, data, 2), 0);
	assert_int_equal(w.out.len, 0); /* nothing until the series ends */
	assert_int_equal(ts_rr_chunked_end_series(&w), 0);
	assert_int_equal(ts_rr_chunked_end_series(&w), TS_EINVALID);
	const uint8_t *p = w.out.data, *end = w.out.data + w.out.len;
	size_t mlen;
	const uint8_t *msg = next_frame(&p, end, &mlen);
	assert_ptr_equal(p, end);
	assert_int_equal(mlen, rlen);
	assert_memory_equal(msg, ref, rlen);
	/* a series without chunks writes nothing */
	w.out.len = 0;
	assert_int_equal(ts_rr_chunked_begin_series(&w, 0, l, 2), 0);
	assert_int_equal(ts_rr_chunked_end_series(&w), 0);
	assert_int_equal(w.out.len, 0);
	ts_rr_chunked_fini(&w);
	ts_rr_chunked_fini(NULL);
	free(ref);
}

/* Walks one ChunkedReadResponse: checks it has one series with the expected labels and
 * query index, appends its chunks' min times to *mins. */
static void parse_chunked(const uint8_t *msg, size_t len, int64_t want_qi, size_t want_labels,
			  int64_t *mins, size_t *n_mins)
{
	struct ts_pb_reader r, s, c;
	uint32_t f;
	enum ts_pb_wire wt;
	const uint8_t *p;
	size_t n;
	uint64_t v;
	int n_series = 0;
	int64_t qi = 0;
	ts_pb_reader_init(&r, msg, len);
	while (!ts_pb_eof(&r)) {
		assert_int_equal(ts_pb_read_tag(&r, &f, &wt), 0);
		if (f == 2) {
			assert_int_equal(ts_pb_read_varint(&r, &v), 0);
			qi = (int64_t)v;
			continue;
		}
		assert_int_equal(f, 1);
		assert_int_equal(ts_pb_read_bytes(&r, &p, &n), 0);
		n_series++;
		size_t n_labels = 0;
		ts_pb_reader_sub(&s, &r, p, n);
		while (!ts_pb_eof(&s)) {
			assert_int_equal(ts_pb_read_tag(&s, &f, &wt), 0);
			assert_int_equal(ts_pb_read_bytes(&s, &p, &n), 0);
			if (f == 1) {
				n_labels++;
				continue;
			}
			ts_pb_reader_sub(&c, &s, p, n);
			int64_t mn = 0;
			while (!ts_pb_eof(&c)) {
				assert_int_equal(ts_pb_read_tag(&c, &f, &wt), 0);
				if (f == 1) {
					assert_int_equal(ts_pb_read_varint(&c, &v), 0);
					mn = (int64_t)v;
				} else {
					assert_int_equal(ts_pb_skip(&c, f, wt), 0);
				}
			}
			mins[(*n_mins)++] = mn;
		}
		assert_int_equal(n_labels, want_labels);
	}
	assert_int_equal(n_series, 1);
	assert_int_equal(qi, want_qi);
}

static void test_chunked_split(void **state)
{
	(void)state;
	struct ts_label l[] = { L("__name__", "big"), L("instance", "host:9100"),
				L("job", "node") };
	static uint8_t data[1000];
	memset(data, 0xab, sizeof data);
	enum { N = 2500 };
	static int64_t mins[N + 10];
	size_t bounds[] = { TS_RR_MAX_FRAME_BYTES, 5000, 1100 };
	for (size_t bi = 0; bi < 3; bi++) {
		struct ts_rr_chunked_writer w;
		ts_rr_chunked_init(&w, bounds[bi]);
		size_t n_chunks = bi == 0 ? N : 50;
		/* two series of two queries */
		for (int s = 0; s < 2; s++) {
			assert_int_equal(ts_rr_chunked_begin_series(&w, s, l, 3), 0);
			for (size_t i = 0; i < n_chunks; i++)
				assert_int_equal(ts_rr_chunked_add_chunk(&w, (int64_t)i * 1000 + 1,
									 (int64_t)i * 1000 + 999, 1,
									 data, sizeof data),
						 0);
			assert_int_equal(ts_rr_chunked_end_series(&w), 0);
		}
		const uint8_t *p = w.out.data, *end = w.out.data + w.out.len;
		size_t frames = 0;
		for (int s = 0; s < 2; s++) {
			size_t n_mins = 0;
			while (n_mins < n_chunks) {
				size_t mlen;
				const uint8_t *msg = next_frame(&p, end, &mlen);
				assert_true(mlen <= bounds[bi]);
				parse_chunked(msg, mlen, s, 3, mins, &n_mins);
				frames++;
			}
			assert_int_equal(n_mins, n_chunks);
			for (size_t i = 0; i < n_chunks; i++)
				assert_int_equal(mins[i], (int64_t)i * 1000 + 1);
		}
		assert_ptr_equal(p, end);
		assert_int_equal(frames, w.n_frames);
		if (bi == 0)
			assert_int_equal(frames, 2 * 3); /* 2.5 MB of chunks: 3 frames per series */
		if (bi == 2)
			assert_int_equal(frames, 2 * n_chunks); /* one chunk per frame */
		ts_rr_chunked_fini(&w);
	}
	/* a chunk that cannot fit a frame of its own; labels that leave no room */
	struct ts_rr_chunked_writer w;
	ts_rr_chunked_init(&w, 500);
	assert_int_equal(ts_rr_chunked_begin_series(&w, 0, l, 3), 0);
	assert_int_equal(ts_rr_chunked_add_chunk(&w, 1, 2, 1, data, sizeof data), TS_ELIMIT);
	assert_int_equal(ts_rr_chunked_end_series(&w), 0);
	ts_rr_chunked_fini(&w);
	ts_rr_chunked_init(&w, 20);
	assert_int_equal(ts_rr_chunked_begin_series(&w, 0, l, 3), TS_ELIMIT);
	ts_rr_chunked_fini(&w);
	/* allocation failures */
	for (unsigned long k = 1;; k++) {
		ts_rr_chunked_init(&w, 3000);
		ts_mem_fail_at(k, 0);
		int rc = ts_rr_chunked_begin_series(&w, 1, l, 3);
		for (int i = 0; rc == 0 && i < 10; i++)
			rc = ts_rr_chunked_add_chunk(&w, i, i, 1, data, sizeof data);
		if (rc == 0)
			rc = ts_rr_chunked_end_series(&w);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		assert_int_equal(rc, fired ? -ENOMEM : 0);
		ts_rr_chunked_fini(&w);
		if (!fired)
			break;
	}
}

int main(void)
{
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_decode_alloc_failures),
		cmocka_unit_test(test_samples_encoding),
		cmocka_unit_test(test_chunked_reference),
		cmocka_unit_test(test_chunked_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
