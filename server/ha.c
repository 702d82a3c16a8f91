/*
 * ha.c - the HA tracker (ha.h).
 *
 * A handful of clusters per store is the expected case, so elections and drop counters
 * are arrays searched linearly; a request decides each distinct (cluster, replica) pair
 * it carries once.
 *
 * State file: a header line "tsdb-ha-tracker 1", then per cluster a line
 * "<tenant bytes> <cluster bytes> <replica bytes> <elected_at_ms> <failovers>" followed
 * by the three strings back to back and a newline (lengths first, so label values may
 * hold any byte). Written to a temporary file, fsynced, renamed over the old one, and
 * the directory fsynced.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/ha.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"

#define MAX_STR 4096 /* longest string the state file may hold */

struct elect {
	char *tenant, *cluster, *replica;
	size_t tl, cl, rl;
	int64_t elected_at, last_seen;
	uint64_t failovers;
};

struct drop {
	char *tenant, *cluster, *replica;
	size_t tl, cl, rl;
	uint64_t samples;
};

struct ts_ha {
	pthread_mutex_t mu;
	char *cluster_label, *replica_label;
	int64_t failover_ms;
	char *path, *tmp_path, *dir;
	struct elect *e;
	size_t n_e, cap_e;
	struct drop *d;
	size_t n_d, cap_d;
};

static char *dup_n(const char *s, size_t n)
{
	char *p = ts_malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static bool same(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && !memcmp(a, b, al);
}

/* ---- the state file ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Rewrites the state file (h->mu held). A failure is logged: the election in memory
 * stands, only a restart would forget it. */
static void save(struct ts_ha *h)
{
	int fd = open(h->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -errno : 0;
	char line[128];
	if (rc == 0)
		rc = write_all(fd, "tsdb-ha-tracker 1\n", 18);
	for (size_t i = 0; i < h->n_e && rc == 0; i++) {
		const struct elect *e = &h->e[i];
		int n = snprintf(line, sizeof line, "%zu %zu %zu %" PRId64 " %" PRIu64 "\n", e->tl,
				 e->cl, e->rl, e->elected_at, e->failovers);
		rc = write_all(fd, line, (size_t)n);
		if (rc == 0)
			rc = write_all(fd, e->tenant, e->tl);
		if (rc == 0)
			rc = write_all(fd, e->cluster, e->cl);
		if (rc == 0)
			rc = write_all(fd, e->replica, e->rl);
		if (rc == 0)
			rc = write_all(fd, "\n", 1);
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(h->tmp_path, h->path) != 0)
		rc = -errno;
	if (rc == 0) {
		int dfd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) != 0)
				rc = -errno;
			close(dfd);
		}
	}
	if (rc)
		ts_log(TS_LOG_WARN, "ha: cannot save the elections to %s: %s", h->path,
		       ts_strerror(rc));
}

static int add_elect(struct ts_ha *h, const char *t, size_t tl, const char *c, size_t cl,
		     const char *r, size_t rl, int64_t at, int64_t seen, uint64_t failovers)
{
	if (ts_grow((void **)&h->e, &h->cap_e, h->n_e + 1, sizeof *h->e))
		return -ENOMEM;
	struct elect e = {
		dup_n(t, tl), dup_n(c, cl), dup_n(r, rl), tl, cl, rl, at, seen, failovers
	};
	if (!e.tenant || !e.cluster || !e.replica) {
		ts_free(e.tenant);
		ts_free(e.cluster);
		ts_free(e.replica);
		return -ENOMEM;
	}
	h->e[h->n_e++] = e;
	return 0;
}

/* Loads the state file; anything malformed ends the load (what was read stays). */
static void load(struct ts_ha *h, int64_t now)
{
	FILE *f = fopen(h->path, "rb");
	if (!f)
		return;
	char hdr[32];
	bool ok = fgets(hdr, sizeof hdr, f) && !strcmp(hdr, "tsdb-ha-tracker 1\n");
	char *buf = ts_malloc(3 * MAX_STR + 1);
	while (ok && buf) {
		size_t tl, cl, rl;
		int64_t at;
		uint64_t fo;
		int n = fscanf(f, "%zu %zu %zu %" SCNd64 " %" SCNu64, &tl, &cl, &rl, &at, &fo);
		if (n == EOF)
			break;
		if (n != 5 || fgetc(f) != '\n' || tl > MAX_STR || cl > MAX_STR || rl > MAX_STR ||
		    fread(buf, 1, tl + cl + rl, f) != tl + cl + rl || fgetc(f) != '\n') {
			ok = false;
			break;
		}
		/* The elected replica gets a whole timeout from now to write again. */
		if (add_elect(h, buf, tl, buf + tl, cl, buf + tl + cl, rl, at, now, fo))
			break;
	}
	ts_free(buf);
	fclose(f);
	if (!ok)
		ts_log(TS_LOG_WARN, "ha: %s is malformed; elections kept from it: %zu", h->path,
		       h->n_e);
	else if (h->n_e)
		ts_log(TS_LOG_INFO, "ha: %zu election(s) restored from %s", h->n_e, h->path);
}

