/*
 * ha.h - the HA tracker (--ha.cluster-label, --ha.replica-label, --ha.failover-timeout):
 * Prometheus HA pairs write one copy. Cortex/Mimir semantics: per cluster (and tenant)
 * one replica is elected; the elected replica's series are stored with the replica
 * label removed, the other replicas' samples are dropped (answered 2xx, counted). When
 * the elected replica has sent nothing for the failover timeout (by this server's clock,
 * so the replicas' clocks do not matter), the next replica that writes is elected.
 *
 * Series without the cluster label, or without the replica label, pass unchanged.
 * Series kept by the tracker are appended in order only (TS_APPEND_IN_ORDER): after a
 * failover the new replica's backlog older than what the old one wrote is refused as
 * out of order, so no series ever holds both replicas' samples interleaved.
 *
 * The elections are kept in <data-dir>/ha-tracker.state, rewritten (atomically) on each
 * change, so they survive a restart; after a restart the elected replica has a whole
 * timeout to write again before another is elected.
 *
 * Threading: every call may come from any thread (one mutex inside).
 */
#ifndef TS_SERVER_HA_H
#define TS_SERVER_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

#define TS_HA_STATE_FILE "ha-tracker.state"

struct ts_ha;

struct ts_ha_config {
	const char *cluster_label; /* borrowed for the tracker's life */
	const char *replica_label;
	int64_t failover_ms; /* > 0 */
	const char *dir;     /* where the state file lives (the data directory) */
};

/* Opens a tracker, loading the elections of an earlier run (a state file that cannot be
 * read is logged and ignored: elections start afresh). Returns 0, -ENOMEM. */
int ts_ha_open(const struct ts_ha_config *c, struct ts_ha **out);
/* Frees the tracker. Accepts NULL. */
void ts_ha_close(struct ts_ha *h);

/*
 * Whether replica may write for cluster (of tenant: "" without tenants) at now_ms
 * (this server's clock): 1 elected (now, or already), 0 not (drop its samples). Strings
 * are borrowed, not NUL-terminated. -ENOMEM.
 */
int ts_ha_decide(struct ts_ha *h, const char *tenant, const char *cluster, size_t cluster_len,
		 const char *replica, size_t replica_len, int64_t now_ms);

/* Scratch of ts_ha_filter, reused across requests; zero-initialise. */
struct ts_ha_batch {
	struct ts_series_in *in;
	size_t cap_in;
	uint32_t *flags;
	size_t cap_flags;
	struct ts_label *lab;
	size_t cap_lab;
};
void ts_ha_batch_fini(struct ts_ha_batch *b);

/*
 * Applies the tracker to in[0..n) (borrowed; labels must stay valid while *out is
 * used): *out / *n_out the series to append (the elected replicas' without the replica
 * label, the rest unchanged) with *flags for ts_db_append_flags; *dropped the samples
 * of replicas not elected (also counted in the tracker). With h NULL, *out = in.
 * Returns 0 or -ENOMEM.
 */
int ts_ha_filter(struct ts_ha *h, const char *tenant, const struct ts_series_in *in, size_t n,
		 struct ts_ha_batch *b, const struct ts_series_in **out, size_t *n_out,
		 const uint32_t **flags, uint64_t *dropped);

/* One cluster's state, as /metrics and the status page show it. */
struct ts_ha_state {
	const char *tenant, *cluster, *replica; /* NUL-terminated, valid during the call */
	int64_t elected_at_ms, last_seen_ms;
	uint64_t failovers;
};
/* One (cluster, replica)'s dropped samples. */
struct ts_ha_drop {
	const char *tenant, *cluster, *replica;
	uint64_t samples;
};
/* Calls fn for each cluster and drop for each replica with dropped samples, under the
 * tracker's lock (fn must not call back). Either may be NULL. */
void ts_ha_each(struct ts_ha *h, void (*fn)(void *arg, const struct ts_ha_state *s),
		void (*drop)(void *arg, const struct ts_ha_drop *d), void *arg);

#endif
