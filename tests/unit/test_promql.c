/*
 * test_promql.c - the PromQL lexer, parser, type checker and printer.
 *
 * The two big tables were checked against Debian's Prometheus 2.42 (its
 * /api/v1/format_query endpoint): for every valid query the expected text is what
 * Prometheus' printer produced, except the two deliberate deviations marked below;
 * for every invalid query the expected error is Prometheus' "line:col: parse
 * error: message" (regex messages come from PCRE2, not Go, and are marked).
 * Every valid query must also survive parse -> print -> parse with an equal tree and
 * an identical second print. Then: tree shapes the evaluator relies on, the function
 * table, allocation failure at every allocation of complex queries, depth limits,
 * and an exact round trip of @ timestamps over random int64 values (seeded PRNG;
 * TS_SEED overrides the seed, which is printed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/ast.h"
#include "query/functions.h"
#include "query/promql.h"
#include "query/promql_lex.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"
#include "testutil.h"

struct valid_case {
	const char *q;
	const char *printed;
};

static const struct valid_case valid[] = {
	{ "foo[5m x]", "foo[5m:]" },
	{ "-1 ^ 2", "-1 ^ 2" },
	{ "010", "8" },
	{ "1e-400", "0" },
	/* Deviation: Prometheus prints U+FFFD raw, which its own lexer then refuses. */
	{ "\"\\u00e9\\u00a0\\ufffd\"", "\"\303\251\\u00a0\\ufffd\"" },
	/* Deviation: Prometheus prints "a + b", losing the group_left. */
	{ "a + ignoring() group_left() b", "a + ignoring () group_left () b" },
	{ "1 + on() group_left foo", "1 + foo" },
	{ "x{a=~\"a*\"}", "x{a=~\"a*\"}" },
	{ "foo[5m] offset 1m @ 3", "foo[5m] @ 3.000 offset 1m" },
	{ "foo{a=\"\\xff\"}", "foo{a=\"\\xff\"}" },
	{ "foo{a='\"'}", "foo{a=\"\\\"\"}" },
	{ "SUM by (SUM) (x)", "sum by (SUM) (x)" },
	{ "x @ start()", "x @ start()" },
	{ "1 > bool 2", "1 > bool 2" },
	{ "a and on() b", "a and on () b" },
	{ "a and b", "a and b" },
	{ "a or ignoring(x) b", "a or ignoring (x) b" },
	{ "{a!~\"a*\"}", "{a!~\"a*\"}" },
	{ "sum(x) by (a,)", "sum by (a) (x)" },
	{ "sum by (a,) (x)", "sum by (a) (x)" },
	{ "a * on(b,) group_left(c,) d", "a * on (b) group_left (c) d" },
	{ "foo offset -5m", "foo offset -5m" },
	{ "foo @ -100", "foo @ -100.000" },
	{ "foo @ 1.2345", "foo @ 1.235" },
	{ "2 ^ 3 ^ 2", "2 ^ 3 ^ 2" },
	{ "-foo ^ 2", "-foo ^ 2" },
	{ "a - -b", "a - -b" },
	{ "x[1h30m]", "x[1h30m]" },
	{ "x[90m]", "x[1h30m]" },
	{ "x[1y]", "x[1y]" },
	{ "x[365d]", "x[1y]" },
	{ "x[7d]", "x[1w]" },
	{ "x[1w2d]", "x[9d]" },
	{ "count_values(\"v\", x)", "count_values(\"v\", x)" },
	{ "topk(3, x)", "topk(3, x)" },
	{ "label_join(x, \"a\", \",\", \"b\", \"c\")",
	  "label_join(x, \"a\", \",\", \"b\", \"c\")" },
	{ "hour()", "hour()" },
	{ "foo # c", "foo" },
	{ "a==b", "a == b" },
	{ "abs(-foo)", "abs(-foo)" },
	{ ".5", "0.5" },
	{ "5.", "5" },
	{ "0x1F", "31" },
	{ "0XaB", "171" },
	{ "inf", "+Inf" },
	{ "-Inf", "-Inf" },
	{ "nan", "NaN" },
	{ "NaN", "NaN" },
	{ "Infinity", "Infinity" },
	{ "0777777777777777777777777", "7.777777777777778e+23" },
	{ "08", "8" },
	{ "rate(foo[5m])[5m:]", "rate(foo[5m])[5m:]" },
	{ "x == bool 1", "x == bool 1" },
	{ "foo @ 1.0005", "foo @ 1.001" },
	{ "foo @ -1.0005", "foo @ -1.001" },
	{ "x[5m] @ end()", "x[5m] @ end()" },
	{ "x[1h:] offset -5m @ start()", "x[1h:] @ start() offset -5m" },
	{ "sum", "sum" },
	{ "sum{a=\"b\"}", "sum{a=\"b\"}" },
	{ "sum offset 5m", "sum offset 5m" },
	{ "by", "by" },
	{ "by{a=\"b\"}", "by{a=\"b\"}" },
	{ "offset offset 5m", "offset offset 5m" },
	{ "and and and", "and and and" },
	{ "start @ start()", "start @ start()" },
	{ "end", "end" },
	{ "avg(by)", "avg(by)" },
	{ "count(without)", "count(without)" },
	{ "foo == bool on(a) group_right(b) bar", "foo == bool on (a) group_right (b) bar" },
	{ "a + on(a) group_left b", "a + on (a) group_left () b" },
	{ "a * on(b) group_left(c) d", "a * on (b) group_left (c) d" },
	{ "a * ignoring(b) group_right d", "a * ignoring (b) group_right () d" },
	{ "x unless ignoring(a) y", "x unless ignoring (a) y" },
	{ "x or on() y", "x or on () y" },
	{ "-x", "-x" },
	{ "+x", "+x" },
	{ "- - 1", "1" },
	{ "-(1)", "-(1)" },
	{ "-+-1", "1" },
	{ "1 - -1", "1 - -1" },
	{ "2 ^ -1", "2 ^ -1" },
	{ "-2 ^ -2", "-2 ^ -2" },
	{ "a ^ - b * c", "a ^ -b * c" },
	{ "a + - b * c", "a + -b * c" },
	{ "a atan2 b", "a atan2 b" },
	{ "1 atan2 2", "1 atan2 2" },
	{ "a % b", "a % b" },
	{ "topk(3, x) by (a)", "topk by (a) (3, x)" },
	{ "quantile without (a) (0.9, x)", "quantile without (a) (0.9, x)" },
	{ "count_values without () (\"v\", x)", "count_values without () (\"v\", x)" },
	{ "group by (a) (x)", "group by (a) (x)" },
	{ "stddev(x)", "stddev(x)" },
	{ "stdvar by (a, b) (x)", "stdvar by (a, b) (x)" },
	{ "bottomk(1+1, x)", "bottomk(1 + 1, x)" },
	{ "rate(x[5m:1m])", "rate(x[5m:1m])" },
	{ "rate(x[5m:])", "rate(x[5m:])" },
	{ "x[5m:1m] offset 1w", "x[5m:1m] offset 1w" },
	{ "x[5m] offset 1w", "x[5m] offset 1w" },
	{ "x offset 1w [5m:]", "x offset 1w[5m:]" },
	{ "sum(x)[5m:1m]", "sum(x)[5m:1m]" },
	{ "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")",
	  "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")" },
	{ "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
	  "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))" },
	{ "absent(nonexistent{job=\"x\"})", "absent(nonexistent{job=\"x\"})" },
	{ "time()", "time()" },
	{ "vector(1)", "vector(1)" },
	{ "day_of_month()", "day_of_month()" },
	{ "day_of_month(x)", "day_of_month(x)" },
	{ "pi()", "pi()" },
	{ "scalar(x)", "scalar(x)" },
	{ "holt_winters(x[5m], 0.5, 0.5)", "holt_winters(x[5m], 0.5, 0.5)" },
	{ "predict_linear(x[5m], 3600)", "predict_linear(x[5m], 3600)" },
	{ "clamp(x, 0, 1)", "clamp(x, 0, 1)" },
	{ "quantile_over_time(0.5, x[5m])", "quantile_over_time(0.5, x[5m])" },
	{ "absent_over_time(x[5m])", "absent_over_time(x[5m])" },
	{ "sort_desc(x)", "sort_desc(x)" },
	{ "timestamp(x)", "timestamp(x)" },
	{ "label_join(x, \"a\", \",\")", "label_join(x, \"a\", \",\")" },
	{ "foo:bar:baz", "foo:bar:baz" },
	{ "foo:bar{a=\"b\"}", "foo:bar{a=\"b\"}" },
	{ "{__name__=~\"a|b\"}", "{__name__=~\"a|b\"}" },
	{ "{__name__=\"x\"}", "{__name__=\"x\"}" },
	{ "{__name__=\"foo bar\"}", "{__name__=\"foo bar\"}" },
	{ "foo{a=\"b\",b!=\"c\",c=~\"d\",d!~\"e\"}", "foo{a=\"b\",b!=\"c\",c=~\"d\",d!~\"e\"}" },
	{ "foo{b=\"1\",a=\"2\"}", "foo{a=\"2\",b=\"1\"}" },
	{ "foo{a1=\"x\",a=\"x\",a!=\"y\",ab=\"z\"}", "foo{a!=\"y\",a1=\"x\",a=\"x\",ab=\"z\"}" },
	{ "foo{on=\"x\",bool=\"y\",sum=\"z\",offset=\"w\"}",
	  "foo{bool=\"y\",offset=\"w\",on=\"x\",sum=\"z\"}" },
	{ "foo{a=`raw\\n`}", "foo{a=\"raw\\\\n\"}" },
	{ "foo{a='single\\''}", "foo{a=\"single'\"}" },
	{ "foo{a=\"tab\\there\"}", "foo{a=\"tab\\there\"}" },
	{ "foo{a=\"\\x00\\x01\\a\"}", "foo{a=\"\\x00\\x01\\a\"}" },
	{ "1 # comment", "1" },
	{ "sum # x", "sum" },
	{ "(x) # y", "(x)" },
	{ "1e6", "1e+06" },
	{ "123456", "123456" },
	{ "1234567", "1.234567e+06" },
	{ "0.0001", "0.0001" },
	{ "0.00001", "1e-05" },
	{ "1.5e-7", "1.5e-07" },
	{ "-0", "-0" },
	{ "1 + ignoring() foo", "1 + foo" },
	{ "1 > bool foo", "1 > bool foo" },
	{ "1 == bool 1", "1 == bool 1" },
	{ "-rate(x[5m])", "-rate(x[5m])" },
	{ "x @ 1 offset 5m", "x @ 1.000 offset 5m" },
	{ "x offset 5m @ 1", "x @ 1.000 offset 5m" },
	{ "x @ 0x10", "x @ 16.000" },
	{ "x @ 010", "x @ 8.000" },
	{ "x @ 1e3", "x @ 1000.000" },
	/* Deviation: beyond 2^53 ms Prometheus' float64 arithmetic yields MinInt64. */
	{ "x @ 9223372036854775", "x @ 9223372036854775.000" },
	{ "x @ 9223372036854775.807", "x @ 9223372036854775.807" },
	{ "x @ -9223372036854775.808", "x @ -9223372036854775.808" },
	{ "x @ 9223372036854776", "x @ -9223372036854775.808" },
	{ "x[5m] @ 1.5", "x[5m] @ 1.500" },
	{ "x[5m:1m] @ 100 offset 5m", "x[5m:1m] @ 100.000 offset 5m" },
	{ "x[1ms]", "x[1ms]" },
	{ "x[1m1ms]", "x[1m1ms]" },
	{ "x[1y1w1d1h1m1s1ms]", "x[373d1h1m1s1ms]" },
	{ "x[292y]", "x[292y]" },
	{ "x[ 5m ]", "x[5m]" },
	{ "x[5m : 1m]", "x[5m:1m]" },
	{ "foo", "foo" },
	{ "foo{job=\"x\"}", "foo{job=\"x\"}" },
	{ "foo{job=\"x\", instance=~\"a.*\"}", "foo{instance=~\"a.*\",job=\"x\"}" },
	{ "sum(rate(http_requests_total{job=\"api\"}[5m])) by (code)",
	  "sum by (code) (rate(http_requests_total{job=\"api\"}[5m]))" },
	{ "sum by (code) (rate(http_requests_total{job=\"api\"}[5m]))",
	  "sum by (code) (rate(http_requests_total{job=\"api\"}[5m]))" },
	{ "avg without (instance) (up)", "avg without (instance) (up)" },
	{ "max(x) without (a, b)", "max without (a, b) (x)" },
	{ "min(x)", "min(x)" },
	{ "count(up == 1)", "count(up == 1)" },
	{ "group(x)", "group(x)" },
	{ "stddev_over_time(x[10m])", "stddev_over_time(x[10m])" },
	{ "stdvar_over_time(x[10m])", "stdvar_over_time(x[10m])" },
	{ "sum_over_time(x[1h] offset 1d)", "sum_over_time(x[1h] offset 1d)" },
	{ "count_over_time(x[1h] @ 1000)", "count_over_time(x[1h] @ 1000.000)" },
	{ "max_over_time(x[5m:30s])", "max_over_time(x[5m:30s])" },
	{ "min_over_time(rate(x[1m])[10m:1m])", "min_over_time(rate(x[1m])[10m:1m])" },
	{ "last_over_time(x[5m])", "last_over_time(x[5m])" },
	{ "present_over_time(x[5m])", "present_over_time(x[5m])" },
	{ "changes(x[5m])", "changes(x[5m])" },
	{ "resets(x[5m])", "resets(x[5m])" },
	{ "delta(x[5m])", "delta(x[5m])" },
	{ "deriv(x[5m])", "deriv(x[5m])" },
	{ "idelta(x[5m])", "idelta(x[5m])" },
	{ "increase(x[5m])", "increase(x[5m])" },
	{ "irate(x[5m])", "irate(x[5m])" },
	{ "avg_over_time(x[5m])", "avg_over_time(x[5m])" },
	{ "ceil(x)", "ceil(x)" },
	{ "floor(x)", "floor(x)" },
	{ "round(x)", "round(x)" },
	{ "round(x, 0.5)", "round(x, 0.5)" },
	{ "exp(x)", "exp(x)" },
	{ "ln(x)", "ln(x)" },
	{ "log2(x)", "log2(x)" },
	{ "log10(x)", "log10(x)" },
	{ "sqrt(x)", "sqrt(x)" },
	{ "sgn(x)", "sgn(x)" },
	{ "sin(x) + cos(x) + tan(x)", "sin(x) + cos(x) + tan(x)" },
	{ "asin(x) * acos(x) / atan(x)", "asin(x) * acos(x) / atan(x)" },
	{ "sinh(x) - cosh(x) % tanh(x)", "sinh(x) - cosh(x) % tanh(x)" },
	{ "asinh(x) ^ acosh(x) ^ atanh(x)", "asinh(x) ^ acosh(x) ^ atanh(x)" },
	{ "deg(x) + rad(x)", "deg(x) + rad(x)" },
	{ "days_in_month()", "days_in_month()" },
	{ "day_of_week(x)", "day_of_week(x)" },
	{ "day_of_year()", "day_of_year()" },
	{ "hour(x)", "hour(x)" },
	{ "minute()", "minute()" },
	{ "month(x)", "month(x)" },
	{ "year()", "year()" },
	{ "sort(x)", "sort(x)" },
	{ "histogram_count(x)", "histogram_count(x)" },
	{ "histogram_sum(x)", "histogram_sum(x)" },
	{ "histogram_fraction(0, 1, x)", "histogram_fraction(0, 1, x)" },
	{ "clamp_min(x, 0)", "clamp_min(x, 0)" },
	{ "clamp_max(x, 1)", "clamp_max(x, 1)" },
	{ "absent(x)", "absent(x)" },
	{ "x > 0", "x > 0" },
	{ "x >= bool 0", "x >= bool 0" },
	{ "x < on(a) y", "x < on (a) y" },
	{ "x <= ignoring(a) y", "x <= ignoring (a) y" },
	{ "x != y", "x != y" },
	{ "x == y", "x == y" },
	{ "a or b and c", "a or b and c" },
	{ "a and b or c", "a and b or c" },
	{ "a unless b or c", "a unless b or c" },
	{ "(a or b) and c", "(a or b) and c" },
	{ "a + b * c", "a + b * c" },
	{ "(a + b) * c", "(a + b) * c" },
	{ "a * b + c", "a * b + c" },
	{ "a / b / c", "a / b / c" },
	{ "a - b - c", "a - b - c" },
	{ "a ^ b ^ c", "a ^ b ^ c" },
	{ "(a ^ b) ^ c", "(a ^ b) ^ c" },
	{ "a + b > bool c * d", "a + b > bool c * d" },
	{ "a > b and c < d", "a > b and c < d" },
	{ "-a * b", "-a * b" },
	{ "-(a * b)", "-(a * b)" },
	{ "- a ^ b", "-a ^ b" },
	{ "1 + 2", "1 + 2" },
	{ "1 + 2 * 3", "1 + 2 * 3" },
	{ "(1 + 2) * 3", "(1 + 2) * 3" },
	{ "2 * -3", "2 * -3" },
	{ "1 - 1", "1 - 1" },
	{ "1 == bool 2", "1 == bool 2" },
	{ "3 % 2", "3 % 2" },
	{ "2 ^ 0.5", "2 ^ 0.5" },
	{ "1e3 + 1E-3", "1000 + 0.001" },
	{ "Inf + -Inf", "+Inf + -Inf" },
	{ "-NaN", "NaN" },
	{ "+5", "5" },
	{ "0x0", "0" },
	{ "0xdeadBEEF", "3.735928559e+09" },
	{ "1.", "1" },
	{ ".1", "0.1" },
	{ "0.1e+1", "1" },
	{ "4e2", "400" },
	{ "scalar(x) * 2", "scalar(x) * 2" },
	{ "time() - timestamp(x)", "time() - timestamp(x)" },
	{ "vector(time())", "vector(time())" },
	{ "pi() * 2", "pi() * 2" },
	{ "sum(x) / ignoring(a) group_left sum(y)", "sum(x) / ignoring (a) group_left () sum(y)" },
	{ "sum(x) / on(a) group_left() sum(y)", "sum(x) / on (a) group_left () sum(y)" },
	{ "a * on(b) group_right(c, d) e", "a * on (b) group_right (c, d) e" },
	{ "a + on(a) b", "a + on (a) b" },
	{ "a and on(a, b) b", "a and on (a, b) b" },
	{ "a unless on() b", "a unless on () b" },
	{ "a or ignoring(b) c", "a or ignoring (b) c" },
	{ "a atan2 on(b) c", "a atan2 on (b) c" },
	{ "foo{a=\"\\\"quoted\\\"\"}", "foo{a=\"\\\"quoted\\\"\"}" },
	{ "foo{a='it\\'s'}", "foo{a=\"it's\"}" },
	{ "foo{a=`back\\slash`}", "foo{a=\"back\\\\slash\"}" },
	{ "foo{a=\"\\\\d+\"}", "foo{a=\"\\\\d+\"}" },
	{ "foo{a=~\"\\\\d+\"}", "foo{a=~\"\\\\d+\"}" },
	{ "foo{a=~\"[a-z]+\",b!~\"x|y\"}", "foo{a=~\"[a-z]+\",b!~\"x|y\"}" },
	{ "foo{a=\"\303\251\"}", "foo{a=\"\303\251\"}" },
	{ "foo{a=\"\346\227\245\346\234\254\"}", "foo{a=\"\346\227\245\346\234\254\"}" },
	{ "foo{a=\"\\U0001F600\"}", "foo{a=\"\360\237\230\200\"}" },
	{ "foo{a=\"line\\nbreak\"}", "foo{a=\"line\\nbreak\"}" },
	{ "foo{a=\"\\x7f\"}", "foo{a=\"\\x7f\"}" },
	{ "\"string\"", "\"string\"" },
	{ "'single'", "\"single\"" },
	{ "`raw`", "\"raw\"" },
	{ "\"esc\\\"aped\"", "\"esc\\\"aped\"" },
	{ "label_replace(up, \"foo\", \"$1\", \"instance\", \"(.*):.*\")",
	  "label_replace(up, \"foo\", \"$1\", \"instance\", \"(.*):.*\")" },
	{ "label_join(up, \"foo\", \",\", \"a\", \"b\", \"c\")",
	  "label_join(up, \"foo\", \",\", \"a\", \"b\", \"c\")" },
	{ "count_values(\"value\", up)", "count_values(\"value\", up)" },
	{ "topk(5, rate(x[5m]))", "topk(5, rate(x[5m]))" },
	{ "bottomk(2, x) by (a)", "bottomk by (a) (2, x)" },
	{ "quantile(0.99, x)", "quantile(0.99, x)" },
	{ "quantile by (a) (0.5, x)", "quantile by (a) (0.5, x)" },
	{ "topk by (a) (1, x)", "topk by (a) (1, x)" },
	{ "sum without () (x)", "sum without () (x)" },
	{ "sum by () (x)", "sum(x)" },
	{ "avg(x) by (le, job, instance)", "avg by (le, job, instance) (x)" },
	{ "sum(x) by (sum, by, on, bool, offset, group_left, start, end, atan2, and)",
	  "sum by (sum, by, on, bool, offset, group_left, start, end, atan2, and) (x)" },
	{ "x offset 1h30m", "x offset 1h30m" },
	{ "x offset 1m30s", "x offset 1m30s" },
	{ "x offset 90s", "x offset 1m30s" },
	{ "x offset -1d", "x offset -1d" },
	{ "x offset 1w", "x offset 1w" },
	{ "x offset 2w", "x offset 2w" },
	{ "x offset 10d", "x offset 10d" },
	{ "x offset 1y", "x offset 1y" },
	{ "x offset 1y1d", "x offset 366d" },
	{ "x @ 0", "x @ 0.000" },
	{ "x @ 1.5", "x @ 1.500" },
	{ "x @ -1.5", "x @ -1.500" },
	{ "x @ end()", "x @ end()" },
	{ "x @ start() offset 5m", "x @ start() offset 5m" },
	{ "x[5m] @ start()", "x[5m] @ start()" },
	{ "x[5m] offset 5m @ end()", "x[5m] @ end() offset 5m" },
	{ "x[5m:] @ 5", "x[5m:] @ 5.000" },
	{ "x[5m:1m] offset -1m", "x[5m:1m] offset -1m" },
	{ "(x)[5m:]", "(x)[5m:]" },
	{ "(x + y)[5m:1m]", "(x + y)[5m:1m]" },
	{ "sum(x)[1h:5m]", "sum(x)[1h:5m]" },
	{ "rate(x[5m])[30m:1m]", "rate(x[5m])[30m:1m]" },
	{ "max_over_time(deriv(rate(x[1m])[5m:1m])[10m:])",
	  "max_over_time(deriv(rate(x[1m])[5m:1m])[10m:])" },
	{ "x[1h:] @ 1000", "x[1h:] @ 1000.000" },
	{ "{job=\"x\"}", "{job=\"x\"}" },
	{ "{job=~\".+\"}", "{job=~\".+\"}" },
	{ "{job!=\"\"}", "{job!=\"\"}" },
	{ "{a=\"\",b=\"x\"}", "{a=\"\",b=\"x\"}" },
	{ "{__name__=\"up\"}", "{__name__=\"up\"}" },
	{ "{__name__=~\"up|down\"}", "{__name__=~\"up|down\"}" },
	{ "{__name__!~\"x\",a=\"b\"}", "{__name__!~\"x\",a=\"b\"}" },
	{ "up{}", "up" },
	{ "ignoring_metric", "ignoring_metric" },
	{ "on_call", "on_call" },
	{ "bool_thing", "bool_thing" },
	{ "sum_total", "sum_total" },
	{ "offset_x", "offset_x" },
	{ "without", "without" },
	{ "count", "count" },
	{ "group", "group" },
	{ "topk", "topk" },
	{ "start", "start" },
	{ "end{a=\"b\"}", "end{a=\"b\"}" },
	{ "x # trailing comment", "x" },
	{ "x", "x" },
	{ "a", "a" },
	{ "b", "b" },
	/* Deviation: Prometheus prints "+Inf ^ 2", which reads back as +(Inf ^ 2). */
	{ "Inf ^ 2", "Inf ^ 2" },
	{ "x ^ Inf ^ 2", "x ^ Inf ^ 2" },
	{ "-Inf ^ 2", "-Inf ^ 2" },
	{ "{a=~\"\\\\Qa)\\\\E\"}", "{a=~\"\\\\Qa)\\\\E\"}" },
	{ "{a=~\"}+\"}", "{a=~\"}+\"}" },
	/* Multi-line queries and comments. */
	{ "a\n  +\nb", "a + b" },
	{ "# leading comment\nx", "x" },
	{ "sum by (a) # c\n (x)", "sum by (a) (x)" },
	{ "foo{a=\"b\", # c\n c=\"d\"}", "foo{a=\"b\",c=\"d\"}" },
	{ "rate(x[5m]\n)\t*\r\n2", "rate(x[5m]) * 2" },
};

