/*
 * test_jsonl.c - the JSON tokenizer, JSON-lines import and export, and the number
 * conversions under them (fmtnum.c): shortest round-trip formatting checked over
 * millions of seeded random doubles, decimal parsing checked against strtod.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire/fmtnum.h"
#include "wire/jsonl.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "testutil.h"

#define SEED 0x9e3779b97f4a7c15ULL

/* ---- tokenizer ---- */

static int lex_all(const char *s, int *toks, int max)
{
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, s, strlen(s));
	int n = 0;
	for (;;) {
		int t = ts_jsonl_lex_next(&lx);
		if (t < 0)
			return t;
		if (n < max)
			toks[n] = t;
		n++;
		if (t == TS_JSONL_END)
			return n;
	}
}

static void test_lex_valid(void **state)
{
	(void)state;
	int t[32];
	assert_int_equal(
		lex_all(" {\"a\" : [1, -0.5e+3, \"x\", true, false, null, {}, []]} ", t, 32), 16);
	const int want[] = { TS_JSONL_OBJ,     TS_JSONL_KEY,	 TS_JSONL_ARR,	   TS_JSONL_NUM,
			     TS_JSONL_NUM,     TS_JSONL_STR,	 TS_JSONL_TRUE,	   TS_JSONL_FALSE,
			     TS_JSONL_NULL,    TS_JSONL_OBJ,	 TS_JSONL_OBJ_END, TS_JSONL_ARR,
			     TS_JSONL_ARR_END, TS_JSONL_ARR_END, TS_JSONL_OBJ_END, TS_JSONL_END };
	assert_memory_equal(t, want, sizeof want);
	assert_int_equal(lex_all("0", t, 32), 2);
	assert_int_equal(lex_all("\"\\ud83d\\ude00\\u00e9\\/\\b\"", t, 32), 2);
	/* Depth 64 is fine, 65 is not. */
	char deep[200];
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = 0;
	assert_int_equal(lex_all(deep, t, 32), 129);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	deep[130] = 0;
	assert_int_equal(lex_all(deep, t, 32), TS_EINVALID);
}

static void test_lex_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"   ",
		"[1,]",
		"{\"a\":1,}",
		"{\"a\"}",
		"{1:2}",
		"[1 2]",
		"1 2",
		"01",
		"-",
		"1.",
		".5",
		"1e",
		"+1",
		"tru",
		"nul",
		"\"abc",
		"\"a\\x\"",
		"\"\\u12G4\"",
		"\"\\ud800\"",
		"\"\\udc00\"",
		"\"\\ud800\\u0041\"",
		"\"a\nb\"",
		"\"\x01\"",
		"\"\xff\"",
		"\"\xed\xa0\x80\"",
		"[",
		"]",
		"{\"a\":}",
		"[1]]",
		"NaN",
		"Infinity",
		"{\"a\" 1}",
		"\"\\u12\"",
		"[,1]",
	};
	int t[8];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (lex_all(bad[i], t, 8) != TS_EINVALID)
			fail_msg("accepted bad JSON #%zu: %s", i, bad[i]);
}

static void test_unescape(void **state)
{
	(void)state;
	const char *raw = "a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00";
	char out[64];
	size_t n = ts_jsonl_unescape(out, raw, strlen(raw));
	const char want[] = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	assert_int_equal(n, sizeof want - 1);
	assert_memory_equal(out, want, n);
}

/* ---- import ---- */

static int label_is(const struct ts_jsonl_series *s, uint32_t i, const char *n, const char *v)
{
	return i < s->n_labels && s->labels[i].name_len == strlen(n) &&
	       memcmp(s->labels[i].name, n, strlen(n)) == 0 &&
	       s->labels[i].value_len == strlen(v) && memcmp(s->labels[i].value, v, strlen(v)) == 0;
}

