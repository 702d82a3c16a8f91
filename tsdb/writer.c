/*
 * writer.c - the single writer: moves sealed chunks and new series from memory into
 * LMDB in large batches, and checkpoints.
 *
 * Flush: take the current queue of sealed chunks and the list of series not yet indexed
 * (under db->mu), write chunks into their partition envs and series/postings into the
 * index env (one transaction per env), then unlink exactly what was written from memory
 * (under db->mu). Readers therefore always find a chunk in memory, in LMDB, or both.
 *
 * Checkpoint = flush plus: roll the WAL to a new segment at L (under db->mu, so every
 * record below L has been applied to the heads), snapshot every series' head (each
 * snapshot remembers the series' last applied LSN), commit snapshots and
 * checkpoint_lsn = L to the index env after the partitions, then delete WAL segments
 * below L. Recovery loads the snapshots and replays records >= L, skipping for each
 * series those at or below its snapshot's LSN.
 *
 * A chunk key (series, min_t) that already exists in the partition is merged with the
 * stored chunk rather than overwriting it: that happens when out-of-order data starts
 * at a stored chunk's first timestamp, and when recovery re-creates a chunk that was
 * flushed after the last checkpoint (identical bytes: nothing to merge).
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/failpoint.h"

#define CAPTURE_GROUP 4096 /* a multiple of TS_FORMAT_GROUP_SERIES */


struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	return ts_grow((void **)&b->p, &b->cap, b->len + more, 1);
}

struct sample_arr {
	struct ts_ooo_sample *s;
	size_t n, cap;
};

static int decode_into(const uint8_t *data, size_t len, struct sample_arr *a)
{
	struct ts_xor_it it;
	int rc = ts_xor_it_init(&it, data, len);
	if (rc)
		return rc;
	a->n = 0;
	while ((rc = ts_xor_next(&it)) == 1) {
		if (ts_grow((void **)&a->s, &a->cap, a->n + 1, sizeof *a->s))
			return -ENOMEM;
		a->s[a->n].t = it.t;
		a->s[a->n].v = it.v;
		a->n++;
	}
	return rc;
}

/* Merges the stored chunk (first: its values win) with a new one into *out. */
static int merge_chunks(const uint8_t *old, size_t old_len, const uint8_t *add, size_t add_len,
			struct ts_xor_enc *out, int64_t *min_t, int64_t *max_t)
{
	struct sample_arr a = { 0 }, b = { 0 };
	int rc = decode_into(old, old_len, &a);
	if (rc == 0)
		rc = decode_into(add, add_len, &b);
	if (rc)
		goto out;
	ts_xor_enc_init(out);
	size_t i = 0, j = 0;
	while ((i < a.n || j < b.n) && rc == 0) {
		struct ts_ooo_sample x;
		if (j >= b.n || (i < a.n && a.s[i].t <= b.s[j].t)) {
			x = a.s[i];
			if (j < b.n && b.s[j].t == x.t)
				j++;
			i++;
		} else {
			x = b.s[j++];
		}
		if (out->n == 0)
			*min_t = x.t;
		*max_t = x.t;
		rc = ts_xor_append(out, x.t, x.v);
	}
out:
	ts_free(a.s);
	ts_free(b.s);
	return rc;
}

#define FLUSH_SLICE_BYTES (6u << 20) /* with record headers, the batch stays within 8 MiB */

