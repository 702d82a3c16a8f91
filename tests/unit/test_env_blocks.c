/*
 * test_env_blocks.c - storage/env's sets of u64 in delta blocks (TS_TABLE_U64_BLOCKS):
 * the block codec (round trips, every corrupt shape), adds (appends in batches as the
 * engine makes them, out-of-order inserts, duplicates) against a reference set, block
 * fill, corrupt blocks in a table, table drops (also across a MAP_FULL retry),
 * allocation failures, and ts_env_live_bytes against a compacting copy. Seeded PRNG
 * (TS_SEED overrides; the seed is printed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <lmdb.h>

#include "storage/env.h"
#include "storage/env_int.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "testutil.h"

static uint64_t seed;
static uint64_t rng;

static struct ts_env *open_env(const char *dir, uint64_t map_bytes)
{
	struct ts_env_opts o = { .map_bytes = map_bytes, .no_sync = 1 };
	struct ts_env *env;
	assert_int_equal(ts_env_open(dir, &o, &env), 0);
	return env;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts and removes duplicates; returns the new length. */
static size_t sort_unique(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u64);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || v[i] != v[u - 1])
			v[u++] = v[i];
	return u;
}

/* All ids of key, in a fresh ts_malloc array (*n ids); returns get_u64s' code. */
static int get_all(struct ts_env *env, unsigned t, const char *key, uint64_t **ids, size_t *n)
{
	struct ts_rtxn *r;
	size_t cap = 0;
	*ids = NULL;
	*n = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	int rc = ts_env_get_u64s(r, t, key, strlen(key), ids, n, &cap);
	ts_env_read_end(r);
	return rc;
}

/* Blocks of key and their total bytes, through a cursor; checks each block decodes,
 * is within TS_ENV_U64_BLOCK_MAX and follows the one before. */
static size_t count_blocks(struct ts_env *env, unsigned t, const char *key, size_t *bytes)
{
	struct ts_rtxn *r;
	struct ts_cursor *c;
	size_t n = 0, kl = strlen(key);
	uint64_t prev = 0, ids[TS_ENV_U64_BLOCK_IDS(TS_ENV_U64_BLOCK_MAX)];
	*bytes = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_cursor_open(r, t, &c), 0);
	for (int rc = ts_cursor_seek(c, key, kl); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t klen, vlen, m;
		assert_int_equal(ts_cursor_get(c, &k, &klen, &v, &vlen), 0);
		if (klen != kl || memcmp(k, key, kl) != 0)
			break;
		assert_true(vlen <= TS_ENV_U64_BLOCK_MAX);
		assert_int_equal(ts_env_u64_block_decode(v, vlen, ids, 504, &m), 0);
		assert_true(n == 0 || ids[0] > prev);
		prev = ids[m - 1];
		*bytes += vlen;
		n++;
	}
	ts_cursor_close(c);
	ts_env_read_end(r);
	return n;
}

/* ---- codec ---- */

