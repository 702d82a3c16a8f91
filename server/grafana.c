/*
 * grafana.c - the Grafana JSON datasource under /grafana/: the API of the
 * simpod-json-datasource plugin (/, /metrics, /metric-payload-options, /query,
 * /variable, /tag-keys, /tag-values) and of the older grafana-simple-json-datasource
 * (/search, /query, /annotations, /tag-keys, /tag-values, /options).
 *
 * A /query target is a metric name or any PromQL expression. It is evaluated as a range
 * query over range.from..range.to with step max(intervalMs, (to-from)/maxDataPoints)
 * (at least 1 ms, and never more than 11,000 points), the start aligned down to a
 * multiple of the step as Grafana's Prometheus datasource does. A target's payload may
 * wrap it: "function" (rate, irate, increase, delta, idelta, deriv) over "range"
 * (default max(4 steps, 1m)), then "aggregation" (sum, avg, min, max, count, stddev,
 * group) "by" a comma-separated label list. Ad-hoc filters ("filters", or "adhocFilters"
 * from older plugin versions) with operators = != =~ !~ become label matchers of every
 * vector selector of the parsed query (the tree is edited, printed back with
 * ts_ast_print and evaluated); < and > compare a label's value numerically and drop the
 * series of the result that fail (or lack the label).
 *
 * Answers: time series [{"target":"<metric{labels}>","datapoints":[[value, t_ms],...]}]
 * (values as JSON numbers, null for NaN and infinities, which JSON cannot carry), or,
 * when a target says "type":"table" or its payload "format":"table", one table per
 * target from an instant query at range.to: columns Time, the labels, Value. Errors are
 * {"error":"...","message":"..."} with 400 for bad requests and the Prometheus API's
 * status for evaluation errors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/promql.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/tenant.h"
#include "wire/fmtnum.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

#define MAX_POINTS 11000
#define MAX_FILTERS 64

/* ---- replies ---- */

static void reply(struct ts_net_response *resp, int status, struct ts_sbuf *b)
{
	size_t len;
	char *body = ts_sbuf_take(b, &len);
	ts_net_response_header(resp, "Content-Type", "application/json");
	if (!body) {
		ts_net_respond_text(resp, 503, "application/json", "{\"error\":\"out of memory\"}");
		return;
	}
	ts_net_respond(resp, status, body, len);
}

static void gf_error(struct ts_net_response *resp, int status, const char *msg)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_str(&b, "{\"error\":");
	ts_sbuf_json_str(&b, msg, strlen(msg));
	ts_sbuf_str(&b, ",\"message\":");
	ts_sbuf_json_str(&b, msg, strlen(msg));
	ts_sbuf_str(&b, "}");
	reply(resp, status, &b);
}

static const int errtype_status[] = {
	[TS_API_BAD_DATA] = 400,    [TS_API_EXECUTION] = 422, [TS_API_TIMEOUT] = 503,
	[TS_API_CANCELED] = 499,    [TS_API_INTERNAL] = 500,  [TS_API_NOT_FOUND] = 404,
	[TS_API_UNAVAILABLE] = 503,
};

/* Answers a failed evaluation with the status of its error type and its message. */
static void gf_eval_error(struct ts_net_response *resp, int rc, const struct ts_qerr *err)
{
	gf_error(resp, errtype_status[ts_api_eval_errtype(rc, err)],
		 err->msg[0] ? err->msg : ts_strerror(rc));
}

/* Parses the body; an empty body is an empty object (some panels post nothing). */
static int body_doc(const struct ts_http_request *req, struct ts_net_response *resp,
		    struct ts_jdoc *d)
{
	char msg[200];
	const char *body = req->body && req->body_len ? req->body : "{}";
	size_t len = req->body && req->body_len ? req->body_len : 2;
	int rc = ts_jdoc_parse(d, body, len, msg, sizeof msg);
	if (rc == 0 && d->v[0].type != TS_JV_OBJ) {
		snprintf(msg, sizeof msg, "request body must be a JSON object");
		rc = TS_EINVALID;
	}
	if (rc) {
		gf_error(resp, rc == -ENOMEM ? 503 : 400, rc == -ENOMEM ? "out of memory" : msg);
		return 1;
	}
	return 0;
}

/* Answers 200 with the strings of *l that contain `contains` (all of them when it is
 * NULL or empty) as a JSON array, each one as fmt_obj, the string and "}" when fmt_obj
 * is not NULL; frees *l. */
static void reply_strings(struct ts_net_response *resp, struct ts_strlist *l, const char *fmt_obj,
			  const char *contains)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_str(&b, "[");
	for (size_t i = 0, k = 0; i < l->n; i++) {
		if (contains && *contains && !strstr(l->v[i], contains))
			continue;
		if (k++)
			ts_sbuf_str(&b, ",");
		if (fmt_obj)
			ts_sbuf_str(&b, fmt_obj);
		ts_sbuf_json_str(&b, l->v[i], l->len[i]);
		if (fmt_obj)
			ts_sbuf_str(&b, "}");
	}
	ts_sbuf_str(&b, "]");
	ts_strlist_free(l);
	reply(resp, 200, &b);
}

/* ---- simple endpoints ---- */

/* ---- tenants: every look-up and query of a request is in its tenant (tenant.h) ---- */

/* The request's tenant; on an invalid header answers 400 and returns non-zero. */
static int gf_tenant(struct ts_app *app, const struct ts_http_request *req,
		     struct ts_net_response *resp, struct ts_tenant *t)
{
	char msg[300];
	if (ts_tenant_of(app, req, t, msg, sizeof msg) == 0)
		return 0;
	gf_error(resp, 400, msg);
	return 1;
}

