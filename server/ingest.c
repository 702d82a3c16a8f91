/*
 * ingest.c - the write endpoints of tsdbd.
 *
 *   POST /api/v1/write, /api/v1/push  Prometheus remote write 1.0 and 2.0
 *   POST /write                       InfluxDB 1.x line protocol (partial writes)
 *   POST /api/v2/write                InfluxDB 2.x line protocol (a bad line fails all)
 *   POST /api/v1/import               JSON lines (VictoriaMetrics format)
 *   POST /api/v1/import/prometheus    Prometheus text exposition
 *   GET|HEAD /ping                    InfluxDB liveness
 *
 * Handlers run on worker threads and answer only after ts_db_append() returned, i.e.
 * once everything accepted is durable under the sync policy. Status codes follow
 * PROTOCOLS.md: data that can never succeed is 400 (valid series of the same request
 * are still stored, and the body says how many samples were rejected and why);
 * transient faults are 503 with Retry-After, which Prometheus retries; 415 for an
 * unsupported Content-Type or Content-Encoding; never 409.
 *
 * Text formats reuse their parser's buffers from point to point, so their series are
 * copied into a batch (struct batch) and appended in slices; remote write decodes a
 * whole request at once and its series are appended in place.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "server/ha.h"
#include "server/refcache.h"
#include "server/tenant.h"
#include "wire/gzip.h"
#include "wire/expfmt.h"
#include "wire/jsonl.h"
#include "wire/lineproto.h"
#include "wire/params.h"
#include "wire/remote_write.h"
#include "server/sbuf.h"
#include "wire/snappy_io.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define BATCH_SAMPLES 20000	  /* text formats append in slices of about this many */
#define CTX_KEEP_BYTES (4u << 20) /* pooled contexts hold at most this much */

/* ---- batch of copied series ---- */

struct batch_series {
	size_t lab_off, smp_off;
	uint32_t n_lab, n_smp;
	ts_series_ref ref; /* 0: by its labels */
};

/* A series appended by its labels whose ref goes into the cache once it is known:
 * key (aliasing the request's body) and name (at str + name_off). */
struct pend {
	size_t ser;
	const char *key;
	uint32_t key_len, name_len;
	size_t name_off;
};

struct batch {
	struct batch_series *ser;
	size_t n_ser, cap_ser;
	struct ts_label *lab; /* name/value: pointers, or offsets into str where off says */
	uint8_t *off;	      /* per label: 1 the name, 2 the value is an offset into str */
	size_t n_lab, cap_lab, cap_off;
	char *str;
	size_t n_str, cap_str;
	/* Bytes that outlive the batch (the request's body): labels pointing into them are
	 * kept as pointers instead of copied. Line protocol's tags are mostly there, and
	 * copying them was 8-10 % of its ingest CPU. NULL: copy everything. */
	uintptr_t keep_lo, keep_hi;
	struct ts_sample *smp;
	size_t n_smp, cap_smp;
	struct ts_series_in *in;
	size_t cap_in;
	ts_series_ref *refs;
	size_t cap_refs;
	/* The request's scope in app->refs (refcache.h); NULL: no cache. */
	const char *scope;
	size_t scope_len;
	struct pend *pend;
	size_t n_pend, cap_pend;
	struct ts_refname *pnames; /* one line's pending names and refs, for the put */
	ts_series_ref *prefs;
	size_t cap_pnames, cap_prefs;
	struct ts_tenant_batch tb; /* the series tagged with the tenant label */
	struct ts_ha_batch hb;	   /* the series the HA tracker keeps */
};


static void batch_fini(struct batch *b)
{
	ts_tenant_batch_fini(&b->tb);
	ts_ha_batch_fini(&b->hb);
	ts_free(b->ser);
	ts_free(b->lab);
	ts_free(b->off);
	ts_free(b->str);
	ts_free(b->smp);
	ts_free(b->in);
	ts_free(b->refs);
	ts_free(b->pend);
	ts_free(b->pnames);
	ts_free(b->prefs);
	memset(b, 0, sizeof *b);
}

/* Empties the batch, keeping its buffers; forgets the kept region. */
static void batch_clear(struct batch *b)
{
	b->n_ser = b->n_lab = b->n_str = b->n_smp = b->n_pend = 0;
	b->keep_lo = b->keep_hi = 0;
	b->scope = NULL;
}

/* Labels pointing into [keep_lo, keep_hi) are referenced until the flush. */
static void batch_keep(struct batch *b, const char *p, size_t len)
{
	b->keep_lo = (uintptr_t)p;
	b->keep_hi = (uintptr_t)p + len;
}

static int kept(const struct batch *b, const char *p, uint32_t len)
{
	uintptr_t a = (uintptr_t)p;
	return a >= b->keep_lo && a + len <= b->keep_hi && b->keep_lo;
}

/* Stores s under an offset into str (the caller reserved room): returns the offset. */
static const char *str_put(struct batch *b, const char *s, uint32_t len)
{
	memcpy(b->str + b->n_str, s, len);
	const char *at = (const char *)(uintptr_t)b->n_str;
	b->n_str += len;
	return at;
}

static int batch_add(struct batch *b, const struct ts_label *l, uint32_t nl,
		     const struct ts_sample *s, size_t ns)
{
	size_t bytes = 0;
	for (uint32_t i = 0; i < nl; i++)
		bytes += (kept(b, l[i].name, l[i].name_len) ? 0 : (size_t)l[i].name_len) +
			 (kept(b, l[i].value, l[i].value_len) ? 0 : (size_t)l[i].value_len);
	if (ts_grow((void **)&b->ser, &b->cap_ser, b->n_ser + 1, sizeof *b->ser) ||
	    ts_grow((void **)&b->lab, &b->cap_lab, b->n_lab + nl, sizeof *b->lab) ||
	    ts_grow((void **)&b->off, &b->cap_off, b->n_lab + nl, 1) ||
	    ts_grow((void **)&b->str, &b->cap_str, b->n_str + bytes, 1) ||
	    ts_grow((void **)&b->smp, &b->cap_smp, b->n_smp + ns, sizeof *b->smp))
		return -ENOMEM;
	b->ser[b->n_ser++] = (struct batch_series){ b->n_lab, b->n_smp, nl, (uint32_t)ns, 0 };
	for (uint32_t i = 0; i < nl; i++) {
		struct ts_label *d = &b->lab[b->n_lab];
		uint8_t f = 0;
		*d = l[i];
		if (!kept(b, l[i].name, l[i].name_len)) {
			d->name = str_put(b, l[i].name, l[i].name_len);
			f |= 1;
		}
		if (!kept(b, l[i].value, l[i].value_len)) {
			d->value = str_put(b, l[i].value, l[i].value_len);
			f |= 2;
		}
		b->off[b->n_lab++] = f;
	}
	memcpy(b->smp + b->n_smp, s, ns * sizeof *s);
	b->n_smp += ns;
	return 0;
}

