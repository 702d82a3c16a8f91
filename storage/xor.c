/*
 * xor.c - the Prometheus XOR chunk codec (Gorilla compression with Prometheus'
 * millisecond buckets), byte-compatible with tsdb/chunkenc's XORChunk.
 *
 * Bit stream (MSB first; bit layout table in xor.h):
 *   sample 0   zigzag varint t0 (whole bytes), 64 raw bits of v0
 *   sample 1   uvarint t1-t0 (whole bytes), value XOR
 *   sample k   delta-of-delta dod = (t_k - t_k-1) - (t_k-1 - t_k-2):
 *                0                      dod == 0
 *                10   + 14 bits         -8191 ..   8192
 *                110  + 17 bits        -65535 ..  65536
 *                1110 + 20 bits       -524287 .. 524288
 *                1111 + 64 bits         anything else
 *              then the value XOR x = v_k ^ v_k-1:
 *                0                      x == 0
 *                10 + (64-L-T) bits     x fits the current window (L leading, T trailing
 *                                       zeros, L <= clz(x) and T <= ctz(x))
 *                11 + L:5 + len:6 + bits  a new window; L capped at 31, len 64 written
 *                                       as 0
 * Varints are written byte by byte at the current bit position, like Prometheus'
 * bstream.writeByte; in practice that position is always a byte boundary.
 * Time arithmetic is unsigned (mod 2^64), as in Go, so any int64 sequence round-trips.
 *
 * Chunk length: Prometheus' bstream.writeByte always appends the byte after the one it
 * completes, so when a sample ends with a whole-byte write (64 raw bits of v0, or value
 * bits whose count is a multiple of 8) exactly on a byte boundary, its chunk carries one
 * more, empty, byte. tail_pad records that, and ts_xor_enc_bytes() counts it, so our
 * chunks are Prometheus' byte for byte, length included (the 1-sample chunk is always
 * 2 + varint + 8 + 1 bytes). Decoders ignore bytes after the last sample.
 *
 * Encoder invariants: every bit of buf at or after bit nbits is zero (so the zero
 * padding of the last byte, and tail_pad's empty byte, are already there), buf[0..2)
 * always holds the sample count, and cap >= nbits/8 + TS_XOR_MAX_SAMPLE_BYTES + 8 before
 * each append writes, so one append never fails half way: -ENOMEM happens before any
 * change. Writes are 8-byte big-endian word stores, hence the 8 bytes of slack. The
 * buffer starts at 32 bytes and grows by a quarter.
 *
 * Decoder: reads 64-bit big-endian windows (57 or more usable bits) at any bit
 * position. The hot path (step_fast) handles a sample only when every window it loads
 * lies inside buf[0..len), so a sample decoded there cannot have been cut short; it is
 * branchy on purpose so the bit position, the loop-carried dependency, advances by
 * predicted constants. Everything else (the two varint samples, the last bytes, 64-bit
 * dods, bad windows) goes through step_slow, whose windows are assembled byte by byte
 * with zero fill past the end, followed by one check per sample that the bits consumed
 * exist. Nothing reads outside buf[0..len). The value window starts as L = T = 0 (64
 * bits), as in Prometheus' iterator; a '11' whose L + len exceeds 64 is rejected as
 * corrupt (Prometheus' encoder never writes one; its decoder would wrap around).
 */
#include "storage/xor.h"

#include <errno.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"

#define ENC_SLACK 8	 /* bytes past the last written one touched by a word store */
#define ENC_FIRST_CAP 32 /* first allocation; grows by a quarter from there */

static inline uint64_t load_be64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static inline void store_be64(uint8_t *p, uint64_t w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	memcpy(p, &w, 8);
}

/* ---- encoder ---------------------------------------------------------------------- */

/* A bit writer local to one append. acc holds the pending bits MSB first, the first of
 * them being bit 7 of p[0]; n of them are meaningful, the rest are zero. Each put first
 * stores acc as one 8-byte word and drops the whole bytes it holds (stores only, so no
 * store-to-load forwarding stalls between puts); bytes past the last bit are stored as
 * zeros, which they already are. The bits already in the first byte are not in acc:
 * they are merged back by bw_finish(), so no write waits for that byte to be read (in
 * a head with many series, it is usually not in cache). */
