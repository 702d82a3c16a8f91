/*
 * fuzz_ha_state.c - the HA tracker's state file (server/ha.c) on hostile bytes: the
 * bytes are written to <tmp>/ha-tracker.state and a tracker is opened on that
 * directory. Invariants: opening never fails but for memory, every election it kept
 * has NUL-terminated strings no longer than the file, and deciding and saving again
 * work on whatever was loaded.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/ha.h"
#include "fuzz_util.h"

static void check(void *arg, const struct ts_ha_state *s)
{
	size_t max = *(size_t *)arg;
	fz_check(strlen(s->tenant) <= max && strlen(s->cluster) <= max &&
		 strlen(s->replica) <= max);
}

static char dir[512];

static void cleanup(void)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, TS_HA_STATE_FILE);
	unlink(p);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/fzha.XXXXXX", t && *t ? t : "/tmp");
		fz_check(mkdtemp(dir) != NULL);
		atexit(cleanup);
	}
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, TS_HA_STATE_FILE);
	FILE *f = fopen(path, "wb");
	fz_check(f != NULL);
	fz_check(fwrite(data, 1, size, f) == size || size == 0);
	fclose(f);
	struct ts_ha_config c = { "cluster", "replica", 1000, dir };
	struct ts_ha *h;
	int rc = ts_ha_open(&c, &h);
	fz_check(rc == 0 || rc == -ENOMEM);
	if (rc)
		return 0;
	ts_ha_each(h, check, NULL, &size);
	/* A decision that elects (and saves) on top of what was loaded. */
	rc = ts_ha_decide(h, "", "fz", 2, "r", 1, 1);
	fz_check(rc == 1 || rc == -ENOMEM);
	ts_ha_close(h);
	return 0;
}
