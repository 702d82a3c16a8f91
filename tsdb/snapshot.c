/*
 * snapshot.c - ts_db_snapshot: a consistent, self-contained copy of the database, as
 * Prometheus' snapshot API makes one.
 *
 * Consistency comes from the recovery contract itself: an index (at its last
 * checkpoint), the partitions (which may hold chunks flushed after it) and the WAL from
 * the checkpoint on recover the state the WAL ends at, whatever was flushed meanwhile.
 * So, with db->fmu held (no flush, checkpoint, compaction, retention or WAL truncation
 * can run), the WAL is rolled under db->mu at P: every record before P (every batch
 * acknowledged before the call, and perhaps some being acknowledged) is in closed
 * segments. The index and each partition are then copied with LMDB's compacting hot
 * copy, and the WAL segments before P copied whole. Opening the copy replays those
 * segments: it holds exactly the batches logged before P, each whole. Appends go on
 * meanwhile (into memory and the WAL); only the writer waits.
 *
 * skip_head leaves the WAL out: the copy then holds what reached LMDB (partitions and
 * the head rows of the last checkpoint), which is consistent per series only.
 *
 * Why copies and not hard links: every file is an LMDB env, written in place (a late
 * write into a closed partition, a retention rewrite of its meta), so a link would let
 * the copy change under the user. The compacting copy also leaves free pages out.
 *
 * Uses: partition.c (pins), storage/ (env copy, WAL copy).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

/* Copies every partition env with data into dst/raw/<name>. */
static int copy_parts(struct ts_db *db, const char *dst)
{
	int rc = 0;
	struct ts_partition *p;
	for (size_t k = 0; rc == 0 && (p = ts__part_next(db, &k)) != NULL;) {
		rc = ts__part_pin(db, p, 0);
		if (rc == 0) {
			const char *name = strrchr(p->dir, '/');
			char path[4200];
			snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR "/%s", dst,
				 name ? name + 1 : p->dir);
			rc = ts_env_copy(p->env, path, 1);
			ts__part_unpin(db, p);
		} else if (rc == TS_ENOTFOUND) {
			rc = 0; /* never written: nothing to copy */
		}
		ts__part_unref(db, p);
	}
	return rc;
}

int ts_db_snapshot(struct ts_db *db, const char *dir, int skip_head)
{
	if (!db || !dir || !*dir)
		return TS_EINVALID;
	if (mkdir(dir, 0755) != 0)
		return -errno; /* EEXIST: never into an existing directory */
	char path[4200];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR, dir);
	if (mkdir(path, 0755) != 0)
		return -errno;
	pthread_mutex_lock(&db->fmu);
	uint64_t p = 0;
	int rc = 0;
	if (!skip_head) {
		pthread_mutex_lock(&db->mu);
		rc = ts_wal_roll(db->wal, &p);
		pthread_mutex_unlock(&db->mu);
	}
	if (rc == 0) {
		snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR, dir);
		rc = ts_env_copy(db->index, path, 1);
	}
	if (rc == 0)
		rc = copy_parts(db, dir);
	if (rc == 0 && !skip_head) {
		snprintf(path, sizeof path, "%s/" TS_FORMAT_WAL_DIR, dir);
		rc = ts_wal_copy(db->wal, 0, p, path);
	}
	pthread_mutex_unlock(&db->fmu);
	if (rc)
		ts_log(TS_LOG_ERROR, "snapshot into %s failed: %s", dir, ts_strerror(rc));
	else
		ts_log(TS_LOG_INFO, "snapshot written to %s%s", dir,
		       skip_head ? " (without the WAL)" : "");
	return rc;
}
