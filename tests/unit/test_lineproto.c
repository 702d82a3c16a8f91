/*
 * test_lineproto.c - InfluxDB line protocol decoder and mapper.
 *
 * The centre is the conformance corpus (TS_TESTDATA/lineprotocol/corpus.json, read
 * with our own JSON tokenizer): every decode case must fail when it expects an error
 * and give exactly the expected points otherwise. Then behaviour the corpus does not
 * pin down (zero copy, scratch reuse, line numbers, precisions, the series mapping),
 * hostile input (every truncation, bit flips; ASan checks the reads), allocation
 * failure at every N, and a throughput figure.
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

#include "wire/jsonl.h"
#include "wire/lineproto.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "testutil.h"

/* ---- helpers ---- */

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static size_t b64decode(char *dst, const char *s, size_t n)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);
		if (v < 0)
			continue;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (char)(acc >> bits);
		}
	}
	return o;
}

/* Token string of the lexer, NUL-terminated copy in buf (unescaped). */
static size_t tok_str(const struct ts_jsonl_lex *lx, char *buf, size_t cap)
{
	assert_true(lx->tok_len < cap);
	size_t n = ts_jsonl_unescape(buf, lx->tok, lx->tok_len);
	buf[n] = 0;
	return n;
}

static int key_is(const struct ts_jsonl_lex *lx, const char *k)
{
	char b[64];
	if (lx->tok_len >= sizeof b)
		return 0;
	size_t n = tok_str(lx, b, sizeof b);
	return n == strlen(k) && memcmp(b, k, n) == 0;
}

#define NEXT(lx) ts_jsonl_lex_next(lx)

/* Copy of a parsed body for one point, for comparing. */
struct corpus_case {
	char key[64];
	char *text;
	size_t text_len;
	int64_t default_ns;
	enum ts_lp_precision prec;
	int expect_error;
	struct ts_jsonl_lex output; /* positioned at the value of "output" */
	int have_output;
};

static void parse_input(struct ts_jsonl_lex *lx, struct corpus_case *c)
{
	assert_int_equal(NEXT(lx), TS_JSONL_OBJ);
	for (int t; (t = NEXT(lx)) != TS_JSONL_OBJ_END;) {
		assert_int_equal(t, TS_JSONL_KEY);
		if (key_is(lx, "text")) {
			t = NEXT(lx);
			if (t == TS_JSONL_STR) {
				c->text = ts_malloc(lx->tok_len + 1);
				c->text_len = ts_jsonl_unescape(c->text, lx->tok, lx->tok_len);
			} else {
				assert_int_equal(t, TS_JSONL_OBJ);
				assert_int_equal(NEXT(lx), TS_JSONL_KEY);
				assert_true(key_is(lx, "binary"));
				assert_int_equal(NEXT(lx), TS_JSONL_STR);
				c->text = ts_malloc(lx->tok_len + 1);
				c->text_len = b64decode(c->text, lx->tok, lx->tok_len);
				assert_int_equal(NEXT(lx), TS_JSONL_OBJ_END);
			}
		} else if (key_is(lx, "defaultTime")) {
			assert_int_equal(NEXT(lx), TS_JSONL_NUM);
			char b[32];
			assert_true(lx->tok_len < sizeof b);
			memcpy(b, lx->tok, lx->tok_len);
			b[lx->tok_len] = 0;
			c->default_ns = strtoll(b, NULL, 10);
		} else if (key_is(lx, "precision")) {
			assert_int_equal(NEXT(lx), TS_JSONL_STR);
			char b[16];
			tok_str(lx, b, sizeof b);
			if (strcmp(b, "1ns") == 0)
				c->prec = TS_LP_NS;
			else if (strcmp(b, "1\xc2\xb5s") == 0)
				c->prec = TS_LP_US;
			else if (strcmp(b, "1ms") == 0)
				c->prec = TS_LP_MS;
			else if (strcmp(b, "1s") == 0)
				c->prec = TS_LP_S;
			else
				fail_msg("unknown precision %s", b);
		} else if (key_is(lx, "key")) {
			assert_int_equal(NEXT(lx), TS_JSONL_STR);
			tok_str(lx, c->key, sizeof c->key);
		} else {
			assert_int_equal(ts_jsonl_lex_skip(lx, NEXT(lx)), 0);
		}
	}
}

