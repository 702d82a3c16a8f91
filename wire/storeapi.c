/*
 * storeapi.c - Thanos StoreAPI messages through protobuf-c (code generated at build
 * time from wire/proto/); see storeapi.h.
 *
 * protobuf-c hands strings over NUL-terminated without their length, so a string with
 * a NUL inside would reach the engine cut short (a matcher on a shorter value than the
 * client sent: a wrong answer, not an error). Before decoding, the strings the engine
 * reads are looked at in the raw message with wire/pb.h's reader and refused if they
 * hold a NUL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "thanos_info.pb-c.h"
#include "thanos_store.pb-c.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "wire/storeapi.h"

static int fail(char *msg, size_t msg_len, const char *fmt, const char *what)
{
	if (msg && msg_len)
		snprintf(msg, msg_len, fmt, what);
	return TS_EINVALID;
}

/* Whether the LEN field at the cursor (tag read) holds a NUL byte. -1 when truncated. */
static int str_has_nul(struct ts_pb_reader *r)
{
	const uint8_t *p;
	size_t n;
	if (ts_pb_read_bytes(r, &p, &n))
		return -1;
	return memchr(p, 0, n) != NULL;
}

/* Scans a request for a NUL in its matchers' names and values (field mfield) and in
 * its string field sfield (0: none). 0 clean, 1 a NUL, -1 not a protobuf message (the
 * decoder then says so). */
static int scan_nul(const uint8_t *buf, size_t len, uint32_t mfield, uint32_t sfield)
{
	struct ts_pb_reader r;
	ts_pb_reader_init(&r, buf, len);
	while (!ts_pb_eof(&r)) {
		uint32_t f;
		enum ts_pb_wire w;
		if (ts_pb_read_tag(&r, &f, &w))
			return -1;
		if (w == TS_PB_LEN && f == sfield) {
			int rc = str_has_nul(&r);
			if (rc)
				return rc;
			continue;
		}
		if (w != TS_PB_LEN || f != mfield) {
			if (ts_pb_skip(&r, f, w))
				return -1;
			continue;
		}
		struct ts_pb_reader sub;
		if (ts_pb_open(&r, &sub, "matcher"))
			return -1;
		while (!ts_pb_eof(&sub)) {
			if (ts_pb_read_tag(&sub, &f, &w))
				return -1;
			if (w == TS_PB_LEN && (f == 2 || f == 3)) {
				int rc = str_has_nul(&sub);
				if (rc)
					return rc;
			} else if (ts_pb_skip(&sub, f, w)) {
				return -1;
			}
		}
	}
	return 0;
}

static int copy_matchers(Thanos__LabelMatcher **in, size_t n, struct ts_sa_request *out, char *msg,
			 size_t msg_len)
{
	if (n > TS_SA_MAX_MATCHERS)
		return fail(msg, msg_len, "more than %s matchers", "256");
	out->m = ts_calloc(n ? n : 1, sizeof *out->m);
	if (!out->m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)in[i]->type > THANOS__LABEL_MATCHER__TYPE__NRE)
			return fail(msg, msg_len, "unknown matcher type%s", "");
		if (!in[i]->name || !in[i]->name[0])
			return fail(msg, msg_len, "matcher without a label name%s", "");
		static const enum ts_match_type t[] = { TS_MATCH_EQ, TS_MATCH_NEQ, TS_MATCH_RE,
							TS_MATCH_NRE };
		out->m[i] = (struct ts_matcher){ t[in[i]->type], in[i]->name,
						 in[i]->value ? in[i]->value : "" };
	}
	out->n_m = n;
	return 0;
}