struct bw {
	uint8_t *p, *first;
	uint64_t acc;
	unsigned n;
	uint8_t old;
};

static inline void bw_start(struct bw *w, uint8_t *buf, uint32_t pos)
{
	w->p = w->first = buf + (pos >> 3);
	w->old = w->p[0]; /* the partial byte; its later bits are zero */
	w->n = pos & 7;
	w->acc = 0;
}

/* Appends the low nb bits of v (v < 2^nb, 1 <= nb <= 56; n stays <= 63). */
static inline void bw_put(struct bw *w, uint64_t v, unsigned nb)
{
	store_be64(w->p, w->acc);
	w->p += w->n >> 3;
	w->acc <<= w->n & ~7u;
	w->n &= 7;
	w->acc |= v << (64 - w->n - nb);
	w->n += nb;
}

/* Appends the low nb bits of v, 1 <= nb <= 64. */
static inline void bw_put_wide(struct bw *w, uint64_t v, unsigned nb)
{
	if (nb > 56) {
		bw_put(w, v >> 32, nb - 32);
		v &= 0xffffffffu;
		nb = 32;
	}
	bw_put(w, v, nb);
}

/* Stores what is pending; returns the bit position reached. */
static inline uint32_t bw_finish(struct bw *w, const uint8_t *buf)
{
	store_be64(w->p, w->acc);
	*w->first |= w->old;
	return (uint32_t)(w->p - buf) * 8 + w->n;
}

static inline void bw_uvarint(struct bw *w, uint64_t x)
{
	while (x >= 0x80) {
		bw_put(w, (x & 0x7f) | 0x80, 8);
		x >>= 7;
	}
	bw_put(w, x, 8);
}

/* Writes the value XOR. Returns 1 if it ended with a whole number of bytes of payload
 * (Prometheus' bstream then ends with an empty byte if that left it byte-aligned). */
static inline unsigned put_value(struct ts_xor_enc *e, struct bw *w, uint64_t v_bits)
{
	uint64_t x = v_bits ^ e->v;
	if (!x) {
		bw_put(w, 0, 1);
		return 0;
	}
	unsigned lead = (unsigned)__builtin_clzll(x);
	unsigned trail = (unsigned)__builtin_ctzll(x);
	if (lead > 31)
		lead = 31;
	/* No window yet (leading 0xff) fails the first test, as lead <= 31. */
	if (lead >= e->leading && trail >= e->trailing) {
		unsigned mb = 64u - e->leading - e->trailing;
		uint64_t bits = x >> e->trailing;
		if (mb <= 54) {
			bw_put(w, 2ull << mb | bits, mb + 2);
		} else {
			bw_put(w, 2, 2);
			bw_put_wide(w, bits, mb);
		}
		return (mb & 7) == 0;
	}
	unsigned sig = 64 - lead - trail;
	uint64_t hdr = 3u << 11 | lead << 6 | (sig & 63);
	if (sig <= 43) {
		bw_put(w, hdr << sig | x >> trail, 13 + sig);
	} else {
		bw_put(w, hdr, 13);
		bw_put_wide(w, x >> trail, sig);
	}
	e->leading = (uint8_t)lead;
	e->trailing = (uint8_t)trail;
	return (sig & 7) == 0;
}

void ts_xor_enc_init(struct ts_xor_enc *e)
{
	memset(e, 0, sizeof *e);
	e->leading = 0xff;
}

void ts_xor_enc_fini(struct ts_xor_enc *e)
{
	if (!e)
		return;
	ts_free(e->buf);
	memset(e, 0, sizeof *e);
}

/* Room for one more sample starting at bit pos: the buffer is never touched past it. */
static inline int has_room(const struct ts_xor_enc *e, uint32_t pos)
{
	return (size_t)(pos >> 3) + TS_XOR_MAX_SAMPLE_BYTES + ENC_SLACK <= e->cap;
}

