/*
 * inspect.c - `tsdbctl inspect`: what a data directory holds, read while a server runs.
 *
 * It opens the index env and each partition env read-only (common.c) and reports: the
 * format, partition width, series (and next id), checkpoint LSN, WAL size (the sum of
 * the files in DIR/wal), index bytes in use, postings keys and entries, metadata
 * families, tombstones (deleted ranges), head snapshots (series and samples of the open
 * chunks at the last checkpoint); per partition its range, hot chunks, cold blocks, samples, LMDB bytes in
 * use, bytes/sample, whether it is compacted (marked cold: all in one generation and
 * rewritten tightly) and the bytes of its 5m and 1h tiers (from the meta "tiers" row,
 * tsdb/tiers.c); and the top N metric names and label names by series, counted
 * from the postings table alone (its keys sort by label name, then value, so one pass
 * aggregates both). --json prints the same as one object.
 *
 * Format 2 keeps series and head rows in zstd-compressed group rows beside the
 * per-series tables of format 1: series and head snapshots are counted from both
 * sources, a series in both once (its group entry found with ctl_group_find), and the
 * group rows themselves (rows, entries, stored and decompressed bytes) are shown.
 * A partition's samples are its hot chunks' plus its cold blocks': per partition the
 * hot part (chunks, samples), the cold part (generations listed in the "gens" row, the
 * blocks of those generations, their samples and bytes), per level of generations (0:
 * converted from chunks, k+1: merged from level k) the samples and block bytes the
 * gens row gives, and blocks of unlisted generations, an interrupted conversion's
 * leftovers. Bytes per sample: of the partition, the env's bytes in use over all its
 * samples; of a level, block bytes over samples.
 *
 * It reads headers only and trusts them (chunk record headers, cold block headers, the
 * gens row); checking them is verify's job, so a record it cannot read is counted as bad
 * and the reader pointed at verify. Group rows are decompressed: their entries are
 * what is counted.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tsdbctl.h"
#include "storage/chunk.h"
#include "storage/cold.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/format.h"
#include "tsdb/utf8.h"

/* ---- names counted by series ---- */

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
	if (ts_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
		return -ENOMEM;
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

/* Most series first, then by name. */
static int nc_cmp(const void *a, const void *b)
{
	const struct name_count *x = a, *y = b;
	if (x->series != y->series)
		return x->series < y->series ? 1 : -1;
	int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void nc_sort(struct nc_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, nc_cmp);
}

/* ---- levels of cold generations ---- */

struct level {
	uint32_t level;
	uint64_t gens, samples, bytes;
};

struct level_list {
	struct level *v; /* ascending by level */
	size_t n, cap;
};

static int level_add(struct level_list *l, uint32_t level, uint64_t gens, uint64_t samples,
		     uint64_t bytes)
{
	size_t i = 0;
	while (i < l->n && l->v[i].level < level)
		i++;
	if (i == l->n || l->v[i].level != level) {
		if (ts_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
			return -ENOMEM;
		memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof *l->v);
		l->v[i] = (struct level){ level, 0, 0, 0 };
		l->n++;
	}
	l->v[i].gens += gens;
	l->v[i].samples += samples;
	l->v[i].bytes += bytes;
	return 0;
}

static void level_free(struct level_list *l)
{
	ts_free(l->v);
	memset(l, 0, sizeof *l);
}

/* ---- gathering ---- */

struct part_stats {
	const struct ctl_part *p;
	int gone, has_error;
	int compacted;	  /* the meta "cold" mark */
	int has_tiers;	  /* the meta "tiers" row: its tier bytes (5m, 1h) */
	unsigned expired; /* the meta "expired" row: what retention deleted */
	uint64_t tier_bytes[2];
	uint64_t chunks, hot_samples, payload_bytes, used_bytes, bad_records;
	/* cold: the listed generations, by level; their blocks */
	size_t n_gens;
	int gens_bad; /* the gens row does not parse: every block counted as listed */
	struct level_list levels;
	uint64_t cold_blocks, cold_samples, cold_bytes, bad_blocks;
	uint64_t leftover_blocks, leftover_bytes;
	int64_t data_min, data_max;
};

/* A group table's rows: how many, their entries, stored and decompressed bytes. */
struct group_stats {
	uint64_t rows, entries, bytes, raw_bytes, bad_rows;
};

struct inspect {
	uint64_t n_series, n_metadata, n_heads, head_samples;
	uint64_t n_tombstones; /* rows of the tombstones table: deleted ranges */
	uint64_t n_series_rows, n_head_rows;
	struct group_stats series_groups, head_groups;
	uint64_t wal_bytes, wal_files, index_used;
	uint64_t index_live;	  /* pages in use but the free ones (ts_env_live_bytes) */
	uint64_t n_postings_rows; /* blocks in format 3, = entries before */
	uint64_t n_postings_keys, n_postings;
	struct nc_list metrics, labels;
	struct part_stats *ps;
	struct part_stats total; /* the sums of the readable partitions (p NULL) */
};

static void wal_bytes(const char *dir, struct inspect *in)
{
	char path[CTL_PATH_MAX];
	snprintf(path, sizeof path, "%s/" TS_FORMAT_WAL_DIR, dir);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char f[CTL_PATH_MAX + 300];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof f, "%s/%s", path, e->d_name);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode)) {
			in->wal_bytes += (uint64_t)st.st_size;
			in->wal_files++;
		}
	}
	closedir(d);
}

