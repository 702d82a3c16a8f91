/*
 * tsdb.h - the embedded time-series engine (libtsdb).
 *
 * A database is a directory (see DESIGN.md, "Storage layout"): an LMDB index env, one
 * LMDB env per time partition of raw chunks, and a write-ahead log. Samples are appended
 * in batches; ts_db_append() returns once the batch is in the WAL under the configured
 * sync policy, so an acknowledged sample survives kill -9 (and, with TS_WAL_SYNC_ALWAYS,
 * power loss). A background writer thread moves sealed chunks into LMDB and checkpoints
 * open chunks so the WAL stays bounded.
 *
 * Threading: every function may be called from any thread concurrently, except
 * ts_db_close(), which must be the last call on a db and must not race with others.
 * Error codes: 0 on success, -errno, or TS_E* from storage/err.h (ts_strerror names them).
 * Strings in and out are byte strings with explicit lengths unless stated otherwise.
 *
 * Installed (cmake --install; pkg-config tsdb): #include <tsdb/tsdb.h>, and
 * <tsdb/query.h> for PromQL; link with `pkg-config --libs tsdb` (add --static for
 * libtsdb.a). The installed library logs nothing until the program sets a sink with
 * ts_log_set_sink() (storage/log.h, included here); ts_log_to_stderr() is the simplest.
 * See examples/ for programs that open, append, select, iterate and query.
 */
#ifndef TS_TSDB_H
#define TS_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/wal_types.h"
#include "tsdb/types.h"

struct ts_db;

#define TS_RETENTION_FOREVER (INT64_C(1) << 62)

struct ts_matcher;
/* A retention rule: series matching every matcher (borrowed) keep retention_ms (> 0) of
 * data at every resolution, if no earlier rule matches them. */
struct ts_retention_rule {
	const struct ts_matcher *m;
	size_t n_matchers;
	int64_t retention_ms;
};

struct ts_db_opts {
	enum ts_wal_sync sync;	   /* default TS_WAL_SYNC_ALWAYS (0) */
	uint32_t sync_interval_ms; /* for TS_WAL_SYNC_INTERVAL; 0 means 1000 */
	int64_t partition_ms;	   /* partition width; 0 means 1 day. Fixed at creation. */
	int64_t ooo_window_ms;	   /* accept samples this far behind a series' newest; 0 = none */
	int64_t max_future_ms;	   /* reject samples this far ahead of wall time; 0 = no limit */
	/* Retention per resolution (Thanos compactor's meaning; tsdb/compact.c): raw samples
	 * older than now - retention_ms are rejected on append and deleted, 5-minute and
	 * 1-hour rows of the downsampled tiers older than now - retention_5m_ms /
	 * retention_1h_ms are deleted, and a partition goes when nothing of it is kept.
	 * Raw samples are deleted only once the partition's tiers are built. 0 keeps
	 * everything (retention_ms) or means "as retention_ms" (the tiers);
	 * TS_RETENTION_FOREVER keeps a tier for good. Checked at open and at least every
	 * 30 s. */
	int64_t retention_ms;
	int64_t retention_5m_ms;
	int64_t retention_1h_ms;
	uint64_t checkpoint_wal_bytes;	 /* checkpoint when the WAL exceeds this; 0 = 32 MiB */
	uint32_t checkpoint_interval_ms; /* and at least this often; 0 = 5 minutes */
	uint32_t flush_interval_ms;   /* sealed chunks reach LMDB at least this often; 0 = 1000 */
	uint32_t max_labels;	      /* per series; 0 means 64 */
	uint32_t max_label_name_len;  /* 0 means 256 */
	uint32_t max_label_value_len; /* 0 means 4096 */
	uint32_t max_open_partitions; /* partition envs kept open when idle (each holds 3 file
				       * descriptors); 0 means 64. Queries may open more
				       * while they run. */
	uint64_t cold_cache_bytes;    /* opened cold blocks kept for queries; 0 means 64 MiB */
	/* Series limits: a new series past either is refused whole (TS_ELIMIT, counted in
	 * ts_append_result) while existing series keep taking samples. max_series counts
	 * every series in the index (a series leaves when retention removed all its
	 * samples); max_series_per_metric counts them per __name__. 0: no limit. */
	uint64_t max_series;
	uint64_t max_series_per_metric;
	uint64_t max_series_per_hidden; /* per value of hidden_label (tenants; series without
					 * it count as one value) */
	/* New series per minute per value of hidden_label, with a burst of one minute's
	 * worth; past it a new series is refused (TS_ELIMIT) until the budget refills. */
	uint32_t new_series_per_minute_per_hidden;
	/* A label readers never see (tenants, server/tenant.c): left out of the labels a
	 * series set gives (ts_series_set_labels), of label names, and its values are
	 * never listed; matchers and appends use it as any label. NULL: none. Copied at
	 * open (at most 63 bytes). */
	const char *hidden_label;
	/* Retention per selector (borrowed for ts_db_open; see ts_db_set_retention_rules). */
	const struct ts_retention_rule *retention_rules;
	size_t n_retention_rules;
};

