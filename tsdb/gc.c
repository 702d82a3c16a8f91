/*
 * gc.c - series that retention left without a sample leave the index.
 *
 * Which: a series whose newest sample (max_t, which every sample it has is at or before:
 * out-of-order samples are older than it) is older than the start of the oldest
 * partition retention kept, with nothing in memory (open chunk, out-of-order buffer,
 * sealed chunks not yet written). Its samples were all in partitions that are gone, so
 * no resolution holds any of it. Series loaded from an index without their newest
 * timestamp (max_t_known 0) are left alone.
 *
 * How: under db->mu each such series is marked dead and taken out of the label hash, so
 * an append from then on (even one that resolved it before) writes to the series its
 * labels name now, a new one (db.c, append_locked). Then one index transaction removes
 * their postings entries (label values and names left without series go with them),
 * their series group entries and their head group entries. The objects stay in the id
 * table until close, since selections may still hold their ids; a restart does not load
 * them. If the transaction fails, the ids are kept and removed by the next pass.
 *
 * Writer thread only (db->fmu held). Uses: registry.c, index.c, partition.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

static int has_memory_data(const struct ts_series *s)
{
	return s->enc.n || (s->ooo && s->ooo->n) || s->pending;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The start of the oldest partition left, or INT64_MAX when there is none. */
static int64_t oldest_start(struct ts_db *db)
{
	int64_t t = INT64_MAX;
	pthread_rwlock_rdlock(&db->parts_mu);
	if (db->n_parts)
		t = db->parts[0]->start;
	pthread_rwlock_unlock(&db->parts_mu);
	return t;
}

int ts__series_gc(struct ts_db *db)
{
	/* Only retention removes whole partitions: without it, nothing is ever dead. */
	if (ts__retention_keep_ms(db) <= 0 && !db->n_gc)
		return 0;
	int64_t oldest = oldest_start(db);
	uint64_t end = atomic_load(&db->next_id);
	size_t n0 = db->n_gc;
	int rc = 0;
	pthread_mutex_lock(&db->mu);
	for (uint64_t id = 1; id < end && rc == 0; id++) {
		struct ts_series *s = ts__series_by_id(db, id);
		if (!s || s->dead || !s->indexed || !s->max_t_known || s->max_t == INT64_MIN ||
		    s->max_t >= oldest || has_memory_data(s))
			continue;
		if (ts_grow((void **)&db->gc_ids, &db->cap_gc, db->n_gc + 1, sizeof *db->gc_ids)) {
			rc = -ENOMEM;
			break;
		}
		s->dead = 1;
		ts__limits_release(db, s);
		ts__series_unlink(db, s);
		db->gc_ids[db->n_gc++] = id;
	}
	pthread_mutex_unlock(&db->mu);
	if (db->n_gc == 0)
		return rc;
	if (n0 && db->n_gc > n0) /* ids of an earlier failed pass, then these */
		qsort(db->gc_ids, db->n_gc, sizeof *db->gc_ids, u64_cmp);
	struct ts_rtxn *r = NULL;
	struct ts_batch *b = NULL;
	int erc = ts_batch_new(&b);
	if (erc == 0)
		erc = ts_env_read_begin(db->index, &r);
	if (erc == 0)
		erc = ts__index_drop_series(db, r, b, db->gc_ids, db->n_gc);
	ts_env_read_end(r);
	if (erc == 0)
		erc = ts_env_apply(db->index, b);
	ts_batch_free(b);
	if (erc) {
		ts_log(TS_LOG_WARN,
		       "removing %zu series without samples from the index failed: %s; "
		       "tried again later",
		       db->n_gc, ts_strerror(erc));
		return erc;
	}
	pthread_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->n_gc; i++) {
		struct ts_series *s = ts__series_by_id(db, db->gc_ids[i]);
		if (s)
			s->has_snapshot = 0;
	}
	pthread_mutex_unlock(&db->mu);
	int n = (int)db->n_gc;
	atomic_fetch_add(&db->n_series_removed, (uint64_t)n);
	ts_log(TS_LOG_INFO, "%d series without samples left (retention) removed from the index", n);
	db->n_gc = 0;
	return rc ? rc : n;
}

int ts__series_revive(struct ts_db *db, struct ts_series *s, struct ts_series **out)
{
	return ts__series_get(db, s->packed, s->packed_len, out);
}
