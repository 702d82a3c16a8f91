/*
 * test_select.c - the selector engine (tsdb/select.c) against a brute-force reference.
 *
 * Random label sets whose values straddle the postings key bound (values of 249, 250,
 * 251 bytes and longer share prefixes, so cut keys collide), every matcher type, and
 * patterns that make a backtracking engine give up on long values. Each selection is
 * compared with the reference answer computed on the plain label sets: equality with
 * memcmp, regexes with POSIX extended regexes (glibc's engine, not PCRE2) anchored at
 * both ends, a missing label as "". Checked three ways: series only in memory (not yet
 * in the postings), after a checkpoint (all in the postings), and mixed; series only in
 * memory both ways, checked one by one and through their in-memory postings (upost.c),
 * also while a failed flush holds them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

/* tsdb/select.c and writer.c: unindexed series checked one by one before their
 * postings are used, and head row bytes per checkpoint transaction. */
extern size_t ts__unindexed_scan_max, ts__ckpt_slice_bytes;

/* More than select.c's FEW_CANDIDATES (256): the metric name alone selects every series,
 * so regex and negative matchers go through their postings; an equality on a or b
 * leaves few, and the rest are checked on labels. Both paths are compared here. */
#define N_SERIES 600
#define N_QUERIES 300
#define MAX_VAL 4100

/* A series of the test: metric "m", labels a and b (either may be absent: ""), id k. */
struct tseries {
	char a[MAX_VAL + 1];
	char b[16];
	char k[24];
};

static const size_t lens[] = { 1, 5, 249, 250, 251, 252, 300, 1000, 4001 };

static void rand_value(uint64_t *rs, char *out)
{
	uint64_t r = tu_rand(rs);
	if (r % 8 == 0) {
		out[0] = 0; /* absent */
		return;
	}
	size_t n = lens[(r >> 8) % (sizeof lens / sizeof lens[0])];
	/* Mostly 'x' with a different last byte or two, so long values share their
	 * first 250 bytes and differ only past the postings key bound. */
	memset(out, 'x', n);
	if ((r >> 16) % 2)
		out[n - 1] = "xyz"[(r >> 20) % 3];
	if (n > 2 && (r >> 24) % 3 == 0)
		out[n - 2] = "ab"[(r >> 28) % 2];
	out[n] = 0;
}

static void make_series(uint64_t *rs, struct tseries *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rand_value(rs, s[i].a);
		uint64_t r = tu_rand(rs);
		snprintf(s[i].b, sizeof s[i].b, "%s", r % 3 == 0 ? "" : r % 3 == 1 ? "p" : "q");
		snprintf(s[i].k, sizeof s[i].k, "%zu", i);
	}
}

static void append_series(struct ts_db *db, const struct tseries *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		struct ts_label l[4];
		uint32_t nl = 0;
		l[nl++] = (struct ts_label){ "__name__", "m", 8, 1 };
		if (s[i].a[0])
			l[nl++] = (struct ts_label){ "a", s[i].a, 1, (uint32_t)strlen(s[i].a) };
		if (s[i].b[0])
			l[nl++] = (struct ts_label){ "b", s[i].b, 1, (uint32_t)strlen(s[i].b) };
		l[nl++] = (struct ts_label){ "k", s[i].k, 1, (uint32_t)strlen(s[i].k) };
		struct ts_sample smp = { 1000, 1.0 };
		struct ts_series_in in = { l, nl, &smp, 1 };
		struct ts_append_result res;
		assert_int_equal(ts_db_append(db, &in, 1, &res, NULL), 0);
		assert_int_equal(res.n_appended, 1);
	}
}