static int64_t tok_i64(const struct ts_jsonl_lex *lx)
{
	char b[40];
	assert_true(lx->tok_len < sizeof b);
	memcpy(b, lx->tok, lx->tok_len);
	b[lx->tok_len] = 0;
	return strtoll(b, NULL, 10);
}

static uint64_t tok_u64(const struct ts_jsonl_lex *lx)
{
	char b[40];
	assert_true(lx->tok_len < sizeof b);
	memcpy(b, lx->tok, lx->tok_len);
	b[lx->tok_len] = 0;
	return strtoull(b, NULL, 10);
}

static double tok_f64(const struct ts_jsonl_lex *lx)
{
	char b[400];
	assert_true(lx->tok_len < sizeof b);
	memcpy(b, lx->tok, lx->tok_len);
	b[lx->tok_len] = 0;
	return strtod(b, NULL);
}

static int bytes_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Compares one expected point (lexer at its '{' token already consumed) with pt.
 * Returns 1 when equal. Always consumes the expected point's JSON. */
static int compare_point(struct ts_jsonl_lex *lx, const struct ts_lp_point *pt, char *why,
			 size_t why_cap)
{
	int ok = 1;
	static char sbuf[1 << 16];
	for (int t; (t = NEXT(lx)) != TS_JSONL_OBJ_END;) {
		assert_int_equal(t, TS_JSONL_KEY);
		if (key_is(lx, "time")) {
			assert_int_equal(NEXT(lx), TS_JSONL_NUM);
			if (tok_i64(lx) != pt->t_ns) {
				snprintf(why, why_cap, "time %lld != %lld", (long long)pt->t_ns,
					 (long long)tok_i64(lx));
				ok = 0;
			}
		} else if (key_is(lx, "name")) {
			assert_int_equal(NEXT(lx), TS_JSONL_STR);
			size_t n = tok_str(lx, sbuf, sizeof sbuf);
			if (!bytes_eq(sbuf, n, pt->measurement, pt->measurement_len)) {
				snprintf(why, why_cap, "name");
				ok = 0;
			}
		} else if (key_is(lx, "tags")) {
			assert_int_equal(NEXT(lx), TS_JSONL_ARR);
			uint32_t i = 0;
			for (int u; (u = NEXT(lx)) != TS_JSONL_ARR_END; i++) {
				assert_int_equal(u, TS_JSONL_OBJ);
				for (int w; (w = NEXT(lx)) != TS_JSONL_OBJ_END;) {
					int is_key = key_is(lx, "key");
					assert_int_equal(NEXT(lx), TS_JSONL_STR);
					size_t n = tok_str(lx, sbuf, sizeof sbuf);
					if (i >= pt->n_tags) {
						ok = 0;
						continue;
					}
					const struct ts_label *l = &pt->tags[i];
					if (is_key ? !bytes_eq(sbuf, n, l->name, l->name_len)
						   : !bytes_eq(sbuf, n, l->value, l->value_len)) {
						snprintf(why, why_cap, "tag %u", i);
						ok = 0;
					}
				}
			}
			if (i != pt->n_tags) {
				snprintf(why, why_cap, "tag count %u != %u", pt->n_tags, i);
				ok = 0;
			}
		} else if (key_is(lx, "fields")) {
			assert_int_equal(NEXT(lx), TS_JSONL_ARR);
			uint32_t i = 0;
			for (int u; (u = NEXT(lx)) != TS_JSONL_ARR_END; i++) {
				assert_int_equal(u, TS_JSONL_OBJ);
				const struct ts_lp_field *f = i < pt->n_fields ? &pt->fields[i]
									       : NULL;
				if (!f)
					ok = 0;
				for (int w; (w = NEXT(lx)) != TS_JSONL_OBJ_END;) {
					if (key_is(lx, "key")) {
						assert_int_equal(NEXT(lx), TS_JSONL_STR);
						size_t n = tok_str(lx, sbuf, sizeof sbuf);
						if (f && !bytes_eq(sbuf, n, f->key, f->key_len)) {
							snprintf(why, why_cap, "field key %u", i);
							ok = 0;
						}
						continue;
					}
					assert_true(key_is(lx, "value"));
					assert_int_equal(NEXT(lx), TS_JSONL_OBJ);
					assert_int_equal(NEXT(lx), TS_JSONL_KEY);
					char kind[16];
					tok_str(lx, kind, sizeof kind);
					int v = NEXT(lx);
					int same = 0;
					if (!f) {
					} else if (strcmp(kind, "float") == 0) {
						same = f->type == TS_LP_FLOAT &&
						       f->v.f == tok_f64(lx);
					} else if (strcmp(kind, "int") == 0) {
						same = f->type == TS_LP_INT &&
						       f->v.i == tok_i64(lx);
					} else if (strcmp(kind, "uint") == 0) {
						same = f->type == TS_LP_UINT &&
						       f->v.u == tok_u64(lx);
					} else if (strcmp(kind, "bool") == 0) {
						same = f->type == TS_LP_BOOL &&
						       f->v.b == (v == TS_JSONL_TRUE);
					} else if (strcmp(kind, "string") == 0) {
						size_t n = tok_str(lx, sbuf, sizeof sbuf);
						same = f->type == TS_LP_STRING &&
						       bytes_eq(sbuf, n, f->str, f->str_len);
					} else {
						fail_msg("unknown kind %s", kind);
					}
					if (!same) {
						snprintf(why, why_cap, "field %u value (%s)", i,
							 kind);
						ok = 0;
					}
					assert_int_equal(NEXT(lx), TS_JSONL_OBJ_END);
				}
			}
			if (i != pt->n_fields) {
				snprintf(why, why_cap, "field count %u != %u", pt->n_fields, i);
				ok = 0;
			}
		} else {
			assert_int_equal(ts_jsonl_lex_skip(lx, NEXT(lx)), 0);
		}
	}
	return ok;
}

