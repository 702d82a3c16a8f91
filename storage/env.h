/*
 * env.h - LMDB environments as the rest of the engine sees them: named tables, write
 * batches applied in one transaction by a single writer, and read snapshots.
 *
 * Why batches: LMDB aborts a transaction on MDB_MAP_FULL. ts_env_apply() keeps the
 * batch's operations in memory, so on MAP_FULL it aborts, doubles the map size (waiting
 * for this process' readers to leave, because mdb_env_set_mapsize unmaps the file under
 * them) and applies the same batch again: a full map never loses work.
 *
 * Reader hygiene: on open, mdb_reader_check() clears slots left by dead processes
 * (kill -9); ts_env_reader_check() can be called periodically.
 *
 * Threading: any number of threads may read (each read snapshot belongs to one thread
 * at a time); ts_env_apply() is serialised internally. Environments are opened with
 * MDB_NOTLS so read snapshots may move between worker threads.
 * Error codes: MDB_* are translated with ts_err_from_mdb(); nothing returns MDB_* raw.
 */
#ifndef TS_STORAGE_ENV_H
#define TS_STORAGE_ENV_H

#include <stddef.h>
#include <stdint.h>

#define TS_ENV_MAX_TABLES 16

/* Table flags (mapped to MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERKEY...). */
#define TS_TABLE_DUPFIXED_U64 \
	0x1 /* duplicate sorted fixed 8-byte values (postings):
					* each value is a host-order uint64_t, sorted numerically */
/* Sets of u64 under each key, stored as delta blocks (below): MDB_DUPSORT, one block per
 * duplicate. Written only with ts_batch_add_u64s() and value-less ts_batch_del(); read
 * with ts_env_get_u64s(), or block by block through a cursor and ts_env_u64_block_decode. */
#define TS_TABLE_U64_BLOCKS 0x2
/* With either flag above or none: open the table only if it exists (TS_ENOTFOUND
 * otherwise, also when writable). For tables of an older format that are read once. */
#define TS_TABLE_IF_EXISTS 0x4

/*
 * Delta block: one duplicate value of a TS_TABLE_U64_BLOCKS key, a run of ascending
 * unique ids.
 *   | off | size     | field                                                   |
 *   |-----|----------|---------------------------------------------------------|
 *   | 0   | 8        | first id, u64 BE (so LMDB's memcmp order of a key's     |
 *   |     |          | blocks is id order)                                     |
 *   | 8   | 1-10 each| each next id minus the one before (>= 1), as a LEB128    |
 *   |     |          | varint (7 bits a byte, low first, high bit: more);       |
 *   |     |          | minimal length (no final 0x00 byte after the first)     |
 * A block is at most TS_ENV_U64_BLOCK_MAX bytes (LMDB keeps DUPSORT values <= 511
 * bytes); the first id of a key's next block is above the last id of this one. Writers
 * fill blocks up to the bound, so dense ids (consecutive series) cost about a byte each.
 */
#define TS_ENV_U64_BLOCK_MAX 480
/* The most ids a block of `len` bytes can hold (8 bytes for the first, >= 1 per delta). */
#define TS_ENV_U64_BLOCK_IDS(len) ((len) < 8 ? 0 : (len)-7)

struct ts_env_opts {
	uint64_t map_bytes; /* initial map size; 0 means 256 MiB. Grows on demand.
			       * Ignored when read_only: the size the writer recorded is used. */
	int read_only;	    /* MDB_RDONLY: for tools reading a live server's data */
	int no_sync;	    /* MDB_NOSYNC: durability comes from elsewhere (tests, WAL) */
};

struct ts_env;

/* Opens or creates the env directory `dir` (mkdir -p). Returns 0, -errno, TS_ECORRUPT,
 * TS_EBUSY (also: this process already has `dir` open; LMDB's locks allow one handle
 * per process). *out owned by caller, close with ts_env_close(). */
int ts_env_open(const char *dir, const struct ts_env_opts *opts, struct ts_env **out);
/* Closes. All read snapshots must be ended first. Accepts NULL. */
void ts_env_close(struct ts_env *env);

/* Opens (creating unless read-only) table `name` and returns its handle in *table.
 * Call right after open, before other threads use env. Returns 0, TS_ENOTFOUND
 * (read-only and absent), TS_ELIMIT (more than TS_ENV_MAX_TABLES). */
int ts_env_table(struct ts_env *env, const char *name, unsigned flags, unsigned *table);

/* A batch of puts and deletes, copied into the batch's own memory (keys and values
 * passed in are borrowed only for the call). Reusable after ts_batch_reset(). A batch
 * belongs to one thread at a time and to no env until ts_env_apply(). */
