/*
 * api.c - the Prometheus HTTP query API of tsdbd, and ts_query_routes(), which
 * registers the whole read side (this file, export.c, read.c, grafana.c).
 *
 *   GET|POST /api/v1/query                 instant query (query, time, timeout, limit)
 *   GET|POST /api/v1/query_range           range query (query, start, end, step, timeout, limit)
 *   GET|POST /api/v1/series                series by match[] (start, end, limit)
 *   GET|POST /api/v1/labels                label names (match[], start, end, limit)
 *   GET|POST /api/v1/label/<name>/values   label values (match[], start, end, limit)
 *   GET|POST /api/v1/metadata              metric metadata (metric, limit)
 *   GET|POST /api/v1/status/tsdb           cardinality statistics (limit, default 10)
 *
 * Parameters come from the query string and, for POST, an urlencoded form body.
 * Messages and the order in which parameters are checked follow Prometheus 2.42's
 * web/api/v1/api.go, so clients that match on them (and people who search for them)
 * see the same text. Every answer is the JSON envelope of api_json.h. A `limit` that
 * cuts a result short adds the warning "results truncated due to limit".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_json.h"
#include "server/tenant.h"
#include "server/app.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

#define MAX_POINTS 11000
#define TRUNCATED "results truncated due to limit"

/* The parameter must be present: Prometheus parses "" and fails with this message. */
static int required_time(struct ts_net_response *resp, const struct ts_params *p, const char *name,
			 int64_t *out)
{
	const char *s = ts_params_get(p, name, NULL);
	if (!s || !*s) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "invalid parameter \"%s\": cannot parse \"\" to a valid timestamp",
			     name);
		return 1;
	}
	return ts_api_time_param(resp, p, name, 0, out);
}

static void eval_error(struct ts_net_response *resp, int rc, const struct ts_qerr *err)
{
	enum ts_api_errtype t = ts_api_eval_errtype(rc, err);
	const char *msg = err->msg[0] ? err->msg : ts_strerror(rc);
	if (t == TS_API_BAD_DATA)
		ts_api_error(resp, t, "invalid parameter \"query\": %s", msg);
	else
		ts_api_error(resp, t, "%s", msg);
}

static void answer_result(struct ts_net_response *resp, const struct ts_qresult *r, size_t limit)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	bool trunc;
	ts_api_result(&b, r, limit, &trunc);
	size_t nw = r->n_warnings;
	const char **w = ts_calloc(nw + 1, sizeof *w);
	if (!w) {
		ts_sbuf_fini(&b);
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return;
	}
	for (size_t i = 0; i < nw; i++)
		w[i] = r->warnings[i];
	if (trunc)
		w[nw++] = TRUNCATED;
	ts_api_finish(resp, &b, w, nw);
	ts_free(w);
}

/* Answers an evaluation: its error, or its result (then freed). */
static void answer_eval(struct ts_net_response *resp, int rc, struct ts_qresult *r,
			const struct ts_qerr *err, size_t limit)
{
	if (rc) {
		eval_error(resp, rc, err);
		return;
	}
	answer_result(resp, r, limit);
	ts_qresult_free(r);
}

/* Missing or empty query: what Prometheus' parser says about "". */
static int need_query(struct ts_net_response *resp, const char *q)
{
	if (q && *q)
		return 0;
	ts_api_error(resp, TS_API_BAD_DATA,
		     "invalid parameter \"query\": 1:1: parse error: no expression found in input");
	return 1;
}

/* The query of the request's tenant: *q rewritten with the tenant matcher in every
 * selector (*scoped holds it; ts_free it). 0, or answers the error and returns -1. */
static int tenant_query(struct ts_app *app, const struct ts_http_request *req,
			struct ts_net_response *resp, const char **q, size_t *q_len, char **scoped)
{
	struct ts_tenant t;
	char msg[400] = "";
	*scoped = NULL;
	if (ts_tenant_of(app, req, &t, msg, sizeof msg)) {
		ts_api_error(resp, TS_API_BAD_DATA, "%s", msg);
		return -1;
	}
	if (!*q)
		return 0; /* need_query answers it */
	int rc = ts_tenant_query(&t, *q, *q_len, scoped, msg, sizeof msg);
	if (rc) {
		ts_api_engine_error(resp, rc, msg);
		return -1;
	}
	if (*scoped) {
		*q = *scoped;
		*q_len = strlen(*scoped);
	}
	return 0;
}

