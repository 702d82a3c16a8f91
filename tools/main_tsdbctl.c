/*
 * tsdbctl - the operations tool: works on a tsdbd data directory directly.
 *
 *   tsdbctl inspect --data-dir DIR [--top N] [--json]
 *   tsdbctl verify  --data-dir DIR
 *   tsdbctl export  --data-dir DIR [--match SELECTOR]... [--start T] [--end T]
 *   tsdbctl compact --data-dir DIR
 *
 * inspect and verify read while a server runs: they never call ts_db_open() (the server
 * holds an exclusive flock on DIR/LOCK) but open the LMDB environments read-only
 * through storage/env.h - DIR/index.mdb and each DIR/raw/<start>_<end>/ - and read
 * consistent snapshots of each env (LMDB allows readers in other processes). Layouts
 * they rely on: tsdb/index.c (index tables), tsdb/labels.h (packed label sets),
 * storage/chunk.h (chunk keys and records), storage/xor.h (payload), tsdb/head.c (head
 * snapshots), tsdb/metadata.c (metadata values), tsdb/compact.c (partition names).
 * export and compact open the database with ts_db_open(), so they need the server
 * stopped (TS_EBUSY -> exit 3).
 *
 * A live server commits a flush in two steps - chunks into the partition env, then the
 * new series into the index env - and renames partitions while compacting them. So
 * verify re-checks "chunk of an unknown series" against a fresh index snapshot before
 * reporting it, and inspect/verify skip raw/<dir>.compact and .old and treat a
 * partition that vanished between listing and opening as gone, not broken.
 *
 * Exit codes: see usage(). Reports go to stdout, errors to stderr; progress only when
 * stderr is a terminal.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "query/selector.h"
#include "wire/jsonl.h"
#include "wire/params.h"
#include "storage/chunk.h"
#include "storage/crc32c.h"
#include "storage/env.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/xor.h"
#include "tsdb/index.h"
#include "tsdb/labels.h"
#include "tsdb/tsdb.h"
#include "tsdb/utf8.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1, /* verify found problems, or the command failed */
	EXIT_USAGE = 2,
	EXIT_LOCKED = 3, /* a running server holds the directory */
	EXIT_NOTDB = 4,	 /* the directory is not a database */
};

#define INDEX_FORMAT 1
#define DEFAULT_PARTITION_MS INT64_C(86400000)
#define EXPORT_LINE_SAMPLES 10000 /* as server/export.c */
/* head.c's snapshot layout and bounds */
#define SNAP_FORMAT 1
#define SNAP_FIXED 62
#define SNAP_MAX_CHUNK 2048    /* TS_CHUNK_MAX_BYTES * 2 */
#define SNAP_MAX_OOO (32 * 64) /* TS_OOO_CUT * 64 */

static const char usage_text[] =
	"usage: tsdbctl <command> --data-dir DIR [options]\n"
	"\n"
	"Commands:\n"
	"  inspect   format, partition width, series, checkpoint LSN, WAL size; per partition\n"
	"            its time range, chunks, samples, bytes in use, bytes/sample, compacted;\n"
	"            cardinality top-N by metric name and by label name; metadata count.\n"
	"            Reads while a server runs.\n"
	"              --top N    entries in each top list (default 10)\n"
	"              --json     one JSON object instead of text\n"
	"  verify    checks every chunk record (CRC, header, full XOR decode, key in the\n"
	"            partition's range, series known), every series row, postings both ways,\n"
	"            head snapshots and metadata rows. Prints each problem with where it is and\n"
	"            a summary. Reads while a server runs.\n"
	"  export    series as JSON lines (VictoriaMetrics format, as GET /api/v1/export) on\n"
	"            stdout; stale markers are left out. Needs the server stopped.\n"
	"              --match SELECTOR   series selector, repeatable (union); default: all\n"
	"              --start T, --end T unix seconds or RFC 3339; default: everything\n"
	"  compact   rewrites closed partitions tightly (ts_db_compact) and prints the bytes\n"
	"            before and after. Needs the server stopped.\n"
	"\n"
	"Exit codes:\n"
	"  0  ok (verify: no problem found)\n"
	"  1  verify found problems, or the command failed\n"
	"  2  usage error\n"
	"  3  the data directory is locked by a running server (export, compact)\n"
	"  4  the directory is not a database (no DIR/index.mdb)\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tsdbctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(tsdbctl --help for usage)\n", stderr);
}

/* ---- small formatting helpers ---- */

/* RFC 3339 UTC with milliseconds when not whole seconds; falls back to the number. */
static void fmt_time(char *buf, size_t cap, int64_t ms)
{
	int64_t s = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		s--;
	}
	time_t tt = (time_t)s;
	struct tm tm;
	if ((int64_t)tt != s || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0) {
		snprintf(buf, cap, "%" PRId64 "ms", ms);
		return;
	}
	if (frac)
		snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
	else
		snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void fmt_bytes(char *buf, size_t cap, uint64_t b)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", b);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

static void fmt_duration(char *buf, size_t cap, int64_t ms)
{
	if (ms > 0 && ms % 86400000 == 0)
		snprintf(buf, cap, "%" PRId64 "d", ms / 86400000);
	else if (ms > 0 && ms % 3600000 == 0)
		snprintf(buf, cap, "%" PRId64 "h", ms / 3600000);
	else if (ms > 0 && ms % 60000 == 0)
		snprintf(buf, cap, "%" PRId64 "m", ms / 60000);
	else
		snprintf(buf, cap, "%" PRId64 "ms", ms);
}

/* A byte string for a human: printable ASCII as is, others as \xNN, cut at max bytes. */
static void fmt_str(char *buf, size_t cap, const void *s, size_t len, size_t max)
{
	const uint8_t *p = s;
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		if (i == max) {
			o += (size_t)snprintf(buf + o, cap - o, "...");
			break;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf[o++] = (char)p[i];
		else if (p[i] >= 0x80 && ts_utf8_valid(p + i, len - i))
			buf[o++] = (char)p[i]; /* the rest is valid UTF-8: keep it readable */
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
	}
	buf[o] = 0;
}

