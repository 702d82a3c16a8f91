/*
 * promql.c - the PromQL grammar: a recursive-descent / precedence-climbing parser
 * that accepts the language of Prometheus 2.42's yacc grammar (generated_parser.y),
 * and ts_promql_parse(), which runs it and then the type checks (promql_check.c).
 *
 * How the yacc precedences map onto this parser:
 *   or < and,unless < comparisons < + - < * / % atan2 < ^ (right-assoc)
 *   unary +/- binds like '*' and its operand may contain only '^' operators, so
 *   "-1 ^ 2" is -(1 ^ 2) and "-a * b" is (-a) * b; a unary sign on a number
 *   literal folds into the literal (Prometheus does the same);
 *   "[range]", "[range:step]", "offset" and "@" are postfix and bind tightest, to
 *   the closest operand ("a + b offset 1m" offsets b), chained left to right.
 * Two phases, as in Prometheus: parsing stops at the first syntax error or at the
 * first error Prometheus raises while reducing (unknown function, bad duration,
 * range on a non-selector, repeated offset, ...); only a tree without such errors
 * is type-checked, and checking stops at the first error in Prometheus' order.
 *
 * Literal values come from promql_literal.c, regex validation from promql_regex.c,
 * error wording from promql_error.c (see promql_int.h).
 *
 * Ownership: every parse_* function returns an owned node or NULL with p->rc set;
 * on failure it frees whatever it built.
 *
 * Invariants: p->rc != 0 means an error is recorded and nothing more is parsed;
 * recursion depth <= TS_PROMQL_MAX_DEPTH; tree height <= MAX_HEIGHT.
 */
#include "query/promql.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/promql_int.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/tsdb.h"

/* Bounds the recursion of every tree walk (print, equal, free, evaluation). */
#define MAX_HEIGHT 2000

static void advance(struct parser *p)
{
	ts_promql_lex_next(&p->lx, &p->tok);
	if (p->tok.type == TS_TOK_ERROR)
		ts__promql_fail(p, p->lx.err_pos, "%s", p->lx.err);
}

/* Is the lookahead t? If not, reports it as unexpected (in ctx, expecting exp). */
static bool want(struct parser *p, enum ts_promql_tok t, const char *ctx, const char *exp)
{
	if (p->tok.type == t)
		return true;
	ts__promql_unexpected(p, ctx, exp);
	return false;
}

/* Node heights bound every recursive walk of the tree. */
static bool set_height(struct parser *p, struct ts_ast *n, const struct ts_ast *child)
{
	if (child && child->height + 1 > n->height)
		n->height = child->height + 1;
	if (n->height > MAX_HEIGHT) {
		ts__promql_fail(p, (size_t)n->pos, "expression nested too deeply");
		return false;
	}
	return true;
}

static struct ts_ast *new_node(struct parser *p, enum ts_ast_kind kind, size_t pos)
{
	struct ts_ast *n = ts_ast_new(kind, (int)pos);
	if (!n)
		ts__promql_nomem(p);
	return n;
}

/* ---- selectors ---- */

static int push_matcher(struct parser *p, struct ts_ast *vs, enum ts_match_type type,
			const char *name, size_t name_len, char *value, size_t value_len)
{
	struct ts_ast_matcher *m = ts_realloc(vs->vs.matchers,
					      (vs->vs.n_matchers + 1) * sizeof(*m));
	if (!m) {
		ts_free(value);
		ts__promql_nomem(p);
		return -1;
	}
	vs->vs.matchers = m;
	m += vs->vs.n_matchers;
	memset(m, 0, sizeof(*m));
	m->name = ts_strndup(name, name_len);
	if (!m->name) {
		ts_free(value);
		ts__promql_nomem(p);
		return -1;
	}
	m->type = type;
	m->value = value;
	m->value_len = value_len;
	vs->vs.n_matchers++;
	switch (type) {
	case TS_MATCH_EQ: m->matches_empty = value_len == 0; break;
	case TS_MATCH_NEQ: m->matches_empty = value_len != 0; break;
	default: break;
	}
	return 0;
}

