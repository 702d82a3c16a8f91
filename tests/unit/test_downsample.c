/*
 * test_downsample.c - Thanos-model downsampling (tsdb/downsample.h): each aggregate on
 * hand-computed cases (counter resets inside and across windows, stale markers, NaN,
 * gaps, one sample, negative timestamps, +-Inf), 5m -> 1h against raw -> 1h (count, sum,
 * min, max exactly on exact data; the counter to 1e-9), the counter stream across sets,
 * properties over random series against a naive reference, input validation, tier block
 * round trips, corrupt tier blocks (hand-built cold blocks breaking each rule), allocation
 * failure, and the golden block $TS_TESTDATA/golden/tier-v1.bin (written only when
 * TS_TIER_WRITE_GOLDEN is set; never regenerated). Random cases use a seeded PRNG;
 * TS_SEED overrides the seed, which is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/cold.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "testutil.h"
#include "tsdb/downsample.h"

#define SEED 20260512 /* TS_SEED overrides */
#define STALE 0x7ff0000000000002ull
#define QNAN 0x7ff8000000000000ull
#define M5 TS_DS_RES_5M_MS
#define H1 TS_DS_RES_1H_MS
#define GOLDEN "golden/tier-v1.bin"
#define MAXN 4096

static int quiet(void **state)
{
	(void)state;
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	return 0;
}

/* Raw input built with add(). */
struct raw {
	size_t n;
	int64_t t[MAXN];
	uint64_t v[MAXN];
};

static void add(struct raw *r, int64_t t, double v)
{
	assert_true(r->n < MAXN);
	r->t[r->n] = t;
	r->v[r->n++] = tu_bits(v);
}

static void add_bits(struct raw *r, int64_t t, uint64_t b)
{
	assert_true(r->n < MAXN);
	r->t[r->n] = t;
	r->v[r->n++] = b;
}

static struct ts_ds_row rows_a[MAXN], rows_b[MAXN], rows_c[MAXN];

static void raw_ok(const struct raw *r, int64_t res, struct ts_ds_row *rows, struct ts_ds_agg *a)
{
	assert_int_equal(ts_ds_raw(r->t, r->v, r->n, res, rows, MAXN, a), 0);
	assert_ptr_equal(a->rows, rows);
}

static void expect_row(const struct ts_ds_row *r, int64_t t, double count, double sum, double min,
		       double max, double counter)
{
	assert_int_equal(r->t_ms, t);
	assert_true(r->v[TS_DS_COUNT] == count);
	assert_true(r->v[TS_DS_SUM] == sum);
	assert_true(r->v[TS_DS_MIN] == min);
	assert_true(r->v[TS_DS_MAX] == max);
	if (r->v[TS_DS_COUNTER] != counter)
		fail_msg("counter %.17g, expected %.17g", r->v[TS_DS_COUNTER], counter);
}

/* ---- hand-computed cases ---------------------------------------------------------- */

static void test_basic_and_reset_inside(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, 10000, 1);
	add(&r, 70000, 3);
	add(&r, 290000, 2); /* reset inside the window: counter 1 +2 +2 = 5 */
	add(&r, 310000, 5); /* next window: +3 */
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 2);
	expect_row(&rows_a[0], 299999, 3, 6, 1, 3, 5); /* the window's last millisecond */
	expect_row(&rows_a[1], 310000, 1, 5, 5, 5, 8); /* the call's last window: last sample */
	assert_int_equal(a.first_t_ms, 10000);
	assert_true(a.first_v == 1);
	assert_true(a.last_v == 5);
}

static void test_reset_across_windows(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, 0, 10);
	add(&r, 100000, 20);
	add(&r, 300000, 5); /* reset at the window boundary: +5 */
	add(&r, 400000, 7);
	add(&r, 600001, 1); /* reset again, third window */
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 3);
	expect_row(&rows_a[0], 299999, 2, 30, 10, 20, 20);
	expect_row(&rows_a[1], 599999, 2, 12, 5, 7, 27);
	expect_row(&rows_a[2], 600001, 1, 1, 1, 1, 28);
	assert_true(a.first_v == 10 && a.last_v == 1);
}

