/*
 * promblock.c - `tsdbctl export --format prometheus --out DIR`: the selected series as
 * Prometheus TSDB blocks (Prometheus' tsdb/docs/format: index v2, chunks segment files,
 * meta.json) that Prometheus, promtool and Thanos open as they are.
 *
 * The blocks are those Prometheus' compactor would leave (--min-block-duration and
 * --max-block-duration as Prometheus' flags, 2h and 36h by default: the ranges are 2h
 * times 3^k up to the largest, here 2h, 6h and 18h): windows aligned to the largest
 * range that end before the newest 2h block holding data are one block each, the rest
 * is split into smaller ranges down to 2h. A block holds every selected series with
 * samples in its window, in label order, as XOR chunks of at most 120 samples
 * (re-encoded from the merged samples, so chunks never overlap; stale markers kept, as
 * Prometheus stores them). meta.json carries a "thanos" section (labels from
 * --external-label NAME=VALUE, resolution 0, source "tsdbctl") so the blocks can go
 * into a Thanos bucket as they are; an empty wal/ beside them makes DIR a data
 * directory that prometheus --storage.tsdb.path and promtool tsdb open.
 *
 * Index v2 as written here: magic, version 2; the symbol table (every label name and
 * value, sorted); series aligned to 16 bytes (id = offset / 16) with symbol references
 * and delta-coded chunk metas; a label index per name and its offset table (no longer
 * read, still written as Prometheus does); postings per label pair, the all-series list
 * ("", "") first; the postings offset table; the TOC. Every section ends in a CRC32C of
 * its length-counted bytes. Chunks file 000001 (and on past 512 MiB): magic, version 1,
 * then per chunk uvarint length, encoding 1 (XOR), data, CRC32C of encoding and data;
 * a chunk's reference is (file index << 32) | offset.
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

#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "storage/xor.h"
#include "tsdb/labels.h"
#include "tsdbctl.h"

#define CHUNK_SAMPLES 120
#define SEGMENT_MAX (512u << 20)

struct buf {
	uint8_t *p;
	size_t n, cap;
	int oom;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 4096;
		while (c < b->n + n)
			c *= 2;
		uint8_t *x = realloc(b->p, c);
		if (!x) {
			b->oom = 1;
			return;
		}
		b->p = x;
		b->cap = c;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}
static void put_u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}
static void put_be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 4);
}
static void put_be64(struct buf *b, uint64_t v)
{
	put_be32(b, (uint32_t)(v >> 32));
	put_be32(b, (uint32_t)v);
}
static void put_uvarint(struct buf *b, uint64_t v)
{
	uint8_t x[10];
	size_t n = 0;
	while (v >= 0x80) {
		x[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	x[n++] = (uint8_t)v;
	put(b, x, n);
}
static void put_varint(struct buf *b, int64_t v)
{
	put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static void set_be32(struct buf *b, size_t at, uint32_t v)
{
	if (b->oom)
		return;
	b->p[at] = (uint8_t)(v >> 24);
	b->p[at + 1] = (uint8_t)(v >> 16);
	b->p[at + 2] = (uint8_t)(v >> 8);
	b->p[at + 3] = (uint8_t)v;
}
static void pad_to(struct buf *b, size_t align)
{
	static const uint8_t z[16] = { 0 };
	while (!b->oom && b->n % align)
		put(b, z, 1);
}
/* Ends a section begun at `at` with a 4-byte length placeholder: the length of what
 * follows the placeholder, then the CRC32C of those bytes. */
static void end_section(struct buf *b, size_t at)
{
	if (b->oom)
		return;
	size_t len = b->n - at - 4;
	set_be32(b, at, (uint32_t)len);
	put_be32(b, ts_crc32c(0, b->p + at + 4, len));
}

/* ---- one block ---- */

