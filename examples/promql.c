/*
 * promql.c - libtsdb's PromQL evaluator: open a database (as append_select left it),
 * evaluate a range query and an instant query, print the results, close.
 *
 *   cc promql.c $(pkg-config --cflags --libs tsdb) -o promql
 *   ./promql DATA_DIR ['sum by (code) (rate(http_requests_total[5m]))']
 *
 * Prints each series of the range query with its point count and last value, then
 * the instant query's vector. Exits 0, or 1 with the error as Prometheus words it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tsdb/query.h>
#include <tsdb/tsdb.h>

static void print_labels(const struct ts_qseries *s)
{
	printf("{");
	for (uint32_t k = 0; k < s->n_labels; k++)
		printf("%s%.*s=\"%.*s\"", k ? ", " : "", (int)s->labels[k].name_len,
		       s->labels[k].name, (int)s->labels[k].value_len, s->labels[k].value);
	printf("}");
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: promql DATA_DIR [QUERY]\n");
		return 2;
	}
	const char *q = argc == 3 ? argv[2] : "sum by (code) (rate(http_requests_total[5m]))";
	ts_log_to_stderr();
	struct ts_db_opts opts;
	memset(&opts, 0, sizeof opts);
	struct ts_db *db;
	int rc = ts_db_open(argv[1], &opts, &db);
	if (rc) {
		fprintf(stderr, "promql: open: %s\n", ts_strerror(rc));
		return 1;
	}
	int64_t now = (int64_t)time(NULL) * 1000;
	struct ts_qopts o;
	memset(&o, 0, sizeof o); /* default limits: 2 min timeout, 50M samples */
	struct ts_qresult *r = NULL;
	struct ts_qerr err;
	rc = ts_query_range(db, q, strlen(q), now - 600000, now, 60000, &o, &r, &err);
	if (rc) {
		fprintf(stderr, "promql: %s\n", err.msg);
		ts_db_close(db);
		return 1;
	}
	printf("range %s: %zu series\n", q, r->n_series);
	for (size_t i = 0; i < r->n_series; i++) {
		const struct ts_qseries *s = &r->series[i];
		print_labels(s);
		printf(" %zu points, last %g\n", s->n_points, s->points[s->n_points - 1].v);
	}
	ts_qresult_free(r);
	rc = ts_query_instant(db, q, strlen(q), now, &o, &r, &err);
	if (rc) {
		fprintf(stderr, "promql: %s\n", err.msg);
		ts_db_close(db);
		return 1;
	}
	printf("instant: %zu series\n", r->n_series);
	for (size_t i = 0; i < r->n_series; i++) {
		print_labels(&r->series[i]);
		printf(" %g\n", r->series[i].points[0].v);
	}
	ts_qresult_free(r);
	return ts_db_close(db) ? 1 : 0;
}