static void test_stale_and_nan(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add_bits(&r, -5000, STALE); /* leading stale: not the first sample */
	add(&r, 0, 1);
	add_bits(&r, 1000, STALE);
	add_bits(&r, 2000, QNAN);
	add(&r, 3000, 4);
	add_bits(&r, 4000, STALE);		     /* trailing stale: the row ends at 3000 */
	add_bits(&r, 400000, 0xfff8000000000001ull); /* a window of NaN only: no row */
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 1);
	expect_row(&rows_a[0], 3000, 2, 5, 1, 4, 4);
	assert_int_equal(a.first_t_ms, 0);
	assert_true(a.first_v == 1 && a.last_v == 4);

	/* Only NaN: no rows, zeros. */
	struct raw z = { 0 };
	add_bits(&z, 1, STALE);
	add_bits(&z, 2, QNAN);
	a.n_rows = 99;
	raw_ok(&z, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 0);
	assert_int_equal(a.first_t_ms, 0);
	z.n = 0;
	raw_ok(&z, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 0);
}

static void test_gaps_and_single(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, 60000, 2);
	add(&r, 3 * M5 + 1, 4); /* windows 1 and 2 empty: no rows */
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 2);
	expect_row(&rows_a[0], M5 - 1, 1, 2, 2, 2, 2);
	expect_row(&rows_a[1], 3 * M5 + 1, 1, 4, 4, 4, 4);

	struct raw s = { 0 };
	add(&s, 123456, 7.5);
	raw_ok(&s, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 1);
	expect_row(&rows_a[0], 123456, 1, 7.5, 7.5, 7.5, 7.5);
	assert_int_equal(a.first_t_ms, 123456);
	assert_true(a.first_v == 7.5 && a.last_v == 7.5);

	/* A sample on a window's last millisecond, then the next window. */
	struct raw e = { 0 };
	add(&e, M5 - 1, 1);
	add(&e, M5, 2);
	raw_ok(&e, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 2);
	expect_row(&rows_a[0], M5 - 1, 1, 1, 1, 1, 1);
	expect_row(&rows_a[1], M5, 1, 2, 2, 2, 2);
}

static void test_negative_timestamps(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, -M5 - 1, 1); /* window [-2*M5, -M5) */
	add(&r, -M5, 2);     /* window [-M5, 0) */
	add(&r, -1, 3);
	add(&r, 0, 4); /* window [0, M5) */
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 3);
	expect_row(&rows_a[0], -M5 - 1, 1, 1, 1, 1, 1);
	expect_row(&rows_a[1], -1, 2, 5, 2, 3, 3);
	expect_row(&rows_a[2], 0, 1, 4, 4, 4, 4);

	/* 1h from those 5m rows: -M5-1 and -1 share the hour [-H1, 0). */
	struct ts_ds_agg h;
	assert_int_equal(ts_ds_aggr(&a, 1, H1, rows_b, MAXN, &h), 0);
	assert_int_equal(h.n_rows, 2);
	expect_row(&rows_b[0], -1, 3, 6, 1, 3, 3);
	expect_row(&rows_b[1], 0, 1, 4, 4, 4, 4);
}

static void test_min_max_special(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, 1, INFINITY);
	add(&r, 2, INFINITY);
	add(&r, M5, -INFINITY);
	add(&r, 2 * M5, 0.0);
	add(&r, 2 * M5 + 1, -0.0);
	struct ts_ds_agg a;
	raw_ok(&r, M5, rows_a, &a);
	assert_int_equal(a.n_rows, 3);
	assert_true(rows_a[0].v[TS_DS_MIN] == INFINITY); /* Thanos: MaxFloat64 */
	assert_true(rows_a[1].v[TS_DS_MAX] == -INFINITY);
	assert_true(rows_a[2].v[TS_DS_MIN] == 0 && !signbit(rows_a[2].v[TS_DS_MIN]));
	assert_true(rows_a[2].v[TS_DS_MAX] == 0 && !signbit(rows_a[2].v[TS_DS_MAX]));
}

