/*
 * params.h - application/x-www-form-urlencoded parameters, from a URL query string and
 * (for POST) a form body, as the Prometheus HTTP API and InfluxDB's /write take them.
 * Names and values are percent- and '+'-decoded into one owned store; lookups return
 * NUL-terminated pointers into it, valid until the next parse or ts_params_fini().
 */
#ifndef TS_WIRE_PARAMS_H
#define TS_WIRE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

struct ts_params {
	struct {
		size_t name, value, value_len;
	} * v; /* offsets into store */
	size_t n, cap;
	char *store;
	size_t store_len, store_cap;
};

void ts_params_init(struct ts_params *p);
void ts_params_fini(struct ts_params *p);
/* Adds every name=value pair of s[0..len) (a query string or form body; may be called
 * for both). Returns 0, -ENOMEM, or TS_EINVALID for a malformed percent escape. */
int ts_params_parse(struct ts_params *p, const char *s, size_t len);
/* The first value of `name`, or NULL. *len (may be NULL) gets its length. */
const char *ts_params_get(const struct ts_params *p, const char *name, size_t *len);
/* Calls fn for every value of `name` in order (repeated match[]). Stops on non-zero. */
int ts_params_each(const struct ts_params *p, const char *name,
		   int (*fn)(void *arg, const char *value, size_t len), void *arg);

#endif

/* Parses a Prometheus duration ("1h30m", "15d", "500ms", "2w", "1y"; units y w d h m s ms)
 * or a plain non-negative number of seconds ("30", "1.5") into milliseconds.
 * Returns 0 or TS_EINVALID. */
int ts_parse_duration_ms(const char *s, int64_t *ms);
/* Parses a Prometheus API time: unix seconds with optional fraction ("1700000000.123")
 * or RFC 3339 ("2026-11-22T10:00:00Z", "...+01:00", fractional seconds allowed).
 * Returns 0 or TS_EINVALID. */
int ts_parse_time_ms(const char *s, int64_t *ms);
