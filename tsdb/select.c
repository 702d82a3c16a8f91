/*
 * select.c - selecting series by label matchers and iterating their samples.
 *
 * Matchers: a missing label matches as "" (Prometheus). So for each matcher we ask
 * whether it matches "": if not, the series it selects are the union of the postings of
 * the values it matches; if it does, they are all series minus the union of the
 * postings of the values it does not match. The result is the intersection of the
 * former minus the union of the latter's excluded sets. Series created since the last
 * flush are not in the postings yet; they are matched directly on their labels.
 *
 * Snapshot order (see db_int.h): the unindexed list and the in-memory chunks are copied
 * before the LMDB snapshots they could move into are opened, so nothing is missed;
 * something seen twice is merged by timestamp (iterator) or by identical bytes (chunks).
 *
 * Deleted samples (tombstone.c): a set holds the tombstones of its time of selection;
 * gathering a series' sources decodes every source a tombstone of the series intersects
 * and replaces it by the samples left (arrays, or XOR chunks for a chunk iterator), so
 * sample iterators, chunk iterators and ts_series_set_has_data never see them, whatever
 * the source (head, memory, hot chunk, cold block) and whoever reads (every endpoint
 * reads through here).
 *
 * Iteration merges a series' chunk sources (partitions, pending chunks, the open head,
 * the out-of-order buffer) in time order. Sources are sorted by min_t and activated
 * lazily, so the common case (no overlap) runs one XOR decoder at a time.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/chunk.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/db_int.h"
#include "tsdb/downsample.h"
#include "tsdb/relit.h"

/*
 * Regex matching. Prometheus uses RE2, which answers every input in linear time; PCRE2
 * backtracks. So a match runs JIT-compiled with a bounded JIT stack and match limit, and
 * when a limit is hit (a long value, a pattern with nested repeats) the same pattern is
 * run again by PCRE2's DFA matcher, which does not backtrack: it tracks every live
 * alternative at once, as RE2 does, and only needs workspace proportional to the
 * pattern. The answer is therefore never "no match" because an engine gave up; if even
 * the DFA runs out of its bounded workspace the selection fails with TS_ELIMIT and says
 * which regex, rather than answering wrongly. Patterns are checked at parse time for
 * syntax RE2 lacks (back-references and the like), which the DFA would refuse too.
 */
#define RE_JIT_STACK_MAX (1u << 20) /* bytes */
#define RE_MATCH_LIMIT 100000u	    /* backtracking steps before the DFA takes over */
#define RE_DFA_WS_MIN 1024u	    /* ints of DFA workspace, doubled on demand */
#define RE_DFA_WS_MAX (1u << 22)

/* The selection's deadline and cancel flag, checked by cm_match() every 64 matches: the
 * cost of a selection is in matching values (postings values, then real labels). */
struct budget {
	const struct ts_select_opts *o; /* NULL: none */
	unsigned tick;
};

static int budget_spent(struct budget *b)
{
	if (!b->o || (++b->tick & 63) != 0)
		return 0;
	if (b->o->canceled && *b->o->canceled)
		return -ECANCELED;
	if (b->o->deadline_ns) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec > b->o->deadline_ns)
			return -ETIMEDOUT;
	}
	return 0;
}

/* ---- compiled patterns, shared ----
 *
 * A dashboard sends the same selectors again and again, and compiling a pattern with
 * its JIT code was a tenth of a selective query's time (pcre2_compile, pcre2_jit_compile
 * and a JIT stack per matcher). Compiled patterns are kept in a small table, least
 * recently used first out; PCRE2 allows one compiled pattern to be matched by many
 * threads at once (match data, contexts and JIT stacks stay per matcher). An entry in
 * use is freed by its last user once evicted. */
#define RE_CACHE_N 64

struct re_ent {
	char *pat;
	size_t len;
	pcre2_code *re;
	int jit;       /* JIT code was compiled */
	unsigned refs; /* matchers using it, plus one while in the table (re_mu) */
	uint64_t used; /* re_mu */
};

static pthread_mutex_t re_mu = PTHREAD_MUTEX_INITIALIZER;
static struct re_ent *re_tab[RE_CACHE_N]; /* re_mu */
static uint64_t re_clock;		  /* re_mu */

static void re_ent_free(struct re_ent *e)
{
	pcre2_code_free(e->re);
	ts_free(e->pat);
	ts_free(e);
}

/* Drops a reference taken by re_get. Accepts NULL. */
static void re_put(struct re_ent *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&re_mu);
	int last = --e->refs == 0;
	pthread_mutex_unlock(&re_mu);
	if (last)
		re_ent_free(e);
}

/* The compiled pattern pat[0..len), from the table or compiled now (and then kept).
 * 0 with *out referenced, TS_EINVALID (message in msg), -ENOMEM. */
static int re_get(const char *pat, size_t len, struct re_ent **out, char *msg, size_t msg_len)
{
	pthread_mutex_lock(&re_mu);
	for (size_t i = 0; i < RE_CACHE_N; i++) {
		struct re_ent *e = re_tab[i];
		if (e && e->len == len && memcmp(e->pat, pat, len) == 0) {
			e->refs++;
			e->used = ++re_clock;
			pthread_mutex_unlock(&re_mu);
			*out = e;
			return 0;
		}
	}
	pthread_mutex_unlock(&re_mu);
	int err;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len,
				       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &err, &off,
				       NULL);
	if (!re) {
		if (msg && msg_len) {
			char e[128];
			pcre2_get_error_message(err, (PCRE2_UCHAR *)e, sizeof e);
			snprintf(msg, msg_len,
				 "invalid regular expression \"%.*s\": %s at offset %zu", (int)len,
				 pat, e, (size_t)off);
		}
		return TS_EINVALID;
	}
	struct re_ent *n = ts_calloc(1, sizeof *n);
	char *p = ts_malloc(len + 1);
	if (!n || !p) {
		pcre2_code_free(re);
		ts_free(n);
		ts_free(p);
		return -ENOMEM;
	}
	memcpy(p, pat, len);
	p[len] = '\0';
	n->pat = p;
	n->len = len;
	n->re = re;
	/* JIT is a speed-up only: without it the interpreter and the DFA give the same
	 * answers. */
	n->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
	n->refs = 2; /* the table's and the caller's */
	struct re_ent *gone = NULL;
	pthread_mutex_lock(&re_mu);
	n->used = ++re_clock;
	size_t slot = 0;
	for (size_t i = 0; i < RE_CACHE_N; i++) {
		if (!re_tab[i]) {
			slot = i;
			break;
		}
		if (re_tab[i]->used < re_tab[slot]->used)
			slot = i;
	}
	if (re_tab[slot] && --re_tab[slot]->refs == 0)
		gone = re_tab[slot];
	re_tab[slot] = n;
	pthread_mutex_unlock(&re_mu);
	if (gone)
		re_ent_free(gone);
	*out = n;
	return 0;
}

struct cmatcher {
	struct budget *bud;
	enum ts_match_type type;
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	pcre2_code *re;	    /* borrowed from ent */
	struct re_ent *ent; /* the shared compiled pattern (re_get) */
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack; /* NULL when JIT is unavailable */
	int *dfa_ws;		    /* DFA workspace, grown on demand */
	size_t dfa_ws_n;
	size_t failed_len; /* length of the value a match failed on (for the message) */
	int matches_empty;
};

/* The DFA fallback: 1 match, 0 no match, TS_ELIMIT, -ENOMEM. */
static int re_match_dfa(struct cmatcher *m, const char *v, size_t len)
{
	for (;;) {
		if (!m->dfa_ws) {
			m->dfa_ws_n = RE_DFA_WS_MIN;
			m->dfa_ws = ts_malloc(m->dfa_ws_n * sizeof *m->dfa_ws);
			if (!m->dfa_ws)
				return -ENOMEM;
		}
		int rc = pcre2_dfa_match(m->re, (PCRE2_SPTR)v, len, 0, 0, m->md, m->mctx, m->dfa_ws,
					 m->dfa_ws_n);
		/* 0: matched, more alternatives than the match data holds. */
		if (rc >= 0)
			return 1;
		if (rc == PCRE2_ERROR_NOMATCH)
			return 0;
		if (rc != PCRE2_ERROR_DFA_WSSIZE || m->dfa_ws_n >= RE_DFA_WS_MAX)
			break;
		ts_free(m->dfa_ws);
		m->dfa_ws = NULL;
		m->dfa_ws_n *= 2;
		m->dfa_ws = ts_malloc(m->dfa_ws_n * sizeof *m->dfa_ws);
		if (!m->dfa_ws)
			return -ENOMEM;
	}
	m->failed_len = len;
	return TS_ELIMIT;
}

/* 1 when m matches v, 0 when not, or TS_ELIMIT / -ENOMEM (never a silent miss), or
 * -ETIMEDOUT / -ECANCELED when the selection's budget is spent. */
static int cm_match(struct cmatcher *m, const char *v, size_t len)
{
	int eq = budget_spent(m->bud);
	if (eq)
		return eq;
	switch (m->type) {
	case TS_MATCH_EQ:
	case TS_MATCH_NEQ:
		eq = len == m->value_len && memcmp(v, m->value, len) == 0;
		return m->type == TS_MATCH_EQ ? eq : !eq;
	default:
		eq = pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, 0, m->md, m->mctx);
		if (eq == PCRE2_ERROR_JIT_STACKLIMIT && !m->jit_stack && m->ent->jit) {
			/* JIT ran on its default 32 KiB stack; give it a larger one now
			 * (made on demand: creating one per matcher cost as much as the
			 * whole look-up of a selective query). */
			m->jit_stack = pcre2_jit_stack_create(32 * 1024, RE_JIT_STACK_MAX, NULL);
			if (m->jit_stack) {
				pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
				eq = pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, 0, m->md, m->mctx);
			}
		}
		if (eq >= 0)
			eq = 1;
		else if (eq == PCRE2_ERROR_NOMATCH)
			eq = 0;
		else if ((eq = re_match_dfa(m, v, len)) < 0)
			return eq;
		return m->type == TS_MATCH_RE ? eq : !eq;
	}
}

static void cm_free(struct cmatcher *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		pcre2_match_data_free(m[i].md);
		pcre2_match_context_free(m[i].mctx);
		pcre2_jit_stack_free(m[i].jit_stack);
		re_put(m[i].ent);
		ts_free(m[i].dfa_ws);
	}
	ts_free(m);
}

/* Readies one regex matcher. 0, TS_EINVALID (message in msg), -ENOMEM. */
static int cm_compile_re(struct cmatcher *m, char *msg, size_t msg_len)
{
	int rc = re_get(m->value, m->value_len, &m->ent, msg, msg_len);
	if (rc)
		return rc;
	m->re = m->ent->re;
	m->md = pcre2_match_data_create_from_pattern(m->re, NULL);
	m->mctx = pcre2_match_context_create(NULL);
	if (!m->md || !m->mctx)
		return -ENOMEM;
	pcre2_set_match_limit(m->mctx, RE_MATCH_LIMIT);
	return 0;
}