/* A random matcher on a, b or an absent label c. value must hold MAX_VAL + 32 bytes. */
static void rand_matcher(uint64_t *rs, const struct tseries *s, size_t n, struct ts_matcher *m,
			 char *value)
{
	static const char *const res[] = {
		"x*",
		"x+",
		"x*y",
		"x*z",
		"x{250}.*",
		"x{251}",
		".*a.",
		"(x|y)*z",
		"(x|xx)*y",
		".+",
		"",
		"x{249}[xyz]?",
		"((x|y)*)*",
		"(x*a|x*b)x?",
		"[^y]*(y|z|ab)x?",
		"p|q",
		"x{5}",
		".*",
		/* Literal prefixes, which bound the postings scan (select.c, regex_prefix),
		 * one of them longer than the part of a value a posting key holds. */
		"xx.*",
		"xxx+",
		"xxxxa.*",
		"pq?",
		"q.*",
		/* Alternations of literals: looked up as a set of equalities (tsdb/relit.c). */
		"p|q|r",
		"x(y|z)",
		"LONG",
	};
	uint64_t r = tu_rand(rs);
	m->name = r % 7 == 0 ? "c" : r % 7 == 1 ? "b" : "a";
	m->type = (enum ts_match_type)((r >> 8) % 4);
	if (m->type == TS_MATCH_RE || m->type == TS_MATCH_NRE) {
		snprintf(value, MAX_VAL + 32, "%s", res[(r >> 16) % (sizeof res / sizeof res[0])]);
		if (!strcmp(value, "LONG")) { /* 260 x, then anything */
			memset(value, 'x', 260);
			strcpy(value + 260, ".*");
		}
	} else {
		/* A value some series has (or a near miss of one), or "". */
		const struct tseries *t = &s[(r >> 16) % n];
		const char *v = m->name[0] == 'b' ? t->b : t->a;
		snprintf(value, MAX_VAL + 32, "%s", (r >> 40) % 9 == 0 ? "" : v);
		size_t len = strlen(value);
		if (len && (r >> 48) % 4 == 0)
			value[len - 1] = value[len - 1] == 'x' ? 'y' : 'x';
	}
	m->value = value;
}

/* The reference: does matcher m accept value v ("" when absent)? re is m's regex,
 * compiled once per selection (ref_compile) when m is a regex matcher. */
static int ref_match(const struct ts_matcher *m, const regex_t *re, const char *v)
{
	int eq;
	if (m->type == TS_MATCH_EQ || m->type == TS_MATCH_NEQ) {
		eq = strcmp(v, m->value) == 0;
		return m->type == TS_MATCH_EQ ? eq : !eq;
	}
	eq = regexec(re, v, 0, NULL, 0) == 0;
	return m->type == TS_MATCH_RE ? eq : !eq;
}

static void ref_compile(const struct ts_matcher *m, regex_t *re)
{
	if (m->type != TS_MATCH_RE && m->type != TS_MATCH_NRE)
		return;
	char *pat = malloc(strlen(m->value) + 8);
	assert_non_null(pat);
	sprintf(pat, "^(%s)$", m->value);
	assert_int_equal(regcomp(re, pat, REG_EXTENDED | REG_NOSUB), 0);
	free(pat);
}

static const char *label_of(const struct tseries *t, const char *name)
{
	return name[0] == 'a' ? t->a : name[0] == 'b' ? t->b : "";
}

