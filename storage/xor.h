/*
 * xor.h - the Prometheus XOR chunk codec (Gorilla), byte-compatible with Prometheus'
 * tsdb/chunkenc XORChunk in both directions.
 *
 * Layout (bit-packed, MSB first after the header):
 *   | off | size    | field                                                   |
 *   |-----|---------|---------------------------------------------------------|
 *   | 0   | 2       | uint16 BE number of samples                             |
 *   | 2   | varint  | t0, zigzag varint                                       |
 *   |     | 8       | v0, raw IEEE-754 bits (big-endian)                      |
 *   |     | uvarint | t1 - t0                                                 |
 *   |     | bits    | v1 XOR-coded against v0                                 |
 *   |     | bits    | per further sample: delta-of-delta (0 | 10+14 | 110+17 |
 *   |     |         | 1110+20 | 1111+64) then XOR value (0 | 10+meaningful bits |
 *   |     |         | 11 + 5-bit leading + 6-bit length (64 as 0) + bits)     |
 * See ../shared/PROTOCOLS.md. Values are carried as raw uint64 bits everywhere so NaN
 * payloads (the stale marker 0x7ff0000000000002) survive bit-exact.
 */
#ifndef TS_STORAGE_XOR_H
#define TS_STORAGE_XOR_H

#include <stddef.h>
#include <stdint.h>

#define TS_XOR_MAX_SAMPLES 65535 /* the header's uint16 */

/* Encoder state. The byte buffer is owned by the encoder (grown with ts_realloc).
 * Sizes are kept small because one encoder lives in every active series' head. */
struct ts_xor_enc {
	uint8_t *buf;	 /* owned; NULL until the first successful append, from then on
			     * buf[0..ts_xor_enc_bytes()) is a valid chunk */
	uint32_t cap;	 /* bytes allocated */
	uint32_t nbits;	 /* bits written, header included */
	uint16_t n;	 /* samples appended */
	uint8_t leading; /* current XOR window; leading == 0xff means "no window yet" */
	uint8_t trailing;
	uint8_t tail_pad; /* 1 when the chunk ends in an empty byte, as Prometheus' bstream
			     * leaves it after writing a whole byte that ends on a byte boundary */
	int64_t t;	  /* last timestamp */
	int64_t t_delta;  /* last t delta */
	uint64_t v;	  /* last value bits */
};

/* Starts an empty chunk. Allocates nothing until the first append. Cannot fail. */
void ts_xor_enc_init(struct ts_xor_enc *e);
/* Frees the buffer; the struct may be re-initialised. Accepts a zeroed struct. */
void ts_xor_enc_fini(struct ts_xor_enc *e);
/* Appends one sample. Timestamps must not decrease (caller's job; not checked here).
 * Returns 0, -ENOMEM (state unchanged), or TS_EFULL when n == TS_XOR_MAX_SAMPLES. */
int ts_xor_append(struct ts_xor_enc *e, int64_t t_ms, uint64_t v_bits);
/* Size in bytes of the chunk so far (whole bytes; the last one zero-padded). With n == 0
 * it is 2 (the empty chunk is two zero bytes) although buf may still be NULL. */
static inline size_t ts_xor_enc_bytes(const struct ts_xor_enc *e)
{
	return e->n ? (e->nbits + 7) / 8 + e->tail_pad : 2;
}
/* Upper bound of bytes the next append may add; used to cut chunks before a hard cap. */
#define TS_XOR_MAX_SAMPLE_BYTES 20

/* Decoding iterator over a chunk held by the caller (borrowed: buf must stay valid and
 * unchanged while the iterator is used). Allocates nothing. */
struct ts_xor_it {
	const uint8_t *buf;
	size_t len;
	size_t pos;    /* bit position of the next read */
	uint16_t n, i; /* samples in chunk, samples read */
	uint8_t leading, trailing;
	int err;   /* sticky: 0 or TS_ECORRUPT */
	int64_t t; /* current sample, valid after ts_xor_next returned 1 */
	int64_t t_delta;
	uint64_t v;
};

/* Returns 0, or TS_ECORRUPT if len < 2. An empty chunk (n == 0) is valid. */
int ts_xor_it_init(struct ts_xor_it *it, const uint8_t *buf, size_t len);
/* Advances to the next sample: 1 = it->t/it->v hold it, 0 = end, TS_ECORRUPT if the bytes
 * run out or are inconsistent (never reads past buf[len)). */
int ts_xor_next(struct ts_xor_it *it);
/* Advances until it->t >= t_ms (stays put if the current sample already is).
 * Returns 1 if positioned on such a sample, 0 if the chunk ends first, or TS_ECORRUPT. */
int ts_xor_seek(struct ts_xor_it *it, int64_t t_ms);
/* Number of samples in a chunk header, or -1 if len < 2. */
int ts_xor_count(const uint8_t *buf, size_t len);

#endif
