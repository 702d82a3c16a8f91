/*
 * limits.c - the series limits of ts_db_opts (max_series, max_series_per_metric): how
 * many series live, in all and per metric name, and whether a new one may join.
 *
 * A series is counted from the batch that creates it (append, under db->mu) until gc.c
 * removes it; a series whose samples were all refused is uncounted at once. Counts are
 * rebuilt at open from the registry, so they need nothing on disk. The per-metric table
 * exists only when that limit is set.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/labels.h"

/* The slot of metric name[0..len) (empty when absent); the table must have room. */
static struct ts__name_count *slot(struct ts_db *db, const char *name, uint32_t len, uint64_t h)
{
	size_t mask = db->lim_cap - 1, i = (size_t)h & mask;
	for (;; i = (i + 1) & mask) {
		struct ts__name_count *c = &db->lim_names[i];
		if (!c->name || (c->hash == h && c->len == len && !memcmp(c->name, name, len)))
			return c;
	}
}

static int grow(struct ts_db *db)
{
	if (db->lim_cap && db->lim_n * 4 < db->lim_cap * 3)
		return 0;
	size_t cap = db->lim_cap ? db->lim_cap * 2 : 256;
	struct ts__name_count *old = db->lim_names;
	size_t old_cap = db->lim_cap;
	db->lim_names = ts_calloc(cap, sizeof *db->lim_names);
	if (!db->lim_names) {
		db->lim_names = old;
		return -ENOMEM;
	}
	db->lim_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].name)
			*slot(db, old[i].name, old[i].len, old[i].hash) = old[i];
	ts_free(old);
	return 0;
}

#define KEY_MAX (4096 + 1)

/* The table key of s's value of `label` (absent: "") under kind ('m' for metric names,
 * 't' for the hidden label's values): kind, then the value, so one table holds both.
 * Values past 4 KiB (only metric names can be, with a raised
 * --max-label-value-length) count by their first 4 KiB. Returns the key's length;
 * *value and *len get the value. */
static uint32_t count_key(const struct ts_series *s, const char *label, char kind,
			  char key[KEY_MAX], const char **value, uint32_t *len)
{
	const char *v = "";
	uint32_t vl = 0;
	if (ts_labels_get(s->packed, s->packed_len, label, &v, &vl) != 1) {
		v = "";
		vl = 0;
	}
	*value = v;
	*len = vl;
	uint32_t kl = vl < KEY_MAX - 1 ? vl + 1 : KEY_MAX;
	key[0] = kind;
	memcpy(key + 1, v, kl - 1);
	return kl;
}

/* The count of s's value of `label` under kind, created at 0 when absent; NULL on
 * -ENOMEM. *value and *len get the value. */
static uint64_t *value_count(struct ts_db *db, const struct ts_series *s, const char *label,
			     char kind, const char **value, uint32_t *len)
{
	if (grow(db))
		return NULL;
	char key[KEY_MAX];
	uint32_t kl = count_key(s, label, kind, key, value, len);
	uint64_t h = XXH3_64bits(key, kl);
	struct ts__name_count *c = slot(db, key, kl, h);
	if (!c->name) {
		c->name = ts_malloc(kl + 1);
		if (!c->name)
			return NULL;
		memcpy(c->name, key, kl);
		c->name[kl] = 0;
		c->len = kl;
		c->hash = h;
		c->count = 0;
		c->tokens = -1;
		db->lim_n++;
	}
	return &c->count;
}

struct init_ctx {
	struct ts_db *db;
	int rc;
};

static void count_one(void *arg, const struct ts_series *s)
{
	struct init_ctx *x = arg;
	if (!s->logged || s->dead || x->rc)
		return;
	x->db->n_live++;
	((struct ts_series *)s)->limit_counted = 1;
	const char *n;
	uint32_t l;
	if (x->db->o.max_series_per_metric) {
		uint64_t *c = value_count(x->db, s, "__name__", 'm', &n, &l);
		if (!c)
			x->rc = -ENOMEM;
		else
			(*c)++;
	}
	if ((x->db->o.max_series_per_hidden || x->db->o.new_series_per_minute_per_hidden) &&
	    x->db->hidden_len) {
		uint64_t *c = value_count(x->db, s, x->db->hidden, 't', &n, &l);
		if (!c)
			x->rc = -ENOMEM;
		else
			(*c)++;
	}
}