struct chunk_meta {
	int64_t mint, maxt;
	uint64_t ref;
};
struct bseries {
	struct ts_label *labels; /* copies (ts_malloc'd strings inside `strs`) */
	uint32_t n_labels;
	char *strs;
	struct chunk_meta *chunks;
	size_t n_chunks;
};
struct block {
	char dir[JOIN_MAX];
	struct bseries *ser;
	size_t n_ser, cap_ser;
	int seg_fd;
	uint32_t seg_idx;
	uint64_t seg_off;
	uint64_t n_samples, n_chunks;
	int64_t mint, maxt;
	int level; /* compaction level: 1 for the smallest blocks, +1 per range step */
};

static int write_all(int fd, const void *p, size_t n)
{
	for (size_t d = 0; d < n;) {
		ssize_t w = write(fd, (const char *)p + d, n - d);
		if (w < 0 && errno != EINTR)
			return -errno;
		if (w > 0)
			d += (size_t)w;
	}
	return 0;
}

static int seg_open(struct block *bl)
{
	char path[JOIN_MAX + 64];
	if (bl->seg_fd >= 0) {
		int rc = fsync(bl->seg_fd) ? -errno : 0;
		close(bl->seg_fd);
		if (rc)
			return rc;
	}
	bl->seg_idx++;
	snprintf(path, sizeof path, "%s/chunks/%06u", bl->dir, bl->seg_idx);
	bl->seg_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (bl->seg_fd < 0)
		return -errno;
	static const uint8_t head[8] = { 0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0 };
	bl->seg_off = 8;
	return write_all(bl->seg_fd, head, 8);
}

/* Appends one XOR chunk to the segment file; its reference into *ref. */
static int put_chunk(struct block *bl, const uint8_t *data, size_t len, uint64_t *ref)
{
	if (bl->seg_fd < 0 || bl->seg_off + len + 16 > SEGMENT_MAX) {
		int rc = seg_open(bl);
		if (rc)
			return rc;
	}
	struct buf b = { 0 };
	put_uvarint(&b, len);
	put_u8(&b, 1); /* XOR */
	put(&b, data, len);
	put_be32(&b, ts_crc32c(0, b.p + b.n - len - 1, len + 1));
	if (b.oom)
		return -ENOMEM;
	*ref = (uint64_t)(bl->seg_idx - 1) << 32 | bl->seg_off;
	int rc = write_all(bl->seg_fd, b.p, b.n);
	bl->seg_off += b.n;
	free(b.p);
	return rc;
}

/* Adds series ref's samples in [mint, maxt] to the block; nothing when it has none. */
static int add_series(struct block *bl, const struct ts_selector_ref *r, int64_t mint, int64_t maxt)
{
	struct ts_iter *it;
	int rc = ts_iter_new(r->set, r->i, &it);
	if (rc)
		return rc;
	struct chunk_meta *cm = NULL;
	size_t n_cm = 0, cap_cm = 0;
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	int64_t cmin = 0, t = 0;
	double v;
	int got = ts_iter_seek(it, mint);
	for (; got == 1 || e.n; got = ts_iter_next(it)) {
		if (got == 1)
			ts_iter_at(it, &t, &v);
		int end = got != 1 || t > maxt;
		if (e.n && (end || e.n >= CHUNK_SAMPLES)) {
			if (ts_grow((void **)&cm, &cap_cm, n_cm + 1, sizeof *cm)) {
				rc = -ENOMEM;
				break;
			}
			cm[n_cm] = (struct chunk_meta){ cmin, e.t, 0 };
			if ((rc = put_chunk(bl, e.buf, ts_xor_enc_bytes(&e), &cm[n_cm].ref)))
				break;
			n_cm++;
			bl->n_chunks++;
			ts_xor_enc_fini(&e);
			ts_xor_enc_init(&e);
		}
		if (end)
			break;
		uint64_t bits;
		memcpy(&bits, &v, 8);
		if (e.n == 0)
			cmin = t;
		if ((rc = ts_xor_append(&e, t, bits)))
			break;
		bl->n_samples++;
		if (t < bl->mint)
			bl->mint = t;
		if (t > bl->maxt)
			bl->maxt = t;
	}
	if (got < 0 && rc == 0)
		rc = got;
	ts_xor_enc_fini(&e);
	ts_iter_free(it);
	if (rc || n_cm == 0) {
		ts_free(cm);
		return rc;
	}
	if (ts_grow((void **)&bl->ser, &bl->cap_ser, bl->n_ser + 1, sizeof *bl->ser)) {
		ts_free(cm);
		return -ENOMEM;
	}
	struct bseries *s = &bl->ser[bl->n_ser++];
	memset(s, 0, sizeof *s);
	s->chunks = cm;
	s->n_chunks = n_cm;
	size_t sl = 0;
	for (uint32_t i = 0; i < r->n_labels; i++)
		sl += r->labels[i].name_len + r->labels[i].value_len + 2;
	s->labels = ts_malloc((r->n_labels ? r->n_labels : 1) * sizeof *s->labels);
	s->strs = ts_malloc(sl ? sl : 1);
	if (!s->labels || !s->strs)
		return -ENOMEM;
	char *p = s->strs;
	for (uint32_t i = 0; i < r->n_labels; i++) {
		const struct ts_label *l = &r->labels[i];
		memcpy(p, l->name, l->name_len);
		p[l->name_len] = 0;
		memcpy(p + l->name_len + 1, l->value, l->value_len);
		p[l->name_len + 1 + l->value_len] = 0;
		s->labels[i] = (struct ts_label){ p, p + l->name_len + 1, l->name_len,
						  l->value_len };
		p += l->name_len + l->value_len + 2;
	}
	s->n_labels = r->n_labels;
	return 0;
}

