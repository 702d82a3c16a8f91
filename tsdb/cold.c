/*
 * cold.c - a partition's cold data: converting sealed XOR chunks into cold blocks
 * (storage/cold.h), merging generations, reading a series' cold samples, and the cache
 * of opened blocks.
 *
 * Why: XOR chunks of 120 samples cost about 1.3 bytes per sample of payload plus a
 * 32-byte header and an LMDB key each, and every series stores its own timestamps. A
 * cold block holds hundreds of series at once: series scraped together store their
 * timestamps once, values are coded as decimals where they are, and zstd runs over the
 * whole block. Hot chunks stay what the head writes and remote read streams; cold data
 * is decoded into sample arrays for queries (and re-encoded into XOR chunks only where a
 * protocol wants chunks).
 *
 * Layout and keys: format.h ("Cold data of a partition"). A conversion reads, in series
 * order, every hot chunk of the partition and (when merging) the blocks of the chosen
 * generations, merges each series' samples by timestamp (the older source wins a tie),
 * and writes the result as one new generation:
 *   1. blocks of the new generation are put in slices, each its own transaction; they
 *      are invisible to readers, who only read the generations the "gens" row lists;
 *   2. one final transaction rewrites "gens" (the new generation in, merged ones out)
 *      and deletes the hot chunks and old blocks that were merged.
 * A crash before 2 leaves blocks of an unlisted generation: the next conversion deletes
 * them first. Readers see either the old sources or the new generation, never both or
 * neither. Only the writer thread converts (it also writes the hot chunks), so nothing
 * changes a partition's sources between the slices.
 *
 * Reads hold one snapshot of the partition env, so the "gens" row, the cold blocks and
 * the hot chunks they see belong together.
 *
 * The cache: opening a block means decompressing all of it, and a query reads many
 * series of one block (every series of one target). Opened blocks are kept in an LRU
 * bounded in bytes, keyed by partition start and block key, and checked against a hash
 * of the block's stored header and length (a partition dropped by retention and written
 * again may reuse a key). The header holds the body's CRC32C, ids, times and counts, so
 * another block under the same key has another header; hashing it instead of the whole
 * block keeps a cache hit at a few nanoseconds (hashing the block cost a fifth of a
 * series look-up's CPU). Entries are reference-counted so eviction never frees a block a reader
 * is decoding.
 *
 * Uses: partition.c (pins), format.h, storage/ (cold, chunk, xor, env).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/chunk.h"
#include "storage/cold.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/failpoint.h"

#define BLOCK_SAMPLES 32768	 /* a block is cut once it holds this many samples */
#define BLOCK_SERIES 2048	 /* or this many series */
#define SLICE_SAMPLES (1u << 21) /* samples read per snapshot while converting */
#define SLICE_BYTES (16u << 20)	 /* block bytes per write transaction */
#define CACHE_BUCKETS 1024	 /* hash buckets of the block cache */
#define MERGE_FANIN 4		 /* generations of one level merged together */

/* ---- keys and the gens row ---- */

