/*
 * test_remote_write.c - remote-write decoding against the golden vectors of
 * tests/data/rw/ (encoded by python3-protobuf, see tests/integration/gen_rw_vectors.py),
 * the label rules, content negotiation, and hostile input: every truncation, bit flips,
 * allocation failure at every N, request limits. Also prints the decode speed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "wire/pb.h"
#include "wire/remote_write.h"
#include "tsdb/utf8.h"
#include "wire/snappy_io.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "testutil.h"

#define SEED 0x5eed1234u

/* Vector tests/data/rw/<name>, decompressed into an exactly-sized heap copy (so ASan
 * sees any overread). Caller frees. */
static uint8_t *load_vector(const char *name, size_t *len)
{
	char rel[256];
	snprintf(rel, sizeof rel, "rw/%s", name);
	return tu_load_snappy(rel, 1 << 24, len);
}

static int in_buf(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;
	if (n == 0 && len == 0)
		return 1;
	return q >= buf && q <= buf + len && n <= (size_t)(buf + len - q);
}

/* Invariants of any successful decode: every string inside the input, counts add up. */
static void check_invariants(const struct ts_rw_request *r, const uint8_t *buf, size_t len)
{
	size_t ns = 0, nh = 0, ne = 0;
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_rw_series *s = &r->series[i];
		for (uint32_t k = 0; k < s->n_labels; k++) {
			assert_true(in_buf(s->labels[k].name, s->labels[k].name_len, buf, len));
			assert_true(in_buf(s->labels[k].value, s->labels[k].value_len, buf, len));
		}
		for (uint32_t k = 0; k < s->n_exemplars; k++)
			for (uint32_t j = 0; j < s->exemplars[k].n_labels; j++) {
				const struct ts_label *l = &s->exemplars[k].labels[j];
				assert_true(in_buf(l->name, l->name_len, buf, len));
				assert_true(in_buf(l->value, l->value_len, buf, len));
			}
		if (s->has_metadata) {
			assert_true(in_buf(s->help.p, s->help.len, buf, len));
			assert_true(in_buf(s->unit.p, s->unit.len, buf, len));
		}
		ns += s->n_samples;
		nh += s->n_histograms;
		ne += s->n_exemplars;
	}
	assert_int_equal(ns, r->n_samples);
	assert_int_equal(nh, r->n_histograms);
	assert_int_equal(ne, r->n_exemplars);
	for (size_t i = 0; i < r->n_symbols; i++)
		assert_true(in_buf(r->symbols[i].p, r->symbols[i].len, buf, len));
	for (size_t i = 0; i < r->n_metadata; i++) {
		assert_true(in_buf(r->metadata[i].family.p, r->metadata[i].family.len, buf, len));
		assert_true(in_buf(r->metadata[i].help.p, r->metadata[i].help.len, buf, len));
		assert_true(in_buf(r->metadata[i].unit.p, r->metadata[i].unit.len, buf, len));
	}
}

