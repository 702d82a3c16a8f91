/*
 * fuzz_cold.c - the cold block codec (storage/cold.h) on arbitrary bytes. Byte 0 picks
 * the mode (byte 0 % 3):
 *  0  the rest is a block: peek, open and decode every series;
 *  1  the rest is a 44-byte header tail (n_series, first_id, last_id, min_t, max_t,
 *     n_samples, LE, as in the block header at offset 8 with raw_len left out) then a
 *     body, sealed here as a stored block with a valid CRC, so mutations reach the
 *     directory and column checks instead of dying at the CRC; then as mode 0;
 *  2  the rest describes series (count, id gaps, lengths, timestamp and value shapes,
 *     values drawn from the input), which are encoded, opened and decoded: the samples
 *     must come back bit for bit.
 * Checks, beyond "never crashes or reads out of bounds" (blocks are exact-size heap
 * copies): every call returns only its documented codes; peek, open and unpack agree;
 * a series that decodes has strictly ascending timestamps from its min_t to its max_t,
 * find() finds it; a failed open writes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "storage/cold.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"

#define MAX_SERIES 16
#define MAX_N 2048

static int64_t ts[MAX_N];
static uint64_t vs[MAX_N];

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Opens blk[0..len) and decodes every series, checking the contract. */
static void check_block(const uint8_t *blk, size_t len)
{
	uint8_t *p = fz_memdup(blk, len);
	fz_check(p != NULL);
	struct ts_cold_info info;
	int prc = ts_cold_peek(p, len, &info);
	fz_check(prc == 0 || prc == TS_ECORRUPT || prc == TS_EVERSION);
	struct ts_cold_block *b = (struct ts_cold_block *)&b;
	int rc = ts_cold_open(p, len, &b);
	fz_check(rc == 0 || rc == TS_ECORRUPT || rc == TS_EVERSION);
	uint8_t *raw = (uint8_t *)&raw;
	size_t raw_len = 1;
	int urc = ts_cold_unpack(p, len, &raw, &raw_len);
	fz_check(urc == 0 || urc == TS_ECORRUPT || urc == TS_EVERSION);
	if (urc == 0) {
		fz_check(prc == 0 && raw_len == info.raw_len);
		ts_free(raw);
	} else {
		fz_check(raw == (uint8_t *)&raw && raw_len == 1);
	}
	if (rc) {
		fz_check(b == (struct ts_cold_block *)&b);
		fz_check(prc != 0 || rc == TS_ECORRUPT);
		fz_check(prc == 0 || rc == prc);
		free(p);
		return;
	}
	fz_check(prc == 0 && urc == 0);
	free(p); /* the block owns its memory */
	size_t ns = ts_cold_nseries(b);
	fz_check(ns == info.n_series && ts_cold_mem(b) >= info.raw_len);
	uint64_t total = 0, prev_id = 0;
	for (size_t i = 0; i < ns; i++) {
		uint64_t id;
		uint32_t n;
		int64_t lo, hi;
		ts_cold_series(b, i, &id, &n, &lo, &hi);
		fz_check(n >= 1 && lo <= hi && lo >= info.min_t && hi <= info.max_t);
		fz_check(i == 0 ? id == info.first_id : id > prev_id);
		fz_check(ts_cold_find(b, id) == (long)i);
		int kind = ts_cold_value_kind(b, i);
		fz_check(kind >= TS_COLD_VAL_CONST && kind <= TS_COLD_VAL_BITS_DOD);
		prev_id = id;
		total += n;
		int64_t *t = malloc(n * sizeof *t);
		uint64_t *v = malloc(n * sizeof *v);
		fz_check(t && v);
		rc = ts_cold_decode(b, i, t, v);
		fz_check(rc == 0 || rc == TS_ECORRUPT);
		if (rc == 0) {
			fz_check(t[0] == lo && t[n - 1] == hi);
			for (uint32_t j = 1; j < n; j++)
				fz_check(t[j] > t[j - 1]);
		}
		free(t);
		free(v);
	}
	fz_check(prev_id == info.last_id && total == info.n_samples);
	fz_check(ts_cold_decode(b, ns, NULL, NULL) == TS_EINVALID);
	ts_cold_free(b);
}

/* Mode 1: a stored block around the body the input gives. */
static void check_stored(const uint8_t *d, size_t size)
{
	if (size < 44)
		return;
	size_t body = size - 44;
	uint8_t *blk = malloc(TS_COLD_HDR_LEN + body + 1);
	fz_check(blk != NULL);
	memcpy(blk, TS_COLD_MAGIC, 4);
	blk[4] = TS_COLD_VERSION;
	blk[5] = blk[6] = blk[7] = 0;
	memcpy(blk + 8, d, 4);
	put_le(blk + 12, body, 4);
	memcpy(blk + 16, d + 4, 40);
	put_le(blk + 56, body, 4);
	memcpy(blk + TS_COLD_HDR_LEN, d + 44, body);
	put_le(blk + 60, ts_crc32c(0, blk + TS_COLD_HDR_LEN, body), 4);
	check_block(blk, TS_COLD_HDR_LEN + body);
	free(blk);
}

