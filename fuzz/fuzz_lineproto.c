/*
 * fuzz_lineproto.c - InfluxDB line protocol decoder and mapper on arbitrary bytes.
 * The first byte picks the precision, the rest is the body. Properties checked (an
 * abort() is a finding):
 *   - decoding is deterministic: two parsers over the same body return the same
 *     sequence of results, points and error messages;
 *   - every string handed out lies inside the body or the parser's scratch buffer;
 *   - tags are sorted without duplicates, there is at least one field;
 *   - the mapper's series carry sorted labels including __name__ =
 *     "{measurement}_{field}" and the point's time;
 *   - a point's key (the bytes the ingest cache keys series on) lies in the body and,
 *     given other fields, parses to the same measurement and tags: equal keys can
 *     never name different series.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/lineproto.h"
#include "fuzz_util.h"

/* s[0..n) lies inside the body or the parser's scratch buffer. */
static int inside(const struct ts_lp_parser *p, const char *s, size_t n)
{
	return n == 0 || fz_within(s, n, p->buf, p->len) ||
	       (p->scratch && fz_within(s, n, p->scratch, p->scratch_cap));
}

static int label_less(const struct ts_label *a, const struct ts_label *b)
{
	uint32_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = n ? memcmp(a->name, b->name, n) : 0;
	return c < 0 || (c == 0 && a->name_len < b->name_len);
}

static void check_point(const struct ts_lp_parser *p, const struct ts_lp_point *pt)
{
	fz_check(pt->measurement_len > 0 && inside(p, pt->measurement, pt->measurement_len));
	fz_check(pt->n_fields > 0);
	for (uint32_t i = 0; i < pt->n_tags; i++) {
		const struct ts_label *t = &pt->tags[i];
		fz_check(t->name_len > 0 && t->value_len > 0);
		fz_check(inside(p, t->name, t->name_len) && inside(p, t->value, t->value_len));
		if (i > 0)
			fz_check(label_less(&pt->tags[i - 1], t));
	}
	for (uint32_t i = 0; i < pt->n_fields; i++) {
		const struct ts_lp_field *f = &pt->fields[i];
		fz_check(f->key_len > 0 && inside(p, f->key, f->key_len));
		fz_check(f->type <= TS_LP_BOOL);
		if (f->type == TS_LP_STRING)
			fz_check(inside(p, f->str, f->str_len));
	}
}

static void compare_points(const struct ts_lp_point *a, const struct ts_lp_point *b)
{
	fz_check(fz_same(a->measurement, a->measurement_len, b->measurement, b->measurement_len));
	fz_check(a->n_tags == b->n_tags && a->n_fields == b->n_fields);
	fz_check(a->t_ns == b->t_ns && a->t_ms == b->t_ms && a->line == b->line);
	for (uint32_t i = 0; i < a->n_tags; i++) {
		fz_check(fz_same(a->tags[i].name, a->tags[i].name_len, b->tags[i].name,
				 b->tags[i].name_len));
		fz_check(fz_same(a->tags[i].value, a->tags[i].value_len, b->tags[i].value,
				 b->tags[i].value_len));
	}
	for (uint32_t i = 0; i < a->n_fields; i++) {
		const struct ts_lp_field *x = &a->fields[i], *y = &b->fields[i];
		fz_check(fz_same(x->key, x->key_len, y->key, y->key_len) && x->type == y->type);
		if (x->type == TS_LP_STRING)
			fz_check(fz_same(x->str, x->str_len, y->str, y->str_len));
		else
			fz_check(memcmp(&x->v, &y->v, sizeof x->v) == 0);
	}
}

static void check_mapping(const struct ts_lp_mapper *m, const struct ts_lp_point *pt)
{
	uint32_t numeric = 0;
	for (uint32_t i = 0; i < pt->n_fields; i++)
		numeric += pt->fields[i].type != TS_LP_STRING;
	fz_check(m->n_series == numeric && m->n_skipped == pt->n_fields - numeric);
	uint32_t s = 0;
	for (uint32_t i = 0; i < pt->n_fields; i++) {
		const struct ts_lp_field *f = &pt->fields[i];
		if (f->type == TS_LP_STRING)
			continue;
		const struct ts_lp_series *se = &m->series[s++];
		fz_check(se->sample.t_ms == pt->t_ms);
		int found = 0;
		for (uint32_t k = 0; k < se->n_labels; k++) {
			const struct ts_label *l = &se->labels[k];
			if (k > 0)
				fz_check(label_less(&se->labels[k - 1], l));
			if (fz_same(l->name, l->name_len, "__name__", 8)) {
				found = 1;
				fz_check(l->value_len == pt->measurement_len + 1 + f->key_len);
				fz_check(memcmp(l->value, pt->measurement, pt->measurement_len) ==
					 0);
				fz_check(l->value[pt->measurement_len] == '_');
				fz_check(memcmp(l->value + pt->measurement_len + 1, f->key,
						f->key_len) == 0);
			}
		}
		fz_check(found);
	}
}

/* pt's key followed by other fields and a time parses to pt's measurement and tags. */
static void check_key(const struct ts_lp_parser *p, const struct ts_lp_point *pt)
{
	fz_check(pt->key_len > 0 && fz_within(pt->key, pt->key_len, p->buf, p->len));
	static const char tail[] = " other=1i 1";
	char *buf = malloc(pt->key_len + sizeof tail);
	fz_check(buf != NULL);
	memcpy(buf, pt->key, pt->key_len);
	memcpy(buf + pt->key_len, tail, sizeof tail - 1);
	struct ts_lp_parser q;
	struct ts_lp_point pq;
	ts_lp_init(&q, buf, pt->key_len + sizeof tail - 1, TS_LP_NS, 0);
	fz_check(ts_lp_next(&q, &pq) == 1);
	fz_check(fz_same(pq.measurement, pq.measurement_len, pt->measurement, pt->measurement_len));
	fz_check(pq.n_tags == pt->n_tags && pq.key_len == pt->key_len);
	for (uint32_t i = 0; i < pt->n_tags; i++) {
		fz_check(fz_same(pq.tags[i].name, pq.tags[i].name_len, pt->tags[i].name,
				 pt->tags[i].name_len));
		fz_check(fz_same(pq.tags[i].value, pq.tags[i].value_len, pt->tags[i].value,
				 pt->tags[i].value_len));
	}
	ts_lp_fini(&q);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ts_lp_precision prec = TS_LP_NS;
	if (size > 0) {
		prec = (enum ts_lp_precision)(data[0] % 6);
		data++;
		size--;
	}
	const char *body = (const char *)data;
	struct ts_lp_parser a, b;
	struct ts_lp_point pa, pb;
	struct ts_lp_mapper m;
	ts_lp_init(&a, body, size, prec, 1700000000123456789LL);
	ts_lp_init(&b, body, size, prec, 1700000000123456789LL);
	ts_lp_mapper_init(&m);
	for (int guard = 0; guard < 1000000; guard++) {
		int ra = ts_lp_next(&a, &pa);
		int rb = ts_lp_next(&b, &pb);
		fz_check(ra == rb);
		if (ra == 0)
			break;
		if (ra < 0) {
			fz_check(strcmp(a.err, b.err) == 0 && a.err_line == b.err_line);
			continue;
		}
		fz_check(ra == 1);
		check_point(&a, &pa);
		compare_points(&pa, &pb);
		check_key(&a, &pa);
		if (ts_lp_map(&m, &pa, "db", 2) == 0)
			check_mapping(&m, &pa);
	}
	ts_lp_mapper_fini(&m);
	ts_lp_fini(&a);
	ts_lp_fini(&b);
	return 0;
}
