/*
 * test_cold.c - the cold block codec (storage/cold.h): bit-exact round trips over many
 * generated shapes (counters with resets, gauges at various precisions, constants, random
 * bits, NaN payloads, stale markers, +-Inf, -0.0, integers beyond 2^53, shared and
 * jittered timestamps, single samples, extreme timestamps), the value kind each shape
 * gets, input validation, the size limit, the header, every truncation and bit flip of
 * blocks, damaged bodies re-sealed with a valid CRC (so the directory and column
 * checks are reached), hand-built bodies for each decoder check, allocation failure at
 * every allocation of encode and open, concurrent decoding, and the golden block
 * $TS_TESTDATA/golden/cold-v1.bin (written only when TS_COLD_WRITE_GOLDEN is set).
 * Blocks are opened from exact-size heap copies so ASan sees any read past the end.
 * Random cases use a seeded PRNG; TS_SEED overrides the seed, which is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/cold.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "testutil.h"

#define SEED 20240917 /* TS_SEED overrides */
#define STALE 0x7ff0000000000002ull
#define GOLDEN "golden/cold-v1.bin"

static uint64_t rng;

static uint64_t rnd(uint64_t n) /* uniform in [0, n), n > 0 */
{
	return tu_rand(&rng) % n;
}

/* ---- series sets ------------------------------------------------------------------ */

/* A set of series being built: each owns its arrays unless it shares the previous
 * series' timestamps (then t points at them and own_t is 0). */
struct set {
	struct ts_cold_input in[64];
	int64_t *t[64];
	uint64_t *v[64];
	int own_t[64];
	size_t n;
};

static void set_free(struct set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->own_t[i])
			free(s->t[i]);
		free(s->v[i]);
	}
	s->n = 0;
}

/* Adds a series of n samples with id; shares the previous timestamps if share and the
 * previous series has n samples. Returns its index; the caller fills t (if owned) and v. */
static size_t set_add(struct set *s, uint64_t id, uint32_t n, int share)
{
	size_t i = s->n++;
	assert_true(i < 64);
	if (share && i && s->in[i - 1].n == n) {
		s->t[i] = s->t[i - 1];
		s->own_t[i] = 0;
	} else {
		s->t[i] = malloc(n * sizeof(int64_t));
		s->own_t[i] = 1;
	}
	s->v[i] = malloc(n * sizeof(uint64_t));
	assert_non_null(s->t[i]);
	assert_non_null(s->v[i]);
	s->in[i] = (struct ts_cold_input){ id, n, s->t[i], s->v[i] };
	return i;
}

static const double p10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };

/* A special value: NaN payloads (the stale marker among them), +-Inf, -0.0. */
static uint64_t special(void)
{
	static const uint64_t sp[] = { STALE,
				       0x7ff8000000000000ull,
				       0xfff8000000000000ull,
				       0x7ff0000000000001ull,
				       0x7fffffffffffffffull,
				       0x7ff0000000000000ull,
				       0xfff0000000000000ull,
				       0x8000000000000000ull };
	return sp[rnd(sizeof sp / sizeof sp[0])];
}

enum { T_REGULAR, T_JITTER, T_GAPS, T_RANDOM, T_EXTREME, T_COUNT };

/* Strictly ascending timestamps of one of the shapes above. */
static void gen_times(int64_t *t, uint32_t n, int shape)
{
	int64_t x = (int64_t)rnd(4000000000000ull) - 1000000000000;
	int64_t step = 1 + (int64_t)rnd(60000);
	switch (shape) {
	case T_REGULAR:
		for (uint32_t j = 0; j < n; j++)
			t[j] = x + (int64_t)j * step;
		break;
	case T_JITTER:
		for (uint32_t j = 0; j < n; j++)
			t[j] = x + (int64_t)j * 15000 + (int64_t)rnd(7) - 3;
		break;
	case T_GAPS:
		for (uint32_t j = 0; j < n; j++) {
			x += rnd(20) ? 10000 : 1 + (int64_t)rnd(100000000);
			t[j] = x;
		}
		break;
	case T_RANDOM:
		for (uint32_t j = 0; j < n; j++) {
			x += 1 + (int64_t)rnd(1ull << rnd(40));
			t[j] = x;
		}
		break;
	default: {
		/* From INT64_MIN up, INT64_MAX down, or spread over the whole range: deltas
		 * beyond INT64_MAX and dods that wrap. */
		int how = (int)rnd(3);
		uint64_t span = UINT64_MAX / (n + 1);
		for (uint32_t j = 0; j < n; j++) {
			if (how == 0)
				t[j] = INT64_MIN + (int64_t)j * (1 + (int64_t)rnd(1000));
			else if (how == 1)
				t[j] = INT64_MAX - (int64_t)(n - 1 - j) * 7;
			else
				t[j] = (int64_t)((uint64_t)INT64_MIN + span * j +
						 rnd(span / 2 + 1));
		}
		if (how == 0)
			for (uint32_t j = 1; j < n; j++)
				if (t[j] <= t[j - 1])
					t[j] = t[j - 1] + 1;
		break;
	}
	}
}

enum {
	V_COUNTER,  /* decimal counter with resets */
	V_STEADY,   /* counter at an almost constant rate */
	V_GAUGE,    /* decimal random walk, may go negative */
	V_CONST,    /* one value, any bits */
	V_BITS,	    /* random 64-bit patterns */
	V_SPECIALS, /* decimals with NaN / stale / Inf / -0.0 mixed in */
	V_BIGINT,   /* integer doubles beyond 2^53 */
	V_EXTREME,  /* decimals of huge and tiny magnitude */
	V_COMPUTED, /* sums of 0.1 steps: not short decimals */
	V_STALE,    /* mostly stale markers */
	V_MIXSCALE, /* values with different numbers of decimals */
	V_COUNT
};

static void gen_values(uint64_t *v, uint32_t n, int shape)
{
	int k = (int)rnd(7);
	int64_t m = (int64_t)rnd(1000000) - (shape == V_GAUGE ? 500000 : 0);
	double g = 0;
	uint64_t c = tu_rand(&rng);
	for (uint32_t j = 0; j < n; j++) {
		switch (shape) {
		case V_COUNTER:
			m = rnd(50) ? m + (int64_t)rnd(1000) : 0;
			v[j] = tu_bits((double)m / p10[k % 4]);
			break;
		case V_STEADY:
			m += 15000 + (int64_t)rnd(5);
			v[j] = tu_bits((double)m / p10[k % 4]);
			break;
		case V_GAUGE:
			m += (int64_t)rnd(2001) - 1000;
			v[j] = tu_bits((double)m / p10[k]);
			break;
		case V_CONST: v[j] = c; break;
		case V_BITS: v[j] = tu_rand(&rng); break;
		case V_SPECIALS:
			m += (int64_t)rnd(21) - 10;
			v[j] = rnd(4) ? tu_bits((double)m / p10[k]) : special();
			break;
		case V_BIGINT: {
			double x = 9007199254740992.0 * (double)(1 + rnd(1000));
			v[j] = tu_bits(rnd(2) ? x + 2.0 * (double)rnd(1000) : x * 1e3);
			break;
		}
		case V_EXTREME:
			m += (int64_t)rnd(100);
			v[j] = tu_bits(k & 1 ? (double)m * 1e20 : (double)m / 1e22 / 1e3);
			break;
		case V_COMPUTED:
			g += 0.1;
			v[j] = tu_bits(g);
			break;
		case V_STALE: v[j] = rnd(8) ? STALE : tu_bits((double)rnd(100)); break;
		default: {
			static const double mix[] = { 0.5, 0.25, 1.125, 3, 1e3, 0.001, 77.7 };
			v[j] = tu_bits(mix[rnd(7)] * (double)(1 + rnd(3)));
			break;
		}
		}
	}
}

