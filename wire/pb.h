/*
 * pb.h - a small protobuf wire-format reader and writer, just enough for the Prometheus
 * remote-write and remote-read messages. No schema, no reflection, no allocation on the
 * read side: a reader is a cursor over caller-owned bytes and every string or bytes
 * field comes back as a pointer into those bytes.
 *
 * Reader errors are returned as plain TS_ECORRUPT without logging; the message decoder
 * that called the primitive knows which field it was reading and reports it once (with
 * TS_CORRUPT() and a human-readable message). Nothing here asserts on input bytes.
 *
 * Writer: struct ts_pb_buf is a growable byte buffer (ts_realloc); every append returns
 * 0 or -ENOMEM and leaves the buffer valid (unchanged past its old length) on failure.
 * Nested messages are written with ts_pb_begin()/ts_pb_end(): begin reserves one byte for
 * the length and end moves the body when the length needs more, so the output is the
 * canonical (minimal varint) encoding that Go's and Python's marshallers produce.
 *
 * Threading: none; a reader or buffer belongs to one thread at a time.
 */
#ifndef TS_WIRE_PB_H
#define TS_WIRE_PB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "storage/err.h"

/* Wire types (the low 3 bits of a tag). 3 and 4 are the deprecated groups, which we
 * can skip but never produce. 6 and 7 do not exist and are corrupt. */
enum ts_pb_wire {
	TS_PB_VARINT = 0,
	TS_PB_FIXED64 = 1,
	TS_PB_LEN = 2,
	TS_PB_SGROUP = 3,
	TS_PB_EGROUP = 4,
	TS_PB_FIXED32 = 5,
};

/* Largest field number protobuf allows (2^29 - 1). */
#define TS_PB_MAX_FIELD 536870911u
/* Nesting of unknown groups we are willing to skip before calling the input hostile. */
#define TS_PB_MAX_GROUP_DEPTH 64

/* A borrowed byte string (not NUL-terminated), aliasing the decoded input. */
struct ts_pb_str {
	const char *p;
	uint32_t len;
};

/* Cursor over [p, end). `base` is the start of the outermost buffer, kept so error
 * messages can name byte offsets. */
struct ts_pb_reader {
	const uint8_t *p;
	const uint8_t *end;
	const uint8_t *base;
};

static inline void ts_pb_reader_init(struct ts_pb_reader *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf ? buf + len : buf;
	r->base = buf;
}

/* A reader over a sub-range [p, p+len) that must already lie inside `parent`'s bytes. */
static inline void ts_pb_reader_sub(struct ts_pb_reader *sub, const struct ts_pb_reader *parent,
				    const uint8_t *p, size_t len)
{
	sub->p = p;
	sub->end = p + len;
	sub->base = parent->base;
}

static inline int ts_pb_eof(const struct ts_pb_reader *r)
{
	return r->p >= r->end;
}

/* Offset of the cursor from the outermost buffer's start, for messages. */
static inline size_t ts_pb_offset(const struct ts_pb_reader *r)
{
	return (size_t)(r->p - r->base);
}

/* Reads a base-128 varint of at most 10 bytes. A 10th byte above 1 (bits beyond 64)
 * or a truncated varint is TS_ECORRUPT. The one-byte case is inlined: it is the tag
 * and length of almost every field. */
int ts__pb_varint_slow(struct ts_pb_reader *r, uint64_t *out);
static inline int ts_pb_read_varint(struct ts_pb_reader *r, uint64_t *out)
{
	if (r->p < r->end && *r->p < 0x80) {
		*out = *r->p++;
		return 0;
	}
	return ts__pb_varint_slow(r, out);
}

/* Reads a tag: field number 1..2^29-1 and a wire type 0..5; anything else is corrupt.
 * Tags of fields 1..15 are one byte and take the inline path. */
int ts__pb_tag_slow(struct ts_pb_reader *r, uint32_t *field, enum ts_pb_wire *wire);
static inline int ts_pb_read_tag(struct ts_pb_reader *r, uint32_t *field, enum ts_pb_wire *wire)
{
	if (r->p < r->end && *r->p < 0x80 && *r->p >= 0x08 && (*r->p & 7) <= 5) {
		*field = (uint32_t)(*r->p >> 3);
		*wire = (enum ts_pb_wire)(*r->p & 7);
		r->p++;
		return 0;
	}
	return ts__pb_tag_slow(r, field, wire);
}

