/*
 * inspect.c - `tsdbctl inspect`: what a data directory holds, read while a server runs.
 *
 * It opens the index env and each partition env read-only (common.c) and reports: the
 * format, partition width, series (and next id), checkpoint LSN, WAL size (the sum of
 * the files in DIR/wal), index bytes in use, postings keys and entries, metadata
 * families, head snapshots (series and samples of the open chunks at the last
 * checkpoint); per partition its range, chunks, samples (the sum of the chunk record
 * headers), LMDB bytes in use, bytes/sample and whether it is compacted; and the top N
 * metric names and label names by series, counted from the postings table alone (its
 * keys sort by label name, then value, so one pass aggregates both). --json prints the
 * same as one object.
 *
 * It reads headers only and trusts them; checking them is verify's job, so a record it
 * cannot read is counted as bad and the reader pointed at verify.
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

/* ---- gathering ---- */

struct part_stats {
	const struct ctl_part *p;
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
 * count, as far as the lengths allow (verify checks them). */
static uint64_t snap_samples(const uint8_t *p, size_t len)
{
	const size_t fixed = TS_FORMAT_SNAP_FIXED;
	if (len < fixed + 4)
		return 0;
	uint32_t chunk = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN);
	uint64_t n = (uint16_t)(p[TS_FORMAT_SNAP_OFF_N] | p[TS_FORMAT_SNAP_OFF_N + 1] << 8);
	if (chunk <= len - fixed - 4)
		n += ts_format_get_le32(p + fixed + chunk);
	return n;
}

/* A head snapshot: its series, and the samples of its open chunk and out-of-order
 * buffer. */
static int head_row(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
	struct inspect *in = ctx;
	(void)k;
	(void)kl;
	in->n_heads++;
	in->head_samples += snap_samples(v, vl);
	return 0;
}

/* One pass over the postings table: a key is `name 0x00 value` with one entry per
 * series; keys of one name are adjacent. A key's series count goes to the metric names
 * when its name is __name__, and to its label name's totals. */
struct postings_walk {
	struct inspect *in;
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
	(void)v;
	(void)vl;
	w->in->n_postings++;
	if (w->have_key && kl == w->key_len && memcmp(k, w->key, kl) == 0) {
		w->key_ids++;
		return 0;
	}
	if (w->have_key && (rc = walk_close_key(w)))
		return rc;
	if (kl > TS_FORMAT_POSTING_KEY_MAX)
		kl = TS_FORMAT_POSTING_KEY_MAX; /* not a valid key; verify says so */
	memcpy(w->key, k, kl);
	w->key_len = kl;
	w->have_key = 1;
	w->key_ids = 1;
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
	rc = ctl_scan(r, db->t_postings, postings_row, w);
	if (!rc && w->have_key)
		rc = walk_close_key(w);
	if (!rc && w->have_name)
		rc = nc_add(&in->labels, w->name, w->name_len, w->name_series, w->name_values);
	ts_free(w);
	return rc;
}

static int inspect_index(struct ctl_ro *db, struct inspect *in)
{
	struct ts_rtxn *r;
	uint64_t map;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc)
		return rc;
	ts_env_size(db->index, &map, &in->index_used);
	rc = ctl_count_rows(r, db->t_series, &in->n_series);
	if (!rc && db->has_metadata)
		rc = ctl_count_rows(r, db->t_metadata, &in->n_metadata);
	if (!rc && db->has_heads)
		rc = ctl_scan(r, db->t_heads, head_row, in);
	if (!rc)
		rc = inspect_postings(db, r, in);
	ts_env_read_end(r);
	return rc;
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
	int64_t mint = (int64_t)ts_format_get_le64(p + 8);
	int64_t maxt = (int64_t)ts_format_get_le64(p + 16);
	s->samples += ts_format_get_le32(p + 4);
	s->payload_bytes += len - TS_CHUNK_HDR_LEN;
	if (mint < s->data_min)
		s->data_min = mint;
	if (maxt > s->data_max)
		s->data_max = maxt;
	return 0;
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
		const char *ck = TS_FORMAT_PART_META_COMPACTED;
		if (pe.has_meta)
			s->compacted = ts_env_get(r, pe.meta, ck, strlen(ck), &v, &vl) == 0;
		if (pe.has_chunks)
			rc = ctl_scan(r, pe.chunks, chunk_row, s);
		ts_env_read_end(r);
	}
	ctl_part_close(&pe);
	return rc;
}