/* Adds one sample of the series ref. */
static int batch_add_ref(struct batch *b, ts_series_ref ref, int64_t t_ms, double v)
{
	if (ts_grow((void **)&b->ser, &b->cap_ser, b->n_ser + 1, sizeof *b->ser) ||
	    ts_grow((void **)&b->smp, &b->cap_smp, b->n_smp + 1, sizeof *b->smp))
		return -ENOMEM;
	b->ser[b->n_ser++] = (struct batch_series){ b->n_lab, b->n_smp, 0, 1, ref };
	b->smp[b->n_smp++] = (struct ts_sample){ .t_ms = t_ms, .v = v };
	return 0;
}

/* The series just added goes into the cache under key and name once appended. */
static int batch_pend(struct batch *b, const char *key, uint32_t key_len, const char *name,
		      uint32_t name_len)
{
	if (ts_grow((void **)&b->pend, &b->cap_pend, b->n_pend + 1, sizeof *b->pend) ||
	    ts_grow((void **)&b->str, &b->cap_str, b->n_str + name_len, 1))
		return -ENOMEM;
	b->pend[b->n_pend++] = (struct pend){ b->n_ser - 1, key, key_len, name_len, b->n_str };
	memcpy(b->str + b->n_str, name, name_len);
	b->n_str += name_len;
	return 0;
}

/* Outcome of a whole request, summed over its appends. */
struct outcome {
	struct ts_append_result r;
	int engine_err; /* first error ts_db_append returned */
	struct ts_tenant tenant;
	uint64_t rate_limited; /* samples refused by the tenant's ingestion rate */
	uint64_t ha_dropped;   /* samples of HA replicas not elected */
	double rate_retry_s;
	uint64_t parse_errors, strings, histograms, invalid;
	char first_msg[300];
	char first_parse[256]; /* the decoder's message for the first bad line */
};

static void note(struct outcome *o, const char *fmt, const char *detail)
{
	if (!o->first_msg[0])
		snprintf(o->first_msg, sizeof o->first_msg, fmt, detail);
}

/* Counts a line the decoder rejected; keeps the first message. */
static void parse_error(struct outcome *o, const char *msg)
{
	if (!o->parse_errors++)
		snprintf(o->first_parse, sizeof o->first_parse, "%s", msg);
}

static void sum_result(struct outcome *o, const struct ts_append_result *r, const char *what)
{
	o->r.n_appended += r->n_appended;
	o->r.n_duplicate += r->n_duplicate;
	o->r.n_out_of_order += r->n_out_of_order;
	o->r.n_conflict += r->n_conflict;
	o->r.n_too_old += r->n_too_old;
	o->r.n_too_future += r->n_too_future;
	o->r.n_invalid_series += r->n_invalid_series;
	o->r.n_new_series += r->n_new_series;
	o->r.n_limited_series += r->n_limited_series;
	o->r.n_limited_series_metric += r->n_limited_series_metric;
	o->r.n_limited_series_hidden += r->n_limited_series_hidden;
	o->r.n_limited_series_rate += r->n_limited_series_rate;
	if (r->first_err && !o->first_msg[0]) {
		char m[300];
		snprintf(m, sizeof m, "%s%s", r->first_err_msg, what ? what : "");
		note(o, "%s", m);
	}
}

static int rate_ok(struct ts_app *app, struct outcome *o, uint64_t n);
static uint64_t n_limited(const struct outcome *o);

/* The one path every protocol's series take into the engine: the HA tracker (replicas
 * not elected are dropped, the elected one's replica label removed), the tenant's
 * ingestion rate, the tenant label, the append. TS_ELIMIT when the rate refused the
 * samples (noted in o); else 0 or the engine's error. */
static int store(struct ts_app *app, struct batch *b, struct outcome *o,
		 const struct ts_series_in *in, size_t n, ts_series_ref *refs)
{
	const struct ts_series_in *kept, *tagged;
	const uint32_t *flags;
	size_t n_kept;
	uint64_t dropped;
	int rc = ts_ha_filter(app->ha, o->tenant.on ? o->tenant.name : "", in, n, &b->hb, &kept,
			      &n_kept, &flags, &dropped);
	if (rc)
		return rc;
	o->ha_dropped += dropped;
	uint64_t n_smp = 0;
	for (size_t i = 0; i < n_kept; i++)
		n_smp += kept[i].n_samples;
	if (!n_kept)
		return 0;
	if (!rate_ok(app, o, n_smp))
		return TS_ELIMIT;
	struct ts_append_result r;
	/* Refs are used only without the HA tracker, which may drop series: kept is in. */
	if (kept != in)
		refs = NULL;
	rc = ts_tenant_tag(&o->tenant, kept, n_kept, refs, &b->tb, &tagged);
	if (rc == 0)
		rc = ts_db_append_refs(app->db, tagged, n_kept, flags, refs, &r, NULL);
	if (rc == 0)
		sum_result(o, &r, NULL);
	return rc;
}

static int batch_flush(struct ts_app *app, struct batch *b, struct outcome *o)
{
	if (!b->n_ser)
		return 0;
	if (ts_grow((void **)&b->in, &b->cap_in, b->n_ser, sizeof *b->in) ||
	    (b->scope && ts_grow((void **)&b->refs, &b->cap_refs, b->n_ser, sizeof *b->refs)))
		return -ENOMEM;
	for (size_t i = 0; i < b->n_lab; i++) {
		if (b->off[i] & 1)
			b->lab[i].name = b->str + (uintptr_t)b->lab[i].name;
		if (b->off[i] & 2)
			b->lab[i].value = b->str + (uintptr_t)b->lab[i].value;
	}
	for (size_t i = 0; i < b->n_ser; i++) {
		const struct batch_series *bs = &b->ser[i];
		b->in[i] = (struct ts_series_in){ bs->n_lab ? b->lab + bs->lab_off : NULL,
						  bs->n_lab, b->smp + bs->smp_off, bs->n_smp };
		if (b->scope)
			b->refs[i] = bs->ref;
	}
	int rc = store(app, b, o, b->in, b->n_ser, b->scope ? b->refs : NULL);
	if (rc && rc != TS_ELIMIT && !o->engine_err)
		o->engine_err = rc;
	/* A line's series are pending one after the other: one put each line. */
	for (size_t i = 0, j; i < b->n_pend; i = j) {
		const struct pend *p = &b->pend[i];
		for (j = i; j < b->n_pend && b->pend[j].key == p->key; j++)
			;
		if (ts_grow((void **)&b->pnames, &b->cap_pnames, j - i, sizeof *b->pnames) ||
		    ts_grow((void **)&b->prefs, &b->cap_prefs, j - i, sizeof *b->prefs))
			break; /* not cached: the next request's lines miss again */
		for (size_t q = i; q < j; q++) {
			/* 0 (refused, or the append failed first) is skipped by the put */
			b->pnames[q - i] = (struct ts_refname){ b->str + b->pend[q].name_off,
								b->pend[q].name_len };
			b->prefs[q - i] = b->refs[b->pend[q].ser];
		}
		struct ts_refkey k;
		ts_refkey_set(&k, b->scope, b->scope_len, p->key, p->key_len);
		ts_refcache_put(app->refs, &k, b->pnames, b->prefs, j - i);
	}
	b->n_ser = b->n_lab = b->n_str = b->n_smp = b->n_pend = 0;
	return rc;
}