static int cm_compile(const struct ts_matcher *in, size_t n, struct budget *bud,
		      struct cmatcher **out, char *msg, size_t msg_len)
{
	struct cmatcher *m = ts_calloc(n ? n : 1, sizeof *m);
	if (!m)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		m[i].bud = bud;
		m[i].type = in[i].type;
		m[i].name = in[i].name;
		m[i].name_len = strlen(in[i].name);
		m[i].value = in[i].value;
		m[i].value_len = strlen(in[i].value);
		if (m[i].type == TS_MATCH_RE || m[i].type == TS_MATCH_NRE)
			rc = cm_compile_re(&m[i], msg, msg_len);
		else if (m[i].type != TS_MATCH_EQ && m[i].type != TS_MATCH_NEQ)
			rc = TS_EINVALID;
		if (rc == 0) {
			rc = cm_match(&m[i], "", 0);
			m[i].matches_empty = rc == 1;
			rc = rc < 0 ? rc : 0;
		}
	}
	if (rc) {
		cm_free(m, n);
		return rc;
	}
	*out = m;
	return 0;
}

/* The message of a TS_ELIMIT from matching. */
static void cm_limit_msg(const struct cmatcher *m, size_t n, char *msg, size_t msg_len)
{
	for (size_t i = 0; msg && msg_len && i < n; i++)
		if (m[i].failed_len) {
			snprintf(msg, msg_len,
				 "regular expression \"%s\" on label %s exceeded its matching "
				 "limits on a value of %zu bytes",
				 m[i].value, m[i].name, m[i].failed_len);
			return;
		}
}

/* Sorted u64 sets. */
struct ids {
	uint64_t *v;
	size_t n, cap;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Merges the sorted runs a[b[0]..b[1]), a[b[1]..b[2]), ... (nb runs) pairwise until one
 * is left; tmp has room for the n values. */
static void merge_runs(uint64_t *a, uint64_t *tmp, size_t *b, size_t nb)
{
	while (nb > 1) {
		size_t w = 0;
		for (size_t r = 0; r < nb; r += 2) {
			if (r + 1 == nb) {
				b[w++] = b[r];
				break;
			}
			size_t i = b[r], mid = b[r + 1], j = mid, hi = b[r + 2], k = i;
			while (i < mid && j < hi)
				tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
			while (i < mid)
				tmp[k++] = a[i++];
			while (j < hi)
				tmp[k++] = a[j++];
			memcpy(a + b[r], tmp + b[r], (hi - b[r]) * sizeof *a);
			b[w++] = b[r];
		}
		b[w] = b[nb];
		nb = w;
	}
}

#define IDS_MAX_RUNS 64

static void ids_sort_unique(struct ids *s)
{
	if (s->n < 2)
		return;
	/* Postings lists arrive one after another, each sorted (a regex matching a few
	 * values, an equality's single list): a few sorted runs are merged, in
	 * n log(runs); one run needs nothing; many fall back to a sort. */
	size_t b[IDS_MAX_RUNS + 1], nb = 0;
	b[nb++] = 0;
	for (size_t i = 1; i < s->n && nb <= IDS_MAX_RUNS; i++)
		if (s->v[i - 1] > s->v[i])
			b[nb++] = i;
	uint64_t *tmp = NULL;
	if (nb > IDS_MAX_RUNS || (nb > 1 && !(tmp = ts_malloc(s->n * sizeof *tmp)))) {
		qsort(s->v, s->n, sizeof *s->v, u64_cmp);
	} else if (nb > 1) {
		b[nb] = s->n;
		merge_runs(s->v, tmp, b, nb);
	}
	ts_free(tmp);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] != s->v[k - 1])
			s->v[k++] = s->v[i];
	s->n = k;
}

static void ids_intersect(struct ids *a, const struct ids *b)
{
	size_t i = 0, j = 0, k = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j])
			i++;
		else if (a->v[i] > b->v[j])
			j++;
		else {
			a->v[k++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = k;
}

static void ids_subtract(struct ids *a, const struct ids *b)
{
	size_t i = 0, j = 0, k = 0;
	while (i < a->n) {
		while (j < b->n && b->v[j] < a->v[i])
			j++;
		if (j < b->n && b->v[j] == a->v[i]) {
			i++;
			continue;
		}
		a->v[k++] = a->v[i++];
	}
	a->n = k;
}

/* Collects into out the postings of name's values v for which want == cm_match(v).
 * A posting key holds at most TS_FORMAT_POSTING_VALUE_MAX bytes of the value, so a key
 * that long stands for every value sharing that prefix: what it matches is unknown. It
 * is collected when selecting (want == 1: a superset) and left out when excluding
 * (want == 0: never subtract a series that may match), and *uncertain is set so the
 * caller re-checks the real labels of every candidate. */
/* The literal prefix every value a regex matches starts with (Prometheus' regexes are
 * anchored): the leading run of plain characters, less its last one when a quantifier
 * follows it. 0 when there is none to rely on: an alternation anywhere, an escape or a
 * group first. Only bounds a scan; every value is still matched. */
static size_t regex_prefix(const char *re, size_t n)
{
	if (memchr(re, '|', n))
		return 0;
	size_t i = 0;
	while (i < n && !strchr("\\.^$?*+()[]{}", re[i]))
		i++;
	if (i < n && strchr("?*{+", re[i]) && i > 0)
		i--; /* the last character is quantified */
	return i;
}

/* A regex that is an alternation of literals ("a|b", "host_(1|2|3)"): the postings of
 * each value, looked up as equalities, instead of a scan over the label's values.
 * Returns 0 when done, 1 when the regex is not such a set (or a value is too long for
 * a posting key to hold whole), or an error. Each value is matched by the regex too,
 * which guards against selecting too much; that nothing is missed rests on relit.c
 * reading the regex exactly (tests/unit/test_relit.c checks it against PCRE2). */
#define SET_MAX_VALUES 256
static int collect_set(struct ts_db *db, struct ts_rtxn *r, struct cmatcher *m, struct ids *out)
{
	struct ts__relit set = { 0 };
	int rc = ts__relit_expand(m->value, m->value_len, SET_MAX_VALUES,
				  TS_FORMAT_POSTING_VALUE_MAX - 1, &set);
	if (rc <= 0)
		return rc < 0 ? rc : 1;
	rc = 0;
	for (size_t i = 0; i < set.n && rc == 0; i++) {
		int ok = cm_match(m, set.v[i], set.len[i]);
		rc = ok < 0 ? ok : ok == 0;
	}
	size_t n0 = out->n;
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
	for (size_t i = 0; i < set.n && rc == 0; i++) {
		size_t kl = ts_format_posting_key(key, m->name, m->name_len, set.v[i], set.len[i]);
		rc = ts_env_get_u64s(r, db->t_postings, key, kl, &out->v, &out->n, &out->cap);
	}
	if (rc == 1)
		out->n = n0;
	ts__relit_free(&set);
	return rc;
}

static int collect(struct ts_db *db, struct ts_rtxn *r, struct cmatcher *m, int want,
		   struct ids *out, int *uncertain)
{
	uint8_t key[TS_FORMAT_POSTING_KEY_MAX];
	if (m->type == TS_MATCH_EQ && want) {
		size_t kl = ts_format_posting_key(key, m->name, m->name_len, m->value,
						  m->value_len);
		if (m->value_len >= TS_FORMAT_POSTING_VALUE_MAX)
			*uncertain = 1;
		return ts_env_get_u64s(r, db->t_postings, key, kl, &out->v, &out->n, &out->cap);
	}
	if (m->type == TS_MATCH_RE && want) {
		int rc = collect_set(db, r, m, out);
		if (rc <= 0)
			return rc;
	}
	struct ts_cursor *c;
	int rc = ts_cursor_open(r, db->t_postings, &c);
	if (rc)
		return rc;
	size_t pl = m->name_len + 1;
	memcpy(key, m->name, m->name_len);
	key[m->name_len] = 0;
	/* A regex selecting values: only those with its literal prefix can match, and they
	 * sit together in key order (e.g. instance=~"host-000.*" reads host-000*, not every
	 * instance). */
	size_t fix = 0;
	if (m->type == TS_MATCH_RE && want) {
		fix = regex_prefix(m->value, m->value_len);
		/* Keys hold at most TS_FORMAT_POSTING_VALUE_MAX bytes of a value (longer ones
		 * are cut): a longer prefix would pass over them. */
		if (fix >= TS_FORMAT_POSTING_VALUE_MAX)
			fix = TS_FORMAT_POSTING_VALUE_MAX - 1;
		if (pl + fix > sizeof key)
			fix = 0;
		memcpy(key + pl, m->value, fix);
	}
	for (rc = ts_cursor_seek(c, key, pl + fix); rc == 0;) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = ts_cursor_get(c, &k, &kl, &v, &vl)))
			break;
		if (kl < pl + fix || memcmp(k, key, pl + fix) != 0)
			break;
		const char *val = (const char *)k + pl;
		size_t val_len = kl - pl;
		int take;
		if (val_len >= TS_FORMAT_POSTING_VALUE_MAX) {
			*uncertain = 1;
			take = want;
		} else if ((take = cm_match(m, val, val_len)) < 0) {
			rc = take;
			break;
		} else {
			take = take == want;
		}
		if (take) {
			rc = ts_env_get_u64s(r, db->t_postings, k, kl, &out->v, &out->n, &out->cap);
			if (rc)
				break;
		}
		/* Skip the remaining duplicates of this key: seek just past it. */
		uint8_t nk[TS_FORMAT_POSTING_KEY_MAX + 1];
		memcpy(nk, k, kl);
		nk[kl] = 0;
		rc = ts_cursor_seek(c, nk, kl + 1);
	}
	ts_cursor_close(c);
	return rc == TS_ENOTFOUND ? 0 : rc;
}

/* Matches a series' real labels: 1 all matchers match, 0 not, TS_ELIMIT (regex limits),
 * -ENOMEM, TS_ECORRUPT. A label the series lacks (or a name longer than any label can
 * be) has the value "". Reads only s->packed, which is immutable: no lock needed. */
int ts_matcher_match(const struct ts_matcher *m, const char *v, size_t len, char *msg,
		     size_t msg_len)
{
	struct budget bud = { 0 };
	struct cmatcher *c;
	int rc = cm_compile(m, 1, &bud, &c, msg, msg_len);
	if (rc)
		return rc;
	rc = cm_match(c, v, len);
	if (rc == TS_ELIMIT)
		cm_limit_msg(c, 1, msg, msg_len);
	cm_free(c, 1);
	return rc;
}

static int series_matches(const struct ts_series *s, struct cmatcher *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = "";
		uint32_t vl = 0;
		char name[TS_FORMAT_LABEL_NAME_MAX + 1];
		if (m[i].name_len <= TS_FORMAT_LABEL_NAME_MAX) {
			memcpy(name, m[i].name, m[i].name_len);
			name[m[i].name_len] = 0;
			int rc = ts_labels_get(s->packed, s->packed_len, name, &v, &vl);
			if (rc < 0)
				return rc;
		}
		int rc = cm_match(&m[i], v, vl);
		if (rc != 1)
			return rc;
	}
	return 1;
}

/* ---- series sets ---- */

/* A source of one series' samples: an XOR chunk (data, len), or decoded cold samples
 * (t, v: n of each, t ascending). */
struct src {
	int64_t min_t, max_t;
	const uint8_t *data;
	size_t len;
	uint32_t n;
	const int64_t *t;
	const uint64_t *v;
};

struct set_series {
	struct ts_series *s;
	uint32_t lab_off, n_labels;
	size_t mem_off, n_mem; /* into set->mem */
};

struct part_snap {
	int64_t start, end;
	struct ts_partition *part; /* a reference: retention cannot close it under us */
	unsigned table, cold;
	struct ts_rtxn *r;
	struct ts__gen *gens; /* the cold generations of this snapshot (owned) */
	size_t n_gens;
	uint8_t tier_res; /* TS_FORMAT_TIER_RES_* a downsampled read uses here; 0: raw */
};

