/*
 * test_wal.c - the write-ahead log: round trips across segment rolls, replay from an
 * LSN, torn tails cut at every byte, bit flips, a corrupt middle segment, truncation,
 * group commit from several threads, injected write/fdatasync failures, injected
 * allocation failures, and the three sync policies.
 *
 * Deterministic: records derive from a seed (TS_SEED overrides the default) printed
 * at start. Test hooks come from storage/wal_int.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/crc32c.h"
#include "storage/err.h"
#include "storage/log.h"
#include "storage/mem.h"
#include "storage/wal.h"
#include "storage/wal_int.h"
#include "testutil.h"

static uint64_t g_seed = 0x5eed2026;

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3u;
	return h;
}

#define MAX_GEN (1u << 20)

/* Record i of a stream: size 0..1 MiB (mostly small), compressible or random. */
static size_t gen(uint64_t stream, size_t i, size_t max_len, uint8_t *buf, uint8_t *type)
{
	uint64_t s = g_seed * 1000003u + stream * 7919u + i;
	uint64_t r = tu_rand(&s);
	size_t len;
	/* The size class follows i so every seed covers every class. */
	switch (i % 10) {
	case 0: len = 0; break;
	case 1:
	case 2: len = 1 + (size_t)(tu_rand(&s) % 64); break;
	case 3:
	case 4:
	case 5:
	case 6:
	case 7: len = 65 + (size_t)(tu_rand(&s) % 4000); break;
	default: len = i % 20 == 9 ? MAX_GEN : MAX_GEN / 4 + (size_t)(tu_rand(&s) % (MAX_GEN / 2));
	}
	if (len > max_len)
		len = max_len;
	*type = (uint8_t)(r >> 8);
	if ((r >> 16) & 1) {
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)("abcdefgh"[(k / 7 + (r >> 20)) % 8]);
	} else {
		for (size_t k = 0; k < len; k += 8) {
			uint64_t v = tu_rand(&s);
			memcpy(buf + k, &v, len - k < 8 ? len - k : 8);
		}
	}
	return len;
}

struct rec {
	uint64_t lsn, hash;
	size_t len;
	uint8_t type;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static void recs_push(struct recs *rs, uint64_t lsn, uint8_t type, const uint8_t *p, size_t len)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 64;
		rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
		assert_non_null(rs->v);
	}
	rs->v[rs->n++] = (struct rec){ lsn, fnv(p, len), len, type };
}

static int collect(void *arg, uint64_t lsn, uint8_t type, const uint8_t *rec, size_t len)
{
	recs_push(arg, lsn, type, rec, len);
	return 0;
}

static void recs_equal(const struct recs *got, const struct recs *want, size_t from, size_t to)
{
	if (got->n != to - from)
		fail_msg("seed %#llx: replayed %zu records, want %zu", (unsigned long long)g_seed,
			 got->n, to - from);
	for (size_t i = 0; i < got->n; i++) {
		const struct rec *a = &got->v[i], *b = &want->v[from + i];
		if (a->lsn != b->lsn || a->hash != b->hash || a->len != b->len ||
		    a->type != b->type)
			fail_msg("seed %#llx: record %zu differs (lsn %llu/%llu len %zu/%zu)",
				 (unsigned long long)g_seed, from + i, (unsigned long long)a->lsn,
				 (unsigned long long)b->lsn, a->len, b->len);
	}
}

static size_t count_files(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void seg_path(char *out, size_t cap, const char *dir, uint64_t base)
{
	snprintf(out, cap, "%s/%016llx", dir, (unsigned long long)base);
}

/* Base of the segment holding lsn: the largest segment name <= lsn. */
static uint64_t seg_of(const char *dir, uint64_t lsn)
{
	uint64_t best = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strlen(e->d_name) != 16)
			continue;
		uint64_t b = strtoull(e->d_name, NULL, 16);
		if (b <= lsn && b >= best)
			best = b;
	}
	closedir(d);
	return best;
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static const struct ts_wal_opts OPTS_NEVER = { TS_WAL_SYNC_NEVER, 0, 0, 1 };

/* Appends n generated records of `stream`; expected gets them. */
static void append_n(struct ts_wal *w, uint64_t stream, size_t first, size_t n, size_t max_len,
		     struct recs *expected, int commit)
{
	uint8_t *buf = malloc(MAX_GEN);
	assert_non_null(buf);
	for (size_t i = first; i < first + n; i++) {
		uint8_t type;
		size_t len = gen(stream, i, max_len, buf, &type);
		uint64_t lsn;
		assert_int_equal(ts_wal_append(w, type, buf, len, &lsn), 0);
		if (commit)
			assert_int_equal(ts_wal_commit(w, lsn), 0);
		recs_push(expected, lsn, type, buf, len);
	}
	free(buf);
}

static void reopen_replay(const char *dir, const struct ts_wal_opts *o, uint64_t from,
			  struct recs *got, struct ts_wal **keep)
{
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, o, &w), 0);
	got->n = 0;
	assert_int_equal(ts_wal_replay(w, from, collect, got), 0);
	if (keep)
		*keep = w;
	else
		ts_wal_close(w);
}

/* ---- I/O hooks ---------------------------------------------------------------- */

static atomic_long write_countdown; /* >0: the write that brings it to 0 fails */
static atomic_int write_torn;	    /* the failing write first writes half */
static atomic_int write_errno;	    /* errno of the failing write (EIO when 0) */
static atomic_int fdatasync_fail;   /* next fdatasync fails */
static atomic_int fsync_fail;
static atomic_int sync_sleep_us;
static atomic_int sync_fake; /* syncs succeed without touching the disk */
static atomic_ullong max_covered;

static ssize_t hook_write(int fd, const void *buf, size_t len)
{
	if (atomic_load(&write_countdown) > 0 && atomic_fetch_sub(&write_countdown, 1) == 1) {
		if (atomic_load(&write_torn) && len > 1) {
			ssize_t r = write(fd, buf, len / 2);
			(void)r;
		}
		errno = atomic_load(&write_errno) ? atomic_load(&write_errno) : EIO;
		return -1;
	}
	return write(fd, buf, len);
}