static void test_codec_round_trip(void **state)
{
	(void)state;
	enum { N = 3000 };
	static uint64_t ids[N], got[N];
	uint8_t blk[TS_ENV_U64_BLOCK_MAX];
	rng = seed;
	for (int round = 0; round < 200; round++) {
		/* gaps of 1 byte up to full 64-bit ones, and both ends of the id range */
		unsigned bits = 1 + (unsigned)(tu_rand(&rng) % 64);
		uint64_t id = round % 3 == 0 ? 0 : tu_rand(&rng) >> (tu_rand(&rng) % 64);
		size_t n = 0;
		for (; n < N; n++) {
			ids[n] = id;
			uint64_t gap = 1 + (tu_rand(&rng) >> (64 - bits));
			if (gap == 0 || id > UINT64_MAX - gap)
				break;
			id += gap;
		}
		n = n < N ? n + 1 : N;
		if (round == 7) {
			ids[0] = UINT64_MAX - 1;
			ids[1] = UINT64_MAX;
			n = 2;
		}
		size_t done = 0;
		while (done < n) {
			size_t len, m;
			size_t took = ts_env_u64_block_encode(ids + done, n - done, blk, sizeof blk,
							      &len);
			assert_true(took >= 1 && len <= sizeof blk && len >= 8);
			assert_int_equal(ts_env_u64_block_decode(blk, len, got, N, &m), 0);
			assert_int_equal(m, took);
			assert_memory_equal(got, ids + done, took * sizeof *ids);
			/* a full block leaves no room for the next delta */
			if (done + took < n) {
				uint64_t d = ids[done + took] - ids[done + took - 1];
				size_t vl = 1;
				while (d >= 0x80) {
					d >>= 7;
					vl++;
				}
				assert_true(len + vl > sizeof blk);
			}
			done += took;
		}
	}
	/* dense ids: a byte each */
	for (int i = 0; i < N; i++)
		ids[i] = 1000 + (uint64_t)i;
	size_t len;
	assert_int_equal(ts_env_u64_block_encode(ids, N, blk, sizeof blk, &len),
			 TS_ENV_U64_BLOCK_IDS(TS_ENV_U64_BLOCK_MAX));
	assert_int_equal(len, TS_ENV_U64_BLOCK_MAX);
}

static int dec(const uint8_t *p, size_t len)
{
	uint64_t out[600];
	size_t n;
	return ts_env_u64_block_decode(p, len, out, 600, &n);
}

