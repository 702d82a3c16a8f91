/*
 * verify.c - `tsdbctl verify`: checks everything a data directory holds but the WAL,
 * read-only and while a server runs. Every problem is one line on stdout,
 * "PROBLEM <where>: <what>", then a summary; the exit code is 1 if there was any.
 * Index formats 1 to 3 are read; what a format added is checked where it lives.
 *
 * This file walks the directory and checks what ties records together; what is wrong
 * with one record by itself is check.c's. In order:
 *   - index meta: a format this version reads, a partition width when partitions exist;
 *   - series, from both sources: the per-series table (keys of 8 bytes) and the group
 *     rows of series_groups (each decompressed and walked, its entries' ids = group *
 *     256 + slot): ids below next_id, labels that parse and are canonical (sorted unique
 *     names, non-empty UTF-8 values, __name__), no two ids with one set. A series in
 *     both sources (format 2 before its first checkpoint) must have the same labels in
 *     each; everything below uses the union;
 *   - postings (format 3: delta blocks, each decoded; formats 1, 2: a u64 per row)
 *     both ways: ids ascend within a key; every listed id exists; each series is under
 *     the all-series key and under the key of each of its labels, and no key lists a series lacking
 *     that label. A first pass compares per series the sum of the hashes of the keys
 *     that list it with the sum its labels call for; only series whose sums differ get
 *     the detailed (slow) passes that name each missing and each extra key;
 *   - head snapshots, from the heads table and the head_groups rows (of known series;
 *     the engine's ts_format_snap_parse, versions 1 and 2, and a full decode of the open
 *     chunk) and metadata rows;
 *   - tombstones: keys of 16 bytes, values of 8, mint <= maxt, the series known;
 *   - every partition, in one snapshot of its env: its range is one partition of the
 *     database's width; every chunk: key in the range, the series known, the record
 *     (header, lengths, flags, CRC32C, count), the engine's own ts_chunk_decode, a full
 *     XOR decode with timestamps non-decreasing and matching the header; the "gens"
 *     row; every cold block of a listed generation: its key (20 bytes, naming the
 *     block's last series and the first timestamp of that series' piece, inside the
 *     range), the block (check.c: header, CRC32C, ts_cold_open, every series decoded),
 *     its samples inside the range, its series known, and its place in its generation
 *     (blocks follow each other by series, then time, without overlap); per generation
 *     the blocks' samples and bytes against the gens row; the "cold" mark only on a
 *     partition without hot chunks and with at most one generation. Blocks of unlisted
 *     generations are the leftovers of an interrupted conversion (or the blocks of one
 *     under way), which the next conversion deletes: counted in a note, not checked
 *     and not a problem. Then the downsampled tiers: every tier block's key (9 bytes,
 *     resolution 1 or 2, naming the block's last series), the block (as a cold block,
 *     then each series by ts_ds_tier_decode, ids ascending, series known), and the meta
 *     "tiers" record's length and version.
 *
 * A live server commits a flush in two steps - chunks into the partition env, then the
 * new series into the index env - so "chunk (or cold block) of an unknown series" is
 * re-checked against a fresh index snapshot before it is reported. The WAL is not
 * checked: opening it would cut a torn tail, which tsdbd does at start-up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdbctl.h"
#include "storage/chunk.h"
#include "storage/cold.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/downsample.h"
#include "tsdb/format.h"
#include "tsdb/labels.h"

#define SERIES_KEY_LEN TS_FORMAT_SERIES_KEY_LEN /* keys of the series and heads tables */
#define GROUP_SERIES TS_FORMAT_GROUP_SERIES

#define VS_ALL 0x1     /* listed under the all-series postings key */
#define VS_BAD 0x2     /* its row does not parse: postings are not compared */
#define VS_SUSPECT 0x4 /* its postings do not add up: looked at in detail */
#define VS_ROW 0x8     /* in the per-series table */
#define VS_GROUP 0x10  /* in a series_groups row */
#define VS_HEAD 0x20   /* a head snapshot was seen */

struct vseries {
	uint64_t id;
	uint64_t hash;	    /* of the packed labels, to find duplicate label sets */
	uint64_t want, got; /* sums of posting-key hashes: expected from labels, seen */
	uint32_t flags;
};

/* The cold table of the partition being read. */
struct vcold {
	struct ctl_gens gens;
	int gens_ok; /* the gens row parsed (or is absent): blocks are sorted by it */
	/* per listed generation: what its blocks hold, and whether one was bad */
	uint64_t *blocks, *samples, *bytes;
	uint8_t *bad;
	/* the last block read of a listed generation, for the order of pieces */
	int have_prev;
	uint32_t prev_gen;
	uint64_t prev_last_id;
	int64_t prev_last_max;
	uint64_t n_leftover, leftover_bytes;
	uint32_t leftover_min, leftover_max;
};

struct verify {
	struct ctl_ro *db;
	uint64_t n_problems;
	int json;		     /* --json: problems kept for one object at the end */
	char **problems;	     /* "where\0what" each, with --json */
	size_t n_kept, cap_problems; /* n_kept <= n_problems: out of memory keeps fewer */
	struct vseries *s;	     /* every series of either source, by id */
	size_t n_series, cap_series;
	uint64_t n_series_rows, n_series_entries, n_series_groups, n_series_both;
	uint64_t n_postings_keys, n_postings, n_heads, n_head_groups, n_heads_both, n_metadata;
	uint64_t n_chunks, n_samples, n_parts_checked;
	uint64_t n_cold_blocks, n_cold_samples, n_leftover;
	uint64_t n_tier_blocks, n_tier_series, n_tombstones;
	unsigned expired;     /* the partition being checked: its "expired" row */
	struct ts_label *lab; /* scratch for unpacking */
	size_t lab_cap;
	uint8_t *copy; /* scratch: a label set kept while another is read */
	size_t copy_cap;
	/* the scan under way */
	struct ts_rtxn *r;	     /* the index snapshot */
	struct ctl_group gc;	     /* the series_groups row of snapshot r last read */
	struct pkey *pk;	     /* postings pass 1: the key being read */
	const struct ctl_part *part; /* the partition whose chunks and blocks are read */
	struct vcold cold;
};

static void problem(struct verify *v, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct verify *v, const char *where, const char *fmt, ...)
{
	ctl_progress_done();
	va_list ap;
	va_start(ap, fmt);
	if (v->json) {
		char what[1024];
		vsnprintf(what, sizeof what, fmt, ap);
		size_t wl = strlen(where), nl = strlen(what);
		char *x = ts_malloc(wl + nl + 2);
		if (x && !ts_grow((void **)&v->problems, &v->cap_problems, v->n_kept + 1,
				  sizeof *v->problems)) {
			memcpy(x, where, wl + 1);
			memcpy(x + wl + 1, what, nl + 1);
			v->problems[v->n_kept++] = x;
		} else {
			ts_free(x);
			/* Out of memory: counted, and said on stderr instead. */
			fprintf(stderr, "PROBLEM %s: %s\n", where, what);
		}
	} else {
		printf("PROBLEM %s: ", where);
		vprintf(fmt, ap);
		putchar('\n');
	}
	va_end(ap);
	v->n_problems++;
}

/* ---- series ---- */

static int vs_id_cmp(const void *key, const void *elem)
{
	uint64_t a = *(const uint64_t *)key, b = ((const struct vseries *)elem)->id;
	return (a > b) - (a < b);
}

/* v->s ascends by id without repeats once verify_series has sorted it and merged the
 * series found in both sources. */
