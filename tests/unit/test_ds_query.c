/*
 * test_ds_query.c - queries over downsampled tiers (max_source_resolution, query.h;
 * semantics in query/README.md) against the same queries over raw samples.
 *
 * Data: three days of 15 s samples (offset 7 s, so no sample falls on a window edge)
 * of counters with resets, gauges, a temperature, a gauge with a daily gap, and a
 * series with NaNs and a stale marker, in closed day partitions whose tiers
 * ts_db_compact builds. Then a late sample lands in day 2, so day 2 is read raw (its
 * tiers are stale) while days 0 and 1 are read from tiers: every check also crosses a
 * raw/tier boundary.
 *
 * Checks (the acceptance): on windows aligned to the resolution,
 * sum/count/min/max/avg_over_time from the 5m and 1h tiers equal raw (rtol 1e-9);
 * rate/increase within 1 %; plain selectors answer at every step raw answers (the
 * lookback grows to the resolution, as Thanos' dynamic lookback); auto picks 5m at step
 * 1h for [1h] windows and 1h at step 6h for [6h] windows and matches the explicit
 * resolution exactly; auto reads raw for instant queries and for resets()/changes();
 * max_source_resolution 0 is raw exactly. Also: reads at a resolution finer than any
 * tier are raw; results are the same after a reopen.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "query/query.h"
#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/labels.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)
#define T0 (INT64_C(1700000000000) / DAY_MS * DAY_MS - 10 * DAY_MS)
#define OFF 7000
#define STEP 15000
#define N_J (3 * DAY_MS / STEP)
#define N_SER 10
#define RES_5M INT64_C(300000)
#define RES_1H INT64_C(3600000)

static char dir[4096];
static struct ts_db *db;

static int sample_of(int k, int64_t j, double *d)
{
	switch (k % 5) {
	case 0: { /* a counter whose rate swings by 15 %, restarting from 0 every 16.7 h */
		int64_t x = j % 4000;
		*d = (double)(x * (k + 3)) + 30.0 * (k + 3) * (1 - cos((double)x / 200.0));
		return 1;
	}
	case 1: /* memory bytes in pages */
		*d = 4096.0 *
		     (double)(250000 + k * 1000 + (int64_t)(tu_mix64((uint64_t)j / 40) % 500));
		return 1;
	case 2: /* a temperature with one decimal */
		*d = round((40.0 + 5.0 * sin((double)j / 300.0) + (double)k) * 10.0) / 10.0;
		return 1;
	case 3: /* a gauge with a two-hour gap each day */
		if (j % 5760 >= 1000 && j % 5760 < 1480)
			return 0;
		*d = (double)(tu_mix64((uint64_t)(j * 7 + k)) % 100);
		return 1;
	default: /* a counter with a NaN now and then and a stale marker once */
		if (j == 9000) {
			uint64_t b = TS_STALE_NAN_BITS;
			memcpy(d, &b, 8);
			return 1;
		}
		*d = j % 977 == 5 ? NAN : (double)(j * 3 + k) + 90.0 * sin((double)j / 200.0);
		return 1;
	}
}

static void append_all(void)
{
	struct ts_sample *s = calloc((size_t)N_J, sizeof *s);
	assert_non_null(s);
	for (int k = 0; k < N_SER; k++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", k);
		struct ts_label l[2] = { { "__name__", "m", 8, 1 },
					 { "k", name, 1, (uint32_t)strlen(name) } };
		size_t n = 0;
		for (int64_t j = 0; j < N_J; j++) {
			double d;
			if (!sample_of(k, j, &d))
				continue;
			s[n].t_ms = T0 + OFF + j * STEP;
			s[n].v = d;
			n++;
		}
		struct ts_series_in in = { l, 2, s, (uint32_t)n };
		struct ts_append_result res;
		assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
		assert_int_equal(res.n_appended, n);
	}
	free(s);
}

static struct ts_db *open_db(void)
{
	struct ts_db *d;
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000;
	o.checkpoint_interval_ms = 3600000;
	assert_int_equal(ts_db_open(dir, &o, &d), 0);
	return d;
}

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "dsq");
	db = open_db();
	append_all();
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	assert_int_equal(ts_db_compact(db), 0);
	struct ts_downsample_stats st;
	assert_int_equal(ts_db_downsample(db, NULL, NULL, &st), 0);
	assert_true(st.n_built + st.n_current >= 3);
	/* A late sample (a new series) into day 2: its tiers go stale, it is read raw. */
	struct ts_label l[2] = { { "__name__", "late", 8, 4 }, { "k", "x", 1, 1 } };
	struct ts_sample ls = { T0 + 2 * DAY_MS + 5 * HOUR_MS, 1.0 };
	struct ts_series_in in = { l, 2, &ls, 1 };
	assert_int_equal(ts_db_append(db, &in, 1, NULL, NULL), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_db_close(db);
	if (!getenv("KEEP"))
		tu_rmtree(dir);
	return 0;
}

