/*
 * test_xor.c - the XOR chunk codec against Prometheus' own output
 * ($TS_TESTDATA/xor/prometheus_xor_vectors.jsonl, every vector, both directions), plus
 * bucket edges, window rules, seek, the sample cap, allocation failure, and truncated
 * and bit-flipped chunks (decoded from exact-size heap copies so ASan sees any read past
 * the end). Random cases use a seeded PRNG; TS_SEED overrides the seed, which is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/xor.h"
#include "testutil.h"

/* ---- PRNG ------------------------------------------------------------------------- */

#define SEED 20240601 /* TS_SEED overrides */

static uint64_t rng; /* tu_rand() state, reset by each test from tu_seed() */

/* ---- a small reader for the vectors file ------------------------------------------ */

struct vec {
	char name[64];
	int64_t *t;
	uint64_t *v;
	size_t n, n_v;
	uint8_t *chunk;
	size_t chunk_len;
};

static struct vec *vecs;
static size_t n_vecs;

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* A JSON string without escapes (the file has none); NULL on anything else. */
static const char *jstr(const char *p, const char **s, size_t *len)
{
	if (*p != '"')
		return NULL;
	const char *q = ++p;
	while (*q && *q != '"') {
		if (*q == '\\')
			return NULL;
		q++;
	}
	if (*q != '"')
		return NULL;
	*s = p;
	*len = (size_t)(q - p);
	return q + 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex_u64(const char *s, size_t len, uint64_t *out)
{
	if (len != 16)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return -1;
		x = x << 4 | (uint64_t)h;
	}
	*out = x;
	return 0;
}

static const char *jint(const char *p, int64_t *out)
{
	int neg = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return NULL;
	uint64_t x = 0;
	while (*p >= '0' && *p <= '9') {
		uint64_t d = (uint64_t)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return NULL;
		x = x * 10 + d;
		p++;
	}
	if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
		return NULL;
	*out = neg ? (int64_t)(0 - x) : (int64_t)x;
	return p;
}

/* "[" elem ("," elem)* "]" where elem is an integer (ints != NULL) or a 16-hex string. */
static const char *jarray(const char *p, int64_t **ints, uint64_t **hexes, size_t *n)
{
	size_t cap = 16, k = 0;
	void *arr = malloc(cap * 8);
	if (*p != '[' || !arr)
		goto bad;
	p = ws(p + 1);
	if (*p == ']') {
		p++;
		goto done;
	}
	for (;;) {
		if (k == cap) {
			cap *= 2;
			void *na = realloc(arr, cap * 8);
			if (!na)
				goto bad;
			arr = na;
		}
		if (ints) {
			p = jint(p, (int64_t *)arr + k);
		} else {
			const char *s;
			size_t len;
			p = jstr(p, &s, &len);
			if (p && hex_u64(s, len, (uint64_t *)arr + k))
				p = NULL;
		}
		if (!p)
			goto bad;
		k++;
		p = ws(p);
		if (*p == ']') {
			p++;
			break;
		}
		if (*p != ',')
			goto bad;
		p = ws(p + 1);
	}
done:
	if (ints)
		*ints = arr;
	else
		*hexes = arr;
	*n = k;
	return p;
bad:
	free(arr);
	return NULL;
}

static int parse_line(const char *p, struct vec *v)
{
	memset(v, 0, sizeof *v);
	int seen = 0;
	p = ws(p);
	if (*p++ != '{')
		return -1;
	for (;;) {
		const char *key, *s;
		size_t klen, slen;
		p = jstr(ws(p), &key, &klen);
		if (!p)
			return -1;
		p = ws(p);
		if (*p++ != ':')
			return -1;
		p = ws(p);
		if (klen == 4 && !memcmp(key, "name", 4)) {
			p = jstr(p, &s, &slen);
			if (!p || slen >= sizeof v->name)
				return -1;
			memcpy(v->name, s, slen);
			seen |= 1;
		} else if (klen == 4 && !memcmp(key, "t_ms", 4)) {
			p = jarray(p, &v->t, NULL, &v->n);
			seen |= 2;
		} else if (klen == 6 && !memcmp(key, "v_bits", 6)) {
			p = jarray(p, NULL, &v->v, &v->n_v);
			seen |= 4;
		} else if (klen == 9 && !memcmp(key, "chunk_hex", 9)) {
			p = jstr(p, &s, &slen);
			if (!p || slen % 2)
				return -1;
			v->chunk_len = slen / 2;
			v->chunk = malloc(v->chunk_len + 1);
			for (size_t i = 0; i < v->chunk_len; i++) {
				int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return -1;
				v->chunk[i] = (uint8_t)(hi << 4 | lo);
			}
			seen |= 8;
		} else {
			return -1;
		}
		if (!p)
			return -1;
		p = ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -1;
	}
	p = ws(p + 1);
	return seen == 15 && *p == '\0' && v->n == v->n_v ? 0 : -1;
}