/* Samples in a head snapshot (format.h): its open chunk's count and its out-of-order
 * count, as the engine's parser finds them (0 when it refuses; verify says why). */
static uint64_t snap_samples(const uint8_t *p, size_t len)
{
	struct ts_format_snap s;
	return ts_format_snap_parse(p, len, &s) ? 0 : (uint64_t)s.n + s.ooo_n;
}

/* The index snapshot being counted. */
struct index_walk {
	const struct ctl_ro *db;
	struct inspect *in;
	struct ts_rtxn *r;
	struct ctl_group gc; /* a row of the group table matching the rows counted */
};

/* A head snapshot of a group row. */
static void head_entry(struct inspect *in, const uint8_t *e, size_t el)
{
	in->n_heads++;
	in->head_samples += snap_samples(e, el);
}

/* Whether the row keyed k (a series id) is also an entry of group table t. */
static int in_groups(struct index_walk *w, int has, unsigned t, const void *k, size_t kl)
{
	const uint8_t *e;
	uint32_t el;
	return has && kl == TS_FORMAT_SERIES_KEY_LEN &&
	       ctl_group_find(w->r, t, ts_format_get_be64(k), &w->gc, &e, &el) == 0;
}

/* A row of the per-series table: a series unless series_groups has it too. */
static int series_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct index_walk *w = ctx;
	(void)v;
	(void)vl;
	w->in->n_series_rows++;
	if (!in_groups(w, w->db->has_series_groups, w->db->t_series_groups, k, kl))
		w->in->n_series++;
	return 0;
}

/* A row of the heads table: a head snapshot unless head_groups has it too. */
static int head_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct index_walk *w = ctx;
	w->in->n_head_rows++;
	if (!in_groups(w, w->db->has_head_groups, w->db->t_head_groups, k, kl))
		head_entry(w->in, v, vl);
	return 0;
}

/* Scans group table t: its rows into *gs, each entry of a head group into in. */
static int scan_groups(struct index_walk *w, unsigned t, struct group_stats *gs, int heads)
{
	struct ts_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int rc = ts_cursor_open(w->r, t, &c);
	if (rc)
		return rc;
	for (rc = ts_cursor_seek(c, NULL, 0); rc == 0; rc = ts_cursor_next(c)) {
		struct ts_format_group_it it;
		uint8_t *raw;
		size_t raw_len;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			break;
		gs->rows++;
		gs->bytes += vl;
		rc = ctl_group_unpack(v, vl, &raw, &raw_len);
		if (rc == -ENOMEM)
			break;
		if (rc) {
			gs->bad_rows++;
			rc = 0;
			continue;
		}
		gs->raw_bytes += raw_len;
		ts_format_group_it_init(&it, raw, raw_len);
		while ((rc = ts_format_group_next(&it)) == 1) {
			gs->entries++;
			if (heads)
				head_entry(w->in, it.entry, it.entry_len);
		}
		gs->bad_rows += rc < 0;
		rc = 0;
		ts_free(raw);
	}
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* One pass over the postings table: a key is `name 0x00 value` with its series ids in
 * rows (delta blocks in format 3, a u64 each before); keys of one name are adjacent. A key's series count goes to the metric names
 * when its name is __name__, and to its label name's totals. */
struct postings_walk {
	struct inspect *in;
	const struct ctl_ro *db;
	uint64_t ids[CTL_POSTINGS_ROW_IDS];	    /* the row being read */
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX + 1]; /* the key being counted */
	size_t key_len;
	uint64_t key_ids;
	int have_key;
	uint8_t name[TS_FORMAT_POSTING_KEY_MAX + 1]; /* the label name being counted */
	size_t name_len;
	uint64_t name_series, name_values;
	int have_name;
};

