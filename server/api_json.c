/*
 * api_json.c - the pieces the read-side handlers share: Prometheus' JSON envelope and
 * number layouts, parameter parsing with Prometheus' error messages, match[] selectors
 * turned into engine matchers (and the union of several), the gateway to the PromQL
 * evaluator, and a small JSON document reader for request bodies (see api_json.h).
 *
 * Invariants: every ts_api_* function that takes a response either completes it and
 * returns non-zero, or leaves it untouched and returns 0, so a handler can chain them
 * and return at the first failure. JSON documents keep all decoded strings in one
 * buffer sized up front (decoding never lengthens a string), so pointers handed out
 * stay valid until ts_jdoc_fini.
 */
#include "server/api_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "query/promql.h"
#include "server/fmtnum.h"
#include "server/jsonl.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

/* ---- envelope ---- */

static const struct {
	const char *name;
	int status;
} errtypes[] = {
	[TS_API_BAD_DATA] = { "bad_data", 400 },       [TS_API_EXECUTION] = { "execution", 422 },
	[TS_API_TIMEOUT] = { "timeout", 503 },	       [TS_API_CANCELED] = { "canceled", 499 },
	[TS_API_INTERNAL] = { "internal", 500 },       [TS_API_NOT_FOUND] = { "not_found", 404 },
	[TS_API_UNAVAILABLE] = { "unavailable", 503 },
};

void ts_api_error(struct ts_net_response *resp, enum ts_api_errtype t, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_sbuf_printf(&b,
		       "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", errtypes[t].name);
	ts_sbuf_json_str(&b, msg, strlen(msg));
	ts_sbuf_str(&b, "}");
	size_t len;
	char *body = ts_sbuf_take(&b, &len);
	ts_net_response_header(resp, "Content-Type", "application/json");
	if (!body) {
		ts_net_respond_text(
			resp, 503, "application/json",
			"{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"out of memory\"}");
		return;
	}
	ts_net_respond(resp, errtypes[t].status, body, len);
}

void ts_api_begin(struct ts_sbuf *b)
{
	ts_sbuf_str(b, "{\"status\":\"success\",\"data\":");
}

void ts_api_finish(struct ts_net_response *resp, struct ts_sbuf *b, const char *const *warnings,
		   size_t n_warnings)
{
	if (n_warnings) {
		ts_sbuf_str(b, ",\"warnings\":[");
		for (size_t i = 0; i < n_warnings; i++) {
			if (i)
				ts_sbuf_str(b, ",");
			ts_sbuf_json_str(b, warnings[i], strlen(warnings[i]));
		}
		ts_sbuf_str(b, "]");
	}
	ts_sbuf_str(b, "}");
	size_t len;
	char *body = ts_sbuf_take(b, &len);
	if (!body) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return;
	}
	ts_net_response_header(resp, "Content-Type", "application/json");
	ts_net_respond(resp, 200, body, len);
}

size_t ts_api_fmt_value(char *buf, double v)
{
	size_t n = ts_fmt_double(buf, v);
	double a = fabs(v);
	char *e = memchr(buf, 'e', n);
	/* Prometheus writes 'f' layout for 1e-6 <= |v| < 1e21, 'e' outside (and for 0). */
	if (!e || !isfinite(v) || a < 1e-6 || a >= 1e21)
		return n;
	char digits[24];
	size_t nd = 0;
	const char *p = buf;
	int neg = *p == '-';
	if (neg)
		p++;
	for (; p < e; p++)
		if (*p != '.')
			digits[nd++] = *p;
	int x = atoi(e + 1); /* decimal exponent of the first digit */
	char out[TS_FMT_DOUBLE_MAX + 24];
	size_t k = 0;
	if (neg)
		out[k++] = '-';
	if (x < 0) {
		out[k++] = '0';
		out[k++] = '.';
		for (int i = 0; i < -x - 1; i++)
			out[k++] = '0';
		memcpy(out + k, digits, nd);
		k += nd;
	} else {
		for (int i = 0; i <= x; i++)
			out[k++] = (size_t)i < nd ? digits[i] : '0';
		if (nd > (size_t)x + 1) {
			out[k++] = '.';
			memcpy(out + k, digits + x + 1, nd - (size_t)x - 1);
			k += nd - (size_t)x - 1;
		}
	}
	memcpy(buf, out, k);
	buf[k] = 0;
	return k;
}