static struct vseries *vs_find(struct verify *v, uint64_t id)
{
	return v->n_series ? bsearch(&id, v->s, v->n_series, sizeof *v->s, vs_id_cmp) : NULL;
}

/* Unpacks a series row into v->lab[0..*n). Returns 0 or a negative error. */
static int unpack(struct verify *v, const void *p, size_t len, uint32_t *n)
{
	int cnt = ts_labels_count(p, len);
	if (cnt < 0)
		return cnt;
	if (ts_grow((void **)&v->lab, &v->lab_cap, (size_t)cnt, sizeof *v->lab))
		return -ENOMEM;
	return ts_labels_unpack(p, len, v->lab, (uint32_t)cnt, n);
}

/* The packed labels of series id in snapshot r: its row in the per-series table, else its
 * entry in series_groups (gc caches that table's rows of r). *p aliases the map or gc,
 * valid until the snapshot ends or gc is used again. Returns 0, TS_ENOTFOUND or an
 * error. */
static int series_bytes(const struct ctl_ro *db, struct ts_rtxn *r, struct ctl_group *gc,
			uint64_t id, const void **p, size_t *len)
{
	uint8_t k[SERIES_KEY_LEN];
	int rc = TS_ENOTFOUND;
	if (db->has_series) {
		ts_format_put_be64(k, id);
		if ((rc = ts_env_get(r, db->t_series, k, sizeof k, p, len)) != TS_ENOTFOUND)
			return rc;
	}
	if (db->has_series_groups) {
		const uint8_t *e;
		uint32_t el;
		if ((rc = ctl_group_find(r, db->t_series_groups, id, gc, &e, &el)) == 0) {
			*p = e;
			*len = el;
		}
	}
	return rc;
}

/* The labels of series id, unpacked into v->lab[0..*n) (aliasing the snapshot or v->gc).
 * Returns 0 or an error. */
static int load_series(struct verify *v, uint64_t id, uint32_t *n)
{
	const void *row;
	size_t rl;
	int rc = series_bytes(v->db, v->r, &v->gc, id, &row, &rl);
	return rc ? rc : unpack(v, row, rl, n);
}

/* The labels of a series for a message: {a="x", b="y"}, cut. */
static void fmt_labels(char *buf, size_t cap, const struct ts_label *l, uint32_t n)
{
	size_t o = 0;
	buf[o++] = '{';
	for (uint32_t i = 0; i < n && o + 64 < cap; i++) {
		char nm[140], val[140];
		ctl_fmt_str(nm, sizeof nm, l[i].name, l[i].name_len, 40);
		ctl_fmt_str(val, sizeof val, l[i].value, l[i].value_len, 40);
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

/* The sum of the hashes of the postings keys that labels v->lab[0..n) call for. */
static uint64_t want_hash(const struct verify *v, uint32_t n)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
		if (v->lab[i].name_len > TS_FORMAT_LABEL_NAME_MAX)
			continue; /* cannot be a postings key; reported as missing later */
		size_t kl = ts_format_posting_key(key, v->lab[i].name, v->lab[i].name_len,
						  v->lab[i].value, v->lab[i].value_len);
		sum += key_hash(key, kl);
	}
	return sum;
}

/* Series id of either source (src VS_ROW or VS_GROUP, packed labels val[0..vl)): checks
 * it and appends it to v->s. Returns 0 or -ENOMEM. */
static int add_series(struct verify *v, uint64_t id, const void *val, size_t vl, uint32_t src,
		      const char *where)
{
	const struct ctl_ro *db = v->db;
	uint32_t n;
	if (v->n_series && (v->n_series & 0xffff) == 0)
		ctl_progress("verify: index series: %zu", v->n_series);
	if (id == 0)
		problem(v, where, "series id 0 is never assigned");
	if (db->has_next_id && id >= db->next_id)
		problem(v, where, "id is not below meta next_id %" PRIu64, db->next_id);
	if (ts_grow((void **)&v->s, &v->cap_series, v->n_series + 1, sizeof *v->s))
		return -ENOMEM;
	struct vseries *s = &v->s[v->n_series++];
	*s = (struct vseries){ .id = id, .hash = ts_labels_hash(val, vl), .flags = src };
	int rc = unpack(v, val, vl, &n);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		problem(v, where, "packed label set does not parse (%zu bytes)", vl);
		s->flags |= VS_BAD;
		return 0;
	}
	const char *why = ctl_labels_problem(v->lab, n);
	if (why) {
		char ls[600];
		fmt_labels(ls, sizeof ls, v->lab, n);
		problem(v, where, "label set %s is not canonical: %s", ls, why);
	}
	s->want = want_hash(v, n);
	return 0;
}

/* One row of the per-series table. Returns 0 or -ENOMEM. */
static int series_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	char where[64];
	v->n_series_rows++;
	if (kl != SERIES_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 16);
		problem(v, "index series", "key \"%s\" is %zu bytes, not %d", ks, kl,
			SERIES_KEY_LEN);
		return 0;
	}
	uint64_t id = ts_format_get_be64(k);
	snprintf(where, sizeof where, "index series %" PRIu64, id);
	return add_series(v, id, val, vl, VS_ROW, where);
}

/* What a group table's entries are checked by: entry of series id, in a row of table. */
typedef int (*group_entry_fn)(struct verify *v, uint64_t id, const uint8_t *e, size_t el,
			      const char *where);

struct group_scan {
	struct verify *v;
	const char *table; /* its name, for messages */
	group_entry_fn entry;
	int check_ids; /* group_row checks entry ids (else entry does) */
	uint64_t n_rows;
};

/* One group row (series_groups or head_groups): its key, the row (check.c), then each
 * entry: its id (group * 256 + slot: not 0, below next_id) and the entry itself. Returns
 * 0 or -ENOMEM. */
static int group_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct group_scan *gs = ctx;
	struct verify *v = gs->v;
	const struct ctl_ro *db = v->db;
	char where[128], why[300];
	struct ts_format_group_it it;
	uint8_t *raw;
	size_t raw_len;
	int rc = 0;
	gs->n_rows++;
	snprintf(where, sizeof where, "index %s", gs->table);
	if (kl != SERIES_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 16);
		problem(v, where, "key \"%s\" is %zu bytes, not %d", ks, kl, SERIES_KEY_LEN);
		return 0;
	}
	uint64_t g = ts_format_get_be64(k);
	snprintf(where, sizeof where, "index %s group %" PRIu64, gs->table, g);
	if (g > (UINT64_MAX - (GROUP_SERIES - 1)) / GROUP_SERIES) {
		problem(v, where, "group number past the last series id");
		return 0;
	}
	const char *w = ctl_group_problem(val, vl, &raw, &raw_len, why, sizeof why);
	if (w) {
		problem(v, where, "%s", w);
		return 0;
	}
	ts_format_group_it_init(&it, raw, raw_len);
	while (rc == 0 && ts_format_group_next(&it) == 1) {
		uint64_t id = g * GROUP_SERIES + it.slot;
		snprintf(where, sizeof where, "index %s series %" PRIu64, gs->table, id);
		if (gs->check_ids && id == 0)
			problem(v, where, "slot 0 of group 0: series id 0 is never assigned");
		else if (gs->check_ids && db->has_next_id && id >= db->next_id)
			problem(v, where, "id is not below meta next_id %" PRIu64, db->next_id);
		rc = gs->entry(v, id, it.entry, it.entry_len, where);
	}
	ts_free(raw);
	return rc;
}