static void be32_put(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void cold_key(uint8_t key[TS_FORMAT_COLD_KEY_LEN], uint32_t gen, uint64_t id, int64_t t)
{
	be32_put(key, gen);
	ts_format_put_be64(key + 4, id);
	ts_format_put_be64(key + 12, (uint64_t)t ^ UINT64_C(0x8000000000000000));
}

int ts__cold_gens_read(struct ts_rtxn *r, unsigned meta, struct ts__gen **out, size_t *n)
{
	const void *v;
	size_t vl;
	*out = NULL;
	*n = 0;
	int rc = ts_env_get(r, meta, TS_FORMAT_PART_META_GENS, strlen(TS_FORMAT_PART_META_GENS), &v,
			    &vl);
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	const uint8_t *p = v;
	if (vl < 4)
		return TS_CORRUPT();
	uint32_t m = ts_format_get_le32(p);
	if (m > TS_FORMAT_GENS_MAX || vl != 4 + (size_t)m * TS_FORMAT_GENS_ENTRY_LEN)
		return TS_CORRUPT();
	if (m == 0)
		return 0;
	struct ts__gen *g = ts_malloc(m * sizeof *g);
	if (!g)
		return -ENOMEM;
	for (uint32_t i = 0; i < m; i++) {
		const uint8_t *e = p + 4 + (size_t)i * TS_FORMAT_GENS_ENTRY_LEN;
		g[i].gen = ts_format_get_le32(e);
		g[i].level = ts_format_get_le32(e + 4);
		g[i].n_samples = ts_format_get_le64(e + 8);
		g[i].bytes = ts_format_get_le64(e + 16);
		if (i && g[i].gen <= g[i - 1].gen) {
			ts_free(g);
			return TS_CORRUPT();
		}
	}
	*out = g;
	*n = m;
	return 0;
}

static int gens_put(struct ts_batch *b, unsigned meta, const struct ts__gen *g, size_t n)
{
	if (n == 0)
		return ts_batch_del(b, meta, TS_FORMAT_PART_META_GENS,
				    strlen(TS_FORMAT_PART_META_GENS), NULL, 0);
	size_t len = 4 + n * TS_FORMAT_GENS_ENTRY_LEN;
	uint8_t *p = ts_malloc(len);
	if (!p)
		return -ENOMEM;
	ts_format_put_le32(p, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = p + 4 + i * TS_FORMAT_GENS_ENTRY_LEN;
		ts_format_put_le32(e, g[i].gen);
		ts_format_put_le32(e + 4, g[i].level);
		ts_format_put_le64(e + 8, g[i].n_samples);
		ts_format_put_le64(e + 16, g[i].bytes);
	}
	int rc = ts_batch_put(b, meta, TS_FORMAT_PART_META_GENS, strlen(TS_FORMAT_PART_META_GENS),
			      p, len);
	ts_free(p);
	return rc;
}

/* ---- the block cache ---- */

struct cache_ent {
	int64_t part;
	uint8_t key[TS_FORMAT_COLD_KEY_LEN];
	uint64_t hash; /* of the stored block's header, seeded with its length */
	struct ts_cold_block *b;
	size_t mem;
	int refs; /* the cache's own (while listed) plus one per reader */
	struct cache_ent *hnext, *prev, *next;
};

struct ts__cold_cache {
	pthread_mutex_t mu;
	struct cache_ent *buckets[CACHE_BUCKETS];
	struct cache_ent *head, *tail; /* most recently used first */
	size_t mem, cap;
	uint64_t hits, misses;
};

int ts__cold_cache_new(size_t cap_bytes, struct ts__cold_cache **out)
{
	struct ts__cold_cache *c = ts_calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->cap = cap_bytes;
	*out = c;
	return 0;
}

static size_t bucket_of(int64_t part, const uint8_t *key)
{
	uint64_t h = XXH3_64bits_withSeed(key, TS_FORMAT_COLD_KEY_LEN, (uint64_t)part);
	return (size_t)(h % CACHE_BUCKETS);
}

static void ent_put(struct cache_ent *e)
{
	if (--e->refs == 0) {
		ts_cold_free(e->b);
		ts_free(e);
	}
}

/* Unlists e (mu held); readers still holding it keep it alive. */
static void ent_unlist(struct ts__cold_cache *c, struct cache_ent *e)
{
	struct cache_ent **pp = &c->buckets[bucket_of(e->part, e->key)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	c->mem -= e->mem;
	ent_put(e);
}

static void lru_front(struct ts__cold_cache *c, struct cache_ent *e)
{
	if (c->head == e)
		return;
	if (e->prev)
		e->prev->next = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else if (c->tail == e)
		c->tail = e->prev;
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

void ts__cold_cache_free(struct ts__cold_cache *c)
{
	if (!c)
		return;
	while (c->head)
		ent_unlist(c, c->head);
	pthread_mutex_destroy(&c->mu);
	ts_free(c);
}

void ts__cold_cache_stats(struct ts__cold_cache *c, uint64_t *hits, uint64_t *misses, size_t *mem)
{
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	*mem = c->mem;
	pthread_mutex_unlock(&c->mu);
}

/* The opened block stored under (part, key) with bytes v, from the cache or opened now.
 * *out is a reference: give it back with ent_release. */
static int block_get(struct ts__cold_cache *c, int64_t part, const uint8_t *key, const void *v,
		     size_t vl, struct cache_ent **out)
{
	uint64_t hash = XXH3_64bits_withSeed(v, vl < TS_COLD_HDR_LEN ? vl : TS_COLD_HDR_LEN, vl);
	size_t bk = bucket_of(part, key);
	pthread_mutex_lock(&c->mu);
	for (struct cache_ent *e = c->buckets[bk]; e; e = e->hnext) {
		if (e->part == part && memcmp(e->key, key, TS_FORMAT_COLD_KEY_LEN) == 0) {
			if (e->hash == hash) {
				e->refs++;
				lru_front(c, e);
				c->hits++;
				pthread_mutex_unlock(&c->mu);
				*out = e;
				return 0;
			}
			ent_unlist(c, e); /* stale: the key now holds other bytes */
			break;
		}
	}
	c->misses++;
	pthread_mutex_unlock(&c->mu);

	struct cache_ent *n = ts_calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	int rc = ts_cold_open(v, vl, &n->b);
	if (rc) {
		ts_free(n);
		return rc;
	}
	n->part = part;
	memcpy(n->key, key, TS_FORMAT_COLD_KEY_LEN);
	n->hash = hash;
	n->mem = ts_cold_mem(n->b) + sizeof *n;
	n->refs = 2; /* the cache's and the caller's */
	pthread_mutex_lock(&c->mu);
	/* Another reader may have opened the same block meanwhile: keep one. */
	for (struct cache_ent *e = c->buckets[bk]; e; e = e->hnext)
		if (e->part == part && e->hash == hash &&
		    memcmp(e->key, key, TS_FORMAT_COLD_KEY_LEN) == 0) {
			e->refs++;
			lru_front(c, e);
			pthread_mutex_unlock(&c->mu);
			ts_cold_free(n->b);
			ts_free(n);
			*out = e;
			return 0;
		}
	if (n->mem > c->cap) {
		n->refs = 1; /* larger than the whole cache: the caller's only */
	} else {
		n->hnext = c->buckets[bk];
		c->buckets[bk] = n;
		n->next = c->head;
		if (c->head)
			c->head->prev = n;
		c->head = n;
		if (!c->tail)
			c->tail = n;
		c->mem += n->mem;
		while (c->mem > c->cap && c->tail && c->tail != n)
			ent_unlist(c, c->tail);
	}
	pthread_mutex_unlock(&c->mu);
	*out = n;
	return 0;
}

static void ent_release(struct ts__cold_cache *c, struct cache_ent *e)
{
	pthread_mutex_lock(&c->mu);
	ent_put(e);
	pthread_mutex_unlock(&c->mu);
}

/* ---- reading one series ---- */

int ts__cold_scan(struct ts_db *db, struct ts_rtxn *r, unsigned cold, int64_t part,
		  const struct ts__gen *gens, size_t n_gens, uint64_t id, int64_t from, int64_t to,
		  const struct ts__txn_lock *lk, ts__samples_fn fn, void *arg)
{
	int rc = 0;
	int64_t *t = NULL;
	uint64_t *v = NULL;
	size_t cap = 0;
	for (size_t g = 0; g < n_gens && rc == 0; g++) {
		struct ts_cursor *cur;
		ts__txn_enter(lk);
		if ((rc = ts_cursor_open(r, cold, &cur))) {
			ts__txn_leave(lk);
			break;
		}
		uint8_t key[TS_FORMAT_COLD_KEY_LEN];
		cold_key(key, gens[g].gen, id, INT64_MIN);
		for (rc = ts_cursor_seek(cur, key, sizeof key); rc == 0; rc = ts_cursor_next(cur)) {
			const void *k, *val;
			size_t kl, vl;
			if ((rc = ts_cursor_get(cur, &k, &kl, &val, &vl)))
				break;
			if (kl != TS_FORMAT_COLD_KEY_LEN) {
				rc = TS_CORRUPT();
				break;
			}
			if (be32_get(k) != gens[g].gen)
				break;
			struct ts_cold_info info;
			if ((rc = ts_cold_peek(val, vl, &info)))
				break;
			if (info.first_id > id)
				break;
			if (info.max_t < from || info.min_t > to)
				continue;
			/* The block's bytes are in the map, which stays put while the
			 * transaction lives: decoded without the lock. */
			ts__txn_leave(lk);
			struct cache_ent *e;
			if ((rc = block_get(db->cold_cache, part, k, val, vl, &e))) {
				ts__txn_enter(lk);
				break;
			}
			long i = ts_cold_find(e->b, id);
			if (i >= 0) {
				uint64_t sid;
				uint32_t n;
				int64_t lo, hi;
				ts_cold_series(e->b, (size_t)i, &sid, &n, &lo, &hi);
				if (hi >= from && lo <= to) {
					if (n > cap) {
						ts_free(t);
						ts_free(v);
						cap = n;
						t = ts_malloc(cap * sizeof *t);
						v = ts_malloc(cap * sizeof *v);
						if (!t || !v) {
							cap = 0;
							rc = -ENOMEM;
						}
					}
					if (rc == 0)
						rc = ts_cold_decode(e->b, (size_t)i, t, v);
					if (rc == 0)
						rc = fn(arg, t, v, n);
				}
			}
			ent_release(db->cold_cache, e);
			ts__txn_enter(lk);
			if (rc)
				break;
		}
		ts_cursor_close(cur);
		ts__txn_leave(lk);
		if (rc == TS_ENOTFOUND)
			rc = 0;
	}
	ts_free(t);
	ts_free(v);
	return rc;
}

/* ---- converting ---- */

/* A growable run of samples. */
struct run {
	int64_t *t;
	uint64_t *v;
	size_t n, cap;
};

static int run_reserve(struct run *a, size_t more)
{
	if (a->n + more <= a->cap)
		return 0;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->n + more)
		cap *= 2;
	int64_t *t = ts_realloc(a->t, cap * sizeof *t);
	if (!t)
		return -ENOMEM;
	a->t = t;
	uint64_t *v = ts_realloc(a->v, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	a->v = v;
	a->cap = cap;
	return 0;
}

static int run_add(struct run *a, const int64_t *t, const uint64_t *v, size_t n)
{
	int rc = run_reserve(a, n);
	if (rc)
		return rc;
	memcpy(a->t + a->n, t, n * sizeof *t);
	memcpy(a->v + a->n, v, n * sizeof *v);
	a->n += n;
	return 0;
}

static void run_free(struct run *a)
{
	ts_free(a->t);
	ts_free(a->v);
	memset(a, 0, sizeof *a);
}

/* Sorts a series' collected samples by time, the first of equal timestamps winning (the
 * sources were added oldest first). Already sorted (the common case) costs one pass. */
static int run_normalize(struct run *a)
{
	size_t i = 1;
	while (i < a->n && a->t[i] > a->t[i - 1])
		i++;
	if (i >= a->n)
		return 0;
	/* Stable merge sort through an index permutation. */
	size_t n = a->n;
	size_t *ix = ts_malloc(2 * n * sizeof *ix);
	struct run out = { 0 };
	int rc = ix ? run_reserve(&out, n) : -ENOMEM;
	if (rc)
		goto done;
	size_t *src = ix, *dst = ix + n;
	for (size_t k = 0; k < n; k++)
		src[k] = k;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t x = lo, y = mid, o = lo;
			while (x < mid && y < hi)
				dst[o++] = a->t[src[y]] < a->t[src[x]] ? src[y++] : src[x++];
			while (x < mid)
				dst[o++] = src[x++];
			while (y < hi)
				dst[o++] = src[y++];
		}
		size_t *tmp = src;
		src = dst;
		dst = tmp;
	}
	for (size_t k = 0; k < n; k++) {
		size_t j = src[k];
		if (out.n && out.t[out.n - 1] == a->t[j])
			continue;
		out.t[out.n] = a->t[j];
		out.v[out.n] = a->v[j];
		out.n++;
	}
	run_free(a);
	*a = out;
	out = (struct run){ 0 };
done:
	run_free(&out);
	ts_free(ix);
	return rc;
}

/* Keys of what a conversion merged, deleted by its final transaction. */
struct keys {
	uint8_t *p;
	size_t len, cap; /* bytes */
};

static int keys_add(struct keys *k, const void *key, size_t kl)
{
	if (ts_grow((void **)&k->p, &k->cap, k->len + kl, 1))
		return -ENOMEM;
	memcpy(k->p + k->len, key, kl);
	k->len += kl;
	return 0;
}

/* The hot chunks source: one series' chunks at a time, in key order. */
struct hot_src {
	struct ts_cursor *c;
	int valid; /* c is on a chunk */
	uint64_t id;
};

static int hot_load(struct hot_src *h)
{
	const void *k;
	size_t kl;
	int64_t min_t;
	h->valid = 0;
	int rc = ts_cursor_get(h->c, &k, &kl, NULL, NULL);
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc == 0 && (rc = ts_chunk_key_parse(k, kl, &h->id, &min_t)) == 0)
		h->valid = 1;
	return rc;
}