/* dedup=true|false (Thanos Query's parameter): whether series that differ only in the
 * --query.replica-label labels are merged; on by default when such labels are set.
 * 0, or 1 after answering 400. */
static int dedup_param(struct ts_net_response *resp, const struct ts_app *app,
		       const struct ts_params *p, struct ts_qopts *o)
{
	const char *d = ts_params_get(p, "dedup", NULL);
	bool on = true;
	if (d && *d) {
		if (!strcmp(d, "true") || !strcmp(d, "1"))
			on = true;
		else if (!strcmp(d, "false") || !strcmp(d, "0"))
			on = false;
		else {
			ts_api_error(resp, TS_API_BAD_DATA,
				     "invalid parameter \"dedup\": want true or false");
			return 1;
		}
	}
	if (on && app->n_replica_labels) {
		o->replica_labels = app->replica_labels;
		o->n_replica_labels = app->n_replica_labels;
	}
	return 0;
}

static void h_query(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	int64_t t, timeout, res;
	size_t limit, q_len = 0;
	if (ts_api_params(req, resp, &p))
		goto out;
	const char *q = ts_params_get(&p, "query", &q_len);
	if (ts_api_time_param(resp, &p, "time", ts_api_now_ms(), &t) ||
	    ts_api_duration_param(resp, &p, "timeout", 0, &timeout) ||
	    ts_api_resolution_param(resp, &p, &res) || ts_api_limit_param(resp, &p, &limit) ||
	    need_query(resp, q))
		goto out;
	struct ts_qopts o = { .timeout_ms = ts_app_query_timeout(app, timeout),
			      .max_samples = app->qlim.max_samples,
			      .max_series = app->qlim.max_series,
			      .max_source_resolution_ms = res };
	if (dedup_param(resp, app, &p, &o))
		goto out;
	struct ts_qresult *r = NULL;
	struct ts_qerr err = { 0 };
	char *scoped = NULL;
	if (tenant_query(app, req, resp, &q, &q_len, &scoped))
		goto out;
	int rc = ts_query_instant(app->db, q, q_len, t, &o, &r, &err);
	answer_eval(resp, rc, r, &err, limit);
	ts_free(scoped);
out:
	ts_params_fini(&p);
}

static void h_query_range(const struct ts_http_request *req, struct ts_net_response *resp,
			  void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	int64_t start, end, step, timeout, res;
	size_t limit, q_len = 0;
	if (ts_api_params(req, resp, &p))
		goto out;
	const char *q = ts_params_get(&p, "query", &q_len);
	if (required_time(resp, &p, "start", &start) || required_time(resp, &p, "end", &end))
		goto out;
	if (end < start) {
		ts_api_error(resp, TS_API_BAD_DATA, "end timestamp must not be before start time");
		goto out;
	}
	const char *st = ts_params_get(&p, "step", NULL);
	if (!st || !*st) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "invalid parameter \"step\": cannot parse \"\" to a valid duration");
		goto out;
	}
	if (ts_api_duration_param(resp, &p, "step", 0, &step))
		goto out;
	if (step <= 0) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "zero or negative query resolution step widths are "
			     "not accepted. Try a positive integer");
		goto out;
	}
	/* Prometheus: end.Sub(start)/step > 11000, in integer durations. */
	if (((uint64_t)end - (uint64_t)start) / (uint64_t)step > MAX_POINTS) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "exceeded maximum resolution of 11,000 points per "
			     "timeseries. Try decreasing the query resolution (?step=XX)");
		goto out;
	}
	if (ts_api_duration_param(resp, &p, "timeout", 0, &timeout) ||
	    ts_api_resolution_param(resp, &p, &res) || ts_api_limit_param(resp, &p, &limit) ||
	    need_query(resp, q))
		goto out;
	/* Prometheus allows 11,000 intervals, that is 11,001 points. */
	struct ts_qopts o = { .timeout_ms = ts_app_query_timeout(app, timeout),
			      .max_samples = app->qlim.max_samples,
			      .max_series = app->qlim.max_series,
			      .max_points = MAX_POINTS + 1,
			      .max_source_resolution_ms = res };
	if (dedup_param(resp, app, &p, &o))
		goto out;
	struct ts_qresult *r = NULL;
	struct ts_qerr err = { 0 };
	char *scoped = NULL;
	if (tenant_query(app, req, resp, &q, &q_len, &scoped))
		goto out;
	int rc = ts_query_range(app->db, q, q_len, start, end, step, &o, &r, &err);
	answer_eval(resp, rc, r, &err, limit);
	ts_free(scoped);
