/*
 * tsdbd - the server. Parses flags, opens the database (recovering it), serves HTTP
 * until SIGTERM/SIGINT, then stops accepting, lets in-flight requests finish, closes the
 * database (final checkpoint) and exits 0.
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure (cannot open data dir, cannot listen),
 * 2 bad command line.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "query/query.h"
#include "server/app.h"
#include "server/extlabels.h"
#include "server/ha.h"
#include "server/retention_file.h"
#include "server/storeapi.h"
#include "wire/params.h"
#include "server/tenant.h"
#include "server/webconfig.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/format.h"

static const char usage[] =
	"Usage: tsdbd [flags]\n"
	"A long-term metrics store: Prometheus remote write/read, InfluxDB line protocol,\n"
	"PromQL over the Prometheus HTTP API. Flags take '--flag value' or '--flag=value'.\n"
	"\n"
	"  --data-dir DIR            data directory (default ./data)\n"
	"  --listen HOST:PORT        listen address (default :9201, all interfaces;\n"
	"                            127.0.0.1:9201 or [::1]:9201 for loopback only)\n"
	"  --sync MODE               WAL durability: always (default; fdatasync before every\n"
	"                            acknowledgement, batched across requests), interval:<ms>\n"
	"                            (power loss may lose that window), never (the OS decides).\n"
	"                            Under every mode kill -9 loses nothing acknowledged.\n"
	"  --retention DUR           keep DUR of data at every resolution: sets the three\n"
	"                            below unless they are given; 0 keeps everything (default)\n"
	"  --retention.raw DUR       raw samples older than DUR are rejected and deleted, once\n"
	"                            their partition's 5m and 1h tiers are built; 0 keeps them\n"
	"  --retention.5m DUR        5-minute downsampled rows older than DUR are deleted\n"
	"  --retention.1h DUR        1-hour downsampled rows older than DUR are deleted; a time\n"
	"                            partition goes once nothing of it is kept. Retention runs\n"
	"                            at start-up and every 30 s.\n"
	"  --retention.config FILE   retention per selector, YAML: '{job=\"debug\"}': 3d, one\n"
	"                            rule per line, the first matching rule sets a series'\n"
	"                            retention at every resolution; reloaded on SIGHUP (an\n"
	"                            invalid file keeps the rules in force)\n"
	"  --out-of-order-window DUR accept samples up to DUR older than a series' newest\n"
	"                            (default 1h; 0 rejects every out-of-order sample)\n"
	"  --max-future DUR          reject samples more than DUR ahead of the clock (default 1h;\n"
	"                            0 disables)\n"
	"  --partition DUR           time partition width for a new data directory (default 1d)\n"
	"  --workers N               request worker threads (default 4)\n"
	"  --max-connections N       open connections (default 1024); at the limit the\n"
	"                            longest-idle or slowest connection makes room, and a\n"
	"                            newcomer gets 503 only when every one is busy\n"
	"  --max-body-bytes N        request body as sent (default 64 MiB)\n"
	"  --max-decoded-bytes N     request body after snappy/gzip decoding (default 32 MiB)\n"
	"  --max-line-bytes N        one line of line protocol or Prometheus text (default\n"
	"                            256 KiB; longer lines get 400)\n"
	"  --max-labels N            labels per series (default 64)\n"
	"  --max-series N            series in the store (default: no limit); a new series\n"
	"                            past it is refused with 400 naming the limit, existing\n"
	"                            series keep taking samples\n"
	"  --max-series-per-metric N series per metric name, likewise (default: no limit)\n"
	"  --max-label-name-length N bytes (default 256)\n"
	"  --max-label-value-length N bytes (default 4096)\n"
	"  --query.timeout DUR       longest a query may run; a request's timeout parameter\n"
	"                            can only lower it (default 2m; past it: 503 timeout)\n"
	"  --query.max-samples N     samples a query may hold at once (default 50000000;\n"
	"                            past it: 422 execution, as Prometheus)\n"
	"  --query.max-series N      series one selector of a query may select (default: no\n"
	"                            limit; past it: 422 execution naming the limit)\n"
	"  --query.max-threads N     cores one query may use when it reads many series\n"
	"                            (default: all, at most 4; 1: one core per query)\n"
	"  --header-timeout DUR      whole request head must arrive within DUR (default 10s)\n"
	"  --body-timeout DUR        longest pause while a body arrives (default 30s)\n"
	"  --idle-timeout DUR        keep-alive connection idle limit (default 60s)\n"
	"  --log-level LEVEL         debug, info (default), warn, error\n"
	"  --web.config.file FILE    TLS and basic auth, Prometheus' web.yml format\n"
	"                            (tls_server_config, http_server_config.headers,\n"
	"                            basic_auth_users with bcrypt hashes); reloaded on SIGHUP\n"
	"                            and when the file or its certificates change (an invalid\n"
	"                            file keeps the config in force)\n"
	"  --tenant-header NAME      turns tenants on: every write and read is in the tenant\n"
	"                            this header names (e.g. X-Scope-OrgID); a tenant sees\n"
	"                            only its own series on every endpoint\n"
	"  --default-tenant NAME     the tenant of requests without the header (default\n"
	"                            \"default\"; it holds the data written before tenants)\n"
	"  --tenant.max-series N     series per tenant (default: no limit); past it, as\n"
	"                            --max-series\n"
	"  --tenant.max-samples-per-second N  ingestion rate per tenant (all writes when\n"
	"                            tenants are off), burst of one second's worth; past it:\n"
	"                            429 with Retry-After, nothing of the request stored\n"
	"  --tenant.max-new-series-per-minute N  new series per tenant and minute, burst of a\n"
	"                            minute's worth; past it the new series are refused with\n"
	"                            429 and Retry-After, the rest of the request is stored\n"
	"  --web.enable-admin-api    serve /api/v1/admin/tsdb/delete_series, clean_tombstones\n"
	"                            and snapshot (off: they answer 404; takes no value)\n"
	"  --grpc-listen HOST:PORT   serve the Thanos StoreAPI (Info, Series, LabelNames,\n"
	"                            LabelValues) over gRPC there, for Thanos Query's\n"
	"                            --endpoint (default: off; plain text, no auth)\n"
	"  --external-label NAME=VALUE  a label added to every series the StoreAPI and\n"
	"                            remote read return (repeatable), e.g. shard=\"a\" or\n"
	"                            replica=\"1\"; it replaces a stored label of that name\n"
	"  --ha.cluster-label NAME   with --ha.replica-label, turns on the HA tracker for\n"
	"                            Prometheus HA pairs: per value of this label (and\n"
	"                            tenant) one replica is elected and stored, without its\n"
	"                            replica label; the others' samples are answered 202 and\n"
	"                            dropped (e.g. cluster)\n"
	"  --ha.replica-label NAME   the label telling the replicas apart (e.g. replica,\n"
	"                            __replica__)\n"
	"  --ha.failover-timeout DUR another replica is elected once the elected one has\n"
	"                            sent nothing for DUR (default 30s)\n"
	"  --query.replica-label NAME  series that differ only in this label are merged at\n"
	"                            query time, one replica at a time (Thanos Query's\n"
	"                            deduplication; repeatable; the dedup=false parameter\n"
	"                            turns it off per query)\n"
	"  --help                    this text\n"
	"\n"
	"Durations: 500ms, 30s, 5m, 1h30m, 15d, 2w, 1y, or plain seconds.\n";

struct flags {
	const char *data_dir, *listen, *sync, *log_level, *retention_config, *web_config;
	const char *tenant_header, *default_tenant, *grpc_listen;
	const char *ha_cluster, *ha_replica;
	struct ts_label *ext; /* --external-label, sorted by name */
	size_t n_ext;
	const char **replica; /* --query.replica-label */
	size_t n_replica;
	int64_t retention_ms, ooo_ms, future_ms, partition_ms;
	int64_t ret_raw_ms, ret_5m_ms, ret_1h_ms; /* -1: not given */
	int64_t header_ms, body_ms, idle_ms, query_timeout_ms, ha_failover_ms;
	unsigned long long workers, max_conns, max_labels, max_name, max_value;
	unsigned long long max_body, max_decoded, max_line;
	unsigned long long max_series, max_series_metric, query_max_samples, query_max_series;
	unsigned long long query_max_threads;
	unsigned long long tenant_max_series, tenant_rate, tenant_new_series;
	int admin_api; /* --web.enable-admin-api */
};

