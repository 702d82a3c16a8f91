/*
 * fmtnum.c - decimal <-> double conversions for the text protocols.
 *
 * Parsing. Wire numbers are never NUL-terminated, and strtod() would happily read
 * past the token (and accepts hex, "inf", locale decimal points). So the syntax is
 * checked here, and the value is computed
 *   - exactly by Clinger's fast path when the significand has at most 19 digits and
 *     fits 2^53 and the power of ten is at most 10^22 (both operands exact, one IEEE
 *     operation, hence correctly rounded) - the common case for metrics;
 *   - otherwise by strtod() on a rebuilt, bounded string "DDD...De[-]N" (digits and
 *     exponent only, so no locale dependency). Digits beyond the 780th are replaced by
 *     one sticky '1' when any of them is non-zero: the halfway points between doubles
 *     have at most 767 significant digits, so the input and its truncation round the
 *     same way. The exponent saturates at +-99999, far beyond the double range.
 *
 * Formatting. Shortest round-trip digits come from "%.{15,16,17}e": if a decimal of at
 * most 15 significant digits reads back to v, the 15-digit rounding of v is that
 * decimal (15-digit decimals are spaced wider than a double's ULP), so trailing zeros
 * stripped it is the shortest; otherwise the correctly rounded 16-digit form is the
 * closest 16-digit candidate, and 17 digits always round-trip (subnormals, with fewer
 * significant bits, search from 1 digit up). Integers below 2^53 and short decimals
 * (v * 10^k an integer below 10^15 for a small k) skip snprintf entirely. The digits
 * are then laid out the way Go's 'g' shortest does.
 */
#include "wire/fmtnum.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "wire/pow10_tab.h"

#define KEEP_DIGITS 780
#define EXP_CLAMP 99999

static const double pow10_exact[23] = {
	1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,	1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int ts_fmtnum_parse_double(const char *s, size_t len, double *out)
{
	size_t i = 0;
	int neg = 0;
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		neg = s[i] == '-';
		i++;
	}
	/* Pass 1: syntax, significand (first 19 significant digits), exponent. */
	uint64_t mant = 0;
	int n_sig = 0;	    /* significant digits seen (after leading zeros) */
	int n_kept = 0;	    /* of which folded into mant */
	long long dexp = 0; /* value = mant * 10^dexp (ignoring dropped digits) */
	int dropped_nonzero = 0;
	int any_digit = 0;
	size_t int_start = i;
	for (; i < len && is_digit(s[i]); i++) {
		any_digit = 1;
		int d = s[i] - '0';
		if (n_sig == 0 && d == 0)
			continue;
		n_sig++;
		if (n_kept < 19) {
			mant = mant * 10 + (uint64_t)d;
			n_kept++;
		} else {
			dexp++;
			dropped_nonzero |= d != 0;
		}
	}
	size_t int_end = i;
	size_t frac_start = i, frac_end = i;
	if (i < len && s[i] == '.') {
		i++;
		frac_start = i;
		for (; i < len && is_digit(s[i]); i++) {
			any_digit = 1;
			int d = s[i] - '0';
			if (n_sig == 0 && d == 0) {
				dexp--;
				continue;
			}
			n_sig++;
			if (n_kept < 19) {
				mant = mant * 10 + (uint64_t)d;
				n_kept++;
				dexp--;
			} else {
				dropped_nonzero |= d != 0;
			}
		}
		frac_end = i;
	}
	if (!any_digit)
		return TS_EINVALID;
	long long e10 = 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		int eneg = 0;
		if (i < len && (s[i] == '+' || s[i] == '-')) {
			eneg = s[i] == '-';
			i++;
		}
		if (i >= len || !is_digit(s[i]))
			return TS_EINVALID;
		/* Saturate far above any digit count plus EXP_CLAMP, so a long run
		 * of zeros and a large exponent still cancel correctly. */
		for (; i < len && is_digit(s[i]); i++)
			if (e10 < 100000000000000000LL)
				e10 = e10 * 10 + (s[i] - '0');
		if (eneg)
			e10 = -e10;
	}
	if (i != len)
		return TS_EINVALID;

	if (n_sig == 0) {
		*out = neg ? -0.0 : 0.0;
		return 0;
	}
	long long ex = dexp + e10;
	if (!dropped_nonzero && n_kept == n_sig && mant <= (1ULL << 53) && ex >= -22 && ex <= 22) {
		double v = (double)mant;
		v = ex < 0 ? v / pow10_exact[-ex] : v * pow10_exact[ex];
		*out = neg ? -v : v;
		return 0;
	}

	/* Slow path: rebuild "[-]DDDD[1]eN" from all significant digits. */
	char buf[1 + KEEP_DIGITS + 1 + 2 + 8];
	size_t b = 0;
	if (neg)
		buf[b++] = '-';
	int kept = 0, sticky = 0;
	long long point_shift = 0; /* value = digits * 10^(point_shift + e10) */
	int started = 0;
	for (size_t k = int_start; k < int_end; k++) {
		if (!started && s[k] == '0')
			continue;
		started = 1;
		if (kept < KEEP_DIGITS) {
			buf[b++] = s[k];
			kept++;
		} else {
			sticky |= s[k] != '0';
			point_shift++;
		}
	}
	for (size_t k = frac_start; k < frac_end; k++) {
		if (!started && s[k] == '0') {
			point_shift--;
			continue;
		}
		started = 1;
		if (kept < KEEP_DIGITS) {
			buf[b++] = s[k];
			kept++;
			point_shift--;
		} else {
			sticky |= s[k] != '0';
		}
	}
	if (sticky) {
		buf[b++] = '1';
		point_shift--;
	}
	long long e = point_shift + e10;
	if (e > EXP_CLAMP)
		e = EXP_CLAMP;
	if (e < -EXP_CLAMP - KEEP_DIGITS)
		e = -EXP_CLAMP - KEEP_DIGITS;
	int w = snprintf(buf + b, sizeof buf - b, "e%lld", e);
	if (w < 0 || (size_t)w >= sizeof buf - b)
		return TS_EINVALID;
	errno = 0;
	double v = strtod(buf, NULL);
	*out = v;
	if (isinf(v))
		return TS_ELIMIT;
	return 0;
}

