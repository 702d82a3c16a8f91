/*
 * common.c - what tsdbctl's commands share: option parsing, a series selection, the two
 * ways to open a data directory, progress and report formatting (see tsdbctl.h).
 *
 * Read-only access (inspect, verify) never calls ts_db_open(): a running server holds an
 * exclusive flock on DIR/LOCK. It opens the LMDB environments read-only through
 * storage/env.h - DIR/index.mdb and each DIR/raw/<start>_<end>/ - and reads consistent
 * snapshots of each (LMDB allows readers in other processes). A live server renames
 * partitions while compacting them: raw/<dir>.compact and .old are skipped, and a
 * partition that vanished between listing and opening is reported as gone, not broken.
 *
 * Exclusive access (export, compact) is ts_db_open(), which repairs what a crash left;
 * it fails with TS_EBUSY while the server runs (exit 3).
 *
 * Format 2 readers share two things kept here: a series' entry found in its group row
 * (series_groups / head_groups: one zstd frame per 256 ids, the last row decompressed
 * kept for the next lookup) and a partition's "gens" row. The index format 1 and 2 are
 * both read: tables that a directory does not have are flagged absent.
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

#include "tsdbctl.h"
#include "wire/params.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "storage/zframe.h"
#include "tsdb/format.h"
#include "tsdb/utf8.h"

/* ---- options ---- */

void ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tsdbctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(tsdbctl --help for usage)\n", stderr);
}

static const struct ctl_opt *find_opt(const struct ctl_opt *opts, const char *name)
{
	for (; opts && opts->name; opts++)
		if (!strcmp(opts->name, name))
			return opts;
	return NULL;
}

int ctl_parse_args(int argc, char **argv, const struct ctl_opt *opts, const char **dir)
{
	*dir = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
		char name[64];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			ctl_usage(stdout);
			return EXIT_OK;
		}
		if (strncmp(a, "--", 2) != 0) {
			ctl_usage_error("unexpected argument \"%s\"", a);
			return EXIT_USAGE;
		}
		if (eq)
			val = eq + 1;
		snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
		const struct ctl_opt *o = find_opt(opts, name);
		int ex;
		if (o && o->is_flag && !val) {
			if ((ex = o->parse(o->dest, name, NULL)) != 0)
				return ex;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				ctl_usage_error("%s needs a value", name);
				return EXIT_USAGE;
			}
			val = argv[++i];
		}
		if (!strcmp(name, "--data-dir")) {
			*dir = val;
		} else if (!o || o->is_flag) {
			ctl_usage_error("%s: unknown option for %s", name, argv[0]);
			return EXIT_USAGE;
		} else if ((ex = o->parse(o->dest, name, val)) != 0) {
			return ex;
		}
	}
	if (!*dir || !**dir) {
		ctl_usage_error("%s needs --data-dir DIR", argv[0]);
		return EXIT_USAGE;
	}
	return CTL_RUN;
}

int ctl_opt_flag(void *dest, const char *name, const char *val)
{
	(void)name;
	(void)val;
	*(int *)dest = 1;
	return 0;
}

int ctl_opt_count(void *dest, const char *name, const char *val)
{
	char *e;
	errno = 0;
	unsigned long long n = strtoull(val, &e, 10);
	if (errno || *e || !*val || n > 1000000 || val[0] == '-') {
		ctl_usage_error("%s: \"%s\" is not a count (0..1000000)", name, val);
		return EXIT_USAGE;
	}
	*(size_t *)dest = (size_t)n;
	return 0;
}

