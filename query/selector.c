/*
 * selector.c - series selectors (see selector.h): Prometheus' ParseMetricSelector on top
 * of the PromQL parser, the union of several selections sorted by labels, and matcher
 * injection into every vector selector of a query.
 *
 * A parsed selector keeps its syntax tree alive because the matchers point into it;
 * a union keeps its series sets alive because the refs point into them.
 */
#include "query/selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/ast.h"
#include "query/promql.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

int ts_selector_parse(struct ts_selector *s, const char *sel, size_t len, char *msg, size_t msg_len)
{
	memset(s, 0, sizeof *s);
	struct ts_ast *t = NULL;
	struct ts_promql_error pe;
	int rc = ts_promql_parse(sel, len, &t, &pe);
	if (rc == TS_EINVALID) {
		ts_promql_error_format(sel, len, &pe, msg, msg_len);
		return rc;
	}
	if (rc)
		return rc;
	/* Prometheus' ParseMetricSelector reads a bare selector and nothing else. */
	if (t->kind != TS_AST_VECTOR_SELECTOR || t->vs.offset_ms || t->vs.at != TS_AT_NONE) {
		snprintf(msg, msg_len,
			 "1:1: parse error: expected a series selector like "
			 "'up{job=\"x\"}', got %s",
			 t->kind == TS_AST_VECTOR_SELECTOR   ? "a selector with a modifier"
			 : t->kind == TS_AST_MATRIX_SELECTOR ? "a range vector"
							     : "an expression");
		ts_ast_free(t);
		return TS_EINVALID;
	}
	s->m = ts_calloc(t->vs.n_matchers ? t->vs.n_matchers : 1, sizeof *s->m);
	if (!s->m) {
		ts_ast_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->vs.n_matchers; i++) {
		const struct ts_ast_matcher *am = &t->vs.matchers[i];
		if (strlen(am->value) != am->value_len) {
			snprintf(msg, msg_len, "label matcher value of %s contains a NUL byte",
				 am->name);
			ts_free(s->m);
			s->m = NULL;
			ts_ast_free(t);
			return TS_EINVALID;
		}
		s->m[i] = (struct ts_matcher){ (enum ts_match_type)am->type, am->name, am->value };
	}
	s->n = t->vs.n_matchers;
	s->ts__tree = t;
	return 0;
}

void ts_selector_fini(struct ts_selector *s)
{
	if (!s)
		return;
	ts_free(s->m);
	ts_ast_free(s->ts__tree);
	memset(s, 0, sizeof *s);
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ts_selector_ref *x = a, *y = b;
	return ts_labels_cmp(x->labels, x->n_labels, y->labels, y->n_labels);
}

int ts_selector_union(struct ts_db *db, const struct ts_selector *sel, size_t n, int64_t mint,
		      int64_t maxt, bool need_chunks, struct ts_selector_union *u, char *msg,
		      size_t msg_len)
{
	memset(u, 0, sizeof *u);
	int rc = 0;
	u->sets = ts_calloc(n ? n : 1, sizeof *u->sets);
	if (!u->sets)
		return -ENOMEM;
	size_t total = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = ts_db_select(db, sel[i].m, sel[i].n, mint, maxt, NULL, &u->sets[i], msg,
				  msg_len);
		if (rc == 0) {
			u->n_sets++;
			total += ts_series_set_len(u->sets[i]);
		}
	}
	if (rc == 0 && total) {
		u->refs = ts_malloc(total * sizeof *u->refs);
		if (!u->refs)
			rc = -ENOMEM;
	}
	for (size_t k = 0; rc == 0 && k < u->n_sets; k++)
		for (size_t i = 0; rc == 0 && i < ts_series_set_len(u->sets[k]); i++) {
			struct ts_selector_ref *r = &u->refs[u->n_refs++];
			r->set = u->sets[k];
			r->i = i;
			rc = ts_series_set_labels(u->sets[k], i, &r->labels, &r->n_labels);
		}
	if (rc == 0 && need_chunks) {
		size_t w = 0;
		for (size_t i = 0; rc == 0 && i < u->n_refs; i++) {
			rc = ts_series_set_has_data(u->refs[i].set, u->refs[i].i);
			if (rc == 1) {
				u->refs[w++] = u->refs[i];
				rc = 0;
			}
		}
		u->n_refs = w;
	}
	/* One set is sorted and distinct already; several are merged. */
	if (rc == 0 && u->n_sets > 1 && u->n_refs > 1) {
		qsort(u->refs, u->n_refs, sizeof *u->refs, ref_cmp);
		size_t w = 1;
		for (size_t i = 1; i < u->n_refs; i++)
			if (ref_cmp(&u->refs[w - 1], &u->refs[i]) != 0)
				u->refs[w++] = u->refs[i];
		u->n_refs = w;
	}
	if (rc)
		ts_selector_union_fini(u);
	return rc;
}

