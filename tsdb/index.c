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
 * Postings are sets of series ids in delta blocks (storage/env.h, TS_TABLE_U64_BLOCKS).
 * An index of format 1 or 2 has them one u64 per duplicate in "postings"; open converts
 * that table in one write transaction, which adds every key's ids to postings_blocks,
 * drops the old table and marks the index format 3: a crash before the commit leaves
 * the old table as it was, and the next open converts again.
 *
 * Uses: registry.c, head.c, metadata.c, format.h, storage/.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/zframe.h"
#include "tsdb/db_int.h"

/* Finishes or undoes a rewrite of the index env that a crash interrupted (the same
 * renames as a partition's, compact.c): a complete copy is only ever renamed into place
 * after the old env was renamed away. */
static void index_recover(const char *path)
{
	char tmp[4200], old[4200];
	struct stat st;
	snprintf(tmp, sizeof tmp, "%s" TS_FORMAT_PART_COMPACT_SUFFIX, path);
	snprintf(old, sizeof old, "%s" TS_FORMAT_PART_OLD_SUFFIX, path);
	if (stat(tmp, &st) == 0) {
		ts_log(TS_LOG_WARN, "removing unfinished index rewrite %s", tmp);
		ts__dir_remove(tmp);
	}
	if (stat(old, &st) == 0) {
		if (stat(path, &st) == 0)
			ts__dir_remove(old);
		else if (rename(old, path) == 0)
			ts_log(TS_LOG_WARN, "restored %s from an interrupted rewrite", path);
	}
}

int ts__index_compact(struct ts_db *db)
{
	uint64_t map, used, live = ts_env_live_bytes(db->index);
	ts_env_size(db->index, &map, &used);
	if (!live || used <= live + (live >> 3) + (64u << 10))
		return 0;
	char path[4096], tmp[4200], old[4200];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR, db->dir);
	snprintf(tmp, sizeof tmp, "%s" TS_FORMAT_PART_COMPACT_SUFFIX, path);
	snprintf(old, sizeof old, "%s" TS_FORMAT_PART_OLD_SUFFIX, path);
	ts__dir_remove(tmp);
	int rc = ts_env_copy(db->index, tmp, 1);
	if (rc) {
		ts_log(TS_LOG_WARN, "index rewrite failed: %s; left as it is", ts_strerror(rc));
		ts__dir_remove(tmp);
		return rc;
	}
	ts_env_close(db->index);
	db->index = NULL;
	if (rename(path, old) != 0) {
		rc = -errno;
		ts__dir_remove(tmp);
		return rc;
	}
	if (rename(tmp, path) != 0) {
		rc = -errno;
		if (rename(old, path) != 0)
			ts_log(TS_LOG_ERROR, "index rewrite: cannot restore %s: %s", path,
			       strerror(errno));
		return rc;
	}
	int fd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd); /* the renames are durable before the old copy goes */
		close(fd);
	}
	ts__dir_remove(old);
	ts_log(TS_LOG_INFO, "rewrote %s: %" PRIu64 " -> %" PRIu64 " bytes", path, used, live);
	return 0;
}

/* The meta "format" value, 0 when absent. */
static int read_format(struct ts_db *db, struct ts_rtxn *r, uint32_t *f)
{
	const void *val;
	size_t len;
	int rc = ts_env_get(r, db->t_meta, TS_FORMAT_META_FORMAT, strlen(TS_FORMAT_META_FORMAT),
			    &val, &len);
	*f = 0;
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (len != 4)
		return TS_CORRUPT();
	*f = ts_format_get_le32(val);
	return 0;
}

