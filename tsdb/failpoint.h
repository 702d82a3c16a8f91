/*
 * failpoint.h - named crash points for the kill -9 tests (tests/unit/test_crash.c).
 *
 * FOR TESTS ONLY. A failpoint is a call ts__failpoint("<name>") at a step where a crash
 * is risky. It is compiled into every build and does nothing unless the environment
 * variable TS_FAILPOINT was set when a database was opened:
 *
 *   TS_FAILPOINT=<name>:<n>    the n-th time (n >= 1, counted per process from that
 *                              open) the point <name> is reached, raise(SIGKILL)
 *   TS_FAILPOINT=<name>:<n>:<E> (E one of EIO, ENOSPC, EDQUOT, ENOMEM) an error point
 *                              (ts__failpoint_err) fails with -E at its n-th hit, once:
 *                              the I/O step it guards is skipped as if it had failed
 *
 * The process dies exactly as under kill -9: no atexit handlers, no unwinding, nothing
 * flushed that was not already written. Anything else (unset, empty, malformed, n < 1,
 * a name no point has) leaves every point inert. In production nobody sets the variable:
 * each point then costs one relaxed load and one never-taken branch, and nothing else
 * (no lock, no string compare, no system call). The variable is read only at open
 * (ts__failpoint_load(), from the partition scan every ts_db_open does), so setting it
 * later changes nothing. One point may be armed at a time, for the whole process.
 *
 * The points (name: where, what a kill there leaves on disk):
 *   flush.part_written     writer.c: after one chunk transaction committed (a partition's
 *                          chunks, or a 6 MiB slice of them), before the next one (and
 *                          before the index)
 *   flush.before_index     writer.c: a plain flush, chunks committed, index not yet
 *   ckpt.captured          writer.c: checkpoint, WAL rolled to L and a pass of head rows
 *                          captured, that pass not committed yet (earlier passes are)
 *   ckpt.before_index      writer.c: checkpoint, chunks committed, the index (head rows,
 *                          checkpoint_lsn = L) not yet
 *   ckpt.pass              writer.c: checkpoint, a pass (its chunks and head rows)
 *                          committed, later heads not captured, checkpoint_lsn = L not
 *                          yet written
 *   ckpt.before_truncate   writer.c: checkpoint committed (and retention run), WAL
 *                          segments below L not yet deleted
 *   compact.rewritten      compact.c: <part>.compact complete, no rename yet
 *   compact.renamed_old    compact.c: <part> renamed to <part>.old; no <part>
 *   compact.renamed_new    compact.c: <part>.compact renamed to <part>, not yet fsynced
 *   compact.synced         compact.c: renames durable, the new env not yet in use
 *   compact.before_release compact.c: new env in use, the old copy (<part>.old) not yet
 *                          released (its last reference deletes it)
 *   cold.slice_written     cold.c: a conversion committed blocks of its new generation,
 *                          not yet listed in the gens row (readers do not see them)
 *   cold.switched          cold.c: the switch committed (new generation listed, the hot
 *                          chunks and old blocks it merged deleted)
 *   retention.before_remove partition.c: an expired partition left the array, its
 *                          directory not yet removed
 *   retention.removed      partition.c: its directory removed (unless a reader still
 *                          held it)
 *   retention.before_drop  compact.c: a partition's aged-out raw samples or tier rows
 *                          queued for deletion (tiers built first), nothing committed
 *   retention.dropped      compact.c: their deletion and the "expired" row committed, the
 *                          partition not yet rewritten
 *   retention.before_release compact.c: the rewritten partition swapped in, the old one
 *                          not yet released
 *   dir.files_removed      partition.c: an env directory's files unlinked, the empty
 *                          directory not yet (retention, compaction clean-up)
 *   delete.before_commit   delete.c: series resolved, tombstones not yet committed
 *                          (nothing deleted, nothing acknowledged)
 *   delete.committed       delete.c: tombstones committed, the call not yet returned
 *   clean.rewritten        delete.c: clean_tombstones rewrote the partitions, every
 *                          tombstone still listed
 *   clean.committed        delete.c: the tombstones nothing can hit are removed
 *   tiers.before_commit    tiers.c: a partition's new tiers and record are built in
 *                          memory, nothing committed (the old tiers stay)
 *   tiers.committed        tiers.c: the new tiers and record committed
 *
 * The error points (name: the step that fails):
 *   flush.apply            writer.c: the transaction that writes chunks into a partition
 *   ckpt.slice_apply       writer.c: the index transaction of a checkpoint's capture
 *                          pass of head rows (not the last one)
 *   partition.create       partition.c: creating a new partition's directory and env
 *   compact.rename_old     compact.c: renaming <part> to <part>.old
 *   compact.rename_new     compact.c: renaming <part>.compact to <part>
 *   cold.switch            cold.c: the transaction that lists a conversion's generation
 *   tiers.commit           tiers.c: the transaction that replaces a partition's tiers
 *
 * Threading: ts__failpoint may be called from any thread; counting is atomic.
 * ts__failpoint_load must not race with other opens or with points being reached (the
 * tests open one database per process).
 */
#ifndef TS_TSDB_FAILPOINT_H
#define TS_TSDB_FAILPOINT_H

#include <stdatomic.h>

/* Non-zero while a point is armed. Only failpoint.c writes it. */
extern atomic_int ts__failpoint_armed;

/* Reads TS_FAILPOINT and arms (or disarms) the point it names, resetting its count. */
void ts__failpoint_load(void);

/* The slow path of ts__failpoint: counts a hit of an armed point, kills at the n-th. */
void ts__failpoint_hit(const char *name);

/* The slow path of ts__failpoint_err: 0, or -E at the armed hit. */
int ts__failpoint_err_hit(const char *name);

/* Marks a crash point; see above. name is a string literal. */
static inline void ts__failpoint(const char *name)
{
	if (__builtin_expect(atomic_load_explicit(&ts__failpoint_armed, memory_order_relaxed), 0))
		ts__failpoint_hit(name);
}

/* Marks an error point in front of an I/O step: 0 (go on), or the injected -E, which
 * the caller handles as that step's own failure. name is a string literal. */
static inline int ts__failpoint_err(const char *name)
{
	if (__builtin_expect(atomic_load_explicit(&ts__failpoint_armed, memory_order_relaxed), 0))
		return ts__failpoint_err_hit(name);
	return 0;
}

#endif
