/*
 * engine.c - the PromQL evaluator's core: ts_query_instant/ts_query_range, the
 * node dispatcher, selectors, subqueries and the per-step driver, following
 * Prometheus 2.42 (promql/engine.go) semantics.
 *
 * Design. Every node is evaluated over all steps of its evaluator at once (a
 * struct qev: start, end, interval) into a step matrix (see qvalue.h), as
 * Prometheus' rangeEval does; an instant query is one step with interval 1.
 *   - Vector selector: series are selected once for [first ref - lookback, last ref]
 *     and each series' iterator walks forward through the steps. A step's value is
 *     the newest sample with ref - lookback <= t <= ref (2.42 closes both ends),
 *     unless that sample is a stale marker. ref = step - offset, or @ - offset.
 *   - Functions of range vectors (eval_func.c) slide a window [ref - range, ref]
 *     (closed) along each series, stale markers dropped, without materialising it.
 *   - Subquery: the inner expression runs in its own evaluator whose steps are the
 *     multiples of the subquery step (default 1 m, the global evaluation interval)
 *     in [start - offset - range, end - offset], truncating division as Go does.
 *   - @ start()/end() resolve to the query's start/end. A node under @ yields the
 *     same values at every step, which is what Prometheus' step-invariant
 *     evaluation computes; timestamp(x @ t offset o) ignores o like 2.42 does.
 *   - Operators, aggregations and vector functions go through ts__q_range_eval():
 *     per step, instant vectors in, a vector out, merged into output series.
 * Limits: samples held (points of live step matrices and windows) are counted
 * against max_samples; the clock and the cancel flag are checked every 1024 checks.
 * Results: instant vectors keep evaluation order (sort() orders them), range
 * results are sorted by labels; a range query of a scalar is one series without
 * labels. Errors carry Prometheus' messages and types.
 *
 * Native-histogram functions (histogram_count/sum/fraction) return nothing, as
 * Prometheus does for float samples. Known deviations: 422 for predict_linear() of
 * a subquery with @ in a range query (2.42 moves that window oddly); sort order of
 * ties beyond 12 elements (Go's pdqsort is not stable; ours is); label_replace
 * regexes run on PCRE2, not RE2 (same for the RE2 syntax the parser accepts).
 */
#include "query/engine.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/promql.h"
#include "query/qvalue.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

#define DEFAULT_LOOKBACK_MS (5 * 60 * 1000)
#define DEFAULT_TIMEOUT_MS (2 * 60 * 1000)
#define DEFAULT_MAX_SAMPLES 50000000ULL
#define DEFAULT_MAX_POINTS 11000
#define DEFAULT_SUBQUERY_STEP_MS 60000

/* ---- context helpers ---- */

