/*
 * test_crash.c - kill -9 crash test of the engine's durability contract (tsdb.h):
 * "ts_db_append() returns once the batch is in the WAL under the sync policy, so an
 * acknowledged sample survives kill -9".
 *
 * Design:
 * - The workload is a pure function of (seed, batch number b): batch b is the scrape at
 *   slot b (15 s apart) of every live series, plus out-of-order samples deferred from
 *   slots b-1..b-4 (inside the 5 min OOO window), exact resends of earlier samples, and
 *   samples far behind the window with a conflicting value that must be rejected. A
 *   sample's value is a function of (series k, slot s) only, so resends never conflict;
 *   values include counters with resets, gauges (memory bytes in pages, temperatures
 *   with one decimal), constants, the stale marker 0x7ff0000000000002, -0.0, +Inf and
 *   NaNs with payloads. Series are born over time and some die. first_batch(k, s) names
 *   the batch that first carries sample (k, s), so the expected content after batches
 *   0..L is reconstructed in any process from the seed and L alone.
 * - A writer child opens the db (sync=always, small checkpoint and flush intervals so
 *   flushes, checkpoints, WAL rolls and truncation happen all the time, an OOO window,
 *   15 min partitions so partition boundaries are crossed every 60 batches, at most 4
 *   partition envs open) and appends batch after batch; after each ts_db_append()
 *   returns 0 (and the result counters are as the workload predicts) it writes the batch
 *   number into a pipe. A second thread calls ts_db_checkpoint() and ts_db_compact() at
 *   seeded random moments, one time in five holding appends back meanwhile (compaction
 *   skips a partition with sealed chunks still in memory). The data is from 2023, so
 *   every partition is "closed" for compaction (compact.c): forced compactions rewrite
 *   the partition being written, and flushes and late writes undo them, all the time.
 * - Retention: each writer child opens with a retention_ms that puts the cutoff (now -
 *   retention) at a partition boundary behind the acknowledged data, at least 40 slots
 *   back (appended samples are never too old), about 360 slots back, or past the oldest
 *   partition on disk when the iteration aims at retention; so partitions expire in most
 *   children. The parent keeps the highest cutoff any child may have applied (measured
 *   after the kill, plus a minute); a partition ending at or before it may be gone.
 * - Kills: in 4 iterations of 10 the parent SIGKILLs the child after a seeded random
 *   delay (measured from fork, so some kills land in recovery). In the others the child
 *   is armed with a failpoint (tsdb/failpoint.h, TS_FAILPOINT=<name>:<n>): a seeded pick
 *   of a named risky step of flushes, checkpoints, compaction or retention and the hit
 *   at which the child raise()s SIGKILL itself; the parent kills it after 2 s if the
 *   point was not reached. A failpoint is picked only when it can be reached (retention:
 *   some partition on disk is old enough to expire).
 * - A verifier child then opens the same directory (recovery, retention off), checks
 *   raw/, checkpoints, checks the data, reports over a pipe, and _exit()s without
 *   closing: the next writer child recovers a recovered state. Checks: every sample of every acknowledged batch present, bit-exact, except
 *   in partitions that may have expired (those may show any subset, since heads in
 *   memory and the WAL still hold some, but only exact acknowledged samples); nothing
 *   never sent; nothing of batches after L+1; the first unacknowledged batch (L+1,
 *   possibly written but not reported) visible entirely or not at all; strictly
 *   increasing timestamps; label sets exact; series count. On disk, right after the
 *   recovery: every entry of raw/ is a directory named "<start>_<end>" of one partition
 *   width on a partition boundary, so no <part>.compact or <part>.old is left over.
 * - Separate tests: TS_FAILPOINT kills at exactly the n-th hit and is inert when
 *   malformed or set after open; clean ts_db_close() + reopen gives identical data;
 *   ts_db_checkpoint() does not change what a reader sees, and a crash after checkpoint
 *   + more appends recovers identical data.
 *
 * TS_SEED overrides the seed, TS_CRASH_ITERS the number of kill iterations (default 80).
 * The loop asserts that failpoints of each group (flush/checkpoint, compaction,
 * retention) fired: the kills are meant to land there, not by luck. Timing is never
 * asserted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/err.h"
#include "storage/log.h"
#include "tsdb/format.h"
#include "tsdb/tsdb.h"
#include "testutil.h"

/* tsdb/writer.c: head row bytes per index transaction of a checkpoint. */
extern size_t ts__ckpt_slice_bytes;

/* ---- workload ------------------------------------------------------------------ */

#define STEP_MS 15000
#define T0_MS INT64_C(1700000000000)
#define OOO_WINDOW_MS 300000
#define PARTITION_MS 900000 /* 15 min: 60 batches */
#define N_BASE 300	    /* series live from batch 0 */
#define BIRTH_EVERY 10	    /* then one new series every this many batches */
#define MAX_DEFER 4	    /* OOO samples arrive up to this many batches late */
#define REJECT_BEHIND 30    /* slots behind the head: 450 s, outside the window */
#define NEVER INT64_MAX
#define N_NAMES 6
#define SAMPLES_PER_ENTRY 8

static uint64_t g_seed = 0xc4a5d0071;
static const uint64_t REJECT_BITS = 0xc0fe240c00000000u; /* -123456.75-ish, never generated */

static const char *const names[N_NAMES] = {
	"crash_requests_total",	   "crash_errors_total", "node_memory_Active_bytes",
	"node_hwmon_temp_celsius", "crash_queue_length", "crash_build_info",
};

static uint64_t h4(uint64_t k, int64_t s, uint64_t tag)
{
	return tu_mix64(g_seed ^
			tu_mix64(k * 0x100000001b3u ^ tu_mix64((uint64_t)s * 0x9e3779b1u ^ tag)));
}

static int64_t birth(uint64_t k)
{
	return k < N_BASE ? 0 : (int64_t)(k - N_BASE) * BIRTH_EVERY + 1;
}

static int64_t death(uint64_t k)
{
	uint64_t h = h4(k, 0, 'D');
	if (k < N_BASE || h % 3 == 0)
		return NEVER;
	return birth(k) + 100 + (int64_t)((h >> 8) % 300);
}

/* Series k < kmax(b) may have samples in batch b. */
static uint64_t kmax(int64_t b)
{
	return b < 1 ? N_BASE : N_BASE + (uint64_t)((b - 1) / BIRTH_EVERY) + 1;
}

static int live(uint64_t k, int64_t s)
{
	return s >= birth(k) && s < death(k);
}

static int gap(uint64_t k, int64_t s)
{
	return h4(k, s, 'G') % 40 == 0;
}

/* 0: sent in its own batch; d > 0: sent d batches late (out of order). */
static int defer_by(uint64_t k, int64_t s)
{
	uint64_t h = h4(k, s, 'O');
	return h % 16 == 0 ? 1 + (int)((h >> 8) % MAX_DEFER) : 0;
}

static int64_t first_batch(uint64_t k, int64_t s)
{
	if (s < 0 || !live(k, s) || gap(k, s))
		return NEVER;
	return s + defer_by(k, s);
}

static int64_t sample_t(uint64_t k, int64_t s)
{
	return T0_MS + s * STEP_MS + (int64_t)(h4(k, 0, 'J') % 1000) +
	       (int64_t)(h4(k, s, 'j') % 50);
}

