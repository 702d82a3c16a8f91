/*
 * eval_func.c - PromQL functions as Prometheus 2.42 computes them
 * (promql/functions.go, quantile.go).
 *
 * Functions of a range vector (rate, *_over_time, ...) take the "matrix path": for
 * each selected series a window [ref - range, ref] (both ends closed, stale markers
 * dropped) slides forward through the steps; samples enter from the series'
 * iterator and leave from the front, so memory is bounded by one window. A subquery
 * argument is evaluated first and windowed the same way over its points. Output
 * series drop __name__ (except last_over_time); two outputs with one label set are
 * an error, checked over the whole result as Prometheus does.
 *
 * Other functions run per step through ts__q_range_eval(). label_replace uses PCRE2
 * with the regex anchored as "^(?:re)$" (DOLLAR_ENDONLY, as RE2's $) and Go's
 * template expansion rules ($1, ${1}, $name, $$; an unknown name expands to "").
 * Native-histogram functions (histogram_count/sum/fraction) see only float samples
 * here, for which Prometheus returns nothing; so do we.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "query/qvalue.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

int ts__q_select(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
		 struct ts_series_set **set);
int ts__q_iter_err(struct qctx *c, int rc);
int ts__q_eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
			       struct qvalue *out);
int ts__q_subquery_ev(struct qev *ev, const struct ts_ast *n, struct qev *sub);

struct fcall {
	const struct ts_ast *n;
	enum ts_func_id id;
	const struct ts_ast *args[8]; /* parentheses removed */
	size_t n_args;
	struct qvalue vals[8];
	int matrix_arg; /* -1: none */
	bool ts_ident;	/* timestamp() of a selector: values are already the times */
	double *qbuf;	/* quantile_over_time scratch */
	size_t qcap;
	pcre2_code *re;
	pcre2_match_data *md;
	struct qlb lb;
	struct qmap map;
};

static const struct ts_ast *unparen(const struct ts_ast *a)
{
	while (a->kind == TS_AST_PAREN)
		a = a->paren.expr;
	return a;
}

/* ---- window functions ---- */

static void kahan_inc(double inc, double *sum, double *c)
{
	double t = *sum + inc;
	if (fabs(*sum) >= fabs(inc))
		*c += (*sum - t) + inc;
	else
		*c += (inc - t) + *sum;
	*sum = t;
}

static void linreg(const struct ts_qpoint *p, size_t n, int64_t icpt, double *slope,
		   double *intercept)
{
	double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
	double init = p[0].v;
	bool consty = true;
	for (size_t i = 0; i < n; i++) {
		if (consty && i > 0 && p[i].v != init)
			consty = false;
		double x = (double)(p[i].t_ms - icpt) / 1e3;
		kahan_inc(x, &sx, &cx);
		kahan_inc(p[i].v, &sy, &cy);
		kahan_inc(x * p[i].v, &sxy, &cxy);
		kahan_inc(x * x, &sx2, &cx2);
	}
	if (consty) {
		if (isinf(init)) {
			*slope = *intercept = NAN;
		} else {
			*slope = 0;
			*intercept = init;
		}
		return;
	}
	double fn = (double)n;
	sx += cx;
	sy += cy;
	sxy += cxy;
	sx2 += cx2;
	double cov = sxy - sx * sy / fn;
	double var = sx2 - sx * sx / fn;
	*slope = cov / var;
	*intercept = sy / fn - *slope * sx / fn;
}

/* n_resets: how many samples of the window are below their predecessor; the
 * correction loop runs only when there are some (summing in Prometheus' order). */
static double extrapolated_rate(const struct ts_qpoint *p, size_t n, int64_t mint, int64_t maxt,
				double range_s, bool counter, bool is_rate, uint64_t n_resets)
{
	double result = p[n - 1].v - p[0].v;
	if (counter && n_resets) {
		double prev = p[0].v;
		for (size_t i = 1; i < n; i++) {
			if (p[i].v < prev)
				result += prev;
			prev = p[i].v;
		}
	}
	double to_start = (double)(p[0].t_ms - mint) / 1000;
	double to_end = (double)(maxt - p[n - 1].t_ms) / 1000;
	double sampled = (double)(p[n - 1].t_ms - p[0].t_ms) / 1000;
	double avg = sampled / (double)(n - 1);
	if (counter && result > 0 && p[0].v >= 0) {
		double to_zero = sampled * (p[0].v / result);
		if (to_zero < to_start)
			to_start = to_zero;
	}
	double thr = avg * 1.1, ext = sampled;
	ext += to_start < thr ? to_start : avg / 2;
	ext += to_end < thr ? to_end : avg / 2;
	double factor = ext / sampled;
	if (is_rate)
		factor /= range_s;
	return result * factor;
}

/* Computes function f over window p[0..n) (n >= 1) for step ts. Returns 1 with *out
 * set, 0 for no output, or an error. */
