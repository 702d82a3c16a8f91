/*
 * eval_label.c - label_replace() and label_join(), as Prometheus 2.42 computes them
 * (promql/functions.go).
 *
 * label_replace(v, dst, replacement, src, regex): the regex is anchored as "^(?:re)$"
 * and compiled once per call with PCRE2 (DOLLAR_ENDONLY, as RE2's $); when the value of
 * src matches, dst is set to the replacement expanded with Go's Regexp.Expand rules
 * ($1, ${1}, $name, ${name}, $$; a name or number that names no group expands to "").
 * label_join(v, dst, sep, src...): dst is set to the values of the src labels joined
 * with sep. Either way an empty result deletes dst, and the metric name is kept.
 * Label names are checked before the first step, with Prometheus' messages.
 *
 * Known deviation: the regex runs on PCRE2, not RE2, and syntax RE2 lacks is not
 * refused here (the parser refuses it in selectors only).
 */
#include <errno.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "query/eval_int.h"
#include "storage/mem.h"
#include "tsdb/labels.h"

struct qregex {
	pcre2_code *re;
	pcre2_match_data *md;
};

static const char *str_arg(const struct fcall *f, size_t i, size_t *len)
{
	const struct ts_ast *a = f->args[i];
	*len = a->string.len;
	return a->string.value;
}

/* ---- Go's template expansion ---- */

/* A string growing in the scratch arena; rc is sticky. */
struct xbuf {
	struct qctx *c;
	char *d;
	size_t n, cap;
	int rc;
};

static void xput(struct xbuf *b, const char *p, size_t len)
{
	if (b->rc)
		return;
	if (b->n + len > b->cap) {
		size_t cap = (b->n + len) * 2;
		char *d = ts__qa_alloc(&b->c->scratch, cap);
		if (!d) {
			b->rc = ts__q_nomem(b->c);
			return;
		}
		memcpy(d, b->d, b->n);
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->n, p, len);
	b->n += len;
}

static bool name_char(char ch)
{
	return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (unsigned char)ch >= 0x80;
}

/* Reads the reference after a '$' at tpl[*i] (Go's extract(): name or {name}).
 * Returns false when there is none, so the '$' is literal. Else moves *i past it and
 * sets *group to the group it names, or -1 for none. */
static bool template_ref(const struct qregex *rx, const char *tpl, size_t tlen, size_t *i,
			 long *group)
{
	size_t j = *i;
	bool brace = j < tlen && tpl[j] == '{';
	if (brace)
		j++;
	size_t ns = j;
	while (j < tlen && name_char(tpl[j]))
		j++;
	size_t nl = j - ns;
	if (nl == 0 || (brace && (j >= tlen || tpl[j] != '}')))
		return false;
	const char *name = tpl + ns;
	*i = brace ? j + 1 : j;
	long num = 0;
	for (size_t k = 0; k < nl; k++) {
		if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
			num = -1;
			break;
		}
		num = num * 10 + (name[k] - '0');
	}
	if (name[0] == '0' && nl > 1)
		num = -1;
	if (num < 0) {
		char nb[256];
		*group = -1;
		if (nl >= sizeof nb)
			return true;
		memcpy(nb, name, nl);
		nb[nl] = 0;
		int gn = pcre2_substring_number_from_name(rx->re, (PCRE2_SPTR)nb);
		if (gn > 0)
			*group = gn;
		return true;
	}
	*group = num;
	return true;
}

/* Go's Regexp.Expand of tpl with the groups of the last match of src, into the
 * scratch arena. */
static int expand(struct qctx *c, const struct qregex *rx, const char *tpl, size_t tlen,
		  const char *src, char **out, size_t *out_len)
{
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
	uint32_t n_groups = pcre2_get_ovector_count(rx->md);
	struct xbuf b = { .c = c, .cap = tlen + 64 };
	b.d = ts__qa_alloc(&c->scratch, b.cap);
	if (!b.d)
		return ts__q_nomem(c);
	size_t i = 0;
	while (i < tlen && b.rc == 0) {
		const char *dollar = memchr(tpl + i, '$', tlen - i);
		if (!dollar)
			break;
		size_t di = (size_t)(dollar - tpl);
		xput(&b, tpl + i, di - i);
		i = di + 1;
		if (i < tlen && tpl[i] == '$') {
			xput(&b, "$", 1);
			i++;
			continue;
		}
		long g = -1;
		if (!template_ref(rx, tpl, tlen, &i, &g)) {
			xput(&b, "$", 1);
			continue;
		}
		if (g >= 0 && (uint32_t)g < n_groups && ov[2 * g] != PCRE2_UNSET)
			xput(&b, src + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
	}
	if (i < tlen)
		xput(&b, tpl + i, tlen - i);
	*out = b.d;
	*out_len = b.n;
	return b.rc;
}

/* ---- the functions ---- */

int ts__q_step_label_replace(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			     struct qvector *out)
{
	struct qctx *c = ev->c;
	const struct qregex *rx = f->re;
	size_t dl, rl;
	const char *dst = str_arg(f, 1, &dl), *repl = str_arg(f, 2, &rl);
	const char *src = f->args[3]->string.value;
	for (size_t i = 0; i < vec->n; i++) {
		const struct qsample *s = &vec->s[i];
		uint32_t vl;
		const char *v = ts__ql_get(s->lab, s->n_lab, src, &vl);
		if (!v) {
			v = "";
			vl = 0;
		}
		int m = pcre2_match(rx->re, (PCRE2_SPTR)v, vl, 0, 0, rx->md, NULL);
		const struct ts_label *ol = s->lab;
		uint32_t on = s->n_lab;
		int rc;
		if (m >= 0) {
			char *res = NULL;
			size_t res_len = 0;
			if ((rc = expand(c, rx, repl, rl, v, &res, &res_len)) ||
			    (rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab)) ||
			    (rc = ts__qlb_set(c, &f->lb, dst, dl, res, res_len)) ||
			    (rc = ts__qlb_finish(c, &f->lb, &ol, &on)))
				return rc;
		} else if (m != PCRE2_ERROR_NOMATCH) {
			return TS__Q_EXEC(
				c, "label_replace(): regular expression match failed (%d)", m);
		}
		if ((rc = ts__qv_push(c, out, ol, on, ts, s->v)))
			return rc;
	}
	return 0;
}

