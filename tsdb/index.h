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
/* Writes name 0x00 value (value cut at TS_POSTING_VALUE_MAX); returns the key length.
 * key must hold nl + 1 + min(vl, TS_POSTING_VALUE_MAX) bytes. */
size_t ts__posting_key(uint8_t *key, const char *name, size_t nl, const char *value, size_t vl);

#endif