/* Label values of `name` (NULL: label names) over m[0..n) within the tenant. */
static int gf_lookup(struct ts_app *app, const struct ts_tenant *t, const char *name,
		     const struct ts_matcher *m, size_t n, struct ts_strlist *l, char *msg,
		     size_t msg_len)
{
	struct ts_matcher *own;
	const struct ts_matcher *use;
	size_t nu;
	int rc = ts_tenant_matchers(t, m, n, &own, &use, &nu);
	if (rc == 0)
		rc = name ? ts_db_label_values(app->db, name, use, nu, INT64_MIN, INT64_MAX, l, msg,
					       msg_len)
			  : ts_db_label_names(app->db, use, nu, INT64_MIN, INT64_MAX, l, msg,
					      msg_len);
	ts_free(own);
	return rc;
}

/* A query within the tenant: instant (step 0) or range. */
static int gf_eval(struct ts_app *app, const struct ts_tenant *t, const char *q, int64_t start,
		   int64_t end, int64_t step, const struct ts_qopts *o, struct ts_qresult **r,
		   struct ts_qerr *err)
{
	char *scoped = NULL;
	int rc = ts_tenant_query(t, q, strlen(q), &scoped, err->msg, sizeof err->msg);
	if (rc) {
		err->type = rc == TS_EINVALID ? TS_QERR_BAD_DATA : TS_QERR_INTERNAL;
		return rc;
	}
	const char *use = scoped ? scoped : q;
	rc = step ? ts_query_range(app->db, use, strlen(use), start, end, step, o, r, err)
		  : ts_query_instant(app->db, use, strlen(use), end, o, r, err);
	ts_free(scoped);
	return rc;
}

static void h_root(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	ts_net_respond_text(resp, 200, "text/plain; charset=utf-8", "OK\n");
}

static const char *const aggregations[] = {
	"sum", "avg", "min", "max", "count", "stddev", "group"
};
static const char *const functions[] = { "rate", "irate", "increase", "delta", "idelta", "deriv" };
#define N_OF(a) (sizeof a / sizeof *a)

static void options(struct ts_sbuf *b, const char *none, const char *const *v, size_t n)
{
	ts_sbuf_printf(b, "[{\"label\":\"%s\",\"value\":\"\"}", none);
	for (size_t i = 0; i < n; i++)
		ts_sbuf_printf(b, ",{\"label\":\"%s\",\"value\":\"%s\"}", v[i], v[i]);
	ts_sbuf_str(b, "]");
}

static void payloads(struct ts_sbuf *b)
{
	ts_sbuf_str(b, "[{\"label\":\"Function\",\"name\":\"function\",\"type\":\"select\","
		       "\"placeholder\":\"none\",\"options\":");
	options(b, "none", functions, N_OF(functions));
	ts_sbuf_str(b, "},{\"label\":\"Range\",\"name\":\"range\",\"type\":\"input\","
		       "\"placeholder\":\"5m (default: 4 steps, at least 1m)\"},"
		       "{\"label\":\"Aggregation\",\"name\":\"aggregation\",\"type\":\"select\","
		       "\"placeholder\":\"none\",\"options\":");
	options(b, "none", aggregations, N_OF(aggregations));
	ts_sbuf_str(b, "},{\"label\":\"By\",\"name\":\"by\",\"type\":\"multi-select\","
		       "\"placeholder\":\"labels to group by\"},"
		       "{\"label\":\"Format\",\"name\":\"format\",\"type\":\"select\",\"options\":"
		       "[{\"label\":\"Time series\",\"value\":\"time_series\"},"
		       "{\"label\":\"Table\",\"value\":\"table\"}]}]");
}

/* Every metric name into *l; on failure answers 500 and returns non-zero. */
static int metric_names(struct ts_app *app, const struct ts_http_request *req,
			struct ts_net_response *resp, struct ts_strlist *l)
{
	memset(l, 0, sizeof *l);
	struct ts_tenant t;
	if (gf_tenant(app, req, resp, &t))
		return 1;
	if (gf_lookup(app, &t, "__name__", NULL, 0, l, NULL, 0) == 0)
		return 0;
	gf_error(resp, 500, "cannot list metrics");
	return 1;
}

static void h_metrics(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_jdoc d;
	if (body_doc(req, resp, &d))
		goto out;
	struct ts_strlist l;
	if (metric_names(arg, req, resp, &l))
		goto out;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_str(&b, "[");
	for (size_t i = 0; i < l.n; i++) {
		ts_sbuf_str(&b, i ? ",{\"label\":" : "{\"label\":");
		ts_sbuf_json_str(&b, l.v[i], l.len[i]);
		ts_sbuf_str(&b, ",\"value\":");
		ts_sbuf_json_str(&b, l.v[i], l.len[i]);
		ts_sbuf_str(&b, ",\"payloads\":");
		payloads(&b);
		ts_sbuf_str(&b, "}");
	}
	ts_sbuf_str(&b, "]");
	ts_strlist_free(&l);
	reply(resp, 200, &b);
out:
	ts_jdoc_fini(&d);
}

