/*
 * err.h - the project's error codes and the corruption-report path.
 *
 * Fallible functions return int: 0 on success, -errno for system errors, or one of
 * the TS_E* codes below. The TS_E* band (-40000 ... -40099) overlaps neither LMDB's
 * (-30799 ... -30779) nor libuv's (negated errno values, all above -4096).
 * Foreign codes are translated where they are met: storage/ maps MDB_* with
 * ts_err_from_mdb(), server/ maps UV_*.
 */
#ifndef TS_STORAGE_ERR_H
#define TS_STORAGE_ERR_H

#define TS_ECORRUPT (-40001)	/* bytes from disk or network are malformed */
#define TS_ENOTFOUND (-40002)	/* no such key, series, file */
#define TS_ELIMIT (-40003)	/* a configured bound was exceeded */
#define TS_EOUTOFORDER (-40004) /* sample older than the series' head allows */
#define TS_EDUPLICATE (-40005)	/* same timestamp, different value */
#define TS_ETOOOLD (-40006)	/* sample before the retention / OOO window */
#define TS_EFULL (-40007)	/* chunk or buffer has no room; caller cuts a new one */
#define TS_ECLOSED (-40008)	/* handle is closed or shutting down */
#define TS_EIO (-40009)		/* an earlier fsync/write failed; store is read-only */
#define TS_ETOOFUTURE (-40010)	/* sample too far ahead of wall-clock time */
#define TS_EVERSION (-40011)	/* on-disk format version we do not read */
#define TS_EBUSY (-40012)	/* resource held by another process */
#define TS_EINVALID (-40013)	/* argument or input fails validation */

/* Name of any error code this project returns (TS_E*, -errno, MDB_*). Static string. */
const char *ts_strerror(int err);

/* Logs "corrupt data at file:line" and returns TS_ECORRUPT. Use through TS_CORRUPT(). */
int ts__corrupt(const char *file, int line);
#define TS_CORRUPT() ts__corrupt(__FILE__, __LINE__)

/* Maps an LMDB return code to ours: 0 -> 0, MDB_NOTFOUND -> TS_ENOTFOUND,
 * MDB_CORRUPTED/MDB_PAGE_NOTFOUND/MDB_INVALID -> TS_ECORRUPT, MDB_VERSION_MISMATCH -> TS_EVERSION,
 * MDB_PANIC -> TS_EIO, MDB_BAD_DBI/MDB_INCOMPATIBLE -> TS_EINVALID, MDB_MAP_RESIZED -> TS_EBUSY,
 * MDB_MAP_FULL and other MDB_* limits -> TS_EFULL or TS_ELIMIT, errno values -> -errno. */
int ts_err_from_mdb(int rc);

#endif
