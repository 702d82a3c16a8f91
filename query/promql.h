/*
 * promql.h - the PromQL parser: query text -> type-checked syntax tree (ast.h).
 *
 * Accepts what Prometheus 2.42 accepts (native-histogram syntax aside) and rejects
 * what it rejects, with the same messages where practical ("unexpected identifier
 * \"y\"", "expected type range vector in call to function \"rate\", got instant
 * vector", "vector selector must contain at least one non-empty matcher", ...).
 * Only the first error is reported, as Prometheus does.
 */
#ifndef TS_QUERY_PROMQL_H
#define TS_QUERY_PROMQL_H

#include <stddef.h>

#include "query/ast.h"

/* Nesting deeper than this (parentheses, operands, arguments) is refused with
 * "expression nested too deeply": it bounds the parser's and the tree walkers'
 * recursion. Prometheus has no such limit. */
#define TS_PROMQL_MAX_DEPTH 256

struct ts_promql_error {
	int pos;       /* byte offset into the query where the error is reported */
	char msg[256]; /* Prometheus' message, without the "1:5: parse error: " prefix */
};

/*
 * Parses q[0..len) (need not be NUL-terminated; may contain any bytes).
 *
 * On success returns 0 and *out owns the tree (free with ts_ast_free).
 * On a syntax or type error returns TS_EINVALID, *out is NULL and *err says where
 * and why. Returns -ENOMEM when an allocation fails (*out NULL, err->msg says so).
 * `err` may be NULL. Nothing is retained after the call; thread-safe.
 */
int ts_promql_parse(const char *q, size_t len, struct ts_ast **out, struct ts_promql_error *err);

/*
 * Formats `err` as Prometheus does: "<line>:<col>: parse error: <msg>", where line
 * and column are 1-based and the column counts bytes. Writes at most `cap` bytes
 * including the NUL into buf; returns the length it wanted (snprintf style).
 */
int ts_promql_error_format(const char *q, size_t len, const struct ts_promql_error *err, char *buf,
			   size_t cap);

#endif