void ts_api_value(struct ts_sbuf *b, double v)
{
	char buf[TS_FMT_DOUBLE_MAX + 24];
	size_t n = ts_api_fmt_value(buf, v);
	ts_sbuf_add(b, "\"", 1);
	ts_sbuf_add(b, buf, n);
	ts_sbuf_add(b, "\"", 1);
}

void ts_api_time(struct ts_sbuf *b, int64_t t_ms)
{
	uint64_t u = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
	unsigned frac = (unsigned)(u % 1000);
	if (frac)
		ts_sbuf_printf(b, "%s%llu.%03u", t_ms < 0 ? "-" : "",
			       (unsigned long long)(u / 1000), frac);
	else
		ts_sbuf_printf(b, "%s%llu", t_ms < 0 ? "-" : "", (unsigned long long)(u / 1000));
}

void ts_api_labels(struct ts_sbuf *b, const struct ts_label *l, size_t n)
{
	ts_sbuf_str(b, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			ts_sbuf_str(b, ",");
		ts_sbuf_json_str(b, l[i].name, l[i].name_len);
		ts_sbuf_str(b, ":");
		ts_sbuf_json_str(b, l[i].value, l[i].value_len);
	}
	ts_sbuf_str(b, "}");
}

static void point(struct ts_sbuf *b, const struct ts_qpoint *p)
{
	ts_sbuf_str(b, "[");
	ts_api_time(b, p->t_ms);
	ts_sbuf_str(b, ",");
	ts_api_value(b, p->v);
	ts_sbuf_str(b, "]");
}

void ts_api_result(struct ts_sbuf *b, const struct ts_qresult *r, size_t limit, bool *truncated)
{
	size_t n = r->n_series;
	if (truncated)
		*truncated = false;
	if (limit && n > limit) {
		n = limit;
		if (truncated)
			*truncated = true;
	}
	switch (r->type) {
	case TS_QV_SCALAR:
		ts_sbuf_str(b, "{\"resultType\":\"scalar\",\"result\":");
		point(b, &r->scalar);
		break;
	case TS_QV_STRING:
		ts_sbuf_str(b, "{\"resultType\":\"string\",\"result\":[");
		ts_api_time(b, r->string_t_ms);
		ts_sbuf_str(b, ",");
		ts_sbuf_json_str(b, r->string ? r->string : "", r->string_len);
		ts_sbuf_str(b, "]");
		break;
	case TS_QV_VECTOR:
	case TS_QV_MATRIX:
	default: {
		bool vec = r->type == TS_QV_VECTOR;
		ts_sbuf_printf(b, "{\"resultType\":\"%s\",\"result\":[", vec ? "vector" : "matrix");
		for (size_t i = 0; i < n; i++) {
			const struct ts_qseries *s = &r->series[i];
			ts_sbuf_str(b, i ? ",{\"metric\":" : "{\"metric\":");
			ts_api_labels(b, s->labels, s->n_labels);
			if (vec) {
				ts_sbuf_str(b, ",\"value\":");
				if (s->n_points)
					point(b, &s->points[0]);
				else
					ts_sbuf_str(b, "null");
			} else {
				ts_sbuf_str(b, ",\"values\":[");
				for (size_t k = 0; k < s->n_points; k++) {
					if (k)
						ts_sbuf_str(b, ",");
					point(b, &s->points[k]);
				}
				ts_sbuf_str(b, "]");
			}
			ts_sbuf_str(b, "}");
		}
		ts_sbuf_str(b, "]");
		break;
	}
	}
	ts_sbuf_str(b, "}");
}

/* ---- parameters ---- */

