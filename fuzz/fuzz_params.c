/*
 * Fuzz target: the query side's parameter decoding — form/query-string parsing, API
 * times and durations, match[] series selectors, and the Grafana ad-hoc filter rewrite
 * (parse a query, add matchers to every selector, print it back).
 * Properties: nothing crashes or leaks; a parsed duration is never negative; a rewritten
 * query always parses again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/ast.h"
#include "query/promql.h"
#include "server/api_json.h"
#include "wire/params.h"
#include "storage/mem.h"

static int each_value(void *arg, const char *v, size_t len)
{
	(void)arg;
	int64_t ms;
	if (ts_parse_duration_ms(v, &ms) == 0 && ms < 0)
		abort();
	ts_parse_time_ms(v, &ms);
	char msg[256];
	struct ts_selector sel;
	if (ts_selector_parse(&sel, v, len, msg, sizeof msg) == 0)
		ts_selector_fini(&sel);
	static const struct ts_matcher add[] = { { TS_MATCH_EQ, "job", "node" },
						 { TS_MATCH_RE, "instance", "a.*|b" } };
	char *out = NULL;
	if (ts_selector_add_matchers(v, len, add, 2, &out, msg, sizeof msg) == 0) {
		struct ts_ast *t = NULL;
		struct ts_promql_error err;
		if (ts_promql_parse(out, strlen(out), &t, &err) != 0)
			abort(); /* the rewrite printed something that does not parse */
		ts_ast_free(t);
		ts_free(out);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_params p;
	ts_params_init(&p);
	if (ts_params_parse(&p, (const char *)data, size) == 0) {
		static const char *names[] = { "query", "time",	   "start",   "end",
					       "step",	"match[]", "timeout", "limit" };
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			ts_params_each(&p, names[i], each_value, NULL);
	}
	ts_params_fini(&p);
	return 0;
}