static int load_vectors(void **state)
{
	(void)state;
	/* Corrupt-input tests trip TS_CORRUPT()'s error log thousands of times. */
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	const char *dir = getenv("TS_TESTDATA");
	char path[4096];
	snprintf(path, sizeof path, "%s/xor/prometheus_xor_vectors.jsonl",
		 dir ? dir : "tests/data");
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s (set TS_TESTDATA)\n", path);
		return -1;
	}
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	size_t lines = 0;
	while ((got = getline(&line, &lcap, f)) > 0) {
		if (got == 1 && line[0] == '\n')
			continue;
		lines++;
		vecs = realloc(vecs, (n_vecs + 1) * sizeof *vecs);
		if (!vecs || parse_line(line, &vecs[n_vecs])) {
			fprintf(stderr, "%s: line %zu does not parse\n", path, lines);
			free(line);
			fclose(f);
			return -1;
		}
		n_vecs++;
	}
	free(line);
	fclose(f);
	return n_vecs > 0 ? 0 : -1;
}

static int free_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_vecs; i++) {
		free(vecs[i].t);
		free(vecs[i].v);
		free(vecs[i].chunk);
	}
	free(vecs);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

/* Decodes buf[0..len) (copied to an exact-size heap buffer) into t/v (cap entries).
 * Returns the final status of ts_xor_next (0 or an error) and the count in *n. */
static int decode_all(const uint8_t *src, size_t len, int64_t *t, uint64_t *v, size_t cap,
		      size_t *n)
{
	uint8_t *buf = tu_memdup(src, len);
	struct ts_xor_it it;
	int rc = ts_xor_it_init(&it, buf, len);
	*n = 0;
	if (rc == 0) {
		while ((rc = ts_xor_next(&it)) == 1) {
			if (*n < cap) {
				t[*n] = it.t;
				v[*n] = it.v;
			}
			(*n)++;
		}
		/* The end and errors are sticky. */
		assert_int_equal(ts_xor_next(&it), rc);
	}
	free(buf);
	return rc;
}

static void encode(struct ts_xor_enc *e, const int64_t *t, const uint64_t *v, size_t n)
{
	ts_xor_enc_init(e);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ts_xor_append(e, t[i], v[i]), 0);
	assert_int_equal(e->n, n);
}

/* Asserts that chunk decodes to exactly (t, v). */
static void assert_decodes_to(const uint8_t *chunk, size_t len, const int64_t *t, const uint64_t *v,
			      size_t n)
{
	int64_t *dt = malloc((n + 1) * sizeof *dt);
	uint64_t *dv = malloc((n + 1) * sizeof *dv);
	size_t got;
	assert_int_equal(decode_all(chunk, len, dt, dv, n + 1, &got), 0);
	assert_int_equal(got, n);
	assert_int_equal(ts_xor_count(chunk, len), (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(dt[i], t[i]);
		assert_int_equal(dv[i], v[i]);
	}
	free(dt);
	free(dv);
}

static uint64_t bits_at(const uint8_t *buf, size_t pos, unsigned nb)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < nb; i++, pos++)
		x = x << 1 | (uint64_t)((buf[pos >> 3] >> (7 - (pos & 7))) & 1);
	return x;
}

/* ---- Prometheus vectors ----------------------------------------------------------- */