int ts_api_params(const struct ts_http_request *req, struct ts_net_response *resp,
		  struct ts_params *p)
{
	int rc = ts_params_parse(p, req->query, req->query_len);
	if (rc == 0 && strcmp(req->method, "POST") == 0 && req->body_len) {
		size_t ct_len = 0;
		const char *ct = ts_http_request_header(req, "Content-Type", &ct_len);
		static const char form[] = "application/x-www-form-urlencoded";
		size_t fl = sizeof form - 1;
		/* Parameters ("; charset=...") after the media type do not matter. */
		if (ct && ct_len >= fl && strncasecmp(ct, form, fl) == 0 &&
		    (ct_len == fl || ct[fl] == ';' || ct[fl] == ' '))
			rc = ts_params_parse(p, req->body, req->body_len);
	}
	if (rc == -ENOMEM) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return 1;
	}
	if (rc) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "error parsing form values: invalid URL escape");
		return 1;
	}
	return 0;
}

/* Go's %q for the ASCII a client normally sends; other bytes are escaped by the JSON
 * layer anyway. Truncated to keep messages short. */
static const char *quoted(char *buf, size_t cap, const char *s)
{
	size_t k = 0;
	buf[k++] = '"';
	for (; *s && k + 6 < cap; s++) {
		if (*s == '"' || *s == '\\')
			buf[k++] = '\\';
		buf[k++] = *s;
	}
	buf[k++] = '"';
	buf[k] = 0;
	return buf;
}

int ts_api_time_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
		      int64_t def, int64_t *out)
{
	const char *s = ts_params_get(p, name, NULL);
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
		*out = TS_API_MIN_TIME_MS;
		return 0;
	}
	if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) {
		*out = TS_API_MAX_TIME_MS;
		return 0;
	}
	/* strtod would take "inf", "nan" and hex; Prometheus' ParseFloat takes "inf" too,
	 * but a time of infinity is of no use to anyone. */
	if (strpbrk(s, "xXnNiI") == NULL && ts_parse_time_ms(s, out) == 0)
		return 0;
	char q[160];
	ts_api_error(resp, TS_API_BAD_DATA,
		     "invalid parameter \"%s\": cannot parse %s to a valid timestamp", name,
		     quoted(q, sizeof q, s));
	return 1;
}

static int parse_float_seconds_ms(const char *s, int64_t *out)
{
	if (!*s || strspn(s, "+-.0123456789eE") != strlen(s))
		return TS_EINVALID;
	char *end;
	double d = strtod(s, &end);
	if (*end || !isfinite(d) || d > 9.2e15 || d < -9.2e15)
		return TS_EINVALID;
	double ms = d * 1000.0;
	*out = (int64_t)(ms < 0 ? ms - 0.5 : ms + 0.5);
	return 0;
}

int ts_api_duration_param(struct ts_net_response *resp, const struct ts_params *p, const char *name,
			  int64_t def, int64_t *out)
{
	const char *s = ts_params_get(p, name, NULL);
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	if (parse_float_seconds_ms(s, out) == 0 || ts_parse_duration_ms(s, out) == 0)
		return 0;
	char q[160];
	ts_api_error(resp, TS_API_BAD_DATA,
		     "invalid parameter \"%s\": cannot parse %s to a valid duration", name,
		     quoted(q, sizeof q, s));
	return 1;
}

int ts_api_limit_param(struct ts_net_response *resp, const struct ts_params *p, size_t *out)
{
	size_t len;
	const char *s = ts_params_get(p, "limit", &len);
	*out = 0;
	if (!s || !len)
		return 0;
	int64_t v;
	if (ts_fmtnum_parse_int64(s, len, &v)) {
		char q[160];
		ts_api_error(resp, TS_API_BAD_DATA,
			     "invalid parameter \"limit\": cannot parse %s to a valid limit",
			     quoted(q, sizeof q, s));
		return 1;
	}
	if (v < 0) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "invalid parameter \"limit\": limit must be non-negative");
		return 1;
	}
	*out = (size_t)v;
	return 0;
}

int64_t ts_api_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- labels and queries ---- */

