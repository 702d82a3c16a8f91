/*
 * wal.c - the write-ahead log: segment files of CRC32C-checked records, optionally
 * zstd-compressed, appended under one mutex and made durable by group commit.
 *
 * Files. The log lives in one directory. Each segment file is named by the LSN of its
 * first byte as 16 lower-case hex digits ("00000000004000a0"); other names are not
 * ours and are ignored (the checkpoint shares the directory), except "<16 hex>.tmp",
 * a segment whose creation was interrupted, which open removes. A segment is created
 * as .tmp, its header written (and fsynced unless NEVER), then renamed into place and
 * the directory fsynced, so a segment file always starts with a complete header.
 *
 * LSNs. An LSN is a byte offset in the log as a whole: segment base + offset in the
 * segment file. The first record of a segment is at base + 28 (after the header), so
 * no record ever has LSN 0. Each segment header records prev_end, where the segment
 * before it ended; replay checks that this matches, so a missing or stale middle
 * segment is found. Normally prev_end == base (segments are contiguous). LSNs only
 * grow, even across a cut: callers keep LSNs (the checkpoint, per-series snapshot
 * LSNs) and compare records against them, so a reused LSN would make them skip new
 * records. Replay(from_lsn) therefore starts a new segment at from_lsn when the log
 * ends before it (it was cut, or lost unsynced bytes), with prev_end = the real end.
 *
 * Segment header (28 bytes, little-endian):
 *   off size field
 *   0   5    magic "TSWAL"
 *   5   1    format version, 1
 *   6   2    reserved, 0
 *   8   8    base LSN, equal to the file name
 *   16  8    prev_end: end LSN of the previous segment; <= base
 *   24  4    CRC32C of bytes 0..23
 *
 * Record (16-byte header, then the payload, little-endian):
 *   off size field
 *   0   4    crc: CRC32C of payload, then header bytes 4..15, then the record's LSN
 *            (8 bytes LE). The LSN makes a record valid only at its own place, so
 *            bytes copied or shifted inside the log never pass as records.
 *   4   4    disk_len: payload bytes that follow the header
 *   8   4    raw_len: payload bytes after decompression, <= 64 MiB
 *   12  1    type, the caller's
 *   13  1    flags: 0 = stored as is; 0x01 = one LZ4 block; 0x02 = one zstd frame
 *            (without its own checksum: the record CRC covers it); one of these
 *   14  2    reserved, 0
 *   16  disk_len  payload
 * Uncompressed: disk_len == raw_len. Compressed: 0 < disk_len < raw_len (we only keep
 * output that saves bytes), so no length read from disk exceeds 64 MiB, and each
 * is checked against the file size before anything is allocated for it.
 *
 * Writers compress with zstd at level 1 (TS_WAL_COMPRESS_ZSTD): on remote-write
 * batches it stores 1.8x fewer bytes than LZ4 at about 500 MB/s, far above what a
 * core ingests. LZ4 records, written by earlier releases, are still read, so a log
 * may mix both; the option to write them is kept for tests and tools.
 *
 * Replay reads records in LSN order and stops at the first one that is cut short,
 * has a bad header, a CRC mismatch, or fails to decompress, or where the next
 * segment does not start where the previous one ended. There the log is cut: later
 * segments are unlinked (directory fsynced), the segment is ftruncated at the bad
 * record (and fsynced), a warning names the LSN and the bytes dropped (an error when
 * whole later segments go, because that loses records that were not just a torn
 * tail). Later segments are unlinked before the truncation so that a crash in between
 * leaves the bad record in place to be found again. Appends are refused (-EINVAL) until replay has positioned the log at its
 * end, except when open found no segment at all and created the first one.
 *
 * Durability and locking. w->mu guards every field below it in struct ts_wal. An
 * append write(2)s the whole record under the mutex, so the log order is the LSN
 * order. Group commit (ALWAYS): a committer whose record is not yet synced waits for a
 * sync in progress, or becomes the leader: notes the written end, drops the mutex,
 * fdatasyncs, retakes it, publishes synced_end and wakes everyone; one fdatasync
 * covers every record written before it started. INTERVAL uses the same leader step
 * from a background thread. Nothing closes or replaces the active fd while a sync is
 * in progress (roll and close wait for it). A failed write or sync sets w->err: the
 * WAL is read-only from then on and the failure is logged once; syncs are never
 * retried, because after a failed fsync the kernel may have dropped the dirty pages.
 */
#include "storage/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <zstd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/clock.h"
#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/wal_int.h"

#define SEG_HDR TS_WAL_SEG_HDR_BYTES
#define REC_HDR TS_WAL_REC_HDR_BYTES
#define MAX_REC TS_WAL_MAX_RECORD_BYTES
#define SEG_VERSION 1
#define FLAG_LZ4 0x01
#define FLAG_ZSTD 0x02
#define ZSTD_LEVEL 1
#define CCTX_POOL 4	/* compression contexts kept for reuse; more appenders allocate */
#define COMPRESS_MIN 64 /* records this small are never compressed */
#define MAX_BASE (UINT64_C(1) << 62) /* keeps base + offsets far from overflow */
#define READ_CHUNK (1u << 20)

