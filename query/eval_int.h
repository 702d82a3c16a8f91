/*
 * eval_int.h - the evaluator's private header: the types and the shared internals
 * (ts__ prefix) of the files that evaluate a query. Nothing outside query/ includes it;
 * the public API is query.h.
 *
 *   query.c       entry points: options and limits, the query context, results
 *   eval.c        the node dispatcher, step matrices, the per-step driver, selectors,
 *                 subqueries
 *   eval_binop.c  binary operators and vector matching
 *   eval_agg.c    aggregations (and the sorts and quantile they share with functions)
 *   eval_func.c   function calls: dispatch and the functions of instant vectors
 *   eval_range.c  functions of range vectors: windows sliding along each series
 *   eval_label.c  label_replace() and label_join()
 *   qlabels.c     arenas, label sets and keys, the hash map
 *
 * Model (as Prometheus 2.42's evaluator): every node is evaluated over all steps of
 * its evaluator at once and yields a "step matrix": series, each with points at a
 * subset of the step times (ascending). A scalar is a step matrix with one series
 * without labels and a point at every step. A range vector exists only as the raw
 * result of a top-level matrix selector or subquery; functions read range
 * arguments window by window without materialising them.
 *
 * Memory: label sets and strings live in arenas (freed with the query); point
 * arrays are ts_malloc'd and freed when their value is consumed. Everything a
 * result references is copied into the result's arena.
 *
 * Errors: functions return 0 or a negative code and, on error, have filled
 * ctx->err (type and Prometheus' message) through ts__q_fail(). Only the first
 * error is kept.
 */
#ifndef TS_QUERY_EVAL_INT_H
#define TS_QUERY_EVAL_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "query/ast.h"
#include "query/query.h"

/* ---- arena (qlabels.c) ---- */

struct qarena_blk;
struct qarena {
	struct qarena_blk *head;
	size_t used, cap; /* within head */
};
void *ts__qa_alloc(struct qarena *a, size_t n); /* 8-aligned, NULL when out of memory */
char *ts__qa_strndup(struct qarena *a, const char *s, size_t n); /* NUL-terminated copy */
void ts__qa_reset(struct qarena *a); /* frees all but the newest block */
void ts__qa_fini(struct qarena *a);
/* Moves every block of src into dst (src is left empty). */
void ts__qa_adopt(struct qarena *dst, struct qarena *src);

/* ---- values ---- */

struct qseries {
	struct ts_label *lab; /* sorted by name, in the perm arena */
	uint32_t n_lab;
	struct ts_qpoint *pts; /* ts_malloc'd, ascending t */
	size_t n_pts, cap_pts;
};

struct qmatrix {
	struct qseries *s; /* ts_malloc'd */
	size_t n, cap;
};

struct qvalue {
	enum ts_value_type type; /* SCALAR and VECTOR: step matrix; MATRIX: raw samples */
	struct qmatrix m;
	const char *str; /* STRING: in the perm arena */
	size_t str_len;
};

/* One element of an instant vector at one step. */
struct qsample {
	const struct ts_label *lab;
	uint32_t n_lab;
	int64_t t;
	double v;
	/* In the vectors the per-step driver hands a step function: the index of the
	 * series of the input matrix the sample comes from, so that per-series work can be
	 * cached across steps. TS__Q_NO_SERIES elsewhere. */
	size_t sidx;
};
#define TS__Q_NO_SERIES SIZE_MAX

struct qvector {
	struct qsample *s; /* ts_malloc'd */
	size_t n, cap;
};

/* ---- query context and evaluator ---- */

struct qmap_ent {
	uint64_t h;
	const char *k;
	size_t klen;
	size_t v;
};
struct qmap {
	struct qmap_ent *e;
	size_t cap, n;
};

