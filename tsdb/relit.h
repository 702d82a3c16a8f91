/*
 * relit.h - the finite set of values a label regex matches, when it is a plain
 * alternation of literals: "a|b", "host_(1|2|3)", "cpu_(?:user|system)_total",
 * "x\.y". Selection looks these values up as equality postings instead of scanning and
 * matching every value of the label (Prometheus' FindSetMatches does the same for
 * top-level alternations; VictoriaMetrics for nested ones).
 *
 * The regex is read as the selection matches it: anchored at both ends. Anything
 * beyond literals, escaped punctuation and (possibly nested, possibly non-capturing)
 * groups of alternatives makes it "not a set": character classes, '.', quantifiers,
 * anchors, flags such as (?i), escapes of letters or digits.
 */
#ifndef TS_TSDB_RELIT_H
#define TS_TSDB_RELIT_H

#include <stddef.h>

/* The values, in the order the alternation spells them (duplicates possible). */
struct ts__relit {
	char **v;    /* each NUL-terminated, owned */
	size_t *len; /* v[i]'s length */
	size_t n, cap;
};

/* Fills *out (zero-initialised by the caller) with the values regex re (n bytes)
 * matches. Returns 1 when re is such a set of at most max_values values, none longer
 * than max_len bytes and none empty; 0 when it is not (out is then empty); -ENOMEM. */
int ts__relit_expand(const char *re, size_t n, size_t max_values, size_t max_len,
		     struct ts__relit *out);
/* Frees the values; *s is left empty and may be reused. */
void ts__relit_free(struct ts__relit *s);

#endif