/* ---- the index ---- */

struct sym {
	const char *s;
	uint32_t len;
};
static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;
	uint32_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, m);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}
static uint32_t sym_ref(const struct sym *v, size_t n, const char *s, uint32_t len)
{
	struct sym k = { s, len };
	const struct sym *f = bsearch(&k, v, n, sizeof *v, sym_cmp);
	return f ? (uint32_t)(f - v) : 0;
}

/* A (name, value, series id) triple, for postings. */
struct pair {
	struct sym name, value;
	uint32_t id;
};
static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = sym_cmp(&x->name, &y->name);
	if (!c)
		c = sym_cmp(&x->value, &y->value);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int write_index(struct block *bl)
{
	struct buf b = { 0 };
	size_t n_sym = 0, n_pairs = 0;
	for (size_t i = 0; i < bl->n_ser; i++)
		n_pairs += bl->ser[i].n_labels;
	struct sym *syms = ts_malloc((2 * n_pairs + 1) * sizeof *syms);
	struct pair *pairs = ts_malloc((n_pairs + bl->n_ser + 1) * sizeof *pairs);
	uint32_t *ids = ts_malloc((bl->n_ser + 1) * sizeof *ids);
	if (!syms || !pairs || !ids) {
		ts_free(syms);
		ts_free(pairs);
		ts_free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < bl->n_ser; i++)
		for (uint32_t k = 0; k < bl->ser[i].n_labels; k++) {
			const struct ts_label *l = &bl->ser[i].labels[k];
			syms[n_sym++] = (struct sym){ l->name, l->name_len };
			syms[n_sym++] = (struct sym){ l->value, l->value_len };
		}
	qsort(syms, n_sym, sizeof *syms, sym_cmp);
	size_t w = 0;
	for (size_t i = 0; i < n_sym; i++)
		if (!w || sym_cmp(&syms[w - 1], &syms[i]))
			syms[w++] = syms[i];
	n_sym = w;

	static const uint8_t magic[5] = { 0xBA, 0xAA, 0xD7, 0x00, 2 };
	put(&b, magic, 5);
	uint64_t toc[6] = { 0 };
	/* Symbols. */
	toc[0] = b.n;
	size_t at = b.n;
	put_be32(&b, 0);
	put_be32(&b, (uint32_t)n_sym);
	for (size_t i = 0; i < n_sym; i++) {
		put_uvarint(&b, syms[i].len);
		put(&b, syms[i].s, syms[i].len);
	}
	end_section(&b, at);
	/* Series, 16-aligned. */
	pad_to(&b, 16);
	toc[1] = b.n;
	size_t np = 0;
	for (size_t i = 0; i < bl->n_ser; i++) {
		const struct bseries *s = &bl->ser[i];
		pad_to(&b, 16);
		ids[i] = (uint32_t)(b.n / 16);
		struct buf e = { 0 };
		put_uvarint(&e, s->n_labels);
		for (uint32_t k = 0; k < s->n_labels; k++) {
			const struct ts_label *l = &s->labels[k];
			put_uvarint(&e, sym_ref(syms, n_sym, l->name, l->name_len));
			put_uvarint(&e, sym_ref(syms, n_sym, l->value, l->value_len));
			pairs[np++] = (struct pair){ { l->name, l->name_len },
						     { l->value, l->value_len },
						     ids[i] };
		}
		put_uvarint(&e, s->n_chunks);
		for (size_t c = 0; c < s->n_chunks; c++) {
			const struct chunk_meta *m = &s->chunks[c];
			if (c == 0) {
				put_varint(&e, m->mint);
				put_uvarint(&e, (uint64_t)(m->maxt - m->mint));
				put_uvarint(&e, m->ref);
			} else {
				put_uvarint(&e, (uint64_t)(m->mint - s->chunks[c - 1].maxt));
				put_uvarint(&e, (uint64_t)(m->maxt - m->mint));
				put_varint(&e, (int64_t)(m->ref - s->chunks[c - 1].ref));
			}
		}
		if (e.oom)
			b.oom = 1;
		put_uvarint(&b, e.n);
		put(&b, e.p, e.n);
		put_be32(&b, ts_crc32c(0, e.p, e.n));
		free(e.p);
	}
	qsort(pairs, np, sizeof *pairs, pair_cmp);
	/* Label indices (one per name) and their offsets. */
	pad_to(&b, 4);
	toc[2] = b.n;
	size_t n_names = 0;
	uint64_t *name_off = ts_malloc((np + 1) * sizeof *name_off);
	for (size_t i = 0; name_off && i < np;) {
		size_t j = i;
		pad_to(&b, 4);
		name_off[n_names++] = b.n;
		at = b.n;
		put_be32(&b, 0);
		put_be32(&b, 1);
		size_t cnt_at = b.n;
		put_be32(&b, 0);
		uint32_t cnt = 0;
		for (; j < np && !sym_cmp(&pairs[j].name, &pairs[i].name); j++)
			if (j == i || sym_cmp(&pairs[j].value, &pairs[j - 1].value)) {
				put_be32(&b, sym_ref(syms, n_sym, pairs[j].value.s,
						     pairs[j].value.len));
				cnt++;
			}
		set_be32(&b, cnt_at, cnt);
		end_section(&b, at);
		i = j;
	}
	/* Postings: all series first, then per pair. */
	pad_to(&b, 4);
	toc[4] = b.n;
	struct buf pot = { 0 }; /* postings offset table entries */
	uint32_t n_pot = 0;
	at = b.n;
	put_be32(&b, 0);
	put_be32(&b, (uint32_t)bl->n_ser);
	for (size_t i = 0; i < bl->n_ser; i++)
		put_be32(&b, ids[i]);
	end_section(&b, at);
	put_u8(&pot, 2);
	put_uvarint(&pot, 0);
	put_uvarint(&pot, 0);
	put_uvarint(&pot, toc[4]);
	n_pot++;
	for (size_t i = 0; i < np;) {
		size_t j = i;
		while (j < np && !sym_cmp(&pairs[j].name, &pairs[i].name) &&
		       !sym_cmp(&pairs[j].value, &pairs[i].value))
			j++;
		pad_to(&b, 4);
		uint64_t off = b.n;
		at = b.n;
		put_be32(&b, 0);
		put_be32(&b, (uint32_t)(j - i));
		for (size_t k = i; k < j; k++)
			put_be32(&b, pairs[k].id);
		end_section(&b, at);
		put_u8(&pot, 2);
		put_uvarint(&pot, pairs[i].name.len);
		put(&pot, pairs[i].name.s, pairs[i].name.len);
		put_uvarint(&pot, pairs[i].value.len);
		put(&pot, pairs[i].value.s, pairs[i].value.len);
		put_uvarint(&pot, off);
		n_pot++;
		i = j;
	}
	/* Label offset table. */
	pad_to(&b, 4);
	toc[3] = b.n;
	at = b.n;
	put_be32(&b, 0);
	put_be32(&b, (uint32_t)n_names);
	size_t k = 0;
	for (size_t i = 0; name_off && i < np; k++) {
		size_t j = i;
		while (j < np && !sym_cmp(&pairs[j].name, &pairs[i].name))
			j++;
		put_u8(&b, 1);
		put_uvarint(&b, pairs[i].name.len);
		put(&b, pairs[i].name.s, pairs[i].name.len);
		put_uvarint(&b, name_off[k]);
		i = j;
	}
	end_section(&b, at);
	/* Postings offset table. */
	toc[5] = b.n;
	at = b.n;
	put_be32(&b, 0);
	put_be32(&b, n_pot);
	put(&b, pot.p, pot.n);
	end_section(&b, at);
	/* TOC. */
	size_t toc_at = b.n;
	for (int i = 0; i < 6; i++)
		put_be64(&b, toc[i]);
	put_be32(&b, b.oom ? 0 : ts_crc32c(0, b.p + toc_at, 48));
	int rc = b.oom || pot.oom || !name_off ? -ENOMEM : 0;
	char path[JOIN_MAX + 16];
	snprintf(path, sizeof path, "%s/index", bl->dir);
	if (rc == 0)
		rc = bstore_write_atomic(path, b.p, b.n);
	free(b.p);
	free(pot.p);
	ts_free(name_off);
	ts_free(syms);
	ts_free(pairs);
	ts_free(ids);
	return rc;
}

