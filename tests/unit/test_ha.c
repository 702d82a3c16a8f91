/*
 * test_ha.c - the HA tracker (server/ha.h): elections by this server's clock, failover
 * after the timeout, elections surviving a restart (and a malformed state file not
 * stopping one), per-tenant elections, the batch filter (replica label removed, series
 * without the labels passed, drops counted), and the engine's in-order flag that keeps
 * a new replica's backlog from interleaving with the old one's samples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/ha.h"
#include "storage/clock.h"
#include "storage/err.h"
#include "tests/unit/testutil.h"
#include "tsdb/tsdb.h"

#define T 1700000000000LL
#define TIMEOUT 30000

static struct ts_ha *open_ha(const char *dir)
{
	struct ts_ha_config c = { "cluster", "replica", TIMEOUT, dir };
	struct ts_ha *h;
	assert_int_equal(ts_ha_open(&c, &h), 0);
	return h;
}

static int decide(struct ts_ha *h, const char *tenant, const char *cluster, const char *replica,
		  int64_t now)
{
	return ts_ha_decide(h, tenant, cluster, strlen(cluster), replica, strlen(replica), now);
}

static void test_election_and_failover(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "ha");
	struct ts_ha *h = open_ha(dir);
	assert_int_equal(decide(h, "", "c1", "a", T), 1);      /* first writer elected */
	assert_int_equal(decide(h, "", "c1", "b", T + 10), 0); /* the other dropped */
	assert_int_equal(decide(h, "", "c1", "a", T + 20000), 1);
	/* b keeps writing; a's last write was at T+20000: within the timeout b stays out. */
	assert_int_equal(decide(h, "", "c1", "b", T + 20000 + TIMEOUT), 0);
	assert_int_equal(decide(h, "", "c1", "b", T + 20001 + TIMEOUT), 1); /* failover */
	assert_int_equal(decide(h, "", "c1", "a", T + 20002 + TIMEOUT), 0); /* a is out now */
	assert_int_equal(decide(h, "", "c1", "b", T + 20003 + TIMEOUT), 1);
	/* Clusters and tenants elect apart. */
	assert_int_equal(decide(h, "", "c2", "b", T), 1);
	assert_int_equal(decide(h, "team-x", "c1", "a", T + 20004 + TIMEOUT), 1);
	assert_int_equal(decide(h, "team-x", "c1", "b", T + 20005 + TIMEOUT), 0);
	/* A clock that goes back (NTP step) does not elect anyone new. */
	assert_int_equal(decide(h, "", "c1", "a", T), 0);
	ts_ha_close(h);
	tu_rmtree(dir);
}

struct seen {
	char replica[32];
	uint64_t failovers;
	int n;
};

static void one(void *arg, const struct ts_ha_state *s)
{
	struct seen *x = arg;
	if (strcmp(s->cluster, "c1") || s->tenant[0])
		return;
	snprintf(x->replica, sizeof x->replica, "%s", s->replica);
	x->failovers = s->failovers;
	x->n++;
}

static void test_restart_keeps_the_election(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "ha");
	struct ts_ha *h = open_ha(dir);
	assert_int_equal(decide(h, "", "c1", "a", T), 1);
	assert_int_equal(decide(h, "", "c1", "b", T + TIMEOUT + 1), 1); /* failover to b */
	ts_ha_close(h);
	/* Reopened: b is still elected and gets a whole timeout from the reopening (by
	 * the wall clock) before a can take over. */
	h = open_ha(dir);
	struct seen x = { 0 };
	ts_ha_each(h, one, NULL, &x);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.replica, "b");
	assert_int_equal(x.failovers, 1);
	int64_t w = ts_wall_ms();
	assert_int_equal(decide(h, "", "c1", "a", w + TIMEOUT / 2), 0);
	assert_int_equal(decide(h, "", "c1", "a", w + TIMEOUT + 1000), 1);
	ts_ha_close(h);
	/* A malformed state file: logged, elections start afresh. */
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, TS_HA_STATE_FILE);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("tsdb-ha-tracker 1\n99999999 1 1 x y\n", f);
	fclose(f);
	h = open_ha(dir);
	x = (struct seen){ 0 };
	ts_ha_each(h, one, NULL, &x);
	assert_int_equal(x.n, 0);
	assert_int_equal(decide(h, "", "c1", "a", T), 1);
	ts_ha_close(h);
	tu_rmtree(dir);
}

static struct ts_label L(const char *n, const char *v) {
	return (struct ts_label){ n, v, (uint32_t)strlen(n), (uint32_t)strlen(v) };
}

struct drops {
	uint64_t a, b;
};

static void count(void *arg, const struct ts_ha_drop *d)
{
	struct drops *x = arg;
	if (!strcmp(d->replica, "a"))
		x->a += d->samples;
	if (!strcmp(d->replica, "b"))
		x->b += d->samples;
}

