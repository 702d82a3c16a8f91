/*
 * remote_write.c - Prometheus remote-write 1.0 and 2.0 request decoding, label rules,
 * content negotiation (API and ownership in remote_write.h).
 *
 * Invariants:
 *  - Every label/metadata string points into the decoded buffer (RW1 directly, RW2
 *    through the symbol table, whose entries themselves point into the buffer); an
 *    absent string field yields length 0 with a pointer still inside the buffer.
 *  - Arenas only grow; per series we record arena indices and turn them into pointers
 *    once decoding is over, because a growing arena may move.
 *  - A known field with the wrong wire type is corrupt (as gogo-protobuf, which
 *    Prometheus uses, treats it); unknown fields of every wire type are skipped.
 *  - Repeated uint32 refs are accepted packed (LEN) and unpacked (VARINT), mixed.
 *
 * Wire layout read here (field number: type, wire type):
 *
 *   | RW 1.0 prometheus.*   | fields                                                   |
 *   |-----------------------|----------------------------------------------------------|
 *   | WriteRequest          | 1 TimeSeries (LEN, rep.), 2 reserved, 3 MetricMetadata   |
 *   | TimeSeries            | 1 Label, 2 Sample, 3 Exemplar, 4 Histogram (LEN, rep.)   |
 *   | Label                 | 1 name string, 2 value string                            |
 *   | Sample                | 1 value double (I64), 2 timestamp int64 (VARINT)         |
 *   | Exemplar              | 1 Label (rep.), 2 value double, 3 timestamp int64        |
 *   | MetricMetadata        | 1 type enum, 2 metric_family_name, 4 help, 5 unit        |
 *
 *   | RW 2.0 io.prometheus.write.v2.* | fields                                         |
 *   |---------------------------------|------------------------------------------------|
 *   | Request               | 1-3 reserved, 4 symbols string (rep.), 5 TimeSeries (rep.) |
 *   | TimeSeries            | 1 labels_refs uint32 (rep., packed or not), 2 Sample,      |
 *   |                       | 3 Histogram, 4 Exemplar, 5 Metadata, 6 old created_ts (ign.)|
 *   | Sample                | 1 value double, 2 timestamp int64, 3 start_timestamp (ign.) |
 *   | Exemplar              | 1 labels_refs uint32 (rep.), 2 value double, 3 timestamp    |
 *   | Metadata              | 1 type enum, 3 help_ref uint32, 4 unit_ref uint32           |
 *
 * RW2 fields may come in any order, so symbols are collected in a first pass over the
 * top level and series decoded in a second; symbols[0] must be "".
 */
#include "wire/remote_write.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"
#include "wire/text.h"

/* Defaults for the per-request limits: far above what real senders put in one request
 * (Prometheus sends at most 2000 samples per request by default), low enough that a
 * hostile body of empty messages (2 bytes each) cannot make the arenas grow without
 * bound. Worst case with these defaults: series 256Ki x 96 B + samples 2Mi x 16 B +
 * labels 4Mi x 24 B + exemplars 256Ki x 48 B + symbols 4Mi x 16 B, about 300 MB, and
 * only for a body that large; handlers lower them in proportion to their body limit. */
#define DEF_MAX_SERIES (1u << 18)
#define DEF_MAX_SAMPLES (1u << 21)
#define DEF_MAX_LABELS (1u << 22)
#define DEF_MAX_EXEMPLARS (1u << 18)
#define DEF_MAX_SYMBOLS (1u << 22)
#define DEF_MAX_METADATA (1u << 18)

void ts_rw_request_init(struct ts_rw_request *r)
{
	memset(r, 0, sizeof *r);
	r->max_series = DEF_MAX_SERIES;
	r->max_samples = DEF_MAX_SAMPLES;
	r->max_labels = DEF_MAX_LABELS;
	r->max_exemplars = DEF_MAX_EXEMPLARS;
	r->max_symbols = DEF_MAX_SYMBOLS;
	r->max_metadata = DEF_MAX_METADATA;
}

void ts_rw_request_fini(struct ts_rw_request *r)
{
	if (!r)
		return;
	ts_free(r->series);
	ts_free(r->metadata);
	ts_free(r->symbols);
	ts_free(r->labels);
	ts_free(r->samples_arena);
	ts_free(r->exemplars_arena);
	ts_free(r->ex_labels);
	memset(r, 0, sizeof *r);
}

/* A reason in r->err; corruption is logged once, naming this file's line. */
#define FAIL(r, code, ...) TS_PB_FAILF((r)->err, sizeof(r)->err, (code), __VA_ARGS__)
/* Room for one more element of the request's array `arr` (capacity field `cap`, count
 * `n`, limit `max`), or the limit or out-of-memory reason in r->err. */
