/*
 * test_tiers.c - downsampled tiers of closed partitions (tsdb/tiers.c, format.h
 * "Downsampled tiers of a partition").
 *
 * Realistic series (counters with a reset, gauges in memory pages, temperatures with
 * one decimal, a series with a gap) over two closed day partitions; ts_db_compact must
 * store in each partition's "tiers" table exactly ts_ds_raw (5 minutes) and ts_ds_aggr
 * (1 hour, over the 5-minute rows) of its raw samples, read back by decoding the tier
 * blocks with the database closed: after the build, after a reopen, after a late write
 * (a new series in the older partition, which must appear), after a deletion (the range
 * must be gone from the rebuilt tiers), after clean_tombstones, and after a kill -9 at
 * each tiers failpoint (the old tiers or the new, each matching its record, then the new
 * after the next compaction). A 90-minute partition width gets 5m tiers only. Also prints the tiers' size as a share of the raw cold
 * blocks and asserts a bound (TIERS_MAX_SHARE).
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/cold.h"
#include "storage/env.h"
#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/downsample.h"
#include "tsdb/format.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define T0 (INT64_C(1700000000000) / DAY_MS * DAY_MS - 6 * DAY_MS) /* a day's start */
#define STEP 15000
#define N_J (2 * DAY_MS / STEP) /* two days of samples */
#define N_SER 24
#define LATE N_SER /* the series written late into day 0 */
#define VICTIM 5
/* Tiers of 5m + 1h against the raw cold blocks of the same data. A 5m row holds five
 * aggregates (count, sum, min, max, counter) for 20 raw samples at a 15 s scrape, so
 * the 5m tier alone is about a quarter of the raw values before compression; this data
 * measures about 42 %. The guard catches a tier blow-up (rows per block, level, lost
 * shared timestamps), not a target: 10 % is out of reach with this block format. */
#define TIERS_MAX_SHARE 0.50

static char dir[4096];

/* Sample j of series k: 1 = present, with *v its bits. */
static int sample_of(int k, int64_t j, uint64_t *v)
{
	double d;
	switch (k % 4) {
	case 0: /* a counter, reset once a day */
		d = (double)((j % 4000) * (k + 3) +
			     (int64_t)(tu_mix64((uint64_t)(j * 131 + k)) % 7));
		break;
	case 1: /* memory bytes in pages */
		d = 4096.0 *
		    (double)(250000 + k * 1000 + (int64_t)(tu_mix64((uint64_t)j / 40) % 500));
		break;
	case 2: /* a temperature with one decimal */
		d = round((40.0 + 5.0 * sin((double)j / 300.0) + (double)k) * 10.0) / 10.0;
		break;
	default: /* a gauge with a two-hour gap each day */
		if (j % 5760 >= 1000 && j % 5760 < 1480)
			return 0;
		d = (double)(tu_mix64((uint64_t)(j * 7 + k)) % 100);
	}
	memcpy(v, &d, 8);
	return 1;
}

static void append_series(struct ts_db *db, int k, int64_t j0, int64_t j1)
{
	char name[16];
	snprintf(name, sizeof name, "s%d", k);
	struct ts_label l[2] = { { "__name__", "m", 8, 1 },
				 { "k", name, 1, (uint32_t)strlen(name) } };
	struct ts_sample *s = calloc((size_t)(j1 - j0), sizeof *s);
	assert_non_null(s);
	size_t n = 0;
	for (int64_t j = j0; j < j1; j++) {
		uint64_t b;
		if (!sample_of(k, j, &b))
			continue;
		s[n].t_ms = T0 + j * STEP;
		memcpy(&s[n].v, &b, 8);
		n++;
	}
	struct ts_series_in in = { l, 2, s, (uint32_t)n };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended, n);
	free(s);
}

/* What is expected: series 0..N_SER-1 over both days (ids 1..N_SER), the late series
 * (id N_SER+1) in day 0 when `late`, minus samples [d0, d1] of VICTIM when d1 >= d0. */
struct expect {
	int late;
	int64_t d0, d1;
};

static struct ts_db *open_db(void)
{
	struct ts_db *db;
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000;
	o.checkpoint_interval_ms = 3600000;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	return db;
}