/* The key in w->key is complete: adds it to its metric name and its label name. */
static int walk_close_key(struct postings_walk *w)
{
	const uint8_t *z = memchr(w->key, 0, w->key_len);
	int rc;
	if (!z || z == w->key)
		return 0; /* the all-series key, or a malformed one */
	size_t nl = (size_t)(z - w->key);
	if (nl == 8 && memcmp(w->key, "__name__", 8) == 0 &&
	    (rc = nc_add(&w->in->metrics, z + 1, w->key_len - nl - 1, w->key_ids, 1)))
		return rc;
	if (w->have_name && (nl != w->name_len || memcmp(w->key, w->name, nl) != 0)) {
		if ((rc = nc_add(&w->in->labels, w->name, w->name_len, w->name_series,
				 w->name_values)))
			return rc;
		w->have_name = 0;
	}
	if (!w->have_name) {
		memcpy(w->name, w->key, nl);
		w->name_len = nl;
		w->have_name = 1;
		w->name_series = w->name_values = 0;
	}
	w->name_series += w->key_ids;
	w->name_values++;
	return 0;
}

static int postings_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct postings_walk *w = ctx;
	int rc;
	size_t n = 0;
	/* a row that does not decode counts no series; verify names it */
	(void)ctl_postings_row_ids(w->db, v, vl, w->ids, CTL_POSTINGS_ROW_IDS, &n);
	w->in->n_postings += n;
	w->in->n_postings_rows++;
	if (w->have_key && kl == w->key_len && memcmp(k, w->key, kl) == 0) {
		w->key_ids += n;
		return 0;
	}
	if (w->have_key && (rc = walk_close_key(w)))
		return rc;
	if (kl > TS_FORMAT_POSTING_KEY_MAX)
		kl = TS_FORMAT_POSTING_KEY_MAX; /* not a valid key; verify says so */
	memcpy(w->key, k, kl);
	w->key_len = kl;
	w->have_key = 1;
	w->key_ids = n;
	w->in->n_postings_keys++;
	return 0;
}

static int inspect_postings(const struct ctl_ro *db, struct ts_rtxn *r, struct inspect *in)
{
	struct postings_walk *w = ts_calloc(1, sizeof *w);
	int rc;
	if (!w)
		return -ENOMEM;
	w->in = in;
	w->db = db;
	rc = ctl_scan(r, db->t_postings, postings_row, w);
	if (!rc && w->have_key)
		rc = walk_close_key(w);
	if (!rc && w->have_name)
		rc = nc_add(&in->labels, w->name, w->name_len, w->name_series, w->name_values);
	ts_free(w);
	return rc;
}

/* Series and head snapshots from both sources, the group rows, metadata, postings. */
static int inspect_index(struct ctl_ro *db, struct inspect *in)
{
	struct index_walk w = { .db = db, .in = in };
	uint64_t map;
	in->index_live = ts_env_live_bytes(db->index); /* its own snapshot: before ours */
	int rc = ts_env_read_begin(db->index, &w.r);
	if (rc)
		return rc;
	ts_env_size(db->index, &map, &in->index_used);
	if (db->has_series_groups)
		rc = scan_groups(&w, db->t_series_groups, &in->series_groups, 0);
	in->n_series = in->series_groups.entries;
	if (!rc && db->has_series)
		rc = ctl_scan(w.r, db->t_series, series_row, &w);
	ctl_group_fini(&w.gc);
	if (!rc && db->has_head_groups)
		rc = scan_groups(&w, db->t_head_groups, &in->head_groups, 1);
	if (!rc && db->has_heads)
		rc = ctl_scan(w.r, db->t_heads, head_row, &w);
	ctl_group_fini(&w.gc);
	if (!rc && db->has_metadata)
		rc = ctl_count_rows(w.r, db->t_metadata, &in->n_metadata);
	if (!rc && db->has_tombstones)
		rc = ctl_count_rows(w.r, db->t_tombstones, &in->n_tombstones);
	if (!rc)
		rc = inspect_postings(db, w.r, in);
	ts_env_read_end(w.r);
	return rc;
}

static void data_range(struct part_stats *s, int64_t min_t, int64_t max_t)
{
	if (min_t < s->data_min)
		s->data_min = min_t;
	if (max_t > s->data_max)
		s->data_max = max_t;
}

/* Adds one chunk record's header (storage/chunk.h: sample count at 4, min_t at 8, max_t
 * at 16) to the partition's totals. */
static int chunk_row(void *ctx, const void *k, size_t kl, const void *v, size_t len)
{
	struct part_stats *s = ctx;
	const uint8_t *p = v;
	(void)k;
	(void)kl;
	if ((++s->chunks & 0xffff) == 0)
		ctl_progress("inspect: raw/%s: %" PRIu64 " chunks", s->p->name, s->chunks);
	if (len < TS_CHUNK_HDR_LEN || p[0] != TS_CHUNK_VERSION) {
		s->bad_records++;
		return 0;
	}
	s->hot_samples += ts_format_get_le32(p + 4);
	s->payload_bytes += len - TS_CHUNK_HDR_LEN;
	data_range(s, (int64_t)ts_format_get_le64(p + 8), (int64_t)ts_format_get_le64(p + 16));
	return 0;
}

