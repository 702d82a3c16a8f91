/*
 * Unit tests for the engine's public API (tsdb/tsdb.h): append outcomes, selection by
 * every matcher type, iteration order and merging, chunk and partition cutting,
 * durability across close, checkpoint and crash (a forked child that _exits), and
 * allocation failure at every allocation of append and open.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "storage/chunk.h"
#include "storage/env.h"
#include "tsdb/tsdb.h"
#include "testutil.h"

#define L(n, v)                                                \
	{                                                      \
		n, v, (uint32_t)strlen(n), (uint32_t)strlen(v) \
	}

/* Appends n samples t0, t0+step, ... with value f(i) to one series. */
static int put(struct ts_db *db, const char *metric, const char *k, const char *v, int64_t t0,
	       int64_t step, int n, double base, struct ts_append_result *res)
{
	struct ts_label l[2] = { L("__name__", metric), L(k, v) };
	struct ts_sample *s = malloc(sizeof *s * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++) {
		s[i].t_ms = t0 + i * step;
		s[i].v = base + i;
	}
	struct ts_series_in in = { l, 2, s, (uint32_t)n };
	int rc = ts_db_append(db, &in, 1, res, NULL);
	free(s);
	return rc;
}

/* Selects with one matcher list and returns the number of series; *samples gets the
 * total count of samples iterated. */
static size_t count_sel(struct ts_db *db, const struct ts_matcher *m, size_t n, int64_t mint,
			int64_t maxt, size_t *samples)
{
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, m, n, mint, maxt, NULL, &set, NULL, 0), 0);
	size_t total = 0;
	for (size_t i = 0; i < ts_series_set_len(set); i++) {
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, i, &it), 0);
		int64_t prev = INT64_MIN;
		int rc;
		while ((rc = ts_iter_next(it)) == 1) {
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			assert_true(t > prev);
			assert_true(t >= mint && t <= maxt);
			prev = t;
			total++;
		}
		assert_int_equal(rc, 0);
		ts_iter_free(it);
	}
	size_t ns = ts_series_set_len(set);
	ts_series_set_free(set);
	if (samples)
		*samples = total;
	return ns;
}