/* A JSON string; bytes of invalid UTF-8 become U+FFFD so the output is always JSON. */
static void json_str(FILE *f, const void *s, size_t len)
{
	const uint8_t *p = s;
	int valid = ts_utf8_valid(p, len);
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else if (c >= 0x80 && !valid)
			fputs("\\ufffd", f);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- progress on a terminal ---- */

static int g_progress = -1;
static int64_t g_progress_at;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	if (g_progress < 0)
		g_progress = isatty(2);
	if (!g_progress)
		return;
	int64_t now = mono_ms();
	if (now - g_progress_at < 200)
		return;
	g_progress_at = now;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

static void progress_done(void)
{
	if (g_progress > 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

/* ---- the data directory, read-only ---- */

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when dir holds a database (an index env), else 0 with a message on stderr. */
static int check_db_dir(const char *dir)
{
	char path[4200];
	struct stat st;
	if (!is_dir(dir)) {
		fprintf(stderr, "tsdbctl: %s: not a directory\n", dir);
		return 0;
	}
	snprintf(path, sizeof path, "%s/index.mdb/data.mdb", dir);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "tsdbctl: %s is not a database (no index.mdb/data.mdb)\n", dir);
		return 0;
	}
	return 1;
}

struct part {
	int64_t start, end;
	char name[256]; /* "<start>_<end>" under raw/ */
};

struct ro_db {
	const char *dir;
	struct ts_env *index;
	unsigned t_series, t_postings, t_meta, t_heads, t_metadata;
	int has_heads, has_metadata;
	uint32_t format;      /* 0: not yet written */
	int64_t partition_ms; /* 0: not yet written */
	uint64_t next_id, checkpoint_lsn;
	int has_next_id, has_ckpt;
	struct part *parts;
	size_t n_parts;
	size_t n_skipped_dirs; /* unexpected entries in raw/ */
};

static int part_cmp(const void *a, const void *b)
{
	const struct part *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static int list_parts(struct ro_db *db)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/raw", db->dir);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int64_t start, end;
		/* <dir>.compact / <dir>.old belong to a compaction in progress (compact.c) */
		enum ts_part_dir kind = ts__part_dir_kind(e->d_name, &start, &end);
		if (kind != TS_PART_DIR_LIVE) {
			if (kind == TS_PART_DIR_OTHER)
				db->n_skipped_dirs++;
			continue;
		}
		if (db->n_parts == cap) {
			cap = cap ? cap * 2 : 16;
			struct part *p = ts_realloc(db->parts, cap * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			db->parts = p;
		}
		struct part *p = &db->parts[db->n_parts++];
		p->start = start;
		p->end = end;
		snprintf(p->name, sizeof p->name, "%s", e->d_name);
	}
	closedir(d);
	if (db->n_parts)
		qsort(db->parts, db->n_parts, sizeof *db->parts, part_cmp);
	return rc;
}

static int meta_get(struct ts_rtxn *r, unsigned t, const char *key, void *out, size_t len)
{
	const void *v;
	size_t vl;
	int rc = ts_env_get(r, t, key, strlen(key), &v, &vl);
	if (rc)
		return rc;
	if (vl != len)
		return TS_ECORRUPT;
	memcpy(out, v, len);
	return 0;
}

static void ro_close(struct ro_db *db)
{
	ts_env_close(db->index);
	ts_free(db->parts);
	memset(db, 0, sizeof *db);
}

/* Opens the index env read-only and lists partitions. Returns an exit code. */
static int ro_open(struct ro_db *db, const char *dir)
{
	memset(db, 0, sizeof *db);
	db->dir = dir;
	if (!check_db_dir(dir))
		return EXIT_NOTDB;
	char path[4200];
	snprintf(path, sizeof path, "%s/index.mdb", dir);
	struct ts_env_opts eo = { .read_only = 1 };
	int rc = ts_env_open(path, &eo, &db->index);
	if (rc) {
		fprintf(stderr, "tsdbctl: cannot open %s read-only: %s\n", path, ts_strerror(rc));
		return EXIT_FAIL;
	}
	if ((rc = ts_env_table(db->index, "series", 0, &db->t_series)) ||
	    (rc = ts_env_table(db->index, "postings", TS_TABLE_DUPFIXED_U64, &db->t_postings)) ||
	    (rc = ts_env_table(db->index, "meta", 0, &db->t_meta))) {
		fprintf(stderr, "tsdbctl: %s: %s\n", path,
			rc == TS_ENOTFOUND ? "no series/postings/meta table: not a tsdb index"
					   : ts_strerror(rc));
		ro_close(db);
		return rc == TS_ENOTFOUND ? EXIT_NOTDB : EXIT_FAIL;
	}
	db->has_heads = ts_env_table(db->index, "heads", 0, &db->t_heads) == 0;
	db->has_metadata = ts_env_table(db->index, "metadata", 0, &db->t_metadata) == 0;

	struct ts_rtxn *r;
	rc = ts_env_read_begin(db->index, &r);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s: %s\n", path, ts_strerror(rc));
		ro_close(db);
		return EXIT_FAIL;
	}
	uint64_t pms = 0;
	if (meta_get(r, db->t_meta, "format", &db->format, 4))
		db->format = 0;
	if (meta_get(r, db->t_meta, "partition_ms", &pms, 8) == 0)
		db->partition_ms = (int64_t)pms;
	db->has_next_id = meta_get(r, db->t_meta, "next_id", &db->next_id, 8) == 0;
	db->has_ckpt = meta_get(r, db->t_meta, "checkpoint_lsn", &db->checkpoint_lsn, 8) == 0;
	ts_env_read_end(r);
	rc = list_parts(db);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s/raw: %s\n", dir, ts_strerror(rc));
		ro_close(db);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* Opens one partition env read-only. Returns 0, TS_ENOTFOUND (the directory is gone:
 * retention or a compaction's rename got there first; *chunks_absent not set), or an
 * error. *has_chunks is 0 when the env has no chunks table yet (just created). */
static int part_open(const struct ro_db *db, const struct part *p, struct ts_env **env,
		     unsigned *chunks, unsigned *meta, int *has_chunks, int *has_meta)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/raw/%s", db->dir, p->name);
	struct ts_env_opts eo = { .read_only = 1 };
	int rc = TS_ENOTFOUND;
	for (int tries = 0; tries < 3; tries++) {
		if (!is_dir(path)) {
			/* a compaction swaps by two renames: look again a moment later */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			rc = TS_ENOTFOUND;
			continue;
		}
		rc = ts_env_open(path, &eo, env);
		if (rc != -ENOENT)
			break;
		rc = TS_ENOTFOUND;
	}
	if (rc)
		return rc;
	*has_chunks = ts_env_table(*env, "chunks", 0, chunks) == 0;
	*has_meta = ts_env_table(*env, "meta", 0, meta) == 0;
	return 0;
}

static uint64_t wal_bytes(const char *dir, uint64_t *n_files)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/wal", dir);
	DIR *d = opendir(path);
	uint64_t sum = 0;
	*n_files = 0;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char f[4500];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof f, "%s/%s", path, e->d_name);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode)) {
			sum += (uint64_t)st.st_size;
			(*n_files)++;
		}
	}
	closedir(d);
	return sum;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ======================================================================== inspect */

struct name_count {
	char *name;
	uint32_t len;
	uint64_t series, values;
};

struct nc_list {
	struct name_count *v;
	size_t n, cap;
};

static int nc_add(struct nc_list *l, const void *name, size_t len, uint64_t series, uint64_t values)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct name_count *v = ts_realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	char *copy = ts_malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, len);
	copy[len] = 0;
	l->v[l->n++] = (struct name_count){ copy, (uint32_t)len, series, values };
	return 0;
}

static void nc_free(struct nc_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		ts_free(l->v[i].name);
	ts_free(l->v);
	memset(l, 0, sizeof *l);
}

static int nc_cmp(const void *a, const void *b)
{
	const struct name_count *x = a, *y = b;
	if (x->series != y->series)
		return x->series < y->series ? 1 : -1;
	int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

struct part_stats {
	const struct part *p;
	int gone, has_error;
	int compacted;
	uint64_t chunks, samples, payload_bytes, used_bytes, bad_records;
	int64_t data_min, data_max;
};

struct inspect {
	uint64_t n_series, n_metadata, n_heads, head_samples;
	uint64_t wal_bytes, wal_files, index_used;
	uint64_t n_postings_keys, n_postings;
	struct nc_list metrics, labels;
	struct part_stats *ps;
};

static int inspect_index(struct ro_db *db, struct inspect *in)
{
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	uint8_t prev[TS_POSTING_KEY_MAX + 1];
	size_t prev_len = 0;
	int have_prev = 0;
	uint64_t key_ids = 0;
	/* current label name aggregate */
	uint8_t lname[TS_POSTING_KEY_MAX + 1];
	size_t lname_len = 0;
	int have_lname = 0;
	uint64_t l_series = 0, l_values = 0;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc)
		return rc;
	uint64_t map;
	ts_env_size(db->index, &map, &in->index_used);

	const void *k, *v;
	size_t kl, vl;
	if ((rc = ts_cursor_open(r, db->t_series, &c)))
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c))
		in->n_series++;
	ts_cursor_close(c);
	c = NULL;
	if (rc != TS_ENOTFOUND)
		goto out;

	if (db->has_metadata) {
		if ((rc = ts_cursor_open(r, db->t_metadata, &c)))
			goto out;
		for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c))
			in->n_metadata++;
		ts_cursor_close(c);
		c = NULL;
		if (rc != TS_ENOTFOUND)
			goto out;
	}
	if (db->has_heads) {
		if ((rc = ts_cursor_open(r, db->t_heads, &c)))
			goto out;
		for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
			if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
				goto out;
			in->n_heads++;
			const uint8_t *p = v;
			if (vl >= SNAP_FIXED + 4) {
				uint32_t chunk = get_le32(p + 58);
				in->head_samples += (uint32_t)(p[29] | p[30] << 8);
				if (chunk <= vl - SNAP_FIXED - 4)
					in->head_samples += get_le32(p + SNAP_FIXED + chunk);
			}
		}
		ts_cursor_close(c);
		c = NULL;
		if (rc != TS_ENOTFOUND)
			goto out;
	}

	/* Postings: ids per key; keys sort by name first, so names aggregate in one pass. */
	if ((rc = ts_cursor_open(r, db->t_postings, &c)))
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0);; rc = ts_cursor_next(c)) {
		int end = rc == TS_ENOTFOUND;
		if (rc && !end)
			goto out;
		if (!end && (rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			goto out;
		if (!end && have_prev && kl == prev_len && memcmp(k, prev, kl) == 0) {
			key_ids++;
			in->n_postings++;
			continue;
		}
		if (have_prev) {
			/* close the previous key */
			const uint8_t *z = memchr(prev, 0, prev_len);
			if (z && z != prev) {
				size_t nl = (size_t)(z - prev);
				if (nl == 8 && memcmp(prev, "__name__", 8) == 0 &&
				    (rc = nc_add(&in->metrics, z + 1, prev_len - nl - 1, key_ids,
						 1)))
					goto out;
				if (have_lname &&
				    (nl != lname_len || memcmp(prev, lname, nl) != 0)) {
					if ((rc = nc_add(&in->labels, lname, lname_len, l_series,
							 l_values)))
						goto out;
					have_lname = 0;
				}
				if (!have_lname) {
					memcpy(lname, prev, nl);
					lname_len = nl;
					have_lname = 1;
					l_series = l_values = 0;
				}
				l_series += key_ids;
				l_values++;
			}
		}
		if (end)
			break;
		if (kl > TS_POSTING_KEY_MAX)
			kl = TS_POSTING_KEY_MAX; /* not a valid key; verify says so */
		memcpy(prev, k, kl);
		prev_len = kl;
		have_prev = 1;
		key_ids = 1;
		in->n_postings_keys++;
		in->n_postings++;
	}
	if (have_lname && (rc = nc_add(&in->labels, lname, lname_len, l_series, l_values)))
		goto out;
	rc = 0;
out:
	ts_cursor_close(c);
	ts_env_read_end(r);
	return rc;
}

static int inspect_part(struct ro_db *db, struct part_stats *s)
{
	struct ts_env *env = NULL;
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	unsigned chunks, meta;
	int has_chunks, has_meta;
	s->data_min = INT64_MAX;
	s->data_max = INT64_MIN;
	int rc = part_open(db, s->p, &env, &chunks, &meta, &has_chunks, &has_meta);
	if (rc == TS_ENOTFOUND) {
		s->gone = 1;
		return 0;
	}
	if (rc)
		return rc;
	uint64_t map;
	ts_env_size(env, &map, &s->used_bytes);
	if ((rc = ts_env_read_begin(env, &r)))
		goto out;
	const void *k, *v;
	size_t kl, vl;
	if (has_meta)
		s->compacted = ts_env_get(r, meta, "compacted", 9, &v, &vl) == 0;
	if (!has_chunks)
		goto out;
	if ((rc = ts_cursor_open(r, chunks, &c)))
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			goto out;
		s->chunks++;
		const uint8_t *p = v;
		if (vl < TS_CHUNK_HDR_LEN || p[0] != TS_CHUNK_VERSION) {
			s->bad_records++;
			continue;
		}
		int64_t mint = (int64_t)get_le64(p + 8), maxt = (int64_t)get_le64(p + 16);
		s->samples += get_le32(p + 4);
		s->payload_bytes += vl - TS_CHUNK_HDR_LEN;
		if (mint < s->data_min)
			s->data_min = mint;
		if (maxt > s->data_max)
			s->data_max = maxt;
		if ((s->chunks & 0xffff) == 0)
			progress("inspect: raw/%s: %" PRIu64 " chunks", s->p->name, s->chunks);
	}
	if (rc == TS_ENOTFOUND)
		rc = 0;
out:
	ts_cursor_close(c);
	ts_env_read_end(r);
	ts_env_close(env);
	return rc;
}