/* An entry of series_groups: as a row of the per-series table. */
static int series_entry(struct verify *v, uint64_t id, const uint8_t *e, size_t el,
			const char *where)
{
	v->n_series_entries++;
	return add_series(v, id, e, el, VS_GROUP, where);
}

static int vs_hash_cmp(const void *a, const void *b)
{
	const struct vseries *x = *(const struct vseries *const *)a;
	const struct vseries *y = *(const struct vseries *const *)b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Two ids with one label set: the registry would hold only one of them. */
static int verify_no_twins(struct verify *v)
{
	struct vseries **by = ts_malloc(v->n_series * sizeof *by);
	char where[64];
	int rc = 0;
	if (!by)
		return -ENOMEM;
	for (size_t i = 0; i < v->n_series; i++)
		by[i] = &v->s[i];
	qsort(by, v->n_series, sizeof *by, vs_hash_cmp);
	for (size_t i = 1; i < v->n_series && rc == 0; i++) {
		const void *a, *b;
		size_t al, bl;
		if (by[i]->hash != by[i - 1]->hash)
			continue;
		/* a may alias v->gc, which reading b replaces: keep a copy */
		if (series_bytes(v->db, v->r, &v->gc, by[i - 1]->id, &a, &al) != 0)
			continue;
		if (ts_grow((void **)&v->copy, &v->copy_cap, al ? al : 1, 1)) {
			rc = -ENOMEM;
			break;
		}
		memcpy(v->copy, a, al);
		if (series_bytes(v->db, v->r, &v->gc, by[i]->id, &b, &bl) == 0 && al == bl &&
		    memcmp(v->copy, b, al) == 0) {
			snprintf(where, sizeof where, "index series %" PRIu64, by[i]->id);
			problem(v, where, "same label set as series %" PRIu64, by[i - 1]->id);
		}
	}
	ts_free(by);
	return rc;
}

/* By id; of one id, the per-series row first. */
static int vs_src_cmp(const void *a, const void *b)
{
	const struct vseries *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return !!(y->flags & VS_ROW) - !!(x->flags & VS_ROW);
}

/* A series in both sources: one entry for it, and a problem when its labels differ. */
static void merge_twin_sources(struct verify *v, struct vseries *keep, const struct vseries *dup)
{
	char where[64], a[600], b[600];
	const void *row;
	const uint8_t *e;
	uint8_t k[SERIES_KEY_LEN];
	size_t rl;
	uint32_t el, n;
	v->n_series_both++;
	keep->flags |= dup->flags & (VS_GROUP | VS_BAD);
	if (keep->hash == dup->hash)
		return;
	snprintf(where, sizeof where, "index series %" PRIu64, keep->id);
	ts_format_put_be64(k, keep->id);
	snprintf(a, sizeof a, "?");
	snprintf(b, sizeof b, "?");
	if (ts_env_get(v->r, v->db->t_series, k, sizeof k, &row, &rl) == 0 &&
	    unpack(v, row, rl, &n) == 0)
		fmt_labels(a, sizeof a, v->lab, n);
	if (ctl_group_find(v->r, v->db->t_series_groups, keep->id, &v->gc, &e, &el) == 0 &&
	    unpack(v, e, el, &n) == 0)
		fmt_labels(b, sizeof b, v->lab, n);
	problem(v, where,
		"in both the series table and series_groups, with different labels: %s in the "
		"series table, %s in series_groups",
		a, b);
}

/* Both sources into v->s, one entry per id, ascending. */
static int verify_series(struct verify *v)
{
	const struct ctl_ro *db = v->db;
	struct group_scan gs = { v, TS_FORMAT_TABLE_SERIES_GROUPS, series_entry, 0, 0 };
	int rc = 0;
	if (db->has_series)
		rc = ctl_scan(v->r, db->t_series, series_row, v);
	if (!rc && db->has_series_groups)
		rc = ctl_scan(v->r, db->t_series_groups, group_row, &gs);
	v->n_series_groups = gs.n_rows;
	if (rc)
		return rc;
	if (v->n_series > 1)
		qsort(v->s, v->n_series, sizeof *v->s, vs_src_cmp);
	size_t o = 0;
	for (size_t i = 0; i < v->n_series; i++) {
		if (o && v->s[o - 1].id == v->s[i].id)
			merge_twin_sources(v, &v->s[o - 1], &v->s[i]);
		else
			v->s[o++] = v->s[i];
	}
	v->n_series = o;
	return v->n_series > 1 ? verify_no_twins(v) : 0;
}

/* ---- postings ---- */

/* Whether k is the key that lists every series. */
static int is_all_key(const void *k, size_t kl)
{
	return kl == TS_FORMAT_POSTING_ALL_LEN &&
	       memcmp(k, TS_FORMAT_POSTING_ALL, TS_FORMAT_POSTING_ALL_LEN) == 0;
}

static void fmt_posting_key(char *buf, size_t cap, const uint8_t *k, size_t kl)
{
	const uint8_t *z = memchr(k, 0, kl);
	if (is_all_key(k, kl)) {
		snprintf(buf, cap, "(all series)");
		return;
	}
	if (!z) {
		ctl_fmt_str(buf, cap, k, kl, 80);
		return;
	}
	char n[300], val[300];
	ctl_fmt_str(n, sizeof n, k, (size_t)(z - k), 80);
	ctl_fmt_str(val, sizeof val, z + 1, kl - (size_t)(z - k) - 1, 80);
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
		uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
		if (v->lab[i].name_len > TS_FORMAT_LABEL_NAME_MAX)
			continue;
		size_t pkl = ts_format_posting_key(key, v->lab[i].name, v->lab[i].name_len,
						   v->lab[i].value, v->lab[i].value_len);
		if (pkl == kl && memcmp(key, k, kl) == 0)
			return 1;
	}
	return 0;
}

/* The postings key pass 1 is reading. */
struct pkey {
	uint8_t k[TS_FORMAT_POSTING_KEY_MAX + 1];
	size_t len;
	int have, ok, is_all;
	uint64_t hash;
	uint64_t last_id; /* the key's largest id so far (ids ascend within a key) */
	char where[700], ks[600];
	uint64_t ids[CTL_POSTINGS_ROW_IDS]; /* the ids of the row being read */
};

/* Pass 1 meets a new key: checks its form. */
static void postings_new_key(struct verify *v, struct pkey *pk, const void *k, size_t kl)
{
	if (kl > TS_FORMAT_POSTING_KEY_MAX) {
		ctl_fmt_str(pk->ks, sizeof pk->ks, k, kl, 80);
		problem(v, "index postings", "key \"%s\" is %zu bytes, over %d", pk->ks, kl,
			TS_FORMAT_POSTING_KEY_MAX);
		kl = TS_FORMAT_POSTING_KEY_MAX;
	}
	memcpy(pk->k, k, kl);
	pk->len = kl;
	pk->have = 1;
	pk->last_id = 0; /* ids start at 1 */
	v->n_postings_keys++;
	const uint8_t *z = memchr(pk->k, 0, kl);
	pk->is_all = is_all_key(pk->k, kl);
	fmt_posting_key(pk->ks, sizeof pk->ks, pk->k, kl);
	snprintf(pk->where, sizeof pk->where, "index postings %s", pk->ks);
	pk->ok = 1;
	if (!pk->is_all && (!z || z == pk->k)) {
		problem(v, pk->where, "key has %s",
			z ? "an empty label name" : "no 0x00 between name and value");
		pk->ok = 0;
	} else if (!pk->is_all && kl - (size_t)(z - pk->k) - 1 == 0) {
		problem(v, pk->where, "key has an empty label value");
		pk->ok = 0;
	} else if (!pk->is_all && kl - (size_t)(z - pk->k) - 1 > TS_FORMAT_POSTING_VALUE_MAX) {
		problem(v, pk->where, "value longer than %d bytes", TS_FORMAT_POSTING_VALUE_MAX);
	}
	pk->hash = key_hash(pk->k, kl);
}

