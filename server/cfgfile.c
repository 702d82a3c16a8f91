/*
 * cfgfile.c - a small configuration file, read whole (cfgfile.h).
 */
#include "server/cfgfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"

int ts_cfgfile_read(const char *path, char **buf, size_t *len, char *msg, size_t msg_len)
{
	*buf = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(msg, msg_len, "%s: %s", path, strerror(e));
		return -e;
	}
	char *b = ts_malloc(TS_CFGFILE_MAX + 2);
	size_t n = b ? fread(b, 1, TS_CFGFILE_MAX + 1, f) : 0;
	int err = ferror(f);
	fclose(f);
	if (!b) {
		snprintf(msg, msg_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (err || n > TS_CFGFILE_MAX) {
		ts_free(b);
		snprintf(msg, msg_len, "%s: %s", path, err ? "read error" : "larger than 1 MiB");
		return err ? -EIO : TS_EINVALID;
	}
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}
