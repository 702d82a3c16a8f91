/*
 * ast.h - the PromQL syntax tree: what ts_promql_parse() builds and the evaluator
 * walks, plus the canonical printer and structural equality.
 *
 * One node type, struct ts_ast, a tagged union on `kind`. A tree returned by the
 * parser is fully type-checked (Prometheus' checkAST rules), so the evaluator can
 * rely on these invariants:
 *   - every node's `type` is its value type (never TS_VT_NONE);
 *   - MATRIX_SELECTOR.vs is a VECTOR_SELECTOR; the matrix's offset and @ live in
 *     that vector selector (as in Prometheus);
 *   - a vector selector's `matchers` include the metric name given outside the
 *     braces, as a trailing `__name__` EQ matcher; `name` keeps it for printing;
 *     at least one matcher does not match the empty string;
 *   - CALL.args match CALL.func's argument types and count;
 *   - AGGREGATE.param is set exactly for topk, bottomk, quantile (scalar) and
 *     count_values (string);
 *   - BINARY.matching is meaningful only when both operands are instant vectors;
 *     otherwise it is all zero (card ONE_TO_ONE, no labels). Set operators between
 *     vectors always have card MANY_TO_MANY. `return_bool` only on comparisons.
 *   - durations, offsets and @ timestamps are int64 milliseconds; ranges > 0,
 *     steps >= 0 (0 = the evaluation's default step), offsets may be negative.
 *   - positions (`pos`) are byte offsets into the parsed query, for messages only.
 *
 * Names: the matcher struct is ts_ast_matcher, apart from the engine's ts_matcher.
 *
 * Memory: every node, string and array is allocated with ts_malloc & co and owned
 * by its parent; ts_ast_free(root) releases the whole tree. Strings are
 * NUL-terminated; matcher values and string literals may also contain NUL bytes,
 * hence their explicit lengths. Trees are immutable after parsing and may be read
 * from several threads at once.
 */
#ifndef TS_QUERY_AST_H
#define TS_QUERY_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/functions.h"

enum ts_ast_kind {
	TS_AST_NUMBER = 1,
	TS_AST_STRING,
	TS_AST_VECTOR_SELECTOR,
	TS_AST_MATRIX_SELECTOR,
	TS_AST_SUBQUERY,
	TS_AST_BINARY,
	TS_AST_AGGREGATE,
	TS_AST_CALL,
	TS_AST_PAREN,
	TS_AST_UNARY,
};

/* Binary operators (also ADD/SUB for unary expressions). */
enum ts_binop {
	TS_OP_ADD = 1,
	TS_OP_SUB,
	TS_OP_MUL,
	TS_OP_DIV,
	TS_OP_MOD,
	TS_OP_POW,
	TS_OP_ATAN2,
	TS_OP_EQLC, /* == */
	TS_OP_NEQ,
	TS_OP_GTR,
	TS_OP_LSS,
	TS_OP_GTE,
	TS_OP_LTE,
	TS_OP_AND,
	TS_OP_OR,
	TS_OP_UNLESS,
};

#define TS_OP_IS_COMPARISON(op) ((op) >= TS_OP_EQLC && (op) <= TS_OP_LTE)
#define TS_OP_IS_SET(op) ((op) >= TS_OP_AND && (op) <= TS_OP_UNLESS)

enum ts_aggop {
	TS_AGG_SUM = 1,
	TS_AGG_AVG,
	TS_AGG_MIN,
	TS_AGG_MAX,
	TS_AGG_COUNT,
	TS_AGG_GROUP,
	TS_AGG_STDDEV,
	TS_AGG_STDVAR,
	TS_AGG_TOPK,
	TS_AGG_BOTTOMK,
	TS_AGG_QUANTILE,
	TS_AGG_COUNT_VALUES,
};

enum ts_card {
	TS_CARD_ONE_TO_ONE = 0,
	TS_CARD_MANY_TO_ONE,  /* group_left */
	TS_CARD_ONE_TO_MANY,  /* group_right */
	TS_CARD_MANY_TO_MANY, /* set operators */
};

/* A label matcher of a selector. `type` holds an enum ts_match_type value of the
 * engine (tsdb/tsdb.h: TS_MATCH_EQ =, TS_MATCH_NEQ !=, TS_MATCH_RE =~, TS_MATCH_NRE !~;
 * regexes are fully anchored), so it passes straight to ts_db_select(). It is an int
 * so that this header does not pull in the engine's. */