/* A random set: n_series series with random ids, shapes, shared timestamps. */
static void gen_set(struct set *s, size_t n_series, uint32_t max_n)
{
	uint64_t id = rnd(4) ? rnd(1000) : UINT64_MAX - 64 * 1000;
	for (size_t i = 0; i < n_series; i++) {
		id += 1 + (rnd(3) ? 0 : rnd(1000));
		uint32_t n = rnd(8) ? 1 + (uint32_t)rnd(max_n) : 1;
		int share = rnd(3) != 0;
		if (share && i)
			n = s->in[i - 1].n;
		size_t k = set_add(s, id, n, share);
		if (s->own_t[k])
			gen_times(s->t[k], n, (int)rnd(T_COUNT));
		gen_values(s->v[k], n, (int)rnd(V_COUNT));
	}
}

/* ---- checks ----------------------------------------------------------------------- */

static void encode_ok(const struct set *s, int level, uint8_t **blk, size_t *len)
{
	int rc = ts_cold_encode(s->in, s->n, level, blk, len);
	if (rc)
		fail_msg("ts_cold_encode: %s", ts_strerror(rc));
}

/* Opens blk (an exact-size copy) and checks it holds exactly in[0..n). */
static void check_block(const uint8_t *blk, size_t len, const struct ts_cold_input *in, size_t n)
{
	struct ts_cold_info info;
	assert_int_equal(ts_cold_peek(blk, len, &info), 0);
	assert_int_equal(info.n_series, n);
	assert_int_equal(info.first_id, in[0].id);
	assert_int_equal(info.last_id, in[n - 1].id);
	assert_int_equal(info.z_len, len - TS_COLD_HDR_LEN);
	uint64_t total = 0;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		total += in[i].n;
		lo = in[i].t[0] < lo ? in[i].t[0] : lo;
		hi = in[i].t[in[i].n - 1] > hi ? in[i].t[in[i].n - 1] : hi;
	}
	assert_int_equal(info.n_samples, total);
	assert_int_equal(info.min_t, lo);
	assert_int_equal(info.max_t, hi);

	uint8_t *copy = tu_memdup(blk, len);
	struct ts_cold_block *b = NULL;
	int rc = ts_cold_open(copy, len, &b);
	if (rc)
		fail_msg("ts_cold_open: %s", ts_strerror(rc));
	memset(copy, 0xa5, len); /* the block must not alias its input */
	free(copy);
	assert_int_equal(ts_cold_nseries(b), n);
	assert_true(ts_cold_mem(b) >= info.raw_len);
	struct ts_cold_info bi;
	ts_cold_block_info(b, &bi);
	assert_int_equal(bi.n_series, info.n_series);
	assert_int_equal(bi.first_id, info.first_id);
	assert_int_equal(bi.last_id, info.last_id);
	assert_int_equal(bi.min_t, info.min_t);
	assert_int_equal(bi.max_t, info.max_t);
	assert_int_equal(bi.n_samples, info.n_samples);
	assert_int_equal(bi.raw_len, info.raw_len);
	assert_int_equal(bi.z_len, info.z_len);
	for (size_t i = 0; i < n; i++) {
		uint64_t id;
		uint32_t cnt;
		int64_t t0, t1;
		ts_cold_series(b, i, &id, &cnt, &t0, &t1);
		assert_int_equal(id, in[i].id);
		assert_int_equal(cnt, in[i].n);
		assert_int_equal(t0, in[i].t[0]);
		assert_int_equal(t1, in[i].t[in[i].n - 1]);
		assert_int_equal(ts_cold_find(b, in[i].id), i);
		if (in[i].id > 0 && (i == 0 || in[i - 1].id != in[i].id - 1))
			assert_int_equal(ts_cold_find(b, in[i].id - 1), -1);
		int kind = ts_cold_value_kind(b, i);
		assert_true(kind >= TS_COLD_VAL_CONST && kind <= TS_COLD_VAL_BITS_DOD);
		/* One guard element past the end must stay untouched. */
		int64_t *t = malloc((cnt + 1) * sizeof *t);
		uint64_t *v = malloc((cnt + 1) * sizeof *v);
		t[cnt] = 0x5a5a;
		v[cnt] = 0x5a5a;
		rc = ts_cold_decode(b, i, t, v);
		if (rc)
			fail_msg("ts_cold_decode(%zu): %s", i, ts_strerror(rc));
		assert_memory_equal(t, in[i].t, cnt * sizeof *t);
		if (memcmp(v, in[i].v, cnt * sizeof *v) != 0) {
			for (uint32_t j = 0; j < cnt; j++)
				if (v[j] != in[i].v[j])
					fail_msg("series %zu (kind %d) value %u: %016" PRIx64
						 " want %016" PRIx64,
						 i, kind, j, v[j], in[i].v[j]);
		}
		assert_int_equal(t[cnt], 0x5a5a);
		assert_int_equal(v[cnt], 0x5a5a);
		free(t);
		free(v);
	}
	ts_cold_series(b, n, NULL, NULL, NULL, NULL);
	uint64_t id = 1;
	uint32_t cnt = 1;
	ts_cold_series(b, n, &id, &cnt, NULL, NULL);
	assert_int_equal(id, 0);
	assert_int_equal(cnt, 0);
	assert_int_equal(ts_cold_value_kind(b, n), -1);
	assert_int_equal(ts_cold_decode(b, n, NULL, NULL), TS_EINVALID);
	if (in[n - 1].id < UINT64_MAX)
		assert_int_equal(ts_cold_find(b, in[n - 1].id + 1), -1);
	ts_cold_free(b);
}

static void roundtrip(const struct set *s, int level)
{
	uint8_t *blk;
	size_t len;
	encode_ok(s, level, &blk, &len);
	check_block(blk, len, s->in, s->n);
	ts_free(blk);
}

/* ---- round trips ------------------------------------------------------------------ */

static int quiet(void **state)
{
	(void)state;
	/* Corrupt-input tests trip TS_CORRUPT()'s error log thousands of times. */
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	return 0;
}

static void test_roundtrip_random(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	static const int levels[] = { -5, 0, 1, 3, TS_COLD_LEVEL_DEFAULT };
	for (int round = 0; round < 300; round++) {
		struct set s = { .n = 0 };
		gen_set(&s, 1 + rnd(40), round % 10 ? 300 : 3000);
		roundtrip(&s, levels[rnd(5)]);
		set_free(&s);
	}
}

/* Every shape alone, one series per block and many at once. */
static void test_roundtrip_shapes(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	for (int vs = 0; vs < V_COUNT; vs++) {
		for (int ts = 0; ts < T_COUNT; ts++) {
			static const uint32_t sizes[] = { 1, 2, 3, 17, 120, 1000 };
			for (size_t k = 0; k < 6; k++) {
				struct set s = { .n = 0 };
				for (size_t i = 0; i < 3; i++) {
					size_t j = set_add(&s, 10 + i, sizes[k], i == 1);
					if (s.own_t[j])
						gen_times(s.t[j], sizes[k], ts);
					gen_values(s.v[j], sizes[k], vs);
				}
				roundtrip(&s, 1);
				set_free(&s);
			}
		}
	}
}