/* Queues every key of the old postings table (t) into b as adds to postings_blocks. */
static int queue_old_postings(struct ts_db *db, struct ts_rtxn *r, unsigned t, struct ts_batch *b,
			      uint64_t *n_keys, uint64_t *n_ids)
{
	struct ts_cursor *c;
	uint64_t *ids = NULL;
	size_t cap = 0;
	int rc = ts_cursor_open(r, t, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0;) {
		const void *k;
		size_t kl, n = 0;
		uint8_t next[TS_FORMAT_POSTING_KEY_MAX + 1];
		if ((rc = ts_cursor_get(c, &k, &kl, NULL, NULL)) != 0)
			break;
		if (kl > TS_FORMAT_POSTING_KEY_MAX) {
			rc = TS_CORRUPT();
			break;
		}
		memcpy(next, k, kl);
		if ((rc = ts_env_get_u64s(r, t, next, kl, &ids, &n, &cap)) != 0)
			break;
		if (n && (rc = ts_batch_add_u64s(b, db->t_postings, next, kl, ids, n)) != 0)
			break;
		(*n_keys)++;
		*n_ids += n;
		next[kl] = 0; /* the smallest key after this one's duplicates */
		rc = ts_cursor_seek(c, next, kl + 1);
	}
	ts_cursor_close(c);
	ts_free(ids);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* Converts the postings of a format-1 or 2 index (see the top of the file). */
static int convert_postings(struct ts_db *db)
{
	unsigned old;
	int rc = ts_env_table(db->index, TS_FORMAT_TABLE_POSTINGS,
			      TS_TABLE_DUPFIXED_U64 | TS_TABLE_IF_EXISTS, &old);
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct ts_batch *b = NULL;
	struct ts_rtxn *r = NULL;
	uint64_t n_keys = 0, n_ids = 0;
	uint32_t f;
	if ((rc = ts_batch_new(&b)) != 0 || (rc = ts_env_read_begin(db->index, &r)) != 0 ||
	    (rc = read_format(db, r, &f)) != 0)
		goto out;
	/* Write nothing into an index this version does not know (load_meta says so). */
	if (f > TS_FORMAT_INDEX_VERSION)
		goto out;
	rc = queue_old_postings(db, r, old, b, &n_keys, &n_ids);
	ts_env_read_end(r); /* before the write: a map resize waits for this thread's reads */
	r = NULL;
	uint8_t fmt[4];
	ts_format_put_le32(fmt, TS_FORMAT_INDEX_VERSION);
	if (rc == 0)
		rc = ts_batch_drop(b, old);
	if (rc == 0)
		rc = ts_batch_put(b, db->t_meta, TS_FORMAT_META_FORMAT,
				  strlen(TS_FORMAT_META_FORMAT), fmt, sizeof fmt);
	if (rc == 0)
		rc = ts_env_apply(db->index, b);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ts_log(TS_LOG_INFO,
	       "index: converted postings of format %u to blocks: %" PRIu64 " keys, %" PRIu64
	       " ids in %lld ms",
	       f, n_keys, n_ids,
	       (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
out:
	if (rc)
		ts_log(TS_LOG_ERROR, "index: cannot convert postings: %s", ts_strerror(rc));
	ts_env_read_end(r);
	ts_batch_free(b);
	return rc;
}

int ts__index_open(struct ts_db *db)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR, db->dir);
	index_recover(path);
	struct ts_env_opts eo = { .map_bytes = 256u << 20 };
	int rc = ts_env_open(path, &eo, &db->index);
	if (rc)
		return rc;
	if ((rc = ts_env_table(db->index, TS_FORMAT_TABLE_SERIES, 0, &db->t_series)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_POSTINGS_BLOCKS, TS_TABLE_U64_BLOCKS,
			       &db->t_postings)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_META, 0, &db->t_meta)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_HEADS, 0, &db->t_heads)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_METADATA, 0, &db->t_metadata)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_SERIES_GROUPS, 0,
			       &db->t_series_groups)) ||
	    (rc = ts_env_table(db->index, TS_FORMAT_TABLE_HEAD_GROUPS, 0, &db->t_head_groups)))
		return rc;
	return convert_postings(db);
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
		if (f < TS_FORMAT_INDEX_VERSION_MIN || f > TS_FORMAT_INDEX_VERSION) {
			ts_log(TS_LOG_ERROR,
			       "index format %u is not one this version reads (%u to %u)", f,
			       TS_FORMAT_INDEX_VERSION_MIN, TS_FORMAT_INDEX_VERSION);
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

static int series_entry(struct ts_db *db, uint64_t id, const void *v, size_t vl)
{
	if (id == 0 || ts_labels_count(v, vl) < 0)
		return TS_CORRUPT();
	struct ts_series *s = ts__series_by_id(db, id);
	/* Until the checkpoint that migrates a format-1 index, a flush may have written the
	 * group row of a series whose format-1 row still exists: the same series twice. */
	if (s)
		return s->packed_len == vl && memcmp(s->packed, v, vl) == 0 ? 0 : TS_CORRUPT();
	int rc = ts__series_insert(db, id, v, vl, ts_labels_hash(v, vl), &s);
	if (rc)
		return rc;
	s->logged = s->indexed = 1;
	s->max_t_known = 0; /* until its head row (load_head) says otherwise */
	return 0;
}

/* A format-1 row (a series per row): its table is emptied by the next checkpoint. */
static int load_series(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	if (kl != TS_FORMAT_SERIES_KEY_LEN)
		return TS_CORRUPT();
	db->index_migrate = 1;
	return series_entry(db, ts_format_get_be64(k), v, vl);
}

static int head_entry(struct ts_db *db, uint64_t id, const void *v, size_t vl)
{
	struct ts_series *s = ts__series_by_id(db, id);
	if (!s)
		return TS_CORRUPT();
	int rc = ts__head_restore(s, v, vl);
	if (rc)
		return rc;
	s->has_snapshot = 1;
	if (s->max_t > db->max_t_seen)
		db->max_t_seen = s->max_t;
	if (s->enc.n && s->head_min_t < db->min_t_seen)
		db->min_t_seen = s->head_min_t;
	for (uint32_t i = 0; s->ooo && i < s->ooo->n; i++)
		if (s->ooo->s[i].t < db->min_t_seen)
			db->min_t_seen = s->ooo->s[i].t;
	return 0;
}

static int load_head(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	if (kl != TS_FORMAT_SERIES_KEY_LEN)
		return TS_CORRUPT();
	db->index_migrate = 1;
	return head_entry(db, ts_format_get_be64(k), v, vl);
}

/* Calls fn for every entry of a group row (format.h). */
static int group_each(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl,
		      int (*fn)(struct ts_db *db, uint64_t id, const void *e, size_t el))
{
	const uint8_t *p = v;
	if (kl != TS_FORMAT_SERIES_KEY_LEN || vl < 1 || p[0] != TS_FORMAT_GROUP_VERSION)
		return TS_CORRUPT();
	uint64_t g = ts_format_get_be64(k);
	if (g > UINT64_MAX / TS_FORMAT_GROUP_SERIES)
		return TS_CORRUPT();
	uint8_t *raw;
	size_t len;
	int rc = ts_zframe_unpack(p + 1, vl - 1, TS_FORMAT_GROUP_RAW_MAX, &raw, &len);
	if (rc)
		return rc;
	struct ts_format_group_it it;
	ts_format_group_it_init(&it, raw, len);
	while ((rc = ts_format_group_next(&it)) == 1)
		if ((rc = fn(db, g * TS_FORMAT_GROUP_SERIES + it.slot, it.entry, it.entry_len)))
			break;
	ts_free(raw);
	return rc;
}

static int load_series_group(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	return group_each(db, k, kl, v, vl, series_entry);
}

static int load_head_group(struct ts_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
	return group_each(db, k, kl, v, vl, head_entry);
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
	    (rc = scan_table(db, r, db->t_series_groups, load_series_group)) == 0 &&
	    (rc = scan_table(db, r, db->t_heads, load_head)) == 0 &&
	    (rc = scan_table(db, r, db->t_head_groups, load_head_group)) == 0)
		rc = scan_table(db, r, db->t_metadata, load_metadata);
	ts_env_read_end(r);
	return rc;
}

