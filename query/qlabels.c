/*
 * qlabels.c - the evaluator's plumbing: arenas, label-set building and keys, and an
 * open-addressing hash map from byte strings to indexes.
 *
 * Label sets are arrays of struct ts_label sorted by name (bytewise), names unique,
 * no empty values (Prometheus drops a label set to empty to delete it). Keys are the
 * labels serialised as name 0xff value 0xff ...: UTF-8 never contains 0xff and names
 * are ASCII, so two sets have equal keys exactly when they are equal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "query/eval_int.h"
#include "storage/mem.h"

/* ---- arena ---- */

struct qarena_blk {
	struct qarena_blk *next;
	size_t cap;
	max_align_t data[];
};

#define QA_BLOCK (64 * 1024)

void *ts__qa_alloc(struct qarena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!a->head || a->cap - a->used < n) {
		size_t cap = n > QA_BLOCK ? n : QA_BLOCK;
		struct qarena_blk *b = ts_malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
		a->used = 0;
		a->cap = cap;
	}
	void *p = (char *)a->head->data + a->used;
	a->used += n;
	return p;
}

char *ts__qa_strndup(struct qarena *a, const char *s, size_t n)
{
	char *p = ts__qa_alloc(a, n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void ts__qa_reset(struct qarena *a)
{
	if (!a->head)
		return;
	struct qarena_blk *b = a->head->next;
	a->head->next = NULL;
	while (b) {
		struct qarena_blk *n = b->next;
		ts_free(b);
		b = n;
	}
	a->used = 0;
	a->cap = a->head->cap;
}

void ts__qa_fini(struct qarena *a)
{
	struct qarena_blk *b = a->head;
	while (b) {
		struct qarena_blk *n = b->next;
		ts_free(b);
		b = n;
	}
	a->head = NULL;
	a->used = a->cap = 0;
}

void ts__qa_adopt(struct qarena *dst, struct qarena *src)
{
	if (!src->head)
		return;
	if (!dst->head) {
		*dst = *src;
	} else {
		struct qarena_blk *b = src->head;
		while (b->next)
			b = b->next;
		/* dst's head stays the block being filled; src's go behind it. */
		b->next = dst->head->next;
		dst->head->next = src->head;
	}
	src->head = NULL;
	src->used = src->cap = 0;
}

/* ---- label sets ---- */

static int lab_cmp_name(const struct ts_label *a, const struct ts_label *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int r = memcmp(a->name, b->name, n);
	if (r)
		return r;
	return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

static bool name_eq(const struct ts_label *l, const char *name, size_t len)
{
	return l->name_len == len && memcmp(l->name, name, len) == 0;
}

int ts__qlb_reset(struct qctx *c, struct qlb *b, const struct ts_label *l, uint32_t n)
{
	/* Room for a few labels more: callers usually add one or two. */
	if (ts_grow((void **)&b->l, &b->cap, (size_t)n + 4, sizeof *b->l))
		return ts__q_nomem(c);
	if (n)
		memcpy(b->l, l, n * sizeof *l);
	b->n = n;
	return 0;
}

void ts__qlb_del(struct qlb *b, const char *name, size_t name_len)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (name_eq(&b->l[i], name, name_len)) {
			memmove(&b->l[i], &b->l[i + 1], (b->n - i - 1) * sizeof *b->l);
			b->n--;
			return;
		}
}

int ts__qlb_set(struct qctx *c, struct qlb *b, const char *name, size_t name_len, const char *value,
		size_t value_len)
{
	ts__qlb_del(b, name, name_len);
	if (value_len == 0)
		return 0;
	if (b->n == b->cap && ts_grow((void **)&b->l, &b->cap, (size_t)b->n + 1, sizeof *b->l))
		return ts__q_nomem(c);
	b->l[b->n++] = (struct ts_label){ name, value, (uint32_t)name_len, (uint32_t)value_len };
	return 0;
}

void ts__qlb_keep(struct qlb *b, char *const *names, size_t n)
{
	uint32_t w = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		bool keep = false;
		for (size_t k = 0; k < n && !keep; k++)
			keep = name_eq(&b->l[i], names[k], strlen(names[k]));
		if (keep)
			b->l[w++] = b->l[i];
	}
	b->n = w;
}

int ts__qlb_finish(struct qctx *c, struct qlb *b, const struct ts_label **out, uint32_t *n)
{
	struct ts_label *l = ts__qa_alloc(&c->scratch, (b->n ? b->n : 1) * sizeof *l);
	if (!l)
		return ts__q_nomem(c);
	if (b->n)
		memcpy(l, b->l, b->n * sizeof *l);
	/* Insertion sort: sets are short and mostly sorted already. */
	for (uint32_t i = 1; i < b->n; i++)
		for (uint32_t j = i; j > 0 && lab_cmp_name(&l[j], &l[j - 1]) < 0; j--) {
			struct ts_label t = l[j];
			l[j] = l[j - 1];
			l[j - 1] = t;
		}
	*out = l;
	*n = b->n;
	return 0;
}

void ts__qlb_fini(struct qlb *b)
{
	ts_free(b->l);
	b->l = NULL;
	b->n = 0;
	b->cap = 0;
}

int ts__ql_copy(struct qctx *c, struct qarena *a, const struct ts_label *l, uint32_t n,
		struct ts_label **out)
{
	size_t bytes = 0;
	for (uint32_t i = 0; i < n; i++)
		bytes += l[i].name_len + l[i].value_len + 2;
	struct ts_label *d = ts__qa_alloc(a, (n ? n : 1) * sizeof *d + bytes);
	if (!d)
		return ts__q_nomem(c);
	char *p = (char *)(d + (n ? n : 1));
	for (uint32_t i = 0; i < n; i++) {
		memcpy(p, l[i].name, l[i].name_len);
		p[l[i].name_len] = 0;
		d[i].name = p;
		d[i].name_len = l[i].name_len;
		p += l[i].name_len + 1;
		if (l[i].value_len)
			memcpy(p, l[i].value, l[i].value_len);
		p[l[i].value_len] = 0;
		d[i].value = p;
		d[i].value_len = l[i].value_len;
		p += l[i].value_len + 1;
	}
	*out = d;
	return 0;
}

const char *ts__ql_get(const struct ts_label *l, uint32_t n, const char *name, uint32_t *len)
{
	size_t nl = strlen(name);
	for (uint32_t i = 0; i < n; i++)
		if (name_eq(&l[i], name, nl)) {
			*len = l[i].value_len;
			return l[i].value;
		}
	*len = 0;
	return NULL;
}

static bool in_names(const struct ts_label *l, char *const *names, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (name_eq(l, names[k], strlen(names[k])))
			return true;
	return false;
}

int64_t ts__ql_key(struct qctx *c, const struct ts_label *l, uint32_t n, enum ts__qkey mode,
		   char *const *names, size_t n_names)
{
	size_t need = 1;
	for (uint32_t i = 0; i < n; i++)
		need += l[i].name_len + l[i].value_len + 2;
	if (need > c->kbuf_cap && ts_grow((void **)&c->kbuf, &c->kbuf_cap, need, 1))
		return ts__q_nomem(c);
	char *p = c->kbuf;
	for (uint32_t i = 0; i < n; i++) {
		if (mode == TS__QKEY_ON && !in_names(&l[i], names, n_names))
			continue;
		if (mode == TS__QKEY_IGNORING &&
		    (name_eq(&l[i], "__name__", 8) || in_names(&l[i], names, n_names)))
			continue;
		if (mode == TS__QKEY_EXCEPT && in_names(&l[i], names, n_names))
			continue;
		memcpy(p, l[i].name, l[i].name_len);
		p += l[i].name_len;
		*p++ = (char)0xff;
		memcpy(p, l[i].value, l[i].value_len);
		p += l[i].value_len;
		*p++ = (char)0xff;
	}
	return p - c->kbuf;
}

/* Appends Go's strconv.Quote of s (ASCII escapes; other bytes as they are). */
static size_t quote(char *buf, size_t pos, size_t cap, const char *s, size_t len)
{
#define PUT(ch)                          \
	do {                             \
		if (pos + 1 < cap)       \
			buf[pos] = (ch); \
		pos++;                   \
	} while (0)
	PUT('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		const char *esc = NULL;
		switch (ch) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\t': esc = "\\t"; break;
		case '\r': esc = "\\r"; break;
		default: break;
		}
		if (esc) {
			for (; *esc; esc++)
				PUT(*esc);
		} else if (ch < 0x20 || ch == 0x7f) {
			char tmp[8];
			snprintf(tmp, sizeof tmp, "\\x%02x", ch);
			for (char *t = tmp; *t; t++)
				PUT(*t);
		} else {
			PUT((char)ch);
		}
	}
	PUT('"');
#undef PUT
	return pos;
}

