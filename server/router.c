/*
 * router.c - the route table of the server: registration (ts_net_route, ts_net_routes),
 * look-up of the handler for a request, and per-route request statistics for /metrics.
 *
 * Invariants: routes are registered before the loop runs and never change afterwards,
 * so the loop reads the table without a lock; a route's statistics row lives as long as
 * the server and is only touched under the router's mutex (a worker's /metrics handler
 * reads them while the loop counts). Row i is route i in registration order; the last
 * row counts requests no route took (404, 405, framing errors).
 */
#include "server/net_int.h"

#include <errno.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"

const double ts_net_buckets_s[TS_NET_N_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
						    0.5,   1,	 2.5,	5,    10 };

void net_router_init(struct net_router *r)
{
	memset(r, 0, sizeof *r);
	r->none.st.name = "";
	pthread_mutex_init(&r->mu, NULL);
}

void net_router_fini(struct net_router *r)
{
	for (size_t i = 0; i < r->n; i++) {
		ts_free(r->routes[i].method);
		ts_free(r->routes[i].path);
		ts_free((char *)r->routes[i].st.name);
	}
	ts_free(r->routes);
	pthread_mutex_destroy(&r->mu);
	memset(r, 0, sizeof *r);
}

int ts_net_route(struct ts_net_server *s, const char *method, const char *path, int flags,
		 ts_net_handler fn, void *arg, const char *name)
{
	struct net_router *rt = net_router_of(s);
	if (!path || path[0] != '/' || !fn)
		return TS_EINVALID;
	if (ts_grow((void **)&rt->routes, &rt->cap, rt->n + 1, sizeof *rt->routes) != 0)
		return -ENOMEM;
	struct net_route *r = &rt->routes[rt->n];
	memset(r, 0, sizeof *r);
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
	rt->n++;
	return 0;
}

int ts_net_routes(struct ts_net_server *s, const struct ts_net_route_def *defs, size_t n, void *arg)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ts_net_route(s, defs[i].method, defs[i].path, defs[i].flags, defs[i].fn, arg,
				  defs[i].name);
	return rc;
}

struct net_route *net_router_find(struct net_router *rt, const struct ts_http_request *q,
				  int *status)
{
	struct net_route *best = NULL;
	int path_seen = 0;
	for (size_t i = 0; i < rt->n; i++) {
		struct net_route *r = &rt->routes[i];
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

void net_router_record(struct net_router *rt, struct net_route *route, int status, double seconds)
{
	pthread_mutex_lock(&rt->mu);
	struct ts_net_route_stats *st = route ? &route->st : &rt->none.st;
	if (status >= 0 && status < 600)
		st->by_status[status]++;
	size_t b = 0;
	while (b < TS_NET_N_BUCKETS && seconds > ts_net_buckets_s[b])
		b++;
	st->bucket[b]++;
	st->sum_s += seconds;
	st->count++;
	pthread_mutex_unlock(&rt->mu);
}

size_t ts_net_route_count(struct ts_net_server *s)
{
	return net_router_of(s)->n + 1;
}

int ts_net_route_stats(struct ts_net_server *s, size_t i, struct ts_net_route_stats *out)
{
	struct net_router *rt = net_router_of(s);
	if (i > rt->n)
		return TS_EINVALID;
	pthread_mutex_lock(&rt->mu);
	*out = i < rt->n ? rt->routes[i].st : rt->none.st;
	pthread_mutex_unlock(&rt->mu);
	return 0;
}
