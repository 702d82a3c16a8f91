/*
 * remote_read.c - Prometheus remote-read request decoding and response encoding
 * (API and ownership in remote_read.h).
 *
 * Invariants: decoded strings alias the input; arena indices become pointers only
 * after decoding ends (arenas may move while growing). Encoders emit the canonical
 * proto3 encoding Go's marshaller produces (zero scalars and empty strings omitted),
 * so our bytes can be compared with a reference encoder's. A chunked frame never holds
 * more than max_frame_bytes of message.
 *
 * Wire layout (field number: type):
 *
 *   | message            | fields                                                     |
 *   |--------------------|------------------------------------------------------------|
 *   | ReadRequest        | 1 Query (rep.), 2 ResponseType enum (rep., packed or not)  |
 *   | Query              | 1 start_timestamp_ms int64, 2 end_timestamp_ms int64,      |
 *   |                    | 3 LabelMatcher (rep.), 4 ReadHints                         |
 *   | LabelMatcher       | 1 type enum (EQ NEQ RE NRE), 2 name, 3 value               |
 *   | ReadHints          | 1 step_ms, 2 func string, 3 start_ms, 4 end_ms,            |
 *   |                    | 5 grouping string (rep.), 6 by bool, 7 range_ms            |
 *   | ReadResponse       | 1 QueryResult (rep.)                                       |
 *   | QueryResult        | 1 TimeSeries (rep.)                                        |
 *   | TimeSeries         | 1 Label (rep.), 2 Sample (rep.)                            |
 *   | Label / Sample     | 1 name, 2 value / 1 value double, 2 timestamp int64        |
 *   | ChunkedReadResponse| 1 ChunkedSeries (rep.; we write one), 2 query_index int64  |
 *   | ChunkedSeries      | 1 Label (rep.), 2 Chunk (rep.)                             |
 *   | Chunk              | 1 min_time_ms, 2 max_time_ms, 3 type enum (XOR=1), 4 data  |
 *
 *   STREAMED_XOR_CHUNKS frame:
 *   | uvarint | length of msg (<= max_frame_bytes)                  |
 *   | 4 bytes | CRC32C (Castagnoli) of msg, big-endian              |
 *   | msg     | ChunkedReadResponse                                 |
 */
#include "wire/remote_read.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"

#define DEF_MAX_QUERIES 1024
#define DEF_MAX_MATCHERS (1u << 16)
#define DEF_MAX_GROUPING (1u << 16)

void ts_rr_request_init(struct ts_rr_request *r)
{
	memset(r, 0, sizeof *r);
	r->max_queries = DEF_MAX_QUERIES;
	r->max_matchers = DEF_MAX_MATCHERS;
	r->max_grouping = DEF_MAX_GROUPING;
}

void ts_rr_request_fini(struct ts_rr_request *r)
{
	if (!r)
		return;
	ts_free(r->queries);
	ts_free(r->matchers_arena);
	ts_free(r->grouping_arena);
	memset(r, 0, sizeof *r);
}

/* A reason in r->err; corruption is logged once, naming this file's line. */
#define FAIL(r, code, ...) TS_PB_FAILF((r)->err, sizeof(r)->err, (code), __VA_ARGS__)
/* Room for one more element of the request's array `arr` (capacity field `cap`, count
 * `n`, limit `max`), or the limit or out-of-memory reason in r->err. */
#define ROOM(r, arr, cap, n, max, what)                                                       \
	ts_pb_room((r)->err, sizeof(r)->err, (void **)&(r)->arr, &(r)->cap, (r)->n, (r)->max, \
		   sizeof *(r)->arr, (what))

