/*
 * pb.c - protobuf wire-format primitives (see pb.h for the contract).
 *
 * Invariants: a reader never moves past `end`; every length is compared against the
 * remaining bytes before any pointer arithmetic that could overflow; a writer's
 * `len <= cap` always, and a failed append leaves the buffer as it was.
 *
 * Wire layout read and written here:
 *
 *   | item          | encoding                                                      |
 *   |---------------|---------------------------------------------------------------|
 *   | varint        | 1..10 bytes, 7 bits each, little-endian groups, MSB=continue  |
 *   | tag           | varint (field_number << 3 | wire_type), field 1..2^29-1       |
 *   | wire 0 VARINT | varint (int64 as two's complement: negatives take 10 bytes;   |
 *   |               | sint64 as zigzag)                                             |
 *   | wire 1 I64    | 8 bytes little-endian (fixed64, sfixed64, double)             |
 *   | wire 2 LEN    | varint length n, then n bytes (string, bytes, message, packed)|
 *   | wire 3 SGROUP | fields until an EGROUP tag with the same field number         |
 *   | wire 4 EGROUP | no payload; only valid as the end of an open group            |
 *   | wire 5 I32    | 4 bytes little-endian (fixed32, sfixed32, float)              |
 */
#include "wire/pb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "storage/mem.h"

int ts__pb_varint_slow(struct ts_pb_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	const uint8_t *p = r->p;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (p >= r->end)
			return TS_ECORRUPT;
		uint8_t b = *p++;
		/* The 10th byte may only contribute bit 63. */
		if (shift == 63 && b > 1)
			return TS_ECORRUPT;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			r->p = p;
			*out = v;
			return 0;
		}
	}
	return TS_ECORRUPT;
}

int ts__pb_tag_slow(struct ts_pb_reader *r, uint32_t *field, enum ts_pb_wire *wire)
{
	uint64_t t;
	int rc = ts_pb_read_varint(r, &t);
	if (rc)
		return rc;
	uint64_t f = t >> 3;
	unsigned w = (unsigned)(t & 7);
	if (f == 0 || f > TS_PB_MAX_FIELD || w > 5)
		return TS_ECORRUPT;
	*field = (uint32_t)f;
	*wire = (enum ts_pb_wire)w;
	return 0;
}

int ts_pb_read_fixed64(struct ts_pb_reader *r, uint64_t *out)
{
	if (r->end - r->p < 8)
		return TS_ECORRUPT;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | r->p[i];
	r->p += 8;
	*out = v;
	return 0;
}

int ts_pb_read_fixed32(struct ts_pb_reader *r, uint32_t *out)
{
	if (r->end - r->p < 4)
		return TS_ECORRUPT;
	*out = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
	       (uint32_t)r->p[3] << 24;
	r->p += 4;
	return 0;
}

int ts_pb_read_double(struct ts_pb_reader *r, double *out)
{
	uint64_t bits;
	int rc = ts_pb_read_fixed64(r, &bits);
	if (rc)
		return rc;
	memcpy(out, &bits, sizeof *out);
	return 0;
}

int ts__pb_bytes_slow(struct ts_pb_reader *r, const uint8_t **p, size_t *len)
{
	uint64_t n;
	int rc = ts_pb_read_varint(r, &n);
	if (rc)
		return rc;
	/* Compare against what is left before forming any pointer: n may be 2^64-1. */
	if (n > (uint64_t)(r->end - r->p) || n > UINT32_MAX)
		return TS_ECORRUPT;
	*p = r->p;
	*len = (size_t)n;
	r->p += n;
	return 0;
}