static void print_top_text(const char *title, const struct nc_list *l, size_t top, int values)
{
	printf("\ntop %zu %s by series (of %zu):\n", top < l->n ? top : l->n, title, l->n);
	if (values)
		printf("  %12s %10s  %s\n", "series", "values", "name");
	else
		printf("  %12s  %s\n", "series", "name");
	for (size_t i = 0; i < l->n && i < top; i++) {
		char name[400];
		fmt_str(name, sizeof name, l->v[i].name, l->v[i].len, 200);
		if (values)
			printf("  %12" PRIu64 " %10" PRIu64 "  %s\n", l->v[i].series,
			       l->v[i].values, name);
		else
			printf("  %12" PRIu64 "  %s\n", l->v[i].series, name);
	}
}

static void print_top_json(FILE *f, const struct nc_list *l, size_t top, int values)
{
	fputc('[', f);
	for (size_t i = 0; i < l->n && i < top; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, l->v[i].name, l->v[i].len);
		fprintf(f, ",\"series\":%" PRIu64, l->v[i].series);
		if (values)
			fprintf(f, ",\"values\":%" PRIu64, l->v[i].values);
		fputc('}', f);
	}
	fputc(']', f);
}

static void inspect_print_text(const struct ro_db *db, const struct inspect *in, size_t top)
{
	char a[64], b[64], c[64];
	printf("data directory   %s\n", db->dir);
	if (db->format)
		printf("format           %" PRIu32 "\n", db->format);
	else
		printf("format           (not yet written)\n");
	if (db->partition_ms) {
		fmt_duration(a, sizeof a, db->partition_ms);
		printf("partition width  %s (%" PRId64 " ms)\n", a, db->partition_ms);
	} else {
		printf("partition width  (not yet written)\n");
	}
	printf("series           %" PRIu64, in->n_series);
	if (db->has_next_id)
		printf(" (next id %" PRIu64 ")", db->next_id);
	printf("\ncheckpoint LSN   %" PRIu64 "%s\n", db->checkpoint_lsn,
	       db->has_ckpt ? "" : " (no checkpoint yet)");
	fmt_bytes(a, sizeof a, in->wal_bytes);
	printf("WAL              %s in %" PRIu64 " file(s)\n", a, in->wal_files);
	fmt_bytes(a, sizeof a, in->index_used);
	printf("index            %s in use, %" PRIu64 " postings keys, %" PRIu64
	       " postings entries\n",
	       a, in->n_postings_keys, in->n_postings);
	printf("metadata         %" PRIu64 " metric families\n", in->n_metadata);
	printf("head snapshots   %" PRIu64 " series, %" PRIu64 " samples (open chunks at the "
	       "last checkpoint)\n",
	       in->n_heads, in->head_samples);

	printf("\npartitions (%zu):\n", db->n_parts);
	printf("  %-20s  %-20s %10s %12s %11s %8s  %s\n", "start", "end", "chunks", "samples",
	       "bytes", "B/sample", "compacted");
	uint64_t tc = 0, ts_ = 0, tb = 0;
	for (size_t i = 0; i < db->n_parts; i++) {
		const struct part_stats *s = &in->ps[i];
		fmt_time(a, sizeof a, s->p->start);
		fmt_time(b, sizeof b, s->p->end);
		if (s->gone) {
			printf("  %-20s  %-20s  (removed while reading)\n", a, b);
			continue;
		}
		if (s->has_error) {
			printf("  %-20s  %-20s  (unreadable: run tsdbctl verify)\n", a, b);
			continue;
		}
		if (s->samples)
			snprintf(c, sizeof c, "%.2f", (double)s->used_bytes / (double)s->samples);
		else
			snprintf(c, sizeof c, "-");
		printf("  %-20s  %-20s %10" PRIu64 " %12" PRIu64 " %11" PRIu64 " %8s  %s%s\n", a, b,
		       s->chunks, s->samples, s->used_bytes, c, s->compacted ? "yes" : "no",
		       s->bad_records ? "  (bad records: run tsdbctl verify)" : "");
		tc += s->chunks;
		ts_ += s->samples;
		tb += s->used_bytes;
	}
	if (ts_)
		snprintf(c, sizeof c, "%.2f", (double)tb / (double)ts_);
	else
		snprintf(c, sizeof c, "-");
	printf("  %-20s  %-20s %10" PRIu64 " %12" PRIu64 " %11" PRIu64 " %8s\n", "total", "", tc,
	       ts_, tb, c);
	if (db->n_skipped_dirs)
		printf("  (%zu unexpected entries in raw/ ignored)\n", db->n_skipped_dirs);

	print_top_text("metric names", &in->metrics, top, 0);
	print_top_text("label names", &in->labels, top, 1);
}

static void inspect_print_json(const struct ro_db *db, const struct inspect *in, size_t top)
{
	FILE *f = stdout;
	char a[64];
	fputs("{\"data_dir\":", f);
	json_str(f, db->dir, strlen(db->dir));
	fprintf(f, ",\"format\":%" PRIu32 ",\"partition_ms\":%" PRId64 ",\"series\":%" PRIu64,
		db->format, db->partition_ms, in->n_series);
	fprintf(f, ",\"next_id\":%" PRIu64 ",\"checkpoint_lsn\":%" PRIu64, db->next_id,
		db->checkpoint_lsn);
	fprintf(f, ",\"wal_bytes\":%" PRIu64 ",\"wal_files\":%" PRIu64, in->wal_bytes,
		in->wal_files);
	fprintf(f,
		",\"index_bytes\":%" PRIu64 ",\"postings_keys\":%" PRIu64
		",\"postings_entries\":%" PRIu64,
		in->index_used, in->n_postings_keys, in->n_postings);
	fprintf(f,
		",\"metadata\":%" PRIu64 ",\"head_snapshots\":{\"series\":%" PRIu64
		",\"samples\":%" PRIu64 "}",
		in->n_metadata, in->n_heads, in->head_samples);
	fputs(",\"partitions\":[", f);
	uint64_t tc = 0, ts_ = 0, tb = 0;
	int first = 1;
	for (size_t i = 0; i < db->n_parts; i++) {
		const struct part_stats *s = &in->ps[i];
		fputs(first ? "{" : ",{", f);
		first = 0;
		fprintf(f, "\"dir\":\"raw/%s\"", s->p->name);
		fmt_time(a, sizeof a, s->p->start);
		fprintf(f, ",\"start\":\"%s\"", a);
		fmt_time(a, sizeof a, s->p->end);
		fprintf(f, ",\"end\":\"%s\",\"start_ms\":%" PRId64 ",\"end_ms\":%" PRId64, a,
			s->p->start, s->p->end);
		if (s->gone || s->has_error) {
			fprintf(f, ",\"%s\":true}", s->gone ? "removed" : "unreadable");
			continue;
		}
		fprintf(f,
			",\"chunks\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"bytes\":%" PRIu64
			",\"payload_bytes\":%" PRIu64,
			s->chunks, s->samples, s->used_bytes, s->payload_bytes);
		if (s->samples)
			fprintf(f, ",\"bytes_per_sample\":%.4f",
				(double)s->used_bytes / (double)s->samples);
		else
			fputs(",\"bytes_per_sample\":null", f);
		if (s->chunks) {
			fmt_time(a, sizeof a, s->data_min);
			fprintf(f, ",\"data_min\":\"%s\"", a);
			fmt_time(a, sizeof a, s->data_max);
			fprintf(f, ",\"data_max\":\"%s\"", a);
		}
		fprintf(f, ",\"bad_records\":%" PRIu64 ",\"compacted\":%s}", s->bad_records,
			s->compacted ? "true" : "false");
		tc += s->chunks;
		ts_ += s->samples;
		tb += s->used_bytes;
	}
	fprintf(f,
		"],\"totals\":{\"chunks\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"bytes\":%" PRIu64,
		tc, ts_, tb);
	if (ts_)
		fprintf(f, ",\"bytes_per_sample\":%.4f}", (double)tb / (double)ts_);
	else
		fputs(",\"bytes_per_sample\":null}", f);
	fputs(",\"top_metrics\":", f);
	print_top_json(f, &in->metrics, top, 0);
	fputs(",\"top_labels\":", f);
	print_top_json(f, &in->labels, top, 1);
	fputs("}\n", f);
}

