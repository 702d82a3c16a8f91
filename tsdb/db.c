/*
 * db.c - opening, recovering and closing a database, and the append path (see db_int.h
 * for the locking model and head.c for sample rules).
 *
 * Append: labels are canonicalised, hashed and looked up in the sharded registry
 * without the append mutex. Under db->mu each sample is classified against its series'
 * head (and the batch's own earlier samples) without changing anything; the accepted
 * samples (plus the creation of series not yet logged) become one WAL record; only once
 * it is written are they applied to the heads, by the same function recovery uses. So a
 * failed WAL write changes nothing, and a recovered head equals the lost one. If applying
 * a logged record fails (out of memory), memory no longer matches the log: the db
 * refuses writes until reopened, which replays the log. The durability wait (group
 * commit) happens after the mutex is released.
 *
 * The WAL record (TS_FORMAT_WAL_REC_BATCH) is laid out in format.h.
 *
 * Uses: registry.c, head.c, index.c, partition.c, writer.c, metadata.c, storage/.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "on-disk formats assume LE hosts");

/* ---- recovery: WAL replay ---- */

struct replay_ctx {
	struct ts_db *db;
	uint64_t n_records, n_samples, n_skipped;
};

/* The creations section of a batch record: series not known yet are inserted with their
 * logged id (and listed for the index). *off moves past the section. */
static int replay_creations(struct ts_db *db, const uint8_t *p, size_t len, size_t *off)
{
	if (len < 4)
		return TS_CORRUPT();
	uint32_t n_new = ts_format_get_le32(p);
	*off = 4;
	for (uint32_t i = 0; i < n_new; i++) {
		if (len - *off < 12)
			return TS_CORRUPT();
		uint64_t id = ts_format_get_le64(p + *off);
		uint32_t l = ts_format_get_le32(p + *off + 8);
		*off += 12;
		if (len - *off < l || ts_labels_count(p + *off, l) < 0)
			return TS_CORRUPT();
		if (!ts__series_by_id(db, id)) {
			struct ts_series *s;
			int rc = ts__series_insert(db, id, p + *off, l, ts_labels_hash(p + *off, l),
						   &s);
			if (rc)
				return rc;
			s->logged = 1;
			rc = ts__series_unindexed_add(db, s);
			if (rc)
				return rc;
		}
		*off += l;
	}
	return 0;
}

/* The samples section: applied to each series' head unless its snapshot holds them. */
static int replay_samples(struct replay_ctx *cx, uint64_t lsn, const uint8_t *p, size_t len,
			  size_t off)
{
	if (len - off < 4)
		return TS_CORRUPT();
	uint32_t n_series = ts_format_get_le32(p + off);
	off += 4;
	for (uint32_t i = 0; i < n_series; i++) {
		if (len - off < 12)
			return TS_CORRUPT();
		uint64_t id = ts_format_get_le64(p + off);
		uint32_t n = ts_format_get_le32(p + off + 8);
		off += 12;
		if ((len - off) / 16 < n)
			return TS_CORRUPT();
		struct ts_series *s = ts__series_by_id(cx->db, id);
		if (!s) {
			ts_log(TS_LOG_ERROR,
			       "wal: lsn %llu has samples for unknown series %llu; skipped",
			       (unsigned long long)lsn, (unsigned long long)id);
			off += (size_t)n * 16;
			continue;
		}
		if (lsn <= s->snap_lsn) { /* already in the checkpoint's head snapshot */
			cx->n_skipped += n;
			off += (size_t)n * 16;
			continue;
		}
		int rc = ts__head_apply(cx->db, s, p + off, n, lsn);
		off += (size_t)n * 16;
		if (rc < 0)
			return rc;
		cx->n_samples += (uint64_t)rc;
	}
	return 0;
}

static int replay_record(void *arg, uint64_t lsn, uint8_t type, const uint8_t *p, size_t len)
{
	struct replay_ctx *cx = arg;
	if (type != TS_FORMAT_WAL_REC_BATCH) {
		ts_log(TS_LOG_WARN, "wal: skipping record of unknown type %u at lsn %llu", type,
		       (unsigned long long)lsn);
		return 0;
	}
	cx->n_records++;
	size_t off = 0;
	int rc = replay_creations(cx->db, p, len, &off);
	return rc ? rc : replay_samples(cx, lsn, p, len, off);
}

/* ---- append ---- */

/* Labels as senders usually give them: names strictly ascending, no empty value. Packed
 * as given they are the canonical form, if the series is valid at all. */
static int canonical_shape(const struct ts_label *l, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!l[i].value_len || !l[i].name_len)
			return 0;
		if (i) {
			uint32_t a = l[i - 1].name_len, b = l[i].name_len;
			int c = memcmp(l[i - 1].name, l[i].name, a < b ? a : b);
			if (c > 0 || (c == 0 && a >= b))
				return 0;
		}
	}
	return 1;
}

/* Classifies a sample without changing the head (db->mu held). batch/k: the samples of
 * this series already accepted in this batch section, for resends inside one request.
 * Returns 0 (in order), 1 (exact duplicate), 2 (out of order, accepted) or a rejection. */