out:
	ts_params_fini(&p);
}

/* start, end (default: all time), limit and the match[] list, shared by the metadata
 * endpoints. */
struct lookup {
	struct ts_params p;
	struct ts_selector *sel;
	size_t n_sel;
	int64_t start, end;
	size_t limit;
	struct ts_tenant tenant;
};

static int lookup_begin(struct ts_app *app, const struct ts_http_request *req,
			struct ts_net_response *resp, struct lookup *l)
{
	char msg[300];
	memset(l, 0, sizeof *l);
	ts_params_init(&l->p);
	if (ts_tenant_of(app, req, &l->tenant, msg, sizeof msg)) {
		ts_api_error(resp, TS_API_BAD_DATA, "%s", msg);
		return 1;
	}
	if (ts_api_params(req, resp, &l->p) ||
	    ts_api_time_param(resp, &l->p, "start", TS_API_MIN_TIME_MS, &l->start) ||
	    ts_api_time_param(resp, &l->p, "end", TS_API_MAX_TIME_MS, &l->end) ||
	    ts_api_limit_param(resp, &l->p, &l->limit) ||
	    ts_api_selectors(resp, &l->p, &l->sel, &l->n_sel))
		return 1;
	if (ts_tenant_scope(&l->tenant, l->sel, l->n_sel)) {
		ts_api_engine_error(resp, -ENOMEM, NULL);
		return 1;
	}
	return 0;
}

static void lookup_end(struct lookup *l)
{
	ts_api_selectors_free(l->sel, l->n_sel);
	ts_params_fini(&l->p);
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ts_selector_ref *x = a, *y = b;
	return ts_labels_cmp(x->labels, x->n_labels, y->labels, y->n_labels);
}

/* /api/v1/series under dedup: the refs' labels without the replica labels, sorted and
 * distinct, as Thanos Query lists them. The shortened label arrays are one block the
 * union owns (freed by ts_selector_union_fini). 0 or -ENOMEM. */
static int dedup_refs(struct ts_selector_union *u, const struct ts_qopts *o)
{
	size_t total = 0;
	for (size_t i = 0; i < u->n_refs; i++)
		total += u->refs[i].n_labels;
	struct ts_label *all = ts_malloc((total ? total : 1) * sizeof *all);
	if (!all)
		return -ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i < u->n_refs; i++) {
		struct ts_label *dst = all + used;
		uint32_t w = 0;
		for (uint32_t k = 0; k < u->refs[i].n_labels; k++) {
			const struct ts_label *x = &u->refs[i].labels[k];
			bool drop = false;
			for (size_t r = 0; r < o->n_replica_labels && !drop; r++)
				drop = strlen(o->replica_labels[r]) == x->name_len &&
				       !memcmp(o->replica_labels[r], x->name, x->name_len);
			if (!drop)
				dst[w++] = *x;
		}
		u->refs[i].labels = dst;
		u->refs[i].n_labels = w;
		used += w;
	}
	qsort(u->refs, u->n_refs, sizeof *u->refs, ref_cmp);
	size_t w = 0;
	for (size_t i = 0; i < u->n_refs; i++)
		if (!w || ref_cmp(&u->refs[w - 1], &u->refs[i]))
			u->refs[w++] = u->refs[i];
	u->n_refs = w;
	u->ts__dedup_labels = all;
	return 0;
}

