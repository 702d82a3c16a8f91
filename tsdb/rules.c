/*
 * rules.c - retention per selector (ts_db_opts.retention_rules, ts_db_set_retention_rules):
 * a series' retention is that of the first rule whose matchers it matches, at every
 * resolution; series no rule matches follow the database's retention (compact.c).
 *
 * Applied per closed partition P, by the writer (db->fmu held), before the database's
 * retention pass:
 * - A rule whose horizon P passed (P.end <= now - rule) deletes the samples of its series
 *   in P: tombstones over P's range (nothing is rewritten in place; the partition is then
 *   converted with the tombstoned samples left out, its tiers rebuilt).
 * - A rule whose horizon P has not passed keeps P for its series: once P is past the
 *   database's raw retention, P is "kept" while such a series has data there: neither
 *   raw samples nor tier rows are deleted nor the partition removed, and the series no
 *   rule keeps are deleted by tombstones once P is past the database's whole retention.
 *   When no series of a keeping rule is left there, P follows the database's retention.
 * Tombstones already covering P are not added again, so a pass that has nothing new to do
 * writes nothing. Each partition's state (kept or not) is decided once per rule set and
 * open (partition.c's rules_state); compact.c and partition.c wait for that decision
 * while rules exist.
 *
 * Uses: select.c (matching), tombstone.c, compact.c (the rewrite), partition.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"

struct ts__rule {
	struct ts_matcher *m; /* name and value point into buf */
	size_t n;
	int64_t ms;
	char *buf;
};

struct ts__rules {
	struct ts__rule *v;
	size_t n;
	int64_t *done; /* per rule: partitions ending at or before this were tombstoned */
};

void ts__rules_free(struct ts__rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		ts_free(r->v[i].m);
		ts_free(r->v[i].buf);
	}
	ts_free(r->v);
	ts_free(r->done);
	ts_free(r);
}

