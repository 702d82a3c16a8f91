/*
 * metadata.c - per-metric-family metadata (type, help, unit), as Prometheus sends it in
 * remote write and as /api/v1/metadata serves it.
 *
 * Kept in memory as an array sorted by metric name under db->md_mu; changed entries are
 * marked dirty and written by the writer thread in its index transaction. Senders repeat
 * metadata every minute or so, so a crash losing the last changes heals itself.
 *
 * The "metadata" table row is laid out in format.h.
 */
#include <errno.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/metadata.h"
#include "tsdb/utf8.h"

#define MD_MAX TS_FORMAT_MD_MAX_LEN

static int md_cmp(const struct ts_md_entry *e, const char *m, size_t ml)
{
	int c = memcmp(e->metric, m, e->metric_len < ml ? e->metric_len : ml);
	return c ? c : (e->metric_len > ml) - (e->metric_len < ml);
}

/* Index of the first entry >= m. */
static size_t md_find(struct ts_db *db, const char *m, size_t ml)
{
	size_t lo = 0, hi = db->n_md;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (md_cmp(&db->md[mid], m, ml) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int same(const struct ts_md_entry *e, const struct ts_metadata *m)
{
	return e->type == (uint8_t)m->type && e->help_len == m->help_len &&
	       e->unit_len == m->unit_len && memcmp(e->help, m->help, m->help_len) == 0 &&
	       memcmp(e->unit, m->unit, m->unit_len) == 0;
}

/* Sets entry i (existing or just inserted) to m; db->md_mu held. */
static int md_put_locked(struct ts_db *db, const struct ts_metadata *m, int dirty)
{
	size_t i = md_find(db, m->metric, m->metric_len);
	int exists = i < db->n_md && md_cmp(&db->md[i], m->metric, m->metric_len) == 0;
	if (exists && same(&db->md[i], m))
		return 0;
	char *help = ts_strndup(m->help ? m->help : "", m->help_len);
	char *unit = ts_strndup(m->unit ? m->unit : "", m->unit_len);
	char *metric = exists ? NULL : ts_strndup(m->metric, m->metric_len);
	if (!help || !unit || (!exists && !metric))
		goto nomem;
	if (!exists) {
		if (ts_grow((void **)&db->md, &db->cap_md, db->n_md + 1, sizeof *db->md))
			goto nomem;
		memmove(&db->md[i + 1], &db->md[i], (db->n_md - i) * sizeof *db->md);
		db->n_md++;
		memset(&db->md[i], 0, sizeof db->md[i]);
		db->md[i].metric = metric;
		db->md[i].metric_len = m->metric_len;
	}
	struct ts_md_entry *e = &db->md[i];
	ts_free(e->help);
	ts_free(e->unit);
	e->help = help;
	e->help_len = m->help_len;
	e->unit = unit;
	e->unit_len = m->unit_len;
	e->type = (uint8_t)m->type;
	e->dirty = (uint8_t)dirty;
	return 0;
nomem:
	ts_free(help);
	ts_free(unit);
	ts_free(metric);
	return -ENOMEM;
}

int ts_db_set_metadata(struct ts_db *db, const struct ts_metadata *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!md[i].metric_len || md[i].help_len > MD_MAX || md[i].unit_len > MD_MAX ||
		    md[i].metric_len > MD_MAX || (unsigned)md[i].type > TS_MT_STATESET ||
		    !ts_utf8_valid(md[i].metric, md[i].metric_len) ||
		    !ts_utf8_valid(md[i].help ? md[i].help : "", md[i].help_len) ||
		    !ts_utf8_valid(md[i].unit ? md[i].unit : "", md[i].unit_len))
			return TS_EINVALID;
	int rc = 0;
	pthread_mutex_lock(&db->md_mu);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = md_put_locked(db, &md[i], 1);
	pthread_mutex_unlock(&db->md_mu);
	return rc;
}

int ts_db_metadata(struct ts_db *db, const char *metric,
		   int (*fn)(void *arg, const struct ts_metadata *md), void *arg)
{
	int rc = 0;
	pthread_mutex_lock(&db->md_mu);
	size_t from = 0, to = db->n_md;
	if (metric) {
		size_t ml = strlen(metric);
		from = md_find(db, metric, ml);
		to = from < db->n_md && md_cmp(&db->md[from], metric, ml) == 0 ? from + 1 : from;
	}
	for (size_t i = from; i < to && rc == 0; i++) {
		const struct ts_md_entry *e = &db->md[i];
		struct ts_metadata m = { e->metric,
					 e->help,
					 e->unit,
					 e->metric_len,
					 e->help_len,
					 e->unit_len,
					 (enum ts_metric_type)e->type };
		rc = fn(arg, &m);
	}
	pthread_mutex_unlock(&db->md_mu);
	return rc;
}


int ts__md_flush(struct ts_db *db, struct ts_batch *b)
{
	int rc = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;
	pthread_mutex_lock(&db->md_mu);
	for (size_t i = 0; i < db->n_md && rc == 0; i++) {
		struct ts_md_entry *e = &db->md[i];
		if (!e->dirty)
			continue;
		size_t len = TS_FORMAT_MD_FIXED + (size_t)e->help_len + e->unit_len;
		if (len > cap) {
			uint8_t *nb = ts_realloc(buf, len);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = len;
		}
		buf[0] = e->type;
		ts_format_put_le32(buf + 1, e->help_len);
		memcpy(buf + 5, e->help, e->help_len);
		ts_format_put_le32(buf + 5 + e->help_len, e->unit_len);
		memcpy(buf + 9 + e->help_len, e->unit, e->unit_len);
		rc = ts_batch_put(b, db->t_metadata, e->metric, e->metric_len, buf, len);
		/* Marked clean now; a failed commit re-dirties everything (ts__md_redirty). */
		if (rc == 0)
			e->dirty = 0;
	}
	pthread_mutex_unlock(&db->md_mu);
	ts_free(buf);
	return rc;
}

void ts__md_redirty(struct ts_db *db)
{
	pthread_mutex_lock(&db->md_mu);
	for (size_t i = 0; i < db->n_md; i++)
		db->md[i].dirty = 1;
	pthread_mutex_unlock(&db->md_mu);
}

int ts__md_load(struct ts_db *db, const void *key, size_t kl, const void *val, size_t vl)
{
	const uint8_t *p = val;
	if (vl < TS_FORMAT_MD_FIXED || kl == 0 || kl > MD_MAX)
		return TS_CORRUPT();
	uint32_t hl = ts_format_get_le32(p + 1);
	if (hl > vl - TS_FORMAT_MD_FIXED)
		return TS_CORRUPT();
	uint32_t ul = ts_format_get_le32(p + 5 + hl);
	if ((size_t)TS_FORMAT_MD_FIXED + hl + ul != vl || p[0] > TS_MT_STATESET)
		return TS_CORRUPT();
	struct ts_metadata m = {
		key, (const char *)p + 5,      (const char *)p + 9 + hl, (uint32_t)kl, hl,
		ul,  (enum ts_metric_type)p[0]
	};
	pthread_mutex_lock(&db->md_mu);
	int rc = md_put_locked(db, &m, 0);
	pthread_mutex_unlock(&db->md_mu);
	return rc;
}

void ts__md_free(struct ts_db *db)
{
	for (size_t i = 0; i < db->n_md; i++) {
		ts_free(db->md[i].metric);
		ts_free(db->md[i].help);
		ts_free(db->md[i].unit);
	}
	ts_free(db->md);
	db->md = NULL;
	db->n_md = db->cap_md = 0;
}

int ts__md_dirty(struct ts_db *db)
{
	int d = 0;
	pthread_mutex_lock(&db->md_mu);
	for (size_t i = 0; i < db->n_md && !d; i++)
		d = db->md[i].dirty;
	pthread_mutex_unlock(&db->md_mu);
	return d;
}