struct ts_batch;
/* Creates an empty batch; *out is owned by the caller (ts_batch_free). 0 or -ENOMEM. */
int ts_batch_new(struct ts_batch **out);
/* Frees b and everything queued. Accepts NULL. */
void ts_batch_free(struct ts_batch *b);
/* Drops every queued operation, keeping the memory (and the append mode). Never fails. */
void ts_batch_reset(struct ts_batch *b);
/* Operations queued. Never fails. */
size_t ts_batch_len(const struct ts_batch *b);
/* Append mode: every put's key must sort after every key already in its table (and
 * after the batch's previous puts); LMDB then fills pages completely instead of
 * splitting them in half, which is how a rewrite in key order packs an env tightly.
 * A put that breaks the order fails the batch with TS_EINVALID. Survives reset. */
void ts_batch_set_append(struct ts_batch *b, int on);
/* Queues a put of key (klen > 0 bytes) -> val (vlen bytes; val may be NULL when vlen is
 * 0) into `table`; both are copied. Returns 0, -ENOMEM, TS_EINVALID (no key, a table
 * handle out of range, val NULL with vlen > 0), TS_ELIMIT (a length over 4 GiB or a
 * batch too large to address). Checks against the env (table opened, key order in
 * append mode, DUPFIXED value size) happen in ts_env_apply(). */
int ts_batch_put(struct ts_batch *b, unsigned table, const void *key, size_t klen, const void *val,
		 size_t vlen);
/* Queues a delete. For DUPFIXED tables: deletes exactly (key,val), or every value of
 * key when val is NULL; for others val may be NULL. Deleting what is absent is not an
 * error. Returns as ts_batch_put(). */
int ts_batch_del(struct ts_batch *b, unsigned table, const void *key, size_t klen, const void *val,
		 size_t vlen);

/* Queues adding ids[0..n) (any order; duplicates and ids already present are ignored)
 * to the set under key in a TS_TABLE_U64_BLOCKS table; ids are copied. Ids above the
 * key's largest are appended to its last block (rewritten) and new full blocks; others
 * are merged into the block that covers them (split in two when it overflows). The adds
 * of consecutive calls are grouped by key when applied, so a key is rewritten once per
 * batch. Returns as ts_batch_put() (also TS_EINVALID for n == 0 or ids NULL). */
int ts_batch_add_u64s(struct ts_batch *b, unsigned table, const void *key, size_t klen,
		      const uint64_t *ids, size_t n);
/* Queues the deletion of table itself (LMDB's mdb_drop: the name, its rows and pages),
 * e.g. the table of an older format once converted. Once the batch commits, the handle
 * is invalid (every use returns TS_EINVALID). Like ts_env_table(): only while no other
 * thread uses the env. Returns as ts_batch_put(). */
int ts_batch_drop(struct ts_batch *b, unsigned table);
/* Queues the deletion of every row of table, which stays (LMDB's mdb_drop without
 * delete). Unlike a deletion per key, this does not copy each leaf page into the
 * transaction's dirty pages: the pages go to the free list as they are, so emptying a
 * table of 30 MB costs a few hundred KB of memory instead of more than 30. Returns as
 * ts_batch_put(). */
int ts_batch_clear(struct ts_batch *b, unsigned table);

/* Applies the whole batch in one write transaction and commits (durable on return
 * unless no_sync). On MAP_FULL grows the map and retries. Returns 0, -ENOMEM, -ENOSPC
 * (the file system is full or over quota: nothing applied, the env stays writable and
 * the same batch may be applied again later), TS_EIO (commit failed otherwise: the env
 * refuses further writes), TS_ELIMIT (key too long), -errno
 * (-EACCES when read-only), TS_EINVALID (table not opened on this env or dropped, a
 * DUPFIXED value that is not 8 bytes, a put or valued delete on a U64_BLOCKS table, an
 * add to any other table), TS_ECORRUPT (an add met a block that does not decode),
 * TS_EFULL (one transaction too large for LMDB). On any error nothing of the batch is
 * applied. */
int ts_env_apply(struct ts_env *env, struct ts_batch *b);

/* Read snapshots. A snapshot holds off map growth until it ends, so a thread must not
 * begin a second snapshot of the same env while it holds one (a resize waiting between
 * the two would deadlock it). */
struct ts_rtxn;
/* Begins a read snapshot; *out is owned by the calling thread until ts_env_read_end().
 * Returns 0, -ENOMEM, or an LMDB failure translated (TS_ELIMIT: no free reader slot,
 * TS_ECORRUPT, -errno). */
int ts_env_read_begin(struct ts_env *env, struct ts_rtxn **out);
void ts_env_read_end(struct ts_rtxn *r); /* accepts NULL */
/* Point lookup. *val aliases the map; valid until ts_env_read_end(). val and vlen may be
 * NULL. Returns 0, TS_ENOTFOUND, TS_EINVALID (table not opened on this env, klen 0),
 * TS_ECORRUPT, TS_EIO. */