#define F(field) offsetof(struct flags, field)
/* Flags taking text, kept as given. */
static const struct {
	const char *name;
	size_t off;
} text_flags[] = {
	{ "--data-dir", F(data_dir) },
	{ "--listen", F(listen) },
	{ "--sync", F(sync) },
	{ "--log-level", F(log_level) },
	{ "--retention.config", F(retention_config) },
	{ "--web.config.file", F(web_config) },
	{ "--tenant-header", F(tenant_header) },
	{ "--default-tenant", F(default_tenant) },
	{ "--grpc-listen", F(grpc_listen) },
	{ "--ha.cluster-label", F(ha_cluster) },
	{ "--ha.replica-label", F(ha_replica) },
};
/* Flags taking a duration, and the least each accepts. */
static const struct {
	const char *name;
	int64_t min_ms;
	size_t off;
} duration_flags[] = {
	{ "--retention", 0, F(retention_ms) },
	{ "--retention.raw", 0, F(ret_raw_ms) },
	{ "--retention.5m", 0, F(ret_5m_ms) },
	{ "--retention.1h", 0, F(ret_1h_ms) },
	{ "--out-of-order-window", 0, F(ooo_ms) },
	{ "--max-future", 0, F(future_ms) },
	{ "--partition", 60000, F(partition_ms) },
	{ "--header-timeout", 1, F(header_ms) },
	{ "--body-timeout", 1, F(body_ms) },
	{ "--query.timeout", 1, F(query_timeout_ms) },
	{ "--idle-timeout", 1, F(idle_ms) },
	{ "--ha.failover-timeout", 1, F(ha_failover_ms) },
};
/* Flags taking a count from 1 to max. */
static const struct {
	const char *name;
	unsigned long long max;
	size_t off;
} count_flags[] = {
	{ "--workers", 256, F(workers) },
	{ "--max-connections", 1000000, F(max_conns) },
	{ "--max-labels", 1024, F(max_labels) },
	{ "--max-label-name-length", 256, F(max_name) },
	{ "--max-label-value-length", 1u << 20, F(max_value) },
	{ "--max-body-bytes", 1ull << 32, F(max_body) },
	{ "--max-line-bytes", 1ull << 30, F(max_line) },
	{ "--max-decoded-bytes", 1ull << 32, F(max_decoded) },
	{ "--max-series", 1ull << 40, F(max_series) },
	{ "--max-series-per-metric", 1ull << 40, F(max_series_metric) },
	{ "--query.max-samples", 1ull << 40, F(query_max_samples) },
	{ "--query.max-series", 1ull << 40, F(query_max_series) },
	{ "--query.max-threads", 64, F(query_max_threads) },
	{ "--tenant.max-series", 1ull << 40, F(tenant_max_series) },
	{ "--tenant.max-samples-per-second", 1ull << 40, F(tenant_rate) },
	{ "--tenant.max-new-series-per-minute", 1ull << 31, F(tenant_new_series) },
};
#undef F
#define N_OF(a) (sizeof a / sizeof *a)

