/*
 * test_retention.c - retention per resolution (ts_db_opts.retention_ms, retention_5m_ms,
 * retention_1h_ms; tsdb/compact.c, format.h "expired").
 *
 * Three closed day partitions ending 8, 7 and 6 days ago (D0, D1, D2), tiers built.
 * Reopened with raw retention reaching D0 and D1, 5-minute retention reaching D0, 1-hour
 * kept for good, the start-up pass must leave: D0 with its 1h rows only, D1 with its 5m
 * and 1h rows, D2 whole. Then:
 * - queries at max_source_resolution 0 ("raw") answer from the finest tier left where raw
 *   samples are gone: sum/count/max_over_time on windows aligned to the tier equal what
 *   raw answered before retention (1h windows over D0, 5m-aligned over D1), D2 stays
 *   bit-exact;
 * - series with nothing but tier rows in range still have data (ts_series_set_has_data);
 * - appends older than the raw retention are rejected as too old;
 * - the deleted kinds' files shrink, and a reopen changes nothing;
 * - a kill -9 at each retention failpoint leaves a directory that recovers to the same
 *   answers;
 * - tombstones after retention hide the tier rows they touch;
 * - once every resolution's retention passed a partition, it goes whole.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "query/query.h"
#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/format.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)
#define STEP 15000
#define OFF 7000
#define N_SER 6

static char dir[4096];
static int64_t T0; /* start of D0 */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double value(int k, int64_t j)
{
	if (k % 2 == 0) /* counters */
		return (double)(j * (k + 1)) + 20.0 * (1 - cos((double)j / 100.0));
	return round(100.0 * (50.0 + 10.0 * sin((double)(j + k * 37) / 120.0))) / 100.0;
}

static struct ts_db *open_with(int64_t raw, int64_t r5m, int64_t r1h)
{
	struct ts_db *db;
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000;
	o.checkpoint_interval_ms = 3600000;
	o.retention_ms = raw;
	o.retention_5m_ms = r5m;
	o.retention_1h_ms = r1h;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	return db;
}

/* Raw retention reaching D0 and D1 (their ends are 8 and 7 days ago), 5m reaching D0. */
static struct ts_db *open_retained(void)
{
	int64_t now = now_ms();
	return open_with(now - (T0 + 2 * DAY_MS) - HOUR_MS, now - (T0 + DAY_MS) - HOUR_MS,
			 TS_RETENTION_FOREVER);
}

static void write_base(void)
{
	struct ts_db *db = open_with(0, 0, 0);
	int64_t n_j = 3 * DAY_MS / STEP;
	struct ts_sample *s = calloc((size_t)n_j, sizeof *s);
	assert_non_null(s);
	for (int k = 0; k < N_SER; k++) {
		char name[8];
		snprintf(name, sizeof name, "s%d", k);
		struct ts_label l[2] = { { "__name__", "m", 8, 1 },
					 { "k", name, 1, (uint32_t)strlen(name) } };
		for (int64_t j = 0; j < n_j; j++)
			s[j] = (struct ts_sample){ T0 + OFF + j * STEP, value(k, j) };
		struct ts_series_in in = { l, 2, s, (uint32_t)n_j };
		assert_int_equal(ts_db_append(db, &in, 1, NULL, NULL), 0);
	}
	free(s);
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(ts_db_close(db), 0);
}

static struct ts_qresult *q_range(struct ts_db *db, const char *q, int64_t start, int64_t end,
				  int64_t step)
{
	struct ts_qopts o = { .max_points = 20000 }; /* raw: max_source_resolution 0 */
	struct ts_qresult *r = NULL;
	struct ts_qerr err = { 0 };
	int rc = ts_query_range(db, q, strlen(q), start, end, step, &o, &r, &err);
	if (rc)
		fail_msg("%s: %s", q, err.msg);
	return r;
}

