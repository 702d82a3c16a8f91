/*
 * read.c - Prometheus remote read: POST /api/v1/read.
 *
 * The body is a snappy block holding a ReadRequest. Every query is selected first (all
 * of them, before any byte of the answer goes out, so a bad regex in the third query is
 * still a clean 400), then answered in the negotiated type:
 *   SAMPLES              one snappy ReadResponse; samples filtered to [start, end],
 *                        stale markers included (Prometheus sends them too); series
 *                        without a sample in the range are left out.
 *   STREAMED_XOR_CHUNKS  ChunkedReadResponse frames streamed as they fill up; every
 *                        chunk overlapping [start, end] is sent whole (the client
 *                        filters, as with Prometheus).
 *
 * Limits: the query limits hold (a fan-out Prometheus sends every query as a remote read):
 * --query.max-series per query (400, both types), --query.max-samples over a SAMPLES
 * answer (400 "exceeded sample limit", as Prometheus' own read limit), --query.timeout
 * (503 before the answer starts; a stream is cut short after).
 *
 * Chunk invariant of the stream: per series, chunks are in time order and never overlap
 * (Prometheus' reader merges nothing and would return overlapping samples twice, out of
 * order); xchunks.h says how overlapping stored chunks are merged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "query/query.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/extlabels.h"
#include "server/tenant.h"
#include "server/xchunks.h"
#include "wire/remote_read.h"
#include "wire/snappy_io.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define PIECE_BYTES (64u * 1024) /* stream pieces are about this big */
#define ADD_BATCH 512		 /* samples handed to the SAMPLES writer at once */

static void text_error(struct ts_net_response *resp, int status, const char *msg)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s\n", msg);
	ts_net_respond_text(resp, status, "text/plain; charset=utf-8", buf);
}

static int status_of(int rc)
{
	switch (rc) {
	case TS_EINVALID:
	case TS_ELIMIT: return 400; /* as Prometheus answers its read sample limit */
	case -ENOMEM:
	case -ETIMEDOUT: return 503;
	default: return 500;
	}
}

/* One query's selection, matchers copied NUL-terminated. */
struct rq {
	struct ts_matcher *m;
	char *store;
	struct ts_series_set *set; /* NULL: an external label rules every series out */
	size_t *perm;		   /* the order to answer in (ts_ext_order) */
};

static size_t rq_len(const struct rq *q)
{
	return q->set ? ts_series_set_len(q->set) : 0;
}

/* Series k of q in answer order: its index and its labels with the external ones. */
static int rq_series(const struct ts_app *app, const struct rq *q, size_t k, size_t *i,
		     struct ts_label **lab, size_t *cap, size_t *n)
{
	const struct ts_label *l;
	uint32_t nl;
	*i = q->perm[k];
	int rc = ts_series_set_labels(q->set, *i, &l, &nl);
	return rc ? rc : ts_ext_merge(app, l, nl, lab, cap, n);
}

static void rq_fini(struct rq *q)
{
	ts_free(q->m);
	ts_free(q->store);
	ts_free(q->perm);
	ts_series_set_free(q->set);
	memset(q, 0, sizeof *q);
}