static uint64_t value_bits(uint64_t k, int64_t s)
{
	uint64_t h = h4(k, s, 'V');
	switch (h % 128) {
	case 0: return TS_STALE_NAN_BITS;
	case 1: return tu_bits(-0.0);
	case 2: return 0x7ff8000000000001u | ((h >> 12) & 0xffff) << 4; /* quiet NaN, payload */
	case 3: return 0xfff0000000000001u | ((h >> 20) & 0xff) << 8; /* negative signalling NaN */
	case 4: return 0x7ff0000000000000u;			      /* +Inf */
	default: break;
	}
	h >>= 8;
	switch (k % N_NAMES) {
	case 0:
	case 1: {
		int64_t period = 97 + (int64_t)(k % 50); /* counter with resets */
		uint64_t inc = 1 + h4(k, 0, 'I') % 20;
		return tu_bits((double)((uint64_t)(s % period) * inc + h % inc));
	}
	case 2: return tu_bits(4096.0 * (double)(250000 + h % 5000));
	case 3: return tu_bits((double)(400 + h % 300) / 10.0);
	case 4: return tu_bits((double)(h % 64));
	default: return tu_bits(1.0);
	}
}

/* Labels of series k, in a non-canonical order. */
struct lset {
	char inst[32];
	struct ts_label l[4];
	uint32_t n;
};

static void lset_make(uint64_t k, struct lset *ls)
{
	snprintf(ls->inst, sizeof ls->inst, "host-%04" PRIu64 ":9100", k / N_NAMES);
	const char *name = names[k % N_NAMES];
	ls->n = 0;
	ls->l[ls->n++] = (struct ts_label){ "job", "crash", 3, 5 };
	ls->l[ls->n++] = (struct ts_label){ "instance", ls->inst, 8, (uint32_t)strlen(ls->inst) };
	ls->l[ls->n++] = (struct ts_label){ "__name__", name, 8, (uint32_t)strlen(name) };
	if (k % N_NAMES < 2)
		ls->l[ls->n++] = (struct ts_label){ "code", k % 12 < 6 ? "200" : "500", 4, 3 };
}

/* "name=value;" of the canonical (name-sorted) label set of k. */
static void lset_text(uint64_t k, char *out, size_t cap)
{
	struct lset ls;
	lset_make(k, &ls);
	/* canonical order: __name__, code, instance, job ('_' < 'c' < 'i' < 'j') */
	static const char *const order[] = { "__name__", "code", "instance", "job" };
	size_t off = 0;
	out[0] = 0;
	for (size_t o = 0; o < 4; o++)
		for (uint32_t i = 0; i < ls.n; i++)
			if (strcmp(ls.l[i].name, order[o]) == 0)
				off += (size_t)snprintf(out + off, cap - off, "%s=%.*s;", order[o],
							(int)ls.l[i].value_len, ls.l[i].value);
}

struct batch {
	int64_t b;
	struct ts_series_in *in;
	struct lset *ls;
	struct ts_sample *smp;
	size_t n, cap;
	uint64_t n_first;  /* samples first sent in this batch */
	uint64_t n_resend; /* exact resends of earlier samples */
	uint64_t n_reject; /* samples the engine must reject */
	uint64_t n_new_k;  /* series whose birth batch this is */
};

static void batch_fini(struct batch *bt)
{
	free(bt->in);
	free(bt->ls);
	free(bt->smp);
	memset(bt, 0, sizeof *bt);
}

static struct ts_sample *entry_new(struct batch *bt, uint64_t k)
{
	assert_true(bt->n < bt->cap);
	size_t i = bt->n++;
	lset_make(k, &bt->ls[i]);
	bt->in[i].n_samples = 0;
	bt->in[i].samples = &bt->smp[i * SAMPLES_PER_ENTRY];
	return &bt->smp[i * SAMPLES_PER_ENTRY];
}

static void entry_add(struct batch *bt, int64_t t, uint64_t v)
{
	struct ts_series_in *e = &bt->in[bt->n - 1];
	assert_true(e->n_samples < SAMPLES_PER_ENTRY);
	bt->smp[(bt->n - 1) * SAMPLES_PER_ENTRY + e->n_samples] = (struct ts_sample){ t,
										      tu_f64(v) };
	e->n_samples++;
}

/* The extra (non in-order) samples of series k in batch b, in a fixed order. */
static size_t extras(uint64_t k, int64_t b, int64_t *ts, uint64_t *vs, int *kind)
{
	size_t n = 0;
	for (int j = 1; j <= MAX_DEFER; j++) {
		int64_t s = b - j;
		if (s >= 0 && live(k, s) && !gap(k, s) && defer_by(k, s) == j) {
			ts[n] = sample_t(k, s);
			vs[n] = value_bits(k, s);
			kind[n++] = 'O';
		}
	}
	if (!live(k, b))
		return n;
	uint64_t h = h4(k, b, 'R');
	if (h % 8 == 0) {
		int64_t s = b - 1 - (int64_t)((h >> 8) % 3);
		if (first_batch(k, s) < b) {
			ts[n] = sample_t(k, s);
			vs[n] = value_bits(k, s);
			kind[n++] = 'R';
		}
	}
	/* A conflicting sample far behind: rejected as too old, or as a conflict if the
	 * slot is still in memory. Only when the series surely has a recent sample. */
	if (h4(k, b, 'X') % 64 == 0 && b - birth(k) >= 40) {
		int recent = 0;
		for (int64_t s = b - 3; s < b; s++)
			recent |= first_batch(k, s) <= b - 1;
		if (recent) {
			ts[n] = sample_t(k, b - REJECT_BEHIND);
			vs[n] = REJECT_BITS;
			kind[n++] = 'X';
		}
	}
	return n;
}

static void gen_batch(int64_t b, struct batch *bt)
{
	uint64_t kn = kmax(b);
	if (bt->cap < 2 * kn) {
		batch_fini(bt);
		bt->cap = 2 * kn + 64;
		bt->in = calloc(bt->cap, sizeof *bt->in);
		bt->ls = calloc(bt->cap, sizeof *bt->ls);
		bt->smp = calloc(bt->cap * SAMPLES_PER_ENTRY, sizeof *bt->smp);
		assert_true(bt->in && bt->ls && bt->smp);
	}
	bt->b = b;
	bt->n = 0;
	bt->n_first = bt->n_resend = bt->n_reject = bt->n_new_k = 0;
	int64_t ts[8];
	uint64_t vs[8];
	int kind[8];
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t k = 0; k < kn; k++) {
			if (death(k) != NEVER && b >= death(k) + MAX_DEFER)
				continue;
			int in_order = live(k, b) && !gap(k, b) && !defer_by(k, b);
			size_t nx = extras(k, b, ts, vs, kind);
			int mode = (int)(h4(k, b, 'M') % 3);
			/* mode 0: [in-order, extras]; 1: [extras, in-order]; 2: in-order in pass 0,
			 * extras as a second entry of the same series in pass 1. */
			if (pass == 1 && (mode != 2 || nx == 0))
				continue;
			if (pass == 0 && !in_order && (mode == 2 || nx == 0))
				continue;
			if (pass == 0 && birth(k) == b)
				bt->n_new_k++;
			entry_new(bt, k);
			if (pass == 0 && in_order && mode != 1) {
				entry_add(bt, sample_t(k, b), value_bits(k, b));
				bt->n_first++;
			}
			if (pass == 1 || mode != 2) {
				for (size_t i = 0; i < nx; i++) {
					entry_add(bt, ts[i], vs[i]);
					if (kind[i] == 'O')
						bt->n_first++;
					else if (kind[i] == 'R')
						bt->n_resend++;
					else
						bt->n_reject++;
				}
			}
			if (pass == 0 && in_order && mode == 1) {
				entry_add(bt, sample_t(k, b), value_bits(k, b));
				bt->n_first++;
			}
		}
	}
	for (size_t i = 0; i < bt->n; i++) {
		bt->in[i].labels = bt->ls[i].l;
		bt->in[i].n_labels = bt->ls[i].n;
	}
}

/* ---- db options, temp dirs ------------------------------------------------------- */