/* Appends every chunk of series h->id to a (counting them in *n_chunks); moves to the
 * next series. */
static int hot_take(struct hot_src *h, struct run *a, uint64_t *n_chunks)
{
	uint64_t id = h->id;
	int rc = 0;
	while (h->valid && h->id == id && rc == 0) {
		const void *k, *v;
		size_t kl, vl;
		struct ts_chunk_hdr hdr;
		const uint8_t *payload;
		struct ts_xor_it it;
		if ((rc = ts_cursor_get(h->c, &k, &kl, &v, &vl)) ||
		    (rc = ts_chunk_decode(v, vl, &hdr, &payload)) ||
		    (rc = ts_xor_it_init(&it, payload, hdr.payload_len)) ||
		    (rc = run_reserve(a, hdr.n_samples)))
			break;
		++*n_chunks;
		while ((rc = ts_xor_next(&it)) == 1) {
			if (a->n == a->cap && (rc = run_reserve(a, 1)))
				break;
			a->t[a->n] = it.t;
			a->v[a->n] = it.v;
			a->n++;
		}
		if (rc < 0)
			break;
		rc = ts_cursor_next(h->c);
		if (rc == 0)
			rc = hot_load(h);
		else if (rc == TS_ENOTFOUND)
			rc = 0, h->valid = 0;
	}
	return rc;
}