static int classify(struct ts_db *db, struct ts_series *s, const uint8_t *batch, uint32_t k,
		    int64_t t, uint64_t v, int64_t now)
{
	if (t < TS_FORMAT_MIN_T_MS)
		return TS_ETOOOLD;
	if (t > TS_FORMAT_MAX_T_MS)
		return TS_ETOOFUTURE;
	if (s->b_max_t == INT64_MIN || t > s->b_max_t) {
		if (db->o.max_future_ms && t > now + db->o.max_future_ms)
			return TS_ETOOFUTURE;
		if (db->o.retention_ms && t < now - db->o.retention_ms) /* raw retention */
			return TS_ETOOOLD;
		return 0;
	}
	if (s->max_t == INT64_MIN || t > s->max_t) {
		/* Newer than the head but not than this batch: compare with the batch. */
		for (uint32_t i = k; i-- > 0;) {
			if ((int64_t)ts_format_get_le64(batch + 16 * (size_t)i) == t)
				return ts_format_get_le64(batch + 16 * (size_t)i + 8) == v
					       ? 1
					       : TS_EDUPLICATE;
		}
		if (db->o.ooo_window_ms <= 0)
			return TS_EOUTOFORDER;
		return t < s->b_max_t - db->o.ooo_window_ms ? TS_ETOOOLD : 2;
	}
	return ts__head_check(db, s, t, v, now);
}

struct prep {
	struct ts_series *s;
	int kept; /* a sample of this entry is in the record */
	int rc;
	int in_order; /* TS_APPEND_IN_ORDER */
};

/* Phase 1 scratch: canonical labels and their packed form. */
struct resolve {
	struct ts_label *canon;
	uint8_t *pk;
	size_t pk_cap;
	/* Pass 1 of resolve_series: every entry's packed labels (pre[i].len 0: none, the
	 * entry is not in canonical shape) in one buffer, with their hashes. */
	uint8_t *all;
	size_t all_len;
	struct pre {
		size_t off, len;
		uint64_t hash;
	} * pre;
};

/* Packs n labels into rs->pk, growing it as needed; *len receives the packed length. */
static int pack_into(struct resolve *rs, const struct ts_label *l, uint32_t n, size_t *len)
{
	*len = ts_labels_packed_len(l, n);
	if (*len > rs->pk_cap) {
		uint8_t *x = ts_realloc(rs->pk, *len);
		if (!x)
			return -ENOMEM;
		rs->pk = x;
		rs->pk_cap = *len;
	}
	ts_labels_pack(l, n, rs->pk);
	return 0;
}

/* Phase 1 for one entry: its series, found or created, or its rejection in p->rc and
 * res. Returns 0 or an error that fails the batch (-ENOMEM). */
static int resolve_one(struct ts_db *db, const struct ts_series_in *in, size_t i, struct prep *p,
		       struct ts_append_result *res, struct resolve *rs)
{
	char err[200];
	uint32_t m;
	size_t len;
	/* Fast path for series we already have: a byte-equal match with a stored
	 * canonical label set proves these labels valid, so validation (UTF-8, names,
	 * limits) is paid only when a series is new. */
	if (rs->pre && rs->pre[i].len) {
		p->s = ts__series_find_h(db, rs->all + rs->pre[i].off, rs->pre[i].len,
					 rs->pre[i].hash);
		if (p->s)
			return 0;
	} else if (!rs->pre && in->n_labels <= db->lim.max_labels &&
		   canonical_shape(in->labels, in->n_labels)) {
		if (pack_into(rs, in->labels, in->n_labels, &len))
			return -ENOMEM;
		p->s = ts__series_find(db, rs->pk, len);
		if (p->s)
			return 0;
	}
	int r = in->n_labels > db->lim.max_labels
			? TS_ELIMIT
			: ts_labels_canon(in->labels, in->n_labels, &db->lim, rs->canon, &m, err,
					  sizeof err);
	if (r == TS_ELIMIT && in->n_labels > db->lim.max_labels)
		snprintf(err, sizeof err, "too many labels (%u > %u)", in->n_labels,
			 db->lim.max_labels);
	if (r) {
		p->rc = r;
		res->n_invalid_series++;
		if (!res->first_err) {
			res->first_err = r;
			res->first_err_series = i;
			snprintf(res->first_err_msg, sizeof res->first_err_msg, "%s", err);
		}
		return 0;
	}
	if (pack_into(rs, rs->canon, m, &len))
		return -ENOMEM;
	return ts__series_get(db, rs->pk, len, &p->s);
}

/* Pass 1 of resolve_series: packs and hashes every entry in canonical shape and starts
 * loading its registry slot. At 100k series the slots do not stay in cache, so the
 * look-ups of pass 2 would otherwise wait for one miss after another. Returns 0 or
 * -ENOMEM. */