struct qctx {
	struct ts_db *db;
	struct qarena perm;	/* query lifetime: labels, strings, map keys */
	struct qarena scratch;	/* reset at each step of a per-step driver */
	int64_t q_start, q_end; /* for @ start() / end() */
	int64_t lookback_ms;
	int64_t max_res_ms; /* ts_qopts.max_source_resolution_ms */
	uint64_t max_samples, cur_samples;
	uint64_t max_series;		   /* per selector; 0: none */
	const char *const *replica_labels; /* ts_qopts: query-time deduplication */
	size_t n_replica_labels;
	int64_t deadline_ns;
	volatile const int *canceled;
	uint32_t tick;
	uint64_t scanned;
	struct ts_qerr *err;
	char *kbuf; /* reusable key buffer */
	size_t kbuf_cap;
	/* Points a series' first push allocates (0: ts_grow's 16); walkers that push at
	 * most one point a step set it from their step count while they run. */
	size_t first_cap;
};

struct qev {
	struct qctx *c;
	int64_t start, end, interval; /* interval is 1 for a single (instant) evaluation */
	size_t n_steps;		      /* 0 when start > end */
};

/* ---- labels (qlabels.c) ---- */

/* A label set under construction (Prometheus' labels.Builder): pointers borrowed. */
struct qlb {
	struct ts_label *l;
	uint32_t n;
	size_t cap;
};
int ts__qlb_reset(struct qctx *c, struct qlb *b, const struct ts_label *l, uint32_t n);
void ts__qlb_del(struct qlb *b, const char *name, size_t name_len);
/* Sets name=value (value empty: deletes). Pointers are borrowed until finish. */
int ts__qlb_set(struct qctx *c, struct qlb *b, const char *name, size_t name_len, const char *value,
		size_t value_len);
/* Keeps only the labels named in `names`. */
void ts__qlb_keep(struct qlb *b, char *const *names, size_t n);
/* Sorts and copies the labels' array (not the bytes) into the scratch arena. */
int ts__qlb_finish(struct qctx *c, struct qlb *b, const struct ts_label **out, uint32_t *n);
void ts__qlb_fini(struct qlb *b);

/* Deep copy of a label set into arena a. */
int ts__ql_copy(struct qctx *c, struct qarena *a, const struct ts_label *l, uint32_t n,
		struct ts_label **out);
/* The value of label `name` in l (sorted), or NULL (*len 0). */
const char *ts__ql_get(const struct ts_label *l, uint32_t n, const char *name, uint32_t *len);

/* Which labels ts__ql_key serialises. */
enum ts__qkey {
	TS__QKEY_ALL,	   /* every label */
	TS__QKEY_ON,	   /* only those named (`on`, `by`) */
	TS__QKEY_IGNORING, /* all but those named and __name__ (`ignoring`, `without`) */
	TS__QKEY_EXCEPT,   /* all but those named */
};
/* Serialises l into c->kbuf as `mode` says. Returns the length or -ENOMEM. Labels are
 * 0xff-separated, which UTF-8 never contains. */
int64_t ts__ql_key(struct qctx *c, const struct ts_label *l, uint32_t n, enum ts__qkey mode,
		   char *const *names, size_t n_names);
/* Labels formatted as Prometheus' labels.String(): {a="b", c="d"} into buf. */
void ts__ql_str(const struct ts_label *l, uint32_t n, char *buf, size_t cap);
/* l without __name__: l itself when it has none, else an array copy in the scratch
 * arena (label bytes are shared). */
int ts__ql_drop_name(struct qctx *c, const struct ts_label *l, uint32_t n,
		     const struct ts_label **out, uint32_t *n_out);

/* ---- hash map of byte strings to indexes (keys borrowed) ---- */
#define TS__QMAP_NONE SIZE_MAX
size_t ts__qmap_find(const struct qmap *m, const char *k, size_t klen);
int ts__qmap_put(struct qmap *m, const char *k, size_t klen, size_t v); /* 0 or -ENOMEM */
void ts__qmap_clear(struct qmap *m);
void ts__qmap_fini(struct qmap *m);

/* ---- the query context (query.c) ---- */

