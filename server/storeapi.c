/*
 * storeapi.c - the Thanos StoreAPI over gRPC (--grpc-listen): thanos.info.Info/Info,
 * and thanos.Store's Info (older Thanos Query), Series, LabelNames and LabelValues.
 *
 * Series streams one SeriesResponse per series, sorted by labels with the external
 * labels merged in (extlabels.h). Raw reads (max_resolution_window below 5 minutes, or
 * only RAW asked) send the stored XOR chunks, time-ordered and never overlapping
 * (xchunks.h). Downsampled reads send AggrChunks holding the aggregates asked for
 * (count, sum, min, max, counter), each an XOR chunk of one point per 5m or 1h window
 * from the downsampled tiers; spans the tiers do not cover (open partitions, recent
 * samples) go out as one-sample windows (count 1, sum = min = max = the value), so
 * every chunk of a series has the same shape. The counter aggregate is the engine's
 * monotonic counter read (resets already added up), which Thanos' counter iterator
 * passes through unchanged.
 *
 * Tenants: the tenant header (lower case, as gRPC metadata) picks the tenant, as on
 * HTTP.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "server/extlabels.h"
#include "server/grpc.h"
#include "server/storeapi.h"
#include "server/tenant.h"
#include "server/xchunks.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/xor.h"
#include "wire/storeapi.h"

#define DS_MIN_RES 300000 /* the finest downsampled tier: 5 minutes */
#define STALE_BITS 0x7ff0000000000002ull
#define SERIES_MSG_BYTES (1u << 20) /* a raw series' chunks are split into messages of this */

static enum ts_grpc_status status_of(int rc)
{
	switch (rc) {
	case TS_EINVALID: return TS_GRPC_INVALID_ARGUMENT;
	case -ETIMEDOUT: return TS_GRPC_DEADLINE_EXCEEDED;
	case -ECANCELED: return TS_GRPC_CANCELLED;
	case -ENOMEM:
	case TS_ELIMIT: return TS_GRPC_RESOURCE_EXHAUSTED;
	case TS_ECLOSED: return TS_GRPC_UNAVAILABLE;
	default: return TS_GRPC_INTERNAL;
	}
}

/* Ends a call with the outcome rc of its handler (msg: the engine's message). */
static void finish_rc(struct ts_grpc_call *c, int rc, const char *msg)
{
	if (rc == -EPIPE) /* the client is gone: nobody reads the status */
		ts_grpc_finish(c, TS_GRPC_CANCELLED, NULL);
	else if (rc)
		ts_grpc_finish(c, status_of(rc), msg && msg[0] ? msg : ts_strerror(rc));
	else
		ts_grpc_finish(c, TS_GRPC_OK, NULL);
}

/* What every request shares: its decoded form, tenant, and the matchers to select
 * with (external labels decided, the tenant's added). */
struct req {
	struct ts_sa_request r;
	struct ts_tenant tenant;
	struct ts_matcher *m;
	size_t n_m;
	bool none; /* an external label rules every series out */
	int64_t mint, maxt;
	char msg[512];
};

static int req_open(struct ts_app *app, struct ts_grpc_call *c, enum ts_sa_kind kind,
		    const uint8_t *p, size_t len, struct req *q)
{
	memset(q, 0, sizeof *q);
	int rc = ts_sa_decode(kind, p, len, &q->r, q->msg, sizeof q->msg);
	if (rc)
		return rc;
	size_t tl = 0;
	const char *tv = NULL;
	if (app->tenant_header) {
		char key[128];
		size_t i = 0;
		for (; app->tenant_header[i] && i + 1 < sizeof key; i++)
			key[i] = (char)((app->tenant_header[i] >= 'A' &&
					 app->tenant_header[i] <= 'Z')
						? app->tenant_header[i] + 32
						: app->tenant_header[i]);
		key[i] = 0;
		tv = ts_grpc_metadata(c, key, &tl);
	}
	rc = ts_tenant_named(app, tv, tl, &q->tenant, q->msg, sizeof q->msg);
	if (rc)
		return rc;
	struct ts_matcher *m = NULL;
	size_t n = 0;
	rc = ts_ext_matchers(app, q->r.m, q->r.n_m, &m, &n, &q->none, q->msg, sizeof q->msg);
	if (rc)
		return rc;
	if (q->tenant.on) {
		struct ts_matcher *m2 = ts_realloc(m, (n + 1) * sizeof *m);
		if (!m2) {
			ts_free(m);
			return -ENOMEM;
		}
		m = m2;
		m[n++] = q->tenant.m;
	}
	q->m = m;
	q->n_m = n;
	q->mint = q->r.mint;
	q->maxt = q->r.maxt;
	if (kind != TS_SA_SERIES && q->mint == 0 && q->maxt == 0) {
		q->mint = INT64_MIN;
		q->maxt = INT64_MAX;
	}
	return 0;
}