static struct ts_qresult *range_q(const char *q, int64_t start, int64_t end, int64_t step,
				  int64_t res)
{
	struct ts_qopts o = { .max_source_resolution_ms = res, .max_points = 20000 };
	struct ts_qresult *r = NULL;
	struct ts_qerr err = { 0 };
	int rc = ts_query_range(db, q, strlen(q), start, end, step, &o, &r, &err);
	if (rc)
		fail_msg("%s: %s (%s)", q, err.msg, ts_strerror(rc));
	return r;
}

enum cmp { EXACT, WITHIN_1PCT, SAME_STEPS };

/* a from tiers, b raw. A raw NaN sample makes raw answers NaN; downsampling drops NaN
 * (as Thanos' does), so the tiers answer from the other samples there. */
static int close_enough(double a, double b, enum cmp how)
{
	if (isnan(b))
		return 1;
	if (isnan(a))
		return 0;
	if (how == SAME_STEPS)
		return 1;
	double tol = how == EXACT ? 1e-9 : 0.01;
	return fabs(a - b) <= tol * fabs(b) + (how == EXACT ? 1e-12 : 1e-9);
}

/* q at resolution res against q raw: the same series and steps, values as `how`. */
static void compare(const char *q, int64_t start, int64_t end, int64_t step, int64_t res,
		    enum cmp how)
{
	struct ts_qresult *raw = range_q(q, start, end, step, 0);
	struct ts_qresult *ds = range_q(q, start, end, step, res);
	if (raw->n_series != ds->n_series)
		fail_msg("%s at res %lld: %zu series, raw %zu", q, (long long)res, ds->n_series,
			 raw->n_series);
	assert_true(raw->n_series > 0);
	size_t n_pts = 0;
	for (size_t i = 0; i < raw->n_series; i++) {
		const struct ts_qseries *a = &raw->series[i], *b = &ds->series[i];
		assert_int_equal(ts_labels_cmp(a->labels, a->n_labels, b->labels, b->n_labels), 0);
		/* SAME_STEPS: an answer at every step raw has one; more where a lookback as
		 * long as the resolution reaches over a gap. */
		if (how == SAME_STEPS ? a->n_points > b->n_points : a->n_points != b->n_points)
			fail_msg("%s at res %lld, series %zu: %zu points, raw %zu", q,
				 (long long)res, i, b->n_points, a->n_points);
		size_t kb = 0;
		for (size_t k = 0; k < a->n_points; k++, kb++) {
			while (how == SAME_STEPS && kb < b->n_points &&
			       b->points[kb].t_ms < a->points[k].t_ms)
				kb++;
			assert_true(kb < b->n_points);
			assert_int_equal(a->points[k].t_ms, b->points[kb].t_ms);
			if (!close_enough(b->points[kb].v, a->points[k].v, how))
				fail_msg("%s at res %lld, series %zu, t %lld: %.17g, raw %.17g", q,
					 (long long)res, i, (long long)a->points[k].t_ms,
					 b->points[kb].v, a->points[k].v);
		}
		n_pts += a->n_points;
	}
	assert_true(n_pts > 0);
	ts_qresult_free(raw);
	ts_qresult_free(ds);
}

/* Whether two results are identical (labels, steps, bit-equal values). */
static void same(struct ts_qresult *a, struct ts_qresult *b, const char *what)
{
	assert_int_equal(a->n_series, b->n_series);
	for (size_t i = 0; i < a->n_series; i++) {
		assert_int_equal(a->series[i].n_points, b->series[i].n_points);
		for (size_t k = 0; k < a->series[i].n_points; k++)
			if (memcmp(&a->series[i].points[k], &b->series[i].points[k],
				   sizeof a->series[i].points[k]) != 0)
				fail_msg("%s: series %zu point %zu differs", what, i, k);
	}
}

#define START (T0 + 2 * HOUR_MS)
#define END (T0 + 3 * DAY_MS - HOUR_MS)

