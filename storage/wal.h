/*
 * wal.h - the write-ahead log: append-only segment files of CRC32C-checked,
 * zstd-compressed records (LZ4 ones of earlier releases read too), with group commit.
 *
 * Records are opaque bytes with a one-byte type chosen by the caller (tsdb/ defines
 * them). Every record gets an LSN: the record's byte offset in the log as a whole
 * (segment files are named by the LSN of their first byte, 16 hex digits, so LSNs are
 * monotonic across segments and survive restarts).
 *
 * Durability: ts_wal_append() write(2)s the record before returning, so it survives a
 * kill -9 of the process under every policy. ts_wal_commit() additionally waits until
 * the record is on stable storage as the policy says:
 *   TS_WAL_SYNC_ALWAYS    fdatasync before returning; concurrent committers share one
 *                         fdatasync (group commit: the first waiter syncs for everyone
 *                         whose record was written before the sync started).
 *   TS_WAL_SYNC_INTERVAL  returns at once; a background thread fdatasyncs every
 *                         interval_ms (power loss may lose up to that window).
 *   TS_WAL_SYNC_NEVER     returns at once; the OS writes back when it likes.
 * A failed write or fdatasync makes the WAL read-only: that call and every later
 * append/commit return TS_EIO. Errors are never retried silently (fsyncgate). The one
 * exception is a write refused for want of space (ENOSPC, EDQUOT): the partial record
 * is cut off again, that append returns -ENOSPC and the log stays writable, so appends
 * resume by themselves once space returns. A failed fdatasync stays fatal whatever its
 * errno: the kernel may have dropped the dirty pages.
 *
 * Threading: append, commit, truncate may be called from any threads concurrently.
 * Replay must run before the first append, from one thread.
 */
#ifndef TS_STORAGE_WAL_H
#define TS_STORAGE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/wal_types.h"

/* Replay reads every kind whatever this is set to; it only picks what appends write.
 * LZ4 is what earlier releases wrote. */
enum ts_wal_compress {
	TS_WAL_COMPRESS_NONE = 0,
	TS_WAL_COMPRESS_ZSTD = 1,
	TS_WAL_COMPRESS_LZ4 = 2,
};

struct ts_wal_opts {
	enum ts_wal_sync sync;
	uint32_t interval_ms;	/* for TS_WAL_SYNC_INTERVAL; 0 means 1000 */
	uint64_t segment_bytes; /* roll to a new segment past this size; 0 means 64 MiB */
	int compress;		/* enum ts_wal_compress: how records over 64 bytes are written */
};

struct ts_wal;

/* Opens (creating dir if needed) the WAL in `dir`. Does not replay. On a torn or
 * corrupt tail, nothing is cut yet: ts_wal_replay() finds and cuts it.
 * *out is owned by the caller: close with ts_wal_close(). Returns 0, -errno,
 * TS_ECORRUPT (a segment name or header is unreadable), TS_EVERSION (a segment of a
 * format version we do not read), -ENOMEM, -EINVAL (bad opts). */
int ts_wal_open(const char *dir, const struct ts_wal_opts *opts, struct ts_wal **out);

/* Called once per record during replay. `rec` is borrowed, valid only during the call.
 * A non-zero return stops the replay and is returned by ts_wal_replay(). */
typedef int (*ts_wal_replay_fn)(void *arg, uint64_t lsn, uint8_t type, const uint8_t *rec,
				size_t len);

/* Reads every record with LSN >= from_lsn in order and hands it to fn. At the first
 * record whose header or CRC is bad, or that is cut short, the log is truncated there
 * (that segment cut, later segments deleted), logged as a warning with the LSN and the
 * bytes dropped, and replay ends successfully: a torn tail is never fatal.
 * Afterwards appends continue at the cut; but when the log now ends before from_lsn
 * (cut, or unsynced bytes lost), they continue at from_lsn instead, so an LSN handed
 * out before (a checkpoint's) is never given to a new record.
 * Returns 0, fn's non-zero value (the WAL then has no position: replay again before
 * appending), -errno, -ENOMEM, -EINVAL (called after an append). */
int ts_wal_replay(struct ts_wal *w, uint64_t from_lsn, ts_wal_replay_fn fn, void *arg);

/* Appends one record (len <= 64 MiB) and write(2)s it. *lsn_out receives its LSN.
 * Returns 0, -ENOMEM, TS_ELIMIT (too large), -ENOSPC (no space: nothing of the record
 * stays in the log, which remains writable), TS_EIO (this or an earlier I/O error),
 * -EINVAL (open found segments and no ts_wal_replay() has completed since: the end
 * of the log is not known until replay has checked it). */
int ts_wal_append(struct ts_wal *w, uint8_t type, const void *rec, size_t len, uint64_t *lsn_out);

/* Waits until the record at `lsn` is durable under the sync policy (see above).
 * Returns 0 or TS_EIO. */
int ts_wal_commit(struct ts_wal *w, uint64_t lsn);

/* The LSN the next append will get (== end of log). */
uint64_t ts_wal_end_lsn(struct ts_wal *w);

/* Starts a new segment now, so everything before the returned LSN can later be removed
 * by truncation. Used at checkpoints. Returns 0, -errno, TS_EIO, -EINVAL (as append). */
int ts_wal_roll(struct ts_wal *w, uint64_t *next_lsn_out);

/* Copies into dst_dir (created if missing) the whole segments that hold records in
 * [from_lsn, before_lsn) and end at or before before_lsn (after ts_wal_roll returned
 * before_lsn, those are closed: nothing appends to them), each fsync'ed, then the
 * directory. For a consistent copy nothing may truncate meanwhile (the caller's
 * affair). 0, -ENOMEM, -errno, TS_EIO (a segment shorter than listed). */
int ts_wal_copy(struct ts_wal *w, uint64_t from_lsn, uint64_t before_lsn, const char *dst_dir);
/* Deletes whole segments that hold only records with LSN < lsn. Never cuts a segment
 * in the middle. Returns 0 or -errno. */
int ts_wal_truncate_before(struct ts_wal *w, uint64_t lsn);

void ts_wal_stats(struct ts_wal *w, struct ts_wal_stats *out);

/* Syncs (unless policy is NEVER), stops the interval thread, closes files, frees w.
 * Accepts NULL. */
void ts_wal_close(struct ts_wal *w);

#endif