/* Opens (creating if absent) the database in `dir` and recovers it: loads the index,
 * the last checkpoint, and replays the WAL (a torn tail is cut and logged, never fatal).
 * opts may be NULL for defaults. *out is owned by the caller: ts_db_close() it.
 * Returns 0, -errno, -ENOMEM, TS_ECORRUPT, TS_EVERSION, TS_EBUSY (another process has
 * the database open for writing), -EINVAL (a negative duration, a partition width over
 * 2^60 ms, or a window or limit over 2^62 ms). */
int ts_db_open(const char *dir, const struct ts_db_opts *opts, struct ts_db **out);

/* Stops the writer thread, then checkpoints (sealed chunks and head rows to LMDB, the
 * WAL truncated) and frees db and everything it owns; every series set, iterator and
 * chunk iterator of db must be freed first. Returns 0, the sticky WAL error (TS_EIO,
 * nothing checkpointed: reopening replays the WAL), or the checkpoint's error (-ENOMEM,
 * -errno, TS_EIO, TS_EFULL). The db is freed in any case. Accepts NULL (returns 0). */
int ts_db_close(struct ts_db *db);

/* ---- Appending ---- */

/* One series' samples in a batch. Labels need not be sorted; they are validated and
 * canonicalised (sorted by name). `__name__` is required. Samples of one series must be
 * in non-decreasing time order to be appended in order; earlier ones are handled as
 * out-of-order. All pointers are borrowed for the duration of the call. */
struct ts_series_in {
	const struct ts_label *labels;
	uint32_t n_labels;
	const struct ts_sample *samples;
	uint32_t n_samples;
};

/* Outcome of a batch. Counts are samples unless named otherwise. */
struct ts_append_result {
	uint64_t n_appended;	 /* stored */
	uint64_t n_duplicate;	 /* exact resends of stored samples: accepted, not stored twice */
	uint64_t n_out_of_order; /* rejected: TS_EOUTOFORDER */
	uint64_t n_conflict;	 /* rejected: same timestamp, different value (TS_EDUPLICATE) */
	uint64_t n_too_old;	 /* rejected: TS_ETOOOLD (retention, window, or before -2^62 ms) */
	uint64_t n_too_future;	 /* rejected: TS_ETOOFUTURE (max_future_ms, or after 2^62 ms) */
	uint64_t
		n_invalid_series; /* series rejected whole for bad labels (TS_EINVALID/TS_ELIMIT) */
	uint64_t n_new_series;	  /* series created by this batch */
	uint64_t n_limited_series;	  /* new series refused by max_series (TS_ELIMIT) */
	uint64_t n_limited_series_metric; /* ... by max_series_per_metric (TS_ELIMIT) */
	uint64_t n_limited_series_hidden; /* ... by max_series_per_hidden (TS_ELIMIT) */
	uint64_t n_limited_series_rate;	  /* ... by new_series_per_minute_per_hidden */
	int first_err;			  /* first rejection's code, 0 if none */
	size_t first_err_series;	  /* index of the series it happened in */
	char first_err_msg[256];	  /* human-readable, names the series and the reason */
};

/* Appends a batch of n series (borrowed for the call). Returns 0 once everything
 * accepted is durable under the sync policy (see res for what was rejected: rejections
 * do not make the call fail, and accepted series of the same batch are stored). res
 * (may be NULL) is the caller's and is reset first. series_rc, if not NULL, is an array
 * of n entries that receives per series 0 or the first rejection code for that series
 * (left unwritten when the call fails before anything was logged). Errors: -ENOMEM,
 * -ENOSPC (no space for the WAL record: nothing logged, retry later), TS_EIO (the WAL
 * failed, or memory lost a logged batch: nothing further is acknowledged until the
 * database is reopened), the last flush's error while flushes into LMDB fail (see
 * ts_db_writable(): -ENOSPC, -ENOMEM, TS_EIO...; nothing logged, writes resume by
 * themselves once a flush succeeds), TS_ECLOSED (ts_db_close() has begun),
 * TS_ECORRUPT (a chunk held for the series failed to decode while judging a resend).
 * On error, no sample of the batch was acknowledged (some may still be durable). */