/* Compares one vector's decode with its lines of expected.txt; *pos walks the file. */
static void check_vector(struct ts_rw_request *r, const uint8_t *buf, size_t len, char **pos)
{
	char *line;
	long si = -1;
	uint32_t li = 0, sj = 0, ei = 0, eli = 0;
	size_t mi = 0;
	int in_ex = 0;
	const struct ts_rw_series *s = NULL;
	const struct ts_rw_exemplar *e = NULL;
	while ((line = strsep(pos, "\n")) != NULL) {
		char a[512], b[512], c[512], d[512];
		long long t;
		unsigned long long bits;
		unsigned n1, n2, n3, n4;
		if (!strcmp(line, "end"))
			break;
		if (sscanf(line, "series %u %u %u %u", &n1, &n2, &n3, &n4) == 4) {
			si++;
			assert_true((size_t)si < r->n_series);
			s = &r->series[si];
			assert_int_equal(s->n_labels, n1);
			assert_int_equal(s->n_samples, n2);
			assert_int_equal(s->n_histograms, n3);
			assert_int_equal(s->n_exemplars, n4);
			li = sj = ei = 0;
			in_ex = 0;
		} else if (sscanf(line, "label %511s %511s", a, b) == 2) {
			const struct ts_label *l = in_ex ? &e->labels[eli++] : &s->labels[li++];
			if (!tu_hex_eq(a, l->name, l->name_len) ||
			    !tu_hex_eq(b, l->value, l->value_len))
				fail_msg("series %ld: label mismatch: want %s=%s, got %.*s=%.*s",
					 si, a, b, (int)l->name_len, l->name, (int)l->value_len,
					 l->value);
		} else if (sscanf(line, "sample %lld %llx", &t, &bits) == 2) {
			const struct ts_sample *sm = &s->samples[sj++];
			uint64_t got;
			memcpy(&got, &sm->v, 8);
			assert_int_equal(sm->t_ms, t);
			if (got != bits)
				fail_msg("series %ld sample %u: bits %016llx, want %016llx", si,
					 sj - 1, (unsigned long long)got, bits);
		} else if (sscanf(line, "exemplar %u %lld %llx", &n1, &t, &bits) == 3) {
			e = &s->exemplars[ei++];
			uint64_t got;
			memcpy(&got, &e->v, 8);
			assert_int_equal(e->n_labels, n1);
			assert_int_equal(e->t_ms, t);
			assert_true(got == bits);
			in_ex = 1;
			eli = 0;
		} else if (sscanf(line, "meta2 %u %u %511s %511s", &n1, &n2, a, b) == 4) {
			assert_int_equal(s->has_metadata, n1);
			assert_int_equal(s->type, n2);
			if (n1) {
				assert_true(tu_hex_eq(a, s->help.p, s->help.len));
				assert_true(tu_hex_eq(b, s->unit.p, s->unit.len));
			}
		} else if (sscanf(line, "metadata %u %511s %511s %511s", &n1, a, b, c) == 4) {
			assert_true(mi < r->n_metadata);
			const struct ts_rw_metadata *m = &r->metadata[mi++];
			assert_int_equal(m->type, n1);
			assert_true(tu_hex_eq(a, m->family.p, m->family.len));
			assert_true(tu_hex_eq(b, m->help.p, m->help.len));
			assert_true(tu_hex_eq(c, m->unit.p, m->unit.len));
		} else if (sscanf(line, "valid %511s", d) == 1) {
			/* validation rewrites labels, so it comes last for a series */
			assert_int_equal(li, s->n_labels);
			assert_int_equal(sj, s->n_samples);
			assert_int_equal(ei, s->n_exemplars);
			enum ts_rw_reason why;
			char msg[256];
			int rc = ts_rw_validate_series(&r->series[si], NULL, &why, msg, sizeof msg);
			if (strcmp(ts_rw_reason_name(why), d) != 0)
				fail_msg("series %ld: validation %s (%s), want %s", si,
					 ts_rw_reason_name(why), msg, d);
			assert_int_equal(rc, why == TS_RW_VALID ? 0 : TS_EINVALID);
		} else {
			fail_msg("bad expectation line: %s", line);
		}
	}
	assert_int_equal((size_t)(si + 1), r->n_series);
	assert_int_equal(mi, r->n_metadata);
	(void)buf;
	(void)len;
}

static uint64_t rng = SEED; /* tu_rand() state, one sequence for the whole run */

/* Truncation at every byte and bit flips: a valid decode or TS_ECORRUPT, never more;
 * for 1.0 also TS_EINVALID, when a flip turns the series into RW 2.0 fields. */