static int hook_fdatasync(int fd)
{
	if (atomic_exchange(&fdatasync_fail, 0)) {
		errno = EIO;
		return -1;
	}
	int us = atomic_load(&sync_sleep_us);
	if (us)
		usleep((useconds_t)us);
	return atomic_load(&sync_fake) ? 0 : fdatasync(fd);
}

static int hook_fsync(int fd)
{
	if (atomic_exchange(&fsync_fail, 0)) {
		errno = EIO;
		return -1;
	}
	return atomic_load(&sync_fake) ? 0 : fsync(fd);
}

static void hook_on_sync(uint64_t covered)
{
	unsigned long long cur = atomic_load(&max_covered);
	while (covered > cur && !atomic_compare_exchange_weak(&max_covered, &cur, covered))
		;
}

static void hooks_install(void)
{
	atomic_store(&write_countdown, 0);
	atomic_store(&write_torn, 0);
	atomic_store(&write_errno, 0);
	atomic_store(&fdatasync_fail, 0);
	atomic_store(&fsync_fail, 0);
	atomic_store(&sync_sleep_us, 0);
	atomic_store(&sync_fake, 0);
	atomic_store(&max_covered, 0);
	ts__wal_io.write = hook_write;
	ts__wal_io.fdatasync = hook_fdatasync;
	ts__wal_io.fsync = hook_fsync;
	ts__wal_io.on_sync = hook_on_sync;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 }, got = { 0 };
	for (int compress = 0; compress <= TS_WAL_COMPRESS_LZ4; compress++) {
		tu_mkdtemp(dir, sizeof dir, "wal");
		struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 64u << 10, compress };
		struct ts_wal *w;
		want.n = 0;
		assert_int_equal(ts_wal_open(dir, &o, &w), 0);
		assert_int_equal(ts_wal_end_lsn(w), TS_WAL_SEG_HDR_BYTES);
		append_n(w, 1, 0, 60, MAX_GEN, &want, 0);
		struct ts_wal_stats st;
		ts_wal_stats(w, &st);
		assert_true(st.n_segments >= 3);
		assert_int_equal(st.n_records, 60);
		size_t max_len = 0, n_empty = 0;
		for (size_t i = 0; i < want.n; i++) {
			max_len = want.v[i].len > max_len ? want.v[i].len : max_len;
			n_empty += want.v[i].len == 0;
		}
		/* The stream really spans the sizes it claims to. */
		assert_true(max_len > MAX_GEN / 2);
		assert_true(n_empty >= 1);
		if (!compress)
			assert_true(st.bytes_on_disk > (4u << 20));
		assert_int_equal(st.n_syncs, 0);
		uint64_t end = ts_wal_end_lsn(w);
		assert_int_equal(st.bytes_on_disk, end - 0);
		ts_wal_close(w);

		reopen_replay(dir, &o, 0, &got, &w);
		recs_equal(&got, &want, 0, want.n);
		assert_int_equal(ts_wal_end_lsn(w), end);
		struct ts_wal_stats st2;
		ts_wal_stats(w, &st2);
		assert_int_equal(st2.n_records, 60);
		assert_int_equal(st2.n_segments, st.n_segments);
		assert_int_equal(st2.bytes_on_disk, st.bytes_on_disk);
		/* Appends continue after the replayed end, and a second run sees both. */
		append_n(w, 1, 60, 5, 5000, &want, 0);
		ts_wal_close(w);
		reopen_replay(dir, &o, 0, &got, NULL);
		recs_equal(&got, &want, 0, want.n);
		tu_rmtree(dir);
	}
	free(want.v);
	free(got.v);
}

static void test_compression_saves(void **state)
{
	(void)state;
	char dir[4096];
	uint8_t buf[10000];
	memset(buf, 'x', sizeof buf);
	uint64_t sizes[3];
	for (int compress = 0; compress <= TS_WAL_COMPRESS_LZ4; compress++) {
		tu_mkdtemp(dir, sizeof dir, "wal");
		struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 0, compress };
		struct ts_wal *w;
		uint64_t lsn;
		assert_int_equal(ts_wal_open(dir, &o, &w), 0);
		assert_int_equal(ts_wal_append(w, 7, buf, sizeof buf, &lsn), 0);
		sizes[compress] = ts_wal_end_lsn(w) - lsn;
		ts_wal_close(w);
		tu_rmtree(dir);
	}
	assert_int_equal(sizes[0], TS_WAL_REC_HDR_BYTES + sizeof buf);
	assert_true(sizes[TS_WAL_COMPRESS_ZSTD] < 200);
	assert_true(sizes[TS_WAL_COMPRESS_LZ4] < 200);
}

/* A log written by a release that wrote LZ4 records, continued by one that writes
 * zstd records: one replay hands back both kinds, in order. */
static void test_lz4_log_continued_with_zstd(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 }, got = { 0 };
	struct ts_wal_opts lz4 = { TS_WAL_SYNC_NEVER, 0, 64u << 10, TS_WAL_COMPRESS_LZ4 };
	struct ts_wal_opts zstd = { TS_WAL_SYNC_NEVER, 0, 64u << 10, TS_WAL_COMPRESS_ZSTD };
	struct ts_wal *w;
	tu_mkdtemp(dir, sizeof dir, "wal");
	assert_int_equal(ts_wal_open(dir, &lz4, &w), 0);
	append_n(w, 1, 0, 20, MAX_GEN, &want, 0);
	ts_wal_close(w);
	reopen_replay(dir, &zstd, 0, &got, &w);
	recs_equal(&got, &want, 0, want.n);
	append_n(w, 1, 20, 20, MAX_GEN, &want, 0);
	ts_wal_close(w);
	reopen_replay(dir, &zstd, 0, &got, NULL);
	assert_int_equal(got.n, 40);
	recs_equal(&got, &want, 0, want.n);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_from_lsn(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 20000, 1 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 2, 0, 40, 3000, &want, 0);
	ts_wal_close(w);
	size_t ks[] = { 0, 1, 17, 39 };
	for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
		size_t k = ks[j];
		reopen_replay(dir, &o, want.v[k].lsn, &got, NULL);
		recs_equal(&got, &want, k, want.n);
		/* An LSN inside record k starts at the record after it. */
		reopen_replay(dir, &o, want.v[k].lsn + 1, &got, NULL);
		recs_equal(&got, &want, k + 1, want.n);
	}
	reopen_replay(dir, &o, UINT64_MAX, &got, NULL);
	assert_int_equal(got.n, 0);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static int stop_at_5(void *arg, uint64_t lsn, uint8_t type, const uint8_t *rec, size_t len)
{
	struct recs *rs = arg;
	if (rs->n == 5)
		return 42;
	return collect(arg, lsn, type, rec, len);
}