struct ts_series_set {
	struct ts_db *db;
	int64_t mint, maxt;
	struct set_series *ser;
	size_t n;
	struct ts_label *labels;
	size_t n_labels;
	struct src *mem; /* in-memory chunk copies; data offsets into arena until fixed up */
	size_t n_mem, cap_mem;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	struct part_snap *parts;
	size_t n_parts;
	struct ts__tombs *tombs; /* a reference; NULL: nothing deleted */
	int64_t max_res_ms;	 /* ts_select_opts.max_resolution_ms */
	enum ts_aggr aggr;
	int any_tier; /* some partition has tier_res set */
	/* Query-time deduplication (ts_select_opts.dedup_labels): the public index i is
	 * group i, series ser[grp[i].first .. + grp[i].n); NULL: no grouping. */
	struct grp {
		size_t first;
		uint32_t n;
	} * grp;
	size_t n_grp;
	int dedup_counter;
	/* ts_series_set_share: taken around the uses of the parts' read transactions when
	 * several threads make iterators; lk.lock NULL: one thread. */
	struct ts__txn_lock lk;
};

void ts_series_set_share(struct ts_series_set *set, void (*lock)(void *arg),
			 void (*unlock)(void *arg), void *arg)
{
	set->lk = (struct ts__txn_lock){ lock, lock ? unlock : NULL, lock ? arg : NULL };
}

static int arena_add(struct ts_series_set *set, const void *p, size_t len, size_t *off)
{
	if (ts_grow((void **)&set->arena, &set->arena_cap, set->arena_len + len, 1))
		return -ENOMEM;
	memcpy(set->arena + set->arena_len, p, len);
	*off = set->arena_len;
	set->arena_len += len;
	return 0;
}

static int mem_add(struct ts_series_set *set, const uint8_t *data, size_t len, int64_t min_t,
		   int64_t max_t, uint32_t n)
{
	if (max_t < set->mint || min_t > set->maxt)
		return 0;
	if (ts_grow((void **)&set->mem, &set->cap_mem, set->n_mem + 1, sizeof *set->mem))
		return -ENOMEM;
	size_t off;
	int rc = arena_add(set, data, len, &off);
	if (rc)
		return rc;
	/* data holds an arena offset until every copy is made (the arena may move). */
	set->mem[set->n_mem++] = (struct src){ min_t, max_t, (const uint8_t *)(uintptr_t)off,
					       len,   n,     NULL,
					       NULL };
	return 0;
}

/* Copies series' in-memory chunks (db->mu held). */
static int copy_mem(struct ts_series_set *set, struct set_series *ss)
{
	struct ts_series *s = ss->s;
	ss->mem_off = set->n_mem;
	int rc = 0;
	for (struct ts_chunk_mem *c = s->pending; c && rc == 0; c = c->next_series)
		rc = mem_add(set, c->data, c->len, c->min_t, c->max_t, c->n_samples);
	if (rc == 0 && s->enc.n)
		rc = mem_add(set, s->enc.buf, ts_xor_enc_bytes(&s->enc), s->head_min_t, s->enc.t,
			     s->enc.n);
	if (rc == 0 && s->ooo && s->ooo->n) {
		struct ts_xor_enc e;
		ts_xor_enc_init(&e);
		for (uint32_t i = 0; i < s->ooo->n && rc == 0; i++)
			rc = ts_xor_append(&e, s->ooo->s[i].t, s->ooo->s[i].v);
		if (rc == 0)
			rc = mem_add(set, e.buf, ts_xor_enc_bytes(&e), s->ooo->s[0].t,
				     s->ooo->s[s->ooo->n - 1].t, e.n);
		ts_xor_enc_fini(&e);
	}
	ss->n_mem = set->n_mem - ss->mem_off;
	return rc;
}

static int ser_cmp(const void *a, const void *b, void *arg)
{
	const struct ts_series_set *set = arg;
	const struct set_series *x = a, *y = b;
	return ts_labels_cmp(set->labels + x->lab_off, x->n_labels, set->labels + y->lab_off,
			     y->n_labels);
}

void ts_series_set_free(struct ts_series_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n_parts; i++) {
		if (set->parts[i].r) {
			ts_env_read_end(set->parts[i].r);
			ts__part_unpin(set->db, set->parts[i].part);
		}
		ts_free(set->parts[i].gens);
		ts__part_unref(set->db, set->parts[i].part);
	}
	ts_free(set->parts);
	ts__tombs_put(set->tombs);
	ts_free(set->ser);
	ts_free(set->grp);
	ts_free(set->labels);
	ts_free(set->mem);
	ts_free(set->arena);
	ts_free(set);
}

/* 1. Series the postings do not know yet (copied before the index snapshot). */
/* Up to this many unindexed series are checked one by one whatever the matchers: a
 * look-up in their postings would not be cheaper. A variable so that tests can make
 * every selection use the postings. */
size_t ts__unindexed_scan_max = 4096;

/* Values of a regex matcher that is an alternation of literals, at most this many, are
 * looked up in the unindexed series' postings one by one. */
#define UNIDX_SET_MAX 64

/* The series listed under value v[i] of name, for every i (distinct values: a series
 * has one value a name, so no series twice); SIZE_MAX when one list is saturated. With
 * out NULL only counts (db->mu held). */
static size_t upost_set(struct ts_db *db, const struct cmatcher *m, const struct ts__relit *set,
			struct ts_series **out)
{
	size_t n = 0;
	for (size_t i = 0; i < set->n; i++) {
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = set->len[j] == set->len[i] &&
			      !memcmp(set->v[j], set->v[i], set->len[i]);
		if (dup)
			continue;
		if (out) {
			n += ts__upost_get(db, m->name, m->name_len, set->v[i], set->len[i],
					   out + n);
			continue;
		}
		size_t c = ts__upost_count(db, m->name, m->name_len, set->v[i], set->len[i]);
		if (c == SIZE_MAX)
			return SIZE_MAX;
		n += c;
	}
	return n;
}

static void sets_free(struct ts__relit *sets, size_t n)
{
	for (size_t i = 0; sets && i < n; i++)
		ts__relit_free(&sets[i]);
	ts_free(sets);
}

/* The unindexed series a selection has to check: those listed under its most selective
 * equality matcher, or under the values of a regex that is a set of literals
 * ("host_(1|2|3)"; upost.c), or all of them when there is neither, the list is short,
 * or the listing was given up. add_unindexed checks every matcher on their labels. */
static int copy_unindexed(struct ts_db *db, const struct cmatcher *m, size_t n_matchers,
			  struct ts_series ***out, size_t *n)
{
	struct ts_series **unidx = NULL;
	*n = 0;
	/* Regex sets are read before taking the lock (they allocate), and only when the
	 * unindexed series are many enough to be looked up in their postings at all. */
	pthread_mutex_lock(&db->mu);
	int listed = !db->up_broken && db->n_unindexed > ts__unindexed_scan_max;
	pthread_mutex_unlock(&db->mu);
	struct ts__relit *sets = NULL;
	for (size_t i = 0; listed && i < n_matchers; i++) {
		if (m[i].type != TS_MATCH_RE || m[i].matches_empty)
			continue;
		if (!sets && !(sets = ts_calloc(n_matchers, sizeof *sets)))
			return -ENOMEM;
		int rc = ts__relit_expand(m[i].value, m[i].value_len, UNIDX_SET_MAX, SIZE_MAX,
					  &sets[i]);
		if (rc < 0) {
			sets_free(sets, n_matchers);
			return rc;
		}
	}
	pthread_mutex_lock(&db->mu);
	size_t best = SIZE_MAX, want = db->n_unindexed;
	if (!db->up_broken && db->n_unindexed > ts__unindexed_scan_max)
		for (size_t i = 0; i < n_matchers; i++) {
			size_t c = SIZE_MAX;
			if (m[i].type == TS_MATCH_EQ && m[i].value_len)
				c = ts__upost_count(db, m[i].name, m[i].name_len, m[i].value,
						    m[i].value_len);
			else if (sets && sets[i].n)
				c = upost_set(db, &m[i], &sets[i], NULL);
			if (c < want) {
				want = c;
				best = i;
			}
		}
	if (want) {
		unidx = ts_malloc(want * sizeof *unidx);
		if (unidx && best != SIZE_MAX && m[best].type == TS_MATCH_EQ)
			*n = ts__upost_get(db, m[best].name, m[best].name_len, m[best].value,
					   m[best].value_len, unidx);
		else if (unidx && best != SIZE_MAX)
			*n = upost_set(db, &m[best], &sets[best], unidx);
		else if (unidx) {
			*n = want;
			memcpy(unidx, db->unindexed, want * sizeof *unidx);
		}
	}
	pthread_mutex_unlock(&db->mu);
	sets_free(sets, n_matchers);
	*out = unidx;
	return want && !unidx ? -ENOMEM : 0;
}

/* Id sets of one selection: the result and two scratch sets. */
struct idsets {
	struct ids res, tmp, excl;
};

/* Candidates few enough that checking the remaining matchers on their labels costs
 * less than reading those matchers' postings. */
#define FEW_CANDIDATES 256

/* Which pass of match_postings reads matcher m: 0 an equality on a label, 1 an equality
 * on the metric name, 2 the rest. */
static int matcher_pass(const struct cmatcher *m)
{
	if (m->type != TS_MATCH_EQ)
		return 2;
	return m->name_len == 8 && memcmp(m->name, "__name__", 8) == 0;
}

/* 2. Postings: the intersection of what the matchers that reject "" select, minus what
 * the others exclude. *uncertain is set when a cut key was involved. */
static int match_postings(struct ts_db *db, struct cmatcher *m, size_t n_matchers, struct idsets *x,
			  int *uncertain)
{
	struct ts_rtxn *r;
	int rc = ts_env_read_begin(db->index, &r);
	if (rc)
		return rc;
	int have_pos = 0;
	/* Equality matchers first (one postings list each, usually the most selective), a
	 * metric name's last among them (it tends to have the most series: a dashboard's
	 * metric{instance="x"} must not decode a million-entry list to find one); once the
	 * candidates are few, the remaining matchers are checked on the candidates' own
	 * labels instead of reading their postings: *uncertain makes the caller check every
	 * matcher there. */
	for (int pass = 0; pass < 3 && !(have_pos && x->res.n == 0); pass++)
		for (size_t i = 0; i < n_matchers; i++) {
			if (m[i].matches_empty || matcher_pass(&m[i]) != pass)
				continue;
			if (have_pos && pass > 0 && x->res.n <= FEW_CANDIDATES) {
				*uncertain = 1;
				continue;
			}
			x->tmp.n = 0;
			rc = collect(db, r, &m[i], 1, &x->tmp, uncertain);
			if (rc)
				goto out;
			ids_sort_unique(&x->tmp);
			if (!have_pos) {
				struct ids t = x->res;
				x->res = x->tmp;
				x->tmp = t;
				have_pos = 1;
			} else {
				ids_intersect(&x->res, &x->tmp);
			}
			if (x->res.n == 0)
				break;
		}
	if (!have_pos) {
		rc = ts_env_get_u64s(r, db->t_postings, TS_FORMAT_POSTING_ALL,
				     TS_FORMAT_POSTING_ALL_LEN, &x->res.v, &x->res.n, &x->res.cap);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n_matchers && x->res.n; i++) {
		if (!m[i].matches_empty)
			continue;
		if (x->res.n <= FEW_CANDIDATES) {
			*uncertain = 1; /* checked on the candidates' labels, as above */
			continue;
		}
		x->excl.n = 0;
		rc = collect(db, r, &m[i], 0, &x->excl, uncertain);
		if (rc)
			goto out;
		ids_sort_unique(&x->excl);
		ids_subtract(&x->res, &x->excl);
	}
out:
	ts_env_read_end(r);
	return rc;
}