int ts_db_append(struct ts_db *db, const struct ts_series_in *series, size_t n,
		 struct ts_append_result *res, int *series_rc);
/* Series i's samples older than its newest are TS_EOUTOFORDER whatever the out-of-order
 * window (a deduplicated HA pair's series: after a failover the new replica's backlog
 * must not interleave with what the old one wrote). */
#define TS_APPEND_IN_ORDER 1u
/* ts_db_append with flags[i] (TS_APPEND_*) for series i; flags NULL: none. */
int ts_db_append_flags(struct ts_db *db, const struct ts_series_in *series, size_t n,
		       const uint32_t *flags, struct ts_append_result *res, int *series_rc);

/* A handle on one series of one open database, for appending without its labels.
 * 0 is never a ref. A ref stays valid until ts_db_close() of the handle that gave it
 * and always names the same label set: if retention removed the series meanwhile, an
 * append through the ref creates it again. Passing a ref to another handle, or one not
 * given by ts_db_append_refs() or ts_db_lookup_refs(), is undefined behaviour (refs
 * are not checked: they exist to skip the work of finding a series). */
typedef uint64_t ts_series_ref;

/* ts_db_append_flags() where refs (n entries; NULL: as ts_db_append_flags) works both
 * ways. refs[i] != 0: entry i goes to that series and its labels are not read (they
 * may be NULL). refs[i] == 0: the series is found or created from the labels, and
 * refs[i] receives its ref unless the call failed before logging anything; it is left
 * 0 when the labels or the series limits refused it. On return refs[i] may also change
 * for a given ref (the series was recreated). Errors as ts_db_append(). */
int ts_db_append_refs(struct ts_db *db, const struct ts_series_in *series, size_t n,
		      const uint32_t *flags, ts_series_ref *refs, struct ts_append_result *res,
		      int *series_rc);

/* refs[i] (n entries) receives the ref of the series whose canonical label set is
 * in[i]'s labels byte for byte (names strictly ascending, no empty value: the form
 * Prometheus sends), or 0: other labels, other order, or no such series. Creates and
 * validates nothing; samples are not read. Returns 0 or -ENOMEM (refs then all 0). */
int ts_db_lookup_refs(struct ts_db *db, const struct ts_series_in *in, size_t n,
		      ts_series_ref *refs);

/* A caller's bits (8) on a series, in memory only: 0 for every series at open, and for
 * a series retention removed and an append made again. tsdbd marks the series whose
 * labels passed remote write's label rules, so as not to check them again. Thread-safe. */
unsigned ts_series_ref_marks(ts_series_ref ref);
void ts_series_ref_mark(ts_series_ref ref, unsigned bits);

/* ---- Selecting ---- */

enum ts_match_type { TS_MATCH_EQ = 0, TS_MATCH_NEQ = 1, TS_MATCH_RE = 2, TS_MATCH_NRE = 3 };

/* A label matcher; name and value are NUL-terminated and borrowed. Regexes are PCRE2,
 * fully anchored (as Prometheus' are), run JIT-compiled and, past a backtracking limit,
 * by PCRE2's non-backtracking DFA matcher, so answers equal RE2's without exponential
 * time. A missing label matches as the empty string. */
struct ts_matcher {
	enum ts_match_type type;
	const char *name;
	const char *value;
};

/* Whether matcher m (borrowed) matches the label value v[0..len) (a missing label is
 * ""), as a selection would match it: 1 yes, 0 no, TS_EINVALID (bad regex or type; msg
 * says why, at most msg_len bytes with the NUL), TS_ELIMIT (the regex exceeded its
 * matching limits on v), -ENOMEM. */
int ts_matcher_match(const struct ts_matcher *m, const char *v, size_t len, char *msg,
		     size_t msg_len);

struct ts_series_set;

/* What a downsampled row reads as in a downsampled selection (ts_select_opts): AVG its
 * sum / count, SUM, MIN, MAX that aggregate, COUNTER one monotonic counter over the
 * read (resets added up, raw samples included; for rate() and increase()). */
enum ts_aggr { TS_AGGR_AVG = 0, TS_AGGR_SUM, TS_AGGR_MIN, TS_AGGR_MAX, TS_AGGR_COUNTER };

