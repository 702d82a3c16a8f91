/*
 * pb.h - a small protobuf wire-format reader and writer, just enough for the Prometheus
 * remote-write and remote-read messages. No schema, no reflection, no allocation on the
 * read side: a reader is a cursor over caller-owned bytes and every string or bytes
 * field comes back as a pointer into those bytes.
 *
 * Reader errors are returned as plain TS_ECORRUPT without logging by the primitives;
 * the message decoders (remote_write.c, remote_read.c) read through the "checked"
 * wrappers below, which know the field being read and report it once (a reason in the
 * decoder's buffer, a TS_CORRUPT() log line): the error context of every protobuf
 * decoder lives here. Nothing here asserts on input bytes.
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
 * messages can name byte offsets. `err` (err_cap bytes, or NULL) is the decoder's
 * reason buffer that the checked reads below write into. */
struct ts_pb_reader {
	const uint8_t *p;
	const uint8_t *end;
	const uint8_t *base;
	char *err;
	size_t err_cap;
};

/* A reader over buf[0..len) (borrowed; buf may be NULL when len is 0) that reports
 * nowhere. Cannot fail. */
static inline void ts_pb_reader_init(struct ts_pb_reader *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf ? buf + len : buf;
	r->base = buf;
	r->err = NULL;
	r->err_cap = 0;
}

/* Makes the checked reads on r, and on every reader later opened from it, write their
 * reason into err[0..cap) (borrowed; NUL-terminated when written). */
static inline void ts_pb_reader_report_to(struct ts_pb_reader *r, char *err, size_t cap)
{
	r->err = err;
	r->err_cap = cap;
}

/* A reader over a sub-range [p, p+len) that must already lie inside `parent`'s bytes.
 * It shares the parent's base (offsets stay those of the outermost buffer) and reason
 * buffer. */