static int set_new(struct ts_db *db, int64_t mint, int64_t maxt, size_t cap,
		   struct ts_series_set **out)
{
	struct ts_series_set *set = ts_calloc(1, sizeof *set);
	if (!set)
		return -ENOMEM;
	set->db = db;
	set->mint = mint;
	set->maxt = maxt;
	set->tombs = ts__tombs_get(db);
	set->ser = ts_malloc((cap ? cap : 1) * sizeof *set->ser);
	*out = set;
	return set->ser ? 0 : -ENOMEM;
}

static int set_res(struct ts_series_set *set, const struct ts_select_opts *o)
{
	if (!o)
		return 0;
	if (o->max_resolution_ms < 0 || (unsigned)o->aggr > TS_AGGR_COUNTER)
		return TS_EINVALID;
	set->max_res_ms = o->max_resolution_ms;
	set->aggr = o->aggr;
	return 0;
}

/* Keeps the series of set->ser[from..] whose real labels match. Runs without db->mu:
 * labels never change and series are not freed while the db is open, so a regex over
 * long values never holds up appends. */
static int filter_matching(struct ts_series_set *set, size_t from, struct cmatcher *m,
			   size_t n_matchers)
{
	size_t w = from;
	for (size_t i = from; i < set->n; i++) {
		int rc = series_matches(set->ser[i].s, m, n_matchers);
		if (rc < 0)
			return rc;
		if (rc)
			set->ser[w++] = set->ser[i];
	}
	set->n = w;
	return 0;
}

/* 3. Resolves the ids of res into series; re-checks labels when a cut key was involved.
 * Series whose newest sample is older than the range have nothing to give: they are
 * dropped before sorting and snapshotting (with churn, most matches of a short recent
 * range are long dead). max_t is head state, read under db->mu in slices. */
static int add_indexed(struct ts_series_set *set, const struct ids *res, struct cmatcher *m,
		       size_t n_matchers, int uncertain)
{
	struct ts_db *db = set->db;
	int rc = 0;
	for (size_t i = 0; i < res->n && rc == 0;) {
		pthread_mutex_lock(&db->mu);
		for (size_t end = i + 1024; i < res->n && i < end; i++) {
			struct ts_series *s = ts__series_by_id(db, res->v[i]);
			if (!s) {
				rc = TS_CORRUPT(); /* postings name an id the series table lacks */
				break;
			}
			if (s->max_t_known && s->max_t < set->mint)
				continue;
			set->ser[set->n++].s = s;
		}
		pthread_mutex_unlock(&db->mu);
	}
	if (rc == 0 && uncertain)
		rc = filter_matching(set, 0, m, n_matchers);
	return rc;
}

/* 3b. Adds the unindexed series that match (and are not in res already). */
static int add_unindexed(struct ts_series_set *set, struct ts_series **unidx, size_t n_unidx,
			 const struct ids *res, struct cmatcher *m, size_t n_matchers)
{
	size_t from = set->n;
	pthread_mutex_lock(&set->db->mu);
	for (size_t i = 0; i < n_unidx; i++) {
		/* Skip those that reached the postings in the meantime (already in res). */
		if (res->n && bsearch(&unidx[i]->id, res->v, res->n, sizeof *res->v, u64_cmp))
			continue;
		if (unidx[i]->max_t_known && unidx[i]->max_t < set->mint)
			continue;
		set->ser[set->n++].s = unidx[i];
	}
	pthread_mutex_unlock(&set->db->mu);
	return filter_matching(set, from, m, n_matchers);
}

/* 4. Labels, sorted order. */
static int set_labels(struct ts_series_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		int c = ts_labels_count(set->ser[i].s->packed, set->ser[i].s->packed_len);
		if (c < 0)
			return c;
		set->ser[i].n_labels = (uint32_t)c;
		set->ser[i].lab_off = (uint32_t)set->n_labels;
		set->n_labels += (size_t)c;
	}
	set->labels = ts_malloc((set->n_labels ? set->n_labels : 1) * sizeof *set->labels);
	if (!set->labels)
		return -ENOMEM;
	for (size_t i = 0; i < set->n; i++) {
		uint32_t k;
		int rc = ts_labels_unpack(set->ser[i].s->packed, set->ser[i].s->packed_len,
					  set->labels + set->ser[i].lab_off, set->ser[i].n_labels,
					  &k);
		if (rc)
			return rc;
		/* The hidden label (tenants) is the reader's business: never shown. */
		struct ts_label *l = set->labels + set->ser[i].lab_off;
		for (uint32_t j = 0; set->db->hidden_len && j < k; j++)
			if (l[j].name_len == set->db->hidden_len &&
			    !memcmp(l[j].name, set->db->hidden, set->db->hidden_len)) {
				memmove(&l[j], &l[j + 1], (k - j - 1) * sizeof *l);
				set->ser[i].n_labels = --k;
				break;
			}
	}
	if (set->n > 1)
		qsort_r(set->ser, set->n, sizeof *set->ser, ser_cmp, set);
	return 0;
}

/* 5a. Copies the in-memory chunks of every series, 1024 series per db->mu hold. */
static int snapshot_mem(struct ts_series_set *set)
{
	int rc = 0;
	for (size_t i = 0; i < set->n && rc == 0; i += 1024) {
		pthread_mutex_lock(&set->db->mu);
		for (size_t j = i; j < set->n && j < i + 1024 && rc == 0; j++)
			rc = copy_mem(set, &set->ser[j]);
		pthread_mutex_unlock(&set->db->mu);
	}
	if (rc)
		return rc;
	for (size_t i = 0; i < set->n_mem; i++)
		set->mem[i].data = set->arena + (uintptr_t)set->mem[i].data;
	return 0;
}

static int64_t res_ms_of(uint8_t res)
{
	return res == TS_FORMAT_TIER_RES_1H   ? TS_DS_RES_1H_MS
	       : res == TS_FORMAT_TIER_RES_5M ? TS_DS_RES_5M_MS
					      : 0;
}

/* The coarsest usable tier of ps at most set->max_res_ms, if any (ps->r open). */
static int pick_tier(struct ts_series_set *set, struct part_snap *ps)
{
	uint32_t fl;
	int rc = ts__tiers_usable(ps->r, ps->part, set->tombs, &fl);
	if (rc)
		return rc;
	/* Where retention deleted the raw samples, the finest tier left answers whatever
	 * resolution was asked. */
	int gone = (atomic_load(&ps->part->expired) & TS_FORMAT_EXPIRED_RAW) != 0;
	if ((fl & TS_FORMAT_TIERS_FLAG_1H) && set->max_res_ms >= TS_DS_RES_1H_MS)
		ps->tier_res = TS_FORMAT_TIER_RES_1H;
	else if ((fl & TS_FORMAT_TIERS_FLAG_5M) && (gone || set->max_res_ms >= TS_DS_RES_5M_MS))
		ps->tier_res = TS_FORMAT_TIER_RES_5M;
	else if ((fl & TS_FORMAT_TIERS_FLAG_1H) && gone)
		ps->tier_res = TS_FORMAT_TIER_RES_1H;
	set->any_tier |= ps->tier_res != 0;
	return 0;
}

/* 5b. Read snapshots of the partitions overlapping the range, each with a reference and
 * a pin (its env is opened now if it was closed). References are taken under parts_mu;
 * envs are opened after it is released, since opening may close other envs. */
static int snapshot_parts(struct ts_series_set *set)
{
	struct ts_db *db = set->db;
	int rc = 0;
	pthread_rwlock_rdlock(&db->parts_mu);
	set->parts = ts_calloc(db->n_parts ? db->n_parts : 1, sizeof *set->parts);
	for (size_t i = 0; set->parts && i < db->n_parts; i++) {
		struct ts_partition *p = db->parts[i];
		if (p->end <= set->mint || p->start > set->maxt)
			continue;
		struct part_snap *ps = &set->parts[set->n_parts++];
		ps->start = p->start;
		ps->end = p->end;
		ps->part = p;
		ts__part_hold(p);
	}
	pthread_rwlock_unlock(&db->parts_mu);
	if (!set->parts)
		return -ENOMEM;
	/* Kept entries move down over the dropped ones; after an error the rest are kept
	 * unpinned (r == NULL), so ts_series_set_free gives their references back. */
	size_t w = 0;
	for (size_t i = 0; i < set->n_parts; i++) {
		struct part_snap ps = set->parts[i];
		int r = rc ? rc : ts__part_pin(db, ps.part, 0);
		if (r == TS_ENOTFOUND) { /* never written: nothing to read there */
			ts__part_unref(db, ps.part);
			continue;
		}
		if (r == 0) {
			ps.table = ps.part->chunks;
			ps.cold = ps.part->cold;
			if ((r = ts_env_read_begin(ps.part->env, &ps.r)) != 0) {
				ps.r = NULL;
				ts__part_unpin(db, ps.part);
			} else {
				r = ts__cold_gens_read(ps.r, ps.part->meta, &ps.gens, &ps.n_gens);
				if (r == 0 &&
				    (set->max_res_ms >= TS_DS_RES_5M_MS ||
				     (atomic_load(&ps.part->expired) & TS_FORMAT_EXPIRED_RAW)))
					r = pick_tier(set, &ps);
			}
		}
		rc = r;
		set->parts[w++] = ps;
	}
	set->n_parts = w;
	return rc;
}

/* ---- query-time deduplication ---- */

struct dedup_sort {
	const struct ts_series_set *set;
	const size_t *orig; /* each entry's position before sorting: ties keep it */
};

static int dedup_cmp(const void *a, const void *b, void *arg)
{
	const struct dedup_sort *d = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct set_series *x = &d->set->ser[i], *y = &d->set->ser[j];
	int c = ts_labels_cmp(d->set->labels + x->lab_off, x->n_labels, d->set->labels + y->lab_off,
			      y->n_labels);
	return c ? c : (i > j) - (i < j);
}

/* Drops the replica labels from every series' labels, sorts the series by what is left
 * (replicas in their earlier order) and groups equal label sets. */