/* The rows expected for series k in day `day` at both resolutions. */
static void expected(int k, int day, const struct expect *e, struct ts_ds_agg *a5,
		     struct ts_ds_agg *a1h)
{
	int64_t n_j = DAY_MS / STEP;
	int64_t *t = malloc((size_t)n_j * sizeof *t);
	uint64_t *v = malloc((size_t)n_j * sizeof *v);
	struct ts_ds_row *r5 = malloc((size_t)n_j * sizeof *r5);
	struct ts_ds_row *r1 = malloc((size_t)n_j * sizeof *r1);
	assert_true(t && v && r5 && r1);
	size_t n = 0;
	for (int64_t j = day * n_j; j < (day + 1) * n_j; j++) {
		if (k == VICTIM && e->d1 >= e->d0 && j >= e->d0 && j <= e->d1)
			continue;
		if (k == LATE && (!e->late || day != 0))
			continue;
		if (sample_of(k, j, &v[n]))
			t[n++] = T0 + j * STEP;
	}
	assert_int_equal(ts_ds_raw(t, v, n, TS_DS_RES_5M_MS, r5, (size_t)n_j, a5), 0);
	memset(a1h, 0, sizeof *a1h);
	a1h->rows = r1;
	if (a5->n_rows)
		assert_int_equal(ts_ds_aggr(a5, 1, TS_DS_RES_1H_MS, r1, (size_t)n_j, a1h), 0);
	free(t);
	free(v);
}

static void agg_eq(const struct ts_ds_agg *got, const struct ts_ds_agg *want, int k, int res)
{
	if (got->n_rows != want->n_rows)
		fail_msg("series %d res %d: %zu rows, want %zu", k, res, got->n_rows, want->n_rows);
	for (size_t i = 0; i < got->n_rows; i++)
		if (memcmp(&got->rows[i], &want->rows[i], sizeof got->rows[i]) != 0)
			fail_msg("series %d res %d: row %zu (t %lld) differs", k, res, i,
				 (long long)want->rows[i].t_ms);
	assert_int_equal(got->first_t_ms, want->first_t_ms);
	assert_memory_equal(&got->first_v, &want->first_v, 8);
	assert_memory_equal(&got->last_v, &want->last_v, 8);
}

/* Stored tier content of one partition, read with the database closed. */
struct stored {
	uint64_t bytes[2], rows[2], cold_bytes;
	uint8_t rec[TS_FORMAT_TIERS_REC_LEN];
	int have_rec;
};

