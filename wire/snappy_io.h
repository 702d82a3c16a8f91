/*
 * snappy_io.h - snappy block-format (not the framed format) compression for the
 * Prometheus remote-write and remote-read bodies, over libsnappy's C API.
 *
 * The decompressor reads the uncompressed length a block declares in its header and
 * checks it against the caller's limit, and against the most a block of that size can
 * possibly expand to, before any allocation: a 48-byte body that declares gigabytes is
 * refused at once (TS_ELIMIT) with flat memory.
 *
 * Buffers are caller-owned and reusable: (*buf, *cap) is grown with ts_realloc when too
 * small and never shrunk, so a connection that keeps its buffer decompresses steady-state
 * traffic without allocating. Free *buf with ts_free. Thread-safe (no shared state).
 */
#ifndef TS_WIRE_SNAPPY_IO_H
#define TS_WIRE_SNAPPY_IO_H

#include <stddef.h>
#include <stdint.h>

/* Largest expansion of a snappy block: a 3-byte copy element yields 64 bytes. */
#define TS_SNAPPY_MAX_RATIO_NUM 64
#define TS_SNAPPY_MAX_RATIO_DEN 3

/* Reads the uncompressed length declared by the block header (a varint of at most
 * 5 bytes). 0, or TS_ECORRUPT if the header is malformed. */
int ts_snappy_declared_len(const uint8_t *src, size_t src_len, size_t *out);

/* Decompresses the block src[0..src_len) into *buf (grown as needed, *cap updated).
 * On success *out_len is the uncompressed length; when it is 0, *buf may stay NULL.
 * Returns 0;
 *   TS_ELIMIT    the declared length exceeds `limit` (nothing allocated);
 *   TS_ECORRUPT  malformed header, a declared length the input cannot produce, or a
 *                block libsnappy rejects;
 *   -ENOMEM      growing the buffer failed (*buf and *cap unchanged).
 * On error *out_len is 0 and the buffer's contents are unspecified. */
int ts_snappy_decompress(const uint8_t *src, size_t src_len, size_t limit, uint8_t **buf,
			 size_t *cap, size_t *out_len);

/* Compresses src[0..src_len) into *buf (grown to snappy's worst case as needed).
 * 0 with *out_len set, or -ENOMEM. src may be NULL when src_len is 0. */
int ts_snappy_compress(const uint8_t *src, size_t src_len, uint8_t **buf, size_t *cap,
		       size_t *out_len);

#endif