/* Bounds of one selection; zero-initialise for none (and raw samples only). */
struct ts_select_opts {
	int64_t deadline_ns;	      /* CLOCK_MONOTONIC nanoseconds; 0 means none */
	volatile const int *canceled; /* optional: the selection stops when non-zero */
	/* Downsampled reads: 0 reads raw samples only. From 300000 (5 min) up, each closed
	 * partition whose downsampled tiers are current is read from its coarsest tier at
	 * most this resolution (5 min, 1 h) instead of its raw samples: a row per window
	 * and series, at the window's last millisecond (the last sample's time in the
	 * partition's last window), read as aggr says. Everything else (open partitions,
	 * stale tiers, samples of the series still in memory) is read raw, and raw samples
	 * read as themselves (COUNTER: as part of the counter). Sample iterators only:
	 * chunk iterators and ts_series_set_has_data read raw data. */
	int64_t max_resolution_ms;
	enum ts_aggr aggr;
	/* Query-time deduplication of HA replicas, as Thanos Query's --query.replica-label:
	 * series whose labels differ only in these label names (n_dedup_labels of them,
	 * borrowed for the call) become one series without them, whose samples come from
	 * one replica at a time, switching where that replica has a gap (Thanos' penalty
	 * algorithm: a replica not picked is skipped for twice the last step). With
	 * dedup_counter the values are counters (rate, increase): a replica switched to that
	 * reads lower than the last value taken is raised by the difference, so the switch
	 * is not a reset. Sample iterators only: ts_chunk_it_new on a merged series is
	 * TS_EINVALID. */
	const char *const *dedup_labels;
	size_t n_dedup_labels;
	int dedup_counter;
};

/* Selects series matching every matcher that may have samples in [mint_ms, maxt_ms],
 * sorted by label set. m (n_matchers entries, may be 0) is borrowed for the call. The
 * set holds a consistent read snapshot: samples appended later may or may not be seen,
 * but nothing is seen twice or half. *out is owned by the caller: free it with
 * ts_series_set_free(), from the thread that iterates it, before ts_db_close(); it holds
 * LMDB read snapshots, so keep it briefly. Returns 0, TS_EINVALID (bad regex or
 * matcher type; for a regex msg names it if msg != NULL, at most msg_len bytes with the
 * NUL), -ENOMEM, TS_ECORRUPT (the index names a series it lacks, or a stored record is
 * malformed), TS_EINVALID (o: a negative max_resolution_ms or an unknown aggr),
 * TS_ELIMIT (no free LMDB reader slot; or a regex exceeded its matching
 * limits on some value: msg names the regex, the label and the value's length; a
 * regex never silently fails to match). On error *out is not set.
 * -ETIMEDOUT / -ECANCELED (o's deadline passed / *o->canceled became non-zero; checked
 * while postings and labels are matched, so a selection over many long values stops in
 * time). o may be NULL (no deadline).
 * Threading: label matching (regexes included) runs without the append lock, so a slow
 * selection never holds up appends. */
int ts_db_select(struct ts_db *db, const struct ts_matcher *m, size_t n_matchers, int64_t mint_ms,
		 int64_t maxt_ms, const struct ts_select_opts *o, struct ts_series_set **out,
		 char *msg, size_t msg_len);
/* Frees a set and gives back its snapshots. Every iterator of the set must be freed
 * first (their chunk bytes are the set's). Accepts NULL. */
void ts_series_set_free(struct ts_series_set *set);
/* Number of series in the set. Never fails. */
size_t ts_series_set_len(const struct ts_series_set *set);
/* The coarsest tier resolution (ms) a partition of the set is read from (see
 * ts_select_opts.max_resolution_ms); 0 when everything is read raw. Never fails. */
int64_t ts_series_set_resolution(const struct ts_series_set *set);
/* Series i's id (i < ts_series_set_len(set); not checked). Never fails. */
uint64_t ts_series_set_id(const struct ts_series_set *set, size_t i);
/* Series i's labels, sorted by name: *labels points into the set (valid until it is
 * freed; do not free it) and *n_labels receives their count. Returns 0, or TS_ENOTFOUND
 * when i >= ts_series_set_len(set) (outputs untouched). */
int ts_series_set_labels(const struct ts_series_set *set, size_t i, const struct ts_label **labels,
			 uint32_t *n_labels);

/* Lets several threads make iterators of set at once (ts_iter_new and what it calls):
 * the set then calls lock(arg) and unlock(arg) around each use of its read transactions,
 * which LMDB allows on one thread at a time, and decodes outside them. lock must give
 * the caller mutual exclusion with every other thread of the set. An iterator, once
 * made, reads only memory and may be used on any one thread. NULL lock: back to one
 * thread. Call it while no other thread uses the set. */
void ts_series_set_share(struct ts_series_set *set, void (*lock)(void *arg),
			 void (*unlock)(void *arg), void *arg);

/* Sample iterator over one series of a set, in time order, duplicates merged, limited to
 * the set's [mint, maxt]. Allocated by ts_iter_new() and owned by the caller, who frees
 * it with ts_iter_free() before freeing the set; it reads the set's snapshots, so it is
 * used from the set's thread (or threads: ts_series_set_share). */