static int set_dedup(struct ts_series_set *set, const struct ts_select_opts *o)
{
	for (size_t i = 0; i < set->n; i++) {
		struct ts_label *l = set->labels + set->ser[i].lab_off;
		uint32_t w = 0;
		for (uint32_t j = 0; j < set->ser[i].n_labels; j++) {
			bool drop = false;
			for (size_t k = 0; k < o->n_dedup_labels && !drop; k++)
				drop = strlen(o->dedup_labels[k]) == l[j].name_len &&
				       !memcmp(o->dedup_labels[k], l[j].name, l[j].name_len);
			if (!drop)
				l[w++] = l[j];
		}
		set->ser[i].n_labels = w;
	}
	size_t n = set->n;
	size_t *ord = ts_malloc((n ? n : 1) * sizeof *ord);
	struct set_series *sorted = ts_malloc((n ? n : 1) * sizeof *sorted);
	set->grp = ts_malloc((n ? n : 1) * sizeof *set->grp);
	if (!ord || !sorted || !set->grp) {
		ts_free(ord);
		ts_free(sorted);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	struct dedup_sort d = { set, ord };
	qsort_r(ord, n, sizeof *ord, dedup_cmp, &d);
	for (size_t i = 0; i < n; i++)
		sorted[i] = set->ser[ord[i]];
	ts_free(set->ser);
	set->ser = sorted;
	ts_free(ord);
	set->n_grp = 0;
	for (size_t i = 0; i < n; i++) {
		const struct set_series *x = &set->ser[i];
		if (set->n_grp) {
			struct grp *g = &set->grp[set->n_grp - 1];
			const struct set_series *y = &set->ser[g->first];
			if (!ts_labels_cmp(set->labels + x->lab_off, x->n_labels,
					   set->labels + y->lab_off, y->n_labels)) {
				g->n++;
				continue;
			}
		}
		set->grp[set->n_grp++] = (struct grp){ i, 1 };
	}
	set->dedup_counter = o->dedup_counter;
	return 0;
}

/* ts_db_select; with !full, only the matching series (no labels array, no chunk
 * snapshots): what label look-ups need, at a fraction of the cost. */
static int select_impl(struct ts_db *db, const struct ts_matcher *matchers, size_t n_matchers,
		       int64_t mint, int64_t maxt, const struct ts_select_opts *o, int full,
		       struct ts_series_set **out, char *msg, size_t msg_len)
{
	struct budget bud = { o, 0 };
	struct cmatcher *m = NULL;
	struct ts_series **unidx = NULL;
	size_t n_unidx = 0;
	struct idsets x = { 0 };
	struct ts_series_set *set = NULL;
	int uncertain = 0;
	int rc = cm_compile(matchers, n_matchers, &bud, &m, msg, msg_len);
	if (rc)
		return rc;
	if ((rc = copy_unindexed(db, m, n_matchers, &unidx, &n_unidx)) ||
	    (rc = match_postings(db, m, n_matchers, &x, &uncertain)) ||
	    (rc = set_new(db, mint, maxt, x.res.n + n_unidx, &set)) || (rc = set_res(set, o)) ||
	    (rc = add_indexed(set, &x.res, m, n_matchers, uncertain)) ||
	    (rc = add_unindexed(set, unidx, n_unidx, &x.res, m, n_matchers)))
		goto out;
	/* In-memory chunks, then partition snapshots (this order matters). */
	if (full &&
	    ((rc = set_labels(set)) || (rc = snapshot_mem(set)) || (rc = snapshot_parts(set))))
		goto out;
	if (full && o && o->n_dedup_labels && (rc = set_dedup(set, o)))
		goto out;
	*out = set;
	set = NULL;
out:
	if (rc == TS_ELIMIT && m)
		cm_limit_msg(m, n_matchers, msg, msg_len);
	ts_series_set_free(set);
	cm_free(m, n_matchers);
	ts_free(unidx);
	ts_free(x.res.v);
	ts_free(x.tmp.v);
	ts_free(x.excl.v);
	return rc;
}

int ts_db_select(struct ts_db *db, const struct ts_matcher *matchers, size_t n_matchers,
		 int64_t mint, int64_t maxt, const struct ts_select_opts *o,
		 struct ts_series_set **out, char *msg, size_t msg_len)
{
	return select_impl(db, matchers, n_matchers, mint, maxt, o, 1, out, msg, msg_len);
}

int ts__select_series(struct ts_db *db, const struct ts_matcher *matchers, size_t n_matchers,
		      struct ts_series_set **out, char *msg, size_t msg_len)
{
	return select_impl(db, matchers, n_matchers, INT64_MIN, INT64_MAX, NULL, 0, out, msg,
			   msg_len);
}

size_t ts_series_set_len(const struct ts_series_set *set)
{
	return set->grp ? set->n_grp : set->n;
}

/* Public index i (a group when deduplicating) -> the index of its first series in
 * set->ser, and how many series it merges. TS_ENOTFOUND when out of range. */
static int pub(const struct ts_series_set *set, size_t i, size_t *first, uint32_t *n)
{
	if (!set->grp) {
		*first = i;
		*n = 1;
		return i < set->n ? 0 : TS_ENOTFOUND;
	}
	if (i >= set->n_grp)
		return TS_ENOTFOUND;
	*first = set->grp[i].first;
	*n = set->grp[i].n;
	return 0;
}

int64_t ts_series_set_resolution(const struct ts_series_set *set)
{
	int64_t r = 0;
	for (size_t i = 0; i < set->n_parts; i++) {
		int64_t x = res_ms_of(set->parts[i].tier_res);
		if (x > r)
			r = x;
	}
	return r;
}

uint64_t ts_series_set_id(const struct ts_series_set *set, size_t i)
{
	return set->ser[set->grp ? set->grp[i].first : i].s->id;
}

int ts_series_set_labels(const struct ts_series_set *set, size_t i, const struct ts_label **labels,
			 uint32_t *n_labels)
{
	uint32_t n;
	if (pub(set, i, &i, &n))
		return TS_ENOTFOUND;
	*labels = set->labels + set->ser[i].lab_off;
	*n_labels = set->ser[i].n_labels;
	return 0;
}

/* ---- chunk sources of one series ---- */

struct srcs {
	struct src *v;
	size_t n, cap;
	void **own; /* buffers the sources point into (decoded cold samples) */
	size_t n_own, cap_own;
};

static void srcs_fini(struct srcs *a)
{
	for (size_t i = 0; i < a->n_own; i++)
		ts_free(a->own[i]);
	ts_free(a->own);
	ts_free(a->v);
}

/* Keeps p (ts_malloc'd) until the sources are freed; frees it on failure. */
static int srcs_own(struct srcs *a, void *p)
{
	if (ts_grow((void **)&a->own, &a->cap_own, a->n_own + 1, sizeof *a->own)) {
		ts_free(p);
		return -ENOMEM;
	}
	a->own[a->n_own++] = p;
	return 0;
}

static int srcs_add(struct srcs *a, const struct src *s)
{
	if (ts_grow((void **)&a->v, &a->cap, a->n + 1, sizeof *a->v))
		return -ENOMEM;
	a->v[a->n++] = *s;
	return 0;
}

static int src_cmp(const void *a, const void *b)
{
	const struct src *x = a, *y = b;
	if (x->min_t != y->min_t)
		return x->min_t < y->min_t ? -1 : 1;
	return (x->max_t > y->max_t) - (x->max_t < y->max_t);
}

enum gather_mode {
	GATHER_ARRAYS, /* a sample iterator: cold samples as arrays */
	GATHER_XOR,    /* a chunk iterator: cold samples are re-encoded into XOR chunks */
	GATHER_ANY,    /* ts_series_set_has_data: stop at the first piece in range */
};
#define GATHER_FOUND 1 /* a scan callback's "stop, found one" (GATHER_ANY) */

struct gather_ctx {
	struct srcs *out;
	int64_t mint, maxt;
	enum gather_mode mode;
	const uint8_t *skip; /* per set partition: read from its tiers, not here; or NULL */
};

/* Cold samples as XOR chunks cut at TS_CHUNK_SAMPLES, as the head cuts them. */
static int gather_xor(struct srcs *out, const int64_t *t, const uint64_t *v, uint32_t n)
{
	int rc = 0;
	for (uint32_t i = 0; i < n && rc == 0;) {
		uint32_t m = n - i < TS_CHUNK_SAMPLES ? n - i : TS_CHUNK_SAMPLES;
		struct ts_xor_enc e;
		ts_xor_enc_init(&e);
		for (uint32_t k = 0; k < m && rc == 0; k++)
			rc = ts_xor_append(&e, t[i + k], v[i + k]);
		if (rc == 0) {
			size_t len = ts_xor_enc_bytes(&e);
			struct src s = { t[i], t[i + m - 1], e.buf, len, m, NULL, NULL };
			if ((rc = srcs_own(out, e.buf)) == 0)
				rc = srcs_add(out, &s);
		} else {
			ts_xor_enc_fini(&e);
		}
		i += m;
	}
	return rc;
}

static int gather_cold(void *arg, const int64_t *t, const uint64_t *v, uint32_t n)
{
	struct gather_ctx *g = arg;
	/* Only [mint, maxt]: a piece may span a whole partition. */
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t[mid] < g->mint)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t a = lo;
	hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t[mid] <= g->maxt)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t m = lo - a;
	if (m == 0)
		return 0;
	if (g->mode == GATHER_ANY)
		return GATHER_FOUND;
	if (g->mode == GATHER_XOR)
		return gather_xor(g->out, t + a, v + a, m);
	uint8_t *buf = ts_malloc((size_t)m * 16);
	if (!buf)
		return -ENOMEM;
	int64_t *ct = (int64_t *)(void *)buf;
	uint64_t *cv = (uint64_t *)(void *)(buf + (size_t)m * 8);
	memcpy(ct, t + a, (size_t)m * 8);
	memcpy(cv, v + a, (size_t)m * 8);
	int rc = srcs_own(g->out, buf);
	if (rc)
		return rc;
	struct src s = { ct[0], ct[m - 1], NULL, 0, m, ct, cv };
	return srcs_add(g->out, &s);
}

static int gather_chunk(void *arg, const struct ts_chunk_hdr *h, const uint8_t *payload)
{
	struct gather_ctx *g = arg;
	if (h->max_t < g->mint)
		return 0;
	if (g->mode == GATHER_ANY)
		return GATHER_FOUND;
	struct src s = { h->min_t, h->max_t, payload, h->payload_len, h->n_samples, NULL, NULL };
	return srcs_add(g->out, &s);
}

/* Hands g every stored piece (cold samples, hot chunks) of series ss in the set's
 * partitions. Cold generations first: on equal timestamps the first source wins
 * (format.h). */
static int scan_stored(struct ts_series_set *set, const struct set_series *ss, struct gather_ctx *g)
{
	int rc = 0;
	for (size_t p = 0; p < set->n_parts && rc == 0; p++) {
		const struct part_snap *ps = &set->parts[p];
		if (!ps->r || (g->skip && g->skip[p]))
			continue;
		if (ps->n_gens)
			rc = ts__cold_scan(set->db, ps->r, ps->cold, ps->start, ps->gens,
					   ps->n_gens, ss->s->id, set->mint, set->maxt, &set->lk,
					   gather_cold, g);
		if (rc == 0) {
			/* records where the chunks are (in the map): nothing to decode */
			ts__txn_enter(&set->lk);
			rc = ts__part_scan(ps->r, ps->table, ss->s->id, ps->start, set->maxt,
					   gather_chunk, g);
			ts__txn_leave(&set->lk);
		}
	}
	return rc;
}

/* Replaces source s (one a tombstone intersects) by its samples outside the nr ranges
 * r, appended to a: arrays, or XOR chunks (mode GATHER_XOR). Nothing is appended when
 * every sample was deleted. 0, -ENOMEM, TS_ECORRUPT. */
