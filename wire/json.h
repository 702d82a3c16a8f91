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

/* Parses one JSON text text[0..len) (borrowed for the call, not NUL-terminated; strict
 * RFC 8259 as jsonl.h's tokenizer checks it, nesting <= TS_JSONL_MAX_DEPTH) into *d,
 * which it zeroes first; everything d holds is its own copy. Numbers beyond the double
 * range become +-Inf. Returns 0 (d->v[0] is the root);
 *   TS_EINVALID  not one valid JSON text (msg says what and at which byte);
 *   TS_ELIMIT    more than 2^32-1 values ("document too large");
 *   -ENOMEM.
 * msg (msg_len > 0 bytes) is NUL-terminated when written. Free d with ts_jdoc_fini,
 * also after a failure. */
int ts_jdoc_parse(struct ts_jdoc *d, const char *text, size_t len, char *msg, size_t msg_len);
/* Frees what d holds and zeroes it. Accepts NULL and a zeroed d. */
void ts_jdoc_fini(struct ts_jdoc *d);
/* Member `key` (NUL-terminated; compared bytewise with the decoded name) of object o,
 * the first if repeated, or NULL (also when o is NULL or not an object). */
const struct ts_jv *ts_jv_get(const struct ts_jdoc *d, const struct ts_jv *o, const char *key);
/* First element or member of array/object a (NULL when a is NULL, empty or a scalar);
 * next sibling of v (NULL at the end or when v is NULL). Pointers into d. */
const struct ts_jv *ts_jv_first(const struct ts_jdoc *d, const struct ts_jv *a);
const struct ts_jv *ts_jv_next(const struct ts_jdoc *d, const struct ts_jv *v);
/* The string of v (NUL-terminated, owned by the document), or NULL when v is NULL or
 * not a string. */
const char *ts_jv_str(const struct ts_jv *v);

#endif
