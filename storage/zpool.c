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
static ZSTD_CCtx *cctx[POOL];
static ZSTD_DCtx *dctx[POOL];
static int n_cctx, n_dctx;

ZSTD_CCtx *ts_zpool_cctx(void)
{
	ZSTD_CCtx *c = NULL;
	pthread_mutex_lock(&mu);
	if (n_cctx)
		c = cctx[--n_cctx];
	pthread_mutex_unlock(&mu);
	if (!c)
		return ZSTD_createCCtx_advanced(z_mem);
	/* Parameters stick to a context: the next user starts from the defaults. */
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	return c;
}

void ts_zpool_cctx_put(ZSTD_CCtx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&mu);
	if (n_cctx < POOL) {
		cctx[n_cctx++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&mu);
	ZSTD_freeCCtx(c);
}

ZSTD_DCtx *ts_zpool_dctx(void)
{
	ZSTD_DCtx *d = NULL;
	pthread_mutex_lock(&mu);
	if (n_dctx)
		d = dctx[--n_dctx];
	pthread_mutex_unlock(&mu);
	if (!d)
		return ZSTD_createDCtx_advanced(z_mem);
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	return d;
}

void ts_zpool_dctx_put(ZSTD_DCtx *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&mu);
	if (n_dctx < POOL) {
		dctx[n_dctx++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&mu);
	ZSTD_freeDCtx(d);
}