/* Puts chunk c into batch b of partition p, merging with a stored chunk of the same key. */
static int chunk_put(struct ts_partition *p, struct ts_batch *b, struct ts_rtxn *r,
		     const struct ts_chunk_mem *c, struct buf *scratch)
{
	uint8_t key[TS_CHUNK_KEY_LEN];
	ts_chunk_key(key, c->series->id, c->min_t);
	const uint8_t *data = c->data;
	size_t len = c->len;
	int64_t min_t = c->min_t, max_t = c->max_t;
	uint32_t n = c->n_samples;
	uint16_t flags = c->flags;
	struct ts_xor_enc merged = { 0 };
	const void *old;
	size_t old_len;
	int rc = ts_env_get(r, p->chunks, key, sizeof key, &old, &old_len);
	if (rc == 0) {
		struct ts_chunk_hdr h;
		const uint8_t *payload;
		rc = ts_chunk_decode(old, old_len, &h, &payload);
		if (rc)
			goto out;
		if (h.payload_len == len && memcmp(payload, data, len) == 0)
			goto out; /* recovery re-created a chunk that is already stored */
		rc = merge_chunks(payload, h.payload_len, data, len, &merged, &min_t, &max_t);
		if (rc)
			goto out;
		data = merged.buf;
		len = ts_xor_enc_bytes(&merged);
		n = merged.n;
		flags |= TS_CHUNK_FLAG_OVERLAP | h.flags;
	} else if (rc != TS_ENOTFOUND) {
		goto out;
	}
	scratch->len = 0;
	rc = buf_reserve(scratch, TS_CHUNK_HDR_LEN + len);
	if (rc)
		goto out;
	size_t rl = ts_chunk_encode(scratch->p, TS_CHUNK_ENC_XOR, flags, n, min_t, max_t, data,
				    (uint32_t)len);
	rc = ts_batch_put(b, p->chunks, key, sizeof key, scratch->p, rl);
out:
	ts_xor_enc_fini(&merged);
	return rc;
}

struct chunk_ref {
	int64_t part;
	struct ts_chunk_mem *c;
};

static int chunk_ref_cmp(const void *a, const void *b)
{
	const struct chunk_ref *x = a, *y = b;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	if (x->c->series->id != y->c->series->id)
		return x->c->series->id < y->c->series->id ? -1 : 1;
	return (x->c->min_t > y->c->min_t) - (x->c->min_t < y->c->min_t);
}

/* Writes the queued chunks first..last: one transaction per partition, keys in order. */
static int write_chunks(struct ts_db *db, struct ts_chunk_mem *first, struct ts_chunk_mem *last)
{
	if (!first)
		return 0;
	size_t n = 0;
	for (struct ts_chunk_mem *c = first;; c = c->next_global) {
		n++;
		if (c == last)
			break;
	}
	struct chunk_ref *refs = ts_malloc(n * sizeof *refs);
	struct ts_batch *b = NULL;
	struct buf scratch = { 0 };
	int rc = refs ? ts_batch_new(&b) : -ENOMEM;
	if (rc)
		goto out;
	size_t i = 0;
	for (struct ts_chunk_mem *c = first;; c = c->next_global) {
		refs[i].part = ts__partition_start(db, c->min_t);
		refs[i++].c = c;
		if (c == last)
			break;
	}
	qsort(refs, n, sizeof *refs, chunk_ref_cmp);
	for (i = 0; i < n && rc == 0;) {
		struct ts_partition *p;
		rc = ts__part_get(db, refs[i].c->min_t, &p);
		if (rc)
			break;
		/* Only the writer creates partitions, so p stays valid during this group. */
		rc = ts__part_pin(db, p, 1);
		if (rc)
			break;
		struct ts_rtxn *r;
		rc = ts_env_read_begin(p->env, &r);
		if (rc) {
			ts__part_unpin(db, p);
			break;
		}
		ts_batch_reset(b);
		size_t j = i;
		uint64_t bytes = 0;
		/* At most FLUSH_SLICE_BYTES of chunks per transaction: the batch and LMDB's
		 * dirty pages are held in memory until the commit, so one transaction for a
		 * whole flush at 100k series held over 80 MB at once. A crash between slices
		 * is a crash between partitions: the WAL still has the samples, and replay
		 * merges what was already stored (chunk_put). */
		for (;
		     j < n && refs[j].part == refs[i].part && rc == 0 && bytes < FLUSH_SLICE_BYTES;
		     j++) {
			rc = chunk_put(p, b, r, refs[j].c, &scratch);
			bytes += TS_CHUNK_HDR_LEN + refs[j].c->len;
		}
		/* A late write undoes a compaction: the partition is rewritten again later. */
		if (rc == 0 && atomic_load(&p->compacted))
			rc = ts_batch_del(b, p->meta, TS_FORMAT_PART_META_COLD,
					  strlen(TS_FORMAT_PART_META_COLD), NULL, 0);
		/* The read snapshot must end before apply: growing the map waits for readers. */
		ts_env_read_end(r);
		if (rc == 0 && !(rc = ts__failpoint_err("flush.apply")))
			rc = ts_env_apply(p->env, b);
		/* LMDB read every leaf page the slice changed through the map (to copy it);
		 * with chunks keyed by series those are most of the table's pages, which
		 * would stay in the RSS until the process ends (see ts_env_unmap_pages). */
		(void)ts_env_unmap_pages(p->env);
		ts__part_unpin(db, p);
		if (rc == 0) {
			atomic_store(&p->compacted, 0);
			p->last_write_mono_ms = ts_mono_ms();
			p->hot_bytes += bytes;
			ts__failpoint("flush.part_written");
		}
		i = j;
	}
out:
	ts_batch_free(b);
	ts_free(refs);
	ts_free(scratch.p);
	return rc;
}