/* Sets c->err (unless an error is already recorded) and returns rc. */
int ts__q_fail(struct qctx *c, int rc, enum ts_qerr_type type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An execution error (422): returns -EDOM. */
#define TS__Q_EXEC(c, ...) ts__q_fail((c), -EDOM, TS_QERR_EXECUTION, __VA_ARGS__)
int ts__q_nomem(struct qctx *c);	    /* internal "out of memory", -ENOMEM */
int ts__q_too_many_samples(struct qctx *c); /* execution error, TS_ELIMIT */
/* Checks the deadline and the cancel flag (cheaply: every 1024 calls):
 * 0, -ETIMEDOUT or -ECANCELED. */
int ts__q_check(struct qctx *c);
/* Accounts n more samples held; TS_ELIMIT when over the limit. */
int ts__q_hold(struct qctx *c, size_t n);
void ts__q_release(struct qctx *c, size_t n);

/* ---- helper threads (qpar.c) ---- */

/* Runs fn(arg) on the calling thread and on up to `want` idle helper threads at once,
 * returning when every one of them has returned. fn must share its work out itself
 * (each call takes items from a shared counter until none is left), since any number
 * of helpers, even none, may join. */
void ts__qpar_run(void (*fn)(void *arg), void *arg, unsigned want);
/* The helpers a job may get (0 on one CPU). Starts them on first use. */
unsigned ts__qpar_helpers(void);
extern unsigned ts__qpar_max_helpers;

/* A lock for short sections that threads of one job take in turn (making an iterator
 * from a set): it spins, then yields, never sleeps. Measured on 2 cores: a sleeping
 * mutex (even glibc's adaptive one) made the hand-offs cost more than the second core
 * gained. Zero-initialised is unlocked. */
struct qpar_lock {
	_Atomic int held;
};
void ts__qpar_lock(struct qpar_lock *l);
static inline void ts__qpar_unlock(struct qpar_lock *l)
{
	atomic_store_explicit(&l->held, 0, memory_order_release);
}
/* The fewest series of a set for which a selector's series are spread over helpers
 * (tests lower it), and whether n series are spread. */
extern size_t ts__qpar_min_series;
int ts__qpar_worth(size_t n);

/* What a selector does with one series, on whichever thread takes it. */
struct ts__qpar_series_ops {
	size_t state_size; /* per thread, zeroed before its first series */
	/* Reads `it` (series i of the set) into out's points; ev->c is the thread's own
	 * context (its held samples, scanned count and error; no arenas). */
	int (*one)(struct qev *ev, void *arg, void *state, struct ts_iter *it, struct qseries *out);
	void (*state_fini)(void *state); /* NULL: nothing to free */
};
/* Runs ops->one over series 0..ns-1 of set on the calling thread and the idle helpers.
 * On success *res holds ns outcomes in series order (points counted as held in ev->c;
 * the caller adds or releases each and frees the array with ts_free). On failure the
 * error of the lowest failing series is in ev->c's error, nothing is left to free, and
 * the error code is returned. */
int ts__qpar_series(struct qev *ev, struct ts_series_set *set, size_t ns,
		    const struct ts__qpar_series_ops *ops, void *arg, struct qseries **res);

/* ---- evaluation (eval.c) ---- */

/* An evaluator over start, start+interval, ... <= end. */
void ts__q_ev_init(struct qev *ev, struct qctx *c, int64_t start, int64_t end, int64_t interval);
/* Evaluates node n over ev's steps into *out (zeroed first; release with
 * ts__q_value_fini, also after an error). */
int ts__q_eval(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
void ts__q_value_fini(struct qctx *c, struct qvalue *v); /* accepts NULL */

/* Matrices and vectors. Labels are copied into the perm arena when copy_labels,
 * else borrowed (they must outlive the matrix). Points count as held samples. */
int ts__qm_add_series(struct qctx *c, struct qmatrix *m, const struct ts_label *lab, uint32_t n_lab,
		      bool copy_labels, struct qseries **out);
int ts__qs_push(struct qctx *c, struct qseries *s, int64_t t, double v);
/* Releases and frees s's points (accepts a series without any). */
void ts__qs_drop(struct qctx *c, struct qseries *s);
void ts__qm_fini(struct qctx *c, struct qmatrix *m);
int ts__qv_push(struct qctx *c, struct qvector *v, const struct ts_label *lab, uint32_t n_lab,
		int64_t t, double val);
void ts__qv_fini(struct qvector *v);

/* A scalar value over ev's steps: a point (t, 0) at each step. */
int ts__q_scalar_new(struct qev *ev, struct qvalue *out);

/* The per-step driver (Prometheus' rangeEval): for each step, gathers the instant
 * vector of every input (in[i] may be NULL or a STRING value: its vector is then
 * empty), calls fn, and appends fn's output to output series keyed by label set.
 * Two outputs with the same labels at one step fail as Prometheus does. Output
 * labels may live in the scratch arena; they are copied. */
typedef int (*ts__qstep_fn)(struct qev *ev, void *arg, struct qvector *in, int64_t ts,
			    struct qvector *out);
int ts__q_range_eval(struct qev *ev, struct qvalue **in, size_t n_in, ts__qstep_fn fn, void *arg,
		     struct qvalue *out);

/* Fails (execution error) when two series of m have the same labels, as Prometheus'
 * Matrix.ContainsSameLabelset. Resets the scratch arena. */
int ts__q_check_same_labelsets(struct qctx *c, const struct qmatrix *m);

/* Selectors and subqueries. */
/* The time an @ modifier names: the query's start or end, or at_ms. */
int64_t ts__q_at_time(const struct qctx *c, enum ts_at at, int64_t at_ms);
/* Selects the series of vector selector vs that may have samples in [mint, maxt]
 * (free *set with ts_series_set_free), reading downsampled tiers up to res_ms (0: raw
 * only) as aggr says. */
int ts__q_select(struct qctx *c, const struct ts_ast *vs, int64_t mint, int64_t maxt,
		 int64_t res_ms, enum ts_aggr aggr, struct ts_series_set **set);
/* The resolution a selector reads at (0: raw; eval.c, semantics in README.md): under
 * ev's evaluator, as the argument of function fn (TS__Q_PLAIN: a plain selector) with
 * range range_ms (0: none). */
#define TS__Q_PLAIN (-1)
int64_t ts__q_res(const struct qev *ev, int fn, int64_t range_ms);
/* What a downsampled row reads as for function fn (TS__Q_PLAIN: a plain selector). */
enum ts_aggr ts__q_aggr(int fn);
/* Records an error of the engine's iterators (internal; -ENOMEM as out of memory)
 * and returns rc. */
int ts__q_iter_err(struct qctx *c, int rc);
/* Evaluates vector selector vs at every step. With ts_mode the value is the
 * sample's timestamp in seconds (timestamp() of a selector). */
int ts__q_eval_vector_selector(struct qev *ev, const struct ts_ast *vs, bool ts_mode,
			       struct qvalue *out);
/* Sets sub to the subquery's inner evaluator: the outer step ts reads inner points in
 * [ts - offset - range, ts - offset] (or around @). */
int ts__q_subquery_ev(struct qev *ev, const struct ts_ast *n, struct qev *sub);

/* ---- operators (eval_binop.c, eval_agg.c) ---- */
int ts__q_eval_binary(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
int ts__q_eval_aggregate(struct qev *ev, const struct ts_ast *n, struct qvalue *out);

/* Go's sort.Sort(sort.Reverse(h)) for vectorByValueHeap (rev = false) or
 * vectorByReverseValueHeap (rev = true): insertion sort up to 12 elements as Go does,
 * a stable merge sort beyond. */
int ts__q_sort_rev_heap(struct qctx *c, struct qsample *s, size_t n, bool rev);
/* Prometheus' quantile() over values (sorted in place). */
double ts__q_quantile(double q, double *v, size_t n);
/* A quantile q outside [0, 1] has its answer without data, as in Prometheus: NaN for
 * NaN, -Inf below 0, +Inf above 1. Returns true with *r set then, false for q in
 * [0, 1]. */
bool ts__q_quantile_outside(double q, double *r);

/* ---- function calls (eval_func.c, eval_range.c, eval_label.c) ---- */

#define TS__Q_MAX_ARGS 8

struct qregex; /* label_replace()'s compiled regex (eval_label.c) */

/* One call being evaluated. */
struct fcall {
	const struct ts_ast *n;
	enum ts_func_id id;
	const struct ts_ast *args[TS__Q_MAX_ARGS]; /* parentheses removed */
	size_t n_args;
	struct qvalue vals[TS__Q_MAX_ARGS]; /* evaluated arguments (not the range one) */
	int range_arg;			    /* the range-vector argument; -1: none */
	bool ts_ident; /* timestamp() of a selector: values are already the times */
	double *qvals; /* quantile_over_time scratch */
	size_t qvals_cap;
	struct qregex *re;
	struct qlb lb;
	struct qmap map;
};

int ts__q_eval_call(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
/* A call with a range-vector argument (a matrix selector or a subquery). */
int ts__q_eval_range_call(struct qev *ev, struct fcall *f, struct qvalue *out);
/* Labels of absent()/absent_over_time(): the equality matchers of the selector arg
 * (none when arg is not a selector), in the scratch arena. */
int ts__q_absent_labels(struct qctx *c, struct fcall *f, const struct ts_ast *arg,
			const struct ts_label **o, uint32_t *on);
/* label_replace() and label_join(): checks the label names (and compiles the regex)
 * once before the steps; one step; frees what setup made. */
int ts__q_label_fn_setup(struct qev *ev, struct fcall *f);
int ts__q_step_label_replace(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			     struct qvector *out);
int ts__q_step_label_join(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			  struct qvector *out);
void ts__q_label_fn_fini(struct fcall *f);

static inline const struct ts_ast *ts__q_unparen(const struct ts_ast *a)
{
	while (a->kind == TS_AST_PAREN)
		a = a->paren.expr;
	return a;
}

static inline bool ts__q_is_stale(double v)
{
	uint64_t b;
	memcpy(&b, &v, 8);
	return b == TS_STALE_NAN_BITS;
}

/* ---- the buffered sample reader ---- */

/* A buffered reader over an engine iterator: samples come in batches through
 * ts_iter_read, so the hot loops of selectors and range functions make no call per
 * sample. qbuf_next/qbuf_seek follow ts_iter_next/ts_iter_seek: 1 with (*t, *v), 0 at
 * the end, <0 an engine error. */
#define TS_QBUF_N 128
struct qbuf {
	struct ts_iter *it;
	int n, pos;
	bool weighted; /* w[] is read too (ts_iter_read_w): downsampled counts */
	int64_t t[TS_QBUF_N];
	double v[TS_QBUF_N];
	double w[TS_QBUF_N];
};

static inline void qbuf_init(struct qbuf *b, struct ts_iter *it)
{
	b->it = it;
	b->n = b->pos = 0;
	b->weighted = false;
}

/* The weight of the sample qbuf_next or qbuf_seek gave last (weighted buffers). */
static inline double qbuf_w(const struct qbuf *b)
{
	return b->w[b->pos - 1];
}

static inline int qbuf_next(struct qbuf *b, int64_t *t, double *v)
{
	if (b->pos == b->n) {
		int r = b->weighted ? ts_iter_read_w(b->it, b->t, b->v, b->w, TS_QBUF_N)
				    : ts_iter_read(b->it, b->t, b->v, TS_QBUF_N);
		if (r <= 0)
			return r;
		b->n = r;
		b->pos = 0;
	}
	*t = b->t[b->pos];
	*v = b->v[b->pos];
	b->pos++;
	return 1;
}

static inline int qbuf_seek(struct qbuf *b, int64_t lo, int64_t *t, double *v)
{
	while (b->pos < b->n && b->t[b->pos] < lo)
		b->pos++;
	if (b->pos < b->n)
		return qbuf_next(b, t, v);
	b->n = b->pos = 0;
	int r = ts_iter_seek(b->it, lo);
	if (r <= 0)
		return r;
	ts_iter_at(b->it, t, v);
	/* Kept as a buffer of one, so that qbuf_w sees its weight. */
	b->t[0] = *t;
	b->v[0] = *v;
	b->w[0] = ts_iter_weight(b->it);
	b->n = b->pos = 1;
	return 1;
}

#endif
