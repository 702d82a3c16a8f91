/*
 * qpar.c - helper threads that let one query use more than one core.
 *
 * A query that reads many series spends its time per series (gathering its chunks,
 * decoding, sliding windows), and the series are independent: VictoriaMetrics spreads
 * them over all cores, and on a 2-core machine one core otherwise idles while a
 * dashboard waits. The caller of ts__qpar_run posts a job; idle helpers join it, and
 * everyone, the caller included, runs the same function, which takes its work from a
 * shared counter. So a busy helper (another query's job) costs nothing but a smaller
 * speed-up, and a job never waits for a helper to start.
 *
 * The helpers (online CPUs - 1, at most QPAR_MAX) are started on first use and live as
 * long as the process; they hold no resources between jobs. Invariants: a job is in the
 * queue only while it still wants helpers and its caller has not finished; the caller
 * returns only after every helper that joined has left fn (running == 0), so the job,
 * on the caller's stack, is never touched after that.
 */
#include "query/eval_int.h"
#include "query/query.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "storage/mem.h"
#include "tsdb/tsdb.h"

#define QPAR_MAX 3

struct qpar_job {
	void (*fn)(void *arg);
	void *arg;
	unsigned want;	  /* helpers still wanted (mu) */
	unsigned running; /* helpers inside fn (mu) */
	int closed;	  /* the caller is done with fn: nobody joins any more (mu) */
	struct qpar_job *next;
};

static struct {
	pthread_once_t once;
	pthread_mutex_t mu;
	pthread_cond_t work; /* helpers wait for a job */
	pthread_cond_t left; /* callers wait for their helpers to leave */
	struct qpar_job *head, *tail;
	unsigned n_helpers; /* started */
} P = { PTHREAD_ONCE_INIT,
	PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_COND_INITIALIZER,
	PTHREAD_COND_INITIALIZER,
	NULL,
	NULL,
	0 };

/* How many helpers may join a job (tests set 0 to compare with the sequential run);
 * UINT_MAX means all that were started. */
unsigned ts__qpar_max_helpers = ~0u;

static void unlink_job(struct qpar_job *j)
{
	struct qpar_job **pp = &P.head, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = j->next;
	if (P.tail == j)
		P.tail = prev;
}

static void *helper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&P.mu);
	for (;;) {
		while (!P.head)
			pthread_cond_wait(&P.work, &P.mu);
		struct qpar_job *j = P.head;
		j->running++;
		if (--j->want == 0)
			unlink_job(j);
		pthread_mutex_unlock(&P.mu);
		j->fn(j->arg);
		pthread_mutex_lock(&P.mu);
		if (--j->running == 0 && j->closed)
			pthread_cond_broadcast(&P.left);
	}
	return NULL;
}

static void start_helpers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus > 1 ? (unsigned)(cpus - 1) : 0;
	if (n > QPAR_MAX)
		n = QPAR_MAX;
	pthread_attr_t a;
	if (pthread_attr_init(&a) != 0)
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	for (unsigned i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, &a, helper_main, NULL) != 0)
			break; /* fewer helpers: slower, never wrong */
		P.n_helpers++;
	}
	pthread_attr_destroy(&a);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

void ts__qpar_lock(struct qpar_lock *l)
{
	for (;;) {
		for (int i = 0; i < 2000; i++) {
			if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
			    !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
				return;
			cpu_relax();
		}
		sched_yield(); /* the holder may have lost its core */
	}
}

void ts_query_set_max_threads(unsigned n)
{
	ts__qpar_max_helpers = n == 0 ? ~0u : n - 1;
}

int ts__qpar_worth(size_t n)
{
	return n >= ts__qpar_min_series && n >= 2 && ts__qpar_helpers() > 0;
}

unsigned ts__qpar_helpers(void)
{
	pthread_once(&P.once, start_helpers);
	unsigned n = P.n_helpers;
	return n < ts__qpar_max_helpers ? n : ts__qpar_max_helpers;
}

void ts__qpar_run(void (*fn)(void *arg), void *arg, unsigned want)
{
	unsigned n = ts__qpar_helpers();
	if (want > n)
		want = n;
	if (want == 0) {
		fn(arg);
		return;
	}
	struct qpar_job j = { .fn = fn, .arg = arg, .want = want };
	pthread_mutex_lock(&P.mu);
	if (P.tail)
		P.tail->next = &j;
	else
		P.head = &j;
	P.tail = &j;
	pthread_mutex_unlock(&P.mu);
	/* after the unlock, so that a woken helper does not block on the mutex at once */
	if (want > 1)
		pthread_cond_broadcast(&P.work);
	else
		pthread_cond_signal(&P.work);
	fn(arg);
	pthread_mutex_lock(&P.mu);
	if (j.want > 0)
		unlink_job(&j);
	j.closed = 1;
	while (j.running > 0)
		pthread_cond_wait(&P.left, &P.mu);
	pthread_mutex_unlock(&P.mu);
}

/* ---- a selector's series ---- */

size_t ts__qpar_min_series = 64;

/* Series taken at a time from the shared counter: few enough that the threads finish
 * together, enough that the counter is not a hot line. */
#define SERIES_BATCH 8