/* Runs n_q random selections over series [0, n) and compares each with the reference. */
static void check_selections(struct ts_db *db, uint64_t *rs, const struct tseries *s, size_t n,
			     size_t n_q)
{
	static char vals[3][MAX_VAL + 32];
	for (size_t q = 0; q < n_q; q++) {
		struct ts_matcher m[3];
		size_t nm = 1 + tu_rand(rs) % 2;
		m[0] = (struct ts_matcher){ TS_MATCH_EQ, "__name__", "m" };
		for (size_t j = 1; j <= nm; j++)
			rand_matcher(rs, s, n, &m[j], vals[j]);
		static int want[N_SERIES];
		size_t n_want = 0;
		regex_t re[3];
		for (size_t j = 1; j <= nm; j++)
			ref_compile(&m[j], &re[j]);
		for (size_t i = 0; i < n; i++) {
			want[i] = 1;
			for (size_t j = 1; j <= nm && want[i]; j++)
				want[i] = ref_match(&m[j], &re[j], label_of(&s[i], m[j].name));
			n_want += (size_t)want[i];
		}
		for (size_t j = 1; j <= nm; j++)
			if (m[j].type == TS_MATCH_RE || m[j].type == TS_MATCH_NRE)
				regfree(&re[j]);
		struct ts_series_set *set;
		char msg[512] = "";
		int rc = ts_db_select(db, m, nm + 1, INT64_MIN, INT64_MAX, NULL, &set, msg,
				      sizeof msg);
		if (rc)
			fail_msg("query %zu: select failed: %s (%s)", q, ts_strerror(rc), msg);
		static int got[N_SERIES];
		memset(got, 0, sizeof got);
		for (size_t i = 0; i < ts_series_set_len(set); i++) {
			const struct ts_label *l;
			uint32_t nl;
			assert_int_equal(ts_series_set_labels(set, i, &l, &nl), 0);
			assert_memory_equal(l[nl - 1].name, "k", 1);
			/* Label values are not NUL-terminated. */
			size_t k = 0;
			for (uint32_t d = 0; d < l[nl - 1].value_len; d++)
				k = k * 10 + (size_t)(l[nl - 1].value[d] - '0');
			assert_true(k < n);
			assert_int_equal(got[k], 0);
			got[k] = 1;
		}
		for (size_t i = 0; i < n; i++)
			if (got[i] != want[i])
				fail_msg("query %zu: series %zu (a of %zu bytes, b=\"%s\") is %s; "
					 "matchers a/b/c %d:\"%.40s\"(%zu) %d:\"%.40s\"(%zu)",
					 q, i, strlen(s[i].a), s[i].b,
					 got[i] ? "selected wrongly" : "missing", m[1].type,
					 m[1].value, strlen(m[1].value),
					 nm > 1 ? (int)m[2].type : -1, nm > 1 ? m[2].value : "",
					 nm > 1 ? strlen(m[2].value) : 0);
		assert_int_equal(ts_series_set_len(set), n_want);
		ts_series_set_free(set);
	}
}

static void test_against_reference(void **st)
{
	(void)st;
	uint64_t rs = tu_seed("test_select", 20261207);
	static struct tseries s[N_SERIES];
	make_series(&rs, s, N_SERIES);
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "select");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);

	/* Only in memory: matched on their labels, one by one and through their in-memory
	 * postings. */
	append_series(db, s, 0, N_SERIES / 2);
	check_selections(db, &rs, s, N_SERIES / 2, N_QUERIES);
	size_t saved = ts__unindexed_scan_max;
	ts__unindexed_scan_max = 0;
	check_selections(db, &rs, s, N_SERIES / 2, N_QUERIES);
	ts__unindexed_scan_max = saved;
	/* All in the postings. */
	assert_int_equal(ts_db_checkpoint(db), 0);
	check_selections(db, &rs, s, N_SERIES / 2, N_QUERIES);
	/* Mixed: half in the postings, half not yet (checked both ways again). */
	append_series(db, s, N_SERIES / 2, N_SERIES);
	check_selections(db, &rs, s, N_SERIES, N_QUERIES);
	ts__unindexed_scan_max = 0;
	check_selections(db, &rs, s, N_SERIES, N_QUERIES);
	ts__unindexed_scan_max = saved;
	/* After a restart everything comes from the index. */
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	check_selections(db, &rs, s, N_SERIES, N_QUERIES);
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* Unindexed series through their in-memory postings while a failed flush holds them
 * taken (the postings' first table), after the next flush took them again and
 * committed, and for series added after that. */
static void test_unindexed_postings_across_a_failed_flush(void **st)
{
	(void)st;
	uint64_t rs = tu_seed("test_select_upost", 20261208);
	static struct tseries s[N_SERIES];
	make_series(&rs, s, N_SERIES);
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "select");
	struct ts_db_opts o = { .flush_interval_ms = 3600000, .checkpoint_interval_ms = 3600000 };
	size_t saved_scan = ts__unindexed_scan_max, saved_slice = ts__ckpt_slice_bytes;
	ts__unindexed_scan_max = 0;
	ts__ckpt_slice_bytes = 1; /* a transaction per group of 256 series: the first fails */
	setenv("TS_FAILPOINT", "ckpt.slice_apply:1:ENOSPC", 1);
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	unsetenv("TS_FAILPOINT");
	append_series(db, s, 0, N_SERIES / 2);
	assert_int_equal(ts_db_checkpoint(db), -ENOSPC); /* took them, committed nothing */
	check_selections(db, &rs, s, N_SERIES / 2, N_QUERIES);
	assert_int_equal(ts_db_checkpoint(db), 0); /* takes them again, commits */
	check_selections(db, &rs, s, N_SERIES / 2, N_QUERIES);
	append_series(db, s, N_SERIES / 2, N_SERIES);
	check_selections(db, &rs, s, N_SERIES, N_QUERIES);
	assert_int_equal(ts_db_checkpoint(db), 0);
	check_selections(db, &rs, s, N_SERIES, N_QUERIES);
	assert_int_equal(ts_db_close(db), 0);
	ts__unindexed_scan_max = saved_scan;
	ts__ckpt_slice_bytes = saved_slice;
	assert_int_equal(tu_rmtree(dir), 0);
}