static int win_apply(struct qctx *c, struct fcall *f, const struct ts_qpoint *p, size_t n,
		     uint64_t n_resets, int64_t ts, int64_t mint, int64_t maxt, double range_s,
		     size_t step, double *out)
{
	switch (f->id) {
	case TS_FN_RATE:
	case TS_FN_INCREASE:
	case TS_FN_DELTA:
		if (n < 2)
			return 0;
		*out = extrapolated_rate(p, n, mint, maxt, range_s, f->id != TS_FN_DELTA,
					 f->id == TS_FN_RATE, n_resets);
		return 1;
	case TS_FN_IRATE:
	case TS_FN_IDELTA: {
		if (n < 2)
			return 0;
		const struct ts_qpoint *l = &p[n - 1], *pr = &p[n - 2];
		double r = (f->id == TS_FN_IRATE && l->v < pr->v) ? l->v : l->v - pr->v;
		int64_t iv = l->t_ms - pr->t_ms;
		if (iv == 0)
			return 0;
		if (f->id == TS_FN_IRATE)
			r /= (double)iv / 1000;
		*out = r;
		return 1;
	}
	case TS_FN_DERIV: {
		if (n < 2)
			return 0;
		double s, i;
		linreg(p, n, p[0].t_ms, &s, &i);
		*out = s;
		return 1;
	}
	case TS_FN_PREDICT_LINEAR: {
		if (n < 2)
			return 0;
		double s, i, d = f->vals[1].m.s[0].pts[step].v;
		linreg(p, n, ts, &s, &i);
		*out = s * d + i;
		return 1;
	}
	case TS_FN_HOLT_WINTERS: {
		double sf = f->vals[1].m.s[0].pts[step].v, tf = f->vals[2].m.s[0].pts[step].v;
		if (sf <= 0 || sf >= 1)
			return TS__Q_EXEC(
				c, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
		if (tf <= 0 || tf >= 1)
			return TS__Q_EXEC(c, "invalid trend factor. Expected: 0 < tf < 1, got: %f",
					  tf);
		if (n < 2)
			return 0;
		double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
		for (size_t i = 1; i < n; i++) {
			double x = sf * p[i].v;
			if (i - 1 != 0)
				b = tf * (s1 - s0) + (1 - tf) * b;
			double y = (1 - sf) * (s1 + b);
			s0 = s1;
			s1 = x + y;
		}
		*out = s1;
		return 1;
	}
	case TS_FN_RESETS: *out = (double)n_resets; return 1;
	case TS_FN_CHANGES: {
		int k = 0;
		double prev = p[0].v;
		for (size_t i = 1; i < n; i++) {
			double cur = p[i].v;
			if (f->id == TS_FN_RESETS ? cur < prev
						  : (cur != prev && !(isnan(cur) && isnan(prev))))
				k++;
			prev = cur;
		}
		*out = k;
		return 1;
	}
	case TS_FN_AVG_OVER_TIME: {
		double mean = 0, cnt = 0, cc = 0;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			cnt++;
			if (isinf(mean)) {
				if (isinf(v) && (mean > 0) == (v > 0))
					continue;
				if (!isinf(v) && !isnan(v))
					continue;
			}
			kahan_inc(v / cnt - mean / cnt, &mean, &cc);
		}
		*out = isinf(mean) ? mean : mean + cc;
		return 1;
	}
	case TS_FN_COUNT_OVER_TIME: *out = (double)n; return 1;
	case TS_FN_LAST_OVER_TIME: *out = p[n - 1].v; return 1;
	case TS_FN_PRESENT_OVER_TIME:
	case TS_FN_ABSENT_OVER_TIME: *out = 1; return 1;
	case TS_FN_MAX_OVER_TIME:
	case TS_FN_MIN_OVER_TIME: {
		double m = p[0].v;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			if ((f->id == TS_FN_MAX_OVER_TIME ? v > m : v < m) || isnan(m))
				m = v;
		}
		*out = m;
		return 1;
	}
	case TS_FN_SUM_OVER_TIME: {
		double s = 0, cc = 0;
		for (size_t i = 0; i < n; i++)
			kahan_inc(p[i].v, &s, &cc);
		*out = isinf(s) ? s : s + cc;
		return 1;
	}
	case TS_FN_QUANTILE_OVER_TIME: {
		if (f->qcap < n) {
			double *q = ts_realloc(f->qbuf, n * sizeof *q);
			if (!q)
				return ts__q_nomem(c);
			f->qbuf = q;
			f->qcap = n;
		}
		for (size_t i = 0; i < n; i++)
			f->qbuf[i] = p[i].v;
		*out = ts__q_quantile(f->vals[0].m.s[0].pts[step].v, f->qbuf, n);
		return 1;
	}
	case TS_FN_STDDEV_OVER_TIME:
	case TS_FN_STDVAR_OVER_TIME: {
		double cnt = 0, mean = 0, cm = 0, aux = 0, ca = 0;
		for (size_t i = 0; i < n; i++) {
			double v = p[i].v;
			cnt++;
			double delta = v - (mean + cm);
			kahan_inc(delta / cnt, &mean, &cm);
			kahan_inc(delta * (v - (mean + cm)), &aux, &ca);
		}
		double var = (aux + ca) / cnt;
		*out = f->id == TS_FN_STDDEV_OVER_TIME ? sqrt(var) : var;
		return 1;
	}
	default:
		return TS__Q_EXEC(c, "function \"%s\" over a range vector is not supported",
				  f->n->call.func->name);
	}
}

/* ---- the matrix path ---- */

/* A growing window buffer: points [head, n) are live. cum[i] counts the samples up
 * to i that are below their predecessor (counter resets), so a window's resets are
 * cum[n-1] - cum[head] without a scan. */
struct wbuf {
	struct ts_qpoint *p;
	uint64_t *cum;
	size_t head, n, cap;
	uint64_t resets;
	double last_v;
	bool have_last;
};

static int wbuf_push(struct qctx *c, struct wbuf *w, int64_t t, double v)
{
	if (w->n == w->cap) {
		if (w->head > 0) {
			memmove(w->p, w->p + w->head, (w->n - w->head) * sizeof *w->p);
			memmove(w->cum, w->cum + w->head, (w->n - w->head) * sizeof *w->cum);
			w->n -= w->head;
			w->head = 0;
		}
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 64;
			struct ts_qpoint *p = ts_realloc(w->p, cap * sizeof *p);
			if (!p)
				return ts__q_nomem(c);
			w->p = p;
			uint64_t *cum = ts_realloc(w->cum, cap * sizeof *cum);
			if (!cum)
				return ts__q_nomem(c);
			w->cum = cum;
			w->cap = cap;
		}
	}
	if (w->have_last && v < w->last_v)
		w->resets++;
	w->last_v = v;
	w->have_last = true;
	w->cum[w->n] = w->resets;
	w->p[w->n++] = (struct ts_qpoint){ t, v };
	return 0;
}

/* Where the window of step ts ends. */
struct wspec {
	int64_t off, range;
	bool fixed;
	int64_t fixed_maxt;
	int64_t shift; /* predict_linear with @: 2.42 moves the window with the step */
};