/* Grows the buffer for one more sample; the only step of an append that can fail. */
static int reserve(struct ts_xor_enc *e, uint32_t pos)
{
	if (has_room(e, pos))
		return 0;
	size_t need = (size_t)(pos >> 3) + TS_XOR_MAX_SAMPLE_BYTES + ENC_SLACK;
	/* A quarter more each time, not double: every series holds an open chunk, so at
	 * 100k series doubling left a third of the head memory unused. A 120-sample chunk
	 * reaches its size in about a dozen steps. */
	size_t cap = e->cap ? (size_t)e->cap + e->cap / 4 : ENC_FIRST_CAP;
	while (cap < need)
		cap += cap / 4;
	cap = (cap + 15) & ~(size_t)15;
	uint8_t *nb = ts_realloc(e->buf, cap);
	if (!nb)
		return -ENOMEM;
	memset(nb + e->cap, 0, cap - e->cap);
	e->buf = nb;
	e->cap = (uint32_t)cap;
	return 0;
}

/* Records a sample written up to bit pos. */
static inline void commit(struct ts_xor_enc *e, uint32_t pos, unsigned byte_end, int64_t t_ms,
			  uint64_t delta, uint64_t v_bits)
{
	e->nbits = pos;
	e->tail_pad = byte_end && (pos & 7) == 0;
	e->t = t_ms;
	e->t_delta = (int64_t)delta;
	e->v = v_bits;
	e->n++;
	e->buf[0] = (uint8_t)(e->n >> 8);
	e->buf[1] = (uint8_t)e->n;
}

/* A sample after the second, with room reserved: the hot path, which calls nothing. */
static inline __attribute__((always_inline)) void append_dod(struct ts_xor_enc *e, int64_t t_ms,
							     uint64_t v_bits)
{
	struct bw w;
	uint64_t delta = (uint64_t)t_ms - (uint64_t)e->t;
	uint64_t dod = delta - (uint64_t)e->t_delta;
	bw_start(&w, e->buf, e->nbits);
	if (dod == 0)
		bw_put(&w, 0, 1);
	else if (dod + 8191 <= 16383)
		bw_put(&w, 0x2ull << 14 | (dod & 0x3fff), 16);
	else if (dod + 65535 <= 131071)
		bw_put(&w, 0x6ull << 17 | (dod & 0x1ffff), 20);
	else if (dod + 524287 <= 1048575)
		bw_put(&w, 0xeull << 20 | (dod & 0xfffff), 24);
	else {
		bw_put(&w, 0xf, 4);
		bw_put_wide(&w, dod, 64);
	}
	unsigned byte_end = put_value(e, &w, v_bits);
	commit(e, bw_finish(&w, e->buf), byte_end, t_ms, delta, v_bits);
}

/* Everything but the hot path: a full chunk, growth, the first two samples. Kept out of
 * line so the hot path needs no stack frame. */
static __attribute__((noinline)) int append_slow(struct ts_xor_enc *e, int64_t t_ms,
						 uint64_t v_bits)
{
	if (e->n == TS_XOR_MAX_SAMPLES)
		return TS_EFULL;
	/* With n == 0 the header is all there is, whatever a zeroed struct says. */
	uint32_t pos = e->n ? e->nbits : 16;
	int rc = reserve(e, pos);
	if (rc)
		return rc;
	if (e->n >= 2) {
		append_dod(e, t_ms, v_bits);
		return 0;
	}
	struct bw w;
	unsigned byte_end;
	uint64_t delta = (uint64_t)t_ms - (uint64_t)e->t;
	if (e->n == 1) {
		bw_start(&w, e->buf, pos);
		bw_uvarint(&w, delta);
		byte_end = put_value(e, &w, v_bits);
	} else {
		uint64_t zz = (uint64_t)t_ms << 1 ^ (t_ms < 0 ? ~0ull : 0);
		memset(e->buf, 0, e->cap); /* keep the zero-past-nbits invariant for any struct */
		bw_start(&w, e->buf, pos);
		bw_uvarint(&w, zz);
		bw_put_wide(&w, v_bits, 64);
		e->leading = 0xff;
		e->trailing = 0;
		delta = 0;
		byte_end = 1;
	}
	commit(e, bw_finish(&w, e->buf), byte_end, t_ms, delta, v_bits);
	return 0;
}