int ts_fmtnum_parse_uint64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0)
		return TS_EINVALID;
	uint64_t v = 0;
	int ovf = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return TS_EINVALID;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			ovf = 1;
		else
			v = v * 10 + d;
	}
	if (ovf)
		return TS_ELIMIT;
	*out = v;
	return 0;
}

int ts_fmtnum_parse_int64(const char *s, size_t len, int64_t *out)
{
	int neg = 0;
	size_t i = 0;
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	uint64_t u;
	int rc = ts_fmtnum_parse_uint64(s + i, len - i, &u);
	if (rc != 0)
		return rc;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return TS_ELIMIT;
		*out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return TS_ELIMIT;
		*out = (int64_t)u;
	}
	return 0;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				     "25262728293031323334353637383940414243444546474849"
				     "50515253545556575859606162636465666768697071727374"
				     "75767778798081828384858687888990919293949596979899";

size_t ts_fmt_u64(char *buf, uint64_t v)
{
	char tmp[20];
	char *p = tmp + sizeof tmp;
	while (v >= 100) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	size_t n = (size_t)(tmp + sizeof tmp - p);
	memcpy(buf, p, n);
	buf[n] = 0;
	return n;
}

/* The 8 decimal digits of v < 10^8, zero-padded, into out[0..8): two independent
 * halves, two digits per step. */
static void eight_digits(uint32_t v, char *out)
{
	uint32_t hi = v / 10000, lo = v % 10000;
	memcpy(out, digit_pairs + 2 * (hi / 100), 2);
	memcpy(out + 2, digit_pairs + 2 * (hi % 100), 2);
	memcpy(out + 4, digit_pairs + 2 * (lo / 100), 2);
	memcpy(out + 6, digit_pairs + 2 * (lo % 100), 2);
}

/* Digits of u > 0 without trailing zeros into digs; returns the count, *n_all the count
 * before stripping. Three 8-digit groups cover any u64 (20 digits at most). */
