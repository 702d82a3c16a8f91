/* Unit tests for tsdb/labels.c: canonical order, validation, packing, hashing, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "storage/err.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"

#define L(n, v)                                                        \
	{                                                              \
		n, v, (uint32_t)sizeof(n) - 1, (uint32_t)sizeof(v) - 1 \
	}
static const struct ts_labels_limits lim = { 64, 256, 4096 };

static void test_canon_sorts_and_drops_empty(void **st)
{
	(void)st;
	struct ts_label in[] = { L("job", "a"), L("empty", ""), L("__name__", "up"), L("b", "x") };
	struct ts_label out[4];
	uint32_t n;
	char err[128];
	assert_int_equal(ts_labels_canon(in, 4, &lim, out, &n, err, sizeof err), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out[0].name, "__name__", 8);
	assert_memory_equal(out[1].name, "b", 1);
	assert_memory_equal(out[2].name, "job", 3);
}

static void test_canon_rejects(void **st)
{
	(void)st;
	struct ts_label out[8];
	uint32_t n;
	char err[128];
	struct ts_label nometric[] = { L("job", "a") };
	assert_int_equal(ts_labels_canon(nometric, 1, &lim, out, &n, err, sizeof err), TS_EINVALID);
	assert_non_null(strstr(err, "__name__"));
	struct ts_label dup[] = { L("__name__", "m"), L("a", "1"), L("a", "2") };
	assert_int_equal(ts_labels_canon(dup, 3, &lim, out, &n, err, sizeof err), TS_EINVALID);
	assert_non_null(strstr(err, "duplicate"));
	struct ts_label emptyname[] = { L("__name__", "m"), L("", "x") };
	assert_int_equal(ts_labels_canon(emptyname, 2, &lim, out, &n, err, sizeof err),
			 TS_EINVALID);
	struct ts_label emptymetric[] = { L("__name__", "") };
	assert_int_equal(ts_labels_canon(emptymetric, 1, &lim, out, &n, err, sizeof err),
			 TS_EINVALID);
	struct ts_label badutf[] = { L("__name__", "m"), L("a", "\xc0\xaf") };
	assert_int_equal(ts_labels_canon(badutf, 2, &lim, out, &n, err, sizeof err), TS_EINVALID);
	struct ts_label nul[] = { L("__name__", "m"), { "a\0b", "v", 3, 1 } };
	assert_int_equal(ts_labels_canon(nul, 2, &lim, out, &n, err, sizeof err), TS_EINVALID);
	struct ts_labels_limits small = { 2, 4, 4 };
	struct ts_label longval[] = { L("__name__", "m"), L("a", "12345") };
	assert_int_equal(ts_labels_canon(longval, 2, &small, out, &n, err, sizeof err), TS_ELIMIT);
	struct ts_label longname[] = { L("__name__", "m"), L("abcde", "1") };
	assert_int_equal(ts_labels_canon(longname, 2, &small, out, &n, err, sizeof err), TS_ELIMIT);
	struct ts_label many[] = { L("__name__", "m"), L("a", "1"), L("b", "2") };
	assert_int_equal(ts_labels_canon(many, 3, &small, out, &n, err, sizeof err), TS_ELIMIT);
}

static void test_pack_roundtrip_and_corrupt(void **st)
{
	(void)st;
	struct ts_label in[] = { L("__name__", "node_cpu_seconds_total"), L("cpu", "0"),
				 L("mode", "idle"), L("instance", "h\xc3\xa9:9100") };
	struct ts_label c[4], back[4];
	uint32_t n, m;
	char err[64];
	assert_int_equal(ts_labels_canon(in, 4, &lim, c, &n, err, sizeof err), 0);
	uint8_t buf[256];
	size_t len = ts_labels_pack(c, n, buf);
	assert_int_equal(len, ts_labels_packed_len(c, n));
	assert_int_equal(ts_labels_count(buf, len), 4);
	assert_int_equal(ts_labels_unpack(buf, len, back, 4, &m), 0);
	assert_int_equal(ts_labels_cmp(c, n, back, m), 0);
	const char *v;
	uint32_t vl;
	assert_int_equal(ts_labels_get(buf, len, "mode", &v, &vl), 1);
	assert_int_equal(vl, 4);
	assert_memory_equal(v, "idle", 4);
	assert_int_equal(ts_labels_get(buf, len, "nope", &v, &vl), 0);
	assert_int_equal(ts_labels_unpack(buf, len, back, 3, &m), TS_ECORRUPT);
	/* Every truncation is detected; every bit flip is either detected or in bounds. */
	for (size_t cut = 0; cut < len; cut++)
		assert_true(ts_labels_count(buf, cut) < 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		uint8_t x[256];
		memcpy(x, buf, len);
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int r = ts_labels_unpack(x, len, back, 4, &m);
		if (r == 0)
			for (uint32_t i = 0; i < m; i++) {
				assert_true((const uint8_t *)back[i].name >= x &&
					    (const uint8_t *)back[i].name + back[i].name_len <=
						    x + len);
				assert_true((const uint8_t *)back[i].value + back[i].value_len <=
					    x + len);
			}
	}
	assert_int_equal(ts_labels_hash(buf, len), ts_labels_hash(buf, len));
}

static void test_cmp_order(void **st)
{
	(void)st;
	struct ts_label a[] = { L("__name__", "a"), L("x", "1") };
	struct ts_label b[] = { L("__name__", "a"), L("x", "2") };
	struct ts_label c[] = { L("__name__", "a") };
	assert_true(ts_labels_cmp(a, 2, b, 2) < 0);
	assert_true(ts_labels_cmp(b, 2, a, 2) > 0);
	assert_true(ts_labels_cmp(c, 1, a, 2) < 0);
	assert_int_equal(ts_labels_cmp(a, 2, a, 2), 0);
}

static void test_utf8(void **st)
{
	(void)st;
	assert_true(ts_utf8_valid("", 0));
	assert_true(ts_utf8_valid("plain ascii", 11));
	assert_true(ts_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_false(ts_utf8_valid("\xc0\x80", 2));	    /* overlong NUL */
	assert_false(ts_utf8_valid("\xe0\x80\xaf", 3));	    /* overlong */
	assert_false(ts_utf8_valid("\xed\xa0\x80", 3));	    /* surrogate */
	assert_false(ts_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ts_utf8_valid("\xc3", 1));		    /* truncated */
	assert_false(ts_utf8_valid("\x80", 1));		    /* lone continuation */
	assert_false(ts_utf8_valid("\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_sorts_and_drops_empty),
		cmocka_unit_test(test_canon_rejects),
		cmocka_unit_test(test_pack_roundtrip_and_corrupt),
		cmocka_unit_test(test_cmp_order),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
