/*
 * functions.c - the static PromQL function table (see functions.h), sorted by name
 * and indexed by enum ts_func_id: table[id].id == id is checked by the unit tests.
 * Histogram functions (histogram_count/sum/fraction) are listed because Prometheus
 * 2.42 parses them; evaluating them needs native histograms, which we do not store.
 */
#include "query/functions.h"

#include <string.h>

static const struct ts_function table[TS_FN__COUNT] = {
	{ TS_FN_ABS, "abs", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ABSENT, "absent", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ABSENT_OVER_TIME, "absent_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ACOS, "acos", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ACOSH, "acosh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ASIN, "asin", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ASINH, "asinh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ATAN, "atan", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ATANH, "atanh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_AVG_OVER_TIME, "avg_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_CEIL, "ceil", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_CHANGES, "changes", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_CLAMP, "clamp", { TS_VT_VECTOR, TS_VT_SCALAR, TS_VT_SCALAR }, 3, 0, TS_VT_VECTOR },
	{ TS_FN_CLAMP_MAX, "clamp_max", { TS_VT_VECTOR, TS_VT_SCALAR }, 2, 0, TS_VT_VECTOR },
	{ TS_FN_CLAMP_MIN, "clamp_min", { TS_VT_VECTOR, TS_VT_SCALAR }, 2, 0, TS_VT_VECTOR },
	{ TS_FN_COS, "cos", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_COSH, "cosh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_COUNT_OVER_TIME, "count_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_DAY_OF_MONTH, "day_of_month", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_DAY_OF_WEEK, "day_of_week", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_DAY_OF_YEAR, "day_of_year", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_DAYS_IN_MONTH, "days_in_month", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_DEG, "deg", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_DELTA, "delta", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_DERIV, "deriv", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_EXP, "exp", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_FLOOR, "floor", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_HISTOGRAM_COUNT, "histogram_count", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_HISTOGRAM_FRACTION,
	  "histogram_fraction",
	  { TS_VT_SCALAR, TS_VT_SCALAR, TS_VT_VECTOR },
	  3,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_HISTOGRAM_QUANTILE,
	  "histogram_quantile",
	  { TS_VT_SCALAR, TS_VT_VECTOR },
	  2,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_HISTOGRAM_SUM, "histogram_sum", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_HOLT_WINTERS,
	  "holt_winters",
	  { TS_VT_MATRIX, TS_VT_SCALAR, TS_VT_SCALAR },
	  3,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_HOUR, "hour", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_IDELTA, "idelta", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_INCREASE, "increase", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_IRATE, "irate", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_LABEL_JOIN,
	  "label_join",
	  { TS_VT_VECTOR, TS_VT_STRING, TS_VT_STRING, TS_VT_STRING },
	  4,
	  -1,
	  TS_VT_VECTOR },
	{ TS_FN_LABEL_REPLACE,
	  "label_replace",
	  { TS_VT_VECTOR, TS_VT_STRING, TS_VT_STRING, TS_VT_STRING, TS_VT_STRING },
	  5,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_LAST_OVER_TIME, "last_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_LN, "ln", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_LOG10, "log10", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_LOG2, "log2", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_MAX_OVER_TIME, "max_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_MIN_OVER_TIME, "min_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_MINUTE, "minute", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_MONTH, "month", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
	{ TS_FN_PI, "pi", { 0 }, 0, 0, TS_VT_SCALAR },
	{ TS_FN_PREDICT_LINEAR,
	  "predict_linear",
	  { TS_VT_MATRIX, TS_VT_SCALAR },
	  2,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_PRESENT_OVER_TIME, "present_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_QUANTILE_OVER_TIME,
	  "quantile_over_time",
	  { TS_VT_SCALAR, TS_VT_MATRIX },
	  2,
	  0,
	  TS_VT_VECTOR },
	{ TS_FN_RAD, "rad", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_RATE, "rate", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_RESETS, "resets", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_ROUND, "round", { TS_VT_VECTOR, TS_VT_SCALAR }, 2, 1, TS_VT_VECTOR },
	{ TS_FN_SCALAR, "scalar", { TS_VT_VECTOR }, 1, 0, TS_VT_SCALAR },
	{ TS_FN_SGN, "sgn", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SIN, "sin", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SINH, "sinh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SORT, "sort", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SORT_DESC, "sort_desc", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SQRT, "sqrt", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_STDDEV_OVER_TIME, "stddev_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_STDVAR_OVER_TIME, "stdvar_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_SUM_OVER_TIME, "sum_over_time", { TS_VT_MATRIX }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_TAN, "tan", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_TANH, "tanh", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_TIME, "time", { 0 }, 0, 0, TS_VT_SCALAR },
	{ TS_FN_TIMESTAMP, "timestamp", { TS_VT_VECTOR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_VECTOR, "vector", { TS_VT_SCALAR }, 1, 0, TS_VT_VECTOR },
	{ TS_FN_YEAR, "year", { TS_VT_VECTOR }, 1, 1, TS_VT_VECTOR },
};

const char *ts_value_type_str(enum ts_value_type t)
{
	switch (t) {
	case TS_VT_SCALAR: return "scalar";
	case TS_VT_VECTOR: return "instant vector";
	case TS_VT_MATRIX: return "range vector";
	case TS_VT_STRING: return "string";
	default: return "none";
	}
}

const struct ts_function *ts_function_lookup(const char *name, size_t len)
{
	/* Binary search: the table is sorted by name (byte order). */
	size_t lo = 0, hi = TS_FN__COUNT;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *n = table[mid].name;
		size_t nlen = strlen(n);
		int c = memcmp(n, name, nlen < len ? nlen : len);
		if (c == 0)
			c = nlen < len ? -1 : (nlen > len ? 1 : 0);
		if (c == 0)
			return &table[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct ts_function *ts_function_get(enum ts_func_id id)
{
	return (unsigned)id < TS_FN__COUNT ? &table[id] : NULL;
}
