/*
 * fmtnum.h - exact number conversion shared by the text decoders and encoders:
 * decimal text -> double with correct rounding (without needing a NUL terminator),
 * decimal integers with overflow detection, and the shortest round-trip formatting of
 * a double in Go's strconv.FormatFloat(v, 'g', -1, 64) layout.
 */
#ifndef TS_WIRE_FMTNUM_H
#define TS_WIRE_FMTNUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Prometheus' value.NormalNaN: the NaN the text decoders store for "NaN", null and the
 * like (bit-exact, so it differs from the stale marker TS_STALE_NAN_BITS). */
#define TS_FMT_NORMAL_NAN_BITS 0x7ff8000000000001ULL
static inline double ts_fmt_normal_nan(void)
{
	uint64_t b = TS_FMT_NORMAL_NAN_BITS;
	double v;
	memcpy(&v, &b, sizeof v);
	return v;
}

/* Room ts_fmt_double() needs, NUL included ("-2.2250738585072014e-308" is 24). */
#define TS_FMT_DOUBLE_MAX 32

/* Writes v to buf (at least TS_FMT_DOUBLE_MAX bytes) NUL-terminated and returns the
 * length without the NUL. Finite values get the shortest decimal that strtod() reads
 * back to the same bits (among equally short ones, the closest to the exact value),
 * laid out like Go's strconv.FormatFloat(v, 'g', -1, 64): with d the digits and x the
 * decimal exponent of the first digit, "d.ddde+XX" when x < -4 or x >= 6 ("1e+06",
 * "1.234567e+06", "1e-05"), plain otherwise ("100000", "0.0001", "1.5"); -0 is "-0".
 * Non-finite values are "NaN" (any payload), "+Inf", "-Inf", the spelling the
 * Prometheus HTTP API uses for sample values. Thread-safe; no allocation. */
size_t ts_fmt_double(char *buf, double v);
/* Writes v in decimal to buf (at least 21 bytes) NUL-terminated, two digits at a
 * time; returns the length. Cannot fail. */
size_t ts_fmt_u64(char *buf, uint64_t v);

/* Parses a decimal floating-point literal s[0..len) (not NUL-terminated; never read
 * past len): [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?. No hex, no
 * underscores, no inf/nan words (callers that accept those check first). The result
 * is correctly rounded (round-half-even), any length of digits.
 * Returns 0, TS_EINVALID on bad syntax, TS_ELIMIT when the magnitude overflows to
 * infinity (*out is then +-Inf). Underflow to zero or a subnormal is not an error. */
int ts_fmtnum_parse_double(const char *s, size_t len, double *out);

/* Parses [+-]? digits (leading zeros allowed, Go strconv.ParseInt(s, 10, 64) rules).
 * Returns 0, TS_EINVALID on syntax, TS_ELIMIT if outside int64. */
int ts_fmtnum_parse_int64(const char *s, size_t len, int64_t *out);

/* Parses digits only (no sign: Go strconv.ParseUint(s, 10, 64)). Returns 0,
 * TS_EINVALID, TS_ELIMIT if above UINT64_MAX. */
int ts_fmtnum_parse_uint64(const char *s, size_t len, uint64_t *out);

#endif
