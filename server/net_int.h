/*
 * net_int.h - private to the network module of server/ (net.c, exchange.c, pool.c,
 * router.c); the public face is net.h.
 *
 * Who does what:
 *   net.c       the libuv loop thread: listener, connections, timers, writing. The only
 *               file that includes <uv.h>.
 *   exchange.c  one request and its response (struct ts_net_response), the hand-off
 *               between a worker that produces the response and the loop that writes
 *               it; and the handler-side API of net.h (ts_net_respond*, streams).
 *   pool.c      the worker threads that run handlers.
 *   router.c    the route table, route look-up and per-route statistics.
 *
 * The hand-off (struct net_hub, owned by the server): a worker that has news for the
 * loop (a head, pieces, completion) marks its exchange dirty under hub.mu and calls
 * net_wake(); the loop pops dirty exchanges and writes what is new. Workers only touch
 * the fields marked "mu", under hub.mu. Only the loop touches sockets, with one
 * exception: a worker may write a whole small response to a plain-HTTP socket itself
 * (exchange.c, direct_fd), which saves the client one thread wake-up per request.
 */
#ifndef TS_SERVER_NET_INT_H
#define TS_SERVER_NET_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "server/auth.h"
#include "server/http.h"
#include "server/net.h"
#include "server/tls.h"
#include "server/webconfig.h"

/* ---- pool.c: worker threads ---- */

/* A queued unit of work, embedded in what it runs (intrusive: no allocation). */
struct net_job {
	struct net_job *next;
};

struct net_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct net_job *head, *tail; /* mu */
	int stop;		     /* mu */
	void (*run)(struct net_job *job, void *arg);
	void *arg;
	pthread_t *threads;
	unsigned n_threads; /* started */
	int inited;
};

/* Starts n threads that call run(job, arg) for every pushed job, in push order, one job
 * per thread at a time. p must be zeroed. Returns 0, -ENOMEM, or -errno of
 * pthread_create; after a failure some threads may run: net_pool_stop() them. */
int net_pool_start(struct net_pool *p, unsigned n, void (*run)(struct net_job *, void *),
		   void *arg);
/* Queues a job (not yet queued anywhere). Any thread. */
void net_pool_push(struct net_pool *p, struct net_job *job);
/* Lets the threads finish every queued job, joins them and frees the pool's memory.
 * Safe on a zeroed pool and after a failed start. */
void net_pool_stop(struct net_pool *p);

/* ---- router.c: routes and their statistics ---- */

struct net_route {
	char *method; /* NULL = any */
	char *path;
	size_t path_len;
	int prefix;
	ts_net_handler fn;
	void *arg;
	struct ts_net_route_stats st; /* router mu */
};

struct net_router {
	struct net_route *routes; /* registration order; fixed once the loop runs */
	size_t n, cap;
	/* Requests no route took (404, 405). Its stats row counts them; its handler
	 * answers them on a worker when basic auth is on, so that they are
	 * authenticated first like every other request. */
	struct net_route none;
	pthread_mutex_t mu; /* guards the stats rows */
};

void net_router_init(struct net_router *r);
void net_router_fini(struct net_router *r);
/* Best route for the request: an exact path before prefixes, the longest prefix
 * first; HEAD takes GET routes. NULL with *status 404 (no path) or 405 (other methods
 * only). Loop thread. */
struct net_route *net_router_find(struct net_router *r, const struct ts_http_request *q,
				  int *status);
/* Counts one answered request of `route` (NULL: no route) with its status and duration.
 * Any thread. */
void net_router_record(struct net_router *r, struct net_route *route, int status, double seconds);
/* The server's router (net.c owns the server struct). */
struct net_router *net_router_of(struct ts_net_server *s);

/* ---- exchange.c: requests, responses, the hand-off ---- */

struct net_piece {
	struct net_piece *next;
	char *data; /* ts_malloc'd, owned by the piece */
	size_t len;
};

/* What --web.config.file says, as in force (ts_net_set_web). Immutable once published;
 * replaced whole on reload, and the old ones are kept until the server closes, so a
 * worker or a connection never reads one that was freed. */
struct net_web {
	struct ts_web_config cfg;
	struct ts_auth *auth;	/* NULL: no basic_auth_users */
	struct ts_tls_ctx *tls; /* NULL: plain HTTP */
	struct net_web *older;	/* the ones it replaced */
};

