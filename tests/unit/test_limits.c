/*
 * Unit tests of the series limits (tsdb/limits.c through ts_db_append): max_series and
 * max_series_per_metric refuse new series whole (TS_ELIMIT, counted, named in the
 * message) while existing series keep taking samples in the same batch; a series twice
 * in a batch counts once; a new series whose samples are all refused is not counted;
 * counts are rebuilt at reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

#define T0 1700000000000LL

static struct ts_db *open_db(const char *dir, uint64_t max, uint64_t per_metric)
{
	struct ts_db_opts o = { .sync = TS_WAL_SYNC_NEVER,
				.ooo_window_ms = 3600000,
				.max_series = max,
				.max_series_per_metric = per_metric };
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	return db;
}

/* Appends one sample to each of the series name{k="<keys[i]>"}; returns the result. */
static struct ts_append_result put(struct ts_db *db, const char *name, const char *const *keys,
				   size_t n, int64_t t, int *rc)
{
	struct ts_label lab[16][2];
	struct ts_sample smp[16];
	struct ts_series_in in[16];
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		lab[i][0] = (struct ts_label){ "__name__", name, 8, (uint32_t)strlen(name) };
		lab[i][1] = (struct ts_label){ "k", keys[i], 1, (uint32_t)strlen(keys[i]) };
		smp[i] = (struct ts_sample){ t, 1.0 };
		in[i] = (struct ts_series_in){ lab[i], 2, &smp[i], 1 };
	}
	struct ts_append_result r;
	assert_int_equal(ts_db_append(db, in, n, &r, rc), 0);
	return r;
}

static void test_max_series(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "limits");
	struct ts_db *db = open_db(dir, 3, 0);
	const char *abc[] = { "a", "b", "c" };
	struct ts_append_result r = put(db, "m", abc, 3, T0, NULL);
	assert_int_equal(r.n_new_series, 3);
	assert_int_equal(r.n_limited_series, 0);
	/* d and e are new: refused; a takes its sample in the same batch */
	const char *mix[] = { "d", "a", "e", "d" };
	int rc[4];
	r = put(db, "m", mix, 4, T0 + 1000, rc);
	assert_int_equal(r.n_appended, 1);
	assert_int_equal(r.n_limited_series, 3); /* d twice, e once: each entry refused */
	assert_int_equal(r.n_new_series, 0);
	assert_int_equal(r.first_err, TS_ELIMIT);
	assert_non_null(strstr(r.first_err_msg, "max_series"));
	assert_int_equal(rc[0], TS_ELIMIT);
	assert_int_equal(rc[1], 0);
	/* counts survive a reopen */
	assert_int_equal(ts_db_close(db), 0);
	db = open_db(dir, 3, 0);
	const char *f[] = { "f" };
	r = put(db, "other", f, 1, T0 + 2000, NULL);
	assert_int_equal(r.n_limited_series, 1);
	assert_int_equal(r.n_appended, 0);
	/* a higher limit at reopen lets it in */
	assert_int_equal(ts_db_close(db), 0);
	db = open_db(dir, 4, 0);
	r = put(db, "other", f, 1, T0 + 2000, NULL);
	assert_int_equal(r.n_new_series, 1);
	assert_int_equal(r.n_limited_series, 0);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

static void test_refused_samples_do_not_count(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "limits");
	struct ts_db *db = open_db(dir, 2, 0);
	const char *a[] = { "a" };
	put(db, "m", a, 1, T0, NULL);
	/* a new series whose only sample is refused (past the storable range) */
	const char *b[] = { "b" };
	struct ts_append_result r = put(db, "m", b, 1, (1LL << 62) + 5, NULL);
	assert_int_equal(r.n_too_future, 1);
	assert_int_equal(r.n_new_series, 0);
	/* b did not take the last slot: c gets it */
	const char *c[] = { "c" };
	r = put(db, "m", c, 1, T0, NULL);
	assert_int_equal(r.n_new_series, 1);
	r = put(db, "m", b, 1, T0, NULL);
	assert_int_equal(r.n_limited_series, 1);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

static void test_per_metric(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "limits");
	struct ts_db *db = open_db(dir, 0, 2);
	const char *abc[] = { "a", "b", "c" };
	struct ts_append_result r = put(db, "m1", abc, 3, T0, NULL);
	assert_int_equal(r.n_new_series, 2);
	assert_int_equal(r.n_limited_series_metric, 1);
	assert_non_null(strstr(r.first_err_msg, "m1"));
	assert_non_null(strstr(r.first_err_msg, "max_series_per_metric"));
	r = put(db, "m2", abc, 2, T0, NULL);
	assert_int_equal(r.n_new_series, 2);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db(dir, 0, 2);
	r = put(db, "m2", abc + 2, 1, T0, NULL);
	assert_int_equal(r.n_limited_series_metric, 1);
	r = put(db, "m1", abc, 2, T0 + 1000, NULL); /* existing: fine */
	assert_int_equal(r.n_appended, 2);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_series),
		cmocka_unit_test(test_refused_samples_do_not_count),
		cmocka_unit_test(test_per_metric),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
