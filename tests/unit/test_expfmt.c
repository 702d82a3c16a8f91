/*
 * test_expfmt.c - Prometheus text exposition decoder. The accepted/rejected cases are
 * taken from the behaviour of Prometheus' promparse.go (its tests in
 * model/textparse/promparse_test.go and the lexer rules of promlex.l), then hostile
 * input, allocation failure at every N, and a throughput figure.
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

#include "wire/expfmt.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "testutil.h"

static int bytes_eq(const char *a, size_t an, const char *b)
{
	return an == strlen(b) && memcmp(a, b, an) == 0;
}

static int has_label(const struct ts_expfmt_entry *e, const char *n, const char *v)
{
	for (uint32_t i = 0; i < e->n_labels; i++)
		if (bytes_eq(e->labels[i].name, e->labels[i].name_len, n))
			return bytes_eq(e->labels[i].value, e->labels[i].value_len, v);
	return 0;
}

static void test_basic(void **state)
{
	(void)state;
	static const char body[] =
		"# HELP go_gc_duration_seconds A summary of the GC invocation durations.\n"
		"# \tTYPE go_gc_duration_seconds summary\n"
		"go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n"
		"go_gc_duration_seconds{quantile=\"0.25\",} 7.424100000000001e-05\n"
		"go_gc_duration_seconds_sum 1.7560473e+07\n"
		"# Hrandom comment starting with prefix of HELP\n"
		"#\n"
		"wind_speed{A=\"2\",c=\"3\"} 12345\n"
		"# comment with escaped \\n newline\n"
		"nohelp1{}  1\n"
		"  \t \n"
		"# HELP nohelp1 \n"
		"# HELP help2 escape \\ \\n \\\\ \\\" \\x chars\n"
		"nan{A=\"a\"} NaN\n"
		"inf +Inf 2\n"
		"ninf{a=\"\"} -iNF 3\n"
		"testmetric{label=\"\\\"bar\\\"\"} 1\n"
		"testmetric{le=\"10\"} 1\n"
		"null_byte_metric{a=\"abc\x00\"} 1\n"
		"{\"go.gc_duration_seconds\",quantile=\"0.5\"} 1.5\n"
		"{\"http.status\",q=\"0.9\",\"a.b\"=\"c\"} 8.3835e-05\n"
		"metric_no_space{a=\"1\" b=\"2\"}7 123";
	struct ts_expfmt_parser p;
	struct ts_expfmt_entry e;
	ts_expfmt_init(&p, body, sizeof body - 1, 999);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(e.kind, TS_EXPFMT_HELP);
	assert_true(bytes_eq(e.name, e.name_len, "go_gc_duration_seconds"));
	assert_true(bytes_eq(e.help, e.help_len, "A summary of the GC invocation durations."));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(e.kind, TS_EXPFMT_TYPE);
	assert_int_equal(e.type, TS_EXPFMT_SUMMARY);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(e.kind, TS_EXPFMT_SERIES);
	assert_int_equal(e.type, TS_EXPFMT_SUMMARY);
	assert_int_equal(e.n_labels, 2);
	assert_true(has_label(&e, "__name__", "go_gc_duration_seconds"));
	assert_true(has_label(&e, "quantile", "0"));
	assert_true(e.sample.v == 4.9351e-05);
	assert_int_equal(e.sample.t_ms, 999);
	assert_int_equal(e.has_ts, 0);
	assert_int_equal(e.line, 3);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(e.sample.v == 7.424100000000001e-05);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(e.sample.v == 1.7560473e+07);
	assert_int_equal(e.n_labels, 1);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "A", "2") && has_label(&e, "c", "3"));
	assert_true(bytes_eq(e.labels[0].name, 1, "A")); /* sorted: A < __name__ < c */
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "__name__", "nohelp1"));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(e.kind, TS_EXPFMT_HELP);
	assert_int_equal(e.help_len, 0);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(bytes_eq(e.help, e.help_len, "escape \\ \n \\ \\\" \\x chars"));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(tu_bits(e.sample.v), 0x7ff8000000000001ULL);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(isinf(e.sample.v) && e.sample.v > 0);
	assert_int_equal(e.has_ts, 1);
	assert_int_equal(e.sample.t_ms, 2);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(isinf(e.sample.v) && e.sample.v < 0);
	assert_int_equal(e.n_labels, 1); /* the empty label is dropped */
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "label", "\"bar\""));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_int_equal(e.labels[1].value_len, 4);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "__name__", "go.gc_duration_seconds"));
	assert_true(has_label(&e, "quantile", "0.5"));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "__name__", "http.status"));
	assert_true(has_label(&e, "a.b", "c"));
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "b", "2"));
	assert_true(e.sample.v == 7 && e.sample.t_ms == 123);
	assert_int_equal(ts_expfmt_next(&p, &e), 0);
	ts_expfmt_fini(&p);
	ts_expfmt_fini(&p);
}

