/*
 * db.c - opening, recovering and closing a database, the series registry, and the
 * append path (see db_int.h for the locking model and head.c for sample rules).
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


/* ---- registry ---- */

static struct ts_shard *shard_of(struct ts_db *db, uint64_t hash)
{
	return &db->shards[hash >> 58]; /* top 6 bits: TS_SHARDS == 64 */
}

/* Finds a series by packed labels in its shard (shard lock held). */
static struct ts_series *shard_find(struct ts_shard *sh, uint64_t hash, const uint8_t *p,
				    size_t len)
{
	if (!sh->cap)
		return NULL;
	size_t mask = sh->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct ts_series *s = sh->slots[i];
		if (!s)
			return NULL;
		if (s->hash == hash && s->packed_len == len && memcmp(s->packed, p, len) == 0)
			return s;
	}
}

static int shard_put(struct ts_shard *sh, struct ts_series *s)
{
	if ((sh->n + 1) * 10 > sh->cap * 7) {
		size_t cap = sh->cap ? sh->cap * 2 : 64;
		struct ts_series **slots = ts_calloc(cap, sizeof *slots);
		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < sh->cap; i++) {
			struct ts_series *x = sh->slots[i];
			if (!x)
				continue;
			size_t j = x->hash & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = x;
		}
		ts_free(sh->slots);
		sh->slots = slots;
		sh->cap = cap;
	}
	size_t j = s->hash & (sh->cap - 1);
	while (sh->slots[j])
		j = (j + 1) & (sh->cap - 1);
	sh->slots[j] = s;
	sh->n++;
	return 0;
}

struct ts_series *ts__db_series_by_id(struct ts_db *db, uint64_t id)
{
	struct ts_series *s = NULL;
	pthread_rwlock_rdlock(&db->ids_mu);
	if (id < db->by_id_cap)
		s = db->by_id[id];
	pthread_rwlock_unlock(&db->ids_mu);
	return s;
}

static int by_id_set(struct ts_db *db, uint64_t id, struct ts_series *s)
{
	int rc = 0;
	pthread_rwlock_wrlock(&db->ids_mu);
	if (id >= db->by_id_cap) {
		size_t cap = db->by_id_cap ? db->by_id_cap : 1024;
		while (cap <= id)
			cap *= 2;
		struct ts_series **a = ts_realloc(db->by_id, cap * sizeof *a);
		if (!a) {
			rc = -ENOMEM;
			goto out;
		}
		memset(a + db->by_id_cap, 0, (cap - db->by_id_cap) * sizeof *a);
		db->by_id = a;
		db->by_id_cap = cap;
	}
	db->by_id[id] = s;
out:
	pthread_rwlock_unlock(&db->ids_mu);
	return rc;
}

static struct ts_series *series_alloc(uint64_t id, const uint8_t *packed, size_t len, uint64_t hash)
{
	struct ts_series *s = ts_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->packed = ts_malloc(len);
	if (!s->packed) {
		ts_free(s);
		return NULL;
	}
	memcpy(s->packed, packed, len);
	s->packed_len = (uint32_t)len;
	s->id = id;
	s->hash = hash;
	s->max_t = INT64_MIN;
	s->max_t_known = 1; /* a new series: everything it will hold passes through its head */
	ts_xor_enc_init(&s->enc);
	return s;
}

static void series_free(struct ts_series *s)
{
	if (!s)
		return;
	ts__head_free(s);
	ts_free(s->packed);
	ts_free(s);
}