static void test_codec_corrupt(void **state)
{
	(void)state;
	uint8_t b[600] = { 0, 0, 0, 0, 0, 0, 0, 5 };
	uint64_t out[4];
	size_t n;
	assert_int_equal(dec(b, 8), 0);
	assert_int_equal(dec(b, 7), TS_ECORRUPT); /* no first id */
	assert_int_equal(dec(b, 0), TS_ECORRUPT);
	memset(b + 8, 1, 600 - 8);
	assert_int_equal(dec(b, 511), 0);
	assert_int_equal(dec(b, 512), TS_ECORRUPT); /* longer than LMDB stores */
	b[8] = 0;
	assert_int_equal(dec(b, 9), TS_ECORRUPT); /* zero delta: a duplicate id */
	b[8] = 0x81;
	assert_int_equal(dec(b, 9), TS_ECORRUPT); /* varint cut off */
	b[9] = 0x00;
	assert_int_equal(dec(b, 10), TS_ECORRUPT); /* overlong */
	b[9] = 0x01;
	assert_int_equal(dec(b, 10), 0);
	/* ten bytes: 2^63 is the largest delta; one more bit, or an eleventh byte, is not */
	memset(b, 0, 8);
	memset(b + 8, 0x80, 9);
	b[17] = 0x01;
	assert_int_equal(dec(b, 18), 0);
	b[17] = 0x02;
	assert_int_equal(dec(b, 18), TS_ECORRUPT);
	b[17] = 0x81;
	b[18] = 0x01;
	assert_int_equal(dec(b, 19), TS_ECORRUPT);
	/* past UINT64_MAX */
	memset(b, 0xff, 8);
	b[8] = 1;
	assert_int_equal(dec(b, 9), TS_ECORRUPT);
	b[7] = 0xfe;
	assert_int_equal(dec(b, 9), 0);
	/* the caller's array too small */
	memset(b, 0, 8);
	memset(b + 8, 1, 10);
	assert_int_equal(ts_env_u64_block_decode(b, 18, out, 4, &n), TS_ELIMIT);
	assert_int_equal(n, 4);
	assert_int_equal(out[3], 3);
	assert_int_equal(ts_env_u64_block_decode(b, 18, out, 0, &n), TS_ELIMIT);
	/* every single-bit flip of a valid block decodes or is TS_ECORRUPT, never more */
	uint64_t ids[50];
	for (int i = 0; i < 50; i++)
		ids[i] = (uint64_t)i * 1000 + 7;
	size_t len;
	assert_int_equal(ts_env_u64_block_encode(ids, 50, b, TS_ENV_U64_BLOCK_MAX, &len), 50);
	for (size_t bit = 0; bit < len * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = dec(b, len);
		assert_true(rc == 0 || rc == TS_ECORRUPT);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* ---- sets in a table ---- */

static void add1(struct ts_batch *b, unsigned t, const char *key, uint64_t id)
{
	assert_int_equal(ts_batch_add_u64s(b, t, key, strlen(key), &id, 1), 0);
}

static void test_add_append_and_insert(void **state)
{
	(void)state;
	enum { N = 40000, KEYS = 5 };
	static const char *keys[KEYS] = { "\0", "a=x", "a=y", "b=sparse", "c=rand" };
	char dir[512];
	unsigned t, kv;
	static uint64_t ref[KEYS][N];
	size_t n_ref[KEYS] = { 0 };
	rng = seed;
	tu_mkdtemp(dir, sizeof dir, "blocks");
	struct ts_env *env = open_env(dir, 64u << 10); /* tiny: adds must survive MAP_FULL */
	assert_int_equal(ts_env_table(env, "p", TS_TABLE_U64_BLOCKS, &t), 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &kv), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	/* as the engine writes: ids ascending, a flush every few hundred, each id under the
	 * all key and some label keys; plus random ids (inserts) under one key */
	uint64_t id = 1;
	for (int flush = 0; id < N; flush++) {
		size_t per = 1 + (size_t)(tu_rand(&rng) % 700);
		for (size_t i = 0; i < per && id < N; i++, id++) {
			const char *k0 = keys[0];
			assert_int_equal(ts_batch_add_u64s(b, t, k0, 1, &id, 1), 0);
			ref[0][n_ref[0]++] = id;
			int which = id % 3 ? 1 : 2;
			add1(b, t, keys[which], id);
			ref[which][n_ref[which]++] = id;
			if (id % 97 == 0) {
				add1(b, t, keys[3], id * 1000003);
				ref[3][n_ref[3]++] = id * 1000003;
			}
			if (tu_rand(&rng) % 4 == 0) {
				uint64_t x = tu_rand(&rng) % (N * 4);
				add1(b, t, keys[4], x);
				ref[4][n_ref[4]++] = x;
			}
		}
		if (flush % 5 == 0) /* an id already there: ignored */
			add1(b, t, keys[1], ref[1][0]);
		assert_int_equal(ts_env_apply(env, b), 0);
		ts_batch_reset(b);
	}
	assert_true(ts__env_n_grows(env) > 0);
	for (int k = 0; k < KEYS; k++) {
		size_t n, kl = k == 0 ? 1 : strlen(keys[k]);
		uint64_t *got = NULL;
		size_t cap = 0;
		struct ts_rtxn *r;
		n_ref[k] = sort_unique(ref[k], n_ref[k]);
		n = 0;
		assert_int_equal(ts_env_read_begin(env, &r), 0);
		assert_int_equal(ts_env_get_u64s(r, t, keys[k], kl, &got, &n, &cap), 0);
		ts_env_read_end(r);
		assert_int_equal(n, n_ref[k]);
		assert_memory_equal(got, ref[k], n * sizeof *got);
		ts_free(got);
	}
	/* dense keys pack about a byte per id, in blocks filled to the bound */
	size_t bytes, blocks = count_blocks(env, t, "a=x", &bytes);
	assert_true(bytes < n_ref[1] * 2 + blocks * 8);
	assert_true(blocks <= n_ref[1] / 200 + 2);
	/* appending to a key moves no other key */
	uint64_t *got;
	size_t n;
	assert_int_equal(get_all(env, t, "absent", &got, &n), 0);
	assert_int_equal(n, 0);
	ts_free(got);
	/* whole-key delete; puts and valued deletes are refused, adds only go to blocks */
	uint64_t one = 1;
	assert_int_equal(ts_batch_del(b, t, "b=sparse", 8, NULL, 0), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_reset(b);
	assert_int_equal(get_all(env, t, "b=sparse", &got, &n), 0);
	assert_int_equal(n, 0);
	ts_free(got);
	assert_int_equal(ts_batch_put(b, t, "k", 1, &one, 8), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	ts_batch_reset(b);
	assert_int_equal(ts_batch_del(b, t, "k", 1, &one, 8), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	ts_batch_reset(b);
	assert_int_equal(ts_batch_add_u64s(b, kv, "k", 1, &one, 1), 0);
	assert_int_equal(ts_env_apply(env, b), TS_EINVALID);
	ts_batch_reset(b);
	assert_int_equal(ts_batch_add_u64s(b, t, "k", 1, &one, 0), TS_EINVALID);
	assert_int_equal(ts_batch_add_u64s(b, t, "k", 1, NULL, 1), TS_EINVALID);
	/* a failed batch applied nothing */
	assert_int_equal(get_all(env, t, "k", &got, &n), 0);
	assert_int_equal(n, 0);
	ts_free(got);
	ts_batch_free(b);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* Writes a raw duplicate through LMDB itself (the API only writes valid blocks). */
static void raw_put(const char *dir, const char *table, const char *key, const void *v, size_t vl)
{
	MDB_env *e;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&e), 0);
	assert_int_equal(mdb_env_set_maxdbs(e, 16), 0);
	assert_int_equal(mdb_env_open(e, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, table, MDB_DUPSORT | MDB_CREATE, &dbi), 0);
	MDB_val k = { .mv_size = strlen(key), .mv_data = (void *)key };
	MDB_val val = { .mv_size = vl, .mv_data = (void *)v };
	assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
}

static void test_corrupt_blocks(void **state)
{
	(void)state;
	char dir[512];
	unsigned t;
	tu_mkdtemp(dir, sizeof dir, "blocks");
	uint8_t bad[9] = { 0, 0, 0, 0, 0, 0, 0, 9, 0x80 }; /* cut varint */
	uint8_t b1[9] = { 0, 0, 0, 0, 0, 0, 0, 1, 5 };	   /* 1, 6 */
	uint8_t b2[9] = { 0, 0, 0, 0, 0, 0, 0, 4, 1 };	   /* 4, 5: overlaps b1 */
	raw_put(dir, "p", "cut", bad, sizeof bad);
	raw_put(dir, "p", "overlap", b1, sizeof b1);
	raw_put(dir, "p", "overlap", b2, sizeof b2);
	raw_put(dir, "p", "short", b1, 5);
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1)); /* TS_CORRUPT logs */
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "p", TS_TABLE_U64_BLOCKS, &t), 0);
	struct ts_rtxn *r;
	uint64_t *ids = NULL;
	size_t n = 3, cap = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get_u64s(r, t, "cut", 3, &ids, &n, &cap), TS_ECORRUPT);
	assert_int_equal(n, 3); /* unchanged */
	assert_int_equal(ts_env_get_u64s(r, t, "overlap", 7, &ids, &n, &cap), TS_ECORRUPT);
	assert_int_equal(ts_env_get_u64s(r, t, "short", 5, &ids, &n, &cap), TS_ECORRUPT);
	assert_int_equal(n, 3);
	ts_env_read_end(r);
	ts_free(ids);
	/* adding to a key whose last block is corrupt fails the batch, nothing applied */
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	add1(b, t, "fine", 1);
	add1(b, t, "cut", 100);
	assert_int_equal(ts_env_apply(env, b), TS_ECORRUPT);
	ts_batch_free(b);
	assert_int_equal(get_all(env, t, "fine", &ids, &n), 0);
	assert_int_equal(n, 0);
	ts_free(ids);
	ts_log_set_level(TS_LOG_INFO);
	ts_env_close(env);
	tu_rmtree(dir);
}

