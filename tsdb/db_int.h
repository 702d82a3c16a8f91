/*
 * db_int.h - the engine's private structures and the calls its modules make to each
 * other (the public API is tsdb.h; on-disk facts are format.h).
 *
 * Concurrency model (the invariants every file relies on):
 * - Registry: series are found by label hash in one of TS_SHARDS shards, each with its
 *   own mutex, so ingest threads canonicalise, hash and look up in parallel. A series,
 *   once created, is never freed before ts_db_close(), so a pointer taken from the
 *   registry stays valid.
 * - db->mu (the append mutex) serialises "decide, write the WAL record, apply to heads".
 *   Therefore WAL LSN order equals the order in which records change heads; recovery
 *   relies on it (a head snapshot taken at last_lsn X contains exactly the records <= X
 *   that touched that series). Everything under `head state` in struct ts_series, the
 *   pending-chunk queue and the unindexed list are protected by db->mu.
 * - Readers copy what they need from memory (head, OOO buffer, pending chunks) under
 *   db->mu FIRST and open LMDB read snapshots AFTER. The writer removes a chunk from
 *   memory only after committing it to LMDB, so a reader sees every chunk at least once;
 *   duplicates are merged by timestamp.
 * - Only the writer thread writes to LMDB (flush and checkpoint).
 */
#ifndef TS_TSDB_DB_INT_H
#define TS_TSDB_DB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "storage/chunk.h"
#include "storage/clock.h"
#include "storage/env.h"
#include "storage/wal.h"
#include "storage/xor.h"
#include "tsdb/format.h"
#include "tsdb/labels.h"
#include "tsdb/metadata.h"
#include "tsdb/tsdb.h"

#define TS_SHARDS 64
#define TS_CHUNK_SAMPLES 120	/* cut an open chunk at this many samples */
#define TS_CHUNK_MAX_BYTES 1024 /* or when it might pass this size */
#define TS_OOO_CUT 32		/* out-of-order buffer becomes a chunk at this size */
#define TS_IDLE_MS 3600000	/* a head this far behind the newest data is sealed */

/* What the engine writes stays inside what its readers accept (format.h). */
_Static_assert(TS_CHUNK_MAX_BYTES * 2 <= TS_FORMAT_SNAP_MAX_CHUNK, "head chunk bound");
_Static_assert(TS_OOO_CUT * 64 <= TS_FORMAT_SNAP_MAX_OOO, "out-of-order bound");

/* A growable byte buffer. */
struct ts__buf {
	uint8_t *p;
	size_t len, cap;
};

/* A sealed chunk waiting in memory until the writer has committed it to LMDB. */
struct ts_chunk_mem {
	struct ts_chunk_mem *next_series; /* older -> newer within the series */
	struct ts_chunk_mem *next_global; /* cut order across all series */
	struct ts_series *series;
	int64_t min_t, max_t;
	uint32_t n_samples, len;
	uint16_t flags;
	uint8_t data[];
};

struct ts_ooo_sample {
	int64_t t;
	uint64_t v;
};

/* Out-of-order samples of one series, kept sorted by t until cut into a chunk. */
struct ts_ooo {
	uint32_t n, cap;
	struct ts_ooo_sample s[];
};

struct ts_series {
	uint64_t id;
	uint64_t hash;
	uint8_t *packed; /* canonical labels (labels.h), in the series' own allocation */
	uint32_t packed_len;
	uint8_t logged;	       /* creation is in the WAL (or the index) */
	uint8_t indexed;       /* creation is committed to the index env */
	uint8_t has_snapshot;  /* its head group row holds an entry for it */
	uint8_t flush_mark;    /* writer only: taken by the flush being written */
	uint8_t snap_dirty;    /* head state changed since its row was captured (db->mu) */
	uint8_t ooo_spill;     /* out-of-order samples inside the open chunk's span may sit in
			    * chunks memory no longer holds (head.c, ts__head_check) */
	uint8_t dead;	       /* gc.c: no sample left anywhere, out of the index and of the
			       * label hash (db->mu); the object stays until close */
	uint8_t limit_counted; /* counted by the series limits (limits.c; db->mu) */
	uint8_t max_t_known;   /* max_t covers every sample the series has: false only for
				   * series loaded from an index without a head row (older
				   * databases), whose newest timestamp is then unknown */
	_Atomic uint8_t marks; /* the caller's bits (ts_series_ref_mark), memory only */
	/* head state, under db->mu */
	struct ts_xor_enc enc; /* open chunk; enc.n == 0 when none */
	int64_t head_min_t;    /* first timestamp of the open chunk */
	int64_t max_t;	       /* newest in-order timestamp, INT64_MIN if none */
	uint64_t last_lsn;     /* LSN of the last WAL record applied to this series */
	uint64_t snap_lsn;     /* recovery: records with lsn <= this are in the snapshot */
	uint64_t b_epoch;      /* append: b_max_t is valid while b_epoch == db->epoch */
	int64_t b_max_t;       /* append: newest in-order timestamp accepted in this batch */
	struct ts_ooo *ooo;
	struct ts_chunk_mem *pending, *pending_tail;
};

