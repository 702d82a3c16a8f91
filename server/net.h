/*
 * net.h - the TCP/HTTP server: libuv loop, connections, timeouts, router, workers.
 * (Implemented by net.c, the only user of libuv, with exchange.c, pool.c and router.c;
 * net_int.h says which does what.)
 *
 * Threads. One loop thread (the one calling ts_net_run) owns every socket and never
 * blocks on disk or locks held by handlers. Handlers run on a pool of n_workers threads
 * owned by the server (not libuv's threadpool: handlers may block for long, and
 * UV_THREADPOOL_SIZE is process-global and shared with libuv's own fs work).
 *
 * Requests on one connection are handled one after another: request N+1 is handed to a
 * worker only once request N's handler has completed, so pipelined requests see each
 * other's effects in order, and responses go out in request order.
 *
 * Handlers. Register with ts_net_route() or ts_net_routes() before ts_net_run(). A
 * handler is called on a worker with the request (borrowed until completion) and a
 * response object. It sets headers, then completes exactly once, from any thread, now
 * or later:
 *   - ts_net_respond(resp, status, body, len): body is ts_malloc'd and transferred;
 *   - or streaming: ts_net_stream_begin(), ts_net_stream_write() any number of times
 *     (each piece transferred; blocks while TS_NET_STREAM_PENDING_MAX pieces are
 *     unsent: backpressure), ts_net_stream_end(). Sent chunked to HTTP/1.1 clients,
 *     close-delimited to HTTP/1.0 ones.
 * After completion the request and response must not be touched. A HEAD request is
 * routed to GET handlers; the server drops the body it produces.
 *
 * Stats are counted on the loop thread under a mutex; ts_net_stats_get() copies them
 * from any thread (a /metrics handler calls it on a worker).
 */
#ifndef TS_SERVER_NET_H
#define TS_SERVER_NET_H

#include <stddef.h>
#include <stdint.h>

#include "server/http.h"

struct ts_net_server;	/* opaque */
struct ts_net_response; /* opaque; one per request, given to the handler */

struct ts_net_config {
	const char *listen;	      /* "127.0.0.1:9201", "[::1]:9201", ":9201" (all v4+v6) */
	unsigned n_workers;	      /* handler threads; default 4 */
	unsigned max_conns;	      /* open connections; more get 503 and close; 1024 */
	unsigned max_pipeline;	      /* parsed requests queued per connection; 16 */
	uint64_t header_timeout_ms;   /* first byte to end of head; 10 s */
	uint64_t body_timeout_ms;     /* idle gap between reads inside a body; 30 s */
	uint64_t idle_timeout_ms;     /* keep-alive wait for the next request; 60 s */
	uint64_t write_timeout_ms;    /* no write progress while output is pending; 60 s */
	uint64_t shutdown_timeout_ms; /* graceful shutdown waits this long for in-flight; 10 s */
	struct ts_http_limits limits; /* zero fields take http.h's defaults */
};

/* Fills *cfg with the defaults above (listen NULL: must be set). Cannot fail. */
void ts_net_config_default(struct ts_net_config *cfg);

/* Handler: runs on a worker thread. `req` and `resp` are valid until completion;
 * `arg` is what the route was registered with. */
typedef void (*ts_net_handler)(const struct ts_http_request *req, struct ts_net_response *resp,
			       void *arg);

/*
 * Creates the server: its own uv loop, the listening socket (bound and listening on
 * return, so ts_net_port() is known) and the worker threads. cfg and cfg->listen are
 * borrowed for the call (copied). Returns 0 with *out set, or, with *out NULL:
 *   TS_EINVALID  a listen address that does not parse, or n_workers, max_conns or
 *                max_pipeline 0;
 *   -EADDRINUSE, -EACCES and other -errno from binding (translated from libuv) or
 *                from starting threads;
 *   -ENOMEM.
 */
int ts_net_open(struct ts_net_server **out, const struct ts_net_config *cfg);
/* The bound port (useful after listening on port 0). Any thread. */
int ts_net_port(const struct ts_net_server *s);