static void test_bad_input(void **state)
{
	(void)state;
	struct raw r = { 0 };
	add(&r, 5, 1);
	add(&r, 5, 2);
	struct ts_ds_agg a = { 0 }, b = { 0 };
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, MAXN, &a), TS_EINVALID);
	r.t[1] = 4;
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, MAXN, &a), TS_EINVALID);
	r.t[1] = 6;
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, 0, rows_a, MAXN, &a), TS_EINVALID);
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, TS_DS_MAX_RES_MS + 1, rows_a, MAXN, &a),
			 TS_EINVALID);
	assert_int_equal(ts_ds_raw(NULL, r.v, 2, M5, rows_a, MAXN, &a), TS_EINVALID);
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, MAXN, NULL), TS_EINVALID);
	r.t[0] = INT64_MIN;
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, MAXN, &a), TS_EINVALID);
	r.t[0] = 5;
	r.t[1] = M5 + 6;
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, 1, &a), TS_ELIMIT);
	assert_int_equal(ts_ds_raw(r.t, r.v, 2, M5, rows_a, 0, &a), TS_ELIMIT);
	assert_int_equal(a.rows, NULL); /* not written on error */
	raw_ok(&r, M5, rows_a, &a);

	/* aggr: overlapping sets, unsorted rows, stale values, a small buffer. */
	struct ts_ds_agg two[2] = { a, a };
	assert_int_equal(ts_ds_aggr(two, 2, H1, rows_b, MAXN, &b), TS_EINVALID);
	assert_int_equal(ts_ds_aggr(two, 1, 0, rows_b, MAXN, &b), TS_EINVALID);
	assert_int_equal(ts_ds_aggr(NULL, 1, H1, rows_b, MAXN, &b), TS_EINVALID);
	assert_int_equal(ts_ds_aggr(two, 1, M5, rows_b, 1, &b), TS_ELIMIT);
	assert_int_equal(ts_ds_aggr(two, 1, H1, rows_b, 1, &b), 0);
	assert_int_equal(b.n_rows, 1);
	rows_a[1].v[TS_DS_SUM] = tu_f64(STALE);
	assert_int_equal(ts_ds_aggr(two, 1, H1, rows_b, MAXN, &b), TS_EINVALID);
	rows_a[1].v[TS_DS_SUM] = 2;
	rows_a[1].t_ms = rows_a[0].t_ms;
	assert_int_equal(ts_ds_aggr(two, 1, H1, rows_b, MAXN, &b), TS_EINVALID);
	assert_int_equal(ts_ds_aggr(NULL, 0, H1, rows_b, MAXN, &b), 0);
	assert_int_equal(b.n_rows, 0);
}

/* ---- 5m -> 1h against raw -> 1h --------------------------------------------------- */

static void check_close(double a, double b, double rtol)
{
	if (a == b || (isnan(a) && isnan(b)))
		return;
	if (!(fabs(a - b) <= rtol * fmax(fabs(a), fabs(b))))
		fail_msg("%.17g vs %.17g (rtol %g)", a, b, rtol);
}

/* Compares 1h rows from 5m sets (h) with 1h rows from raw (d). */
static void compare_hours(const struct ts_ds_agg *h, const struct ts_ds_agg *d, int exact_sum)
{
	assert_int_equal(h->n_rows, d->n_rows);
	for (size_t i = 0; i < h->n_rows; i++) {
		const struct ts_ds_row *x = &h->rows[i], *y = &d->rows[i];
		assert_int_equal(x->t_ms, y->t_ms);
		assert_true(x->v[TS_DS_COUNT] == y->v[TS_DS_COUNT]);
		assert_int_equal(tu_bits(x->v[TS_DS_MIN]), tu_bits(y->v[TS_DS_MIN]));
		assert_int_equal(tu_bits(x->v[TS_DS_MAX]), tu_bits(y->v[TS_DS_MAX]));
		if (exact_sum)
			assert_int_equal(tu_bits(x->v[TS_DS_SUM]), tu_bits(y->v[TS_DS_SUM]));
		else
			check_close(x->v[TS_DS_SUM], y->v[TS_DS_SUM], 1e-9);
		check_close(x->v[TS_DS_COUNTER], y->v[TS_DS_COUNTER], 1e-9);
		if (i) /* the rate over the hour */
			check_close(x->v[TS_DS_COUNTER] - h->rows[i - 1].v[TS_DS_COUNTER],
				    y->v[TS_DS_COUNTER] - d->rows[i - 1].v[TS_DS_COUNTER], 1e-9);
	}
	assert_int_equal(h->first_t_ms, d->first_t_ms);
	assert_true(h->first_v == d->first_v);
	assert_true(h->last_v == d->last_v);
}