static void test_replay_fn_stops(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	append_n(w, 3, 0, 10, 100, &want, 0);
	ts_wal_close(w);
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	assert_int_equal(ts_wal_replay(w, 0, stop_at_5, &got), 42);
	recs_equal(&got, &want, 0, 5);
	uint64_t lsn;
	/* Not positioned at the end: appends are refused rather than misplaced. */
	assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), -EINVAL);
	got.n = 0;
	assert_int_equal(ts_wal_replay(w, 0, collect, &got), 0);
	recs_equal(&got, &want, 0, 10);
	assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), 0);
	/* Replay after an append would interleave with new records: refused. */
	assert_int_equal(ts_wal_replay(w, 0, collect, &got), -EINVAL);
	ts_wal_close(w);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_append_before_replay(void **state)
{
	(void)state;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal *w;
	uint64_t lsn, next;
	/* A new log needs no replay. */
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	assert_int_equal(ts_wal_append(w, 1, "abc", 3, &lsn), 0);
	assert_int_equal(lsn, TS_WAL_SEG_HDR_BYTES);
	assert_int_equal(ts_wal_commit(w, lsn), 0);
	ts_wal_close(w);
	/* An existing one does. */
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	assert_int_equal(ts_wal_append(w, 1, "abc", 3, &lsn), -EINVAL);
	assert_int_equal(ts_wal_roll(w, &next), -EINVAL);
	ts_wal_close(w);
	tu_rmtree(dir);
}

/* Writes one WAL of n small records and returns the segment bytes; the last record
 * starts at *last_off. */
static uint8_t *one_segment(const char *dir, size_t n, size_t last_len, struct recs *want,
			    size_t *size, size_t *last_off, int compress)
{
	struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 0, compress };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 4, 0, n - 1, 50, want, 0);
	uint8_t rec[4096], type = 9;
	for (size_t k = 0; k < last_len; k++)
		rec[k] = (uint8_t)(k % 3 ? 'a' : k);
	uint64_t lsn;
	assert_int_equal(ts_wal_append(w, type, rec, last_len, &lsn), 0);
	recs_push(want, lsn, type, rec, last_len);
	ts_wal_close(w);
	char p[4200];
	seg_path(p, sizeof p, dir, 0);
	*size = (size_t)file_size(p);
	*last_off = (size_t)lsn;
	uint8_t *bytes = malloc(*size);
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	assert_int_equal(fread(bytes, 1, *size, f), *size);
	fclose(f);
	return bytes;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void test_torn_tail_every_offset(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	for (int compress = 0; compress <= TS_WAL_COMPRESS_LZ4; compress++) {
		struct recs want = { 0 }, got = { 0 };
		size_t size, last_off;
		tu_mkdtemp(dir, sizeof dir, "wal");
		uint8_t *bytes = one_segment(dir, 6, 300, &want, &size, &last_off, compress);
		seg_path(p, sizeof p, dir, 0);
		for (size_t len = last_off; len < size; len++) {
			write_file(p, bytes, len);
			struct ts_wal *w;
			reopen_replay(dir, &OPTS_NEVER, 0, &got, &w);
			recs_equal(&got, &want, 0, 5);
			assert_int_equal(file_size(p), (off_t)last_off);
			assert_int_equal(ts_wal_end_lsn(w), last_off);
			uint64_t lsn;
			assert_int_equal(ts_wal_append(w, 3, "after the cut", 13, &lsn), 0);
			assert_int_equal(lsn, last_off);
			ts_wal_close(w);
			struct recs want2 = want;
			want2.n = 5;
			want2.v = malloc(6 * sizeof *want2.v);
			memcpy(want2.v, want.v, 5 * sizeof *want2.v);
			want2.cap = 6;
			recs_push(&want2, lsn, 3, (const uint8_t *)"after the cut", 13);
			reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
			recs_equal(&got, &want2, 0, 6);
			free(want2.v);
		}
		/* The whole file is intact. */
		write_file(p, bytes, size);
		reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
		recs_equal(&got, &want, 0, 6);
		free(bytes);
		free(want.v);
		free(got.v);
		tu_rmtree(dir);
	}
}

static void test_bit_flips_in_last_record(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	size_t size, last_off;
	uint64_t s = g_seed;
	tu_mkdtemp(dir, sizeof dir, "wal");
	uint8_t *bytes = one_segment(dir, 4, 200, &want, &size, &last_off, 1);
	seg_path(p, sizeof p, dir, 0);
	uint8_t *mod = malloc(size);
	for (size_t off = last_off; off < size; off++) {
		memcpy(mod, bytes, size);
		mod[off] ^= (uint8_t)(1u << (tu_rand(&s) % 8));
		write_file(p, mod, size);
		reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
		recs_equal(&got, &want, 0, 3);
		assert_int_equal(file_size(p), (off_t)last_off);
	}
	free(mod);
	free(bytes);
	free(want.v);
	free(got.v);
	tu_rmtree(dir);
}

