/*
 * eval.c - the PromQL evaluator's core, following Prometheus 2.42 (promql/engine.go):
 * the node dispatcher, step matrices and vectors, the per-step driver, selectors and
 * subqueries. query.c calls ts__q_eval() on the root; the operator and function files
 * (eval_binop.c, eval_agg.c, eval_func.c, eval_range.c) call back into it.
 *
 * Design. Every node is evaluated over all steps of its evaluator at once (a
 * struct qev: start, end, interval) into a step matrix (see eval_int.h), as
 * Prometheus' rangeEval does; an instant query is one step with interval 1.
 *   - Vector selector: series are selected once for [first ref - lookback, last ref]
 *     and each series' iterator walks forward through the steps. A step's value is
 *     the newest sample with ref - lookback <= t <= ref (2.42 closes both ends),
 *     unless that sample is a stale marker. ref = step - offset, or @ - offset.
 *   - Functions of range vectors (eval_range.c) slide a window [ref - range, ref]
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
 * against max_samples (ts__q_hold); the clock and the cancel flag are checked every
 * 1024 checks (ts__q_check, query.c). Errors carry Prometheus' messages and types.
 *
 * Native-histogram functions (histogram_count/sum/fraction) return nothing, as
 * Prometheus does for float samples. Known deviations: 422 for predict_linear() of
 * a subquery with @ in a range query (2.42 moves that window oddly); sort order of
 * ties beyond 12 elements (Go's pdqsort is not stable; ours is); label_replace
 * regexes run on PCRE2, not RE2 (same for the RE2 syntax the parser accepts).
 */
#include <errno.h>
#include <string.h>

#include "query/eval_int.h"
#include "storage/err.h"
#include "storage/mem.h"

#define DEFAULT_SUBQUERY_STEP_MS 60000

/* ---- matrices and vectors ---- */