/* Pass 1, one id of the key pk. */
static void pass1_id(struct verify *v, struct pkey *pk, uint64_t id)
{
	v->n_postings++;
	if (id <= pk->last_id) {
		problem(v, pk->where, "lists series %" PRIu64 " after series %" PRIu64, id,
			pk->last_id);
		return; /* counted once already, or out of order: either way not again */
	}
	pk->last_id = id;
	struct vseries *s = vs_find(v, id);
	if (!s) {
		problem(v, pk->where,
			"lists series %" PRIu64 ", which is not a series of the index", id);
		return;
	}
	if (pk->is_all)
		s->flags |= VS_ALL;
	else if (pk->ok)
		s->got += pk->hash;
	if ((v->n_postings & 0xfffff) == 0)
		ctl_progress("verify: index postings: %" PRIu64, v->n_postings);
}

/* Pass 1 (all series): postings rows decode (one u64, or a delta block of format 3),
 * ids ascend within a key and are existing series; per series the keys seen add up (as
 * a sum of key hashes) to the keys its labels call for. */
static int pass1_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	struct pkey *pk = v->pk;
	size_t n;
	if (!pk->have || kl != pk->len || memcmp(k, pk->k, kl) != 0)
		postings_new_key(v, pk, k, kl);
	const char *why = ctl_postings_row_ids(v->db, val, vl, pk->ids, CTL_POSTINGS_ROW_IDS, &n);
	if (why) {
		v->n_postings++;
		problem(v, pk->where, "row of %zu bytes: %s", vl, why);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		pass1_id(v, pk, pk->ids[i]);
	return 0;
}

/* Pass 2, one series whose sums differ: names each of its labels' keys that does not
 * list it. *ids, *cap_ids: scratch. */
static int series_missing_keys(struct verify *v, const struct vseries *s, const char *where,
			       uint64_t **ids, size_t *cap_ids)
{
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
	char ks[600];
	uint32_t n;
	int rc = load_series(v, s->id, &n);
	for (uint32_t j = 0; rc == 0 && j < n; j++) {
		size_t n_ids = 0, lo = 0, hi;
		if (v->lab[j].name_len > TS_FORMAT_LABEL_NAME_MAX) {
			problem(v, where, "label name of %u bytes cannot have a postings key",
				v->lab[j].name_len);
			continue;
		}
		size_t pkl = ts_format_posting_key(key, v->lab[j].name, v->lab[j].name_len,
						   v->lab[j].value, v->lab[j].value_len);
		rc = ts_env_get_u64s(v->r, v->db->t_postings, key, pkl, ids, &n_ids, cap_ids);
		if (rc == TS_ECORRUPT) { /* a bad row, which pass 1 reported */
			fmt_posting_key(ks, sizeof ks, key, pkl);
			problem(v, where, "postings key %s does not decode", ks);
			rc = 0;
			continue;
		}
		if (rc)
			break;
		for (hi = n_ids; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;
			if ((*ids)[mid] < s->id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == n_ids || (*ids)[lo] != s->id) {
			fmt_posting_key(ks, sizeof ks, key, pkl);
			problem(v, where, "missing from postings key %s", ks);
		}
	}
	return rc;
}

/* Pass 2 (series whose sums differ, marked VS_SUSPECT): each key one should be under but
 * is not. Sets *any when there is such a series. */
static int postings_pass2(struct verify *v, int *any)
{
	uint64_t *ids = NULL;
	size_t cap_ids = 0;
	char where[64];
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < v->n_series; i++) {
		struct vseries *s = &v->s[i];
		if (s->flags & VS_BAD)
			continue;
		snprintf(where, sizeof where, "index series %" PRIu64, s->id);
		if (!(s->flags & VS_ALL))
			problem(v, where, "missing from the all-series postings key");
		if (s->want == s->got)
			continue;
		s->flags |= VS_SUSPECT;
		*any = 1;
		rc = series_missing_keys(v, s, where, &ids, &cap_ids);
	}
	ts_free(ids);
	return rc;
}

/* Pass 3 (only with suspects): each key that lists a suspect lacking its label. */
static int pass3_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	char where[700], ks[600];
	uint64_t ids[CTL_POSTINGS_ROW_IDS];
	size_t n_ids;
	uint32_t n;
	if (is_all_key(k, kl) ||
	    ctl_postings_row_ids(v->db, val, vl, ids, CTL_POSTINGS_ROW_IDS, &n_ids))
		return 0; /* pass 1 reported the row */
	for (size_t i = 0; i < n_ids; i++) {
		struct vseries *s = vs_find(v, ids[i]);
		if (!s || !(s->flags & VS_SUSPECT) || load_series(v, s->id, &n))
			continue;
		if (!labels_have_key(v, n, k, kl)) {
			fmt_posting_key(ks, sizeof ks, k, kl);
			snprintf(where, sizeof where, "index postings %s", ks);
			problem(v, where,
				"lists series %" PRIu64 ", which does not have that label", ids[i]);
		}
	}
	return 0;
}

static int verify_postings(struct verify *v)
{
	int any = 0, rc;
	if (!(v->pk = ts_calloc(1, sizeof *v->pk)))
		return -ENOMEM;
	rc = ctl_scan(v->r, v->db->t_postings, pass1_row, v);
	ts_free(v->pk);
	v->pk = NULL;
	if (!rc)
		rc = postings_pass2(v, &any);
	if (!rc && any)
		rc = ctl_scan(v->r, v->db->t_postings, pass3_row, v);
	return rc;
}

/* ---- head snapshots and metadata ---- */

/* A head snapshot of series id, from either source. */
static int head_entry(struct verify *v, uint64_t id, const uint8_t *e, size_t el, const char *where)
{
	char why[300];
	struct vseries *s = vs_find(v, id);
	v->n_heads++;
	if (!s) {
		problem(v, where, "snapshot of a series that is not a series of the index");
	} else {
		v->n_heads_both += (s->flags & VS_HEAD) != 0;
		s->flags |= VS_HEAD;
	}
	const char *w = ctl_snapshot_problem(e, el, why, sizeof why);
	if (w)
		problem(v, where, "snapshot does not parse: %s", w);
	return 0;
}

static int head_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	char where[400];
	if (kl != SERIES_KEY_LEN) {
		v->n_heads++;
		problem(v, "index heads", "key of %zu bytes, not %d", kl, SERIES_KEY_LEN);
		return 0;
	}
	uint64_t id = ts_format_get_be64(k);
	snprintf(where, sizeof where, "index heads series %" PRIu64, id);
	return head_entry(v, id, val, vl, where);
}

static int metadata_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	char where[400], ks[300], why[80];
	const char *w;
	v->n_metadata++;
	ctl_fmt_str(ks, sizeof ks, k, kl, 80);
	snprintf(where, sizeof where, "index metadata \"%s\"", ks);
	if (kl == 0)
		problem(v, where, "value of %zu bytes does not parse", vl);
	else if ((w = ctl_metadata_problem(val, vl, why, sizeof why)))
		problem(v, where, "%s", w);
	return 0;
}

/* ---- partitions ---- */