#define TS_NET_PREFIX 1 /* flags for ts_net_route: path is a prefix */
/*
 * Registers a route. method NULL matches any method; path (must start with '/') is
 * matched exactly, or as a prefix with TS_NET_PREFIX, against the request path
 * (before '?', not percent-decoded). An exact match wins over prefixes, the longest
 * prefix over shorter ones, and among equals the first registered. No route: 404; a
 * path with routes for other methods only: 405. method, path and `name` (labels the
 * stats; NULL = path) are copied; fn and arg are kept. Only before ts_net_run(), on
 * the thread that opened the server. Returns 0, -ENOMEM, or TS_EINVALID (path not
 * starting with '/', fn NULL).
 */
int ts_net_route(struct ts_net_server *s, const char *method, const char *path, int flags,
		 ts_net_handler fn, void *arg, const char *name);

/* One row of a route table for ts_net_routes(). */
struct ts_net_route_def {
	const char *method; /* NULL = any */
	const char *path;
	int flags; /* TS_NET_PREFIX or 0 */
	ts_net_handler fn;
	const char *name; /* stats label; NULL = path */
};
/* Registers defs[0..n) in order, each with `arg`, as ts_net_route does. Stops at the
 * first failure and returns its code (the rows before it stay registered); 0 when all
 * were registered. */
int ts_net_routes(struct ts_net_server *s, const struct ts_net_route_def *defs, size_t n,
		  void *arg);

/* Runs the loop on the calling thread until a shutdown completes. Returns 0. */
int ts_net_run(struct ts_net_server *s);
/*
 * Graceful shutdown, loop thread only: stop accepting, close idle connections, let each
 * connection's running request finish and be written (then close it), force-close what
 * is left after shutdown_timeout_ms, wait for handlers still running, return from run.
 * Calling it again is a no-op.
 */
void ts_net_shutdown(struct ts_net_server *s);
/* Asks for ts_net_shutdown from any thread or from a signal handler (async-signal-safe). */
void ts_net_request_shutdown(struct ts_net_server *s);
/* Makes SIGINT and SIGTERM call ts_net_shutdown (uv_signal on the server's loop).
 * Before ts_net_run; a second call is a no-op. Returns 0 or -errno from libuv. */
int ts_net_handle_signals(struct ts_net_server *s);
/* Makes SIGHUP call fn(arg) on the server's loop thread (configuration reloads). Once per
 * server: TS_EINVALID the second time. 0 or a libuv error mapped as ts_net_open's. */
int ts_net_on_sighup(struct ts_net_server *s, void (*fn)(void *arg), void *arg);
/* Frees the server after ts_net_run returned (or if it never ran): waits for the
 * workers, closes every handle and connection. Accepts NULL. */
void ts_net_close(struct ts_net_server *s);

/*
 * Puts a --web.config.file in force (webconfig.h): basic auth users, response headers
 * and, when it configures TLS, HTTPS with its certificates. Takes the contents of *cfg
 * (left zeroed) on success. The first call decides whether the port speaks TLS, as
 * Prometheus decides at start-up; later calls (reloads: before ts_net_run or on the
 * loop thread, from a SIGHUP or ts_net_every callback) change certificates, users and
 * headers for what comes next: open connections keep their TLS session. Returns 0, or
 * TS_EINVALID with msg (a certificate, key or CA file that does not load, or TLS turned
 * on or off after start-up) and the config in force unchanged, or -ENOMEM.
 */
struct ts_web_config;
int ts_net_set_web(struct ts_net_server *s, struct ts_web_config *cfg, char *msg, size_t msg_len);

/* Calls fn(arg) on the loop thread every interval_ms until shutdown (one per server).
 * Returns 0 or TS_EINVALID (already set) or a libuv error. */
int ts_net_every(struct ts_net_server *s, uint64_t interval_ms, void (*fn)(void *arg), void *arg);