int ts__qm_add_series(struct qctx *c, struct qmatrix *m, const struct ts_label *lab, uint32_t n_lab,
		      bool copy_labels, struct qseries **out)
{
	*out = NULL;
	if (ts_grow((void **)&m->s, &m->cap, m->n + 1, sizeof *m->s))
		return ts__q_nomem(c);
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

void ts__qs_drop(struct qctx *c, struct qseries *s)
{
	ts__q_release(c, s->n_pts);
	ts_free(s->pts);
	s->pts = NULL;
	s->n_pts = s->cap_pts = 0;
}

int ts__qs_push(struct qctx *c, struct qseries *s, int64_t t, double v)
{
	/* The capacity test inline: this runs once per point. */
	if (s->n_pts == s->cap_pts) {
		/* ts_grow starts at 16 points: for an instant query, whose series get a point
		 * each, that was 240 bytes too many a series (6 MB for 24k series). */
		size_t first = c->first_cap;
		if (!s->cap_pts && first) {
			if (!(s->pts = ts_malloc(first * sizeof *s->pts)))
				return ts__q_nomem(c);
			s->cap_pts = first;
		} else if (ts_grow((void **)&s->pts, &s->cap_pts, s->n_pts + 1, sizeof *s->pts)) {
			return ts__q_nomem(c);
		}
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
	if (v->n == v->cap && ts_grow((void **)&v->s, &v->cap, v->n + 1, sizeof *v->s))
		return ts__q_nomem(c);
	v->s[v->n++] = (struct qsample){ lab, n_lab, t, val, TS__Q_NO_SERIES };
	return 0;
}

void ts__qv_fini(struct qvector *v)
{
	ts_free(v->s);
	memset(v, 0, sizeof *v);
}

void ts__q_ev_init(struct qev *ev, struct qctx *c, int64_t start, int64_t end, int64_t interval)
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

/* Per input, the next point of each of its series (inputs advance in step order). */
struct stepper {
	struct qvalue **in;
	size_t n_in;
	size_t **cur;	      /* cur[i][s]: next point of series s of input i; NULL: none */
	struct qvector *vecs; /* the instant vector of each input at the current step */
};

static int stepper_init(struct qctx *c, struct stepper *st, struct qvalue **in, size_t n_in)
{
	st->in = in;
	st->n_in = n_in;
	st->vecs = ts_calloc(n_in ? n_in : 1, sizeof *st->vecs);
	st->cur = ts_calloc(n_in ? n_in : 1, sizeof *st->cur);
	if (!st->vecs || !st->cur)
		return ts__q_nomem(c);
	for (size_t i = 0; i < n_in; i++) {
		if (!in[i] || in[i]->type == TS_VT_STRING)
			continue;
		st->cur[i] = ts_calloc(in[i]->m.n ? in[i]->m.n : 1, sizeof **st->cur);
		if (!st->cur[i])
			return ts__q_nomem(c);
	}
	return 0;
}

static void stepper_fini(struct stepper *st)
{
	for (size_t i = 0; i < st->n_in && st->cur; i++)
		ts_free(st->cur[i]);
	ts_free(st->cur);
	for (size_t i = 0; i < st->n_in && st->vecs; i++)
		ts__qv_fini(&st->vecs[i]);
	ts_free(st->vecs);
}

/* Fills st->vecs with every input's points at step ts. */
static int stepper_gather(struct qctx *c, struct stepper *st, int64_t ts)
{
	for (size_t i = 0; i < st->n_in; i++) {
		st->vecs[i].n = 0;
		if (!st->cur[i])
			continue;
		const struct qmatrix *m = &st->in[i]->m;
		for (size_t s = 0; s < m->n; s++) {
			const struct qseries *se = &m->s[s];
			size_t p = st->cur[i][s];
			if (p < se->n_pts && se->pts[p].t_ms == ts) {
				int rc = ts__qv_push(c, &st->vecs[i], se->lab, se->n_lab, ts,
						     se->pts[p].v);
				if (rc)
					return rc;
				st->vecs[i].s[st->vecs[i].n - 1].sidx = s;
				st->cur[i][s] = p + 1;
			}
		}
	}
	return 0;
}

/* Appends one step's output sample to the output series with its labels (`map`: key
 * of labels -> series index), creating the series on first sight. */
static int merge_sample(struct qctx *c, struct qmap *map, const struct qsample *smp, int64_t ts,
			struct qvalue *out)
{
	int rc;
	int64_t klen = ts__ql_key(c, smp->lab, smp->n_lab, TS__QKEY_ALL, NULL, 0);
	if (klen < 0)
		return (int)klen;
	size_t idx = ts__qmap_find(map, c->kbuf, (size_t)klen);
	struct qseries *se;
	if (idx == TS__QMAP_NONE) {
		char *key = ts__qa_strndup(&c->perm, c->kbuf, (size_t)klen);
		if (!key || ts__qmap_put(map, key, (size_t)klen, out->m.n))
			return ts__q_nomem(c);
		if ((rc = ts__qm_add_series(c, &out->m, smp->lab, smp->n_lab, true, &se)))
			return rc;
	} else {
		se = &out->m.s[idx];
		if (se->n_pts && se->pts[se->n_pts - 1].t_ms == ts)
			return TS__Q_EXEC(c,
					  "vector cannot contain metrics with the same labelset");
	}
	return ts__qs_push(c, se, ts, smp->v);
}

int ts__q_range_eval(struct qev *ev, struct qvalue **in, size_t n_in, ts__qstep_fn fn, void *arg,
		     struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct stepper st = { 0 };
	struct qvector res = { 0 };
	struct qmap map = { 0 };
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	int rc = stepper_init(c, &st, in, n_in);
	for (size_t k = 0; rc == 0 && k < ev->n_steps; k++) {
		int64_t ts = ev->start + (int64_t)k * ev->interval;
		if ((rc = ts__q_check(c)))
			break;
		ts__qa_reset(&c->scratch);
		if ((rc = stepper_gather(c, &st, ts)))
			break;
		res.n = 0;
		if ((rc = fn(ev, arg, st.vecs, ts, &res)))
			break;
		for (size_t j = 0; rc == 0 && j < res.n; j++)
			rc = merge_sample(c, &map, &res.s[j], ts, out);
	}
	stepper_fini(&st);
	ts__qv_fini(&res);
	ts__qmap_fini(&map);
	ts__qa_reset(&c->scratch);
	return rc;
}

/* Same check as Prometheus' Matrix.ContainsSameLabelset. */
int ts__q_check_same_labelsets(struct qctx *c, const struct qmatrix *m)
{
	struct qmap map = { 0 };
	int rc = 0;
	for (size_t i = 0; i < m->n && rc == 0; i++) {
		int64_t kl = ts__ql_key(c, m->s[i].lab, m->s[i].n_lab, TS__QKEY_ALL, NULL, 0);
		if (kl < 0) {
			rc = (int)kl;
			break;
		}
		if (ts__qmap_find(&map, c->kbuf, (size_t)kl) != TS__QMAP_NONE) {
			rc = TS__Q_EXEC(c, "vector cannot contain metrics with the same labelset");
			break;
		}
		char *k = ts__qa_strndup(&c->scratch, c->kbuf, (size_t)kl);
		if (!k || ts__qmap_put(&map, k, (size_t)kl, i))
			rc = ts__q_nomem(c);
	}
	ts__qmap_fini(&map);
	ts__qa_reset(&c->scratch);
	return rc;
}

/* ---- selectors ---- */

int64_t ts__q_at_time(const struct qctx *c, enum ts_at at, int64_t at_ms)
{
	switch (at) {
	case TS_AT_START: return c->q_start;
	case TS_AT_END: return c->q_end;
	default: return at_ms;
	}
}

/* Functions whose answer needs every raw sample: auto resolution reads them raw. */
static bool needs_every_sample(int fn)
{
	switch (fn) {
	case TS_FN_RESETS:
	case TS_FN_CHANGES:
	case TS_FN_QUANTILE_OVER_TIME:
	case TS_FN_STDDEV_OVER_TIME:
	case TS_FN_STDVAR_OVER_TIME: return true;
	default: return false;
	}
}

int64_t ts__q_res(const struct qev *ev, int fn, int64_t range_ms)
{
	int64_t r = ev->c->max_res_ms;
	if (r >= 0)
		return r;
	/* Auto: the coarsest tier at most step/5 (Thanos' auto downsampling), and, for a
	 * range function, at most range/5, so a window holds several rows; instant
	 * queries and functions that need every sample read raw. */
	if (ev->n_steps <= 1 || ev->interval <= 1 || needs_every_sample(fn))
		return 0;
	r = ev->interval / 5;
	if (range_ms > 0 && range_ms / 5 < r)
		r = range_ms / 5;
	return r;
}

enum ts_aggr ts__q_aggr(int fn)
{
	switch (fn) {
	case TS_FN_RATE:
	case TS_FN_INCREASE:
	case TS_FN_IRATE:
	case TS_FN_RESETS: return TS_AGGR_COUNTER;
	case TS_FN_SUM_OVER_TIME:
	case TS_FN_COUNT_OVER_TIME:
	case TS_FN_AVG_OVER_TIME: return TS_AGGR_SUM; /* with the counts as weights */
	case TS_FN_MIN_OVER_TIME: return TS_AGGR_MIN;
	case TS_FN_MAX_OVER_TIME: return TS_AGGR_MAX;
	default: return TS_AGGR_AVG;
	}
}

int ts__q_select(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
		 int64_t res_ms, enum ts_aggr aggr, struct ts_series_set **set)
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
	/* The query's own deadline and cancel flag bound the selection too: a regex over
	 * many long values must not outlive timeout_ms. */
	struct ts_select_opts so = { .deadline_ns = c->deadline_ns,
				     .canceled = c->canceled,
				     .max_resolution_ms = res_ms,
				     .aggr = aggr,
				     .dedup_labels = c->replica_labels,
				     .n_dedup_labels = c->n_replica_labels,
				     /* rate() and the like read counters */
				     .dedup_counter = aggr == TS_AGGR_COUNTER };
	int rc = ts_db_select(c->db, m, n, mint, maxt, &so, set, msg, sizeof msg);
	ts_free(m);
	if (rc == -ENOMEM)
		return ts__q_nomem(c);
	if (rc == -ETIMEDOUT)
		return ts__q_fail(c, rc, TS_QERR_TIMEOUT, "query timed out in series selection");
	if (rc == -ECANCELED)
		return ts__q_fail(c, rc, TS_QERR_CANCELED,
				  "query was canceled in series selection");
	if (rc == TS_ELIMIT && msg[0])
		return ts__q_fail(c, rc, TS_QERR_EXECUTION, "%s", msg);
	if (rc == TS_EINVALID)
		return ts__q_fail(c, rc, TS_QERR_EXECUTION, "%s", msg[0] ? msg : "invalid matcher");
	if (rc)
		return ts__q_fail(c, rc, TS_QERR_INTERNAL, "expanding series: %s", ts_strerror(rc));
	size_t got = ts_series_set_len(*set);
	if (c->max_series && got > c->max_series) {
		ts_series_set_free(*set);
		*set = NULL;
		return ts__q_fail(c, TS_ELIMIT, TS_QERR_EXECUTION,
				  "query selects too many series: %zu, the limit is %llu "
				  "(--query.max-series)",
				  got, (unsigned long long)c->max_series);
	}
	return 0;
}

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

/* Where a vector selector reads: ref = step - offset, or fixed at @ (- offset). */
struct vs_ref {
	bool fixed;
	int64_t fixed_ref, off;
	bool ts_mode;
	int64_t lookback; /* at least the resolution read (Thanos' dynamic lookback) */
};

/* Walks `it` through ev's steps: the series' value at each step where it has one, in
 * se's points. */
static int selector_steps(struct qev *ev, const struct vs_ref *r, struct ts_iter *it,
			  struct qseries *se)
{
	struct qctx *c = ev->c;
	struct qbuf qb;
	qbuf_init(&qb, it);
	struct lookback_walk w = { .b = &qb };
	int rc = qbuf_next(&qb, &w.cur_t, &w.cur_v);
	if (rc < 0)
		return ts__q_iter_err(c, rc);
	w.have_cur = rc == 1;
	c->scanned += (uint64_t)w.have_cur;
	for (size_t k = 0; k < ev->n_steps; k++) {
		int64_t ts = ev->start + (int64_t)k * ev->interval;
		int64_t ref = r->fixed ? r->fixed_ref : ts - r->off;
		if (!r->fixed || k == 0) {
			if ((rc = walk_to(c, &w, ref, ref - r->lookback)))
				return rc;
		}
		if (!w.have_prev || w.prev_t < ref - r->lookback || ts__q_is_stale(w.prev_v))
			continue;
		if ((rc = ts__qs_push(c, se, ts, r->ts_mode ? (double)w.prev_t / 1000 : w.prev_v)))
			return rc;
	}
	return 0;
}

/* At most a point a step: a series' first allocation is sized by the steps. */
static int selector_walk(struct qev *ev, const struct vs_ref *r, struct ts_iter *it,
			 struct qseries *se)
{
	size_t saved = ev->c->first_cap;
	ev->c->first_cap = ev->n_steps < 16 ? ev->n_steps : 16;
	int rc = selector_steps(ev, r, it, se);
	ev->c->first_cap = saved;
	return rc;
}

/* Adds series i of set to out with the points of tmp (taken over) when it has any;
 * releases tmp's points otherwise. */
static int selector_add(struct qctx *c, struct ts_series_set *set, size_t i, struct qseries *tmp,
			struct qvalue *out)
{
	int rc = 0;
	if (tmp->n_pts) {
		const struct ts_label *l;
		uint32_t nl;
		struct qseries *se;
		if ((rc = ts_series_set_labels(set, i, &l, &nl)))
			rc = ts__q_iter_err(c, rc);
		else if ((rc = ts__qm_add_series(c, &out->m, l, nl, true, &se)) == 0) {
			se->pts = tmp->pts;
			se->n_pts = tmp->n_pts;
			se->cap_pts = tmp->cap_pts;
			tmp->pts = NULL;
			tmp->n_pts = 0;
		}
	}
	ts__qs_drop(c, tmp);
	return rc;
}

static int selector_one(struct qev *ev, void *arg, void *state, struct ts_iter *it,
			struct qseries *out)
{
	(void)state;
	return selector_walk(ev, arg, it, out);
}

static const struct ts__qpar_series_ops selector_ops = { 0, selector_one, NULL };

/* Walks series i of set through ev's steps, appending a series to out when it has a
 * value at some step. */
static int selector_series(struct qev *ev, const struct vs_ref *r, struct ts_series_set *set,
			   size_t i, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct ts_iter *it = NULL;
	struct qseries tmp = { 0 };
	int rc = ts_iter_new(set, i, &it);
	if (rc)
		rc = ts__q_iter_err(c, rc);
	else
		rc = selector_walk(ev, r, it, &tmp);
	ts_iter_free(it);
	if (rc == 0)
		return selector_add(c, set, i, &tmp, out);
	ts__qs_drop(c, &tmp);
	return rc;
}

int ts__q_eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
			       struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct ts_series_set *set = NULL;
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	if (ev->n_steps == 0)
		return 0;
	struct vs_ref r = { .fixed = vs->vs.at != TS_AT_NONE,
			    .off = vs->vs.offset_ms,
			    .ts_mode = ts_mode };
	if (r.fixed) {
		r.fixed_ref = ts__q_at_time(c, vs->vs.at, vs->vs.at_ms);
		if (!ts_mode)
			r.fixed_ref -= r.off;
	}
	int64_t first_ref = r.fixed ? r.fixed_ref : ev->start - r.off;
	int64_t last_ref = r.fixed ? r.fixed_ref
				   : ev->start + (int64_t)(ev->n_steps - 1) * ev->interval - r.off;
	/* Selected over the longest lookback the resolution allows; the lookback is then
	 * the coarsest resolution actually read (raw only: Prometheus' own). */
	int64_t res = ts__q_res(ev, TS__Q_PLAIN, 0);
	int64_t lb = res > c->lookback_ms ? res : c->lookback_ms;
	int rc = ts__q_select(c, vs, first_ref - lb, last_ref, res, ts__q_aggr(TS__Q_PLAIN), &set);
	if (rc)
		return rc;
	res = ts_series_set_resolution(set);
	r.lookback = res > c->lookback_ms ? res : c->lookback_ms;
	size_t n = ts_series_set_len(set);
	if (ts__qpar_worth(n)) {
		/* many series: read on the idle cores too, added in order here */
		struct qseries *outs;
		rc = ts__qpar_series(ev, set, n, &selector_ops, &r, &outs);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = selector_add(c, set, i, &outs[i], out);
		for (size_t i = 0; outs && i < n; i++) /* what an error left */
			ts__qs_drop(c, &outs[i]);
		ts_free(outs);
		ts_series_set_free(set);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if ((rc = ts__q_check(c)) == 0)
			rc = selector_series(ev, &r, set, i, out);
	}
	ts_series_set_free(set);
	return rc;
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
	int64_t base = vs->vs.at != TS_AT_NONE ? ts__q_at_time(c, vs->vs.at, vs->vs.at_ms)
					       : ev->start;
	int64_t maxt = base - vs->vs.offset_ms, mint = maxt - n->matrix.range_ms;
	if ((rc = ts__q_select(c, vs, mint, maxt, 0, TS_AGGR_AVG, &set)))
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

int ts__q_subquery_ev(struct qev *ev, const struct ts_ast *n, struct qev *sub)
{
	struct qctx *c = ev->c;
	int64_t off = n->subquery.offset_ms, range = n->subquery.range_ms;
	int64_t step = n->subquery.step_ms ? n->subquery.step_ms : DEFAULT_SUBQUERY_STEP_MS;
	int64_t bstart = ev->start,
		bend = ev->start + (ev->n_steps ? (int64_t)(ev->n_steps - 1) : 0) * ev->interval;
	if (n->subquery.at != TS_AT_NONE)
		bstart = bend = ts__q_at_time(c, n->subquery.at, n->subquery.at_ms);
	int64_t lo = bstart - off - range;
	int64_t start = step * (lo / step); /* Go truncates toward zero, so does C */
	if (start < lo)
		start += step;
	ts__q_ev_init(sub, c, start, bend - off, step);
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
	for (size_t i = 0; i < out->m.n; i++) {
		struct qseries *s = &out->m.s[i];
		for (size_t k = 0; k < s->n_pts; k++)
			s->pts[k].v = -s->pts[k].v;
	}
	if (out->type == TS_VT_SCALAR)
		return 0;
	/* Negation drops the metric name; the labels without it go to the perm arena. */
	for (size_t i = 0; i < out->m.n; i++) {
		struct qseries *s = &out->m.s[i];
		const struct ts_label *l;
		uint32_t nl;
		struct ts_label *p;
		if ((rc = ts__ql_drop_name(c, s->lab, s->n_lab, &l, &nl)) ||
		    (rc = ts__ql_copy(c, &c->perm, l, nl, &p)))
			break;
		s->lab = p;
		s->n_lab = nl;
	}
	ts__qa_reset(&c->scratch);
	return rc ? rc : ts__q_check_same_labelsets(c, &out->m);
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
	case TS_AST_VECTOR_SELECTOR: return ts__q_eval_vector_selector(ev, n, false, out);
	case TS_AST_MATRIX_SELECTOR: return eval_matrix_selector(ev, n, out);
	case TS_AST_SUBQUERY: return eval_subquery(ev, n, out);
	case TS_AST_BINARY: return ts__q_eval_binary(ev, n, out);
	case TS_AST_AGGREGATE: return ts__q_eval_aggregate(ev, n, out);
	case TS_AST_CALL: return ts__q_eval_call(ev, n, out);
	}
	return ts__q_fail(c, -EINVAL, TS_QERR_INTERNAL, "unhandled expression");
}
