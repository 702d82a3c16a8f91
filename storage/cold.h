/*
 * cold.h - the cold block codec: the samples of a group of series (consecutive ids), once
 * sealed, rewritten column by column into one zstd-compressed block.
 *
 * A block is a fixed header (little-endian, uncompressed) and a body, stored as one zstd
 * frame (flag bit 0) or as is (when zstd would not make it smaller):
 *   | off | size  | field                                                          |
 *   |-----|-------|----------------------------------------------------------------|
 *   | 0   | 4     | magic "TSCB"                                                   |
 *   | 4   | 1     | format version (1)                                             |
 *   | 5   | 1     | flags: bit 0 = body is one zstd frame; other bits 0            |
 *   | 6   | 2     | reserved, 0                                                    |
 *   | 8   | 4     | n_series, uint32 (>= 1)                                        |
 *   | 12  | 4     | raw_len: body bytes once decompressed, uint32 (<= 64 MiB)      |
 *   | 16  | 8     | first_id: id of series 0, uint64                               |
 *   | 24  | 8     | last_id: id of the last series, uint64                         |
 *   | 32  | 8     | min_t ms: smallest timestamp, int64                            |
 *   | 40  | 8     | max_t ms: largest timestamp, int64                             |
 *   | 48  | 8     | n_samples: samples of all series, uint64                       |
 *   | 56  | 4     | z_len: stored body bytes = block length - 64, uint32           |
 *   | 60  | 4     | CRC32C of the stored body (bytes 64 ..), uint32                |
 *   | 64  | z_len | body: a zstd frame of raw_len bytes (no checksum, dictionary   |
 *   |     |       | id or content size), or raw_len bytes as is (z_len == raw_len) |
 *
 * Body (raw_len bytes). uv = unsigned LEB128 varint as Go's encoding/binary writes it (at
 * most 10 bytes, the 10th <= 1); zz = the zigzag mapping of an int64 (0,-1,1,-2 -> 0,1,2,3)
 * written as uv. Arithmetic on times and mantissas is mod 2^64. The directory comes first,
 * each table stored field by field (all of one field, then the next) so zstd sees alike
 * bytes together:
 *   | part | count          | field                                                    |
 *   |------|----------------|----------------------------------------------------------|
 *   | D0   | 1              | uv n_tcols: distinct timestamp columns, 1 .. n_series    |
 *   | D1   | n_tcols        | uv samples in the column - 1                             |
 *   | D2   | n_tcols        | uv first timestamp - min_t                               |
 *   | D3   | n_tcols        | uv last timestamp - first timestamp                      |
 *   | D4   | n_tcols        | uv byte length of the column                             |
 *   | D5   | n_series - 1   | uv id - previous id - 1 (series 0 has first_id)          |
 *   | D6   | n_series       | uv timestamp column of the series; columns are numbered  |
 *   |      |                | in order of first use (0, then at most 1 + the largest)  |
 *   | D7   | n_series       | 1 byte value kind (TS_COLD_VAL_*)                        |
 *   | D8   | n_series       | uv byte length of the value column                       |
 *   | T    | n_tcols        | the timestamp columns, in number order                   |
 *   | V    | n_series       | the value columns, in series order; they end the body    |
 * A series has as many samples as its timestamp column; series scraped together share
 * one column (stored once per block). Its min_t and max_t are the column's first and last
 * timestamps.
 *
 * Timestamp column of n samples (first timestamp t_0 in D2): n - 1 zz, the j-th being
 * (t_j - t_j-1) - (t_j-1 - t_j-2), with t_j-1 - t_j-2 taken as 0 for j = 1. Empty if n = 1.
 * Timestamps are strictly ascending.
 *
 * Value column of n samples, by kind (values are IEEE-754 doubles, carried as raw bits):
 *   TS_COLD_VAL_CONST (0)   8 bytes: the bits of every value, LE.
 *   TS_COLD_VAL_DEC_DELTA (1), TS_COLD_VAL_DEC_DOD (2): decimal mantissas,
 *     | 1 byte    | s: scale e = s - 22, -22 <= e <= 22                                |
 *     | uv        | n_exc: exceptions, <= n                                            |
 *     | n_exc uv  | their positions: p_0, then p_k - p_k-1 - 1 (ascending, < n)        |
 *     | n_exc * 8 | their value bits, LE                                               |
 *     | n zz      | mantissas: m_0, then m_j - m_j-1 (DELTA) or                        |
 *     |           | (m_j - m_j-1) - (m_j-1 - m_j-2) with m_-1 = m_0 (DOD)             |
 *     Value j is the double (double)m_j / 10^-e (e < 0) or (double)m_j * 10^e (e >= 0):
 *     one correctly rounded IEEE operation on exact operands (|m| < 2^53, 10^|e| exact),
 *     so 0.1 is m = 1, e = -1, exactly as strtod("0.1") gives it. An exception's value
 *     is its stored bits; its mantissa slot repeats the previous mantissa (0 at slot 0).
 *   TS_COLD_VAL_XOR (3)     for values that are not decimal:
 *     | 8       | v_0 bits, LE                                                         |
 *     | n - 1   | control bytes c_j = tz << 4 | len for x_j = v_j XOR v_j-1: x_j has     |
 *     |         | len significant bytes above tz zero bytes (len + tz <= 8; c_j = 0   |
 *     |         | when x_j = 0)                                                       |
 *     | sum len | payload: x_j >> 8 tz as len bytes LE, j = 1 .. n - 1                 |
 *   TS_COLD_VAL_BITS_DELTA (4), TS_COLD_VAL_BITS_DOD (5): the bits b_j of the values as
 *     integers, for floats that are not decimal but move steadily (seconds since an
 *     epoch with a fraction, sums of floats): n zz, b_0 then b_j - b_j-1 (DELTA) or
 *     (b_j - b_j-1) - (b_j-1 - b_j-2) with b_-1 = b_0 (DOD).
 *
 * Constants here are never renumbered; a new layout is a new version.
 *
 * Threading: encode, peek and open share nothing and may run in any number of threads.
 * An opened block is read-only: any number of threads may call the accessors and
 * ts_cold_decode on it at once; ts_cold_free must not race with them.
 */
