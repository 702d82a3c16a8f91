/*
 * log.h - minimal leveled logging to stderr (one line per call, written with a single
 * write(2) so lines from threads do not interleave). The server replaces nothing here;
 * operators redirect stderr.
 */
#ifndef TS_STORAGE_LOG_H
#define TS_STORAGE_LOG_H

enum ts_log_level { TS_LOG_DEBUG = 0, TS_LOG_INFO = 1, TS_LOG_WARN = 2, TS_LOG_ERROR = 3 };

/* Lines below this level are dropped. Default TS_LOG_INFO; env TS_LOG_LEVEL=debug|info|warn|error. */
void ts_log_set_level(enum ts_log_level level);

void ts_log(enum ts_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
