/*
 * lineproto.h - InfluxDB line protocol decoder and the point -> series mapper.
 *
 * Decoding follows the influxdata/line-protocol v2 decoder exactly (the semantics of
 * its conformance corpus, vendored as tests/data/lineprotocol/corpus.json):
 *
 *   [spaces] measurement[,tagkey=tagval...] SP+ fieldkey=value[,fieldkey=value...]
 *            [SP+ timestamp] [SP*] (LF | CRLF | CR at end of input | end of input)
 *
 *   - escapes: measurement "\ " "\,"; tag keys, tag values, field keys "\," "\=" "\ ";
 *     string field values "\"" "\\" "\n" "\r" "\t". Any other backslash is literal.
 *   - measurement, tag keys/values, field keys: no control characters (0x00-0x1F, 0x7F),
 *     no unescaped separators; every token must be valid UTF-8.
 *   - string values may hold raw newlines (the line number advances inside them).
 *   - float: decimal with optional fraction and exponent ("1", "1.", ".5", "-1.2e+78");
 *     NaN and +-Inf are rejected, as is a magnitude beyond the double range. int "12i"
 *     (int64), uint "12u" (uint64), bool t T true True TRUE f F false False FALSE.
 *   - "#" after optional spaces starts a comment line (no control characters allowed in
 *     it); blank lines and lines of spaces are skipped.
 *   - duplicate tag keys are an error; duplicate field keys are kept as given.
 *   - timestamp: int64 in the request precision, converted to ns with overflow check;
 *     absent -> the default time truncated (floored) to the precision.
 *
 * Deliberate differences from the Go decoder (none of them occurs in the corpus): Go's
 * strconv.ParseFloat also takes hexadecimal floats ("0x1p3") and digit underscores
 * ("1_000"); InfluxDB 1.x and VictoriaMetrics reject both, and so do we.
 *
 * Threading: a parser is used by one thread at a time. Nothing here is global.
 */
#ifndef TS_WIRE_LINEPROTO_H
#define TS_WIRE_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

enum ts_lp_precision {
	TS_LP_NS = 0,
	TS_LP_US,
	TS_LP_MS,
	TS_LP_S,
	TS_LP_M, /* minutes, 1.x only */
	TS_LP_H, /* hours, 1.x only */
};

enum ts_lp_type {
	TS_LP_FLOAT = 0,
	TS_LP_INT,
	TS_LP_UINT,
	TS_LP_STRING,
	TS_LP_BOOL,
};

/* One field of a point. key and str alias the input body or the parser's scratch
 * buffer; see ts_lp_next() for how long they stay valid. */
struct ts_lp_field {
	const char *key;
	uint32_t key_len;
	uint8_t type; /* enum ts_lp_type */
	union {
		double f;
		int64_t i;
		uint64_t u;
		int b; /* 0 or 1 */
	} v;
	const char *str; /* TS_LP_STRING only: the unescaped value */
	uint32_t str_len;
};

/* One decoded line. */
struct ts_lp_point {
	const char *measurement;
	uint32_t measurement_len;
	uint32_t n_tags;
	uint32_t n_fields;
	const struct ts_label *tags;	  /* sorted by name, no duplicates */
	const struct ts_lp_field *fields; /* in input order, at least one */
	int64_t t_ns;
	int64_t t_ms;  /* t_ns floored to milliseconds */
	uint64_t line; /* 1-based line the point starts on */
	/* The measurement and tag set as written (escapes and all), up to the space before
	 * the fields: equal bytes always parse to the same measurement and tags, so a
	 * caller may key what it derives from them on these bytes. Aliases the body;
	 * key_len 0: not known. */
	const char *key;
	uint32_t key_len;
};

/* Parser state. Fields are private except err/err_line; initialise with ts_lp_init,
 * release with ts_lp_fini. The arrays and the scratch buffer are reused from point to
 * point, so a steady stream of points allocates nothing. */
struct ts_lp_parser {
	const char *buf;
	size_t len;
	size_t pos;
	size_t line_start;  /* offset of the first byte of the current line */
	uint64_t line;	    /* 1-based line number of pos */
	int64_t mult_ns;    /* nanoseconds per timestamp unit */
	int64_t default_ns; /* default time, already truncated to the precision */
	struct ts_label *tags;
	size_t tags_cap;
	struct ts_lp_field *fields;
	size_t fields_cap;
	char *scratch; /* unescaped tokens of the current point */
	size_t scratch_cap;
	size_t scratch_len;
	uint64_t err_line; /* line of the last error, 0 if none */
	char err[256];	   /* "line N col C: what is wrong", NUL-terminated */
};