static void test_multiline_label_value(void **state)
{
	(void)state;
	const char *body = "m{a=\"x\ny\"} 1\nbad{\n";
	struct ts_expfmt_parser p;
	struct ts_expfmt_entry e;
	ts_expfmt_init(&p, body, strlen(body), 0);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "a", "x\ny"));
	assert_int_equal(ts_expfmt_next(&p, &e), TS_EINVALID);
	assert_int_equal(p.err_line, 3);
	ts_expfmt_fini(&p);
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *what;
	} cases[] = {
		{ "a", "expected value" },
		{ "a{b='c'} 1", "quoted label value" },
		{ "a{b=\n", "quoted label value" },
		{ "a{\xff=\"foo\"} 1", "label name" },
		{ "a{b=\"\xff\"} 1", "UTF-8" },
		{ "a true", "invalid value" },
		{ "something_weird{problem=\"", "unterminated" },
		{ "empty_label_name{=\"\"} 0", "label name" },
		{ "foo 1_2", "invalid value" },
		{ "foo 0x1p-3", "invalid value" },
		{ "foo 0x1P-3", "invalid value" },
		{ "foo 0 1_2", "end of line" },
		{ "{b=\"bar\"}", "metric name not set" },
		{ "{\"a\",\"b\"}", "already set" },
		{ "metric{\"a\"} 1", "already set" },
		{ "# TYPE hello gaugee", "invalid metric type" },
		{ "# TYPE hello gauge ", "invalid metric type" },
		{ "# TYPE \n", "expected metric name" },
		{ "# HELP \"\" text", "empty metric name" },
		{ "# HELP m \xff", "UTF-8" },
		{ "m 1\r", "invalid value" },
		{ "m 1 -5", "timestamp" },
		{ "m 1 99999999999999999999", "out of range" },
		{ "m{a=\"1\",a=\"2\"} 1", "duplicate" },
		{ "m{__name__=\"x\"} 1", "duplicate" },
		{ "m +nan", "invalid value" },
		{ "m 1e999", "invalid value" },
		{ "m{a=\"\\\n\"} 1", "escape" },
		{ "\0m 1", "NUL" },
		{ "m{a=\"1\"}{b=\"2\"} 1", "expected value" },
		{ ":bad{,} 1", "label name" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[256];
		/* The NUL case: strlen would stop at its first byte. */
		size_t ll = cases[i].line[0] == 0 ? 4 : strlen(cases[i].line);
		memcpy(body, "ok 1\n", 5);
		memcpy(body + 5, cases[i].line, ll);
		struct ts_expfmt_parser p;
		struct ts_expfmt_entry e;
		ts_expfmt_init(&p, body, 5 + ll, 0);
		assert_int_equal(ts_expfmt_next(&p, &e), 1);
		int rc = ts_expfmt_next(&p, &e);
		if (rc != TS_EINVALID || p.err_line != 2 || !strstr(p.err, "line 2 ") ||
		    !strstr(p.err, cases[i].what))
			fail_msg("case %zu (%s): rc %d err \"%s\"", i, cases[i].line, rc, p.err);
		ts_expfmt_fini(&p);
	}
}

static void test_accepted_oddities(void **state)
{
	(void)state;
	/* Things Prometheus' parser accepts that a stricter reading would not. */
	static const char *const ok[] = {
		"m-1",				 /* name "m", value "-1" */
		"m{a=\"1\",} 1",		 /* trailing comma */
		"m { a = \"1\" , b=\"2\" } 1 2", /* blanks everywhere */
		"m Infinity",
		"m .5",
		"m 1.",
		"m +1e3",
		"{\"x\"=\"y\",\"m2\"} 1 1", /* quoted label name; name in braces not first */
		"#no space comment",
		"# HELP\tm\ttext with\ttabs",
		"m{a=\"\\q\"} 1", /* unknown escape kept as is */
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct ts_expfmt_parser p;
		struct ts_expfmt_entry e;
		ts_expfmt_init(&p, ok[i], strlen(ok[i]), 0);
		int rc, n = 0;
		while ((rc = ts_expfmt_next(&p, &e)) == 1)
			n++;
		if (rc != 0)
			fail_msg("case %zu (%s): %s", i, ok[i], p.err);
		ts_expfmt_fini(&p);
	}
	struct ts_expfmt_parser p;
	struct ts_expfmt_entry e;
	ts_expfmt_init(&p, "m{a=\"\\q\"} 1", 11, 0);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "a", "\\q"));
	ts_expfmt_fini(&p);
	ts_expfmt_init(&p, "m-1", 3, 0);
	assert_int_equal(ts_expfmt_next(&p, &e), 1);
	assert_true(has_label(&e, "__name__", "m") && e.sample.v == -1);
	ts_expfmt_fini(&p);
	assert_string_equal(ts_expfmt_type_name(TS_EXPFMT_HISTOGRAM), "histogram");
}