static struct ts_db_opts crash_opts(void)
{
	struct ts_db_opts o;
	memset(&o, 0, sizeof o);
	o.sync = TS_WAL_SYNC_ALWAYS;
	o.partition_ms = PARTITION_MS;
	o.ooo_window_ms = OOO_WINDOW_MS;
	o.checkpoint_wal_bytes = 256u << 10;
	o.checkpoint_interval_ms = 200;
	o.flush_interval_ms = 50;
	o.max_open_partitions = 4; /* envs close and reopen under flushes and compactions */
	return o;
}

static struct ts_db_opts quiet_opts(void)
{
	/* Writer thread mostly idle: flushes and checkpoints happen when the test says. */
	struct ts_db_opts o = crash_opts();
	o.flush_interval_ms = 60000;
	o.checkpoint_interval_ms = 600000;
	o.checkpoint_wal_bytes = 1u << 30;
	return o;
}

/* A db directory "db" inside a new temporary directory (the db creates it). */
static void make_dir(char *out, size_t cap)
{
	tu_mkdtemp(out, cap, "crash.");
	strncat(out, "/db", cap - strlen(out) - 1);
}

/* Removes what make_dir() made. */
static void rm_dir(const char *db_dir)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", db_dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = 0;
	tu_rmtree(parent);
}

/* ---- verification ---------------------------------------------------------------- */

/* Result of checking a db against batches 0..L acknowledged. Plain data: it travels
 * through a pipe from the verifier child. */
struct vres {
	int rc;			    /* first API error, 0 if none */
	int failed;		    /* any check failed */
	char msg[1024];		    /* the first failure, precise */
	uint64_t n_series;	    /* returned by select */
	uint64_t n_series_expected; /* with at least one sample in batches <= L */
	uint64_t n_series_next;	    /* extra series allowed: first sample in L+1 */
	uint64_t n_stats_series;    /* ts_db_stats().n_series */
	uint64_t n_present;	    /* samples of batches <= L found */
	uint64_t n_expected;
	uint64_t n_next_present; /* samples first sent in L+1 found */
	uint64_t n_next_total;
	uint64_t n_expired_present; /* acknowledged samples shown in maybe-expired partitions */
	uint64_t n_unexpected, n_bad_value, n_order, n_bad_labels, n_dup_series;
	uint64_t n_partitions, wal_bytes, n_samples_total;
	uint64_t n_raw_dirs; /* entries of raw/ right after the recovery */
	uint64_t digest;
};

