/*
 * registry.c - the series registry: every series the database knows, found by canonical
 * label set (sharded hash tables) or by id (an array indexed by id), and the list of
 * series logged but not yet in the index env.
 *
 * Series are looked up by label hash in one of TS_SHARDS shards, each with its own
 * mutex, so ingest threads look up in parallel. A series, once created, is never freed
 * before the database closes, so a pointer taken from the registry stays valid. by_id
 * grows under ids_mu (a rwlock: look-ups share it). next_id only grows.
 *
 * Uses: head.c (a series' head is freed with it), labels.c, storage/.
 */
#include <errno.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

static struct ts_shard *shard_of(struct ts_db *db, uint64_t hash)
{
	return &db->shards[hash >> 58]; /* top 6 bits: TS_SHARDS == 64 */
}

/* Finds a series by packed labels in its shard (shard lock held). */
static struct ts_series *shard_find(struct ts_shard *sh, uint64_t hash, const uint8_t *p,
				    size_t len)
{
	if (!sh->cap)
		return NULL;
	size_t mask = sh->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		const struct ts_slot *sl = &sh->slots[i];
		if (!sl->s)
			return NULL;
		if (sl->hash == hash && sl->s->packed_len == len &&
		    memcmp(sl->s->packed, p, len) == 0)
			return sl->s;
	}
}

/* Places s in the first free slot of its probe sequence (cap a power of two). */
static void slot_place(struct ts_slot *slots, size_t cap, struct ts_series *s)
{
	size_t j = s->hash & (cap - 1);
	while (slots[j].s)
		j = (j + 1) & (cap - 1);
	slots[j] = (struct ts_slot){ s->hash, s };
}

/* Adds s, rehashing into a table twice the size past a load of 0.7 (shard lock held). */
static int shard_put(struct ts_shard *sh, struct ts_series *s)
{
	if ((sh->n + 1) * 10 > sh->cap * 7) {
		size_t cap = sh->cap ? sh->cap * 2 : 64;
		struct ts_slot *slots = ts_calloc(cap, sizeof *slots);
		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < sh->cap; i++)
			if (sh->slots[i].s)
				slot_place(slots, cap, sh->slots[i].s);
		ts_free(sh->slots);
		/* Atomic stores: ts__series_prefetch reads these without the lock. The old
		 * array is freed before, so a prefetch may name freed memory: harmless. */
		__atomic_store_n(&sh->slots, slots, __ATOMIC_RELAXED);
		__atomic_store_n(&sh->cap, cap, __ATOMIC_RELAXED);
	}
	slot_place(sh->slots, sh->cap, s);
	sh->n++;
	return 0;
}

struct ts_series *ts__series_by_id(struct ts_db *db, uint64_t id)
{
	struct ts_series *s = NULL;
	pthread_rwlock_rdlock(&db->ids_mu);
	if (id < db->by_id_cap)
		s = db->by_id[id];
	pthread_rwlock_unlock(&db->ids_mu);
	return s;
}

void ts__series_each(struct ts_db *db, void (*fn)(void *arg, const struct ts_series *s), void *arg)
{
	pthread_rwlock_rdlock(&db->ids_mu);
	for (size_t i = 0; i < db->by_id_cap; i++)
		if (db->by_id[i])
			fn(arg, db->by_id[i]);
	pthread_rwlock_unlock(&db->ids_mu);
}

static int by_id_set(struct ts_db *db, uint64_t id, struct ts_series *s)
{
	int rc = 0;
	pthread_rwlock_wrlock(&db->ids_mu);
	size_t old = db->by_id_cap;
	if (id >= old) {
		rc = ts_grow((void **)&db->by_id, &db->by_id_cap, (size_t)id + 1,
			     sizeof *db->by_id);
		if (rc)
			goto out;
		memset(db->by_id + old, 0, (db->by_id_cap - old) * sizeof *db->by_id);
	}
	db->by_id[id] = s;
out:
	pthread_rwlock_unlock(&db->ids_mu);
	return rc;
}

static struct ts_series *series_alloc(uint64_t id, const uint8_t *packed, size_t len, uint64_t hash)
{
	/* The labels live right after the series, in one allocation: a look-up that finds
	 * the series reads them without a second cache miss. */
	struct ts_series *s = ts_calloc(1, sizeof *s + len);
	if (!s)
		return NULL;
	s->packed = (uint8_t *)(s + 1);
	memcpy(s->packed, packed, len);
	s->packed_len = (uint32_t)len;
	s->id = id;
	s->hash = hash;
	s->max_t = INT64_MIN;
	s->max_t_known = 1; /* a new series: everything it will hold passes through its head */
	ts_xor_enc_init(&s->enc);
	return s;
}

static void series_free(struct ts_series *s)
{
	if (!s)
		return;
	ts__head_free(s);
	ts_free(s); /* and its labels */
}

int ts__series_insert(struct ts_db *db, uint64_t id, const uint8_t *packed, size_t len,
		      uint64_t hash, struct ts_series **out)
{
	struct ts_series *s = series_alloc(id, packed, len, hash);
	if (!s)
		return -ENOMEM;
	int rc = by_id_set(db, id, s);
	if (rc) {
		series_free(s);
		return rc;
	}
	struct ts_shard *sh = shard_of(db, hash);
	pthread_mutex_lock(&sh->mu);
	rc = shard_find(sh, hash, packed, len) ? TS_CORRUPT() : shard_put(sh, s);
	pthread_mutex_unlock(&sh->mu);
	if (rc) {
		by_id_set(db, id, NULL); /* cannot fail: the slot exists */
		series_free(s);
		return rc;
	}
	uint64_t next = atomic_load(&db->next_id);
	while (next <= id && !atomic_compare_exchange_weak(&db->next_id, &next, id + 1))
		;
	*out = s;
	return 0;
}

