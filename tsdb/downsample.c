/*
 * downsample.c - Thanos-model downsampling (raw -> 5m -> 1h) and tier blocks.
 *
 * The semantics, with where each comes from in Thanos and where we differ, are in
 * downsample.h. Two things shape the code here:
 *  - every row shares one timestamp, so both aggregation passes walk windows in one
 *    loop and emit the row when the window changes (downsampleBatch's shape);
 *  - the counter of 5m -> 1h is not a per-row aggregate but a stream (the sets stitched
 *    by ts_ds_counter_next) with its own timestamps (first raw sample, corrections at
 *    repeated times), folded into the row windows beside the other aggregates.
 * Nothing here allocates except the tier encode (one buffer for the columns) and the
 * tier decode (one scratch buffer per series).
 */
#include "tsdb/downsample.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/format.h"

#define STALE_BITS UINT64_C(0x7ff0000000000002)
#define MAX_COUNT 9007199254740992.0 /* 2^53: counts beyond are not exact doubles */

static double f64(uint64_t b)
{
	double d;
	memcpy(&d, &b, sizeof d);
	return d;
}

static uint64_t bits(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof b);
	return b;
}

static int t_ok(int64_t t)
{
	return t >= TS_FORMAT_MIN_T_MS && t <= TS_FORMAT_MAX_T_MS;
}

/* Floor alignment; |t| <= 2^62 and res <= 2^40 keep start and end in range. */
static int64_t win_start(int64_t t, int64_t res)
{
	int64_t r = t % res;
	return t - (r < 0 ? r + res : r);
}

/* The per-window state (Thanos' floatAggregator without its counter). */
struct win {
	int64_t start;
	double count, sum, min, max;
};

static void win_begin(struct win *w, int64_t start)
{
	w->start = start;
	w->count = 0;
	w->sum = 0;
	/* NaN until the first value: min/max take it whatever it is (see the header). */
	w->min = NAN;
	w->max = NAN;
}

/* The counter of one stream (floatAggregator's counter, last, total). */
struct ctr {
	uint64_t n;
	double counter, last;
};

static void ctr_add(struct ctr *c, double v)
{
	if (c->n == 0)
		c->counter = v;
	else if (v < c->last)
		c->counter += v; /* a reset: the counter restarted from 0 */
	else
		c->counter += v - c->last;
	c->last = v;
	c->n++;
}

/* The row of w at time t: the row's own counter is filled by the caller. */
static void row_of(struct ts_ds_row *r, const struct win *w, int64_t t)
{
	r->t_ms = t;
	r->v[TS_DS_COUNT] = w->count;
	r->v[TS_DS_SUM] = w->sum;
	r->v[TS_DS_MIN] = w->min;
	r->v[TS_DS_MAX] = w->max;
}

int ts_ds_raw(const int64_t *t_ms, const uint64_t *v, size_t n, int64_t res_ms,
	      struct ts_ds_row *rows, size_t rows_cap, struct ts_ds_agg *out)
{
	if (res_ms < 1 || res_ms > TS_DS_MAX_RES_MS || !out || (n && (!t_ms || !v)))
		return TS_EINVALID;
	for (size_t i = 0; i < n; i++)
		if (!t_ok(t_ms[i]) || (i && t_ms[i] <= t_ms[i - 1]))
			return TS_EINVALID;