static void hostile(struct ts_rw_request *r, enum ts_rw_version v, const uint8_t *buf, size_t len)
{
	for (size_t n = 0; n <= len; n++) {
		uint8_t *cut = tu_memdup(buf, n);
		int rc = ts_rw_decode(r, v, cut, n);
		assert_true(rc == 0 || rc == TS_ECORRUPT);
		if (rc == 0)
			check_invariants(r, cut, n);
		else
			assert_true(r->err[0] != '\0');
		free(cut);
	}
	uint8_t *m = tu_memdup(buf, len);
	size_t nbits = len * 8, tries = nbits <= 16384 ? nbits : 4096;
	for (size_t i = 0; i < tries; i++) {
		size_t bit = nbits <= 16384 ? i : tu_rand(&rng) % nbits;
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = ts_rw_decode(r, v, m, len);
		if (rc == TS_EINVALID && v == TS_RW_V1 && strstr(r->err, "remote write 2.0"))
			rc = TS_ECORRUPT;
		if (rc != 0 && rc != TS_ECORRUPT)
			fail_msg("bit %zu (seed %#x): rc %d", bit, SEED, rc);
		if (rc == 0) {
			check_invariants(r, m, len);
			for (size_t k = 0; k < r->n_series; k++)
				ts_rw_validate_series(&r->series[k], NULL, NULL, NULL, 0);
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
	int n_vec = 0;
	struct ts_rw_request r;
	ts_rw_request_init(&r);
	while ((line = strsep(&pos, "\n")) != NULL) {
		char file[128], kind[8], expect[16];
		if (sscanf(line, "vector %127s %7s %15s", file, kind, expect) != 3)
			continue;
		if (strcmp(kind, "rw1") && strcmp(kind, "rw2"))
			continue;
		enum ts_rw_version v = kind[2] == '1' ? TS_RW_V1 : TS_RW_V2;
		size_t len;
		uint8_t *buf = load_vector(file, &len);
		int rc = ts_rw_decode(&r, v, buf, len);
		if (!strcmp(expect, "ok")) {
			if (rc != 0)
				fail_msg("%s: rc %d (%s)", file, rc, r.err);
			check_invariants(&r, buf, len);
			check_vector(&r, buf, len, &pos);
		} else {
			if (rc != TS_ECORRUPT)
				fail_msg("%s: rc %d, want TS_ECORRUPT", file, rc);
			assert_true(strlen(r.err) > 0);
			while ((line = strsep(&pos, "\n")) != NULL && strcmp(line, "end") != 0)
				;
		}
		hostile(&r, v, buf, len);
		free(buf);
		n_vec++;
	}
	assert_true(n_vec >= 25);
	ts_rw_request_fini(&r);
	free(exp);
}

static void test_error_messages(void **state)
{
	(void)state;
	struct ts_rw_request r;
	ts_rw_request_init(&r);
	size_t len;
	uint8_t *b = load_vector("rw2_bad_ref.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), TS_ECORRUPT);
	assert_non_null(strstr(r.err, "timeseries[0]"));
	assert_non_null(strstr(r.err, "out of range"));
	free(b);
	b = load_vector("rw2_odd_refs.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), TS_ECORRUPT);
	assert_non_null(strstr(r.err, "odd"));
	free(b);
	b = load_vector("rw2_bad_symbol0.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), TS_ECORRUPT);
	assert_non_null(strstr(r.err, "symbols[0]"));
	free(b);
	b = load_vector("rw1_bad_wiretype.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), TS_ECORRUPT);
	assert_non_null(strstr(r.err, "wire type"));
	free(b);
	assert_int_equal(ts_rw_decode(&r, (enum ts_rw_version)3, NULL, 0), TS_EINVALID);
	/* A 2.0 body sent as 1.0 would decode to nothing: refused, naming the mismatch. */
	b = load_vector("rw2_basic.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), TS_EINVALID);
	assert_non_null(strstr(r.err, "remote write 2.0"));
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), 0);
	free(b);
	/* Symbols alone (no series either way) stay a valid empty 1.0 request. */
	b = load_vector("rw1_unknown_fields.sz", &len);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), 0);
	free(b);
	ts_rw_request_fini(&r);
	ts_rw_request_fini(NULL);
}

/* Strings of 128 bytes and more take the general label path; fields in reverse order
 * and repeated fields (last one wins) too. */
static void test_label_paths(void **state)
{
	(void)state;
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	char big[300];
	memset(big, 'v', sizeof big);
	size_t ts_mark, l_mark;
	ts_pb_begin(&b, 1, &ts_mark);
	ts_pb_begin(&b, 1, &l_mark);
	ts_pb_put_bytes_field(&b, 1, "__name__", 8);
	ts_pb_put_bytes_field(&b, 2, big, sizeof big);
	ts_pb_end(&b, l_mark);
	ts_pb_begin(&b, 1, &l_mark);
	ts_pb_put_bytes_field(&b, 2, "second", 6);
	ts_pb_put_bytes_field(&b, 1, "b", 1);
	ts_pb_put_bytes_field(&b, 1, "a", 1);
	ts_pb_end(&b, l_mark);
	ts_pb_end(&b, ts_mark);
	struct ts_rw_request r;
	ts_rw_request_init(&r);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b.data, b.len), 0);
	assert_int_equal(r.n_series, 1);
	assert_int_equal(r.series[0].n_labels, 2);
	assert_int_equal(r.series[0].labels[0].value_len, sizeof big);
	assert_memory_equal(r.series[0].labels[0].value, big, sizeof big);
	assert_int_equal(r.series[0].labels[1].name_len, 1);
	assert_int_equal(r.series[0].labels[1].name[0], 'a');
	assert_memory_equal(r.series[0].labels[1].value, "second", 6);
	assert_int_equal(r.series[0].n_samples, 0);
	ts_rw_request_fini(&r);
	ts_pb_buf_fini(&b);
}

static void test_limits_and_reuse(void **state)
{
	(void)state;
	struct ts_rw_request r;
	ts_rw_request_init(&r);
	size_t len;
	uint8_t *b = load_vector("rw1_many.sz", &len);
	r.max_series = 5;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), TS_ELIMIT);
	assert_non_null(strstr(r.err, "series"));
	assert_int_equal(r.n_series, 0);
	r.max_series = 1000;
	r.max_samples = 199;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), TS_ELIMIT);
	r.max_samples = 200;
	r.max_labels = 999;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), TS_ELIMIT);
	r.max_labels = 1000;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), 0);
	/* steady state: the same request again allocates nothing */
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b, len), 0);
	assert_int_equal(ts_mem_count(), 0);
	assert_int_equal(r.n_series, 100);
	assert_int_equal(r.n_samples, 200);
	free(b);
	b = load_vector("rw2_basic.sz", &len);
	r.max_symbols = 3;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), TS_ELIMIT);
	r.max_symbols = 100;
	r.max_exemplars = 0;
	assert_int_equal(ts_rw_decode(&r, TS_RW_V2, b, len), TS_ELIMIT);
	free(b);
	ts_rw_request_fini(&r);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	static const struct {
		const char *file;
		enum ts_rw_version v;
	} vs[] = {
		{ "rw1_many.sz", TS_RW_V1 },	      { "rw1_exemplars_hist.sz", TS_RW_V1 },
		{ "rw1_metadata.sz", TS_RW_V1 },      { "rw2_basic.sz", TS_RW_V2 },
		{ "rw2_unpacked_refs.sz", TS_RW_V2 },
	};
	for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
		size_t len;
		uint8_t *b = load_vector(vs[i].file, &len);
		for (unsigned long n = 1;; n++) {
			struct ts_rw_request r;
			ts_rw_request_init(&r);
			ts_mem_fail_at(n, 0);
			int rc = ts_rw_decode(&r, vs[i].v, b, len);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (fired) {
				assert_int_equal(rc, -ENOMEM);
			} else {
				assert_int_equal(rc, 0);
				check_invariants(&r, b, len);
			}
			ts_rw_request_fini(&r);
			if (!fired)
				break;
		}
		free(b);
	}
}

