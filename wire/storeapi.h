/*
 * storeapi.h - the Thanos StoreAPI's messages (wire/proto/thanos_store.proto and
 * thanos_info.proto, Thanos' field numbers): decoding the requests of Series,
 * LabelNames and LabelValues, and encoding every response tsdbd sends. Built on
 * protobuf-c; the gRPC transport is the server's (server/grpc.c).
 *
 * Decoded requests own their memory (free with ts_sa_request_fini); their matchers'
 * name and value are NUL-terminated and point into it. Decoding checks what the
 * engine relies on: matcher types 0..3, names not empty, no NUL inside a string, at
 * most TS_SA_MAX_MATCHERS matchers, aggregates 0..5. Errors are TS_EINVALID with a
 * message for the client's status (grpc INVALID_ARGUMENT), or -ENOMEM.
 *
 * Encoders append one whole message to a ts_pb_buf (what a gRPC message carries).
 *
 * Threading: no shared state.
 */
#ifndef TS_WIRE_STOREAPI_H
#define TS_WIRE_STOREAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"
#include "wire/pb.h"

#define TS_SA_MAX_MATCHERS 256

/* SeriesRequest.aggregates, as a bit mask of 1 << Aggr. */
enum ts_sa_aggr {
	TS_SA_RAW = 0,
	TS_SA_COUNT = 1,
	TS_SA_SUM = 2,
	TS_SA_MIN = 3,
	TS_SA_MAX = 4,
	TS_SA_COUNTER = 5,
};
#define TS_SA_N_AGGR 6

struct ts_sa_request {
	int64_t mint, maxt;   /* Series: min_time/max_time; labels: start/end (0,0: all) */
	struct ts_matcher *m; /* n_m entries, owned */
	size_t n_m;
	const char *label;	/* LabelValues: the label name */
	int64_t max_resolution; /* Series: max_resolution_window (ms) */
	uint32_t aggr_mask;	/* Series: 1 << enum ts_sa_aggr per requested aggregate */
	bool skip_chunks;	/* Series */
	int64_t limit;		/* 0: none */
	void *ts__msg;		/* the protobuf-c message */
};

enum ts_sa_kind { TS_SA_SERIES, TS_SA_LABEL_NAMES, TS_SA_LABEL_VALUES };

/* Decodes one request message p[0..len) (borrowed for the call) of the given kind into
 * *out (zeroed first). Returns 0, TS_EINVALID (msg says why, NUL-terminated within
 * msg_len) or -ENOMEM. On error *out holds nothing to free. */
int ts_sa_decode(enum ts_sa_kind kind, const uint8_t *p, size_t len, struct ts_sa_request *out,
		 char *msg, size_t msg_len);
/* Frees what ts_sa_decode made; accepts a zeroed *r. */
void ts_sa_request_fini(struct ts_sa_request *r);

/* One AggrChunk: raw (XOR chunk bytes) or, for downsampled spans, the XOR chunks of
 * the aggregates (indexed by enum ts_sa_aggr; NULL = absent). Bytes are borrowed. */
struct ts_sa_chunk {
	int64_t mint, maxt;
	const uint8_t *data[TS_SA_N_AGGR];
	size_t len[TS_SA_N_AGGR];
};

/* SeriesResponse{series: {labels, chunks}}. Labels in the order given (the caller
 * sorts them). 0 or -ENOMEM. */
int ts_sa_put_series(struct ts_pb_buf *b, const struct ts_label *l, size_t n_l,
		     const struct ts_sa_chunk *c, size_t n_c);
/* SeriesResponse{warning}. 0 or -ENOMEM. */
int ts_sa_put_warning(struct ts_pb_buf *b, const char *w);
/* LabelNamesResponse / LabelValuesResponse (both: field 1 the strings). s[i] is
 * s_len[i] bytes. 0 or -ENOMEM. */
int ts_sa_put_strings(struct ts_pb_buf *b, const char *const *s, const size_t *s_len, size_t n);

/* What Info says of this store. */
struct ts_sa_info {
	const struct ts_label *ext; /* external labels, sorted by name */
	size_t n_ext;
	int64_t mint, maxt;
};
/* thanos.info.InfoResponse (component "store", store API with min/max time, the
 * external label set). 0 or -ENOMEM. */
int ts_sa_put_info(struct ts_pb_buf *b, const struct ts_sa_info *in);
/* thanos.InfoResponse of the Store service's own Info call (older Thanos Query). */
int ts_sa_put_store_info(struct ts_pb_buf *b, const struct ts_sa_info *in);

#endif
