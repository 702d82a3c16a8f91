/*
 * tenant.c - tenants (tenant.h): the request's tenant, and the label and matcher that
 * keep tenants apart.
 */
#include "server/tenant.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "storage/err.h"
#include "storage/mem.h"

int ts_tenant_valid(const char *s, size_t n)
{
	static const char extra[] = "!-_.*'()";
	if (n == 0 || n > TS_TENANT_MAX)
		return 0;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return 0;
	}
	return 1;
}

int ts_tenant_named(const struct ts_app *app, const char *v, size_t n, struct ts_tenant *t,
		    char *msg, size_t msg_len)
{
	memset(t, 0, sizeof *t);
	if (!app->tenant_header)
		return 0;
	t->on = 1;
	if (!v || n == 0) {
		v = app->default_tenant;
		n = strlen(v);
	} else if (!ts_tenant_valid(v, n)) {
		snprintf(msg, msg_len,
			 "invalid tenant in header %s: 1 to %d bytes of letters, digits and "
			 "!-_.*'() (not . or ..)",
			 app->tenant_header, TS_TENANT_MAX);
		return TS_EINVALID;
	}
	memcpy(t->name, v, n);
	t->name[n] = 0;
	t->is_default = !strcmp(t->name, app->default_tenant);
	t->m = (struct ts_matcher){ TS_MATCH_EQ, TS_TENANT_LABEL, t->is_default ? "" : t->name };
	return 0;
}

int ts_tenant_of(const struct ts_app *app, const struct ts_http_request *req, struct ts_tenant *t,
		 char *msg, size_t msg_len)
{
	size_t n = 0;
	const char *v = app->tenant_header ? ts_http_request_header(req, app->tenant_header, &n)
					   : NULL;
	return ts_tenant_named(app, v, n, t, msg, msg_len);
}

int ts_tenant_scope(const struct ts_tenant *t, struct ts_selector *sel, size_t n)
{
	if (!t->on)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct ts_matcher *m = ts_malloc((sel[i].n + 1) * sizeof *m);
		if (!m)
			return -ENOMEM;
		if (sel[i].n)
			memcpy(m, sel[i].m, sel[i].n * sizeof *m);
		m[sel[i].n] = t->m;
		ts_free(sel[i].m);
		sel[i].m = m;
		sel[i].n++;
	}
	return 0;
}

