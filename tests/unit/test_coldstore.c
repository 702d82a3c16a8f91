/*
 * test_coldstore.c - the engine's cold data (tsdb/cold.c, tsdb/compact.c): a clean
 * close converts what was written into cold blocks, and everything reads back bit-exact
 * through every path: sample iterators, chunk iterators (re-encoded XOR), duplicate and
 * conflict checks against cold samples, out-of-order writes into a cold partition,
 * generations merged by ts_db_compact, and many reopen cycles.
 *
 * A model (per series, the samples every acknowledged append stored) is the oracle:
 * after every step each series must read back exactly the model's samples, values
 * compared as bits (NaN payloads, the stale marker, -0.0, +-Inf, integers past 2^53).
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "storage/err.h"
#include "storage/xor.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

#define DAY_MS INT64_C(86400000)
#define N_SERIES 60
#define T0 (INT64_C(1700000000000) - 3 * DAY_MS) /* partition-aligned days ago */

struct model {
	int64_t *t;
	uint64_t *v;
	size_t n, cap;
};

static struct model models[N_SERIES];
static uint64_t rng;

static void model_add(struct model *m, int64_t t, uint64_t v)
{
	/* Appends arrive in time order per series, except the out-of-order test's, which
	 * inserts in place. */
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->t = realloc(m->t, m->cap * sizeof *m->t);
		m->v = realloc(m->v, m->cap * sizeof *m->v);
		assert_non_null(m->t);
		assert_non_null(m->v);
	}
	size_t i = m->n;
	while (i > 0 && m->t[i - 1] > t) {
		m->t[i] = m->t[i - 1];
		m->v[i] = m->v[i - 1];
		i--;
	}
	m->t[i] = t;
	m->v[i] = v;
	m->n++;
}

static void models_reset(void)
{
	for (int i = 0; i < N_SERIES; i++) {
		free(models[i].t);
		free(models[i].v);
		memset(&models[i], 0, sizeof models[i]);
	}
}

/* A value of series k at step j: series kinds cycle through counters, decimal gauges,
 * constants, random bits and specials. */
static uint64_t value_of(int k, int64_t j)
{
	double d;
	switch (k % 6) {
	case 0: d = (double)(j * 7 + k); break;
	case 1: d = (double)(1000 + (int64_t)(tu_rand(&rng) % 2000) - 1000) / 100.0; break;
	case 2: d = 42.5; break;
	case 3: return tu_rand(&rng);
	case 4: {
		static const uint64_t sp[] = { UINT64_C(0x7ff0000000000002),
					       UINT64_C(0x7ff8000000000001),
					       UINT64_C(0x8000000000000000),
					       UINT64_C(0x7ff0000000000000),
					       UINT64_C(0xfff0000000000000) };
		if (j % 5 == 0)
			return sp[(j / 5) % 5];
		d = (double)j * 0.1;
		break;
	}
	default: d = 9007199254740993.0 + (double)(j * 4096); break;
	}
	return tu_bits(d);
}

static void append_one(struct ts_db *db, int k, int64_t t, uint64_t v, int expect_stored)
{
	char name[32], inst[32];
	snprintf(name, sizeof name, "m%d", k % 6);
	snprintf(inst, sizeof inst, "i%d", k);
	struct ts_label l[] = { { "__name__", name, 8, (uint32_t)strlen(name) },
				{ "instance", inst, 8, (uint32_t)strlen(inst) } };
	struct ts_sample s = { t, 0 };
	memcpy(&s.v, &v, 8);
	struct ts_series_in in = { l, 2, &s, 1 };
	struct ts_append_result res;
	int rc = ts_db_append(db, &in, 1, &res, NULL);
	assert_int_equal(rc, 0);
	if (expect_stored) {
		assert_int_equal(res.n_appended, 1);
		model_add(&models[k], t, v);
	}
}

/* n steps of every series from t0, every `step` ms, all series sharing timestamps
 * within a group of 10 (as a scrape target's series do). */
