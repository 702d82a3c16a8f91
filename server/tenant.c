/*
 * tenant.c - tenants (tenant.h): the request's tenant, and the label and matcher that
 * keep tenants apart.
 */
#include "server/tenant.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int ts_tenant_of(const struct ts_app *app, const struct ts_http_request *req, struct ts_tenant *t,
		 char *msg, size_t msg_len)
{
	memset(t, 0, sizeof *t);
	if (!app->tenant_header)
		return 0;
	t->on = 1;
	size_t n = 0;
	const char *v = ts_http_request_header(req, app->tenant_header, &n);
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
		  struct ts_tenant_batch *b, const struct ts_series_in **out)
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
