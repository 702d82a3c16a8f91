/*
 * jsonl.h - JSON lines import/export in the VictoriaMetrics format, and the strict
 * JSON tokenizer underneath it.
 *
 * One series per line:
 *   {"metric":{"__name__":"m","l":"v"},"values":[1,2.5,null],"timestamps":[1700000000000,...]}
 *
 * Import rules (VictoriaMetrics lib/protoparser/vmimport, made strict where it is lax):
 *   - lines end with LF; a CR before it is dropped; empty and all-white-space lines are
 *     skipped. Every other line must be exactly one JSON object.
 *   - "metric": object of string values. Members with an empty name are skipped (as
 *     VictoriaMetrics does: an empty name would override the metric name); members with
 *     an empty value are dropped (an empty label is an absent label in Prometheus
 *     semantics). Non-string values are an error (VictoriaMetrics silently stores ""),
 *     and so are duplicate label names. At least one label must remain. __name__ is not
 *     required (VictoriaMetrics does not require it either); labels come out sorted.
 *   - "values": non-empty array of JSON numbers, null (NaN), or one of the strings
 *     VictoriaMetrics accepts: "NaN" "nan" "null" "Null" (NaN), "Inf" "inf" "Infinity"
 *     "infinity", each optionally prefixed by "-". NaN is stored with Prometheus'
 *     "normal NaN" bits 0x7ff8000000000001. A number beyond the double range is an
 *     error (it would silently become infinite).
 *   - "timestamps": non-empty array of integers (milliseconds; no fraction or exponent,
 *     within int64), as many as values.
 *   - other members are ignored (skipped, any JSON); a repeated "metric", "values" or
 *     "timestamps" member is an error rather than first- or last-wins.
 *   - strict JSON: RFC 8259 grammar, no trailing commas, no comments, strings valid
 *     UTF-8 without raw control characters, \u escapes with surrogate pairs decoded to
 *     UTF-8 (a lone surrogate is an error), nesting at most TS_JSONL_MAX_DEPTH.
 *
 * Export (ts_jsonl_encode) writes what VictoriaMetrics' /api/v1/export writes:
 * __name__ first, then the other labels in the given order; finite values in the
 * shortest round-trip form (ts_fmt_double); NaN as null, +-Inf as "Infinity" and
 * "-Infinity" (VictoriaMetrics' convertValueToSpecialJSON). NaN payloads (such as the
 * stale marker) do not survive the text form; callers that care drop stale samples.
 *
 * Threading: a parser or tokenizer is used by one thread at a time.
 */
#ifndef TS_WIRE_JSONL_H
#define TS_WIRE_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

/* ---- tokenizer ---- */

#define TS_JSONL_MAX_DEPTH 64

enum ts_jsonl_tok {
	TS_JSONL_END = 0, /* the one top-level value is complete and only white space follows */
	TS_JSONL_OBJ,	  /* { */
	TS_JSONL_OBJ_END, /* } */
	TS_JSONL_ARR,	  /* [ */
	TS_JSONL_ARR_END, /* ] */
	TS_JSONL_KEY,	  /* an object member name (string; the ':' is consumed too) */
	TS_JSONL_STR,	  /* a string value */
	TS_JSONL_NUM,	  /* a number (RFC 8259 grammar) */
	TS_JSONL_TRUE,
	TS_JSONL_FALSE,
	TS_JSONL_NULL,
};

/* A pull tokenizer over one JSON text. Public read-only fields: tok/tok_len (the bytes
 * of the last KEY/STR (without quotes, escapes intact) or NUM token, aliasing the
 * input), tok_esc (the string contains backslash escapes), depth, err/err_off. */
struct ts_jsonl_lex {
	const char *begin;
	const char *p;
	const char *end;
	const char *tok;
	size_t tok_len;
	int tok_esc;
	uint32_t depth;
	uint8_t state;
	uint64_t objbits; /* bit d: the container at depth d+1 is an object */
	const char *err;  /* static text of the last error */
	size_t err_off;	  /* its byte offset in the input */
};

/* Starts tokenizing text[0..len) (borrowed, not NUL-terminated, never read past len).
 * Cannot fail; allocates nothing. */
void ts_jsonl_lex_init(struct ts_jsonl_lex *lx, const char *text, size_t len);

/* Returns the next token (enum ts_jsonl_tok, >= 0), validating structure as it goes,
 * or TS_EINVALID with lx->err/err_off set. After an error the tokenizer stays failed. */
int ts_jsonl_lex_next(struct ts_jsonl_lex *lx);

/* Skips the rest of the value whose first token `tok` was just returned (a no-op for
 * scalars). Returns 0 or TS_EINVALID. */
int ts_jsonl_lex_skip(struct ts_jsonl_lex *lx, int tok);

/* Decodes a string token's raw bytes (as validated by the tokenizer) into dst, which
 * needs room for len bytes (the decoded form is never longer). Returns the length. */
size_t ts_jsonl_unescape(char *dst, const char *raw, size_t len);

/* ---- import ---- */

struct ts_jsonl_series {
	const struct ts_label *labels; /* sorted by name, no duplicates, >= 1 */
	uint32_t n_labels;
	const struct ts_sample *samples; /* in input order, >= 1 */
	size_t n_samples;
	uint64_t line; /* 1-based */
};

/* Import parser state: private except err/err_line. Arrays and scratch are reused from
 * line to line (no allocation in steady state). */
struct ts_jsonl_parser {
	const char *buf;
	size_t len;
	size_t pos;
	uint64_t line;
	struct ts_label *labels;
	size_t labels_cap;
	struct ts_sample *samples;
	size_t samples_cap;
	char *scratch;
	size_t scratch_cap;
	uint64_t err_line;
	char err[256]; /* "line N: what is wrong" */
};

/* Prepares p to parse body[0..len) (borrowed until ts_jsonl_fini; not NUL-terminated).
 * Cannot fail. */
void ts_jsonl_init(struct ts_jsonl_parser *p, const char *body, size_t len);

/* Parses the next non-blank line into *s. Returns 1 (a series), 0 (end of body),
 * -ENOMEM, or TS_EINVALID with p->err naming the line; after an error the parser is
 * positioned at the next line, so the caller may stop or continue (VictoriaMetrics
 * skips bad lines). *s and everything it points to stay valid until the next
 * ts_jsonl_next or ts_jsonl_fini (they alias the body or p's buffers). */
int ts_jsonl_next(struct ts_jsonl_parser *p, struct ts_jsonl_series *s);

/* Frees p's buffers. Safe on a zeroed or finished parser. */
void ts_jsonl_fini(struct ts_jsonl_parser *p);

/* ---- export ---- */

/* Upper bound of ts_jsonl_encode's output for these labels and this many samples
 * (saturates at SIZE_MAX). */
size_t ts_jsonl_encode_bound(const struct ts_label *labels, size_t n_labels, size_t n_samples);

/* Writes one series as a JSON line, LF included, to dst (room for
 * ts_jsonl_encode_bound bytes; no NUL is written) and returns its length. Label bytes
 * that are not valid UTF-8 are written as U+FFFD so the output is always valid JSON.
 * Allocates nothing. */
size_t ts_jsonl_encode(char *dst, const struct ts_label *labels, size_t n_labels,
		       const struct ts_sample *samples, size_t n_samples);

#endif