static void test_drop_and_if_exists(void **state)
{
	(void)state;
	char dir[512];
	unsigned old, t, kv, again;
	tu_mkdtemp(dir, sizeof dir, "blocks");
	struct ts_env *env = open_env(dir, 64u << 10); /* tiny: the drop batch hits MAP_FULL */
	assert_int_equal(ts_env_table(env, "old", TS_TABLE_IF_EXISTS, &old), TS_ENOTFOUND);
	assert_int_equal(ts_env_table(env, "old", TS_TABLE_DUPFIXED_U64, &old), 0);
	assert_int_equal(ts_env_table(env, "new", TS_TABLE_U64_BLOCKS, &t), 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &kv), 0);
	assert_int_equal(
		ts_env_table(env, "x", TS_TABLE_U64_BLOCKS | TS_TABLE_DUPFIXED_U64, &again),
		TS_EINVALID);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	for (uint64_t i = 1; i <= 3000; i++)
		assert_int_equal(ts_batch_put(b, old, "k", 1, &i, 8), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	ts_batch_reset(b);
	unsigned long grows = ts__env_n_grows(env);
	/* convert and drop in one batch; large enough to need the map grown meanwhile */
	static uint64_t ids[20000];
	for (int i = 0; i < 20000; i++)
		ids[i] = (uint64_t)i * 977 + 1;
	assert_int_equal(ts_batch_add_u64s(b, t, "k", 1, ids, 20000), 0);
	assert_int_equal(ts_batch_drop(b, old), 0);
	assert_int_equal(ts_batch_put(b, kv, "done", 4, "1", 1), 0);
	assert_int_equal(ts_env_apply(env, b), 0);
	assert_true(ts__env_n_grows(env) > grows);
	ts_batch_free(b);
	struct ts_rtxn *r;
	uint64_t *got = NULL;
	size_t n = 0, cap = 0;
	assert_int_equal(ts_env_read_begin(env, &r), 0);
	assert_int_equal(ts_env_get_u64s(r, old, "k", 1, &got, &n, &cap), TS_EINVALID);
	struct ts_cursor *c;
	assert_int_equal(ts_cursor_open(r, old, &c), TS_EINVALID);
	assert_int_equal(ts_env_get_u64s(r, t, "k", 1, &got, &n, &cap), 0);
	assert_int_equal(n, 20000);
	assert_memory_equal(got, ids, sizeof ids);
	ts_env_read_end(r);
	ts_free(got);
	assert_int_equal(ts_env_table(env, "old", TS_TABLE_DUPFIXED_U64, &again), TS_ENOTFOUND);
	ts_env_close(env);
	env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "old", TS_TABLE_IF_EXISTS | TS_TABLE_DUPFIXED_U64, &old),
			 TS_ENOTFOUND);
	assert_int_equal(ts_env_table(env, "new", TS_TABLE_IF_EXISTS | TS_TABLE_U64_BLOCKS, &t), 0);
	assert_int_equal(get_all(env, t, "k", &got, &n), 0);
	assert_int_equal(n, 20000);
	ts_free(got);
	ts_env_close(env);
	tu_rmtree(dir);
}

