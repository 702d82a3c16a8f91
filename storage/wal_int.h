/*
 * wal_int.h - test hooks and format constants of the write-ahead log (storage/wal.c).
 *
 * Only tests and the fuzz target include this. The I/O calls the WAL makes on its
 * append path go through ts__wal_io so a test can make the N-th write or the next
 * fdatasync fail and check that the WAL turns read-only (TS_EIO) without losing
 * anything it acknowledged. The defaults are the libc functions. Tests must restore
 * the defaults (ts__wal_io_reset) before they end; the hooks are process-global and
 * not meant to be swapped while a WAL is in use by other threads.
 */
#ifndef TS_STORAGE_WAL_INT_H
#define TS_STORAGE_WAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TS_WAL_SEG_HDR_BYTES 28u	    /* segment header, see wal.c */
#define TS_WAL_REC_HDR_BYTES 16u	    /* record header, see wal.c */
#define TS_WAL_MAX_RECORD_BYTES (64u << 20) /* largest record payload (uncompressed) */

struct ts__wal_io {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*fdatasync)(int fd); /* commit / interval / close syncs of segment data */
	int (*fsync)(int fd);	  /* new segment files, directory, cut segments */
	/* Called after every successful data sync with the log end it covered (the end
	 * of the written log noted just before the sync started). NULL by default. */
	void (*on_sync)(uint64_t covered_end);
};

extern struct ts__wal_io ts__wal_io;

/* Restores the libc defaults and clears on_sync. */
void ts__wal_io_reset(void);

#endif