struct stress {
	struct ts_db *db;
	atomic_size_t acked;
	size_t n;
};

static void *stress_appender(void *arg)
{
	struct stress *x = arg;
	for (size_t i = 0; i < x->n; i++) {
		char k[24], g[8];
		snprintf(k, sizeof k, "%zu", i);
		snprintf(g, sizeof g, "%zu", i % 10);
		struct ts_label l[3] = { { "__name__", "st", 8, 2 },
					 { "g", g, 1, (uint32_t)strlen(g) },
					 { "k", k, 1, (uint32_t)strlen(k) } };
		struct ts_sample smp = { 1000, 1.0 };
		struct ts_series_in in = { l, 3, &smp, 1 };
		struct ts_append_result res;
		if (ts_db_append(x->db, &in, 1, &res, NULL) != 0 || res.n_appended != 1)
			return (void *)1;
		atomic_store(&x->acked, i + 1);
	}
	return NULL;
}

static size_t count_of(struct ts_db *db, const char *name, const char *value)
{
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "st" },
				   { TS_MATCH_EQ, name, value } };
	struct ts_series_set *set;
	assert_int_equal(ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0), 0);
	size_t n = ts_series_set_len(set);
	ts_series_set_free(set);
	return n;
}

/* Selections through the in-memory postings while series are created and the writer
 * takes and commits them every few milliseconds: every acknowledged series is found
 * whichever table lists it (taken by a flush in progress, or added since). */
