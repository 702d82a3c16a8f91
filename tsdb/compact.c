/*
 * compact.c - when partitions become cold, and rewriting them tightly.
 *
 * Policy (the writer thread runs it after flushes, bounded per cycle):
 * - An open partition whose hot chunks written since its last conversion pass
 *   HOT_BYTES is converted (cold.c): its hot chunks become a new generation, and
 *   generations of one size tier are merged, so write amplification stays logarithmic.
 * - A closed partition (its end older than the out-of-order window plus CLOSE_SLACK_MS)
 *   that is not marked cold is converted with every generation merged into one, then
 *   rewritten into a fresh env and marked cold. A late write clears the mark (writer.c),
 *   so a backfill is converted again once it has been quiet for QUIET_MS.
 * - ts_db_close converts every partition written since open, so the data of a clean
 *   stop is at rest in cold form; ts_db_compact does all of it at once.
 * - Tiers (tiers.c): once a closed partition is all cold in one generation (or
 *   clean_tombstones rewrote it), its downsampled tiers are built or rebuilt when stale,
 *   before the rewrite so they are copied tightly too. ts_db_compact and
 *   ts_db_downsample also check every closed partition's tiers (a deletion makes them
 *   stale without any conversion).
 *
 * Why the rewrite: LMDB never shrinks its file, and a conversion frees every page the
 * hot chunks held. Copying every record in key order into a fresh env with MDB_APPEND
 * fills pages completely. It runs when the file is well above what the cold data needs:
 * by an eighth at a clean stop and for closed partitions, by 2 * HOT_BYTES for an open
 * one (whose freed pages the next hot chunks reuse; see enum rewrite).
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
 * Uses: cold.c (conversion), partition.c (open, replace, release), format.h, storage/.
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
#define CLOSE_SLACK_MS 300000	/* a partition is closed this long after its end (+OOO) */
#define QUIET_MS 60000		/* a closed partition untouched by writes for this long */
#define HOT_BYTES (8u << 20)	/* an open partition's hot chunks converted at this size */
#define WASTE_BYTES (64u << 10) /* rewrite when the file exceeds its data by this much */
#define CLOSE_BUDGET_MS 20000	/* a clean stop converts closed partitions for this long */

/* How hard a conversion tries to leave a tight file behind. */
enum rewrite {
	/* An open partition while it takes writes: the pages its hot chunks freed are
	 * reused by the next ones, so rewriting after every conversion would copy the
	 * whole partition each HOT_BYTES (quadratic). Only waste past 2 * HOT_BYTES, which
	 * reuse cannot explain, is rewritten. */
	RW_LOOSE,
	/* A clean stop: rewrite when the file exceeds its data by an eighth. */
	RW_TIGHT,
	/* A closed partition (or ts_db_compact): as RW_TIGHT, and rewritten once it is all
	 * cold in one generation even if not wasteful, so it is marked cold for good. */
	RW_CLOSED,
	/* clean_tombstones: always rewritten, so the space deleted samples held is given
	 * back at once whatever the ratio. */
	RW_FORCE,
};

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

/* Copies every record of table `from` of snapshot r into table `to` of batch b (append
 * mode), applying b to env every SLICE_BYTES; skip(key) leaves a record out. */
static int copy_table(struct ts_rtxn *r, unsigned from, struct ts_env *env, struct ts_batch *b,
		      unsigned to, int (*skip)(const void *k, size_t kl), uint64_t *n_records)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, from, &c);
	if (rc)
		return rc;
	size_t bytes = 0;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			break;
		if (skip && skip(k, kl))
			continue;
		if ((rc = ts_batch_put(b, to, k, kl, v, vl)))
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
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* The marks are the rewrite's to set, not to copy. */
static int skip_marks(const void *k, size_t kl)
{
	const char *marks[] = { TS_FORMAT_PART_META_COMPACTED, TS_FORMAT_PART_META_COLD };
	for (int i = 0; i < 2; i++)
		if (kl == strlen(marks[i]) && memcmp(k, marks[i], kl) == 0)
			return 1;
	return 0;
}