/* ---- rows the writer adds ---- */

/* One posting key of a flush and the ids it gains. */
struct padd {
	uint64_t hash;
	uint32_t key_off, key_len; /* in the key arena */
	uint64_t *ids;
	size_t n, cap;
};

/* The postings a flush adds, gathered per key. */
struct pmap {
	struct padd *slots; /* open addressing; ids NULL: empty */
	size_t cap, n;
	uint8_t *keys; /* key bytes, back to back */
	size_t keys_len, keys_cap;
};

static void pmap_free(struct pmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		ts_free(m->slots[i].ids);
	ts_free(m->slots);
	ts_free(m->keys);
}

/* The entry of key, made when absent. NULL when out of memory. */
static struct padd *pmap_get(struct pmap *m, const uint8_t *key, size_t kl)
{
	if ((m->n + 1) * 10 > m->cap * 7) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct padd *s = ts_calloc(cap, sizeof *s);
		if (!s)
			return NULL;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].ids)
				continue;
			size_t j = (size_t)m->slots[i].hash & (cap - 1);
			while (s[j].ids)
				j = (j + 1) & (cap - 1);
			s[j] = m->slots[i];
		}
		ts_free(m->slots);
		m->slots = s;
		m->cap = cap;
	}
	uint64_t h = ts_labels_hash(key, kl);
	size_t j = (size_t)h & (m->cap - 1);
	for (; m->slots[j].ids; j = (j + 1) & (m->cap - 1)) {
		struct padd *e = &m->slots[j];
		if (e->hash == h && e->key_len == kl && !memcmp(m->keys + e->key_off, key, kl))
			return e;
	}
	if (ts_grow((void **)&m->keys, &m->keys_cap, m->keys_len + kl, 1))
		return NULL;
	struct padd *e = &m->slots[j];
	*e = (struct padd){ h, (uint32_t)m->keys_len, (uint32_t)kl, NULL, 0, 0 };
	if (ts_grow((void **)&e->ids, &e->cap, 1, sizeof *e->ids))
		return NULL; /* the slot stays empty (ids NULL) */
	memcpy(m->keys + m->keys_len, key, kl);
	m->keys_len += kl;
	m->n++;
	return e;
}

