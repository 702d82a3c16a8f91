/*
 * test_env.c - storage/env: tables, batches (atomicity, map growth under concurrent
 * readers, sticky commit failure), cursors, u64 postings, stale reader slots, read-only
 * opens beside a live writer, hot and compacting copies, allocation failures and
 * corrupt data files. Seeded PRNG (TS_SEED overrides; the seed is printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include <lmdb.h>

#include "storage/env.h"
#include "storage/env_int.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "testutil.h"

static uint64_t seed; /* TS_SEED or 0x5eed, from main() */
static uint64_t rng;  /* tu_rand() state, set to seed by each test that uses it */

static struct ts_env *open_env(const char *dir, uint64_t map_bytes)
{
	struct ts_env_opts o = { .map_bytes = map_bytes, .no_sync = 1 };
	struct ts_env *env;
	int rc = ts_env_open(dir, &o, &env);
	assert_int_equal(rc, 0);
	return env;
}

static void put1(struct ts_env *env, unsigned t, const char *k, const char *v)
{
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	assert_int_equal(ts_batch_put(b, t, k, strlen(k), v, strlen(v)), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_free(b);
}

/* 0 and the value in buf (NUL-terminated), or the error. */
static int get_str(struct ts_env *env, unsigned t, const char *k, char *buf, size_t cap)
{
	struct ts_rtxn *r;
	const void *v;
	size_t vlen;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	int rc = ts_env_get(r, t, k, strlen(k), &v, &vlen);
	if (rc == 0) {
		assert_true(vlen < cap);
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
	}
	ts_env_read_end(r);
	return rc;
}

static size_t count_entries(struct ts_env *env, unsigned t)
{
	struct ts_rtxn *r;
	struct ts_cursor *c;
	size_t n = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_cursor_open(r, t, &c), 0);
	for (int rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c))
		n++;
	ts_cursor_close(c);
	ts_env_read_end(r);
	return n;
}

static void test_tables(void **state)
{
	(void)state;
	char dir[512];
	unsigned a, b, a2, t;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "alpha", 0, &a), 0);
	assert_int_equal(ts_env_table(env, "beta", TS_TABLE_DUPFIXED_U64, &b), 0);
	assert_int_not_equal(a, b);
	assert_int_equal(ts_env_table(env, "alpha", 0, &a2), 0);
	assert_int_equal(a2, a);
	assert_int_equal(ts_env_table(env, "alpha", TS_TABLE_DUPFIXED_U64, &t), TS_EINVALID);
	assert_int_equal(ts_env_table(env, "", 0, &t), TS_EINVALID);
	assert_int_equal(ts_env_table(env, "x", 0x80, &t), TS_EINVALID);
	put1(env, a, "k", "v1");

	/* a second handle in the same process would break LMDB's per-process locks */
	struct ts_env *dup;
	struct ts_env_opts o = { .no_sync = 1 };
	assert_int_equal(ts_env_open(dir, &o, &dup), TS_EBUSY);
	assert_null(dup);

	for (int i = 2; i < TS_ENV_MAX_TABLES; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%d", i);
		assert_int_equal(ts_env_table(env, name, 0, &t), 0);
	}
	assert_int_equal(ts_env_table(env, "one-too-many", 0, &t), TS_ELIMIT);
	ts_env_close(env);

	/* reopen: tables and data survive; read-only cannot create */
	env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "beta", TS_TABLE_DUPFIXED_U64, &b), 0);
	assert_int_equal(ts_env_table(env, "alpha", 0, &a), 0);
	char buf[16];
	assert_int_equal(get_str(env, a, "k", buf, sizeof buf), 0);
	assert_string_equal(buf, "v1");
	ts_env_close(env);

	struct ts_env_opts ro = { .read_only = 1 };
	assert_int_equal(ts_env_open(dir, &ro, &env), 0);
	assert_int_equal(ts_env_table(env, "absent", 0, &t), TS_ENOTFOUND);
	assert_int_equal(ts_env_table(env, "alpha", 0, &a), 0);
	assert_int_equal(get_str(env, a, "k", buf, sizeof buf), 0);
	struct ts_batch *bt;
	assert_int_equal(ts_batch_new(&bt), 0);
	assert_int_equal(ts_batch_put(bt, a, "z", 1, "z", 1), 0);
	assert_int_equal(ts_env_apply(env, bt), -EACCES);
	ts_batch_free(bt);
	ts_env_close(env);
	ts_env_close(NULL);

	/* read-only open of a directory that does not exist */
	char missing[600];
	snprintf(missing, sizeof missing, "%s/nope", dir);
	assert_int_equal(ts_env_open(missing, &ro, &env), -ENOENT);
	tu_rmtree(dir);
}

