/*
 * fuzz_wal.c - feeds arbitrary bytes to WAL replay as a segment file.
 *
 * The input becomes the only segment of a fresh directory under /tmp, named after the
 * base LSN in its header (bytes 8..15) so inputs that keep a valid header reach the
 * record parser. Checks: open and replay never crash or leak; every record replay
 * reports is really in the input with a matching CRC at its LSN; after replay an
 * append, a reopen and a second replay give back exactly the same records plus the
 * new one (the cut left a log that appends extend cleanly). Any violation aborts.
 *
 * Each input runs twice: as is, and with the segment header's and every record's CRC
 * recomputed. A mutated payload almost never keeps its CRC, so without the second
 * run the decompressors (LZ4 and zstd) would only ever see the seeds' frames.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/log.h"
#include "storage/wal.h"
#include "storage/wal_int.h"

struct seen {
	uint64_t lsn, hash;
	size_t len;
	uint8_t type;
};

struct ctx {
	const uint8_t *in;
	size_t in_len;
	uint64_t base;
	struct seen *v;
	size_t n, cap;
	int check_crc;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3u;
	return h;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The record at lsn must be in the input with the CRC the format defines. */
static void check_in_input(const struct ctx *c, uint64_t lsn)
{
	if (lsn < c->base + TS_WAL_SEG_HDR_BYTES || lsn - c->base > c->in_len)
		abort();
	size_t off = (size_t)(lsn - c->base);
	if (c->in_len - off < TS_WAL_REC_HDR_BYTES)
		abort();
	const uint8_t *h = c->in + off;
	uint32_t disk_len = le32(h + 4);
	if (c->in_len - off - TS_WAL_REC_HDR_BYTES < disk_len)
		abort();
	uint8_t l[8];
	for (int i = 0; i < 8; i++)
		l[i] = (uint8_t)(lsn >> (8 * i));
	uint32_t crc = ts_crc32c(0, h + TS_WAL_REC_HDR_BYTES, disk_len);
	crc = ts_crc32c(crc, h + 4, TS_WAL_REC_HDR_BYTES - 4);
	crc = ts_crc32c(crc, l, 8);
	if (crc != le32(h))
		abort();
}

static int on_record(void *arg, uint64_t lsn, uint8_t type, const uint8_t *rec, size_t len)
{
	struct ctx *c = arg;
	if (c->check_crc)
		check_in_input(c, lsn);
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct seen *v = realloc(c->v, cap * sizeof *v);
		if (!v)
			abort();
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = (struct seen){ lsn, fnv(rec, len), len, type };
	return 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char p[512];
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites, in place, the header CRC and the CRC of every record whose header and
 * payload fit in the input, as a writer would have computed them at their LSNs. */
static void fix_crcs(uint8_t *p, size_t size)
{
	if (size < TS_WAL_SEG_HDR_BYTES)
		return;
	put_le32(p + 24, ts_crc32c(0, p, 24));
	uint64_t base = 0;
	for (int i = 7; i >= 0; i--)
		base = base << 8 | p[8 + i];
	size_t off = TS_WAL_SEG_HDR_BYTES;
	while (size - off >= TS_WAL_REC_HDR_BYTES) {
		uint8_t *h = p + off;
		uint32_t disk_len = le32(h + 4);
		if (size - off - TS_WAL_REC_HDR_BYTES < disk_len)
			break;
		uint64_t lsn = base + off;
		uint8_t l[8];
		for (int i = 0; i < 8; i++)
			l[i] = (uint8_t)(lsn >> (8 * i));
		uint32_t crc = ts_crc32c(0, h + TS_WAL_REC_HDR_BYTES, disk_len);
		crc = ts_crc32c(crc, h + 4, TS_WAL_REC_HDR_BYTES - 4);
		put_le32(h, ts_crc32c(crc, l, 8));
		off += TS_WAL_REC_HDR_BYTES + disk_len;
	}
}

static void run_one(const uint8_t *data, size_t size)
{
	static const struct ts_wal_opts opts = { TS_WAL_SYNC_NEVER, 0, 0, TS_WAL_COMPRESS_ZSTD };
	char dir[] = "/tmp/fuzz_walXXXXXX";
	char path[64];
	struct ctx c = { .in = data, .in_len = size, .check_crc = 1 };
	struct ctx again = { 0 };
	struct ts_wal *w = NULL;

	ts_log_set_level((enum ts_log_level)(TS_LOG_ERROR + 1)); /* cuts are expected */
	if (!mkdtemp(dir))
		return;
	if (size >= 16)
		for (int i = 7; i >= 0; i--)
			c.base = c.base << 8 | data[8 + i];
	if (c.base >= (UINT64_C(1) << 62))
		c.base = 0;
	snprintf(path, sizeof path, "%s/%016llx", dir, (unsigned long long)c.base);
	FILE *f = fopen(path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size)) {
		if (f)
			fclose(f);
		goto out;
	}
	fclose(f);

	if (ts_wal_open(dir, &opts, &w) != 0)
		goto out;
	if (ts_wal_replay(w, 0, on_record, &c) != 0)
		abort(); /* nothing but I/O or memory trouble may fail here */
	uint64_t end = ts_wal_end_lsn(w), lsn;
	static const char extra[] = "appended after the replay of a fuzzed segment";
	if (ts_wal_append(w, 0x5a, extra, sizeof extra, &lsn) != 0 || lsn != end)
		abort();
	ts_wal_close(w);
	w = NULL;

	if (ts_wal_open(dir, &opts, &w) != 0 || ts_wal_replay(w, 0, on_record, &again) != 0)
		abort();
	if (again.n != c.n + 1)
		abort();
	for (size_t i = 0; i < c.n; i++) {
		const struct seen *a = &again.v[i], *b = &c.v[i];
		if (a->lsn != b->lsn || a->hash != b->hash || a->len != b->len ||
		    a->type != b->type)
			abort();
	}
	const struct seen *last = &again.v[c.n];
	if (last->lsn != lsn || last->type != 0x5a || last->len != sizeof extra ||
	    last->hash != fnv((const uint8_t *)extra, sizeof extra))
		abort();
out:
	ts_wal_close(w);
	free(c.v);
	free(again.v);
	remove_dir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size);
	uint8_t *fixed = malloc(size ? size : 1);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fix_crcs(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		run_one(fixed, size);
	free(fixed);
	return 0;
}
