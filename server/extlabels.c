/*
 * extlabels.c - external labels (extlabels.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/extlabels.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

bool ts_ext_valid_name(const char *s)
{
	return valid_name(s, strlen(s));
}

int ts_ext_parse(const char *arg, struct ts_label **l, size_t *n, char *msg, size_t msg_len)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(msg, msg_len, "\"%s\" is not NAME=VALUE", arg);
		return TS_EINVALID;
	}
	size_t nl = (size_t)(eq - arg);
	if (!valid_name(arg, nl) || (nl >= 2 && arg[0] == '_' && arg[1] == '_')) {
		snprintf(msg, msg_len, "\"%.*s\" is not a label name (or is reserved)", (int)nl,
			 arg);
		return TS_EINVALID;
	}
	size_t pos = 0;
	for (; pos < *n; pos++) {
		int c = name_cmp(arg, nl, (*l)[pos].name, (*l)[pos].name_len);
		if (c == 0) {
			snprintf(msg, msg_len, "external label %.*s given twice", (int)nl, arg);
			return TS_EINVALID;
		}
		if (c < 0)
			break;
	}
	struct ts_label *a = ts_realloc(*l, (*n + 1) * sizeof *a);
	if (!a)
		return -ENOMEM;
	memmove(a + pos + 1, a + pos, (*n - pos) * sizeof *a);
	a[pos] = (struct ts_label){ arg, eq + 1, (uint32_t)nl, (uint32_t)strlen(eq + 1) };
	*l = a;
	(*n)++;
	return 0;
}

int ts_ext_matchers(const struct ts_app *app, const struct ts_matcher *m, size_t n,
		    struct ts_matcher **out, size_t *n_out, bool *none, char *msg, size_t msg_len)
{
	*none = false;
	*n_out = 0;
	*out = ts_malloc((n ? n : 1) * sizeof **out);
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct ts_label *e = NULL;
		size_t ml = strlen(m[i].name);
		for (size_t k = 0; k < app->n_ext_labels && !e; k++)
			if (!name_cmp(m[i].name, ml, app->ext_labels[k].name,
				      app->ext_labels[k].name_len))
				e = &app->ext_labels[k];
		if (!e) {
			(*out)[(*n_out)++] = m[i];
			continue;
		}
		int rc = ts_matcher_match(&m[i], e->value, e->value_len, msg, msg_len);
		if (rc < 0) { /* a bad regex, or one past its limits on the value: invalid */
			ts_free(*out);
			*out = NULL;
			return rc == TS_ELIMIT ? TS_EINVALID : rc;
		}
		if (rc == 0)
			*none = true;
	}
	return 0;
}

int ts_ext_merge(const struct ts_app *app, const struct ts_label *l, size_t n,
		 struct ts_label **out, size_t *cap, size_t *n_out)
{
	size_t ne = app->n_ext_labels;
	if (ts_grow((void **)out, cap, n + ne ? n + ne : 1, sizeof **out))
		return -ENOMEM;
	const struct ts_label *e = app->ext_labels;
	size_t i = 0, k = 0, o = 0;
	while (i < n || k < ne) {
		int c = i == n	  ? 1
			: k == ne ? -1
				  : name_cmp(l[i].name, l[i].name_len, e[k].name, e[k].name_len);
		if (c < 0) {
			(*out)[o++] = l[i++];
		} else {
			(*out)[o++] = e[k++];
			i += c == 0; /* the external label replaces the stored one */
		}
	}
	*n_out = o;
	return 0;
}

struct order_ctx {
	const struct ts_app *app;
	const struct ts_series_set *set;
	struct ts_label *a, *b;
	size_t cap_a, cap_b;
	int oom;
};

static int by_merged(const void *x, const void *y, void *arg)
{
	struct order_ctx *o = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	const struct ts_label *li, *lj;
	uint32_t ni, nj;
	size_t mi = 0, mj = 0;
	if (ts_series_set_labels(o->set, i, &li, &ni) || ts_series_set_labels(o->set, j, &lj, &nj))
		return 0;
	if (ts_ext_merge(o->app, li, ni, &o->a, &o->cap_a, &mi) ||
	    ts_ext_merge(o->app, lj, nj, &o->b, &o->cap_b, &mj)) {
		o->oom = 1;
		return 0;
	}
	int c = ts_labels_cmp(o->a, (uint32_t)mi, o->b, (uint32_t)mj);
	return c ? c : (i > j) - (i < j);
}

int ts_ext_order(const struct ts_app *app, const struct ts_series_set *set, size_t **perm)
{
	size_t n = ts_series_set_len(set);
	*perm = ts_malloc((n ? n : 1) * sizeof **perm);
	if (!*perm)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		(*perm)[i] = i;
	if (!app->n_ext_labels || n < 2)
		return 0;
	struct order_ctx o = { .app = app, .set = set };
	qsort_r(*perm, n, sizeof **perm, by_merged, &o);
	ts_free(o.a);
	ts_free(o.b);
	if (o.oom) {
		ts_free(*perm);
		*perm = NULL;
		return -ENOMEM;
	}
	return 0;
}