static int cmd_inspect(const char *dir, size_t top, int json)
{
	struct ro_db db;
	int ex = ro_open(&db, dir);
	if (ex)
		return ex;
	struct inspect in = { 0 };
	in.wal_bytes = wal_bytes(dir, &in.wal_files);
	int rc = inspect_index(&db, &in);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s/index.mdb: %s\n", dir, ts_strerror(rc));
		ex = EXIT_FAIL;
		goto out;
	}
	in.ps = ts_calloc(db.n_parts ? db.n_parts : 1, sizeof *in.ps);
	if (!in.ps) {
		ex = EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < db.n_parts; i++) {
		in.ps[i].p = &db.parts[i];
		progress("inspect: raw/%s", db.parts[i].name);
		rc = inspect_part(&db, &in.ps[i]);
		if (rc) {
			fprintf(stderr, "tsdbctl: %s/raw/%s: %s\n", dir, db.parts[i].name,
				ts_strerror(rc));
			in.ps[i].has_error = 1;
			ex = EXIT_FAIL;
		}
	}
	progress_done();
	if (in.metrics.n)
		qsort(in.metrics.v, in.metrics.n, sizeof *in.metrics.v, nc_cmp);
	if (in.labels.n)
		qsort(in.labels.v, in.labels.n, sizeof *in.labels.v, nc_cmp);
	if (json)
		inspect_print_json(&db, &in, top);
	else
		inspect_print_text(&db, &in, top);
out:
	nc_free(&in.metrics);
	nc_free(&in.labels);
	ts_free(in.ps);
	ro_close(&db);
	if (fflush(stdout) != 0 && ex == EXIT_OK)
		ex = EXIT_FAIL;
	return ex;
}

/* ========================================================================= verify */

#define VS_ALL 0x1     /* listed under the all-series postings key */
#define VS_BAD 0x2     /* its row does not parse: postings are not compared */
#define VS_SUSPECT 0x4 /* its postings do not add up: looked at in detail */

struct vseries {
	uint64_t id;
	uint64_t hash;	    /* of the packed labels, to find duplicate label sets */
	uint64_t want, got; /* sums of posting-key hashes: expected from labels, seen */
	uint32_t flags;
};

struct verify {
	struct ro_db *db;
	uint64_t n_problems;
	struct vseries *s;
	size_t n_series;
	uint64_t n_postings_keys, n_postings, n_heads, n_metadata;
	uint64_t n_chunks, n_samples, n_parts_checked;
	struct ts_label *lab; /* scratch for unpacking */
	uint32_t lab_cap;
};

static void problem(struct verify *v, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct verify *v, const char *where, const char *fmt, ...)
{
	if (g_progress > 0)
		progress_done();
	va_list ap;
	va_start(ap, fmt);
	printf("PROBLEM %s: ", where);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	v->n_problems++;
}

static struct vseries *vs_find(struct verify *v, uint64_t id)
{
	size_t lo = 0, hi = v->n_series;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->s[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n_series && v->s[lo].id == id ? &v->s[lo] : NULL;
}

/* Unpacks a series row into v->lab. Returns the count or a negative error. */
static int unpack(struct verify *v, const void *p, size_t len, uint32_t *n)
{
	int cnt = ts_labels_count(p, len);
	if (cnt < 0)
		return cnt;
	if ((uint32_t)cnt > v->lab_cap) {
		struct ts_label *l = ts_realloc(v->lab, (size_t)cnt * sizeof *l);
		if (!l)
			return -ENOMEM;
		v->lab = l;
		v->lab_cap = (uint32_t)cnt;
	}
	return ts_labels_unpack(p, len, v->lab, v->lab_cap, n);
}

/* The labels of a series for a message: {a="x", b="y"}, cut. */
static void fmt_labels(char *buf, size_t cap, const struct ts_label *l, uint32_t n)
{
	size_t o = 0;
	buf[o++] = '{';
	for (uint32_t i = 0; i < n && o + 64 < cap; i++) {
		char nm[140], val[140];
		fmt_str(nm, sizeof nm, l[i].name, l[i].name_len, 40);
		fmt_str(val, sizeof val, l[i].value, l[i].value_len, 40);
		o += (size_t)snprintf(buf + o, cap - o, "%s%s=\"%s\"", i ? ", " : "", nm, val);
	}
	if (o + 2 > cap)
		o = cap - 2;
	buf[o++] = '}';
	buf[o] = 0;
}

static uint64_t key_hash(const void *k, size_t kl)
{
	return ts_labels_hash(k, kl);
}

/* Checks the canonical form of a label set; returns a reason or NULL. */
static const char *labels_problem(const struct ts_label *l, uint32_t n)
{
	int has_name = 0;
	if (n == 0)
		return "no labels";
	for (uint32_t i = 0; i < n; i++) {
		if (l[i].name_len == 0)
			return "a label with an empty name";
		if (memchr(l[i].name, 0, l[i].name_len))
			return "a label name with a zero byte";
		if (l[i].value_len == 0)
			return "a label with an empty value";
		if (!ts_utf8_valid(l[i].value, l[i].value_len))
			return "a label value that is not UTF-8";
		if (i) {
			size_t a = l[i - 1].name_len, b = l[i].name_len;
			int c = memcmp(l[i - 1].name, l[i].name, a < b ? a : b);
			if (c > 0 || (c == 0 && a >= b))
				return "labels not sorted by name or a name repeated";
		}
		if (l[i].name_len == 8 && memcmp(l[i].name, "__name__", 8) == 0)
			has_name = 1;
	}
	return has_name ? NULL : "no __name__ label";
}

static int vs_hash_cmp(const void *a, const void *b)
{
	const struct vseries *x = *(const struct vseries *const *)a;
	const struct vseries *y = *(const struct vseries *const *)b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int verify_series(struct verify *v, struct ts_rtxn *r)
{
	struct ro_db *db = v->db;
	struct ts_cursor *c = NULL;
	size_t cap = 0;
	char where[64];
	int rc = ts_cursor_open(r, db->t_series, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *val;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
			goto out;
		if (kl != 8) {
			char ks[80];
			fmt_str(ks, sizeof ks, k, kl, 16);
			problem(v, "index series", "key \"%s\" is %zu bytes, not 8", ks, kl);
			continue;
		}
		uint64_t id = ts__get_be64(k);
		snprintf(where, sizeof where, "index series %" PRIu64, id);
		if (id == 0)
			problem(v, where, "series id 0 is never assigned");
		if (db->has_next_id && id >= db->next_id)
			problem(v, where, "id is not below meta next_id %" PRIu64, db->next_id);
		if (v->n_series == cap) {
			cap = cap ? cap * 2 : 1024;
			struct vseries *s = ts_realloc(v->s, cap * sizeof *s);
			if (!s) {
				rc = -ENOMEM;
				goto out;
			}
			v->s = s;
		}
		struct vseries *s = &v->s[v->n_series++];
		*s = (struct vseries){ .id = id, .hash = ts_labels_hash(val, vl) };
		uint32_t n;
		rc = unpack(v, val, vl, &n);
		if (rc == -ENOMEM)
			goto out;
		if (rc) {
			problem(v, where, "packed label set does not parse (%zu bytes)", vl);
			s->flags |= VS_BAD;
			rc = 0;
			continue;
		}
		const char *why = labels_problem(v->lab, n);
		if (why) {
			char ls[600];
			fmt_labels(ls, sizeof ls, v->lab, n);
			problem(v, where, "label set %s is not canonical: %s", ls, why);
		}
		for (uint32_t i = 0; i < n; i++) {
			uint8_t key[TS_POSTING_KEY_MAX];
			if (v->lab[i].name_len > 256)
				continue; /* cannot be a postings key; reported as missing below */
			size_t pkl = ts__posting_key(key, v->lab[i].name, v->lab[i].name_len,
						     v->lab[i].value, v->lab[i].value_len);
			s->want += key_hash(key, pkl);
		}
		if ((v->n_series & 0xffff) == 0)
			progress("verify: index series: %zu", v->n_series);
	}
	if (rc != TS_ENOTFOUND)
		goto out;
	rc = 0;
	/* keys are big-endian ids, so the array is sorted by id; check it anyway */
	for (size_t i = 1; i < v->n_series; i++)
		if (v->s[i].id <= v->s[i - 1].id) {
			problem(v, "index series",
				"ids out of order in the table (%" PRIu64 " after %" PRIu64 ")",
				v->s[i].id, v->s[i - 1].id);
			rc = TS_ECORRUPT;
			goto out;
		}
	/* Two ids with one label set: the registry would hold only one of them. */
	if (v->n_series > 1) {
		struct vseries **by = ts_malloc(v->n_series * sizeof *by);
		if (!by) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < v->n_series; i++)
			by[i] = &v->s[i];
		qsort(by, v->n_series, sizeof *by, vs_hash_cmp);
		for (size_t i = 1; i < v->n_series; i++) {
			if (by[i]->hash != by[i - 1]->hash)
				continue;
			uint8_t ka[8], kb[8];
			const void *a, *b;
			size_t al, bl;
			ts__be64(ka, by[i - 1]->id);
			ts__be64(kb, by[i]->id);
			if (ts_env_get(r, db->t_series, ka, 8, &a, &al) == 0 &&
			    ts_env_get(r, db->t_series, kb, 8, &b, &bl) == 0 && al == bl &&
			    memcmp(a, b, al) == 0) {
				snprintf(where, sizeof where, "index series %" PRIu64, by[i]->id);
				problem(v, where, "same label set as series %" PRIu64,
					by[i - 1]->id);
			}
		}
		ts_free(by);
	}
out:
	ts_cursor_close(c);
	return rc;
}

static void fmt_posting_key(char *buf, size_t cap, const uint8_t *k, size_t kl)
{
	const uint8_t *z = memchr(k, 0, kl);
	if (kl == 1 && k[0] == 0) {
		snprintf(buf, cap, "(all series)");
		return;
	}
	if (!z) {
		fmt_str(buf, cap, k, kl, 80);
		return;
	}
	char n[300], val[300];
	fmt_str(n, sizeof n, k, (size_t)(z - k), 80);
	fmt_str(val, sizeof val, z + 1, kl - (size_t)(z - k) - 1, 80);
	size_t o = strlen(n);
	if (o + 4 > cap)
		o = cap - 4;
	memcpy(buf, n, o);
	buf[o++] = '=';
	buf[o++] = '"';
	size_t vl = strlen(val);
	if (o + vl + 2 > cap)
		vl = cap - o - 2;
	memcpy(buf + o, val, vl);
	o += vl;
	buf[o++] = '"';
	buf[o] = 0;
}

/* Whether posting key k belongs to the labels in v->lab[0..n). */
static int labels_have_key(const struct verify *v, uint32_t n, const uint8_t *k, size_t kl)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t key[TS_POSTING_KEY_MAX];
		if (v->lab[i].name_len > 256)
			continue;
		size_t pkl = ts__posting_key(key, v->lab[i].name, v->lab[i].name_len,
					     v->lab[i].value, v->lab[i].value_len);
		if (pkl == kl && memcmp(key, k, kl) == 0)
			return 1;
	}
	return 0;
}

