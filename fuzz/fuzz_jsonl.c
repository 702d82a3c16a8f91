/*
 * fuzz_jsonl.c - JSON tokenizer and JSON-lines import on arbitrary bytes. Properties:
 *   - the tokenizer walks any input to END or an error, depth never above the limit;
 *   - every series the importer returns, written back by ts_jsonl_encode (within
 *     ts_jsonl_encode_bound) and imported again, gives identical labels and
 *     timestamps and bit-identical values.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/jsonl.h"
#include "storage/mem.h"
#include "fuzz_util.h"

static void roundtrip(const struct ts_jsonl_series *s)
{
	size_t bound = ts_jsonl_encode_bound(s->labels, s->n_labels, s->n_samples);
	char *buf = ts_malloc(bound);
	if (!buf)
		return;
	size_t n = ts_jsonl_encode(buf, s->labels, s->n_labels, s->samples, s->n_samples);
	fz_check(n <= bound && n > 0 && buf[n - 1] == '\n');
	struct ts_jsonl_parser p;
	struct ts_jsonl_series r;
	ts_jsonl_init(&p, buf, n);
	fz_check(ts_jsonl_next(&p, &r) == 1);
	fz_check(r.n_labels == s->n_labels && r.n_samples == s->n_samples);
	for (uint32_t i = 0; i < r.n_labels; i++) {
		fz_check(r.labels[i].name_len == s->labels[i].name_len);
		fz_check(r.labels[i].value_len == s->labels[i].value_len);
		fz_check(memcmp(r.labels[i].name, s->labels[i].name, r.labels[i].name_len) == 0);
		fz_check(memcmp(r.labels[i].value, s->labels[i].value, r.labels[i].value_len) == 0);
	}
	for (size_t i = 0; i < r.n_samples; i++) {
		fz_check(r.samples[i].t_ms == s->samples[i].t_ms);
		fz_check(memcmp(&r.samples[i].v, &s->samples[i].v, sizeof(double)) == 0);
	}
	fz_check(ts_jsonl_next(&p, &r) == 0);
	ts_jsonl_fini(&p);
	ts_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, text, size);
	for (;;) {
		int t = ts_jsonl_lex_next(&lx);
		fz_check(lx.depth <= TS_JSONL_MAX_DEPTH);
		if (t <= 0)
			break;
		if ((t == TS_JSONL_STR || t == TS_JSONL_KEY) && lx.tok_len < 4096) {
			char tmp[4096];
			fz_check(ts_jsonl_unescape(tmp, lx.tok, lx.tok_len) <= lx.tok_len);
		}
	}

	struct ts_jsonl_parser p;
	struct ts_jsonl_series s;
	ts_jsonl_init(&p, text, size);
	int rc;
	while ((rc = ts_jsonl_next(&p, &s)) != 0) {
		if (rc != 1)
			continue;
		fz_check(s.n_labels > 0 && s.n_samples > 0);
		roundtrip(&s);
	}
	ts_jsonl_fini(&p);
	return 0;
}
