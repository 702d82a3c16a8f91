/*
 * eval_range.c - PromQL functions of a range vector (rate, increase, delta, irate,
 * idelta, deriv, predict_linear, holt_winters, resets, changes and the *_over_time
 * family) as Prometheus 2.42 computes them (promql/functions.go, quantile.go).
 *
 * The range argument is never materialised. For each input series a window
 * [ref - range, ref] (both ends closed, stale markers dropped) slides forward through
 * the steps, ref = step - offset (or @ - offset): samples enter from the series'
 * iterator (a matrix selector) or from the points of an evaluated subquery series,
 * and leave from the front, so memory is bounded by one window per series. A window's
 * counter resets come from a running count, without a scan. With @ every step sees
 * the same window, so the first step's outcome is repeated; predict_linear() with @
 * moves its window with the step as 2.42 does.
 *
 * Output series drop __name__ (except last_over_time); two outputs with one label set
 * are an error, checked over the whole result as Prometheus does. absent_over_time()
 * yields one series holding 1 at the steps where no input series had samples.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "query/eval_int.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

/* ---- the functions of one window ---- */

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


/* What a window function sees at one step: the live points p[0..n) (n >= 1), how many
 * of them are below their predecessor, and the window's bounds. */
struct window {
	const struct ts_qpoint *p;
	const double *w; /* downsampled reads of count/avg_over_time: weights; else NULL */
	size_t n;
	uint64_t n_resets;
	int64_t ts, mint, maxt;
	double range_s;
	size_t step; /* index of the step, for scalar arguments */
};

/* Scalar argument i of the call at step k. */
static double scalar_arg(const struct fcall *f, size_t i, size_t k)
{
	return f->vals[i].m.s[0].pts[k].v;
}

/* irate() and idelta(): the last two samples. */
static int instant_rate(const struct window *w, bool is_rate, double *out)
{
	if (w->n < 2)
		return 0;
	const struct ts_qpoint *l = &w->p[w->n - 1], *pr = &w->p[w->n - 2];
	double r = (is_rate && l->v < pr->v) ? l->v : l->v - pr->v;
	int64_t iv = l->t_ms - pr->t_ms;
	if (iv == 0)
		return 0;
	if (is_rate)
		r /= (double)iv / 1000;
	*out = r;
	return 1;
}