static void test_import(void **state)
{
	(void)state;
	const char *body =
		"{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\\"b\",\"\":\"skip\",\"e\":\"\"},"
		"\"values\":[1,2.5,null,\"NaN\",\"-Inf\",\"Infinity\",-0,1e-400],"
		"\"timestamps\":[1,2,3,4,5,6,7,-8],\"extra\":{\"x\":[1,{\"y\":null}]}}\r\n"
		"\n   \r\n"
		"{\"timestamps\":[1700000000000],\"values\":[3],\"metric\":{\"b\":\"2\",\"a\":\"1\"}}";
	struct ts_jsonl_parser p;
	struct ts_jsonl_series s;
	ts_jsonl_init(&p, body, strlen(body));
	assert_int_equal(ts_jsonl_next(&p, &s), 1);
	assert_int_equal(s.line, 1);
	assert_int_equal(s.n_labels, 2);
	assert_true(label_is(&s, 0, "__name__", "up"));
	assert_true(label_is(&s, 1, "job", "a\"b"));
	/* Unescaped value lives in scratch, the plain one aliases the body. */
	assert_true(s.labels[0].value > body && s.labels[0].value < body + strlen(body));
	assert_int_equal(s.n_samples, 8);
	assert_true(s.samples[0].v == 1 && s.samples[1].v == 2.5);
	assert_int_equal(tu_bits(s.samples[2].v), 0x7ff8000000000001ULL);
	assert_int_equal(tu_bits(s.samples[3].v), 0x7ff8000000000001ULL);
	assert_true(isinf(s.samples[4].v) && s.samples[4].v < 0);
	assert_true(isinf(s.samples[5].v) && s.samples[5].v > 0);
	assert_int_equal(tu_bits(s.samples[6].v), 0x8000000000000000ULL);
	assert_int_equal(tu_bits(s.samples[7].v), 0);
	assert_int_equal(s.samples[7].t_ms, -8);
	assert_int_equal(ts_jsonl_next(&p, &s), 1);
	assert_int_equal(s.line, 4);
	assert_true(label_is(&s, 0, "a", "1"));
	assert_true(label_is(&s, 1, "b", "2"));
	assert_int_equal(s.samples[0].t_ms, 1700000000000);
	assert_int_equal(ts_jsonl_next(&p, &s), 0);
	ts_jsonl_fini(&p);
	ts_jsonl_fini(&p);
}

static void test_import_errors(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *what;
	} cases[] = {
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[1,2],\"timestamps\":[1]}", "values but" },
		{ "{\"values\":[1],\"timestamps\":[1]}", "missing \"metric" },
		{ "{\"metric\":{},\"values\":[1],\"timestamps\":[1]}", "no labels" },
		{ "{\"metric\":{\"a\":1},\"values\":[1],\"timestamps\":[1]}", "strings" },
		{ "{\"metric\":{\"a\":\"1\",\"a\":\"2\"},\"values\":[1],\"timestamps\":[1]}",
		  "duplicate label" },
		{ "{\"metric\":{\"a\":\"1\"},\"metric\":{\"b\":\"1\"},\"values\":[1],\"timestamps\":[1]}",
		  "duplicate" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[1],\"timestamps\":[1.5]}", "integer" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[1],\"timestamps\":[9223372036854775808]}",
		  "out of range" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[1e999],\"timestamps\":[1]}",
		  "out of range" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[\"1\"],\"timestamps\":[1]}",
		  "unsupported" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[true],\"timestamps\":[1]}", "must be" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[],\"timestamps\":[]}", "missing" },
		{ "{\"metric\":{\"a\":\"1\"},\"values\":[1],\"timestamps\":[1]} x",
		  "invalid JSON" },
		{ "[1]", "object" },
		{ "{\"metric\":{\"a\":\"\xff\"},\"values\":[1],\"timestamps\":[1]}", "UTF-8" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[512];
		snprintf(body, sizeof body,
			 "{\"metric\":{\"ok\":\"1\"},\"values\":[1],"
			 "\"timestamps\":[1]}\n%s\n",
			 cases[i].line);
		struct ts_jsonl_parser p;
		struct ts_jsonl_series s;
		ts_jsonl_init(&p, body, strlen(body));
		assert_int_equal(ts_jsonl_next(&p, &s), 1);
		int rc = ts_jsonl_next(&p, &s);
		if (rc != TS_EINVALID || p.err_line != 2 || !strstr(p.err, "line 2:") ||
		    !strstr(p.err, cases[i].what))
			fail_msg("case %zu: rc %d err \"%s\"", i, rc, p.err);
		assert_int_equal(ts_jsonl_next(&p, &s), 0);
		ts_jsonl_fini(&p);
	}
}

/* ---- export ---- */

