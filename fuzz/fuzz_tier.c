/*
 * fuzz_tier.c - downsampling and tier blocks (tsdb/downsample.h) on arbitrary bytes. Byte
 * 0 picks the mode (byte 0 % 2):
 *  0  the rest is a tier block: open it and decode every series it lists, then every
 *     series id the first 64 pseudo-series name;
 *  1  the rest is samples (16 bytes each: t delta, value bits, LE) and a resolution:
 *     raw -> rows (twice, cut in two calls at a sample), those rows -> a coarser
 *     resolution, the counter stream, and a tier block of the sets, decoded back.
 * Checks, beyond "never crashes, no UB": only documented codes; rows strictly ascending,
 * each in its window (t - window start < res) and, but for the last, on the window's last
 * millisecond; count >= 1 and integer; min <= max when neither is NaN; the total count
 * is the number of samples that are not NaN; a decoded series passes the aggregation's
 * input checks; an encoded tier block decodes bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "storage/cold.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/downsample.h"
#include "tsdb/format.h"

#define MAX_N 1024

static struct ts_ds_row rows[2 * MAX_N + 2], rows2[2 * MAX_N + 2], back[2 * MAX_N + 2];
static int64_t ts[MAX_N];
static uint64_t vs[MAX_N];

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t x = 0;
	for (int i = 0; i < n; i++)
		x |= (uint64_t)p[i] << (8 * i);
	return x;
}

static int64_t floor_start(int64_t t, int64_t res)
{
	int64_t r = t % res;
	return t - (r < 0 ? r + res : r);
}

/* The invariants of a set of rows made at resolution res. */
static void check_rows(const struct ts_ds_agg *a, int64_t res)
{
	for (size_t j = 0; j < a->n_rows; j++) {
		const struct ts_ds_row *r = &a->rows[j];
		double c = r->v[TS_DS_COUNT];
		fz_check(c >= 1 && c == floor(c));
		double lo = r->v[TS_DS_MIN], hi = r->v[TS_DS_MAX];
		fz_check(isnan(lo) || isnan(hi) || lo <= hi);
		int64_t s = floor_start(r->t_ms, res);
		if (j) {
			fz_check(r->t_ms > r[-1].t_ms);
			fz_check(floor_start(r[-1].t_ms, res) < s);
			fz_check(r[-1].t_ms == floor_start(r[-1].t_ms, res) + res - 1);
		}
	}
	if (a->n_rows)
		fz_check(a->first_t_ms <= a->rows[0].t_ms);
}

static void check_block(const uint8_t *d, size_t size)
{
	uint8_t *p = fz_memdup(d, size);
	fz_check(p != NULL);
	struct ts_cold_block *b;
	int rc = ts_cold_open(p, size, &b);
	free(p);
	fz_check(rc == 0 || rc == TS_ECORRUPT || rc == TS_EVERSION);
	if (rc)
		return;
	size_t ns = ts_cold_nseries(b);
	for (size_t i = 0; i < ns; i++) {
		uint64_t id;
		size_t n;
		rc = ts_ds_tier_id(b, i, &id, &n);
		if (rc == TS_ENOTFOUND)
			break;
		fz_check(rc == 0 || rc == TS_ECORRUPT);
		if (rc)
			continue;
		struct ts_ds_agg a;
		rc = ts_ds_tier_decode(b, id, rows, n < MAX_N ? n : MAX_N, &a);
		fz_check(rc == 0 || rc == TS_ECORRUPT || rc == TS_ELIMIT);
		if (rc == 0) {
			fz_check(a.n_rows == n && a.rows == rows);
			/* A decoded set is valid input to the next tier. */
			struct ts_ds_agg h;
			fz_check(ts_ds_aggr(&a, 1, TS_DS_RES_1H_MS, rows2, 2 * MAX_N, &h) == 0);
			check_rows(&h, TS_DS_RES_1H_MS);
		}
	}
	for (size_t i = 0; i < ns && i < 64; i++) {
		uint64_t id;
		ts_cold_series(b, i, &id, NULL, NULL, NULL);
		struct ts_ds_agg a;
		rc = ts_ds_tier_decode(b, id >> TS_DS_KIND_BITS, rows, MAX_N, &a);
		fz_check(rc == 0 || rc == TS_ECORRUPT || rc == TS_ELIMIT || rc == TS_ENOTFOUND);
	}
	ts_cold_free(b);
}