void ts__series_prefetch(struct ts_db *db, uint64_t hash)
{
	/* Read without the shard lock, so atomically (the lock holder stores them the same
	 * way): a stale pair only prefetches a useless address, which never faults. */
	struct ts_shard *sh = shard_of(db, hash);
	struct ts_slot *slots = __atomic_load_n(&sh->slots, __ATOMIC_RELAXED);
	size_t cap = __atomic_load_n(&sh->cap, __ATOMIC_RELAXED);
	if (slots && cap)
		__builtin_prefetch(&slots[hash & (cap - 1)]);
}

struct ts_series *ts__series_find(struct ts_db *db, const uint8_t *packed, size_t len)
{
	return ts__series_find_h(db, packed, len, ts_labels_hash(packed, len));
}

struct ts_series *ts__series_find_h(struct ts_db *db, const uint8_t *packed, size_t len,
				    uint64_t hash)
{
	struct ts_shard *sh = shard_of(db, hash);
	pthread_mutex_lock(&sh->mu);
	struct ts_series *s = shard_find(sh, hash, packed, len);
	pthread_mutex_unlock(&sh->mu);
	return s;
}

int ts__series_get(struct ts_db *db, const uint8_t *packed, size_t len, struct ts_series **out)
{
	uint64_t hash = ts_labels_hash(packed, len);
	struct ts_shard *sh = shard_of(db, hash);
	int rc = 0;
	pthread_mutex_lock(&sh->mu);
	struct ts_series *s = shard_find(sh, hash, packed, len);
	if (s)
		goto out;
	uint64_t id = atomic_fetch_add(&db->next_id, 1);
	s = series_alloc(id, packed, len, hash);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = by_id_set(db, id, s);
	if (rc == 0)
		rc = shard_put(sh, s);
	if (rc) {
		by_id_set(db, id, NULL);
		series_free(s);
		s = NULL;
		goto out;
	}
out:
	pthread_mutex_unlock(&sh->mu);
	*out = s;
	return rc;
}

void ts__series_unlink(struct ts_db *db, struct ts_series *s)
{
	struct ts_shard *sh = shard_of(db, s->hash);
	pthread_mutex_lock(&sh->mu);
	size_t mask = sh->cap - 1, i = s->hash & mask;
	while (sh->cap && sh->slots[i].s && sh->slots[i].s != s)
		i = (i + 1) & mask;
	if (sh->cap && sh->slots[i].s == s) {
		/* Linear probing: later members of the run move back over the hole when their
		 * home slot is not between the hole and them. */
		sh->slots[i] = (struct ts_slot){ 0, NULL };
		sh->n--;
		for (size_t j = (i + 1) & mask; sh->slots[j].s; j = (j + 1) & mask) {
			size_t home = sh->slots[j].hash & mask;
			if (((j - home) & mask) >= ((j - i) & mask)) {
				sh->slots[i] = sh->slots[j];
				sh->slots[j] = (struct ts_slot){ 0, NULL };
				i = j;
			}
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

int ts__series_unindexed_add(struct ts_db *db, struct ts_series *s)
{
	if (ts_grow((void **)&db->unindexed, &db->cap_unindexed, db->n_unindexed + 1,
		    sizeof *db->unindexed))
		return -ENOMEM;
	db->unindexed[db->n_unindexed++] = s;
	/* Listing is an optimisation of selections: without memory for it they scan. */
	if (!db->up_broken && ts__upost_add(db, s, db->n_unindexed - 1))
		ts__upost_lost(db);
	return 0;
}

uint64_t ts__registry_bytes(struct ts_db *db)
{
	uint64_t b = db->cap_unindexed * sizeof *db->unindexed + ts__upost_bytes(db);
	for (int i = 0; i < TS_SHARDS; i++) {
		pthread_mutex_lock(&db->shards[i].mu);
		b += db->shards[i].cap * sizeof *db->shards[i].slots;
		pthread_mutex_unlock(&db->shards[i].mu);
	}
	pthread_rwlock_rdlock(&db->ids_mu);
	b += db->by_id_cap * sizeof *db->by_id;
	pthread_rwlock_unlock(&db->ids_mu);
	return b;
}

void ts__registry_init(struct ts_db *db)
{
	atomic_init(&db->next_id, 1);
	for (int i = 0; i < TS_SHARDS; i++)
		pthread_mutex_init(&db->shards[i].mu, NULL);
	pthread_rwlock_init(&db->ids_mu, NULL);
}

void ts__registry_free(struct ts_db *db)
{
	for (size_t i = 0; i < db->by_id_cap; i++)
		series_free(db->by_id[i]);
	ts_free(db->by_id);
	for (int i = 0; i < TS_SHARDS; i++) {
		ts_free(db->shards[i].slots);
		pthread_mutex_destroy(&db->shards[i].mu);
	}
	ts_free(db->unindexed);
	ts__upost_free(db);
	pthread_rwlock_destroy(&db->ids_mu);
}
