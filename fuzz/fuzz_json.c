/*
 * fuzz_json.c - the JSON document reader (wire/json.c, ts_jdoc_parse), which reads the
 * Grafana datasource's request bodies.
 * Properties: nothing crashes or leaks; every parsed tree is well formed (indices in
 * range, strings NUL-terminated at their length, object members keyed) and a walk over
 * it terminates; the look-ups handlers use are safe on any shape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/json.h"

static size_t walk(const struct ts_jdoc *d, const struct ts_jv *v, int depth, int in_obj)
{
	if (depth > 200)
		abort(); /* deeper than the reader's nesting limit allows */
	if ((size_t)(v - d->v) >= d->n)
		abort();
	if (in_obj && !v->key)
		abort();
	if (v->type == TS_JV_STR && (!v->s || v->s[v->len] != 0))
		abort();
	size_t count = 1;
	if (v->type == TS_JV_ARR || v->type == TS_JV_OBJ)
		for (const struct ts_jv *c = ts_jv_first(d, v); c; c = ts_jv_next(d, c)) {
			count += walk(d, c, depth + 1, v->type == TS_JV_OBJ);
			if (count > d->n)
				abort(); /* a cycle */
		}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_jdoc d;
	char msg[256];
	memset(&d, 0, sizeof d);
	if (ts_jdoc_parse(&d, (const char *)data, size, msg, sizeof msg) == 0) {
		if (d.n == 0)
			abort();
		walk(&d, &d.v[0], 0, 0);
		/* Look-ups used by the handlers must be safe on any shape. */
		const struct ts_jv *t = ts_jv_get(&d, &d.v[0], "targets");
		for (const struct ts_jv *x = ts_jv_first(&d, t); x; x = ts_jv_next(&d, x))
			(void)ts_jv_str(ts_jv_get(&d, x, "target"));
	}
	ts_jdoc_fini(&d);
	return 0;
}