bool ts_api_label_name_valid(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && !(i && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

void ts_api_series_name(struct ts_sbuf *b, const struct ts_label *l, uint32_t n)
{
	const struct ts_label *name = NULL;
	uint32_t others = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (l[i].name_len == 8 && memcmp(l[i].name, "__name__", 8) == 0)
			name = &l[i];
		else
			others++;
	}
	if (name)
		ts_sbuf_add(b, name->value, name->value_len);
	if (!others) {
		if (!name)
			ts_sbuf_str(b, "{}");
		return;
	}
	ts_sbuf_str(b, "{");
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (&l[i] == name)
			continue;
		if (k++)
			ts_sbuf_str(b, ", ");
		ts_sbuf_add(b, l[i].name, l[i].name_len);
		ts_sbuf_str(b, "=\"");
		ts_sbuf_prom_escape(b, l[i].value, l[i].value_len);
		ts_sbuf_str(b, "\"");
	}
	ts_sbuf_str(b, "}");
}

/* Appends m[0..n) to every vector selector under node. 0 or -ENOMEM. */
static int inject(struct ts_ast *node, const struct ts_matcher *m, size_t n)
{
	if (!node || !n)
		return 0;
	int rc = 0;
	switch (node->kind) {
	case TS_AST_VECTOR_SELECTOR: {
		struct ts_ast_matcher *v = ts_realloc(node->vs.matchers,
						      (node->vs.n_matchers + n) * sizeof *v);
		if (!v)
			return -ENOMEM;
		node->vs.matchers = v;
		for (size_t i = 0; i < n; i++) {
			struct ts_ast_matcher *x = &v[node->vs.n_matchers];
			memset(x, 0, sizeof *x);
			x->type = (int)m[i].type;
			x->name = ts_strndup(m[i].name, strlen(m[i].name));
			x->value_len = strlen(m[i].value);
			x->value = ts_strndup(m[i].value, x->value_len);
			/* Only printed, never evaluated from this tree: the evaluator parses the
			 * printed text and derives this itself. */
			x->matches_empty = x->value_len == 0;
			node->vs.n_matchers++; /* counted at once so ts_ast_free frees it */
			if (!x->name || !x->value)
				return -ENOMEM;
		}
		return 0;
	}
	case TS_AST_MATRIX_SELECTOR: return inject(node->matrix.vs, m, n);
	case TS_AST_SUBQUERY: return inject(node->subquery.expr, m, n);
	case TS_AST_BINARY:
		rc = inject(node->binary.lhs, m, n);
		return rc ? rc : inject(node->binary.rhs, m, n);
	case TS_AST_AGGREGATE:
		rc = inject(node->aggregate.param, m, n);
		return rc ? rc : inject(node->aggregate.expr, m, n);
	case TS_AST_CALL:
		for (size_t i = 0; i < node->call.n_args && rc == 0; i++)
			rc = inject(node->call.args[i], m, n);
		return rc;
	case TS_AST_PAREN: return inject(node->paren.expr, m, n);
	case TS_AST_UNARY: return inject(node->unary.expr, m, n);
	case TS_AST_NUMBER:
	case TS_AST_STRING: break;
	}
	return 0;
}

int ts_api_add_matchers(const char *q, size_t len, const struct ts_matcher *m, size_t n, char **out,
			char *msg, size_t msg_len)
{
	struct ts_ast *t = NULL;
	struct ts_promql_error pe;
	*out = NULL;
	int rc = ts_promql_parse(q, len, &t, &pe);
	if (rc) {
		if (rc == TS_EINVALID)
			ts_promql_error_format(q, len, &pe, msg, msg_len);
		else
			snprintf(msg, msg_len, "out of memory");
		return rc;
	}
	rc = inject(t, m, n);
	if (rc == 0)
		rc = ts_ast_print(t, out);
	ts_ast_free(t);
	if (rc)
		snprintf(msg, msg_len, "out of memory");
	return rc;
}

/* ---- selectors ---- */

