/*
 * admin.c - Prometheus' TSDB admin API, registered only with --web.enable-admin-api
 * (without it the paths answer 404, as Prometheus' do; a GET answers 405):
 *
 *   POST|PUT /api/v1/admin/tsdb/delete_series    match[] (one or more), start, end -> 204
 *   POST|PUT /api/v1/admin/tsdb/clean_tombstones -> 204
 *
 * delete_series deletes the samples in [start, end] (default: all time) of every series
 * one of the selectors matches (tsdb.h, ts_db_delete); they are gone from every read
 * path once the answer is sent. clean_tombstones rewrites what the deletions cover so
 * the space is given back (ts_db_clean_tombstones) and answers when done. Errors are
 * the API's JSON envelope, with Prometheus 2.42's messages for bad parameters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/api_json.h"
#include "server/app.h"
#include "storage/err.h"

static void h_delete_series(const struct ts_http_request *req, struct ts_net_response *resp,
			    void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	struct ts_selector *sel = NULL;
	size_t n_sel = 0;
	int64_t start, end;
	char msg[400] = "";
	ts_params_init(&p);
	if (ts_api_params(req, resp, &p) ||
	    ts_api_time_param(resp, &p, "start", TS_API_MIN_TIME_MS, &start) ||
	    ts_api_time_param(resp, &p, "end", TS_API_MAX_TIME_MS, &end) ||
	    ts_api_selectors(resp, &p, &sel, &n_sel))
		goto out;
	if (!n_sel) {
		ts_api_error(resp, TS_API_BAD_DATA, "no match[] parameter provided");
		goto out;
	}
	if (end < start) {
		ts_api_error(resp, TS_API_BAD_DATA, "end timestamp must not be before start time");
		goto out;
	}
	/* Each selector is its own deletion (a union, as Prometheus' match[]); each is
	 * durable on its own, so a failure part-way has deleted the earlier ones. */
	for (size_t i = 0; i < n_sel; i++) {
		int rc = ts_db_delete(app->db, sel[i].m, sel[i].n, start, end, NULL, msg,
				      sizeof msg);
		if (rc) {
			ts_api_engine_error(resp, rc, msg);
			goto out;
		}
	}
	ts_net_respond(resp, 204, NULL, 0);
out:
	ts_api_selectors_free(sel, n_sel);
	ts_params_fini(&p);
}

static void h_clean_tombstones(const struct ts_http_request *req, struct ts_net_response *resp,
			       void *arg)
{
	struct ts_app *app = arg;
	(void)req;
	int rc = ts_db_clean_tombstones(app->db, NULL);
	if (rc)
		ts_api_engine_error(resp, rc, NULL);
	else
		ts_net_respond(resp, 204, NULL, 0);
}

int ts_admin_routes(struct ts_app *app)
{
	/* POST and PUT, as Prometheus registers both. */
	static const struct ts_net_route_def r[] = {
		{ "POST", "/api/v1/admin/tsdb/delete_series", 0, h_delete_series,
		  "admin_delete_series" },
		{ "PUT", "/api/v1/admin/tsdb/delete_series", 0, h_delete_series,
		  "admin_delete_series" },
		{ "POST", "/api/v1/admin/tsdb/clean_tombstones", 0, h_clean_tombstones,
		  "admin_clean_tombstones" },
		{ "PUT", "/api/v1/admin/tsdb/clean_tombstones", 0, h_clean_tombstones,
		  "admin_clean_tombstones" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
