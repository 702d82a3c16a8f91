/*
 * tombstone.c - deleted time ranges of series (ts_db_delete): the index env's
 * "tombstones" table (format.h) and the immutable in-memory snapshot readers filter by.
 *
 * Why filter on read rather than remove samples at delete time: deleted samples live in
 * many places at once (the open head, the out-of-order buffer, sealed chunks waiting in
 * memory, hot chunks and cold generations of partitions, head rows of the last
 * checkpoint, and WAL records that a restart after kill -9 replays). A tombstone written
 * durably before ts_db_delete returns, loaded at open before anything is read, and
 * applied by every read path and by every rewrite of stored data (cold conversion,
 * compaction) covers all of them with one rule, including samples that WAL replay puts
 * back into the heads. The data itself goes only when ts_db_clean_tombstones rewrites
 * it (delete.c), which is also the only place tombstones are removed.
 *
 * The snapshot: a sorted array of (series id, mint, maxt), ranges of one series merged
 * (overlapping or adjacent ranges become one), reference-counted. Writers (delete,
 * clean, both under db->fmu) build a new array, commit its rows, then swap the pointer
 * under db->tomb_mu; readers take a reference under tomb_mu and keep it for as long as
 * they read (a series set, a conversion), so a delete never changes what a running read
 * sees half-way.
 *
 * Uses: format.h, storage/env.h. Base row: called by select.c, cold.c, delete.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

/* A tombstone key is laid out as a chunk key (series id BE, time sign-flipped BE), so
 * storage/chunk.h's codec writes and reads it. */
_Static_assert(TS_FORMAT_TOMB_KEY_LEN == TS_CHUNK_KEY_LEN, "tombstone keys are chunk keys");

static struct ts__tombs *tombs_new(size_t n)
{
	struct ts__tombs *t = ts_malloc(sizeof *t + (n ? n : 1) * sizeof t->v[0]);
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->n = 0;
	return t;
}

struct ts__tombs *ts__tombs_get(struct ts_db *db)
{
	pthread_mutex_lock(&db->tomb_mu);
	struct ts__tombs *t = db->tombs;
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&db->tomb_mu);
	return t;
}

void ts__tombs_put(struct ts__tombs *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		ts_free(t);
}

/* Replaces the db's snapshot by t (transferred; NULL when empty). */
static void tombs_swap(struct ts_db *db, struct ts__tombs *t)
{
	if (t && t->n == 0) {
		ts__tombs_put(t);
		t = NULL;
	}
	pthread_mutex_lock(&db->tomb_mu);
	struct ts__tombs *old = db->tombs;
	db->tombs = t;
	pthread_mutex_unlock(&db->tomb_mu);
	ts__tombs_put(old);
}

size_t ts__tombs_of(const struct ts__tombs *t, uint64_t id, const struct ts__tomb **out)
{
	if (!t)
		return 0;
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < t->n && t->v[end].id == id)
		end++;
	*out = t->v + lo;
	return end - lo;
}

int ts__tombs_hit(const struct ts__tomb *r, size_t n, int64_t mint, int64_t maxt)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].mint <= maxt && r[i].maxt >= mint)
			return 1;
	return 0;
}

int ts__tombs_overlap(const struct ts__tombs *t, int64_t mint, int64_t maxt)
{
	return t && ts__tombs_hit(t->v, t->n, mint, maxt);
}

size_t ts__tombs_filter(const struct ts__tomb *r, size_t nr, int64_t *t, uint64_t *v, size_t n)
{
	/* Both ascending: one pass with a cursor over the ranges. */
	size_t w = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		while (k < nr && r[k].maxt < t[i])
			k++;
		if (k < nr && r[k].mint <= t[i])
			continue;
		t[w] = t[i];
		v[w] = v[i];
		w++;
	}
	return w;
}

static int tomb_cmp(const void *a, const void *b)
{
	const struct ts__tomb *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->mint > y->mint) - (x->mint < y->mint);
}

/* Sorts and merges overlapping or adjacent ranges of each series. */
static void tombs_normalize(struct ts__tombs *t)
{
	if (t->n < 2)
		return;
	qsort(t->v, t->n, sizeof t->v[0], tomb_cmp);
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct ts__tomb *p = w ? &t->v[w - 1] : NULL;
		if (p && p->id == t->v[i].id &&
		    (p->maxt == INT64_MAX || p->maxt + 1 >= t->v[i].mint)) {
			if (t->v[i].maxt > p->maxt)
				p->maxt = t->v[i].maxt;
			continue;
		}
		t->v[w++] = t->v[i];
	}
	t->n = w;
}