static int64_t wmaxt(const struct wspec *w, int64_t ts)
{
	return w->fixed ? w->fixed_maxt : ts - w->off - w->shift;
}

/* Output labels of a matrix-path function for input labels l. */
static int out_labels(struct qctx *c, struct fcall *f, const struct ts_label *l, uint32_t n,
		      const struct ts_label **o, uint32_t *on)
{
	if (f->id == TS_FN_LAST_OVER_TIME) {
		*o = l;
		*on = n;
		return 0;
	}
	return ts__ql_drop_name(c, l, n, o, on);
}

static int window_series_points(struct qev *ev, struct fcall *f, const struct wspec *ws,
				struct qseries *se, struct wbuf *wb, struct ts_iter *it,
				const struct ts_qpoint *arr, size_t n_arr)
{
	struct qctx *c = ev->c;
	int rc;
	bool have_cur = false;
	int64_t cur_t = 0;
	double cur_v = 0;
	size_t ai = 0;
	double range_s = (double)ws->range / 1000;
	wb->head = wb->n = 0;
	wb->resets = 0;
	wb->have_last = false;
	struct qbuf qb;
	if (it) {
		qbuf_init(&qb, it);
		rc = qbuf_next(&qb, &cur_t, &cur_v);
		if (rc < 0)
			return ts__q_iter_err(c, rc);
		have_cur = rc == 1;
		c->scanned += (uint64_t)have_cur;
	} else if (n_arr) {
		have_cur = true;
		cur_t = arr[0].t_ms;
		cur_v = arr[0].v;
		ai = 1;
	}
	for (size_t k = 0; k < ev->n_steps; k++) {
		int64_t ts = ev->start + (int64_t)k * ev->interval;
		if (ws->fixed && k > 0) {
			/* Same window at every step: repeat the first step's outcome. */
			if (se->n_pts && (rc = ts__qs_push(c, se, ts, se->pts[0].v)))
				return rc;
			continue;
		}
		int64_t maxt = wmaxt(ws, ts), mint = maxt - ws->range;
		while (wb->head < wb->n && wb->p[wb->head].t_ms < mint)
			wb->head++;
		if (have_cur && cur_t < mint && it) {
			rc = qbuf_seek(&qb, mint, &cur_t, &cur_v);
			if (rc < 0)
				return ts__q_iter_err(c, rc);
			have_cur = rc == 1;
			c->scanned += (uint64_t)have_cur;
		}
		while (have_cur && cur_t <= maxt) {
			if (cur_t >= mint && !ts__q_is_stale(cur_v) &&
			    (rc = wbuf_push(c, wb, cur_t, cur_v)))
				return rc;
			if (it) {
				rc = qbuf_next(&qb, &cur_t, &cur_v);
				if (rc < 0)
					return ts__q_iter_err(c, rc);
				have_cur = rc == 1;
				c->scanned += (uint64_t)have_cur;
			} else {
				have_cur = ai < n_arr;
				if (have_cur) {
					cur_t = arr[ai].t_ms;
					cur_v = arr[ai].v;
					ai++;
				}
			}
		}
		size_t wn = wb->n - wb->head;
		if (wn == 0)
			continue;
		if (c->cur_samples + wn > c->max_samples)
			return ts__q_too_many_samples(c);
		if ((rc = ts__q_check(c)))
			return rc;
		double v = 0;
		rc = win_apply(c, f, wb->p + wb->head, wn, wb->cum[wb->n - 1] - wb->cum[wb->head],
			       ts, mint, maxt, range_s, k, &v);
		if (rc < 0)
			return rc;
		if (rc == 1 && (rc = ts__qs_push(c, se, ts, v)))
			return rc;
	}
	return 0;
}

/* Labels of absent()/absent_over_time(): the equality matchers of a selector. */
static int absent_labels(struct qctx *c, struct fcall *f, const struct ts_ast *arg,
			 const struct ts_label **o, uint32_t *on)
{
	int rc;
	*o = NULL;
	*on = 0;
	arg = unparen(arg);
	if (arg->kind == TS_AST_MATRIX_SELECTOR)
		arg = arg->matrix.vs;
	if (arg->kind != TS_AST_VECTOR_SELECTOR)
		return 0;
	if ((rc = ts__qlb_reset(c, &f->lb, NULL, 0)))
		return rc;
	for (size_t i = 0; i < arg->vs.n_matchers; i++) {
		const struct ts_ast_matcher *m = &arg->vs.matchers[i];
		if (strcmp(m->name, "__name__") == 0)
			continue;
		bool has = false;
		for (size_t j = 0; j < i && !has; j++)
			has = arg->vs.matchers[j].type == TS_MATCH_EQ &&
			      strcmp(arg->vs.matchers[j].name, m->name) == 0;
		if (m->type == TS_MATCH_EQ && !has)
			rc = ts__qlb_set(c, &f->lb, m->name, strlen(m->name), m->value,
					 m->value_len);
		else
			ts__qlb_del(&f->lb, m->name, strlen(m->name));
		if (rc)
			return rc;
	}
	return ts__qlb_finish(c, &f->lb, o, on);
}

