/*
 * export.c - `tsdbctl export`: the selected series as JSON lines on stdout, what
 * GET /api/v1/export writes (VictoriaMetrics format, wire/jsonl.h), for a stopped server.
 *
 * The selection (--match, a union when repeated, every series without one; --start and
 * --end) is common.c's and uses query/selector.h, the parser the HTTP API uses. Series
 * are written in label order, each as lines of at most EXPORT_LINE_SAMPLES samples.
 * Stale markers are left out: the text form cannot carry them. A summary goes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tsdbctl.h"
#include "wire/jsonl.h"
#include "storage/err.h"
#include "storage/mem.h"

#define EXPORT_LINE_SAMPLES 10000 /* as server/export.c */

/* Writes buf[0..n) of one series as one line; *out is a buffer kept between calls. */
static int write_line(const struct ts_selector_ref *ref, const struct ts_sample *buf, size_t n,
		      char **out, size_t *out_cap)
{
	size_t need = ts_jsonl_encode_bound(ref->labels, ref->n_labels, n);
	if (need == SIZE_MAX)
		return TS_ELIMIT;
	if (ts_grow((void **)out, out_cap, need, 1))
		return -ENOMEM;
	size_t len = ts_jsonl_encode(*out, ref->labels, ref->n_labels, buf, n);
	return fwrite(*out, 1, len, stdout) == len ? 0 : -EIO;
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
			uint64_t b;
			ts_iter_at(it, &s->t_ms, &s->v);
			memcpy(&b, &s->v, 8);
			if (b == TS_STALE_NAN_BITS)
				continue; /* the text form cannot carry it (as GET /api/v1/export) */
			if (++n < EXPORT_LINE_SAMPLES)
				continue;
		} else if (rc < 0 || n == 0) {
			break;
		}
		int end = rc == 0;
		rc = write_line(ref, buf, n, out, out_cap);
		*n_samples += n;
		n = 0;
		if (rc || end)
			break;
	}
	ts_iter_free(it);
	return rc < 0 ? rc : 0;
}

static int export_all(const struct ts_selector_union *u)
{
	struct ts_sample *buf = ts_malloc(EXPORT_LINE_SAMPLES * sizeof *buf);
	char *out = NULL;
	size_t out_cap = 0;
	uint64_t n_samples = 0;
	int rc = 0;
	if (!buf)
		return EXIT_FAIL;
	for (size_t i = 0; rc == 0 && i < u->n_refs; i++) {
		rc = export_series(&u->refs[i], buf, &out, &out_cap, &n_samples);
		if ((i & 0x3ff) == 0)
			ctl_progress("export: %zu of %zu series", i, u->n_refs);
	}
	ctl_progress_done();
	ts_free(out);
	ts_free(buf);
	if (rc == 0 && fflush(stdout) != 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "tsdbctl: export failed: %s\n", ts_strerror(rc));
		return EXIT_FAIL;
	}
	fprintf(stderr, "tsdbctl: exported %zu series, %" PRIu64 " samples\n", u->n_refs,
		n_samples);
	return EXIT_OK;
}

struct fmt_opts {
	const char *format, *out, *min_block, *max_block;
	const char *ext[64];
	size_t n_ext;
};

static int opt_str(void *dest, const char *name, const char *val)
{
	(void)name;
	*(const char **)dest = val;
	return 0;
}

static int opt_ext(void *dest, const char *name, const char *val)
{
	struct fmt_opts *f = dest;
	const char *eq = strchr(val, '=');
	if (!eq || eq == val || f->n_ext == 64 || strpbrk(val, "\"\\\n")) {
		ctl_usage_error("%s wants NAME=VALUE (at most 64, no quotes)", name);
		return EXIT_USAGE;
	}
	f->ext[f->n_ext++] = val;
	return 0;
}

