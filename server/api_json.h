/*
 * api_json.h - what the read-side handlers of tsdbd share (api.c, export.c, read.c,
 * grafana.c): the Prometheus API envelope and value formatting, request parameters
 * (query string plus form body), series selectors from match[] parameters, a small JSON
 * document reader for request bodies, and calls into the PromQL evaluator.
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

#include "query/engine.h"
#include "server/net.h"
#include "server/params.h"
#include "server/sbuf.h"
#include "tsdb/tsdb.h"

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
/* Parses PromQL q[0..len), appends copies of m[0..n) (NUL-terminated names and values)
 * to the matchers of every vector selector in it, and prints the tree back into *out
 * (NUL-terminated, free with ts_free). Returns 0, TS_EINVALID with the parse error in
 * msg, -ENOMEM. */
int ts_api_add_matchers(const char *q, size_t len, const struct ts_matcher *m, size_t n, char **out,
			char *msg, size_t msg_len);

/* ---- series selectors (match[]) ---- */

/* The matchers of one series selector, in engine form. Owned: ts_api_selector_fini. */
struct ts_api_selector {
	struct ts_matcher *m; /* name/value point into the parsed tree */
	size_t n;
	void *ts__tree;
};

/* Parses sel[0..len) as a series selector ("up", "{job=\"a\"}", "x{y=~\"z\"}"; no
 * offset, no @, no range). Returns 0, or TS_EINVALID with a Prometheus-style message in
 * msg ("1:4: parse error: ..."), -ENOMEM. */
int ts_api_selector_parse(struct ts_api_selector *s, const char *sel, size_t len, char *msg,
			  size_t msg_len);
void ts_api_selector_fini(struct ts_api_selector *s);

/* Every match[] of p parsed. On error answers 400 bad_data naming the parameter and
 * returns non-zero. *n may be 0 (no match[] given). Free with ts_api_selectors_free. */
int ts_api_selectors(struct ts_net_response *resp, const struct ts_params *p,
		     struct ts_api_selector **out, size_t *n);
void ts_api_selectors_free(struct ts_api_selector *s, size_t n);

/* The union of the series matching any of sel[0..n) in [mint, maxt], sorted by labels
 * and without duplicates: refs into the sets, which stay owned by *u. With
 * `need_chunks`, series without a chunk overlapping [mint, maxt] are left out (the
 * engine's selection may return series that have no data in the range).
 * Free with ts_api_union_fini. Returns 0, TS_EINVALID (bad regex; msg set), -ENOMEM,
 * or an engine error. */
struct ts_api_ref {
	struct ts_series_set *set;
	size_t i;
	const struct ts_label *labels;
	uint32_t n_labels;
};
struct ts_api_union {
	struct ts_series_set **sets;
	size_t n_sets;
	struct ts_api_ref *refs;
	size_t n_refs;
};
int ts_api_union_select(struct ts_db *db, const struct ts_api_selector *sel, size_t n, int64_t mint,
			int64_t maxt, bool need_chunks, struct ts_api_union *u, char *msg,
			size_t msg_len);
void ts_api_union_fini(struct ts_api_union *u);

/* ---- the evaluator ---- */

/* ts_query_instant / ts_query_range with *out and *err cleared first. */
int ts_api_eval_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
			const struct ts_qopts *o, struct ts_qresult **out, struct ts_qerr *err);
int ts_api_eval_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms,
		      int64_t end_ms, int64_t step_ms, const struct ts_qopts *o,
		      struct ts_qresult **out, struct ts_qerr *err);
/* The envelope error type of a failed evaluation (from err->type, else from rc). */
enum ts_api_errtype ts_api_eval_errtype(int rc, const struct ts_qerr *err);

/* ---- JSON request bodies ---- */

enum ts_jv_type { TS_JV_NULL = 0, TS_JV_BOOL, TS_JV_NUM, TS_JV_STR, TS_JV_ARR, TS_JV_OBJ };

/* One value of a parsed document. Strings are decoded, NUL-terminated and owned by the
 * document; `key` is the member name when the value sits in an object. */
struct ts_jv {
	enum ts_jv_type type;
	bool b;
	double num;
	const char *s; /* STR; also the raw text of NUM */
	size_t len;
	const char *key; /* NULL outside objects */
	size_t key_len;
	uint32_t child; /* ARR/OBJ: index of the first element, 0 if none */
	uint32_t next;	/* index of the next sibling, 0 if none (0 is the root) */
};

struct ts_jdoc {
	struct ts_jv *v; /* v[0] is the root */
	size_t n, cap;
	char *str;
};

/* Parses one JSON text (strict RFC 8259, nesting <= TS_JSONL_MAX_DEPTH). Returns 0,
 * TS_EINVALID with a message in msg, -ENOMEM. Free with ts_jdoc_fini (also after a
 * failure). */
int ts_jdoc_parse(struct ts_jdoc *d, const char *text, size_t len, char *msg, size_t msg_len);
void ts_jdoc_fini(struct ts_jdoc *d);
/* Member `key` of object o (first match), or NULL (also when o is NULL or no object). */
const struct ts_jv *ts_jv_get(const struct ts_jdoc *d, const struct ts_jv *o, const char *key);
/* First element / next sibling, or NULL. */
const struct ts_jv *ts_jv_first(const struct ts_jdoc *d, const struct ts_jv *a);
const struct ts_jv *ts_jv_next(const struct ts_jdoc *d, const struct ts_jv *v);
/* The string of v, or NULL when v is not a string. */
const char *ts_jv_str(const struct ts_jv *v);

#endif