void ts__ql_str(const struct ts_label *l, uint32_t n, char *buf, size_t cap)
{
	size_t pos = 0;
	if (cap == 0)
		return;
#define PUTS(str, len)                                  \
	do {                                            \
		for (size_t q_ = 0; q_ < (len); q_++) { \
			if (pos + 1 < cap)              \
				buf[pos] = (str)[q_];   \
			pos++;                          \
		}                                       \
	} while (0)
	PUTS("{", 1);
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			PUTS(", ", 2);
		PUTS(l[i].name, l[i].name_len);
		PUTS("=", 1);
		pos = quote(buf, pos, cap, l[i].value, l[i].value_len);
	}
	PUTS("}", 1);
#undef PUTS
	buf[pos < cap ? pos : cap - 1] = 0;
}

int ts__ql_drop_name(struct qctx *c, const struct ts_label *l, uint32_t n,
		     const struct ts_label **out, uint32_t *n_out)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		if (name_eq(&l[i], "__name__", 8))
			break;
	if (i == n) {
		*out = l;
		*n_out = n;
		return 0;
	}
	struct ts_label *d = ts__qa_alloc(&c->scratch, (n > 1 ? n - 1 : 1) * sizeof *d);
	if (!d)
		return ts__q_nomem(c);
	memcpy(d, l, i * sizeof *d);
	memcpy(d + i, l + i + 1, (n - i - 1) * sizeof *d);
	*out = d;
	*n_out = n - 1;
	return 0;
}