static void req_close(struct req *q)
{
	ts_free(q->m);
	ts_sa_request_fini(&q->r);
}

/* The call's deadline within --query.timeout. */
static int64_t deadline_of(const struct ts_app *app, const struct ts_grpc_call *c)
{
	int64_t d = ts_grpc_deadline_ns(c);
	int64_t cap = ts_app_query_timeout(app, 0);
	if (cap > 0) {
		int64_t dc = ts_mono_ns() + cap * 1000000LL;
		if (!d || dc < d)
			d = dc;
	}
	return d;
}

/* ---- Info ---- */

static void store_range(struct ts_app *app, int64_t *mint, int64_t *maxt)
{
	int64_t hi;
	ts_db_time_range(app->db, mint, &hi);
	/* New samples keep arriving: the newest end is open, as a sidecar says. */
	*maxt = INT64_MAX;
}

static void send_info(struct ts_grpc_call *c, struct ts_app *app, bool legacy)
{
	struct ts_sa_info in = { .ext = app->ext_labels, .n_ext = app->n_ext_labels };
	store_range(app, &in.mint, &in.maxt);
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	int rc = legacy ? ts_sa_put_store_info(&b, &in) : ts_sa_put_info(&b, &in);
	if (rc == 0)
		rc = ts_grpc_send(c, b.data, b.len);
	ts_pb_buf_fini(&b);
	finish_rc(c, rc, NULL);
}

static void h_info(struct ts_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)len;
	send_info(c, arg, false);
}

static void h_store_info(struct ts_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)len;
	send_info(c, arg, true);
}

/* ---- Series ---- */

/* One series being put together. */
struct out {
	struct ts_grpc_call *call;
	struct ts_pb_buf b;
	struct ts_label *lab; /* merged labels */
	size_t cap_lab, n_lab;
	struct ts_sa_chunk *ch;
	size_t n_ch, cap_ch;
	uint8_t *bytes; /* owned copies of chunk bytes (raw chunks are borrowed) */
	size_t n_bytes, cap_bytes;
	size_t msg_bytes;
	struct ts_xchunks x;
	int64_t mint, maxt; /* the request's range (raw chunks are trimmed by the client) */
	bool sent_any;
};

/* Sends what is gathered of the current series as one message. */
static int out_send(struct out *o)
{
	o->b.len = 0;
	int rc = ts_sa_put_series(&o->b, o->lab, o->n_lab, o->ch, o->n_ch);
	if (rc == 0)
		rc = ts_grpc_send(o->call, o->b.data, o->b.len);
	o->n_ch = 0;
	o->n_bytes = 0;
	o->msg_bytes = 0;
	o->sent_any = true;
	return rc;
}

/* Chunk data pointers were kept as offsets while the byte buffer could move. */
static void fix_pointers(struct out *o)
{
	for (size_t i = 0; i < o->n_ch; i++)
		for (int a = 0; a < TS_SA_N_AGGR; a++)
			if (o->ch[i].len[a] || o->ch[i].data[a])
				o->ch[i].data[a] = o->bytes + (uintptr_t)o->ch[i].data[a];
}