int ts__tombs_load(struct ts_db *db)
{
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	struct ts__tombs *t = NULL;
	size_t cap = 64;
	int rc = ts_env_table(db->index, TS_FORMAT_TABLE_TOMBSTONES, 0, &db->t_tombs);
	if (rc)
		return rc;
	if ((rc = ts_env_read_begin(db->index, &r)) || (rc = ts_cursor_open(r, db->t_tombs, &c)))
		goto out;
	if (!(t = tombs_new(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const uint8_t *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, (const void **)&k, &kl, (const void **)&v, &vl)))
			break;
		struct ts__tomb e = { 0 };
		if (vl != TS_FORMAT_TOMB_VAL_LEN || ts_chunk_key_parse(k, kl, &e.id, &e.mint)) {
			rc = TS_CORRUPT();
			break;
		}
		e.maxt = (int64_t)ts_format_get_le64(v);
		if (e.id == 0 || e.maxt < e.mint) {
			rc = TS_CORRUPT();
			break;
		}
		if (t->n == cap) {
			struct ts__tombs *g = ts_realloc(t, sizeof *t + 2 * cap * sizeof t->v[0]);
			if (!g) {
				rc = -ENOMEM;
				break;
			}
			t = g;
			cap *= 2;
		}
		t->v[t->n++] = e;
	}
	if (rc == TS_ENOTFOUND)
		rc = 0;
	if (rc == 0) {
		tombs_normalize(t);
		tombs_swap(db, t);
		t = NULL;
	}
out:
	ts_free(t);
	ts_cursor_close(c);
	ts_env_read_end(r);
	return rc;
}

/* Commits `next` as the whole table, given that `cur` (may be NULL) is what the table
 * holds: rows of cur not in next are deleted, rows of next are put (an unchanged row is
 * put again, harmlessly). Then next becomes the db's snapshot. db->fmu held. */
static int tombs_commit(struct ts_db *db, const struct ts__tombs *cur, struct ts__tombs *next)
{
	struct ts_batch *b;
	uint8_t key[TS_FORMAT_TOMB_KEY_LEN], val[TS_FORMAT_TOMB_VAL_LEN];
	int rc = ts_batch_new(&b);
	if (rc) {
		ts__tombs_put(next);
		return rc;
	}
	for (size_t i = 0; cur && i < cur->n && rc == 0; i++) {
		const struct ts__tomb *e = &cur->v[i];
		if (bsearch(e, next->v, next->n, sizeof next->v[0], tomb_cmp))
			continue;
		ts_chunk_key(key, e->id, e->mint);
		rc = ts_batch_del(b, db->t_tombs, key, sizeof key, NULL, 0);
	}
	for (size_t i = 0; i < next->n && rc == 0; i++) {
		ts_chunk_key(key, next->v[i].id, next->v[i].mint);
		ts_format_put_le64(val, (uint64_t)next->v[i].maxt);
		rc = ts_batch_put(b, db->t_tombs, key, sizeof key, val, sizeof val);
	}
	/* One transaction: a crash leaves the old set or the new one, never a mix. */
	if (rc == 0)
		rc = ts_env_apply(db->index, b);
	ts_batch_free(b);
	if (rc) {
		ts__tombs_put(next);
		return rc;
	}
	tombs_swap(db, next);
	return 0;
}

int ts__tombs_add(struct ts_db *db, const uint64_t *ids, size_t n, int64_t mint, int64_t maxt)
{
	if (n == 0)
		return 0;
	struct ts__tombs *cur = ts__tombs_get(db);
	size_t nc = cur ? cur->n : 0;
	struct ts__tombs *next = tombs_new(nc + n);
	if (!next) {
		ts__tombs_put(cur);
		return -ENOMEM;
	}
	if (nc)
		memcpy(next->v, cur->v, nc * sizeof next->v[0]);
	for (size_t i = 0; i < n; i++)
		next->v[nc + i] = (struct ts__tomb){ ids[i], mint, maxt };
	next->n = nc + n;
	tombs_normalize(next);
	int rc = tombs_commit(db, cur, next);
	ts__tombs_put(cur);
	return rc;
}

int ts__tombs_remove(struct ts_db *db, const struct ts__tombs *cur, const uint8_t *drop)
{
	struct ts__tombs *next = tombs_new(cur->n);
	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < cur->n; i++)
		if (!drop[i])
			next->v[next->n++] = cur->v[i];
	return tombs_commit(db, cur, next);
}