static void test_put_get_del(void **state)
{
	(void)state;
	char dir[512], buf[64];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	put1(env, t, "a", "1");
	put1(env, t, "b", "2");
	put1(env, t, "a", "3"); /* overwrite */
	assert_int_equal(get_str(env, t, "a", buf, sizeof buf), 0);
	assert_string_equal(buf, "3");
	assert_int_equal(get_str(env, t, "c", buf, sizeof buf), TS_ENOTFOUND);

	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	assert_int_equal(ts_batch_del(b, t, "a", 1, NULL, 0), 0);
	assert_int_equal(ts_batch_del(b, t, "zz", 2, NULL, 0), 0); /* absent: fine */
	assert_int_equal(ts_batch_len(b), 2);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(get_str(env, t, "a", buf, sizeof buf), TS_ENOTFOUND);
	assert_int_equal(get_str(env, t, "b", buf, sizeof buf), 0);

	/* empty value, empty batch, reset, bad arguments */
	ts_batch_reset(b);
	assert_int_equal(ts_batch_len(b), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(ts_batch_put(b, t, "e", 1, NULL, 0), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(get_str(env, t, "e", buf, sizeof buf), 0);
	assert_string_equal(buf, "");
	assert_int_equal(ts_batch_put(b, t, "", 0, "v", 1), TS_EINVALID);
	assert_int_equal(ts_batch_put(b, TS_ENV_MAX_TABLES, "k", 1, "v", 1), TS_EINVALID);
	ts_batch_free(b);
	ts_batch_free(NULL);

	struct ts_rtxn *r;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get(r, 9, "b", 1, NULL, NULL), TS_EINVALID);
	assert_int_equal(ts_env_get(r, t, "b", 1, NULL, NULL), 0);
	ts_env_read_end(r);
	ts_env_read_end(NULL);
	ts_env_close(env);
	tu_rmtree(dir);
}

static void test_batch_atomic(void **state)
{
	(void)state;
	char dir[512], key[32], buf[64];
	unsigned t, d;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	assert_int_equal(ts_env_table(env, "dup", TS_TABLE_DUPFIXED_U64, &d), 0);
	put1(env, t, "keep", "old");

	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%03d", i);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), "v", 1), 0);
	}
	assert_int_equal(ts_batch_put(b, t, "keep", 4, "new", 3), 0);
	assert_int_equal(ts_batch_del(b, t, "keep", 4, NULL, 0), 0);
	/* LMDB's default key limit is 511; one past it fails inside the transaction */
	static char longkey[2048];
	memset(longkey, 'x', sizeof longkey);
	assert_int_equal(ts_batch_put(b, t, longkey, 512, "v", 1), 0);
	assert_int_equal(ts_env_apply(env, b), TS_ELIMIT);
	assert_int_equal(count_entries(env, t), 1);
	assert_int_equal(get_str(env, t, "keep", buf, sizeof buf), 0);
	assert_string_equal(buf, "old");

	/* a postings value that is not 8 bytes, and a table never opened */
	ts_batch_reset(b);
	uint64_t id = 7;
	assert_int_equal(ts_batch_put(b, t, "x", 1, "v", 1), 0);
	assert_int_equal(ts_batch_put(b, d, "p", 1, &id, 4), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	ts_batch_reset(b);
	assert_int_equal(ts_batch_put(b, t, "x", 1, "v", 1), 0);
	assert_int_equal(ts_batch_put(b, 5, "x", 1, "v", 1), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	assert_int_equal(count_entries(env, t), 1);

	/* the same batch succeeds once the bad operation is gone, and is reusable */
	ts_batch_reset(b);
	assert_int_equal(ts_batch_put(b, t, "x", 1, "v", 1), 0);
	assert_int_equal(ts_batch_put(b, d, "p", 1, &id, sizeof id), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(count_entries(env, t), 2);
	ts_batch_free(b);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* Append mode: keys in order fill pages completely (fewer pages than the same records
 * inserted in a scattered order); a key out of order fails the whole batch. */
static void test_append_mode(void **state)
{
	(void)state;
	char dir[512], dir2[512], key[32], val[200];
	unsigned t, t2;
	tu_mkdtemp(dir, sizeof dir, "env");
	tu_mkdtemp(dir2, sizeof dir2, "env");
	struct ts_env *env = open_env(dir, 0), *env2 = open_env(dir2, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	assert_int_equal(ts_env_table(env2, "kv", 0, &t2), 0);
	memset(val, 'v', sizeof val);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	ts_batch_set_append(b, 1);
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%06d", i);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), val, sizeof val), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	/* The same records in 40 interleaved passes, without append mode. */
	struct ts_batch *b2;
	assert_int_equal(ts_batch_new(&b2), 0);
	for (int pass = 0; pass < 40; pass++) {
		ts_batch_reset(b2);
		for (int i = pass; i < 20000; i += 40) {
			snprintf(key, sizeof key, "k%06d", i);
			assert_int_equal(ts_batch_put(b2, t2, key, strlen(key), val, sizeof val),
					 0);
		}
		assert_int_equal(ts_env_apply(env2, b2), 0);
	}
	uint64_t map, used_append, used_scattered;
	ts_env_size(env, &map, &used_append);
	ts_env_size(env2, &map, &used_scattered);
	assert_true(used_append * 10 < used_scattered * 8); /* at least 20% smaller */
	/* Out of order: the batch fails whole and the table is unchanged. */
	ts_batch_reset(b);
	assert_int_equal(ts_batch_put(b, t, "k999999", 7, "x", 1), 0);
	assert_int_equal(ts_batch_put(b, t, "k000001", 7, "x", 1), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	assert_int_equal(count_entries(env, t), 20000);
	ts_batch_free(b);
	ts_batch_free(b2);
	ts_env_close(env);
	ts_env_close(env2);
	tu_rmtree(dir);
	tu_rmtree(dir2);
}

static void test_sticky_commit_failure(void **state)
{
	(void)state;
	char dir[512], buf[16];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	put1(env, t, "a", "1");
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	assert_int_equal(ts_batch_put(b, t, "b", 1, "2", 1), 0);
	ts__env_fail_next_commit(env, EIO);
	assert_int_equal(ts_env_apply(env, b), TS_EIO);
	/* sticky: a healthy commit is not attempted again */
	assert_int_equal(ts_env_apply(env, b), TS_EIO);
	assert_int_equal(get_str(env, t, "b", buf, sizeof buf), TS_ENOTFOUND);
	assert_int_equal(get_str(env, t, "a", buf, sizeof buf), 0);
	ts_batch_free(b);
	ts_env_close(env);
	tu_rmtree(dir);
}

static int cmp_bin(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static void test_cursor_order(void **state)
{
	(void)state;
	enum { N = 400 };
	static unsigned char keys[N][12];
	static size_t lens[N];
	char dir[512];
	unsigned t;
	rng = seed;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "bin", 0, &t), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < N; i++) {
		/* bytes from a tiny alphabet incl. 0x00 and 0xff give shared prefixes */
		static const unsigned char alpha[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
		lens[i] = 1 + tu_rand(&rng) % 12;
		for (size_t j = 0; j < lens[i]; j++)
			keys[i][j] = alpha[tu_rand(&rng) % sizeof alpha];
		assert_int_equal(ts_batch_put(b, t, keys[i], lens[i], &i, sizeof i), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_free(b);

	struct ts_rtxn *r;
	struct ts_cursor *c;
	const void *k, *v, *pk = NULL;
	size_t klen, vlen, pklen = 0, n = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_cursor_open(r, t, &c), 0);
	assert_int_equal(ts_cursor_get(c, &k, &klen, &v, &vlen), TS_ENOTFOUND);
	for (int rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		assert_int_equal(ts_cursor_get(c, &k, &klen, &v, &vlen), 0);
		if (pk)
			assert_true(cmp_bin(pk, pklen, k, klen) < 0);
		pk = k;
		pklen = klen;
		n++;
	}
	assert_true(n > 0 && n <= N);
	assert_int_equal(ts_cursor_get(c, &k, &klen, NULL, NULL), TS_ENOTFOUND);

	/* seek lands on the first key >= the probe */
	for (int i = 0; i < 50; i++) {
		int x = (int)(tu_rand(&rng) % N);
		unsigned char probe[13];
		memcpy(probe, keys[x], lens[x]);
		size_t plen = lens[x];
		if (i & 1)
			probe[plen++] = 0x00; /* just past keys[x] */
		int rc = ts_cursor_seek(c, probe, plen);
		for (int j = 0; j < N; j++) {
			int ge = cmp_bin(keys[j], lens[j], probe, plen) >= 0;
			if (rc == 0 && ge) {
				assert_int_equal(ts_cursor_get(c, &k, &klen, NULL, NULL), 0);
				assert_true(cmp_bin(k, klen, keys[j], lens[j]) <= 0);
			}
			if (rc == TS_ENOTFOUND)
				assert_false(ge);
		}
		if (rc == 0) {
			assert_int_equal(ts_cursor_get(c, &k, &klen, NULL, NULL), 0);
			assert_true(cmp_bin(k, klen, probe, plen) >= 0);
		}
	}
	static const unsigned char top[13] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(ts_cursor_seek(c, top, sizeof top), TS_ENOTFOUND);
	ts_cursor_close(c);
	assert_int_equal(ts_cursor_open(r, 11, &c), TS_EINVALID);
	assert_null(c);
	ts_env_read_end(r);
	ts_env_close(env);
	tu_rmtree(dir);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_postings(void **state)
{
	(void)state;
	enum { N = 20000 };
	char dir[512];
	unsigned p, kv;
	uint64_t *ids = malloc(N * sizeof *ids);
	assert_non_null(ids);
	rng = seed;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "postings", TS_TABLE_DUPFIXED_U64, &p), 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &kv), 0);
	/* unique ids spanning the full range; byte order alone would misorder them */
	for (int i = 0; i < N; i++)
		ids[i] = ((uint64_t)i << 44) ^ (tu_rand(&rng) & 0xFFFFFFFFFFFull);
	ids[0] = 0;
	ids[1] = UINT64_MAX;
	ids[2] = 0xff;
	ids[3] = 0x100;
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(tu_rand(&rng) % (unsigned)(i + 1));
		uint64_t x = ids[i];
		ids[i] = ids[j];
		ids[j] = x;
	}
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(ts_batch_put(b, p, "big", 3, &ids[i], 8), 0);
	uint64_t one = 42, three[3] = { 9, 1, 5 };
	assert_int_equal(ts_batch_put(b, p, "one", 3, &one, 8), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ts_batch_put(b, p, "three", 5, &three[i], 8), 0);
	assert_int_equal(ts_batch_put(b, p, "three", 5, &three[0], 8), 0); /* again */
	assert_int_equal(ts_env_apply(env, b), 0);

	qsort(ids, N, sizeof *ids, cmp_u64);
	struct ts_rtxn *r;
	uint64_t *got = NULL;
	size_t n = 0, cap = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get_u64s(r, p, "one", 3, &got, &n, &cap), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0], 42);
	assert_int_equal(ts_env_get_u64s(r, p, "absent", 6, &got, &n, &cap), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ts_env_get_u64s(r, p, "three", 5, &got, &n, &cap), 0);
	assert_int_equal(n, 4);
	assert_int_equal(got[1], 1);
	assert_int_equal(got[2], 5);
	assert_int_equal(got[3], 9);
	n = 0;
	assert_int_equal(ts_env_get_u64s(r, p, "big", 3, &got, &n, &cap), 0);
	assert_int_equal(n, N);
	assert_memory_equal(got, ids, N * sizeof *ids);
	assert_int_equal(ts_env_get_u64s(r, kv, "big", 3, &got, &n, &cap), TS_EINVALID);

	/* a cursor walks the duplicates in the same order */
	struct ts_cursor *c;
	const void *k, *v;
	size_t klen, vlen, i = 0;
	assert_int_equal(ts_cursor_open(r, p, &c), 0);
	for (int rc = ts_cursor_seek(c, "big", 3); rc == 0 && i < N; rc = ts_cursor_next(c)) {
		assert_int_equal(ts_cursor_get(c, &k, &klen, &v, &vlen), 0);
		assert_int_equal(vlen, 8);
		uint64_t x;
		memcpy(&x, v, 8);
		assert_int_equal(x, ids[i]);
		i++;
	}
	assert_int_equal(i, N);
	ts_cursor_close(c);
	ts_env_read_end(r);

	/* delete exact pairs: every third id, plus one id that was never there */
	ts_batch_reset(b);
	for (int j = 0; j < N; j += 3)
		assert_int_equal(ts_batch_del(b, p, "big", 3, &ids[j], 8), 0);
	uint64_t ghost = 12345;
	assert_int_equal(ts_batch_del(b, p, "three", 5, &ghost, 8), 0);
	assert_int_equal(ts_batch_del(b, p, "three", 5, &three[2], 8), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	n = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get_u64s(r, p, "big", 3, &got, &n, &cap), 0);
	size_t m = 0;
	for (int j = 0; j < N; j++)
		if (j % 3)
			ids[m++] = ids[j];
	assert_int_equal(n, m);
	assert_memory_equal(got, ids, m * sizeof *ids);
	n = 0;
	assert_int_equal(ts_env_get_u64s(r, p, "three", 5, &got, &n, &cap), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 9);
	ts_env_read_end(r);

	/* a value-less delete on a postings table drops the whole key */
	ts_batch_reset(b);
	assert_int_equal(ts_batch_del(b, p, "three", 5, NULL, 0), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	n = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get_u64s(r, p, "three", 5, &got, &n, &cap), 0);
	assert_int_equal(n, 0);
	ts_env_read_end(r);

	ts_free(got);
	ts_batch_free(b);
	ts_env_close(env);
	free(ids);
	tu_rmtree(dir);
}

/* ---- map growth under a concurrent reader ------------------------------------------ */

struct reader_arg {
	struct ts_env *env;
	unsigned table;
	atomic_int stop;
	long loops;
	int err;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	while (!atomic_load(&a->stop)) {
		struct ts_rtxn *r;
		struct ts_cursor *c;
		if (ts_env_read_begin(a->env, &r) != 0) {
			a->err = 1;
			break;
		}
		const void *v;
		size_t vlen;
		int rc = ts_env_get(r, a->table, "g00000-0000", 11, &v, &vlen);
		if (ts_cursor_open(r, a->table, &c) == 0) {
			int k = 0;
			for (rc = ts_cursor_seek(c, NULL, 0); rc == 0 && k < 50;
			     rc = ts_cursor_next(c))
				k++;
			ts_cursor_close(c);
		}
		/* keep using the snapshot's pointer a while: a resize that did not wait
		 * for us would have unmapped it */
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
		if (rc == 0 && (vlen != 200 || memcmp(v, "g00000-0000", 11) != 0))
			a->err = 2;
		ts_env_read_end(r);
		a->loops++;
	}
	return NULL;
}

static void test_map_growth(void **state)
{
	(void)state;
	enum { BATCHES = 30, PER = 400 };
	char dir[512], key[32];
	unsigned t;
	unsigned char val[200];
	memset(val, 0, sizeof val);
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 64 << 10);
	assert_int_equal(ts_env_table(env, "g", 0, &t), 0);
	uint64_t map0, used;
	ts_env_size(env, &map0, &used);
	assert_true(used > 0 && used <= map0);

	struct reader_arg ra = { .env = env, .table = t };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &ra), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < BATCHES; i++) {
		ts_batch_reset(b);
		for (int j = 0; j < PER; j++) {
			snprintf(key, sizeof key, "g%05d-%04d", i, j);
			memcpy(val, key, 11);
			assert_int_equal(ts_batch_put(b, t, key, 11, val, sizeof val), 0);
		}
		assert_int_equal(ts_env_apply(env, b), 0);
	}
	/* one batch several times larger than the whole map so far */
	uint64_t map1;
	ts_env_size(env, &map1, NULL);
	ts_batch_reset(b);
	for (int j = 0; j < (int)(map1 / 100); j++) {
		snprintf(key, sizeof key, "h%09d", j);
		memcpy(val, key, 11);
		assert_int_equal(ts_batch_put(b, t, key, 10, val, sizeof val), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	atomic_store(&ra.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(ra.err, 0);
	assert_true(ra.loops > 0);
	assert_true(ts__env_n_grows(env) >= 4);
	uint64_t map2;
	ts_env_size(env, &map2, &used);
	assert_true(map2 > map1 && map1 > map0);
	assert_true(used <= map2);
	size_t total = BATCHES * PER + (size_t)(map1 / 100);
	ts_batch_free(b);
	ts_env_close(env);

	/* reopen with the tiny size again: everything is there, in order */
	env = open_env(dir, 64 << 10);
	assert_int_equal(ts_env_table(env, "g", 0, &t), 0);
	assert_int_equal(count_entries(env, t), total);
	struct ts_rtxn *r;
	const void *v;
	size_t vlen;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get(r, t, "g00029-0399", 11, &v, &vlen), 0);
	assert_int_equal(vlen, 200);
	assert_memory_equal(v, "g00029-0399", 11);
	ts_env_read_end(r);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* ---- other processes --------------------------------------------------------------- */

static void test_stale_reader(void **state)
{
	(void)state;
	char dir[512];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	put1(env, t, "a", "1");
	assert_int_equal(ts__env_reader_slots(env), 0);

	for (int round = 0; round < 2; round++) {
		if (round == 1)
			ts_env_close(env); /* the child is then the only opener */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct ts_env *ce;
			struct ts_rtxn *r;
			struct ts_env_opts o = { .no_sync = 1 };
			if (ts_env_open(dir, &o, &ce) != 0)
				_exit(2);
			if (ts_env_read_begin(ce, &r) != 0)
				_exit(3);
			_exit(0); /* dies holding the reader slot */
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		if (round == 0) {
			assert_int_equal(ts__env_reader_slots(env), 1);
			assert_int_equal(ts_env_reader_check(env), 1);
			assert_int_equal(ts__env_reader_slots(env), 0);
			assert_int_equal(ts_env_reader_check(env), 0);
		} else {
			env = open_env(dir, 0); /* open clears what the dead child left */
			assert_int_equal(ts__env_reader_slots(env), 0);
		}
	}
	ts_env_close(env);
	tu_rmtree(dir);
}

/* Entries of table t, or -1: for forked children, which must not use cmocka. */
static long count_entries_nofail(struct ts_env *env, unsigned t)
{
	struct ts_rtxn *r;
	struct ts_cursor *c;
	long n = 0;
	if (ts_env_read_begin(env, &r) != 0)
		return -1;
	if (ts_cursor_open(r, t, &c) != 0) {
		ts_env_read_end(r);
		return -1;
	}
	for (int rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c))
		n++;
	ts_cursor_close(c);
	ts_env_read_end(r);
	return n;
}

/* Child side of test_read_only_live: opens read-only beside the writer, checks what it
 * sees before and after the writer has grown the file past the child's mapping. */
static int ro_child(const char *dir, int ready_fd, int go_fd, size_t before, size_t after)
{
	struct ts_env *env;
	struct ts_env_opts o = { .read_only = 1 };
	unsigned t;
	char c = 'r';
	if (ts_env_open(dir, &o, &env) != 0)
		return 10;
	if (ts_env_table(env, "absent", 0, &t) != TS_ENOTFOUND)
		return 11;
	if (ts_env_table(env, "kv", 0, &t) != 0)
		return 12;
	struct ts_batch *b;
	if (ts_batch_new(&b) != 0 || ts_batch_put(b, t, "x", 1, "y", 1) != 0 ||
	    ts_env_apply(env, b) != -EACCES)
		return 13;
	ts_batch_free(b);
	if (count_entries_nofail(env, t) != (long)before)
		return 14;
	uint64_t map0;
	ts_env_size(env, &map0, NULL);
	if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
		return 15;
	/* the writer's file now exceeds our mapping: begin must adopt the new size */
	if (count_entries_nofail(env, t) != (long)after)
		return 16;
	uint64_t map1;
	ts_env_size(env, &map1, NULL);
	if (map1 <= map0)
		return 17;
	ts_env_close(env);
	return 0;
}

static void test_read_only_live(void **state)
{
	(void)state;
	char dir[512], key[32];
	unsigned t;
	unsigned char val[300] = { 0 };
	int ready[2], go[2];
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 64 << 10);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int j = 0; j < 20; j++) {
		snprintf(key, sizeof key, "a%04d", j);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), val, 100), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	enum { MORE = 4000 };
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(ro_child(dir, ready[1], go[0], 20, 20 + MORE));
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	ts_batch_reset(b);
	for (int j = 0; j < MORE; j++) {
		snprintf(key, sizeof key, "b%04d", j);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), val, sizeof val), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_true(ts__env_n_grows(env) > 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	ts_batch_free(b);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* Another process (a second writer, e.g. a repair tool) grows the file past our map:
 * our next write transaction meets MDB_MAP_RESIZED and must adopt the new size. */
static int grow_child(const char *dir)
{
	struct ts_env *env;
	struct ts_env_opts o = { .map_bytes = 64 << 10, .no_sync = 1 };
	struct ts_batch *b;
	unsigned t;
	char key[32];
	static const unsigned char val[300];
	if (ts_env_open(dir, &o, &env) != 0 || ts_env_table(env, "kv", 0, &t) != 0 ||
	    ts_batch_new(&b) != 0)
		return 20;
	for (int j = 0; j < 3000; j++) {
		snprintf(key, sizeof key, "c%04d", j);
		if (ts_batch_put(b, t, key, strlen(key), val, sizeof val) != 0)
			return 21;
	}
	if (ts_env_apply(env, b) != 0)
		return 22;
	ts_batch_free(b);
	ts_env_close(env);
	return 0;
}

static void test_resized_by_other_writer(void **state)
{
	(void)state;
	char dir[512], buf[16];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "env");
	struct ts_env *env = open_env(dir, 64 << 10);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	put1(env, t, "a", "1");
	uint64_t map0, map1;
	ts_env_size(env, &map0, NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(grow_child(dir));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	put1(env, t, "b", "2");
	ts_env_size(env, &map1, NULL);
	assert_true(map1 > map0);
	assert_int_equal(ts__env_n_grows(env), 0); /* adopted, not grown by us */
	assert_int_equal(count_entries(env, t), 3002);
	assert_int_equal(get_str(env, t, "b", buf, sizeof buf), 0);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* ---- copies ---------------------------------------------------------------------------- */

enum { COPY_PER = 50 };

struct writer_arg {
	struct ts_env *env;
	unsigned table;
	atomic_int done_batches;
	atomic_int stop;
	int err;
};

/* Batch i writes COPY_PER keys "b<i>-<j>" and sets "counter" to i, so a consistent
 * snapshot holds every key of batches 1..counter and none after. */
static void *writer_main(void *p)
{
	struct writer_arg *a = p;
	struct ts_batch *b;
	char key[32], cnt[16];
	unsigned char val[100] = { 0 };
	if (ts_batch_new(&b) != 0) {
		a->err = 1;
		return NULL;
	}
	for (int i = 1; !atomic_load(&a->stop) && i < 100000; i++) {
		ts_batch_reset(b);
		for (int j = 0; j < COPY_PER; j++) {
			snprintf(key, sizeof key, "b%06d-%03d", i, j);
			if (ts_batch_put(b, a->table, key, strlen(key), val, sizeof val) != 0)
				a->err = 2;
		}
		snprintf(cnt, sizeof cnt, "%d", i);
		if (ts_batch_put(b, a->table, "counter", 7, cnt, strlen(cnt)) != 0 ||
		    ts_env_apply(a->env, b) != 0) {
			a->err = 3;
			break;
		}
		atomic_store(&a->done_batches, i);
	}
	ts_batch_free(b);
	return NULL;
}

static void wait_batches(struct writer_arg *a, int n)
{
	for (int spins = 0; atomic_load(&a->done_batches) < n && spins < 20000; spins++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&a->done_batches) >= n);
}

static void check_copy(const char *dir, int at_least)
{
	char buf[128], key[32];
	unsigned t;
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	assert_int_equal(get_str(env, t, "counter", buf, sizeof buf), 0);
	int c = atoi(buf);
	assert_true(c >= at_least);
	assert_int_equal(count_entries(env, t), (size_t)c * COPY_PER + 1);
	snprintf(key, sizeof key, "b%06d-%03d", c, COPY_PER - 1);
	assert_int_equal(get_str(env, t, key, buf, sizeof buf), 0);
	snprintf(key, sizeof key, "b%06d-%03d", c + 1, 0);
	assert_int_equal(get_str(env, t, key, buf, sizeof buf), TS_ENOTFOUND);
	ts_env_close(env);
}

static void test_hot_copy(void **state)
{
	(void)state;
	char dir[512], dst[600], dst2[600];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "env");
	snprintf(dst, sizeof dst, "%s/copy/plain", dir);
	snprintf(dst2, sizeof dst2, "%s/copy/compact", dir);
	struct ts_env *env = open_env(dir, 1 << 20);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	struct writer_arg wa = { .env = env, .table = t };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &wa), 0);
	wait_batches(&wa, 5);
	int before = atomic_load(&wa.done_batches);
	assert_int_equal(ts_env_copy(env, dst, 0), 0);
	int before2 = atomic_load(&wa.done_batches);
	assert_int_equal(ts_env_copy(env, dst2, 1), 0);
	wait_batches(&wa, before2 + 2); /* the writer went on during and after */
	atomic_store(&wa.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(wa.err, 0);
	/* a copy into a directory that already holds one is refused */
	assert_int_equal(ts_env_copy(env, dst, 0), -EEXIST);
	ts_env_close(env);
	check_copy(dst, before);
	check_copy(dst2, before2);
	tu_rmtree(dir);
}

