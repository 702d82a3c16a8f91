/*
 * Unit tests for the PromQL evaluator (query/query.h) against a small database
 * built in a temp dir: counters with resets, gauges with gaps longer than the
 * lookback, stale markers, classic histogram buckets and series for vector
 * matching. Expected values are derived by hand from Prometheus 2.42's semantics
 * (see the comment at each case); results are compared as canonical text: one line
 * per series "labels value" (sorted unless the order is the point), %.6g values.
 *
 * TS_QUERY_BENCH=1 adds a benchmark: rate(x[5m]) over 1000 series x 1 day of 15 s
 * samples as a 1-minute-step range query, printing ns per sample scanned.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "query/query.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"
#include "testutil.h"

#define T0 1704067200000LL /* 2024-01-01T00:00:00Z, a Monday, a multiple of 1 m */
#define S 15000LL
#define L(n, v)                                                \
	{                                                      \
		n, v, (uint32_t)strlen(n), (uint32_t)strlen(v) \
	}

static struct ts_db *db;
static char dir[4096];

static double stale_nan(void)
{
	return tu_f64(TS_STALE_NAN_BITS);
}

/* Appends one series: samples at T0 + i*S for i in [i0, i1) with value f(i). */
static void put(const struct ts_label *l, uint32_t nl, int i0, int i1, double (*f)(int))
{
	struct ts_sample *s = calloc((size_t)(i1 - i0 + 1), sizeof *s);
	uint32_t n = 0;
	for (int i = i0; i < i1; i++)
		s[n++] = (struct ts_sample){ T0 + i * S, f(i) };
	struct ts_series_in in = { l, nl, s, n };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended, n);
	free(s);
}

static void put1(const struct ts_label *l, uint32_t nl, int64_t t, double v)
{
	struct ts_sample s = { t, v };
	struct ts_series_in in = { l, nl, &s, 1 };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended, 1);
}

static double f_c1(int i)
{
	return 10.0 * i;
}
static double f_c2(int i)
{
	return i < 100 ? 5.0 * i : 5.0 * (i - 100);
}
static double f_id(int i)
{
	return i;
}
static double f_one(int i)
{
	(void)i;
	return 1;
}
static double f_two(int i)
{
	(void)i;
	return 2;
}

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "query");
	struct ts_db_opts o = { .sync = TS_WAL_SYNC_NEVER };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);

	struct ts_label c1[] = { L("__name__", "c_total"), L("job", "a"), L("instance", "1") };
	struct ts_label c2[] = { L("__name__", "c_total"), L("job", "a"), L("instance", "2") };
	put(c1, 3, 0, 241, f_c1);
	put(c2, 3, 0, 241, f_c2);
	/* A gauge with a 10-minute gap: i in [0,40) and [80,241). */
	struct ts_label g[] = { L("__name__", "g"), L("job", "b"), L("instance", "1") };
	put(g, 3, 0, 40, f_id);
	put(g, 3, 80, 241, f_id);
	/* Stale marker at i=20, resumed at i=30. */
	struct ts_label s[] = { L("__name__", "s"), L("job", "a") };
	put(s, 2, 0, 20, f_one);
	put1(s, 2, T0 + 20 * S, stale_nan());
	put(s, 2, 30, 41, f_two);
	/* Histogram buckets at T0+600s. */
	const char *les[] = { "0.1", "0.5", "1", "+Inf" };
	double cnt[] = { 10, 30, 40, 40 };
	for (int i = 0; i < 4; i++) {
		struct ts_label h[] = { L("__name__", "h_bucket"), L("job", "a"), L("le", les[i]) };
		put1(h, 3, T0 + 600000, cnt[i]);
	}
	struct ts_label hb1[] = { L("__name__", "h_bucket"), L("job", "b"), L("le", "1") };
	struct ts_label hb2[] = { L("__name__", "h_bucket"), L("job", "b"), L("le", "+Inf") };
	put1(hb1, 3, T0 + 600000, 5);
	put1(hb2, 3, T0 + 600000, 10);
	/* Vector matching. */
	struct ts_label m1a[] = { L("__name__", "m1"), L("job", "a"), L("instance", "1") };
	struct ts_label m1b[] = { L("__name__", "m1"), L("job", "a"), L("instance", "2") };
	struct ts_label m2[] = { L("__name__", "m2"), L("job", "a") };
	struct ts_label m4[] = { L("__name__", "m4"), L("job", "a"), L("instance", "1") };
	put1(m1a, 3, T0 + 600000, 1);
	put1(m1b, 3, T0 + 600000, 2);
	put1(m2, 2, T0 + 600000, 10);
	put1(m4, 3, T0 + 600000, 7);
	const char *inst[] = { "1", "2", "3" };
	for (int i = 0; i < 3; i++) {
		struct ts_label m3[] = { L("__name__", "m3"), L("instance", inst[i]) };
		put1(m3, 2, T0 + 600000, 5);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
	return 0;
}

/* ---- result text ---- */

static void fmt_labels(const struct ts_qseries *s, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "{");
	for (uint32_t i = 0; i < s->n_labels && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%.*s=\"%.*s\"", i ? "," : "",
				      (int)s->labels[i].name_len, s->labels[i].name,
				      (int)s->labels[i].value_len, s->labels[i].value);
	if (n < cap)
		snprintf(buf + n, cap - n, "}");
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical text of a result; vectors sorted by line unless keep_order. Range
 * points are "seconds-after-T0:value". */