static void vfail(struct vres *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(struct vres *r, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

/* Series index from its labels: instance "host-NNNN:9100" and the metric name. */
static int64_t k_of(const struct ts_label *l, uint32_t n)
{
	int64_t inst = -1, name = -1;
	for (uint32_t i = 0; i < n; i++) {
		if (l[i].name_len == 8 && memcmp(l[i].name, "instance", 8) == 0 &&
		    l[i].value_len == 14 && memcmp(l[i].value, "host-", 5) == 0)
			inst = strtol(l[i].value + 5, NULL, 10);
		if (l[i].name_len == 8 && memcmp(l[i].name, "__name__", 8) == 0)
			for (int j = 0; j < N_NAMES; j++)
				if (l[i].value_len == strlen(names[j]) &&
				    memcmp(l[i].value, names[j], l[i].value_len) == 0)
					name = j;
	}
	if (inst < 0 || name < 0)
		return -1;
	return inst * N_NAMES + name;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3u;
	return h;
}

/* Samples of series k first sent in batches <= L. */
static uint64_t expected_of(uint64_t k, int64_t L)
{
	uint64_t n = 0;
	int64_t end = death(k) == NEVER ? L : (death(k) - 1 < L ? death(k) - 1 : L);
	for (int64_t s = birth(k); s <= end; s++)
		n += first_batch(k, s) <= L;
	return n;
}

/* Whether t lies in a partition that retention may have dropped: one ending at or
 * before `cutoff` (INT64_MIN: none). */
static int expired(int64_t t, int64_t cutoff)
{
	if (cutoff == INT64_MIN)
		return 0;
	int64_t bound = cutoff / PARTITION_MS * PARTITION_MS; /* the last boundary <= cutoff */
	return t < bound;
}

/* Samples of series k first sent in batches <= L that must be present: those outside
 * partitions that may have expired. */
static uint64_t expected_kept(uint64_t k, int64_t L, int64_t cutoff)
{
	uint64_t n = 0;
	int64_t end = death(k) == NEVER ? L : (death(k) - 1 < L ? death(k) - 1 : L);
	int64_t s0 = birth(k);
	if (cutoff != INT64_MIN) {
		/* Slots before this are all expired (jitter is under one step). */
		int64_t lo = (cutoff / PARTITION_MS * PARTITION_MS - T0_MS) / STEP_MS - 2;
		if (lo > s0)
			s0 = lo;
	}
	for (int64_t s = s0; s <= end; s++)
		n += first_batch(k, s) <= L && !expired(sample_t(k, s), cutoff);
	return n;
}

/* First sample of series k (batches <= L, outside maybe-expired partitions) that set
 * entry i lacks; describes it in r. */
static void find_missing(struct ts_series_set *set, size_t i, uint64_t k, int64_t L, int64_t cutoff,
			 struct vres *r)
{
	struct ts_iter *it;
	if (ts_iter_new(set, i, &it) != 0)
		return;
	int64_t end = death(k) == NEVER ? L : (death(k) - 1 < L ? death(k) - 1 : L);
	for (int64_t s = birth(k); s <= end; s++) {
		if (first_batch(k, s) > L || expired(sample_t(k, s), cutoff))
			continue;
		int64_t t = sample_t(k, s);
		int rc = ts_iter_seek(it, t);
		int64_t got_t = INT64_MIN;
		double v;
		if (rc == 1)
			ts_iter_at(it, &got_t, &v);
		if (got_t != t) {
			vfail(r,
			      "missing: series %" PRIu64 " slot %" PRId64 " t=%" PRId64
			      " (first sent in batch %" PRId64
			      ", defer %d, acknowledged up to %" PRId64
			      "); next sample found t=%" PRId64,
			      k, s, t, first_batch(k, s), defer_by(k, s), L, got_t);
			break;
		}
	}
	ts_iter_free(it);
}

/* Checks db against the workload: batches <= L acknowledged, L+1 maybe written, nothing
 * later. strict: L+1 was never sent. expected: samples first sent in batches <= L (the
 * caller's own count, checked against the workload's when nothing expired). cutoff:
 * partitions ending at or before it may have been dropped by retention (INT64_MIN:
 * none); their samples may be missing, and any shown must still be exact. */
static void verify_db(struct ts_db *db, int64_t L, int strict, uint64_t expected, int64_t cutoff,
		      struct vres *r)
{
	memset(r, 0, sizeof *r);
	r->digest = 0xcbf29ce484222325u;
	struct batch nb = { 0 };
	gen_batch(L + 1, &nb);
	r->n_next_total = strict ? 0 : nb.n_first;
	batch_fini(&nb);

	uint64_t kn = kmax(L + 1);
	uint8_t *seen = calloc(kn + 1, 1);
	uint8_t *acked = calloc(kn + 1, 1);	       /* k has a sample in batches <= L */
	uint64_t *kept = calloc(kn + 1, sizeof *kept); /* expected_kept(k, L, cutoff) */
	assert_true(seen && acked && kept);
	for (uint64_t k = 0; k < kmax(L); k++) {
		int any = 0;
		int64_t end = death(k) == NEVER ? L : (death(k) - 1 < L ? death(k) - 1 : L);
		for (int64_t s = birth(k); s <= end && !any; s++)
			any = first_batch(k, s) <= L;
		acked[k] = (uint8_t)any;
		r->n_series_expected += (uint64_t)any;
		kept[k] = any ? expected_kept(k, L, cutoff) : 0;
		r->n_expected += kept[k];
	}
	if (cutoff == INT64_MIN && r->n_expected != expected)
		vfail(r,
		      "bookkeeping: the batches sent %" PRIu64
		      " samples, the workload says %" PRIu64,
		      expected, r->n_expected);

	struct ts_matcher m = { TS_MATCH_RE, "__name__", ".+" };
	struct ts_series_set *set = NULL;
	char emsg[256] = "";
	int rc = ts_db_select(db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set, emsg, sizeof emsg);
	if (rc) {
		r->rc = rc;
		vfail(r, "ts_db_select: %s %s", ts_strerror(rc), emsg);
		goto out;
	}
	r->n_series = ts_series_set_len(set);
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_label *l;
		uint32_t nl;
		rc = ts_series_set_labels(set, i, &l, &nl);
		if (rc) {
			r->rc = rc;
			vfail(r, "ts_series_set_labels(%zu): %s", i, ts_strerror(rc));
			goto out;
		}
		int64_t ki = k_of(l, nl);
		char want[256], got[256];
		size_t off = 0;
		got[0] = 0;
		for (uint32_t j = 0; j < nl && off < sizeof got; j++)
			off += (size_t)snprintf(got + off, sizeof got - off, "%.*s=%.*s;",
						(int)l[j].name_len, l[j].name, (int)l[j].value_len,
						l[j].value);
		for (uint32_t j = 0; j < nl; j++)
			r->digest = fnv(fnv(r->digest, l[j].name, l[j].name_len), l[j].value,
					l[j].value_len);
		if (ki < 0 || (uint64_t)ki >= kn) {
			r->n_bad_labels++;
			vfail(r, "series %zu has labels never sent: %s", i, got);
			continue;
		}
		uint64_t k = (uint64_t)ki;
		lset_text(k, want, sizeof want);
		if (strcmp(want, got) != 0) {
			r->n_bad_labels++;
			vfail(r, "series %" PRIu64 ": labels %s, want %s", k, got, want);
		}
		if (seen[k]++) {
			r->n_dup_series++;
			vfail(r, "series %" PRIu64 " (%s) returned twice", k, got);
		}
		struct ts_iter *it;
		rc = ts_iter_new(set, i, &it);
		if (rc) {
			r->rc = rc;
			vfail(r, "ts_iter_new(%zu): %s", i, ts_strerror(rc));
			goto out;
		}
		int64_t prev = INT64_MIN;
		uint64_t n_here = 0;
		while ((rc = ts_iter_next(it)) == 1) {
			int64_t t;
			double v;
			ts_iter_at(it, &t, &v);
			uint64_t vb = tu_bits(v);
			r->n_samples_total++;
			r->digest = fnv(fnv(r->digest, &t, 8), &vb, 8);
			if (t <= prev) {
				r->n_order++;
				vfail(r, "series %" PRIu64 ": t=%" PRId64 " after t=%" PRId64, k, t,
				      prev);
			}
			prev = t;
			int64_t rel = t - T0_MS - (int64_t)(h4(k, 0, 'J') % 1000);
			int64_t s = rel >= 0 ? rel / STEP_MS : -1;
			int64_t fb = s >= 0 && sample_t(k, s) == t ? first_batch(k, s) : NEVER;
			if (fb > L + 1 || (strict && fb > L)) {
				r->n_unexpected++;
				vfail(r,
				      "series %" PRIu64 ": sample t=%" PRId64 " v=%016" PRIx64
				      " never acknowledged (slot %" PRId64
				      ", first sent in batch %" PRId64
				      ", acknowledged up to %" PRId64 ")",
				      k, t, vb, s, fb == NEVER ? (int64_t)-1 : fb, L);
				continue;
			}
			if (vb != value_bits(k, s)) {
				r->n_bad_value++;
				vfail(r,
				      "series %" PRIu64 " t=%" PRId64 ": value bits %016" PRIx64
				      ", sent %016" PRIx64,
				      k, t, vb, value_bits(k, s));
				continue;
			}
			if (fb == L + 1) {
				r->n_next_present++;
			} else if (expired(t, cutoff)) {
				r->n_expired_present++;
			} else {
				r->n_present++;
				n_here++;
			}
		}
		ts_iter_free(it);
		if (rc < 0) {
			r->rc = rc;
			vfail(r, "ts_iter_next(series %" PRIu64 "): %s", k, ts_strerror(rc));
			goto out;
		}
		if (!r->failed && n_here < kept[k])
			find_missing(set, i, k, L, cutoff, r);
	}
	for (uint64_t k = 0; k < kmax(L); k++) {
		if (!kept[k] || seen[k])
			continue;
		int64_t fb0 = NEVER;
		int64_t end = death(k) == NEVER ? L : (death(k) - 1 < L ? death(k) - 1 : L);
		for (int64_t s = birth(k); s <= end && fb0 > L; s++)
			if (first_batch(k, s) < fb0)
				fb0 = first_batch(k, s);
		char want[256];
		lset_text(k, want, sizeof want);
		vfail(r,
		      "series %" PRIu64 " (%s), first sample in batch %" PRId64
		      ", missing entirely (acknowledged up to %" PRId64 ")",
		      k, want, fb0, L);
	}
	for (uint64_t k = 0; k < kn; k++)
		r->n_series_next += seen[k] && !acked[k];
	if (r->n_present != r->n_expected)
		vfail(r, "%" PRIu64 " acknowledged samples present, %" PRIu64 " expected",
		      r->n_present, r->n_expected);
	if (r->n_next_present && r->n_next_present != r->n_next_total)
		vfail(r,
		      "batch %" PRId64 " (not acknowledged) half-visible: %" PRIu64
		      " of its %" PRIu64 " new samples present",
		      L + 1, r->n_next_present, r->n_next_total);
	if (r->n_series > r->n_series_expected + r->n_series_next)
		vfail(r, "%" PRIu64 " series, at most %" PRIu64 " expected", r->n_series,
		      r->n_series_expected + r->n_series_next);
	struct ts_db_stats st;
	ts_db_stats(db, &st);
	r->n_stats_series = st.n_series;
	r->n_partitions = st.n_partitions;
	r->wal_bytes = st.wal.bytes_on_disk;
	if (st.n_series < r->n_series)
		vfail(r, "ts_db_stats counts %" PRIu64 " series, select returned %" PRIu64,
		      st.n_series, r->n_series);
out:
	ts_series_set_free(set);
	free(seen);
	free(acked);
	free(kept);
}

/* On-disk invariants right after a recovery, read without the engine: every entry of
 * raw/ is a directory named "<start>_<end>" (decimal) for one partition width on a
 * partition boundary. So no interrupted compaction left <part>.compact or <part>.old
 * behind, and nothing else appeared. */
static void check_raw(const char *db_dir, struct vres *r)
{
	char raw[PATH_MAX];
	snprintf(raw, sizeof raw, "%s/" TS_FORMAT_RAW_DIR, db_dir);
	DIR *d = opendir(raw);
	if (!d) {
		vfail(r, "opendir %s: %s", raw, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		r->n_raw_dirs++;
		long long a = 0, b = 0;
		int used = -1;
		int ok = strspn(name, "0123456789_") == strlen(name) &&
			 sscanf(name, "%lld_%lld%n", &a, &b, &used) == 2 &&
			 used == (int)strlen(name) && a % PARTITION_MS == 0 &&
			 b == a + PARTITION_MS;
		char path[PATH_MAX + 256];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", raw, name);
		if (!ok)
			vfail(r, "raw/%s after recovery: not a partition directory name%s", name,
			      strstr(name, TS_FORMAT_PART_COMPACT_SUFFIX)
				      ? " (an interrupted compaction's rewrite was left)"
			      : strstr(name, TS_FORMAT_PART_OLD_SUFFIX)
				      ? " (an interrupted compaction's replaced copy was left)"
				      : "");
		else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
			vfail(r, "raw/%s after recovery: not a directory", name);
	}
	closedir(d);
}

static void assert_vres(const struct vres *r, const char *where)
{
	if (r->failed || r->rc)
		fail_msg("%s (seed %" PRIu64 "): %s", where, g_seed, r->msg);
}

/* ---- child processes --------------------------------------------------------------- */

enum { MSG_ACK = 1, MSG_ERR = 2, MSG_VRES = 3 };

struct msg {
	uint32_t kind;
	int32_t rc;
	int64_t b;
	char text[480];
};

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(9);
		c += w;
		n -= (size_t)w;
	}
}