static void test_append_select_iterate(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_append_result r;
	assert_int_equal(put(db, "up", "job", "a", 1000, 15000, 500, 0, &r), 0);
	assert_int_equal(r.n_appended, 500);
	assert_int_equal(r.n_new_series, 1);
	assert_int_equal(put(db, "up", "job", "b", 1000, 15000, 10, 0, &r), 0);
	assert_int_equal(put(db, "down", "job", "a", 1000, 15000, 10, 0, &r), 0);

	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "up" } };
	size_t ns;
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 2);
	assert_int_equal(ns, 510);
	/* A range cut: [1000+15000*10, 1000+15000*19] holds 10 samples of job a; job b's
	 * newest sample is older than the range, so b is not selected at all. */
	assert_int_equal(count_sel(db, m, 1, 151000, 286000, &ns), 1);
	assert_int_equal(ns, 10);

	/* Samples come back exactly, across several chunks (500 > 120). */
	struct ts_series_set *set;
	struct ts_matcher ma[] = { { TS_MATCH_EQ, "__name__", "up" }, { TS_MATCH_EQ, "job", "a" } };
	assert_int_equal(ts_db_select(db, ma, 2, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), 1);
	const struct ts_label *lab;
	uint32_t nl;
	assert_int_equal(ts_series_set_labels(set, 0, &lab, &nl), 0);
	assert_int_equal(nl, 2);
	assert_memory_equal(lab[1].value, "a", 1);
	struct ts_iter *it;
	assert_int_equal(ts_iter_new(set, 0, &it), 0);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(ts_iter_next(it), 1);
		int64_t t;
		double v;
		ts_iter_at(it, &t, &v);
		assert_int_equal(t, 1000 + 15000 * i);
		assert_true(v == i);
	}
	assert_int_equal(ts_iter_next(it), 0);
	ts_iter_free(it);
	/* Batch reads give exactly the sequence of ts_iter_next, across chunk edges. */
	assert_int_equal(ts_iter_new(set, 0, &it), 0);
	int64_t tb[37];
	double vb[37];
	int got, total_read = 0;
	while ((got = ts_iter_read(it, tb, vb, 37)) > 0) {
		for (int k = 0; k < got; k++) {
			assert_int_equal(tb[k], 1000 + 15000 * (total_read + k));
			assert_true(vb[k] == total_read + k);
		}
		total_read += got;
	}
	assert_int_equal(got, 0);
	assert_int_equal(total_read, 500);
	ts_iter_free(it);
	/* Seek. */
	assert_int_equal(ts_iter_new(set, 0, &it), 0);
	assert_int_equal(ts_iter_seek(it, 1000 + 15000 * 300 - 1), 1);
	int64_t t;
	double v;
	ts_iter_at(it, &t, &v);
	assert_int_equal(t, 1000 + 15000 * 300);
	ts_iter_free(it);
	/* Raw chunks: 500 samples in chunks of at most 120, in order. */
	struct ts_chunk_it *ci;
	assert_int_equal(ts_chunk_it_new(set, 0, &ci), 0);
	struct ts_chunk_ref c;
	uint32_t total = 0;
	int64_t prev_max = INT64_MIN;
	while (ts_chunk_it_next(ci, &c) == 1) {
		assert_true(c.n_samples <= 120);
		assert_true(c.min_t > prev_max);
		prev_max = c.max_t;
		total += c.n_samples;
	}
	assert_int_equal(total, 500);
	ts_chunk_it_free(ci);
	ts_series_set_free(set);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_matchers(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_append_result r;
	put(db, "m", "env", "prod", 0, 1000, 1, 0, &r);
	put(db, "m", "env", "dev", 0, 1000, 1, 0, &r);
	put(db, "m", "other", "x", 0, 1000, 1, 0, &r); /* no env label */
	put(db, "n", "env", "prod", 0, 1000, 1, 0, &r);
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: series only in memory; pass 1: after a checkpoint, from the postings. */
		struct ts_matcher eq[] = { { TS_MATCH_EQ, "__name__", "m" },
					   { TS_MATCH_EQ, "env", "prod" } };
		assert_int_equal(count_sel(db, eq, 2, INT64_MIN, INT64_MAX, NULL), 1);
		struct ts_matcher neq[] = { { TS_MATCH_EQ, "__name__", "m" },
					    { TS_MATCH_NEQ, "env", "prod" } };
		assert_int_equal(count_sel(db, neq, 2, INT64_MIN, INT64_MAX, NULL), 2);
		struct ts_matcher re[] = { { TS_MATCH_RE, "env", "pro.|de.*" } };
		assert_int_equal(count_sel(db, re, 1, INT64_MIN, INT64_MAX, NULL), 3);
		struct ts_matcher anch[] = { { TS_MATCH_RE, "env", "ro" } }; /* fully anchored */
		assert_int_equal(count_sel(db, anch, 1, INT64_MIN, INT64_MAX, NULL), 0);
		struct ts_matcher nre[] = { { TS_MATCH_EQ, "__name__", "m" },
					    { TS_MATCH_NRE, "env", "p.*" } };
		assert_int_equal(count_sel(db, nre, 2, INT64_MIN, INT64_MAX, NULL), 2);
		struct ts_matcher absent[] = { { TS_MATCH_EQ, "__name__", "m" },
					       { TS_MATCH_EQ, "env", "" } };
		assert_int_equal(count_sel(db, absent, 2, INT64_MIN, INT64_MAX, NULL), 1);
		struct ts_matcher present[] = { { TS_MATCH_RE, "env", ".+" } };
		assert_int_equal(count_sel(db, present, 1, INT64_MIN, INT64_MAX, NULL), 3);
		struct ts_matcher all[] = { { TS_MATCH_RE, "__name__", ".*" } };
		assert_int_equal(count_sel(db, all, 1, INT64_MIN, INT64_MAX, NULL), 4);
		struct ts_matcher none[] = { { TS_MATCH_EQ, "__name__", "zzz" } };
		assert_int_equal(count_sel(db, none, 1, INT64_MIN, INT64_MAX, NULL), 0);
		assert_int_equal(ts_db_checkpoint(db), 0);
	}
	struct ts_matcher bad[] = { { TS_MATCH_RE, "env", "(unclosed" } };
	struct ts_series_set *set;
	char msg[256] = "";
	assert_int_equal(ts_db_select(db, bad, 1, 0, 1, NULL, &set, msg, sizeof msg), TS_EINVALID);
	assert_non_null(strstr(msg, "(unclosed"));
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_duplicates_and_order(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_append_result r;
	assert_int_equal(put(db, "c", "k", "v", 1000, 1000, 10, 0, &r), 0);
	/* An exact resend is accepted and not stored twice. */
	assert_int_equal(put(db, "c", "k", "v", 1000, 1000, 10, 0, &r), 0);
	assert_int_equal(r.n_duplicate, 10);
	assert_int_equal(r.n_appended, 0);
	assert_int_equal(r.first_err, 0);
	/* Same timestamp, other value: rejected, named. */
	assert_int_equal(put(db, "c", "k", "v", 5000, 1000, 1, 99, &r), 0);
	assert_int_equal(r.n_conflict, 1);
	assert_int_equal(r.first_err, TS_EDUPLICATE);
	/* Older timestamp not stored before, no OOO window: out of order. */
	assert_int_equal(put(db, "c", "k", "v", 4500, 1000, 1, 0, &r), 0);
	assert_int_equal(r.n_out_of_order, 1);
	/* A batch mixing good and bad series stores the good ones. */
	struct ts_label good[] = { L("__name__", "g"), L("a", "1") };
	struct ts_label bad[] = { L("a", "1") };
	struct ts_sample s = { 100, 1.5 };
	struct ts_series_in in[] = { { bad, 1, &s, 1 }, { good, 2, &s, 1 } };
	int rcs[2];
	assert_int_equal(ts_db_append(db, in, 2, &r, rcs), 0);
	assert_int_equal(r.n_invalid_series, 1);
	assert_int_equal(r.n_appended, 1);
	assert_int_equal(rcs[0], TS_EINVALID);
	assert_int_equal(rcs[1], 0);
	assert_int_equal(r.first_err_series, 0);
	size_t ns;
	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "c" } };
	count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns);
	assert_int_equal(ns, 10);
	/* Resends of samples whose chunks are already in LMDB: exact ones are duplicates,
	 * other values are conflicts (and the stored value stays). */
	assert_int_equal(put(db, "c", "k", "v", 11000, 1000, 300, 10, &r), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(put(db, "c", "k", "v", 1000, 1000, 10, 0, &r), 0);
	assert_int_equal(r.n_duplicate, 10);
	assert_int_equal(r.n_appended, 0);
	assert_int_equal(put(db, "c", "k", "v", 12000, 1000, 5, 99, &r), 0);
	assert_int_equal(r.n_conflict, 5);
	assert_int_equal(r.n_appended, 0);
	count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns);
	assert_int_equal(ns, 310);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_out_of_order_window(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .ooo_window_ms = 60000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_append_result r;
	/* Even seconds in order, then odd seconds late, then far too late. */
	assert_int_equal(put(db, "o", "k", "v", 100000, 2000, 50, 0, &r), 0);
	assert_int_equal(put(db, "o", "k", "v", 150001, 2000, 25, 1000, &r), 0);
	assert_int_equal(r.n_appended, 25);
	assert_int_equal(put(db, "o", "k", "v", 1000, 1000, 1, 0, &r), 0);
	assert_int_equal(r.n_too_old, 1);
	/* Resend of an out-of-order sample is a duplicate. */
	assert_int_equal(put(db, "o", "k", "v", 150001, 2000, 1, 1000, &r), 0);
	assert_int_equal(r.n_duplicate, 1);
	for (int round = 0; round < 3; round++) {
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "o" } };
		size_t ns;
		assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns),
				 1); /* checks order */
		assert_int_equal(ns, 75);
		if (round == 0)
			assert_int_equal(ts_db_checkpoint(db), 0);
		if (round == 1) {
			assert_int_equal(ts_db_close(db), 0);
			assert_int_equal(ts_db_open(dir, &o, &db), 0);
		}
	}
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_special_values_bit_exact(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	const uint64_t bits[] = { 0x7ff0000000000002ULL, 0x8000000000000000ULL,
				  0x7ff8000000000001ULL, 0x7ff0000000000000ULL,
				  0xfff0000000000000ULL, 0x3ff0000000000000ULL,
				  0x0000000000000001ULL };
	struct ts_label l[] = { L("__name__", "special") };
	struct ts_sample s[7];
	for (int i = 0; i < 7; i++) {
		s[i].t_ms = -5000 + i * 1000; /* negative timestamps too */
		s[i].v = tu_f64(bits[i]);
	}
	struct ts_series_in in = { l, 1, s, 7 };
	struct ts_append_result r;
	assert_int_equal(ts_db_append(db, &in, 1, &r, NULL), 0);
	assert_int_equal(r.n_appended, 7);
	for (int round = 0; round < 2; round++) {
		struct ts_series_set *set;
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "special" } };
		assert_int_equal(ts_db_select(db, m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0),
				 0);
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, 0, &it), 0);
		for (int i = 0; i < 7; i++) {
			assert_int_equal(ts_iter_next(it), 1);
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			assert_int_equal(t, -5000 + i * 1000);
			assert_int_equal(tu_bits(v), bits[i]);
		}
		ts_iter_free(it);
		ts_series_set_free(set);
		assert_int_equal(ts_db_close(db), 0);
		assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	}
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_partitions_and_limits(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .partition_ms = 3600000,
				.retention_ms = 86400000LL * 365 * 10,
				.max_future_ms = 600000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_append_result r;
	/* 3 hours of 10 s samples: chunks never cross an hour boundary. */
	int64_t t0 = 1700000000000LL - 1700000000000LL % 3600000;
	assert_int_equal(put(db, "p", "k", "v", t0 + 1800000, 10000, 1080, 0, &r), 0);
	assert_int_equal(r.n_appended, 1080);
	assert_int_equal(ts_db_checkpoint(db), 0);
	struct ts_series_set *set;
	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "p" } };
	assert_int_equal(ts_db_select(db, m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	struct ts_chunk_it *ci;
	assert_int_equal(ts_chunk_it_new(set, 0, &ci), 0);
	struct ts_chunk_ref c;
	uint32_t total = 0;
	while (ts_chunk_it_next(ci, &c) == 1) {
		assert_int_equal(c.min_t / 3600000, c.max_t / 3600000);
		total += c.n_samples;
	}
	assert_int_equal(total, 1080);
	ts_chunk_it_free(ci);
	ts_series_set_free(set);
	struct ts_db_stats stats;
	ts_db_stats(db, &stats);
	assert_true(stats.n_partitions >= 3);
	/* Far future and too old are rejected by the wall clock limits. */
	assert_int_equal(put(db, "p", "k", "w", 4102444800000LL, 1000, 1, 0, &r), 0);
	assert_int_equal(r.n_too_future, 1);
	assert_int_equal(put(db, "p", "k", "w", 1000, 1000, 1, 0, &r), 0);
	assert_int_equal(r.n_too_old, 1);
	/* Reopen keeps the partition width the db was created with. */
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	size_t ns;
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 1);
	assert_int_equal(ns, 1080);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A child appends and dies without closing; the parent finds every acknowledged sample. */
static void test_crash_recovery(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct ts_db *db;
			struct ts_db_opts o = { .checkpoint_wal_bytes = 4096,
						.flush_interval_ms = 10 };
			if (ts_db_open(dir, &o, &db))
				_exit(2);
			struct ts_append_result r;
			for (int i = 0; i < 50; i++) {
				char v[16];
				snprintf(v, sizeof v, "%d", i % 7);
				if (put(db, "crash", "s", v, (int64_t)(round * 1000 + i) * 1000, 1,
					1, (double)i, &r))
					_exit(3);
				if (i == 25 && round == 1)
					ts_db_checkpoint(db);
			}
			_exit(0); /* no close: like kill -9 after the last ack */
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		struct ts_db *db;
		assert_int_equal(ts_db_open(dir, NULL, &db), 0);
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "crash" } };
		size_t ns;
		assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 7);
		assert_int_equal(ns, (size_t)(round + 1) * 50);
		assert_int_equal(ts_db_close(db), 0);
	}
	assert_int_equal(tu_rmtree(dir), 0);
}