/* Inserts a series with a known id (index load and WAL replay). */
int ts__db_series_insert(struct ts_db *db, uint64_t id, const uint8_t *packed, size_t len,
			 uint64_t hash, struct ts_series **out)
{
	struct ts_series *s = series_alloc(id, packed, len, hash);
	if (!s)
		return -ENOMEM;
	int rc = by_id_set(db, id, s);
	if (rc) {
		series_free(s);
		return rc;
	}
	struct ts_shard *sh = shard_of(db, hash);
	pthread_mutex_lock(&sh->mu);
	rc = shard_find(sh, hash, packed, len) ? TS_CORRUPT() : shard_put(sh, s);
	pthread_mutex_unlock(&sh->mu);
	if (rc) {
		by_id_set(db, id, NULL); /* cannot fail: the slot exists */
		series_free(s);
		return rc;
	}
	uint64_t next = atomic_load(&db->next_id);
	while (next <= id && !atomic_compare_exchange_weak(&db->next_id, &next, id + 1))
		;
	*out = s;
	return 0;
}

/* Finds the series for canonical packed labels, or NULL. */
static struct ts_series *series_find(struct ts_db *db, const uint8_t *packed, size_t len)
{
	uint64_t hash = ts_labels_hash(packed, len);
	struct ts_shard *sh = shard_of(db, hash);
	pthread_mutex_lock(&sh->mu);
	struct ts_series *s = shard_find(sh, hash, packed, len);
	pthread_mutex_unlock(&sh->mu);
	return s;
}

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

/* Finds or creates the series for canonical packed labels. */
static int series_get(struct ts_db *db, const uint8_t *packed, size_t len, struct ts_series **out)
{
	uint64_t hash = ts_labels_hash(packed, len);
	struct ts_shard *sh = shard_of(db, hash);
	int rc = 0;
	pthread_mutex_lock(&sh->mu);
	struct ts_series *s = shard_find(sh, hash, packed, len);
	if (s)
		goto out;
	uint64_t id = atomic_fetch_add(&db->next_id, 1);
	s = series_alloc(id, packed, len, hash);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = by_id_set(db, id, s);
	if (rc == 0)
		rc = shard_put(sh, s);
	if (rc) {
		by_id_set(db, id, NULL);
		series_free(s);
		s = NULL;
		goto out;
	}
out:
	pthread_mutex_unlock(&sh->mu);
	*out = s;
	return rc;
}

/* ---- WAL records ---- */

static int rec_reserve(struct ts_db *db, size_t need)
{
	if (need <= db->rec_cap)
		return 0;
	size_t cap = db->rec_cap ? db->rec_cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *r = ts_realloc(db->rec, cap);
	if (!r)
		return -ENOMEM;
	db->rec = r;
	db->rec_cap = cap;
	return 0;
}


static int add_unindexed(struct ts_db *db, struct ts_series *s)
{
	if (db->n_unindexed == db->cap_unindexed) {
		size_t cap = db->cap_unindexed ? db->cap_unindexed * 2 : 256;
		struct ts_series **a = ts_realloc(db->unindexed, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		db->unindexed = a;
		db->cap_unindexed = cap;
	}
	db->unindexed[db->n_unindexed++] = s;
	return 0;
}

struct replay_ctx {
	struct ts_db *db;
	uint64_t n_records, n_samples, n_skipped;
};

static int replay_record(void *arg, uint64_t lsn, uint8_t type, const uint8_t *p, size_t len)
{
	struct replay_ctx *cx = arg;
	struct ts_db *db = cx->db;
	size_t off = 0;
	if (type != TS_FORMAT_WAL_REC_BATCH) {
		ts_log(TS_LOG_WARN, "wal: skipping record of unknown type %u at lsn %llu", type,
		       (unsigned long long)lsn);
		return 0;
	}
	cx->n_records++;
	if (len < 4)
		return TS_CORRUPT();
	uint32_t n_new = ts_format_get_le32(p);
	off = 4;
	for (uint32_t i = 0; i < n_new; i++) {
		if (len - off < 12)
			return TS_CORRUPT();
		uint64_t id = ts_format_get_le64(p + off);
		uint32_t l = ts_format_get_le32(p + off + 8);
		off += 12;
		if (len - off < l || ts_labels_count(p + off, l) < 0)
			return TS_CORRUPT();
		if (!ts__db_series_by_id(db, id)) {
			struct ts_series *s;
			int rc = ts__db_series_insert(db, id, p + off, l,
						      ts_labels_hash(p + off, l), &s);
			if (rc)
				return rc;
			s->logged = 1;
			rc = add_unindexed(db, s);
			if (rc)
				return rc;
		}
		off += l;
	}
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
		struct ts_series *s = ts__db_series_by_id(db, id);
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
		int rc = ts__head_apply(db, s, p + off, n, lsn);
		off += (size_t)n * 16;
		if (rc < 0)
			return rc;
		cx->n_samples += (uint64_t)rc;
	}
	return 0;
}

