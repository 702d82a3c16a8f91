/*
 * test_delete.c - deleting samples (ts_db_delete, tsdb/delete.c, tsdb/tombstone.c) and
 * reclaiming their space (ts_db_clean_tombstones).
 *
 * Several series with samples in every place data lives (the open head, sealed chunks,
 * hot chunks of a partition, cold generations, the WAL only); one range of one series is
 * deleted, and every read (sample iterator, chunk iterator, has_data) must miss exactly
 * that range while every other sample reads back bit-exact: right away, after close and
 * reopen (the conversion to cold at close), after ts_db_compact, after a kill -9 (a
 * child raises SIGKILL, with or without a failpoint inside delete or clean), and after
 * clean_tombstones, which must also shrink the partition.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/err.h"
#include "storage/xor.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define T0 (INT64_C(1700000000000) / DAY_MS * DAY_MS - 5 * DAY_MS) /* a day's start */
#define STEP 15000
#define N_SER 4
#define VICTIM 2 /* the series a range is deleted of */

static char dir[4096];

/* Random bits for the victim (so its samples take room a clean must give back), a
 * counter-like gauge for the others. */
static uint64_t value_of(int k, int64_t j)
{
	if (k == VICTIM)
		return tu_mix64((uint64_t)j);
	double d = (double)(j * 3 + k) + 0.25 * (double)(j % 7);
	uint64_t b;
	memcpy(&b, &d, 8);
	return b;
}

static void append_range(struct ts_db *db, int k, int64_t j0, int64_t j1)
{
	char name[16];
	snprintf(name, sizeof name, "s%d", k);
	struct ts_label l[2] = { { "__name__", "m", 8, 1 },
				 { "k", name, 1, (uint32_t)strlen(name) } };
	size_t n = (size_t)(j1 - j0);
	struct ts_sample *s = calloc(n, sizeof *s);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		int64_t j = j0 + (int64_t)i;
		s[i].t_ms = T0 + j * STEP;
		uint64_t b = value_of(k, j);
		memcpy(&s[i].v, &b, 8);
	}
	struct ts_series_in in = { l, 2, s, (uint32_t)n };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended + res.n_duplicate, n);
	free(s);
}

/* The expected content: samples j in [0, n_j) of every series, minus [d0, d1] of the
 * victim when `deleted`. */
struct expect {
	int64_t n_j;
	int deleted;
	int64_t d0, d1; /* sample numbers, inclusive */
	int64_t d2, d3; /* a second range when d3 >= d2 (zero: none) */
};

static int expected_has(const struct expect *e, int k, int64_t j)
{
	if (j < 0 || j >= e->n_j || k != VICTIM || !e->deleted)
		return j >= 0 && j < e->n_j;
	return !(j >= e->d0 && j <= e->d1) && !(e->d3 > 0 && j >= e->d2 && j <= e->d3);
}

static int series_k(struct ts_series_set *set, size_t i)
{
	const struct ts_label *l;
	uint32_t n;
	assert_int_equal(ts_series_set_labels(set, i, &l, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(l[1].value_len, 2); /* "s<k>", not NUL-terminated */
	return l[1].value[1] - '0';
}

/* Every read path against e: sample iterator, chunk iterator, has_data. */
static void check(struct ts_db *db, const struct expect *e)
{
	struct ts_series_set *set;
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "m" };
	assert_int_equal(ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), N_SER);
	for (size_t i = 0; i < N_SER; i++) {
		int k = series_k(set, i);
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, i, &it), 0);
		int64_t j = 0, got = 0;
		int rc;
		while ((rc = ts_iter_next(it)) == 1) {
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			while (!expected_has(e, k, j))
				j++;
			if (t != T0 + j * STEP)
				fail_msg("series %d: sample %lld at %lld, expected %lld", k,
					 (long long)got, (long long)t, (long long)(T0 + j * STEP));
			uint64_t b;
			memcpy(&b, &v, 8);
			assert_int_equal(b, value_of(k, j));
			j++;
			got++;
		}
		assert_int_equal(rc, 0);
		int64_t want = 0;
		for (int64_t x = 0; x < e->n_j; x++)
			want += expected_has(e, k, x);
		if (got != want)
			fail_msg("series %d: %lld samples, expected %lld", k, (long long)got,
				 (long long)want);
		ts_iter_free(it);

		/* Chunks: the same samples (chunks may overlap; count distinct times). */
		struct ts_chunk_it *ci;
		assert_int_equal(ts_chunk_it_new(set, i, &ci), 0);
		struct ts_chunk_ref c;
		int64_t n_in_del = 0, n_all = 0;
		while (ts_chunk_it_next(ci, &c) == 1) {
			struct ts_xor_it x;
			assert_int_equal(ts_xor_it_init(&x, c.data, c.len), 0);
			while ((rc = ts_xor_next(&x)) == 1) {
				int64_t jj = (x.t - T0) / STEP;
				n_all++;
				if (!expected_has(e, k, jj))
					n_in_del++;
			}
			assert_int_equal(rc, 0);
		}
		ts_chunk_it_free(ci);
		assert_int_equal(n_in_del, 0);
		assert_true(n_all >= want);
	}
	ts_series_set_free(set);

	/* A range wholly inside the deletion: the victim has no data there. */
	if (e->deleted) {
		assert_int_equal(ts_db_select(db, &m, 1, T0 + e->d0 * STEP, T0 + e->d1 * STEP, NULL,
					      &set, NULL, 0),
				 0);
		for (size_t i = 0; i < ts_series_set_len(set); i++) {
			int k = series_k(set, i);
			assert_int_equal(ts_series_set_has_data(set, i), k == VICTIM ? 0 : 1);
		}
		ts_series_set_free(set);
	}
}

