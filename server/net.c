/*
 * net.c - the libuv side of the server: the loop thread, the listener, connections
 * (input, pipelining in order, timeouts, writing with backpressure), graceful
 * shutdown and server-wide statistics. The only file of the project that includes
 * <uv.h>; requests and responses (exchange.c), the worker threads (pool.c) and the
 * routes (router.c) know nothing of libuv (net_int.h says who does what).
 *
 * Objects and who touches them:
 *   server   loop thread; hub.mu guards what workers share (the dirty list, exchange
 *            fields marked "mu", the server-wide stats); the pool and the router
 *            have their own mutexes.
 *   conn     loop thread only. Owns its uv_tcp_t and uv_timer_t, a ts_http_conn, the
 *            queue of parsed requests not yet dispatched, the one active exchange, and
 *            a stash of unparsed input kept while reading is paused (pipeline full).
 *   exchange (struct ts_net_response, exchange.c) one request and its response.
 *            Created on the loop, handed to a worker, completed from any thread.
 *            Invariants kept here:
 *            - at most one exchange per conn is dispatched at a time (conn->active);
 *            - freed on the loop when `releasable` (no more loop work: finished, or
 *              completed after its conn went away) and no uv_write references it;
 *            - a conn closing while its exchange runs orphans it (conn = NULL, dead =
 *              1): stream writers get TS_ECLOSED, completion frees it.
 * Worker -> loop: the exchange goes on the hub's dirty list and net_wake() (an
 * uv_async_send) wakes the loop, which writes what is new (head, pieces, end). A small
 * complete response on a plain connection is written by the worker itself first
 * (exchange.c, direct_fd); the loop then writes only what did not fit.
 * Loop -> worker: the pool's queue.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "server/net_int.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define READ_BUF_BYTES (64 * 1024)
#define DRAIN_LINGER_MS 2000

enum tkind { TK_NONE, TK_HEADER, TK_BODY, TK_IDLE, TK_WRITE, TK_DRAIN };

struct net_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t sreq;
	struct ts_net_server *s;
	struct net_conn *prev, *next;
	struct ts_http_conn *http;
	struct ts_net_response *qh, *qt; /* parsed, waiting for dispatch */
	size_t n_queued;
	struct ts_net_response *active;
	struct ts_net_response *spare; /* receives the next request */
	char *stash;
	size_t stash_len, stash_cap;
	int reading, paused, closing, draining, stop_parsing, close_after_flush, want_continue;
	int shed;	    /* closed to make room for a new connection (counted in n_shed) */
	struct ts_tls *tls; /* HTTPS: the session; everything read and written goes through it */
	int tls_seen;	    /* a first byte arrived (to spot plain HTTP on the TLS port) */
	int handles;
	unsigned n_writes;
	unsigned n_requests;
	uint64_t head_start, last_read, last_activity, last_write, drain_start;
	enum tkind tkind;
};

struct wreq {
	uv_write_t w;
	struct net_conn *c;
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
	uv_signal_t sig_int, sig_term, sig_hup;
	int sig_on, hup_on;
	void (*on_hup)(void *arg);
	void *hup_arg;
	uv_timer_t every;
	int every_on;
	void (*every_fn)(void *arg);
	void *every_arg;
	int tls_on; /* HTTPS: decided by the first ts_net_set_web, as Prometheus decides */
	struct ts_net_config cfg;
	int port;
	char rbuf[READ_BUF_BYTES];
	int rbuf_busy;
	struct net_conn *conns;
	size_t n_conns;
	size_t n_shed; /* connections closed to make room, not yet gone */
	size_t n_live; /* exchanges handed to workers and not yet seen completed */
	int shutting, closed_handles;
	atomic_int shutdown_requested;
	struct net_hub hub;	/* hub.mu also guards st */
	struct ts_net_stats st; /* hub.mu */
	struct net_router router;
	struct net_pool pool;
};

