/*
 * zpool.c - zstd contexts kept for reuse (zpool.h).
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem: zstd's allocations go to ts_malloc */
#include "storage/zpool.h"

#include <pthread.h>

#include "storage/mem.h"

#define POOL 2 /* of each kind */

static void *z_alloc(void *opaque, size_t size)
{
	(void)opaque;
	return ts_malloc(size);
}

static void z_free(void *opaque, void *p)
{
	(void)opaque;
	ts_free(p);
}

static const ZSTD_customMem z_mem = { z_alloc, z_free, NULL };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* A few contexts of one kind (mu). */
struct pool {
	void *ctx[POOL];
	int n;
};
static struct pool cpool, dpool;

/* A pooled context, or NULL when none is free. */
static void *take(struct pool *p)
{
	void *c = NULL;
	pthread_mutex_lock(&mu);
	if (p->n)
		c = p->ctx[--p->n];
	pthread_mutex_unlock(&mu);
	return c;
}

/* Keeps c (not NULL) if there is room: NULL, or c itself for the caller to free. */
static void *give(struct pool *p, void *c)
{
	pthread_mutex_lock(&mu);
	if (p->n < POOL) {
		p->ctx[p->n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&mu);
	return c;
}

ZSTD_CCtx *ts_zpool_cctx(void)
{
	ZSTD_CCtx *c = take(&cpool);
	if (!c)
		return ZSTD_createCCtx_advanced(z_mem);
	/* Parameters stick to a context: the next user starts from the defaults. */
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	return c;
}

void ts_zpool_cctx_put(ZSTD_CCtx *c)
{
	if (c)
		ZSTD_freeCCtx(give(&cpool, c));
}

ZSTD_DCtx *ts_zpool_dctx(void)
{
	ZSTD_DCtx *d = take(&dpool);
	if (!d)
		return ZSTD_createDCtx_advanced(z_mem);
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	return d;
}

void ts_zpool_dctx_put(ZSTD_DCtx *d)
{
	if (d)
		ZSTD_freeDCtx(give(&dpool, d));
}