/* ---- mode 2: round trip ----------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint64_t rd_bytes(struct rd *r, int k)
{
	uint64_t x = 0;
	for (int i = 0; i < k; i++) {
		x |= (uint64_t)(r->n ? *r->p : 0) << (8 * i);
		if (r->n) {
			r->p++;
			r->n--;
		}
	}
	return x;
}

static const double p10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7 };

/* Timestamps of one of a few shapes, strictly ascending (or the input is skipped). */
static int gen_times(struct rd *r, int64_t *t, uint32_t n)
{
	int shape = (int)rd_bytes(r, 1) % 4;
	uint64_t x = rd_bytes(r, shape == 3 ? 8 : 4);
	uint64_t step = 1 + rd_bytes(r, 2);
	for (uint32_t j = 0; j < n; j++) {
		if (j) {
			uint64_t d = shape == 0	  ? step
				     : shape == 1 ? step + rd_bytes(r, 1) % 7
				     : shape == 2 ? 1 + rd_bytes(r, 2)
						  : 1 + (rd_bytes(r, 8) >> (rd_bytes(r, 1) % 64));
			if ((int64_t)(x + d) <= (int64_t)x) /* d == 0, or past INT64_MAX */
				return -1;
			x += d;
		}
		t[j] = (int64_t)x;
	}
	return 0;
}

static void gen_values(struct rd *r, uint64_t *v, uint32_t n)
{
	int shape = (int)rd_bytes(r, 1) % 6;
	int k = (int)rd_bytes(r, 1) % 8;
	int64_t m = (int64_t)rd_bytes(r, 4) - (1 << 30);
	for (uint32_t j = 0; j < n; j++) {
		double x;
		switch (shape) {
		case 0: /* decimal walk, sometimes a raw value */
			m += (int64_t)(int8_t)rd_bytes(r, 1);
			x = (double)m / p10[k];
			memcpy(&v[j], &x, 8);
			if (rd_bytes(r, 1) == 0xff)
				v[j] = rd_bytes(r, 8);
			break;
		case 1: /* counter at a steady rate */
			m += 1000 + (int64_t)(rd_bytes(r, 1) % 3);
			x = (double)m * p10[k];
			memcpy(&v[j], &x, 8);
			break;
		case 2: v[j] = rd_bytes(r, 8); break;
		case 3: v[j] = j && rd_bytes(r, 1) % 4 ? v[j - 1] : rd_bytes(r, 8); break;
		case 4: /* floats stepping: BITS */
			x = 1.7e9 + (double)j * 15.0 + (double)rd_bytes(r, 2) * 1e-9;
			memcpy(&v[j], &x, 8);
			break;
		default: v[j] = rd_bytes(r, 1) & 1 ? 0x7ff0000000000002ull : (uint64_t)k; break;
		}
	}
}

static void check_roundtrip(const uint8_t *d, size_t size)
{
	struct rd r = { d, size };
	size_t ns = 1 + rd_bytes(&r, 1) % MAX_SERIES;
	int level = (int)rd_bytes(&r, 1) % 4 - 1; /* -1 .. 2: quick */
	struct ts_cold_input in[MAX_SERIES];
	int64_t *tarr[MAX_SERIES] = { 0 };
	uint64_t *varr[MAX_SERIES] = { 0 };
	uint64_t id = rd_bytes(&r, 8);
	size_t k;
	int ok = 1;
	for (k = 0; k < ns && ok; k++) {
		uint64_t gap = k ? 1 + rd_bytes(&r, 1) : 0;
		if (id > UINT64_MAX - gap)
			break;
		id += gap;
		/* Half the series short: blocks of tiny series have the smallest bodies. */
		uint32_t n = 1 + (uint32_t)(rd_bytes(&r, 1) & 1 ? rd_bytes(&r, 1) % 4
								: rd_bytes(&r, 2) % MAX_N);
		varr[k] = malloc(n * sizeof(uint64_t));
		fz_check(varr[k] != NULL);
		if (k && rd_bytes(&r, 1) & 1 && in[k - 1].n == n) {
			in[k].t = in[k - 1].t; /* shared timestamps */
		} else {
			tarr[k] = malloc(n * sizeof(int64_t));
			fz_check(tarr[k] != NULL);
			ok = gen_times(&r, tarr[k], n) == 0;
			in[k].t = tarr[k];
		}
		gen_values(&r, varr[k], n);
		in[k].id = id;
		in[k].n = n;
		in[k].v = varr[k];
	}
	if (ok && k) {
		uint8_t *blk;
		size_t len;
		fz_check(ts_cold_encode(in, k, level, &blk, &len) == 0);
		check_block(blk, len);
		uint8_t *p = fz_memdup(blk, len);
		struct ts_cold_block *b;
		fz_check(ts_cold_open(p, len, &b) == 0);
		for (size_t i = 0; i < k; i++) {
			fz_check(ts_cold_decode(b, i, ts, vs) == 0);
			fz_check(memcmp(ts, in[i].t, in[i].n * sizeof *ts) == 0);
			fz_check(memcmp(vs, in[i].v, in[i].n * sizeof *vs) == 0);
		}
		ts_cold_free(b);
		free(p);
		ts_free(blk);
	}
	for (size_t i = 0; i < MAX_SERIES; i++) {
		free(tarr[i]);
		free(varr[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0: check_block(data + 1, size - 1); break;
	case 1: check_stored(data + 1, size - 1); break;
	default: check_roundtrip(data + 1, size - 1); break;
	}
	return 0;
}
