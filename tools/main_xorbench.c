/*
 * xorbench - micro-benchmark of the XOR chunk codec on generated, realistic data.
 *
 * Usage: xorbench [series [samples_per_series [seed]]]   (defaults 10000 120 1)
 *
 * Data (deterministic for a seed): every series is scraped every 15 s with a few ms of
 * jitter (uniform -5..+5 ms) and starts at its own offset. Half the series are counters
 * (integers growing by 0..19 per scrape, a quarter of them idle at times), half are
 * gauges (a random walk with steps of +-0.00..10.00). Each row is timed several times and
 * the fastest run is reported:
 *   encode/scrape  append in scrape order: one sample to every series, then the next
 *                  (what a head does), buffers growing from empty
 *   encode/series  all samples of one series, then the next
 *   decode         ts_xor_next over every chunk, summing values
 *   seek           ts_xor_seek to the middle of every chunk, per sample skipped
 * Prints ns/sample and bytes/sample. Times are this thread's CPU time (so a busy
 * machine preempting the benchmark does not inflate them; cache and memory contention
 * still do), best of 15 runs. Not a test: numbers depend on the machine.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/xor.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t bitsof(double d)
{
	uint64_t b;
	memcpy(&b, &d, 8);
	return b;
}

static double dbits(uint64_t b)
{
	double d;
	memcpy(&d, &b, 8);
	return d;
}

struct set {
	const char *name;
	size_t first, n_series; /* series [first, first + n_series) */
};

static size_t n_series, n_samples;
static int64_t *ts_ms;
static uint64_t *vals;
static struct ts_xor_enc *encs;

static void generate(uint64_t seed)
{
	rng_state = seed;
	ts_ms = malloc(n_series * n_samples * sizeof *ts_ms);
	vals = malloc(n_series * n_samples * sizeof *vals);
	encs = calloc(n_series, sizeof *encs);
	if (!ts_ms || !vals || !encs) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (size_t s = 0; s < n_series; s++) {
		int64_t t = 1700000000000 + (int64_t)(rnd() % 15000);
		int counter = s < n_series / 2;
		int idle = counter && rnd() % 4 == 0;
		double v = counter ? (double)(rnd() % 100000) : (double)(rnd() % 10000) / 100.0;
		for (size_t i = 0; i < n_samples; i++) {
			ts_ms[s * n_samples + i] = t + (int64_t)(rnd() % 11) - 5;
			t += 15000;
			if (counter) {
				if (!idle || rnd() % 3 == 0)
					v += (double)(rnd() % 20);
			} else {
				v += ((double)(rnd() % 2001) - 1000.0) / 100.0;
			}
			vals[s * n_samples + i] = bitsof(v);
		}
	}
}

static void reset_encs(const struct set *st)
{
	for (size_t s = st->first; s < st->first + st->n_series; s++) {
		ts_xor_enc_fini(&encs[s]);
		ts_xor_enc_init(&encs[s]);
	}
}

static void check(int rc)
{
	if (rc != 0 && rc != 1) {
		fprintf(stderr, "codec error %d\n", rc);
		exit(1);
	}
}

static double bench_encode_scrape(const struct set *st)
{
	reset_encs(st);
	double t0 = now_ns();
	for (size_t i = 0; i < n_samples; i++)
		for (size_t s = st->first; s < st->first + st->n_series; s++)
			check(ts_xor_append(&encs[s], ts_ms[s * n_samples + i],
					    vals[s * n_samples + i]));
	return now_ns() - t0;
}

static double bench_encode_series(const struct set *st)
{
	reset_encs(st);
	double t0 = now_ns();
	for (size_t s = st->first; s < st->first + st->n_series; s++) {
		const int64_t *t = ts_ms + s * n_samples;
		const uint64_t *v = vals + s * n_samples;
		for (size_t i = 0; i < n_samples; i++)
			check(ts_xor_append(&encs[s], t[i], v[i]));
	}
	return now_ns() - t0;
}

static double sink;

static double bench_decode(const struct set *st)
{
	double sum = 0;
	size_t got = 0;
	double t0 = now_ns();
	for (size_t s = st->first; s < st->first + st->n_series; s++) {
		struct ts_xor_it it;
		ts_xor_it_init(&it, encs[s].buf, ts_xor_enc_bytes(&encs[s]));
		int rc;
		while ((rc = ts_xor_next(&it)) == 1) {
			sum += dbits(it.v);
			got++;
		}
		check(rc);
	}
	double dt = now_ns() - t0;
	if (got != st->n_series * n_samples) {
		fprintf(stderr, "decoded %zu samples, want %zu\n", got, st->n_series * n_samples);
		exit(1);
	}
	sink += sum;
	return dt;
}

static double bench_seek(const struct set *st)
{
	double t0 = now_ns();
	for (size_t s = st->first; s < st->first + st->n_series; s++) {
		struct ts_xor_it it;
		ts_xor_it_init(&it, encs[s].buf, ts_xor_enc_bytes(&encs[s]));
		check(ts_xor_seek(&it, ts_ms[s * n_samples + n_samples / 2]));
		sink += (double)it.t;
	}
	return now_ns() - t0;
}

static double best(double (*fn)(const struct set *), const struct set *st, int reps)
{
	double b = 1e300;
	for (int r = 0; r < reps; r++) {
		double t = fn(st);
		if (t < b)
			b = t;
	}
	return b;
}

int main(int argc, char **argv)
{
	n_series = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000;
	n_samples = argc > 2 ? strtoull(argv[2], NULL, 10) : 120;
	uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
	if (n_series < 2 || n_samples < 2 || n_samples > TS_XOR_MAX_SAMPLES) {
		fprintf(stderr, "usage: xorbench [series>=2 [samples 2..65535 [seed]]]\n");
		return 2;
	}
	generate(seed);
	struct set sets[3] = {
		{ "counters", 0, n_series / 2 },
		{ "gauges", n_series / 2, n_series - n_series / 2 },
		{ "all", 0, n_series },
	};
	printf("xorbench: %zu series x %zu samples, seed %" PRIu64 ", 15 s scrapes +-5 ms\n",
	       n_series, n_samples, seed);
	printf("%-9s %10s %13s %13s %9s %9s\n", "data", "bytes/smp", "enc/scrape ns",
	       "enc/series ns", "dec ns", "seek ns");
	const int reps = 15;
	for (int k = 0; k < 3; k++) {
		const struct set *st = &sets[k];
		double n = (double)(st->n_series * n_samples);
		double es = best(bench_encode_series, st, reps) / n;
		double ec = best(bench_encode_scrape, st, reps) / n;
		double dec = best(bench_decode, st, reps) / n;
		double sk = best(bench_seek, st, reps) /
			    (double)(st->n_series * (n_samples / 2 + 1));
		size_t bytes = 0;
		for (size_t s = st->first; s < st->first + st->n_series; s++)
			bytes += ts_xor_enc_bytes(&encs[s]);
		printf("%-9s %10.3f %13.2f %13.2f %9.2f %9.2f\n", st->name, (double)bytes / n, ec,
		       es, dec, sk);
	}
	for (size_t s = 0; s < n_series; s++)
		ts_xor_enc_fini(&encs[s]);
	free(encs);
	free(ts_ms);
	free(vals);
	return sink == 42.4242 ? 1 : 0; /* keeps the sums alive */
}