/* The cold table being counted. */
struct cold_walk {
	struct part_stats *s;
	struct ctl_gens gens;
};

/* Adds one cold block's header (storage/cold.h) to the partition's totals, or counts
 * it as a leftover when its generation is not listed. */
static int cold_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cold_walk *w = ctx;
	struct part_stats *s = w->s;
	struct ts_cold_info h;
	uint32_t gen;
	uint64_t id;
	int64_t min_t;
	if (kl != TS_FORMAT_COLD_KEY_LEN) {
		s->bad_blocks++;
		return 0;
	}
	ctl_cold_key_parse(k, &gen, &id, &min_t);
	if (!s->gens_bad && ctl_gens_find(&w->gens, gen) < 0) {
		s->leftover_blocks++;
		s->leftover_bytes += vl;
		return 0;
	}
	if ((++s->cold_blocks & 0x3ff) == 0)
		ctl_progress("inspect: raw/%s: %" PRIu64 " cold blocks", s->p->name,
			     s->cold_blocks);
	s->cold_bytes += vl;
	if (ts_cold_peek(v, vl, &h) != 0) {
		s->bad_blocks++;
		return 0;
	}
	s->cold_samples += h.n_samples;
	data_range(s, h.min_t, h.max_t);
	return 0;
}

/* The gens row (by level) and the cold table of snapshot r. */
static int inspect_cold(struct ctl_part_env *pe, struct ts_rtxn *r, struct part_stats *s)
{
	struct cold_walk w = { .s = s };
	int rc = ctl_gens_read(r, pe, &w.gens);
	if (rc == TS_ECORRUPT) {
		s->gens_bad = 1;
		rc = 0;
	}
	s->n_gens = w.gens.n;
	for (size_t i = 0; rc == 0 && i < w.gens.n; i++) {
		const struct ctl_gen *g = &w.gens.v[i];
		rc = level_add(&s->levels, g->level, 1, g->samples, g->bytes);
	}
	if (rc == 0 && pe->has_cold)
		rc = ctl_scan(r, pe->cold, cold_row, &w);
	ctl_gens_free(&w.gens);
	return rc;
}

static int inspect_part(struct ctl_ro *db, struct part_stats *s)
{
	struct ctl_part_env pe;
	struct ts_rtxn *r;
	const void *v;
	size_t vl;
	uint64_t map;
	s->data_min = INT64_MAX;
	s->data_max = INT64_MIN;
	int rc = ctl_part_open(db, s->p, &pe);
	if (rc == TS_ENOTFOUND) {
		s->gone = 1;
		return 0;
	}
	if (rc)
		return rc;
	ts_env_size(pe.env, &map, &s->used_bytes);
	if ((rc = ts_env_read_begin(pe.env, &r)) == 0) {
		const char *ck = TS_FORMAT_PART_META_COLD;
		const char *tk = TS_FORMAT_PART_META_TIERS;
		if (pe.has_meta)
			s->compacted = ts_env_get(r, pe.meta, ck, strlen(ck), &v, &vl) == 0;
		/* The record's counts (format.h); verify is the one to doubt them. */
		if (pe.has_meta && ts_env_get(r, pe.meta, tk, strlen(tk), &v, &vl) == 0 &&
		    vl == TS_FORMAT_TIERS_REC_LEN) {
			s->has_tiers = 1;
			s->tier_bytes[0] = ts_format_get_le64((const uint8_t *)v + 37);
			s->tier_bytes[1] = ts_format_get_le64((const uint8_t *)v + 45);
		}
		const char *ek = TS_FORMAT_PART_META_EXPIRED;
		if (pe.has_meta && ts_env_get(r, pe.meta, ek, strlen(ek), &v, &vl) == 0 &&
		    vl == 1) {
			s->expired = *(const uint8_t *)v;
			/* Deleted rows are not there any more, whatever the record counted. */
			if (s->expired & TS_FORMAT_EXPIRED_5M)
				s->tier_bytes[0] = 0;
			if (s->expired & TS_FORMAT_EXPIRED_1H)
				s->tier_bytes[1] = 0;
		}
		if (pe.has_chunks)
			rc = ctl_scan(r, pe.chunks, chunk_row, s);
		if (rc == 0)
			rc = inspect_cold(&pe, r, s);
		ts_env_read_end(r);
	}
	ctl_part_close(&pe);
	return rc;
}

/* ---- text ---- */

#define PLURAL(n) ((n) == 1 ? "" : "s")

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

