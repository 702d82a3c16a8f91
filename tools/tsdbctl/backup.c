/*
 * backup.c - `tsdbctl backup`: incremental, checksummed, compressed backups of a data
 * directory into a backup store (bstore.c), and `backup list` / `backup prune`.
 *
 *   tsdbctl backup --data-dir DIR --to DEST [--server HOST:PORT]
 *   tsdbctl backup list --to DEST
 *   tsdbctl backup prune --to DEST --keep N
 *
 * What is backed up is a snapshot (tsdb.h, ts_db_snapshot): every batch acknowledged
 * before the backup started, each whole. With --server (the listen address of the tsdbd
 * serving DIR, on this machine; it needs --web.enable-admin-api) the server makes it
 * through its snapshot API; without, tsdbctl opens DIR itself, which needs the server
 * stopped (exit 3 while it runs). The snapshot, under DIR/snapshots/, is removed once
 * backed up. Backups are named by their UTC time to the millisecond.
 *
 * Each file of the snapshot is cut into BSTORE_CHUNK pieces stored by content hash, so
 * only what changed since an earlier backup to the same store is written; the manifest
 * comes last. prune keeps the newest N backups and deletes the objects no manifest left
 * names.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/err.h"
#include "storage/mem.h"
#include "tsdbctl.h"

struct bk {
	struct bstore *st;
	const char *root; /* the snapshot being backed up */
	FILE *man;	  /* the manifest being written (in memory) */
	char *man_buf;
	size_t man_len;
	uint64_t files, bytes, objects_new, objects_reused, stored_bytes;
	uint8_t *buf;
};

/* Backs up one file (path relative to the snapshot root). */
static int backup_file(struct bk *b, const char *rel)
{
	char path[JOIN_MAX];
	ctl_join(path, sizeof path, b->root, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	uint64_t size = (uint64_t)st.st_size;
	size_t n = (size_t)((size + BSTORE_CHUNK - 1) / BSTORE_CHUNK);
	char(*hashes)[33] = calloc(n ? n : 1, sizeof *hashes);
	uint64_t *lens = calloc(n ? n : 1, sizeof *lens);
	XXH3_state_t *xs = XXH3_createState();
	int rc = hashes && lens && xs ? 0 : -ENOMEM;
	if (xs)
		XXH3_64bits_reset(xs);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t want = size - (uint64_t)i * BSTORE_CHUNK < BSTORE_CHUNK
				      ? (size_t)(size - (uint64_t)i * BSTORE_CHUNK)
				      : BSTORE_CHUNK;
		size_t got = 0;
		while (got < want && rc == 0) {
			ssize_t r = pread(fd, b->buf + got, want - got,
					  (off_t)((uint64_t)i * BSTORE_CHUNK + got));
			if (r < 0)
				rc = -errno;
			else if (r == 0)
				rc = TS_EIO; /* shorter than it said: snapshots do not change */
			else
				got += (size_t)r;
		}
		int stored = 0;
		if (rc == 0)
			rc = bstore_put_chunk(b->st, b->buf, want, hashes[i], &stored,
					      &b->stored_bytes);
		if (rc == 0) {
			XXH3_64bits_update(xs, b->buf, want);
			lens[i] = want;
			b->objects_new += (uint64_t)stored;
			b->objects_reused += (uint64_t)!stored;
			b->bytes += want;
		}
		ctl_progress("backup: %" PRIu64 " files, %" PRIu64 " MiB read, %" PRIu64
			     " new objects",
			     b->files, b->bytes >> 20, b->objects_new);
	}
	close(fd);
	if (rc == 0) {
		fprintf(b->man, "file %" PRIu64 " %016" PRIx64 " %zu %s\n", size,
			(uint64_t)XXH3_64bits_digest(xs), n, rel);
		for (size_t i = 0; i < n; i++)
			fprintf(b->man, "chunk %s %" PRIu64 "\n", hashes[i], lens[i]);
		b->files++;
	}
	free(hashes);
	free(lens);
	XXH3_freeState(xs);
	return rc;
}