static int check_same_labelsets(struct qctx *c, const struct qmatrix *m)
{
	struct qmap map = { 0 };
	int rc = 0;
	for (size_t i = 0; i < m->n && rc == 0; i++) {
		int64_t kl = ts__ql_key(c, m->s[i].lab, m->s[i].n_lab, 0, NULL, 0);
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

static int matrix_path(struct qev *ev, struct fcall *f, struct qvalue *out)
{
	struct qctx *c = ev->c;
	const struct ts_ast *arg = f->args[f->matrix_arg];
	struct wspec ws = { 0 };
	struct wbuf wb = { 0 };
	struct ts_series_set *set = NULL;
	struct ts_iter *it = NULL;
	struct qvalue inner = { 0 };
	int rc = 0;
	enum ts_at at;
	int64_t at_ms;
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	if (arg->kind == TS_AST_MATRIX_SELECTOR) {
		ws.off = arg->matrix.vs->vs.offset_ms;
		ws.range = arg->matrix.range_ms;
		at = arg->matrix.vs->vs.at;
		at_ms = arg->matrix.vs->vs.at_ms;
	} else {
		ws.off = arg->subquery.offset_ms;
		ws.range = arg->subquery.range_ms;
		at = arg->subquery.at;
		at_ms = arg->subquery.at_ms;
	}
	if (at != TS_AT_NONE) {
		int64_t t = at == TS_AT_START ? c->q_start : at == TS_AT_END ? c->q_end : at_ms;
		if (f->id == TS_FN_PREDICT_LINEAR) {
			ws.shift = c->q_start - t;
		} else {
			ws.fixed = true;
			ws.fixed_maxt = t - ws.off;
		}
	}
	if (ev->n_steps == 0)
		goto absent;
	struct qseries tmp;
	if (arg->kind == TS_AST_MATRIX_SELECTOR) {
		int64_t lo = wmaxt(&ws, ev->start) - ws.range;
		int64_t hi = wmaxt(&ws, ev->start + (int64_t)(ev->n_steps - 1) * ev->interval);
		if (ws.shift || (at != TS_AT_NONE && f->id == TS_FN_PREDICT_LINEAR)) {
			/* 2.42 selects only around @ but moves the window with the step, so
			 * later windows see fewer samples. */
			hi = c->q_start - ws.shift - ws.off;
			lo = hi - ws.range;
		}
		if ((rc = ts__q_select(c, arg->matrix.vs, lo, hi, &set)))
			goto out;
		size_t ns = ts_series_set_len(set);
		for (size_t i = 0; i < ns; i++) {
			const struct ts_label *l;
			uint32_t nl;
			if ((rc = ts_series_set_labels(set, i, &l, &nl)) ||
			    (rc = ts_iter_new(set, i, &it))) {
				rc = ts__q_iter_err(c, rc);
				goto out;
			}
			memset(&tmp, 0, sizeof tmp);
			rc = window_series_points(ev, f, &ws, &tmp, &wb, it, NULL, 0);
			ts_iter_free(it);
			it = NULL;
			if (rc == 0 && tmp.n_pts) {
				const struct ts_label *o;
				uint32_t on;
				struct qseries *se;
				rc = out_labels(c, f, l, nl, &o, &on);
				if (rc == 0)
					rc = ts__qm_add_series(c, &out->m, o, on, true, &se);
				if (rc == 0) {
					se->pts = tmp.pts;
					se->n_pts = tmp.n_pts;
					se->cap_pts = tmp.cap_pts;
					tmp.pts = NULL;
				}
				ts__qa_reset(&c->scratch);
			}
			if (tmp.pts) {
				ts__q_release(c, tmp.n_pts);
				ts_free(tmp.pts);
			}
			if (rc)
				goto out;
		}
	} else {
		struct qev sub;
		if ((rc = ts__q_subquery_ev(ev, arg, &sub)))
			goto out;
		if (f->id == TS_FN_PREDICT_LINEAR && at != TS_AT_NONE && ev->n_steps > 1) {
			/* 2.42 moves these windows with the step over data selected around @;
			 * we do not reproduce that. */
			rc = TS__Q_EXEC(
				c,
				"predict_linear() of a subquery with @ in a range query is not supported");
			goto out;
		}
		if ((rc = ts__q_eval(&sub, arg->subquery.expr, &inner)))
			goto out;
		for (size_t i = 0; i < inner.m.n; i++) {
			const struct qseries *is = &inner.m.s[i];
			memset(&tmp, 0, sizeof tmp);
			rc = window_series_points(ev, f, &ws, &tmp, &wb, NULL, is->pts, is->n_pts);
			if (rc == 0 && tmp.n_pts) {
				const struct ts_label *o;
				uint32_t on;
				struct qseries *se;
				rc = out_labels(c, f, is->lab, is->n_lab, &o, &on);
				if (rc == 0)
					rc = ts__qm_add_series(c, &out->m, o, on, true, &se);
				if (rc == 0) {
					se->pts = tmp.pts;
					se->n_pts = tmp.n_pts;
					se->cap_pts = tmp.cap_pts;
					tmp.pts = NULL;
				}
				ts__qa_reset(&c->scratch);
			}
			if (tmp.pts) {
				ts__q_release(c, tmp.n_pts);
				ts_free(tmp.pts);
			}
			if (rc)
				goto out;
		}
	}
absent:
	if (f->id == TS_FN_ABSENT_OVER_TIME) {
		/* One series holding 1 at the steps where no input had samples. */
		bool *found = ts_calloc(ev->n_steps ? ev->n_steps : 1, sizeof *found);
		if (!found) {
			rc = ts__q_nomem(c);
			goto out;
		}
		for (size_t i = 0; i < out->m.n; i++)
			for (size_t k = 0; k < out->m.s[i].n_pts; k++)
				found[(out->m.s[i].pts[k].t_ms - ev->start) / ev->interval] = true;
		ts__qm_fini(c, &out->m);
		const struct ts_label *o;
		uint32_t on;
		struct qseries *se = NULL;
		rc = arg->kind == TS_AST_MATRIX_SELECTOR ? absent_labels(c, f, arg, &o, &on) : 0;
		if (arg->kind != TS_AST_MATRIX_SELECTOR) {
			o = NULL;
			on = 0;
		}
		for (size_t k = 0; rc == 0 && k < ev->n_steps; k++) {
			if (found[k])
				continue;
			if (!se && (rc = ts__qm_add_series(c, &out->m, o, on, true, &se)))
				break;
			rc = ts__qs_push(c, se, ev->start + (int64_t)k * ev->interval, 1);
		}
		ts_free(found);
		ts__qa_reset(&c->scratch);
		goto out;
	}
	rc = check_same_labelsets(c, &out->m);
out:
	ts_iter_free(it);
	ts_series_set_free(set);
	ts__q_value_fini(c, &inner);
	ts_free(wb.p);
	ts_free(wb.cum);
	return rc;
}

/* ---- per-step functions ---- */

/* Go's math.Max and math.Min: NaN wins (C's fmax/fmin ignore it), +0 > -0. */
static double go_max(double x, double y)
{
	if ((isinf(x) && x > 0) || (isinf(y) && y > 0))
		return INFINITY;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? y : x;
	return x > y ? x : y;
}

static double go_min(double x, double y)
{
	if ((isinf(x) && x < 0) || (isinf(y) && y < 0))
		return -INFINITY;
	if (isnan(x) || isnan(y))
		return NAN;
	if (x == 0 && x == y)
		return signbit(x) ? x : y;
	return x < y ? x : y;
}

static double fsgn(double v)
{
	return v < 0 ? -1 : v > 0 ? 1 : v;
}

static double simple(enum ts_func_id id, double v)
{
	switch (id) {
	case TS_FN_ABS: return fabs(v);
	case TS_FN_CEIL: return ceil(v);
	case TS_FN_FLOOR: return floor(v);
	case TS_FN_EXP: return exp(v);
	case TS_FN_SQRT: return sqrt(v);
	case TS_FN_LN: return log(v);
	case TS_FN_LOG2: return log2(v);
	case TS_FN_LOG10: return log10(v);
	case TS_FN_SIN: return sin(v);
	case TS_FN_COS: return cos(v);
	case TS_FN_TAN: return tan(v);
	case TS_FN_ASIN: return asin(v);
	case TS_FN_ACOS: return acos(v);
	case TS_FN_ATAN: return atan(v);
	case TS_FN_SINH: return sinh(v);
	case TS_FN_COSH: return cosh(v);
	case TS_FN_TANH: return tanh(v);
	case TS_FN_ASINH: return asinh(v);
	case TS_FN_ACOSH: return acosh(v);
	case TS_FN_ATANH: return atanh(v);
	case TS_FN_RAD: return v * M_PI / 180;
	case TS_FN_DEG: return v * 180 / M_PI;
	case TS_FN_SGN: return fsgn(v);
	default: return NAN;
	}
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Date parts of unix seconds s in UTC (proleptic Gregorian, as Go's time). */
/* Date parts of unix second s as Prometheus computes them: Go's time package works on
 * "absolute" seconds, uint64(s + 9223372028715321600), which wrap around 2^64 for times
 * before Go's earliest year; NaN, infinities and huge values (INT64_MIN seconds after
 * go_int64) land there, so the same wrapping arithmetic is needed to give the same
 * answers. Inside the representable range it is the ordinary proleptic Gregorian
 * calendar. */
static double date_part(enum ts_func_id id, int64_t s)
{
	const uint64_t abs = (uint64_t)s +
			     9223372028715321600ULL; /* unixToInternal + internalToAbsolute */
	const int64_t absolute_zero_year = -292277022399LL;
	uint64_t d = abs / 86400;
	uint64_t n = d / 146097;
	uint64_t y = 400 * n;
	d -= 146097 * n;
	n = d / 36524;
	n -= n >> 2;
	y += 100 * n;
	d -= 36524 * n;
	n = d / 1461;
	y += 4 * n;
	d -= 1461 * n;
	n = d / 365;
	n -= n >> 2;
	y += n;
	d -= 365 * n;
	int64_t year = (int64_t)y + absolute_zero_year;
	int yday = (int)d; /* 0-based */
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	static const int before[13] = {
		0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365
	};
	int month, day = yday;
	if (leap && day == 31 + 29 - 1) {
		month = 2;
		day = 29;
	} else {
		if (leap && day > 31 + 29 - 1)
			day--;	  /* after the leap day: pretend it was not there */
		month = day / 31; /* may be one too low */
		if (day >= before[month + 1])
			month++;
		day = day - before[month] + 1;
		month++;
	}
	int sod = (int)(abs % 86400);
	switch (id) {
	case TS_FN_DAY_OF_MONTH: return (double)day;
	case TS_FN_DAY_OF_WEEK:
		return (double)((int)(((abs + 86400) % 604800) / 86400)); /* Monday offset, as Go */
	case TS_FN_DAY_OF_YEAR: return (double)(yday + 1);
	case TS_FN_DAYS_IN_MONTH:
		return (double)(before[month] - before[month - 1] + (leap && month == 2));
	case TS_FN_HOUR: return (double)(sod / 3600);
	case TS_FN_MINUTE: return (double)((sod % 3600) / 60);
	case TS_FN_MONTH: return (double)month;
	case TS_FN_YEAR: return (double)year;
	default: return NAN;
	}
}

/* Go's int64(float64) on amd64: out-of-range and NaN give the minimum. */
static int64_t go_int64(double v)
{
	if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)v;
}

/* Go's strconv.ParseFloat acceptance (decimal, hex, inf, infinity, nan). */
static bool parse_go_float(const char *s, size_t len, double *out)
{
	char buf[128];
	if (len == 0 || len >= sizeof buf || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' ||
	    s[0] == '\r' || s[0] == '\v' || s[0] == '\f')
		return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '(' || buf[i] == 0)
			return false;
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	if (end != buf + len)
		return false;
	if (errno == ERANGE && isinf(v))
		return false;
	*out = v;
	return true;
}

struct bucket {
	double ub, count;
};

static int cmp_bucket(const void *a, const void *b)
{
	double x = ((const struct bucket *)a)->ub, y = ((const struct bucket *)b)->ub;
	return x < y ? -1 : x > y;
}

static double bucket_quantile(double q, struct bucket *b, size_t n)
{
	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	qsort(b, n, sizeof *b, cmp_bucket);
	if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
		return NAN;
	size_t w = 0;
	struct bucket last = b[0];
	for (size_t i = 1; i < n; i++) {
		if (b[i].ub == last.ub) {
			last.count += b[i].count;
		} else {
			b[w++] = last;
			last = b[i];
		}
	}
	b[w++] = last;
	n = w;
	double max = b[0].count;
	for (size_t i = 1; i < n; i++) {
		if (b[i].count > max)
			max = b[i].count;
		else if (b[i].count < max)
			b[i].count = max;
	}
	if (n < 2)
		return NAN;
	double obs = b[n - 1].count;
	if (obs == 0)
		return NAN;
	double rank = q * obs;
	size_t i = 0;
	while (i < n - 1 && !(b[i].count >= rank))
		i++;
	if (i == n - 1)
		return b[n - 2].ub;
	if (i == 0 && b[0].ub <= 0)
		return b[0].ub;
	double start = 0, end = b[i].ub, count = b[i].count;
	if (i > 0) {
		start = b[i - 1].ub;
		count -= b[i - 1].count;
		rank -= b[i - 1].count;
	}
	return start + (end - start) * (rank / count);
}

struct hgroup {
	const struct ts_label *lab;
	uint32_t n_lab;
	struct bucket *b;
	size_t n, cap;
};

static int step_histogram_quantile(struct qev *ev, struct fcall *f, struct qvector *in, int64_t ts,
				   struct qvector *out)
{
	struct qctx *c = ev->c;
	double q = in[0].n ? in[0].s[0].v : NAN;
	struct qvector *vec = &in[1];
	struct hgroup *g = NULL;
	size_t ng = 0, capg = 0;
	int rc = 0;
	static char *const le[] = { "le" };
	ts__qmap_clear(&f->map);
	for (size_t i = 0; i < vec->n && rc == 0; i++) {
		const struct qsample *s = &vec->s[i];
		uint32_t vl;
		const char *v = ts__ql_get(s->lab, s->n_lab, "le", &vl);
		double ub;
		if (!parse_go_float(v ? v : "", v ? vl : 0, &ub))
			continue;
		int64_t kl = ts__ql_key(c, s->lab, s->n_lab, 3, le, 1);
		if (kl < 0) {
			rc = (int)kl;
			break;
		}
		size_t gi = ts__qmap_find(&f->map, c->kbuf, (size_t)kl);
		if (gi == TS__QMAP_NONE) {
			char *k = ts__qa_strndup(&c->scratch, c->kbuf, (size_t)kl);
			if (ng == capg) {
				size_t cap = capg ? capg * 2 : 8;
				struct hgroup *p = ts_realloc(g, cap * sizeof *p);
				if (!p) {
					rc = ts__q_nomem(c);
					break;
				}
				g = p;
				capg = cap;
			}
			if (!k || ts__qmap_put(&f->map, k, (size_t)kl, ng)) {
				rc = ts__q_nomem(c);
				break;
			}
			gi = ng++;
			memset(&g[gi], 0, sizeof g[gi]);
			if ((rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab)))
				break;
			ts__qlb_del(&f->lb, "__name__", 8);
			ts__qlb_del(&f->lb, "le", 2);
			if ((rc = ts__qlb_finish(c, &f->lb, &g[gi].lab, &g[gi].n_lab)))
				break;
		}
		struct hgroup *h = &g[gi];
		if (h->n == h->cap) {
			size_t cap = h->cap ? h->cap * 2 : 16;
			struct bucket *p = ts_realloc(h->b, cap * sizeof *p);
			if (!p) {
				rc = ts__q_nomem(c);
				break;
			}
			h->b = p;
			h->cap = cap;
		}
		h->b[h->n++] = (struct bucket){ ub, s->v };
	}
	for (size_t i = 0; i < ng && rc == 0; i++)
		rc = ts__qv_push(c, out, g[i].lab, g[i].n_lab, ts,
				 bucket_quantile(q, g[i].b, g[i].n));
	for (size_t i = 0; i < ng; i++)
		ts_free(g[i].b);
	ts_free(g);
	return rc;
}

/* Go's Regexp.Expand template rules. */
static int expand(struct qctx *c, struct fcall *f, const char *tpl, size_t tlen, const char *src,
		  const PCRE2_SIZE *ov, uint32_t n_groups, char **out, size_t *out_len)
{
	size_t cap = tlen + 64, n = 0;
	char *d = ts__qa_alloc(&c->scratch, cap);
	if (!d)
		return ts__q_nomem(c);
#define APPEND(p, l)                                              \
	do {                                                      \
		size_t l_ = (l);                                  \
		if (n + l_ > cap) {                               \
			size_t nc = (n + l_) * 2;                 \
			char *nd = ts__qa_alloc(&c->scratch, nc); \
			if (!nd)                                  \
				return ts__q_nomem(c);            \
			memcpy(nd, d, n);                         \
			d = nd;                                   \
			cap = nc;                                 \
		}                                                 \
		memcpy(d + n, (p), l_);                           \
		n += l_;                                          \
	} while (0)
	size_t i = 0;
	while (i < tlen) {
		const char *dollar = memchr(tpl + i, '$', tlen - i);
		if (!dollar)
			break;
		size_t di = (size_t)(dollar - tpl);
		APPEND(tpl + i, di - i);
		i = di + 1;
		if (i < tlen && tpl[i] == '$') {
			APPEND("$", 1);
			i++;
			continue;
		}
		/* extract(): name or {name}; letters, digits, underscore (and non-ASCII). */
		size_t j = i;
		bool brace = j < tlen && tpl[j] == '{';
		if (brace)
			j++;
		size_t ns = j;
		while (j < tlen &&
		       (tpl[j] == '_' || (tpl[j] >= 'a' && tpl[j] <= 'z') ||
			(tpl[j] >= 'A' && tpl[j] <= 'Z') || (tpl[j] >= '0' && tpl[j] <= '9') ||
			(unsigned char)tpl[j] >= 0x80))
			j++;
		size_t nl = j - ns;
		if (nl == 0 || (brace && (j >= tlen || tpl[j] != '}'))) {
			APPEND("$", 1);
			continue;
		}
		const char *name = tpl + ns;
		if (brace)
			j++;
		i = j;
		long num = 0;
		for (size_t k = 0; k < nl; k++) {
			if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
				num = -1;
				break;
			}
			num = num * 10 + (name[k] - '0');
		}
		if (name[0] == '0' && nl > 1)
			num = -1;
		if (num < 0) {
			char nb[256];
			if (nl >= sizeof nb)
				continue;
			memcpy(nb, name, nl);
			nb[nl] = 0;
			int gn = pcre2_substring_number_from_name(f->re, (PCRE2_SPTR)nb);
			if (gn <= 0)
				continue;
			num = gn;
		}
		if ((uint32_t)num < n_groups && ov[2 * num] != PCRE2_UNSET)
			APPEND(src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
	}
	if (i < tlen)
		APPEND(tpl + i, tlen - i);
#undef APPEND
	*out = d;
	*out_len = n;
	return 0;
}

static const char *str_arg(const struct fcall *f, size_t i, size_t *len)
{
	const struct ts_ast *a = f->args[i];
	*len = a->string.len;
	return a->string.value;
}

static int step_label_replace(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			      struct qvector *out)
{
	struct qctx *c = ev->c;
	size_t dl, rl;
	const char *dst = str_arg(f, 1, &dl), *repl = str_arg(f, 2, &rl);
	const char *src = f->args[3]->string.value;
	for (size_t i = 0; i < vec->n; i++) {
		const struct qsample *s = &vec->s[i];
		uint32_t vl;
		const char *v = ts__ql_get(s->lab, s->n_lab, src, &vl);
		if (!v) {
			v = "";
			vl = 0;
		}
		int m = pcre2_match(f->re, (PCRE2_SPTR)v, vl, 0, 0, f->md, NULL);
		const struct ts_label *ol = s->lab;
		uint32_t on = s->n_lab;
		int rc;
		if (m >= 0) {
			char *res = NULL;
			size_t res_len = 0;
			const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->md);
			uint32_t ng = pcre2_get_ovector_count(f->md);
			if ((rc = expand(c, f, repl, rl, v, ov, ng, &res, &res_len)))
				return rc;
			if ((rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab)) ||
			    (rc = ts__qlb_set(c, &f->lb, dst, dl, res, res_len)) ||
			    (rc = ts__qlb_finish(c, &f->lb, &ol, &on)))
				return rc;
		} else if (m != PCRE2_ERROR_NOMATCH) {
			return TS__Q_EXEC(
				c, "label_replace(): regular expression match failed (%d)", m);
		}
		if ((rc = ts__qv_push(c, out, ol, on, ts, s->v)))
			return rc;
	}
	return 0;
}