/* ---- per-request scratch, pooled so steady-state requests allocate little ---- */

struct ts_ingest_ctx {
	struct ts_ingest_ctx *next;
	struct ts_rw_request rw;
	uint8_t *dec; /* decompressed body */
	size_t dec_cap;
	struct batch b;
	struct ts_series_in *in;
	size_t cap_in;
	struct ts_lp_parser lp;
	struct ts_lp_mapper lpm;
	/* line protocol's look-ups in app->refs: a point's numeric fields, their refs */
	struct ts_refname *names;
	ts_series_ref *refs;
	size_t cap_names, cap_refs;
	char *scope;
	size_t cap_scope;
};

static struct ts_ingest_ctx *ctx_get(struct ts_app *app)
{
	pthread_mutex_lock(&app->pool_mu);
	struct ts_ingest_ctx *c = app->pool;
	if (c)
		app->pool = c->next;
	pthread_mutex_unlock(&app->pool_mu);
	if (!c) {
		c = ts_calloc(1, sizeof *c);
		if (!c)
			return NULL;
		ts_rw_request_init(&c->rw);
		ts_lp_mapper_init(&c->lpm);
	}
	return c;
}

/* Bytes a context holds in its grown arrays. */
static size_t ctx_bytes(const struct ts_ingest_ctx *c)
{
	const struct ts_rw_request *r = &c->rw;
	return c->dec_cap + r->series_cap * sizeof *r->series +
	       r->metadata_cap * sizeof *r->metadata + r->labels_cap * sizeof *r->labels +
	       r->samples_cap * sizeof *r->samples_arena +
	       r->exemplars_cap * sizeof *r->exemplars_arena +
	       r->ex_labels_cap * sizeof *r->ex_labels + r->symbols_cap * sizeof *r->symbols +
	       c->b.cap_ser * sizeof *c->b.ser + c->b.cap_lab * sizeof *c->b.lab + c->b.cap_off +
	       c->b.cap_str + c->b.cap_smp * sizeof *c->b.smp + c->b.cap_in * sizeof *c->b.in +
	       c->cap_in * sizeof *c->in + c->lp.tags_cap * sizeof *c->lp.tags +
	       c->lp.fields_cap * sizeof *c->lp.fields + c->lp.scratch_cap +
	       c->lpm.series_cap * sizeof *c->lpm.series +
	       c->lpm.labels_cap * sizeof *c->lpm.labels + c->lpm.names_cap +
	       c->b.cap_refs * sizeof *c->b.refs + c->b.cap_pend * sizeof *c->b.pend +
	       c->b.cap_pnames * sizeof *c->b.pnames + c->b.cap_prefs * sizeof *c->b.prefs +
	       c->cap_names * sizeof *c->names + c->cap_refs * sizeof *c->refs + c->cap_scope;
}

static void ctx_free(struct ts_ingest_ctx *c);

static void ctx_put(struct ts_app *app, struct ts_ingest_ctx *c)
{
	/* A context that grew for one big request (a decode bomb decodes to 32 MiB) is
	 * not kept: pooled, its arrays would hold that memory for the life of the
	 * process. Prometheus-shaped requests stay far below this. */
	if (ctx_bytes(c) > CTX_KEEP_BYTES) {
		ctx_free(c);
		malloc_trim(0); /* glibc keeps freed heap pages otherwise */
		return;
	}
	batch_clear(&c->b); /* whatever path the request took: no kept region survives it */
	pthread_mutex_lock(&app->pool_mu);
	c->next = app->pool;
	app->pool = c;
	pthread_mutex_unlock(&app->pool_mu);
}

static void ctx_free(struct ts_ingest_ctx *c)
{
	ts_rw_request_fini(&c->rw);
	ts_free(c->dec);
	batch_fini(&c->b);
	ts_free(c->in);
	ts_lp_fini(&c->lp);
	ts_lp_mapper_fini(&c->lpm);
	ts_free(c->names);
	ts_free(c->refs);
	ts_free(c->scope);
	ts_free(c);
}

void ts_ingest_fini(struct ts_app *app)
{
	struct ts_ingest_ctx *c = app->pool;
	while (c) {
		struct ts_ingest_ctx *n = c->next;
		ctx_free(c);
		c = n;
	}
	app->pool = NULL;
	ts_refcache_free(app->refs);
	app->refs = NULL;
}

/* ---- shared helpers ---- */

int ts_app_write_error_status(struct ts_net_response *resp, int err)
{
	/* Everything but corruption is the store's own trouble, and passes: out of memory,
	 * shutting down, a full disk or a failing flush (writes resume by themselves once
	 * one succeeds), a failed WAL (until restart). Senders retry on 503. */
	if (err == -ENOMEM || err == TS_ECLOSED || err == TS_EIO || err == TS_EBUSY ||
	    err == TS_EFULL || (err < 0 && err > -4096)) {
		ts_net_response_header(resp, "Retry-After", "5");
		return 503;
	}
	return 500;
}

static void count_outcome(struct ts_app *app, enum ts_proto proto, const struct outcome *o)
{
	atomic_fetch_add(&app->samples_in[proto], o->r.n_appended);
	atomic_fetch_add(&app->series_created, o->r.n_new_series);
	atomic_fetch_add(&app->duplicates, o->r.n_duplicate);
	atomic_fetch_add(&app->rejected[TS_REJ_OUT_OF_ORDER], o->r.n_out_of_order);
	atomic_fetch_add(&app->rejected[TS_REJ_DUPLICATE], o->r.n_conflict);
	atomic_fetch_add(&app->rejected[TS_REJ_TOO_OLD], o->r.n_too_old);
	atomic_fetch_add(&app->rejected[TS_REJ_TOO_FUTURE], o->r.n_too_future);
	atomic_fetch_add(&app->rejected[TS_REJ_INVALID_SERIES], o->r.n_invalid_series + o->invalid);
	atomic_fetch_add(&app->rejected[TS_REJ_HISTOGRAM], o->histograms);
	atomic_fetch_add(&app->rejected[TS_REJ_STRING_FIELD], o->strings);
	atomic_fetch_add(&app->rejected[TS_REJ_PARSE_ERROR], o->parse_errors);
	atomic_fetch_add(&app->rejected[TS_REJ_SERIES_LIMIT], n_limited(o));
	if (o->r.n_limited_series)
		atomic_fetch_add(&app->limited[TS_LIM_SERIES], 1);
	if (o->r.n_limited_series_metric)
		atomic_fetch_add(&app->limited[TS_LIM_SERIES_PER_METRIC], 1);
	if (o->r.n_limited_series_hidden)
		atomic_fetch_add(&app->limited[TS_LIM_TENANT_SERIES], 1);
	if (o->r.n_limited_series_rate)
		atomic_fetch_add(&app->limited[TS_LIM_TENANT_NEW_SERIES], 1);
	/* Per tenant: one limited request counts under the first limit it met. */
	int lim = o->r.n_limited_series		 ? TS_LIM_SERIES
		  : o->r.n_limited_series_metric ? TS_LIM_SERIES_PER_METRIC
		  : o->r.n_limited_series_hidden ? TS_LIM_TENANT_SERIES
		  : o->r.n_limited_series_rate	 ? TS_LIM_TENANT_NEW_SERIES
						 : -1;
	ts_tenant_count(app->tenant_counts, &o->tenant, o->r.n_appended, n_limited(o), lim);
}