static void test_vectors_encode(void **state)
{
	(void)state;
	assert_true(n_vecs >= 40);
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		struct ts_xor_enc e;
		encode(&e, x->t, x->v, x->n);
		size_t len = ts_xor_enc_bytes(&e);
		if (len != x->chunk_len || memcmp(e.buf, x->chunk, len) != 0) {
			print_error("vector %s: encoding differs (%zu bytes, want %zu)\n", x->name,
				    len, x->chunk_len);
			for (size_t i = 0; i < len && i < x->chunk_len; i++)
				if (e.buf[i] != x->chunk[i]) {
					print_error(
						"first difference at byte %zu: %02x want %02x\n", i,
						e.buf[i], x->chunk[i]);
					break;
				}
			fail();
		}
		ts_xor_enc_fini(&e);
	}
}

static void test_vectors_decode(void **state)
{
	(void)state;
	assert_true(n_vecs >= 40);
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		assert_decodes_to(x->chunk, x->chunk_len, x->t, x->v, x->n);
	}
}

/* buf[0..ts_xor_enc_bytes()) is a valid chunk after every append. */
static void test_vectors_prefixes(void **state)
{
	(void)state;
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		struct ts_xor_enc e;
		ts_xor_enc_init(&e);
		assert_int_equal(ts_xor_enc_bytes(&e), 2);
		for (size_t i = 0; i < x->n; i++) {
			assert_int_equal(ts_xor_append(&e, x->t[i], x->v[i]), 0);
			assert_decodes_to(e.buf, ts_xor_enc_bytes(&e), x->t, x->v, i + 1);
		}
		ts_xor_enc_fini(&e);
	}
}

static void test_vectors_seek(void **state)
{
	(void)state;
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		struct ts_xor_it it;
		/* Fresh iterator, every target around every sample. */
		for (size_t j = 0; j < x->n; j++) {
			for (int d = -1; d <= 1; d++) {
				int64_t target = x->t[j] + d;
				size_t want = 0;
				while (want < x->n && x->t[want] < target)
					want++;
				assert_int_equal(ts_xor_it_init(&it, x->chunk, x->chunk_len), 0);
				int rc = ts_xor_seek(&it, target);
				if (want == x->n) {
					assert_int_equal(rc, 0);
				} else {
					assert_int_equal(rc, 1);
					assert_int_equal(it.i, want + 1);
					assert_int_equal(it.t, x->t[want]);
					assert_int_equal(it.v, x->v[want]);
					/* Seeking to an earlier time stays put. */
					assert_int_equal(ts_xor_seek(&it, INT64_MIN), 1);
					assert_int_equal(it.i, want + 1);
					/* And next continues from there. */
					rc = ts_xor_next(&it);
					if (want + 1 < x->n) {
						assert_int_equal(rc, 1);
						assert_int_equal(it.t, x->t[want + 1]);
						assert_int_equal(it.v, x->v[want + 1]);
					} else {
						assert_int_equal(rc, 0);
					}
				}
			}
		}
		/* Seek past the end. */
		assert_int_equal(ts_xor_it_init(&it, x->chunk, x->chunk_len), 0);
		assert_int_equal(ts_xor_seek(&it, x->t[x->n - 1] + 1), 0);
		/* Seek to the minimum returns the first sample. */
		assert_int_equal(ts_xor_it_init(&it, x->chunk, x->chunk_len), 0);
		assert_int_equal(ts_xor_seek(&it, INT64_MIN), 1);
		assert_int_equal(it.i, 1);
		assert_int_equal(it.t, x->t[0]);
	}
}

/* ---- format details --------------------------------------------------------------- */

/* Chunk of t = {0, 1000, 2000 + dod} with a constant value; returns the dod prefix. */
static void check_dod(int64_t dod, uint64_t want_prefix, unsigned prefix_len, unsigned payload)
{
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	assert_int_equal(ts_xor_append(&e, 0, 0), 0);
	assert_int_equal(ts_xor_append(&e, 1000, 0), 0);
	uint32_t start = e.nbits;
	assert_int_equal(ts_xor_append(&e, 2000 + dod, 0), 0);
	assert_int_equal(e.nbits - start, prefix_len + payload + 1);
	assert_int_equal(bits_at(e.buf, start, prefix_len), want_prefix);
	if (payload && payload < 64) {
		uint64_t raw = bits_at(e.buf, start + prefix_len, payload);
		assert_int_equal(raw, (uint64_t)dod & ((1ull << payload) - 1));
	}
	int64_t t[3] = { 0, 1000, 2000 + dod };
	uint64_t v[3] = { 0, 0, 0 };
	assert_decodes_to(e.buf, ts_xor_enc_bytes(&e), t, v, 3);
	ts_xor_enc_fini(&e);
}

