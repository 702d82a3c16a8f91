/*
 * compact.c - rewriting closed partitions tightly.
 *
 * While a partition takes writes, every flush inserts one chunk per series spread over
 * the whole key range, so LMDB splits pages in half and they stay a little over half
 * full, and copy-on-write leaves free pages behind. Once a partition is closed (its end
 * is older than the out-of-order window, plus an hour of slack), the writer rewrites it
 * once: every record in key order into a fresh env with MDB_APPEND, which fills pages
 * completely. The partition's "meta" table then says "compacted"; a late write into it
 * clears the mark (writer.c), so it is rewritten again later.
 *
 * The swap is crash-safe by renames within raw/:
 *   1. write <dir>.compact completely (LMDB commits are durable)
 *   2. rename <dir> -> <dir>.old
 *   3. rename <dir>.compact -> <dir>
 *   4. the old env (still open for readers holding a reference) is deleted with the
 *      last reference.
 * At open (partition.c, ts__parts_open_existing): a <dir>.compact without step 3 done
 * is deleted; a <dir>.old is renamed back if <dir> is missing (crash between 2 and 3),
 * else deleted. Everything here runs on the writer thread, the only one that changes
 * partitions.
 *
 * Uses: partition.c (open, replace, release), format.h, storage/.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/failpoint.h"

#define SLICE_BYTES (16u << 20) /* records per write transaction while rewriting */
#define CLOSE_SLACK_MS 3600000	/* a partition is closed this long after its end (+OOO) */
#define QUIET_MS 600000		/* background: untouched by writes for this long */
#define MIN_BYTES (1u << 20)	/* background: smaller envs gain too little */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

static void parent_dir(const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash)
		*slash = 0;
}

/* Writes every record of p into a new env at tmp, in key order, append mode. */
static int rewrite(struct ts_partition *p, const char *tmp, uint64_t *n_records)
{
	struct ts_env *env = NULL;
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	struct ts_batch *b = NULL;
	unsigned chunks, meta;
	uint64_t map, used;
	ts_env_size(p->env, &map, &used);
	struct ts_env_opts eo = { .map_bytes = used + (used >> 2) + (16u << 20) };
	int rc = ts_env_open(tmp, &eo, &env);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_CHUNKS, 0, &chunks);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_META, 0, &meta);
	if (rc == 0)
		rc = ts_batch_new(&b);
	if (rc == 0)
		rc = ts_env_read_begin(p->env, &r);
	if (rc == 0)
		rc = ts_cursor_open(r, p->chunks, &c);
	if (rc)
		goto out;
	ts_batch_set_append(b, 1);
	size_t bytes = 0;
	*n_records = 0;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)) ||
		    (rc = ts_batch_put(b, chunks, k, kl, v, vl)))
			break;
		(*n_records)++;
		bytes += kl + vl;
		if (bytes >= SLICE_BYTES) {
			if ((rc = ts_env_apply(env, b)))
				break;
			ts_batch_reset(b);
			bytes = 0;
		}
	}
	if (rc != TS_ENOTFOUND)
		goto out;
	uint8_t one = 1;
	rc = ts_batch_put(b, meta, TS_FORMAT_PART_META_COMPACTED,
			  strlen(TS_FORMAT_PART_META_COMPACTED), &one, 1);
	if (rc == 0)
		rc = ts_env_apply(env, b);
out:
	ts_cursor_close(c);
	ts_env_read_end(r);
	ts_batch_free(b);
	ts_env_close(env);
	return rc;
}