/* A generation's blocks as a source: one series at a time, pieces joined. */
struct gen_src {
	uint32_t gen;
	struct ts_cursor *c;
	int valid; /* c is on a block of gen */
	struct ts_cold_block *b;
	size_t i;    /* next series of b */
	uint64_t id; /* the current series (valid && b && i < n) */
};

/* Positions on the first series >= from (after the cursor was sought). */
static int gen_settle(struct gen_src *g, uint64_t from)
{
	for (;;) {
		if (g->b && g->i < ts_cold_nseries(g->b)) {
			uint32_t n;
			int64_t lo, hi;
			ts_cold_series(g->b, g->i, &g->id, &n, &lo, &hi);
			if (g->id >= from)
				return 0;
			g->i++;
			continue;
		}
		ts_cold_free(g->b);
		g->b = NULL;
		if (!g->valid)
			return 0;
		const void *k, *v;
		size_t kl, vl;
		int rc = ts_cursor_get(g->c, &k, &kl, &v, &vl);
		if (rc == TS_ENOTFOUND) {
			g->valid = 0;
			return 0;
		}
		if (rc)
			return rc;
		if (kl != TS_FORMAT_COLD_KEY_LEN)
			return TS_CORRUPT();
		if (be32_get(k) != g->gen) {
			g->valid = 0;
			return 0;
		}
		if ((rc = ts_cold_open(v, vl, &g->b)))
			return rc;
		g->i = 0;
		rc = ts_cursor_next(g->c);
		if (rc == TS_ENOTFOUND)
			g->valid = 0;
		else if (rc)
			return rc;
	}
}