static void test_unindexed_postings_while_flushing(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "select");
	struct ts_db_opts o = { .flush_interval_ms = 2 };
	size_t saved = ts__unindexed_scan_max;
	ts__unindexed_scan_max = 0;
	struct stress x = { .n = 6000 };
	assert_int_equal(ts_db_open(dir, &o, &x.db), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stress_appender, &x), 0);
	uint64_t rs = tu_seed("test_select_stress", 7);
	size_t checks = 0;
	for (size_t n0; (n0 = atomic_load(&x.acked)) < x.n || checks < 200; checks++) {
		if (!n0)
			continue;
		char k[24], g[8];
		size_t i = tu_rand(&rs) % n0;
		snprintf(k, sizeof k, "%zu", i);
		snprintf(g, sizeof g, "%zu", i % 10);
		assert_int_equal(count_of(x.db, "k", k), 1);
		size_t want = n0 / 10 + (n0 % 10 > i % 10), got = count_of(x.db, "g", g);
		assert_true(got >= want && got <= want + (atomic_load(&x.acked) - n0) + 1);
		if (checks % 50 == 0) { /* the name alone: past 4,096 it is not listed */
			struct ts_matcher m = { TS_MATCH_EQ, "__name__", "st" };
			struct ts_series_set *set;
			assert_int_equal(ts_db_select(x.db, &m, 1, INT64_MIN, INT64_MAX, NULL, &set,
						      NULL, 0),
					 0);
			assert_true(ts_series_set_len(set) >= n0);
			ts_series_set_free(set);
		}
	}
	void *ret;
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	assert_int_equal(count_of(x.db, "g", "3"), x.n / 10);
	assert_int_equal(ts_db_close(x.db), 0);
	ts__unindexed_scan_max = saved;
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A value that makes PCRE2's JIT give up (nested repeats over 4,001 bytes) is decided by
 * the DFA fallback: = and !~ agree with RE2, never a silent miss. */
static void test_regex_limits_fall_back(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "select");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	static struct tseries s[2];
	memset(s, 0, sizeof s);
	for (size_t i = 0; i < 4000; i++)
		s[0].a[i] = "ab"[i % 2];
	s[0].a[4000] = 'c';
	strcpy(s[1].a, "d");
	strcpy(s[0].k, "0");
	strcpy(s[1].k, "1");
	append_series(db, s, 0, 2);
	for (int round = 0; round < 2; round++) {
		struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" },
					   { TS_MATCH_RE, "a", "(a|b)*c" } };
		struct ts_series_set *set;
		assert_int_equal(ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0),
				 0);
		assert_int_equal(ts_series_set_len(set), 1);
		ts_series_set_free(set);
		m[1].type = TS_MATCH_NRE;
		assert_int_equal(ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, NULL, &set, NULL, 0),
				 0);
		assert_int_equal(ts_series_set_len(set), 1);
		ts_series_set_free(set);
		assert_int_equal(ts_db_checkpoint(db), 0);
	}
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

/* A selection stops when its deadline passes or it is canceled, instead of matching on
 * (the query's timeout bounds it). An expired deadline or a set flag is noticed within
 * the first 64 matches. */
static void test_deadline_and_cancel(void **st)
{
	(void)st;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "select");
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, NULL, &db), 0);
	static struct tseries s[100];
	memset(s, 0, sizeof s);
	for (size_t i = 0; i < 100; i++) {
		snprintf(s[i].a, sizeof s[i].a, "value-%zu", i);
		snprintf(s[i].k, sizeof s[i].k, "%zu", i);
	}
	append_series(db, s, 0, 100);
	struct ts_matcher m[2] = { { TS_MATCH_EQ, "__name__", "m" }, { TS_MATCH_RE, "a", "v.*" } };
	struct ts_series_set *set;
	for (int round = 0; round < 2; round++) { /* in memory, then from the postings */
		struct ts_select_opts expired = { .deadline_ns = 1 };
		assert_int_equal(
			ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, &expired, &set, NULL, 0),
			-ETIMEDOUT);
		int flag = 1;
		struct ts_select_opts cancel = { .canceled = &flag };
		assert_int_equal(
			ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, &cancel, &set, NULL, 0),
			-ECANCELED);
		flag = 0;
		assert_int_equal(
			ts_db_select(db, m, 2, INT64_MIN, INT64_MAX, &cancel, &set, NULL, 0), 0);
		assert_int_equal(ts_series_set_len(set), 100);
		ts_series_set_free(set);
		assert_int_equal(ts_db_checkpoint(db), 0);
	}
	assert_int_equal(ts_db_close(db), 0);
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_reference),
		cmocka_unit_test(test_unindexed_postings_across_a_failed_flush),
		cmocka_unit_test(test_unindexed_postings_while_flushing),
		cmocka_unit_test(test_regex_limits_fall_back),
		cmocka_unit_test(test_deadline_and_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