/* Adds id to key's list. 0 or -ENOMEM. */
static int pmap_add(struct pmap *m, const uint8_t *key, size_t kl, uint64_t id)
{
	struct padd *e = pmap_get(m, key, kl);
	if (!e || ts_grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids))
		return -ENOMEM;
	e->ids[e->n++] = id;
	return 0;
}

int ts__index_add_many(struct ts_db *db, struct ts_batch *b, struct ts_series *const *s, size_t n)
{
	/* A record a posting and a series was 14 records of 50-60 bytes a series of 13
	 * labels: at a million new series in one flush, most of a gigabyte of batch. Per
	 * key, it is 8 bytes a series and label. */
	struct pmap m = { 0 };
	struct ts_label stack[64], *l = stack;
	size_t l_cap = sizeof stack / sizeof stack[0];
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t sid = s[i]->id;
		if ((rc = pmap_add(&m, (const uint8_t *)TS_FORMAT_POSTING_ALL,
				   TS_FORMAT_POSTING_ALL_LEN, sid)))
			break;
		int cnt = ts_labels_count(s[i]->packed, s[i]->packed_len);
		if (cnt < 0) {
			rc = cnt;
			break;
		}
		if ((size_t)cnt > l_cap) {
			struct ts_label *x = ts_malloc((size_t)cnt * sizeof *x);
			if (!x) {
				rc = -ENOMEM;
				break;
			}
			if (l != stack)
				ts_free(l);
			l = x;
			l_cap = (size_t)cnt;
		}
		uint32_t nl;
		rc = ts_labels_unpack(s[i]->packed, s[i]->packed_len, l, (uint32_t)cnt, &nl);
		for (uint32_t k = 0; k < nl && rc == 0; k++) {
			size_t kl = ts_format_posting_key(key, l[k].name, l[k].name_len, l[k].value,
							  l[k].value_len);
			rc = pmap_add(&m, key, kl, sid);
		}
	}
	for (size_t i = 0; i < m.cap && rc == 0; i++)
		if (m.slots[i].n)
			rc = ts_batch_add_u64s(b, db->t_postings, m.keys + m.slots[i].key_off,
					       m.slots[i].key_len, m.slots[i].ids, m.slots[i].n);
	if (l != stack)
		ts_free(l);
	pmap_free(&m);
	return rc;
}

/* Appends one group entry (slot, length, bytes) to buf. */
static int group_add(struct ts__buf *buf, unsigned slot, const void *e, size_t el)
{
	if (el > UINT32_MAX ||
	    ts_grow((void **)&buf->p, &buf->cap, buf->len + TS_FORMAT_GROUP_ENTRY_HDR + el, 1))
		return -ENOMEM;
	uint8_t *q = buf->p + buf->len;
	q[0] = (uint8_t)slot;
	ts_format_put_le32(q + 1, (uint32_t)el);
	memcpy(q + TS_FORMAT_GROUP_ENTRY_HDR, e, el);
	buf->len += TS_FORMAT_GROUP_ENTRY_HDR + el;
	return 0;
}

/* Puts group g's row into table from its entries (raw), or deletes it when empty. */
static int group_put(struct ts_db *db, struct ts_batch *b, unsigned table, uint64_t g,
		     const struct ts__buf *raw, int level)
{
	uint8_t key[TS_FORMAT_SERIES_KEY_LEN];
	ts_format_put_be64(key, g);
	if (raw->len == 0)
		return ts_batch_del(b, table, key, sizeof key, NULL, 0);
	uint8_t *z;
	size_t zl;
	int rc = ts_zframe_pack(raw->p, raw->len, level, &z, &zl);
	if (rc)
		return rc;
	uint8_t *row = ts_malloc(zl + 1);
	if (!row) {
		ts_free(z);
		return -ENOMEM;
	}
	row[0] = TS_FORMAT_GROUP_VERSION;
	memcpy(row + 1, z, zl);
	rc = ts_batch_put(b, table, key, sizeof key, row, zl + 1);
	(void)db;
	ts_free(row);
	ts_free(z);
	return rc;
}

