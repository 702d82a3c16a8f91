/*
 * engine.h - evaluating PromQL against the engine (tsdb.h), as Prometheus 2.42 does:
 * instant queries at a time, range queries over [start, end] by step.
 *
 * Results are owned by a struct ts_qresult (one arena): labels, points and strings stay
 * valid until ts_qresult_free(). Errors carry Prometheus' error types so the HTTP layer
 * can map them (bad_data 400, execution 422, timeout 503, canceled 499, internal 500).
 *
 * Threading: any number of queries may run at once from different threads; each uses
 * its own read snapshot of the database.
 */
#ifndef TS_QUERY_ENGINE_H
#define TS_QUERY_ENGINE_H

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

struct ts_qresult {
	enum ts_qval type;
	const struct ts_qseries *series; /* vector and matrix */
	size_t n_series;
	struct ts_qpoint scalar; /* scalar: (eval time, value) */
	const char *string;	 /* string: the value, string_len bytes */
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
	char msg[512];
};

struct ts_qopts {
	int64_t lookback_ms;	      /* instant selector lookback; 0 means 5 minutes */
	int64_t timeout_ms;	      /* 0 means 2 minutes */
	uint64_t max_samples;	      /* samples held at once; 0 means 50,000,000 */
	uint32_t max_points;	      /* points per series in a range query; 0 means 11,000 */
	volatile const int *canceled; /* optional: evaluation stops when *canceled != 0 */
};

/* Evaluates q (q_len bytes, need not be NUL-terminated) at t_ms.
 * Returns 0 with *out set (free with ts_qresult_free), or a negative code with err
 * filled: TS_EINVALID (bad_data), TS_ELIMIT (execution: too many samples/points),
 * -ETIMEDOUT (timeout), -ECANCELED, -ENOMEM (internal), TS_ECORRUPT (internal),
 * or another error (execution). */
int ts_query_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
		     const struct ts_qopts *opts, struct ts_qresult **out, struct ts_qerr *err);

/* Evaluates q at start, start+step, ... <= end. The result is a matrix with series
 * sorted by labels (a scalar query gives one series without labels, as Prometheus
 * does); a string or range-vector expression is bad_data ("invalid expression type").
 * step_ms > 0; (end-start)/step + 1 <= max_points, else TS_ELIMIT with type bad_data
 * and Prometheus' message. Evaluation errors return a negative code whose meaning is
 * err->type (map on the type, not the code). Same returns as ts_query_instant. */
int ts_query_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms, int64_t end_ms,
		   int64_t step_ms, const struct ts_qopts *opts, struct ts_qresult **out,
		   struct ts_qerr *err);

/* Accepts NULL. */
void ts_qresult_free(struct ts_qresult *r);

#endif
