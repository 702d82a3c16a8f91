/*
 * query.h - the query layer's public API: evaluating PromQL against the storage engine
 * (tsdb/tsdb.h) as Prometheus 2.42 does, instant queries at a time and range queries
 * over [start, end] by step.
 *
 * Results are owned by a struct ts_qresult (one arena): labels, points, strings and
 * warnings stay valid until ts_qresult_free(). Errors carry Prometheus' error types,
 * so the HTTP layer can map them (bad_data 400, execution 422, timeout 503, canceled
 * 499, internal 500), and Prometheus' messages.
 *
 * Threading: any number of queries may run at once from different threads, on one
 * database or several; each reads its own snapshot. A result is immutable: any thread
 * may read it, one frees it.
 */
#ifndef TS_QUERY_QUERY_H
#define TS_QUERY_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

enum ts_qval { TS_QV_SCALAR = 1, TS_QV_VECTOR, TS_QV_MATRIX, TS_QV_STRING };

struct ts_qpoint {
	int64_t t_ms;
	double v;
};

struct ts_qseries {
	const struct ts_label *labels; /* sorted by name; __name__ absent when dropped */
	uint32_t n_labels;
	const struct ts_qpoint *points; /* vector: exactly one; matrix: ascending time */
	size_t n_points;
};

/* What a query evaluated to. Everything it points to belongs to the result. */
struct ts_qresult {
	enum ts_qval type;
	const struct ts_qseries *series; /* vector and matrix; never series without points */
	size_t n_series;
	struct ts_qpoint scalar; /* scalar: (eval time, value) */
	const char *string;	 /* string: the value, string_len bytes (NUL-terminated) */
	size_t string_len;
	int64_t string_t_ms;
	const char *const *warnings; /* NUL-terminated messages */
	size_t n_warnings;
	uint64_t samples_scanned; /* for stats and /metrics */
	void *ts__arena;	  /* private */
};

enum ts_qerr_type {
	TS_QERR_NONE = 0,
	TS_QERR_BAD_DATA,  /* parse errors, bad parameters: 400 */
	TS_QERR_EXECUTION, /* evaluation errors, unsupported constructs, limits: 422 */
	TS_QERR_TIMEOUT,   /* 503 */
	TS_QERR_CANCELED,  /* 499 */
	TS_QERR_INTERNAL,  /* 500 */
};

struct ts_qerr {
	enum ts_qerr_type type;
	char msg[512]; /* Prometheus' message, NUL-terminated */
};

/* Limits and cancellation. A zero field means its default. */
/* What the zero fields of struct ts_qopts mean. */
#define TS_QUERY_DEFAULT_TIMEOUT_MS 120000
#define TS_QUERY_DEFAULT_MAX_SAMPLES 50000000

struct ts_qopts {
	int64_t lookback_ms;	      /* instant selector lookback; 0 means 5 minutes */
	int64_t timeout_ms;	      /* 0 means 2 minutes */
	uint64_t max_samples;	      /* samples held at once; 0 means 50,000,000 */
	uint32_t max_points;	      /* points per series in a range query; 0 means 11,000 */
	uint64_t max_series;	      /* series one selector may select; 0 means no limit */
	volatile const int *canceled; /* optional: evaluation stops when *canceled != 0 */
	/* Downsampled data (Thanos' max_source_resolution; semantics per function in
	 * query/README.md): 0 reads raw samples only (Prometheus' answers exactly);
	 * TS_QRES_AUTO picks per selector the coarsest tier at most step/5 (and range/5
	 * for a range function; raw for instant queries and for the functions that need
	 * every sample); a positive value uses the coarsest tier at most that many
	 * milliseconds (300000: 5m, 3600000: 1h) wherever one is current. */
	int64_t max_source_resolution_ms;
	/* Query-time deduplication of HA replicas (Thanos Query's --query.replica-label):
	 * series that differ only in these labels (n_replica_labels names, borrowed for the
	 * call) are merged into one without them, one replica at a time (see
	 * ts_select_opts.dedup_labels). 0: none. */
	const char *const *replica_labels;
	size_t n_replica_labels;
};
#define TS_QRES_AUTO INT64_C(-1)

/*
 * Evaluates q at t_ms (an instant query).
 *
 * db: an open database (borrowed for the call). q: q_len bytes of PromQL, need not be
 * NUL-terminated (borrowed for the call). opts: NULL for all defaults; *opts and
 * *opts->canceled are read during the call only.
 * On success returns 0 and *out is a result the caller owns (free with
 * ts_qresult_free): a scalar, an instant vector (in evaluation order; every point at
 * t_ms), a range vector (from a top-level matrix selector or subquery) or a string.
 * On failure *out is NULL and a negative code is returned; `err` (may be NULL) gets
 * the type and Prometheus' message. Map on err->type, not on the code:
 *   TS_EINVALID    bad_data: the text does not parse or type-check; the message is
 *                  "line:col: parse error: ..." (ts_promql_error_format). Also
 *                  execution, for a matcher the engine refuses.
 *   TS_ELIMIT      execution: more than max_samples samples would be held, or a
 *                  selector selects more than max_series series.
 *   -EDOM          execution: an evaluation error in Prometheus' words (duplicate
 *                  label sets, many-to-many matching, a bad function parameter, an
 *                  unsupported construct, ...).
 *   -ETIMEDOUT     timeout: timeout_ms passed.
 *   -ECANCELED     canceled: *opts->canceled became non-zero.
 *   -ENOMEM        internal: out of memory ("out of memory").
 *   -EINVAL        internal: an expression the evaluator cannot handle (not expected
 *                  of a type-checked tree).
 *   TS_ECORRUPT or another engine error
 *                  internal: selecting series or reading samples failed.
 */
int ts_query_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
		     const struct ts_qopts *opts, struct ts_qresult **out, struct ts_qerr *err);

/*
 * Evaluates q at start_ms, start_ms + step_ms, ... <= end_ms (a range query).
 *
 * Parameters, ownership and errors as ts_query_instant. On success the result is a
 * matrix with series sorted by labels, each with the points of the steps where it had
 * a value (a scalar expression gives one series without labels, as Prometheus does).
 * Before evaluating, the parameters are checked with Prometheus' messages, all of type
 * bad_data: step_ms <= 0 and end_ms < start_ms give TS_EINVALID; more than max_points
 * steps gives TS_ELIMIT; a string or range-vector expression gives TS_EINVALID
 * ("invalid expression type ... for range query").
 */
int ts_query_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms, int64_t end_ms,
		   int64_t step_ms, const struct ts_qopts *opts, struct ts_qresult **out,
		   struct ts_qerr *err);

/* How many threads one query may use (VictoriaMetrics' -search.maxWorkersPerQuery):
 * the caller's plus helpers started on first use, up to online CPUs and at most 4. A
 * query over many series spreads them over the threads idle at that moment; answers do
 * not depend on it. 1 keeps every query on its caller's thread; 0 restores the default
 * (all). Process-wide; call it before queries run. */
void ts_query_set_max_threads(unsigned n);

/* Prometheus' /api/v1/format_query: q (q_len bytes) parsed and written back as
 * Prometheus formats it (ts_ast_pretty: one line up to 100 characters, indented lines
 * beyond). *out is owned by the caller (ts_free). Returns 0, TS_EINVALID (bad_data: does
 * not parse; err says where, as ts_query_instant) or -ENOMEM (internal). */
int ts_query_format(const char *q, size_t q_len, char **out, struct ts_qerr *err);

/* Frees a result and everything it points to. Accepts NULL. */
void ts_qresult_free(struct ts_qresult *r);

#endif