/* A registry slot: the series' label hash beside its pointer, so that probing compares
 * hashes without touching the series (a cache miss each at 100k series). */
struct ts_slot {
	uint64_t hash;
	struct ts_series *s; /* NULL = empty */
};

/* Postings of unindexed series (upost.c): per hash of a (name, value) pair, the
 * positions in db->unindexed of the series that have it. */
struct ts__uslot;
struct ts__utab {
	struct ts__uslot *slots; /* open addressing, cap a power of two */
	size_t cap, used;
	uint64_t bytes; /* allocated */
};

struct ts_shard {
	pthread_mutex_t mu;
	struct ts_slot *slots; /* open addressing by hash */
	size_t cap, n;
};

/* A time partition's env. Heap-allocated and reference-counted: the partitions array
 * holds one reference, and every reader (a series set, a stored-sample look-up) takes
 * one while it uses the env, so retention can drop a partition from the array at any
 * time; the last reference closes the env and, if asked, deletes its directory. */
struct ts_partition {
	int64_t start, end;   /* [start, end) in ms */
	struct ts_env *env;   /* NULL while closed; opened on demand (ts__part_pin), db->open_mu */
	unsigned chunks;      /* table handles, valid while env is open */
	unsigned meta;	      /* table: "cold", "gens" (compact.c, cold.c) */
	unsigned cold;	      /* table: cold blocks (cold.c) */
	unsigned tiers;	      /* table: downsampled tier blocks (tiers.c) */
	int pins;	      /* users of env right now (db->open_mu); 0: it may be closed */
	uint64_t last_use;    /* db->open_clock at the last pin, for LRU closing (db->open_mu) */
	atomic_int compacted; /* 1 all cold and rewritten tightly since its last write, 0 not,
			       * -1 not known until the env is first opened */
	uint64_t hot_bytes;   /* chunk bytes written since its last conversion; writer only */
	int64_t last_write_mono_ms; /* when the writer last wrote into it; writer only */
	atomic_int refs;
	atomic_int remove;	/* delete the directory with the last reference */
	atomic_uint expired;	/* TS_FORMAT_EXPIRED_* (format.h), known once the env opened */
	atomic_int rules_state; /* TS__RULES_*: what rules.c decided under the current rules */
	atomic_int tiers_stale; /* a deletion touched it: its tiers are rebuilt (compact.c) */
	char *dir;		/* owned */
};

struct ts_db {
	char *dir;
	int lock_fd; /* flock on <dir>/LOCK: one writer process */
	struct ts_db_opts o;
	struct ts_labels_limits lim;
	char hidden[64]; /* ts_db_opts.hidden_label, "" for none */
	uint32_t hidden_len;
	struct ts_wal *wal;
	struct ts_env *index;
	unsigned t_series, t_postings, t_meta, t_heads, t_metadata; /* t_series, t_heads:
								       * format 1, read only */
	unsigned t_series_groups, t_head_groups;
	unsigned t_tombs;  /* "tombstones" (tombstone.c) */
	int index_migrate; /* format-1 rows were loaded: the next checkpoint rewrites all
			    * groups and drops them (writer) */

	struct ts_shard shards[TS_SHARDS];

	pthread_rwlock_t ids_mu;  /* guards by_id growth */
	struct ts_series **by_id; /* index = id; by_id[0] unused */
	size_t by_id_cap;
	atomic_uint_fast64_t next_id;

	/* The series limits (limits.c), under mu: live series, and per metric name when
	 * max_series_per_metric is set (open addressing by name hash). */
	uint64_t n_live;
	struct ts__name_count {
		char *name; /* NULL: empty slot */
		uint32_t len;
		uint64_t hash, count;
		double tokens;	 /* new series allowed now (kind 't'), -1: not started */
		int64_t last_ms; /* when tokens was last refilled */
	} * lim_names;
	size_t lim_cap, lim_n;

	pthread_mutex_t mu;		      /* the append mutex, see above */
	struct ts_chunk_mem *q_head, *q_tail; /* sealed chunks not yet committed */
	struct ts_series **unindexed;	      /* created (and logged), not yet in the index env */
	size_t n_unindexed, cap_unindexed;
	struct ts__utab up[2]; /* their postings (upost.c): taken by the writer, added since */
	size_t up_base;	       /* unindexed[up_base..] are up[1]'s */
	int up_broken;	       /* an allocation failed: selections scan the whole list */
	uint8_t *rec;	       /* WAL record scratch, under mu */
	size_t rec_cap;
	int wal_err;	    /* sticky TS_EIO: the WAL failed, or memory lost a logged batch */
	uint64_t epoch;	    /* append batch counter, under mu */
	int64_t max_t_seen; /* newest in-order timestamp of any series, under mu */
	int64_t min_t_seen; /* oldest timestamp appended or restored since open, under mu
			     * (INT64_MAX: none); deletions do not raise it */
	int closing;

	pthread_mutex_t md_mu;	/* guards md */
	struct ts_md_entry *md; /* sorted by metric name */
	size_t n_md, cap_md;