static void test_encode(void **state)
{
	(void)state;
	struct ts_label l[] = {
		{ .name = "job", .name_len = 3, .value = "a\"\\\n\x01", .value_len = 5 },
		{ .name = "__name__", .name_len = 8, .value = "up", .value_len = 2 },
		{ .name = "bad", .name_len = 3, .value = "x\xffy\xc3\xa9", .value_len = 5 },
	};
	struct ts_sample s[] = { { 1, 1.5 },  { 2, NAN },  { 3, INFINITY }, { -4, -INFINITY },
				 { 5, 1e21 }, { 6, -0.0 }, { 7, 0.1 } };
	size_t bound = ts_jsonl_encode_bound(l, 3, 7);
	char *buf = ts_malloc(bound);
	size_t n = ts_jsonl_encode(buf, l, 3, s, 7);
	assert_true(n <= bound);
	const char *want = "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\\\"\\\\\\n\\u0001\","
			   "\"bad\":\"x\\ufffdy\xc3\xa9\"},\"values\":[1.5,null,\"Infinity\","
			   "\"-Infinity\",1e+21,-0,0.1],\"timestamps\":[1,2,3,-4,5,6,7]}\n";
	if (n != strlen(want) || memcmp(buf, want, n) != 0)
		fail_msg("got %.*s", (int)n, buf);
	/* What we write we read back. */
	struct ts_jsonl_parser p;
	struct ts_jsonl_series out;
	ts_jsonl_init(&p, buf, n);
	assert_int_equal(ts_jsonl_next(&p, &out), 1);
	assert_int_equal(out.n_samples, 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(out.samples[i].t_ms, s[i].t_ms);
		if (isnan(s[i].v))
			assert_true(isnan(out.samples[i].v));
		else
			assert_int_equal(tu_bits(out.samples[i].v), tu_bits(s[i].v));
	}
	ts_jsonl_fini(&p);
	ts_free(buf);
}

/* ---- numbers ---- */

static void test_fmt_known(void **state)
{
	(void)state;
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{ 0.0, "0" },
		{ -0.0, "-0" },
		{ 1, "1" },
		{ 100, "100" },
		{ 999999, "999999" },
		{ 1e6, "1e+06" },
		{ 123456, "123456" },
		{ 1234567, "1.234567e+06" },
		{ 123456.7, "123456.7" },
		{ 299792458, "2.99792458e+08" },
		{ 0.0001, "0.0001" },
		{ 0.000123, "0.000123" },
		{ 0.00001, "1e-05" },
		{ 0.1, "0.1" },
		{ 0.3, "0.3" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 2.0 / 3, "0.6666666666666666" },
		{ 1.5, "1.5" },
		{ -2.5, "-2.5" },
		{ 1e21, "1e+21" },
		{ 1e23, "1e+23" },
		{ 1e100, "1e+100" },
		{ 9007199254740992.0, "9.007199254740992e+15" },
		{ 5e-324, "5e-324" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1e-7, "1e-07" },
		{ 123e-20, "1.23e-18" },
		{ 100000, "100000" },
		{ 12345678.9, "1.23456789e+07" },
	};
	char b[TS_FMT_DOUBLE_MAX];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = ts_fmt_double(b, cases[i].v);
		if (n != strlen(cases[i].s) || strcmp(b, cases[i].s) != 0)
			fail_msg("%.17g: got %s want %s", cases[i].v, b, cases[i].s);
	}
	assert_int_equal(ts_fmt_double(b, NAN), 3);
	assert_string_equal(b, "NaN");
	assert_string_equal((ts_fmt_double(b, tu_f64(0x7ff0000000000002ULL)), b), "NaN");
	assert_string_equal((ts_fmt_double(b, INFINITY), b), "+Inf");
	assert_string_equal((ts_fmt_double(b, -INFINITY), b), "-Inf");
}