static void test_corrupt_middle_segment(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 1000, 0 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 5, 0, 60, 200, &want, 0);
	struct ts_wal_stats st;
	ts_wal_stats(w, &st);
	assert_true(st.n_segments >= 5);
	ts_wal_close(w);
	/* Damage record k, somewhere in the middle of the log. */
	size_t k = 30;
	uint64_t base = seg_of(dir, want.v[k].lsn);
	seg_path(p, sizeof p, dir, base);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	off_t at = (off_t)(want.v[k].lsn - base + 5);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
	/* Documented: every record from the damaged one on is lost, including whole
	 * later segments, and the loss is logged as an error. */
	reopen_replay(dir, &o, 0, &got, &w);
	recs_equal(&got, &want, 0, k);
	assert_int_equal(file_size(p), (off_t)(want.v[k].lsn - base));
	assert_int_equal(seg_of(dir, UINT64_MAX), base);
	ts_wal_stats(w, &st);
	assert_int_equal(st.n_records, k);
	assert_int_equal(count_files(dir), st.n_segments);
	assert_int_equal(ts_wal_end_lsn(w), want.v[k].lsn);
	want.n = k;
	append_n(w, 5, 100, 10, 200, &want, 0);
	ts_wal_close(w);
	reopen_replay(dir, &o, 0, &got, NULL);
	recs_equal(&got, &want, 0, want.n);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

/* The tsdb keeps a checkpoint LSN and replays from it; if the log is cut below it,
 * new records must still get LSNs above it or the next replay would skip them. */
