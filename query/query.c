/*
 * query.c - the query layer's entry points (query.h): ts_query_instant and
 * ts_query_range parse the text, check a range query's parameters, set up the query
 * context, hand the tree to the evaluator (eval.c) and turn its value into a result.
 *
 * The query context (struct qctx, eval_int.h) is the one place a query's limits and
 * its first error live: every evaluator file reports through ts__q_fail() and checks
 * the clock and the cancel flag through ts__q_check(). Defaults are Prometheus': 5 m
 * lookback, 2 m timeout, 50,000,000 samples held, 11,000 points per series.
 *
 * Results: the labels and strings of a value live in the query's perm arena, which the
 * result adopts; points are copied into it, so ts_qresult_free() frees everything at
 * once. Instant vectors take the evaluation time as their point's time and keep
 * evaluation order (sort() orders them); range results are sorted by labels, and a
 * range query of a scalar is one series without labels.
 */
#include "query/query.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/eval_int.h"
#include "query/promql.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

#define DEFAULT_LOOKBACK_MS (5 * 60 * 1000)
#define DEFAULT_TIMEOUT_MS TS_QUERY_DEFAULT_TIMEOUT_MS
#define DEFAULT_MAX_SAMPLES TS_QUERY_DEFAULT_MAX_SAMPLES
#define DEFAULT_MAX_POINTS 11000

/* ---- the query context ---- */

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

static int canceled(struct qctx *c)
{
	return ts__q_fail(c, -ECANCELED, TS_QERR_CANCELED,
			  "query was canceled in expression evaluation");
}

int ts__q_check(struct qctx *c)
{
	if ((++c->tick & 1023) != 0)
		return 0;
	if (c->canceled && *c->canceled)
		return canceled(c);
	if (ts_mono_ns() > c->deadline_ns)
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

static void ctx_init(struct qctx *c, struct ts_db *db, int64_t start, int64_t end,
		     const struct ts_qopts *opts)
{
	c->db = db;
	c->q_start = start;
	c->q_end = end;
	c->lookback_ms = opts && opts->lookback_ms > 0 ? opts->lookback_ms : DEFAULT_LOOKBACK_MS;
	c->max_samples = opts && opts->max_samples ? opts->max_samples : DEFAULT_MAX_SAMPLES;
	c->max_series = opts ? opts->max_series : 0;
	c->replica_labels = opts ? opts->replica_labels : NULL;
	c->n_replica_labels = opts ? opts->n_replica_labels : 0;
	c->max_res_ms = opts ? opts->max_source_resolution_ms : 0;
	c->deadline_ns = ts_mono_ns() +
			 (opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS) *
				 1000000;
	c->canceled = opts ? opts->canceled : NULL;
	c->tick = 1023; /* so the first check looks at the clock */
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

/* The series of a vector or matrix result: those with points, copied into the
 * result's arena (labels stay in the perm arena, which the result adopts). */
static int result_series(struct qctx *c, const struct qvalue *v, bool range, int64_t t,
			 struct result_arena *ra)
{
	struct ts_qresult *r = &ra->r;
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

/* Moves the evaluated value into a result. */
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
	return result_series(c, v, range, t, ra);
}

/* ---- entry points ---- */

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

int ts_query_format(const char *q, size_t q_len, char **out, struct ts_qerr *err)
{
	struct ts_ast *root = NULL;
	struct ts_promql_error pe;
	memset(err, 0, sizeof *err);
	*out = NULL;
	int rc = ts_promql_parse(q, q_len, &root, &pe);
	if (rc)
		return map_parse_error(rc, q, q_len, &pe, err);
	rc = ts_ast_pretty(root, out);
	ts_ast_free(root);
	if (rc) {
		err->type = TS_QERR_INTERNAL;
		snprintf(err->msg, sizeof err->msg, "out of memory");
	}
	return rc;
}

/* A range query's parameters and expression type, with Prometheus' messages. */
static int check_range(struct qctx *c, const struct ts_ast *root, int64_t start, int64_t end,
		       int64_t step, const struct ts_qopts *opts)
{
	uint32_t max_points = opts && opts->max_points ? opts->max_points : DEFAULT_MAX_POINTS;
	if (step <= 0)
		return ts__q_fail(
			c, TS_EINVALID, TS_QERR_BAD_DATA,
			"zero or negative query resolution step widths are not accepted. Try a positive integer");
	if (end < start)
		return ts__q_fail(c, TS_EINVALID, TS_QERR_BAD_DATA,
				  "end timestamp must not be before start time");
	if ((end - start) / step >= (int64_t)max_points) {
		/* Prometheus writes the limit with a thousands separator: "11,000". */
		char lim[32];
		if (max_points >= 1000)
			snprintf(lim, sizeof lim, "%u,%03u", max_points / 1000, max_points % 1000);
		else
			snprintf(lim, sizeof lim, "%u", max_points);
		return ts__q_fail(
			c, TS_ELIMIT, TS_QERR_BAD_DATA,
			"exceeded maximum resolution of %s points per timeseries. Try decreasing the query resolution (?step=XX)",
			lim);
	}
	if (root->type != TS_VT_SCALAR && root->type != TS_VT_VECTOR)
		return ts__q_fail(
			c, TS_EINVALID, TS_QERR_BAD_DATA,
			"invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
			ts_value_type_str(root->type));
	return 0;
}

/* Evaluates the checked tree and builds *out. */
static int eval_root(struct qctx *c, const struct ts_ast *root, int64_t start, int64_t end,
		     int64_t step, bool range, struct ts_qresult **out)
{
	struct qvalue v = { 0 };
	struct result_arena *ra = NULL;
	struct qev ev;
	ts__q_ev_init(&ev, c, start, end, range ? step : 1);
	int rc = ts__q_eval(&ev, root, &v);
	if (rc)
		goto out;
	if (c->canceled && *c->canceled) {
		rc = canceled(c);
		goto out;
	}
	ra = ts_calloc(1, sizeof *ra);
	if (!ra) {
		rc = ts__q_nomem(c);
		goto out;
	}
	if ((rc = make_result(c, &v, range, start, ra)))
		goto out;
	ra->r.samples_scanned = c->scanned;
	/* The result adopts the perm arena (labels and strings). */
	ts__qa_adopt(&ra->arena, &c->perm);
	ra->r.ts__arena = ra;
	*out = &ra->r;
	ra = NULL;
out:
	ts__q_value_fini(c, &v);
	if (ra) {
		ts__qa_fini(&ra->arena);
		ts_free(ra);
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
	int rc;
	if (!err)
		err = &dummy;
	memset(err, 0, sizeof *err);
	memset(&c, 0, sizeof c);
	*out = NULL;
	rc = ts_promql_parse(q, q_len, &root, &pe);
	if (rc)
		return map_parse_error(rc, q, q_len, &pe, err);
	c.err = err;
	if (range && (rc = check_range(&c, root, start, end, step, opts)))
		goto out;
	ctx_init(&c, db, start, end, opts);
	rc = eval_root(&c, root, start, end, step, range, out);
out:
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
