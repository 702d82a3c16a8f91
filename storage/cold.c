/*
 * cold.c - the cold block codec (layout tables in cold.h).
 *
 * Why this shape. Sealed samples are read far more often than written and are stored for
 * a long time, so the block trades encode time for bytes: values and timestamps are
 * turned into small integers column by column, and zstd then squeezes what the columns
 * still share (repeated byte patterns across series, skewed byte frequencies) out of the
 * whole body at once. Three facts about scraped data drive the columns:
 *  - series scraped together (a node_exporter target's ~500 series) carry byte-identical
 *    timestamps: each distinct timestamp column is stored once per block and referenced
 *    (found by CRC32C hash, confirmed by memcmp);
 *  - most values were printed as short decimals and parsed by strtod, so v equals
 *    m / 10^k (or m * 10^k) for a small integer m, computed by one correctly rounded IEEE
 *    operation on exact operands; storing m instead of the bits turns a gauge or counter
 *    into small deltas (or delta-of-deltas for steady counters). Every value is decoded
 *    back while encoding and must give its exact bits; those that do not (NaN of any
 *    payload, the stale marker, +-Inf, -0.0, non-decimal doubles) become exceptions
 *    stored as raw bits, and when they are too many, or the XOR form is smaller, the
 *    series is stored as byte-aligned XORs of consecutive values instead;
 *  - many series never change within a block: one value, stored once.
 *
 * Encoder. Per series, in one pass over its samples after the input was validated: the
 * timestamp column (deduplicated), then the value column of the smallest kind: CONST if
 * all bits are equal; else the decimal form (each value tried at the scale of the most
 * decimals met so far, one or two tries for most values; then the common scale that
 * leaves the fewest exceptions) in DELTA or DOD mode, whichever byte stream has the
 * smaller order-0 entropy (what zstd's Huffman stage pays). With exceptions, the decimal
 * form competes on that estimate with the deltas of the raw bits (BITS) and byte-aligned
 * XORs. (Byte-aligned XOR with the control bytes apart compressed better under zstd than
 * Gorilla bit packing on every float shape tried: 3.4 against 4.2 bytes/sample on epoch
 * seconds with a fraction, 8.0 against 8.4 on random bits; BITS beat both on monotone
 * floats: 2.4.) Then the directory; the body is compressed as one zstd frame, or stored
 * as is when zstd cannot shrink it.
 *
 * Default level (TS_COLD_LEVEL_DEFAULT 3), measured with tools/main_coldbench.c (blocks
 * of ~64 KiB raw body, 400 samples a series): bytes/sample for node-like / cpu-like data
 * and encode ns/sample were 1.195 / 0.268 at level 1 (34 ns), 1.189 / 0.264 at 3 (35),
 * 1.180 / 0.261 at 5 (44), 1.179 / 0.250 at 9 (47-80), 1.174 / 0.235 at 13 (81-180),
 * 1.179 / 0.226 at 19 (180-580). The columns leave zstd little to find on scraped data
 * (node: < 1% from level 3 to 19); only very regular data gains from the slow levels. At
 * 3 zstd is about a third of the encode time; a caller rewriting old data that is read
 * rarely may pass 9 to 13 for a few percent more.
 *
 * Decoder. ts_cold_open does every check that does not need a column's contents: the
 * header against the length, the CRC32C of the stored body, the decompressed length
 * against raw_len, and the directory (counts bounded by the bytes present, ids, columns
 * numbered in order of first use, time ranges, kinds, column lengths within the bounds
 * their sample counts allow, the lengths adding up to the body exactly, and the totals
 * against the header). The body is kept with BODY_PAD zero bytes after it, so the column
 * decoders may load 8 bytes at any position up to a column's end, and a varint that
 * starts before the end may run on into the padding without leaving the allocation:
 * each checks its position once per sample and exact consumption at the end.
 * ts_cold_decode writes straight into the caller's arrays: one tight loop for the
 * timestamps, one for the mantissas, one converting them, then the exceptions patched in.
 *
 * zstd allocates through ts_malloc/ts_free (ZSTD_customMem), so injected allocation
 * failures reach it too; its memory_allocation error maps to -ENOMEM, any other
 * decompression error to TS_ECORRUPT. zstd is used in this file only.
 */
#include "storage/cold.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "storage/zpool.h"

/* Zero bytes after the body: an 8-byte load or a varint begun before a column's end
 * stays inside the allocation. */
#define BODY_PAD 16
#define MIN_SERIES_BYTES 5 /* body bytes every series needs at least (see peek) */
#define SCALE_BIAS 22	   /* scale byte = e + 22 */
#define E_EXC 127	   /* per-value scale marks while encoding: an exception */
#define E_ZERO 126	   /* +0.0: mantissa 0 at any scale */
#define TWO53 9007199254740992.0
#define M_LIM (INT64_C(1) << 53) /* mantissas are below this in magnitude */