static void child_err(int fd, int64_t b, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void child_err(int fd, int64_t b, int rc, const char *fmt, ...)
{
	struct msg m = { MSG_ERR, rc, b, "" };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m.text, sizeof m.text, fmt, ap);
	va_end(ap);
	send_all(fd, &m, sizeof m);
	_exit(3);
}

/* Appends batch b and checks the counters against the workload. Returns 0, or fills
 * why and returns the error. */
static int append_checked(struct ts_db *db, struct batch *bt, char *why, size_t why_len)
{
	struct ts_append_result res;
	int rc = ts_db_append(db, bt->in, bt->n, &res, NULL);
	if (rc) {
		snprintf(why, why_len, "ts_db_append(batch %" PRId64 "): %s", bt->b,
			 ts_strerror(rc));
		return rc;
	}
	uint64_t rej = res.n_out_of_order + res.n_conflict + res.n_too_old;
	if (res.n_appended + res.n_duplicate != bt->n_first + bt->n_resend || rej != bt->n_reject ||
	    res.n_invalid_series || res.n_too_future) {
		snprintf(why, why_len,
			 "batch %" PRId64 ": appended %" PRIu64 " + duplicate %" PRIu64
			 ", want %" PRIu64 "; rejected %" PRIu64 " (ooo %" PRIu64
			 " conflict %" PRIu64 " too old %" PRIu64 "), want %" PRIu64
			 "; invalid %" PRIu64 "; first_err: %.160s",
			 bt->b, res.n_appended, res.n_duplicate, bt->n_first + bt->n_resend, rej,
			 res.n_out_of_order, res.n_conflict, res.n_too_old, bt->n_reject,
			 res.n_invalid_series, res.first_err_msg);
		return TS_EINVALID;
	}
	return 0;
}

/* What the parent asks of one writer child. */
struct plan {
	const char *fp;	      /* failpoint to arm (tsdb/failpoint.h), or NULL */
	int fp_n;	      /* the hit that kills */
	int64_t retention_ms; /* 0: keep everything */
	uint64_t rng;	      /* the maintenance thread's random stream */
	int rare_ckpt;	      /* checkpoints seldom: the writer thread's flushes are plain */
};

struct maint {
	struct ts_db *db;
	uint64_t rng;
	int fd;
	int no_ckpt;
	pthread_mutex_t gate; /* held by the appender around each append */
};

/* Maintenance thread of a writer child: checkpoints and forced compactions at random
 * moments, besides those of the engine's own writer thread, so kills find them under
 * way. A compaction skips partitions with sealed chunks still in memory, and while
 * appends run there nearly always are some for the partition being written; so one
 * round in five holds appends back, checkpoints (which empties the queue) and then
 * compacts: every partition written since its last rewrite is rewritten. Rounds are
 * spaced so that the writer thread's plain flushes (no checkpoint due) happen too. Runs
 * until the process dies. */
static void *maint_main(void *arg)
{
	struct maint *mt = arg;
	for (;;) {
		uint64_t x = tu_rand(&mt->rng);
		struct timespec ts = { 0, (long)(5 + x % 40) * 1000000L };
		nanosleep(&ts, NULL);
		/* 0: checkpoint, 1: compact, 2: both with appends held back */
		int op = (int)((x >> 32) % 5), rc = 0;
		if (op > 2 || mt->no_ckpt)
			op = 1;
		const char *what = "ts_db_checkpoint";
		if (op == 2)
			pthread_mutex_lock(&mt->gate);
		if (op != 1)
			rc = ts_db_checkpoint(mt->db);
		if (rc == 0 && op != 0) {
			what = "ts_db_compact";
			rc = ts_db_compact(mt->db);
		}
		if (op == 2)
			pthread_mutex_unlock(&mt->gate);
		if (rc)
			child_err(mt->fd, -1, rc, "%s: %s", what, ts_strerror(rc));
	}
	return NULL;
}

/* Writer child: appends from batch `from` on, forever, acknowledging over fd. */
static void writer_child(const char *dir, int64_t from, const struct plan *pl, int fd)
{
	/* Recovery after kills warns by design; only errors are news here. */
	ts_log_set_level(TS_LOG_ERROR);
	if (pl->fp) {
		char v[96];
		snprintf(v, sizeof v, "%s:%d", pl->fp, pl->fp_n);
		setenv("TS_FAILPOINT", v, 1);
	}
	struct ts_db_opts o = crash_opts();
	o.retention_ms = pl->retention_ms;
	/* Every head group its own capture pass and index transaction, as a checkpoint
	 * at 100k series slices them (writer.c), so kills land between them. */
	ts__ckpt_slice_bytes = 1;
	if (pl->rare_ckpt) {
		o.checkpoint_interval_ms = 2000;
		o.checkpoint_wal_bytes = 16u << 20;
	}
	struct ts_db *db;
	int rc = ts_db_open(dir, &o, &db);
	if (rc)
		child_err(fd, from, rc, "ts_db_open: %s", ts_strerror(rc));
	static struct maint mt;
	mt.db = db;
	mt.rng = pl->rng;
	mt.fd = fd;
	mt.no_ckpt = pl->rare_ckpt;
	pthread_mutex_init(&mt.gate, NULL);
	pthread_t th;
	rc = pthread_create(&th, NULL, maint_main, &mt);
	if (rc)
		child_err(fd, from, -rc, "pthread_create: %s", strerror(rc));
	struct batch bt = { 0 };
	char why[480];
	for (int64_t b = from;; b++) {
		gen_batch(b, &bt);
		pthread_mutex_lock(&mt.gate);
		rc = append_checked(db, &bt, why, sizeof why);
		pthread_mutex_unlock(&mt.gate);
		if (rc)
			child_err(fd, b, rc, "%s", why);
		struct msg m = { MSG_ACK, 0, b, "" };
		send_all(fd, &m, sizeof m);
	}
}

/* Verifier child: recovers (keeping everything: retention 0; the writer thread idle, so
 * raw/ is seen as recovery left it), checks raw/, checkpoints the recovered state, checks
 * the data, reports, then _exit()s without closing. */
