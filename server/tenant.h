/*
 * tenant.h - tenants (--tenant-header, --default-tenant): every write and read of a
 * request is in the tenant its header names (X-Scope-OrgID, the Cortex/Mimir/Thanos
 * Receive convention), or in the default tenant without the header.
 *
 * Storage keeps tenants apart by one label, TS_TENANT_LABEL, that the engine hides from
 * every reader (ts_db_opts.hidden_label): a write adds it (replacing one a client sent),
 * every read adds the matcher TS_TENANT_LABEL="<tenant>" to each of its selectors. The
 * default tenant's series carry no such label (the matcher is then ="", which matches
 * its absence), so a store that ran without tenants becomes the default tenant's.
 * Retention rules and deletions select tenants with the same label.
 *
 * Tenant names: 1 to 150 bytes of letters, digits and !-_.*'() , not "." or ".."
 * (Cortex's rule).
 */
#ifndef TS_SERVER_TENANT_H
#define TS_SERVER_TENANT_H

#include <stddef.h>

#include "query/selector.h"
#include "server/http.h"
#include "tsdb/tsdb.h"

#define TS_TENANT_LABEL "__tenant__"
#define TS_TENANT_MAX 150

struct ts_app;

struct ts_tenant {
	int on;		/* tenancy is configured */
	int is_default; /* the default tenant (no label) */
	char name[TS_TENANT_MAX + 1];
	struct ts_matcher m; /* TS_TENANT_LABEL = name, or "" for the default tenant */
};

/* 1 if s[0..n) is a valid tenant name. */
int ts_tenant_valid(const char *s, size_t n);

/* The tenant of req into *t (which must outlive what uses t->m). Returns 0, or
 * TS_EINVALID with msg naming the header and the rule. */
int ts_tenant_of(const struct ts_app *app, const struct ts_http_request *req, struct ts_tenant *t,
		 char *msg, size_t msg_len);

/* The tenant named v[0..n) (NULL or empty: the default tenant), for requests that do
 * not come as HTTP/1 (gRPC metadata); as ts_tenant_of. */
int ts_tenant_named(const struct ts_app *app, const char *v, size_t n, struct ts_tenant *t,
		    char *msg, size_t msg_len);

/* Adds t's matcher to every selector (nothing when tenancy is off). 0 or -ENOMEM. */
int ts_tenant_scope(const struct ts_tenant *t, struct ts_selector *sel, size_t n);

/* Matchers m[0..n) and t's matcher in a new array *out (ts_free it; strings borrowed),
 * *n_out its length; m itself when tenancy is off (*out then NULL, nothing to free).
 * 0 or -ENOMEM. */
int ts_tenant_matchers(const struct ts_tenant *t, const struct ts_matcher *m, size_t n,
		       struct ts_matcher **out, const struct ts_matcher **use, size_t *n_out);

/* Scratch for tagging series with the tenant label. */
struct ts_tenant_batch {
	struct ts_series_in *in;
	size_t cap_in;
	struct ts_label *lab;
	size_t cap_lab;
};

/* The series in[0..n) with the tenant label set (a client's own TS_TENANT_LABEL is
 * replaced, and dropped for the default tenant) into *out (aliasing b's arrays and the
 * input's strings, valid until b is reused or freed); in itself when tenancy is off.
 * Series with refs[i] != 0 (refs may be NULL) are passed as they are: their series,
 * tenant label and all, is named by the ref. 0 or -ENOMEM. */
int ts_tenant_tag(const struct ts_tenant *t, const struct ts_series_in *in, size_t n,
		  const ts_series_ref *refs, struct ts_tenant_batch *b,
		  const struct ts_series_in **out);
void ts_tenant_batch_fini(struct ts_tenant_batch *b);

/* PromQL q[0..len) with t's matcher added to every selector, in *out (ts_free it), or
 * NULL when tenancy is off. 0, TS_EINVALID with msg (a parse error), -ENOMEM. */
int ts_tenant_query(const struct ts_tenant *t, const char *q, size_t len, char **out, char *msg,
		    size_t msg_len);

/* Ingestion rate per tenant (--tenant.max-samples-per-second): a token bucket per
 * tenant of `rate` samples per second and a burst of one second's worth. Thread-safe. */
struct ts_tenant_rates;
int ts_tenant_rates_new(double rate, struct ts_tenant_rates **out);
void ts_tenant_rates_free(struct ts_tenant_rates *r);
/* Takes n samples of t's budget (the one budget when tenancy is off): 1 if allowed (r
 * NULL: always), 0 if not, with *retry_s when to try again. */
int ts_tenant_rate_take(struct ts_tenant_rates *r, const struct ts_tenant *t, uint64_t n,
			double *retry_s);

/* Counters per tenant for /metrics (samples stored, new series refused by a limit,
 * requests limited by each limit of app.h's enum ts_limit). Thread-safe. */
struct ts_tenant_counts;
int ts_tenant_counts_new(struct ts_tenant_counts **out);
void ts_tenant_counts_free(struct ts_tenant_counts *c);
/* Adds to t's counters (nothing when c is NULL or tenancy is off); limit: an enum
 * ts_limit to count one limited request under, or -1. */
void ts_tenant_count(struct ts_tenant_counts *c, const struct ts_tenant *t, uint64_t samples,
		     uint64_t series_refused, int limit);
/* Calls fn for every tenant seen (under the table's lock: fn must not call back). */
void ts_tenant_counts_each(struct ts_tenant_counts *c,
			   void (*fn)(void *arg, const char *tenant, uint64_t samples,
				      uint64_t series_refused, const uint64_t *limited),
			   void *arg);

#endif
