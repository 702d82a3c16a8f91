/*
 * head.c - the open ("head") chunk of each series: classifying incoming samples,
 * appending in-order ones to the XOR encoder, buffering out-of-order ones, cutting
 * chunks, and the head snapshot written at checkpoints.
 *
 * Every function here runs with db->mu held (see db_int.h).
 *
 * Cut rules: an open chunk is sealed before a sample that would make it exceed
 * TS_CHUNK_SAMPLES samples, risk passing TS_CHUNK_MAX_BYTES, or cross a partition
 * boundary. Sealed chunks go to the series' pending list and the global queue, from which
 * the writer thread commits them to the partition env.
 *
 * Out-of-order samples (older than the series' newest, inside opts.ooo_window_ms) are
 * kept sorted in a small buffer and cut into chunks flagged TS_CHUNK_FLAG_OVERLAP; queries
 * merge them. Exact resends are recognised against the open chunk, the pending chunks and
 * the OOO buffer, and, for timestamps older than the open chunk, against the chunks
 * already committed to LMDB (stored_find), so a resend is idempotent and a conflicting
 * value is rejected however old the original is.
 *
 * Snapshot layout: format.h (head snapshot).
 *
 * Uses: partition.c (partition boundaries, chunks already stored), format.h, storage/.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

/* Looks for timestamp t in a chunk; 1 found (*v set), 0 absent, <0 corrupt. */
static int chunk_find(const uint8_t *buf, size_t len, int64_t t, uint64_t *v)
{
	struct ts_xor_it it;
	int rc = ts_xor_it_init(&it, buf, len);
	if (rc)
		return rc;
	rc = ts_xor_seek(&it, t);
	if (rc == 1 && it.t == t) {
		*v = it.v;
		return 1;
	}
	return rc < 0 ? rc : 0;
}