static void test_lsns_never_reused_after_cut(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 800, 0 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 17, 0, 40, 100, &want, 0);
	ts_wal_close(w);
	uint64_t ckpt = want.v[30].lsn;
	/* Damage record 10: the cut drops records 10..39, below and above ckpt. */
	uint64_t base = seg_of(dir, want.v[10].lsn);
	seg_path(p, sizeof p, dir, base);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, (off_t)(want.v[10].lsn - base + 13)), 1);
	close(fd);
	reopen_replay(dir, &o, ckpt, &got, &w);
	assert_int_equal(got.n, 0);
	assert_int_equal(ts_wal_end_lsn(w), ckpt + TS_WAL_SEG_HDR_BYTES);
	uint64_t lsn;
	want.n = 10;
	assert_int_equal(ts_wal_append(w, 1, "new", 3, &lsn), 0);
	assert_true(lsn > ckpt);
	recs_push(&want, lsn, 1, (const uint8_t *)"new", 3);
	assert_int_equal(ts_wal_commit(w, lsn), 0);
	ts_wal_close(w);
	reopen_replay(dir, &o, ckpt, &got, NULL);
	recs_equal(&got, &want, 10, 11);
	/* The gap before the new segment is legitimate: a full replay reads across it. */
	reopen_replay(dir, &o, 0, &got, NULL);
	recs_equal(&got, &want, 0, 11);
	/* A from_lsn inside the log changes nothing. */
	reopen_replay(dir, &o, want.v[5].lsn, &got, &w);
	assert_int_equal(ts_wal_end_lsn(w), lsn + TS_WAL_REC_HDR_BYTES + 3);
	ts_wal_close(w);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_gap_between_segments(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 500, 0 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 6, 0, 30, 100, &want, 0);
	ts_wal_close(w);
	/* Chop the first segment's last record off without touching the rest: as if a
	 * crash came between a cut's truncation and the unlinks that follow it. */
	uint64_t second = seg_of(dir, want.v[want.n - 1].lsn);
	size_t k = 0;
	while (want.v[k + 1].lsn < second)
		k++;
	uint64_t base1 = seg_of(dir, want.v[k].lsn);
	seg_path(p, sizeof p, dir, base1);
	assert_int_equal(truncate(p, (off_t)(want.v[k].lsn - base1)), 0);
	reopen_replay(dir, &o, 0, &got, NULL);
	recs_equal(&got, &want, 0, k);
	assert_int_equal(seg_of(dir, UINT64_MAX), base1);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_torn_segment_header(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal *w;
	uint64_t next;
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	append_n(w, 7, 0, 5, 100, &want, 0);
	assert_int_equal(ts_wal_roll(w, &next), 0);
	uint64_t lsn;
	assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), 0);
	assert_int_equal(lsn, next + TS_WAL_SEG_HDR_BYTES);
	ts_wal_close(w);
	seg_path(p, sizeof p, dir, next);
	assert_int_equal(truncate(p, 7), 0);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, &w);
	recs_equal(&got, &want, 0, 5);
	assert_int_equal(ts_wal_end_lsn(w), next);
	append_n(w, 7, 10, 2, 100, &want, 0);
	ts_wal_close(w);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
	recs_equal(&got, &want, 0, 7);
	/* Only the first segment header, torn: replay starts the log again. */
	tu_rmtree(dir);
	tu_mkdtemp(dir, sizeof dir, "wal");
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	ts_wal_close(w);
	seg_path(p, sizeof p, dir, 0);
	assert_int_equal(truncate(p, 3), 0);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, &w);
	assert_int_equal(got.n, 0);
	assert_int_equal(ts_wal_end_lsn(w), TS_WAL_SEG_HDR_BYTES);
	ts_wal_close(w);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_foreign_and_misnamed_files(void **state)
{
	(void)state;
	char dir[4096], p[4200], q[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), 0);
	append_n(w, 8, 0, 3, 100, &want, 0);
	ts_wal_close(w);
	/* Files that are not segments are left alone; interrupted creations removed. */
	snprintf(p, sizeof p, "%s/checkpoint", dir);
	write_file(p, (const uint8_t *)"ck", 2);
	snprintf(p, sizeof p, "%s/00000000000fffff.tmp", dir);
	write_file(p, (const uint8_t *)"TSW", 3);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
	recs_equal(&got, &want, 0, 3);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof p, "%s/checkpoint", dir);
	assert_int_equal(access(p, F_OK), 0);

	/* A segment under another name: its header disagrees. */
	seg_path(p, sizeof p, dir, 0);
	seg_path(q, sizeof q, dir, 0x1000);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), TS_ECORRUPT);
	assert_int_equal(rename(q, p), 0);

	/* Bad magic; a version we do not know (with a valid header CRC). */
	uint8_t h[TS_WAL_SEG_HDR_BYTES];
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
	uint8_t bad[TS_WAL_SEG_HDR_BYTES];
	memcpy(bad, h, sizeof h);
	bad[0] = 'X';
	assert_int_equal(pwrite(fd, bad, sizeof bad, 0), (ssize_t)sizeof bad);
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), TS_ECORRUPT);
	memcpy(bad, h, sizeof h);
	bad[5] = 2;
	put_le(bad + 24, ts_crc32c(0, bad, 24), 4);
	assert_int_equal(pwrite(fd, bad, sizeof bad, 0), (ssize_t)sizeof bad);
	assert_int_equal(ts_wal_open(dir, &OPTS_NEVER, &w), TS_EVERSION);
	assert_int_equal(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
	recs_equal(&got, &want, 0, 3);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_limits_and_args(void **state)
{
	(void)state;
	char dir[4096];
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal *w;
	uint64_t lsn;
	struct ts_wal_opts bad = { (enum ts_wal_sync)7, 0, 0, 0 };
	struct ts_wal_opts always = { TS_WAL_SYNC_ALWAYS, 0, 0, 0 };
	assert_int_equal(ts_wal_open(dir, &bad, &w), -EINVAL);
	assert_int_equal(ts_wal_open(dir, &always, &w), 0);
	assert_int_equal(ts_wal_append(w, 1, "x", (size_t)TS_WAL_MAX_RECORD_BYTES + 1, &lsn),
			 TS_ELIMIT);
	assert_int_equal(ts_wal_append(w, 1, NULL, 1, &lsn), -EINVAL);
	assert_int_equal(ts_wal_append(w, 1, NULL, 0, &lsn), 0);
	/* A commit of an LSN never written does not hang. */
	assert_int_equal(ts_wal_commit(w, UINT64_MAX), 0);
	ts_wal_close(w);
	ts_wal_close(NULL);
	tu_rmtree(dir);
}

static void test_roll_and_truncate(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 0, 0 };
	struct ts_wal *w;
	uint64_t next[4];
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	for (int i = 0; i < 4; i++) {
		append_n(w, 9, (size_t)i * 10, 10, 200, &want, i == 3);
		assert_int_equal(ts_wal_roll(w, &next[i]), 0);
		assert_int_equal(ts_wal_end_lsn(w), next[i] + TS_WAL_SEG_HDR_BYTES);
		assert_int_equal(seg_of(dir, UINT64_MAX), next[i]);
	}
	/* Rolling an empty segment changes nothing. */
	uint64_t again;
	assert_int_equal(ts_wal_roll(w, &again), 0);
	assert_int_equal(again, next[3]);
	struct ts_wal_stats st;
	ts_wal_stats(w, &st);
	assert_int_equal(st.n_segments, 5);
	assert_int_equal(st.n_records, 40);
	/* LSN inside segment 2: segments 0 and 1 go, the one holding it stays. */
	assert_int_equal(ts_wal_truncate_before(w, want.v[25].lsn), 0);
	ts_wal_stats(w, &st);
	assert_int_equal(st.n_segments, 3);
	assert_int_equal(st.n_records, 20);
	assert_int_equal(count_files(dir), 3);
	/* At a segment boundary: everything before it goes. */
	assert_int_equal(ts_wal_truncate_before(w, next[2]), 0);
	ts_wal_stats(w, &st);
	assert_int_equal(st.n_segments, 2);
	/* Never the active segment. */
	assert_int_equal(ts_wal_truncate_before(w, UINT64_MAX), 0);
	ts_wal_stats(w, &st);
	assert_int_equal(st.n_segments, 1);
	assert_int_equal(st.n_records, 0);
	uint64_t lsn;
	assert_int_equal(ts_wal_append(w, 2, "tail", 4, &lsn), 0);
	recs_push(&want, lsn, 2, (const uint8_t *)"tail", 4);
	ts_wal_close(w);
	reopen_replay(dir, &o, 0, &got, NULL);
	recs_equal(&got, &want, 40, 41);
	/* Truncation before replay also keeps the last segment. */
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	assert_int_equal(ts_wal_truncate_before(w, UINT64_MAX), 0);
	ts_wal_close(w);
	assert_int_equal(count_files(dir), 1);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

#define GC_THREADS 4
#define GC_PER_THREAD 40

struct gc_arg {
	struct ts_wal *w;
	int id;
	int bad;
	uint64_t lsns[GC_PER_THREAD];
};

static void *gc_main(void *p)
{
	struct gc_arg *a = p;
	char rec[64];
	for (int i = 0; i < GC_PER_THREAD; i++) {
		int n = snprintf(rec, sizeof rec, "thread %d record %d", a->id, i);
		uint64_t lsn;
		if (ts_wal_append(a->w, (uint8_t)a->id, rec, (size_t)n, &lsn) != 0) {
			a->bad++;
			continue;
		}
		if (ts_wal_commit(a->w, lsn) != 0)
			a->bad++;
		/* The sync that released us began after our whole record was written. */
		if (atomic_load(&max_covered) < lsn + TS_WAL_REC_HDR_BYTES + (uint64_t)n)
			a->bad++;
		a->lsns[i] = lsn;
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	(void)state;
	char dir[4096];
	struct recs got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	hooks_install();
	atomic_store(&sync_sleep_us, 2000); /* a slow disk makes the groups visible */
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 4096, 0 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	for (int i = 0; i < GC_THREADS; i++) {
		args[i] = (struct gc_arg){ .w = w, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, gc_main, &args[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	struct ts_wal_stats st;
	ts_wal_stats(w, &st);
	print_message("group commit: %d commits, %llu syncs\n", GC_THREADS * GC_PER_THREAD,
		      (unsigned long long)st.n_syncs);
	assert_true(st.n_syncs >= 1);
	assert_true(st.n_syncs < GC_THREADS * GC_PER_THREAD);
	assert_true(st.sync_ns_max >= 2000000);
	assert_true(st.sync_ns_total >= st.sync_ns_max);
	assert_true(st.n_segments > 1);
	ts_wal_close(w);
	ts__wal_io_reset();
	reopen_replay(dir, &o, 0, &got, NULL);
	assert_int_equal(got.n, GC_THREADS * GC_PER_THREAD);
	/* Each thread's records come back in its order. */
	for (int t = 0; t < GC_THREADS; t++) {
		size_t j = 0;
		for (size_t i = 0; i < got.n; i++)
			if (got.v[i].type == t) {
				assert_true(j < GC_PER_THREAD);
				assert_int_equal(got.v[i].lsn, args[t].lsns[j]);
				j++;
			}
		assert_int_equal(j, GC_PER_THREAD);
	}
	tu_rmtree(dir);
	free(got.v);
}

/* Appends + commits under ALWAYS until the first failure; returns records acked. */
static size_t run_until_failure(struct ts_wal *w, struct recs *acked)
{
	uint8_t rec[300];
	for (size_t i = 0; i < 40; i++) {
		uint8_t type;
		size_t len = gen(10, i, sizeof rec, rec, &type);
		uint64_t lsn;
		int rc = ts_wal_append(w, type, rec, len, &lsn);
		if (rc == 0)
			rc = ts_wal_commit(w, lsn);
		if (rc != 0) {
			assert_int_equal(rc, TS_EIO);
			/* Sticky: nothing more is accepted. */
			assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), TS_EIO);
			assert_int_equal(ts_wal_commit(w, lsn), TS_EIO);
			uint64_t next;
			assert_int_equal(ts_wal_roll(w, &next), TS_EIO);
			return acked->n;
		}
		recs_push(acked, lsn, type, rec, len);
	}
	return acked->n;
}

static void check_acked_survive(const char *dir, const struct ts_wal_opts *o,
				const struct recs *acked)
{
	struct recs got = { 0 };
	reopen_replay(dir, o, 0, &got, NULL);
	/* Acknowledged records are all there; a record written but whose sync failed
	 * may or may not be. */
	assert_true(got.n >= acked->n && got.n <= acked->n + 1);
	struct recs head = { got.v, acked->n, got.cap };
	recs_equal(&head, acked, 0, acked->n);
	free(got.v);
}

static void test_io_write_failure_at_every_write(void **state)
{
	(void)state;
	char dir[4096];
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 1500, 1 };
	int saw_failure_after_acks = 0;
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1)); /* one line per case */
	for (long n = 1; n < 60; n++) {
		struct recs acked = { 0 };
		tu_mkdtemp(dir, sizeof dir, "wal");
		hooks_install();
		atomic_store(&write_torn, (int)(n & 1));
		/* Thousands of real fdatasyncs would make this slow on a busy disk; what is
		 * tested is the reaction to the failing write, not the disk. */
		atomic_store(&sync_fake, 1);
		atomic_store(&write_countdown, n);
		struct ts_wal *w;
		int rc = ts_wal_open(dir, &o, &w);
		if (rc != 0) {
			assert_int_equal(rc, -EIO);
			ts__wal_io_reset();
			tu_rmtree(dir);
			continue;
		}
		size_t k = run_until_failure(w, &acked);
		int failed = atomic_load(&write_countdown) == 0;
		ts_wal_close(w);
		ts__wal_io_reset();
		if (failed && k > 0)
			saw_failure_after_acks++;
		check_acked_survive(dir, &o, &acked);
		free(acked.v);
		tu_rmtree(dir);
	}
	ts_log_set_level(TS_LOG_ERROR);
	assert_true(saw_failure_after_acks > 20);
}

