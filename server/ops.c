/*
 * ops.c - operational endpoints: /metrics (Prometheus text format 0.0.4), /-/healthy,
 * /-/ready and /api/v1/status/buildinfo.
 *
 * Metric names are tsdb_* for ours and follow Prometheus' conventions (base units,
 * _total for counters). Per-route request counts and durations come from the net
 * layer's stats; engine figures from ts_db_stats().
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/refcache.h"
#include "server/ha.h"
#include "server/tenant.h"
#include "server/sbuf.h"
#include "storage/err.h"
#include "storage/mem.h"

static const char *proto_names[TS_PROTO_N] = { "remote_write", "influx", "jsonl",
					       "prometheus_text" };
static const char *reject_names[] = { "out_of_order",	   "duplicate_conflict", "too_old",
				      "too_far_in_future", "invalid_series",	 "native_histogram",
				      "string_field",	   "parse_error",	 "series_limit" };
_Static_assert(sizeof reject_names / sizeof *reject_names == TS_REJ_N, "a name per reason");
static const char *limit_names[] = { "body_size",	  "decoded_size",  "labels",
				     "request_series",	  "line_length",   "series",
				     "series_per_metric", "tenant_series", "tenant_rate",
				     "tenant_new_series" };
_Static_assert(sizeof limit_names / sizeof *limit_names == TS_LIM_N, "a name per limit");

static void head(struct ts_sbuf *b, const char *name, const char *type, const char *help)
{
	ts_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter_u64(struct ts_sbuf *b, const char *name, const char *help, uint64_t v)
{
	head(b, name, "counter", help);
	ts_sbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge_u64(struct ts_sbuf *b, const char *name, const char *help, uint64_t v)
{
	head(b, name, "gauge", help);
	ts_sbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* Where the engine's memory goes, so that an operator sizing a pod can tell series
 * count from chunk backlog from allocator slack. */
static void memory_areas(struct ts_sbuf *b, const struct ts_db_stats *st,
			 const struct ts_refcache_stats *rc)
{
	head(b, "tsdb_memory_bytes", "gauge",
	     "Memory the engine holds, by area (allocated sizes; see process_heap_bytes for "
	     "the allocator's view).");
	const struct {
		const char *area;
		uint64_t v;
	} a[] = {
		{ "series", st->series_bytes },		 { "head_chunks", st->head_bytes },
		{ "pending_chunks", st->pending_bytes }, { "out_of_order", st->ooo_bytes },
		{ "registry", st->registry_bytes },	 { "block_cache", st->block_cache_bytes },
		{ "ingest_series_cache", rc->bytes },
	};
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		ts_sbuf_printf(b, "tsdb_memory_bytes{area=\"%s\"} %llu\n", a[i].area,
			       (unsigned long long)a[i].v);
	/* glibc's heap: in use (every allocation of the process, queries and buffers
	 * too) and free but not returned to the kernel. */
	struct mallinfo2 mi = mallinfo2();
	head(b, "process_heap_bytes", "gauge", "The C heap, by state.");
	ts_sbuf_printf(b, "process_heap_bytes{state=\"in_use\"} %llu\n",
		       (unsigned long long)(mi.uordblks + mi.hblkhd));
	ts_sbuf_printf(b, "process_heap_bytes{state=\"free\"} %llu\n",
		       (unsigned long long)mi.fordblks);
}

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Per-tenant families: which one a pass writes. Tenant names need no escaping (tenant.h
 * allows no quote, backslash or line break). */
struct tenant_pass {
	struct ts_sbuf *b;
	int kind; /* 0 samples, 1 series refused, 2 limited requests */
};

static void tenant_row(void *arg, const char *tenant, uint64_t samples, uint64_t refused,
		       const uint64_t *limited)
{
	struct tenant_pass *p = arg;
	if (p->kind == 0)
		ts_sbuf_printf(p->b, "tsdb_tenant_samples_ingested_total{tenant=\"%s\"} %llu\n",
			       tenant, (unsigned long long)samples);
	else if (p->kind == 1)
		ts_sbuf_printf(p->b, "tsdb_tenant_series_refused_total{tenant=\"%s\"} %llu\n",
			       tenant, (unsigned long long)refused);
	else
		for (int i = 0; i < TS_LIM_N; i++)
			if (limited[i])
				ts_sbuf_printf(p->b,
					       "tsdb_tenant_requests_limited_total{tenant=\"%s\","
					       "limit=\"%s\"} %llu\n",
					       tenant, limit_names[i],
					       (unsigned long long)limited[i]);
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void label_value(struct ts_sbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			ts_sbuf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			ts_sbuf_str(b, "\\n");
		else
			ts_sbuf_printf(b, "%c", *v);
	}
}

