/*
 * fuzz_remote_read.c - ReadRequest decoding on hostile bytes. Byte 0 odd: the rest is a
 * snappy block (1 MiB limit); even: raw protobuf. Invariants: the result is 0,
 * TS_ECORRUPT, TS_EINVALID or TS_ELIMIT; on success every matcher type is 0..3, every
 * string lies inside the buffer, and the negotiated response type is one we support.
 * Successful requests are also answered through both encoders (echoing matchers as
 * labels) to exercise them with arbitrary bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/remote_read.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "fuzz_util.h"

static void inside(struct ts_pb_str s, const uint8_t *buf, size_t len)
{
	fz_check(fz_within(s.p, s.len, buf, len));
}

static void answer(const struct ts_rr_request *r)
{
	struct ts_rr_samples_writer sw;
	struct ts_rr_chunked_writer cw;
	ts_rr_samples_init(&sw);
	ts_rr_chunked_init(&cw, 4096);
	for (size_t i = 0; i < r->n_queries && i < 8; i++) {
		const struct ts_rr_query *q = &r->queries[i];
		struct ts_label ls[16];
		uint32_t n = q->n_matchers < 16 ? q->n_matchers : 16;
		for (uint32_t k = 0; k < n; k++) {
			ls[k].name = q->matchers[k].name.p;
			ls[k].name_len = q->matchers[k].name.len;
			ls[k].value = q->matchers[k].value.p;
			ls[k].value_len = q->matchers[k].value.len;
		}
		struct ts_sample s = { q->start_ms, (double)q->end_ms };
		if (ts_rr_samples_begin_result(&sw) == 0) {
			if (ts_rr_samples_begin_series(&sw, ls, n) == 0) {
				ts_rr_samples_add(&sw, &s, 1);
				ts_rr_samples_end_series(&sw);
			}
			ts_rr_samples_end_result(&sw);
		}
		if (ts_rr_chunked_begin_series(&cw, (int64_t)i, ls, n) == 0) {
			ts_rr_chunked_add_chunk(&cw, q->start_ms, q->end_ms, TS_RR_CHUNK_XOR,
						(const uint8_t *)q->hints.func.p,
						q->hints.func.len);
			ts_rr_chunked_end_series(&cw);
		}
	}
	ts_rr_samples_fini(&sw);
	ts_rr_chunked_fini(&cw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_rr_request req;
	static int ready;
	if (!ready) {
		fz_quiet();
		ts_rr_request_init(&req);
		ready = 1;
	}
	uint8_t *buf;
	size_t len;
	if (fz_body(data, size, &buf, &len) != 0)
		return 0;
	int rc = ts_rr_decode(&req, buf, len);
	if (rc != 0 && rc != TS_ECORRUPT && rc != TS_EINVALID && rc != TS_ELIMIT)
		abort();
	if (rc == 0) {
		if (req.response_type != TS_RR_SAMPLES &&
		    req.response_type != TS_RR_STREAMED_XOR_CHUNKS)
			abort();
		for (size_t i = 0; i < req.n_queries; i++) {
			const struct ts_rr_query *q = &req.queries[i];
			for (uint32_t k = 0; k < q->n_matchers; k++) {
				if (q->matchers[k].type > TS_RR_NRE)
					abort();
				inside(q->matchers[k].name, buf, len);
				inside(q->matchers[k].value, buf, len);
			}
			for (uint32_t k = 0; k < q->hints.n_grouping; k++)
				inside(q->hints.grouping[k], buf, len);
			if (q->has_hints)
				inside(q->hints.func, buf, len);
		}
		answer(&req);
	}
	ts_free(buf);
	return 0;
}
