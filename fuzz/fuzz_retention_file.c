/*
 * Fuzz target: the --retention.config parser (server/retention_file.c: libyaml events,
 * series selectors, durations).
 * Properties: nothing crashes or leaks; a parsed file has at most 1000 rules, each with a
 * positive retention; on failure the message is NUL-terminated and says the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/retention_file.h"
#include "storage/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_retention_file f;
	char msg[256];
	memset(msg, 'x', sizeof msg);
	int rc = ts_retention_file_parse((const char *)data, size, &f, msg, sizeof msg);
	if (rc == 0) {
		if (f.n > 1000)
			abort();
		for (size_t i = 0; i < f.n; i++)
			if (f.rules[i].retention_ms <= 0 || f.rules[i].m != f.sel[i].m)
				abort();
		ts_retention_file_fini(&f);
	} else if (rc == TS_EINVALID) {
		if (!memchr(msg, 0, sizeof msg) || strncmp(msg, "line ", 5) != 0)
			abort();
	}
	return 0;
}
