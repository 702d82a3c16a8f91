/*
 * test_partitions.c - partition envs are opened on demand and at most max_open of them
 * stay open, so a long history costs neither file descriptors nor start-up time.
 *
 * 400 days of one series (one partition a day) are written, the database is reopened
 * under a file-descriptor limit of 256 (400 open envs would need about 1,200), and
 * queries over recent weeks and over the whole history come back complete. What is left
 * open afterwards is bounded by the cap, not by the history.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define N_DAYS 400
#define PER_DAY 4
#define T0 (INT64_C(1700000000000) - N_DAYS * DAY_MS)

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	size_t n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", "..", and the DIR's own descriptor */
}

static size_t count_samples(struct ts_db *db, int64_t mint, int64_t maxt)
{
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "hist" };
	struct ts_series_set *set;
	char msg[256] = "";
	int rc = ts_db_select(db, &m, 1, mint, maxt, NULL, &set, msg, sizeof msg);
	if (rc)
		fail_msg("select [%lld, %lld]: %s %s", (long long)mint, (long long)maxt,
			 ts_strerror(rc), msg);
	size_t n = 0;
	for (size_t i = 0; i < ts_series_set_len(set); i++) {
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, i, &it), 0);
		int64_t t;
		double v;
		int r;
		while ((r = ts_iter_next(it)) == 1) {
			ts_iter_at(it, &t, &v);
			if (t >= mint && t <= maxt)
				n++;
		}
		assert_int_equal(r, 0);
		ts_iter_free(it);
	}
	ts_series_set_free(set);
	return n;
}

static void test_long_history_under_fd_limit(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "parts");
	struct ts_db_opts o = { .max_open_partitions = 16 };
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_label l[] = { { "__name__", "hist", 8, 4 } };
	struct ts_sample s[PER_DAY];
	for (int d = 0; d < N_DAYS; d++) {
		for (int k = 0; k < PER_DAY; k++) {
			s[k].t_ms = T0 + d * DAY_MS + k * 3600000;
			s[k].v = d * PER_DAY + k;
		}
		struct ts_series_in in = { l, 1, s, PER_DAY };
		struct ts_append_result res;
		assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
		assert_int_equal(res.n_appended, PER_DAY);
		if (d % 50 == 49) /* flushes move sealed chunks into their day's partition */
			assert_int_equal(ts_db_checkpoint(db), 0);
	}
	assert_int_equal(ts_db_checkpoint(db), 0);
	struct ts_db_stats stats;
	ts_db_stats(db, &stats);
	assert_true(stats.n_partitions >= N_DAYS - 1);
	assert_true(stats.n_open_partitions <= 16);
	assert_int_equal(ts_db_close(db), 0);

	/* Reopen where 400 open envs could not fit. */
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	size_t before = open_fds();
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	ts_db_stats(db, &stats);
	assert_true(stats.n_partitions >= N_DAYS - 1);
	assert_int_equal(stats.n_open_partitions, 0); /* start-up opens none */
	assert_true(open_fds() - before < 16);

	int64_t end = T0 + N_DAYS * DAY_MS;
	assert_int_equal(count_samples(db, end - DAY_MS, end), PER_DAY);
	assert_int_equal(count_samples(db, end - 30 * DAY_MS, end), 30 * PER_DAY);
	/* The whole history, one stretch of 50 days at a time. */
	size_t total = 0;
	for (int d = 0; d < N_DAYS; d += 50)
		total += count_samples(db, T0 + d * DAY_MS, T0 + (d + 50) * DAY_MS - 1);
	assert_int_equal(total, N_DAYS * PER_DAY);
	ts_db_stats(db, &stats);
	assert_true(stats.n_open_partitions <= 16);
	assert_true(open_fds() - before < 16 + 16 * 3);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(open_fds(), before);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_history_under_fd_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