/* Rewrites p (pinned by the caller, so its env stays open across the renames). */
static int compact_pinned(struct ts_db *db, struct ts_partition *p)
{
	char tmp[4200], old[4200], raw[4200];
	snprintf(tmp, sizeof tmp, "%s" TS_FORMAT_PART_COMPACT_SUFFIX, p->dir);
	snprintf(old, sizeof old, "%s" TS_FORMAT_PART_OLD_SUFFIX, p->dir);
	parent_dir(p->dir, raw, sizeof raw);
	ts__dir_remove(tmp);
	uint64_t before, after, map, n = 0;
	ts_env_size(p->env, &map, &before);
	int rc = rewrite(p, tmp, &n);
	if (rc) {
		ts_log(TS_LOG_WARN, "compaction of %s failed: %s; left as it is", p->dir,
		       ts_strerror(rc));
		ts__dir_remove(tmp);
		return rc;
	}
	ts__failpoint("compact.rewritten");
	if ((rc = ts__failpoint_err("compact.rename_old")) || rename(p->dir, old) != 0) {
		rc = rc ? rc : -errno;
		ts__dir_remove(tmp);
		return rc;
	}
	ts__failpoint("compact.renamed_old");
	if ((rc = ts__failpoint_err("compact.rename_new")) || rename(tmp, p->dir) != 0) {
		rc = rc ? rc : -errno;
		if (rename(old, p->dir) != 0)
			ts_log(TS_LOG_ERROR, "compaction: cannot restore %s from %s: %s", p->dir,
			       old, strerror(errno));
		return rc;
	}
	ts__failpoint("compact.renamed_new");
	fsync_dir(raw); /* the renames must be durable before the old copy goes */
	ts__failpoint("compact.synced");
	struct ts_partition *np;
	rc = ts__part_open(db, p->start, p->end, &np);
	if (rc) {
		/* Keep serving the old env (renamed, still open); the next start recovers. */
		ts_log(TS_LOG_ERROR, "compaction: cannot open rewritten %s: %s", p->dir,
		       ts_strerror(rc));
		return rc;
	}
	ts__part_replace(db, p, np);
	after = ts__part_bytes(db, np);
	ts_log(TS_LOG_INFO,
	       "compacted %s: %" PRIu64 " chunks, %" PRIu64 " -> %" PRIu64 " bytes in use", p->dir,
	       n, before, after);
	/* The old env is now <dir>.old; it goes with the last reader's reference. */
	char *od = ts_strdup(old);
	if (od) {
		pthread_mutex_lock(&db->open_mu);
		ts_free(p->dir);
		p->dir = od;
		pthread_mutex_unlock(&db->open_mu);
		atomic_store(&p->remove, 1);
	}
	return 0;
}

/* Compacts p unless opening it shows it is compacted already. On success p has left
 * the array and the array's reference is given back. */
static int compact_one(struct ts_db *db, struct ts_partition *p)
{
	int rc = ts__part_pin(db, p, 0);
	if (rc)
		return rc == TS_ENOTFOUND ? 0 : rc; /* never written: nothing to rewrite */
	if (atomic_load(&p->compacted) == 1) {
		ts__part_unpin(db, p);
		return 0;
	}
	rc = compact_pinned(db, p);
	ts__part_unpin(db, p);
	if (rc == 0) {
		ts__failpoint("compact.before_release");
		ts__part_unref(db, p);
	}
	return rc;
}


/* Whether p is worth rewriting now. A partition whose env was never opened does not know
 * yet whether it is compacted (-1): compact_one finds out when it opens it. */
static int eligible(struct ts_db *db, struct ts_partition *p, int64_t closed_before, int force)
{
	if (atomic_load(&p->compacted) == 1 || p->end > closed_before)
		return 0;
	if (force)
		return 1;
	return ts__part_bytes(db, p) >= MIN_BYTES &&
	       (p->last_write_mono_ms == 0 || ts_mono_ms() - p->last_write_mono_ms >= QUIET_MS);
}

int ts__compact_closed(struct ts_db *db, int max_parts, int force)
{
	int64_t now = ts_wall_ms();
	int64_t closed_before = now - CLOSE_SLACK_MS -
				(db->o.ooo_window_ms > 0 ? db->o.ooo_window_ms : 0);
	int done = 0, rc = 0;
	while (done < max_parts && rc == 0) {
		struct ts_partition *pick = NULL;
		pthread_rwlock_rdlock(&db->parts_mu);
		for (size_t i = 0; i < db->n_parts && !pick; i++)
			if (eligible(db, db->parts[i], closed_before, force))
				pick = db->parts[i];
		pthread_rwlock_unlock(&db->parts_mu);
		if (!pick)
			break;
		/* A partition with sealed chunks still in memory is not done taking writes. */
		int busy = 0;
		pthread_mutex_lock(&db->mu);
		for (struct ts_chunk_mem *c = db->q_head; c && !busy; c = c->next_global)
			busy = ts__partition_start(db, c->min_t) == pick->start;
		pthread_mutex_unlock(&db->mu);
		if (busy)
			break;
		rc = compact_one(db, pick);
		if (rc) /* do not retry it in a loop; a restart tries again */
			atomic_store(&pick->compacted, 1);
		done++;
	}
	return done;
}

int ts_db_compact(struct ts_db *db)
{
	pthread_mutex_lock(&db->fmu);
	ts__compact_closed(db, 1 << 30, 1);
	pthread_mutex_unlock(&db->fmu);
	return 0;
}