/* Runs one case; returns 1 if our decoder agrees with the corpus. */
static int run_case(struct corpus_case *c, char *why, size_t why_cap)
{
	/* An exact-size copy so ASan sees any read past the body. */
	char *body = ts_malloc(c->text_len ? c->text_len : 1);
	memcpy(body, c->text, c->text_len);
	struct ts_lp_parser p;
	ts_lp_init(&p, body, c->text_len, c->prec, c->default_ns);
	struct ts_lp_point pt;
	int ok = 1, rc;
	struct ts_jsonl_lex *lx = &c->output;
	assert_int_equal(NEXT(lx), TS_JSONL_OBJ);
	assert_int_equal(NEXT(lx), TS_JSONL_KEY);
	if (key_is(lx, "error")) {
		assert_int_equal(ts_jsonl_lex_skip(lx, NEXT(lx)), 0);
		while ((rc = ts_lp_next(&p, &pt)) == 1)
			;
		if (rc != TS_EINVALID) {
			snprintf(why, why_cap, "expected an error, got none");
			ok = 0;
		}
	} else {
		assert_true(key_is(lx, "result"));
		assert_int_equal(NEXT(lx), TS_JSONL_ARR);
		for (int t; (t = NEXT(lx)) != TS_JSONL_ARR_END;) {
			assert_int_equal(t, TS_JSONL_OBJ);
			rc = ts_lp_next(&p, &pt);
			if (rc != 1) {
				if (ok)
					snprintf(why, why_cap, "rc %d: %.150s", rc, p.err);
				ok = 0;
				assert_int_equal(ts_jsonl_lex_skip(lx, t), 0);
				continue;
			}
			if (!compare_point(lx, &pt, why, why_cap))
				ok = 0;
		}
		if (ok && (rc = ts_lp_next(&p, &pt)) != 0) {
			snprintf(why, why_cap, "extra point or error (rc %d) %.150s", rc, p.err);
			ok = 0;
		}
	}
	ts_lp_fini(&p);
	ts_free(body);
	return ok;
}

/* Cases where we knowingly differ from the corpus, with the reason. The test asserts
 * that we still differ (so a fix shows up). Empty: we agree with every case. */
static const struct {
	const char *key;
	const char *reason;
} deviations[] = {
	{ NULL, NULL },
};

static const char *deviation(const char *key)
{
	for (size_t i = 0; deviations[i].key; i++)
		if (strcmp(deviations[i].key, key) == 0)
			return deviations[i].reason;
	return NULL;
}