static const char sample_body[] =
	"# HELP http_requests_total The total \\\\ number\\n of requests.\n"
	"# TYPE http_requests_total counter\n"
	"http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
	"http_requests_total{method=\"p\\\"o\\\\st\\n\",code=\"400\"}    3 1395066363000\n"
	"{\"utf8.name\",\"l.x\"=\"\xc3\xa9\"} -Inf\n"
	"metric_without_timestamp_and_labels 12.47\n"
	"rpc_duration_seconds{quantile=\"0.99\"} NaN\n";

static void parse_bytes(const char *data, size_t len)
{
	char *b = ts_malloc(len ? len : 1);
	memcpy(b, data, len);
	struct ts_expfmt_parser p;
	struct ts_expfmt_entry e;
	ts_expfmt_init(&p, b, len, 0);
	int rc, guard = 0;
	while ((rc = ts_expfmt_next(&p, &e)) != 0 && guard++ < 1000)
		if (rc == 1 && e.kind == TS_EXPFMT_SERIES)
			assert_true(e.n_labels >= 1);
	assert_true(guard < 1000);
	ts_expfmt_fini(&p);
	ts_free(b);
}

static void test_truncation_and_bitflips(void **state)
{
	(void)state;
	size_t n = sizeof sample_body - 1;
	for (size_t k = 0; k <= n; k++)
		parse_bytes(sample_body, k);
	uint64_t seed = 0xabcdef12345ULL;
	char buf[sizeof sample_body];
	for (int iter = 0; iter < 20000; iter++) {
		memcpy(buf, sample_body, n);
		for (int f = 0; f <= iter % 3; f++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			buf[(seed >> 33) % n] ^= (char)(1u << ((seed >> 20) & 7));
		}
		parse_bytes(buf, n);
	}
}

static void test_alloc_failure(void **state)
{
	(void)state;
	char body[16384];
	size_t o = 0;
	for (int l = 0; l < 5; l++) {
		o += (size_t)snprintf(body + o, sizeof body - o, "# HELP m%d h\\\\elp %d\nm%d{", l,
				      l, l);
		for (int k = 0; k < 20 + 6 * l; k++)
			o += (size_t)snprintf(body + o, sizeof body - o, "l%02d=\"v\\\\%d\",",
					      60 - k, k);
		o += (size_t)snprintf(body + o, sizeof body - o, "} %d.5\n", l);
	}
	unsigned long fired = 0;
	for (unsigned long n = 1;; n++) {
		struct ts_expfmt_parser p;
		struct ts_expfmt_entry e;
		ts_expfmt_init(&p, body, o, 0);
		ts_mem_fail_at(n, 0);
		int rc, ok = 0, enomem = 0;
		while ((rc = ts_expfmt_next(&p, &e)) != 0) {
			if (rc == -ENOMEM) {
				enomem++;
				continue;
			}
			assert_int_equal(rc, 1);
			ok++;
		}
		int failed = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		ts_expfmt_fini(&p);
		if (!failed) {
			assert_int_equal(ok, 10);
			break;
		}
		fired++;
		assert_int_equal(enomem, 1);
		assert_int_equal(ok, 9);
	}
	assert_true(fired > 3);
}

static void test_throughput(void **state)
{
	(void)state;
	const int lines = 20000;
	size_t cap = (size_t)lines * 200;
	char *body = ts_malloc(cap);
	size_t o = 0;
	for (int i = 0; i < lines; i++)
		o += (size_t)snprintf(
			body + o, cap - o,
			"node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",instance=\"h%d\"} "
			"%d.25 1700000000000\n",
			i % 8, i % 100, i);
	double best = 1e30;
	for (int rep = 0; rep < 5; rep++) {
		struct ts_expfmt_parser p;
		struct ts_expfmt_entry e;
		struct timespec a, b;
		ts_expfmt_init(&p, body, o, 0);
		clock_gettime(CLOCK_MONOTONIC, &a);
		int n = 0;
		while (ts_expfmt_next(&p, &e) == 1)
			n++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_int_equal(n, lines);
		ts_expfmt_fini(&p);
		double t = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
		if (t < best)
			best = t;
	}
	print_message("Prometheus text, 3 labels + timestamp (%zu bytes/line): %.0f ns/line%s\n",
		      o / (size_t)lines, best / lines,
#ifdef TS_SANITIZED
		      " [sanitizer build: not representative]"
#else
		      ""
#endif
	);
	ts_free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_multiline_label_value),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_accepted_oddities),
		cmocka_unit_test(test_truncation_and_bitflips),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