int ts__q_fail(struct qctx *c, int rc, enum ts_qerr_type type, const char *fmt, ...)
{
	if (c->err->type == TS_QERR_NONE) {
		va_list ap;
		c->err->type = type;
		va_start(ap, fmt);
		vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int ts__q_nomem(struct qctx *c)
{
	return ts__q_fail(c, -ENOMEM, TS_QERR_INTERNAL, "out of memory");
}

int ts__q_too_many_samples(struct qctx *c)
{
	return ts__q_fail(
		c, TS_ELIMIT, TS_QERR_EXECUTION,
		"query processing would load too many samples into memory in query execution");
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ts__q_check(struct qctx *c)
{
	if ((++c->tick & 1023) != 0)
		return 0;
	if (c->canceled && *c->canceled)
		return ts__q_fail(c, -ECANCELED, TS_QERR_CANCELED,
				  "query was canceled in expression evaluation");
	if (now_ns() > c->deadline_ns)
		return ts__q_fail(c, -ETIMEDOUT, TS_QERR_TIMEOUT,
				  "query timed out in expression evaluation");
	return 0;
}

int ts__q_hold(struct qctx *c, size_t n)
{
	c->cur_samples += n;
	if (c->cur_samples > c->max_samples)
		return ts__q_too_many_samples(c);
	return 0;
}

void ts__q_release(struct qctx *c, size_t n)
{
	c->cur_samples = c->cur_samples > n ? c->cur_samples - n : 0;
}

/* ---- matrices and vectors ---- */

int ts__qm_add_series(struct qctx *c, struct qmatrix *m, const struct ts_label *lab, uint32_t n_lab,
		      bool copy_labels, struct qseries **out)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct qseries *p = ts_realloc(m->s, cap * sizeof *p);
		if (!p)
			return ts__q_nomem(c);
		m->s = p;
		m->cap = cap;
	}
	struct qseries *s = &m->s[m->n];
	memset(s, 0, sizeof *s);
	if (copy_labels) {
		int rc = ts__ql_copy(c, &c->perm, lab, n_lab, &s->lab);
		if (rc)
			return rc;
	} else {
		s->lab = (struct ts_label *)lab;
	}
	s->n_lab = n_lab;
	m->n++;
	*out = s;
	return 0;
}

int ts__qs_push(struct qctx *c, struct qseries *s, int64_t t, double v)
{
	if (s->n_pts == s->cap_pts) {
		size_t cap = s->cap_pts ? s->cap_pts * 2 : 8;
		struct ts_qpoint *p = ts_realloc(s->pts, cap * sizeof *p);
		if (!p)
			return ts__q_nomem(c);
		s->pts = p;
		s->cap_pts = cap;
	}
	s->pts[s->n_pts++] = (struct ts_qpoint){ t, v };
	return ts__q_hold(c, 1);
}

void ts__qm_fini(struct qctx *c, struct qmatrix *m)
{
	for (size_t i = 0; i < m->n; i++) {
		ts__q_release(c, m->s[i].n_pts);
		ts_free(m->s[i].pts);
	}
	ts_free(m->s);
	memset(m, 0, sizeof *m);
}

void ts__q_value_fini(struct qctx *c, struct qvalue *v)
{
	if (!v)
		return;
	ts__qm_fini(c, &v->m);
}

int ts__qv_push(struct qctx *c, struct qvector *v, const struct ts_label *lab, uint32_t n_lab,
		int64_t t, double val)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct qsample *p = ts_realloc(v->s, cap * sizeof *p);
		if (!p)
			return ts__q_nomem(c);
		v->s = p;
		v->cap = cap;
	}
	v->s[v->n++] = (struct qsample){ lab, n_lab, t, val };
	return 0;
}

void ts__qv_fini(struct qvector *v)
{
	ts_free(v->s);
	memset(v, 0, sizeof *v);
}

static void ev_init(struct qev *ev, struct qctx *c, int64_t start, int64_t end, int64_t interval)
{
	ev->c = c;
	ev->start = start;
	ev->end = end;
	ev->interval = interval;
	ev->n_steps = end >= start ? (size_t)((end - start) / interval) + 1 : 0;
}

int ts__q_scalar_new(struct qev *ev, struct qvalue *out)
{
	memset(out, 0, sizeof *out);
	out->type = TS_VT_SCALAR;
	struct qseries *s;
	int rc = ts__qm_add_series(ev->c, &out->m, NULL, 0, false, &s);
	if (rc)
		return rc;
	s->pts = ts_malloc((ev->n_steps ? ev->n_steps : 1) * sizeof *s->pts);
	if (!s->pts)
		return ts__q_nomem(ev->c);
	s->cap_pts = ev->n_steps ? ev->n_steps : 1;
	for (size_t k = 0; k < ev->n_steps; k++)
		s->pts[k] = (struct ts_qpoint){ ev->start + (int64_t)k * ev->interval, 0 };
	s->n_pts = ev->n_steps;
	return ts__q_hold(ev->c, ev->n_steps);
}

/* ---- the per-step driver ---- */

