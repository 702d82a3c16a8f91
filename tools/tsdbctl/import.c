/*
 * import.c - `tsdbctl import`: Prometheus blocks or JSON lines into a stopped server's
 * data directory (created when absent or empty).
 *
 * Samples go through ts_db_append like any write, so they are logged, validated and
 * counted the same way: a resend of a stored sample is a duplicate (accepted, not stored
 * twice), so an interrupted import can simply be run again. The database is opened with
 * an out-of-order window of all time, because blocks overlap in time and a series comes
 * back in every block; values are carried as their bits (stale markers included).
 *
 * Prometheus blocks: DIR is a Prometheus data directory (its blocks; the head in wal/
 * is not read, and that is said) or one block. Blocks are read in minTime order, each
 * series' chunks decoded (XOR; native histogram chunks are counted and skipped, as
 * tsdbd stores floats only) and its tombstoned intervals left out. The decoders live in
 * promread.c; files are mapped read-only here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "promblock.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "storage/xor.h"
#include "tsdb/format.h"
#include "tsdbctl.h"
#include "wire/jsonl.h"

struct totals {
	uint64_t new_series, samples_read, appended, duplicate, rejected, hist_chunks, deleted;
	int first_err;
	char first_msg[256];
};

/* Sums an append of in[0..n) into t. A series refused whole (bad labels, a series
 * limit: series_rc TS_EINVALID or TS_ELIMIT) counts its samples as rejected. */
static void add_result(struct totals *t, const struct ts_append_result *r,
		       const struct ts_series_in *in, size_t n, const int *series_rc)
{
	t->appended += r->n_appended;
	t->new_series += r->n_new_series;
	t->duplicate += r->n_duplicate;
	uint64_t rej = r->n_out_of_order + r->n_conflict + r->n_too_old + r->n_too_future;
	for (size_t i = 0; i < n; i++)
		if (series_rc[i] == TS_EINVALID || series_rc[i] == TS_ELIMIT)
			rej += in[i].n_samples;
	t->rejected += rej;
	if (r->first_err && !t->first_err) {
		t->first_err = r->first_err;
		snprintf(t->first_msg, sizeof t->first_msg, "%s", r->first_err_msg);
	}
}

/* ---- series for ts_db_append ---- */

struct batch {
	struct ts_series_in *ser;
	size_t n_ser, cap_ser;
	size_t *first; /* each series' first sample in smp (smp moves as it grows) */
	size_t cap_first;
	struct ts_sample *smp;
	size_t n_smp, cap_smp;
};

static int batch_flush(struct ts_db *db, struct batch *b, struct totals *t)
{
	if (!b->n_ser)
		return 0;
	for (size_t i = 0; i < b->n_ser; i++)
		b->ser[i].samples = b->smp + b->first[i];
	struct ts_append_result r;
	int *src = ts_calloc(b->n_ser, sizeof *src);
	if (!src)
		return -ENOMEM;
	int rc = ts_db_append(db, b->ser, b->n_ser, &r, src);
	if (rc == 0)
		add_result(t, &r, b->ser, b->n_ser, src);
	ts_free(src);
	b->n_ser = 0;
	b->n_smp = 0;
	return rc;
}

static void batch_free(struct batch *b)
{
	ts_free(b->ser);
	ts_free(b->first);
	ts_free(b->smp);
}

/* ---- Prometheus blocks ---- */

struct mapped {
	const uint8_t *p;
	size_t n;
};

static int map_file(const char *path, struct mapped *m)
{
	m->p = NULL;
	m->n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) ? -errno : 0;
	if (rc == 0 && st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			rc = -errno;
		else {
			m->p = p;
			m->n = (size_t)st.st_size;
		}
	}
	close(fd);
	return rc;
}

static void unmap(struct mapped *m)
{
	if (m->p)
		munmap((void *)m->p, m->n);
	m->p = NULL;
	m->n = 0;
}

struct pblock {
	char dir[CTL_PATH_MAX];
	int64_t mint, maxt;
};

static int pblock_cmp(const void *a, const void *b)
{
	const struct pblock *x = a, *y = b;
	if (x->mint != y->mint)
		return x->mint < y->mint ? -1 : 1;
	return strcmp(x->dir, y->dir);
}

/* Reads dir/meta.json into *b; 1 if dir is a block, 0 if it has no meta.json, or an
 * error after a message. */