/* label_matchers: '{' [matcher {',' matcher} [',']] '}'; the lookahead is '{'. */
static int parse_matchers(struct parser *p, struct ts_ast *vs)
{
	advance(p);
	if (p->tok.type == TS_TOK_RBRACE) {
		advance(p);
		return p->rc ? -1 : 0;
	}
	for (;;) {
		if (!want(p, TS_TOK_IDENT, "label matching", "identifier or \"}\""))
			return -1;
		struct ts_promql_token name = p->tok;
		advance(p);
		enum ts_match_type type;
		switch (p->tok.type) {
		case TS_TOK_EQL: type = TS_MATCH_EQ; break;
		case TS_TOK_NEQ: type = TS_MATCH_NEQ; break;
		case TS_TOK_EQL_REGEX: type = TS_MATCH_RE; break;
		case TS_TOK_NEQ_REGEX: type = TS_MATCH_NRE; break;
		default:
			ts__promql_unexpected(p, "label matching", "label matching operator");
			return -1;
		}
		advance(p);
		if (!want(p, TS_TOK_STRING, "label matching", "string"))
			return -1;
		/* Prometheus builds (and validates) the matcher before it reads on. */
		struct ts_promql_token value = p->tok;
		size_t vlen;
		char *v = ts__promql_unquote(p, &value, &vlen);
		if (!v)
			return -1;
		if (push_matcher(p, vs, type, p->q + name.pos, name.len, v, vlen))
			return -1;
		if (type == TS_MATCH_RE || type == TS_MATCH_NRE) {
			struct ts_ast_matcher *m = &vs->vs.matchers[vs->vs.n_matchers - 1];
			bool empty;
			if (ts__promql_regex_check(p, v, vlen, name.pos, &empty))
				return -1;
			m->matches_empty = type == TS_MATCH_RE ? empty : !empty;
		}
		advance(p);
		if (p->tok.type == TS_TOK_COMMA) {
			advance(p);
			if (p->tok.type == TS_TOK_RBRACE) {
				advance(p);
				break;
			}
			continue;
		}
		if (p->tok.type == TS_TOK_RBRACE) {
			advance(p);
			break;
		}
		ts__promql_unexpected(p, "label matching", "\",\" or \"}\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

/* A vector selector: `name` is the metric identifier token already consumed (or
 * NULL); the lookahead may be '{'. */
static struct ts_ast *parse_selector(struct parser *p, const struct ts_promql_token *name,
				     size_t pos)
{
	struct ts_ast *vs = new_node(p, TS_AST_VECTOR_SELECTOR, pos);
	if (!vs)
		return NULL;
	vs->type = TS_VT_VECTOR;
	if (p->tok.type == TS_TOK_LBRACE && parse_matchers(p, vs))
		goto err;
	if (name) {
		const char *s = p->q + name->pos;
		char *v;
		vs->vs.name = ts_strndup(s, name->len);
		v = ts_strndup(s, name->len);
		if (!vs->vs.name || !v) {
			ts_free(v);
			ts__promql_nomem(p);
			goto err;
		}
		if (push_matcher(p, vs, TS_MATCH_EQ, "__name__", 8, v, name->len))
			goto err;
	}
	return vs;
err:
	ts_ast_free(vs);
	return NULL;
}

/* ---- lists ---- */

static bool maybe_label(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_IDENT:
	case TS_TOK_METRIC_IDENT:
	case TS_TOK_BOOL:
	case TS_TOK_BY:
	case TS_TOK_GROUP_LEFT:
	case TS_TOK_GROUP_RIGHT:
	case TS_TOK_IGNORING:
	case TS_TOK_LAND:
	case TS_TOK_LOR:
	case TS_TOK_LUNLESS:
	case TS_TOK_OFFSET:
	case TS_TOK_ON:
	case TS_TOK_START:
	case TS_TOK_END:
	case TS_TOK_ATAN2: return true;
	default:
		/* WITHOUT is missing from Prometheus' maybe_label, so it is here too. */
		return TS_TOK_IS_AGGREGATOR(t);
	}
}

/* grouping_labels: '(' [label {',' label} [',']] ')'. Returns with the ')' still
 * the lookahead: Prometheus reduces what it closes before reading on, so callers
 * raise their errors first and then advance. */
static int parse_grouping(struct parser *p, struct ts_label_list *l)
{
	if (!want(p, TS_TOK_LPAREN, "grouping opts", "\"(\""))
		return -1;
	advance(p);
	if (p->tok.type == TS_TOK_RPAREN)
		return p->rc ? -1 : 0;
	for (;;) {
		if (!maybe_label(p->tok.type) || p->tok.type == TS_TOK_METRIC_IDENT) {
			ts__promql_unexpected(p, "grouping opts", "label");
			return -1;
		}
		if (ts_label_list_push(l, ts__promql_tok_text(p), p->tok.len)) {
			ts__promql_nomem(p);
			return -1;
		}
		advance(p);
		if (p->tok.type == TS_TOK_COMMA) {
			advance(p);
			if (p->tok.type == TS_TOK_RPAREN)
				break;
			continue;
		}
		if (p->tok.type == TS_TOK_RPAREN)
			break;
		ts__promql_unexpected(p, "grouping opts", "\",\" or \")\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

/* Tokens other than IDENT that begin a selector when an expression starts with them: a
 * metric name with ':' and the keywords that may name a metric. */
static bool names_metric(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_METRIC_IDENT:
	case TS_TOK_BY:
	case TS_TOK_WITHOUT:
	case TS_TOK_LAND:
	case TS_TOK_LOR:
	case TS_TOK_LUNLESS:
	case TS_TOK_OFFSET:
	case TS_TOK_START:
	case TS_TOK_END: return true;
	default: return false;
	}
}

/* Tokens that can begin an expression. */
static bool starts_expr(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_NUMBER:
	case TS_TOK_STRING:
	case TS_TOK_LPAREN:
	case TS_TOK_LBRACE:
	case TS_TOK_IDENT:
	case TS_TOK_ADD:
	case TS_TOK_SUB: return true;
	default: return names_metric(t) || TS_TOK_IS_AGGREGATOR(t);
	}
}

static struct ts_ast *parse_expr(struct parser *p, int min_prec);

/* function_call_body: '(' [expr {',' expr}] ')'; the lookahead is '('. On success
 * *args is an owned array (possibly NULL when empty) and the ')' is still the
 * lookahead (see parse_grouping). */
static int parse_args(struct parser *p, struct ts_ast ***args, size_t *n_args)
{
	struct ts_ast **a = NULL;
	size_t n = 0;
	advance(p);
	if (p->tok.type == TS_TOK_RPAREN)
		goto out;
	for (;;) {
		struct ts_ast *e = parse_expr(p, 0);
		if (!e)
			goto out;
		struct ts_ast **na = ts_realloc(a, (n + 1) * sizeof(*na));
		if (!na) {
			ts_ast_free(e);
			ts__promql_nomem(p);
			goto out;
		}
		a = na;
		a[n++] = e;
		if (p->tok.type == TS_TOK_COMMA) {
			size_t comma = p->tok.pos;
			advance(p);
			/* Prometheus' grammar takes any comma not followed by an argument
			 * as a trailing one, as in "f(a,)" and "f(a,,b)". */
			if (!starts_expr(p->tok.type)) {
				ts__promql_fail(
					p, comma,
					"trailing commas not allowed in function call args");
				goto out;
			}
			continue;
		}
		if (p->tok.type == TS_TOK_RPAREN)
			break;
		ts__promql_unexpected(p, NULL, NULL);
		goto out;
	}
out:
	if (p->rc) {
		for (size_t i = 0; i < n; i++)
			ts_ast_free(a[i]);
		ts_free(a);
		return -1;
	}
	*args = a;
	*n_args = n;
	return 0;
}

static struct ts_ast *parse_call(struct parser *p, const struct ts_promql_token *name)
{
	struct ts_ast *n = new_node(p, TS_AST_CALL, name->pos);
	if (!n)
		return NULL;
	if (parse_args(p, &n->call.args, &n->call.n_args))
		goto err;
	n->call.func = ts_function_lookup(p->q + name->pos, name->len);
	if (!n->call.func) {
		char q[200];
		ts__promql_quote(q, sizeof(q), p->q + name->pos, name->len, 0);
		ts__promql_fail(p, name->pos, "unknown function with name %s", q);
		goto err;
	}
	advance(p);
	if (p->rc)
		goto err;
	n->type = n->call.func->return_type;
	for (size_t i = 0; i < n->call.n_args; i++)
		if (!set_height(p, n, n->call.args[i]))
			goto err;
	return n;
err:
	ts_ast_free(n);
	return NULL;
}

static enum ts_aggop aggop_of(enum ts_promql_tok t)
{
	switch (t) {
	case TS_TOK_SUM: return TS_AGG_SUM;
	case TS_TOK_AVG: return TS_AGG_AVG;
	case TS_TOK_MIN: return TS_AGG_MIN;
	case TS_TOK_MAX: return TS_AGG_MAX;
	case TS_TOK_COUNT: return TS_AGG_COUNT;
	case TS_TOK_GROUP: return TS_AGG_GROUP;
	case TS_TOK_STDDEV: return TS_AGG_STDDEV;
	case TS_TOK_STDVAR: return TS_AGG_STDVAR;
	case TS_TOK_TOPK: return TS_AGG_TOPK;
	case TS_TOK_BOTTOMK: return TS_AGG_BOTTOMK;
	case TS_TOK_QUANTILE: return TS_AGG_QUANTILE;
	default: return TS_AGG_COUNT_VALUES;
	}
}

static bool aggop_has_param(enum ts_aggop op)
{
	return op == TS_AGG_TOPK || op == TS_AGG_BOTTOMK || op == TS_AGG_QUANTILE ||
	       op == TS_AGG_COUNT_VALUES;
}

/* aggregate_expr; the aggregator token is consumed, the lookahead is '(', by or
 * without. */
static struct ts_ast *parse_aggregate(struct parser *p, const struct ts_promql_token *op)
{
	struct ts_ast **args = NULL;
	size_t n_args = 0;
	bool modifier = false;
	struct ts_ast *n = new_node(p, TS_AST_AGGREGATE, op->pos);
	if (!n)
		return NULL;
	n->type = TS_VT_VECTOR;
	n->aggregate.op = aggop_of(op->type);
	if (p->tok.type == TS_TOK_BY || p->tok.type == TS_TOK_WITHOUT) {
		n->aggregate.without = p->tok.type == TS_TOK_WITHOUT;
		modifier = true;
		advance(p);
		if (parse_grouping(p, &n->aggregate.grouping))
			goto err;
		advance(p);
		if (!want(p, TS_TOK_LPAREN, "aggregation", NULL))
			goto err;
	}
	p->agg_depth++;
	int rc = parse_args(p, &args, &n_args);
	p->agg_depth--;
	if (rc)
		goto err;
	/* Whatever closes the aggregation is still the lookahead (see parse_grouping),
	 * except after "sum(x)", where a following by/without had to be looked for. */
	bool closing = true;
	if (!modifier) {
		advance(p);
		closing = p->tok.type == TS_TOK_BY || p->tok.type == TS_TOK_WITHOUT;
		if (closing) {
			n->aggregate.without = p->tok.type == TS_TOK_WITHOUT;
			advance(p);
			if (parse_grouping(p, &n->aggregate.grouping))
				goto err;
		}
	}
	if (n_args == 0) {
		ts__promql_fail(p, op->pos, "no arguments for aggregate expression provided");
		goto err;
	}
	size_t want = aggop_has_param(n->aggregate.op) ? 2 : 1;
	if (n_args != want) {
		ts__promql_fail(
			p, op->pos,
			"wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
			want, n_args);
		goto err;
	}
	n->aggregate.expr = args[want - 1];
	n->aggregate.param = want == 2 ? args[0] : NULL;
	ts_free(args);
	args = NULL;
	n_args = 0;
	if (closing)
		advance(p);
	if (p->rc)
		goto err;
	if (!set_height(p, n, n->aggregate.expr) || !set_height(p, n, n->aggregate.param))
		goto err;
	return n;
err:
	for (size_t i = 0; i < n_args; i++)
		ts_ast_free(args[i]);
	ts_free(args);
	ts_ast_free(n);
	return NULL;
}

/* ---- primary and postfix ---- */

static struct ts_ast *parse_primary(struct parser *p)
{
	struct ts_promql_token t = p->tok;
	struct ts_ast *n, *e;
	switch (t.type) {
	case TS_TOK_NUMBER: {
		double v;
		if (ts__promql_number(p, p->q + t.pos, t.len, t.pos, &v))
			return NULL;
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_NUMBER, t.pos)))
			return NULL;
		n->type = TS_VT_SCALAR;
		n->number.value = v;
		return n;
	}
	case TS_TOK_STRING:
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_STRING, t.pos)))
			return NULL;
		n->type = TS_VT_STRING;
		n->string.value = ts__promql_unquote(p, &t, &n->string.len);
		if (!n->string.value) {
			ts_ast_free(n);
			return NULL;
		}
		return n;
	case TS_TOK_LPAREN:
		advance(p);
		if (!(e = parse_expr(p, 0)))
			return NULL;
		if (p->tok.type != TS_TOK_RPAREN) {
			ts__promql_unexpected(p, NULL, NULL);
			ts_ast_free(e);
			return NULL;
		}
		advance(p);
		if (p->rc || !(n = new_node(p, TS_AST_PAREN, t.pos))) {
			ts_ast_free(e);
			return NULL;
		}
		n->type = e->type;
		n->paren.expr = e;
		if (!set_height(p, n, e)) {
			ts_ast_free(n);
			return NULL;
		}
		return n;
	case TS_TOK_LBRACE: return parse_selector(p, NULL, t.pos);
	case TS_TOK_IDENT:
		advance(p);
		if (p->tok.type == TS_TOK_LPAREN)
			return parse_call(p, &t);
		return p->rc ? NULL : parse_selector(p, &t, t.pos);
	default: break;
	}
	if (names_metric(t.type)) {
		advance(p);
		return p->rc ? NULL : parse_selector(p, &t, t.pos);
	}
	if (TS_TOK_IS_AGGREGATOR(t.type)) {
		advance(p);
		if (p->tok.type == TS_TOK_LPAREN || p->tok.type == TS_TOK_BY ||
		    p->tok.type == TS_TOK_WITHOUT)
			return parse_aggregate(p, &t);
		/* Not followed by '(', by or without: a metric called "sum". */
		return p->rc ? NULL : parse_selector(p, &t, t.pos);
	}
	ts__promql_unexpected(p, NULL, NULL);
	return NULL;
}