static char *text(const struct ts_qresult *r, int keep_order)
{
	char *out = calloc(1, 65536);
	if (r->type == TS_QV_SCALAR) {
		snprintf(out, 65536, "scalar %.6g", r->scalar.v);
		return out;
	}
	if (r->type == TS_QV_STRING) {
		snprintf(out, 65536, "string %.*s", (int)r->string_len, r->string);
		return out;
	}
	char **lines = calloc(r->n_series + 1, sizeof *lines);
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_qseries *s = &r->series[i];
		lines[i] = calloc(1, 8192);
		fmt_labels(s, lines[i], 8192);
		size_t n = strlen(lines[i]);
		for (size_t k = 0; k < s->n_points; k++) {
			if (r->type == TS_QV_VECTOR)
				n += (size_t)snprintf(lines[i] + n, 8192 - n, " %.6g",
						      s->points[k].v);
			else
				n += (size_t)snprintf(lines[i] + n, 8192 - n, " %lld:%.6g",
						      (long long)((s->points[k].t_ms - T0) / 1000),
						      s->points[k].v);
		}
	}
	if (!keep_order && r->type == TS_QV_VECTOR)
		qsort(lines, r->n_series, sizeof *lines, cmp_line);
	size_t n = 0;
	for (size_t i = 0; i < r->n_series; i++) {
		n += (size_t)snprintf(out + n, 65536 - n, "%s%s", i ? "\n" : "", lines[i]);
		free(lines[i]);
	}
	free(lines);
	return out;
}

static void check_at(const char *q, int64_t t_ms, const char *want, int keep_order, int line)
{
	struct ts_qresult *r = NULL;
	struct ts_qerr err;
	int rc = ts_query_instant(db, q, strlen(q), t_ms, NULL, &r, &err);
	if (rc)
		fail_msg("line %d: %s: rc %d: %s", line, q, rc, err.msg);
	char *got = text(r, keep_order);
	if (strcmp(got, want) != 0)
		fail_msg("line %d: %s\n got:  %s\n want: %s", line, q, got, want);
	free(got);
	ts_qresult_free(r);
}

/* Instant query at T0 + sec seconds. */
#define CHECK(q, sec, want) check_at(q, T0 + (int64_t)((sec)*1000), want, 0, __LINE__)
#define CHECK_ORDER(q, sec, want) check_at(q, T0 + (int64_t)((sec)*1000), want, 1, __LINE__)

static void check_range(const char *q, int64_t s0, int64_t s1, int64_t step_s, const char *want,
			int line)
{
	struct ts_qresult *r = NULL;
	struct ts_qerr err;
	int rc = ts_query_range(db, q, strlen(q), T0 + s0 * 1000, T0 + s1 * 1000, step_s * 1000,
				NULL, &r, &err);
	if (rc)
		fail_msg("line %d: %s: rc %d: %s", line, q, rc, err.msg);
	assert_int_equal(r->type, TS_QV_MATRIX);
	char *got = text(r, 1);
	if (strcmp(got, want) != 0)
		fail_msg("line %d: %s\n got:  %s\n want: %s", line, q, got, want);
	free(got);
	ts_qresult_free(r);
}
#define CHECK_RANGE(q, s0, s1, step, want) check_range(q, s0, s1, step, want, __LINE__)

static void check_err(const char *q, int64_t sec, const struct ts_qopts *o, int want_rc,
		      enum ts_qerr_type want_type, const char *want_msg, int line)
{
	struct ts_qresult *r = NULL;
	struct ts_qerr err;
	int rc = ts_query_instant(db, q, strlen(q), T0 + sec * 1000, o, &r, &err);
	if (rc == 0)
		fail_msg("line %d: %s: expected an error", line, q);
	if ((want_rc && rc != want_rc) || err.type != want_type ||
	    (want_msg && strstr(err.msg, want_msg) == NULL))
		fail_msg("line %d: %s: rc %d type %d msg %s", line, q, rc, (int)err.type, err.msg);
	assert_null(r);
}
#define CHECK_ERR(q, sec, o, rc, type, msg) check_err(q, sec, o, rc, type, msg, __LINE__)

/* ---- cases ---- */