/* Selects one query. Returns 0, TS_EINVALID (msg set), -ENOMEM, engine errors. */
static int rq_select(const struct ts_app *app, const struct ts_rr_query *in,
		     const struct ts_tenant *t, const struct ts_select_opts *so, struct rq *q,
		     char *msg, size_t msg_len)
{
	size_t bytes = 0;
	for (uint32_t i = 0; i < in->n_matchers; i++)
		bytes += (size_t)in->matchers[i].name.len + in->matchers[i].value.len + 2;
	q->m = ts_calloc(in->n_matchers + 1, sizeof *q->m); /* + the tenant's */
	q->store = ts_malloc(bytes ? bytes : 1);
	if (!q->m || !q->store)
		return -ENOMEM;
	char *p = q->store;
	for (uint32_t i = 0; i < in->n_matchers; i++) {
		const struct ts_rr_matcher *rm = &in->matchers[i];
		if (memchr(rm->name.p, 0, rm->name.len) || memchr(rm->value.p, 0, rm->value.len)) {
			snprintf(msg, msg_len, "matcher %u of a query contains a NUL byte", i);
			return TS_EINVALID;
		}
		q->m[i].type = (enum ts_match_type)rm->type;
		q->m[i].name = p;
		memcpy(p, rm->name.p, rm->name.len);
		p += rm->name.len;
		*p++ = 0;
		q->m[i].value = p;
		memcpy(p, rm->value.p, rm->value.len);
		p += rm->value.len;
		*p++ = 0;
	}
	/* Matchers on external labels are decided here (the stored series lack them). */
	struct ts_matcher *m;
	size_t n;
	bool none;
	int rc = ts_ext_matchers(app, q->m, in->n_matchers, &m, &n, &none, msg, msg_len);
	if (rc)
		return rc;
	memcpy(q->m, m, n * sizeof *m);
	ts_free(m);
	if (t->on)
		q->m[n++] = t->m;
	if (!none)
		rc = ts_db_select(app->db, q->m, n, in->start_ms, in->end_ms, so, &q->set, msg,
				  msg_len);
	/* The query limits hold here too: behind a fan-out Prometheus every query is a
	 * remote read. */
	if (rc == 0 && q->set && app->qlim.max_series &&
	    ts_series_set_len(q->set) > app->qlim.max_series) {
		snprintf(msg, msg_len,
			 "remote read selects too many series: %zu, the limit is %llu "
			 "(--query.max-series)",
			 ts_series_set_len(q->set), (unsigned long long)app->qlim.max_series);
		return TS_ELIMIT;
	}
	if (rc == 0 && q->set)
		rc = ts_ext_order(app, q->set, &q->perm);
	return rc;
}

/* ---- SAMPLES ---- */

/* Samples of one answer, against --query.max-samples. */
struct budget {
	uint64_t n, max;
	int64_t deadline_ns;
};

static int samples_series(struct ts_rr_samples_writer *w, struct ts_series_set *set, size_t i,
			  const struct ts_label *l, size_t nl, struct budget *bud)
{
	if (ts_mono_ns() > bud->deadline_ns)
		return -ETIMEDOUT;
	struct ts_iter *it = NULL;
	int rc = ts_iter_new(set, i, &it);
	if (rc)
		return rc;
	struct ts_sample batch[ADD_BATCH];
	size_t n = 0;
	int open = 0;
	while ((rc = ts_iter_next(it)) == 1) {
		if (!open) {
			if ((rc = ts_rr_samples_begin_series(w, l, nl)) != 0)
				break;
			open = 1;
		}
		if (++bud->n > bud->max) {
			rc = TS_ELIMIT;
			break;
		}
		ts_iter_at(it, &batch[n].t_ms, &batch[n].v);
		if (++n == ADD_BATCH) {
			if ((rc = ts_rr_samples_add(w, batch, n)) != 0)
				break;
			n = 0;
		}
	}
	if (rc == 0 && n)
		rc = ts_rr_samples_add(w, batch, n);
	if (rc == 0 && open)
		rc = ts_rr_samples_end_series(w);
	ts_iter_free(it);
	return rc;
}