static int read_meta(const char *dir, struct pblock *b)
{
	char path[CTL_PATH_MAX];
	if (ctl_join(path, sizeof path, dir, "meta.json"))
		return -ENAMETOOLONG;
	size_t len;
	char *text = ctl_read_file(path, 1 << 20, &len);
	if (!text)
		return errno == ENOENT ? 0 : -errno;
	char why[256];
	int rc = pb_meta_parse(text, len, &b->mint, &b->maxt, why, sizeof why);
	free(text);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s: %s\n", path, why);
		return rc;
	}
	snprintf(b->dir, sizeof b->dir, "%s", dir);
	return 1;
}

/* The blocks under `from` (or `from` itself when it is one), in minTime order. */
static int list_blocks(const char *from, struct pblock **out, size_t *n_out)
{
	struct pblock one, *v = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*n_out = 0;
	int rc = read_meta(from, &one);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (!(v = ts_malloc(sizeof *v)))
			return -ENOMEM;
		*v = one;
		*out = v;
		*n_out = 1;
		return 0;
	}
	DIR *d = opendir(from);
	if (!d)
		return -errno;
	struct dirent *e;
	rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		/* Prometheus' unfinished or half-deleted blocks end in .tmp-for-creation,
		 * .tmp-for-deletion or .tmp. */
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp") || l != 26)
			continue;
		char sub[CTL_PATH_MAX];
		if (ctl_join(sub, sizeof sub, from, e->d_name))
			continue;
		struct pblock b;
		int r = read_meta(sub, &b);
		if (r < 0)
			rc = r;
		else if (r == 1) {
			if (ts_grow((void **)&v, &cap, n + 1, sizeof *v))
				rc = -ENOMEM;
			else
				v[n++] = b;
		}
	}
	closedir(d);
	if (rc) {
		ts_free(v);
		return rc;
	}
	qsort(v, n, sizeof *v, pblock_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

/* 1 if from/wal holds a non-empty segment: samples of the head that blocks lack. */
static int wal_has_data(const char *from)
{
	char wal[CTL_PATH_MAX];
	if (ctl_join(wal, sizeof wal, from, "wal"))
		return 0;
	DIR *d = opendir(wal);
	if (!d)
		return 0;
	struct dirent *e;
	int has = 0;
	while (!has && (e = readdir(d)) != NULL) {
		char p[CTL_PATH_MAX];
		struct stat st;
		if (e->d_name[0] != '.' && !ctl_join(p, sizeof p, wal, e->d_name) &&
		    stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
		    strspn(e->d_name, "0123456789") == strlen(e->d_name))
			has = 1;
	}
	closedir(d);
	return has;
}

struct segs {
	struct mapped *v;
	size_t n; /* mapped on first use; v[i].p == NULL and tried[i] when absent */
	uint8_t *tried;
};

static int seg_get(const char *block, struct segs *s, uint32_t idx, const struct mapped **m,
		   char *why, size_t why_len)
{
	if (idx >= 1u << 20) {
		snprintf(why, why_len, "chunk reference to segment %u", idx + 1);
		return TS_ECORRUPT;
	}
	if (idx >= s->n) {
		size_t n = idx + 1;
		struct mapped *v = realloc(s->v, n * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		uint8_t *t = realloc(s->tried, n);
		if (!t)
			return -ENOMEM;
		s->tried = t;
		memset(s->v + s->n, 0, (n - s->n) * sizeof *v);
		memset(s->tried + s->n, 0, n - s->n);
		s->n = n;
	}
	if (!s->tried[idx]) {
		s->tried[idx] = 1;
		char path[CTL_PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/chunks/%06u", block, idx + 1);
		int rc = map_file(path, &s->v[idx]);
		if (rc) {
			snprintf(why, why_len, "chunks/%06u: %s", idx + 1, ts_strerror(rc));
			return rc == -ENOENT ? TS_ECORRUPT : rc;
		}
		if ((rc = pb_segment_check(s->v[idx].p, s->v[idx].n, why, why_len)))
			return rc;
	}
	if (!s->v[idx].p) {
		snprintf(why, why_len, "segment %06u is missing or empty", idx + 1);
		return TS_ECORRUPT;
	}
	*m = &s->v[idx];
	return 0;
}

static void segs_free(struct segs *s)
{
	for (size_t i = 0; i < s->n; i++)
		unmap(&s->v[i]);
	free(s->v);
	free(s->tried);
}

/* 1 if t of series ref lies in one of its deleted intervals. */
static int deleted(const struct pb_stone *st, size_t n, uint64_t ref, int64_t t)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st[mid].ref < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && st[lo].ref == ref; lo++)
		if (t >= st[lo].mint && t <= st[lo].maxt)
			return 1;
	return 0;
}

static int import_block(struct ts_db *db, const struct pblock *pb, struct batch *b,
			struct totals *t)
{
	char path[CTL_PATH_MAX], why[320] = "";
	struct mapped idx = { 0 }, tomb = { 0 };
	struct pb_index ix = { 0 };
	struct pb_series s = { 0 };
	struct segs segs = { 0 };
	struct pb_stone *stones = NULL;
	size_t n_stones = 0;
	int rc = ctl_join(path, sizeof path, pb->dir, "index");
	if (rc == 0 && (rc = map_file(path, &idx)) != 0)
		snprintf(why, sizeof why, "index: %s", ts_strerror(rc));
	if (rc == 0)
		rc = pb_index_open(&ix, idx.p ? idx.p : (const uint8_t *)"", idx.n, why,
				   sizeof why);
	if (rc == 0 && (rc = ctl_join(path, sizeof path, pb->dir, "tombstones")) == 0) {
		int m = map_file(path, &tomb);
		if (m == 0 && tomb.n)
			rc = pb_tombstones_parse(tomb.p, tomb.n, &stones, &n_stones, why,
						 sizeof why);
		else if (m && m != -ENOENT) {
			rc = m;
			snprintf(why, sizeof why, "tombstones: %s", ts_strerror(m));
		}
	}
	for (size_t k = 0; rc == 0 && k < ix.n_series; k++) {
		uint32_t ref = ix.series[k];
		if ((rc = pb_series_read(&ix, ref, &s, why, sizeof why)))
			break;
		size_t first = b->n_smp;
		for (size_t c = 0; c < s.n_chunks && rc == 0; c++) {
			const struct mapped *seg;
			uint8_t enc;
			const uint8_t *data;
			size_t len;
			if ((rc = seg_get(pb->dir, &segs, (uint32_t)(s.chunks[c].ref >> 32), &seg,
					  why, sizeof why)) ||
			    (rc = pb_chunk_at(seg->p, seg->n, s.chunks[c].ref & 0xffffffffu, &enc,
					      &data, &len, why, sizeof why)))
				break;
			if (enc != PB_ENC_XOR) {
				t->hist_chunks++;
				continue;
			}
			struct ts_xor_it it;
			int got = ts_xor_it_init(&it, data, len);
			int n = ts_xor_count(data, len);
			if (got == 0 && ts_grow((void **)&b->smp, &b->cap_smp, b->n_smp + (size_t)n,
						sizeof *b->smp)) {
				rc = -ENOMEM;
				break;
			}
			while (got == 0 && (got = ts_xor_next(&it)) == 1) {
				t->samples_read++;
				if (n_stones && deleted(stones, n_stones, ref, it.t)) {
					t->deleted++;
					got = 0;
					continue;
				}
				struct ts_sample *o = &b->smp[b->n_smp++];
				o->t_ms = it.t;
				memcpy(&o->v, &it.v, 8);
				got = 0;
			}
			if (got < 0) {
				snprintf(why, sizeof why,
					 "chunk %" PRIu64 " of series %u does not decode",
					 s.chunks[c].ref, ref);
				rc = got;
			}
		}
		if (rc)
			break;
		if (b->n_smp > first) {
			if (ts_grow((void **)&b->ser, &b->cap_ser, b->n_ser + 1, sizeof *b->ser) ||
			    ts_grow((void **)&b->first, &b->cap_first, b->n_ser + 1,
				    sizeof *b->first)) {
				rc = -ENOMEM;
				break;
			}
			/* A batch may hold ~4G samples of one series at most. */
			size_t cnt = b->n_smp - first;
			b->first[b->n_ser] = first;
			b->ser[b->n_ser++] = (struct ts_series_in){ s.labels, s.n_labels, NULL,
								    (uint32_t)cnt };
			/* Labels alias the mapped index and s's array, which the next
			 * series reuses: flush before reading it. */
			rc = batch_flush(db, b, t);
			if (rc)
				snprintf(why, sizeof why, "append: %s", ts_strerror(rc));
		}
		ctl_progress("import: %s: %zu/%zu series, %" PRIu64 " samples", pb->dir, k + 1,
			     ix.n_series, t->appended + t->duplicate);
	}
	if (rc)
		fprintf(stderr, "tsdbctl: block %s: %s\n", pb->dir, why[0] ? why : ts_strerror(rc));
	segs_free(&segs);
	pb_series_fini(&s);
	pb_index_close(&ix);
	ts_free(stones);
	unmap(&tomb);
	unmap(&idx);
	return rc;
}

static int import_prom(struct ts_db *db, const char *from, struct totals *t)
{
	struct pblock *bl;
	size_t n;
	int rc = list_blocks(from, &bl, &n);
	if (rc) {
		fprintf(stderr, "tsdbctl: cannot read blocks in %s: %s\n", from, ts_strerror(rc));
		return EXIT_FAIL;
	}
	if (n == 0) {
		fprintf(stderr,
			"tsdbctl: %s holds no Prometheus block (directories with meta.json)\n",
			from);
		ts_free(bl);
		return EXIT_FAIL;
	}
	if (wal_has_data(from))
		fprintf(stderr,
			"tsdbctl: note: %s/wal is not read: samples only in Prometheus' head are "
			"not imported (take a snapshot with POST /api/v1/admin/tsdb/snapshot and "
			"import that directory to include them)\n",
			from);
	fprintf(stderr, "tsdbctl: importing %zu Prometheus blocks from %s\n", n, from);
	struct batch b = { 0 };
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = import_block(db, &bl[i], &b, t);
	if (rc == 0)
		rc = batch_flush(db, &b, t);
	ctl_progress_done();
	batch_free(&b);
	ts_free(bl);
	if (t->hist_chunks)
		fprintf(stderr,
			"tsdbctl: note: %" PRIu64 " native histogram chunks skipped (tsdbd stores "
			"float samples only)\n",
			t->hist_chunks);
	return rc ? EXIT_FAIL : EXIT_OK;
}

/* ---- JSON lines ---- */

static int import_jsonl(struct ts_db *db, const char *from, struct totals *t, uint64_t *bad)
{
	FILE *f = strcmp(from, "-") ? fopen(from, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "tsdbctl: cannot open %s: %s\n", from, strerror(errno));
		return EXIT_FAIL;
	}
	fprintf(stderr, "tsdbctl: importing JSON lines from %s\n",
		f == stdin ? "standard input" : from);
	size_t cap = 16u << 20, n = 0;
	char *buf = malloc(cap);
	int rc = buf ? 0 : -ENOMEM, eof = 0;
	uint64_t line0 = 0;
	while (rc == 0 && !eof) {
		if (n == cap) {
			/* One line longer than the buffer: grow it (up to 1 GiB). */
			char *x = cap < (1u << 30) ? realloc(buf, cap * 2) : NULL;
			if (!x) {
				fprintf(stderr, "tsdbctl: line %" PRIu64 " is too long\n",
					line0 + 1);
				rc = -ENOMEM;
				break;
			}
			buf = x;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				rc = -EIO;
				break;
			}
			eof = 1;
		}
		/* Whole lines only, unless the input ended. */
		size_t upto = n;
		if (!eof) {
			while (upto && buf[upto - 1] != '\n')
				upto--;
			if (!upto)
				continue;
		}
		struct ts_jsonl_parser p;
		struct ts_jsonl_series s;
		ts_jsonl_init(&p, buf, upto);
		int got;
		while ((got = ts_jsonl_next(&p, &s)) != 0) {
			if (got == TS_EINVALID) {
				if (++*bad <= 10)
					fprintf(stderr, "tsdbctl: line %" PRIu64 "%s\n",
						line0 + p.err_line, strchr(p.err, ':') ?: p.err);
				continue;
			}
			if (got < 0) {
				rc = got;
				break;
			}
			t->samples_read += s.n_samples;
			/* Split lines of more than 2^32 samples (the append's count). */
			for (size_t o = 0; o < s.n_samples && rc == 0; o += UINT32_MAX) {
				size_t k = s.n_samples - o < UINT32_MAX ? s.n_samples - o
									: UINT32_MAX;
				struct ts_series_in in = { s.labels, s.n_labels, s.samples + o,
							   (uint32_t)k };
				struct ts_append_result res;
				int src = 0;
				rc = ts_db_append(db, &in, 1, &res, &src);
				if (rc == 0)
					add_result(t, &res, &in, 1, &src);
			}
			if (rc)
				break;
			ctl_progress("import: %" PRIu64 " lines, %" PRIu64 " samples",
				     line0 + p.line, t->appended + t->duplicate);
		}
		line0 += p.line;
		ts_jsonl_fini(&p);
		memmove(buf, buf + upto, n - upto);
		n -= upto;
	}
	ctl_progress_done();
	free(buf);
	if (f != stdin)
		fclose(f);
	if (rc) {
		fprintf(stderr, "tsdbctl: import from %s stopped: %s\n", from, ts_strerror(rc));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- the command ---- */

static int opt_str(void *dest, const char *name, const char *val)
{
	(void)name;
	*(const char **)dest = val;
	return 0;
}

static int import_main(int argc, char **argv)
{
	const char *dir, *format = "jsonl", *from = NULL;
	const struct ctl_opt opts[] = {
		{ "--format", 0, opt_str, &format },
		{ "--from", 0, opt_str, &from },
		{ 0 },
	};
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex != CTL_RUN)
		return ex;
	int prom = !strcmp(format, "prometheus");
	if (!prom && strcmp(format, "jsonl")) {
		ctl_usage_error("--format is jsonl (default) or prometheus");
		return EXIT_USAGE;
	}
	if (!from || !*from) {
		if (prom) {
			ctl_usage_error("--format prometheus needs --from DIR");
			return EXIT_USAGE;
		}
		from = "-";
	}
	/* A new database where there is none yet; never over something else. */
	char idx[CTL_PATH_MAX];
	struct stat st;
	snprintf(idx, sizeof idx, "%s/" TS_FORMAT_INDEX_DIR "/data.mdb", dir);
	if (stat(idx, &st) != 0 && ctl_dir_empty(dir) != 1) {
		fprintf(stderr,
			"tsdbctl: %s is neither a database nor empty: import writes into a "
			"tsdbd data directory or creates one in an empty directory\n",
			dir);
		return EXIT_NOTDB;
	}
	/* Blocks overlap and every block holds every series again: accept any order. */
	struct ts_db_opts o = { .sync = TS_WAL_SYNC_INTERVAL, .ooo_window_ms = INT64_C(1) << 62 };
	struct ts_db *db;
	int rc = ts_db_open(dir, &o, &db);
	if (rc == TS_EBUSY) {
		fprintf(stderr,
			"tsdbctl: %s is locked: the server is running; stop it, or send "
			"JSON lines to POST /api/v1/import\n",
			dir);
		return EXIT_LOCKED;
	}
	if (rc) {
		fprintf(stderr, "tsdbctl: cannot open %s: %s\n", dir, ts_strerror(rc));
		return rc == TS_EVERSION ? EXIT_NOTDB : EXIT_FAIL;
	}
	struct totals t = { 0 };
	uint64_t bad = 0;
	ex = prom ? import_prom(db, from, &t) : import_jsonl(db, from, &t, &bad);
	/* Closing checkpoints: everything appended is in partitions when it returns. */
	if (ctl_db_close(db, dir) != EXIT_OK)
		ex = EXIT_FAIL;
	fprintf(stderr,
		"tsdbctl: imported %" PRIu64 " samples into %s: %" PRIu64 " stored (%" PRIu64
		" new series), %" PRIu64 " already there, %" PRIu64 " rejected",
		t.samples_read - t.deleted, dir, t.appended, t.new_series, t.duplicate, t.rejected);
	if (t.deleted)
		fprintf(stderr, ", %" PRIu64 " deleted in the blocks (tombstones) left out",
			t.deleted);
	if (bad)
		fprintf(stderr, ", %" PRIu64 " bad lines skipped", bad);
	fputc('\n', stderr);
	if (t.rejected) {
		fprintf(stderr, "tsdbctl: first rejection: %s\n", t.first_msg);
		ex = EXIT_FAIL;
	}
	if (bad)
		ex = EXIT_FAIL;
	return ex;
}

static const char import_help[] =
	"  import    samples into a stopped server's data directory (created if absent or\n"
	"            empty); a second run of the same import stores nothing twice.\n"
	"              --format jsonl     JSON lines as POST /api/v1/import takes (default)\n"
	"              --format prometheus   Prometheus TSDB blocks: a Prometheus data\n"
	"                         directory (its blocks; wal/ is not read) or one block\n"
	"              --from PATH        the file, '-' for stdin (default), or the directory\n";

CTL_COMMAND(import);
