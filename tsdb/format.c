/*
 * format.c - the few on-disk facts that are code rather than constants: partition
 * directory names, partition start computation, postings keys and the structural check
 * of a head snapshot. Layouts: format.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/err.h"
#include "tsdb/format.h"

static int has_suffix(const char *name, const char *suffix)
{
	size_t nl = strlen(name), sl = strlen(suffix);
	return nl > sl && strcmp(name + nl - sl, suffix) == 0;
}

enum ts_format_part_dir ts_format_part_dir_kind(const char *name, int64_t *start, int64_t *end)
{
	if (has_suffix(name, TS_FORMAT_PART_COMPACT_SUFFIX))
		return TS_FORMAT_PART_DIR_COMPACT;
	if (has_suffix(name, TS_FORMAT_PART_OLD_SUFFIX))
		return TS_FORMAT_PART_DIR_OLD;
	/* Only the exact form ts_format_part_name writes: parsed, printed back and compared,
	 * so "+1_2", " 1_2", "01_2" or an out-of-range number are not a partition (the
	 * engine derives a partition's path from its range). */
	int64_t s, e;
	char *p, *q;
	errno = 0;
	s = strtoll(name, &p, 10);
	if (errno || p == name || *p != '_')
		return TS_FORMAT_PART_DIR_OTHER;
	e = strtoll(p + 1, &q, 10);
	if (errno || q == p + 1 || *q || e <= s)
		return TS_FORMAT_PART_DIR_OTHER;
	char canon[TS_FORMAT_PART_NAME_MAX];
	if (ts_format_part_name(canon, sizeof canon, s, e) < 0 || strcmp(canon, name) != 0)
		return TS_FORMAT_PART_DIR_OTHER;
	if (start)
		*start = s;
	if (end)
		*end = e;
	return TS_FORMAT_PART_DIR_LIVE;
}

int ts_format_part_name(char *out, size_t cap, int64_t start, int64_t end)
{
	int n = snprintf(out, cap, "%" PRId64 "_%" PRId64, start, end);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int64_t ts_format_partition_start(int64_t t, int64_t width_ms)
{
	int64_t q = t / width_ms;
	if (t % width_ms < 0)
		q--; /* floor division for negative timestamps */
	return q * width_ms;
}

size_t ts_format_posting_key(uint8_t *key, const char *name, size_t nl, const char *value,
			     size_t vl)
{
	if (vl > TS_FORMAT_POSTING_VALUE_MAX)
		vl = TS_FORMAT_POSTING_VALUE_MAX;
	memcpy(key, name, nl);
	key[nl] = 0;
	memcpy(key + nl + 1, value, vl);
	return nl + 1 + vl;
}

int ts_format_snap_parse(const uint8_t *p, size_t len, struct ts_format_snap *out)
{
	const size_t fixed = TS_FORMAT_SNAP_FIXED;
	if (len == TS_FORMAT_SNAP_SHORT_LEN &&
	    p[TS_FORMAT_SNAP_OFF_VERSION] == TS_FORMAT_SNAP_VERSION_SHORT) {
		memset(out, 0, sizeof *out);
		out->last_lsn = ts_format_get_le64(p + 1);
		out->max_t = (int64_t)ts_format_get_le64(p + 9);
		out->head_min_t = out->enc_t = out->max_t;
		out->ooo = p + len;
		return 0;
	}
	if (len < fixed + 4 || p[TS_FORMAT_SNAP_OFF_VERSION] != TS_FORMAT_SNAP_VERSION)
		return TS_CORRUPT();
	uint32_t chunk = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN);
	if (chunk > TS_FORMAT_SNAP_MAX_CHUNK || len < fixed + chunk + 4)
		return TS_CORRUPT();
	uint32_t m = ts_format_get_le32(p + fixed + chunk);
	if (m > TS_FORMAT_SNAP_MAX_OOO ||
	    len != fixed + chunk + 4 + (size_t)m * TS_FORMAT_SNAP_OOO_SAMPLE_LEN)
		return TS_CORRUPT();
	uint16_t n = (uint16_t)(p[TS_FORMAT_SNAP_OFF_N] | p[TS_FORMAT_SNAP_OFF_N + 1] << 8);
	uint32_t nbits = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_NBITS);
	uint8_t pad = p[TS_FORMAT_SNAP_OFF_TAIL_PAD];
	if ((n == 0) != (chunk == 0) || pad > 1 || (chunk && (nbits + 7) / 8 + pad != chunk))
		return TS_CORRUPT();
	const uint8_t *q = p + fixed + chunk + 4;
	for (uint32_t i = 1; i < m; i++)
		if ((int64_t)ts_format_get_le64(q + 16 * (size_t)i) <=
		    (int64_t)ts_format_get_le64(q + 16 * (size_t)(i - 1)))
			return TS_CORRUPT();
	out->last_lsn = ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_LAST_LSN);
	out->head_min_t = (int64_t)ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_HEAD_MIN_T);
	out->max_t = (int64_t)ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_MAX_T);
	out->nbits = nbits;
	out->n = n;
	out->leading = p[TS_FORMAT_SNAP_OFF_LEADING];
	out->trailing = p[TS_FORMAT_SNAP_OFF_TRAILING];
	out->tail_pad = pad;
	out->enc_t = (int64_t)ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_ENC_T);
	out->enc_t_delta = (int64_t)ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_ENC_T_DELTA);
	out->enc_v = ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_ENC_V);
	out->chunk = chunk ? p + fixed : NULL;
	out->chunk_len = chunk;
	out->ooo = q;
	out->ooo_n = m;
	return 0;
}

void ts_format_group_it_init(struct ts_format_group_it *it, const uint8_t *raw, size_t len)
{
	memset(it, 0, sizeof *it);
	it->raw = raw;
	it->len = len;
	it->last_slot = -1;
}

int ts_format_group_next(struct ts_format_group_it *it)
{
	if (it->pos == it->len)
		return 0;
	if (it->len - it->pos < TS_FORMAT_GROUP_ENTRY_HDR)
		return TS_CORRUPT();
	const uint8_t *p = it->raw + it->pos;
	uint32_t l = ts_format_get_le32(p + 1);
	if ((int)p[0] <= it->last_slot || l > it->len - it->pos - TS_FORMAT_GROUP_ENTRY_HDR)
		return TS_CORRUPT();
	it->slot = p[0];
	it->last_slot = p[0];
	it->entry = p + TS_FORMAT_GROUP_ENTRY_HDR;
	it->entry_len = l;
	it->pos += TS_FORMAT_GROUP_ENTRY_HDR + (size_t)l;
	return 1;
}