	pthread_rwlock_t parts_mu;   /* guards the partitions array */
	struct ts_partition **parts; /* sorted by start; each holds the array's reference */
	size_t n_parts, cap_parts;
	/* Open partition envs (each costs file descriptors and address space): at most
	 * max_open are kept open while unpinned; the least recently used goes first. */
	pthread_mutex_t open_mu;    /* guards every partition's env, pins, last_use, dir, and: */
	struct ts_partition **open; /* partitions whose env is open (no reference held) */
	size_t n_open, cap_open, max_open;
	uint64_t open_clock;

	pthread_t writer;
	pthread_mutex_t fmu; /* serialises flushes (writer thread, checkpoint, close) */
	pthread_mutex_t wmu;
	pthread_cond_t wcond;
	int writer_running, writer_stop;
	atomic_int writer_err;		     /* the last flush's error, 0 once one succeeds */
	int wal_full;			     /* the last WAL append found no space (under mu) */
	atomic_ullong n_flush_failures;	     /* flushes that failed since open */
	_Atomic uint64_t last_checkpoint_ms; /* set by a checkpoint, read by the writer */
	uint64_t last_retention_ms; /* writer: when the retention pass last ran (monotonic) */

	atomic_uint_fast64_t n_samples, n_flushed, n_checkpoints;
	/* retention and tiers since open (ts_db_stats) */
	atomic_uint_fast64_t n_parts_removed, n_parts_expired[3], n_rule_deletions;
	atomic_uint_fast64_t n_series_removed, n_tier_builds;
	pthread_mutex_t rules_mu; /* rules.c: the retention rules (and their pass) */
	struct ts__rules *rules;
	struct ts__rules *rules_next; /* set by ts_db_set_retention_rules, taken by the pass */
	atomic_size_t n_rules;
	int retention_now; /* wmu: run the retention passes at the writer's next wake-up */
	uint64_t *gc_ids;  /* gc.c: dead series still in the index (writer) */
	size_t n_gc, cap_gc;
	atomic_uint_fast64_t n_conversions;

	struct ts__cold_cache *cold_cache; /* opened cold blocks (cold.c) */

	/* Deleted ranges (tombstone.c): an immutable snapshot, swapped under tomb_mu by
	 * delete and clean (both under fmu); readers hold a reference while they read. */
	pthread_mutex_t tomb_mu;
	struct ts__tombs *tombs; /* NULL: none */
};

/*
 * Modules, bottom up; each uses only those above it (see README.md, "Module graph"):
 *   format.c     on-disk facts (format.h)
 *   partition.c  partitions: start of a timestamp, directories, envs, references
 *   head.c       open chunks, out-of-order buffers, head snapshots   (uses partition)
 *   registry.c   the series registry and the unindexed list          (uses head)
 *   metadata.c   metric metadata in memory and its rows              (metadata.h)
 *   index.c      the index env: load, series/postings/head/meta rows (uses registry,
 *                head, metadata)
 *   tiers.c      downsampled tiers of closed partitions   (uses partition, cold, tombstone)
 *   compact.c    rewriting closed partitions, retention per resolution
 *                                                           (uses partition, cold, tiers)
 *   gc.c         series without samples leave the index       (uses registry, index)
 *   writer.c     the writer thread: flush, checkpoint                 (uses all above)
 *   db.c         open/recover/close, append                           (uses all above)
 *   select.c, lookup.c  readers                              (use registry, partition)
 */

/* ---- partition.c ---- */

/* Start of the partition holding t (floor to a multiple of the partition width). */
int64_t ts__partition_start(const struct ts_db *db, int64_t t);
/* A partition object for [start, end) with one reference, for the caller. Its env is not
 * opened (nor its directory created) until the first ts__part_pin. 0 or -ENOMEM. */
int ts__part_open(struct ts_db *db, int64_t start, int64_t end, struct ts_partition **out);
/* Makes p->env (and its table handles) usable until the matching ts__part_unpin:
 * opens the env if it is closed, first closing the least recently used unpinned envs
 * beyond db->max_open (and retrying once after closing one more on EMFILE/ENFILE).
 * The caller holds a reference to p. Only the writer passes create: for everyone else a
 * partition whose directory does not exist yet (created in memory, its first write
 * failed) gives TS_ENOTFOUND, holding nothing. Returns 0, TS_ENOTFOUND, or
 * ts_env_open's error. */
int ts__part_pin(struct ts_db *db, struct ts_partition *p, int create);
/* Ends a pin, then closes the least recently used unpinned envs beyond the cap (a long
 * query may have opened more). Accepts p == NULL. */
void ts__part_unpin(struct ts_db *db, struct ts_partition *p);
/* Bytes the partition's data file holds (its env's high-water mark when open, else the
 * file size). 0 when it has no file yet. */
uint64_t ts__part_bytes(struct ts_db *db, struct ts_partition *p);
/* Lists every partition under <dir>/raw at open (their envs stay closed until used, so
 * start-up does not depend on the length of the history), first finishing or undoing a
 * compaction a crash interrupted. */