static void verifier_child(const char *dir, int64_t L, uint64_t expected, int64_t cutoff, int fd)
{
	ts_log_set_level(TS_LOG_ERROR);
	struct ts_db_opts o = quiet_opts();
	struct ts_db *db;
	struct vres r, raw;
	memset(&r, 0, sizeof r);
	memset(&raw, 0, sizeof raw);
	int rc = ts_db_open(dir, &o, &db);
	if (rc) {
		r.rc = rc;
		r.failed = 1;
		snprintf(r.msg, sizeof r.msg, "ts_db_open after kill: %s", ts_strerror(rc));
	} else {
		check_raw(dir, &raw);
		rc = ts_db_checkpoint(db);
		if (rc) {
			r.rc = rc;
			r.failed = 1;
			snprintf(r.msg, sizeof r.msg, "ts_db_checkpoint after recovery: %s",
				 ts_strerror(rc));
		} else {
			verify_db(db, L, 0, expected, cutoff, &r);
		}
		r.n_raw_dirs = raw.n_raw_dirs;
		if (raw.failed && !r.failed) {
			r.failed = 1;
			memcpy(r.msg, raw.msg, sizeof r.msg);
		}
	}
	send_all(fd, &r, sizeof r);
	_exit(0);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads up to n bytes, waiting at most until deadline_ms (INT64_MAX: until EOF). *eof
 * (may be NULL) is set when the writer side was closed. */
static size_t read_until(int fd, void *buf, size_t n, int64_t deadline_ms, int *eof)
{
	size_t got = 0;
	while (got < n) {
		int64_t left = deadline_ms == INT64_MAX ? -1 : deadline_ms - mono_ms();
		if (deadline_ms != INT64_MAX && left <= 0)
			break;
		struct pollfd p = { fd, POLLIN, 0 };
		int pr = poll(&p, 1, left < 0 ? -1 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && eof)
			*eof = 1;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static uint64_t parent_rng;

static uint64_t prand(void)
{
	return tu_mix64(parent_rng++ ^ g_seed);
}

/* ---- tests ------------------------------------------------------------------------- */

#define CRASH_ITERS_DEFAULT 80 /* about 35 s, sanitized or not: fsync-bound */

static int iters_from_env(void)
{
	const char *e = getenv("TS_CRASH_ITERS");
	int n = e && *e ? atoi(e) : CRASH_ITERS_DEFAULT;
	return n > 0 ? n : CRASH_ITERS_DEFAULT;
}

/* The failpoints the loop aims at (names: tsdb/failpoint.h), their group (c: flush and
 * checkpoint, k: compaction, r: retention) and the highest hit to kill at: a point
 * reached often is killed at later hits too, after some rounds went through. */
static const struct fp_def {
	const char *name;
	char group;
	int max_n;
} fps[] = {
	{ "flush.part_written", 'c', 6 },      { "flush.before_index", 'c', 3 },
	{ "ckpt.captured", 'c', 3 },	       { "ckpt.before_index", 'c', 3 },
	{ "ckpt.before_truncate", 'c', 3 },    { "ckpt.pass", 'c', 2 },
	{ "compact.rewritten", 'k', 3 },       { "compact.renamed_old", 'k', 3 },
	{ "compact.renamed_new", 'k', 3 },     { "compact.synced", 'k', 3 },
	{ "compact.before_release", 'k', 3 },  { "dir.files_removed", 'k', 4 },
	{ "cold.slice_written", 'k', 3 },      { "cold.switched", 'k', 3 },
	{ "retention.before_remove", 'r', 2 }, { "retention.removed", 'r', 2 },
};
#define N_FPS (sizeof fps / sizeof fps[0])
#define FP_WAIT_MS 2000	  /* an armed child not dead by then is killed */
#define KEEP_SLOTS 360	  /* retention keeps about this much behind the acknowledged data */
#define KEEP_MIN_SLOTS 40 /* and never less: appends stay well inside it */

/* Start of the partition holding t (t >= 0). */
static int64_t part_floor(int64_t t)
{
	return t / PARTITION_MS * PARTITION_MS;
}

/* Ends of the partitions on disk that end at or before `limit`, sorted; returns how many
 * (at most cap). */
static size_t part_ends(const char *db_dir, int64_t limit, int64_t *ends, size_t cap)
{
	char raw[PATH_MAX];
	snprintf(raw, sizeof raw, "%s/" TS_FORMAT_RAW_DIR, db_dir);
	DIR *d = opendir(raw);
	size_t n = 0;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < cap) {
		long long a, b;
		int used = -1;
		if (sscanf(e->d_name, "%lld_%lld%n", &a, &b, &used) == 2 &&
		    used == (int)strlen(e->d_name) && b <= limit)
			ends[n++] = b;
	}
	closedir(d);
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && ends[j - 1] > ends[j]; j--) {
			int64_t x = ends[j];
			ends[j] = ends[j - 1];
			ends[j - 1] = x;
		}
	return n;
}

static void test_kill9_loop(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	make_dir(dir, sizeof dir);
	int iters = iters_from_env();
	int64_t L = -1;	       /* last acknowledged batch */
	uint64_t expected = 0; /* samples first sent in batches <= L */
	int64_t max_delay = 300;
	int64_t cutoff = INT64_MIN;    /* the latest retention cutoff given to a child */
	int64_t cutoff_hi = INT64_MIN; /* the highest any child may have applied */
	unsigned n_next_whole = 0, n_next_none = 0, n_next_partial = 0, n_zero_progress = 0;
	unsigned fp_armed[N_FPS] = { 0 }, fp_fired[N_FPS] = { 0 }, n_fired = 0;
	unsigned n_retention = 0, n_fp_iters = 0;
	uint64_t max_raw = 0;
	int64_t t_start = mono_ms();
	struct batch bt = { 0 };
	print_message("kill9: seed %" PRIu64 " (TS_SEED), %d iterations (TS_CRASH_ITERS), dir %s\n",
		      g_seed, iters, dir);
	for (int iter = 0; iter < iters; iter++) {
		/* Retention: a cutoff on a partition boundary, KEEP_SLOTS behind the data (or
		 * past the oldest partitions when aiming at retention), never fewer than
		 * KEEP_MIN_SLOTS behind, never going back. */
		int64_t lim = L + 1 - KEEP_MIN_SLOTS >= 0
				      ? part_floor(T0_MS + (L + 1 - KEEP_MIN_SLOTS) * STEP_MS)
				      : INT64_MIN;
		int64_t want = L + 1 - KEEP_SLOTS >= 0
				       ? part_floor(T0_MS + (L + 1 - KEEP_SLOTS) * STEP_MS)
				       : INT64_MIN;
		int64_t ends[512];
		size_t n_old = lim == INT64_MIN ? 0 : part_ends(dir, lim, ends, 512);

		/* The kill: a random delay in 4 iterations of 10, else a failpoint of the
		 * groups in turn (retention only when a partition is old enough to expire). */
		int fp = -1, fp_n = 0;
		int64_t delay;
		if (prand() % 10 >= 4) {
			char g = "ckr"[n_fp_iters++ % 3];
			if (g == 'r' && n_old == 0)
				g = prand() % 2 ? 'c' : 'k';
			size_t in_g = 0;
			for (size_t i = 0; i < N_FPS; i++)
				in_g += fps[i].group == g;
			size_t pick = prand() % in_g;
			for (size_t i = 0; i < N_FPS; i++)
				if (fps[i].group == g && pick-- == 0)
					fp = (int)i;
			int max_n = fps[fp].max_n;
			if (fps[fp].group == 'r') {
				/* Expire the oldest one or two partitions on disk. */
				max_n = n_old < 2 ? 1 : 2;
				fp_n = 1 + (int)(prand() % (uint64_t)max_n);
				if (ends[fp_n - 1] > want)
					want = ends[fp_n - 1];
			} else {
				fp_n = 1 + (int)(prand() % (uint64_t)max_n);
			}
			fp_armed[fp]++;
			delay = FP_WAIT_MS;
		} else {
			/* One kill in five lands early: in recovery or the first appends. */
			delay = prand() % 5 == 0 ? (int64_t)(prand() % 25)
						 : (int64_t)(prand() % (uint64_t)max_delay);
		}
		if (want > lim)
			want = lim;
		if (want > cutoff)
			cutoff = want;
		/* A plain flush (no checkpoint) is the writer thread's flush between two
		 * checkpoints; aiming at one, checkpoint seldom. */
		struct plan pl = { fp >= 0 ? fps[fp].name : NULL, fp_n, 0, prand(),
				   fp >= 0 && strncmp(fps[fp].name, "flush.", 6) == 0 };
		int64_t wall0 = wall_ms();
		if (cutoff != INT64_MIN)
			pl.retention_ms = wall0 - cutoff;
		n_retention += n_old > 0 && ends[0] <= cutoff;

		int fds[2];
		assert_int_equal(pipe(fds), 0);
		int64_t t0 = mono_ms();
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			writer_child(dir, L + 1, &pl, fds[1]);
		}
		close(fds[1]);
		int64_t L0 = L;
		struct msg m;
		char err[512] = "";
		int eof = 0;
		for (;;) {
			size_t got = read_until(fds[0], &m, sizeof m, t0 + delay, &eof);
			if (got == 0)
				break;
			if (got < sizeof m) /* the rest of a record that straddled the deadline */
				got += read_until(fds[0], (char *)&m + got, sizeof m - got,
						  INT64_MAX, NULL);
			assert_int_equal(got, sizeof m);
			if (m.kind == MSG_ERR && !err[0])
				snprintf(err, sizeof err,
					 "writer child, batch %" PRId64 ": %s (%s)", m.b, m.text,
					 ts_strerror(m.rc));
			if (m.kind == MSG_ACK) {
				assert_int_equal(m.b, L + 1);
				L = m.b;
			}
		}
		/* EOF before the deadline: the child died by itself (a failpoint, or an
		 * error it reported). */
		int64_t lived = mono_ms() - t0;
		if (!eof)
			kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (pl.retention_ms) {
			int64_t hi = wall_ms() - pl.retention_ms +
				     60000; /* a minute of clock slack */
			if (hi > cutoff_hi)
				cutoff_hi = hi;
		}
		while (read_until(fds[0], &m, sizeof m, INT64_MAX, NULL) == sizeof m) {
			if (m.kind == MSG_ERR && !err[0])
				snprintf(err, sizeof err,
					 "writer child, batch %" PRId64 ": %s (%s)", m.b, m.text,
					 ts_strerror(m.rc));
			if (m.kind == MSG_ACK) {
				assert_int_equal(m.b, L + 1);
				L = m.b;
			}
		}
		close(fds[0]);
		if (err[0])
			fail_msg("iteration %d (seed %" PRIu64 "): %s", iter, g_seed, err);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			fail_msg("iteration %d: writer child ended by itself (status %d)", iter,
				 st);
		if (eof && fp < 0)
			fail_msg("iteration %d: writer child killed, not by the test (no failpoint "
				 "armed)",
				 iter);
		int fired = eof && fp >= 0;
		if (fired) {
			fp_fired[fp]++;
			n_fired++;
		}
		for (int64_t b = L0 + 1; b <= L; b++) {
			gen_batch(b, &bt);
			expected += bt.n_first;
		}
		if (L == L0)
			n_zero_progress++;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			verifier_child(dir, L, expected, cutoff_hi, fds[1]);
		}
		close(fds[1]);
		struct vres r;
		size_t got = read_until(fds[0], &r, sizeof r, INT64_MAX, NULL);
		close(fds[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (got != sizeof r)
			fail_msg("iteration %d: verifier child died (status %d)", iter, st);
		if (r.n_next_present == 0)
			n_next_none++;
		else if (r.n_next_present == r.n_next_total)
			n_next_whole++;
		else
			n_next_partial++;
		if (r.n_raw_dirs > max_raw)
			max_raw = r.n_raw_dirs;
		char how[96];
		if (fp < 0)
			snprintf(how, sizeof how, "killed after %3" PRId64 " ms", lived);
		else
			snprintf(how, sizeof how, "%s:%d %s %" PRId64 " ms", fps[fp].name, fp_n,
				 fired ? "fired after" : "not reached, killed after", lived);
		print_message("kill9 %3d: %s, acked %5" PRId64 " (+%" PRId64 "), batch %" PRId64
			      " %s, %" PRIu64 " series, %" PRIu64 " samples (%" PRIu64
			      " of expired partitions), %" PRIu64 " partitions, wal %" PRIu64
			      " KiB\n",
			      iter, how, L, L - L0, L + 1,
			      r.n_next_present == 0		   ? "absent"
			      : r.n_next_present == r.n_next_total ? "whole"
								   : "PARTIAL",
			      r.n_series, r.n_samples_total, r.n_expired_present, r.n_partitions,
			      r.wal_bytes >> 10);
		char where[160];
		snprintf(where, sizeof where, "kill iteration %d (%s)", iter, how);
		assert_vres(&r, where);
	}
	print_message("kill9: %d kills in %" PRId64 " ms; last acked batch %" PRId64 ", %" PRIu64
		      " samples; unacknowledged next batch whole %u, absent %u, "
		      "partial %u; %u kills before any ack; %u children had partitions to expire; "
		      "at most %" PRIu64 " partition directories\n",
		      iters, mono_ms() - t_start, L, expected, n_next_whole, n_next_none,
		      n_next_partial, n_zero_progress, n_retention, max_raw);
	unsigned group_fired[3] = { 0 };
	for (size_t i = 0; i < N_FPS; i++) {
		print_message("kill9: failpoint %-24s armed %2u, fired %2u\n", fps[i].name,
			      fp_armed[i], fp_fired[i]);
		group_fired[fps[i].group == 'c' ? 0 : fps[i].group == 'k' ? 1 : 2] += fp_fired[i];
	}
	/* The kills must land in checkpoints, compactions and retention by design. With
	 * fewer iterations a group may simply not have been picked. */
	if (iters >= 40) {
		if (!group_fired[0] || !group_fired[1] || !group_fired[2])
			fail_msg("failpoints fired: flush/checkpoint %u, compaction %u, retention "
				 "%u; each group must have fired (seed %" PRIu64 ")",
				 group_fired[0], group_fired[1], group_fired[2], g_seed);
		if (n_fired < (unsigned)iters / 4)
			fail_msg("only %u of %d kills were failpoints (seed %" PRIu64 ")", n_fired,
				 iters, g_seed);
	}

	/* Finally in-process: recover, check, close cleanly, reopen, check again. */
	struct ts_db_opts o = quiet_opts();
	struct ts_db *db;
	int rc = ts_db_open(dir, &o, &db);
	assert_int_equal(rc, 0);
	struct vres r1, r2;
	memset(&r1, 0, sizeof r1);
	check_raw(dir, &r1);
	assert_vres(&r1, "raw/ after the final recovery");
	verify_db(db, L, 0, expected, cutoff_hi, &r1);
	assert_vres(&r1, "final recovery");
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	verify_db(db, L, 0, expected, cutoff_hi, &r2);
	assert_vres(&r2, "reopen after clean close");
	assert_int_equal(r1.digest, r2.digest);
	assert_int_equal(ts_db_close(db), 0);
	batch_fini(&bt);
	rm_dir(dir);
}

static uint64_t append_range(struct ts_db *db, int64_t from, int64_t to)
{
	struct batch bt = { 0 };
	uint64_t n = 0;
	char why[480];
	for (int64_t b = from; b < to; b++) {
		gen_batch(b, &bt);
		int rc = append_checked(db, &bt, why, sizeof why);
		if (rc)
			fail_msg("seed %" PRIu64 ": %s", g_seed, why);
		n += bt.n_first;
	}
	batch_fini(&bt);
	return n;
}

static void test_clean_close_reopen(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	make_dir(dir, sizeof dir);
	struct ts_db_opts o = quiet_opts();
	o.sync = TS_WAL_SYNC_NEVER; /* same durability under kill -9; faster */
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	const int64_t n = 400; /* crosses partitions; chunks cut at 120 samples */
	uint64_t expected = append_range(db, 0, n);
	struct vres r1, r2;
	verify_db(db, n - 1, 1, expected, INT64_MIN, &r1);
	assert_vres(&r1, "before close");
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	verify_db(db, n - 1, 1, expected, INT64_MIN, &r2);
	assert_vres(&r2, "after clean close and reopen");
	assert_int_equal(r1.n_samples_total, r2.n_samples_total);
	assert_int_equal(r1.digest, r2.digest);
	assert_int_equal(ts_db_close(db), 0);
	rm_dir(dir);
}

static void test_checkpoint_reopen(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	make_dir(dir, sizeof dir);
	struct ts_db_opts o = quiet_opts();
	const int64_t n1 = 250, n2 = 300;
	uint64_t exp1 = 0, exp2 = 0;
	struct batch bt = { 0 };
	for (int64_t b = 0; b < n2; b++) {
		gen_batch(b, &bt);
		exp2 += bt.n_first;
		if (b < n1)
			exp1 += bt.n_first;
	}
	batch_fini(&bt);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Child: append, checkpoint (reads must not change), append more, crash. */
		close(fds[0]);
		struct ts_db *db;
		struct vres r[3];
		memset(r, 0, sizeof r);
		int rc = ts_db_open(dir, &o, &db);
		if (rc)
			child_err(fds[1], 0, rc, "ts_db_open: %s", ts_strerror(rc));
		char why[480];
		struct batch cb = { 0 };
		for (int64_t b = 0; b < n2; b++) {
			if (b == n1) {
				verify_db(db, n1 - 1, 1, exp1, INT64_MIN, &r[0]);
				rc = ts_db_checkpoint(db);
				if (rc)
					child_err(fds[1], b, rc, "ts_db_checkpoint: %s",
						  ts_strerror(rc));
				verify_db(db, n1 - 1, 1, exp1, INT64_MIN, &r[1]);
			}
			gen_batch(b, &cb);
			rc = append_checked(db, &cb, why, sizeof why);
			if (rc)
				child_err(fds[1], b, rc, "%s", why);
		}
		verify_db(db, n2 - 1, 1, exp2, INT64_MIN, &r[2]);
		struct ts_db_stats st;
		ts_db_stats(db, &st);
		r[1].n_partitions = st.n_checkpoints; /* reused slot: checkpoints done */
		struct msg m = { MSG_VRES, 0, 0, "" };
		send_all(fds[1], &m, sizeof m);
		send_all(fds[1], r, sizeof r);
		_exit(0);
	}
	close(fds[1]);
	struct msg m;
	struct vres r[3];
	size_t got = read_until(fds[0], &m, sizeof m, INT64_MAX, NULL);
	assert_int_equal(got, sizeof m);
	if (m.kind == MSG_ERR)
		fail_msg("checkpoint child (seed %" PRIu64 "): %s", g_seed, m.text);
	assert_int_equal(read_until(fds[0], r, sizeof r, INT64_MAX, NULL), sizeof r);
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_vres(&r[0], "before ts_db_checkpoint");
	assert_vres(&r[1], "after ts_db_checkpoint");
	assert_vres(&r[2], "after checkpoint and more appends");
	assert_int_equal(r[0].digest, r[1].digest);
	assert_true(r[1].n_partitions >= 1);

	/* Recover from the checkpoint + WAL tail the child left (it never closed). */
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	struct vres a, b2;
	verify_db(db, n2 - 1, 1, exp2, INT64_MIN, &a);
	assert_vres(&a, "recovery from checkpoint + WAL");
	assert_int_equal(a.digest, r[2].digest);
	/* And a checkpoint of the recovered state, then a crash-free reopen. */
	assert_int_equal(ts_db_checkpoint(db), 0);
	verify_db(db, n2 - 1, 1, exp2, INT64_MIN, &b2);
	assert_vres(&b2, "checkpoint after recovery");
	assert_int_equal(a.digest, b2.digest);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	verify_db(db, n2 - 1, 1, exp2, INT64_MIN, &b2);
	assert_vres(&b2, "reopen after checkpoint and close");
	assert_int_equal(a.digest, b2.digest);
	assert_int_equal(ts_db_close(db), 0);
	rm_dir(dir);
}

