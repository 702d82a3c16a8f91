/*
 * index.h - key helpers shared by the engine's files and by tools that read the index
 * env directly (tsdbctl inspect/verify). Layout: see index.c.
 */
#ifndef TS_TSDB_INDEX_H
#define TS_TSDB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define TS_POSTING_VALUE_MAX 250 /* LMDB keys are <= 511 bytes; names <= 256 */
#define TS_POSTING_KEY_MAX (256 + 1 + TS_POSTING_VALUE_MAX)

void ts__be64(uint8_t *p, uint64_t v);
uint64_t ts__get_be64(const uint8_t *p);
/* Partition directories under <dir>/raw: "<start_ms>_<end_ms>", and during a
 * compaction (compact.c) the same name with ".compact" (the rewrite) or ".old" (the
 * copy being replaced). */
#define TS_PART_COMPACT_SUFFIX ".compact"
#define TS_PART_OLD_SUFFIX ".old"
enum ts_part_dir { TS_PART_DIR_OTHER = 0, TS_PART_DIR_LIVE, TS_PART_DIR_COMPACT, TS_PART_DIR_OLD };
/* Classifies a raw/ entry name; for TS_PART_DIR_LIVE fills *start and *end (may be NULL
 * otherwise). */
enum ts_part_dir ts__part_dir_kind(const char *name, int64_t *start, int64_t *end);

/* Writes name 0x00 value (value cut at TS_POSTING_VALUE_MAX); returns the key length.
 * key must hold nl + 1 + min(vl, TS_POSTING_VALUE_MAX) bytes. */
size_t ts__posting_key(uint8_t *key, const char *name, size_t nl, const char *value, size_t vl);

#endif