/* New series the series limits refused (their samples were not stored). */
static uint64_t n_limited(const struct outcome *o)
{
	return o->r.n_limited_series + o->r.n_limited_series_metric + o->r.n_limited_series_hidden +
	       o->r.n_limited_series_rate;
}

/* The status of a write that dropped something: 429 (with Retry-After) when the
 * tenant's new-series rate refused series, which a later resend stores (what was stored
 * comes back as duplicates); else dflt. */
static int drop_status(struct ts_net_response *resp, const struct outcome *o, int dflt)
{
	if (!o->r.n_limited_series_rate)
		return dflt;
	ts_net_response_header(resp, "Retry-After", "60");
	return 429;
}

/* Takes n samples of the tenant's ingestion rate: 1 if allowed, else 0 with the refusal
 * noted in o (the request then gets 429 with Retry-After). */
static int rate_ok(struct ts_app *app, struct outcome *o, uint64_t n)
{
	double retry;
	if (ts_tenant_rate_take(app->rates, &o->tenant, n, &retry))
		return 1;
	o->rate_limited += n;
	if (retry > o->rate_retry_s)
		o->rate_retry_s = retry;
	return 0;
}

/* Answers 429 when the tenant's ingestion rate refused samples: 1 if it did. What
 * earlier slices of a text import stored is counted as any write's. */
static int rate_reply(struct ts_app *app, struct ts_net_response *resp, enum ts_proto proto,
		      const struct outcome *o)
{
	if (!o->rate_limited)
		return 0;
	count_outcome(app, proto, o);
	atomic_fetch_add(&app->limited[TS_LIM_TENANT_RATE], 1);
	ts_tenant_count(app->tenant_counts, &o->tenant, 0, 0, TS_LIM_TENANT_RATE);
	char ra[32], msg[300];
	snprintf(ra, sizeof ra, "%d", (int)o->rate_retry_s + 1);
	ts_net_response_header(resp, "Retry-After", ra);
	snprintf(msg, sizeof msg,
		 "ingestion rate limit exceeded for this tenant (--tenant.max-samples-per-second): "
		 "%llu samples refused, %llu stored; retry after %s s\n",
		 (unsigned long long)o->rate_limited, (unsigned long long)o->r.n_appended, ra);
	ts_net_respond_text(resp, 429, "text/plain; charset=utf-8", msg);
	return 1;
}

static uint64_t n_rejected(const struct outcome *o)
{
	return o->r.n_out_of_order + o->r.n_conflict + o->r.n_too_old + o->r.n_too_future;
}

/* A plain-text summary of what was not stored. */
static void summary(struct ts_sbuf *b, const struct outcome *o)
{
	ts_sbuf_printf(b, "%llu samples stored", (unsigned long long)o->r.n_appended);
	if (o->r.n_duplicate)
		ts_sbuf_printf(b, ", %llu exact duplicates accepted",
			       (unsigned long long)o->r.n_duplicate);
	uint64_t rej = n_rejected(o);
	if (rej)
		ts_sbuf_printf(
			b,
			"; %llu samples rejected (out of order %llu, conflicting value %llu, "
			"too old %llu, too far in the future %llu)",
			(unsigned long long)rej, (unsigned long long)o->r.n_out_of_order,
			(unsigned long long)o->r.n_conflict, (unsigned long long)o->r.n_too_old,
			(unsigned long long)o->r.n_too_future);
	if (o->r.n_invalid_series + o->invalid)
		ts_sbuf_printf(b, "; %llu series rejected for invalid labels",
			       (unsigned long long)(o->r.n_invalid_series + o->invalid));
	if (n_limited(o))
		ts_sbuf_printf(b, "; %llu new series refused by the series limits",
			       (unsigned long long)n_limited(o));
	if (o->histograms)
		ts_sbuf_printf(b, "; %llu native histogram samples rejected (not supported)",
			       (unsigned long long)o->histograms);
	if (o->parse_errors)
		ts_sbuf_printf(b, "; %llu lines dropped", (unsigned long long)o->parse_errors);
	if (o->ha_dropped)
		ts_sbuf_printf(b, "; %llu samples of an HA replica that is not elected dropped",
			       (unsigned long long)o->ha_dropped);
	if (o->first_msg[0])
		ts_sbuf_printf(b, "; first error: %s", o->first_msg);
}

static int gunzip_if_needed(struct ts_app *app, struct ts_ingest_ctx *c,
			    const struct ts_http_request *req, const char **body, size_t *len,
			    char *err, size_t err_len)
{
	size_t ce_len;
	const char *ce = ts_http_request_header(req, "Content-Encoding", &ce_len);
	*body = req->body ? req->body : "";
	*len = req->body_len;
	if (!ce || ce_len == 0 || (ce_len == 8 && strncasecmp(ce, "identity", 8) == 0))
		return 0;
	if (!((ce_len == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
	      (ce_len == 7 && strncasecmp(ce, "deflate", 7) == 0))) {
		snprintf(err, err_len,
			 "unsupported Content-Encoding %.*s (gzip, deflate or identity)",
			 (int)(ce_len > 40 ? 40 : ce_len), ce);
		return 415;
	}
	size_t out;
	int rc = ts_gzip_inflate((const uint8_t *)*body, *len, app->lim.max_decoded_bytes, &c->dec,
				 &c->dec_cap, &out);
	if (rc == TS_ELIMIT) {
		atomic_fetch_add(&app->limited[TS_LIM_DECODED], 1);
		snprintf(err, err_len, "decompressed body exceeds %zu bytes",
			 app->lim.max_decoded_bytes);
		return 413;
	}
	if (rc) {
		snprintf(err, err_len, "%s", rc == -ENOMEM ? "out of memory" : "invalid gzip body");
		return rc == -ENOMEM ? 503 : 400;
	}
	*body = (const char *)c->dec;
	*len = out;
	return 0;
}
/* The first line of body longer than max bytes, 1-based, or 0. memchr keeps this a
 * fast pre-pass over the body. */
static uint64_t long_line(const char *body, size_t len, size_t max)
{
	uint64_t line = 1;
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		if (l > max)
			return line;
		if (!nl)
			break;
		p = nl + 1;
		line++;
	}
	return 0;
}

