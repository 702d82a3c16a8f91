/*
 * api_json.h - what the read-side handlers of tsdbd share (api.c, export.c, read.c,
 * grafana.c): the Prometheus API envelope and value formatting, request parameters
 * (query string plus form body) with Prometheus' error messages, match[] parameters
 * turned into selectors (query/selector.h), and calls into the PromQL evaluator.
 * Request bodies are read with wire/json.h.
 *
 * Formatting follows Prometheus 2.42's web/api/v1 exactly:
 *   - sample values are JSON strings, strconv.FormatFloat(v, 'f', -1, 64) unless
 *     |v| < 1e-6 or |v| >= 1e21 (then 'e'); "NaN", "+Inf", "-Inf";
 *   - times are JSON numbers of seconds: the integer part, then, when the millisecond
 *     fraction is not zero, '.' and exactly three digits ("1700000000.120").
 * Error envelope: {"status":"error","errorType":"<type>","error":"<msg>"} with the
 * status of the type (bad_data 400, execution 422, timeout 503, canceled 499,
 * internal 500, not_found 404, unavailable 503).
 *
 * Threading: everything here is called on a handler's worker thread and keeps no
 * shared state.
 */
#ifndef TS_SERVER_API_JSON_H
#define TS_SERVER_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/query.h"
#include "query/selector.h"
#include "server/net.h"
#include "wire/params.h"
#include "server/sbuf.h"
#include "tsdb/tsdb.h"
#include "wire/json.h"

struct ts_app;

/* Route registration of the read side's files, called by ts_query_routes (api.c). */
int ts__read_routes(struct ts_app *app);    /* read.c */
int ts__export_routes(struct ts_app *app);  /* export.c */
int ts__grafana_routes(struct ts_app *app); /* grafana.c */

/* ---- envelope ---- */

enum ts_api_errtype {
	TS_API_BAD_DATA = 0,
	TS_API_EXECUTION,
	TS_API_TIMEOUT,
	TS_API_CANCELED,
	TS_API_INTERNAL,
	TS_API_NOT_FOUND,
	TS_API_UNAVAILABLE
};

/* Answers {"status":"error",...} with the type's status. The message is printf-style
 * and truncated at 1 KiB. Completes the response. */
void ts_api_error(struct ts_net_response *resp, enum ts_api_errtype t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Starts a success body: {"status":"success","data": */
void ts_api_begin(struct ts_sbuf *b);
/* Ends it (optional warnings, NUL-terminated) and answers 200 with the body taken from
 * b (b is left empty; on out-of-memory the client gets a 503 error). Completes. */
void ts_api_finish(struct ts_net_response *resp, struct ts_sbuf *b, const char *const *warnings,
		   size_t n_warnings);

/* A sample value as a JSON string, Prometheus' layout (see above). */
void ts_api_value(struct ts_sbuf *b, double v);
/* The same text without quotes into buf (TS_FMT_DOUBLE_MAX + 24 bytes); returns its
 * length. Grafana wants numbers, and uses this for finite values. */
size_t ts_api_fmt_value(char *buf, double v);
/* A time in milliseconds as JSON seconds, Prometheus' layout (see above). */
void ts_api_time(struct ts_sbuf *b, int64_t t_ms);
/* {"name":"value",...} in the given order. */
void ts_api_labels(struct ts_sbuf *b, const struct ts_label *l, size_t n);
/* {"resultType":...,"result":...} of an evaluation. At most `limit` series (0: all);
 * *truncated (may be NULL) is set when some were left out. */
void ts_api_result(struct ts_sbuf *b, const struct ts_qresult *r, size_t limit, bool *truncated);

/* ---- parameters ---- */

/* Fills p from the query string and, for POST with Content-Type
 * application/x-www-form-urlencoded, the body. On a malformed escape answers 400 and
 * returns non-zero (the response is then complete). */
int ts_api_params(const struct ts_http_request *req, struct ts_net_response *resp,
		  struct ts_params *p);
/* A time parameter: *out = def when absent. Answers 400 and returns non-zero when bad. */
int ts_api_time_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
		      int64_t def, int64_t *out);
/* A duration parameter ("5m" or float seconds, negative allowed as Prometheus does):
 * *out = def when absent. Answers 400 and returns non-zero when bad. */
int ts_api_duration_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
			  int64_t def, int64_t *out);
/* "limit": 0 when absent (no limit). Answers 400 and returns non-zero when bad. */
int ts_api_limit_param(struct ts_net_response *resp, const struct ts_params *p, size_t *out);
/* Milliseconds since the epoch. */
int64_t ts_api_now_ms(void);

/* What an absent start/end means: everything. Prometheus' spellings of its own bounds
 * ("-292273086-05-16T16:47:06Z", "292277025-08-18T07:12:54.999999999Z"), which some
 * clients send, parse to these too. */
#define TS_API_MIN_TIME_MS INT64_MIN
#define TS_API_MAX_TIME_MS INT64_MAX

/* ---- labels and queries ---- */

/* Prometheus' label name rule: [a-zA-Z_][a-zA-Z0-9_]*. */
bool ts_api_label_name_valid(const char *s, size_t len);
/* A series as Prometheus' model.Metric.String() writes it: name{a="x", b="y"} (labels
 * other than __name__ in the given order), "name" alone, "{}" for no labels. */
void ts_api_series_name(struct ts_sbuf *b, const struct ts_label *l, uint32_t n);
/* Every match[] of p parsed. On error answers 400 bad_data naming the parameter and
 * returns non-zero. *n may be 0 (no match[] given). Free with ts_api_selectors_free. */
int ts_api_selectors(struct ts_net_response *resp, const struct ts_params *p,
		     struct ts_selector **out, size_t *n);
void ts_api_selectors_free(struct ts_selector *s, size_t n);

/* ---- the evaluator ---- */

/* ts_query_instant / ts_query_range with *out and *err cleared first. */
int ts_api_eval_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
			const struct ts_qopts *o, struct ts_qresult **out, struct ts_qerr *err);
int ts_api_eval_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms,
		      int64_t end_ms, int64_t step_ms, const struct ts_qopts *o,
		      struct ts_qresult **out, struct ts_qerr *err);
/* The envelope error type of a failed evaluation (from err->type, else from rc). */
enum ts_api_errtype ts_api_eval_errtype(int rc, const struct ts_qerr *err);

#endif
