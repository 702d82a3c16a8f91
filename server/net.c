/*
 * net.c - libuv TCP server: accept, per-connection input, timeouts, worker dispatch,
 * ordered responses, streaming with backpressure, graceful shutdown, stats.
 *
 * Objects and who touches them:
 *   server   loop thread; `mu` guards what workers share (dirty list, exchange fields
 *            marked "mu", stats); the pool has its own mutex and queue.
 *   conn     loop thread only. Owns its uv_tcp_t and uv_timer_t, a ts_http_conn, the
 *            queue of parsed requests not yet dispatched, the one active exchange, and
 *            a stash of unparsed input kept while reading is paused (pipeline full).
 *   exchange (struct ts_net_response) one request and its response. Created on the
 *            loop, handed to a worker, completed from any thread. Invariants:
 *            - at most one exchange per conn is dispatched at a time (conn->active);
 *            - the worker side only touches fields under `mu` after the handler call;
 *            - freed on the loop when `releasable` (no more loop work: finished, or
 *              completed after its conn went away) and no uv_write references it;
 *            - a conn closing while its exchange runs orphans it (conn = NULL, dead =
 *              1): stream writers get TS_ECLOSED, completion frees it.
 * Worker -> loop: the exchange goes on the dirty list and uv_async_send wakes the loop,
 * which writes what is new (head, pieces, end). Loop -> worker: the pool queue.
 *
 * Timers (one per conn, re-armed after every event): a fresh connection and a head in
 * progress get header_timeout (from accept or from the head's first byte, never
 * extended by reads: slowloris); a body in progress gets body_timeout from the last
 * read; a keep-alive connection with nothing in flight gets idle_timeout; output that
 * makes no progress gets write_timeout. A handler that runs long has no timeout here.
 *
 * After a framing error or a response with "Connection: close" the conn stops parsing,
 * flushes, half-closes (FIN) and drains input for a short linger before closing, so the
 * client reads the response instead of a reset.
 */
#include "server/net.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define READ_BUF_BYTES (64 * 1024)
#define DRAIN_LINGER_MS 2000

const double ts_net_buckets_s[TS_NET_N_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
						    0.5,   1,	 2.5,	5,    10 };

struct route {
	char *method; /* NULL = any */
	char *path;
	size_t path_len;
	int prefix;
	ts_net_handler fn;
	void *arg;
	struct ts_net_route_stats st; /* mu */
};

struct piece {
	struct piece *next;
	char *data;
	size_t len;
};

struct conn;

struct ts_net_response {
	struct ts_net_response *next;	    /* conn queue or pool queue */
	struct ts_net_response *dirty_next; /* mu */
	int in_dirty;			    /* mu */
	struct ts_net_server *s;
	struct conn *conn; /* loop only; NULL once orphaned */
	struct ts_http_request req;
	struct route *route; /* NULL: answered by the loop itself */
	size_t stats_row;
	uint64_t t0_ns;
	/* filled by the handler */
	struct ts_http_header *hdrs;
	size_t n_hdrs, hdrs_cap;
	/* mu */
	int status, streaming, completed, dead;
	struct piece *ph, *pt;
	unsigned pending;
	pthread_cond_t cv;
	/* loop only */
	int head_sent, finished, releasable, chunked, close_delimited, head_only, keep_alive;
	int seen_complete; /* the loop has observed completion of a worker exchange */
	unsigned wrefs;
	uint64_t body_len;
};

enum tkind { TK_NONE, TK_HEADER, TK_BODY, TK_IDLE, TK_WRITE, TK_DRAIN };

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t sreq;
	struct ts_net_server *s;
	struct conn *prev, *next;
	struct ts_http_conn *http;
	struct ts_net_response *qh, *qt; /* parsed, waiting for dispatch */
	size_t n_queued;
	struct ts_net_response *active;
	struct ts_net_response *spare; /* receives the next request */
	char *stash;
	size_t stash_len, stash_cap;
	int reading, paused, closing, draining, stop_parsing, close_after_flush, want_continue;
	int handles;
	unsigned n_writes;
	unsigned n_requests;
	uint64_t head_start, last_read, last_activity, last_write, drain_start;
	enum tkind tkind;
};

struct wreq {
	uv_write_t w;
	struct conn *c;
	struct ts_net_response *x; /* holds a wref when set */
	char *head, *data;
	int counted; /* a stream piece: decrements x->pending */
	char pre[TS_HTTP_CHUNK_PREFIX_MAX + 8];
};

struct ts_net_server {
	uv_loop_t loop;
	int loop_ok;
	uv_tcp_t listener;
	uv_async_t async;
	uv_timer_t shut_timer;
	uv_signal_t sig_int, sig_term;
	int sig_on;
	struct ts_net_config cfg;
	int port;
	char rbuf[READ_BUF_BYTES];
	int rbuf_busy;
	struct conn *conns;
	size_t n_conns;
	size_t n_live; /* exchanges handed to workers and not yet seen completed */
	int shutting, closed_handles;
	atomic_int shutdown_requested;
	struct route *routes;
	size_t n_routes;
	struct ts_net_route_stats none_st; /* mu */
	struct ts_net_stats st;		   /* mu */
	pthread_mutex_t mu;
	struct ts_net_response *dirty; /* mu */
	/* worker pool */
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	struct ts_net_response *pq_head, *pq_tail;
	int pstop;
	pthread_t *threads;
	unsigned n_threads;
};

static void conn_pump(struct conn *c);
static void conn_close(struct conn *c);
static void conn_arm(struct conn *c);
static void conn_next(struct conn *c);
static void conn_feed(struct conn *c, const char *buf, size_t len);
static void maybe_finish(struct ts_net_server *s);
static void conn_read_start(struct conn *c);
static void conn_start_drain(struct conn *c);

