/*
 * gofmt.c - Go's float64 formatting (see gofmt.h), in one place for the query printer
 * and count_values.
 *
 * The shortest digits come from C's %.*e at increasing precision until strtod reads
 * the value back (17 significant digits always do); then both verbs place the decimal
 * point the same way, except that %v switches to d.ddde±XX outside [1e-4, 1e6).
 */
#include "query/gofmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* A bounded writer: counts every byte, stores what fits before the NUL. */
struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, char ch)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len] = ch;
	o->len++;
}

static void puts_n(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(o, s[i]);
}

/* The shortest significant digits of finite v != 0 (no trailing zeros, at least one)
 * and the decimal exponent of the first: v = 0.d1d2... * 10^(exp10 + 1). */
static size_t shortest(double v, char digits[24], int *exp10)
{
	char e[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof e, "%.*e", prec - 1, fabs(v));
		if (strtod(e, NULL) == fabs(v))
			break;
	}
	/* e is d[.ddd]e[+-]xx */
	size_t nd = 0;
	const char *p = e;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	*exp10 = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	return nd;
}

size_t ts__gofmt_float(double v, enum ts__gofmt_verb verb, char *buf, size_t cap)
{
	if (isnan(v))
		return (size_t)snprintf(buf, cap, "NaN");
	if (isinf(v))
		return (size_t)snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
	if (v == 0)
		return (size_t)snprintf(buf, cap, signbit(v) ? "-0" : "0");
	struct out o = { buf, cap, 0 };
	char digits[24];
	int exp10;
	size_t nd = shortest(v, digits, &exp10);
	if (v < 0)
		put(&o, '-');
	if (verb == TS__GOFMT_V && (exp10 < -4 || exp10 >= 6)) {
		put(&o, digits[0]);
		if (nd > 1) {
			put(&o, '.');
			puts_n(&o, digits + 1, nd - 1);
		}
		char e[8];
		int n = snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
		puts_n(&o, e, (size_t)n);
	} else if (exp10 < 0) {
		put(&o, '0');
		put(&o, '.');
		for (int i = -1; i > exp10; i--)
			put(&o, '0');
		puts_n(&o, digits, nd);
	} else {
		size_t ip = (size_t)exp10 + 1; /* digits before the point */
		for (size_t i = 0; i < ip; i++)
			put(&o, i < nd ? digits[i] : '0');
		if (nd > ip) {
			put(&o, '.');
			puts_n(&o, digits + ip, nd - ip);
		}
	}
	buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len;
}
