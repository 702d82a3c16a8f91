/*
 * functions.h - the PromQL function table: every function Prometheus 2.42 knows
 * (promql/parser/functions.go), with its argument types, variadic rule and result
 * type. The parser checks calls against it; the evaluator switches on `id`.
 *
 * Variadic rule (as in Prometheus): 0 = exactly n_args arguments; k > 0 = the last
 * argument is optional and may repeat, so n_args-1 ... n_args-1+k arguments; -1 =
 * at least n_args-1 arguments, the extra ones typed like the last. Example: round
 * (vector, scalar; variadic 1) takes 1 or 2; label_join (vector, string, string,
 * string; variadic -1) takes 3 or more; hour (vector; variadic 1) takes 0 or 1.
 *
 * The table is static and immutable; pointers into it stay valid forever.
 */
#ifndef TS_QUERY_FUNCTIONS_H
#define TS_QUERY_FUNCTIONS_H

#include <stddef.h>

/* The type of a PromQL value. NONE only for "no expression". */
enum ts_value_type {
	TS_VT_NONE = 0,
	TS_VT_SCALAR,
	TS_VT_VECTOR, /* instant vector */
	TS_VT_MATRIX, /* range vector */
	TS_VT_STRING,
};

/* Names as Prometheus' messages use them: "scalar", "instant vector", "range
 * vector", "string", "none". Static string. */
const char *ts_value_type_str(enum ts_value_type t);

enum ts_func_id {
	TS_FN_ABS,
	TS_FN_ABSENT,
	TS_FN_ABSENT_OVER_TIME,
	TS_FN_ACOS,
	TS_FN_ACOSH,
	TS_FN_ASIN,
	TS_FN_ASINH,
	TS_FN_ATAN,
	TS_FN_ATANH,
	TS_FN_AVG_OVER_TIME,
	TS_FN_CEIL,
	TS_FN_CHANGES,
	TS_FN_CLAMP,
	TS_FN_CLAMP_MAX,
	TS_FN_CLAMP_MIN,
	TS_FN_COS,
	TS_FN_COSH,
	TS_FN_COUNT_OVER_TIME,
	TS_FN_DAY_OF_MONTH,
	TS_FN_DAY_OF_WEEK,
	TS_FN_DAY_OF_YEAR,
	TS_FN_DAYS_IN_MONTH,
	TS_FN_DEG,
	TS_FN_DELTA,
	TS_FN_DERIV,
	TS_FN_EXP,
	TS_FN_FLOOR,
	TS_FN_HISTOGRAM_COUNT,
	TS_FN_HISTOGRAM_FRACTION,
	TS_FN_HISTOGRAM_QUANTILE,
	TS_FN_HISTOGRAM_SUM,
	TS_FN_HOLT_WINTERS,
	TS_FN_HOUR,
	TS_FN_IDELTA,
	TS_FN_INCREASE,
	TS_FN_IRATE,
	TS_FN_LABEL_JOIN,
	TS_FN_LABEL_REPLACE,
	TS_FN_LAST_OVER_TIME,
	TS_FN_LN,
	TS_FN_LOG10,
	TS_FN_LOG2,
	TS_FN_MAX_OVER_TIME,
	TS_FN_MIN_OVER_TIME,
	TS_FN_MINUTE,
	TS_FN_MONTH,
	TS_FN_PI,
	TS_FN_PREDICT_LINEAR,
	TS_FN_PRESENT_OVER_TIME,
	TS_FN_QUANTILE_OVER_TIME,
	TS_FN_RAD,
	TS_FN_RATE,
	TS_FN_RESETS,
	TS_FN_ROUND,
	TS_FN_SCALAR,
	TS_FN_SGN,
	TS_FN_SIN,
	TS_FN_SINH,
	TS_FN_SORT,
	TS_FN_SORT_DESC,
	TS_FN_SQRT,
	TS_FN_STDDEV_OVER_TIME,
	TS_FN_STDVAR_OVER_TIME,
	TS_FN_SUM_OVER_TIME,
	TS_FN_TAN,
	TS_FN_TANH,
	TS_FN_TIME,
	TS_FN_TIMESTAMP,
	TS_FN_VECTOR,
	TS_FN_YEAR,
	TS_FN__COUNT
};

#define TS_FUNC_MAX_ARGS 5

struct ts_function {
	enum ts_func_id id;
	const char *name;
	enum ts_value_type arg_types[TS_FUNC_MAX_ARGS];
	int n_args;   /* entries used in arg_types */
	int variadic; /* see the comment at the top */
	enum ts_value_type return_type;
};

/* The function called `name` (name[0..len), case-sensitive as in Prometheus), or
 * NULL. The result points into the static table. */
const struct ts_function *ts_function_lookup(const char *name, size_t len);

/* The function with this id (id < TS_FN__COUNT). */
const struct ts_function *ts_function_get(enum ts_func_id id);

#endif
