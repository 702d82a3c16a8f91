/*
 * eval_func.c - PromQL function calls as Prometheus 2.42 evaluates them
 * (promql/functions.go): the dispatcher, and the functions of instant vectors and
 * scalars, which run step by step through ts__q_range_eval().
 *
 * A call with a range-vector argument (rate, *_over_time, ...) goes to eval_range.c;
 * label_replace and label_join live in eval_label.c. Here: math on each element (the
 * metric name is dropped, as by any function that changes values), round and clamp
 * with Go's math.Max/Min (NaN wins, +0 > -0), time() and the date functions (Go's
 * calendar arithmetic, including its wrapping for out-of-range times), vector(),
 * scalar(), sort/sort_desc (Go's sort.Reverse of a heap order), timestamp(), absent()
 * and histogram_quantile() over classic buckets (le labels parsed as Go's ParseFloat).
 * Native-histogram functions (histogram_count/sum/fraction) see only float samples
 * here, for which Prometheus returns nothing; so do we.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/eval_int.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

/* ---- element-wise math ---- */

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

/* Go's math.Log2 and math.Log10, which Prometheus uses: built on the natural log, so
 * their last bit can differ from C's log2/log10; count_values and label functions turn
 * values into label text, where one ulp makes another series. The constants are 1/ln 2
 * and 1/ln 10 rounded once, as Go's constant arithmetic gives them. */
static double go_log2(double v)
{
	int e;
	double f = frexp(v, &e);
	if (f == 0.5)
		return (double)(e - 1); /* exact for powers of two */
	return log(f) * 1.44269504088896340735992468100189214 + (double)e;
}

static double go_log10(double v)
{
	return log(v) * 0.43429448190325182765112891891660508;
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
	case TS_FN_LOG2: return go_log2(v);
	case TS_FN_LOG10: return go_log10(v);
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

/* ---- dates ---- */

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

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

/* ---- histogram_quantile ---- */

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
	double r;
	if (ts__q_quantile_outside(q, &r))
		return r;
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

struct hgroups {
	struct hgroup *g;
	size_t n, cap;
};

/* The group of bucket sample s: its labels without le and __name__ (f->map: key of
 * those labels -> group). */
static int hgroup_of(struct qctx *c, struct fcall *f, struct hgroups *gs, const struct qsample *s,
		     struct hgroup **out)
{
	static char *const le[] = { "le" };
	*out = NULL;
	int64_t kl = ts__ql_key(c, s->lab, s->n_lab, TS__QKEY_EXCEPT, le, 1);
	if (kl < 0)
		return (int)kl;
	size_t gi = ts__qmap_find(&f->map, c->kbuf, (size_t)kl);
	if (gi == TS__QMAP_NONE) {
		char *k = ts__qa_strndup(&c->scratch, c->kbuf, (size_t)kl);
		if (ts_grow((void **)&gs->g, &gs->cap, gs->n + 1, sizeof *gs->g) || !k ||
		    ts__qmap_put(&f->map, k, (size_t)kl, gs->n))
			return ts__q_nomem(c);
		gi = gs->n++;
		struct hgroup *h = &gs->g[gi];
		memset(h, 0, sizeof *h);
		int rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab);
		if (rc)
			return rc;
		ts__qlb_del(&f->lb, "__name__", 8);
		ts__qlb_del(&f->lb, "le", 2);
		if ((rc = ts__qlb_finish(c, &f->lb, &h->lab, &h->n_lab)))
			return rc;
	}
	*out = &gs->g[gi];
	return 0;
}

