/*
 * compact.c - `tsdbctl compact`: rewrites closed partitions tightly, for a stopped
 * server, and says what it saved.
 *
 * It runs ts_db_compact() (with a progress line on a terminal), which rewrites each closed partition that took writes since
 * its last rewrite (tsdb/compact.c; tsdbd does the same in the background), and prints
 * each partition's data.mdb size before and after, the allocated totals and the LMDB
 * bytes in use. Partitions are listed after ts_db_open() has repaired what a crash may
 * have left in raw/.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tsdbctl.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/format.h"

struct disk_use {
	uint64_t apparent, allocated;
};

/* The sizes of partition p's data file, added to *total. */
static void part_file_use(const char *dir, const struct ctl_part *p, struct disk_use *u,
			  struct disk_use *total)
{
	char path[CTL_PATH_MAX + 300];
	struct stat st;
	memset(u, 0, sizeof *u);
	snprintf(path, sizeof path, "%s/" TS_FORMAT_RAW_DIR "/%s/data.mdb", dir, p->name);
	if (stat(path, &st) == 0) {
		u->apparent = (uint64_t)st.st_size;
		u->allocated = (uint64_t)st.st_blocks * 512;
	}
	total->apparent += u->apparent;
	total->allocated += u->allocated;
}

static void print_report(const char *dir, const struct ctl_parts *parts,
			 const struct disk_use *before, const struct disk_use *tb,
			 const struct ts_db_stats *st0, const struct ts_db_stats *st1)
{
	struct disk_use after, ta = { 0 };
	char a[64], b[64];
	printf("compacted %s: %zu partitions\n", dir, parts->n);
	printf("  %-34s %14s %14s\n", "partition", "file before", "file after");
	for (size_t i = 0; i < parts->n; i++) {
		part_file_use(dir, &parts->v[i], &after, &ta);
		printf("  raw/%-30s %14" PRIu64 " %14" PRIu64 "%s\n", parts->v[i].name,
		       before[i].apparent, after.apparent,
		       after.apparent < before[i].apparent ? "  rewritten" : "");
	}
	ctl_fmt_bytes(a, sizeof a, tb->apparent);
	ctl_fmt_bytes(b, sizeof b, ta.apparent);
	printf("partition files: %" PRIu64 " -> %" PRIu64 " bytes (%s -> %s)\n", tb->apparent,
	       ta.apparent, a, b);
	printf("on disk (allocated): %" PRIu64 " -> %" PRIu64 " bytes\n", tb->allocated,
	       ta.allocated);
	printf("in use (LMDB pages): %" PRIu64 " -> %" PRIu64 " bytes\n", st0->partitions_bytes,
	       st1->partitions_bytes);
}

/* A progress line on a terminal (common.c: nothing when stderr is not one). */
static void progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	ctl_progress("compacting: %" PRIu64 "/%" PRIu64
		     " steps (partitions rewritten, then their tiers checked)",
		     done, total);
}

/* Compacts and closes db (also on failure). Returns an exit code. */
static int compact(const char *dir, struct ts_db *db, const struct ctl_parts *parts)
{
	struct disk_use *before = ts_calloc(parts->n ? parts->n : 1, sizeof *before);
	struct disk_use tb = { 0 };
	struct ts_db_stats st0, st1;
	int rc;
	if (!before) {
		ctl_db_close(db, dir);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < parts->n; i++)
		part_file_use(dir, &parts->v[i], &before[i], &tb);
	ts_db_stats(db, &st0);
	rc = ts_db_compact_progress(db, progress, NULL);
	ctl_progress_done();
	ts_db_stats(db, &st1);
	if (rc)
		fprintf(stderr, "tsdbctl: compaction failed: %s\n", ts_strerror(rc));
	if (ctl_db_close(db, dir) != EXIT_OK || rc) {
		ts_free(before);
		return EXIT_FAIL;
	}
	print_report(dir, parts, before, &tb, &st0, &st1);
	ts_free(before);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

static int compact_main(int argc, char **argv)
{
	const char *dir;
	struct ctl_parts parts;
	struct ts_db *db;
	int ex = ctl_parse_args(argc, argv, NULL, &dir);
	if (ex != CTL_RUN)
		return ex;
	ex = ctl_db_open(dir,
			 "stop it first (it compacts closed partitions in the "
			 "background)",
			 &db);
	if (ex)
		return ex;
	/* the engine has opened (and, after a crash, repaired) raw/: list it now */
	if (ctl_parts_list(dir, &parts)) {
		ctl_db_close(db, dir);
		ctl_parts_free(&parts);
		return EXIT_FAIL;
	}
	ex = compact(dir, db, &parts);
	ctl_parts_free(&parts);
	return ex;
}

static const char compact_help[] =
	"  compact   rewrites closed partitions tightly (ts_db_compact) and prints the bytes\n"
	"            before and after. Needs the server stopped.\n";

CTL_COMMAND(compact);
