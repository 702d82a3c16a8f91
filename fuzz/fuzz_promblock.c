/*
 * Fuzz target: the Prometheus block readers of `tsdbctl import --format prometheus`
 * (tools/tsdbctl/promread.c, compiled in here: it lives in the tsdbctl program).
 * Byte 0 picks the file the rest is: 0 an index (opened, then every series read and
 * every XOR chunk reference resolved against the index bytes taken as a segment file),
 * 1 a chunk segment file (the chunk at offsets taken from its own bytes), 2 a tombstones
 * file, 3 a meta.json.
 * CRC checks are compiled out here (PB_FUZZ_SKIP_CRC) so that mutations reach the
 * parsers; tests/integration/test_promblocks.py checks that damage is caught.
 * Properties: nothing crashes, reads out of bounds or leaks; decoded labels and chunk
 * data point into the input; a parsed tombstone list is sorted; a parsed meta has
 * maxTime >= minTime; an error leaves a NUL-terminated reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "storage/err.h"
#include "storage/xor.h"
/* CRC checks off: random mutations would fail them and never reach the parsers. */
#define PB_FUZZ_SKIP_CRC
#include "tools/tsdbctl/promread.c"

static void check_why(const char *why, size_t len)
{
	fz_check(memchr(why, 0, len) != NULL);
}

static void fuzz_index(const uint8_t *p, size_t n)
{
	struct pb_index ix;
	char why[256];
	memset(why, 'x', sizeof why);
	int rc = pb_index_open(&ix, p, n, why, sizeof why);
	if (rc) {
		check_why(why, sizeof why);
		return;
	}
	fz_check(ix.n_sym == 0 || ix.sym_off != NULL);
	struct pb_series s = { 0 };
	for (size_t i = 0; i < ix.n_series && i < 4096; i++) {
		if (pb_series_read(&ix, ix.series[i], &s, why, sizeof why))
			continue;
		for (uint32_t k = 0; k < s.n_labels; k++) {
			fz_check(fz_within(s.labels[k].name, s.labels[k].name_len, p, n));
			fz_check(fz_within(s.labels[k].value, s.labels[k].value_len, p, n));
		}
		for (size_t c = 0; c < s.n_chunks; c++) {
			uint8_t enc;
			const uint8_t *d;
			size_t len;
			if (pb_chunk_at(p, n, s.chunks[c].ref & 0xffffffffu, &enc, &d, &len, why,
					sizeof why) == 0) {
				fz_check(fz_within(d, len, p, n));
				struct ts_xor_it it;
				if (enc == PB_ENC_XOR && ts_xor_it_init(&it, d, len) == 0)
					while (ts_xor_next(&it) == 1)
						;
			}
		}
	}
	pb_series_fini(&s);
	pb_index_close(&ix);
}

static void fuzz_segment(const uint8_t *p, size_t n)
{
	char why[256];
	if (pb_segment_check(p, n, why, sizeof why))
		return;
	/* Offsets from the file's own bytes, and the first chunk's. */
	uint64_t offs[4] = { 8, n > 12 ? p[8] : 0, n > 16 ? (uint64_t)p[9] << 8 | p[10] : 0,
			     n - 1 };
	for (int i = 0; i < 4; i++) {
		uint8_t enc;
		const uint8_t *d;
		size_t len;
		memset(why, 'x', sizeof why);
		if (pb_chunk_at(p, n, offs[i], &enc, &d, &len, why, sizeof why) == 0)
			fz_check(fz_within(d, len, p, n));
		else
			check_why(why, sizeof why);
	}
}

static void fuzz_tombstones(const uint8_t *p, size_t n)
{
	struct pb_stone *st;
	size_t k;
	char why[256];
	memset(why, 'x', sizeof why);
	if (pb_tombstones_parse(p, n, &st, &k, why, sizeof why)) {
		check_why(why, sizeof why);
		return;
	}
	for (size_t i = 1; i < k; i++)
		fz_check(st[i - 1].ref <= st[i].ref);
	ts_free(st);
}

static void fuzz_meta(const uint8_t *p, size_t n)
{
	int64_t mint, maxt;
	char why[256];
	memset(why, 'x', sizeof why);
	if (pb_meta_parse((const char *)p, n, &mint, &maxt, why, sizeof why) == 0)
		fz_check(maxt >= mint);
	else
		check_why(why, sizeof why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	if (size < 1)
		return 0;
	uint8_t *p = fz_memdup(data + 1, size - 1);
	if (!p)
		return 0;
	switch (data[0] & 3) {
	case 0: fuzz_index(p, size - 1); break;
	case 1: fuzz_segment(p, size - 1); break;
	case 2: fuzz_tombstones(p, size - 1); break;
	default: fuzz_meta(p, size - 1);
	}
	free(p);
	return 0;
}