static void test_over_time_exact(void **state)
{
	(void)state;
	static const char *const fns[] = { "sum_over_time", "count_over_time", "min_over_time",
					   "max_over_time", "avg_over_time" };
	char q[128];
	for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
		/* Series 4 and 9 hold NaNs, which downsampling drops: count_over_time
		 * counts them raw. */
		snprintf(q, sizeof q, "%s(m{k!~\"s[49]\"}[1h])", fns[f]);
		compare(q, START, END, HOUR_MS, RES_5M, EXACT);
		compare(q, START, END, HOUR_MS, RES_1H, EXACT);
		snprintf(q, sizeof q, "%s(m{k!~\"s[49]\"}[6h])", fns[f]);
		compare(q, START + 4 * HOUR_MS, END, 6 * HOUR_MS, RES_1H, EXACT);
		snprintf(q, sizeof q, "%s(m{k!~\"s[49]\"}[20m])", fns[f]);
		compare(q, START, END, HOUR_MS / 3, RES_5M, EXACT);
		/* With NaNs: where raw is not NaN, the same (count aside). */
		if (f != 1) {
			snprintf(q, sizeof q, "%s(m{k=~\"s[49]\"}[1h])", fns[f]);
			compare(q, START, END, HOUR_MS, RES_5M, EXACT);
		}
	}
	/* Aggregations over them too. */
	compare("sum(count_over_time(m{k!~\"s[49]\"}[1h]))", START, END, HOUR_MS, RES_5M, EXACT);
	compare("max by (k) (max_over_time(m[2h]))", START, END, 2 * HOUR_MS, RES_1H, EXACT);
}

static void test_rate_within_1pct(void **state)
{
	(void)state;
	/* The counters (k = 0, 5 reset; 4, 9 have NaNs and a stale marker). */
	static const char *const qs[] = { "rate(m{k=~\"s[0459]\"}[1h])",
					  "increase(m{k=~\"s[0459]\"}[1h])",
					  "sum(rate(m{k=~\"s[0459]\"}[3h]))" };
	/* Windows inside the data (where the data starts, raw and rows extrapolate
	 * differently: Prometheus' rate() guesses the missing start from the sample
	 * spacing). */
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
		compare(qs[i], T0 + 3 * HOUR_MS, END, HOUR_MS, RES_5M, WITHIN_1PCT);
	compare("increase(m{k=~\"s[0459]\"}[6h])", START + 4 * HOUR_MS, END, 6 * HOUR_MS, RES_1H,
		WITHIN_1PCT);
}

static void test_plain_selectors(void **state)
{
	(void)state;
	/* Every step raw answers has an answer from the tiers (values are window averages). */
	compare("m", START, END, HOUR_MS, RES_5M, SAME_STEPS);
	compare("m", START, END, HOUR_MS, RES_1H, SAME_STEPS);
	compare("late", T0 + 2 * DAY_MS, END, HOUR_MS, RES_1H, SAME_STEPS);
}

static void test_auto(void **state)
{
	(void)state;
	struct ts_qresult *a, *b;
	/* Step 1h, [1h]: 5m. */
	a = range_q("sum_over_time(m[1h])", START, END, HOUR_MS, TS_QRES_AUTO);
	b = range_q("sum_over_time(m[1h])", START, END, HOUR_MS, RES_5M);
	same(a, b, "auto at step 1h");
	ts_qresult_free(a);
	ts_qresult_free(b);
	/* Step 6h, [6h]: 1h. */
	a = range_q("rate(m[6h])", START + 4 * HOUR_MS, END, 6 * HOUR_MS, TS_QRES_AUTO);
	b = range_q("rate(m[6h])", START + 4 * HOUR_MS, END, 6 * HOUR_MS, RES_1H);
	same(a, b, "auto at step 6h");
	ts_qresult_free(a);
	ts_qresult_free(b);
	/* Step 6h, [1h]: range/5 keeps it at 5m. */
	a = range_q("rate(m[1h])", START + 4 * HOUR_MS, END, 6 * HOUR_MS, TS_QRES_AUTO);
	b = range_q("rate(m[1h])", START + 4 * HOUR_MS, END, 6 * HOUR_MS, RES_5M);
	same(a, b, "auto at step 6h over [1h]");
	ts_qresult_free(a);
	ts_qresult_free(b);
	/* Step 1m: raw. resets() and changes(): raw at any step. */
	static const char *const raw_qs[] = { "rate(m[5m])", "resets(m[6h])", "changes(m[6h])" };
	int64_t steps[] = { 60000, 6 * HOUR_MS, 6 * HOUR_MS };
	for (size_t i = 0; i < 3; i++) {
		int64_t end = START + (steps[i] == 60000 ? 7 * HOUR_MS : 2 * DAY_MS);
		a = range_q(raw_qs[i], START + 4 * HOUR_MS, end, steps[i], TS_QRES_AUTO);
		b = range_q(raw_qs[i], START + 4 * HOUR_MS, end, steps[i], 0);
		same(a, b, raw_qs[i]);
		ts_qresult_free(a);
		ts_qresult_free(b);
	}
	/* An instant query under auto: raw. */
	struct ts_qopts o = { .max_source_resolution_ms = TS_QRES_AUTO };
	struct ts_qopts r0 = { 0 };
	struct ts_qerr err;
	assert_int_equal(ts_query_instant(db, "sum_over_time(m[1d])", 20,
					  T0 + DAY_MS + 12 * HOUR_MS, &o, &a, &err),
			 0);
	assert_int_equal(ts_query_instant(db, "sum_over_time(m[1d])", 20,
					  T0 + DAY_MS + 12 * HOUR_MS, &r0, &b, &err),
			 0);
	same(a, b, "instant auto");
	ts_qresult_free(a);
	ts_qresult_free(b);
}