int ts__limits_init(struct ts_db *db)
{
	struct init_ctx x = { db, 0 };
	db->n_live = 0;
	ts__series_each(db, count_one, &x);
	return x.rc;
}

int ts__limits_take(struct ts_db *db, struct ts_series *s, int *which, char *why, size_t why_len)
{
	*which = 0;
	if (s->limit_counted)
		return 0;
	if (db->o.max_series && db->n_live >= db->o.max_series) {
		*which = 1;
		snprintf(why, why_len,
			 "series limit reached: %llu series (max_series); new series are refused, "
			 "existing series keep taking samples",
			 (unsigned long long)db->o.max_series);
		return TS_ELIMIT;
	}
	uint64_t *tc = NULL;
	if ((db->o.max_series_per_hidden || db->o.new_series_per_minute_per_hidden) &&
	    db->hidden_len) {
		const char *n;
		uint32_t l;
		tc = value_count(db, s, db->hidden, 't', &n, &l);
		if (!tc)
			return -ENOMEM;
		uint32_t per_min = db->o.new_series_per_minute_per_hidden;
		if (per_min) {
			/* A token bucket on the count's entry: per_min a minute, burst per_min. */
			struct ts__name_count *e =
				(struct ts__name_count *)(void *)((char *)tc -
								  offsetof(struct ts__name_count,
									   count));
			int64_t now = ts_wall_ms();
			if (e->tokens < 0)
				e->tokens = per_min;
			else
				e->tokens += (double)(now - e->last_ms) * per_min / 60000.0;
			if (e->tokens > per_min)
				e->tokens = per_min;
			e->last_ms = now;
			if (e->tokens < 1) {
				*which = 4;
				snprintf(why, why_len,
					 "tenant new-series rate limit reached: %u new series per "
					 "minute (new_series_per_minute)",
					 per_min);
				return TS_ELIMIT;
			}
		}
		if (db->o.max_series_per_hidden && *tc >= db->o.max_series_per_hidden) {
			*which = 3;
			snprintf(why, why_len,
				 "tenant series limit reached: %llu series (max_series_per_tenant)",
				 (unsigned long long)db->o.max_series_per_hidden);
			return TS_ELIMIT;
		}
	}
	if (db->o.max_series_per_metric) {
		const char *n;
		uint32_t l;
		uint64_t *c = value_count(db, s, "__name__", 'm', &n, &l);
		if (!c)
			return -ENOMEM;
		if (*c >= db->o.max_series_per_metric) {
			*which = 2;
			snprintf(why, why_len,
				 "per-metric series limit reached for %.*s: %llu series "
				 "(max_series_per_metric)",
				 (int)(l < 100 ? l : 100), n,
				 (unsigned long long)db->o.max_series_per_metric);
			return TS_ELIMIT;
		}
		(*c)++;
	}
	if (tc) {
		(*tc)++;
		if (db->o.new_series_per_minute_per_hidden)
			((struct ts__name_count *)(void *)((char *)tc -
							   offsetof(struct ts__name_count, count)))
				->tokens -= 1;
	}
	db->n_live++;
	s->limit_counted = 1;
	return 0;
}

/* Decrements the count of s's value of `label` under kind, if there is one. */
static void uncount(struct ts_db *db, const struct ts_series *s, const char *label, char kind)
{
	if (!db->lim_cap)
		return;
	char key[KEY_MAX];
	const char *v;
	uint32_t vl;
	uint32_t kl = count_key(s, label, kind, key, &v, &vl);
	struct ts__name_count *c = slot(db, key, kl, XXH3_64bits(key, kl));
	if (c->name && c->count)
		c->count--;
}

void ts__limits_release(struct ts_db *db, struct ts_series *s)
{
	if (!s->limit_counted)
		return;
	s->limit_counted = 0;
	if (db->n_live)
		db->n_live--;
	if (db->o.max_series_per_metric)
		uncount(db, s, "__name__", 'm');
	if ((db->o.max_series_per_hidden || db->o.new_series_per_minute_per_hidden) &&
	    db->hidden_len)
		uncount(db, s, db->hidden, 't');
}

void ts__limits_free(struct ts_db *db)
{
	for (size_t i = 0; i < db->lim_cap; i++)
		ts_free(db->lim_names[i].name);
	ts_free(db->lim_names);
	db->lim_names = NULL;
	db->lim_cap = db->lim_n = 0;
}
