/*
 * labels.h - canonical label sets.
 *
 * A label set is canonical when its labels are sorted by name (bytewise), names are
 * unique and non-empty, no value is empty (Prometheus treats an empty value as an absent
 * label, so such labels are dropped), `__name__` is present, and values are valid UTF-8.
 * The packed form below is the identity of a series: two label sets are equal exactly
 * when their packed bytes are, so the registry hashes and compares packed bytes.
 *
 * Packed form (also stored in the index env's "series" table):
 *   | size    | field                                  |
 *   |---------|----------------------------------------|
 *   | uvarint | number of labels n                     |
 *   | n times | uvarint name_len, name, uvarint value_len, value |
 */
#ifndef TS_TSDB_LABELS_H
#define TS_TSDB_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

struct ts_labels_limits {
	uint32_t max_labels, max_name_len, max_value_len;
};

/* Validates `in` and writes the canonical order into out[0..*n_out) (out has room for n
 * labels; pointers alias the input). Returns 0, TS_EINVALID (missing __name__, empty
 * name, duplicate name, invalid UTF-8) or TS_ELIMIT, with a message in err (NUL-terminated,
 * err_len > 0). Allocates nothing. */
int ts_labels_canon(const struct ts_label *in, uint32_t n, const struct ts_labels_limits *lim,
		    struct ts_label *out, uint32_t *n_out, char *err, size_t err_len);

/* Bytes needed to pack labels[0..n). */
size_t ts_labels_packed_len(const struct ts_label *labels, uint32_t n);
/* Packs canonical labels into out (ts_labels_packed_len bytes). Returns bytes written. */
size_t ts_labels_pack(const struct ts_label *labels, uint32_t n, uint8_t *out);
/* Number of labels in a packed set, or TS_ECORRUPT. */
int ts_labels_count(const uint8_t *p, size_t len);
/* Unpacks into out[0..cap); pointers alias p. *n receives the count.
 * Returns 0, TS_ECORRUPT (malformed or more than cap labels). */
int ts_labels_unpack(const uint8_t *p, size_t len, struct ts_label *out, uint32_t cap, uint32_t *n);
/* Hash of packed bytes (XXH3 64). */
uint64_t ts_labels_hash(const uint8_t *p, size_t len);
/* Value of label `name` (NUL-terminated) in a packed set: 1 found (*value, *value_len
 * alias p), 0 absent, TS_ECORRUPT. */
int ts_labels_get(const uint8_t *p, size_t len, const char *name, const char **value,
		  uint32_t *value_len);
/* Compares two label arrays as Prometheus orders series (by name, then value, label by
 * label; a prefix sorts first). */
int ts_labels_cmp(const struct ts_label *a, uint32_t na, const struct ts_label *b, uint32_t nb);

/* Sorts l[0..n) in place by name (bytewise, a prefix first; values are not compared,
 * and the order of equal names is unspecified). Returns 0 when the names are unique,
 * else the index i > 0 of the first name equal to l[i-1]'s (a duplicate; saturates at
 * INT_MAX). Linear on input that is already sorted or nearly so, which is what
 * senders send; allocates nothing. For decoders, which sort a series' labels before
 * ts_labels_canon or their own checks. */
int ts_labels_sort(struct ts_label *l, size_t n);

/* Prometheus' legacy (pre-UTF-8) name rules, which the query language, remote write's
 * validation and the HTTP API apply:
 *   ts_labels_name_valid         label names    [a-zA-Z_][a-zA-Z0-9_]*
 *   ts_labels_metric_name_valid  metric names   [a-zA-Z_:][a-zA-Z0-9_:]*
 * s[0..len) need not be NUL-terminated; the empty string is invalid. Pure. */
bool ts_labels_name_valid(const char *s, size_t len);
bool ts_labels_metric_name_valid(const char *s, size_t len);

#endif