static void test_fmt_roundtrip_random(void **state)
{
	(void)state;
	/* 2^64 (uint64 max as float) once read back as 2^64 - 2048. */
	char p64[TS_FMT_DOUBLE_MAX];
	ts_fmt_double(p64, 18446744073709551616.0);
	assert_true(strtod(p64, NULL) == 18446744073709551616.0);
	assert_string_equal(p64, "1.8446744073709552e+19");
#ifdef TS_SANITIZED
	const long n = 300000;
#else
	const long n = 2000000;
#endif
	uint64_t seed = SEED;
	char b[TS_FMT_DOUBLE_MAX];
	for (long i = 0; i < n; i++) {
		uint64_t r = tu_rand(&seed);
		double v;
		if (i % 4 == 0) /* short decimals, the common case for metrics */
			v = (double)(int64_t)(r % 2000000 - 1000000) /
			    (double)(1 + (r >> 40) % 1000);
		else if (i % 8 == 1) /* powers of two and their neighbours: the ULP below a
				      * power of two is half the one above */
			v = nextafter(ldexp(1.0, (int)(r % 2040) - 1020),
				      (r >> 20) % 3 == 0   ? 0.0
				      : (r >> 20) % 3 == 1 ? INFINITY
							   : ldexp(1.0, (int)(r % 2040) - 1020));
		else
			v = tu_f64(r);
		if (isnan(v) || isinf(v))
			continue;
		size_t len = ts_fmt_double(b, v);
		assert_true(len < TS_FMT_DOUBLE_MAX);
		double back = strtod(b, NULL);
		if (tu_bits(back) != tu_bits(v))
			fail_msg("seed %#llx iteration %ld: %a -> %s -> %a",
				 (unsigned long long)SEED, i, v, b, back);
		/* Shortest: one digit fewer (correctly rounded) must not round-trip.
		 * Significant digits: mantissa digits minus leading and trailing zeros. */
		char dg[32];
		int nd = 0;
		for (char *c = b; *c && *c != 'e'; c++)
			if (*c >= '0' && *c <= '9' && (nd > 0 || *c != '0'))
				dg[nd++] = *c;
		while (nd > 0 && dg[nd - 1] == '0')
			nd--;
		/* Closest: the digits are v correctly rounded to nd digits (printf's). */
		if (v != 0) {
			char ref[48], rd[32];
			int rn = 0;
			snprintf(ref, sizeof ref, "%.*e", nd - 1, v);
			for (char *c = ref; *c && *c != 'e'; c++)
				if (*c >= '0' && *c <= '9' && (rn > 0 || *c != '0'))
					rd[rn++] = *c;
			while (rn > 0 && rd[rn - 1] == '0')
				rn--;
			if (rn != nd || memcmp(rd, dg, (size_t)nd) != 0)
				fail_msg("seed %#llx iteration %ld: %s is not %s rounded",
					 (unsigned long long)SEED, i, b, ref);
		}
		if (nd > 1 && v != 0) {
			char shorter[48];
			snprintf(shorter, sizeof shorter, "%.*e", nd - 2, v);
			if (strtod(shorter, NULL) == v)
				fail_msg("seed %#llx iteration %ld: %s not shortest (%s)",
					 (unsigned long long)SEED, i, b, shorter);
		}
	}
}

static void test_parse_double_vs_strtod(void **state)
{
	(void)state;
	uint64_t seed = SEED ^ 1;
	char s[700];
	for (int i = 0; i < 200000; i++) {
		uint64_t r = tu_rand(&seed);
		size_t o = 0;
		if (r & 1)
			s[o++] = '-';
		int digits = 1 + (int)((r >> 1) % (i % 10 == 0 ? 600 : 25));
		int point = (int)((r >> 12) % (size_t)(digits + 2)) - 1;
		for (int d = 0; d < digits; d++) {
			if (d == point)
				s[o++] = '.';
			s[o++] = (char)('0' + tu_rand(&seed) % 10);
		}
		if (r & 2)
			o += (size_t)snprintf(s + o, sizeof s - o, "e%d",
					      (int)((r >> 20) % 700) - 350);
		s[o] = 0;
		double want = strtod(s, NULL), got;
		int rc = ts_fmtnum_parse_double(s, o, &got);
		if (isinf(want)) {
			assert_int_equal(rc, TS_ELIMIT);
			continue;
		}
		if (rc != 0 || tu_bits(got) != tu_bits(want))
			fail_msg("seed %#llx: %s -> %a, strtod %a", (unsigned long long)(SEED ^ 1),
				 s, got, want);
	}
	static const char *const bad[] = { "",	    "-",    "+",   ".",	  "1e",	 "1e+", "e5",
					   "1.2.3", "0x10", "inf", "nan", "1_0", " 1",	"1 " };
	double v;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ts_fmtnum_parse_double(bad[i], strlen(bad[i]), &v), TS_EINVALID);
	/* Pathological: a million zeros then a large exponent. */
	size_t big = 1000000 + 20;
	char *z = ts_malloc(big);
	size_t o = 0;
	z[o++] = '0';
	z[o++] = '.';
	memset(z + o, '0', 999999);
	o += 999999;
	z[o++] = '1';
	o += (size_t)snprintf(z + o, big - o, "e1000003");
	assert_int_equal(ts_fmtnum_parse_double(z, o, &v), 0);
	assert_true(v == 1000.0);
	ts_free(z);

	int64_t i64;
	uint64_t u64;
	assert_int_equal(ts_fmtnum_parse_int64("-9223372036854775808", 20, &i64), 0);
	assert_true(i64 == INT64_MIN);
	assert_int_equal(ts_fmtnum_parse_int64("9223372036854775808", 19, &i64), TS_ELIMIT);
	assert_int_equal(ts_fmtnum_parse_uint64("18446744073709551615", 20, &u64), 0);
	assert_true(u64 == UINT64_MAX);
	assert_int_equal(ts_fmtnum_parse_uint64("18446744073709551616", 20, &u64), TS_ELIMIT);
	assert_int_equal(ts_fmtnum_parse_uint64("-1", 2, &u64), TS_EINVALID);
}