int ts_xor_append(struct ts_xor_enc *e, int64_t t_ms, uint64_t v_bits)
{
	if (e->n >= 2 && e->n < TS_XOR_MAX_SAMPLES && has_room(e, e->nbits)) {
		append_dod(e, t_ms, v_bits);
		return 0;
	}
	return append_slow(e, t_ms, v_bits);
}

/* ---- decoder ---------------------------------------------------------------------- */

/* 64 bits starting at bit pos, which must satisfy pos/8 + 8 <= len. */
static inline uint64_t peek_fast(const uint8_t *buf, size_t pos)
{
	return load_be64(buf + (pos >> 3)) << (pos & 7);
}

/* 64 bits starting at bit pos, zeros past the end of the buffer. */
static uint64_t peek_tail(const uint8_t *buf, size_t len, size_t pos)
{
	size_t i = pos >> 3;
	uint64_t w = 0;
	for (size_t k = i; k < i + 8; k++)
		w = w << 8 | (k < len ? buf[k] : 0);
	return w << (pos & 7);
}

/* 64 bits starting at bit pos, anywhere. */
static inline uint64_t peek(const uint8_t *buf, size_t len, size_t pos)
{
	if ((pos >> 3) + 8 <= len)
		return peek_fast(buf, pos);
	return peek_tail(buf, len, pos);
}

/* Reads nb bits, 1 <= nb <= 64 (zeros past the end: callers check the position). */
static inline uint64_t get_bits(const uint8_t *buf, size_t len, size_t *pos, unsigned nb)
{
	uint64_t v;
	if (nb <= 57) {
		v = peek(buf, len, *pos) >> (64 - nb);
		*pos += nb;
		return v;
	}
	v = peek(buf, len, *pos) >> 32;
	*pos += 32;
	v = v << (nb - 32) | peek(buf, len, *pos) >> (96 - nb);
	*pos += nb - 32;
	return v;
}

/* Reads a Go varint (at most 10 bytes, the 10th <= 1); -1 if malformed or cut short.
 * Varints sit on byte boundaries in every chunk Prometheus or we write, so that case
 * reads bytes directly; any other position goes through the bit reader. */
static int get_uvarint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t x = 0;
	int aligned = (*pos & 7) == 0;
	for (unsigned i = 0, s = 0; i < 10; i++, s += 7) {
		if (*pos + 8 > len * 8)
			return -1;
		uint64_t b = aligned ? buf[*pos >> 3] : get_bits(buf, len, pos, 8);
		if (aligned)
			*pos += 8;
		if (b < 0x80) {
			if (i == 9 && b > 1)
				return -1;
			*out = x | b << s;
			return 0;
		}
		x |= (b & 0x7f) << s;
	}
	return -1;
}

struct dstate {
	size_t pos;
	uint64_t t, t_delta, v;
	unsigned leading, trailing;
};

/* The value XOR of one sample. Its first bit is the top bit of w, which holds avail
 * valid bits starting at s->pos. Returns 0, or -1 on an impossible window. */
static inline int get_value(const uint8_t *buf, size_t len, struct dstate *s, uint64_t w,
			    unsigned avail)
{
	if (!(w >> 63)) {
		s->pos += 1;
		return 0;
	}
	unsigned hdr = 2;
	if (w & 1ull << 62) {
		unsigned lead = (unsigned)(w >> 57) & 31;
		unsigned sig = (unsigned)(w >> 51) & 63;
		if (sig == 0)
			sig = 64;
		if (lead + sig > 64)
			return -1;
		s->leading = lead;
		s->trailing = 64 - lead - sig;
		hdr = 13;
	}
	unsigned mb = 64 - s->leading - s->trailing;
	uint64_t bits;
	if (hdr + mb <= avail) {
		bits = w << hdr >> (64 - mb);
		s->pos += hdr + mb;
	} else {
		s->pos += hdr;
		bits = get_bits(buf, len, &s->pos, mb);
	}
	s->v ^= bits << s->trailing;
	return 0;
}