static const char SEG_MAGIC[5] = { 'T', 'S', 'W', 'A', 'L' };

static ssize_t libc_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}
static int libc_fdatasync(int fd)
{
	return fdatasync(fd);
}
static int libc_fsync(int fd)
{
	return fsync(fd);
}

struct ts__wal_io ts__wal_io = { libc_write, libc_fdatasync, libc_fsync, NULL };

void ts__wal_io_reset(void)
{
	ts__wal_io.write = libc_write;
	ts__wal_io.fdatasync = libc_fdatasync;
	ts__wal_io.fsync = libc_fsync;
	ts__wal_io.on_sync = NULL;
}

struct seg {
	uint64_t base, prev_end, size, n_records;
};

struct ts_wal {
	char *dir; /* for log lines */
	int dirfd;
	struct ts_wal_opts opts; /* with defaults filled in */
	pthread_t thread;
	int has_thread;

	pthread_mutex_t mu;
	pthread_cond_t sync_cv; /* a sync finished */
	pthread_cond_t tick_cv; /* wakes the interval thread early (stop) */
	int stop;
	struct seg *segs; /* sorted by base; the last one is active once ready */
	size_t n_segs, segs_cap;
	int fd;		     /* active segment, O_APPEND; -1 until ready */
	int ready;	     /* positioned at the end: appends allowed */
	int appended;	     /* an append happened since open: no more replay */
	uint64_t end;	     /* LSN of the next append */
	uint64_t synced_end; /* everything before it is on stable storage */
	int syncing;	     /* a leader is in fdatasync with mu dropped */
	int err;	     /* sticky: TS_EIO once a write or sync failed */
	int full;	     /* the last append found no space (cut, logged once) */
	uint64_t n_syncs, sync_ns_total, sync_ns_max;

	/* Compression contexts, reused: creating one costs more than compressing a
	 * typical record. cmu guards only these, so appenders compress in parallel. */
	pthread_mutex_t cmu;
	ZSTD_CCtx *cctx[CCTX_POOL];
	size_t n_cctx;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void seg_name(char out[17], uint64_t base)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++)
		out[i] = hex[(base >> (60 - 4 * i)) & 0xf];
	out[16] = '\0';
}

/* Parses the first 16 chars of `name` as a lower-case hex LSN. */
static int parse_hex16(const char *name, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	*out = v;
	return 1;
}

static uint32_t rec_crc(const uint8_t *payload, size_t disk_len, const uint8_t *hdr, uint64_t lsn)
{
	uint8_t l[8];
	put64(l, lsn);
	uint32_t crc = ts_crc32c(0, payload, disk_len);
	crc = ts_crc32c(crc, hdr + 4, REC_HDR - 4);
	return ts_crc32c(crc, l, sizeof l);
}

/* Writes all of buf, resuming after short writes and EINTR. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = ts__wal_io.write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = pread(fd, buf + *got, len - *got, (off_t)(off + *got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

static int dir_sync(struct ts_wal *w)
{
	if (w->opts.sync == TS_WAL_SYNC_NEVER)
		return 0;
	return ts__wal_io.fsync(w->dirfd) ? -errno : 0;
}

/* A failed append. Out of space (ENOSPC, EDQUOT), what part of the record reached the
 * file is cut off again and the log stays writable: the caller refuses this record and
 * may retry once space returns, as if nothing had happened. Anything else, or a cut that
 * fails, makes the log read-only (set_err_locked). Returns -ENOSPC or TS_EIO. */
static void set_err_locked(struct ts_wal *w, const char *what, int rc);
static int cut_failed_append_locked(struct ts_wal *w, int rc)
{
	if (rc == -ENOSPC || rc == -EDQUOT) {
		struct seg *s = &w->segs[w->n_segs - 1];
		if (ftruncate(w->fd, (off_t)s->size) == 0) {
			if (!w->full)
				ts_log(TS_LOG_WARN,
				       "wal %s: no space left at LSN %" PRIu64
				       "; refusing records until there is",
				       w->dir, w->end);
			w->full = 1;
			return -ENOSPC;
		}
		rc = -errno;
	}
	set_err_locked(w, "write", rc);
	return TS_EIO;
}

/* First failure wins and is the one logged; later ones only return TS_EIO. */
static void set_err_locked(struct ts_wal *w, const char *what, int rc)
{
	if (w->err)
		return;
	w->err = TS_EIO;
	ts_log(TS_LOG_ERROR, "wal %s: %s failed at LSN %" PRIu64 ": %s; the log is read-only now",
	       w->dir, what, w->end, ts_strerror(rc));
}

static void note_sync_locked(struct ts_wal *w, uint64_t t0, uint64_t covered)
{
	uint64_t ns = now_ns() - t0;
	w->n_syncs++;
	w->sync_ns_total += ns;
	if (ns > w->sync_ns_max)
		w->sync_ns_max = ns;
	if (covered > w->synced_end)
		w->synced_end = covered;
	if (ts__wal_io.on_sync)
		ts__wal_io.on_sync(covered);
}