int ts_net_err_from_uv(int e)
{
	if (e >= 0)
		return e;
	switch (e) {
	case UV_EOF:
	case UV_ECANCELED: return TS_ECLOSED;
	case UV_EAI_ADDRFAMILY:
	case UV_EAI_FAMILY:
	case UV_EAI_NONAME:
	case UV_EAI_SERVICE: return TS_EINVALID;
	default: return e > -4096 ? e : TS_EIO; /* UV_E* are -errno on Unix */
	}
}

void ts_net_config_default(struct ts_net_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n_workers = 4;
	cfg->max_conns = 1024;
	cfg->max_pipeline = 16;
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 30000;
	cfg->idle_timeout_ms = 60000;
	cfg->write_timeout_ms = 60000;
	cfg->shutdown_timeout_ms = 10000;
	ts_http_limits_default(&cfg->limits);
}

/* ---- exchanges ----------------------------------------------------------------- */

static struct ts_net_response *x_new(struct ts_net_server *s)
{
	struct ts_net_response *x = ts_calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	if (pthread_cond_init(&x->cv, NULL) != 0) {
		ts_free(x);
		return NULL;
	}
	x->s = s;
	x->status = 200;
	ts_http_request_init(&x->req);
	return x;
}

static void x_free(struct ts_net_response *x)
{
	if (!x)
		return;
	for (struct piece *p = x->ph, *n; p; p = n) {
		n = p->next;
		ts_free(p->data);
		ts_free(p);
	}
	for (size_t i = 0; i < x->n_hdrs; i++) {
		ts_free((char *)x->hdrs[i].name);
		ts_free((char *)x->hdrs[i].value);
	}
	ts_free(x->hdrs);
	ts_http_request_fini(&x->req);
	pthread_cond_destroy(&x->cv);
	ts_free(x);
}

static void x_maybe_free(struct ts_net_response *x)
{
	if (x->releasable && x->wrefs == 0)
		x_free(x);
}

/* Marks x as having news for the loop. Caller holds mu. */
static void x_dirty(struct ts_net_response *x)
{
	if (!x->in_dirty) {
		x->in_dirty = 1;
		x->dirty_next = x->s->dirty;
		x->s->dirty = x;
	}
}

static void stats_record(struct ts_net_server *s, struct ts_net_response *x, int status)
{
	double d = (double)(uv_hrtime() - x->t0_ns) / 1e9;
	pthread_mutex_lock(&s->mu);
	struct ts_net_route_stats *st = x->route ? &x->route->st : &s->none_st;
	if (status >= 0 && status < 600)
		st->by_status[status]++;
	size_t b = 0;
	while (b < TS_NET_N_BUCKETS && d > ts_net_buckets_s[b])
		b++;
	st->bucket[b]++;
	st->sum_s += d;
	st->count++;
	pthread_mutex_unlock(&s->mu);
}

/* ---- worker pool --------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct ts_net_server *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->pmu);
		while (!s->pq_head && !s->pstop)
			pthread_cond_wait(&s->pcv, &s->pmu);
		struct ts_net_response *x = s->pq_head;
		if (!x) {
			pthread_mutex_unlock(&s->pmu);
			return NULL;
		}
		s->pq_head = x->next;
		if (!s->pq_head)
			s->pq_tail = NULL;
		pthread_mutex_unlock(&s->pmu);
		x->route->fn(&x->req, x, x->route->arg);
	}
}

static void pool_push(struct ts_net_server *s, struct ts_net_response *x)
{
	x->next = NULL;
	pthread_mutex_lock(&s->pmu);
	if (s->pq_tail)
		s->pq_tail->next = x;
	else
		s->pq_head = x;
	s->pq_tail = x;
	pthread_cond_signal(&s->pcv);
	pthread_mutex_unlock(&s->pmu);
}

/* ---- handler-side API (any thread) --------------------------------------------- */

int ts_net_response_header(struct ts_net_response *r, const char *name, const char *value)
{
	struct ts_http_header h = { name, value, strlen(name), strlen(value) };
	struct ts_http_response_head probe = { .status = 200, .headers = &h, .n_headers = 1 };
	size_t need;
	if (ts_http_write_head(&probe, NULL, 0, &need) == TS_EINVALID)
		return TS_EINVALID;
	if (r->n_hdrs == r->hdrs_cap) {
		size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 4;
		void *p = ts_realloc(r->hdrs, cap * sizeof(*r->hdrs));
		if (!p)
			return -ENOMEM;
		r->hdrs = p;
		r->hdrs_cap = cap;
	}
	h.name = ts_strdup(name);
	h.value = ts_strdup(value);
	if (!h.name || !h.value) {
		ts_free((char *)h.name);
		ts_free((char *)h.value);
		return -ENOMEM;
	}
	r->hdrs[r->n_hdrs++] = h;
	return 0;
}

/* Appends a piece under mu; frees it instead when the conn is gone. */
static int post_piece(struct ts_net_response *r, char *data, size_t len, int wait, int mark)
{
	struct ts_net_server *s = r->s;
	struct piece *p = NULL;
	int rc = 0;
	if (len > 0) {
		p = ts_malloc(sizeof(*p));
		if (!p) {
			ts_free(data);
			return -ENOMEM;
		}
		p->next = NULL;
		p->data = data;
		p->len = len;
	} else {
		ts_free(data);
	}
	pthread_mutex_lock(&s->mu);
	while (wait && p && r->pending >= TS_NET_STREAM_PENDING_MAX && !r->dead)
		pthread_cond_wait(&r->cv, &s->mu);
	if (r->dead && wait) {
		rc = TS_ECLOSED;
	} else if (p) {
		if (r->pt)
			r->pt->next = p;
		else
			r->ph = p;
		r->pt = p;
		r->pending++;
		p = NULL;
		if (mark)
			x_dirty(r);
	}
	pthread_mutex_unlock(&s->mu);
	if (p) {
		ts_free(p->data);
		ts_free(p);
	}
	return rc;
}

