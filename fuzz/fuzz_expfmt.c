/*
 * fuzz_expfmt.c - Prometheus text exposition decoder on arbitrary bytes. Properties:
 *   - decoding is deterministic (two parsers agree entry by entry, errors included);
 *   - every string lies inside the body or the scratch buffer and is valid UTF-8;
 *     labels are sorted, unique, with non-empty values, and include __name__;
 *   - a sample written back in the text format (all names quoted, values by
 *     ts_fmt_double) decodes to identical labels, bit-identical value and timestamp.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/expfmt.h"
#include "wire/fmtnum.h"
#include "tsdb/utf8.h"
#include "storage/mem.h"
#include "fuzz_util.h"

/* s[0..n) lies inside the body or the parser's scratch buffer. */
static int inside(const struct ts_expfmt_parser *p, const char *s, size_t n)
{
	return n == 0 || fz_within(s, n, p->buf, p->len) ||
	       (p->scratch && fz_within(s, n, p->scratch, p->scratch_cap));
}

static size_t put_quoted(char *d, const char *s, size_t n)
{
	size_t o = 0;
	d[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '"') {
			d[o++] = '\\';
			d[o++] = s[i];
		} else if (s[i] == '\n') {
			d[o++] = '\\';
			d[o++] = 'n';
		} else {
			d[o++] = s[i];
		}
	}
	d[o++] = '"';
	return o;
}

static void roundtrip(const struct ts_expfmt_entry *e)
{
	size_t bound = 64;
	for (uint32_t i = 0; i < e->n_labels; i++)
		bound += 2 * ((size_t)e->labels[i].name_len + e->labels[i].value_len) + 8;
	char *buf = ts_malloc(bound);
	if (!buf)
		return;
	size_t o = 0;
	buf[o++] = '{';
	for (uint32_t i = 0; i < e->n_labels; i++)
		if (fz_same(e->labels[i].name, e->labels[i].name_len, "__name__", 8))
			o += put_quoted(buf + o, e->labels[i].value, e->labels[i].value_len);
	for (uint32_t i = 0; i < e->n_labels; i++) {
		if (fz_same(e->labels[i].name, e->labels[i].name_len, "__name__", 8))
			continue;
		buf[o++] = ',';
		o += put_quoted(buf + o, e->labels[i].name, e->labels[i].name_len);
		buf[o++] = '=';
		o += put_quoted(buf + o, e->labels[i].value, e->labels[i].value_len);
	}
	buf[o++] = '}';
	buf[o++] = ' ';
	o += ts_fmt_double(buf + o, e->sample.v);
	/* Negative timestamps cannot be written (digits only): use the default. */
	if (e->sample.t_ms >= 0)
		o += (size_t)snprintf(buf + o, bound - o, " %lld", (long long)e->sample.t_ms);
	struct ts_expfmt_parser p;
	struct ts_expfmt_entry r;
	ts_expfmt_init(&p, buf, o, e->sample.t_ms);
	fz_check(ts_expfmt_next(&p, &r) == 1);
	fz_check(r.kind == TS_EXPFMT_SERIES && r.n_labels == e->n_labels);
	for (uint32_t i = 0; i < r.n_labels; i++) {
		fz_check(fz_same(r.labels[i].name, r.labels[i].name_len, e->labels[i].name,
				 e->labels[i].name_len));
		fz_check(fz_same(r.labels[i].value, r.labels[i].value_len, e->labels[i].value,
				 e->labels[i].value_len));
	}
	fz_check(memcmp(&r.sample.v, &e->sample.v, sizeof(double)) == 0);
	fz_check(r.sample.t_ms == e->sample.t_ms);
	fz_check(ts_expfmt_next(&p, &r) == 0);
	ts_expfmt_fini(&p);
	ts_free(buf);
}

static void check_entry(const struct ts_expfmt_parser *p, const struct ts_expfmt_entry *e)
{
	if (e->kind == TS_EXPFMT_HELP || e->kind == TS_EXPFMT_TYPE) {
		fz_check(e->name_len > 0 && inside(p, e->name, e->name_len));
		fz_check(ts_utf8_valid(e->name, e->name_len));
		if (e->kind == TS_EXPFMT_HELP)
			fz_check(inside(p, e->help, e->help_len) &&
				 ts_utf8_valid(e->help, e->help_len));
		else
			fz_check(e->type <= TS_EXPFMT_SUMMARY);
		return;
	}
	fz_check(e->kind == TS_EXPFMT_SERIES && e->n_labels >= 1);
	int has_name = 0;
	for (uint32_t i = 0; i < e->n_labels; i++) {
		const struct ts_label *l = &e->labels[i];
		fz_check(l->name_len > 0 && l->value_len > 0);
		/* The one name not taken from the input is the constant "__name__". */
		fz_check(fz_same(l->name, l->name_len, "__name__", 8) ||
			 inside(p, l->name, l->name_len));
		fz_check(inside(p, l->value, l->value_len));
		fz_check(ts_utf8_valid(l->name, l->name_len) &&
			 ts_utf8_valid(l->value, l->value_len));
		has_name |= fz_same(l->name, l->name_len, "__name__", 8);
		if (i > 0) {
			const struct ts_label *k = &e->labels[i - 1];
			uint32_t n = k->name_len < l->name_len ? k->name_len : l->name_len;
			int c = memcmp(k->name, l->name, n);
			fz_check(c < 0 || (c == 0 && k->name_len < l->name_len));
		}
	}
	fz_check(has_name);
	roundtrip(e);
}

static void compare(const struct ts_expfmt_entry *a, const struct ts_expfmt_entry *b)
{
	fz_check(a->kind == b->kind && a->type == b->type && a->line == b->line);
	fz_check(fz_same(a->name, a->name_len, b->name, b->name_len));
	fz_check(fz_same(a->help, a->help_len, b->help, b->help_len));
	fz_check(a->n_labels == b->n_labels && a->has_ts == b->has_ts);
	fz_check(a->sample.t_ms == b->sample.t_ms);
	fz_check(memcmp(&a->sample.v, &b->sample.v, sizeof(double)) == 0);
	for (uint32_t i = 0; i < a->n_labels; i++) {
		fz_check(fz_same(a->labels[i].name, a->labels[i].name_len, b->labels[i].name,
				 b->labels[i].name_len));
		fz_check(fz_same(a->labels[i].value, a->labels[i].value_len, b->labels[i].value,
				 b->labels[i].value_len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct ts_expfmt_parser a, b;
	struct ts_expfmt_entry ea, eb;
	ts_expfmt_init(&a, body, size, 1700000000000LL);
	ts_expfmt_init(&b, body, size, 1700000000000LL);
	for (int guard = 0; guard < 1000000; guard++) {
		int ra = ts_expfmt_next(&a, &ea);
		int rb = ts_expfmt_next(&b, &eb);
		fz_check(ra == rb);
		if (ra == 0)
			break;
		if (ra < 0) {
			fz_check(strcmp(a.err, b.err) == 0);
			continue;
		}
		check_entry(&a, &ea);
		compare(&ea, &eb);
	}
	ts_expfmt_fini(&a);
	ts_expfmt_fini(&b);
	return 0;
}
