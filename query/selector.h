/*
 * selector.h - series selectors as the HTTP API's match[] parameters and tsdbctl's
 * --match flags give them: PromQL text parsed into the storage engine's matchers
 * (tsdb.h), the sorted union of several selections, and the rewrite that adds matchers
 * to every selector of a query (Grafana's ad-hoc filters).
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

/*
 * Parses sel[0..len) (borrowed for the call; need not be NUL-terminated) as a series
 * selector: "up", "{job=\"a\"}", "x{y=~\"z\"}"; no offset, no @, no range, no
 * other expression. On success returns 0 and *s holds the matchers (release with
 * ts_selector_fini). Else *s is zeroed and the return is TS_EINVALID, with a
 * Prometheus-style message in msg (msg_len bytes, NUL-terminated: "1:4: parse error:
 * ..."), or -ENOMEM.
 */
int ts_selector_parse(struct ts_selector *s, const char *sel, size_t len, char *msg,
		      size_t msg_len);
/* Releases what ts_selector_parse made and zeroes *s. Accepts NULL and a zeroed *s. */
void ts_selector_fini(struct ts_selector *s);

/* One series of a union: series i of `set`, with its labels (owned by the set). */
struct ts_selector_ref {
	struct ts_series_set *set;
	size_t i;
	const struct ts_label *labels;
	uint32_t n_labels;
};
struct ts_selector_union {
	struct ts_series_set **sets; /* one per selector, owned */
	size_t n_sets;
	struct ts_selector_ref *refs; /* sorted by labels, distinct */
	size_t n_refs;
	void *ts__dedup_labels; /* the server's relabelled copy (freed by _fini) */
};

/*
 * Selects the series matching any of sel[0..n) (borrowed) in [mint, maxt] on db and
 * gives their union, sorted by labels and without duplicates. With `need_chunks`,
 * series without a chunk overlapping [mint, maxt] are left out (the engine's selection
 * may return series that have no data in the range).
 * On success returns 0; *u owns the sets its refs point into (release with
 * ts_selector_union_fini). Else *u is zeroed and the return is TS_EINVALID (a regex the
 * engine refuses; message in msg, NUL-terminated), -ENOMEM, or an engine error of
 * ts_db_select or ts_chunk_it_next (TS_ECORRUPT, ...).
 */
int ts_selector_union(struct ts_db *db, const struct ts_selector *sel, size_t n, int64_t mint,
		      int64_t maxt, bool need_chunks, struct ts_selector_union *u, char *msg,
		      size_t msg_len);
/* Releases the sets and refs of *u and zeroes it. Accepts a zeroed *u. */
void ts_selector_union_fini(struct ts_selector_union *u);

/*
 * Parses PromQL q[0..len) (borrowed), appends copies of m[0..n) (NUL-terminated names
 * and values, borrowed) to the matchers of every vector selector in it (Grafana's
 * ad-hoc filters), and prints the tree back. On success returns 0 and *out is the new
 * query text (NUL-terminated; the caller frees it with ts_free). Else *out is NULL and
 * the return is TS_EINVALID with the parse error in msg ("1:5: parse error: ..."), or
 * -ENOMEM ("out of memory" in msg).
 */
int ts_selector_add_matchers(const char *q, size_t len, const struct ts_matcher *m, size_t n,
			     char **out, char *msg, size_t msg_len);

#endif