static void complete(struct ts_net_response *r)
{
	struct ts_net_server *s = r->s;
	pthread_mutex_lock(&s->mu);
	r->completed = 1;
	x_dirty(r);
	pthread_mutex_unlock(&s->mu);
	/* r may be freed from here on */
	uv_async_send(&s->async);
}

void ts_net_respond(struct ts_net_response *r, int status, char *body, size_t len)
{
	r->status = status;
	if (post_piece(r, body, len, 0, 1) == -ENOMEM)
		r->status = 500;
	complete(r);
}

void ts_net_respond_text(struct ts_net_response *r, int status, const char *content_type,
			 const char *text)
{
	size_t n = strlen(text);
	char *b = ts_malloc(n + 1);
	if (!b || (content_type && ts_net_response_header(r, "Content-Type", content_type))) {
		ts_free(b);
		ts_net_respond(r, 500, NULL, 0);
		return;
	}
	memcpy(b, text, n + 1);
	ts_net_respond(r, status, b, n);
}

int ts_net_stream_begin(struct ts_net_response *r, int status)
{
	struct ts_net_server *s = r->s;
	pthread_mutex_lock(&s->mu);
	r->status = status;
	r->streaming = 1;
	x_dirty(r);
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->async);
	return 0;
}

int ts_net_stream_write(struct ts_net_response *r, char *piece, size_t len)
{
	int rc = post_piece(r, piece, len, 1, 1);
	if (rc == 0 && len > 0)
		uv_async_send(&r->s->async);
	return rc;
}

void ts_net_stream_end(struct ts_net_response *r)
{
	complete(r);
}

/* ---- routing --------------------------------------------------------------------- */

