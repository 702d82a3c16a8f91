/*
 * promql_check.c - type checking of a parsed tree, as Prometheus 2.42's checkAST
 * (promql/parser/parse.go), in its order and with its messages: argument counts and
 * types of calls, aggregation parameters, operand types of binary and unary
 * expressions, bool only on comparisons, vector matching only between instant
 * vectors (the matching of a scalar operation is dropped, set operators become
 * many-to-many), group modifiers not on set operators, ON and GROUP labels disjoint,
 * the metric name given once, and a selector with a matcher that does not match "".
 *
 * Runs only on a tree that parsed without error, and stops at the first error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "query/promql_int.h"

static void check(struct parser *p, struct ts_ast *n);

static void expect_type(struct parser *p, struct ts_ast *n, enum ts_value_type want,
			const char *ctx)
{
	check(p, n);
	if (!p->rc && n->type != want)
		ts__promql_fail(p, (size_t)n->pos, "expected type %s in %s, got %s",
				ts_value_type_str(want), ctx, ts_value_type_str(n->type));
}

/* Go's ValueType.String(), used by the subquery message. */
static const char *go_type_name(enum ts_value_type t)
{
	switch (t) {
	case TS_VT_SCALAR: return "scalar";
	case TS_VT_VECTOR: return "vector";
	case TS_VT_MATRIX: return "matrix";
	case TS_VT_STRING: return "string";
	default: return "none";
	}
}

/* Records Prometheus' error when a label is both in on(...) and in group_x(...). */
static bool on_group_clash(struct parser *p, const struct ts_ast *n)
{
	const struct ts_vector_matching *vm = &n->binary.matching;
	if (!vm->on)
		return false;
	for (size_t i = 0; i < vm->labels.n; i++)
		for (size_t j = 0; j < vm->include.n; j++) {
			const char *l = vm->labels.names[i];
			if (strcmp(l, vm->include.names[j]) != 0)
				continue;
			char q[200];
			ts__promql_quote(q, sizeof(q), l, strlen(l), 0);
			ts__promql_fail(p, (size_t)n->binary.op_pos,
					"label %s must not occur in ON and GROUP clause at once",
					q);
			return true;
		}
	return false;
}

/* An operand of a binary expression must be a scalar or an instant vector. */
static bool bad_operand(struct parser *p, const struct ts_ast *o)
{
	if (o->type == TS_VT_SCALAR || o->type == TS_VT_VECTOR)
		return false;
	ts__promql_fail(p, (size_t)o->pos,
			"binary expression must contain only scalar and instant vector types");
	return true;
}

static void check_binary(struct parser *p, struct ts_ast *n)
{
	struct ts_vector_matching *vm = &n->binary.matching;
	enum ts_binop op = n->binary.op;
	check(p, n->binary.lhs);
	check(p, n->binary.rhs);
	if (p->rc)
		return;
	enum ts_value_type lt = n->binary.lhs->type, rt = n->binary.rhs->type;
	if (n->binary.return_bool && !TS_OP_IS_COMPARISON(op)) {
		ts__promql_fail(p, (size_t)n->binary.op_pos,
				"bool modifier can only be used on comparison operators");
		return;
	}
	if (TS_OP_IS_COMPARISON(op) && !n->binary.return_bool && lt == TS_VT_SCALAR &&
	    rt == TS_VT_SCALAR) {
		ts__promql_fail(p, (size_t)n->binary.op_pos,
				"comparisons between scalars must use BOOL modifier");
		return;
	}
	if (TS_OP_IS_SET(op) && vm->card == TS_CARD_ONE_TO_ONE)
		vm->card = TS_CARD_MANY_TO_MANY;
	if (on_group_clash(p, n) || bad_operand(p, n->binary.lhs) || bad_operand(p, n->binary.rhs))
		return;
	if (lt != TS_VT_VECTOR || rt != TS_VT_VECTOR) {
		if (vm->labels.n > 0) {
			ts__promql_fail(p, (size_t)n->pos,
					"vector matching only allowed between instant vectors");
			return;
		}
		/* Prometheus drops the matching: it means nothing with a scalar. */
		ts_label_list_fini(&vm->labels);
		ts_label_list_fini(&vm->include);
		vm->on = false;
		vm->card = TS_CARD_ONE_TO_ONE;
	} else if (TS_OP_IS_SET(op) &&
		   (vm->card == TS_CARD_ONE_TO_MANY || vm->card == TS_CARD_MANY_TO_ONE)) {
		ts__promql_fail(p, (size_t)n->pos, "no grouping allowed for \"%s\" operation",
				ts_binop_str(op));
		return;
	}
	if ((lt == TS_VT_SCALAR || rt == TS_VT_SCALAR) && TS_OP_IS_SET(op))
		ts__promql_fail(p, (size_t)n->pos,
				"set operator \"%s\" not allowed in binary scalar expression",
				ts_binop_str(op));
}