/* Checks every stored tier row of day `day` against the expectation; fills *st. */
static void check_day(int day, const struct expect *e, struct stored *st)
{
	char path[4200];
	int64_t start = T0 + day * DAY_MS;
	snprintf(path, sizeof path, "%s/raw/%lld_%lld", dir, (long long)start,
		 (long long)(start + DAY_MS));
	struct ts_env *env;
	struct ts_env_opts eo = { .map_bytes = 64u << 20 };
	assert_int_equal(ts_env_open(path, &eo, &env), 0);
	unsigned tiers, meta, cold;
	assert_int_equal(ts_env_table(env, TS_FORMAT_PART_TABLE_TIERS, 0, &tiers), 0);
	assert_int_equal(ts_env_table(env, TS_FORMAT_PART_TABLE_META, 0, &meta), 0);
	assert_int_equal(ts_env_table(env, TS_FORMAT_PART_TABLE_COLD, 0, &cold), 0);
	struct ts_rtxn *r;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	memset(st, 0, sizeof *st);
	const void *v;
	size_t vl;
	if (ts_env_get(r, meta, TS_FORMAT_PART_META_TIERS, strlen(TS_FORMAT_PART_META_TIERS), &v,
		       &vl) == 0) {
		assert_int_equal(vl, TS_FORMAT_TIERS_REC_LEN);
		memcpy(st->rec, v, vl);
		st->have_rec = 1;
	}
	int seen[2][N_SER + 2] = { { 0 } };
	struct ts_ds_row *rows = malloc(6000 * sizeof *rows);
	struct ts_cursor *c;
	assert_int_equal(ts_cursor_open(r, tiers, &c), 0);
	for (int rc = ts_cursor_seek(c, NULL, 0); rc != TS_ENOTFOUND; rc = ts_cursor_next(c)) {
		assert_int_equal(rc, 0);
		const void *k;
		size_t kl;
		assert_int_equal(ts_cursor_get(c, &k, &kl, &v, &vl), 0);
		assert_int_equal(kl, TS_FORMAT_TIER_KEY_LEN);
		int res = ((const uint8_t *)k)[0];
		assert_true(res == TS_FORMAT_TIER_RES_5M || res == TS_FORMAT_TIER_RES_1H);
		st->bytes[res - 1] += vl;
		struct ts_cold_block *b;
		assert_int_equal(ts_cold_open(v, vl, &b), 0);
		size_t ns = ts_cold_nseries(b) / TS_DS_N_KINDS;
		uint64_t id = 0;
		for (size_t i = 0; i < ns; i++) {
			size_t nr;
			assert_int_equal(ts_ds_tier_id(b, i, &id, &nr), 0);
			assert_true(id >= 1 && id <= N_SER + 1);
			int sk = (int)id - 1;
			struct ts_ds_agg got, w5, w1;
			assert_int_equal(ts_ds_tier_decode(b, id, rows, 6000, &got), 0);
			expected(sk, day, e, &w5, &w1);
			agg_eq(&got, res == TS_FORMAT_TIER_RES_5M ? &w5 : &w1, sk, res);
			free(w5.rows);
			free(w1.rows);
			st->rows[res - 1] += got.n_rows;
			assert_int_equal(seen[res - 1][id], 0);
			seen[res - 1][id] = 1;
		}
		assert_int_equal(id, ts_format_get_be64((const uint8_t *)k + 1)); /* last id */
		ts_cold_free(b);
	}
	ts_cursor_close(c);
	/* Every series with samples here has rows at both resolutions. */
	for (int k = 0; k <= LATE; k++) {
		struct ts_ds_agg w5, w1;
		expected(k, day, e, &w5, &w1);
		for (int res = 0; res < 2; res++)
			if ((res ? w1.n_rows : w5.n_rows) != 0 && !seen[res][k + 1])
				fail_msg("day %d: series %d missing at res %d", day, k, res + 1);
		free(w5.rows);
		free(w1.rows);
	}
	assert_int_equal(ts_cursor_open(r, cold, &c), 0);
	for (int rc = ts_cursor_seek(c, NULL, 0); rc != TS_ENOTFOUND; rc = ts_cursor_next(c)) {
		assert_int_equal(ts_cursor_get(c, NULL, NULL, &v, &vl), 0);
		st->cold_bytes += vl;
	}
	ts_cursor_close(c);
	free(rows);
	ts_env_read_end(r);
	ts_env_close(env);
	/* The record counts what is stored. */
	assert_true(st->have_rec);
	assert_int_equal(st->rec[0], TS_FORMAT_TIERS_REC_VERSION);
	assert_int_equal(ts_format_get_le64(st->rec + 21), st->rows[0]);
	assert_int_equal(ts_format_get_le64(st->rec + 29), st->rows[1]);
	assert_int_equal(ts_format_get_le64(st->rec + 37), st->bytes[0]);
	assert_int_equal(ts_format_get_le64(st->rec + 45), st->bytes[1]);
	assert_int_equal(ts_format_get_le32(st->rec + 53),
			 TS_FORMAT_TIERS_FLAG_5M | TS_FORMAT_TIERS_FLAG_1H);
}

static void check_all(const struct expect *e, struct stored st[2])
{
	for (int d = 0; d < 2; d++)
		check_day(d, e, &st[d]);
}

static void write_base(void)
{
	struct ts_db *db = open_db();
	for (int k = 0; k < N_SER; k++)
		append_series(db, k, 0, N_J);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(ts_db_close(db), 0);
}

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "tiers");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