static void conn_pump(struct net_conn *c);
static void conn_close(struct net_conn *c);
static void conn_arm(struct net_conn *c);
static void conn_next(struct net_conn *c);
static void conn_feed(struct net_conn *c, const char *buf, size_t len);
static void maybe_finish(struct ts_net_server *s);
static void conn_read_start(struct net_conn *c);
static void conn_start_drain(struct net_conn *c);

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

/* ---- what the other files of the module ask of the loop ---------------------- */

void net_wake(struct net_hub *h)
{
	struct ts_net_server *s =
		(struct ts_net_server *)(void *)((char *)h - offsetof(struct ts_net_server, hub));
	uv_async_send(&s->async);
}

struct net_router *net_router_of(struct ts_net_server *s)
{
	return &s->router;
}

/* Counts a finished exchange in its route's row (duration from its first byte). */
static void stats_record(struct ts_net_server *s, struct ts_net_response *x, int status)
{
	net_router_record(&s->router, x->route, status, (double)(uv_hrtime() - x->t0_ns) / 1e9);
}

/* Counts a server-wide event under hub.mu. */
static void count(struct ts_net_server *s, uint64_t *counter, int64_t delta)
{
	pthread_mutex_lock(&s->hub.mu);
	*counter += (uint64_t)delta;
	pthread_mutex_unlock(&s->hub.mu);
}

