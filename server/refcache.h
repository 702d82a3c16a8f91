/*
 * refcache.h - the engine's series refs (ts_series_ref) by the bytes a write protocol
 * names a series with, so a series seen before is appended without building, sorting,
 * packing and looking up its labels (for line protocol that was about a third of the
 * ingest CPU).
 *
 * A key is a scope (what else the labels depend on: the protocol, the tenant, the
 * ?db= parameter) and the raw bytes of the series' name in the request as written, e.g.
 * a line-protocol line's measurement and tag set with their escapes. Under a key sit
 * names (line protocol: field keys), each with its ref. Equal bytes give equal labels,
 * so a hit is exact; the same series written with other bytes (tags in another order)
 * is only a miss. The cache never decides anything the engine would not: a ref stays
 * valid for the database's life (tsdb.h).
 *
 * Bounded: each of its shards holds at most max_bytes / shards bytes. A full shard
 * keeps its entries and takes no new ones (series written round after round in a cycle
 * longer than the cache would otherwise evict each other and never hit), until it has
 * turned away many more keys than it answered: then it is emptied.
 * Thread-safe: shards have their own mutex.
 */
#ifndef TS_SERVER_REFCACHE_H
#define TS_SERVER_REFCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

struct ts_refcache;

/* A key; fill it with ts_refkey_set. Its bytes are borrowed. */
struct ts_refkey {
	uint64_t hash;
	const char *scope, *key;
	size_t scope_len, key_len;
};

/* One name under a key (bytes borrowed). */
struct ts_refname {
	const char *s;
	size_t len;
};

/* Keys longer than this are not cached (a look-up of one is a miss). */
#define TS_REFCACHE_MAX_KEY 4096

/* A cache of at most max_bytes (at least 64 KiB is used). NULL when out of memory. */
struct ts_refcache *ts_refcache_new(size_t max_bytes);

/* Frees c and its entries. Accepts NULL. */
void ts_refcache_free(struct ts_refcache *c);

/* Sets k to key[0..key_len) in scope[0..scope_len) (both borrowed while k is used). */
void ts_refkey_set(struct ts_refkey *k, const char *scope, size_t scope_len, const char *key,
		   size_t key_len);

/* For names[0..n) under k: refs[i] receives the ref of names[i], or 0 when not cached.
 * Returns how many were found. */
size_t ts_refcache_get(struct ts_refcache *c, const struct ts_refkey *k,
		       const struct ts_refname *names, size_t n, ts_series_ref *refs);

/* Remembers refs[i] for names[i] under k (i < n; a 0 ref is skipped), replacing what
 * was there. A full shard takes nothing new while it still answers (see refcache.c),
 * else it is emptied first. Returns 0, or -ENOMEM (not all was remembered; the cache
 * stays usable). */
int ts_refcache_put(struct ts_refcache *c, const struct ts_refkey *k,
		    const struct ts_refname *names, const ts_series_ref *refs, size_t n);

struct ts_refcache_stats {
	uint64_t bytes;	       /* held, including the tables */
	uint64_t entries;      /* keys */
	uint64_t hits, misses; /* names looked up, since start */
	uint64_t resets;       /* shards emptied because they were full */
	uint64_t skipped;      /* keys not taken by a full shard that still answers */
};

void ts_refcache_stats(struct ts_refcache *c, struct ts_refcache_stats *st);

#endif