int ts__q_range_eval(struct qev *ev, struct qvalue **in, size_t n_in, ts__qstep_fn fn, void *arg,
		     struct qvalue *out)
{
	struct qctx *c = ev->c;
	int rc = 0;
	struct qvector *vecs = ts_calloc(n_in ? n_in : 1, sizeof *vecs);
	size_t **cur = ts_calloc(n_in ? n_in : 1, sizeof *cur);
	struct qvector res = { 0 };
	struct qmap map = { 0 };
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	if (!vecs || !cur) {
		rc = ts__q_nomem(c);
		goto out;
	}
	for (size_t i = 0; i < n_in; i++) {
		if (!in[i] || in[i]->type == TS_VT_STRING)
			continue;
		cur[i] = ts_calloc(in[i]->m.n ? in[i]->m.n : 1, sizeof **cur);
		if (!cur[i]) {
			rc = ts__q_nomem(c);
			goto out;
		}
	}
	for (size_t k = 0; k < ev->n_steps; k++) {
		int64_t ts = ev->start + (int64_t)k * ev->interval;
		if ((rc = ts__q_check(c)))
			goto out;
		ts__qa_reset(&c->scratch);
		for (size_t i = 0; i < n_in; i++) {
			vecs[i].n = 0;
			if (!cur[i])
				continue;
			const struct qmatrix *m = &in[i]->m;
			for (size_t s = 0; s < m->n; s++) {
				const struct qseries *se = &m->s[s];
				size_t p = cur[i][s];
				if (p < se->n_pts && se->pts[p].t_ms == ts) {
					rc = ts__qv_push(c, &vecs[i], se->lab, se->n_lab, ts,
							 se->pts[p].v);
					if (rc)
						goto out;
					cur[i][s] = p + 1;
				}
			}
		}
		res.n = 0;
		if ((rc = fn(ev, arg, vecs, ts, &res)))
			goto out;
		for (size_t j = 0; j < res.n; j++) {
			const struct qsample *smp = &res.s[j];
			int64_t klen = ts__ql_key(c, smp->lab, smp->n_lab, 0, NULL, 0);
			if (klen < 0) {
				rc = (int)klen;
				goto out;
			}
			size_t idx = ts__qmap_find(&map, c->kbuf, (size_t)klen);
			struct qseries *se;
			if (idx == TS__QMAP_NONE) {
				char *key = ts__qa_strndup(&c->perm, c->kbuf, (size_t)klen);
				if (!key) {
					rc = ts__q_nomem(c);
					goto out;
				}
				if ((rc = ts__qmap_put(&map, key, (size_t)klen, out->m.n))) {
					rc = ts__q_nomem(c);
					goto out;
				}
				if ((rc = ts__qm_add_series(c, &out->m, smp->lab, smp->n_lab, true,
							    &se)))
					goto out;
			} else {
				se = &out->m.s[idx];
				if (se->n_pts && se->pts[se->n_pts - 1].t_ms == ts) {
					rc = TS__Q_EXEC(
						c,
						"vector cannot contain metrics with the same labelset");
					goto out;
				}
			}
			if ((rc = ts__qs_push(c, se, ts, smp->v)))
				goto out;
		}
	}
out:
	for (size_t i = 0; i < n_in && cur; i++)
		ts_free(cur[i]);
	ts_free(cur);
	for (size_t i = 0; i < n_in && vecs; i++)
		ts__qv_fini(&vecs[i]);
	ts_free(vecs);
	ts__qv_fini(&res);
	ts__qmap_fini(&map);
	ts__qa_reset(&c->scratch);
	return rc;
}

/* ---- selectors ---- */

static int64_t at_time(const struct qctx *c, enum ts_at at, int64_t at_ms)
{
	switch (at) {
	case TS_AT_START: return c->q_start;
	case TS_AT_END: return c->q_end;
	default: return at_ms;
	}
}

/* Selects the series of vector selector vs that may have samples in [mint, maxt]. */
static int select_series(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
			 struct ts_series_set **set)
{
	size_t n = vs->vs.n_matchers;
	struct ts_matcher *m = ts_calloc(n ? n : 1, sizeof *m);
	if (!m)
		return ts__q_nomem(c);
	for (size_t i = 0; i < n; i++) {
		const struct ts_ast_matcher *am = &vs->vs.matchers[i];
		m[i].type = am->type;
		m[i].name = am->name;
		m[i].value = am->value;
	}
	char msg[256] = "";
	int rc = ts_db_select(c->db, m, n, mint, maxt, set, msg, sizeof msg);
	ts_free(m);
	if (rc == -ENOMEM)
		return ts__q_nomem(c);
	if (rc == TS_EINVALID)
		return ts__q_fail(c, rc, TS_QERR_EXECUTION, "%s", msg[0] ? msg : "invalid matcher");
	if (rc)
		return ts__q_fail(c, rc, TS_QERR_INTERNAL, "expanding series: %s", ts_strerror(rc));
	return 0;
}