/* '[' DURATION (']' | ':' [DURATION] ']'); the lookahead is '['. Consumes e. */
static struct ts_ast *parse_range(struct parser *p, struct ts_ast *e)
{
	size_t lbracket = p->tok.pos;
	int64_t range_ms, step_ms = 0;
	struct ts_ast *n = NULL;
	advance(p);
	if (!want(p, TS_TOK_DURATION, "subquery selector", "duration"))
		goto err;
	if (ts__promql_duration(p, &p->tok, &range_ms))
		goto err;
	advance(p);
	if (p->tok.type == TS_TOK_RBRACKET) {
		if (e->kind != TS_AST_VECTOR_SELECTOR) {
			ts__promql_fail(p, lbracket, "ranges only allowed for vector selectors");
			goto err;
		}
		if (e->vs.offset_ms) {
			ts__promql_fail(p, lbracket, "no offset modifiers allowed before range");
			goto err;
		}
		if (e->vs.at) {
			ts__promql_fail(p, lbracket, "no @ modifiers allowed before range");
			goto err;
		}
		if (!(n = new_node(p, TS_AST_MATRIX_SELECTOR, (size_t)e->pos)))
			goto err;
		n->type = TS_VT_MATRIX;
		n->matrix.vs = e;
		n->matrix.range_ms = range_ms;
		advance(p);
		if (p->rc || !set_height(p, n, e))
			goto err_n;
		return n;
	}
	if (!want(p, TS_TOK_COLON, "subquery or range", "\":\" or \"]\""))
		goto err;
	advance(p);
	if (p->tok.type == TS_TOK_DURATION) {
		if (ts__promql_duration(p, &p->tok, &step_ms))
			goto err;
		advance(p);
		if (!want(p, TS_TOK_RBRACKET, "subquery selector", "\"]\""))
			goto err;
	} else if (p->tok.type != TS_TOK_RBRACKET) {
		ts__promql_unexpected(p, "subquery selector", "duration or \"]\"");
		goto err;
	}
	advance(p);
	if (p->rc || !(n = new_node(p, TS_AST_SUBQUERY, (size_t)e->pos)))
		goto err;
	n->type = TS_VT_MATRIX;
	n->subquery.expr = e;
	n->subquery.range_ms = range_ms;
	n->subquery.step_ms = step_ms;
	if (!set_height(p, n, e))
		goto err_n;
	return n;
err_n:
	ts_ast_free(n);
	return NULL;
err:
	ts_ast_free(e);
	return NULL;
}

