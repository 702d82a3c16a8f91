/*
 * status.c - the rest of Prometheus' HTTP API that Grafana, promtool and dashboards
 * call, answered as Prometheus 2.42 answers (web/api/v1/api.go):
 *
 *   GET      /api/v1/status/flags        every flag of tsdbd and its value in force
 *   GET      /api/v1/status/config       {"yaml": ...}: the flags as YAML (tsdbd has no
 *                                        Prometheus configuration file)
 *   GET      /api/v1/status/runtimeinfo  start time, working directory, threads, CPUs,
 *                                        raw retention
 *   GET      /api/v1/status/storage      tsdbd's own: every time partition (range, bytes,
 *                                        state, 5m and 1h tier rows and bytes), totals
 *   GET|POST /api/v1/format_query        query formatted as Prometheus' format_query
 *   GET|POST /api/v1/query_exemplars     an empty list and a warning: exemplars that
 *                                        remote write sends are accepted, not stored
 *   GET      /api/v1/targets             no targets: tsdbd scrapes nothing
 *   GET      /api/v1/targets/metadata    []
 *   GET      /api/v1/rules, /alerts      no rules, no alerts: they run in Prometheus or
 *                                        vmalert, which write their results here
 *   GET      /api/v1/alertmanagers       none
 *
 * The empty answers have Prometheus' shapes, so that clients that list them (Grafana's
 * alerting views, promtool, dashboards of Prometheus itself) show "nothing" rather than
 * an error.
 */
#include "server/app.h"
#include "server/ha.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/api_json.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

static void answer_json(struct ts_net_response *resp, const char *data, const char *warning)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, data);
	ts_api_finish(resp, &b, warning ? &warning : NULL, warning ? 1 : 0);
}

/* tsdbd's own: every time partition with its size and downsampled tiers, and the
 * totals, for the status page (and operators' scripts). */
static void h_storage(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	const struct ts_app *app = arg;
	struct ts_part_stat *ps;
	size_t n;
	if (ts_db_partition_stats(app->db, &ps, &n)) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return;
	}
	struct ts_db_stats st;
	ts_db_stats(app->db, &st);
	uint64_t tiers[2] = { 0, 0 }, parts = 0;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "{\"partitions\":[");
	for (size_t i = 0; i < n; i++) {
		const struct ts_part_stat *p = &ps[i];
		ts_sbuf_str(&b, i ? ",{\"start\":" : "{\"start\":");
		ts_api_time(&b, p->start_ms);
		ts_sbuf_str(&b, ",\"end\":");
		ts_api_time(&b, p->end_ms);
		ts_sbuf_printf(&b, ",\"bytes\":%llu,\"open\":%s,\"compacted\":%s,\"tiers\":",
			       (unsigned long long)p->bytes, p->open ? "true" : "false",
			       p->compacted < 0 ? "null"
			       : p->compacted	? "true"
						: "false");
		if (p->has_tiers)
			ts_sbuf_printf(&b,
				       "{\"5m\":{\"rows\":%llu,\"bytes\":%llu},"
				       "\"1h\":{\"rows\":%llu,\"bytes\":%llu}}}",
				       (unsigned long long)p->tier_rows[0],
				       (unsigned long long)p->tier_bytes[0],
				       (unsigned long long)p->tier_rows[1],
				       (unsigned long long)p->tier_bytes[1]);
		else
			ts_sbuf_str(&b, "null}");
		parts += p->bytes;
		tiers[0] += p->tier_bytes[0];
		tiers[1] += p->tier_bytes[1];
	}
	ts_sbuf_printf(&b,
		       "],\"totals\":{\"partitions_bytes\":%llu,\"tier_5m_bytes\":%llu,"
		       "\"tier_1h_bytes\":%llu,\"index_bytes\":%llu,\"wal_bytes\":%llu,"
		       "\"wal_segments\":%llu,\"series\":%llu}}",
		       (unsigned long long)parts, (unsigned long long)tiers[0],
		       (unsigned long long)tiers[1], (unsigned long long)st.index_bytes,
		       (unsigned long long)st.wal.bytes_on_disk,
		       (unsigned long long)st.wal.n_segments, (unsigned long long)st.n_series);
	ts_free(ps);
	ts_api_finish(resp, &b, NULL, 0);
}

static void h_flags(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	const struct ts_app *app = arg;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "{");
	for (size_t i = 0; i < app->n_flags; i++) {
		if (i)
			ts_sbuf_str(&b, ",");
		ts_sbuf_json_str(&b, app->flags[i].name, strlen(app->flags[i].name));
		ts_sbuf_str(&b, ":");
		ts_sbuf_json_str(&b, app->flags[i].value, strlen(app->flags[i].value));
	}
	ts_sbuf_str(&b, "}");
	ts_api_finish(resp, &b, NULL, 0);
}

