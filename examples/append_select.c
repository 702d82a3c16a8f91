/*
 * append_select.c - libtsdb's engine API: open a database, append two series, select
 * them back with a label matcher and iterate their samples, then close.
 *
 *   cc append_select.c $(pkg-config --cflags --libs tsdb) -o append_select
 *   ./append_select DATA_DIR
 *
 * Prints one line per series ("labels: n samples, first t=v, last t=v") and exits 0;
 * any failure prints the library's error name and exits 1.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tsdb/tsdb.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "append_select: %s: %s\n", what, ts_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: append_select DATA_DIR\n");
		return 2;
	}
	ts_log_to_stderr(); /* the library is silent unless asked */
	struct ts_db_opts opts;
	memset(&opts, 0, sizeof opts); /* defaults: fdatasync before an append returns */
	struct ts_db *db;
	int rc = ts_db_open(argv[1], &opts, &db);
	if (rc)
		return fail("open", rc);

	/* Two series of a counter, one sample every 15 s for the last 10 minutes. */
	int64_t now = (int64_t)time(NULL) * 1000, t0 = now - 600000;
	struct ts_sample a[40], b[40];
	for (int i = 0; i < 40; i++) {
		a[i] = (struct ts_sample){ t0 + i * 15000, 100.0 * i };
		b[i] = (struct ts_sample){ t0 + i * 15000, 50.0 * i };
	}
	struct ts_label la[] = { { "__name__", "http_requests_total", 8, 19 },
				 { "job", "api", 3, 3 },
				 { "code", "200", 4, 3 } };
	struct ts_label lb[] = { { "__name__", "http_requests_total", 8, 19 },
				 { "job", "api", 3, 3 },
				 { "code", "500", 4, 3 } };
	struct ts_series_in in[] = { { la, 3, a, 40 }, { lb, 3, b, 40 } };
	struct ts_append_result res;
	rc = ts_db_append(db, in, 2, &res, NULL);
	if (rc)
		return fail("append", rc);
	printf("appended %llu samples\n", (unsigned long long)res.n_appended);

	/* Select {job="api"} over the whole range and read every sample back. */
	struct ts_matcher m[] = { { TS_MATCH_EQ, "job", "api" } };
	struct ts_series_set *set;
	char msg[256];
	rc = ts_db_select(db, m, 1, t0, now, NULL, &set, msg, sizeof msg);
	if (rc)
		return fail("select", rc);
	for (size_t i = 0; i < ts_series_set_len(set); i++) {
		const struct ts_label *l;
		uint32_t nl;
		struct ts_iter *it;
		if ((rc = ts_series_set_labels(set, i, &l, &nl)) || (rc = ts_iter_new(set, i, &it)))
			return fail("iterate", rc);
		size_t n = 0;
		int64_t t, first_t = 0;
		double v, first_v = 0;
		while ((rc = ts_iter_next(it)) == 1) {
			ts_iter_at(it, &t, &v);
			if (n++ == 0) {
				first_t = t;
				first_v = v;
			}
		}
		ts_iter_free(it);
		if (rc < 0)
			return fail("iterate", rc);
		for (uint32_t k = 0; k < nl; k++)
			printf("%s%.*s=\"%.*s\"", k ? "," : "{", (int)l[k].name_len, l[k].name,
			       (int)l[k].value_len, l[k].value);
		printf("}: %zu samples, first %lld=%g, last %lld=%g\n", n, (long long)first_t,
		       first_v, (long long)t, v);
	}
	ts_series_set_free(set);
	rc = ts_db_close(db);
	return rc ? fail("close", rc) : 0;
}
