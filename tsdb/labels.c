/*
 * labels.c - validation, canonical ordering, packing and hashing of label sets, and the
 * label helpers every decoder shares (sorting by name, Prometheus' legacy name rules).
 * See labels.h for the packed layout. Nothing here allocates: ingest calls
 * canonicalisation and sorting once per series per request.
 */
#include "tsdb/labels.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/err.h"
#include "tsdb/utf8.h"

static int name_cmp(const struct ts_label *a, const struct ts_label *b)
{
	uint32_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = n ? memcmp(a->name, b->name, n) : 0;
	if (c)
		return c;
	return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static int fail(char *err, size_t err_len, int rc, const char *fmt, const struct ts_label *l)
{
	if (err && err_len) {
		int nl = l ? (int)(l->name_len > 64 ? 64 : l->name_len) : 0;
		snprintf(err, err_len, fmt, nl, l ? l->name : "");
	}
	return rc;
}

int ts_labels_canon(const struct ts_label *in, uint32_t n, const struct ts_labels_limits *lim,
		    struct ts_label *out, uint32_t *n_out, char *err, size_t err_len)
{
	uint32_t m = 0;
	int have_name = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct ts_label *l = &in[i];
		if (l->name_len == 0)
			return fail(err, err_len, TS_EINVALID, "empty label name%.*s", l);
		if (l->name_len > lim->max_name_len)
			return fail(err, err_len, TS_ELIMIT, "label name %.*s... too long", l);
		if (l->value_len > lim->max_value_len)
			return fail(err, err_len, TS_ELIMIT, "value of label %.*s too long", l);
		if (!ts_utf8_valid(l->value, l->value_len))
			return fail(err, err_len, TS_EINVALID,
				    "value of label %.*s is not valid UTF-8", l);
		if (!ts_utf8_valid(l->name, l->name_len) || memchr(l->name, 0, l->name_len))
			return fail(err, err_len, TS_EINVALID,
				    "label name %.*s is not valid UTF-8 or holds NUL", l);
		int is_name = l->name_len == 8 && memcmp(l->name, "__name__", 8) == 0;
		if (l->value_len == 0) {
			if (is_name)
				return fail(err, err_len, TS_EINVALID, "empty metric name%.*s",
					    NULL);
			continue; /* empty value == absent label, as in Prometheus */
		}
		have_name |= is_name;
		/* Insertion sort: senders almost always send sorted labels, so this is linear. */
		uint32_t j = m;
		while (j > 0 && name_cmp(&out[j - 1], l) > 0) {
			out[j] = out[j - 1];
			j--;
		}
		if (j > 0 && name_cmp(&out[j - 1], l) == 0)
			return fail(err, err_len, TS_EINVALID, "duplicate label name %.*s", l);
		out[j] = *l;
		m++;
	}
	if (!have_name)
		return fail(err, err_len, TS_EINVALID, "missing metric name (__name__)%.*s", NULL);
	if (m > lim->max_labels)
		return fail(err, err_len, TS_ELIMIT, "too many labels%.*s", NULL);
	*n_out = m;
	return 0;
}

static size_t uvarint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads a uvarint of at most 5 bytes (lengths fit 32 bits); 0 bytes consumed = error. */
static size_t get_uvarint32(const uint8_t *p, size_t len, uint32_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < len && i < 5; i++) {
		x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (x > UINT32_MAX)
				return 0;
			*v = (uint32_t)x;
			return i + 1;
		}
	}
	return 0;
}

size_t ts_labels_packed_len(const struct ts_label *labels, uint32_t n)
{
	size_t len = uvarint_len(n);
	for (uint32_t i = 0; i < n; i++)
		len += uvarint_len(labels[i].name_len) + labels[i].name_len +
		       uvarint_len(labels[i].value_len) + labels[i].value_len;
	return len;
}

size_t ts_labels_pack(const struct ts_label *labels, uint32_t n, uint8_t *out)
{
	size_t off = put_uvarint(out, n);
	for (uint32_t i = 0; i < n; i++) {
		off += put_uvarint(out + off, labels[i].name_len);
		memcpy(out + off, labels[i].name, labels[i].name_len);
		off += labels[i].name_len;
		off += put_uvarint(out + off, labels[i].value_len);
		memcpy(out + off, labels[i].value, labels[i].value_len);
		off += labels[i].value_len;
	}
	return off;
}