static void fill(struct ts_db *db, int64_t t0, int64_t step, int n, int64_t j0)
{
	for (int j = 0; j < n; j++)
		for (int k = 0; k < N_SERIES; k++) {
			int64_t t = t0 + j * step + (k / 10) * 3; /* per-target offset */
			append_one(db, k, t, value_of(k, j0 + j), 1);
		}
}

static struct ts_series_set *select_k(struct ts_db *db, int k, int64_t mint, int64_t maxt)
{
	char inst[32];
	snprintf(inst, sizeof inst, "i%d", k);
	struct ts_matcher m = { TS_MATCH_EQ, "instance", inst };
	struct ts_series_set *set;
	char msg[256] = "";
	int rc = ts_db_select(db, &m, 1, mint, maxt, NULL, &set, msg, sizeof msg);
	if (rc)
		fail_msg("select: %s %s", ts_strerror(rc), msg);
	return set;
}

/* Every series reads back its model in [mint, maxt], by samples and by chunks. */
static void check_all(struct ts_db *db, int64_t mint, int64_t maxt)
{
	for (int k = 0; k < N_SERIES; k++) {
		struct model *m = &models[k];
		size_t lo = 0;
		while (lo < m->n && m->t[lo] < mint)
			lo++;
		struct ts_series_set *set = select_k(db, k, mint, maxt);
		size_t want = 0;
		for (size_t i = lo; i < m->n && m->t[i] <= maxt; i++)
			want++;
		if (want == 0) {
			ts_series_set_free(set);
			continue;
		}
		assert_int_equal(ts_series_set_len(set), 1);
		/* samples, in batches */
		struct ts_iter *it;
		assert_int_equal(ts_iter_new(set, 0, &it), 0);
		int64_t tb[37];
		double vb[37];
		size_t got = 0;
		int r;
		while ((r = ts_iter_read(it, tb, vb, 37)) > 0) {
			for (int i = 0; i < r; i++, got++) {
				assert_true(got < want);
				if (tb[i] != m->t[lo + got] || tu_bits(vb[i]) != m->v[lo + got])
					fail_msg(
						"series %d sample %zu: got (%lld, %016llx) want (%lld, "
						"%016llx)",
						k, got, (long long)tb[i],
						(unsigned long long)tu_bits(vb[i]),
						(long long)m->t[lo + got],
						(unsigned long long)m->v[lo + got]);
			}
		}
		assert_int_equal(r, 0);
		assert_int_equal(got, want);
		ts_iter_free(it);
		/* chunks: XOR-decodable, at most 240 samples each (cold samples re-encoded as
		 * the head cuts them); out-of-order data may overlap, so the union of their
		 * samples (first of a timestamp wins) must be the model. */
		struct ts_chunk_it *ci;
		assert_int_equal(ts_chunk_it_new(set, 0, &ci), 0);
		struct ts_chunk_ref c;
		struct model u = { 0 };
		while ((r = ts_chunk_it_next(ci, &c)) == 1) {
			assert_true(c.n_samples <= 240);
			struct ts_xor_it x;
			assert_int_equal(ts_xor_it_init(&x, c.data, c.len), 0);
			int xr;
			while ((xr = ts_xor_next(&x)) == 1) {
				if (x.t < mint || x.t > maxt)
					continue;
				size_t j = 0;
				while (j < u.n && u.t[j] != x.t)
					j++;
				if (j == u.n)
					model_add(&u, x.t, x.v);
			}
			assert_int_equal(xr, 0);
		}
		assert_int_equal(r, 0);
		assert_int_equal(u.n, want);
		for (size_t i = 0; i < want; i++) {
			assert_int_equal(u.t[i], m->t[lo + i]);
			assert_true(u.v[i] == m->v[lo + i]);
		}
		free(u.t);
		free(u.v);
		ts_chunk_it_free(ci);
		ts_series_set_free(set);
	}
}

static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sum += dir_bytes(p);
		else
			sum += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