/* Pass 1 (all series): postings point at existing series; per series the keys seen
 * add up (as a sum of key hashes) to the keys its labels call for. Pass 2 (only series
 * whose sums differ): names each missing and each extra key. */
static int verify_postings(struct verify *v, struct ts_rtxn *r)
{
	struct ro_db *db = v->db;
	struct ts_cursor *c = NULL;
	uint8_t prev[TS_POSTING_KEY_MAX + 1];
	size_t prev_len = 0;
	int have_prev = 0, key_ok = 0, is_all = 0;
	uint64_t h = 0;
	uint64_t *ids = NULL;
	size_t n_ids = 0, cap_ids = 0;
	char where[700], ks[600];
	int rc = ts_cursor_open(r, db->t_postings, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *val;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
			goto out;
		v->n_postings++;
		if (!have_prev || kl != prev_len || memcmp(k, prev, kl) != 0) {
			if (kl > TS_POSTING_KEY_MAX) {
				fmt_str(ks, sizeof ks, k, kl, 80);
				problem(v, "index postings", "key \"%s\" is %zu bytes, over %d", ks,
					kl, TS_POSTING_KEY_MAX);
				kl = TS_POSTING_KEY_MAX;
			}
			memcpy(prev, k, kl);
			prev_len = kl;
			have_prev = 1;
			v->n_postings_keys++;
			const uint8_t *z = memchr(prev, 0, kl);
			is_all = kl == 1 && prev[0] == 0;
			fmt_posting_key(ks, sizeof ks, prev, kl);
			snprintf(where, sizeof where, "index postings %s", ks);
			key_ok = 1;
			if (!is_all && (!z || z == prev)) {
				problem(v, where, "key has %s",
					z ? "an empty label name"
					  : "no 0x00 between name and value");
				key_ok = 0;
			} else if (!is_all && kl - (size_t)(z - prev) - 1 == 0) {
				problem(v, where, "key has an empty label value");
				key_ok = 0;
			} else if (!is_all && kl - (size_t)(z - prev) - 1 > TS_POSTING_VALUE_MAX) {
				problem(v, where, "value longer than %d bytes",
					TS_POSTING_VALUE_MAX);
			}
			h = key_hash(prev, kl);
		}
		if (vl != 8) {
			problem(v, where, "value of %zu bytes, not a u64 series id", vl);
			continue;
		}
		uint64_t id;
		memcpy(&id, val, 8);
		struct vseries *s = vs_find(v, id);
		if (!s) {
			problem(v, where,
				"lists series %" PRIu64 ", which is not in the series table", id);
			continue;
		}
		if (is_all)
			s->flags |= VS_ALL;
		else if (key_ok)
			s->got += h;
		if ((v->n_postings & 0xfffff) == 0)
			progress("verify: index postings: %" PRIu64, v->n_postings);
	}
	if (rc != TS_ENOTFOUND)
		goto out;
	rc = 0;

	/* Pass 2. */
	for (size_t i = 0; i < v->n_series; i++) {
		struct vseries *s = &v->s[i];
		if (s->flags & VS_BAD)
			continue;
		snprintf(where, sizeof where, "index series %" PRIu64, s->id);
		if (!(s->flags & VS_ALL))
			problem(v, where, "missing from the all-series postings key");
		if (s->want == s->got)
			continue;
		s->flags |= VS_SUSPECT;
		uint8_t idk[8], key[TS_POSTING_KEY_MAX];
		const void *row;
		size_t rl;
		uint32_t n;
		ts__be64(idk, s->id);
		if ((rc = ts_env_get(r, db->t_series, idk, 8, &row, &rl)) ||
		    (rc = unpack(v, row, rl, &n)))
			goto out;
		for (uint32_t j = 0; j < n; j++) {
			if (v->lab[j].name_len > 256) {
				problem(v, where,
					"label name of %u bytes cannot have a postings key",
					v->lab[j].name_len);
				continue;
			}
			size_t pkl = ts__posting_key(key, v->lab[j].name, v->lab[j].name_len,
						     v->lab[j].value, v->lab[j].value_len);
			n_ids = 0;
			if ((rc = ts_env_get_u64s(r, db->t_postings, key, pkl, &ids, &n_ids,
						  &cap_ids)))
				goto out;
			size_t lo = 0, hi = n_ids;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if (ids[mid] < s->id)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == n_ids || ids[lo] != s->id) {
				fmt_posting_key(ks, sizeof ks, key, pkl);
				problem(v, where, "missing from postings key %s", ks);
			}
		}
	}
	ts_cursor_close(c);
	c = NULL;
	int any = 0;
	for (size_t i = 0; i < v->n_series && !any; i++)
		any = (v->s[i].flags & VS_SUSPECT) != 0;
	if (!any)
		goto out;
	if ((rc = ts_cursor_open(r, db->t_postings, &c)))
		goto out;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *val;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
			goto out;
		uint64_t id;
		if (vl != 8 || (kl == 1 && *(const uint8_t *)k == 0))
			continue;
		memcpy(&id, val, 8);
		struct vseries *s = vs_find(v, id);
		if (!s || !(s->flags & VS_SUSPECT))
			continue;
		uint8_t idk[8];
		const void *row;
		size_t rl;
		uint32_t n;
		ts__be64(idk, s->id);
		if (ts_env_get(r, db->t_series, idk, 8, &row, &rl) || unpack(v, row, rl, &n))
			continue;
		if (!labels_have_key(v, n, k, kl)) {
			fmt_posting_key(ks, sizeof ks, k, kl);
			snprintf(where, sizeof where, "index postings %s", ks);
			problem(v, where,
				"lists series %" PRIu64 ", which does not have that label", id);
		}
	}
	if (rc == TS_ENOTFOUND)
		rc = 0;