static int step_label_join(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			   struct qvector *out)
{
	struct qctx *c = ev->c;
	size_t dl, sl;
	const char *dst = str_arg(f, 1, &dl), *sep = str_arg(f, 2, &sl);
	for (size_t i = 0; i < vec->n; i++) {
		const struct qsample *s = &vec->s[i];
		size_t total = 0;
		for (size_t a = 3; a < f->n_args; a++) {
			uint32_t vl;
			ts__ql_get(s->lab, s->n_lab, f->args[a]->string.value, &vl);
			total += vl + sl;
		}
		char *buf = ts__qa_alloc(&c->scratch, total + 1);
		if (!buf)
			return ts__q_nomem(c);
		size_t n = 0;
		for (size_t a = 3; a < f->n_args; a++) {
			uint32_t vl;
			const char *v = ts__ql_get(s->lab, s->n_lab, f->args[a]->string.value, &vl);
			if (a > 3) {
				memcpy(buf + n, sep, sl);
				n += sl;
			}
			if (v) {
				memcpy(buf + n, v, vl);
				n += vl;
			}
		}
		const struct ts_label *ol;
		uint32_t on;
		int rc;
		if ((rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab)) ||
		    (rc = ts__qlb_set(c, &f->lb, dst, dl, buf, n)) ||
		    (rc = ts__qlb_finish(c, &f->lb, &ol, &on)) ||
		    (rc = ts__qv_push(c, out, ol, on, ts, s->v)))
			return rc;
	}
	return 0;
}