#define ROOM(r, arr, cap, n, max, what)                                                       \
	ts_pb_room((r)->err, sizeof(r)->err, (void **)&(r)->arr, &(r)->cap, (r)->n, (r)->max, \
		   sizeof *(r)->arr, (what))

static int oom(struct ts_rw_request *r)
{
	snprintf(r->err, sizeof r->err, "out of memory");
	return -ENOMEM;
}

static struct ts_label *push_label(struct ts_rw_request *r, int exemplar)
{
	struct ts_label **arr = exemplar ? &r->ex_labels : &r->labels;
	size_t *n = exemplar ? &r->n_ex_labels : &r->n_labels;
	size_t *cap = exemplar ? &r->ex_labels_cap : &r->labels_cap;
	if (*n >= *cap && ts_grow((void **)arr, cap, *n + 1, sizeof **arr) != 0)
		return NULL;
	return &(*arr)[(*n)++];
}

static int label_limit(struct ts_rw_request *r)
{
	if (r->n_labels + r->n_ex_labels >= r->max_labels)
		return FAIL(r, TS_ELIMIT, "more than %zu labels in one request", r->max_labels);
	return 0;
}

/* Reads the next tag of a message inside timeseries[si]; a bad one is corrupt, named
 * by `what` and the series. */
static inline int series_tag(struct ts_rw_request *r, struct ts_pb_reader *m, size_t si,
			     const char *what, uint32_t *f, enum ts_pb_wire *w)
{
	if (ts_pb_read_tag(m, f, w) == 0)
		return 0;
	return FAIL(r, TS_ECORRUPT, "timeseries[%zu]: bad %s at byte %zu", si, what,
		    ts_pb_offset(m));
}

/* ---- RW 1.0 ---- */