static void answer_samples(struct ts_net_response *resp, const struct ts_app *app, struct rq *qs,
			   size_t n, int64_t deadline_ns)
{
	struct budget bud = { 0,
			      app->qlim.max_samples ? app->qlim.max_samples
						    : TS_QUERY_DEFAULT_MAX_SAMPLES,
			      deadline_ns };
	struct ts_rr_samples_writer w;
	ts_rr_samples_init(&w);
	struct ts_label *lab = NULL;
	size_t cap = 0, nl = 0, i;
	int rc = 0;
	for (size_t q = 0; q < n && rc == 0; q++) {
		rc = ts_rr_samples_begin_result(&w);
		for (size_t k = 0; rc == 0 && k < rq_len(&qs[q]); k++) {
			rc = rq_series(app, &qs[q], k, &i, &lab, &cap, &nl);
			if (rc == 0)
				rc = samples_series(&w, qs[q].set, i, lab, nl, &bud);
		}
		if (rc == 0)
			rc = ts_rr_samples_end_result(&w);
	}
	ts_free(lab);
	uint8_t *out = NULL;
	size_t out_cap = 0, len = 0;
	if (rc == 0)
		rc = ts_snappy_compress(w.out.data, w.out.len, &out, &out_cap, &len);
	ts_rr_samples_fini(&w);
	if (rc) {
		char msg[200];
		if (rc == TS_ELIMIT)
			snprintf(msg, sizeof msg,
				 "exceeded sample limit (%llu) (--query.max-samples)",
				 (unsigned long long)bud.max);
		else if (rc == -ETIMEDOUT)
			snprintf(msg, sizeof msg, "remote read timed out (--query.timeout)");
		else
			snprintf(msg, sizeof msg, "%s",
				 rc == -ENOMEM ? "out of memory" : ts_strerror(rc));
		ts_free(out);
		text_error(resp, status_of(rc), msg);
		return;
	}
	ts_net_response_header(resp, "Content-Type", "application/x-protobuf");
	ts_net_response_header(resp, "Content-Encoding", "snappy");
	ts_net_respond(resp, 200, (char *)out, len);
}

/* ---- STREAMED_XOR_CHUNKS ---- */

struct streamer {
	struct ts_net_response *resp;
	struct ts_rr_chunked_writer w;
	struct ts_xchunks x;
	int closed; /* the client went away */
};

static int drain(struct streamer *s, int force)
{
	if (s->w.out.len == 0 || (!force && s->w.out.len < PIECE_BYTES))
		return 0;
	char *piece = (char *)s->w.out.data;
	size_t len = s->w.out.len;
	/* Hand the buffer over whole; the writer starts a new one. */
	s->w.out.data = NULL;
	s->w.out.len = s->w.out.cap = 0;
	int rc = ts_net_stream_write(s->resp, piece, len);
	if (rc)
		s->closed = 1;
	return rc;
}

static int add_chunk(void *arg, int64_t mint, int64_t maxt, const uint8_t *data, size_t len)
{
	struct streamer *s = arg;
	int rc = ts_rr_chunked_add_chunk(&s->w, mint, maxt, TS_RR_CHUNK_XOR, data, len);
	return rc ? rc : drain(s, 0);
}

static int stream_series(struct streamer *s, int64_t qi, struct ts_series_set *set, size_t i,
			 const struct ts_label *l, size_t nl)
{
	int rc = ts_rr_chunked_begin_series(&s->w, qi, l, nl);
	if (rc == 0)
		rc = ts_xchunks_series(&s->x, set, i, add_chunk, s);
	if (rc == 0)
		rc = ts_rr_chunked_end_series(&s->w);
	if (rc == 0)
		rc = drain(s, 0);
	return rc;
}

static void answer_chunks(struct ts_net_response *resp, const struct ts_app *app, struct rq *qs,
			  size_t n, int64_t deadline_ns)
{
	struct ts_label *lab = NULL;
	size_t cap = 0, nl = 0, i;
	struct streamer s = { .resp = resp };
	ts_rr_chunked_init(&s.w, 0);
	ts_net_response_header(
		resp, "Content-Type",
		"application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse");
	int rc = ts_net_stream_begin(resp, 200);
	for (size_t q = 0; q < n && rc == 0; q++)
		for (size_t k = 0; rc == 0 && k < rq_len(&qs[q]); k++) {
			rc = ts_mono_ns() > deadline_ns
				     ? -ETIMEDOUT
				     : rq_series(app, &qs[q], k, &i, &lab, &cap, &nl);
			if (rc == 0)
				rc = stream_series(&s, (int64_t)q, qs[q].set, i, lab, nl);
		}
	ts_free(lab);
	if (rc == 0)
		rc = drain(&s, 1);
	/* The status is out already: a failure can only cut the stream short, which the
	 * client sees as a truncated frame. */
	if (rc && !s.closed)
		ts_log(TS_LOG_WARN, "remote read: stream aborted: %s", ts_strerror(rc));
	ts_net_stream_end(resp);
	ts_rr_chunked_fini(&s.w);
	ts_xchunks_fini(&s.x);
}