static const double p10[23] = { 1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,
				1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

/* ---- bytes ------------------------------------------------------------------------ */

static inline uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static inline uint64_t zz_enc(uint64_t x)
{
	return x << 1 ^ (0 - (x >> 63));
}

static inline uint64_t zz_dec(uint64_t x)
{
	return x >> 1 ^ (0 - (x & 1));
}

static inline size_t uv_len(uint64_t x)
{
	return x ? (size_t)(70 - __builtin_clzll(x)) / 7 : 1;
}

static inline size_t uv_put(uint8_t *p, uint64_t x)
{
	size_t i = 0;
	while (x >= 0x80) {
		p[i++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	p[i++] = (uint8_t)x;
	return i;
}

/* Reads a uv at *q, never at or past end: 0, or -1 if cut short, longer than 10 bytes or
 * above 2^64 - 1. */
static int uv_get(const uint8_t **q, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *q;
	uint64_t x = 0;
	for (unsigned s = 0; s < 70; s += 7) {
		if (p >= end)
			return -1;
		uint64_t b = *p++;
		if (s == 63 && b > 1)
			return -1;
		x |= (b & 0x7f) << s;
		if (b < 0x80) {
			*q = p;
			*out = x;
			return 0;
		}
	}
	return -1;
}

/* The rest of a uv whose first byte, at p, is >= 0x80. Reads at most 10 bytes from p
 * without a bound (the caller has p before a column's end, and BODY_PAD bytes follow the
 * body). Returns the position after it, or NULL if it is malformed. */
static __attribute__((noinline)) const uint8_t *uv_slow(const uint8_t *p, uint64_t *out)
{
	uint64_t x = 0;
	for (unsigned s = 0; s < 70; s += 7) {
		uint64_t b = *p++;
		if (s == 63 && b > 1)
			return NULL;
		x |= (b & 0x7f) << s;
		if (b < 0x80) {
			*out = x;
			return p;
		}
	}
	return NULL;
}

static inline uint64_t dbits(double d)
{
	uint64_t b;
	memcpy(&b, &d, 8);
	return b;
}

static inline double bitsd(uint64_t b)
{
	double d;
	memcpy(&d, &b, 8);
	return d;
}

/* The value of mantissa m at scale e, exactly as the decoder computes it. */
static inline double dec_value(int64_t m, int e)
{
	double x = (double)m;
	return e < 0 ? x / p10[-e] : x * p10[e];
}

/* ---- header ----------------------------------------------------------------------- */

/* ts_cold_peek, also returning the flags byte. */
static int peek(const uint8_t *p, size_t len, struct ts_cold_info *info, uint8_t *flags)
{
	struct ts_cold_info x;
	if (len < 5 || memcmp(p, TS_COLD_MAGIC, 4) != 0)
		return TS_CORRUPT();
	if (p[4] != TS_COLD_VERSION)
		return TS_EVERSION;
	if (len < TS_COLD_HDR_LEN)
		return TS_CORRUPT();
	if ((p[5] & ~TS_COLD_FLAG_ZSTD) || p[6] || p[7])
		return TS_CORRUPT();
	x.n_series = (uint32_t)get_le(p + 8, 4);
	x.raw_len = (uint32_t)get_le(p + 12, 4);
	x.first_id = get_le(p + 16, 8);
	x.last_id = get_le(p + 24, 8);
	x.min_t = (int64_t)get_le(p + 32, 8);
	x.max_t = (int64_t)get_le(p + 40, 8);
	x.n_samples = get_le(p + 48, 8);
	x.z_len = (uint32_t)get_le(p + 56, 4);
	if (x.z_len != len - TS_COLD_HDR_LEN)
		return TS_CORRUPT();
	if (!(p[5] & TS_COLD_FLAG_ZSTD) && x.z_len != x.raw_len)
		return TS_CORRUPT();
	if (x.raw_len > TS_COLD_MAX_RAW)
		return TS_CORRUPT();
	/* The body holds D0, one column table entry (4 bytes) and per series D6-D8 and a
	 * value column of 1 byte or more (BITS of one sample), plus D5 but for series 0. */
	if (x.n_series == 0 || (uint64_t)x.n_series * MIN_SERIES_BYTES + 4 > x.raw_len)
		return TS_CORRUPT();
	if (x.first_id > x.last_id || x.last_id - x.first_id < x.n_series - 1)
		return TS_CORRUPT();
	if (x.min_t > x.max_t)
		return TS_CORRUPT();
	/* A series has at most one sample more than its timestamp column has bytes. */
	if (x.n_samples < x.n_series || x.n_samples / x.n_series > (uint64_t)x.raw_len + 1)
		return TS_CORRUPT();
	*info = x;
	*flags = p[5];
	return 0;
}

int ts_cold_peek(const uint8_t *p, size_t len, struct ts_cold_info *info)
{
	uint8_t flags;
	return peek(p, len, info, &flags);
}

static void put_header(uint8_t *p, uint8_t flags, const struct ts_cold_info *x, uint32_t crc)
{
	memcpy(p, TS_COLD_MAGIC, 4);
	p[4] = TS_COLD_VERSION;
	p[5] = flags;
	p[6] = p[7] = 0;
	put_le(p + 8, x->n_series, 4);
	put_le(p + 12, x->raw_len, 4);
	put_le(p + 16, x->first_id, 8);
	put_le(p + 24, x->last_id, 8);
	put_le(p + 32, (uint64_t)x->min_t, 8);
	put_le(p + 40, (uint64_t)x->max_t, 8);
	put_le(p + 48, x->n_samples, 8);
	put_le(p + 56, x->z_len, 4);
	put_le(p + 60, crc, 4);
}

/* ---- encoder: buffers and timestamp columns --------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_need(struct buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	if (extra > TS_COLD_MAX_RAW || b->len > TS_COLD_MAX_RAW)
		return TS_ELIMIT;
	void *p = b->p;
	int rc = ts_grow(&p, &b->cap, b->len + extra, 1);
	b->p = p;
	return rc;
}

struct tcol {
	int64_t t_first, t_last;
	uint32_t n, hash;
	size_t off, len; /* in enc.tb */
};

struct enc {
	const struct ts_cold_input *in;
	size_t n;
	struct buf tb, vb; /* timestamp columns, value columns */
	struct tcol *tc;
	size_t n_tc, tc_cap;
	uint32_t *slots; /* open addressing: tcol index + 1, 0 = empty */
	size_t slot_cap; /* power of two, at least twice n_tc */
	uint32_t *ref;	 /* per series: timestamp column */
	uint32_t *vlen;	 /* per series: value column bytes */
	uint8_t *kind;	 /* per series: TS_COLD_VAL_* */
	int64_t *m;	 /* per sample of the current series: mantissas */
	int8_t *e;	 /* per sample: scale, or E_EXC / E_ZERO */
	size_t m_cap, e_cap;
};

static int slots_grow(struct enc *e)
{
	size_t cap = e->slot_cap ? e->slot_cap * 2 : 64;
	uint32_t *s = ts_calloc(cap, sizeof *s);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_tc; i++) {
		size_t h = e->tc[i].hash & (cap - 1);
		while (s[h])
			h = (h + 1) & (cap - 1);
		s[h] = (uint32_t)i + 1;
	}
	ts_free(e->slots);
	e->slots = s;
	e->slot_cap = cap;
	return 0;
}

/* Writes series s's timestamp column at the end of tb; if an identical column (same
 * first timestamp, count and bytes) exists, drops it again. Sets e->ref[s]. */
static int put_tcol(struct enc *e, size_t s)
{
	const struct ts_cold_input *x = &e->in[s];
	size_t start = e->tb.len;
	uint64_t prev = (uint64_t)x->t[0], delta = 0;
	int rc;
	for (uint32_t j = 1; j < x->n; j++) {
		if ((rc = buf_need(&e->tb, 10)))
			return rc;
		uint64_t d = (uint64_t)x->t[j] - prev;
		e->tb.len += uv_put(e->tb.p + e->tb.len, zz_enc(d - delta));
		delta = d;
		prev = (uint64_t)x->t[j];
	}
	size_t len = e->tb.len - start;
	const uint8_t *col = e->tb.p + start;
	uint64_t key[2] = { (uint64_t)x->t[0], x->n };
	uint32_t hash = ts_crc32c(ts_crc32c(0, key, sizeof key), col, len);
	if (2 * (e->n_tc + 1) > e->slot_cap && (rc = slots_grow(e)))
		return rc;
	size_t h = hash & (e->slot_cap - 1);
	for (; e->slots[h]; h = (h + 1) & (e->slot_cap - 1)) {
		const struct tcol *c = &e->tc[e->slots[h] - 1];
		if (c->hash == hash && c->t_first == x->t[0] && c->n == x->n && c->len == len &&
		    memcmp(e->tb.p + c->off, col, len) == 0) {
			e->tb.len = start;
			e->ref[s] = e->slots[h] - 1;
			return 0;
		}
	}
	void *tc = e->tc;
	if ((rc = ts_grow(&tc, &e->tc_cap, e->n_tc + 1, sizeof *e->tc)))
		return rc;
	e->tc = tc;
	e->tc[e->n_tc] = (struct tcol){ x->t[0], x->t[x->n - 1], x->n, hash, start, len };
	e->slots[h] = (uint32_t)++e->n_tc;
	e->ref[s] = (uint32_t)(e->n_tc - 1);
	return 0;
}

/* ---- encoder: decimal analysis ---------------------------------------------------- */

/* Looks for m with dec_value(m, e) having bits b near approx (its exact value times the
 * scale): tries approx rounded, then one either side. 1 and *m, or 0. */
static int dec_try(uint64_t b, int e, double approx, int64_t *m)
{
	static const int64_t step[3] = { 0, -1, 1 };
	if (!(fabs(approx) < TWO53))
		return 0;
	int64_t c = (int64_t)llrint(approx);
	for (int k = 0; k < 3; k++) {
		int64_t x = c + step[k];
		if (x > -M_LIM && x < M_LIM && dbits(dec_value(x, e)) == b) {
			*m = x;
			return 1;
		}
	}
	return 0;
}

/* A non-integer at scale -k: 1 (and *m), 0, or -1 when v * 10^k reaches 2^53 (so every
 * larger k fails too). */
static int frac_at(uint64_t b, double v, int k, int64_t *m)
{
	double x = v * p10[k];
	if (!(fabs(x) < TWO53))
		return -1;
	return dec_try(b, -k, x, m);
}

/*
 * The decimal form of the value with bits b: *m, *e with dec_value(*m, *e) == b (tried,
 * not assumed), or *e = E_ZERO for +0.0. An integer takes the largest scale (trailing
 * zeros stripped). Any other value takes the scale -*hint if that represents it, else
 * the next finer one that does, which becomes the hint. So the hint is the most decimals
 * any value needed so far; as representability at -k implies it at -(k+1) while the
 * mantissa stays below 2^53, the series' common scale comes out as from each value's
 * own fewest decimals, at one or two tries per value. Returns 1, or 0 if b is no decimal.
 */
static int dec_canon(uint64_t b, int *hint, int64_t *m, int *e)
{
	if (b == 0) {
		*m = 0;
		*e = E_ZERO;
		return 1;
	}
	double v = bitsd(b), a = fabs(v);
	if (!isfinite(v) || b == 0x8000000000000000ull)
		return 0;
	int64_t x = 0;
	int k, r;
	if (a >= TWO53 || (double)(int64_t)v == v) {
		if (a < TWO53) {
			x = (int64_t)v;
			k = 0;
		} else {
			if (a >= TWO53 * 1e22)
				return 0;
			for (k = 1; k <= 22; k++)
				if (dec_try(b, k, v / p10[k], &x))
					break;
			if (k > 22)
				return 0;
		}
		while (k < 22 && x % 10 == 0) {
			x /= 10;
			k++;
		}
		if (dbits(dec_value(x, k)) != b)
			return 0;
		*m = x;
		*e = k;
		return 1;
	}
	k = *hint;
	r = frac_at(b, v, k, &x);
	if (r == 0) {
		for (k++; k <= 22 && !r; k++)
			r = frac_at(b, v, k, &x);
		k--;
		if (r == 1)
			*hint = k;
	} else if (r < 0) {
		/* Too many digits at the hint: a large value with fewer decimals. */
		int top = k;
		for (k = 1, r = 0; k < top && !r; k++)
			r = frac_at(b, v, k, &x);
		k--;
	}
	if (r != 1)
		return 0;
	*m = x;
	*e = -k;
	return 1;
}

/* 1 if mantissa m at scale em, rescaled to scale c, stays below 2^53. */
static inline int fits(int64_t m, int em, int c)
{
	if (em == E_ZERO)
		return 1;
	if (em < c || em - c > 15)
		return 0;
	uint64_t a = m < 0 ? 0 - (uint64_t)m : (uint64_t)m, r;
	return !__builtin_mul_overflow(a, (uint64_t)p10[em - c], &r) && r < (uint64_t)M_LIM;
}

/* log2(x) for x >= 1, piecewise linear between powers of two (error < 0.09): the
 * exponent of the double plus its mantissa bits read as a fraction. */
static inline double log2_lin(uint64_t x)
{
	uint64_t u = dbits((double)x);
	return (double)((u >> 52) - 1023) + (double)(u & 0xfffffffffffffull) * 0x1p-52;
}

/*
 * What a byte stream with histogram h of total bytes should cost after zstd, in bits:
 * its order-0 entropy (what Huffman coding of literals pays; plenty exact to rank
 * streams with log2_lin), or 8 bits a byte when that is above 7 bits a byte or its most
 * frequent byte is rarer than 1/128 of the stream: then zstd's Huffman stage gains
 * little or gives up and stores the literals raw (HUF's "probably not compressible"
 * test), as measured on varints of random deltas.
 */
static double entropy_bits(const uint32_t h[256], uint64_t total)
{
	double sum = 0;
	uint32_t top = 0;
	for (int i = 0; i < 256; i++) {
		if (!h[i])
			continue;
		top = h[i] > top ? h[i] : top;
		sum += h[i] * log2_lin(h[i]);
	}
	if (top <= total / 128 + 4)
		return 8.0 * (double)total;
	double bits = (double)total * log2_lin(total) - sum;
	return bits > 7.0 * (double)total ? 8.0 * (double)total : bits;
}

static inline void hist_uv(uint32_t h[256], uint64_t x)
{
	while (x >= 0x80) {
		h[(x & 0x7f) | 0x80]++;
		x >>= 7;
	}
	h[x]++;
}

/* A zz stream: x_0, then deltas (or delta-of-deltas) of x, mod 2^64. */
struct stream {
	int dod;
	size_t bytes;
	double bits; /* order-0 entropy of its bytes: what it should cost after zstd */
};

/* Measures the stream of x[0..n) in both modes and keeps the cheaper. */
static void stream_measure(const uint64_t *x, uint32_t n, struct stream *st)
{
	uint32_t hd[256] = { 0 }, ho[256] = { 0 };
	uint64_t z0 = zz_enc(x[0]), pd = 0;
	size_t bd = uv_len(z0), bo = bd;
	hist_uv(hd, z0);
	hist_uv(ho, z0);
	for (uint32_t j = 1; j < n; j++) {
		uint64_t d = x[j] - x[j - 1], zd = zz_enc(d), zo = zz_enc(d - pd);
		pd = d;
		bd += uv_len(zd);
		bo += uv_len(zo);
		hist_uv(hd, zd);
		hist_uv(ho, zo);
	}
	double ed = entropy_bits(hd, bd), eo = entropy_bits(ho, bo);
	st->dod = eo < ed;
	st->bytes = st->dod ? bo : bd;
	st->bits = st->dod ? eo : ed;
}

static size_t put_stream(uint8_t *p, const uint64_t *x, uint32_t n, int dod)
{
	size_t k = uv_put(p, zz_enc(x[0]));
	uint64_t pd = 0;
	for (uint32_t j = 1; j < n; j++) {
		uint64_t d = x[j] - x[j - 1];
		k += uv_put(p + k, zz_enc(dod ? d - pd : d));
		pd = d;
	}
	return k;
}

struct dec_plan {
	int scale;
	uint32_t n_exc;
	struct stream st; /* the mantissas */
	size_t bytes;	  /* the whole value column */
	double bits;
};

/* Decimal form of values v[0..n): per-value forms into e->m / e->e, then the common
 * scale, then e->m holds the final mantissas (exceptions repeating the previous one)
 * and e->e marks exceptions with E_EXC. Returns 1 with *pl filled, or 0 if the values
 * are not decimal enough to be worth it. */
static int dec_plan(struct enc *e, const uint64_t *v, uint32_t n, struct dec_plan *pl)
{
	int64_t *m = e->m;
	int8_t *ex = e->e;
	uint32_t n_exc = 0, limit = n / 4 + 8;
	int hint = 1, lo = E_ZERO;
	uint64_t seen = 0; /* bit e + 22: some value has scale e */
	for (uint32_t j = 0; j < n; j++) {
		int s;
		if (!dec_canon(v[j], &hint, &m[j], &s)) {
			ex[j] = E_EXC;
			if (++n_exc > limit)
				return 0;
			continue;
		}
		ex[j] = (int8_t)s;
		if (s != E_ZERO) {
			seen |= 1ull << (s + SCALE_BIAS);
			if (s < lo)
				lo = s;
		}
	}
	if (lo == E_ZERO)
		lo = 0;
	/* The finest scale represents every value unless a mantissa outgrows 2^53; then the
	 * scale leaving the fewest exceptions (on a tie the coarser) wins. */
	int best = lo;
	uint32_t best_bad = 0;
	for (uint32_t j = 0; j < n; j++)
		if (ex[j] != E_EXC && !fits(m[j], ex[j], lo))
			best_bad++;
	for (int c = lo + 1; best_bad && c <= 22; c++) {
		if (!(seen >> (c + SCALE_BIAS) & 1))
			continue;
		uint32_t bad = 0;
		for (uint32_t j = 0; j < n; j++)
			if (ex[j] != E_EXC && !fits(m[j], ex[j], c))
				bad++;
		if (bad <= best_bad) {
			best = c;
			best_bad = bad;
		}
	}
	if (n_exc + best_bad > limit)
		return 0;
	/* Final mantissas; those rescaled are decoded back to their exact bits again (the
	 * others were at their scale by dec_canon). */
	int64_t prev = 0;
	size_t b_exc = 0;
	uint32_t last = 0;
	n_exc = 0;
	for (uint32_t j = 0; j < n; j++) {
		int s = ex[j];
		if (s == best || s == E_ZERO) {
			prev = m[j];
			continue;
		}
		if (s != E_EXC && fits(m[j], s, best)) {
			int64_t x = m[j] * (int64_t)p10[s - best];
			if (dbits(dec_value(x, best)) == v[j]) {
				m[j] = prev = x;
				continue;
			}
		}
		ex[j] = E_EXC;
		m[j] = prev;
		b_exc += uv_len(n_exc++ ? j - last - 1 : j) + 8;
		last = j;
	}
	pl->scale = best;
	pl->n_exc = n_exc;
	stream_measure((const uint64_t *)m, n, &pl->st);
	size_t head = 1 + uv_len(n_exc) + b_exc;
	pl->bytes = head + pl->st.bytes;
	pl->bits = pl->st.bits + 8.0 * (double)head;
	return 1;
}

static size_t put_dec(uint8_t *p, const struct enc *e, uint32_t n, const uint64_t *v,
		      const struct dec_plan *pl)
{
	size_t k = 0;
	p[k++] = (uint8_t)(pl->scale + SCALE_BIAS);
	k += uv_put(p + k, pl->n_exc);
	uint32_t last = 0, i = 0;
	for (uint32_t j = 0; j < n; j++) {
		if (e->e[j] != E_EXC)
			continue;
		k += uv_put(p + k, i++ ? j - last - 1 : j);
		last = j;
	}
	for (uint32_t j = 0; j < n; j++) {
		if (e->e[j] != E_EXC)
			continue;
		put_le(p + k, v[j], 8);
		k += 8;
	}
	return k + put_stream(p + k, (const uint64_t *)e->m, n, pl->st.dod);
}

/* ---- encoder: value columns ------------------------------------------------------- */

static inline unsigned xor_bytes(uint64_t x, unsigned *tz)
{
	if (!x) {
		*tz = 0;
		return 0;
	}
	unsigned t = (unsigned)__builtin_ctzll(x) / 8;
	*tz = t;
	return 8 - (unsigned)__builtin_clzll(x) / 8 - t;
}

/* The XOR column measured: control bytes and payload apart, as zstd meets them (the
 * control bytes repeat, and become matches rather than literals). */
static void xor_measure(const uint64_t *v, uint32_t n, struct stream *st)
{
	uint32_t hc[256] = { 0 }, hp[256] = { 0 };
	size_t pay = 0;
	unsigned tz;
	for (uint32_t j = 1; j < n; j++) {
		uint64_t x = v[j] ^ v[j - 1];
		unsigned len = xor_bytes(x, &tz);
		hc[tz << 4 | len]++;
		pay += len;
		for (x >>= 8 * tz; len--; x >>= 8)
			hp[x & 0xff]++;
	}
	st->dod = 0;
	st->bits = 64 + entropy_bits(hc, n - 1) + entropy_bits(hp, pay);
	st->bytes = 8 + (n - 1) + pay;
}

static size_t put_xor(uint8_t *p, const uint64_t *v, uint32_t n)
{
	put_le(p, v[0], 8);
	uint8_t *ctl = p + 8, *pay = ctl + (n - 1);
	for (uint32_t j = 1; j < n; j++) {
		unsigned tz, len = xor_bytes(v[j] ^ v[j - 1], &tz);
		ctl[j - 1] = (uint8_t)(tz << 4 | len);
		put_le(pay, (v[j] ^ v[j - 1]) >> (8 * tz), (int)len);
		pay += len;
	}
	return (size_t)(pay - p);
}

/*
 * Chooses and writes series s's value column at the end of vb: CONST when every value is
 * the same; else the decimal form when it has no exceptions (nothing else comes near
 * it then); else the cheapest by estimated cost of the decimal form, the bit patterns'
 * own deltas (BITS: monotone non-decimal floats) and their XORs (any floats).
 */
static int put_vcol(struct enc *e, size_t s)
{
	const struct ts_cold_input *x = &e->in[s];
	const uint64_t *v = x->v;
	uint32_t n = x->n;
	int rc;
	uint32_t j = 1;
	while (j < n && v[j] == v[0])
		j++;
	if (j == n) {
		if ((rc = buf_need(&e->vb, 8)))
			return rc;
		put_le(e->vb.p + e->vb.len, v[0], 8);
		e->vb.len += 8;
		e->kind[s] = TS_COLD_VAL_CONST;
		e->vlen[s] = 8;
		return 0;
	}
	void *m = e->m, *ex = e->e;
	rc = ts_grow(&m, &e->m_cap, n, sizeof *e->m);
	e->m = m;
	if (rc || (rc = ts_grow(&ex, &e->e_cap, n, sizeof *e->e)))
		return rc;
	e->e = ex;
	struct dec_plan pl;
	struct stream bs, xs;
	int kind = TS_COLD_VAL_DEC_DELTA;
	size_t bytes = 0;
	if (dec_plan(e, v, n, &pl)) {
		kind = pl.st.dod ? TS_COLD_VAL_DEC_DOD : TS_COLD_VAL_DEC_DELTA;
		bytes = pl.bytes;
	} else {
		pl.n_exc = 1; /* no decimal form: the others compete with nothing */
		pl.bits = HUGE_VAL;
	}
	if (pl.n_exc) {
		stream_measure(v, n, &bs);
		xor_measure(v, n, &xs);
		if (bs.bits < pl.bits && bs.bits <= xs.bits) {
			kind = bs.dod ? TS_COLD_VAL_BITS_DOD : TS_COLD_VAL_BITS_DELTA;
			bytes = bs.bytes;
		} else if (xs.bits < pl.bits && xs.bits < bs.bits) {
			kind = TS_COLD_VAL_XOR;
			bytes = xs.bytes;
		}
	}
	if ((rc = buf_need(&e->vb, bytes)))
		return rc;
	uint8_t *p = e->vb.p + e->vb.len;
	size_t k;
	switch (kind) {
	case TS_COLD_VAL_XOR: k = put_xor(p, v, n); break;
	case TS_COLD_VAL_BITS_DELTA:
	case TS_COLD_VAL_BITS_DOD: k = put_stream(p, v, n, bs.dod); break;
	default: k = put_dec(p, e, n, v, &pl); break;
	}
	assert(k == bytes);
	(void)k;
	e->vb.len += bytes;
	e->vlen[s] = (uint32_t)bytes;
	e->kind[s] = (uint8_t)kind;
	return 0;
}

/* ---- encoder: the block ----------------------------------------------------------- */

static int validate(const struct ts_cold_input *in, size_t n)
{
	if (!in || n == 0 || n > TS_COLD_MAX_SERIES)
		return TS_EINVALID;
	for (size_t s = 0; s < n; s++) {
		const struct ts_cold_input *x = &in[s];
		if (x->n == 0 || !x->t || !x->v || (s && x->id <= in[s - 1].id))
			return TS_EINVALID;
		for (uint32_t j = 1; j < x->n; j++)
			if (x->t[j] <= x->t[j - 1])
				return TS_EINVALID;
	}
	return 0;
}

/* Writes the directory (D0-D8) into p, or only counts its bytes when p is NULL. */
static size_t put_dir(uint8_t *p, const struct enc *e, int64_t min_t)
{
	size_t k = 0;
#define PUT(x) (k += p ? uv_put(p + k, (x)) : uv_len(x))
	PUT(e->n_tc);
	for (size_t i = 0; i < e->n_tc; i++)
		PUT(e->tc[i].n - 1);
	for (size_t i = 0; i < e->n_tc; i++)
		PUT((uint64_t)e->tc[i].t_first - (uint64_t)min_t);
	for (size_t i = 0; i < e->n_tc; i++)
		PUT((uint64_t)e->tc[i].t_last - (uint64_t)e->tc[i].t_first);
	for (size_t i = 0; i < e->n_tc; i++)
		PUT(e->tc[i].len);
	for (size_t s = 1; s < e->n; s++)
		PUT(e->in[s].id - e->in[s - 1].id - 1);
	for (size_t s = 0; s < e->n; s++)
		PUT(e->ref[s]);
	for (size_t s = 0; s < e->n; s++) {
		if (p)
			p[k] = e->kind[s];
		k++;
	}
	for (size_t s = 0; s < e->n; s++)
		PUT(e->vlen[s]);
#undef PUT
	return k;
}

/* Compresses body[0..raw_len) behind a header into a new block. */
static int seal(const uint8_t *body, struct ts_cold_info *info, int level, uint8_t **out,
		size_t *out_len)
{
	size_t bound = ZSTD_compressBound(info->raw_len);
	uint8_t *blk = ts_malloc(TS_COLD_HDR_LEN + bound);
	if (!blk)
		return -ENOMEM;
	ZSTD_CCtx *cc = ts_zpool_cctx();
	if (!cc) {
		ts_free(blk);
		return -ENOMEM;
	}
	size_t z = 0;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_dictIDFlag, 0)))
		z = (size_t)-1; /* cannot happen; store the body as is */
	else
		z = ZSTD_compress2(cc, blk + TS_COLD_HDR_LEN, bound, body, info->raw_len);
	ts_zpool_cctx_put(cc);
	if (ZSTD_isError(z) && ZSTD_getErrorCode(z) == ZSTD_error_memory_allocation) {
		ts_free(blk);
		return -ENOMEM;
	}
	uint8_t flags = TS_COLD_FLAG_ZSTD;
	if (ZSTD_isError(z) || z >= info->raw_len) {
		memcpy(blk + TS_COLD_HDR_LEN, body, info->raw_len);
		z = info->raw_len;
		flags = 0;
	}
	info->z_len = (uint32_t)z;
	put_header(blk, flags, info, ts_crc32c(0, blk + TS_COLD_HDR_LEN, z));
	size_t len = TS_COLD_HDR_LEN + z;
	uint8_t *fit = ts_realloc(blk, len); /* a failure only leaves the slack */
	*out = fit ? fit : blk;
	*out_len = len;
	return 0;
}

