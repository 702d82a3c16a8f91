/*
 * promql_regex.c - validation of the regular expressions of =~ and !~ matchers, as
 * Prometheus 2.42 validates them: the value is compiled anchored ("^(?:v)$") and must
 * also stand on its own (so "a)|(b" is refused), and we learn whether it matches the
 * empty string (a selector needs one matcher that does not).
 *
 * Compiled with PCRE2 through a general context that allocates with ts_malloc, so
 * allocation failures are seen; PCRE2 accepts syntax Go's RE2 refuses (\Q without \E,
 * escapes like \e, possessive and atomic groups, (?| ...): re2_unsupported() refuses
 * those with Go's messages first. The compiled code is thrown away: the engine
 * compiles matchers itself when it selects.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "query/promql_int.h"
#include "storage/mem.h"

struct ts__promql_re {
	pcre2_general_context *gctx;
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
	bool oom; /* an allocation failed inside PCRE2 */
};

static void *re_malloc(size_t size, void *data)
{
	void *m = ts_malloc(size);
	if (!m)
		((struct ts__promql_re *)data)->oom = true;
	return m;
}

static void re_free(void *ptr, void *data)
{
	(void)data;
	ts_free(ptr);
}

/* Does the '}' at v[i] end a {n}, {n,} or {n,m} repetition? */
static bool closes_repeat(const char *v, size_t i)
{
	size_t k = i;
	while (k > 0 && ((v[k - 1] >= '0' && v[k - 1] <= '9') || v[k - 1] == ','))
		k--;
	return k > 0 && v[k - 1] == '{' && k < i && v[k] >= '0' && v[k] <= '9';
}

/* Syntax PCRE2 accepts but Go's RE2 (and so Prometheus) refuses. Returns the Go
 * error text or NULL; `bad` receives the offending snippet. */
static const char *re2_unsupported(const char *v, size_t n, char *bad, size_t cap)
{
	static const char ok_escapes[] = "aftnrvxpPdDsSwWbBAz0";
	bool in_class = false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '\\' && i + 1 < n) {
			char d = v[i + 1];
			if (d == 'Q') { /* literal text up to \E */
				const char *e = NULL;
				for (size_t k = i + 2; k + 1 < n; k++)
					if (v[k] == '\\' && v[k + 1] == 'E') {
						e = v + k;
						break;
					}
				if (!e) {
					/* In Prometheus' "^(?:v)$" it quotes the ")$" too. */
					snprintf(bad, cap, "^(?:%.*s)$",
						 (int)(cap > 8 ? cap - 8 : 0), v);
					return "missing closing )";
				}
				i = (size_t)(e - v) + 1;
				continue;
			}
			bool alnum = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') ||
				     (d >= '0' && d <= '9');
			bool octal_follows = i + 2 < n && v[i + 2] >= '0' && v[i + 2] <= '7';
			if (alnum && !strchr(ok_escapes, d) &&
			    !(d >= '1' && d <= '7' && octal_follows)) {
				snprintf(bad, cap, "\\%c", d);
				return "invalid escape sequence";
			}
			i++;
			continue;
		}
		if (in_class) {
			if (c == '[' && i + 1 < n && v[i + 1] == ':') {
				const char *e = memchr(v + i + 2, ']', n - i - 2);
				if (e && e[-1] == ':')
					i = (size_t)(e - v);
			} else if (c == ']') {
				in_class = false;
			}
			continue;
		}
		if (c == '[') {
			in_class = true;
			if (i + 1 < n && v[i + 1] == '^')
				i++;
			if (i + 1 < n && v[i + 1] == ']')
				i++;
			continue;
		}
		if (c == '(' && i + 1 < n && (v[i + 1] == '?' || v[i + 1] == '*')) {
			if (v[i + 1] == '*') {
				snprintf(bad, cap, "*");
				return "missing argument to repetition operator";
			}
			size_t k = i + 2;
			if (k < n && v[k] == ':')
				continue;
			if (k + 1 < n && v[k] == 'P' && v[k + 1] == '<')
				continue;
			while (k < n && strchr("imsU-", v[k]) && v[k])
				k++;
			if (k < n && k > i + 2 && (v[k] == ')' || v[k] == ':'))
				continue;
			snprintf(bad, cap, "%.*s", (int)(k + 1 < n ? k + 1 - i : n - i), v + i);
			return "invalid or unsupported Perl syntax";
		}
		if ((c == '*' || c == '+' || c == '?' || (c == '}' && closes_repeat(v, i))) &&
		    i + 1 < n && v[i + 1] == '+') {
			snprintf(bad, cap, "%c+", c);
			return "invalid nested repetition operator";
		}
	}
	return NULL;
}

/* The contexts every check of one parse uses; NULL when out of memory. */
static struct ts__promql_re *contexts(void)
{
	struct ts__promql_re *x = ts_calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->gctx = pcre2_general_context_create(re_malloc, re_free, x);
	if (x->gctx)
		x->cctx = pcre2_compile_context_create(x->gctx);
	if (x->cctx)
		x->mctx = pcre2_match_context_create(x->gctx);
	if (!x->mctx) {
		pcre2_compile_context_free(x->cctx);
		pcre2_general_context_free(x->gctx);
		ts_free(x);
		return NULL;
	}
	pcre2_set_match_limit(x->mctx, 100000);
	return x;
}

void ts__promql_regex_fini(struct parser *p)
{
	struct ts__promql_re *x = p->re;
	if (!x)
		return;
	pcre2_match_context_free(x->mctx);
	pcre2_compile_context_free(x->cctx);
	pcre2_general_context_free(x->gctx);
	ts_free(x);
	p->re = NULL;
}

int ts__promql_regex_check(struct parser *p, const char *v, size_t n, size_t pos, bool *empty)
{
	char bad[128];
	const char *why = re2_unsupported(v, n, bad, sizeof(bad));
	if (why) {
		ts__promql_fail(p, pos, "error parsing regexp: %s: `%s`", why, bad);
		return -1;
	}
	if (!p->re && !(p->re = contexts())) {
		ts__promql_nomem(p);
		return -1;
	}
	struct ts__promql_re *x = p->re;
	/* Prometheus compiles "^(?:v)$" and also parses v on its own, so "a)|(b"
	 * is refused; anchoring by flags compiles v alone with the same meaning. */
	int errcode;
	PCRE2_SIZE erroff;
	x->oom = false;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)(n ? v : ""), n,
				       PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
					       PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
				       &errcode, &erroff, x->cctx);
	if (!re) {
		if (x->oom) {
			ts__promql_nomem(p);
		} else {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(errcode, msg, sizeof(msg));
			ts__promql_fail(p, pos, "error parsing regexp: %s", (const char *)msg);
		}
		return -1;
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, x->gctx);
	if (!md) {
		pcre2_code_free(re);
		ts__promql_nomem(p);
		return -1;
	}
	int rc = pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, x->mctx);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	if (rc == PCRE2_ERROR_NOMEMORY || x->oom) {
		ts__promql_nomem(p);
		return -1;
	}
	*empty = rc >= 0;
	return 0;
}