static int ooo_find(const struct ts_ooo *o, int64_t t, uint32_t *pos)
{
	uint32_t lo = 0, hi = o ? o->n : 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (o->s[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return o && lo < o->n && o->s[lo].t == t;
}

struct stored_find {
	int64_t t;
	uint64_t *v;
};

static int stored_find_chunk(void *arg, const struct ts_chunk_hdr *h, const uint8_t *payload)
{
	const struct stored_find *f = arg;
	return f->t <= h->max_t ? chunk_find(payload, h->payload_len, f->t, f->v) : 0;
}

static int stored_find_cold(void *arg, const int64_t *t, const uint64_t *v, uint32_t n)
{
	const struct stored_find *f = arg;
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t[mid] < f->t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && t[lo] == f->t) {
		*f->v = v[lo];
		return 1;
	}
	return 0;
}

/* Looks for timestamp t among the series' chunks already committed to its partition.
 * Only out-of-order samples not found in memory come here, so the LMDB read (under
 * db->mu) is rare. No thread holds an LMDB snapshot while waiting for db->mu, so this
 * cannot deadlock with a map resize. 1 found (*v set), 0 absent, <0 error. */
static int stored_find(struct ts_db *db, const struct ts_series *s, int64_t t, uint64_t *v)
{
	int64_t start = ts__partition_start(db, t);
	struct ts_partition *part = ts__part_ref(db, start);
	if (!part)
		return 0;
	struct ts_rtxn *r;
	int rc = ts__part_pin(db, part, 0);
	if (rc == TS_ENOTFOUND)
		rc = 0; /* never written: nothing stored there */
	else if (rc == 0) {
		rc = ts_env_read_begin(part->env, &r);
		if (rc == 0) {
			struct stored_find f = { t, v };
			rc = ts__part_scan(r, part->chunks, s->id, start, t, stored_find_chunk, &f);
			struct ts__gen *gens = NULL;
			size_t n_gens = 0;
			if (rc == 0 &&
			    (rc = ts__cold_gens_read(r, part->meta, &gens, &n_gens)) == 0 && n_gens)
				rc = ts__cold_scan(db, r, part->cold, part->start, gens, n_gens,
						   s->id, t, t, NULL, stored_find_cold, &f);
			ts_free(gens);
			ts_env_read_end(r);
		}
		ts__part_unpin(db, part);
	}
	ts__part_unref(db, part);
	return rc;
}

int ts__head_check(struct ts_db *db, struct ts_series *s, int64_t t, uint64_t v, int64_t now_ms)
{
	if (now_ms) {
		if (db->o.max_future_ms && t > now_ms + db->o.max_future_ms)
			return TS_ETOOFUTURE;
		if (db->o.retention_ms && t < now_ms - db->o.retention_ms)
			return TS_ETOOOLD;
	}
	if (s->max_t == INT64_MIN || t > s->max_t)
		return 0;

	/* Not newer than what we have: an exact resend, a conflict, or out-of-order. */
	uint64_t old = 0;
	int found = 0;
	if (s->enc.n && t >= s->head_min_t)
		found = chunk_find(s->enc.buf, ts_xor_enc_bytes(&s->enc), t, &old);
	for (struct ts_chunk_mem *c = s->pending; !found && c; c = c->next_series)
		if (t >= c->min_t && t <= c->max_t)
			found = chunk_find(c->data, c->len, t, &old);
	uint32_t pos;
	if (!found && ooo_find(s->ooo, t, &pos)) {
		old = s->ooo->s[pos].v;
		found = 1;
	}
	/* Stored data is looked up where memory cannot answer for it: before the open
	 * chunk, or inside its span once out-of-order samples there were cut into a chunk
	 * (which a flush then moved to LMDB) or when the head was restored (what was cut
	 * before is not known). */
	if (found == 0 && (s->enc.n == 0 || t < s->head_min_t || s->ooo_spill))
		found = stored_find(db, s, t, &old);
	if (found < 0)
		return found;
	if (found)
		return old == v ? 1 : TS_EDUPLICATE;
	if (db->o.ooo_window_ms <= 0)
		return TS_EOUTOFORDER;
	if (t < s->max_t - db->o.ooo_window_ms)
		return TS_ETOOOLD;
	return 2;
}

static void enqueue(struct ts_db *db, struct ts_series *s, struct ts_chunk_mem *c)
{
	c->series = s;
	c->next_series = NULL;
	c->next_global = NULL;
	if (s->pending_tail)
		s->pending_tail->next_series = c;
	else
		s->pending = c;
	s->pending_tail = c;
	if (db->q_tail)
		db->q_tail->next_global = c;
	else
		db->q_head = c;
	db->q_tail = c;
}

static struct ts_chunk_mem *chunk_new(const uint8_t *data, size_t len, int64_t min_t, int64_t max_t,
				      uint32_t n, uint16_t flags)
{
	struct ts_chunk_mem *c = ts_malloc(sizeof *c + len);
	if (!c)
		return NULL;
	memcpy(c->data, data, len);
	c->len = (uint32_t)len;
	c->min_t = min_t;
	c->max_t = max_t;
	c->n_samples = n;
	c->flags = flags;
	return c;
}

/* The sealed chunk takes the encoder's buffer, shrunk to fit behind its header, instead
 * of a copy, and the next chunk starts small. Series of one scrape seal in the same
 * round: with a copy, every one of them held its chunk twice (the sealed copy and the
 * encoder's full-size buffer) until the writer committed the round, which made the
 * sealing round the peak of memory (measured at 101k series: 41 MB open chunk buffers
 * beside 41 MB sealed ones). */
static int seal_head(struct ts_db *db, struct ts_series *s)
{
	if (!s->enc.n)
		return 0;
	size_t len = ts_xor_enc_bytes(&s->enc);
	struct ts_chunk_mem *c = ts_realloc(s->enc.buf, sizeof *c + len);
	if (!c)
		return -ENOMEM; /* the encoder's buffer is untouched */
	memmove(c->data, c, len);
	c->len = (uint32_t)len;
	c->min_t = s->head_min_t;
	c->max_t = s->enc.t;
	c->n_samples = s->enc.n;
	c->flags = 0;
	ts_xor_enc_init(&s->enc);
	enqueue(db, s, c);
	return 0;
}

/* Encodes ooo samples [from, to) as one chunk. */
static int cut_ooo_range(struct ts_db *db, struct ts_series *s, uint32_t from, uint32_t to)
{
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	int rc = 0;
	for (uint32_t i = from; i < to; i++) {
		rc = ts_xor_append(&e, s->ooo->s[i].t, s->ooo->s[i].v);
		if (rc)
			goto out;
	}
	struct ts_chunk_mem *c = chunk_new(e.buf, ts_xor_enc_bytes(&e), s->ooo->s[from].t,
					   s->ooo->s[to - 1].t, to - from, TS_CHUNK_FLAG_OVERLAP);
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	enqueue(db, s, c);
	s->ooo_spill = 1;
out:
	ts_xor_enc_fini(&e);
	return rc;
}

static int cut_ooo(struct ts_db *db, struct ts_series *s)
{
	if (!s->ooo || !s->ooo->n)
		return 0;
	/* One chunk per partition the buffered samples touch. */
	uint32_t from = 0;
	for (uint32_t i = 1; i <= s->ooo->n; i++) {
		if (i == s->ooo->n || ts__partition_start(db, s->ooo->s[i].t) !=
					      ts__partition_start(db, s->ooo->s[from].t)) {
			int rc = cut_ooo_range(db, s, from, i);
			if (rc)
				return rc; /* the buffer is untouched; the cut is retried later */
			from = i;
		}
	}
	s->ooo->n = 0;
	return 0;
}

int ts__head_seal(struct ts_db *db, struct ts_series *s)
{
	int rc = seal_head(db, s);
	if (rc)
		return rc;
	return cut_ooo(db, s);
}

void ts__head_seal_idle(struct ts_db *db, struct ts_series *s, int64_t newest)
{
	if (s->enc.n && db->max_t_seen != INT64_MIN && s->max_t < newest - TS_IDLE_MS &&
	    ts__head_seal(db, s) == 0)
		s->snap_dirty = 1;
}

static int ooo_insert(struct ts_db *db, struct ts_series *s, int64_t t, uint64_t v)
{
	uint32_t pos;
	if (ooo_find(s->ooo, t, &pos))
		return 0; /* already buffered: the first value stands */
	if (!s->ooo || s->ooo->n == s->ooo->cap) {
		uint32_t cap = s->ooo ? s->ooo->cap * 2 : 4;
		struct ts_ooo *o = ts_realloc(s->ooo, sizeof *o + cap * sizeof o->s[0]);
		if (!o)
			return -ENOMEM;
		if (!s->ooo)
			o->n = 0;
		o->cap = cap;
		s->ooo = o;
	}
	memmove(&s->ooo->s[pos + 1], &s->ooo->s[pos], (s->ooo->n - pos) * sizeof s->ooo->s[0]);
	s->ooo->s[pos].t = t;
	s->ooo->s[pos].v = v;
	s->ooo->n++;
	if (s->ooo->n >= TS_OOO_CUT)
		return cut_ooo(db, s);
	return 0;
}

static int append_in_order(struct ts_db *db, struct ts_series *s, int64_t t, uint64_t v)
{
	if (s->enc.n && (s->enc.n >= TS_CHUNK_SAMPLES ||
			 ts_xor_enc_bytes(&s->enc) + TS_XOR_MAX_SAMPLE_BYTES > TS_CHUNK_MAX_BYTES ||
			 ts__partition_start(db, t) != ts__partition_start(db, s->head_min_t))) {
		int rc = seal_head(db, s);
		if (rc)
			return rc;
	}
	int rc = ts_xor_append(&s->enc, t, v);
	if (rc)
		return rc;
	if (s->enc.n == 1) {
		s->head_min_t = t;
		s->ooo_spill = 0; /* a new chunk: nothing stored is newer than its start */
	}
	s->max_t = t;
	return 0;
}

/* Adds a sample of class `cls` (from ts__head_check: 0 in order, 2 out of order). */
static int head_add(struct ts_db *db, struct ts_series *s, int64_t t, uint64_t v, int cls)
{
	return cls == 0 ? append_in_order(db, s, t, v) : ooo_insert(db, s, t, v);
}

int ts__head_apply(struct ts_db *db, struct ts_series *s, const uint8_t *p, uint32_t n,
		   uint64_t lsn)
{
	int added = 0;
	for (uint32_t i = 0; i < n; i++) {
		int64_t t;
		uint64_t v;
		memcpy(&t, p + 16 * (size_t)i, 8);
		memcpy(&v, p + 16 * (size_t)i + 8, 8);
		if (t < TS_FORMAT_MIN_T_MS || t > TS_FORMAT_MAX_T_MS) {
			/* Only a log written before appends were bounded holds these: no
			 * partition can hold them (its bounds would overflow). */
			ts_log(TS_LOG_WARN,
			       "wal: lsn %llu: series %llu: dropping a sample at %lld ms, "
			       "outside the storable range",
			       (unsigned long long)lsn, (unsigned long long)s->id, (long long)t);
			continue;
		}
		/* These samples were accepted once: neither the wall clock nor today's
		 * out-of-order window may reject them now (recovery after a restart with other
		 * options must restore every acknowledged sample). Only exact resends, which
		 * are already held, are skipped. */
		int cls = ts__head_check(db, s, t, v, 0);
		if (cls < 0 && cls != TS_EDUPLICATE)
			cls = 2;
		if (cls == 0 || cls == 2) {
			int rc = head_add(db, s, t, v, cls);
			if (rc)
				return rc;
			added++;
			if (t < db->min_t_seen)
				db->min_t_seen = t;
		}
	}
	s->last_lsn = lsn;
	if (added) {
		s->snap_dirty = 1; /* its head row must be captured again */
		if (s->max_t > db->max_t_seen)
			db->max_t_seen = s->max_t;
	}
	return added;
}


static int snapshot_short(const struct ts_series *s)
{
	return s->enc.n == 0 && (!s->ooo || s->ooo->n == 0);
}

size_t ts__head_snapshot_len(const struct ts_series *s)
{
	if (snapshot_short(s))
		return TS_FORMAT_SNAP_SHORT_LEN;
	size_t chunk = s->enc.n ? ts_xor_enc_bytes(&s->enc) : 0;
	return TS_FORMAT_SNAP_FIXED + chunk + 4 +
	       (size_t)(s->ooo ? s->ooo->n : 0) * TS_FORMAT_SNAP_OOO_SAMPLE_LEN;
}

void ts__head_snapshot(const struct ts_series *s, uint8_t *p)
{
	if (snapshot_short(s)) {
		p[TS_FORMAT_SNAP_OFF_VERSION] = TS_FORMAT_SNAP_VERSION_SHORT;
		ts_format_put_le64(p + 1, s->last_lsn);
		ts_format_put_le64(p + 9, (uint64_t)s->max_t);
		return;
	}
	uint32_t chunk = s->enc.n ? (uint32_t)ts_xor_enc_bytes(&s->enc) : 0;
	p[TS_FORMAT_SNAP_OFF_VERSION] = TS_FORMAT_SNAP_VERSION;
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_LAST_LSN, s->last_lsn);
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_HEAD_MIN_T, (uint64_t)s->head_min_t);
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_MAX_T, (uint64_t)s->max_t);
	ts_format_put_le32(p + TS_FORMAT_SNAP_OFF_NBITS, s->enc.nbits);
	p[TS_FORMAT_SNAP_OFF_N] = (uint8_t)s->enc.n;
	p[TS_FORMAT_SNAP_OFF_N + 1] = (uint8_t)(s->enc.n >> 8);
	p[TS_FORMAT_SNAP_OFF_LEADING] = s->enc.leading;
	p[TS_FORMAT_SNAP_OFF_TRAILING] = s->enc.trailing;
	p[TS_FORMAT_SNAP_OFF_TAIL_PAD] = s->enc.tail_pad;
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_ENC_T, (uint64_t)s->enc.t);
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_ENC_T_DELTA, (uint64_t)s->enc.t_delta);
	ts_format_put_le64(p + TS_FORMAT_SNAP_OFF_ENC_V, s->enc.v);
	ts_format_put_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN, chunk);
	if (chunk)
		memcpy(p + TS_FORMAT_SNAP_FIXED, s->enc.buf, chunk);
	uint8_t *q = p + TS_FORMAT_SNAP_FIXED + chunk;
	uint32_t m = s->ooo ? s->ooo->n : 0;
	ts_format_put_le32(q, m);
	for (uint32_t i = 0; i < m; i++) {
		ts_format_put_le64(q + 4 + 16 * i, (uint64_t)s->ooo->s[i].t);
		ts_format_put_le64(q + 12 + 16 * i, s->ooo->s[i].v);
	}
}