static int decode_label_v1(struct ts_rw_request *r, struct ts_pb_reader *rd, int exemplar,
			   size_t si)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = label_limit(r)) != 0)
		return rc;
	if ((rc = ts_pb_open(rd, &m, "label")) != 0)
		return rc;
	struct ts_label *l = push_label(r, exemplar);
	if (!l)
		return oom(r);
	/* Fast path for what every sender writes: name then value, each shorter than 128
	 * bytes, and nothing else. The bounds were checked by ts_pb_open: the two fields
	 * exactly fill the message. */
	const uint8_t *p = m.p;
	size_t mlen = (size_t)(m.end - m.p);
	if (mlen >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= mlen &&
	    p[2 + p[1]] == 0x12 && p[3 + p[1]] < 0x80 && (size_t)p[1] + p[3 + p[1]] + 4 == mlen) {
		l->name = (const char *)p + 2;
		l->name_len = p[1];
		l->value = (const char *)p + 4 + p[1];
		l->value_len = p[3 + p[1]];
		return 0;
	}
	/* Absent fields are "" with a pointer that still lies inside the input. */
	l->name = l->value = (const char *)m.p;
	l->name_len = l->value_len = 0;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		struct ts_pb_str s;
		if ((rc = series_tag(r, &m, si, "label tag", &f, &w)) != 0)
			return rc;
		if (f == 1 || f == 2) {
			if ((rc = ts_pb_want(&m, "label name/value", w, TS_PB_LEN)) != 0)
				return rc;
			if (ts_pb_read_str(&m, &s) != 0)
				return FAIL(
					r, TS_ECORRUPT,
					"timeseries[%zu]: label string overruns its message at byte %zu",
					si, ts_pb_offset(&m));
			if (f == 1) {
				l->name = s.p;
				l->name_len = s.len;
			} else {
				l->value = s.p;
				l->value_len = s.len;
			}
		} else if ((rc = ts_pb_skip_unknown(&m, "label", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* Sample (RW1 and RW2 share fields 1 and 2; RW2's 3 is skipped like any unknown). */
static int decode_sample(struct ts_rw_request *r, struct ts_pb_reader *rd, size_t si)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ROOM(r, samples_arena, samples_cap, n_samples, max_samples, "samples")) != 0 ||
	    (rc = ts_pb_open(rd, &m, "sample")) != 0)
		return rc;
	struct ts_sample *s = &r->samples_arena[r->n_samples++];
	s->t_ms = 0;
	s->v = 0;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = series_tag(r, &m, si, "sample tag", &f, &w)) != 0)
			return rc;
		if (f == 1) {
			if ((rc = ts_pb_get_double(&m, "sample value", w, &s->v)) != 0)
				return rc;
		} else if (f == 2) {
			if ((rc = ts_pb_get_int64(&m, "sample timestamp", w, &s->t_ms)) != 0)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(&m, "sample", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* Appends an empty exemplar, whose labels start at the next exemplar label. */
static int push_exemplar(struct ts_rw_request *r)
{
	int rc = ROOM(r, exemplars_arena, exemplars_cap, n_exemplars, max_exemplars, "exemplars");
	if (rc != 0)
		return rc;
	struct ts_rw_exemplar *e = &r->exemplars_arena[r->n_exemplars++];
	memset(e, 0, sizeof *e);
	e->label_off = (uint32_t)r->n_ex_labels;
	return 0;
}

/* Exemplar value (2) and timestamp (3), shared by both versions. 1 if handled. */
static int exemplar_scalar(struct ts_pb_reader *m, struct ts_rw_exemplar *e, uint32_t f,
			   enum ts_pb_wire w, int *rc)
{
	if (f == 2) {
		*rc = ts_pb_get_double(m, "exemplar value", w, &e->v);
		return 1;
	}
	if (f == 3) {
		*rc = ts_pb_get_int64(m, "exemplar timestamp", w, &e->t_ms);
		return 1;
	}
	return 0;
}

static int decode_exemplar_v1(struct ts_rw_request *r, struct ts_pb_reader *rd, size_t si)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(rd, &m, "exemplar")) != 0)
		return rc;
	if ((rc = push_exemplar(r)) != 0)
		return rc;
	size_t ei = r->n_exemplars - 1;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = series_tag(r, &m, si, "exemplar tag", &f, &w)) != 0)
			return rc;
		if (f == 1) {
			if ((rc = ts_pb_want(&m, "exemplar label", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_label_v1(r, &m, 1, si)) != 0)
				return rc;
			r->exemplars_arena[ei].n_labels++;
		} else if (exemplar_scalar(&m, &r->exemplars_arena[ei], f, w, &rc)) {
			if (rc)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(&m, "exemplar", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

/* Appends an empty series, whose labels, samples and exemplars start at the arenas'
 * next elements. */
static int push_series(struct ts_rw_request *r)
{
	int rc = ROOM(r, series, series_cap, n_series, max_series, "series");
	if (rc != 0)
		return rc;
	struct ts_rw_series *s = &r->series[r->n_series++];
	memset(s, 0, sizeof *s);
	s->label_off = (uint32_t)r->n_labels;
	s->sample_off = (uint32_t)r->n_samples;
	s->exemplar_off = (uint32_t)r->n_exemplars;
	return 0;
}

static int decode_series_v1(struct ts_rw_request *r, struct ts_pb_reader *rd)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(rd, &m, "timeseries")) != 0)
		return rc;
	if ((rc = push_series(r)) != 0)
		return rc;
	size_t si = r->n_series - 1;
	uint32_t n_hist = 0;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = series_tag(r, &m, si, "tag", &f, &w)) != 0)
			return rc;
		switch (f) {
		case 1:
			if ((rc = ts_pb_want(&m, "timeseries.labels", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_label_v1(r, &m, 0, si)) != 0)
				return rc;
			break;
		case 2:
			if ((rc = ts_pb_want(&m, "timeseries.samples", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_sample(r, &m, si)) != 0)
				return rc;
			break;
		case 3:
			if ((rc = ts_pb_want(&m, "timeseries.exemplars", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_exemplar_v1(r, &m, si)) != 0)
				return rc;
			break;
		case 4:
			/* Histograms are only counted; skipping checks their framing. */
			if ((rc = ts_pb_want(&m, "timeseries.histograms", w, TS_PB_LEN)) != 0 ||
			    (rc = ts_pb_skip_unknown(&m, "histogram", f, w)) != 0)
				return rc;
			n_hist++;
			break;
		default:
			if ((rc = ts_pb_skip_unknown(&m, "timeseries", f, w)) != 0)
				return rc;
		}
	}
	r->series[si].n_histograms = n_hist;
	r->n_histograms += n_hist;
	return 0;
}

static int decode_metadata_v1(struct ts_rw_request *r, struct ts_pb_reader *rd)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ROOM(r, metadata, metadata_cap, n_metadata, max_metadata, "metadata entries")) !=
		    0 ||
	    (rc = ts_pb_open(rd, &m, "metadata")) != 0)
		return rc;
	size_t mi = r->n_metadata++;
	struct ts_rw_metadata *md = &r->metadata[mi];
	struct ts_pb_str empty = { (const char *)m.p, 0 };
	md->type = 0;
	md->family = md->help = md->unit = empty;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		uint64_t v;
		if (ts_pb_read_tag(&m, &f, &w) != 0)
			return FAIL(r, TS_ECORRUPT, "metadata[%zu]: bad tag at byte %zu", mi,
				    ts_pb_offset(&m));
		if (f == 1) {
			if ((rc = ts_pb_get_varint(&m, "metadata.type", w, &v)) != 0)
				return rc;
			md->type = (uint32_t)v; /* int32 enum: keep the low 32 bits */
		} else if (f == 2 || f == 4 || f == 5) {
			struct ts_pb_str *dst = f == 2	 ? &md->family
						: f == 4 ? &md->help
							 : &md->unit;
			if ((rc = ts_pb_get_str(&m, "metadata string", w, dst)) != 0)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(&m, "metadata", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

static int decode_v1(struct ts_rw_request *r, struct ts_pb_reader *rd)
{
	int rc, v2_fields = 0;
	while (!ts_pb_eof(rd)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = ts_pb_next(rd, "WriteRequest", &f, &w)) != 0)
			return rc;
		if (f == 1) {
			if ((rc = ts_pb_want(rd, "WriteRequest.timeseries", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_series_v1(r, rd)) != 0)
				return rc;
		} else if (f == 3) {
			if ((rc = ts_pb_want(rd, "WriteRequest.metadata", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_metadata_v1(r, rd)) != 0)
				return rc;
		} else {
			/* 4 and 5 are RW 2.0's symbols and timeseries; 1.0 never had them. */
			v2_fields += (f == 4 || f == 5) && w == TS_PB_LEN;
			if ((rc = ts_pb_skip_unknown(rd, "WriteRequest", f, w)) != 0)
				return rc;
		}
	}
	/* Skipping them would store nothing and still answer 204: the sender would never
	 * learn that its data was dropped. */
	if (v2_fields && r->n_series == 0)
		return FAIL(
			r, TS_EINVALID,
			"the body is a remote write 2.0 request (symbols and timeseries in "
			"fields 4 and 5) but was sent as remote write 1.0; send it with "
			"Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request");
	return 0;
}

/* ---- RW 2.0 ---- */

static int collect_symbols(struct ts_rw_request *r, struct ts_pb_reader rd)
{
	int rc;
	while (!ts_pb_eof(&rd)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = ts_pb_next(&rd, "Request", &f, &w)) != 0)
			return rc;
		if (f != 4) {
			if ((rc = ts_pb_skip_unknown(&rd, "Request", f, w)) != 0)
				return rc;
			continue;
		}
		if ((rc = ROOM(r, symbols, symbols_cap, n_symbols, max_symbols, "symbols")) != 0 ||
		    (rc = ts_pb_get_str(&rd, "Request.symbols", w, &r->symbols[r->n_symbols])) != 0)
			return rc;
		r->n_symbols++;
	}
	if (r->n_symbols > 0 && r->symbols[0].len != 0)
		return FAIL(r, TS_ECORRUPT, "symbols[0] must be the empty string");
	return 0;
}

