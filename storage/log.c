/*
 * log.c - leveled logger. Each line carries an RFC3339 UTC timestamp and the level so
 * logs from a kill -9 test can be read against the sender's timeline. Lines go to
 * stderr, or to the sink an embedding program set; the installable libtsdb is built
 * with TS_LOG_DEFAULT_SILENT, so a library user sees nothing unless it sets a sink.
 */
#include "storage/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = -1;

static void to_stderr(enum ts_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	ssize_t w = write(2, line, len);
	(void)w; /* nothing sensible to do if stderr is gone */
}

/* The sink: function and argument change together, under sink_mu (a log line is rare
 * enough for a lock; two separate atomics could pair one sink's function with the
 * other's argument). */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
#ifdef TS_LOG_DEFAULT_SILENT
static ts_log_sink_fn sink_fn = NULL;
#else
static ts_log_sink_fn sink_fn = to_stderr;
#endif
static void *sink_arg = NULL;

void ts_log_set_sink(ts_log_sink_fn fn, void *arg)
{
	pthread_mutex_lock(&sink_mu);
	sink_fn = fn;
	sink_arg = arg;
	pthread_mutex_unlock(&sink_mu);
}

void ts_log_to_stderr(void)
{
	ts_log_set_sink(to_stderr, NULL);
}

void ts_log_set_level(enum ts_log_level level)
{
	atomic_store(&min_level, (int)level);
}

static int current_level(void)
{
	int l = atomic_load(&min_level);
	if (l >= 0)
		return l;
	const char *e = getenv("TS_LOG_LEVEL");
	l = TS_LOG_INFO;
	if (e) {
		if (!strcmp(e, "debug"))
			l = TS_LOG_DEBUG;
		else if (!strcmp(e, "warn"))
			l = TS_LOG_WARN;
		else if (!strcmp(e, "error"))
			l = TS_LOG_ERROR;
	}
	atomic_store(&min_level, l);
	return l;
}

void ts_log(enum ts_log_level level, const char *fmt, ...)
{
	pthread_mutex_lock(&sink_mu);
	ts_log_sink_fn fn = sink_fn;
	void *arg = sink_arg;
	pthread_mutex_unlock(&sink_mu);
	if (!fn || (int)level < current_level())
		return;
	static const char *names[] = { "debug", "info", "warn", "error" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, names[level & 3]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	fn(level, line, len, arg);
}
