/*
 * params.h - application/x-www-form-urlencoded parameters, from a URL query string and
 * (for POST) a form body, as the Prometheus HTTP API and InfluxDB's /write take them;
 * percent decoding; and the Prometheus API's durations and times.
 *
 * Names and values are percent- and '+'-decoded into one store the struct owns;
 * lookups return NUL-terminated pointers into it, valid until the next
 * ts_params_parse() or ts_params_fini() on the same struct (the store may move while
 * it grows). Repeated names are kept in order (match[]). A name without '=' has the
 * value "". Decoded bytes are not checked for UTF-8: callers that need text check.
 *
 * Threading: a struct ts_params is used by one thread at a time; nothing is global.
 */
#ifndef TS_WIRE_PARAMS_H
#define TS_WIRE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

/* Private but for reading: fields are offsets into `store`. */
struct ts_params {
	struct {
		size_t name, value, value_len;
	} * v; /* offsets into store */
	size_t n, cap;
	char *store;
	size_t store_len, store_cap;
};

/* Zeroes p (no allocation). Cannot fail. */
void ts_params_init(struct ts_params *p);
/* Frees what p owns and zeroes it. Safe on a zeroed or finished struct. */
void ts_params_fini(struct ts_params *p);

/* Adds every name=value pair of s[0..len) (borrowed for the call; a query string or a
 * form body, not NUL-terminated; may be called once for each). Empty pairs ("a&&b")
 * are skipped. Returns 0; TS_EINVALID for a malformed percent escape ("%" not followed
 * by two hex digits: pairs before it are kept); -ENOMEM (p keeps what it had). */
int ts_params_parse(struct ts_params *p, const char *s, size_t len);

/* The first value of `name` (NUL-terminated; compared bytewise), or NULL. *len (may be
 * NULL) gets its length, which may be less than strlen() when the value holds %00. */
const char *ts_params_get(const struct ts_params *p, const char *name, size_t *len);

/* Calls fn(arg, value, len) for every value of `name`, in order (repeated match[]).
 * Stops at and returns the first non-zero result of fn; 0 when all were visited. */
int ts_params_each(const struct ts_params *p, const char *name,
		   int (*fn)(void *arg, const char *value, size_t len), void *arg);

/* Percent-decodes s[0..len) into dst[0..cap), NUL-terminated; with plus_space, '+'
 * becomes ' ' (form encoding; a URL path keeps its '+'). *out_len gets the decoded
 * length, which is never more than len. Returns 0; TS_EINVALID for a malformed
 * escape; TS_ELIMIT when dst cannot hold the result and its NUL. dst's contents are
 * unspecified on error. */
int ts_pct_decode(char *dst, size_t cap, const char *s, size_t len, int plus_space,
		  size_t *out_len);

/* Parses a Prometheus duration ("1h30m", "15d", "500ms", "2w", "1y"; units y w d h m s
 * ms, each at most once, largest first) or a plain non-negative number of seconds
 * ("30", "1.5", rounded to the millisecond) into *ms. s is NUL-terminated. Returns 0,
 * or TS_EINVALID (syntax, a negative number, or a value beyond int64 milliseconds);
 * *ms is untouched then. */
int ts_parse_duration_ms(const char *s, int64_t *ms);

/* Parses a Prometheus API time into milliseconds since the epoch: unix seconds with an
 * optional fraction ("1700000000.123", rounded to the millisecond) or RFC 3339
 * ("2026-11-22T10:00:00Z", "...+01:00", fractional seconds truncated to the
 * millisecond). s is NUL-terminated. Returns 0, or TS_EINVALID (syntax, NaN or
 * infinity, or beyond int64 milliseconds); *ms is untouched then. */
int ts_parse_time_ms(const char *s, int64_t *ms);

#endif