/* Doubles that are easy to get wrong, alone, among decimals, and all together. */
static void test_exact_values(void **state)
{
	(void)state;
	static const double vals[] = { 0.1,
				       0.2,
				       0.3,
				       0.30000000000000004,
				       1.0 / 3,
				       2.0 / 3,
				       1e-22,
				       1e22,
				       1e23,
				       9007199254740991.0,
				       9007199254740992.0,
				       9007199254740994.0,
				       18446744073709551616.0,
				       1.7976931348623157e308,
				       4.9406564584124654e-324,
				       2.2250738585072014e-308,
				       123456789.123,
				       0.000123,
				       1e15 + 0.25,
				       3.141592653589793,
				       1e100,
				       -1e-300,
				       12345678901234567890.0,
				       1700000000.123456789,
				       99.99999999999999,
				       -2.5,
				       0.0,
				       1152921504606846976.0,
				       7e-20,
				       9.999999999999999e22 };
	size_t nv = sizeof vals / sizeof vals[0];
	uint64_t bits[sizeof vals / sizeof vals[0] + 6];
	for (size_t i = 0; i < nv; i++)
		bits[i] = tu_bits(vals[i]);
	bits[nv++] = STALE;
	bits[nv++] = 0x8000000000000000ull;
	bits[nv++] = 0x7ff0000000000000ull;
	bits[nv++] = 0xfff0000000000000ull;
	bits[nv++] = 0x7ff8dead0000beefull;
	bits[nv++] = 0xfffffffffffffffeull;
	int64_t t[64];
	for (size_t j = 0; j < 64; j++)
		t[j] = 1000 * (int64_t)j;
	/* Each value between decimals, at every position of a short series. */
	for (size_t i = 0; i < nv; i++) {
		for (size_t pos = 0; pos < 5; pos++) {
			uint64_t v[5];
			for (size_t j = 0; j < 5; j++)
				v[j] = tu_bits(1.5 + (double)j);
			v[pos] = bits[i];
			struct ts_cold_input in = { 7, 5, t, v };
			uint8_t *blk;
			size_t len;
			assert_int_equal(ts_cold_encode(&in, 1, 1, &blk, &len), 0);
			check_block(blk, len, &in, 1);
			ts_free(blk);
		}
	}
	/* All of them in one series, and each pair. */
	struct ts_cold_input in = { 7, (uint32_t)nv, t, bits };
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_cold_encode(&in, 1, 1, &blk, &len), 0);
	check_block(blk, len, &in, 1);
	ts_free(blk);
	for (size_t i = 0; i < nv; i++) {
		for (size_t j = 0; j < nv; j++) {
			uint64_t v[2] = { bits[i], bits[j] };
			struct ts_cold_input x = { 1, 2, t, v };
			assert_int_equal(ts_cold_encode(&x, 1, 1, &blk, &len), 0);
			check_block(blk, len, &x, 1);
			ts_free(blk);
		}
	}
}

static int kind_of(const struct ts_cold_input *in)
{
	uint8_t *blk;
	size_t len;
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_encode(in, 1, 1, &blk, &len), 0);
	check_block(blk, len, in, 1);
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	int k = ts_cold_value_kind(b, 0);
	ts_cold_free(b);
	ts_free(blk);
	return k;
}

/* Each shape gets the kind meant for it. */
static void test_kinds(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	enum { N = 200 };
	int64_t t[N];
	uint64_t v[N];
	for (int j = 0; j < N; j++)
		t[j] = 1700000000000 + 15000 * (int64_t)j;
	struct ts_cold_input in = { 3, N, t, v };
	int k;
	double g;
	for (int j = 0; j < N; j++)
		v[j] = tu_bits(42.0);
	assert_int_equal(kind_of(&in), TS_COLD_VAL_CONST);
	for (int j = 0; j < N; j++)
		v[j] = 0x7ff8dead0000beefull;
	assert_int_equal(kind_of(&in), TS_COLD_VAL_CONST);
	for (int j = 0; j < N; j++) /* gauge at 2 decimals */
		v[j] = tu_bits((double)(100000 + (int64_t)rnd(2001) - 1000) / 100);
	assert_int_equal(kind_of(&in), TS_COLD_VAL_DEC_DELTA);
	for (int j = 0; j < N; j++) /* a steady counter */
		v[j] = tu_bits((double)(1000000 * (int64_t)j + (int64_t)rnd(3)));
	assert_int_equal(kind_of(&in), TS_COLD_VAL_DEC_DOD);
	v[N / 2] = STALE; /* an exception keeps the decimal form */
	v[N - 1] = 0x8000000000000000ull;
	assert_int_equal(kind_of(&in), TS_COLD_VAL_DEC_DOD);
	/* One value with 10 decimals, then values too large for that scale with one: they
	 * take their own scale, which wins, and the first is the exception. */
	v[0] = tu_bits(1e-10);
	for (int j = 1; j < N; j++)
		v[j] = tu_bits((double)(123456780 + (int64_t)rnd(1000)) / 10);
	k = kind_of(&in);
	assert_true(k == TS_COLD_VAL_DEC_DELTA || k == TS_COLD_VAL_DEC_DOD);
	for (int j = 0; j < N; j++) /* large values: positive scale */
		v[j] = tu_bits((double)(1 + rnd(1000)) * 1e20);
	assert_int_equal(kind_of(&in), TS_COLD_VAL_DEC_DELTA);
	for (int j = 0; j < N; j++)
		v[j] = tu_rand(&rng);
	assert_int_equal(kind_of(&in), TS_COLD_VAL_XOR);
	for (int j = 0; j < N; j++) /* random floats in [0, 1) */
		v[j] = tu_bits((double)(tu_rand(&rng) >> 11) * 0x1p-53);
	assert_int_equal(kind_of(&in), TS_COLD_VAL_XOR);
	g = 0;
	for (int j = 0; j < N; j++) { /* 0.1 + 0.1 + ...: not short decimals */
		g += 0.1;
		v[j] = tu_bits(g);
	}
	k = kind_of(&in);
	assert_true(k == TS_COLD_VAL_BITS_DELTA || k == TS_COLD_VAL_BITS_DOD);
	g = 1700000000.0;
	for (int j = 0; j < N; j++) { /* seconds since the epoch, to the nanosecond */
		g += 15.0 + (double)rnd(1000000) * 1e-9;
		v[j] = tu_bits(g);
	}
	k = kind_of(&in);
	assert_true(k == TS_COLD_VAL_BITS_DELTA || k == TS_COLD_VAL_BITS_DOD);
	for (int j = 0; j < N; j++) /* mostly NaN: too many exceptions */
		v[j] = j % 3 ? STALE : tu_bits((double)j);
	k = kind_of(&in);
	assert_true(k == TS_COLD_VAL_XOR || k == TS_COLD_VAL_BITS_DELTA);
}

/* Small series a block can hold: 2 samples whose values take a 2-byte BITS column, many
 * sharing one timestamp column (6 body bytes each; peek's bound is 5). */
static void test_smallest_series(void **state)
{
	(void)state;
	int64_t t[2] = { 1, 2 };
	uint64_t v[2] = { 0, 1 };
	struct set s = { .n = 0 };
	for (size_t i = 0; i < 60; i++)
		s.in[s.n++] = (struct ts_cold_input){ i, 2, t, v };
	uint8_t *blk;
	size_t len;
	struct ts_cold_info info;
	encode_ok(&s, 3, &blk, &len);
	check_block(blk, len, s.in, s.n);
	assert_int_equal(ts_cold_peek(blk, len, &info), 0);
	assert_true(info.raw_len < 7 * 60); /* 6 bytes a series and 5 more */
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	assert_int_equal(ts_cold_value_kind(b, 59), TS_COLD_VAL_BITS_DELTA);
	ts_cold_free(b);
	ts_free(blk);
	s.n = 0;
}

