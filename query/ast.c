/*
 * ast.c - PromQL syntax tree: construction helpers, freeing, the canonical printer
 * and structural equality (see ast.h for the node invariants).
 *
 * The printer follows Prometheus 2.42's printer.go: binary "a + on (b) group_left
 * (c) d", aggregate "sum by (a) (x)", Go's %v for numbers (1e+06, +Inf, NaN), Go's
 * %q for strings and matcher values, model.Duration for durations (1h30m, 1w, 1y),
 * "@ <seconds with 3 decimals>", matchers sorted by their printed text. It relies on
 * the tree keeping PAREN nodes: every parenthesis of the query is a node, so no
 * parentheses need to be invented and print -> parse gives back the same tree.
 * Deviations that keep that round trip exact (Prometheus' own printer loses
 * information there):
 *   - "ignoring ()" is printed when a group_left/group_right needs it;
 *   - +Inf as the left operand of '^' is printed "Inf";
 *   - string escapes: runes Prometheus' lexer would reject (U+FFFD) and non-printable
 *     ones are written as \u escapes;
 *   - @ timestamps are printed from the integer milliseconds, exactly.
 * Recursion in free/print/equal is bounded by the parser's height limit.
 */
#include "query/ast.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/gofmt.h"
#include "query/promql_lex.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

struct ts_ast *ts_ast_new(enum ts_ast_kind kind, int pos)
{
	struct ts_ast *n = ts_calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->pos = pos;
	n->height = 1;
	return n;
}

void ts_label_list_fini(struct ts_label_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		ts_free(l->names[i]);
	ts_free(l->names);
	l->names = NULL;
	l->n = 0;
}

int ts_label_list_push(struct ts_label_list *l, const char *name, size_t len)
{
	char *s = ts_strndup(name, len);
	if (!s)
		return -ENOMEM;
	char **names = ts_realloc(l->names, (l->n + 1) * sizeof(*names));
	if (!names) {
		ts_free(s);
		return -ENOMEM;
	}
	names[l->n++] = s;
	l->names = names;
	return 0;
}

void ts_ast_free(struct ts_ast *n)
{
	if (!n)
		return;
	switch (n->kind) {
	case TS_AST_STRING: ts_free(n->string.value); break;
	case TS_AST_VECTOR_SELECTOR:
		ts_free(n->vs.name);
		for (size_t i = 0; i < n->vs.n_matchers; i++) {
			ts_free(n->vs.matchers[i].name);
			ts_free(n->vs.matchers[i].value);
		}
		ts_free(n->vs.matchers);
		break;
	case TS_AST_MATRIX_SELECTOR: ts_ast_free(n->matrix.vs); break;
	case TS_AST_SUBQUERY: ts_ast_free(n->subquery.expr); break;
	case TS_AST_BINARY:
		ts_ast_free(n->binary.lhs);
		ts_ast_free(n->binary.rhs);
		ts_label_list_fini(&n->binary.matching.labels);
		ts_label_list_fini(&n->binary.matching.include);
		break;
	case TS_AST_AGGREGATE:
		ts_ast_free(n->aggregate.param);
		ts_ast_free(n->aggregate.expr);
		ts_label_list_fini(&n->aggregate.grouping);
		break;
	case TS_AST_CALL:
		for (size_t i = 0; i < n->call.n_args; i++)
			ts_ast_free(n->call.args[i]);
		ts_free(n->call.args);
		break;
	case TS_AST_PAREN: ts_ast_free(n->paren.expr); break;
	case TS_AST_UNARY: ts_ast_free(n->unary.expr); break;
	case TS_AST_NUMBER: break;
	}
	ts_free(n);
}

const char *ts_binop_str(enum ts_binop op)
{
	static const char *s[] = {
		[TS_OP_ADD] = "+",	   [TS_OP_SUB] = "-",	[TS_OP_MUL] = "*",
		[TS_OP_DIV] = "/",	   [TS_OP_MOD] = "%",	[TS_OP_POW] = "^",
		[TS_OP_ATAN2] = "atan2",   [TS_OP_EQLC] = "==", [TS_OP_NEQ] = "!=",
		[TS_OP_GTR] = ">",	   [TS_OP_LSS] = "<",	[TS_OP_GTE] = ">=",
		[TS_OP_LTE] = "<=",	   [TS_OP_AND] = "and", [TS_OP_OR] = "or",
		[TS_OP_UNLESS] = "unless",
	};
	return (unsigned)op < sizeof(s) / sizeof(s[0]) && s[op] ? s[op] : "?";
}

