/*
 * clock.h - milliseconds of the two clocks, and deadlines for timed waits.
 *
 * The wall clock (CLOCK_REALTIME) gives sample times; the monotonic clock gives
 * intervals that a clock step cannot stretch or shrink. Thread-safe; nothing fails.
 */
#ifndef TS_STORAGE_CLOCK_H
#define TS_STORAGE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the epoch, from the wall clock. */
int64_t ts_wall_ms(void);
/* Milliseconds of the monotonic clock (an arbitrary origin; for differences only). */
int64_t ts_mono_ms(void);
/* Nanoseconds of the monotonic clock: the unit of query and selection deadlines
 * (ts_select_opts.deadline_ns). */
int64_t ts_mono_ns(void);
/* Fills *out with the time `ms` milliseconds from now on `clock`: the absolute deadline
 * pthread_cond_timedwait() takes (CLOCK_REALTIME for a default condition variable, the
 * condition's clock otherwise). */
void ts_deadline(clockid_t clock, uint64_t ms, struct timespec *out);

#endif
