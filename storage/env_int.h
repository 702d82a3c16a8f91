/*
 * env_int.h - test hooks into env.c. Not for use outside storage/ and its tests: they
 * expose internal counters and inject failures LMDB itself cannot be made to produce
 * on demand.
 */
#ifndef TS_STORAGE_ENV_INT_H
#define TS_STORAGE_ENV_INT_H

#include "storage/env.h"

/* The next commit of a write transaction is aborted and reported as the errno `err`
 * (e.g. EIO), as if mdb_txn_commit had failed with it. 0 disarms. Writer thread only. */
void ts__env_fail_next_commit(struct ts_env *env, int err);
/* How many times this handle grew the map after MDB_MAP_FULL. */
unsigned long ts__env_n_grows(struct ts_env *env);
/* Reader slots of the lock file that carry a process id (live or stale), or <0. */
int ts__env_reader_slots(struct ts_env *env);

#endif