int ts_ha_open(const struct ts_ha_config *c, struct ts_ha **out)
{
	*out = NULL;
	struct ts_ha *h = ts_calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	size_t dl = strlen(c->dir);
	h->cluster_label = ts_strdup(c->cluster_label);
	h->replica_label = ts_strdup(c->replica_label);
	h->dir = ts_strdup(c->dir);
	h->path = ts_malloc(dl + sizeof TS_HA_STATE_FILE + 2);
	h->tmp_path = ts_malloc(dl + sizeof TS_HA_STATE_FILE + 6);
	if (!h->cluster_label || !h->replica_label || !h->dir || !h->path || !h->tmp_path) {
		ts_ha_close(h);
		return -ENOMEM;
	}
	sprintf(h->path, "%s/%s", c->dir, TS_HA_STATE_FILE);
	sprintf(h->tmp_path, "%s/%s.tmp", c->dir, TS_HA_STATE_FILE);
	h->failover_ms = c->failover_ms;
	load(h, ts_wall_ms());
	*out = h;
	return 0;
}

void ts_ha_close(struct ts_ha *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_e; i++) {
		ts_free(h->e[i].tenant);
		ts_free(h->e[i].cluster);
		ts_free(h->e[i].replica);
	}
	for (size_t i = 0; i < h->n_d; i++) {
		ts_free(h->d[i].tenant);
		ts_free(h->d[i].cluster);
		ts_free(h->d[i].replica);
	}
	ts_free(h->e);
	ts_free(h->d);
	ts_free(h->cluster_label);
	ts_free(h->replica_label);
	ts_free(h->dir);
	ts_free(h->path);
	ts_free(h->tmp_path);
	pthread_mutex_destroy(&h->mu);
	ts_free(h);
}

/* ---- elections ---- */

static int decide_locked(struct ts_ha *h, const char *t, size_t tl, const char *c, size_t cl,
			 const char *r, size_t rl, int64_t now)
{
	for (size_t i = 0; i < h->n_e; i++) {
		struct elect *e = &h->e[i];
		if (!same(e->tenant, e->tl, t, tl) || !same(e->cluster, e->cl, c, cl))
			continue;
		if (same(e->replica, e->rl, r, rl)) {
			if (now > e->last_seen)
				e->last_seen = now;
			return 1;
		}
		if (now - e->last_seen <= h->failover_ms)
			return 0;
		char *nr = dup_n(r, rl);
		if (!nr)
			return -ENOMEM;
		ts_log(TS_LOG_INFO,
		       "ha: cluster %.*s: replica %.*s sent nothing for %lld ms; %.*s elected",
		       (int)cl, c, (int)e->rl, e->replica, (long long)(now - e->last_seen), (int)rl,
		       r);
		ts_free(e->replica);
		e->replica = nr;
		e->rl = rl;
		e->elected_at = e->last_seen = now;
		e->failovers++;
		save(h);
		return 1;
	}
	int rc = add_elect(h, t, tl, c, cl, r, rl, now, now, 0);
	if (rc)
		return rc;
	ts_log(TS_LOG_INFO, "ha: cluster %.*s: replica %.*s elected", (int)cl, c, (int)rl, r);
	save(h);
	return 1;
}