/* A ULID (Crockford base32 of 48 bits of ms time and 80 random bits). */
static void ulid(char out[27], int64_t ms)
{
	static const char enc[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint8_t b[16];
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b + 6, 10) != 10)
		for (int i = 6; i < 16; i++)
			b[i] = (uint8_t)rand();
	if (fd >= 0)
		close(fd);
	/* 128 bits -> 26 chars of 5 bits, most significant first (2 leading zero bits). */
	for (int i = 0; i < 26; i++) {
		int bit = 128 - 5 * (26 - i); /* index of the char's lowest bit from the top */
		unsigned v = 0;
		for (int k = 0; k < 5; k++) {
			int pos = bit + k; /* may be negative: the padding */
			v <<= 1;
			if (pos >= 0)
				v |= (b[pos / 8] >> (7 - pos % 8)) & 1;
		}
		out[i] = enc[v];
	}
	out[26] = 0;
}

static int write_meta(const struct block *bl, const char *id, const char *const *ext, size_t n_ext)
{
	char path[JOIN_MAX + 16];
	snprintf(path, sizeof path, "%s/meta.json", bl->dir);
	struct buf b = { 0 };
	char line[512];
	int n = snprintf(
		line, sizeof line,
		"{\n\t\"ulid\": \"%s\",\n\t\"minTime\": %" PRId64 ",\n\t\"maxTime\": %" PRId64
		",\n\t\"stats\": {\"numSamples\": %" PRIu64 ", \"numSeries\": %zu, "
		"\"numChunks\": %" PRIu64 "},\n\t\"compaction\": {\"level\": %d, "
		"\"sources\": [\"%s\"]},\n\t\"version\": 1,\n\t\"thanos\": {\"labels\": {",
		id, bl->mint, bl->maxt + 1, bl->n_samples, bl->n_ser, bl->n_chunks, bl->level, id);
	put(&b, line, (size_t)n);
	for (size_t i = 0; i < n_ext; i++) {
		const char *eq = strchr(ext[i], '=');
		n = snprintf(line, sizeof line, "%s\"%.*s\": \"%s\"", i ? ", " : "",
			     (int)(eq - ext[i]), ext[i], eq + 1);
		put(&b, line, (size_t)n);
	}
	static const char tail[] = "}, \"downsample\": {\"resolution\": 0}, \"source\": "
				   "\"tsdbctl\"}\n}\n";
	put(&b, tail, sizeof tail - 1);
	int rc = b.oom ? -ENOMEM : bstore_write_atomic(path, b.p, b.n);
	free(b.p);
	return rc;
}

