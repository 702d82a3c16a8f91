/*
 * lookup.c - distinct label names and label values, for the Prometheus API's
 * /labels and /label/<name>/values and for Grafana's variable and tag queries.
 *
 * Without matchers the postings table answers directly: its keys are "name\0value",
 * sorted, so names are found by skipping from one name to the next, and values by a
 * prefix scan. Values longer than the postings key keeps are read back from the labels
 * of the series they list. Series not yet in the postings are added from memory.
 * With matchers, the matching series are selected and their labels read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

void ts_strlist_free(struct ts_strlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		ts_free(l->v[i]);
	ts_free(l->v);
	ts_free(l->len);
	memset(l, 0, sizeof *l);
}

static int sl_add(struct ts_strlist *l, const char *s, size_t len)
{
	/* Two arrays of one capacity: both grow alike, l->cap moves once both have. */
	size_t cap_v = l->cap, cap_len = l->cap;
	if (ts_grow((void **)&l->v, &cap_v, l->n + 1, sizeof *l->v) ||
	    ts_grow((void **)&l->len, &cap_len, l->n + 1, sizeof *l->len))
		return -ENOMEM;
	l->cap = cap_v;
	char *c = ts_strndup(s, len);
	if (!c)
		return -ENOMEM;
	l->v[l->n] = c;
	l->len[l->n++] = (uint32_t)len;
	return 0;
}

/* The strings already in a list, by hash: a value shared by many series is added once.
 * Listing the values of a label over a million series added (copied) one string per
 * series and then sorted them all to drop the duplicates. */
struct seen {
	uint32_t *slot; /* index into the list + 1; 0: empty */
	size_t cap;	/* a power of two; at most half full */
};

static void seen_fini(struct seen *t)
{
	ts_free(t->slot);
	memset(t, 0, sizeof *t);
}

static int seen_grow(struct seen *t, const struct ts_strlist *l)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	uint32_t *slot = ts_calloc(cap, sizeof *slot);
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		size_t h = (size_t)XXH3_64bits(l->v[i], l->len[i]) & (cap - 1);
		while (slot[h])
			h = (h + 1) & (cap - 1);
		slot[h] = (uint32_t)i + 1;
	}
	ts_free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* sl_add unless s is in the list already (t NULL: always add). */
static int sl_add_new(struct ts_strlist *l, struct seen *t, const char *s, size_t len)
{
	if (!t || l->n >= UINT32_MAX - 1)
		return sl_add(l, s, len);
	if ((l->n + 1) * 2 > t->cap && seen_grow(t, l))
		return -ENOMEM;
	size_t h = (size_t)XXH3_64bits(s, len) & (t->cap - 1);
	for (; t->slot[h]; h = (h + 1) & (t->cap - 1)) {
		size_t i = t->slot[h] - 1;
		if (l->len[i] == len && memcmp(l->v[i], s, len) == 0)
			return 0;
	}
	int rc = sl_add(l, s, len);
	if (rc == 0)
		t->slot[h] = (uint32_t)l->n;
	return rc;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int idx_cmp(const void *x, const void *y, void *arg)
{
	const struct ts_strlist *l = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	return bytes_cmp(l->v[a], l->len[a], l->v[b], l->len[b]);
}

/* Sorts the list and removes duplicates. */
static int sl_finish(struct ts_strlist *l)
{
	if (l->n < 2)
		return 0;
	size_t *idx = ts_malloc(l->n * sizeof *idx);
	char **v = ts_malloc(l->n * sizeof *v);
	uint32_t *len = ts_malloc(l->n * sizeof *len);
	if (!idx || !v || !len) {
		ts_free(idx);
		ts_free(v);
		ts_free(len);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++)
		idx[i] = i;
	qsort_r(idx, l->n, sizeof *idx, idx_cmp, l);
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t j = idx[i];
		if (k && bytes_cmp(v[k - 1], len[k - 1], l->v[j], l->len[j]) == 0) {
			ts_free(l->v[j]);
			continue;
		}
		v[k] = l->v[j];
		len[k++] = l->len[j];
	}
	ts_free(l->v);
	ts_free(l->len);
	ts_free(idx);
	l->v = v;
	l->len = len;
	l->n = k;
	l->cap = l->n;
	return 0;
}

/* Adds the label names (name == NULL) or the value of `name` of one packed label set. */
static int add_from_labels(struct ts_strlist *out, struct seen *t, const uint8_t *packed,
			   size_t plen, const char *name)
{
	if (name) {
		const char *v;
		uint32_t vl;
		int r = ts_labels_get(packed, plen, name, &v, &vl);
		if (r < 0)
			return r;
		return r ? sl_add_new(out, t, v, vl) : 0;
	}
	/* --max-labels may allow more labels than fit the stack array. */
	struct ts_label stack[64], *l = stack;
	int cnt = ts_labels_count(packed, plen);
	if (cnt < 0)
		return cnt;
	if ((size_t)cnt > sizeof stack / sizeof stack[0] &&
	    !(l = ts_malloc((size_t)cnt * sizeof *l)))
		return -ENOMEM;
	uint32_t n = 0;
	int rc = ts_labels_unpack(packed, plen, l, (uint32_t)cnt, &n);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = sl_add_new(out, t, l[i].name, l[i].name_len);
	if (l != stack)
		ts_free(l);
	return rc;
}

