/*
 * export.c - GET|POST /api/v1/export: series as JSON lines, in the VictoriaMetrics
 * format that /api/v1/import reads back (wire/jsonl.h).
 *
 * Parameters: match[] (required, repeated: the union of the selectors), start and end
 * (Prometheus time formats; default: everything). Errors found before the first byte
 * (bad parameters, bad regex) are answered with the Prometheus API's JSON envelope; once
 * streaming has begun a failure can only end the stream early.
 *
 * Memory stays bounded whatever the series count or length: series are walked one at
 * a time in label order, a long series is written as several lines of at most
 * LINE_SAMPLES samples (VictoriaMetrics' export splits series the same way and its
 * import accepts it), and output goes out in pieces of about PIECE_BYTES under the
 * stream's backpressure. Stale markers are left out: the text form cannot carry their
 * NaN payload, and an imported plain NaN would not mean "series ended".
 */
#include <errno.h>
#include <string.h>

#include "server/api_json.h"
#include "server/app.h"
#include "server/tenant.h"
#include "wire/jsonl.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define LINE_SAMPLES 10000
#define PIECE_BYTES (64u * 1024)

struct piece {
	char *p;
	size_t len, cap;
};

static int piece_line(struct piece *pc, const struct ts_label *l, uint32_t nl,
		      const struct ts_sample *s, size_t n)
{
	size_t need = ts_jsonl_encode_bound(l, nl, n);
	if (need == SIZE_MAX || pc->len + need < pc->len)
		return TS_ELIMIT;
	need += pc->len;
	if (ts_grow((void **)&pc->p, &pc->cap, need < PIECE_BYTES ? PIECE_BYTES : need, 1) != 0)
		return -ENOMEM;
	pc->len += ts_jsonl_encode(pc->p + pc->len, l, nl, s, n);
	return 0;
}

static int piece_send(struct ts_net_response *resp, struct piece *pc, int force)
{
	if (pc->len == 0 || (!force && pc->len < PIECE_BYTES))
		return 0;
	char *p = pc->p;
	size_t len = pc->len;
	*pc = (struct piece){ 0 };
	return ts_net_stream_write(resp, p, len);
}

static int export_series(struct ts_net_response *resp, struct piece *pc,
			 const struct ts_selector_ref *r, struct ts_sample *buf)
{
	struct ts_iter *it;
	int rc = ts_iter_new(r->set, r->i, &it);
	if (rc)
		return rc;
	size_t n = 0;
	while ((rc = ts_iter_next(it)) == 1) {
		struct ts_sample *s = &buf[n];
		ts_iter_at(it, &s->t_ms, &s->v);
		uint64_t bits;
		memcpy(&bits, &s->v, 8);
		if (bits == TS_STALE_NAN_BITS)
			continue;
		if (++n == LINE_SAMPLES) {
			if ((rc = piece_line(pc, r->labels, r->n_labels, buf, n)) != 0 ||
			    (rc = piece_send(resp, pc, 0)) != 0)
				break;
			n = 0;
		}
	}
	if (rc == 0 && n)
		rc = piece_line(pc, r->labels, r->n_labels, buf, n);
	if (rc == 0)
		rc = piece_send(resp, pc, 0);
	ts_iter_free(it);
	return rc;
}

static void h_export(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	struct ts_selector *sel = NULL;
	size_t n_sel = 0;
	int64_t start, end;
	struct ts_selector_union u = { 0 };
	char msg[400] = "";
	struct ts_tenant tenant;
	if (ts_tenant_of(app, req, &tenant, msg, sizeof msg)) {
		ts_api_error(resp, TS_API_BAD_DATA, "%s", msg);
		goto out;
	}
	if (ts_api_params(req, resp, &p) || ts_api_selectors(resp, &p, &sel, &n_sel))
		goto out;
	if (!n_sel) {
		ts_api_error(resp, TS_API_BAD_DATA, "no match[] parameter provided");
		goto out;
	}
	if (ts_tenant_scope(&tenant, sel, n_sel)) {
		ts_api_engine_error(resp, -ENOMEM, NULL);
		goto out;
	}
	if (ts_api_time_param(resp, &p, "start", TS_API_MIN_TIME_MS, &start) ||
	    ts_api_time_param(resp, &p, "end", TS_API_MAX_TIME_MS, &end))
		goto out;
	if (end < start) {
		ts_api_error(resp, TS_API_BAD_DATA, "end timestamp must not be before start time");
		goto out;
	}
	int rc = ts_selector_union(app->db, sel, n_sel, start, end, false, &u, msg, sizeof msg);
	if (rc) {
		if (rc == TS_EINVALID)
			ts_api_error(resp, TS_API_BAD_DATA, "%s", msg[0] ? msg : "invalid matcher");
		else
			ts_api_error(resp, rc == -ENOMEM ? TS_API_UNAVAILABLE : TS_API_INTERNAL,
				     "%s", ts_strerror(rc));
		goto out;
	}
	struct ts_sample *buf = ts_malloc(LINE_SAMPLES * sizeof *buf);
	if (!buf) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		goto out;
	}
	ts_net_response_header(resp, "Content-Type", "application/stream+json; charset=utf-8");
	struct piece pc = { 0 };
	rc = ts_net_stream_begin(resp, 200);
	for (size_t i = 0; rc == 0 && i < u.n_refs; i++)
		rc = export_series(resp, &pc, &u.refs[i], buf);
	if (rc == 0)
		rc = piece_send(resp, &pc, 1);
	if (rc && rc != TS_ECLOSED)
		ts_log(TS_LOG_WARN, "export: stream aborted: %s", ts_strerror(rc));
	ts_free(pc.p);
	ts_free(buf);
	ts_net_stream_end(resp);
out:
	ts_selector_union_fini(&u);
	ts_api_selectors_free(sel, n_sel);
	ts_params_fini(&p);
}

int ts__export_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "GET", "/api/v1/export", 0, h_export, "export" },
		{ "POST", "/api/v1/export", 0, h_export, "export" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
