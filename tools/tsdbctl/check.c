/*
 * check.c - what is wrong with one on-disk record, as pure functions from bytes to a
 * reason: a label set, an XOR payload, a chunk record, a head snapshot, a metadata row.
 * They know the layouts (tsdb/format.h, storage/chunk.h, storage/xor.h) and nothing of
 * where the record came from; verify.c walks a data directory and says where. Each
 * returns NULL when the record is fine, else a reason for a human: a constant string or
 * the caller's buffer `why` (why_len bytes). The reasons are specific (which field, which
 * bound); a snapshot must also pass the engine's own ts_format_snap_parse, and verify.c
 * passes chunk records to ts_chunk_decode too, so the tool cannot accept what the
 * engine would refuse.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tsdbctl.h"
#include "storage/chunk.h"
#include "storage/crc32c.h"
#include "storage/xor.h"
#include "tsdb/format.h"
#include "tsdb/labels.h"
#include "tsdb/utf8.h"

/* Checks the canonical form of a label set; returns a reason or NULL. */
const char *ctl_labels_problem(const struct ts_label *l, uint32_t n)
{
	int has_name = 0;
	if (n == 0)
		return "no labels";
	for (uint32_t i = 0; i < n; i++) {
		if (l[i].name_len == 0)
			return "a label with an empty name";
		if (memchr(l[i].name, 0, l[i].name_len))
			return "a label name with a zero byte";
		if (l[i].value_len == 0)
			return "a label with an empty value";
		if (!ts_utf8_valid(l[i].value, l[i].value_len))
			return "a label value that is not UTF-8";
		if (i) {
			size_t a = l[i - 1].name_len, b = l[i].name_len;
			int c = memcmp(l[i - 1].name, l[i].name, a < b ? a : b);
			if (c > 0 || (c == 0 && a >= b))
				return "labels not sorted by name or a name repeated";
		}
		if (l[i].name_len == 8 && memcmp(l[i].name, "__name__", 8) == 0)
			has_name = 1;
	}
	return has_name ? NULL : "no __name__ label";
}

/* Decodes a whole XOR chunk: count, first/last timestamps, order. NULL when fine. */
const char *ctl_xor_problem(const uint8_t *p, size_t len, uint32_t n_want, int64_t min_t,
			    int64_t max_t, int check_bounds, char *why, size_t why_len)
{
	struct ts_xor_it it;
	if (ts_xor_it_init(&it, p, len))
		return "payload shorter than the XOR header";
	uint32_t n = 0;
	int64_t first = 0, last = 0;
	int rc;
	while ((rc = ts_xor_next(&it)) == 1) {
		if (n == 0)
			first = it.t;
		else if (it.t < last) {
			snprintf(why, why_len,
				 "timestamp %" PRId64 " of sample %" PRIu32
				 " is before the previous one (%" PRId64 ")",
				 it.t, n, last);
			return why;
		}
		last = it.t;
		n++;
	}
	if (rc < 0) {
		snprintf(why, why_len,
			 "XOR payload does not decode (after %" PRIu32 " of %" PRIu32 " samples)",
			 n, n_want);
		return why;
	}
	if (n != n_want) {
		snprintf(why, why_len, "payload holds %" PRIu32 " samples, header says %" PRIu32, n,
			 n_want);
		return why;
	}
	if (check_bounds && n && (first != min_t || last != max_t)) {
		snprintf(why, why_len,
			 "samples span %" PRId64 "..%" PRId64 ", header says %" PRId64 "..%" PRId64,
			 first, last, min_t, max_t);
		return why;
	}
	return NULL;
}

/* A snapshot's lengths against its size and the bounds of format.h. NULL when fine. */
static const char *snapshot_layout_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	const size_t fixed = TS_FORMAT_SNAP_FIXED;
	if (len < fixed + 4) {
		snprintf(why, why_len, "%zu bytes, shorter than the fixed %zu", len, fixed + 4);
		return why;
	}
	if (p[TS_FORMAT_SNAP_OFF_VERSION] != TS_FORMAT_SNAP_VERSION) {
		snprintf(why, why_len, "format byte %u, not %d", p[TS_FORMAT_SNAP_OFF_VERSION],
			 TS_FORMAT_SNAP_VERSION);
		return why;
	}
	uint32_t chunk = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN);
	if (chunk > TS_FORMAT_SNAP_MAX_CHUNK || len < fixed + chunk + 4) {
		snprintf(why, why_len, "chunk length %" PRIu32 " does not fit the %zu-byte value",
			 chunk, len);
		return why;
	}
	uint32_t m = ts_format_get_le32(p + fixed + chunk);
	if (m > TS_FORMAT_SNAP_MAX_OOO ||
	    len != fixed + chunk + 4 + (size_t)m * TS_FORMAT_SNAP_OOO_SAMPLE_LEN) {
		snprintf(why, why_len,
			 "out-of-order count %" PRIu32 " does not match the %zu-byte "
			 "value",
			 m, len);
		return why;
	}
	return NULL;
}

/* The encoder state against the open chunk. NULL when fine. */
static const char *snapshot_encoder_problem(const uint8_t *p, char *why, size_t why_len)
{
	uint32_t chunk = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN);
	uint16_t n = (uint16_t)(p[TS_FORMAT_SNAP_OFF_N] | p[TS_FORMAT_SNAP_OFF_N + 1] << 8);
	uint32_t nbits = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_NBITS);
	uint8_t pad = p[TS_FORMAT_SNAP_OFF_TAIL_PAD];
	if ((n == 0) != (chunk == 0) || pad > 1 || (chunk && (nbits + 7) / 8 + pad != chunk)) {
		snprintf(why, why_len,
			 "encoder state (n %u, nbits %" PRIu32 ", tail_pad %u) does "
			 "not match the %" PRIu32 "-byte chunk",
			 n, nbits, pad, chunk);
		return why;
	}
	return NULL;
}