static int step_histogram_quantile(struct qev *ev, struct fcall *f, struct qvector *in, int64_t ts,
				   struct qvector *out)
{
	struct qctx *c = ev->c;
	double q = in[0].n ? in[0].s[0].v : NAN;
	struct qvector *vec = &in[1];
	struct hgroups gs = { 0 };
	int rc = 0;
	ts__qmap_clear(&f->map);
	for (size_t i = 0; i < vec->n && rc == 0; i++) {
		const struct qsample *s = &vec->s[i];
		uint32_t vl;
		const char *v = ts__ql_get(s->lab, s->n_lab, "le", &vl);
		double ub;
		struct hgroup *h;
		if (!parse_go_float(v ? v : "", v ? vl : 0, &ub))
			continue;
		if ((rc = hgroup_of(c, f, &gs, s, &h)))
			break;
		if (h->n == h->cap && ts_grow((void **)&h->b, &h->cap, h->n + 1, sizeof *h->b)) {
			rc = ts__q_nomem(c);
			break;
		}
		h->b[h->n++] = (struct bucket){ ub, s->v };
	}
	for (size_t i = 0; i < gs.n && rc == 0; i++)
		rc = ts__qv_push(c, out, gs.g[i].lab, gs.g[i].n_lab, ts,
				 bucket_quantile(q, gs.g[i].b, gs.g[i].n));
	for (size_t i = 0; i < gs.n; i++)
		ts_free(gs.g[i].b);
	ts_free(gs.g);
	return rc;
}

/* ---- absent ---- */

/* Labels of absent()/absent_over_time(): the equality matchers of a selector. */
int ts__q_absent_labels(struct qctx *c, struct fcall *f, const struct ts_ast *arg,
			const struct ts_label **o, uint32_t *on)
{
	int rc;
	*o = NULL;
	*on = 0;
	arg = ts__q_unparen(arg);
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

/* ---- the step function ---- */

static int push_dropped(struct qctx *c, struct qvector *out, const struct qsample *s, int64_t ts,
			double v)
{
	const struct ts_label *l;
	uint32_t n;
	int rc = ts__ql_drop_name(c, s->lab, s->n_lab, &l, &n);
	return rc ? rc : ts__qv_push(c, out, l, n, ts, v);
}

static bool is_date_fn(enum ts_func_id id)
{
	switch (id) {
	case TS_FN_DAY_OF_MONTH:
	case TS_FN_DAY_OF_WEEK:
	case TS_FN_DAY_OF_YEAR:
	case TS_FN_DAYS_IN_MONTH:
	case TS_FN_HOUR:
	case TS_FN_MINUTE:
	case TS_FN_MONTH:
	case TS_FN_YEAR: return true;
	default: return false;
	}
}

/* The value of a function that maps each element x of its first argument (scalar
 * arguments in in[1], in[2] have a point at every step). */
static double map_value(const struct fcall *f, const struct qvector *in, const struct qsample *x)
{
	switch (f->id) {
	case TS_FN_TIMESTAMP: return f->ts_ident ? x->v : (double)x->t / 1000;
	case TS_FN_ROUND: {
		double to = f->n_args >= 2 ? in[1].s[0].v : 1;
		double inv = 1.0 / to;
		return floor(x->v * inv + 0.5) / inv;
	}
	case TS_FN_CLAMP: return go_max(in[1].s[0].v, go_min(in[2].s[0].v, x->v));
	case TS_FN_CLAMP_MAX: return go_min(in[1].s[0].v, x->v);
	case TS_FN_CLAMP_MIN: return go_max(in[1].s[0].v, x->v);
	default:
		if (is_date_fn(f->id))
			return date_part(f->id, go_int64(x->v));
		return simple(f->id, x->v);
	}
}

static int step_func(struct qev *ev, void *arg, struct qvector *in, int64_t ts, struct qvector *out)
{
	struct fcall *f = arg;
	struct qctx *c = ev->c;
	const struct ts_label *l;
	uint32_t n;
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
	case TS_FN_LABEL_REPLACE: return ts__q_step_label_replace(ev, f, &in[0], ts, out);
	case TS_FN_LABEL_JOIN: return ts__q_step_label_join(ev, f, &in[0], ts, out);
	case TS_FN_ABSENT:
		if (in[0].n > 0)
			return 0;
		if ((rc = ts__q_absent_labels(c, f, f->args[0], &l, &n)))
			return rc;
		return ts__qv_push(c, out, l, n, ts, 1);
	case TS_FN_SORT:
	case TS_FN_SORT_DESC:
		if ((rc = ts__q_sort_rev_heap(c, in[0].s, in[0].n, f->id == TS_FN_SORT)))
			return rc;
		for (size_t i = 0; i < in[0].n && rc == 0; i++)
			rc = ts__qv_push(c, out, in[0].s[i].lab, in[0].s[i].n_lab, ts,
					 in[0].s[i].v);
		return rc;
	case TS_FN_CLAMP:
		if (in[2].s[0].v < in[1].s[0].v)
			return 0;
		break;
	default:
		if (is_date_fn(f->id) && f->n_args == 0)
			return ts__qv_push(c, out, NULL, 0, ts,
					   date_part(f->id, floordiv(ts, 1000)));
		break;
	}
	for (size_t i = 0; i < in[0].n && rc == 0; i++)
		rc = push_dropped(c, out, &in[0].s[i], ts, map_value(f, in, &in[0].s[i]));
	return rc;
}

