/*
 * fuzz_storeapi.c - the StoreAPI's request decoders (wire/storeapi.h) on hostile bytes.
 * Byte 0 picks the request kind (Series, LabelNames, LabelValues); the rest is the
 * message. Invariants: the result is 0, TS_EINVALID or -ENOMEM; on success every
 * matcher has a type 0..3 and a non-empty NUL-free name, at most TS_SA_MAX_MATCHERS
 * of them, a Series request has min <= max, aggregates only known bits, and a
 * LabelValues request a non-empty label. Decoded matchers are echoed through the
 * Series encoder as labels to exercise it with arbitrary strings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/storeapi.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	if (size < 1)
		return 0;
	enum ts_sa_kind kind = (enum ts_sa_kind)(data[0] % 3);
	uint8_t *p = fz_memdup(data + 1, size - 1);
	if (!p)
		return 0;
	struct ts_sa_request r;
	char msg[256];
	int rc = ts_sa_decode(kind, p, size - 1, &r, msg, sizeof msg);
	fz_check(rc == 0 || rc == TS_EINVALID || rc == -ENOMEM);
	if (rc == 0) {
		fz_check(r.n_m <= TS_SA_MAX_MATCHERS);
		struct ts_label ls[TS_SA_MAX_MATCHERS];
		for (size_t i = 0; i < r.n_m; i++) {
			fz_check(r.m[i].type <= TS_MATCH_NRE);
			fz_check(r.m[i].name[0] != 0);
			ls[i] = (struct ts_label){ r.m[i].name, r.m[i].value,
						   (uint32_t)strlen(r.m[i].name),
						   (uint32_t)strlen(r.m[i].value) };
		}
		if (kind == TS_SA_SERIES) {
			fz_check(r.mint <= r.maxt);
			fz_check((r.aggr_mask >> TS_SA_N_AGGR) == 0);
			fz_check(r.max_resolution >= 0);
		}
		if (kind == TS_SA_LABEL_VALUES)
			fz_check(r.label && r.label[0]);
		fz_check(r.limit >= 0);
		struct ts_pb_buf b;
		ts_pb_buf_init(&b);
		struct ts_sa_chunk c = { .mint = r.mint, .maxt = r.maxt };
		c.data[TS_SA_RAW] = p;
		c.len[TS_SA_RAW] = size - 1;
		rc = ts_sa_put_series(&b, ls, r.n_m, &c, 1);
		fz_check(rc == 0 || rc == -ENOMEM);
		ts_pb_buf_fini(&b);
		ts_sa_request_fini(&r);
	}
	free(p);
	return 0;
}
