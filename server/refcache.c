/*
 * refcache.c - series refs by raw protocol bytes (refcache.h).
 *
 * 64 shards, chosen by the top bits of the key's hash, each an open-addressing table of
 * entries under its own mutex. An entry is one allocation: the scope and key bytes,
 * then its names as records (ref, length, bytes) in a buffer of their own that grows
 * when a name is added. Entries are never removed one by one: a shard that is full is
 * emptied whole, so the table needs no tombstones and a look-up stops at an empty slot.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <xxhash.h>

#include "server/refcache.h"
#include "storage/mem.h"

#define SHARDS 64

struct ent {
	uint64_t hash;
	uint32_t scope_len, key_len;
	uint32_t nm_len, nm_cap;
	uint8_t *nm;  /* records: ref (8 bytes), name length (4), name */
	char bytes[]; /* scope, then key */
};

struct slot {
	uint64_t hash;
	struct ent *e;
};

struct shard {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t cap, n; /* cap: 0 or a power of two */
	size_t bytes;
	uint64_t hits, misses, resets, skipped;
	uint64_t hits0, skipped0; /* hits and skipped when the shard was last emptied */
} __attribute__((aligned(64)));	  /* look-ups from two threads do not share a line */

struct ts_refcache {
	size_t shard_max;
	struct shard sh[SHARDS];
};

#define REC_HDR 12

struct ts_refcache *ts_refcache_new(size_t max_bytes)
{
	struct ts_refcache *c = ts_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (max_bytes < (64u << 10))
		max_bytes = 64u << 10;
	c->shard_max = max_bytes / SHARDS;
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&c->sh[i].mu, NULL);
	return c;
}

static size_t ent_size(const struct ent *e)
{
	return sizeof *e + e->scope_len + e->key_len + e->nm_cap;
}

static void shard_clear(struct shard *sh)
{
	for (size_t i = 0; i < sh->cap; i++)
		if (sh->slots[i].e) {
			ts_free(sh->slots[i].e->nm);
			ts_free(sh->slots[i].e);
		}
	ts_free(sh->slots);
	sh->slots = NULL;
	sh->cap = sh->n = sh->bytes = 0;
}

void ts_refcache_free(struct ts_refcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < SHARDS; i++) {
		shard_clear(&c->sh[i]);
		pthread_mutex_destroy(&c->sh[i].mu);
	}
	ts_free(c);
}

void ts_refkey_set(struct ts_refkey *k, const char *scope, size_t scope_len, const char *key,
		   size_t key_len)
{
	k->scope = scope;
	k->scope_len = scope_len;
	k->key = key;
	k->key_len = key_len;
	/* The scope seeds the key's hash: scopes are short and few, keys long. */
	k->hash = XXH3_64bits_withSeed(key, key_len, XXH3_64bits(scope, scope_len));
}

static struct shard *shard_of(struct ts_refcache *c, uint64_t hash)
{
	return &c->sh[hash >> 58];
}

static int ent_is(const struct ent *e, const struct ts_refkey *k)
{
	return e->scope_len == k->scope_len && e->key_len == k->key_len &&
	       memcmp(e->bytes, k->scope, k->scope_len) == 0 &&
	       memcmp(e->bytes + k->scope_len, k->key, k->key_len) == 0;
}

/* The entry of k, or NULL (shard lock held). */
static struct ent *find(struct shard *sh, const struct ts_refkey *k)
{
	if (!sh->cap)
		return NULL;
	size_t mask = sh->cap - 1;
	for (size_t i = (size_t)k->hash & mask;; i = (i + 1) & mask) {
		struct slot *s = &sh->slots[i];
		if (!s->e)
			return NULL;
		if (s->hash == k->hash && ent_is(s->e, k))
			return s->e;
	}
}

static uint32_t rec_len(const uint8_t *r)
{
	uint32_t n;
	memcpy(&n, r + 8, 4);
	return n;
}

/* The record of name in e, or NULL. *at is where the search starts and, on a find,
 * moves past the record: names are usually asked for in the order they were added. */
static uint8_t *find_name(const struct ent *e, const char *name, size_t len, uint32_t *at)
{
	for (int pass = 0; pass < 2; pass++) {
		uint32_t from = pass ? 0 : *at, to = pass ? *at : e->nm_len;
		for (uint32_t o = from; o < to; o += REC_HDR + rec_len(e->nm + o)) {
			uint8_t *r = e->nm + o;
			if (rec_len(r) == len && memcmp(r + REC_HDR, name, len) == 0) {
				*at = o + REC_HDR + (uint32_t)len;
				return r;
			}
		}
	}
	return NULL;
}

size_t ts_refcache_get(struct ts_refcache *c, const struct ts_refkey *k,
		       const struct ts_refname *names, size_t n, ts_series_ref *refs)
{
	size_t found = 0;
	struct shard *sh = shard_of(c, k->hash);
	pthread_mutex_lock(&sh->mu);
	struct ent *e = k->key_len <= TS_REFCACHE_MAX_KEY ? find(sh, k) : NULL;
	uint32_t at = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *r = e ? find_name(e, names[i].s, names[i].len, &at) : NULL;
		refs[i] = 0;
		if (r) {
			memcpy(&refs[i], r, 8);
			found++;
		}
	}
	sh->hits += found;
	sh->misses += n - found;
	pthread_mutex_unlock(&sh->mu);
	return found;
}

