/*
 * relit.c - the values of a regex that is an alternation of literals (relit.h).
 *
 * Grammar (recursive descent; every other character or construct means "not a set"):
 *   alt    := concat ('|' concat)*
 *   concat := atom*
 *   atom   := plain character | '\' punctuation | '(' ['?:'] alt ')'
 * A concatenation is the cross product of its atoms' sets, so "a(b|c)(d|e)" is abd,
 * abe, acd, ace. Products are bounded by max_values at every step, so a regex such as
 * "(a|b)(a|b)...(a|b)" stops early instead of growing.
 */
#include "tsdb/relit.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "storage/mem.h"

/* Not a set; distinct from -ENOMEM. */
#define NOT_SET 1

struct parser {
	const char *p, *end;
	size_t max_values, max_len;
	int depth;
};

void ts__relit_free(struct ts__relit *s)
{
	for (size_t i = 0; i < s->n; i++)
		ts_free(s->v[i]);
	ts_free(s->v);
	ts_free(s->len);
	memset(s, 0, sizeof *s);
}

static int push(struct ts__relit *s, const char *a, size_t al, const char *b, size_t bl)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **v = ts_realloc(s->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		size_t *len = ts_realloc(s->len, cap * sizeof *len);
		if (!len)
			return -ENOMEM;
		s->len = len;
		s->cap = cap;
	}
	char *x = ts_malloc(al + bl + 1);
	if (!x)
		return -ENOMEM;
	memcpy(x, a, al);
	memcpy(x + al, b, bl);
	x[al + bl] = 0;
	s->v[s->n] = x;
	s->len[s->n++] = al + bl;
	return 0;
}

/* acc := acc x rhs (cross product), bounded. */
static int product(struct parser *ps, struct ts__relit *acc, const struct ts__relit *rhs)
{
	if (acc->n * rhs->n > ps->max_values)
		return NOT_SET;
	struct ts__relit out = { 0 };
	int rc = 0;
	for (size_t i = 0; i < acc->n && rc == 0; i++)
		for (size_t j = 0; j < rhs->n && rc == 0; j++) {
			if (acc->len[i] + rhs->len[j] > ps->max_len)
				rc = NOT_SET;
			else
				rc = push(&out, acc->v[i], acc->len[i], rhs->v[j], rhs->len[j]);
		}
	ts__relit_free(acc);
	*acc = out;
	return rc;
}

/* Appends character ch to every value of acc. */
static int append_char(struct parser *ps, struct ts__relit *acc, char ch)
{
	for (size_t i = 0; i < acc->n; i++) {
		if (acc->len[i] + 1 > ps->max_len)
			return NOT_SET;
		char *x = ts_realloc(acc->v[i], acc->len[i] + 2);
		if (!x)
			return -ENOMEM;
		x[acc->len[i]++] = ch;
		x[acc->len[i]] = 0;
		acc->v[i] = x;
	}
	return 0;
}

static bool is_meta(char c)
{
	return strchr("\\.^$|?*+()[]{}", c) != NULL;
}

static bool is_punct(char c)
{
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
	       (c >= '{' && c <= '~');
}

static int parse_alt(struct parser *ps, struct ts__relit *out);

static int parse_concat(struct parser *ps, struct ts__relit *out)
{
	int rc = push(out, "", 0, "", 0);
	while (rc == 0 && ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
		char c = *ps->p;
		if (c == '\\') {
			if (ps->end - ps->p < 2 || !is_punct(ps->p[1]))
				return NOT_SET;
			rc = append_char(ps, out, ps->p[1]);
			ps->p += 2;
		} else if (c == '(') {
			ps->p++;
			if (ps->p < ps->end && *ps->p == '?') {
				if (ps->end - ps->p < 2 || ps->p[1] != ':')
					return NOT_SET; /* flags, named groups, look-arounds */
				ps->p += 2;
			}
			if (++ps->depth > 32)
				return NOT_SET;
			struct ts__relit g = { 0 };
			rc = parse_alt(ps, &g);
			ps->depth--;
			if (rc == 0 && (ps->p >= ps->end || *ps->p != ')'))
				rc = NOT_SET;
			if (rc == 0) {
				ps->p++;
				/* A quantified group is not a finite literal set we handle. */
				if (ps->p < ps->end && strchr("?*+{", *ps->p))
					rc = NOT_SET;
			}
			if (rc == 0)
				rc = product(ps, out, &g);
			ts__relit_free(&g);
		} else if (is_meta(c)) {
			return NOT_SET;
		} else {
			/* A quantifier applies to this character alone: not a set. */
			if (ps->end - ps->p >= 2 && strchr("?*+{", ps->p[1]))
				return NOT_SET;
			rc = append_char(ps, out, c);
			ps->p++;
		}
	}
	return rc;
}

static int parse_alt(struct parser *ps, struct ts__relit *out)
{
	for (;;) {
		struct ts__relit c = { 0 };
		int rc = parse_concat(ps, &c);
		for (size_t i = 0; rc == 0 && i < c.n; i++) {
			if (out->n + 1 > ps->max_values)
				rc = NOT_SET;
			else
				rc = push(out, c.v[i], c.len[i], "", 0);
		}
		ts__relit_free(&c);
		if (rc)
			return rc;
		if (ps->p < ps->end && *ps->p == '|') {
			ps->p++;
			continue;
		}
		return 0;
	}
}

int ts__relit_expand(const char *re, size_t n, size_t max_values, size_t max_len,
		     struct ts__relit *out)
{
	struct parser ps = { re, re + n, max_values, max_len, 0 };
	int rc = parse_alt(&ps, out);
	if (rc == 0 && ps.p != ps.end)
		rc = NOT_SET; /* an unbalanced ')' */
	for (size_t i = 0; rc == 0 && i < out->n; i++)
		if (out->len[i] == 0 || memchr(out->v[i], 0, out->len[i]))
			rc = NOT_SET; /* "" is matched through the label's absence */
	if (rc) {
		ts__relit_free(out);
		return rc == NOT_SET ? 0 : rc;
	}
	return 1;
}