static int push_dropped(struct qctx *c, struct qvector *out, const struct qsample *s, int64_t ts,
			double v)
{
	const struct ts_label *l;
	uint32_t n;
	int rc = ts__ql_drop_name(c, s->lab, s->n_lab, &l, &n);
	return rc ? rc : ts__qv_push(c, out, l, n, ts, v);
}

static int step_func(struct qev *ev, void *arg, struct qvector *in, int64_t ts, struct qvector *out)
{
	struct fcall *f = arg;
	struct qctx *c = ev->c;
	int rc = 0;
	switch (f->id) {
	case TS_FN_TIME: return ts__qv_push(c, out, NULL, 0, ts, (double)ts / 1000);
	case TS_FN_PI: return ts__qv_push(c, out, NULL, 0, ts, M_PI);
	case TS_FN_VECTOR: return ts__qv_push(c, out, NULL, 0, ts, in[0].s[0].v);
	case TS_FN_SCALAR:
		return ts__qv_push(c, out, NULL, 0, ts, in[0].n == 1 ? in[0].s[0].v : NAN);
	case TS_FN_HISTOGRAM_COUNT:
	case TS_FN_HISTOGRAM_SUM:
	case TS_FN_HISTOGRAM_FRACTION: return 0; /* float samples carry no native histogram */
	case TS_FN_HISTOGRAM_QUANTILE: return step_histogram_quantile(ev, f, in, ts, out);
	case TS_FN_LABEL_REPLACE: return step_label_replace(ev, f, &in[0], ts, out);
	case TS_FN_LABEL_JOIN: return step_label_join(ev, f, &in[0], ts, out);
	case TS_FN_ABSENT: {
		if (in[0].n > 0)
			return 0;
		const struct ts_label *l;
		uint32_t n;
		if ((rc = absent_labels(c, f, f->args[0], &l, &n)))
			return rc;
		return ts__qv_push(c, out, l, n, ts, 1);
	}
	case TS_FN_SORT:
	case TS_FN_SORT_DESC:
		if ((rc = ts__q_sort_rev_heap(c, in[0].s, in[0].n, f->id == TS_FN_SORT)))
			return rc;
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = ts__qv_push(c, out, in[0].s[i].lab, in[0].s[i].n_lab, ts,
					 in[0].s[i].v);
		return rc;
	case TS_FN_TIMESTAMP:
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  f->ts_ident ? in[0].s[i].v : (double)in[0].s[i].t / 1000);
		return rc;
	case TS_FN_ROUND: {
		double to = f->n_args >= 2 ? in[1].s[0].v : 1;
		double inv = 1.0 / to;
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  floor(in[0].s[i].v * inv + 0.5) / inv);
		return rc;
	}
	case TS_FN_CLAMP: {
		double mn = in[1].s[0].v, mx = in[2].s[0].v;
		if (mx < mn)
			return 0;
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  go_max(mn, go_min(mx, in[0].s[i].v)));
		return rc;
	}
	case TS_FN_CLAMP_MAX:
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  go_min(in[1].s[0].v, in[0].s[i].v));
		return rc;
	case TS_FN_CLAMP_MIN:
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  go_max(in[1].s[0].v, in[0].s[i].v));
		return rc;
	case TS_FN_DAY_OF_MONTH:
	case TS_FN_DAY_OF_WEEK:
	case TS_FN_DAY_OF_YEAR:
	case TS_FN_DAYS_IN_MONTH:
	case TS_FN_HOUR:
	case TS_FN_MINUTE:
	case TS_FN_MONTH:
	case TS_FN_YEAR:
		if (f->n_args == 0)
			return ts__qv_push(c, out, NULL, 0, ts,
					   date_part(f->id, floordiv(ts, 1000)));
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts,
					  date_part(f->id, go_int64(in[0].s[i].v)));
		return rc;
	default:
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = push_dropped(c, out, &in[0].s[i], ts, simple(f->id, in[0].s[i].v));
		return rc;
	}
}