static int bad(const char *flag, const char *value)
{
	fprintf(stderr, "tsdbd: invalid value \"%s\" for %s (see --help)\n", value, flag);
	return 2;
}

static int parse_count(const char *flag, const char *v, unsigned long long max,
		       unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || end == v || v[0] == '-' || x == 0 || x > max)
		return bad(flag, v);
	*out = x;
	return 0;
}

/* Sets flag `name` to `val`: 0, 2 (bad value, said on stderr) or -1 (no such flag). */
static int set_flag(struct flags *f, const char *name, const char *val)
{
	char *base = (char *)f;
	for (size_t k = 0; k < N_OF(text_flags); k++)
		if (!strcmp(name, text_flags[k].name)) {
			*(const char **)(void *)(base + text_flags[k].off) = val;
			return 0;
		}
	for (size_t k = 0; k < N_OF(duration_flags); k++)
		if (!strcmp(name, duration_flags[k].name)) {
			int64_t *ms = (int64_t *)(void *)(base + duration_flags[k].off);
			return ts_parse_duration_ms(val, ms) || *ms < duration_flags[k].min_ms
				       ? bad(name, val)
				       : 0;
		}
	for (size_t k = 0; k < N_OF(count_flags); k++)
		if (!strcmp(name, count_flags[k].name))
			return parse_count(
				name, val, count_flags[k].max,
				(unsigned long long *)(void *)(base + count_flags[k].off));
	return -1;
}

