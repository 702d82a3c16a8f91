/*
 * retention_file.h - the --retention.config file of tsdbd: retention per selector, in
 * YAML, one mapping from series selector to duration, first match wins:
 *
 *   '{job="debug"}': 3d
 *   '{__name__=~"node_.*"}': 400d
 *
 * (keys are Prometheus series selectors, values durations as the flags take them). An
 * empty file (or an empty mapping) has no rules.
 */
#ifndef TS_SERVER_RETENTION_FILE_H
#define TS_SERVER_RETENTION_FILE_H

#include <stddef.h>

#include "query/selector.h"
#include "tsdb/tsdb.h"

/* Parsed rules; rules[i].m points into sel[i]. Owned: ts_retention_file_fini. */
struct ts_retention_file {
	struct ts_selector *sel;
	struct ts_retention_rule *rules;
	size_t n;
};

/*
 * Parses buf[0..len) (borrowed for the call; untrusted). Returns 0 with *out filled
 * (release with ts_retention_file_fini), or TS_EINVALID with msg (msg_len bytes,
 * NUL-terminated) saying where and why ("line 3: ..."), or -ENOMEM; *out is then empty.
 */
int ts_retention_file_parse(const char *buf, size_t len, struct ts_retention_file *out, char *msg,
			    size_t msg_len);
/* Reads and parses the file at path (errors as above, and -errno with msg set). */
int ts_retention_file_load(const char *path, struct ts_retention_file *out, char *msg,
			   size_t msg_len);
/* Releases what parse made and zeroes *f. Accepts NULL and a zeroed *f. */
void ts_retention_file_fini(struct ts_retention_file *f);

#endif
