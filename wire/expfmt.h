/*
 * expfmt.h - Prometheus text exposition format 0.0.4 decoder, for
 * POST /api/v1/import/prometheus.
 *
 * Semantics are those of Prometheus' own parser (model/textparse/promparse.go and its
 * lexer promlex.l), entry by entry:
 *   - "# HELP name text" and "# TYPE name counter|gauge|histogram|summary|untyped"
 *     (name bare or "quoted"; at least one blank after HELP/TYPE; the text is the rest
 *     of the line minus the one separating character; in HELP text "\\" and "\n" are
 *     escapes; the TYPE word must match exactly). Any other "#" line is a comment.
 *   - samples: name{label="value",...} value [timestamp_ms]. Blanks are spaces and
 *     tabs, allowed around every token and at the start of a line; the name is
 *     [a-zA-Z_:][a-zA-Z0-9_:]* or, for UTF-8 names, a quoted string inside the braces
 *     ({"my.metric", l="v"}); label names are [a-zA-Z_][a-zA-Z0-9_]* or quoted; a
 *     trailing comma, and even a missing comma between labels, are accepted as
 *     Prometheus accepts them. Label values and quoted names are "..." with escapes
 *     \\ \" \n (any other backslash pair is kept as is; raw newlines inside quotes are
 *     allowed by Prometheus' lexer and so here) and must be valid UTF-8.
 *   - values: Go float syntax without hex or underscores, plus NaN, Inf, +Inf, -Inf,
 *     Infinity in any letter case (NaN without sign); NaN comes out as Prometheus'
 *     normal NaN (bits 0x7ff8000000000001); a magnitude beyond the double range is an
 *     error. Timestamps are optional digits-only int64 milliseconds; absent -> the
 *     caller's default time.
 *   - lines end with LF; the end of input ends the last line. CR is not a line end
 *     (Prometheus rejects "1\r" as a value, and so do we).
 * Where Prometheus' storage layer, not its parser, decides, we decide the same way at
 * parse time: duplicate label names (including __name__) are an error; labels with an
 * empty value are dropped; an empty metric or label name ("") is an error, in
 * HELP and TYPE lines too.
 * Deliberate difference: a NUL byte at the start of a line makes Prometheus' lexer
 * report a silent end of input; here it is an error.
 *
 * Threading: one thread per parser at a time.
 */
#ifndef TS_WIRE_EXPFMT_H
#define TS_WIRE_EXPFMT_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

enum ts_expfmt_type {
	TS_EXPFMT_UNTYPED = 0,
	TS_EXPFMT_COUNTER,
	TS_EXPFMT_GAUGE,
	TS_EXPFMT_HISTOGRAM,
	TS_EXPFMT_SUMMARY,
};

enum ts_expfmt_kind {
	TS_EXPFMT_SERIES = 1, /* a sample line */
	TS_EXPFMT_HELP,	      /* # HELP */
	TS_EXPFMT_TYPE,	      /* # TYPE */
};

struct ts_expfmt_entry {
	uint8_t kind;	/* enum ts_expfmt_kind */
	uint8_t type;	/* TYPE: the declared type. SERIES: the type of the latest TYPE
			     * line (Prometheus' own bookkeeping; it is not checked to belong
			     * to the same family) */
	uint8_t has_ts; /* SERIES: the line carried a timestamp */
	uint64_t line;	/* 1-based line the entry starts on */
	/* HELP / TYPE: the family name (unquoted, unescaped) */
	const char *name;
	uint32_t name_len;
	/* HELP: the text, unescaped, valid UTF-8 */
	const char *help;
	uint32_t help_len;
	/* SERIES: labels sorted by name, __name__ included, no duplicates, no empty values */
	const struct ts_label *labels;
	uint32_t n_labels;
	struct ts_sample sample;
};

/* Private except err/err_line. */
struct ts_expfmt_parser {
	const char *buf;
	size_t len;
	size_t pos;
	size_t line_start;
	uint64_t line;
	int64_t default_ms;
	uint8_t mtype;
	struct ts_label *labels;
	size_t labels_cap;
	char *scratch;
	size_t scratch_cap;
	size_t scratch_len;
	uint64_t err_line;
	char err[256]; /* "line N col C: what is wrong" */
};

/* Prepares p to decode body[0..len) (borrowed until ts_expfmt_fini, not
 * NUL-terminated, never read past len). default_ms is the timestamp of samples that
 * carry none. Cannot fail. */
void ts_expfmt_init(struct ts_expfmt_parser *p, const char *body, size_t len, int64_t default_ms);

/* Decodes the next HELP, TYPE or sample entry into *e (comments and blank lines are
 * skipped). Returns 1, 0 at the end, -ENOMEM, or TS_EINVALID with p->err naming the
 * line; after an error p has moved to the next line, so the caller may stop (as a
 * Prometheus scrape does) or continue. *e and what it points to alias the body or p's
 * buffers and stay valid until the next ts_expfmt_next or ts_expfmt_fini. */
int ts_expfmt_next(struct ts_expfmt_parser *p, struct ts_expfmt_entry *e);

/* Frees p's buffers. Safe on a zeroed or finished parser. */
void ts_expfmt_fini(struct ts_expfmt_parser *p);

/* "counter", "gauge", "histogram", "summary", "untyped" (static strings). */
const char *ts_expfmt_type_name(int type);

#endif