int ts__parts_open_existing(struct ts_db *db);
/* Drops the array's references and frees it (close). */
void ts__parts_close(struct ts_db *db);
/* The partition holding t, created if absent. Writer thread only: the array's own
 * reference keeps it alive for the writer, the only thread that removes partitions. */
int ts__part_get(struct ts_db *db, int64_t t, struct ts_partition **out);
/* The partition starting at `start` with a reference taken, or NULL. */
struct ts_partition *ts__part_ref(struct ts_db *db, int64_t start);
/* Takes one more reference (parts_mu held, or a reference already held). */
void ts__part_hold(struct ts_partition *p);
/* Gives a reference back; the last one closes the env (and deletes it if dropped).
 * Accepts NULL. */
void ts__part_unref(struct ts_db *db, struct ts_partition *p);
/* Puts np in old's place in the array (compaction; writer only). The array's reference
 * moves to np; the caller releases old's. */
void ts__part_replace(struct ts_db *db, struct ts_partition *old, struct ts_partition *np);
/* The partition at position *k of the array with a reference (give it back with
 * ts__part_unref), *k advanced; NULL past the end. For walks that may run long: the
 * array may change between calls (a partition may then be skipped or seen twice). */
struct ts_partition *ts__part_next(struct ts_db *db, size_t *k);
/* Marks the partitions that [mint, maxt] touches for a rebuild of their tiers (after
 * new tombstones: the tiers hold the deleted samples until then, and readers use raw
 * data there meanwhile). */
void ts__parts_mark_tiers_stale(struct ts_db *db, int64_t mint, int64_t maxt);
/* Drops partitions wholly older than now - retention; returns how many. Writer only. */
int ts__parts_expire(struct ts_db *db, int64_t now_ms);
/* Deletes an env directory (LMDB's two files, then the directory); missing is fine. */
void ts__dir_remove(const char *dir);
/* Calls fn for every stored chunk of series `id` in a partition snapshot (r, its chunks
 * table) with from <= min_t <= to, in min_t order; `from` must be the partition's start
 * (or later). fn returns 0 to go on; anything else stops the scan and is returned.
 * Returns 0 at the end, fn's value, or an error (TS_ECORRUPT for a bad record). */
typedef int (*ts__chunk_fn)(void *arg, const struct ts_chunk_hdr *h, const uint8_t *payload);
int ts__part_scan(struct ts_rtxn *r, unsigned table, uint64_t id, int64_t from, int64_t to,
		  ts__chunk_fn fn, void *arg);

/* ---- tombstone.c ---- */

/* One deleted range [mint, maxt] of a series. */
struct ts__tomb {
	uint64_t id;
	int64_t mint, maxt;
};
/* An immutable set of ranges sorted by (id, mint), each series' ranges disjoint and not
 * adjacent. Reference-counted: take with ts__tombs_get, give back with ts__tombs_put. */
struct ts__tombs {
	atomic_int refs;
	size_t n;
	struct ts__tomb v[];
};
/* Opens the "tombstones" table and loads it (ts_db_open, before WAL replay and before
 * any read). 0, -ENOMEM, TS_ECORRUPT, or the env's error. */
int ts__tombs_load(struct ts_db *db);
/* The db's current set with a reference, or NULL when there is none. Never fails. */
struct ts__tombs *ts__tombs_get(struct ts_db *db);
/* Gives a reference back. Accepts NULL. */
void ts__tombs_put(struct ts__tombs *t);
/* Series id's ranges in t (may be NULL): their count, *out pointing into t. */
size_t ts__tombs_of(const struct ts__tombs *t, uint64_t id, const struct ts__tomb **out);
/* Whether any of the n ranges r intersects [mint, maxt]. */
int ts__tombs_hit(const struct ts__tomb *r, size_t n, int64_t mint, int64_t maxt);
/* Whether any range of t (may be NULL), of any series, intersects [mint, maxt]. */
int ts__tombs_overlap(const struct ts__tombs *t, int64_t mint, int64_t maxt);
/* Removes in place the samples (t ascending, v; n of each) inside one of the nr ranges
 * r of one series (ascending); returns how many are left. */
size_t ts__tombs_filter(const struct ts__tomb *r, size_t nr, int64_t *t, uint64_t *v, size_t n);
/* Durably adds [mint, maxt] for every series of ids (one index transaction), then
 * publishes the new set. db->fmu held. 0, -ENOMEM, or the env's error (nothing added). */
int ts__tombs_add(struct ts_db *db, const uint64_t *ids, size_t n, int64_t mint, int64_t maxt);
/* Durably removes the ranges of cur (the db's current set) whose drop[i] is set, then
 * publishes the rest. db->fmu held. 0, -ENOMEM, or the env's error (nothing removed). */
int ts__tombs_remove(struct ts_db *db, const struct ts__tombs *cur, const uint8_t *drop);

/* ---- head.c (db->mu held for all but ts__head_free) ---- */