static void bytes_per_sample(char *buf, size_t cap, uint64_t bytes, uint64_t samples)
{
	if (samples)
		snprintf(buf, cap, "%.2f", (double)bytes / (double)samples);
	else
		snprintf(buf, cap, "-");
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
		ctl_fmt_str(name, sizeof name, l->v[i].name, l->v[i].len, 200);
		if (values)
			printf("  %12" PRIu64 " %10" PRIu64 "  %s\n", l->v[i].series,
			       l->v[i].values, name);
		else
			printf("  %12" PRIu64 "  %s\n", l->v[i].series, name);
	}
}

/* Adds partition s to the totals t. Returns 0 or -ENOMEM. */
static int part_sum(struct part_stats *t, const struct part_stats *s)
{
	int rc = 0;
	t->chunks += s->chunks;
	t->hot_samples += s->hot_samples;
	t->payload_bytes += s->payload_bytes;
	t->used_bytes += s->used_bytes;
	t->bad_records += s->bad_records;
	t->n_gens += s->n_gens;
	t->gens_bad |= s->gens_bad;
	t->cold_blocks += s->cold_blocks;
	t->cold_samples += s->cold_samples;
	t->cold_bytes += s->cold_bytes;
	t->has_tiers |= s->has_tiers;
	t->tier_bytes[0] += s->tier_bytes[0];
	t->tier_bytes[1] += s->tier_bytes[1];
	t->bad_blocks += s->bad_blocks;
	t->leftover_blocks += s->leftover_blocks;
	t->leftover_bytes += s->leftover_bytes;
	for (size_t i = 0; rc == 0 && i < s->levels.n; i++) {
		const struct level *l = &s->levels.v[i];
		rc = level_add(&t->levels, l->level, l->gens, l->samples, l->bytes);
	}
	return rc;
}

static uint64_t part_samples(const struct part_stats *s)
{
	return s->hot_samples + s->cold_samples;
}

static void print_summary_text(const struct ctl_ro *db, const struct inspect *in)
{
	char a[64], b[64];
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
	ctl_fmt_bytes(a, sizeof a, in->wal_bytes);
	printf("WAL              %s in %" PRIu64 " file(s)\n", a, in->wal_files);
	ctl_fmt_bytes(a, sizeof a, in->index_used);
	ctl_fmt_bytes(b, sizeof b, in->index_live);
	printf("index            %s in use (%s live, the rest free pages), %" PRIu64
	       " postings keys, %" PRIu64 " postings entries in %" PRIu64 " %s\n",
	       a, b, in->n_postings_keys, in->n_postings, in->n_postings_rows,
	       db->postings_blocks ? "blocks" : "rows");
	const struct group_stats *sg = &in->series_groups, *hg = &in->head_groups;
	ctl_fmt_bytes(a, sizeof a, sg->bytes);
	ctl_fmt_bytes(b, sizeof b, sg->raw_bytes);
	printf("series rows      %" PRIu64 " in series_groups (%" PRIu64 " row%s, %s stored, %s "
	       "raw), %" PRIu64 " in the series table\n",
	       sg->entries, sg->rows, PLURAL(sg->rows), a, b, in->n_series_rows);
	ctl_fmt_bytes(a, sizeof a, hg->bytes);
	ctl_fmt_bytes(b, sizeof b, hg->raw_bytes);
	printf("head rows        %" PRIu64 " in head_groups (%" PRIu64 " row%s, %s stored, %s "
	       "raw), %" PRIu64 " in the heads table\n",
	       hg->entries, hg->rows, PLURAL(hg->rows), a, b, in->n_head_rows);
	if (sg->bad_rows + hg->bad_rows)
		printf("                 (%" PRIu64
		       " group rows do not unpack: run tsdbctl verify)\n",
		       sg->bad_rows + hg->bad_rows);
	printf("metadata         %" PRIu64 " metric families\n", in->n_metadata);
	printf("tombstones       %" PRIu64 " deleted range%s\n", in->n_tombstones,
	       PLURAL(in->n_tombstones));
	printf("head snapshots   %" PRIu64 " series, %" PRIu64 " samples (open chunks at the "
	       "last checkpoint)\n",
	       in->n_heads, in->head_samples);
}

/* The lines under a partition's row (and under the totals): hot and cold parts, then
 * the cold levels. */