int ts_sa_decode(enum ts_sa_kind kind, const uint8_t *p, size_t len, struct ts_sa_request *out,
		 char *msg, size_t msg_len)
{
	memset(out, 0, sizeof *out);
	static const uint32_t mfield[] = { 3, 6, 7 };
	int nul = scan_nul(p, len, mfield[kind], kind == TS_SA_LABEL_VALUES ? 1 : 0);
	if (nul == 1)
		return fail(msg, msg_len, "a label name or value holds a NUL byte%s", "");
	int rc = 0;
	switch (kind) {
	case TS_SA_SERIES: {
		Thanos__SeriesRequest *q = thanos__series_request__unpack(NULL, len, p);
		if (!q)
			return fail(msg, msg_len, "malformed %s", "SeriesRequest");
		out->ts__msg = q;
		out->mint = q->min_time;
		out->maxt = q->max_time;
		out->max_resolution = q->max_resolution_window;
		out->skip_chunks = q->skip_chunks;
		out->limit = q->limit;
		for (size_t i = 0; i < q->n_aggregates && rc == 0; i++) {
			if ((unsigned)q->aggregates[i] >= TS_SA_N_AGGR)
				rc = fail(msg, msg_len, "unknown aggregate%s", "");
			else
				out->aggr_mask |= 1u << q->aggregates[i];
		}
		if (rc == 0 && q->min_time > q->max_time)
			rc = fail(msg, msg_len, "min_time after max_time%s", "");
		if (rc == 0 && q->max_resolution_window < 0)
			rc = fail(msg, msg_len, "negative max_resolution_window%s", "");
		if (rc == 0)
			rc = copy_matchers(q->matchers, q->n_matchers, out, msg, msg_len);
		break;
	}
	case TS_SA_LABEL_NAMES: {
		Thanos__LabelNamesRequest *q = thanos__label_names_request__unpack(NULL, len, p);
		if (!q)
			return fail(msg, msg_len, "malformed %s", "LabelNamesRequest");
		out->ts__msg = q;
		out->mint = q->start;
		out->maxt = q->end;
		out->limit = q->limit;
		rc = copy_matchers(q->matchers, q->n_matchers, out, msg, msg_len);
		break;
	}
	case TS_SA_LABEL_VALUES: {
		Thanos__LabelValuesRequest *q = thanos__label_values_request__unpack(NULL, len, p);
		if (!q)
			return fail(msg, msg_len, "malformed %s", "LabelValuesRequest");
		out->ts__msg = q;
		out->mint = q->start;
		out->maxt = q->end;
		out->limit = q->limit;
		out->label = q->label ? q->label : "";
		if (!out->label[0])
			rc = fail(msg, msg_len, "LabelValues without a label name%s", "");
		if (rc == 0)
			rc = copy_matchers(q->matchers, q->n_matchers, out, msg, msg_len);
		break;
	}
	default: return fail(msg, msg_len, "unknown request kind%s", "");
	}
	if (rc == 0 && out->limit < 0)
		rc = fail(msg, msg_len, "negative limit%s", "");
	if (rc)
		ts_sa_request_fini(out);
	return rc;
}

void ts_sa_request_fini(struct ts_sa_request *r)
{
	if (r->ts__msg)
		protobuf_c_message_free_unpacked(r->ts__msg, NULL);
	ts_free(r->m);
	memset(r, 0, sizeof *r);
}

/* Packs a message at the end of b. */
static int pack(struct ts_pb_buf *b, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (ts_pb_buf_reserve(b, n))
		return -ENOMEM;
	b->len += protobuf_c_message_pack(m, b->data + b->len);
	return 0;
}

/* protobuf-c's structs hold non-const strings; nothing here writes through them. */
static char *unconst(const char *s)
{
	return (char *)(uintptr_t)s;
}

/* Labels as messages: lab[i] (n of them) and ptr[i] pointing at each; names and
 * values copied NUL-terminated into one block (*store). */
static int make_labels(const struct ts_label *l, size_t n, Thanos__Label **lab,
		       Thanos__Label ***ptr, char **store)
{
	size_t bytes = 1;
	for (size_t i = 0; i < n; i++)
		bytes += l[i].name_len + l[i].value_len + 2;
	*lab = ts_calloc(n ? n : 1, sizeof **lab);
	*ptr = ts_calloc(n ? n : 1, sizeof **ptr);
	*store = ts_malloc(bytes);
	if (!*lab || !*ptr || !*store)
		return -ENOMEM;
	char *s = *store;
	for (size_t i = 0; i < n; i++) {
		thanos__label__init(&(*lab)[i]);
		(*lab)[i].name = s;
		memcpy(s, l[i].name, l[i].name_len);
		s += l[i].name_len;
		*s++ = 0;
		(*lab)[i].value = s;
		memcpy(s, l[i].value, l[i].value_len);
		s += l[i].value_len;
		*s++ = 0;
		(*ptr)[i] = &(*lab)[i];
	}
	return 0;
}