/* Applies n samples of a WAL record (p: n x (i64 t, u64 v) LE) to a series. lsn is the
 * record's LSN. The live append path and recovery both use it, so a recovered head is
 * the head that was lost. Returns samples added, or -ENOMEM. */
int ts__head_apply(struct ts_db *db, struct ts_series *s, const uint8_t *p, uint32_t n,
		   uint64_t lsn);
/* Classifies a sample against a series' state: 0 = append in order, 1 = exact
 * duplicate, 2 = out-of-order accepted, or a negative TS_E* rejection (or a decode
 * error). now_ms 0 skips the wall-clock checks. */
int ts__head_check(struct ts_db *db, struct ts_series *s, int64_t t, uint64_t v, int64_t now_ms);
/* Seals the open chunk and cuts the OOO buffer. 0 or -ENOMEM. */
int ts__head_seal(struct ts_db *db, struct ts_series *s);
/* Seals and frees the head of a series that stopped: its newest sample is TS_IDLE_MS
 * behind `newest` (checkpoints). */
void ts__head_seal_idle(struct ts_db *db, struct ts_series *s, int64_t newest);
/* Head snapshot (format.h): serialised size, serialise into out (that many bytes),
 * restore (0, -ENOMEM, TS_ECORRUPT). */
size_t ts__head_snapshot_len(const struct ts_series *s);
void ts__head_snapshot(const struct ts_series *s, uint8_t *out);
int ts__head_restore(struct ts_series *s, const uint8_t *p, size_t len);
/* Frees the head's memory (open chunk, OOO buffer, pending chunks). */
void ts__head_free(struct ts_series *s);

/* ---- select.c, for look-ups ---- */

/* The series matching m as a set holding only the series (ts_series_set_id works, its
 * labels, samples and chunks are not there): for label look-ups. Free it with
 * ts_series_set_free. Errors as ts_db_select. */
int ts__select_series(struct ts_db *db, const struct ts_matcher *matchers, size_t n_matchers,
		      struct ts_series_set **out, char *msg, size_t msg_len);

/* ---- limits.c: max_series, max_series_per_metric ---- */

/* Counts the series already there (at open, before anything is served). 0 or -ENOMEM. */
int ts__limits_init(struct ts_db *db);
/* Counts a new series s (labels in[0..n)) if the limits allow it (db->mu held): 0, or
 * TS_ELIMIT with *which 1 (max_series), 2 (max_series_per_metric) or 3
 * (max_series_per_hidden) or 4 (new_series_per_minute_per_hidden) and why set, or
 * -ENOMEM. */
int ts__limits_take(struct ts_db *db, struct ts_series *s, int *which, char *why, size_t why_len);
/* Uncounts s (db->mu held): a series counted whose samples were all refused, or one gc.c
 * removed. */
void ts__limits_release(struct ts_db *db, struct ts_series *s);
void ts__limits_free(struct ts_db *db);

/* ---- registry.c ---- */

void ts__registry_init(struct ts_db *db);
/* Frees every series (and its head) and the registry's tables. */
void ts__registry_free(struct ts_db *db);
/* The series with this id, or NULL. */
struct ts_series *ts__series_by_id(struct ts_db *db, uint64_t id);
/* Calls fn for every series (ids_mu held for reading: fn must not use the registry). */
void ts__series_each(struct ts_db *db, void (*fn)(void *arg, const struct ts_series *s), void *arg);
/* Bytes of the registry's own tables: label hash slots, id table, unindexed list
 * (db->mu held, for the unindexed list). */
uint64_t ts__registry_bytes(struct ts_db *db);
/* The series of canonical packed labels, or NULL. */
struct ts_series *ts__series_find(struct ts_db *db, const uint8_t *packed, size_t len);
/* ts__series_find with the labels' hash (ts_labels_hash) already known. */
struct ts_series *ts__series_find_h(struct ts_db *db, const uint8_t *packed, size_t len,
				    uint64_t hash);
/* Starts loading the registry slot of a label hash into the cache, so that a batch can
 * overlap the cache misses of its look-ups. No lock; never fails. */
void ts__series_prefetch(struct ts_db *db, uint64_t hash);
/* Finds or creates (with the next id) the series of canonical packed labels. 0 or
 * -ENOMEM. */
int ts__series_get(struct ts_db *db, const uint8_t *packed, size_t len, struct ts_series **out);
/* Inserts a series with a known id (index load, WAL replay). 0, -ENOMEM, TS_ECORRUPT
 * (the labels are already registered). */
int ts__series_insert(struct ts_db *db, uint64_t id, const uint8_t *packed, size_t len,
		      uint64_t hash, struct ts_series **out);
/* Lists a logged series for the index env (db->mu held). 0 or -ENOMEM. */
int ts__series_unindexed_add(struct ts_db *db, struct ts_series *s);

/* ---- index.c ---- */

int ts__index_open(struct ts_db *db);
/* At close, after the last write: rewrites the index env compactly (copy, then renames
 * as compact.c does) when its file holds much more than its data, and closes it
 * (db->index is NULL afterwards if it did). 0 or the error (the env is then as it was). */