/* ---- append ---- */

/* Classifies a sample without changing the head (db->mu held). batch/k: the samples of
 * this series already accepted in this batch section, for resends inside one request.
 * Returns 0 (in order), 1 (exact duplicate), 2 (out of order, accepted) or a rejection. */
static int classify(struct ts_db *db, struct ts_series *s, const uint8_t *batch, uint32_t k,
		    int64_t t, uint64_t v, int64_t now)
{
	if (s->b_max_t == INT64_MIN || t > s->b_max_t) {
		if (db->o.max_future_ms && t > now + db->o.max_future_ms)
			return TS_ETOOFUTURE;
		if (db->o.retention_ms && t < now - db->o.retention_ms)
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
};

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

int ts_db_append(struct ts_db *db, const struct ts_series_in *in, size_t n,
		 struct ts_append_result *res, int *series_rc)
{
	int rc = 0;
	struct ts_append_result local;
	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	if (n == 0)
		return 0;

	/* Phase 1, in parallel with other appenders: canonical labels -> series. */
	uint32_t max_in = 0;
	for (size_t i = 0; i < n; i++)
		if (in[i].n_labels > max_in)
			max_in = in[i].n_labels;
	struct prep *prep = ts_calloc(n, sizeof *prep);
	struct ts_label *canon = ts_malloc((max_in ? max_in : 1) * sizeof *canon);
	size_t pk_cap = 256;
	uint8_t *pk = ts_malloc(pk_cap);
	if (!prep || !canon || !pk) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char err[200];
		uint32_t m;
		/* Fast path for series we already have: a byte-equal match with a stored
		 * canonical label set proves these labels valid, so validation (UTF-8, names,
		 * limits) is paid only when a series is new. */
		if (in[i].n_labels <= db->lim.max_labels &&
		    canonical_shape(in[i].labels, in[i].n_labels)) {
			size_t len = ts_labels_packed_len(in[i].labels, in[i].n_labels);
			if (len > pk_cap) {
				uint8_t *x = ts_realloc(pk, len);
				if (!x) {
					rc = -ENOMEM;
					goto out;
				}
				pk = x;
				pk_cap = len;
			}
			ts_labels_pack(in[i].labels, in[i].n_labels, pk);
			prep[i].s = series_find(db, pk, len);
			if (prep[i].s)
				continue;
		}
		int r = in[i].n_labels > db->lim.max_labels
				? TS_ELIMIT
				: ts_labels_canon(in[i].labels, in[i].n_labels, &db->lim, canon, &m,
						  err, sizeof err);
		if (r == TS_ELIMIT && in[i].n_labels > db->lim.max_labels)
			snprintf(err, sizeof err, "too many labels (%u > %u)", in[i].n_labels,
				 db->lim.max_labels);
		if (r) {
			prep[i].rc = r;
			res->n_invalid_series++;
			if (!res->first_err) {
				res->first_err = r;
				res->first_err_series = i;
				snprintf(res->first_err_msg, sizeof res->first_err_msg, "%s", err);
			}
			continue;
		}
		size_t len = ts_labels_packed_len(canon, m);
		if (len > pk_cap) {
			uint8_t *x = ts_realloc(pk, len);
			if (!x) {
				rc = -ENOMEM;
				goto out;
			}
			pk = x;
			pk_cap = len;
		}
		ts_labels_pack(canon, m, pk);
		r = series_get(db, pk, len, &prep[i].s);
		if (r) {
			rc = r;
			goto out;
		}
	}

	/* Phase 2, under the append mutex: classify, log, apply. */
	int64_t now = ts__wall_ms();
	uint64_t lsn = 0;
	int wrote = 0;
	pthread_mutex_lock(&db->mu);
	if (db->wal_err || db->closing) {
		rc = db->wal_err ? db->wal_err : TS_ECLOSED;
		pthread_mutex_unlock(&db->mu);
		goto out;
	}
	size_t need = 4, need_new = 4;
	for (size_t i = 0; i < n; i++)
		if (prep[i].s) {
			need += 12 + (size_t)in[i].n_samples * 16;
			if (!prep[i].s->logged)
				need_new += 12 + prep[i].s->packed_len;
		}
	rc = rec_reserve(db, need_new + need);
	if (rc) {
		pthread_mutex_unlock(&db->mu);
		goto out;
	}
	/* The samples section is built first, at the end of the buffer, because a new
	 * series is logged (and so becomes visible) only if one of its samples is kept. */
	uint8_t *r = db->rec + need_new;
	size_t off = 4;
	uint32_t n_new = 0, n_ser = 0;
	uint64_t epoch = ++db->epoch;
	for (size_t i = 0; i < n; i++) {
		struct ts_series *s = prep[i].s;
		if (!s)
			continue;
		size_t hdr = off;
		uint32_t k = 0;
		off += 12;
		if (s->b_epoch != epoch) {
			s->b_epoch = epoch;
			s->b_max_t = s->max_t;
		}
		for (uint32_t j = 0; j < in[i].n_samples; j++) {
			int64_t t = in[i].samples[j].t_ms;
			uint64_t v;
			memcpy(&v, &in[i].samples[j].v, 8);
			int cls = classify(db, s, r + hdr + 12, k, t, v, now);
			if (cls == 1) {
				res->n_duplicate++;
				continue;
			}
			if (cls < 0) {
				switch (cls) {
				case TS_EOUTOFORDER: res->n_out_of_order++; break;
				case TS_EDUPLICATE: res->n_conflict++; break;
				case TS_ETOOOLD: res->n_too_old++; break;
				case TS_ETOOFUTURE: res->n_too_future++; break;
				default: /* a head chunk failed to decode */
					rc = cls;
					pthread_mutex_unlock(&db->mu);
					goto out;
				}
				if (!prep[i].rc)
					prep[i].rc = cls;
				if (!res->first_err) {
					res->first_err = cls;
					res->first_err_series = i;
					snprintf(res->first_err_msg, sizeof res->first_err_msg,
						 "%s: timestamp %lld", ts_strerror(cls),
						 (long long)t);
				}
				continue;
			}
			if (cls == 0)
				s->b_max_t = t;
			ts_format_put_le64(r + off, (uint64_t)t);
			ts_format_put_le64(r + off + 8, v);
			off += 16;
			k++;
		}
		if (k) {
			ts_format_put_le64(r + hdr, s->id);
			ts_format_put_le32(r + hdr + 8, k);
			n_ser++;
			prep[i].kept = 1;
		} else {
			off = hdr;
		}
	}
	ts_format_put_le32(r, n_ser);
	size_t samples_len = off;
	/* Creations, for new series with a kept sample (each once). */
	uint8_t *c = db->rec;
	off = 4;
	for (size_t i = 0; i < n; i++) {
		struct ts_series *s = prep[i].s;
		if (!s || !prep[i].kept || s->logged || s->b_epoch == (uint64_t)-1)
			continue;
		s->b_epoch = (uint64_t)-1; /* written; later entries of the same series skip */
		ts_format_put_le64(c + off, s->id);
		ts_format_put_le32(c + off + 8, s->packed_len);
		memcpy(c + off + 12, s->packed, s->packed_len);
		off += 12 + s->packed_len;
		n_new++;
	}
	ts_format_put_le32(c, n_new);
	memmove(c + off, r, samples_len);
	r = c;
	off += samples_len;

	if (n_new || n_ser) {
		int w = ts_wal_append(db->wal, TS_FORMAT_WAL_REC_BATCH, r, off, &lsn);
		if (w == -ENOMEM) {
			rc = w; /* nothing was written and nothing applied */
			pthread_mutex_unlock(&db->mu);
			goto out;
		}
		if (w) {
			db->wal_err = TS_EIO;
			ts_log(TS_LOG_ERROR, "wal append failed (%s): refusing further writes",
			       ts_strerror(w));
			rc = TS_EIO;
			pthread_mutex_unlock(&db->mu);
			goto out;
		}
		wrote = 1;
		rc = apply_record(db, r, prep, n, lsn, res);
		if (rc) {
			rc = db->wal_err = TS_EIO;
			ts_log(TS_LOG_ERROR,
			       "applying a logged batch failed (%s): refusing writes "
			       "until the database is reopened",
			       ts_strerror(rc));
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			struct ts_series *s = prep[i].s;
			if (s && prep[i].kept && !s->logged) {
				s->logged = 1;
				res->n_new_series++;
				if (add_unindexed(db, s)) {
					/* The flusher would never index it: reopen rebuilds the list. */
					rc = db->wal_err = TS_EIO;
					ts_log(TS_LOG_ERROR,
					       "out of memory listing a new series: refusing "
					       "writes until the database is reopened");
				}
			}
		}
	}
	pthread_mutex_unlock(&db->mu);
	atomic_fetch_add(&db->n_samples, res->n_appended);
	if (wrote && rc == 0) {
		if (ts_wal_commit(db->wal, lsn))
			rc = TS_EIO;
	}
	if (series_rc)
		for (size_t i = 0; i < n; i++)
			series_rc[i] = prep[i].rc;
out:
	ts_free(prep);
	ts_free(canon);
	ts_free(pk);
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

int ts_db_open(const char *dir, const struct ts_db_opts *opts, struct ts_db **out)
{
	int rc;
	struct ts_db *db = ts_calloc(1, sizeof *db);
	if (!db)
		return -ENOMEM;
	if (opts)
		db->o = *opts;
	if (!db->o.partition_ms)
		db->o.partition_ms = TS_FORMAT_PARTITION_MS_DEFAULT;
	if (!db->o.checkpoint_wal_bytes)
		db->o.checkpoint_wal_bytes = 128u << 20;
	if (!db->o.checkpoint_interval_ms)
		db->o.checkpoint_interval_ms = 300000;
	if (!db->o.flush_interval_ms)
		db->o.flush_interval_ms = 1000;
	db->lim.max_labels = db->o.max_labels ? db->o.max_labels : 64;
	/* Longer names would not fit a postings key (format.h). */
	db->lim.max_name_len = db->o.max_label_name_len &&
					       db->o.max_label_name_len < TS_FORMAT_LABEL_NAME_MAX
				       ? db->o.max_label_name_len
				       : TS_FORMAT_LABEL_NAME_MAX;
	db->lim.max_value_len = db->o.max_label_value_len ? db->o.max_label_value_len : 4096;
	atomic_init(&db->next_id, 1);
	db->max_t_seen = INT64_MIN;
	for (int i = 0; i < TS_SHARDS; i++)
		pthread_mutex_init(&db->shards[i].mu, NULL);
	pthread_mutex_init(&db->mu, NULL);
	pthread_rwlock_init(&db->ids_mu, NULL);
	pthread_rwlock_init(&db->parts_mu, NULL);
	pthread_mutex_init(&db->wmu, NULL);
	pthread_mutex_init(&db->fmu, NULL);
	pthread_mutex_init(&db->md_mu, NULL);
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
	rc = ts__index_open(db);
	if (rc)
		goto fail;
	uint64_t ckpt = 0;
	rc = ts__index_load(db, &ckpt);
	if (rc)
		goto fail;
	rc = ts__parts_open_existing(db);
	if (rc)
		goto fail;

	char wdir[4096];
	snprintf(wdir, sizeof wdir, "%s/" TS_FORMAT_WAL_DIR, dir);
	struct ts_wal_opts wo = { .sync = db->o.sync,
				  .interval_ms = db->o.sync_interval_ms,
				  .segment_bytes = 64u << 20,
				  .compress = 1 };
	rc = ts_wal_open(wdir, &wo, &db->wal);
	if (rc)
		goto fail;
	struct replay_ctx cx = { .db = db };
	rc = ts_wal_replay(db->wal, ckpt, replay_record, &cx);
	if (rc)
		goto fail;
	ts_log(TS_LOG_INFO,
	       "opened %s: %llu series, replayed %llu WAL records (%llu samples, "
	       "%llu already checkpointed) from lsn %llu",
	       dir, (unsigned long long)(atomic_load(&db->next_id) - 1),
	       (unsigned long long)cx.n_records, (unsigned long long)cx.n_samples,
	       (unsigned long long)cx.n_skipped, (unsigned long long)ckpt);
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
	for (size_t i = 0; i < db->n_parts; i++)
		ts__part_unref(db->parts[i]);
	ts_free(db->parts);
	ts_env_close(db->index);
	for (size_t i = 0; i < db->by_id_cap; i++)
		series_free(db->by_id[i]);
	ts_free(db->by_id);
	for (int i = 0; i < TS_SHARDS; i++) {
		ts_free(db->shards[i].slots);
		pthread_mutex_destroy(&db->shards[i].mu);
	}
	ts_free(db->unindexed);
	ts_free(db->rec);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	pthread_mutex_destroy(&db->mu);
	pthread_rwlock_destroy(&db->ids_mu);
	pthread_rwlock_destroy(&db->parts_mu);
	pthread_mutex_destroy(&db->wmu);
	pthread_mutex_destroy(&db->fmu);
	ts__md_free(db);
	pthread_mutex_destroy(&db->md_mu);
	pthread_cond_destroy(&db->wcond);
	ts_free(db->dir);
	ts_free(db);
}

int ts_db_close(struct ts_db *db)
{
	if (!db)
		return 0;
	pthread_mutex_lock(&db->mu);
	db->closing = 1;
	pthread_mutex_unlock(&db->mu);
	ts__writer_stop(db);
	/* A final checkpoint: heads are snapshotted, sealed chunks committed, WAL cut. */
	int rc = db->wal_err ? db->wal_err : ts__writer_flush(db, 1);
	db_free(db);
	return rc;
}

void ts_db_stats(struct ts_db *db, struct ts_db_stats *out)
{
	memset(out, 0, sizeof *out);
	out->n_series = atomic_load(&db->next_id) - 1;
	out->n_samples_appended = atomic_load(&db->n_samples);
	out->n_chunks_flushed = atomic_load(&db->n_flushed);
	out->n_checkpoints = atomic_load(&db->n_checkpoints);
	pthread_mutex_lock(&db->mu);
	pthread_rwlock_rdlock(&db->ids_mu);
	for (size_t i = 0; i < db->by_id_cap; i++) {
		struct ts_series *s = db->by_id[i];
		if (s && s->enc.n) {
			out->n_head_chunks++;
			out->head_bytes += s->enc.cap;
		}
	}
	pthread_rwlock_unlock(&db->ids_mu);
	pthread_mutex_unlock(&db->mu);
	uint64_t map, used;
	ts_env_size(db->index, &map, &used);
	out->index_bytes = used;
	pthread_rwlock_rdlock(&db->parts_mu);
	out->n_partitions = db->n_parts;
	for (size_t i = 0; i < db->n_parts; i++) {
		ts_env_size(db->parts[i]->env, &map, &used);
		out->partitions_bytes += used;
	}
	pthread_rwlock_unlock(&db->parts_mu);
	ts_wal_stats(db->wal, &out->wal);
}

int ts_db_checkpoint(struct ts_db *db)
{
	return ts__writer_flush(db, 1);
}
