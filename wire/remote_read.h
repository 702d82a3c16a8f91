/*
 * remote_read.h - Prometheus remote read: decoding `prometheus.ReadRequest`, and the two
 * response encodings: SAMPLES (`ReadResponse`, to be snappy-compressed by the caller)
 * and STREAMED_XOR_CHUNKS (a stream of `ChunkedReadResponse` frames).
 *
 * Decoding follows remote_write.h: a reusable caller-owned request whose strings alias
 * the (decompressed) input buffer and whose arrays are arenas reused across requests;
 * valid until the next ts_rr_decode() or ts_rr_request_fini().
 *
 * Encoding is incremental so a handler can walk series and chunks from the engine
 * without materialising the answer: open a series, add samples or chunks, close it; the
 * writer owns its output buffer (struct ts_pb_buf) and the caller drains it whenever it
 * wants (send out.data[0..out.len), then set out.len = 0).
 *
 * Threading: a request or writer belongs to one thread at a time.
 */
#ifndef TS_WIRE_REMOTE_READ_H
#define TS_WIRE_REMOTE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"
#include "wire/pb.h"

enum ts_rr_response_type {
	TS_RR_SAMPLES = 0,
	TS_RR_STREAMED_XOR_CHUNKS = 1,
};

enum ts_rr_match_type { TS_RR_EQ = 0, TS_RR_NEQ = 1, TS_RR_RE = 2, TS_RR_NRE = 3 };

/* Chunk.Encoding; only XOR is defined for remote read. */
#define TS_RR_CHUNK_XOR 1

/* Frame size bound of STREAMED_XOR_CHUNKS (the message, without the frame header). */
#define TS_RR_MAX_FRAME_BYTES (1u << 20)

struct ts_rr_matcher {
	uint32_t type;		/* enum ts_rr_match_type, checked to be 0..3 */
	struct ts_pb_str name;	/* alias the input */
	struct ts_pb_str value; /* RE/NRE: the regex, to be anchored by the caller */
};

struct ts_rr_hints {
	int64_t step_ms, start_ms, end_ms, range_ms;
	struct ts_pb_str func;
	struct ts_pb_str *grouping; /* into the request's arena */
	uint32_t n_grouping;
	uint32_t by;	       /* bool */
	uint32_t grouping_off; /* internal */
};

struct ts_rr_query {
	int64_t start_ms, end_ms;
	struct ts_rr_matcher *matchers;
	uint32_t n_matchers;
	uint32_t has_hints;
	struct ts_rr_hints hints;
	uint32_t matcher_off; /* internal */
};

struct ts_rr_request {
	/* output */
	struct ts_rr_query *queries;
	size_t n_queries;
	enum ts_rr_response_type response_type; /* negotiated: first supported in the list */
	size_t n_accepted;			/* length of accepted_response_types */
	char err[256];
	/* limits (TS_ELIMIT); set by init, the caller may change them */
	size_t max_queries, max_matchers, max_grouping;
	/* arenas (internal) */
	size_t queries_cap;
	struct ts_rr_matcher *matchers_arena;
	size_t n_matchers, matchers_cap;
	struct ts_pb_str *grouping_arena;
	size_t n_grouping, grouping_cap;
};

/* Zeroes r and sets the default limits (1024 queries, 65536 matchers, 65536 grouping
 * labels). Cannot fail; allocates nothing. */
void ts_rr_request_init(struct ts_rr_request *r);
/* Frees the arenas and zeroes r. Accepts NULL. */
void ts_rr_request_fini(struct ts_rr_request *r);

/* Decodes an uncompressed ReadRequest buf[0..len) into r (replacing what r held). buf
 * is borrowed: the strings of the result alias it. buf may be NULL when len is 0.
 * Returns 0;
 *   TS_ECORRUPT  malformed protobuf or wrong wire type for a known field;
 *   TS_EINVALID  a matcher type outside EQ/NEQ/RE/NRE, or a non-empty
 *                accepted_response_types naming no type we support (both 400s), or
 *                buf NULL with len > 0;
 *   TS_ELIMIT    r->max_* exceeded;
 *   -ENOMEM.
 * On failure r->err says why and where (the field, the byte offset) and the outputs are
 * reset (n_queries 0; n_accepted is kept). An empty accepted list means SAMPLES. */