struct thr {
	struct ts_db *db;
	int id;
	int rc;
};

static void *appender(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < 200 && !t->rc; i++) {
		struct ts_label l[3][2];
		struct ts_sample s[3];
		struct ts_series_in in[3];
		char own[16];
		snprintf(own, sizeof own, "t%d", t->id);
		const char *names[3] = { own, "shared", own };
		const char *vals[3] = { "x", "y", "z" };
		for (int k = 0; k < 3; k++) {
			l[k][0] = (struct ts_label)L("__name__", names[k]);
			l[k][1] = (struct ts_label)L("k", vals[k]);
			s[k].t_ms = i * 1000 + t->id; /* shared series: interleaved, may be OOO */
			s[k].v = i;
			in[k] = (struct ts_series_in){ l[k], 2, &s[k], 1 };
		}
		struct ts_append_result r;
		t->rc = ts_db_append(t->db, in, 3, &r, NULL);
	}
	return NULL;
}

static void test_concurrent_appenders(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .flush_interval_ms = 5,
				.checkpoint_interval_ms = 20,
				.ooo_window_ms = 1000000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	pthread_t th[2];
	struct thr t[2] = { { db, 0, 0 }, { db, 1, 0 } };
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, appender, &t[i]);
	/* Readers run alongside writers and the writer thread. */
	for (int i = 0; i < 20; i++) {
		struct ts_matcher m[] = { { TS_MATCH_RE, "__name__", ".+" } };
		count_sel(db, m, 1, INT64_MIN, INT64_MAX, NULL);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	struct ts_matcher m[] = { { TS_MATCH_RE, "__name__", ".+" } };
	size_t ns;
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 5);
	assert_int_equal(ns, 200 * 6);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 5);
	assert_int_equal(ns, 200 * 6);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* Every allocation of append and of open may fail: the call reports -ENOMEM (or
 * succeeds), nothing leaks (ASan), and the db stays usable and consistent. */