/* ---- text ---- */

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

static void print_summary_text(const struct ctl_ro *db, const struct inspect *in)
{
	char a[64];
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
	printf("index            %s in use, %" PRIu64 " postings keys, %" PRIu64
	       " postings entries\n",
	       a, in->n_postings_keys, in->n_postings);
	printf("metadata         %" PRIu64 " metric families\n", in->n_metadata);
	printf("head snapshots   %" PRIu64 " series, %" PRIu64 " samples (open chunks at the "
	       "last checkpoint)\n",
	       in->n_heads, in->head_samples);
}

static void print_parts_text(const struct ctl_ro *db, const struct inspect *in)
{
	char a[64], b[64], c[64];
	uint64_t tc = 0, ts_ = 0, tb = 0;
	printf("\npartitions (%zu):\n", db->parts.n);
	printf("  %-20s  %-20s %10s %12s %11s %8s  %s\n", "start", "end", "chunks", "samples",
	       "bytes", "B/sample", "compacted");
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
		bytes_per_sample(c, sizeof c, s->used_bytes, s->samples);
		printf("  %-20s  %-20s %10" PRIu64 " %12" PRIu64 " %11" PRIu64 " %8s  %s%s\n", a, b,
		       s->chunks, s->samples, s->used_bytes, c, s->compacted ? "yes" : "no",
		       s->bad_records ? "  (bad records: run tsdbctl verify)" : "");
		tc += s->chunks;
		ts_ += s->samples;
		tb += s->used_bytes;
	}
	bytes_per_sample(c, sizeof c, tb, ts_);
	printf("  %-20s  %-20s %10" PRIu64 " %12" PRIu64 " %11" PRIu64 " %8s\n", "total", "", tc,
	       ts_, tb, c);
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

static void print_summary_json(FILE *f, const struct ctl_ro *db, const struct inspect *in)
{
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
		ctl_fmt_time(a, sizeof a, s->data_min);
		fprintf(f, ",\"data_min\":\"%s\"", a);
		ctl_fmt_time(a, sizeof a, s->data_max);
		fprintf(f, ",\"data_max\":\"%s\"", a);
	}
	fprintf(f, ",\"bad_records\":%" PRIu64 ",\"compacted\":%s}", s->bad_records,
		s->compacted ? "true" : "false");
}

static void inspect_print_json(const struct ctl_ro *db, const struct inspect *in, size_t top)
{
	FILE *f = stdout;
	uint64_t tc = 0, ts_ = 0, tb = 0;
	print_summary_json(f, db, in);
	fputs(",\"partitions\":[", f);
	for (size_t i = 0; i < db->parts.n; i++) {
		const struct part_stats *s = &in->ps[i];
		fputs(i ? ",{" : "{", f);
		print_part_json(f, s);
		if (s->gone || s->has_error)
			continue;
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
		const struct ctl_part *p = &db->parts.v[i];
		in->ps[i].p = p;
		ctl_progress("inspect: raw/%s", p->name);
		if ((rc = inspect_part(db, &in->ps[i])) != 0) {
			fprintf(stderr, "tsdbctl: %s/raw/%s: %s\n", db->dir, p->name,
				ts_strerror(rc));
			in->ps[i].has_error = 1;
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
	ts_free(in.ps);
	ctl_ro_close(&db);
	if (fflush(stdout) != 0 && ex == EXIT_OK)
		ex = EXIT_FAIL;
	return ex;
}

static const char inspect_help[] =
	"  inspect   format, partition width, series, checkpoint LSN, WAL size; per partition\n"
	"            its time range, chunks, samples, bytes in use, bytes/sample, compacted;\n"
	"            cardinality top-N by metric name and by label name; metadata count.\n"
	"            Reads while a server runs.\n"
	"              --top N    entries in each top list (default 10)\n"
	"              --json     one JSON object instead of text\n";

CTL_COMMAND(inspect);
