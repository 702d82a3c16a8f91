/*
 * clock.c - milliseconds of the wall and monotonic clocks, and timed-wait deadlines.
 */
#include "storage/clock.h"

static int64_t clock_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ts_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t ts_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t ts_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ts_deadline(clockid_t clock, uint64_t ms, struct timespec *out)
{
	clock_gettime(clock, out);
	uint64_t ns = (uint64_t)out->tv_nsec + ms * 1000000u;
	out->tv_sec += (time_t)(ns / 1000000000u);
	out->tv_nsec = (long)(ns % 1000000000u);
}
