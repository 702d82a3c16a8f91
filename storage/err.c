/*
 * err.c - names for error codes, and the single place corruption is reported so every
 * TS_CORRUPT() in the code base leaves the source line that detected it in the log.
 */
#include "storage/err.h"

#include <lmdb.h>
#include <string.h>

#include "storage/log.h"

const char *ts_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case TS_ECORRUPT: return "corrupt data";
	case TS_ENOTFOUND: return "not found";
	case TS_ELIMIT: return "limit exceeded";
	case TS_EOUTOFORDER: return "out-of-order sample";
	case TS_EDUPLICATE: return "duplicate sample timestamp with a different value";
	case TS_ETOOOLD: return "sample too old";
	case TS_EFULL: return "no room";
	case TS_ECLOSED: return "closed";
	case TS_EIO: return "an earlier I/O error made the store read-only";
	case TS_ETOOFUTURE: return "sample too far in the future";
	case TS_EVERSION: return "unsupported format version";
	case TS_EBUSY: return "busy";
	case TS_EINVALID: return "invalid input";
	default: break;
	}
	if (err <= MDB_KEYEXIST && err >= MDB_LAST_ERRCODE)
		return mdb_strerror(err);
	if (err < 0 && err > -4096)
		return strerror(-err); /* glibc's strerror returns static strings for errnos */
	return "unknown error";
}

int ts__corrupt(const char *file, int line)
{
	ts_log(TS_LOG_ERROR, "corrupt data detected at %s:%d", file, line);
	return TS_ECORRUPT;
}

int ts_err_from_mdb(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return TS_ENOTFOUND;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID: return TS_ECORRUPT;
	case MDB_VERSION_MISMATCH: /* a data file of another LMDB format version */
		return TS_EVERSION;
	case MDB_PANIC: /* the env is unusable until reopened: treat like a failed write */
		return TS_EIO;
	case MDB_INCOMPATIBLE: /* a table opened with flags it was not created with */
	case MDB_BAD_DBI: return TS_EINVALID;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL: return TS_EFULL;
	case MDB_DBS_FULL:
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_BAD_VALSIZE: return TS_ELIMIT;
	case MDB_MAP_RESIZED: /* another process grew the map: retry */ return TS_EBUSY;
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_KEYEXIST: return TS_EINVALID;
	default: return rc > 0 ? -rc : rc;
	}
}