int ts_api_selector_parse(struct ts_api_selector *s, const char *sel, size_t len, char *msg,
			  size_t msg_len)
{
	memset(s, 0, sizeof *s);
	struct ts_ast *t = NULL;
	struct ts_promql_error pe;
	int rc = ts_promql_parse(sel, len, &t, &pe);
	if (rc == TS_EINVALID) {
		ts_promql_error_format(sel, len, &pe, msg, msg_len);
		return rc;
	}
	if (rc)
		return rc;
	/* Prometheus' ParseMetricSelector reads a bare selector and nothing else. */
	if (t->kind != TS_AST_VECTOR_SELECTOR || t->vs.offset_ms || t->vs.at != TS_AT_NONE) {
		snprintf(msg, msg_len,
			 "1:1: parse error: expected a series selector like "
			 "'up{job=\"x\"}', got %s",
			 t->kind == TS_AST_VECTOR_SELECTOR   ? "a selector with a modifier"
			 : t->kind == TS_AST_MATRIX_SELECTOR ? "a range vector"
							     : "an expression");
		ts_ast_free(t);
		return TS_EINVALID;
	}
	s->m = ts_calloc(t->vs.n_matchers ? t->vs.n_matchers : 1, sizeof *s->m);
	if (!s->m) {
		ts_ast_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->vs.n_matchers; i++) {
		const struct ts_ast_matcher *am = &t->vs.matchers[i];
		if (strlen(am->value) != am->value_len) {
			snprintf(msg, msg_len, "label matcher value of %s contains a NUL byte",
				 am->name);
			ts_free(s->m);
			s->m = NULL;
			ts_ast_free(t);
			return TS_EINVALID;
		}
		s->m[i] = (struct ts_matcher){ (enum ts_match_type)am->type, am->name, am->value };
	}
	s->n = t->vs.n_matchers;
	s->ts__tree = t;
	return 0;
}

void ts_api_selector_fini(struct ts_api_selector *s)
{
	if (!s)
		return;
	ts_free(s->m);
	ts_ast_free(s->ts__tree);
	memset(s, 0, sizeof *s);
}

struct sel_acc {
	struct ts_api_selector *v;
	size_t n;
	int rc;
	char msg[400];
};

static int sel_one(void *arg, const char *value, size_t len)
{
	struct sel_acc *a = arg;
	int rc = ts_api_selector_parse(&a->v[a->n], value, len, a->msg, sizeof a->msg);
	if (rc) {
		a->rc = rc;
		return 1;
	}
	a->n++;
	return 0;
}

static int count_one(void *arg, const char *value, size_t len)
{
	(void)value;
	(void)len;
	(*(size_t *)arg)++;
	return 0;
}

int ts_api_selectors(struct ts_net_response *resp, const struct ts_params *p,
		     struct ts_api_selector **out, size_t *n)
{
	size_t cnt = 0;
	ts_params_each(p, "match[]", count_one, &cnt);
	*out = NULL;
	*n = 0;
	if (!cnt)
		return 0;
	struct sel_acc a = { .v = ts_calloc(cnt, sizeof *a.v) };
	if (!a.v) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return 1;
	}
	ts_params_each(p, "match[]", sel_one, &a);
	if (a.rc) {
		ts_api_selectors_free(a.v, a.n);
		if (a.rc == -ENOMEM)
			ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		else
			ts_api_error(resp, TS_API_BAD_DATA, "invalid parameter \"match[]\": %s",
				     a.msg);
		return 1;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

void ts_api_selectors_free(struct ts_api_selector *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		ts_api_selector_fini(&s[i]);
	ts_free(s);
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ts_api_ref *x = a, *y = b;
	return ts_labels_cmp(x->labels, x->n_labels, y->labels, y->n_labels);
}

int ts_api_union_select(struct ts_db *db, const struct ts_api_selector *sel, size_t n, int64_t mint,
			int64_t maxt, bool need_chunks, struct ts_api_union *u, char *msg,
			size_t msg_len)
{
	memset(u, 0, sizeof *u);
	int rc = 0;
	u->sets = ts_calloc(n ? n : 1, sizeof *u->sets);
	if (!u->sets)
		return -ENOMEM;
	size_t total = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = ts_db_select(db, sel[i].m, sel[i].n, mint, maxt, &u->sets[i], msg, msg_len);
		if (rc == 0) {
			u->n_sets++;
			total += ts_series_set_len(u->sets[i]);
		}
	}
	if (rc == 0 && total) {
		u->refs = ts_malloc(total * sizeof *u->refs);
		if (!u->refs)
			rc = -ENOMEM;
	}
	for (size_t k = 0; rc == 0 && k < u->n_sets; k++)
		for (size_t i = 0; rc == 0 && i < ts_series_set_len(u->sets[k]); i++) {
			struct ts_api_ref *r = &u->refs[u->n_refs++];
			r->set = u->sets[k];
			r->i = i;
			rc = ts_series_set_labels(u->sets[k], i, &r->labels, &r->n_labels);
		}
	if (rc == 0 && need_chunks) {
		size_t w = 0;
		for (size_t i = 0; rc == 0 && i < u->n_refs; i++) {
			struct ts_chunk_it *it;
			struct ts_chunk_ref c;
			rc = ts_chunk_it_new(u->refs[i].set, u->refs[i].i, &it);
			if (rc == 0) {
				rc = ts_chunk_it_next(it, &c);
				ts_chunk_it_free(it);
			}
			if (rc == 1) {
				u->refs[w++] = u->refs[i];
				rc = 0;
			}
		}
		u->n_refs = w;
	}
	/* One set is sorted and distinct already; several are merged. */
	if (rc == 0 && u->n_sets > 1 && u->n_refs > 1) {
		qsort(u->refs, u->n_refs, sizeof *u->refs, ref_cmp);
		size_t w = 1;
		for (size_t i = 1; i < u->n_refs; i++)
			if (ref_cmp(&u->refs[w - 1], &u->refs[i]) != 0)
				u->refs[w++] = u->refs[i];
		u->n_refs = w;
	}
	if (rc)
		ts_api_union_fini(u);
	return rc;
}