/* A copy of the rules, checked: matchers compile (ts_db_select on an empty range). */
int ts__rules_new(struct ts_db *db, const struct ts_retention_rule *in, size_t n,
		  struct ts__rules **out, char *msg, size_t msg_len)
{
	struct ts__rules *r = ts_calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->v = ts_calloc(n ? n : 1, sizeof *r->v);
	r->done = ts_calloc(n ? n : 1, sizeof *r->done);
	int rc = r->v && r->done ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (in[i].retention_ms <= 0 || in[i].retention_ms > TS_FORMAT_MAX_T_MS ||
		    (in[i].n_matchers && !in[i].m)) {
			rc = TS_EINVALID;
			if (msg)
				snprintf(msg, msg_len, "rule %zu: retention must be positive",
					 i + 1);
			break;
		}
		size_t len = 0;
		for (size_t k = 0; k < in[i].n_matchers; k++)
			len += strlen(in[i].m[k].name) + strlen(in[i].m[k].value) + 2;
		struct ts__rule *x = &r->v[r->n++];
		x->ms = in[i].retention_ms;
		x->n = in[i].n_matchers;
		x->m = ts_calloc(x->n ? x->n : 1, sizeof *x->m);
		x->buf = ts_malloc(len ? len : 1);
		if (!x->m || !x->buf) {
			rc = -ENOMEM;
			break;
		}
		char *p = x->buf;
		for (size_t k = 0; k < x->n; k++) {
			size_t nl = strlen(in[i].m[k].name) + 1, vl = strlen(in[i].m[k].value) + 1;
			memcpy(p, in[i].m[k].name, nl);
			memcpy(p + nl, in[i].m[k].value, vl);
			x->m[k] = (struct ts_matcher){ in[i].m[k].type, p, p + nl };
			p += nl + vl;
		}
		struct ts_series_set *set = NULL;
		rc = ts_db_select(db, x->m, x->n, 1, 0, NULL, &set, msg, msg_len);
		ts_series_set_free(set);
	}
	for (size_t i = 0; i < r->n; i++)
		r->done[i] = INT64_MIN;
	if (rc) {
		ts__rules_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

struct ids {
	uint64_t *v;
	size_t n, cap;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Ids of the series matching m that have samples in [mint, maxt], sorted. */
static int matching(struct ts_db *db, const struct ts_matcher *m, size_t n, int64_t mint,
		    int64_t maxt, struct ids *out)
{
	struct ts_series_set *set = NULL;
	out->n = 0;
	int rc = ts_db_select(db, m, n, mint, maxt, NULL, &set, NULL, 0);
	for (size_t i = 0; rc == 0 && i < ts_series_set_len(set); i++) {
		int hd = ts_series_set_has_data(set, i);
		if (hd < 0) {
			rc = hd;
			break;
		}
		if (!hd)
			continue;
		if (ts_grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v)) {
			rc = -ENOMEM;
			break;
		}
		out->v[out->n++] = ts_series_set_id(set, i);
	}
	ts_series_set_free(set);
	if (rc == 0 && out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, u64_cmp);
	return rc;
}

/* a minus b (both sorted), in place. */
static void subtract(struct ids *a, const struct ids *b)
{
	size_t w = 0, j = 0;
	for (size_t i = 0; i < a->n; i++) {
		while (j < b->n && b->v[j] < a->v[i])
			j++;
		if (j < b->n && b->v[j] == a->v[i])
			continue;
		a->v[w++] = a->v[i];
	}
	a->n = w;
}

static int merge_into(struct ids *a, const struct ids *b)
{
	if (b->n == 0)
		return 0;
	if (ts_grow((void **)&a->v, &a->cap, a->n + b->n, sizeof *a->v))
		return -ENOMEM;
	memcpy(a->v + a->n, b->v, b->n * sizeof *b->v);
	a->n += b->n;
	qsort(a->v, a->n, sizeof *a->v, u64_cmp);
	size_t w = 0;
	for (size_t i = 0; i < a->n; i++)
		if (w == 0 || a->v[w - 1] != a->v[i])
			a->v[w++] = a->v[i];
	a->n = w;
	return 0;
}

/* Series of rule i with samples in p: matching it and no earlier rule. */
static int first_matched(struct ts_db *db, const struct ts__rules *r, size_t i,
			 const struct ts_partition *p, struct ids *out, struct ids *tmp)
{
	int rc = matching(db, r->v[i].m, r->v[i].n, p->start, p->end - 1, out);
	for (size_t j = 0; j < i && rc == 0 && out->n; j++)
		if ((rc = matching(db, r->v[j].m, r->v[j].n, p->start, p->end - 1, tmp)) == 0)
			subtract(out, tmp);
	return rc;
}

/* Tombstones p's range for the ids not covered yet. 1 if some were added. */
static int delete_in(struct ts_db *db, struct ids *x, const struct ts_partition *p)
{
	struct ts__tombs *t = ts__tombs_get(db);
	size_t w = 0;
	for (size_t i = 0; i < x->n; i++) {
		const struct ts__tomb *tr;
		size_t nt = ts__tombs_of(t, x->v[i], &tr);
		int covered = 0;
		for (size_t k = 0; k < nt && !covered; k++)
			covered = tr[k].mint <= p->start && tr[k].maxt >= p->end - 1;
		if (!covered)
			x->v[w++] = x->v[i];
	}
	ts__tombs_put(t);
	x->n = w;
	if (w == 0)
		return 0;
	int rc = ts__tombs_add(db, x->v, w, p->start, p->end - 1);
	if (rc == 0) {
		atomic_fetch_add(&db->n_rule_deletions, 1);
		ts_log(TS_LOG_INFO, "retention rules: deleted %zu series in %s", w, p->dir);
	}
	return rc ? rc : 1;
}

/* Decides p: kept by a rule or not, and what the rules delete there. */
static int rules_part(struct ts_db *db, struct ts__rules *r, struct ts_partition *p, int64_t now,
		      struct ids *a, struct ids *b, struct ids *keep)
{
	int changed = 0, rc = 0;
	keep->n = 0;
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		int past = p->end <= now - r->v[i].ms;
		if (past && p->end <= r->done[i])
			continue; /* tombstoned by an earlier pass */
		if ((rc = first_matched(db, r, i, p, a, b)))
			break;
		if (past) {
			int d = delete_in(db, a, p);
			rc = d < 0 ? d : 0;
			changed |= d > 0;
		} else {
			rc = merge_into(keep, a);
		}
	}
	if (rc)
		return rc;
	int64_t raw = db->o.retention_ms, all = ts__retention_keep_ms(db);
	int past_raw = raw > 0 && p->end <= now - raw;
	int past_all = all > 0 && p->end <= now - all;
	int kept = keep->n > 0 && (past_raw || past_all);
	if (kept && past_all) {
		/* The series no rule keeps: gone as the database's retention says. */
		static const struct ts_matcher any = { TS_MATCH_RE, "__name__", ".+" };
		if ((rc = matching(db, &any, 1, p->start, p->end - 1, a)))
			return rc;
		subtract(a, keep);
		int d = delete_in(db, a, p);
		if (d < 0)
			return d;
		changed |= d > 0;
	}
	atomic_store(&p->rules_state, kept ? TS__RULES_KEPT : TS__RULES_FREE);
	if (changed)
		ts__compact_clean_part(db, p);
	return 0;
}