/* ---- allocation failures ---- */

static int alloc_scenario(const char *dir, int *stage)
{
	struct ts_env *env = NULL;
	struct ts_batch *b = NULL;
	struct ts_rtxn *r = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	unsigned t;
	struct ts_env_opts o = { .no_sync = 1 };
	int rc;
	*stage = 0;
	if ((rc = ts_env_open(dir, &o, &env)) != 0 ||
	    (rc = ts_env_table(env, "p", TS_TABLE_U64_BLOCKS, &t)) != 0 ||
	    (rc = ts_batch_new(&b)) != 0)
		goto out;
	*stage = 1;
	for (uint64_t i = 1; i <= 2000 && rc == 0; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", (int)(i % 7));
		rc = ts_batch_add_u64s(b, t, key, strlen(key), &i, 1);
	}
	if (rc || (rc = ts_env_apply(env, b)) != 0)
		goto out;
	*stage = 2;
	if ((rc = ts_env_read_begin(env, &r)) != 0 ||
	    (rc = ts_env_get_u64s(r, t, "k3", 2, &ids, &n, &cap)) != 0)
		goto out;
	assert_true(n == 286 || n == 285);
	*stage = 3;
out:
	ts_free(ids);
	ts_env_read_end(r);
	ts_batch_free(b);
	ts_env_close(env);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	char dir[512];
	int stage, done = 0;
	unsigned long n;
	for (n = 1; n < 2000 && !done; n++) {
		tu_mkdtemp(dir, sizeof dir, "blocks");
		ts_mem_fail_at(n, 0);
		int rc = alloc_scenario(dir, &stage);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		tu_rmtree(dir);
		if (!fired) {
			assert_int_equal(rc, 0);
			assert_int_equal(stage, 3);
			done = 1;
		} else if (rc != -ENOMEM) {
			fail_msg("allocation %lu failed at stage %d: rc %d (%s)", n, stage, rc,
				 ts_strerror(rc));
		}
	}
	assert_true(done);
}

