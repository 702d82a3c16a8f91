/*
 * promql_literal.c - the values of PromQL's literals, as Prometheus 2.42 reads them:
 * numbers (strconv.ParseInt with base prefixes, then ParseFloat: "010" is 8, "0x1f"
 * 31, "1e3" 1000, inf and nan in any case), durations (model.ParseDuration: units y w
 * d h m s ms, each at most once and in that order, the total within time.Duration,
 * and > 0), string literals (Go's escapes in "..." and '...', raw `...`) and @
 * timestamps (seconds to milliseconds, exact for plain decimals).
 *
 * The lexer has already checked each token's shape; here the values are computed and
 * range errors reported with Prometheus' messages.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/promql_int.h"
#include "storage/mem.h"

/* Prometheus' number(): strconv.ParseInt(s, 0, 64) (so "010" is octal 8 and
 * "0x1f" hex), else strconv.ParseFloat(s, 64). 0 or -1 with an error recorded. */
int ts__promql_number(struct parser *p, const char *s, size_t n, size_t pos, double *out)
{
	char *buf = ts_strndup(s, n);
	const char *why = "invalid syntax";
	int rc = -1;
	if (!buf) {
		ts__promql_nomem(p);
		return -1;
	}
	if (strcasecmp(buf, "inf") == 0) {
		*out = INFINITY;
		rc = 0;
	} else if (strcasecmp(buf, "nan") == 0) {
		*out = NAN;
		rc = 0;
	} else if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		/* Hex parses only as an integer: Go's ParseFloat wants a 'p' exponent. */
		uint64_t v = 0;
		size_t i;
		for (i = 2; i < n; i++) {
			int c = buf[i], d;
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				break;
			if (v > (uint64_t)INT64_MAX >> 4)
				break;
			v = v * 16 + (uint64_t)d;
			if (v > (uint64_t)INT64_MAX)
				break;
		}
		if (i == n) {
			*out = (double)v;
			rc = 0;
		}
	} else {
		bool octal = n > 1 && buf[0] == '0';
		uint64_t v = 0;
		for (size_t i = 1; octal && i < n; i++) {
			if (buf[i] < '0' || buf[i] > '7' || v > (uint64_t)INT64_MAX >> 3)
				octal = false;
			else
				v = v * 8 + (uint64_t)(buf[i] - '0');
		}
		if (octal && v <= (uint64_t)INT64_MAX) {
			*out = (double)v;
			rc = 0;
		} else {
			char *end;
			double d = strtod(buf, &end);
			if (end == buf + n && n > 0) {
				if (isinf(d)) {
					why = "value out of range";
				} else {
					*out = d;
					rc = 0;
				}
			}
		}
	}
	if (rc)
		ts__promql_fail(p, pos,
				"error parsing number: strconv.ParseFloat: parsing \"%s\": %s", buf,
				why);
	ts_free(buf);
	return rc;
}

/* Prometheus' parseDuration (model.ParseDuration, then "> 0"): units y w d h m s
 * ms, each at most once and in that order; the total must fit time.Duration. */
int ts__promql_duration(struct parser *p, const struct ts_promql_token *t, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "y", 365LL * 86400000 },
		{ "w", 7LL * 86400000 },
		{ "d", 86400000 },
		{ "h", 3600000 },
		{ "m", 60000 },
		{ "s", 1000 },
		{ "ms", 1 },
	};
	const char *s = p->q + t->pos;
	size_t n = t->len, i = 0, next_unit = 0;
	int64_t total_ns = 0;
	bool overflow = false;
	char q[200];
	while (i < n) {
		uint64_t v = 0;
		size_t d0 = i;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (v < (uint64_t)INT64_MAX / 10)
				v = v * 10 + (uint64_t)(s[i] - '0');
			else
				v = (uint64_t)INT64_MAX; /* saturate: reported as out of range */
			i++;
		}
		size_t u;
		for (u = next_unit; u < 7 && i > d0; u++) {
			size_t ul = strlen(units[u].unit);
			/* "m" must not take the "m" of "ms" */
			if (i + ul <= n && memcmp(s + i, units[u].unit, ul) == 0 &&
			    !(ul == 1 && s[i] == 'm' && i + 1 < n && s[i + 1] == 's'))
				break;
		}
		if (i == d0 || u == 7) {
			ts__promql_quote(q, sizeof(q), s, n, 0);
			ts__promql_fail(p, t->pos, "not a valid duration string: %s", q);
			return -1;
		}
		i += strlen(units[u].unit);
		next_unit = u + 1;
		int64_t mult_ns = units[u].ms * 1000000;
		if (v > (uint64_t)(INT64_MAX / mult_ns)) {
			overflow = true;
		} else {
			int64_t add = (int64_t)v * mult_ns;
			if (total_ns > INT64_MAX - add)
				overflow = true;
			else
				total_ns += add;
		}
	}
	if (overflow) {
		ts__promql_fail(p, t->pos, "duration out of range");
		return -1;
	}
	if (total_ns == 0) {
		ts__promql_fail(p, t->pos, "duration must be greater than 0");
		return -1;
	}
	*out_ms = total_ns / 1000000;
	return 0;
}