/* Little-endian fixed-width fields; TS_ECORRUPT if fewer bytes remain. */
int ts_pb_read_fixed64(struct ts_pb_reader *r, uint64_t *out);
int ts_pb_read_fixed32(struct ts_pb_reader *r, uint32_t *out);
/* fixed64 reinterpreted bit-exactly as a double (NaN payloads survive). */
int ts_pb_read_double(struct ts_pb_reader *r, double *out);

/* Length-delimited field: *p aliases the reader's buffer, *len <= remaining bytes.
 * Lengths above UINT32_MAX are corrupt (no message of ours can be that large). */
int ts__pb_bytes_slow(struct ts_pb_reader *r, const uint8_t **p, size_t *len);
static inline int ts_pb_read_bytes(struct ts_pb_reader *r, const uint8_t **p, size_t *len)
{
	/* one-byte length that fits: the common case of labels and samples */
	if (r->p < r->end && *r->p < 0x80 && (size_t)*r->p < (size_t)(r->end - r->p)) {
		*len = *r->p;
		*p = r->p + 1;
		r->p += 1 + *len;
		return 0;
	}
	return ts__pb_bytes_slow(r, p, len);
}
static inline int ts_pb_read_str(struct ts_pb_reader *r, struct ts_pb_str *s)
{
	const uint8_t *p;
	size_t n;
	int rc = ts_pb_read_bytes(r, &p, &n);
	if (rc)
		return rc;
	s->p = (const char *)p;
	s->len = (uint32_t)n;
	return 0;
}

/* Skips the value of a field whose tag was just read, for every wire type including
 * (nested) groups, whose end tag must carry the same field number. */
int ts_pb_skip(struct ts_pb_reader *r, uint32_t field, enum ts_pb_wire wire);

static inline int64_t ts_pb_zigzag_dec64(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
static inline uint64_t ts_pb_zigzag_enc64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Number of bytes the varint encoding of v takes (1..10). */
static inline size_t ts_pb_varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* ---- writer ---- */

/* Growable output buffer. Zero-initialise it (or ts_pb_buf_init) before use; data is
 * owned by the buffer, freed with ts_pb_buf_fini. len is reset by the caller (set it to
 * 0) to reuse the allocation. */
struct ts_pb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void ts_pb_buf_init(struct ts_pb_buf *b);
void ts_pb_buf_fini(struct ts_pb_buf *b);
/* Makes room for `extra` more bytes. 0 or -ENOMEM (also on size overflow). */
int ts_pb_buf_reserve(struct ts_pb_buf *b, size_t extra);
int ts_pb_put_raw(struct ts_pb_buf *b, const void *p, size_t n);
int ts_pb_put_varint(struct ts_pb_buf *b, uint64_t v);
int ts_pb_put_tag(struct ts_pb_buf *b, uint32_t field, enum ts_pb_wire wire);
/* Field writers. These always write, even zero values; proto3's "omit defaults" rule
 * is the message encoder's business. */
int ts_pb_put_uint64_field(struct ts_pb_buf *b, uint32_t field, uint64_t v);
int ts_pb_put_int64_field(struct ts_pb_buf *b, uint32_t field, int64_t v);
int ts_pb_put_double_field(struct ts_pb_buf *b, uint32_t field, double v);
int ts_pb_put_fixed32_field(struct ts_pb_buf *b, uint32_t field, uint32_t v);
int ts_pb_put_bytes_field(struct ts_pb_buf *b, uint32_t field, const void *p, size_t n);

/* Opens a length-delimited sub-message of `field`; *mark remembers where its length
 * goes. Close with ts_pb_end(b, mark). Marks nest like parentheses. */
int ts_pb_begin(struct ts_pb_buf *b, uint32_t field, size_t *mark);
int ts_pb_end(struct ts_pb_buf *b, size_t mark);

#endif
