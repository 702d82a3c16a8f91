/*
 * promread.c - the Prometheus block decoders of promblock.h. Nothing here touches files:
 * the importer reads them, these functions check and decode the bytes.
 *
 * Reading pattern: a `struct rd` is a cursor over [p, end) whose reads fail sticky
 * (r.bad) instead of passing the end, so a parse is a straight run of reads followed by
 * one check, and no count taken from the bytes is trusted before it is bounded by the
 * bytes left.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promblock.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "wire/jsonl.h"

static int fail(int rc, char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(int rc, char *why, size_t why_len, const char *fmt, ...)
{
	if (why && why_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

struct rd {
	const uint8_t *p, *end;
	int bad;
};

static size_t rd_left(const struct rd *r)
{
	return r->bad ? 0 : (size_t)(r->end - r->p);
}
static uint32_t rd_be32(struct rd *r)
{
	if (rd_left(r) < 4) {
		r->bad = 1;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
		     r->p[3];
	r->p += 4;
	return v;
}
static uint64_t rd_be64(struct rd *r)
{
	uint64_t hi = rd_be32(r);
	return hi << 32 | rd_be32(r);
}
static uint8_t rd_u8(struct rd *r)
{
	if (rd_left(r) < 1) {
		r->bad = 1;
		return 0;
	}
	return *r->p++;
}
static uint64_t rd_uvarint(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (rd_left(r) < 1)
			break;
		uint8_t b = *r->p++;
		if (shift == 63 && b > 1)
			break; /* overflows 64 bits */
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}
static int64_t rd_varint(struct rd *r)
{
	uint64_t u = rd_uvarint(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
static const uint8_t *rd_bytes(struct rd *r, uint64_t n)
{
	if (rd_left(r) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *b = r->p;
	r->p += n;
	return b;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 if p[0..n) has CRC32C `want`. The fuzz target defines PB_FUZZ_SKIP_CRC so that
 * mutated bytes reach the parsers behind the checks instead of failing them. */
static int crc_ok(const uint8_t *p, size_t n, uint32_t want)
{
#ifdef PB_FUZZ_SKIP_CRC
	(void)p, (void)n, (void)want;
	return 1;
#else
	return ts_crc32c(0, p, n) == want;
#endif
}

/* A section at `off` of the index: 4-byte length, that many bytes, CRC32C of them.
 * On success *body is a cursor over the bytes. */
static int section(const uint8_t *p, size_t n, uint64_t off, struct rd *body, const char *what,
		   char *why, size_t why_len)
{
	if (off > n || n - off < 8)
		return fail(TS_ECORRUPT, why, why_len,
			    "index: %s section at %llu is out of the file", what,
			    (unsigned long long)off);
	uint32_t len = be32(p + off);
	if (len > n - off - 8)
		return fail(TS_ECORRUPT, why, why_len, "index: %s section runs past the end", what);
	const uint8_t *b = p + off + 4;
	if (!crc_ok(b, len, be32(b + len)))
		return fail(TS_ECORRUPT, why, why_len, "index: %s section fails its checksum",
			    what);
	*body = (struct rd){ b, b + len, 0 };
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

int pb_index_open(struct pb_index *ix, const uint8_t *p, size_t n, char *why, size_t why_len)
{
	memset(ix, 0, sizeof *ix);
	if (n < 5 + 52 || be32(p) != 0xBAAAD700u)
		return fail(TS_ECORRUPT, why, why_len, "index: not a Prometheus index (magic)");
	if (p[4] != 2)
		return fail(TS_EVERSION, why, why_len,
			    "index: format %u (only format 2, Prometheus 2.x, is read)", p[4]);
	const uint8_t *toc = p + n - 52;
	if (!crc_ok(toc, 48, be32(toc + 48)))
		return fail(TS_ECORRUPT, why, why_len,
			    "index: table of contents fails its checksum");
	struct rd t = { toc, toc + 48, 0 };
	for (int i = 0; i < 6; i++)
		ix->toc[i] = rd_be64(&t);
	/* Symbols. */
	struct rd r;
	int rc = section(p, n - 52, ix->toc[0], &r, "symbol", why, why_len);
	if (rc)
		return rc;
	uint32_t n_sym = rd_be32(&r);
	if (n_sym > rd_left(&r))
		return fail(TS_ECORRUPT, why, why_len, "index: %u symbols cannot fit", n_sym);
	ix->sym_off = ts_malloc(((size_t)n_sym + 1) * sizeof *ix->sym_off);
	if (!ix->sym_off)
		return -ENOMEM;
	for (uint32_t i = 0; i < n_sym && !r.bad; i++) {
		ix->sym_off[i] = (uint64_t)(r.p - p);
		rd_bytes(&r, rd_uvarint(&r));
	}
	if (r.bad) {
		pb_index_close(ix);
		return fail(TS_ECORRUPT, why, why_len, "index: symbol table is truncated");
	}
	ix->n_sym = n_sym;
	ix->p = p;
	ix->n = n;
	/* The postings offset table: find the list of all series, ("", ""). */
	if ((rc = section(p, n - 52, ix->toc[5], &r, "postings offset table", why, why_len))) {
		pb_index_close(ix);
		return rc;
	}
	uint32_t n_ent = rd_be32(&r);
	uint64_t all = UINT64_MAX;
	for (uint32_t i = 0; i < n_ent && !r.bad; i++) {
		uint8_t k = rd_u8(&r);
		uint64_t nl = rd_uvarint(&r);
		rd_bytes(&r, nl);
		uint64_t vl = rd_uvarint(&r);
		rd_bytes(&r, vl);
		uint64_t off = rd_uvarint(&r);
		if (k != 2)
			r.bad = 1;
		if (!r.bad && nl == 0 && vl == 0) {
			all = off;
			break;
		}
	}
	if (r.bad || all == UINT64_MAX) {
		pb_index_close(ix);
		return fail(TS_ECORRUPT, why, why_len,
			    "index: postings offset table is damaged or lists no series");
	}
	if ((rc = section(p, n - 52, all, &r, "postings", why, why_len))) {
		pb_index_close(ix);
		return rc;
	}
	uint32_t n_ser = rd_be32(&r);
	if (n_ser > rd_left(&r) / 4) {
		pb_index_close(ix);
		return fail(TS_ECORRUPT, why, why_len, "index: %u postings cannot fit", n_ser);
	}
	ix->series = ts_malloc(((size_t)n_ser + 1) * sizeof *ix->series);
	if (!ix->series) {
		pb_index_close(ix);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n_ser; i++)
		ix->series[i] = rd_be32(&r);
	/* Prometheus writes them sorted; sorting costs nothing and makes lookups safe. */
	qsort(ix->series, n_ser, sizeof *ix->series, u32_cmp);
	ix->n_series = n_ser;
	return 0;
}

void pb_index_close(struct pb_index *ix)
{
	ts_free(ix->sym_off);
	ts_free(ix->series);
	memset(ix, 0, sizeof *ix);
}

/* Symbol i as a (pointer, length) into the index bytes; 0 or TS_ECORRUPT. */
static int symbol(const struct pb_index *ix, uint64_t i, const char **s, uint32_t *len)
{
	if (i >= ix->n_sym)
		return TS_ECORRUPT;
	struct rd r = { ix->p + ix->sym_off[i], ix->p + ix->n, 0 };
	uint64_t l = rd_uvarint(&r);
	const uint8_t *b = rd_bytes(&r, l);
	if (!b || l > UINT32_MAX)
		return TS_ECORRUPT;
	*s = (const char *)b;
	*len = (uint32_t)l;
	return 0;
}

int pb_series_read(const struct pb_index *ix, uint32_t ref, struct pb_series *s, char *why,
		   size_t why_len)
{
	uint64_t off = (uint64_t)ref * 16;
	s->n_labels = 0;
	s->n_chunks = 0;
	if (off < ix->toc[1] || off >= ix->n - 52)
		return fail(TS_ECORRUPT, why, why_len,
			    "index: series %u is outside the series section", ref);
	struct rd r = { ix->p + off, ix->p + ix->n - 52, 0 };
	uint64_t len = rd_uvarint(&r);
	const uint8_t *body = rd_bytes(&r, len);
	const uint8_t *crc = rd_bytes(&r, 4);
	if (!body || !crc)
		return fail(TS_ECORRUPT, why, why_len, "index: series %u runs past the end", ref);
	if (!crc_ok(body, len, be32(crc)))
		return fail(TS_ECORRUPT, why, why_len, "index: series %u fails its checksum", ref);
	r = (struct rd){ body, body + len, 0 };
	uint64_t nl = rd_uvarint(&r);
	if (nl > rd_left(&r) / 2 || nl > UINT32_MAX)
		return fail(TS_ECORRUPT, why, why_len, "index: series %u has a bad label count",
			    ref);
	if (ts_grow((void **)&s->labels, &s->cap_labels, nl ? nl : 1, sizeof *s->labels))
		return -ENOMEM;
	for (uint64_t i = 0; i < nl; i++) {
		struct ts_label *l = &s->labels[i];
		uint64_t a = rd_uvarint(&r), b = rd_uvarint(&r);
		if (r.bad || symbol(ix, a, &l->name, &l->name_len) ||
		    symbol(ix, b, &l->value, &l->value_len))
			return fail(TS_ECORRUPT, why, why_len,
				    "index: series %u names a symbol that does not exist", ref);
	}
	s->n_labels = (uint32_t)nl;
	uint64_t nc = rd_uvarint(&r);
	if (nc > rd_left(&r) / 3)
		return fail(TS_ECORRUPT, why, why_len, "index: series %u has a bad chunk count",
			    ref);
	if (ts_grow((void **)&s->chunks, &s->cap_chunks, nc ? nc : 1, sizeof *s->chunks))
		return -ENOMEM;
	for (uint64_t i = 0; i < nc; i++) {
		struct pb_chunk_meta *c = &s->chunks[i];
		/* Deltas are added as unsigned (wrapping): damaged bytes give wrong times,
		 * never undefined behaviour. */
		if (i == 0) {
			c->mint = rd_varint(&r);
			c->maxt = (int64_t)((uint64_t)c->mint + rd_uvarint(&r));
			c->ref = rd_uvarint(&r);
		} else {
			const struct pb_chunk_meta *pc = &s->chunks[i - 1];
			c->mint = (int64_t)((uint64_t)pc->maxt + rd_uvarint(&r));
			c->maxt = (int64_t)((uint64_t)c->mint + rd_uvarint(&r));
			c->ref = pc->ref + (uint64_t)rd_varint(&r);
		}
	}
	if (r.bad)
		return fail(TS_ECORRUPT, why, why_len, "index: series %u is truncated", ref);
	s->n_chunks = nc;
	return 0;
}

void pb_series_fini(struct pb_series *s)
{
	ts_free(s->labels);
	ts_free(s->chunks);
	memset(s, 0, sizeof *s);
}

int pb_segment_check(const uint8_t *p, size_t n, char *why, size_t why_len)
{
	if (n < 8 || be32(p) != 0x85BD40DDu)
		return fail(TS_ECORRUPT, why, why_len,
			    "not a Prometheus chunk segment file (magic)");
	if (p[4] != 1)
		return fail(TS_EVERSION, why, why_len, "chunk segment format %u (only 1 is read)",
			    p[4]);
	return 0;
}

int pb_chunk_at(const uint8_t *p, size_t n, uint64_t off, uint8_t *enc, const uint8_t **data,
		size_t *len, char *why, size_t why_len)
{
	if (off < 8 || off >= n)
		return fail(TS_ECORRUPT, why, why_len, "chunk at %llu is outside its segment file",
			    (unsigned long long)off);
	struct rd r = { p + off, p + n, 0 };
	uint64_t l = rd_uvarint(&r);
	const uint8_t *e = rd_bytes(&r, 1);
	const uint8_t *d = rd_bytes(&r, l);
	const uint8_t *crc = rd_bytes(&r, 4);
	if (!e || !d || !crc)
		return fail(TS_ECORRUPT, why, why_len, "chunk at %llu runs past its segment file",
			    (unsigned long long)off);
	if (!crc_ok(e, l + 1, be32(crc)))
		return fail(TS_ECORRUPT, why, why_len, "chunk at %llu fails its checksum",
			    (unsigned long long)off);
	*enc = *e;
	*data = d;
	*len = l;
	return 0;
}

static int stone_cmp(const void *a, const void *b)
{
	const struct pb_stone *x = a, *y = b;
	if (x->ref != y->ref)
		return x->ref < y->ref ? -1 : 1;
	return (x->mint > y->mint) - (x->mint < y->mint);
}

int pb_tombstones_parse(const uint8_t *p, size_t n, struct pb_stone **out, size_t *n_out, char *why,
			size_t why_len)
{
	*out = NULL;
	*n_out = 0;
	if (n < 9 || be32(p) != 0x0130BA30u)
		return fail(TS_ECORRUPT, why, why_len, "tombstones: not a tombstones file (magic)");
	if (p[4] != 1)
		return fail(TS_EVERSION, why, why_len, "tombstones: format %u (only 1 is read)",
			    p[4]);
	if (!crc_ok(p + 5, n - 9, be32(p + n - 4)))
		return fail(TS_ECORRUPT, why, why_len, "tombstones: the file fails its checksum");
	struct rd r = { p + 5, p + n - 4, 0 };
	struct pb_stone *v = NULL;
	size_t cap = 0, k = 0;
	while (rd_left(&r) && !r.bad) {
		struct pb_stone s;
		s.ref = rd_uvarint(&r);
		s.mint = rd_varint(&r);
		s.maxt = rd_varint(&r);
		if (r.bad)
			break;
		if (ts_grow((void **)&v, &cap, k + 1, sizeof *v)) {
			ts_free(v);
			return -ENOMEM;
		}
		v[k++] = s;
	}
	if (r.bad) {
		ts_free(v);
		return fail(TS_ECORRUPT, why, why_len, "tombstones: an entry is truncated");
	}
	if (k)
		qsort(v, k, sizeof *v, stone_cmp);
	*out = v;
	*n_out = k;
	return 0;
}

/* A JSON integer token: 0 or TS_ECORRUPT (not an integer, or out of int64 range). */
static int json_int(const char *s, size_t len, int64_t *v)
{
	char buf[32];
	if (len == 0 || len >= sizeof buf)
		return TS_ECORRUPT;
	memcpy(buf, s, len);
	buf[len] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (errno || *end)
		return TS_ECORRUPT;
	*v = x;
	return 0;
}

int pb_meta_parse(const char *p, size_t n, int64_t *mint, int64_t *maxt, char *why, size_t why_len)
{
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, p, n);
	int tok = ts_jsonl_lex_next(&lx);
	if (tok != TS_JSONL_OBJ)
		return fail(TS_ECORRUPT, why, why_len, "meta.json: not a JSON object");
	int64_t version = -1;
	int have = 0;
	while ((tok = ts_jsonl_lex_next(&lx)) == TS_JSONL_KEY) {
		const char *k = lx.tok;
		size_t kl = lx.tok_len;
		int64_t *dst = NULL;
		int bit = 0;
		if (kl == 7 && !memcmp(k, "minTime", 7))
			dst = mint, bit = 1;
		else if (kl == 7 && !memcmp(k, "maxTime", 7))
			dst = maxt, bit = 2;
		else if (kl == 7 && !memcmp(k, "version", 7))
			dst = &version, bit = 4;
		tok = ts_jsonl_lex_next(&lx);
		if (tok < 0)
			break;
		if (dst) {
			if (tok != TS_JSONL_NUM || json_int(lx.tok, lx.tok_len, dst))
				return fail(TS_ECORRUPT, why, why_len,
					    "meta.json: %.*s is not an integer", (int)kl, k);
			have |= bit;
		} else if ((tok = ts_jsonl_lex_skip(&lx, tok)) < 0) {
			break;
		}
	}
	if (tok != TS_JSONL_OBJ_END || ts_jsonl_lex_next(&lx) != TS_JSONL_END)
		return fail(TS_ECORRUPT, why, why_len, "meta.json: not valid JSON (%s)",
			    lx.err ? lx.err : "unexpected token");
	if (have != 7)
		return fail(TS_ECORRUPT, why, why_len, "meta.json: lacks %s",
			    !(have & 1)	  ? "minTime"
			    : !(have & 2) ? "maxTime"
					  : "version");
	if (version != 1)
		return fail(TS_EVERSION, why, why_len, "meta.json: version %lld (only 1 is read)",
			    (long long)version);
	if (*maxt < *mint)
		return fail(TS_ECORRUPT, why, why_len, "meta.json: maxTime is before minTime");
	return 0;
}