static void test_corpus(void **state)
{
	(void)state;
	size_t len = 0;
	char *buf = tu_load_data("lineprotocol/corpus.json", &len);
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, buf, len);
	assert_int_equal(NEXT(&lx), TS_JSONL_OBJ);
	int n_cases = 0, n_pass = 0, n_fail = 0, n_dev = 0, n_err = 0, n_res = 0;
	for (int t; (t = NEXT(&lx)) != TS_JSONL_OBJ_END;) {
		assert_int_equal(t, TS_JSONL_KEY);
		if (!key_is(&lx, "decode")) {
			assert_int_equal(ts_jsonl_lex_skip(&lx, NEXT(&lx)), 0);
			continue;
		}
		assert_int_equal(NEXT(&lx), TS_JSONL_OBJ);
		for (int u; (u = NEXT(&lx)) != TS_JSONL_OBJ_END;) {
			assert_int_equal(u, TS_JSONL_KEY);
			struct corpus_case c;
			memset(&c, 0, sizeof c);
			tok_str(&lx, c.key, sizeof c.key);
			assert_int_equal(NEXT(&lx), TS_JSONL_OBJ);
			for (int w; (w = NEXT(&lx)) != TS_JSONL_OBJ_END;) {
				assert_int_equal(w, TS_JSONL_KEY);
				if (key_is(&lx, "input")) {
					parse_input(&lx, &c);
				} else if (key_is(&lx, "output")) {
					c.output = lx; /* resumes here later */
					c.have_output = 1;
					assert_int_equal(ts_jsonl_lex_skip(&lx, NEXT(&lx)), 0);
				} else {
					assert_int_equal(ts_jsonl_lex_skip(&lx, NEXT(&lx)), 0);
				}
			}
			assert_true(c.have_output && c.text);
			char why[400] = "";
			/* Peek at the output kind for the statistics. */
			struct ts_jsonl_lex peek = c.output;
			NEXT(&peek);
			NEXT(&peek);
			if (key_is(&peek, "error"))
				n_err++;
			else
				n_res++;
			int ok = run_case(&c, why, sizeof why);
			const char *dev = deviation(c.key);
			n_cases++;
			if (dev) {
				n_dev++;
				if (ok)
					fail_msg("case %s listed as deviation (%s) but passes",
						 c.key, dev);
			} else if (ok) {
				n_pass++;
			} else {
				if (n_fail < 20)
					print_message("FAIL %s: %s; input \"%.*s\"\n", c.key, why,
						      (int)(c.text_len > 120 ? 120 : c.text_len),
						      c.text);
				n_fail++;
			}
			ts_free(c.text);
		}
	}
	assert_int_equal(NEXT(&lx), TS_JSONL_END);
	print_message("line-protocol corpus: %d decode cases (%d expect an error, %d a result): "
		      "%d passed, %d deviations, %d failed\n",
		      n_cases, n_err, n_res, n_pass, n_dev, n_fail);
	free(buf);
	assert_int_equal(n_fail, 0);
	assert_true(n_cases > 6000);
}

/* ---- behaviour ---- */

static int parse_all(const char *body, enum ts_lp_precision prec, int64_t def,
		     struct ts_lp_parser *p, struct ts_lp_point *pts, int max)
{
	ts_lp_init(p, body, strlen(body), prec, def);
	int n = 0, rc;
	while ((rc = ts_lp_next(p, &pts[n < max ? n : max - 1])) == 1)
		n++;
	return rc < 0 ? rc : n;
}

static void test_zero_copy_and_escapes(void **state)
{
	(void)state;
	const char *body = "cpu,host=a,region=us\\ west usage=1.5,s=\"q\\\"x\\\\y\\n\" 17\n"
			   "c\\,pu,z=1,a=2 v=1i,w=2u,b=TRUE\n";
	struct ts_lp_parser p;
	struct ts_lp_point pt;
	ts_lp_init(&p, body, strlen(body), TS_LP_NS, 0);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	/* Unescaped tokens alias the body. */
	assert_ptr_equal(pt.measurement, body);
	assert_int_equal(pt.measurement_len, 3);
	assert_int_equal(pt.n_tags, 2);
	assert_ptr_equal(pt.tags[0].name, body + 4);
	assert_true(bytes_eq(pt.tags[1].value, pt.tags[1].value_len, "us west", 7));
	assert_true(pt.tags[1].value < body || pt.tags[1].value >= body + strlen(body));
	assert_int_equal(pt.n_fields, 2);
	assert_int_equal(pt.fields[0].type, TS_LP_FLOAT);
	assert_true(pt.fields[0].v.f == 1.5);
	assert_int_equal(pt.fields[1].type, TS_LP_STRING);
	assert_true(bytes_eq(pt.fields[1].str, pt.fields[1].str_len, "q\"x\\y\n", 6));
	assert_int_equal(pt.t_ns, 17);
	assert_int_equal(pt.t_ms, 0);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_true(bytes_eq(pt.measurement, pt.measurement_len, "c,pu", 4));
	assert_true(bytes_eq(pt.tags[0].name, 1, "a", 1)); /* sorted */
	assert_int_equal(pt.fields[0].type, TS_LP_INT);
	assert_int_equal(pt.fields[0].v.i, 1);
	assert_int_equal(pt.fields[1].type, TS_LP_UINT);
	assert_int_equal(pt.fields[1].v.u, 2);
	assert_int_equal(pt.fields[2].type, TS_LP_BOOL);
	assert_int_equal(pt.fields[2].v.b, 1);
	assert_int_equal(pt.line, 2);
	assert_int_equal(ts_lp_next(&p, &pt), 0);
	ts_lp_fini(&p);
	ts_lp_fini(&p); /* idempotent */
}

