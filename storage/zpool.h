/*
 * zpool.h - zstd contexts kept for reuse by storage/ (cold blocks, index group rows).
 *
 * Why: a context created per call allocates its tables every time, and those above the
 * allocator's mmap threshold (tsdbd sets it: server/main_tsdbd.c) are mapped and
 * faulted in anew by each call: a conversion seals hundreds of blocks and a checkpoint
 * hundreds of group rows. A few contexts of each kind are kept (the writer and a query
 * or two use them at once); more are created and freed as before.
 *
 * Contexts are allocated through ts_malloc, so allocation-failure tests reach them.
 * Thread-safe. Storage-private: zstd stays inside storage/.
 */
#ifndef TS_STORAGE_ZPOOL_H
#define TS_STORAGE_ZPOOL_H

#include <zstd.h>

/* A compression context with every parameter at its default (the caller sets level and
 * flags), or NULL when memory runs out. Give it back with ts_zpool_cctx_put. */
ZSTD_CCtx *ts_zpool_cctx(void);
/* Returns c (NULL accepted) to the pool, or frees it when the pool is full. */
void ts_zpool_cctx_put(ZSTD_CCtx *c);
/* A decompression context, or NULL when memory runs out; give it back likewise. */
ZSTD_DCtx *ts_zpool_dctx(void);
void ts_zpool_dctx_put(ZSTD_DCtx *d);

#endif