#ifndef TS_STORAGE_COLD_H
#define TS_STORAGE_COLD_H

#include <stddef.h>
#include <stdint.h>

#define TS_COLD_MAGIC "TSCB"
#define TS_COLD_VERSION 1
#define TS_COLD_HDR_LEN 64
#define TS_COLD_FLAG_ZSTD 0x1
#define TS_COLD_MAX_RAW (64u << 20)   /* hard cap of raw_len, checked before allocating */
#define TS_COLD_MAX_SERIES (1u << 24) /* ts_cold_encode's bound on n */

#define TS_COLD_VAL_CONST 0
#define TS_COLD_VAL_DEC_DELTA 1
#define TS_COLD_VAL_DEC_DOD 2
#define TS_COLD_VAL_XOR 3
#define TS_COLD_VAL_BITS_DELTA 4
#define TS_COLD_VAL_BITS_DOD 5

/* The zstd level callers should pass unless they have a reason (measured in cold.c). */
#define TS_COLD_LEVEL_DEFAULT 3

/* One series to encode. All pointers are borrowed for the call. */
struct ts_cold_input {
	uint64_t id;	   /* series id; ids strictly ascending across the input array */
	uint32_t n;	   /* samples, >= 1 */
	const int64_t *t;  /* n timestamps, ms, strictly ascending */
	const uint64_t *v; /* n values, raw IEEE-754 bits (any NaN payload is kept) */
};

/*
 * Encodes in[0..n) (n >= 1 series, ids strictly ascending) into one block.
 * level: the zstd level (zstd clamps it to its range; 0 is zstd's default). Each series'
 * values take the smallest of the value kinds above; identical timestamp columns are
 * stored once.
 * On success *out is a new buffer of *out_len bytes (allocated with ts_malloc: the
 * caller frees it with ts_free). On error *out and *out_len are not written.
 * Returns 0; TS_EINVALID if in is NULL, n == 0 or n > TS_COLD_MAX_SERIES, ids are not
 * strictly ascending, a series has n == 0, NULL arrays or timestamps not strictly
 * ascending (nothing is allocated before these checks); TS_ELIMIT if the body would
 * exceed TS_COLD_MAX_RAW; -ENOMEM. Thread-safe (no shared state).
 */
int ts_cold_encode(const struct ts_cold_input *in, size_t n, int level, uint8_t **out,
		   size_t *out_len);