int ctl_opt_time(void *dest, const char *name, const char *val)
{
	if (ts_parse_time_ms(val, dest)) {
		ctl_usage_error("%s: \"%s\" is neither unix seconds nor RFC 3339", name, val);
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- a series selection ---- */

void ctl_select_init(struct ctl_select *s)
{
	memset(s, 0, sizeof *s);
	s->start = INT64_MIN;
	s->end = INT64_MAX;
}

int ctl_opt_match(void *dest, const char *name, const char *val)
{
	struct ctl_select *s = dest;
	(void)name;
	if (ts_grow((void **)&s->match, &s->cap_match, s->n_match + 1, sizeof *s->match)) {
		fprintf(stderr, "tsdbctl: %s\n", ts_strerror(-ENOMEM));
		return EXIT_FAIL;
	}
	s->match[s->n_match++] = val;
	return 0;
}

int ctl_select_parse(struct ctl_select *s)
{
	char msg[512] = "";
	if (s->end < s->start) {
		ctl_usage_error("--end is before --start");
		return EXIT_USAGE;
	}
	s->sel = ts_calloc(s->n_match ? s->n_match : 1, sizeof *s->sel);
	if (!s->sel)
		return EXIT_FAIL;
	for (size_t i = 0; i < s->n_match; i++) {
		const char *m = s->match[i];
		int rc = ts_selector_parse(&s->sel[i], m, strlen(m), msg, sizeof msg);
		if (rc) {
			fprintf(stderr, "tsdbctl: --match %s: %s\n", m,
				rc == TS_EINVALID ? msg : ts_strerror(rc));
			return EXIT_USAGE;
		}
		s->n_sel++;
	}
	if (s->n_match == 0)
		s->n_sel = 1; /* one selector without matchers: every series */
	return EXIT_OK;
}

int ctl_select_series(struct ctl_select *s, struct ts_db *db)
{
	char msg[512] = "";
	int rc = ts_selector_union(db, s->sel, s->n_sel, s->start, s->end, false, &s->u, msg,
				   sizeof msg);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s\n",
			rc == TS_EINVALID && msg[0] ? msg : ts_strerror(rc));
		return rc == TS_EINVALID ? EXIT_USAGE : EXIT_FAIL;
	}
	return EXIT_OK;
}

void ctl_select_fini(struct ctl_select *s)
{
	ts_selector_union_fini(&s->u);
	for (size_t i = 0; i < s->n_match && i < s->n_sel; i++)
		ts_selector_fini(&s->sel[i]);
	ts_free(s->sel);
	ts_free(s->match);
	s->sel = NULL;
	s->match = NULL;
	s->n_sel = s->n_match = s->cap_match = 0;
}

/* ---- a data directory, exclusively ---- */

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when dir holds a database (DIR/index.mdb/data.mdb), else 0 after a message. */
static int check_db_dir(const char *dir)
{
	char path[CTL_PATH_MAX];
	struct stat st;
	if (!is_dir(dir)) {
		fprintf(stderr, "tsdbctl: %s: not a directory\n", dir);
		return 0;
	}
	snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR "/data.mdb", dir);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr,
			"tsdbctl: %s is not a database (no " TS_FORMAT_INDEX_DIR "/data.mdb)\n",
			dir);
		return 0;
	}
	return 1;
}

int ctl_db_open(const char *dir, const char *hint, struct ts_db **db)
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

