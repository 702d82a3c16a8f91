/*
 * partition.c - time partitions: which partition holds a timestamp, their directories
 * under <dir>/raw (names: format.h), opening their envs, and the reference counts that
 * let retention and compaction replace or drop a partition while readers still use it.
 *
 * db->parts is sorted by start and holds one reference to each partition; parts_mu
 * guards the array. Only the writer thread adds, replaces or drops partitions; readers
 * take a reference (ts__part_ref, ts__part_hold) and give it back with ts__part_unref.
 * The last reference closes the env and, for a dropped or replaced partition, deletes
 * its directory.
 *
 * Envs are opened lazily and kept in an LRU of at most db->max_open: months of history
 * would otherwise cost three file descriptors and a map per day for as long as the
 * server runs, and start-up would open them all. A user of p->env pins it
 * (ts__part_pin/unpin); any unpinned env may be closed to make room, and is opened
 * again from p->dir when next pinned. db->open lists the open ones, so making room needs
 * only open_mu (lock order: parts_mu before open_mu, never the reverse). Compaction
 * pins the old env across the directory renames and swaps p->dir under open_mu, so
 * p->dir always names where p's files are whenever p's env can be opened.
 *
 * Uses: format.h, storage/. Nothing here calls back into the rest of the engine.
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
#include "tsdb/failpoint.h"

int64_t ts__partition_start(const struct ts_db *db, int64_t t)
{
	return ts_format_partition_start(t, db->o.partition_ms);
}

int ts__part_open(struct ts_db *db, int64_t start, int64_t end, struct ts_partition **out)
{
	char path[4096], name[TS_FORMAT_PART_NAME_MAX];
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
	p->start = start;
	p->end = end;
	atomic_init(&p->compacted, -1);
	atomic_init(&p->refs, 1);
	atomic_init(&p->remove, 0);
	atomic_init(&p->expired, 0);
	atomic_init(&p->rules_state, TS__RULES_UNKNOWN);
	atomic_init(&p->tiers_stale, 0);
	*out = p;
	return 0;
}

/* Opens p's env and tables, and learns whether it is compacted (open_mu held). */
static int env_open(struct ts_db *db, struct ts_partition *p)
{
	struct ts_env_opts eo = { .map_bytes = 64u << 20 };
	struct ts_env *env;
	int rc = ts_env_open(p->dir, &eo, &env);
	if (rc)
		return rc;
	rc = ts_env_table(env, TS_FORMAT_PART_TABLE_CHUNKS, 0, &p->chunks);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_META, 0, &p->meta);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_COLD, 0, &p->cold);
	if (rc == 0)
		rc = ts_env_table(env, TS_FORMAT_PART_TABLE_TIERS, 0, &p->tiers);
	if (rc == 0) {
		struct ts_rtxn *r;
		const void *v;
		size_t vl;
		rc = ts_env_read_begin(env, &r);
		if (rc == 0) {
			int c = ts_env_get(r, p->meta, TS_FORMAT_PART_META_COLD,
					   strlen(TS_FORMAT_PART_META_COLD), &v, &vl) == 0;
			int unknown = -1;
			atomic_compare_exchange_strong(&p->compacted, &unknown, c);
			if (ts_env_get(r, p->meta, TS_FORMAT_PART_META_EXPIRED,
				       strlen(TS_FORMAT_PART_META_EXPIRED), &v, &vl) == 0 &&
			    vl == 1)
				atomic_store(&p->expired, *(const uint8_t *)v);
			ts_env_read_end(r);
		}
	}
	if (rc) {
		ts_env_close(env);
		return rc;
	}
	if (ts_grow((void **)&db->open, &db->cap_open, db->n_open + 1, sizeof *db->open)) {
		ts_env_close(env);
		return -ENOMEM;
	}
	p->env = env;
	db->open[db->n_open++] = p;
	return 0;
}