static int pack_all(struct ts_db *db, const struct ts_series_in *in, size_t n,
		    const ts_series_ref *refs, struct resolve *rs)
{
	rs->pre = ts_calloc(n, sizeof *rs->pre);
	if (!rs->pre)
		return -ENOMEM;
	/* Sized once: grown by doubling, a line-protocol batch (20,000 series, about 4 MB
	 * packed) was copied by realloc about twice over and faulted in afresh, 6-8 % of
	 * that ingest's CPU. pre[i].len holds each length until the entry is packed. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if ((refs && refs[i]) || in[i].n_labels > db->lim.max_labels ||
		    !canonical_shape(in[i].labels, in[i].n_labels))
			continue;
		rs->pre[i].len = ts_labels_packed_len(in[i].labels, in[i].n_labels);
		total += rs->pre[i].len;
	}
	if (total && !(rs->all = ts_malloc(total)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = rs->pre[i].len;
		if (!len)
			continue;
		ts_labels_pack(in[i].labels, in[i].n_labels, rs->all + rs->all_len);
		uint64_t h = ts_labels_hash(rs->all + rs->all_len, len);
		rs->pre[i] = (struct pre){ rs->all_len, len, h };
		rs->all_len += len;
		ts__series_prefetch(db, h);
	}
	return 0;
}

/* Phase 1, in parallel with other appenders: canonical labels -> series. An entry with
 * a ref names its series already: its labels are not read. */
static int resolve_series(struct ts_db *db, const struct ts_series_in *in, size_t n,
			  const ts_series_ref *refs, struct prep *prep,
			  struct ts_append_result *res)
{
	uint32_t max_in = 0;
	size_t n_refs = 0;
	for (size_t i = 0; i < n; i++) {
		if (refs && refs[i]) {
			prep[i].s = (struct ts_series *)(uintptr_t)refs[i];
			n_refs++;
		} else if (in[i].n_labels > max_in) {
			max_in = in[i].n_labels;
		}
	}
	if (n_refs == n)
		return 0;
	struct resolve rs = { .pk_cap = 256 };
	rs.canon = ts_malloc((max_in ? max_in : 1) * sizeof *rs.canon);
	rs.pk = ts_malloc(rs.pk_cap);
	int rc = rs.canon && rs.pk ? 0 : -ENOMEM;
	if (rc == 0 && n - n_refs > 1)
		rc = pack_all(db, in, n, refs, &rs);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!(refs && refs[i]))
			rc = resolve_one(db, &in[i], i, &prep[i], res, &rs);
	ts_free(rs.canon);
	ts_free(rs.pk);
	ts_free(rs.all);
	ts_free(rs.pre);
	return rc;
}

int ts_db_lookup_refs(struct ts_db *db, const struct ts_series_in *in, size_t n,
		      ts_series_ref *refs)
{
	memset(refs, 0, n * sizeof *refs);
	if (!n)
		return 0;
	struct resolve rs = { 0 };
	int rc = pack_all(db, in, n, NULL, &rs);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (rs.pre[i].len)
			refs[i] = (ts_series_ref)(uintptr_t)ts__series_find_h(
				db, rs.all + rs.pre[i].off, rs.pre[i].len, rs.pre[i].hash);
	ts_free(rs.all);
	ts_free(rs.pre);
	return rc;
}

unsigned ts_series_ref_marks(ts_series_ref ref)
{
	return atomic_load_explicit(&((struct ts_series *)(uintptr_t)ref)->marks,
				    memory_order_relaxed);
}

void ts_series_ref_mark(ts_series_ref ref, unsigned bits)
{
	atomic_fetch_or_explicit(&((struct ts_series *)(uintptr_t)ref)->marks, (uint8_t)bits,
				 memory_order_relaxed);
}

/* Room for the record: creations (need_new bytes) then samples (db->mu held). */
static int reserve_record(struct ts_db *db, const struct ts_series_in *in, size_t n,
			  const struct prep *prep, size_t *need_new)
{
	size_t need = 4;
	*need_new = 4;
	for (size_t i = 0; i < n; i++)
		if (prep[i].s) {
			need += 12 + (size_t)in[i].n_samples * 16;
			if (!prep[i].s->logged)
				*need_new += 12 + prep[i].s->packed_len;
		}
	return ts_grow((void **)&db->rec, &db->rec_cap, *need_new + need, 1);
}

/* Counts a rejected sample in res and p (db->mu held). Returns 0, or cls itself when it
 * is not a rejection but an error (a head chunk failed to decode). */
static int reject_sample(struct ts_append_result *res, struct prep *p, size_t i, int cls, int64_t t)
{
	switch (cls) {
	case TS_EOUTOFORDER: res->n_out_of_order++; break;
	case TS_EDUPLICATE: res->n_conflict++; break;
	case TS_ETOOOLD: res->n_too_old++; break;
	case TS_ETOOFUTURE: res->n_too_future++; break;
	default: return cls;
	}
	if (!p->rc)
		p->rc = cls;
	if (!res->first_err) {
		res->first_err = cls;
		res->first_err_series = i;
		snprintf(res->first_err_msg, sizeof res->first_err_msg, "%s: timestamp %lld",
			 ts_strerror(cls), (long long)t);
	}
	return 0;
}

/* Classifies the samples of entry i into the samples section r at *off (db->mu held):
 * kept ones are written after a 12-byte header, which is dropped when none is kept.
 * *n_ser counts entries with a kept sample. Returns 0 or a decode error. */
