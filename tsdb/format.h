/*
 * format.h - every on-disk fact of the engine, in one place: the layout of a database
 * directory, the index env's tables and keys, the head snapshot, the metadata row, the
 * WAL record types and the batch record, partition directory names, and the bounds a
 * reader checks. The engine (the .c files of tsdb/) and the tools that read a database
 * directly (tsdbctl inspect/verify) both include this header, so they cannot drift
 * apart.
 *
 * Rules: constants here are never renumbered and layouts never change in place; a new
 * layout gets a new version number, and readers refuse versions they do not know.
 * Every multi-byte field is little-endian unless marked BE (big-endian keys sort
 * numerically in LMDB). The chunk record and chunk key of a partition env are
 * storage/chunk.h's; the WAL's framing (segments, CRC, compression) is storage/wal.h's;
 * the packed label set is tsdb/labels.h's.
 *
 * Directory layout:
 *   <dir>/LOCK                       flock(2)ed by the one writing process
 *   <dir>/index.mdb/                 the index env (tables below)
 *   <dir>/wal/                       the write-ahead log (storage/wal.h)
 *   <dir>/raw/<start_ms>_<end_ms>/   one env per time partition [start, end), tables
 *                                    "chunks" (hot XOR chunks, storage/chunk.h), "cold"
 *                                    (cold blocks, storage/cold.h), "tiers"
 *                                    (downsampled tier blocks, below) and "meta"
 *   <dir>/raw/<...>.compact, .old    transient names of a compaction (tsdb/compact.c)
 *
 * Index env tables (format 2 keeps series and head rows in the group tables
 * series_groups and head_groups described below; "series" and "heads" are format 1's,
 * read at open and emptied by the first checkpoint. Format 3 keeps postings in
 * postings_blocks; "postings" is format 1's and 2's, converted at open and dropped):
 *   | table           | key                           | value                          |
 *   |-----------------|-------------------------------|--------------------------------|
 *   | series          | series id, u64 BE             | packed labels (labels.h)       |
 *   | postings_blocks | name 0x00 value (value cut at | DUPSORT: series ids ascending  |
 *   |                 | TS_FORMAT_POSTING_VALUE_MAX   | in delta blocks, one block per |
 *   |                 | bytes); the key "\0" alone    | duplicate (storage/env.h: u64  |
 *   |                 | lists every series            | BE first id, LEB128 deltas;    |
 *   |                 |                               | <= 480 bytes)                  |
 *   | postings        | (formats 1, 2) the same keys  | DUPFIXED u64 series ids        |
 *   | meta            | "format" u32, "next_id" u64,  |                                |
 *   |                 | "checkpoint_lsn" u64, "partition_ms" i64                       |
 *   | heads           | series id, u64 BE             | head snapshot (below)          |
 *   | metadata        | metric family name            | metadata row (below)           |
 *   | tombstones      | series id u64 BE, mint i64 BE | maxt i64 (8 bytes): samples of |
 *   |                 | sign-flipped (16 bytes)       | the series in [mint, maxt] are |
 *   |                 |                               | deleted (tsdb/tombstone.c)     |
 * A postings key's blocks cover disjoint ascending id ranges; ids are handed out
 * ascending, so a new series extends its keys' last blocks (storage/env.c). At 8 bytes
 * an id plus LMDB's sub-database pages, DUPFIXED postings were most of the index; dense
 * ids in blocks cost about a byte each.
 * Label names never contain 0x00, so a postings key splits at its first zero byte.
 * LMDB keys are at most 511 bytes, so long values are cut; a reader that finds a key
 * of TS_FORMAT_POSTING_VALUE_MAX value bytes must re-check the series' real labels.
 *
 * Head snapshot (a heads row, or a head_groups entry), version TS_FORMAT_SNAP_VERSION
 * (1; the short version 2 is drawn further down):
 *   | off | size | field                                    |
 *   | 0   | 1    | version (1)                              |
 *   | 1   | 8    | last applied WAL LSN, u64                |
 *   | 9   | 8    | head_min_t, i64                          |
 *   | 17  | 8    | max_t, i64                               |
 *   | 25  | 4    | encoder nbits, u32                       |
 *   | 29  | 2    | encoder n, u16                           |
 *   | 31  | 1    | encoder leading                          |
 *   | 32  | 1    | encoder trailing                         |
 *   | 33  | 1    | encoder tail_pad (see storage/xor.h)     |
 *   | 34  | 8    | encoder t, i64                           |
 *   | 42  | 8    | encoder t_delta, i64                     |
 *   | 50  | 8    | encoder v bits, u64                      |
 *   | 58  | 4    | open chunk length L, u32                 |
 *   | 62  | L    | open chunk bytes (XOR)                   |
 *   |     | 4    | out-of-order count m, u32                |
 *   |     | 16*m | (t i64, v u64) strictly ascending by t   |
 *
 * Metadata row (metadata table value):
 *   | size | field                 |
 *   |------|-----------------------|
 *   | 1    | type (ts_metric_type) |
 *   | 4    | help length H, u32    |
 *   | H    | help                  |
 *   | 4    | unit length U, u32    |
 *   | U    | unit                  |
 *
 * WAL record TS_FORMAT_WAL_REC_BATCH (the only type so far):
 *   | size          | field                                         |
 *   |---------------|-----------------------------------------------|
 *   | 4             | n_new: series created, u32                    |
 *   | per new       | u64 id, u32 len, packed labels (labels.h)     |
 *   | 4             | n_series, u32                                 |
 *   | per series    | u64 id, u32 n, n x (i64 t_ms, u64 value bits) |
 * A series' creation precedes its first samples (in the same or an earlier record).
 */