/* A YAML scalar: plain when it is safe, else double-quoted with JSON's escapes (a
 * subset of YAML's). */
static void yaml_scalar(struct ts_sbuf *b, const char *s)
{
	bool plain = *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789./_-") == strlen(s);
	if (plain)
		ts_sbuf_str(b, s);
	else
		ts_sbuf_json_str(b, s, strlen(s));
}

static void h_config(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	const struct ts_app *app = arg;
	struct ts_sbuf y;
	ts_sbuf_init(&y);
	ts_sbuf_str(&y, "# tsdbd has no Prometheus configuration file; these are its flags.\n");
	for (size_t i = 0; i < app->n_flags; i++) {
		ts_sbuf_str(&y, app->flags[i].name);
		ts_sbuf_str(&y, ": ");
		yaml_scalar(&y, app->flags[i].value);
		ts_sbuf_str(&y, "\n");
	}
	size_t len;
	char *text = ts_sbuf_take(&y, &len);
	if (!text) {
		ts_api_error(resp, TS_API_UNAVAILABLE, "out of memory");
		return;
	}
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_str(&b, "{\"yaml\":");
	ts_sbuf_json_str(&b, text, len);
	ts_sbuf_str(&b, "}");
	ts_free(text);
	ts_api_finish(resp, &b, NULL, 0);
}