int ts__index_compact(struct ts_db *db);
/* Loads meta rows, series, head rows and metadata; *checkpoint_lsn is where replay
 * starts. 0, -ENOMEM, TS_ECORRUPT, TS_EVERSION. */
int ts__index_load(struct ts_db *db, uint64_t *checkpoint_lsn);
/* Adds rows to the writer's index batch: new series s[0..n) (their postings, each key's
 * ids in one record), a head row (len 0 deletes it), the meta rows (checkpoint_lsn only
 * at checkpoints). */
int ts__index_add_many(struct ts_db *db, struct ts_batch *b, struct ts_series *const *s, size_t n);
/* The row of series group g (format.h) from its committed members (ascending ids; their
 * packed labels are read), deleted when n == 0. 0, -ENOMEM, or the batch's error. */
int ts__index_put_series_group(struct ts_db *db, struct ts_batch *b, uint64_t g,
			       struct ts_series *const *members, size_t n);
/* The row of head group g from n head snapshots (ascending ids; all borrowed). */
/* Queues the removal of series ids[0..n) (ascending) from the index: their postings
 * entries (every postings key of their labels, and the all-series key; keys left empty
 * go), their series group entries (groups rewritten from the members still indexed and
 * not dead) and their head group entries (rows read from r and rewritten without
 * them). Writer only; db->mu not held. 0, -ENOMEM, TS_ECORRUPT, or the env's error. */
int ts__index_drop_series(struct ts_db *db, struct ts_rtxn *r, struct ts_batch *b,
			  const uint64_t *ids, size_t n);
int ts__index_put_head_group(struct ts_db *db, struct ts_batch *b, uint64_t g, const uint64_t *ids,
			     const uint8_t *const *snaps, const size_t *lens, size_t n);
/* Deletes every format-1 series and head row (the checkpoint that migrates them). */
int ts__index_drop_v1_rows(struct ts_db *db, struct ts_batch *b);
int ts__index_put_meta(struct ts_db *db, struct ts_batch *b, const uint64_t *checkpoint_lsn);

/* ---- compact.c ---- */

/* Rewrites up to max_parts closed partitions; returns how many. Writer only
 * (db->fmu held). Unless `force`, only partitions quiet for a while and big enough to
 * gain are chosen, so a backfill into old partitions does not rewrite them per flush. */
int ts__compact_closed(struct ts_db *db, int max_parts, int force);
/* Converts every partition written since open (ts_db_close). Writer thread or close,
 * db->fmu held. Returns how many were looked at. */
int ts__compact_written(struct ts_db *db);
/* Converts (every generation merged, tombstoned samples dropped) and rewrites into a
 * fresh env every stored partition that a range of t intersects (clean_tombstones).
 * db->fmu held. Returns 0 or the first failure (the partitions that failed are left as
 * they were; the others are done). */
int ts__compact_tombs(struct ts_db *db, const struct ts__tombs *t);
/* Queues in b the deletion of every key of `table` in snapshot r whose first byte is
 * `first` (every key when first < 0). 0, -ENOMEM, or the env's error. */
int ts__table_clear(struct ts_rtxn *r, unsigned table, int first, struct ts_batch *b);
/* ---- rules.c ---- */
#define TS__RULES_UNKNOWN 0 /* not decided under the current rules: retention waits */
#define TS__RULES_KEPT 1    /* a rule keeps series there: retention leaves it alone */
#define TS__RULES_FREE 2    /* the database's retention applies */
struct ts__rules;
/* A checked copy of rules (matchers compiled once against db). 0, -ENOMEM, TS_EINVALID
 * (msg says which rule or regex). */
int ts__rules_new(struct ts_db *db, const struct ts_retention_rule *in, size_t n,
		  struct ts__rules **out, char *msg, size_t msg_len);
void ts__rules_free(struct ts__rules *r); /* accepts NULL */
/* Applies the rules to the closed partitions and decides each one's rules_state. Writer
 * only (db->fmu held), before the database's retention. 0 or an error (logged; the
 * partitions not decided wait for the next pass). */
int ts__rules_pass(struct ts_db *db, int64_t now_ms);
/* Whether the database's retention may act on p now (partition.c, compact.c). */
static inline int ts__rules_free_part(struct ts_db *db, struct ts_partition *p)
{
	return atomic_load(&db->n_rules) == 0 || atomic_load(&p->rules_state) == TS__RULES_FREE;
}

/* ---- gc.c ---- */
/* Removes from the index every series with no sample left anywhere (its newest sample
 * is older than the oldest partition retention kept, and memory holds none of it), and
 * takes them out of the label hash: a later sample with the same labels makes a new
 * series. Writer only (db->fmu held). Returns how many went, or an error (nothing
 * removed from the index then; the series are tried again next time). */
int ts__series_gc(struct ts_db *db);
/* A series gc.c removed (db->mu held): the one with its labels now, created if need be
 * (an append that resolved s before the removal writes there instead). */
int ts__series_revive(struct ts_db *db, struct ts_series *s, struct ts_series **out);
/* Takes s out of the label hash (registry.c). */
void ts__series_unlink(struct ts_db *db, struct ts_series *s);