	struct ts_ds_agg a = { rows, 0, 0, 0, 0 };
	struct win w = { 0 };
	struct ctr c = { 0 };
	int64_t last_t = 0;
	for (size_t i = 0; i < n; i++) {
		double x = f64(v[i]);
		/* downsampleRawLoop drops every NaN, stale markers included. */
		if (isnan(x))
			continue;
		int64_t s = win_start(t_ms[i], res_ms);
		if (c.n == 0) {
			a.first_t_ms = t_ms[i];
			a.first_v = x;
			win_begin(&w, s);
		} else if (s != w.start) {
			if (a.n_rows == rows_cap)
				return TS_ELIMIT;
			row_of(&rows[a.n_rows], &w, w.start + res_ms - 1);
			rows[a.n_rows++].v[TS_DS_COUNTER] = c.counter;
			win_begin(&w, s);
		}
		w.count++;
		w.sum += x;
		if (isnan(w.min) || x < w.min)
			w.min = x;
		if (isnan(w.max) || x > w.max)
			w.max = x;
		ctr_add(&c, x);
		last_t = t_ms[i];
	}
	if (c.n) {
		if (a.n_rows == rows_cap)
			return TS_ELIMIT;
		/* The call's last window ends at its last sample (downsampleBatch's lastT). */
		int64_t end = w.start + res_ms - 1;
		row_of(&rows[a.n_rows], &w, end < last_t ? end : last_t);
		rows[a.n_rows++].v[TS_DS_COUNTER] = c.counter;
		a.last_v = c.last;
	}
	*out = a;
	return 0;
}

/* ---- the counter stream ------------------------------------------------------------ */

void ts_ds_counter_init(struct ts_ds_counter_it *it, const struct ts_ds_agg *in, size_t n_in)
{
	memset(it, 0, sizeof *it);
	it->set = in;
	it->n_set = in ? n_in : 0;
}

/* The j-th element of a set's stream: 0 the first raw sample, 1 .. n_rows the counter
 * rows, n_rows + 1 the last raw value. */
static void set_elem(const struct ts_ds_agg *s, size_t j, int64_t *t, double *v)
{
	if (j == 0) {
		*t = s->first_t_ms;
		*v = s->first_v;
	} else if (j <= s->n_rows) {
		*t = s->rows[j - 1].t_ms;
		*v = s->rows[j - 1].v[TS_DS_COUNTER];
	} else {
		*t = s->rows[s->n_rows - 1].t_ms;
		*v = s->last_v;
	}
}

int ts_ds_counter_next(struct ts_ds_counter_it *it, int64_t *t_ms, double *v)
{
	while (it->k < it->n_set) {
		const struct ts_ds_agg *s = &it->set[it->k];
		if (s->n_rows == 0 || it->j > s->n_rows + 1) {
			it->k++;
			it->j = 0;
			continue;
		}
		int64_t t;
		double x;
		set_elem(s, it->j++, &t, &x);
		if (isnan(x))
			continue;
		if (it->total == 0) {
			it->total_v = x;
		} else if (t > it->last_t) {
			it->total_v += x >= it->last_v ? x - it->last_v : x;
		} else {
			/* At the same time: the true raw value behind the row just emitted,
			 * which the next set's first raw value is compared with. */
			if (t == it->last_t)
				it->last_v = x;
			continue;
		}
		it->total++;
		it->last_t = t;
		it->last_v = x;
		*t_ms = t;
		*v = it->total_v;
		return 1;
	}
	return 0;
}

double ts_ds_counter_last_raw(const struct ts_ds_counter_it *it)
{
	return it->last_v;
}

/* ---- 5m -> 1h ---------------------------------------------------------------------- */

static int check_set(const struct ts_ds_agg *s, int64_t prev_end, int first)
{
	if (s->n_rows == 0)
		return 0;
	if (!s->rows || !t_ok(s->first_t_ms) || s->first_t_ms > s->rows[0].t_ms)
		return TS_EINVALID;
	if (!first && s->first_t_ms <= prev_end)
		return TS_EINVALID;
	if (bits(s->first_v) == STALE_BITS || bits(s->last_v) == STALE_BITS)
		return TS_EINVALID;
	for (size_t j = 0; j < s->n_rows; j++) {
		const struct ts_ds_row *r = &s->rows[j];
		if (!t_ok(r->t_ms) || (j && r->t_ms <= r[-1].t_ms))
			return TS_EINVALID;
		for (int k = 0; k < TS_DS_N_AGGR; k++)
			if (bits(r->v[k]) == STALE_BITS)
				return TS_EINVALID;
	}
	return 0;
}