static int u64_digits(uint64_t u, char digs[20], int *n_all)
{
	char tmp[24];
	eight_digits((uint32_t)(u / 10000000000000000ull), tmp);
	eight_digits((uint32_t)(u / 100000000 % 100000000), tmp + 8);
	eight_digits((uint32_t)(u % 100000000), tmp + 16);
	int first = 0;
	while (first < 23 && tmp[first] == '0')
		first++;
	int last = 24;
	while (last > first + 1 && tmp[last - 1] == '0')
		last--;
	*n_all = 24 - first;
	memcpy(digs, tmp + first, (size_t)(last - first));
	return last - first;
}

/* Decimal digits of av > 0 (no leading/trailing zeros) and x, the decimal exponent of
 * the first digit. Returns the digit count. */
/* 10^k as long double, exact for 0 <= k <= 27 (5^27 < 2^64). */
static long double pow10l_exact(int k)
{
	long double r = 1;
	for (int i = 0; i < k; i++)
		r *= 10;
	return r;
}

/* The shortest round-trip digits of a normal double without printf: candidates with 15,
 * 16 and 17 significant digits are computed in x87 extended precision (64-bit mantissa,
 * relative error about 1e-19 per operation, against the 1e-16 to 1e-17 the decisions
 * need). A candidate is taken only when the error bounds (one rounding per operation,
 * padded 4-16x) make both facts certain: it is
 * the nearest decimal of that length to av, and it is within half an ULP of av (so it
 * reads back to av). Anything closer to a boundary than the margin returns 0 and the
 * exact printf/strtod path decides. Returns the digit count, or 0. */
static int fast_digits(double av, char digs[20], int *x)
{
	if (!(av >= 1e-300 && av < 1e300) || sizeof(long double) < 16)
		return 0;
	int e2;
	double mant = frexp(av, &e2);
	/* Half the gap to the neighbouring doubles: 2^(e2-54) above; below a power of two
	 * the gap is half as wide (the exponent drops), so half of that below it. */
	long double half_ulp_up = ldexpl(1.0L, e2 - 54);
	long double half_ulp_down = mant == 0.5 ? ldexpl(1.0L, e2 - 55) : half_ulp_up;
	int e10 = (int)floor(log10(av));
	for (int prec = 15; prec <= 17; prec++) {
		int k = prec - 1 - e10; /* scale so the integer part has prec digits */
		if (k > 27 || k < -27)
			return 0;
		long double scaled = k >= 0 ? (long double)av * pow10l_exact(k)
					    : (long double)av / pow10l_exact(-k);
		long double lo = pow10l_exact(prec - 1), hi = lo * 10;
		if (scaled < lo || scaled >= hi)
			return 0; /* log10 was off by one at a power of ten: let the slow path do it */
		long double fl = floorl(scaled), frac = scaled - fl;
		/* One rounding of a 64-bit significand: |error| <= scaled * 2^-64. Allow 16x. */
		long double tie_margin = scaled * 0x1p-60L;
		if (fabsl(frac - 0.5L) <= tie_margin)
			return 0; /* too close to a tie between two candidates */
		long double m = frac > 0.5L ? fl + 1 : fl;
		if (m >= hi)
			return 0;
		/* Distance of m / 10^k from av, in units of half an ULP. */
		long double d = k >= 0 ? m / pow10l_exact(k) : m * pow10l_exact(-k);
		long double r = d >= (long double)av ? (d - (long double)av) / half_ulp_up
						     : ((long double)av - d) / half_ulp_down;
		/* d carries up to d * 2^-64 of error, i.e. up to 2^-9 of a half gap (2^-10
		 * away from powers of two); allow 4x. */
		const long double r_margin = 0x1p-7L;
		if (r > 1 - r_margin && r < 1 + r_margin)
			return 0;
		if (r < 1) {
			uint64_t mi = (uint64_t)m;
			int n_all;
			int nd = u64_digits(mi, digs, &n_all);
			*x = n_all - 1 - k;
			return nd;
		}
	}
	return 0; /* 17 digits always round-trip; only margins bring us here */
}

typedef unsigned __int128 u128;

