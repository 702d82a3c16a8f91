/*
 * admin.c - Prometheus' TSDB admin API, registered only with --web.enable-admin-api
 * (without it the paths answer 404, as Prometheus' do; a GET answers 405):
 *
 *   POST|PUT /api/v1/admin/tsdb/delete_series    match[] (one or more), start, end -> 204
 *   POST|PUT /api/v1/admin/tsdb/clean_tombstones -> 204
 *   POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true] ->
 *            {"status":"success","data":{"name":"<name>"}}
 *
 * snapshot writes a consistent, self-contained copy of the data directory into
 * <data-dir>/snapshots/<name> (ts_db_snapshot; name as Prometheus makes it: the UTC time
 * and 16 random hex digits), which tsdbd and tsdbctl open as it is.
 *
 * delete_series deletes the samples in [start, end] (default: all time) of every series
 * one of the selectors matches (tsdb.h, ts_db_delete); they are gone from every read
 * path once the answer is sent. clean_tombstones rewrites what the deletions cover so
 * the space is given back (ts_db_clean_tombstones) and answers when done. Errors are
 * the API's JSON envelope, with Prometheus 2.42's messages for bad parameters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/api_json.h"
#include "server/app.h"
#include "server/sbuf.h"
#include "server/tenant.h"
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
	/* A tenant deletes only its own series. */
	struct ts_tenant tenant;
	if (ts_tenant_of(app, req, &tenant, msg, sizeof msg)) {
		ts_api_error(resp, TS_API_BAD_DATA, "%s", msg);
		goto out;
	}
	if (ts_tenant_scope(&tenant, sel, n_sel)) {
		ts_api_engine_error(resp, -ENOMEM, NULL);
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

/* Prometheus' snapshot name: 20060102T150405Z-<16 hex digits of randomness>. */
static int snapshot_name(char *out, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	unsigned char r[8];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, r, sizeof r) : -1;
	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof r || !gmtime_r(&now, &tm))
		return -EIO;
	size_t n = strftime(out, cap, "%Y%m%dT%H%M%SZ-", &tm);
	for (size_t i = 0; i < sizeof r && n + 2 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%02x", r[i]);
	return 0;
}

static void h_snapshot(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_params p;
	ts_params_init(&p);
	if (ts_api_params(req, resp, &p))
		goto out;
	const char *sh = ts_params_get(&p, "skip_head", NULL);
	int skip = 0;
	if (sh && *sh) {
		/* Go's strconv.ParseBool, as Prometheus parses it. */
		static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
		static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
		int ok = 0;
		for (size_t i = 0; i < 6; i++) {
			if (!strcmp(sh, yes[i]))
				skip = ok = 1;
			if (!strcmp(sh, no[i]))
				ok = 1;
		}
		if (!ok) {
			ts_api_error(
				resp, TS_API_BAD_DATA,
				"unable to parse boolean 'skip_head' argument: strconv.ParseBool: "
				"parsing \"%.64s\": invalid syntax",
				sh);
			goto out;
		}
	}
	char name[64], dir[4300];
	if (snapshot_name(name, sizeof name)) {
		ts_api_error(resp, TS_API_INTERNAL, "create snapshot: no randomness");
		goto out;
	}
	snprintf(dir, sizeof dir, "%s/snapshots", app->data_dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		ts_api_error(resp, TS_API_INTERNAL, "create snapshot: %s: %s", dir,
			     strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof dir, "%s/snapshots/%s", app->data_dir, name);
	int rc = ts_db_snapshot(app->db, dir, skip);
	if (rc) {
		ts_api_error(resp, TS_API_INTERNAL, "create snapshot: %s", ts_strerror(rc));
		goto out;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_printf(&b, "{\"name\":\"%s\"}", name);
	ts_api_finish(resp, &b, NULL, 0);
out:
	ts_params_fini(&p);
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
		{ "POST", "/api/v1/admin/tsdb/snapshot", 0, h_snapshot, "admin_snapshot" },
		{ "PUT", "/api/v1/admin/tsdb/snapshot", 0, h_snapshot, "admin_snapshot" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