/* Writes every record of p into a new env at tmp, in key order, append mode; marks it
 * cold when `cold`. */
static int rewrite(struct ts_partition *p, const char *tmp, int cold, uint64_t *n_records)
{
	struct ts_env *env = NULL;
	struct ts_rtxn *r = NULL;
	struct ts_batch *b = NULL;
	unsigned chunks, meta, cblocks, tiers;
	uint64_t map, used;
	ts_env_size(p->env, &map, &used);
	struct ts_env_opts eo = { .map_bytes = used + (used >> 2) + (16u << 20) };
	int rc = ts_env_open(tmp, &eo, &env);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_CHUNKS, 0, &chunks);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_META, 0, &meta);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_COLD, 0, &cblocks);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_TIERS, 0, &tiers);
	if (rc == 0)
		rc = ts_batch_new(&b);
	if (rc == 0)
		rc = ts_env_read_begin(p->env, &r);
	if (rc)
		goto out;
	ts_batch_set_append(b, 1);
	*n_records = 0;
	/* Tables are filled one after the other; append order holds within each. */
	if ((rc = copy_table(r, p->chunks, env, b, chunks, NULL, n_records)) ||
	    (rc = copy_table(r, p->cold, env, b, cblocks, NULL, n_records)) ||
	    (rc = copy_table(r, p->tiers, env, b, tiers, NULL, n_records)) ||
	    (rc = ts_env_apply(env, b)))
		goto out;
	ts_batch_reset(b);
	ts_batch_set_append(b, 0);
	if ((rc = copy_table(r, p->meta, env, b, meta, skip_marks, n_records)))
		goto out;
	uint8_t one = 1;
	if (cold)
		rc = ts_batch_put(b, meta, TS_FORMAT_PART_META_COLD,
				  strlen(TS_FORMAT_PART_META_COLD), &one, 1);
	if (rc == 0)
		rc = ts_env_apply(env, b);
out:
	ts_env_read_end(r);
	ts_batch_free(b);
	ts_env_close(env);
	return rc;
}