/* The HA tracker's families: which one a pass writes. */
struct ha_pass {
	struct ts_sbuf *b;
	int kind; /* 0 elected, 1 last seen, 2 failovers */
};

static void ha_labels(struct ts_sbuf *b, const char *tenant, const char *cluster,
		      const char *replica)
{
	ts_sbuf_str(b, "{");
	if (tenant[0])
		ts_sbuf_printf(b, "tenant=\"%s\",", tenant);
	ts_sbuf_str(b, "cluster=\"");
	label_value(b, cluster);
	if (replica) {
		ts_sbuf_str(b, "\",replica=\"");
		label_value(b, replica);
	}
	ts_sbuf_str(b, "\"}");
}

static void ha_state_row(void *arg, const struct ts_ha_state *st)
{
	struct ha_pass *p = arg;
	static const char *const fam[] = { "tsdb_ha_elected_replica",
					   "tsdb_ha_elected_replica_last_seen_timestamp_seconds",
					   "tsdb_ha_failovers_total" };
	ts_sbuf_str(p->b, fam[p->kind]);
	ha_labels(p->b, st->tenant, st->cluster, p->kind == 2 ? NULL : st->replica);
	if (p->kind == 0)
		ts_sbuf_str(p->b, " 1\n");
	else if (p->kind == 1)
		ts_sbuf_printf(p->b, " %.3f\n", (double)st->last_seen_ms / 1000.0);
	else
		ts_sbuf_printf(p->b, " %llu\n", (unsigned long long)st->failovers);
}

static void ha_drop_row(void *arg, const struct ts_ha_drop *d)
{
	struct ts_sbuf *b = arg;
	ts_sbuf_str(b, "tsdb_ha_samples_dropped_total");
	ha_labels(b, d->tenant, d->cluster, d->replica);
	ts_sbuf_printf(b, " %llu\n", (unsigned long long)d->samples);
}

static void ha_metrics(struct ts_sbuf *b, struct ts_app *app)
{
	if (!app->ha)
		return;
	static const char *const fam[3][3] = {
		{ "tsdb_ha_elected_replica", "gauge", "The replica elected per HA cluster." },
		{ "tsdb_ha_elected_replica_last_seen_timestamp_seconds", "gauge",
		  "When the elected replica last wrote (this server's clock)." },
		{ "tsdb_ha_failovers_total", "counter",
		  "Elections of another replica after the elected one fell silent." },
	};
	for (int k = 0; k < 3; k++) {
		head(b, fam[k][0], fam[k][1], fam[k][2]);
		struct ha_pass p = { b, k };
		ts_ha_each(app->ha, ha_state_row, NULL, &p);
	}
	head(b, "tsdb_ha_samples_dropped_total", "counter",
	     "Samples of HA replicas that were not elected, dropped.");
	ts_ha_each(app->ha, NULL, ha_drop_row, b);
}

static void tenant_metrics(struct ts_sbuf *b, struct ts_app *app)
{
	if (!app->tenant_counts)
		return;
	static const char *const fam[3][2] = {
		{ "tsdb_tenant_samples_ingested_total", "Samples stored, per tenant." },
		{ "tsdb_tenant_series_refused_total", "New series refused by a series limit, per "
						      "tenant." },
		{ "tsdb_tenant_requests_limited_total", "Writes limited, per tenant and limit." },
	};
	for (int k = 0; k < 3; k++) {
		head(b, fam[k][0], "counter", fam[k][1]);
		struct tenant_pass p = { b, k };
		ts_tenant_counts_each(app->tenant_counts, tenant_row, &p);
	}
}