void ts_api_union_fini(struct ts_api_union *u)
{
	for (size_t i = 0; u->sets && i < u->n_sets; i++)
		ts_series_set_free(u->sets[i]);
	ts_free(u->sets);
	ts_free(u->refs);
	memset(u, 0, sizeof *u);
}

/* ---- the evaluator ---- */

int ts_api_eval_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
			const struct ts_qopts *o, struct ts_qresult **out, struct ts_qerr *err)
{
	*out = NULL;
	memset(err, 0, sizeof *err);
	return ts_query_instant(db, q, q_len, t_ms, o, out, err);
}

int ts_api_eval_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms,
		      int64_t end_ms, int64_t step_ms, const struct ts_qopts *o,
		      struct ts_qresult **out, struct ts_qerr *err)
{
	*out = NULL;
	memset(err, 0, sizeof *err);
	return ts_query_range(db, q, q_len, start_ms, end_ms, step_ms, o, out, err);
}

enum ts_api_errtype ts_api_eval_errtype(int rc, const struct ts_qerr *err)
{
	switch (err->type) {
	case TS_QERR_BAD_DATA: return TS_API_BAD_DATA;
	case TS_QERR_EXECUTION: return TS_API_EXECUTION;
	case TS_QERR_TIMEOUT: return TS_API_TIMEOUT;
	case TS_QERR_CANCELED: return TS_API_CANCELED;
	case TS_QERR_INTERNAL: return TS_API_INTERNAL;
	case TS_QERR_NONE: break;
	}
	if (rc == TS_EINVALID)
		return TS_API_BAD_DATA;
	if (rc == -ETIMEDOUT)
		return TS_API_TIMEOUT;
	if (rc == -ECANCELED)
		return TS_API_CANCELED;
	if (rc == -ENOMEM || rc == TS_ECORRUPT)
		return TS_API_INTERNAL;
	return TS_API_EXECUTION;
}

/* ---- JSON documents ---- */

static int jv_new(struct ts_jdoc *d, uint32_t *idx)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		if (cap > UINT32_MAX)
			return TS_ELIMIT;
		struct ts_jv *v = ts_realloc(d->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	*idx = (uint32_t)d->n;
	memset(&d->v[d->n++], 0, sizeof *d->v);
	return 0;
}