static void enc_fini(struct enc *e)
{
	ts_free(e->tb.p);
	ts_free(e->vb.p);
	ts_free(e->tc);
	ts_free(e->slots);
	ts_free(e->ref);
	ts_free(e->vlen);
	ts_free(e->kind);
	ts_free(e->m);
	ts_free(e->e);
}

int ts_cold_encode(const struct ts_cold_input *in, size_t n, int level, uint8_t **out,
		   size_t *out_len)
{
	int rc = validate(in, n);
	if (rc)
		return rc;
	struct enc e;
	memset(&e, 0, sizeof e);
	e.in = in;
	e.n = n;
	uint8_t *body = NULL;
	e.ref = ts_malloc(n * sizeof *e.ref);
	e.vlen = ts_malloc(n * sizeof *e.vlen);
	e.kind = ts_malloc(n);
	if (!e.ref || !e.vlen || !e.kind) {
		rc = -ENOMEM;
		goto out;
	}
	/* tb is never NULL, even when every column is empty (memcmp, memcpy of 0 bytes). */
	if ((rc = buf_need(&e.tb, 64)))
		goto out;
	struct ts_cold_info info = { .n_series = (uint32_t)n,
				     .first_id = in[0].id,
				     .last_id = in[n - 1].id,
				     .min_t = INT64_MAX,
				     .max_t = INT64_MIN };
	for (size_t s = 0; s < n; s++) {
		/* Its timestamps alone need n - 1 bytes: fail before any scratch of n entries. */
		if (in[s].n - 1 > TS_COLD_MAX_RAW) {
			rc = TS_ELIMIT;
			goto out;
		}
		if ((rc = put_tcol(&e, s)) || (rc = put_vcol(&e, s)))
			goto out;
		if (e.tb.len + e.vb.len > TS_COLD_MAX_RAW) {
			rc = TS_ELIMIT;
			goto out;
		}
		info.n_samples += in[s].n;
		if (in[s].t[0] < info.min_t)
			info.min_t = in[s].t[0];
		if (in[s].t[in[s].n - 1] > info.max_t)
			info.max_t = in[s].t[in[s].n - 1];
	}
	size_t dir = put_dir(NULL, &e, info.min_t);
	size_t raw = dir + e.tb.len + e.vb.len;
	if (raw > TS_COLD_MAX_RAW) {
		rc = TS_ELIMIT;
		goto out;
	}
	info.raw_len = (uint32_t)raw;
	body = ts_malloc(raw);
	if (!body) {
		rc = -ENOMEM;
		goto out;
	}
	put_dir(body, &e, info.min_t);
	memcpy(body + dir, e.tb.p, e.tb.len);
	memcpy(body + dir + e.tb.len, e.vb.p, e.vb.len);
	rc = seal(body, &info, level, out, out_len);
out:
	ts_free(body);
	enc_fini(&e);
	return rc;
}