static void test_fine_resolution_is_raw(void **state)
{
	(void)state;
	/* Below 5m no tier qualifies: raw, bit for bit. */
	struct ts_qresult *a = range_q("rate(m[1h])", START, END, HOUR_MS, 60000);
	struct ts_qresult *b = range_q("rate(m[1h])", START, END, HOUR_MS, 0);
	same(a, b, "res 1m");
	ts_qresult_free(a);
	ts_qresult_free(b);
}

/* After a reopen (whose background pass may rebuild day 2's tiers: then day 2 reads
 * from tiers too) the answers still equal raw. */
static void test_reopen(void **state)
{
	(void)state;
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	compare("avg_over_time(m[1h])", START, END, HOUR_MS, RES_5M, EXACT);
	assert_int_equal(ts_db_compact(db), 0);
	compare("avg_over_time(m[1h])", START, END, HOUR_MS, RES_5M, EXACT);
	compare("increase(m{k=~\"s[0459]\"}[1h])", START, END, HOUR_MS, RES_5M, WITHIN_1PCT);
}

/* The coarsest tier a 5m read of day d uses (0: raw). */
static int64_t day_res(int d)
{
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "m" };
	struct ts_select_opts so = { .max_resolution_ms = RES_1H };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, &m, 1, T0 + d * DAY_MS, T0 + (d + 1) * DAY_MS - 1, &so,
				      &set, NULL, 0),
			 0);
	int64_t r = ts_series_set_resolution(set);
	ts_series_set_free(set);
	return r;
}

/* A deletion makes the tiers of the partitions it touches stale (read raw meanwhile);
 * the writer rebuilds them by itself soon after, without the deleted samples. */
static void test_tiers_rebuilt_after_delete(void **state)
{
	(void)state;
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(day_res(1), RES_1H);
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" }, { TS_MATCH_EQ, "k", "s2" } };
	int64_t a = T0 + DAY_MS + 3 * HOUR_MS, b = a + 2 * HOUR_MS - 1;
	assert_int_equal(ts_db_delete(db, m, 2, a, b, NULL, NULL, 0), 0);
	assert_int_equal(day_res(1), 0); /* stale: raw answers, without the deleted range */
	for (int i = 0; i < 200 && day_res(1) != RES_1H; i++)
		usleep(50000);
	assert_int_equal(day_res(1), RES_1H);
	/* From the rebuilt tiers: nothing in the deleted range, the rest as raw. */
	compare("count_over_time(m{k!~\"s[49]\"}[1h])", T0 + DAY_MS + HOUR_MS,
		T0 + 2 * DAY_MS - HOUR_MS, HOUR_MS, RES_1H, EXACT);
	struct ts_qresult *r = range_q("count_over_time(m{k=\"s2\"}[1h])", a + HOUR_MS, b + 1,
				       HOUR_MS, RES_1H);
	assert_int_equal(r->n_series, 0);
	ts_qresult_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_over_time_exact),
		cmocka_unit_test(test_rate_within_1pct),
		cmocka_unit_test(test_plain_selectors),
		cmocka_unit_test(test_auto),
		cmocka_unit_test(test_fine_resolution_is_raw),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_tiers_rebuilt_after_delete),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