static void h_metrics(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	struct ts_app *app = arg;
	struct ts_sbuf b;
	ts_sbuf_init(&b);

	head(&b, "tsdb_samples_ingested_total", "counter", "Samples stored, by ingest protocol.");
	for (int i = 0; i < TS_PROTO_N; i++)
		ts_sbuf_printf(&b, "tsdb_samples_ingested_total{protocol=\"%s\"} %llu\n",
			       proto_names[i],
			       (unsigned long long)atomic_load(&app->samples_in[i]));
	head(&b, "tsdb_samples_rejected_total", "counter",
	     "Samples (or series, lines) not stored, by reason.");
	for (int i = 0; i < TS_REJ_N; i++)
		ts_sbuf_printf(&b, "tsdb_samples_rejected_total{reason=\"%s\"} %llu\n",
			       reject_names[i], (unsigned long long)atomic_load(&app->rejected[i]));
	/* The HTTP layer refuses bodies, heads and URLs over their limits itself. */
	struct ts_net_stats ls;
	ts_net_stats_get(app->net, &ls);
	head(&b, "tsdb_requests_limited_total", "counter",
	     "Requests refused by a limit: whole, or for series and series_per_metric the new "
	     "series they brought.");
	for (int i = 0; i < TS_LIM_N; i++)
		ts_sbuf_printf(&b, "tsdb_requests_limited_total{limit=\"%s\"} %llu\n",
			       limit_names[i],
			       (unsigned long long)(atomic_load(&app->limited[i]) +
						    (i == TS_LIM_BODY ? ls.limit_body : 0)));
	ts_sbuf_printf(&b, "tsdb_requests_limited_total{limit=\"header_size\"} %llu\n",
		       (unsigned long long)ls.limit_header);
	ts_sbuf_printf(&b, "tsdb_requests_limited_total{limit=\"url_length\"} %llu\n",
		       (unsigned long long)ls.limit_url);
	tenant_metrics(&b, app);
	ha_metrics(&b, app);
	counter_u64(&b, "tsdb_samples_duplicate_total",
		    "Exact resends of stored samples, accepted without storing twice.",
		    atomic_load(&app->duplicates));
	counter_u64(&b, "tsdb_series_created_total", "Series created by ingest.",
		    atomic_load(&app->series_created));
	counter_u64(&b, "tsdb_metadata_received_total", "Metric metadata entries received.",
		    atomic_load(&app->metadata_in));

	struct ts_db_stats st;
	ts_db_stats(app->db, &st);
	gauge_u64(&b, "tsdb_series", "Series known to the database.", st.n_series);
	gauge_u64(&b, "tsdb_head_chunks", "Open (head) chunks.", st.n_head_chunks);
	gauge_u64(&b, "tsdb_head_chunk_bytes", "Bytes allocated to open chunks.", st.head_bytes);
	struct ts_refcache_stats rcs;
	ts_refcache_stats(app->refs, &rcs);
	memory_areas(&b, &st, &rcs);
	gauge_u64(&b, "tsdb_ingest_series_cache_entries",
		  "Series names (line protocol: measurement and tag sets) whose series refs "
		  "the ingest cache holds.",
		  rcs.entries);
	counter_u64(&b, "tsdb_ingest_series_cache_hits_total",
		    "Series appended through a cached ref, without their labels.", rcs.hits);
	counter_u64(&b, "tsdb_ingest_series_cache_misses_total",
		    "Series looked up in the ingest cache and not found.", rcs.misses);
	counter_u64(&b, "tsdb_ingest_series_cache_resets_total",
		    "Times a full shard of the ingest cache that no longer answered was emptied.",
		    rcs.resets);
	counter_u64(&b, "tsdb_ingest_series_cache_skipped_total",
		    "Keys a full shard of the ingest cache did not take because it still answers.",
		    rcs.skipped);
	counter_u64(&b, "tsdb_chunks_flushed_total", "Sealed chunks written to LMDB.",
		    st.n_chunks_flushed);
	counter_u64(&b, "tsdb_checkpoints_total", "Checkpoints completed.", st.n_checkpoints);
	counter_u64(&b, "tsdb_block_cache_hits_total",
		    "Cold block reads answered by the cache of opened blocks.",
		    st.block_cache_hits);
	counter_u64(&b, "tsdb_block_cache_misses_total",
		    "Cold block reads that decompressed the block.", st.block_cache_misses);
	gauge_u64(&b, "tsdb_index_bytes", "Bytes in use in the LMDB index environment.",
		  st.index_bytes);
	gauge_u64(&b, "tsdb_partition_bytes", "Bytes in use in all LMDB partition environments.",
		  st.partitions_bytes);
	gauge_u64(&b, "tsdb_partitions", "Time partitions on disk.", st.n_partitions);
	gauge_u64(&b, "tsdb_partitions_open", "Time partitions whose LMDB environment is open.",
		  st.n_open_partitions);
	counter_u64(&b, "tsdb_flush_failures_total",
		    "Flushes of sealed chunks or checkpoints into LMDB that failed.",
		    st.n_flush_failures);
	head(&b, "tsdb_writes_refused", "gauge",
	     "1 while appends are refused (the WAL failed, or flushes into LMDB fail, e.g. "
	     "disk full), by reason; 0 when writes are accepted.");
	ts_sbuf_printf(&b, "tsdb_writes_refused{reason=\"%s\"} %d\n",
		       st.write_err ? ts_strerror(st.write_err) : "none", st.write_err != 0);
	counter_u64(&b, "tsdb_retention_partitions_removed_total",
		    "Time partitions removed whole by retention.", st.n_parts_removed);
	head(&b, "tsdb_retention_deleted_total", "counter",
	     "Partitions whose raw samples or downsampled rows retention deleted, by resolution.");
	static const char *const res[3] = { "raw", "5m", "1h" };
	for (int k = 0; k < 3; k++)
		ts_sbuf_printf(&b, "tsdb_retention_deleted_total{resolution=\"%s\"} %llu\n", res[k],
			       (unsigned long long)st.n_parts_expired[k]);
	counter_u64(&b, "tsdb_retention_rule_deletions_total",
		    "Deletions of a retention rule's series from a partition its horizon passed.",
		    st.n_rule_deletions);
	gauge_u64(&b, "tsdb_retention_rules", "Retention rules in force (--retention.config).",
		  st.n_retention_rules);
	counter_u64(&b, "tsdb_series_removed_total",
		    "Series that left the index with no sample left (retention).",
		    st.n_series_removed);
	counter_u64(&b, "tsdb_downsample_builds_total",
		    "Partitions whose downsampled tiers were built or rebuilt.", st.n_tier_builds);
	gauge_u64(&b, "tsdb_wal_bytes", "Bytes in write-ahead log segments.", st.wal.bytes_on_disk);
	gauge_u64(&b, "tsdb_wal_segments", "Write-ahead log segments.", st.wal.n_segments);
	counter_u64(&b, "tsdb_wal_fsyncs_total", "WAL fdatasync calls.", st.wal.n_syncs);
	head(&b, "tsdb_wal_fsync_seconds_total", "counter", "Time spent in WAL fdatasync.");
	ts_sbuf_printf(&b, "tsdb_wal_fsync_seconds_total %.9f\n",
		       (double)st.wal.sync_ns_total / 1e9);
	head(&b, "tsdb_wal_fsync_max_seconds", "gauge", "Longest WAL fdatasync since start.");
	ts_sbuf_printf(&b, "tsdb_wal_fsync_max_seconds %.9f\n", (double)st.wal.sync_ns_max / 1e9);

	struct ts_net_stats ns;
	ts_net_stats_get(app->net, &ns);
	gauge_u64(&b, "tsdb_http_connections_open", "Open HTTP connections.", ns.conns_open);
	counter_u64(&b, "tsdb_http_connections_accepted_total", "Accepted HTTP connections.",
		    ns.conns_accepted);
	counter_u64(&b, "tsdb_http_connections_rejected_total",
		    "Connections refused over the connection limit.", ns.conns_rejected);
	counter_u64(&b, "tsdb_http_connections_shed_total",
		    "Idle or slow connections closed at the connection limit to admit a new one.",
		    ns.conns_shed);
	head(&b, "tsdb_http_timeouts_total", "counter",
	     "Connections closed by a timeout, by phase.");
	ts_sbuf_printf(&b, "tsdb_http_timeouts_total{phase=\"header\"} %llu\n",
		       (unsigned long long)ns.timeouts_header);
	ts_sbuf_printf(&b, "tsdb_http_timeouts_total{phase=\"body\"} %llu\n",
		       (unsigned long long)ns.timeouts_body);
	ts_sbuf_printf(&b, "tsdb_http_timeouts_total{phase=\"idle\"} %llu\n",
		       (unsigned long long)ns.timeouts_idle);
	ts_sbuf_printf(&b, "tsdb_http_timeouts_total{phase=\"write\"} %llu\n",
		       (unsigned long long)ns.timeouts_write);
	counter_u64(&b, "tsdb_http_bad_requests_total",
		    "Requests refused by the HTTP layer (framing, limits).", ns.bad_requests);
	counter_u64(&b, "tsdb_http_tls_handshake_failures_total",
		    "HTTPS connections closed by a failed TLS handshake or record.",
		    ns.tls_failures);

	head(&b, "tsdb_http_requests_total", "counter",
	     "HTTP requests by handler and status code.");
	size_t nr = ts_net_route_count(app->net);
	struct ts_net_route_stats *rs = ts_malloc(sizeof *rs);
	for (size_t i = 0; rs && i < nr; i++) {
		if (ts_net_route_stats(app->net, i, rs))
			continue;
		for (int code = 100; code < 600; code++)
			if (rs->by_status[code])
				ts_sbuf_printf(
					&b,
					"tsdb_http_requests_total{handler=\"%s\",code=\"%d\"} %llu\n",
					rs->name[0] ? rs->name : "none", code,
					(unsigned long long)rs->by_status[code]);
	}
	head(&b, "tsdb_http_request_duration_seconds", "histogram",
	     "HTTP request durations by handler.");
	for (size_t i = 0; rs && i < nr; i++) {
		if (ts_net_route_stats(app->net, i, rs) || !rs->count)
			continue;
		const char *h = rs->name[0] ? rs->name : "none";
		uint64_t cum = 0;
		for (int k = 0; k < TS_NET_N_BUCKETS; k++) {
			cum += rs->bucket[k];
			ts_sbuf_printf(
				&b,
				"tsdb_http_request_duration_seconds_bucket{handler=\"%s\",le=\"%g\"} %llu\n",
				h, ts_net_buckets_s[k], (unsigned long long)cum);
		}
		cum += rs->bucket[TS_NET_N_BUCKETS];
		ts_sbuf_printf(
			&b,
			"tsdb_http_request_duration_seconds_bucket{handler=\"%s\",le=\"+Inf\"} %llu\n",
			h, (unsigned long long)cum);
		ts_sbuf_printf(&b, "tsdb_http_request_duration_seconds_sum{handler=\"%s\"} %.6f\n",
			       h, rs->sum_s);
		ts_sbuf_printf(&b,
			       "tsdb_http_request_duration_seconds_count{handler=\"%s\"} %llu\n", h,
			       (unsigned long long)rs->count);
	}
	ts_free(rs);

	head(&b, "process_cpu_seconds_total", "counter", "CPU time of this process.");
	ts_sbuf_printf(&b, "process_cpu_seconds_total %.6f\n", cpu_seconds());
	gauge_u64(&b, "process_resident_memory_bytes", "Resident memory.", (uint64_t)rss_bytes());
	head(&b, "process_start_time_seconds", "gauge", "Start time, seconds since the epoch.");
	ts_sbuf_printf(&b, "process_start_time_seconds %.3f\n", (double)app->start_ms / 1000.0);
	head(&b, "tsdb_build_info", "gauge", "Build information.");
	ts_sbuf_printf(&b, "tsdb_build_info{version=\"%s\"} 1\n", TS_APP_VERSION);

	size_t len;
	char *body = ts_sbuf_take(&b, &len);
	if (!body) {
		ts_net_respond_text(resp, 503, "text/plain", "out of memory\n");
		return;
	}
	ts_net_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ts_net_respond(resp, 200, body, len);
}