int ts__q_select(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
		 struct ts_series_set **set);
int ts__q_select(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
		 struct ts_series_set **set)
{
	return select_series(c, vs, mint, maxt, set);
}

int ts__q_iter_err(struct qctx *c, int rc);
int ts__q_iter_err(struct qctx *c, int rc)
{
	if (rc == -ENOMEM)
		return ts__q_nomem(c);
	return ts__q_fail(c, rc, TS_QERR_INTERNAL, "reading samples: %s", ts_strerror(rc));
}

/* The newest sample of `it` at or before each ref, walking forward. */
struct lookback_walk {
	struct qbuf *b;
	bool have_cur, have_prev;
	int64_t cur_t, prev_t;
	double cur_v, prev_v;
};

static int walk_to(struct qctx *c, struct lookback_walk *w, int64_t ref, int64_t lo)
{
	int rc;
	if (w->have_cur && w->cur_t < lo) {
		/* Everything before lo is out of the lookback window: skip by seeking. */
		w->have_prev = false;
		rc = qbuf_seek(w->b, lo, &w->cur_t, &w->cur_v);
		if (rc < 0)
			return ts__q_iter_err(c, rc);
		w->have_cur = rc == 1;
		c->scanned += (uint64_t)w->have_cur;
	}
	while (w->have_cur && w->cur_t <= ref) {
		w->prev_t = w->cur_t;
		w->prev_v = w->cur_v;
		w->have_prev = true;
		rc = qbuf_next(w->b, &w->cur_t, &w->cur_v);
		if (rc < 0)
			return ts__q_iter_err(c, rc);
		w->have_cur = rc == 1;
		c->scanned += (uint64_t)w->have_cur;
	}
	return 0;
}

/* Evaluates vector selector vs at every step. With ts_mode the value is the
 * sample's timestamp in seconds (timestamp() of a selector). */
static int eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
				struct qvalue *out)
{
	struct qctx *c = ev->c;
	int rc = 0;
	struct ts_series_set *set = NULL;
	struct ts_iter *it = NULL;
	struct qbuf qb;
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	if (ev->n_steps == 0)
		return 0;
	int64_t off = vs->vs.offset_ms;
	bool fixed = vs->vs.at != TS_AT_NONE;
	int64_t fixed_ref = 0;
	if (fixed) {
		fixed_ref = at_time(c, vs->vs.at, vs->vs.at_ms);
		if (!ts_mode)
			fixed_ref -= off;
	}
	int64_t first_ref = fixed ? fixed_ref : ev->start - off;
	int64_t last_ref = fixed ? fixed_ref
				 : ev->start + (int64_t)(ev->n_steps - 1) * ev->interval - off;
	if ((rc = select_series(c, vs, first_ref - c->lookback_ms, last_ref, &set)))
		return rc;
	size_t n = ts_series_set_len(set);
	for (size_t i = 0; i < n; i++) {
		if ((rc = ts__q_check(c)))
			goto out;
		if ((rc = ts_iter_new(set, i, &it))) {
			rc = ts__q_iter_err(c, rc);
			goto out;
		}
		qbuf_init(&qb, it);
		struct lookback_walk w = { .b = &qb };
		rc = qbuf_next(&qb, &w.cur_t, &w.cur_v);
		if (rc < 0) {
			rc = ts__q_iter_err(c, rc);
			goto out;
		}
		w.have_cur = rc == 1;
		c->scanned += (uint64_t)w.have_cur;
		struct qseries *se = NULL;
		for (size_t k = 0; k < ev->n_steps; k++) {
			int64_t ts = ev->start + (int64_t)k * ev->interval;
			int64_t ref = fixed ? fixed_ref : ts - off;
			if (!fixed || k == 0) {
				if ((rc = walk_to(c, &w, ref, ref - c->lookback_ms)))
					goto out;
			}
			if (!w.have_prev || w.prev_t < ref - c->lookback_ms ||
			    ts__q_is_stale(w.prev_v))
				continue;
			if (!se) {
				const struct ts_label *l;
				uint32_t nl;
				if ((rc = ts_series_set_labels(set, i, &l, &nl))) {
					rc = ts__q_iter_err(c, rc);
					goto out;
				}
				if ((rc = ts__qm_add_series(c, &out->m, l, nl, true, &se)))
					goto out;
			}
			if ((rc = ts__qs_push(c, se, ts,
					      ts_mode ? (double)w.prev_t / 1000 : w.prev_v)))
				goto out;
		}
		ts_iter_free(it);
		it = NULL;
	}
out:
	ts_iter_free(it);
	ts_series_set_free(set);
	return rc;
}