static struct ts_db *open_db(void)
{
	struct ts_db *db;
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000; /* the tests decide when data moves */
	o.checkpoint_interval_ms = 3600000;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	return db;
}

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "delete");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

static void delete_victim(struct ts_db *db, int64_t d0, int64_t d1)
{
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" }, { TS_MATCH_EQ, "k", "s2" } };
	uint64_t n = 99;
	assert_int_equal(ts_db_delete(db, m, 2, T0 + d0 * STEP, T0 + d1 * STEP, &n, NULL, 0), 0);
	assert_int_equal(n, 1);
}

static void fill(struct ts_db *db, int64_t j0, int64_t j1)
{
	for (int k = 0; k < N_SER; k++)
		append_range(db, k, j0, j1);
}

/* Head and sealed chunks in memory, then hot chunks (checkpoint), then cold (close). */
static void test_hot_head_and_reopen(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	struct expect e = { 1000, 0, 0, 0, 0, 0 };
	fill(db, 0, 1000);
	check(db, &e);
	/* Spans sealed chunks and the open head. */
	e = (struct expect){ 1000, 1, 300, 950, 0, 0 };
	delete_victim(db, 300, 950);
	check(db, &e);
	assert_int_equal(ts_db_checkpoint(db), 0);
	check(db, &e);
	/* Samples appended into the range later are hidden until a clean (Prometheus). */
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_compact(db), 0);
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
}

/* Cold data (after close and ts_db_compact), deleted; then compacted again. */
static void test_cold(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	fill(db, 0, 2000);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	assert_int_equal(ts_db_compact(db), 0);
	struct expect e = { 2000, 1, 10, 1500, 0, 0 };
	delete_victim(db, 10, 1500);
	check(db, &e);
	assert_int_equal(ts_db_compact(db), 0);
	check(db, &e);
	/* More data (hot beside cold), then a second range merged with the first. */
	fill(db, 2000, 2400);
	e.n_j = 2400;
	check(db, &e);
	delete_victim(db, 1400, 2100);
	e.d1 = 2100;
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
}

/* A child appends (WAL only: no flush, no checkpoint), deletes, and dies by SIGKILL
 * (after the delete returned, or at a failpoint); the reopened db must still miss the
 * range: the tombstone applies to the samples WAL replay puts back. */
static void crash_child(const char *fp, int64_t d0, int64_t d1)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (fp)
			setenv("TS_FAILPOINT", fp, 1);
		struct ts_db *db;
		struct ts_db_opts o = { 0 };
		o.flush_interval_ms = 3600000;
		o.checkpoint_interval_ms = 3600000;
		if (ts_db_open(dir, &o, &db) != 0)
			_exit(2);
		struct ts_matcher m[1] = { { TS_MATCH_EQ, "k", "s2" } };
		if (ts_db_delete(db, m, 1, T0 + d0 * STEP, T0 + d1 * STEP, NULL, NULL, 0) != 0)
			_exit(3);
		if (fp && strncmp(fp, "clean.", 6) == 0)
			ts_db_clean_tombstones(db, NULL);
		raise(SIGKILL);
		_exit(4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("child did not die by SIGKILL (status %d)", st);
}

