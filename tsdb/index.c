/*
 * index.c - the index env (series, postings, metadata, head snapshots) and the set of
 * partition envs.
 *
 * Tables of <dir>/index.mdb:
 *   | table    | key                                  | value                          |
 *   |----------|--------------------------------------|--------------------------------|
 *   | series   | series id, u64 BE                    | packed labels (labels.h)       |
 *   | postings | name 0x00 value (value cut at        | DUPFIXED u64 series ids        |
 *   |          | TS_FORMAT_POSTING_VALUE_MAX bytes); the key |                                |
 *   |          | "\0" alone lists every series        |                                |
 *   | meta     | "format" u32, "next_id" u64,         |                                |
 *   |          | "checkpoint_lsn" u64, "partition_ms" i64 (all LE)                     |
 *   | heads    | series id, u64 BE                    | head snapshot (head.c)         |
 *   | metadata | metric family name                   | type, help, unit (metadata.c)  |
 * Label names never contain 0x00 (labels.c rejects it), so a postings key splits at its
 * first zero byte. LMDB keys are at most 511 bytes, so long values are cut; select.c
 * re-checks matchers against the real labels when a cut key was involved.
 *
 * Partitions: <dir>/raw/<start_ms>_<end_ms>/, one env each with a "chunks" table
 * (key and record: storage/chunk.h).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
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

static int meta_u64(struct ts_rtxn *r, struct ts_db *db, const char *key, uint64_t *v)
{
	const void *val;
	size_t len;
	int rc = ts_env_get(r, db->t_meta, key, strlen(key), &val, &len);
	if (rc)
		return rc;
	if (len != 8)
		return TS_CORRUPT();
	memcpy(v, val, 8);
	return 0;
}

int ts__index_load(struct ts_db *db, uint64_t *checkpoint_lsn)
{
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc)
		return rc;
	const void *val;
	size_t len;
	rc = ts_env_get(r, db->t_meta, TS_FORMAT_META_FORMAT, strlen(TS_FORMAT_META_FORMAT), &val,
			&len);
	if (rc == 0) {
		uint32_t f;
		if (len != 4) {
			rc = TS_CORRUPT();
			goto out;
		}
		memcpy(&f, val, 4);
		if (f != TS_FORMAT_INDEX_VERSION) {
			ts_log(TS_LOG_ERROR, "index format %u is not one this version reads (%u)",
			       f, TS_FORMAT_INDEX_VERSION);
			rc = TS_EVERSION;
			goto out;
		}
	} else if (rc != TS_ENOTFOUND) {
		goto out;
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
		goto out;
	}
	if (db->o.partition_ms <= 0) {
		rc = TS_CORRUPT();
		goto out;
	}
	rc = meta_u64(r, db, TS_FORMAT_META_CHECKPOINT_LSN, checkpoint_lsn);
	if (rc == TS_ENOTFOUND)
		*checkpoint_lsn = 0;
	else if (rc)
		goto out;
	uint64_t next = 1;
	rc = meta_u64(r, db, TS_FORMAT_META_NEXT_ID, &next);
	if (rc && rc != TS_ENOTFOUND)
		goto out;
	atomic_store(&db->next_id, next ? next : 1);

	rc = ts_cursor_open(r, db->t_series, &c);
	if (rc)
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			goto out;
		if (kl != 8 || ts_labels_count(v, vl) < 0) {
			rc = TS_CORRUPT();
			goto out;
		}
		struct ts_series *s;
		rc = ts__db_series_insert(db, ts_format_get_be64(k), v, vl, ts_labels_hash(v, vl),
					  &s);
		if (rc)
			goto out;
		s->logged = s->indexed = 1;
		s->max_t_known = 0; /* until its head row (below) says otherwise */
	}
	if (rc != TS_ENOTFOUND)
		goto out;
	ts_cursor_close(c);
	c = NULL;

	rc = ts_cursor_open(r, db->t_heads, &c);
	if (rc)
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			goto out;
		if (kl != 8) {
			rc = TS_CORRUPT();
			goto out;
		}
		struct ts_series *s = ts__db_series_by_id(db, ts_format_get_be64(k));
		if (!s) {
			rc = TS_CORRUPT();
			goto out;
		}
		rc = ts__head_restore(s, v, vl);
		if (rc)
			goto out;
		s->has_snapshot = 1;
		if (s->max_t > db->max_t_seen)
			db->max_t_seen = s->max_t;
	}
	if (rc != TS_ENOTFOUND)
		goto out;
	ts_cursor_close(c);
	c = NULL;

	rc = ts_cursor_open(r, db->t_metadata, &c);
	if (rc)
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)) ||
		    (rc = ts__md_load(db, k, kl, v, vl)))
			goto out;
	}
	if (rc == TS_ENOTFOUND)
		rc = 0;