static int gen_has(const struct gen_src *g)
{
	return g->b && g->i < ts_cold_nseries(g->b);
}

/* Appends every piece of series g->id to a, then moves to the next series. */
static int gen_take(struct gen_src *g, struct run *a)
{
	uint64_t id = g->id;
	int rc = 0;
	while (gen_has(g) && g->id == id && rc == 0) {
		uint64_t sid;
		uint32_t n;
		int64_t lo, hi;
		ts_cold_series(g->b, g->i, &sid, &n, &lo, &hi);
		if ((rc = run_reserve(a, n)) ||
		    (rc = ts_cold_decode(g->b, g->i, a->t + a->n, a->v + a->n)))
			break;
		a->n += n;
		g->i++;
		rc = gen_settle(g, id);
	}
	return rc;
}

/* The blocks being built. */
struct builder {
	uint32_t gen;
	int level;
	struct ts_cold_input *in;
	size_t n_in, cap_in;
	struct run data; /* the samples of in[], back to back */
	struct ts_batch *b;
	size_t batch_bytes;
	uint64_t n_samples, bytes;
	unsigned cold;
};

static int builder_cut(struct builder *bu)
{
	if (bu->n_in == 0)
		return 0;
	size_t off = 0;
	for (size_t i = 0; i < bu->n_in; i++) {
		bu->in[i].t = bu->data.t + off;
		bu->in[i].v = bu->data.v + off;
		off += bu->in[i].n;
	}
	uint8_t *blk;
	size_t len;
	int rc = ts_cold_encode(bu->in, bu->n_in, TS_COLD_LEVEL_DEFAULT, &blk, &len);
	if (rc)
		return rc;
	const struct ts_cold_input *last = &bu->in[bu->n_in - 1];
	uint8_t key[TS_FORMAT_COLD_KEY_LEN];
	cold_key(key, bu->gen, last->id, last->t[0]);
	rc = ts_batch_put(bu->b, bu->cold, key, sizeof key, blk, len);
	ts_free(blk);
	if (rc)
		return rc;
	bu->batch_bytes += len;
	bu->bytes += len;
	bu->n_samples += off;
	bu->n_in = 0;
	bu->data.n = 0;
	return 0;
}

/* Adds one series' samples (sorted, unique), cutting blocks and pieces as they fill. */
static int builder_add(struct builder *bu, uint64_t id, const struct run *a)
{
	size_t done = 0;
	while (done < a->n) {
		size_t room = BLOCK_SAMPLES - bu->data.n;
		if (room == 0 || bu->n_in == BLOCK_SERIES) {
			int rc = builder_cut(bu);
			if (rc)
				return rc;
			continue;
		}
		size_t take = a->n - done < room ? a->n - done : room;
		/* A series that fits in the next block whole goes there rather than in pieces. */
		if (take < a->n - done && bu->n_in && a->n - done <= BLOCK_SAMPLES) {
			int rc = builder_cut(bu);
			if (rc)
				return rc;
			continue;
		}
		if (ts_grow((void **)&bu->in, &bu->cap_in, bu->n_in + 1, sizeof *bu->in))
			return -ENOMEM;
		int rc = run_add(&bu->data, a->t + done, a->v + done, take);
		if (rc)
			return rc;
		bu->in[bu->n_in++] = (struct ts_cold_input){ .id = id, .n = (uint32_t)take };
		done += take;
	}
	return 0;
}