static off_t file_size(const char *dir)
{
	char path[700];
	struct stat st;
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_compact_copy(void **state)
{
	(void)state;
	enum { N = 3000 };
	char dir[512], plain[600], compact[600], key[32], buf[256];
	unsigned t;
	unsigned char val[200] = { 0 };
	tu_mkdtemp(dir, sizeof dir, "env");
	snprintf(plain, sizeof plain, "%s/plain", dir);
	snprintf(compact, sizeof compact, "%s/compact", dir);
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "k%05d", i);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), val, sizeof val), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_reset(b);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "k%05d", i);
		if (i % 10)
			assert_int_equal(ts_batch_del(b, t, key, strlen(key), NULL, 0), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_free(b);
	uint64_t used;
	ts_env_size(env, NULL, &used);
	assert_int_equal(ts_env_copy(env, plain, 0), 0);
	assert_int_equal(ts_env_copy(env, compact, 1), 0);
	ts_env_close(env);
	assert_true(file_size(compact) * 2 < file_size(plain));
	assert_true((uint64_t)file_size(compact) < used);
	env = open_env(compact, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	assert_int_equal(count_entries(env, t), N / 10);
	assert_int_equal(get_str(env, t, "k00010", buf, sizeof buf), 0);
	assert_int_equal(get_str(env, t, "k00011", buf, sizeof buf), TS_ENOTFOUND);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* ---- faults and corruption --------------------------------------------------------- */

/* One pass through every allocating entry point; returns the first error. */
static int alloc_scenario(const char *dir, int *stage)
{
	struct ts_env *env = NULL;
	struct ts_batch *b = NULL;
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	unsigned t, p;
	char key[32];
	struct ts_env_opts o = { .no_sync = 1 };
	int rc;
	*stage = 0;
	if ((rc = ts_env_open(dir, &o, &env)) != 0)
		goto out;
	*stage = 1;
	if ((rc = ts_env_table(env, "kv", 0, &t)) != 0 ||
	    (rc = ts_env_table(env, "p", TS_TABLE_DUPFIXED_U64, &p)) != 0)
		goto out;
	*stage = 2;
	if ((rc = ts_batch_new(&b)) != 0)
		goto out;
	for (int i = 0; i < 300; i++) {
		size_t before = ts_batch_len(b);
		uint64_t id = (uint64_t)(300 - i);
		snprintf(key, sizeof key, "key%04d", i);
		rc = ts_batch_put(b, t, key, strlen(key), key, strlen(key));
		if (!rc)
			rc = ts_batch_put(b, p, "post", 4, &id, sizeof id);
		if (rc) {
			assert_true(ts_batch_len(b) - before <= 1); /* a failed put adds nothing */
			goto out;
		}
	}
	*stage = 3;
	if ((rc = ts_env_apply(env, b)) != 0)
		goto out;
	*stage = 4;
	if ((rc = ts_env_read_begin(env, &r)) != 0 || (rc = ts_cursor_open(r, t, &c)) != 0)
		goto out;
	*stage = 5;
	if ((rc = ts_cursor_seek(c, "key0100", 7)) != 0)
		goto out;
	const void *k;
	size_t klen;
	assert_int_equal(ts_cursor_get(c, &k, &klen, NULL, NULL), 0);
	assert_memory_equal(k, "key0100", 7);
	*stage = 6;
	if ((rc = ts_env_get_u64s(r, p, "post", 4, &ids, &n, &cap)) != 0)
		goto out;
	assert_int_equal(n, 300);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], i + 1);
	*stage = 7;
out:
	ts_free(ids);
	ts_cursor_close(c);
	ts_env_read_end(r);
	ts_batch_free(b);
	ts_env_close(env);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "env");
	int stage, done = 0;
	unsigned long n;
	for (n = 1; n < 2000 && !done; n++) {
		ts_mem_fail_at(n, 0);
		int rc = alloc_scenario(dir, &stage);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (!fired) {
			assert_int_equal(rc, 0);
			assert_int_equal(stage, 7);
			done = 1;
		} else if (rc != -ENOMEM) {
			fail_msg("allocation %lu failed at stage %d: rc %d (%s)", n, stage, rc,
				 ts_strerror(rc));
		}
	}
	assert_true(done);
	assert_true(n > 8); /* every entry point above allocates at least once */
	tu_rmtree(dir);
}