/* Series scraped together store their timestamps once. */
static void test_shared_timestamps(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	enum { S = 50, N = 500 };
	size_t raw[2];
	for (int shared = 0; shared < 2; shared++) {
		struct set s = { .n = 0 };
		uint64_t keep = rng;
		for (size_t i = 0; i < S; i++) {
			size_t k = set_add(&s, 100 + i, N, shared);
			if (s.own_t[k])
				gen_times(s.t[k], N, T_JITTER);
			rng = keep + i; /* the same values in both blocks */
			gen_values(s.v[k], N, V_CONST);
		}
		uint8_t *blk;
		size_t len;
		struct ts_cold_info info;
		encode_ok(&s, 1, &blk, &len);
		check_block(blk, len, s.in, s.n);
		assert_int_equal(ts_cold_peek(blk, len, &info), 0);
		raw[shared] = info.raw_len;
		/* Decode a shared series twice, and the first after the last. */
		struct ts_cold_block *b;
		assert_int_equal(ts_cold_open(blk, len, &b), 0);
		int64_t t[N];
		uint64_t v[N];
		for (size_t i = S; i-- > 0;) {
			assert_int_equal(ts_cold_decode(b, i, t, v), 0);
			assert_memory_equal(t, s.in[i].t, sizeof t);
		}
		ts_cold_free(b);
		ts_free(blk);
		set_free(&s);
	}
	print_message("raw body: %zu bytes unshared, %zu shared\n", raw[0], raw[1]);
	/* 49 of 50 timestamp columns (each > N - 1 bytes) are gone. */
	assert_true(raw[0] - raw[1] >= (S - 1) * (N - 1));
}

static void test_extreme_timestamps(void **state)
{
	(void)state;
	static const int64_t cases[][4] = {
		{ INT64_MIN, INT64_MAX, 0, 0 },
		{ INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX },
		{ -1, 0, 1, INT64_MAX },
		{ INT64_MIN, -1, 0, 1 },
		{ INT64_MIN, 0, INT64_MAX, 0 },
	};
	static const size_t lens[] = { 2, 4, 4, 4, 3 };
	for (size_t c = 0; c < 5; c++) {
		uint64_t v[4] = { 1, 2, 3, 4 };
		struct ts_cold_input in[3] = {
			{ 1, (uint32_t)lens[c], cases[c], v },
			{ 2, 1, &cases[c][0], v },
			{ 3, 1, &cases[c][lens[c] - 1], v },
		};
		uint8_t *blk;
		size_t len;
		assert_int_equal(ts_cold_encode(in, 3, 1, &blk, &len), 0);
		check_block(blk, len, in, 3);
		ts_free(blk);
	}
}

/* zstd clamps levels; a body zstd cannot shrink is stored as is. */
static void test_levels_and_stored(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	static const int levels[] = { -1000000, -5, 0, 1, 19, 22, 1000 };
	struct set s = { .n = 0 };
	gen_set(&s, 10, 200);
	for (size_t k = 0; k < 7; k++)
		roundtrip(&s, levels[k]);
	set_free(&s);
	int64_t t = 5;
	uint64_t v = 0x0123456789abcdefull;
	struct ts_cold_input in = { 9, 1, &t, &v };
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_cold_encode(&in, 1, 19, &blk, &len), 0);
	assert_int_equal(blk[5], 0); /* too small to compress */
	check_block(blk, len, &in, 1);
	ts_free(blk);
	/* A compressible one is a zstd frame. */
	set_add(&s, 1, 1000, 0);
	for (int j = 0; j < 1000; j++) {
		s.t[0][j] = j;
		s.v[0][j] = (uint64_t)j;
	}
	encode_ok(&s, 1, &blk, &len);
	assert_int_equal(blk[5], TS_COLD_FLAG_ZSTD);
	ts_free(blk);
	set_free(&s);
}

/* ---- bad input and limits --------------------------------------------------------- */

static void expect_invalid(const struct ts_cold_input *in, size_t n)
{
	uint8_t *out = (uint8_t *)&out;
	size_t len = 12345;
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_cold_encode(in, n, 1, &out, &len), TS_EINVALID);
	assert_ptr_equal(out, (uint8_t *)&out);
	assert_int_equal(len, 12345);
	assert_int_equal(ts_mem_count(), 0); /* nothing allocated before the checks */
}

static void test_bad_input(void **state)
{
	(void)state;
	int64_t t[3] = { 1, 2, 3 }, same[3] = { 1, 2, 2 }, down[3] = { 3, 2, 1 };
	uint64_t v[3] = { 0, 0, 0 };
	struct ts_cold_input in[3] = { { 1, 3, t, v }, { 2, 3, t, v }, { 3, 3, t, v } };
	expect_invalid(NULL, 1);
	expect_invalid(in, 0);
	expect_invalid(in, (size_t)TS_COLD_MAX_SERIES + 1);
	in[1].id = 1; /* ids not strictly ascending */
	expect_invalid(in, 3);
	in[1].id = 0;
	expect_invalid(in, 3);
	in[1].id = 2;
	in[2].t = same;
	expect_invalid(in, 3);
	in[2].t = down;
	expect_invalid(in, 3);
	in[2].t = t;
	in[2].n = 0;
	expect_invalid(in, 3);
	in[2].n = 3;
	in[0].t = NULL;
	expect_invalid(in, 3);
	in[0].t = t;
	in[0].v = NULL;
	expect_invalid(in, 3);
	in[0].v = v;
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_cold_encode(in, 3, 1, &blk, &len), 0);
	ts_free(blk);
}

/* A body over TS_COLD_MAX_RAW: TS_ELIMIT, nothing leaked. */
static void test_limit(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	enum { N = 100000 };
	int64_t *t = malloc(N * sizeof *t);
	uint64_t *v = malloc(N * sizeof *v);
	for (int j = 0; j < N; j++) {
		t[j] = j;
		v[j] = tu_rand(&rng);
	}
	/* Random bits cost ~9 bytes a sample, so 80 series of 100,000 exceed 64 MiB. */
	size_t ns = (TS_COLD_MAX_RAW / 9 + N - 1) / N + 8;
	struct ts_cold_input *in = malloc(ns * sizeof *in);
	for (size_t i = 0; i < ns; i++)
		in[i] = (struct ts_cold_input){ i, N, t, v };
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(ts_cold_encode(in, ns, 1, &out, &len), TS_ELIMIT);
	assert_null(out);
	free(in);
	free(t);
	free(v);
}

/* ---- header ----------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* A block with body[0..len) stored as is and these header fields, CRC computed. */
static uint8_t *seal_stored(const uint8_t *body, size_t len, const struct ts_cold_info *h,
			    size_t *out_len)
{
	uint8_t *p = malloc(TS_COLD_HDR_LEN + len);
	memcpy(p, "TSCB", 4);
	p[4] = 1;
	p[5] = p[6] = p[7] = 0;
	put_le(p + 8, h->n_series, 4);
	put_le(p + 12, len, 4);
	put_le(p + 16, h->first_id, 8);
	put_le(p + 24, h->last_id, 8);
	put_le(p + 32, (uint64_t)h->min_t, 8);
	put_le(p + 40, (uint64_t)h->max_t, 8);
	put_le(p + 48, h->n_samples, 8);
	put_le(p + 56, len, 4);
	if (len)
		memcpy(p + TS_COLD_HDR_LEN, body, len);
	put_le(p + 60, ts_crc32c(0, p + TS_COLD_HDR_LEN, len), 4);
	*out_len = TS_COLD_HDR_LEN + len;
	return p;
}