int ctl_db_close(struct ts_db *db, const char *dir)
{
	int rc = ts_db_close(db);
	if (rc) {
		fprintf(stderr, "tsdbctl: closing %s: %s\n", dir, ts_strerror(rc));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- a data directory, read-only ---- */

static int part_cmp(const void *a, const void *b)
{
	const struct ctl_part *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

int ctl_parts_list(const char *dir, struct ctl_parts *parts)
{
	char path[CTL_PATH_MAX];
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	memset(parts, 0, sizeof *parts);
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR, dir);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		int64_t start, end;
		if (e->d_name[0] == '.')
			continue;
		/* <dir>.compact / <dir>.old belong to a compaction in progress */
		enum ts_format_part_dir kind = ts_format_part_dir_kind(e->d_name, &start, &end);
		if (kind != TS_FORMAT_PART_DIR_LIVE) {
			parts->n_other += kind == TS_FORMAT_PART_DIR_OTHER;
			continue;
		}
		if (ts_grow((void **)&parts->v, &cap, parts->n + 1, sizeof *parts->v)) {
			rc = -ENOMEM;
			break;
		}
		struct ctl_part *p = &parts->v[parts->n++];
		p->start = start;
		p->end = end;
		snprintf(p->name, sizeof p->name, "%s", e->d_name);
	}
	closedir(d);
	if (parts->n)
		qsort(parts->v, parts->n, sizeof *parts->v, part_cmp);
	return rc;
}

void ctl_parts_free(struct ctl_parts *parts)
{
	ts_free(parts->v);
	memset(parts, 0, sizeof *parts);
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

void ctl_ro_close(struct ctl_ro *db)
{
	ts_env_close(db->index);
	ctl_parts_free(&db->parts);
	memset(db, 0, sizeof *db);
}

/* Opens table name of the index if it exists: 1, else 0. */
static int ro_table(struct ctl_ro *db, const char *name, unsigned *t)
{
	return ts_env_table(db->index, name, 0, t) == 0;
}

static int ro_tables(struct ctl_ro *db, const char *path)
{
	/* format 3's blocks, else the u64 per row of formats 1 and 2 */
	int rc = ts_env_table(db->index, TS_FORMAT_TABLE_POSTINGS_BLOCKS, TS_TABLE_U64_BLOCKS,
			      &db->t_postings);
	db->postings_blocks = rc == 0;
	if (rc == TS_ENOTFOUND)
		rc = ts_env_table(db->index, TS_FORMAT_TABLE_POSTINGS, TS_TABLE_DUPFIXED_U64,
				  &db->t_postings);
	if (rc || (rc = ts_env_table(db->index, TS_FORMAT_TABLE_META, 0, &db->t_meta))) {
		fprintf(stderr, "tsdbctl: %s: %s\n", path,
			rc == TS_ENOTFOUND ? "no postings/meta table: not a tsdb index"
					   : ts_strerror(rc));
		return rc == TS_ENOTFOUND ? EXIT_NOTDB : EXIT_FAIL;
	}
	db->has_series = ro_table(db, TS_FORMAT_TABLE_SERIES, &db->t_series);
	db->has_series_groups = ro_table(db, TS_FORMAT_TABLE_SERIES_GROUPS, &db->t_series_groups);
	if (!db->has_series && !db->has_series_groups) {
		fprintf(stderr, "tsdbctl: %s: no series table: not a tsdb index\n", path);
		return EXIT_NOTDB;
	}
	db->has_heads = ro_table(db, TS_FORMAT_TABLE_HEADS, &db->t_heads);
	db->has_head_groups = ro_table(db, TS_FORMAT_TABLE_HEAD_GROUPS, &db->t_head_groups);
	db->has_metadata = ro_table(db, TS_FORMAT_TABLE_METADATA, &db->t_metadata);
	db->has_tombstones = ro_table(db, TS_FORMAT_TABLE_TOMBSTONES, &db->t_tombstones);
	return EXIT_OK;
}

const char *ctl_postings_row_ids(const struct ctl_ro *db, const void *v, size_t vl, uint64_t *ids,
				 size_t cap, size_t *n)
{
	*n = 0;
	if (!db->postings_blocks) {
		if (vl != sizeof *ids)
			return "value is not a u64 series id";
		if (cap == 0)
			return "too many ids";
		memcpy(ids, v, sizeof *ids);
		*n = 1;
		return NULL;
	}
	int rc = ts_env_u64_block_decode(v, vl, ids, cap, n);
	if (rc == TS_ELIMIT)
		return "too many ids";
	return rc ? "block does not decode (storage/env.h delta block)" : NULL;
}

static int ro_meta(struct ctl_ro *db, const char *path)
{
	struct ts_rtxn *r;
	unsigned t = db->t_meta;
	uint64_t pms = 0;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s: %s\n", path, ts_strerror(rc));
		return EXIT_FAIL;
	}
	/* format.h: format u32, partition_ms i64, next_id u64, checkpoint_lsn u64 */
	if (meta_get(r, t, TS_FORMAT_META_FORMAT, &db->format, 4))
		db->format = 0;
	if (meta_get(r, t, TS_FORMAT_META_PARTITION_MS, &pms, 8) == 0)
		db->partition_ms = (int64_t)pms;
	db->has_next_id = meta_get(r, t, TS_FORMAT_META_NEXT_ID, &db->next_id, 8) == 0;
	db->has_ckpt = meta_get(r, t, TS_FORMAT_META_CHECKPOINT_LSN, &db->checkpoint_lsn, 8) == 0;
	ts_env_read_end(r);
	return EXIT_OK;
}

int ctl_ro_open(struct ctl_ro *db, const char *dir)
{
	char path[CTL_PATH_MAX];
	struct ts_env_opts eo = { .read_only = 1 };
	int ex, rc;
	memset(db, 0, sizeof *db);
	db->dir = dir;
	if (!check_db_dir(dir))
		return EXIT_NOTDB;
	snprintf(path, sizeof path, "%s/" TS_FORMAT_INDEX_DIR, dir);
	rc = ts_env_open(path, &eo, &db->index);
	if (rc) {
		fprintf(stderr, "tsdbctl: cannot open %s read-only: %s\n", path, ts_strerror(rc));
		return EXIT_FAIL;
	}
	if ((ex = ro_tables(db, path)) || (ex = ro_meta(db, path))) {
		ctl_ro_close(db);
		return ex;
	}
	if ((rc = ctl_parts_list(dir, &db->parts)) != 0) {
		fprintf(stderr, "tsdbctl: %s/raw: %s\n", dir, ts_strerror(rc));
		ctl_ro_close(db);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int ctl_part_open(const struct ctl_ro *db, const struct ctl_part *p, struct ctl_part_env *pe)
{
	char path[CTL_PATH_MAX];
	struct ts_env_opts eo = { .read_only = 1 };
	int rc = TS_ENOTFOUND;
	memset(pe, 0, sizeof *pe);
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR "/%s", db->dir, p->name);
	for (int tries = 0; tries < 3; tries++) {
		if (!is_dir(path)) {
			/* a compaction swaps by two renames: look again a moment later */
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			rc = TS_ENOTFOUND;
			continue;
		}
		rc = ts_env_open(path, &eo, &pe->env);
		if (rc != -ENOENT)
			break;
		rc = TS_ENOTFOUND;
	}
	if (rc)
		return rc;
	pe->has_chunks = ts_env_table(pe->env, TS_FORMAT_PART_TABLE_CHUNKS, 0, &pe->chunks) == 0;
	pe->has_meta = ts_env_table(pe->env, TS_FORMAT_PART_TABLE_META, 0, &pe->meta) == 0;
	pe->has_cold = ts_env_table(pe->env, TS_FORMAT_PART_TABLE_COLD, 0, &pe->cold) == 0;
	pe->has_tiers = ts_env_table(pe->env, TS_FORMAT_PART_TABLE_TIERS, 0, &pe->tiers) == 0;
	return 0;
}

void ctl_part_close(struct ctl_part_env *pe)
{
	ts_env_close(pe->env);
	memset(pe, 0, sizeof *pe);
}

int ctl_scan_cursor(struct ts_cursor *c, ctl_row_fn row, void *ctx)
{
	const void *k, *v;
	size_t kl, vl;
	int rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c))
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)) || (rc = row(ctx, k, kl, v, vl)))
			return rc;
	return rc == TS_ENOTFOUND ? 0 : rc;
}

