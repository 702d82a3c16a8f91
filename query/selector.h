/*
 * selector.h - series selectors as the HTTP API's match[] parameters and tsdbctl's
 * --match flags give them: PromQL text parsed into engine matchers, the sorted union of
 * several selections, and the rewrite that adds matchers to every selector of a query
 * (Grafana's ad-hoc filters).
 *
 * Threading: no shared state; each call works on its own arguments.
 */
#ifndef TS_QUERY_SELECTOR_H
#define TS_QUERY_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

/* The matchers of one series selector, in engine form. Owned: ts_selector_fini. */
struct ts_selector {
	struct ts_matcher *m; /* name/value point into the parsed tree */
	size_t n;
	void *ts__tree;
};

/* Parses sel[0..len) as a series selector ("up", "{job=\"a\"}", "x{y=~\"z\"}"; no
 * offset, no @, no range). Returns 0, or TS_EINVALID with a Prometheus-style message in
 * msg ("1:4: parse error: ..."), -ENOMEM. */
int ts_selector_parse(struct ts_selector *s, const char *sel, size_t len, char *msg,
			  size_t msg_len);
void ts_selector_fini(struct ts_selector *s);

/* The union of the series matching any of sel[0..n) in [mint, maxt], sorted by labels
 * and without duplicates: refs into the sets, which stay owned by *u. With
 * `need_chunks`, series without a chunk overlapping [mint, maxt] are left out (the
 * engine's selection may return series that have no data in the range).
 * Free with ts_selector_union_fini. Returns 0, TS_EINVALID (bad regex; msg set), -ENOMEM,
 * or an engine error. */
struct ts_selector_ref {
	struct ts_series_set *set;
	size_t i;
	const struct ts_label *labels;
	uint32_t n_labels;
};
struct ts_selector_union {
	struct ts_series_set **sets;
	size_t n_sets;
	struct ts_selector_ref *refs;
	size_t n_refs;
};
int ts_selector_union(struct ts_db *db, const struct ts_selector *sel, size_t n, int64_t mint,
			int64_t maxt, bool need_chunks, struct ts_selector_union *u, char *msg,
			size_t msg_len);
void ts_selector_union_fini(struct ts_selector_union *u);

/* Parses PromQL q[0..len), appends copies of m[0..n) (NUL-terminated names and values)
 * to the matchers of every vector selector in it, and prints the tree back into *out
 * (NUL-terminated, free with ts_free). Returns 0, TS_EINVALID with the parse error in
 * msg, -ENOMEM. */
int ts_promql_add_matchers(const char *q, size_t len, const struct ts_matcher *m, size_t n, char **out,
			char *msg, size_t msg_len);

#endif
