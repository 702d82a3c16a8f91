/*
 * gofmt.h - Go's formatting of float64 as Prometheus prints numbers: the shortest
 * decimal digits that read back to the same value, written as fmt's %v (the
 * canonical query printer: 123456, 1e+06, 1.5e-05) or as strconv.FormatFloat(v, 'f',
 * -1, 64) (count_values' label values: 1000000, 0.000015).
 *
 * Private to query/ (ast.c's printer and eval_agg.c). Pure functions; thread-safe.
 */
#ifndef TS_QUERY_GOFMT_H
#define TS_QUERY_GOFMT_H

#include <stddef.h>

enum ts__gofmt_verb {
	TS__GOFMT_V, /* fmt %v: exponent form when the exponent is < -4 or >= 6 */
	TS__GOFMT_F, /* strconv 'f' with precision -1: never an exponent */
};

/* Writes v into buf (at most cap bytes with the NUL; cap > 0) and returns the length
 * it wanted, snprintf style. NaN, +Inf and -Inf as Go spells them; -0 as "-0". A
 * buffer of 32 bytes holds any %v form; the 'f' form of 1e308 needs 310. */
size_t ts__gofmt_float(double v, enum ts__gofmt_verb verb, char *buf, size_t cap);

#endif