/* An empty tombstones file, as every Prometheus block has: magic, version 1, the
 * CRC32C of no entries. */
static int write_tombstones(const struct block *bl)
{
	static const uint8_t t[9] = { 0x01, 0x30, 0xBA, 0x30, 1, 0, 0, 0, 0 };
	char path[JOIN_MAX + 16];
	snprintf(path, sizeof path, "%s/tombstones", bl->dir);
	return bstore_write_atomic(path, t, sizeof t);
}

static void block_free(struct block *bl)
{
	for (size_t i = 0; i < bl->n_ser; i++) {
		ts_free(bl->ser[i].labels);
		ts_free(bl->ser[i].strs);
		ts_free(bl->ser[i].chunks);
	}
	ts_free(bl->ser);
	if (bl->seg_fd >= 0)
		close(bl->seg_fd);
}

/* 1 if a selected series has a sample in [lo, hi]. */
static int window_has_data(struct ts_db *db, const struct ctl_select *sel, int64_t lo, int64_t hi)
{
	struct ts_selector_union u;
	char msg[256];
	int rc = ts_selector_union(db, sel->sel, sel->n_sel, lo, hi, true, &u, msg, sizeof msg);
	if (rc)
		return rc;
	int found = 0;
	for (size_t i = 0; i < u.n_refs && !found && rc == 0; i++) {
		struct ts_iter *it;
		if ((rc = ts_iter_new(u.refs[i].set, u.refs[i].i, &it)))
			break;
		int got = ts_iter_seek(it, lo);
		if (got == 1) {
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			found = t <= hi;
		} else if (got < 0) {
			rc = got;
		}
		ts_iter_free(it);
	}
	ts_selector_union_fini(&u);
	return rc ? rc : found;
}