void ts_selector_union_fini(struct ts_selector_union *u)
{
	ts_free(u->ts__dedup_labels);
	for (size_t i = 0; u->sets && i < u->n_sets; i++)
		ts_series_set_free(u->sets[i]);
	ts_free(u->sets);
	ts_free(u->refs);
	memset(u, 0, sizeof *u);
}

/* Appends m[0..n) to every vector selector under node. 0 or -ENOMEM. */
static int inject(struct ts_ast *node, const struct ts_matcher *m, size_t n)
{
	if (!node || !n)
		return 0;
	int rc = 0;
	switch (node->kind) {
	case TS_AST_VECTOR_SELECTOR: {
		struct ts_ast_matcher *v = ts_realloc(node->vs.matchers,
						      (node->vs.n_matchers + n) * sizeof *v);
		if (!v)
			return -ENOMEM;
		node->vs.matchers = v;
		for (size_t i = 0; i < n; i++) {
			struct ts_ast_matcher *x = &v[node->vs.n_matchers];
			memset(x, 0, sizeof *x);
			x->type = (int)m[i].type;
			x->name = ts_strndup(m[i].name, strlen(m[i].name));
			x->value_len = strlen(m[i].value);
			x->value = ts_strndup(m[i].value, x->value_len);
			/* Only printed, never evaluated from this tree: the evaluator parses the
			 * printed text and derives this itself. */
			x->matches_empty = x->value_len == 0;
			node->vs.n_matchers++; /* counted at once so ts_ast_free frees it */
			if (!x->name || !x->value)
				return -ENOMEM;
		}
		return 0;
	}
	case TS_AST_MATRIX_SELECTOR: return inject(node->matrix.vs, m, n);
	case TS_AST_SUBQUERY: return inject(node->subquery.expr, m, n);
	case TS_AST_BINARY:
		rc = inject(node->binary.lhs, m, n);
		return rc ? rc : inject(node->binary.rhs, m, n);
	case TS_AST_AGGREGATE:
		rc = inject(node->aggregate.param, m, n);
		return rc ? rc : inject(node->aggregate.expr, m, n);
	case TS_AST_CALL:
		for (size_t i = 0; i < node->call.n_args && rc == 0; i++)
			rc = inject(node->call.args[i], m, n);
		return rc;
	case TS_AST_PAREN: return inject(node->paren.expr, m, n);
	case TS_AST_UNARY: return inject(node->unary.expr, m, n);
	case TS_AST_NUMBER:
	case TS_AST_STRING: break;
	}
	return 0;
}

int ts_selector_add_matchers(const char *q, size_t len, const struct ts_matcher *m, size_t n,
			     char **out, char *msg, size_t msg_len)
{
	struct ts_ast *t = NULL;
	struct ts_promql_error pe;
	*out = NULL;
	int rc = ts_promql_parse(q, len, &t, &pe);
	if (rc) {
		if (rc == TS_EINVALID)
			ts_promql_error_format(q, len, &pe, msg, msg_len);
		else
			snprintf(msg, msg_len, "out of memory");
		return rc;
	}
	rc = inject(t, m, n);
	if (rc == 0)
		rc = ts_ast_print(t, out);
	ts_ast_free(t);
	if (rc)
		snprintf(msg, msg_len, "out of memory");
	return rc;
}