/* What a block's header says. */
struct ts_cold_info {
	uint32_t n_series;
	uint64_t first_id, last_id;
	int64_t min_t, max_t;
	uint64_t n_samples;
	uint32_t raw_len, z_len; /* body bytes decompressed, and as stored */
};

/*
 * Reads and checks the fixed header of the block p[0..len) (borrowed for the call; len
 * is the whole block's length) without decompressing or checksumming the body: magic,
 * version, flags, lengths (z_len == len - TS_COLD_HDR_LEN, raw_len within its cap and
 * large enough for n_series), first_id <= last_id with room for n_series ids,
 * min_t <= max_t, n_series <= n_samples. Fills *info on success.
 * Returns 0; TS_EVERSION if the magic is right and the version is not 1; TS_ECORRUPT
 * otherwise. Thread-safe.
 */
int ts_cold_peek(const uint8_t *p, size_t len, struct ts_cold_info *info);

/* An opened block: verified, decompressed, directory parsed. Owns all its memory (it
 * does not alias the bytes it was opened from). */
struct ts_cold_block;

/*
 * Opens the block p[0..len) (borrowed for the call): checks the header (as
 * ts_cold_peek), the CRC32C of the stored body, decompresses it (never more than the
 * header's raw_len, itself at most TS_COLD_MAX_RAW) and parses and validates the whole
 * directory against the header and the body's length, so that ts_cold_decode can fail
 * only on the bytes of a column. Timestamp columns that several series share are decoded
 * here, once (so a bad one fails the open), and copied by ts_cold_decode. Memory held
 * (ts_cold_mem): raw_len, 24 bytes per series, 40 per timestamp column, and 8 per shared
 * timestamp, the last capped at raw_len in all (columns beyond are decoded per series).
 * On success *out is the new block (free with ts_cold_free); else *out is not written.
 * Returns 0, TS_ECORRUPT, TS_EVERSION or -ENOMEM. Thread-safe.
 */
int ts_cold_open(const uint8_t *p, size_t len, struct ts_cold_block **out);

/* Number of series in b (>= 1). */
size_t ts_cold_nseries(const struct ts_cold_block *b);

/*
 * Series i of b (i < ts_cold_nseries(b); out of range writes zeros): its id, sample
 * count, first and last timestamp, as the directory gives them (no decoding). Output
 * pointers may be NULL to skip a field.
 */
void ts_cold_series(const struct ts_cold_block *b, size_t i, uint64_t *id, uint32_t *n,
		    int64_t *min_t, int64_t *max_t);

/* Index of the series with this id in b (binary search), or -1. */
long ts_cold_find(const struct ts_cold_block *b, uint64_t id);

/*
 * Decodes series i of b into the caller's arrays t[n] and v[n], n as ts_cold_series
 * gives it. Checks that timestamps are strictly ascending, the first is min_t and the
 * last max_t, and that every column byte is consumed exactly.
 * Returns 0; TS_ECORRUPT (t and v then hold garbage); TS_EINVALID only if i is out of
 * range (a caller bug). Allocates nothing and does not modify b: any number of threads
 * may decode from one block at once.
 */
int ts_cold_decode(const struct ts_cold_block *b, size_t i, int64_t *t, uint64_t *v);

/* Bytes of heap b holds (body, directory arrays, the struct), for cache accounting. */
size_t ts_cold_mem(const struct ts_cold_block *b);

/* Frees b and everything it holds. Accepts NULL. */
void ts_cold_free(struct ts_cold_block *b);

/* ---- additions for tools, tests and statistics --------------------------------- */

/* The header fields of an opened block (as ts_cold_peek gave them). */
void ts_cold_block_info(const struct ts_cold_block *b, struct ts_cold_info *info);

/* Value kind (TS_COLD_VAL_*) of series i of b, or -1 if i is out of range. */
int ts_cold_value_kind(const struct ts_cold_block *b, size_t i);

/*
 * Checks the header and the CRC32C of the block p[0..len) (borrowed) and returns its body
 * decompressed, without parsing it: *raw (ts_malloc; the caller frees it with ts_free) of
 * *raw_len bytes. For inspection tools and tests. Returns 0, TS_ECORRUPT, TS_EVERSION or
 * -ENOMEM; on error nothing is written. Thread-safe.
 */
int ts_cold_unpack(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len);

#endif
