/*
 * exchange.c - one request and its response (struct ts_net_response, "the exchange"),
 * and the hand-off between the worker that produces a response and the loop thread
 * that writes it (net_int.h). Also the handler-side API of net.h: headers,
 * ts_net_respond*, ts_net_stream_*.
 *
 * Life of an exchange: created on the loop when a request's first byte arrives,
 * handed to a worker (net_x_run), completed exactly once from any thread, written and
 * freed on the loop. Invariants:
 *   - the worker side touches the fields marked "mu" only under hub.mu, and nothing
 *     after completion (the loop may free the exchange as soon as it sees it);
 *   - an exchange with news for the loop is on the hub's dirty list exactly once
 *     (in_dirty); a completed exchange is taken off that list before it is freed;
 *   - body pieces are owned by the exchange until the loop takes them
 *     (net_x_take); `pending` counts pieces handed to the loop and not yet written,
 *     and a streaming worker blocks while it reaches TS_NET_STREAM_PENDING_MAX
 *     (backpressure) unless the exchange is dead (its connection went away).
 */
#include "server/net_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "storage/err.h"
#include "storage/mem.h"

struct ts_net_response *net_x_new(struct net_hub *h)
{
	struct ts_net_response *x = ts_calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	if (pthread_cond_init(&x->cv, NULL) != 0) {
		ts_free(x);
		return NULL;
	}
	x->hub = h;
	x->status = 200;
	x->direct_fd = -1;
	ts_http_request_init(&x->req);
	return x;
}

static void pieces_free(struct net_piece *p)
{
	for (struct net_piece *n; p; p = n) {
		n = p->next;
		ts_free(p->data);
		ts_free(p);
	}
}

void net_x_free(struct ts_net_response *x)
{
	if (!x)
		return;
	pieces_free(x->ph);
	for (size_t i = 0; i < x->n_hdrs; i++) {
		ts_free((char *)x->hdrs[i].name);
		ts_free((char *)x->hdrs[i].value);
	}
	ts_free(x->hdrs);
	ts_http_request_fini(&x->req);
	pthread_cond_destroy(&x->cv);
	ts_free(x);
}

void net_x_maybe_free(struct ts_net_response *x)
{
	if (x->releasable && x->wrefs == 0)
		net_x_free(x);
}

/* Marks x as having news for the loop. Caller holds mu. */
static void x_dirty(struct ts_net_response *x)
{
	if (!x->in_dirty) {
		x->in_dirty = 1;
		x->dirty_next = x->hub->dirty;
		x->hub->dirty = x;
	}
}

int net_x_post(struct ts_net_response *x, char *data, size_t len, int wait, int mark)
{
	struct net_hub *h = x->hub;
	struct net_piece *p = NULL;
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
	pthread_mutex_lock(&h->mu);
	while (wait && p && x->pending >= TS_NET_STREAM_PENDING_MAX && !x->dead)
		pthread_cond_wait(&x->cv, &h->mu);
	if (x->dead && wait) {
		rc = TS_ECLOSED;
	} else if (p) {
		if (x->pt)
			x->pt->next = p;
		else
			x->ph = p;
		x->pt = p;
		x->pending++;
		p = NULL;
		if (mark)
			x_dirty(x);
	}
	pthread_mutex_unlock(&h->mu);
	pieces_free(p); /* the connection is gone: nobody will write it */
	return rc;
}

struct net_piece *net_x_take(struct ts_net_response *x, int *completed, int *streaming, int *status)
{
	struct net_hub *h = x->hub;
	pthread_mutex_lock(&h->mu);
	struct net_piece *pieces = x->ph;
	x->ph = x->pt = NULL;
	*completed = x->completed;
	*streaming = x->streaming;
	*status = x->status;
	if (x->completed && x->in_dirty) {
		struct ts_net_response **pp = &h->dirty;
		while (*pp != x)
			pp = &(*pp)->dirty_next;
		*pp = x->dirty_next;
		x->in_dirty = 0;
	}
	pthread_mutex_unlock(&h->mu);
	return pieces;
}

void net_x_piece_done(struct ts_net_response *x)
{
	pthread_mutex_lock(&x->hub->mu);
	x->pending--;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->hub->mu);
}

void net_x_orphan(struct ts_net_response *x)
{
	pthread_mutex_lock(&x->hub->mu);
	x->dead = 1;
	x->conn = NULL;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->hub->mu);
}