int ts_rr_decode(struct ts_rr_request *r, const uint8_t *buf, size_t len);

/* ---- SAMPLES: ReadResponse { QueryResult { TimeSeries { Label, Sample } } } ---- */

/* Builds one ReadResponse in `out`. Calls nest as
 *   ( begin_result ( begin_series add* end_series )* end_result )*
 * with one result per query, in query order. Every call returns 0, -ENOMEM, or
 * TS_EINVALID when called out of order. Labels are copied; nothing is retained. */
struct ts_rr_samples_writer {
	struct ts_pb_buf out; /* owned; the encoded message so far */
	size_t result_mark, series_mark;
	int state; /* internal: 0 idle, 1 in result, 2 in series */
};

/* Zeroes w (no allocation yet). Cannot fail. */
void ts_rr_samples_init(struct ts_rr_samples_writer *w);
/* Frees w's buffer. Accepts NULL. */
void ts_rr_samples_fini(struct ts_rr_samples_writer *w);
int ts_rr_samples_begin_result(struct ts_rr_samples_writer *w);
int ts_rr_samples_begin_series(struct ts_rr_samples_writer *w, const struct ts_label *labels,
			       size_t n_labels);
int ts_rr_samples_add(struct ts_rr_samples_writer *w, const struct ts_sample *s, size_t n);
int ts_rr_samples_end_series(struct ts_rr_samples_writer *w);
int ts_rr_samples_end_result(struct ts_rr_samples_writer *w);

/* ---- STREAMED_XOR_CHUNKS frames ---- */

/* Writes frames `uvarint(len) | CRC32C(msg) big-endian u32 | msg`, where msg is a
 * ChunkedReadResponse holding exactly one ChunkedSeries and the query_index, like
 * Prometheus. A series whose chunks do not fit into one message of at most
 * max_frame_bytes is split over consecutive frames that repeat its labels. Usage:
 *   begin_series(labels) add_chunk()* end_series()   for each series of a query;
 * completed frames accumulate in `out` (drain it at any time between calls). A series
 * with no chunks produces no frame. Labels are copied at begin_series; chunk data is
 * copied at add_chunk. */
struct ts_rr_chunked_writer {
	struct ts_pb_buf out; /* owned; complete frames, ready to send */
	struct ts_pb_buf msg; /* internal: labels + chunks of the open frame */
	size_t labels_len;    /* internal: bytes of labels at msg's start */
	size_t n_chunks;      /* internal: chunks in the open frame */
	size_t max_frame_bytes;
	int64_t query_index;
	int in_series;
	size_t n_frames; /* frames written so far (statistics, tests) */
};

/* Zeroes w and sets its frame bound (max_frame_bytes 0 means TS_RR_MAX_FRAME_BYTES).
 * Cannot fail; allocates nothing yet. */
void ts_rr_chunked_init(struct ts_rr_chunked_writer *w, size_t max_frame_bytes);
/* Frees w's buffers (an open series is dropped). Accepts NULL. */
void ts_rr_chunked_fini(struct ts_rr_chunked_writer *w);

/* Opens a series of query `query_index`. 0, -ENOMEM, TS_EINVALID (already open),
 * TS_ELIMIT (the labels alone leave no room for a chunk in a frame). */
int ts_rr_chunked_begin_series(struct ts_rr_chunked_writer *w, int64_t query_index,
			       const struct ts_label *labels, size_t n_labels);
/* Adds one chunk; flushes the open frame first if the chunk would push it over the
 * bound. 0, -ENOMEM, TS_EINVALID (no open series), TS_ELIMIT (the chunk cannot fit
 * even in a frame of its own). */
int ts_rr_chunked_add_chunk(struct ts_rr_chunked_writer *w, int64_t min_t_ms, int64_t max_t_ms,
			    uint32_t type, const uint8_t *data, size_t len);
/* Closes the series, emitting its last frame. 0, -ENOMEM, TS_EINVALID. */
int ts_rr_chunked_end_series(struct ts_rr_chunked_writer *w);

#endif