static const uint64_t pow10_u64[18] = {
	1ull,
	10ull,
	100ull,
	1000ull,
	10000ull,
	100000ull,
	1000000ull,
	10000000ull,
	100000000ull,
	1000000000ull,
	10000000000ull,
	100000000000ull,
	1000000000000ull,
	10000000000000ull,
	100000000000000ull,
	1000000000000000ull,
	10000000000000000ull,
	100000000000000000ull,
};

/* m * 2^e * 10^k in fixed point: *xv in units of 2^-*sh (the product with the table's
 * 128-bit 10^k, its low 64 bits dropped: less than 2 units off), and *half, half a ULP
 * of the double scaled the same way (2^(e-1) * 10^k; M / 2^65 in those units, less
 * than 1 unit off). Returns 0, or -1 when k is outside the table or sh is outside
 * [8, 71] (71 keeps N << sh within 128 bits for the N < 2^57 the callers form; the first
 * call, which only estimates the exponent, may see an integer part up to 10^18). */
static int scale128(uint64_t m, int e, int k, u128 *xv, int *sh, u128 *half)
{
	if (k < TS_POW10_MIN || k > TS_POW10_MAX)
		return -1;
	uint64_t hi = ts_pow10_tab[k - TS_POW10_MIN].hi, lo = ts_pow10_tab[k - TS_POW10_MIN].lo;
	int s = -(e + ts_pow10_tab[k - TS_POW10_MIN].e + 64);
	if (s < 8 || s > 71)
		return -1;
	*xv = (u128)m * hi + (((u128)m * lo) >> 64);
	*sh = s;
	*half = (((u128)hi << 64) | lo) >> 65;
	return 0;
}

/* The shortest round-trip digits of a normal double with 128-bit integer arithmetic:
 * for 15, 16 and 17 significant digits, the correctly rounded candidate N (the nearest
 * decimal of that length) and whether it lies within half a ULP of av (so it reads back
 * to av); the first that does is the answer, as in the printf path. Both decisions are
 * made on values known to within a few units of 2^-58 of the scaled integer, so a
 * candidate closer than 8 units to a tie or to the half-ULP boundary returns 0 and the
 * exact path decides. Returns the digit count, or 0. */
static int digits128(double av, char digs[20], int *x)
{
	uint64_t bits;
	memcpy(&bits, &av, sizeof bits);
	int be = (int)(bits >> 52) & 0x7ff;
	if (be == 0 || be == 0x7ff)
		return 0; /* subnormal, zero, Inf, NaN */
	uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
	int e = be - 1075; /* av = m * 2^e */
	/* av is in [2^(be-1023), 2^(be-1022)), so its decimal exponent is est or est+1. */
	int est = (int)floor((double)(be - 1023) * 0.30102999566398119521);
	u128 xv, half;
	int sh;
	int k = 16 - est;
	if (scale128(m, e, k, &xv, &sh, &half))
		return 0;
	if ((uint64_t)(xv >> sh) >= pow10_u64[17])
		k--;
	int e10 = 16 - k;
	const u128 margin = 8;
	for (int p = 15; p <= 17; p++) {
		int kp = p - 1 - e10;
		if (scale128(m, e, kp, &xv, &sh, &half))
			return 0;
		uint64_t ip = (uint64_t)(xv >> sh);
		u128 frac = xv & (((u128)1 << sh) - 1), tie = (u128)1 << (sh - 1);
		if ((frac > tie ? frac - tie : tie - frac) <= margin)
			return 0;
		uint64_t n = ip + (frac > tie);
		if (n < pow10_u64[p - 1] || (p < 17 && n > pow10_u64[p]))
			return 0;
		u128 nx = (u128)n << sh;
		bool up = nx >= xv;
		u128 d = up ? nx - xv : xv - nx;
		/* Below a power of two the gap to the next double down is half as wide. */
		u128 h = !up && m == (1ull << 52) ? half >> 1 : half;
		if (d + margin < h) {
			int n_all;
			int nd = u64_digits(n, digs, &n_all);
			*x = n_all - 1 - kp;
			return nd;
		}
		if (d <= h + margin)
			return 0;
	}
	return 0;
}