int ts_jdoc_parse(struct ts_jdoc *d, const char *text, size_t len, char *msg, size_t msg_len)
{
	memset(d, 0, sizeof *d);
	/* Decoded strings are never longer than their raw form; each gets a NUL. */
	d->str = ts_malloc(len * 2 + 2);
	if (!d->str)
		return -ENOMEM;
	size_t str_len = 0;
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, text, len);
	uint32_t parent[TS_JSONL_MAX_DEPTH + 2], last[TS_JSONL_MAX_DEPTH + 2];
	int depth = 0; /* containers open */
	const char *key = NULL;
	size_t key_len = 0;
	int rc;
	for (;;) {
		int tok = ts_jsonl_lex_next(&lx);
		if (tok < 0) {
			snprintf(msg, msg_len, "invalid JSON at byte %zu: %s", lx.err_off,
				 lx.err ? lx.err : "syntax error");
			return TS_EINVALID;
		}
		if (tok == TS_JSONL_END)
			break;
		if (tok == TS_JSONL_KEY) {
			key = d->str + str_len;
			key_len = ts_jsonl_unescape(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + key_len] = 0;
			str_len += key_len + 1;
			continue;
		}
		if (tok == TS_JSONL_OBJ_END || tok == TS_JSONL_ARR_END) {
			depth--;
			continue;
		}
		uint32_t idx;
		if ((rc = jv_new(d, &idx)) != 0) {
			snprintf(msg, msg_len, "document too large");
			return rc;
		}
		struct ts_jv *v = &d->v[idx];
		if (depth > 0) {
			v->key = key;
			v->key_len = key_len;
			key = NULL;
			uint32_t p = parent[depth - 1];
			if (last[depth - 1])
				d->v[last[depth - 1]].next = idx;
			else
				d->v[p].child = idx;
			last[depth - 1] = idx;
		}
		switch (tok) {
		case TS_JSONL_OBJ:
		case TS_JSONL_ARR:
			v->type = tok == TS_JSONL_OBJ ? TS_JV_OBJ : TS_JV_ARR;
			parent[depth] = idx;
			last[depth] = 0;
			depth++;
			break;
		case TS_JSONL_STR:
			v->type = TS_JV_STR;
			v->s = d->str + str_len;
			v->len = ts_jsonl_unescape(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + v->len] = 0;
			str_len += v->len + 1;
			break;
		case TS_JSONL_NUM:
			v->type = TS_JV_NUM;
			v->s = d->str + str_len;
			v->len = lx.tok_len;
			memcpy(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + lx.tok_len] = 0;
			str_len += lx.tok_len + 1;
			if (ts_fmtnum_parse_double(lx.tok, lx.tok_len, &v->num) == TS_EINVALID) {
				snprintf(msg, msg_len, "invalid JSON number");
				return TS_EINVALID;
			}
			break;
		case TS_JSONL_TRUE:
		case TS_JSONL_FALSE:
			v->type = TS_JV_BOOL;
			v->b = tok == TS_JSONL_TRUE;
			break;
		default: v->type = TS_JV_NULL; break;
		}
	}
	if (d->n == 0) {
		snprintf(msg, msg_len, "empty JSON document");
		return TS_EINVALID;
	}
	return 0;
}

void ts_jdoc_fini(struct ts_jdoc *d)
{
	if (!d)
		return;
	ts_free(d->v);
	ts_free(d->str);
	memset(d, 0, sizeof *d);
}

const struct ts_jv *ts_jv_get(const struct ts_jdoc *d, const struct ts_jv *o, const char *key)
{
	if (!o || o->type != TS_JV_OBJ)
		return NULL;
	size_t kl = strlen(key);
	for (const struct ts_jv *v = ts_jv_first(d, o); v; v = ts_jv_next(d, v))
		if (v->key_len == kl && memcmp(v->key, key, kl) == 0)
			return v;
	return NULL;
}

const struct ts_jv *ts_jv_first(const struct ts_jdoc *d, const struct ts_jv *a)
{
	if (!a || (a->type != TS_JV_OBJ && a->type != TS_JV_ARR) || !a->child)
		return NULL;
	return &d->v[a->child];
}

const struct ts_jv *ts_jv_next(const struct ts_jdoc *d, const struct ts_jv *v)
{
	return v && v->next ? &d->v[v->next] : NULL;
}

const char *ts_jv_str(const struct ts_jv *v)
{
	return v && v->type == TS_JV_STR ? v->s : NULL;
}
