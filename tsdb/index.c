/*
 * index.c - the index env <dir>/index.mdb: opening it, loading it at open (meta rows,
 * series into the registry, head rows into heads, metadata rows), and the rows the
 * writer adds (a new series' row and postings, head rows, meta rows). Tables, keys and
 * values: format.h.
 *
 * Label names never contain 0x00 (labels.c rejects it), so a postings key splits at its
 * first zero byte. Long values are cut in the key; select.c and lookup.c re-check the
 * real labels when a cut key is involved.
 *
 * Uses: registry.c, head.c, metadata.c, format.h, storage/.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "storage/log.h"
#include "tsdb/db_int.h"

int ts__index_open(struct ts_db *db)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR, db->dir);
	struct ts_env_opts eo = { .map_bytes = 256u << 20 };
	int rc = ts_env_open(path, &eo, &db->index);
	if (rc)
		return rc;
	if ((rc = ts_env_table(db->index, TS_FORMAT_TABLE_SERIES, 0, &db->t_series)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_POSTINGS, TS_TABLE_DUPFIXED_U64,
			       &db->t_postings)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_META, 0, &db->t_meta)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_HEADS, 0, &db->t_heads)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_METADATA, 0, &db->t_metadata)))
		return rc;
	return 0;
}

/* ---- load ---- */

static int meta_u64(struct ts_rtxn *r, struct ts_db *db, const char *key, uint64_t *v)
{
	const void *val;
	size_t len;
	int rc = ts_env_get(r, db->t_meta, key, strlen(key), &val, &len);
	if (rc)
		return rc;
	if (len != 8)
		return TS_CORRUPT();
	*v = ts_format_get_le64(val);
	return 0;
}

/* The meta rows: format check, partition width, checkpoint LSN, next id. */
static int load_meta(struct ts_db *db, struct ts_rtxn *r, uint64_t *checkpoint_lsn)
{
	const void *val;
	size_t len;
	int rc = ts_env_get(r, db->t_meta, TS_FORMAT_META_FORMAT, strlen(TS_FORMAT_META_FORMAT),
			    &val, &len);
	if (rc == 0) {
		uint32_t f;
		if (len != 4)
			return TS_CORRUPT();
		f = ts_format_get_le32(val);
		if (f != TS_FORMAT_INDEX_VERSION) {
			ts_log(TS_LOG_ERROR, "index format %u is not one this version reads (%u)",
			       f, TS_FORMAT_INDEX_VERSION);
			return TS_EVERSION;
		}
	} else if (rc != TS_ENOTFOUND) {
		return rc;
	}
	uint64_t pms = 0;
	rc = meta_u64(r, db, TS_FORMAT_META_PARTITION_MS, &pms);
	if (rc == 0) {
		if ((int64_t)pms != db->o.partition_ms)
			ts_log(TS_LOG_INFO,
			       "using the partition width the database was created with: %" PRIu64
			       " ms",
			       pms);
		db->o.partition_ms = (int64_t)pms;
	} else if (rc != TS_ENOTFOUND) {
		return rc;
	}
	if (db->o.partition_ms <= 0 || db->o.partition_ms > TS_FORMAT_PARTITION_MS_MAX)
		return TS_CORRUPT();
	rc = meta_u64(r, db, TS_FORMAT_META_CHECKPOINT_LSN, checkpoint_lsn);
	if (rc == TS_ENOTFOUND)
		*checkpoint_lsn = 0;
	else if (rc)
		return rc;
	uint64_t next = 1;
	rc = meta_u64(r, db, TS_FORMAT_META_NEXT_ID, &next);
	if (rc && rc != TS_ENOTFOUND)
		return rc;
	atomic_store(&db->next_id, next ? next : 1);
	return 0;
}

/* Calls fn for every row of table, in key order; stops at fn's first non-zero value. */
static int scan_table(struct ts_db *db, struct ts_rtxn *r, unsigned table,
		      int (*fn)(struct ts_db *db, const void *k, size_t kl, const void *v,
				size_t vl))
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, table, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)) || (rc = fn(db, k, kl, v, vl)))
			break;
	}
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

static int load_series(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	if (kl != TS_FORMAT_SERIES_KEY_LEN || ts_labels_count(v, vl) < 0)
		return TS_CORRUPT();
	struct ts_series *s;
	int rc = ts__series_insert(db, ts_format_get_be64(k), v, vl, ts_labels_hash(v, vl), &s);
	if (rc)
		return rc;
	s->logged = s->indexed = 1;
	s->max_t_known = 0; /* until its head row (load_head) says otherwise */
	return 0;
}