static void test_alloc_failures(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_append_result r;
	int ok_at = 0;
	for (unsigned long n = 1; n < 200 && !ok_at; n++) {
		char v[16];
		snprintf(v, sizeof v, "s%lu", n);
		ts_mem_fail_at(n, 0);
		int rc = put(db, "af", "k", v, 1000, 1000, 300, 0, &r);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (!fired) {
			assert_int_equal(rc, 0);
			ok_at = (int)n;
		} else {
			/* -ENOMEM before the WAL write changes nothing; after it the db refuses
			 * writes (TS_EIO) until reopened, and reopening restores the logged batch. */
			assert_true(rc == 0 || rc == -ENOMEM || rc == TS_EIO);
			if (rc == TS_EIO) {
				assert_int_equal(ts_db_close(db), TS_EIO);
				assert_int_equal(ts_db_open(dir, NULL, &db), 0);
			}
		}
	}
	assert_true(ok_at > 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_close(db), 0);
	/* Open (with recovery work to do) under failure at every allocation. */
	for (unsigned long n = 1;; n++) {
		ts_mem_fail_at(n, 0);
		int rc = ts_db_open(dir, NULL, &db);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (rc == 0) {
			assert_int_equal(ts_db_close(db), 0);
			if (!fired)
				break;
		} else {
			assert_true(fired);
		}
		assert_true(n < 100000);
	}
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "af" } };
	size_t ns;
	size_t nser = count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns);
	assert_true(nser >= 1);
	assert_int_equal(ns % 300, 0); /* a batch of one series is all or nothing */
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_second_writer_is_busy(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct ts_db *other;
		_exit(ts_db_open(dir, NULL, &other) == TS_EBUSY ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static int md_count(void *arg, const struct ts_metadata *md)
{
	int *n = arg;
	assert_true(md->metric_len > 0);
	(*n)++;
	return 0;
}

static void test_label_lookups_and_metadata(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	struct ts_append_result r;
	char longv[600];
	memset(longv, 'x', sizeof longv - 1);
	longv[sizeof longv - 1] = 0;
	put(db, "m1", "env", "prod", 0, 1000, 1, 0, &r);
	put(db, "m1", "env", "dev", 0, 1000, 1, 0, &r);
	put(db, "m2", "zone", "a", 0, 1000, 1, 0, &r);
	put(db, "m2", "env", longv, 0, 1000, 1, 0, &r);
	longv[300] = 'y'; /* a second long value sharing the kept prefix */
	put(db, "m2", "env", longv, 0, 1000, 1, 0, &r);
	struct ts_metadata md[] = { { "m1", "help one", "", 2, 8, 0, TS_MT_COUNTER },
				    { "m2", "help two", "bytes", 2, 8, 5, TS_MT_GAUGE } };
	assert_int_equal(ts_db_set_metadata(db, md, 2), 0);
	for (int pass = 0; pass < 3; pass++) {
		struct ts_strlist names = { 0 }, vals = { 0 }, sel = { 0 };
		assert_int_equal(
			ts_db_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &names, NULL, 0), 0);
		assert_int_equal(names.n, 3);
		assert_string_equal(names.v[0], "__name__");
		assert_string_equal(names.v[1], "env");
		assert_string_equal(names.v[2], "zone");
		assert_int_equal(ts_db_label_values(db, "env", NULL, 0, INT64_MIN, INT64_MAX, &vals,
						    NULL, 0),
				 0);
		assert_int_equal(vals.n, 4); /* dev, prod, and both full long values */
		assert_string_equal(vals.v[0], "dev");
		assert_string_equal(vals.v[1], "prod");
		assert_int_equal(vals.len[2], 599);
		assert_int_equal(vals.len[3], 599);
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "m1" } };
		assert_int_equal(
			ts_db_label_values(db, "env", m, 1, INT64_MIN, INT64_MAX, &sel, NULL, 0),
			0);
		assert_int_equal(sel.n, 2);
		int n = 0;
		assert_int_equal(ts_db_metadata(db, NULL, md_count, &n), 0);
		assert_int_equal(n, 2);
		n = 0;
		assert_int_equal(ts_db_metadata(db, "m2", md_count, &n), 0);
		assert_int_equal(n, 1);
		ts_strlist_free(&names);
		ts_strlist_free(&vals);
		ts_strlist_free(&sel);
		/* pass 1 reads the postings after a checkpoint; pass 2 after a reopen. */
		if (pass == 0)
			assert_int_equal(ts_db_checkpoint(db), 0);
		if (pass == 1) {
			assert_int_equal(ts_db_close(db), 0);
			assert_int_equal(ts_db_open(dir, NULL, &db), 0);
		}
	}
	struct ts_metadata bad = { "", "", "", 0, 0, 0, TS_MT_GAUGE };
	assert_int_equal(ts_db_set_metadata(db, &bad, 1), TS_EINVALID);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* Flips one payload byte of every stored record of a partition env: hot chunks (in the
 * XOR payload) and cold blocks (in the compressed body, the last byte). */