static int segs_reserve(struct ts_wal *w, size_t n)
{
	if (n <= w->segs_cap)
		return 0;
	size_t cap = w->segs_cap ? w->segs_cap * 2 : 8;
	while (cap < n)
		cap *= 2;
	struct seg *s = ts_realloc(w->segs, cap * sizeof *s);
	if (!s)
		return -ENOMEM;
	w->segs = s;
	w->segs_cap = cap;
	return 0;
}

/* Creates segment `base` (via .tmp + rename) and returns its fd, opened for append
 * and positioned after the header. *io_fail is set when a write or fsync failed
 * (the caller makes that sticky); other failures (open, rename) are plain -errno. */
static int create_segment(struct ts_wal *w, uint64_t base, uint64_t prev_end, int *fd_out,
			  int *io_fail)
{
	char name[17], tmp[21];
	uint8_t hdr[SEG_HDR];
	int rc = 0, never = w->opts.sync == TS_WAL_SYNC_NEVER;

	*io_fail = 0;
	seg_name(name, base);
	memcpy(tmp, name, 16);
	memcpy(tmp + 16, ".tmp", 5);
	memcpy(hdr, SEG_MAGIC, 5);
	hdr[5] = SEG_VERSION;
	hdr[6] = hdr[7] = 0;
	put64(hdr + 8, base);
	put64(hdr + 16, prev_end);
	put32(hdr + 24, ts_crc32c(0, hdr, 24));

	int fd = openat(w->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, hdr, sizeof hdr);
	if (rc == -ENOSPC || rc == -EDQUOT)
		goto fail; /* only a temporary file is lost: the log stays writable */
	if (rc == 0 && !never && ts__wal_io.fsync(fd) != 0)
		rc = -errno;
	if (rc) {
		*io_fail = 1;
		goto fail;
	}
	if (renameat(w->dirfd, tmp, w->dirfd, name) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = dir_sync(w);
	if (rc) {
		/* The segment is in place but its name may not be durable: the caller
		 * stops the log, so nothing written into it is ever acknowledged. */
		*io_fail = 1;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	unlinkat(w->dirfd, tmp, 0);
	return rc;
}

/* Whether appends and rolls may go on (w->mu held): 0, TS_EIO (an earlier I/O error),
 * -EINVAL (no replay has found the end of the log yet). */
static int writable_locked(const struct ts_wal *w)
{
	return w->err ? TS_EIO : !w->ready ? -EINVAL : 0;
}

static int need_roll(const struct ts_wal *w)
{
	const struct seg *s = &w->segs[w->n_segs - 1];
	return s->n_records > 0 && w->end - s->base >= w->opts.segment_bytes;
}

/* Makes a new segment at w->end the active one. With if_full, only if the active one
 * is still past segment_bytes once no sync is in progress. Called and returns with mu
 * held; drops it only while waiting for a sync in progress to finish. */
static int roll_locked(struct ts_wal *w, int if_full)
{
	int rc, io_fail;
	while (w->syncing)
		pthread_cond_wait(&w->sync_cv, &w->mu);
	if (w->err)
		return TS_EIO;
	if (if_full && !need_roll(w))
		return 0;
	rc = segs_reserve(w, w->n_segs + 1);
	if (rc)
		return rc;
	if (w->opts.sync != TS_WAL_SYNC_NEVER && w->synced_end < w->end) {
		uint64_t t0 = now_ns();
		if (ts__wal_io.fdatasync(w->fd) != 0) {
			set_err_locked(w, "fdatasync", -errno);
			return TS_EIO;
		}
		note_sync_locked(w, t0, w->end);
	}
	int nfd = -1;
	rc = create_segment(w, w->end, w->end, &nfd, &io_fail);
	if (rc) {
		if (io_fail) {
			set_err_locked(w, "segment creation", rc);
			return TS_EIO;
		}
		return rc;
	}
	close(w->fd);
	w->fd = nfd;
	w->segs[w->n_segs++] = (struct seg){ w->end, w->end, SEG_HDR, 0 };
	w->end += SEG_HDR;
	if (w->opts.sync != TS_WAL_SYNC_NEVER)
		w->synced_end = w->end;
	return 0;
}

/* One sync for everything written so far. Called with mu held and no sync in
 * progress; drops mu during the fdatasync. */
static int sync_leader_locked(struct ts_wal *w)
{
	uint64_t covered = w->end;
	int fd = w->fd, rc = 0;
	w->syncing = 1;
	pthread_mutex_unlock(&w->mu);
	uint64_t t0 = now_ns();
	int r = ts__wal_io.fdatasync(fd);
	int e = errno;
	pthread_mutex_lock(&w->mu);
	w->syncing = 0;
	if (r != 0) {
		set_err_locked(w, "fdatasync", -e);
		rc = TS_EIO;
	} else {
		note_sync_locked(w, t0, covered);
	}
	pthread_cond_broadcast(&w->sync_cv);
	return rc;
}

static void *interval_main(void *arg)
{
	struct ts_wal *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec ts;
		ts_deadline(CLOCK_MONOTONIC, w->opts.interval_ms, &ts);
		pthread_cond_timedwait(&w->tick_cv, &w->mu, &ts);
		if (!w->stop && w->ready && !w->err && !w->syncing && w->end > w->synced_end)
			sync_leader_locked(w);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int mkdir_p(const char *dir)
{
	int rc = 0;
	char *p = ts_strdup(dir);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	ts_free(p);
	return rc;
}

/* Reads and checks the header of segment s; records its size. A last segment shorter
 * than a header is a torn creation (only possible after power loss under NEVER) and is
 * left for replay to remove; anywhere else it is corruption. */
static int check_segment(struct ts_wal *w, struct seg *s, int is_last)
{
	char name[17];
	uint8_t h[SEG_HDR];
	struct stat st;
	size_t got;
	int rc = 0;

	seg_name(name, s->base);
	int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	s->size = (uint64_t)st.st_size;
	if (s->size < SEG_HDR) {
		if (!is_last)
			rc = TS_CORRUPT();
		goto out;
	}
	rc = pread_all(fd, h, sizeof h, 0, &got);
	if (rc)
		goto out;
	if (got != sizeof h || memcmp(h, SEG_MAGIC, 5) != 0 ||
	    get32(h + 24) != ts_crc32c(0, h, 24)) {
		rc = TS_CORRUPT();
		goto out;
	}
	if (h[5] != SEG_VERSION) {
		rc = TS_EVERSION;
		goto out;
	}
	s->prev_end = get64(h + 16);
	if (h[6] || h[7] || get64(h + 8) != s->base || s->base >= MAX_BASE || s->size > MAX_BASE ||
	    s->prev_end > s->base)
		rc = TS_CORRUPT();
out:
	if (rc)
		ts_log(TS_LOG_ERROR, "wal %s: segment %s: %s", w->dir, name, ts_strerror(rc));
	close(fd);
	return rc;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg *)a)->base, y = ((const struct seg *)b)->base;
	return x < y ? -1 : x > y;
}

static int scan_dir(struct ts_wal *w)
{
	int rc = 0;
	DIR *d = opendir(w->dir);
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t base;
		size_t n = strlen(e->d_name);
		if ((n != 16 && n != 20) || !parse_hex16(e->d_name, &base))
			continue;
		if (n == 20) {
			if (strcmp(e->d_name + 16, ".tmp") == 0 &&
			    unlinkat(w->dirfd, e->d_name, 0) != 0) {
				rc = -errno;
				break;
			}
			continue;
		}
		rc = segs_reserve(w, w->n_segs + 1);
		if (rc)
			break;
		w->segs[w->n_segs++] = (struct seg){ base, 0, 0, 0 };
	}
	closedir(d);
	if (rc)
		return rc;
	if (w->n_segs > 1)
		qsort(w->segs, w->n_segs, sizeof *w->segs, cmp_seg);
	for (size_t i = 0; i < w->n_segs && rc == 0; i++)
		rc = check_segment(w, &w->segs[i], i + 1 == w->n_segs);
	return rc;
}