int ts_sa_put_series(struct ts_pb_buf *b, const struct ts_label *l, size_t n_l,
		     const struct ts_sa_chunk *c, size_t n_c)
{
	Thanos__Label *lab = NULL, **lptr = NULL;
	char *store = NULL;
	Thanos__AggrChunk *ac = ts_calloc(n_c ? n_c : 1, sizeof *ac);
	Thanos__AggrChunk **acp = ts_calloc(n_c ? n_c : 1, sizeof *acp);
	Thanos__Chunk *ch = ts_calloc((n_c ? n_c : 1) * TS_SA_N_AGGR, sizeof *ch);
	int rc = -ENOMEM;
	if (!ac || !acp || !ch || make_labels(l, n_l, &lab, &lptr, &store))
		goto out;
	for (size_t i = 0; i < n_c; i++) {
		thanos__aggr_chunk__init(&ac[i]);
		ac[i].min_time = c[i].mint;
		ac[i].max_time = c[i].maxt;
		Thanos__Chunk **slot[TS_SA_N_AGGR] = { &ac[i].raw, &ac[i].count, &ac[i].sum,
						       &ac[i].min, &ac[i].max,	 &ac[i].counter };
		for (int a = 0; a < TS_SA_N_AGGR; a++) {
			if (!c[i].data[a])
				continue;
			Thanos__Chunk *k = &ch[i * TS_SA_N_AGGR + (size_t)a];
			thanos__chunk__init(k);
			k->type = THANOS__CHUNK__ENCODING__XOR;
			k->data.data = (uint8_t *)(uintptr_t)c[i].data[a];
			k->data.len = c[i].len[a];
			*slot[a] = k;
		}
		acp[i] = &ac[i];
	}
	Thanos__Series s;
	thanos__series__init(&s);
	s.n_labels = n_l;
	s.labels = lptr;
	s.n_chunks = n_c;
	s.chunks = acp;
	Thanos__SeriesResponse r;
	thanos__series_response__init(&r);
	r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES;
	r.series = &s;
	rc = pack(b, &r.base);
out:
	ts_free(lab);
	ts_free(lptr);
	ts_free(store);
	ts_free(ac);
	ts_free(acp);
	ts_free(ch);
	return rc;
}

int ts_sa_put_warning(struct ts_pb_buf *b, const char *w)
{
	Thanos__SeriesResponse r;
	thanos__series_response__init(&r);
	r.result_case = THANOS__SERIES_RESPONSE__RESULT_WARNING;
	r.warning = unconst(w);
	return pack(b, &r.base);
}

int ts_sa_put_strings(struct ts_pb_buf *b, const char *const *s, const size_t *s_len, size_t n)
{
	/* Both responses are {repeated string 1; ...}: written directly, since the
	 * engine's strings are not NUL-terminated. */
	for (size_t i = 0; i < n; i++)
		if (ts_pb_put_bytes_field(b, 1, s[i], s_len[i]))
			return -ENOMEM;
	return 0;
}

/* The external label set as protobuf-c messages. */
struct ext_msg {
	Thanos__Label *lab, **lptr;
	char *store;
};

static int ext_labels(const struct ts_sa_info *in, struct ext_msg *x)
{
	memset(x, 0, sizeof *x);
	return make_labels(in->ext, in->n_ext, &x->lab, &x->lptr, &x->store);
}

static void ext_free(struct ext_msg *x)
{
	ts_free(x->lab);
	ts_free(x->lptr);
	ts_free(x->store);
}

int ts_sa_put_info(struct ts_pb_buf *b, const struct ts_sa_info *in)
{
	struct ext_msg x;
	int rc = ext_labels(in, &x);
	if (rc)
		goto out;
	Thanos__ZLabelSet set;
	thanos__zlabel_set__init(&set);
	set.n_labels = in->n_ext;
	set.labels = x.lptr;
	Thanos__ZLabelSet *sets[1] = { &set };
	Thanos__Info__TSDBInfo tsdb;
	thanos__info__tsdbinfo__init(&tsdb);
	tsdb.labels = &set;
	tsdb.min_time = in->mint;
	tsdb.max_time = in->maxt;
	Thanos__Info__TSDBInfo *tsdbs[1] = { &tsdb };
	Thanos__Info__StoreInfo st;
	thanos__info__store_info__init(&st);
	st.min_time = in->mint;
	st.max_time = in->maxt;
	st.n_tsdb_infos = 1;
	st.tsdb_infos = tsdbs;
	Thanos__Info__InfoResponse r;
	thanos__info__info_response__init(&r);
	r.n_label_sets = 1;
	r.label_sets = sets;
	r.componenttype = unconst("store");
	r.store = &st;
	rc = pack(b, &r.base);
out:
	ext_free(&x);
	return rc;
}

int ts_sa_put_store_info(struct ts_pb_buf *b, const struct ts_sa_info *in)
{
	struct ext_msg x;
	int rc = ext_labels(in, &x);
	if (rc)
		goto out;
	Thanos__LabelSet set;
	thanos__label_set__init(&set);
	set.n_labels = in->n_ext;
	set.labels = x.lptr;
	Thanos__LabelSet *sets[1] = { &set };
	Thanos__InfoResponse r;
	thanos__info_response__init(&r);
	r.n_labels = in->n_ext;
	r.labels = x.lptr;
	r.min_time = in->mint;
	r.max_time = in->maxt;
	r.storetype = THANOS__STORE_TYPE__STORE;
	r.n_label_sets = 1;
	r.label_sets = sets;
	rc = pack(b, &r.base);
out:
	ext_free(&x);
	return rc;
}