int ts__q_eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
			       struct qvalue *out);
int ts__q_eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
			       struct qvalue *out)
{
	return eval_vector_selector(ev, vs, ts_mode, out);
}

/* A matrix selector as a value (instant queries only): raw samples of
 * [ref - range, ref], stale markers dropped. */
static int eval_matrix_selector(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	const struct ts_ast *vs = n->matrix.vs;
	struct ts_series_set *set = NULL;
	struct ts_iter *it = NULL;
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->type = TS_VT_MATRIX;
	if (ev->n_steps != 1)
		return ts__q_fail(c, -EINVAL, TS_QERR_INTERNAL,
				  "cannot do range evaluation of matrix selector");
	int64_t base = vs->vs.at != TS_AT_NONE ? at_time(c, vs->vs.at, vs->vs.at_ms) : ev->start;
	int64_t maxt = base - vs->vs.offset_ms, mint = maxt - n->matrix.range_ms;
	if ((rc = select_series(c, vs, mint, maxt, &set)))
		return rc;
	size_t ns = ts_series_set_len(set);
	for (size_t i = 0; i < ns; i++) {
		if ((rc = ts_iter_new(set, i, &it))) {
			rc = ts__q_iter_err(c, rc);
			goto out;
		}
		struct qseries *se = NULL;
		for (rc = ts_iter_seek(it, mint); rc == 1; rc = ts_iter_next(it)) {
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			c->scanned++;
			if (t > maxt)
				break;
			if (t < mint || ts__q_is_stale(v))
				continue;
			if ((rc = ts__q_check(c)))
				goto out;
			if (!se) {
				const struct ts_label *l;
				uint32_t nl;
				if ((rc = ts_series_set_labels(set, i, &l, &nl)))
					break;
				if ((rc = ts__qm_add_series(c, &out->m, l, nl, true, &se)))
					goto out;
			}
			if ((rc = ts__qs_push(c, se, t, v)))
				goto out;
		}
		if (rc < 0) {
			rc = ts__q_iter_err(c, rc);
			goto out;
		}
		rc = 0;
		ts_iter_free(it);
		it = NULL;
	}
out:
	ts_iter_free(it);
	ts_series_set_free(set);
	return rc;
}

/* ---- subqueries ---- */

/* Sets sub to the subquery's inner evaluator and returns its window offset: the
 * outer step ts reads inner points in [ts - off - range, ts - off] (or around @). */
int ts__q_subquery_ev(struct qev *ev, const struct ts_ast *n, struct qev *sub);
int ts__q_subquery_ev(struct qev *ev, const struct ts_ast *n, struct qev *sub)
{
	struct qctx *c = ev->c;
	int64_t off = n->subquery.offset_ms, range = n->subquery.range_ms;
	int64_t step = n->subquery.step_ms ? n->subquery.step_ms : DEFAULT_SUBQUERY_STEP_MS;
	int64_t bstart = ev->start,
		bend = ev->start + (ev->n_steps ? (int64_t)(ev->n_steps - 1) : 0) * ev->interval;
	if (n->subquery.at != TS_AT_NONE)
		bstart = bend = at_time(c, n->subquery.at, n->subquery.at_ms);
	int64_t lo = bstart - off - range;
	int64_t start = step * (lo / step); /* Go truncates toward zero, so does C */
	if (start < lo)
		start += step;
	ev_init(sub, c, start, bend - off, step);
	if (ev->n_steps == 0)
		sub->n_steps = 0;
	if (sub->n_steps > 0 && c->max_samples / sub->n_steps == 0)
		return ts__q_too_many_samples(c);
	return 0;
}

