/*
 * fuzz_promql.c - PromQL parser and printer on arbitrary bytes.
 *
 * Whatever parses must print to text that parses again into an equal tree
 * (ts_ast_equal) and prints identically a second time, and so must its pretty form
 * (format_query's, split over lines); any violation aborts. Errors
 * must carry a position inside the input. ASan/UBSan watch memory throughout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/ast.h"
#include "query/promql.h"
#include "storage/err.h"
#include "storage/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_ast *t = NULL, *u = NULL;
	struct ts_promql_error err;
	char *s1 = NULL, *s2 = NULL;
	int rc = ts_promql_parse((const char *)data, size, &t, &err);
	if (rc != 0) {
		if (rc != TS_EINVALID || t || err.pos < 0 || (size_t)err.pos > size)
			abort();
		return 0;
	}
	if (ts_ast_print(t, &s1) != 0)
		abort();
	if (ts_promql_parse(s1, strlen(s1), &u, &err) != 0)
		abort();
	if (!ts_ast_equal(t, u))
		abort();
	if (ts_ast_print(u, &s2) != 0 || strcmp(s1, s2) != 0)
		abort();
	char *pretty = NULL;
	struct ts_ast *v = NULL;
	if (ts_ast_pretty(t, &pretty) != 0 ||
	    ts_promql_parse(pretty, strlen(pretty), &v, &err) != 0 || !ts_ast_equal(t, v))
		abort();
	ts_ast_free(v);
	ts_free(pretty);
	ts_free(s1);
	ts_free(s2);
	ts_ast_free(u);
	ts_ast_free(t);
	return 0;
}
