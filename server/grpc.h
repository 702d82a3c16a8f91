/*
 * grpc.h - a gRPC server on Debian's gRPC C core (libgrpc), for the Thanos StoreAPI
 * (storeapi.c). Unary and server-streaming methods: the request is one message, the
 * handler sends any number of messages and then a status.
 *
 * Threads. gRPC core runs its own I/O threads. One acceptor thread of ours asks the
 * core for calls and hands each to a pool of n_workers handler threads of its own
 * (separate from the HTTP server's, so a slow StoreAPI client never holds up the
 * Prometheus API). A handler runs on a worker and blocks in ts_grpc_send until the
 * core has taken the message: one message in flight per call is the backpressure.
 *
 * Handlers. Called with the request message's bytes (borrowed until the handler
 * returns). A handler sends with ts_grpc_send and must end the call exactly once with
 * ts_grpc_finish before returning. Unknown methods get UNIMPLEMENTED without reaching a
 * handler.
 */
#ifndef TS_SERVER_GRPC_H
#define TS_SERVER_GRPC_H

#include <stddef.h>
#include <stdint.h>

struct ts_grpc_server;
struct ts_grpc_call;

/* gRPC status codes the handlers use (grpc/status.h's values). */
enum ts_grpc_status {
	TS_GRPC_OK = 0,
	TS_GRPC_CANCELLED = 1,
	TS_GRPC_INVALID_ARGUMENT = 3,
	TS_GRPC_DEADLINE_EXCEEDED = 4,
	TS_GRPC_NOT_FOUND = 5,
	TS_GRPC_RESOURCE_EXHAUSTED = 8,
	TS_GRPC_UNIMPLEMENTED = 12,
	TS_GRPC_INTERNAL = 13,
	TS_GRPC_UNAVAILABLE = 14,
};

typedef void (*ts_grpc_handler)(struct ts_grpc_call *call, const uint8_t *req, size_t len,
				void *arg);

struct ts_grpc_method {
	const char *path; /* "/thanos.Store/Series" */
	ts_grpc_handler fn;
	void *arg;
};

/*
 * Listens on addr ("127.0.0.1:10901", "[::]:10901", ":10901" for every interface; port 0
 * picks a free one) and starts serving methods[0..n) (copied; path strings and args must
 * outlive the server). *port receives the bound port. Returns 0, TS_EINVALID (cannot
 * listen there: msg says why, NUL-terminated within msg_len), or -ENOMEM.
 */
int ts_grpc_start(const char *addr, unsigned n_workers, const struct ts_grpc_method *methods,
		  size_t n, struct ts_grpc_server **out, int *port, char *msg, size_t msg_len);
/* Stops accepting, cancels calls in flight, waits for the handlers to return and frees
 * the server. Accepts NULL. */
void ts_grpc_stop(struct ts_grpc_server *s);

/* Sends one message p[0..len) (borrowed for the call) and waits until the core took
 * it. Returns 0, or -EPIPE when the call is over (client gone, cancelled, deadline
 * passed): the handler should stop and still call ts_grpc_finish. */
int ts_grpc_send(struct ts_grpc_call *c, const uint8_t *p, size_t len);
/* Ends the call with a status and a message (NULL: none). Exactly once per call. */
void ts_grpc_finish(struct ts_grpc_call *c, enum ts_grpc_status status, const char *message);
/* The request metadata value of key (lower case, as HTTP/2 sends it), *len its length;
 * NULL when absent. Valid until ts_grpc_finish. */
const char *ts_grpc_metadata(const struct ts_grpc_call *c, const char *key, size_t *len);
/* The call's deadline as CLOCK_MONOTONIC nanoseconds, 0 when the client set none. */
int64_t ts_grpc_deadline_ns(const struct ts_grpc_call *c);

#endif