struct plan {
	struct win {
		int64_t start, len;
		int level;
	} * v;
	size_t n, cap;
};

/* The blocks Prometheus' compactor leaves over [ws, ws + ranges[k]): one block when
 * the window ends at or before the newest block's start (its planner compacts such a
 * group even when it is not full), else the window split into windows of the next
 * smaller range, down to the smallest. */
static int plan_window(struct plan *p, const int64_t *ranges, int k, int64_t ws, int64_t newest)
{
	if (k == 0 || ws + ranges[k] <= newest) {
		if (ts_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v))
			return -ENOMEM;
		p->v[p->n++] = (struct win){ ws, ranges[k], k + 1 };
		return 0;
	}
	for (int64_t s = ws; s < ws + ranges[k]; s += ranges[k - 1]) {
		int rc = plan_window(p, ranges, k - 1, s, newest);
		if (rc)
			return rc;
	}
	return 0;
}

static int64_t floor_to(int64_t t, int64_t d)
{
	return t - ((t % d) + d) % d;
}

/* Writes one block of the samples in [lo, hi]; nothing when no series has one there. */
static int export_block(struct ts_db *db, const struct ctl_select *sel, const char *out,
			const struct win *w, int64_t lo, int64_t hi, const char *const *ext,
			size_t n_ext, uint64_t *n_blocks, uint64_t *n_samples)
{
	struct ts_selector_union u;
	char msg[256];
	int rc = ts_selector_union(db, sel->sel, sel->n_sel, lo, hi, true, &u, msg, sizeof msg);
	if (rc)
		return rc;
	char id[27];
	ulid(id, w->start);
	struct block bl = { .seg_fd = -1, .mint = INT64_MAX, .maxt = INT64_MIN, .level = w->level };
	snprintf(bl.dir, sizeof bl.dir, "%s/%s.tmp", out, id);
	char chunks[JOIN_MAX + 16];
	snprintf(chunks, sizeof chunks, "%s/chunks", bl.dir);
	rc = bstore_mkdirs(chunks);
	for (size_t i = 0; i < u.n_refs && rc == 0; i++) {
		rc = add_series(&bl, &u.refs[i], lo, hi);
		ctl_progress("export: block %" PRIu64 ", %" PRIu64 " samples", *n_blocks + 1,
			     *n_samples + bl.n_samples);
	}
	if (rc == 0 && bl.seg_fd >= 0 && fsync(bl.seg_fd) != 0)
		rc = -errno;
	if (rc == 0 && bl.n_ser) {
		rc = write_index(&bl);
		if (rc == 0)
			rc = write_tombstones(&bl);
		if (rc == 0)
			rc = write_meta(&bl, id, ext, n_ext);
		char final[JOIN_MAX + 32];
		snprintf(final, sizeof final, "%s/%s", out, id);
		/* The block appears whole or not at all (Prometheus skips *.tmp directories). */
		if (rc == 0 && rename(bl.dir, final) != 0)
			rc = -errno;
		if (rc == 0) {
			(*n_blocks)++;
			*n_samples += bl.n_samples;
		}
	}
	if (rc || !bl.n_ser)
		ctl_rm_tree(bl.dir);
	block_free(&bl);
	ts_selector_union_fini(&u);
	return rc;
}