static int skip_scalar(struct ts_pb_reader *r, enum ts_pb_wire wire)
{
	uint64_t v;
	const uint8_t *p;
	size_t n;
	switch (wire) {
	case TS_PB_VARINT: return ts_pb_read_varint(r, &v);
	case TS_PB_FIXED64:
		if (r->end - r->p < 8)
			return TS_ECORRUPT;
		r->p += 8;
		return 0;
	case TS_PB_LEN: return ts_pb_read_bytes(r, &p, &n);
	case TS_PB_FIXED32:
		if (r->end - r->p < 4)
			return TS_ECORRUPT;
		r->p += 4;
		return 0;
	default: return TS_ECORRUPT;
	}
}

int ts_pb_skip(struct ts_pb_reader *r, uint32_t field, enum ts_pb_wire wire)
{
	/* Groups are skipped iteratively with an explicit stack of open field numbers, so
	 * a hostile nesting cannot exhaust the C stack. */
	uint32_t open[TS_PB_MAX_GROUP_DEPTH];
	int depth = 0;

	if (wire == TS_PB_EGROUP)
		return TS_ECORRUPT; /* an end without a start */
	if (wire != TS_PB_SGROUP)
		return skip_scalar(r, wire);
	open[depth++] = field;
	while (depth > 0) {
		uint32_t f;
		enum ts_pb_wire w;
		int rc = ts_pb_read_tag(r, &f, &w);
		if (rc)
			return rc;
		if (w == TS_PB_SGROUP) {
			if (depth == TS_PB_MAX_GROUP_DEPTH)
				return TS_ECORRUPT;
			open[depth++] = f;
		} else if (w == TS_PB_EGROUP) {
			if (open[depth - 1] != f)
				return TS_ECORRUPT;
			depth--;
		} else if ((rc = skip_scalar(r, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* ---- checked reads ---- */

int ts__pb_failf(char *err, size_t cap, int code, const char *file, int line, const char *fmt, ...)
{
	if (err && cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return code == TS_ECORRUPT ? ts__corrupt(file, line) : code;
}

int ts_pb_fail_at(const struct ts_pb_reader *r, const char *what, const char *problem)
{
	return TS_PB_FAILF(r->err, r->err_cap, TS_ECORRUPT, "%s: %s at byte %zu", what, problem,
			   ts_pb_offset(r));
}

int ts_pb_truncated(const struct ts_pb_reader *r, const char *what)
{
	return ts_pb_fail_at(r, what, "truncated or malformed field");
}

int ts__pb_wrong_wire(const struct ts_pb_reader *r, const char *what, enum ts_pb_wire got,
		      enum ts_pb_wire want)
{
	return TS_PB_FAILF(r->err, r->err_cap, TS_ECORRUPT,
			   "%s: wire type %d, expected %d, at byte %zu", what, (int)got, (int)want,
			   ts_pb_offset(r));
}

int ts_pb_skip_unknown(struct ts_pb_reader *r, const char *what, uint32_t field,
		       enum ts_pb_wire wire)
{
	if (ts_pb_skip(r, field, wire) == 0)
		return 0;
	return TS_PB_FAILF(r->err, r->err_cap, TS_ECORRUPT,
			   "%s: cannot skip unknown field %u (wire type %d) at byte %zu", what,
			   field, (int)wire, ts_pb_offset(r));
}

int ts_pb_open(struct ts_pb_reader *r, struct ts_pb_reader *sub, const char *what)
{
	const uint8_t *p;
	size_t n;
	if (ts_pb_read_bytes(r, &p, &n) != 0)
		return ts_pb_truncated(r, what);
	ts_pb_reader_sub(sub, r, p, n);
	return 0;
}

int ts_pb_room(char *err, size_t err_cap, void **arr, size_t *cap, size_t n, size_t max,
	       size_t elem, const char *what)
{
	if (n >= max)
		return TS_PB_FAILF(err, err_cap, TS_ELIMIT, "more than %zu %s in one request", max,
				   what);
	if (ts_grow(arr, cap, n + 1, elem) != 0)
		return TS_PB_FAILF(err, err_cap, -ENOMEM, "out of memory");
	return 0;
}

/* ---- writer ---- */

void ts_pb_buf_init(struct ts_pb_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void ts_pb_buf_fini(struct ts_pb_buf *b)
{
	if (!b)
		return;
	ts_free(b->data);
	ts_pb_buf_init(b);
}

int ts_pb_buf_reserve(struct ts_pb_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	size_t need = b->len + extra;
	return ts_grow((void **)&b->data, &b->cap, need < 256 ? 256 : need, 1);
}

int ts_pb_put_raw(struct ts_pb_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = ts_pb_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static size_t encode_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int ts_pb_put_varint(struct ts_pb_buf *b, uint64_t v)
{
	int rc = ts_pb_buf_reserve(b, 10);
	if (rc)
		return rc;
	b->len += encode_varint(b->data + b->len, v);
	return 0;
}

int ts_pb_put_tag(struct ts_pb_buf *b, uint32_t field, enum ts_pb_wire wire)
{
	return ts_pb_put_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

int ts_pb_put_uint64_field(struct ts_pb_buf *b, uint32_t field, uint64_t v)
{
	/* Reserve for the whole field so a failure cannot leave half of it behind. */
	int rc = ts_pb_buf_reserve(b, 20);
	if (rc)
		return rc;
	b->len += encode_varint(b->data + b->len, (uint64_t)field << 3 | TS_PB_VARINT);
	b->len += encode_varint(b->data + b->len, v);
	return 0;
}

int ts_pb_put_int64_field(struct ts_pb_buf *b, uint32_t field, int64_t v)
{
	return ts_pb_put_uint64_field(b, field, (uint64_t)v);
}

/* A fixed-width field of wire type `wire`: the tag, then the low n_bytes bytes of v,
 * little-endian. */
static int put_fixed_field(struct ts_pb_buf *b, uint32_t field, enum ts_pb_wire wire, uint64_t v,
			   size_t n_bytes)
{
	int rc = ts_pb_buf_reserve(b, 10 + n_bytes);
	if (rc)
		return rc;
	b->len += encode_varint(b->data + b->len, (uint64_t)field << 3 | wire);
	for (size_t i = 0; i < n_bytes; i++)
		b->data[b->len++] = (uint8_t)(v >> (8 * i));
	return 0;
}

int ts_pb_put_double_field(struct ts_pb_buf *b, uint32_t field, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	return put_fixed_field(b, field, TS_PB_FIXED64, bits, 8);
}

int ts_pb_put_fixed32_field(struct ts_pb_buf *b, uint32_t field, uint32_t v)
{
	return put_fixed_field(b, field, TS_PB_FIXED32, v, 4);
}

int ts_pb_put_bytes_field(struct ts_pb_buf *b, uint32_t field, const void *p, size_t n)
{
	if (n > SIZE_MAX - 20)
		return -ENOMEM;
	int rc = ts_pb_buf_reserve(b, 20 + n);
	if (rc)
		return rc;
	b->len += encode_varint(b->data + b->len, (uint64_t)field << 3 | TS_PB_LEN);
	b->len += encode_varint(b->data + b->len, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int ts_pb_begin(struct ts_pb_buf *b, uint32_t field, size_t *mark)
{
	int rc = ts_pb_buf_reserve(b, 11);
	if (rc)
		return rc;
	b->len += encode_varint(b->data + b->len, (uint64_t)field << 3 | TS_PB_LEN);
	/* One byte holds lengths below 128, the common case (labels, samples); longer
	 * bodies are moved right in ts_pb_end. */
	*mark = b->len;
	b->data[b->len++] = 0;
	return 0;
}

int ts_pb_end(struct ts_pb_buf *b, size_t mark)
{
	size_t body = b->len - mark - 1;
	size_t vs = ts_pb_varint_size(body);
	if (vs > 1) {
		int rc = ts_pb_buf_reserve(b, vs - 1);
		if (rc)
			return rc;
		memmove(b->data + mark + vs, b->data + mark + 1, body);
		b->len += vs - 1;
	}
	encode_varint(b->data + mark, body);
	return 0;
}