static void test_selectors(void **state)
{
	(void)state;
	CHECK("c_total", 600,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 400\n"
	      "{__name__=\"c_total\",instance=\"2\",job=\"a\"} 200");
	/* Lookback: last sample before the gap is i=39 at 585 s; 585+300 = 885 is still
	 * in the closed window of 2.42, 886 is not. */
	CHECK("g", 885, "{__name__=\"g\",instance=\"1\",job=\"b\"} 39");
	CHECK("g", 886, "");
	/* Staleness: the marker at 300 s hides the series until i=30 (450 s). */
	CHECK("s", 295, "{__name__=\"s\",job=\"a\"} 1");
	CHECK("s", 305, "");
	CHECK("s", 449, "");
	CHECK("s", 450, "{__name__=\"s\",job=\"a\"} 2");
	/* offset and @ */
	CHECK("c_total{instance=\"1\"} offset 1m", 600,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 360");
	CHECK("c_total{instance=\"1\"} @ 1704067300", 3000,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 60");
	CHECK("c_total{instance=\"1\"} @ 1704067300 offset 30s", 3000,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 40");
	/* Raw range vector at an instant: [540, 600] closed, stale marker dropped. */
	CHECK("c_total{instance=\"1\"}[1m]", 600,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 540:360 555:370 570:380 585:390 600:400");
	CHECK("count_over_time(s[10m])", 600, "{job=\"a\"} 31");
	CHECK("count_over_time(c_total{instance=\"1\"}[1m])", 600, "{instance=\"1\",job=\"a\"} 5");
	CHECK("timestamp(c_total{instance=\"1\"})", 610, "{instance=\"1\",job=\"a\"} 1.70407e+09");
	CHECK("timestamp(c_total{instance=\"1\"}) - 1704067200", 610,
	      "{instance=\"1\",job=\"a\"} 600");
	CHECK("nothing_here", 600, "");
}

static void test_rate_family(void **state)
{
	(void)state;
	/* Aligned window [540, 600]: 5 samples, +40 over 60 s. */
	CHECK("rate(c_total{instance=\"1\"}[1m])", 600, "{instance=\"1\",job=\"a\"} 0.666667");
	/* Unaligned [545, 605]: 4 samples 370..400 over 45 s, extrapolated by 10 s and
	 * 5 s (both under 1.1 x 15 s) to 60 s: 40 / 60. */
	CHECK("rate(c_total{instance=\"1\"}[1m])", 605, "{instance=\"1\",job=\"a\"} 0.666667");
	CHECK("increase(c_total{instance=\"1\"}[1m])", 605, "{instance=\"1\",job=\"a\"} 40");
	/* Counter reset inside [1470, 1530]: 490 495 0 5 10 -> 10 - 490 + 495 = 15. */
	CHECK("increase(c_total{instance=\"2\"}[1m])", 1530, "{instance=\"2\",job=\"a\"} 15");
	CHECK("resets(c_total[5m])", 1530,
	      "{instance=\"1\",job=\"a\"} 0\n{instance=\"2\",job=\"a\"} 1");
	/* Window shorter than the sample interval: one sample, no rate. */
	CHECK("rate(c_total{instance=\"1\"}[10s])", 605, "");
	/* Zero point: [−30, 30] has 0 10 20; start extrapolation stops where the counter
	 * would be 0 (the first sample), so 20 over 30 s stays 20: 20/60. */
	CHECK("rate(c_total{instance=\"1\"}[1m])", 30, "{instance=\"1\",job=\"a\"} 0.333333");
	/* delta has no zero point: 2 extrapolated by 7.5 s at the start: 2 x 37.5/30. */
	CHECK("delta(g[1m])", 30, "{instance=\"1\",job=\"b\"} 2.5");
	CHECK("irate(c_total{instance=\"2\"}[1m])", 1500, "{instance=\"2\",job=\"a\"} 0");
	CHECK("irate(c_total{instance=\"2\"}[1m])", 1515, "{instance=\"2\",job=\"a\"} 0.333333");
	CHECK("idelta(c_total{instance=\"2\"}[1m])", 1500, "{instance=\"2\",job=\"a\"} -495");
	CHECK("deriv(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 0.0666667");
	CHECK("predict_linear(g[1m], 60)", 1500, "{instance=\"1\",job=\"b\"} 104");
	CHECK("changes(s[10m])", 600, "{job=\"a\"} 1");
	CHECK("quantile_over_time(0.5, g[1m])", 1500, "{instance=\"1\",job=\"b\"} 98");
	CHECK("avg_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 98");
	CHECK("sum_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 490");
	CHECK("min_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 96");
	CHECK("max_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 100");
	CHECK("stdvar_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 2");
	CHECK("last_over_time(g[1m])", 1500, "{__name__=\"g\",instance=\"1\",job=\"b\"} 100");
	CHECK("present_over_time(g[1m])", 1500, "{instance=\"1\",job=\"b\"} 1");
	CHECK("absent_over_time(g[1m])", 1500, "");
	CHECK("absent_over_time(g[1m])", 800, "{} 1");
	CHECK("absent_over_time(nothing{job=\"z\",x=~\"y\"}[5m])", 600, "{job=\"z\"} 1");
	/* rate over an @-pinned window is the same at every step. */
	CHECK("rate(c_total{instance=\"1\"}[1m] @ 1704067800)", 3000,
	      "{instance=\"1\",job=\"a\"} 0.666667");
}

static void test_subqueries(void **state)
{
	(void)state;
	/* Inner steps are multiples of 1 m in [330, 630]: 360 420 480 540 600. */
	CHECK("count_over_time(c_total{instance=\"1\"}[5m:1m])", 630,
	      "{instance=\"1\",job=\"a\"} 5");
	CHECK("max_over_time(c_total{instance=\"1\"}[5m:1m])", 630,
	      "{instance=\"1\",job=\"a\"} 400");
	CHECK("min_over_time(c_total{instance=\"1\"}[5m:1m])", 630,
	      "{instance=\"1\",job=\"a\"} 240");
	/* [300, 600] includes both ends. */
	CHECK("count_over_time(c_total{instance=\"1\"}[5m:1m])", 600,
	      "{instance=\"1\",job=\"a\"} 6");
	CHECK("count_over_time(c_total{instance=\"1\"}[5m:1m] offset 1m)", 600,
	      "{instance=\"1\",job=\"a\"} 6");
	CHECK("max_over_time(rate(c_total{instance=\"2\"}[1m])[10m:30s])", 1800,
	      "{instance=\"2\",job=\"a\"} 0.333333");
	CHECK("c_total{instance=\"1\"}[2m:1m]", 630,
	      "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 540:360 600:400");
}

static void test_binops(void **state)
{
	(void)state;
	CHECK("m1 * on(job) group_left m2", 600,
	      "{instance=\"1\",job=\"a\"} 10\n{instance=\"2\",job=\"a\"} 20");
	CHECK("m2 * on(job) group_right m1", 600,
	      "{instance=\"1\",job=\"a\"} 10\n{instance=\"2\",job=\"a\"} 20");
	CHECK("m1 + ignoring(instance) group_left m2", 600,
	      "{instance=\"1\",job=\"a\"} 11\n{instance=\"2\",job=\"a\"} 12");
	CHECK_ERR(
		"m1 * on(job) m2", 600, NULL, 0, TS_QERR_EXECUTION,
		"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
	CHECK_ERR(
		"m2 * on(job) m1", 600, NULL, 0, TS_QERR_EXECUTION,
		"found duplicate series for the match group {job=\"a\"} on the right hand-side of the operation: "
		"[{__name__=\"m1\", instance=\"2\", job=\"a\"}, {__name__=\"m1\", instance=\"1\", job=\"a\"}];"
		"many-to-many matching not allowed: matching labels must be unique on one side");
	CHECK("m1 > 1", 600, "{__name__=\"m1\",instance=\"2\",job=\"a\"} 2");
	CHECK("m1 > bool 1", 600, "{instance=\"1\",job=\"a\"} 0\n{instance=\"2\",job=\"a\"} 1");
	CHECK("1 < m1", 600, "{__name__=\"m1\",instance=\"2\",job=\"a\"} 2");
	CHECK("2 - m1", 600, "{instance=\"1\",job=\"a\"} 1\n{instance=\"2\",job=\"a\"} 0");
	/* One-to-one matching keeps only the on() labels, or drops the ignoring() ones. */
	CHECK("m1 < on(instance, job) m4", 600, "{instance=\"1\",job=\"a\"} 1");
	CHECK("m1 != ignoring(__name__) m4", 600, "{instance=\"1\",job=\"a\"} 1");
	CHECK("m1 and on(instance) m3", 600,
	      "{__name__=\"m1\",instance=\"1\",job=\"a\"} 1\n{__name__=\"m1\",instance=\"2\",job=\"a\"} 2");
	CHECK("m1 unless on(instance) m3{instance=\"1\"}", 600,
	      "{__name__=\"m1\",instance=\"2\",job=\"a\"} 2");
	CHECK("m1 or m3", 600,
	      "{__name__=\"m1\",instance=\"1\",job=\"a\"} 1\n{__name__=\"m1\",instance=\"2\",job=\"a\"} 2\n"
	      "{__name__=\"m3\",instance=\"1\"} 5\n{__name__=\"m3\",instance=\"2\"} 5\n{__name__=\"m3\",instance=\"3\"} 5");
	CHECK("m4 or m1", 600,
	      "{__name__=\"m1\",instance=\"2\",job=\"a\"} 2\n{__name__=\"m4\",instance=\"1\",job=\"a\"} 7");
	CHECK("m2 % 3", 600, "{job=\"a\"} 1");
	CHECK("-7 % 3", 600, "scalar -1");
	CHECK("2 ^ 10", 600, "scalar 1024");
	CHECK("m2 atan2 0", 600, "{__name__=\"m2\",job=\"a\"} 1.5708");
	CHECK("1 + 2 * 3", 0, "scalar 7");
	CHECK("-m1", 600, "{instance=\"1\",job=\"a\"} -1\n{instance=\"2\",job=\"a\"} -2");
	CHECK_ERR("-{__name__=~\"m1|m4\"}", 600, NULL, 0, TS_QERR_EXECUTION,
		  "vector cannot contain metrics with the same labelset");
	CHECK_ERR("{__name__=~\"m1|m4\"} * 2", 600, NULL, 0, TS_QERR_EXECUTION,
		  "vector cannot contain metrics with the same labelset");
}

static void test_aggregations(void **state)
{
	(void)state;
	CHECK("sum by (job) (c_total)", 600, "{job=\"a\"} 600");
	CHECK("sum(c_total)", 600, "{} 600");
	CHECK("avg(m1)", 600, "{} 1.5");
	CHECK("stddev(m1)", 600, "{} 0.5");
	CHECK("stdvar(m1)", 600, "{} 0.25");
	CHECK("count(m3)", 600, "{} 3");
	CHECK("min(m1)", 600, "{} 1");
	CHECK("max without (instance) (m1)", 600, "{job=\"a\"} 2");
	CHECK("group by (job) (m1)", 600, "{job=\"a\"} 1");
	CHECK("sum by (__name__) ({__name__=~\"m1|m3\"})", 600,
	      "{__name__=\"m1\"} 3\n{__name__=\"m3\"} 15");
	/* Ties: the first element seen stays on the heap. */
	CHECK("topk(1, m3)", 600, "{__name__=\"m3\",instance=\"1\"} 5");
	CHECK("bottomk(1, m3)", 600, "{__name__=\"m3\",instance=\"1\"} 5");
	CHECK_ORDER(
		"topk(2, m1)", 600,
		"{__name__=\"m1\",instance=\"2\",job=\"a\"} 2\n{__name__=\"m1\",instance=\"1\",job=\"a\"} 1");
	CHECK("topk(0, m1)", 600, "");
	CHECK("quantile(0.5, m1)", 600, "{} 1.5");
	CHECK("quantile(0.25, m3)", 600, "{} 5");
	CHECK("quantile(2, m1)", 600, "{} inf");
	CHECK("quantile(-1, m1)", 600, "{} -inf");
	CHECK("count_values(\"v\", m1)", 600, "{v=\"1\"} 1\n{v=\"2\"} 1");
	CHECK("count_values(\"v\", m1 * 1e21)", 600,
	      "{v=\"1000000000000000000000\"} 1\n{v=\"2000000000000000000000\"} 1");
	CHECK("count_values(\"v\", m1 * 1e-7)", 600, "{v=\"0.0000001\"} 1\n{v=\"0.0000002\"} 1");
	CHECK("hour(g @ 1704067500)", 3000, "{instance=\"1\",job=\"b\"} 0");
	CHECK("count_values without (instance) (\"v\", m1)", 600,
	      "{job=\"a\",v=\"1\"} 1\n{job=\"a\",v=\"2\"} 1");
	CHECK_ERR("topk(scalar(nothing), m1)", 600, NULL, 0, TS_QERR_EXECUTION,
		  "Scalar value NaN overflows int64");
}

static void test_functions(void **state)
{
	(void)state;
	CHECK("histogram_quantile(0.5, h_bucket)", 600, "{job=\"a\"} 0.3\n{job=\"b\"} 1");
	CHECK("histogram_quantile(0.99, h_bucket{job=\"a\"})", 600, "{job=\"a\"} 0.98");
	CHECK("histogram_quantile(0.5, h_bucket{le!=\"+Inf\"})", 600,
	      "{job=\"a\"} nan\n{job=\"b\"} nan");
	CHECK("label_replace(m2, \"foo\", \"$1-x\", \"job\", \"(.*)\")", 600,
	      "{__name__=\"m2\",foo=\"a-x\",job=\"a\"} 10");
	/* Go's template: "$1x" names group "1x", which does not exist: empty. */
	CHECK("label_replace(m2, \"foo\", \"$1x\", \"job\", \"(.*)\")", 600,
	      "{__name__=\"m2\",job=\"a\"} 10");
	CHECK("label_replace(m2, \"foo\", \"${1}x\", \"job\", \"(?P<j>.*)\")", 600,
	      "{__name__=\"m2\",foo=\"ax\",job=\"a\"} 10");
	CHECK("label_replace(m2, \"foo\", \"$j\", \"job\", \"b\")", 600,
	      "{__name__=\"m2\",job=\"a\"} 10");
	CHECK_ERR("label_replace(m2, \"foo\", \"x\", \"job\", \"(\")", 600, NULL, 0,
		  TS_QERR_EXECUTION, "invalid regular expression in label_replace(): (");
	CHECK_ERR("label_replace(m2, \"1foo\", \"x\", \"job\", \".*\")", 600, NULL, 0,
		  TS_QERR_EXECUTION, "invalid destination label name in label_replace(): 1foo");
	CHECK("label_join(m1{instance=\"1\"}, \"foo\", \",\", \"job\", \"instance\")", 600,
	      "{__name__=\"m1\",foo=\"a,1\",instance=\"1\",job=\"a\"} 1");
	CHECK("absent(nothing{job=\"z\"})", 600, "{job=\"z\"} 1");
	CHECK("absent(nothing{job=\"z\",job=\"y\"})", 600, "{} 1");
	CHECK("absent(m1)", 600, "");
	CHECK("scalar(m2)", 600, "scalar 10");
	CHECK("scalar(m1)", 600, "scalar nan");
	CHECK("vector(3)", 600, "{} 3");
	CHECK("time()", 600, "scalar 1.70407e+09");
	CHECK("time() - 1704067800", 600, "scalar 0");
	CHECK("hour(vector(1704067200 + 3600 * 5))", 0, "{} 5");
	CHECK("minute(vector(1704067200 + 61))", 0, "{} 1");
	CHECK("day_of_week()", 0, "{} 1");
	CHECK("days_in_month(vector(1706745600))", 0, "{} 29");
	CHECK("day_of_year(vector(1735603200))", 0, "{} 366");
	CHECK("month()", 0, "{} 1");
	CHECK("year()", 0, "{} 2024");
	CHECK("day_of_month(vector(1706745600))", 0, "{} 1");
	CHECK("round(m1 / 3, 0.1)", 600,
	      "{instance=\"1\",job=\"a\"} 0.3\n{instance=\"2\",job=\"a\"} 0.7");
	CHECK("round(m2 / 4)", 600, "{job=\"a\"} 3");
	CHECK("clamp(m1, 1.2, 1.5)", 600,
	      "{instance=\"1\",job=\"a\"} 1.2\n{instance=\"2\",job=\"a\"} 1.5");
	CHECK("clamp(m1, 2, 1)", 600, "");
	CHECK("clamp_max(m1, 1.5)", 600,
	      "{instance=\"1\",job=\"a\"} 1\n{instance=\"2\",job=\"a\"} 1.5");
	CHECK("clamp_min(m1, 1.5)", 600,
	      "{instance=\"1\",job=\"a\"} 1.5\n{instance=\"2\",job=\"a\"} 2");
	CHECK("sqrt(m2 * 10)", 600, "{job=\"a\"} 10");
	CHECK("ln(m2) / ignoring(job) ln(vector(10))", 600, "{} 1");
	CHECK("log2(m2 - 2)", 600, "{job=\"a\"} 3");
	CHECK("sgn(-m2)", 600, "{job=\"a\"} -1");
	CHECK("abs(-m2)", 600, "{job=\"a\"} 10");
	CHECK("exp(m1 - 1)", 600,
	      "{instance=\"1\",job=\"a\"} 1\n{instance=\"2\",job=\"a\"} 2.71828");
	CHECK("pi()", 0, "scalar 3.14159");
	CHECK("deg(vector(pi()))", 0, "{} 180");
	CHECK_ORDER(
		"sort_desc(c_total)", 600,
		"{__name__=\"c_total\",instance=\"1\",job=\"a\"} 400\n{__name__=\"c_total\",instance=\"2\",job=\"a\"} 200");
	CHECK_ORDER(
		"sort(c_total)", 600,
		"{__name__=\"c_total\",instance=\"2\",job=\"a\"} 200\n{__name__=\"c_total\",instance=\"1\",job=\"a\"} 400");
	CHECK("holt_winters(g[1m], 0.5, 0.5)", 1500, "{instance=\"1\",job=\"b\"} 100");
	CHECK_ERR("holt_winters(g[1m], 1.5, 0.5)", 1500, NULL, 0, TS_QERR_EXECUTION,
		  "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.500000");
	CHECK("\"hello\"", 0, "string hello");
}

static void test_range_queries(void **state)
{
	(void)state;
	CHECK_RANGE("rate(c_total{instance=\"1\"}[1m])", 600, 720, 60,
		    "{instance=\"1\",job=\"a\"} 600:0.666667 660:0.666667 720:0.666667");
	/* The gap: the last sample (585 s) serves until 885 s. */
	CHECK_RANGE(
		"g", 540, 960, 60,
		"{__name__=\"g\",instance=\"1\",job=\"b\"} 540:36 600:39 660:39 720:39 780:39 840:39");
	CHECK_RANGE("c_total", 0, 30, 15,
		    "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 0:0 15:10 30:20\n"
		    "{__name__=\"c_total\",instance=\"2\",job=\"a\"} 0:0 15:5 30:10");
	CHECK_RANGE("1 + 1", 0, 120, 60, "{} 0:2 60:2 120:2");
	CHECK_RANGE("sum(c_total) by (job)", 0, 30, 15, "{job=\"a\"} 0:0 15:15 30:30");
	CHECK_RANGE("c_total{instance=\"1\"} @ 1704067300", 0, 30, 15,
		    "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 0:60 15:60 30:60");
	CHECK_RANGE("c_total{instance=\"1\"} @ end()", 0, 30, 15,
		    "{__name__=\"c_total\",instance=\"1\",job=\"a\"} 0:20 15:20 30:20");
	CHECK_RANGE("s", 270, 480, 30, "{__name__=\"s\",job=\"a\"} 270:1 450:2 480:2");
	CHECK_RANGE("time()", 0, 60, 60, "{} 0:1.70407e+09 60:1.70407e+09");
	CHECK_RANGE("absent(s)", 270, 480, 30, "{} 300:1 330:1 360:1 390:1 420:1");
	CHECK_RANGE("max_over_time(c_total{instance=\"1\"}[2m:1m])", 600, 720, 60,
		    "{instance=\"1\",job=\"a\"} 600:400 660:440 720:480");
	CHECK_RANGE("timestamp(g)", 840, 900, 60, "{instance=\"1\",job=\"b\"} 840:1.70407e+09");
	/* Checked against Prometheus 2.42: predict_linear is not step-invariant, its
	 * window moves with the step over data selected around @. */
	CHECK_RANGE("predict_linear(g[1m] @ 1704068700, 60)", 1500, 1620, 60,
		    "{instance=\"1\",job=\"b\"} 1500:104");
	CHECK_RANGE("max_over_time(g[5m:1m] @ 1704067800)", 1500, 1620, 60,
		    "{instance=\"1\",job=\"b\"} 1500:39 1560:39 1620:39");
	/* Range queries of a range vector are refused. */
	struct ts_qresult *r = NULL;
	struct ts_qerr err;
	const char *q = "c_total[5m]";
	assert_int_equal(ts_query_range(db, q, strlen(q), T0, T0 + 60000, 15000, NULL, &r, &err),
			 TS_EINVALID);
	assert_int_equal(err.type, TS_QERR_BAD_DATA);
	assert_string_equal(
		err.msg,
		"invalid expression type \"range vector\" for range query, must be Scalar or instant Vector");
	q = "c_total";
	assert_int_equal(ts_query_range(db, q, strlen(q), T0, T0 + 60000, 0, NULL, &r, &err),
			 TS_EINVALID);
	struct ts_qopts o = { .max_points = 10 };
	assert_int_equal(ts_query_range(db, q, strlen(q), T0, T0 + 600000, 15000, &o, &r, &err),
			 TS_ELIMIT);
	assert_null(r);
}

/* Fails the n-th allocation from then on (n = 1, 1 + stride, ... < max) while q runs
 * (instant at t0 when step_ms is 0, else over [t0, t1]): an error, never a crash or a
 * leak. */
static void alloc_failures(const char *q, int64_t t0, int64_t t1, int64_t step_ms,
			   unsigned long max, unsigned long stride)
{
	for (unsigned long n = 1; n < max; n += stride) {
		struct ts_qresult *r = NULL;
		struct ts_qerr err;
		ts_mem_fail_at(n, 1);
		int rc = step_ms ? ts_query_range(db, q, strlen(q), t0, t1, step_ms, NULL, &r, &err)
				 : ts_query_instant(db, q, strlen(q), t0, NULL, &r, &err);
		int failed = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (rc == 0)
			ts_qresult_free(r);
		else if (failed)
			assert_true(rc == -ENOMEM || err.type != TS_QERR_NONE);
	}
}

static void test_errors_and_limits(void **state)
{
	(void)state;
	CHECK_ERR("sum(", 0, NULL, TS_EINVALID, TS_QERR_BAD_DATA, "parse error");
	struct ts_qopts o = { .max_samples = 10 };
	CHECK_ERR("c_total[1h]", 3600, &o, TS_ELIMIT, TS_QERR_EXECUTION,
		  "query processing would load too many samples into memory in query execution");
	CHECK_ERR("rate(c_total[1h])", 3600, &o, TS_ELIMIT, TS_QERR_EXECUTION, "too many samples");
	int canceled = 1;
	struct ts_qopts oc = { .canceled = &canceled };
	CHECK_ERR("c_total", 600, &oc, -ECANCELED, TS_QERR_CANCELED, "canceled");
	/* Allocation failures anywhere end in an error, never a crash or a leak. */
	const char *q =
		"sum by (job) (rate(c_total[1m])) * on(job) group_left m2 or label_replace(m1, \"x\", \"$1\", \"job\", \"(.*)\")";
	alloc_failures(q, T0 + 600000, T0 + 600000, 0, 400, 7);
}

extern size_t ts__qpar_min_series;
extern unsigned ts__qpar_max_helpers;
unsigned ts__qpar_helpers(void);

/* Runs q sequentially and spread over helper threads; the answers must be the same to
 * the bit (labels, order, times, value bits) or the same error. */
static void same_par(const char *q, int64_t s0, int64_t s1, int64_t step_s,
		     const struct ts_qopts *o)
{
	struct ts_qresult *r[2] = { NULL, NULL };
	struct ts_qerr err[2];
	int rc[2];
	size_t saved_min = ts__qpar_min_series;
	for (int k = 0; k < 2; k++) {
		ts__qpar_max_helpers = k ? ~0u : 0;
		ts__qpar_min_series = 1;
		memset(&err[k], 0, sizeof err[k]);
		rc[k] = ts_query_range(db, q, strlen(q), T0 + s0 * 1000, T0 + s1 * 1000,
				       step_s * 1000, o, &r[k], &err[k]);
	}
	ts__qpar_max_helpers = ~0u;
	ts__qpar_min_series = saved_min;
	if (rc[0] != rc[1])
		fail_msg("%s: rc %d sequential, %d parallel (%s / %s)", q, rc[0], rc[1], err[0].msg,
			 err[1].msg);
	if (rc[0]) {
		assert_int_equal(err[0].type, err[1].type);
		assert_string_equal(err[0].msg, err[1].msg);
		return;
	}
	assert_int_equal(r[0]->n_series, r[1]->n_series);
	assert_int_equal(r[0]->samples_scanned, r[1]->samples_scanned);
	for (size_t i = 0; i < r[0]->n_series; i++) {
		const struct ts_qseries *a = &r[0]->series[i], *b = &r[1]->series[i];
		char la[1024], lb[1024];
		fmt_labels(a, la, sizeof la);
		fmt_labels(b, lb, sizeof lb);
		if (strcmp(la, lb) != 0)
			fail_msg("%s: series %zu: %s sequential, %s parallel", q, i, la, lb);
		assert_int_equal(a->n_points, b->n_points);
		for (size_t k = 0; k < a->n_points; k++)
			if (a->points[k].t_ms != b->points[k].t_ms ||
			    tu_bits(a->points[k].v) != tu_bits(b->points[k].v))
				fail_msg("%s: %s point %zu differs", q, la, k);
	}
	ts_qresult_free(r[0]);
	ts_qresult_free(r[1]);
}

/* Selectors and range functions over many series, spread over helper threads
 * (query/qpar.c), give the sequential answers: part of the series in cold blocks and part in memory, counter
 * resets, NaN, stale markers, series that start and end inside the range. */
static void test_parallel_same_answers(void **state)
{
	(void)state;
	if (ts__qpar_helpers() == 0)
		skip(); /* one CPU: nothing is spread */
	int64_t b0 = T0 + 86400000LL * 20;
	struct ts_sample *sm = calloc(400, sizeof *sm);
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < 300; k++) {
			char inst[16], job[8];
			snprintf(inst, sizeof inst, "i%03d", k);
			snprintf(job, sizeof job, "j%d", k % 7);
			struct ts_label l[] = { L("__name__", "par_total"), L("instance", inst),
						L("job", job) };
			uint32_t n = 0;
			int i0 = pass ? 200 : (k % 11) * 7, i1 = pass ? 400 - (k % 13) * 5 : 200;
			for (int i = i0; i < i1; i++) {
				double v = (double)((i * (k + 3)) % (97 + k)) + (double)i * 0.25;
				if (i % 53 == k % 53)
					v = NAN;
				if (i == 300 && k % 17 == 0)
					v = stale_nan();
				sm[n++] = (struct ts_sample){ b0 + i * S + (k % 5) * 1000, v };
			}
			struct ts_series_in in = { l, 3, sm, n };
			struct ts_append_result res;
			assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
		}
		if (pass == 0) {
			/* the first half on disk, as cold blocks: read through the set's
			 * shared transaction (ts_series_set_share) */
			assert_int_equal(ts_db_checkpoint(db), 0);
			assert_int_equal(ts_db_compact(db), 0);
		}
	}
	free(sm);
	int64_t s0 = (b0 - T0) / 1000, s1 = s0 + 400 * 15;
	static const char *const qs[] = {
		"rate(par_total[5m])",
		"increase(par_total[2m])",
		"irate(par_total[1m])",
		"idelta(par_total[1m])",
		"delta(par_total[3m])",
		"deriv(par_total[5m])",
		"predict_linear(par_total[5m], 60)",
		"holt_winters(par_total[5m], 0.3, 0.6)",
		"resets(par_total[10m])",
		"changes(par_total[10m])",
		"avg_over_time(par_total[5m])",
		"sum_over_time(par_total[5m])",
		"min_over_time(par_total[5m])",
		"max_over_time(par_total[5m])",
		"count_over_time(par_total[5m])",
		"stddev_over_time(par_total[5m])",
		"stdvar_over_time(par_total[5m])",
		"last_over_time(par_total[5m])",
		"present_over_time(par_total[5m])",
		"quantile_over_time(0.9, par_total[5m])",
		"absent_over_time(par_total[1m])",
		"rate(par_total[5m] offset 3m)",
		"max_over_time(par_total[5m] @ end())",
		"sum by (job) (rate(par_total[5m]))",
		"avg by (job) (avg_over_time(par_total{job=~\"j[1-4]\"}[2m]))",
		"topk(3, max_over_time(par_total[10m]))",
		"holt_winters(par_total[5m], 2, 0.5)",
		"par_total",
		"par_total offset 2m",
		"par_total @ end()",
		"timestamp(par_total)",
		"1 - par_total / on(instance, job) par_total",
		"count by (job) ({__name__=~\"par_.*\"})",
		"par_total > 50",
		"sum by (job) (par_total)",
	};
	for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
		same_par(qs[i], s0, s1, 60, NULL);
		same_par(qs[i], s0 + 300, s1 - 300, 15, NULL);
		same_par(qs[i], s0 + 3000, s0 + 3000, 60, NULL); /* one step: an instant */
	}
	/* the sample limit: the same error whoever meets it */
	struct ts_qopts o = { .max_samples = 5000 };
	same_par("rate(par_total[5m])", s0, s1, 15, &o);
	same_par("sum_over_time(par_total[1h])", s0, s1, 60, &o);
	same_par("par_total", s0, s1, 15, &o);
	/* allocation failures on any thread end in an error, never a crash or a leak */
	size_t saved_min = ts__qpar_min_series;
	ts__qpar_min_series = 1;
	static const char *const fq[] = { "rate(par_total[5m])", "par_total" };
	for (int k = 0; k < 2; k++)
		alloc_failures(fq[k], b0, b0 + 3600000, 60000, 3000, 37);
	ts__qpar_min_series = saved_min;
}

static void bench(void **state)
{
	(void)state;
	if (!getenv("TS_QUERY_BENCH"))
		skip();
	const int n_series = 1000, n_samples = 5760;
	struct ts_sample *s = calloc(n_samples, sizeof *s);
	int64_t b0 = T0 + 86400000LL * 10;
	for (int k = 0; k < n_series; k++) {
		char inst[16];
		snprintf(inst, sizeof inst, "%d", k);
		struct ts_label l[] = { L("__name__", "bench_total"), L("instance", inst) };
		for (int i = 0; i < n_samples; i++)
			s[i] = (struct ts_sample){ b0 + i * S, (double)(i * (k + 1) % 100000) };
		struct ts_series_in in = { l, 2, s, n_samples };
		struct ts_append_result res;
		assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	}
	free(s);
	assert_int_equal(ts_db_checkpoint(db), 0);
	/* The floor: decoding every sample through the engine's iterators. */
	{
		struct timespec a, b;
		struct ts_series_set *set;
		struct ts_matcher m = { TS_MATCH_EQ, "__name__", "bench_total" };
		uint64_t n = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(
			ts_db_select(db, &m, 1, b0 - 300000, b0 + 86400000LL, NULL, &set, NULL, 0),
			0);
		for (size_t i = 0; i < ts_series_set_len(set); i++) {
			struct ts_iter *it;
			assert_int_equal(ts_iter_new(set, i, &it), 0);
			while (ts_iter_next(it) == 1)
				n++;
			ts_iter_free(it);
		}
		ts_series_set_free(set);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		printf("bench: select + iterate: %llu samples, %.1f ms, %.2f ns/sample\n",
		       (unsigned long long)n, ns / 1e6, ns / (double)n);
	}
	const char *q = "rate(bench_total[5m])";
	for (int rep = 0; rep < 2; rep++) {
		struct timespec a, b;
		struct ts_qresult *r;
		struct ts_qerr err;
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(ts_query_range(db, q, strlen(q), b0, b0 + 86400000LL - S, 60000,
						NULL, &r, &err),
				 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		printf("bench: %s: %zu series, %llu samples scanned, %.1f ms, %.2f ns/sample\n", q,
		       r->n_series, (unsigned long long)r->samples_scanned, ns / 1e6,
		       ns / (double)r->samples_scanned);
		ts_qresult_free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_rate_family),
		cmocka_unit_test(test_subqueries),
		cmocka_unit_test(test_binops),
		cmocka_unit_test(test_aggregations),
		cmocka_unit_test(test_functions),
		cmocka_unit_test(test_range_queries),
		cmocka_unit_test(test_errors_and_limits),
		cmocka_unit_test(test_parallel_same_answers),
		cmocka_unit_test(bench),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