int ts__index_put_series_group(struct ts_db *db, struct ts_batch *b, uint64_t g,
			       struct ts_series *const *members, size_t n)
{
	struct ts__buf raw = { 0 };
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = group_add(&raw, (unsigned)(members[i]->id % TS_FORMAT_GROUP_SERIES),
			       members[i]->packed, members[i]->packed_len);
	if (rc == 0)
		rc = group_put(db, b, db->t_series_groups, g, &raw, 9);
	ts_free(raw.p);
	return rc;
}

int ts__index_put_head_group(struct ts_db *db, struct ts_batch *b, uint64_t g, const uint64_t *ids,
			     const uint8_t *const *snaps, const size_t *lens, size_t n)
{
	struct ts__buf raw = { 0 };
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = group_add(&raw, (unsigned)(ids[i] % TS_FORMAT_GROUP_SERIES), snaps[i],
			       lens[i]);
	/* Head rows are rewritten at every checkpoint while series take samples: zstd's
	 * fastest level. */
	if (rc == 0)
		rc = group_put(db, b, db->t_head_groups, g, &raw, 1);
	ts_free(raw.p);
	return rc;
}

int ts__index_drop_v1_rows(struct ts_db *db, struct ts_batch *b)
{
	uint64_t end = atomic_load(&db->next_id);
	int rc = 0;
	for (uint64_t id = 1; id < end && rc == 0; id++) {
		uint8_t key[TS_FORMAT_SERIES_KEY_LEN];
		ts_format_put_be64(key, id);
		rc = ts_batch_del(b, db->t_series, key, sizeof key, NULL, 0);
		if (rc == 0)
			rc = ts_batch_del(b, db->t_heads, key, sizeof key, NULL, 0);
	}
	return rc;
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

/* ---- removing series (gc.c) ---- */

struct pkey {
	size_t off, len; /* the key's bytes in the arena */
	uint64_t id;
};

static int pkey_cmp(const void *a, const void *b, void *arg)
{
	const struct pkey *x = a, *y = b;
	const uint8_t *ar = arg;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(ar + x->off, ar + y->off, m);
	if (c || x->len != y->len)
		return c ? c : (x->len < y->len ? -1 : 1);
	return (x->id > y->id) - (x->id < y->id);
}

/* Every postings key of the series ids (and the all-series key), with the id. */
static int collect_pkeys(struct ts_db *db, const uint64_t *ids, size_t n, struct ts__buf *ar,
			 struct pkey **out, size_t *n_out)
{
	size_t cap = 0;
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
	struct ts_label *l = NULL;
	size_t l_cap = 0;
	int rc = 0;
	*n_out = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct ts_series *s = ts__series_by_id(db, ids[i]);
		int cnt = s ? ts_labels_count(s->packed, s->packed_len) : TS_CORRUPT();
		if (cnt < 0) {
			rc = cnt;
			break;
		}
		if ((size_t)cnt > l_cap && ts_grow((void **)&l, &l_cap, (size_t)cnt, sizeof *l)) {
			rc = -ENOMEM;
			break;
		}
		uint32_t nl = 0;
		if ((rc = ts_labels_unpack(s->packed, s->packed_len, l, (uint32_t)cnt, &nl)))
			break;
		for (uint32_t j = 0; j <= nl && rc == 0; j++) {
			size_t kl = TS_FORMAT_POSTING_ALL_LEN;
			const void *kp = TS_FORMAT_POSTING_ALL;
			if (j < nl) {
				kl = ts_format_posting_key(key, l[j].name, l[j].name_len,
							   l[j].value, l[j].value_len);
				kp = key;
			}
			if (ts_grow((void **)out, &cap, *n_out + 1, sizeof **out) ||
			    ts_grow((void **)&ar->p, &ar->cap, ar->len + kl, 1)) {
				rc = -ENOMEM;
				break;
			}
			memcpy(ar->p + ar->len, kp, kl);
			(*out)[(*n_out)++] = (struct pkey){ ar->len, kl, ids[i] };
			ar->len += kl;
		}
	}
	ts_free(l);
	return rc;
}