/* Appends to del the keys of every block whose generation is (want_listed) or is not
 * (!want_listed) among gens[i] with pick[i] set (pick NULL: all of gens). */
static int collect_keys(struct ts_partition *p, const struct ts__gen *gens, const int *pick,
			size_t n_gens, int want_listed, struct keys *del)
{
	struct ts_rtxn *r;
	struct ts_cursor *c = NULL;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		return rc;
	if ((rc = ts_cursor_open(r, p->cold, &c)) == 0) {
		for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
			const void *k;
			size_t kl;
			if ((rc = ts_cursor_get(c, &k, &kl, NULL, NULL)))
				break;
			if (kl != TS_FORMAT_COLD_KEY_LEN) {
				rc = TS_CORRUPT();
				break;
			}
			uint32_t g = be32_get(k);
			int listed = 0;
			for (size_t i = 0; i < n_gens && !listed; i++)
				listed = gens[i].gen == g && (!pick || pick[i]);
			if (listed == want_listed && (rc = keys_add(del, k, kl)))
				break;
		}
	}
	ts_cursor_close(c);
	ts_env_read_end(r);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* Deletes the blocks of generations the gens row does not list (a conversion a crash
 * cut short). */
static int drop_orphans(struct ts_partition *p, const struct ts__gen *gens, size_t n_gens)
{
	struct keys del = { 0 };
	int rc = collect_keys(p, gens, NULL, n_gens, 0, &del);
	if (rc == 0 && del.len) {
		struct ts_batch *b;
		if ((rc = ts_batch_new(&b)) == 0) {
			for (size_t off = 0; off < del.len && rc == 0;
			     off += TS_FORMAT_COLD_KEY_LEN)
				rc = ts_batch_del(b, p->cold, del.p + off, TS_FORMAT_COLD_KEY_LEN,
						  NULL, 0);
			if (rc == 0)
				rc = ts_env_apply(p->env, b);
			ts_batch_free(b);
		}
		if (rc == 0)
			ts_log(TS_LOG_WARN, "%s: removed %zu blocks of an unfinished conversion",
			       p->dir, del.len / TS_FORMAT_COLD_KEY_LEN);
	}
	ts_free(del.p);
	return rc;
}

/* 1 if p has any hot chunk, 0 if none, or an error. */
static int has_chunks(struct ts_partition *p)
{
	struct ts_rtxn *r;
	struct ts_cursor *c;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		return rc;
	if ((rc = ts_cursor_open(r, p->chunks, &c)) == 0) {
		rc = ts_cursor_seek(c, NULL, 0);
		rc = rc == 0 ? 1 : rc == TS_ENOTFOUND ? 0 : rc;
		ts_cursor_close(c);
	}
	ts_env_read_end(r);
	return rc;
}

struct convert {
	struct ts_partition *p;
	struct ts__gen *gens; /* listed before */
	size_t n_gens;
	int *merge; /* per listed generation: merged into the new one */
	struct builder bu;
	uint64_t n_hot; /* hot chunks read: all of the partition's once done */
	struct keys del_cold;
	uint64_t next_id; /* the next series to read */
	int done;
	uint64_t n_in;		 /* samples read */
	struct ts__tombs *tombs; /* deleted ranges, left out of what is written */
};