/* Rebuilds the tiers of closed partitions marked stale by a deletion (not busy ones;
 * the others stay marked). Writer only (db->fmu held). Returns how many were rebuilt. */
int ts__tiers_refresh(struct ts_db *db);
/* Converts p with every generation merged and tombstoned samples left out, rewrites it
 * and rebuilds its tiers (rules.c, after new tombstones). Not a busy partition (0 then).
 * Writer only. 0 or an error (logged; the tombstones hide the samples meanwhile). */
int ts__compact_clean_part(struct ts_db *db, struct ts_partition *p);
/* Retention per resolution (ts_db_opts): how long a partition is kept at all (the
 * longest of the three retentions; 0 when one of them keeps everything). */
int64_t ts__retention_keep_ms(const struct ts_db *db);
/* Deletes the raw samples and tier rows of partitions that aged out of their retention
 * (building tiers first where raw samples go) and rewrites those partitions. Writer
 * only (db->fmu held). Returns how many partitions changed; failures are logged and
 * retried by the next pass. */
int ts__retention_pass(struct ts_db *db, int64_t now_ms);
/* Whether p is closed: its end is older than now - the out-of-order window - the slack
 * compact.c gives writes before it converts a partition for good. */
int ts__part_closed(const struct ts_db *db, const struct ts_partition *p);

/* ---- cold.c ---- */

/* A listed cold generation (format.h, "gens" row). */
struct ts__gen {
	uint32_t gen, level;
	uint64_t n_samples, bytes;
};
/* Reads the gens row of a partition snapshot into *out (ts_malloc'd, NULL when none;
 * the caller frees it). 0, -ENOMEM, TS_ECORRUPT, or the env's error. */
int ts__cold_gens_read(struct ts_rtxn *r, unsigned meta, struct ts__gen **out, size_t *n);
/* Calls fn with the cold samples of series id in [from, to] (whole pieces: samples
 * outside the range may be included) from the listed generations of a partition
 * snapshot, oldest generation first. Arrays are valid only during the call. fn returns
 * 0 to go on. Returns 0, fn's value, TS_ECORRUPT, -ENOMEM, or the env's error. */
typedef int (*ts__samples_fn)(void *arg, const int64_t *t, const uint64_t *v, uint32_t n);
/* Mutual exclusion around uses of a read transaction shared by threads
 * (ts_series_set_share); a NULL lock means one thread. */
struct ts__txn_lock {
	void (*lock)(void *arg);
	void (*unlock)(void *arg);
	void *arg;
};
/* Enter and leave lk; a NULL lk or lock means one thread: nothing to do. */
static inline void ts__txn_enter(const struct ts__txn_lock *lk)
{
	if (lk && lk->lock)
		lk->lock(lk->arg);
}
static inline void ts__txn_leave(const struct ts__txn_lock *lk)
{
	if (lk && lk->lock)
		lk->unlock(lk->arg);
}
/* lk: taken around the cursor work only (NULL: none); blocks are decoded outside it. */
int ts__cold_scan(struct ts_db *db, struct ts_rtxn *r, unsigned cold, int64_t part,
		  const struct ts__gen *gens, size_t n_gens, uint64_t id, int64_t from, int64_t to,
		  const struct ts__txn_lock *lk, ts__samples_fn fn, void *arg);
struct ts__convert_stats {
	uint64_t n_samples, n_chunks, n_blocks_merged, bytes;
	int gens_merged;
	size_t gens_after;
};
/* Converts every hot chunk of p (pinned by the caller) into a new cold generation,
 * merging with it all generations (merge_all) or the size tier that is due;
 * merge_all == TS__CONVERT_FORCE rewrites even a lone generation (to drop tombstoned
 * samples). Samples inside the db's tombstones are left out of what it writes. Writer
 * thread only (db->fmu held). 0 (also when there was nothing to do), -ENOMEM,
 * TS_ECORRUPT, or the env's error; on error the partition is as before. */
#define TS__CONVERT_FORCE 2
int ts__cold_convert(struct ts_db *db, struct ts_partition *p, int merge_all,
		     struct ts__convert_stats *st);
/* The cache of opened blocks, bounded by cap_bytes. */
struct ts__cold_cache;
int ts__cold_cache_new(size_t cap_bytes, struct ts__cold_cache **out);
void ts__cold_cache_free(struct ts__cold_cache *c);
void ts__cold_cache_stats(struct ts__cold_cache *c, uint64_t *hits, uint64_t *misses, size_t *mem);
/* A reader's reference to a block opened through the cache (tier blocks use it too, under
 * keys of their own: tiers.c). */
struct ts__blk_ref {
	const struct ts_cold_block *b;
	void *ent; /* private */
};
/* The opened block stored under (part, key: TS_FORMAT_COLD_KEY_LEN bytes) with bytes v,
 * from the cache or opened now. Give it back with ts__cold_cache_put. 0, -ENOMEM,
 * TS_ECORRUPT. */