static int tomb_replace(struct srcs *a, struct src s, const struct ts__tomb *r, size_t nr,
			int64_t mint, int64_t maxt, enum gather_mode mode)
{
	if (s.n == 0)
		return 0;
	uint8_t *buf = ts_malloc((size_t)s.n * 16);
	if (!buf)
		return -ENOMEM;
	int64_t *t = (int64_t *)(void *)buf;
	uint64_t *v = (uint64_t *)(void *)(buf + (size_t)s.n * 8);
	uint32_t n = 0;
	int rc = 0;
	if (s.t) {
		memcpy(t, s.t, (size_t)s.n * 8);
		memcpy(v, s.v, (size_t)s.n * 8);
		n = s.n;
	} else {
		struct ts_xor_it x;
		rc = ts_xor_it_init(&x, s.data, s.len);
		while (rc == 0 && (rc = ts_xor_next(&x)) == 1) {
			if (n == s.n) { /* more samples than the chunk's header says */
				rc = TS_CORRUPT();
				break;
			}
			t[n] = x.t;
			v[n] = x.v;
			n++;
			rc = 0;
		}
	}
	if (rc < 0) {
		ts_free(buf);
		return rc;
	}
	n = (uint32_t)ts__tombs_filter(r, nr, t, v, n);
	/* Only the set's range too: a source that had a sample in range may have none left
	 * there, and has_data must then say so. */
	uint32_t lo = 0, w = 0;
	while (lo < n && t[lo] < mint)
		lo++;
	for (; lo < n && t[lo] <= maxt; lo++, w++) {
		t[w] = t[lo];
		v[w] = v[lo];
	}
	n = w;
	if (n == 0) {
		ts_free(buf);
		return 0;
	}
	if (mode == GATHER_XOR) {
		rc = gather_xor(a, t, v, n);
		ts_free(buf);
		return rc;
	}
	if ((rc = srcs_own(a, buf)))
		return rc;
	struct src ns = { t[0], t[n - 1], NULL, 0, n, t, v };
	return srcs_add(a, &ns);
}

/* Drops the samples of series id's tombstones from its sources (see the top). */
static int tomb_apply(const struct ts_series_set *set, uint64_t id, struct srcs *a,
		      enum gather_mode mode)
{
	const struct ts__tomb *r;
	size_t nr = ts__tombs_of(set->tombs, id, &r);
	if (nr == 0 || !ts__tombs_hit(r, nr, set->mint, set->maxt))
		return 0;
	size_t n0 = a->n;
	int rc = 0;
	for (size_t k = 0; k < n0 && rc == 0; k++) {
		struct src s = a->v[k];
		if (!ts__tombs_hit(r, nr, s.min_t, s.max_t))
			continue;
		a->v[k].n = 0; /* replaced by what tomb_replace appends */
		rc = tomb_replace(a, s, r, nr, set->mint, set->maxt, mode);
	}
	if (rc)
		return rc;
	size_t w = 0;
	for (size_t k = 0; k < a->n; k++)
		if (a->v[k].n)
			a->v[w++] = a->v[k];
	a->n = w;
	if (a->n > 1)
		qsort(a->v, a->n, sizeof *a->v, src_cmp);
	return 0;
}

/* Gathers every chunk of series i overlapping [mint, maxt], sorted by min_t, with exact
 * duplicates (a chunk seen both in memory and in LMDB) removed and deleted samples left
 * out. */
static int gather(struct ts_series_set *set, size_t i, struct srcs *out, enum gather_mode mode,
		  const uint8_t *skip)
{
	const struct set_series *ss = &set->ser[i];
	struct gather_ctx g = { out, set->mint, set->maxt, mode, skip };
	int rc = scan_stored(set, ss, &g);
	for (size_t k = 0; k < ss->n_mem && rc == 0; k++)
		rc = srcs_add(out, &set->mem[ss->mem_off + k]);
	if (rc)
		return rc;
	if (out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, src_cmp);
	size_t w = 0;
	for (size_t k = 0; k < out->n; k++) {
		if (w && out->v[k].data && out->v[w - 1].data &&
		    out->v[w - 1].min_t == out->v[k].min_t && out->v[w - 1].len == out->v[k].len &&
		    memcmp(out->v[w - 1].data, out->v[k].data, out->v[k].len) == 0)
			continue;
		out->v[w++] = out->v[k];
	}
	out->n = w;
	return tomb_apply(set, ss->s->id, out, mode);
}

/* ---- merging sample iterator ---- */

/* A position in a source. Array sources keep their current sample in x.t and x.v too,
 * so the merge reads both kinds the same way; only stepping differs. */
struct cur {
	struct ts_xor_it x;
	const int64_t *at; /* NULL: an XOR chunk */
	const uint64_t *av;
	uint32_t an, ai;
};

/* Next sample: 1, 0 at the end, or TS_ECORRUPT (XOR). */
static inline int cur_next(struct cur *c)
{
	if (!c->at)
		return ts_xor_next(&c->x);
	if (++c->ai >= c->an)
		return 0;
	c->x.t = c->at[c->ai];
	c->x.v = c->av[c->ai];
	return 1;
}

/* Moves to the first sample >= t (staying if already there): 1, 0 at the end, or
 * TS_ECORRUPT. */