/* One slice: a snapshot, series from next_id until SLICE_SAMPLES have been read. */
static int convert_slice(struct convert *cv)
{
	struct ts_partition *p = cv->p;
	struct ts_rtxn *r;
	struct hot_src hot = { 0 };
	struct gen_src *gs = ts_calloc(cv->n_gens ? cv->n_gens : 1, sizeof *gs);
	struct run a = { 0 };
	if (!gs)
		return -ENOMEM;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc) {
		ts_free(gs);
		return rc;
	}
	uint8_t key[TS_FORMAT_COLD_KEY_LEN];
	if ((rc = ts_cursor_open(r, p->chunks, &hot.c)))
		goto out;
	ts_chunk_key(key, cv->next_id, INT64_MIN);
	rc = ts_cursor_seek(hot.c, key, TS_CHUNK_KEY_LEN);
	rc = rc == 0 ? hot_load(&hot) : rc == TS_ENOTFOUND ? 0 : rc;
	for (size_t g = 0; g < cv->n_gens && rc == 0; g++) {
		if (!cv->merge[g])
			continue;
		gs[g].gen = cv->gens[g].gen;
		if ((rc = ts_cursor_open(r, p->cold, &gs[g].c)))
			break;
		cold_key(key, gs[g].gen, cv->next_id, INT64_MIN);
		rc = ts_cursor_seek(gs[g].c, key, sizeof key);
		gs[g].valid = rc == 0;
		if (rc == TS_ENOTFOUND)
			rc = 0;
		if (rc == 0)
			rc = gen_settle(&gs[g], cv->next_id);
	}
	uint64_t read = 0;
	while (rc == 0 && read < SLICE_SAMPLES) {
		uint64_t id = UINT64_MAX;
		int any = 0;
		if (hot.valid) {
			id = hot.id;
			any = 1;
		}
		for (size_t g = 0; g < cv->n_gens; g++)
			if (cv->merge[g] && gen_has(&gs[g]) && (!any || gs[g].id < id)) {
				id = gs[g].id;
				any = 1;
			}
		if (!any) {
			cv->done = 1;
			break;
		}
		a.n = 0;
		/* Older generations first, then hot chunks: the first of a timestamp wins. */
		for (size_t g = 0; g < cv->n_gens && rc == 0; g++)
			if (cv->merge[g] && gen_has(&gs[g]) && gs[g].id == id)
				rc = gen_take(&gs[g], &a);
		if (rc == 0 && hot.valid && hot.id == id)
			rc = hot_take(&hot, &a, &cv->n_hot);
		if (rc == 0)
			rc = run_normalize(&a);
		/* Counted before deleted samples go: sources holding only deleted samples
		 * must still be replaced (their chunks deleted) by the switch. */
		read += a.n;
		cv->n_in += a.n;
		const struct ts__tomb *tr;
		size_t nt = ts__tombs_of(cv->tombs, id, &tr);
		if (rc == 0 && nt)
			a.n = ts__tombs_filter(tr, nt, a.t, a.v, a.n);
		if (rc == 0 && a.n)
			rc = builder_add(&cv->bu, id, &a);
		cv->next_id = id + 1;
		if (id == UINT64_MAX)
			cv->done = 1;
	}
out:
	ts_cursor_close(hot.c);
	for (size_t g = 0; g < cv->n_gens; g++) {
		ts_cursor_close(gs[g].c);
		ts_cold_free(gs[g].b);
	}
	ts_free(gs);
	ts_env_read_end(r);
	run_free(&a);
	return rc;
}

