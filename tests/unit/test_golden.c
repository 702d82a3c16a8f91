/*
 * Golden on-disk formats. tests/data/golden/db-v1/ is a database written once by this
 * file's writer mode (TS_GOLDEN_WRITE=<dir>) and committed; it is never regenerated.
 * It ends the way a crash does (no close), so it holds every format at once: index env
 * (series, postings, meta, metadata, head snapshots), partition envs of chunk records
 * (XOR payloads, out-of-order chunks), and WAL segments with records after the last
 * checkpoint. The test opens a copy with the current code and checks every sample of the
 * same deterministic workload bit-exact: a format change that breaks old data fails here.
 *
 * tests/data/golden/db-v3/ (TS_GOLDEN_WRITE_V3=<dir>) is the same workload in index
 * format 3 with cold data: series and head group rows, postings in delta blocks, a
 * partition converted to cold blocks, a partition holding a cold generation and hot
 * chunks written after it, and WAL records after the last checkpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/err.h"
#include "tsdb/tsdb.h"
#include "testutil.h"

#define N_SERIES 6
#define N_SAMPLES 400
#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

static const char *names[N_SERIES] = { "golden_counter_total", "golden_gauge",
				       "golden_counter_total", "golden_gauge",
				       "golden_special",       "golden_ooo" };
static const char *insts[N_SERIES] = { "a:9100", "a:9100", "b:9100", "b:9100", "a:9100", "a:9100" };

/* Sample i of series s: timestamps 15 s apart with jitter, crossing an hour partition. */
static void sample(int s, int i, int64_t *t, uint64_t *bits)
{
	*t = T0 + (int64_t)i * 15000 + (i * 7919 % 13) - 6;
	double v;
	switch (s) {
	case 0:
	case 2: v = (double)(i * (s + 3)) + (i > 250 ? -500.0 : 0.0); break; /* reset */
	case 1:
	case 3: v = 4096.0 * (1000 + (i * 37 % 101)) + 0.25 * s; break;
	case 4: {
		static const uint64_t sp[] = { 0x7ff0000000000002ULL, 0x8000000000000000ULL,
					       0x7ff8000000000001ULL, 0x7ff0000000000000ULL,
					       0xfff0000000000000ULL };
		if (i % 50 == 49) {
			*bits = sp[(i / 50) % 5];
			return;
		}
		v = 1.0 / (i + 1);
		break;
	}
	default: v = (double)i; break;
	}
	memcpy(bits, &v, 8);
}

/* Series 5 gets its odd samples late (out of order, inside the window). */
static int late(int s, int i)
{
	return s == 5 && i % 2 == 1 && i < N_SAMPLES - 20;
}

static void append_range(struct ts_db *db, int from, int to, int late_pass)
{
	for (int s = 0; s < N_SERIES; s++) {
		struct ts_label l[3] = { { "__name__", names[s], 8, (uint32_t)strlen(names[s]) },
					 { "instance", insts[s], 8, (uint32_t)strlen(insts[s]) },
					 { "job", "node", 3, 4 } };
		struct ts_sample smp[N_SAMPLES];
		uint32_t n = 0;
		for (int i = from; i < to; i++) {
			if (late(s, i) != late_pass)
				continue;
			uint64_t b;
			sample(s, i, &smp[n].t_ms, &b);
			memcpy(&smp[n].v, &b, 8);
			n++;
		}
		struct ts_series_in in = { l, 3, smp, n };
		struct ts_append_result r;
		assert_int_equal(ts_db_append(db, &in, 1, &r, NULL), 0);
		assert_int_equal(r.n_appended, n);
	}
}

/* Writes the golden workload into dir and ends like kill -9. Format 1 (cold == 0, what
 * db-v1 was written with): samples 0..300 checkpointed. Format 3 with cold data: 0..200
 * checkpointed and converted to cold, then 200..300 checkpointed as hot chunks. Then
 * 300..N_SAMPLES live only in the WAL. */
static int write_golden(const char *dir, int cold)
{
	struct ts_db *db;
	struct ts_db_opts o = { .partition_ms = 3600000,
				.ooo_window_ms = 3 * 3600000,
				.flush_interval_ms = 3600000,
				.checkpoint_interval_ms = 3600000 };
	if (ts_db_open(dir, &o, &db))
		return 1;
	struct ts_metadata md = {
		"golden_gauge", "A gauge for the golden file.", "bytes", 12, 28, 5, TS_MT_GAUGE
	};
	ts_db_set_metadata(db, &md, 1);
	const int cuts[2] = { cold ? 200 : 300, 300 };
	int from = 0;
	for (int k = 0; k < 2; k++) {
		if (cuts[k] == from)
			continue;
		append_range(db, from, cuts[k], 0);
		append_range(db, from, cuts[k], 1);
		if (ts_db_checkpoint(db) || (cold && k == 0 && ts_db_compact(db)))
			return 1;
		from = cuts[k];
	}
	append_range(db, 300, N_SAMPLES, 0);
	append_range(db, 300, N_SAMPLES, 1);
	_exit(0); /* the last records live only in the WAL */
}

/* Opens a copy of tests/data/golden/<name>, checks every sample, closes, reopens and
 * checks again. */
static void check_golden(const char *name)
{
	const char *src = getenv("TS_SRCDIR");
	assert_non_null(src);
	char dir[4096], cmd[9000];
	tu_mkdtemp(dir, sizeof dir, "golden");
	/* Work on a copy: recovery writes (WAL cut, checkpoint), the golden must not change. */
	snprintf(cmd, sizeof cmd, "cp -r '%s/tests/data/golden/%s/.' '%s/'", src, name, dir);
	assert_int_equal(system(cmd), 0);
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	for (int round = 0; round < 2; round++) {
		for (int s = 0; s < N_SERIES; s++) {
			struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", names[s] },
						  { TS_MATCH_EQ, "instance", insts[s] } };
			struct ts_series_set *set;
			assert_int_equal(
				ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0),
				0);
			assert_int_equal(ts_series_set_len(set), 1);
			struct ts_iter *it;
			assert_int_equal(ts_iter_new(set, 0, &it), 0);
			for (int i = 0; i < N_SAMPLES; i++) {
				int64_t t, et;
				double v;
				uint64_t b, eb;
				assert_int_equal(ts_iter_next(it), 1);
				ts_iter_at(it, &t, &v);
				b = tu_bits(v);
				sample(s, i, &et, &eb);
				if (t != et || b != eb)
					fail_msg(
						"series %d sample %d: got (%lld, %016llx) want (%lld, %016llx)",
						s, i, (long long)t, (unsigned long long)b,
						(long long)et, (unsigned long long)eb);
			}
			assert_int_equal(ts_iter_next(it), 0);
			ts_iter_free(it);
			ts_series_set_free(set);
		}
		struct ts_db_stats stats;
		ts_db_stats(db, &stats);
		assert_int_equal(stats.n_series, N_SERIES);
		assert_true(stats.n_partitions >= 2);
		/* Round 2: after a clean close and reopen of the recovered copy. */
		assert_int_equal(ts_db_close(db), 0);
		if (round == 0)
			assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	}
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_golden_db_v1(void **st)
{
	(void)st;
	check_golden("db-v1");
}

static void test_golden_db_v3(void **st)
{
	(void)st;
	check_golden("db-v3");
}

int main(void)
{
	const char *w = getenv("TS_GOLDEN_WRITE");
	if (w)
		return write_golden(w, 0);
	if ((w = getenv("TS_GOLDEN_WRITE_V3")))
		return write_golden(w, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_db_v1),
		cmocka_unit_test(test_golden_db_v3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