int ts__head_restore(struct ts_series *s, const uint8_t *p, size_t len)
{
	struct ts_format_snap f;
	int rc = ts_format_snap_parse(p, len, &f);
	if (rc)
		return rc;
	if (f.chunk_len && ts_xor_count(f.chunk, f.chunk_len) != f.n)
		return TS_CORRUPT();
	ts__head_free(s);
	ts_xor_enc_init(&s->enc);
	if (f.chunk_len) {
		s->enc.buf = ts_malloc(f.chunk_len + 32);
		if (!s->enc.buf)
			return -ENOMEM;
		memcpy(s->enc.buf, f.chunk, f.chunk_len);
		memset(s->enc.buf + f.chunk_len, 0,
		       32); /* the encoder keeps bits past nbits zero */
		s->enc.cap = f.chunk_len + 32;
		s->enc.nbits = f.nbits;
		s->enc.n = f.n;
		s->enc.leading = f.leading;
		s->enc.trailing = f.trailing;
		s->enc.tail_pad = f.tail_pad;
		s->enc.t = f.enc_t;
		s->enc.t_delta = f.enc_t_delta;
		s->enc.v = f.enc_v;
	}
	s->last_lsn = f.last_lsn;
	s->snap_lsn = s->last_lsn;
	s->max_t_known = 1;
	s->ooo_spill = 1; /* what was cut out of order before the snapshot is not known */
	s->head_min_t = f.head_min_t;
	s->max_t = f.max_t;
	if (f.ooo_n) {
		s->ooo = ts_malloc(sizeof *s->ooo + f.ooo_n * sizeof s->ooo->s[0]);
		if (!s->ooo)
			return -ENOMEM;
		s->ooo->n = s->ooo->cap = f.ooo_n;
		for (uint32_t i = 0; i < f.ooo_n; i++) {
			s->ooo->s[i].t = (int64_t)ts_format_get_le64(f.ooo + 16 * i);
			s->ooo->s[i].v = ts_format_get_le64(f.ooo + 8 + 16 * i);
		}
	}
	return 0;
}

void ts__head_free(struct ts_series *s)
{
	ts_xor_enc_fini(&s->enc);
	ts_free(s->ooo);
	s->ooo = NULL;
	struct ts_chunk_mem *c = s->pending;
	while (c) {
		struct ts_chunk_mem *next = c->next_series;
		ts_free(c);
		c = next;
	}
	s->pending = s->pending_tail = NULL;
}