static int decode_matcher(struct ts_rr_request *r, struct ts_pb_reader *q, size_t qi)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ROOM(r, matchers_arena, matchers_cap, n_matchers, max_matchers, "matchers")) !=
		    0 ||
	    (rc = ts_pb_open(q, &m, "matcher")) != 0)
		return rc;
	struct ts_rr_matcher *mt = &r->matchers_arena[r->n_matchers++];
	struct ts_pb_str empty = { (const char *)m.p, 0 };
	mt->type = TS_RR_EQ;
	mt->name = mt->value = empty;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		int64_t t;
		if ((rc = ts_pb_next(&m, "matcher", &f, &w)) != 0)
			return rc;
		if (f == 1) {
			if ((rc = ts_pb_get_int64(&m, "matcher.type", w, &t)) != 0)
				return rc;
			if (t < TS_RR_EQ || t > TS_RR_NRE)
				return FAIL(r, TS_EINVALID,
					    "queries[%zu]: invalid matcher type %lld", qi,
					    (long long)t);
			mt->type = (uint32_t)t;
		} else if (f == 2 || f == 3) {
			if ((rc = ts_pb_get_str(&m, "matcher string", w,
						f == 2 ? &mt->name : &mt->value)) != 0)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(&m, "matcher", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

static int decode_hints(struct ts_rr_request *r, struct ts_pb_reader *q, struct ts_rr_hints *h)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(q, &m, "hints")) != 0)
		return rc;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		int64_t v;
		if ((rc = ts_pb_next(&m, "hints", &f, &w)) != 0)
			return rc;
		switch (f) {
		case 1:
		case 3:
		case 4:
		case 6:
		case 7:
			if ((rc = ts_pb_get_int64(&m, "hints integer", w, &v)) != 0)
				return rc;
			if (f == 1)
				h->step_ms = v;
			else if (f == 3)
				h->start_ms = v;
			else if (f == 4)
				h->end_ms = v;
			else if (f == 6)
				h->by = v != 0;
			else
				h->range_ms = v;
			break;
		case 2:
			if ((rc = ts_pb_get_str(&m, "hints.func", w, &h->func)) != 0)
				return rc;
			break;
		case 5:
			if ((rc = ROOM(r, grouping_arena, grouping_cap, n_grouping, max_grouping,
				       "grouping labels")) != 0 ||
			    (rc = ts_pb_get_str(&m, "hints.grouping", w,
						&r->grouping_arena[r->n_grouping])) != 0)
				return rc;
			r->n_grouping++;
			h->n_grouping++;
			break;
		default:
			if ((rc = ts_pb_skip_unknown(&m, "hints", f, w)) != 0)
				return rc;
		}
	}
	return 0;
}