static void env_close(struct ts_db *db, struct ts_partition *p)
{
	ts_env_close(p->env);
	p->env = NULL;
	for (size_t i = 0; i < db->n_open; i++)
		if (db->open[i] == p) {
			db->open[i] = db->open[--db->n_open];
			break;
		}
}

/* Closes the least recently used unpinned env, if any (open_mu held). 1 if one was. */
static int close_lru(struct ts_db *db)
{
	struct ts_partition *victim = NULL;
	for (size_t i = 0; i < db->n_open; i++) {
		struct ts_partition *q = db->open[i];
		if (q->pins == 0 && (!victim || q->last_use < victim->last_use))
			victim = q;
	}
	if (!victim)
		return 0;
	env_close(db, victim);
	return 1;
}

int ts__part_pin(struct ts_db *db, struct ts_partition *p, int create)
{
	int rc = 0;
	struct stat st;
	pthread_mutex_lock(&db->open_mu);
	/* The writer makes a partition's object before its directory: until its first
	 * write succeeds (a full disk) it has no env, and readers find nothing there. */
	if (!p->env && !create && stat(p->dir, &st) != 0 && errno == ENOENT)
		rc = TS_ENOTFOUND;
	if (!p->env && rc == 0 && create && stat(p->dir, &st) != 0)
		rc = ts__failpoint_err("partition.create");
	if (!p->env && rc == 0) {
		while (db->n_open >= db->max_open && close_lru(db))
			;
		rc = env_open(db, p);
		if ((rc == -EMFILE || rc == -ENFILE) && close_lru(db))
			rc = env_open(db, p);
	}
	if (rc == 0) {
		p->pins++;
		p->last_use = ++db->open_clock;
	}
	pthread_mutex_unlock(&db->open_mu);
	return rc;
}

void ts__part_unpin(struct ts_db *db, struct ts_partition *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&db->open_mu);
	p->pins--;
	/* A long query may have opened more than the cap: give the extra back now. */
	while (db->n_open > db->max_open && close_lru(db))
		;
	pthread_mutex_unlock(&db->open_mu);
}

uint64_t ts__part_bytes(struct ts_db *db, struct ts_partition *p)
{
	uint64_t map = 0, used = 0;
	pthread_mutex_lock(&db->open_mu);
	if (p->env) {
		ts_env_size(p->env, &map, &used);
	} else {
		char path[4200];
		struct stat st;
		snprintf(path, sizeof path, "%s/data.mdb", p->dir);
		if (stat(path, &st) == 0)
			used = (uint64_t)st.st_size;
	}
	pthread_mutex_unlock(&db->open_mu);
	return used;
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
	ts__failpoint("dir.files_removed");
	if (rmdir(dir) != 0 && errno != ENOENT)
		ts_log(TS_LOG_WARN, "cannot remove %s: %s", dir, strerror(errno));
}

void ts__part_hold(struct ts_partition *p)
{
	atomic_fetch_add(&p->refs, 1);
}

void ts__part_unref(struct ts_db *db, struct ts_partition *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	pthread_mutex_lock(&db->open_mu);
	if (p->env)
		env_close(db, p);
	pthread_mutex_unlock(&db->open_mu);
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
			ts__part_hold(found);
			break;
		}
	pthread_rwlock_unlock(&db->parts_mu);
	return found;
}

/* Inserts keeping db->parts sorted by start (parts_mu held for writing). */
static int part_insert(struct ts_db *db, struct ts_partition *p)
{
	if (ts_grow((void **)&db->parts, &db->cap_parts, db->n_parts + 1, sizeof *db->parts))
		return -ENOMEM;
	size_t i = db->n_parts;
	while (i > 0 && db->parts[i - 1]->start > p->start) {
		db->parts[i] = db->parts[i - 1];
		i--;
	}
	db->parts[i] = p;
	db->n_parts++;
	return 0;
}

/* Finishes or undoes a compaction a crash interrupted (see compact.c). */
static void recover_compactions(DIR *d, const char *raw)
{
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char full[4400], base[4400];
		snprintf(full, sizeof full, "%s/%s", raw, e->d_name);
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
}

