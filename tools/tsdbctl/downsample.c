/*
 * downsample.c - `tsdbctl downsample`: builds the downsampled tiers (5-minute and 1-hour
 * aggregates) of every closed partition where they are missing or stale, for a stopped
 * server, and says what they cost.
 *
 * It runs ts_db_downsample() (tsdb/tiers.c; tsdbd builds the tiers in the background as
 * partitions close, so this is for data written before, or to catch up at once), with a
 * progress line on a terminal, then prints the partitions built, up to date and skipped,
 * and per tier its rows and bytes and the bytes as a share of the raw cold blocks of the
 * same partitions.
 */
#include <inttypes.h>
#include <stdio.h>

#include "tsdbctl.h"
#include "storage/err.h"

static void progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	ctl_progress("downsampling: %" PRIu64 "/%" PRIu64 " partitions", done, total);
}

static void print_report(const char *dir, const struct ts_downsample_stats *st)
{
	char a[64], b[64];
	static const char *const names[2] = { "5m", "1h" };
	printf("downsampled %s: %" PRIu64 " closed partitions: %" PRIu64 " built, %" PRIu64
	       " up to date, %" PRIu64 " skipped\n",
	       dir, st->n_parts, st->n_built, st->n_current, st->n_skipped);
	printf("series (summed over partitions): %" PRIu64 "\n", st->n_series);
	ctl_fmt_bytes(a, sizeof a, st->raw_bytes);
	printf("raw cold blocks: %" PRIu64 " bytes (%s)\n", st->raw_bytes, a);
	uint64_t tot = 0;
	for (int k = 0; k < 2; k++) {
		ctl_fmt_bytes(b, sizeof b, st->bytes[k]);
		printf("tier %s: %" PRIu64 " rows, %" PRIu64 " bytes (%s), %.1f %% of raw\n",
		       names[k], st->rows[k], st->bytes[k], b,
		       st->raw_bytes ? 100.0 * (double)st->bytes[k] / (double)st->raw_bytes : 0.0);
		tot += st->bytes[k];
	}
	printf("tiers together: %.1f %% of raw\n",
	       st->raw_bytes ? 100.0 * (double)tot / (double)st->raw_bytes : 0.0);
}

static int downsample_main(int argc, char **argv)
{
	const char *dir;
	struct ts_db *db;
	int ex = ctl_parse_args(argc, argv, NULL, &dir);
	if (ex != CTL_RUN)
		return ex;
	ex = ctl_db_open(dir, "stop it first (it builds tiers in the background)", &db);
	if (ex)
		return ex;
	struct ts_downsample_stats st;
	int rc = ts_db_downsample(db, progress, NULL, &st);
	ctl_progress_done();
	if (rc)
		fprintf(stderr, "tsdbctl: downsampling failed: %s\n", ts_strerror(rc));
	if (ctl_db_close(db, dir) != EXIT_OK || rc)
		return EXIT_FAIL;
	print_report(dir, &st);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

static const char downsample_help[] =
	"  downsample builds the missing or stale 5m and 1h tiers of closed partitions\n"
	"            (ts_db_downsample) and prints their size. Needs the server stopped.\n";

CTL_COMMAND(downsample);
