/*
 * tsdbctl.h - what the files of tsdbctl share; private to this program, not a library.
 *
 * tsdbctl is one program of several commands, one file each (inspect.c, verify.c,
 * export.c, compact.c). A command is a `struct ctl_cmd` defined in its file by one
 * CTL_COMMAND line: its name, its lines of the usage text and a function that takes its
 * argv. main.c holds the command table, the usage text built from it and the global
 * flags (--help, the log level). What more than one command needs is declared here:
 *   - the exit codes, one meaning each for every command;
 *   - option parsing (common.c): "--name value" or "--name=value"; --data-dir and
 *     --help for every command, its own options as a table of struct ctl_opt whose
 *     parsers store into the command's variables (flags, counts, times, --match);
 *   - a series selection (--match, --start, --end) turned into the series of a database;
 *   - two ways to open a data directory: read-only beside a running server (ctl_ro_*,
 *     ctl_part_*: LMDB readers of the index env and of each partition env, never
 *     DIR/LOCK), or exclusively (ctl_db_open: ts_db_open, EXIT_LOCKED while a server
 *     holds the directory); and scans of an env's table (ctl_scan);
 *   - what both readers of format 2 need: group rows of the index (ctl_group_*: a series'
 *     entry found in its group row) and a partition's cold data (ctl_gens_*: the "gens"
 *     row; ctl_cold_key_parse: a cold block's key);
 *   - checks of one record (check.c): bytes in, a reason or NULL out;
 *   - progress on stderr when it is a terminal, and the formatting of reports.
 * On-disk facts come from tsdb/format.h, storage/chunk.h and storage/cold.h, never from
 * here. Reports go to stdout; errors to stderr, prefixed "tsdbctl: ".
 */
#ifndef TSDBCTL_H
#define TSDBCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "query/selector.h"
#include "storage/env.h"
#include "tsdb/tsdb.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1, /* verify found problems, or the command failed */
	EXIT_USAGE = 2,
	EXIT_LOCKED = 3, /* a running server holds the directory */
	EXIT_NOTDB = 4,	 /* the directory is not a database */
};

/* ---- commands (main.c) ---- */

struct ctl_cmd {
	const char *name; /* "inspect" */
	/* Its lines under "Commands:" in the usage text, each ending in '\n'. */
	const char *help;
	/* Runs the command: argv[0] is its name, argv[1..argc) its options. Returns an exit
	 * code. */
	int (*run)(int argc, char **argv);
};

/* Defines `const struct ctl_cmd ctl_cmd_<name>` from the file's `static const char
 * <name>_help[]` and `static int <name>_main(int argc, char **argv)`. */
#define CTL_COMMAND(cmd) \
	const struct ctl_cmd ctl_cmd_##cmd = { .name = #cmd, .help = cmd##_help, .run = cmd##_main }

/* Writes the usage text (every command's help, the exit codes) to f. */
void ctl_usage(FILE *f);

/* ---- options (common.c) ---- */

/* "tsdbctl: <message>" and a pointer to --help, on stderr. */
void ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct ctl_opt {
	const char *name; /* with its dashes: "--top" */
	int is_flag;	  /* takes no value; "--json=x" is then an unknown option */
	/* Stores val (NULL for a flag) into dest. Returns 0, or an exit code after a
	 * message. */
	int (*parse)(void *dest, const char *name, const char *val);
	void *dest;
};

/* Returned by ctl_parse_args() when the command should run. */
#define CTL_RUN (-1)

/* Parses a command's argv (as ctl_cmd.run gets it) against opts (ended by an entry whose
 * name is NULL; may be NULL itself); --data-dir and --help are every command's. Returns
 * CTL_RUN with *dir set (non-empty), EXIT_OK after printing the usage for --help, or
 * EXIT_USAGE (or a parser's code) after a message. */
int ctl_parse_args(int argc, char **argv, const struct ctl_opt *opts, const char **dir);

/* A JSON string of s[0..len) on f; bytes of invalid UTF-8 become U+FFFD so the output
 * is always JSON. */
void ctl_json_str(FILE *f, const void *s, size_t len);

/* Parsers for struct ctl_opt. dest: int (set to 1), size_t (0..1000000), int64_t
 * milliseconds (unix seconds or RFC 3339). */
