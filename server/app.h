/*
 * app.h - what every tsdbd handler shares: the engine, the server limits, per-worker
 * scratch contexts, and the counters /metrics reports.
 */
#ifndef TS_SERVER_APP_H
#define TS_SERVER_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/net.h"
#include "tsdb/tsdb.h"

#define TS_APP_VERSION "0.1.0"

enum ts_proto { TS_PROTO_RW = 0, TS_PROTO_INFLUX, TS_PROTO_JSONL, TS_PROTO_PROMTEXT, TS_PROTO_N };

/* Why samples were not stored (the label "reason" of tsdb_samples_rejected_total). */
enum ts_reject {
	TS_REJ_OUT_OF_ORDER = 0,
	TS_REJ_DUPLICATE,
	TS_REJ_TOO_OLD,
	TS_REJ_TOO_FUTURE,
	TS_REJ_INVALID_SERIES,
	TS_REJ_HISTOGRAM,
	TS_REJ_STRING_FIELD,
	TS_REJ_PARSE_ERROR,
	TS_REJ_SERIES_LIMIT, /* series (not samples) refused by --max-series[-per-metric] */
	TS_REJ_N
};

/* Requests refused whole, by limit (tsdb_requests_limited_total). */
enum ts_limit {
	TS_LIM_BODY = 0,
	TS_LIM_DECODED,
	TS_LIM_LABELS,
	TS_LIM_REQUEST_SERIES, /* a request's series, samples or exemplars (decoder bound) */
	TS_LIM_LINE,
	TS_LIM_SERIES,		  /* --max-series: new series refused (request partly stored) */
	TS_LIM_SERIES_PER_METRIC, /* --max-series-per-metric, likewise */
	TS_LIM_TENANT_SERIES,	  /* --tenant.max-series, likewise */
	TS_LIM_TENANT_RATE,	  /* --tenant.max-samples-per-second: 429, nothing stored */
	TS_LIM_TENANT_NEW_SERIES, /* --tenant.max-new-series-per-minute: 429, rest stored */
	TS_LIM_N
};

/* Query limits of every query (--query.timeout, --query.max-samples, --query.max-series);
 * 0 fields take the engine's defaults (2 minutes, 50,000,000 samples, no series limit). */
struct ts_app_query_limits {
	int64_t timeout_ms;
	uint64_t max_samples;
	uint64_t max_series;
};

struct ts_app_limits {
	size_t max_decoded_bytes; /* decompressed body; default 32 MiB */
	uint32_t max_labels;	  /* per series; default 64 */
	uint32_t max_name_len;	  /* label name; default 256 */
	uint32_t max_value_len;	  /* label value; default 4096 */
	size_t max_line_bytes;	  /* one line of line protocol or Prometheus text; 256 KiB */
};

struct ts_ingest_ctx; /* per-request scratch, pooled (ingest.c) */
struct ts_ha;
struct ts_tenant_rates;
struct ts_tenant_counts;

/* One flag of tsdbd and its value in force, as /api/v1/status/flags lists it. */
struct ts_app_flag {
	const char *name; /* without the leading "--" */
	const char *value;
};

struct ts_app {
	struct ts_db *db;
	const struct ts_app_flag *flags; /* every flag, in --help's order */
	size_t n_flags;
	struct ts_net_server *net;
	struct ts_app_limits lim;
	struct ts_app_query_limits qlim;
	const char *tenant_header;		/* --tenant-header; NULL: no tenants (tenant.h) */
	const char *default_tenant;		/* --default-tenant */
	struct ts_tenant_rates *rates;		/* --tenant.max-samples-per-second; NULL: none */
	struct ts_tenant_counts *tenant_counts; /* per-tenant /metrics; NULL: no tenants */
	const char *data_dir;
	/* --external-label: added to every series the StoreAPI and remote read return,
	 * sorted by name, names distinct (NULL, 0: none) */
	const struct ts_label *ext_labels;
	size_t n_ext_labels;
	struct ts_ha *ha; /* --ha.cluster-label / --ha.replica-label; NULL: off (ha.h) */
	const char *const *replica_labels; /* --query.replica-label (query-time dedup) */
	size_t n_replica_labels;
	int64_t start_ms;
	atomic_int ready;

	pthread_mutex_t pool_mu;
	struct ts_ingest_ctx *pool;
	struct ts_refcache *refs; /* series refs by protocol bytes (refcache.h); NULL: none */

	atomic_uint_fast64_t samples_in[TS_PROTO_N];
	atomic_uint_fast64_t series_created;
	atomic_uint_fast64_t rejected[TS_REJ_N];
	atomic_uint_fast64_t limited[TS_LIM_N];
	atomic_uint_fast64_t duplicates;
	atomic_uint_fast64_t metadata_in;
};

/* A request's timeout parameter (0: none given) within --query.timeout, as Prometheus
 * caps it. */
static inline int64_t ts_app_query_timeout(const struct ts_app *app, int64_t requested)
{
	int64_t cap = app->qlim.timeout_ms;
	if (requested > 0 && (!cap || requested < cap))
		return requested;
	return cap;
}

/* Registers the ingest routes (/api/v1/write, /api/v1/push, /write, /api/v2/write,
 * /api/v1/import, /api/v1/import/prometheus, /ping) on app->net, with app as their
 * argument (it must outlive the server). Before ts_net_run. Returns 0, or -ENOMEM
 * (ts_net_routes). */
int ts_ingest_routes(struct ts_app *app);
/* Frees the pooled per-request contexts, after the server stopped. */
void ts_ingest_fini(struct ts_app *app);
/* Registers /metrics, /-/healthy, /-/ready, /api/v1/status/buildinfo, as
 * ts_ingest_routes does. Returns 0 or -ENOMEM. */
int ts_ops_routes(struct ts_app *app);
/* Registers the read side: the Prometheus query API (/api/v1/query, query_range, series,
 * labels, label values, metadata, status/tsdb), /api/v1/export, /api/v1/read and the
 * Grafana JSON datasource under /grafana/, as ts_ingest_routes does. Returns 0 or
 * -ENOMEM. */
int ts_query_routes(struct ts_app *app);
/* Registers the status and empty-list endpoints of Prometheus' API (status/flags,
 * status/config, status/runtimeinfo, format_query, query_exemplars, targets, rules,
 * alerts, alertmanagers; status.c), as ts_ingest_routes does. Returns 0 or -ENOMEM. */
int ts_status_routes(struct ts_app *app);
/* Registers the web UI (/ and /ui/, ui.c), as ts_ingest_routes does. Returns 0 or
 * -ENOMEM. */
int ts_ui_routes(struct ts_app *app);
/* Registers the TSDB admin API (/api/v1/admin/tsdb/delete_series, clean_tombstones),
 * as ts_ingest_routes does; only with --web.enable-admin-api. Returns 0 or -ENOMEM. */
int ts_admin_routes(struct ts_app *app);

/* Maps an engine error of a write to an HTTP status: 503 with a Retry-After header set on
 * resp for everything that is the store's trouble and may pass (-errno such as -ENOSPC
 * and -ENOMEM, TS_EIO, TS_ECLOSED, TS_EBUSY, TS_EFULL), 500 otherwise (TS_ECORRUPT). */
int ts_app_write_error_status(struct ts_net_response *resp, int err);

#endif