#ifndef TS_TSDB_FORMAT_H
#define TS_TSDB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* ---- directory layout ---- */

#define TS_FORMAT_LOCK_FILE "LOCK"
#define TS_FORMAT_INDEX_DIR "index.mdb"
#define TS_FORMAT_WAL_DIR "wal"
#define TS_FORMAT_RAW_DIR "raw"

/* ---- index env ---- */

/* meta "format": 1 had no cold data; 2 may have cold tables in partitions, group rows
 * of series and heads, and short head snapshots; 3 keeps postings in delta blocks
 * (postings_blocks). Opening a format-1 or 2 index converts its postings in one
 * transaction that also drops the old table and marks the index 3; its other rows are
 * read as they are. Readers refuse values they do not know (a format-1 reader would
 * miss cold data, a format-2 reader every postings entry). */
#define TS_FORMAT_INDEX_VERSION 3
#define TS_FORMAT_INDEX_VERSION_MIN 1

#define TS_FORMAT_TABLE_SERIES "series"
/* Formats 1 and 2 (TS_TABLE_DUPFIXED_U64); converted into postings_blocks at open. */
#define TS_FORMAT_TABLE_POSTINGS "postings"
#define TS_FORMAT_TABLE_POSTINGS_BLOCKS "postings_blocks" /* TS_TABLE_U64_BLOCKS */
#define TS_FORMAT_TABLE_META "meta"
#define TS_FORMAT_TABLE_HEADS "heads"
#define TS_FORMAT_TABLE_METADATA "metadata"
/* Deleted ranges (ts_db_delete). One row per range; a series' ranges are disjoint and
 * not adjacent (merged when written). The index format stays 3: an absent or empty
 * table means nothing is deleted, so every format-3 database without deletions is
 * already valid as it is and no row of another table changes meaning. The cost: a
 * binary older than this table ignores it and shows deleted samples again (it corrupts
 * nothing); ts_db_clean_tombstones removes the samples for good before a downgrade. */
#define TS_FORMAT_TABLE_TOMBSTONES "tombstones"
#define TS_FORMAT_TOMB_KEY_LEN 16
#define TS_FORMAT_TOMB_VAL_LEN 8