out:
	ts_free(ids);
	ts_cursor_close(c);
	return rc;
}

/* Decodes a whole XOR chunk: count, first/last timestamps, order. NULL when fine. */
static const char *xor_problem(const uint8_t *p, size_t len, uint32_t n_want, int64_t min_t,
			       int64_t max_t, int check_bounds, char *why, size_t why_len)
{
	struct ts_xor_it it;
	if (ts_xor_it_init(&it, p, len))
		return "payload shorter than the XOR header";
	uint32_t n = 0;
	int64_t first = 0, last = 0;
	int rc;
	while ((rc = ts_xor_next(&it)) == 1) {
		if (n == 0)
			first = it.t;
		else if (it.t < last) {
			snprintf(why, why_len,
				 "timestamp %" PRId64 " of sample %" PRIu32
				 " is before the previous one (%" PRId64 ")",
				 it.t, n, last);
			return why;
		}
		last = it.t;
		n++;
	}
	if (rc < 0) {
		snprintf(why, why_len,
			 "XOR payload does not decode (after %" PRIu32 " of %" PRIu32 " samples)",
			 n, n_want);
		return why;
	}
	if (n != n_want) {
		snprintf(why, why_len, "payload holds %" PRIu32 " samples, header says %" PRIu32, n,
			 n_want);
		return why;
	}
	if (check_bounds && n && (first != min_t || last != max_t)) {
		snprintf(why, why_len,
			 "samples span %" PRId64 "..%" PRId64 ", header says %" PRId64 "..%" PRId64,
			 first, last, min_t, max_t);
		return why;
	}
	return NULL;
}

/* Validates a head snapshot as head.c's ts__head_restore() would, plus a full decode of
 * its chunk. NULL when fine. */
static const char *snapshot_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	if (len < SNAP_FIXED + 4) {
		snprintf(why, why_len, "%zu bytes, shorter than the fixed %d", len, SNAP_FIXED + 4);
		return why;
	}
	if (p[0] != SNAP_FORMAT) {
		snprintf(why, why_len, "format byte %u, not %d", p[0], SNAP_FORMAT);
		return why;
	}
	uint32_t chunk = get_le32(p + 58);
	if (chunk > SNAP_MAX_CHUNK || len < (size_t)SNAP_FIXED + chunk + 4) {
		snprintf(why, why_len, "chunk length %" PRIu32 " does not fit the %zu-byte value",
			 chunk, len);
		return why;
	}
	uint32_t m = get_le32(p + SNAP_FIXED + chunk);
	if (m > SNAP_MAX_OOO || len != (size_t)SNAP_FIXED + chunk + 4 + (size_t)m * 16) {
		snprintf(why, why_len,
			 "out-of-order count %" PRIu32 " does not match the %zu-byte "
			 "value",
			 m, len);
		return why;
	}
	uint16_t n = (uint16_t)(p[29] | p[30] << 8);
	uint32_t nbits = get_le32(p + 25);
	if ((n == 0) != (chunk == 0) || p[33] > 1 || (chunk && (nbits + 7) / 8 + p[33] != chunk)) {
		snprintf(why, why_len,
			 "encoder state (n %u, nbits %" PRIu32 ", tail_pad %u) does "
			 "not match the %" PRIu32 "-byte chunk",
			 n, nbits, p[33], chunk);
		return why;
	}
	if (chunk) {
		int64_t enc_t = (int64_t)get_le64(p + 34);
		const char *w = xor_problem(p + SNAP_FIXED, chunk, n, 0, 0, 0, why, why_len);
		if (w)
			return w;
		struct ts_xor_it it;
		int64_t last = 0;
		ts_xor_it_init(&it, p + SNAP_FIXED, chunk);
		while (ts_xor_next(&it) == 1)
			last = it.t;
		if (last != enc_t) {
			snprintf(why, why_len,
				 "chunk ends at %" PRId64 ", encoder state says %" PRId64, last,
				 enc_t);
			return why;
		}
	}
	const uint8_t *q = p + SNAP_FIXED + chunk + 4;
	for (uint32_t i = 1; i < m; i++)
		if ((int64_t)get_le64(q + 16 * i) <= (int64_t)get_le64(q + 16 * (i - 1))) {
			snprintf(why, why_len,
				 "out-of-order sample %" PRIu32 " not after the previous", i);
			return why;
		}
	return NULL;
}

static int verify_heads_metadata(struct verify *v, struct ts_rtxn *r)
{
	struct ro_db *db = v->db;
	struct ts_cursor *c = NULL;
	char where[400], why[300];
	int rc = 0;
	if (db->has_heads) {
		if ((rc = ts_cursor_open(r, db->t_heads, &c)))
			return rc;
		for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
			const void *k, *val;
			size_t kl, vl;
			if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
				goto out;
			v->n_heads++;
			if (kl != 8) {
				problem(v, "index heads", "key of %zu bytes, not 8", kl);
				continue;
			}
			uint64_t id = ts__get_be64(k);
			snprintf(where, sizeof where, "index heads series %" PRIu64, id);
			if (!vs_find(v, id))
				problem(v, where,
					"snapshot of a series that is not in the series table");
			const char *w = snapshot_problem(val, vl, why, sizeof why);
			if (w)
				problem(v, where, "snapshot does not parse: %s", w);
		}
		ts_cursor_close(c);
		c = NULL;
		if (rc != TS_ENOTFOUND)
			goto out;
		rc = 0;
	}
	if (db->has_metadata) {
		if ((rc = ts_cursor_open(r, db->t_metadata, &c)))
			return rc;
		for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
			const void *k, *val;
			size_t kl, vl;
			if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
				goto out;
			v->n_metadata++;
			char ks[300];
			fmt_str(ks, sizeof ks, k, kl, 80);
			snprintf(where, sizeof where, "index metadata \"%s\"", ks);
			/* layout: metadata.c */
			const uint8_t *p = val;
			uint32_t hl = vl >= 9 ? get_le32(p + 1) : 0;
			if (kl == 0 || vl < 9 || hl > vl - 9 ||
			    (size_t)9 + hl + get_le32(p + 5 + hl) != vl)
				problem(v, where, "value of %zu bytes does not parse", vl);
			else if (p[0] > TS_MT_STATESET)
				problem(v, where, "unknown metric type %u", p[0]);
		}
		if (rc != TS_ENOTFOUND)
			goto out;
		rc = 0;
	}
out:
	ts_cursor_close(c);
	return rc;
}

/* Is series id in the index now? (chunks are committed before their series' index
 * entry, so a live server can show a chunk whose series our snapshot lacks) */
static int series_exists_now(struct verify *v, uint64_t id)
{
	struct ts_rtxn *r;
	uint8_t k[8];
	const void *val;
	size_t vl;
	if (ts_env_read_begin(v->db->index, &r))
		return 0;
	ts__be64(k, id);
	int found = ts_env_get(r, v->db->t_series, k, 8, &val, &vl) == 0;
	ts_env_read_end(r);
	return found;
}

static const char *record_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	if (len < TS_CHUNK_HDR_LEN) {
		snprintf(why, why_len, "record of %zu bytes is shorter than the %d-byte header",
			 len, TS_CHUNK_HDR_LEN);
		return why;
	}
	if (p[0] != TS_CHUNK_VERSION) {
		snprintf(why, why_len, "format version %u, not %d", p[0], TS_CHUNK_VERSION);
		return why;
	}
	if (p[1] != TS_CHUNK_ENC_XOR) {
		snprintf(why, why_len, "encoding %u, not XOR (%d)", p[1], TS_CHUNK_ENC_XOR);
		return why;
	}
	uint16_t flags = (uint16_t)(p[2] | p[3] << 8);
	if (flags & ~TS_CHUNK_FLAG_OVERLAP) {
		snprintf(why, why_len, "unknown flags 0x%04x", flags);
		return why;
	}
	uint32_t plen = get_le32(p + 24);
	if (plen != len - TS_CHUNK_HDR_LEN) {
		snprintf(why, why_len, "payload length %" PRIu32 " but %zu bytes follow the header",
			 plen, len - TS_CHUNK_HDR_LEN);
		return why;
	}
	int64_t mint = (int64_t)get_le64(p + 8), maxt = (int64_t)get_le64(p + 16);
	if (mint > maxt) {
		snprintf(why, why_len, "min_t %" PRId64 " after max_t %" PRId64, mint, maxt);
		return why;
	}
	uint32_t crc = ts_crc32c(0, p + TS_CHUNK_HDR_LEN, plen), want = get_le32(p + 28);
	if (crc != want) {
		snprintf(why, why_len,
			 "CRC32C mismatch: payload has 0x%08" PRIx32 ", header says "
			 "0x%08" PRIx32,
			 crc, want);
		return why;
	}
	int n = ts_xor_count(p + TS_CHUNK_HDR_LEN, plen);
	if (n < 0 || (uint32_t)n != get_le32(p + 4)) {
		snprintf(why, why_len,
			 "header says %" PRIu32 " samples, the XOR payload's own count "
			 "is %d",
			 get_le32(p + 4), n);
		return why;
	}
	return NULL;
}

