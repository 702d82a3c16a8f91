/*
 * eval_binop.c - binary operators as Prometheus 2.42 evaluates them: scalar/scalar,
 * vector/scalar (comparisons filter unless `bool`; the vector's value is kept when
 * the scalar is on the left), vector/vector with one-to-one, many-to-one and
 * one-to-many matching (signatures over on/ignoring labels; ignoring always ignores
 * __name__), and the set operators and/or/unless.
 *
 * The metric name is dropped by + - * / % ^ and by any `bool` comparison, never by
 * atan2 or a filtering comparison. Matching errors use Prometheus' messages.
 * Per-step maps live in the scratch arena, which the step driver resets.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "query/eval_int.h"
#include "storage/mem.h"

struct binop {
	const struct ts_ast *n;
	const struct ts_vector_matching *vm;
	enum ts_binop op;
	bool ret_bool;
	bool swap; /* vector/scalar: the scalar is on the left */
	struct qmap m1, m2;
	struct qlb lb;
	/* Across the steps of a range query, per input series: its matching signature,
	 * and per (left, right) pair the result's labels, so they are worked out once
	 * rather than at every step. Keyed by the series' label array, which the step
	 * driver takes from the operands' matrices: one stable array per series for the
	 * whole evaluation. Keys and values live in the query's perm arena. */
	struct qmap sigc, resc;
	struct sigent {
		const char *k;
		size_t kl;
	} * sigs;
	size_t n_sigs, cap_sigs;
	struct resent {
		const struct ts_label *ml;
		uint32_t nml;
	} * res;
	size_t n_res, cap_res;
	/* One-to-one vector/vector matching by series (step_vv_series): each operand
	 * series' signature as a small id, worked out once (UINT32_MAX: not yet), and per
	 * id the step it was last seen at on the right (with its position) and matched on
	 * the left; per left series the result labels of its last right partner. */
	uint32_t *lsig, *rsig;
	struct qmap sigid; /* signature -> id; keys are the perm strings of sig() */
	uint32_t n_ids;
	size_t cap_ids;
	uint64_t *seen_r, *seen_l, step;
	size_t *pos_r;
	struct lres {
		size_t ridx; /* TS__Q_NO_SERIES: none yet */
		const struct ts_label *ml;
		uint32_t nml;
	} * lres;
};

static bool drops_name(enum ts_binop op)
{
	return op == TS_OP_ADD || op == TS_OP_SUB || op == TS_OP_MUL || op == TS_OP_DIV ||
	       op == TS_OP_POW || op == TS_OP_MOD;
}

/* vectorElemBinop: the value and whether a comparison keeps the element. */
static double elem(enum ts_binop op, double l, double r, bool *keep)
{
	*keep = true;
	switch (op) {
	case TS_OP_ADD: return l + r;
	case TS_OP_SUB: return l - r;
	case TS_OP_MUL: return l * r;
	case TS_OP_DIV: return l / r;
	case TS_OP_POW: return pow(l, r);
	case TS_OP_MOD: return fmod(l, r);
	case TS_OP_ATAN2: return atan2(l, r);
	case TS_OP_EQLC: *keep = l == r; return l;
	case TS_OP_NEQ: *keep = l != r; return l;
	case TS_OP_GTR: *keep = l > r; return l;
	case TS_OP_LSS: *keep = l < r; return l;
	case TS_OP_GTE: *keep = l >= r; return l;
	case TS_OP_LTE: *keep = l <= r; return l;
	default: return NAN;
	}
}

/* A pointer as a map key: its bytes, copied into the perm arena. */
static const char *ptr_key(struct qctx *c, const void *a, const void *b, size_t *len)
{
	*len = b ? 2 * sizeof a : sizeof a;
	char *k = ts__qa_alloc(&c->perm, *len);
	if (k) {
		memcpy(k, &a, sizeof a);
		if (b)
			memcpy(k + sizeof a, &b, sizeof b);
	}
	return k;
}