static int open_rc(const uint8_t *blk, size_t len)
{
	uint8_t *copy = tu_memdup(blk, len);
	struct ts_cold_block *b = (struct ts_cold_block *)&b;
	int rc = ts_cold_open(copy, len, &b);
	if (rc == 0)
		ts_cold_free(b);
	else
		assert_ptr_equal(b, (struct ts_cold_block *)&b);
	free(copy);
	return rc;
}

static void test_header(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	struct set s = { .n = 0 };
	gen_set(&s, 5, 100);
	uint8_t *blk;
	size_t len;
	encode_ok(&s, 3, &blk, &len);
	uint8_t *p = malloc(len);
	struct ts_cold_info info;
	assert_memory_equal(blk, "TSCB", 4);
	assert_int_equal(blk[4], TS_COLD_VERSION);
	/* The version byte: any other value is TS_EVERSION, for peek, open and unpack. */
	for (int ver = 0; ver < 256; ver++) {
		if (ver == TS_COLD_VERSION)
			continue;
		memcpy(p, blk, len);
		p[4] = (uint8_t)ver;
		assert_int_equal(ts_cold_peek(p, len, &info), TS_EVERSION);
		assert_int_equal(open_rc(p, len), TS_EVERSION);
		uint8_t *raw;
		size_t rl;
		assert_int_equal(ts_cold_unpack(p, len, &raw, &rl), TS_EVERSION);
		assert_int_equal(ts_cold_peek(p, 5, &info), TS_EVERSION);
	}
	/* Bad magic, flags, reserved bytes. */
	static const size_t offs[] = { 0, 1, 2, 3, 5, 6, 7 };
	for (size_t k = 0; k < 7; k++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(p, blk, len);
			p[offs[k]] ^= (uint8_t)(1 << bit);
			assert_int_equal(ts_cold_peek(p, len, &info), TS_ECORRUPT);
			assert_int_equal(open_rc(p, len), TS_ECORRUPT);
		}
	}
	/* Lengths, counts and ranges the header alone contradicts. */
	struct ts_cold_info h = { 1, 5, 5, 10, 10, 1, 0, 0 };
	uint8_t body[64] = { 0 };
	size_t bl;
	uint8_t *x = seal_stored(body, 11, &h, &bl);
	assert_int_equal(ts_cold_peek(x, bl, &info), 0); /* well-formed header (body is not) */
	assert_int_equal(ts_cold_peek(x, bl - 1, &info), TS_ECORRUPT);
	assert_int_equal(open_rc(x, bl), TS_ECORRUPT);
	free(x);
	static const struct {
		struct ts_cold_info h;
		size_t body;
	} bad[] = {
		{ { 0, 5, 5, 10, 10, 1, 0, 0 }, 32 },	/* no series */
		{ { 2, 5, 5, 10, 10, 2, 0, 0 }, 32 },	/* two ids in 5..5 */
		{ { 1, 6, 5, 10, 10, 1, 0, 0 }, 32 },	/* first > last */
		{ { 1, 5, 5, 11, 10, 1, 0, 0 }, 32 },	/* min_t > max_t */
		{ { 2, 5, 6, 10, 10, 1, 0, 0 }, 32 },	/* fewer samples than series */
		{ { 1, 5, 5, 10, 10, 0, 0, 0 }, 32 },	/* no samples */
		{ { 1, 5, 5, 10, 10, 34, 0, 0 }, 32 },	/* more samples than bytes allow */
		{ { 5, 5, 100, 10, 10, 9, 0, 0 }, 28 }, /* 5 series need 29 bytes */
		{ { 2, 0, UINT64_MAX, INT64_MIN, INT64_MAX, 2, 0, 0 }, 13 }, /* 2 need 14 */
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		x = seal_stored(body, bad[k].body, &bad[k].h, &bl);
		assert_int_equal(ts_cold_peek(x, bl, &info), TS_ECORRUPT);
		assert_int_equal(open_rc(x, bl), TS_ECORRUPT);
		free(x);
		/* One byte more (or one sample less) and the header alone is fine. */
		struct ts_cold_info ok = bad[k].h;
		if (k == 6)
			ok.n_samples--;
		if (k >= 7) {
			x = seal_stored(body, bad[k].body + 1, &ok, &bl);
			assert_int_equal(ts_cold_peek(x, bl, &info), 0);
			free(x);
		} else if (k == 6) {
			x = seal_stored(body, bad[k].body, &ok, &bl);
			assert_int_equal(ts_cold_peek(x, bl, &info), 0);
			free(x);
		}
	}
	/* raw_len over the cap; z_len != raw_len for a stored body. */
	x = seal_stored(body, 11, &h, &bl);
	put_le(x + 12, (uint64_t)TS_COLD_MAX_RAW + 1, 4);
	assert_int_equal(ts_cold_peek(x, bl, &info), TS_ECORRUPT);
	x[5] = TS_COLD_FLAG_ZSTD;
	assert_int_equal(ts_cold_peek(x, bl, &info), TS_ECORRUPT);
	put_le(x + 12, 12, 4);
	assert_int_equal(ts_cold_peek(x, bl, &info), 0);
	x[5] = 0;
	assert_int_equal(ts_cold_peek(x, bl, &info), TS_ECORRUPT);
	free(x);
	assert_int_equal(ts_cold_peek(NULL, 0, &info), TS_ECORRUPT);
	free(p);
	ts_free(blk);
	set_free(&s);
}

/* ---- corrupt blocks --------------------------------------------------------------- */

/* Every shorter length is TS_ECORRUPT for peek and open. */
static void test_truncated(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	for (int round = 0; round < 6; round++) {
		struct set s = { .n = 0 };
		gen_set(&s, 1 + rnd(8), 60);
		uint8_t *blk;
		size_t len;
		encode_ok(&s, round % 2 ? 1 : 19, &blk, &len);
		for (size_t l = 0; l < len; l++) {
			struct ts_cold_info info;
			uint8_t *copy = tu_memdup(blk, l);
			int rc = ts_cold_peek(copy, l, &info);
			free(copy);
			assert_int_equal(rc, TS_ECORRUPT);
			assert_int_equal(open_rc(blk, l), TS_ECORRUPT);
		}
		/* And one byte more. */
		uint8_t *longer = calloc(1, len + 1);
		memcpy(longer, blk, len);
		assert_int_equal(open_rc(longer, len + 1), TS_ECORRUPT);
		free(longer);
		ts_free(blk);
		set_free(&s);
	}
}

/* Every single bit flip of whole blocks is caught (CRC, header checks and the
 * cross-checks of the header against the directory); double flips never crash. */
static void test_bitflips(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	for (int round = 0; round < 4; round++) {
		struct set s = { .n = 0 };
		gen_set(&s, 1 + rnd(6), 40);
		uint8_t *blk;
		size_t len;
		encode_ok(&s, 3, &blk, &len);
		uint8_t *p = malloc(len);
		for (size_t bit = 0; bit < len * 8; bit++) {
			memcpy(p, blk, len);
			p[bit / 8] ^= (uint8_t)(1 << (bit % 8));
			int rc = open_rc(p, len);
			if (bit / 8 == 4)
				assert_int_equal(rc, TS_EVERSION);
			else
				assert_int_equal(rc, TS_ECORRUPT);
			size_t b2 = rnd(len * 8);
			p[b2 / 8] ^= (uint8_t)(1 << (b2 % 8));
			rc = open_rc(p, len);
			assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_EVERSION);
		}
		free(p);
		ts_free(blk);
		set_free(&s);
	}
}