/* Prometheus blocks of the selection into f->out (promblock.c). */
static int export_prom(struct ts_db *db, const char *dir, struct ctl_select *sel,
		       const struct fmt_opts *f)
{
	/* Prometheus' defaults: 2h blocks, compacted up to 10 % of its 15-day retention. */
	int64_t min_ms = 2 * 3600000, max_ms = 36 * 3600000;
	if (f->min_block && (ctl_opt_time_dur(f->min_block, &min_ms) || min_ms < 60000)) {
		ctl_usage_error("--min-block-duration wants a duration of at least 1m (e.g. 2h)");
		return EXIT_USAGE;
	}
	if (f->max_block && (ctl_opt_time_dur(f->max_block, &max_ms) || max_ms < min_ms)) {
		ctl_usage_error("--max-block-duration wants a duration not below "
				"--min-block-duration (e.g. 36h)");
		return EXIT_USAGE;
	}
	/* Blocks added beside earlier ones would overlap them. */
	int e = ctl_dir_empty(f->out);
	if (e <= 0) {
		fprintf(stderr,
			"tsdbctl: %s is %s: export writes blocks only into an empty "
			"directory\n",
			f->out, e < 0 ? "not readable" : "not empty");
		return EXIT_FAIL;
	}
	/* Everything in partitions first, so their list covers the data. */
	int rc = ts_db_checkpoint(db);
	struct ctl_parts parts = { 0 };
	if (rc == 0)
		rc = ctl_parts_list(dir, &parts);
	if (rc == 0 && parts.n) {
		int64_t from = parts.v[0].start > sel->start ? parts.v[0].start : sel->start;
		int64_t to = parts.v[parts.n - 1].end - 1 < sel->end ? parts.v[parts.n - 1].end - 1
								     : sel->end;
		uint64_t nb, ns;
		rc = ctl_prom_export(db, sel, f->out, from, to, min_ms, max_ms, f->ext, f->n_ext,
				     &nb, &ns);
		if (rc == 0)
			fprintf(stderr,
				"tsdbctl: wrote %" PRIu64 " Prometheus blocks (%" PRIu64
				" samples) into %s\n",
				nb, ns, f->out);
	}
	ctl_parts_free(&parts);
	if (rc) {
		fprintf(stderr, "tsdbctl: export to %s failed: %s\n", f->out, ts_strerror(rc));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int export_main(int argc, char **argv)
{
	const char *dir;
	struct ctl_select sel;
	struct fmt_opts f = { 0 };
	const struct ctl_opt opts[] = {
		{ "--match", 0, ctl_opt_match, &sel },
		{ "--start", 0, ctl_opt_time, &sel.start },
		{ "--end", 0, ctl_opt_time, &sel.end },
		{ "--format", 0, opt_str, &f.format },
		{ "--out", 0, opt_str, &f.out },
		{ "--min-block-duration", 0, opt_str, &f.min_block },
		{ "--max-block-duration", 0, opt_str, &f.max_block },
		{ "--external-label", 0, opt_ext, &f },
		{ 0 },
	};
	struct ts_db *db = NULL;
	ctl_select_init(&sel);
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	int prom = f.format && !strcmp(f.format, "prometheus");
	if (ex == CTL_RUN && f.format && !prom && strcmp(f.format, "jsonl")) {
		ctl_usage_error("--format is jsonl (default) or prometheus");
		ex = EXIT_USAGE;
	}
	if (ex == CTL_RUN && prom && (!f.out || !*f.out)) {
		ctl_usage_error("--format prometheus needs --out DIR");
		ex = EXIT_USAGE;
	}
	if (ex == CTL_RUN && (ex = ctl_select_parse(&sel)) == EXIT_OK &&
	    (ex = ctl_db_open(dir, "use GET /api/v1/export", &db)) == EXIT_OK)
		ex = prom ? export_prom(db, dir, &sel, &f)
		     : (ex = ctl_select_series(&sel, db)) == EXIT_OK ? export_all(&sel.u)
								     : ex;
	ctl_select_fini(&sel);
	if (db && ctl_db_close(db, dir) != EXIT_OK)
		ex = EXIT_FAIL;
	return ex;
}

static const char export_help[] =
	"  export    series as JSON lines (VictoriaMetrics format, as GET /api/v1/export) on\n"
	"            stdout; stale markers are left out. Needs the server stopped.\n"
	"              --match SELECTOR   series selector, repeatable (union); default: all\n"
	"              --start T, --end T unix seconds or RFC 3339; default: everything\n"
	"              --format prometheus --out DIR   Prometheus TSDB blocks instead (index,\n"
	"                         chunks, meta.json with a thanos section) for Prometheus,\n"
	"                         promtool and Thanos buckets\n"
	"              --min-block-duration DUR, --max-block-duration DUR   as Prometheus'\n"
	"                         flags: 2h blocks compacted into 6h and 18h ones as its\n"
	"                         compactor would (defaults 2h and 36h)\n"
	"              --external-label NAME=VALUE   in meta.json's thanos labels (repeatable)\n";

CTL_COMMAND(export);