static int cur_seek(struct cur *c, int64_t t)
{
	if (!c->at)
		return ts_xor_seek(&c->x, t);
	if (c->ai >= c->an)
		return 0;
	if (c->x.t >= t)
		return 1;
	uint32_t lo = c->ai + 1, hi = c->an;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->at[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	c->ai = lo;
	if (lo >= c->an)
		return 0;
	c->x.t = c->at[lo];
	c->x.v = c->av[lo];
	return 1;
}

struct ts_iter {
	struct srcs src; /* first: srcs_iter_new() */
	size_t next_src;
	struct cur *act; /* active sources, each on a sample not yet returned */
	size_t n_act;
	int64_t mint, maxt;
	int64_t floor; /* next sample must have t >= floor */
	int64_t t;
	uint64_t v;
	int done;
	/* A downsampled read (mat_build): every point decided at creation. */
	int mat;
	int64_t *mt;
	double *mv, *mw; /* value as set->aggr asks; samples a point stands for */
	size_t mn, mi, mcap;
};

/* Allocates a zeroed iterator of `size` bytes whose first member is a struct srcs, and
 * gathers series i's chunks into it. */
static int srcs_iter_new(struct ts_series_set *set, size_t i, size_t size, enum gather_mode mode,
			 void **out)
{
	if (i >= set->n)
		return TS_ENOTFOUND;
	struct srcs *src = ts_calloc(1, size);
	if (!src)
		return -ENOMEM;
	int rc = gather(set, i, src, mode, NULL);
	if (rc) {
		srcs_fini(src);
		ts_free(src);
		return rc;
	}
	*out = src;
	return 0;
}

/* ---- downsampled reads ----
 *
 * A set selected with a max_resolution_ms reads each partition whose tiers are current
 * (pick_tier) from its coarsest tier within that resolution, and every other piece
 * (open partitions, partitions without tiers, anything of the series still in memory)
 * raw. The points of one series are decided when its iterator is created: raw samples
 * and tier rows never overlap in time (a partition is read one way), so they are
 * concatenated in time order. A raw sample stands for itself (weight 1); a row for its
 * window, as set->aggr says:
 *   AVG      sum / count (plain selectors and most functions, as Thanos reads rows)
 *   SUM, MIN, MAX   the row's aggregate
 *   COUNTER  one monotonic counter over the whole read: raw samples and the rows' counter
 *            column with counter resets added up (tsdb/downsample.h's counter stream,
 *            raw samples taking part as sets of themselves), so rate() and increase()
 *            over any mix of raw and tier data see the increase, resets included. NaN
 *            and stale markers are left out of it, as downsampling leaves them out.
 * The weight (ts_iter_read_w) is the row's count: count_over_time is the sum of the
 * weights, avg_over_time the sum of the SUM values over the sum of the weights. */

struct mat {
	struct ts_iter *it;
	enum ts_aggr aggr;
	int64_t mint, maxt;
	int have; /* COUNTER: a first value was seen */
	double total, prev;
};

static int mat_push(struct mat *m, int64_t t, double v, double w)
{
	struct ts_iter *it = m->it;
	if (t < m->mint || t > m->maxt)
		return 0;
	if (it->mn && it->mt[it->mn - 1] >= t) {
		/* Only a counter row moved to its window's end can meet the next point. */
		it->mv[it->mn - 1] = v;
		it->mw[it->mn - 1] += w;
		return 0;
	}
	if (it->mn == it->mcap) {
		size_t c = it->mcap;
		if (ts_grow((void **)&it->mt, &c, it->mn + 1, sizeof *it->mt))
			return -ENOMEM;
		c = it->mcap;
		if (ts_grow((void **)&it->mv, &c, it->mn + 1, sizeof *it->mv))
			return -ENOMEM;
		c = it->mcap;
		if (ts_grow((void **)&it->mw, &c, it->mn + 1, sizeof *it->mw))
			return -ENOMEM;
		it->mcap = c;
	}
	it->mt[it->mn] = t;
	it->mv[it->mn] = v;
	it->mw[it->mn++] = w;
	return 0;
}

/* A raw value entering the counter: returns the running total. */
static double mat_counter(struct mat *m, double v)
{
	if (!m->have) {
		m->have = 1;
		m->total = v;
	} else {
		m->total += v >= m->prev ? v - m->prev : v;
	}
	m->prev = v;
	return m->total;
}

static int mat_raw(struct mat *m, int64_t t, double v)
{
	if (m->aggr != TS_AGGR_COUNTER)
		return mat_push(m, t, v, 1);
	if (isnan(v))
		return 0;
	return mat_push(m, t, mat_counter(m, v), 1);
}

static int mat_rows(struct mat *m, const struct ts_ds_agg *a, int64_t res)
{
	if (a->n_rows == 0)
		return 0;
	int rc = 0;
	if (m->aggr == TS_AGGR_COUNTER) {
		/* The set's first raw sample continues the counter (a reset against the
		 * previous piece shows here); the counter column then adds its increases. */
		double base = a->first_v;
		double tot = mat_counter(m, base);
		if (a->first_t_ms < a->rows[0].t_ms)
			rc = mat_push(m, a->first_t_ms, tot, 1);
		/* A row's counter is the counter's state from its window's last sample on,
		 * so it is placed at the window's end (the last window of a partition too,
		 * whose row is timed at its last sample): a range [T - r, T] aligned to the
		 * resolution then holds the state at both ends and rate() needs no
		 * extrapolation (a raw sample at the partition's end: the later point
		 * replaces the earlier one). */
		for (size_t i = 0; i < a->n_rows && rc == 0; i++) {
			double c = a->rows[i].v[TS_DS_COUNTER];
			int64_t t = a->rows[i].t_ms;
			m->total += c - base;
			base = c;
			rc = mat_push(m, t - ((t % res) + res) % res + res, m->total,
				      a->rows[i].v[TS_DS_COUNT]);
		}
		m->prev = a->last_v; /* the next piece compares with a raw value */
		return rc;
	}
	for (size_t i = 0; i < a->n_rows && rc == 0; i++) {
		const double *r = a->rows[i].v;
		double v = m->aggr == TS_AGGR_SUM   ? r[TS_DS_SUM]
			   : m->aggr == TS_AGGR_MIN ? r[TS_DS_MIN]
			   : m->aggr == TS_AGGR_MAX ? r[TS_DS_MAX]
						    : r[TS_DS_SUM] / r[TS_DS_COUNT];
		rc = mat_push(m, a->rows[i].t_ms, v, r[TS_DS_COUNT]);
	}
	return rc;
}

/* The tier columns a read as aggr needs (besides the count). */
static unsigned kinds_of(enum ts_aggr aggr)
{
	switch (aggr) {
	case TS_AGGR_MIN: return 1u << TS_DS_MIN;
	case TS_AGGR_MAX: return 1u << TS_DS_MAX;
	case TS_AGGR_COUNTER:
		return 1u << TS_DS_COUNTER | 1u << TS_DS_KIND_FIRST | 1u << TS_DS_KIND_LAST;
	default: return 1u << TS_DS_SUM; /* AVG, SUM */
	}
}

/* Tombstones made after retention deleted a partition's raw samples (the tiers were
 * not rebuilt, they cannot be): rows whose window a deleted range touches are left out.
 * A set's first raw sample goes with its window's row. */
static void tomb_rows(const struct ts_series_set *set, uint64_t id, const struct part_snap *ps,
		      struct ts_ds_agg *a)
{
	const struct ts__tomb *r;
	size_t nr = ts__tombs_of(set->tombs, id, &r);
	if (nr == 0 || a->n_rows == 0 || !(atomic_load(&ps->part->expired) & TS_FORMAT_EXPIRED_RAW))
		return;
	int64_t res = res_ms_of(ps->tier_res);
	size_t w = 0;
	for (size_t i = 0; i < a->n_rows; i++) {
		int64_t t = a->rows[i].t_ms;
		int64_t ws = t - ((t % res) + res) % res;
		if (ts__tombs_hit(r, nr, ws, ws + res - 1)) {
			if (i == 0)
				a->first_t_ms = INT64_MIN; /* fixed below */
			continue;
		}
		a->rows[w++] = a->rows[i];
	}
	a->n_rows = w;
	if (w && a->first_t_ms == INT64_MIN) {
		/* The counter's base is then the first row kept. */
		a->first_t_ms = a->rows[0].t_ms;
		a->first_v = a->rows[0].v[TS_DS_COUNTER];
	}
}

/* Series i of a set with tiers: which partitions its tiers answer (none where memory
 * still holds samples of the series in that partition: a late write the tiers lack),
 * the raw samples elsewhere, then both merged into it->mt/mv/mw. */
static int mat_build(struct ts_series_set *set, size_t i, struct ts_iter *it)
{
	const struct set_series *ss = &set->ser[i];
	uint8_t *skip = ts_calloc(set->n_parts ? set->n_parts : 1, 1);
	struct ts_iter *raw = NULL;
	struct ts_ds_row *rows = NULL;
	size_t rows_cap = 0;
	int64_t *rt = NULL;
	double *rv = NULL;
	size_t rn = 0, rcap = 0;
	int rc = skip ? 0 : -ENOMEM;
	for (size_t p = 0; p < set->n_parts && rc == 0; p++) {
		const struct part_snap *ps = &set->parts[p];
		if (!ps->tier_res || !ps->r)
			continue;
		skip[p] = 1;
		if (atomic_load(&ps->part->expired) & TS_FORMAT_EXPIRED_RAW)
			continue; /* the tiers are all there is */
		for (size_t k = 0; k < ss->n_mem; k++) {
			const struct src *m = &set->mem[ss->mem_off + k];
			if (m->max_t >= ps->start && m->min_t < ps->end)
				skip[p] = 0;
		}
	}
	/* The raw samples, through the ordinary merging iterator. */
	if (rc == 0) {
		raw = ts_calloc(1, sizeof *raw);
		rc = raw ? gather(set, i, &raw->src, GATHER_ARRAYS, skip) : -ENOMEM;
	}
	if (rc == 0) {
		raw->act = ts_malloc((raw->src.n ? raw->src.n : 1) * sizeof *raw->act);
		rc = raw->act ? 0 : -ENOMEM;
		raw->mint = raw->floor = set->mint;
		raw->maxt = set->maxt;
	}
	while (rc == 0) {
		if (rcap - rn < 256) {
			size_t c = rcap;
			if (ts_grow((void **)&rt, &c, rn + 256, sizeof *rt) ||
			    ts_grow((void **)&rv, &rcap, rn + 256, sizeof *rv)) {
				rc = -ENOMEM;
				break;
			}
		}
		int n = ts_iter_read(raw, rt + rn, rv + rn, rcap - rn);
		if (n <= 0) {
			rc = n;
			break;
		}
		rn += (size_t)n;
	}
	struct mat m = { .it = it, .aggr = set->aggr, .mint = set->mint, .maxt = set->maxt };
	size_t ri = 0;
	for (size_t p = 0; p < set->n_parts && rc == 0; p++) {
		const struct part_snap *ps = &set->parts[p];
		if (!skip[p])
			continue;
		for (; ri < rn && rt[ri] < ps->start && rc == 0; ri++)
			rc = mat_raw(&m, rt[ri], rv[ri]);
		struct ts_ds_agg a;
		if (rc == 0) {
			ts__txn_enter(&set->lk);
			rc = ts__tiers_series(set->db, ps->r, ps->part, ps->tier_res, ss->s->id,
					      kinds_of(set->aggr), &rows, &rows_cap, &a);
			ts__txn_leave(&set->lk);
		}
		if (rc == 0)
			tomb_rows(set, ss->s->id, ps, &a);
		if (rc == 0)
			rc = mat_rows(&m, &a, res_ms_of(ps->tier_res));
		while (ri < rn && rt[ri] < ps->end) /* memory's, in a raw-less partition */
			ri++;
	}
	for (; ri < rn && rc == 0; ri++)
		rc = mat_raw(&m, rt[ri], rv[ri]);
	it->mat = 1;
	ts_iter_free(raw);
	ts_free(skip);
	ts_free(rows);
	ts_free(rt);
	ts_free(rv);
	return rc;
}

static int mat_read(struct ts_iter *it, int64_t *t_ms, double *v, double *w, size_t cap)
{
	size_t n = it->mn - it->mi < cap ? it->mn - it->mi : cap;
	if (n == 0) {
		it->done = 1;
		return 0;
	}
	memcpy(t_ms, it->mt + it->mi, n * sizeof *t_ms);
	memcpy(v, it->mv + it->mi, n * sizeof *v);
	if (w)
		memcpy(w, it->mw + it->mi, n * sizeof *w);
	it->mi += n;
	it->t = t_ms[n - 1];
	memcpy(&it->v, &v[n - 1], 8);
	return (int)n;
}

/* An iterator over set->ser[i] alone. */
static int iter_at(struct ts_series_set *set, size_t i, struct ts_iter **out)
{
	struct ts_iter *it;
	if (set->any_tier && i < set->n) {
		it = ts_calloc(1, sizeof *it);
		if (!it)
			return -ENOMEM;
		int rc = mat_build(set, i, it);
		if (rc) {
			ts_iter_free(it);
			return rc;
		}
		*out = it;
		return 0;
	}
	int rc = srcs_iter_new(set, i, sizeof *it, GATHER_ARRAYS, (void **)&it);
	if (rc)
		return rc;
	it->act = ts_malloc((it->src.n ? it->src.n : 1) * sizeof *it->act);
	if (!it->act) {
		ts_iter_free(it);
		return -ENOMEM;
	}
	it->mint = set->mint;
	it->maxt = set->maxt;
	it->floor = set->mint;
	*out = it;
	return 0;
}

void ts_iter_free(struct ts_iter *it)
{
	if (!it)
		return;
	ts_free(it->mt);
	ts_free(it->mv);
	ts_free(it->mw);
	srcs_fini(&it->src);
	ts_free(it->act);
	ts_free(it);
}

static int points_reserve(int64_t **t, double **v, double **w, size_t *cap, size_t need);

/* One replica's points, read whole, with the offset a counter switch added. */
struct rep {
	int64_t *t;
	double *v, *w;
	size_t n, cap, i;
	double add;
};

static void rep_free(struct rep *r)
{
	ts_free(r->t);
	ts_free(r->v);
	ts_free(r->w);
	memset(r, 0, sizeof *r);
}

static int rep_read(struct ts_series_set *set, size_t i, struct rep *r)
{
	struct ts_iter *it = NULL;
	int rc = iter_at(set, i, &it);
	if (rc == 0)
		rc = ts_iter_read_all(it, &r->t, &r->v, &r->w, &r->n, &r->cap);
	ts_iter_free(it);
	return rc;
}

static void rep_seek(struct rep *r, int64_t t)
{
	while (r->i < r->n && r->t[r->i] < t)
		r->i++;
}

/* Thanos' dedup iterator over two replicas, a before b (pkg/dedup in Thanos): at each
 * step both move to after the last point taken plus their penalty, the earlier point
 * wins (a on a tie), and the one not taken gets a penalty of twice the step just made
 * (5 s before any step). Writes the merged points into *out (reset first). */
static int merge2(struct rep *a, struct rep *b, bool counter, struct rep *out)
{
	const int64_t initial_penalty = 5000;
	int64_t last = INT64_MIN, pa = 0, pb = 0;
	int use_a = 1, have_last = 0;
	double last_v = 0;
	out->n = 0;
	a->i = b->i = 0;
	for (;;) {
		int64_t from = last == INT64_MIN ? INT64_MIN : last + 1;
		rep_seek(a, from == INT64_MIN ? INT64_MIN : from + pa);
		rep_seek(b, from == INT64_MIN ? INT64_MIN : from + pb);
		bool ha = a->i < a->n, hb = b->i < b->n;
		if (!ha && !hb)
			break;
		int pick_a;
		if (!ha) {
			pick_a = 0;
			pb = 0;
		} else if (!hb) {
			pick_a = 1;
			pa = 0;
		} else {
			pick_a = a->t[a->i] <= b->t[b->i];
			int64_t t = pick_a ? a->t[a->i] : b->t[b->i];
			int64_t pen = last != INT64_MIN ? 2 * (t - last) : initial_penalty;
			if (pick_a) {
				pb = pen;
				pa = 0;
			} else {
				pa = pen;
				pb = 0;
			}
		}
		/* A counter behind the value just taken would read as a reset: on a switch,
		 * raise each replica that reads lower by the difference, for good. */
		if (counter && have_last && pick_a != use_a) {
			if (ha && !isnan(a->v[a->i]) && a->v[a->i] + a->add < last_v)
				a->add += last_v - (a->v[a->i] + a->add);
			if (hb && !isnan(b->v[b->i]) && b->v[b->i] + b->add < last_v)
				b->add += last_v - (b->v[b->i] + b->add);
		}
		use_a = pick_a;
		struct rep *src = pick_a ? a : b;
		if (points_reserve(&out->t, &out->v, &out->w, &out->cap, out->n + 1))
			return -ENOMEM;
		last = src->t[src->i];
		last_v = src->v[src->i] + src->add;
		have_last = 1;
		out->t[out->n] = last;
		/* Stale markers keep their bits (an offset would make them a plain NaN). */
		out->v[out->n] = src->add != 0 && !isnan(src->v[src->i]) ? last_v : src->v[src->i];
		out->w[out->n++] = src->w[src->i];
	}
	return 0;
}

/* Replicas of group first..first+n merged into a materialised iterator: replica 0
 * with 1, that with 2, and so on, as Thanos chains them. */
static int dedup_iter(struct ts_series_set *set, size_t first, uint32_t n, struct ts_iter **out)
{
	struct rep acc = { 0 }, next = { 0 }, merged = { 0 };
	int rc = rep_read(set, first, &acc);
	for (uint32_t k = 1; k < n && rc == 0; k++) {
		next.n = 0;
		next.add = 0;
		rc = rep_read(set, first + k, &next);
		if (rc == 0) {
			acc.add = 0;
			rc = merge2(&acc, &next, set->dedup_counter, &merged);
		}
		if (rc == 0) {
			struct rep tmp = acc;
			acc = merged;
			merged = tmp;
		}
	}
	struct ts_iter *it = rc ? NULL : ts_calloc(1, sizeof *it);
	if (!rc && !it)
		rc = -ENOMEM;
	if (rc == 0) {
		it->mat = 1;
		it->mt = acc.t;
		it->mv = acc.v;
		it->mw = acc.w;
		it->mn = acc.n;
		acc.t = NULL;
		acc.v = acc.w = NULL;
		*out = it;
	}
	rep_free(&acc);
	rep_free(&next);
	rep_free(&merged);
	return rc;
}

int ts_iter_new(struct ts_series_set *set, size_t i, struct ts_iter **out)
{
	uint32_t n;
	if (pub(set, i, &i, &n))
		return TS_ENOTFOUND;
	return n > 1 ? dedup_iter(set, i, n, out) : iter_at(set, i, out);
}

/* Activates the next source, positioned at its first sample >= floor. */
static int activate(struct ts_iter *it)
{
	const struct src *s = &it->src.v[it->next_src++];
	if (s->max_t < it->floor)
		return 0;
	struct cur *x = &it->act[it->n_act];
	int rc;
	if (s->t) {
		x->at = s->t;
		x->av = s->v;
		x->an = s->n;
		x->ai = 0;
		x->x.t = s->t[0];
		x->x.v = s->v[0];
		rc = 0;
	} else {
		x->at = NULL;
		rc = ts_xor_it_init(&x->x, s->data, s->len);
	}
	if (rc)
		return rc;
	rc = cur_seek(x, it->floor);
	if (rc == 1)
		it->n_act++;
	return rc < 0 ? rc : 0;
}

int ts_iter_next(struct ts_iter *it)
{
	if (it->done)
		return 0;
	if (it->mat) {
		if (it->mi >= it->mn) {
			it->done = 1;
			return 0;
		}
		it->t = it->mt[it->mi];
		memcpy(&it->v, &it->mv[it->mi], 8);
		it->mi++;
		return 1;
	}
	/* Fast path, the common case: one chunk active and its current sample strictly
	 * before the next chunk starts, so nothing can interleave or duplicate it. */
	if (it->n_act == 1) {
		struct cur *c = &it->act[0];
		struct ts_xor_it *x = &c->x;
		int64_t next_min = it->next_src < it->src.n ? it->src.v[it->next_src].min_t
							    : INT64_MAX;
		if (x->t < next_min) {
			if (x->t > it->maxt) {
				it->done = 1;
				return 0;
			}
			it->t = x->t;
			it->v = x->v;
			it->floor = x->t + 1;
			int rc = cur_next(c);
			if (rc < 0)
				return rc;
			if (rc == 0)
				it->n_act = 0;
			return 1;
		}
	}
	for (;;) {
		int64_t min = INT64_MAX;
		for (size_t k = 0; k < it->n_act; k++)
			if (it->act[k].x.t < min)
				min = it->act[k].x.t;
		if (it->next_src < it->src.n &&
		    (it->n_act == 0 || it->src.v[it->next_src].min_t <= min)) {
			int rc = activate(it);
			if (rc)
				return rc;
			continue;
		}
		if (it->n_act == 0 || min > it->maxt) {
			it->done = 1;
			return 0;
		}
		/* Emit min from the first (oldest-starting) source that has it; advance every
		 * source positioned on that timestamp so duplicates collapse. */
		int emitted = 0;
		for (size_t k = 0; k < it->n_act;) {
			struct cur *c = &it->act[k];
			if (c->x.t == min) {
				if (!emitted) {
					it->t = c->x.t;
					it->v = c->x.v;
					emitted = 1;
				}
				int rc = cur_next(c);
				if (rc < 0)
					return rc;
				if (rc == 0) {
					it->act[k] = it->act[--it->n_act];
					continue;
				}
			}
			k++;
		}
		it->floor = min + 1;
		return 1;
	}
}

int ts_iter_seek(struct ts_iter *it, int64_t t)
{
	if (it->mat) {
		size_t lo = it->mi, hi = it->mn;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (it->mt[mid] < t)
				lo = mid + 1;
			else
				hi = mid;
		}
		it->mi = lo;
		return ts_iter_next(it);
	}
	if (t > it->floor) {
		it->floor = t;
		for (size_t k = 0; k < it->n_act;) {
			int rc = cur_seek(&it->act[k], t);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				it->act[k] = it->act[--it->n_act];
				continue;
			}
			k++;
		}
	}
	return ts_iter_next(it);
}