static struct ts_label L(const char *n, const char *v) {
	struct ts_label l = { n, v, (uint32_t)strlen(n), (uint32_t)strlen(v) };
	return l;
}

static enum ts_rw_reason
check(struct ts_label *ls, uint32_t n, const struct ts_rw_limits *lim, int want_rc)
{
	struct ts_rw_series s;
	memset(&s, 0, sizeof s);
	s.labels = ls;
	s.n_labels = n;
	enum ts_rw_reason why;
	char msg[64];
	int rc = ts_rw_validate_series(&s, lim, &why, msg, sizeof msg);
	assert_int_equal(rc, want_rc);
	assert_true(strlen(msg) < sizeof msg);
	if (why != TS_RW_VALID)
		assert_true(strlen(msg) > 0);
	return why;
}

static void test_validate(void **state)
{
	(void)state;
	struct ts_label a[] = { L("__name__", "up"), L("job", "x"), L("zone", "eu") };
	assert_int_equal(check(a, 3, NULL, 0), TS_RW_VALID);
	struct ts_rw_limits lim = { 2, 0, 0 };
	assert_int_equal(check(a, 3, &lim, TS_ELIMIT), TS_RW_TOO_MANY_LABELS);
	lim = (struct ts_rw_limits){ 0, 3, 0 };
	assert_int_equal(check(a, 3, &lim, TS_ELIMIT), TS_RW_NAME_TOO_LONG);
	lim = (struct ts_rw_limits){ 0, 0, 1 };
	assert_int_equal(check(a, 3, &lim, TS_ELIMIT), TS_RW_VALUE_TOO_LONG);
	lim = (struct ts_rw_limits){ 3, 8, 2 };
	assert_int_equal(check(a, 3, &lim, 0), TS_RW_VALID);
	/* empty values are dropped before counting */
	struct ts_label b[] = { L("__name__", "up"), L("a", ""), L("b", ""), L("job", "x") };
	lim = (struct ts_rw_limits){ 2, 0, 0 };
	assert_int_equal(check(b, 4, &lim, 0), TS_RW_VALID);
	struct ts_label c[] = { L("__name__", "a:b_c9"), L("_z", "x") };
	assert_int_equal(check(c, 2, NULL, 0), TS_RW_VALID);
	struct ts_label d[] = { L("__name__", "a"), L("9x", "x") };
	assert_int_equal(check(d, 2, NULL, TS_EINVALID), TS_RW_BAD_LABEL_NAME);
	struct ts_label e[] = { L("__name__", "a"), L("x:y", "x") };
	assert_int_equal(check(e, 2, NULL, TS_EINVALID), TS_RW_BAD_LABEL_NAME);
	struct ts_label f[] = { L("__name__", "a-b") };
	assert_int_equal(check(f, 1, NULL, TS_EINVALID), TS_RW_BAD_METRIC_NAME);
	assert_int_equal(check(NULL, 0, NULL, TS_EINVALID), TS_RW_NO_METRIC_NAME);
	/* the message escapes what it quotes and names the series */
	struct ts_label g[] = { L("__name__", "m"), L("a\"\x01", "v") };
	struct ts_rw_series s = { .labels = g, .n_labels = 2 };
	char msg[256];
	assert_int_equal(ts_rw_validate_series(&s, NULL, NULL, msg, sizeof msg), TS_EINVALID);
	assert_non_null(strstr(msg, "a\\x22\\x01"));
	assert_non_null(strstr(msg, "series \"m\""));
	for (int r = 0; r <= TS_RW_VALUE_TOO_LONG; r++)
		assert_string_not_equal(ts_rw_reason_name((enum ts_rw_reason)r), "unknown");
}