/* ---- live bytes ---- */

static off_t file_size(const char *dir)
{
	char path[700];
	struct stat st;
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_live_bytes(void **state)
{
	(void)state;
	char dir[512], compact[600], key[32];
	unsigned kv, fixed, blocks;
	rng = seed;
	tu_mkdtemp(dir, sizeof dir, "blocks");
	snprintf(compact, sizeof compact, "%s/compact", dir);
	struct ts_env *env = open_env(dir, 0);
	assert_int_equal(ts_env_table(env, "kv", 0, &kv), 0);
	assert_int_equal(ts_env_table(env, "fixed", TS_TABLE_DUPFIXED_U64, &fixed), 0);
	assert_int_equal(ts_env_table(env, "blocks", TS_TABLE_U64_BLOCKS, &blocks), 0);
	struct ts_batch *b;
	assert_int_equal(ts_batch_new(&b), 0);
	static unsigned char val[300];
	/* DUPSORT keys large enough for sub-databases (mdb_stat leaves them out), rows
	 * deleted so the free list holds pages, several commits */
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 2000; i++) {
			uint64_t id = (uint64_t)round * 100000 + (uint64_t)i * 3 + 1;
			snprintf(key, sizeof key, "k%d", i % 13);
			assert_int_equal(ts_batch_put(b, fixed, key, strlen(key), &id, 8), 0);
			assert_int_equal(ts_batch_add_u64s(b, blocks, key, strlen(key), &id, 1), 0);
			snprintf(key, sizeof key, "row%d.%d", round, i);
			assert_int_equal(ts_batch_put(b, kv, key, strlen(key), val, sizeof val), 0);
		}
		assert_int_equal(ts_env_apply(env, b), 0);
		ts_batch_reset(b);
		for (int i = 0; i < 2000; i += 2) {
			snprintf(key, sizeof key, "row%d.%d", round, i);
			assert_int_equal(ts_batch_del(b, kv, key, strlen(key), NULL, 0), 0);
		}
		assert_int_equal(ts_env_apply(env, b), 0);
		ts_batch_reset(b);
	}
	ts_batch_free(b);
	uint64_t used, live = ts_env_live_bytes(env);
	ts_env_size(env, NULL, &used);
	assert_int_equal(ts_env_copy(env, compact, 1), 0);
	print_message("live %llu, used %llu, compact copy %lld bytes\n", (unsigned long long)live,
		      (unsigned long long)used, (long long)file_size(compact));
	assert_int_equal(live, (uint64_t)file_size(compact));
	assert_true(live < used);
	ts_env_close(env);
	/* and the copy itself has no free page */
	env = open_env(compact, 0);
	ts_env_size(env, NULL, &used);
	assert_int_equal(ts_env_live_bytes(env), used);
	ts_env_close(env);
	tu_rmtree(dir);
}

int main(void)
{
	seed = tu_seed("test_env_blocks", 0xb10c);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_codec_corrupt),
		cmocka_unit_test(test_add_append_and_insert),
		cmocka_unit_test(test_corrupt_blocks),
		cmocka_unit_test(test_drop_and_if_exists),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_live_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