static void test_dod_buckets(void **state)
{
	(void)state;
	check_dod(0, 0, 1, 0);
	check_dod(1, 2, 2, 14);
	check_dod(-1, 2, 2, 14);
	check_dod(8192, 2, 2, 14);
	check_dod(-8191, 2, 2, 14);
	check_dod(8193, 6, 3, 17);
	check_dod(-8192, 6, 3, 17);
	check_dod(65536, 6, 3, 17);
	check_dod(-65535, 6, 3, 17);
	check_dod(65537, 14, 4, 20);
	check_dod(-65536, 14, 4, 20);
	check_dod(524288, 14, 4, 20);
	check_dod(-524287, 14, 4, 20);
	check_dod(524289, 15, 4, 64);
	check_dod(-524288, 15, 4, 64);
	check_dod(INT64_MAX / 4, 15, 4, 64);
}

static void test_value_windows(void **state)
{
	(void)state;
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	assert_int_equal(e.leading, 0xff);
	assert_int_equal(ts_xor_append(&e, 0, 0x4000000000000000ull), 0);
	assert_int_equal(e.leading, 0xff);
	/* The first changed value opens a window with '11'. */
	uint32_t p = e.nbits;
	assert_int_equal(ts_xor_append(&e, 10, 0x4000000000000000ull ^ 0x00f0000000000000ull), 0);
	p += 8; /* uvarint 10 */
	assert_int_equal(bits_at(e.buf, p, 2), 3);
	assert_int_equal(bits_at(e.buf, p + 2, 5), 8);
	assert_int_equal(bits_at(e.buf, p + 7, 6), 4);
	assert_int_equal(e.leading, 8);
	assert_int_equal(e.trailing, 52);
	/* A XOR inside the window reuses it ('10' + 4 bits). */
	p = e.nbits;
	uint64_t v = e.v ^ 0x0030000000000000ull;
	assert_int_equal(ts_xor_append(&e, 20, v), 0);
	assert_int_equal(e.nbits - p, 1 + 2 + 4);
	assert_int_equal(bits_at(e.buf, p + 1, 2), 2);
	/* Unchanged value: one 0 bit. */
	p = e.nbits;
	assert_int_equal(ts_xor_append(&e, 30, v), 0);
	assert_int_equal(e.nbits - p, 2);
	/* A wider XOR makes a new window, which is then kept even for narrow XORs. */
	p = e.nbits;
	v ^= 0x0000000000000001ull;
	assert_int_equal(ts_xor_append(&e, 40, v), 0);
	assert_int_equal(bits_at(e.buf, p + 1, 2), 3);
	assert_int_equal(e.leading, 31); /* 63 leading zeros, capped */
	assert_int_equal(e.trailing, 0);
	assert_int_equal(bits_at(e.buf, p + 3 + 5, 6), 33);
	p = e.nbits;
	v ^= 0x0000000100000000ull;
	assert_int_equal(ts_xor_append(&e, 50, v), 0);
	assert_int_equal(bits_at(e.buf, p + 1, 2), 2);
	assert_int_equal(e.nbits - p, 1 + 2 + 33);
	/* 64 significant bits are written as length 0. */
	p = e.nbits;
	v ^= 0x8000000000000001ull;
	assert_int_equal(ts_xor_append(&e, 60, v), 0);
	assert_int_equal(bits_at(e.buf, p + 1, 2), 3);
	assert_int_equal(bits_at(e.buf, p + 3, 5), 0);
	assert_int_equal(bits_at(e.buf, p + 8, 6), 0);
	assert_int_equal(e.nbits - p, 1 + 13 + 64);
	int64_t ts[7] = { 0, 10, 20, 30, 40, 50, 60 };
	struct ts_xor_it it;
	assert_int_equal(ts_xor_it_init(&it, e.buf, ts_xor_enc_bytes(&e)), 0);
	for (int i = 0; i < 7; i++)
		assert_int_equal(ts_xor_next(&it), 1);
	assert_int_equal(it.t, ts[6]);
	assert_int_equal(it.v, v);
	assert_int_equal(ts_xor_next(&it), 0);
	ts_xor_enc_fini(&e);
}