struct ts_iter;
/* Creates an iterator over series i of set, positioned before its first sample. Reads
 * the series' stored chunk list from the set's snapshots. *out is owned by the caller.
 * Returns 0, TS_ENOTFOUND (i >= ts_series_set_len(set)), -ENOMEM, TS_ECORRUPT (a stored
 * chunk record is malformed). On error *out is not set. */
int ts_iter_new(struct ts_series_set *set, size_t i, struct ts_iter **out);
/* Advances: 1 = it has a sample (ts_iter_at), 0 = end (and every later call returns 0),
 * TS_ECORRUPT (a chunk failed to decode; the iterator must not be used further). */
int ts_iter_next(struct ts_iter *it);
/* Positions at the first sample with t >= t_ms, never moving backwards (a t_ms at or
 * before the current position behaves as ts_iter_next). 1, 0 (end), TS_ECORRUPT. */
int ts_iter_seek(struct ts_iter *it, int64_t t_ms);
/* The current sample (after ts_iter_next/seek returned 1, or ts_iter_read read one);
 * values bit-exact. Never fails. */
void ts_iter_at(const struct ts_iter *it, int64_t *t_ms, double *v);
/* Reads up to cap of the next samples into t_ms[] and v[] (caller arrays of cap
 * entries; values bit-exact): the same sequence ts_iter_next would give, without a call
 * per sample. Returns how many were read (0 at the end; at most INT32_MAX) or
 * TS_ECORRUPT. Afterwards ts_iter_at gives the last one read. */
int ts_iter_read(struct ts_iter *it, int64_t *t_ms, double *v, size_t cap);
/* ts_iter_read, and in w[] how many raw samples each point stands for: 1 for a raw
 * sample, the window's count for a downsampled row (count_over_time sums these). */
int ts_iter_read_w(struct ts_iter *it, int64_t *t_ms, double *v, double *w, size_t cap);
/* Appends every remaining sample of it to the arrays *t_ms, *v and *w (as
 * ts_iter_read_w), which the caller owns (ts_free) and which grow together: *n entries
 * used of *cap allocated (all three NULL with *n == *cap == 0 to start). Returns 0,
 * TS_ECORRUPT or -ENOMEM; on error *n counts the samples appended before it. */
int ts_iter_read_all(struct ts_iter *it, int64_t **t_ms, double **v, double **w, size_t *n,
		     size_t *cap);
/* The weight (as ts_iter_read_w) of the current sample. Never fails. */
double ts_iter_weight(const struct ts_iter *it);
/* Frees an iterator. Accepts NULL. */
void ts_iter_free(struct ts_iter *it);

/* Raw chunks of series i overlapping the set's range, in min_t order (for remote read).
 * Chunks may overlap in time when out-of-order data exists; a chunk may hold samples
 * outside the range (callers trim). */
struct ts_chunk_ref {
	int64_t min_t, max_t;
	const uint8_t *data; /* XOR chunk bytes (storage/xor.h), borrowed: valid until the
			      * iterator is freed (cold samples are re-encoded into chunks
			      * of at most 120 samples that the iterator owns) */
	size_t len;
	uint32_t n_samples;
};
struct ts_chunk_it;
/* Creates a chunk iterator over series i of set; *out is owned by the caller (free it
 * with ts_chunk_it_free() before the set). Returns 0, TS_ENOTFOUND (i out of range),
 * -ENOMEM, TS_ECORRUPT (a stored chunk record is malformed). */
int ts_chunk_it_new(struct ts_series_set *set, size_t i, struct ts_chunk_it **out);
/* Fills *c with the next chunk; c->data is borrowed from the set (valid until it is
 * freed). Returns 1, or 0 at the end (c untouched). Never fails otherwise: the chunks
 * were read and checked by ts_chunk_it_new(). */
int ts_chunk_it_next(struct ts_chunk_it *it, struct ts_chunk_ref *c);
/* Frees a chunk iterator. Accepts NULL. */
void ts_chunk_it_free(struct ts_chunk_it *it);
/* Whether series i of set has data in the set's time range: 1 exactly when
 * ts_chunk_it_new() would give at least one chunk, 0 when not; TS_ENOTFOUND (i out of
 * range), TS_ECORRUPT, -ENOMEM. Stops at the first piece found and never re-encodes cold
 * samples, so it is the cheap way to drop series without data (/api/v1/series). */
int ts_series_set_has_data(struct ts_series_set *set, size_t i);

/* ---- Deleting ---- */