int ts_net_route(struct ts_net_server *s, const char *method, const char *path, int flags,
		 ts_net_handler fn, void *arg, const char *name)
{
	if (!path || path[0] != '/' || !fn)
		return TS_EINVALID;
	struct route *rs = ts_realloc(s->routes, (s->n_routes + 1) * sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	s->routes = rs;
	struct route *r = &rs[s->n_routes];
	memset(r, 0, sizeof(*r));
	r->method = method ? ts_strdup(method) : NULL;
	r->path = ts_strdup(path);
	r->st.name = ts_strdup(name ? name : path);
	if ((method && !r->method) || !r->path || !r->st.name) {
		ts_free(r->method);
		ts_free(r->path);
		ts_free((char *)r->st.name);
		return -ENOMEM;
	}
	r->path_len = strlen(path);
	r->prefix = (flags & TS_NET_PREFIX) != 0;
	r->fn = fn;
	r->arg = arg;
	s->n_routes++;
	return 0;
}

/* Best route for the request; *status gets 404/405 when there is none. */
static struct route *route_find(struct ts_net_server *s, const struct ts_http_request *q,
				int *status)
{
	struct route *best = NULL;
	int path_seen = 0;
	for (size_t i = 0; i < s->n_routes; i++) {
		struct route *r = &s->routes[i];
		int hit = r->prefix ? strncmp(q->path, r->path, r->path_len) == 0
				    : strcmp(q->path, r->path) == 0;
		if (!hit)
			continue;
		path_seen = 1;
		if (r->method && strcmp(r->method, q->method) != 0 &&
		    !(strcmp(q->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
			continue;
		if (!best || (!r->prefix && best->prefix) ||
		    (r->prefix && best->prefix && r->path_len > best->path_len))
			best = r;
	}
	*status = best ? 0 : path_seen ? 405 : 404;
	return best;
}

/* ---- writing -------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct conn *c = wr->c;
	struct ts_net_response *x = wr->x;
	ts_free(wr->head);
	ts_free(wr->data);
	if (x) {
		if (wr->counted) {
			pthread_mutex_lock(&c->s->mu);
			x->pending--;
			pthread_cond_broadcast(&x->cv);
			pthread_mutex_unlock(&c->s->mu);
		}
		x->wrefs--;
		x_maybe_free(x);
	}
	ts_free(wr);
	c->n_writes--;
	c->last_write = uv_now(&c->s->loop);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->close_after_flush && c->n_writes == 0 && !c->active)
		conn_start_drain(c);
	conn_arm(c);
}

/* Queues bytes: [head][pre][data][suffix]. head and data are ts_malloc'd and owned by
 * the write from here on. Returns 0 or closes the conn. */
static int conn_write(struct conn *c, struct ts_net_response *x, char *head, size_t head_len,
		      const char *pre, size_t pre_len, char *data, size_t data_len,
		      int chunk_suffix, int counted)
{
	struct wreq *wr = ts_calloc(1, sizeof(*wr));
	uv_buf_t b[4];
	unsigned n = 0;
	if (!wr) {
		ts_free(head);
		ts_free(data);
		conn_close(c);
		return -ENOMEM;
	}
	wr->c = c;
	wr->head = head;
	wr->data = data;
	wr->counted = counted;
	if (head_len)
		b[n++] = uv_buf_init(head, (unsigned)head_len);
	if (pre_len) {
		memcpy(wr->pre, pre, pre_len);
		b[n++] = uv_buf_init(wr->pre, (unsigned)pre_len);
	}
	if (data_len)
		b[n++] = uv_buf_init(data, (unsigned)data_len);
	if (chunk_suffix)
		b[n++] = uv_buf_init((char *)TS_HTTP_CHUNK_SUFFIX, 2);
	if (x) {
		wr->x = x;
		x->wrefs++;
	}
	int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, n, on_write);
	if (rc != 0) {
		if (x) {
			x->wrefs--;
			if (counted) {
				pthread_mutex_lock(&c->s->mu);
				x->pending--;
				pthread_cond_broadcast(&x->cv);
				pthread_mutex_unlock(&c->s->mu);
			}
		}
		ts_free(head);
		ts_free(data);
		ts_free(wr);
		conn_close(c);
		return ts_net_err_from_uv(rc);
	}
	c->n_writes++;
	return 0;
}

static int write_text(struct conn *c, int status, int keep_alive)
{
	const char *reason = ts_http_reason(status);
	size_t blen = strlen(reason) + 1;
	struct ts_http_header ct = { "Content-Type", "text/plain; charset=utf-8", 12, 25 };
	struct ts_http_response_head h = { .status = status,
					   .headers = &ct,
					   .n_headers = 1,
					   .content_length = blen,
					   .keep_alive = keep_alive,
					   .date_s = (int64_t)time(NULL) };
	size_t need;
	ts_http_write_head(&h, NULL, 0, &need);
	char *head = ts_malloc(need + blen);
	if (!head) {
		conn_close(c);
		return -ENOMEM;
	}
	ts_http_write_head(&h, head, need, &need);
	memcpy(head + need, reason, blen - 1);
	head[need + blen - 1] = '\n';
	return conn_write(c, NULL, head, need + blen, NULL, 0, NULL, 0, 0, 0);
}

/* Writes the head of x; a bad header set by the handler turns into a 500. */
static int write_head(struct conn *c, struct ts_net_response *x, int status, int streaming,
		      uint64_t content_length)
{
	struct ts_http_response_head h = { .status = status,
					   .headers = x->hdrs,
					   .n_headers = x->n_hdrs,
					   .content_length = content_length,
					   .keep_alive = x->keep_alive,
					   .date_s = (int64_t)time(NULL) };
	if (status < 100 || status > 599)
		h.status = 500;
	if (streaming) {
		x->chunked = x->req.http_minor >= 1;
		x->close_delimited = !x->chunked;
		h.chunked = x->chunked;
		h.close_delimited = x->close_delimited;
		if (x->close_delimited)
			x->keep_alive = h.keep_alive = 0;
	}
	size_t need;
	if (ts_http_write_head(&h, NULL, 0, &need) == TS_EINVALID) {
		h.status = 500;
		h.n_headers = 0;
		ts_http_write_head(&h, NULL, 0, &need);
	}
	char *head = ts_malloc(need);
	if (!head) {
		conn_close(c);
		return -ENOMEM;
	}
	ts_http_write_head(&h, head, need, &need);
	x->head_sent = 1;
	return conn_write(c, x, head, need, NULL, 0, NULL, 0, 0, 0);
}

/* Writes whatever the active exchange has produced since the last pump. */
static void conn_pump(struct conn *c)
{
	struct ts_net_response *x = c->active;
	if (!x || c->closing)
		return;
	pthread_mutex_lock(&c->s->mu);
	struct piece *pieces = x->ph;
	x->ph = x->pt = NULL;
	int completed = x->completed, streaming = x->streaming, status = x->status;
	if (completed && x->in_dirty) {
		/* x is about to be finished and freed: take it off the dirty list */
		struct ts_net_response **pp = &c->s->dirty;
		while (*pp != x)
			pp = &(*pp)->dirty_next;
		*pp = x->dirty_next;
		x->in_dirty = 0;
	}
	pthread_mutex_unlock(&c->s->mu);
	if (completed && x->route && !x->seen_complete) {
		x->seen_complete = 1;
		c->s->n_live--;
	}

	if (!x->head_sent && !streaming && completed) {
		uint64_t len = 0;
		for (struct piece *p = pieces; p; p = p->next)
			len += p->len;
		if (write_head(c, x, status, 0, len))
			goto drop;
	} else if (!x->head_sent && streaming) {
		if (write_head(c, x, status, 1, 0))
			goto drop;
	}
	while (pieces) {
		struct piece *p = pieces;
		pieces = p->next;
		char pre[TS_HTTP_CHUNK_PREFIX_MAX];
		size_t pre_len = 0;
		x->body_len += p->len;
		if (x->head_only) {
			pthread_mutex_lock(&c->s->mu);
			x->pending--;
			pthread_cond_broadcast(&x->cv);
			pthread_mutex_unlock(&c->s->mu);
			ts_free(p->data);
			ts_free(p);
			continue;
		}
		if (x->chunked)
			pre_len = ts_http_chunk_prefix(pre, p->len);
		char *data = p->data;
		size_t len = p->len;
		ts_free(p);
		if (conn_write(c, x, NULL, 0, pre, pre_len, data, len, x->chunked, 1))
			goto drop;
	}
	if (!completed)
		return;
	if (x->chunked && !x->head_only &&
	    conn_write(c, x, NULL, 0, TS_HTTP_CHUNK_LAST, 5, NULL, 0, 0, 0))
		return;
	stats_record(c->s, x, x->head_sent ? (status < 100 || status > 599 ? 500 : status) : 500);
	c->active = NULL;
	c->last_activity = uv_now(&c->s->loop);
	if (!x->keep_alive)
		c->close_after_flush = 1;
	x->finished = 1;
	x->releasable = 1;
	x_maybe_free(x);
	if (c->close_after_flush)
		c->stop_parsing = 1;
	conn_next(c); /* dispatches the next request, or starts the half-close */
	return;
drop:
	for (struct piece *p = pieces, *n; p; p = n) {
		n = p->next;
		ts_free(p->data);
		ts_free(p);
	}
}

/* ---- connection lifecycle -------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles > 0)
		return;
	struct ts_net_server *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	pthread_mutex_lock(&s->mu);
	s->st.conns_open--;
	pthread_mutex_unlock(&s->mu);
	ts_http_conn_free(c->http);
	ts_free(c->stash);
	ts_free(c);
	maybe_finish(s);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct ts_net_server *s = c->s;
	struct ts_net_response *x = c->active;
	if (x) {
		/* The worker may still be running it: orphan it; completion frees it. */
		pthread_mutex_lock(&s->mu);
		x->dead = 1;
		x->conn = NULL;
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&s->mu);
		if (!x->route || x->seen_complete) {
			/* nothing more will come from a worker; on_async frees the others */
			x->releasable = 1;
			x_maybe_free(x);
		}
		c->active = NULL;
	}
	for (struct ts_net_response *q = c->qh, *n; q; q = n) {
		n = q->next;
		x_free(q);
	}
	c->qh = c->qt = NULL;
	x_free(c->spare);
	c->spare = NULL;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void conn_start_drain(struct conn *c)
{
	if (c->draining || c->closing)
		return;
	c->draining = 1;
	c->drain_start = uv_now(&c->s->loop);
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, NULL) != 0) {
		conn_close(c);
		return;
	}
	conn_read_start(c); /* to see the client's EOF; input is discarded */
	conn_arm(c);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	struct ts_net_server *s = c->s;
	int idle_inside = !c->active && !c->qh && c->n_writes == 0;
	pthread_mutex_lock(&s->mu);
	switch (c->tkind) {
	case TK_HEADER: s->st.timeouts_header++; break;
	case TK_BODY: s->st.timeouts_body++; break;
	case TK_IDLE: s->st.timeouts_idle++; break;
	case TK_WRITE: s->st.timeouts_write++; break;
	default: break;
	}
	pthread_mutex_unlock(&s->mu);
	if ((c->tkind == TK_HEADER || c->tkind == TK_BODY) && idle_inside &&
	    ts_http_conn_phase(c->http) != TS_HTTP_PHASE_IDLE) {
		/* a request was started and not finished in time: say so before closing */
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = 0;
		}
		if (write_text(c, 408, 0) == 0)
			conn_arm(c);
		return;
	}
	conn_close(c);
}

