/*
 * cfgfile.h - reading a small configuration file whole (the retention rules, the web
 * config): what both loaders share, so they refuse, size and word errors alike.
 */
#ifndef TS_SERVER_CFGFILE_H
#define TS_SERVER_CFGFILE_H

#include <stddef.h>

#define TS_CFGFILE_MAX (1u << 20) /* 1 MiB: far above any real file */

/* Reads path into *buf (ts_malloc'd, NUL-terminated, the caller's: ts_free) and *len.
 * Returns 0, -errno (cannot open), -EIO (read error), TS_EINVALID (over 1 MiB) or
 * -ENOMEM; msg then says "<path>: <why>". */
int ts_cfgfile_read(const char *path, char **buf, size_t *len, char *msg, size_t msg_len);

#endif
