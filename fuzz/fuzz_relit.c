/*
 * Fuzz target: the literal-set reading of label regexes (tsdb/relit.c,
 * ts__relit_expand), which sees every regex a query sends.
 * Properties: nothing crashes or reads past the input; a set has 1..256 values, each
 * non-empty, at most 250 bytes, NUL-free and matched by the regex itself as the
 * selection compiles it (tsdb/select.c: PCRE2, anchored at both ends, UTF).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tsdb/relit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 512)
		return 0;
	char *re = (char *)fz_memdup(data, size);
	if (!re)
		return 0;
	struct ts__relit s = { 0 };
	int rc = ts__relit_expand(re, size, 256, 250, &s);
	fz_check(rc == 0 || rc == 1 || rc == -ENOMEM);
	if (rc == 1) {
		fz_check(s.n >= 1 && s.n <= 256);
		int err;
		PCRE2_SIZE off;
		pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, size,
						 PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF,
						 &err, &off, NULL);
		pcre2_match_data *md = code ? pcre2_match_data_create(4, NULL) : NULL;
		for (size_t i = 0; i < s.n; i++) {
			fz_check(s.len[i] >= 1 && s.len[i] <= 250 && !memchr(s.v[i], 0, s.len[i]));
			/* Input that is not UTF-8 does not compile with PCRE2_UTF; the
			 * selection refuses such a regex before it gets here. */
			if (code)
				fz_check(pcre2_match(code, (PCRE2_SPTR)s.v[i], s.len[i], 0, 0, md,
						     NULL) >= 0);
		}
		pcre2_match_data_free(md);
		pcre2_code_free(code);
	}
	ts__relit_free(&s);
	free(re);
	return 0;
}