static int setup_label_fn(struct qev *ev, struct fcall *f)
{
	struct qctx *c = ev->c;
	if (f->id == TS_FN_LABEL_JOIN) {
		for (size_t a = 3; a < f->n_args; a++) {
			const struct ts_ast *s = f->args[a];
			if (!ts__ql_valid_name(s->string.value, s->string.len))
				return TS__Q_EXEC(c,
						  "invalid source label name in label_join(): %s",
						  s->string.value);
		}
		if (!ts__ql_valid_name(f->args[1]->string.value, f->args[1]->string.len))
			return TS__Q_EXEC(c, "invalid destination label name in label_join(): %s",
					  f->args[1]->string.value);
		return 0;
	}
	size_t rl;
	const char *re = str_arg(f, 4, &rl);
	char *pat = ts_malloc(rl + 16);
	if (!pat)
		return ts__q_nomem(c);
	memcpy(pat, "^(?:", 4);
	memcpy(pat + 4, re, rl);
	memcpy(pat + 4 + rl, ")$", 2);
	int err;
	PCRE2_SIZE eo;
	f->re = pcre2_compile((PCRE2_SPTR)pat, rl + 6, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &err, &eo,
			      NULL);
	ts_free(pat);
	if (!f->re)
		return TS__Q_EXEC(c, "invalid regular expression in label_replace(): %s", re);
	f->md = pcre2_match_data_create_from_pattern(f->re, NULL);
	if (!f->md)
		return ts__q_nomem(c);
	if (!ts__ql_valid_name(f->args[1]->string.value, f->args[1]->string.len))
		return TS__Q_EXEC(c, "invalid destination label name in label_replace(): %s",
				  f->args[1]->string.value);
	return 0;
}