static void test_specials_and_wrap(void **state)
{
	(void)state;
	int64_t t[] = { INT64_MIN, -1, 0, INT64_MAX, INT64_MIN, 5, 5, 4, INT64_MAX, -7 };
	uint64_t v[] = { 0x7ff0000000000002ull,
			 0x8000000000000000ull,
			 0,
			 0x7ff0000000000000ull,
			 0xfff0000000000000ull,
			 0x7ff8000000000001ull,
			 0xffffffffffffffffull,
			 1,
			 0x7ff0000000000002ull,
			 0x3ff0000000000000ull };
	size_t n = sizeof t / sizeof t[0];
	struct ts_xor_enc e;
	encode(&e, t, v, n);
	assert_decodes_to(e.buf, ts_xor_enc_bytes(&e), t, v, n);
	ts_xor_enc_fini(&e);
	/* Single samples with extreme timestamps (10-byte varints). */
	for (size_t i = 0; i < n; i++) {
		encode(&e, &t[i], &v[i], 1);
		assert_decodes_to(e.buf, ts_xor_enc_bytes(&e), &t[i], &v[i], 1);
		ts_xor_enc_fini(&e);
	}
}

/* Random series of several shapes, checked after every append. */
static void test_random_roundtrip(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	int64_t t[600];
	uint64_t v[600];
	for (int round = 0; round < 400; round++) {
		size_t n = 1 + tu_rand(&rng) % 600;
		int kind = (int)(tu_rand(&rng) % 5);
		int64_t tt = (int64_t)(tu_rand(&rng) % 4000000000000ull) - 2000000000000;
		double g = 100.0;
		for (size_t i = 0; i < n; i++) {
			switch (kind) {
			case 0: /* counter, 15 s scrapes with ms jitter */
				tt += 15000 + (int64_t)(tu_rand(&rng) % 21) - 10;
				g += (double)(tu_rand(&rng) % 10);
				v[i] = tu_bits(g);
				break;
			case 1: /* gauge random walk with gaps */
				tt += (tu_rand(&rng) % 50 == 0)
					      ? (int64_t)(tu_rand(&rng) % 10000000)
					      : 30000;
				g += ((double)(tu_rand(&rng) % 2001) - 1000.0) / 100.0;
				v[i] = tu_bits(g);
				break;
			case 2: /* random bits, random steps */
				tt += (int64_t)(tu_rand(&rng) % 1000000);
				v[i] = tu_rand(&rng);
				break;
			case 3: /* anything at all, including wrap-around */
				tt = (int64_t)tu_rand(&rng);
				v[i] = tu_rand(&rng) >> (tu_rand(&rng) % 64);
				break;
			default: /* constant with stale markers */
				tt += 1000;
				v[i] = tu_rand(&rng) % 7 == 0 ? 0x7ff0000000000002ull
							      : tu_bits(42.0);
				break;
			}
			t[i] = tt;
		}
		struct ts_xor_enc e;
		ts_xor_enc_init(&e);
		for (size_t i = 0; i < n; i++) {
			size_t before = ts_xor_enc_bytes(&e);
			assert_int_equal(ts_xor_append(&e, t[i], v[i]), 0);
			assert_true(ts_xor_enc_bytes(&e) - before <= TS_XOR_MAX_SAMPLE_BYTES);
			if (i % 37 == 0 || i == n - 1)
				assert_decodes_to(e.buf, ts_xor_enc_bytes(&e), t, v, i + 1);
		}
		ts_xor_enc_fini(&e);
	}
}

