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
#include <unistd.h>

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
	if (want > 1)
		pthread_cond_broadcast(&P.work);
	else
		pthread_cond_signal(&P.work);
	pthread_mutex_unlock(&P.mu);
	fn(arg);
	pthread_mutex_lock(&P.mu);
	if (j.want > 0)
		unlink_job(&j);
	j.closed = 1;
	while (j.running > 0)
		pthread_cond_wait(&P.left, &P.mu);
	pthread_mutex_unlock(&P.mu);
}