/* Built at compaction, exact, unchanged by a reopen; small next to the raw data. */
static void test_build(void **state)
{
	(void)state;
	write_base();
	struct expect e = { 0, 0, -1 };
	struct stored a[2], b[2];
	check_all(&e, a);
	struct ts_db *db = open_db();
	struct ts_downsample_stats ds;
	assert_int_equal(ts_db_downsample(db, NULL, NULL, &ds), 0);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ds.n_parts, 2);
	assert_int_equal(ds.n_current, 2);
	assert_int_equal(ds.n_built, 0);
	assert_int_equal(ds.n_series, 2 * N_SER);
	assert_int_equal(ds.rows[0], a[0].rows[0] + a[1].rows[0]);
	assert_int_equal(ds.bytes[1], a[0].bytes[1] + a[1].bytes[1]);
	assert_int_equal(ds.raw_bytes, a[0].cold_bytes + a[1].cold_bytes);
	check_all(&e, b);
	assert_memory_equal(a[0].rec, b[0].rec, sizeof a[0].rec); /* nothing rebuilt */
	uint64_t tb = ds.bytes[0] + ds.bytes[1];
	double share = (double)tb / (double)ds.raw_bytes;
	print_message("tiers: 5m %llu rows %llu bytes, 1h %llu rows %llu bytes; raw cold %llu "
		      "bytes; tiers = %.1f %% of raw\n",
		      (unsigned long long)ds.rows[0], (unsigned long long)ds.bytes[0],
		      (unsigned long long)ds.rows[1], (unsigned long long)ds.bytes[1],
		      (unsigned long long)ds.raw_bytes, 100.0 * share);
	assert_true(share <= TIERS_MAX_SHARE);
}

/* A late write into the closed day 0 (a new series), then a compaction: rebuilt. */
static void test_late_write(void **state)
{
	(void)state;
	write_base();
	struct stored a[2], b[2];
	struct expect e = { 0, 0, -1 };
	check_all(&e, a);
	struct ts_db *db = open_db();
	append_series(db, LATE, 0, N_J / 2);
	assert_int_equal(ts_db_close(db), 0);
	db = open_db();
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(ts_db_close(db), 0);
	e.late = 1;
	check_all(&e, b);
	assert_true(b[0].rows[0] > a[0].rows[0]);
	assert_memory_equal(a[1].rec, b[1].rec, sizeof a[1].rec); /* day 1 untouched */
}

/* A deleted range is absent from the rebuilt tiers (at compaction, and after clean). */
static void test_delete(void **state)
{
	(void)state;
	write_base();
	struct ts_db *db = open_db();
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" }, { TS_MATCH_EQ, "k", "s5" } };
	struct expect e = { 0, 5000, 7000 }; /* across the day boundary (5760) */
	uint64_t n = 0;
	assert_int_equal(ts_db_delete(db, m, 2, T0 + e.d0 * STEP, T0 + e.d1 * STEP, &n, NULL, 0),
			 0);
	assert_int_equal(n, 1);
	struct ts_downsample_stats ds;
	assert_int_equal(ts_db_downsample(db, NULL, NULL, &ds), 0);
	/* The writer rebuilds a deletion's tiers by itself, so it may have been first. */
	assert_int_equal(ds.n_built + ds.n_current, 2);
	assert_int_equal(ts_db_close(db), 0);
	struct stored a[2];
	check_all(&e, a);
	db = open_db();
	struct ts_clean_stats cs;
	assert_int_equal(ts_db_clean_tombstones(db, &cs), 0);
	assert_int_equal(cs.n_after, 0);
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(ts_db_close(db), 0);
	check_all(&e, a);
}

/* kill -9 at each tiers failpoint while a late write's tiers are built (by the clean
 * stop after the write): the partition then holds the old tiers (matching the old data)
 * or the new, each with its record; the next compaction leaves the new ones. */
static void test_crash(void **state)
{
	(void)state;
	const char *points[] = { "tiers.before_commit:1", "tiers.committed:1" };
	for (int i = 0; i < 2; i++) {
		tu_rmtree(dir);
		tu_mkdtemp(dir, sizeof dir, "tiers");
		write_base();
		fflush(stdout);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			setenv("TS_FAILPOINT", points[i], 1);
			struct ts_db *c;
			struct ts_db_opts o = { 0 };
			o.flush_interval_ms = 3600000;
			o.checkpoint_interval_ms = 3600000;
			if (ts_db_open(dir, &o, &c) != 0)
				_exit(2);
			/* A clean stop makes the closed partitions it wrote cold, tiers
			 * included: the kill comes while it builds them. */
			append_series(c, LATE, 0, N_J / 2);
			ts_db_close(c);
			_exit(3); /* the point was not reached */
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		struct stored s;
		struct expect old = { 0, 0, -1 }, late = { 1, 0, -1 };
		/* Stored tiers must match one state whole: check_day fails on any mismatch. */
		if (i == 0)
			check_day(0, &old, &s);
		else
			check_day(0, &late, &s);
		struct ts_db *db = open_db();
		assert_int_equal(ts_db_compact(db), 0);
		assert_int_equal(ts_db_close(db), 0);
		struct stored b[2];
		check_all(&late, b);
	}
}

