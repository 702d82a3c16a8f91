/*
 * api_json.c - the Prometheus HTTP API's conventions shared by the read-side handlers
 * (see api_json.h): answers (envelope, values, times, labels, errors, the error type
 * of a failed evaluation) and requests (parameters, times, durations, limits, match[]
 * selectors), with Prometheus' messages.
 *
 * Invariant: every ts_api_* function that takes a response either completes it and
 * returns non-zero, or leaves it untouched and returns 0, so a handler can chain them
 * and return at the first failure.
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

#include "wire/fmtnum.h"
#include "storage/err.h"
#include "storage/mem.h"

/* ---- answers ---- */

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

void ts_api_engine_error(struct ts_net_response *resp, int rc, const char *msg)
{
	if (rc == TS_EINVALID)
		ts_api_error(resp, TS_API_BAD_DATA, "%s", msg && msg[0] ? msg : "invalid matcher");
	else if (rc == -ENOMEM)
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
	else
		ts_api_error(resp, TS_API_INTERNAL, "%s", ts_strerror(rc));
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

/* t_ms as Prometheus writes a timestamp: seconds, then ".mmm" unless whole. Without
 * printf: a matrix answer writes one per point, and printf was a tenth of a range
 * query's time. Returns the length (at most 25, no NUL; out needs 26 bytes). */
static size_t fmt_time(char *out, int64_t t_ms)
{
	uint64_t u = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
	size_t n = 0;
	if (t_ms < 0)
		out[n++] = '-';
	n += ts_fmt_u64(out + n, u / 1000);
	unsigned frac = (unsigned)(u % 1000);
	if (frac) {
		out[n++] = '.';
		out[n++] = (char)('0' + frac / 100);
		out[n++] = (char)('0' + frac / 10 % 10);
		out[n++] = (char)('0' + frac % 10);
	}
	return n;
}

void ts_api_time(struct ts_sbuf *b, int64_t t_ms)
{
	char buf[32];
	ts_sbuf_add(b, buf, fmt_time(buf, t_ms));
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

/* [t,"v"], after a comma when comma: built whole, then appended once. */
static void point(struct ts_sbuf *b, const struct ts_qpoint *p, bool comma)
{
	char buf[2 + 32 + 2 + TS_FMT_DOUBLE_MAX + 24 + 2];
	size_t n = 0;
	if (comma)
		buf[n++] = ',';
	buf[n++] = '[';
	n += fmt_time(buf + n, p->t_ms);
	buf[n++] = ',';
	buf[n++] = '"';
	n += ts_api_fmt_value(buf + n, p->v);
	buf[n++] = '"';
	buf[n++] = ']';
	ts_sbuf_add(b, buf, n);
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
		point(b, &r->scalar, false);
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
					point(b, &s->points[0], false);
				else
					ts_sbuf_str(b, "null");
			} else {
				ts_sbuf_str(b, ",\"values\":[");
				for (size_t k = 0; k < s->n_points; k++)
					point(b, &s->points[k], k > 0);
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

/* ---- requests ---- */

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

/* Prometheus' "cannot parse" answer for parameter `name` with value s. Returns 1. */
static int unparsable(struct ts_net_response *resp, const char *name, const char *s,
		      const char *what)
{
	char q[160];
	ts_api_error(resp, TS_API_BAD_DATA,
		     "invalid parameter \"%s\": cannot parse %s to a valid %s", name,
		     quoted(q, sizeof q, s), what);
	return 1;
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
	return unparsable(resp, name, s, "timestamp");
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
	return unparsable(resp, name, s, "duration");
}

int ts_api_resolution_param(struct ts_net_response *resp, const struct ts_params *p, int64_t *out)
{
	const char *s = ts_params_get(p, "max_source_resolution", NULL);
	*out = TS_QRES_AUTO;
	if (!s || !*s || strcmp(s, "auto") == 0)
		return 0;
	if (strcmp(s, "raw") == 0) {
		*out = 0;
		return 0;
	}
	if (parse_float_seconds_ms(s, out) && ts_parse_duration_ms(s, out))
		return unparsable(resp, "max_source_resolution", s, "duration");
	if (*out < 0) {
		ts_api_error(resp, TS_API_BAD_DATA,
			     "negative max_source_resolution is not accepted. Try a positive "
			     "integer");
		return 1;
	}
	return 0;
}

int ts_api_limit_param(struct ts_net_response *resp, const struct ts_params *p, size_t *out)
{
	size_t len;
	const char *s = ts_params_get(p, "limit", &len);
	*out = 0;
	if (!s || !len)
		return 0;
	int64_t v;
	if (ts_fmtnum_parse_int64(s, len, &v))
		return unparsable(resp, "limit", s, "limit");
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

struct sel_acc {
	struct ts_selector *v;
	size_t n;
	int rc;
	char msg[400];
};

static int sel_one(void *arg, const char *value, size_t len)
{
	struct sel_acc *a = arg;
	int rc = ts_selector_parse(&a->v[a->n], value, len, a->msg, sizeof a->msg);
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
		     struct ts_selector **out, size_t *n)
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

void ts_api_selectors_free(struct ts_selector *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		ts_selector_fini(&s[i]);
	ts_free(s);
}
