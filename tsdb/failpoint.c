/*
 * failpoint.c - the armed crash point of TS_FAILPOINT (see failpoint.h; tests only).
 *
 * State: the armed point's name and the hit that kills, written by ts__failpoint_load
 * before ts__failpoint_armed is set (release), read after it is seen set.
 */
#include "tsdb/failpoint.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "storage/log.h"

atomic_int ts__failpoint_armed;

static char armed_name[64];
static long armed_at;	       /* kill (or fail) at this hit, >= 1 */
static int armed_errno;	       /* 0: kill; else the error point fails with -armed_errno */
static atomic_long armed_hits; /* hits of armed_name since the load */

static int errno_named(const char *s)
{
	static const struct {
		const char *name;
		int e;
	} t[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "ENOMEM", ENOMEM }
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].name))
			return t[i].e;
	return 0;
}

void ts__failpoint_load(void)
{
	atomic_store(&ts__failpoint_armed, 0);
	const char *e = getenv("TS_FAILPOINT");
	const char *colon = e ? strchr(e, ':') : NULL;
	if (!colon || colon == e || (size_t)(colon - e) >= sizeof armed_name)
		return;
	char *end;
	errno = 0;
	long n = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || n < 1)
		return;
	int err = 0;
	if (*end == ':' && !(err = errno_named(end + 1)))
		return;
	if (*end && *end != ':')
		return;
	memcpy(armed_name, e, (size_t)(colon - e));
	armed_name[colon - e] = 0;
	armed_at = n;
	armed_errno = err;
	atomic_store(&armed_hits, 0);
	if (err)
		ts_log(TS_LOG_WARN, "TS_FAILPOINT: hit %ld of %s fails with %s", n, armed_name,
		       strerror(err));
	else
		ts_log(TS_LOG_WARN, "TS_FAILPOINT: the process kills itself at hit %ld of %s", n,
		       armed_name);
	atomic_store_explicit(&ts__failpoint_armed, 1, memory_order_release);
}

void ts__failpoint_hit(const char *name)
{
	atomic_thread_fence(memory_order_acquire);
	if (armed_errno || strcmp(name, armed_name) != 0)
		return;
	if (atomic_fetch_add(&armed_hits, 1) + 1 == armed_at)
		raise(SIGKILL);
}

int ts__failpoint_err_hit(const char *name)
{
	atomic_thread_fence(memory_order_acquire);
	if (!armed_errno || strcmp(name, armed_name) != 0)
		return 0;
	return atomic_fetch_add(&armed_hits, 1) + 1 == armed_at ? -armed_errno : 0;
}
