/*
 * pool.c - the worker threads that run request handlers (net_int.h).
 *
 * A fixed set of plain pthreads and one FIFO queue of intrusive jobs. The server does
 * not use libuv's threadpool: handlers may block for long (disk, locks, a slow
 * streaming client), and UV_THREADPOOL_SIZE is process-global and shared with libuv's
 * own file work, so nothing here needs libuv.
 *
 * Invariants: a job is in the queue at most once and is run exactly once, by one
 * thread; jobs start in push order; after net_pool_stop() returns no thread runs and
 * no job is left (stopping drains the queue first, so every pushed exchange completes).
 */
#include "server/net_int.h"

#include <errno.h>
#include <string.h>

#include "storage/mem.h"

static void *worker_main(void *arg)
{
	struct net_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		struct net_job *job = p->head;
		if (!job) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		p->run(job, p->arg);
	}
}

int net_pool_start(struct net_pool *p, unsigned n, void (*run)(struct net_job *, void *), void *arg)
{
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		return -ENOMEM;
	}
	p->inited = 1;
	p->run = run;
	p->arg = arg;
	p->threads = ts_calloc(n, sizeof *p->threads);
	if (!p->threads)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (rc != 0)
			return -rc;
		p->n_threads++;
	}
	return 0;
}

void net_pool_push(struct net_pool *p, struct net_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_mutex_unlock(&p->mu);
	/* Signalled after the unlock: a worker woken while the mutex is still held blocks
	 * on it at once and needs a second wake-up (seen in profiles of cheap requests). The
	 * job is queued before, so no wake-up is lost. */
	pthread_cond_signal(&p->cv);
}

void net_pool_stop(struct net_pool *p)
{
	if (!p->inited)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	ts_free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	memset(p, 0, sizeof *p);
}