/* Where the offset/@ of e lives; NULL (error recorded) when e cannot take one. */
static int64_t *offset_slot(struct parser *p, struct ts_ast *e)
{
	switch (e->kind) {
	case TS_AST_VECTOR_SELECTOR: return &e->vs.offset_ms;
	case TS_AST_MATRIX_SELECTOR: return &e->matrix.vs->vs.offset_ms;
	case TS_AST_SUBQUERY: return &e->subquery.offset_ms;
	default:
		ts__promql_fail(p, (size_t)e->pos,
				"offset modifier must be preceded by an instant vector "
				"selector or range vector selector or a subquery");
		return NULL;
	}
}

static bool at_slot(struct parser *p, struct ts_ast *e, enum ts_at **at, int64_t **at_ms)
{
	switch (e->kind) {
	case TS_AST_VECTOR_SELECTOR: *at = &e->vs.at, *at_ms = &e->vs.at_ms; break;
	case TS_AST_MATRIX_SELECTOR:
		*at = &e->matrix.vs->vs.at, *at_ms = &e->matrix.vs->vs.at_ms;
		break;
	case TS_AST_SUBQUERY: *at = &e->subquery.at, *at_ms = &e->subquery.at_ms; break;
	default:
		ts__promql_fail(p, (size_t)e->pos,
				"@ modifier must be preceded by an instant vector selector "
				"or range vector selector or a subquery");
		return false;
	}
	if (**at) {
		ts__promql_fail(p, (size_t)e->pos, "@ <timestamp> may not be set multiple times");
		return false;
	}
	return true;
}