static int symbol(struct ts_rw_request *r, const struct ts_pb_reader *m, uint64_t ref,
		  const char *what, size_t si, struct ts_pb_str *out)
{
	if (ref >= r->n_symbols)
		return FAIL(r, TS_ECORRUPT,
			    "timeseries[%zu]: %s ref %llu out of range (%zu symbols) at byte %zu",
			    si, what, (unsigned long long)ref, r->n_symbols, ts_pb_offset(m));
	*out = r->symbols[ref];
	return 0;
}

/* State of a name/value ref stream that may arrive in several packed or unpacked
 * pieces. */
struct refs {
	int exemplar;
	int have_name;
	struct ts_pb_str name;
	uint32_t n_labels;
};

static int push_ref(struct ts_rw_request *r, const struct ts_pb_reader *m, struct refs *st,
		    uint64_t ref, size_t si)
{
	struct ts_pb_str s;
	int rc;
	if ((rc = symbol(r, m, ref, "labels_refs", si, &s)) != 0)
		return rc;
	if (!st->have_name) {
		st->name = s;
		st->have_name = 1;
		return 0;
	}
	if ((rc = label_limit(r)) != 0)
		return rc;
	struct ts_label *l = push_label(r, st->exemplar);
	if (!l)
		return oom(r);
	l->name = st->name.p;
	l->name_len = st->name.len;
	l->value = s.p;
	l->value_len = s.len;
	st->have_name = 0;
	st->n_labels++;
	return 0;
}

