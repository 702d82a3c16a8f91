/*
 * coldbench - micro-benchmark of the cold block codec (storage/cold.h) against XOR
 * chunks (storage/xor.h) on generated, realistic data.
 *
 * Usage: coldbench [--targets N] [--hosts N] [--samples N[,N...]] [--levels L[,L...]]
 *                  [--reps N] [--seed N]
 *   defaults: 8 node targets, 400 cpu hosts, samples 100,400,1000, levels 1,3,5,7,9,12,15,19,
 *   7 reps, seed 1.
 *
 * Data (deterministic for a seed; values are what strtod gives for the printed decimal):
 *   node  --targets targets of 507 series, ids consecutive per target, scraped every 15 s
 *         at the target's own offset with -3..+3 ms jitter (all its series share the
 *         timestamps), 0.2 % of scrapes missed. 40 % constants, 35 % counters (increments
 *         drawn exponentially around a per-series rate, at 0, 2 or 3 decimals, reset to 0
 *         when the target "reboots", 0.05 % of scrapes), 25 % gauges (random walk with
 *         steps of ~1 % of the value, at 0..3 decimals).
 *   cpu   --hosts hosts of 10 series (TSBS cpu-only usage_*): one point every 10 s on an
 *         exact grid shared by every host, integer random walks clamped to 0..100.
 * For each dataset and samples-per-series count it prints:
 *   xor   XOR chunks of 120 samples (ts_xor_append): payload bytes/sample, and with the
 *         32-byte chunk record header (storage/chunk.h) each chunk carries on disk;
 *         decode ns/sample (ts_xor_next over every chunk into arrays).
 *   cold  blocks of consecutive series cut at ~64 KiB of raw body: bytes/sample of whole
 *         blocks (header included) at TS_COLD_LEVEL_DEFAULT; ns/sample of ts_cold_open
 *         over all blocks, of ts_cold_decode of every series, and their sum; the mix of
 *         value kinds.
 *   per level: bytes/sample and encode ns/sample (ts_cold_encode of all blocks).
 * Times are this thread's CPU time, best of --reps runs. Not a test: numbers depend on
 * the machine. Build in Release.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/cold.h"
#include "storage/mem.h"
#include "storage/xor.h"

#define NODE_SERIES 507
#define CPU_FIELDS 10
#define XOR_CHUNK 120
#define BLOCK_RAW (64 << 10)

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double unif(void)
{
	return (double)(rnd() >> 11) * 0x1p-53;
}

/* Exponential with mean mu. */
static double expo(double mu)
{
	return -mu * __builtin_log(1.0 - unif());
}