/* A counter over 3 hours: 15 s scrapes, integer steps, resets, gaps, NaN and stale. */
static void counter_series(struct raw *r, uint64_t *rng)
{
	double v = 1000;
	for (int64_t t = -H1; t < 2 * H1; t += 15000) {
		uint64_t x = tu_rand(rng);
		if (t >= 20 * 60000 && t < 50 * 60000)
			continue; /* a 30-minute gap: empty 5m windows */
		if (x % 97 == 0)
			v = (double)(x % 7); /* a reset */
		else
			v += (double)(x % 100);
		if (x % 53 == 0)
			add_bits(r, t, x & 1 ? STALE : QNAN);
		else
			add(r, t, v);
	}
}

static void test_5m_to_1h_equals_raw(void **state)
{
	(void)state;
	uint64_t rng = tu_seed("test_5m_to_1h_equals_raw", SEED);
	for (int round = 0; round < 20; round++) {
		struct raw r = { 0 };
		counter_series(&r, &rng);
		struct ts_ds_agg m, h, d;
		raw_ok(&r, M5, rows_a, &m);
		assert_int_equal(ts_ds_aggr(&m, 1, H1, rows_b, MAXN, &h), 0);
		raw_ok(&r, H1, rows_c, &d);
		assert_true(d.n_rows >= 2);
		compare_hours(&h, &d, 1);

		/* The same raw data cut into two calls at a 5m boundary inside an hour: the
		 * counter stream stitches the sets across the cut (a reset there too). */
		size_t cut = 0;
		while (cut < r.n && r.t[cut] < 75 * 60000)
			cut++;
		r.v[cut] = tu_bits(0.5); /* below the previous value: a reset at the cut */
		raw_ok(&r, H1, rows_c, &d);
		struct ts_ds_agg sets[2];
		assert_int_equal(ts_ds_raw(r.t, r.v, cut, M5, rows_a, MAXN, &sets[0]), 0);
		assert_int_equal(ts_ds_raw(r.t + cut, r.v + cut, r.n - cut, M5,
					   rows_a + sets[0].n_rows, MAXN - sets[0].n_rows,
					   &sets[1]),
				 0);
		assert_int_equal(ts_ds_aggr(sets, 2, H1, rows_b, MAXN, &h), 0);
		compare_hours(&h, &d, 1);
	}
}

static void test_counter_stream(void **state)
{
	(void)state;
	/* Two sets: 10, 20 | 5, 7 (reset between sets: 20 -> 5). */
	struct raw r1 = { 0 }, r2 = { 0 };
	add(&r1, 1000, 10);
	add(&r1, 2000, 20);
	add(&r2, M5 + 1000, 5);
	add(&r2, M5 + 2000, 7);
	struct ts_ds_agg s[2];
	raw_ok(&r1, M5, rows_a, &s[0]);
	raw_ok(&r2, M5, rows_b, &s[1]);
	struct ts_ds_counter_it it;
	ts_ds_counter_init(&it, s, 2);
	int64_t t;
	double v;
	static const int64_t et[] = { 1000, 2000, M5 + 1000, M5 + 2000 };
	static const double ev[] = { 10, 20, 25, 27 };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ts_ds_counter_next(&it, &t, &v), 1);
		assert_int_equal(t, et[i]);
		assert_true(v == ev[i]);
	}
	assert_int_equal(ts_ds_counter_next(&it, &t, &v), 0);
	assert_true(ts_ds_counter_last_raw(&it) == 7);

	/* Without the last raw value the reset inside set 0 (30 -> 2, counter 32) would
	 * make set 1's first raw 3 look like a reset: it must add 1, not 3. */
	struct raw q1 = { 0 }, q2 = { 0 };
	add(&q1, 1000, 30);
	add(&q1, 2000, 2);
	add(&q2, M5 + 1000, 3);
	raw_ok(&q1, M5, rows_a, &s[0]);
	raw_ok(&q2, M5, rows_b, &s[1]);
	assert_true(rows_a[0].v[TS_DS_COUNTER] == 32);
	ts_ds_counter_init(&it, s, 2);
	double last = 0;
	while (ts_ds_counter_next(&it, &t, &v))
		last = v;
	assert_true(last == 33);
	ts_ds_counter_init(&it, NULL, 3);
	assert_int_equal(ts_ds_counter_next(&it, &t, &v), 0);
}

/* ---- properties over random series ----------------------------------------------- */

static int64_t floor_start(int64_t t, int64_t res)
{
	int64_t q = t / res;
	if (t % res && t < 0)
		q--;
	return q * res;
}

