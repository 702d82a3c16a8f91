/*
 * delete.c - deleting series' samples (ts_db_delete) and reclaiming their space
 * (ts_db_clean_tombstones), with Prometheus' admin API semantics.
 *
 * Delete: the matchers are resolved to series by the ordinary selection; a tombstone
 * (series, mint, maxt) per series is committed to the index env in one transaction
 * before the call returns (tombstone.c). From then on every read and every rewrite of
 * stored data leaves those samples out. Appends into a deleted range after the delete
 * are hidden as well until the next clean, as in Prometheus (its head applies
 * tombstones to whatever it holds).
 *
 * Clean, all under db->fmu so nothing moves from memory into LMDB meanwhile:
 *   1. a checkpoint: sealed chunks go to their partitions, head rows are rewritten from
 *      memory, the WAL is rolled to L and cut below it. Every record below L was
 *      appended before this clean started (so after or before the delete), and replay
 *      never reads below L again;
 *   2. every partition a tombstone intersects is converted with all its generations
 *      merged, deleted samples left out, and rewritten into a fresh env (compact.c);
 *   3. under db->mu, a tombstone is kept when the series still holds samples in its
 *      range in memory (open chunk, out-of-order buffer, sealed chunks not yet
 *      written): those are also in the head row or the WAL above L, which would bring
 *      them back. Stored data cannot hold any more (2, and fmu kept flushes out);
 *   4. the other tombstones are removed in one index transaction.
 * A crash anywhere leaves tombstones that still cover everything (removal is last and
 * atomic), so a deleted sample never comes back.
 *
 * Uses: select.c (resolving matchers), tombstone.c, compact.c, writer.c. Top row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/failpoint.h"

int ts_db_delete(struct ts_db *db, const struct ts_matcher *m, size_t n_matchers, int64_t mint_ms,
		 int64_t maxt_ms, uint64_t *n_series, char *msg, size_t msg_len)
{
	struct ts_series_set *set = NULL;
	uint64_t *ids = NULL;
	if (n_series)
		*n_series = 0;
	if (maxt_ms < mint_ms) {
		if (msg && msg_len)
			snprintf(msg, msg_len, "end timestamp must not be before start time");
		return TS_EINVALID;
	}
	int rc = ts_db_select(db, m, n_matchers, mint_ms, maxt_ms, NULL, &set, msg, msg_len);
	if (rc)
		return rc;
	size_t n = ts_series_set_len(set);
	if (n && !(ids = ts_malloc(n * sizeof *ids))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = ts_series_set_id(set, i);
	/* The set's snapshots are not needed for writing: give them back first. */
	ts_series_set_free(set);
	set = NULL;
	pthread_mutex_lock(&db->fmu);
	ts__failpoint("delete.before_commit");
	rc = ts__tombs_add(db, ids, n, mint_ms, maxt_ms);
	pthread_mutex_unlock(&db->fmu);
	if (rc == 0) {
		/* The writer rebuilds those partitions' tiers now rather than in 30 s. */
		ts__parts_mark_tiers_stale(db, mint_ms, maxt_ms);
		pthread_mutex_lock(&db->wmu);
		db->retention_now = 1;
		pthread_cond_signal(&db->wcond);
		pthread_mutex_unlock(&db->wmu);
	}
	if (rc == 0) {
		ts__failpoint("delete.committed");
		if (n_series)
			*n_series = n;
		ts_log(TS_LOG_INFO, "deleted samples of %zu series in [%lld, %lld]", n,
		       (long long)mint_ms, (long long)maxt_ms);
	}
out:
	ts_series_set_free(set);
	ts_free(ids);
	return rc;
}

/* Whether series s holds samples in [mint, maxt] in memory (db->mu held). */
static int mem_hit(const struct ts_series *s, int64_t mint, int64_t maxt)
{
	for (const struct ts_chunk_mem *c = s->pending; c; c = c->next_series)
		if (c->min_t <= maxt && c->max_t >= mint)
			return 1;
	if (s->enc.n && s->head_min_t <= maxt && s->enc.t >= mint)
		return 1;
	return s->ooo && s->ooo->n && s->ooo->s[0].t <= maxt && s->ooo->s[s->ooo->n - 1].t >= mint;
}

int ts_db_clean_tombstones(struct ts_db *db, struct ts_clean_stats *st)
{
	struct ts_clean_stats z = { 0 };
	uint8_t *drop = NULL;
	struct ts__tombs *t = NULL;
	pthread_mutex_lock(&db->fmu);
	int rc = ts__writer_flush_locked(db, 1);
	if (rc || !(t = ts__tombs_get(db)))
		goto out;
	z.n_before = t->n;
	if ((rc = ts__compact_tombs(db, t)))
		goto out;
	ts__failpoint("clean.rewritten");
	if (!(drop = ts_calloc(t->n, 1))) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&db->mu);
	for (size_t i = 0; i < t->n; i++) {
		struct ts_series *s = ts__series_by_id(db, t->v[i].id);
		drop[i] = !s || !mem_hit(s, t->v[i].mint, t->v[i].maxt);
	}
	pthread_mutex_unlock(&db->mu);
	rc = ts__tombs_remove(db, t, drop);
	if (rc == 0) {
		ts__failpoint("clean.committed");
		for (size_t i = 0; i < t->n; i++)
			z.n_after += !drop[i];
	}
out:
	if (rc == 0 && !t)
		z.n_before = z.n_after = 0;
	pthread_mutex_unlock(&db->fmu);
	if (rc == 0)
		ts_log(TS_LOG_INFO, "clean_tombstones: %llu tombstones -> %llu",
		       (unsigned long long)z.n_before, (unsigned long long)z.n_after);
	ts__tombs_put(t);
	ts_free(drop);
	if (st)
		*st = z;
	return rc;
}
