/*
 * check.c - what is wrong with one on-disk record, as pure functions from bytes to a
 * reason: a label set, an XOR payload, a chunk record, a head snapshot, a metadata row,
 * and format 2's group row, "gens" row and cold block. They know the layouts
 * (tsdb/format.h, storage/chunk.h, storage/xor.h, storage/cold.h) and nothing of where
 * the record came from; verify.c walks a data directory and says where. Each returns
 * NULL when the record is fine, else a reason for a human: a constant string or the
 * caller's buffer `why` (why_len bytes). The reasons are specific (which field, which
 * bound), and the engine's own readers have the last word: a snapshot must pass
 * ts_format_snap_parse, a cold block ts_cold_open and ts_cold_decode, a group row
 * ts_zframe_unpack and ts_format_group_next, and verify.c passes chunk records to
 * ts_chunk_decode too, so the tool cannot accept what the engine would refuse.
 *
 * Cold blocks and group rows are decompressed to be checked; the memory that takes is
 * allocated here and freed before returning (or handed to the caller when asked for).
 * Running out of it is reported as the reason, so a caller tells it apart only by
 * reading it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tsdbctl.h"
#include "storage/chunk.h"
#include "storage/cold.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/mem.h"
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

/* Why ts_format_snap_parse refused a snapshot: its version, its lengths against its
 * size and the bounds of format.h. NULL when none of these is the reason. */
static const char *snapshot_layout_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	const size_t fixed = TS_FORMAT_SNAP_FIXED;
	if (len == 0)
		return "empty value";
	uint8_t version = p[TS_FORMAT_SNAP_OFF_VERSION];
	if (version == TS_FORMAT_SNAP_VERSION_SHORT) {
		snprintf(why, why_len, "short snapshot (version %d) of %zu bytes, not %d",
			 TS_FORMAT_SNAP_VERSION_SHORT, len, TS_FORMAT_SNAP_SHORT_LEN);
		return why;
	}
	if (version != TS_FORMAT_SNAP_VERSION) {
		snprintf(why, why_len, "format byte %u, neither %d nor %d (short)", version,
			 TS_FORMAT_SNAP_VERSION, TS_FORMAT_SNAP_VERSION_SHORT);
		return why;
	}
	if (len < fixed + 4) {
		snprintf(why, why_len, "%zu bytes, shorter than the fixed %zu", len, fixed + 4);
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

/* Why ts_format_snap_parse refused a version-1 snapshot whose layout is fine: the
 * encoder state against the open chunk, or out-of-order samples not ascending. */
static const char *snapshot_state_problem(const uint8_t *p, char *why, size_t why_len)
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
	const uint8_t *q = p + TS_FORMAT_SNAP_FIXED + chunk;
	uint32_t m = ts_format_get_le32(q);
	for (uint32_t i = 1; i < m; i++) {
		const uint8_t *o = q + 4 + (size_t)i * TS_FORMAT_SNAP_OOO_SAMPLE_LEN;
		if ((int64_t)ts_format_get_le64(o) <=
		    (int64_t)ts_format_get_le64(o - TS_FORMAT_SNAP_OOO_SAMPLE_LEN)) {
			snprintf(why, why_len,
				 "out-of-order sample %" PRIu32 " not after the previous", i);
			return why;
		}
	}
	return NULL;
}

/* Validates a head snapshot as the engine restores it: ts_format_snap_parse decides
 * (versions 1 and 2), the reasons above say why it refused, and the open chunk it
 * found is decoded in full. NULL when fine. */
const char *ctl_snapshot_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	struct ts_format_snap s;
	const char *w;
	if (ts_format_snap_parse(p, len, &s) != 0) {
		if ((w = snapshot_layout_problem(p, len, why, why_len)) ||
		    (w = snapshot_state_problem(p, why, why_len)))
			return w;
		return "rejected by the engine's parser (ts_format_snap_parse)";
	}
	if (s.chunk_len) {
		int64_t last = 0;
		struct ts_xor_it it;
		if ((w = ctl_xor_problem(s.chunk, s.chunk_len, s.n, 0, 0, 0, why, why_len)))
			return w;
		ts_xor_it_init(&it, s.chunk, s.chunk_len);
		while (ts_xor_next(&it) == 1)
			last = it.t;
		if (last != s.enc_t) {
			snprintf(why, why_len,
				 "chunk ends at %" PRId64 ", encoder state says %" PRId64, last,
				 s.enc_t);
			return why;
		}
	}
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

/* ---- format 2 ---- */

/* Why ts_format_group_next refused the entry at it->pos. */
static const char *group_walk_problem(const struct ts_format_group_it *it, size_t n, char *why,
				      size_t why_len)
{
	const uint8_t *q = it->raw + it->pos;
	size_t left = it->len - it->pos;
	if (left < TS_FORMAT_GROUP_ENTRY_HDR)
		snprintf(why, why_len, "entry %zu: %zu bytes left, a header takes %d", n, left,
			 TS_FORMAT_GROUP_ENTRY_HDR);
	else if ((int)q[0] <= it->last_slot)
		snprintf(why, why_len, "entry %zu: slot %u not above the previous one (%d)", n,
			 q[0], it->last_slot);
	else
		snprintf(why, why_len, "entry %zu (slot %u): length %" PRIu32 " past the end", n,
			 q[0], ts_format_get_le32(q + 1));
	return why;
}