int ctl_prom_export(struct ts_db *db, const struct ctl_select *sel, const char *out, int64_t from,
		    int64_t to, int64_t min_ms, int64_t max_ms, const char *const *ext,
		    size_t n_ext, uint64_t *n_blocks, uint64_t *n_samples)
{
	*n_blocks = *n_samples = 0;
	char wal[JOIN_MAX + 16];
	snprintf(wal, sizeof wal, "%s/wal", out);
	/* An empty wal/ makes DIR a Prometheus data directory that promtool opens too. */
	int rc = bstore_mkdirs(wal);
	if (rc || from > to)
		return rc;
	/* Prometheus' compaction ranges: the smallest times 3^k, up to the largest. */
	int64_t ranges[24];
	int n_r = 0;
	for (int64_t r = min_ms; n_r < 24 && r <= max_ms && r <= INT64_MAX / 3; r *= 3)
		ranges[n_r++] = r;
	if (n_r == 0)
		ranges[n_r++] = min_ms;
	/* The newest smallest block with data decides what is compacted. */
	int64_t newest = floor_to(to, min_ms);
	for (; newest + min_ms > from; newest -= min_ms) {
		rc = window_has_data(db, sel, newest, newest + min_ms - 1);
		if (rc < 0)
			return rc;
		if (rc == 1)
			break;
	}
	rc = 0;
	if (newest + min_ms <= from)
		return 0;
	int64_t big = ranges[n_r - 1];
	struct plan p = { 0 };
	for (int64_t ws = floor_to(from, big); rc == 0 && ws <= newest; ws += big)
		rc = plan_window(&p, ranges, n_r - 1, ws, newest);
	for (size_t i = 0; i < p.n && rc == 0; i++) {
		const struct win *w = &p.v[i];
		if (w->start > to || w->start + w->len <= from)
			continue;
		int64_t lo = w->start > from ? w->start : from;
		int64_t hi = w->start + w->len - 1 < to ? w->start + w->len - 1 : to;
		rc = export_block(db, sel, out, w, lo, hi, ext, n_ext, n_blocks, n_samples);
	}
	ts_free(p.v);
	ctl_progress_done();
	return rc;
}