/* Keys of the index env's meta table (NUL not included in the key). */
#define TS_FORMAT_META_FORMAT "format"		       /* u32 */
#define TS_FORMAT_META_NEXT_ID "next_id"	       /* u64: the next series id to hand out */
#define TS_FORMAT_META_CHECKPOINT_LSN "checkpoint_lsn" /* u64: replay starts here */
#define TS_FORMAT_META_PARTITION_MS "partition_ms"     /* i64: fixed at creation */

/* Series ids start at 1; 0 is never a series. Keys of series and heads are 8 bytes. */
#define TS_FORMAT_SERIES_KEY_LEN 8

/*
 * Format 2 keeps series rows and head rows in groups of TS_FORMAT_GROUP_SERIES
 * consecutive ids, one zstd-compressed row per group: a row per series cost about 120
 * bytes (labels repeat the same names and values series after series, and every LMDB
 * row carries a key and a node header), a group row about 15. The writer regenerates a
 * whole group row from memory whenever one of its series changes. The format-1 tables
 * ("series", "heads": a row per series) are read at open and emptied by the first
 * checkpoint, which writes every group.
 *
 *   | table        | key                         | value                            |
 *   |--------------|-----------------------------|----------------------------------|
 *   | series_groups| group = id / 256, u64 BE    | group row, entries: packed labels|
 *   | head_groups  | group = id / 256, u64 BE    | group row, entries: head snapshot|
 *
 * Group row: u8 version (1), then one zstd frame (storage/zframe.h; the frame records
 * its decompressed size, at most TS_FORMAT_GROUP_RAW_MAX) whose content is a sequence
 * of entries in ascending slot order, each:
 *   | size    | field                                                 |
 *   |---------|-------------------------------------------------------|
 *   | 1       | slot: id % 256                                        |
 *   | 4       | length L, u32                                         |
 *   | L       | the entry (packed labels, or a head snapshot below)   |
 * A group row with no entry is not stored. A series row's entry exists once its
 * creation is committed; a head entry for every series with data (as a head row did).
 */
#define TS_FORMAT_TABLE_SERIES_GROUPS "series_groups"
#define TS_FORMAT_TABLE_HEAD_GROUPS "head_groups"
#define TS_FORMAT_GROUP_SERIES 256
#define TS_FORMAT_GROUP_VERSION 1
#define TS_FORMAT_GROUP_ENTRY_HDR 5 /* slot, length */
#define TS_FORMAT_GROUP_RAW_MAX (64u << 20)

/* Walks the entries of a decompressed group row (raw, len bytes, borrowed). Start with
 * a zeroed struct; each ts_format_group_next returns 1 with slot/entry/entry_len set
 * (entry aliases raw), 0 after the last entry, or TS_ECORRUPT (a slot not above the
 * previous one, a length past the end). */
struct ts_format_group_it {
	const uint8_t *raw;
	size_t len, pos;
	int last_slot; /* -1 before the first entry */
	unsigned slot;
	const uint8_t *entry;
	uint32_t entry_len;
};
void ts_format_group_it_init(struct ts_format_group_it *it, const uint8_t *raw, size_t len);
int ts_format_group_next(struct ts_format_group_it *it);

/* ---- postings keys ---- */

#define TS_FORMAT_LABEL_NAME_MAX 256	/* the longest label name the engine accepts */
#define TS_FORMAT_POSTING_VALUE_MAX 250 /* value bytes kept in a key (LMDB keys <= 511) */
#define TS_FORMAT_POSTING_KEY_MAX (TS_FORMAT_LABEL_NAME_MAX + 1 + TS_FORMAT_POSTING_VALUE_MAX)
/* The key listing every series: one zero byte. */
#define TS_FORMAT_POSTING_ALL "\0"
#define TS_FORMAT_POSTING_ALL_LEN 1

/* ---- head snapshot (heads table) ---- */