static void expect_close(const struct ts_qresult *a, const struct ts_qresult *b, double rtol,
			 const char *what)
{
	if (a->n_series != b->n_series)
		fail_msg("%s: %zu series, before %zu", what, a->n_series, b->n_series);
	for (size_t i = 0; i < a->n_series; i++) {
		if (a->series[i].n_points != b->series[i].n_points)
			fail_msg("%s: series %zu has %zu points, before %zu", what, i,
				 a->series[i].n_points, b->series[i].n_points);
		for (size_t k = 0; k < a->series[i].n_points; k++) {
			double x = a->series[i].points[k].v, y = b->series[i].points[k].v;
			assert_int_equal(a->series[i].points[k].t_ms, b->series[i].points[k].t_ms);
			if (rtol == 0 ? memcmp(&x, &y, 8) != 0 : fabs(x - y) > rtol * fabs(y))
				fail_msg("%s: series %zu at %lld: %.17g, before %.17g", what, i,
					 (long long)a->series[i].points[k].t_ms, x, y);
		}
	}
}

/* The answers checked before and after retention. */
struct answers {
	struct ts_qresult *d0[3], *d1[3], *d2;
};

static const char *const fns[3] = { "sum_over_time(m[1h])", "count_over_time(m[1h])",
				    "max_over_time(m[1h])" };
static const char *const fns20[3] = { "sum_over_time(m[20m])", "count_over_time(m[20m])",
				      "max_over_time(m[20m])" };

static void answers_get(struct ts_db *db, struct answers *a)
{
	for (int f = 0; f < 3; f++) {
		a->d0[f] = q_range(db, fns[f], T0 + HOUR_MS, T0 + DAY_MS - HOUR_MS, HOUR_MS);
		a->d1[f] = q_range(db, fns20[f], T0 + DAY_MS + HOUR_MS, T0 + 2 * DAY_MS - HOUR_MS,
				   HOUR_MS / 3);
	}
	a->d2 = q_range(db, "rate(m[5m])", T0 + 2 * DAY_MS + HOUR_MS, T0 + 3 * DAY_MS - HOUR_MS,
			60000);
}

static void answers_free(struct answers *a)
{
	for (int f = 0; f < 3; f++) {
		ts_qresult_free(a->d0[f]);
		ts_qresult_free(a->d1[f]);
	}
	ts_qresult_free(a->d2);
}

static void answers_same(const struct answers *now, const struct answers *before)
{
	for (int f = 0; f < 3; f++) {
		expect_close(now->d0[f], before->d0[f], 1e-9, fns[f]);
		expect_close(now->d1[f], before->d1[f], 1e-9, fns20[f]);
	}
	expect_close(now->d2, before->d2, 0, "D2 raw");
}

static struct answers before;

/* Bytes of the partition directory of day d. */
static long long part_bytes(int d)
{
	char p[4400];
	snprintf(p, sizeof p, "%s/raw/%lld_%lld/data.mdb", dir, (long long)(T0 + d * DAY_MS),
		 (long long)(T0 + (d + 1) * DAY_MS));
	struct stat st;
	if (stat(p, &st) != 0)
		return -1;
	return (long long)st.st_blocks * 512;
}

static int setup(void **state)
{
	(void)state;
	T0 = now_ms() / DAY_MS * DAY_MS - 9 * DAY_MS;
	tu_mkdtemp(dir, sizeof dir, "ret");
	write_base();
	struct ts_db *db = open_with(0, 0, 0);
	answers_get(db, &before);
	assert_int_equal(ts_db_close(db), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	answers_free(&before);
	if (!getenv("TS_KEEP_DIR")) /* to look at it with tsdbctl */
		tu_rmtree(dir);
	return 0;
}

static void check_retained(struct ts_db *db)
{
	struct answers a;
	answers_get(db, &a);
	answers_same(&a, &before);
	answers_free(&a);
	/* Every series has data in D0, though only 1h rows are left there. */
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "m" };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, &m, 1, T0, T0 + DAY_MS - 1, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), N_SER);
	for (size_t i = 0; i < N_SER; i++)
		assert_int_equal(ts_series_set_has_data(set, i), 1);
	ts_series_set_free(set);
}