/* ---- responses (any thread) ---- */

/* Adds a response header (name and value copied). Before completion / stream begin.
 * Returns 0, -ENOMEM, TS_EINVALID (not a token name, CR/LF/controls in value, or a
 * header the server writes itself: Content-Length, Date, Connection,
 * Transfer-Encoding). On error the response is unchanged. */
int ts_net_response_header(struct ts_net_response *r, const char *name, const char *value);
/* Completes with a whole body. `body` (ts_malloc'd, may be NULL when len is 0) is
 * transferred to the server, which frees it, also when the client is gone. A status
 * outside 100..599 goes out as 500; so does any status when the server cannot hold
 * the body (out of memory). */
void ts_net_respond(struct ts_net_response *r, int status, char *body, size_t len);
/* Completes with a copy of `text` (NUL-terminated, borrowed) as body and the given
 * Content-Type (NULL: none). On allocation failure the client gets a 500. */
void ts_net_respond_text(struct ts_net_response *r, int status, const char *content_type,
			 const char *text);

#define TS_NET_STREAM_PENDING_MAX 8
/* Starts a streamed response: the head goes out as soon as it is this request's turn.
 * Returns 0 (it cannot fail; errors show in ts_net_stream_write). */
int ts_net_stream_begin(struct ts_net_response *r, int status);
/* Sends one piece (ts_malloc'd, transferred, freed by the server even on error; empty
 * pieces are dropped). Blocks while TS_NET_STREAM_PENDING_MAX pieces are unsent.
 * Returns 0; TS_ECLOSED once the client is gone or timed out (stop producing, then
 * call _end); -ENOMEM (this piece is lost: end the stream). */
int ts_net_stream_write(struct ts_net_response *r, char *piece, size_t len);
/* Ends the stream and completes the response. */
void ts_net_stream_end(struct ts_net_response *r);

/* ---- stats ---- */

/* Request duration buckets (upper bounds, seconds), as Prometheus' defaults. */
#define TS_NET_N_BUCKETS 11
extern const double ts_net_buckets_s[TS_NET_N_BUCKETS];

struct ts_net_route_stats {
	const char *name;		       /* borrowed from the server; "" for no route */
	uint64_t by_status[600];	       /* requests by status code (index = code) */
	uint64_t bucket[TS_NET_N_BUCKETS + 1]; /* non-cumulative; last is +Inf */
	double sum_s;
	uint64_t count;
};

struct ts_net_stats {
	uint64_t conns_open, conns_accepted, conns_rejected;
	uint64_t conns_shed; /* idle or slow connections closed at the limit for a new one */
	uint64_t timeouts_header, timeouts_body, timeouts_idle, timeouts_write;
	uint64_t bad_requests; /* framing errors answered by the HTTP layer */
	uint64_t tls_failures; /* HTTPS connections closed by a failed handshake or record */
	/* of which refused by a size limit: body (413), request head (431), URL (414) */
	uint64_t limit_body, limit_header, limit_url;
};

/* Copies the server-wide counters into *out. Any thread. */
void ts_net_stats_get(struct ts_net_server *s, struct ts_net_stats *out);
/* Number of stats rows: routes in registration order, then one for "no route". Any
 * thread once ts_net_run started (routes no longer change). */
size_t ts_net_route_count(struct ts_net_server *s);
/* Copies row i (0 <= i < ts_net_route_count) into *out; out->name stays valid until
 * ts_net_close. Returns 0 or TS_EINVALID (i out of range). Any thread. */
int ts_net_route_stats(struct ts_net_server *s, size_t i, struct ts_net_route_stats *out);

/* libuv error to ours, at this boundary only: UV_E* are negated errno values on Unix
 * and stay -errno; UV_EOF and UV_ECANCELED become TS_ECLOSED; address-resolution
 * errors (UV_EAI_*) TS_EINVALID; anything outside the errno range TS_EIO; 0 and
 * positive values pass unchanged. */
int ts_net_err_from_uv(int uv_err);

#endif
