/*
 * fuzz_fmtnum.c - the exact number conversions every text decoder uses (wire/fmtnum.c)
 * on arbitrary bytes. Properties:
 *   - ts_fmtnum_parse_double never reads past the input and agrees bit for bit with
 *     glibc's correctly rounded strtod() on every input it accepts (strtod takes a
 *     superset of the syntax); overflow is TS_ELIMIT with +-Inf, as strtod's ERANGE;
 *   - a finite parsed value, formatted by ts_fmt_double and parsed again, comes back
 *     bit for bit, and the text is at most TS_FMT_DOUBLE_MAX - 1 bytes;
 *   - ts_fmtnum_parse_int64 and _uint64 agree with strtoll() and strtoull() on what
 *     they accept, and report out-of-range values as TS_ELIMIT.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "wire/fmtnum.h"
#include "fuzz_util.h"

static int same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0; /* strtod on huge inputs is slow, and adds nothing */
	char *s = (char *)fz_memdup(data, size); /* exact size, not NUL-terminated */
	char *z = malloc(size + 1);		 /* the NUL-terminated copy for libc */
	if (!s || !z) {
		free(s);
		free(z);
		return 0;
	}
	memcpy(z, data, size);
	z[size] = '\0';

	double v;
	int rc = ts_fmtnum_parse_double(s, size, &v);
	fz_check(rc == 0 || rc == TS_EINVALID || rc == TS_ELIMIT);
	if (rc != TS_EINVALID) {
		char *end;
		errno = 0;
		double w = strtod(z, &end);
		fz_check(end == z + size);
		fz_check(same_bits(v, w));
		fz_check(rc == 0 ? isfinite(v) : isinf(v) && errno == ERANGE);
	}
	if (rc == 0) {
		char buf[TS_FMT_DOUBLE_MAX];
		size_t n = ts_fmt_double(buf, v);
		fz_check(n < TS_FMT_DOUBLE_MAX && buf[n] == '\0');
		double back;
		fz_check(ts_fmtnum_parse_double(buf, n, &back) == 0 && same_bits(back, v));
	}

	int64_t i;
	rc = ts_fmtnum_parse_int64(s, size, &i);
	fz_check(rc == 0 || rc == TS_EINVALID || rc == TS_ELIMIT);
	if (rc != TS_EINVALID) {
		char *end;
		errno = 0;
		long long w = strtoll(z, &end, 10);
		fz_check(end == z + size);
		fz_check(rc == 0 ? errno == 0 && w == i : errno == ERANGE);
	}
	uint64_t u;
	rc = ts_fmtnum_parse_uint64(s, size, &u);
	fz_check(rc == 0 || rc == TS_EINVALID || rc == TS_ELIMIT);
	if (rc != TS_EINVALID) {
		char *end;
		errno = 0;
		unsigned long long w = strtoull(z, &end, 10);
		fz_check(end == z + size);
		fz_check(rc == 0 ? errno == 0 && w == u : errno == ERANGE);
	}
	free(s);
	free(z);
	return 0;
}