/* Is series id in the index now? (chunks and cold blocks are committed before their
 * series' index entry, so a live server can show one whose series our snapshot lacks) */
static int series_exists_now(struct verify *v, uint64_t id)
{
	struct ts_rtxn *r;
	struct ctl_group gc = { 0 };
	const void *val;
	size_t vl;
	if (ts_env_read_begin(v->db->index, &r))
		return 0;
	int found = series_bytes(v->db, r, &gc, id, &val, &vl) == 0;
	ctl_group_fini(&gc);
	ts_env_read_end(r);
	return found;
}

/* Is series id known, in the snapshot verified or now? */
static int series_known(struct verify *v, uint64_t id)
{
	return vs_find(v, id) || series_exists_now(v, id);
}

/* A chunk record whose key is fine (cw says where it is): the record, the engine's own
 * decoder, the header against the key and the partition, the payload. */
static void verify_record(struct verify *v, const char *cw, int64_t kmin, const uint8_t *rec,
			  size_t len)
{
	struct ts_chunk_hdr h;
	const uint8_t *payload;
	char why[300];
	const char *w = ctl_record_problem(rec, len, why, sizeof why);
	if (w) {
		problem(v, cw, "%s", w);
		return;
	}
	int rc = ts_chunk_decode(rec, len, &h, &payload);
	if (rc) {
		problem(v, cw, "record rejected by the engine's decoder: %s", ts_strerror(rc));
		return;
	}
	if (h.min_t != kmin)
		problem(v, cw, "header min_t %" PRId64 " differs from the key's", h.min_t);
	if (h.max_t >= v->part->end)
		problem(v, cw, "max_t %" PRId64 " past the partition's end", h.max_t);
	w = ctl_xor_problem(payload, h.payload_len, h.n_samples, h.min_t, h.max_t, 1, why,
			    sizeof why);
	if (w)
		problem(v, cw, "%s", w);
	v->n_samples += h.n_samples;
}

/* One chunk of partition v->part: its key, then its record. */
static int chunk_row(void *ctx, const void *k, size_t kl, const void *rec, size_t len)
{
	struct verify *v = ctx;
	const struct ctl_part *p = v->part;
	char cw[512], t1[48];
	uint64_t id;
	int64_t kmin;
	if ((++v->n_chunks & 0x3fff) == 0)
		ctl_progress("verify: raw/%s: %" PRIu64 " chunks", p->name, v->n_chunks);
	if (kl != TS_CHUNK_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 24);
		snprintf(cw, sizeof cw, "raw/%s", p->name);
		problem(v, cw, "chunk key \"%s\" is %zu bytes, not %d", ks, kl, TS_CHUNK_KEY_LEN);
		return 0;
	}
	ts_chunk_key_parse(k, kl, &id, &kmin);
	ctl_fmt_time(t1, sizeof t1, kmin);
	snprintf(cw, sizeof cw, "raw/%s chunk (series %" PRIu64 ", min_t %" PRId64 " %s)", p->name,
		 id, kmin, t1);
	if (kmin < p->start || kmin >= p->end)
		problem(v, cw, "min_t outside the partition's range");
	if (!series_known(v, id))
		problem(v, cw, "series %" PRIu64 " is not a series of the index", id);
	verify_record(v, cw, kmin, rec, len);
	return 0;
}

static void verify_chunks(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
			  const char *where)
{
	struct ts_cursor *c = NULL;
	int rc;
	if ((rc = ts_cursor_open(r, pe->chunks, &c)))
		problem(v, where, "cannot read the chunks: %s", ts_strerror(rc));
	else if ((rc = ctl_scan_cursor(c, chunk_row, v)) != 0)
		problem(v, where, "chunks: cursor stopped: %s", ts_strerror(rc));
	ts_cursor_close(c);
}

/* ---- cold data ---- */

/* A block of a listed generation follows the previous one of its generation: by series,
 * then, for a series split between them, by time. */
static void cold_order(struct verify *v, const char *cw, uint32_t gen,
		       const struct ts_cold_block *b)
{
	struct vcold *c = &v->cold;
	size_t ns = ts_cold_nseries(b);
	uint64_t first, last;
	int64_t first_min, last_max;
	ts_cold_series(b, 0, &first, NULL, &first_min, NULL);
	ts_cold_series(b, ns - 1, &last, NULL, NULL, &last_max);
	if (c->have_prev && c->prev_gen == gen &&
	    (first < c->prev_last_id ||
	     (first == c->prev_last_id && first_min <= c->prev_last_max)))
		problem(v, cw,
			"overlaps the previous block of its generation (that one ends with "
			"series %" PRIu64 " at %" PRId64 ", this one starts with series %" PRIu64
			" at %" PRId64 ")",
			c->prev_last_id, c->prev_last_max, first, first_min);
	c->have_prev = 1;
	c->prev_gen = gen;
	c->prev_last_id = last;
	c->prev_last_max = last_max;
}

/* An opened block against its key and its partition; its series known. */
static void cold_block_fits(struct verify *v, const char *cw, uint64_t kid, int64_t kmin,
			    const struct ts_cold_block *b)
{
	const struct ctl_part *p = v->part;
	struct ts_cold_info h;
	size_t ns = ts_cold_nseries(b);
	int64_t last_min;
	ts_cold_block_info(b, &h);
	ts_cold_series(b, ns - 1, NULL, NULL, &last_min, NULL);
	if (kid != h.last_id)
		problem(v, cw,
			"the key names series %" PRIu64 ", the block ends with series %" PRIu64,
			kid, h.last_id);
	else if (kmin != last_min)
		problem(v, cw,
			"the key's min_t differs from the first timestamp of its series in the "
			"block (%" PRId64 ")",
			last_min);
	if (h.min_t < p->start || h.max_t >= p->end)
		problem(v, cw,
			"samples span %" PRId64 "..%" PRId64 ", outside the partition's range",
			h.min_t, h.max_t);
	for (size_t i = 0; i < ns; i++) {
		uint64_t id;
		ts_cold_series(b, i, &id, NULL, NULL, NULL);
		if (!series_known(v, id))
			problem(v, cw, "series %" PRIu64 " is not a series of the index", id);
	}
}

/* One entry of the cold table: its key, then (for a listed generation) the block. */
static int cold_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	struct vcold *c = &v->cold;
	const struct ctl_part *p = v->part;
	char cw[512], t1[48], why[300];
	struct ts_cold_block *b;
	uint32_t gen;
	uint64_t kid;
	int64_t kmin;
	if (kl != TS_FORMAT_COLD_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 24);
		snprintf(cw, sizeof cw, "raw/%s", p->name);
		problem(v, cw, "cold key \"%s\" is %zu bytes, not %d", ks, kl,
			TS_FORMAT_COLD_KEY_LEN);
		return 0;
	}
	ctl_cold_key_parse(k, &gen, &kid, &kmin);
	long gi = c->gens_ok ? ctl_gens_find(&c->gens, gen) : -1;
	if (c->gens_ok && gi < 0) {
		c->leftover_min = c->n_leftover && c->leftover_min < gen ? c->leftover_min : gen;
		c->leftover_max = c->n_leftover && c->leftover_max > gen ? c->leftover_max : gen;
		c->n_leftover++;
		c->leftover_bytes += vl;
		return 0;
	}
	if ((++v->n_cold_blocks & 0x3ff) == 0)
		ctl_progress("verify: raw/%s: %" PRIu64 " cold blocks", p->name, v->n_cold_blocks);
	ctl_fmt_time(t1, sizeof t1, kmin);
	snprintf(cw, sizeof cw,
		 "raw/%s cold block (generation %" PRIu32 ", series %" PRIu64 ", min_t %" PRId64
		 " %s)",
		 p->name, gen, kid, kmin, t1);
	if (kmin < p->start || kmin >= p->end)
		problem(v, cw, "min_t outside the partition's range");
	const char *w = ctl_cold_problem(val, vl, &b, why, sizeof why);
	if (w) {
		problem(v, cw, "%s", w);
		c->have_prev = 0;
		if (gi >= 0)
			c->bad[gi] = 1; /* its totals cannot be compared */
		return 0;
	}
	cold_block_fits(v, cw, kid, kmin, b);
	cold_order(v, cw, gen, b);
	struct ts_cold_info h;
	ts_cold_block_info(b, &h);
	v->n_cold_samples += h.n_samples;
	if (gi >= 0) {
		c->blocks[gi]++;
		c->samples[gi] += h.n_samples;
		c->bytes[gi] += vl;
	}
	ts_cold_free(b);
	return 0;
}