static inline void ts_pb_reader_sub(struct ts_pb_reader *sub, const struct ts_pb_reader *parent,
				    const uint8_t *p, size_t len)
{
	sub->p = p;
	sub->end = p + len;
	sub->base = parent->base;
	sub->err = parent->err;
	sub->err_cap = parent->err_cap;
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

/* Little-endian fixed-width fields; 0, or TS_ECORRUPT if fewer bytes remain (the
 * cursor does not move then). */
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
 * (nested) groups, whose end tag must carry the same field number. Returns 0, or
 * TS_ECORRUPT (truncated, an end group without a start or with another field number,
 * groups nested deeper than TS_PB_MAX_GROUP_DEPTH, wire types 6 and 7). */
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

/* ---- checked reads: decoding with error context ----
 *
 * The message decoders (remote_write.c, remote_read.c) report each failure once, with
 * a reason a sender can act on. The functions below wrap the primitives above for
 * them: on failure they write "<what>: <problem> at byte <offset>" into the reader's
 * reason buffer (truncated to fit; nothing when the reader has none), log the
 * corruption once (TS_CORRUPT's "corrupt data detected at" line) and return
 * TS_ECORRUPT. `what` names the field or message for the reason (borrowed for the
 * call). The success paths are inline: a decoder's hot loop pays no call for them. */

/* Writes the printf-style reason into err[0..cap) (nothing when err is NULL or cap 0)
 * and returns `code`; TS_ECORRUPT is also logged once, naming file:line. For failures
 * without a reader (limits, semantic checks): use through TS_PB_FAILF. */
int ts__pb_failf(char *err, size_t cap, int code, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
#define TS_PB_FAILF(err, cap, code, ...) \
	ts__pb_failf((err), (cap), (code), __FILE__, __LINE__, __VA_ARGS__)

/* "<what>: <problem> at byte N": always returns TS_ECORRUPT. */
int ts_pb_fail_at(const struct ts_pb_reader *r, const char *what, const char *problem);
/* "<what>: truncated or malformed field at byte N": always returns TS_ECORRUPT. */
int ts_pb_truncated(const struct ts_pb_reader *r, const char *what);
/* "<what>: wire type G, expected W, at byte N": always returns TS_ECORRUPT. */
int ts__pb_wrong_wire(const struct ts_pb_reader *r, const char *what, enum ts_pb_wire got,
		      enum ts_pb_wire want);

/* Checks a known field's wire type: 0 when got == want, else TS_ECORRUPT (a known field
 * with the wrong wire type is corrupt, as gogo-protobuf, which Prometheus uses, treats
 * it). */
static inline int ts_pb_want(const struct ts_pb_reader *r, const char *what, enum ts_pb_wire got,
			     enum ts_pb_wire want)
{
	return got == want ? 0 : ts__pb_wrong_wire(r, what, got, want);
}

/* Reads the next tag (ts_pb_read_tag). 0, or TS_ECORRUPT "<what>: bad tag". */
static inline int ts_pb_next(struct ts_pb_reader *r, const char *what, uint32_t *field,
			     enum ts_pb_wire *wire)
{
	return ts_pb_read_tag(r, field, wire) == 0 ? 0 : ts_pb_fail_at(r, what, "bad tag");
}

/* Skips an unknown field whose tag was just read (ts_pb_skip). 0, or TS_ECORRUPT
 * "<what>: cannot skip unknown field F (wire type W)". */
int ts_pb_skip_unknown(struct ts_pb_reader *r, const char *what, uint32_t field,
		       enum ts_pb_wire wire);

/* Opens the LEN payload at the cursor as *sub (ts_pb_reader_sub) and moves r past it.
 * 0, or TS_ECORRUPT (truncated). The wire type must have been checked. */
int ts_pb_open(struct ts_pb_reader *r, struct ts_pb_reader *sub, const char *what);

/* A field's value after its tag: the wire type is checked (ts_pb_want), then the value
 * read. 0, or TS_ECORRUPT (wrong wire type, or truncated). Strings alias the input. */
static inline int ts_pb_get_varint(struct ts_pb_reader *r, const char *what, enum ts_pb_wire w,
				   uint64_t *v)
{
	if (w != TS_PB_VARINT)
		return ts__pb_wrong_wire(r, what, w, TS_PB_VARINT);
	return ts_pb_read_varint(r, v) == 0 ? 0 : ts_pb_truncated(r, what);
}
/* int64 as proto3 encodes it: the varint's 64 bits as two's complement. */
static inline int ts_pb_get_int64(struct ts_pb_reader *r, const char *what, enum ts_pb_wire w,
				  int64_t *v)
{
	uint64_t u;
	int rc = ts_pb_get_varint(r, what, w, &u);
	if (rc == 0)
		*v = (int64_t)u;
	return rc;
}
static inline int ts_pb_get_double(struct ts_pb_reader *r, const char *what, enum ts_pb_wire w,
				   double *v)
{
	if (w != TS_PB_FIXED64)
		return ts__pb_wrong_wire(r, what, w, TS_PB_FIXED64);
	return ts_pb_read_double(r, v) == 0 ? 0 : ts_pb_truncated(r, what);
}
static inline int ts_pb_get_str(struct ts_pb_reader *r, const char *what, enum ts_pb_wire w,
				struct ts_pb_str *s)
{
	if (w != TS_PB_LEN)
		return ts__pb_wrong_wire(r, what, w, TS_PB_LEN);
	return ts_pb_read_str(r, s) == 0 ? 0 : ts_pb_truncated(r, what);
}
/* A LEN field opened as a sub-message (ts_pb_want + ts_pb_open). */
static inline int ts_pb_get_msg(struct ts_pb_reader *r, const char *what, enum ts_pb_wire w,
				struct ts_pb_reader *sub)
{
	if (w != TS_PB_LEN)
		return ts__pb_wrong_wire(r, what, w, TS_PB_LEN);
	return ts_pb_open(r, sub, what);
}

/* Makes room for element n of a decoder's growing array (*arr, capacity *cap elements
 * of `elem` bytes, grown with ts_grow) when n < max, the decoder's limit. Returns 0;
 * TS_ELIMIT with "more than <max> <what> in one request" in err[0..err_cap); -ENOMEM
 * with "out of memory" there (the array unchanged). Decoders keep their arrays from
 * request to request, so steady traffic does not allocate. */
int ts_pb_room(char *err, size_t err_cap, void **arr, size_t *cap, size_t n, size_t max,
	       size_t elem, const char *what);

/* ---- writer ---- */

/* Growable output buffer. Zero-initialise it (or ts_pb_buf_init) before use; data is
 * owned by the buffer, freed with ts_pb_buf_fini. len is reset by the caller (set it to
 * 0) to reuse the allocation. */
struct ts_pb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Zeroes b. Cannot fail. */
void ts_pb_buf_init(struct ts_pb_buf *b);
/* Frees b's data and zeroes it. Accepts NULL. */
void ts_pb_buf_fini(struct ts_pb_buf *b);
/* Makes room for `extra` more bytes (ts_grow, at least 256). 0 or -ENOMEM (also on
 * size overflow). */
int ts_pb_buf_reserve(struct ts_pb_buf *b, size_t extra);
/* Appends p[0..n) (borrowed for the call), a varint, a tag. 0 or -ENOMEM. */
int ts_pb_put_raw(struct ts_pb_buf *b, const void *p, size_t n);
int ts_pb_put_varint(struct ts_pb_buf *b, uint64_t v);
int ts_pb_put_tag(struct ts_pb_buf *b, uint32_t field, enum ts_pb_wire wire);
/* Field writers: tag and value, all or nothing. These always write, even zero values;
 * proto3's "omit defaults" rule is the message encoder's business. 0 or -ENOMEM. */
int ts_pb_put_uint64_field(struct ts_pb_buf *b, uint32_t field, uint64_t v);
int ts_pb_put_int64_field(struct ts_pb_buf *b, uint32_t field, int64_t v);
int ts_pb_put_double_field(struct ts_pb_buf *b, uint32_t field, double v);
int ts_pb_put_fixed32_field(struct ts_pb_buf *b, uint32_t field, uint32_t v);
int ts_pb_put_bytes_field(struct ts_pb_buf *b, uint32_t field, const void *p, size_t n);

/* Opens a length-delimited sub-message of `field`; *mark remembers where its length
 * goes. Close with ts_pb_end(b, mark). Marks nest like parentheses. Both return 0 or
 * -ENOMEM (the buffer then holds a partial message: discard it). */
int ts_pb_begin(struct ts_pb_buf *b, uint32_t field, size_t *mark);
int ts_pb_end(struct ts_pb_buf *b, size_t mark);

#endif