static void print_part_detail(const struct part_stats *s)
{
	char a[64], b[64], c[64];
	printf("      hot: %" PRIu64 " chunk%s, %" PRIu64 " samples; cold: ", s->chunks,
	       PLURAL(s->chunks), s->hot_samples);
	if (s->n_gens || s->cold_blocks) {
		ctl_fmt_bytes(a, sizeof a, s->cold_bytes);
		bytes_per_sample(b, sizeof b, s->cold_bytes, s->cold_samples);
		printf("%zu generation%s, %" PRIu64 " block%s, %" PRIu64
		       " samples, %s (%s B/sample)",
		       s->n_gens, PLURAL(s->n_gens), s->cold_blocks, PLURAL(s->cold_blocks),
		       s->cold_samples, a, b);
	} else {
		printf("none");
	}
	if (s->has_tiers) {
		ctl_fmt_bytes(a, sizeof a, s->tier_bytes[0]);
		ctl_fmt_bytes(c, sizeof c, s->tier_bytes[1]);
		printf("; tiers: 5m %s, 1h %s", a, c);
	}
	if (s->expired)
		printf("; deleted by retention:%s%s%s",
		       s->expired & TS_FORMAT_EXPIRED_RAW ? " raw" : "",
		       s->expired & TS_FORMAT_EXPIRED_5M ? " 5m" : "",
		       s->expired & TS_FORMAT_EXPIRED_1H ? " 1h" : "");
	if (s->leftover_blocks) {
		ctl_fmt_bytes(a, sizeof a, s->leftover_bytes);
		printf("; %" PRIu64 " unlisted (leftover) block%s, %s", s->leftover_blocks,
		       PLURAL(s->leftover_blocks), a);
	}
	if (s->bad_records || s->bad_blocks || s->gens_bad)
		printf("  (%s: run tsdbctl verify)",
		       s->gens_bad ? "gens row does not parse" : "bad records");
	putchar('\n');
	for (size_t i = 0; i < s->levels.n; i++) {
		const struct level *l = &s->levels.v[i];
		ctl_fmt_bytes(a, sizeof a, l->bytes);
		bytes_per_sample(c, sizeof c, l->bytes, l->samples);
		printf("      cold level %" PRIu32 ": %" PRIu64 " generation%s, %" PRIu64
		       " samples, %s (%s B/sample)\n",
		       l->level, l->gens, PLURAL(l->gens), l->samples, a, c);
	}
}

static void print_parts_text(const struct ctl_ro *db, const struct inspect *in)
{
	char a[64], b[64], c[64];
	const struct part_stats *t = &in->total;
	printf("\npartitions (%zu):\n", db->parts.n);
	printf("  %-20s  %-20s %10s %8s %12s %11s %8s  %s\n", "start", "end", "chunks", "blocks",
	       "samples", "bytes", "B/sample", "compacted");
	for (size_t i = 0; i < db->parts.n; i++) {
		const struct part_stats *s = &in->ps[i];
		ctl_fmt_time(a, sizeof a, s->p->start);
		ctl_fmt_time(b, sizeof b, s->p->end);
		if (s->gone || s->has_error) {
			printf("  %-20s  %-20s  %s\n", a, b,
			       s->gone ? "(removed while reading)"
				       : "(unreadable: run tsdbctl verify)");
			continue;
		}
		bytes_per_sample(c, sizeof c, s->used_bytes, part_samples(s));
		printf("  %-20s  %-20s %10" PRIu64 " %8" PRIu64 " %12" PRIu64 " %11" PRIu64
		       " %8s  %s\n",
		       a, b, s->chunks, s->cold_blocks, part_samples(s), s->used_bytes, c,
		       s->compacted ? "yes" : "no");
		print_part_detail(s);
	}
	bytes_per_sample(c, sizeof c, t->used_bytes, part_samples(t));
	printf("  %-20s  %-20s %10" PRIu64 " %8" PRIu64 " %12" PRIu64 " %11" PRIu64 " %8s\n",
	       "total", "", t->chunks, t->cold_blocks, part_samples(t), t->used_bytes, c);
	print_part_detail(t);
	if (db->parts.n_other)
		printf("  (%zu unexpected entries in raw/ ignored)\n", db->parts.n_other);
}

static void inspect_print_text(const struct ctl_ro *db, const struct inspect *in, size_t top)
{
	print_summary_text(db, in);
	print_parts_text(db, in);
	print_top_text("metric names", &in->metrics, top, 0);
	print_top_text("label names", &in->labels, top, 1);
}

/* ---- JSON ---- */

static void print_top_json(FILE *f, const struct nc_list *l, size_t top, int values)
{
	fputc('[', f);
	for (size_t i = 0; i < l->n && i < top; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		ctl_json_str(f, l->v[i].name, l->v[i].len);
		fprintf(f, ",\"series\":%" PRIu64, l->v[i].series);
		if (values)
			fprintf(f, ",\"values\":%" PRIu64, l->v[i].values);
		fputc('}', f);
	}
	fputc(']', f);
}

static void json_bps(FILE *f, const char *key, uint64_t bytes, uint64_t samples)
{
	if (samples)
		fprintf(f, ",\"%s\":%.4f", key, (double)bytes / (double)samples);
	else
		fprintf(f, ",\"%s\":null", key);
}