/* ---- hash map ---- */

static uint64_t hash_bytes(const char *k, size_t len)
{
	return XXH3_64bits(k, len);
}

size_t ts__qmap_find(const struct qmap *m, const char *k, size_t klen)
{
	if (!m->cap)
		return TS__QMAP_NONE;
	if (!klen)
		k = ""; /* an empty key may come with a NULL pointer */
	uint64_t h = hash_bytes(k, klen);
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct qmap_ent *e = &m->e[i];
		if (!e->k)
			return TS__QMAP_NONE;
		if (e->h == h && e->klen == klen && memcmp(e->k, k, klen) == 0)
			return e->v;
	}
}

static void put_raw(struct qmap_ent *e, size_t cap, const struct qmap_ent *x)
{
	size_t mask = cap - 1;
	size_t i = x->h & mask;
	while (e[i].k)
		i = (i + 1) & mask;
	e[i] = *x;
}

int ts__qmap_put(struct qmap *m, const char *k, size_t klen, size_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct qmap_ent *e = ts_calloc(cap, sizeof *e);
		if (!e)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].k)
				put_raw(e, cap, &m->e[i]);
		ts_free(m->e);
		m->e = e;
		m->cap = cap;
	}
	/* A zero-length key still needs a non-NULL pointer to mark the slot used. */
	if (!klen)
		k = "";
	struct qmap_ent x = { hash_bytes(k, klen), k, klen, v };
	put_raw(m->e, m->cap, &x);
	m->n++;
	return 0;
}

void ts__qmap_clear(struct qmap *m)
{
	if (m->n)
		memset(m->e, 0, m->cap * sizeof *m->e);
	m->n = 0;
}

void ts__qmap_fini(struct qmap *m)
{
	ts_free(m->e);
	m->e = NULL;
	m->cap = m->n = 0;
}
