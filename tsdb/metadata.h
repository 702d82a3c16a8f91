/*
 * metadata.h - engine-internal side of metadata.c (the public calls are in tsdb.h).
 */
#ifndef TS_TSDB_METADATA_H
#define TS_TSDB_METADATA_H

#include <stddef.h>
#include <stdint.h>

struct ts_db;
struct ts_batch;

struct ts_md_entry {
	char *metric, *help, *unit; /* owned */
	uint32_t metric_len, help_len, unit_len;
	uint8_t type;
	uint8_t dirty; /* not yet written to the index env */
};

/* Adds dirty entries to the writer's index batch (marks them clean). */
int ts__md_flush(struct ts_db *db, struct ts_batch *b);
/* After a failed index commit: everything is written again next time. */
void ts__md_redirty(struct ts_db *db);
/* Loads one stored row at open. */
int ts__md_load(struct ts_db *db, const void *key, size_t kl, const void *val, size_t vl);
void ts__md_free(struct ts_db *db);
/* Non-zero when some entry waits to be written. */
int ts__md_dirty(struct ts_db *db);

#endif
