/*
 * test_utf8.c - strict UTF-8 validation against an independent reference (decode the
 * code point, then check range, overlong and surrogate rules), exhaustively for every
 * 1-, 2- and 3-byte string and for seeded random longer ones; encoder round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tsdb/utf8.h"
#include "storage/mem.h"
#include "testutil.h"

static void test_known(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int valid;
	} cases[] = {
		{ "", 1 },
		{ "plain ascii, long enough for the word loop", 1 },
		{ "\xc3\xa9", 1 },
		{ "\xe2\x82\xac", 1 },
		{ "\xf0\x9f\x98\x80", 1 },
		{ "\xf4\x8f\xbf\xbf", 1 }, /* U+10FFFF */
		{ "\xed\x9f\xbf", 1 },	   /* U+D7FF */
		{ "\xee\x80\x80", 1 },	   /* U+E000 */
		{ "\xc0\x80", 0 },	   /* overlong NUL */
		{ "\xc1\xbf", 0 },	   /* overlong */
		{ "\xe0\x9f\xbf", 0 },	   /* overlong 3-byte */
		{ "\xf0\x8f\xbf\xbf", 0 }, /* overlong 4-byte */
		{ "\xed\xa0\x80", 0 },	   /* U+D800 */
		{ "\xed\xbf\xbf", 0 },	   /* U+DFFF */
		{ "\xf4\x90\x80\x80", 0 }, /* U+110000 */
		{ "\xf5\x80\x80\x80", 0 },
		{ "\xff", 0 },
		{ "\x80", 0 },
		{ "abc\xe2\x82", 0 }, /* truncated */
		{ "abcdefgh\xf0\x9f\x98", 0 },
		{ "abcdefghijklmnop\xc3", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = strlen(cases[i].s);
		if (ts_utf8_valid(cases[i].s, n) != cases[i].valid)
			fail_msg("case %zu", i);
		assert_int_equal(tu_utf8_valid_ref(cases[i].s, n), cases[i].valid);
	}
	/* NUL is U+0000: valid. */
	assert_true(ts_utf8_valid("a\0b", 3));
	assert_true(ts_utf8_valid(NULL, 0));
}

static void test_exhaustive_short(void **state)
{
	(void)state;
	unsigned char b[3];
	for (unsigned a = 0; a < 256; a++) {
		b[0] = (unsigned char)a;
		assert_int_equal(!!ts_utf8_valid(b, 1), tu_utf8_valid_ref(b, 1));
		for (unsigned c = 0; c < 256; c++) {
			b[1] = (unsigned char)c;
			assert_int_equal(!!ts_utf8_valid(b, 2), tu_utf8_valid_ref(b, 2));
			for (unsigned d = 0; d < 256; d++) {
				b[2] = (unsigned char)d;
				if (!!ts_utf8_valid(b, 3) != tu_utf8_valid_ref(b, 3))
					fail_msg("%02x %02x %02x", a, c, d);
			}
		}
	}
}

static void test_random(void **state)
{
	(void)state;
	uint64_t seed = 0xC0FFEE123ULL;
	unsigned char buf[40];
	/* Mostly-valid text with sprinkled edge bytes so both answers are common. */
	static const unsigned char pool[] = { 'a',  'z',  ' ',	0,    0x7f, 0x80, 0x8f,
					      0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
					      0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
	int n_valid = 0;
	for (int iter = 0; iter < 400000; iter++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t n = (size_t)(seed >> 58) % sizeof buf;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			buf[i] = pool[(seed >> 40) % sizeof pool];
		}
		int want = tu_utf8_valid_ref(buf, n);
		n_valid += want;
		if (!!ts_utf8_valid(buf, n) != want)
			fail_msg("seed-derived case %d differs (seed 0xC0FFEE123)", iter);
	}
	assert_true(n_valid > 1000);
}

static void test_encode(void **state)
{
	(void)state;
	char b[TS_UTF8_MAX];
	for (uint32_t cp = 0; cp <= 0x10FFFF + 5; cp++) {
		size_t n = ts_utf8_encode(b, cp);
		int want = cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
		if (!want) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
		if (!ts_utf8_valid(b, n))
			fail_msg("U+%04X", cp);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_exhaustive_short),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