/* Standard normal (Box-Muller). */
static double gauss(void)
{
	return __builtin_sqrt(-2.0 * __builtin_log(1.0 - unif())) *
	       __builtin_cos(6.283185307179586 * unif());
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

static const double pow10_tab[4] = { 1, 10, 100, 1000 };

static void die(const char *what, int rc)
{
	fprintf(stderr, "coldbench: %s failed: %d\n", what, rc);
	exit(1);
}

/* A dataset: n_series series of up to n_samples samples (n[s] each). */
struct data {
	const char *name;
	size_t n_series, cap;
	uint32_t *n;
	int64_t *t; /* series s at t + s * cap */
	uint64_t *v;
	uint64_t total;
};

static void data_alloc(struct data *d, const char *name, size_t n_series, size_t cap)
{
	d->name = name;
	d->n_series = n_series;
	d->cap = cap;
	d->n = calloc(n_series, sizeof *d->n);
	d->t = malloc(n_series * cap * sizeof *d->t);
	d->v = malloc(n_series * cap * sizeof *d->v);
	d->total = 0;
	if (!d->n || !d->t || !d->v) {
		fprintf(stderr, "coldbench: out of memory\n");
		exit(1);
	}
}

static void data_free(struct data *d)
{
	free(d->n);
	free(d->t);
	free(d->v);
}

struct node_series {
	int kind; /* 0 const, 1 counter, 2 gauge */
	int dec;
	int64_t m;   /* current mantissa: value = m / 10^dec */
	double rate; /* counter: mean increment (in mantissa units); gauge: step sd */
};

static void gen_node(struct data *d, size_t targets, size_t samples)
{
	data_alloc(d, "node", targets * NODE_SERIES, samples);
	struct node_series *ns = calloc(NODE_SERIES, sizeof *ns);
	for (size_t g = 0; g < targets; g++) {
		for (size_t k = 0; k < NODE_SERIES; k++) {
			struct node_series *s = &ns[k];
			double r = unif();
			s->kind = r < 0.40 ? 0 : r < 0.75 ? 1 : 2;
			static const int cdec[4] = { 0, 0, 2, 3 };
			s->dec = s->kind == 1 ? cdec[rnd() % 4] : (int)(rnd() % 4);
			double mag = __builtin_pow(10.0, 1.0 + 8.0 * unif());
			s->m = (int64_t)(mag * pow10_tab[s->dec] * (s->kind == 0 ? 1e-3 : 1));
			if (s->kind == 1)
				s->rate = 1.0 + mag * pow10_tab[s->dec] * 1e-4 * unif();
			else
				s->rate = 1.0 + (double)s->m * 0.01;
		}
		int64_t t = 1700000000000 + (int64_t)(rnd() % 15000);
		size_t j = 0;
		while (j < samples) {
			t += 15000;
			if (rnd() % 1000 < 2)
				continue; /* missed scrape */
			int reboot = rnd() % 10000 < 5;
			int64_t ts = t + (int64_t)(rnd() % 7) - 3;
			for (size_t k = 0; k < NODE_SERIES; k++) {
				struct node_series *s = &ns[k];
				size_t id = g * NODE_SERIES + k;
				if (s->kind == 1) {
					s->m = reboot ? 0 : s->m + (int64_t)(expo(s->rate) + 0.5);
				} else if (s->kind == 2) {
					int64_t nm = s->m + (int64_t)(gauss() * s->rate);
					s->m = nm < 0 ? -nm : nm;
				}
				d->t[id * d->cap + j] = ts;
				d->v[id * d->cap + j] = bitsof((double)s->m / pow10_tab[s->dec]);
			}
			j++;
		}
		for (size_t k = 0; k < NODE_SERIES; k++)
			d->n[g * NODE_SERIES + k] = (uint32_t)samples;
	}
	d->total = (uint64_t)d->n_series * samples;
	free(ns);
}

static void gen_cpu(struct data *d, size_t hosts, size_t samples)
{
	data_alloc(d, "cpu", hosts * CPU_FIELDS, samples);
	double *x = malloc(d->n_series * sizeof *x);
	for (size_t s = 0; s < d->n_series; s++)
		x[s] = 100.0 * unif();
	int64_t t0 = 1700000000000;
	for (size_t j = 0; j < samples; j++) {
		for (size_t s = 0; s < d->n_series; s++) {
			x[s] += 2.0 * unif() - 1.0;
			x[s] = x[s] < 0 ? 0 : x[s] > 100 ? 100 : x[s];
			d->t[s * d->cap + j] = t0 + (int64_t)j * 10000;
			d->v[s * d->cap + j] = bitsof((double)(int64_t)x[s]);
		}
	}
	for (size_t s = 0; s < d->n_series; s++)
		d->n[s] = (uint32_t)samples;
	d->total = (uint64_t)d->n_series * samples;
	free(x);
}

/* ---- XOR --------------------------------------------------------------------------- */

struct xchunks {
	struct ts_xor_enc *e;
	size_t n;
};

static double xor_encode(const struct data *d, struct xchunks *x)
{
	size_t per = (d->cap + XOR_CHUNK - 1) / XOR_CHUNK;
	if (!x->e)
		x->e = calloc(d->n_series * per, sizeof *x->e);
	for (size_t k = 0; k < x->n; k++)
		ts_xor_enc_fini(&x->e[k]);
	x->n = 0;
	double t0 = now_ns();
	for (size_t s = 0; s < d->n_series; s++) {
		const int64_t *t = d->t + s * d->cap;
		const uint64_t *v = d->v + s * d->cap;
		for (uint32_t j = 0; j < d->n[s]; j++) {
			if (j % XOR_CHUNK == 0)
				ts_xor_enc_init(&x->e[x->n++]);
			int rc = ts_xor_append(&x->e[x->n - 1], t[j], v[j]);
			if (rc)
				die("ts_xor_append", rc);
		}
	}
	return now_ns() - t0;
}

static int64_t *out_t;
static uint64_t *out_v;
static uint64_t sink;

static double xor_decode(const struct xchunks *x)
{
	double t0 = now_ns();
	for (size_t k = 0; k < x->n; k++) {
		struct ts_xor_it it;
		ts_xor_it_init(&it, x->e[k].buf, ts_xor_enc_bytes(&x->e[k]));
		size_t i = 0;
		int rc;
		while ((rc = ts_xor_next(&it)) == 1) {
			out_t[i] = it.t;
			out_v[i] = it.v;
			i++;
		}
		if (rc)
			die("ts_xor_next", rc);
		sink += out_v[i / 2];
	}
	return now_ns() - t0;
}

/* ---- cold --------------------------------------------------------------------------- */

struct blocks {
	size_t n;
	size_t *first, *count; /* series of block k */
	uint8_t **buf;
	size_t *len;
	int kinds[TS_COLD_VAL_BITS_DOD + 1];
};

static void make_inputs(const struct data *d, size_t first, size_t count, struct ts_cold_input *in)
{
	for (size_t i = 0; i < count; i++) {
		size_t s = first + i;
		in[i] = (struct ts_cold_input){ s + 1, d->n[s], d->t + s * d->cap,
						d->v + s * d->cap };
	}
}

static uint32_t raw_of(const struct data *d, size_t first, size_t count, struct ts_cold_input *in)
{
	uint8_t *buf;
	size_t len;
	struct ts_cold_info info;
	make_inputs(d, first, count, in);
	int rc = ts_cold_encode(in, count, 1, &buf, &len);
	if (rc)
		die("ts_cold_encode", rc);
	ts_cold_peek(buf, len, &info);
	ts_free(buf);
	return info.raw_len;
}

/* Cuts the series into runs whose raw body is about BLOCK_RAW (never above it unless a
 * single series is larger). */
static void cut_blocks(const struct data *d, struct blocks *b)
{
	struct ts_cold_input *in = malloc(d->n_series * sizeof *in);
	b->first = malloc(d->n_series * sizeof *b->first);
	b->count = malloc(d->n_series * sizeof *b->count);
	b->buf = calloc(d->n_series, sizeof *b->buf);
	b->len = calloc(d->n_series, sizeof *b->len);
	b->n = 0;
	size_t s = 0, guess = 64;
	while (s < d->n_series) {
		size_t lo = 1, hi = d->n_series - s; /* lo fits (or is the minimum) */
		size_t k = guess < hi ? guess : hi;
		uint32_t r = raw_of(d, s, k, in);
		if (r <= BLOCK_RAW) {
			lo = k;
			while (lo < hi) {
				size_t next = (size_t)((double)lo * BLOCK_RAW / r);
				if (next <= lo)
					next = lo + 1;
				if (next > hi)
					next = hi;
				r = raw_of(d, s, next, in);
				if (r > BLOCK_RAW) {
					hi = next - 1;
					break;
				}
				lo = next;
			}
		} else {
			hi = k - 1;
		}
		/* Bisect the rest of [lo, hi]. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo + 1) / 2;
			if (raw_of(d, s, mid, in) <= BLOCK_RAW)
				lo = mid;
			else
				hi = mid - 1;
		}
		b->first[b->n] = s;
		b->count[b->n] = lo;
		b->n++;
		s += lo;
		guess = lo;
	}
	free(in);
}

static double cold_encode(const struct data *d, struct blocks *b, int level, size_t *bytes)
{
	struct ts_cold_input *in = malloc(d->n_series * sizeof *in);
	double dt = 0;
	*bytes = 0;
	for (size_t k = 0; k < b->n; k++) {
		make_inputs(d, b->first[k], b->count[k], in);
		ts_free(b->buf[k]);
		double t0 = now_ns();
		int rc = ts_cold_encode(in, b->count[k], level, &b->buf[k], &b->len[k]);
		dt += now_ns() - t0;
		if (rc)
			die("ts_cold_encode", rc);
		*bytes += b->len[k];
	}
	free(in);
	return dt;
}

static void cold_decode(const struct data *d, struct blocks *b, double *open_ns, double *dec_ns,
			int check)
{
	double to = 0, td = 0;
	for (size_t k = 0; k < b->n; k++) {
		struct ts_cold_block *blk;
		double t0 = now_ns();
		int rc = ts_cold_open(b->buf[k], b->len[k], &blk);
		double t1 = now_ns();
		if (rc)
			die("ts_cold_open", rc);
		size_t ns = ts_cold_nseries(blk);
		for (size_t i = 0; i < ns; i++) {
			rc = ts_cold_decode(blk, i, out_t, out_v);
			if (rc)
				die("ts_cold_decode", rc);
			sink += out_v[0];
			if (check) {
				size_t s = b->first[k] + i;
				if (memcmp(out_t, d->t + s * d->cap, d->n[s] * 8) ||
				    memcmp(out_v, d->v + s * d->cap, d->n[s] * 8)) {
					fprintf(stderr, "coldbench: series %zu differs\n", s);
					exit(1);
				}
				b->kinds[ts_cold_value_kind(blk, i)]++;
			}
		}
		double t2 = now_ns();
		ts_cold_free(blk);
		to += t1 - t0;
		td += t2 - t1;
	}
	*open_ns = to;
	*dec_ns = td;
}

static void blocks_free(struct blocks *b)
{
	for (size_t k = 0; k < b->n; k++)
		ts_free(b->buf[k]);
	free(b->buf);
	free(b->len);
	free(b->first);
	free(b->count);
}

/* ---- driver ------------------------------------------------------------------------ */

static int reps = 7;
static int levels[32], n_levels;

static void run(struct data *d)
{
	double n = (double)d->total;
	struct xchunks x = { 0 };
	double best = 1e300;
	for (int r = 0; r < reps; r++) {
		double dt = xor_encode(d, &x);
		best = dt < best ? dt : best;
	}
	double xenc = best / n;
	size_t xbytes = 0;
	for (size_t k = 0; k < x.n; k++)
		xbytes += ts_xor_enc_bytes(&x.e[k]);
	best = 1e300;
	for (int r = 0; r < reps; r++) {
		double dt = xor_decode(&x);
		best = dt < best ? dt : best;
	}
	double xdec = best / n;

	struct blocks b;
	memset(&b, 0, sizeof b);
	cut_blocks(d, &b);
	size_t cbytes;
	cold_encode(d, &b, TS_COLD_LEVEL_DEFAULT, &cbytes);
	double o, dd, bo = 1e300, bd = 1e300, bt = 1e300;
	cold_decode(d, &b, &o, &dd, 1);
	for (int r = 0; r < reps; r++) {
		cold_decode(d, &b, &o, &dd, 0);
		bo = o < bo ? o : bo;
		bd = dd < bd ? dd : bd;
		bt = o + dd < bt ? o + dd : bt;
	}
	printf("%-4s %5zu series x %4zu samples (%" PRIu64 "), %zu blocks of %.1f series\n",
	       d->name, d->n_series, d->cap, d->total, b.n, (double)d->n_series / (double)b.n);
	printf("  xor   bytes/sample %6.3f (%6.3f with chunk headers)  encode %6.2f ns  decode "
	       "%6.2f ns/sample\n",
	       (double)xbytes / n, (double)(xbytes + 32 * x.n) / n, xenc, xdec);
	printf("  cold  bytes/sample %6.3f (level %d)  open %6.2f + decode %6.2f = %6.2f ns/sample"
	       " (decode %.2fx xor, total %.2fx)\n",
	       (double)cbytes / n, TS_COLD_LEVEL_DEFAULT, bo / n, bd / n, bt / n, bd / n / xdec,
	       bt / n / xdec);
	printf("  kinds const %d  dec-delta %d  dec-dod %d  xor %d  bits-delta %d  bits-dod %d\n",
	       b.kinds[0], b.kinds[1], b.kinds[2], b.kinds[3], b.kinds[4], b.kinds[5]);
	printf("  level:  ");
	for (int l = 0; l < n_levels; l++)
		printf(" %7d", levels[l]);
	printf("\n  bytes/s:");
	double enc[32];
	size_t lbytes[32];
	for (int l = 0; l < n_levels; l++) {
		int lr = levels[l] >= 15 ? 1 : reps < 3 ? reps : 3;
		best = 1e300;
		for (int r = 0; r < lr; r++) {
			double dt = cold_encode(d, &b, levels[l], &lbytes[l]);
			best = dt < best ? dt : best;
		}
		enc[l] = best / n;
		printf(" %7.4f", (double)lbytes[l] / n);
		fflush(stdout);
	}
	printf("\n  enc ns/s:");
	for (int l = 0; l < n_levels; l++)
		printf(" %7.1f", enc[l]);
	printf("\n");
	blocks_free(&b);
	for (size_t k = 0; k < x.n; k++)
		ts_xor_enc_fini(&x.e[k]);
	free(x.e);
}

static size_t parse_list(const char *s, int *out, size_t cap)
{
	size_t n = 0;
	while (*s && n < cap) {
		char *end;
		out[n++] = (int)strtol(s, &end, 10);
		if (end == s)
			break;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	size_t targets = 8, hosts = 400;
	int samples[16] = { 100, 400, 1000 };
	size_t n_samples = 3;
	static const int dflt_levels[] = { 1, 3, 5, 7, 9, 12, 15, 19 };
	n_levels = 8;
	memcpy(levels, dflt_levels, sizeof dflt_levels);
	uint64_t seed = 1;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "usage: see the comment at the top of main_coldbench.c\n");
			return 2;
		}
		if (!strcmp(a, "--targets"))
			targets = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--hosts"))
			hosts = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--samples"))
			n_samples = parse_list(v, samples, 16);
		else if (!strcmp(a, "--levels"))
			n_levels = (int)parse_list(v, levels, 32);
		else if (!strcmp(a, "--reps"))
			reps = atoi(v);
		else if (!strcmp(a, "--seed"))
			seed = strtoull(v, NULL, 10);
		else {
			fprintf(stderr, "coldbench: unknown option %s\n", a);
			return 2;
		}
	}
	if (!targets || !hosts || !n_samples || reps < 1) {
		fprintf(stderr, "coldbench: counts must be positive\n");
		return 2;
	}
	for (size_t k = 0; k < n_samples; k++) {
		size_t ns = (size_t)samples[k];
		if (ns < 1 || ns > 100000) {
			fprintf(stderr, "coldbench: samples must be 1..100000\n");
			return 2;
		}
		out_t = malloc(ns * sizeof *out_t);
		out_v = malloc(ns * sizeof *out_v);
		struct data d;
		rng_state = seed;
		gen_node(&d, targets, ns);
		run(&d);
		data_free(&d);
		rng_state = seed + 1;
		gen_cpu(&d, hosts, ns);
		run(&d);
		data_free(&d);
		free(out_t);
		free(out_v);
	}
	return sink == 42 ? 1 : 0;
}
