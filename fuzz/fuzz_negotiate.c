/*
 * fuzz_negotiate.c - remote write's Content-Type / Content-Encoding negotiation
 * (wire/remote_write.c, ts_rw_negotiate) on arbitrary header values.
 * Input: the Content-Type value, then optionally a NUL byte and the Content-Encoding
 * value (absent without the NUL). Both are exact-size copies, so ASan sees any read
 * past a value. Properties: the answer is 0 with version 1 or 2, or 415 with a
 * NUL-terminated reason that fits its buffer; a missing Content-Type means 1.0; the
 * answer does not depend on the reason buffer being given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/remote_write.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t ct_len = nul ? (size_t)(nul - data) : size;
	char *ct = (char *)fz_memdup(data, ct_len);
	char *ce = nul ? (char *)fz_memdup(nul + 1, size - ct_len - 1) : NULL;
	size_t ce_len = nul ? size - ct_len - 1 : 0;
	if (!ct || (nul && !ce)) {
		free(ct);
		free(ce);
		return 0;
	}
	char msg[64];
	memset(msg, 'x', sizeof msg);
	enum ts_rw_version v = 0, v2 = 0;
	int rc = ts_rw_negotiate(ct, ct_len, ce, ce_len, &v, msg, sizeof msg);
	fz_check(rc == 0 || rc == 415);
	if (rc == 0)
		fz_check(v == TS_RW_V1 || v == TS_RW_V2);
	else
		fz_check(memchr(msg, 0, sizeof msg) != NULL);
	fz_check(ts_rw_negotiate(ct, ct_len, ce, ce_len, &v2, NULL, 0) == rc);
	fz_check(rc != 0 || v2 == v);
	if (ce_len == 0)
		fz_check(ts_rw_negotiate(NULL, 0, ce, ce_len, &v2, NULL, 0) == 0 && v2 == TS_RW_V1);
	free(ct);
	free(ce);
	return 0;
}