int ts__cold_convert(struct ts_db *db, struct ts_partition *p, int merge_all,
		     struct ts__convert_stats *st)
{
	struct convert cv = { .p = p };
	struct ts_rtxn *r;
	int force = merge_all == TS__CONVERT_FORCE;
	memset(st, 0, sizeof *st);
	/* Raw samples deleted by retention: the listed generations are what the tiers were
	 * built from, and a new one would make them stale for good. */
	if (atomic_load(&p->expired) & TS_FORMAT_EXPIRED_RAW)
		return 0;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		return rc;
	rc = ts__cold_gens_read(r, p->meta, &cv.gens, &cv.n_gens);
	ts_env_read_end(r);
	if (rc)
		return rc;
	if ((rc = drop_orphans(p, cv.gens, cv.n_gens)))
		goto out;
	cv.tombs = ts__tombs_get(db);
	cv.merge = ts_calloc(cv.n_gens ? cv.n_gens : 1, sizeof *cv.merge);
	if (!cv.merge) {
		rc = -ENOMEM;
		goto out;
	}
	/* Which generations join: all of them, or MERGE_FANIN of the lowest level that has
	 * that many (size-tiered: each sample is rewritten about log4(total/first) times). */
	uint32_t level = 0, next_gen = 1;
	int n_merge = 0;
	for (size_t i = 0; i < cv.n_gens; i++)
		if (cv.gens[i].gen >= next_gen)
			next_gen = cv.gens[i].gen + 1;
	/* One generation merged with nothing would be rewritten as it is (unless forced:
	 * its deleted samples are to go). */
	if (merge_all && !force && cv.n_gens == 1 && (rc = has_chunks(p)) <= 0) {
		if (rc < 0)
			goto out;
		merge_all = 0;
	}
	rc = 0;
	if (merge_all) {
		for (size_t i = 0; i < cv.n_gens; i++) {
			cv.merge[i] = 1;
			if (cv.gens[i].level + 1 > level)
				level = cv.gens[i].level + 1;
		}
		n_merge = (int)cv.n_gens;
	} else {
		for (uint32_t lv = 0; lv < 64 && n_merge == 0; lv++) {
			int cnt = 0;
			for (size_t i = 0; i < cv.n_gens; i++)
				cnt += cv.gens[i].level == lv;
			if (cnt >= MERGE_FANIN) {
				for (size_t i = 0; i < cv.n_gens; i++)
					if (cv.gens[i].level == lv)
						cv.merge[i] = 1;
				n_merge = cnt;
				level = lv + 1;
			}
		}
	}
	cv.bu.gen = next_gen;
	cv.bu.cold = p->cold;
	if ((rc = ts_batch_new(&cv.bu.b)))
		goto out;
	cv.next_id = 0;
	while (!cv.done && rc == 0) {
		rc = convert_slice(&cv);
		/* The slice read its hot chunks (and merged blocks) through the map once;
		 * those pages, freed by the switch, would stay in the RSS (measured: 45 MB of
		 * a 65 MB map by the end of a conversion at 100k series). Queries fault back in
		 * what they read. A failure here costs only memory. */
		(void)ts_env_unmap_pages(p->env);
		if (rc == 0 && (cv.bu.batch_bytes >= SLICE_BYTES || cv.done)) {
			if (cv.done)
				rc = builder_cut(&cv.bu);
			if (rc == 0 && ts_batch_len(cv.bu.b))
				rc = ts_env_apply(p->env, cv.bu.b);
			ts_batch_reset(cv.bu.b);
			cv.bu.batch_bytes = 0;
			ts__failpoint("cold.slice_written");
		}
	}
	if (rc)
		goto out;
	if (cv.n_in == 0 && n_merge == 0)
		goto out; /* nothing hot, nothing to merge */
	if (n_merge && (rc = collect_keys(p, cv.gens, cv.merge, cv.n_gens, 1, &cv.del_cold)))
		goto out;
	/* The switch: one transaction. */
	struct ts__gen *ng = ts_malloc((cv.n_gens + 1) * sizeof *ng);
	if (!ng) {
		rc = -ENOMEM;
		goto out;
	}
	size_t m = 0;
	for (size_t i = 0; i < cv.n_gens; i++)
		if (!cv.merge[i])
			ng[m++] = cv.gens[i];
	if (cv.bu.n_samples)
		ng[m++] = (struct ts__gen){ cv.bu.gen, n_merge ? level : 0, cv.bu.n_samples,
					    cv.bu.bytes };
	ts_batch_reset(cv.bu.b);
	rc = gens_put(cv.bu.b, p->meta, ng, m);
	ts_free(ng);
	/* The conversion read every hot chunk (slices run from the first series until none
	 * is left, and only this thread, under db->fmu, writes chunks), so the table is
	 * emptied whole: deleting a key at a time copied every leaf page into the
	 * transaction (over 30 MB at 100k series, the peak of the process's memory). */
	if (rc == 0 && cv.n_hot)
		rc = ts_batch_clear(cv.bu.b, p->chunks);
	for (size_t off = 0; off < cv.del_cold.len && rc == 0; off += TS_FORMAT_COLD_KEY_LEN)
		rc = ts_batch_del(cv.bu.b, p->cold, cv.del_cold.p + off, TS_FORMAT_COLD_KEY_LEN,
				  NULL, 0);
	if (rc == 0 && !(rc = ts__failpoint_err("cold.switch")))
		rc = ts_env_apply(p->env, cv.bu.b);
	if (rc == 0) {
		ts__failpoint("cold.switched");
		st->n_samples = cv.n_in;
		st->n_chunks = cv.n_hot;
		st->n_blocks_merged = cv.del_cold.len / TS_FORMAT_COLD_KEY_LEN;
		st->bytes = cv.bu.bytes;
		st->gens_merged = n_merge;
		st->gens_after = m;
	}
out:
	ts_batch_free(cv.bu.b);
	run_free(&cv.bu.data);
	ts_free(cv.bu.in);
	ts_free(cv.del_cold.p);
	ts_free(cv.merge);
	ts_free(cv.gens);
	ts__tombs_put(cv.tombs);
	return rc;
}

int ts__cold_cache_get(struct ts_db *db, int64_t part, const uint8_t *key, const void *v, size_t vl,
		       struct ts__blk_ref *out)
{
	struct cache_ent *e;
	int rc = block_get(db->cold_cache, part, key, v, vl, &e);
	if (rc)
		return rc;
	out->b = e->b;
	out->ent = e;
	return 0;
}

void ts__cold_cache_put(struct ts_db *db, struct ts__blk_ref *ref)
{
	if (ref->ent)
		ent_release(db->cold_cache, ref->ent);
	ref->ent = NULL;
	ref->b = NULL;
}
