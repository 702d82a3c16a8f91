/*
 * chunk.h - chunk records: the value stored under a chunk key in a partition env.
 *
 * Key (16 bytes, sorts by series then time):
 *   | off | size | field                                        |
 *   | 0   | 8    | series id, uint64 big-endian                  |
 *   | 8   | 8    | min_t ms, int64 big-endian with sign bit flipped |
 * Record value (format version 1):
 *   | off | size | field                                        |
 *   | 0   | 1    | format version (1)                            |
 *   | 1   | 1    | encoding (1 = Prometheus XOR)                 |
 *   | 2   | 2    | flags, uint16 LE (bit 0: overlaps others; written by OOO path) |
 *   | 4   | 4    | sample count, uint32 LE                       |
 *   | 8   | 8    | min_t ms, int64 LE                            |
 *   | 16  | 8    | max_t ms, int64 LE                            |
 *   | 24  | 4    | payload length, uint32 LE                     |
 *   | 28  | 4    | CRC32C of the payload, uint32 LE              |
 *   | 32  | n    | payload (the XOR chunk bytes, byte for byte)  |
 * Constants here are never renumbered; a new layout is a new version.
 */
#ifndef TS_STORAGE_CHUNK_H
#define TS_STORAGE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define TS_CHUNK_KEY_LEN 16
#define TS_CHUNK_HDR_LEN 32
#define TS_CHUNK_VERSION 1
#define TS_CHUNK_ENC_XOR 1
#define TS_CHUNK_FLAG_OVERLAP 0x1

struct ts_chunk_hdr {
	uint8_t version, encoding;
	uint16_t flags;
	uint32_t n_samples;
	int64_t min_t, max_t;
	uint32_t payload_len;
	uint32_t crc;
};

/* Writes the 16-byte key. */
void ts_chunk_key(uint8_t key[TS_CHUNK_KEY_LEN], uint64_t series_id, int64_t min_t);
/* Reads a key back; TS_ECORRUPT if klen != 16. */
int ts_chunk_key_parse(const void *key, size_t klen, uint64_t *series_id, int64_t *min_t);
/* Serialises header + payload into out (caller-allocated, TS_CHUNK_HDR_LEN + payload_len
 * bytes), computing the CRC. Returns bytes written. */
size_t ts_chunk_encode(uint8_t *out, uint8_t encoding, uint16_t flags, uint32_t n_samples,
		       int64_t min_t, int64_t max_t, const uint8_t *payload, uint32_t payload_len);
/* Validates a record: version, encoding, lengths, min_t <= max_t, CRC, and for XOR that
 * the payload's own sample count equals n_samples. On success fills *h and points
 * *payload into rec (aliasing the input). Returns 0, TS_EVERSION or TS_ECORRUPT. */
int ts_chunk_decode(const void *rec, size_t len, struct ts_chunk_hdr *h, const uint8_t **payload);

#endif
