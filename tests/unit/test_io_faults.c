/*
 * test_io_faults.c - I/O errors injected at the engine's risky steps (TS_FAILPOINT error
 * points, tsdb/failpoint.h): a partition write that finds no space, each rename of a
 * compaction, and the switch of a cold conversion. Whatever fails, nothing acknowledged is lost, the directory is left in a
 * state the next open understands, and the engine carries on by itself once the step
 * succeeds again. (WAL write and fsync failures are injected in test_wal; a real full
 * file system is test_diskfull.)
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/err.h"
#include "storage/log.h"
#include "testutil.h"
#include "tsdb/tsdb.h"

/* tsdb/writer.c: head row bytes per index transaction of a checkpoint. */
extern size_t ts__ckpt_slice_bytes;

#define T0 INT64_C(1690000000000) /* 2023: partitions are closed, compaction applies */

/* The background writer stays idle: only ts_db_checkpoint and ts_db_compact write. */
static struct ts_db_opts quiet(void)
{
	struct ts_db_opts o = { .flush_interval_ms = 3600000,
				.checkpoint_interval_ms = 3600000,
				.partition_ms = 3600000 };
	return o;
}

static int append_range(struct ts_db *db, int from, int to)
{
	struct ts_label l[] = { { "__name__", "io", 8, 2 } };
	struct ts_sample s[1024];
	int n = 0;
	assert_true(to - from <= 1024);
	for (int i = from; i < to && n < 1024; i++, n++) {
		s[n].t_ms = T0 + (int64_t)i * 15000;
		s[n].v = i;
	}
	struct ts_series_in in = { l, 1, s, (uint32_t)n };
	struct ts_append_result res;
	int rc = ts_db_append(db, &in, 1, &res, NULL);
	if (rc == 0)
		assert_int_equal(res.n_appended, (uint64_t)n);
	return rc;
}

/* Every sample 0..n-1 present, in order, exact. */
static void check_samples(struct ts_db *db, int n)
{
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "io" };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), 1);
	struct ts_iter *it;
	assert_int_equal(ts_iter_new(set, 0, &it), 0);
	int i = 0;
	while (ts_iter_next(it) == 1) {
		int64_t t;
		double v;
		ts_iter_at(it, &t, &v);
		assert_int_equal(t, T0 + (int64_t)i * 15000);
		assert_true(v == i);
		i++;
	}
	assert_int_equal(i, n);
	ts_iter_free(it);
	ts_series_set_free(set);
}

/* Entries of raw/: all of them, or only those that are not plain partitions (".compact",
 * ".old") when `leftovers_only`. */
static int raw_entries(const char *dir, int leftovers_only)
{
	char raw[4200];
	snprintf(raw, sizeof raw, "%s/raw", dir);
	DIR *d = opendir(raw);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' && (!leftovers_only || strchr(e->d_name, '.') != NULL);
	closedir(d);
	return n;
}

/* Opens dir with the error point `fp` armed for this open only (failpoint.h). */
static struct ts_db *open_armed(const char *dir, const struct ts_db_opts *o, const char *fp)
{
	struct ts_db *db;
	setenv("TS_FAILPOINT", fp, 1);
	assert_int_equal(ts_db_open(dir, o, &db), 0);
	unsetenv("TS_FAILPOINT");
	return db;
}

static void test_partition_write_finds_no_space(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "iofault");
	struct ts_db_opts o = quiet();
	struct ts_db *db = open_armed(dir, &o, "flush.apply:1:ENOSPC");
	assert_int_equal(append_range(db, 0, 500), 0); /* sealed chunks wait for a flush */
	/* The flush fails: writes are refused, with the reason, until one succeeds. */
	assert_int_equal(ts_db_checkpoint(db), -ENOSPC);
	assert_int_equal(ts_db_writable(db), -ENOSPC);
	assert_int_equal(append_range(db, 500, 600), -ENOSPC);
	check_samples(db, 500); /* reads go on */
	struct ts_db_stats stats;
	ts_db_stats(db, &stats);
	assert_int_equal(stats.n_flush_failures, 1);
	assert_int_equal(stats.write_err, -ENOSPC);
	/* The next flush succeeds (the writer thread would retry by itself). */
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_writable(db), 0);
	assert_int_equal(append_range(db, 500, 600), 0);
	check_samples(db, 600);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	check_samples(db, 600);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A checkpoint's head rows go in slices; one that fails after others committed fails
 * the checkpoint (writes refused until a flush succeeds), and the next one writes every
 * row again. After a reopen every sample is there, from the rows or the WAL. */