/* Pulls counter-stream samples up to time `until` into c (one sample of look-ahead). */
struct pull {
	struct ts_ds_counter_it it;
	int have;
	int64_t t;
	double v;
};

static void pull_until(struct pull *p, struct ctr *c, int64_t until)
{
	for (;;) {
		if (!p->have)
			p->have = ts_ds_counter_next(&p->it, &p->t, &p->v);
		if (!p->have || p->t > until)
			return;
		ctr_add(c, p->v);
		p->have = 0;
	}
}

int ts_ds_aggr(const struct ts_ds_agg *in, size_t n_in, int64_t res_ms, struct ts_ds_row *rows,
	       size_t rows_cap, struct ts_ds_agg *out)
{
	if (res_ms < 1 || res_ms > TS_DS_MAX_RES_MS || !out || (n_in && !in))
		return TS_EINVALID;
	int64_t prev_end = 0, last_t = 0;
	int seen = 0;
	for (size_t k = 0; k < n_in; k++) {
		int rc = check_set(&in[k], prev_end, !seen);
		if (rc)
			return rc;
		if (in[k].n_rows) {
			prev_end = last_t = in[k].rows[in[k].n_rows - 1].t_ms;
			seen = 1;
		}
	}
	struct ts_ds_agg a = { rows, 0, 0, 0, 0 };
	if (!seen) {
		*out = a;
		return 0;
	}

	struct pull p = { .have = 0 };
	ts_ds_counter_init(&p.it, in, n_in);
	struct ctr c = { 0 };
	struct win w = { 0 };
	int open = 0;
	for (size_t k = 0; k < n_in; k++) {
		for (size_t j = 0; j < in[k].n_rows; j++) {
			const struct ts_ds_row *r = &in[k].rows[j];
			int64_t s = win_start(r->t_ms, res_ms);
			if (open && s != w.start) {
				if (a.n_rows == rows_cap)
					return TS_ELIMIT;
				int64_t end = w.start + res_ms - 1;
				pull_until(&p, &c, end);
				row_of(&rows[a.n_rows], &w, end);
				rows[a.n_rows++].v[TS_DS_COUNTER] = c.n ? c.counter : NAN;
			}
			if (!open || s != w.start)
				win_begin(&w, s);
			open = 1;
			w.count += r->v[TS_DS_COUNT];
			w.sum += r->v[TS_DS_SUM];
			/* NaN inputs are ignored, as Thanos' "v < min" comparison ignores them. */
			double lo = r->v[TS_DS_MIN], hi = r->v[TS_DS_MAX];
			if (isnan(w.min) || lo < w.min)
				w.min = lo;
			if (isnan(w.max) || hi > w.max)
				w.max = hi;
		}
	}
	if (a.n_rows == rows_cap)
		return TS_ELIMIT;
	pull_until(&p, &c, INT64_MAX);
	int64_t end = w.start + res_ms - 1;
	row_of(&rows[a.n_rows], &w, end < last_t ? end : last_t);
	rows[a.n_rows++].v[TS_DS_COUNTER] = c.n ? c.counter : NAN;

	/* The stream's first sample is the first raw one (unless NaN); the last raw value is
	 * what the stream ended with. */
	struct ts_ds_counter_it first;
	ts_ds_counter_init(&first, in, n_in);
	if (!ts_ds_counter_next(&first, &a.first_t_ms, &a.first_v)) {
		a.first_t_ms = rows[0].t_ms;
		a.first_v = NAN;
	}
	if (a.first_t_ms > rows[0].t_ms) /* only when leading counters are NaN */
		a.first_t_ms = rows[0].t_ms;
	a.last_v = ts_ds_counter_last_raw(&p.it);
	*out = a;
	return 0;
}

/* ---- tier blocks ------------------------------------------------------------------- */

static int count_ok(double x)
{
	return x >= 1 && x <= MAX_COUNT && x == floor(x);
}