int ctl_scan(struct ts_rtxn *r, unsigned table, ctl_row_fn row, void *ctx)
{
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, table, &c);
	if (rc)
		return rc;
	rc = ctl_scan_cursor(c, row, ctx);
	ts_cursor_close(c);
	return rc;
}

static int count_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(uint64_t *)ctx)++;
	return 0;
}

int ctl_count_rows(struct ts_rtxn *r, unsigned table, uint64_t *n)
{
	return ctl_scan(r, table, count_row, n);
}

/* ---- format 2: group rows, cold data ---- */

int ctl_group_unpack(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len)
{
	if (len < 1)
		return TS_ECORRUPT;
	if (p[0] != TS_FORMAT_GROUP_VERSION)
		return TS_EVERSION;
	return ts_zframe_unpack(p + 1, len - 1, TS_FORMAT_GROUP_RAW_MAX, raw, raw_len);
}

void ctl_group_fini(struct ctl_group *gc)
{
	ts_free(gc->raw);
	memset(gc, 0, sizeof *gc);
}

/* Makes gc hold group g of table in snapshot r. */
static int group_load(struct ts_rtxn *r, unsigned table, uint64_t g, struct ctl_group *gc)
{
	uint8_t key[TS_FORMAT_SERIES_KEY_LEN];
	const void *v;
	size_t vl;
	if (gc->have && gc->g == g)
		return 0;
	ctl_group_fini(gc);
	ts_format_put_be64(key, g);
	int rc = ts_env_get(r, table, key, sizeof key, &v, &vl);
	if (rc == 0)
		rc = ctl_group_unpack(v, vl, &gc->raw, &gc->len);
	if (rc == TS_EVERSION)
		rc = TS_ECORRUPT;
	if (rc && rc != TS_ENOTFOUND)
		return rc;
	gc->g = g;
	gc->have = 1; /* also remembered: g has no row */
	return 0;
}