static void check_samples(const uint8_t *d, size_t size)
{
	if (size < 10)
		return;
	/* Resolution: 1 .. 2^16 ms, or one of the real ones. */
	uint64_t rsel = le(d, 2);
	int64_t res = rsel < 0x4000 ? 1 + (int64_t)rsel : rsel & 1 ? TS_DS_RES_5M_MS : 60000;
	int64_t coarse = d[2] & 1 ? res * (1 + d[3] % 16) : TS_DS_RES_1H_MS;
	int64_t t = (int64_t)le(d + 4, 6) - (INT64_C(1) << 47);
	d += 10;
	size -= 10;
	size_t n = 0, valid = 0;
	for (; size >= 16 && n < MAX_N; d += 16, size -= 16) {
		int64_t dt = (int64_t)(le(d, 8) % 100000);
		if (n && dt == 0)
			dt = 1;
		t += dt;
		ts[n] = t;
		vs[n] = le(d + 8, 8);
		/* Small integers are common so counters and exact sums are exercised. */
		if ((vs[n] >> 56) == 0x01) {
			double x = (double)(vs[n] & 0xff);
			memcpy(&vs[n], &x, 8);
		}
		double x;
		memcpy(&x, &vs[n], 8);
		valid += !isnan(x);
		n++;
	}
	struct ts_ds_agg a;
	fz_check(ts_ds_raw(ts, vs, n, res, rows, 2 * MAX_N, &a) == 0);
	check_rows(&a, res);
	double total = 0;
	for (size_t j = 0; j < a.n_rows; j++)
		total += a.rows[j].v[TS_DS_COUNT];
	fz_check(total == (double)valid);
	if (n)
		fz_check(ts_ds_raw(ts, vs, n, res, rows2, a.n_rows ? a.n_rows - 1 : 0, &a) ==
			 (a.n_rows ? TS_ELIMIT : 0));

	/* Two calls cut at sample `cut`, then both sets to the coarse resolution. */
	size_t cut = n ? (size_t)(le(d, size < 2 ? (int)size : 2) % n) : 0;
	struct ts_ds_agg sets[2];
	fz_check(ts_ds_raw(ts, vs, cut, res, rows, MAX_N + 1, &sets[0]) == 0);
	fz_check(ts_ds_raw(ts + cut, vs + cut, n - cut, res, rows + sets[0].n_rows, MAX_N + 1,
			   &sets[1]) == 0);
	check_rows(&sets[0], res);
	check_rows(&sets[1], res);
	struct ts_ds_agg h;
	int rc = ts_ds_aggr(sets, 2, coarse, rows2, 2 * MAX_N, &h);
	fz_check(rc == 0);
	if (coarse % res == 0)
		check_rows(&h, coarse);
	total = 0;
	for (size_t j = 0; j < h.n_rows; j++)
		total += h.rows[j].v[TS_DS_COUNT];
	fz_check(total == (double)valid);

	/* The counter stream: strictly ascending times. */
	struct ts_ds_counter_it it;
	ts_ds_counter_init(&it, sets, 2);
	int64_t st, prev = INT64_MIN;
	double sv;
	while (ts_ds_counter_next(&it, &st, &sv)) {
		fz_check(st > prev);
		prev = st;
	}

	/* A tier block of the non-empty sets, decoded back bit for bit. */
	struct ts_ds_tier_series tsr[3];
	size_t k = 0;
	for (int i = 0; i < 2; i++)
		if (sets[i].n_rows)
			tsr[k++] = (struct ts_ds_tier_series){ (uint64_t)i * 5 + 1, sets[i] };
	if (h.n_rows)
		tsr[k++] = (struct ts_ds_tier_series){ TS_DS_MAX_SERIES_ID, h };
	if (!k)
		return;
	uint8_t *blk;
	size_t len;
	fz_check(ts_ds_tier_encode(tsr, k, 1, &blk, &len) == 0);
	struct ts_cold_block *b;
	fz_check(ts_cold_open(blk, len, &b) == 0);
	for (size_t i = 0; i < k; i++) {
		struct ts_ds_agg got;
		fz_check(ts_ds_tier_decode(b, tsr[i].id, back, 2 * MAX_N, &got) == 0);
		fz_check(got.n_rows == tsr[i].agg.n_rows &&
			 got.first_t_ms == tsr[i].agg.first_t_ms);
		fz_check(memcmp(&got.first_v, &tsr[i].agg.first_v, 8) == 0);
		fz_check(memcmp(&got.last_v, &tsr[i].agg.last_v, 8) == 0);
		fz_check(memcmp(back, tsr[i].agg.rows, got.n_rows * sizeof *back) == 0);
	}
	ts_cold_free(b);
	ts_free(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		check_block(data + 1, size - 1);
	else
		check_samples(data + 1, size - 1);
	return 0;
}