static int raw_chunk(void *arg, int64_t mint, int64_t maxt, const uint8_t *data, size_t len)
{
	struct out *o = arg;
	if (maxt < o->mint || mint > o->maxt)
		return 0;
	/* Chunk bytes are valid for this call only (merged groups are re-encoded into a
	 * buffer the next group reuses): keep a copy until the message goes out. */
	if (ts_grow((void **)&o->ch, &o->cap_ch, o->n_ch + 1, sizeof *o->ch) ||
	    ts_grow((void **)&o->bytes, &o->cap_bytes, o->n_bytes + len, 1))
		return -ENOMEM;
	memcpy(o->bytes + o->n_bytes, data, len);
	struct ts_sa_chunk *k = &o->ch[o->n_ch++];
	memset(k, 0, sizeof *k);
	k->mint = mint;
	k->maxt = maxt;
	k->data[TS_SA_RAW] = (const uint8_t *)(uintptr_t)o->n_bytes; /* an offset for now */
	k->len[TS_SA_RAW] = len;
	o->n_bytes += len;
	o->msg_bytes += len;
	if (o->msg_bytes < SERIES_MSG_BYTES)
		return 0;
	/* A long range: the series goes out in several messages (Thanos allows that, as
	 * long as no other series comes in between). */
	fix_pointers(o);
	return out_send(o);
}

static int raw_series(struct out *o, struct ts_series_set *set, size_t i)
{
	o->n_ch = o->n_bytes = o->msg_bytes = 0;
	o->sent_any = false;
	int rc = ts_xchunks_series(&o->x, set, i, raw_chunk, o);
	if (rc || o->n_ch == 0)
		return rc;
	fix_pointers(o);
	return out_send(o);
}

/* Downsampled reads: the aggregates asked for, one selection each. */
enum { SEL_SUM, SEL_MIN, SEL_MAX, SEL_COUNTER, N_SEL };
static const enum ts_aggr sel_aggr[N_SEL] = { TS_AGGR_SUM, TS_AGGR_MIN, TS_AGGR_MAX,
					      TS_AGGR_COUNTER };

struct pts {
	int64_t *t;
	double *v, *w;
	size_t n, cap;
};

static int read_points(struct ts_series_set *set, size_t i, struct pts *p)
{
	struct ts_iter *it = NULL;
	int rc = ts_iter_new(set, i, &it);
	p->n = 0;
	if (rc == 0)
		rc = ts_iter_read_all(it, &p->t, &p->v, &p->w, &p->n, &p->cap);
	ts_iter_free(it);
	return rc;
}

static bool is_stale(double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof b);
	return b == STALE_BITS;
}

struct ds {
	struct ts_series_set *set[N_SEL];
	bool have[N_SEL];
	int ref; /* the selection that lists the series (the first one made) */
	struct pts p[N_SEL];
	size_t pos[N_SEL]; /* next point of each selection to place in a chunk */
	/* Per selection other than ref: its series ids, sorted, with their indexes, so
	 * that a series is found by id (a series created between two selections is in
	 * the later one only: it is read where it is found, not an error). */
	struct idx {
		uint64_t id;
		size_t i;
	} * by_id[N_SEL];
	uint32_t want;
};