static int build_entry(struct ts_db *db, const struct ts_series_in *in, size_t i, struct prep *p,
		       struct ts_append_result *res, int64_t now, uint64_t epoch, uint8_t *r,
		       size_t *off, uint32_t *n_ser)
{
	struct ts_series *s = p->s;
	size_t hdr = *off;
	uint32_t k = 0;
	*off += 12;
	if (s->b_epoch != epoch) {
		s->b_epoch = epoch;
		s->b_max_t = s->max_t;
	}
	for (uint32_t j = 0; j < in->n_samples; j++) {
		int64_t t = in->samples[j].t_ms;
		uint64_t v;
		memcpy(&v, &in->samples[j].v, 8);
		int cls = classify(db, s, r + hdr + 12, k, t, v, now);
		if (cls == 2 && p->in_order)
			cls = TS_EOUTOFORDER;
		if (cls == 1) {
			res->n_duplicate++;
			continue;
		}
		if (cls < 0) {
			int rc = reject_sample(res, p, i, cls, t);
			if (rc)
				return rc;
			continue;
		}
		if (cls == 0)
			s->b_max_t = t;
		ts_format_put_le64(r + *off, (uint64_t)t);
		ts_format_put_le64(r + *off + 8, v);
		*off += 16;
		k++;
	}
	if (k) {
		ts_format_put_le64(r + hdr, s->id);
		ts_format_put_le32(r + hdr + 8, k);
		(*n_ser)++;
		p->kept = 1;
	} else {
		*off = hdr;
	}
	return 0;
}

/* Writes the creations section at db->rec, for new series with a kept sample (each
 * once), and moves the samples section (samples_len bytes at db->rec + need_new) right
 * behind it. Returns the record's length (db->mu held). */
static size_t add_creations(struct ts_db *db, struct prep *prep, size_t n, size_t need_new,
			    size_t samples_len, uint32_t *n_new)
{
	uint8_t *c = db->rec;
	size_t off = 4;
	*n_new = 0;
	for (size_t i = 0; i < n; i++) {
		struct ts_series *s = prep[i].s;
		if (!s || !prep[i].kept || s->logged || s->b_epoch == (uint64_t)-1)
			continue;
		s->b_epoch = (uint64_t)-1; /* written; later entries of the same series skip */
		ts_format_put_le64(c + off, s->id);
		ts_format_put_le32(c + off + 8, s->packed_len);
		memcpy(c + off + 12, s->packed, s->packed_len);
		off += 12 + s->packed_len;
		(*n_new)++;
	}
	ts_format_put_le32(c, *n_new);
	memmove(c + off, db->rec + need_new, samples_len);
	return off + samples_len;
}

/* Applies a just-logged batch record to the heads (db->mu held). The record's series
 * section lists, in order, exactly the entries of prep marked kept, so their series
 * pointers are used rather than looking each id up again. */
static int apply_record(struct ts_db *db, const uint8_t *p, const struct prep *prep, size_t n,
			uint64_t lsn, struct ts_append_result *res)
{
	size_t off = 4;
	uint32_t n_new = ts_format_get_le32(p);
	for (uint32_t i = 0; i < n_new; i++)
		off += 12 + ts_format_get_le32(p + off + 8);
	off += 4; /* n_series */
	for (size_t i = 0; i < n; i++) {
		if (!prep[i].kept)
			continue;
		uint32_t k = ts_format_get_le32(p + off + 8);
		off += 12;
		int added = ts__head_apply(db, prep[i].s, p + off, k, lsn);
		if (added < 0)
			return added;
		res->n_appended += (uint64_t)added;
		off += (size_t)k * 16;
	}
	return 0;
}

/* After the record is logged and applied: its new series are logged, and listed for the
 * index (db->mu held). Returns 0 or TS_EIO (the db then refuses writes). */
static int note_new_series(struct ts_db *db, struct prep *prep, size_t n,
			   struct ts_append_result *res)
{
	for (size_t i = 0; i < n; i++) {
		struct ts_series *s = prep[i].s;
		if (s && prep[i].kept && !s->logged) {
			s->logged = 1;
			res->n_new_series++;
			if (ts__series_unindexed_add(db, s)) {
				/* The flusher would never index it: reopen rebuilds the list. */
				ts_log(TS_LOG_ERROR, "out of memory listing a new series: refusing "
						     "writes until the database is reopened");
				return db->wal_err = TS_EIO;
			}
		}
	}
	return 0;
}

/* Writes the record of len bytes at db->rec to the WAL, then applies it (db->mu held).
 * *wrote is set once the record is in the WAL. */
static int log_and_apply(struct ts_db *db, size_t len, struct prep *prep, size_t n,
			 struct ts_append_result *res, uint64_t *lsn, int *wrote)
{
	int w = ts_wal_append(db->wal, TS_FORMAT_WAL_REC_BATCH, db->rec, len, lsn);
	db->wal_full = w == -ENOSPC;
	if (w == -ENOMEM || w == -ENOSPC)
		return w; /* nothing was written and nothing applied; the log stays usable */
	if (w) {
		db->wal_err = TS_EIO;
		ts_log(TS_LOG_ERROR, "wal append failed (%s): refusing further writes",
		       ts_strerror(w));
		return TS_EIO;
	}
	*wrote = 1;
	int rc = apply_record(db, db->rec, prep, n, *lsn, res);
	if (rc) {
		rc = db->wal_err = TS_EIO;
		ts_log(TS_LOG_ERROR,
		       "applying a logged batch failed (%s): refusing writes "
		       "until the database is reopened",
		       ts_strerror(rc));
		return rc;
	}
	return note_new_series(db, prep, n, res);
}

