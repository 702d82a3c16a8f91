/*
 * tsdbctl - the operations tool: works on a tsdbd data directory directly.
 *
 *   tsdbctl inspect --data-dir DIR [--top N] [--json]
 *   tsdbctl verify  --data-dir DIR
 *   tsdbctl export  --data-dir DIR [--match SELECTOR]... [--start T] [--end T]
 *   tsdbctl compact --data-dir DIR
 *   tsdbctl downsample --data-dir DIR
 *   tsdbctl backup --data-dir DIR --to DEST [--server HOST:PORT]
 *   tsdbctl backup list|prune --to DEST [--keep N]
 *   tsdbctl restore --from DEST [--name NAME] --data-dir DIR
 *
 * This file is the front door: the command table, the usage text (its head, each
 * command's own lines in table order, the exit codes) and the global flags (--help, and
 * the log level: warnings only unless TS_LOG_LEVEL says otherwise). Each command lives
 * in its own file (inspect.c, verify.c, export.c, compact.c, delete.c, downsample.c)
 * and parses its own options with common.c's parser; tsdbctl.h says what the files
 * share.
 *
 * inspect and verify read while a server runs (read-only LMDB readers); export,
 * compact, delete and downsample open the database and need the server stopped (exit 3
 * while it runs).
 *
 * A new command is one file defining `<name>_help`, `<name>_main` and
 * `CTL_COMMAND(<name>);` (tsdbctl.h), and one line in TSDBCTL_COMMANDS below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdbctl.h"
#include "storage/log.h"

/* The commands, in the order of the usage text: one line each. */
#define TSDBCTL_COMMANDS(X) \
	X(inspect)          \
	X(verify)           \
	X(export)           \
	X(import)           \
	X(compact)          \
	X(delete)           \
	X(downsample)       \
	X(backup)           \
	X(restore)

#define DECLARE(name) extern const struct ctl_cmd ctl_cmd_##name;
TSDBCTL_COMMANDS(DECLARE)
#undef DECLARE
#define ENTRY(name) &ctl_cmd_##name,
static const struct ctl_cmd *const commands[] = { TSDBCTL_COMMANDS(ENTRY) };
#undef ENTRY
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char usage_head[] = "usage: tsdbctl <command> --data-dir DIR [options]\n"
				 "\n"
				 "Commands:\n";

static const char usage_tail[] =
	"\n"
	"Exit codes:\n"
	"  0  ok (verify: no problem found)\n"
	"  1  verify found problems, or the command failed\n"
	"  2  usage error\n"
	"  3  the data directory is locked by a running server (export, import, compact,\n"
	"     delete, downsample, backup without --server)\n"
	"  4  the directory is not a database (no DIR/index.mdb)\n";

void ctl_usage(FILE *f)
{
	fputs(usage_head, f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fputs(commands[i]->help, f);
	fputs(usage_tail, f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		ctl_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		ctl_usage(stdout);
		return EXIT_OK;
	}
	const struct ctl_cmd *cmd = NULL;
	for (size_t i = 0; i < N_COMMANDS && !cmd; i++)
		if (!strcmp(name, commands[i]->name))
			cmd = commands[i];
	if (!cmd) {
		ctl_usage_error("unknown command \"%s\"", name);
		return EXIT_USAGE;
	}
	if (!getenv("TS_LOG_LEVEL"))
		ts_log_set_level(TS_LOG_WARN);
	return cmd->run(argc - 1, argv + 1);
}