#define TS_FORMAT_SNAP_VERSION 1
/* The short row, for a series with no open chunk and no out-of-order samples (every
 * series after a clean stop, and every idle one): what recovery needs and nothing else.
 *   | off | size | field                        |
 *   | 0   | 1    | version (2)                  |
 *   | 1   | 8    | last applied WAL LSN, u64    |
 *   | 9   | 8    | max_t, i64                   |
 * Parsed as a version-1 row with an empty chunk, no out-of-order samples, and
 * head_min_t = enc_t = max_t. */
#define TS_FORMAT_SNAP_VERSION_SHORT 2
#define TS_FORMAT_SNAP_SHORT_LEN 17
/* Field offsets of the fixed part (the table above). */
enum {
	TS_FORMAT_SNAP_OFF_VERSION = 0,	     /* 1 byte */
	TS_FORMAT_SNAP_OFF_LAST_LSN = 1,     /* 8 */
	TS_FORMAT_SNAP_OFF_HEAD_MIN_T = 9,   /* 8 */
	TS_FORMAT_SNAP_OFF_MAX_T = 17,	     /* 8 */
	TS_FORMAT_SNAP_OFF_NBITS = 25,	     /* 4 */
	TS_FORMAT_SNAP_OFF_N = 29,	     /* 2 */
	TS_FORMAT_SNAP_OFF_LEADING = 31,     /* 1 */
	TS_FORMAT_SNAP_OFF_TRAILING = 32,    /* 1 */
	TS_FORMAT_SNAP_OFF_TAIL_PAD = 33,    /* 1 */
	TS_FORMAT_SNAP_OFF_ENC_T = 34,	     /* 8 */
	TS_FORMAT_SNAP_OFF_ENC_T_DELTA = 42, /* 8 */
	TS_FORMAT_SNAP_OFF_ENC_V = 50,	     /* 8 */
	TS_FORMAT_SNAP_OFF_CHUNK_LEN = 58,   /* 4 */
	TS_FORMAT_SNAP_FIXED = 62,	     /* the chunk bytes start here */
};
#define TS_FORMAT_SNAP_OOO_SAMPLE_LEN 16 /* (t i64, v u64) */
/* Bounds a reader enforces (the engine writes far less: chunks are cut at 1 KiB and the
 * out-of-order buffer at 32 samples; the bounds leave room for both to change). */
#define TS_FORMAT_SNAP_MAX_CHUNK 2048	 /* open chunk bytes */
#define TS_FORMAT_SNAP_MAX_OOO (32 * 64) /* out-of-order samples */

/* A head snapshot's fields, as ts_format_snap_parse() finds them. Pointers alias the
 * parsed buffer. */
struct ts_format_snap {
	uint64_t last_lsn;
	int64_t head_min_t, max_t;
	uint32_t nbits;
	uint16_t n; /* samples in the open chunk */
	uint8_t leading, trailing, tail_pad;
	int64_t enc_t, enc_t_delta;
	uint64_t enc_v;
	const uint8_t *chunk; /* open chunk bytes (NULL when chunk_len == 0) */
	uint32_t chunk_len;
	const uint8_t *ooo; /* ooo_n x (t i64 LE, v u64 LE), strictly ascending by t */
	uint32_t ooo_n;
};

/* ---- metadata row (metadata table) ---- */

#define TS_FORMAT_MD_FIXED 9	   /* type, help length, unit length */
#define TS_FORMAT_MD_MAX_LEN 65536 /* longest metric name, help or unit */

/* ---- WAL records (types are never renumbered) ---- */

#define TS_FORMAT_WAL_REC_BATCH 1
#define TS_FORMAT_BATCH_COUNT_LEN 4	  /* n_new, n_series: u32 */
#define TS_FORMAT_BATCH_NEW_HDR_LEN 12	  /* u64 id, u32 packed length */
#define TS_FORMAT_BATCH_SERIES_HDR_LEN 12 /* u64 id, u32 sample count */
#define TS_FORMAT_BATCH_SAMPLE_LEN 16	  /* i64 t_ms, u64 value bits */

