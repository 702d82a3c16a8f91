/*
 * upost.c - postings of the series the writer has not indexed yet.
 *
 * Why: a selection finds indexed series through the index env's postings, and every
 * series created since the writer's last flush by matching its labels one by one. After
 * a million new series (a rollout, a new cluster) that scan cost 65-80 ms per selection
 * until the writer had indexed them, seconds later. Here each unindexed series is
 * listed under a hash of each of its (name, value) pairs, so a selection with an
 * equality matcher reads only the series listed under it (select.c re-checks every
 * matcher on their labels, so a hash collision costs a check, never a wrong answer).
 *
 * Positions, not pointers: a series is listed by its position in db->unindexed (4 bytes
 * a label). The writer takes the whole list at a flush and, once it is committed,
 * removes that prefix; so there are two tables: up[0] for the positions the writer has
 * taken ([0, up_base)), up[1] for those added since (position - up_base). The commit
 * frees up[0] and the rest keep their numbers. A flush that failed is taken again
 * with what came after it: up[1] is then merged into up[0].
 *
 * Everything here runs with db->mu held.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/labels.h"

struct ts__uslot {
	uint64_t h; /* 0: empty */
	uint32_t n, cap;
	uint32_t *v; /* positions, ascending; NULL with cap SATURATED */
};

/* A pair most of the table's series have (a metric name, job="node") never narrows a
 * selection more than another matcher or the scan: past SATURATE_MIN series and half
 * of the table it is no longer listed, and selections do not use it. At a million new
 * series of four labels that keeps 8 of 31 MB. */
#define SATURATED UINT32_MAX
#define SATURATE_MIN 4096

static void saturate(struct ts__utab *t, struct ts__uslot *s)
{
	t->bytes -= (uint64_t)s->cap * sizeof *s->v;
	ts_free(s->v);
	s->v = NULL;
	s->n = 0;
	s->cap = SATURATED;
}

static uint64_t pair_hash(const char *name, size_t nl, const char *value, size_t vl)
{
	uint64_t h = XXH3_64bits_withSeed(value, vl, XXH3_64bits(name, nl));
	return h ? h : 1;
}

static struct ts__uslot *find(const struct ts__utab *t, uint64_t h)
{
	if (!t->cap)
		return NULL;
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].h == h)
			return &t->slots[i];
		if (!t->slots[i].h)
			return NULL;
	}
}

static void tab_free(struct ts__utab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		ts_free(t->slots[i].v); /* NULL when saturated */
	ts_free(t->slots);
	memset(t, 0, sizeof *t);
}

/* The slot of h, created if need be (the table grows at half full). */
static struct ts__uslot *slot_of(struct ts__utab *t, uint64_t h)
{
	struct ts__uslot *s = find(t, h);
	if (s)
		return s;
	if ((t->used + 1) * 2 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct ts__uslot *ns = ts_calloc(cap, sizeof *ns);
		if (!ns)
			return NULL;
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slots[i].h)
				continue;
			size_t j = t->slots[i].h & (cap - 1);
			while (ns[j].h)
				j = (j + 1) & (cap - 1);
			ns[j] = t->slots[i];
		}
		ts_free(t->slots);
		t->bytes += (cap - t->cap) * sizeof *ns;
		t->slots = ns;
		t->cap = cap;
	}
	size_t j = h & (t->cap - 1);
	while (t->slots[j].h)
		j = (j + 1) & (t->cap - 1);
	t->slots[j].h = h;
	t->used++;
	return &t->slots[j];
}