static void test_startup_pass(void **state)
{
	(void)state;
	long long b0 = part_bytes(0), b1 = part_bytes(1), b2 = part_bytes(2);
	struct ts_db *db = open_retained();
	check_retained(db);
	/* Too old for raw retention: rejected. */
	struct ts_label l[2] = { { "__name__", "m", 8, 1 }, { "k", "s0", 1, 2 } };
	struct ts_sample smp = { T0 + DAY_MS + 3 * HOUR_MS + 1, 1 };
	struct ts_series_in in = { l, 2, &smp, 1 };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_too_old, 1);
	assert_int_equal(ts_db_close(db), 0);
	long long a0 = part_bytes(0), a1 = part_bytes(1), a2 = part_bytes(2);
	print_message("partition bytes before/after: D0 %lld/%lld D1 %lld/%lld D2 %lld/%lld\n", b0,
		      a0, b1, a1, b2, a2);
	/* D0 keeps 1h rows only; D1 5m and 1h rows, about as big as raw at this scrape
	 * interval and series count. */
	assert_true(a0 < b0 / 2 && a1 < b1);
	assert_true(a2 == b2);
	/* A reopen has nothing left to do and answers the same. */
	db = open_retained();
	check_retained(db);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(part_bytes(0), a0);
}

static void test_kill9(void **state)
{
	(void)state;
	static const char *const points[] = { "retention.before_drop:1", "retention.dropped:1",
					      "retention.before_release:1", "retention.dropped:2" };
	for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
		tu_rmtree(dir);
		tu_mkdtemp(dir, sizeof dir, "ret");
		write_base();
		long long before_bytes[2] = { part_bytes(0), part_bytes(1) };
		fflush(stdout);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			setenv("TS_FAILPOINT", points[i], 1);
			struct ts_db *c = open_retained();
			ts_db_close(c);
			_exit(3); /* the point was not reached */
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
			fail_msg("%s: not reached (status %d)", points[i], st);
		/* Recovery as it was left (retention off), then with retention. */
		struct ts_db *db = open_with(0, 0, 0);
		check_retained(db);
		assert_int_equal(ts_db_close(db), 0);
		db = open_retained();
		check_retained(db);
		assert_int_equal(ts_db_close(db), 0);
		/* Whatever the kill interrupted, the files were rewritten small. */
		if (part_bytes(0) >= before_bytes[0] / 2 || part_bytes(1) >= before_bytes[1])
			fail_msg("%s: D0 %lld, D1 %lld bytes after", points[i], part_bytes(0),
				 part_bytes(1));
	}
}

static void test_tombstone_after(void **state)
{
	(void)state;
	struct ts_db *db = open_retained();
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" }, { TS_MATCH_EQ, "k", "s1" } };
	/* Three hours of D0 (1h rows only there now) and of D1 (5m rows). */
	int64_t d0 = T0 + 5 * HOUR_MS, d1 = T0 + DAY_MS + 5 * HOUR_MS;
	assert_int_equal(ts_db_delete(db, m, 2, d0, d0 + 3 * HOUR_MS - 1, NULL, NULL, 0), 0);
	assert_int_equal(ts_db_delete(db, m, 2, d1, d1 + 3 * HOUR_MS - 1, NULL, NULL, 0), 0);
	const char *q = "count_over_time(m{k=\"s1\"}[1h])";
	struct ts_qresult *r = q_range(db, q, T0 + HOUR_MS, T0 + 2 * DAY_MS - HOUR_MS, HOUR_MS);
	assert_int_equal(r->n_series, 1);
	for (size_t k = 0; k < r->series[0].n_points; k++) {
		int64_t t = r->series[0].points[k].t_ms;
		int hit = (t > d0 && t <= d0 + 3 * HOUR_MS) || (t > d1 && t <= d1 + 3 * HOUR_MS);
		assert_false(hit);
	}
	assert_int_equal(r->series[0].n_points, 47 - 6); /* steps 1h..47h, 3 lost per range */
	ts_qresult_free(r);
	assert_int_equal(ts_db_close(db), 0);
}