static void test_errors_name_line(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		unsigned line;
		const char *what;
	} cases[] = {
		{ "m a=1\nm b=\n", 2, "value" },
		{ "m a=1\n\n# c\nm,x=1,x=2 a=1\n", 4, "duplicate tag" },
		{ "m s=\"a\nb\" 1\nm a=1x\n", 3, "float" },
		{ "m a=NaN\n", 1, "unrecognized" },
		{ "m a=-Inf\n", 1, "float" },
		{ "m a=1e400\n", 1, "out of range" },
		{ "m a=9223372036854775808i\n", 1, "out of range" },
		{ "m a=-1u\n", 1, "unsigned" },
		{ "m a=1 12a\n", 1, "timestamp" },
		{ "m a=1 1 x\n", 1, "after timestamp" },
		{ "m,t=\xff a=1\n", 1, "UTF-8" },
		{ "m a=\"\xc0\x80\"\n", 1, "UTF-8" },
		{ "m a=0x1p3\n", 1, "float" },
		{ "m a=1_000\n", 1, "float" },
		{ "m\n", 1, "tag key or field" },
		{ "\tm a=1\n", 1, "measurement" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ts_lp_parser p;
		struct ts_lp_point pt[4];
		int rc = parse_all(cases[i].body, TS_LP_NS, 0, &p, pt, 4);
		if (rc != TS_EINVALID || p.err_line != cases[i].line ||
		    !strstr(p.err, cases[i].what))
			fail_msg("case %zu: rc %d line %llu err \"%s\"", i, rc,
				 (unsigned long long)p.err_line, p.err);
		char want[32];
		snprintf(want, sizeof want, "line %u ", cases[i].line);
		assert_non_null(strstr(p.err, want));
		ts_lp_fini(&p);
	}
}

static void test_recovery_continues(void **state)
{
	(void)state;
	const char *body = "m a=1\nm b=oops\nm c=3 5\n";
	struct ts_lp_parser p;
	struct ts_lp_point pt;
	ts_lp_init(&p, body, strlen(body), TS_LP_NS, 0);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_int_equal(ts_lp_next(&p, &pt), TS_EINVALID);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_int_equal(pt.line, 3);
	assert_int_equal(pt.t_ns, 5);
	assert_int_equal(ts_lp_next(&p, &pt), 0);
	ts_lp_fini(&p);
}