/* Validates a head snapshot as the engine restores it (ts_format_snap_parse), with a
 * reason for each way it can fail, plus a full decode of its open chunk. NULL when
 * fine. */
const char *ctl_snapshot_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	struct ts_format_snap s;
	const char *w = snapshot_layout_problem(p, len, why, why_len);
	if (w || (w = snapshot_encoder_problem(p, why, why_len)))
		return w;
	const uint8_t *chunk = p + TS_FORMAT_SNAP_FIXED;
	uint32_t chunk_len = ts_format_get_le32(p + TS_FORMAT_SNAP_OFF_CHUNK_LEN);
	uint16_t n = (uint16_t)(p[TS_FORMAT_SNAP_OFF_N] | p[TS_FORMAT_SNAP_OFF_N + 1] << 8);
	if (chunk_len) {
		int64_t enc_t = (int64_t)ts_format_get_le64(p + TS_FORMAT_SNAP_OFF_ENC_T), last = 0;
		struct ts_xor_it it;
		if ((w = ctl_xor_problem(chunk, chunk_len, n, 0, 0, 0, why, why_len)))
			return w;
		ts_xor_it_init(&it, chunk, chunk_len);
		while (ts_xor_next(&it) == 1)
			last = it.t;
		if (last != enc_t) {
			snprintf(why, why_len,
				 "chunk ends at %" PRId64 ", encoder state says %" PRId64, last,
				 enc_t);
			return why;
		}
	}
	const uint8_t *q = chunk + chunk_len + 4;
	uint32_t m = ts_format_get_le32(chunk + chunk_len);
	for (uint32_t i = 1; i < m; i++) {
		const uint8_t *o = q + (size_t)i * TS_FORMAT_SNAP_OOO_SAMPLE_LEN;
		if ((int64_t)ts_format_get_le64(o) <=
		    (int64_t)ts_format_get_le64(o - TS_FORMAT_SNAP_OOO_SAMPLE_LEN)) {
			snprintf(why, why_len,
				 "out-of-order sample %" PRIu32 " not after the previous", i);
			return why;
		}
	}
	if (ts_format_snap_parse(p, len, &s))
		return "rejected by the engine's parser (ts_format_snap_parse)";
	return NULL;
}

/* A chunk record's header against its payload (storage/chunk.h). NULL when fine. */
const char *ctl_record_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	if (len < TS_CHUNK_HDR_LEN) {
		snprintf(why, why_len, "record of %zu bytes is shorter than the %d-byte header",
			 len, TS_CHUNK_HDR_LEN);
		return why;
	}
	if (p[0] != TS_CHUNK_VERSION) {
		snprintf(why, why_len, "format version %u, not %d", p[0], TS_CHUNK_VERSION);
		return why;
	}
	if (p[1] != TS_CHUNK_ENC_XOR) {
		snprintf(why, why_len, "encoding %u, not XOR (%d)", p[1], TS_CHUNK_ENC_XOR);
		return why;
	}
	uint16_t flags = (uint16_t)(p[2] | p[3] << 8);
	if (flags & ~TS_CHUNK_FLAG_OVERLAP) {
		snprintf(why, why_len, "unknown flags 0x%04x", flags);
		return why;
	}
	uint32_t plen = ts_format_get_le32(p + 24);
	if (plen != len - TS_CHUNK_HDR_LEN) {
		snprintf(why, why_len, "payload length %" PRIu32 " but %zu bytes follow the header",
			 plen, len - TS_CHUNK_HDR_LEN);
		return why;
	}
	int64_t mint = (int64_t)ts_format_get_le64(p + 8);
	int64_t maxt = (int64_t)ts_format_get_le64(p + 16);
	if (mint > maxt) {
		snprintf(why, why_len, "min_t %" PRId64 " after max_t %" PRId64, mint, maxt);
		return why;
	}
	uint32_t crc = ts_crc32c(0, p + TS_CHUNK_HDR_LEN, plen), want = ts_format_get_le32(p + 28);
	if (crc != want) {
		snprintf(why, why_len,
			 "CRC32C mismatch: payload has 0x%08" PRIx32 ", header says "
			 "0x%08" PRIx32,
			 crc, want);
		return why;
	}
	int n = ts_xor_count(p + TS_CHUNK_HDR_LEN, plen);
	if (n < 0 || (uint32_t)n != ts_format_get_le32(p + 4)) {
		snprintf(why, why_len,
			 "header says %" PRIu32 " samples, the XOR payload's own count "
			 "is %d",
			 ts_format_get_le32(p + 4), n);
		return why;
	}
	return NULL;
}

const char *ctl_metadata_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	/* format.h: type u8, help length H u32, help, unit length u32, unit */
	const size_t fixed = TS_FORMAT_MD_FIXED;
	uint32_t hl = len >= fixed ? ts_format_get_le32(p + 1) : 0;
	if (len < fixed || hl > len - fixed || fixed + hl + ts_format_get_le32(p + 5 + hl) != len)
		snprintf(why, why_len, "value of %zu bytes does not parse", len);
	else if (p[0] > TS_MT_STATESET)
		snprintf(why, why_len, "unknown metric type %u", p[0]);
	else
		return NULL;
	return why;
}
