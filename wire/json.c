/*
 * json.c - the JSON document reader (see json.h). All decoded strings live in one buffer
 * sized up front (decoding never lengthens a string), so pointers handed out stay valid
 * until ts_jdoc_fini. Tokens come from the JSON-lines lexer (jsonl.h), which already
 * enforces RFC 8259 and the nesting bound.
 */
#include "wire/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "wire/fmtnum.h"
#include "wire/jsonl.h"

/* Appends a zeroed value; indices are 32-bit (links between values). */
static int jv_new(struct ts_jdoc *d, uint32_t *idx)
{
	if (d->n >= UINT32_MAX)
		return TS_ELIMIT;
	if (ts_grow((void **)&d->v, &d->cap, d->n + 1, sizeof *d->v) != 0)
		return -ENOMEM;
	*idx = (uint32_t)d->n;
	memset(&d->v[d->n++], 0, sizeof *d->v);
	return 0;
}

int ts_jdoc_parse(struct ts_jdoc *d, const char *text, size_t len, char *msg, size_t msg_len)
{
	memset(d, 0, sizeof *d);
	/* Decoded strings are never longer than their raw form; each gets a NUL. */
	d->str = ts_malloc(len * 2 + 2);
	if (!d->str)
		return -ENOMEM;
	size_t str_len = 0;
	struct ts_jsonl_lex lx;
	ts_jsonl_lex_init(&lx, text, len);
	uint32_t parent[TS_JSONL_MAX_DEPTH + 2], last[TS_JSONL_MAX_DEPTH + 2];
	int depth = 0; /* containers open */
	const char *key = NULL;
	size_t key_len = 0;
	int rc;
	for (;;) {
		int tok = ts_jsonl_lex_next(&lx);
		if (tok < 0) {
			snprintf(msg, msg_len, "invalid JSON at byte %zu: %s", lx.err_off,
				 lx.err ? lx.err : "syntax error");
			return TS_EINVALID;
		}
		if (tok == TS_JSONL_END)
			break;
		if (tok == TS_JSONL_KEY) {
			key = d->str + str_len;
			key_len = ts_jsonl_unescape(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + key_len] = 0;
			str_len += key_len + 1;
			continue;
		}
		if (tok == TS_JSONL_OBJ_END || tok == TS_JSONL_ARR_END) {
			depth--;
			continue;
		}
		uint32_t idx;
		if ((rc = jv_new(d, &idx)) != 0) {
			snprintf(msg, msg_len, "document too large");
			return rc;
		}
		struct ts_jv *v = &d->v[idx];
		if (depth > 0) {
			v->key = key;
			v->key_len = key_len;
			key = NULL;
			uint32_t p = parent[depth - 1];
			if (last[depth - 1])
				d->v[last[depth - 1]].next = idx;
			else
				d->v[p].child = idx;
			last[depth - 1] = idx;
		}
		switch (tok) {
		case TS_JSONL_OBJ:
		case TS_JSONL_ARR:
			v->type = tok == TS_JSONL_OBJ ? TS_JV_OBJ : TS_JV_ARR;
			parent[depth] = idx;
			last[depth] = 0;
			depth++;
			break;
		case TS_JSONL_STR:
			v->type = TS_JV_STR;
			v->s = d->str + str_len;
			v->len = ts_jsonl_unescape(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + v->len] = 0;
			str_len += v->len + 1;
			break;
		case TS_JSONL_NUM:
			v->type = TS_JV_NUM;
			v->s = d->str + str_len;
			v->len = lx.tok_len;
			memcpy(d->str + str_len, lx.tok, lx.tok_len);
			d->str[str_len + lx.tok_len] = 0;
			str_len += lx.tok_len + 1;
			if (ts_fmtnum_parse_double(lx.tok, lx.tok_len, &v->num) == TS_EINVALID) {
				snprintf(msg, msg_len, "invalid JSON number");
				return TS_EINVALID;
			}
			break;
		case TS_JSONL_TRUE:
		case TS_JSONL_FALSE:
			v->type = TS_JV_BOOL;
			v->b = tok == TS_JSONL_TRUE;
			break;
		default: v->type = TS_JV_NULL; break;
		}
	}
	if (d->n == 0) {
		snprintf(msg, msg_len, "empty JSON document");
		return TS_EINVALID;
	}
	return 0;
}

void ts_jdoc_fini(struct ts_jdoc *d)
{
	if (!d)
		return;
	ts_free(d->v);
	ts_free(d->str);
	memset(d, 0, sizeof *d);
}

const struct ts_jv *ts_jv_get(const struct ts_jdoc *d, const struct ts_jv *o, const char *key)
{
	if (!o || o->type != TS_JV_OBJ)
		return NULL;
	size_t kl = strlen(key);
	for (const struct ts_jv *v = ts_jv_first(d, o); v; v = ts_jv_next(d, v))
		if (v->key_len == kl && memcmp(v->key, key, kl) == 0)
			return v;
	return NULL;
}

const struct ts_jv *ts_jv_first(const struct ts_jdoc *d, const struct ts_jv *a)
{
	if (!a || (a->type != TS_JV_OBJ && a->type != TS_JV_ARR) || !a->child)
		return NULL;
	return &d->v[a->child];
}

const struct ts_jv *ts_jv_next(const struct ts_jdoc *d, const struct ts_jv *v)
{
	return v && v->next ? &d->v[v->next] : NULL;
}

const char *ts_jv_str(const struct ts_jv *v)
{
	return v && v->type == TS_JV_STR ? v->s : NULL;
}