static int from_selection(struct ts_db *db, const char *name, const struct ts_matcher *m,
			  size_t n_matchers, int64_t mint, int64_t maxt, struct ts_strlist *out,
			  char *msg, size_t msg_len)
{
	struct ts_series_set *set;
	/* Membership does not depend on the time range (as ts_db_select's): labels only. */
	(void)mint;
	(void)maxt;
	int rc = ts__select_series(db, m, n_matchers, &set, msg, msg_len);
	if (rc)
		return rc;
	struct seen t = { 0 };
	for (size_t i = 0; i < ts_series_set_len(set) && rc == 0; i++) {
		struct ts_series *s = ts__series_by_id(db, ts_series_set_id(set, i));
		rc = s ? add_from_labels(out, &t, s->packed, s->packed_len, name) : TS_CORRUPT();
	}
	seen_fini(&t);
	ts_series_set_free(set);
	return rc;
}

/* Every series not yet in the postings contributes from memory. Taken before the
 * postings snapshot (see db_int.h), so a series moving into the postings is not missed. */
static int from_unindexed(struct ts_db *db, const char *name, struct ts_strlist *out)
{
	struct seen t = { 0 };
	pthread_mutex_lock(&db->mu);
	int rc = 0;
	for (size_t i = 0; i < db->n_unindexed && rc == 0; i++)
		rc = add_from_labels(out, &t, db->unindexed[i]->packed,
				     db->unindexed[i]->packed_len, name);
	pthread_mutex_unlock(&db->mu);
	seen_fini(&t);
	return rc;
}

static int from_postings(struct ts_db *db, const char *name, struct ts_strlist *out)
{
	struct ts_rtxn *r = NULL;
	struct ts_cursor *c = NULL;
	uint64_t *ids = NULL;
	size_t n_ids = 0, cap_ids = 0;
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX + 1];
	size_t pl = 0;
	if (name) {
		pl = strlen(name) + 1;
		if (pl > 257)
			return 0;
		memcpy(key, name, pl); /* includes the NUL separator */
	} else {
		key[0] = 1; /* past the "\0" all-series key */
		pl = 1;
	}
	int rc = ts_env_read_begin(db->index, &r);
	if (rc == 0)
		rc = ts_cursor_open(r, db->t_postings, &c);
	for (rc = rc ? rc : ts_cursor_seek(c, key, pl); rc == 0;) {
		const void *kp, *vp;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &kp, &kl, &vp, &vl)))
			break;
		const char *k = kp;
		const char *sep = memchr(k, 0, kl);
		if (!sep) {
			rc = TS_CORRUPT();
			break;
		}
		size_t nl = (size_t)(sep - k);
		uint8_t next[TS_FORMAT_POSTING_KEY_MAX + 1];
		size_t next_len;
		if (!name) {
			rc = sl_add(out, k, nl);
			/* Skip this name's other values: "name\x01" sorts after all "name\0...". */
			memcpy(next, k, nl);
			next[nl] = 1;
			next_len = nl + 1;
		} else {
			if (kl < pl || memcmp(k, key, pl) != 0)
				break;
			size_t vlen = kl - pl;
			if (vlen >= TS_FORMAT_POSTING_VALUE_MAX) {
				/* A cut value: read the real ones from the series it lists. */
				n_ids = 0;
				rc = ts_env_get_u64s(r, db->t_postings, k, kl, &ids, &n_ids,
						     &cap_ids);
				for (size_t i = 0; i < n_ids && rc == 0; i++) {
					struct ts_series *s = ts__series_by_id(db, ids[i]);
					rc = s ? add_from_labels(out, NULL, s->packed,
								 s->packed_len, name)
					       : TS_CORRUPT();
				}
			} else {
				rc = sl_add(out, k + pl, vlen);
			}
			memcpy(next, k, kl);
			next[kl] = 0; /* the smallest key after this one's duplicates */
			next_len = kl + 1;
		}
		if (rc)
			break;
		rc = ts_cursor_seek(c, next, next_len);
	}
	if (rc == TS_ENOTFOUND)
		rc = 0;
	ts_cursor_close(c);
	ts_env_read_end(r);
	ts_free(ids);
	return rc;
}

static int lookup(struct ts_db *db, const char *name, const struct ts_matcher *m, size_t n_matchers,
		  int64_t mint, int64_t maxt, struct ts_strlist *out, char *msg, size_t msg_len)
{
	int rc;
	/* The hidden label (tenants) has no values to list. */
	if (name && db->hidden_len && !strcmp(name, db->hidden))
		return 0;
	if (n_matchers) {
		rc = from_selection(db, name, m, n_matchers, mint, maxt, out, msg, msg_len);
	} else {
		rc = from_unindexed(db, name, out);
		if (rc == 0)
			rc = from_postings(db, name, out);
	}
	if (rc == 0)
		rc = sl_finish(out);
	/* ... and no name. */
	for (size_t i = 0; rc == 0 && !name && db->hidden_len && i < out->n; i++)
		if (out->len[i] == db->hidden_len &&
		    !memcmp(out->v[i], db->hidden, db->hidden_len)) {
			ts_free(out->v[i]);
			memmove(&out->v[i], &out->v[i + 1], (out->n - i - 1) * sizeof *out->v);
			memmove(&out->len[i], &out->len[i + 1],
				(out->n - i - 1) * sizeof *out->len);
			out->n--;
			break;
		}
	return rc;
}

int ts_db_label_names(struct ts_db *db, const struct ts_matcher *m, size_t n_matchers, int64_t mint,
		      int64_t maxt, struct ts_strlist *out, char *msg, size_t msg_len)
{
	return lookup(db, NULL, m, n_matchers, mint, maxt, out, msg, msg_len);
}

int ts_db_label_values(struct ts_db *db, const char *name, const struct ts_matcher *m,
		       size_t n_matchers, int64_t mint, int64_t maxt, struct ts_strlist *out,
		       char *msg, size_t msg_len)
{
	if (!name || !*name)
		return TS_EINVALID;
	return lookup(db, name, m, n_matchers, mint, maxt, out, msg, msg_len);
}