/* ---- decoder: opening ------------------------------------------------------------- */

struct ctcol {
	int64_t t_first, t_last;
	const int64_t *ts;	    /* decoded at open (shared columns), or NULL */
	uint32_t n, off, len, refs; /* samples; bytes at raw[off .. off + len); series using it */
};

struct cser {
	uint64_t id;
	uint32_t tcol, voff, vlen; /* value column at raw[voff .. voff + vlen) */
	uint8_t kind;
};

struct ts_cold_block {
	uint8_t *raw; /* body, raw_len bytes + BODY_PAD zero bytes */
	int64_t *ts;  /* the timestamps of shared columns, decoded at open */
	struct ts_cold_info info;
	size_t mem;
	struct cser *s;	  /* info.n_series, in the same allocation as the struct */
	struct ctcol *tc; /* n_tcols, likewise */
	size_t n_tcols;
};

/* Checks the header and the CRC; the body decompressed into a new buffer of
 * info->raw_len + BODY_PAD bytes, the padding zeroed. */
static int unpack(const uint8_t *p, size_t len, struct ts_cold_info *info, uint8_t **raw)
{
	uint8_t flags;
	int rc = peek(p, len, info, &flags);
	if (rc)
		return rc;
	const uint8_t *z = p + TS_COLD_HDR_LEN;
	if (ts_crc32c(0, z, info->z_len) != (uint32_t)get_le(p + 60, 4))
		return TS_CORRUPT();
	uint8_t *b = ts_malloc((size_t)info->raw_len + BODY_PAD);
	if (!b)
		return -ENOMEM;
	memset(b + info->raw_len, 0, BODY_PAD);
	if (!(flags & TS_COLD_FLAG_ZSTD)) {
		memcpy(b, z, info->raw_len);
		*raw = b;
		return 0;
	}
	ZSTD_DCtx *dc = ts_zpool_dctx();
	if (!dc) {
		ts_free(b);
		return -ENOMEM;
	}
	size_t r = ZSTD_decompressDCtx(dc, b, info->raw_len, z, info->z_len);
	ts_zpool_dctx_put(dc);
	if (ZSTD_isError(r) || r != info->raw_len) {
		ts_free(b);
		if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		return TS_CORRUPT();
	}
	*raw = b;
	return 0;
}