static void corrupt_partition(const char *pdir)
{
	struct ts_env *env;
	assert_int_equal(ts_env_open(pdir, NULL, &env), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	const char *tables[] = { "chunks", "cold" };
	for (int ti = 0; ti < 2; ti++) {
		unsigned t;
		assert_int_equal(ts_env_table(env, tables[ti], 0, &t), 0);
		struct ts_rtxn *r;
		assert_int_equal(ts_env_read_begin(env, &r), 0);
		struct ts_cursor *c;
		assert_int_equal(ts_cursor_open(r, t, &c), 0);
		for (int rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
			const void *k, *v;
			size_t kl, vl;
			assert_int_equal(ts_cursor_get(c, &k, &kl, &v, &vl), 0);
			uint8_t copy[65536];
			assert_true(vl <= sizeof copy && vl > TS_CHUNK_HDR_LEN + 4);
			memcpy(copy, v, vl);
			copy[ti == 0 ? TS_CHUNK_HDR_LEN + 3 : vl - 1] ^= 0x10;
			assert_int_equal(ts_batch_put(b, t, k, kl, copy, vl), 0);
		}
		ts_cursor_close(c);
		ts_env_read_end(r);
	}
	assert_true(ts_batch_len(b) > 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_free(b);
	ts_env_close(env);
}

static void test_corrupt_chunk_and_torn_wal(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .partition_ms = 86400000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_append_result r;
	assert_int_equal(put(db, "cc", "k", "v", 1000, 1000, 500, 0, &r), 0);
	assert_int_equal(ts_db_close(db), 0);
	/* Bit-flipped chunk records are reported, never decoded into wrong samples. */
	char pdir[4200];
	snprintf(pdir, sizeof pdir, "%s/raw/0_86400000", dir);
	corrupt_partition(pdir);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_series_set *set;
	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "cc" } };
	assert_int_equal(ts_db_select(db, m, 1, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	assert_int_equal(ts_series_set_len(set), 1);
	struct ts_iter *it = NULL;
	assert_int_equal(ts_iter_new(set, 0, &it), TS_ECORRUPT);
	ts_series_set_free(set);
	/* Appends after the corrupt region still work, and a torn WAL tail is cut, not fatal. */
	assert_int_equal(put(db, "ok", "k", "v", 1000, 1000, 10, 0, &r), 0);
	assert_int_equal(ts_db_close(db), 0);
	/* A child leaves WAL records behind (no close, like kill -9). Fork with no db open:
	 * a forked child has none of the parent's threads. */
	pid_t pid = fork();
	if (pid == 0) {
		struct ts_db *child;
		if (ts_db_open(dir, &o, &child))
			_exit(2);
		if (put(child, "torn", "k", "v", 1000, 1000, 20, 0, &r))
			_exit(3);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "for f in '%s'/wal/*; do printf 'garbage-tail' >> \"$f\"; done",
		 dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	size_t ns;
	struct ts_matcher mok[] = { { TS_MATCH_EQ, "__name__", "ok" } };
	assert_int_equal(count_sel(db, mok, 1, INT64_MIN, INT64_MAX, &ns), 1);
	assert_int_equal(ns, 10);
	struct ts_matcher mtorn[] = { { TS_MATCH_EQ, "__name__", "torn" } };
	assert_int_equal(count_sel(db, mtorn, 1, INT64_MIN, INT64_MAX, &ns), 1);
	assert_int_equal(ns, 20);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static int count_dirs(const char *dir)
{
	char cmd[4300];
	snprintf(cmd, sizeof cmd, "ls -1 '%s/raw' | wc -l", dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void test_retention_removes_partitions(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .partition_ms = 3600000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000;
	struct ts_append_result r;
	/* Five hours of old data (five partitions), and a recent series. */
	assert_int_equal(put(db, "old", "k", "v", now_ms - 5 * 3600000, 60000, 300, 0, &r), 0);
	assert_int_equal(put(db, "new", "k", "v", now_ms - 60000, 1000, 10, 0, &r), 0);
	assert_int_equal(ts_db_close(db), 0);
	assert_true(count_dirs(dir) >= 5);
	/* Reopened with one hour of retention: whole partitions past it disappear. */
	o.retention_ms = 3600000;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	/* A reader holding a snapshot keeps its partitions usable while they are dropped. */
	struct ts_series_set *held;
	struct ts_matcher mo[] = { { TS_MATCH_EQ, "__name__", "old" } };
	assert_int_equal(ts_db_select(db, mo, 1, INT64_MIN, INT64_MAX, NULL, &held, NULL, 0), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	struct ts_iter *it;
	assert_int_equal(ts_iter_new(held, 0, &it), 0);
	int n_old = 0;
	while (ts_iter_next(it) == 1)
		n_old++;
	assert_true(n_old > 0);
	ts_iter_free(it);
	ts_series_set_free(held);
	assert_true(count_dirs(dir) <= 2);
	size_t ns;
	count_sel(db, mo, 1, INT64_MIN, INT64_MAX, &ns);
	assert_true(ns < 120); /* at most the part in a partition not wholly expired */
	struct ts_matcher mn[] = { { TS_MATCH_EQ, "__name__", "new" } };
	assert_int_equal(count_sel(db, mn, 1, INT64_MIN, INT64_MAX, &ns), 1);
	assert_int_equal(ns, 10);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

static void test_compaction(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .partition_ms = 3600000, .ooo_window_ms = 600000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	/* 200 series x 3 hours, in many flushes, all in partitions long closed. */
	int64_t t0 = 1600000000000LL - 1600000000000LL % 3600000;
	for (int step = 0; step < 720; step += 60) {
		for (int k = 0; k < 200; k++) {
			char v[16];
			snprintf(v, sizeof v, "s%d", k);
			struct ts_append_result r;
			assert_int_equal(put(db, "cmp", "k", v, t0 + (int64_t)step * 15000, 15000,
					     60, (double)k, &r),
					 0);
		}
		assert_int_equal(ts_db_checkpoint(db), 0);
	}
	struct ts_db_stats before, after;
	ts_db_stats(db, &before);
	struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "cmp" } };
	struct ts_series_set *held;
	assert_int_equal(ts_db_select(db, m, 1, INT64_MIN, INT64_MAX, NULL, &held, NULL, 0), 0);
	assert_int_equal(ts_db_compact(db), 0);
	ts_db_stats(db, &after);
	assert_true(after.partitions_bytes < before.partitions_bytes);
	/* A set taken before the swap still reads the old envs. */
	size_t n_held = 0;
	for (size_t i = 0; i < ts_series_set_len(held); i++) {
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(held, i, &it), 0);
		while (ts_iter_next(it) == 1)
			n_held++;
		ts_iter_free(it);
	}
	ts_series_set_free(held);
	assert_int_equal(n_held, 200 * 720);
	size_t ns;
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 200);
	assert_int_equal(ns, 200 * 720);
	/* A late write into a compacted partition clears the mark; compaction runs again. */
	struct ts_append_result r;
	assert_int_equal(put(db, "late", "k", "v", t0 + 1000, 1000, 5, 0, &r), 0);
	assert_int_equal(ts_db_checkpoint(db), 0);
	assert_int_equal(ts_db_compact(db), 0);
	struct ts_matcher ml[] = { { TS_MATCH_EQ, "__name__", "late" } };
	assert_int_equal(count_sel(db, ml, 1, INT64_MIN, INT64_MAX, &ns), 1);
	assert_int_equal(ns, 5);
	assert_int_equal(ts_db_close(db), 0);
	/* A crash between the two renames: the next open restores the partition. */
	char part[1200], cmd[4000];
	snprintf(part, sizeof part, "%.1000s/raw/%lld_%lld", dir, (long long)t0,
		 (long long)(t0 + 3600000));
	snprintf(cmd, sizeof cmd, "mv '%s' '%s.old' && mkdir '%s.compact'", part, part, part);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 200);
	assert_int_equal(ns, 200 * 720);
	assert_int_equal(ts_db_close(db), 0);
	snprintf(cmd, sizeof cmd, "test ! -e '%s.old' && test ! -e '%s.compact'", part, part);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* Heads of series that stopped are sealed at a checkpoint (their memory freed) and keep
 * their newest timestamp across restarts: queries over later ranges skip them, and a
 * conflicting resend to them is still rejected. */
static void test_idle_series_after_restart(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .ooo_window_ms = 86400000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_append_result r;
	/* 50 pods live for the first 4 minutes; one lives for 10,000 s (well past the
	 * idle limit of an hour behind the newest data). */
	for (int k = 0; k < 50; k++) {
		char v[16];
		snprintf(v, sizeof v, "dead%d", k);
		assert_int_equal(put(db, "churn", "pod", v, 1000, 1000, 240, 0, &r), 0);
	}
	assert_int_equal(put(db, "churn", "pod", "alive", 1000, 5000, 2000, 0, &r), 0);
	struct ts_db_stats before, after;
	ts_db_stats(db, &before);
	assert_int_equal(ts_db_checkpoint(db), 0);
	ts_db_stats(db, &after);
	assert_int_equal(before.n_head_chunks, 51);
	assert_int_equal(after.n_head_chunks, 1); /* the dead pods' heads were sealed */
	assert_int_equal(ts_db_close(db), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ts_db_open(dir, &o, &db), 0);
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "churn" } };
		size_t ns;
		/* Only the live pod has samples after t = 300 s. */
		assert_int_equal(count_sel(db, m, 1, 300000, INT64_MAX, &ns), 1);
		assert_int_equal(ns, 1940);
		assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 51);
		assert_int_equal(ns, 50 * 240 + 2000);
		/* A conflicting resend to a dead pod is rejected, an exact one is a duplicate. */
		assert_int_equal(put(db, "churn", "pod", "dead7", 5000, 1000, 1, 99, &r), 0);
		assert_int_equal(r.n_conflict, 1);
		assert_int_equal(put(db, "churn", "pod", "dead7", 5000, 1000, 1, 4, &r), 0);
		assert_int_equal(r.n_duplicate, 1);
		assert_int_equal(ts_db_close(db), 0);
	}
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A label count the limits allow (--max-labels above the engine's stack arrays) is
 * indexed and looked up: the flush once failed on it for ever ("corrupt data"). */
static void test_many_labels(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db_opts o = { .max_labels = 1000 };
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	enum { N = 300 };
	static char names[N][8];
	struct ts_label l[N];
	l[0] = (struct ts_label){ "__name__", "wide", 8, 4 };
	for (int i = 1; i < N; i++) {
		snprintf(names[i], sizeof names[i], "t%03d", i);
		l[i] = (struct ts_label){ names[i], "v", 4, 1 };
	}
	struct ts_sample smp = { 1000, 1.0 };
	struct ts_series_in in = { l, N, &smp, 1 };
	struct ts_append_result res;
	assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
	assert_int_equal(res.n_appended, 1);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ts_db_checkpoint(db), 0);
		struct ts_strlist names_out = { 0 };
		assert_int_equal(
			ts_db_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &names_out, NULL, 0),
			0);
		assert_int_equal(names_out.n, N);
		ts_strlist_free(&names_out);
		struct ts_matcher m = { TS_MATCH_EQ, "t299", "v" };
		size_t ns;
		assert_int_equal(count_sel(db, &m, 1, INT64_MIN, INT64_MAX, &ns), 1);
		assert_int_equal(ts_db_close(db), 0);
		assert_int_equal(ts_db_open(dir, &o, &db), 0);
	}
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* Out-of-order samples cut into a chunk and flushed while the series' open chunk still
 * spans their times: a resend is a duplicate and a different value a conflict, after
 * the flush and after a crash-free reopen, though memory no longer holds them (the open
 * chunk does not, the out-of-order buffer was cut). Before, the look-up stopped at the
 * open chunk's span and such a sample was taken as new: stored twice, and a conflicting
 * value accepted. */