int ctl_group_find(struct ts_rtxn *r, unsigned table, uint64_t id, struct ctl_group *gc,
		   const uint8_t **e, uint32_t *el)
{
	struct ts_format_group_it it;
	int rc = group_load(r, table, id / TS_FORMAT_GROUP_SERIES, gc);
	if (rc)
		return rc;
	if (!gc->raw)
		return TS_ENOTFOUND;
	unsigned slot = (unsigned)(id % TS_FORMAT_GROUP_SERIES);
	ts_format_group_it_init(&it, gc->raw, gc->len);
	while ((rc = ts_format_group_next(&it)) == 1) {
		if (it.slot < slot)
			continue;
		if (it.slot > slot)
			break;
		*e = it.entry;
		*el = it.entry_len;
		return 0;
	}
	return rc < 0 ? rc : TS_ENOTFOUND;
}

int ctl_gens_read(struct ts_rtxn *r, const struct ctl_part_env *pe, struct ctl_gens *g)
{
	const char *key = TS_FORMAT_PART_META_GENS;
	const void *v;
	size_t vl;
	char why[160];
	memset(g, 0, sizeof *g);
	if (!pe->has_meta)
		return 0;
	int rc = ts_env_get(r, pe->meta, key, strlen(key), &v, &vl);
	if (rc)
		return rc == TS_ENOTFOUND ? 0 : rc;
	g->present = 1;
	if (ctl_gens_problem(v, vl, why, sizeof why))
		return TS_ECORRUPT;
	const uint8_t *p = v;
	size_t m = ts_format_get_le32(p);
	if (m == 0)
		return 0;
	if (!(g->v = ts_malloc(m * sizeof *g->v)))
		return -ENOMEM;
	for (size_t i = 0; i < m; i++) {
		const uint8_t *e = p + 4 + i * TS_FORMAT_GENS_ENTRY_LEN;
		g->v[i] = (struct ctl_gen){ ts_format_get_le32(e), ts_format_get_le32(e + 4),
					    ts_format_get_le64(e + 8), ts_format_get_le64(e + 16) };
	}
	g->n = m;
	return 0;
}

long ctl_gens_find(const struct ctl_gens *g, uint32_t gen)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->v[mid].gen < gen)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->n && g->v[lo].gen == gen ? (long)lo : -1;
}

void ctl_gens_free(struct ctl_gens *g)
{
	ts_free(g->v);
	memset(g, 0, sizeof *g);
}

void ctl_cold_key_parse(const uint8_t *k, uint32_t *gen, uint64_t *last_id, int64_t *min_t)
{
	/* format.h: gen u32 BE, last id u64 BE, min_t i64 BE with its sign bit flipped */
	*gen = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
	*last_id = ts_format_get_be64(k + 4);
	*min_t = (int64_t)(ts_format_get_be64(k + 12) ^ UINT64_C(0x8000000000000000));
}

/* ---- output ---- */

static int g_progress = -1; /* stderr is a terminal; -1: not yet known */
static int64_t g_progress_at;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_progress(const char *fmt, ...)
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

void ctl_progress_done(void)
{
	if (g_progress > 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

void ctl_fmt_time(char *buf, size_t cap, int64_t ms)
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

void ctl_fmt_bytes(char *buf, size_t cap, uint64_t b)
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

void ctl_fmt_str(char *buf, size_t cap, const void *s, size_t len, size_t max)
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

char *ctl_read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *x = realloc(buf, cap + 1);
			if (!x) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = x;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				free(buf);
				buf = NULL;
				errno = EIO;
			}
			break;
		}
	}
	fclose(f);
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

int ctl_join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int ctl_rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (!d)
			return -errno;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[4 * CTL_PATH_MAX];
			if (ctl_join(sub, sizeof sub, path, e->d_name) == 0)
				ctl_rm_tree(sub);
		}
		closedir(d);
		return rmdir(path) != 0 ? -errno : 0;
	}
	return unlink(path) != 0 ? -errno : 0;
}

int ctl_opt_time_dur(const char *s, int64_t *ms)
{
	return ts_parse_duration_ms(s, ms) ? TS_EINVALID : 0;
}

int ctl_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 1 : -errno;
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

void ctl_json_str(FILE *f, const void *s, size_t len)
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