int ts_cold_unpack(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len)
{
	struct ts_cold_info info;
	int rc = unpack(p, len, &info, raw);
	if (rc == 0)
		*raw_len = info.raw_len;
	return rc;
}

/* D1-D4 into b->tc: counts, time ranges (inside the header's), column lengths (within
 * what their counts allow). */
static int parse_tcols(struct ts_cold_block *b, const uint8_t **q, const uint8_t *end)
{
	const struct ts_cold_info *h = &b->info;
	uint64_t x, span = (uint64_t)h->max_t - (uint64_t)h->min_t;
	for (size_t i = 0; i < b->n_tcols; i++) {
		if (uv_get(q, end, &x) || x >= UINT32_MAX)
			return TS_CORRUPT();
		b->tc[i].n = (uint32_t)x + 1;
		b->tc[i].refs = 0;
		b->tc[i].ts = NULL;
	}
	for (size_t i = 0; i < b->n_tcols; i++) {
		if (uv_get(q, end, &x) || x > span)
			return TS_CORRUPT();
		b->tc[i].t_first = (int64_t)((uint64_t)h->min_t + x);
	}
	for (size_t i = 0; i < b->n_tcols; i++) {
		struct ctcol *c = &b->tc[i];
		/* n strictly ascending timestamps span n - 1 ms at least. */
		if (uv_get(q, end, &x) || x > (uint64_t)h->max_t - (uint64_t)c->t_first ||
		    (c->n == 1 ? x != 0 : x < c->n - 1))
			return TS_CORRUPT();
		c->t_last = (int64_t)((uint64_t)c->t_first + x);
	}
	for (size_t i = 0; i < b->n_tcols; i++) {
		struct ctcol *c = &b->tc[i];
		/* One to ten bytes per sample after the first. */
		if (uv_get(q, end, &x) || x > h->raw_len ||
		    (c->n == 1 ? x != 0 : x < c->n - 1 || x > 10 * (uint64_t)(c->n - 1)))
			return TS_CORRUPT();
		c->len = (uint32_t)x;
	}
	return 0;
}

