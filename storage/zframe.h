/*
 * zframe.h - one zstd frame around a buffer: the compression of index group rows
 * (tsdb/format.h). The frame records its decompressed size, so a reader allocates once
 * and refuses sizes above its caller's bound before allocating. zstd stays inside
 * storage/ (the include graph of DESIGN.md); this is its one use outside cold blocks.
 */
#ifndef TS_STORAGE_ZFRAME_H
#define TS_STORAGE_ZFRAME_H

#include <stddef.h>
#include <stdint.h>

/* Compresses raw (len bytes, borrowed) at zstd `level`, with zstd's content checksum,
 * into a new buffer *out
 * (ts_malloc'd, the caller frees it with ts_free) of *out_len bytes. 0, -ENOMEM, or
 * TS_EINVALID (zstd refused the input). Thread-safe. */
int ts_zframe_pack(const void *raw, size_t len, int level, uint8_t **out, size_t *out_len);

/* Decompresses one whole frame p (len bytes, borrowed; untrusted) into a new buffer
 * *raw (ts_malloc'd, freed by the caller; one spare zero byte after *raw_len) whose size
 * the frame states and must be at most max_raw. 0, TS_ECORRUPT (not exactly one valid
 * frame, no stated size, a size above max_raw, content that does not match it or its
 * checksum), or
 * -ENOMEM; on error nothing is returned. Thread-safe. */
int ts_zframe_unpack(const uint8_t *p, size_t len, size_t max_raw, uint8_t **raw, size_t *raw_len);

#endif