static void test_checkpoint_slice_fails(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "iofault");
	struct ts_db_opts o = quiet();
	size_t saved = ts__ckpt_slice_bytes;
	ts__ckpt_slice_bytes = 1; /* a transaction per group of 256 series */
	struct ts_db *db = open_armed(dir, &o, "ckpt.slice_apply:2:ENOSPC");
	enum { N = 1000, K = 30 };
	static char names[N][16];
	static struct ts_label l[N][2];
	static struct ts_sample smp[N][K];
	static struct ts_series_in in[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		l[i][0] = (struct ts_label){ "__name__", "sl", 8, 2 };
		l[i][1] = (struct ts_label){ "i", names[i], 1, (uint32_t)strlen(names[i]) };
		for (int k = 0; k < K; k++)
			smp[i][k] = (struct ts_sample){ T0 + (int64_t)k * 15000, i * 1000.0 + k };
		in[i] = (struct ts_series_in){ l[i], 2, smp[i], K };
	}
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, in, N, &res, NULL), 0);
	assert_int_equal(ts_db_checkpoint(db), -ENOSPC);
	assert_int_equal(ts_db_writable(db), -ENOSPC);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_writable(db), 0);
	assert_int_equal(ts_db_close(db), 0);
	ts__ckpt_slice_bytes = saved;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_matcher m = { TS_MATCH_EQ, "__name__", "sl" };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), N);
	uint64_t n = 0;
	for (size_t i = 0; i < N; i++) {
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, i, &it), 0);
		while (ts_iter_next(it) == 1)
			n++;
		ts_iter_free(it);
	}
	assert_int_equal(n, (uint64_t)N * K);
	ts_series_set_free(set);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A new partition whose directory cannot be made (a full disk) exists only in memory:
 * the flush fails, reads go on without creating it, and the next flush creates it. */
static void test_new_partition_cannot_be_created(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "iofault");
	struct ts_db_opts o = quiet();
	struct ts_db *db = open_armed(dir, &o, "partition.create:1:ENOSPC");
	assert_int_equal(append_range(db, 0, 300), 0);
	assert_int_equal(ts_db_checkpoint(db), -ENOSPC);
	check_samples(db, 300); /* from memory; the partition is not created by a reader */
	assert_int_equal(raw_entries(dir, 0), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	check_samples(db, 300);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	check_samples(db, 300);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void compaction_rename_fails(const char *point)
{
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "iofault");
	struct ts_db_opts o = quiet();
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	/* 600 samples 15 s apart span three one-hour partitions. */
	assert_int_equal(append_range(db, 0, 600), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_close(db), 0);

	char fp[64];
	snprintf(fp, sizeof fp, "%s:1:EIO", point);
	db = open_armed(dir, &o, fp);
	assert_int_equal(ts_db_compact(db), 0); /* one rewrite fails; it is left as it was */
	check_samples(db, 600);
	assert_int_equal(ts_db_writable(db), 0);
	assert_int_equal(append_range(db, 600, 700), 0); /* a late write, still accepted */
	assert_int_equal(ts_db_checkpoint(db), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_close(db), 0);

	/* The next open finishes or undoes what the failure left, and compaction works. */
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(raw_entries(dir, 1), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_compact(db), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(raw_entries(dir, 1), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_compaction_first_rename_fails(void **st)
{
	(void)st;
	compaction_rename_fails("compact.rename_old");
}

static void test_compaction_second_rename_fails(void **st)
{
	(void)st;
	compaction_rename_fails("compact.rename_new");
}

/* The switch of a cold conversion fails: the hot chunks stay, the blocks written for
 * the generation stay unlisted (readers ignore them), and the next conversion deletes
 * them and succeeds. */
static void test_cold_switch_fails(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "iofault");
	struct ts_db_opts o = quiet();
	struct ts_db *db = open_armed(dir, &o, "cold.switch:1:EIO");
	assert_int_equal(append_range(db, 0, 600), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_compact(db), 0); /* the first switch fails; left as it was */
	check_samples(db, 600);
	assert_int_equal(ts_db_writable(db), 0);
	assert_int_equal(append_range(db, 600, 700), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_compact(db), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	check_samples(db, 700);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	/* The injected failures are logged as errors; that is expected here. */
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partition_write_finds_no_space),
		cmocka_unit_test(test_checkpoint_slice_fails),
		cmocka_unit_test(test_new_partition_cannot_be_created),
		cmocka_unit_test(test_compaction_first_rename_fails),
		cmocka_unit_test(test_compaction_second_rename_fails),
		cmocka_unit_test(test_cold_switch_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
