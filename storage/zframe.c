/*
 * zframe.c - one zstd frame around a buffer (zframe.h).
 */
#include <errno.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "storage/zframe.h"
#include "storage/zpool.h"

int ts_zframe_pack(const void *raw, size_t len, int level, uint8_t **out, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(len);
	uint8_t *buf = ts_malloc(cap ? cap : 1);
	if (!buf)
		return -ENOMEM;
	/* With a content checksum: decompression then fails on any flipped bit, as a CRC
	 * would catch it in a chunk or a cold block. */
	ZSTD_CCtx *cx = ts_zpool_cctx();
	size_t n = cx ? ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, level) : 0;
	if (cx && !ZSTD_isError(n))
		n = ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
	if (cx && !ZSTD_isError(n))
		n = ZSTD_compress2(cx, buf, cap, raw, len);
	ts_zpool_cctx_put(cx);
	if (!cx) {
		ts_free(buf);
		return -ENOMEM;
	}
	if (ZSTD_isError(n)) {
		ts_free(buf);
		return TS_EINVALID;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int ts_zframe_unpack(const uint8_t *p, size_t len, size_t max_raw, uint8_t **raw, size_t *raw_len)
{
	if (len == 0 || ZSTD_findFrameCompressedSize(p, len) != len)
		return TS_CORRUPT(); /* not exactly one frame (or an error code) */
	unsigned long long want = ZSTD_getFrameContentSize(p, len);
	if (want == ZSTD_CONTENTSIZE_UNKNOWN || want == ZSTD_CONTENTSIZE_ERROR || want > max_raw)
		return TS_CORRUPT();
	uint8_t *buf = ts_malloc((size_t)want + 1);
	if (!buf)
		return -ENOMEM;
	ZSTD_DCtx *dx = ts_zpool_dctx();
	if (!dx) {
		ts_free(buf);
		return -ENOMEM;
	}
	size_t n = ZSTD_decompressDCtx(dx, buf, (size_t)want, p, len);
	ts_zpool_dctx_put(dx);
	if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation) {
		ts_free(buf);
		return -ENOMEM;
	}
	if (ZSTD_isError(n) || n != want) {
		ts_free(buf);
		return TS_CORRUPT();
	}
	buf[n] = 0;
	*raw = buf;
	*raw_len = n;
	return 0;
}