static void test_precision_and_default_time(void **state)
{
	(void)state;
	static const struct {
		enum ts_lp_precision prec;
		const char *ts;
		int64_t want_ns;
	} cases[] = {
		{ TS_LP_NS, "-1", -1 },
		{ TS_LP_US, "1", 1000 },
		{ TS_LP_MS, "1700000000000", 1700000000000000000 },
		{ TS_LP_S, "1700000000", 1700000000000000000 },
		{ TS_LP_M, "2", 120000000000 },
		{ TS_LP_H, "-1", -3600000000000 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[64];
		snprintf(body, sizeof body, "m v=1 %s\r\n", cases[i].ts);
		struct ts_lp_parser p;
		struct ts_lp_point pt[2];
		assert_int_equal(parse_all(body, cases[i].prec, 0, &p, pt, 2), 1);
		assert_int_equal(pt[0].t_ns, cases[i].want_ns);
		ts_lp_fini(&p);
	}
	struct ts_lp_parser p;
	struct ts_lp_point pt[2];
	/* Overflow after scaling is an error. */
	assert_int_equal(parse_all("m v=1 9300000000\n", TS_LP_S, 0, &p, pt, 2), TS_EINVALID);
	ts_lp_fini(&p);
	/* Default time floors to the precision, also before the epoch. */
	assert_int_equal(parse_all("m v=1\n", TS_LP_S, -1500000000, &p, pt, 2), 1);
	assert_int_equal(pt[0].t_ns, -2000000000);
	assert_int_equal(pt[0].t_ms, -2000);
	ts_lp_fini(&p);
	assert_int_equal(parse_all("m v=1", TS_LP_MS, 1234567891, &p, pt, 2), 1);
	assert_int_equal(pt[0].t_ns, 1234000000);
	ts_lp_fini(&p);

	enum ts_lp_precision pr;
	assert_int_equal(ts_lp_precision_parse("ms", 2, &pr), 0);
	assert_int_equal(pr, TS_LP_MS);
	assert_int_equal(ts_lp_precision_parse("u", 1, &pr), 0);
	assert_int_equal(pr, TS_LP_US);
	assert_int_equal(ts_lp_precision_parse("", 0, &pr), 0);
	assert_int_equal(pr, TS_LP_NS);
	assert_int_equal(ts_lp_precision_parse("x", 1, &pr), TS_EINVALID);
}

static void test_comments_blank_crlf(void **state)
{
	(void)state;
	struct ts_lp_parser p;
	struct ts_lp_point pt[4];
	const char *body = "# hello\r\n\r\n   \n  # indented comment\n  m v=1 1\r\nm v=2   \r\n";
	assert_int_equal(parse_all(body, TS_LP_NS, 0, &p, pt, 4), 2);
	ts_lp_fini(&p);
	assert_int_equal(parse_all("# tab\tinside\nm v=1\n", TS_LP_NS, 0, &p, pt, 4), TS_EINVALID);
	ts_lp_fini(&p);
	assert_int_equal(parse_all("m v=1\rm v=2\n", TS_LP_NS, 0, &p, pt, 4), TS_EINVALID);
	ts_lp_fini(&p);
}

static const struct ts_label *find_label(const struct ts_lp_series *s, const char *name)
{
	for (uint32_t i = 0; i < s->n_labels; i++)
		if (bytes_eq(s->labels[i].name, s->labels[i].name_len, name, strlen(name)))
			return &s->labels[i];
	return NULL;
}

static int label_is(const struct ts_lp_series *s, const char *name, const char *value)
{
	const struct ts_label *l = find_label(s, name);
	return l && bytes_eq(l->value, l->value_len, value, strlen(value));
}

static void assert_sorted(const struct ts_lp_series *s)
{
	for (uint32_t i = 1; i < s->n_labels; i++) {
		const struct ts_label *a = &s->labels[i - 1], *b = &s->labels[i];
		uint32_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
		int c = memcmp(a->name, b->name, n);
		assert_true(c < 0 || (c == 0 && a->name_len < b->name_len));
	}
}

static void test_mapper(void **state)
{
	(void)state;
	const char *body = "cpu,host=h1,Zone=z value=1.5,n=-3i,u=18446744073709551615u,s=\"x\","
			   "ok=false 1700000000123456789\n"
			   "mem,db=own,__name__=bad free=1\n";
	struct ts_lp_parser p;
	struct ts_lp_point pt;
	struct ts_lp_mapper m;
	ts_lp_mapper_init(&m);
	ts_lp_init(&p, body, strlen(body), TS_LP_NS, 0);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_int_equal(ts_lp_map(&m, &pt, "telegraf", 8), 0);
	assert_int_equal(m.n_series, 4);
	assert_int_equal(m.n_skipped, 1);
	const char *names[] = { "cpu_value", "cpu_n", "cpu_u", "cpu_ok" };
	double vals[] = { 1.5, -3, 18446744073709551615.0, 0 };
	for (int i = 0; i < 4; i++) {
		const struct ts_lp_series *s = &m.series[i];
		assert_int_equal(s->n_labels, 4);
		assert_true(label_is(s, "__name__", names[i]));
		assert_true(label_is(s, "db", "telegraf"));
		assert_true(label_is(s, "host", "h1"));
		assert_true(label_is(s, "Zone", "z"));
		assert_sorted(s);
		assert_true(s->sample.v == vals[i]);
		assert_int_equal(s->sample.t_ms, 1700000000123);
	}
	/* "Zone" < "__name__" < "db" < "host" bytewise. */
	assert_true(bytes_eq(m.series[0].labels[0].name, 4, "Zone", 4));
	assert_true(bytes_eq(m.series[0].labels[1].name, 8, "__name__", 8));

	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_int_equal(ts_lp_map(&m, &pt, "telegraf", 8), 0);
	assert_int_equal(m.n_series, 1);
	assert_int_equal(m.series[0].n_labels, 2);
	assert_true(label_is(&m.series[0], "db", "own"));
	assert_true(label_is(&m.series[0], "__name__", "mem_free"));
	/* No db parameter, no db label. */
	assert_int_equal(ts_lp_map(&m, &pt, NULL, 0), 0);
	ts_lp_fini(&p);

	ts_lp_init(&p, "m s=\"only strings\"", 18, TS_LP_NS, 0);
	assert_int_equal(ts_lp_next(&p, &pt), 1);
	assert_int_equal(ts_lp_map(&m, &pt, NULL, 0), 0);
	assert_int_equal(m.n_series, 0);
	assert_int_equal(m.n_skipped, 1);
	ts_lp_fini(&p);
	ts_lp_mapper_fini(&m);
	ts_lp_mapper_fini(&m);
}

/* ---- hostile input ---- */

static const char *const samples[] = {
	"cpu,host=serverA,region=us\\ west usage_user=1.5,usage_system=2i,s=\"a\\\"b\\\\\\n\","
	"flag=T,u=3u 1700000000000000000\n"
	"# comment\r\n"
	"we\\,ird\\ name,k\\=ey=v\\,al f\\ k=-1.5e-3,g=.5,h=1. -12\n"
	"m s=\"multi\nline\" 5\n\n",
	"m,a=\xc3\xa9t\xc3\xa9 v=\"\xe2\x82\xac\xf0\x9f\x98\x80\"\n",
	"cpu value=1 9223372036854775806\ncpu value=2 -9223372036854775806\n",
};

static void run_bytes(const char *data, size_t len, enum ts_lp_precision prec)
{
	char *b = ts_malloc(len ? len : 1);
	memcpy(b, data, len);
	struct ts_lp_parser p;
	struct ts_lp_point pt;
	struct ts_lp_mapper m;
	ts_lp_mapper_init(&m);
	ts_lp_init(&p, b, len, prec, 42);
	int rc, guard = 0;
	while ((rc = ts_lp_next(&p, &pt)) != 0 && guard++ < 100000) {
		if (rc == 1) {
			assert_int_equal(ts_lp_map(&m, &pt, "db", 2), 0);
			for (uint32_t i = 0; i < m.n_series; i++)
				assert_true(m.series[i].n_labels >= 1);
		}
	}
	assert_true(guard < 100000);
	ts_lp_mapper_fini(&m);
	ts_lp_fini(&p);
	ts_free(b);
}

static void test_truncation_and_bitflips(void **state)
{
	(void)state;
	uint64_t seed = 0x5eed1234abcdULL;
	for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
		size_t n = strlen(samples[s]);
		for (size_t k = 0; k <= n; k++)
			run_bytes(samples[s], k, TS_LP_NS);
		char *buf = ts_malloc(n);
		for (int iter = 0; iter < 3000; iter++) {
			memcpy(buf, samples[s], n);
			int flips = 1 + iter % 4;
			for (int f = 0; f < flips; f++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				size_t at = (size_t)(seed >> 33) % n;
				buf[at] ^= (char)(1u << ((seed >> 20) & 7));
			}
			run_bytes(buf, n, (enum ts_lp_precision)(iter % 6));
		}
		ts_free(buf);
	}
}