/* Every file under root/rel, in name order, but LMDB's lock files. */
static int walk(struct bk *b, const char *rel)
{
	char path[JOIN_MAX];
	snprintf(path, sizeof path, "%s%s%s", b->root, *rel ? "/" : "", rel);
	struct dirent **ents = NULL;
	int n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return -errno;
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		if (rc == 0 && nm[0] != '.' && strcmp(nm, "lock.mdb") && strcmp(nm, "LOCK")) {
			char sub[JOIN_MAX], full[JOIN_MAX];
			snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", nm);
			ctl_join(full, sizeof full, b->root, sub);
			struct stat st;
			if (lstat(full, &st) != 0)
				rc = -errno;
			else if (S_ISDIR(st.st_mode))
				rc = walk(b, sub);
			else if (S_ISREG(st.st_mode))
				rc = backup_file(b, sub);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* Asks the server at host:port for a snapshot; its name into name. */
static int server_snapshot(const char *server, char *name, size_t cap, char *why, size_t why_len)
{
	char host[256];
	const char *colon = strrchr(server, ':');
	if (!colon || colon == server || (size_t)(colon - server) >= sizeof host) {
		snprintf(why, why_len, "--server wants HOST:PORT");
		return TS_EINVALID;
	}
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
		snprintf(why, why_len, "cannot resolve %s", server);
		return -EHOSTUNREACH;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 ? -errno : 0;
	freeaddrinfo(ai);
	char resp[4096];
	size_t got = 0;
	if (rc == 0) {
		static const char req[] = "POST /api/v1/admin/tsdb/snapshot HTTP/1.1\r\n"
					  "Host: tsdbd\r\nContent-Length: 0\r\n"
					  "Connection: close\r\n\r\n";
		if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
			rc = -errno;
		for (ssize_t r; rc == 0 && got < sizeof resp - 1 &&
				(r = read(fd, resp + got, sizeof resp - 1 - got)) > 0;)
			got += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	if (rc) {
		snprintf(why, why_len, "cannot reach the server at %s: %s", server, strerror(-rc));
		return rc;
	}
	resp[got] = 0;
	const char *k = strstr(resp, "\"name\":\"");
	if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !k) {
		const char *body = strstr(resp, "\r\n\r\n");
		snprintf(why, why_len, "the server refused a snapshot (%.40s): %.200s%s", resp,
			 body ? body + 4 : "",
			 strstr(resp, " 404 ") ? " (start tsdbd with --web.enable-admin-api)" : "");
		return TS_EINVALID;
	}
	k += 8;
	size_t n = strcspn(k, "\"");
	if (n == 0 || n >= cap || memchr(k, '/', n)) {
		snprintf(why, why_len, "the server answered a bad snapshot name");
		return TS_ECORRUPT;
	}
	memcpy(name, k, n);
	name[n] = 0;
	return 0;
}

/* A snapshot of dir: made here (server stopped) or by the server. */
static int take_snapshot(const char *dir, const char *server, char *snap, size_t cap, char *name,
			 size_t name_cap)
{
	struct ts_db *db = NULL;
	char why[600] = "";
	if (server) {
		if (server_snapshot(server, name, name_cap, why, sizeof why)) {
			fprintf(stderr, "tsdbctl: %s\n", why);
			return EXIT_FAIL;
		}
		snprintf(snap, cap, "%s/snapshots/%s", dir, name);
		return EXIT_OK;
	}
	int ex = ctl_db_open(dir, "give --server HOST:PORT to back it up through its snapshot API",
			     &db);
	if (ex)
		return ex;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(name, name_cap, "%Y%m%dT%H%M%SZ-backup", &tm);
	snprintf(snap, cap, "%s/snapshots", dir);
	mkdir(snap, 0755);
	snprintf(snap, cap, "%s/snapshots/%s", dir, name);
	int rc = ts_db_snapshot(db, snap, 0);
	if (rc)
		fprintf(stderr, "tsdbctl: snapshot of %s failed: %s\n", dir, ts_strerror(rc));
	if (ctl_db_close(db, dir) != EXIT_OK || rc) {
		ctl_rm_tree(snap);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/*
 * A backup marks the snapshot it reads with DIR/snapshots/<name>.backup holding its pid.
 * A backup killed midway leaves both behind; the next backup of DIR removes them once
 * that process is gone, so an interrupted backup does not keep a copy of the data
 * directory for ever. Snapshots without a marker (a user's) are never touched.
 */
static void mark_snapshot(const char *snap)
{
	char path[JOIN_MAX + 16], pid[32];
	snprintf(path, sizeof path, "%s.backup", snap);
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (bstore_write_atomic(path, pid, (size_t)n) != 0)
		fprintf(stderr, "tsdbctl: note: cannot mark %s as a backup's\n", snap);
}

static void unmark_snapshot(const char *snap)
{
	char path[JOIN_MAX + 16];
	snprintf(path, sizeof path, "%s.backup", snap);
	unlink(path);
}

static void sweep_snapshots(const char *dir)
{
	char sd[JOIN_MAX];
	snprintf(sd, sizeof sd, "%s/snapshots", dir);
	DIR *d = opendir(sd);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l <= 7 || strcmp(e->d_name + l - 7, ".backup") || l - 7 >= 200)
			continue;
		char marker[JOIN_MAX + 256], snap[JOIN_MAX + 256];
		snprintf(marker, sizeof marker, "%s/%s", sd, e->d_name);
		snprintf(snap, sizeof snap, "%s/%.*s", sd, (int)(l - 7), e->d_name);
		size_t len;
		char *text = ctl_read_file(marker, 64, &len);
		long pid = text ? strtol(text, NULL, 10) : 0;
		free(text);
		if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
			ctl_rm_tree(snap);
			unlink(marker);
			fprintf(stderr, "tsdbctl: removed %s, left by an interrupted backup\n",
				snap);
		}
	}
	closedir(d);
}

static int opt_str(void *dest, const char *name, const char *val)
{
	(void)name;
	*(const char **)dest = val;
	return 0;
}

static int do_backup(int argc, char **argv)
{
	const char *to = NULL, *server = NULL, *endpoint = NULL, *dir;
	const struct ctl_opt opts[] = { { "--to", 0, opt_str, &to },
					{ "--server", 0, opt_str, &server },
					{ "--s3-endpoint", 0, opt_str, &endpoint },
					{ NULL, 0, NULL, NULL } };
	int ex = ctl_parse_args(argc, argv, opts, &dir);
	if (ex != CTL_RUN)
		return ex;
	if (!to || !*to) {
		ctl_usage_error("backup needs --to DEST");
		return EXIT_USAGE;
	}
	char why[600] = "";
	struct bk b = { 0 };
	if (bstore_open(to, endpoint, &b.st, why, sizeof why)) {
		fprintf(stderr, "tsdbctl: %s\n", why);
		return EXIT_USAGE;
	}
	char snap[JOIN_MAX], snap_name[96], name[96], key[160];
	/* Backups are named by their UTC time to the millisecond, so names sort in time. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t nl = strftime(name, sizeof name, "%Y%m%dT%H%M%S", &tm);
	snprintf(name + nl, sizeof name - nl, ".%03ldZ", ts.tv_nsec / 1000000);
	sweep_snapshots(dir);
	if ((ex = take_snapshot(dir, server, snap, sizeof snap, snap_name, sizeof snap_name))) {
		bstore_close(b.st);
		return ex;
	}
	mark_snapshot(snap);
	b.root = snap;
	b.buf = malloc(BSTORE_CHUNK);
	b.man = open_memstream(&b.man_buf, &b.man_len);
	int rc = b.buf && b.man ? 0 : -ENOMEM;
	if (rc == 0)
		fprintf(b.man, "tsdb-backup 1\nname %s\ncreated %lld\n", name,
			(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (rc == 0)
		rc = walk(&b, "");
	if (b.man && fflush(b.man) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == 0) {
		fprintf(b.man, "end %016" PRIx64 "\n", (uint64_t)XXH3_64bits(b.man_buf, b.man_len));
		fflush(b.man);
		snprintf(key, sizeof key, "backups/%s.manifest", name);
		rc = bstore_put(b.st, key, b.man_buf, b.man_len);
	}
	ctl_progress_done();
	if (b.man)
		fclose(b.man);
	free(b.man_buf);
	free(b.buf);
	bstore_close(b.st);
	ctl_rm_tree(snap);
	unmark_snapshot(snap);
	if (rc) {
		fprintf(stderr, "tsdbctl: backup of %s to %s failed: %s\n", dir, to,
			ts_strerror(rc));
		return EXIT_FAIL;
	}
	char a[32], c[32];
	ctl_fmt_bytes(a, sizeof a, b.bytes);
	ctl_fmt_bytes(c, sizeof c, b.stored_bytes);
	printf("backup %s of %s: %" PRIu64 " files, %" PRIu64 " bytes (%s); %" PRIu64
	       " new objects, %" PRIu64 " bytes written (%s); %" PRIu64 " objects already in %s\n",
	       name, dir, b.files, b.bytes, a, b.objects_new, b.stored_bytes, c, b.objects_reused,
	       to);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

/* Parses --to, --s3-endpoint (and --keep) for list and prune, which take no
 * --data-dir; opens the store. */
static int store_args(int argc, char **argv, struct bstore **st, const char **to, size_t *keep)
{
	const char *endpoint = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		size_t l = strcspn(a, "=");
		if (a[l] == '=')
			v = a + l + 1;
		else if (i + 1 < argc)
			v = argv[i + 1], i++;
		if (!strncmp(a, "--to", l) && l == 4 && v) {
			*to = v;
		} else if (!strncmp(a, "--s3-endpoint", l) && l == 13 && v) {
			endpoint = v;
		} else if (keep && !strncmp(a, "--keep", l) && l == 6 && v) {
			char *e;
			unsigned long long k = strtoull(v, &e, 10);
			if (*e || !*v || k == 0 || k > 1000000) {
				ctl_usage_error("--keep wants a count from 1");
				return EXIT_USAGE;
			}
			*keep = (size_t)k;
		} else {
			ctl_usage_error("unknown option \"%s\"", a);
			return EXIT_USAGE;
		}
	}
	if (!*to || (keep && !*keep)) {
		ctl_usage_error("backup %s needs --to DEST%s", argv[0],
				keep ? " and --keep N" : "");
		return EXIT_USAGE;
	}
	char why[600];
	if (bstore_open(*to, endpoint, st, why, sizeof why)) {
		fprintf(stderr, "tsdbctl: %s\n", why);
		return EXIT_USAGE;
	}
	return CTL_RUN;
}

/* The store the arguments name and its backups (list, prune): CTL_RUN, or an exit code
 * after a message. */
static int store_list(int argc, char **argv, size_t *keep, struct bstore **st, const char **to,
		      char ***names, size_t *n)
{
	int ex = store_args(argc, argv, st, to, keep);
	if (ex != CTL_RUN)
		return ex;
	int rc = bstore_list(*st, names, n);
	if (rc) {
		fprintf(stderr, "tsdbctl: %s: %s\n", *to, ts_strerror(rc));
		bstore_close(*st);
		return EXIT_FAIL;
	}
	return CTL_RUN;
}

static int do_list(int argc, char **argv)
{
	const char *to = NULL;
	struct bstore *st;
	char **names;
	size_t n;
	int ex = store_list(argc, argv, NULL, &st, &to, &names, &n);
	if (ex != CTL_RUN)
		return ex;
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		struct bstore_manifest m;
		char why[300], when[64], sz[32];
		if (bstore_manifest_load(st, names[i], &m, why, sizeof why)) {
			printf("%s  damaged: %s\n", names[i], why);
			bad = 1;
			continue;
		}
		uint64_t bytes = 0;
		for (size_t k = 0; k < m.n_files; k++)
			bytes += m.files[k].size;
		ctl_fmt_time(when, sizeof when, m.created_ms);
		ctl_fmt_bytes(sz, sizeof sz, bytes);
		printf("%s  %s  %zu files  %s\n", m.name, when, m.n_files, sz);
		bstore_manifest_free(&m);
	}
	bstore_list_free(names, n);
	bstore_close(st);
	return bad ? EXIT_FAIL : EXIT_OK;
}