static int parse_flags(int argc, char **argv, struct flags *f)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			exit(0);
		}
		/* Prometheus' boolean flag: bare, or =true / =false. */
		if (!strcmp(a, "--web.enable-admin-api") ||
		    !strcmp(a, "--web.enable-admin-api=true")) {
			f->admin_api = 1;
			continue;
		}
		if (!strcmp(a, "--web.enable-admin-api=false")) {
			f->admin_api = 0;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "tsdbd: unexpected argument \"%s\" (see --help)\n", a);
			return 2;
		}
		char name[64];
		const char *val;
		const char *eq = strchr(a, '=');
		if (eq) {
			size_t n = (size_t)(eq - a);
			if (n >= sizeof name)
				return bad("flag", a);
			memcpy(name, a, n);
			name[n] = 0;
			val = eq + 1;
		} else {
			snprintf(name, sizeof name, "%s", a);
			if (i + 1 >= argc) {
				fprintf(stderr, "tsdbd: %s needs a value (see --help)\n", a);
				return 2;
			}
			val = argv[++i];
		}
		if (!strcmp(name, "--query.replica-label")) {
			if (!ts_ext_valid_name(val))
				return bad(name, val);
			const char **r = ts_realloc(f->replica, (f->n_replica + 1) * sizeof *r);
			if (!r) {
				fprintf(stderr, "tsdbd: out of memory\n");
				return 1;
			}
			f->replica = r;
			f->replica[f->n_replica++] = val;
			continue;
		}
		if (!strcmp(name, "--external-label")) {
			char msg[300];
			int erc = ts_ext_parse(val, &f->ext, &f->n_ext, msg, sizeof msg);
			if (erc == -ENOMEM) {
				fprintf(stderr, "tsdbd: out of memory\n");
				return 1;
			}
			if (erc) {
				fprintf(stderr, "tsdbd: --external-label: %s\n", msg);
				return 2;
			}
			continue;
		}
		int rc = set_flag(f, name, val);
		if (rc < 0) {
			fprintf(stderr, "tsdbd: unknown flag %s (see --help)\n", name);
			return 2;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_sync(const char *s, struct ts_db_opts *o)
{
	if (!strcmp(s, "always")) {
		o->sync = TS_WAL_SYNC_ALWAYS;
		return 0;
	}
	if (!strcmp(s, "never")) {
		o->sync = TS_WAL_SYNC_NEVER;
		return 0;
	}
	if (!strncmp(s, "interval:", 9)) {
		int64_t ms;
		/* interval:<ms> per DESIGN.md; a duration with a unit works as well. */
		char *end;
		long long n = strtoll(s + 9, &end, 10);
		if (*end == 0 && end != s + 9 && n > 0 && n <= 3600000)
			ms = n;
		else if (ts_parse_duration_ms(s + 9, &ms) || ms <= 0 || ms > 3600000)
			return -1;
		o->sync = TS_WAL_SYNC_INTERVAL;
		o->sync_interval_ms = (uint32_t)ms;
		return 0;
	}
	return -1;
}

/* Thanos compactor's flags: a resolution's retention is --retention.<res> if given,
 * else --retention; 0 keeps for good (for a tier that is TS_RETENTION_FOREVER, since 0
 * there means "as raw"). */
static int64_t retention_of(int64_t given, int64_t all, int tier)
{
	int64_t r = given >= 0 ? given : all;
	return tier && r == 0 ? TS_RETENTION_FOREVER : r;
}

/* SIGHUP: the retention rules file again; an invalid one keeps the rules in force. */
struct reload {
	struct ts_app *app;
	const char *path;     /* --retention.config */
	const char *web_path; /* --web.config.file */
	/* what the web config and its files looked like at the last (re)load */
	char sig[512];
};

/* A fingerprint of the web config file and the files it names (size, mtime, inode):
 * a change of any, such as a renewed certificate, reloads it. */
static void web_signature(const char *path, const struct ts_web_config *c, char *out, size_t cap)
{
	const char *files[4] = { path, c ? c->cert_file : NULL, c ? c->key_file : NULL,
				 c ? c->client_ca_file : NULL };
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < 4 && n < cap; i++) {
		struct stat st;
		if (!files[i] || !*files[i])
			continue;
		if (stat(files[i], &st) != 0)
			memset(&st, 0, sizeof st);
		n += (size_t)snprintf(out + n, cap - n, "%lld.%ld:%lld:%llu;",
				      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
				      (long long)st.st_size, (unsigned long long)st.st_ino);
	}
}

/* Loads the web config file and puts it in force; an invalid one keeps the old. */
static int reload_web(struct reload *r, int at_start)
{
	struct ts_web_config c;
	char msg[700] = "";
	int rc = ts_web_config_load(r->web_path, &c, msg, sizeof msg);
	char sig[512];
	web_signature(r->web_path, rc == 0 ? &c : NULL, sig, sizeof sig);
	if (rc == 0) {
		rc = ts_net_set_web(r->app->net, &c, msg, sizeof msg);
		ts_web_config_fini(&c);
	}
	/* Remembered even when invalid, so a broken file is reported once, not every tick. */
	memcpy(r->sig, sig, sizeof sig);
	if (rc) {
		if (at_start)
			fprintf(stderr, "tsdbd: --web.config.file: %s\n",
				msg[0] ? msg : ts_strerror(rc));
		else
			ts_log(TS_LOG_ERROR, "web config not reloaded, the one in force stays: %s",
			       msg[0] ? msg : ts_strerror(rc));
		return rc;
	}
	if (!at_start)
		ts_log(TS_LOG_INFO, "web config reloaded from %s", r->web_path);
	return 0;
}