static void test_empty_and_short(void **state)
{
	(void)state;
	struct ts_xor_it it;
	static const uint8_t empty[2] = { 0, 0 };
	assert_int_equal(ts_xor_it_init(&it, empty, 2), 0);
	assert_int_equal(ts_xor_next(&it), 0);
	assert_int_equal(ts_xor_seek(&it, 0), 0);
	assert_int_equal(ts_xor_count(empty, 2), 0);
	assert_int_equal(ts_xor_count(empty, 1), -1);
	assert_int_equal(ts_xor_count(NULL, 0), -1);
	assert_int_equal(ts_xor_it_init(&it, empty, 1), TS_ECORRUPT);
	assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
	assert_int_equal(ts_xor_seek(&it, 0), TS_ECORRUPT);
	assert_int_equal(ts_xor_it_init(&it, NULL, 0), TS_ECORRUPT);
	assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
	/* Encoder lifecycle: fini of a zeroed struct and of NULL, re-init after fini. */
	struct ts_xor_enc e;
	memset(&e, 0, sizeof e);
	ts_xor_enc_fini(&e);
	ts_xor_enc_fini(NULL);
	ts_xor_enc_init(&e);
	assert_null(e.buf);
	assert_int_equal(ts_xor_enc_bytes(&e), 2);
	assert_int_equal(ts_xor_append(&e, 1, 2), 0);
	ts_xor_enc_fini(&e);
	/* A zeroed (never initialised) struct encodes like an initialised one. */
	memset(&e, 0, sizeof e);
	int64_t t[3] = { 100, 200, 300 };
	uint64_t v[3] = { 1, 2, 3 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(ts_xor_append(&e, t[i], v[i]), 0);
	struct ts_xor_enc ref;
	encode(&ref, t, v, 3);
	assert_int_equal(ts_xor_enc_bytes(&e), ts_xor_enc_bytes(&ref));
	assert_memory_equal(e.buf, ref.buf, ts_xor_enc_bytes(&ref));
	ts_xor_enc_fini(&e);
	ts_xor_enc_fini(&ref);
}

/* Hand-made chunks for decoder-only paths. */
static void test_decoder_edges(void **state)
{
	(void)state;
	struct ts_xor_it it;
	/* Prometheus' iterator starts with window L = T = 0: a '10' before any '11'
	 * carries 64 bits. 2 samples: t0 = 0, v0 = 0, dt = 1, '10' + 64 bits of 1. */
	uint8_t c1[2 + 1 + 8 + 1 + 9] = { 0, 2, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
	/* bits: 1 0 then 63 zeros then 1, then pad */
	c1[12] = 0x80;
	c1[20] = 0x40; /* the payload is bits 2..65 after byte 12: its last is byte 20, bit 1 */
	assert_int_equal(ts_xor_it_init(&it, c1, sizeof c1), 0);
	assert_int_equal(ts_xor_next(&it), 1);
	assert_int_equal(ts_xor_next(&it), 1);
	assert_int_equal(it.t, 1);
	assert_int_equal(it.v, 1);
	assert_int_equal(ts_xor_next(&it), 0);

	/* A '11' window with leading 31 and more than 33 significant bits does not fit in
	 * 64 bits; 33 does. */
	for (unsigned sig = 33; sig <= 40; sig++) {
		uint8_t c2[2 + 1 + 8 + 1 + 8] = { 0, 2, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
		uint64_t hdr = 3ull << 11 | 31ull << 6 | sig; /* 11 11111 sig:6, then zeros */
		c2[12] = (uint8_t)(hdr >> 5);
		c2[13] = (uint8_t)(hdr << 3);
		assert_int_equal(ts_xor_it_init(&it, c2, sizeof c2), 0);
		assert_int_equal(ts_xor_next(&it), 1);
		if (sig == 33) {
			assert_int_equal(ts_xor_next(&it), 1);
			assert_int_equal(it.leading, 31);
			assert_int_equal(it.trailing, 0);
			continue;
		}
		assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
		assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
		assert_int_equal(ts_xor_seek(&it, 0), TS_ECORRUPT);
	}

	/* Varints longer than Go accepts. */
	uint8_t c3[2 + 11 + 8] = { 0, 1 };
	memset(c3 + 2, 0x80, 10);
	c3[12] = 0x00;
	assert_int_equal(ts_xor_it_init(&it, c3, sizeof c3), 0);
	assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
	/* 10 bytes whose last is > 1 overflows 64 bits. */
	uint8_t c4[2 + 10 + 8] = { 0, 1 };
	memset(c4 + 2, 0xff, 9);
	c4[11] = 0x02;
	assert_int_equal(ts_xor_it_init(&it, c4, sizeof c4), 0);
	assert_int_equal(ts_xor_next(&it), TS_ECORRUPT);
	c4[11] = 0x01; /* the largest valid one */
	assert_int_equal(ts_xor_it_init(&it, c4, sizeof c4), 0);
	assert_int_equal(ts_xor_next(&it), 1);
	assert_int_equal(it.t, INT64_MIN);
	/* Trailing bytes after the last sample are ignored, as Prometheus does. */
	uint8_t c5[2 + 1 + 8 + 4] = { 0, 1, 0x02, 0x3f, 0xf0 };
	c5[11] = 0xff;
	assert_int_equal(ts_xor_it_init(&it, c5, sizeof c5), 0);
	assert_int_equal(ts_xor_next(&it), 1);
	assert_int_equal(it.t, 1);
	assert_int_equal(tu_f64(it.v) == 1.0, 1);
	assert_int_equal(ts_xor_next(&it), 0);
}

/* ---- limits and faults ------------------------------------------------------------ */

static void test_full(void **state)
{
	(void)state;
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	for (uint32_t i = 0; i < TS_XOR_MAX_SAMPLES; i++)
		assert_int_equal(ts_xor_append(&e, (int64_t)i * 15000 + (i % 3), tu_bits(i * 0.5)),
				 0);
	struct ts_xor_enc snap = e;
	assert_int_equal(ts_xor_append(&e, INT64_MAX, 0), TS_EFULL);
	assert_memory_equal(&snap, &e, sizeof e);
	assert_int_equal(ts_xor_count(e.buf, ts_xor_enc_bytes(&e)), TS_XOR_MAX_SAMPLES);
	struct ts_xor_it it;
	assert_int_equal(ts_xor_it_init(&it, e.buf, ts_xor_enc_bytes(&e)), 0);
	uint32_t n = 0;
	int rc;
	while ((rc = ts_xor_next(&it)) == 1) {
		assert_int_equal(it.t, (int64_t)n * 15000 + (n % 3));
		assert_int_equal(it.v, tu_bits(n * 0.5));
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, TS_XOR_MAX_SAMPLES);
	/* Seek to the very last sample. */
	assert_int_equal(ts_xor_it_init(&it, e.buf, ts_xor_enc_bytes(&e)), 0);
	assert_int_equal(ts_xor_seek(&it, (int64_t)(TS_XOR_MAX_SAMPLES - 1) * 15000), 1);
	assert_int_equal(it.i, TS_XOR_MAX_SAMPLES);
	ts_xor_enc_fini(&e);
}

/* Every growth of the buffer fails once: -ENOMEM, nothing changed, next try works, and
 * the result equals a chunk built without failures. */
static void test_alloc_failure(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	enum { N = 3000 };
	int64_t *t = malloc(N * sizeof *t);
	uint64_t *v = malloc(N * sizeof *v);
	int64_t tt = 1700000000000;
	for (size_t i = 0; i < N; i++) {
		tt += 15000 + (int64_t)(tu_rand(&rng) % 7) - 3;
		t[i] = tt;
		v[i] = i % 5 ? tu_rand(&rng) : tu_bits((double)i);
	}
	struct ts_xor_enc e, ref;
	encode(&ref, t, v, N);
	ts_xor_enc_init(&e);
	int failures = 0;
	for (size_t i = 0; i < N; i++) {
		struct ts_xor_enc snap = e;
		size_t bytes = ts_xor_enc_bytes(&e);
		uint8_t *copy = malloc(bytes);
		if (e.buf)
			memcpy(copy, e.buf, bytes);
		ts_mem_fail_at(1, 1);
		int rc = ts_xor_append(&e, t[i], v[i]);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (rc == -ENOMEM) {
			assert_true(fired);
			failures++;
			assert_memory_equal(&snap, &e, sizeof e);
			if (e.buf)
				assert_memory_equal(copy, e.buf, bytes);
			/* Still a valid chunk of i samples, and usable. */
			if (i > 0)
				assert_decodes_to(e.buf, bytes, t, v, i);
			rc = ts_xor_append(&e, t[i], v[i]);
		} else {
			assert_false(fired);
		}
		assert_int_equal(rc, 0);
		free(copy);
	}
	/* 32 -> 64 -> ... bytes: a handful of growths for a ~10 KiB chunk. */
	print_message("%d injected failures\n", failures);
	assert_true(failures >= 5);
	assert_int_equal(ts_xor_enc_bytes(&e), ts_xor_enc_bytes(&ref));
	assert_memory_equal(e.buf, ref.buf, ts_xor_enc_bytes(&ref));
	assert_true(e.cap < 2 * ts_xor_enc_bytes(&e) + 64); /* geometric, not oversized */
	ts_xor_enc_fini(&e);
	ts_xor_enc_fini(&ref);
	free(t);
	free(v);
}

/* The first allocation is small: one encoder lives in every series head. */
static void test_small_start(void **state)
{
	(void)state;
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	ts_mem_fail_at(0, 0);
	assert_int_equal(ts_xor_append(&e, 0, 0), 0);
	assert_int_equal(ts_mem_count(), 1);
	assert_true(e.cap <= 64);
	ts_xor_enc_fini(&e);
}

/* ---- corrupt input ---------------------------------------------------------------- */

static void test_truncated(void **state)
{
	(void)state;
	int64_t t[256];
	uint64_t v[256];
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		/* Bytes up to the last bit are needed; the empty byte Prometheus may leave after
		 * them is not. */
		struct ts_xor_enc e;
		encode(&e, x->t, x->v, x->n);
		size_t need = (e.nbits + 7) / 8;
		ts_xor_enc_fini(&e);
		assert_true(need == x->chunk_len || need + 1 == x->chunk_len);
		for (size_t len = 0; len < x->chunk_len; len++) {
			size_t n;
			int rc = decode_all(x->chunk, len, t, v, 256, &n);
			if (len >= need) {
				assert_int_equal(rc, 0);
				assert_int_equal(n, x->n);
			} else {
				assert_int_equal(rc, TS_ECORRUPT);
				assert_true(n < x->n);
			}
			for (size_t i = 0; i < n; i++) {
				assert_int_equal(t[i], x->t[i]);
				assert_int_equal(v[i], x->v[i]);
			}
		}
	}
}

static void test_bitflips(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	size_t cap = 70000;
	int64_t *t = malloc(cap * sizeof *t);
	uint64_t *v = malloc(cap * sizeof *v);
	size_t corrupt = 0, clean = 0;
	for (size_t k = 0; k < n_vecs; k++) {
		const struct vec *x = &vecs[k];
		uint8_t *buf = malloc(x->chunk_len);
		for (size_t bit = 0; bit < x->chunk_len * 8; bit++) {
			memcpy(buf, x->chunk, x->chunk_len);
			buf[bit >> 3] ^= (uint8_t)(0x80 >> (bit & 7));
			/* A second random flip half of the time. */
			if (tu_rand(&rng) & 1) {
				size_t b2 = tu_rand(&rng) % (x->chunk_len * 8);
				buf[b2 >> 3] ^= (uint8_t)(0x80 >> (b2 & 7));
			}
			size_t n;
			int rc = decode_all(buf, x->chunk_len, t, v, cap, &n);
			assert_true(rc == 0 || rc == TS_ECORRUPT);
			assert_true(n <= (size_t)ts_xor_count(buf, x->chunk_len));
			if (rc == 0)
				assert_int_equal(n, ts_xor_count(buf, x->chunk_len));
			if (rc == 0)
				clean++;
			else
				corrupt++;
			/* Seek on the damaged chunk stays in bounds too. */
			struct ts_xor_it it;
			assert_int_equal(ts_xor_it_init(&it, buf, x->chunk_len), 0);
			rc = ts_xor_seek(&it, x->t[x->n / 2]);
			assert_true(rc == 0 || rc == 1 || rc == TS_ECORRUPT);
		}
		free(buf);
	}
	print_message("bit flips: %zu decoded (wrong but in bounds), %zu rejected\n", clean,
		      corrupt);
	assert_true(corrupt > 0);
	free(t);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_encode),
		cmocka_unit_test(test_vectors_decode),
		cmocka_unit_test(test_vectors_prefixes),
		cmocka_unit_test(test_vectors_seek),
		cmocka_unit_test(test_dod_buckets),
		cmocka_unit_test(test_value_windows),
		cmocka_unit_test(test_specials_and_wrap),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_empty_and_short),
		cmocka_unit_test(test_decoder_edges),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_small_start),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bitflips),
	};
	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
