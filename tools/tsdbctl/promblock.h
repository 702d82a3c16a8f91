/*
 * promblock.h - decoding Prometheus TSDB blocks (Prometheus' tsdb/docs/format), for
 * `tsdbctl import --format prometheus` (import.c).
 *
 * Everything here decodes bytes the caller holds (a file read or mapped whole) and
 * trusts none of them: every length, count, offset and reference is checked against the
 * buffer, every section's CRC32C is verified, and a failure is an error with the reason
 * in `why` (NUL-terminated), never a read out of bounds. fuzz/fuzz_promblock.c drives
 * these functions with arbitrary bytes. Only what an importer needs is read: index
 * format 2 (Prometheus 2.x since 2.0's final format), chunk segment files of format 1,
 * tombstones of format 1, and meta.json's version and time range.
 */
#ifndef TSDBCTL_PROMBLOCK_H
#define TSDBCTL_PROMBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

/* Chunk encodings of a segment file. */
enum { PB_ENC_XOR = 1, PB_ENC_HISTOGRAM = 2, PB_ENC_FLOAT_HISTOGRAM = 3 };

/* An opened index: borrows the caller's bytes p[0..n), which must outlive it. */
struct pb_index {
	const uint8_t *p;
	size_t n;
	uint64_t toc[6]; /* symbols, series, label indices, their table, postings, its table */
	uint32_t n_sym;
	uint64_t *sym_off; /* offset of each symbol's length; owned */
	uint32_t *series;  /* series references (offset / 16), sorted; owned */
	size_t n_series;
};

/* Checks the header, the TOC and the symbol table and reads the list of all series
 * (the postings of the empty label pair). Returns 0, TS_ECORRUPT (the file is damaged
 * or not an index), TS_EVERSION (an index format other than 2) or -ENOMEM; on error
 * nothing is held. */
int pb_index_open(struct pb_index *ix, const uint8_t *p, size_t n, char *why, size_t why_len);
void pb_index_close(struct pb_index *ix);

struct pb_chunk_meta {
	int64_t mint, maxt; /* inclusive */
	uint64_t ref;	    /* segment file index << 32 | offset */
};

/* One series: labels alias the index bytes (not NUL-terminated), in the index's order
 * (sorted by name). The arrays are reused from one call to the next; free with
 * pb_series_fini. */
struct pb_series {
	struct ts_label *labels;
	uint32_t n_labels;
	size_t cap_labels;
	struct pb_chunk_meta *chunks;
	size_t n_chunks, cap_chunks;
};

/* Reads series `ref` of the index. Returns 0, TS_ECORRUPT or -ENOMEM. */
int pb_series_read(const struct pb_index *ix, uint32_t ref, struct pb_series *s, char *why,
		   size_t why_len);
void pb_series_fini(struct pb_series *s);

/* Checks a chunk segment file's header. Returns 0 or TS_ECORRUPT/TS_EVERSION. */
int pb_segment_check(const uint8_t *p, size_t n, char *why, size_t why_len);

/* The chunk at offset `off` of a segment file p[0..n): its encoding and its data
 * (aliasing p). Verifies the chunk's CRC32C. Returns 0 or TS_ECORRUPT. */
int pb_chunk_at(const uint8_t *p, size_t n, uint64_t off, uint8_t *enc, const uint8_t **data,
		size_t *len, char *why, size_t why_len);

/* A deleted interval of one series, both ends inclusive. */
struct pb_stone {
	uint64_t ref;
	int64_t mint, maxt;
};

/* Parses a tombstones file. *out (owned by the caller, ts_free) is sorted by ref.
 * Returns 0, TS_ECORRUPT, TS_EVERSION or -ENOMEM. */
int pb_tombstones_parse(const uint8_t *p, size_t n, struct pb_stone **out, size_t *n_out, char *why,
			size_t why_len);

/* Reads meta.json's "version" (must be 1) and "minTime"/"maxTime" (maxTime
 * exclusive). Returns 0, TS_ECORRUPT or TS_EVERSION. */
int pb_meta_parse(const char *p, size_t n, int64_t *mint, int64_t *maxt, char *why, size_t why_len);

#endif