/* A write refused for want of space, at every write of a run (record or new segment
 * header, whole or torn): that append returns -ENOSPC, nothing of it stays, the log
 * stays writable, and every acknowledged record (before and after) replays in order. */
static void test_io_no_space_is_retryable(void **state)
{
	(void)state;
	char dir[4096];
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 1500, 1 };
	int refused_after_acks = 0;
	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1));
	for (long n = 1; n < 60; n++) {
		struct recs acked = { 0 };
		tu_mkdtemp(dir, sizeof dir, "wal");
		hooks_install();
		atomic_store(&write_torn, (int)(n & 1));
		atomic_store(&write_errno, n % 4 < 2 ? ENOSPC : EDQUOT);
		atomic_store(&sync_fake, 1);
		atomic_store(&write_countdown, n);
		struct ts_wal *w;
		int rc = ts_wal_open(dir, &o, &w);
		if (rc != 0) { /* the first segment's header: nothing to lose yet */
			assert_int_equal(rc, n % 4 < 2 ? -ENOSPC : -EDQUOT);
			ts__wal_io_reset();
			tu_rmtree(dir);
			continue;
		}
		int refused = 0;
		uint8_t rec[300];
		for (size_t i = 0; i < 40; i++) {
			uint8_t type;
			size_t len = gen(10, i, sizeof rec, rec, &type);
			uint64_t lsn;
			rc = ts_wal_append(w, type, rec, len, &lsn);
			if (rc == -ENOSPC) {
				refused++;
				refused_after_acks += acked.n > 0;
				continue; /* the sender retries later; this record is not logged */
			}
			assert_int_equal(rc, 0);
			assert_int_equal(ts_wal_commit(w, lsn), 0);
			recs_push(&acked, lsn, type, rec, len);
		}
		assert_true(refused <= 1);
		ts_wal_close(w);
		ts__wal_io_reset();
		/* Exactly the acknowledged records, nothing cut away as a torn tail. */
		struct recs got = { 0 };
		reopen_replay(dir, &o, 0, &got, NULL);
		assert_int_equal(got.n, acked.n);
		for (size_t i = 0; i < acked.n; i++) {
			assert_int_equal(got.v[i].lsn, acked.v[i].lsn);
			assert_int_equal(got.v[i].type, acked.v[i].type);
			assert_int_equal(got.v[i].len, acked.v[i].len);
			assert_int_equal(got.v[i].hash, acked.v[i].hash);
		}
		free(got.v);
		free(acked.v);
		tu_rmtree(dir);
	}
	ts_log_set_level(TS_LOG_ERROR);
	assert_true(refused_after_acks > 20);
}

