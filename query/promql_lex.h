/*
 * promql_lex.h - the PromQL tokenizer.
 *
 * Splits a query into tokens the way Prometheus 2.42's lexer (promql/parser/lex.go)
 * does, including its context rules: inside {...} every word is a plain identifier
 * (keywords are label names there); right after '[' a duration is expected; inside
 * [...] a ':' (or a stray letter, as in Prometheus) is a COLON; keywords and the
 * words inf/nan are recognised case-insensitively outside braces.
 *
 * Tokens alias the input (pos/len); nothing is allocated. A lexing error is final:
 * the ERROR token carries a message in the lexer and every later call returns EOF.
 * Comments are skipped and never returned.
 */
#ifndef TS_QUERY_PROMQL_LEX_H
#define TS_QUERY_PROMQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

enum ts_promql_tok {
	TS_TOK_EOF = 0,
	TS_TOK_ERROR,
	TS_TOK_IDENT,	     /* [a-zA-Z_][a-zA-Z0-9_]* */
	TS_TOK_METRIC_IDENT, /* an identifier containing ':' */
	TS_TOK_NUMBER,	     /* decimal, hex, inf, nan (no sign) */
	TS_TOK_STRING,	     /* with its quotes; unquoted by the parser */
	TS_TOK_DURATION,     /* e.g. 5m, 1h30m; validated by the parser */
	TS_TOK_LPAREN,
	TS_TOK_RPAREN,
	TS_TOK_LBRACE,
	TS_TOK_RBRACE,
	TS_TOK_LBRACKET,
	TS_TOK_RBRACKET,
	TS_TOK_COMMA,
	TS_TOK_EQL, /* '=' */
	TS_TOK_COLON,
	/* Operators. */
	TS_TOK_ADD,
	TS_TOK_SUB,
	TS_TOK_MUL,
	TS_TOK_DIV,
	TS_TOK_MOD,
	TS_TOK_POW,
	TS_TOK_EQLC, /* '==' */
	TS_TOK_NEQ,
	TS_TOK_LSS,
	TS_TOK_LTE,
	TS_TOK_GTR,
	TS_TOK_GTE,
	TS_TOK_EQL_REGEX,
	TS_TOK_NEQ_REGEX,
	TS_TOK_LAND,
	TS_TOK_LOR,
	TS_TOK_LUNLESS,
	TS_TOK_ATAN2,
	TS_TOK_AT,
	/* Aggregators. */
	TS_TOK_AVG,
	TS_TOK_BOTTOMK,
	TS_TOK_COUNT,
	TS_TOK_COUNT_VALUES,
	TS_TOK_GROUP,
	TS_TOK_MAX,
	TS_TOK_MIN,
	TS_TOK_QUANTILE,
	TS_TOK_STDDEV,
	TS_TOK_STDVAR,
	TS_TOK_SUM,
	TS_TOK_TOPK,
	/* Keywords. */
	TS_TOK_BOOL,
	TS_TOK_BY,
	TS_TOK_GROUP_LEFT,
	TS_TOK_GROUP_RIGHT,
	TS_TOK_IGNORING,
	TS_TOK_OFFSET,
	TS_TOK_ON,
	TS_TOK_WITHOUT,
	/* @ modifier preprocessors. */
	TS_TOK_START,
	TS_TOK_END,
};

#define TS_TOK_IS_AGGREGATOR(t) ((t) >= TS_TOK_AVG && (t) <= TS_TOK_TOPK)
#define TS_TOK_IS_KEYWORD(t) ((t) >= TS_TOK_BOOL && (t) <= TS_TOK_WITHOUT)
#define TS_TOK_IS_OPERATOR(t) ((t) >= TS_TOK_ADD && (t) <= TS_TOK_AT)

struct ts_promql_token {
	enum ts_promql_tok type;
	size_t pos; /* byte offset of the first byte in the input */
	size_t len; /* bytes; for ERROR, 0 */
};

/* Lexer state. Initialise with ts_promql_lex_init; no cleanup needed. */
struct ts_promql_lexer {
	const char *in; /* borrowed for the lexer's lifetime */
	size_t len;
	size_t pos;   /* next byte to read */
	size_t start; /* first byte of the token being read */
	size_t width; /* bytes of the last rune read, for backup() */
	int paren_depth;
	bool brace_open;
	bool bracket_open;
	bool got_colon;
	bool want_duration; /* the previous token was '[' */
	bool done;	    /* EOF or ERROR was returned */
	int string_open;    /* quote character of the string being read */
	size_t err_pos;	    /* for ERROR: where Prometheus reports it */
	char err[256];	    /* for ERROR: the message */
};

/* Prepares `lx` to tokenize in[0..len). `in` is borrowed and need not be
 * NUL-terminated. */
void ts_promql_lex_init(struct ts_promql_lexer *lx, const char *in, size_t len);

/* Reads the next token into `tok`. After EOF or ERROR every call yields EOF. */
void ts_promql_lex_next(struct ts_promql_lexer *lx, struct ts_promql_token *tok);

/* Spelling of a token type for messages: "(" "+" "by" "sum"; NULL for types that
 * have no fixed spelling (identifiers, literals, EOF, ERROR). Static string. */
const char *ts_promql_tok_str(enum ts_promql_tok t);

/* Keyword, aggregator or operator word (case-insensitive) -> token type; IDENT when
 * `word` is none of them. NUMBER for inf/nan. */
enum ts_promql_tok ts_promql_keyword(const char *word, size_t len);

/* Decodes one UTF-8 rune at s[0..n) the way Go does: invalid or truncated sequences
 * yield 0xFFFD with *width 1. n must be > 0. */
int ts_promql_utf8_decode(const unsigned char *s, size_t n, size_t *width);

/* Approximately Go's strconv.IsPrint (no Unicode tables here): false for controls,
 * separators other than ' ', format characters, private use, noncharacters and
 * unassigned high planes. For Go-style quoting in the printer and messages. */
bool ts_promql_rune_printable(int r);

#endif