static int64_t last_nonnan(const struct raw *r)
{
	for (size_t i = r->n; i-- > 0;)
		if (!isnan(tu_f64(r->v[i])))
			return r->t[i];
	return 0;
}

static void test_random_properties(void **state)
{
	(void)state;
	uint64_t rng = tu_seed("test_random_properties", SEED + 1);
	for (int round = 0; round < 200; round++) {
		struct raw r = { 0 };
		int64_t t = (int64_t)(tu_rand(&rng) % (100 * H1)) - 50 * H1;
		double v = (double)(tu_rand(&rng) % 1000);
		size_t n = 1 + tu_rand(&rng) % 2000;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = tu_rand(&rng);
			t += 1 + (int64_t)(x % 4 == 0 ? x % (2 * H1) : x % 30000);
			if (x % 61 == 0)
				v = (double)(x % 1000) / 7.0;
			else
				v += (double)(x >> 40) / 1048576.0;
			if (x % 41 == 0)
				add_bits(&r, t, STALE);
			else
				add(&r, t, round % 2 ? v : v - 500); /* odd rounds: a gauge */
		}
		int64_t res = round % 3 == 0 ? H1 : M5;
		struct ts_ds_agg a;
		raw_ok(&r, res, rows_a, &a);
		/* Reference: naive per-window aggregates and the raw increase. */
		size_t i = 0, k = 0;
		double inc = 0, prev = NAN, first = NAN;
		while (i < r.n) {
			if (isnan(tu_f64(r.v[i]))) {
				i++;
				continue;
			}
			int64_t s = floor_start(r.t[i], res);
			double cnt = 0, sum = 0, lo = INFINITY, hi = -INFINITY;
			int64_t last_t = 0;
			for (; i < r.n && r.t[i] < s + res; i++) {
				double x = tu_f64(r.v[i]);
				if (isnan(x))
					continue;
				cnt++;
				sum += x;
				lo = fmin(lo, x);
				hi = fmax(hi, x);
				if (isnan(first))
					first = x;
				else
					inc += x < prev ? x : x - prev;
				prev = x;
				last_t = r.t[i];
			}
			assert_true(k < a.n_rows);
			const struct ts_ds_row *row = &rows_a[k++];
			assert_true(row->t_ms >= last_t && row->t_ms <= s + res - 1);
			assert_true(row->v[TS_DS_COUNT] == cnt);
			check_close(row->v[TS_DS_SUM], sum, 1e-9);
			check_close(row->v[TS_DS_SUM] / row->v[TS_DS_COUNT], sum / cnt, 1e-9);
			assert_true(row->v[TS_DS_MIN] == lo && row->v[TS_DS_MAX] == hi);
			if (round % 2) { /* counters: the increase through this window, 1 % */
				double got = row->v[TS_DS_COUNTER] - a.first_v;
				assert_true(fabs(got - inc) <= 0.01 * fabs(inc) + 1e-9);
			}
		}
		assert_int_equal(k, a.n_rows);
		if (a.n_rows)
			assert_int_equal(rows_a[a.n_rows - 1].t_ms, last_nonnan(&r));
		/* The stream over the set: the increase from first to last sample. */
		struct ts_ds_counter_it it;
		ts_ds_counter_init(&it, &a, 1);
		int64_t st;
		double sv, s0 = NAN, sl = NAN;
		while (ts_ds_counter_next(&it, &st, &sv)) {
			if (isnan(s0))
				s0 = sv;
			sl = sv;
		}
		if (round % 2 && a.n_rows)
			assert_true(fabs((sl - s0) - inc) <= 0.01 * fabs(inc) + 1e-9);
		/* 5m -> 1h against raw -> 1h on the same data. */
		if (res == M5 && round % 2) {
			struct ts_ds_agg h, d;
			assert_int_equal(ts_ds_aggr(&a, 1, H1, rows_b, MAXN, &h), 0);
			raw_ok(&r, H1, rows_c, &d);
			compare_hours(&h, &d, 0);
		}
	}
}

/* ---- tier blocks ------------------------------------------------------------------ */

/* The series of the tier tests and the golden block: the hand-computed cases above,
 * as 5m and 1h sets, under ids from small to TS_DS_MAX_SERIES_ID. */
struct tier {
	size_t n;
	struct ts_ds_tier_series s[8];
	struct ts_ds_row rows[8][512];
};