static int eval_subquery(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qev sub;
	int rc = ts__q_subquery_ev(ev, n, &sub);
	if (rc)
		return rc;
	rc = ts__q_eval(&sub, n->subquery.expr, out);
	out->type = TS_VT_MATRIX;
	return rc;
}

/* ---- dispatcher ---- */

static int eval_number(struct qev *ev, double v, struct qvalue *out)
{
	int rc = ts__q_scalar_new(ev, out);
	if (rc)
		return rc;
	struct qseries *s = &out->m.s[0];
	for (size_t k = 0; k < s->n_pts; k++)
		s->pts[k].v = v;
	return 0;
}

static int eval_unary(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	int rc = ts__q_eval(ev, n->unary.expr, out);
	if (rc || n->unary.op != TS_OP_SUB)
		return rc;
	struct qmap map = { 0 };
	for (size_t i = 0; i < out->m.n; i++) {
		struct qseries *s = &out->m.s[i];
		for (size_t k = 0; k < s->n_pts; k++)
			s->pts[k].v = -s->pts[k].v;
		if (out->type == TS_VT_SCALAR)
			continue;
		const struct ts_label *l;
		uint32_t nl;
		if ((rc = ts__ql_drop_name(c, s->lab, s->n_lab, &l, &nl)))
			break;
		s->lab = (struct ts_label *)l;
		s->n_lab = nl;
		/* Same check as Prometheus' Matrix.ContainsSameLabelset. */
		int64_t klen = ts__ql_key(c, l, nl, 0, NULL, 0);
		if (klen < 0) {
			rc = (int)klen;
			break;
		}
		if (ts__qmap_find(&map, c->kbuf, (size_t)klen) != TS__QMAP_NONE) {
			rc = TS__Q_EXEC(c, "vector cannot contain metrics with the same labelset");
			break;
		}
		char *key = ts__qa_strndup(&c->scratch, c->kbuf, (size_t)klen);
		if (!key || ts__qmap_put(&map, key, (size_t)klen, i)) {
			rc = ts__q_nomem(c);
			break;
		}
	}
	/* Dropped-name label arrays live in scratch: make them permanent. */
	for (size_t i = 0; rc == 0 && i < out->m.n && out->type != TS_VT_SCALAR; i++) {
		struct ts_label *p;
		if ((rc = ts__ql_copy(c, &c->perm, out->m.s[i].lab, out->m.s[i].n_lab, &p)))
			break;
		out->m.s[i].lab = p;
	}
	ts__qmap_fini(&map);
	ts__qa_reset(&c->scratch);
	return rc;
}

int ts__q_eval(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	memset(out, 0, sizeof *out);
	int rc = ts__q_check(c);
	if (rc)
		return rc;
	switch (n->kind) {
	case TS_AST_NUMBER: return eval_number(ev, n->number.value, out);
	case TS_AST_STRING:
		out->type = TS_VT_STRING;
		out->str = ts__qa_strndup(&c->perm, n->string.value, n->string.len);
		out->str_len = n->string.len;
		return out->str ? 0 : ts__q_nomem(c);
	case TS_AST_PAREN: return ts__q_eval(ev, n->paren.expr, out);
	case TS_AST_UNARY: return eval_unary(ev, n, out);
	case TS_AST_VECTOR_SELECTOR: return eval_vector_selector(ev, n, false, out);
	case TS_AST_MATRIX_SELECTOR: return eval_matrix_selector(ev, n, out);
	case TS_AST_SUBQUERY: return eval_subquery(ev, n, out);
	case TS_AST_BINARY: return ts__q_eval_binary(ev, n, out);
	case TS_AST_AGGREGATE: return ts__q_eval_aggregate(ev, n, out);
	case TS_AST_CALL: return ts__q_eval_call(ev, n, out);
	}
	return ts__q_fail(c, -EINVAL, TS_QERR_INTERNAL, "unhandled expression");
}