static int check_tier_series(const struct ts_ds_tier_series *s)
{
	const struct ts_ds_agg *a = &s->agg;
	if (s->id > TS_DS_MAX_SERIES_ID || a->n_rows == 0 || a->n_rows > UINT32_MAX)
		return TS_EINVALID;
	if (check_set(a, 0, 1))
		return TS_EINVALID;
	for (size_t j = 0; j < a->n_rows; j++)
		if (!count_ok(a->rows[j].v[TS_DS_COUNT]))
			return TS_EINVALID;
	return 0;
}

int ts_ds_tier_encode(const struct ts_ds_tier_series *in, size_t n, int level, uint8_t **out,
		      size_t *out_len)
{
	if (!in || !out || !out_len || n == 0 || n > TS_DS_TIER_MAX_SERIES)
		return TS_EINVALID;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if ((i && in[i].id <= in[i - 1].id) || check_tier_series(&in[i]))
			return TS_EINVALID;
		/* t and 5 value columns per row, plus first t, first v and last v. */
		if (in[i].agg.n_rows > (SIZE_MAX / 8 - total - 3) / 6)
			return TS_ELIMIT;
		total += 6 * in[i].agg.n_rows + 3;
	}

	int rc;
	uint64_t *col = ts_calloc(total, sizeof *col);
	struct ts_cold_input *ci = ts_calloc(n * TS_DS_N_KINDS, sizeof *ci);
	if (!col || !ci) {
		rc = -ENOMEM;
		goto out;
	}
	uint64_t *p = col;
	for (size_t i = 0; i < n; i++) {
		const struct ts_ds_agg *a = &in[i].agg;
		size_t m = a->n_rows;
		int64_t *t = (int64_t *)p; /* ts_calloc memory: no declared type yet */
		struct ts_cold_input *c = &ci[i * TS_DS_N_KINDS];
		for (size_t j = 0; j < m; j++)
			t[j] = a->rows[j].t_ms;
		p += m;
		for (int k = 0; k < TS_DS_N_AGGR; k++, p += m) {
			for (size_t j = 0; j < m; j++)
				p[j] = bits(a->rows[j].v[k]);
			c[k] = (struct ts_cold_input){ in[i].id << TS_DS_KIND_BITS | (uint64_t)k,
						       (uint32_t)m, t, p };
		}
		int64_t *first_t = (int64_t *)p++;
		*first_t = a->first_t_ms;
		*p = bits(a->first_v);
		c[TS_DS_KIND_FIRST] = (struct ts_cold_input){
			in[i].id << TS_DS_KIND_BITS | TS_DS_KIND_FIRST, 1, first_t, p++
		};
		*p = bits(a->last_v);
		c[TS_DS_KIND_LAST] = (struct ts_cold_input){
			in[i].id << TS_DS_KIND_BITS | TS_DS_KIND_LAST, 1, &t[m - 1], p++
		};
	}
	rc = ts_cold_encode(ci, n * TS_DS_N_KINDS, level, out, out_len);
	if (rc == TS_EINVALID) /* our checks above cover the codec's */
		rc = TS_ELIMIT;
out:
	ts_free(col);
	ts_free(ci);
	return rc;
}

int ts_ds_tier_id(const struct ts_cold_block *b, size_t i, uint64_t *series_id, size_t *n_rows)
{
	if (!b || i >= ts_cold_nseries(b) / TS_DS_N_KINDS)
		return TS_ENOTFOUND;
	uint64_t id;
	uint32_t m;
	ts_cold_series(b, i * TS_DS_N_KINDS, &id, &m, NULL, NULL);
	if ((id & ((1u << TS_DS_KIND_BITS) - 1)) != TS_DS_COUNT)
		return TS_CORRUPT();
	if (series_id)
		*series_id = id >> TS_DS_KIND_BITS;
	if (n_rows)
		*n_rows = m;
	return 0;
}