static int idx_cmp(const void *a, const void *b)
{
	const struct idx *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int ds_index(struct ds *d, int s)
{
	size_t n = ts_series_set_len(d->set[s]);
	d->by_id[s] = ts_malloc((n ? n : 1) * sizeof *d->by_id[s]);
	if (!d->by_id[s])
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		d->by_id[s][i] = (struct idx){ ts_series_set_id(d->set[s], i), i };
	qsort(d->by_id[s], n, sizeof *d->by_id[s], idx_cmp);
	return 0;
}

/* The selection an aggregate is read from: count is the weight of the sum read. */
static int sel_of(int a)
{
	return a == TS_SA_COUNT || a == TS_SA_SUM ? SEL_SUM
	       : a == TS_SA_MIN			  ? SEL_MIN
	       : a == TS_SA_MAX			  ? SEL_MAX
						  : SEL_COUNTER;
}

/* One AggrChunk: every wanted aggregate's points up to `until` (inclusive). Each
 * aggregate is its own XOR chunk with its own timestamps: Thanos reads count and sum in
 * step (they come from one selection here), the others alone. */
static int ds_chunk(struct out *o, struct ds *d, int64_t until)
{
	if (ts_grow((void **)&o->ch, &o->cap_ch, o->n_ch + 1, sizeof *o->ch))
		return -ENOMEM;
	struct ts_sa_chunk *k = &o->ch[o->n_ch];
	memset(k, 0, sizeof *k);
	k->mint = INT64_MAX;
	k->maxt = INT64_MIN;
	size_t end[N_SEL];
	for (int s = 0; s < N_SEL; s++) {
		end[s] = d->pos[s];
		while (d->have[s] && end[s] < d->p[s].n && d->p[s].t[end[s]] <= until)
			end[s]++;
		if (end[s] > d->pos[s]) {
			if (d->p[s].t[d->pos[s]] < k->mint)
				k->mint = d->p[s].t[d->pos[s]];
			if (d->p[s].t[end[s] - 1] > k->maxt)
				k->maxt = d->p[s].t[end[s] - 1];
		}
	}
	int rc = 0;
	for (int a = TS_SA_COUNT; a < TS_SA_N_AGGR && rc == 0; a++) {
		int s = sel_of(a);
		if (!(d->want & (1u << a)) || !d->have[s])
			continue;
		struct ts_xor_enc e;
		ts_xor_enc_init(&e);
		for (size_t j = d->pos[s]; j < end[s] && rc == 0; j++) {
			double v = a == TS_SA_COUNT ? d->p[s].w[j] : d->p[s].v[j];
			uint64_t bits;
			memcpy(&bits, &v, sizeof bits);
			rc = ts_xor_append(&e, d->p[s].t[j], bits);
		}
		/* No point of this aggregate in the span: an empty chunk (a zero count;
		 * the encoder has no buffer yet). */
		static const uint8_t empty[2] = { 0, 0 };
		size_t len = e.buf ? ts_xor_enc_bytes(&e) : sizeof empty;
		const uint8_t *src = e.buf ? e.buf : empty;
		if (rc == 0 && ts_grow((void **)&o->bytes, &o->cap_bytes, o->n_bytes + len, 1))
			rc = -ENOMEM;
		if (rc == 0) {
			memcpy(o->bytes + o->n_bytes, src, len);
			k->data[a] = (const uint8_t *)(uintptr_t)o->n_bytes;
			k->len[a] = len;
			o->n_bytes += len;
		}
		ts_xor_enc_fini(&e);
	}
	for (int s = 0; s < N_SEL; s++)
		d->pos[s] = end[s];
	if (rc == 0 && k->mint <= k->maxt)
		o->n_ch++;
	return rc;
}

/* Drops stale markers: they end a series in PromQL, and aggregates have no room for
 * them (Thanos' downsampling drops them too). */
static void drop_stale(struct pts *p)
{
	size_t w = 0;
	for (size_t j = 0; j < p->n; j++) {
		if (is_stale(p->v[j]))
			continue;
		p->t[w] = p->t[j];
		p->v[w] = p->v[j];
		p->w[w++] = p->w[j];
	}
	p->n = w;
}

/* Series i of the listing selection, with its points in every other selection found
 * by id. Chunks are cut at every TS_XCHUNK_CUT-th point of the listing read. */
static int ds_series(struct out *o, struct ds *d, size_t i)
{
	int rc = 0;
	uint64_t id = ts_series_set_id(d->set[d->ref], i);
	for (int s = 0; s < N_SEL && rc == 0; s++) {
		d->pos[s] = 0;
		d->p[s].n = 0;
		if (!d->have[s])
			continue;
		size_t j = i;
		if (s != d->ref) {
			struct idx key = { id, 0 };
			const struct idx *hit = bsearch(&key, d->by_id[s],
							ts_series_set_len(d->set[s]), sizeof key,
							idx_cmp);
			if (!hit)
				continue; /* gone from this read: its aggregate is empty */
			j = hit->i;
		}
		rc = read_points(d->set[s], j, &d->p[s]);
		drop_stale(&d->p[s]);
	}
	if (rc)
		return rc;
	o->n_ch = o->n_bytes = 0;
	const struct pts *r = &d->p[d->ref];
	for (size_t from = 0; from < r->n && rc == 0; from += TS_XCHUNK_CUT) {
		bool last = from + TS_XCHUNK_CUT >= r->n;
		rc = ds_chunk(o, d, last ? INT64_MAX : r->t[from + TS_XCHUNK_CUT - 1]);
	}
	if (rc == 0 && r->n == 0)
		rc = ds_chunk(o, d, INT64_MAX); /* the other reads may still have points */
	if (rc || o->n_ch == 0)
		return rc;
	fix_pointers(o);
	return out_send(o);
}

static void ds_fini(struct ds *d)
{
	for (int s = 0; s < N_SEL; s++) {
		ts_series_set_free(d->set[s]);
		ts_free(d->by_id[s]);
		ts_free(d->p[s].t);
		ts_free(d->p[s].v);
		ts_free(d->p[s].w);
	}
}

static int labels_of(struct ts_app *app, struct out *o, struct ts_series_set *set, size_t i)
{
	const struct ts_label *l;
	uint32_t nl;
	int rc = ts_series_set_labels(set, i, &l, &nl);
	if (rc == 0)
		rc = ts_ext_merge(app, l, nl, &o->lab, &o->cap_lab, &o->n_lab);
	return rc;
}

static void h_series(struct ts_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	struct ts_app *app = arg;
	struct req q;
	struct out o = { .call = c };
	struct ds d = { 0 };
	size_t *perm = NULL;
	ts_pb_buf_init(&o.b);
	int rc = req_open(app, c, TS_SA_SERIES, p, len, &q);
	if (rc || q.none)
		goto out;
	o.mint = q.mint;
	o.maxt = q.maxt;
	struct ts_select_opts so = { .deadline_ns = deadline_of(app, c) };
	uint32_t want = q.r.aggr_mask & ~(1u << TS_SA_RAW);
	bool downsampled = !q.r.skip_chunks && q.r.max_resolution >= DS_MIN_RES && want;
	d.want = want;
	if (downsampled) {
		/* Only the reads the aggregates asked for (Thanos asks for one of count+sum,
		 * count, sum, min, max, counter); count is the weight of the sum read. */
		d.have[SEL_SUM] = want & ((1u << TS_SA_COUNT) | (1u << TS_SA_SUM));
		d.have[SEL_MIN] = want & (1u << TS_SA_MIN);
		d.have[SEL_MAX] = want & (1u << TS_SA_MAX);
		d.have[SEL_COUNTER] = want & (1u << TS_SA_COUNTER);
	} else {
		d.have[SEL_SUM] = true; /* the raw read */
	}
	d.ref = -1;
	for (int s = 0; s < N_SEL && rc == 0; s++) {
		if (!d.have[s])
			continue;
		so.max_resolution_ms = downsampled ? q.r.max_resolution : 0;
		so.aggr = sel_aggr[s];
		rc = ts_db_select(app->db, q.m, q.n_m, q.mint, q.maxt, &so, &d.set[s], q.msg,
				  sizeof q.msg);
		if (rc == 0 && d.ref < 0)
			d.ref = s;
		else if (rc == 0)
			rc = ds_index(&d, s);
	}
	struct ts_series_set *list = rc ? NULL : d.set[d.ref];
	if (rc == 0 && app->qlim.max_series && ts_series_set_len(list) > app->qlim.max_series) {
		snprintf(
			q.msg, sizeof q.msg,
			"Series selects too many series: %zu, the limit is %llu (--query.max-series)",
			ts_series_set_len(list), (unsigned long long)app->qlim.max_series);
		rc = TS_ELIMIT;
	}
	if (rc == 0)
		rc = ts_ext_order(app, list, &perm);
	size_t ns = rc ? 0 : ts_series_set_len(list);
	int64_t sent = 0;
	for (size_t k = 0; k < ns && rc == 0; k++) {
		size_t i = perm[k];
		if (q.r.limit && sent >= q.r.limit)
			break;
		rc = labels_of(app, &o, list, i);
		if (rc)
			break;
		o.sent_any = false;
		if (q.r.skip_chunks) {
			rc = ts_series_set_has_data(list, i);
			if (rc == 1) {
				o.n_ch = 0;
				rc = out_send(&o);
			}
		} else if (downsampled) {
			rc = ds_series(&o, &d, i);
		} else {
			rc = raw_series(&o, list, i);
		}
		sent += o.sent_any;
	}
out:
	finish_rc(c, rc, q.msg);
	ts_free(perm);
	ds_fini(&d);
	ts_xchunks_fini(&o.x);
	ts_pb_buf_fini(&o.b);
	ts_free(o.lab);
	ts_free(o.ch);
	ts_free(o.bytes);
	req_close(&q);
}

/* ---- LabelNames, LabelValues ---- */

struct strs {
	const char **s;
	size_t *len;
	size_t n, cap, cap_len; /* s and len grow apart */
};

static int strs_add(struct strs *x, const char *s, size_t len)
{
	if (ts_grow((void **)&x->s, &x->cap, x->n + 1, sizeof *x->s) ||
	    ts_grow((void **)&x->len, &x->cap_len, x->n + 1, sizeof *x->len))
		return -ENOMEM;
	x->s[x->n] = s;
	x->len[x->n++] = len;
	return 0;
}

static int str_cmp(const void *a, const void *b, void *arg)
{
	const struct strs *x = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	size_t n = x->len[i] < x->len[j] ? x->len[i] : x->len[j];
	int c = memcmp(x->s[i], x->s[j], n);
	return c ? c : (x->len[i] > x->len[j]) - (x->len[i] < x->len[j]);
}

/* Sorts x, drops repeats, keeps at most limit (0: all), and sends it. */
static int send_strings(struct ts_grpc_call *c, struct strs *x, int64_t limit)
{
	size_t *ord = ts_malloc((x->n ? x->n : 1) * sizeof *ord);
	const char **s = ts_malloc((x->n ? x->n : 1) * sizeof *s);
	size_t *l = ts_malloc((x->n ? x->n : 1) * sizeof *l);
	int rc = ord && s && l ? 0 : -ENOMEM;
	size_t n = 0;
	if (rc == 0) {
		for (size_t i = 0; i < x->n; i++)
			ord[i] = i;
		qsort_r(ord, x->n, sizeof *ord, str_cmp, x);
		for (size_t i = 0; i < x->n; i++) {
			if (n && !str_cmp(&ord[i], &ord[i - 1], x))
				continue;
			if (limit && (int64_t)n >= limit)
				break;
			s[n] = x->s[ord[i]];
			l[n++] = x->len[ord[i]];
		}
	}
	struct ts_pb_buf b;
	ts_pb_buf_init(&b);
	if (rc == 0)
		rc = ts_sa_put_strings(&b, s, l, n);
	if (rc == 0)
		rc = ts_grpc_send(c, b.data ? b.data : (const uint8_t *)"", b.len);
	ts_pb_buf_fini(&b);
	ts_free(ord);
	ts_free(s);
	ts_free(l);
	return rc;
}

/* Label names (name NULL) or values of `name` of the series with samples in the
 * request's window, read from a selection: the index's lists know no time. */
static int labels_in_window(struct ts_app *app, struct ts_grpc_call *c, struct req *q,
			    const char *name, struct ts_series_set **set, struct strs *x)
{
	struct ts_select_opts so = { .deadline_ns = deadline_of(app, c) };
	int rc = ts_db_select(app->db, q->m, q->n_m, q->mint, q->maxt, &so, set, q->msg,
			      sizeof q->msg);
	if (rc == 0 && app->qlim.max_series && ts_series_set_len(*set) > app->qlim.max_series) {
		snprintf(q->msg, sizeof q->msg,
			 "labels of a window select too many series: %zu, the limit is %llu "
			 "(--query.max-series)",
			 ts_series_set_len(*set), (unsigned long long)app->qlim.max_series);
		return TS_ELIMIT;
	}
	size_t nl = name ? strlen(name) : 0;
	for (size_t i = 0; rc == 0 && i < ts_series_set_len(*set); i++) {
		int has = ts_series_set_has_data(*set, i);
		if (has <= 0) {
			rc = has;
			continue;
		}
		const struct ts_label *l;
		uint32_t n;
		rc = ts_series_set_labels(*set, i, &l, &n);
		for (uint32_t k = 0; rc == 0 && k < n; k++) {
			if (!name)
				rc = strs_add(x, l[k].name, l[k].name_len);
			else if (l[k].name_len == nl && !memcmp(l[k].name, name, nl) &&
				 l[k].value_len)
				rc = strs_add(x, l[k].value, l[k].value_len);
		}
	}
	return rc;
}

static void labels_call(struct ts_grpc_call *c, const uint8_t *p, size_t len, struct ts_app *app,
			enum ts_sa_kind kind)
{
	struct req q;
	struct ts_strlist list = { 0 };
	struct strs x = { 0 };
	struct ts_series_set *set = NULL;
	int rc = req_open(app, c, kind, p, len, &q);
	const char *name = kind == TS_SA_LABEL_VALUES ? q.r.label : NULL;
	const struct ts_label *ext = NULL;
	for (size_t k = 0; rc == 0 && name && k < app->n_ext_labels; k++)
		if (app->ext_labels[k].name_len == strlen(name) &&
		    !memcmp(app->ext_labels[k].name, name, strlen(name)))
			ext = &app->ext_labels[k];
	/* The index answers without looking at time; a window short of everything held
	 * goes through a selection instead. */
	int64_t lo, hi;
	ts_db_time_range(app->db, &lo, &hi);
	bool whole = q.mint <= lo && q.maxt >= hi;
	if (rc == 0 && !q.none) {
		if (!whole)
			rc = labels_in_window(app, c, &q, ext ? NULL : name, &set, &x);
		else if (name && !ext)
			rc = ts_db_label_values(app->db, name, q.m, q.n_m, q.mint, q.maxt, &list,
						q.msg, sizeof q.msg);
		else
			rc = ts_db_label_names(app->db, q.m, q.n_m, q.mint, q.maxt, &list, q.msg,
					       sizeof q.msg);
		for (size_t i = 0; i < list.n && rc == 0; i++)
			rc = strs_add(&x, list.v[i], list.len[i]);
		bool any = x.n > 0;
		if (ext) {
			/* An external label has its one value wherever any series matches. */
			x.n = 0;
			if (any && rc == 0)
				rc = strs_add(&x, ext->value, ext->value_len);
		}
		for (size_t k = 0; !name && any && rc == 0 && k < app->n_ext_labels; k++)
			rc = strs_add(&x, app->ext_labels[k].name, app->ext_labels[k].name_len);
	}
	if (rc == 0)
		rc = send_strings(c, &x, q.r.limit);
	finish_rc(c, rc, q.msg);
	ts_free(x.s);
	ts_free(x.len);
	ts_strlist_free(&list);
	ts_series_set_free(set);
	req_close(&q);
}

static void h_label_names(struct ts_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	labels_call(c, p, len, arg, TS_SA_LABEL_NAMES);
}

static void h_label_values(struct ts_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	labels_call(c, p, len, arg, TS_SA_LABEL_VALUES);
}

int ts_storeapi_start(struct ts_app *app, const char *listen, unsigned n_workers,
		      struct ts_grpc_server **out, int *port, char *msg, size_t msg_len)
{
	const struct ts_grpc_method methods[] = {
		{ "/thanos.info.Info/Info", h_info, app },
		{ "/thanos.Store/Info", h_store_info, app },
		{ "/thanos.Store/Series", h_series, app },
		{ "/thanos.Store/LabelNames", h_label_names, app },
		{ "/thanos.Store/LabelValues", h_label_values, app },
	};
	return ts_grpc_start(listen, n_workers, methods, sizeof methods / sizeof methods[0], out,
			     port, msg, msg_len);
}
