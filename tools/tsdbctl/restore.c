/*
 * restore.c - `tsdbctl restore --from DEST [--name NAME] --data-dir DIR`: a backup
 * (the newest unless --name) from a backup store (bstore.c) into a new data directory.
 *
 * DIR must be absent or empty. Everything is written into DIR.restore-tmp first, every
 * object checked (its zstd frame checksum, its size, its content hash) and every file
 * (its XXH3-64); only when all of it matches is the directory renamed to DIR. A damaged
 * backup is reported and nothing is left at DIR. The result is a snapshot: tsdbd opens it
 * as a data directory (replaying the WAL it holds), and tsdbctl verify passes on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdbctl.h"

static int restore_file(struct bstore *from, const struct bstore_file *f, const char *root,
			uint64_t *done, char *why, size_t why_len)
{
	char path[JOIN_MAX], dir[JOIN_MAX];
	ctl_join(path, sizeof path, root, f->path);
	memcpy(dir, path, sizeof dir);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	int rc = bstore_mkdirs(dir);
	int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (rc == 0 && fd < 0)
		rc = -errno;
	XXH3_state_t *xs = XXH3_createState();
	if (rc == 0 && !xs)
		rc = -ENOMEM;
	if (xs)
		XXH3_64bits_reset(xs);
	for (size_t i = 0; i < f->n_chunks && rc == 0; i++) {
		uint8_t *raw = NULL;
		rc = bstore_get_chunk(from, f->chunks[i].hash, f->chunks[i].len, &raw);
		if (rc) {
			snprintf(why, why_len, "%s: object %s %s", f->path, f->chunks[i].hash,
				 rc == TS_ECORRUPT ? "is damaged" : "cannot be read");
			break;
		}
		XXH3_64bits_update(xs, raw, (size_t)f->chunks[i].len);
		for (size_t w = 0; w < f->chunks[i].len && rc == 0;) {
			ssize_t x = write(fd, raw + w, (size_t)f->chunks[i].len - w);
			if (x < 0 && errno != EINTR)
				rc = -errno;
			else if (x > 0)
				w += (size_t)x;
		}
		*done += f->chunks[i].len;
		ts_free(raw);
		ctl_progress("restore: %" PRIu64 " MiB", *done >> 20);
	}
	if (rc == 0 && XXH3_64bits_digest(xs) != f->xxh) {
		snprintf(why, why_len, "%s: its checksum does not match", f->path);
		rc = TS_ECORRUPT;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	XXH3_freeState(xs);
	return rc;
}

static int opt_str(void *dest, const char *name, const char *val)
{
	(void)name;
	*(const char **)dest = val;
	return 0;
}

static int restore_main(int argc, char **argv)
{
	const char *from = NULL, *name = NULL, *endpoint = NULL, *dir;
	const struct ctl_opt opts[] = { { "--from", 0, opt_str, &from },
					{ "--name", 0, opt_str, &name },
					{ "--s3-endpoint", 0, opt_str, &endpoint },
					{ NULL, 0, NULL, NULL } };
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex != CTL_RUN)
		return ex;
	if (!from || !*from) {
		ctl_usage_error("restore needs --from DEST");
		return EXIT_USAGE;
	}
	int e = ctl_dir_empty(dir);
	if (e <= 0) {
		fprintf(stderr, "tsdbctl: %s is %s: restore only into an empty directory\n", dir,
			e < 0 ? "not readable" : "not empty");
		return EXIT_FAIL;
	}
	char **names;
	size_t n;
	char chosen[128], why[600] = "";
	struct bstore *st;
	if (bstore_open(from, endpoint, &st, why, sizeof why)) {
		fprintf(stderr, "tsdbctl: %s\n", why);
		return EXIT_USAGE;
	}
	int rc = bstore_list(st, &names, &n);
	if (rc == 0 && n == 0 && !name)
		rc = TS_ENOTFOUND;
	if (rc) {
		fprintf(stderr, "tsdbctl: no backup in %s%s%s\n", from,
			rc == TS_ENOTFOUND ? "" : ": ", rc == TS_ENOTFOUND ? "" : ts_strerror(rc));
		bstore_list_free(names, n);
		bstore_close(st);
		return EXIT_FAIL;
	}
	snprintf(chosen, sizeof chosen, "%s", name ? name : names[n - 1]);
	bstore_list_free(names, n);
	struct bstore_manifest m;
	if (bstore_manifest_load(st, chosen, &m, why, sizeof why)) {
		fprintf(stderr, "tsdbctl: backup %s in %s is damaged: %s; nothing restored\n",
			chosen, from, why);
		bstore_close(st);
		return EXIT_FAIL;
	}
	char tmp[JOIN_MAX];
	snprintf(tmp, sizeof tmp, "%s.restore-tmp", dir);
	ctl_rm_tree(tmp);
	rc = bstore_mkdirs(tmp);
	uint64_t done = 0;
	for (size_t i = 0; i < m.n_files && rc == 0; i++)
		rc = restore_file(st, &m.files[i], tmp, &done, why, sizeof why);
	ctl_progress_done();
	if (rc == 0) {
		rmdir(dir); /* empty or absent */
		if (rename(tmp, dir) != 0) {
			rc = -errno;
			snprintf(why, sizeof why, "renaming to %.400s: %s", dir, strerror(errno));
		}
	}
	if (rc) {
		ctl_rm_tree(tmp);
		fprintf(stderr,
			"tsdbctl: restoring backup %s from %s failed: %s; nothing restored\n",
			chosen, from, why[0] ? why : ts_strerror(rc));
		bstore_manifest_free(&m);
		bstore_close(st);
		return EXIT_FAIL;
	}
	bstore_close(st);
	char a[32];
	ctl_fmt_bytes(a, sizeof a, done);
	printf("restored backup %s from %s into %s: %zu files, %s, every checksum matched\n",
	       chosen, from, dir, m.n_files, a);
	bstore_manifest_free(&m);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

static const char restore_help[] =
	"  restore    --from DEST [--name NAME] [--s3-endpoint URL]: the newest backup (or\n"
	"            NAME) of the backup store DEST (a directory or s3://bucket/prefix) into\n"
	"            --data-dir, which must be absent or empty; every checksum is checked\n"
	"            before anything appears there.\n";

CTL_COMMAND(restore);