/* In a child: opens a db in `dir` with TS_FAILPOINT = env (NULL: unset), then
 * checkpoints n times, writing one byte to fd after each; then closes it. Exit status 0,
 * or the signal that killed it. */
static int failpoint_child(const char *dir, const char *env, int n, int fd)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ts_log_set_level(TS_LOG_ERROR);
		if (env)
			setenv("TS_FAILPOINT", env, 1);
		else
			unsetenv("TS_FAILPOINT");
		struct ts_db_opts o = quiet_opts();
		struct ts_db *db;
		if (ts_db_open(dir, &o, &db) != 0)
			_exit(2);
		if (!env) /* read at open only: arming it now changes nothing */
			setenv("TS_FAILPOINT", "ckpt.before_truncate:1", 1);
		for (int i = 0; i < n; i++) {
			if (ts_db_checkpoint(db) != 0)
				_exit(3);
			send_all(fd, "x", 1);
		}
		_exit(ts_db_close(db) == 0 ? 0 : 4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st) ? 100 + WEXITSTATUS(st) : 0;
}

/* TS_FAILPOINT: "<name>:<n>" kills at the n-th hit and not before; anything malformed,
 * and arming after open, leave the points inert. */
static void test_failpoint(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	make_dir(dir, sizeof dir);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	char buf[64];
	assert_int_equal(failpoint_child(dir, "ckpt.before_truncate:3", 5, fds[1]), SIGKILL);
	assert_int_equal(read(fds[0], buf, sizeof buf), 2); /* two checkpoints went through */
	assert_int_equal(failpoint_child(dir, "ckpt.captured:1", 5, fds[1]), SIGKILL);
	static const char *const inert[] = { "ckpt.before_truncate:0",
					     "ckpt.before_truncate",
					     ":1",
					     "ckpt.before_truncate:1x",
					     "ckpt.before_truncat:1",
					     "",
					     NULL };
	for (size_t i = 0; i < sizeof inert / sizeof inert[0]; i++) {
		if (failpoint_child(dir, inert[i], 3, fds[1]) != 0)
			fail_msg("TS_FAILPOINT=%s: the child did not survive",
				 inert[i] ? inert[i] : "(unset, armed after open)");
		assert_int_equal(read(fds[0], buf, sizeof buf), 3);
	}
	close(fds[0]);
	close(fds[1]);
	/* What the kills left recovers. */
	struct ts_db_opts o = quiet_opts();
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	assert_int_equal(ts_db_close(db), 0);
	rm_dir(dir);
}