const char *ts_aggop_str(enum ts_aggop op)
{
	static const char *s[] = {
		[TS_AGG_SUM] = "sum",		[TS_AGG_AVG] = "avg",
		[TS_AGG_MIN] = "min",		[TS_AGG_MAX] = "max",
		[TS_AGG_COUNT] = "count",	[TS_AGG_GROUP] = "group",
		[TS_AGG_STDDEV] = "stddev",	[TS_AGG_STDVAR] = "stdvar",
		[TS_AGG_TOPK] = "topk",		[TS_AGG_BOTTOMK] = "bottomk",
		[TS_AGG_QUANTILE] = "quantile", [TS_AGG_COUNT_VALUES] = "count_values",
	};
	return (unsigned)op < sizeof(s) / sizeof(s[0]) && s[op] ? s[op] : "?";
}

const char *ts_match_type_str(int type)
{
	switch (type) {
	case TS_MATCH_EQ: return "=";
	case TS_MATCH_NEQ: return "!=";
	case TS_MATCH_RE: return "=~";
	case TS_MATCH_NRE: return "!~";
	}
	return "?";
}

/* ---- printer ---- */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (ts_grow((void **)&b->p, &b->cap, b->len + n + 1, 1)) {
		b->oom = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_put(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Go's strconv.Quote of s[0..n), with ts_promql_rune_printable's approximation;
 * U+FFFD is escaped because Prometheus' lexer refuses it raw. */
static void sb_quote(struct sb *b, const char *s, size_t n)
{
	sb_put(b, "\"", 1);
	size_t i = 0;
	while (i < n) {
		size_t w;
		int r = ts_promql_utf8_decode((const unsigned char *)s + i, n - i, &w);
		if (r == 0xFFFD && w == 1) {
			sb_printf(b, "\\x%02x", (unsigned char)s[i]);
		} else if (r == '"' || r == '\\') {
			sb_put(b, "\\", 1);
			sb_put(b, s + i, 1);
		} else if (ts_promql_rune_printable(r) && r != 0xFFFD) {
			sb_put(b, s + i, w);
		} else {
			const char *e = NULL;
			switch (r) {
			case '\a': e = "\\a"; break;
			case '\b': e = "\\b"; break;
			case '\f': e = "\\f"; break;
			case '\n': e = "\\n"; break;
			case '\r': e = "\\r"; break;
			case '\t': e = "\\t"; break;
			case '\v': e = "\\v"; break;
			default: break;
			}
			if (e)
				sb_str(b, e);
			else if (r < 0x20 || r == 0x7F)
				sb_printf(b, "\\x%02x", (unsigned)r);
			else if (r < 0x10000)
				sb_printf(b, "\\u%04x", (unsigned)r);
			else
				sb_printf(b, "\\U%08x", (unsigned)r);
		}
		i += w;
	}
	sb_put(b, "\"", 1);
}

/* Go's fmt %v of a float64, as Prometheus' format_query prints numbers. */
static void sb_number(struct sb *b, double v)
{
	char buf[32];
	size_t n = ts__gofmt_float(v, TS__GOFMT_V, buf, sizeof(buf));
	sb_put(b, buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
}

/* Prometheus' model.Duration.String(): y and w only when exact. */
static void sb_duration(struct sb *b, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t mult;
		bool exact;
	} u[] = {
		{ "y", 365LL * 24 * 3600 * 1000, true },
		{ "w", 7LL * 24 * 3600 * 1000, true },
		{ "d", 24LL * 3600 * 1000, false },
		{ "h", 3600LL * 1000, false },
		{ "m", 60LL * 1000, false },
		{ "s", 1000, false },
		{ "ms", 1, false },
	};
	if (ms == 0) {
		sb_str(b, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (u[i].exact && ms % u[i].mult != 0)
			continue;
		int64_t v = ms / u[i].mult;
		if (v > 0) {
			sb_printf(b, "%lld%s", (long long)v, u[i].unit);
			ms -= v * u[i].mult;
		}
	}
}

static void sb_at_offset(struct sb *b, enum ts_at at, int64_t at_ms, int64_t offset_ms)
{
	if (at == TS_AT_TIMESTAMP) {
		uint64_t mag = at_ms < 0 ? 0 - (uint64_t)at_ms : (uint64_t)at_ms;
		sb_printf(b, " @ %s%llu.%03llu", at_ms < 0 ? "-" : "",
			  (unsigned long long)(mag / 1000), (unsigned long long)(mag % 1000));
	} else if (at == TS_AT_START) {
		sb_str(b, " @ start()");
	} else if (at == TS_AT_END) {
		sb_str(b, " @ end()");
	}
	if (offset_ms > 0) {
		sb_str(b, " offset ");
		sb_duration(b, offset_ms);
	} else if (offset_ms < 0) {
		sb_str(b, " offset -");
		sb_duration(b, -offset_ms);
	}
}

static void sb_labels(struct sb *b, const struct ts_label_list *l)
{
	sb_put(b, "(", 1);
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			sb_put(b, ", ", 2);
		sb_str(b, l->names[i]);
	}
	sb_put(b, ")", 1);
}

struct mstr {
	char *p;
	size_t len;
};

static int mstr_cmp(const void *a, const void *b)
{
	const struct mstr *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, n);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* name{sorted matchers} without @ and offset. */
static void sb_selector(struct sb *b, const struct ts_ast *n)
{
	struct mstr *ms = NULL;
	size_t nm = 0;
	if (n->vs.name)
		sb_str(b, n->vs.name);
	if (n->vs.n_matchers) {
		ms = ts_calloc(n->vs.n_matchers, sizeof(*ms));
		if (!ms) {
			b->oom = true;
			return;
		}
	}
	for (size_t i = 0; i < n->vs.n_matchers; i++) {
		const struct ts_ast_matcher *m = &n->vs.matchers[i];
		if (n->vs.name && m->type == TS_MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
		    m->value_len == strlen(n->vs.name) && strcmp(m->value, n->vs.name) == 0)
			continue;
		struct sb t = { 0 };
		sb_str(&t, m->name);
		sb_str(&t, ts_match_type_str(m->type));
		sb_quote(&t, m->value, m->value_len);
		if (t.oom) {
			ts_free(t.p); /* what fitted before the failure */
			b->oom = true;
			break;
		}
		ms[nm].p = t.p;
		ms[nm++].len = t.len;
	}
	if (nm && !b->oom) {
		qsort(ms, nm, sizeof(*ms), mstr_cmp);
		sb_put(b, "{", 1);
		for (size_t i = 0; i < nm; i++) {
			if (i)
				sb_put(b, ",", 1);
			sb_put(b, ms[i].p, ms[i].len);
		}
		sb_put(b, "}", 1);
	}
	for (size_t i = 0; i < nm; i++)
		ts_free(ms[i].p);
	ts_free(ms);
}

static void print_node(struct sb *b, const struct ts_ast *n);

/* op [bool] [on|ignoring (...) [group_left|group_right (...)]] of a binary node. */
static void sb_binop(struct sb *b, const struct ts_ast *n)
{
	const struct ts_vector_matching *vm = &n->binary.matching;
	bool grouped = vm->card == TS_CARD_MANY_TO_ONE || vm->card == TS_CARD_ONE_TO_MANY;
	sb_str(b, ts_binop_str(n->binary.op));
	if (n->binary.return_bool)
		sb_str(b, " bool");
	if (vm->on || vm->labels.n || grouped) {
		sb_str(b, vm->on ? " on " : " ignoring ");
		sb_labels(b, &vm->labels);
		if (grouped) {
			sb_str(b,
			       vm->card == TS_CARD_MANY_TO_ONE ? " group_left " : " group_right ");
			sb_labels(b, &vm->include);
		}
	}
}

/* "[range:step]" and the @ and offset modifiers of a subquery. */
static void sb_subquery_suffix(struct sb *b, const struct ts_ast *n)
{
	sb_put(b, "[", 1);
	sb_duration(b, n->subquery.range_ms);
	sb_put(b, ":", 1);
	if (n->subquery.step_ms)
		sb_duration(b, n->subquery.step_ms);
	sb_put(b, "]", 1);
	sb_at_offset(b, n->subquery.at, n->subquery.at_ms, n->subquery.offset_ms);
}

/* "op" or "op by|without (...) " of an aggregation, up to its parenthesis. */
static void sb_agg_head(struct sb *b, const struct ts_ast *n)
{
	sb_str(b, ts_aggop_str(n->aggregate.op));
	if (n->aggregate.without || n->aggregate.grouping.n) {
		sb_str(b, n->aggregate.without ? " without " : " by ");
		sb_labels(b, &n->aggregate.grouping);
		sb_put(b, " ", 1);
	}
}

/* lhs op [bool] [on|ignoring (...) [group_left|group_right (...)]] rhs */
static void print_binary(struct sb *b, const struct ts_ast *n)
{
	const struct ts_ast *l = n->binary.lhs;
	/* "+Inf ^ 2" would read back as +(Inf ^ 2): a sign before a '^' operand
	 * takes the whole power. Prometheus prints it so and loses the tree. */
	if (n->binary.op == TS_OP_POW && l->kind == TS_AST_NUMBER && isinf(l->number.value) &&
	    l->number.value > 0)
		sb_str(b, "Inf");
	else
		print_node(b, l);
	sb_put(b, " ", 1);
	sb_binop(b, n);
	sb_put(b, " ", 1);
	print_node(b, n->binary.rhs);
}

static void print_node(struct sb *b, const struct ts_ast *n)
{
	switch (n->kind) {
	case TS_AST_NUMBER: sb_number(b, n->number.value); break;
	case TS_AST_STRING: sb_quote(b, n->string.value, n->string.len); break;
	case TS_AST_VECTOR_SELECTOR:
		sb_selector(b, n);
		sb_at_offset(b, n->vs.at, n->vs.at_ms, n->vs.offset_ms);
		break;
	case TS_AST_MATRIX_SELECTOR: {
		const struct ts_ast *vs = n->matrix.vs;
		sb_selector(b, vs);
		sb_put(b, "[", 1);
		sb_duration(b, n->matrix.range_ms);
		sb_put(b, "]", 1);
		sb_at_offset(b, vs->vs.at, vs->vs.at_ms, vs->vs.offset_ms);
		break;
	}
	case TS_AST_SUBQUERY:
		print_node(b, n->subquery.expr);
		sb_subquery_suffix(b, n);
		break;
	case TS_AST_BINARY: print_binary(b, n); break;
	case TS_AST_AGGREGATE:
		sb_agg_head(b, n);
		sb_put(b, "(", 1);
		if (n->aggregate.param) {
			print_node(b, n->aggregate.param);
			sb_put(b, ", ", 2);
		}
		print_node(b, n->aggregate.expr);
		sb_put(b, ")", 1);
		break;
	case TS_AST_CALL:
		sb_str(b, n->call.func->name);
		sb_put(b, "(", 1);
		for (size_t i = 0; i < n->call.n_args; i++) {
			if (i)
				sb_put(b, ", ", 2);
			print_node(b, n->call.args[i]);
		}
		sb_put(b, ")", 1);
		break;
	case TS_AST_PAREN:
		sb_put(b, "(", 1);
		print_node(b, n->paren.expr);
		sb_put(b, ")", 1);
		break;
	case TS_AST_UNARY:
		sb_str(b, ts_binop_str(n->unary.op));
		print_node(b, n->unary.expr);
		break;
	}
}

int ts_ast_print(const struct ts_ast *node, char **out)
{
	struct sb b = { 0 };
	*out = NULL;
	if (node)
		print_node(&b, node);
	sb_put(&b, "", 0);
	if (b.oom) {
		ts_free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return 0;
}

/* ---- pretty printing (format_query) ----
 *
 * Prometheus' Pretty(level) (promql/parser/prettier.go): a node whose String() fits in
 * 100 characters prints on one line, indented two spaces per level; a longer one
 * splits: an aggregation as "op [by|without (...)] (" and its parameter and operand one
 * level deeper, ")" on its own line; a binary operation as its operands one level
 * deeper around the operator (with bool and matching) on its own line; a call as its
 * arguments, comma-separated, one level deeper; a parenthesis like a call without a
 * name; a subquery as its inner expression followed by "[range:step]"; a unary operator
 * is glued to its operand. Selectors and literals never split. */

static void sb_indent(struct sb *b, int level)
{
	for (int i = 0; i < level; i++)
		sb_put(b, "  ", 2);
}

/* Whether the node's String() is longer than the line limit. */
static bool needs_split(const struct ts_ast *n)
{
	struct sb t = { 0 };
	print_node(&t, n);
	bool split = t.len > 100;
	ts_free(t.p);
	return split;
}

static void pretty_node(struct sb *b, const struct ts_ast *n, int level);

/* Pretty() of a node into a fresh buffer, leading spaces removed (unary operands). */
static void pretty_trimmed(struct sb *b, const struct ts_ast *n, int level)
{
	struct sb t = { 0 };
	pretty_node(&t, n, level);
	if (t.oom) {
		b->oom = true;
	} else {
		size_t i = 0;
		while (i < t.len && t.p[i] == ' ')
			i++;
		sb_put(b, t.p + i, t.len - i);
	}
	ts_free(t.p);
}

/* "(", the nodes a[0..n) one level deeper on lines of their own, comma-separated, and
 * ")" on a line at this level: a split aggregation's, call's or parenthesis' body. */
static void pretty_args(struct sb *b, const struct ts_ast *const *a, size_t n, int level)
{
	sb_put(b, "(\n", 2);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_put(b, ",\n", 2);
		pretty_node(b, a[i], level + 1);
	}
	sb_put(b, "\n", 1);
	sb_indent(b, level);
	sb_put(b, ")", 1);
}

static void pretty_node(struct sb *b, const struct ts_ast *n, int level)
{
	bool split = needs_split(n);
	switch (n->kind) {
	case TS_AST_AGGREGATE:
		sb_indent(b, level);
		if (!split)
			break;
		sb_agg_head(b, n);
		if (n->aggregate.param) {
			const struct ts_ast *args[2] = { n->aggregate.param, n->aggregate.expr };
			pretty_args(b, args, 2, level);
		} else {
			pretty_args(b, (const struct ts_ast *const *)&n->aggregate.expr, 1, level);
		}
		return;
	case TS_AST_BINARY: {
		if (!split) {
			sb_indent(b, level);
			break;
		}
		pretty_node(b, n->binary.lhs, level + 1);
		sb_put(b, "\n", 1);
		sb_indent(b, level);
		sb_binop(b, n);
		sb_put(b, "\n", 1);
		pretty_node(b, n->binary.rhs, level + 1);
		return;
	}
	case TS_AST_CALL:
		sb_indent(b, level);
		if (!split)
			break;
		sb_str(b, n->call.func->name);
		pretty_args(b, (const struct ts_ast *const *)n->call.args, n->call.n_args, level);
		return;
	case TS_AST_PAREN:
		sb_indent(b, level);
		if (!split)
			break;
		pretty_args(b, (const struct ts_ast *const *)&n->paren.expr, 1, level);
		return;
	case TS_AST_SUBQUERY:
		if (!split) {
			sb_indent(b, level);
			break;
		}
		pretty_node(b, n->subquery.expr, level);
		sb_subquery_suffix(b, n);
		return;
	case TS_AST_UNARY:
		sb_indent(b, level);
		sb_str(b, ts_binop_str(n->unary.op));
		pretty_trimmed(b, n->unary.expr, level);
		return;
	default: /* selectors and literals: never split */ sb_indent(b, level); break;
	}
	print_node(b, n);
}

int ts_ast_pretty(const struct ts_ast *node, char **out)
{
	struct sb b = { 0 };
	*out = NULL;
	if (node)
		pretty_node(&b, node, 0);
	sb_put(&b, "", 0);
	if (b.oom) {
		ts_free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return 0;
}

/* ---- equality ---- */

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool lists_eq(const struct ts_label_list *a, const struct ts_label_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return false;
	return true;
}

static bool matcher_eq(const struct ts_ast_matcher *a, const struct ts_ast_matcher *b)
{
	return a->type == b->type && strcmp(a->name, b->name) == 0 &&
	       a->value_len == b->value_len && memcmp(a->value, b->value, a->value_len) == 0;
}

/* Matchers compare as multisets: the printer sorts them. */
static bool matchers_eq(const struct ts_ast *a, const struct ts_ast *b)
{
	size_t n = a->vs.n_matchers;
	if (n != b->vs.n_matchers)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t in_a = 0, in_b = 0;
		for (size_t j = 0; j < n; j++) {
			in_a += matcher_eq(&a->vs.matchers[i], &a->vs.matchers[j]);
			in_b += matcher_eq(&a->vs.matchers[i], &b->vs.matchers[j]);
		}
		if (in_a != in_b)
			return false;
	}
	return true;
}

static bool num_eq(double x, double y)
{
	if (isnan(x) || isnan(y))
		return isnan(x) && isnan(y);
	return memcmp(&x, &y, sizeof(x)) == 0; /* tells -0 from 0 */
}

bool ts_ast_equal(const struct ts_ast *a, const struct ts_ast *b)
{
	if (!a || !b)
		return a == b;
	if (a->kind != b->kind || a->type != b->type)
		return false;
	switch (a->kind) {
	case TS_AST_NUMBER: return num_eq(a->number.value, b->number.value);
	case TS_AST_STRING:
		return a->string.len == b->string.len &&
		       memcmp(a->string.value, b->string.value, a->string.len) == 0;
	case TS_AST_VECTOR_SELECTOR:
		return str_eq(a->vs.name, b->vs.name) && matchers_eq(a, b) &&
		       a->vs.offset_ms == b->vs.offset_ms && a->vs.at == b->vs.at &&
		       a->vs.at_ms == b->vs.at_ms;
	case TS_AST_MATRIX_SELECTOR:
		return a->matrix.range_ms == b->matrix.range_ms &&
		       ts_ast_equal(a->matrix.vs, b->matrix.vs);
	case TS_AST_SUBQUERY:
		return a->subquery.range_ms == b->subquery.range_ms &&
		       a->subquery.step_ms == b->subquery.step_ms &&
		       a->subquery.offset_ms == b->subquery.offset_ms &&
		       a->subquery.at == b->subquery.at && a->subquery.at_ms == b->subquery.at_ms &&
		       ts_ast_equal(a->subquery.expr, b->subquery.expr);
	case TS_AST_BINARY: {
		const struct ts_vector_matching *x = &a->binary.matching, *y = &b->binary.matching;
		return a->binary.op == b->binary.op &&
		       a->binary.return_bool == b->binary.return_bool && x->card == y->card &&
		       x->on == y->on && lists_eq(&x->labels, &y->labels) &&
		       lists_eq(&x->include, &y->include) &&
		       ts_ast_equal(a->binary.lhs, b->binary.lhs) &&
		       ts_ast_equal(a->binary.rhs, b->binary.rhs);
	}
	case TS_AST_AGGREGATE:
		return a->aggregate.op == b->aggregate.op &&
		       a->aggregate.without == b->aggregate.without &&
		       lists_eq(&a->aggregate.grouping, &b->aggregate.grouping) &&
		       ts_ast_equal(a->aggregate.param, b->aggregate.param) &&
		       ts_ast_equal(a->aggregate.expr, b->aggregate.expr);
	case TS_AST_CALL:
		if (a->call.func != b->call.func || a->call.n_args != b->call.n_args)
			return false;
		for (size_t i = 0; i < a->call.n_args; i++)
			if (!ts_ast_equal(a->call.args[i], b->call.args[i]))
				return false;
		return true;
	case TS_AST_PAREN: return ts_ast_equal(a->paren.expr, b->paren.expr);
	case TS_AST_UNARY:
		return a->unary.op == b->unary.op && ts_ast_equal(a->unary.expr, b->unary.expr);
	}
	return false;
}