static void conn_arm(struct conn *c)
{
	struct ts_net_server *s = c->s;
	if (c->closing)
		return;
	uint64_t now = uv_now(&s->loop), deadline = UINT64_MAX;
	enum tkind kind = TK_NONE;
#define CONSIDER(t, k)                  \
	do {                            \
		if ((t) < deadline) {   \
			deadline = (t); \
			kind = (k);     \
		}                       \
	} while (0)
	if (c->draining) {
		CONSIDER(c->drain_start + DRAIN_LINGER_MS, TK_DRAIN);
	} else {
		int phase = ts_http_conn_phase(c->http);
		int busy = c->active || c->qh || c->n_writes > 0;
		if (c->n_writes > 0)
			CONSIDER(c->last_write + s->cfg.write_timeout_ms, TK_WRITE);
		if (!c->stop_parsing && !c->paused) {
			if (phase == TS_HTTP_PHASE_HEAD)
				CONSIDER(c->head_start + s->cfg.header_timeout_ms, TK_HEADER);
			else if (phase == TS_HTTP_PHASE_BODY)
				CONSIDER(c->last_read + s->cfg.body_timeout_ms, TK_BODY);
			else if (phase == TS_HTTP_PHASE_IDLE && !busy)
				CONSIDER(c->last_activity + (c->n_requests
								     ? s->cfg.idle_timeout_ms
								     : s->cfg.header_timeout_ms),
					 c->n_requests ? TK_IDLE : TK_HEADER);
		}
	}
#undef CONSIDER
	c->tkind = kind;
	if (kind == TK_NONE) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* Sends "100 Continue" once every earlier response has been queued for writing. */
static void conn_flush_continue(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (!c->want_continue || c->active || c->qh || c->closing)
		return;
	c->want_continue = 0;
	char *b = ts_malloc(sizeof(cont) - 1);
	if (!b) {
		conn_close(c);
		return;
	}
	memcpy(b, cont, sizeof(cont) - 1);
	conn_write(c, NULL, b, sizeof(cont) - 1, NULL, 0, NULL, 0, 0, 0);
}

/* Queues a response the loop answers itself (no route, framing error, shutdown). */
static void conn_enqueue(struct conn *c, struct ts_net_response *x)
{
	x->conn = c;
	x->next = NULL;
	if (c->qt)
		c->qt->next = x;
	else
		c->qh = x;
	c->qt = x;
	c->n_queued++;
}

static void conn_synthetic(struct ts_net_response *x, int status)
{
	const char *reason = ts_http_reason(status);
	size_t n = strlen(reason);
	char *b = ts_malloc(n + 2);
	x->route = NULL;
	x->status = status;
	if (b) {
		memcpy(b, reason, n);
		b[n] = '\n';
		b[n + 1] = '\0';
		if (ts_net_response_header(x, "Content-Type", "text/plain; charset=utf-8") ||
		    post_piece(x, b, n + 1, 0, 0))
			x->status = 500;
	}
	x->completed = 1;
}

/* Dispatches the next queued request when nothing is active. */
static void conn_next(struct conn *c)
{
	struct ts_net_server *s = c->s;
	while (!c->closing && !c->active && c->qh) {
		struct ts_net_response *x = c->qh;
		c->qh = x->next;
		if (!c->qh)
			c->qt = NULL;
		c->n_queued--;
		c->active = x;
		x->keep_alive = x->req.keep_alive && !s->shutting && !c->close_after_flush;
		if (x->route) {
			s->n_live++;
			pool_push(s, x);
			break;
		}
		conn_pump(c); /* completed already: writes and dispatches the next */
	}
	if (c->closing)
		return;
	conn_flush_continue(c);
	if (c->close_after_flush && !c->active && !c->qh && c->n_writes == 0)
		conn_start_drain(c);
	/* input held back while the pipeline was full */
	if (c->paused && c->n_queued + (c->active ? 1u : 0u) < s->cfg.max_pipeline) {
		c->paused = 0;
		size_t n = c->stash_len;
		c->stash_len = 0;
		if (n) {
			/* conn_feed may stash again: move the bytes aside first */
			char *tmp = c->stash;
			c->stash = NULL;
			c->stash_cap = 0;
			conn_feed(c, tmp, n);
			ts_free(tmp);
		}
		if (!c->closing && !c->paused && !c->stop_parsing && !c->draining)
			conn_read_start(c);
	}
	conn_arm(c);
}

/* ---- reading --------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	/* One buffer per server: each read is fully parsed (or stashed) in on_read before
     * libuv asks for the next one. */
	buf->base = c->s->rbuf;
	buf->len = READ_BUF_BYTES;
}