/* ---- calls ---- */

/* timestamp() of a vector selector: the selector yields the sample times directly
 * (timestamp(x @ t offset o) ignores o, as 2.42 does). */
static int eval_timestamp_of_selector(struct qev *ev, struct fcall *f, struct qvalue *out)
{
	struct qvalue sel;
	int rc = ts__q_eval_vector_selector(ev, f->args[0], true, &sel);
	if (rc == 0) {
		struct qvalue *in[1] = { &sel };
		/* The values already are the sample times: only the name goes. */
		f->ts_ident = true;
		rc = ts__q_range_eval(ev, in, 1, step_func, f, out);
	}
	ts__q_value_fini(ev->c, &sel);
	return rc;
}

static int eval_call(struct qev *ev, struct fcall *f, struct qvalue *out)
{
	int rc;
	if (f->id == TS_FN_TIMESTAMP && f->args[0]->kind == TS_AST_VECTOR_SELECTOR)
		return eval_timestamp_of_selector(ev, f, out);
	for (size_t i = 0; i < f->n_args; i++) {
		if ((int)i == f->range_arg)
			continue;
		if ((rc = ts__q_eval(ev, f->args[i], &f->vals[i])))
			return rc;
	}
	if (f->range_arg >= 0)
		return ts__q_eval_range_call(ev, f, out);
	if ((f->id == TS_FN_LABEL_REPLACE || f->id == TS_FN_LABEL_JOIN) && ev->n_steps > 0 &&
	    (rc = ts__q_label_fn_setup(ev, f)))
		return rc;
	struct qvalue *in[TS__Q_MAX_ARGS];
	for (size_t i = 0; i < f->n_args; i++)
		in[i] = &f->vals[i];
	rc = ts__q_range_eval(ev, in, f->n_args, step_func, f, out);
	if (f->n->type == TS_VT_SCALAR)
		out->type = TS_VT_SCALAR;
	return rc;
}

int ts__q_eval_call(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct fcall f;
	memset(&f, 0, sizeof f);
	memset(out, 0, sizeof *out);
	f.n = n;
	f.id = n->call.func->id;
	f.range_arg = -1;
	f.n_args = n->call.n_args;
	if (f.n_args > TS__Q_MAX_ARGS)
		return TS__Q_EXEC(c, "too many arguments in call to %s", n->call.func->name);
	for (size_t i = 0; i < f.n_args; i++) {
		f.args[i] = ts__q_unparen(n->call.args[i]);
		if (f.range_arg < 0 && (f.args[i]->kind == TS_AST_MATRIX_SELECTOR ||
					f.args[i]->kind == TS_AST_SUBQUERY))
			f.range_arg = (int)i;
	}
	int rc = eval_call(ev, &f, out);
	for (size_t i = 0; i < f.n_args; i++)
		ts__q_value_fini(c, &f.vals[i]);
	ts_free(f.qvals);
	ts__q_label_fn_fini(&f);
	ts__qlb_fini(&f.lb);
	ts__qmap_fini(&f.map);
	return rc;
}
