/*
 * delete.c - `tsdbctl delete`: deletes samples of the selected series, for a stopped
 * server (what POST /api/v1/admin/tsdb/delete_series does while it runs), and says
 * what it did.
 *
 * It runs ts_db_delete() for each --match (a union, as match[] is) over [--start,
 * --end] (default: all of time): the deletion is durable when it returns (tombstones in
 * the index, tsdb/delete.c). With --clean it then runs ts_db_clean_tombstones() so the
 * partitions holding the samples are rewritten without them. --match is required: a
 * delete of everything by a forgotten option is not a default anyone wants.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tsdbctl.h"
#include "storage/err.h"

static int run_delete(struct ctl_select *sel, struct ts_db *db, int clean)
{
	uint64_t total = 0;
	char msg[512] = "";
	for (size_t i = 0; i < sel->n_sel; i++) {
		uint64_t n = 0;
		int rc = ts_db_delete(db, sel->sel[i].m, sel->sel[i].n, sel->start, sel->end, &n,
				      msg, sizeof msg);
		if (rc) {
			fprintf(stderr, "tsdbctl: delete --match %s failed: %s\n", sel->match[i],
				msg[0] ? msg : ts_strerror(rc));
			return EXIT_FAIL;
		}
		printf("deleted --match %s: %" PRIu64 " series\n", sel->match[i], n);
		total += n;
	}
	if (sel->start == INT64_MIN && sel->end == INT64_MAX)
		printf("range: all time\n");
	else
		printf("range: [%" PRId64 ", %" PRId64 "] ms\n", sel->start, sel->end);
	printf("series matched: %" PRIu64 "\n", total);
	if (clean) {
		struct ts_clean_stats st;
		int rc = ts_db_clean_tombstones(db, &st);
		if (rc) {
			fprintf(stderr, "tsdbctl: clean_tombstones failed: %s\n", ts_strerror(rc));
			return EXIT_FAIL;
		}
		printf("clean_tombstones: %" PRIu64 " tombstones -> %" PRIu64 "\n", st.n_before,
		       st.n_after);
	}
	return EXIT_OK;
}

static int delete_main(int argc, char **argv)
{
	const char *dir;
	struct ctl_select sel;
	int clean = 0;
	const struct ctl_opt opts[] = {
		{ "--match", 0, ctl_opt_match, &sel },
		{ "--start", 0, ctl_opt_time, &sel.start },
		{ "--end", 0, ctl_opt_time, &sel.end },
		{ "--clean", 1, ctl_opt_flag, &clean },
		{ 0 },
	};
	struct ts_db *db = NULL;
	ctl_select_init(&sel);
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex == CTL_RUN && sel.n_match == 0) {
		ctl_usage_error("delete needs --match");
		ex = EXIT_USAGE;
	}
	if (ex == CTL_RUN && (ex = ctl_select_parse(&sel)) == EXIT_OK &&
	    (ex = ctl_db_open(dir, "use POST /api/v1/admin/tsdb/delete_series", &db)) == EXIT_OK)
		ex = run_delete(&sel, db, clean);
	ctl_select_fini(&sel);
	if (db && ctl_db_close(db, dir) != EXIT_OK)
		ex = EXIT_FAIL;
	if (ex == EXIT_OK && fflush(stdout))
		ex = EXIT_FAIL;
	return ex;
}

static const char delete_help[] =
	"  delete    deletes the samples of the selected series (as POST\n"
	"            /api/v1/admin/tsdb/delete_series). Needs the server stopped.\n"
	"              --match SELECTOR   series selector, repeatable (union); required\n"
	"              --start T, --end T unix seconds or RFC 3339; default: all of time\n"
	"              --clean            then rewrite the data without them (clean_tombstones)\n";

CTL_COMMAND(delete);