static void tier_add(struct tier *tr, uint64_t id, const struct raw *r, int64_t res)
{
	struct ts_ds_tier_series *s = &tr->s[tr->n];
	s->id = id;
	assert_int_equal(ts_ds_raw(r->t, r->v, r->n, res, tr->rows[tr->n], 512, &s->agg), 0);
	assert_true(s->agg.n_rows > 0);
	tr->n++;
}

static void tier_set(struct tier *tr)
{
	memset(tr, 0, sizeof *tr);
	struct raw r = { 0 };
	add(&r, 10000, 1);
	add(&r, 70000, 3);
	add(&r, 290000, 2);
	add(&r, 310000, 5);
	tier_add(tr, 1, &r, M5); /* reset inside a window */
	r.n = 0;
	add(&r, 0, 10);
	add(&r, 100000, 20);
	add(&r, 300000, 5);
	add(&r, 400000, 7);
	add(&r, 600001, 1);
	tier_add(tr, 2, &r, M5); /* resets across windows */
	r.n = 0;
	add_bits(&r, -5000, STALE);
	add(&r, 0, 1);
	add_bits(&r, 1000, STALE);
	add_bits(&r, 2000, QNAN);
	add(&r, 3000, 4.25);
	add_bits(&r, 400000, QNAN);
	tier_add(tr, 3, &r, M5); /* stale and NaN */
	r.n = 0;
	add(&r, 123456, 7.5);
	tier_add(tr, 40, &r, M5); /* one sample */
	r.n = 0;
	add(&r, -M5 - 1, 1);
	add(&r, -M5, 2);
	add(&r, -1, 3);
	add(&r, 0, 4);
	add(&r, 3 * M5 + 1, 0.1); /* gaps */
	tier_add(tr, 1000, &r, M5);
	r.n = 0;
	uint64_t rng = 7;
	counter_series(&r, &rng);
	tier_add(tr, 1001, &r, M5);
	tier_add(tr, TS_DS_MAX_SERIES_ID - 1, &r, H1);
	r.n = 0;
	add(&r, 1, INFINITY);
	add(&r, M5, -INFINITY);
	add(&r, 2 * M5, -0.0);
	tier_add(tr, TS_DS_MAX_SERIES_ID, &r, M5);
}

/* Decodes every series of blk[0..len) and checks it bit for bit against tr. */
static void tier_check(const uint8_t *blk, size_t len, const struct tier *tr)
{
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	assert_int_equal(ts_cold_nseries(b), tr->n * TS_DS_N_KINDS);
	for (size_t i = 0; i < tr->n; i++) {
		const struct ts_ds_agg *w = &tr->s[i].agg;
		uint64_t id;
		size_t n;
		assert_int_equal(ts_ds_tier_id(b, i, &id, &n), 0);
		assert_int_equal(id, tr->s[i].id);
		assert_int_equal(n, w->n_rows);
		struct ts_ds_agg a;
		assert_int_equal(ts_ds_tier_decode(b, id, rows_a, n - 1, &a), TS_ELIMIT);
		assert_int_equal(ts_ds_tier_decode(b, id, rows_a, n, &a), 0);
		assert_ptr_equal(a.rows, rows_a);
		assert_int_equal(a.n_rows, n);
		assert_int_equal(a.first_t_ms, w->first_t_ms);
		assert_int_equal(tu_bits(a.first_v), tu_bits(w->first_v));
		assert_int_equal(tu_bits(a.last_v), tu_bits(w->last_v));
		for (size_t j = 0; j < n; j++) {
			assert_int_equal(rows_a[j].t_ms, w->rows[j].t_ms);
			for (int k = 0; k < TS_DS_N_AGGR; k++)
				assert_int_equal(tu_bits(rows_a[j].v[k]), tu_bits(w->rows[j].v[k]));
		}
	}
	assert_int_equal(ts_ds_tier_id(b, tr->n, NULL, NULL), TS_ENOTFOUND);
	struct ts_ds_agg a;
	assert_int_equal(ts_ds_tier_decode(b, 5, rows_a, MAXN, &a), TS_ENOTFOUND);
	assert_int_equal(ts_ds_tier_decode(b, UINT64_MAX, rows_a, MAXN, &a), TS_ENOTFOUND);
	assert_int_equal(ts_ds_tier_decode(b, 1, rows_a, MAXN, NULL), TS_EINVALID);
	ts_cold_free(b);
}