static void test_whole_partition_goes(void **state)
{
	(void)state;
	int64_t now = now_ms();
	int64_t r = now - (T0 + DAY_MS) - HOUR_MS; /* reaches D0 only */
	struct ts_db *db = open_with(r, r, r);
	assert_int_equal(part_bytes(0), -1);
	struct ts_qresult *q = q_range(db, "count_over_time(m[1h])", T0 + HOUR_MS,
				       T0 + DAY_MS - HOUR_MS, HOUR_MS);
	assert_int_equal(q->n_series, 0);
	ts_qresult_free(q);
	assert_true(part_bytes(2) > 0);
	assert_int_equal(ts_db_close(db), 0);
}

static int has_str(const struct ts_strlist *l, const char *v)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], v) == 0)
			return 1;
	return 0;
}

/* A series whose samples were all in partitions retention removed leaves the index:
 * label values and names it alone had go, selections and stats no longer see it, a
 * reopen does not load it, and a new sample with its labels makes a new series. */
static void test_series_gc(void **state)
{
	(void)state;
	tu_rmtree(dir);
	tu_mkdtemp(dir, sizeof dir, "ret");
	write_base();
	struct ts_db *db = open_with(0, 0, 0);
	struct ts_label l[3] = { { "__name__", "m", 8, 1 },
				 { "k", "gone", 1, 4 },
				 { "only_gone", "x", 9, 1 } };
	struct ts_sample smp[2] = { { T0 + HOUR_MS, 1 }, { T0 + 2 * HOUR_MS, 2 } };
	struct ts_series_in in = { l, 3, smp, 2 };
	assert_int_equal(ts_db_append(db, &in, 1, NULL, NULL), 0);
	struct ts_db_stats st;
	ts_db_stats(db, &st);
	assert_int_equal(st.n_series, N_SER + 1);
	assert_int_equal(ts_db_close(db), 0);

	/* Everything of D0 goes (D1 and D2 stay). */
	int64_t r = now_ms() - (T0 + DAY_MS) - HOUR_MS;
	for (int round = 0; round < 2; round++) {
		db = open_with(r, r, r);
		ts_db_stats(db, &st);
		assert_int_equal(st.n_series, N_SER);
		struct ts_strlist vals = { 0 }, names = { 0 };
		assert_int_equal(
			ts_db_label_values(db, "k", NULL, 0, INT64_MIN, INT64_MAX, &vals, NULL, 0),
			0);
		assert_int_equal(vals.n, N_SER);
		assert_false(has_str(&vals, "gone"));
		assert_int_equal(
			ts_db_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &names, NULL, 0), 0);
		assert_false(has_str(&names, "only_gone"));
		assert_true(has_str(&names, "k"));
		ts_strlist_free(&vals);
		ts_strlist_free(&names);
		struct ts_matcher m = { TS_MATCH_EQ, "__name__", "m" };
		struct ts_series_set *set;
		assert_int_equal(ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0),
				 0);
		assert_int_equal(ts_series_set_len(set), N_SER);
		ts_series_set_free(set);
		assert_int_equal(ts_db_close(db), 0);
	}
	/* The same labels again, inside retention: a new series. */
	db = open_with(r, r, r);
	smp[0].t_ms = T0 + 2 * DAY_MS + HOUR_MS;
	in.n_samples = 1;
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended, 1);
	ts_db_stats(db, &st);
	assert_int_equal(st.n_series, N_SER + 1);
	struct ts_matcher mg = { TS_MATCH_EQ, "k", "gone" };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, &mg, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), 1);
	assert_true(ts_series_set_id(set, 0) > N_SER + 1);
	ts_series_set_free(set);
	assert_int_equal(ts_db_close(db), 0);
	db = open_with(r, r, r);
	assert_int_equal(ts_db_select(db, &mg, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), 1);
	ts_series_set_free(set);
	assert_int_equal(ts_db_close(db), 0);
}