const char *ctl_group_problem(const uint8_t *p, size_t len, uint8_t **raw, size_t *raw_len,
			      char *why, size_t why_len)
{
	struct ts_format_group_it it;
	uint8_t *r;
	size_t rl, n = 0;
	int rc = ctl_group_unpack(p, len, &r, &rl);
	if (rc == TS_EVERSION) {
		snprintf(why, why_len, "version byte %u, not %d", p[0], TS_FORMAT_GROUP_VERSION);
		return why;
	}
	if (rc == -ENOMEM)
		return "out of memory while decompressing it";
	if (rc) {
		snprintf(why, why_len,
			 "the %zu bytes after the version byte are not one zstd frame that "
			 "decompresses to its stated size (at most %u bytes)",
			 len ? len - 1 : 0, TS_FORMAT_GROUP_RAW_MAX);
		return why;
	}
	const char *w = NULL;
	ts_format_group_it_init(&it, r, rl);
	while ((rc = ts_format_group_next(&it)) == 1)
		n++;
	if (rc < 0)
		w = group_walk_problem(&it, n, why, why_len);
	else if (n == 0)
		w = "no entry (a group without entries is not stored)";
	if (w || !raw) {
		ts_free(r);
		return w;
	}
	*raw = r;
	*raw_len = rl;
	return NULL;
}

const char *ctl_gens_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	if (len < 4) {
		snprintf(why, why_len, "row of %zu bytes, shorter than its count", len);
		return why;
	}
	uint32_t m = ts_format_get_le32(p);
	if (m > TS_FORMAT_GENS_MAX || len != 4 + (size_t)m * TS_FORMAT_GENS_ENTRY_LEN) {
		snprintf(why, why_len, "count %" PRIu32 " does not match the %zu-byte row%s", m,
			 len, m > TS_FORMAT_GENS_MAX ? " (over the bound)" : "");
		return why;
	}
	for (uint32_t i = 1; i < m; i++) {
		uint32_t a = ts_format_get_le32(p + 4 + (size_t)(i - 1) * TS_FORMAT_GENS_ENTRY_LEN);
		uint32_t b = ts_format_get_le32(p + 4 + (size_t)i * TS_FORMAT_GENS_ENTRY_LEN);
		if (b <= a) {
			snprintf(why, why_len,
				 "generation %" PRIu32 " listed after %" PRIu32 " (not ascending)",
				 b, a);
			return why;
		}
	}
	return NULL;
}

/* A cold block's fixed header, field by field (storage/cold.h), with the reason
 * ts_cold_peek would not give. NULL when fine. */
static const char *cold_header_problem(const uint8_t *p, size_t len, char *why, size_t why_len)
{
	if (len < TS_COLD_HDR_LEN) {
		snprintf(why, why_len, "block of %zu bytes is shorter than the %d-byte header", len,
			 TS_COLD_HDR_LEN);
		return why;
	}
	if (memcmp(p, TS_COLD_MAGIC, 4) != 0)
		return "magic is not \"" TS_COLD_MAGIC "\"";
	if (p[4] != TS_COLD_VERSION) {
		snprintf(why, why_len, "format version %u, not %d", p[4], TS_COLD_VERSION);
		return why;
	}
	if ((p[5] & ~TS_COLD_FLAG_ZSTD) || p[6] || p[7]) {
		snprintf(why, why_len, "unknown flags 0x%02x or reserved bytes %02x%02x set", p[5],
			 p[6], p[7]);
		return why;
	}
	uint32_t n_series = ts_format_get_le32(p + 8), raw_len = ts_format_get_le32(p + 12);
	uint64_t first = ts_format_get_le64(p + 16), last = ts_format_get_le64(p + 24);
	int64_t min_t = (int64_t)ts_format_get_le64(p + 32);
	int64_t max_t = (int64_t)ts_format_get_le64(p + 40);
	uint64_t n_samples = ts_format_get_le64(p + 48);
	uint32_t z_len = ts_format_get_le32(p + 56);
	if (z_len != len - TS_COLD_HDR_LEN)
		snprintf(why, why_len,
			 "stored body length %" PRIu32 " but %zu bytes follow the header", z_len,
			 len - TS_COLD_HDR_LEN);
	else if (!(p[5] & TS_COLD_FLAG_ZSTD) && z_len != raw_len)
		snprintf(why, why_len,
			 "body stored as is, but raw_len %" PRIu32 " differs from its %" PRIu32
			 " bytes",
			 raw_len, z_len);
	else if (raw_len > TS_COLD_MAX_RAW)
		snprintf(why, why_len, "raw_len %" PRIu32 " over the bound %u", raw_len,
			 TS_COLD_MAX_RAW);
	else if (n_series == 0)
		snprintf(why, why_len, "no series");
	else if (first > last || last - first < n_series - 1)
		snprintf(why, why_len,
			 "ids %" PRIu64 "..%" PRIu64 " cannot hold %" PRIu32 " series", first, last,
			 n_series);
	else if (min_t > max_t)
		snprintf(why, why_len, "min_t %" PRId64 " after max_t %" PRId64, min_t, max_t);
	else if (n_samples < n_series)
		snprintf(why, why_len, "%" PRIu64 " samples for %" PRIu32 " series", n_samples,
			 n_series);
	else
		return NULL;
	return why;
}

