/*
 * api_json.h - the Prometheus HTTP API's conventions, as the read-side handlers of
 * tsdbd share them (api.c, export.c, read.c, grafana.c): how an answer is written (the
 * JSON envelope, values, times, labels, errors and the error type of a failed
 * evaluation) and how a request is read (parameters from the query string and form
 * body, times, durations, limits, match[] selectors), with Prometheus' own messages.
 * Request bodies in JSON are read with wire/json.h; selectors are query/selector.h's.
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
 * Invariant: every function that takes a response either completes it and returns
 * non-zero, or leaves it untouched and returns 0, so a handler chains them and returns
 * at the first failure. Builders that take a struct ts_sbuf never fail themselves: an
 * allocation failure is remembered by the buffer and surfaces in ts_api_finish.
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
#include "server/sbuf.h"
#include "tsdb/tsdb.h"
#include "wire/json.h"
#include "wire/params.h"

struct ts_app;

/* Route registration of the read side's files, called by ts_query_routes (api.c).
 * Each returns 0 or what ts_net_routes returned. */
int ts__read_routes(struct ts_app *app);    /* read.c */
int ts__export_routes(struct ts_app *app);  /* export.c */
int ts__grafana_routes(struct ts_app *app); /* grafana.c */

/* ---- answers ---- */

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
 * (arguments borrowed for the call) and truncated at 1 KiB. Completes the response;
 * out of memory: a fixed 503 "unavailable" body instead. */
void ts_api_error(struct ts_net_response *resp, enum ts_api_errtype t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers a failed engine call (tsdb.h): TS_EINVALID is bad_data with msg (the engine's
 * message; "invalid matcher" when empty or NULL), -ENOMEM unavailable, anything else
 * internal with the code's text. */
void ts_api_engine_error(struct ts_net_response *resp, int rc, const char *msg);

/* The envelope error type of a failed evaluation (query/query.h's ts_query_*): from
 * err->type when set, else from the code (TS_EINVALID bad_data, -ETIMEDOUT timeout,
 * -ECANCELED canceled, -ENOMEM and TS_ECORRUPT internal, anything else execution). */
enum ts_api_errtype ts_api_eval_errtype(int rc, const struct ts_qerr *err);

/* Starts a success body in b: {"status":"success","data": */
void ts_api_begin(struct ts_sbuf *b);
/* Ends it (warnings[0..n_warnings), NUL-terminated strings, borrowed) and answers 200
 * with the body taken from b (b is left empty). If b failed to grow, the client gets a
 * 503 "unavailable" error instead. Completes the response. */
void ts_api_finish(struct ts_net_response *resp, struct ts_sbuf *b, const char *const *warnings,
		   size_t n_warnings);

/* A sample value as a JSON string, Prometheus' layout (see above). */
void ts_api_value(struct ts_sbuf *b, double v);
/* The same text without quotes into buf (at least TS_FMT_DOUBLE_MAX + 24 bytes),
 * NUL-terminated; returns its length. Grafana wants numbers, and uses this for finite
 * values. Cannot fail. */
size_t ts_api_fmt_value(char *buf, double v);
/* A time in milliseconds as JSON seconds, Prometheus' layout (see above). */
void ts_api_time(struct ts_sbuf *b, int64_t t_ms);
/* {"name":"value",...} of l[0..n) in the given order (bytes JSON-escaped). */
void ts_api_labels(struct ts_sbuf *b, const struct ts_label *l, size_t n);
/* {"resultType":...,"result":...} of an evaluation (borrowed). At most `limit` series
 * (0: all); *truncated (may be NULL) is set to whether some were left out. */
void ts_api_result(struct ts_sbuf *b, const struct ts_qresult *r, size_t limit, bool *truncated);
/* A series as Prometheus' model.Metric.String() writes it: name{a="x", b="y"} (labels
 * other than __name__ in the given order), "name" alone, "{}" for no labels. */
void ts_api_series_name(struct ts_sbuf *b, const struct ts_label *l, uint32_t n);

/* ---- requests ---- */

/* Fills p (initialised by the caller, who finis it) from the query string and, for
 * POST with Content-Type application/x-www-form-urlencoded, the body. Returns 0, or
 * answers and returns 1: 400 bad_data for a malformed escape, 503 on out of memory. */
int ts_api_params(const struct ts_http_request *req, struct ts_net_response *resp,
		  struct ts_params *p);
/* Time parameter `name` (ts_parse_time_ms, and Prometheus' spellings of its own bounds,
 * see TS_API_MIN_TIME_MS) into *out; *out = def when absent or empty. Returns 0, or
 * answers 400 bad_data ("cannot parse ... to a valid timestamp") and returns 1. */
int ts_api_time_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
		      int64_t def, int64_t *out);
/* Duration parameter `name` ("5m", or float seconds, negative allowed as Prometheus
 * does) into *out in milliseconds; *out = def when absent or empty. Returns 0, or
 * answers 400 bad_data and returns 1. */
/* max_source_resolution (Thanos Query's parameter): absent, empty or "auto" give
 * TS_QRES_AUTO; "raw" and "0s" give 0; any other duration its milliseconds (the coarsest
 * tier at most that long answers). 0, or 1 after a 400 answer. */
int ts_api_resolution_param(struct ts_net_response *resp, const struct ts_params *p, int64_t *out);
int ts_api_duration_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
			  int64_t def, int64_t *out);
/* "limit" into *out: 0 when absent (no limit). Returns 0, or answers 400 bad_data (not
 * an integer, or negative) and returns 1. */
int ts_api_limit_param(struct ts_net_response *resp, const struct ts_params *p, size_t *out);
/* Every match[] of p parsed into *out (an array of *n selectors the caller frees with
 * ts_api_selectors_free; NULL and 0 when no match[] was given). Returns 0, or answers
 * (400 bad_data naming the parameter, 503 on out of memory) and returns 1 with *out
 * NULL. The selectors borrow nothing from p. */
int ts_api_selectors(struct ts_net_response *resp, const struct ts_params *p,
		     struct ts_selector **out, size_t *n);
/* Frees s[0..n) and the array. Accepts NULL. */
void ts_api_selectors_free(struct ts_selector *s, size_t n);

/* Milliseconds since the epoch (the wall clock; the default time of a query). */
int64_t ts_api_now_ms(void);

/* What an absent start/end means: everything. Prometheus' spellings of its own bounds
 * ("-292273086-05-16T16:47:06Z", "292277025-08-18T07:12:54.999999999Z"), which some
 * clients send, parse to these too. */
#define TS_API_MIN_TIME_MS INT64_MIN
#define TS_API_MAX_TIME_MS INT64_MAX

#endif