/* Every 2 s on the loop: reload the web config when it or its files changed. */
static void watch_web(void *arg)
{
	struct reload *r = arg;
	struct ts_web_config c;
	char msg[64], sig[512];
	/* The names inside the file matter too: parse it (cheap) to stat its files. */
	int rc = ts_web_config_load(r->web_path, &c, msg, sizeof msg);
	web_signature(r->web_path, rc == 0 ? &c : NULL, sig, sizeof sig);
	if (rc == 0)
		ts_web_config_fini(&c);
	if (strcmp(sig, r->sig) != 0)
		reload_web(r, 0);
}

static void reload_retention(struct reload *r);

/* SIGHUP: every file that can be reloaded. */
static void on_sighup(void *arg)
{
	struct reload *r = arg;
	if (r->web_path)
		reload_web(r, 0);
	if (r->path)
		reload_retention(r);
}

static void reload_retention(struct reload *r)
{
	if (!atomic_load(&r->app->ready))
		return; /* still opening: the file is read at open */
	struct ts_retention_file rf;
	char msg[600] = "";
	int rc = ts_retention_file_load(r->path, &rf, msg, sizeof msg);
	if (rc == 0)
		rc = ts_db_set_retention_rules(r->app->db, rf.rules, rf.n, msg, sizeof msg);
	if (rc)
		ts_log(TS_LOG_ERROR, "retention rules not reloaded, the old ones stay: %s",
		       msg[0] ? msg : ts_strerror(rc));
	else
		ts_log(TS_LOG_INFO, "retention rules reloaded from %s: %zu rules", r->path, rf.n);
	ts_retention_file_fini(&rf);
}

/* Prometheus' model.Duration.String() of ms: "15d", "1h30m", "0s". */
static void fmt_duration(char *buf, size_t cap, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} u[] = { { "y", 365LL * 86400000 },
		  { "w", 7LL * 86400000 },
		  { "d", 86400000 },
		  { "h", 3600000 },
		  { "m", 60000 },
		  { "s", 1000 },
		  { "ms", 1 } };
	size_t n = 0;
	buf[0] = 0;
	if (ms <= 0 || ms >= TS_RETENTION_FOREVER) {
		snprintf(buf, cap, "0s");
		return;
	}
	for (size_t i = 0; i < N_OF(u) && n < cap; i++) {
		/* Years and weeks only when exact, as Prometheus prints them. */
		if (i < 2 && ms % u[i].mult)
			continue;
		if (ms >= u[i].mult) {
			n += (size_t)snprintf(buf + n, cap - n, "%lld%s",
					      (long long)(ms / u[i].mult), u[i].unit);
			ms %= u[i].mult;
		}
	}
}

/* The value in force of count flag `name` when it was not given (0). */
static unsigned long long count_default(const char *name, const struct ts_app *app,
					const struct ts_net_config *nc)
{
	static const char *const names[] = { "--workers",
					     "--max-connections",
					     "--max-labels",
					     "--max-label-name-length",
					     "--max-label-value-length",
					     "--max-body-bytes",
					     "--max-line-bytes",
					     "--max-decoded-bytes",
					     "--query.max-samples" };
	const unsigned long long v[] = { nc->n_workers,
					 nc->max_conns,
					 app->lim.max_labels,
					 app->lim.max_name_len,
					 app->lim.max_value_len,
					 nc->limits.max_body_bytes,
					 app->lim.max_line_bytes,
					 app->lim.max_decoded_bytes,
					 TS_QUERY_DEFAULT_MAX_SAMPLES };
	for (size_t i = 0; i < N_OF(names); i++)
		if (!strcmp(name, names[i]))
			return v[i];
	return 0; /* the limits without a default: none */
}

/* Every flag and its value in force, for /api/v1/status/flags; NULL on out of memory.
 * Strings are allocated once and live as long as the process. */
