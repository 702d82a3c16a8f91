/*
 * json.h - a small reader of one JSON document (strict RFC 8259) for request bodies:
 * the document is parsed into a flat array of values linked as a tree, so a handler can
 * look members up by name without a callback parser.
 *
 * Ownership: every string handed out points into the document and stays valid until
 * ts_jdoc_fini. Threading: no shared state.
 */
#ifndef TS_WIRE_JSON_H
#define TS_WIRE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ts_jv_type { TS_JV_NULL = 0, TS_JV_BOOL, TS_JV_NUM, TS_JV_STR, TS_JV_ARR, TS_JV_OBJ };

/* One value of a parsed document. Strings are decoded, NUL-terminated and owned by the
 * document; `key` is the member name when the value sits in an object. */
struct ts_jv {
	enum ts_jv_type type;
	bool b;
	double num;
	const char *s; /* STR; also the raw text of NUM */
	size_t len;
	const char *key; /* NULL outside objects */
	size_t key_len;
	uint32_t child; /* ARR/OBJ: index of the first element, 0 if none */
	uint32_t next;	/* index of the next sibling, 0 if none (0 is the root) */
};

struct ts_jdoc {
	struct ts_jv *v; /* v[0] is the root */
	size_t n, cap;
	char *str;
};

/* Parses one JSON text (strict RFC 8259, nesting <= TS_JSONL_MAX_DEPTH). Returns 0,
 * TS_EINVALID with a message in msg, -ENOMEM. Free with ts_jdoc_fini (also after a
 * failure). */
int ts_jdoc_parse(struct ts_jdoc *d, const char *text, size_t len, char *msg, size_t msg_len);
void ts_jdoc_fini(struct ts_jdoc *d);
/* Member `key` of object o (first match), or NULL (also when o is NULL or no object). */
const struct ts_jv *ts_jv_get(const struct ts_jdoc *d, const struct ts_jv *o, const char *key);
/* First element / next sibling, or NULL. */
const struct ts_jv *ts_jv_first(const struct ts_jdoc *d, const struct ts_jv *a);
const struct ts_jv *ts_jv_next(const struct ts_jdoc *d, const struct ts_jv *v);
/* The string of v, or NULL when v is not a string. */
const char *ts_jv_str(const struct ts_jv *v);

#endif