/* ---- hostile input, allocation failure, throughput ---- */

static const char sample_body[] =
	"{\"metric\":{\"__name__\":\"http_requests_total\",\"path\":\"/a\\\\b\\u00e9\","
	"\"code\":\"200\"},\"values\":[1,2.5,null,\"-Inf\"],\"timestamps\":[1,2,3,4]}\n"
	"{\"metric\":{\"__name__\":\"x\\ud83d\\ude00\"},\"values\":[0.1],\"timestamps\":[9]}\n";

static void parse_bytes(const char *data, size_t len)
{
	char *b = ts_malloc(len ? len : 1);
	memcpy(b, data, len);
	struct ts_jsonl_parser p;
	struct ts_jsonl_series s;
	ts_jsonl_init(&p, b, len);
	int rc, guard = 0;
	while ((rc = ts_jsonl_next(&p, &s)) != 0 && guard++ < 1000)
		if (rc == 1)
			assert_true(s.n_samples >= 1 && s.n_labels >= 1);
	ts_jsonl_fini(&p);
	ts_free(b);
}

static void test_truncation_and_bitflips(void **state)
{
	(void)state;
	size_t n = sizeof sample_body - 1;
	for (size_t k = 0; k <= n; k++)
		parse_bytes(sample_body, k);
	uint64_t seed = SEED ^ 2;
	char buf[sizeof sample_body];
	for (int iter = 0; iter < 20000; iter++) {
		memcpy(buf, sample_body, n);
		for (int f = 0; f <= iter % 3; f++) {
			uint64_t r = tu_rand(&seed);
			buf[r % n] ^= (char)(1u << ((r >> 32) & 7));
		}
		parse_bytes(buf, n);
	}
}

static void test_alloc_failure(void **state)
{
	(void)state;
	char body[16384];
	size_t o = 0;
	for (int l = 0; l < 4; l++) {
		o += (size_t)snprintf(body + o, sizeof body - o, "{\"metric\":{");
		for (int k = 0; k < 20 + l * 5; k++)
			o += (size_t)snprintf(body + o, sizeof body - o,
					      "%s\"l\\u00e9%02d\":\"v\\n%d\"", k ? "," : "", 50 - k,
					      k);
		o += (size_t)snprintf(body + o, sizeof body - o, "},\"values\":[");
		for (int k = 0; k < 100 + l * 60; k++)
			o += (size_t)snprintf(body + o, sizeof body - o, "%s%d.25", k ? "," : "",
					      k);
		o += (size_t)snprintf(body + o, sizeof body - o, "],\"timestamps\":[");
		for (int k = 0; k < 100 + l * 60; k++)
			o += (size_t)snprintf(body + o, sizeof body - o, "%s%d", k ? "," : "", k);
		o += (size_t)snprintf(body + o, sizeof body - o, "]}\n");
	}
	unsigned long fired = 0;
	for (unsigned long n = 1;; n++) {
		struct ts_jsonl_parser p;
		struct ts_jsonl_series s;
		ts_jsonl_init(&p, body, o);
		ts_mem_fail_at(n, 0);
		int rc, ok = 0, enomem = 0;
		while ((rc = ts_jsonl_next(&p, &s)) != 0) {
			if (rc == -ENOMEM) {
				enomem++;
				continue;
			}
			assert_int_equal(rc, 1);
			assert_int_equal(s.n_samples, 100 + (s.line - 1) * 60);
			ok++;
		}
		int failed = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		ts_jsonl_fini(&p);
		if (!failed) {
			assert_int_equal(ok, 4);
			break;
		}
		fired++;
		assert_int_equal(enomem, 1);
		assert_int_equal(ok, 3);
	}
	assert_true(fired > 3);
}