int ctl_opt_flag(void *dest, const char *name, const char *val);
int ctl_opt_count(void *dest, const char *name, const char *val);
int ctl_opt_time(void *dest, const char *name, const char *val);

/* ---- a series selection: --match SELECTOR..., --start T, --end T (common.c) ---- */

struct ctl_select {
	const char **match; /* the --match values, borrowed from argv */
	size_t n_match, cap_match;
	int64_t start, end;
	struct ts_selector *sel; /* parsed; n_sel == 1 without --match (every series) */
	size_t n_sel;
	struct ts_selector_union u; /* the selected series, after ctl_select_series() */
};
/* An empty selection: every series, all of time. */
void ctl_select_init(struct ctl_select *s);
/* The parser of --match for a command's options (dest: struct ctl_select); --start and
 * --end are ctl_opt_time with dest &s->start and &s->end. */
int ctl_opt_match(void *dest, const char *name, const char *val);

/* Checks the range and parses the selectors (before any database is opened, so a typo
 * is a usage error). Returns EXIT_OK, EXIT_USAGE or EXIT_FAIL, after a message. */
int ctl_select_parse(struct ctl_select *s);
/* Finds the selected series of db, with samples in [start, end], into s->u. Returns
 * EXIT_OK, EXIT_USAGE or EXIT_FAIL, after a message. */
int ctl_select_series(struct ctl_select *s, struct ts_db *db);
void ctl_select_fini(struct ctl_select *s);

/* ---- a data directory (common.c) ---- */

#define CTL_PATH_MAX 4200

/* Opens the database exclusively (ts_db_open: the server must be stopped); hint ends the
 * message when it runs. Returns EXIT_OK, EXIT_NOTDB, EXIT_LOCKED or EXIT_FAIL. */
int ctl_db_open(const char *dir, const char *hint, struct ts_db **db);
/* Closes it; EXIT_OK, or EXIT_FAIL after a message. */
int ctl_db_close(struct ts_db *db, const char *dir);

struct ctl_part {
	int64_t start, end;
	char name[256]; /* "<start>_<end>" under raw/ */
};

struct ctl_parts {
	struct ctl_part *v; /* sorted by start */
	size_t n;
	size_t n_other; /* entries of raw/ that are no partition (compactions' are skipped) */
};

/* Lists DIR/raw's live partitions (none when there is no raw/). Returns 0 or an error. */
int ctl_parts_list(const char *dir, struct ctl_parts *parts);
void ctl_parts_free(struct ctl_parts *parts);

/* The index env, read-only, and what its meta table says. Series rows live in the
 * per-series table "series" (format 1, and format 2 before its first checkpoint), in
 * the group table "series_groups" (format 2), or both; head rows likewise in "heads"
 * and "head_groups". A table the env does not have is flagged absent (has_* 0). */
struct ctl_ro {
	const char *dir;
	struct ts_env *index;
	unsigned t_series, t_postings, t_meta, t_heads, t_metadata;
	unsigned t_series_groups, t_head_groups, t_tombstones;
	int has_series, has_heads, has_metadata, has_series_groups, has_head_groups;
	int has_tombstones;   /* the tombstones table exists (absent: nothing deleted) */
	int postings_blocks;  /* t_postings is postings_blocks (format 3), not postings */
	uint32_t format;      /* 0: not yet written */
	int64_t partition_ms; /* 0: not yet written */
	uint64_t next_id, checkpoint_lsn;
	int has_next_id, has_ckpt;
	struct ctl_parts parts;
};

/* Opens the index env read-only and lists partitions. An env without the postings or
 * meta table, or with neither series table, is not an index (EXIT_NOTDB). Returns an
 * exit code (after a message). */
int ctl_ro_open(struct ctl_ro *db, const char *dir);
void ctl_ro_close(struct ctl_ro *db);

/* The series ids of one row of db's postings table (v, vl bytes, borrowed): a delta
 * block (format 3) or one u64 (formats 1, 2). Fills ids[0..cap) (cap >= 504 suffices
 * for any block) and *n. Returns NULL, or what is wrong with the row (static text). */