static int decode_refs(struct ts_rw_request *r, struct ts_pb_reader *m, enum ts_pb_wire w,
		       struct refs *st, size_t si)
{
	uint64_t ref;
	int rc;
	if (w == TS_PB_VARINT) {
		if (ts_pb_read_varint(m, &ref) != 0)
			return ts_pb_truncated(m, "labels_refs");
		return push_ref(r, m, st, ref, si);
	}
	if (w != TS_PB_LEN)
		return ts_pb_want(m, "labels_refs", w, TS_PB_LEN);
	struct ts_pb_reader p;
	if ((rc = ts_pb_open(m, &p, "packed labels_refs")) != 0)
		return rc;
	while (!ts_pb_eof(&p)) {
		if (ts_pb_read_varint(&p, &ref) != 0)
			return ts_pb_truncated(&p, "packed labels_refs");
		if ((rc = push_ref(r, &p, st, ref, si)) != 0)
			return rc;
	}
	return 0;
}

static int decode_exemplar_v2(struct ts_rw_request *r, struct ts_pb_reader *rd, size_t si)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(rd, &m, "exemplar")) != 0)
		return rc;
	if ((rc = push_exemplar(r)) != 0)
		return rc;
	size_t ei = r->n_exemplars - 1;
	struct refs st = { .exemplar = 1 };
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = series_tag(r, &m, si, "exemplar tag", &f, &w)) != 0)
			return rc;
		if (f == 1) {
			if ((rc = decode_refs(r, &m, w, &st, si)) != 0)
				return rc;
		} else if (exemplar_scalar(&m, &r->exemplars_arena[ei], f, w, &rc)) {
			if (rc)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(&m, "exemplar", f, w)) != 0) {
			return rc;
		}
	}
	if (st.have_name)
		return FAIL(r, TS_ECORRUPT, "timeseries[%zu]: exemplar labels_refs has odd length",
			    si);
	r->exemplars_arena[ei].n_labels = st.n_labels;
	return 0;
}

static int decode_metadata_v2(struct ts_rw_request *r, struct ts_pb_reader *rd,
			      struct ts_rw_series *s, size_t si)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(rd, &m, "metadata")) != 0)
		return rc;
	s->has_metadata = 1;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		uint64_t v;
		if ((rc = series_tag(r, &m, si, "metadata tag", &f, &w)) != 0)
			return rc;
		if (f != 1 && f != 3 && f != 4) {
			if ((rc = ts_pb_skip_unknown(&m, "metadata", f, w)) != 0)
				return rc;
			continue;
		}
		if ((rc = ts_pb_get_varint(&m, "metadata field", w, &v)) != 0)
			return rc;
		if (f == 1)
			s->type = (uint32_t)v;
		else if ((rc = symbol(r, &m, v, f == 3 ? "help_ref" : "unit_ref", si,
				      f == 3 ? &s->help : &s->unit)) != 0)
			return rc;
	}
	return 0;
}