static void test_alloc_failure(void **state)
{
	(void)state;
	/* Many tags, fields and escapes so every growth path runs. */
	char body[8192];
	size_t o = 0;
	for (int l = 0; l < 6; l++) {
		o += (size_t)snprintf(body + o, sizeof body - o, "me\\ as%d", l);
		for (int t = 0; t < 20 + l * 7; t++)
			o += (size_t)snprintf(body + o, sizeof body - o, ",t\\,%02d=v\\ %d", 40 - t,
					      t);
		o += (size_t)snprintf(body + o, sizeof body - o, " ");
		for (int f = 0; f < 20 + l * 9; f++)
			o += (size_t)snprintf(body + o, sizeof body - o,
					      "%sf%d=%d.5,s%d=\"x\\\"%d\"", f ? "," : "", f, f, f,
					      f);
		o += (size_t)snprintf(body + o, sizeof body - o, " %d\n", l);
	}
	unsigned long fired = 0;
	for (unsigned long n = 1;; n++) {
		struct ts_lp_parser p;
		struct ts_lp_point pt;
		struct ts_lp_mapper m;
		ts_lp_mapper_init(&m);
		ts_lp_init(&p, body, o, TS_LP_NS, 0);
		ts_mem_fail_at(n, 0);
		int rc, points = 0, enomem = 0;
		while ((rc = ts_lp_next(&p, &pt)) != 0) {
			if (rc == -ENOMEM) {
				enomem++;
				continue;
			}
			assert_int_equal(rc, 1);
			int mr = ts_lp_map(&m, &pt, "d", 1);
			if (mr == -ENOMEM) {
				enomem++;
				continue;
			}
			assert_int_equal(mr, 0);
			assert_int_equal(m.n_series, pt.n_fields / 2);
			points++;
		}
		int failed = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		ts_lp_mapper_fini(&m);
		ts_lp_fini(&p);
		if (!failed) {
			assert_int_equal(points, 6);
			break;
		}
		fired++;
		/* The one injected failure costs exactly one point, never more. */
		assert_int_equal(enomem, 1);
		assert_int_equal(points, 5);
	}
	assert_true(fired > 3);
}

