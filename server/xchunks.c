/*
 * xchunks.c - non-overlapping chunks of a series (xchunks.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/xchunks.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "storage/xor.h"

struct xs {
	int64_t t;
	uint64_t v;
	uint32_t src;
};

static int xs_cmp(const void *a, const void *b)
{
	const struct xs *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->src > y->src) - (x->src < y->src);
}

/* Emits the current group: one chunk as stored, several merged and re-encoded. */
static int flush_group(struct ts_xchunks *x, ts_xchunk_fn fn, void *arg)
{
	if (x->n_grp == 1) {
		const struct ts_chunk_ref *c = &x->grp[0];
		x->n_grp = 0;
		return fn(arg, c->min_t, c->max_t, c->data, c->len);
	}
	size_t total = 0;
	for (size_t g = 0; g < x->n_grp; g++)
		total += x->grp[g].n_samples;
	if (ts_grow(&x->smp, &x->cap_smp, total, sizeof(struct xs)) != 0)
		return -ENOMEM;
	struct xs *smp = x->smp;
	size_t n = 0;
	int rc = 0;
	for (size_t g = 0; g < x->n_grp && rc == 0; g++) {
		struct ts_xor_it it;
		rc = ts_xor_it_init(&it, x->grp[g].data, x->grp[g].len);
		while (rc == 0 && (rc = ts_xor_next(&it)) == 1) {
			if (n == total) {
				rc = TS_ECORRUPT; /* more samples than the chunk header promised */
				break;
			}
			smp[n++] = (struct xs){ it.t, it.v, (uint32_t)g };
			rc = 0;
		}
	}
	x->n_grp = 0;
	if (rc < 0)
		return rc;
	qsort(smp, n, sizeof *smp, xs_cmp);
	struct ts_xor_enc e;
	ts_xor_enc_init(&e);
	int64_t min_t = 0, last_t = 0;
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i && smp[i].t == last_t)
			continue;
		if (e.n == 0)
			min_t = smp[i].t;
		rc = ts_xor_append(&e, smp[i].t, smp[i].v);
		last_t = smp[i].t;
		if (rc == 0 && e.n == TS_XCHUNK_CUT) {
			rc = fn(arg, min_t, last_t, e.buf, ts_xor_enc_bytes(&e));
			ts_xor_enc_fini(&e);
			ts_xor_enc_init(&e);
		}
	}
	if (rc == 0 && e.n)
		rc = fn(arg, min_t, last_t, e.buf, ts_xor_enc_bytes(&e));
	ts_xor_enc_fini(&e);
	return rc;
}

int ts_xchunks_series(struct ts_xchunks *x, struct ts_series_set *set, size_t i, ts_xchunk_fn fn,
		      void *arg)
{
	struct ts_chunk_it *it = NULL;
	int rc = ts_chunk_it_new(set, i, &it);
	if (rc)
		return rc;
	struct ts_chunk_ref c;
	int64_t grp_max = 0;
	x->n_grp = 0;
	while (rc == 0 && (rc = ts_chunk_it_next(it, &c)) == 1) {
		rc = 0;
		if (c.n_samples == 0)
			continue;
		/* Chunks come in min_t order: a chunk starting after the group's end starts
		 * the next group. */
		if (x->n_grp && c.min_t > grp_max && (rc = flush_group(x, fn, arg)) != 0)
			break;
		if (ts_grow((void **)&x->grp, &x->cap_grp, x->n_grp + 1, sizeof *x->grp) != 0) {
			rc = -ENOMEM;
			break;
		}
		if (x->n_grp == 0 || c.max_t > grp_max)
			grp_max = c.max_t;
		x->grp[x->n_grp++] = c;
	}
	if (rc == 0 && x->n_grp)
		rc = flush_group(x, fn, arg);
	x->n_grp = 0;
	ts_chunk_it_free(it);
	return rc;
}

void ts_xchunks_fini(struct ts_xchunks *x)
{
	ts_free(x->grp);
	ts_free(x->smp);
	memset(x, 0, sizeof *x);
}