/* One sample after the second, on the checked path: delta-of-delta then value. The
 * caller checks that the bits consumed exist. Returns 0 or -1. */
static int get_sample(const uint8_t *buf, size_t len, struct dstate *s)
{
	uint64_t w = peek(buf, len, s->pos);
	/* Leading ones of w, at most 4. */
	unsigned ones = (unsigned)__builtin_clzll(~w | 1ull << 59);
	if (ones < 4) {
		/* 0 | 10+14 | 110+17 | 1110+20; sz 0 reads nothing. */
		unsigned sz = ones ? 3 * ones + 11 : 0;
		unsigned used = ones + 1 + sz;
		uint64_t raw = w << (ones + 1) >> 1 >> (63 - sz);
		uint64_t full = 1ull << sz;
		/* An n-bit field holds -(2^(n-1)-1) .. 2^(n-1). */
		s->t_delta += raw - (raw > full >> 1 ? full : 0);
		s->t += s->t_delta;
		s->pos += used;
		return get_value(buf, len, s, w << used, 57 - used);
	}
	s->pos += 4;
	s->t_delta += get_bits(buf, len, &s->pos, 64);
	s->t += s->t_delta;
	return get_value(buf, len, s, peek(buf, len, s->pos), 57);
}

int ts_xor_it_init(struct ts_xor_it *it, const uint8_t *buf, size_t len)
{
	memset(it, 0, sizeof *it);
	it->buf = buf;
	it->len = len;
	it->pos = 16;
	if (len < 2) {
		it->err = TS_ECORRUPT;
		return TS_CORRUPT();
	}
	it->n = (uint16_t)(buf[0] << 8 | buf[1]);
	return 0;
}

static int fail(struct ts_xor_it *it)
{
	it->err = TS_CORRUPT();
	return it->err;
}

/* The first two samples, whose time fields are varints. */
static int next_head(struct ts_xor_it *it, struct dstate *s)
{
	uint64_t x;
	if (get_uvarint(it->buf, it->len, &s->pos, &x))
		return -1;
	if (it->i == 0) {
		s->t = x >> 1 ^ (0 - (x & 1));
		s->v = get_bits(it->buf, it->len, &s->pos, 64);
		return 0;
	}
	s->t_delta = x;
	s->t += x;
	return get_value(it->buf, it->len, s, peek(it->buf, it->len, s->pos), 57);
}

static inline void load_state(const struct ts_xor_it *it, struct dstate *s)
{
	s->pos = it->pos;
	s->t = (uint64_t)it->t;
	s->t_delta = (uint64_t)it->t_delta;
	s->v = it->v;
	s->leading = it->leading;
	s->trailing = it->trailing;
}

static inline void save_state(struct ts_xor_it *it, const struct dstate *s)
{
	it->pos = s->pos;
	it->t = (int64_t)s->t;
	it->t_delta = (int64_t)s->t_delta;
	it->v = s->v;
	it->leading = (uint8_t)s->leading;
	it->trailing = (uint8_t)s->trailing;
	it->i++;
}