static struct tier tier_a;

static void test_tier_roundtrip(void **state)
{
	(void)state;
	tier_set(&tier_a);
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_ds_tier_encode(tier_a.s, tier_a.n, TS_COLD_LEVEL_DEFAULT, &blk, &len),
			 0);
	uint8_t *p = tu_memdup(blk, len);
	tier_check(p, len, &tier_a);
	/* Kinds 0..4 of a series share one timestamp column: the block stays small. */
	struct ts_cold_info info;
	assert_int_equal(ts_cold_peek(p, len, &info), 0);
	assert_int_equal(info.first_id, 1ull << TS_DS_KIND_BITS);
	assert_int_equal(info.last_id, UINT64_MAX - 1);
	free(p);
	ts_free(blk);
}

static void test_tier_bad_input(void **state)
{
	(void)state;
	tier_set(&tier_a);
	uint8_t *blk = NULL;
	size_t len = 0;
	struct ts_ds_tier_series s[2] = { tier_a.s[0], tier_a.s[1] };
#define ENC(n) ts_ds_tier_encode(s, n, 1, &blk, &len)
	assert_int_equal(ts_ds_tier_encode(NULL, 1, 1, &blk, &len), TS_EINVALID);
	assert_int_equal(ENC(0), TS_EINVALID);
	assert_int_equal(ts_ds_tier_encode(s, TS_DS_TIER_MAX_SERIES + 1, 1, &blk, &len),
			 TS_EINVALID);
	s[1].id = s[0].id;
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1].id = TS_DS_MAX_SERIES_ID + 1; /* the shift would overflow */
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1] = tier_a.s[1];
	s[1].agg.n_rows = 0;
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1] = tier_a.s[1];
	s[1].agg.first_t_ms = s[1].agg.rows[0].t_ms + 1;
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1] = tier_a.s[1];
	s[1].agg.last_v = tu_f64(STALE);
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1] = tier_a.s[1];
	double keep = s[1].agg.rows[0].v[TS_DS_COUNT];
	s[1].agg.rows[0].v[TS_DS_COUNT] = 0.5;
	assert_int_equal(ENC(2), TS_EINVALID);
	s[1].agg.rows[0].v[TS_DS_COUNT] = keep;
	assert_null(blk);
	assert_int_equal(len, 0);
	assert_int_equal(ENC(2), 0);
	ts_free(blk);
#undef ENC
}

/* A cold block of hand-made pseudo-series, for the decoder's checks. */
struct craft {
	size_t n;
	struct ts_cold_input in[8];
	int64_t t[8][4];
	uint64_t v[8][4];
};

static void craft_add(struct craft *c, uint64_t id, uint32_t n, int64_t t0, double v)
{
	struct ts_cold_input *in = &c->in[c->n];
	for (uint32_t j = 0; j < n; j++) {
		c->t[c->n][j] = t0 + (int64_t)j * 10;
		c->v[c->n][j] = tu_bits(v);
	}
	*in = (struct ts_cold_input){ id, n, c->t[c->n], c->v[c->n] };
	c->n++;
}

/* A well-formed series 9 of 2 rows at 0 and 10; `bad` breaks one rule. */
static int craft_decode(int bad)
{
	struct craft c = { 0 };
	for (int k = 0; k < TS_DS_N_AGGR; k++) {
		if (bad == 1 && k == TS_DS_MAX)
			continue; /* a missing kind */
		craft_add(&c, 9 << 3 | (uint64_t)k, bad == 2 && k == 2 ? 3 : 2,
			  bad == 3 && k ? 1 : 0, bad == 4 && k == 0 ? 0.0 : 1.0);
	}
	if (bad == 5)
		c.v[TS_DS_COUNTER][1] = STALE;
	craft_add(&c, 9 << 3 | TS_DS_KIND_FIRST, 1, bad == 6 ? 1 : 0, 1);
	if (bad != 7)
		craft_add(&c, 9 << 3 | TS_DS_KIND_LAST, 1, bad == 8 ? 0 : 10, 1);
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_cold_encode(c.in, c.n, 1, &blk, &len), 0);
	struct ts_cold_block *b;
	assert_int_equal(ts_cold_open(blk, len, &b), 0);
	struct ts_ds_agg a;
	int rc = ts_ds_tier_decode(b, 9, rows_a, MAXN, &a);
	if (rc == 0)
		assert_int_equal(a.n_rows, 2);
	ts_cold_free(b);
	ts_free(blk);
	return rc;
}