static int decode_query(struct ts_rr_request *r, struct ts_pb_reader *rd)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ROOM(r, queries, queries_cap, n_queries, max_queries, "queries")) != 0 ||
	    (rc = ts_pb_open(rd, &m, "query")) != 0)
		return rc;
	size_t qi = r->n_queries++;
	struct ts_rr_query *q = &r->queries[qi];
	memset(q, 0, sizeof *q);
	q->matcher_off = (uint32_t)r->n_matchers;
	q->hints.grouping_off = (uint32_t)r->n_grouping;
	q->hints.func.p = (const char *)m.p;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = ts_pb_next(&m, "query", &f, &w)) != 0)
			return rc;
		if (f == 1 || f == 2) {
			if ((rc = ts_pb_get_int64(&m, "query timestamp", w,
						  f == 1 ? &r->queries[qi].start_ms
							 : &r->queries[qi].end_ms)) != 0)
				return rc;
		} else if (f == 3) {
			if ((rc = ts_pb_want(&m, "query.matchers", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_matcher(r, &m, qi)) != 0)
				return rc;
			r->queries[qi].n_matchers++;
		} else if (f == 4) {
			if ((rc = ts_pb_want(&m, "query.hints", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_hints(r, &m, &r->queries[qi].hints)) != 0)
				return rc;
			r->queries[qi].has_hints = 1;
		} else if ((rc = ts_pb_skip_unknown(&m, "query", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* Takes the first type we support from the client's preference list. */
static void accept_type(struct ts_rr_request *r, uint64_t t, int *chosen)
{
	r->n_accepted++;
	if (!*chosen && t <= TS_RR_STREAMED_XOR_CHUNKS) {
		r->response_type = (enum ts_rr_response_type)t;
		*chosen = 1;
	}
}

static int decode_accepted(struct ts_rr_request *r, struct ts_pb_reader *rd, enum ts_pb_wire w,
			   int *chosen)
{
	uint64_t t;
	if (w == TS_PB_VARINT) {
		if (ts_pb_read_varint(rd, &t) != 0)
			return ts_pb_truncated(rd, "accepted_response_types");
		accept_type(r, t, chosen);
		return 0;
	}
	if (w != TS_PB_LEN)
		return ts_pb_want(rd, "accepted_response_types", w, TS_PB_LEN);
	struct ts_pb_reader p;
	int rc;
	if ((rc = ts_pb_open(rd, &p, "accepted_response_types")) != 0)
		return rc;
	while (!ts_pb_eof(&p)) {
		if (ts_pb_read_varint(&p, &t) != 0)
			return ts_pb_truncated(&p, "packed accepted_response_types");
		accept_type(r, t, chosen);
	}
	return 0;
}

static void reset(struct ts_rr_request *r, int clear_err)
{
	r->n_queries = r->n_matchers = r->n_grouping = r->n_accepted = 0;
	r->response_type = TS_RR_SAMPLES;
	if (clear_err)
		r->err[0] = '\0';
}

int ts_rr_decode(struct ts_rr_request *r, const uint8_t *buf, size_t len)
{
	struct ts_pb_reader rd;
	int rc = 0, chosen = 0;

	reset(r, 1);
	if (!buf && len) {
		rc = FAIL(r, TS_EINVALID, "no buffer");
		goto out;
	}
	ts_pb_reader_init(&rd, buf, len);
	ts_pb_reader_report_to(&rd, r->err, sizeof r->err);
	while (!ts_pb_eof(&rd)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = ts_pb_next(&rd, "ReadRequest", &f, &w)) != 0)
			goto out;
		if (f == 1) {
			if ((rc = ts_pb_want(&rd, "ReadRequest.queries", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_query(r, &rd)) != 0)
				goto out;
		} else if (f == 2) {
			if ((rc = decode_accepted(r, &rd, w, &chosen)) != 0)
				goto out;
		} else if ((rc = ts_pb_skip_unknown(&rd, "ReadRequest", f, w)) != 0) {
			goto out;
		}
	}
	if (r->n_accepted > 0 && !chosen) {
		rc = FAIL(r, TS_EINVALID,
			  "server does not support any of the %zu requested response types",
			  r->n_accepted);
		goto out;
	}
	for (size_t i = 0; i < r->n_queries; i++) {
		struct ts_rr_query *q = &r->queries[i];
		q->matchers = r->matchers_arena ? r->matchers_arena + q->matcher_off : NULL;
		q->hints.grouping = r->grouping_arena ? r->grouping_arena + q->hints.grouping_off
						      : NULL;
	}
out:
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(r->err, sizeof r->err, "out of memory");
		size_t n_acc = r->n_accepted;
		reset(r, 0);
		r->n_accepted = n_acc;
	}
	return rc;
}

/* ---- encoding helpers ---- */

static size_t str_field_size(size_t n)
{
	return n ? 1 + ts_pb_varint_size(n) + n : 0;
}

static size_t label_body_size(const struct ts_label *l)
{
	return str_field_size(l->name_len) + str_field_size(l->value_len);
}

/* Label {1 name, 2 value} as field `field` of the enclosing message; empty strings are
 * omitted as proto3 does. */
static int put_label(struct ts_pb_buf *b, uint32_t field_no, const struct ts_label *l)
{
	size_t body = label_body_size(l);
	int rc = ts_pb_buf_reserve(b, 1 + 10 + body);
	if (rc)
		return rc;
	if ((rc = ts_pb_put_tag(b, field_no, TS_PB_LEN)) != 0 ||
	    (rc = ts_pb_put_varint(b, body)) != 0)
		return rc;
	if (l->name_len && (rc = ts_pb_put_bytes_field(b, 1, l->name, l->name_len)) != 0)
		return rc;
	if (l->value_len && (rc = ts_pb_put_bytes_field(b, 2, l->value, l->value_len)) != 0)
		return rc;
	return 0;
}

/* ---- SAMPLES ---- */

void ts_rr_samples_init(struct ts_rr_samples_writer *w)
{
	memset(w, 0, sizeof *w);
	ts_pb_buf_init(&w->out);
}

void ts_rr_samples_fini(struct ts_rr_samples_writer *w)
{
	if (!w)
		return;
	ts_pb_buf_fini(&w->out);
	w->state = 0;
}

int ts_rr_samples_begin_result(struct ts_rr_samples_writer *w)
{
	if (w->state != 0)
		return TS_EINVALID;
	int rc = ts_pb_begin(&w->out, 1, &w->result_mark);
	if (rc == 0)
		w->state = 1;
	return rc;
}

int ts_rr_samples_begin_series(struct ts_rr_samples_writer *w, const struct ts_label *labels,
			       size_t n_labels)
{
	if (w->state != 1)
		return TS_EINVALID;
	size_t undo = w->out.len;
	int rc = ts_pb_begin(&w->out, 1, &w->series_mark);
	for (size_t i = 0; rc == 0 && i < n_labels; i++)
		rc = put_label(&w->out, 1, &labels[i]);
	if (rc) {
		w->out.len = undo;
		return rc;
	}
	w->state = 2;
	return 0;
}

int ts_rr_samples_add(struct ts_rr_samples_writer *w, const struct ts_sample *s, size_t n)
{
	if (w->state != 2)
		return TS_EINVALID;
	/* Worst case per sample: tag+len 2, value 9, timestamp 11. */
	if (n > SIZE_MAX / 32)
		return -ENOMEM;
	int rc = ts_pb_buf_reserve(&w->out, n * 22 + 32);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		uint64_t bits;
		memcpy(&bits, &s[i].v, sizeof bits);
		size_t body = (bits ? 9 : 0) +
			      (s[i].t_ms ? 1 + ts_pb_varint_size((uint64_t)s[i].t_ms) : 0);
		/* Capacity reserved above: these cannot fail. */
		ts_pb_put_tag(&w->out, 2, TS_PB_LEN);
		ts_pb_put_varint(&w->out, body);
		if (bits)
			ts_pb_put_double_field(&w->out, 1, s[i].v);
		if (s[i].t_ms)
			ts_pb_put_int64_field(&w->out, 2, s[i].t_ms);
	}
	return 0;
}

/* Closes the innermost open message, opened at `mark`, when the writer's state (its
 * nesting depth) is `depth`. */
static int end_nested(struct ts_rr_samples_writer *w, int depth, size_t mark)
{
	if (w->state != depth)
		return TS_EINVALID;
	int rc = ts_pb_end(&w->out, mark);
	if (rc == 0)
		w->state = depth - 1;
	return rc;
}

int ts_rr_samples_end_series(struct ts_rr_samples_writer *w)
{
	return end_nested(w, 2, w->series_mark);
}

int ts_rr_samples_end_result(struct ts_rr_samples_writer *w)
{
	return end_nested(w, 1, w->result_mark);
}

/* ---- STREAMED_XOR_CHUNKS ---- */

void ts_rr_chunked_init(struct ts_rr_chunked_writer *w, size_t max_frame_bytes)
{
	memset(w, 0, sizeof *w);
	ts_pb_buf_init(&w->out);
	ts_pb_buf_init(&w->msg);
	w->max_frame_bytes = max_frame_bytes ? max_frame_bytes : TS_RR_MAX_FRAME_BYTES;
}

void ts_rr_chunked_fini(struct ts_rr_chunked_writer *w)
{
	if (!w)
		return;
	ts_pb_buf_fini(&w->out);
	ts_pb_buf_fini(&w->msg);
	w->in_series = 0;
}

/* Size of the ChunkedReadResponse whose ChunkedSeries body is `body` bytes. */
static size_t msg_size(const struct ts_rr_chunked_writer *w, size_t body)
{
	size_t qi = w->query_index ? 1 + ts_pb_varint_size((uint64_t)w->query_index) : 0;
	return 1 + ts_pb_varint_size(body) + body + qi;
}

static size_t chunk_body_size(int64_t min_t, int64_t max_t, uint32_t type, size_t len)
{
	return (min_t ? 1 + ts_pb_varint_size((uint64_t)min_t) : 0) +
	       (max_t ? 1 + ts_pb_varint_size((uint64_t)max_t) : 0) +
	       (type ? 1 + ts_pb_varint_size(type) : 0) + str_field_size(len);
}

static int flush_frame(struct ts_rr_chunked_writer *w)
{
	size_t body = w->msg.len;
	size_t m = msg_size(w, body);
	int rc = ts_pb_buf_reserve(&w->out, 10 + 4 + m + 32);
	if (rc)
		return rc;
	ts_pb_put_varint(&w->out, m);
	size_t crc_at = w->out.len;
	w->out.len += 4;
	size_t msg_at = w->out.len;
	ts_pb_put_tag(&w->out, 1, TS_PB_LEN);
	ts_pb_put_varint(&w->out, body);
	ts_pb_put_raw(&w->out, w->msg.data, body);
	if (w->query_index)
		ts_pb_put_int64_field(&w->out, 2, w->query_index);
	uint32_t crc = ts_crc32c(0, w->out.data + msg_at, w->out.len - msg_at);
	w->out.data[crc_at] = (uint8_t)(crc >> 24);
	w->out.data[crc_at + 1] = (uint8_t)(crc >> 16);
	w->out.data[crc_at + 2] = (uint8_t)(crc >> 8);
	w->out.data[crc_at + 3] = (uint8_t)crc;
	w->msg.len = w->labels_len; /* the next frame of this series repeats its labels */
	w->n_chunks = 0;
	w->n_frames++;
	return 0;
}

int ts_rr_chunked_begin_series(struct ts_rr_chunked_writer *w, int64_t query_index,
			       const struct ts_label *labels, size_t n_labels)
{
	if (w->in_series)
		return TS_EINVALID;
	w->msg.len = 0;
	w->query_index = query_index;
	for (size_t i = 0; i < n_labels; i++) {
		int rc = put_label(&w->msg, 1, &labels[i]);
		if (rc)
			return rc;
	}
	/* The smallest chunk entry (empty Chunk) takes 2 bytes. */
	if (msg_size(w, w->msg.len + 2) > w->max_frame_bytes)
		return TS_ELIMIT;
	w->labels_len = w->msg.len;
	w->n_chunks = 0;
	w->in_series = 1;
	return 0;
}

int ts_rr_chunked_add_chunk(struct ts_rr_chunked_writer *w, int64_t min_t_ms, int64_t max_t_ms,
			    uint32_t type, const uint8_t *data, size_t len)
{
	if (!w->in_series)
		return TS_EINVALID;
	size_t cb = chunk_body_size(min_t_ms, max_t_ms, type, len);
	size_t entry = 1 + ts_pb_varint_size(cb) + cb;
	if (msg_size(w, w->labels_len + entry) > w->max_frame_bytes)
		return TS_ELIMIT;
	int rc;
	if (w->n_chunks > 0 && msg_size(w, w->msg.len + entry) > w->max_frame_bytes &&
	    (rc = flush_frame(w)) != 0)
		return rc;
	size_t undo = w->msg.len;
	if ((rc = ts_pb_buf_reserve(&w->msg, entry + 32)) != 0)
		return rc;
	ts_pb_put_tag(&w->msg, 2, TS_PB_LEN);
	ts_pb_put_varint(&w->msg, cb);
	if (min_t_ms)
		ts_pb_put_int64_field(&w->msg, 1, min_t_ms);
	if (max_t_ms)
		ts_pb_put_int64_field(&w->msg, 2, max_t_ms);
	if (type)
		ts_pb_put_uint64_field(&w->msg, 3, type);
	if (len)
		ts_pb_put_bytes_field(&w->msg, 4, data, len);
	if (w->msg.len != undo + entry) { /* our size arithmetic is the frame bound */
		w->msg.len = undo;
		return TS_EINVALID;
	}
	w->n_chunks++;
	return 0;
}

int ts_rr_chunked_end_series(struct ts_rr_chunked_writer *w)
{
	if (!w->in_series)
		return TS_EINVALID;
	if (w->n_chunks > 0) {
		int rc = flush_frame(w);
		if (rc)
			return rc;
	}
	w->in_series = 0;
	w->msg.len = 0;
	w->labels_len = 0;
	return 0;
}