struct ts_net_response *net_hub_pop(struct net_hub *h, int *completed)
{
	pthread_mutex_lock(&h->mu);
	struct ts_net_response *x = h->dirty;
	if (x) {
		h->dirty = x->dirty_next;
		x->in_dirty = 0;
		*completed = x->completed;
	}
	pthread_mutex_unlock(&h->mu);
	return x;
}

_Static_assert(offsetof(struct ts_net_response, job) == 0, "a job is its exchange");

/* The router's `none` route: the 404 or 405 the loop answers itself when no basic auth
 * is configured, answered here after authentication. */
void net_x_no_route(const struct ts_http_request *req, struct ts_net_response *x, void *arg)
{
	(void)req;
	(void)arg;
	char body[80];
	snprintf(body, sizeof body, "%s\n", ts_http_reason(x->synth));
	ts_net_respond_text(x, x->synth, "text/plain; charset=utf-8", body);
}

void net_x_run(struct net_job *job, void *arg)
{
	struct ts_net_response *x = (struct ts_net_response *)(void *)job;
	(void)arg;
	/* Basic auth before any handler (bcrypt is slow: never on the loop), as the
	 * exporter-toolkit wraps every handler of Prometheus: 401 with a Basic challenge. */
	struct net_web *w = atomic_load_explicit(&x->hub->web, memory_order_acquire);
	if (w && w->auth) {
		size_t n = 0;
		const char *v = ts_http_request_header(&x->req, "Authorization", &n);
		if (!ts_auth_check(w->auth, v, n)) {
			ts_net_response_header(x, "WWW-Authenticate", "Basic");
			ts_net_response_header(x, "X-Content-Type-Options", "nosniff");
			ts_net_respond_text(x, 401, "text/plain; charset=utf-8", "Unauthorized\n");
			return;
		}
	}
	x->route->fn(&x->req, x, x->route->arg);
}

int net_web_headers(struct net_hub *hub, const struct ts_http_header *h, size_t n,
		    struct ts_http_header **all, size_t *n_all)
{
	struct net_web *w = atomic_load_explicit(&hub->web, memory_order_acquire);
	*all = (struct ts_http_header *)h;
	*n_all = n;
	if (!w || !w->cfg.n_headers)
		return 0;
	struct ts_http_header *v = ts_malloc((n + w->cfg.n_headers) * sizeof *v);
	if (!v)
		return -ENOMEM;
	if (n)
		memcpy(v, h, n * sizeof *v);
	size_t k = n;
	for (size_t i = 0; i < w->cfg.n_headers; i++) {
		const struct ts_web_pair *p = &w->cfg.headers[i];
		int set = 0;
		for (size_t j = 0; j < n; j++)
			set |= !strcasecmp(h[j].name, p->name);
		if (!set)
			v[k++] = (struct ts_http_header){ p->name, p->value, strlen(p->name),
							  strlen(p->value) };
	}
	*all = v;
	*n_all = k;
	return 0;
}

char *net_x_head(struct ts_net_response *x, struct ts_http_response_head *h, size_t *len)
{
	struct ts_http_header *all;
	size_t n_all;
	if (net_web_headers(x->hub, x->hdrs, x->n_hdrs, &all, &n_all))
		return NULL;
	h->headers = all;
	h->n_headers = n_all;
	h->date_s = (int64_t)time(NULL);
	if (h->status < 100 || h->status > 599)
		h->status = 500;
	size_t need;
	if (ts_http_write_head(h, NULL, 0, &need) == TS_EINVALID) {
		h->status = 500;
		h->n_headers = 0;
		ts_http_write_head(h, NULL, 0, &need);
	}
	char *head = ts_malloc(need);
	if (head)
		ts_http_write_head(h, head, need, &need);
	if (all != x->hdrs)
		ts_free(all);
	h->headers = NULL;
	h->n_headers = 0;
	*len = need;
	return head;
}

/* ---- writing a small response from the worker ---- */

/* A response up to this size (and piece count) is written by the worker that made it:
 * beyond it the transfer, not the wake-up, is what the client waits for, and a short
 * write would leave a large remainder to copy. */
#define DIRECT_MAX_BYTES (256 * 1024)
#define DIRECT_MAX_PIECES 15