/* Opens blk and decodes every series: each step returns 0 or TS_ECORRUPT, nothing is
 * read or written out of bounds. Returns 1 if everything decoded, else 0. */
static int try_all(const uint8_t *blk, size_t len)
{
	uint8_t *copy = tu_memdup(blk, len);
	struct ts_cold_block *b;
	int rc = ts_cold_open(copy, len, &b), ok = rc == 0;
	free(copy);
	assert_true(rc == 0 || rc == TS_ECORRUPT);
	if (rc)
		return 0;
	for (size_t i = 0; i < ts_cold_nseries(b); i++) {
		uint32_t n;
		ts_cold_series(b, i, NULL, &n, NULL, NULL);
		int64_t *t = malloc(n * sizeof *t);
		uint64_t *v = malloc(n * sizeof *v);
		rc = ts_cold_decode(b, i, t, v);
		assert_true(rc == 0 || rc == TS_ECORRUPT);
		ok &= rc == 0;
		free(t);
		free(v);
	}
	ts_cold_free(b);
	return ok;
}

/* Damaged bodies behind a valid header and CRC: every truncation, every bit flip and
 * random byte overwrites reach the directory and column checks. */
static void test_corrupt_bodies(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	size_t rejected = 0, accepted = 0;
	for (int round = 0; round < 12; round++) {
		struct set s = { .n = 0 };
		gen_set(&s, 1 + rnd(6), 30);
		uint8_t *blk, *raw;
		size_t len, rl;
		struct ts_cold_info h;
		encode_ok(&s, 1, &blk, &len);
		assert_int_equal(ts_cold_peek(blk, len, &h), 0);
		assert_int_equal(ts_cold_unpack(blk, len, &raw, &rl), 0);
		assert_int_equal(rl, h.raw_len);
		/* The body re-sealed as stored decodes the same. */
		size_t sl;
		uint8_t *st = seal_stored(raw, rl, &h, &sl);
		check_block(st, sl, s.in, s.n);
		free(st);
		uint8_t *body = malloc(rl);
		for (size_t l = 0; l < rl; l++) {
			st = seal_stored(raw, l, &h, &sl);
			assert_int_equal(open_rc(st, sl), TS_ECORRUPT);
			free(st);
		}
		for (size_t bit = 0; bit < rl * 8; bit++) {
			memcpy(body, raw, rl);
			body[bit / 8] ^= (uint8_t)(1 << (bit % 8));
			st = seal_stored(body, rl, &h, &sl);
			if (try_all(st, sl))
				accepted++;
			else
				rejected++;
			free(st);
		}
		for (int k = 0; k < 2000; k++) {
			memcpy(body, raw, rl);
			for (int c = 1 + (int)rnd(3); c > 0; c--)
				body[rnd(rl)] = (uint8_t)tu_rand(&rng);
			st = seal_stored(body, rl, &h, &sl);
			try_all(st, sl);
			free(st);
		}
		free(body);
		ts_free(raw);
		ts_free(blk);
		set_free(&s);
	}
	print_message("body bit flips: %zu rejected, %zu decoded (to other samples)\n", rejected,
		      accepted);
	assert_true(rejected > 0 && accepted > 0);
}

/* ---- hand-built bodies: each check of the decoder --------------------------------- */

struct bb {
	uint8_t p[256];
	size_t n;
};