/* RFC 3339 in UTC with milliseconds, as Go's time.Time marshals to JSON. */
static void rfc3339(char *buf, size_t cap, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* Threads of this process, from /proc (Prometheus reports goroutines there). */
static long thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	long n = 0;
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static void h_runtimeinfo(const struct ts_http_request *req, struct ts_net_response *resp,
			  void *arg)
{
	(void)req;
	const struct ts_app *app = arg;
	char start[40], cwd[1024];
	rfc3339(start, sizeof start, app->start_ms);
	if (!getcwd(cwd, sizeof cwd))
		snprintf(cwd, sizeof cwd, "%s", "");
	const char *retention = "";
	for (size_t i = 0; i < app->n_flags; i++)
		if (!strcmp(app->flags[i].name, "retention.raw"))
			retention = app->flags[i].value;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_printf(&b, "{\"startTime\":\"%s\",\"CWD\":", start);
	ts_sbuf_json_str(&b, cwd, strlen(cwd));
	ts_sbuf_printf(&b,
		       ",\"reloadConfigSuccess\":true,\"lastConfigTime\":\"%s\","
		       "\"corruptionCount\":0,\"goroutineCount\":%ld,\"GOMAXPROCS\":%ld,"
		       "\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":",
		       start, thread_count(), sysconf(_SC_NPROCESSORS_ONLN));
	ts_sbuf_json_str(&b, retention, strlen(retention));
	ts_sbuf_str(&b, "}");
	ts_api_finish(resp, &b, NULL, 0);
}

/* The query parameter formatted (*text, ts_free it): 0, or answers the error as
 * Prometheus does for a query that does not parse (format_query names the parameter,
 * query_exemplars does not: named) and returns 1. */
static int format_param(struct ts_net_response *resp, const struct ts_params *p, bool named,
			char **text)
{
	size_t q_len = 0;
	const char *q = ts_params_get(p, "query", &q_len);
	struct ts_qerr err;
	int rc = ts_query_format(q ? q : "", q ? q_len : 0, text, &err);
	if (rc == 0)
		return 0;
	enum ts_api_errtype t = ts_api_eval_errtype(rc, &err);
	if (t == TS_API_BAD_DATA && named)
		ts_api_error(resp, t, "invalid parameter \"query\": %s", err.msg);
	else
		ts_api_error(resp, t, "%s", err.msg);
	return 1;
}

static void h_format_query(const struct ts_http_request *req, struct ts_net_response *resp,
			   void *arg)
{
	(void)arg;
	struct ts_params p;
	ts_params_init(&p);
	if (ts_api_params(req, resp, &p))
		goto out;
	char *text = NULL;
	if (format_param(resp, &p, true, &text))
		goto out;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_json_str(&b, text, strlen(text));
	ts_free(text);
	ts_api_finish(resp, &b, NULL, 0);
out:
	ts_params_fini(&p);
}

static void h_query_exemplars(const struct ts_http_request *req, struct ts_net_response *resp,
			      void *arg)
{
	(void)arg;
	struct ts_params p;
	ts_params_init(&p);
	int64_t start, end;
	if (ts_api_params(req, resp, &p) ||
	    ts_api_time_param(resp, &p, "start", TS_API_MIN_TIME_MS, &start) ||
	    ts_api_time_param(resp, &p, "end", TS_API_MAX_TIME_MS, &end))
		goto out;
	if (end < start) {
		ts_api_error(resp, TS_API_BAD_DATA, "end timestamp must not be before start time");
		goto out;
	}
	/* The query must parse, as Prometheus checks it before looking for exemplars. */
	char *text = NULL;
	if (format_param(resp, &p, false, &text))
		goto out;
	ts_free(text);
	answer_json(resp, "[]",
		    "exemplars are not stored: tsdbd accepts the exemplars remote write sends "
		    "and drops them");
out:
	ts_params_fini(&p);
}

/* An endpoint whose data is always the same JSON (arg: the text). */
static void h_constant(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	answer_json(resp, arg, NULL);
}

/* Opens an HA object of the list in b (a comma after the previous one) with its
 * tenant, cluster and replica. */
static void ha_json_ident(struct ts_sbuf *b, const char *tenant, const char *cluster,
			  const char *replica)
{
	if (b->len && b->p && b->p[b->len - 1] == '}')
		ts_sbuf_str(b, ",");
	ts_sbuf_str(b, "{\"tenant\":");
	ts_sbuf_json_str(b, tenant, strlen(tenant));
	ts_sbuf_str(b, ",\"cluster\":");
	ts_sbuf_json_str(b, cluster, strlen(cluster));
	ts_sbuf_str(b, ",\"replica\":");
	ts_sbuf_json_str(b, replica, strlen(replica));
}

static void ha_json_cluster(void *arg, const struct ts_ha_state *st)
{
	struct ts_sbuf *b = arg;
	ha_json_ident(b, st->tenant, st->cluster, st->replica);
	ts_sbuf_printf(b, ",\"electedAtMs\":%lld,\"lastSeenMs\":%lld,\"failovers\":%llu}",
		       (long long)st->elected_at_ms, (long long)st->last_seen_ms,
		       (unsigned long long)st->failovers);
}

static void ha_json_drop(void *arg, const struct ts_ha_drop *d)
{
	struct ts_sbuf *b = arg;
	ha_json_ident(b, d->tenant, d->cluster, d->replica);
	ts_sbuf_printf(b, ",\"samplesDropped\":%llu}", (unsigned long long)d->samples);
}

/* GET /api/v1/status/ha: the HA tracker's elections and what it dropped. */
static void h_ha(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	struct ts_app *app = arg;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	ts_api_begin(&b);
	ts_sbuf_printf(&b, "{\"enabled\":%s,\"clusters\":[", app->ha ? "true" : "false");
	ts_ha_each(app->ha, ha_json_cluster, NULL, &b);
	ts_sbuf_str(&b, "],\"dropped\":[");
	ts_ha_each(app->ha, NULL, ha_json_drop, &b);
	ts_sbuf_str(&b, "]}");
	ts_api_finish(resp, &b, NULL, 0);
}

int ts_status_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "GET", "/api/v1/status/flags", 0, h_flags, "status_flags" },
		{ "GET", "/api/v1/status/storage", 0, h_storage, "status_storage" },
		{ "GET", "/api/v1/status/ha", 0, h_ha, "status_ha" },
		{ "GET", "/api/v1/status/config", 0, h_config, "status_config" },
		{ "GET", "/api/v1/status/runtimeinfo", 0, h_runtimeinfo, "status_runtimeinfo" },
		{ "GET", "/api/v1/format_query", 0, h_format_query, "format_query" },
		{ "POST", "/api/v1/format_query", 0, h_format_query, "format_query" },
		{ "GET", "/api/v1/query_exemplars", 0, h_query_exemplars, "query_exemplars" },
		{ "POST", "/api/v1/query_exemplars", 0, h_query_exemplars, "query_exemplars" },
	};
	static const struct {
		const char *path, *data, *name;
	} empty[] = {
		{ "/api/v1/targets", "{\"activeTargets\":[],\"droppedTargets\":[]}", "targets" },
		{ "/api/v1/targets/metadata", "[]", "targets_metadata" },
		{ "/api/v1/rules", "{\"groups\":[]}", "rules" },
		{ "/api/v1/alerts", "{\"alerts\":[]}", "alerts" },
		{ "/api/v1/alertmanagers",
		  "{\"activeAlertmanagers\":[],\"droppedAlertmanagers\":[]}", "alertmanagers" },
	};
	int rc = ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
	for (size_t i = 0; rc == 0 && i < sizeof empty / sizeof *empty; i++)
		rc = ts_net_route(app->net, "GET", empty[i].path, 0, h_constant,
				  (void *)empty[i].data, empty[i].name);
	return rc;
}