static void test_utf8(void **state)
{
	(void)state;
	uint8_t b[4];
	for (unsigned x = 0; x < 0x10000; x++) {
		b[0] = (uint8_t)(x >> 8), b[1] = (uint8_t)x;
		assert_int_equal(ts_utf8_valid(b, 2), tu_utf8_valid_ref(b, 2));
		assert_int_equal(ts_utf8_valid(b, 1), tu_utf8_valid_ref(b, 1));
	}
	for (unsigned x = 0xc00000; x < 0x1000000; x++) {
		b[0] = (uint8_t)(x >> 16), b[1] = (uint8_t)(x >> 8), b[2] = (uint8_t)x;
		if (ts_utf8_valid(b, 3) != tu_utf8_valid_ref(b, 3))
			fail_msg("3-byte %06x", x);
	}
	/* 4-byte: every lead byte with a spread of continuations */
	for (unsigned lead = 0xf0; lead <= 0xff; lead++)
		for (unsigned c1 = 0x70; c1 < 0xd0; c1++)
			for (unsigned c2 = 0x7f; c2 < 0xc1; c2 += 0x41) {
				b[0] = (uint8_t)lead, b[1] = (uint8_t)c1, b[2] = (uint8_t)c2,
				b[3] = 0x80;
				assert_int_equal(ts_utf8_valid(b, 4), tu_utf8_valid_ref(b, 4));
			}
	assert_true(ts_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_false(ts_utf8_valid("\xf4\x90\x80\x80", 4)); /* U+110000 */
	assert_false(ts_utf8_valid("\xed\xa0\x80", 3));	    /* U+D800 */
	assert_true(ts_utf8_valid("\xee\x80\x80", 3));	    /* U+E000 */
	assert_false(ts_utf8_valid("\xe0\x80\xaf", 3));	    /* overlong '/' */
	assert_false(ts_utf8_valid("\xf0\x9f\x94", 3));	    /* truncated emoji */
	assert_true(ts_utf8_valid("", 0));
}

static int neg(const char *ct, const char *ce, enum ts_rw_version *v)
{
	char msg[128];
	int rc = ts_rw_negotiate(ct, ct ? strlen(ct) : 0, ce, ce ? strlen(ce) : 0, v, msg,
				 sizeof msg);
	if (rc)
		assert_true(strlen(msg) > 0);
	return rc;
}

static void test_negotiate(void **state)
{
	(void)state;
	enum ts_rw_version v;
	assert_int_equal(neg(NULL, NULL, &v), 0);
	assert_int_equal(v, TS_RW_V1);
	assert_int_equal(neg("", "", &v), 0);
	assert_int_equal(v, TS_RW_V1);
	assert_int_equal(neg("application/x-protobuf", "snappy", &v), 0);
	assert_int_equal(v, TS_RW_V1);
	assert_int_equal(neg("application/x-protobuf;proto=prometheus.WriteRequest", "snappy", &v),
			 0);
	assert_int_equal(v, TS_RW_V1);
	assert_int_equal(
		neg("application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", &v),
		0);
	assert_int_equal(v, TS_RW_V2);
	assert_int_equal(
		neg(" Application/X-Protobuf ; charset=utf-8 ;PROTO = \"io.prometheus.write.v2.Request\" ",
		    " SNAPPY ", &v),
		0);
	assert_int_equal(v, TS_RW_V2);
	assert_int_equal(neg("application/x-protobuf;;", NULL, &v), 0);
	assert_int_equal(v, TS_RW_V1);
	assert_int_equal(
		neg("application/x-protobuf;proto=\"io.prometheus.write.v2.\\Request\"", NULL, &v),
		0);
	assert_int_equal(v, TS_RW_V2);
	assert_int_equal(
		neg("application/x-protobuf;proto=io.prometheus.write.v2.request", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf;proto=foo", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf;proto", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf;proto=", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf;proto=\"unterminated", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf x", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobufx", NULL, &v), 415);
	assert_int_equal(neg("application/json", NULL, &v), 415);
	assert_int_equal(neg("application/x-protobuf", "gzip", &v), 415);
	assert_int_equal(neg("application/x-protobuf", "identity", &v), 415);
	assert_int_equal(neg("application/x-protobuf", "snappy, gzip", &v), 415);
	assert_int_equal(neg("application/x-protobuf", "zstd", &v), 415);
	char longv[200];
	snprintf(longv, sizeof longv, "application/x-protobuf;proto=%0150d", 0);
	assert_int_equal(neg(longv, NULL, &v), 415);
	/* not NUL-terminated: only ct_len bytes count */
	assert_int_equal(
		ts_rw_negotiate("application/x-protobuf;proto=io.prometheus.write.v2.Requestjunk",
				59, NULL, 0, &v, NULL, 0),
		0);
	assert_int_equal(v, TS_RW_V2);
}

/* Decode speed for a realistic RW1 body: 1000 series x 1 sample, 10 labels each,
 * measured in thread CPU time (the machine may be shared). Printed, not asserted. */
static void test_speed(void **state)
{
	(void)state;
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	static const char *names[] = { "__name__",  "container", "endpoint", "instance", "job",
				       "namespace", "node",	 "pod",	     "service",	 "zone" };
	for (int i = 0; i < 1000; i++) {
		size_t ts_mark, l_mark, s_mark;
		char val[64];
		assert_int_equal(ts_pb_begin(&b, 1, &ts_mark), 0);
		for (int k = 0; k < 10; k++) {
			if (k == 0)
				snprintf(val, sizeof val, "container_cpu_usage_seconds_total");
			else
				snprintf(val, sizeof val, "%s-value-%d-%d", names[k],
					 i % (k * 7 + 3), i);
			ts_pb_begin(&b, 1, &l_mark);
			ts_pb_put_bytes_field(&b, 1, names[k], strlen(names[k]));
			ts_pb_put_bytes_field(&b, 2, val, strlen(val));
			ts_pb_end(&b, l_mark);
		}
		ts_pb_begin(&b, 2, &s_mark);
		ts_pb_put_double_field(&b, 1, i * 0.25);
		ts_pb_put_int64_field(&b, 2, 1700000000000LL + i);
		ts_pb_end(&b, s_mark);
		ts_pb_end(&b, ts_mark);
	}
	uint8_t *c = NULL, *d = NULL;
	size_t ccap = 0, dcap = 0, clen, dlen;
	assert_int_equal(ts_snappy_compress(b.data, b.len, &c, &ccap, &clen), 0);
	struct ts_rw_request r;
	ts_rw_request_init(&r);
	assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b.data, b.len), 0);
	assert_int_equal(r.n_series, 1000);
	int iters = 300;
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (int i = 0; i < iters; i++)
		assert_int_equal(ts_rw_decode(&r, TS_RW_V1, b.data, b.len), 0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	for (int i = 0; i < iters; i++) {
		assert_int_equal(ts_snappy_decompress(c, clen, 1 << 24, &d, &dcap, &dlen), 0);
		assert_int_equal(ts_rw_decode(&r, TS_RW_V1, d, dlen), 0);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t2);
	double ns1 = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		     iters / 1000;
	double ns2 = ((double)(t2.tv_sec - t1.tv_sec) * 1e9 + (double)(t2.tv_nsec - t1.tv_nsec)) /
		     iters / 1000;
	printf("rw1 decode: %zu bytes (%zu snappy), %.1f ns/sample decode, %.1f ns/sample snappy+decode\n",
	       b.len, clen, ns1, ns2);
	for (size_t i = 0; i < r.n_series; i++)
		assert_int_equal(ts_rw_validate_series(&r.series[i], NULL, NULL, NULL, 0), 0);
	ts_rw_request_fini(&r);
	ts_free(c);
	ts_free(d);
	ts_pb_buf_fini(&b);
}

int main(void)
{
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),	       cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_label_paths),    cmocka_unit_test(test_limits_and_reuse),
		cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_validate),
		cmocka_unit_test(test_utf8),	       cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