static int shortest_digits(double av, char digs[20], int *x)
{
	int n_all;
	if (av < 9007199254740992.0 && av == floor(av)) {
		/* Integers below 2^53: the ULP is at most 1, so no shorter decimal than the
		 * integer itself (trailing zeros dropped) reads back to it. */
		int nd = u64_digits((uint64_t)av, digs, &n_all);
		*x = n_all - 1;
		return nd;
	}
	int fd = digits128(av, digs, x);
	if (fd > 0)
		return fd;
	if (av >= 1e-5 && av < 1e15) {
		/* Short decimals such as 12.5 or 0.1: the first k with av*10^k an integer m
		 * (below 10^15) whose m/10^k reads back to av. m/10^k is one correctly
		 * rounded division of exact operands, so the check is exact; a round-trip
		 * decimal of at most 15 digits is unique for a normal double, hence
		 * shortest. */
		double p = 10;
		for (int k = 1; k <= 20; k++, p *= 10) {
			double m = av * p;
			if (m >= 1e15)
				break;
			if (m == floor(m) && m / p == av) {
				int nd = u64_digits((uint64_t)m, digs, &n_all);
				*x = n_all - 1 - k;
				return nd;
			}
		}
	}
	fd = fast_digits(av, digs, x);
	if (fd > 0)
		return fd;
	char buf[40];
	/* Subnormals have fewer significant bits, so their shortest form may be shorter
	 * than 15 digits without the 15-digit rounding showing it: search from 1. */
	int first = av < 2.2250738585072014e-308 ? 1 : 15;
	for (int prec = first; prec <= 17; prec++) {
		int w = snprintf(buf, sizeof buf, "%.*e", prec - 1, av);
		if (w <= 0 || (size_t)w >= sizeof buf)
			break;
		/* Collect digits up to 'e' (skipping the locale's decimal point). */
		int nd = 0, p = 0;
		for (; buf[p] && buf[p] != 'e'; p++)
			if (is_digit(buf[p]))
				digs[nd++] = buf[p];
		int ex = atoi(buf + p + 1);
		while (nd > 1 && digs[nd - 1] == '0')
			nd--;
		/* Locale-free round-trip check on "digits e exp". */
		char chk[48];
		memcpy(chk, digs, (size_t)nd);
		snprintf(chk + nd, sizeof chk - (size_t)nd, "e%d", ex - (nd - 1));
		if (prec == 17 || strtod(chk, NULL) == av) {
			*x = ex;
			return nd;
		}
	}
	/* Not reached for finite input: 17 digits always round-trip. */
	digs[0] = '0';
	*x = 0;
	return 1;
}

size_t ts_fmt_double(char *buf, double v)
{
	if (isnan(v)) {
		memcpy(buf, "NaN", 4);
		return 3;
	}
	if (isinf(v)) {
		memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
		return 4;
	}
	size_t n = 0;
	if (signbit(v)) {
		buf[n++] = '-';
		v = -v;
	}
	if (v == 0) {
		buf[n++] = '0';
		buf[n] = 0;
		return n;
	}
	char d[20] = { 0 };
	int x;
	int nd = shortest_digits(v, d, &x);
	if (x < -4 || x >= 6) {
		buf[n++] = d[0];
		if (nd > 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + 1, (size_t)nd - 1);
			n += (size_t)nd - 1;
		}
		buf[n++] = 'e';
		buf[n++] = x < 0 ? '-' : '+';
		int ax = x < 0 ? -x : x;
		if (ax >= 100)
			buf[n++] = (char)('0' + ax / 100);
		buf[n++] = (char)('0' + ax / 10 % 10);
		buf[n++] = (char)('0' + ax % 10);
	} else if (x < 0) {
		buf[n++] = '0';
		buf[n++] = '.';
		for (int k = -1; k > x; k--)
			buf[n++] = '0';
		memcpy(buf + n, d, (size_t)nd);
		n += (size_t)nd;
	} else {
		for (int k = 0; k <= x; k++)
			buf[n++] = k < nd ? d[k] : '0';
		if (nd > x + 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + x + 1, (size_t)(nd - x - 1));
			n += (size_t)(nd - x - 1);
		}
	}
	buf[n] = 0;
	return n;
}