/* Series count_over_time finds in day d (a count per series label k/job). */
static int day_count(struct ts_db *db, int d, const char *sel)
{
	char q[160];
	snprintf(q, sizeof q, "count(count_over_time(%s[1d]))", sel);
	struct ts_qopts o = { 0 };
	struct ts_qresult *r = NULL;
	struct ts_qerr err = { 0 };
	if (ts_query_instant(db, q, strlen(q), T0 + (d + 1) * DAY_MS - 1, &o, &r, &err))
		fail_msg("%s: %s", q, err.msg);
	int n = r->type == TS_QV_VECTOR && r->n_series ? (int)r->series[0].points[0].v : 0;
	ts_qresult_free(r);
	return n;
}

/* Retention per selector: first match wins; a short rule deletes its series from the
 * partitions its horizon passed, a long one keeps a partition the database's retention
 * would remove (the other series deleted there); without rules the partition goes. */
static void test_rules(void **state)
{
	(void)state;
	tu_rmtree(dir);
	tu_mkdtemp(dir, sizeof dir, "ret");
	write_base();
	struct ts_db *db = open_with(0, 0, 0);
	static const char *const dbg[2] = { "s0", "x" };
	for (int k = 0; k < 2; k++) {
		struct ts_label l[3] = { { "__name__", "m", 8, 1 },
					 { "job", "debug", 3, 5 },
					 { "k", dbg[k], 1, (uint32_t)strlen(dbg[k]) } };
		struct ts_sample smp[3] = { { T0 + HOUR_MS, 1 },
					    { T0 + DAY_MS + HOUR_MS, 2 },
					    { T0 + 2 * DAY_MS + HOUR_MS, 3 } };
		struct ts_series_in in = { l, 3, smp, 3 };
		assert_int_equal(ts_db_append(db, &in, 1, NULL, NULL), 0);
	}
	assert_int_equal(ts_db_close(db), 0);

	int64_t now = now_ms();
	struct ts_matcher m_dbg = { TS_MATCH_EQ, "job", "debug" };
	struct ts_matcher m_s0 = { TS_MATCH_EQ, "k", "s0" };
	struct ts_retention_rule rules[2] = {
		{ &m_dbg, 1, now - (T0 + 2 * DAY_MS) - HOUR_MS }, /* passes D0 and D1 */
		{ &m_s0, 1, 400 * DAY_MS },
	};
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000;
	o.checkpoint_interval_ms = 3600000;
	o.retention_ms = o.retention_5m_ms = o.retention_1h_ms = now - (T0 + DAY_MS) - HOUR_MS;
	o.retention_rules = rules;
	o.n_retention_rules = 2;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ts_db_open(dir, &o, &db), 0);
		/* D0: past the database's retention, kept for s0 alone (the debug series
		 * with k="s0" matched the debug rule first). */
		assert_true(part_bytes(0) > 0);
		assert_int_equal(day_count(db, 0, "m"), 1);
		assert_int_equal(day_count(db, 0, "m{k=\"s0\",job=\"\"}"), 1);
		/* D1: only the debug rule's horizon passed it. */
		assert_int_equal(day_count(db, 1, "m"), N_SER);
		assert_int_equal(day_count(db, 1, "m{job=\"debug\"}"), 0);
		/* D2: everything. */
		assert_int_equal(day_count(db, 2, "m"), N_SER + 2);
		assert_int_equal(ts_db_close(db), 0);
	}
	/* Rules gone: D0 goes as the database's retention says. */
	o.n_retention_rules = 0;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(part_bytes(0), -1);
	assert_int_equal(day_count(db, 1, "m"), N_SER);
	/* Replacing the rules at run time checks them; a bad one keeps the old ones. */
	struct ts_matcher bad = { TS_MATCH_RE, "k", "(" };
	struct ts_retention_rule br = { &bad, 1, DAY_MS };
	char msg[128] = "";
	assert_int_equal(ts_db_set_retention_rules(db, &br, 1, msg, sizeof msg), TS_EINVALID);
	assert_true(msg[0] != 0);
	br.m = &m_dbg;
	br.retention_ms = 0;
	assert_int_equal(ts_db_set_retention_rules(db, &br, 1, NULL, 0), TS_EINVALID);
	assert_int_equal(ts_db_set_retention_rules(db, rules, 2, NULL, 0), 0);
	assert_int_equal(ts_db_close(db), 0);
}