static void h_series(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct lookup l;
	struct ts_selector_union u = { 0 };
	char msg[400] = "";
	if (lookup_begin(app, req, resp, &l))
		goto out;
	if (!l.n_sel) {
		ts_api_error(resp, TS_API_BAD_DATA, "no match[] parameter provided");
		goto out;
	}
	/* Time-filtering costs a chunk look-up per series: only when a range was asked for. */
	bool ranged = l.start != TS_API_MIN_TIME_MS || l.end != TS_API_MAX_TIME_MS;
	int rc = ts_selector_union(app->db, l.sel, l.n_sel, l.start, l.end, ranged, &u, msg,
				   sizeof msg);
	if (rc) {
		ts_api_engine_error(resp, rc, msg);
		goto out;
	}
	struct ts_qopts dq = { 0 };
	if (dedup_param(resp, app, &l.p, &dq))
		goto out;
	if (dq.n_replica_labels && (rc = dedup_refs(&u, &dq)) != 0) {
		ts_api_engine_error(resp, rc, "");
		goto out;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "[");
	size_t n = l.limit && u.n_refs > l.limit ? l.limit : u.n_refs;
	for (size_t i = 0; i < n; i++) {
		if (i)
			ts_sbuf_str(&b, ",");
		ts_api_labels(&b, u.refs[i].labels, u.refs[i].n_labels);
	}
	ts_sbuf_str(&b, "]");
	const char *w[] = { TRUNCATED };
	ts_api_finish(resp, &b, w, n < u.n_refs ? 1 : 0);
out:
	ts_selector_union_fini(&u);
	lookup_end(&l);
}