/* The value part of step_fast(): w holds the bits from pos on (57 - used valid). */
static inline int step_fast_value(struct ts_xor_it *it, size_t pos, uint64_t w, unsigned used,
				  uint64_t dod)
{
	if (w >> 63) {
		unsigned lead = it->leading, trail = it->trailing, hdr = 2;
		if (w & 1ull << 62) {
			unsigned sig = (unsigned)(w >> 51) & 63;
			lead = (unsigned)(w >> 57) & 31;
			if (sig == 0)
				sig = 64;
			if (lead + sig > 64)
				return 0;
			trail = 64 - lead - sig;
			hdr = 13;
		}
		unsigned mb = 64 - lead - trail;
		uint64_t bits;
		if (used + hdr + mb <= 57) {
			bits = w << hdr >> (64 - mb);
		} else {
			/* The bits run past the first window: load more if the buffer has it. */
			size_t at = pos + hdr;
			if (((at + mb) >> 3) + 8 > it->len)
				return 0;
			if (mb <= 57)
				bits = peek_fast(it->buf, at) >> (64 - mb);
			else
				bits = peek_fast(it->buf, at) >> 32 << (mb - 32) |
				       peek_fast(it->buf, at + 32) >> (96 - mb);
		}
		pos += hdr + mb;
		it->v ^= bits << trail;
		it->leading = (uint8_t)lead;
		it->trailing = (uint8_t)trail;
	} else {
		pos += 1;
	}
	uint64_t td = (uint64_t)it->t_delta + dod;
	it->t_delta = (int64_t)td;
	it->t = (int64_t)((uint64_t)it->t + td);
	it->pos = pos;
	it->i++;
	return 1;
}

/* An n-bit delta-of-delta field holds -(2^(n-1)-1) .. 2^(n-1). */
static inline uint64_t dod_field(uint64_t w, unsigned prefix, unsigned n)
{
	uint64_t raw = w << prefix >> (64 - n);
	return raw > 1ull << (n - 1) ? raw - (1ull << n) : raw;
}

/* The hot path: one sample after the second whose bits lie in whole 8-byte windows
 * inside the buffer (so a sample decoded from them cannot have been cut short). Returns
 * 1 having stepped, or 0 having changed nothing, leaving the sample to step_slow()
 * (the last bytes, first samples, 64-bit dods, bad windows, errors).
 * Same format as get_sample(), but branchy on purpose: each predicted branch adds a
 * constant to the bit position, so the next sample's load does not wait for this one's
 * bits to be decoded (the position is the loop-carried dependency). */
static inline int step_fast(struct ts_xor_it *it)
{
	size_t pos = it->pos;
	if (!(it->i >= 2 && it->i < it->n && it->err == 0 && (pos >> 3) + 8 <= it->len))
		return 0;
	uint64_t w = peek_fast(it->buf, pos);
	if (!(w >> 63))
		return step_fast_value(it, pos + 1, w << 1, 1, 0);
	if (!(w & 1ull << 62))
		return step_fast_value(it, pos + 16, w << 16, 16, dod_field(w, 2, 14));
	if (!(w & 1ull << 61))
		return step_fast_value(it, pos + 20, w << 20, 20, dod_field(w, 3, 17));
	if (!(w & 1ull << 60))
		return step_fast_value(it, pos + 24, w << 24, 24, dod_field(w, 4, 20));
	return 0;
}

/* Every other case, with bounds-checked reads. 1, 0 at the end, or TS_ECORRUPT. */
static int step_slow(struct ts_xor_it *it)
{
	if (it->err)
		return it->err;
	if (it->i >= it->n)
		return 0;
	struct dstate s;
	load_state(it, &s);
	int rc = it->i >= 2 ? get_sample(it->buf, it->len, &s) : next_head(it, &s);
	if (rc || s.pos > it->len * 8)
		return fail(it);
	save_state(it, &s);
	return 1;
}

int ts_xor_next(struct ts_xor_it *it)
{
	if (step_fast(it))
		return 1;
	return step_slow(it);
}

int ts_xor_seek(struct ts_xor_it *it, int64_t t_ms)
{
	if (it->err)
		return it->err;
	while (it->i == 0 || it->t < t_ms) {
		if (step_fast(it))
			continue;
		int rc = step_slow(it);
		if (rc != 1)
			return rc;
	}
	return 1;
}

int ts_xor_count(const uint8_t *buf, size_t len)
{
	if (len < 2)
		return -1;
	return buf[0] << 8 | buf[1];
}