/* Reads the gens row into v->cold (gens_ok: it parsed, or there is none). */
static void cold_gens(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
		      const char *where)
{
	struct vcold *c = &v->cold;
	char why[300];
	const void *val;
	size_t vl;
	const char *key = TS_FORMAT_PART_META_GENS;
	int rc = ctl_gens_read(r, pe, &c->gens);
	if (rc == TS_ECORRUPT && ts_env_get(r, pe->meta, key, strlen(key), &val, &vl) == 0)
		problem(v, where, "meta \"gens\" row: %s",
			ctl_gens_problem(val, vl, why, sizeof why));
	else if (rc)
		problem(v, where, "cannot read the meta \"gens\" row: %s", ts_strerror(rc));
	c->gens_ok = rc == 0;
	size_t n = c->gens.n ? c->gens.n : 1;
	c->blocks = ts_calloc(n, sizeof *c->blocks);
	c->samples = ts_calloc(n, sizeof *c->samples);
	c->bytes = ts_calloc(n, sizeof *c->bytes);
	c->bad = ts_calloc(n, sizeof *c->bad);
	if (!c->blocks || !c->samples || !c->bytes || !c->bad) {
		problem(v, where, "cannot check the cold data: %s", ts_strerror(-ENOMEM));
		c->gens_ok = 0;
	}
}

/* The "expired" row (format.h): one byte of known bits; what retention deleted. */
static void verify_expired(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
			   const char *where)
{
	const char *key = TS_FORMAT_PART_META_EXPIRED;
	const unsigned known = TS_FORMAT_EXPIRED_RAW | TS_FORMAT_EXPIRED_5M | TS_FORMAT_EXPIRED_1H;
	const void *val;
	size_t vl;
	v->expired = 0;
	int rc = ts_env_get(r, pe->meta, key, strlen(key), &val, &vl);
	if (rc == TS_ENOTFOUND)
		return;
	if (rc)
		problem(v, where, "cannot read the meta \"expired\" row: %s", ts_strerror(rc));
	else if (vl != 1 || (*(const uint8_t *)val & ~known))
		problem(v, where, "meta \"expired\" row is not one byte of known bits");
	else
		v->expired = *(const uint8_t *)val;
}

/* Per listed generation, its blocks against the gens row. */
static void cold_totals(struct verify *v, const char *where)
{
	const struct vcold *c = &v->cold;
	for (size_t i = 0; c->gens_ok && i < c->gens.n; i++) {
		const struct ctl_gen *g = &c->gens.v[i];
		if (v->expired & TS_FORMAT_EXPIRED_RAW) {
			/* Retention deleted the raw samples; the row stays for the tiers. */
			if (c->blocks[i])
				problem(v, where,
					"raw samples deleted by retention, yet %" PRIu64
					" blocks of generation %" PRIu32 " are left",
					c->blocks[i], g->gen);
			continue;
		}
		if (c->bad[i] || (c->samples[i] == g->samples && c->bytes[i] == g->bytes))
			continue;
		problem(v, where,
			"meta \"gens\" row: generation %" PRIu32 " (level %" PRIu32
			") says %" PRIu64 " samples in %" PRIu64 " bytes; its %" PRIu64
			" block%s hold%s %" PRIu64 " samples in %" PRIu64 " bytes",
			g->gen, g->level, g->samples, g->bytes, c->blocks[i],
			c->blocks[i] == 1 ? "" : "s", c->blocks[i] == 1 ? "s" : "", c->samples[i],
			c->bytes[i]);
	}
	if (c->n_leftover) {
		char gens[64];
		ctl_progress_done();
		if (c->leftover_min == c->leftover_max)
			snprintf(gens, sizeof gens, "generation %" PRIu32, c->leftover_min);
		else
			snprintf(gens, sizeof gens, "generations %" PRIu32 "..%" PRIu32,
				 c->leftover_min, c->leftover_max);
		printf("note: %s: %" PRIu64 " unlisted (leftover) blocks of %s, %" PRIu64
		       " bytes: a conversion's that was interrupted (or is still running), "
		       "deleted by the next one\n",
		       where, c->n_leftover, gens, c->leftover_bytes);
	}
}

/* The "cold" mark: one byte 1, and only on a partition all in one generation. */
static void cold_mark(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
		      const char *where, uint64_t n_chunks)
{
	const char *key = TS_FORMAT_PART_META_COLD;
	const void *val;
	size_t vl;
	if (!pe->has_meta || ts_env_get(r, pe->meta, key, strlen(key), &val, &vl) != 0)
		return;
	if (vl != 1 || *(const uint8_t *)val != 1)
		problem(v, where, "meta \"cold\" row of %zu bytes is not the one byte 1", vl);
	if (n_chunks)
		problem(v, where, "marked cold (meta \"cold\") but holds %" PRIu64 " hot chunks",
			n_chunks);
	if (v->cold.gens_ok && v->cold.gens.n > 1)
		problem(v, where, "marked cold (meta \"cold\") but lists %zu generations",
			v->cold.gens.n);
}

static void verify_cold(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
			const char *where, uint64_t n_chunks)
{
	struct vcold *c = &v->cold;
	struct ts_cursor *cur = NULL;
	int rc;
	memset(c, 0, sizeof *c);
	cold_gens(v, r, pe, where);
	if (pe->has_cold) {
		if ((rc = ts_cursor_open(r, pe->cold, &cur)))
			problem(v, where, "cannot read the cold blocks: %s", ts_strerror(rc));
		else if ((rc = ctl_scan_cursor(cur, cold_row, v)) != 0)
			problem(v, where, "cold blocks: cursor stopped: %s", ts_strerror(rc));
		ts_cursor_close(cur);
	}
	cold_totals(v, where);
	cold_mark(v, r, pe, where, n_chunks);
	v->n_leftover += c->n_leftover;
	ctl_gens_free(&c->gens);
	ts_free(c->blocks);
	ts_free(c->samples);
	ts_free(c->bytes);
	ts_free(c->bad);
	memset(c, 0, sizeof *c);
}

/* ---- downsampled tiers ---- */

/* One tier block: its key (resolution, last series), the block (check.c's cold block
 * checks), then as a tier block: whole series of 7 pseudo-series, each decoded, ids
 * ascending, the last one the key's, every series known. */
