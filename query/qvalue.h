/*
 * qvalue.h - the evaluator's private types, shared by engine.c (core: selectors,
 * subqueries, the per-step driver), eval_binop.c, eval_agg.c, eval_func.c and
 * qlabels.c (arenas, label sets, hash maps).
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
 * ctx->err (type and Prometheus' message) through ts__q_fail().
 */
#ifndef TS_QUERY_QVALUE_H
#define TS_QUERY_QVALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "query/ast.h"
#include "query/engine.h"

/* ---- arena ---- */

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
};

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
	uint64_t max_samples, cur_samples;
	int64_t deadline_ns;
	volatile const int *canceled;
	uint32_t tick;
	uint64_t scanned;
	struct ts_qerr *err;
	char *kbuf; /* reusable key buffer */
	size_t kbuf_cap;
};

struct qev {
	struct qctx *c;
	int64_t start, end, interval; /* interval is 1 for a single (instant) evaluation */
	size_t n_steps;		      /* 0 when start > end */
};

/* Sets c->err and returns rc. type is a ts_qerr_type. */
int ts__q_fail(struct qctx *c, int rc, enum ts_qerr_type type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An execution error (422): returns -EDOM. */
#define TS__Q_EXEC(c, ...) ts__q_fail((c), -EDOM, TS_QERR_EXECUTION, __VA_ARGS__)
int ts__q_nomem(struct qctx *c);
int ts__q_too_many_samples(struct qctx *c);
/* Checks the deadline and the cancel flag (cheaply: every few calls). */
int ts__q_check(struct qctx *c);
/* Accounts n more samples held; fails when over the limit. */
int ts__q_hold(struct qctx *c, size_t n);
void ts__q_release(struct qctx *c, size_t n);

int ts__q_eval(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
void ts__q_value_fini(struct qctx *c, struct qvalue *v);

/* ---- matrices and vectors ---- */
int ts__qm_add_series(struct qctx *c, struct qmatrix *m, const struct ts_label *lab, uint32_t n_lab,
		      bool copy_labels, struct qseries **out);
int ts__qs_push(struct qctx *c, struct qseries *s, int64_t t, double v);
void ts__qm_fini(struct qctx *c, struct qmatrix *m);
int ts__qv_push(struct qctx *c, struct qvector *v, const struct ts_label *lab, uint32_t n_lab,
		int64_t t, double val);
void ts__qv_fini(struct qvector *v);

/* The per-step driver (Prometheus' rangeEval): for each step, gathers the instant
 * vector of every input (in[i] may be NULL or a STRING value: its vector is then
 * empty), calls fn, and appends fn's output to output series keyed by label set.
 * Two outputs with the same labels at one step fail as Prometheus does. Output
 * labels may live in the scratch arena; they are copied. */
typedef int (*ts__qstep_fn)(struct qev *ev, void *arg, struct qvector *in, int64_t ts,
			    struct qvector *out);
int ts__q_range_eval(struct qev *ev, struct qvalue **in, size_t n_in, ts__qstep_fn fn, void *arg,
		     struct qvalue *out);

/* A scalar value over ev's steps: v(step) for each step. */
int ts__q_scalar_new(struct qev *ev, struct qvalue *out);

/* ---- labels (qlabels.c) ---- */

/* A label set under construction (Prometheus' labels.Builder): pointers borrowed. */
struct qlb {
	struct ts_label *l;
	uint32_t n, cap;
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
/* Serialises l into c->kbuf: all labels (mode 0), only those named (mode 1: `on`/`by`),
 * all but those named and __name__ (mode 2: `ignoring`/`without`), all but those named
 * (mode 3). Returns the length
 * or -ENOMEM. Labels are 0xff-separated, which UTF-8 never contains. */
int64_t ts__ql_key(struct qctx *c, const struct ts_label *l, uint32_t n, int mode,
		   char *const *names, size_t n_names);
/* Labels formatted as Prometheus' labels.String(): {a="b", c="d"} into buf. */
void ts__ql_str(const struct ts_label *l, uint32_t n, char *buf, size_t cap);
/* 1 if the label set has __name__. */
bool ts__ql_has_name(const struct ts_label *l, uint32_t n);
/* l without __name__: a sub-array (labels are sorted and __name__ sorts after upper
 * case letters, so the result is an array copy in the scratch arena). */
int ts__ql_drop_name(struct qctx *c, const struct ts_label *l, uint32_t n,
		     const struct ts_label **out, uint32_t *n_out);
bool ts__ql_valid_name(const char *s, size_t len);

/* ---- hash map of byte strings to indexes (keys borrowed) ---- */
#define TS__QMAP_NONE SIZE_MAX
size_t ts__qmap_find(const struct qmap *m, const char *k, size_t klen);
int ts__qmap_put(struct qmap *m, const char *k, size_t klen, size_t v);
void ts__qmap_clear(struct qmap *m);
void ts__qmap_fini(struct qmap *m);

/* ---- operators (eval_binop.c, eval_agg.c, eval_func.c) ---- */
int ts__q_eval_binary(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
int ts__q_eval_aggregate(struct qev *ev, const struct ts_ast *n, struct qvalue *out);
int ts__q_eval_call(struct qev *ev, const struct ts_ast *n, struct qvalue *out);

/* Go's sort.Sort(sort.Reverse(h)) for vectorByValueHeap (rev = false) or
 * vectorByReverseValueHeap (rev = true): insertion sort up to 12 elements as Go does,
 * a stable merge sort beyond. */
int ts__q_sort_rev_heap(struct qctx *c, struct qsample *s, size_t n, bool rev);
/* Prometheus' quantile() over values (sorted in place). */
double ts__q_quantile(double q, double *v, size_t n);
/* Go's strconv.FormatFloat(v, 'f', -1, 64) into buf (cap >= 400). */
size_t ts__q_fmt_float(double v, char *buf, size_t cap);

/* Window functions over range arguments (eval_func.c), called from engine.c's
 * matrix walker. */
static inline bool ts__q_is_stale(double v)
{
	uint64_t b;
	memcpy(&b, &v, 8);
	return b == TS_STALE_NAN_BITS;
}

/* A buffered reader over an engine iterator: samples come in batches through
 * ts_iter_read, so the hot loops of selectors and range functions make no call per
 * sample. qbuf_next/qbuf_seek follow ts_iter_next/ts_iter_seek: 1 with (*t, *v), 0 at
 * the end, <0 an engine error. */
#define TS_QBUF_N 128
struct qbuf {
	struct ts_iter *it;
	int n, pos;
	int64_t t[TS_QBUF_N];
	double v[TS_QBUF_N];
};

static inline void qbuf_init(struct qbuf *b, struct ts_iter *it)
{
	b->it = it;
	b->n = b->pos = 0;
}

static inline int qbuf_next(struct qbuf *b, int64_t *t, double *v)
{
	if (b->pos == b->n) {
		int r = ts_iter_read(b->it, b->t, b->v, TS_QBUF_N);
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
	return 1;
}

#endif