/* A partition width that is a multiple of 5 minutes but not of an hour (90 min): 5m
 * tiers only, exact, and the record says so; no 1h window straddles two partitions. */
static void test_width(void **state)
{
	(void)state;
	const int64_t width = 90 * 60000;
	struct ts_db *db;
	struct ts_db_opts o = { 0 };
	o.flush_interval_ms = 3600000;
	o.checkpoint_interval_ms = 3600000;
	o.partition_ms = width;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	append_series(db, 2, 0, 3 * width / STEP);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(ts_db_compact(db), 0);
	assert_int_equal(ts_db_close(db), 0);
	struct ts_ds_row *want = malloc(1000 * sizeof *want), *got = malloc(1000 * sizeof *got);
	int64_t t[400];
	uint64_t v[400];
	assert_true(want && got && width / STEP <= 400);
	for (int p = 0; p < 3; p++) {
		char path[4200];
		int64_t start = T0 + p * width; /* T0 is a multiple of 90 min too */
		snprintf(path, sizeof path, "%s/raw/%lld_%lld", dir, (long long)start,
			 (long long)(start + width));
		struct ts_env *env;
		struct ts_env_opts eo = { .map_bytes = 64u << 20 };
		assert_int_equal(ts_env_open(path, &eo, &env), 0);
		unsigned tiers, meta;
		assert_int_equal(ts_env_table(env, TS_FORMAT_PART_TABLE_TIERS, 0, &tiers), 0);
		assert_int_equal(ts_env_table(env, TS_FORMAT_PART_TABLE_META, 0, &meta), 0);
		struct ts_rtxn *r;
		assert_int_equal(ts_env_read_begin(env, &r), 0);
		const void *rv;
		size_t rl;
		assert_int_equal(ts_env_get(r, meta, TS_FORMAT_PART_META_TIERS,
					    strlen(TS_FORMAT_PART_META_TIERS), &rv, &rl),
				 0);
		assert_int_equal(rl, TS_FORMAT_TIERS_REC_LEN);
		assert_int_equal(ts_format_get_le32((const uint8_t *)rv + 53),
				 TS_FORMAT_TIERS_FLAG_5M);
		assert_int_equal(ts_format_get_le64((const uint8_t *)rv + 29), 0); /* 1h rows */
		struct ts_cursor *c;
		assert_int_equal(ts_cursor_open(r, tiers, &c), 0);
		assert_int_equal(ts_cursor_seek(c, NULL, 0), 0);
		const void *k, *bv;
		size_t kl, bl;
		assert_int_equal(ts_cursor_get(c, &k, &kl, &bv, &bl), 0);
		assert_int_equal(((const uint8_t *)k)[0], TS_FORMAT_TIER_RES_5M);
		struct ts_cold_block *b;
		assert_int_equal(ts_cold_open(bv, bl, &b), 0);
		struct ts_ds_agg ga, wa;
		assert_int_equal(ts_ds_tier_decode(b, 1, got, 1000, &ga), 0);
		size_t n = 0;
		for (int64_t j = p * width / STEP; j < (p + 1) * width / STEP; j++)
			if (sample_of(2, j, &v[n]))
				t[n++] = T0 + j * STEP;
		assert_int_equal(ts_ds_raw(t, v, n, TS_DS_RES_5M_MS, want, 1000, &wa), 0);
		assert_int_equal(wa.n_rows, width / TS_DS_RES_5M_MS);
		agg_eq(&ga, &wa, 2, 1);
		ts_cold_free(b);
		assert_int_equal(ts_cursor_next(c), TS_ENOTFOUND); /* one block, no 1h one */
		ts_cursor_close(c);
		ts_env_read_end(r);
		ts_env_close(env);
	}
	free(want);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_width, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