/* D5-D8 into b->s: ids up to last_id, column numbers in order of first use, kinds,
 * value column lengths within what the kind and count allow. */
static int parse_series(struct ts_cold_block *b, const uint8_t **q, const uint8_t *end)
{
	const struct ts_cold_info *h = &b->info;
	size_t ns = h->n_series;
	uint64_t x, id = h->first_id, seen = 0;
	b->s[0].id = id;
	for (size_t i = 1; i < ns; i++) {
		if (uv_get(q, end, &x) || x >= h->last_id - id)
			return TS_CORRUPT();
		id += x + 1;
		b->s[i].id = id;
	}
	if (id != h->last_id)
		return TS_CORRUPT();
	for (size_t i = 0; i < ns; i++) {
		if (uv_get(q, end, &x) || x > seen || x >= b->n_tcols)
			return TS_CORRUPT();
		seen += x == seen;
		b->s[i].tcol = (uint32_t)x;
		b->tc[x].refs++;
	}
	if (seen != b->n_tcols || (size_t)(end - *q) < ns)
		return TS_CORRUPT();
	for (size_t i = 0; i < ns; i++) {
		b->s[i].kind = *(*q)++;
		if (b->s[i].kind > TS_COLD_VAL_BITS_DOD)
			return TS_CORRUPT();
	}
	for (size_t i = 0; i < ns; i++) {
		struct cser *s = &b->s[i];
		uint64_t n = b->tc[s->tcol].n;
		if (uv_get(q, end, &x) || x > h->raw_len)
			return TS_CORRUPT();
		int ok;
		switch (s->kind) {
		case TS_COLD_VAL_CONST: ok = x == 8; break;
		case TS_COLD_VAL_DEC_DELTA:
		case TS_COLD_VAL_DEC_DOD: ok = x >= n + 2; break; /* scale, n_exc, mantissas */
		case TS_COLD_VAL_XOR: ok = x >= n + 7 && x <= 8 + 9 * (n - 1); break;
		default: ok = x >= n && x <= 10 * n; break; /* n varints */
		}
		if (!ok)
			return TS_CORRUPT();
		s->vlen = (uint32_t)x;
	}
	return 0;
}

/* Column offsets, and the directory's totals against the header and the body. */
static int place(struct ts_cold_block *b, size_t off)
{
	const struct ts_cold_info *h = &b->info;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	for (size_t i = 0; i < b->n_tcols; i++) {
		struct ctcol *c = &b->tc[i];
		if (c->len > h->raw_len - off)
			return TS_CORRUPT();
		c->off = (uint32_t)off;
		off += c->len;
		if (c->t_first < lo)
			lo = c->t_first;
		if (c->t_last > hi)
			hi = c->t_last;
	}
	uint64_t n_samples = 0;
	for (size_t i = 0; i < h->n_series; i++) {
		struct cser *s = &b->s[i];
		if (s->vlen > h->raw_len - off)
			return TS_CORRUPT();
		s->voff = (uint32_t)off;
		off += s->vlen;
		n_samples += b->tc[s->tcol].n;
	}
	if (off != h->raw_len || n_samples != h->n_samples || lo != h->min_t || hi != h->max_t)
		return TS_CORRUPT();
	return 0;
}

static int dec_ts(const uint8_t *p, const struct ctcol *c, int64_t *t);

/*
 * Decodes the timestamp columns that several series share, once, so that decoding those
 * series copies them. The decoded arrays are bounded by the body's length (raw_len / 8
 * timestamps; columns past that are decoded per series as usual), so a block never holds
 * more than twice its body. A bad shared column fails the open.
 */