static int stash_put(struct conn *c, const char *buf, size_t len)
{
	if (c->stash_len + len > c->stash_cap) {
		size_t cap = c->stash_cap ? c->stash_cap : 4096;
		while (cap < c->stash_len + len)
			cap *= 2;
		char *p = ts_realloc(c->stash, cap);
		if (!p)
			return -ENOMEM;
		c->stash = p;
		c->stash_cap = cap;
	}
	memcpy(c->stash + c->stash_len, buf, len);
	c->stash_len += len;
	return 0;
}

/* Parses as many requests as the pipeline allows; keeps the rest in the stash. */
static void conn_feed(struct conn *c, const char *buf, size_t len)
{
	struct ts_net_server *s = c->s;
	size_t off = 0;
	while (off < len && !c->closing && !c->stop_parsing) {
		if (c->n_queued + (c->active ? 1u : 0u) >= s->cfg.max_pipeline) {
			c->paused = 1;
			break;
		}
		if (!c->spare && !(c->spare = x_new(s))) {
			conn_close(c);
			return;
		}
		size_t used = 0;
		int rc = ts_http_feed(c->http, buf + off, len - off, &used, &c->spare->req);
		off += used;
		if (rc == TS_HTTP_NEED_MORE)
			break;
		if (rc == TS_HTTP_CONTINUE) {
			c->want_continue = 1;
			conn_flush_continue(c);
			continue;
		}
		struct ts_net_response *x = c->spare;
		c->spare = NULL;
		x->t0_ns = uv_hrtime();
		c->want_continue = 0;
		if (rc == TS_HTTP_REQUEST) {
			int status;
			c->n_requests++;
			x->head_only = strcmp(x->req.method, "HEAD") == 0;
			x->route = route_find(s, &x->req, &status);
			conn_enqueue(c, x);
			if (!x->route)
				conn_synthetic(x, status);
			if (!x->req.keep_alive)
				c->stop_parsing = 1;
			continue;
		}
		/* framing error: answer in turn (if there is something to say), then close */
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		int status = ts_http_conn_status(c->http);
		if (status == 0) {
			x_free(x);
			break;
		}
		pthread_mutex_lock(&s->mu);
		s->st.bad_requests++;
		pthread_mutex_unlock(&s->mu);
		x->req.keep_alive = 0;
		conn_enqueue(c, x);
		conn_synthetic(x, status);
		break;
	}
	if (c->closing)
		return;
	if (c->paused && off < len && stash_put(c, buf + off, len - off)) {
		conn_close(c);
		return;
	}
	int phase = ts_http_conn_phase(c->http);
	if (phase == TS_HTTP_PHASE_HEAD) {
		if (!c->head_start)
			c->head_start = uv_now(&s->loop);
	} else {
		c->head_start = 0;
	}
	if ((c->paused || c->stop_parsing) && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	(void)buf;
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		/* EOF or error. A client that half-closes after its request still gets the
         * response when one is in flight; otherwise we are done. */
		if (c->reading) {
			uv_read_stop(st);
			c->reading = 0;
		}
		if (nread != UV_EOF || c->draining || (!c->active && !c->qh && c->n_writes == 0)) {
			conn_close(c);
			return;
		}
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		conn_arm(c);
		return;
	}
	c->last_read = uv_now(&c->s->loop);
	if (c->draining)
		return; /* discarded: we already answered and half-closed */
	conn_feed(c, buf->base, (size_t)nread);
	if (c->closing)
		return;
	conn_next(c);
}

static void conn_read_start(struct conn *c)
{
	if (c->reading || c->closing)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		conn_close(c);
		return;
	}
	c->reading = 1;
}

/* ---- accepting ------------------------------------------------------------------ */