static void destroy(struct ts_wal *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_cond_destroy(&w->tick_cv);
	pthread_cond_destroy(&w->sync_cv);
	pthread_mutex_destroy(&w->mu);
	for (size_t i = 0; i < w->n_cctx; i++)
		ZSTD_freeCCtx(w->cctx[i]);
	pthread_mutex_destroy(&w->cmu);
	ts_free(w->segs);
	ts_free(w->dir);
	ts_free(w);
}

int ts_wal_open(const char *dir, const struct ts_wal_opts *opts, struct ts_wal **out)
{
	int rc = 0;
	pthread_condattr_t ca;

	if (!dir || !opts || !out || opts->sync > TS_WAL_SYNC_NEVER ||
	    (unsigned)opts->compress > TS_WAL_COMPRESS_LZ4)
		return -EINVAL;
	*out = NULL;
	struct ts_wal *w = ts_calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->fd = w->dirfd = -1;
	w->opts = *opts;
	if (!w->opts.interval_ms)
		w->opts.interval_ms = 1000;
	if (!w->opts.segment_bytes)
		w->opts.segment_bytes = UINT64_C(64) << 20;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->cmu, NULL);
	pthread_cond_init(&w->sync_cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->tick_cv, &ca);
	pthread_condattr_destroy(&ca);

	w->dir = ts_strdup(dir);
	if (!w->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = mkdir_p(dir);
	if (rc)
		goto fail;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = scan_dir(w);
	if (rc)
		goto fail;
	if (w->n_segs == 0) {
		/* A new log has nothing to replay: it is ready for appends at once. */
		int io_fail;
		rc = segs_reserve(w, 1);
		if (rc == 0)
			rc = create_segment(w, 0, 0, &w->fd, &io_fail);
		if (rc)
			goto fail;
		w->segs[w->n_segs++] = (struct seg){ 0, 0, SEG_HDR, 0 };
		w->end = w->synced_end = SEG_HDR;
		w->ready = 1;
	} else {
		const struct seg *last = &w->segs[w->n_segs - 1];
		w->end = w->synced_end = last->base + last->size;
	}
	if (w->opts.sync == TS_WAL_SYNC_INTERVAL) {
		rc = -pthread_create(&w->thread, NULL, interval_main, w);
		if (rc)
			goto fail;
		w->has_thread = 1;
	}
	*out = w;
	return 0;
fail:
	destroy(w);
	return rc;
}