/* Phase 2, under the append mutex: classify, log, apply. */
static int append_locked(struct ts_db *db, const struct ts_series_in *in, size_t n,
			 struct prep *prep, struct ts_append_result *res, int64_t now,
			 uint64_t *lsn, int *wrote)
{
	if (db->wal_err || db->closing)
		return db->wal_err ? db->wal_err : TS_ECLOSED;
	int we = atomic_load(&db->writer_err);
	if (we)
		return we; /* flushes fail: refuse until one succeeds (writer.c) */
	/* A series gc.c removed since phase 1 resolved it: its labels name another now. */
	for (size_t i = 0; i < n; i++) {
		int rc = prep[i].s && prep[i].s->dead ? ts__series_revive(db, prep[i].s, &prep[i].s)
						      : 0;
		if (rc)
			return rc;
	}
	/* New series within the series limits, or refused whole (TS_ELIMIT). */
	if (db->o.max_series || db->o.max_series_per_metric || db->o.max_series_per_hidden ||
	    db->o.new_series_per_minute_per_hidden)
		for (size_t i = 0; i < n; i++) {
			struct ts_series *ns = prep[i].s;
			int which;
			char why[sizeof res->first_err_msg];
			if (!ns || ns->logged)
				continue;
			int lrc = ts__limits_take(db, ns, &which, why, sizeof why);
			if (lrc == -ENOMEM)
				return lrc;
			if (!lrc)
				continue;
			prep[i].s = NULL;
			prep[i].rc = lrc;
			if (which == 1)
				res->n_limited_series++;
			else if (which == 2)
				res->n_limited_series_metric++;
			else if (which == 3)
				res->n_limited_series_hidden++;
			else
				res->n_limited_series_rate++;
			if (!res->first_err) {
				res->first_err = lrc;
				res->first_err_series = i;
				snprintf(res->first_err_msg, sizeof res->first_err_msg, "%s", why);
			}
		}
	size_t need_new;
	int rc = reserve_record(db, in, n, prep, &need_new);
	if (rc)
		return rc;
	/* The samples section is built first, at the end of the buffer, because a new
	 * series is logged (and so becomes visible) only if one of its samples is kept. */
	uint8_t *r = db->rec + need_new;
	size_t off = 4;
	uint32_t n_new, n_ser = 0;
	uint64_t epoch = ++db->epoch;
	for (size_t i = 0; i < n; i++) {
		if (prep[i].s &&
		    (rc = build_entry(db, &in[i], i, &prep[i], res, now, epoch, r, &off, &n_ser)))
			return rc;
	}
	ts_format_put_le32(r, n_ser);
	/* Creations, for new series with a kept sample (each once). */
	size_t len = add_creations(db, prep, n, need_new, off, &n_new);
	if (!n_new && !n_ser)
		return 0;
	return log_and_apply(db, len, prep, n, res, lsn, wrote);
}

int ts_db_append(struct ts_db *db, const struct ts_series_in *in, size_t n,
		 struct ts_append_result *res, int *series_rc)
{
	return ts_db_append_flags(db, in, n, NULL, res, series_rc);
}

int ts_db_append_flags(struct ts_db *db, const struct ts_series_in *in, size_t n,
		       const uint32_t *flags, struct ts_append_result *res, int *series_rc)
{
	return ts_db_append_refs(db, in, n, flags, NULL, res, series_rc);
}

int ts_db_append_refs(struct ts_db *db, const struct ts_series_in *in, size_t n,
		      const uint32_t *flags, ts_series_ref *refs, struct ts_append_result *res,
		      int *series_rc)
{
	int rc = 0;
	struct ts_append_result local;
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (n == 0)
		return 0;

	/* Phase 1, in parallel with other appenders: canonical labels -> series. */
	struct prep *prep = ts_calloc(n, sizeof *prep);
	for (size_t i = 0; prep && flags && i < n; i++)
		prep[i].in_order = (flags[i] & TS_APPEND_IN_ORDER) != 0;
	rc = prep ? resolve_series(db, in, n, refs, prep, res) : -ENOMEM;
	if (rc)
		goto out;

	/* Phase 2, under the append mutex: classify, log, apply. */
	int64_t now = ts_wall_ms();
	uint64_t lsn = 0;
	int wrote = 0;
	pthread_mutex_lock(&db->mu);
	rc = append_locked(db, in, n, prep, res, now, &lsn, &wrote);
	/* New series counted by the limits but not created (every sample refused). */
	for (size_t i = 0; i < n; i++)
		if (prep[i].s && prep[i].s->limit_counted && !prep[i].s->logged)
			ts__limits_release(db, prep[i].s);
	pthread_mutex_unlock(&db->mu);
	if (rc && !wrote)
		goto out; /* nothing was logged */
	atomic_fetch_add(&db->n_samples, res->n_appended);
	/* Outside the mutex: the durability wait (group commit). */
	if (wrote && rc == 0) {
		if (ts_wal_commit(db->wal, lsn))
			rc = TS_EIO;
	}
	if (series_rc)
		for (size_t i = 0; i < n; i++)
			series_rc[i] = prep[i].rc;
	/* Revived series (gc.c) have a new struct: the caller's ref follows it. */
	for (size_t i = 0; refs && i < n; i++)
		if (prep[i].s)
			refs[i] = (ts_series_ref)(uintptr_t)prep[i].s;
out:
	ts_free(prep);
	return rc;
}

