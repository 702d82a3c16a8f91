/*
 * grpc.c - the gRPC server (grpc.h) on gRPC's C core.
 *
 * Each requested call gets a completion queue of its own, of the "pluck" kind, bound
 * to it when it is requested: the worker that handles the call runs each batch of
 * operations and plucks that batch's tag from the call's own queue, so a handler reads
 * as straight-line blocking code while the core does the I/O. The server's queue only
 * announces new calls (and the shutdown) to the acceptor thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "server/grpc.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

/* Requests bigger than this are refused by the core (RESOURCE_EXHAUSTED): StoreAPI
 * requests are matchers and times, a few KiB. */
#define MAX_RECV_BYTES (4 << 20)

struct ts_grpc_call {
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_completion_queue *cq; /* this call's own, pluck kind */
	struct ts_grpc_call *next; /* worker queue */
	bool finished, broken;
};

struct ts_grpc_server {
	grpc_server *srv;
	grpc_completion_queue *cq; /* new calls and shutdown */
	struct ts_grpc_method *methods;
	size_t n_methods;
	pthread_t acceptor;
	pthread_t *workers;
	unsigned n_workers, started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ts_grpc_call *q_head, *q_tail;
	bool stopping;
	bool acceptor_on;
	int shutdown_tag;
};

static gpr_timespec forever(void)
{
	return gpr_inf_future(GPR_CLOCK_REALTIME);
}

/* Runs one batch on the call and waits for it. 1 when it succeeded. A batch that
 * makes no progress for STALL_MS (a client that stopped reading a stream, and set no
 * deadline) gets the call cancelled, so that it cannot hold a worker for good; the
 * cancelled batch then completes, failed. */