/* Deletes the samples in [mint_ms, maxt_ms] (inclusive; INT64_MIN / INT64_MAX for "all
 * time") of every series matching all of m (n_matchers entries, borrowed for the call,
 * as for ts_db_select): Prometheus' delete_series. A tombstone per series is committed
 * to the index env before the call returns, so the samples stay deleted after a restart
 * or kill -9 (WAL replay included), in every read (sample and chunk iterators,
 * ts_series_set_has_data) and in what conversions and compactions write. Samples
 * appended into the range later are hidden too until ts_db_clean_tombstones (as in
 * Prometheus). Series and their labels remain. *n_series (may be NULL) receives how many
 * series matched. Returns 0, TS_EINVALID (maxt_ms < mint_ms, bad regex or matcher type;
 * msg as for ts_db_select), -ENOMEM, TS_ECORRUPT, TS_ELIMIT, or the index env's write
 * error (nothing deleted then). Threading: any thread; serialised with flushes. */
int ts_db_delete(struct ts_db *db, const struct ts_matcher *m, size_t n_matchers, int64_t mint_ms,
		 int64_t maxt_ms, uint64_t *n_series, char *msg, size_t msg_len);

/* Replaces the retention rules (copied; n == 0 removes them). A series' retention is the
 * first matching rule's, at every resolution; series no rule matches follow the
 * retention options. A rule shorter than those deletes its series' samples (by
 * tombstones, then the partition is rewritten) from each partition its horizon passed;
 * a longer one keeps the partitions holding its series past the database's retention
 * (raw samples and all), where the other series are deleted once the database's
 * retention passed. Applied by the retention pass (at open and every 30 s). Thread-safe.
 * Returns 0, -ENOMEM, TS_EINVALID (a retention <= 0, or a matcher the engine refuses; msg
 * says which, at most msg_len bytes) - the old rules then stay. */
int ts_db_set_retention_rules(struct ts_db *db, const struct ts_retention_rule *rules, size_t n,
			      char *msg, size_t msg_len);

/* Writes a consistent, self-contained copy of the database into dir, which must not
 * exist (its parent must): every batch acknowledged before the call, each batch whole or
 * not at all, openable as a data directory by ts_db_open and tsdbctl as it is (LMDB
 * compacting copies of the index and partitions, and the WAL segments to replay; not
 * hard links: the envs are written in place). skip_head leaves the WAL out (only what
 * reached LMDB: consistent per series only). Appends go on meanwhile; the writer thread
 * waits until the copy is done. Returns 0, -EEXIST, -errno, -ENOMEM, TS_EINVALID, or an
 * env or WAL error (a partial dir may be left; remove it). Thread-safe. */
int ts_db_snapshot(struct ts_db *db, const char *dir, int skip_head);

/* Outcome of ts_db_clean_tombstones. */
struct ts_clean_stats {
	uint64_t n_before; /* tombstones (series ranges) before */
	uint64_t n_after;  /* kept: the series still holds samples in range in memory */
};
/* Reclaims the space of deleted samples (Prometheus' clean_tombstones): checkpoints,
 * rewrites every partition a tombstone intersects without the deleted samples (all its
 * generations merged into one, copied into a fresh env), then removes the tombstones
 * nothing stored can hit any more. A tombstone whose series still holds samples of its
 * range in memory (the open head, the out-of-order buffer) stays: the head row and the
 * WAL hold them too; a later call removes it once they reached a partition. Returns when
 * done: 0, or the checkpoint's or a rewrite's error (-ENOMEM, -errno, TS_EIO, TS_EFULL;
 * the tombstones then all stay and keep hiding the samples). st (may be NULL) is the
 * caller's. Threading: any thread; blocks flushes while it runs. */
int ts_db_clean_tombstones(struct ts_db *db, struct ts_clean_stats *st);

/* ---- Label look-ups ---- */

/* A list of distinct byte strings, sorted bytewise, owned by the list. */
struct ts_strlist {
	char **v; /* each NUL-terminated; may hold NUL bytes inside, so use len */
	uint32_t *len;
	size_t n, cap;
};
/* Frees the contents and zeroes *l (l itself is the caller's). Accepts NULL. */
void ts_strlist_free(struct ts_strlist *l);

/* Distinct label names of the series matching `m` (all series when n_matchers == 0),
 * added to *out (zero-initialise it first; free it with ts_strlist_free() whatever the
 * result, as it may hold entries after an error). [mint, maxt] is accepted for API
 * symmetry but series are not yet filtered by time. Returns 0, TS_EINVALID (bad regex,
 * msg set as for ts_db_select), -ENOMEM, TS_ECORRUPT, TS_ELIMIT (no LMDB reader slot). */