/* Unquotes a STRING token the lexer has validated (Go escape rules for "..." and
 * '...', raw for `...`). Owned result with *len_out bytes plus a NUL; NULL on OOM. */
char *ts__promql_unquote(struct parser *p, const struct ts_promql_token *t, size_t *len_out)
{
	const char *s = p->q + t->pos + 1;
	size_t n = t->len - 2, o = 0;
	char quote = p->q[t->pos];
	char *out = ts_malloc(n + 1);
	if (!out) {
		ts__promql_nomem(p);
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		if (quote == '`' || s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		char c = s[i + 1];
		i += 2;
		switch (c) {
		case 'a': out[o++] = '\a'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'v': out[o++] = '\v'; break;
		case 'x':
		case 'u':
		case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			unsigned v = 0;
			for (int k = 0; k < nd; k++, i++) {
				char h = s[i];
				v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
			}
			if (c == 'x') {
				out[o++] = (char)v;
			} else if (v < 0x80) {
				out[o++] = (char)v;
			} else if (v < 0x800) {
				out[o++] = (char)(0xC0 | (v >> 6));
				out[o++] = (char)(0x80 | (v & 0x3F));
			} else if (v < 0x10000) {
				out[o++] = (char)(0xE0 | (v >> 12));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
				out[o++] = (char)(0x80 | (v & 0x3F));
			} else {
				out[o++] = (char)(0xF0 | (v >> 18));
				out[o++] = (char)(0x80 | ((v >> 12) & 0x3F));
				out[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
				out[o++] = (char)(0x80 | (v & 0x3F));
			}
			break;
		}
		default:
			if (c >= '0' && c <= '7') {
				unsigned v = (unsigned)(c - '0');
				for (int k = 0; k < 2; k++, i++)
					v = v * 8 + (unsigned)(s[i] - '0');
				out[o++] = (char)v;
			} else {
				out[o++] = c; /* \\ \" \' */
			}
		}
	}
	out[o] = '\0';
	*len_out = o;
	return out;
}

/* Milliseconds of an @ number literal. Prometheus computes round(seconds * 1000) in
 * float64; a plain decimal with at most 3 decimals is converted exactly instead,
 * which gives the same result wherever float64 is exact and lets the printer's
 * "S.mmm" form round-trip for every int64. */
int64_t ts__promql_at_millis(const char *s, size_t n, bool neg, double ts)
{
	size_t i = 0, dot = n;
	uint64_t v = 0;
	bool exact = n > 0 && !(n > 1 && s[0] == '0' && s[1] != '.');
	for (i = 0; exact && i < n; i++) {
		if (s[i] == '.' && dot == n) {
			dot = i;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				exact = false;
			else
				v = v * 10 + (uint64_t)(s[i] - '0');
		} else {
			exact = false;
		}
	}
	size_t frac = dot == n ? 0 : n - dot - 1;
	if (exact && frac <= 3 && dot > 0) {
		for (; frac < 3 && exact; frac++) {
			if (v > UINT64_MAX / 10)
				exact = false;
			v *= 10;
		}
		if (exact && v <= (uint64_t)INT64_MAX)
			return neg ? -(int64_t)v : (int64_t)v;
		if (exact && neg && v == (uint64_t)INT64_MAX + 1)
			return INT64_MIN;
	}
	double ms = round(ts * 1000);
	/* Go's int64() of an out-of-range float yields MinInt64 on amd64. */
	if (!(ms >= -9223372036854775808.0 && ms < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)ms;
}