/* Buffered reads of one segment file, so small records cost no syscall each. */
struct reader {
	int fd;
	uint64_t size; /* of the file */
	uint8_t *buf;
	size_t cap, len;
	uint64_t off; /* file offset of buf[0] */
};

/* Points *out at file bytes [pos, pos+n). The caller has checked pos + n <= size.
 * Returns 0, -errno, -ENOMEM, or 1 when the file turned out shorter. */
static int reader_get(struct reader *r, uint64_t pos, size_t n, const uint8_t **out)
{
	if (pos >= r->off && pos + n <= r->off + r->len) {
		*out = r->buf + (pos - r->off);
		return 0;
	}
	uint64_t left = r->size - pos;
	size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
	if (want < n)
		want = n;
	if (want > r->cap) {
		uint8_t *b = ts_realloc(r->buf, want);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = want;
	}
	size_t got;
	int rc = pread_all(r->fd, r->buf, want, pos, &got);
	r->off = pos;
	r->len = rc ? 0 : got;
	if (rc)
		return rc;
	if (got < n)
		return 1;
	*out = r->buf;
	return 0;
}

struct replay_buf {
	uint8_t *raw;
	size_t cap;
	ZSTD_DCtx *dctx; /* created at the first zstd record */
};

/* Reads the record at pos. Returns 0 with the record's bytes, length, type and next offset, 1 when the
 * record is bad (the cut point), or an error. */
static int read_record(struct reader *r, uint64_t base, uint64_t pos, struct replay_buf *rb,
		       const uint8_t **rec, size_t *len, uint8_t *type, uint64_t *next)
{
	const uint8_t *h, *p;
	int rc;
	if (r->size - pos < REC_HDR)
		return 1;
	rc = reader_get(r, pos, REC_HDR, &h);
	if (rc)
		return rc;
	uint32_t crc = get32(h), disk_len = get32(h + 4), raw_len = get32(h + 8);
	uint8_t t = h[12], flags = h[13];
	uint8_t hdr[REC_HDR];
	memcpy(hdr, h, REC_HDR); /* h may move when the payload is read */
	if ((flags != 0 && flags != FLAG_LZ4 && flags != FLAG_ZSTD) || h[14] || h[15] ||
	    raw_len > MAX_REC)
		return 1;
	if (flags ? disk_len == 0 || disk_len >= raw_len : disk_len != raw_len)
		return 1;
	if (r->size - pos - REC_HDR < disk_len)
		return 1;
	rc = reader_get(r, pos + REC_HDR, disk_len, &p);
	if (rc)
		return rc;
	if (rec_crc(p, disk_len, hdr, base + pos) != crc)
		return 1;
	if (flags) {
		if (raw_len > rb->cap) {
			uint8_t *b = ts_realloc(rb->raw, raw_len);
			if (!b)
				return -ENOMEM;
			rb->raw = b;
			rb->cap = raw_len;
		}
		/* A record whose CRC matches yet does not decompress was written by a
		 * buggy or foreign writer; cutting there is still the only safe choice. */
		if (flags == FLAG_LZ4) {
			int n = LZ4_decompress_safe((const char *)p, (char *)rb->raw, (int)disk_len,
						    (int)raw_len);
			if (n < 0 || (uint32_t)n != raw_len)
				return 1;
		} else {
			if (!rb->dctx && !(rb->dctx = ZSTD_createDCtx()))
				return -ENOMEM;
			/* One-shot into the flat buffer: no window is allocated, whatever
			 * window size the frame header claims. */
			size_t n = ZSTD_decompressDCtx(rb->dctx, rb->raw, raw_len, p, disk_len);
			if (ZSTD_isError(n) || n != raw_len)
				return 1;
		}
		p = rb->raw;
	}
	*rec = p;
	*len = raw_len;
	*type = t;
	*next = pos + REC_HDR + disk_len;
	return 0;
}

/* Cuts the log at segment i offset pos: unlinks later segments, then truncates
 * segment i there (unlinks it if pos == 0). Later segments go first so that a crash
 * in between leaves the bad record in place to be found and cut again. */