/* ---- open / close ---- */

static int lock_dir(const char *dir, int *fd_out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_LOCK_FILE, dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? TS_EBUSY : -e;
	}
	*fd_out = fd;
	return 0;
}

static void db_free(struct ts_db *db);

/* Opens the WAL and replays it from the checkpoint's LSN. */
static int recover_wal(struct ts_db *db, uint64_t ckpt)
{
	char wdir[4096];
	snprintf(wdir, sizeof wdir, "%s/" TS_FORMAT_WAL_DIR, db->dir);
	struct ts_wal_opts wo = { .sync = db->o.sync,
				  .interval_ms = db->o.sync_interval_ms,
				  .segment_bytes = 64u << 20,
				  .compress = TS_WAL_COMPRESS_ZSTD };
	int rc = ts_wal_open(wdir, &wo, &db->wal);
	if (rc)
		return rc;
	struct replay_ctx cx = { .db = db };
	rc = ts_wal_replay(db->wal, ckpt, replay_record, &cx);
	if (rc)
		return rc;
	ts_log(TS_LOG_INFO,
	       "opened %s: %llu series, replayed %llu WAL records (%llu samples, "
	       "%llu already checkpointed) from lsn %llu",
	       db->dir, (unsigned long long)(atomic_load(&db->next_id) - 1),
	       (unsigned long long)cx.n_records, (unsigned long long)cx.n_samples,
	       (unsigned long long)cx.n_skipped, (unsigned long long)ckpt);
	return 0;
}

/* Options with their defaults filled in, and the label limits they imply. */
static void set_options(struct ts_db *db, const struct ts_db_opts *opts)
{
	if (opts)
		db->o = *opts;
	if (!db->o.partition_ms)
		db->o.partition_ms = TS_FORMAT_PARTITION_MS_DEFAULT;
	if (!db->o.checkpoint_wal_bytes)
		db->o.checkpoint_wal_bytes = 32u << 20;
	if (!db->o.checkpoint_interval_ms)
		db->o.checkpoint_interval_ms = 300000;
	if (!db->o.flush_interval_ms)
		db->o.flush_interval_ms = 1000;
	db->max_open = db->o.max_open_partitions ? db->o.max_open_partitions : 64;
	db->lim.max_labels = db->o.max_labels ? db->o.max_labels : 64;
	/* Longer names would not fit a postings key (format.h). */
	db->lim.max_name_len = db->o.max_label_name_len &&
					       db->o.max_label_name_len < TS_FORMAT_LABEL_NAME_MAX
				       ? db->o.max_label_name_len
				       : TS_FORMAT_LABEL_NAME_MAX;
	db->lim.max_value_len = db->o.max_label_value_len ? db->o.max_label_value_len : 4096;
	if (db->o.hidden_label && strlen(db->o.hidden_label) < sizeof db->hidden) {
		snprintf(db->hidden, sizeof db->hidden, "%s", db->o.hidden_label);
		db->hidden_len = (uint32_t)strlen(db->hidden);
	}
	db->o.hidden_label = NULL; /* borrowed for the call */
}

/* Durations added to or taken from timestamps stay within the storable range, so the
 * arithmetic on them cannot overflow (format.h). */
static int options_valid(const struct ts_db_opts *o)
{
	return !o || (o->partition_ms >= 0 && o->partition_ms <= TS_FORMAT_PARTITION_MS_MAX &&
		      o->ooo_window_ms >= 0 && o->ooo_window_ms <= TS_FORMAT_MAX_T_MS &&
		      o->max_future_ms >= 0 && o->max_future_ms <= TS_FORMAT_MAX_T_MS &&
		      o->retention_ms >= 0 && o->retention_ms <= TS_FORMAT_MAX_T_MS &&
		      o->retention_5m_ms >= 0 && o->retention_5m_ms <= TS_FORMAT_MAX_T_MS &&
		      o->retention_1h_ms >= 0 && o->retention_1h_ms <= TS_FORMAT_MAX_T_MS);
}

