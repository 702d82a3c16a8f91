/*
 * fuzz_group.c - the index's group rows (tsdb/format.h): a zstd frame (storage/zframe.h)
 * whose content is walked entry by entry, each entry a head snapshot or packed labels.
 * Input byte 0 picks the path: even, the rest is a stored row body (zframe unpack, then
 * the walk); odd, the rest is already-decompressed content (the walk alone). Every entry
 * goes through the head snapshot parser and the packed-label counter, as the loader does.
 */
#include <stddef.h>
#include <stdint.h>

#include "storage/mem.h"
#include "storage/zframe.h"
#include "tsdb/format.h"
#include "tsdb/labels.h"

static void walk(const uint8_t *raw, size_t len)
{
	struct ts_format_group_it it;
	ts_format_group_it_init(&it, raw, len);
	while (ts_format_group_next(&it) == 1) {
		struct ts_format_snap snap;
		(void)ts_format_snap_parse(it.entry, it.entry_len, &snap);
		(void)ts_labels_count(it.entry, it.entry_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		walk(data + 1, size - 1);
		return 0;
	}
	uint8_t *raw;
	size_t len;
	if (ts_zframe_unpack(data + 1, size - 1, 1u << 20, &raw, &len) == 0) {
		walk(raw, len);
		ts_free(raw);
	}
	return 0;
}