static struct ts_app_flag *flags_in_force(const struct flags *f, const struct ts_app *app,
					  const struct ts_net_config *nc,
					  const struct ts_db_opts *dbo, size_t *n)
{
	size_t cap = N_OF(text_flags) + N_OF(duration_flags) + N_OF(count_flags) + 3;
	struct ts_app_flag *out = ts_calloc(cap, sizeof *out);
	if (!out)
		return NULL;
	const char *base = (const char *)f;
	char v[64];
	*n = 0;
	for (size_t k = 0; k < N_OF(text_flags); k++) {
		const char *s = *(const char *const *)(const void *)(base + text_flags[k].off);
		if (!strcmp(text_flags[k].name, "--log-level") && !s)
			s = getenv("TS_LOG_LEVEL") ? getenv("TS_LOG_LEVEL") : "info"; /* log.h */
		out[(*n)++] = (struct ts_app_flag){ text_flags[k].name + 2, ts_strdup(s ? s : "") };
	}
	for (size_t k = 0; k < N_OF(duration_flags); k++) {
		const char *name = duration_flags[k].name;
		int64_t ms = *(const int64_t *)(const void *)(base + duration_flags[k].off);
		if (!strcmp(name, "--retention.raw"))
			ms = dbo->retention_ms;
		else if (!strcmp(name, "--retention.5m"))
			ms = dbo->retention_5m_ms;
		else if (!strcmp(name, "--retention.1h"))
			ms = dbo->retention_1h_ms;
		else if (!strcmp(name, "--header-timeout"))
			ms = (int64_t)nc->header_timeout_ms;
		else if (!strcmp(name, "--body-timeout"))
			ms = (int64_t)nc->body_timeout_ms;
		else if (!strcmp(name, "--idle-timeout"))
			ms = (int64_t)nc->idle_timeout_ms;
		else if (!strcmp(name, "--query.timeout") && ms == 0)
			ms = TS_QUERY_DEFAULT_TIMEOUT_MS;
		fmt_duration(v, sizeof v, ms);
		out[(*n)++] = (struct ts_app_flag){ name + 2, ts_strdup(v) };
	}
	for (size_t k = 0; k < N_OF(count_flags); k++) {
		unsigned long long x = *(
			const unsigned long long *)(const void *)(base + count_flags[k].off);
		if (x == 0)
			x = count_default(count_flags[k].name, app, nc);
		snprintf(v, sizeof v, "%llu", x);
		out[(*n)++] = (struct ts_app_flag){ count_flags[k].name + 2, ts_strdup(v) };
	}
	out[(*n)++] = (struct ts_app_flag){ "web.enable-admin-api",
					    ts_strdup(f->admin_api ? "true" : "false") };
	/* Repeatable: NAME=VALUE pairs joined by commas, as Prometheus shows a list. */
	size_t len = 1;
	for (size_t i = 0; i < f->n_ext; i++)
		len += f->ext[i].name_len + f->ext[i].value_len + 2;
	char *ext = ts_malloc(len);
	if (ext) {
		size_t o = 0;
		for (size_t i = 0; i < f->n_ext; i++)
			o += (size_t)snprintf(ext + o, len - o, "%s%.*s=%.*s", i ? "," : "",
					      (int)f->ext[i].name_len, f->ext[i].name,
					      (int)f->ext[i].value_len, f->ext[i].value);
		ext[o] = 0;
	}
	out[(*n)++] = (struct ts_app_flag){ "external-label", ext };
	len = 1;
	for (size_t i = 0; i < f->n_replica; i++)
		len += strlen(f->replica[i]) + 1;
	char *rl = ts_malloc(len);
	if (rl) {
		rl[0] = 0;
		for (size_t i = 0; i < f->n_replica; i++) {
			if (i)
				strcat(rl, ",");
			strcat(rl, f->replica[i]);
		}
	}
	out[(*n)++] = (struct ts_app_flag){ "query.replica-label", rl };
	for (size_t i = 0; i < *n; i++)
		if (!out[i].value)
			return NULL; /* out of memory at start-up: the caller exits */
	return out;
}