/* Drops the first n bytes of what pieces hold (written), freeing emptied pieces. */
static void pieces_consume(struct ts_net_response *x, size_t n)
{
	while (n > 0 && x->ph) {
		struct net_piece *p = x->ph;
		if (n < p->len) {
			memmove(p->data, p->data + n, p->len - n);
			p->len -= n;
			return;
		}
		n -= p->len;
		x->ph = p->next;
		if (!x->ph)
			x->pt = NULL;
		x->pending--;
		ts_free(p->data);
		ts_free(p);
	}
}

/*
 * Writes the completed response of x (head and pieces) to its socket without the loop:
 * the client's answer leaves as soon as it is ready instead of after the loop thread
 * woke up (a wake-up of an idle thread costs tens of microseconds, on the order of a
 * whole cheap request). A non-blocking send: what does not fit stays as pieces for the
 * loop, behind the head (direct_head tells the loop not to write one). Nothing is
 * written on any failure here: the loop then answers as it always does, and sees a
 * broken socket itself. Caller holds mu, x is not dead and not streaming.
 */
static void direct_write(struct ts_net_response *x)
{
	struct iovec iov[DIRECT_MAX_PIECES + 1];
	size_t total = 0, n = 1;
	for (struct net_piece *p = x->ph; p; p = p->next) {
		if (n > DIRECT_MAX_PIECES)
			return;
		total += p->len;
		iov[n++] = (struct iovec){ p->data, p->len };
	}
	if (total > DIRECT_MAX_BYTES)
		return;
	struct ts_http_response_head h = { .status = x->status,
					   .content_length = total,
					   .keep_alive = x->keep_alive };
	size_t hlen;
	char *head = net_x_head(x, &h, &hlen);
	struct net_piece *rest = ts_malloc(sizeof(*rest)); /* for the head's unsent bytes */
	if (!head || !rest) {
		ts_free(head);
		ts_free(rest);
		return;
	}
	iov[0] = (struct iovec){ head, hlen };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	ssize_t w;
	do
		w = sendmsg(x->direct_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		ts_free(head);
		ts_free(rest);
		return;
	}
	size_t done = w > 0 ? (size_t)w : 0;
	x->direct_head = 1;
	if (done >= hlen) {
		ts_free(head);
		ts_free(rest);
		pieces_consume(x, done - hlen);
		return;
	}
	memmove(head, head + done, hlen - done);
	rest->data = head;
	rest->len = hlen - done;
	rest->next = x->ph;
	x->ph = rest;
	if (!x->pt)
		x->pt = rest;
	x->pending++;
}

/* ---- the handler side (any thread) ---- */

int ts_net_response_header(struct ts_net_response *r, const char *name, const char *value)
{
	struct ts_http_header h = { name, value, strlen(name), strlen(value) };
	struct ts_http_response_head probe = { .status = 200, .headers = &h, .n_headers = 1 };
	size_t need;
	if (ts_http_write_head(&probe, NULL, 0, &need) == TS_EINVALID)
		return TS_EINVALID;
	if (ts_grow((void **)&r->hdrs, &r->hdrs_cap, r->n_hdrs + 1, sizeof *r->hdrs) != 0)
		return -ENOMEM;
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

static void complete(struct ts_net_response *r)
{
	struct net_hub *h = r->hub;
	pthread_mutex_lock(&h->mu);
	if (r->direct_fd >= 0 && !r->dead && !r->streaming)
		direct_write(r);
	r->completed = 1;
	x_dirty(r);
	pthread_mutex_unlock(&h->mu);
	/* r may be freed from here on */
	net_wake(h);
}

void ts_net_respond(struct ts_net_response *r, int status, char *body, size_t len)
{
	r->status = status;
	if (net_x_post(r, body, len, 0, 1) == -ENOMEM)
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
	struct net_hub *h = r->hub;
	pthread_mutex_lock(&h->mu);
	r->status = status;
	r->streaming = 1;
	x_dirty(r);
	pthread_mutex_unlock(&h->mu);
	net_wake(h);
	return 0;
}

int ts_net_stream_write(struct ts_net_response *r, char *piece, size_t len)
{
	int rc = net_x_post(r, piece, len, 1, 1);
	if (rc == 0 && len > 0)
		net_wake(r->hub);
	return rc;
}

void ts_net_stream_end(struct ts_net_response *r)
{
	complete(r);
}