static void test_ooo_flushed_inside_open_chunk(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .ooo_window_ms = 600000,
				.flush_interval_ms = 3600000,
				.checkpoint_interval_ms = 3600000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_append_result r;
	/* An open chunk over [T, T + 200 s] (even seconds), then 40 odd seconds late: the
	 * out-of-order buffer is cut at TS_OOO_CUT (32) samples, and flushed. */
	const int64_t T = 1700000000000;
	assert_int_equal(put(db, "x", "k", "v", T, 2000, 101, 0, &r), 0);
	assert_int_equal(put(db, "x", "k", "v", T + 1000, 2000, 40, 1000, &r), 0);
	assert_int_equal(r.n_appended, 40);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ts_db_checkpoint(db), 0);
		/* The first odd second again: a duplicate. With another value: a conflict. */
		assert_int_equal(put(db, "x", "k", "v", T + 1000, 2000, 1, 1000, &r), 0);
		assert_int_equal(r.n_duplicate, 1);
		assert_int_equal(r.n_appended, 0);
		assert_int_equal(put(db, "x", "k", "v", T + 1000, 2000, 1, 5555, &r), 0);
		assert_int_equal(r.n_conflict, 1);
		assert_int_equal(r.n_appended, 0);
		struct ts_matcher m[] = { { TS_MATCH_EQ, "__name__", "x" } };
		size_t ns;
		assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 1);
		assert_int_equal(ns, 141);
		assert_int_equal(ts_db_close(db), 0);
		assert_int_equal(ts_db_open(dir, &o, &db), 0);
	}
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