/* ---- writing -------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct net_conn *c = wr->c;
	struct ts_net_response *x = wr->x;
	ts_free(wr->head);
	ts_free(wr->data);
	if (x) {
		if (wr->counted)
			net_x_piece_done(x);
		x->wrefs--;
		net_x_maybe_free(x);
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
static int conn_write(struct net_conn *c, struct ts_net_response *x, char *head, size_t head_len,
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
	if (c->tls) {
		/* HTTPS: the bytes become TLS records, written as one buffer. */
		int trc = 0;
		for (unsigned i = 0; i < n && trc == 0; i++)
			trc = ts_tls_write(c->tls, b[i].base, b[i].len);
		char *enc = NULL;
		size_t enc_len = 0;
		if (trc == 0)
			trc = ts_tls_take_output(c->tls, &enc, &enc_len);
		ts_free(wr->head);
		ts_free(wr->data);
		wr->data = NULL;
		wr->head = enc;
		if (trc) {
			/* As a failed uv_write below: a stream piece is done (dropped). */
			if (x && counted)
				net_x_piece_done(x);
			ts_free(enc);
			ts_free(wr);
			conn_close(c);
			return trc;
		}
		n = 0;
		b[n++] = uv_buf_init(enc ? enc : wr->pre, (unsigned)enc_len);
	}
	if (x) {
		wr->x = x;
		x->wrefs++;
	}
	int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, n, on_write);
	if (rc != 0) {
		if (x) {
			x->wrefs--;
			if (counted)
				net_x_piece_done(x);
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

/* Writes bytes as they are (TLS records the session produced, or a plain answer on
 * the TLS port); buf is ts_malloc'd and owned by the write. */
static int conn_write_raw(struct net_conn *c, char *buf, size_t len)
{
	struct wreq *wr = ts_calloc(1, sizeof(*wr));
	if (!wr) {
		ts_free(buf);
		conn_close(c);
		return -ENOMEM;
	}
	wr->c = c;
	wr->head = buf;
	uv_buf_t b = uv_buf_init(buf, (unsigned)len);
	int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0) {
		ts_free(buf);
		ts_free(wr);
		conn_close(c);
		return ts_net_err_from_uv(rc);
	}
	c->n_writes++;
	return 0;
}

/* Sends what the TLS session has to say (handshake, alerts). */
static int conn_tls_flush(struct net_conn *c)
{
	char *out;
	size_t n;
	if (!c->tls || c->closing)
		return 0;
	if (ts_tls_take_output(c->tls, &out, &n)) {
		conn_close(c);
		return -ENOMEM;
	}
	return out ? conn_write_raw(c, out, n) : 0;
}

/* The web config in force, or NULL. */
static struct net_web *web_of(struct ts_net_server *s)
{
	return atomic_load_explicit(&s->hub.web, memory_order_acquire);
}

static int write_text(struct net_conn *c, int status, int keep_alive)
{
	const char *reason = ts_http_reason(status);
	size_t blen = strlen(reason) + 1;
	struct ts_http_header ct = { "Content-Type", "text/plain; charset=utf-8", 12, 25 };
	struct ts_http_header *all;
	size_t n_all;
	if (net_web_headers(&c->s->hub, &ct, 1, &all, &n_all)) {
		conn_close(c);
		return -ENOMEM;
	}
	struct ts_http_response_head h = { .status = status,
					   .headers = all,
					   .n_headers = n_all,
					   .content_length = blen,
					   .keep_alive = keep_alive,
					   .date_s = (int64_t)time(NULL) };
	size_t need;
	ts_http_write_head(&h, NULL, 0, &need);
	char *head = ts_malloc(need + blen);
	if (!head) {
		if (all != &ct)
			ts_free(all);
		conn_close(c);
		return -ENOMEM;
	}
	ts_http_write_head(&h, head, need, &need);
	if (all != &ct)
		ts_free(all);
	memcpy(head + need, reason, blen - 1);
	head[need + blen - 1] = '\n';
	return conn_write(c, NULL, head, need + blen, NULL, 0, NULL, 0, 0, 0);
}

/* Writes the head of x; a bad header set by the handler turns into a 500. */
static int write_head(struct net_conn *c, struct ts_net_response *x, int status, int streaming,
		      uint64_t content_length)
{
	struct ts_http_response_head h = { .status = status,
					   .content_length = content_length,
					   .keep_alive = x->keep_alive };
	if (streaming) {
		x->chunked = x->req.http_minor >= 1;
		x->close_delimited = !x->chunked;
		h.chunked = x->chunked;
		h.close_delimited = x->close_delimited;
		if (x->close_delimited)
			x->keep_alive = h.keep_alive = 0;
	}
	size_t need;
	char *head = net_x_head(x, &h, &need);
	if (!head) {
		conn_close(c);
		return -ENOMEM;
	}
	x->head_sent = 1;
	return conn_write(c, x, head, need, NULL, 0, NULL, 0, 0, 0);
}

/* Writes whatever the active exchange has produced since the last pump. */
static void conn_pump(struct net_conn *c)
{
	struct ts_net_response *x = c->active;
	if (!x || c->closing)
		return;
	int completed, streaming, status;
	struct net_piece *pieces = net_x_take(x, &completed, &streaming, &status);
	if (completed && x->route && !x->seen_complete) {
		x->seen_complete = 1;
		c->s->n_live--;
	}
	if (completed && x->direct_head)
		x->head_sent = 1; /* pieces are what the worker could not write */

	if (!x->head_sent && !streaming && completed) {
		uint64_t len = 0;
		for (struct net_piece *p = pieces; p; p = p->next)
			len += p->len;
		if (write_head(c, x, status, 0, len))
			goto drop;
	} else if (!x->head_sent && streaming) {
		if (write_head(c, x, status, 1, 0))
			goto drop;
	}
	while (pieces) {
		struct net_piece *p = pieces;
		pieces = p->next;
		char pre[TS_HTTP_CHUNK_PREFIX_MAX];
		size_t pre_len = 0;
		x->body_len += p->len;
		if (x->head_only) {
			net_x_piece_done(x);
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
	net_x_maybe_free(x);
	if (c->close_after_flush)
		c->stop_parsing = 1;
	conn_next(c); /* dispatches the next request, or starts the half-close */
	return;
drop:
	for (struct net_piece *p = pieces, *n; p; p = n) {
		n = p->next;
		ts_free(p->data);
		ts_free(p);
	}
}

/* ---- connection lifecycle -------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct net_conn *c = h->data;
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
	if (c->shed)
		s->n_shed--;
	count(s, &s->st.conns_open, -1);
	ts_http_conn_free(c->http);
	ts_tls_free(c->tls);
	ts_free(c->stash);
	ts_free(c);
	maybe_finish(s);
}

static void conn_close(struct net_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	struct ts_net_response *x = c->active;
	if (x) {
		/* The worker may still be running it: orphan it; completion frees it. */
		net_x_orphan(x);
		if (!x->route || x->seen_complete) {
			/* nothing more will come from a worker; on_async frees the others */
			x->releasable = 1;
			net_x_maybe_free(x);
		}
		c->active = NULL;
	}
	for (struct ts_net_response *q = c->qh, *n; q; q = n) {
		n = q->next;
		net_x_free(q);
	}
	c->qh = c->qt = NULL;
	net_x_free(c->spare);
	c->spare = NULL;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void conn_start_drain(struct net_conn *c)
{
	if (c->draining || c->closing)
		return;
	c->draining = 1;
	c->drain_start = uv_now(&c->s->loop);
	if (c->tls) {
		ts_tls_shutdown(c->tls); /* close_notify before the FIN */
		if (conn_tls_flush(c))
			return;
	}
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, NULL) != 0) {
		conn_close(c);
		return;
	}
	conn_read_start(c); /* to see the client's EOF; input is discarded */
	conn_arm(c);
}