static int verify_part(struct verify *v, const struct part *p)
{
	struct ro_db *db = v->db;
	struct ts_env *env = NULL;
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	unsigned chunks, meta;
	int has_chunks, has_meta;
	char where[400], why[300], t1[48];
	snprintf(where, sizeof where, "raw/%s", p->name);
	int64_t width = db->partition_ms ? db->partition_ms : DEFAULT_PARTITION_MS;
	if (db->partition_ms && (p->end - p->start != width || p->start % width != 0))
		problem(v, where,
			"range is not one partition of the database's width (%" PRId64 " ms)",
			width);
	int rc = part_open(db, p, &env, &chunks, &meta, &has_chunks, &has_meta);
	if (rc == TS_ENOTFOUND) {
		printf("note: %s was removed while verifying (retention or compaction)\n", where);
		return 0;
	}
	if (rc) {
		problem(v, where, "cannot open the partition env: %s", ts_strerror(rc));
		return 0;
	}
	v->n_parts_checked++;
	if (!has_chunks)
		goto out;
	if ((rc = ts_env_read_begin(env, &r)) || (rc = ts_cursor_open(r, chunks, &c))) {
		problem(v, where, "cannot read: %s", ts_strerror(rc));
		rc = 0;
		goto out;
	}
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		const void *k, *val;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &val, &vl)))
			break;
		v->n_chunks++;
		if ((v->n_chunks & 0x3fff) == 0)
			progress("verify: raw/%s: %" PRIu64 " chunks", p->name, v->n_chunks);
		if (kl != TS_CHUNK_KEY_LEN) {
			char ks[80];
			fmt_str(ks, sizeof ks, k, kl, 24);
			problem(v, where, "chunk key \"%s\" is %zu bytes, not %d", ks, kl,
				TS_CHUNK_KEY_LEN);
			continue;
		}
		uint64_t id;
		int64_t kmin;
		ts_chunk_key_parse(k, kl, &id, &kmin);
		fmt_time(t1, sizeof t1, kmin);
		char cw[512];
		snprintf(cw, sizeof cw, "raw/%s chunk (series %" PRIu64 ", min_t %" PRId64 " %s)",
			 p->name, id, kmin, t1);
		if (kmin < p->start || kmin >= p->end)
			problem(v, cw, "min_t outside the partition's range");
		if (!vs_find(v, id) && !series_exists_now(v, id))
			problem(v, cw, "series %" PRIu64 " is not in the series table", id);
		const uint8_t *rec = val;
		const char *w = record_problem(rec, vl, why, sizeof why);
		if (w) {
			problem(v, cw, "%s", w);
			continue;
		}
		struct ts_chunk_hdr h;
		const uint8_t *payload;
		int drc = ts_chunk_decode(rec, vl, &h, &payload);
		if (drc) {
			problem(v, cw, "record rejected by the engine's decoder: %s",
				ts_strerror(drc));
			continue;
		}
		if (h.min_t != kmin)
			problem(v, cw, "header min_t %" PRId64 " differs from the key's", h.min_t);
		if (h.max_t >= p->end)
			problem(v, cw, "max_t %" PRId64 " past the partition's end", h.max_t);
		w = xor_problem(payload, h.payload_len, h.n_samples, h.min_t, h.max_t, 1, why,
				sizeof why);
		if (w)
			problem(v, cw, "%s", w);
		v->n_samples += h.n_samples;
	}
	if (rc != TS_ENOTFOUND)
		problem(v, where, "cursor stopped: %s", ts_strerror(rc));
	rc = 0;
out:
	ts_cursor_close(c);
	ts_env_read_end(r);
	ts_env_close(env);
	return rc;
}

static int cmd_verify(const char *dir)
{
	struct ro_db db;
	int ex = ro_open(&db, dir);
	if (ex)
		return ex;
	struct verify v = { .db = &db };
	struct ts_rtxn *r = NULL;
	int rc = 0;
	if (db.format == 0 && db.has_next_id)
		problem(&v, "index meta", "\"format\" is missing");
	else if (db.format && db.format != INDEX_FORMAT)
		problem(&v, "index meta", "format %" PRIu32 " is not one this version reads (%d)",
			db.format, INDEX_FORMAT);
	if (db.partition_ms < 0 || (db.partition_ms == 0 && db.n_parts))
		problem(&v, "index meta", "partition_ms is %s",
			db.partition_ms ? "negative" : "missing while partitions exist");
	if (db.n_skipped_dirs)
		printf("note: %zu unexpected entries in raw/ ignored\n", db.n_skipped_dirs);

	if ((rc = ts_env_read_begin(db.index, &r)))
		goto out;
	progress("verify: index series");
	if ((rc = verify_series(&v, r)))
		goto out;
	progress("verify: index postings");
	if ((rc = verify_postings(&v, r)))
		goto out;
	if ((rc = verify_heads_metadata(&v, r)))
		goto out;
	ts_env_read_end(r);
	r = NULL;
	for (size_t i = 0; i < db.n_parts; i++) {
		progress("verify: raw/%s", db.parts[i].name);
		if ((rc = verify_part(&v, &db.parts[i])))
			goto out;
	}
out:
	ts_env_read_end(r);
	progress_done();
	if (rc) {
		problem(&v, "verify", "stopped early: %s", ts_strerror(rc));
	}
	printf("verified %s: %zu series, %" PRIu64 " postings keys (%" PRIu64 " entries), %" PRIu64
	       " head snapshots, %" PRIu64 " metadata rows, %" PRIu64 " partitions, %" PRIu64
	       " chunks, %" PRIu64 " samples: ",
	       dir, v.n_series, v.n_postings_keys, v.n_postings, v.n_heads, v.n_metadata,
	       v.n_parts_checked, v.n_chunks, v.n_samples);
	if (v.n_problems)
		printf("%" PRIu64 " problem%s\n", v.n_problems, v.n_problems == 1 ? "" : "s");
	else
		printf("OK\n");
	printf("(the WAL is not checked: tsdbd checks it at start-up and cuts a torn tail)\n");
	ts_free(v.s);
	ts_free(v.lab);
	ro_close(&db);
	fflush(stdout);
	return v.n_problems ? EXIT_FAIL : EXIT_OK;
}

/* ================================================================ export, compact */

/* ts_db_open for a stopped server; returns an exit code. */
static int open_db(const char *dir, const char *hint, struct ts_db **db)
{
	if (!check_db_dir(dir))
		return EXIT_NOTDB;
	int rc = ts_db_open(dir, NULL, db);
	if (rc == TS_EBUSY) {
		fprintf(stderr, "tsdbctl: %s is locked: the server is running; %s\n", dir, hint);
		return EXIT_LOCKED;
	}
	if (rc) {
		fprintf(stderr, "tsdbctl: cannot open %s: %s\n", dir, ts_strerror(rc));
		return rc == TS_EVERSION ? EXIT_NOTDB : EXIT_FAIL;
	}
	return EXIT_OK;
}

static int write_all(const char *p, size_t len)
{
	return fwrite(p, 1, len, stdout) == len ? 0 : -EIO;
}

static int export_series(const struct ts_selector_ref *ref, struct ts_sample *buf, char **out,
			 size_t *out_cap, uint64_t *n_samples)
{
	struct ts_iter *it;
	int rc = ts_iter_new(ref->set, ref->i, &it);
	if (rc)
		return rc;
	size_t n = 0;
	for (;;) {
		rc = ts_iter_next(it);
		if (rc == 1) {
			struct ts_sample *s = &buf[n];
			ts_iter_at(it, &s->t_ms, &s->v);
			uint64_t b;
			memcpy(&b, &s->v, 8);
			if (b == TS_STALE_NAN_BITS)
				continue; /* the text form cannot carry it (as GET /api/v1/export) */
			if (++n < EXPORT_LINE_SAMPLES)
				continue;
		} else if (rc < 0 || n == 0) {
			break;
		}
		size_t need = ts_jsonl_encode_bound(ref->labels, ref->n_labels, n);
		if (need == SIZE_MAX) {
			rc = TS_ELIMIT;
			break;
		}
		if (need > *out_cap) {
			char *p = ts_realloc(*out, need);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			*out = p;
			*out_cap = need;
		}
		size_t len = ts_jsonl_encode(*out, ref->labels, ref->n_labels, buf, n);
		*n_samples += n;
		n = 0;
		int end = rc == 0;
		if ((rc = write_all(*out, len)) != 0 || end)
			break;
	}
	ts_iter_free(it);
	return rc < 0 ? rc : 0;
}