static int decode_series_v2(struct ts_rw_request *r, struct ts_pb_reader *rd)
{
	struct ts_pb_reader m;
	int rc;
	if ((rc = ts_pb_open(rd, &m, "timeseries")) != 0)
		return rc;
	if ((rc = push_series(r)) != 0)
		return rc;
	size_t si = r->n_series - 1;
	struct refs st = { .exemplar = 0 };
	uint32_t n_hist = 0;
	/* A 0 ref is "": metadata strings default to the first symbol. */
	struct ts_pb_str empty = { (const char *)m.p, 0 };
	r->series[si].help = r->series[si].unit = empty;
	while (!ts_pb_eof(&m)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = series_tag(r, &m, si, "tag", &f, &w)) != 0)
			return rc;
		switch (f) {
		case 1:
			if ((rc = decode_refs(r, &m, w, &st, si)) != 0)
				return rc;
			break;
		case 2:
			if ((rc = ts_pb_want(&m, "timeseries.samples", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_sample(r, &m, si)) != 0)
				return rc;
			break;
		case 3:
			if ((rc = ts_pb_want(&m, "timeseries.histograms", w, TS_PB_LEN)) != 0 ||
			    (rc = ts_pb_skip_unknown(&m, "histogram", f, w)) != 0)
				return rc;
			n_hist++;
			break;
		case 4:
			if ((rc = ts_pb_want(&m, "timeseries.exemplars", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_exemplar_v2(r, &m, si)) != 0)
				return rc;
			break;
		case 5:
			if ((rc = ts_pb_want(&m, "timeseries.metadata", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_metadata_v2(r, &m, &r->series[si], si)) != 0)
				return rc;
			break;
		default: /* includes 6, the created timestamp of early 2.0 senders */
			if ((rc = ts_pb_skip_unknown(&m, "timeseries", f, w)) != 0)
				return rc;
		}
	}
	if (st.have_name)
		return FAIL(r, TS_ECORRUPT, "timeseries[%zu]: labels_refs has odd length", si);
	r->series[si].n_histograms = n_hist;
	r->n_histograms += n_hist;
	return 0;
}

static int decode_v2(struct ts_rw_request *r, struct ts_pb_reader *rd)
{
	int rc;
	if ((rc = collect_symbols(r, *rd)) != 0)
		return rc;
	while (!ts_pb_eof(rd)) {
		uint32_t f;
		enum ts_pb_wire w;
		if ((rc = ts_pb_next(rd, "Request", &f, &w)) != 0)
			return rc;
		if (f == 5) {
			if ((rc = ts_pb_want(rd, "Request.timeseries", w, TS_PB_LEN)) != 0 ||
			    (rc = decode_series_v2(r, rd)) != 0)
				return rc;
		} else if ((rc = ts_pb_skip_unknown(rd, "Request", f, w)) != 0) {
			return rc;
		}
	}
	return 0;
}

static void reset(struct ts_rw_request *r, int clear_err)
{
	r->n_series = r->n_metadata = r->n_samples = r->n_histograms = r->n_exemplars = 0;
	r->n_symbols = r->n_labels = r->n_ex_labels = 0;
	if (clear_err)
		r->err[0] = '\0';
}

int ts_rw_decode(struct ts_rw_request *r, enum ts_rw_version v, const uint8_t *buf, size_t len)
{
	struct ts_pb_reader rd;
	int rc;

	reset(r, 1);
	r->version = v;
	/* Arena indices are 32-bit: no limit may let a count pass 2^32-1. */
	size_t *lims[] = { &r->max_series,    &r->max_samples, &r->max_labels,
			   &r->max_exemplars, &r->max_symbols, &r->max_metadata };
	for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++)
		if (*lims[i] > UINT32_MAX)
			*lims[i] = UINT32_MAX;
	if (!buf && len)
		return FAIL(r, TS_EINVALID, "no buffer");
	ts_pb_reader_init(&rd, buf, len);
	ts_pb_reader_report_to(&rd, r->err, sizeof r->err);
	if (v == TS_RW_V1)
		rc = decode_v1(r, &rd);
	else if (v == TS_RW_V2)
		rc = decode_v2(r, &rd);
	else
		rc = FAIL(r, TS_EINVALID, "unknown remote-write version %d", (int)v);
	if (rc) {
		reset(r, 0);
		return rc;
	}
	/* Arenas are final now: turn indices into pointers. Series own consecutive runs. */
	for (size_t i = 0; i < r->n_series; i++) {
		struct ts_rw_series *s = &r->series[i];
		size_t next_l = i + 1 < r->n_series ? r->series[i + 1].label_off : r->n_labels;
		size_t next_s = i + 1 < r->n_series ? r->series[i + 1].sample_off : r->n_samples;
		size_t next_e = i + 1 < r->n_series ? r->series[i + 1].exemplar_off
						    : r->n_exemplars;
		s->n_labels = (uint32_t)(next_l - s->label_off);
		s->n_samples = (uint32_t)(next_s - s->sample_off);
		s->n_exemplars = (uint32_t)(next_e - s->exemplar_off);
		s->labels = r->labels ? r->labels + s->label_off : NULL;
		s->samples = r->samples_arena ? r->samples_arena + s->sample_off : NULL;
		s->exemplars = r->exemplars_arena ? r->exemplars_arena + s->exemplar_off : NULL;
	}
	for (size_t i = 0; i < r->n_exemplars; i++) {
		struct ts_rw_exemplar *e = &r->exemplars_arena[i];
		e->labels = r->ex_labels ? r->ex_labels + e->label_off : NULL;
	}
	return 0;
}

/* ---- label rules ---- */

const char *ts_rw_reason_name(enum ts_rw_reason reason)
{
	switch (reason) {
	case TS_RW_VALID: return "valid";
	case TS_RW_NO_METRIC_NAME: return "no_metric_name";
	case TS_RW_BAD_METRIC_NAME: return "bad_metric_name";
	case TS_RW_BAD_LABEL_NAME: return "bad_label_name";
	case TS_RW_UNSORTED_LABELS: return "unsorted_labels";
	case TS_RW_DUPLICATE_LABEL: return "duplicate_label";
	case TS_RW_BAD_UTF8: return "bad_utf8";
	case TS_RW_TOO_MANY_LABELS: return "too_many_labels";
	case TS_RW_NAME_TOO_LONG: return "label_name_too_long";
	case TS_RW_VALUE_TOO_LONG: return "label_value_too_long";
	}
	return "unknown";
}

