/*
 * crc32c.c - CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, pre- and
 * post-inverted, so ts_crc32c(ts_crc32c(0, a), b) == ts_crc32c(0, a || b).
 *
 * Two implementations give bit-identical results:
 *   hw  the SSE4.2 crc32 instruction, 8 bytes per step (x86-64 only). The function
 *       carries __attribute__((target("sse4.2"))) so this file builds without
 *       -msse4.2 and the binary still runs on CPUs without it.
 *   sw  slicing-by-8: eight 256-entry tables, 8 bytes per step, portable C (bytes are
 *       assembled explicitly, so it is endian-neutral).
 * The choice is made once, on the first call, with __builtin_cpu_supports("sse4.2"),
 * and cached in an atomic function pointer. The tables are filled under pthread_once.
 * Both paths are reachable from tests through the ts__crc32c_* internals below.
 */
#include "storage/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define TS_CRC32C_HAVE_HW 1
#else
#define TS_CRC32C_HAVE_HW 0
#endif

#define POLY 0x82F63B78u

/* Internals, exported for tests only (declared there). */
uint32_t ts__crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t ts__crc32c_hw(uint32_t crc, const void *buf, size_t len);
int ts__crc32c_hw_available(void);

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int s = 1; s < 8; s++)
			table[s][i] = (table[s - 1][i] >> 8) ^ table[0][table[s - 1][i] & 0xff];
}

static uint32_t sw_run(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24) ^
			      crc;
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			      (uint32_t)p[7] << 24;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^ table[3][hi & 0xff] ^
		      table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t ts__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&table_once, table_init);
	return sw_run(crc, buf, len);
}

#if TS_CRC32C_HAVE_HW
__attribute__((target("sse4.2"))) static uint32_t hw_run(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;
	/* Unaligned 8-byte loads are fine on x86; align anyway so long runs never split a
	 * cache line. */
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 32) {
		uint64_t a, b, d, e;
		__builtin_memcpy(&a, p, 8);
		__builtin_memcpy(&b, p + 8, 8);
		__builtin_memcpy(&d, p + 16, 8);
		__builtin_memcpy(&e, p + 24, 8);
		c = _mm_crc32_u64(c, a);
		c = _mm_crc32_u64(c, b);
		c = _mm_crc32_u64(c, d);
		c = _mm_crc32_u64(c, e);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		uint64_t a;
		__builtin_memcpy(&a, p, 8);
		c = _mm_crc32_u64(c, a);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

int ts__crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

uint32_t ts__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return hw_run(crc, buf, len);
}
#else
int ts__crc32c_hw_available(void)
{
	return 0;
}

uint32_t ts__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return ts__crc32c_sw(crc, buf, len);
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);
static _Atomic(crc_fn) chosen;

static crc_fn choose(void)
{
	crc_fn f;
#if TS_CRC32C_HAVE_HW
	if (ts__crc32c_hw_available()) {
		f = hw_run;
	} else
#endif
	{
		pthread_once(&table_once, table_init);
		f = sw_run;
	}
	atomic_store_explicit(&chosen, f, memory_order_release);
	return f;
}

uint32_t ts_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc_fn f = atomic_load_explicit(&chosen, memory_order_acquire);
	if (!f)
		f = choose();
	return f(crc, buf, len);
}