static void h_healthy(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	ts_net_respond_text(resp, 200, "text/plain", "tsdbd is Healthy.\n");
}

static void h_ready(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	struct ts_app *app = arg;
	if (!atomic_load(&app->ready)) {
		ts_net_respond_text(resp, 503, "text/plain", "tsdbd is not ready.\n");
		return;
	}
	/* Refusing writes (disk full, a failing store) is not ready: a load balancer or
	 * Prometheus' operator should see it, not only the senders' 503s. */
	int werr = ts_db_writable(app->db);
	if (werr) {
		char msg[160];
		snprintf(msg, sizeof msg, "tsdbd is not ready: writes are refused (%s).\n",
			 ts_strerror(werr));
		ts_net_response_header(resp, "Retry-After", "5");
		ts_net_respond_text(resp, 503, "text/plain", msg);
		return;
	}
	ts_net_respond_text(resp, 200, "text/plain", "tsdbd is Ready.\n");
}

static void h_buildinfo(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	/* No "features" field: Grafana would take us for Mimir (PROTOCOLS.md). */
	char body[512];
	int n = snprintf(body, sizeof body,
			 "{\"status\":\"success\",\"data\":{\"version\":\"%s\",\"revision\":\"%s\","
			 "\"branch\":\"main\",\"buildUser\":\"tsdb\",\"buildDate\":\"%s\","
			 "\"goVersion\":\"none (C11)\"}}",
			 TS_APP_VERSION, "unknown", __DATE__);
	char *p = ts_strndup(body, (size_t)n);
	ts_net_response_header(resp, "Content-Type", "application/json");
	ts_net_respond(resp, p ? 200 : 503, p, p ? (size_t)n : 0);
}

int ts_ops_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "GET", "/metrics", 0, h_metrics, "metrics" },
		{ "GET", "/-/healthy", 0, h_healthy, "healthy" },
		{ "HEAD", "/-/healthy", 0, h_healthy, "healthy" },
		{ "GET", "/-/ready", 0, h_ready, "ready" },
		{ "HEAD", "/-/ready", 0, h_ready, "ready" },
		{ "GET", "/api/v1/status/buildinfo", 0, h_buildinfo, "buildinfo" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