/* The workload generator itself: deterministic, and its bookkeeping adds up. */
static void test_workload(void **state)
{
	(void)state;
	struct batch a = { 0 }, b = { 0 };
	uint64_t first = 0, special = 0, ooo = 0;
	for (int64_t i = 0; i < 600; i++) {
		gen_batch(i, &a);
		gen_batch(i, &b);
		assert_int_equal(a.n, b.n);
		assert_memory_equal(a.smp, b.smp, a.n * SAMPLES_PER_ENTRY * sizeof *a.smp);
		first += a.n_first;
		for (size_t e = 0; e < a.n; e++)
			for (uint32_t j = 0; j < a.in[e].n_samples; j++) {
				uint64_t v = tu_bits(a.in[e].samples[j].v);
				special += v == TS_STALE_NAN_BITS || v == tu_bits(-0.0) ||
					   (v & 0x7ff0000000000000u) == 0x7ff0000000000000u;
			}
		for (uint64_t k = 0; k < kmax(i); k++)
			ooo += first_batch(k, i) != NEVER && first_batch(k, i) > i;
	}
	uint64_t sum = 0;
	for (uint64_t k = 0; k < kmax(599); k++)
		sum += expected_of(k, 599);
	/* Samples deferred past batch 599 are not counted by either side. */
	assert_int_equal(first, sum);
	assert_true(special > 100);
	assert_true(ooo > 100);
	batch_fini(&a);
	batch_fini(&b);
}

int main(void)
{
	g_seed = tu_seed("test_crash", g_seed);
	unsetenv("TS_FAILPOINT"); /* armed only in writer children */
	parent_rng = g_seed;
	ts_log_set_level(TS_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workload),	   cmocka_unit_test(test_failpoint),
		cmocka_unit_test(test_clean_close_reopen), cmocka_unit_test(test_checkpoint_reopen),
		cmocka_unit_test(test_kill9_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