/* ---- remote write ---- */

/* ts_series_ref_mark bit: the series' labels passed remote write's label rules. */
#define RW_LABELS_VALID 1u

static void rw_headers(struct ts_net_response *resp, enum ts_rw_version v, const struct outcome *o)
{
	if (v != TS_RW_V2)
		return;
	char n[32];
	snprintf(n, sizeof n, "%llu", (unsigned long long)(o->r.n_appended + o->r.n_duplicate));
	ts_net_response_header(resp, "X-Prometheus-Remote-Write-Samples-Written", n);
	ts_net_response_header(resp, "X-Prometheus-Remote-Write-Histograms-Written", "0");
	ts_net_response_header(resp, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
}

static int set_metadata(struct ts_app *app, const struct ts_rw_request *rw)
{
	struct ts_metadata md[64];
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < rw->n_metadata && rc == 0; i++) {
		const struct ts_rw_metadata *m = &rw->metadata[i];
		if (!m->family.len || m->type > TS_MT_STATESET)
			continue;
		md[n++] = (struct ts_metadata){ m->family.p,
						m->help.p,
						m->unit.p,
						(uint32_t)m->family.len,
						(uint32_t)m->help.len,
						(uint32_t)m->unit.len,
						(enum ts_metric_type)m->type };
		if (n == 64 || i + 1 == rw->n_metadata) {
			rc = ts_db_set_metadata(app->db, md, n);
			n = 0;
		}
	}
	for (size_t i = 0; i < rw->n_series && rc == 0; i++) {
		const struct ts_rw_series *s = &rw->series[i];
		if (!s->has_metadata || s->type > TS_MT_STATESET)
			continue;
		for (uint32_t k = 0; k < s->n_labels; k++)
			if (s->labels[k].name_len == 8 &&
			    memcmp(s->labels[k].name, "__name__", 8) == 0) {
				struct ts_metadata m = { s->labels[k].value,
							 s->help.p,
							 s->unit.p,
							 s->labels[k].value_len,
							 (uint32_t)s->help.len,
							 (uint32_t)s->unit.len,
							 (enum ts_metric_type)s->type };
				rc = ts_db_set_metadata(app->db, &m, 1);
				break;
			}
	}
	atomic_fetch_add(&app->metadata_in, rw->n_metadata);
	return rc == TS_EINVALID ? 0 : rc; /* bad metadata does not fail the samples */
}

static void h_remote_write(const struct ts_http_request *req, struct ts_net_response *resp,
			   void *arg)
{
	struct ts_app *app = arg;
	struct ts_ingest_ctx *c = ctx_get(app);
	struct outcome o = { 0 };
	char err[300];
	int status = 204;
	enum ts_rw_version v = TS_RW_V1;
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	if (!c) {
		ts_net_response_header(resp, "Retry-After", "5");
		ts_net_respond_text(resp, 503, "text/plain", "out of memory\n");
		return;
	}
	if (ts_tenant_of(app, req, &o.tenant, err, sizeof err)) {
		status = 400;
		ts_sbuf_str(&b, err);
		goto out;
	}
	size_t ct_len = 0, ce_len = 0;
	const char *ct = ts_http_request_header(req, "Content-Type", &ct_len);
	const char *ce = ts_http_request_header(req, "Content-Encoding", &ce_len);
	if (ts_rw_negotiate(ct, ct_len, ce, ce_len, &v, err, sizeof err)) {
		status = 415;
		ts_sbuf_str(&b, err);
		goto out;
	}
	size_t dec_len;
	int rc = ts_snappy_decompress((const uint8_t *)(req->body ? req->body : ""), req->body_len,
				      app->lim.max_decoded_bytes, &c->dec, &c->dec_cap, &dec_len);
	if (rc) {
		/* Over the decoded limit is 413, as for gzip bodies (decode_body). */
		status = rc == -ENOMEM ? 503 : rc == TS_ELIMIT ? 413 : 400;
		if (rc == TS_ELIMIT) {
			atomic_fetch_add(&app->limited[TS_LIM_DECODED], 1);
			ts_sbuf_printf(&b,
				       "snappy body decodes to more than the limit of %zu bytes",
				       app->lim.max_decoded_bytes);
		} else {
			ts_sbuf_str(&b,
				    rc == -ENOMEM ? "out of memory" : "invalid snappy block body");
		}
		goto out;
	}
	rc = ts_rw_decode(&c->rw, v, c->dec, dec_len);
	if (rc) {
		status = rc == -ENOMEM ? 503 : 400;
		/* The decoder names the bound it hit: labels, or series/samples/exemplars. */
		if (rc == TS_ELIMIT)
			atomic_fetch_add(&app->limited[strstr(c->rw.err, " labels ")
							       ? TS_LIM_LABELS
							       : TS_LIM_REQUEST_SERIES],
					 1);
		ts_sbuf_printf(&b, "cannot decode %s request: %s",
			       v == TS_RW_V2 ? "remote write 2.0" : "remote write 1.0",
			       c->rw.err[0] ? c->rw.err : ts_strerror(rc));
		goto out;
	}
	if (ts_grow((void **)&c->in, &c->cap_in, c->rw.n_series ? c->rw.n_series : 1,
		    sizeof *c->in)) {
		status = 503;
		ts_sbuf_str(&b, "out of memory");
		goto out;
	}
	struct ts_rw_limits lim = { app->lim.max_labels, app->lim.max_name_len,
				    app->lim.max_value_len };
	/* Series the store already has, labels byte for byte, are appended through their
	 * refs; those that passed the label rules before (marked) are not checked again:
	 * the rules and limits are the process's, and the labels the same. Not with the HA
	 * tracker or tenants, which change labels before they are stored. */
	ts_series_ref *refs = NULL;
	size_t n_in = 0;
	for (size_t i = 0; i < c->rw.n_series; i++) {
		struct ts_rw_series *s = &c->rw.series[i];
		o.histograms += s->n_histograms;
		if (s->n_samples)
			c->in[n_in++] = (struct ts_series_in){ s->labels, s->n_labels, s->samples,
							       s->n_samples };
	}
	if (!app->ha && !o.tenant.on && n_in &&
	    ts_grow((void **)&c->refs, &c->cap_refs, n_in, sizeof *c->refs) == 0 &&
	    ts_db_lookup_refs(app->db, c->in, n_in, c->refs) == 0)
		refs = c->refs;
	size_t n_cand = n_in, n_unknown = 0;
	n_in = 0;
	for (size_t i = 0, k = 0; k < n_cand; i++) {
		struct ts_rw_series *s = &c->rw.series[i];
		if (!s->n_samples)
			continue;
		ts_series_ref ref = refs ? refs[k] : 0;
		k++;
		if (!ref || !(ts_series_ref_marks(ref) & RW_LABELS_VALID)) {
			enum ts_rw_reason why;
			char msg[200];
			if (ts_rw_validate_series(s, &lim, &why, msg, sizeof msg)) {
				o.invalid++;
				note(&o, "%s", msg);
				continue;
			}
			if (ref)
				ts_series_ref_mark(ref, RW_LABELS_VALID);
		}
		if (refs)
			refs[n_in] = ref;
		n_unknown += refs && !ref;
		c->in[n_in++] = (struct ts_series_in){ s->labels, s->n_labels, s->samples,
						       s->n_samples };
	}
	if (o.histograms)
		note(&o, "%s", "native histograms are not supported");
	rc = set_metadata(app, &c->rw);
	if (rc == 0 && n_in)
		rc = store(app, &c->b, &o, c->in, n_in, refs);
	/* Series the look-up did not find (new, or sent with an empty label) have their refs
	 * now; their labels passed the rules above. */
	for (size_t i = 0; n_unknown && rc == 0 && i < n_in; i++)
		if (refs[i] && !(ts_series_ref_marks(refs[i]) & RW_LABELS_VALID))
			ts_series_ref_mark(refs[i], RW_LABELS_VALID);
	if (rc == TS_ELIMIT) {
		ctx_put(app, c);
		rate_reply(app, resp, TS_PROTO_RW, &o);
		ts_sbuf_fini(&b);
		return;
	}
	if (rc) {
		status = ts_app_write_error_status(resp, rc);
		ts_sbuf_printf(&b, "cannot store samples: %s", ts_strerror(rc));
		goto out;
	}
	count_outcome(app, TS_PROTO_RW, &o);
	if (n_rejected(&o) || o.invalid || o.r.n_invalid_series || o.histograms || n_limited(&o)) {
		status = drop_status(resp, &o, 400);
		summary(&b, &o);
	} else if (o.ha_dropped && !o.r.n_appended) {
		/* A replica that is not elected: accepted and dropped, as Mimir answers, so
		 * that Prometheus neither retries nor logs an error. */
		status = 202;
		summary(&b, &o);
	}
out:
	rw_headers(resp, v, &o);
	ctx_put(app, c);
	if (status == 204) {
		ts_sbuf_fini(&b);
		ts_net_respond(resp, 204, NULL, 0);
		return;
	}
	ts_sbuf_str(&b, "\n");
	size_t len;
	char *body = ts_sbuf_take(&b, &len);
	ts_net_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	ts_net_respond(resp, status, body, body ? len : 0);
}