int ts_db_label_names(struct ts_db *db, const struct ts_matcher *m, size_t n_matchers, int64_t mint,
		      int64_t maxt, struct ts_strlist *out, char *msg, size_t msg_len);
/* Distinct values of label `name` (NUL-terminated, borrowed) among matching series. As
 * above, and TS_EINVALID when name is NULL or empty. */
int ts_db_label_values(struct ts_db *db, const char *name, const struct ts_matcher *m,
		       size_t n_matchers, int64_t mint, int64_t maxt, struct ts_strlist *out,
		       char *msg, size_t msg_len);

/* ---- Metric metadata (type, help, unit per metric family) ---- */

enum ts_metric_type {
	TS_MT_UNKNOWN = 0,
	TS_MT_COUNTER = 1,
	TS_MT_GAUGE = 2,
	TS_MT_HISTOGRAM = 3,
	TS_MT_GAUGEHISTOGRAM = 4,
	TS_MT_SUMMARY = 5,
	TS_MT_INFO = 6,
	TS_MT_STATESET = 7
};

struct ts_metadata {
	const char *metric; /* borrowed strings, not NUL-terminated: use the lengths */
	const char *help;
	const char *unit;
	uint32_t metric_len, help_len, unit_len;
	enum ts_metric_type type;
};

/* Records metadata for metric families (last write wins; an identical record is a no-op).
 * md (n entries) is borrowed for the call: strings are copied. Kept in memory and
 * persisted by the writer thread. Returns 0, -ENOMEM (entries before the failing one
 * are recorded), TS_EINVALID (empty name, invalid UTF-8, a string over 64 KiB, an
 * unknown type: nothing is recorded). */
int ts_db_set_metadata(struct ts_db *db, const struct ts_metadata *md, size_t n);
/* Calls fn for each family (only `metric`, NUL-terminated, if not NULL), sorted by
 * name, with strings valid during the call. fn must not call back into the metadata
 * functions. Returns 0 (also when nothing matched) or fn's first non-zero return,
 * which stops the walk. */
int ts_db_metadata(struct ts_db *db, const char *metric,
		   int (*fn)(void *arg, const struct ts_metadata *md), void *arg);

/* ---- Introspection ---- */
struct ts_db_stats {
	uint64_t n_series;	     /* in the registry */
	uint64_t n_head_chunks;	     /* open chunks */
	uint64_t n_samples_appended; /* since open */
	uint64_t n_chunks_flushed;   /* since open */
	uint64_t n_checkpoints;
	uint64_t head_bytes; /* bytes of open chunk buffers */
	/* Memory the engine holds, by what holds it (allocated sizes, without the
	 * allocator's own overhead): series objects with their labels, sealed chunks
	 * waiting for the writer, out-of-order buffers, and the registry's tables (label
	 * hash, id table, unindexed list). */
	uint64_t series_bytes;
	uint64_t pending_bytes;
	uint64_t ooo_bytes;
	uint64_t registry_bytes;
	uint64_t index_bytes;	   /* LMDB index env in use */
	uint64_t partitions_bytes; /* all partition envs in use */
	uint64_t n_partitions;
	uint64_t n_open_partitions; /* of which envs are open now (see max_open_partitions) */
	uint64_t n_flush_failures;  /* flushes of sealed chunks or checkpoints that failed */
	int write_err;		    /* ts_db_writable() */
	struct ts_wal_stats wal;
	/* Retention since open (compact.c, rules.c, gc.c). */
	uint64_t n_parts_removed;    /* whole partitions */
	uint64_t n_parts_expired[3]; /* partitions whose raw samples, 5m rows, 1h rows went */
	uint64_t n_rule_deletions;   /* (partition, rule) deletions of series by a rule */
	uint64_t n_series_removed;   /* series that left the index */
	uint64_t n_retention_rules;  /* in force */
	uint64_t n_tier_builds;	     /* partitions whose tiers were built */
	/* The cache of opened (decompressed) cold blocks: bytes held now (at most
	 * cold_cache_bytes, plus blocks readers still use), and look-ups since open. */
	uint64_t block_cache_bytes;
	uint64_t block_cache_hits, block_cache_misses;
};
/* Fills *out (the caller's) with a snapshot of the counters. Never fails. */
void ts_db_stats(struct ts_db *db, struct ts_db_stats *out);
/* Bounds of the data held, for a store's advertised time range: *mint at or before
 * the oldest sample (the oldest partition's start, or the oldest sample appended since
 * open), *maxt the newest in-order sample appended or restored (the newest partition's
 * end when every series was idle at open); INT64_MAX / INT64_MIN when the store is
 * empty. Never fails. */