/* Signature of a sample's labels for matching (cached per series, in perm). */
static int sig(struct qctx *c, struct binop *b, const struct qsample *s, const char **k,
	       size_t *len)
{
	const void *lab = s->lab;
	size_t ci = ts__qmap_find(&b->sigc, (const char *)&lab, sizeof lab);
	if (ci != TS__QMAP_NONE) {
		*k = b->sigs[ci].k;
		*len = b->sigs[ci].kl;
		return 0;
	}
	int64_t n = ts__ql_key(c, s->lab, s->n_lab, b->vm->on ? TS__QKEY_ON : TS__QKEY_IGNORING,
			       b->vm->labels.names, b->vm->labels.n);
	if (n < 0)
		return (int)n;
	char *p = ts__qa_strndup(&c->perm, c->kbuf, (size_t)n);
	size_t pkl;
	const char *pk = p ? ptr_key(c, lab, NULL, &pkl) : NULL;
	if (!pk || ts_grow((void **)&b->sigs, &b->cap_sigs, b->n_sigs + 1, sizeof *b->sigs) ||
	    ts__qmap_put(&b->sigc, pk, pkl, b->n_sigs))
		return ts__q_nomem(c);
	b->sigs[b->n_sigs++] = (struct sigent){ p, (size_t)n };
	*k = p;
	*len = (size_t)n;
	return 0;
}

/* The signature of s and where it is in b->m1 (TS__QMAP_NONE: not there). */
static int sig_find(struct qctx *c, struct binop *b, const struct qsample *s, const char **k,
		    size_t *len, size_t *idx)
{
	*k = NULL;
	*len = 0;
	*idx = TS__QMAP_NONE;
	int rc = sig(c, b, s, k, len);
	if (rc == 0)
		*idx = ts__qmap_find(&b->m1, *k, *len);
	return rc;
}

static int put(struct qctx *c, struct qmap *m, const char *k, size_t len, size_t v)
{
	return ts__qmap_put(m, k, len, v) ? ts__q_nomem(c) : 0;
}

/* resultMetric(): the labels of a vector/vector result element. */
static int result_metric(struct qctx *c, struct binop *b, const struct qsample *l,
			 const struct qsample *r, const struct ts_label **out, uint32_t *n_out)
{
	int rc = ts__qlb_reset(c, &b->lb, l->lab, l->n_lab);
	if (rc)
		return rc;
	if (drops_name(b->op))
		ts__qlb_del(&b->lb, "__name__", 8);
	if (b->vm->card == TS_CARD_ONE_TO_ONE) {
		if (b->vm->on) {
			ts__qlb_keep(&b->lb, b->vm->labels.names, b->vm->labels.n);
		} else {
			for (size_t i = 0; i < b->vm->labels.n; i++)
				ts__qlb_del(&b->lb, b->vm->labels.names[i],
					    strlen(b->vm->labels.names[i]));
		}
	}
	for (size_t i = 0; i < b->vm->include.n; i++) {
		const char *name = b->vm->include.names[i];
		uint32_t vlen;
		const char *v = ts__ql_get(r->lab, r->n_lab, name, &vlen);
		if ((rc = ts__qlb_set(c, &b->lb, name, strlen(name), v, v ? vlen : 0)))
			return rc;
	}
	if ((rc = ts__qlb_finish(c, &b->lb, out, n_out)))
		return rc;
	if (b->ret_bool)
		rc = ts__ql_drop_name(c, *out, *n_out, out, n_out);
	return rc;
}

/* result_metric, cached per (left, right) series pair across steps (in perm). */
static int result_metric_cached(struct qctx *c, struct binop *b, const struct qsample *l,
				const struct qsample *r, const struct ts_label **out,
				uint32_t *n_out)
{
	const void *key[2] = { l->lab, r->lab };
	size_t ci = ts__qmap_find(&b->resc, (const char *)key, sizeof key);
	if (ci != TS__QMAP_NONE) {
		*out = b->res[ci].ml;
		*n_out = b->res[ci].nml;
		return 0;
	}
	const struct ts_label *ml;
	uint32_t nml;
	struct ts_label *kept;
	size_t pkl;
	int rc = result_metric(c, b, l, r, &ml, &nml);
	if (rc || (rc = ts__ql_copy(c, &c->perm, ml, nml, &kept)))
		return rc;
	const char *pk = ptr_key(c, l->lab, r->lab, &pkl);
	if (!pk || ts_grow((void **)&b->res, &b->cap_res, b->n_res + 1, sizeof *b->res) ||
	    ts__qmap_put(&b->resc, pk, pkl, b->n_res))
		return ts__q_nomem(c);
	b->res[b->n_res++] = (struct resent){ kept, nml };
	*out = kept;
	*n_out = nml;
	return 0;
}