/* A scrape interval of 60 s puts 5 samples in a 5-minute window: no 5m tier (it would
 * cost as much as the raw samples), the 1h tier alone; a 5m read falls back to raw there. */
static void test_sparse_5m(void **state)
{
	(void)state;
	tu_rmtree(dir);
	tu_mkdtemp(dir, sizeof dir, "ret");
	struct ts_db *db = open_with(0, 0, 0);
	int64_t n = DAY_MS / 60000;
	struct ts_sample *s = calloc((size_t)n, sizeof *s);
	assert_non_null(s);
	for (int k = 0; k < 3; k++) {
		char name[8];
		snprintf(name, sizeof name, "s%d", k);
		struct ts_label l[2] = { { "__name__", "m", 8, 1 },
					 { "k", name, 1, (uint32_t)strlen(name) } };
		for (int64_t j = 0; j < n; j++)
			s[j] = (struct ts_sample){ T0 + OFF + j * 60000, value(k, j) };
		struct ts_series_in in = { l, 2, s, (uint32_t)n };
		assert_int_equal(ts_db_append(db, &in, 1, NULL, NULL), 0);
	}
	free(s);
	assert_int_equal(ts_db_close(db), 0); /* flushed: the day is stored, closed */
	db = open_with(0, 0, 0);
	struct ts_downsample_stats st;
	assert_int_equal(ts_db_downsample(db, NULL, NULL, &st), 0);
	assert_int_equal(st.rows[0], 0);
	assert_int_equal(st.bytes[0], 0);
	if (st.rows[1] != 3 * 24)
		fail_msg("1h rows %llu, built %llu current %llu parts %llu skipped %llu",
			 (unsigned long long)st.rows[1], (unsigned long long)st.n_built,
			 (unsigned long long)st.n_current, (unsigned long long)st.n_parts,
			 (unsigned long long)st.n_skipped);
	struct ts_qopts o5 = { .max_source_resolution_ms = 300000 }, o0 = { 0 };
	struct ts_qresult *a, *b;
	struct ts_qerr err;
	const char *q = "sum_over_time(m[20m])";
	assert_int_equal(ts_query_range(db, q, strlen(q), T0 + HOUR_MS, T0 + DAY_MS - HOUR_MS,
					HOUR_MS / 3, &o5, &a, &err),
			 0);
	assert_int_equal(ts_query_range(db, q, strlen(q), T0 + HOUR_MS, T0 + DAY_MS - HOUR_MS,
					HOUR_MS / 3, &o0, &b, &err),
			 0);
	expect_close(a, b, 0, "5m read without a 5m tier");
	ts_qresult_free(a);
	ts_qresult_free(b);
	assert_int_equal(ts_db_close(db), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_pass),
		cmocka_unit_test(test_tombstone_after),
		cmocka_unit_test(test_whole_partition_goes),
		cmocka_unit_test(test_series_gc),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_sparse_5m),
		cmocka_unit_test(test_kill9),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