static int bytes_cmp(const char *a, uint32_t an, const char *b, uint32_t bn)
{
	uint32_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

/* Appends s to msg shown printably, truncated with "..." when msg is full. */
static void put_escaped(char *msg, size_t cap, size_t *pos, const char *s, uint32_t n)
{
	*pos += ts_text_escape(msg + *pos, cap - *pos, s, n, SIZE_MAX);
}

static void put_str(char *msg, size_t cap, size_t *pos, const char *s)
{
	int n = snprintf(msg + *pos, cap - *pos, "%s", s);
	if (n > 0)
		*pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

static const char name_label[] = "__name__";

static int invalid(struct ts_rw_series *s, enum ts_rw_reason why, const char *what,
		   const struct ts_label *l, int code, enum ts_rw_reason *reason, char *msg,
		   size_t cap)
{
	if (reason)
		*reason = why;
	if (!msg || cap < 16)
		return code;
	size_t pos = 0;
	msg[0] = '\0';
	put_str(msg, cap, &pos, what);
	if (l) {
		put_str(msg, cap, &pos, " \"");
		put_escaped(msg, cap, &pos, l->name, l->name_len);
		put_str(msg, cap, &pos, "\"");
	}
	for (uint32_t i = 0; i < s->n_labels; i++) {
		const struct ts_label *m = &s->labels[i];
		if (m->name_len == sizeof name_label - 1 &&
		    !memcmp(m->name, name_label, sizeof name_label - 1)) {
			put_str(msg, cap, &pos, " in series \"");
			put_escaped(msg, cap, &pos, m->value, m->value_len);
			put_str(msg, cap, &pos, "\"");
			break;
		}
	}
	return code;
}

int ts_rw_validate_series(struct ts_rw_series *s, const struct ts_rw_limits *lim,
			  enum ts_rw_reason *reason, char *msg, size_t msg_cap)
{
	static const struct ts_rw_limits none = { 0, 0, 0 };
	if (!lim)
		lim = &none;
	if (reason)
		*reason = TS_RW_VALID;
	if (msg && msg_cap)
		msg[0] = '\0';

	/* Prometheus' head drops empty-valued labels before anything else (an empty value
	 * is how the data model spells "no such label"), so a sender's {foo=""} is fine. */
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n_labels; i++)
		if (s->labels[i].value_len != 0)
			s->labels[n++] = s->labels[i];
	s->n_labels = n;

	if (lim->max_labels && n > lim->max_labels)
		return invalid(s, TS_RW_TOO_MANY_LABELS, "too many labels", NULL, TS_ELIMIT, reason,
			       msg, msg_cap);
	int have_name = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct ts_label *l = &s->labels[i];
		if (lim->max_name_len && l->name_len > lim->max_name_len)
			return invalid(s, TS_RW_NAME_TOO_LONG, "label name too long:", l, TS_ELIMIT,
				       reason, msg, msg_cap);
		if (lim->max_value_len && l->value_len > lim->max_value_len)
			return invalid(s, TS_RW_VALUE_TOO_LONG, "label value too long for", l,
				       TS_ELIMIT, reason, msg, msg_cap);
		if (!ts_labels_name_valid(l->name, l->name_len))
			return invalid(s, TS_RW_BAD_LABEL_NAME, "invalid label name", l,
				       TS_EINVALID, reason, msg, msg_cap);
		if (i > 0) {
			const struct ts_label *p = &s->labels[i - 1];
			int c = bytes_cmp(p->name, p->name_len, l->name, l->name_len);
			if (c == 0)
				return invalid(s, TS_RW_DUPLICATE_LABEL, "duplicate label name", l,
					       TS_EINVALID, reason, msg, msg_cap);
			if (c > 0)
				return invalid(s, TS_RW_UNSORTED_LABELS, "labels not sorted at", l,
					       TS_EINVALID, reason, msg, msg_cap);
		}
		if (l->name_len == sizeof name_label - 1 &&
		    !memcmp(l->name, name_label, sizeof name_label - 1)) {
			have_name = 1;
			if (!ts_labels_metric_name_valid(l->value, l->value_len))
				return invalid(s, TS_RW_BAD_METRIC_NAME, "invalid metric name",
					       NULL, TS_EINVALID, reason, msg, msg_cap);
		} else if (!ts_utf8_valid(l->value, l->value_len)) {
			return invalid(s, TS_RW_BAD_UTF8, "invalid UTF-8 in the value of label", l,
				       TS_EINVALID, reason, msg, msg_cap);
		}
	}
	if (!have_name)
		return invalid(s, TS_RW_NO_METRIC_NAME, "missing metric name (__name__ label)",
			       NULL, TS_EINVALID, reason, msg, msg_cap);
	return 0;
}