/* Reads the label at *off of a packed set into *l (pointers alias p) and moves *off past
 * it. Returns 0 or TS_ECORRUPT. */
static int next_label(const uint8_t *p, size_t len, size_t *off, struct ts_label *l)
{
	uint32_t nl, vl;
	size_t o = *off;
	size_t k = get_uvarint32(p + o, len - o, &nl);
	if (k == 0 || len - o - k < nl)
		return TS_CORRUPT();
	l->name = (const char *)p + o + k;
	l->name_len = nl;
	o += k + nl;
	k = get_uvarint32(p + o, len - o, &vl);
	if (k == 0 || len - o - k < vl)
		return TS_CORRUPT();
	l->value = (const char *)p + o + k;
	l->value_len = vl;
	*off = o + k + vl;
	return 0;
}

/* Walks a whole packed set, copying each label into out[0..cap) when out is not NULL.
 * Returns the count or TS_ECORRUPT. */
static int walk(const uint8_t *p, size_t len, struct ts_label *out, uint32_t cap)
{
	uint32_t n;
	size_t off = get_uvarint32(p, len, &n);
	if (off == 0)
		return TS_CORRUPT();
	if (out && n > cap)
		return TS_CORRUPT();
	for (uint32_t i = 0; i < n; i++) {
		struct ts_label l;
		int rc = next_label(p, len, &off, &l);
		if (rc != 0)
			return rc;
		if (out)
			out[i] = l;
	}
	if (off != len)
		return TS_CORRUPT();
	return (int)n;
}

int ts_labels_count(const uint8_t *p, size_t len)
{
	return walk(p, len, NULL, 0);
}

int ts_labels_unpack(const uint8_t *p, size_t len, struct ts_label *out, uint32_t cap, uint32_t *n)
{
	int rc = walk(p, len, out, cap);
	if (rc < 0)
		return rc;
	*n = (uint32_t)rc;
	return 0;
}

uint64_t ts_labels_hash(const uint8_t *p, size_t len)
{
	return XXH3_64bits(p, len);
}

int ts_labels_get(const uint8_t *p, size_t len, const char *name, const char **value,
		  uint32_t *value_len)
{
	uint32_t n;
	size_t off = get_uvarint32(p, len, &n);
	if (off == 0)
		return TS_CORRUPT();
	size_t want = strlen(name);
	for (uint32_t i = 0; i < n; i++) {
		struct ts_label l;
		int rc = next_label(p, len, &off, &l);
		if (rc != 0)
			return rc;
		if (l.name_len == want && memcmp(l.name, name, want) == 0) {
			*value = l.value;
			*value_len = l.value_len;
			return 1;
		}
	}
	return 0;
}

int ts_labels_cmp(const struct ts_label *a, uint32_t na, const struct ts_label *b, uint32_t nb)
{
	uint32_t n = na < nb ? na : nb;
	for (uint32_t i = 0; i < n; i++) {
		int c = name_cmp(&a[i], &b[i]);
		if (c)
			return c;
		uint32_t m = a[i].value_len < b[i].value_len ? a[i].value_len : b[i].value_len;
		c = memcmp(a[i].value, b[i].value, m);
		if (c)
			return c;
		if (a[i].value_len != b[i].value_len)
			return a[i].value_len < b[i].value_len ? -1 : 1;
	}
	return (na > nb) - (na < nb);
}

static int name_qcmp(const void *a, const void *b)
{
	return name_cmp(a, b);
}

int ts_labels_sort(struct ts_label *l, size_t n)
{
	if (n <= 16) {
		/* Labels usually arrive sorted or nearly so: insertion sort is linear then. */
		for (size_t i = 1; i < n; i++) {
			struct ts_label t = l[i];
			size_t j = i;
			while (j > 0 && name_cmp(&l[j - 1], &t) > 0) {
				l[j] = l[j - 1];
				j--;
			}
			l[j] = t;
		}
	} else {
		qsort(l, n, sizeof *l, name_qcmp);
	}
	for (size_t i = 1; i < n; i++)
		if (name_cmp(&l[i - 1], &l[i]) == 0)
			return i < INT_MAX ? (int)i : INT_MAX;
	return 0;
}

static bool legacy_name(const char *s, size_t len, bool colon)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

bool ts_labels_name_valid(const char *s, size_t len)
{
	return legacy_name(s, len, false);
}

bool ts_labels_metric_name_valid(const char *s, size_t len)
{
	return legacy_name(s, len, true);
}