static void test_tier_corrupt(void **state)
{
	(void)state;
	assert_int_equal(craft_decode(0), 0);
	for (int bad = 1; bad <= 8; bad++)
		if (craft_decode(bad) != TS_ECORRUPT)
			fail_msg("case %d decoded", bad);
	/* Bit flips: open or decode fail with documented codes, never crash. */
	tier_set(&tier_a);
	uint8_t *blk;
	size_t len;
	assert_int_equal(ts_ds_tier_encode(tier_a.s, tier_a.n, 1, &blk, &len), 0);
	for (size_t bit = 0; bit < len * 8; bit += 7) {
		uint8_t *p = tu_memdup(blk, len);
		p[bit / 8] ^= (uint8_t)(1u << bit % 8);
		struct ts_cold_block *b;
		int rc = ts_cold_open(p, len, &b);
		assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_EVERSION);
		if (rc == 0) {
			for (size_t i = 0; i < tier_a.n; i++) {
				struct ts_ds_agg a;
				rc = ts_ds_tier_decode(b, tier_a.s[i].id, rows_a, MAXN, &a);
				assert_true(rc == 0 || rc == TS_ECORRUPT || rc == TS_ENOTFOUND);
			}
			ts_cold_free(b);
		}
		free(p);
	}
	ts_free(blk);
}

static void test_tier_alloc_failure(void **state)
{
	(void)state;
	tier_set(&tier_a);
	int ok = 0;
	for (unsigned long n = 1; !ok && n < 100; n++) {
		uint8_t *blk = NULL;
		size_t len = 0;
		ts_mem_fail_at(n, 1);
		int rc = ts_ds_tier_encode(tier_a.s, tier_a.n, 1, &blk, &len);
		ts_mem_fail_at(0, 0);
		if (rc == 0) {
			/* Success even after a failed allocation is fine: the codec may fall
			 * back to a stored body when zstd cannot get memory. */
			ok = 1;
			/* Decode under failure: -ENOMEM until its two allocations succeed. */
			struct ts_cold_block *b;
			assert_int_equal(ts_cold_open(blk, len, &b), 0);
			for (unsigned long m = 1; m <= 3; m++) {
				struct ts_ds_agg a;
				ts_mem_fail_at(m, 1);
				rc = ts_ds_tier_decode(b, 2, rows_a, MAXN, &a);
				ts_mem_fail_at(0, 0);
				assert_int_equal(rc, m <= 2 ? -ENOMEM : 0);
			}
			ts_cold_free(b);
			ts_free(blk);
		} else {
			assert_int_equal(rc, -ENOMEM);
			assert_null(blk);
		}
	}
	assert_true(ok);
}

/* ---- golden ----------------------------------------------------------------------- */

static void test_golden(void **state)
{
	(void)state;
	tier_set(&tier_a);
	char path[4096];
	tu_data_path(path, sizeof path, GOLDEN);
	if (getenv("TS_TIER_WRITE_GOLDEN")) {
		uint8_t *blk;
		size_t len;
		assert_int_equal(ts_ds_tier_encode(tier_a.s, tier_a.n, 19, &blk, &len), 0);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(blk, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		print_message("wrote %s (%zu bytes)\n", path, len);
		ts_free(blk);
	}
	size_t len;
	uint8_t *blk = (uint8_t *)tu_load_data(GOLDEN, &len);
	uint8_t *p = tu_memdup(blk, len);
	tier_check(p, len, &tier_a);
	free(p);
	free(blk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_and_reset_inside),
		cmocka_unit_test(test_reset_across_windows),
		cmocka_unit_test(test_stale_and_nan),
		cmocka_unit_test(test_gaps_and_single),
		cmocka_unit_test(test_negative_timestamps),
		cmocka_unit_test(test_min_max_special),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_5m_to_1h_equals_raw),
		cmocka_unit_test(test_counter_stream),
		cmocka_unit_test(test_random_properties),
		cmocka_unit_test(test_tier_roundtrip),
		cmocka_unit_test(test_tier_bad_input),
		cmocka_unit_test(test_tier_corrupt),
		cmocka_unit_test(test_tier_alloc_failure),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, quiet, NULL);
}
