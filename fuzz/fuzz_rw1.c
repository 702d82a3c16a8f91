/*
 * fuzz_rw1.c - remote-write decoding and label validation on hostile bytes (RW 1.0;
 * fuzz_rw2.c includes this file with FUZZ_RW_VERSION set to 2).
 * Input: byte 0 selects the mode (odd: the rest is a snappy block, decompressed with a
 * 1 MiB limit first; even: the rest is the raw protobuf). Invariants checked: the decode
 * returns 0, TS_ECORRUPT or TS_ELIMIT (or, for 1.0, TS_EINVALID: a 2.0 body sent as
 * 1.0); on success every label, exemplar label, symbol and
 * metadata string lies inside the decoded buffer (RW2 symbols point there too) and the
 * per-series counts add up to the totals. The request is reused across inputs, as a
 * server connection reuses it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/remote_write.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "fuzz_util.h"

#ifndef FUZZ_RW_VERSION
#define FUZZ_RW_VERSION TS_RW_V1
#endif

static void inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	fz_check(fz_within(p, n, buf, len));
}

static void check(const struct ts_rw_request *r, const uint8_t *buf, size_t len)
{
	size_t ns = 0, nh = 0, ne = 0;
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_rw_series *s = &r->series[i];
		for (uint32_t k = 0; k < s->n_labels; k++) {
			inside(s->labels[k].name, s->labels[k].name_len, buf, len);
			inside(s->labels[k].value, s->labels[k].value_len, buf, len);
		}
		for (uint32_t k = 0; k < s->n_exemplars; k++)
			for (uint32_t j = 0; j < s->exemplars[k].n_labels; j++) {
				inside(s->exemplars[k].labels[j].name,
				       s->exemplars[k].labels[j].name_len, buf, len);
				inside(s->exemplars[k].labels[j].value,
				       s->exemplars[k].labels[j].value_len, buf, len);
			}
		if (s->has_metadata) {
			inside(s->help.p, s->help.len, buf, len);
			inside(s->unit.p, s->unit.len, buf, len);
		}
		for (uint32_t k = 0; k < s->n_samples; k++) {
			volatile double v = s->samples[k].v; /* touch: ASan checks the arena */
			(void)v;
		}
		ns += s->n_samples;
		nh += s->n_histograms;
		ne += s->n_exemplars;
	}
	if (ns != r->n_samples || nh != r->n_histograms || ne != r->n_exemplars)
		abort();
	for (size_t i = 0; i < r->n_symbols; i++)
		inside(r->symbols[i].p, r->symbols[i].len, buf, len);
	for (size_t i = 0; i < r->n_metadata; i++) {
		inside(r->metadata[i].family.p, r->metadata[i].family.len, buf, len);
		inside(r->metadata[i].help.p, r->metadata[i].help.len, buf, len);
		inside(r->metadata[i].unit.p, r->metadata[i].unit.len, buf, len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_rw_request req;
	static int ready;
	if (!ready) {
		fz_quiet();
		ts_rw_request_init(&req);
		ready = 1;
	}
	uint8_t *buf;
	size_t len;
	int rc = fz_body(data, size, &buf, &len);
	if (rc < 0 && rc != TS_ECORRUPT && rc != TS_ELIMIT)
		abort();
	if (rc != 0)
		return 0;
	rc = ts_rw_decode(&req, FUZZ_RW_VERSION, buf, len);
	if (rc != 0 && rc != TS_ECORRUPT && rc != TS_ELIMIT &&
	    !(rc == TS_EINVALID && FUZZ_RW_VERSION == TS_RW_V1))
		abort();
	if (rc == 0) {
		check(&req, buf, len);
		for (size_t i = 0; i < req.n_series; i++) {
			char msg[128];
			enum ts_rw_reason why;
			struct ts_rw_limits lim = { 30, 64, 256 };
			ts_rw_validate_series(&req.series[i], (data[0] & 2) ? &lim : NULL, &why,
					      msg, sizeof msg);
			if (memchr(msg, '\0', sizeof msg) == NULL)
				abort();
		}
	}
	ts_free(buf);
	return 0;
}