const char *ctl_postings_row_ids(const struct ctl_ro *db, const void *v, size_t vl, uint64_t *ids,
				 size_t cap, size_t *n);
#define CTL_POSTINGS_ROW_IDS 504 /* ids a row can hold: TS_ENV_U64_BLOCK_IDS(511) */

/* One partition env, read-only. */
struct ctl_part_env {
	struct ts_env *env;
	unsigned chunks, meta, cold, tiers;
	int has_chunks; /* 0 when just created */
	int has_meta;
	int has_cold;  /* 0 in format 1 and before a first conversion */
	int has_tiers; /* 0 before the first downsampling */
};

/* Opens a partition env read-only. Returns 0, TS_ENOTFOUND (the directory is gone:
 * retention or a compaction's rename got there first), or an error. */
int ctl_part_open(const struct ctl_ro *db, const struct ctl_part *p, struct ctl_part_env *pe);
void ctl_part_close(struct ctl_part_env *pe);

/* Called for each entry of a table in key order; k and v alias the map (valid until
 * the call returns). A non-zero return stops the scan and is the scan's result. */
typedef int (*ctl_row_fn)(void *ctx, const void *k, size_t kl, const void *v, size_t vl);
/* Calls row for every entry of table in snapshot r. Returns 0 at the end, row's
 * non-zero value, or a cursor error. */
int ctl_scan(struct ts_rtxn *r, unsigned table, ctl_row_fn row, void *ctx);
/* The same over a cursor already open (from its first entry). */
int ctl_scan_cursor(struct ts_cursor *c, ctl_row_fn row, void *ctx);
/* Adds the number of rows of a table to *n. Returns 0 or an error. */
int ctl_count_rows(struct ts_rtxn *r, unsigned table, uint64_t *n);

/* ---- format 2: group rows of the index, cold data of a partition (common.c) ---- */

/* A group row decompressed, remembered by group number so that looking up the series of
 * one group one after the other decompresses it once. Zero it before use; it belongs to
 * one snapshot (ctl_group_fini before using it with another). */
struct ctl_group {
	uint64_t g;
	int have;     /* raw holds group g's entries, or g has no row (raw NULL) */
	uint8_t *raw; /* ts_malloc'd */
	size_t len;
};

/* Unpacks a group row p (len bytes, borrowed): its version byte, then one zstd frame
 * of at most TS_FORMAT_GROUP_RAW_MAX bytes decompressed, into *raw (ts_malloc'd: the
 * caller frees it) of *raw_len bytes. Returns 0, TS_EVERSION (an unknown version
 * byte), TS_ECORRUPT (no frame, or one that does not decompress) or -ENOMEM. */
int ctl_group_unpack(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len);

/* The entry of series id in group table `table` of snapshot r: *e (el bytes) aliases
 * gc's buffer, valid until the next call with gc or ctl_group_fini. Returns 0,
 * TS_ENOTFOUND (no row, or no entry for the slot), TS_ECORRUPT (a row that does not
 * unpack or walk: check.c says why), -ENOMEM, or the env's error. */
int ctl_group_find(struct ts_rtxn *r, unsigned table, uint64_t id, struct ctl_group *gc,
		   const uint8_t **e, uint32_t *el);
void ctl_group_fini(struct ctl_group *gc);

/* One generation of the "gens" row of a partition's meta table (format.h). */
struct ctl_gen {
	uint32_t gen, level;
	uint64_t samples, bytes;
};

struct ctl_gens {
	struct ctl_gen *v; /* ascending by gen; ts_malloc'd, NULL when n == 0 */
	size_t n;
	int present; /* the row exists */
};

/* Reads the gens row of snapshot r of a partition env (absent: n == 0). Returns 0,
 * TS_ECORRUPT (the row does not parse: ctl_gens_problem says why), -ENOMEM, or the env's
 * error; on error g lists no generation (present still says whether the row exists). */
int ctl_gens_read(struct ts_rtxn *r, const struct ctl_part_env *pe, struct ctl_gens *g);
/* The index of generation gen in g, or -1 when it is not listed. */
long ctl_gens_find(const struct ctl_gens *g, uint32_t gen);
void ctl_gens_free(struct ctl_gens *g);