/* ---- results ---- */

struct result_arena {
	struct ts_qresult r;
	struct qarena arena;
};

static int series_cmp(const void *a, const void *b)
{
	const struct ts_qseries *x = a, *y = b;
	return ts_labels_cmp(x->labels, x->n_labels, y->labels, y->n_labels);
}

/* Moves the evaluated value into a result (labels are in c->perm, which the result
 * adopts). Instant vectors take the evaluation time as their point's time. */
static int make_result(struct qctx *c, struct qvalue *v, bool range, int64_t t,
		       struct result_arena *ra)
{
	struct ts_qresult *r = &ra->r;
	if (v->type == TS_VT_STRING) {
		r->type = TS_QV_STRING;
		r->string = v->str;
		r->string_len = v->str_len;
		r->string_t_ms = t;
		return 0;
	}
	if (v->type == TS_VT_SCALAR && !range) {
		r->type = TS_QV_SCALAR;
		r->scalar.t_ms = t;
		r->scalar.v = v->m.n && v->m.s[0].n_pts ? v->m.s[0].pts[0].v : NAN;
		return 0;
	}
	r->type = (range || v->type == TS_VT_MATRIX) ? TS_QV_MATRIX : TS_QV_VECTOR;
	size_t n = 0;
	for (size_t i = 0; i < v->m.n; i++)
		n += v->m.s[i].n_pts > 0;
	struct ts_qseries *s = ts__qa_alloc(&ra->arena, (n ? n : 1) * sizeof *s);
	if (!s)
		return ts__q_nomem(c);
	size_t w = 0;
	for (size_t i = 0; i < v->m.n; i++) {
		const struct qseries *q = &v->m.s[i];
		if (!q->n_pts)
			continue;
		struct ts_qpoint *p = ts__qa_alloc(&ra->arena, q->n_pts * sizeof *p);
		if (!p)
			return ts__q_nomem(c);
		memcpy(p, q->pts, q->n_pts * sizeof *p);
		if (r->type == TS_QV_VECTOR)
			p[0].t_ms = t;
		s[w].labels = q->lab;
		s[w].n_labels = q->n_lab;
		s[w].points = p;
		s[w].n_points = r->type == TS_QV_VECTOR ? 1 : q->n_pts;
		w++;
	}
	if (range && w > 1)
		qsort(s, w, sizeof *s, series_cmp);
	r->series = s;
	r->n_series = w;
	return 0;
}

static int map_parse_error(int rc, const char *q, size_t q_len, const struct ts_promql_error *pe,
			   struct ts_qerr *err)
{
	if (rc == TS_EINVALID) {
		err->type = TS_QERR_BAD_DATA;
		ts_promql_error_format(q, q_len, pe, err->msg, sizeof err->msg);
	} else {
		err->type = TS_QERR_INTERNAL;
		snprintf(err->msg, sizeof err->msg, "%s",
			 rc == -ENOMEM ? "out of memory" : pe->msg);
	}
	return rc;
}