/* Rewrites p (pinned by the caller, so its env stays open across the renames). */
static int compact_pinned(struct ts_db *db, struct ts_partition *p, int cold)
{
	char tmp[4200], old[4200], raw[4200];
	snprintf(tmp, sizeof tmp, "%s" TS_FORMAT_PART_COMPACT_SUFFIX, p->dir);
	snprintf(old, sizeof old, "%s" TS_FORMAT_PART_OLD_SUFFIX, p->dir);
	parent_dir(p->dir, raw, sizeof raw);
	ts__dir_remove(tmp);
	uint64_t before, after, map, n = 0;
	ts_env_size(p->env, &map, &before);
	int rc = rewrite(p, tmp, cold, &n);
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
	       "rewrote %s: %" PRIu64 " records, %" PRIu64 " -> %" PRIu64 " bytes in use", p->dir,
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

/* Sum of the block bytes of p's listed generations, and whether p is all cold in one
 * generation (no hot chunk left). */
static int cold_state(struct ts_partition *p, uint64_t *cold_bytes, int *all_cold)
{
	struct ts_rtxn *r;
	struct ts__gen *g = NULL;
	size_t n = 0;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		return rc;
	rc = ts__cold_gens_read(r, p->meta, &g, &n);
	*cold_bytes = 0;
	for (size_t i = 0; i < n; i++)
		*cold_bytes += g[i].bytes;
	struct ts_cursor *c;
	*all_cold = 0;
	if (rc == 0 && (rc = ts_cursor_open(r, p->chunks, &c)) == 0) {
		int seek = ts_cursor_seek(c, NULL, 0);
		*all_cold = seek == TS_ENOTFOUND && n <= 1;
		if (seek != 0 && seek != TS_ENOTFOUND)
			rc = seek;
		ts_cursor_close(c);
	}
	ts_free(g);
	ts_env_read_end(r);
	return rc;
}

/* Converts p (pinned) and rewrites it when its file is well above its data. 1 when p was
 * replaced (the caller then gives back the array's reference to p), 0 when kept. */
static int convert_pinned(struct ts_db *db, struct ts_partition *p, int merge_all, enum rewrite how)
{
	struct ts__convert_stats st;
	int rc = ts__cold_convert(db, p, merge_all, &st);
	if (rc) {
		ts_log(TS_LOG_WARN, "cold conversion of %s failed: %s; left as it is", p->dir,
		       ts_strerror(rc));
		return rc;
	}
	p->hot_bytes = 0;
	if (st.n_samples || st.gens_merged) {
		atomic_fetch_add(&db->n_conversions, 1);
		ts_log(TS_LOG_INFO,
		       "%s: %" PRIu64 " samples of %" PRIu64
		       " chunks and %d generations -> %" PRIu64
		       " cold bytes (%.2f bytes/sample); %zu generations",
		       p->dir, st.n_samples, st.n_chunks, st.gens_merged, st.bytes,
		       st.n_samples ? (double)st.bytes / (double)st.n_samples : 0.0, st.gens_after);
	}
	uint64_t cold_bytes, map, used;
	int all_cold;
	if ((rc = cold_state(p, &cold_bytes, &all_cold)))
		return rc;
	/* Tiers before the rewrite, so they are copied into the tight file with the rest. A
	 * failure leaves the old tiers (stale by their record) and does not stop the
	 * conversion's rewrite. */
	if (all_cold && (how == RW_CLOSED || how == RW_FORCE) && ts__part_closed(db, p)) {
		int state;
		struct ts__tiers_rec rec;
		int trc = ts__tiers_build(db, p, 0, &state, &rec);
		if (trc)
			ts_log(TS_LOG_WARN, "%s: building tiers failed: %s; tried again later",
			       p->dir, ts_strerror(trc));
	}
	ts_env_size(p->env, &map, &used);
	uint64_t live = ts_env_live_bytes(p->env);
	uint64_t slack = live >> 3;
	if (how == RW_LOOSE && slack < 2 * (uint64_t)HOT_BYTES)
		slack = 2 * (uint64_t)HOT_BYTES;
	int wasteful = live && used > live + slack + WASTE_BYTES;
	if (how != RW_FORCE && !wasteful &&
	    !(how == RW_CLOSED && all_cold && atomic_load(&p->compacted) != 1))
		return 0;
	rc = compact_pinned(db, p, all_cold);
	return rc ? rc : 1;
}

/* Pins p, converts and maybe rewrites it, and releases it if it was replaced. */
static int convert_one(struct ts_db *db, struct ts_partition *p, int merge_all, enum rewrite how)
{
	int rc = ts__part_pin(db, p, 0);
	if (rc)
		return rc == TS_ENOTFOUND ? 0 : rc; /* never written: nothing to convert */
	/* Opening the env told whether it is cold already (the background pass picks
	 * partitions whose state it does not know yet). */
	if (merge_all && merge_all != TS__CONVERT_FORCE && atomic_load(&p->compacted) == 1 &&
	    p->hot_bytes == 0)
		rc = 0;
	else
		rc = convert_pinned(db, p, merge_all, how);
	ts__part_unpin(db, p);
	if (rc == 1) {
		ts__failpoint("compact.before_release");
		ts__part_unref(db, p);
		rc = 0;
	}
	return rc;
}

/* Whether p has sealed chunks still in memory (it is still taking writes). */
static int busy(struct ts_db *db, struct ts_partition *p)
{
	int b = 0;
	pthread_mutex_lock(&db->mu);
	for (struct ts_chunk_mem *c = db->q_head; c && !b; c = c->next_global)
		b = ts__partition_start(db, c->min_t) == p->start;
	pthread_mutex_unlock(&db->mu);
	return b;
}

/* Picks the first partition `want` accepts, with a reference, skipping `skip` ones. */
static struct ts_partition *pick(struct ts_db *db,
				 int (*want)(struct ts_db *, struct ts_partition *, int64_t),
				 int64_t arg, size_t *from)
{
	struct ts_partition *found = NULL;
	pthread_rwlock_rdlock(&db->parts_mu);
	for (; *from < db->n_parts && !found; (*from)++)
		if (want(db, db->parts[*from], arg)) {
			found = db->parts[*from];
			ts__part_hold(found);
		}
	pthread_rwlock_unlock(&db->parts_mu);
	return found;
}

/* Closed, not cold yet, quiet. */
static int want_closed(struct ts_db *db, struct ts_partition *p, int64_t closed_before)
{
	(void)db;
	return atomic_load(&p->compacted) != 1 && p->end <= closed_before &&
	       (p->last_write_mono_ms == 0 || ts_mono_ms() - p->last_write_mono_ms >= QUIET_MS);
}

static int want_hot(struct ts_db *db, struct ts_partition *p, int64_t limit)
{
	(void)db;
	return p->hot_bytes >= (uint64_t)limit;
}

static int want_all(struct ts_db *db, struct ts_partition *p, int64_t unused)
{
	(void)db;
	(void)unused;
	return atomic_load(&p->compacted) != 1 || p->hot_bytes > 0;
}

/* Runs convert_one on up to max_parts partitions `want` picks (not busy ones). */
/* How far a long call got, for its caller's progress (ts_progress_fn): after each
 * partition, `done` out of `total` steps, offset by `base`. */
struct progress {
	ts_progress_fn fn;
	void *arg;
	uint64_t base, total;
};

static int run_p(struct ts_db *db, int (*want)(struct ts_db *, struct ts_partition *, int64_t),
		 int64_t arg, int max_parts, int merge_all, enum rewrite how,
		 const struct progress *pr)
{
	int done = 0;
	size_t from = 0;
	while (done < max_parts) {
		struct ts_partition *p = pick(db, want, arg, &from);
		if (!p)
			break;
		int rc = busy(db, p) ? 0 : convert_one(db, p, merge_all, how);
		if (rc &&
		    want == want_closed) /* do not retry it in a loop; a restart tries again */
			atomic_store(&p->compacted, 1);
		ts__part_unref(db, p);
		done++;
		if (pr && pr->fn)
			pr->fn(pr->arg, pr->base + (uint64_t)done, pr->total);
	}
	return done;
}

static int run(struct ts_db *db, int (*want)(struct ts_db *, struct ts_partition *, int64_t),
	       int64_t arg, int max_parts, int merge_all, enum rewrite how)
{
	return run_p(db, want, arg, max_parts, merge_all, how, NULL);
}

static int64_t closed_before_ms(const struct ts_db *db)
{
	return ts_wall_ms() - CLOSE_SLACK_MS - (db->o.ooo_window_ms > 0 ? db->o.ooo_window_ms : 0);
}

int ts__part_closed(const struct ts_db *db, const struct ts_partition *p)
{
	return p->end <= closed_before_ms(db);
}

int ts__compact_closed(struct ts_db *db, int max_parts, int force)
{
	int64_t closed_before = closed_before_ms(db);
	if (force)
		return run(db, want_all, 0, max_parts, 1, RW_CLOSED);
	int done = run(db, want_hot, HOT_BYTES, max_parts, 0, RW_LOOSE);
	return done + run(db, want_closed, closed_before, max_parts - done, 1, RW_CLOSED);
}

/* Closed and known not to be cold: its env was opened in this run (read by a query, or
 * written by a WAL replay after a crash) and found with hot chunks or several
 * generations. Partitions never opened in this run are not opened just to find out. */
static int want_warm_closed(struct ts_db *db, struct ts_partition *p, int64_t closed_before)
{
	(void)db;
	return atomic_load(&p->compacted) == 0 && p->end <= closed_before;
}

int ts__compact_written(struct ts_db *db)
{
	/* Closed partitions first, made cold for good (tiers included), one at a time
	 * within CLOSE_BUDGET_MS: after a crash the background pass may not have reached
	 * them before this stop, and a stop must not take unbounded time (what is left is
	 * done by the next start's background pass). */
	int64_t closed_before = closed_before_ms(db), t0 = ts_mono_ms();
	int n = 0;
	size_t from = 0;
	struct ts_partition *p;
	while (ts_mono_ms() - t0 < CLOSE_BUDGET_MS &&
	       (p = pick(db, want_warm_closed, closed_before, &from)) != NULL) {
		if (!busy(db, p) && convert_one(db, p, 1, RW_CLOSED) != 0)
			atomic_store(&p->compacted, 1); /* logged; the next start tries again */
		ts__part_unref(db, p);
		n++;
	}
	/* Then partitions written since open: converted (tiers merged as due), rewritten
	 * when their file is well above their data. */
	return n + run(db, want_hot, 1, 1 << 30, 0, RW_TIGHT);
}

static int want_tomb(struct ts_db *db, struct ts_partition *p, int64_t arg)
{
	(void)db;
	const struct ts__tombs *t = (const struct ts__tombs *)(intptr_t)arg;
	return ts__tombs_overlap(t, p->start, p->end - 1);
}

int ts__compact_tombs(struct ts_db *db, const struct ts__tombs *t)
{
	/* Busy partitions too: the conversion only touches what is stored, and sealed
	 * chunks still in memory keep their tombstones (delete.c). */
	int first = 0;
	size_t from = 0;
	struct ts_partition *p;
	while ((p = pick(db, want_tomb, (int64_t)(intptr_t)t, &from)) != NULL) {
		int rc = convert_one(db, p, TS__CONVERT_FORCE, RW_FORCE);
		if (rc && !first)
			first = rc;
		ts__part_unref(db, p);
	}
	return first;
}

/* Closed, whether cold or not. */
static int want_closed_any(struct ts_db *db, struct ts_partition *p, int64_t closed_before)
{
	(void)db;
	return p->end <= closed_before;
}

/* Closed and not cold, quiet or not. */
static int want_closed_now(struct ts_db *db, struct ts_partition *p, int64_t closed_before)
{
	(void)db;
	return atomic_load(&p->compacted) != 1 && p->end <= closed_before;
}

/* Builds the missing or stale tiers of every closed partition (db->fmu held). Returns
 * the first failure; the other partitions are done. */
static int tiers_pass(struct ts_db *db, ts_progress_fn progress, void *arg,
		      struct ts_downsample_stats *st)
{
	int64_t closed_before = closed_before_ms(db);
	uint64_t total = 0, done = 0;
	pthread_rwlock_rdlock(&db->parts_mu);
	for (size_t i = 0; i < db->n_parts; i++)
		total += (uint64_t)want_closed_any(db, db->parts[i], closed_before);
	pthread_rwlock_unlock(&db->parts_mu);
	int first = 0;
	size_t from = 0;
	struct ts_partition *p;
	while ((p = pick(db, want_closed_any, closed_before, &from)) != NULL) {
		int rc = busy(db, p) ? TS_ENOTFOUND : ts__part_pin(db, p, 0);
		if (rc == 0) {
			int state;
			struct ts__tiers_rec rec;
			uint64_t raw_bytes = 0;
			int all_cold;
			rc = ts__tiers_build(db, p, 0, &state, &rec);
			if (rc == 0 && st && state != TS__TIERS_SKIPPED)
				rc = cold_state(p, &raw_bytes, &all_cold);
			if (rc == 0 && st) {
				st->n_built += state == TS__TIERS_BUILT;
				st->n_current += state == TS__TIERS_CURRENT;
				st->n_skipped += state == TS__TIERS_SKIPPED;
				if (state != TS__TIERS_SKIPPED) {
					st->n_series += rec.n_series;
					for (int k = 0; k < 2; k++) {
						st->rows[k] += rec.rows[k];
						st->bytes[k] += rec.bytes[k];
					}
					st->raw_bytes += raw_bytes;
				}
			}
			ts__part_unpin(db, p);
		} else if (rc == TS_ENOTFOUND) {
			rc = 0; /* never written, or still taking a late write */
			if (st)
				st->n_skipped++;
		}
		if (rc) {
			ts_log(TS_LOG_WARN, "%s: building tiers failed: %s", p->dir,
			       ts_strerror(rc));
			first = first ? first : rc;
		}
		ts__part_unref(db, p);
		if (st)
			st->n_parts++;
		if (progress)
			progress(arg, ++done, total);
	}
	return first;
}

/* The tier pass's progress, reported as the second half of a compaction's. */
static void tiers_half(void *a, uint64_t done, uint64_t total)
{
	const struct progress *pr = a;
	uint64_t span = pr->total - pr->base; /* this half's steps */
	pr->fn(pr->arg, pr->base + (total ? done * span / total : span), pr->total);
}

int ts_db_compact_progress(struct ts_db *db, ts_progress_fn progress, void *arg)
{
	pthread_mutex_lock(&db->fmu);
	pthread_rwlock_rdlock(&db->parts_mu);
	uint64_t n = db->n_parts ? db->n_parts : 1;
	pthread_rwlock_unlock(&db->parts_mu);
	/* Rewrites first (a step per partition), then the tier check (as many again). */
	struct progress pr = { progress, arg, 0, 2 * n };
	run_p(db, want_all, 0, 1 << 30, 1, RW_CLOSED, &pr);
	pr.base = n;
	tiers_pass(db, progress ? tiers_half : NULL, &pr, NULL);
	if (progress)
		progress(arg, pr.total, pr.total);
	pthread_mutex_unlock(&db->fmu);
	return 0;
}

int ts_db_compact(struct ts_db *db)
{
	return ts_db_compact_progress(db, NULL, NULL);
}

int ts_db_downsample(struct ts_db *db, ts_progress_fn progress, void *arg,
		     struct ts_downsample_stats *st)
{
	if (st)
		memset(st, 0, sizeof *st);
	pthread_mutex_lock(&db->fmu);
	/* Closed partitions not cold yet are converted first (their tiers are built on the
	 * way); then every closed partition's tiers are checked. */
	run(db, want_closed_now, closed_before_ms(db), 1 << 30, 1, RW_CLOSED);
	int rc = tiers_pass(db, progress, arg, st);
	pthread_mutex_unlock(&db->fmu);
	return rc;
}

/* ---- retention per resolution ----
 *
 * Thanos compactor's retention: raw samples, 5-minute rows and 1-hour rows each go
 * once the partition holding them ended longer ago than their retention; a partition
 * whose every kind is due goes whole (partition.c, ts__parts_expire). Raw samples are
 * deleted only from a partition whose tiers are current (converted into one generation
 * and downsampled first, here), so the data stays answerable at the coarser resolutions;
 * a partition whose width allows no tier loses its raw samples as retention says. The
 * deletion of a kind, the empty tables and the "expired" row are one transaction; the
 * partition is then rewritten so its file shrinks (the usual crash-safe swap). */

static int64_t eff(int64_t tier, int64_t raw)
{
	int64_t r = tier ? tier : raw;
	return r >= TS_RETENTION_FOREVER ? 0 : r;
}

int64_t ts__retention_keep_ms(const struct ts_db *db)
{
	int64_t r[3] = { db->o.retention_ms, eff(db->o.retention_5m_ms, db->o.retention_ms),
			 eff(db->o.retention_1h_ms, db->o.retention_ms) };
	int64_t keep = 0;
	for (int i = 0; i < 3; i++) {
		if (r[i] <= 0)
			return 0;
		if (r[i] > keep)
			keep = r[i];
	}
	return keep;
}

/* The kinds of p due for deletion at now (TS_FORMAT_EXPIRED_* bits). */
static unsigned due_kinds(const struct ts_db *db, const struct ts_partition *p, int64_t now)
{
	int64_t r[3] = { db->o.retention_ms, eff(db->o.retention_5m_ms, db->o.retention_ms),
			 eff(db->o.retention_1h_ms, db->o.retention_ms) };
	static const unsigned bit[3] = { TS_FORMAT_EXPIRED_RAW, TS_FORMAT_EXPIRED_5M,
					 TS_FORMAT_EXPIRED_1H };
	unsigned due = 0;
	for (int i = 0; i < 3; i++)
		if (r[i] > 0 && p->end <= now - r[i])
			due |= bit[i];
	return due;
}

static int want_due(struct ts_db *db, struct ts_partition *p, int64_t now)
{
	if (!ts__rules_free_part(db, p))
		return 0; /* kept by a retention rule, or not decided yet (rules.c) */
	unsigned due = due_kinds(db, p, now), gone = atomic_load(&p->expired);
	int c = atomic_load(&p->compacted);
	/* Not opened yet in this run: what it lost already is not known. Dropped but not
	 * rewritten (a crash in between): the rewrite is still due. */
	return due && (c < 0 || (gone & due) != due || (gone && c == 0));
}

int ts__table_clear(struct ts_rtxn *r, unsigned table, int first, struct ts_batch *b)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, table, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k;
		size_t kl;
		if ((rc = ts_cursor_get(c, &k, &kl, NULL, NULL)))
			break;
		if (first >= 0 && (kl == 0 || ((const uint8_t *)k)[0] != first))
			continue;
		if ((rc = ts_batch_del(b, table, k, kl, NULL, 0)))
			break;
	}
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* Deletes the kinds `drop` of p (pinned) in one transaction. */
static int drop_kinds(struct ts_db *db, struct ts_partition *p, unsigned drop)
{
	struct ts_rtxn *r;
	struct ts_batch *b = NULL;
	int rc = ts_env_read_begin(p->env, &r);
	if (rc)
		return rc;
	unsigned now = atomic_load(&p->expired) | drop;
	uint8_t v = (uint8_t)now;
	if ((rc = ts_batch_new(&b)) == 0 && (drop & TS_FORMAT_EXPIRED_RAW))
		if ((rc = ts__table_clear(r, p->chunks, -1, b)) == 0)
			rc = ts__table_clear(r, p->cold, -1, b);
	if (rc == 0 && (drop & TS_FORMAT_EXPIRED_5M))
		rc = ts__table_clear(r, p->tiers, TS_FORMAT_TIER_RES_5M, b);
	if (rc == 0 && (drop & TS_FORMAT_EXPIRED_1H))
		rc = ts__table_clear(r, p->tiers, TS_FORMAT_TIER_RES_1H, b);
	if (rc == 0)
		rc = ts_batch_put(b, p->meta, TS_FORMAT_PART_META_EXPIRED,
				  strlen(TS_FORMAT_PART_META_EXPIRED), &v, 1);
	/* Not tight any more: if the rewrite below does not happen (a crash), the closed
	 * partitions' pass does it. */
	if (rc == 0)
		rc = ts_batch_del(b, p->meta, TS_FORMAT_PART_META_COLD,
				  strlen(TS_FORMAT_PART_META_COLD), NULL, 0);
	ts_env_read_end(r);
	ts__failpoint("retention.before_drop");
	if (rc == 0)
		rc = ts_env_apply(p->env, b);
	ts_batch_free(b);
	if (rc == 0) {
		for (int k = 0; k < 3; k++)
			if (drop & (1u << k)) /* TS_FORMAT_EXPIRED_RAW, _5M, _1H */
				atomic_fetch_add(&db->n_parts_expired[k], 1);
		atomic_store(&p->expired, now);
		atomic_store(&p->compacted, 0);
		ts__failpoint("retention.dropped");
	}
	return rc;
}