struct net_hub {
	pthread_mutex_t mu;	       /* guards exchange fields marked "mu", and `dirty` */
	struct ts_net_response *dirty; /* exchanges with news for the loop */
	_Atomic(struct net_web *) web; /* NULL: no web config */
};

/* Wakes the loop to look at the hub (uv_async_send). Any thread. net.c. */
void net_wake(struct net_hub *h);

struct ts_net_response {
	struct net_job job;		    /* pool queue */
	struct ts_net_response *next;	    /* conn queue */
	struct ts_net_response *dirty_next; /* mu */
	int in_dirty;			    /* mu */
	struct net_hub *hub;
	struct net_conn *conn; /* loop only; NULL once orphaned */
	struct ts_http_request req;
	struct net_route *route; /* NULL: answered by the loop itself */
	int synth;		 /* the status to answer when route is the router's `none` */
	uint64_t t0_ns;
	/* filled by the handler */
	struct ts_http_header *hdrs;
	size_t n_hdrs, hdrs_cap;
	/* mu */
	int status, streaming, completed, dead;
	struct net_piece *ph, *pt;
	unsigned pending;
	pthread_cond_t cv;
	int keep_alive;	 /* set by the loop before dispatch; after that changed under mu */
	int direct_head; /* the worker wrote the head, and maybe more, to direct_fd */
	/* Set by the loop before dispatch: the socket a worker may write a completed,
	 * non-streaming response to, or -1 (HTTPS, HEAD, earlier bytes still queued). The
	 * loop writes nothing else to the connection while the exchange is active, and
	 * closes the socket only after orphaning the exchange under mu, so a worker that
	 * holds mu and sees !dead writes to the right socket in the right order. */
	int direct_fd;
	/* loop only */
	int head_sent, finished, releasable, chunked, close_delimited, head_only;
	int seen_complete; /* the loop has observed completion of a worker exchange */
	unsigned wrefs;
	uint64_t body_len;
};

/* h and the web config's http_server_config.headers that the response does not set
 * itself, in *all (ts_malloc'd when *all != h; the caller frees it). Any thread.
 * Returns 0 or -ENOMEM. */
int net_web_headers(struct net_hub *hub, const struct ts_http_header *h, size_t n,
		    struct ts_http_header **all, size_t *n_all);
/* x's response head as h describes it (headers and status filled in here from x and
 * the web config; a status outside 100..599 or a bad header set by the handler gives a
 * 500 head). ts_malloc'd, its length in *len; NULL without memory. Any thread. */
char *net_x_head(struct ts_net_response *x, struct ts_http_response_head *h, size_t *len);
/* A new exchange (status 200, empty request) or NULL. */
struct ts_net_response *net_x_new(struct net_hub *h);
/* Frees x with its request, headers and pieces. Accepts NULL. */
void net_x_free(struct ts_net_response *x);
/* Frees x once it is releasable and no write references it. Loop thread. */
void net_x_maybe_free(struct ts_net_response *x);
/* Appends a piece (data transferred; empty data is freed). wait: block while
 * TS_NET_STREAM_PENDING_MAX pieces are unsent, and fail with TS_ECLOSED once the
 * exchange is dead; mark: put x on the dirty list. Returns 0, -ENOMEM, TS_ECLOSED. */
int net_x_post(struct ts_net_response *x, char *data, size_t len, int wait, int mark);
/* Takes the pieces produced since the last call and the state under mu: what the loop
 * writes next. Takes a completed x off the dirty list (it is about to be freed). */
struct net_piece *net_x_take(struct ts_net_response *x, int *completed, int *streaming,
			     int *status);
/* One piece of x left the process (written or dropped): unblocks a waiting writer. */
void net_x_piece_done(struct ts_net_response *x);
/* Marks x dead (its connection is gone): blocked and later stream writes fail. */
void net_x_orphan(struct ts_net_response *x);
/* Pops the next exchange with news, or NULL; *completed is its state then. Loop. */
struct ts_net_response *net_hub_pop(struct net_hub *h, int *completed);
/* Runs x's handler on a worker (the pool's run function), after basic auth when the
 * web config has users (401 without running the handler). */
void net_x_run(struct net_job *job, void *arg);
/* The handler of the router's `none` route: answers x->synth (404, 405). */
void net_x_no_route(const struct ts_http_request *req, struct ts_net_response *x, void *arg);

#endif