/* Appending through refs: a ref comes back for every series its labels found or made
 * (none for refused labels), appends through it skip the labels (NULL here), a ref and
 * labels of one series in one call keep their order, the series limit still applies to
 * a series made earlier but never logged, and what went in by ref is read back, across
 * a reopen, under its labels. */
static void test_append_refs(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "tsdb");
	struct ts_db *db;
	struct ts_db_opts o = { .sync = TS_WAL_SYNC_NEVER,
				.max_series = 3,
				.max_future_ms = 3600000 };
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct ts_label a[] = { L("__name__", "m"), L("k", "a") };
	struct ts_label b[] = { L("k", "b"), L("__name__", "m") }; /* not canonical order */
	struct ts_label bad[] = { L("__name__", "m"), L("k", "\xff") };
	struct ts_sample s1[] = { { 1000, 1 } }, s2[] = { { 2000, 2 } }, s3[] = { { 3000, 3 } };
	struct ts_series_in in[] = { { a, 2, s1, 1 }, { b, 2, s1, 1 }, { bad, 2, s1, 1 } };
	ts_series_ref refs[3] = { 0 };
	int rc[3];
	struct ts_append_result r;
	assert_int_equal(ts_db_append_refs(db, in, 3, NULL, refs, &r, rc), 0);
	assert_int_equal(r.n_appended, 2);
	assert_int_equal(r.n_invalid_series, 1);
	assert_true(refs[0] && refs[1] && refs[0] != refs[1]);
	assert_int_equal(refs[2], 0);
	assert_int_not_equal(rc[2], 0);

	/* By ref alone, then a ref and the labels of the same series in one call. */
	struct ts_series_in byref[] = { { NULL, 0, s2, 1 }, { NULL, 0, s2, 1 } };
	ts_series_ref r2[2] = { refs[0], refs[1] };
	assert_int_equal(ts_db_append_refs(db, byref, 2, NULL, r2, &r, NULL), 0);
	assert_int_equal(r.n_appended, 2);
	assert_int_equal(r.n_new_series, 0);
	assert_true(r2[0] == refs[0] && r2[1] == refs[1]);
	struct ts_sample s4[] = { { 4000, 4 } };
	struct ts_series_in mixed[] = { { NULL, 0, s3, 1 }, { a, 2, s4, 1 } };
	ts_series_ref r3[2] = { refs[0], 0 };
	assert_int_equal(ts_db_append_refs(db, mixed, 2, NULL, r3, &r, NULL), 0);
	assert_int_equal(r.n_appended, 2);
	assert_int_equal(r.n_out_of_order, 0);
	assert_true(r3[1] == refs[0]);

	/* Look-up only: canonical labels of a known series, the same labels out of order,
	 * unknown labels. Marks start clear and keep what is set. */
	struct ts_label b_sorted[] = { L("__name__", "m"), L("k", "b") };
	struct ts_label unknown[] = { L("__name__", "m"), L("k", "zz") };
	struct ts_series_in look[] = { { a, 2, NULL, 0 },
				       { b, 2, NULL, 0 },
				       { b_sorted, 2, NULL, 0 },
				       { unknown, 2, NULL, 0 } };
	ts_series_ref lr[4];
	assert_int_equal(ts_db_lookup_refs(db, look, 4, lr), 0);
	assert_true(lr[0] == refs[0] && lr[1] == 0 && lr[2] == refs[1] && lr[3] == 0);
	assert_int_equal(ts_series_ref_marks(lr[0]), 0);
	ts_series_ref_mark(lr[0], 1);
	ts_series_ref_mark(lr[0], 4);
	assert_int_equal(ts_series_ref_marks(lr[0]), 5);
	assert_int_equal(ts_series_ref_marks(lr[2]), 0);

	/* A new series whose only sample is refused is made but not logged: its ref is
	 * given, and the series limit applies when a sample comes through the ref. */
	struct ts_label c[] = { L("__name__", "m"), L("k", "c") };
	struct ts_label d[] = { L("__name__", "m"), L("k", "d") };
	struct ts_sample late[] = { { (int64_t)time(NULL) * 1000 + 86400000, 1 } };
	struct ts_series_in cin[] = { { c, 2, late, 1 } };
	ts_series_ref rc_ref[1] = { 0 };
	assert_int_equal(ts_db_append_refs(db, cin, 1, NULL, rc_ref, &r, NULL), 0);
	assert_int_equal(r.n_appended, 0);
	assert_true(rc_ref[0] != 0);
	struct ts_series_in din[] = { { d, 2, s1, 1 } };
	assert_int_equal(ts_db_append(db, din, 1, &r, NULL), 0); /* the third series */
	struct ts_series_in cref[] = { { NULL, 0, s1, 1 } };
	assert_int_equal(ts_db_append_refs(db, cref, 1, NULL, rc_ref, &r, rc), 0);
	assert_int_equal(r.n_appended, 0);
	assert_int_equal(r.n_limited_series, 1);
	assert_int_equal(rc[0], TS_ELIMIT);

	for (int round = 0; round < 2; round++) {
		struct ts_matcher m[] = { { TS_MATCH_EQ, "k", "a" } };
		size_t ns;
		assert_int_equal(count_sel(db, m, 1, INT64_MIN, INT64_MAX, &ns), 1);
		assert_int_equal(ns, 4);
		struct ts_matcher mb[] = { { TS_MATCH_EQ, "k", "b" } };
		assert_int_equal(count_sel(db, mb, 1, INT64_MIN, INT64_MAX, &ns), 1);
		assert_int_equal(ns, 2);
		struct ts_matcher mc[] = { { TS_MATCH_EQ, "k", "c" } };
		assert_int_equal(count_sel(db, mc, 1, INT64_MIN, INT64_MAX, &ns), 0);
		assert_int_equal(ts_db_close(db), 0);
		if (round == 0)
			assert_int_equal(ts_db_open(dir, &o, &db), 0);
	}
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_select_iterate),
		cmocka_unit_test(test_matchers),
		cmocka_unit_test(test_duplicates_and_order),
		cmocka_unit_test(test_out_of_order_window),
		cmocka_unit_test(test_special_values_bit_exact),
		cmocka_unit_test(test_partitions_and_limits),
		cmocka_unit_test(test_crash_recovery),
		cmocka_unit_test(test_concurrent_appenders),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_second_writer_is_busy),
		cmocka_unit_test(test_label_lookups_and_metadata),
		cmocka_unit_test(test_corrupt_chunk_and_torn_wal),
		cmocka_unit_test(test_retention_removes_partitions),
		cmocka_unit_test(test_compaction),
		cmocka_unit_test(test_idle_series_after_restart),
		cmocka_unit_test(test_many_labels),
		cmocka_unit_test(test_ooo_flushed_inside_open_chunk),
		cmocka_unit_test(test_append_refs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