static void test_io_fdatasync_failure(void **state)
{
	(void)state;
	char dir[4096];
	struct recs acked = { 0 };
	for (int policy = 0; policy < 2; policy++) {
		tu_mkdtemp(dir, sizeof dir, "wal");
		hooks_install();
		struct ts_wal_opts o = { policy ? TS_WAL_SYNC_INTERVAL : TS_WAL_SYNC_ALWAYS, 5, 0,
					 0 };
		struct ts_wal *w;
		uint64_t lsn;
		acked.n = 0;
		assert_int_equal(ts_wal_open(dir, &o, &w), 0);
		append_n(w, 11, 0, 5, 100, &acked, 1);
		atomic_store(&fdatasync_fail, 1);
		/* Under INTERVAL the background sync may fail before this append. */
		int rc = ts_wal_append(w, 1, "doomed", 6, &lsn);
		assert_true(rc == 0 || (policy == 1 && rc == TS_EIO));
		if (policy == 0) {
			assert_int_equal(ts_wal_commit(w, lsn), TS_EIO);
		} else {
			/* The interval thread hits it; commits report it from then on. */
			for (int i = 0; i < 400 && ts_wal_commit(w, lsn) == 0; i++)
				usleep(5000);
			assert_int_equal(ts_wal_commit(w, lsn), TS_EIO);
		}
		assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), TS_EIO);
		ts_wal_close(w);
		ts__wal_io_reset();
		check_acked_survive(dir, &o, &acked);
		tu_rmtree(dir);
	}
	free(acked.v);
}

static void test_io_fsync_failure_on_roll(void **state)
{
	(void)state;
	char dir[4096];
	struct recs acked = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	hooks_install();
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 0, 0 };
	struct ts_wal *w;
	uint64_t next;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 12, 0, 5, 100, &acked, 1);
	atomic_store(&fsync_fail, 1); /* the new segment's fsync */
	assert_int_equal(ts_wal_roll(w, &next), TS_EIO);
	uint64_t lsn;
	assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), TS_EIO);
	ts_wal_close(w);
	ts__wal_io_reset();
	check_acked_survive(dir, &o, &acked);
	tu_rmtree(dir);
	free(acked.v);
}

static void test_alloc_failure_open(void **state)
{
	(void)state;
	char dir[4096], sub[4200];
	struct recs want = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_INTERVAL, 10, 300, 0 };
	struct ts_wal *w;
	/* A new directory (mkdir -p path), then an existing log with many segments. */
	for (int existing = 0; existing < 2; existing++) {
		snprintf(sub, sizeof sub, "%s/a%d", dir, existing);
		if (existing) {
			assert_int_equal(ts_wal_open(sub, &o, &w), 0);
			append_n(w, 13, 0, 40, 100, &want, 0);
			ts_wal_close(w);
		}
		for (unsigned long n = 1;; n++) {
			ts_mem_fail_at(n, 0);
			int rc = ts_wal_open(sub, &o, &w);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (!fired) {
				assert_int_equal(rc, 0);
				ts_wal_close(w);
				break;
			}
			if (rc == 0)
				ts_wal_close(w);
			else
				assert_int_equal(rc, -ENOMEM);
			assert_true(n < 1000);
		}
		if (!existing) {
			tu_rmtree(sub);
		}
	}
	struct recs got = { 0 };
	reopen_replay(sub, &o, 0, &got, NULL);
	recs_equal(&got, &want, 0, want.n);
	tu_rmtree(sub);
	rmdir(dir);
	free(want.v);
	free(got.v);
}