static int run(struct ts_db *db, const char *q, size_t q_len, int64_t start, int64_t end,
	       int64_t step, bool range, const struct ts_qopts *opts, struct ts_qresult **out,
	       struct ts_qerr *err)
{
	struct ts_qerr dummy;
	struct ts_ast *root = NULL;
	struct ts_promql_error pe = { 0 };
	struct qctx c;
	struct qvalue v;
	struct result_arena *ra = NULL;
	int rc;
	if (!err)
		err = &dummy;
	memset(err, 0, sizeof *err);
	memset(&c, 0, sizeof c);
	memset(&v, 0, sizeof v);
	*out = NULL;
	rc = ts_promql_parse(q, q_len, &root, &pe);
	if (rc)
		return map_parse_error(rc, q, q_len, &pe, err);
	c.err = err;
	if (range) {
		uint32_t max_points = opts && opts->max_points ? opts->max_points
							       : DEFAULT_MAX_POINTS;
		if (step <= 0) {
			rc = ts__q_fail(
				&c, TS_EINVALID, TS_QERR_BAD_DATA,
				"zero or negative query resolution step widths are not accepted. Try a positive integer");
			goto out;
		}
		if (end < start) {
			rc = ts__q_fail(&c, TS_EINVALID, TS_QERR_BAD_DATA,
					"end timestamp must not be before start time");
			goto out;
		}
		if ((end - start) / step >= (int64_t)max_points) {
			/* Prometheus writes the limit with a thousands separator: "11,000". */
			char lim[32];
			if (max_points >= 1000)
				snprintf(lim, sizeof lim, "%u,%03u", max_points / 1000,
					 max_points % 1000);
			else
				snprintf(lim, sizeof lim, "%u", max_points);
			rc = ts__q_fail(
				&c, TS_ELIMIT, TS_QERR_BAD_DATA,
				"exceeded maximum resolution of %s points per timeseries. Try decreasing the query resolution (?step=XX)",
				lim);
			goto out;
		}
		if (root->type != TS_VT_SCALAR && root->type != TS_VT_VECTOR) {
			rc = ts__q_fail(
				&c, TS_EINVALID, TS_QERR_BAD_DATA,
				"invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
				ts_value_type_str(root->type));
			goto out;
		}
	}
	c.db = db;
	c.q_start = start;
	c.q_end = end;
	c.lookback_ms = opts && opts->lookback_ms > 0 ? opts->lookback_ms : DEFAULT_LOOKBACK_MS;
	c.max_samples = opts && opts->max_samples ? opts->max_samples : DEFAULT_MAX_SAMPLES;
	c.deadline_ns = now_ns() +
			(opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS) *
				1000000;
	c.canceled = opts ? opts->canceled : NULL;
	c.tick = 1023; /* so the first check looks at the clock */
	struct qev ev;
	ev_init(&ev, &c, start, end, range ? step : 1);
	if ((rc = ts__q_eval(&ev, root, &v)))
		goto out;
	if (c.canceled && *c.canceled) {
		rc = ts__q_fail(&c, -ECANCELED, TS_QERR_CANCELED,
				"query was canceled in expression evaluation");
		goto out;
	}
	ra = ts_calloc(1, sizeof *ra);
	if (!ra) {
		rc = ts__q_nomem(&c);
		goto out;
	}
	if ((rc = make_result(&c, &v, range, start, ra)))
		goto out;
	ra->r.samples_scanned = c.scanned;
	/* The result adopts the perm arena (labels and strings). */
	ts__qa_adopt(&ra->arena, &c.perm);
	ra->r.ts__arena = ra;
	*out = &ra->r;
	ra = NULL;
out:
	ts__q_value_fini(&c, &v);
	if (ra) {
		ts__qa_fini(&ra->arena);
		ts_free(ra);
	}
	ts__qa_fini(&c.perm);
	ts__qa_fini(&c.scratch);
	ts_free(c.kbuf);
	ts_ast_free(root);
	if (rc && err->type == TS_QERR_NONE) {
		err->type = TS_QERR_INTERNAL;
		snprintf(err->msg, sizeof err->msg, "%s", ts_strerror(rc));
	}
	return rc;
}

int ts_query_instant(struct ts_db *db, const char *q, size_t q_len, int64_t t_ms,
		     const struct ts_qopts *opts, struct ts_qresult **out, struct ts_qerr *err)
{
	return run(db, q, q_len, t_ms, t_ms, 0, false, opts, out, err);
}

int ts_query_range(struct ts_db *db, const char *q, size_t q_len, int64_t start_ms, int64_t end_ms,
		   int64_t step_ms, const struct ts_qopts *opts, struct ts_qresult **out,
		   struct ts_qerr *err)
{
	return run(db, q, q_len, start_ms, end_ms, step_ms, true, opts, out, err);
}

void ts_qresult_free(struct ts_qresult *r)
{
	if (!r)
		return;
	struct result_arena *ra = r->ts__arena;
	ts__qa_fini(&ra->arena);
	ts_free(ra);
}