static void h_read(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	struct ts_app *app = arg;
	struct ts_rr_request rr;
	ts_rr_request_init(&rr);
	uint8_t *dec = NULL;
	size_t dec_cap = 0, dec_len = 0;
	struct rq *qs = NULL;
	size_t n_qs = 0;
	char msg[512];
	struct ts_tenant tenant;
	if (ts_tenant_of(app, req, &tenant, msg, sizeof msg)) {
		text_error(resp, 400, msg);
		goto out;
	}
	size_t ce_len = 0;
	const char *ce = ts_http_request_header(req, "Content-Encoding", &ce_len);
	if (ce && ce_len && !(ce_len == 6 && strncasecmp(ce, "snappy", 6) == 0)) {
		text_error(resp, 415,
			   "unsupported Content-Encoding (remote read bodies are snappy)");
		goto out;
	}
	int rc = ts_snappy_decompress((const uint8_t *)(req->body ? req->body : ""), req->body_len,
				      app->lim.max_decoded_bytes, &dec, &dec_cap, &dec_len);
	if (rc) {
		text_error(resp,
			   rc == -ENOMEM     ? 503
			   : rc == TS_ELIMIT ? 413
					     : 400,
			   rc == -ENOMEM     ? "out of memory"
			   : rc == TS_ELIMIT ? "decoded body exceeds the limit"
					     : "invalid snappy block body");
		goto out;
	}
	rc = ts_rr_decode(&rr, dec, dec_len);
	if (rc) {
		snprintf(msg, sizeof msg, "cannot decode remote read request: %s",
			 rr.err[0] ? rr.err : ts_strerror(rc));
		text_error(resp, rc == -ENOMEM ? 503 : 400, msg);
		goto out;
	}
	int64_t to = ts_app_query_timeout(app, 0);
	struct ts_select_opts so = {
		.deadline_ns = ts_mono_ns() + (to ? to : TS_QUERY_DEFAULT_TIMEOUT_MS) * 1000000LL
	};
	qs = ts_calloc(rr.n_queries ? rr.n_queries : 1, sizeof *qs);
	if (!qs) {
		text_error(resp, 503, "out of memory");
		goto out;
	}
	for (; n_qs < rr.n_queries; n_qs++) {
		msg[0] = 0;
		rc = rq_select(app, &rr.queries[n_qs], &tenant, &so, &qs[n_qs], msg, sizeof msg);
		if (rc) {
			char m2[600];
			snprintf(m2, sizeof m2, "query %zu: %s", n_qs,
				 msg[0] ? msg : ts_strerror(rc));
			n_qs++;
			text_error(resp, status_of(rc), m2);
			goto out;
		}
	}
	if (rr.response_type == TS_RR_STREAMED_XOR_CHUNKS)
		answer_chunks(resp, app, qs, n_qs, so.deadline_ns);
	else
		answer_samples(resp, app, qs, n_qs, so.deadline_ns);
out:
	for (size_t i = 0; i < n_qs; i++)
		rq_fini(&qs[i]);
	ts_free(qs);
	ts_free(dec);
	ts_rr_request_fini(&rr);
}

int ts__read_routes(struct ts_app *app)
{
	return ts_net_route(app->net, "POST", "/api/v1/read", 0, h_read, app, "remote_read");
}