struct snap_entry {
	uint64_t id;
	size_t off, len; /* len 0: delete the row */
};

/* What one flush moves from memory into LMDB. */
struct flush {
	int checkpoint;
	uint64_t L;		 /* checkpoint: the WAL position the head rows cover */
	struct buf snaps;	 /* head rows, back to back */
	struct snap_entry *ents; /* one per head row */
	size_t n_ents, cap_ents;
	struct ts_chunk_mem *first, *last; /* the queued chunks taken */
	struct ts_series **idx;		   /* the unindexed series taken */
	size_t n_idx;
};

static int has_data(const struct ts_series *s)
{
	return !s->dead && (s->max_t != INT64_MIN || s->enc.n || (s->ooo && s->ooo->n));
}

/* Captures the head entries of group g (ids [first, end)) if the group row needs
 * rewriting: every series with data keeps an entry, even with an empty head, so
 * recovery knows its newest timestamp (resends are judged against it, and queries skip
 * series with nothing in range). A group is rewritten only when one of its heads
 * changed since it was captured: idle series cost nothing per checkpoint. db->mu held. */
static int capture_group(struct ts_db *db, struct flush *f, uint64_t first, uint64_t end,
			 int64_t newest, int all)
{
	int need = all;
	for (uint64_t id = first; id < end; id++) {
		struct ts_series *s = ts__series_by_id(db, id);
		if (!s)
			continue;
		ts__head_seal_idle(db, s, newest);
		if (has_data(s) && (s->snap_dirty || !s->has_snapshot))
			need = 1;
	}
	if (!need)
		return 0;
	for (uint64_t id = first; id < end; id++) {
		struct ts_series *s = ts__series_by_id(db, id);
		if (!s || !has_data(s))
			continue;
		if (ts_grow((void **)&f->ents, &f->cap_ents, f->n_ents + 1, sizeof *f->ents))
			return -ENOMEM;
		size_t len = ts__head_snapshot_len(s);
		int rc = buf_reserve(&f->snaps, len);
		if (rc)
			return rc;
		ts__head_snapshot(s, f->snaps.p + f->snaps.len);
		f->ents[f->n_ents++] = (struct snap_entry){ s->id, f->snaps.len, len };
		f->snaps.len += len;
		s->snap_dirty = 0; /* set again on failure (flush_failed), or by new samples */
	}
	return 0;
}

/* Checkpoint, first step: rolls the WAL to L under db->mu, so every record below L has
 * been applied to the heads captured from here on. */