/* ---- InfluxDB line protocol ---- */

static void influx_error(struct ts_net_response *resp, int status, int v2, const char *msg)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	if (v2) {
		/* InfluxDB 2.x clients read code/message; "error" keeps 1.x-style clients happy. */
		ts_sbuf_printf(&b, "{\"code\":\"%s\",\"message\":",
			       status == 413   ? "request too large"
			       : status >= 500 ? "internal error"
			       : status == 422 ? "unprocessable entity"
					       : "invalid");
		ts_sbuf_json_str(&b, msg, strlen(msg));
		ts_sbuf_str(&b, ",\"error\":");
	} else {
		ts_sbuf_str(&b, "{\"error\":");
	}
	ts_sbuf_json_str(&b, msg, strlen(msg));
	ts_sbuf_str(&b, "}\n");
	size_t len;
	char *body = ts_sbuf_take(&b, &len);
	ts_net_response_header(resp, "Content-Type", "application/json");
	ts_net_response_header(resp, "X-Influxdb-Version", "1.8.10");
	ts_net_respond(resp, status, body, body ? len : 0);
}

/* Sets c->b's scope in app->refs for line protocol written to db by tenant t: the
 * labels of a line depend on both. No scope (no cache) with the HA tracker, which
 * needs every series' labels. Returns 0 or -ENOMEM. */
static int lp_scope(struct ts_app *app, struct ts_ingest_ctx *c, const struct ts_tenant *t,
		    const char *db, size_t db_len)
{
	if (!app->refs || app->ha)
		return 0;
	size_t tl = t->on ? strlen(t->name) : 0, len = 3 + tl + 1 + db_len;
	if (ts_grow((void **)&c->scope, &c->cap_scope, len, 1))
		return -ENOMEM;
	memcpy(c->scope, "lp", 3); /* with its NUL: a separator */
	memcpy(c->scope + 3, t->name, tl);
	c->scope[3 + tl] = t->on ? 1 : 0;
	if (db_len)
		memcpy(c->scope + 4 + tl, db, db_len);
	c->b.scope = c->scope;
	c->b.scope_len = len;
	return 0;
}

/* Adds pt's numeric fields to c->b: through their refs when the cache knows the line's
 * series, else by labels (ts_lp_map), to be cached once appended. Returns 0, -ENOMEM
 * or TS_ELIMIT (ts_lp_map). */
