/*
 * test_format.c - the on-disk facts that are code (tsdb/format.h): partition starts and
 * directory names, at the int64 edges of the storable timestamp range.
 *
 * Property tests with a seeded PRNG over every partition width the engine accepts:
 * for a timestamp t in [TS_FORMAT_MIN_T_MS, TS_FORMAT_MAX_T_MS] the partition start s is
 * a multiple of the width, s <= t < s + width, and s + width does not overflow; the
 * directory name of [s, s + width) parses back to exactly that range. Run under UBSan in
 * CI, so an overflow anywhere in this arithmetic fails the build's test run.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "testutil.h"
#include "tsdb/format.h"

static void check_one(int64_t t, int64_t w)
{
	int64_t s = ts_format_partition_start(t, w);
	if (s % w != 0 || s > t || t - s >= w || s > INT64_MAX - w)
		fail_msg("t=%" PRId64 " width=%" PRId64 ": start %" PRId64, t, w, s);
	char name[TS_FORMAT_PART_NAME_MAX];
	int n = ts_format_part_name(name, sizeof name, s, s + w);
	assert_true(n > 0 && (size_t)n < sizeof name);
	int64_t a = 0, b = 0;
	if (ts_format_part_dir_kind(name, &a, &b) != TS_FORMAT_PART_DIR_LIVE || a != s ||
	    b != s + w)
		fail_msg("name %s does not parse back to [%" PRId64 ", %" PRId64 ")", name, s,
			 s + w);
}

static void test_partition_arithmetic_at_the_edges(void **st)
{
	(void)st;
	uint64_t rs = tu_seed("test_format", 42);
	const int64_t widths[] = { 1,
				   3,
				   60000,
				   3600000,
				   86400000,
				   7 * INT64_C(86400000),
				   INT64_C(1) << 40,
				   TS_FORMAT_PARTITION_MS_MAX - 1,
				   TS_FORMAT_PARTITION_MS_MAX };
	const int64_t edges[] = { TS_FORMAT_MIN_T_MS,	  TS_FORMAT_MIN_T_MS + 1, -1, 0, 1,
				  TS_FORMAT_MAX_T_MS - 1, TS_FORMAT_MAX_T_MS };
	for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
		for (size_t j = 0; j < sizeof edges / sizeof edges[0]; j++)
			check_one(edges[j], widths[i]);
		for (int k = 0; k < 20000; k++) {
			/* Uniform over the storable range, and near its ends. */
			uint64_t r = tu_rand(&rs);
			int64_t t = (int64_t)(r % ((uint64_t)TS_FORMAT_MAX_T_MS * 2 + 1)) +
				    TS_FORMAT_MIN_T_MS;
			if (k % 4 == 1)
				t = TS_FORMAT_MIN_T_MS + (int64_t)(r % 1000000);
			else if (k % 4 == 2)
				t = TS_FORMAT_MAX_T_MS - (int64_t)(r % 1000000);
			check_one(t, widths[i]);
		}
	}
}

/* Names that are not partitions, or whose numbers do not fit, are not taken for one. */
static void test_partition_names_refused(void **st)
{
	(void)st;
	static const char *const bad[] = { "",
					   "_",
					   "1_",
					   "_1",
					   "2_1",
					   "1_1",
					   "1_2x",
					   "x1_2",
					   "+1_2",
					   "1_9223372036854775808",
					   "-9223372036854775809_0",
					   "1_2.compactx" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t a, b;
		enum ts_format_part_dir k = ts_format_part_dir_kind(bad[i], &a, &b);
		if (k == TS_FORMAT_PART_DIR_LIVE)
			fail_msg("\"%s\" taken for a partition", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partition_arithmetic_at_the_edges),
		cmocka_unit_test(test_partition_names_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