/* Rewrites each postings key without the ids paired with it. */
static int drop_postings(struct ts_db *db, struct ts_rtxn *r, struct ts_batch *b,
			 const uint64_t *ids, size_t n)
{
	struct ts__buf ar = { 0 };
	struct pkey *pk = NULL;
	size_t npk = 0, cap = 0, nv = 0;
	uint64_t *v = NULL;
	int rc = collect_pkeys(db, ids, n, &ar, &pk, &npk);
	if (rc == 0)
		qsort_r(pk, npk, sizeof *pk, pkey_cmp, ar.p);
	for (size_t i = 0; i < npk && rc == 0;) {
		size_t j = i;
		while (j < npk && pk[j].len == pk[i].len &&
		       memcmp(ar.p + pk[j].off, ar.p + pk[i].off, pk[i].len) == 0)
			j++;
		const uint8_t *k = ar.p + pk[i].off;
		nv = 0;
		if ((rc = ts_env_get_u64s(r, db->t_postings, k, pk[i].len, &v, &nv, &cap)))
			break;
		/* Both ascending: keep what is not among pk[i..j). */
		size_t w = 0, d = i;
		for (size_t x = 0; x < nv; x++) {
			while (d < j && pk[d].id < v[x])
				d++;
			if (d < j && pk[d].id == v[x])
				continue;
			v[w++] = v[x];
		}
		if (w != nv) {
			rc = ts_batch_del(b, db->t_postings, k, pk[i].len, NULL, 0);
			if (rc == 0 && w)
				rc = ts_batch_add_u64s(b, db->t_postings, k, pk[i].len, v, w);
		}
		i = j;
	}
	ts_free(v);
	ts_free(pk);
	ts_free(ar.p);
	return rc;
}

/* Head group g read from r, rewritten without the entries whose slot is set in drop. */
static int drop_head_entries(struct ts_db *db, struct ts_rtxn *r, struct ts_batch *b, uint64_t g,
			     const uint8_t *drop)
{
	uint8_t key[TS_FORMAT_SERIES_KEY_LEN];
	ts_format_put_be64(key, g);
	const void *v;
	size_t vl;
	int rc = ts_env_get(r, db->t_head_groups, key, sizeof key, &v, &vl);
	if (rc == TS_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	const uint8_t *p = v;
	if (vl < 1 || p[0] != TS_FORMAT_GROUP_VERSION)
		return TS_CORRUPT();
	uint8_t *raw;
	size_t len;
	if ((rc = ts_zframe_unpack(p + 1, vl - 1, TS_FORMAT_GROUP_RAW_MAX, &raw, &len)))
		return rc;
	struct ts__buf out = { 0 };
	struct ts_format_group_it it;
	ts_format_group_it_init(&it, raw, len);
	while ((rc = ts_format_group_next(&it)) == 1)
		if (!drop[it.slot] && (rc = group_add(&out, it.slot, it.entry, it.entry_len)))
			break;
	if (rc == 0)
		rc = group_put(db, b, db->t_head_groups, g, &out, 1);
	ts_free(out.p);
	ts_free(raw);
	return rc;
}

int ts__index_drop_series(struct ts_db *db, struct ts_rtxn *r, struct ts_batch *b,
			  const uint64_t *ids, size_t n)
{
	const uint64_t G = TS_FORMAT_GROUP_SERIES;
	int rc = drop_postings(db, r, b, ids, n);
	struct ts_series *members[TS_FORMAT_GROUP_SERIES];
	uint8_t drop[TS_FORMAT_GROUP_SERIES];
	for (size_t i = 0; i < n && rc == 0;) {
		uint64_t g = ids[i] / G;
		memset(drop, 0, sizeof drop);
		for (; i < n && ids[i] / G == g; i++)
			drop[ids[i] % G] = 1;
		size_t m = 0;
		pthread_mutex_lock(&db->mu);
		for (uint64_t id = g * G; id < g * G + G; id++) {
			struct ts_series *s = id ? ts__series_by_id(db, id) : NULL;
			if (s && s->indexed && !s->dead)
				members[m++] = s;
		}
		pthread_mutex_unlock(&db->mu);
		rc = ts__index_put_series_group(db, b, g, members, m);
		if (rc == 0)
			rc = drop_head_entries(db, r, b, g, drop);
	}
	return rc;
}