/* The fields of a cold table key of TS_FORMAT_COLD_KEY_LEN bytes (k, borrowed). */
void ctl_cold_key_parse(const uint8_t *k, uint32_t *gen, uint64_t *last_id, int64_t *min_t);

/* ---- checks of one record (check.c) ---- */

/* Each returns NULL when the record is fine, else a reason: a constant or why. */

/* The canonical form of a label set: names non-empty, without 0x00, sorted and unique;
 * values non-empty UTF-8; a __name__. */
const char *ctl_labels_problem(const struct ts_label *l, uint32_t n);
/* Decodes a whole XOR payload: it holds n_want samples, timestamps do not go back and,
 * with check_bounds, run from min_t to max_t. */
const char *ctl_xor_problem(const uint8_t *p, size_t len, uint32_t n_want, int64_t min_t,
			    int64_t max_t, int check_bounds, char *why, size_t why_len);
/* A chunk record (storage/chunk.h): header, lengths, flags, CRC32C, the payload's count. */
const char *ctl_record_problem(const uint8_t *p, size_t len, char *why, size_t why_len);
/* A head snapshot (tsdb/format.h), version 1 or the short version 2: first the engine's
 * own ts_format_snap_parse (with a reason for each way it can refuse: lengths, bounds,
 * encoder state, out-of-order samples ascending), then a full decode of the open
 * chunk. */
const char *ctl_snapshot_problem(const uint8_t *p, size_t len, char *why, size_t why_len);
/* A metadata row (tsdb/format.h): lengths and a known metric type. */
const char *ctl_metadata_problem(const uint8_t *p, size_t len, char *why, size_t why_len);
/* A group row (tsdb/format.h) of series_groups or head_groups: the version byte, one
 * zstd frame within TS_FORMAT_GROUP_RAW_MAX, entries that walk to its end with slots
 * ascending, at least one entry. When fine and raw is not NULL, *raw (ts_malloc'd: the
 * caller frees it with ts_free) holds the *raw_len decompressed bytes. The entries
 * themselves are the caller's to check. */
const char *ctl_group_problem(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len,
			      char *why, size_t why_len);
/* The "gens" row of a partition (tsdb/format.h): its length against the count, the
 * bound TS_FORMAT_GENS_MAX, generations strictly ascending. */
const char *ctl_gens_problem(const uint8_t *p, size_t len, char *why, size_t why_len);
/* A cold block (storage/cold.h): the header's fields, the CRC32C of the body, the
 * engine's ts_cold_open (decompression and directory), and a full ts_cold_decode of
 * every series (timestamps strictly ascending, first and last as the directory says).
 * When fine and out is not NULL, *out is the opened block (ts_cold_free it). Nothing of
 * where the block is stored (its key, its partition) is checked here. */
struct ts_cold_block;
const char *ctl_cold_problem(const uint8_t *p, size_t len, struct ts_cold_block **out, char *why,
			     size_t why_len);

/* ---- output (common.c) ---- */

/* A progress line on stderr, at most every 200 ms, only when stderr is a terminal. */
void ctl_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Clears the progress line (before other output, and at the end). */
void ctl_progress_done(void);

/* RFC 3339 UTC with milliseconds when not whole seconds; falls back to "<ms>ms". */
void ctl_fmt_time(char *buf, size_t cap, int64_t ms);
/* "512 B", "1.5 KiB", ... */
void ctl_fmt_bytes(char *buf, size_t cap, uint64_t b);
/* A byte string for a human: printable ASCII and valid UTF-8 as is, others as \xNN,
 * "..." after max bytes. */
void ctl_fmt_str(char *buf, size_t cap, const void *s, size_t len, size_t max);

/* ---- the backup store (bstore.c; layout there) ---- */

#define BSTORE_CHUNK (4u << 20)	    /* bytes of a file per object */
#define JOIN_MAX (4 * CTL_PATH_MAX) /* a path joined from a few others */