struct sjob {
	struct qev *ev;
	struct ts_series_set *set;
	size_t ns;
	const struct ts__qpar_series_ops *ops;
	void *arg;
	struct qseries *res; /* [ns], each written by the thread that took the series */
	_Atomic size_t next; /* the next series nobody took */
	_Atomic int stop;    /* an error: take no more */
	/* The set's read transactions may be used by one thread at a time (LMDB, with
	 * MDB_NOTLS, lets them move between threads that synchronise): the set takes
	 * this lock around its cursor work (ts_series_set_share) and decodes outside it;
	 * iterators then read only memory. */
	struct qpar_lock set_mu;
	pthread_mutex_t mu; /* what follows */
	size_t err_i;	    /* the lowest series that failed, ns if none */
	int err_rc;
	struct ts_qerr err;
	uint64_t held, scanned;
	/* Samples held by the caller and every thread so far, reported after each series:
	 * each thread's limit is what the others leave, so together they overshoot
	 * --query.max-samples by at most a series each before one of them fails. */
	_Atomic uint64_t held_all;
};

/* One thread's part: series after series from the counter, each read with a context of
 * the thread's own (samples held, scanned, first error), merged at the end. The
 * caller's context is only read while helpers run. */
static void sjob_work(void *arg)
{
	struct sjob *j = arg;
	struct qctx *c = j->ev->c;
	struct ts_qerr err = { 0 };
	struct qctx lc = *c;
	memset(&lc.perm, 0, sizeof lc.perm); /* the arenas are the caller's: unused here */
	memset(&lc.scratch, 0, sizeof lc.scratch);
	lc.kbuf = NULL;
	lc.kbuf_cap = 0;
	lc.err = &err;
	lc.cur_samples = 0;
	lc.max_samples = c->max_samples > c->cur_samples ? c->max_samples - c->cur_samples : 0;
	lc.scanned = 0;
	struct qev lev = *j->ev;
	lev.c = &lc;
	void *state = j->ops->state_size ? ts_calloc(1, j->ops->state_size) : NULL;
	size_t fail_i = j->ns;
	uint64_t reported = 0;
	int rc = j->ops->state_size && !state ? ts__q_nomem(&lc) : 0;
	if (rc)
		fail_i = 0; /* out of memory: the query fails, whichever series it names */
	while (rc == 0 && !atomic_load_explicit(&j->stop, memory_order_relaxed)) {
		size_t i0 = atomic_fetch_add(&j->next, SERIES_BATCH);
		if (i0 >= j->ns)
			break;
		size_t i1 = i0 + SERIES_BATCH < j->ns ? i0 + SERIES_BATCH : j->ns;
		for (size_t i = i0; i < i1 && rc == 0; i++) {
			struct ts_iter *it = NULL;
			rc = ts_iter_new(j->set, i, &it);
			if (rc)
				rc = ts__q_iter_err(&lc, rc);
			else if ((rc = ts__q_check(&lc)) == 0)
				rc = j->ops->one(&lev, j->arg, state, it, &j->res[i]);
			ts_iter_free(it);
			if (rc == 0) {
				/* one() only adds points: what this thread holds never drops */
				uint64_t d = lc.cur_samples - reported;
				uint64_t all = atomic_fetch_add(&j->held_all, d) + d;
				reported = lc.cur_samples;
				if (all > c->max_samples)
					rc = ts__q_too_many_samples(&lc);
				else /* this thread may hold what the others leave */
					lc.max_samples = c->max_samples - (all - lc.cur_samples);
			}
			if (rc)
				fail_i = i;
		}
	}
	if (rc)
		atomic_store(&j->stop, 1);
	if (state && j->ops->state_fini)
		j->ops->state_fini(state);
	ts_free(state);
	pthread_mutex_lock(&j->mu);
	j->held += lc.cur_samples;
	j->scanned += lc.scanned;
	if (rc && fail_i < j->err_i) {
		/* the error the sequential loop would have met first */
		j->err_i = fail_i;
		j->err_rc = rc;
		j->err = err;
	}
	pthread_mutex_unlock(&j->mu);
}

static void set_lock(void *arg)
{
	ts__qpar_lock(arg);
}

static void set_unlock(void *arg)
{
	ts__qpar_unlock(arg);
}

int ts__qpar_series(struct qev *ev, struct ts_series_set *set, size_t ns,
		    const struct ts__qpar_series_ops *ops, void *arg, struct qseries **res)
{
	struct qctx *c = ev->c;
	struct sjob j = { .ev = ev, .set = set, .ns = ns, .ops = ops, .arg = arg, .err_i = ns };
	atomic_init(&j.held_all, c->cur_samples);
	*res = NULL;
	j.res = ts_calloc(ns ? ns : 1, sizeof *j.res);
	if (!j.res)
		return ts__q_nomem(c);
	if (pthread_mutex_init(&j.mu, NULL) != 0) {
		ts_free(j.res);
		return ts__q_nomem(c);
	}
	size_t want = ts__qpar_min_series ? ns / ts__qpar_min_series : ns;
	ts_series_set_share(set, set_lock, set_unlock, &j.set_mu);
	ts__qpar_run(sjob_work, &j, want > 0xffff ? 0xffff : (unsigned)want);
	ts_series_set_share(set, NULL, NULL, NULL);
	pthread_mutex_destroy(&j.mu);
	c->cur_samples += j.held;
	c->scanned += j.scanned;
	int rc = 0;
	if (j.err_i < ns) {
		rc = j.err_rc;
		if (c->err->type == TS_QERR_NONE)
			*c->err = j.err;
	} else if (c->cur_samples > c->max_samples) {
		rc = ts__q_too_many_samples(c);
	}
	if (rc) {
		for (size_t i = 0; i < ns; i++)
			ts__qs_drop(c, &j.res[i]);
		ts_free(j.res);
		return rc;
	}
	*res = j.res;
	return 0;
}
