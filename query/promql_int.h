/*
 * promql_int.h - the parser's private header: its state and the internals (ts__promql_
 * prefix) shared by the files of ts_promql_parse(). Nothing outside query/promql*.c
 * includes it; the public API is promql.h.
 *
 *   promql.c          the grammar: recursive descent and precedence climbing
 *   promql_literal.c  numbers, durations, string literals, @ timestamps
 *   promql_regex.c    regex validation (PCRE2, plus the syntax RE2 lacks)
 *   promql_check.c    type checking, as Prometheus' checkAST
 *   promql_error.c    error recording and Prometheus' wording of tokens and quotes
 *
 * Errors: the first one wins. ts__promql_fail() and ts__promql_nomem() record it in
 * p->err and set p->rc (TS_EINVALID or -ENOMEM); once p->rc != 0 nothing more is
 * parsed and later errors are ignored, so every function may report and return.
 */
#ifndef TS_QUERY_PROMQL_INT_H
#define TS_QUERY_PROMQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/promql.h"
#include "query/promql_lex.h"

struct ts__promql_re; /* PCRE2 contexts, made on the first regex (promql_regex.c) */

struct parser {
	struct ts_promql_lexer lx;
	struct ts_promql_token tok; /* the lookahead */
	const char *q;
	size_t len;
	struct ts_promql_error *err;
	int rc;
	int depth;
	int agg_depth; /* open aggregation argument lists: "... in aggregation" */
	struct ts__promql_re *re;
};

static inline const char *ts__promql_tok_text(const struct parser *p)
{
	return p->q + p->tok.pos;
}

/* ---- errors (promql_error.c) ---- */

/* Records a syntax error at byte `pos` (TS_EINVALID) unless one is recorded. */
void ts__promql_fail(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records -ENOMEM (unless a syntax error is recorded: that one is the answer). */
void ts__promql_nomem(struct parser *p);
/* "unexpected <lookahead>[ in <ctx>][, expected <exp>]". A lexing error has been
 * reported already and is not reported twice. */
void ts__promql_unexpected(struct parser *p, const char *ctx, const char *exp);
/* Go's %q of s[0..n) into buf, cut to `max_runes` runes ("%.10q") when max_runes > 0.
 * cap must leave room for the quotes; output stops early rather than overflow. */
void ts__promql_quote(char *buf, size_t cap, const char *s, size_t n, int max_runes);

/* ---- literals (promql_literal.c) ---- */

/* Prometheus' number(): strconv.ParseInt(s, 0, 64), else ParseFloat. 0, or -1 with an
 * error recorded at pos. */
int ts__promql_number(struct parser *p, const char *s, size_t n, size_t pos, double *out);
/* Prometheus' parseDuration of token t, in ms (> 0). 0, or -1 with an error recorded. */
int ts__promql_duration(struct parser *p, const struct ts_promql_token *t, int64_t *out_ms);
/* Unquotes a STRING token the lexer has validated. Owned result (ts_free) with
 * *len_out bytes plus a NUL; NULL (error recorded) when out of memory. */
char *ts__promql_unquote(struct parser *p, const struct ts_promql_token *t, size_t *len_out);
/* Milliseconds of an @ number literal s[0..n) (sign separate) whose value is ts s. */
int64_t ts__promql_at_millis(const char *s, size_t n, bool neg, double ts);

/* ---- regular expressions (promql_regex.c) ---- */

/* Validates a =~ / !~ value as Prometheus does and tells whether it matches "".
 * 0, or -1 with an error recorded at pos. */
int ts__promql_regex_check(struct parser *p, const char *v, size_t n, size_t pos, bool *empty);
/* Frees what regex checks made. */
void ts__promql_regex_fini(struct parser *p);

/* ---- type checking (promql_check.c) ---- */

/* Checks the tree as Prometheus' checkAST does, stopping at the first error (recorded
 * in p); may normalise vector matching (see ast.h). */
void ts__promql_check(struct parser *p, struct ts_ast *root);

#endif