/* Removes path and everything under it (a missing path is fine). 0 or -errno. */
int ctl_rm_tree(const char *path);
/* 1 if dir is empty or absent, 0 if it holds something, -errno if it cannot be read. */
int ctl_dir_empty(const char *dir);
/* out = a "/" b; -ENAMETOOLONG (out then truncated) when it does not fit. */
int ctl_join(char *out, size_t cap, const char *a, const char *b);
/* Reads a whole file of at most max bytes (malloc'd, NUL-terminated; free()); NULL with
 * errno set on failure (EFBIG past max). */
char *ctl_read_file(const char *path, size_t max, size_t *len);

struct bstore_chunk {
	char hash[33]; /* XXH3-128 of the raw bytes, hex */
	uint64_t len;
};
struct bstore_file {
	char *path;	    /* relative to the data directory */
	uint64_t size, xxh; /* XXH3-64 of the whole file */
	struct bstore_chunk *chunks;
	size_t n_chunks;
};
struct bstore_manifest {
	char name[96];
	int64_t created_ms;
	struct bstore_file *files;
	size_t n_files;
};
int bstore_mkdirs(const char *path);
int bstore_write_atomic(const char *path, const void *buf, size_t len);
void bstore_hash_hex(const void *p, size_t len, char out[33]);

/* A backup store: a directory, or "s3://bucket/prefix" (s3_endpoint: the server's
 * http(s)://host:port, NULL for AWS). Keys are "objects/..", "backups/..". Every call
 * returns 0 or an error (-errno, -ENOMEM, TS_ENOTFOUND for a missing key, TS_EIO for a
 * failed S3 request, with the reason logged). */
struct bstore;
int bstore_open(const char *dest, const char *s3_endpoint, struct bstore **out, char *why,
		size_t why_len);
void bstore_close(struct bstore *s);
int bstore_exists(struct bstore *s, const char *key); /* 1, 0, <0 */
int bstore_put(struct bstore *s, const char *key, const void *p, size_t len);
/* *out: malloc'd (free()), at most max bytes. */
int bstore_get(struct bstore *s, const char *key, size_t max, char **out, size_t *len);
int bstore_del(struct bstore *s, const char *key);
typedef int (*bstore_key_fn)(void *arg, const char *key);
/* Calls fn with every key under prefix (a "directory": "objects", "backups"). */
int bstore_keys(struct bstore *s, const char *prefix, bstore_key_fn fn, void *arg);
void bstore_object_key(const char *hash, char *out, size_t cap);
/* Stores a chunk unless an object of its hash exists (*stored says which; new object
 * bytes added to *stored_bytes). */
int bstore_put_chunk(struct bstore *s, const void *p, size_t len, char hash[33], int *stored,
		     uint64_t *stored_bytes);
/* Reads, decompresses and checks an object (its size and hash). *out: ts_malloc'd
 * (ts_free). TS_ECORRUPT when it does not match. */
int bstore_get_chunk(struct bstore *s, const char *hash, uint64_t raw_len, uint8_t **out);
/* Parses a manifest (untrusted): 0, TS_ECORRUPT with why, -ENOMEM. */
int bstore_manifest_parse(const char *text, size_t len, struct bstore_manifest *m, char *why,
			  size_t why_len);
int bstore_manifest_load(struct bstore *s, const char *name, struct bstore_manifest *m, char *why,
			 size_t why_len);
void bstore_manifest_free(struct bstore_manifest *m);
/* The backups in the store, oldest first (names are UTC times). */
int bstore_list(struct bstore *s, char ***names, size_t *n);
void bstore_list_free(char **names, size_t n);

/* ---- Prometheus blocks (promblock.c) ---- */
/* Writes the selection's samples in [from, to] as Prometheus blocks into out (created
 * if absent), laid out as Prometheus' compactor would with ranges min_ms * 3^k up to
 * max_ms; ext: NAME=VALUE labels for meta.json's thanos section. Returns 0, -errno or
 * an engine error; a failed block leaves no directory behind. */
int ctl_prom_export(struct ts_db *db, const struct ctl_select *sel, const char *out, int64_t from,
		    int64_t to, int64_t min_ms, int64_t max_ms, const char *const *ext,
		    size_t n_ext, uint64_t *n_blocks, uint64_t *n_samples);
/* A duration ("2h", "90m", "3600") in ms: 0, or TS_EINVALID. */
int ctl_opt_time_dur(const char *s, int64_t *ms);

#endif