static void check_call(struct parser *p, struct ts_ast *n)
{
	const struct ts_function *f = n->call.func;
	size_t na = n->call.n_args;
	char ctx[64];
	if (f->variadic == 0) {
		if ((size_t)f->n_args != na) {
			ts__promql_fail(p, (size_t)n->pos,
					"expected %d argument(s) in call to \"%s\", got %zu",
					f->n_args, f->name, na);
			return;
		}
	} else {
		size_t min = (size_t)f->n_args - 1;
		if (min > na) {
			ts__promql_fail(
				p, (size_t)n->pos,
				"expected at least %zu argument(s) in call to \"%s\", got %zu", min,
				f->name, na);
			return;
		}
		if (f->variadic > 0 && min + (size_t)f->variadic < na) {
			ts__promql_fail(
				p, (size_t)n->pos,
				"expected at most %zu argument(s) in call to \"%s\", got %zu",
				min + (size_t)f->variadic, f->name, na);
			return;
		}
	}
	snprintf(ctx, sizeof(ctx), "call to function \"%s\"", f->name);
	for (size_t i = 0; i < na && !p->rc; i++) {
		size_t k = i < (size_t)f->n_args ? i : (size_t)f->n_args - 1;
		expect_type(p, n->call.args[i], f->arg_types[k], ctx);
	}
}

static void check_selector(struct parser *p, struct ts_ast *n)
{
	size_t nm = n->vs.n_matchers;
	if (n->vs.name) {
		/* The last matcher is the name given outside the braces. */
		for (size_t i = 0; i + 1 < nm; i++)
			if (strcmp(n->vs.matchers[i].name, "__name__") == 0) {
				char a[96], b[96];
				ts__promql_quote(a, sizeof(a), n->vs.name, strlen(n->vs.name), 0);
				ts__promql_quote(b, sizeof(b), n->vs.matchers[i].value,
						 n->vs.matchers[i].value_len, 0);
				ts__promql_fail(p, (size_t)n->pos,
						"metric name must not be set twice: %s or %s", a,
						b);
				return;
			}
		return;
	}
	for (size_t i = 0; i < nm; i++)
		if (!n->vs.matchers[i].matches_empty)
			return;
	ts__promql_fail(p, (size_t)n->pos,
			"vector selector must contain at least one non-empty matcher");
}

static void check(struct parser *p, struct ts_ast *n)
{
	if (p->rc)
		return;
	switch (n->kind) {
	case TS_AST_AGGREGATE:
		expect_type(p, n->aggregate.expr, TS_VT_VECTOR, "aggregation expression");
		if (n->aggregate.op == TS_AGG_COUNT_VALUES)
			expect_type(p, n->aggregate.param, TS_VT_STRING, "aggregation parameter");
		else if (n->aggregate.param)
			expect_type(p, n->aggregate.param, TS_VT_SCALAR, "aggregation parameter");
		break;
	case TS_AST_BINARY: check_binary(p, n); break;
	case TS_AST_CALL: check_call(p, n); break;
	case TS_AST_PAREN: check(p, n->paren.expr); break;
	case TS_AST_UNARY:
		check(p, n->unary.expr);
		if (!p->rc && n->type != TS_VT_SCALAR && n->type != TS_VT_VECTOR)
			ts__promql_fail(
				p, (size_t)n->pos,
				"unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
				ts_value_type_str(n->type));
		break;
	case TS_AST_SUBQUERY:
		check(p, n->subquery.expr);
		if (!p->rc && n->subquery.expr->type != TS_VT_VECTOR)
			ts__promql_fail(
				p, (size_t)n->pos,
				"subquery is only allowed on instant vector, got %s instead",
				go_type_name(n->subquery.expr->type));
		break;
	case TS_AST_MATRIX_SELECTOR: check(p, n->matrix.vs); break;
	case TS_AST_VECTOR_SELECTOR: check_selector(p, n); break;
	case TS_AST_NUMBER:
	case TS_AST_STRING: break;
	}
}

void ts__promql_check(struct parser *p, struct ts_ast *root)
{
	check(p, root);
}