/* ---- partitions ---- */

#define TS_FORMAT_PARTITION_MS_DEFAULT INT64_C(86400000) /* one day */
/* Sample timestamps the engine stores: +-2^62 ms (about 146 million years either way).
 * Appends outside are refused (TS_ETOOOLD / TS_ETOOFUTURE), so partition bounds,
 * out-of-order windows and the INT64_MIN/INT64_MAX sentinels ("none", "all time") never
 * overflow or collide with data. Partition widths are at most TS_FORMAT_PARTITION_MS_MAX,
 * so every partition holding a storable timestamp has a start and an end that fit. */
#define TS_FORMAT_MIN_T_MS (-(INT64_C(1) << 62))
#define TS_FORMAT_MAX_T_MS (INT64_C(1) << 62)
#define TS_FORMAT_PARTITION_MS_MAX (INT64_C(1) << 60)
#define TS_FORMAT_PART_TABLE_CHUNKS "chunks" /* key, value: storage/chunk.h */
#define TS_FORMAT_PART_TABLE_META "meta"
#define TS_FORMAT_PART_TABLE_COLD "cold" /* key below, value: storage/cold.h block */
/* Format 1 wrote this row after rewriting a partition's XOR chunks in key order; it says
 * nothing about cold data and is ignored (and not copied) since format 2. */
#define TS_FORMAT_PART_META_COMPACTED "compacted"
/* Present (1 byte, 1): every sample of the partition is in one cold generation and the
 * env was rewritten tightly since its last write; a write deletes it. */
#define TS_FORMAT_PART_META_COLD "cold"
/* The live cold generations (below). Absent: none. */
#define TS_FORMAT_PART_META_GENS "gens"

/*
 * Cold data of a partition (tsdb/cold.c). Sealed XOR chunks are rewritten into cold
 * blocks (storage/cold.h: the samples of a run of consecutive series ids, zstd-
 * compressed). One conversion writes one generation: blocks whose series (id, time)
 * ranges follow each other without overlap. A series' samples may be split into
 * pieces over consecutive blocks of a generation, in time order.
 *
 * Cold table key (20 bytes, memcmp order = generation, then series, then time):
 *   | off | size | field                                                        |
 *   |-----|------|--------------------------------------------------------------|
 *   | 0   | 4    | generation, u32 BE                                           |
 *   | 4   | 8    | id of the block's last series, u64 BE                         |
 *   | 12  | 8    | min_t of that series' piece in the block, i64 BE sign-flipped |
 * The blocks of generation g holding series X are therefore contiguous from the first
 * key >= (g, X, INT64_MIN): read on while the block's first id <= X.
 *
 * "gens" meta row: the generations readers use (blocks of other generations are an
 * unfinished conversion's and are deleted by the next one):
 *   | size   | field                                                  |
 *   |--------|--------------------------------------------------------|
 *   | 4      | count m, u32                                           |
 *   | 24 * m | per generation: u32 gen, u32 level (0: converted from   |
 *   |        | chunks; k+1: merged from level k), u64 samples, u64     |
 *   |        | block bytes; ascending by gen                           |
 * Where a series has samples in several sources with the same timestamp, the older
 * generation wins over the newer and over hot chunks (the order queries merge in).
 */
#define TS_FORMAT_COLD_KEY_LEN 20