static void print_group_json(FILE *f, const char *name, const struct group_stats *g)
{
	fprintf(f,
		"\"%s\":{\"rows\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"raw_bytes\":%" PRIu64 ",\"bad_rows\":%" PRIu64 "}",
		name, g->rows, g->entries, g->bytes, g->raw_bytes, g->bad_rows);
}

static void print_summary_json(FILE *f, const struct ctl_ro *db, const struct inspect *in)
{
	fputs("{\"data_dir\":", f);
	ctl_json_str(f, db->dir, strlen(db->dir));
	fprintf(f, ",\"format\":%" PRIu32 ",\"partition_ms\":%" PRId64 ",\"series\":%" PRIu64,
		db->format, db->partition_ms, in->n_series);
	fprintf(f, ",\"next_id\":%" PRIu64 ",\"checkpoint_lsn\":%" PRIu64, db->next_id,
		db->checkpoint_lsn);
	fprintf(f, ",\"wal_bytes\":%" PRIu64 ",\"wal_files\":%" PRIu64, in->wal_bytes,
		in->wal_files);
	fprintf(f,
		",\"index_bytes\":%" PRIu64 ",\"index_live_bytes\":%" PRIu64
		",\"postings_keys\":%" PRIu64 ",\"postings_entries\":%" PRIu64
		",\"postings_rows\":%" PRIu64 ",\"postings_table\":\"%s\"",
		in->index_used, in->index_live, in->n_postings_keys, in->n_postings,
		in->n_postings_rows,
		db->postings_blocks ? TS_FORMAT_TABLE_POSTINGS_BLOCKS : TS_FORMAT_TABLE_POSTINGS);
	fprintf(f, ",\"index_tables\":{\"series\":{\"rows\":%" PRIu64 "},", in->n_series_rows);
	print_group_json(f, TS_FORMAT_TABLE_SERIES_GROUPS, &in->series_groups);
	fprintf(f, ",\"heads\":{\"rows\":%" PRIu64 "},", in->n_head_rows);
	print_group_json(f, TS_FORMAT_TABLE_HEAD_GROUPS, &in->head_groups);
	fprintf(f,
		"},\"metadata\":%" PRIu64 ",\"tombstones\":%" PRIu64
		",\"head_snapshots\":{\"series\":%" PRIu64 ",\"samples\":%" PRIu64 "}",
		in->n_metadata, in->n_tombstones, in->n_heads, in->head_samples);
}

/* The figures a partition and the totals share: hot and cold parts, levels. */
static void print_figures_json(FILE *f, const struct part_stats *s)
{
	fprintf(f,
		",\"chunks\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"payload_bytes\":%" PRIu64,
		s->chunks, part_samples(s), s->used_bytes, s->payload_bytes);
	json_bps(f, "bytes_per_sample", s->used_bytes, part_samples(s));
	fprintf(f,
		",\"hot_samples\":%" PRIu64 ",\"cold\":{\"generations\":%zu,\"blocks\":%" PRIu64
		",\"samples\":%" PRIu64 ",\"bytes\":%" PRIu64,
		s->hot_samples, s->n_gens, s->cold_blocks, s->cold_samples, s->cold_bytes);
	json_bps(f, "bytes_per_sample", s->cold_bytes, s->cold_samples);
	fprintf(f,
		",\"leftover_blocks\":%" PRIu64 ",\"leftover_bytes\":%" PRIu64
		",\"bad_blocks\":%" PRIu64 ",\"gens_row_bad\":%s,\"levels\":[",
		s->leftover_blocks, s->leftover_bytes, s->bad_blocks,
		s->gens_bad ? "true" : "false");
	for (size_t i = 0; i < s->levels.n; i++) {
		const struct level *l = &s->levels.v[i];
		fprintf(f,
			"%s{\"level\":%" PRIu32 ",\"generations\":%" PRIu64 ",\"samples\":%" PRIu64
			",\"bytes\":%" PRIu64,
			i ? "," : "", l->level, l->gens, l->samples, l->bytes);
		json_bps(f, "bytes_per_sample", l->bytes, l->samples);
		fputc('}', f);
	}
	fputs("]}", f);
}