static void h_payload_options(const struct ts_http_request *req, struct ts_net_response *resp,
			      void *arg)
{
	struct ts_app *app = arg;
	struct ts_jdoc d;
	if (body_doc(req, resp, &d))
		goto out;
	const char *name = ts_jv_str(ts_jv_get(&d, &d.v[0], "name"));
	const char *metric = ts_jv_str(ts_jv_get(&d, &d.v[0], "metric"));
	struct ts_tenant t;
	if (gf_tenant(app, req, resp, &t))
		goto out;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	if (name && strcmp(name, "function") == 0) {
		options(&b, "none", functions, N_OF(functions));
	} else if (name && strcmp(name, "aggregation") == 0) {
		options(&b, "none", aggregations, N_OF(aggregations));
	} else if (name && strcmp(name, "format") == 0) {
		ts_sbuf_str(&b, "[{\"label\":\"Time series\",\"value\":\"time_series\"},"
				"{\"label\":\"Table\",\"value\":\"table\"}]");
	} else if (name && strcmp(name, "by") == 0) {
		/* The labels of the selected metric (all labels without one). */
		struct ts_matcher m = { TS_MATCH_EQ, "__name__", metric ? metric : "" };
		struct ts_strlist l = { 0 };
		int rc = gf_lookup(app, &t, NULL, &m, metric && *metric ? 1 : 0, &l, NULL, 0);
		ts_sbuf_str(&b, "[");
		for (size_t i = 0, k = 0; rc == 0 && i < l.n; i++) {
			if (strcmp(l.v[i], "__name__") == 0)
				continue;
			ts_sbuf_str(&b, k++ ? ",{\"label\":" : "{\"label\":");
			ts_sbuf_json_str(&b, l.v[i], l.len[i]);
			ts_sbuf_str(&b, ",\"value\":");
			ts_sbuf_json_str(&b, l.v[i], l.len[i]);
			ts_sbuf_str(&b, "}");
		}
		ts_sbuf_str(&b, "]");
		ts_strlist_free(&l);
	} else {
		ts_sbuf_str(&b, "[]");
	}
	reply(resp, 200, &b);
out:
	ts_jdoc_fini(&d);
}

static void h_tag_keys(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_strlist l = { 0 };
	struct ts_tenant t;
	if (gf_tenant(app, req, resp, &t))
		return;
	if (gf_lookup(app, &t, NULL, NULL, 0, &l, NULL, 0)) {
		gf_error(resp, 500, "cannot list label names");
		return;
	}
	reply_strings(resp, &l, "{\"type\":\"string\",\"text\":", NULL);
}

static void h_tag_values(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_jdoc d;
	if (body_doc(req, resp, &d))
		goto out;
	const char *key = ts_jv_str(ts_jv_get(&d, &d.v[0], "key"));
	if (!key || !*key) {
		gf_error(resp, 400, "\"key\" (a label name) is required");
		goto out;
	}
	struct ts_strlist l = { 0 };
	struct ts_tenant t;
	if (gf_tenant(app, req, resp, &t))
		goto out;
	if (gf_lookup(app, &t, key, NULL, 0, &l, NULL, 0)) {
		gf_error(resp, 500, "cannot list label values");
		goto out;
	}
	reply_strings(resp, &l, "{\"text\":", NULL);
out:
	ts_jdoc_fini(&d);
}

/* Legacy /search: metric names containing the target text. */
static void h_search(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_jdoc d;
	if (body_doc(req, resp, &d))
		goto out;
	const char *target = ts_jv_str(ts_jv_get(&d, &d.v[0], "target"));
	struct ts_strlist l;
	if (metric_names(arg, req, resp, &l))
		goto out;
	reply_strings(resp, &l, NULL, target);
out:
	ts_jdoc_fini(&d);
}

/* ---- ad-hoc filters ---- */

/* The first four are the engine's enum ts_match_type values, in its order. */
enum fop {
	F_EQ = TS_MATCH_EQ,
	F_NEQ = TS_MATCH_NEQ,
	F_RE = TS_MATCH_RE,
	F_NRE = TS_MATCH_NRE,
	F_LT,
	F_GT
};

struct filter {
	enum fop op;
	const char *key, *value;
	size_t value_len;
	double num;
};

