/*
 * fuzz_xor.c - the XOR chunk decoder on arbitrary bytes.
 *
 * Checks, beyond "never crashes or reads out of bounds":
 *  - ts_xor_next returns only 1, 0 or TS_ECORRUPT, the end and errors are sticky, and a
 *    clean end comes after exactly the header's count of samples;
 *  - a chunk that decodes cleanly re-encodes (ts_xor_append) to a chunk that decodes to
 *    the same samples bit for bit, and whose re-encoding is byte-identical (canonical);
 *  - ts_xor_seek agrees with a model built from the decoded samples, from a fresh
 *    iterator and chained on one iterator, for targets taken from the samples and input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "fuzz_util.h"
#include "storage/xor.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static int64_t ts[TS_XOR_MAX_SAMPLES];
static uint64_t vs[TS_XOR_MAX_SAMPLES];

/* Decodes into ts/vs; returns the final status and the count in *n. */
static int decode(const uint8_t *buf, size_t len, size_t *n)
{
	struct ts_xor_it it;
	*n = 0;
	int rc = ts_xor_it_init(&it, buf, len);
	if (rc) {
		CHECK(rc == TS_ECORRUPT && len < 2);
		CHECK(ts_xor_next(&it) == TS_ECORRUPT);
		return rc;
	}
	while ((rc = ts_xor_next(&it)) == 1) {
		CHECK(*n < TS_XOR_MAX_SAMPLES);
		ts[*n] = it.t;
		vs[*n] = it.v;
		(*n)++;
		CHECK(it.i == *n);
	}
	CHECK(rc == 0 || rc == TS_ECORRUPT);
	CHECK(ts_xor_next(&it) == rc);
	if (rc == 0)
		CHECK(*n == (size_t)ts_xor_count(buf, len));
	return rc;
}

struct model {
	size_t i, n;
	int err, end_rc;
};

static int model_seek(struct model *m, int64_t target)
{
	if (m->err)
		return m->err;
	while (m->i == 0 || ts[m->i - 1] < target) {
		if (m->i == m->n) {
			if (m->end_rc)
				m->err = m->end_rc;
			return m->end_rc;
		}
		m->i++;
	}
	return 1;
}

static void check_seek(const uint8_t *buf, size_t len, size_t n, int end_rc, const int64_t *targets,
		       size_t n_targets)
{
	/* Each target from a fresh iterator. */
	for (size_t k = 0; k < n_targets; k++) {
		struct ts_xor_it it;
		struct model m = { 0, n, 0, end_rc };
		if (ts_xor_it_init(&it, buf, len))
			m.err = TS_ECORRUPT;
		int want = model_seek(&m, targets[k]);
		CHECK(ts_xor_seek(&it, targets[k]) == want);
		if (want == 1) {
			CHECK(it.i == m.i);
			CHECK(it.t == ts[m.i - 1] && it.v == vs[m.i - 1]);
		}
	}
	/* All targets in turn on one iterator. */
	struct ts_xor_it it;
	struct model m = { 0, n, 0, end_rc };
	if (ts_xor_it_init(&it, buf, len))
		m.err = TS_ECORRUPT;
	for (size_t k = 0; k < n_targets; k++) {
		int want = model_seek(&m, targets[k]);
		CHECK(ts_xor_seek(&it, targets[k]) == want);
		if (want == 1)
			CHECK(it.i == m.i && it.t == ts[m.i - 1] && it.v == vs[m.i - 1]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	/* An exact-size heap copy, so ASan flags any read past the end. */
	uint8_t *buf = fz_memdup(data, size);
	CHECK(buf);

	size_t n;
	int rc = decode(buf, size, &n);

	int64_t targets[12];
	size_t nt = 0;
	targets[nt++] = INT64_MIN;
	targets[nt++] = INT64_MAX;
	if (n) {
		targets[nt++] = ts[0];
		targets[nt++] = ts[n / 2];
		targets[nt++] = ts[n - 1];
		targets[nt++] = (int64_t)((uint64_t)ts[n / 3] + 1); /* wraps */
	}
	for (size_t k = 0; k + 8 <= size && nt < 12; k += 8) {
		uint64_t x;
		memcpy(&x, data + size - 8 - k, 8);
		targets[nt++] = (int64_t)x;
	}
	size_t nd = n; /* check_seek reads ts/vs of this decode */
	check_seek(buf, size, nd, rc, targets, nt);

	if (rc == 0) {
		/* Re-encode and decode again: same samples, bit for bit. */
		int64_t *t0 = malloc((n ? n : 1) * sizeof *t0);
		uint64_t *v0 = malloc((n ? n : 1) * sizeof *v0);
		CHECK(t0 && v0);
		memcpy(t0, ts, n * sizeof *t0);
		memcpy(v0, vs, n * sizeof *v0);
		struct ts_xor_enc e, e2;
		ts_xor_enc_init(&e);
		for (size_t i = 0; i < n; i++)
			CHECK(ts_xor_append(&e, t0[i], v0[i]) == 0);
		size_t len = ts_xor_enc_bytes(&e);
		static const uint8_t empty[2];
		const uint8_t *chunk = n ? e.buf : empty;
		size_t n2;
		CHECK(decode(chunk, len, &n2) == 0);
		CHECK(n2 == n);
		CHECK(memcmp(ts, t0, n * sizeof *t0) == 0);
		CHECK(memcmp(vs, v0, n * sizeof *v0) == 0);
		/* Our own output is canonical: encoding it again gives the same bytes. */
		ts_xor_enc_init(&e2);
		for (size_t i = 0; i < n; i++)
			CHECK(ts_xor_append(&e2, ts[i], vs[i]) == 0);
		CHECK(ts_xor_enc_bytes(&e2) == len);
		CHECK(n == 0 || memcmp(e2.buf, e.buf, len) == 0);
		ts_xor_enc_fini(&e);
		ts_xor_enc_fini(&e2);
		free(t0);
		free(v0);
	}
	free(buf);
	return 0;
}