static int predecode(struct ts_cold_block *b)
{
	size_t budget = b->info.raw_len / sizeof(int64_t), total = 0;
	for (size_t i = 0; i < b->n_tcols; i++)
		if (b->tc[i].refs >= 2 && b->tc[i].n <= budget - total)
			total += b->tc[i].n;
	if (!total)
		return 0;
	int64_t *a = b->ts = ts_malloc(total * sizeof *a);
	if (!a)
		return -ENOMEM;
	b->mem += total * sizeof *a;
	total = 0;
	for (size_t i = 0; i < b->n_tcols; i++) {
		struct ctcol *c = &b->tc[i];
		if (c->refs < 2 || c->n > budget - total)
			continue;
		int rc = dec_ts(b->raw + c->off, c, a);
		if (rc)
			return rc;
		c->ts = a;
		a += c->n;
		total += c->n;
	}
	return 0;
}

/* The directory of raw (owned by the new block on success). */
static int parse(const struct ts_cold_info *info, uint8_t *raw, struct ts_cold_block **out)
{
	const uint8_t *q = raw, *end = raw + info->raw_len;
	uint64_t n_tc;
	if (uv_get(&q, end, &n_tc) || n_tc == 0 || n_tc > info->n_series)
		return TS_CORRUPT();
	/* n_series <= raw_len / 7 (peek), so these sizes cannot overflow. */
	size_t size = sizeof(struct ts_cold_block) + info->n_series * sizeof(struct cser) +
		      (size_t)n_tc * sizeof(struct ctcol);
	struct ts_cold_block *b = ts_malloc(size);
	if (!b)
		return -ENOMEM;
	b->raw = raw;
	b->info = *info;
	b->mem = size + info->raw_len + BODY_PAD;
	b->s = (struct cser *)(b + 1);
	b->tc = (struct ctcol *)(b->s + info->n_series);
	b->n_tcols = (size_t)n_tc;
	b->ts = NULL;
	int rc = parse_tcols(b, &q, end);
	if (rc == 0)
		rc = parse_series(b, &q, end);
	if (rc == 0)
		rc = place(b, (size_t)(q - raw));
	if (rc == 0)
		rc = predecode(b);
	if (rc) {
		ts_free(b->ts);
		ts_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

int ts_cold_open(const uint8_t *p, size_t len, struct ts_cold_block **out)
{
	struct ts_cold_info info;
	uint8_t *raw = NULL;
	int rc = unpack(p, len, &info, &raw);
	if (rc)
		return rc;
	rc = parse(&info, raw, out);
	if (rc)
		ts_free(raw);
	return rc;
}

void ts_cold_free(struct ts_cold_block *b)
{
	if (!b)
		return;
	ts_free(b->raw);
	ts_free(b->ts);
	ts_free(b);
}

/* ---- decoder: accessors ----------------------------------------------------------- */

size_t ts_cold_nseries(const struct ts_cold_block *b)
{
	return b->info.n_series;
}

void ts_cold_series(const struct ts_cold_block *b, size_t i, uint64_t *id, uint32_t *n,
		    int64_t *min_t, int64_t *max_t)
{
	const struct cser *s = i < b->info.n_series ? &b->s[i] : NULL;
	const struct ctcol *c = s ? &b->tc[s->tcol] : NULL;
	if (id)
		*id = s ? s->id : 0;
	if (n)
		*n = c ? c->n : 0;
	if (min_t)
		*min_t = c ? c->t_first : 0;
	if (max_t)
		*max_t = c ? c->t_last : 0;
}

long ts_cold_find(const struct ts_cold_block *b, uint64_t id)
{
	size_t lo = 0, hi = b->info.n_series;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->s[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->info.n_series && b->s[lo].id == id ? (long)lo : -1;
}

size_t ts_cold_mem(const struct ts_cold_block *b)
{
	return b->mem;
}

void ts_cold_block_info(const struct ts_cold_block *b, struct ts_cold_info *info)
{
	*info = b->info;
}

int ts_cold_value_kind(const struct ts_cold_block *b, size_t i)
{
	return i < b->info.n_series ? b->s[i].kind : -1;
}

/* ---- decoder: columns ------------------------------------------------------------- */

/*
 * The uv at q decoded from one 8-byte little-endian load (q before a column's end, so the
 * load stays in the body's padding): its length in bytes (1..8) and *out, or 0 if it is
 * longer than 8 bytes (then uv_slow). Branch-free: the terminating byte is the lowest
 * with its top bit clear; the 7-bit groups below it are packed by three shift-and-merge
 * steps (pairs, quads, all eight).
 */
static inline unsigned uv_word(const uint8_t *q, uint64_t *out)
{
	uint64_t w = load_le64(q);
	uint64_t stop = ~w & 0x8080808080808080ull;
	if (!stop)
		return 0;
	unsigned bits = (unsigned)__builtin_ctzll(stop) + 1; /* 8, 16, .. 64 */
	w = w << (64 - bits) >> (64 - bits) & 0x7f7f7f7f7f7f7f7full;
	w = (w & 0x007f007f007f007full) | (w & 0x7f007f007f007f00ull) >> 1;
	w = (w & 0x00003fff00003fffull) | (w & 0x3fff00003fff0000ull) >> 2;
	w = (w & 0x000000000fffffffull) | (w & 0x0fffffff00000000ull) >> 4;
	*out = w;
	return bits / 8;
}

/* Reads the uv at *q (*q < end is the caller's check) and advances; -1 if malformed. */
static inline int uv_next(const uint8_t **q, uint64_t *x)
{
	unsigned l = uv_word(*q, x);
	if (l) {
		*q += l;
		return 0;
	}
	*q = uv_slow(*q, x);
	return *q ? 0 : -1;
}

/*
 * How a column's remaining cnt varints, in its remaining bytes, are read: ONES when the
 * bytes equal the count (every one must be a single byte: no varint logic, no bounds
 * checks, and one test at the end that no byte had its top bit set);
 * BYTE (a predicted test for a single byte, uv_next otherwise) when nearly all are; else
 * WORD (uv_next for each, branch-free for up to 8 bytes).
 */
enum { ONES, BYTE, WORD };

static inline int loop_mode(const uint8_t *q, const uint8_t *end, uint32_t cnt)
{
	size_t left = (size_t)(end - q);
	return left == cnt ? ONES : left <= cnt + cnt / 4 ? BYTE : WORD;
}

/* Reads the k-th of the varints that start at base, now at *q, in the given mode; -1 if
 * the bytes run out or are bad. */
static inline __attribute__((always_inline)) int get_uv(const uint8_t **q, const uint8_t *end,
							const uint8_t *base, uint32_t k, int mode,
							uint64_t *x)
{
	if (mode == ONES) {
		*x = base[k];
		return 0;
	}
	if (*q >= end)
		return -1;
	if (mode == BYTE && **q < 0x80) {
		*x = *(*q)++;
		return 0;
	}
	return uv_next(q, x);
}

/* Timestamps 2 .. n - 1 of a column in one mode: -1 on bad bytes, 1 if a step was not
 * positive, else 0. */
static inline __attribute__((always_inline)) int ts_loop(const uint8_t **q, const uint8_t *end,
							 uint32_t n, int mode, uint64_t *cur,
							 uint64_t *d, int64_t *t)
{
	const uint8_t *base = *q;
	uint64_t c = *cur, dd = *d, x, ones = 0;
	int bad = 0;
	for (uint32_t j = 2; j < n; j++) {
		if (get_uv(q, end, base, j - 2, mode, &x))
			return -1;
		ones |= x;
		dd += zz_dec(x);
		uint64_t nt = c + dd;
		bad |= (int64_t)nt <= (int64_t)c;
		c = nt;
		t[j] = (int64_t)nt;
	}
	if (mode == ONES) {
		if (ones >= 0x80) /* a byte that continues a varint */
			return -1;
		*q = end;
	}
	*cur = c;
	*d = dd;
	return bad;
}

/* A timestamp column into t[0 .. c->n). The first dod (the first delta, often several
 * bytes) is read alone, then the rest in the mode its length allows. */
static int dec_ts(const uint8_t *p, const struct ctcol *c, int64_t *t)
{
	const uint8_t *q = p, *end = p + c->len;
	uint64_t cur = (uint64_t)c->t_first, d, x;
	uint32_t n = c->n;
	t[0] = c->t_first;
	if (n == 1)
		return 0;
	if (uv_next(&q, &x) || q > end)
		return TS_CORRUPT();
	d = zz_dec(x);
	if ((int64_t)(cur + d) <= (int64_t)cur)
		return TS_CORRUPT();
	cur += d;
	t[1] = (int64_t)cur;
	int rc;
	switch (loop_mode(q, end, n - 2)) {
	case ONES: rc = ts_loop(&q, end, n, ONES, &cur, &d, t); break;
	case BYTE: rc = ts_loop(&q, end, n, BYTE, &cur, &d, t); break;
	default: rc = ts_loop(&q, end, n, WORD, &cur, &d, t); break;
	}
	if (rc || q != end || cur != (uint64_t)c->t_last)
		return TS_CORRUPT();
	return 0;
}

/* Mantissas (in v as int64 bits) to doubles at scale e. */
static void dec_scale(uint64_t *v, uint32_t n, int e)
{
	if (e == 0) {
		for (uint32_t j = 0; j < n; j++)
			v[j] = dbits((double)(int64_t)v[j]);
	} else if (e < 0) {
		double dv = p10[-e];
		for (uint32_t j = 0; j < n; j++)
			v[j] = dbits((double)(int64_t)v[j] / dv);
	} else {
		double mul = p10[e];
		for (uint32_t j = 0; j < n; j++)
			v[j] = dbits((double)(int64_t)v[j] * mul);
	}
}

/* Mantissas 1 .. n - 1 in one mode (v[0] holds m_0); -1 on bad bytes. */
static inline __attribute__((always_inline)) int m_loop(const uint8_t **q, const uint8_t *end,
							uint32_t n, int mode, int dod, uint64_t *v)
{
	const uint8_t *base = *q;
	uint64_t m = v[0], d = 0, x, dmask = dod ? ~0ull : 0, ones = 0;
	for (uint32_t j = 1; j < n; j++) {
		if (get_uv(q, end, base, j - 1, mode, &x))
			return -1;
		ones |= x;
		d = (d & dmask) + zz_dec(x);
		m += d;
		v[j] = m;
	}
	if (mode == ONES) {
		if (ones >= 0x80)
			return -1;
		*q = end;
	}
	return 0;
}

/* The mantissa stream into v (as int64 bits), m_0 read alone as in dec_ts. */
static int dec_mantissas(const uint8_t *q, const uint8_t *end, uint32_t n, int dod, uint64_t *v)
{
	uint64_t x;
	int rc;
	if (q >= end || uv_next(&q, &x) || q > end)
		return TS_CORRUPT();
	v[0] = zz_dec(x);
	switch (loop_mode(q, end, n - 1)) {
	case ONES: rc = m_loop(&q, end, n, ONES, dod, v); break;
	case BYTE: rc = m_loop(&q, end, n, BYTE, dod, v); break;
	default: rc = m_loop(&q, end, n, WORD, dod, v); break;
	}
	return rc || q != end ? TS_CORRUPT() : 0;
}

static int dec_decimal(const uint8_t *p, uint32_t len, uint32_t n, int dod, uint64_t *v)
{
	const uint8_t *q = p + 1, *end = p + len;
	unsigned scale = p[0];
	uint64_t n_exc, g;
	if (scale > 2 * SCALE_BIAS || uv_get(&q, end, &n_exc) || n_exc > n)
		return TS_CORRUPT();
	const uint8_t *gaps = q;
	uint64_t pos = 0; /* the first position the next exception may take */
	for (uint64_t k = 0; k < n_exc; k++) {
		if (uv_get(&q, end, &g) || g >= n - pos)
			return TS_CORRUPT();
		pos += g + 1;
	}
	if ((uint64_t)(end - q) < 8 * n_exc)
		return TS_CORRUPT();
	const uint8_t *bits = q;
	q += 8 * n_exc;
	int rc = dec_mantissas(q, end, n, dod, v);
	if (rc)
		return rc;
	dec_scale(v, n, (int)scale - SCALE_BIAS);
	q = gaps;
	pos = 0;
	for (uint64_t k = 0; k < n_exc; k++) {
		uv_get(&q, end, &g); /* checked above */
		pos += g;
		v[pos++] = get_le(bits + 8 * k, 8);
	}
	return 0;
}

static const uint64_t byte_mask[9] = {
	0,
	0xff,
	0xffff,
	0xffffff,
	0xffffffffull,
	0xffffffffffull,
	0xffffffffffffull,
	0xffffffffffffffull,
	~0ull,
};

static int dec_xor(const uint8_t *p, uint32_t len, uint32_t n, uint64_t *v)
{
	const uint8_t *ctl = p + 8, *pay = ctl + (n - 1), *end = p + len;
	uint64_t x = get_le(p, 8);
	v[0] = x;
	for (uint32_t j = 1; j < n; j++) {
		unsigned c = ctl[j - 1], l = c & 15, tz = c >> 4;
		if (l > 8 || tz + l > 8 || (l == 0 && c) || l > (size_t)(end - pay))
			return TS_CORRUPT();
		/* An 8-byte load at pay <= end stays in the body's padding. */
		x ^= (load_le64(pay) & byte_mask[l]) << (8 * tz);
		pay += l;
		v[j] = x;
	}
	if (pay != end)
		return TS_CORRUPT();
	return 0;
}

int ts_cold_decode(const struct ts_cold_block *b, size_t i, int64_t *t, uint64_t *v)
{
	if (i >= b->info.n_series)
		return TS_EINVALID;
	const struct cser *s = &b->s[i];
	const struct ctcol *c = &b->tc[s->tcol];
	int rc = 0;
	if (c->ts)
		memcpy(t, c->ts, (size_t)c->n * sizeof *t);
	else
		rc = dec_ts(b->raw + c->off, c, t);
	if (rc)
		return rc;
	const uint8_t *p = b->raw + s->voff;
	switch (s->kind) {
	case TS_COLD_VAL_CONST: {
		uint64_t x = get_le(p, 8);
		for (uint32_t j = 0; j < c->n; j++)
			v[j] = x;
		return 0;
	}
	case TS_COLD_VAL_DEC_DELTA: return dec_decimal(p, s->vlen, c->n, 0, v);
	case TS_COLD_VAL_DEC_DOD: return dec_decimal(p, s->vlen, c->n, 1, v);
	case TS_COLD_VAL_XOR: return dec_xor(p, s->vlen, c->n, v);
	default: return dec_mantissas(p, p + s->vlen, c->n, s->kind == TS_COLD_VAL_BITS_DOD, v);
	}
}