static int str_cmp(const void *a, const void *b)
{
	const struct {
		const char *s;
		uint32_t len;
	} *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Names (name == NULL) or values of `name` over the union of the selectors, written as
 * a sorted JSON array of distinct strings. */
static void answer_strings(struct ts_net_response *resp, struct ts_app *app, struct lookup *l,
			   const char *name)
{
	size_t nl = l->n_sel ? l->n_sel : 1;
	struct ts_strlist *lists = ts_calloc(nl, sizeof *lists);
	struct {
		const char *s;
		uint32_t len;
	} *all = NULL;
	char msg[400] = "";
	int rc = lists ? 0 : -ENOMEM;
	size_t total = 0;
	for (size_t i = 0; i < nl && rc == 0; i++) {
		/* Without match[], a tenant still sees only its own series. */
		const struct ts_matcher *m = l->n_sel	    ? l->sel[i].m
					     : l->tenant.on ? &l->tenant.m
							    : NULL;
		size_t nm = l->n_sel ? l->sel[i].n : l->tenant.on ? 1 : 0;
		rc = name ? ts_db_label_values(app->db, name, m, nm, l->start, l->end, &lists[i],
					       msg, sizeof msg)
			  : ts_db_label_names(app->db, m, nm, l->start, l->end, &lists[i], msg,
					      sizeof msg);
		if (rc == 0)
			total += lists[i].n;
	}
	if (rc == 0 && total && !(all = ts_malloc(total * sizeof *all)))
		rc = -ENOMEM;
	if (rc) {
		ts_api_engine_error(resp, rc, msg);
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < nl; i++)
		for (size_t k = 0; k < lists[i].n; k++) {
			all[n].s = lists[i].v[k];
			all[n++].len = lists[i].len[k];
		}
	if (nl > 1 && n > 1) {
		qsort(all, n, sizeof *all, str_cmp);
		size_t w = 1;
		for (size_t i = 1; i < n; i++)
			if (str_cmp(&all[w - 1], &all[i]) != 0)
				all[w++] = all[i];
		n = w;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "[");
	size_t shown = l->limit && n > l->limit ? l->limit : n;
	for (size_t i = 0; i < shown; i++) {
		if (i)
			ts_sbuf_str(&b, ",");
		ts_sbuf_json_str(&b, all[i].s, all[i].len);
	}
	ts_sbuf_str(&b, "]");
	const char *w[] = { TRUNCATED };
	ts_api_finish(resp, &b, w, shown < n ? 1 : 0);
out:
	for (size_t i = 0; lists && i < nl; i++)
		ts_strlist_free(&lists[i]);
	ts_free(lists);
	ts_free(all);
}

static void h_labels(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct lookup l;
	if (lookup_begin(arg, req, resp, &l) == 0)
		answer_strings(resp, arg, &l, NULL);
	lookup_end(&l);
}

static void h_label_values(const struct ts_http_request *req, struct ts_net_response *resp,
			   void *arg)
{
	static const char pre[] = "/api/v1/label/", suf[] = "/values";
	size_t pl = sizeof pre - 1, sl = sizeof suf - 1;
	const char *path = req->path;
	size_t len = req->path_len;
	if (len <= pl + sl || memcmp(path + len - sl, suf, sl) != 0 ||
	    memchr(path + pl, '/', len - pl - sl) != NULL) {
		ts_api_error(resp, TS_API_NOT_FOUND, "not found: %.200s", path);
		return;
	}
	char name[1024];
	size_t n;
	int rc = ts_pct_decode(name, sizeof name, path + pl, len - pl - sl, 0, &n);
	if (rc != 0 || !ts_labels_name_valid(name, n)) {
		char shown[300];
		size_t k = len - pl - sl < 200 ? len - pl - sl : 200;
		memcpy(shown, path + pl, k);
		shown[k] = 0;
		ts_api_error(resp, TS_API_BAD_DATA, "invalid label name: \"%s\"",
			     rc != 0 ? shown : name);
		return;
	}
	struct lookup l;
	if (lookup_begin(arg, req, resp, &l) == 0)
		answer_strings(resp, arg, &l, name);
	lookup_end(&l);
}

/* ---- metadata ---- */

static const char *type_name(enum ts_metric_type t)
{
	static const char *names[] = { "unknown",	 "counter", "gauge", "histogram",
				       "gaugehistogram", "summary", "info",  "stateset" };
	return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}

struct md_acc {
	struct ts_sbuf *b;
	int64_t limit; /* metrics to list; negative: all */
	int64_t n;
	const struct ts_strlist *only; /* tenants: the tenant's metric names (sorted) */
};

/* 1 if name[0..len) is in the sorted list. */
static int in_list(const struct ts_strlist *l, const char *name, size_t len)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		size_t n = l->len[mid] < len ? l->len[mid] : len;
		int c = memcmp(l->v[mid], name, n);
		if (!c)
			c = (l->len[mid] > len) - (l->len[mid] < len);
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int md_one(void *arg, const struct ts_metadata *md)
{
	struct md_acc *a = arg;
	if (a->only && !in_list(a->only, md->metric, md->metric_len))
		return 0; /* another tenant's metric */
	if (a->limit >= 0 && a->n >= a->limit)
		return 1;
	if (a->n++)
		ts_sbuf_str(a->b, ",");
	ts_sbuf_json_str(a->b, md->metric, md->metric_len);
	ts_sbuf_printf(a->b, ":[{\"type\":\"%s\",\"help\":", type_name(md->type));
	ts_sbuf_json_str(a->b, md->help, md->help_len);
	ts_sbuf_str(a->b, ",\"unit\":");
	ts_sbuf_json_str(a->b, md->unit, md->unit_len);
	ts_sbuf_str(a->b, "}]");
	return 0;
}

static void h_metadata(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	if (ts_api_params(req, resp, &p))
		goto out;
	/* Prometheus: a negative limit lists everything, 0 lists nothing. */
	int64_t limit = -1;
	size_t ll;
	const char *ls = ts_params_get(&p, "limit", &ll);
	if (ls && ll) {
		char *end;
		long long v = strtoll(ls, &end, 10);
		if (*end || end == ls) {
			ts_api_error(resp, TS_API_BAD_DATA, "limit must be a number");
			goto out;
		}
		limit = v;
	}
	const char *metric = ts_params_get(&p, "metric", NULL);
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "{");
	struct md_acc a = { &b, limit, 0, NULL };
	/* Metadata is kept per metric name: a tenant sees that of its own metrics. */
	struct ts_tenant t;
	struct ts_strlist names = { 0 };
	char tmsg[300];
	int rc = ts_tenant_of(app, req, &t, tmsg, sizeof tmsg);
	if (rc) {
		ts_sbuf_fini(&b);
		ts_api_error(resp, TS_API_BAD_DATA, "%s", tmsg);
		goto out;
	}
	if (t.on) {
		rc = ts_db_label_values(app->db, "__name__", &t.m, 1, INT64_MIN, INT64_MAX, &names,
					NULL, 0);
		a.only = &names;
	}
	if (rc == 0)
		rc = ts_db_metadata(app->db, metric && *metric ? metric : NULL, md_one, &a);
	ts_strlist_free(&names);
	if (rc < 0) {
		ts_sbuf_fini(&b);
		ts_api_engine_error(resp, rc, NULL);
		goto out;
	}
	ts_sbuf_str(&b, "}");
	ts_api_finish(resp, &b, NULL, 0);
out:
	ts_params_fini(&p);
}

/* ---- status/tsdb ---- */