/* Labels kept for the duplicate-series message (Labels.MatchLabels). */
static void match_labels_str(const struct binop *b, const struct qsample *s, char *buf, size_t cap)
{
	struct ts_label tmp[64];
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n_lab && n < 64; i++) {
		bool listed = false;
		for (size_t k = 0; k < b->vm->labels.n && !listed; k++)
			listed = strlen(b->vm->labels.names[k]) == s->lab[i].name_len &&
				 memcmp(b->vm->labels.names[k], s->lab[i].name,
					s->lab[i].name_len) == 0;
		bool is_name = s->lab[i].name_len == 8 &&
			       memcmp(s->lab[i].name, "__name__", 8) == 0;
		if (b->vm->on == listed && (b->vm->on || !is_name))
			tmp[n++] = s->lab[i];
	}
	ts__ql_str(tmp, n, buf, cap);
}

/* Prometheus' many-to-many error: x and y (earlier) share a match group on the "one"
 * side, the left one when one_to_many. */
static int duplicate_error(struct qctx *c, const struct binop *b, const struct qsample *x,
			   const struct qsample *y, bool one_to_many)
{
	char ml[160], xs[160], ys[160];
	match_labels_str(b, x, ml, sizeof ml);
	ts__ql_str(x->lab, x->n_lab, xs, sizeof xs);
	ts__ql_str(y->lab, y->n_lab, ys, sizeof ys);
	return TS__Q_EXEC(
		c,
		"found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];many-to-many matching not allowed: matching labels must be unique on one side",
		ml, one_to_many ? "left" : "right", xs, ys);
}

/* Indexes the "one" side by signature; a signature seen twice is Prometheus' many-to-many
 * error. */
static int index_one_side(struct qctx *c, struct binop *b, const struct qvector *one,
			  bool one_to_many)
{
	int rc;
	for (size_t i = 0; i < one->n; i++) {
		const char *k;
		size_t kl, d;
		if ((rc = sig_find(c, b, &one->s[i], &k, &kl, &d)))
			return rc;
		if (d != TS__QMAP_NONE)
			return duplicate_error(c, b, &one->s[i], &one->s[d], one_to_many);
		if ((rc = put(c, &b->m1, k, kl, i)))
			return rc;
	}
	return 0;
}

/* Checks that the result of matching ls (signature k) is the only one of its kind:
 * one-to-one, one result per signature; with grouping, one per (signature, labels). */