out:
	ts_cursor_close(c);
	ts_env_read_end(r);
	return rc;
}

int ts__index_add_series(struct ts_db *db, struct ts_batch *b, const struct ts_series *s)
{
	uint8_t id[8], key[TS_FORMAT_POSTING_KEY_MAX];
	ts_format_put_be64(id, s->id);
	int rc = ts_batch_put(b, db->t_series, id, 8, s->packed, s->packed_len);
	if (rc)
		return rc;
	uint64_t sid = s->id;
	rc = ts_batch_put(b, db->t_postings, TS_FORMAT_POSTING_ALL, TS_FORMAT_POSTING_ALL_LEN, &sid,
			  8);
	if (rc)
		return rc;
	struct ts_label l[256];
	uint32_t n;
	rc = ts_labels_unpack(s->packed, s->packed_len, l, 256, &n);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		size_t kl = ts_format_posting_key(key, l[i].name, l[i].name_len, l[i].value,
						  l[i].value_len);
		rc = ts_batch_put(b, db->t_postings, key, kl, &sid, 8);
		if (rc)
			return rc;
	}
	return 0;
}

int ts__part_open(struct ts_db *db, int64_t start, int64_t end, struct ts_partition **out)
{
	char path[4096];
	char name[TS_FORMAT_PART_NAME_MAX];
	ts_format_part_name(name, sizeof name, start, end);
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR "/%s", db->dir, name);
	struct ts_partition *p = ts_calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->dir = ts_strdup(path);
	if (!p->dir) {
		ts_free(p);
		return -ENOMEM;
	}
	struct ts_env_opts eo = { .map_bytes = 64u << 20 };
	int rc = ts_env_open(path, &eo, &p->env);
	if (rc == 0)
		rc = ts_env_table(p->env, TS_FORMAT_PART_TABLE_CHUNKS, 0, &p->chunks);
	if (rc == 0)
		rc = ts_env_table(p->env, TS_FORMAT_PART_TABLE_META, 0, &p->meta);
	if (rc == 0) {
		struct ts_rtxn *r;
		const void *v;
		size_t vl;
		rc = ts_env_read_begin(p->env, &r);
		if (rc == 0) {
			p->compacted = ts_env_get(r, p->meta, TS_FORMAT_PART_META_COMPACTED,
						  strlen(TS_FORMAT_PART_META_COMPACTED), &v,
						  &vl) == 0;
			ts_env_read_end(r);
		}
	}
	if (rc) {
		ts_env_close(p->env);
		ts_free(p->dir);
		ts_free(p);
		return rc;
	}
	p->start = start;
	p->end = end;
	atomic_init(&p->refs, 1);
	atomic_init(&p->remove, 0);
	*out = p;
	return 0;
}

/* An env directory holds only LMDB's two files. */
void ts__dir_remove(const char *dir)
{
	char path[4200];
	const char *files[] = { "data.mdb", "lock.mdb" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			ts_log(TS_LOG_WARN, "cannot remove %s: %s", path, strerror(errno));
	}
	if (rmdir(dir) != 0 && errno != ENOENT)
		ts_log(TS_LOG_WARN, "cannot remove %s: %s", dir, strerror(errno));
}

void ts__part_unref(struct ts_partition *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	ts_env_close(p->env);
	if (atomic_load(&p->remove))
		ts__dir_remove(p->dir);
	ts_free(p->dir);
	ts_free(p);
}

struct ts_partition *ts__part_ref(struct ts_db *db, int64_t start)
{
	struct ts_partition *found = NULL;
	pthread_rwlock_rdlock(&db->parts_mu);
	for (size_t i = 0; i < db->n_parts; i++)
		if (db->parts[i]->start == start) {
			found = db->parts[i];
			atomic_fetch_add(&found->refs, 1);
			break;
		}
	pthread_rwlock_unlock(&db->parts_mu);
	return found;
}