struct stat_row {
	const char *name, *value; /* value NULL: the row is just `name` */
	uint32_t name_len, value_len;
	uint64_t count;
};

static int row_cmp(const void *a, const void *b)
{
	const struct stat_row *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	if (c || x->name_len != y->name_len)
		return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
	if (!x->value || !y->value)
		return 0;
	n = x->value_len < y->value_len ? x->value_len : y->value_len;
	c = memcmp(x->value, y->value, n);
	return c ? c : (x->value_len > y->value_len) - (x->value_len < y->value_len);
}

static int pair_cmp(const void *a, const void *b)
{
	const struct ts_label *x = *(const struct ts_label *const *)a;
	const struct ts_label *y = *(const struct ts_label *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	if (c || x->name_len != y->name_len)
		return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
	n = x->value_len < y->value_len ? x->value_len : y->value_len;
	c = memcmp(x->value, y->value, n);
	return c ? c : (x->value_len > y->value_len) - (x->value_len < y->value_len);
}

static void top_list(struct ts_sbuf *b, const char *key, struct stat_row *rows, size_t n,
		     size_t limit)
{
	qsort(rows, n, sizeof *rows, row_cmp);
	ts_sbuf_printf(b, ",\"%s\":[", key);
	for (size_t i = 0; i < n && i < limit; i++) {
		ts_sbuf_str(b, i ? ",{\"name\":" : "{\"name\":");
		if (rows[i].value) {
			struct ts_sbuf t;
			ts_sbuf_init(&t);
			ts_sbuf_add(&t, rows[i].name, rows[i].name_len);
			ts_sbuf_add(&t, "=", 1);
			ts_sbuf_add(&t, rows[i].value, rows[i].value_len);
			ts_sbuf_json_str(b, t.p ? t.p : "", t.len);
			ts_sbuf_fini(&t);
		} else {
			ts_sbuf_json_str(b, rows[i].name, rows[i].name_len);
		}
		ts_sbuf_printf(b, ",\"value\":%llu}", (unsigned long long)rows[i].count);
	}
	ts_sbuf_str(b, "]");
}

static void h_status_tsdb(const struct ts_http_request *req, struct ts_net_response *resp,
			  void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	struct ts_series_set *set = NULL;
	const struct ts_label **pairs = NULL;
	struct stat_row *metric = NULL, *names = NULL, *mem = NULL, *pr = NULL;
	size_t limit;
	if (ts_api_params(req, resp, &p) || ts_api_limit_param(resp, &p, &limit))
		goto out;
	if (!limit)
		limit = 10;
	struct ts_tenant t;
	char tmsg[300];
	if (ts_tenant_of(app, req, &t, tmsg, sizeof tmsg)) {
		ts_api_error(resp, TS_API_BAD_DATA, "%s", tmsg);
		goto out;
	}
	struct ts_matcher all[2] = { { TS_MATCH_RE, "__name__", ".+" }, t.m };
	int rc = ts_db_select(app->db, all, t.on ? 2 : 1, INT64_MIN, INT64_MAX, NULL, &set, NULL,
			      0);
	size_t n_ser = rc ? 0 : ts_series_set_len(set), n_pairs = 0;
	uint64_t chunks = 0;
	int64_t min_t = INT64_MAX, max_t = INT64_MIN;
	for (size_t i = 0; rc == 0 && i < n_ser; i++) {
		const struct ts_label *l;
		uint32_t nl;
		rc = ts_series_set_labels(set, i, &l, &nl);
		n_pairs += nl;
		struct ts_chunk_it *it;
		if (rc == 0 && (rc = ts_chunk_it_new(set, i, &it)) == 0) {
			struct ts_chunk_ref c;
			while ((rc = ts_chunk_it_next(it, &c)) == 1) {
				chunks++;
				min_t = c.min_t < min_t ? c.min_t : min_t;
				max_t = c.max_t > max_t ? c.max_t : max_t;
			}
			ts_chunk_it_free(it);
		}
	}
	size_t np = 0;
	if (rc == 0 && n_pairs) {
		pairs = ts_malloc(n_pairs * sizeof *pairs);
		metric = ts_calloc(n_pairs, sizeof *metric);
		names = ts_calloc(n_pairs, sizeof *names);
		mem = ts_calloc(n_pairs, sizeof *mem);
		pr = ts_calloc(n_pairs, sizeof *pr);
		if (!pairs || !metric || !names || !mem || !pr)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < n_ser; i++) {
		const struct ts_label *l;
		uint32_t nl;
		ts_series_set_labels(set, i, &l, &nl);
		for (uint32_t k = 0; k < nl; k++)
			pairs[np++] = &l[k];
	}
	if (rc) {
		ts_api_engine_error(resp, rc, NULL);
		goto out;
	}
	if (np)
		qsort(pairs, np, sizeof *pairs, pair_cmp);
	/* Runs of equal pairs are series counts; runs of equal names count distinct values. */
	size_t n_metric = 0, n_names = 0, n_pr = 0;
	for (size_t i = 0; i < np;) {
		size_t j = i + 1;
		while (j < np && pair_cmp(&pairs[i], &pairs[j]) == 0)
			j++;
		const struct ts_label *x = pairs[i];
		pr[n_pr++] = (struct stat_row){ x->name, x->value, x->name_len, x->value_len,
						j - i };
		if (x->name_len == 8 && memcmp(x->name, "__name__", 8) == 0)
			metric[n_metric++] = (struct stat_row){ x->value, NULL, x->value_len, 0,
								j - i };
		if (!n_names || names[n_names - 1].name_len != x->name_len ||
		    memcmp(names[n_names - 1].name, x->name, x->name_len) != 0) {
			names[n_names] = (struct stat_row){ x->name, NULL, x->name_len, 0, 0 };
			mem[n_names++] = (struct stat_row){ x->name, NULL, x->name_len, 0, 0 };
		}
		names[n_names - 1].count++;
		mem[n_names - 1].count += x->value_len;
		i = j;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_printf(
		&b,
		"{\"headStats\":{\"numSeries\":%zu,\"numLabelPairs\":%zu,\"chunkCount\":%llu,"
		"\"minTime\":%lld,\"maxTime\":%lld}",
		n_ser, n_pr, (unsigned long long)chunks, (long long)min_t, (long long)max_t);
	top_list(&b, "seriesCountByMetricName", metric, n_metric, limit);
	top_list(&b, "labelValueCountByLabelName", names, n_names, limit);
	top_list(&b, "memoryInBytesByLabelName", mem, n_names, limit);
	top_list(&b, "seriesCountByLabelValuePair", pr, n_pr, limit);
	ts_sbuf_str(&b, "}");
	ts_api_finish(resp, &b, NULL, 0);
out:
	ts_free(pairs);
	ts_free(metric);
	ts_free(names);
	ts_free(mem);
	ts_free(pr);
	ts_series_set_free(set);
	ts_params_fini(&p);
}

/* ---- routes ---- */

int ts_query_routes(struct ts_app *app)
{
	/* Every endpoint takes GET and POST (a form body), as Prometheus' does. */
	static const struct ts_net_route_def r[] = {
		{ "GET", "/api/v1/query", 0, h_query, "query" },
		{ "POST", "/api/v1/query", 0, h_query, "query" },
		{ "GET", "/api/v1/query_range", 0, h_query_range, "query_range" },
		{ "POST", "/api/v1/query_range", 0, h_query_range, "query_range" },
		{ "GET", "/api/v1/series", 0, h_series, "series" },
		{ "POST", "/api/v1/series", 0, h_series, "series" },
		{ "GET", "/api/v1/labels", 0, h_labels, "labels" },
		{ "POST", "/api/v1/labels", 0, h_labels, "labels" },
		{ "GET", "/api/v1/label/", TS_NET_PREFIX, h_label_values, "label_values" },
		{ "POST", "/api/v1/label/", TS_NET_PREFIX, h_label_values, "label_values" },
		{ "GET", "/api/v1/metadata", 0, h_metadata, "metadata" },
		{ "POST", "/api/v1/metadata", 0, h_metadata, "metadata" },
		{ "GET", "/api/v1/status/tsdb", 0, h_status_tsdb, "status_tsdb" },
		{ "POST", "/api/v1/status/tsdb", 0, h_status_tsdb, "status_tsdb" },
	};
	int rc = ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
	if (rc == 0)
		rc = ts__export_routes(app);
	if (rc == 0)
		rc = ts__read_routes(app);
	if (rc == 0)
		rc = ts__grafana_routes(app);
	return rc;
}