int ts__q_eval_call(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct fcall f;
	int rc = 0;
	memset(&f, 0, sizeof f);
	memset(out, 0, sizeof *out);
	f.n = n;
	f.id = n->call.func->id;
	f.matrix_arg = -1;
	f.n_args = n->call.n_args;
	if (f.n_args > 8)
		return TS__Q_EXEC(c, "too many arguments in call to %s", n->call.func->name);
	for (size_t i = 0; i < f.n_args; i++) {
		f.args[i] = unparen(n->call.args[i]);
		if (f.matrix_arg < 0 && (f.args[i]->kind == TS_AST_MATRIX_SELECTOR ||
					 f.args[i]->kind == TS_AST_SUBQUERY))
			f.matrix_arg = (int)i;
	}
	if (f.id == TS_FN_TIMESTAMP && f.args[0]->kind == TS_AST_VECTOR_SELECTOR) {
		struct qvalue sel;
		rc = ts__q_eval_vector_selector(ev, f.args[0], true, &sel);
		if (rc == 0) {
			struct qvalue *in[1] = { &sel };
			/* The values already are the sample times: only the name goes. */
			f.ts_ident = true;
			rc = ts__q_range_eval(ev, in, 1, step_func, &f, out);
		}
		ts__q_value_fini(c, &sel);
		goto out;
	}
	for (size_t i = 0; i < f.n_args; i++) {
		if ((int)i == f.matrix_arg)
			continue;
		if ((rc = ts__q_eval(ev, f.args[i], &f.vals[i])))
			goto out;
	}
	if (f.matrix_arg >= 0) {
		rc = matrix_path(ev, &f, out);
		goto out;
	}
	if ((f.id == TS_FN_LABEL_REPLACE || f.id == TS_FN_LABEL_JOIN) && ev->n_steps > 0 &&
	    (rc = setup_label_fn(ev, &f)))
		goto out;
	struct qvalue *in[8];
	for (size_t i = 0; i < f.n_args; i++)
		in[i] = &f.vals[i];
	rc = ts__q_range_eval(ev, in, f.n_args, step_func, &f, out);
	if (n->type == TS_VT_SCALAR)
		out->type = TS_VT_SCALAR;
out:
	for (size_t i = 0; i < f.n_args; i++)
		ts__q_value_fini(c, &f.vals[i]);
	ts_free(f.qbuf);
	if (f.md)
		pcre2_match_data_free(f.md);
	if (f.re)
		pcre2_code_free(f.re);
	ts__qlb_fini(&f.lb);
	ts__qmap_fini(&f.map);
	return rc;
}