/* Reads "filters" (or "adhocFilters"). Returns 0 or fills msg. */
static int read_filters(const struct ts_jdoc *d, struct filter *f, size_t *n, char *msg,
			size_t msg_len)
{
	static const char *const ops[] = { "=", "!=", "=~", "!~", "<", ">" };
	const struct ts_jv *a = ts_jv_get(d, &d->v[0], "filters");
	if (!a || a->type == TS_JV_NULL)
		a = ts_jv_get(d, &d->v[0], "adhocFilters");
	*n = 0;
	if (!a || a->type == TS_JV_NULL)
		return 0;
	if (a->type != TS_JV_ARR) {
		snprintf(msg, msg_len, "filters must be an array");
		return -1;
	}
	for (const struct ts_jv *e = ts_jv_first(d, a); e; e = ts_jv_next(d, e)) {
		const char *key = ts_jv_str(ts_jv_get(d, e, "key"));
		const char *op = ts_jv_str(ts_jv_get(d, e, "operator"));
		const struct ts_jv *val = ts_jv_get(d, e, "value");
		if (!key || !op || !val || (val->type != TS_JV_STR && val->type != TS_JV_NUM)) {
			snprintf(msg, msg_len, "a filter needs string key, operator and value");
			return -1;
		}
		if (!ts_labels_name_valid(key, strlen(key))) {
			snprintf(msg, msg_len, "invalid label name in filter: \"%.100s\"", key);
			return -1;
		}
		if (*n == MAX_FILTERS) {
			snprintf(msg, msg_len, "more than %d filters", MAX_FILTERS);
			return -1;
		}
		struct filter *x = &f[*n];
		size_t k = 0;
		while (k < N_OF(ops) && strcmp(op, ops[k]) != 0)
			k++;
		if (k == N_OF(ops)) {
			snprintf(msg, msg_len, "unsupported filter operator \"%.20s\"", op);
			return -1;
		}
		if (strlen(val->s) != val->len) {
			snprintf(msg, msg_len, "filter value of \"%.100s\" contains a NUL byte",
				 key);
			return -1;
		}
		*x = (struct filter){ (enum fop)k, key, val->s, val->len, 0 };
		if ((x->op == F_LT || x->op == F_GT) &&
		    ts_fmtnum_parse_double(val->s, val->len, &x->num) == TS_EINVALID) {
			snprintf(msg, msg_len, "filter \"%.100s %s\" needs a number", key, op);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* Does a result series pass the numeric (< >) filters? */
static int passes(const struct ts_qseries *s, const struct filter *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		if (f[i].op != F_LT && f[i].op != F_GT)
			continue;
		size_t kl = strlen(f[i].key);
		double v = NAN;
		for (uint32_t k = 0; k < s->n_labels; k++)
			if (s->labels[k].name_len == kl &&
			    memcmp(s->labels[k].name, f[i].key, kl) == 0 &&
			    ts_fmtnum_parse_double(s->labels[k].value, s->labels[k].value_len,
						   &v) == TS_EINVALID)
				v = NAN;
		if (!(f[i].op == F_LT ? v < f[i].num : v > f[i].num))
			return 0;
	}
	return 1;
}

/* ---- building the expression of a target ---- */

static int payload_str(const struct ts_jdoc *d, const struct ts_jv *payload, const char *key,
		       const char **out)
{
	const struct ts_jv *v = ts_jv_get(d, payload, key);
	*out = NULL;
	if (!v || v->type == TS_JV_NULL)
		return 0;
	if (v->type == TS_JV_STR) {
		*out = v->len ? v->s : NULL;
		return 0;
	}
	return -1;
}

static int one_of(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return 1;
	return 0;
}

/* Writes the target's expression, wrapped as its payload asks, into b. */
static int build_expr(const struct ts_jdoc *d, const struct ts_jv *t, const char *target,
		      int64_t step_ms, struct ts_sbuf *b, char *msg, size_t msg_len)
{
	const struct ts_jv *payload = ts_jv_get(d, t, "payload");
	const char *fn, *range, *agg, *by_s = NULL;
	if (payload_str(d, payload, "function", &fn) || payload_str(d, payload, "range", &range) ||
	    payload_str(d, payload, "aggregation", &agg)) {
		snprintf(msg, msg_len, "payload options must be strings");
		return -1;
	}
	if ((fn && !one_of(fn, functions, N_OF(functions))) ||
	    (agg && !one_of(agg, aggregations, N_OF(aggregations)))) {
		snprintf(msg, msg_len, "unsupported payload function or aggregation");
		return -1;
	}
	struct ts_sbuf by;
	ts_sbuf_init(&by);
	const struct ts_jv *byv = ts_jv_get(d, payload, "by");
	/* "by" is a multi-select (array) or a comma-separated string. */
	if (byv && byv->type == TS_JV_ARR) {
		for (const struct ts_jv *e = ts_jv_first(d, byv); e; e = ts_jv_next(d, e)) {
			if (e->type != TS_JV_STR || !ts_labels_name_valid(e->s, e->len)) {
				ts_sbuf_fini(&by);
				snprintf(msg, msg_len, "\"by\" must list label names");
				return -1;
			}
			if (by.len)
				ts_sbuf_str(&by, ", ");
			ts_sbuf_str(&by, e->s);
		}
	} else if (byv && byv->type == TS_JV_STR) {
		for (const char *p = byv->s; *p;) {
			while (*p == ' ' || *p == ',')
				p++;
			size_t k = strcspn(p, ", ");
			if (!k)
				break;
			char name[256];
			if (k >= sizeof name)
				k = sizeof name - 1;
			memcpy(name, p, k);
			name[k] = 0;
			if (!ts_labels_name_valid(name, strlen(name))) {
				ts_sbuf_fini(&by);
				snprintf(msg, msg_len, "invalid label name in \"by\": \"%.100s\"",
					 name);
				return -1;
			}
			if (by.len)
				ts_sbuf_str(&by, ", ");
			ts_sbuf_str(&by, name);
			p += strcspn(p, ", ");
		}
	}
	by_s = by.len ? by.p : NULL;
	if (agg) {
		ts_sbuf_str(b, agg);
		if (by_s)
			ts_sbuf_printf(b, " by (%s)", by_s);
		ts_sbuf_str(b, " (");
	}
	if (fn) {
		/* A selector takes the range itself; anything else becomes a subquery. */
		struct ts_ast *t0 = NULL;
		int sel = ts_promql_parse(target, strlen(target), &t0, NULL) == 0 &&
			  t0->kind == TS_AST_VECTOR_SELECTOR;
		ts_ast_free(t0);
		ts_sbuf_printf(b, sel ? "%s(" : "%s((", fn);
		ts_sbuf_str(b, target);
		ts_sbuf_str(b, sel ? "[" : ")[");
		if (range)
			ts_sbuf_str(b, range);
		else
			ts_sbuf_printf(b, "%lldms",
				       (long long)(4 * step_ms > 60000 ? 4 * step_ms : 60000));
		ts_sbuf_str(b, sel ? "])" : ":])");
	} else {
		ts_sbuf_str(b, target);
	}
	if (agg)
		ts_sbuf_str(b, ")");
	ts_sbuf_fini(&by);
	return 0;
}

/* ---- /query ---- */

static void number(struct ts_sbuf *b, double v)
{
	if (!isfinite(v)) {
		ts_sbuf_str(b, "null");
		return;
	}
	char buf[TS_FMT_DOUBLE_MAX];
	ts_sbuf_add(b, buf, ts_fmt_double(buf, v));
}

struct qctx {
	struct ts_sbuf *out;
	int n_out; /* items written so far */
	const struct filter *f;
	size_t nf;
};

static void item_sep(struct qctx *c)
{
	if (c->n_out++)
		ts_sbuf_str(c->out, ",");
}

static void emit_series(struct qctx *c, const struct ts_qresult *r, const char *expr)
{
	struct ts_sbuf *b = c->out;
	if (r->type == TS_QV_SCALAR || r->type == TS_QV_STRING) {
		item_sep(c);
		ts_sbuf_str(b, "{\"target\":");
		ts_sbuf_json_str(b, expr, strlen(expr));
		ts_sbuf_str(b, ",\"datapoints\":[");
		if (r->type == TS_QV_SCALAR) {
			ts_sbuf_str(b, "[");
			number(b, r->scalar.v);
			ts_sbuf_printf(b, ",%lld]", (long long)r->scalar.t_ms);
		}
		ts_sbuf_str(b, "]}");
		return;
	}
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_qseries *s = &r->series[i];
		if (!passes(s, c->f, c->nf))
			continue;
		item_sep(c);
		struct ts_sbuf name;
		ts_sbuf_init(&name);
		if (s->n_labels)
			ts_api_series_name(&name, s->labels, s->n_labels);
		else
			ts_sbuf_str(&name, expr);
		ts_sbuf_str(b, "{\"target\":");
		ts_sbuf_json_str(b, name.p ? name.p : "", name.len);
		ts_sbuf_fini(&name);
		ts_sbuf_str(b, ",\"datapoints\":[");
		for (size_t k = 0; k < s->n_points; k++) {
			ts_sbuf_str(b, k ? ",[" : "[");
			number(b, s->points[k].v);
			ts_sbuf_printf(b, ",%lld]", (long long)s->points[k].t_ms);
		}
		ts_sbuf_str(b, "]}");
	}
}

static int name_cmp(const void *a, const void *b)
{
	const struct ts_label *x = *(const struct ts_label *const *)a;
	const struct ts_label *y = *(const struct ts_label *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* One table from an instant result: Time, every label name present, Value. */
static int emit_table(struct qctx *c, const struct ts_qresult *r, int64_t t_ms)
{
	struct ts_sbuf *b = c->out;
	size_t total = 0;
	for (size_t i = 0; i < r->n_series; i++)
		total += r->series[i].n_labels;
	const struct ts_label **cols = ts_malloc((total ? total : 1) * sizeof *cols);
	if (!cols)
		return -ENOMEM;
	size_t nc = 0;
	for (size_t i = 0; i < r->n_series; i++)
		if (passes(&r->series[i], c->f, c->nf))
			for (uint32_t k = 0; k < r->series[i].n_labels; k++)
				cols[nc++] = &r->series[i].labels[k];
	qsort(cols, nc, sizeof *cols, name_cmp);
	size_t w = 0;
	for (size_t i = 0; i < nc; i++)
		if (!w || name_cmp(&cols[w - 1], &cols[i]) != 0)
			cols[w++] = cols[i];
	nc = w;
	item_sep(c);
	ts_sbuf_str(b, "{\"type\":\"table\",\"columns\":[{\"text\":\"Time\",\"type\":\"time\"}");
	for (size_t i = 0; i < nc; i++) {
		ts_sbuf_str(b, ",{\"text\":");
		ts_sbuf_json_str(b, cols[i]->name, cols[i]->name_len);
		ts_sbuf_str(b, ",\"type\":\"string\"}");
	}
	ts_sbuf_printf(b, ",{\"text\":\"Value\",\"type\":\"%s\"}],\"rows\":[",
		       r->type == TS_QV_STRING ? "string" : "number");
	if (r->type == TS_QV_SCALAR) {
		ts_sbuf_printf(b, "[%lld,", (long long)r->scalar.t_ms);
		number(b, r->scalar.v);
		ts_sbuf_str(b, "]");
	} else if (r->type == TS_QV_STRING) {
		ts_sbuf_printf(b, "[%lld,", (long long)r->string_t_ms);
		ts_sbuf_json_str(b, r->string ? r->string : "", r->string_len);
		ts_sbuf_str(b, "]");
	} else {
		int k = 0;
		for (size_t i = 0; i < r->n_series; i++) {
			const struct ts_qseries *s = &r->series[i];
			if (!passes(s, c->f, c->nf) || !s->n_points)
				continue;
			const struct ts_qpoint *pt = &s->points[s->n_points - 1];
			ts_sbuf_printf(b, "%s[%lld", k++ ? "," : "",
				       (long long)(r->type == TS_QV_VECTOR ? pt->t_ms : t_ms));
			for (size_t j = 0; j < nc; j++) {
				const struct ts_label *v = NULL;
				for (uint32_t x = 0; x < s->n_labels && !v; x++) {
					const struct ts_label *cand = &s->labels[x];
					if (name_cmp(&cols[j], &cand) == 0)
						v = cand;
				}
				ts_sbuf_str(b, ",");
				ts_sbuf_json_str(b, v ? v->value : "", v ? v->value_len : 0);
			}
			ts_sbuf_str(b, ",");
			number(b, pt->v);
			ts_sbuf_str(b, "]");
		}
	}
	ts_sbuf_str(b, "]}");
	ts_free(cols);
	return 0;
}

/* range.from / range.to (RFC 3339); the last hour when absent. */
static int read_range(const struct ts_jdoc *d, int64_t *from, int64_t *to, char *msg,
		      size_t msg_len)
{
	const struct ts_jv *r = ts_jv_get(d, &d->v[0], "range");
	const char *f = ts_jv_str(ts_jv_get(d, r, "from"));
	const char *t = ts_jv_str(ts_jv_get(d, r, "to"));
	*to = ts_api_now_ms();
	*from = *to - 3600000;
	if ((t && ts_parse_time_ms(t, to)) || (f && ts_parse_time_ms(f, from))) {
		snprintf(msg, msg_len, "range.from and range.to must be RFC 3339 times");
		return -1;
	}
	if (*to < *from) {
		snprintf(msg, msg_len, "range.to is before range.from");
		return -1;
	}
	return 0;
}

static double num_member(const struct ts_jdoc *d, const char *key)
{
	const struct ts_jv *v = ts_jv_get(d, &d->v[0], key);
	return v && v->type == TS_JV_NUM && isfinite(v->num) ? v->num : 0;
}

/* step = max(intervalMs, (to-from)/maxDataPoints), >= 1 ms, <= 11,000 points. */
static int64_t pick_step(int64_t from, int64_t to, double interval_ms, double max_dp)
{
	uint64_t span = (uint64_t)to - (uint64_t)from;
	int64_t step = interval_ms >= 1 && interval_ms < 1e15 ? (int64_t)interval_ms : 1;
	if (max_dp >= 1) {
		uint64_t dp = max_dp > 1e9 ? 1000000000u : (uint64_t)max_dp;
		uint64_t s = (span + dp - 1) / dp;
		if (s > (uint64_t)step)
			step = (int64_t)s;
	}
	uint64_t min_step = span / MAX_POINTS + 1;
	if ((uint64_t)step < min_step)
		step = (int64_t)min_step;
	return step;
}

static int is_table(const struct ts_jdoc *d, const struct ts_jv *t)
{
	const char *type = ts_jv_str(ts_jv_get(d, t, "type"));
	const char *fmt = ts_jv_str(ts_jv_get(d, ts_jv_get(d, t, "payload"), "format"));
	return (type && strcmp(type, "table") == 0) || (fmt && strcmp(fmt, "table") == 0);
}

static void h_query(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_jdoc d;
	struct ts_sbuf out, expr;
	ts_sbuf_init(&out);
	ts_sbuf_init(&expr);
	char msg[600];
	char *text = NULL;
	struct ts_qresult *r = NULL;
	struct filter f[MAX_FILTERS];
	size_t nf;
	int64_t from, to;
	if (body_doc(req, resp, &d))
		goto out;
	if (read_range(&d, &from, &to, msg, sizeof msg) ||
	    read_filters(&d, f, &nf, msg, sizeof msg)) {
		gf_error(resp, 400, msg);
		goto out;
	}
	/* = != =~ !~ filters become matchers of every selector; < > filter the results. */
	struct ts_matcher fm[MAX_FILTERS + 1];
	size_t nfm = 0;
	struct ts_tenant tenant;
	if (gf_tenant(app, req, resp, &tenant))
		goto out;
	if (tenant.on)
		fm[nfm++] = tenant.m; /* the tenant, as one more filter on every selector */
	for (size_t i = 0; i < nf; i++)
		if (f[i].op <= F_NRE)
			fm[nfm++] = (struct ts_matcher){ (enum ts_match_type)f[i].op, f[i].key,
							 f[i].value };
	int64_t step = pick_step(from, to, num_member(&d, "intervalMs"),
				 num_member(&d, "maxDataPoints"));
	int64_t start = from - (from % step + step) % step;
	const struct ts_jv *targets = ts_jv_get(&d, &d.v[0], "targets");
	if (targets && targets->type != TS_JV_ARR) {
		gf_error(resp, 400, "targets must be an array");
		goto out;
	}
	struct qctx c = { &out, 0, f, nf };
	ts_sbuf_str(&out, "[");
	for (const struct ts_jv *t = ts_jv_first(&d, targets); t; t = ts_jv_next(&d, t)) {
		const struct ts_jv *hide = ts_jv_get(&d, t, "hide");
		const char *target = ts_jv_str(ts_jv_get(&d, t, "target"));
		if ((hide && hide->type == TS_JV_BOOL && hide->b) || !target || !*target)
			continue;
		expr.len = 0;
		if (build_expr(&d, t, target, step, &expr, msg, sizeof msg)) {
			gf_error(resp, 400, msg);
			goto out;
		}
		if (ts_sbuf_failed(&expr)) {
			gf_error(resp, 503, "out of memory");
			goto out;
		}
		ts_free(text);
		text = NULL;
		int rc = ts_selector_add_matchers(expr.p, expr.len, fm, nfm, &text, msg,
						  sizeof msg);
		if (rc) {
			gf_error(resp, rc == TS_EINVALID ? 400 : 503, msg);
			goto out;
		}
		struct ts_qerr err = { 0 };
		int table = is_table(&d, t);
		/* pick_step keeps (to - from) / step below 11,000; aligning the start adds one. */
		/* Dashboards over weeks read downsampled tiers, as /api/v1/query_range does. */
		struct ts_qopts o = { .timeout_ms = app->qlim.timeout_ms,
				      .max_samples = app->qlim.max_samples,
				      .max_series = app->qlim.max_series,
				      .max_points = MAX_POINTS + 1,
				      .max_source_resolution_ms = TS_QRES_AUTO,
				      /* HA replicas merged, as on the query API by default */
				      .replica_labels = app->replica_labels,
				      .n_replica_labels = app->n_replica_labels };
		rc = table ? ts_query_instant(app->db, text, strlen(text), to, &o, &r, &err)
			   : ts_query_range(app->db, text, strlen(text), start, to, step, &o, &r,
					    &err);
		if (rc) {
			gf_eval_error(resp, rc, &err);
			goto out;
		}
		if (table)
			rc = emit_table(&c, r, to);
		else
			emit_series(&c, r, target);
		ts_qresult_free(r);
		r = NULL;
		if (rc) {
			gf_error(resp, 503, "out of memory");
			goto out;
		}
	}
	ts_sbuf_str(&out, "]");
	reply(resp, 200, &out);
out:
	ts_qresult_free(r);
	ts_free(text);
	ts_sbuf_fini(&expr);
	ts_sbuf_fini(&out);
	ts_jdoc_fini(&d);
}

/* ---- /variable ---- */

static void var_item(struct ts_sbuf *b, int *k, const char *s, size_t len)
{
	/* __text/__value for the plugin, text/value for the schema's required members. */
	ts_sbuf_str(b, (*k)++ ? ",{\"__text\":" : "{\"__text\":");
	ts_sbuf_json_str(b, s, len);
	ts_sbuf_str(b, ",\"__value\":");
	ts_sbuf_json_str(b, s, len);
	ts_sbuf_str(b, ",\"text\":");
	ts_sbuf_json_str(b, s, len);
	ts_sbuf_str(b, ",\"value\":");
	ts_sbuf_json_str(b, s, len);
	ts_sbuf_str(b, "}");
}

/* If s is "<fn>(<args>)", returns the args (trimmed, NUL-terminated in buf). */
static const char *call_args(const char *s, const char *fn, char *buf, size_t cap)
{
	size_t fl = strlen(fn), len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\n'))
		len--;
	if (len < fl + 2 || strncmp(s, fn, fl) != 0 || s[fl] != '(' || s[len - 1] != ')')
		return NULL;
	const char *a = s + fl + 1;
	size_t al = len - fl - 2;
	while (al && *a == ' ')
		a++, al--;
	while (al && a[al - 1] == ' ')
		al--;
	if (al >= cap)
		return NULL;
	memcpy(buf, a, al);
	buf[al] = 0;
	return buf;
}

/* The last top-level comma of a label_values() argument list, or NULL. */
static char *split_comma(char *s)
{
	char *last = NULL;
	int depth = 0;
	char quote = 0;
	for (char *p = s; *p; p++) {
		if (quote) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'' || *p == '`') {
			quote = *p;
		} else if (*p == '{' || *p == '(') {
			depth++;
		} else if (*p == '}' || *p == ')') {
			depth--;
		} else if (*p == ',' && depth == 0) {
			last = p;
		}
	}
	return last;
}

static char *trim(char *s)
{
	while (*s == ' ')
		s++;
	size_t n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = 0;
	return s;
}

static void h_variable(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_jdoc d;
	struct ts_strlist l = { 0 };
	struct ts_selector sel = { 0 };
	struct ts_qresult *r = NULL;
	char args[4096], msg[600] = "";
	if (body_doc(req, resp, &d))
		goto out;
	const struct ts_jv *payload = ts_jv_get(&d, &d.v[0], "payload");
	const char *target = payload && payload->type == TS_JV_STR
				     ? payload->s
				     : ts_jv_str(ts_jv_get(&d, payload, "target"));
	if (!target)
		target = ts_jv_str(ts_jv_get(&d, &d.v[0], "target"));
	if (!target)
		target = "";
	while (*target == ' ')
		target++;
	struct ts_tenant tenant;
	if (gf_tenant(app, req, resp, &tenant))
		goto out;
	const char *a;
	int rc = 0, results = 0;
	struct ts_matcher m;
	if (!*target || call_args(target, "metrics", args, sizeof args)) {
		a = *target ? call_args(target, "metrics", args, sizeof args) : "";
		m = (struct ts_matcher){ TS_MATCH_RE, "__name__", *a ? a : ".*" };
		rc = gf_lookup(app, &tenant, "__name__", &m, 1, &l, msg, sizeof msg);
	} else if (call_args(target, "label_names", args, sizeof args)) {
		rc = gf_lookup(app, &tenant, NULL, NULL, 0, &l, msg, sizeof msg);
	} else if ((a = call_args(target, "label_values", args, sizeof args)) != NULL) {
		char *comma = split_comma(args);
		char *name = comma ? trim(comma + 1) : trim(args);
		if (comma) {
			*comma = 0;
			char *s = trim(args);
			rc = ts_selector_parse(&sel, s, strlen(s), msg, sizeof msg);
		}
		if (rc == 0 && !ts_labels_name_valid(name, strlen(name))) {
			snprintf(msg, sizeof msg, "invalid label name: \"%.100s\"", name);
			rc = TS_EINVALID;
		}
		if (rc == 0)
			rc = gf_lookup(app, &tenant, name, sel.m, sel.n, &l, msg, sizeof msg);
	} else if ((a = call_args(target, "query_result", args, sizeof args)) != NULL) {
		int64_t from, to;
		struct ts_qerr err = { 0 };
		if (read_range(&d, &from, &to, msg, sizeof msg)) {
			gf_error(resp, 400, msg);
			goto out;
		}
		rc = gf_eval(app, &tenant, a, to, to, 0, NULL, &r, &err);
		if (rc) {
			gf_eval_error(resp, rc, &err);
			goto out;
		}
		results = 1;
	} else {
		gf_error(resp, 400,
			 "unsupported variable query: use label_names(), label_values([selector,] "
			 "label), metrics([regex]) or query_result(expr)");
		goto out;
	}
	if (rc) {
		gf_error(resp, rc == TS_EINVALID ? 400 : 500, msg[0] ? msg : ts_strerror(rc));
		goto out;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_str(&b, "[");
	int k = 0;
	if (results && (r->type == TS_QV_VECTOR || r->type == TS_QV_MATRIX)) {
		/* Grafana's Prometheus datasource: "name{labels} value timestamp". */
		for (size_t i = 0; i < r->n_series; i++) {
			const struct ts_qseries *s = &r->series[i];
			struct ts_sbuf t;
			ts_sbuf_init(&t);
			ts_api_series_name(&t, s->labels, s->n_labels);
			if (s->n_points) {
				char v[TS_FMT_DOUBLE_MAX + 24];
				ts_api_fmt_value(v, s->points[s->n_points - 1].v);
				ts_sbuf_printf(&t, " %s %lld", v,
					       (long long)s->points[s->n_points - 1].t_ms);
			}
			var_item(&b, &k, t.p ? t.p : "", t.len);
			ts_sbuf_fini(&t);
		}
	} else if (results && r->type == TS_QV_SCALAR) {
		char v[TS_FMT_DOUBLE_MAX + 24];
		size_t n = ts_api_fmt_value(v, r->scalar.v);
		var_item(&b, &k, v, n);
	} else if (results && r->type == TS_QV_STRING) {
		var_item(&b, &k, r->string ? r->string : "", r->string_len);
	}
	for (size_t i = 0; i < l.n; i++)
		var_item(&b, &k, l.v[i], l.len[i]);
	ts_sbuf_str(&b, "]");
	reply(resp, 200, &b);
out:
	ts_qresult_free(r);
	ts_selector_fini(&sel);
	ts_strlist_free(&l);
	ts_jdoc_fini(&d);
}

/* ---- legacy /annotations ---- */

/*
 * {"annotation":{"name":..,"query":"<PromQL>"},"range":{..}}: the query is evaluated
 * over the range (step 1/500 of it, at least 1 s) and every run of points of a series
 * becomes one region annotation, titled with the series, tagged with its label values,
 * as Grafana's Prometheus annotations do. Without a query the answer is [].
 */
static void h_annotations(const struct ts_http_request *req, struct ts_net_response *resp,
			  void *arg)
{
	struct ts_app *app = arg;
	struct ts_jdoc d;
	struct ts_qresult *r = NULL;
	char msg[600];
	if (body_doc(req, resp, &d))
		goto out;
	const struct ts_jv *an = ts_jv_get(&d, &d.v[0], "annotation");
	const char *q = ts_jv_str(ts_jv_get(&d, an, "query"));
	const char *name = ts_jv_str(ts_jv_get(&d, an, "name"));
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_str(&b, "[");
	if (q && *q) {
		int64_t from, to;
		struct ts_qerr err = { 0 };
		if (read_range(&d, &from, &to, msg, sizeof msg)) {
			ts_sbuf_fini(&b);
			gf_error(resp, 400, msg);
			goto out;
		}
		int64_t step = pick_step(from, to, 1000, 500);
		struct ts_tenant tenant;
		if (gf_tenant(app, req, resp, &tenant)) {
			ts_sbuf_fini(&b);
			goto out;
		}
		int rc = gf_eval(app, &tenant, q, from, to, step, NULL, &r, &err);
		if (rc) {
			ts_sbuf_fini(&b);
			gf_eval_error(resp, rc, &err);
			goto out;
		}
		int k = 0;
		for (size_t i = 0; r->type == TS_QV_MATRIX && i < r->n_series; i++) {
			const struct ts_qseries *s = &r->series[i];
			for (size_t p = 0; p < s->n_points;) {
				size_t e = p;
				while (e + 1 < s->n_points &&
				       s->points[e + 1].t_ms - s->points[e].t_ms <= step)
					e++;
				ts_sbuf_str(&b, k++ ? ",{\"annotation\":{\"name\":"
						    : "{\"annotation\":{\"name\":");
				ts_sbuf_json_str(&b, name ? name : "", name ? strlen(name) : 0);
				ts_sbuf_printf(&b, "},\"time\":%lld,\"timeEnd\":%lld,\"title\":",
					       (long long)s->points[p].t_ms,
					       (long long)s->points[e].t_ms);
				struct ts_sbuf t;
				ts_sbuf_init(&t);
				ts_api_series_name(&t, s->labels, s->n_labels);
				ts_sbuf_json_str(&b, t.p ? t.p : "", t.len);
				ts_sbuf_str(&b, ",\"text\":");
				ts_sbuf_json_str(&b, t.p ? t.p : "", t.len);
				ts_sbuf_fini(&t);
				ts_sbuf_str(&b, ",\"tags\":[");
				for (uint32_t x = 0, y = 0; x < s->n_labels; x++) {
					if (s->labels[x].name_len == 8 &&
					    !memcmp(s->labels[x].name, "__name__", 8))
						continue;
					if (y++)
						ts_sbuf_str(&b, ",");
					ts_sbuf_json_str(&b, s->labels[x].value,
							 s->labels[x].value_len);
				}
				ts_sbuf_str(&b, "]}");
				p = e + 1;
			}
		}
	}
	ts_sbuf_str(&b, "]");
	reply(resp, 200, &b);
out:
	ts_qresult_free(r);
	ts_jdoc_fini(&d);
}

/* ---- routes ---- */

int ts__grafana_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "GET", "/grafana", 0, h_root, "grafana" },
		{ "GET", "/grafana/", 0, h_root, "grafana" },
		{ "POST", "/grafana/metrics", 0, h_metrics, "grafana_metrics" },
		{ "POST", "/grafana/metric-payload-options", 0, h_payload_options,
		  "grafana_payload_options" },
		{ "POST", "/grafana/options", 0, h_payload_options, "grafana_payload_options" },
		{ "POST", "/grafana/query", 0, h_query, "grafana_query" },
		{ "POST", "/grafana/variable", 0, h_variable, "grafana_variable" },
		{ "POST", "/grafana/tag-keys", 0, h_tag_keys, "grafana_tag_keys" },
		{ "POST", "/grafana/tag-values", 0, h_tag_values, "grafana_tag_values" },
		{ "POST", "/grafana/search", 0, h_search, "grafana_search" },
		{ "POST", "/grafana/annotations", 0, h_annotations, "grafana_annotations" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
