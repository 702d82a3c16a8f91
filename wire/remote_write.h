/*
 * remote_write.h - decoding of Prometheus remote-write bodies (RW 1.0
 * `prometheus.WriteRequest` and RW 2.0 `io.prometheus.write.v2.Request`), the label
 * rules a series must pass, and Content-Type/Content-Encoding negotiation.
 *
 * Model: picohttpparser. The decoder reads an already decompressed body and fills a
 * caller-owned, reusable struct ts_rw_request. Every string it hands out (label names and
 * values, metadata help/unit/family, RW2 symbols) ALIASES THE INPUT BUFFER: keep the
 * body alive and unmodified while you use the result. Samples, labels and exemplars are
 * copied into arrays (arenas) owned by the request that grow to the largest request seen
 * and are reused, so steady-state decoding allocates nothing. Everything the request
 * points to is valid until the next ts_rw_decode() or ts_rw_request_fini() on it.
 *
 * Native histograms are counted per series, not decoded (we do not store them yet; the
 * handler answers with a 400 and Histograms-Written: 0). Exemplars are decoded (labels,
 * value, timestamp) so they can be kept later; nothing validates their labels yet.
 *
 * Threading: a request struct belongs to one thread at a time; the functions keep no
 * global state.
 */
#ifndef TS_WIRE_REMOTE_WRITE_H
#define TS_WIRE_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"
#include "wire/pb.h"

enum ts_rw_version {
	TS_RW_V1 = 1, /* prometheus.WriteRequest */
	TS_RW_V2 = 2, /* io.prometheus.write.v2.Request */
};

/* MetricType of both versions (same numbers). Unknown numbers are passed through. */
enum ts_rw_metric_type {
	TS_RW_TYPE_UNKNOWN = 0,
	TS_RW_TYPE_COUNTER = 1,
	TS_RW_TYPE_GAUGE = 2,
	TS_RW_TYPE_HISTOGRAM = 3,
	TS_RW_TYPE_GAUGEHISTOGRAM = 4,
	TS_RW_TYPE_SUMMARY = 5,
	TS_RW_TYPE_INFO = 6,
	TS_RW_TYPE_STATESET = 7,
};

struct ts_rw_exemplar {
	const struct ts_label *labels; /* into the request's exemplar-label arena */
	uint32_t n_labels;
	uint32_t label_off; /* internal: index of labels[0] in that arena */
	double v;
	int64_t t_ms;
};

/* One TimeSeries. Labels are in wire order (RW2: resolved through the symbol table);
 * ts_rw_validate_series() may compact them (it drops empty-valued labels). */
struct ts_rw_series {
	struct ts_label *labels;
	struct ts_sample *samples;
	struct ts_rw_exemplar *exemplars;
	uint32_t n_labels;
	uint32_t n_samples;
	uint32_t n_exemplars;
	uint32_t n_histograms; /* counted, not decoded */
	/* RW2 only (zero for RW1): the series' Metadata message. help/unit alias the
	 * symbol table, i.e. the input; a 0 ref gives the empty string. */
	uint32_t has_metadata;
	uint32_t type; /* enum ts_rw_metric_type */
	struct ts_pb_str help;
	struct ts_pb_str unit;
	/* internal: arena indices while decoding (pointers are set at the end because
	 * arenas may move while they grow). */
	uint32_t label_off, sample_off, exemplar_off;
};

/* RW1 MetricMetadata. Strings alias the input. */
struct ts_rw_metadata {
	uint32_t type; /* enum ts_rw_metric_type */
	struct ts_pb_str family;
	struct ts_pb_str help;
	struct ts_pb_str unit;
};

/* A decoded request. Initialise with ts_rw_request_init(), reuse across requests,
 * release with ts_rw_request_fini(). Output fields are read-only for callers except
 * that ts_rw_validate_series() may rewrite a series' labels. */
struct ts_rw_request {
	/* output */
	enum ts_rw_version version;
	struct ts_rw_series *series;
	size_t n_series;
	struct ts_rw_metadata *metadata; /* RW1 only */
	size_t n_metadata;
	size_t n_samples; /* totals over all series */
	size_t n_histograms;
	size_t n_exemplars;
	struct ts_pb_str *symbols; /* RW2 only: the symbol table, aliasing input */
	size_t n_symbols;
	char err[256]; /* why the last decode failed ("" on success) */

	/* limits on what one request may make us hold; exceeding one is TS_ELIMIT.
	 * Set to defaults by init (see remote_write.c), the caller may change them;
	 * decode clamps them to 2^32-1. max_labels counts series and exemplar labels. */
	size_t max_series, max_samples, max_labels, max_exemplars, max_symbols, max_metadata;