/* Brings p (pinned) to current tiers before its raw samples go: 0 when they are (or
 * cannot be: no tier fits the width), TS_ENOTFOUND when p is not settled yet. */
static int tiers_first(struct ts_db *db, struct ts_partition *p)
{
	struct ts__convert_stats st;
	int rc = ts__cold_convert(db, p, 1, &st);
	if (rc)
		return rc;
	int state;
	struct ts__tiers_rec rec;
	if ((rc = ts__tiers_build(db, p, 0, &state, &rec)))
		return rc;
	return state == TS__TIERS_SKIPPED ? TS_ENOTFOUND : 0;
}

int ts__retention_pass(struct ts_db *db, int64_t now)
{
	int n = 0;
	size_t from = 0;
	struct ts_partition *p;
	while ((p = pick(db, want_due, now, &from)) != NULL) {
		int rc = busy(db, p) ? TS_ENOTFOUND : ts__part_pin(db, p, 0);
		if (rc) { /* still taking writes, or never written */
			if (rc != TS_ENOTFOUND)
				ts_log(TS_LOG_WARN, "retention of %s: %s", p->dir, ts_strerror(rc));
			ts__part_unref(db, p);
			continue;
		}
		unsigned drop = due_kinds(db, p, now) & ~atomic_load(&p->expired);
		int replaced = 0;
		if (drop & TS_FORMAT_EXPIRED_RAW)
			rc = tiers_first(db, p);
		if (rc == 0 && drop && (rc = drop_kinds(db, p, drop)) == 0) {
			ts_log(TS_LOG_INFO, "retention: deleted%s%s%s of %s",
			       drop & TS_FORMAT_EXPIRED_RAW ? " raw samples" : "",
			       drop & TS_FORMAT_EXPIRED_5M ? " 5m rows" : "",
			       drop & TS_FORMAT_EXPIRED_1H ? " 1h rows" : "", p->dir);
			n++;
		}
		uint64_t cold_bytes;
		int all_cold;
		if (rc == 0 && atomic_load(&p->expired) && atomic_load(&p->compacted) == 0 &&
		    (rc = cold_state(p, &cold_bytes, &all_cold)) == 0)
			replaced = compact_pinned(db, p, all_cold) == 0;
		ts__part_unpin(db, p);
		if (replaced) {
			ts__failpoint("retention.before_release");
			ts__part_unref(db, p); /* the array's reference, now np's */
		}
		if (rc && rc != TS_ENOTFOUND)
			ts_log(TS_LOG_WARN, "retention of %s failed: %s; tried again later", p->dir,
			       ts_strerror(rc));
		ts__part_unref(db, p);
	}
	return n;
}