static int slot_push(struct ts__utab *t, struct ts__uslot *s, uint32_t pos)
{
	if (s->cap == SATURATED)
		return 0;
	if (s->n >= SATURATE_MIN && (uint64_t)s->n * 2 > (uint64_t)pos + 1) {
		saturate(t, s);
		return 0;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap < 4 ? s->cap + 2 : s->cap + s->cap / 2;
		uint32_t *v = ts_realloc(s->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		t->bytes += (cap - s->cap) * sizeof *v;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = pos;
	return 0;
}

static int tab_add(struct ts__utab *t, uint64_t h, uint32_t pos)
{
	struct ts__uslot *s = slot_of(t, h);
	return s ? slot_push(t, s, pos) : -ENOMEM;
}

int ts__upost_add(struct ts_db *db, const struct ts_series *s, size_t at)
{
	struct ts_label stack[64], *l = stack;
	int n = ts_labels_count(s->packed, s->packed_len);
	if (n < 0)
		return n;
	if ((size_t)n > sizeof stack / sizeof stack[0] && !(l = ts_malloc((size_t)n * sizeof *l)))
		return -ENOMEM;
	uint32_t got;
	int rc = ts_labels_unpack(s->packed, s->packed_len, l, (uint32_t)n, &got);
	for (uint32_t i = 0; i < got && rc == 0; i++)
		rc = tab_add(&db->up[1],
			     pair_hash(l[i].name, l[i].name_len, l[i].value, l[i].value_len),
			     (uint32_t)(at - db->up_base));
	if (l != stack)
		ts_free(l);
	return rc;
}

int ts__upost_taken(struct ts_db *db, size_t n_taken)
{
	if (!db->up[0].used && !db->up_base) {
		db->up[0] = db->up[1];
		memset(&db->up[1], 0, sizeof db->up[1]);
		db->up_base = n_taken;
		return 0;
	}
	/* The last flush failed: it is taken again with everything added since. */
	struct ts__utab *t = &db->up[1];
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->slots[i].h)
			continue;
		struct ts__uslot *d = slot_of(&db->up[0], t->slots[i].h);
		if (!d)
			return -ENOMEM;
		if (t->slots[i].cap == SATURATED) {
			if (d->cap != SATURATED)
				saturate(&db->up[0], d);
			continue;
		}
		for (uint32_t k = 0; k < t->slots[i].n; k++)
			if (slot_push(&db->up[0], d, (uint32_t)(t->slots[i].v[k] + db->up_base)))
				return -ENOMEM;
	}
	tab_free(t);
	db->up_base = n_taken;
	return 0;
}

void ts__upost_committed(struct ts_db *db)
{
	tab_free(&db->up[0]);
	db->up_base = 0;
	if (db->up_broken && !db->n_unindexed)
		db->up_broken = 0; /* nothing unlisted is left: listing can start again */
}

void ts__upost_lost(struct ts_db *db)
{
	ts__upost_free(db);
	db->up_broken = 1;
	ts_log(TS_LOG_WARN, "out of memory listing new series: selections check them one by one "
			    "until the writer has indexed them");
}

size_t ts__upost_count(struct ts_db *db, const char *name, size_t nl, const char *value, size_t vl)
{
	uint64_t h = pair_hash(name, nl, value, vl);
	size_t n = 0;
	for (int t = 0; t < 2; t++) {
		const struct ts__uslot *s = find(&db->up[t], h);
		if (s && s->cap == SATURATED)
			return SIZE_MAX;
		n += s ? s->n : 0;
	}
	return n;
}

size_t ts__upost_get(struct ts_db *db, const char *name, size_t nl, const char *value, size_t vl,
		     struct ts_series **out)
{
	uint64_t h = pair_hash(name, nl, value, vl);
	size_t n = 0;
	for (int t = 0; t < 2; t++) {
		const struct ts__uslot *s = find(&db->up[t], h);
		size_t base = t ? db->up_base : 0;
		for (uint32_t k = 0; s && k < s->n; k++)
			out[n++] = db->unindexed[base + s->v[k]];
	}
	return n;
}

uint64_t ts__upost_bytes(const struct ts_db *db)
{
	return db->up[0].bytes + db->up[1].bytes;
}

void ts__upost_free(struct ts_db *db)
{
	tab_free(&db->up[0]);
	tab_free(&db->up[1]);
	db->up_base = 0;
}