/* Parses a precision query parameter: "" (default) and "n"/"ns" -> ns, "u"/"us"/"µs",
 * "ms", "s", "m" (minutes), "h". Returns 0 or TS_EINVALID. */
int ts_lp_precision_parse(const char *s, size_t len, enum ts_lp_precision *out);

/* Prepares p to decode body[0..len). body is borrowed and must stay unchanged until
 * ts_lp_fini; it need not be NUL-terminated and is never read past len. default_ns is
 * the time for lines without a timestamp (ns since the epoch; it is floored to prec as
 * InfluxDB does). Cannot fail; allocates nothing yet. */
void ts_lp_init(struct ts_lp_parser *p, const char *body, size_t len, enum ts_lp_precision prec,
		int64_t default_ns);

/* Decodes the next point into *pt.
 * Returns 1 when *pt holds a point, 0 at the end of the body, -ENOMEM when growing
 * the reusable arrays failed (the point is lost; the parser is still usable), or
 * TS_EINVALID on a syntax error: p->err then names the line and column and what is
 * wrong, and p->pos has moved past the bad line, so the caller may stop (InfluxDB 2.x
 * batch semantics) or call again to continue with the next line (partial writes).
 * Everything *pt points to (measurement, tags, fields, strings) stays valid until the
 * next ts_lp_next or ts_lp_fini on p: it aliases the body or p's scratch buffer. */
int ts_lp_next(struct ts_lp_parser *p, struct ts_lp_point *pt);

/* Frees p's arrays. Safe on a zeroed or already finished parser. */
void ts_lp_fini(struct ts_lp_parser *p);

/*
 * Mapping a point to series, the VictoriaMetrics convention (app/vminsert/influx with
 * its default flags): one series per numeric field, named "{measurement}_{field}"
 * (always; VictoriaMetrics' -influxSkipSingleField, which drops the suffix for
 * single-field lines, is off by default and not offered); tags become labels; the
 * request's db (the ?db= parameter) becomes label "db" unless the point has a "db" tag
 * or db is empty; int and uint become float64 (rounded to nearest for |v| > 2^53);
 * bool becomes 1 or 0. String fields are not stored: they are counted in n_skipped.
 * (VictoriaMetrics instead parses quoted strings as numbers, best effort; we follow
 * PROTOCOLS.md.) A tag named "__name__" would clash with the metric name and is
 * dropped.
 */
struct ts_lp_series {
	const struct ts_label *labels; /* sorted by name, includes __name__ */
	uint32_t n_labels;
	struct ts_sample sample;
};

struct ts_lp_mapper {
	struct ts_lp_series *series; /* [n_series], output of the last ts_lp_map */
	uint32_t n_series;
	uint32_t n_skipped; /* string fields in the last point */
	size_t series_cap;
	struct ts_label *labels;
	size_t labels_cap;
	char *names; /* the "{measurement}_{field}" names */
	size_t names_cap;
};

/* The value f maps to (float64, as ts_lp_map gives it) in *v: returns 1, or 0 for a
 * string field (not stored). */
int ts_lp_field_value(const struct ts_lp_field *f, double *v);

/* Zeroes m. */
void ts_lp_mapper_init(struct ts_lp_mapper *m);

/* Maps pt to m->series[0..m->n_series) and m->n_skipped. db may be NULL when db_len
 * is 0. Labels point into pt's strings, db, and m's own name buffer: they are valid
 * while pt's strings and db are and until the next ts_lp_map or ts_lp_mapper_fini on m.
 * Returns 0, -ENOMEM (m keeps its previous buffers), or TS_ELIMIT when a name or the
 * label count would not fit 32 bits. */
int ts_lp_map(struct ts_lp_mapper *m, const struct ts_lp_point *pt, const char *db, size_t db_len);

/* Frees m's buffers. Safe on a zeroed mapper. */
void ts_lp_mapper_fini(struct ts_lp_mapper *m);

#endif