static void on_reject_closed(uv_handle_t *h)
{
	ts_free(h);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct ts_net_server *s = ls->data;
	if (status < 0) {
		ts_log(TS_LOG_WARN, "net: accept: %s", uv_strerror(status));
		return;
	}
	if (s->n_conns >= s->cfg.max_conns || s->shutting) {
		static const char busy[] =
			"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			"Connection: close\r\n\r\n";
		uv_tcp_t *t = ts_malloc(sizeof(*t));
		if (!t || uv_tcp_init(&s->loop, t) != 0) {
			ts_free(t);
			return;
		}
		if (uv_accept(ls, (uv_stream_t *)t) == 0) {
			uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
			(void)uv_try_write((uv_stream_t *)t, &b,
					   1); /* best effort: fits a fresh socket */
			pthread_mutex_lock(&s->mu);
			s->st.conns_rejected++;
			pthread_mutex_unlock(&s->mu);
		}
		uv_close((uv_handle_t *)t, on_reject_closed);
		return;
	}
	struct conn *c = ts_calloc(1, sizeof(*c));
	if (!c)
		return;
	c->s = s;
	if (ts_http_conn_new(&c->http, &s->cfg.limits) != 0 ||
	    uv_tcp_init(&s->loop, &c->tcp) != 0) {
		ts_http_conn_free(c->http);
		ts_free(c);
		return;
	}
	c->tcp.data = c;
	c->timer.data = c;
	uv_timer_init(&s->loop, &c->timer);
	c->handles = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	pthread_mutex_lock(&s->mu);
	s->st.conns_open++;
	s->st.conns_accepted++;
	pthread_mutex_unlock(&s->mu);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->last_activity = c->last_read = uv_now(&s->loop);
	conn_read_start(c);
	conn_arm(c);
}

/* ---- loop wake-ups, shutdown --------------------------------------------------- */

static void on_async(uv_async_t *a)
{
	struct ts_net_server *s = a->data;
	/* Pop one at a time: a worker may push an exchange again while we handle it, and
     * an exchange is never freed while it is on the list (conn_pump unlinks it). */
	for (;;) {
		pthread_mutex_lock(&s->mu);
		struct ts_net_response *x = s->dirty;
		if (!x) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		s->dirty = x->dirty_next;
		x->in_dirty = 0;
		int completed = x->completed;
		pthread_mutex_unlock(&s->mu);
		if (x->conn) {
			conn_pump(x->conn); /* may free x */
		} else if (completed) {
			if (!x->seen_complete) {
				x->seen_complete = 1;
				s->n_live--;
			}
			x->releasable = 1;
			x_maybe_free(x);
		}
	}
	if (atomic_exchange(&s->shutdown_requested, 0))
		ts_net_shutdown(s);
	maybe_finish(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
	struct ts_net_server *s = h->data;
	s->closed_handles++;
}

/* The loop may end once no connection is left and no worker holds an exchange. */
static void maybe_finish(struct ts_net_server *s)
{
	if (!s->shutting || s->n_conns > 0 || s->n_live > 0 ||
	    uv_is_closing((uv_handle_t *)&s->async))
		return;
	uv_close((uv_handle_t *)&s->async, on_server_handle_closed);
	uv_close((uv_handle_t *)&s->shut_timer, on_server_handle_closed);
	if (s->sig_on) {
		uv_close((uv_handle_t *)&s->sig_int, on_server_handle_closed);
		uv_close((uv_handle_t *)&s->sig_term, on_server_handle_closed);
	}
}

static void on_shutdown_timer(uv_timer_t *t)
{
	struct ts_net_server *s = t->data;
	ts_log(TS_LOG_WARN, "net: shutdown timeout, closing %zu connection(s)", s->n_conns);
	for (struct conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		conn_close(c);
	}
	maybe_finish(s);
}

void ts_net_shutdown(struct ts_net_server *s)
{
	if (s->shutting)
		return;
	s->shutting = 1;
	uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
	for (struct conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		if (c->closing)
			continue;
		if (!c->active && c->n_writes == 0) {
			conn_close(c); /* idle, or only a partial request: nothing in flight */
			continue;
		}
		/* finish the running request, drop queued ones, then close */
		for (struct ts_net_response *q = c->qh, *qn; q; q = qn) {
			qn = q->next;
			x_free(q);
		}
		c->qh = c->qt = NULL;
		c->n_queued = 0;
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		c->want_continue = 0;
		if (c->active)
			c->active->keep_alive = 0;
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = 0;
		}
		conn_arm(c);
	}
	uv_timer_start(&s->shut_timer, on_shutdown_timer, s->cfg.shutdown_timeout_ms, 0);
	maybe_finish(s);
}

void ts_net_request_shutdown(struct ts_net_server *s)
{
	atomic_store(&s->shutdown_requested, 1);
	uv_async_send(&s->async);
}

static void on_signal(uv_signal_t *h, int signum)
{
	ts_log(TS_LOG_INFO, "net: signal %d, shutting down", signum);
	ts_net_shutdown(h->data);
}

int ts_net_handle_signals(struct ts_net_server *s)
{
	if (s->sig_on)
		return 0;
	int rc = uv_signal_init(&s->loop, &s->sig_int);
	if (rc == 0)
		rc = uv_signal_init(&s->loop, &s->sig_term);
	if (rc != 0)
		return ts_net_err_from_uv(rc);
	s->sig_int.data = s->sig_term.data = s;
	s->sig_on = 1;
	rc = uv_signal_start(&s->sig_int, on_signal, SIGINT);
	if (rc == 0)
		rc = uv_signal_start(&s->sig_term, on_signal, SIGTERM);
	return ts_net_err_from_uv(rc);
}

/* ---- open / run / close --------------------------------------------------------- */