static int roll_wal(struct ts_db *db, struct flush *f)
{
	pthread_mutex_lock(&db->mu);
	int rc = ts_wal_roll(db->wal, &f->L);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* Captures head entries from series *base on (a multiple of TS_FORMAT_GROUP_SERIES),
 * up to CAPTURE_GROUP series per db->mu hold, until `limit` bytes are captured (0: no
 * limit) or every series is; *base becomes where the next pass starts, UINT64_MAX when
 * none is left. */
static int capture_heads(struct ts_db *db, struct flush *f, uint64_t *base, size_t limit)
{
	uint64_t end = atomic_load(&db->next_id);
	/* "Idle" is judged against the newest data, but never ahead of the wall clock:
	 * one sample from a host whose clock runs fast must not make every other series
	 * look stopped; a backfill of old data uses its own newest time. */
	int64_t wall_ms = ts_wall_ms();
	const uint64_t G = TS_FORMAT_GROUP_SERIES;
	int rc = 0;
	uint64_t g0 = *base;
	while (g0 < end && rc == 0 && (!limit || f->snaps.len < limit)) {
		pthread_mutex_lock(&db->mu);
		int64_t newest = db->max_t_seen < wall_ms ? db->max_t_seen : wall_ms;
		uint64_t hold_end = g0 + CAPTURE_GROUP;
		for (; g0 < hold_end && g0 < end && rc == 0 && (!limit || f->snaps.len < limit);
		     g0 += G)
			rc = capture_group(db, f, g0 ? g0 : 1, g0 + G < end ? g0 + G : end, newest,
					   db->index_migrate);
		pthread_mutex_unlock(&db->mu);
	}
	*base = g0 < end ? g0 : UINT64_MAX;
	return rc;
}

/* Takes the queued chunks and the unindexed series (under db->mu). */
static int take_work(struct ts_db *db, struct flush *f)
{
	pthread_mutex_lock(&db->mu);
	f->first = db->q_head;
	f->last = db->q_tail;
	size_t n_idx = db->n_unindexed;
	if (n_idx) {
		f->idx = ts_malloc(n_idx * sizeof *f->idx);
		if (f->idx) {
			memcpy(f->idx, db->unindexed, n_idx * sizeof *f->idx);
			f->n_idx = n_idx;
		}
	}
	if ((!n_idx || f->idx) && !db->up_broken && ts__upost_taken(db, n_idx))
		ts__upost_lost(db);
	pthread_mutex_unlock(&db->mu);
	return n_idx && !f->idx ? -ENOMEM : 0;
}

/* The series group rows the flush changes: groups of its new series (all of them when
 * migrating a format-1 index), each with every committed member plus the new ones. */
static int put_series_groups(struct ts_db *db, struct flush *f, struct ts_batch *ib, int migrating)
{
	const uint64_t G = TS_FORMAT_GROUP_SERIES;
	uint64_t *groups = NULL;
	size_t n_groups = 0, cap_groups = 0;
	struct ts_series *members[TS_FORMAT_GROUP_SERIES];
	int rc = 0;
	if (migrating) {
		uint64_t end = atomic_load(&db->next_id);
		for (uint64_t g = 0; g * G < end && rc == 0; g++) {
			if (ts_grow((void **)&groups, &cap_groups, n_groups + 1, sizeof *groups))
				rc = -ENOMEM;
			else
				groups[n_groups++] = g;
		}
	}
	for (size_t i = 0; i < f->n_idx && rc == 0; i++) {
		uint64_t g = f->idx[i]->id / G;
		f->idx[i]->flush_mark = 1;
		int seen = 0;
		for (size_t k = n_groups; k > 0 && !seen; k--)
			seen = groups[k - 1] == g;
		if (seen)
			continue;
		if (ts_grow((void **)&groups, &cap_groups, n_groups + 1, sizeof *groups))
			rc = -ENOMEM;
		else
			groups[n_groups++] = g;
	}
	for (size_t k = 0; k < n_groups && rc == 0; k++) {
		size_t n = 0;
		/* Members: committed ones (indexed, under db->mu) and this flush's. */
		pthread_mutex_lock(&db->mu);
		for (uint64_t id = groups[k] * G; id < groups[k] * G + G; id++) {
			struct ts_series *s = id ? ts__series_by_id(db, id) : NULL;
			if (s && !s->dead && (s->indexed || s->flush_mark))
				members[n++] = s;
		}
		pthread_mutex_unlock(&db->mu);
		rc = ts__index_put_series_group(db, ib, groups[k], members, n);
	}
	for (size_t i = 0; i < f->n_idx; i++)
		f->idx[i]->flush_mark = 0;
	ts_free(groups);
	return rc;
}

size_t ts__ckpt_slice_bytes = 6u << 20;

/* The head group rows of the captured entries (ascending ids, whole groups). A
 * checkpoint's rows come in capture passes of about ts__ckpt_slice_bytes, each its own
 * transaction (see ts__writer_flush_locked). */
static int put_head_groups(struct ts_db *db, struct flush *f, struct ts_batch *ib)
{
	const uint64_t G = TS_FORMAT_GROUP_SERIES;
	uint64_t ids[TS_FORMAT_GROUP_SERIES];
	const uint8_t *snaps[TS_FORMAT_GROUP_SERIES];
	size_t lens[TS_FORMAT_GROUP_SERIES];
	int rc = 0;
	for (size_t i = 0; i < f->n_ents && rc == 0;) {
		uint64_t g = f->ents[i].id / G;
		size_t n = 0;
		for (; i < f->n_ents && f->ents[i].id / G == g; i++, n++) {
			ids[n] = f->ents[i].id;
			snaps[n] = f->snaps.p + f->ents[i].off;
			lens[n] = f->ents[i].len;
		}
		rc = ts__index_put_head_group(db, ib, g, ids, snaps, lens, n);
	}
	return rc;
}

/* One index transaction: new series, head rows, meta rows (with checkpoint_lsn = *lsn
 * when lsn is set), metadata. */
static int write_index(struct ts_db *db, struct flush *f, const uint64_t *lsn)
{
	struct ts_batch *ib;
	int rc = ts_batch_new(&ib);
	if (rc)
		return rc;
	/* A format-1 migration (one pass, see ts__writer_flush_locked) drops the old rows in
	 * the same transaction as the new ones. */
	int migrating = lsn && db->index_migrate;
	if (f->n_idx)
		rc = ts__index_add_many(db, ib, f->idx, f->n_idx);
	if (rc == 0)
		rc = put_series_groups(db, f, ib, migrating);
	if (rc == 0)
		rc = put_head_groups(db, f, ib);
	if (rc == 0 && migrating)
		rc = ts__index_drop_v1_rows(db, ib);
	if (rc == 0)
		rc = ts__index_put_meta(db, ib, lsn);
	int md = 0;
	if (rc == 0) {
		rc = ts__md_flush(db, ib);
		md = 1;
	}
	if (rc == 0)
		rc = ts_env_apply(db->index, ib);
	/* As for partitions (write_chunks): the pages LMDB read to copy them (series and
	 * head group rows, postings) would stay in the RSS; readers fault back in the few
	 * they use. */
	(void)ts_env_unmap_pages(db->index);
	if (rc && md)
		ts__md_redirty(db);
	if (rc == 0 && migrating)
		db->index_migrate = 0;
	ts_batch_free(ib);
	return rc;
}

/* Committed: memory forgets what LMDB now holds (under db->mu). Returns chunks freed. */
static uint64_t forget_committed(struct ts_db *db, struct flush *f)
{
	pthread_mutex_lock(&db->mu);
	uint64_t n_chunks = 0;
	if (f->first) {
		struct ts_chunk_mem *c = f->first, *next_c;
		for (;;) {
			next_c = c->next_global;
			struct ts_series *s = c->series;
			s->pending = c->next_series;
			if (!s->pending)
				s->pending_tail = NULL;
			int was_last = c == f->last;
			ts_free(c);
			n_chunks++;
			if (was_last)
				break;
			c = next_c;
		}
		db->q_head = next_c;
		if (!db->q_head)
			db->q_tail = NULL;
	}
	for (size_t i = 0; i < f->n_idx; i++)
		f->idx[i]->indexed = 1;
	if (f->n_idx)
		memmove(db->unindexed, db->unindexed + f->n_idx,
			(db->n_unindexed - f->n_idx) * sizeof *db->unindexed);
	db->n_unindexed -= f->n_idx;
	ts__upost_committed(db);
	for (size_t i = 0; i < f->n_ents; i++) {
		struct ts_series *s = ts__series_by_id(db, f->ents[i].id);
		if (s)
			s->has_snapshot = f->ents[i].len != 0;
	}
	pthread_mutex_unlock(&db->mu);
	return n_chunks;
}

/* The head rows were not committed: capture them again next time. Skipping a row whose
 * state changed while the WAL is cut past it would lose samples. */
static void redirty_heads(struct ts_db *db, struct flush *f)
{
	pthread_mutex_lock(&db->mu);
	for (size_t i = 0; i < f->n_ents; i++) {
		struct ts_series *s = ts__series_by_id(db, f->ents[i].id);
		if (s)
			s->snap_dirty = 1;
	}
	pthread_mutex_unlock(&db->mu);
}

/* Records the outcome in db->writer_err, logging each new error once. While it is set,
 * appends are refused (db.c): memory would otherwise fill with data that cannot reach
 * LMDB, and the WAL would grow without checkpoints. The writer retries every flush
 * interval, so writes resume by themselves once the cause (a full disk) goes away. */
static void note_result(struct ts_db *db, int checkpoint, int rc)
{
	int prev = atomic_exchange(&db->writer_err, rc);
	if (rc == 0 && prev)
		ts_log(TS_LOG_INFO, "flush succeeded again; accepting writes");
	if (rc) {
		atomic_fetch_add(&db->n_flush_failures, 1);
		if (rc != prev)
			ts_log(TS_LOG_ERROR,
			       "flush%s failed: %s; refusing writes until a flush "
			       "succeeds (retried every flush interval)",
			       checkpoint ? " (checkpoint)" : "", ts_strerror(rc));
	}
}

int ts__writer_flush(struct ts_db *db, int checkpoint)
{
	pthread_mutex_lock(&db->fmu);
	int rc = ts__writer_flush_locked(db, checkpoint);
	pthread_mutex_unlock(&db->fmu);
	return rc;
}

/* One pass of a flush: the queued chunks, then the index (new series, f's head rows,
 * meta rows with f->L when `ckpt_lsn`), then memory forgets what LMDB now holds. */
static int flush_pass(struct ts_db *db, struct flush *f, int ckpt_lsn)
{
	int rc;
	if ((rc = take_work(db, f)))
		return rc;
	if (!f->first && !f->n_idx && !f->n_ents && !ckpt_lsn && !ts__md_dirty(db))
		return 0;
	/* Partitions first, then the index (whose checkpoint_lsn covers them). */
	if ((rc = write_chunks(db, f->first, f->last)))
		return rc;
	ts__failpoint(f->checkpoint ? "ckpt.before_index" : "flush.before_index");
	/* a pass's index transaction failing, before checkpoint_lsn is written */
	if (f->checkpoint && !ckpt_lsn)
		rc = ts__failpoint_err("ckpt.slice_apply");
	if (rc == 0)
		rc = write_index(db, f, ckpt_lsn ? &f->L : NULL);
	if (rc)
		return rc;
	atomic_fetch_add(&db->n_flushed, forget_committed(db, f));
	ts__parts_expire(db, ts_wall_ms());
	return 0;
}

static void flush_reset(struct flush *f)
{
	ts_free(f->idx);
	ts_free(f->ents);
	ts_free(f->snaps.p);
	uint64_t L = f->L;
	int checkpoint = f->checkpoint;
	memset(f, 0, sizeof *f);
	f->L = L;
	f->checkpoint = checkpoint;
}

/*
 * A checkpoint captures the heads in passes of about ts__ckpt_slice_bytes, each written
 * (its chunks, then its head rows, in a transaction of its own) before the next is
 * captured, and records L in the last pass's index transaction. Capturing every head
 * before writing any held a copy of all open chunks at once, and one transaction for
 * all head rows held them three times (rows, batch, LMDB's dirty pages): at 100k
 * series the peak of the process. A crash between passes is safe: each head row
 * carries its series' last applied LSN, so recovery replays the WAL from the
 * checkpoint_lsn still committed and skips, per series, what a newer row holds (db.c);
 * a pass's chunks, sealed before its heads were captured, are committed before its
 * rows, and its new series in the same transaction as its rows, so no head row is
 * without its series row. Migrating a format-1 index keeps one transaction for
 * everything (its old rows are dropped with the new ones written).
 */
int ts__writer_flush_locked(struct ts_db *db, int checkpoint)
{
	struct flush f = { .checkpoint = checkpoint };
	int rc = 0;
	if (!checkpoint) {
		rc = flush_pass(db, &f, 0);
		goto out;
	}
	if ((rc = roll_wal(db, &f)))
		goto out;
	uint64_t base = 0;
	size_t limit = db->index_migrate ? 0 : ts__ckpt_slice_bytes;
	for (;;) {
		if ((rc = capture_heads(db, &f, &base, limit)))
			goto out;
		ts__failpoint("ckpt.captured");
		int last = base == UINT64_MAX;
		if ((rc = flush_pass(db, &f, last)))
			goto out;
		if (last)
			break;
		ts__failpoint("ckpt.pass");
		flush_reset(&f);
	}
	ts__failpoint("ckpt.before_truncate");
	rc = ts_wal_truncate_before(db->wal, f.L);
	atomic_fetch_add(&db->n_checkpoints, 1);
	db->last_checkpoint_ms = (uint64_t)ts_mono_ms();
out:
	if (rc && f.n_ents)
		redirty_heads(db, &f);
	note_result(db, checkpoint, rc);
	ts_free(f.idx);
	ts_free(f.ents);
	ts_free(f.snaps.p);
	return rc;
}

#define RETENTION_EVERY_MS 30000

static void *writer_main(void *arg)
{
	struct ts_db *db = arg;
	pthread_mutex_lock(&db->wmu);
	while (!db->writer_stop) {
		struct timespec ts;
		ts_deadline(CLOCK_REALTIME, db->o.flush_interval_ms, &ts);
		pthread_cond_timedwait(&db->wcond, &db->wmu, &ts);
		if (db->writer_stop)
			break;
		int retention_now = db->retention_now;
		db->retention_now = 0;
		pthread_mutex_unlock(&db->wmu);
		struct ts_wal_stats ws;
		ts_wal_stats(db->wal, &ws);
		int ckpt = ws.bytes_on_disk > db->o.checkpoint_wal_bytes ||
			   (uint64_t)ts_mono_ms() - db->last_checkpoint_ms >=
				   db->o.checkpoint_interval_ms;
		ts__writer_flush(db, ckpt);
		/* A flush frees what it moved out of memory (sealed chunks, its batch, LMDB's
		 * dirty pages); glibc keeps freed pages mapped unless asked, so the process
		 * would stay at its high-water mark. */
		malloc_trim(0);
		/* Background maintenance, bounded: one closed partition per cycle, and
		 * retention (whole partitions, then raw samples and tier rows) every
		 * RETENTION_EVERY_MS, so data goes within a minute of aging out. */
		pthread_mutex_lock(&db->fmu);
		ts__compact_closed(db, 1, 0);
		if (retention_now ||
		    (uint64_t)ts_mono_ms() - db->last_retention_ms >= RETENTION_EVERY_MS) {
			ts__rules_pass(db, ts_wall_ms());
			ts__parts_expire(db, ts_wall_ms());
			ts__retention_pass(db, ts_wall_ms());
			ts__series_gc(db);
			ts__tiers_refresh(db);
			db->last_retention_ms = (uint64_t)ts_mono_ms();
		}
		pthread_mutex_unlock(&db->fmu);
		pthread_mutex_lock(&db->wmu);
	}
	pthread_mutex_unlock(&db->wmu);
	return NULL;
}

int ts__writer_start(struct ts_db *db)
{
	db->last_checkpoint_ms = (uint64_t)ts_mono_ms();
	db->last_retention_ms = (uint64_t)ts_mono_ms();
	int rc = pthread_create(&db->writer, NULL, writer_main, db);
	if (rc)
		return -rc;
	db->writer_running = 1;
	return 0;
}

void ts__writer_stop(struct ts_db *db)
{
	if (!db->writer_running)
		return;
	pthread_mutex_lock(&db->wmu);
	db->writer_stop = 1;
	pthread_cond_signal(&db->wcond);
	pthread_mutex_unlock(&db->wmu);
	pthread_join(db->writer, NULL);
	db->writer_running = 0;
}
