/*
 * xchunks.h - a series' chunks as readers that merge nothing expect them: in time
 * order and never overlapping (remote read's STREAMED_XOR_CHUNKS, the StoreAPI's
 * Series). Stored chunks go out byte for byte. Where the engine has overlapping chunks
 * (out-of-order data, a head chunk beside its flushed copy), each group of mutually
 * overlapping chunks is decoded, merged by timestamp (the first chunk's sample wins a
 * tie: they are exact duplicates, the engine stores no conflicting ones) and
 * re-encoded into chunks of at most TS_XCHUNK_CUT samples, as Prometheus' head cuts
 * them.
 *
 * Threading: a struct ts_xchunks belongs to the thread that iterates the set.
 */
#ifndef TS_SERVER_XCHUNKS_H
#define TS_SERVER_XCHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

#define TS_XCHUNK_CUT 120

/* Scratch reused across series; zero-initialise. */
struct ts_xchunks {
	struct ts_chunk_ref *grp;
	size_t n_grp, cap_grp;
	void *smp;
	size_t cap_smp;
};

/* Called per chunk, in time order: [mint, maxt] and the XOR bytes data[0..len)
 * (borrowed for the call). Non-zero stops the walk and is returned. */
typedef int (*ts_xchunk_fn)(void *arg, int64_t mint, int64_t maxt, const uint8_t *data, size_t len);

/* Walks series i of set. Returns 0, fn's non-zero return, or an engine error of
 * ts_chunk_it_new (TS_ECORRUPT, -ENOMEM), or TS_ECORRUPT for a chunk that decodes to
 * more samples than its header says. */
int ts_xchunks_series(struct ts_xchunks *x, struct ts_series_set *set, size_t i, ts_xchunk_fn fn,
		      void *arg);
/* Frees the scratch. Accepts a zeroed one. */
void ts_xchunks_fini(struct ts_xchunks *x);

#endif