static int parse_at(struct parser *p, struct ts_ast *e)
{
	enum ts_at *at;
	int64_t *at_ms;
	advance(p);
	if (p->tok.type == TS_TOK_START || p->tok.type == TS_TOK_END) {
		enum ts_at which = p->tok.type == TS_TOK_START ? TS_AT_START : TS_AT_END;
		advance(p);
		if (!want(p, TS_TOK_LPAREN, "@", "timestamp"))
			return -1;
		advance(p);
		if (!want(p, TS_TOK_RPAREN, "@", "timestamp"))
			return -1;
		if (!at_slot(p, e, &at, &at_ms))
			return -1;
		*at = which;
		advance(p);
		return p->rc ? -1 : 0;
	}
	bool neg = false;
	if (p->tok.type == TS_TOK_ADD || p->tok.type == TS_TOK_SUB) {
		neg = p->tok.type == TS_TOK_SUB;
		advance(p);
	}
	if (!want(p, TS_TOK_NUMBER, "@", "timestamp"))
		return -1;
	struct ts_promql_token num = p->tok;
	double ts;
	if (ts__promql_number(p, p->q + num.pos, num.len, num.pos, &ts))
		return -1;
	if (neg)
		ts = -ts;
	if (isnan(ts) || isinf(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0) {
		if (isnan(ts) || isinf(ts))
			ts__promql_fail(p, (size_t)e->pos,
					"timestamp out of bounds for @ modifier: %s",
					isnan(ts) ? "NaN"
					: ts > 0  ? "+Inf"
						  : "-Inf");
		else
			ts__promql_fail(p, (size_t)e->pos,
					"timestamp out of bounds for @ modifier: %f", ts);
		return -1;
	}
	if (!at_slot(p, e, &at, &at_ms))
		return -1;
	*at = TS_AT_TIMESTAMP;
	*at_ms = ts__promql_at_millis(p->q + num.pos, num.len, neg, ts);
	advance(p);
	return p->rc ? -1 : 0;
}

static int parse_offset(struct parser *p, struct ts_ast *e)
{
	bool neg = false;
	int64_t d;
	advance(p);
	if (p->tok.type == TS_TOK_SUB) {
		neg = true;
		advance(p);
	}
	if (!want(p, TS_TOK_DURATION, "offset", "duration"))
		return -1;
	if (ts__promql_duration(p, &p->tok, &d))
		return -1;
	int64_t *slot = offset_slot(p, e);
	if (!slot)
		return -1;
	if (*slot) {
		ts__promql_fail(p, (size_t)e->pos, "offset may not be set multiple times");
		return -1;
	}
	*slot = neg ? -d : d;
	advance(p);
	return p->rc ? -1 : 0;
}

static struct ts_ast *parse_postfix(struct parser *p)
{
	struct ts_ast *e = parse_primary(p);
	while (e) {
		if (p->tok.type == TS_TOK_LBRACKET) {
			e = parse_range(p, e);
		} else if (p->tok.type == TS_TOK_OFFSET || p->tok.type == TS_TOK_AT) {
			int rc = p->tok.type == TS_TOK_OFFSET ? parse_offset(p, e) : parse_at(p, e);
			if (rc) {
				ts_ast_free(e);
				return NULL;
			}
		} else {
			break;
		}
	}
	return e;
}

/* ---- operators ---- */

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

static int binop_of(enum ts_promql_tok t, enum ts_binop *op)
{
	switch (t) {
	case TS_TOK_LOR: *op = TS_OP_OR; return PREC_OR;
	case TS_TOK_LAND: *op = TS_OP_AND; return PREC_AND;
	case TS_TOK_LUNLESS: *op = TS_OP_UNLESS; return PREC_AND;
	case TS_TOK_EQLC: *op = TS_OP_EQLC; return PREC_CMP;
	case TS_TOK_NEQ: *op = TS_OP_NEQ; return PREC_CMP;
	case TS_TOK_GTR: *op = TS_OP_GTR; return PREC_CMP;
	case TS_TOK_LSS: *op = TS_OP_LSS; return PREC_CMP;
	case TS_TOK_GTE: *op = TS_OP_GTE; return PREC_CMP;
	case TS_TOK_LTE: *op = TS_OP_LTE; return PREC_CMP;
	case TS_TOK_ADD: *op = TS_OP_ADD; return PREC_ADD;
	case TS_TOK_SUB: *op = TS_OP_SUB; return PREC_ADD;
	case TS_TOK_MUL: *op = TS_OP_MUL; return PREC_MUL;
	case TS_TOK_DIV: *op = TS_OP_DIV; return PREC_MUL;
	case TS_TOK_MOD: *op = TS_OP_MOD; return PREC_MUL;
	case TS_TOK_ATAN2: *op = TS_OP_ATAN2; return PREC_MUL;
	case TS_TOK_POW: *op = TS_OP_POW; return PREC_POW;
	default: return 0;
	}
}

static struct ts_ast *parse_unary(struct parser *p)
{
	if (p->tok.type != TS_TOK_ADD && p->tok.type != TS_TOK_SUB)
		return parse_postfix(p);
	struct ts_promql_token t = p->tok;
	advance(p);
	/* The operand is everything that binds tighter than '*', i.e. '^' chains. */
	struct ts_ast *e = parse_expr(p, PREC_POW);
	if (!e)
		return NULL;
	if (e->kind == TS_AST_NUMBER) {
		if (t.type == TS_TOK_SUB)
			e->number.value = -e->number.value;
		e->pos = (int)t.pos;
		return e;
	}
	struct ts_ast *n = new_node(p, TS_AST_UNARY, t.pos);
	if (!n) {
		ts_ast_free(e);
		return NULL;
	}
	n->type = e->type;
	n->unary.op = t.type == TS_TOK_SUB ? TS_OP_SUB : TS_OP_ADD;
	n->unary.expr = e;
	if (!set_height(p, n, e)) {
		ts_ast_free(n);
		return NULL;
	}
	return n;
}

/* bool, on/ignoring (...), group_left/group_right [(...)] after an operator. */
static int parse_bin_modifiers(struct parser *p, struct ts_ast *n)
{
	struct ts_vector_matching *vm = &n->binary.matching;
	if (p->tok.type == TS_TOK_BOOL) {
		n->binary.return_bool = true;
		advance(p);
	}
	if (p->tok.type != TS_TOK_ON && p->tok.type != TS_TOK_IGNORING)
		return p->rc ? -1 : 0;
	vm->on = p->tok.type == TS_TOK_ON;
	advance(p);
	if (parse_grouping(p, &vm->labels))
		return -1;
	advance(p);
	if (p->tok.type != TS_TOK_GROUP_LEFT && p->tok.type != TS_TOK_GROUP_RIGHT)
		return p->rc ? -1 : 0;
	vm->card = p->tok.type == TS_TOK_GROUP_LEFT ? TS_CARD_MANY_TO_ONE : TS_CARD_ONE_TO_MANY;
	advance(p);
	if (p->tok.type == TS_TOK_LPAREN) {
		if (parse_grouping(p, &vm->include))
			return -1;
		advance(p);
	} else if (!starts_expr(p->tok.type)) {
		/* Prometheus' grammar tries a label list here first. */
		ts__promql_unexpected(p, "grouping opts", "\"(\"");
		return -1;
	}
	return p->rc ? -1 : 0;
}

static struct ts_ast *parse_expr(struct parser *p, int min_prec)
{
	struct ts_ast *lhs = NULL;
	if (++p->depth > TS_PROMQL_MAX_DEPTH) {
		ts__promql_fail(p, p->tok.pos, "expression nested too deeply");
		goto out;
	}
	lhs = parse_unary(p);
	while (lhs) {
		enum ts_binop op;
		int prec = binop_of(p->tok.type, &op);
		if (!prec || prec < min_prec)
			break;
		struct ts_ast *n = new_node(p, TS_AST_BINARY, (size_t)lhs->pos);
		if (!n) {
			ts_ast_free(lhs);
			lhs = NULL;
			break;
		}
		n->binary.op = op;
		n->binary.op_pos = (int)p->tok.pos;
		n->binary.lhs = lhs;
		lhs = n;
		advance(p);
		if (parse_bin_modifiers(p, n))
			goto fail;
		/* '^' is right-associative, everything else left. */
		n->binary.rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
		if (!n->binary.rhs)
			goto fail;
		bool scalars = n->binary.lhs->type == TS_VT_SCALAR &&
			       n->binary.rhs->type == TS_VT_SCALAR;
		n->type = scalars ? TS_VT_SCALAR : TS_VT_VECTOR;
		if (!set_height(p, n, n->binary.lhs) || !set_height(p, n, n->binary.rhs))
			goto fail;
	}
	goto out;
fail:
	ts_ast_free(lhs);
	lhs = NULL;
out:
	p->depth--;
	return lhs;
}

/* ---- entry points ---- */

int ts_promql_parse(const char *q, size_t len, struct ts_ast **out, struct ts_promql_error *err)
{
	struct ts_promql_error dummy;
	struct parser p;
	struct ts_ast *root = NULL;
	memset(&p, 0, sizeof(p));
	p.err = err ? err : &dummy;
	memset(p.err, 0, sizeof(*p.err));
	*out = NULL;
	if (len > INT32_MAX) {
		ts__promql_fail(&p, 0, "query too long");
		return p.rc;
	}
	p.q = q;
	p.len = len;
	ts_promql_lex_init(&p.lx, q, len);
	advance(&p);
	if (p.tok.type == TS_TOK_EOF) {
		ts__promql_fail(&p, 0, "no expression found in input");
		goto out;
	}
	root = parse_expr(&p, 0);
	if (root && !p.rc && p.tok.type != TS_TOK_EOF)
		ts__promql_unexpected(&p, NULL, NULL);
	if (root && !p.rc)
		ts__promql_check(&p, root);
out:
	ts__promql_regex_fini(&p);
	if (p.rc) {
		ts_ast_free(root);
		return p.rc;
	}
	*out = root;
	return 0;
}