int ts_tenant_matchers(const struct ts_tenant *t, const struct ts_matcher *m, size_t n,
		       struct ts_matcher **out, const struct ts_matcher **use, size_t *n_out)
{
	*out = NULL;
	*use = m;
	*n_out = n;
	if (!t->on)
		return 0;
	struct ts_matcher *v = ts_malloc((n + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	if (n)
		memcpy(v, m, n * sizeof *v);
	v[n] = t->m;
	*out = v;
	*use = v;
	*n_out = n + 1;
	return 0;
}

int ts_tenant_tag(const struct ts_tenant *t, const struct ts_series_in *in, size_t n,
		  const ts_series_ref *refs, struct ts_tenant_batch *b,
		  const struct ts_series_in **out)
{
	*out = in;
	if (!t->on || n == 0)
		return 0;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += in[i].n_labels + 1;
	if (ts_grow((void **)&b->in, &b->cap_in, n, sizeof *b->in) ||
	    ts_grow((void **)&b->lab, &b->cap_lab, total, sizeof *b->lab))
		return -ENOMEM;
	size_t k = 0;
	const uint32_t tl = (uint32_t)strlen(TS_TENANT_LABEL);
	for (size_t i = 0; i < n; i++) {
		struct ts_label *l = b->lab + k;
		uint32_t m = 0;
		if (refs && refs[i]) {
			b->in[i] = in[i];
			continue;
		}
		for (uint32_t j = 0; j < in[i].n_labels; j++) {
			const struct ts_label *x = &in[i].labels[j];
			if (x->name_len == tl && !memcmp(x->name, TS_TENANT_LABEL, tl))
				continue; /* a client may not pick its tenant by label */
			l[m++] = *x;
		}
		if (!t->is_default)
			l[m++] = (struct ts_label){ TS_TENANT_LABEL, t->name, tl,
						    (uint32_t)strlen(t->name) };
		b->in[i] = in[i];
		b->in[i].labels = l;
		b->in[i].n_labels = m;
		k += m;
	}
	*out = b->in;
	return 0;
}

void ts_tenant_batch_fini(struct ts_tenant_batch *b)
{
	ts_free(b->in);
	ts_free(b->lab);
	memset(b, 0, sizeof *b);
}

int ts_tenant_query(const struct ts_tenant *t, const char *q, size_t len, char **out, char *msg,
		    size_t msg_len)
{
	*out = NULL;
	if (!t->on)
		return 0;
	return ts_selector_add_matchers(q, len, &t->m, 1, out, msg, msg_len);
}

/* ---- ingestion rate per tenant ---- */

struct bucket {
	char name[TS_TENANT_MAX + 1]; /* "" empty slot; "\x01" the single tenant of no tenancy */
	double tokens;
	uint64_t last_ns;
};

struct ts_tenant_rates {
	pthread_mutex_t mu;
	double rate; /* samples per second, also the burst */
	struct bucket *v;
	size_t cap, n;
};

int ts_tenant_rates_new(double rate, struct ts_tenant_rates **out)
{
	struct ts_tenant_rates *r = ts_calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->rate = rate;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void ts_tenant_rates_free(struct ts_tenant_rates *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	ts_free(r->v);
	ts_free(r);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* The bucket of `name` (mu held), created full; NULL on out of memory. */
static struct bucket *bucket_of(struct ts_tenant_rates *r, const char *name, uint64_t now)
{
	if (r->n * 2 >= r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct bucket *v = ts_calloc(cap, sizeof *v);
		if (!v)
			return NULL;
		for (size_t i = 0; i < r->cap; i++)
			if (r->v[i].name[0]) {
				size_t j = name_hash(r->v[i].name) & (cap - 1);
				while (v[j].name[0])
					j = (j + 1) & (cap - 1);
				v[j] = r->v[i];
			}
		ts_free(r->v);
		r->v = v;
		r->cap = cap;
	}
	size_t j = name_hash(name) & (r->cap - 1);
	while (r->v[j].name[0] && strcmp(r->v[j].name, name))
		j = (j + 1) & (r->cap - 1);
	if (!r->v[j].name[0]) {
		snprintf(r->v[j].name, sizeof r->v[j].name, "%s", name);
		r->v[j].tokens = r->rate;
		r->v[j].last_ns = now;
		r->n++;
	}
	return &r->v[j];
}

int ts_tenant_rate_take(struct ts_tenant_rates *r, const struct ts_tenant *t, uint64_t n,
			double *retry_s)
{
	*retry_s = 0;
	if (!r || n == 0)
		return 1;
	uint64_t now = mono_ns();
	pthread_mutex_lock(&r->mu);
	struct bucket *b = bucket_of(r, t->on ? t->name : "\x01", now);
	int ok = 1;
	if (b) {
		b->tokens += (double)(now - b->last_ns) / 1e9 * r->rate;
		if (b->tokens > r->rate)
			b->tokens = r->rate;
		b->last_ns = now;
		/* A full bucket admits any one request (its debt is paid before the next). */
		if (b->tokens >= (double)n || b->tokens >= r->rate) {
			b->tokens -= (double)n;
		} else {
			ok = 0;
			*retry_s = ((double)n - b->tokens) / r->rate;
			if (*retry_s > 1.0 + (double)n / r->rate)
				*retry_s = 1.0 + (double)n / r->rate;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return ok;
}

/* ---- per-tenant counters for /metrics ---- */

struct counts_entry {
	char name[TS_TENANT_MAX + 1]; /* "" empty slot */
	uint64_t samples, series_refused;
	uint64_t limited[TS_LIM_N];
};

struct ts_tenant_counts {
	pthread_mutex_t mu;
	struct counts_entry *v;
	size_t cap, n;
};

int ts_tenant_counts_new(struct ts_tenant_counts **out)
{
	struct ts_tenant_counts *c = ts_calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void ts_tenant_counts_free(struct ts_tenant_counts *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	ts_free(c->v);
	ts_free(c);
}

/* The entry of name (mu held), created; NULL on out of memory. */
static struct counts_entry *counts_of(struct ts_tenant_counts *c, const char *name)
{
	if (c->n * 2 >= c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct counts_entry *v = ts_calloc(cap, sizeof *v);
		if (!v)
			return NULL;
		for (size_t i = 0; i < c->cap; i++)
			if (c->v[i].name[0]) {
				size_t j = name_hash(c->v[i].name) & (cap - 1);
				while (v[j].name[0])
					j = (j + 1) & (cap - 1);
				v[j] = c->v[i];
			}
		ts_free(c->v);
		c->v = v;
		c->cap = cap;
	}
	size_t j = name_hash(name) & (c->cap - 1);
	while (c->v[j].name[0] && strcmp(c->v[j].name, name))
		j = (j + 1) & (c->cap - 1);
	if (!c->v[j].name[0]) {
		snprintf(c->v[j].name, sizeof c->v[j].name, "%s", name);
		c->n++;
	}
	return &c->v[j];
}

void ts_tenant_count(struct ts_tenant_counts *c, const struct ts_tenant *t, uint64_t samples,
		     uint64_t series_refused, int limit)
{
	if (!c || !t->on)
		return;
	pthread_mutex_lock(&c->mu);
	struct counts_entry *e = counts_of(c, t->name);
	if (e) {
		e->samples += samples;
		e->series_refused += series_refused;
		if (limit >= 0 && limit < TS_LIM_N)
			e->limited[limit]++;
	}
	pthread_mutex_unlock(&c->mu);
}

void ts_tenant_counts_each(struct ts_tenant_counts *c,
			   void (*fn)(void *arg, const char *tenant, uint64_t samples,
				      uint64_t series_refused, const uint64_t *limited),
			   void *arg)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->cap; i++)
		if (c->v[i].name[0])
			fn(arg, c->v[i].name, c->v[i].samples, c->v[i].series_refused,
			   c->v[i].limited);
	pthread_mutex_unlock(&c->mu);
}