/* ---- throughput ---- */

static void test_throughput(void **state)
{
	(void)state;
	const int lines = 20000;
	const char *fmt =
		"cpu,host=web-%02d.example.com,cpu=cpu%d usage_user=%d.5,usage_system=1.25,"
		"usage_idle=97.125,usage_nice=0,usage_iowait=0.0625,usage_irq=0,"
		"usage_softirq=0.03125,usage_steal=0,usage_guest=0,usage_guest_nice=0 "
		"17000000000%08d\n";
	size_t cap = (size_t)lines * 300;
	char *body = ts_malloc(cap);
	size_t o = 0;
	for (int i = 0; i < lines; i++)
		o += (size_t)snprintf(body + o, cap - o, fmt, i % 50, i % 8, i % 100, i);
	struct ts_lp_mapper m;
	ts_lp_mapper_init(&m);
	double best_parse = 1e30, best_map = 1e30;
	for (int rep = 0; rep < 5; rep++) {
		struct ts_lp_parser p;
		struct ts_lp_point pt;
		struct timespec a, b, c;
		ts_lp_init(&p, body, o, TS_LP_NS, 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		int n = 0;
		while (ts_lp_next(&p, &pt) == 1)
			n++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_int_equal(n, lines);
		ts_lp_fini(&p);
		ts_lp_init(&p, body, o, TS_LP_NS, 0);
		n = 0;
		while (ts_lp_next(&p, &pt) == 1) {
			assert_int_equal(ts_lp_map(&m, &pt, "telegraf", 8), 0);
			n += (int)m.n_series;
		}
		clock_gettime(CLOCK_MONOTONIC, &c);
		assert_int_equal(n, lines * 10);
		ts_lp_fini(&p);
		double t1 = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		double t2 = (double)(c.tv_sec - b.tv_sec) * 1e9 + (double)(c.tv_nsec - b.tv_nsec);
		if (t1 < best_parse)
			best_parse = t1;
		if (t2 < best_map)
			best_map = t2;
	}
	print_message("line protocol, Telegraf cpu line with 10 fields (%zu bytes/line): "
		      "parse %.0f ns/line (%.1f ns/field), parse+map %.0f ns/line (%.1f ns/field)"
		      "%s\n",
		      o / (size_t)lines, best_parse / lines, best_parse / lines / 10,
		      best_map / lines, best_map / lines / 10,
#ifdef TS_SANITIZED
		      " [sanitizer build: not representative]"
#else
		      ""
#endif
	);
	ts_lp_mapper_fini(&m);
	ts_free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_zero_copy_and_escapes),
		cmocka_unit_test(test_errors_name_line),
		cmocka_unit_test(test_recovery_continues),
		cmocka_unit_test(test_precision_and_default_time),
		cmocka_unit_test(test_comments_blank_crlf),
		cmocka_unit_test(test_mapper),
		cmocka_unit_test(test_truncation_and_bitflips),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