int ts__parts_open_existing(struct ts_db *db)
{
	ts__failpoint_load(); /* once per open: TS_FAILPOINT (tests only) */
	char path[4096];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR, db->dir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -errno;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	recover_compactions(d, path);
	rewinddir(d);
	int rc = 0;
	struct dirent *e;
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
			ts__part_unref(db, p);
			break;
		}
	}
	closedir(d);
	return rc;
}

void ts__parts_close(struct ts_db *db)
{
	for (size_t i = 0; i < db->n_parts; i++)
		ts__part_unref(db, db->parts[i]);
	ts_free(db->open);
	db->open = NULL;
	db->n_open = db->cap_open = 0;
	ts_free(db->parts);
	db->parts = NULL;
	db->n_parts = db->cap_parts = 0;
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
		ts__part_unref(db, p);
		goto out;
	}
	*out = p;
out:
	pthread_rwlock_unlock(&db->parts_mu);
	return rc;
}

void ts__part_replace(struct ts_db *db, struct ts_partition *old, struct ts_partition *np)
{
	pthread_rwlock_wrlock(&db->parts_mu);
	for (size_t i = 0; i < db->n_parts; i++)
		if (db->parts[i] == old)
			db->parts[i] = np;
	pthread_rwlock_unlock(&db->parts_mu);
}

int ts__parts_expire(struct ts_db *db, int64_t now_ms)
{
	int64_t keep = ts__retention_keep_ms(db);
	if (keep <= 0)
		return 0;
	int64_t cutoff = now_ms - keep;
	struct ts_partition *gone[64];
	int n = 0;
	pthread_rwlock_wrlock(&db->parts_mu);
	size_t w = 0;
	for (size_t i = 0; i < db->n_parts; i++) {
		struct ts_partition *p = db->parts[i];
		if (p->end <= cutoff && n < 64 && ts__rules_free_part(db, p))
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
		ts__failpoint("retention.before_remove");
		ts__part_unref(db,
			       gone[i]); /* the array's reference; readers may still hold theirs */
		atomic_fetch_add(&db->n_parts_removed, 1);
		ts__failpoint("retention.removed");
	}
	return n;
}

int ts__part_scan(struct ts_rtxn *r, unsigned table, uint64_t id, int64_t from, int64_t to,
		  ts__chunk_fn fn, void *arg)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, table, &c);
	if (rc)
		return rc;
	uint8_t key[TS_CHUNK_KEY_LEN];
	ts_chunk_key(key, id, from);
	for (rc = ts_cursor_seek(c, key, sizeof key); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *v;
		size_t kl, vl;
		uint64_t kid;
		int64_t min_t;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)) ||
		    (rc = ts_chunk_key_parse(k, kl, &kid, &min_t)))
			break;
		if (kid != id || min_t > to)
			break;
		struct ts_chunk_hdr h;
		const uint8_t *payload;
		if ((rc = ts_chunk_decode(v, vl, &h, &payload)) || (rc = fn(arg, &h, payload)))
			break;
	}
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

struct ts_partition *ts__part_next(struct ts_db *db, size_t *k)
{
	struct ts_partition *p = NULL;
	pthread_rwlock_rdlock(&db->parts_mu);
	if (*k < db->n_parts) {
		p = db->parts[(*k)++];
		ts__part_hold(p);
	}
	pthread_rwlock_unlock(&db->parts_mu);
	return p;
}

void ts__parts_mark_tiers_stale(struct ts_db *db, int64_t mint, int64_t maxt)
{
	pthread_rwlock_rdlock(&db->parts_mu);
	for (size_t i = 0; i < db->n_parts; i++)
		if (db->parts[i]->start <= maxt && db->parts[i]->end > mint)
			atomic_store(&db->parts[i]->tiers_stale, 1);
	pthread_rwlock_unlock(&db->parts_mu);
}
