/*
 * fuzz_postings.c - the delta blocks of the index's postings (storage/env.h,
 * ts_env_u64_block_decode): a block read from disk is untrusted bytes. The input is the
 * block (an exact-size copy, so ASan sees any read past its end). Properties of a block
 * that decodes: its ids strictly ascend, there are no more than TS_ENV_U64_BLOCK_IDS
 * allows, and encoding them again gives back the same bytes (the encoding is canonical:
 * the decoder refuses overlong varints and zero deltas). A too small output array is
 * TS_ELIMIT with exactly cap ids written.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "storage/env.h"
#include "storage/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ids[600], again[600];
	static uint8_t out[600];
	fz_quiet();
	uint8_t *d = fz_memdup(data, size);
	if (!d)
		return 0;
	size_t n = 0;
	int rc = ts_env_u64_block_decode(d, size, ids, 600, &n);
	fz_check(rc == 0 || rc == TS_ECORRUPT);
	if (rc == 0) {
		fz_check(n >= 1 && n <= TS_ENV_U64_BLOCK_IDS(size));
		for (size_t i = 1; i < n; i++)
			fz_check(ids[i] > ids[i - 1]);
		size_t len;
		size_t took = ts_env_u64_block_encode(ids, n, out, size, &len);
		fz_check(took == n && len == size && memcmp(out, d, size) == 0);
		/* a short array: the first cap ids, then TS_ELIMIT */
		size_t cap = n / 2, m;
		rc = ts_env_u64_block_decode(d, size, again, cap, &m);
		fz_check(cap == n ? rc == 0 : rc == TS_ELIMIT && m == cap);
		fz_check(memcmp(again, ids, m * sizeof *ids) == 0);
	}
	free(d);
	return 0;
}