/* The values of label_join()'s source labels of s joined with sep, in scratch. */
static int joined(struct qctx *c, const struct fcall *f, const struct qsample *s, const char *sep,
		  size_t sl, char **out, size_t *out_len)
{
	size_t total = 0;
	*out = NULL;
	*out_len = 0;
	for (size_t a = 3; a < f->n_args; a++) {
		uint32_t vl;
		ts__ql_get(s->lab, s->n_lab, f->args[a]->string.value, &vl);
		total += vl + sl;
	}
	char *buf = ts__qa_alloc(&c->scratch, total + 1);
	if (!buf)
		return ts__q_nomem(c);
	size_t n = 0;
	for (size_t a = 3; a < f->n_args; a++) {
		uint32_t vl;
		const char *v = ts__ql_get(s->lab, s->n_lab, f->args[a]->string.value, &vl);
		if (a > 3) {
			memcpy(buf + n, sep, sl);
			n += sl;
		}
		if (v) {
			memcpy(buf + n, v, vl);
			n += vl;
		}
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int ts__q_step_label_join(struct qev *ev, struct fcall *f, struct qvector *vec, int64_t ts,
			  struct qvector *out)
{
	struct qctx *c = ev->c;
	size_t dl, sl;
	const char *dst = str_arg(f, 1, &dl), *sep = str_arg(f, 2, &sl);
	for (size_t i = 0; i < vec->n; i++) {
		const struct qsample *s = &vec->s[i];
		const struct ts_label *ol;
		uint32_t on;
		char *buf;
		size_t n;
		int rc;
		if ((rc = joined(c, f, s, sep, sl, &buf, &n)) ||
		    (rc = ts__qlb_reset(c, &f->lb, s->lab, s->n_lab)) ||
		    (rc = ts__qlb_set(c, &f->lb, dst, dl, buf, n)) ||
		    (rc = ts__qlb_finish(c, &f->lb, &ol, &on)) ||
		    (rc = ts__qv_push(c, out, ol, on, ts, s->v)))
			return rc;
	}
	return 0;
}

/* ---- setup ---- */

static int check_join_names(struct qctx *c, const struct fcall *f)
{
	for (size_t a = 3; a < f->n_args; a++) {
		const struct ts_ast *s = f->args[a];
		if (!ts_labels_name_valid(s->string.value, s->string.len))
			return TS__Q_EXEC(c, "invalid source label name in label_join(): %s",
					  s->string.value);
	}
	if (!ts_labels_name_valid(f->args[1]->string.value, f->args[1]->string.len))
		return TS__Q_EXEC(c, "invalid destination label name in label_join(): %s",
				  f->args[1]->string.value);
	return 0;
}

/* Compiles label_replace()'s regex anchored as Prometheus does: "^(?:re)$". */
static int compile_regex(struct qctx *c, struct fcall *f)
{
	size_t rl;
	const char *re = str_arg(f, 4, &rl);
	struct qregex *rx = ts_calloc(1, sizeof *rx);
	if (!rx)
		return ts__q_nomem(c);
	f->re = rx;
	char *pat = ts_malloc(rl + 16);
	if (!pat)
		return ts__q_nomem(c);
	memcpy(pat, "^(?:", 4);
	memcpy(pat + 4, re, rl);
	memcpy(pat + 4 + rl, ")$", 2);
	int err;
	PCRE2_SIZE eo;
	rx->re = pcre2_compile((PCRE2_SPTR)pat, rl + 6, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &err, &eo,
			       NULL);
	ts_free(pat);
	if (!rx->re)
		return TS__Q_EXEC(c, "invalid regular expression in label_replace(): %s", re);
	rx->md = pcre2_match_data_create_from_pattern(rx->re, NULL);
	if (!rx->md)
		return ts__q_nomem(c);
	return 0;
}

int ts__q_label_fn_setup(struct qev *ev, struct fcall *f)
{
	struct qctx *c = ev->c;
	if (f->id == TS_FN_LABEL_JOIN)
		return check_join_names(c, f);
	int rc = compile_regex(c, f);
	if (rc)
		return rc;
	if (!ts_labels_name_valid(f->args[1]->string.value, f->args[1]->string.len))
		return TS__Q_EXEC(c, "invalid destination label name in label_replace(): %s",
				  f->args[1]->string.value);
	return 0;
}

void ts__q_label_fn_fini(struct fcall *f)
{
	struct qregex *rx = f->re;
	if (!rx)
		return;
	if (rx->md)
		pcre2_match_data_free(rx->md);
	if (rx->re)
		pcre2_code_free(rx->re);
	ts_free(rx);
	f->re = NULL;
}