static int tier_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	const struct ctl_part *p = v->part;
	char tw[512], why[300];
	struct ts_cold_block *b;
	const uint8_t *kb = k;
	v->n_tier_blocks++;
	if (kl != TS_FORMAT_TIER_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 24);
		snprintf(tw, sizeof tw, "raw/%s", p->name);
		problem(v, tw, "tier key \"%s\" is %zu bytes, not %d", ks, kl,
			TS_FORMAT_TIER_KEY_LEN);
		return 0;
	}
	uint64_t kid = ts_format_get_be64(kb + 1);
	snprintf(tw, sizeof tw, "raw/%s tier block (resolution %u, series %" PRIu64 ")", p->name,
		 kb[0], kid);
	if (kb[0] != TS_FORMAT_TIER_RES_5M && kb[0] != TS_FORMAT_TIER_RES_1H)
		problem(v, tw, "resolution %u is neither 1 (5m) nor 2 (1h)", kb[0]);
	const char *w = ctl_cold_problem(val, vl, &b, why, sizeof why);
	if (w) {
		problem(v, tw, "%s", w);
		return 0;
	}
	size_t ns = ts_cold_nseries(b), n = ns / TS_DS_N_KINDS;
	struct ts_ds_row *rows = NULL;
	size_t rows_cap = 0;
	uint64_t prev = 0;
	if (ns % TS_DS_N_KINDS)
		problem(v, tw, "%zu pseudo-series, not a multiple of %d", ns, TS_DS_N_KINDS);
	for (size_t i = 0; i < n; i++) {
		uint64_t id;
		size_t n_rows;
		struct ts_ds_agg agg;
		int rc = ts_ds_tier_id(b, i, &id, &n_rows);
		if (rc) {
			problem(v, tw, "series %zu of the block: %s", i, ts_strerror(rc));
			break;
		}
		if (i && id <= prev)
			problem(v, tw,
				"series %" PRIu64 " follows series %" PRIu64 " (not ascending)", id,
				prev);
		prev = id;
		v->n_tier_series++;
		if (ts_grow((void **)&rows, &rows_cap, n_rows ? n_rows : 1, sizeof *rows)) {
			problem(v, tw, "cannot decode: %s", ts_strerror(-ENOMEM));
			break;
		}
		if ((rc = ts_ds_tier_decode(b, id, rows, rows_cap, &agg)) != 0)
			problem(v, tw, "series %" PRIu64 " does not decode: %s", id,
				ts_strerror(rc));
		if (!series_known(v, id))
			problem(v, tw, "series %" PRIu64 " is not a series of the index", id);
	}
	if (n && prev != kid)
		problem(v, tw,
			"the key names series %" PRIu64 ", the block ends with series %" PRIu64,
			kid, prev);
	ts_free(rows);
	ts_cold_free(b);
	return 0;
}

/* The "tiers" table of a partition, and its meta "tiers" record's length and version. */
static void verify_tiers(struct verify *v, struct ts_rtxn *r, struct ctl_part_env *pe,
			 const char *where)
{
	const char *key = TS_FORMAT_PART_META_TIERS;
	struct ts_cursor *c = NULL;
	const void *val;
	size_t vl;
	int rc;
	if (pe->has_meta && ts_env_get(r, pe->meta, key, strlen(key), &val, &vl) == 0) {
		if (vl != TS_FORMAT_TIERS_REC_LEN)
			problem(v, where, "meta \"tiers\" record is %zu bytes, not %d", vl,
				TS_FORMAT_TIERS_REC_LEN);
		else if (*(const uint8_t *)val != TS_FORMAT_TIERS_REC_VERSION)
			problem(v, where, "meta \"tiers\" record of version %u, not %d",
				*(const uint8_t *)val, TS_FORMAT_TIERS_REC_VERSION);
	}
	if (!pe->has_tiers)
		return;
	if ((rc = ts_cursor_open(r, pe->tiers, &c)))
		problem(v, where, "cannot read the tier blocks: %s", ts_strerror(rc));
	else if ((rc = ctl_scan_cursor(c, tier_row, v)) != 0)
		problem(v, where, "tier blocks: cursor stopped: %s", ts_strerror(rc));
	ts_cursor_close(c);
}

/* A partition, in one snapshot of its env: the chunks, then the cold data that the same
 * conversion may have moved them into. */
static void verify_part(struct verify *v, const struct ctl_part *p)
{
	const struct ctl_ro *db = v->db;
	struct ctl_part_env pe;
	struct ts_rtxn *r;
	char where[400];
	snprintf(where, sizeof where, "raw/%s", p->name);
	int64_t width = db->partition_ms ? db->partition_ms : TS_FORMAT_PARTITION_MS_DEFAULT;
	if (db->partition_ms && (p->end - p->start != width || p->start % width != 0))
		problem(v, where,
			"range is not one partition of the database's width (%" PRId64 " ms)",
			width);
	int rc = ctl_part_open(db, p, &pe);
	if (rc == TS_ENOTFOUND) {
		printf("note: %s was removed while verifying (retention or compaction)\n", where);
		return;
	}
	if (rc) {
		problem(v, where, "cannot open the partition env: %s", ts_strerror(rc));
		return;
	}
	v->n_parts_checked++;
	v->part = p;
	if ((rc = ts_env_read_begin(pe.env, &r)) != 0) {
		problem(v, where, "cannot read: %s", ts_strerror(rc));
	} else {
		uint64_t chunks_before = v->n_chunks;
		verify_expired(v, r, &pe, where);
		if (pe.has_chunks)
			verify_chunks(v, r, &pe, where);
		verify_cold(v, r, &pe, where, v->n_chunks - chunks_before);
		verify_tiers(v, r, &pe, where);
		ts_env_read_end(r);
	}
	ctl_part_close(&pe);
}

/* ---- tombstones ---- */

/* One row of the index's tombstones table: key (series id BE, mint sign-flipped BE),
 * value (maxt), the range, the series known. */
static int tomb_row(void *ctx, const void *k, size_t kl, const void *val, size_t vl)
{
	struct verify *v = ctx;
	char where[128];
	v->n_tombstones++;
	if (kl != TS_FORMAT_TOMB_KEY_LEN) {
		char ks[80];
		ctl_fmt_str(ks, sizeof ks, k, kl, 24);
		problem(v, "index tombstones", "key \"%s\" is %zu bytes, not %d", ks, kl,
			TS_FORMAT_TOMB_KEY_LEN);
		return 0;
	}
	uint64_t id;
	int64_t mint;
	ts_chunk_key_parse(k, kl, &id, &mint); /* the length was checked: cannot fail */
	snprintf(where, sizeof where, "index tombstones (series %" PRIu64 ", mint %" PRId64 ")", id,
		 mint);
	if (vl != TS_FORMAT_TOMB_VAL_LEN)
		problem(v, where, "value is %zu bytes, not %d", vl, TS_FORMAT_TOMB_VAL_LEN);
	else if ((int64_t)ts_format_get_le64(val) < mint)
		problem(v, where, "maxt %" PRId64 " is before mint",
			(int64_t)ts_format_get_le64(val));
	if (!vs_find(v, id))
		problem(v, where, "series %" PRIu64 " is not a series of the index", id);
	return 0;
}

/* ---- the command ---- */

static void verify_meta(struct verify *v)
{
	const struct ctl_ro *db = v->db;
	if (db->format == 0 && db->has_next_id)
		problem(v, "index meta", "\"format\" is missing");
	else if (db->format &&
		 (db->format < TS_FORMAT_INDEX_VERSION_MIN || db->format > TS_FORMAT_INDEX_VERSION))
		problem(v, "index meta",
			"format %" PRIu32 " is not one this version reads (%d to %d)", db->format,
			TS_FORMAT_INDEX_VERSION_MIN, TS_FORMAT_INDEX_VERSION);
	if (db->partition_ms < 0 || (db->partition_ms == 0 && db->parts.n))
		problem(v, "index meta", "partition_ms is %s",
			db->partition_ms ? "negative" : "missing while partitions exist");
	if (db->parts.n_other)
		printf("note: %zu unexpected entries in raw/ ignored\n", db->parts.n_other);
}