static void bb_uv(struct bb *b, uint64_t x)
{
	while (x >= 0x80) {
		b->p[b->n++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	b->p[b->n++] = (uint8_t)x;
}

static void bb_bytes(struct bb *b, const void *p, size_t n)
{
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

/*
 * The reference body: two series (ids 5 and 7) sharing one column t = 100, 110, 125;
 * series 5 DEC_DELTA at scale -1 (1.5, 2.0, 2.0), series 7 XOR (1.0, 1.0, 2.0). A
 * variant replaces one part: D..: the directory fields, T: the timestamp column,
 * A: series 5's column, X: series 7's column (each NULL for the reference).
 */
struct parts {
	const uint8_t *dir, *t, *a, *x;
	size_t dir_n, t_n, a_n, x_n;
};

static const uint8_t ref_t[] = { 20, 10 };	     /* zz(10), zz(5) */
static const uint8_t ref_a[] = { 21, 0, 30, 10, 0 }; /* e = -1, no exceptions, 15 +5 +0 */
static const uint8_t ref_x[] = { 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0x62, 0xf0, 0x7f };

static uint8_t *build(const struct parts *pt, size_t *len, struct ts_cold_info *h)
{
	struct bb b = { .n = 0 };
	const uint8_t *t = pt->t ? pt->t : ref_t, *a = pt->a ? pt->a : ref_a,
		      *x = pt->x ? pt->x : ref_x;
	size_t tn = pt->t ? pt->t_n : sizeof ref_t, an = pt->a ? pt->a_n : sizeof ref_a,
	       xn = pt->x ? pt->x_n : sizeof ref_x;
	if (pt->dir) {
		bb_bytes(&b, pt->dir, pt->dir_n);
	} else {
		bb_uv(&b, 1);			    /* D0 one column */
		bb_uv(&b, 2);			    /* D1 3 samples */
		bb_uv(&b, 0);			    /* D2 starts at min_t */
		bb_uv(&b, 25);			    /* D3 */
		bb_uv(&b, tn);			    /* D4 */
		bb_uv(&b, 1);			    /* D5 7 - 5 - 1 */
		bb_uv(&b, 0);			    /* D6 */
		bb_uv(&b, 0);			    /* D6 */
		b.p[b.n++] = TS_COLD_VAL_DEC_DELTA; /* D7 */
		b.p[b.n++] = TS_COLD_VAL_XOR;
		bb_uv(&b, an); /* D8 */
		bb_uv(&b, xn);
	}
	bb_bytes(&b, t, tn);
	bb_bytes(&b, a, an);
	bb_bytes(&b, x, xn);
	*h = (struct ts_cold_info){ 2, 5, 7, 100, 125, 6, 0, 0 };
	return seal_stored(b.p, b.n, h, len);
}

/* Builds the variant and returns open's code, or decode's worst code if it opens. */
static int variant_rc(const struct parts *pt)
{
	size_t len;
	struct ts_cold_info h;
	uint8_t *blk = build(pt, &len, &h);
	uint8_t *copy = tu_memdup(blk, len);
	free(blk);
	struct ts_cold_block *b;
	int rc = ts_cold_open(copy, len, &b);
	free(copy);
	if (rc)
		return rc;
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		int64_t t[3];
		uint64_t v[3];
		rc = ts_cold_decode(b, i, t, v);
	}
	ts_cold_free(b);
	return rc;
}

#define PART(field, ...)                                                                 \
	do {                                                                             \
		static const uint8_t bytes_[] = { __VA_ARGS__ };                         \
		struct parts pt_ = { 0 };                                                \
		pt_.field = bytes_;                                                      \
		pt_.field##_n = sizeof bytes_;                                           \
		int rc_ = variant_rc(&pt_);                                              \
		if (rc_ != want_)                                                        \
			fail_msg("%s {%s}: %s", #field, #__VA_ARGS__, ts_strerror(rc_)); \
	} while (0)

static void test_crafted(void **state)
{
	(void)state;
	int want_;
	/* The reference decodes to what it says. */
	struct parts ref = { 0 };
	size_t len;
	struct ts_cold_info h;
	uint8_t *blk = build(&ref, &len, &h);
	int64_t t[3] = { 100, 110, 125 };
	uint64_t va[3] = { tu_bits(1.5), tu_bits(2.0), tu_bits(2.0) };
	uint64_t vx[3] = { tu_bits(1.0), tu_bits(1.0), tu_bits(2.0) };
	struct ts_cold_input in[2] = { { 5, 3, t, va }, { 7, 3, t, vx } };
	check_block(blk, len, in, 2);
	free(blk);

	want_ = 0;
	PART(t, 20, 0x8a, 0x80, 0x80, 0x00); /* a non-minimal varint is fine */
	PART(a, 21, 1, 1, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 30, 10, 0); /* exception at 1 */
	PART(a, 23, 0, 30, 10, 0);				    /* e = +1 */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8); /* 8 bytes */

	want_ = TS_ECORRUPT;
	/* Timestamp column: not ascending, wrong last, bytes left or missing, bad varints. */
	PART(t, 20, 0x09);  /* 10 then 5: 110, 115 != 125 */
	PART(t, 19, 10);    /* -10: 90 < 100 */
	PART(t, 0, 50);	    /* a zero step */
	PART(t, 20, 10, 0); /* a byte left over */
	PART(t, 20, 0x8a);  /* cut in a varint */
	PART(t, 20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	     0x01);								 /* 11 bytes */
	PART(t, 20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02); /* > 2^64 */
	/* Decimal column. */
	PART(a, 45, 0, 30, 10, 0);				       /* scale byte 45 */
	PART(a, 21, 4, 30, 10, 0);				       /* 4 exceptions of 3 */
	PART(a, 21, 1, 3, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 30, 10);       /* position 3 */
	PART(a, 21, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 30, 10, 0); /* positions 1, 3 */
	PART(a, 21, 1, 0, 0, 0, 0, 0, 0, 0, 0xf8, 30, 10, 0);	       /* raw bits cut short */
	PART(a, 21, 0, 30, 10, 0, 0);				       /* one mantissa too many */
	PART(a, 21, 0, 30, 10);		/* one too few (and the length check) */
	PART(a, 21, 0, 30, 0x8a, 0x80); /* cut in a varint */
	/* XOR column. */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9); /* len 9 */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0x72, 0xf0, 0x7f);    /* tz 7 + len 2 */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x62, 0xf0, 0x7f); /* tz 1, len 0 */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0x63, 0xf0, 0x7f);    /* payload short */
	PART(x, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0x61, 0xf0, 0x7f);    /* payload long */
	/* Directory. */
	PART(dir, 0);						      /* no columns */
	PART(dir, 2, 2, 2, 0, 0, 25, 25, 2, 2, 1, 0, 0, 1, 3, 5, 12); /* column 1 unused */
	PART(dir, 2, 2, 2, 0, 0, 25, 25, 2, 2, 1, 1, 0, 1, 3, 5, 12); /* numbered 1 first */
	PART(dir, 1, 2, 0, 25, 2, 2, 0, 0, 1, 3, 5, 12);	      /* ids 5, 8 > last */
	PART(dir, 1, 2, 0, 25, 2, 0, 0, 0, 1, 3, 5, 12);	      /* ids 5, 6 != last */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 4, 3, 5, 12);	      /* kind 4 */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 0, 3, 5, 12);	      /* CONST of 5 bytes */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 4, 12);	      /* DEC shorter than n + 2 */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5, 9);		      /* XOR shorter than n + 7 */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5, 27);  /* XOR longer than 8 + 9(n-1) */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5, 13);  /* lengths beyond the body */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5, 11);  /* body longer than lengths */
	PART(dir, 1, 2, 0, 24, 2, 1, 0, 0, 1, 3, 5, 12);  /* last t 124 != max_t */
	PART(dir, 1, 2, 0, 26, 2, 1, 0, 0, 1, 3, 5, 12);  /* last t beyond max_t */
	PART(dir, 1, 2, 1, 24, 2, 1, 0, 0, 1, 3, 5, 12);  /* first t 101 != min_t */
	PART(dir, 1, 2, 26, 0, 2, 1, 0, 0, 1, 3, 5, 12);  /* first t beyond the span */
	PART(dir, 1, 2, 0, 1, 2, 1, 0, 0, 1, 3, 5, 12);	  /* 3 samples in 1 ms */
	PART(dir, 1, 3, 0, 25, 2, 1, 0, 0, 1, 3, 5, 12);  /* 4 samples, 2 bytes */
	PART(dir, 1, 2, 0, 25, 1, 1, 0, 0, 1, 3, 5, 12);  /* column shorter than n - 1 */
	PART(dir, 1, 0, 0, 25, 2, 1, 0, 0, 1, 3, 5, 12);  /* 1 sample spanning time */
	PART(dir, 1, 2, 0, 25, 21, 1, 0, 0, 1, 3, 5, 12); /* column over 10 (n - 1) */
	PART(dir, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 25, 2, 1, 0, 0, 1, 3, 5, 12); /* n 2^32 */
	PART(dir, 1, 2, 0, 25, 2, 1, 1, 0, 1, 3, 5, 12); /* column 1 of 1 */
	PART(dir, 3, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5, 12); /* 3 columns for 2 series */
	PART(dir, 1, 2, 0, 25, 2, 1, 0, 0, 1, 3, 5);	 /* cut short */
}

/* ---- allocation failures ---------------------------------------------------------- */

/* Fails allocation k (and every later one if sticky) for k = 1, 2, ... until a run
 * fires no failure: every failing run returns -ENOMEM (or succeeds when only the final
 * shrink of the block failed) and writes nothing; LeakSanitizer checks for leaks. */
static void test_alloc_failure(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	struct set s = { .n = 0 };
	gen_set(&s, 20, 300);
	uint8_t *ref;
	size_t ref_len;
	encode_ok(&s, 3, &ref, &ref_len);
	for (int sticky = 0; sticky < 2; sticky++) {
		unsigned long k, enomem = 0;
		for (k = 1;; k++) {
			uint8_t *out = (uint8_t *)&out;
			size_t len = 99;
			ts_mem_fail_at(k, sticky);
			int rc = ts_cold_encode(s.in, s.n, 3, &out, &len);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (!fired) {
				assert_int_equal(rc, 0);
				assert_int_equal(len, ref_len);
				assert_memory_equal(out, ref, len);
				ts_free(out);
				break;
			}
			if (rc == 0) {
				check_block(out, len, s.in, s.n);
				ts_free(out);
				continue;
			}
			assert_int_equal(rc, -ENOMEM);
			assert_ptr_equal(out, (uint8_t *)&out);
			assert_int_equal(len, 99);
			enomem++;
		}
		print_message("encode: %lu allocations, %lu -ENOMEM (sticky %d)\n", k - 1, enomem,
			      sticky);
		assert_true(enomem >= 8); /* zstd's own allocations are among them */
		for (k = 1;; k++) {
			struct ts_cold_block *b = (struct ts_cold_block *)&b;
			ts_mem_fail_at(k, sticky);
			int rc = ts_cold_open(ref, ref_len, &b);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (!fired) {
				assert_int_equal(rc, 0);
				ts_cold_free(b);
				break;
			}
			assert_int_equal(rc, -ENOMEM);
			assert_ptr_equal(b, (struct ts_cold_block *)&b);
		}
		print_message("open: %lu allocations\n", k - 1);
		assert_true(k > 3);
		/* unpack too. */
		for (k = 1;; k++) {
			uint8_t *raw = (uint8_t *)&raw;
			size_t rl = 7;
			ts_mem_fail_at(k, sticky);
			int rc = ts_cold_unpack(ref, ref_len, &raw, &rl);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (!fired) {
				assert_int_equal(rc, 0);
				ts_free(raw);
				break;
			}
			assert_int_equal(rc, -ENOMEM);
			assert_ptr_equal(raw, (uint8_t *)&raw);
			assert_int_equal(rl, 7);
		}
	}
	/* Decoding allocates nothing. */
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_open(ref, ref_len, &b), 0);
	ts_mem_fail_at(1, 1);
	for (size_t i = 0; i < s.n; i++) {
		int64_t *t = malloc(s.in[i].n * sizeof *t);
		uint64_t *v = malloc(s.in[i].n * sizeof *v);
		assert_int_equal(ts_cold_decode(b, i, t, v), 0);
		free(t);
		free(v);
	}
	assert_int_equal(ts_mem_count(), 0);
	ts_mem_fail_at(0, 0);
	ts_cold_free(b);
	ts_cold_free(NULL);
	ts_free(ref);
	set_free(&s);
}