int ts_env_get(struct ts_rtxn *r, unsigned table, const void *key, size_t klen, const void **val,
	       size_t *vlen);

/* Cursor over a table in key order (and value order within DUPFIXED keys). Key/value
 * pointers alias the map; valid until the next cursor call or ts_env_read_end(). */
struct ts_cursor;
/* Opens a cursor, unpositioned; *out is owned by the caller (ts_cursor_close, before
 * ts_env_read_end). Returns 0, -ENOMEM, TS_EINVALID (table not opened on this env), or
 * an LMDB failure translated. */
int ts_cursor_open(struct ts_rtxn *r, unsigned table, struct ts_cursor **out);
void ts_cursor_close(struct ts_cursor *c); /* accepts NULL */
/* Positions at the first key >= key (klen 0: first key); key is borrowed for the call.
 * 0, TS_ENOTFOUND (no such key: the cursor is then unpositioned), TS_ECORRUPT, TS_EIO
 * (LMDB failed fatally). */
int ts_cursor_seek(struct ts_cursor *c, const void *key, size_t klen);
/* Next entry (next duplicate first in DUPFIXED tables). 0, TS_ENOTFOUND at end,
 * TS_ECORRUPT, TS_EIO. */
int ts_cursor_next(struct ts_cursor *c);
/* The current entry: pointers alias the map (see above); any of key, klen, val, vlen
 * may be NULL. Returns 0, or TS_ENOTFOUND when the cursor is not on an entry (never
 * positioned, or the last seek/next found nothing). */
int ts_cursor_get(struct ts_cursor *c, const void **key, size_t *klen, const void **val,
		  size_t *vlen);
/* DUPFIXED and U64_BLOCKS tables: all u64 values of exactly `key`, in ascending order,
 * appended to a caller array grown with ts_realloc (*vals, *n, *cap). DUPFIXED uses
 * MDB_GET_MULTIPLE; U64_BLOCKS decodes the key's blocks in order. 0 (also when key is
 * absent: nothing appended), -ENOMEM, TS_EINVALID (neither kind of table), TS_ECORRUPT
 * (a block that does not decode, or blocks out of order; *n is then unchanged but *vals
 * may have been grown). */
int ts_env_get_u64s(struct ts_rtxn *r, unsigned table, const void *key, size_t klen,
		    uint64_t **vals, size_t *n, size_t *cap);

/* Decodes one delta block (p, len bytes, borrowed; untrusted) into out[0..cap): *n ids,
 * strictly ascending. cap >= TS_ENV_U64_BLOCK_IDS(len) always suffices. Allocates
 * nothing. Returns 0, TS_ECORRUPT (shorter than 8 bytes, longer than 511, a varint cut
 * off, overlong or over 64 bits, a zero delta, an id past UINT64_MAX) or TS_ELIMIT (cap
 * too small; out then holds the first cap ids). */
int ts_env_u64_block_decode(const void *p, size_t len, uint64_t *out, size_t cap, size_t *n);
/* Encodes the start of ids[0..n) (strictly ascending, n >= 1) as one block of at most
 * cap bytes (cap >= 8) into out; returns how many ids it took (>= 1) and their block
 * length in *len. Never fails. */
size_t ts_env_u64_block_encode(const uint64_t *ids, size_t n, uint8_t *out, size_t cap,
			       size_t *len);

/* Clears stale reader slots; returns how many were cleared, or a negative error. */
int ts_env_reader_check(struct ts_env *env);
/* Drops the env's file pages from this process's page tables (the page cache keeps
 * them; a later read faults them back in). For after a pass that read much of the file
 * once, such as a conversion: those pages would otherwise stay in the process's RSS.
 * Takes the map gate shared, so the map cannot move meanwhile: the caller must not hold a
 * read snapshot of this env. Returns 0, TS_ENOTFOUND (no map found), or -errno. */
int ts_env_unmap_pages(struct ts_env *env);
/* Current map size and bytes in use (last page number * page size). */
void ts_env_size(struct ts_env *env, uint64_t *map_bytes, uint64_t *used_bytes);
/* Bytes the env's data needs, as a compacting copy writes them: the pages up to the
 * last one in use minus the free pages LMDB lists (and the pages of that list itself).
 * This counts the sub-databases of DUPSORT keys, which mdb_stat of a table leaves out.
 * ts_env_size's used bytes minus this is what the file holds in free pages. 0 if it
 * cannot be read. Takes a read snapshot: the caller must not hold one of this env. */
uint64_t ts_env_live_bytes(struct ts_env *env);
/* Consistent copy of the env into an empty directory, compacting if `compact`.
 * Safe while the server writes (LMDB copies a read snapshot). Returns 0 or -errno. */
int ts_env_copy(struct ts_env *env, const char *dst_dir, int compact);

#endif