	/* arenas (internal) */
	size_t series_cap, metadata_cap, symbols_cap;
	struct ts_label *labels;
	size_t n_labels, labels_cap;
	struct ts_sample *samples_arena;
	size_t samples_cap;
	struct ts_rw_exemplar *exemplars_arena;
	size_t exemplars_cap;
	struct ts_label *ex_labels;
	size_t n_ex_labels, ex_labels_cap;
};

/* Zeroes r and sets the default limits (see remote_write.c). Cannot fail; allocates
 * nothing. */
void ts_rw_request_init(struct ts_rw_request *r);
/* Frees the arenas and zeroes r. Accepts NULL. The struct may be init'ed again
 * afterwards. */
void ts_rw_request_fini(struct ts_rw_request *r);

/* Decodes an uncompressed body buf[0..len) of the given version into r (replacing
 * what r held). buf is borrowed: the strings of the result alias it. buf may be NULL
 * when len is 0 (an empty body is a valid empty request).
 * Returns 0;
 *   TS_ECORRUPT  malformed protobuf, wrong wire type for a known field, RW2 symbol
 *                table not starting with "", out-of-range or odd-length refs;
 *   TS_ELIMIT    one of r->max_* exceeded ("more than N <what> in one request");
 *   TS_EINVALID  an unknown version, or buf NULL with len > 0, or a body decoded as
 *                1.0 that holds RW 2.0 fields (4, 5) and no 1.0 series;
 *   -ENOMEM.
 * On failure r->err names what was wrong and where (byte offset, series index) and
 * the outputs are unspecified (n_series etc. are reset to 0). Arenas keep their size. */
int ts_rw_decode(struct ts_rw_request *r, enum ts_rw_version v, const uint8_t *buf, size_t len);

/* ---- label rules ---- */

enum ts_rw_reason {
	TS_RW_VALID = 0,
	TS_RW_NO_METRIC_NAME,  /* no __name__ label (or only an empty one) */
	TS_RW_BAD_METRIC_NAME, /* __name__ value not [a-zA-Z_:][a-zA-Z0-9_:]* */
	TS_RW_BAD_LABEL_NAME,  /* empty, or not [a-zA-Z_][a-zA-Z0-9_]* */
	TS_RW_UNSORTED_LABELS, /* names not strictly ascending by bytes */
	TS_RW_DUPLICATE_LABEL, /* same name twice */
	TS_RW_BAD_UTF8,	       /* a value is not valid UTF-8 */
	TS_RW_TOO_MANY_LABELS,
	TS_RW_NAME_TOO_LONG,
	TS_RW_VALUE_TOO_LONG,
};

/* Per-series limits; 0 means unlimited. Counted after empty-valued labels are dropped;
 * lengths in bytes. */
struct ts_rw_limits {
	uint32_t max_labels;
	uint32_t max_name_len;
	uint32_t max_value_len;
};

/* Checks a decoded series against Prometheus' label rules and the limits.
 * First drops labels whose value is empty, in place (Prometheus' head does the same:
 * an empty value means the label is absent), then checks the rest.
 * lim may be NULL (no limits). msg (may be NULL) receives a human-readable reason
 * naming the label and the series' metric name, non-printable bytes escaped.
 * Returns 0 (reason TS_RW_VALID), TS_EINVALID for a rule violation, TS_ELIMIT for a
 * limit; *reason (may be NULL) says which. */
int ts_rw_validate_series(struct ts_rw_series *s, const struct ts_rw_limits *lim,
			  enum ts_rw_reason *reason, char *msg, size_t msg_cap);

/* Short stable name of a reason ("unsorted_labels", ...), e.g. for a metric label; a
 * static string ("unknown" outside the enum). */
const char *ts_rw_reason_name(enum ts_rw_reason reason);


/* ---- negotiation ---- */

/* Picks the protocol version from the Content-Type and Content-Encoding header values
 * (pointer + length, not NUL-terminated; NULL pointer = header absent).
 *   Content-Type: media type `application/x-protobuf` (case-insensitive), parameters per
 *   RFC 9110 (OWS around ';', parameter names case-insensitive, token or quoted-string
 *   values, unknown parameters ignored); `proto=prometheus.WriteRequest` or no proto
 *   parameter -> 1.0; `proto=io.prometheus.write.v2.Request` -> 2.0 (values compared
 *   exactly: they are protobuf names). An absent or empty Content-Type means 1.0, as
 *   Prometheus' own receiver assumes.
 *   Content-Encoding: `snappy` (case-insensitive). Absent or empty means snappy: every
 *   Prometheus sender compresses, Prometheus' receiver and VictoriaMetrics both decode
 *   snappy regardless of the header.
 * Returns 0 with *version set, or 415 (the HTTP status to answer) with msg (may be
 * NULL) saying why. */
int ts_rw_negotiate(const char *content_type, size_t ct_len, const char *content_encoding,
		    size_t ce_len, enum ts_rw_version *version, char *msg, size_t msg_cap);

#endif