void ts_db_time_range(struct ts_db *db, int64_t *mint, int64_t *maxt);

/* Whether appends are accepted now: 0, or why not: TS_EIO (the WAL failed, or memory
 * lost a logged batch: only reopening the database recovers), TS_ECLOSED, -ENOSPC (the
 * last append found no room for its WAL record; the next one that finds room clears
 * it), or the error of the last flush into LMDB (-ENOSPC when the disk is full,
 * -ENOMEM, TS_EIO...): the writer retries every flush interval and appends resume once
 * a flush succeeds.
 * Cheap (one mutex): meant for readiness probes. Thread-safe. */
int ts_db_writable(struct ts_db *db);

/* Forces the writer to flush sealed chunks and checkpoint now; returns when done.
 * Returns 0 or the flush's error (-ENOMEM, -errno, TS_EIO, TS_EFULL); a failed
 * checkpoint is retried by the writer thread and changes nothing already durable. */
int ts_db_checkpoint(struct ts_db *db);

/* Rewrites every closed partition (its end older than the out-of-order window plus an
 * hour) that took writes since it was last rewritten, in key order, so its LMDB pages
 * are full, and builds the missing or stale downsampled tiers of every closed partition
 * (ts_db_downsample); the writer thread also does this in the background, one partition
 * at a time. Returns when done; failures are logged and leave partitions as they were.
 * Returns 0. */
int ts_db_compact(struct ts_db *db);

/* Outcome of ts_db_downsample: closed partitions and their downsampled tiers. */
struct ts_downsample_stats {
	uint64_t n_parts;   /* closed partitions looked at */
	uint64_t n_built;   /* whose tiers this call built (absent or stale before) */
	uint64_t n_current; /* whose tiers were up to date */
	uint64_t n_skipped; /* not settled (still taking late writes): no tiers now */
	uint64_t n_series;  /* series with tier rows, summed over partitions with tiers */
	uint64_t rows[2];   /* tier rows: [0] 5-minute, [1] 1-hour, over those partitions */
	uint64_t bytes[2];  /* tier block bytes, likewise */
	uint64_t raw_bytes; /* cold block bytes of the raw data of those partitions */
};
/* Progress of a long call: done of total steps. */
typedef void (*ts_progress_fn)(void *arg, uint64_t done, uint64_t total);
/* Builds the downsampled tiers (5-minute and 1-hour aggregates, tsdb/tiers.c; layout in
 * format.h) of every closed partition where they are missing or stale: converts closed
 * partitions that are not cold yet (as ts_db_compact does for them), then checks every
 * closed partition's tier record against its data and tombstones and rebuilds those that
 * do not match (each in one transaction). The writer does the same in the background
 * as partitions close; this call is for databases written before, and for tools.
 * progress (may be NULL) is called with arg after each partition, on the calling
 * thread. st (may be NULL) is the caller's, zeroed first. Returns 0, or the first
 * failure of a partition (-ENOMEM, TS_ECORRUPT, -errno, TS_EIO, TS_EFULL; that
 * partition's old tiers stay, the others are done). Threading: any thread; blocks
 * flushes while it runs. */
int ts_db_downsample(struct ts_db *db, ts_progress_fn progress, void *arg,
		     struct ts_downsample_stats *st);
/* One time partition as ts_db_partition_stats reports it. */
struct ts_part_stat {
	int64_t start_ms, end_ms; /* [start, end) */
	uint64_t bytes;		  /* LMDB bytes in use (the file's size when not open) */
	int open;		  /* its env was open when the call began */
	int compacted;		  /* 1: all cold and rewritten tightly; 0: not; -1: unknown
				   * (not opened since start-up) */
	int has_tiers;		  /* a downsampled tier record was read */
	uint64_t tier_rows[2];	  /* 5m and 1h rows (0 when none or not built) */
	uint64_t tier_bytes[2];	  /* their block bytes */
};
/* Every partition, oldest first, into *out (n entries; ts_free it, also when n is 0).
 * Tier figures come from each partition's tier record, so a closed env is opened for a
 * moment as a query would (and, past the open-env cap, the least recently used ones are
 * closed again). Returns 0 or -ENOMEM; a partition that cannot be read is listed without
 * tier figures. Threading: any thread. */
int ts_db_partition_stats(struct ts_db *db, struct ts_part_stat **out, size_t *n);

/* ts_db_compact, calling progress (may be NULL) with arg on the calling thread after each
 * partition rewritten and each partition's tiers checked: done of total steps (total is
 * twice the partitions; done reaches total at the end). */
int ts_db_compact_progress(struct ts_db *db, ts_progress_fn progress, void *arg);

#endif