static int cut(struct ts_wal *w, size_t i, uint64_t pos, const char *why)
{
	char name[17];
	struct seg *s = &w->segs[i];
	uint64_t dropped_later = 0, tail = s->size - pos;
	size_t n_later = w->n_segs - i - 1;
	int rc = 0;

	while (w->n_segs > i + 1) {
		struct seg *l = &w->segs[w->n_segs - 1];
		seg_name(name, l->base);
		if (unlinkat(w->dirfd, name, 0) != 0)
			return -errno;
		dropped_later += l->size;
		w->n_segs--;
	}
	seg_name(name, s->base);
	if (pos == 0) {
		if (unlinkat(w->dirfd, name, 0) != 0)
			return -errno;
		w->n_segs--;
	} else if (tail > 0) {
		int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)pos) != 0)
			rc = -errno;
		else if (w->opts.sync != TS_WAL_SYNC_NEVER && ts__wal_io.fsync(fd) != 0)
			rc = -errno;
		close(fd);
		if (rc)
			return rc;
		s->size = pos;
	}
	rc = dir_sync(w);
	if (rc)
		return rc;
	ts_log(n_later ? TS_LOG_ERROR : TS_LOG_WARN,
	       "wal %s: %s at LSN %" PRIu64 " (segment %s); log cut there: dropped %" PRIu64
	       " bytes of this segment and %zu later segment(s) of %" PRIu64 " bytes%s",
	       w->dir, why, s->base + pos, name, tail, n_later, dropped_later,
	       n_later ? ": records after the damage are lost" : "");
	return 0;
}

/* Replays segment i; *cut_at receives the offset of a bad record, or the size. */
static int replay_segment(struct ts_wal *w, size_t i, uint64_t from_lsn, ts_wal_replay_fn fn,
			  void *arg, struct reader *r, struct replay_buf *rb, uint64_t *cut_at)
{
	char name[17];
	struct seg *s = &w->segs[i];
	struct stat st;
	int rc = 0;

	seg_name(name, s->base);
	r->fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	s->size = r->size = (uint64_t)st.st_size;
	s->n_records = 0;
	r->off = r->len = 0;
	uint64_t pos = s->size < SEG_HDR ? 0 : SEG_HDR;
	while (pos > 0 && pos < s->size) {
		const uint8_t *rec;
		size_t len;
		uint8_t type;
		uint64_t next;
		rc = read_record(r, s->base, pos, rb, &rec, &len, &type, &next);
		if (rc == 1) {
			rc = 0;
			break;
		}
		if (rc)
			goto out;
		s->n_records++;
		if (s->base + pos >= from_lsn) {
			rc = fn(arg, s->base + pos, type, rec, len);
			if (rc)
				goto out;
		}
		pos = next;
	}
	*cut_at = pos;
out:
	close(r->fd);
	r->fd = -1;
	return rc;
}

int ts_wal_replay(struct ts_wal *w, uint64_t from_lsn, ts_wal_replay_fn fn, void *arg)
{
	struct reader r = { .fd = -1 };
	struct replay_buf rb = { 0 };
	int rc = 0, io_fail = 0;
	uint64_t end = 0;

	if (!w || !fn)
		return -EINVAL;
	pthread_mutex_lock(&w->mu);
	if (w->appended) {
		pthread_mutex_unlock(&w->mu);
		return -EINVAL;
	}
	/* The interval thread keeps off while not ready; appends are refused. */
	while (w->syncing)
		pthread_cond_wait(&w->sync_cv, &w->mu);
	w->ready = 0;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	pthread_mutex_unlock(&w->mu);

	if (w->n_segs)
		end = w->segs[0].base;
	for (size_t i = 0; i < w->n_segs; i++) {
		struct seg *s = &w->segs[i];
		uint64_t cut_at = 0;
		if (i > 0 && s->size >= SEG_HDR && s->prev_end != end) {
			rc = cut(w, i - 1, w->segs[i - 1].size,
				 "next segment does not follow (one missing?)");
			break;
		}
		rc = replay_segment(w, i, from_lsn, fn, arg, &r, &rb, &cut_at);
		if (rc)
			goto out;
		if (cut_at < s->size || cut_at == 0) {
			rc = cut(w, i, cut_at, cut_at == 0 ? "torn segment header" : "bad record");
			if (cut_at > 0)
				end = s->base + cut_at;
			break;
		}
		end = s->base + s->size;
	}
	if (rc)
		goto out;

	/* LSNs below from_lsn were handed out before; never hand them out again. */
	uint64_t start = from_lsn > end && from_lsn < MAX_BASE ? from_lsn : end;
	pthread_mutex_lock(&w->mu);
	if (w->n_segs == 0 || start != end) {
		rc = segs_reserve(w, w->n_segs + 1);
		if (rc == 0)
			rc = create_segment(w, start, end, &w->fd, &io_fail);
		if (rc == 0) {
			w->segs[w->n_segs++] = (struct seg){ start, end, SEG_HDR, 0 };
			if (start != end)
				ts_log(TS_LOG_WARN,
				       "wal %s: log ends at LSN %" PRIu64 ", before the "
				       "replay start %" PRIu64 "; appends continue from there",
				       w->dir, end, start);
		}
	} else {
		const struct seg *last = &w->segs[w->n_segs - 1];
		char name[17];
		seg_name(name, last->base);
		w->fd = openat(w->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (w->fd < 0)
			rc = -errno;
	}
	if (rc == 0) {
		const struct seg *last = &w->segs[w->n_segs - 1];
		w->end = w->synced_end = last->base + last->size;
		w->ready = 1;
	}
	pthread_mutex_unlock(&w->mu);
out:
	ts_free(r.buf);
	ts_free(rb.raw);
	ZSTD_freeDCtx(rb.dctx);
	return rc;
}

/* Compresses src into dst (cap bytes) with a pooled context. Returns the frame's
 * length, or 0 when it does not fit in cap or zstd fails (then the record is stored
 * as is, which is always correct). */
static size_t compress_zstd(struct ts_wal *w, void *dst, size_t cap, const void *src, size_t len)
{
	ZSTD_CCtx *c = NULL;
	pthread_mutex_lock(&w->cmu);
	if (w->n_cctx)
		c = w->cctx[--w->n_cctx];
	pthread_mutex_unlock(&w->cmu);
	/* Parameters stick to a context across ZSTD_compress2 calls (each starts a new
	 * frame): set once, when it is created. */
	if (!c) {
		c = ZSTD_createCCtx();
		if (c &&
		    (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
		     ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)))) {
			ZSTD_freeCCtx(c);
			c = NULL;
		}
		if (!c)
			return 0;
	}
	size_t n = ZSTD_compress2(c, dst, cap, src, len);
	if (ZSTD_isError(n))
		n = 0;
	pthread_mutex_lock(&w->cmu);
	if (w->n_cctx < CCTX_POOL) {
		w->cctx[w->n_cctx++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&w->cmu);
	ZSTD_freeCCtx(c);
	return n;
}

