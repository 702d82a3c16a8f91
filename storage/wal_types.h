/*
 * wal_types.h - the WAL's types that the engine's public API names (tsdb/tsdb.h: the
 * sync policy of ts_db_opts, the WAL figures of ts_db_stats). Types only, no functions,
 * so that the installed public headers stand on their own; storage/wal.h has the rest.
 */
#ifndef TS_STORAGE_WAL_TYPES_H
#define TS_STORAGE_WAL_TYPES_H

#include <stdint.h>

/* When an append is durable: ALWAYS fdatasyncs before it returns (one sync shared by
 * the appends waiting for it), INTERVAL syncs every interval in the background, NEVER
 * leaves it to the kernel. Every policy survives kill -9; only ALWAYS survives a power
 * loss of what was acknowledged. */
enum ts_wal_sync { TS_WAL_SYNC_ALWAYS = 0, TS_WAL_SYNC_INTERVAL = 1, TS_WAL_SYNC_NEVER = 2 };

/* Bytes currently on disk in all segments; counts of fsyncs and their total time, for
 * /metrics. */
struct ts_wal_stats {
	uint64_t bytes_on_disk, n_segments, n_records, n_syncs, sync_ns_total, sync_ns_max;
};

#endif