static void test_throughput(void **state)
{
	(void)state;
	const int lines = 20000;
	size_t cap = (size_t)lines * 400;
	char *body = ts_malloc(cap);
	size_t o = 0;
	for (int i = 0; i < lines; i++)
		o += (size_t)snprintf(
			body + o, cap - o,
			"{\"metric\":{\"__name__\":\"node_cpu_seconds_total\",\"cpu\":\"%d\","
			"\"mode\":\"idle\",\"instance\":\"host-%d:9100\",\"job\":\"node\"},"
			"\"values\":[%d.5,%d.75,%d,%d.125,%d.5],"
			"\"timestamps\":[1700000000000,1700000015000,1700000030000,"
			"1700000045000,1700000060000]}\n",
			i % 8, i % 100, i, i + 1, i + 2, i + 3, i + 4);
	double best = 1e30, best_enc = 1e30;
	char *out = ts_malloc(4096);
	for (int rep = 0; rep < 5; rep++) {
		struct ts_jsonl_parser p;
		struct ts_jsonl_series s;
		struct timespec a, b, c;
		ts_jsonl_init(&p, body, o);
		clock_gettime(CLOCK_MONOTONIC, &a);
		int n = 0;
		while (ts_jsonl_next(&p, &s) == 1)
			n++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_int_equal(n, lines);
		ts_jsonl_fini(&p);
		ts_jsonl_init(&p, body, o);
		size_t total = 0;
		while (ts_jsonl_next(&p, &s) == 1) {
			assert_true(ts_jsonl_encode_bound(s.labels, s.n_labels, s.n_samples) <=
				    4096);
			total += ts_jsonl_encode(out, s.labels, s.n_labels, s.samples, s.n_samples);
		}
		clock_gettime(CLOCK_MONOTONIC, &c);
		assert_true(total > 0);
		ts_jsonl_fini(&p);
		double t1 = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		double t2 = (double)(c.tv_sec - b.tv_sec) * 1e9 + (double)(c.tv_nsec - b.tv_nsec) -
			    t1;
		if (t1 < best)
			best = t1;
		if (t2 < best_enc)
			best_enc = t2;
	}
	print_message(
		"JSON lines import, 5 labels + 5 samples (%zu bytes/line): parse %.0f ns/line; "
		"export encode %.0f ns/line%s\n",
		o / (size_t)lines, best / lines, best_enc / lines,
#ifdef TS_SANITIZED
		" [sanitizer build: not representative]"
#else
		""
#endif
	);
	ts_free(out);
	ts_free(body);
}

/* ts_fmt_u64 against printf: digit-count boundaries and seeded random values. */
static void test_fmt_u64(void **state)
{
	(void)state;
	static const uint64_t fixed[] = { 0,	     9,	  10,	99,	    100,
					  101,	     999, 1000, 1796663100, 10000000000000000000ULL,
					  UINT64_MAX };
	char got[24], want[24];
	uint64_t seed = SEED ^ 7;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = i < (int)(sizeof fixed / sizeof fixed[0])
				     ? fixed[i]
				     : tu_rand(&seed) >> (tu_rand(&seed) % 64);
		size_t n = ts_fmt_u64(got, v);
		snprintf(want, sizeof want, "%llu", (unsigned long long)v);
		assert_int_equal(n, strlen(want));
		assert_string_equal(got, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_u64),
		cmocka_unit_test(test_lex_valid),
		cmocka_unit_test(test_lex_invalid),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_import),
		cmocka_unit_test(test_import_errors),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_fmt_known),
		cmocka_unit_test(test_fmt_roundtrip_random),
		cmocka_unit_test(test_parse_double_vs_strtod),
		cmocka_unit_test(test_truncation_and_bitflips),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