int ts_db_open(const char *dir, const struct ts_db_opts *opts, struct ts_db **out)
{
	int rc;
	if (!options_valid(opts))
		return -EINVAL;
	struct ts_db *db = ts_calloc(1, sizeof *db);
	if (!db)
		return -ENOMEM;
	set_options(db, opts);
	db->max_t_seen = INT64_MIN;
	db->min_t_seen = INT64_MAX;
	ts__registry_init(db);
	pthread_mutex_init(&db->mu, NULL);
	pthread_rwlock_init(&db->parts_mu, NULL);
	pthread_mutex_init(&db->wmu, NULL);
	pthread_mutex_init(&db->fmu, NULL);
	pthread_mutex_init(&db->open_mu, NULL);
	pthread_mutex_init(&db->md_mu, NULL);
	pthread_mutex_init(&db->tomb_mu, NULL);
	pthread_mutex_init(&db->rules_mu, NULL);
	pthread_cond_init(&db->wcond, NULL);
	db->lock_fd = -1;

	db->dir = ts_strdup(dir);
	if (!db->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	rc = lock_dir(dir, &db->lock_fd);
	if (rc)
		goto fail;
	rc = ts__cold_cache_new(db->o.cold_cache_bytes ? db->o.cold_cache_bytes : 64u << 20,
				&db->cold_cache);
	if (rc)
		goto fail;
	rc = ts__index_open(db);
	if (rc)
		goto fail;
	uint64_t ckpt = 0;
	rc = ts__index_load(db, &ckpt);
	if (rc)
		goto fail;
	/* Before replay and before any read: replayed samples may be deleted ones. */
	rc = ts__tombs_load(db);
	if (rc)
		goto fail;
	rc = ts__parts_open_existing(db);
	if (rc)
		goto fail;

	rc = recover_wal(db, ckpt);
	if (rc)
		goto fail;
	pthread_mutex_lock(&db->mu);
	rc = ts__limits_init(db);
	pthread_mutex_unlock(&db->mu);
	if (rc)
		goto fail;
	/* Retention at start-up, before anything is served: the rules first, so the
	 * partitions they keep are known before the database's retention acts. */
	if (opts && opts->n_retention_rules) {
		char msg[256] = "";
		rc = ts__rules_new(db, opts->retention_rules, opts->n_retention_rules, &db->rules,
				   msg, sizeof msg);
		if (rc) {
			ts_log(TS_LOG_ERROR, "retention rules: %s", msg[0] ? msg : ts_strerror(rc));
			goto fail;
		}
		atomic_store(&db->n_rules, opts->n_retention_rules);
	}
	pthread_mutex_lock(&db->fmu);
	ts__rules_pass(db, ts_wall_ms());
	ts__parts_expire(db, ts_wall_ms());
	ts__retention_pass(db, ts_wall_ms());
	ts__series_gc(db);
	pthread_mutex_unlock(&db->fmu);
	rc = ts__writer_start(db);
	if (rc)
		goto fail;
	*out = db;
	return 0;
fail:
	db_free(db);
	return rc;
}

/* Frees everything; the writer must be stopped. Used by close and by a failed open. */
static void db_free(struct ts_db *db)
{
	ts_wal_close(db->wal);
	ts__parts_close(db);
	ts_env_close(db->index);
	ts__registry_free(db);
	ts__limits_free(db);
	ts__cold_cache_free(db->cold_cache);
	ts_free(db->rec);
	ts_free(db->gc_ids);
	ts__rules_free(db->rules);
	ts__rules_free(db->rules_next);
	pthread_mutex_destroy(&db->rules_mu);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	pthread_mutex_destroy(&db->mu);
	pthread_rwlock_destroy(&db->parts_mu);
	pthread_mutex_destroy(&db->wmu);
	pthread_mutex_destroy(&db->fmu);
	pthread_mutex_destroy(&db->open_mu);
	ts__md_free(db);
	pthread_mutex_destroy(&db->md_mu);
	ts__tombs_put(db->tombs);
	pthread_mutex_destroy(&db->tomb_mu);
	pthread_cond_destroy(&db->wcond);
	ts_free(db->dir);
	ts_free(db);
}

/* Seals every open head (close): its chunk joins the queue the final checkpoint writes. */
static int seal_all(struct ts_db *db)
{
	int rc = 0;
	uint64_t end = atomic_load(&db->next_id);
	pthread_mutex_lock(&db->mu);
	for (uint64_t id = 1; id < end && rc == 0; id++) {
		struct ts_series *s = ts__series_by_id(db, id);
		if (!s || (!s->enc.n && !(s->ooo && s->ooo->n)))
			continue;
		if ((rc = ts__head_seal(db, s)) == 0) {
			ts_xor_enc_fini(&s->enc);
			ts_xor_enc_init(&s->enc);
			s->snap_dirty = 1;
		}
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

int ts_db_close(struct ts_db *db)
{
	if (!db)
		return 0;
	pthread_mutex_lock(&db->mu);
	db->closing = 1;
	pthread_mutex_unlock(&db->mu);
	ts__writer_stop(db);
	/* A final checkpoint: every head is sealed into a chunk, chunks are committed, head
	 * rows shrink to what recovery needs, the WAL is cut. Then the partitions written
	 * since open are converted to cold blocks, so a clean stop leaves data at rest in
	 * its compact form. A failed conversion leaves the data as hot chunks, intact. */
	int rc = db->wal_err;
	if (rc == 0 && (rc = seal_all(db)) == 0 && (rc = ts__writer_flush(db, 1)) == 0) {
		pthread_mutex_lock(&db->fmu);
		ts__compact_written(db);
		ts__index_compact(db);
		pthread_mutex_unlock(&db->fmu);
	}
	db_free(db);
	return rc;
}

static void count_head(void *arg, const struct ts_series *s)
{
	struct ts_db_stats *out = arg;
	out->n_series += !s->dead;
	out->series_bytes += sizeof *s + s->packed_len;
	for (const struct ts_chunk_mem *c = s->pending; c; c = c->next_series)
		out->pending_bytes += sizeof *c + c->len;
	if (s->ooo)
		out->ooo_bytes += sizeof *s->ooo + (uint64_t)s->ooo->cap * sizeof s->ooo->s[0];
	if (s->enc.n) {
		out->n_head_chunks++;
		out->head_bytes += s->enc.cap;
	}
}

void ts_db_stats(struct ts_db *db, struct ts_db_stats *out)
{
	memset(out, 0, sizeof *out);
	out->n_samples_appended = atomic_load(&db->n_samples);
	out->n_chunks_flushed = atomic_load(&db->n_flushed);
	out->n_checkpoints = atomic_load(&db->n_checkpoints);
	out->n_flush_failures = atomic_load(&db->n_flush_failures);
	out->n_parts_removed = atomic_load(&db->n_parts_removed);
	for (int k = 0; k < 3; k++)
		out->n_parts_expired[k] = atomic_load(&db->n_parts_expired[k]);
	out->n_rule_deletions = atomic_load(&db->n_rule_deletions);
	out->n_series_removed = atomic_load(&db->n_series_removed);
	out->n_retention_rules = atomic_load(&db->n_rules);
	out->n_tier_builds = atomic_load(&db->n_tier_builds);
	out->write_err = ts_db_writable(db);
	pthread_mutex_lock(&db->mu);
	ts__series_each(db, count_head, out);
	out->registry_bytes = ts__registry_bytes(db);
	pthread_mutex_unlock(&db->mu);
	size_t cache_mem;
	ts__cold_cache_stats(db->cold_cache, &out->block_cache_hits, &out->block_cache_misses,
			     &cache_mem);
	out->block_cache_bytes = cache_mem;
	uint64_t map, used;
	ts_env_size(db->index, &map, &used);
	out->index_bytes = used;
	pthread_rwlock_rdlock(&db->parts_mu);
	out->n_partitions = db->n_parts;
	for (size_t i = 0; i < db->n_parts; i++)
		out->partitions_bytes += ts__part_bytes(db, db->parts[i]);
	pthread_mutex_lock(&db->open_mu);
	out->n_open_partitions = db->n_open;
	pthread_mutex_unlock(&db->open_mu);
	pthread_rwlock_unlock(&db->parts_mu);
	ts_wal_stats(db->wal, &out->wal);
}

void ts_db_time_range(struct ts_db *db, int64_t *mint, int64_t *maxt)
{
	pthread_mutex_lock(&db->mu);
	*mint = db->min_t_seen;
	*maxt = db->max_t_seen;
	pthread_mutex_unlock(&db->mu);
	pthread_rwlock_rdlock(&db->parts_mu);
	if (db->n_parts) {
		if (db->parts[0]->start < *mint)
			*mint = db->parts[0]->start;
		/* The newest sample is the head's newest, restored at open; only a store
		 * whose every series went idle before it was reopened knows no better than
		 * its newest partition's end. */
		if (*maxt == INT64_MIN)
			*maxt = db->parts[db->n_parts - 1]->end;
	}
	pthread_rwlock_unlock(&db->parts_mu);
}

int ts_db_partition_stats(struct ts_db *db, struct ts_part_stat **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&db->parts_mu);
	size_t np = db->n_parts;
	struct ts_partition **parts = ts_malloc((np ? np : 1) * sizeof *parts);
	struct ts_part_stat *st = ts_calloc(np ? np : 1, sizeof *st);
	if (!parts || !st) {
		pthread_rwlock_unlock(&db->parts_mu);
		ts_free(parts);
		ts_free(st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < np; i++) {
		parts[i] = db->parts[i];
		ts__part_hold(parts[i]); /* retention may drop it from the array meanwhile */
	}
	pthread_rwlock_unlock(&db->parts_mu);
	for (size_t i = 0; i < np; i++) {
		struct ts_partition *p = parts[i];
		st[i].start_ms = p->start;
		st[i].end_ms = p->end;
		/* State as it was before this call opened anything. */
		pthread_mutex_lock(&db->open_mu);
		st[i].open = p->env != NULL;
		pthread_mutex_unlock(&db->open_mu);
		st[i].compacted = atomic_load(&p->compacted);
		if (ts__part_pin(db, p, 0) == 0) {
			struct ts_rtxn *r;
			struct ts__tiers_rec rec;
			if (ts_env_read_begin(p->env, &r) == 0) {
				if (ts__tiers_read(r, p->meta, &rec) == 0 && rec.have) {
					st[i].has_tiers = 1;
					for (int k = 0; k < 2; k++) {
						st[i].tier_rows[k] = rec.rows[k];
						st[i].tier_bytes[k] = rec.bytes[k];
					}
				}
				ts_env_read_end(r);
			}
			ts__part_unpin(db, p);
		}
		st[i].bytes = ts__part_bytes(db, p);
		ts__part_unref(db, p);
	}
	ts_free(parts);
	*out = st;
	*n = np;
	return 0;
}

int ts_db_writable(struct ts_db *db)
{
	pthread_mutex_lock(&db->mu);
	int rc = db->wal_err ? db->wal_err : db->closing ? TS_ECLOSED : db->wal_full ? -ENOSPC : 0;
	pthread_mutex_unlock(&db->mu);
	return rc ? rc : atomic_load(&db->writer_err);
}

int ts_db_checkpoint(struct ts_db *db)
{
	return ts__writer_flush(db, 1);
}