int ts__cold_cache_get(struct ts_db *db, int64_t part, const uint8_t *key, const void *v, size_t vl,
		       struct ts__blk_ref *out);
void ts__cold_cache_put(struct ts_db *db, struct ts__blk_ref *ref); /* accepts an empty ref */

/* ---- tiers.c ---- */
struct ts_ds_row; /* tsdb/downsample.h */
struct ts_ds_agg;
/* The "tiers" meta row of a partition (format.h). */
struct ts__tiers_rec {
	int have; /* 0: no row (no tiers built yet); the rest is then zero */
	uint64_t gens_hash, tombs_hash;
	uint32_t n_series;
	uint64_t rows[2], bytes[2]; /* [0] 5m, [1] 1h */
	uint32_t flags;		    /* TS_FORMAT_TIERS_FLAG_* */
};
/* Reads the row from a partition snapshot. 0 (out->have 0 when absent), TS_ECORRUPT, or
 * the env's error. */
int ts__tiers_read(struct ts_rtxn *r, unsigned meta, struct ts__tiers_rec *out);
#define TS__TIERS_SKIPPED 0 /* not settled (hot chunks, several generations): nothing done */
#define TS__TIERS_CURRENT 1 /* the tiers match the data: nothing done */
#define TS__TIERS_BUILT 2   /* built and committed */
/* Builds the tiers of p (pinned by the caller; closed) when they are absent or stale
 * (or always, with force), replacing the old ones and the record in one transaction.
 * *state says what happened; *rec receives the record now stored (CURRENT, BUILT).
 * Writer thread only (db->fmu held). 0, -ENOMEM, TS_ECORRUPT, or the env's error (the
 * old tiers then stay as they were). */
int ts__tiers_build(struct ts_db *db, struct ts_partition *p, int force, int *state,
		    struct ts__tiers_rec *rec);
/* The tiers of p that a reader of snapshot r may use (TS_FORMAT_TIERS_FLAG_* bits): those
 * built, when the record matches the snapshot's gens row and the tombstones `tombs` and
 * the partition has no hot chunk; else 0 (raw data answers). 0 or an error. */
int ts__tiers_usable(struct ts_rtxn *r, const struct ts_partition *p, const struct ts__tombs *tombs,
		     uint32_t *flags);
/* Series id's rows in tier res (TS_FORMAT_TIER_RES_*) of partition p (snapshot r), the
 * aggregates `kinds` says (ts_ds_tier_decode_kinds): decoded
 * into *rows (grown as needed; the caller frees it) and described by *out (n_rows 0
 * when the series has none there). 0, -ENOMEM, TS_ECORRUPT, or the env's error. */
int ts__tiers_series(struct ts_db *db, struct ts_rtxn *r, const struct ts_partition *p, uint8_t res,
		     uint64_t id, unsigned kinds, struct ts_ds_row **rows, size_t *cap,
		     struct ts_ds_agg *out);

/* ---- writer.c ---- */

int ts__writer_start(struct ts_db *db);
void ts__writer_stop(struct ts_db *db);
/* Moves sealed chunks and new series into LMDB; with `checkpoint` also head rows and
 * the checkpoint LSN, then truncates the WAL. 0 or the first error. */
/* ---- postings of the unindexed series (upost.c; db->mu held) ---- */
/* Lists s, just appended to db->unindexed at position `at`. 0 or -ENOMEM (then call
 * ts__upost_lost). */
int ts__upost_add(struct ts_db *db, const struct ts_series *s, size_t at);
/* The writer took db->unindexed[0..n_taken) for a flush. 0 or -ENOMEM (as above). */
int ts__upost_taken(struct ts_db *db, size_t n_taken);
/* The taken prefix was committed and removed from db->unindexed. */
void ts__upost_committed(struct ts_db *db);
/* Drops the postings after a failed allocation: selections scan the whole list until
 * it has been empty once (db->up_broken). */
void ts__upost_lost(struct ts_db *db);
/* Series listed under (name, value): how many (SIZE_MAX when the pair is no longer
 * listed, having most of the series), and the series themselves into out (room for
 * the count). A series is listed once per pair; hash collisions may add others, so
 * callers check the labels. */
size_t ts__upost_count(struct ts_db *db, const char *name, size_t nl, const char *value, size_t vl);
size_t ts__upost_get(struct ts_db *db, const char *name, size_t nl, const char *value, size_t vl,
		     struct ts_series **out);
uint64_t ts__upost_bytes(const struct ts_db *db);
/* Unindexed series a selection checks one by one before it uses their postings
 * (select.c; tests set 0). */
extern size_t ts__unindexed_scan_max;
void ts__upost_free(struct ts_db *db);

/* Head row bytes per index transaction of a checkpoint (writer.c); a variable so that
 * tests can make every group its own transaction. */
extern size_t ts__ckpt_slice_bytes;
int ts__writer_flush(struct ts_db *db, int checkpoint);
/* The same with db->fmu already held by the caller (clean_tombstones). */
int ts__writer_flush_locked(struct ts_db *db, int checkpoint);

#endif
