/*
 * test_relit.c - the literal sets of alternation regexes (tsdb/relit.c): known
 * expansions and refusals, then seeded random regexes over a small alphabet checked
 * against PCRE2 as the reference: when a regex expands, every string over the alphabet
 * up to length 5 is in the set exactly when the anchored regex matches it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/relit.h"

static int expand(const char *re, struct ts__relit *s)
{
	memset(s, 0, sizeof *s);
	return ts__relit_expand(re, strlen(re), 256, 250, s);
}

/* The set as "v1,v2,..." in order. */
static void joined(const struct ts__relit *s, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < s->n; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", s->v[i]);
}

static void test_known(void **state)
{
	(void)state;
	static const struct {
		const char *re, *want; /* want NULL: not a set */
	} cases[] = {
		{ "a", "a" },
		{ "a|b", "a,b" },
		{ "host_(1|2|3)", "host_1,host_2,host_3" },
		{ "cpu_usage_(user|system|idle|nice|iowait)",
		  "cpu_usage_user,cpu_usage_system,cpu_usage_idle,cpu_usage_nice,cpu_usage_iowait" },
		{ "(?:a|b)(c|d)", "ac,ad,bc,bd" },
		{ "x(a|(b|c)d)", "xa,xbd,xcd" },
		{ "x\\.y|z\\|", "x.y,z|" },
		{ "a()b", "ab" },
		{ "x(a|)", "xa,x" },
		{ "ünï|cödé", "ünï,cödé" },
		{ "", NULL },	/* matches "" only */
		{ "a|", NULL }, /* "" among the values */
		{ "a.b", NULL },
		{ "a*", NULL },
		{ "ab?", NULL },
		{ "(a|b)+", NULL },
		{ "(a|b){2}", NULL },
		{ "[ab]", NULL },
		{ "(?i)a", NULL },
		{ "(?i:a)", NULL },
		{ "\\d", NULL },
		{ "\\Qa\\E", NULL },
		{ "^a$", NULL },
		{ "(a", NULL },
		{ "a)", NULL },
		{ "é+", NULL },
	};
	char buf[1024];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ts__relit s;
		int rc = expand(cases[i].re, &s);
		if (!cases[i].want) {
			if (rc != 0)
				fail_msg("%s expanded", cases[i].re);
			assert_int_equal(s.n, 0);
			continue;
		}
		if (rc != 1)
			fail_msg("%s did not expand", cases[i].re);
		joined(&s, buf, sizeof buf);
		if (strcmp(buf, cases[i].want))
			fail_msg("%s: %s, want %s", cases[i].re, buf, cases[i].want);
		ts__relit_free(&s);
	}
}

static void test_bounds(void **state)
{
	(void)state;
	struct ts__relit s;
	/* 2^9 = 512 values: over the bound of 256. */
	assert_int_equal(expand("(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)", &s), 0);
	assert_int_equal(expand("(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)", &s), 1);
	assert_int_equal(s.n, 256);
	ts__relit_free(&s);
	char longre[300];
	memset(longre, 'x', sizeof longre - 1);
	longre[sizeof longre - 1] = 0;
	assert_int_equal(expand(longre, &s), 0); /* 299 bytes: over max_len */
}

/* PCRE2 as the regex engine reads it, anchored at both ends. */
static int pcre_match(pcre2_code *re, pcre2_match_data *md, const char *v, size_t n)
{
	return pcre2_match(re, (PCRE2_SPTR)v, n, 0, 0, md, NULL) >= 0;
}

static void test_random(void **state)
{
	(void)state;
	static const char alpha[] = "ab|()\\.?*:";
	static const char subj[] = "ab.|";
	srand(42);
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	size_t expanded = 0;
	for (int iter = 0; iter < 20000; iter++) {
		char re[16], pat[64];
		int n = 1 + rand() % 10;
		for (int i = 0; i < n; i++)
			re[i] = alpha[rand() % (int)(sizeof alpha - 1)];
		re[n] = 0;
		snprintf(pat, sizeof pat, "^(?:%s)$", re);
		int err;
		PCRE2_SIZE off;
		pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &err,
						 &off, NULL);
		struct ts__relit s;
		int rc = expand(re, &s);
		assert_true(rc == 0 || rc == 1);
		if (!code) {
			/* Not a valid regex: never a set. */
			if (rc == 1)
				fail_msg("invalid %s expanded", re);
			continue;
		}
		if (rc == 1) {
			expanded++;
			/* Every string over subj up to length 5: in the set iff it matches. */
			char v[6];
			for (int len = 0; len <= 5; len++) {
				int total = 1;
				for (int i = 0; i < len; i++)
					total *= 4;
				for (int k = 0; k < total; k++) {
					int x = k;
					for (int i = 0; i < len; i++, x /= 4)
						v[i] = subj[x % 4];
					int in = 0;
					for (size_t j = 0; j < s.n && !in; j++)
						in = s.len[j] == (size_t)len &&
						     !memcmp(s.v[j], v, len);
					if (in != pcre_match(code, md, v, (size_t)len))
						fail_msg("%s: \"%.*s\" in set %d", re, len, v, in);
				}
			}
			for (size_t j = 0; j < s.n; j++)
				if (!pcre_match(code, md, s.v[j], s.len[j]))
					fail_msg("%s: %s does not match", re, s.v[j]);
			ts__relit_free(&s);
		}
		pcre2_code_free(code);
	}
	pcre2_match_data_free(md);
	assert_true(expanded > 500); /* the property was exercised */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