/* Adds e to the table (shard lock held, room checked). Returns 0 or -ENOMEM. */
static int table_add(struct shard *sh, struct ent *e)
{
	if ((sh->n + 1) * 10 > sh->cap * 7) {
		size_t cap = sh->cap ? sh->cap * 2 : 64;
		struct slot *s = ts_calloc(cap, sizeof *s);
		if (!s)
			return -ENOMEM;
		for (size_t i = 0; i < sh->cap; i++) {
			if (!sh->slots[i].e)
				continue;
			size_t j = (size_t)sh->slots[i].hash & (cap - 1);
			while (s[j].e)
				j = (j + 1) & (cap - 1);
			s[j] = sh->slots[i];
		}
		sh->bytes += (cap - sh->cap) * sizeof *s;
		ts_free(sh->slots);
		sh->slots = s;
		sh->cap = cap;
	}
	size_t j = (size_t)e->hash & (sh->cap - 1);
	while (sh->slots[j].e)
		j = (j + 1) & (sh->cap - 1);
	sh->slots[j] = (struct slot){ e->hash, e };
	sh->n++;
	return 0;
}

/* Room for `grow` more bytes (shard lock held). A full shard keeps what it holds and
 * takes nothing new, so that a cache smaller than the series written round after round
 * answers for the part it holds (emptying it whenever full, each key would be dropped
 * before it came round again, and none would ever hit). Once it has turned away more
 * than eight keys for each look-up it answered and each key it holds (room for a cycle
 * nine times its size to come round), its series have mostly gone (pods replaced,
 * hosts renamed) and it is emptied. Returns 1 when the bytes may be added. */
static int make_room(struct ts_refcache *c, struct shard *sh, size_t grow)
{
	if (sh->bytes + grow <= c->shard_max)
		return 1;
	uint64_t hits = sh->hits - sh->hits0, skipped = sh->skipped - sh->skipped0;
	if (skipped <= 8 * (hits + sh->n)) {
		sh->skipped++;
		/* Judged on recent traffic: past a window, the counts so far weigh half. */
		if (skipped > 16 * (uint64_t)sh->n) {
			sh->hits0 += hits / 2;
			sh->skipped0 += skipped / 2;
		}
		return 0;
	}
	shard_clear(sh);
	sh->resets++;
	sh->hits0 = sh->hits;
	sh->skipped0 = sh->skipped;
	return 1;
}

int ts_refcache_put(struct ts_refcache *c, const struct ts_refkey *k,
		    const struct ts_refname *names, const ts_series_ref *refs, size_t n)
{
	if (k->key_len > TS_REFCACHE_MAX_KEY || k->scope_len > TS_REFCACHE_MAX_KEY)
		return 0;
	struct shard *sh = shard_of(c, k->hash);
	int rc = 0;
	pthread_mutex_lock(&sh->mu);
	struct ent *e = find(sh, k);
	/* Replace the refs of names already there; size the records of the others. */
	size_t add = 0;
	uint32_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (!refs[i] || names[i].len > TS_REFCACHE_MAX_KEY)
			continue;
		uint8_t *r = e ? find_name(e, names[i].s, names[i].len, &at) : NULL;
		if (r)
			memcpy(r, &refs[i], 8);
		else
			add += REC_HDR + names[i].len;
	}
	if (!add)
		goto out;
	size_t grow = add +
		      (e ? 0 : sizeof *e + k->scope_len + k->key_len + 2 * sizeof(struct slot));
	if (!make_room(c, sh, grow))
		goto out;
	if (e && !sh->n)
		e = NULL; /* emptied by make_room */
	if (!e) {
		e = ts_malloc(sizeof *e + k->scope_len + k->key_len);
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		*e = (struct ent){ .hash = k->hash,
				   .scope_len = (uint32_t)k->scope_len,
				   .key_len = (uint32_t)k->key_len };
		memcpy(e->bytes, k->scope, k->scope_len);
		memcpy(e->bytes + k->scope_len, k->key, k->key_len);
		if ((rc = table_add(sh, e)) != 0) {
			ts_free(e);
			goto out;
		}
		sh->bytes += ent_size(e);
	}
	/* Sized exactly: a line's fields come in one call, so entries rarely grow. */
	uint8_t *x = ts_realloc(e->nm, e->nm_len + add);
	if (!x) {
		rc = -ENOMEM;
		goto out;
	}
	sh->bytes += e->nm_len + add - e->nm_cap;
	e->nm = x;
	e->nm_cap = e->nm_len + (uint32_t)add;
	at = 0;
	for (size_t i = 0; i < n; i++) {
		if (!refs[i] || names[i].len > TS_REFCACHE_MAX_KEY)
			continue;
		uint32_t probe = 0;
		if (find_name(e, names[i].s, names[i].len, &probe))
			continue; /* replaced above, or a name given twice */
		uint8_t *w = e->nm + e->nm_len;
		uint32_t l32 = (uint32_t)names[i].len;
		memcpy(w, &refs[i], 8);
		memcpy(w + 8, &l32, 4);
		memcpy(w + REC_HDR, names[i].s, names[i].len);
		e->nm_len += REC_HDR + l32;
	}
out:
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

void ts_refcache_stats(struct ts_refcache *c, struct ts_refcache_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!c)
		return;
	st->bytes = sizeof *c;
	for (int i = 0; i < SHARDS; i++) {
		struct shard *sh = &c->sh[i];
		pthread_mutex_lock(&sh->mu);
		st->bytes += sh->bytes;
		st->entries += sh->n;
		st->hits += sh->hits;
		st->misses += sh->misses;
		st->resets += sh->resets;
		st->skipped += sh->skipped;
		pthread_mutex_unlock(&sh->mu);
	}
}