/* One partition's object, without its opening brace. */
static void print_part_json(FILE *f, const struct part_stats *s)
{
	char a[64];
	fprintf(f, "\"dir\":\"raw/%s\"", s->p->name);
	ctl_fmt_time(a, sizeof a, s->p->start);
	fprintf(f, ",\"start\":\"%s\"", a);
	ctl_fmt_time(a, sizeof a, s->p->end);
	fprintf(f, ",\"end\":\"%s\",\"start_ms\":%" PRId64 ",\"end_ms\":%" PRId64, a, s->p->start,
		s->p->end);
	if (s->gone || s->has_error) {
		fprintf(f, ",\"%s\":true}", s->gone ? "removed" : "unreadable");
		return;
	}
	print_figures_json(f, s);
	if (s->data_min <= s->data_max) {
		ctl_fmt_time(a, sizeof a, s->data_min);
		fprintf(f, ",\"data_min\":\"%s\"", a);
		ctl_fmt_time(a, sizeof a, s->data_max);
		fprintf(f, ",\"data_max\":\"%s\"", a);
	}
	fprintf(f, ",\"bad_records\":%" PRIu64 ",\"compacted\":%s", s->bad_records,
		s->compacted ? "true" : "false");
	if (s->has_tiers)
		fprintf(f, ",\"tiers\":{\"5m_bytes\":%" PRIu64 ",\"1h_bytes\":%" PRIu64 "}}",
			s->tier_bytes[0], s->tier_bytes[1]);
	else
		fprintf(f, ",\"tiers\":null}");
}

static void inspect_print_json(const struct ctl_ro *db, const struct inspect *in, size_t top)
{
	FILE *f = stdout;
	print_summary_json(f, db, in);
	fputs(",\"partitions\":[", f);
	for (size_t i = 0; i < db->parts.n; i++) {
		fputs(i ? ",{" : "{", f);
		print_part_json(f, &in->ps[i]);
	}
	fputs("],\"totals\":{\"partitions\":", f);
	fprintf(f, "%zu", db->parts.n);
	print_figures_json(f, &in->total);
	fputs("},\"top_metrics\":", f);
	print_top_json(f, &in->metrics, top, 0);
	fputs(",\"top_labels\":", f);
	print_top_json(f, &in->labels, top, 1);
	fputs("}\n", f);
}

/* ---- the command ---- */

static int inspect_all(struct ctl_ro *db, struct inspect *in)
{
	int ex = EXIT_OK;
	int rc = inspect_index(db, in);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s/index.mdb: %s\n", db->dir, ts_strerror(rc));
		return EXIT_FAIL;
	}
	in->ps = ts_calloc(db->parts.n ? db->parts.n : 1, sizeof *in->ps);
	if (!in->ps)
		return EXIT_FAIL;
	for (size_t i = 0; i < db->parts.n; i++) {
		struct part_stats *s = &in->ps[i];
		s->p = &db->parts.v[i];
		ctl_progress("inspect: raw/%s", s->p->name);
		if ((rc = inspect_part(db, s)) != 0) {
			fprintf(stderr, "tsdbctl: %s/raw/%s: %s\n", db->dir, s->p->name,
				ts_strerror(rc));
			s->has_error = 1;
			ex = EXIT_FAIL;
		} else if (!s->gone && (rc = part_sum(&in->total, s)) != 0) {
			fprintf(stderr, "tsdbctl: %s\n", ts_strerror(rc));
			ex = EXIT_FAIL;
		}
	}
	ctl_progress_done();
	return ex;
}

static int inspect_main(int argc, char **argv)
{
	const char *dir;
	size_t top = 10;
	int json = 0;
	const struct ctl_opt opts[] = {
		{ "--top", 0, ctl_opt_count, &top },
		{ "--json", 1, ctl_opt_flag, &json },
		{ 0 },
	};
	struct ctl_ro db;
	struct inspect in = { 0 };
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex != CTL_RUN || (ex = ctl_ro_open(&db, dir)) != EXIT_OK)
		return ex;
	wal_bytes(dir, &in);
	ex = inspect_all(&db, &in);
	if (in.ps) {
		nc_sort(&in.metrics);
		nc_sort(&in.labels);
		if (json)
			inspect_print_json(&db, &in, top);
		else
			inspect_print_text(&db, &in, top);
	}
	nc_free(&in.metrics);
	nc_free(&in.labels);
	for (size_t i = 0; in.ps && i < db.parts.n; i++)
		level_free(&in.ps[i].levels);
	level_free(&in.total.levels);
	ts_free(in.ps);
	ctl_ro_close(&db);
	if (fflush(stdout) != 0 && ex == EXIT_OK)
		ex = EXIT_FAIL;
	return ex;
}

static const char inspect_help[] =
	"  inspect   format, partition width, series, checkpoint LSN, WAL size, index rows and\n"
	"            group rows; per partition its time range, hot chunks and samples, cold\n"
	"            generations (per level), blocks, samples and bytes, bytes in use,\n"
	"            bytes/sample, compacted; cardinality top-N by metric name and by label\n"
	"            name; metadata count. Reads while a server runs.\n"
	"              --top N    entries in each top list (default 10)\n"
	"              --json     one JSON object instead of text\n";

CTL_COMMAND(inspect);