static void on_timer(uv_timer_t *t)
{
	struct net_conn *c = t->data;
	struct ts_net_server *s = c->s;
	int idle_inside = !c->active && !c->qh && c->n_writes == 0;
	pthread_mutex_lock(&s->hub.mu);
	switch (c->tkind) {
	case TK_HEADER: s->st.timeouts_header++; break;
	case TK_BODY: s->st.timeouts_body++; break;
	case TK_IDLE: s->st.timeouts_idle++; break;
	case TK_WRITE: s->st.timeouts_write++; break;
	default: break;
	}
	pthread_mutex_unlock(&s->hub.mu);
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

static void conn_arm(struct net_conn *c)
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
static void conn_flush_continue(struct net_conn *c)
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
static void conn_enqueue(struct net_conn *c, struct ts_net_response *x)
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
		    net_x_post(x, b, n + 1, 0, 0))
			x->status = 500;
	}
	x->completed = 1;
}

/* Dispatches the next queued request when nothing is active. */
static void conn_next(struct net_conn *c)
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
		int fd = -1;
		if (c->tls || x->head_only || c->n_writes > 0 ||
		    uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
			fd = -1;
		x->direct_fd = fd;
		if (x->route) {
			s->n_live++;
			net_pool_push(&s->pool, &x->job);
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
	struct net_conn *c = h->data;
	(void)suggested;
	/* One buffer per server: each read is fully parsed (or stashed) in on_read before
	 * libuv asks for the next one. */
	buf->base = c->s->rbuf;
	buf->len = READ_BUF_BYTES;
}

static int stash_put(struct net_conn *c, const char *buf, size_t len)
{
	size_t need = c->stash_len + len;
	if (ts_grow((void **)&c->stash, &c->stash_cap, need < 4096 ? 4096 : need, 1) != 0)
		return -ENOMEM;
	memcpy(c->stash + c->stash_len, buf, len);
	c->stash_len += len;
	return 0;
}

/* Parses as many requests as the pipeline allows; keeps the rest in the stash. */
static void conn_feed(struct net_conn *c, const char *buf, size_t len)
{
	struct ts_net_server *s = c->s;
	size_t off = 0;
	while (off < len && !c->closing && !c->stop_parsing) {
		if (c->n_queued + (c->active ? 1u : 0u) >= s->cfg.max_pipeline) {
			c->paused = 1;
			break;
		}
		if (!c->spare && !(c->spare = net_x_new(&s->hub))) {
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
			x->route = net_router_find(&s->router, &x->req, &status);
			conn_enqueue(c, x);
			struct net_web *w = web_of(s);
			if (!x->route && w && w->auth) {
				/* authenticated first, on a worker, like every request */
				x->route = &s->router.none;
				x->synth = status;
			} else if (!x->route) {
				conn_synthetic(x, status);
			}
			if (!x->req.keep_alive)
				c->stop_parsing = 1;
			continue;
		}
		/* framing error: answer in turn (if there is something to say), then close */
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		int status = ts_http_conn_status(c->http);
		if (status == 0) {
			net_x_free(x);
			break;
		}
		count(s, &s->st.bad_requests, 1);
		if (status == 413)
			count(s, &s->st.limit_body, 1);
		else if (status == 431)
			count(s, &s->st.limit_header, 1);
		else if (status == 414)
			count(s, &s->st.limit_url, 1);
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

static int tls_plain(void *arg, const char *p, size_t n)
{
	struct net_conn *c = arg;
	if (c->closing || c->draining || c->stop_parsing)
		return 1;
	conn_feed(c, p, n);
	return c->closing;
}

/* HTTPS input: the first byte tells a TLS client from a plain HTTP one (which gets
 * Go's answer, as from Prometheus: a 400 in clear text, never a 2xx); then records
 * are decrypted into conn_feed. A failed handshake or record sends the alert and
 * closes. */
static void conn_feed_tls(struct net_conn *c, const char *buf, size_t len)
{
	struct ts_net_server *s = c->s;
	if (!c->tls_seen) {
		c->tls_seen = 1;
		if ((unsigned char)buf[0] != 0x16) { /* not a TLS handshake record */
			static const char msg[] = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an "
						  "HTTP request to an HTTPS server.\n";
			count(s, &s->st.bad_requests, 1);
			ts_tls_free(c->tls);
			c->tls = NULL;
			c->stop_parsing = 1;
			c->close_after_flush = 1;
			char *b = ts_malloc(sizeof msg - 1);
			if (!b) {
				conn_close(c);
				return;
			}
			memcpy(b, msg, sizeof msg - 1);
			if (conn_write_raw(c, b, sizeof msg - 1) == 0)
				conn_start_drain(c);
			return;
		}
	}
	int rc = ts_tls_feed(c->tls, buf, len, tls_plain, c);
	if (c->closing || conn_tls_flush(c))
		return;
	if (rc != 0) {
		/* rc 1: the client's close_notify, as an EOF; else a TLS failure. */
		if (rc < 0)
			count(s, &s->st.tls_failures, 1);
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = 0;
		}
		if (rc < 0 || (!c->active && !c->qh && c->n_writes == 0)) {
			if (c->n_writes == 0)
				conn_close(c);
			return;
		}
		conn_arm(c);
		return;
	}
	conn_next(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *c = st->data;
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
	if (c->tls) {
		conn_feed_tls(c, buf->base, (size_t)nread);
		return;
	}
	conn_feed(c, buf->base, (size_t)nread);
	if (c->closing)
		return;
	conn_next(c);
}

static void conn_read_start(struct net_conn *c)
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

/*
 * At the connection limit a new client should not be turned away while slots are held
 * by connections doing nothing: idle keep-alive connections, clients that connected and
 * sent nothing, and slow senders still in the request head (slowloris). The one of those
 * that has waited longest since its last byte is closed to make room. Connections with
 * a request in flight, a response being written or a body arriving are never shed. 1 if
 * one was closed.
 */
static int shed_one(struct ts_net_server *s)
{
	struct net_conn *victim = NULL;
	for (struct net_conn *c = s->conns; c; c = c->next) {
		if (c->closing || c->active || c->qh || c->n_writes > 0)
			continue;
		int phase = ts_http_conn_phase(c->http);
		if (phase != TS_HTTP_PHASE_IDLE && phase != TS_HTTP_PHASE_HEAD)
			continue;
		if (!victim || c->last_read < victim->last_read)
			victim = c;
	}
	if (!victim)
		return 0;
	victim->shed = 1;
	s->n_shed++;
	count(s, &s->st.conns_shed, 1);
	conn_close(victim);
	return 1;
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct ts_net_server *s = ls->data;
	if (status < 0) {
		ts_log(TS_LOG_WARN, "net: accept: %s", uv_strerror(status));
		return;
	}
	/* Shed connections are still counted until their handles close. */
	if (!s->shutting && s->n_conns - s->n_shed >= s->cfg.max_conns)
		shed_one(s);
	if (s->n_conns - s->n_shed >= s->cfg.max_conns || s->shutting) {
		static const char busy[] =
			"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			"Retry-After: 1\r\nConnection: close\r\n\r\n";
		uv_tcp_t *t = ts_malloc(sizeof(*t));
		if (!t || uv_tcp_init(&s->loop, t) != 0) {
			ts_free(t);
			return;
		}
		if (uv_accept(ls, (uv_stream_t *)t) == 0) {
			uv_buf_t b = uv_buf_init((char *)busy, sizeof(busy) - 1);
			(void)uv_try_write((uv_stream_t *)t, &b,
					   1); /* best effort: fits a fresh socket */
			count(s, &s->st.conns_rejected, 1);
		}
		uv_close((uv_handle_t *)t, on_reject_closed);
		return;
	}
	struct net_conn *c = ts_calloc(1, sizeof(*c));
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
	pthread_mutex_lock(&s->hub.mu);
	s->st.conns_open++;
	s->st.conns_accepted++;
	pthread_mutex_unlock(&s->hub.mu);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	struct net_web *w = web_of(s);
	if (s->tls_on && (!w || !w->tls || ts_tls_new(w->tls, &c->tls) != 0)) {
		conn_close(c);
		return;
	}
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
	int completed;
	for (struct ts_net_response *x; (x = net_hub_pop(&s->hub, &completed)) != NULL;) {
		if (x->conn) {
			conn_pump(x->conn); /* may free x */
		} else if (completed) {
			if (!x->seen_complete) {
				x->seen_complete = 1;
				s->n_live--;
			}
			x->releasable = 1;
			net_x_maybe_free(x);
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
	if (s->hup_on)
		uv_close((uv_handle_t *)&s->sig_hup, on_server_handle_closed);
	if (s->every_on)
		uv_close((uv_handle_t *)&s->every, on_server_handle_closed);
}

static void on_shutdown_timer(uv_timer_t *t)
{
	struct ts_net_server *s = t->data;
	ts_log(TS_LOG_WARN, "net: shutdown timeout, closing %zu connection(s)", s->n_conns);
	for (struct net_conn *c = s->conns, *n; c; c = n) {
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
	for (struct net_conn *c = s->conns, *n; c; c = n) {
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
			net_x_free(q);
		}
		c->qh = c->qt = NULL;
		c->n_queued = 0;
		c->stop_parsing = 1;
		c->close_after_flush = 1;
		c->want_continue = 0;
		if (c->active) {
			pthread_mutex_lock(&s->hub.mu); /* a worker may be writing its head */
			c->active->keep_alive = 0;
			pthread_mutex_unlock(&s->hub.mu);
		}
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

static void on_hup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct ts_net_server *s = h->data;
	ts_log(TS_LOG_INFO, "net: SIGHUP, reloading");
	s->on_hup(s->hup_arg);
}

int ts_net_on_sighup(struct ts_net_server *s, void (*fn)(void *arg), void *arg)
{
	if (s->hup_on)
		return TS_EINVALID;
	int rc = uv_signal_init(&s->loop, &s->sig_hup);
	if (rc != 0)
		return ts_net_err_from_uv(rc);
	s->sig_hup.data = s;
	s->on_hup = fn;
	s->hup_arg = arg;
	s->hup_on = 1;
	return ts_net_err_from_uv(uv_signal_start(&s->sig_hup, on_hup, SIGHUP));
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
	pthread_mutex_init(&s->hub.mu, NULL);
	net_router_init(&s->router);
	s->router.none.fn = net_x_no_route;
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

	rc = net_pool_start(&s->pool, cfg->n_workers, net_x_run, NULL);
	if (rc != 0)
		goto fail;
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
	/* Workers first: a running handler may still wake the loop's async handle. */
	net_pool_stop(&s->pool);
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
			if (s->hup_on)
				uv_close((uv_handle_t *)&s->sig_hup, on_close_noop);
			if (s->every_on)
				uv_close((uv_handle_t *)&s->every, on_close_noop);
			for (struct net_conn *c = s->conns, *n; c; c = n) {
				n = c->next;
				conn_close(c);
			}
			uv_run(&s->loop, UV_RUN_DEFAULT);
		}
		if (uv_loop_close(&s->loop) != 0)
			ts_log(TS_LOG_ERROR, "net: loop closed with live handles");
	}
	net_router_fini(&s->router);
	for (struct net_web *w = web_of(s), *o; w; w = o) {
		o = w->older;
		ts_auth_free(w->auth);
		ts_tls_ctx_free(w->tls);
		ts_web_config_fini(&w->cfg);
		ts_free(w);
	}
	pthread_mutex_destroy(&s->hub.mu);
	ts_free(s);
}

/* ---- --web.config.file ------------------------------------------------------------ */

int ts_net_set_web(struct ts_net_server *s, struct ts_web_config *cfg, char *msg, size_t msg_len)
{
	struct net_web *old = web_of(s);
	if (!old)
		s->tls_on = cfg->tls;
	if (msg && msg_len)
		msg[0] = 0;
	if (cfg->tls != s->tls_on) {
		snprintf(msg, msg_len, "TLS is %s since start-up; turning it %s needs a restart",
			 s->tls_on ? "on" : "off", s->tls_on ? "off" : "on");
		return TS_EINVALID;
	}
	struct net_web *w = ts_calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	int rc = ts_auth_new(cfg, &w->auth);
	if (rc == 0 && cfg->tls)
		rc = ts_tls_ctx_new(cfg, &w->tls, msg, msg_len);
	if (rc) {
		ts_auth_free(w->auth);
		ts_free(w);
		return rc;
	}
	w->cfg = *cfg;
	memset(cfg, 0, sizeof *cfg);
	w->older = old;
	atomic_store_explicit(&s->hub.web, w, memory_order_release);
	return 0;
}

static void on_every(uv_timer_t *t)
{
	struct ts_net_server *s = t->data;
	if (!s->shutting)
		s->every_fn(s->every_arg);
}

int ts_net_every(struct ts_net_server *s, uint64_t interval_ms, void (*fn)(void *arg), void *arg)
{
	if (s->every_on || !interval_ms)
		return TS_EINVALID;
	int rc = uv_timer_init(&s->loop, &s->every);
	if (rc != 0)
		return ts_net_err_from_uv(rc);
	s->every.data = s;
	s->every_fn = fn;
	s->every_arg = arg;
	s->every_on = 1;
	uv_unref((uv_handle_t *)&s->every); /* never keeps the loop alive by itself */
	return ts_net_err_from_uv(uv_timer_start(&s->every, on_every, interval_ms, interval_ms));
}

/* ---- stats ---------------------------------------------------------------------- */

void ts_net_stats_get(struct ts_net_server *s, struct ts_net_stats *out)
{
	pthread_mutex_lock(&s->hub.mu);
	*out = s->st;
	pthread_mutex_unlock(&s->hub.mu);
}