int ts_wal_append(struct ts_wal *w, uint8_t type, const void *rec, size_t len, uint64_t *lsn_out)
{
	int rc = 0;
	if (!w || (!rec && len) || !lsn_out)
		return -EINVAL;
	if (len > MAX_REC)
		return TS_ELIMIT;
	uint8_t *buf = ts_malloc(REC_HDR + len);
	if (!buf)
		return -ENOMEM;

	/* Encode and checksum the payload before taking the lock. */
	uint8_t flags = 0;
	size_t disk_len = len;
	if (w->opts.compress == TS_WAL_COMPRESS_LZ4 && len > COMPRESS_MIN) {
		int n = LZ4_compress_default(rec, (char *)buf + REC_HDR, (int)len, (int)len - 1);
		if (n > 0) {
			flags = FLAG_LZ4;
			disk_len = (size_t)n;
		}
	} else if (w->opts.compress == TS_WAL_COMPRESS_ZSTD && len > COMPRESS_MIN) {
		size_t n = compress_zstd(w, buf + REC_HDR, len - 1, rec, len);
		if (n) {
			flags = FLAG_ZSTD;
			disk_len = n;
		}
	}
	if (!flags && len)
		memcpy(buf + REC_HDR, rec, len);
	put32(buf + 4, (uint32_t)disk_len);
	put32(buf + 8, (uint32_t)len);
	buf[12] = type;
	buf[13] = flags;
	buf[14] = buf[15] = 0;

	pthread_mutex_lock(&w->mu);
	if ((rc = writable_locked(w)))
		goto out;
	if (need_roll(w)) {
		rc = roll_locked(w, 1);
		if (rc == TS_EIO)
			goto out;
		/* Anything else (no memory, no inode): keep growing this segment and try
		 * again on the next append; the record is still safe. */
		if (rc)
			ts_log(TS_LOG_WARN, "wal %s: cannot start a new segment: %s", w->dir,
			       ts_strerror(rc));
		rc = 0;
	}
	uint64_t lsn = w->end;
	put32(buf, rec_crc(buf + REC_HDR, disk_len, buf, lsn));
	rc = write_all(w->fd, buf, REC_HDR + disk_len);
	if (rc) {
		rc = cut_failed_append_locked(w, rc);
		goto out;
	}
	if (w->full) {
		ts_log(TS_LOG_INFO, "wal %s: space is back; appending again", w->dir);
		w->full = 0;
	}
	w->appended = 1;
	w->end += REC_HDR + disk_len;
	w->segs[w->n_segs - 1].size += REC_HDR + disk_len;
	w->segs[w->n_segs - 1].n_records++;
	*lsn_out = lsn;
out:
	pthread_mutex_unlock(&w->mu);
	ts_free(buf);
	return rc;
}

int ts_wal_commit(struct ts_wal *w, uint64_t lsn)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	if (w->opts.sync != TS_WAL_SYNC_ALWAYS || !w->ready) {
		rc = w->err;
		goto out;
	}
	/* synced_end is always a record boundary, so passing lsn covers the record. An
	 * LSN not yet written is clamped to the end instead of waiting forever. */
	uint64_t need = lsn < w->end ? lsn + 1 : w->end;
	for (;;) {
		if (w->err) {
			rc = w->err;
			break;
		}
		if (w->synced_end >= need)
			break;
		if (w->syncing) {
			pthread_cond_wait(&w->sync_cv, &w->mu);
			continue;
		}
		sync_leader_locked(w);
	}
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