/*
 * Downsampled tiers of a partition (tsdb/tiers.c): the partition's raw samples, minus
 * deleted ones, aggregated into 5-minute windows (ts_ds_raw) and those rows into 1-hour
 * windows (ts_ds_aggr), stored as tier blocks (tsdb/downsample.h: a cold block of 7
 * pseudo-series per series) of at most a few thousand rows or 256 series.
 *
 * "tiers" table key (9 bytes, memcmp order = resolution, then series):
 *   | off | size | field                                          |
 *   |-----|------|------------------------------------------------|
 *   | 0   | 1    | resolution: 1 = 5 minutes, 2 = 1 hour          |
 *   | 1   | 8    | id of the block's last series, u64 BE           |
 * A series' rows of one resolution are in one block: the first key >= (res, X) holds
 * series X if its first id <= X. Windows are floor-aligned to the resolution; a tier is
 * built only when the partition width is a multiple of its resolution (so no window
 * straddles two partitions), as the record's flags say.
 *
 * "tiers" meta row (TS_FORMAT_TIERS_REC_LEN bytes): what the tiers were built from.
 *   | off | size | field                                                      |
 *   |-----|------|------------------------------------------------------------|
 *   | 0   | 1    | version (1)                                                |
 *   | 1   | 8    | XXH3-64 of the "gens" row bytes at the build (of no bytes   |
 *   |     |      | when absent), u64                                          |
 *   | 9   | 8    | hash of the tombstones intersecting the partition (clipped |
 *   |     |      | to it; 0: none), u64                                       |
 *   | 17  | 4    | series with rows, u32                                      |
 *   | 21  | 16   | rows of the 5m and 1h tiers, u64 each                      |
 *   | 37  | 16   | block bytes of the 5m and 1h tiers, u64 each               |
 *   | 53  | 4    | flags: TS_FORMAT_TIERS_FLAG_5M, _1H (the tier was built)   |
 * The tiers are valid while the partition has no hot chunk and both hashes match its
 * current "gens" row and tombstones: every conversion writes a new generation number,
 * so a late write or backfill, once converted, makes them stale (rebuilt by the next
 * closed-partition pass, ts_db_compact or ts_db_downsample); a stale or absent record
 * means "no tiers", and readers use raw data. The rows and the record are replaced in one
 * transaction. Neither the index format nor a partition format number changes: an
 * absent table or row means no tiers yet, which every existing partition is, and older
 * binaries ignore the table. A rewrite by an older binary drops the table but copies the
 * row: a record counting rows over an empty table is stale too.
 */
#define TS_FORMAT_PART_TABLE_TIERS "tiers"
#define TS_FORMAT_PART_META_TIERS "tiers"
#define TS_FORMAT_TIER_KEY_LEN 9
#define TS_FORMAT_TIER_RES_5M 1
#define TS_FORMAT_TIER_RES_1H 2
#define TS_FORMAT_TIERS_REC_VERSION 1
#define TS_FORMAT_TIERS_REC_LEN 57
#define TS_FORMAT_TIERS_FLAG_5M 0x1u
#define TS_FORMAT_TIERS_FLAG_1H 0x2u
#define TS_FORMAT_GENS_ENTRY_LEN 24

/*
 * "expired" meta row (1 byte, TS_FORMAT_EXPIRED_* bits; absent: 0): what retention per
 * resolution (tsdb/compact.c) has deleted from the partition. RAW: its raw samples (the
 * chunks and cold tables are empty; the "gens" row stays, as the tiers' record names it,
 * and nothing converts or rebuilds tiers from then on); T5M, T1H: that tier's rows. Set in
 * the transaction that deletes them. Readers then use the tiers left whatever resolution
 * is asked, and tombstones made afterwards hide whole rows (tiers.c).
 */
#define TS_FORMAT_PART_META_EXPIRED "expired"
#define TS_FORMAT_EXPIRED_RAW 0x1u
#define TS_FORMAT_EXPIRED_5M 0x2u
#define TS_FORMAT_EXPIRED_1H 0x4u
#define TS_FORMAT_GENS_MAX 4096 /* a reader's bound on m */
/* A partition directory is "<start_ms>_<end_ms>" (decimal, start < end); during a
 * compaction the same name with ".compact" (the rewrite) or ".old" (the copy being
 * replaced) exists beside it. */