/* ---- threads ---------------------------------------------------------------------- */

struct job {
	const struct ts_cold_block *b;
	const struct set *s;
	int ok;
};

static void *decoder(void *arg)
{
	struct job *j = arg;
	j->ok = 1;
	for (int rep = 0; rep < 20; rep++) {
		for (size_t i = 0; i < j->s->n; i++) {
			uint32_t n = j->s->in[i].n;
			int64_t *t = malloc(n * sizeof *t);
			uint64_t *v = malloc(n * sizeof *v);
			if (ts_cold_decode(j->b, i, t, v) ||
			    memcmp(t, j->s->in[i].t, n * sizeof *t) ||
			    memcmp(v, j->s->in[i].v, n * sizeof *v))
				j->ok = 0;
			free(t);
			free(v);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	struct set s = { .n = 0 };
	gen_set(&s, 30, 500);
	uint8_t *blk;
	size_t len;
	struct ts_cold_block *b;
	encode_ok(&s, 1, &blk, &len);
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	pthread_t th[4];
	struct job jobs[4];
	for (int k = 0; k < 4; k++) {
		jobs[k] = (struct job){ b, &s, 0 };
		assert_int_equal(pthread_create(&th[k], NULL, decoder, &jobs[k]), 0);
	}
	for (int k = 0; k < 4; k++) {
		pthread_join(th[k], NULL);
		assert_true(jobs[k].ok);
	}
	ts_cold_free(b);
	ts_free(blk);
	set_free(&s);
}

/* ---- golden ----------------------------------------------------------------------- */

/* The golden block's samples: a pure function of a fixed PRNG state (not TS_SEED). */
static void golden_set(struct set *s)
{
	uint64_t g = 0x636f6c642d7631ull; /* "cold-v1" */
	size_t k;
	/* 1000..1003: one jittered column of 50 samples shared by a counter with a
	 * reset (2 decimals), a gauge (1 decimal) and a constant. */
	k = set_add(s, 1000, 50, 0);
	int64_t m = 123456;
	for (uint32_t j = 0; j < 50; j++) {
		s->t[k][j] = 1700000000000 + 15000 * (int64_t)j + (int64_t)(tu_rand(&g) % 7) - 3;
		m = j == 30 ? 0 : m + (int64_t)(tu_rand(&g) % 500);
		s->v[k][j] = tu_bits((double)m / 100);
	}
	k = set_add(s, 1001, 50, 1);
	m = 200;
	for (uint32_t j = 0; j < 50; j++) {
		m += (int64_t)(tu_rand(&g) % 21) - 10;
		s->v[k][j] = tu_bits((double)m / 10);
	}
	k = set_add(s, 1003, 50, 1);
	for (uint32_t j = 0; j < 50; j++)
		s->v[k][j] = tu_bits(1.0);
	/* 1010: random bits; 1011: decimals with every special and integers beyond 2^53,
	 * on a second column with gaps. */
	k = set_add(s, 1010, 40, 0);
	for (uint32_t j = 0; j < 40; j++) {
		s->t[k][j] = 1700000000000 + 10000 * (int64_t)j + (j > 20 ? 3600000 : 0);
		s->v[k][j] = tu_rand(&g);
	}
	k = set_add(s, 1011, 40, 1);
	static const uint64_t sp[] = { STALE, 0x7ff8000000000000ull, 0x7ff0000000000000ull,
				       0xfff0000000000000ull, 0x8000000000000000ull };
	for (uint32_t j = 0; j < 40; j++) {
		if (j % 8 == 3)
			s->v[k][j] = sp[(j / 8) % 5];
		else if (j % 8 == 5)
			s->v[k][j] = tu_bits(9007199254740992.0 * (double)(j + 1));
		else
			s->v[k][j] = tu_bits((double)(int64_t)(tu_rand(&g) % 100000) / 1000);
	}
	/* 2^40: the extreme timestamps. */
	k = set_add(s, 1ull << 40, 3, 0);
	s->t[k][0] = INT64_MIN;
	s->t[k][1] = 0;
	s->t[k][2] = INT64_MAX;
	s->v[k][0] = tu_bits(0.1);
	s->v[k][1] = tu_bits(1e300);
	s->v[k][2] = tu_bits(5e-324);
}

static void test_golden(void **state)
{
	(void)state;
	struct set s = { .n = 0 };
	golden_set(&s);
	char path[4096];
	tu_data_path(path, sizeof path, GOLDEN);
	if (getenv("TS_COLD_WRITE_GOLDEN")) {
		uint8_t *blk;
		size_t len;
		encode_ok(&s, 19, &blk, &len);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(blk, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		print_message("wrote %s (%zu bytes)\n", path, len);
		ts_free(blk);
	}
	size_t len;
	uint8_t *blk = (uint8_t *)tu_load_data(GOLDEN, &len);
	struct ts_cold_info info;
	assert_int_equal(ts_cold_peek(blk, len, &info), 0);
	assert_int_equal(info.n_series, 6);
	assert_int_equal(info.first_id, 1000);
	assert_int_equal(info.last_id, 1ull << 40);
	assert_int_equal(info.min_t, INT64_MIN);
	assert_int_equal(info.max_t, INT64_MAX);
	assert_int_equal(info.n_samples, 50 * 3 + 40 * 2 + 3);
	assert_int_equal(blk[5], TS_COLD_FLAG_ZSTD);
	check_block(blk, len, s.in, s.n);
	/* The kinds written then, by number. */
	static const int kinds[6] = { TS_COLD_VAL_DEC_DOD,   TS_COLD_VAL_DEC_DELTA,
				      TS_COLD_VAL_CONST,     TS_COLD_VAL_XOR,
				      TS_COLD_VAL_DEC_DELTA, TS_COLD_VAL_DEC_DELTA };
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(ts_cold_value_kind(b, i), kinds[i]);
	ts_cold_free(b);
	free(blk);
	set_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_roundtrip_shapes),
		cmocka_unit_test(test_exact_values),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_smallest_series),
		cmocka_unit_test(test_shared_timestamps),
		cmocka_unit_test(test_extreme_timestamps),
		cmocka_unit_test(test_levels_and_stored),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bitflips),
		cmocka_unit_test(test_corrupt_bodies),
		cmocka_unit_test(test_crafted),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, quiet, NULL);
}