/* Inserts keeping db->parts sorted by start (parts_mu held for writing). */
static int part_insert(struct ts_db *db, struct ts_partition *p)
{
	if (db->n_parts == db->cap_parts) {
		size_t cap = db->cap_parts ? db->cap_parts * 2 : 16;
		struct ts_partition **a = ts_realloc(db->parts, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		db->parts = a;
		db->cap_parts = cap;
	}
	size_t i = db->n_parts;
	while (i > 0 && db->parts[i - 1]->start > p->start) {
		db->parts[i] = db->parts[i - 1];
		i--;
	}
	db->parts[i] = p;
	db->n_parts++;
	return 0;
}

int ts__parts_open_existing(struct ts_db *db)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR, db->dir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -errno;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	/* Finish or undo a compaction a crash interrupted (see compact.c). */
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char full[4400], base[4400];
		snprintf(full, sizeof full, "%s/%s", path, e->d_name);
		enum ts_format_part_dir kind = ts_format_part_dir_kind(e->d_name, NULL, NULL);
		if (kind == TS_FORMAT_PART_DIR_COMPACT) {
			ts_log(TS_LOG_WARN, "removing unfinished compaction %s", full);
			ts__dir_remove(full);
		} else if (kind == TS_FORMAT_PART_DIR_OLD) {
			snprintf(base, sizeof base, "%.*s",
				 (int)(strlen(full) - strlen(TS_FORMAT_PART_OLD_SUFFIX)), full);
			struct stat st;
			if (stat(base, &st) == 0) {
				ts__dir_remove(full);
			} else if (rename(full, base) == 0) {
				ts_log(TS_LOG_WARN, "restored %s from an interrupted compaction",
				       base);
			}
		}
	}
	rewinddir(d);
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int64_t start, end;
		if (ts_format_part_dir_kind(e->d_name, &start, &end) != TS_FORMAT_PART_DIR_LIVE) {
			ts_log(TS_LOG_WARN, "ignoring unexpected entry raw/%s", e->d_name);
			continue;
		}
		struct ts_partition *p;
		rc = ts__part_open(db, start, end, &p);
		if (rc) {
			ts_log(TS_LOG_ERROR, "cannot open partition raw/%s: %s", e->d_name,
			       ts_strerror(rc));
			break;
		}
		rc = part_insert(db, p);
		if (rc) {
			ts__part_unref(p);
			break;
		}
	}
	closedir(d);
	return rc;
}

int ts__part_get(struct ts_db *db, int64_t t, struct ts_partition **out)
{
	int64_t start = ts__partition_start(db, t);
	int rc = 0;
	pthread_rwlock_wrlock(&db->parts_mu);
	for (size_t i = 0; i < db->n_parts; i++)
		if (db->parts[i]->start == start) {
			*out = db->parts[i];
			goto out;
		}
	struct ts_partition *p;
	rc = ts__part_open(db, start, start + db->o.partition_ms, &p);
	if (rc)
		goto out;
	rc = part_insert(db, p);
	if (rc) {
		ts__part_unref(p);
		goto out;
	}
	*out = p;
out:
	pthread_rwlock_unlock(&db->parts_mu);
	return rc;
}

int ts__parts_expire(struct ts_db *db, int64_t now_ms)
{
	if (db->o.retention_ms <= 0)
		return 0;
	int64_t cutoff = now_ms - db->o.retention_ms;
	struct ts_partition *gone[64];
	int n = 0;
	pthread_rwlock_wrlock(&db->parts_mu);
	size_t w = 0;
	for (size_t i = 0; i < db->n_parts; i++) {
		struct ts_partition *p = db->parts[i];
		if (p->end <= cutoff && n < 64)
			gone[n++] = p;
		else
			db->parts[w++] = p;
	}
	db->n_parts = w;
	pthread_rwlock_unlock(&db->parts_mu);
	for (int i = 0; i < n; i++) {
		ts_log(TS_LOG_INFO,
		       "retention: removing partition %s (all samples before %" PRId64 ")",
		       gone[i]->dir, cutoff);
		atomic_store(&gone[i]->remove, 1);
		ts__part_unref(gone[i]); /* the array's reference; readers may still hold theirs */
	}
	return n;
}