/* "host:port", "[v6]:port", ":port" -> sockaddr. Empty host: "::" (dual stack). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon, *hs, *he;
	if (!spec)
		return TS_EINVALID;
	if (spec[0] == '[') {
		hs = spec + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			return TS_EINVALID;
		colon = he + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return TS_EINVALID;
		hs = spec;
		he = colon;
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || errno || port < 0 || port > 65535)
		return TS_EINVALID;
	size_t hl = (size_t)(he - hs);
	if (hl >= sizeof(host))
		return TS_EINVALID;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (hl == 0)
		strcpy(host, "::");
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 && spec[0] != '[')
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 &&
	    (spec[0] == '[' || hl == 0))
		return 0;
	return TS_EINVALID;
}

static void fill_limits(struct ts_http_limits *l)
{
	struct ts_http_limits d;
	ts_http_limits_default(&d);
	if (!l->max_header_bytes)
		l->max_header_bytes = d.max_header_bytes;
	if (!l->max_headers)
		l->max_headers = d.max_headers;
	if (!l->max_body_bytes)
		l->max_body_bytes = d.max_body_bytes;
	if (!l->max_url_bytes)
		l->max_url_bytes = d.max_url_bytes;
}

static void on_close_noop(uv_handle_t *h)
{
	(void)h;
}

int ts_net_open(struct ts_net_server **out, const struct ts_net_config *cfg)
{
	struct sockaddr_storage ss;
	int rc;
	*out = NULL;
	if (!cfg || cfg->n_workers == 0 || cfg->max_conns == 0 || cfg->max_pipeline == 0 ||
	    parse_listen(cfg->listen, &ss) != 0)
		return TS_EINVALID;
	struct ts_net_server *s = ts_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->cfg.listen = NULL; /* borrowed string: not kept */
	fill_limits(&s->cfg.limits);
	s->none_st.name = "";
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->pmu, NULL);
	pthread_cond_init(&s->pcv, NULL);
	atomic_init(&s->shutdown_requested, 0);

	rc = uv_loop_init(&s->loop);
	if (rc != 0)
		goto fail;
	s->loop_ok = 1;
	uv_tcp_init(&s->loop, &s->listener);
	uv_async_init(&s->loop, &s->async, on_async);
	uv_timer_init(&s->loop, &s->shut_timer);
	s->listener.data = s->async.data = s->shut_timer.data = s;
	rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
	if (rc != 0)
		goto fail;
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
	if (rc != 0)
		goto fail;
	s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
					      : ntohs(((struct sockaddr_in *)&bound)->sin_port);

	s->threads = ts_calloc(cfg->n_workers, sizeof(*s->threads));
	if (!s->threads) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < cfg->n_workers; i++) {
		rc = -pthread_create(&s->threads[i], NULL, worker_main, s);
		if (rc != 0)
			goto fail;
		s->n_threads++;
	}
	*out = s;
	return 0;
fail:
	rc = ts_net_err_from_uv(rc);
	if (s->loop_ok) {
		uv_close((uv_handle_t *)&s->listener, on_close_noop);
		uv_close((uv_handle_t *)&s->async, on_close_noop);
		uv_close((uv_handle_t *)&s->shut_timer, on_close_noop);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		s->shutting = 2; /* handles closed: ts_net_close must not close them again */
	}
	ts_net_close(s);
	return rc;
}

int ts_net_port(const struct ts_net_server *s)
{
	return s->port;
}

int ts_net_run(struct ts_net_server *s)
{
	int rc = uv_run(&s->loop, UV_RUN_DEFAULT);
	(void)rc; /* non-zero only if handles remain, which shutdown rules out */
	return 0;
}

void ts_net_close(struct ts_net_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->pmu);
	s->pstop = 1;
	pthread_cond_broadcast(&s->pcv);
	pthread_mutex_unlock(&s->pmu);
	for (unsigned i = 0; i < s->n_threads; i++)
		pthread_join(s->threads[i], NULL);
	ts_free(s->threads);
	if (s->loop_ok) {
		if (!s->shutting) {
			/* never ran (or ran without shutdown): close what open created */
			s->shutting = 1;
			uv_close((uv_handle_t *)&s->listener, on_close_noop);
			uv_close((uv_handle_t *)&s->async, on_close_noop);
			uv_close((uv_handle_t *)&s->shut_timer, on_close_noop);
			if (s->sig_on) {
				uv_close((uv_handle_t *)&s->sig_int, on_close_noop);
				uv_close((uv_handle_t *)&s->sig_term, on_close_noop);
			}
			for (struct conn *c = s->conns, *n; c; c = n) {
				n = c->next;
				conn_close(c);
			}
			uv_run(&s->loop, UV_RUN_DEFAULT);
		}
		if (uv_loop_close(&s->loop) != 0)
			ts_log(TS_LOG_ERROR, "net: loop closed with live handles");
	}
	for (size_t i = 0; i < s->n_routes; i++) {
		ts_free(s->routes[i].method);
		ts_free(s->routes[i].path);
		ts_free((char *)s->routes[i].st.name);
	}
	ts_free(s->routes);
	pthread_cond_destroy(&s->pcv);
	pthread_mutex_destroy(&s->pmu);
	pthread_mutex_destroy(&s->mu);
	ts_free(s);
}

/* ---- stats ---------------------------------------------------------------------- */

void ts_net_stats_get(struct ts_net_server *s, struct ts_net_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	pthread_mutex_unlock(&s->mu);
}

size_t ts_net_route_count(const struct ts_net_server *s)
{
	return s->n_routes + 1;
}

int ts_net_route_stats(struct ts_net_server *s, size_t i, struct ts_net_route_stats *out)
{
	if (i > s->n_routes)
		return TS_EINVALID;
	pthread_mutex_lock(&s->mu);
	*out = i < s->n_routes ? s->routes[i].st : s->none_st;
	pthread_mutex_unlock(&s->mu);
	return 0;
}