struct ts_ast_matcher {
	int type;
	char *name;  /* owned */
	char *value; /* owned; value_len bytes plus a NUL (may contain NULs) */
	size_t value_len;
	bool matches_empty; /* derived: does the empty value (absent label) match? */
};

/* The @ modifier. */
enum ts_at {
	TS_AT_NONE = 0,
	TS_AT_TIMESTAMP, /* at_ms holds the time */
	TS_AT_START,	 /* @ start(): the query's start time */
	TS_AT_END,	 /* @ end() */
};

/* A list of label names (by/without, on/ignoring, group_left/right). */
struct ts_label_list {
	char **names; /* owned, each owned */
	size_t n;
};

struct ts_vector_matching {
	enum ts_card card;
	bool on;		      /* on(...) rather than ignoring(...) */
	struct ts_label_list labels;  /* the on/ignoring list */
	struct ts_label_list include; /* the group_left/group_right list */
};

struct ts_ast {
	enum ts_ast_kind kind;
	enum ts_value_type type;
	int pos;    /* byte offset where the expression starts in the query */
	int height; /* 1 for leaves; bounds recursion over the tree */
	union {
		struct {
			double value;
		} number;
		struct {
			char *value; /* owned, unquoted; len bytes plus a NUL */
			size_t len;
		} string;
		struct {
			char *name; /* owned; the metric name outside braces, or NULL */
			struct ts_ast_matcher *matchers; /* owned array */
			size_t n_matchers;
			int64_t offset_ms;
			enum ts_at at;
			int64_t at_ms;
		} vs;
		struct {
			struct ts_ast *vs; /* a VECTOR_SELECTOR (holds offset and @) */
			int64_t range_ms;
		} matrix;
		struct {
			struct ts_ast *expr; /* instant-vector typed */
			int64_t range_ms;
			int64_t step_ms; /* 0: not given */
			int64_t offset_ms;
			enum ts_at at;
			int64_t at_ms;
		} subquery;
		struct {
			enum ts_binop op;
			struct ts_ast *lhs, *rhs;
			bool return_bool;
			struct ts_vector_matching matching;
			int op_pos;
		} binary;
		struct {
			enum ts_aggop op;
			struct ts_ast *param; /* NULL unless the operator takes one */
			struct ts_ast *expr;
			struct ts_label_list grouping;
			bool without;
		} aggregate;
		struct {
			const struct ts_function *func; /* into the static table */
			struct ts_ast **args;		/* owned array of owned nodes */
			size_t n_args;
		} call;
		struct {
			struct ts_ast *expr;
		} paren;
		struct {
			enum ts_binop op; /* TS_OP_ADD or TS_OP_SUB */
			struct ts_ast *expr;
		} unary;
	};
};

/* A zeroed node of `kind` at `pos`, height 1; NULL when out of memory. */
struct ts_ast *ts_ast_new(enum ts_ast_kind kind, int pos);

/* Frees a tree (and its strings). NULL is a no-op. */
void ts_ast_free(struct ts_ast *node);

/* Frees a label list's names and array and zeroes it. */
void ts_label_list_fini(struct ts_label_list *l);

/* Appends a copy of name[0..len) to `l`. 0 or -ENOMEM (l unchanged). */
int ts_label_list_push(struct ts_label_list *l, const char *name, size_t len);

/* Writes canonical PromQL for `node` into *out (NUL-terminated, owned by the
 * caller: ts_free). The text is Prometheus' String() form (e.g. "sum by (a) (x)",
 * "x[5m] @ 100.000 offset 1m"), so ts_promql_parse(print(t)) is ts_ast_equal to t.
 * Returns 0 or -ENOMEM (*out then NULL). */
int ts_ast_print(const struct ts_ast *node, char **out);

/* Writes `node` as Prometheus' format_query does (parser.Prettify, Pretty(0)): each
 * node on one line while its String() fits in 100 characters, split over indented
 * lines (two spaces a level) beyond. ts_promql_parse(pretty(t)) is ts_ast_equal to t.
 * Ownership and errors as ts_ast_print. */
int ts_ast_pretty(const struct ts_ast *node, char **out);

/* Structural equality, ignoring positions: same kinds, values (NaN equals NaN),
 * names, matcher multisets, modifiers and children. NULL equals only NULL. */
bool ts_ast_equal(const struct ts_ast *a, const struct ts_ast *b);

/* Spellings: "+", "==", "and", "atan2" / "sum", "count_values". Static strings. */
const char *ts_binop_str(enum ts_binop op);
const char *ts_aggop_str(enum ts_aggop op);
const char *ts_match_type_str(int type); /* "=", "!=", "=~", "!~" */

#endif