int ts__compact_clean_part(struct ts_db *db, struct ts_partition *p)
{
	if (busy(db, p))
		return 0;
	int rc = convert_one(db, p, TS__CONVERT_FORCE, RW_FORCE);
	if (rc)
		ts_log(TS_LOG_WARN, "rewriting %s without deleted samples failed: %s", p->dir,
		       ts_strerror(rc));
	return rc;
}

static int want_stale_tiers(struct ts_db *db, struct ts_partition *p, int64_t closed_before)
{
	(void)db;
	return atomic_load(&p->tiers_stale) && p->end <= closed_before;
}

int ts__tiers_refresh(struct ts_db *db)
{
	int n = 0;
	size_t from = 0;
	struct ts_partition *p;
	while ((p = pick(db, want_stale_tiers, closed_before_ms(db), &from)) != NULL) {
		if (!busy(db, p) && ts__part_pin(db, p, 0) == 0) {
			int state;
			struct ts__tiers_rec rec;
			int rc = ts__tiers_build(db, p, 0, &state, &rec);
			if (rc == 0 && state != TS__TIERS_SKIPPED) {
				atomic_store(&p->tiers_stale, 0);
				n += state == TS__TIERS_BUILT;
			} else if (rc) {
				ts_log(TS_LOG_WARN,
				       "%s: rebuilding tiers after a deletion failed: %s", p->dir,
				       ts_strerror(rc));
			}
			ts__part_unpin(db, p);
		}
		ts__part_unref(db, p);
	}
	return n;
}