/* ---- negotiation ---- */

static const char ct_proto[] = "application/x-protobuf";
static const char proto_v1[] = "prometheus.WriteRequest";
static const char proto_v2[] = "io.prometheus.write.v2.Request";

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 tchar. */
static int is_tchar(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int ieq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_ows(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_ows((*s)[*n - 1]))
		(*n)--;
}

static int reject(char *msg, size_t cap, const char *why, const char *v, size_t n)
{
	if (msg && cap) {
		size_t pos = 0;
		msg[0] = '\0';
		put_str(msg, cap, &pos, why);
		if (v) {
			put_str(msg, cap, &pos, ": \"");
			put_escaped(msg, cap, &pos, v, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
			put_str(msg, cap, &pos, "\"");
		}
	}
	return 415;
}

int ts_rw_negotiate(const char *content_type, size_t ct_len, const char *content_encoding,
		    size_t ce_len, enum ts_rw_version *version, char *msg, size_t msg_cap)
{
	if (msg && msg_cap)
		msg[0] = '\0';
	if (content_encoding) {
		const char *e = content_encoding;
		size_t n = ce_len;
		trim(&e, &n);
		if (n && !ieq(e, n, "snappy"))
			return reject(msg, msg_cap, "unsupported Content-Encoding (only snappy)",
				      content_encoding, ce_len);
	}
	*version = TS_RW_V1;
	if (!content_type)
		return 0;
	const char *s = content_type, *end = content_type + ct_len;
	while (s < end && is_ows(*s))
		s++;
	if (s == end)
		return 0;
	const char *mt = s;
	while (s < end && *s != ';' && !is_ows(*s))
		s++;
	if (!ieq(mt, (size_t)(s - mt), ct_proto))
		return reject(msg, msg_cap, "unsupported Content-Type", content_type, ct_len);
	/* parameters: *( OWS ";" OWS [ name "=" value ] ) */
	for (;;) {
		while (s < end && is_ows(*s))
			s++;
		if (s == end)
			return 0;
		if (*s != ';')
			return reject(msg, msg_cap, "malformed Content-Type", content_type, ct_len);
		s++;
		while (s < end && is_ows(*s))
			s++;
		if (s == end || *s == ';')
			continue;
		const char *pn = s;
		while (s < end && is_tchar(*s))
			s++;
		size_t pn_len = (size_t)(s - pn);
		/* Tolerate OWS around '=' although RFC 9110 has none: senders do it. */
		while (s < end && is_ows(*s))
			s++;
		if (pn_len == 0 || s == end || *s != '=')
			return reject(msg, msg_cap, "malformed Content-Type parameter",
				      content_type, ct_len);
		s++;
		while (s < end && is_ows(*s))
			s++;
		char val[64];
		size_t vn = 0;
		int too_long = 0;
		if (s < end && *s == '"') {
			s++;
			for (;;) {
				if (s == end)
					return reject(msg, msg_cap,
						      "unterminated quoted string in Content-Type",
						      content_type, ct_len);
				char c = *s++;
				if (c == '"')
					break;
				if (c == '\\') {
					if (s == end)
						return reject(msg, msg_cap,
							      "malformed Content-Type",
							      content_type, ct_len);
					c = *s++;
				}
				if (vn < sizeof val)
					val[vn++] = c;
				else
					too_long = 1;
			}
		} else {
			while (s < end && is_tchar(*s)) {
				if (vn < sizeof val)
					val[vn++] = *s;
				else
					too_long = 1;
				s++;
			}
			if (vn == 0)
				return reject(msg, msg_cap, "malformed Content-Type parameter",
					      content_type, ct_len);
		}
		if (!ieq(pn, pn_len, "proto"))
			continue;
		if (!too_long && vn == sizeof proto_v1 - 1 && !memcmp(val, proto_v1, vn)) {
			*version = TS_RW_V1;
			return 0;
		}
		if (!too_long && vn == sizeof proto_v2 - 1 && !memcmp(val, proto_v2, vn)) {
			*version = TS_RW_V2;
			return 0;
		}
		return reject(msg, msg_cap, "unsupported remote-write proto message", content_type,
			      ct_len);
	}
}
