/*
 * test_crc32c.c - CRC-32C: the standard check value, published vectors, incremental use,
 * and agreement of the SSE4.2 path, the slicing-by-8 path and a bit-at-a-time reference
 * on random buffers of every length 0..300 at every alignment 0..7.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"
#include "testutil.h"

/* Internals of crc32c.c, exported for this test only. */
uint32_t ts__crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t ts__crc32c_hw(uint32_t crc, const void *buf, size_t len);
int ts__crc32c_hw_available(void);

#define SEED 20240601 /* TS_SEED overrides */

static uint64_t rng; /* tu_rand() state, reset by each test from tu_seed() */

/* The definition, one bit at a time. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_known(crc_fn f)
{
	assert_int_equal(f(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(f(0, "", 0), 0);
	assert_int_equal(f(0, NULL, 0), 0);
	/* RFC 3720 (iSCSI) B.4 vectors. */
	uint8_t b[32];
	memset(b, 0, sizeof b);
	assert_int_equal(f(0, b, 32), 0x8A9136AAu);
	memset(b, 0xff, sizeof b);
	assert_int_equal(f(0, b, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(f(0, b, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(f(0, b, 32), 0x113FDB5Cu);
}

static void test_check_values(void **state)
{
	(void)state;
	assert_int_equal(crc_ref(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
	check_known(ts_crc32c);
	check_known(ts__crc32c_sw);
	if (ts__crc32c_hw_available())
		check_known(ts__crc32c_hw);
	else
		print_message("no SSE4.2 on this CPU: hardware path not tested\n");
}

static void test_random_all_paths(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	int hw = ts__crc32c_hw_available();
	uint8_t *buf = malloc(300 + 8);
	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < 308; i++)
			buf[i] = (uint8_t)tu_rand(&rng);
		for (size_t len = 0; len <= 300; len++) {
			for (size_t off = 0; off < 8; off++) {
				const uint8_t *p = buf + off;
				uint32_t seed = round == 0 ? 0 : (uint32_t)tu_rand(&rng);
				uint32_t want = crc_ref(seed, p, len);
				assert_int_equal(ts__crc32c_sw(seed, p, len), want);
				if (hw)
					assert_int_equal(ts__crc32c_hw(seed, p, len), want);
				assert_int_equal(ts_crc32c(seed, p, len), want);
			}
		}
	}
	free(buf);
}

/* crc(a || b) == crc(crc(a), b) at every split point, for both paths. */
static void test_incremental(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)tu_rand(&rng);
	uint32_t whole = ts_crc32c(0, buf, sizeof buf);
	assert_int_equal(whole, crc_ref(0, buf, sizeof buf));
	for (size_t cut = 0; cut <= sizeof buf; cut++) {
		assert_int_equal(ts_crc32c(ts_crc32c(0, buf, cut), buf + cut, sizeof buf - cut),
				 whole);
		assert_int_equal(
			ts__crc32c_sw(ts__crc32c_sw(0, buf, cut), buf + cut, sizeof buf - cut),
			whole);
	}
}

/* A large buffer through both paths (exercises the unrolled hardware loop). */
static void test_large(void **state)
{
	(void)state;
	rng = tu_seed(__func__, SEED);
	size_t n = 1 << 20;
	uint8_t *buf = malloc(n + 1);
	for (size_t i = 0; i < n + 1; i++)
		buf[i] = (uint8_t)tu_rand(&rng);
	uint32_t want = crc_ref(0, buf + 1, n);
	assert_int_equal(ts__crc32c_sw(0, buf + 1, n), want);
	assert_int_equal(ts_crc32c(0, buf + 1, n), want);
	if (ts__crc32c_hw_available())
		assert_int_equal(ts__crc32c_hw(0, buf + 1, n), want);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_values),
		cmocka_unit_test(test_random_all_paths),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