static int load_head(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	if (kl != TS_FORMAT_SERIES_KEY_LEN)
		return TS_CORRUPT();
	struct ts_series *s = ts__series_by_id(db, ts_format_get_be64(k));
	if (!s)
		return TS_CORRUPT();
	int rc = ts__head_restore(s, v, vl);
	if (rc)
		return rc;
	s->has_snapshot = 1;
	if (s->max_t > db->max_t_seen)
		db->max_t_seen = s->max_t;
	return 0;
}

static int load_metadata(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	return ts__md_load(db, k, kl, v, vl);
}

int ts__index_load(struct ts_db *db, uint64_t *checkpoint_lsn)
{
	struct ts_rtxn *r = NULL;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc)
		return rc;
	if ((rc = load_meta(db, r, checkpoint_lsn)) == 0 &&
	    (rc = scan_table(db, r, db->t_series, load_series)) == 0 &&
	    (rc = scan_table(db, r, db->t_heads, load_head)) == 0)
		rc = scan_table(db, r, db->t_metadata, load_metadata);
	ts_env_read_end(r);
	return rc;
}

/* ---- rows the writer adds ---- */

int ts__index_add_series(struct ts_db *db, struct ts_batch *b, const struct ts_series *s)
{
	uint8_t id[TS_FORMAT_SERIES_KEY_LEN], key[TS_FORMAT_POSTING_KEY_MAX];
	ts_format_put_be64(id, s->id);
	int rc = ts_batch_put(b, db->t_series, id, sizeof id, s->packed, s->packed_len);
	if (rc)
		return rc;
	uint64_t sid = s->id;
	rc = ts_batch_put(b, db->t_postings, TS_FORMAT_POSTING_ALL, TS_FORMAT_POSTING_ALL_LEN, &sid,
			  8);
	if (rc)
		return rc;
	/* --max-labels may allow more labels than fit the stack array. */
	struct ts_label stack[64], *l = stack;
	int cnt = ts_labels_count(s->packed, s->packed_len);
	if (cnt < 0)
		return cnt;
	if ((size_t)cnt > sizeof stack / sizeof stack[0] &&
	    !(l = ts_malloc((size_t)cnt * sizeof *l)))
		return -ENOMEM;
	uint32_t n;
	rc = ts_labels_unpack(s->packed, s->packed_len, l, (uint32_t)cnt, &n);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		size_t kl = ts_format_posting_key(key, l[i].name, l[i].name_len, l[i].value,
						  l[i].value_len);
		rc = ts_batch_put(b, db->t_postings, key, kl, &sid, 8);
	}
	if (l != stack)
		ts_free(l);
	return rc;
}

int ts__index_put_head(struct ts_db *db, struct ts_batch *b, uint64_t id, const uint8_t *snap,
		       size_t len)
{
	uint8_t key[TS_FORMAT_SERIES_KEY_LEN];
	ts_format_put_be64(key, id);
	return len ? ts_batch_put(b, db->t_heads, key, sizeof key, snap, len)
		   : ts_batch_del(b, db->t_heads, key, sizeof key, NULL, 0);
}

static int put_meta(struct ts_db *db, struct ts_batch *b, const char *key, const void *v, size_t vl)
{
	return ts_batch_put(b, db->t_meta, key, strlen(key), v, vl);
}

int ts__index_put_meta(struct ts_db *db, struct ts_batch *b, const uint64_t *checkpoint_lsn)
{
	uint8_t next[8], fmt[4], pms[8], lsn[8];
	ts_format_put_le64(next, atomic_load(&db->next_id));
	ts_format_put_le32(fmt, TS_FORMAT_INDEX_VERSION);
	ts_format_put_le64(pms, (uint64_t)db->o.partition_ms);
	int rc = put_meta(db, b, TS_FORMAT_META_NEXT_ID, next, sizeof next);
	if (rc == 0)
		rc = put_meta(db, b, TS_FORMAT_META_FORMAT, fmt, sizeof fmt);
	if (rc == 0)
		rc = put_meta(db, b, TS_FORMAT_META_PARTITION_MS, pms, sizeof pms);
	if (rc == 0 && checkpoint_lsn) {
		ts_format_put_le64(lsn, *checkpoint_lsn);
		rc = put_meta(db, b, TS_FORMAT_META_CHECKPOINT_LSN, lsn, sizeof lsn);
	}
	return rc;
}