static void write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void test_corrupt_open(void **state)
{
	(void)state;
	static const size_t sizes[] = { 100, 4096, 8192, 65536 };
	static unsigned char junk[65536];
	char dir[512], path[600];
	struct ts_env *env;
	struct ts_env_opts o = { .no_sync = 1 };
	rng = seed;
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		for (size_t i = 0; i < sizes[s]; i++)
			junk[i] = (unsigned char)tu_rand(&rng);
		tu_mkdtemp(dir, sizeof dir, "env");
		snprintf(path, sizeof path, "%s/data.mdb", dir);
		write_file(path, junk, sizes[s]);
		assert_int_equal(ts_env_open(dir, &o, &env), TS_ECORRUPT);
		assert_null(env);
		struct ts_env_opts ro = { .read_only = 1 };
		assert_int_equal(ts_env_open(dir, &ro, &env), TS_ECORRUPT);
		tu_rmtree(dir);
	}

	/* a real env cut short: past its meta pages, then inside them */
	tu_mkdtemp(dir, sizeof dir, "env");
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	env = open_env(dir, 0);
	unsigned t;
	assert_int_equal(ts_env_table(env, "kv", 0, &t), 0);
	struct ts_batch *b;
	unsigned char val[500] = { 0 };
	char key[16];
	assert_int_equal(ts_batch_new(&b), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(ts_batch_put(b, t, key, strlen(key), val, sizeof val), 0);
	}
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_free(b);
	ts_env_close(env);
	assert_int_equal(truncate(path, 3 * 4096), 0);
	assert_int_equal(ts_env_open(dir, &o, &env), TS_ECORRUPT);
	assert_int_equal(truncate(path, 6000), 0);
	assert_int_equal(ts_env_open(dir, &o, &env), TS_ECORRUPT);
	/* an empty file is a new env */
	assert_int_equal(truncate(path, 0), 0);
	env = open_env(dir, 0);
	ts_env_close(env);
	tu_rmtree(dir);
}

int main(void)
{
	seed = tu_seed("test_env", 0x5eed);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_put_get_del),
		cmocka_unit_test(test_batch_atomic),
		cmocka_unit_test(test_append_mode),
		cmocka_unit_test(test_sticky_commit_failure),
		cmocka_unit_test(test_cursor_order),
		cmocka_unit_test(test_postings),
		cmocka_unit_test(test_map_growth),
		cmocka_unit_test(test_stale_reader),
		cmocka_unit_test(test_read_only_live),
		cmocka_unit_test(test_resized_by_other_writer),
		cmocka_unit_test(test_hot_copy),
		cmocka_unit_test(test_compact_copy),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_corrupt_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