static int hash_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

struct sweep {
	struct bstore *st;
	char (*live)[33];
	size_t n_live, deleted;
	int rc;
};

/* An object no kept manifest names goes. */
static int sweep_one(void *arg, const char *key)
{
	struct sweep *w = arg;
	const char *h = strrchr(key, '/');
	h = h ? h + 1 : key;
	if (strlen(h) != 32 || bsearch(h, w->live, w->n_live, sizeof *w->live, hash_cmp))
		return 0;
	int rc = bstore_del(w->st, key);
	if (rc)
		return rc;
	w->deleted++;
	return 0;
}

static int do_prune(int argc, char **argv)
{
	const char *to = NULL;
	size_t keep = 0;
	struct bstore *st;
	char **names;
	size_t n;
	int ex = store_list(argc, argv, &keep, &st, &to, &names, &n);
	if (ex != CTL_RUN)
		return ex;
	/* Read the kept manifests first: one that does not parse stops the prune (its
	 * objects would be collected). */
	struct sweep w = { .st = st };
	size_t cap = 0;
	int rc = 0;
	for (size_t i = n > keep ? n - keep : 0; i < n && rc == 0; i++) {
		struct bstore_manifest m;
		char why[300];
		if ((rc = bstore_manifest_load(st, names[i], &m, why, sizeof why))) {
			fprintf(stderr, "tsdbctl: backup %s is damaged (%s): nothing pruned\n",
				names[i], why);
			break;
		}
		for (size_t f = 0; f < m.n_files && rc == 0; f++)
			for (size_t k = 0; k < m.files[f].n_chunks; k++) {
				if (w.n_live == cap) {
					cap = cap ? cap * 2 : 1024;
					char(*x)[33] = realloc(w.live, cap * sizeof *x);
					if (!x) {
						rc = -ENOMEM;
						break;
					}
					w.live = x;
				}
				memcpy(w.live[w.n_live++], m.files[f].chunks[k].hash, 33);
			}
		bstore_manifest_free(&m);
	}
	size_t removed = 0;
	if (rc == 0) {
		qsort(w.live, w.n_live, sizeof *w.live, hash_cmp);
		for (size_t i = 0; i + keep < n && rc == 0; i++) {
			char key[160];
			snprintf(key, sizeof key, "backups/%s.manifest", names[i]);
			if ((rc = bstore_del(st, key)) == 0)
				removed++;
		}
		if (rc == 0)
			rc = bstore_keys(st, "objects", sweep_one, &w);
	}
	free(w.live);
	bstore_list_free(names, n);
	bstore_close(st);
	if (rc) {
		fprintf(stderr, "tsdbctl: pruning %s failed: %s\n", to, ts_strerror(rc));
		return EXIT_FAIL;
	}
	printf("pruned %s: %zu backups removed, %zu kept; %zu objects deleted\n", to, removed,
	       n - removed, w.deleted);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

static int backup_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return do_list(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "prune"))
		return do_prune(argc - 1, argv + 1);
	return do_backup(argc, argv);
}

static const char backup_help[] =
	"  backup     --to DEST [--server HOST:PORT] [--s3-endpoint URL]: an incremental,\n"
	"            checksummed, compressed backup of a snapshot (every acknowledged batch,\n"
	"            each whole) into DEST, a directory or s3://bucket/prefix (credentials\n"
	"            from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); only what\n"
	"            changed since the last backup there is written. While a server runs,\n"
	"            --server names it (its snapshot API, --web.enable-admin-api).\n"
	"            backup list --to DEST; backup prune --to DEST --keep N (the newest N\n"
	"            stay, unreferenced objects go).\n";

CTL_COMMAND(backup);