int ts__rules_pass(struct ts_db *db, int64_t now)
{
	pthread_mutex_lock(&db->rules_mu);
	if (db->rules_next) {
		ts__rules_free(db->rules);
		db->rules = db->rules_next;
		db->rules_next = NULL;
		atomic_store(&db->n_rules, db->rules->n);
		/* Every partition is decided again before the database's retention acts. */
		pthread_rwlock_rdlock(&db->parts_mu);
		for (size_t i = 0; i < db->n_parts; i++)
			atomic_store(&db->parts[i]->rules_state, TS__RULES_UNKNOWN);
		pthread_rwlock_unlock(&db->parts_mu);
		ts_log(TS_LOG_INFO, "retention rules: %zu in force", db->rules->n);
	}
	struct ts__rules *r = db->rules;
	if (!r || r->n == 0) {
		pthread_mutex_unlock(&db->rules_mu);
		return 0;
	}
	struct ids a = { 0 }, b = { 0 }, keep = { 0 };
	int rc = 0;
	int64_t min_ms = INT64_MAX;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].ms < min_ms)
			min_ms = r->v[i].ms;
	int64_t raw = db->o.retention_ms, all = ts__retention_keep_ms(db);
	struct ts_partition *p;
	for (size_t k = 0; rc == 0 && (p = ts__part_next(db, &k)) != NULL;) {
		/* Something to decide: a rule's horizon passed it, or the database's retention
		 * would act on it; once decided, only newly passed horizons. */
		int due = p->end <= now - min_ms || (raw > 0 && p->end <= now - raw) ||
			  (all > 0 && p->end <= now - all);
		int undecided = atomic_load(&p->rules_state) == TS__RULES_UNKNOWN;
		int newly = 0;
		for (size_t i = 0; i < r->n; i++)
			newly |= p->end <= now - r->v[i].ms && p->end > r->done[i];
		if (due && (undecided || newly))
			rc = rules_part(db, r, p, now, &a, &b, &keep);
		else if (!due)
			atomic_store(&p->rules_state, TS__RULES_FREE);
		ts__part_unref(db, p);
	}
	if (rc == 0)
		for (size_t i = 0; i < r->n; i++) {
			/* Every partition ending by the horizon now was handled. */
			int64_t h = now - r->v[i].ms;
			if (h > r->done[i])
				r->done[i] = h;
		}
	pthread_mutex_unlock(&db->rules_mu);
	ts_free(a.v);
	ts_free(b.v);
	ts_free(keep.v);
	if (rc)
		ts_log(TS_LOG_WARN, "retention rules: %s; tried again later", ts_strerror(rc));
	return rc;
}

int ts_db_set_retention_rules(struct ts_db *db, const struct ts_retention_rule *rules, size_t n,
			      char *msg, size_t msg_len)
{
	struct ts__rules *r;
	int rc = ts__rules_new(db, rules, n, &r, msg, msg_len);
	if (rc)
		return rc;
	/* Handed to the writer's next pass, so a reload never waits for a compaction. */
	pthread_mutex_lock(&db->rules_mu);
	ts__rules_free(db->rules_next);
	db->rules_next = r;
	pthread_mutex_unlock(&db->rules_mu);
	pthread_mutex_lock(&db->wmu);
	db->retention_now = 1;
	pthread_cond_signal(&db->wcond);
	pthread_mutex_unlock(&db->wmu);
	return 0;
}
