/*
 * test_refcache.c - the ingest cache of series refs (server/refcache.h): names under a
 * key in any order, scopes and keys kept apart (a longer key, the same bytes split
 * differently between scope and key), several names in one put, replacing a ref, the
 * byte bound (a full shard that still answers keeps its keys and turns new ones away; one
 * whose keys stopped coming is emptied), keys too long to cache, and two threads putting
 * and getting at once (run under TSan by the sanitizer builds).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/refcache.h"

static struct ts_refkey key(const char *scope, const char *k)
{
	struct ts_refkey x;
	ts_refkey_set(&x, scope, strlen(scope), k, strlen(k));
	return x;
}

static ts_series_ref get1(struct ts_refcache *c, const char *scope, const char *k, const char *name)
{
	struct ts_refkey x = key(scope, k);
	struct ts_refname n = { name, strlen(name) };
	ts_series_ref r = 99;
	size_t found = ts_refcache_get(c, &x, &n, 1, &r);
	assert_int_equal(found, r != 0);
	return r;
}

static void put1(struct ts_refcache *c, const char *scope, const char *k, const char *name,
		 ts_series_ref ref)
{
	struct ts_refkey x = key(scope, k);
	struct ts_refname n = { name, strlen(name) };
	assert_int_equal(ts_refcache_put(c, &x, &n, &ref, 1), 0);
}

static void test_names_scopes_keys(void **state)
{
	(void)state;
	struct ts_refcache *c = ts_refcache_new(1 << 20);
	assert_non_null(c);
	put1(c, "lp|", "cpu,host=a", "user", 11);
	{ /* two more in one put, one of them given no ref (skipped) */
		struct ts_refkey x = key("lp|", "cpu,host=a");
		struct ts_refname n[] = { { "system", 6 }, { "steal", 5 }, { "idle", 4 } };
		ts_series_ref r[] = { 12, 0, 13 };
		assert_int_equal(ts_refcache_put(c, &x, n, r, 3), 0);
	}
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "steal"), 0);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "system"), 12);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "nice"), 0);
	assert_int_equal(get1(c, "lp|", "cpu,host=ab", "user"), 0);
	assert_int_equal(get1(c, "lp|", "cpu,host=", "user"), 0);
	assert_int_equal(get1(c, "lp", "|cpu,host=a", "user"), 0);
	assert_int_equal(get1(c, "rw", "cpu,host=a", "user"), 0);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "use"), 0);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", ""), 0);

	/* Several names at once, in another order than they were put, one unknown. */
	struct ts_refkey k = key("lp|", "cpu,host=a");
	struct ts_refname n[] = { { "idle", 4 }, { "nice", 4 }, { "user", 4 }, { "system", 6 } };
	ts_series_ref r[4];
	assert_int_equal(ts_refcache_get(c, &k, n, 4, r), 3);
	assert_int_equal(r[0], 13);
	assert_int_equal(r[1], 0);
	assert_int_equal(r[2], 11);
	assert_int_equal(r[3], 12);

	/* A put replaces. */
	put1(c, "lp|", "cpu,host=a", "user", 21);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "user"), 21);
	assert_int_equal(get1(c, "lp|", "cpu,host=a", "idle"), 13);

	struct ts_refcache_stats st;
	ts_refcache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_true(st.hits >= 6 && st.misses >= 8);
	assert_int_equal(st.resets, 0);
	assert_true(st.bytes > 0 && st.bytes < (1 << 20));

	/* Keys too long are never cached. */
	char big[TS_REFCACHE_MAX_KEY + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	put1(c, "lp|", big, "user", 5);
	assert_int_equal(get1(c, "lp|", big, "user"), 0);
	ts_refcache_free(c);
}

/* Get, then put on a miss, as ingest does. Returns 1 on a hit. */
static int touch(struct ts_refcache *c, const char *k, ts_series_ref ref)
{
	struct ts_refkey x = key("s", k);
	struct ts_refname n = { "usage_user", 10 };
	ts_series_ref r;
	if (ts_refcache_get(c, &x, &n, 1, &r)) {
		assert_int_equal(r, ref);
		return 1;
	}
	assert_int_equal(ts_refcache_put(c, &x, &n, &ref, 1), 0);
	return 0;
}

/* Past its bound the cache stops growing. Keys written round after round in a cycle
 * longer than it holds still hit for the part it keeps; keys that stop coming make room
 * for new ones. */
static void test_bounded(void **state)
{
	(void)state;
	struct ts_refcache *c = ts_refcache_new(1 << 20);
	char k[64];
	int hits[3] = { 0 };
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 20000; i++) {
			snprintf(k, sizeof k, "cpu,host=host_%d,region=r", i);
			hits[round] += touch(c, k, (ts_series_ref)i + 1);
			struct ts_refcache_stats st;
			ts_refcache_stats(c, &st);
			assert_true(st.bytes <= (1 << 20) + 64 * 4096);
		}
	struct ts_refcache_stats st;
	ts_refcache_stats(c, &st);
	assert_int_equal(hits[0], 0);
	assert_true(st.entries > 2000 && st.entries < 20000);
	assert_true(st.skipped > 0);
	/* What it holds answers every round: as many hits as entries. */
	assert_int_equal(hits[1], (int)st.entries);
	assert_int_equal(hits[2], (int)st.entries);
	assert_int_equal(st.resets, 0);
	/* Other keys from now on: the old ones stop answering, the shards are emptied and
	 * the new keys come in and hit. */
	int new_hits = 0;
	for (int round = 0; round < 150; round++)
		for (int i = 0; i < 2000; i++) {
			snprintf(k, sizeof k, "mem,host=host_%d,region=r", i);
			new_hits += touch(c, k, (ts_series_ref)i + 7);
		}
	ts_refcache_stats(c, &st);
	assert_true(st.resets > 0);
	assert_true(new_hits > 2000);
	ts_refcache_free(c);
}

struct worker {
	struct ts_refcache *c;
	int id;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char k[64];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 5000; i++) {
			snprintf(k, sizeof k, "m,h=%d", i);
			ts_series_ref want = (ts_series_ref)i * 2 + 1;
			struct ts_refkey x = key("t", k);
			struct ts_refname n = { w->id ? "b" : "a", 1 };
			ts_series_ref r;
			if (ts_refcache_get(w->c, &x, &n, 1, &r))
				assert_int_equal(r, want);
			else
				assert_int_equal(ts_refcache_put(w->c, &x, &n, &want, 1), 0);
		}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct ts_refcache *c = ts_refcache_new(256 << 10); /* small: resets happen too */
	pthread_t t[2];
	struct worker w[2] = { { c, 0 }, { c, 1 } };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ts_refcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_scopes_keys),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