#define TS_FORMAT_PART_COMPACT_SUFFIX ".compact"
#define TS_FORMAT_PART_OLD_SUFFIX ".old"
#define TS_FORMAT_PART_NAME_MAX 48 /* bytes for a live name, NUL included */

enum ts_format_part_dir {
	TS_FORMAT_PART_DIR_OTHER = 0, /* not a partition: ignore (and warn) */
	TS_FORMAT_PART_DIR_LIVE,      /* "<start>_<end>" */
	TS_FORMAT_PART_DIR_COMPACT,   /* "<...>.compact": an unfinished rewrite */
	TS_FORMAT_PART_DIR_OLD,	      /* "<...>.old": a replaced copy */
};

/* Classifies an entry name of <dir>/raw. name: NUL-terminated, borrowed. For
 * TS_FORMAT_PART_DIR_LIVE, *start and *end receive the range (either may be NULL); they
 * are left untouched otherwise. Never fails: anything unrecognised is
 * TS_FORMAT_PART_DIR_OTHER (including "<a>_<b>" with b <= a, trailing bytes, and any
 * spelling other than the one ts_format_part_name writes: signs, zeros, spaces). */
enum ts_format_part_dir ts_format_part_dir_kind(const char *name, int64_t *start, int64_t *end);

/* Writes the directory name of partition [start, end) into out (cap bytes, at least
 * TS_FORMAT_PART_NAME_MAX suffices), NUL-terminated. Returns the name's length, or -1
 * if cap is too small (out then holds a truncated string when cap > 0). */
int ts_format_part_name(char *out, size_t cap, int64_t start, int64_t end);

/* The start of the partition holding timestamp t: t rounded down (floor, also for
 * negative t) to a multiple of width_ms. t must be within [TS_FORMAT_MIN_T_MS,
 * TS_FORMAT_MAX_T_MS] and width_ms within [1, TS_FORMAT_PARTITION_MS_MAX] (the meta
 * table's partition_ms, TS_FORMAT_PARTITION_MS_DEFAULT when absent); then the start and
 * start + width_ms fit in int64. Never fails. */
int64_t ts_format_partition_start(int64_t t, int64_t width_ms);

/* Writes the postings key `name 0x00 value` into key, the value cut at
 * TS_FORMAT_POSTING_VALUE_MAX bytes; returns the key length. name (nl bytes) and value
 * (vl bytes) are borrowed; key is the caller's and must hold
 * nl + 1 + min(vl, TS_FORMAT_POSTING_VALUE_MAX) bytes (TS_FORMAT_POSTING_KEY_MAX suffices
 * for names the engine accepts). Never fails. */
size_t ts_format_posting_key(uint8_t *key, const char *name, size_t nl, const char *value,
			     size_t vl);

/* Checks the structure of a head snapshot (p, len bytes, borrowed) and fills *out, whose
 * pointers then alias p. Checks: the version, every length against len and the bounds
 * above, the encoder state against the chunk (n == 0 exactly when the chunk is empty,
 * tail_pad <= 1, ceil(nbits / 8) + tail_pad == chunk length), and that out-of-order
 * timestamps strictly ascend. It does not decode the chunk (storage/xor.h does).
 * Returns 0 or TS_ECORRUPT (also for an unknown version; *out is then untouched). */
int ts_format_snap_parse(const uint8_t *p, size_t len, struct ts_format_snap *out);

/* ---- byte helpers (any host byte order) ---- */

static inline void ts_format_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void ts_format_put_le64(uint8_t *p, uint64_t v)
{
	ts_format_put_le32(p, (uint32_t)v);
	ts_format_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t ts_format_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ts_format_get_le64(const uint8_t *p)
{
	return (uint64_t)ts_format_get_le32(p) | (uint64_t)ts_format_get_le32(p + 4) << 32;
}

/* Big-endian u64: series ids in index keys. */
static inline void ts_format_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t ts_format_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