/* Decodes pseudo-series `pid` into t[n], v[n] after checking it has n samples. */
/* Pseudo-series pid, expected at index i (a series' kinds are adjacent, ids ascending). */
static int decode_kind(const struct ts_cold_block *b, long i, uint64_t pid, uint32_t n, int64_t *t,
		       uint64_t *v)
{
	uint64_t id;
	uint32_t m;
	if (i < 0 || (size_t)i >= ts_cold_nseries(b))
		return TS_CORRUPT();
	ts_cold_series(b, (size_t)i, &id, &m, NULL, NULL);
	if (id != pid || m != n)
		return TS_CORRUPT();
	return ts_cold_decode(b, (size_t)i, t, v);
}

int ts_ds_tier_decode(const struct ts_cold_block *b, uint64_t series_id, struct ts_ds_row *rows,
		      size_t rows_cap, struct ts_ds_agg *out)
{
	return ts_ds_tier_decode_kinds(b, series_id, TS_DS_KINDS_ALL, rows, rows_cap, out);
}

int ts_ds_tier_decode_kinds(const struct ts_cold_block *b, uint64_t series_id, unsigned kinds,
			    struct ts_ds_row *rows, size_t rows_cap, struct ts_ds_agg *out)
{
	if (!b || !out || (rows_cap && !rows))
		return TS_EINVALID;
	if (series_id > TS_DS_MAX_SERIES_ID)
		return TS_ENOTFOUND;
	uint64_t base = series_id << TS_DS_KIND_BITS;
	long i0 = ts_cold_find(b, base);
	if (i0 < 0)
		return TS_ENOTFOUND;
	uint32_t n;
	ts_cold_series(b, (size_t)i0, NULL, &n, NULL, NULL);
	if (n == 0)
		return TS_CORRUPT(); /* a tier series has a row */
	if (n > rows_cap)
		return TS_ELIMIT;

	int rc;
	int64_t *t = ts_malloc((size_t)n * sizeof *t);
	uint64_t *v = ts_malloc((size_t)n * sizeof *v);
	if (!t || !v) {
		rc = -ENOMEM;
		goto out;
	}
	kinds |= 1u << TS_DS_COUNT; /* the timestamps, and what a row weighs */
	for (int k = 0; k < TS_DS_N_AGGR; k++) {
		if (!(kinds & (1u << k)))
			continue;
		if ((rc = decode_kind(b, i0 + k, base | (uint64_t)k, n, t, v)))
			goto out;
		for (uint32_t j = 0; j < n; j++) {
			double x = f64(v[j]);
			if (v[j] == STALE_BITS || !t_ok(t[j]) ||
			    (k == TS_DS_COUNT && !count_ok(x)) || (k && t[j] != rows[j].t_ms)) {
				rc = TS_CORRUPT();
				goto out;
			}
			rows[j].t_ms = t[j];
			rows[j].v[k] = x;
		}
	}
	int64_t ft = rows[0].t_ms, lt = rows[n - 1].t_ms;
	uint64_t fv = 0, lv = 0;
	if ((kinds & (1u << TS_DS_KIND_FIRST)) &&
	    (rc = decode_kind(b, i0 + TS_DS_KIND_FIRST, base | TS_DS_KIND_FIRST, 1, &ft, &fv)))
		goto out;
	if ((kinds & (1u << TS_DS_KIND_LAST)) &&
	    (rc = decode_kind(b, i0 + TS_DS_KIND_LAST, base | TS_DS_KIND_LAST, 1, &lt, &lv)))
		goto out;
	if (!t_ok(ft) || ft > rows[0].t_ms || lt != rows[n - 1].t_ms || fv == STALE_BITS ||
	    lv == STALE_BITS) {
		rc = TS_CORRUPT();
		goto out;
	}
	*out = (struct ts_ds_agg){ rows, n, ft, f64(fv), f64(lv) };
out:
	ts_free(t);
	ts_free(v);
	return rc;
}