int ts_iter_read(struct ts_iter *it, int64_t *t_ms, double *v, size_t cap)
{
	size_t n = 0;
	if (cap > INT32_MAX)
		cap = INT32_MAX;
	if (it->mat)
		return mat_read(it, t_ms, v, NULL, cap);
	while (n < cap && !it->done) {
		if (it->n_act == 1) {
			/* The fast path of ts_iter_next, run for a whole stretch of one chunk. */
			struct cur *c = &it->act[0];
			struct ts_xor_it *x = &c->x;
			int64_t next_min = it->next_src < it->src.n ? it->src.v[it->next_src].min_t
								    : INT64_MAX;
			int64_t lim = next_min <= it->maxt ? next_min - 1 : it->maxt;
			int rc = 1;
			size_t n0 = n;
			if (c->at) {
				/* Decoded samples: copy the stretch in bulk. */
				size_t k = c->ai, end = c->an;
				size_t room = cap - n;
				size_t take = 0;
				while (k + take < end && take < room && c->at[k + take] <= lim)
					take++;
				memcpy(t_ms + n, c->at + k, take * 8);
				memcpy(v + n, c->av + k, take * 8);
				n += take;
				c->ai = (uint32_t)(k + take);
				if (c->ai >= c->an) {
					rc = 0;
				} else {
					x->t = c->at[c->ai];
					x->v = c->av[c->ai];
				}
			} else {
				while (n < cap && x->t <= lim) {
					t_ms[n] = x->t;
					memcpy(&v[n], &x->v, 8);
					n++;
					rc = ts_xor_next(x);
					if (rc <= 0)
						break;
				}
			}
			if (n > n0) {
				it->t = t_ms[n - 1];
				memcpy(&it->v, &v[n - 1], 8);
				it->floor = it->t + 1;
			}
			if (rc < 0)
				return rc;
			if (rc == 0) {
				it->n_act = 0;
				continue;
			}
			if (n == cap)
				break;
		}
		int rc = ts_iter_next(it);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		t_ms[n] = it->t;
		memcpy(&v[n], &it->v, 8);
		n++;
	}
	return (int)n;
}

int ts_iter_read_w(struct ts_iter *it, int64_t *t_ms, double *v, double *w, size_t cap)
{
	if (cap > INT32_MAX)
		cap = INT32_MAX;
	if (it->mat)
		return mat_read(it, t_ms, v, w, cap);
	int n = ts_iter_read(it, t_ms, v, cap);
	for (int k = 0; k < n; k++)
		w[k] = 1;
	return n;
}

/* Grows the three point arrays together to hold need entries. */
static int points_reserve(int64_t **t, double **v, double **w, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	int64_t *nt = ts_realloc(*t, c * sizeof *nt);
	if (nt)
		*t = nt;
	double *nv = nt ? ts_realloc(*v, c * sizeof *nv) : NULL;
	if (nv)
		*v = nv;
	double *nw = nv ? ts_realloc(*w, c * sizeof *nw) : NULL;
	if (!nw)
		return -ENOMEM; /* the arrays grown so far keep their contents */
	*w = nw;
	*cap = c;
	return 0;
}

int ts_iter_read_all(struct ts_iter *it, int64_t **t_ms, double **v, double **w, size_t *n,
		     size_t *cap)
{
	for (;;) {
		int rc = points_reserve(t_ms, v, w, cap, *n + 512);
		if (rc)
			return rc;
		int got = ts_iter_read_w(it, *t_ms + *n, *v + *n, *w + *n, *cap - *n);
		if (got <= 0)
			return got;
		*n += (size_t)got;
	}
}

double ts_iter_weight(const struct ts_iter *it)
{
	return it->mat && it->mi > 0 ? it->mw[it->mi - 1] : 1;
}

void ts_iter_at(const struct ts_iter *it, int64_t *t_ms, double *v)
{
	*t_ms = it->t;
	memcpy(v, &it->v, 8);
}

/* ---- raw chunks ---- */

struct ts_chunk_it {
	struct srcs src; /* first: srcs_iter_new() */
	size_t pos;
};

int ts_chunk_it_new(struct ts_series_set *set, size_t i, struct ts_chunk_it **out)
{
	uint32_t n;
	if (pub(set, i, &i, &n))
		return TS_ENOTFOUND;
	if (n > 1)
		return TS_EINVALID; /* replicas merged at query time have no chunks of their own */
	return srcs_iter_new(set, i, sizeof **out, GATHER_XOR, (void **)out);
}

/* Whether series ss has rows in range in a partition whose raw samples retention
 * deleted (its tiers are then its data): 1, 0, or an error. */
static int tiers_have_data(struct ts_series_set *set, const struct set_series *ss)
{
	struct ts_ds_row *rows = NULL;
	size_t cap = 0;
	int rc = 0, any = 0;
	for (size_t p = 0; p < set->n_parts && rc == 0 && !any; p++) {
		const struct part_snap *ps = &set->parts[p];
		if (!ps->r || !ps->tier_res ||
		    !(atomic_load(&ps->part->expired) & TS_FORMAT_EXPIRED_RAW))
			continue;
		struct ts_ds_agg a;
		ts__txn_enter(&set->lk);
		rc = ts__tiers_series(set->db, ps->r, ps->part, ps->tier_res, ss->s->id, 0, &rows,
				      &cap, &a);
		ts__txn_leave(&set->lk);
		if (rc)
			break;
		tomb_rows(set, ss->s->id, ps, &a);
		for (size_t k = 0; k < a.n_rows && !any; k++)
			any = a.rows[k].t_ms >= set->mint && a.rows[k].t_ms <= set->maxt;
	}
	ts_free(rows);
	return rc ? rc : any;
}

static int has_data_at(struct ts_series_set *set, size_t i);

int ts_series_set_has_data(struct ts_series_set *set, size_t i)
{
	uint32_t n;
	if (pub(set, i, &i, &n))
		return TS_ENOTFOUND;
	int rc = 0;
	for (uint32_t k = 0; k < n && rc == 0; k++)
		rc = has_data_at(set, i + k);
	return rc;
}

static int has_data_at(struct ts_series_set *set, size_t i)
{
	const struct set_series *ss = &set->ser[i];
	const struct ts__tomb *r;
	size_t nr = ts__tombs_of(set->tombs, ss->s->id, &r);
	if (nr && ts__tombs_hit(r, nr, set->mint, set->maxt)) {
		/* Something was deleted in range: only the samples left can tell. */
		struct srcs a = { 0 };
		int rc = gather(set, i, &a, GATHER_ARRAYS, NULL);
		int any = a.n > 0;
		srcs_fini(&a);
		return rc ? rc : any ? 1 : tiers_have_data(set, ss);
	}
	if (ss->n_mem)
		return 1; /* memory chunks are taken in range at select */
	struct gather_ctx g = { NULL, set->mint, set->maxt, GATHER_ANY, NULL };
	int rc = scan_stored(set, ss, &g);
	return rc == GATHER_FOUND ? 1 : rc ? rc : tiers_have_data(set, ss);
}

int ts_chunk_it_next(struct ts_chunk_it *it, struct ts_chunk_ref *c)
{
	if (it->pos >= it->src.n)
		return 0;
	const struct src *s = &it->src.v[it->pos++];
	*c = (struct ts_chunk_ref){ s->min_t, s->max_t, s->data, s->len, s->n };
	return 1;
}

void ts_chunk_it_free(struct ts_chunk_it *it)
{
	if (!it)
		return;
	srcs_fini(&it->src);
	ts_free(it);
}