#define STALL_MS 60000
static int run_batch(struct ts_grpc_call *c, const grpc_op *ops, size_t n)
{
	if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
		return 0;
	gpr_timespec limit = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_millis(STALL_MS, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_pluck(c->cq, c, limit, NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		ts_log(TS_LOG_WARN, "grpc: a call made no progress for %d s; cancelled",
		       STALL_MS / 1000);
		grpc_call_cancel(c->call, NULL);
		ev = grpc_completion_queue_pluck(c->cq, c, forever(), NULL);
	}
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void call_free(struct ts_grpc_call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_pluck(c->cq, NULL, forever(), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	ts_free(c);
}

/* Asks the core for the next call. 0 or -ENOMEM / TS_EIO. */
static int request_call(struct ts_grpc_server *s)
{
	struct ts_grpc_call *c = ts_calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (grpc_server_request_call(s->srv, &c->call, &c->details, &c->md, c->cq, s->cq, c) !=
	    GRPC_CALL_OK) {
		c->call = NULL;
		call_free(c);
		return TS_EIO;
	}
	return 0;
}

static void *acceptor_main(void *arg)
{
	struct ts_grpc_server *s = arg;
	bool want = request_call(s) == 0, shutting = false;
	for (;;) {
		/* Without a call requested (the core refused one: memory), try again each
		 * second rather than never accepting again. */
		gpr_timespec wait = want || shutting ? forever()
						     : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
								    gpr_time_from_millis(
									    1000, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(s->cq, wait, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			want = request_call(s) == 0;
			continue;
		}
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &s->shutdown_tag) {
			shutting = true;
			grpc_completion_queue_shutdown(s->cq);
			continue;
		}
		struct ts_grpc_call *c = ev.tag;
		if (!ev.success) { /* the server is shutting down */
			c->call = NULL;
			call_free(c);
			want = false;
			shutting = true;
			continue;
		}
		/* Workers stop only after this thread has ended: the queue is always
		 * drained. */
		pthread_mutex_lock(&s->mu);
		if (s->q_tail)
			s->q_tail->next = c;
		else
			s->q_head = c;
		s->q_tail = c;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		want = request_call(s) == 0;
		if (!want)
			ts_log(TS_LOG_ERROR, "grpc: cannot accept more calls");
	}
	return NULL;
}

static const struct ts_grpc_method *method_of(const struct ts_grpc_server *s, grpc_slice m)
{
	size_t n = GRPC_SLICE_LENGTH(m);
	const uint8_t *p = GRPC_SLICE_START_PTR(m);
	for (size_t i = 0; i < s->n_methods; i++)
		if (strlen(s->methods[i].path) == n && !memcmp(s->methods[i].path, p, n))
			return &s->methods[i];
	return NULL;
}

static void handle(struct ts_grpc_server *s, struct ts_grpc_call *c)
{
	grpc_byte_buffer *in = NULL;
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &in;
	if (!run_batch(c, ops, 2)) {
		c->broken = true;
		ts_grpc_finish(c, TS_GRPC_CANCELLED, NULL);
		return;
	}
	if (!in) {
		ts_grpc_finish(c, TS_GRPC_INVALID_ARGUMENT, "no request message");
		return;
	}
	grpc_byte_buffer_reader rd;
	grpc_slice flat = grpc_empty_slice();
	bool ok = grpc_byte_buffer_reader_init(&rd, in);
	if (ok) {
		flat = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
	}
	grpc_byte_buffer_destroy(in);
	const struct ts_grpc_method *m = method_of(s, c->details.method);
	if (!ok)
		ts_grpc_finish(c, TS_GRPC_INTERNAL, "cannot read the request message");
	else if (!m)
		ts_grpc_finish(c, TS_GRPC_UNIMPLEMENTED, "unknown method");
	else
		m->fn(c, GRPC_SLICE_START_PTR(flat), GRPC_SLICE_LENGTH(flat), m->arg);
	grpc_slice_unref(flat);
	if (!c->finished) {
		ts_log(TS_LOG_ERROR, "grpc: a handler returned without a status");
		ts_grpc_finish(c, TS_GRPC_INTERNAL, "no status");
	}
}

static void *worker_main(void *arg)
{
	struct ts_grpc_server *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->q_head && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		struct ts_grpc_call *c = s->q_head;
		if (c) {
			s->q_head = c->next;
			if (!s->q_head)
				s->q_tail = NULL;
		}
		pthread_mutex_unlock(&s->mu);
		if (!c)
			return NULL; /* stopping and nothing queued */
		handle(s, c);
		call_free(c);
	}
}

int ts_grpc_send(struct ts_grpc_call *c, const uint8_t *p, size_t len)
{
	if (c->broken || c->finished)
		return -EPIPE;
	/* Copied: the core may hold a message's slices past the batch's completion. */
	grpc_slice sl = grpc_slice_from_copied_buffer((const char *)p, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	int ok = run_batch(c, &op, 1);
	grpc_byte_buffer_destroy(bb);
	if (!ok)
		c->broken = true;
	return ok ? 0 : -EPIPE;
}

void ts_grpc_finish(struct ts_grpc_call *c, enum ts_grpc_status status, const char *message)
{
	if (c->finished)
		return;
	c->finished = true;
	int cancelled = 0;
	grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[0].data.send_status_from_server.status = (grpc_status_code)status;
	ops[0].data.send_status_from_server.status_details = message ? &details : NULL;
	ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[1].data.recv_close_on_server.cancelled = &cancelled;
	run_batch(c, ops, 2);
	grpc_slice_unref(details);
}

const char *ts_grpc_metadata(const struct ts_grpc_call *c, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < c->md.count; i++) {
		const grpc_metadata *m = &c->md.metadata[i];
		if (GRPC_SLICE_LENGTH(m->key) == kl &&
		    !strncasecmp((const char *)GRPC_SLICE_START_PTR(m->key), key, kl)) {
			*len = GRPC_SLICE_LENGTH(m->value);
			return (const char *)GRPC_SLICE_START_PTR(m->value);
		}
	}
	return NULL;
}

int64_t ts_grpc_deadline_ns(const struct ts_grpc_call *c)
{
	gpr_timespec d = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_REALTIME);
	if (d.tv_sec >= INT32_MAX) /* gpr_inf_future and anything past 2038 */
		return 0;
	gpr_timespec now = gpr_now(GPR_CLOCK_REALTIME);
	int64_t left_ns = (d.tv_sec - now.tv_sec) * 1000000000LL + (d.tv_nsec - now.tv_nsec);
	return ts_mono_ns() + (left_ns > 0 ? left_ns : 1);
}

/* ":10901" means every interface, as --listen does. */
static void core_addr(const char *addr, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", addr[0] == ':' ? "[::]" : "", addr);
}

int ts_grpc_start(const char *addr, unsigned n_workers, const struct ts_grpc_method *methods,
		  size_t n, struct ts_grpc_server **out, int *port, char *msg, size_t msg_len)
{
	*out = NULL;
	struct ts_grpc_server *s = ts_calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->n_workers = n_workers ? n_workers : 2;
	s->methods = ts_calloc(n ? n : 1, sizeof *s->methods);
	s->workers = ts_calloc(s->n_workers, sizeof *s->workers);
	if (!s->methods || !s->workers) {
		ts_free(s->methods);
		ts_free(s->workers);
		ts_free(s);
		return -ENOMEM;
	}
	memcpy(s->methods, methods, n * sizeof *methods);
	s->n_methods = n;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	grpc_init();
	grpc_arg arg = { .type = GRPC_ARG_INTEGER,
			 .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			 .value.integer = MAX_RECV_BYTES };
	grpc_channel_args args = { .num_args = 1, .args = &arg };
	s->srv = grpc_server_create(&args, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(s->srv, s->cq, NULL);
	char a[300];
	core_addr(addr, a, sizeof a);
	grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
	int p = grpc_server_add_http2_port(s->srv, a, cr);
	grpc_server_credentials_release(cr);
	if (p <= 0) {
		snprintf(msg, msg_len, "cannot listen on %s", addr);
		ts_grpc_stop(s);
		return TS_EINVALID;
	}
	grpc_server_start(s->srv);
	if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
		ts_grpc_stop(s);
		return -ENOMEM;
	}
	s->acceptor_on = true;
	for (; s->started < s->n_workers; s->started++)
		if (pthread_create(&s->workers[s->started], NULL, worker_main, s)) {
			ts_grpc_stop(s);
			return -ENOMEM;
		}
	*port = p;
	*out = s;
	return 0;
}

void ts_grpc_stop(struct ts_grpc_server *s)
{
	if (!s)
		return;
	grpc_server_shutdown_and_notify(s->srv, s->cq, &s->shutdown_tag);
	grpc_server_cancel_all_calls(s->srv);
	if (s->acceptor_on) {
		pthread_join(s->acceptor, NULL);
	} else {
		/* Never started: drain the shutdown notice here. */
		grpc_event ev;
		do {
			ev = grpc_completion_queue_next(s->cq, forever(), NULL);
			if (ev.type == GRPC_OP_COMPLETE && ev.tag == &s->shutdown_tag)
				grpc_completion_queue_shutdown(s->cq);
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	}
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->workers[i], NULL);
	grpc_server_destroy(s->srv);
	grpc_completion_queue_destroy(s->cq);
	grpc_shutdown();
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	ts_free(s->methods);
	ts_free(s->workers);
	ts_free(s);
}