static int cmd_export(const char *dir, const char **match, size_t n_match, int64_t start,
		      int64_t end)
{
	struct ts_selector *sel = ts_calloc(n_match ? n_match : 1, sizeof *sel);
	size_t n_sel = 0;
	struct ts_db *db = NULL;
	struct ts_selector_union u = { 0 };
	struct ts_sample *buf = NULL;
	char *out = NULL;
	size_t out_cap = 0;
	char msg[512] = "";
	int ex = EXIT_FAIL, rc;
	if (!sel)
		goto out;
	for (size_t i = 0; i < n_match; i++) {
		rc = ts_selector_parse(&sel[i], match[i], strlen(match[i]), msg, sizeof msg);
		if (rc) {
			fprintf(stderr, "tsdbctl: --match %s: %s\n", match[i],
				rc == TS_EINVALID ? msg : ts_strerror(rc));
			ex = EXIT_USAGE;
			goto out;
		}
		n_sel++;
	}
	if (n_match == 0)
		n_sel = 1; /* one selector without matchers: every series */
	if ((ex = open_db(dir, "use GET /api/v1/export", &db)) != EXIT_OK)
		goto out;
	ex = EXIT_FAIL;
	rc = ts_selector_union(db, sel, n_sel, start, end, false, &u, msg, sizeof msg);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s\n",
			rc == TS_EINVALID && msg[0] ? msg : ts_strerror(rc));
		if (rc == TS_EINVALID)
			ex = EXIT_USAGE;
		goto out;
	}
	buf = ts_malloc(EXPORT_LINE_SAMPLES * sizeof *buf);
	if (!buf)
		goto out;
	uint64_t n_samples = 0;
	rc = 0;
	for (size_t i = 0; rc == 0 && i < u.n_refs; i++) {
		rc = export_series(&u.refs[i], buf, &out, &out_cap, &n_samples);
		if ((i & 0x3ff) == 0)
			progress("export: %zu of %zu series", i, u.n_refs);
	}
	progress_done();
	if (rc == 0 && fflush(stdout) != 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "tsdbctl: export failed: %s\n", ts_strerror(rc));
		goto out;
	}
	fprintf(stderr, "tsdbctl: exported %zu series, %" PRIu64 " samples\n", u.n_refs, n_samples);
	ex = EXIT_OK;
out:
	ts_free(out);
	ts_free(buf);
	ts_selector_union_fini(&u);
	for (size_t i = 0; i < n_match && i < n_sel; i++)
		ts_selector_fini(&sel[i]);
	ts_free(sel);
	if (db && (rc = ts_db_close(db)) != 0) {
		fprintf(stderr, "tsdbctl: closing %s: %s\n", dir, ts_strerror(rc));
		ex = EXIT_FAIL;
	}
	return ex;
}

struct disk_use {
	uint64_t apparent, allocated;
};

static void env_file_use(const char *envdir, struct disk_use *u)
{
	char path[4400];
	struct stat st;
	memset(u, 0, sizeof *u);
	if ((size_t)snprintf(path, sizeof path, "%.4300s/data.mdb", envdir) >= sizeof path)
		return;
	if (stat(path, &st) == 0) {
		u->apparent = (uint64_t)st.st_size;
		u->allocated = (uint64_t)st.st_blocks * 512;
	}
}

static int cmd_compact(const char *dir)
{
	struct ro_db listing = { .dir = dir };
	struct ts_db *db = NULL;
	struct disk_use *before = NULL;
	char path[4300], a[64], b[64];
	int ex = open_db(dir,
			 "stop it first (it compacts closed partitions in the "
			 "background)",
			 &db);
	if (ex)
		return ex;
	ex = EXIT_FAIL;
	/* the engine has opened (and, after a crash, repaired) raw/: list it now */
	if (list_parts(&listing))
		goto out;
	before = ts_calloc(listing.n_parts ? listing.n_parts : 1, sizeof *before);
	if (!before)
		goto out;
	struct disk_use tb = { 0 }, ta = { 0 };
	for (size_t i = 0; i < listing.n_parts; i++) {
		snprintf(path, sizeof path, "%s/raw/%s", dir, listing.parts[i].name);
		env_file_use(path, &before[i]);
		tb.apparent += before[i].apparent;
		tb.allocated += before[i].allocated;
	}
	struct ts_db_stats st0, st1;
	ts_db_stats(db, &st0);
	int rc = ts_db_compact(db);
	ts_db_stats(db, &st1);
	if (rc) {
		fprintf(stderr, "tsdbctl: compaction failed: %s\n", ts_strerror(rc));
		goto out;
	}
	rc = ts_db_close(db);
	db = NULL;
	if (rc) {
		fprintf(stderr, "tsdbctl: closing %s: %s\n", dir, ts_strerror(rc));
		goto out;
	}
	printf("compacted %s: %zu partitions\n", dir, listing.n_parts);
	printf("  %-34s %14s %14s\n", "partition", "file before", "file after");
	for (size_t i = 0; i < listing.n_parts; i++) {
		struct disk_use after;
		snprintf(path, sizeof path, "%s/raw/%s", dir, listing.parts[i].name);
		env_file_use(path, &after);
		ta.apparent += after.apparent;
		ta.allocated += after.allocated;
		printf("  raw/%-30s %14" PRIu64 " %14" PRIu64 "%s\n", listing.parts[i].name,
		       before[i].apparent, after.apparent,
		       after.apparent < before[i].apparent ? "  rewritten" : "");
	}
	fmt_bytes(a, sizeof a, tb.apparent);
	fmt_bytes(b, sizeof b, ta.apparent);
	printf("partition files: %" PRIu64 " -> %" PRIu64 " bytes (%s -> %s)\n", tb.apparent,
	       ta.apparent, a, b);
	printf("on disk (allocated): %" PRIu64 " -> %" PRIu64 " bytes\n", tb.allocated,
	       ta.allocated);
	printf("in use (LMDB pages): %" PRIu64 " -> %" PRIu64 " bytes\n", st0.partitions_bytes,
	       st1.partitions_bytes);
	ex = fflush(stdout) ? EXIT_FAIL : EXIT_OK;
out:
	if (db && (rc = ts_db_close(db)) != 0)
		fprintf(stderr, "tsdbctl: closing %s: %s\n", dir, ts_strerror(rc));
	ts_free(before);
	ts_free(listing.parts);
	return ex;
}

/* ========================================================================== main */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	int is_inspect = !strcmp(cmd, "inspect"), is_verify = !strcmp(cmd, "verify"),
	    is_export = !strcmp(cmd, "export"), is_compact = !strcmp(cmd, "compact");
	if (!is_inspect && !is_verify && !is_export && !is_compact) {
		usage_error("unknown command \"%s\"", cmd);
		return EXIT_USAGE;
	}
	if (!getenv("TS_LOG_LEVEL"))
		ts_log_set_level(TS_LOG_WARN);

	const char *dir = NULL;
	size_t top = 10;
	int json = 0;
	int64_t start = INT64_MIN, end = INT64_MAX;
	const char **match = ts_calloc((size_t)argc, sizeof *match);
	size_t n_match = 0;
	int ex = EXIT_USAGE;
	if (!match)
		return EXIT_FAIL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char name[64];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			ex = EXIT_OK;
			goto out;
		}
		if (strncmp(a, "--", 2) != 0) {
			usage_error("unexpected argument \"%s\"", a);
			goto out;
		}
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof name, "%s", a);
		}
		if (!strcmp(name, "--json") && is_inspect && !val) {
			json = 1;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				usage_error("%s needs a value", name);
				goto out;
			}
			val = argv[++i];
		}
		if (!strcmp(name, "--data-dir")) {
			dir = val;
		} else if (!strcmp(name, "--top") && is_inspect) {
			char *e;
			errno = 0;
			unsigned long long n = strtoull(val, &e, 10);
			if (errno || *e || !*val || n > 1000000 || val[0] == '-') {
				usage_error("--top: \"%s\" is not a count (0..1000000)", val);
				goto out;
			}
			top = (size_t)n;
		} else if (!strcmp(name, "--match") && is_export) {
			match[n_match++] = val;
		} else if ((!strcmp(name, "--start") || !strcmp(name, "--end")) && is_export) {
			int64_t t;
			if (ts_parse_time_ms(val, &t)) {
				usage_error("%s: \"%s\" is neither unix seconds nor RFC 3339", name,
					    val);
				goto out;
			}
			if (name[2] == 's')
				start = t;
			else
				end = t;
		} else {
			usage_error("%s: unknown option for %s", name, cmd);
			goto out;
		}
	}
	if (!dir || !*dir) {
		usage_error("%s needs --data-dir DIR", cmd);
		goto out;
	}
	if (end < start) {
		usage_error("--end is before --start");
		goto out;
	}
	if (is_inspect)
		ex = cmd_inspect(dir, top, json);
	else if (is_verify)
		ex = cmd_verify(dir);
	else if (is_export)
		ex = cmd_export(dir, match, n_match, start, end);
	else
		ex = cmd_compact(dir);
out:
	ts_free(match);
	return ex;
}