static int unique_match(struct qctx *c, struct binop *b, const char *k, size_t kl,
			const struct ts_label *ml, uint32_t nml)
{
	if (b->vm->card == TS_CARD_ONE_TO_ONE) {
		if (ts__qmap_find(&b->m2, k, kl) != TS__QMAP_NONE)
			return TS__Q_EXEC(
				c,
				"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
		return put(c, &b->m2, k, kl, 0);
	}
	int64_t ml_len = ts__ql_key(c, ml, nml, TS__QKEY_ALL, NULL, 0);
	if (ml_len < 0)
		return (int)ml_len;
	char *pk = ts__qa_alloc(&c->scratch, kl + 1 + (size_t)ml_len);
	if (!pk)
		return ts__q_nomem(c);
	memcpy(pk, k, kl);
	pk[kl] = (char)0xfe;
	memcpy(pk + kl + 1, c->kbuf, (size_t)ml_len);
	size_t pl = kl + 1 + (size_t)ml_len;
	if (ts__qmap_find(&b->m2, pk, pl) != TS__QMAP_NONE)
		return TS__Q_EXEC(
			c,
			"multiple matches for labels: grouping labels must ensure unique matches");
	return put(c, &b->m2, pk, pl, 0);
}

/* Vector/vector arithmetic and comparisons with one-to-one, many-to-one or
 * one-to-many matching (Prometheus' VectorBinop). */
static int step_vv(struct qev *ev, void *arg, struct qvector *in, int64_t ts, struct qvector *out)
{
	struct binop *b = arg;
	struct qctx *c = ev->c;
	struct qvector *lhs = &in[0], *rhs = &in[1];
	int rc;
	if (lhs->n == 0 || rhs->n == 0)
		return 0;
	/* The "many" side is scanned, the "one" side indexed. */
	bool one_to_many = b->vm->card == TS_CARD_ONE_TO_MANY;
	if (one_to_many) {
		struct qvector *t = lhs;
		lhs = rhs;
		rhs = t;
	}
	ts__qmap_clear(&b->m1);
	ts__qmap_clear(&b->m2);
	if ((rc = index_one_side(c, b, rhs, one_to_many)))
		return rc;
	for (size_t i = 0; i < lhs->n; i++) {
		const struct qsample *ls = &lhs->s[i];
		const char *k;
		size_t kl, ri;
		if ((rc = sig_find(c, b, ls, &k, &kl, &ri)))
			return rc;
		if (ri == TS__QMAP_NONE)
			continue;
		const struct qsample *rs = &rhs->s[ri];
		double vl = one_to_many ? rs->v : ls->v, vr = one_to_many ? ls->v : rs->v;
		bool keep;
		double value = elem(b->op, vl, vr, &keep);
		if (b->ret_bool)
			value = keep ? 1.0 : 0.0;
		else if (!keep)
			continue;
		const struct ts_label *ml = NULL;
		uint32_t nml = 0;
		if ((rc = result_metric_cached(c, b, ls, rs, &ml, &nml)) ||
		    (rc = unique_match(c, b, k, kl, ml, nml)) ||
		    (rc = ts__qv_push(c, out, ml, nml, ts, value)))
			return rc;
	}
	return 0;
}

/* The signature id of series s (of the left operand when left, else the right). */
static int series_sig(struct qctx *c, struct binop *b, const struct qsample *s, bool left,
		      uint32_t *id)
{
	uint32_t *ids = left ? b->lsig : b->rsig;
	if (ids[s->sidx] != UINT32_MAX) {
		*id = ids[s->sidx];
		return 0;
	}
	const char *k;
	size_t kl;
	int rc = sig(c, b, s, &k, &kl);
	if (rc)
		return rc;
	size_t v = ts__qmap_find(&b->sigid, k, kl);
	if (v == TS__QMAP_NONE) {
		v = b->n_ids;
		if (ts__qmap_put(&b->sigid, k, kl, v))
			return ts__q_nomem(c);
		if (b->n_ids == b->cap_ids) {
			size_t cap = b->cap_ids ? b->cap_ids * 2 : 64;
			uint64_t *sr = ts_realloc(b->seen_r, cap * sizeof *sr);
			if (sr)
				b->seen_r = sr;
			uint64_t *sl = sr ? ts_realloc(b->seen_l, cap * sizeof *sl) : NULL;
			if (sl)
				b->seen_l = sl;
			size_t *pr = sl ? ts_realloc(b->pos_r, cap * sizeof *pr) : NULL;
			if (!pr)
				return ts__q_nomem(c);
			b->pos_r = pr;
			b->cap_ids = cap;
		}
		b->seen_r[v] = b->seen_l[v] = 0;
		b->n_ids++;
	}
	*id = ids[s->sidx] = (uint32_t)v;
	return 0;
}

/* step_vv for one-to-one matching, with the per-sample hashing of step_vv (signature
 * look-ups, the per-step tables, the result labels) replaced by per-series ids and
 * step stamps. Same order of work and same errors as step_vv. */
static int step_vv_series(struct qev *ev, void *arg, struct qvector *in, int64_t ts,
			  struct qvector *out)
{
	struct binop *b = arg;
	struct qctx *c = ev->c;
	struct qvector *lhs = &in[0], *rhs = &in[1];
	int rc;
	if (lhs->n == 0 || rhs->n == 0)
		return 0;
	uint64_t step = ++b->step;
	for (size_t j = 0; j < rhs->n; j++) {
		uint32_t id = 0;
		if ((rc = series_sig(c, b, &rhs->s[j], false, &id)))
			return rc;
		if (b->seen_r[id] == step)
			return duplicate_error(c, b, &rhs->s[j], &rhs->s[b->pos_r[id]], false);
		b->seen_r[id] = step;
		b->pos_r[id] = j;
	}
	for (size_t i = 0; i < lhs->n; i++) {
		const struct qsample *ls = &lhs->s[i];
		uint32_t id = 0;
		if ((rc = series_sig(c, b, ls, true, &id)))
			return rc;
		if (b->seen_r[id] != step)
			continue;
		const struct qsample *rs = &rhs->s[b->pos_r[id]];
		bool keep;
		double value = elem(b->op, ls->v, rs->v, &keep);
		if (b->ret_bool)
			value = keep ? 1.0 : 0.0;
		else if (!keep)
			continue;
		struct lres *lr = &b->lres[ls->sidx];
		if (lr->ridx != rs->sidx) {
			if ((rc = result_metric_cached(c, b, ls, rs, &lr->ml, &lr->nml)))
				return rc;
			lr->ridx = rs->sidx;
		}
		if (b->seen_l[id] == step)
			return TS__Q_EXEC(
				c,
				"multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
		b->seen_l[id] = step;
		if ((rc = ts__qv_push(c, out, lr->ml, lr->nml, ts, value)))
			return rc;
	}
	return 0;
}

/* Sets b up for step_vv_series over operands with nl and nr series. */
static int vv_series_init(struct qctx *c, struct binop *b, size_t nl, size_t nr)
{
	b->lsig = ts_malloc((nl ? nl : 1) * sizeof *b->lsig);
	b->rsig = ts_malloc((nr ? nr : 1) * sizeof *b->rsig);
	b->lres = ts_malloc((nl ? nl : 1) * sizeof *b->lres);
	if (!b->lsig || !b->rsig || !b->lres)
		return ts__q_nomem(c);
	memset(b->lsig, 0xff, (nl ? nl : 1) * sizeof *b->lsig);
	memset(b->rsig, 0xff, (nr ? nr : 1) * sizeof *b->rsig);
	for (size_t i = 0; i < nl; i++)
		b->lres[i] = (struct lres){ TS__Q_NO_SERIES, NULL, 0 };
	return 0;
}

static int push_all(struct qctx *c, struct qvector *out, const struct qvector *v)
{
	for (size_t i = 0; i < v->n; i++) {
		int rc = ts__qv_push(c, out, v->s[i].lab, v->s[i].n_lab, v->s[i].t, v->s[i].v);
		if (rc)
			return rc;
	}
	return 0;
}

static int step_set(struct qev *ev, void *arg, struct qvector *in, int64_t ts, struct qvector *out)
{
	(void)ts;
	struct binop *b = arg;
	struct qctx *c = ev->c;
	struct qvector *lhs = &in[0], *rhs = &in[1];
	int rc;
	switch (b->op) {
	case TS_OP_AND:
		if (lhs->n == 0 || rhs->n == 0)
			return 0;
		break;
	case TS_OP_OR:
		if (lhs->n == 0)
			return push_all(c, out, rhs);
		if (rhs->n == 0)
			return push_all(c, out, lhs);
		break;
	default: /* unless */
		if (lhs->n == 0 || rhs->n == 0)
			return push_all(c, out, lhs);
		break;
	}
	ts__qmap_clear(&b->m1);
	/* `or` indexes the left side, and/unless the right. */
	struct qvector *idx = b->op == TS_OP_OR ? lhs : rhs;
	for (size_t i = 0; i < idx->n; i++) {
		const char *k;
		size_t kl, d;
		if ((rc = sig_find(c, b, &idx->s[i], &k, &kl, &d)))
			return rc;
		if (d == TS__QMAP_NONE && (rc = put(c, &b->m1, k, kl, i)))
			return rc;
	}
	if (b->op == TS_OP_OR) {
		if ((rc = push_all(c, out, lhs)))
			return rc;
	}
	struct qvector *scan = b->op == TS_OP_OR ? rhs : lhs;
	for (size_t i = 0; i < scan->n; i++) {
		const char *k;
		size_t kl, d;
		if ((rc = sig_find(c, b, &scan->s[i], &k, &kl, &d)))
			return rc;
		bool found = d != TS__QMAP_NONE;
		bool want = b->op == TS_OP_AND ? found : !found;
		if (want &&
		    (rc = ts__qv_push(c, out, scan->s[i].lab, scan->s[i].n_lab, ts, scan->s[i].v)))
			return rc;
	}
	return 0;
}

static int step_vs(struct qev *ev, void *arg, struct qvector *in, int64_t ts, struct qvector *out)
{
	struct binop *b = arg;
	struct qctx *c = ev->c;
	struct qvector *vec = b->swap ? &in[1] : &in[0];
	struct qvector *sc = b->swap ? &in[0] : &in[1];
	if (sc->n == 0)
		return 0;
	double s = sc->s[0].v;
	for (size_t i = 0; i < vec->n; i++) {
		const struct qsample *e = &vec->s[i];
		double lv = e->v, rv = s;
		if (b->swap) {
			lv = s;
			rv = e->v;
		}
		bool keep;
		double value = elem(b->op, lv, rv, &keep);
		if (TS_OP_IS_COMPARISON(b->op) && b->swap)
			value = rv;
		if (b->ret_bool) {
			value = keep ? 1.0 : 0.0;
			keep = true;
		}
		if (!keep)
			continue;
		const struct ts_label *l = e->lab;
		uint32_t nl = e->n_lab;
		int rc;
		if (drops_name(b->op) || b->ret_bool) {
			if ((rc = ts__ql_drop_name(c, l, nl, &l, &nl)))
				return rc;
		}
		if ((rc = ts__qv_push(c, out, l, nl, ts, value)))
			return rc;
	}
	return 0;
}

static double scalar_op(enum ts_binop op, double l, double r)
{
	bool keep;
	double v = elem(op, l, r, &keep);
	if (TS_OP_IS_COMPARISON(op))
		return keep ? 1.0 : 0.0;
	return v;
}

int ts__q_eval_binary(struct qev *ev, const struct ts_ast *n, struct qvalue *out)
{
	struct qctx *c = ev->c;
	struct qvalue l, r;
	struct binop b = { .n = n,
			   .vm = &n->binary.matching,
			   .op = n->binary.op,
			   .ret_bool = n->binary.return_bool };
	int rc = ts__q_eval(ev, n->binary.lhs, &l);
	if (rc) {
		ts__q_value_fini(c, &l);
		return rc;
	}
	if ((rc = ts__q_eval(ev, n->binary.rhs, &r)))
		goto out;
	enum ts_value_type lt = n->binary.lhs->type, rt = n->binary.rhs->type;
	if (lt == TS_VT_SCALAR && rt == TS_VT_SCALAR) {
		/* Both have a point at every step: combine in place. */
		*out = l;
		memset(&l, 0, sizeof l);
		struct qseries *a = &out->m.s[0];
		const struct qseries *z = &r.m.s[0];
		for (size_t k = 0; k < a->n_pts && k < z->n_pts; k++)
			a->pts[k].v = scalar_op(b.op, a->pts[k].v, z->pts[k].v);
		goto out;
	}
	struct qvalue *in[2] = { &l, &r };
	ts__qstep_fn fn;
	if (lt == TS_VT_VECTOR && rt == TS_VT_VECTOR) {
		fn = TS_OP_IS_SET(b.op) ? step_set : step_vv;
		if (fn == step_vv && b.vm->card == TS_CARD_ONE_TO_ONE) {
			if ((rc = vv_series_init(c, &b, l.m.n, r.m.n)))
				goto out;
			fn = step_vv_series;
		}
	} else {
		fn = step_vs;
		b.swap = lt == TS_VT_SCALAR;
	}
	rc = ts__q_range_eval(ev, in, 2, fn, &b, out);
out:
	ts__q_value_fini(c, &l);
	ts__q_value_fini(c, &r);
	ts__qmap_fini(&b.m1);
	ts__qmap_fini(&b.m2);
	ts__qmap_fini(&b.sigc);
	ts__qmap_fini(&b.resc);
	ts_free(b.sigs);
	ts_free(b.res);
	ts__qmap_fini(&b.sigid);
	ts_free(b.lsig);
	ts_free(b.rsig);
	ts_free(b.lres);
	ts_free(b.seen_r);
	ts_free(b.seen_l);
	ts_free(b.pos_r);
	ts__qlb_fini(&b.lb);
	return rc;
}