int ts_ha_decide(struct ts_ha *h, const char *tenant, const char *cluster, size_t cluster_len,
		 const char *replica, size_t replica_len, int64_t now_ms)
{
	pthread_mutex_lock(&h->mu);
	int rc = decide_locked(h, tenant, strlen(tenant), cluster, cluster_len, replica,
			       replica_len, now_ms);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

static void count_drop(struct ts_ha *h, const char *t, const char *c, size_t cl, const char *r,
		       size_t rl, uint64_t n)
{
	size_t tl = strlen(t);
	pthread_mutex_lock(&h->mu);
	size_t i = 0;
	for (; i < h->n_d; i++)
		if (same(h->d[i].tenant, h->d[i].tl, t, tl) &&
		    same(h->d[i].cluster, h->d[i].cl, c, cl) &&
		    same(h->d[i].replica, h->d[i].rl, r, rl))
			break;
	if (i == h->n_d) {
		struct drop d = { dup_n(t, tl), dup_n(c, cl), dup_n(r, rl), tl, cl, rl, 0 };
		if (!d.tenant || !d.cluster || !d.replica ||
		    ts_grow((void **)&h->d, &h->cap_d, h->n_d + 1, sizeof *h->d)) {
			/* A counter lost to memory pressure; the samples are dropped anyway. */
			ts_free(d.tenant);
			ts_free(d.cluster);
			ts_free(d.replica);
			pthread_mutex_unlock(&h->mu);
			return;
		}
		h->d[h->n_d++] = d;
	}
	h->d[i].samples += n;
	pthread_mutex_unlock(&h->mu);
}

/* ---- filtering a batch ---- */

static const struct ts_label *find(const struct ts_series_in *s, const char *name, size_t nl)
{
	for (uint32_t i = 0; i < s->n_labels; i++)
		if (same(s->labels[i].name, s->labels[i].name_len, name, nl))
			return &s->labels[i];
	return NULL;
}

/* A request's decisions, so that each (cluster, replica) pair is decided once. */
struct verdict {
	const char *c, *r;
	size_t cl, rl;
	int keep;
};

int ts_ha_filter(struct ts_ha *h, const char *tenant, const struct ts_series_in *in, size_t n,
		 struct ts_ha_batch *b, const struct ts_series_in **out, size_t *n_out,
		 const uint32_t **flags, uint64_t *dropped)
{
	*dropped = 0;
	if (!h) {
		*out = in;
		*n_out = n;
		*flags = NULL;
		return 0;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += in[i].n_labels;
	if (ts_grow((void **)&b->in, &b->cap_in, n ? n : 1, sizeof *b->in) ||
	    ts_grow((void **)&b->flags, &b->cap_flags, n ? n : 1, sizeof *b->flags) ||
	    ts_grow((void **)&b->lab, &b->cap_lab, total ? total : 1, sizeof *b->lab))
		return -ENOMEM;
	size_t cln = strlen(h->cluster_label), rln = strlen(h->replica_label);
	struct verdict v[16];
	size_t nv = 0, m = 0, used = 0;
	int64_t now = ts_wall_ms();
	for (size_t i = 0; i < n; i++) {
		const struct ts_label *c = find(&in[i], h->cluster_label, cln);
		const struct ts_label *r = c ? find(&in[i], h->replica_label, rln) : NULL;
		if (!c || !r) {
			b->in[m] = in[i];
			b->flags[m++] = 0;
			continue;
		}
		int keep = -1;
		for (size_t k = 0; k < nv && keep < 0; k++)
			if (same(v[k].c, v[k].cl, c->value, c->value_len) &&
			    same(v[k].r, v[k].rl, r->value, r->value_len))
				keep = v[k].keep;
		if (keep < 0) {
			keep = ts_ha_decide(h, tenant, c->value, c->value_len, r->value,
					    r->value_len, now);
			if (keep < 0)
				return keep;
			if (nv < sizeof v / sizeof v[0])
				v[nv++] = (struct verdict){ c->value, r->value, c->value_len,
							    r->value_len, keep };
		}
		if (!keep) {
			*dropped += in[i].n_samples;
			count_drop(h, tenant, c->value, c->value_len, r->value, r->value_len,
				   in[i].n_samples);
			continue;
		}
		struct ts_label *l = b->lab + used;
		uint32_t nl = 0;
		for (uint32_t j = 0; j < in[i].n_labels; j++)
			if (&in[i].labels[j] != r)
				l[nl++] = in[i].labels[j];
		used += nl;
		b->in[m] = in[i];
		b->in[m].labels = l;
		b->in[m].n_labels = nl;
		b->flags[m++] = TS_APPEND_IN_ORDER;
	}
	*out = b->in;
	*n_out = m;
	*flags = b->flags;
	return 0;
}

void ts_ha_batch_fini(struct ts_ha_batch *b)
{
	ts_free(b->in);
	ts_free(b->flags);
	ts_free(b->lab);
	memset(b, 0, sizeof *b);
}

void ts_ha_each(struct ts_ha *h, void (*fn)(void *arg, const struct ts_ha_state *s),
		void (*drop)(void *arg, const struct ts_ha_drop *d), void *arg)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; fn && i < h->n_e; i++) {
		const struct elect *e = &h->e[i];
		fn(arg, &(struct ts_ha_state){ e->tenant, e->cluster, e->replica, e->elected_at,
					       e->last_seen, e->failovers });
	}
	for (size_t i = 0; drop && i < h->n_d; i++)
		drop(arg, &(struct ts_ha_drop){ h->d[i].tenant, h->d[i].cluster, h->d[i].replica,
						h->d[i].samples });
	pthread_mutex_unlock(&h->mu);
}