struct invalid_case {
	const char *q;
	const char *err; /* ts_promql_error_format() output */
};

static const struct invalid_case invalid[] = {
	{ "(x)[5m]", "1:4: parse error: ranges only allowed for vector selectors" },
	{ "sum by (without) (x)",
	  "1:9: parse error: unexpected <without> in grouping opts, expected label" },
	{ "0x.5",
	  "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x.5\": invalid syntax" },
	{ "1e400",
	  "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range" },
	{ "foo @ 1e20",
	  "1:1: parse error: timestamp out of bounds for @ modifier: 100000000000000000000.000000" },
	{ "{a=~\"(?=x)\"}",
	  "1:2: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?=`" },
	{ "{a=~\"\\\\1\"}",
	  "1:2: parse error: error parsing regexp: invalid escape sequence: `\\1`" },
	{ "foo offset 1m [5m]", "1:15: parse error: no offset modifiers allowed before range" },
	{ "sum(x,)", "1:6: parse error: trailing commas not allowed in function call args" },
	{ "rate(x[5m],)", "1:11: parse error: trailing commas not allowed in function call args" },
	{ "\"a\" + 1",
	  "1:1: parse error: binary expression must contain only scalar and instant vector types" },
	/* Regex messages are PCRE2's (Go: "missing closing ): `^(?:()$`"). */
	{ "{a=~\"(\",b=\"x\"}",
	  "1:2: parse error: error parsing regexp: missing closing parenthesis" },
	{ "{a=~\"a*\"}",
	  "1:1: parse error: vector selector must contain at least one non-empty matcher" },
	{ "{a=\"\"}",
	  "1:1: parse error: vector selector must contain at least one non-empty matcher" },
	{ "{}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
	{ "foo{__name__=\"bar\"}",
	  "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"" },
	{ "x[1.5m]", "1:3: parse error: not a valid duration string: \"1.5m\"" },
	{ "time() > 1", "1:8: parse error: comparisons between scalars must use BOOL modifier" },
	{ "round(x, 1, 2)",
	  "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3" },
	{ "label_join(x, \"a\", \",\", \"b\", 1)",
	  "1:30: parse error: expected type string in call to function \"label_join\", got scalar" },
	{ "vector(\"a\")",
	  "1:8: parse error: expected type scalar in call to function \"vector\", got string" },
	{ "(1)[5m:]",
	  "1:1: parse error: subquery is only allowed on instant vector, got scalar instead" },
	{ "\"a\"[5m:]",
	  "1:1: parse error: subquery is only allowed on instant vector, got string instead" },
	{ "x[5m][5m:]",
	  "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
	{ "rate(x)",
	  "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector" },
	{ "foo bar", "1:5: parse error: unexpected identifier \"bar\"" },
	{ "sum x", "1:5: parse error: unexpected identifier \"x\"" },
	{ "rate(x y)", "1:8: parse error: unexpected identifier \"y\"" },
	{ "sum(rate(x y))", "1:12: parse error: unexpected identifier \"y\" in aggregation" },
	{ "1 + ", "1:5: parse error: unexpected end of input" },
	{ "foo{a=\"b\" c=\"d\"}",
	  "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"" },
	{ "foo{a}",
	  "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator" },
	{ "foo{a=}", "1:7: parse error: unexpected \"}\" in label matching, expected string" },
	{ "foo{=\"a\"}",
	  "1:5: parse error: unexpected \"=\" in label matching, expected identifier or \"}\"" },
	{ "foo[]", "1:5: parse error: missing unit character in duration" },
	{ "foo[0s]", "1:5: parse error: duration must be greater than 0" },
	{ "foo offset", "1:11: parse error: unexpected end of input in offset, expected duration" },
	{ "foo @", "1:6: parse error: unexpected end of input in @, expected timestamp" },
	{ "#comment", "1:1: parse error: no expression found in input" },
	{ "", "1:1: parse error: no expression found in input" },
	{ "foo[5m:1m:]", "1:10: parse error: unexpected colon ':'" },
	{ "foo[5m", "1:7: parse error: unclosed left bracket" },
	{ ")", "1:2: parse error: unexpected right parenthesis ')'" },
	{ "foo)", "1:5: parse error: unexpected right parenthesis ')'" },
	{ "1e",
	  "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax" },
	{ "0xFFFFFFFFFFFFFFFFF",
	  "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0xFFFFFFFFFFFFFFFFF\": invalid syntax" },
	{ "1e+",
	  "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e+\": invalid syntax" },
	{ "foo[5m] @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times" },
	{ "sum(x y)", "1:7: parse error: unexpected identifier \"y\" in aggregation" },
	{ "sum by (a) x", "1:12: parse error: unexpected identifier \"x\" in aggregation" },
	{ "foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp" },
	{ "foo{a=\"b\",,}",
	  "1:11: parse error: unexpected \",\" in label matching, expected identifier or \"}\"" },
	{ "x * on(a) group_left(a) y",
	  "1:3: parse error: label \"a\" must not occur in ON and GROUP clause at once" },
	{ "a + on(a:b) b",
	  "1:8: parse error: unexpected metric identifier \"a:b\" in grouping opts, expected label" },
	{ "sum(x) by (a:b)",
	  "1:12: parse error: unexpected metric identifier \"a:b\" in grouping opts, expected label" },
	{ "-\"a\"",
	  "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"" },
	{ "foo offset 5m offset 1m", "1:1: parse error: offset may not be set multiple times" },
	{ "(foo) offset 5m",
	  "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
	{ "foo @ 5 offset 1m [5m]", "1:19: parse error: no offset modifiers allowed before range" },
	{ "1 and 2",
	  "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
	{ "x and 1",
	  "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
	{ "sum(1)",
	  "1:5: parse error: expected type instant vector in aggregation expression, got scalar" },
	{ "topk(x, y)",
	  "1:6: parse error: expected type scalar in aggregation parameter, got instant vector" },
	{ "count_values(1, x)",
	  "1:14: parse error: expected type string in aggregation parameter, got scalar" },
	{ "ignoring", "1:1: parse error: unexpected <ignoring>" },
	{ "x + bool 1",
	  "1:3: parse error: bool modifier can only be used on comparison operators" },
	{ "on", "1:1: parse error: unexpected <on>" },
	{ "bool", "1:1: parse error: unexpected <bool>" },
	{ "group_left", "1:1: parse error: unexpected <group_left>" },
	{ "foo and bool bar",
	  "1:5: parse error: bool modifier can only be used on comparison operators" },
	{ "foo == on(a) bool bar", "1:14: parse error: unexpected <bool>" },
	{ "x and on(a) group_left(b) y",
	  "1:1: parse error: no grouping allowed for \"and\" operation" },
	{ "atan2(a, b)", "1:1: parse error: unexpected <op:atan2>" },
	{ "a atan2 bool b",
	  "1:3: parse error: bool modifier can only be used on comparison operators" },
	{ "topk(\"a\", x)",
	  "1:6: parse error: expected type scalar in aggregation parameter, got string" },
	{ "topk(3)",
	  "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
	{ "quantile(x)",
	  "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
	{ "sum(x, y)",
	  "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2" },
	{ "sum()", "1:1: parse error: no arguments for aggregate expression provided" },
	{ "count_values(x)",
	  "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1" },
	{ "sum(x)[5m]", "1:7: parse error: ranges only allowed for vector selectors" },
	{ "day_of_month(x, y)",
	  "1:1: parse error: expected at most 1 argument(s) in call to \"day_of_month\", got 2" },
	{ "scalar(1)",
	  "1:8: parse error: expected type instant vector in call to function \"scalar\", got scalar" },
	{ "clamp(x, 0)", "1:1: parse error: expected 3 argument(s) in call to \"clamp\", got 2" },
	{ "label_join(x, \"a\")",
	  "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2" },
	{ "unknown_fn(x)", "1:1: parse error: unknown function with name \"unknown_fn\"" },
	{ "foo:bar(x)", "1:8: parse error: unexpected \"(\"" },
	{ "{\"a\"=\"b\"}",
	  "1:2: parse error: unexpected string \"\\\"a\\\"\" in label matching, expected identifier or \"}\"" },
	{ "foo{a=\"\\777\"}",
	  "1:7: parse error: escape sequence is an invalid Unicode code point" },
	{ "foo{a=\"\\u12\"}",
	  "1:7: parse error: illegal character U+0022 '\"' in escape sequence" },
	{ "foo{a=\"\\q\"}", "1:7: parse error: unknown escape sequence U+0071 'q'" },
	{ "foo{a=\"\\'\"}", "1:7: parse error: unknown escape sequence U+0027 '''" },
	{ "'\\\"'", "1:1: parse error: unknown escape sequence U+0022 '\"'" },
	{ "\"a", "1:1: parse error: unterminated quoted string" },
	{ "`abc", "1:1: parse error: unterminated raw string" },
	{ "foo{# comment", "1:14: parse error: unexpected end of input inside braces" },
	{ "a=\"b\"}", "1:2: parse error: unexpected \"=\"" },
	{ "foo[5m # x", "1:11: parse error: unclosed left bracket" },
	{ "]", "1:1: parse error: unexpected right bracket ']'" },
	{ "0x10 + 0x1p3", "1:8: parse error: bad number or duration syntax: \"0x1\"" },
	{ "1_000", "1:1: parse error: bad number or duration syntax: \"1\"" },
	{ "100..4", "1:5: parse error: unexpected number \".4\"" },
	{ "*1", "1:1: parse error: unexpected <op:*>" },
	{ "++-++-+-+-<", "1:11: parse error: unexpected <op:<>" },
	{ "-=", "1:2: parse error: unexpected \"=\"" },
	{ "1 + on(a) 2", "1:1: parse error: vector matching only allowed between instant vectors" },
	{ "foo + on(a) 2",
	  "1:1: parse error: vector matching only allowed between instant vectors" },
	{ "1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
	{ "\"a\" == \"b\"",
	  "1:1: parse error: binary expression must contain only scalar and instant vector types" },
	{ "x[5m] + 1",
	  "1:1: parse error: binary expression must contain only scalar and instant vector types" },
	{ "x[5m] > bool 1",
	  "1:1: parse error: binary expression must contain only scalar and instant vector types" },
	{ "-x[5m]",
	  "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"" },
	{ "abs(x[5m])",
	  "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector" },
	{ "rate(1)",
	  "1:6: parse error: expected type range vector in call to function \"rate\", got scalar" },
	{ "rate(\"a\")",
	  "1:6: parse error: expected type range vector in call to function \"rate\", got string" },
	{ "x @ 1 [5m]", "1:7: parse error: no @ modifiers allowed before range" },
	{ "x @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times" },
	{ "x @ start(", "1:11: parse error: unclosed left parenthesis" },
	{ "x @ start(1)", "1:11: parse error: unexpected number \"1\" in @, expected timestamp" },
	{ "x @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf" },
	{ "x @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN" },
	{ "sum(x) @ 1",
	  "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
	{ "rate(x[5m]) @ 1",
	  "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
	{ "x[100000000y]", "1:3: parse error: duration out of range" },
	{ "x[300y]", "1:3: parse error: duration out of range" },
	{ "x[5m1h]", "1:3: parse error: not a valid duration string: \"5m1h\"" },
	{ "x[5mm]", "1:3: parse error: bad duration syntax: \"5mm\"" },
	{ "x[5m1]", "1:3: parse error: bad duration syntax: \"5m1\"" },
	{ "x[0de]", "1:3: parse error: bad duration syntax: \"0de\"" },
	{ "x[5m:0s]", "1:6: parse error: duration must be greater than 0" },
	{ "foo offset 0s", "1:12: parse error: duration must be greater than 0" },
	{ "foo offset 5",
	  "1:12: parse error: unexpected number \"5\" in offset, expected duration" },
	{ "foo offset -",
	  "1:13: parse error: unexpected end of input in offset, expected duration" },
	{ "x[5m][5m]", "1:6: parse error: ranges only allowed for vector selectors" },
	{ "x[[5m]]", "1:3: parse error: missing unit character in duration" },
	{ "x]", "1:2: parse error: unexpected right bracket ']'" },
	{ "x[5m]]", "1:6: parse error: unexpected right bracket ']'" },
	{ "{", "1:2: parse error: unexpected end of input inside braces" },
	{ "}", "1:1: parse error: unexpected character: '}'" },
	{ "(", "1:2: parse error: unclosed left parenthesis" },
	{ "()", "1:2: parse error: unexpected \")\"" },
	{ "(1", "1:3: parse error: unclosed left parenthesis" },
	{ "1)", "1:3: parse error: unexpected right parenthesis ')'" },
	{ "a, b", "1:2: parse error: unexpected \",\"" },
	{ "sum(a) without (b) by (c)", "1:20: parse error: unexpected <by>" },
	{ "sum without(==)(x)",
	  "1:13: parse error: unexpected <op:==> in grouping opts, expected label" },
	{ "sum without(a,,)(x)",
	  "1:15: parse error: unexpected \",\" in grouping opts, expected label" },
	{ "sum without(a b)(x)",
	  "1:15: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"" },
	{ "sum without a (x)",
	  "1:13: parse error: unexpected identifier \"a\" in grouping opts, expected \"(\"" },
	{ "sum(x) by",
	  "1:10: parse error: unexpected end of input in grouping opts, expected \"(\"" },
	{ "x + group_left(a) y", "1:5: parse error: unexpected <group_left>" },
	{ "a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>" },
	{ "foo{a=\"b\"}{c=\"d\"}", "1:11: parse error: unexpected \"{\"" },
	{ "foo{{a=\"b\"}}", "1:5: parse error: unexpected left brace '{'" },
	{ "foo{a!b}", "1:6: parse error: unexpected character after '!' inside braces: 'b'" },
	{ "foo{a=~b}",
	  "1:8: parse error: unexpected identifier \"b\" in label matching, expected string" },
	{ "foo{1=\"a\"}", "1:5: parse error: unexpected character inside braces: '1'" },
	{ "foo{a=\"b\"c}",
	  "1:10: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"" },
	{ "foo{a==\"b\"}",
	  "1:7: parse error: unexpected \"=\" in label matching, expected string" },
	{ "foo{a:b=\"c\"}", "1:6: parse error: unexpected character inside braces: ':'" },
	{ "-x[5m:1m]",
	  "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"" },
	{ "1[5m:]",
	  "1:1: parse error: subquery is only allowed on instant vector, got scalar instead" },
	{ "# leading comment", "1:1: parse error: no expression found in input" },
	{ "  +", "1:4: parse error: unexpected end of input" },
	{ "x\n  + \"a\"",
	  "2:5: parse error: binary expression must contain only scalar and instant vector types" },
	{ "sum(\n  rate(x y))", "2:10: parse error: unexpected identifier \"y\" in aggregation" },
	{ "foo{a=\"\n\"}", "1:7: parse error: unterminated quoted string" },
	{ "foo{a=\"\\xz\"}", "1:7: parse error: illegal character U+007A 'z' in escape sequence" },
	{ "foo{a=\"\\ud800\"}",
	  "1:7: parse error: escape sequence is an invalid Unicode code point" },
	{ "foo{a=\"\\", "1:7: parse error: escape sequence not terminated" },
	{ "`abc", "1:1: parse error: unterminated raw string" },
	{ "\"\xff\"", "1:1: parse error: invalid UTF-8 rune" },
	{ "x[5m] @ 1 [5m]", "1:11: parse error: ranges only allowed for vector selectors" },
	{ "1 + on(x) group_left(y) foo",
	  "1:1: parse error: vector matching only allowed between instant vectors" },
	{ "x or on(a) group_left y", "1:1: parse error: no grouping allowed for \"or\" operation" },
	{ "x[5m:1m] [5m]", "1:10: parse error: ranges only allowed for vector selectors" },
	{ "x @ 1e19",
	  "1:1: parse error: timestamp out of bounds for @ modifier: 10000000000000000000.000000" },
	{ "{a=~\"(?=x)\"}",
	  "1:2: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?=`" },
	{ "{a=~\"a++\"}",
	  "1:2: parse error: error parsing regexp: invalid nested repetition operator: `++`" },
	{ "{a=~\"(?x)a\"}",
	  "1:2: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?x`" },
	/* Prometheus also parses the bare value: a stray ')' or \\Q without \\E fails. */
	{ "{a=~\"a)|(b\"}",
	  "1:2: parse error: error parsing regexp: unmatched closing parenthesis" },
	{ "{a=~\"\\\\Qab\"}",
	  "1:2: parse error: error parsing regexp: missing closing ): `^(?:\\Qab)$`" },
	{ "{a=~\"x\\\\E\"}",
	  "1:2: parse error: error parsing regexp: invalid escape sequence: `\\E`" },
	{ "a * on(b) group_left >c",
	  "1:22: parse error: unexpected <op:>> in grouping opts, expected \"(\"" },
	{ "!", "1:1: parse error: unexpected character after '!': '\357\277\275'" },
	{ "o\"\t\"", "1:2: parse error: unexpected string \"\\\"\\t\\\"\"" },
	{ "f(a,,b)", "1:4: parse error: trailing commas not allowed in function call args" },
	{ "rate(x, @)", "1:7: parse error: trailing commas not allowed in function call args" },
	/* Errors Prometheus raises when it closes a construct come before a bad
	 * character that follows it. */
	{ "foo(x) \\", "1:1: parse error: unknown function with name \"foo\"" },
	{ "0@4\3777",
	  "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
	{ "foo{a=~\"x\"} offset 1m offset 2m \\",
	  "1:1: parse error: offset may not be set multiple times" },
	{ "x[5m] \\", "1:7: parse error: unexpected character: '\\\\'" },
	{ "{a=~\"\\\\K\"}",
	  "1:2: parse error: error parsing regexp: invalid escape sequence: `\\K`" },
};

static void check_roundtrip(const char *q, struct ts_ast *t, const char *want)
{
	char *s1 = NULL, *s2 = NULL;
	struct ts_ast *t2 = NULL;
	struct ts_promql_error err;
	assert_int_equal(ts_ast_print(t, &s1), 0);
	if (want && strcmp(s1, want) != 0)
		fail_msg("query %s\n printed  %s\n expected %s", q, s1, want);
	int rc = ts_promql_parse(s1, strlen(s1), &t2, &err);
	if (rc != 0)
		fail_msg("query %s printed %s which fails to parse: %d:%s", q, s1, err.pos,
			 err.msg);
	if (!ts_ast_equal(t, t2))
		fail_msg("query %s printed %s which parses to a different tree", q, s1);
	assert_int_equal(ts_ast_print(t2, &s2), 0);
	if (strcmp(s1, s2) != 0)
		fail_msg("query %s: second print %s differs from first %s", q, s2, s1);
	ts_free(s1);
	ts_free(s2);
	ts_ast_free(t2);
}

static void test_valid_table(void **state)
{
	(void)state;
	assert_true(sizeof(valid) / sizeof(valid[0]) >= 150);
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct ts_ast *t = NULL;
		struct ts_promql_error err;
		int rc = ts_promql_parse(valid[i].q, strlen(valid[i].q), &t, &err);
		if (rc != 0)
			fail_msg("valid query #%zu %s failed: %d: %s", i, valid[i].q, err.pos,
				 err.msg);
		assert_non_null(t);
		assert_int_not_equal(t->type, TS_VT_NONE);
		check_roundtrip(valid[i].q, t, valid[i].printed);
		ts_ast_free(t);
	}
}

static void test_invalid_table(void **state)
{
	(void)state;
	assert_true(sizeof(invalid) / sizeof(invalid[0]) >= 60);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct ts_ast *t = (struct ts_ast *)&t;
		struct ts_promql_error err;
		char buf[400];
		const char *q = invalid[i].q;
		int rc = ts_promql_parse(q, strlen(q), &t, &err);
		if (rc != TS_EINVALID)
			fail_msg("invalid query #%zu %s: rc %d", i, q, rc);
		assert_null(t);
		assert_true(err.pos >= 0 && (size_t)err.pos <= strlen(q));
		ts_promql_error_format(q, strlen(q), &err, buf, sizeof(buf));
		if (strcmp(buf, invalid[i].err) != 0)
			fail_msg("query %s\n error    %s\n expected %s", q, buf, invalid[i].err);
	}
	/* err may be NULL. */
	struct ts_ast *t;
	assert_int_equal(ts_promql_parse("1 +", 3, &t, NULL), TS_EINVALID);
}

static struct ts_ast *parse_ok(const char *q)
{
	struct ts_ast *t = NULL;
	struct ts_promql_error err;
	int rc = ts_promql_parse(q, strlen(q), &t, &err);
	if (rc)
		fail_msg("%s: %s", q, err.msg);
	return t;
}

static void test_shapes(void **state)
{
	(void)state;
	struct ts_ast *t, *u;

	/* -1 ^ 2 is -(1 ^ 2); a unary minus on a literal folds into it. */
	t = parse_ok("-1 ^ 2");
	assert_int_equal(t->kind, TS_AST_UNARY);
	assert_int_equal(t->unary.op, TS_OP_SUB);
	assert_int_equal(t->unary.expr->kind, TS_AST_BINARY);
	assert_int_equal(t->unary.expr->binary.op, TS_OP_POW);
	assert_true(t->unary.expr->binary.lhs->number.value == 1.0);
	assert_int_equal(t->type, TS_VT_SCALAR);
	ts_ast_free(t);
	t = parse_ok("-1 + 2");
	assert_int_equal(t->kind, TS_AST_BINARY);
	assert_true(t->binary.lhs->kind == TS_AST_NUMBER && t->binary.lhs->number.value == -1.0);
	ts_ast_free(t);

	/* a - -b: binary minus of a unary minus. */
	t = parse_ok("a - -b");
	assert_int_equal(t->binary.op, TS_OP_SUB);
	assert_int_equal(t->binary.rhs->kind, TS_AST_UNARY);
	assert_int_equal(t->binary.rhs->unary.expr->kind, TS_AST_VECTOR_SELECTOR);
	ts_ast_free(t);

	/* 2 ^ 3 ^ 2 is right-associative; a - b - c left. */
	t = parse_ok("2 ^ 3 ^ 2");
	assert_int_equal(t->binary.lhs->kind, TS_AST_NUMBER);
	assert_int_equal(t->binary.rhs->kind, TS_AST_BINARY);
	ts_ast_free(t);
	t = parse_ok("a - b - c");
	assert_int_equal(t->binary.lhs->kind, TS_AST_BINARY);
	assert_int_equal(t->binary.rhs->kind, TS_AST_VECTOR_SELECTOR);
	ts_ast_free(t);
	t = parse_ok("a or b and c > d + e * f ^ g");
	assert_int_equal(t->binary.op, TS_OP_OR);
	assert_int_equal(t->binary.rhs->binary.op, TS_OP_AND);
	assert_int_equal(t->binary.rhs->binary.rhs->binary.op, TS_OP_GTR);
	ts_ast_free(t);

	/* foo offset 5m @ 100: both on the selector; name matcher appended. */
	t = parse_ok("foo{a=\"b\"} offset 5m @ 100");
	assert_int_equal(t->kind, TS_AST_VECTOR_SELECTOR);
	assert_int_equal(t->vs.offset_ms, 300000);
	assert_int_equal(t->vs.at, TS_AT_TIMESTAMP);
	assert_int_equal(t->vs.at_ms, 100000);
	assert_string_equal(t->vs.name, "foo");
	assert_int_equal(t->vs.n_matchers, 2);
	assert_string_equal(t->vs.matchers[1].name, "__name__");
	assert_string_equal(t->vs.matchers[1].value, "foo");
	assert_false(t->vs.matchers[0].matches_empty);
	ts_ast_free(t);

	/* Negative offset, @ start()/end(). */
	t = parse_ok("x offset -1h30m @ end()");
	assert_int_equal(t->vs.offset_ms, -5400000);
	assert_int_equal(t->vs.at, TS_AT_END);
	ts_ast_free(t);

	/* sum by (a) (x) and sum(x) by (a) are the same tree. */
	t = parse_ok("sum by (a) (x)");
	u = parse_ok("sum(x) by (a)");
	assert_true(ts_ast_equal(t, u));
	assert_int_equal(t->aggregate.op, TS_AGG_SUM);
	assert_int_equal(t->aggregate.grouping.n, 1);
	assert_string_equal(t->aggregate.grouping.names[0], "a");
	assert_false(t->aggregate.without);
	assert_null(t->aggregate.param);
	ts_ast_free(u);
	u = parse_ok("sum without (a) (x)");
	assert_false(ts_ast_equal(t, u));
	ts_ast_free(u);
	ts_ast_free(t);

	/* rate(x[5m:1m]) and x[5m] offset 1w. */
	t = parse_ok("rate(x[5m:1m])");
	assert_int_equal(t->kind, TS_AST_CALL);
	assert_int_equal(t->call.func->id, TS_FN_RATE);
	assert_int_equal(t->call.n_args, 1);
	assert_int_equal(t->call.args[0]->kind, TS_AST_SUBQUERY);
	assert_int_equal(t->call.args[0]->subquery.range_ms, 300000);
	assert_int_equal(t->call.args[0]->subquery.step_ms, 60000);
	ts_ast_free(t);
	t = parse_ok("x[5m] offset 1w");
	assert_int_equal(t->kind, TS_AST_MATRIX_SELECTOR);
	assert_int_equal(t->type, TS_VT_MATRIX);
	assert_int_equal(t->matrix.range_ms, 300000);
	assert_int_equal(t->matrix.vs->vs.offset_ms, 7LL * 86400000);
	ts_ast_free(t);
	t = parse_ok("x[1h:] offset 5m @ start()");
	assert_int_equal(t->subquery.step_ms, 0);
	assert_int_equal(t->subquery.offset_ms, 300000);
	assert_int_equal(t->subquery.at, TS_AT_START);
	ts_ast_free(t);

	/* {__name__=~"a|b"}: no name outside the braces. */
	t = parse_ok("{__name__=~\"a|b\"}");
	assert_null(t->vs.name);
	assert_int_equal(t->vs.n_matchers, 1);
	assert_int_equal(t->vs.matchers[0].type, TS_MATCH_RE);
	ts_ast_free(t);
	t = parse_ok("{a=~\".*\",b!~\".*\",c!=\"\",d=\"\"}");
	assert_true(t->vs.matchers[0].matches_empty);
	assert_false(t->vs.matchers[1].matches_empty);
	assert_false(t->vs.matchers[2].matches_empty);
	assert_true(t->vs.matchers[3].matches_empty);
	ts_ast_free(t);

	/* 1 > bool 2; vector matching. */
	t = parse_ok("1 > bool 2");
	assert_true(t->binary.return_bool);
	assert_int_equal(t->type, TS_VT_SCALAR);
	ts_ast_free(t);
	t = parse_ok("a * on(b) group_left(c) d");
	assert_int_equal(t->binary.matching.card, TS_CARD_MANY_TO_ONE);
	assert_true(t->binary.matching.on);
	assert_string_equal(t->binary.matching.labels.names[0], "b");
	assert_string_equal(t->binary.matching.include.names[0], "c");
	ts_ast_free(t);
	t = parse_ok("a and b");
	assert_int_equal(t->binary.matching.card, TS_CARD_MANY_TO_MANY);
	ts_ast_free(t);
	t = parse_ok("1 + on() group_left x");
	assert_int_equal(t->binary.matching.card, TS_CARD_ONE_TO_ONE);
	assert_false(t->binary.matching.on);
	ts_ast_free(t);

	/* Aggregation parameters. */
	t = parse_ok("topk(3, x)");
	assert_int_equal(t->aggregate.op, TS_AGG_TOPK);
	assert_true(t->aggregate.param->number.value == 3.0);
	ts_ast_free(t);
	t = parse_ok("quantile(0.9, x)");
	assert_true(t->aggregate.param->number.value == 0.9);
	ts_ast_free(t);
	t = parse_ok("count_values(\"v\", x)");
	assert_int_equal(t->aggregate.param->kind, TS_AST_STRING);
	assert_string_equal(t->aggregate.param->string.value, "v");
	ts_ast_free(t);

	/* Calls. */
	t = parse_ok("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")");
	assert_int_equal(t->call.func->id, TS_FN_LABEL_REPLACE);
	assert_int_equal(t->call.n_args, 5);
	ts_ast_free(t);
	t = parse_ok("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))");
	assert_int_equal(t->call.args[1]->kind, TS_AST_AGGREGATE);
	ts_ast_free(t);
	t = parse_ok("time()");
	assert_int_equal(t->type, TS_VT_SCALAR);
	assert_int_equal(t->call.n_args, 0);
	ts_ast_free(t);
	t = parse_ok("day_of_month()");
	assert_int_equal(t->type, TS_VT_VECTOR);
	ts_ast_free(t);

	/* Numbers: hex, octal, Inf, NaN, signs. */
	t = parse_ok("0x1F");
	assert_true(t->number.value == 31.0);
	ts_ast_free(t);
	t = parse_ok("010");
	assert_true(t->number.value == 8.0);
	ts_ast_free(t);
	t = parse_ok("-Inf");
	assert_true(isinf(t->number.value) && t->number.value < 0);
	ts_ast_free(t);
	t = parse_ok("nAn");
	assert_true(isnan(t->number.value));
	ts_ast_free(t);

	/* Strings may hold NUL bytes. */
	t = parse_ok("\"a\\x00b\"");
	assert_int_equal(t->string.len, 3);
	assert_memory_equal(t->string.value, "a\0b", 3);
	ts_ast_free(t);
	t = parse_ok("`a\\nb`");
	assert_string_equal(t->string.value, "a\\nb");
	ts_ast_free(t);

	/* Parens are kept. */
	t = parse_ok("(1)");
	assert_int_equal(t->kind, TS_AST_PAREN);
	assert_int_equal(t->type, TS_VT_SCALAR);
	ts_ast_free(t);

	/* Positions are byte offsets. */
	t = parse_ok("  sum(rate(x[5m]))");
	assert_int_equal(t->pos, 2);
	assert_int_equal(t->aggregate.expr->pos, 6);
	ts_ast_free(t);

	/* Equality is not fooled: different values differ. */
	t = parse_ok("x{a=\"1\"}");
	u = parse_ok("x{a=\"2\"}");
	assert_false(ts_ast_equal(t, u));
	ts_ast_free(u);
	u = parse_ok("x{a=\"1\"} offset 1m");
	assert_false(ts_ast_equal(t, u));
	ts_ast_free(u);
	ts_ast_free(t);
	assert_true(ts_ast_equal(NULL, NULL));
	ts_ast_free(NULL);
}

static void test_functions(void **state)
{
	(void)state;
	for (int i = 0; i < TS_FN__COUNT; i++) {
		const struct ts_function *f = ts_function_get((enum ts_func_id)i);
		assert_int_equal(f->id, i);
		assert_ptr_equal(ts_function_lookup(f->name, strlen(f->name)), f);
		if (i > 0)
			assert_true(strcmp(ts_function_get((enum ts_func_id)(i - 1))->name,
					   f->name) < 0);
	}
	assert_int_equal(TS_FN__COUNT, 70);
	assert_null(ts_function_lookup("Rate", 4));
	assert_null(ts_function_lookup("rat", 3));
	assert_null(ts_function_lookup("ratee", 5));
	const struct ts_function *f = ts_function_lookup("label_join", 10);
	assert_int_equal(f->variadic, -1);
	assert_int_equal(f->n_args, 4);
	f = ts_function_lookup("round", 5);
	assert_int_equal(f->variadic, 1);
	assert_int_equal(f->arg_types[1], TS_VT_SCALAR);
	f = ts_function_lookup("rate", 4);
	assert_int_equal(f->arg_types[0], TS_VT_MATRIX);
	assert_string_equal(ts_value_type_str(TS_VT_MATRIX), "range vector");
}

static const char *const complex_queries[] = {
	"histogram_quantile(0.9, sum by (le, job) (rate(x_bucket{job=~\"a|b\",le!=\"\"}[5m])))",
	"sum(rate(a{x=\"1\"}[5m] offset 1h @ 100)) / on(job) group_left(instance, pod) count(b)",
	"label_join(max_over_time(deriv(rate(x[1m])[5m:1m])[10m:] @ end()), \"a\", \",\", \"b\", \"c\")",
	"topk by (a) (3, -x ^ 2 > bool 1 unless ignoring(b) y or z and on() w)",
	"count_values without (a, b) (\"v\", {__name__=~\"up|down\",job!~\"x.*\"})",
	"foo{a=\"\\u00e9\\x00\",b=`raw`} + (1 - -time()) * vector(scalar(bar)) atan2 baz",
	/* Failing ones must not leak either. */
	"sum(rate(x[5m])) by (a) + rate(y)",
	"foo{a=~\"(\"}",
	"label_replace(x, \"a\", \"b\", \"c\", 1)",
};

/* Fails allocation n of each query (once, and from n on) until the parse needs no
 * more than n allocations; each failure must surface as -ENOMEM with nothing
 * leaked (ASan checks), and printing must fail cleanly too. */
static void test_alloc_failure(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(complex_queries) / sizeof(complex_queries[0]); i++) {
		const char *q = complex_queries[i];
		struct ts_ast *t;
		struct ts_promql_error err;
		ts_mem_fail_at(0, 0);
		int want = ts_promql_parse(q, strlen(q), &t, &err);
		ts_ast_free(t);
		for (int sticky = 0; sticky <= 1; sticky++) {
			for (unsigned long n = 1;; n++) {
				ts_mem_fail_at(n, sticky);
				int rc = ts_promql_parse(q, strlen(q), &t, &err);
				int fired = ts_mem_failed();
				ts_mem_fail_at(0, 0);
				if (!fired) {
					assert_int_equal(rc, want);
					ts_ast_free(t);
					break;
				}
				if (rc != -ENOMEM)
					fail_msg("%s: allocation %lu failed but rc %d (%s)", q, n,
						 rc, err.msg);
				assert_null(t);
			}
		}
		if (want != 0)
			continue;
		t = parse_ok(q);
		for (unsigned long n = 1;; n++) {
			char *s = (char *)q;
			ts_mem_fail_at(n, 0);
			int rc = ts_ast_print(t, &s);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (!fired) {
				assert_int_equal(rc, 0);
				ts_free(s);
				break;
			}
			assert_int_equal(rc, -ENOMEM);
			assert_null(s);
		}
		ts_ast_free(t);
	}
}

static char *repeat(const char *pre, const char *mid, const char *post, int n)
{
	size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
	char *s = malloc(lp * (size_t)n + lm + lq * (size_t)n + 1);
	char *o = s;
	for (int i = 0; i < n; i++, o += lp)
		memcpy(o, pre, lp);
	memcpy(o, mid, lm);
	o += lm;
	for (int i = 0; i < n; i++, o += lq)
		memcpy(o, post, lq);
	*o = '\0';
	return s;
}

static void test_depth_limits(void **state)
{
	(void)state;
	struct ts_ast *t;
	struct ts_promql_error err;
	char *q = repeat("(", "1", ")", 100);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), 0);
	check_roundtrip(q, t, q);
	ts_ast_free(t);
	free(q);
	q = repeat("(", "1", ")", 100000);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), TS_EINVALID);
	assert_string_equal(err.msg, "expression nested too deeply");
	free(q);
	q = repeat("-", "x", "", 100000);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), TS_EINVALID);
	free(q);
	q = repeat("2^", "2", "", 100000);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), TS_EINVALID);
	free(q);
	/* Long flat chains are fine up to the tree height limit, refused beyond. */
	q = repeat("x or ", "x", "", 1000);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), 0);
	check_roundtrip(q, t, NULL);
	ts_ast_free(t);
	free(q);
	q = repeat("x or ", "x", "", 100000);
	assert_int_equal(ts_promql_parse(q, strlen(q), &t, &err), TS_EINVALID);
	assert_string_equal(err.msg, "expression nested too deeply");
	free(q);
}

/* Every int64 @ timestamp prints as S.mmm and parses back to itself. */
static void test_at_roundtrip(void **state)
{
	(void)state;
	uint64_t seed = tu_seed(__func__, 0x5eed1234abcdULL), rng = seed;
	int64_t fixed[] = { 0,
			    1,
			    -1,
			    999,
			    -999,
			    1000,
			    INT64_MAX,
			    INT64_MIN,
			    INT64_MIN + 1,
			    (int64_t)1 << 53,
			    ((int64_t)1 << 53) + 1 };
	for (int i = 0; i < 2000; i++) {
		int64_t ms = i < (int)(sizeof(fixed) / sizeof(fixed[0]))
				     ? fixed[i]
				     : (int64_t)(tu_rand(&rng) >> (tu_rand(&rng) % 64));
		if (i % 2 && ms != INT64_MIN)
			ms = -ms;
		struct ts_ast *t = ts_ast_new(TS_AST_VECTOR_SELECTOR, 0), *u;
		struct ts_promql_error err;
		char *s;
		t->type = TS_VT_VECTOR;
		t->vs.name = ts_strdup("x");
		t->vs.matchers = ts_calloc(1, sizeof(struct ts_ast_matcher));
		t->vs.n_matchers = 1;
		t->vs.matchers[0].name = ts_strdup("__name__");
		t->vs.matchers[0].value = ts_strdup("x");
		t->vs.matchers[0].value_len = 1;
		t->vs.at = TS_AT_TIMESTAMP;
		t->vs.at_ms = ms;
		assert_int_equal(ts_ast_print(t, &s), 0);
		if (ts_promql_parse(s, strlen(s), &u, &err) != 0 || u->vs.at_ms != ms)
			fail_msg("seed %#" PRIx64 ": %" PRId64
				 " printed as %s reads back as %" PRId64,
				 seed, ms, s, u ? u->vs.at_ms : 0);
		ts_free(s);
		ts_ast_free(u);
		ts_ast_free(t);
	}
}

static void test_lexer(void **state)
{
	(void)state;
	struct {
		const char *q;
		enum ts_promql_tok want[8];
	} cases[] = {
		{ "sum by(a)",
		  { TS_TOK_SUM, TS_TOK_BY, TS_TOK_LPAREN, TS_TOK_IDENT, TS_TOK_RPAREN } },
		{ "x{on=\"a\"}",
		  { TS_TOK_IDENT, TS_TOK_LBRACE, TS_TOK_IDENT, TS_TOK_EQL, TS_TOK_STRING,
		    TS_TOK_RBRACE } },
		{ "a:b[5m:1m]",
		  { TS_TOK_METRIC_IDENT, TS_TOK_LBRACKET, TS_TOK_DURATION, TS_TOK_COLON,
		    TS_TOK_DURATION, TS_TOK_RBRACKET } },
		{ "1 >= bool INF", { TS_TOK_NUMBER, TS_TOK_GTE, TS_TOK_BOOL, TS_TOK_NUMBER } },
		{ "x # c\n@ 5", { TS_TOK_IDENT, TS_TOK_AT, TS_TOK_NUMBER } },
		{ "a!=b=~", { TS_TOK_IDENT, TS_TOK_NEQ, TS_TOK_IDENT, TS_TOK_ERROR } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ts_promql_lexer lx;
		struct ts_promql_token tok;
		ts_promql_lex_init(&lx, cases[i].q, strlen(cases[i].q));
		for (int k = 0;; k++) {
			ts_promql_lex_next(&lx, &tok);
			if (tok.type != cases[i].want[k])
				fail_msg("%s: token %d is %d, want %d", cases[i].q, k, tok.type,
					 cases[i].want[k]);
			if (tok.type == TS_TOK_EOF || tok.type == TS_TOK_ERROR)
				break;
		}
		ts_promql_lex_next(&lx, &tok);
		assert_int_equal(tok.type, TS_TOK_EOF);
	}
	assert_string_equal(ts_promql_tok_str(TS_TOK_GROUP_LEFT), "group_left");
	assert_string_equal(ts_promql_tok_str(TS_TOK_EQL_REGEX), "=~");
	assert_null(ts_promql_tok_str(TS_TOK_IDENT));
}

/* Queries need not be NUL-terminated and may contain NUL bytes. */
static void test_lengths(void **state)
{
	(void)state;
	struct ts_ast *t;
	struct ts_promql_error err;
	char *q = malloc(5);
	memcpy(q, "1 + 2", 5);
	assert_int_equal(ts_promql_parse(q, 5, &t, &err), 0);
	ts_ast_free(t);
	assert_int_equal(ts_promql_parse(q, 3, &t, &err), TS_EINVALID);
	assert_string_equal(err.msg, "unexpected end of input");
	free(q);
	assert_int_equal(ts_promql_parse("1\0", 2, &t, &err), TS_EINVALID);
	assert_string_equal(err.msg, "unexpected character: '\\x00'");
	assert_int_equal(ts_promql_parse("", 0, &t, &err), TS_EINVALID);
	assert_string_equal(err.msg, "no expression found in input");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table),   cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_shapes),	      cmocka_unit_test(test_functions),
		cmocka_unit_test(test_alloc_failure), cmocka_unit_test(test_depth_limits),
		cmocka_unit_test(test_at_roundtrip),  cmocka_unit_test(test_lexer),
		cmocka_unit_test(test_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