static void test_filter(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "ha");
	struct ts_ha *h = open_ha(dir);
	/* The replicas' clocks are hours apart: elections do not look at sample times. */
	struct ts_label la[] = { L("__name__", "up"), L("cluster", "c1"), L("job", "n"),
				 L("replica", "a") };
	struct ts_label lb[] = { L("replica", "b"), L("__name__", "up"), L("job", "n"),
				 L("cluster", "c1") };
	struct ts_label lplain[] = { L("__name__", "up"), L("job", "other") };
	struct ts_label lnorep[] = { L("__name__", "up"), L("cluster", "c1") };
	struct ts_sample sa[] = { { T, 1 }, { T + 15000, 1 } };
	struct ts_sample sb[] = { { T + 7200000, 1 }, { T + 7215000, 1 }, { T + 7230000, 1 } };
	struct ts_series_in in[] = {
		{ la, 4, sa, 2 }, { lb, 4, sb, 3 }, { lplain, 2, sa, 2 }, { lnorep, 2, sa, 1 }
	};
	struct ts_ha_batch b = { 0 };
	const struct ts_series_in *out;
	const uint32_t *flags;
	size_t n;
	uint64_t dropped;
	assert_int_equal(ts_ha_filter(h, "", in, 4, &b, &out, &n, &flags, &dropped), 0);
	assert_int_equal(n, 3);
	assert_int_equal(dropped, 3);
	/* a's series, without its replica label, appended in order only */
	assert_int_equal(out[0].n_labels, 3);
	for (uint32_t i = 0; i < out[0].n_labels; i++)
		assert_string_not_equal(out[0].labels[i].name, "replica");
	assert_int_equal(flags[0], TS_APPEND_IN_ORDER);
	/* the others unchanged */
	assert_ptr_equal(out[1].labels, lplain);
	assert_int_equal(flags[1], 0);
	assert_ptr_equal(out[2].labels, lnorep);
	assert_int_equal(flags[2], 0);
	struct drops d = { 0 };
	ts_ha_each(h, NULL, count, &d);
	assert_int_equal(d.b, 3);
	assert_int_equal(d.a, 0);
	/* Without a tracker the batch passes as it is. */
	assert_int_equal(ts_ha_filter(NULL, "", in, 4, &b, &out, &n, &flags, &dropped), 0);
	assert_ptr_equal(out, in);
	assert_int_equal(n, 4);
	assert_null(flags);
	ts_ha_batch_fini(&b);
	ts_ha_close(h);
	tu_rmtree(dir);
}

static void test_in_order_flag(void **state)
{
	(void)state;
	char dir[512];
	tu_mkdtemp(dir, sizeof dir, "ha");
	struct ts_db_opts o = { .sync = TS_WAL_SYNC_NEVER, .ooo_window_ms = 3600000 };
	struct ts_db *db;
	assert_int_equal(ts_db_open(dir, &o, &db), 0);
	int64_t t = ts_wall_ms();
	struct ts_label l1[] = { L("__name__", "x"), L("k", "ha") };
	struct ts_label l2[] = { L("__name__", "x"), L("k", "plain") };
	struct ts_sample s1[] = { { t - 60000, 1 }, { t - 30000, 2 } };
	struct ts_sample old[] = { { t - 45000, 9 } };
	struct ts_series_in in[] = { { l1, 2, s1, 2 }, { l2, 2, s1, 2 } };
	uint32_t fl[] = { TS_APPEND_IN_ORDER, 0 };
	struct ts_append_result r;
	assert_int_equal(ts_db_append_flags(db, in, 2, fl, &r, NULL), 0);
	assert_int_equal(r.n_appended, 4);
	/* An older sample: refused for the flagged series, taken (out-of-order window)
	 * for the other. */
	struct ts_series_in in2[] = { { l1, 2, old, 1 }, { l2, 2, old, 1 } };
	int rc[2];
	assert_int_equal(ts_db_append_flags(db, in2, 2, fl, &r, rc), 0);
	assert_int_equal(r.n_appended, 1);
	assert_int_equal(r.n_out_of_order, 1);
	assert_int_equal(rc[0], TS_EOUTOFORDER);
	assert_int_equal(rc[1], 0);
	/* Newer samples still go in, and so do exact resends. */
	struct ts_sample nw[] = { { t - 30000, 2 }, { t - 15000, 3 } };
	struct ts_series_in in3[] = { { l1, 2, nw, 2 } };
	assert_int_equal(ts_db_append_flags(db, in3, 1, fl, &r, NULL), 0);
	assert_int_equal(r.n_appended, 1);
	assert_int_equal(r.n_duplicate, 1);
	assert_int_equal(ts_db_close(db), 0);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_election_and_failover),
		cmocka_unit_test(test_restart_keeps_the_election),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_in_order_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