/* What ties the two sources of series and of heads together. */
static void verify_sources(struct verify *v)
{
	const struct ctl_ro *db = v->db;
	if (db->format == 1 && v->n_series_groups + v->n_head_groups)
		problem(v, "index meta",
			"format 1, but %" PRIu64 " group rows of format 2 exist (a format-1 "
			"reader would not see them)",
			v->n_series_groups + v->n_head_groups);
	ctl_progress_done();
	if (v->n_series_both)
		printf("note: %" PRIu64 " series are in both the series table and series_groups "
		       "(format 2 before its first checkpoint)\n",
		       v->n_series_both);
	if (v->n_heads_both)
		printf("note: %" PRIu64 " series have a snapshot in both the heads table and "
		       "head_groups\n",
		       v->n_heads_both);
}

static int verify_index(struct verify *v)
{
	const struct ctl_ro *db = v->db;
	struct group_scan heads = { v, TS_FORMAT_TABLE_HEAD_GROUPS, head_entry, 1, 0 };
	int rc = ts_env_read_begin(db->index, &v->r);
	if (rc)
		return rc;
	ctl_progress("verify: index series");
	rc = verify_series(v);
	if (!rc) {
		ctl_progress("verify: index postings");
		rc = verify_postings(v);
	}
	if (!rc && db->has_heads)
		rc = ctl_scan(v->r, db->t_heads, head_row, v);
	if (!rc && db->has_head_groups)
		rc = ctl_scan(v->r, db->t_head_groups, group_row, &heads);
	v->n_head_groups = heads.n_rows;
	if (!rc && db->has_metadata)
		rc = ctl_scan(v->r, db->t_metadata, metadata_row, v);
	if (!rc && db->has_tombstones)
		rc = ctl_scan(v->r, db->t_tombstones, tomb_row, v);
	if (!rc)
		verify_sources(v);
	ctl_group_fini(&v->gc);
	ts_env_read_end(v->r);
	v->r = NULL;
	return rc;
}

static void print_summary(const struct verify *v, const char *dir)
{
	printf("verified %s: %zu series (%" PRIu64 " rows, %" PRIu64 " group entries), %" PRIu64
	       " postings keys (%" PRIu64 " entries), %" PRIu64 " head snapshots, %" PRIu64
	       " metadata rows, %" PRIu64 " partitions, %" PRIu64 " chunks, %" PRIu64
	       " samples, %" PRIu64 " cold blocks, %" PRIu64 " cold samples, %" PRIu64
	       " tier blocks (%" PRIu64 " series), %" PRIu64 " tombstones",
	       dir, v->n_series, v->n_series_rows, v->n_series_entries, v->n_postings_keys,
	       v->n_postings, v->n_heads, v->n_metadata, v->n_parts_checked, v->n_chunks,
	       v->n_samples, v->n_cold_blocks, v->n_cold_samples, v->n_tier_blocks,
	       v->n_tier_series, v->n_tombstones);
	if (v->n_leftover)
		printf(" (%" PRIu64 " unlisted leftover blocks not checked)", v->n_leftover);
	if (v->n_problems)
		printf(": %" PRIu64 " problem%s\n", v->n_problems, v->n_problems == 1 ? "" : "s");
	else
		printf(": OK\n");
	printf("(the WAL is not checked: tsdbd checks it at start-up and cuts a torn tail)\n");
}

/* --json: one object with the counts and every problem found. */
static void print_json(const struct verify *v, const char *dir)
{
	printf("{\"data_dir\":");
	ctl_json_str(stdout, dir, strlen(dir));
	printf(",\"ok\":%s,\"problems\":[", v->n_problems ? "false" : "true");
	for (size_t i = 0; i < v->n_kept; i++) {
		const char *x = v->problems[i];
		printf("%s{\"where\":", i ? "," : "");
		ctl_json_str(stdout, x, strlen(x));
		printf(",\"what\":");
		ctl_json_str(stdout, x + strlen(x) + 1, strlen(x + strlen(x) + 1));
		printf("}");
	}
	printf("],\"n_problems\":%" PRIu64 ",\"checked\":{\"series\":%zu,\"series_rows\":%" PRIu64
	       ",\"group_entries\":%" PRIu64 ",\"postings_keys\":%" PRIu64 ",\"postings\":%" PRIu64
	       ",\"head_snapshots\":%" PRIu64 ",\"metadata_rows\":%" PRIu64
	       ",\"partitions\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"samples\":%" PRIu64
	       ",\"cold_blocks\":%" PRIu64 ",\"cold_samples\":%" PRIu64 ",\"tier_blocks\":%" PRIu64
	       ",\"tier_series\":%" PRIu64 ",\"tombstones\":%" PRIu64
	       "},\"unlisted_leftover_blocks\":%" PRIu64 "}\n",
	       v->n_problems, v->n_series, v->n_series_rows, v->n_series_entries,
	       v->n_postings_keys, v->n_postings, v->n_heads, v->n_metadata, v->n_parts_checked,
	       v->n_chunks, v->n_samples, v->n_cold_blocks, v->n_cold_samples, v->n_tier_blocks,
	       v->n_tier_series, v->n_tombstones, v->n_leftover);
}

static int verify_main(int argc, char **argv)
{
	const char *dir;
	struct ctl_ro db;
	int json = 0;
	const struct ctl_opt opts[] = { { "--json", 1, ctl_opt_flag, &json },
					{ NULL, 0, NULL, NULL } };
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex != CTL_RUN || (ex = ctl_ro_open(&db, dir)) != EXIT_OK)
		return ex;
	struct verify v = { .db = &db, .json = json };
	verify_meta(&v);
	int rc = verify_index(&v);
	for (size_t i = 0; rc == 0 && i < db.parts.n; i++) {
		ctl_progress("verify: raw/%s", db.parts.v[i].name);
		verify_part(&v, &db.parts.v[i]);
	}
	ctl_progress_done();
	if (rc)
		problem(&v, "verify", "stopped early: %s", ts_strerror(rc));
	if (v.json)
		print_json(&v, dir);
	else
		print_summary(&v, dir);
	for (size_t i = 0; i < v.n_kept; i++)
		ts_free(v.problems[i]);
	ts_free(v.problems);
	ts_free(v.s);
	ts_free(v.lab);
	ts_free(v.copy);
	ctl_ro_close(&db);
	fflush(stdout);
	return v.n_problems ? EXIT_FAIL : EXIT_OK;
}

static const char verify_help[] =
	"  verify    checks every chunk record (CRC, header, full XOR decode, key in the\n"
	"            partition's range, series known), every cold block (key, CRC, full\n"
	"            decode, samples in range, series known, order in its generation) and the\n"
	"            generations listed, every tier block (key, full decode, ids ascending,\n"
	"            series known) and meta \"tiers\" record, every series row and group row,\n"
	"            postings both ways, head snapshots, metadata rows and tombstones (key,\n"
	"            value, mint <= maxt, series known). Prints each problem with where it is and\n"
	"            a summary. Reads while a server runs.\n"
	"              --json     one JSON object: ok, problems (where, what), counts\n";

CTL_COMMAND(verify);