static void test_alloc_failure_append(void **state)
{
	(void)state;
	char dir[4096];
	struct recs want = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_ALWAYS, 0, 200, 1 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	uint8_t rec[1000];
	for (size_t i = 0; i < 30; i++) {
		uint8_t type;
		size_t len = gen(14, i, sizeof rec, rec, &type);
		for (unsigned long n = 1;; n++) {
			uint64_t lsn, end = ts_wal_end_lsn(w);
			ts_mem_fail_at(n, 0);
			int rc = ts_wal_append(w, type, rec, len, &lsn);
			int fired = ts_mem_failed();
			ts_mem_fail_at(0, 0);
			if (rc == 0) {
				assert_int_equal(ts_wal_commit(w, lsn), 0);
				recs_push(&want, lsn, type, rec, len);
				break;
			}
			assert_true(fired);
			assert_int_equal(rc, -ENOMEM);
			assert_int_equal(ts_wal_end_lsn(w), end);
			assert_true(n < 100);
		}
	}
	ts_wal_close(w);
	struct recs got = { 0 };
	reopen_replay(dir, &o, 0, &got, NULL);
	recs_equal(&got, &want, 0, want.n);
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_alloc_failure_replay(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	struct recs want = { 0 }, got = { 0 };
	tu_mkdtemp(dir, sizeof dir, "wal");
	struct ts_wal_opts o = { TS_WAL_SYNC_NEVER, 0, 3000, 1 };
	struct ts_wal *w;
	assert_int_equal(ts_wal_open(dir, &o, &w), 0);
	append_n(w, 15, 0, 30, 5000, &want, 0);
	ts_wal_close(w);
	/* A torn tail too, so the cut runs under failures as well. */
	uint64_t last = seg_of(dir, want.v[want.n - 1].lsn);
	seg_path(p, sizeof p, dir, last);
	assert_int_equal(truncate(p, file_size(p) - 1), 0);
	want.n--;
	for (unsigned long n = 1;; n++) {
		assert_int_equal(ts_wal_open(dir, &o, &w), 0);
		got.n = 0;
		ts_mem_fail_at(n, 0);
		int rc = ts_wal_replay(w, 0, collect, &got);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (!fired) {
			assert_int_equal(rc, 0);
			recs_equal(&got, &want, 0, want.n);
			ts_wal_close(w);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
		uint64_t lsn;
		assert_int_equal(ts_wal_append(w, 1, "x", 1, &lsn), -EINVAL);
		ts_wal_close(w);
		/* Nothing was lost by the failed attempt. */
		reopen_replay(dir, &o, 0, &got, NULL);
		recs_equal(&got, &want, 0, want.n);
		assert_true(n < 1000);
	}
	tu_rmtree(dir);
	free(want.v);
	free(got.v);
}

static void test_sync_policies(void **state)
{
	(void)state;
	char dir[4096];
	for (int policy = 0; policy < 3; policy++) {
		struct recs want = { 0 }, got = { 0 };
		tu_mkdtemp(dir, sizeof dir, "wal");
		hooks_install();
		struct ts_wal_opts o = { (enum ts_wal_sync)policy, 10, 2000, 1 };
		struct ts_wal *w;
		assert_int_equal(ts_wal_open(dir, &o, &w), 0);
		append_n(w, 16, 0, 20, 500, &want, 1);
		struct ts_wal_stats st;
		ts_wal_stats(w, &st);
		uint64_t end = ts_wal_end_lsn(w);
		switch (policy) {
		case TS_WAL_SYNC_ALWAYS:
			assert_true(st.n_syncs >= 1 && st.n_syncs <= 20 + st.n_segments);
			assert_int_equal(atomic_load(&max_covered), end);
			break;
		case TS_WAL_SYNC_INTERVAL:
			for (int i = 0; i < 400 && atomic_load(&max_covered) < end; i++)
				usleep(5000);
			assert_int_equal(atomic_load(&max_covered), end);
			ts_wal_stats(w, &st);
			assert_true(st.n_syncs >= 1);
			break;
		default:
			assert_int_equal(st.n_syncs, 0);
			assert_int_equal(atomic_load(&max_covered), 0);
			break;
		}
		ts_wal_close(w);
		ts__wal_io_reset();
		reopen_replay(dir, &o, 0, &got, NULL);
		recs_equal(&got, &want, 0, want.n);
		tu_rmtree(dir);
		free(want.v);
		free(got.v);
	}
}

/* fuzz/corpus/wal/four_records was written by the first version of this format and
 * is never regenerated: reading it checks that the layout has not drifted. */
static void test_golden_segment(void **state)
{
	(void)state;
	const char *src = getenv("TS_SRCDIR");
	if (!src || !*src) {
		print_message("TS_SRCDIR not set; golden segment skipped\n");
		return;
	}
	char dir[4096], from[4200], to[4200];
	snprintf(from, sizeof from, "%s/fuzz/corpus/wal/four_records", src);
	FILE *f = fopen(from, "rb");
	assert_non_null(f);
	uint8_t bytes[1024];
	size_t n = fread(bytes, 1, sizeof bytes, f);
	fclose(f);
	assert_int_equal(n, 263);
	tu_mkdtemp(dir, sizeof dir, "wal");
	seg_path(to, sizeof to, dir, 0);
	write_file(to, bytes, n);
	struct recs got = { 0 }, want = { 0 };
	char big[400], rnd[150];
	for (int i = 0; i < 400; i++)
		big[i] = "abcab"[i % 5];
	srand(7);
	for (int i = 0; i < 150; i++)
		rnd[i] = (char)rand();
	recs_push(&want, 28, 1, (const uint8_t *)"", 0);
	recs_push(&want, 44, 2, (const uint8_t *)"hello", 5);
	recs_push(&want, 65, 3, (const uint8_t *)big, sizeof big);
	/* 150 bytes from glibc's srand(7) sequence, stored uncompressed. */
	recs_push(&want, n - 150 - TS_WAL_REC_HDR_BYTES, 4, (const uint8_t *)rnd, sizeof rnd);
	reopen_replay(dir, &OPTS_NEVER, 0, &got, NULL);
	recs_equal(&got, &want, 0, 4);
	assert_int_equal(file_size(to), (off_t)n);
	tu_rmtree(dir);
	free(got.v);
	free(want.v);
}

static int group_setup(void **state)
{
	(void)state;
	g_seed = tu_seed("test_wal", g_seed);
	/* Every cut logs a warning by design; the torn-tail loops would flood stderr. */
	if (!getenv("TS_LOG_LEVEL"))
		ts_log_set_level(TS_LOG_ERROR);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_compression_saves),
		cmocka_unit_test(test_lz4_log_continued_with_zstd),
		cmocka_unit_test(test_from_lsn),
		cmocka_unit_test(test_replay_fn_stops),
		cmocka_unit_test(test_append_before_replay),
		cmocka_unit_test(test_torn_tail_every_offset),
		cmocka_unit_test(test_bit_flips_in_last_record),
		cmocka_unit_test(test_corrupt_middle_segment),
		cmocka_unit_test(test_lsns_never_reused_after_cut),
		cmocka_unit_test(test_gap_between_segments),
		cmocka_unit_test(test_torn_segment_header),
		cmocka_unit_test(test_foreign_and_misnamed_files),
		cmocka_unit_test(test_limits_and_args),
		cmocka_unit_test(test_roll_and_truncate),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_io_write_failure_at_every_write),
		cmocka_unit_test(test_io_fdatasync_failure),
		cmocka_unit_test(test_io_fsync_failure_on_roll),
		cmocka_unit_test(test_io_no_space_is_retryable),
		cmocka_unit_test(test_alloc_failure_open),
		cmocka_unit_test(test_alloc_failure_append),
		cmocka_unit_test(test_alloc_failure_replay),
		cmocka_unit_test(test_sync_policies),
		cmocka_unit_test(test_golden_segment),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
