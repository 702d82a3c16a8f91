/*
 * params.c - form-urlencoded parameter parsing into one growing store, percent
 * decoding, and Prometheus' durations and times.
 *
 * Invariant: names and values are decoded into `store` (decoding never lengthens, so
 * a pair needs at most its raw length plus two NULs) and recorded as offsets, because
 * the store moves while it grows; lookups turn offsets into pointers.
 */
#include "wire/params.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "wire/text.h"

void ts_params_init(struct ts_params *p)
{
	memset(p, 0, sizeof *p);
}

void ts_params_fini(struct ts_params *p)
{
	ts_free(p->v);
	ts_free(p->store);
	memset(p, 0, sizeof *p);
}

int ts_pct_decode(char *dst, size_t cap, const char *s, size_t len, int plus_space, size_t *out_len)
{
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+' && plus_space) {
			c = ' ';
		} else if (c == '%') {
			int h, l;
			if (len - i < 3 || (h = ts_text_hexval(s[i + 1])) < 0 ||
			    (l = ts_text_hexval(s[i + 2])) < 0)
				return TS_EINVALID;
			c = (char)(h << 4 | l);
			i += 2;
		}
		if (k + 1 >= cap)
			return TS_ELIMIT;
		dst[k++] = c;
	}
	if (k >= cap)
		return TS_ELIMIT;
	dst[k] = 0;
	*out_len = k;
	return 0;
}

/* Decodes s[0..len) onto the store, NUL-terminated; *off and *out_len describe it. */
static int decode(struct ts_params *p, const char *s, size_t len, size_t *off, size_t *out_len)
{
	/* Decoding never lengthens: len + 1 bytes always suffice. */
	size_t need = p->store_len + len + 1;
	if (ts_grow((void **)&p->store, &p->store_cap, need < 256 ? 256 : need, 1) != 0)
		return -ENOMEM;
	int rc = ts_pct_decode(p->store + p->store_len, p->store_cap - p->store_len, s, len, 1,
			       out_len);
	if (rc != 0)
		return rc;
	*off = p->store_len;
	p->store_len += *out_len + 1;
	return 0;
}

int ts_params_parse(struct ts_params *p, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && s[end] != '&')
			end++;
		if (end > i) {
			const char *eq = memchr(s + i, '=', end - i);
			size_t nl = eq ? (size_t)(eq - (s + i)) : end - i;
			if (ts_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v) != 0)
				return -ENOMEM;
			size_t no, nlen, vo, vlen;
			int rc = decode(p, s + i, nl, &no, &nlen);
			if (rc == 0)
				rc = decode(p, eq ? eq + 1 : "", eq ? end - i - nl - 1 : 0, &vo,
					    &vlen);
			if (rc)
				return rc;
			p->v[p->n].name = no;
			p->v[p->n].value = vo;
			p->v[p->n].value_len = vlen;
			p->n++;
		}
		i = end + 1;
	}
	return 0;
}

const char *ts_params_get(const struct ts_params *p, const char *name, size_t *len)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->store + p->v[i].name, name) == 0) {
			if (len)
				*len = p->v[i].value_len;
			return p->store + p->v[i].value;
		}
	return NULL;
}

int ts_params_each(const struct ts_params *p, const char *name,
		   int (*fn)(void *arg, const char *value, size_t len), void *arg)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->store + p->v[i].name, name) == 0) {
			int rc = fn(arg, p->store + p->v[i].value, p->v[i].value_len);
			if (rc)
				return rc;
		}
	return 0;
}

int ts_parse_duration_ms(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return TS_EINVALID;
	/* A plain number is seconds, as the Prometheus API takes for step and timeout. */
	char *end;
	double secs = strtod(s, &end);
	if (*end == 0 && end != s) {
		if (!(secs >= 0) || secs > 9.2e15)
			return TS_EINVALID;
		*ms = (int64_t)(secs * 1000.0 + 0.5);
		return 0;
	}
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = { { "ms", 1 },	     { "s", 1000 },	{ "m", 60000 },
		      { "h", 3600000 },	     { "d", 86400000 }, { "w", 604800000 },
		      { "y", 31536000000LL } };
	int64_t total = 0;
	int last = -1;
	const char *p = s;
	while (*p) {
		if (*p < '0' || *p > '9')
			return TS_EINVALID;
		int64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			if (n > (INT64_MAX - 9) / 10)
				return TS_EINVALID;
			n = n * 10 + (*p++ - '0');
		}
		int u = -1;
		for (int i = 0; i < 7; i++) {
			size_t l = strlen(units[i].u);
			if (strncmp(p, units[i].u, l) == 0 && (l == 2 || p[1] != 's')) {
				u = i;
				p += l;
				break;
			}
		}
		/* Units must be given largest first, each once (Prometheus' rule). */
		int rank = u < 0 ? -1 : (u == 0 ? 0 : u);
		if (u < 0 || (last >= 0 && rank >= last))
			return TS_EINVALID;
		last = rank;
		if (n > INT64_MAX / units[u].ms || total > INT64_MAX - n * units[u].ms)
			return TS_EINVALID;
		total += n * units[u].ms;
	}
	*ms = total;
	return 0;
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static int64_t days_from_civil(int y, int m, int d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int ts_parse_time_ms(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return TS_EINVALID;
	char *end;
	double secs = strtod(s, &end);
	if (*end == 0 && end != s && strchr(s, 'T') == NULL) {
		if (secs != secs || secs > 9.2e15 || secs < -9.2e15)
			return TS_EINVALID;
		/* Round to the millisecond the way Prometheus does (float seconds to ms). */
		double v = secs * 1000.0;
		*ms = (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
		return 0;
	}
	int y, mo, d, h, mi, se;
	size_t len = strlen(s);
	if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
		return TS_EINVALID;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return TS_EINVALID;
	const char *p = s + 19;
	int64_t frac_ms = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		int64_t scale = 100;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3) {
				frac_ms += (*p - '0') * scale;
				scale /= 10;
			}
			nd++;
			p++;
		}
		if (nd == 0)
			return TS_EINVALID;
	}
	int64_t off_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return TS_EINVALID;
		off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return TS_EINVALID;
	}
	if (*p)
		return TS_EINVALID;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
	*ms = t * 1000 + frac_ms;
	return 0;
}