uint64_t ts_wal_end_lsn(struct ts_wal *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t end = w->end;
	pthread_mutex_unlock(&w->mu);
	return end;
}

int ts_wal_roll(struct ts_wal *w, uint64_t *next_lsn_out)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	if ((rc = writable_locked(w)))
		goto out;
	/* An empty active segment already starts where a new one would. */
	if (w->segs[w->n_segs - 1].n_records > 0)
		rc = roll_locked(w, 0);
	if (rc == 0 && next_lsn_out)
		*next_lsn_out = w->segs[w->n_segs - 1].base;
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int ts_wal_truncate_before(struct ts_wal *w, uint64_t lsn)
{
	char name[17];
	size_t n_del = 0;
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	/* The last segment is the active one (or will be after replay): never removed. */
	while (n_del + 1 < w->n_segs && w->segs[n_del + 1].base <= lsn) {
		seg_name(name, w->segs[n_del].base);
		if (unlinkat(w->dirfd, name, 0) != 0) {
			rc = -errno;
			break;
		}
		n_del++;
	}
	if (n_del) {
		memmove(w->segs, w->segs + n_del, (w->n_segs - n_del) * sizeof *w->segs);
		w->n_segs -= n_del;
		int r = dir_sync(w);
		if (rc == 0)
			rc = r;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void ts_wal_stats(struct ts_wal *w, struct ts_wal_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n_segs; i++) {
		out->bytes_on_disk += w->segs[i].size;
		out->n_records += w->segs[i].n_records;
	}
	out->n_segments = w->n_segs;
	out->n_syncs = w->n_syncs;
	out->sync_ns_total = w->sync_ns_total;
	out->sync_ns_max = w->sync_ns_max;
	pthread_mutex_unlock(&w->mu);
}

void ts_wal_close(struct ts_wal *w)
{
	if (!w)
		return;
	if (w->has_thread) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->tick_cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_lock(&w->mu);
	while (w->syncing)
		pthread_cond_wait(&w->sync_cv, &w->mu);
	if (w->ready && !w->err && w->opts.sync != TS_WAL_SYNC_NEVER && w->end > w->synced_end) {
		uint64_t t0 = now_ns();
		if (ts__wal_io.fdatasync(w->fd) != 0)
			set_err_locked(w, "fdatasync at close", -errno);
		else
			note_sync_locked(w, t0, w->end);
	}
	pthread_mutex_unlock(&w->mu);
	destroy(w);
}

int ts_wal_copy(struct ts_wal *w, uint64_t from_lsn, uint64_t before_lsn, const char *dst_dir)
{
	struct piece {
		uint64_t base, size;
	} *pc = NULL;
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	pc = ts_malloc((w->n_segs ? w->n_segs : 1) * sizeof *pc);
	for (size_t i = 0; pc && i < w->n_segs; i++) {
		uint64_t next = i + 1 < w->n_segs ? w->segs[i + 1].base : UINT64_MAX;
		/* Whole segments before before_lsn (closed ones: no append grows them). */
		if (w->segs[i].base >= before_lsn || next <= from_lsn || next > before_lsn)
			continue;
		pc[n++] = (struct piece){ w->segs[i].base, w->segs[i].size };
	}
	pthread_mutex_unlock(&w->mu);
	if (!pc)
		return -ENOMEM;
	if (mkdir(dst_dir, 0755) != 0 && errno != EEXIST) {
		ts_free(pc);
		return -errno;
	}
	int dfd = open(dst_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		rc = -errno;
	char *buf = rc ? NULL : ts_malloc(1u << 20);
	if (rc == 0 && !buf)
		rc = -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char name[17];
		seg_name(name, pc[i].base);
		int in = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
		int out = in < 0 ? -1
				 : openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (in < 0 || out < 0)
			rc = -errno;
		for (uint64_t off = 0; rc == 0 && off < pc[i].size;) {
			size_t want = pc[i].size - off < (1u << 20) ? (size_t)(pc[i].size - off)
								    : 1u << 20;
			ssize_t r = pread(in, buf, want, (off_t)off);
			if (r <= 0) {
				rc = r < 0 ? -errno : TS_EIO;
				break;
			}
			for (ssize_t done = 0; done < r && rc == 0;) {
				ssize_t x = write(out, buf + done, (size_t)(r - done));
				if (x < 0 && errno != EINTR)
					rc = -errno;
				else if (x > 0)
					done += x;
			}
			off += (uint64_t)r;
		}
		if (rc == 0 && fsync(out) != 0)
			rc = -errno;
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
	}
	if (rc == 0 && fsync(dfd) != 0)
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	ts_free(buf);
	ts_free(pc);
	return rc;
}
