/*
 * log.h - minimal leveled logging: one line per call, to stderr by default (written
 * with a single write(2) so lines from threads do not interleave; operators redirect
 * stderr). A program embedding the engine sets a sink instead; the installed libtsdb
 * logs nowhere until one is set.
 */
#ifndef TS_STORAGE_LOG_H
#define TS_STORAGE_LOG_H

#include <stddef.h>

enum ts_log_level { TS_LOG_DEBUG = 0, TS_LOG_INFO = 1, TS_LOG_WARN = 2, TS_LOG_ERROR = 3 };

/* Lines below this level are dropped. Default TS_LOG_INFO; env TS_LOG_LEVEL=debug|info|warn|error. */
void ts_log_set_level(enum ts_log_level level);

void ts_log(enum ts_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where lines go: fn(level, line, len, arg) with one whole line (timestamp, level,
 * message, '\n'; not NUL-terminated), called on the logging thread, possibly from
 * several threads at once. NULL drops every line. The line is only valid during the
 * call. Thread-safe; a line already being written may still reach the previous sink
 * (with that sink's own argument). */
typedef void (*ts_log_sink_fn)(enum ts_log_level level, const char *line, size_t len, void *arg);
void ts_log_set_sink(ts_log_sink_fn fn, void *arg);
/* The default of the programs: every line to stderr. */
void ts_log_to_stderr(void);

#endif