int main(int argc, char **argv)
{
	struct flags f = { .data_dir = "./data",
			   .listen = ":9201",
			   .sync = "always",
			   .ooo_ms = 3600000,
			   .future_ms = 3600000,
			   .partition_ms = TS_FORMAT_PARTITION_MS_DEFAULT,
			   .ret_raw_ms = -1,
			   .ret_5m_ms = -1,
			   .ret_1h_ms = -1,
			   .ha_failover_ms = 30000 };
	/* A fixed mmap threshold: allocations of 1 MiB and more (a query's arrays and
	 * answer, a flush's batch) are mapped and unmapped whole. glibc otherwise raises
	 * the threshold to the largest block freed, after which such buffers come from the
	 * heaps, where the small long-lived allocations made meanwhile (series, open
	 * chunks, cached blocks) pin their pages: at 100k series the queries right after
	 * an ingest left 100 MB of free heap resident (RSS 222 MB against 139 MB with the
	 * threshold fixed). Fixing it also fixes the trim threshold, at 128 KiB by
	 * default: the heaps then gave back and faulted in again their top pages between
	 * queries (3 % slower over the benchmark's queries, interleaved A/B); at 2 MiB
	 * that cost is gone (0.995) and the memory figures stay. Before any thread starts,
	 * as mallopt wants. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	int rc = parse_flags(argc, argv, &f);
	if (rc)
		return rc;
	if (f.log_level) {
		if (!strcmp(f.log_level, "debug"))
			ts_log_set_level(TS_LOG_DEBUG);
		else if (!strcmp(f.log_level, "info"))
			ts_log_set_level(TS_LOG_INFO);
		else if (!strcmp(f.log_level, "warn"))
			ts_log_set_level(TS_LOG_WARN);
		else if (!strcmp(f.log_level, "error"))
			ts_log_set_level(TS_LOG_ERROR);
		else
			return bad("--log-level", f.log_level);
	}
	struct ts_db_opts dbo = {
		.ooo_window_ms = f.ooo_ms,
		.max_future_ms = f.future_ms,
		.retention_ms = retention_of(f.ret_raw_ms, f.retention_ms, 0),
		.retention_5m_ms = retention_of(f.ret_5m_ms, f.retention_ms, 1),
		.retention_1h_ms = retention_of(f.ret_1h_ms, f.retention_ms, 1),
		.partition_ms = f.partition_ms,
		.max_labels = (uint32_t)f.max_labels,
		.max_label_name_len = (uint32_t)f.max_name,
		.max_label_value_len = (uint32_t)f.max_value,
		.max_series = f.max_series,
		.max_series_per_metric = f.max_series_metric,
		.max_series_per_hidden = f.tenant_header ? f.tenant_max_series : 0,
		.new_series_per_minute_per_hidden = f.tenant_header ? (uint32_t)f.tenant_new_series
								    : 0,
		.hidden_label = f.tenant_header ? TS_TENANT_LABEL : NULL
	};
	if (parse_sync(f.sync, &dbo))
		return bad("--sync", f.sync);
	if (!f.default_tenant)
		f.default_tenant = "default";
	if (!ts_tenant_valid(f.default_tenant, strlen(f.default_tenant)))
		return bad("--default-tenant", f.default_tenant);
	if (f.tenant_header &&
	    (!*f.tenant_header ||
	     strspn(f.tenant_header, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789!#$%&'*+-.^_`|~") != strlen(f.tenant_header)))
		return bad("--tenant-header", f.tenant_header); /* not an HTTP token */
	if (!f.ha_cluster != !f.ha_replica) {
		fprintf(stderr, "tsdbd: --ha.cluster-label and --ha.replica-label go together\n");
		return 2;
	}
	if (f.ha_cluster && (!ts_ext_valid_name(f.ha_cluster) || !ts_ext_valid_name(f.ha_replica) ||
			     !strcmp(f.ha_cluster, f.ha_replica)))
		return bad(ts_ext_valid_name(f.ha_cluster) ? "--ha.replica-label"
							   : "--ha.cluster-label",
			   ts_ext_valid_name(f.ha_cluster) ? f.ha_replica : f.ha_cluster);
	struct ts_retention_file rf = { 0 };
	if (f.retention_config) {
		char msg[600] = "";
		if (ts_retention_file_load(f.retention_config, &rf, msg, sizeof msg)) {
			fprintf(stderr, "tsdbd: --retention.config: %s\n", msg);
			return 2;
		}
		dbo.retention_rules = rf.rules;
		dbo.n_retention_rules = rf.n;
	}
	signal(SIGPIPE, SIG_IGN);

	struct ts_app app;
	memset(&app, 0, sizeof app);
	pthread_mutex_init(&app.pool_mu, NULL);
	app.data_dir = f.data_dir;
	app.ext_labels = f.ext;
	app.n_ext_labels = f.n_ext;
	app.replica_labels = f.replica;
	app.n_replica_labels = f.n_replica;
	app.lim.max_decoded_bytes = f.max_decoded ? (size_t)f.max_decoded : 32u << 20;
	app.lim.max_labels = f.max_labels ? (uint32_t)f.max_labels : 64;
	app.lim.max_name_len = f.max_name ? (uint32_t)f.max_name : 256;
	app.lim.max_value_len = f.max_value ? (uint32_t)f.max_value : 4096;
	app.lim.max_line_bytes = f.max_line ? (size_t)f.max_line : 256u << 10;
	app.tenant_header = f.tenant_header;
	if (f.tenant_header && ts_tenant_counts_new(&app.tenant_counts)) {
		fprintf(stderr, "tsdbd: out of memory\n");
		return 1;
	}
	if (f.tenant_rate && ts_tenant_rates_new((double)f.tenant_rate, &app.rates)) {
		fprintf(stderr, "tsdbd: out of memory\n");
		return 1;
	}
	app.default_tenant = f.default_tenant;
	ts_query_set_max_threads((unsigned)f.query_max_threads);
	app.qlim = (struct ts_app_query_limits){ .timeout_ms = f.query_timeout_ms,
						 .max_samples = f.query_max_samples,
						 .max_series = f.query_max_series };
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	app.start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

	struct ts_net_config nc;
	ts_net_config_default(&nc);
	nc.listen = f.listen;
	if (f.workers)
		nc.n_workers = (unsigned)f.workers;
	if (f.max_conns)
		nc.max_conns = (unsigned)f.max_conns;
	if (f.header_ms)
		nc.header_timeout_ms = (uint64_t)f.header_ms;
	if (f.body_ms)
		nc.body_timeout_ms = (uint64_t)f.body_ms;
	if (f.idle_ms)
		nc.idle_timeout_ms = (uint64_t)f.idle_ms;
	nc.limits.max_body_bytes = f.max_body ? (uint64_t)f.max_body : 64u << 20;

	struct ts_app_flag *in_force = flags_in_force(&f, &app, &nc, &dbo, &app.n_flags);
	if (!in_force) {
		fprintf(stderr, "tsdbd: out of memory\n");
		return 1;
	}
	app.flags = in_force;

	/* Listen first so a port conflict is reported before a long recovery. */
	rc = ts_net_open(&app.net, &nc);
	if (rc) {
		ts_log(TS_LOG_ERROR, "cannot listen on %s: %s", f.listen, ts_strerror(rc));
		return 1;
	}
	static struct reload rl; /* the loop's callbacks use it until the end */
	rl = (struct reload){ .app = &app, .path = f.retention_config, .web_path = f.web_config };
	if (f.web_config && reload_web(&rl, 1)) {
		ts_net_close(app.net);
		return 2;
	}
	rc = ts_net_handle_signals(app.net);
	if (rc == 0 && (f.retention_config || f.web_config))
		rc = ts_net_on_sighup(app.net, on_sighup, &rl);
	if (rc == 0 && f.web_config)
		rc = ts_net_every(app.net, 2000, watch_web, &rl);
	if (rc == 0)
		rc = ts_ops_routes(&app);
	if (rc == 0)
		rc = ts_ingest_routes(&app);
	if (rc == 0)
		rc = ts_query_routes(&app);
	if (rc == 0)
		rc = ts_status_routes(&app);
	if (rc == 0)
		rc = ts_ui_routes(&app);
	if (rc == 0 && f.admin_api)
		rc = ts_admin_routes(&app);
	if (rc) {
		ts_log(TS_LOG_ERROR, "cannot set up the server: %s", ts_strerror(rc));
		ts_net_close(app.net);
		return 1;
	}
	rc = ts_db_open(f.data_dir, &dbo, &app.db);
	ts_retention_file_fini(&rf); /* the engine copied the rules */
	if (rc) {
		ts_log(TS_LOG_ERROR, "cannot open data directory %s: %s", f.data_dir,
		       ts_strerror(rc));
		ts_net_close(app.net);
		return 1;
	}
	if (f.ha_cluster) {
		struct ts_ha_config hc = { f.ha_cluster, f.ha_replica, f.ha_failover_ms,
					   f.data_dir };
		if (ts_ha_open(&hc, &app.ha)) {
			ts_log(TS_LOG_ERROR, "out of memory");
			ts_db_close(app.db);
			ts_net_close(app.net);
			return 1;
		}
	}
	struct ts_grpc_server *grpc = NULL;
	if (f.grpc_listen) {
		char msg[300] = "";
		int port = 0;
		rc = ts_storeapi_start(&app, f.grpc_listen, nc.n_workers, &grpc, &port, msg,
				       sizeof msg);
		if (rc) {
			ts_log(TS_LOG_ERROR, "--grpc-listen: %s", msg[0] ? msg : ts_strerror(rc));
			ts_db_close(app.db);
			ts_net_close(app.net);
			return 1;
		}
		ts_log(TS_LOG_INFO, "StoreAPI (gRPC) on %s, grpc port %d", f.grpc_listen, port);
	}
	atomic_store(&app.ready, 1);
	ts_log(TS_LOG_INFO, "tsdbd %s listening on %s (port %d), data in %s, sync=%s",
	       TS_APP_VERSION, f.listen, ts_net_port(app.net), f.data_dir, f.sync);
	rc = ts_net_run(app.net);
	atomic_store(&app.ready, 0);
	ts_grpc_stop(grpc);
	ts_log(TS_LOG_INFO, "shutting down: closing the database");
	int crc = ts_db_close(app.db);
	ts_net_close(app.net);
	ts_ingest_fini(&app);
	ts_tenant_rates_free(app.rates);
	ts_tenant_counts_free(app.tenant_counts);
	pthread_mutex_destroy(&app.pool_mu);
	for (size_t i = 0; i < app.n_flags; i++)
		ts_free((char *)in_force[i].value);
	ts_free(in_force);
	ts_free(f.ext);
	ts_free(f.replica);
	ts_ha_close(app.ha);
	if (crc) {
		ts_log(TS_LOG_ERROR, "closing the database: %s", ts_strerror(crc));
		return 1;
	}
	ts_log(TS_LOG_INFO, "stopped cleanly");
	return rc ? 1 : 0;
}