static int setup(void **st)
{
	(void)st;
	rng = tu_seed("test_coldstore", 20261207);
	models_reset();
	return 0;
}

/* Close converts; reopen reads cold data back exactly; a second cycle adds a generation;
 * compaction merges them; the partition ends up smaller than its hot form. */
static void test_close_converts_and_reads_back(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "cold");
	struct ts_db *db;
	struct ts_db_stats stats;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	fill(db, T0, 15000, 500, 0); /* 500 samples each: sealed chunks and open heads */
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_checkpoint(db), 0);
	ts_db_stats(db, &stats);
	uint64_t hot_bytes = stats.partitions_bytes;
	assert_int_equal(ts_db_close(db), 0);
	char raw[4200];
	snprintf(raw, sizeof raw, "%s/raw", dir);
	uint64_t cold_bytes = dir_bytes(raw);
	print_message("partitions: %llu bytes hot (in use), %llu bytes cold on disk\n",
		      (unsigned long long)hot_bytes, (unsigned long long)cold_bytes);
	assert_true(cold_bytes < hot_bytes);

	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	check_all(db, T0 + 100 * 15000, T0 + 200 * 15000); /* a window inside pieces */
	/* Resends of cold samples are duplicates; other values conflict. */
	for (int k = 0; k < N_SERIES; k++) {
		struct model *m = &models[k];
		char name[32], inst[32];
		snprintf(name, sizeof name, "m%d", k % 6);
		snprintf(inst, sizeof inst, "i%d", k);
		struct ts_label l[] = { { "__name__", name, 8, (uint32_t)strlen(name) },
					{ "instance", inst, 8, (uint32_t)strlen(inst) } };
		struct ts_sample s[2];
		s[0].t_ms = m->t[10];
		memcpy(&s[0].v, &m->v[10], 8);
		s[1].t_ms = m->t[20];
		uint64_t other = m->v[20] ^ 1;
		memcpy(&s[1].v, &other, 8);
		struct ts_series_in in = { l, 2, s, 2 };
		struct ts_append_result res;
		assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
		assert_int_equal(res.n_appended, 0);
		assert_int_equal(res.n_duplicate + res.n_conflict + res.n_out_of_order, 2);
	}
	fill(db, T0 + 500 * 15000, 15000, 300, 500);
	assert_int_equal(ts_db_close(db), 0);

	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_compact(db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

/* Out-of-order samples into a partition that is already cold merge with it. */
static void test_out_of_order_into_cold(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "coldooo");
	struct ts_db_opts o = { .ooo_window_ms = 10 * DAY_MS };
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	fill(db, T0, 20000, 200, 0);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	/* Between existing samples (timestamps +10 s), in a second pass. */
	for (int k = 0; k < N_SERIES; k++)
		for (int j = 0; j < 200; j += 3)
			append_one(db, k, T0 + j * 20000 + (k / 10) * 3 + 10000,
				   value_of(k, 10000 + j), 1);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_compact(db), 0);
	check_all(db, T0 - 1, T0 + DAY_MS);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

/* Data spread over several partitions, reopened many times with a little more each
 * time: generations pile up and are merged by tier, reads stay exact. */
static void test_many_cycles(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "coldcyc");
	struct ts_db *db;
	int64_t t = T0;
	for (int cycle = 0; cycle < 12; cycle++) {
		assert_int_equal(ts_db_open(dir, NULL, &db), 0);
		fill(db, t, 60000, 150, (int64_t)cycle * 150);
		t += 150 * 60000;
		if (cycle % 4 == 3)
			check_all(db, T0 - 1, t + DAY_MS);
		assert_int_equal(ts_db_close(db), 0);
	}
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	check_all(db, T0 - 1, t + DAY_MS);
	check_all(db, T0 + DAY_MS / 2, T0 + DAY_MS + DAY_MS / 3);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_close_converts_and_reads_back, setup),
		cmocka_unit_test_setup(test_out_of_order_into_cold, setup),
		cmocka_unit_test_setup(test_many_cycles, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