static int lp_add(struct ts_app *app, struct ts_ingest_ctx *c, const struct ts_lp_point *pt,
		  const char *db, size_t db_len, struct outcome *o)
{
	struct batch *b = &c->b;
	int cache = b->scope && pt->key_len;
	size_t n_num = 0, found = 0;
	int rc;
	if (cache) {
		if (ts_grow((void **)&c->names, &c->cap_names, pt->n_fields, sizeof *c->names) ||
		    ts_grow((void **)&c->refs, &c->cap_refs, pt->n_fields, sizeof *c->refs))
			return -ENOMEM;
		for (uint32_t i = 0; i < pt->n_fields; i++)
			if (pt->fields[i].type != TS_LP_STRING)
				c->names[n_num++] = (struct ts_refname){ pt->fields[i].key,
									 pt->fields[i].key_len };
		struct ts_refkey k;
		ts_refkey_set(&k, b->scope, b->scope_len, pt->key, pt->key_len);
		found = ts_refcache_get(app->refs, &k, c->names, n_num, c->refs);
		if (found == n_num) {
			size_t j = 0;
			o->strings += pt->n_fields - n_num;
			for (uint32_t i = 0; i < pt->n_fields; i++) {
				double v;
				if (ts_lp_field_value(&pt->fields[i], &v) &&
				    (rc = batch_add_ref(b, c->refs[j++], pt->t_ms, v)) != 0)
					return rc;
			}
			return 0;
		}
	}
	if ((rc = ts_lp_map(&c->lpm, pt, db, db_len)) != 0)
		return rc;
	o->strings += c->lpm.n_skipped;
	for (uint32_t i = 0; i < c->lpm.n_series; i++) {
		const struct ts_lp_series *ls = &c->lpm.series[i];
		if (cache && c->refs[i]) {
			rc = batch_add_ref(b, c->refs[i], ls->sample.t_ms, ls->sample.v);
		} else {
			rc = batch_add(b, ls->labels, ls->n_labels, &ls->sample, 1);
			if (rc == 0 && cache)
				rc = batch_pend(b, pt->key, pt->key_len, c->names[i].s,
						(uint32_t)c->names[i].len);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void influx_write(const struct ts_http_request *req, struct ts_net_response *resp,
			 struct ts_app *app, int v2)
{
	struct ts_params p;
	ts_params_init(&p);
	struct ts_ingest_ctx *c = ctx_get(app);
	char err[300];
	int status;
	struct outcome o = { 0 };
	if (!c || ts_params_parse(&p, req->query, req->query_len)) {
		status = c ? 400 : 503;
		snprintf(err, sizeof err, "%s", c ? "malformed query string" : "out of memory");
		goto fail;
	}
	if (ts_tenant_of(app, req, &o.tenant, err, sizeof err)) {
		status = 400;
		goto fail;
	}
	const char *prec_s = ts_params_get(&p, "precision", NULL);
	enum ts_lp_precision prec;
	if (ts_lp_precision_parse(prec_s ? prec_s : "", prec_s ? strlen(prec_s) : 0, &prec)) {
		status = 400;
		snprintf(err, sizeof err, "invalid precision \"%.20s\"", prec_s);
		goto fail;
	}
	size_t db_len = 0;
	const char *db = ts_params_get(&p, v2 ? "bucket" : "db", &db_len);
	if (v2 && !db) {
		status = 400;
		snprintf(err, sizeof err, "bucket is required");
		goto fail;
	}
	const char *body;
	size_t len;
	status = gunzip_if_needed(app, c, req, &body, &len, err, sizeof err);
	if (status)
		goto fail;

	uint64_t too_long = long_line(body, len, app->lim.max_line_bytes);
	if (too_long) {
		atomic_fetch_add(&app->limited[TS_LIM_LINE], 1);
		status = 400;
		snprintf(err, sizeof err,
			 "line %llu is longer than the limit of %zu bytes (--max-line-bytes)",
			 (unsigned long long)too_long, app->lim.max_line_bytes);
		goto fail;
	}
	batch_keep(&c->b, body, len); /* the body lives until the request is answered */
	if (lp_scope(app, c, &o.tenant, db, db_len)) {
		status = 503;
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	ts_lp_init(&c->lp, body, len, prec, now_ns());
	struct ts_lp_point pt;
	int rc;
	while ((rc = ts_lp_next(&c->lp, &pt)) != 0) {
		if (rc == TS_EINVALID) {
			parse_error(&o, c->lp.err);
			if (v2)
				break; /* InfluxDB 2.x: the batch fails at its first bad line */
			continue;
		}
		if (rc < 0)
			break;
		if ((rc = lp_add(app, c, &pt, db, db_len, &o)) != 0)
			break;
		/* 1.x stores as it goes; 2.x keeps everything until the body parsed cleanly. */
		if (!v2 && c->b.n_smp >= BATCH_SAMPLES && batch_flush(app, &c->b, &o))
			break;
	}
	ts_lp_fini(&c->lp);
	if (rc < 0 && rc != TS_EINVALID) {
		batch_clear(&c->b);
		status = rc == -ENOMEM ? 503 : 400;
		snprintf(err, sizeof err, "%s",
			 rc == -ENOMEM ? "out of memory" : "point cannot be mapped to series");
		goto fail;
	}
	if (v2 && o.parse_errors) {
		batch_clear(&c->b);
		count_outcome(app, TS_PROTO_INFLUX, &o);
		status = 400;
		snprintf(err, sizeof err, "%s", o.first_parse);
		goto fail;
	}
	batch_flush(app, &c->b, &o);
	batch_clear(&c->b);
	if (rate_reply(app, resp, TS_PROTO_INFLUX, &o)) {
		ts_params_fini(&p);
		ctx_put(app, c);
		return;
	}
	if (o.engine_err) {
		status = ts_app_write_error_status(resp, o.engine_err);
		snprintf(err, sizeof err, "cannot store points: %s", ts_strerror(o.engine_err));
		goto fail;
	}
	count_outcome(app, TS_PROTO_INFLUX, &o);
	uint64_t dropped = n_rejected(&o) + o.r.n_invalid_series + n_limited(&o);
	if (o.parse_errors || dropped) {
		/* Samples outside retention are 422 for 2.x clients, as InfluxDB 2 answers. */
		status = drop_status(resp, &o, v2 && o.r.n_too_old == dropped ? 422 : 400);
		snprintf(err, sizeof err, "partial write: %.200s dropped=%llu",
			 o.parse_errors ? o.first_parse : o.first_msg,
			 (unsigned long long)(dropped + o.parse_errors));
		goto fail;
	}
	ts_params_fini(&p);
	ctx_put(app, c);
	ts_net_response_header(resp, "X-Influxdb-Version", "1.8.10");
	ts_net_respond(resp, 204, NULL, 0);
	return;
fail:
	ts_params_fini(&p);
	if (c)
		ctx_put(app, c);
	influx_error(resp, status, v2, err);
}

static void h_influx_v1(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	influx_write(req, resp, arg, 0);
}

static void h_influx_v2(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	influx_write(req, resp, arg, 1);
}

static void h_ping(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	ts_net_response_header(resp, "X-Influxdb-Version", "1.8.10");
	ts_net_response_header(resp, "X-Influxdb-Build", "OSS");
	ts_net_respond(resp, 204, NULL, 0);
}

/* ---- JSON lines and Prometheus text imports ---- */

static void text_reply(struct ts_net_response *resp, int status, struct ts_sbuf *b)
{
	ts_sbuf_str(b, "\n");
	size_t len;
	char *body = ts_sbuf_take(b, &len);
	ts_net_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	ts_net_respond(resp, status, body, body ? len : 0);
}

static void finish_import(struct ts_app *app, struct ts_ingest_ctx *c, struct ts_net_response *resp,
			  struct outcome *o, enum ts_proto proto, int rc)
{
	struct ts_sbuf b;
	ts_sbuf_init(&b);
	if (rc == 0)
		batch_flush(app, &c->b, o);
	batch_clear(&c->b);
	ctx_put(app, c);
	if (rate_reply(app, resp, proto, o))
		return;
	if (rc < 0 && rc != TS_EINVALID) {
		ts_sbuf_str(&b, rc == -ENOMEM ? "out of memory" : ts_strerror(rc));
		text_reply(resp, rc == -ENOMEM ? 503 : 400, &b);
		return;
	}
	if (o->engine_err) {
		int st = ts_app_write_error_status(resp, o->engine_err);
		ts_sbuf_printf(&b, "cannot store samples: %s", ts_strerror(o->engine_err));
		text_reply(resp, st, &b);
		return;
	}
	count_outcome(app, proto, o);
	if (o->parse_errors || n_rejected(o) || o->r.n_invalid_series || n_limited(o)) {
		if (o->first_parse[0])
			note(o, "%s", o->first_parse);
		summary(&b, o);
		text_reply(resp, drop_status(resp, o, 400), &b);
		return;
	}
	ts_sbuf_fini(&b);
	ts_net_respond(resp, 204, NULL, 0);
}

/* Adds one series to the import batch and appends the batch once it is large. */
static int import_add(struct ts_app *app, struct ts_ingest_ctx *c, struct outcome *o,
		      const struct ts_label *l, uint32_t nl, const struct ts_sample *smp, size_t ns)
{
	int rc = batch_add(&c->b, l, nl, smp, ns);
	if (rc == 0 && c->b.n_smp >= BATCH_SAMPLES)
		rc = batch_flush(app, &c->b, o);
	return rc;
}

/* The start every text import shares: a scratch context and the decoded body. Returns
 * NULL when it already answered (out of memory, bad Content-Encoding or body). */
static struct ts_ingest_ctx *import_begin(struct ts_app *app, const struct ts_http_request *req,
					  struct ts_net_response *resp, struct outcome *o,
					  const char **body, size_t *len)
{
	char err[300];
	int status = 503;
	if (ts_tenant_of(app, req, &o->tenant, err, sizeof err - 1)) {
		strcat(err, "\n");
		ts_net_respond_text(resp, 400, "text/plain", err);
		return NULL;
	}
	snprintf(err, sizeof err, "out of memory\n");
	struct ts_ingest_ctx *c = ctx_get(app);
	if (c) {
		status = gunzip_if_needed(app, c, req, body, len, err, sizeof err);
		if (status == 0)
			return c;
		ctx_put(app, c);
	}
	if (status == 503)
		ts_net_response_header(resp, "Retry-After", "5");
	ts_net_respond_text(resp, status, "text/plain", err);
	return NULL;
}

static void h_import_jsonl(const struct ts_http_request *req, struct ts_net_response *resp,
			   void *arg)
{
	struct ts_app *app = arg;
	struct outcome o = { 0 };
	const char *body;
	size_t len;
	struct ts_ingest_ctx *c = import_begin(app, req, resp, &o, &body, &len);
	if (!c)
		return;
	struct ts_jsonl_parser jp;
	ts_jsonl_init(&jp, body, len);
	struct ts_jsonl_series s;
	int rc;
	while ((rc = ts_jsonl_next(&jp, &s)) != 0) {
		if (rc == TS_EINVALID) {
			/* Like VictoriaMetrics, a bad line is skipped; unlike it, the reply says so. */
			parse_error(&o, jp.err);
			continue;
		}
		if (rc < 0)
			break;
		if ((rc = import_add(app, c, &o, s.labels, s.n_labels, s.samples, s.n_samples)))
			break;
	}
	ts_jsonl_fini(&jp);
	finish_import(app, c, resp, &o, TS_PROTO_JSONL, rc < 0 && rc != TS_EINVALID ? rc : 0);
}

static int64_t now_ms(void)
{
	return now_ns() / 1000000;
}

static void h_import_prom(const struct ts_http_request *req, struct ts_net_response *resp,
			  void *arg)
{
	struct ts_app *app = arg;
	struct outcome o = { 0 };
	char err[300];
	const char *body;
	size_t len;
	struct ts_ingest_ctx *c = import_begin(app, req, resp, &o, &body, &len);
	if (!c)
		return;
	uint64_t too_long = long_line(body, len, app->lim.max_line_bytes);
	if (too_long) {
		atomic_fetch_add(&app->limited[TS_LIM_LINE], 1);
		ctx_put(app, c);
		snprintf(err, sizeof err,
			 "line %llu is longer than the limit of %zu bytes (--max-line-bytes)\n",
			 (unsigned long long)too_long, app->lim.max_line_bytes);
		ts_net_respond_text(resp, 400, "text/plain", err);
		return;
	}
	struct ts_params p;
	ts_params_init(&p);
	int64_t def = now_ms();
	if (ts_params_parse(&p, req->query, req->query_len) == 0) {
		const char *ts = ts_params_get(&p, "timestamp", NULL);
		if (ts)
			def = strtoll(ts, NULL, 10); /* VictoriaMetrics: ms for lines without one */
	}
	ts_params_fini(&p);
	struct ts_expfmt_parser ep;
	ts_expfmt_init(&ep, body, len, def);
	struct ts_expfmt_entry e;
	int rc;
	/* HELP and TYPE of a family arrive as separate entries: merge them. */
	char fam[256] = "";
	struct ts_metadata md = { 0 };
	char help[4096];
	while ((rc = ts_expfmt_next(&ep, &e)) != 0) {
		if (rc == TS_EINVALID) {
			parse_error(&o, ep.err);
			continue;
		}
		if (rc < 0)
			break;
		if (e.kind == TS_EXPFMT_HELP || e.kind == TS_EXPFMT_TYPE) {
			if (e.name_len >= sizeof fam)
				continue;
			if (strlen(fam) != e.name_len || memcmp(fam, e.name, e.name_len) != 0) {
				memcpy(fam, e.name, e.name_len);
				fam[e.name_len] = 0;
				md = (struct ts_metadata){ fam, help, "",	    e.name_len,
							   0,	0,    TS_MT_UNKNOWN };
			}
			if (e.kind == TS_EXPFMT_HELP) {
				md.help_len = e.help_len < sizeof help ? e.help_len
								       : (uint32_t)sizeof help - 1;
				memcpy(help, e.help, md.help_len);
			} else {
				md.type = (enum ts_metric_type)e.type;
			}
			/* Metadata that cannot be kept (invalid UTF-8 help, no memory) does not
			 * fail the samples; senders repeat it with every scrape. */
			(void)ts_db_set_metadata(app->db, &md, 1);
			continue;
		}
		if ((rc = import_add(app, c, &o, e.labels, e.n_labels, &e.sample, 1)))
			break;
	}
	ts_expfmt_fini(&ep);
	finish_import(app, c, resp, &o, TS_PROTO_PROMTEXT, rc < 0 && rc != TS_EINVALID ? rc : 0);
}

int ts_ingest_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "POST", "/api/v1/write", 0, h_remote_write, "remote_write" },
		{ "POST", "/api/v1/push", 0, h_remote_write, "remote_write" },
		{ "POST", "/write", 0, h_influx_v1, "influx_write" },
		{ "POST", "/api/v2/write", 0, h_influx_v2, "influx_write_v2" },
		{ "GET", "/ping", 0, h_ping, "ping" },
		{ "HEAD", "/ping", 0, h_ping, "ping" },
		{ "POST", "/api/v1/import", 0, h_import_jsonl, "import" },
		{ "POST", "/api/v1/import/prometheus", 0, h_import_prom, "import_prometheus" },
	};
	/* 64 MiB holds the line protocol keys of 1.4M series of 10 fields per line. */
	if (!app->refs && !(app->refs = ts_refcache_new(64u << 20)))
		return -ENOMEM;
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