static const char *const cold_kinds[] = { "const", "dec-delta",	 "dec-dod",
					  "xor",   "bits-delta", "bits-dod" };

/* Every series of an opened block: the directory against the header (ids ascending
 * from first_id to last_id, times within min_t..max_t and reaching both, the sample
 * total), and a full decode. NULL when fine. */
static const char *cold_series_problem(const struct ts_cold_block *b, char *why, size_t why_len)
{
	struct ts_cold_info h;
	size_t ns = ts_cold_nseries(b);
	uint64_t prev = 0, total = 0;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	uint32_t max_n = 0;
	ts_cold_block_info(b, &h);
	for (size_t i = 0; i < ns; i++) {
		uint64_t id;
		uint32_t n;
		int64_t a, z;
		ts_cold_series(b, i, &id, &n, &a, &z);
		if ((i == 0 && id != h.first_id) || (i && id <= prev) ||
		    (i == ns - 1 && id != h.last_id)) {
			snprintf(why, why_len,
				 "directory: series %zu has id %" PRIu64 " (header: ids %" PRIu64
				 "..%" PRIu64 ")",
				 i, id, h.first_id, h.last_id);
			return why;
		}
		if (n == 0 || a > z || a < h.min_t || z > h.max_t) {
			snprintf(why, why_len,
				 "directory: series %" PRIu64 " has %" PRIu32 " samples in %" PRId64
				 "..%" PRId64 " (header: %" PRId64 "..%" PRId64 ")",
				 id, n, a, z, h.min_t, h.max_t);
			return why;
		}
		prev = id;
		total += n;
		lo = a < lo ? a : lo;
		hi = z > hi ? z : hi;
		max_n = n > max_n ? n : max_n;
	}
	if (total != h.n_samples || lo != h.min_t || hi != h.max_t) {
		snprintf(why, why_len,
			 "directory holds %" PRIu64 " samples in %" PRId64 "..%" PRId64
			 ", header says %" PRIu64 " in %" PRId64 "..%" PRId64,
			 total, lo, hi, h.n_samples, h.min_t, h.max_t);
		return why;
	}
	int64_t *t = ts_malloc((size_t)max_n * sizeof *t);
	uint64_t *v = ts_malloc((size_t)max_n * sizeof *v);
	const char *w = t && v ? NULL : "out of memory while decoding it";
	for (size_t i = 0; i < ns && !w; i++) {
		if (ts_cold_decode(b, i, t, v) == 0)
			continue;
		uint64_t id;
		int kind = ts_cold_value_kind(b, i);
		ts_cold_series(b, i, &id, NULL, NULL, NULL);
		snprintf(why, why_len,
			 "series %" PRIu64 " does not decode (its timestamp column, or its "
			 "value column of kind %s)",
			 id, kind >= 0 && kind <= TS_COLD_VAL_BITS_DOD ? cold_kinds[kind] : "?");
		w = why;
	}
	ts_free(t);
	ts_free(v);
	return w;
}

const char *ctl_cold_problem(const uint8_t *p, size_t len, struct ts_cold_block **out, char *why,
			     size_t why_len)
{
	struct ts_cold_info h;
	struct ts_cold_block *b = NULL;
	const char *w = cold_header_problem(p, len, why, why_len);
	if (w)
		return w;
	uint32_t crc = ts_crc32c(0, p + TS_COLD_HDR_LEN, len - TS_COLD_HDR_LEN);
	uint32_t want = ts_format_get_le32(p + 60);
	if (crc != want) {
		snprintf(why, why_len,
			 "CRC32C mismatch: body has 0x%08" PRIx32 ", header says 0x%08" PRIx32, crc,
			 want);
		return why;
	}
	if (ts_cold_peek(p, len, &h) != 0)
		return "header rejected by the engine's ts_cold_peek (sizes do not add up)";
	int rc = ts_cold_open(p, len, &b);
	if (rc == -ENOMEM)
		return "out of memory while opening it";
	if (rc) {
		uint8_t *raw = NULL;
		size_t raw_len;
		rc = ts_cold_unpack(p, len, &raw, &raw_len);
		ts_free(raw);
		if (rc == -ENOMEM)
			return "out of memory while decompressing it";
		snprintf(why, why_len,
			 rc ? "body does not decompress to its raw_len of %" PRIu32 " bytes"
			    : "directory of the %" PRIu32
			      "-byte body rejected by the engine's ts_cold_open",
			 h.raw_len);
		return why;
	}
	w = cold_series_problem(b, why, why_len);
	if (w || !out)
		ts_cold_free(b);
	else
		*out = b;
	return w;
}