static int holt_winters(struct qctx *c, const struct window *w, double sf, double tf, double *out)
{
	if (sf <= 0 || sf >= 1)
		return TS__Q_EXEC(c, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
	if (tf <= 0 || tf >= 1)
		return TS__Q_EXEC(c, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
	if (w->n < 2)
		return 0;
	const struct ts_qpoint *p = w->p;
	double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
	for (size_t i = 1; i < w->n; i++) {
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

static double changes(const struct ts_qpoint *p, size_t n)
{
	int k = 0;
	double prev = p[0].v;
	for (size_t i = 1; i < n; i++) {
		double cur = p[i].v;
		if (cur != prev && !(isnan(cur) && isnan(prev)))
			k++;
		prev = cur;
	}
	return k;
}

/* The incremental mean, with Prometheus' guards for infinities. */
static double avg_over_time(const struct ts_qpoint *p, size_t n)
{
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
	return isinf(mean) ? mean : mean + cc;
}

/* max_over_time (max) or min_over_time: NaN is replaced by any value. */
static double extreme_over_time(const struct ts_qpoint *p, size_t n, bool max)
{
	double m = p[0].v;
	for (size_t i = 0; i < n; i++) {
		double v = p[i].v;
		if ((max ? v > m : v < m) || isnan(m))
			m = v;
	}
	return m;
}

/* Downsampled windows: rows carry their sums as values and their counts as weights. */
static double weight_sum(const double *w, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += w[i]; /* counts are integers: exact below 2^53 */
	return s;
}

static double weighted_avg(const struct ts_qpoint *p, const double *w, size_t n)
{
	double s = 0, cc = 0;
	for (size_t i = 0; i < n; i++)
		kahan_inc(p[i].v, &s, &cc);
	if (!isinf(s))
		s += cc;
	return s / weight_sum(w, n);
}

static double sum_over_time(const struct ts_qpoint *p, size_t n)
{
	double s = 0, cc = 0;
	for (size_t i = 0; i < n; i++)
		kahan_inc(p[i].v, &s, &cc);
	return isinf(s) ? s : s + cc;
}

/* Welford's update, compensated. */
static double stdvar_over_time(const struct ts_qpoint *p, size_t n)
{
	double cnt = 0, mean = 0, cm = 0, aux = 0, ca = 0;
	for (size_t i = 0; i < n; i++) {
		double v = p[i].v;
		cnt++;
		double delta = v - (mean + cm);
		kahan_inc(delta / cnt, &mean, &cm);
		kahan_inc(delta * (v - (mean + cm)), &aux, &ca);
	}
	return (aux + ca) / cnt;
}

static int quantile_over_time(struct qctx *c, struct fcall *f, const struct window *w, double *out)
{
	if (ts_grow((void **)&f->qvals, &f->qvals_cap, w->n, sizeof *f->qvals))
		return ts__q_nomem(c);
	for (size_t i = 0; i < w->n; i++)
		f->qvals[i] = w->p[i].v;
	*out = ts__q_quantile(scalar_arg(f, 0, w->step), f->qvals, w->n);
	return 1;
}

/* Computes function f over window w. Returns 1 with *out set, 0 for no output, or an
 * error. */
static int win_apply(struct qctx *c, struct fcall *f, const struct window *w, double *out)
{
	const struct ts_qpoint *p = w->p;
	size_t n = w->n;
	double slope, icpt;
	switch (f->id) {
	case TS_FN_RATE:
	case TS_FN_INCREASE:
	case TS_FN_DELTA:
		if (n < 2)
			return 0;
		*out = extrapolated_rate(p, n, w->mint, w->maxt, w->range_s, f->id != TS_FN_DELTA,
					 f->id == TS_FN_RATE, w->n_resets);
		return 1;
	case TS_FN_IRATE:
	case TS_FN_IDELTA: return instant_rate(w, f->id == TS_FN_IRATE, out);
	case TS_FN_DERIV:
		if (n < 2)
			return 0;
		linreg(p, n, p[0].t_ms, &slope, &icpt);
		*out = slope;
		return 1;
	case TS_FN_PREDICT_LINEAR:
		if (n < 2)
			return 0;
		linreg(p, n, w->ts, &slope, &icpt);
		*out = slope * scalar_arg(f, 1, w->step) + icpt;
		return 1;
	case TS_FN_HOLT_WINTERS:
		return holt_winters(c, w, scalar_arg(f, 1, w->step), scalar_arg(f, 2, w->step),
				    out);
	case TS_FN_RESETS: *out = (double)w->n_resets; return 1;
	case TS_FN_CHANGES: *out = changes(p, n); return 1;
	case TS_FN_AVG_OVER_TIME:
		*out = w->w ? weighted_avg(p, w->w, n) : avg_over_time(p, n);
		return 1;
	case TS_FN_COUNT_OVER_TIME: *out = w->w ? weight_sum(w->w, n) : (double)n; return 1;
	case TS_FN_LAST_OVER_TIME: *out = p[n - 1].v; return 1;
	case TS_FN_PRESENT_OVER_TIME:
	case TS_FN_ABSENT_OVER_TIME: *out = 1; return 1;
	case TS_FN_MAX_OVER_TIME:
	case TS_FN_MIN_OVER_TIME:
		*out = extreme_over_time(p, n, f->id == TS_FN_MAX_OVER_TIME);
		return 1;
	case TS_FN_SUM_OVER_TIME: *out = sum_over_time(p, n); return 1;
	case TS_FN_QUANTILE_OVER_TIME: return quantile_over_time(c, f, w, out);
	case TS_FN_STDDEV_OVER_TIME: *out = sqrt(stdvar_over_time(p, n)); return 1;
	case TS_FN_STDVAR_OVER_TIME: *out = stdvar_over_time(p, n); return 1;
	default:
		return TS__Q_EXEC(c, "function \"%s\" over a range vector is not supported",
				  f->n->call.func->name);
	}
}

/* ---- sliding a window along a series ---- */

/* A growing window buffer: points [head, n) are live. cum[i] counts the samples up
 * to i that are below their predecessor (counter resets), so a window's resets are
 * cum[n-1] - cum[head] without a scan. */
struct wbuf {
	struct ts_qpoint *p;
	uint64_t *cum;
	double *w; /* weights, when weighted */
	bool weighted;
	size_t head, n, cap_p, cap_cum, cap_w;
	uint64_t resets;
	double last_v;
	bool have_last;
};

static int wbuf_push(struct qctx *c, struct wbuf *w, int64_t t, double v, double wt)
{
	if (w->n == w->cap_p && w->head > 0 && w->head >= w->n / 2) {
		/* Full, but at least half of it has left the window: reuse that room
		 * (else grow, so that compaction stays rare: amortised O(1) moves). */
		memmove(w->p, w->p + w->head, (w->n - w->head) * sizeof *w->p);
		memmove(w->cum, w->cum + w->head, (w->n - w->head) * sizeof *w->cum);
		if (w->weighted)
			memmove(w->w, w->w + w->head, (w->n - w->head) * sizeof *w->w);
		w->n -= w->head;
		w->head = 0;
	}
	if (w->n == w->cap_p && ts_grow((void **)&w->p, &w->cap_p, w->n + 1, sizeof *w->p))
		return ts__q_nomem(c);
	if (w->n == w->cap_cum && ts_grow((void **)&w->cum, &w->cap_cum, w->n + 1, sizeof *w->cum))
		return ts__q_nomem(c);
	if (w->weighted) {
		if (w->n == w->cap_w && ts_grow((void **)&w->w, &w->cap_w, w->n + 1, sizeof *w->w))
			return ts__q_nomem(c);
		w->w[w->n] = wt;
	}
	if (w->have_last && v < w->last_v)
		w->resets++;
	w->last_v = v;
	w->have_last = true;
	w->cum[w->n] = w->resets;
	w->p[w->n++] = (struct ts_qpoint){ t, v };
	return 0;
}

/* Where the window of a step ends. */
struct wspec {
	int64_t off, range;
	bool fixed; /* @ (not predict_linear): the same window at every step */
	int64_t fixed_maxt;
	bool moving_at; /* predict_linear with @: 2.42 moves the window with the step */
	int64_t shift;
};

static int64_t wmaxt(const struct wspec *w, int64_t ts)
{
	return w->fixed ? w->fixed_maxt : ts - w->off - w->shift;
}

static void window_spec(const struct qctx *c, const struct fcall *f, const struct ts_ast *arg,
			struct wspec *ws)
{
	enum ts_at at;
	int64_t at_ms;
	memset(ws, 0, sizeof *ws);
	if (arg->kind == TS_AST_MATRIX_SELECTOR) {
		ws->off = arg->matrix.vs->vs.offset_ms;
		ws->range = arg->matrix.range_ms;
		at = arg->matrix.vs->vs.at;
		at_ms = arg->matrix.vs->vs.at_ms;
	} else {
		ws->off = arg->subquery.offset_ms;
		ws->range = arg->subquery.range_ms;
		at = arg->subquery.at;
		at_ms = arg->subquery.at_ms;
	}
	if (at == TS_AT_NONE)
		return;
	int64_t t = ts__q_at_time(c, at, at_ms);
	if (f->id == TS_FN_PREDICT_LINEAR) {
		ws->moving_at = true;
		ws->shift = c->q_start - t;
	} else {
		ws->fixed = true;
		ws->fixed_maxt = t - ws->off;
	}
}

/* Where a window's samples come from: a series' iterator (matrix selector) or the
 * points of an evaluated subquery series. */
struct wsrc {
	struct ts_iter *it; /* NULL: arr */
	struct qbuf qb;
	const struct ts_qpoint *arr;
	size_t n_arr, ai;
};

/* The current sample (t, v) is kept in the caller's locals, not in *s, so that the
 * compiler can hold it in registers across the window's stores. */
static int wsrc_next(struct qctx *c, struct wsrc *s, bool *have, int64_t *t, double *v)
{
	if (!s->it) {
		*have = s->ai < s->n_arr;
		if (*have) {
			*t = s->arr[s->ai].t_ms;
			*v = s->arr[s->ai].v;
			s->ai++;
		}
		return 0;
	}
	int rc = qbuf_next(&s->qb, t, v);
	if (rc < 0)
		return ts__q_iter_err(c, rc);
	*have = rc == 1;
	c->scanned += (uint64_t)*have;
	return 0;
}

/* Skips what is before mint: an iterator by seeking (an array is walked instead). */
static int wsrc_skip_to(struct qctx *c, struct wsrc *s, int64_t mint, bool *have, int64_t *t,
			double *v)
{
	if (!s->it || !*have || *t >= mint)
		return 0;
	int rc = qbuf_seek(&s->qb, mint, t, v);
	if (rc < 0)
		return ts__q_iter_err(c, rc);
	*have = rc == 1;
	c->scanned += (uint64_t)*have;
	return 0;
}

static int window_steps(struct qev *ev, struct fcall *f, const struct wspec *ws, struct wbuf *wb,
			struct ts_iter *it, const struct ts_qpoint *arr, size_t n_arr,
			struct qseries *se)
{
	struct qctx *c = ev->c;
	struct wsrc src = { .it = it, .arr = arr, .n_arr = n_arr };
	bool have = false;
	int64_t t = 0;
	double v = 0;
	struct window w = { .range_s = (double)ws->range / 1000 };
	int rc;
	if (it) {
		qbuf_init(&src.qb, it);
		src.qb.weighted = wb->weighted;
	}
	wb->head = wb->n = 0;
	wb->resets = 0;
	wb->have_last = false;
	if ((rc = wsrc_next(c, &src, &have, &t, &v)))
		return rc;
	for (size_t k = 0; k < ev->n_steps; k++) {
		int64_t ts = ev->start + (int64_t)k * ev->interval;
		if (ws->fixed && k > 0) {
			/* Same window at every step: repeat the first step's outcome. */
			if (se->n_pts && (rc = ts__qs_push(c, se, ts, se->pts[0].v)))
				return rc;
			continue;
		}
		w.ts = ts;
		w.step = k;
		w.maxt = wmaxt(ws, ts);
		w.mint = w.maxt - ws->range;
		while (wb->head < wb->n && wb->p[wb->head].t_ms < w.mint)
			wb->head++;
		if ((rc = wsrc_skip_to(c, &src, w.mint, &have, &t, &v)))
			return rc;
		while (have && t <= w.maxt) {
			if (t >= w.mint && !ts__q_is_stale(v) &&
			    (rc = wbuf_push(c, wb, t, v, wb->weighted ? qbuf_w(&src.qb) : 1)))
				return rc;
			if ((rc = wsrc_next(c, &src, &have, &t, &v)))
				return rc;
		}
		w.n = wb->n - wb->head;
		if (w.n == 0)
			continue;
		if (c->cur_samples + w.n > c->max_samples)
			return ts__q_too_many_samples(c);
		if ((rc = ts__q_check(c)))
			return rc;
		w.p = wb->p + wb->head;
		w.w = wb->weighted ? wb->w + wb->head : NULL;
		w.n_resets = wb->cum[wb->n - 1] - wb->cum[wb->head];
		double out = 0;
		rc = win_apply(c, f, &w, &out);
		if (rc < 0)
			return rc;
		if (rc == 1 && (rc = ts__qs_push(c, se, ts, out)))
			return rc;
	}
	return 0;
}

/* ---- the series of a call ---- */

/* Adds the points of one input series' outcome (tmp, taken over when it has any) to
 * out, labelled as f's output: the input labels without __name__, except for
 * last_over_time. */
static int add_series(struct qctx *c, struct fcall *f, const struct ts_label *l, uint32_t n,
		      struct qseries *tmp, struct qvalue *out)
{
	if (!tmp->n_pts)
		return 0;
	const struct ts_label *o = l;
	uint32_t on = n;
	struct qseries *se;
	int rc = 0;
	if (f->id != TS_FN_LAST_OVER_TIME)
		rc = ts__ql_drop_name(c, l, n, &o, &on);
	if (rc == 0)
		rc = ts__qm_add_series(c, &out->m, o, on, true, &se);
	if (rc == 0) {
		se->pts = tmp->pts;
		se->n_pts = tmp->n_pts;
		se->cap_pts = tmp->cap_pts;
		tmp->pts = NULL;
		tmp->n_pts = tmp->cap_pts = 0;
	}
	ts__qa_reset(&c->scratch);
	return rc;
}


/* ---- spreading the series over helper threads ---- */

struct wpar {
	struct fcall *f;
	const struct wspec *ws;
	bool weighted;
};

/* Slides the window along one input series (the samples of `it`, or arr[0..n_arr)),
 * pushing f's value at each step into se: at most a point a step, so a series' first
 * allocation is sized by the steps. */
static int window_series(struct qev *ev, struct fcall *f, const struct wspec *ws, struct wbuf *wb,
			 struct ts_iter *it, const struct ts_qpoint *arr, size_t n_arr,
			 struct qseries *se)
{
	size_t saved = ev->c->first_cap;
	ev->c->first_cap = ev->n_steps < 16 ? ev->n_steps : 16;
	int rc = window_steps(ev, f, ws, wb, it, arr, n_arr, se);
	ev->c->first_cap = saved;
	return rc;
}

static int wpar_one(struct qev *ev, void *arg, void *state, struct ts_iter *it, struct qseries *out)
{
	struct wpar *p = arg;
	struct wbuf *wb = state;
	wb->weighted = p->weighted;
	return window_series(ev, p->f, p->ws, wb, it, NULL, 0, out);
}

static void wpar_fini(void *state)
{
	struct wbuf *wb = state;
	ts_free(wb->p);
	ts_free(wb->cum);
	ts_free(wb->w);
}

static const struct ts__qpar_series_ops wpar_ops = { sizeof(struct wbuf), wpar_one, wpar_fini };

/* The series of set (ns of them) windowed by the calling thread and helpers together,
 * then added to out in order, as the sequential loop does. */
static int selector_windows_par(struct qev *ev, struct fcall *f, const struct wspec *ws,
				struct wbuf *wb, struct ts_series_set *set, size_t ns,
				struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct wpar p = { f, ws, wb->weighted };
	struct qseries *res;
	int rc = ts__qpar_series(ev, set, ns, &wpar_ops, &p, &res);
	if (rc)
		return rc;
	for (size_t i = 0; i < ns; i++) {
		if (rc == 0) {
			const struct ts_label *l;
			uint32_t nl;
			if ((rc = ts_series_set_labels(set, i, &l, &nl)))
				rc = ts__q_iter_err(c, rc);
			else
				rc = add_series(c, f, l, nl, &res[i], out);
		}
		ts__qs_drop(c, &res[i]);
	}
	ts_free(res);
	return rc;
}

/* A matrix selector argument: windows over each selected series' iterator. */
static int selector_windows(struct qev *ev, struct fcall *f, const struct ts_ast *arg,
			    const struct wspec *ws, struct wbuf *wb, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct ts_series_set *set = NULL;
	int64_t lo = wmaxt(ws, ev->start) - ws->range;
	int64_t hi = wmaxt(ws, ev->start + (int64_t)(ev->n_steps - 1) * ev->interval);
	if (ws->moving_at) {
		/* 2.42 selects only around @ but moves the window with the step, so
		 * later windows see fewer samples. */
		hi = c->q_start - ws->shift - ws->off;
		lo = hi - ws->range;
	}
	int64_t res = ts__q_res(ev, (int)f->id, ws->range);
	int rc = ts__q_select(c, arg->matrix.vs, lo, hi, res, ts__q_aggr((int)f->id), &set);
	/* Downsampled rows stand for several samples: count and avg weigh them (rows are
	 * read at res 0 too, where retention deleted the raw samples). */
	wb->weighted = rc == 0 && ts_series_set_resolution(set) > 0 &&
		       (f->id == TS_FN_COUNT_OVER_TIME || f->id == TS_FN_AVG_OVER_TIME);
	size_t ns = rc ? 0 : ts_series_set_len(set);
	/* quantile_over_time() sorts in the call's one scratch array: not spread. */
	if (rc == 0 && f->id != TS_FN_QUANTILE_OVER_TIME && ts__qpar_worth(ns)) {
		rc = selector_windows_par(ev, f, ws, wb, set, ns, out);
		ts_series_set_free(set);
		return rc;
	}
	for (size_t i = 0; i < ns && rc == 0; i++) {
		const struct ts_label *l;
		uint32_t nl;
		struct ts_iter *it = NULL;
		if ((rc = ts_series_set_labels(set, i, &l, &nl)) ||
		    (rc = ts_iter_new(set, i, &it))) {
			ts_iter_free(it);
			rc = ts__q_iter_err(c, rc);
			break;
		}
		struct qseries tmp = { 0 };
		rc = window_series(ev, f, ws, wb, it, NULL, 0, &tmp);
		ts_iter_free(it);
		if (rc == 0)
			rc = add_series(c, f, l, nl, &tmp, out);
		ts__qs_drop(c, &tmp);
	}
	ts_series_set_free(set);
	return rc;
}

/* A subquery argument: evaluated first, then windowed the same way over its points. */
static int subquery_windows(struct qev *ev, struct fcall *f, const struct ts_ast *arg,
			    const struct wspec *ws, struct wbuf *wb, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct qvalue inner = { 0 };
	struct qev sub;
	int rc = ts__q_subquery_ev(ev, arg, &sub);
	if (rc)
		return rc;
	if (ws->moving_at && ev->n_steps > 1)
		/* 2.42 moves these windows with the step over data selected around @;
		 * we do not reproduce that. */
		return TS__Q_EXEC(
			c,
			"predict_linear() of a subquery with @ in a range query is not supported");
	rc = ts__q_eval(&sub, arg->subquery.expr, &inner);
	for (size_t i = 0; i < inner.m.n && rc == 0; i++) {
		const struct qseries *is = &inner.m.s[i];
		struct qseries tmp = { 0 };
		rc = window_series(ev, f, ws, wb, NULL, is->pts, is->n_pts, &tmp);
		if (rc == 0)
			rc = add_series(c, f, is->lab, is->n_lab, &tmp, out);
		ts__qs_drop(c, &tmp);
	}
	ts__q_value_fini(c, &inner);
	return rc;
}

/* absent_over_time(): one series holding 1 at the steps where no input series had
 * samples (out holds present_over_time's result on entry). */
static int absent_over_time(struct qev *ev, struct fcall *f, const struct ts_ast *arg,
			    struct qvalue *out)
{
	struct qctx *c = ev->c;
	bool *found = ts_calloc(ev->n_steps ? ev->n_steps : 1, sizeof *found);
	if (!found)
		return ts__q_nomem(c);
	for (size_t i = 0; i < out->m.n; i++)
		for (size_t k = 0; k < out->m.s[i].n_pts; k++)
			found[(out->m.s[i].pts[k].t_ms - ev->start) / ev->interval] = true;
	ts__qm_fini(c, &out->m);
	const struct ts_label *o = NULL;
	uint32_t on = 0;
	struct qseries *se = NULL;
	int rc = 0;
	if (arg->kind == TS_AST_MATRIX_SELECTOR)
		rc = ts__q_absent_labels(c, f, arg, &o, &on);
	for (size_t k = 0; rc == 0 && k < ev->n_steps; k++) {
		if (found[k])
			continue;
		if (!se && (rc = ts__qm_add_series(c, &out->m, o, on, true, &se)))
			break;
		rc = ts__qs_push(c, se, ev->start + (int64_t)k * ev->interval, 1);
	}
	ts_free(found);
	ts__qa_reset(&c->scratch);
	return rc;
}

int ts__q_eval_range_call(struct qev *ev, struct fcall *f, struct qvalue *out)
{
	struct qctx *c = ev->c;
	const struct ts_ast *arg = f->args[f->range_arg];
	struct wspec ws;
	struct wbuf wb = { 0 };
	int rc = 0;
	memset(out, 0, sizeof *out);
	out->type = TS_VT_VECTOR;
	window_spec(c, f, arg, &ws);
	if (ev->n_steps > 0)
		rc = arg->kind == TS_AST_MATRIX_SELECTOR
			     ? selector_windows(ev, f, arg, &ws, &wb, out)
			     : subquery_windows(ev, f, arg, &ws, &wb, out);
	if (rc == 0)
		rc = f->id == TS_FN_ABSENT_OVER_TIME ? absent_over_time(ev, f, arg, out)
						     : ts__q_check_same_labelsets(c, &out->m);
	ts_free(wb.p);
	ts_free(wb.cum);
	ts_free(wb.w);
	return rc;
}