static void test_crash_wal_only(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	fill(db, 0, 500);
	assert_int_equal(ts_db_close(db), 0); /* stored and cold */
	/* A child appends more and dies: those samples are in its WAL only. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ts_db *c;
		struct ts_db_opts o = { 0 };
		o.flush_interval_ms = 3600000;
		o.checkpoint_interval_ms = 3600000;
		if (ts_db_open(dir, &o, &c) != 0)
			_exit(2);
		fill(c, 500, 1100);
		raise(SIGKILL);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	/* The next child replays them into its heads, deletes a range spanning stored and
	 * replayed samples, and dies too; replay must not bring them back. */
	crash_child(NULL, 400, 1000);
	struct expect e = { 1100, 1, 400, 1000, 0, 0 };
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
}

/* Kills inside delete: before the commit nothing is deleted (not acknowledged either);
 * after it, the deletion stands. Inside clean: the deletion stands wherever it dies. */
static void test_crash_failpoints(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	fill(db, 0, 600);
	assert_int_equal(ts_db_close(db), 0);
	crash_child("delete.before_commit:1", 100, 200);
	struct expect e = { 600, 0, 0, 0, 0, 0 };
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	crash_child("delete.committed:1", 100, 200);
	e = (struct expect){ 600, 1, 100, 200, 0, 0 };
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	crash_child("clean.rewritten:1", 100, 250);
	e.d1 = 250;
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	crash_child("clean.committed:1", 100, 300);
	e.d1 = 300;
	db = open_db();
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
}

/* clean_tombstones: the partition shrinks, the other series stay bit-exact, the
 * tombstone goes (data appended into the range afterwards is visible again), and a
 * tombstone over samples still in the head stays until they are stored. */
static void test_clean(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	fill(db, 0, 5000);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	assert_int_equal(ts_db_compact(db), 0);
	struct ts_db_stats s0, s1;
	ts_db_stats(db, &s0);
	struct expect e = { 5000, 1, 0, 4990, 0, 0 };
	delete_victim(db, 0, 4990);
	struct ts_clean_stats cs;
	assert_int_equal(ts_db_clean_tombstones(db, &cs), 0);
	assert_int_equal(cs.n_before, 1);
	assert_int_equal(cs.n_after, 0);
	ts_db_stats(db, &s1);
	if (s1.partitions_bytes >= s0.partitions_bytes)
		fail_msg("partitions: %llu bytes before clean, %llu after",
			 (unsigned long long)s0.partitions_bytes,
			 (unsigned long long)s1.partitions_bytes);
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	check(db, &e);

	/* Head data in range: the tombstone must stay (head row and WAL hold it). */
	fill(db, 5000, 5010);
	e.n_j = 5010;
	delete_victim(db, 5005, 5009);
	e.d2 = 5005;
	e.d3 = 5009;
	check(db, &e);
	assert_int_equal(ts_db_clean_tombstones(db, &cs), 0);
	assert_int_equal(cs.n_after, 1);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	/* Close stored the head; now the tombstone can go. */
	assert_int_equal(ts_db_clean_tombstones(db, &cs), 0);
	assert_int_equal(cs.n_after, 0);
	check(db, &e);

	/* A range without samples of the series records nothing (Prometheus clamps a
	 * tombstone to the series' data): samples appended there later show. */
	struct ts_matcher m = { TS_MATCH_EQ, "k", "s2" };
	uint64_t n = 99;
	assert_int_equal(ts_db_delete(db, &m, 1, T0 + 5010 * STEP, T0 + 5100 * STEP, &n, NULL, 0),
			 0);
	assert_int_equal(n, 0);
	fill(db, 5010, 5020);
	e.n_j = 5020;
	check(db, &e);
	assert_int_equal(ts_db_close(db), 0);
}

static void test_bad_args(void **state)
{
	(void)state;
	struct ts_db *db = open_db();
	struct ts_matcher m = { TS_MATCH_RE, "k", "(" };
	char msg[128] = "";
	assert_int_equal(ts_db_delete(db, &m, 1, 0, 10, NULL, msg, sizeof msg), TS_EINVALID);
	assert_true(strlen(msg) > 0);
	m = (struct ts_matcher){ TS_MATCH_EQ, "k", "s1" };
	assert_int_equal(ts_db_delete(db, &m, 1, 10, 0, NULL, msg, sizeof msg), TS_EINVALID);
	struct ts_clean_stats cs;
	assert_int_equal(ts_db_clean_tombstones(db, &cs), 0); /* none: nothing to do */
	assert_int_equal(cs.n_before, 0);
	assert_int_equal(ts_db_close(db), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hot_head_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_wal_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_failpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
