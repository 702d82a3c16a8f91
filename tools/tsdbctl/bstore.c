/*
 * bstore.c - the backup store of `tsdbctl backup` and `tsdbctl restore`: a directory
 * DEST holding content-addressed objects and one manifest per backup.
 *
 *   DEST/objects/<2 hex>/<32 hex>   a chunk of at most BSTORE_CHUNK bytes of a file, as a
 *                                   zstd frame (storage/zframe.h: sized, checksummed);
 *                                   named by the XXH3-128 of the chunk's raw bytes
 *   DEST/backups/<name>.manifest    what a backup holds (below); written last, so a
 *                                   backup without its manifest does not exist
 *
 * Content addressing makes backups incremental: a closed partition's file does not
 * change, so its chunks are stored once (vmbackup does the same per part); a second
 * backup writes only the chunks of what changed (the open partition, the index, the
 * WAL). Objects and manifests are written to a temporary name, fsync'ed and renamed, so
 * a crash leaves no half object under a real name.
 *
 * Manifest (text, one record per line, fields separated by one space):
 *   tsdb-backup 1
 *   name <name>
 *   created <unix ms>
 *   file <size> <xxh3-64 of the file, 16 hex> <chunks> <path relative to the data dir>
 *   chunk <xxh3-128, 32 hex> <raw bytes>          (that many after each file line)
 *   end <xxh3-64 of every byte before this line, 16 hex>
 * Paths are checked on reading: relative, no "..", no empty or hidden components.
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
#include "storage/zframe.h"
#include "tsdbctl.h"
#include "s3.h"

int bstore_mkdirs(const char *path)
{
	char p[JOIN_MAX];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0755) != 0 && errno != EEXIST ? -errno : 0;
}

/* Writes buf to path via path.tmp, fsync and rename. */
int bstore_write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[JOIN_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = 0;
	for (size_t done = 0; done < len && rc == 0;) {
		ssize_t w = write(fd, (const char *)buf + done, len - done);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

void bstore_hash_hex(const void *p, size_t len, char out[33])
{
	XXH128_hash_t h = XXH3_128bits(p, len);
	snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64, (uint64_t)h.low64);
}

/* ---- the store: a directory, or an S3 bucket prefix (s3.c) ---- */

struct bstore {
	char *dir;     /* a directory store; NULL for S3 */
	struct s3 *s3; /* an S3 store */
};

int bstore_open(const char *dest, const char *s3_endpoint, struct bstore **out, char *why,
		size_t why_len)
{
	struct bstore *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	int rc = 0;
	if (!strncmp(dest, "s3://", 5))
		rc = s3_open(dest, s3_endpoint, &s->s3, why, why_len);
	else if (!(s->dir = strdup(dest)))
		rc = -ENOMEM;
	if (rc) {
		bstore_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void bstore_close(struct bstore *s)
{
	if (!s)
		return;
	s3_close(s->s3);
	free(s->dir);
	free(s);
}

static int key_path(const struct bstore *s, const char *key, char *out, size_t cap)
{
	return ctl_join(out, cap, s->dir, key);
}

int bstore_exists(struct bstore *s, const char *key)
{
	if (s->s3)
		return s3_exists(s->s3, key);
	char path[JOIN_MAX];
	struct stat st;
	if (key_path(s, key, path, sizeof path))
		return -ENAMETOOLONG;
	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int bstore_put(struct bstore *s, const char *key, const void *p, size_t len)
{
	if (s->s3)
		return s3_put(s->s3, key, p, len);
	char path[JOIN_MAX], dir[JOIN_MAX];
	if (key_path(s, key, path, sizeof path))
		return -ENAMETOOLONG;
	memcpy(dir, path, sizeof dir);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	int rc = bstore_mkdirs(dir);
	return rc ? rc : bstore_write_atomic(path, p, len);
}

int bstore_get(struct bstore *s, const char *key, size_t max, char **out, size_t *len)
{
	if (s->s3)
		return s3_get(s->s3, key, max, out, len);
	char path[JOIN_MAX];
	if (key_path(s, key, path, sizeof path))
		return -ENAMETOOLONG;
	*out = ctl_read_file(path, max, len);
	return *out ? 0 : (errno == ENOENT ? TS_ENOTFOUND : -(errno ? errno : EIO));
}

int bstore_del(struct bstore *s, const char *key)
{
	if (s->s3)
		return s3_del(s->s3, key);
	char path[JOIN_MAX];
	if (key_path(s, key, path, sizeof path))
		return -ENAMETOOLONG;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Directory store: the keys under rel, depth first. */
static int dir_keys(struct bstore *s, const char *rel, bstore_key_fn fn, void *arg)
{
	char path[JOIN_MAX];
	if (key_path(s, rel, path, sizeof path))
		return -ENAMETOOLONG;
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t l = strlen(e->d_name);
		if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp"))
			continue; /* an interrupted write */
		char sub[JOIN_MAX], full[JOIN_MAX];
		struct stat st;
		if (ctl_join(sub, sizeof sub, rel, e->d_name) ||
		    key_path(s, sub, full, sizeof full))
			continue;
		if (lstat(full, &st) != 0)
			continue;
		rc = S_ISDIR(st.st_mode) ? dir_keys(s, sub, fn, arg) : fn(arg, sub);
	}
	closedir(d);
	return rc;
}

int bstore_keys(struct bstore *s, const char *prefix, bstore_key_fn fn, void *arg)
{
	if (s->s3)
		return s3_keys(s->s3, prefix, fn, arg);
	/* prefix is a directory here ("objects", "backups"). */
	return dir_keys(s, prefix, fn, arg);
}

void bstore_object_key(const char *hash, char *out, size_t cap)
{
	snprintf(out, cap, "objects/%.2s/%s", hash, hash);
}

int bstore_put_chunk(struct bstore *s, const void *p, size_t len, char hash[33], int *stored,
		     uint64_t *stored_bytes)
{
	char key[96];
	bstore_hash_hex(p, len, hash);
	bstore_object_key(hash, key, sizeof key);
	*stored = 0;
	int rc = bstore_exists(s, key);
	if (rc != 0)
		return rc < 0 ? rc : 0; /* content-addressed: already there */
	uint8_t *z = NULL;
	size_t zl = 0;
	rc = ts_zframe_pack(p, len, 3, &z, &zl);
	if (rc == 0)
		rc = bstore_put(s, key, z, zl);
	ts_free(z);
	if (rc == 0) {
		*stored = 1;
		*stored_bytes += zl;
	}
	return rc;
}

int bstore_get_chunk(struct bstore *s, const char *hash, uint64_t raw_len, uint8_t **out)
{
	char key[96];
	bstore_object_key(hash, key, sizeof key);
	size_t zl = 0;
	char *z = NULL;
	int rc = bstore_get(s, key, BSTORE_CHUNK * 2 + 4096, &z, &zl);
	if (rc)
		return rc;
	uint8_t *raw = NULL;
	size_t rl = 0;
	rc = ts_zframe_unpack((const uint8_t *)z, zl, BSTORE_CHUNK, &raw, &rl);
	free(z);
	if (rc)
		return rc;
	char h[33];
	bstore_hash_hex(raw, rl, h);
	if (rl != raw_len || strcmp(h, hash) != 0) {
		ts_free(raw);
		return TS_ECORRUPT;
	}
	*out = raw;
	return 0;
}

/* ---- manifests ---- */

void bstore_manifest_free(struct bstore_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_files; i++) {
		free(m->files[i].path);
		free(m->files[i].chunks);
	}
	free(m->files);
	memset(m, 0, sizeof *m);
}

static int path_ok(const char *p)
{
	if (!*p || *p == '/' || strlen(p) > 1000)
		return 0;
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || s[0] == '.')
			return 0; /* empty, ".", "..", hidden */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == '\\')
				return 0;
		s += n + (e ? 1 : 0);
		if (e && !*s)
			return 0;
	}
	return 1;
}

static int is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int bstore_manifest_parse(const char *text, size_t len, struct bstore_manifest *m, char *why,
			  size_t why_len)
{
	memset(m, 0, sizeof *m);
	char *buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = 0;
	size_t cap = 0, line_no = 0, chunk_left = 0;
	int rc = TS_ECORRUPT, ended = 0, have_name = 0;
	struct bstore_file *f = NULL;
	char *save = NULL;
	size_t off = 0;
	for (char *line = buf; off < len && !ended; line = buf + off) {
		char *nl = memchr(line, '\n', len - off);
		if (!nl) {
			snprintf(why, why_len, "line %zu: not ended by a newline", line_no + 1);
			goto out;
		}
		*nl = 0;
		size_t line_off = off;
		off = (size_t)(nl - buf) + 1;
		line_no++;
		char *kw = strtok_r(line, " ", &save);
		if (!kw) {
			snprintf(why, why_len, "line %zu: empty", line_no);
			goto out;
		}
		if (line_no == 1) {
			char *v = strtok_r(NULL, " ", &save);
			if (strcmp(kw, "tsdb-backup") || !v || strcmp(v, "1")) {
				snprintf(why, why_len, "not a tsdb backup manifest of version 1");
				goto out;
			}
			continue;
		}
		if (chunk_left && strcmp(kw, "chunk")) {
			snprintf(why, why_len, "line %zu: %zu chunks missing", line_no, chunk_left);
			goto out;
		}
		if (!strcmp(kw, "name")) {
			char *v = strtok_r(NULL, " ", &save);
			if (!v || strlen(v) >= sizeof m->name || !path_ok(v) || strchr(v, '/')) {
				snprintf(why, why_len, "line %zu: bad name", line_no);
				goto out;
			}
			strcpy(m->name, v);
			have_name = 1;
		} else if (!strcmp(kw, "created")) {
			char *v = strtok_r(NULL, " ", &save);
			m->created_ms = v ? strtoll(v, NULL, 10) : 0;
		} else if (!strcmp(kw, "file")) {
			char *sz = strtok_r(NULL, " ", &save), *h = strtok_r(NULL, " ", &save);
			char *nc = strtok_r(NULL, " ", &save), *p = strtok_r(NULL, "", &save);
			char *e1 = NULL, *e2 = NULL;
			unsigned long long size = sz ? strtoull(sz, &e1, 10) : 0;
			unsigned long long n = nc ? strtoull(nc, &e2, 10) : 0;
			if (!sz || !h || !nc || !p || *e1 || *e2 || !is_hex(h, 16) || !path_ok(p) ||
			    n > (size + BSTORE_CHUNK - 1) / BSTORE_CHUNK + 1 || n > (1u << 24)) {
				snprintf(why, why_len, "line %zu: bad file record", line_no);
				goto out;
			}
			if (m->n_files == cap) {
				cap = cap ? cap * 2 : 16;
				struct bstore_file *x = realloc(m->files, cap * sizeof *x);
				if (!x) {
					rc = -ENOMEM;
					goto out;
				}
				m->files = x;
			}
			f = &m->files[m->n_files++];
			memset(f, 0, sizeof *f);
			f->size = size;
			f->xxh = strtoull(h, NULL, 16);
			f->n_chunks = (size_t)n;
			f->path = strdup(p);
			f->chunks = calloc(n ? n : 1, sizeof *f->chunks);
			if (!f->path || !f->chunks) {
				rc = -ENOMEM;
				goto out;
			}
			chunk_left = (size_t)n;
		} else if (!strcmp(kw, "chunk")) {
			char *h = strtok_r(NULL, " ", &save), *l = strtok_r(NULL, " ", &save);
			char *e = NULL;
			unsigned long long rl = l ? strtoull(l, &e, 10) : 0;
			if (!chunk_left || !h || !l || *e || !is_hex(h, 32) || rl > BSTORE_CHUNK) {
				snprintf(why, why_len, "line %zu: bad chunk record", line_no);
				goto out;
			}
			struct bstore_chunk *c = &f->chunks[f->n_chunks - chunk_left--];
			memcpy(c->hash, h, 33);
			c->len = rl;
		} else if (!strcmp(kw, "end")) {
			char *h = strtok_r(NULL, " ", &save);
			if (!h || !is_hex(h, 16) ||
			    XXH3_64bits(text, line_off) != strtoull(h, NULL, 16)) {
				snprintf(why, why_len,
					 "line %zu: the manifest's checksum does not match",
					 line_no);
				goto out;
			}
			ended = 1;
		} else {
			snprintf(why, why_len, "line %zu: unknown record \"%.20s\"", line_no, kw);
			goto out;
		}
	}
	if (ended && off < len) {
		snprintf(why, why_len, "line %zu: data after the end line", line_no + 1);
		goto out;
	}
	if (!ended || !have_name) {
		snprintf(why, why_len, "%s", ended ? "no name" : "cut short (no end line)");
		goto out;
	}
	/* Chunk sizes add up to each file's size. */
	for (size_t i = 0; i < m->n_files; i++) {
		uint64_t sum = 0;
		for (size_t k = 0; k < m->files[i].n_chunks; k++)
			sum += m->files[i].chunks[k].len;
		if (sum != m->files[i].size) {
			snprintf(why, why_len, "%s: chunks hold %" PRIu64 " bytes, not %" PRIu64,
				 m->files[i].path, sum, m->files[i].size);
			goto out;
		}
	}
	rc = 0;
out:
	free(buf);
	if (rc)
		bstore_manifest_free(m);
	return rc;
}

int bstore_manifest_load(struct bstore *s, const char *name, struct bstore_manifest *m, char *why,
			 size_t why_len)
{
	char key[256];
	snprintf(key, sizeof key, "backups/%s.manifest", name);
	size_t len = 0;
	char *text = NULL;
	int rc = bstore_get(s, key, 256u << 20, &text, &len);
	if (rc) {
		snprintf(why, why_len, "%s: %s", key, ts_strerror(rc));
		return rc;
	}
	rc = bstore_manifest_parse(text, len, m, why, why_len);
	free(text);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct name_acc {
	char **v;
	size_t n, cap;
};

static int add_name(void *arg, const char *key)
{
	struct name_acc *a = arg;
	const char *base = strrchr(key, '/');
	base = base ? base + 1 : key;
	size_t l = strlen(base);
	if (l <= 9 || strcmp(base + l - 9, ".manifest"))
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		char **x = realloc(a->v, a->cap * sizeof *x);
		if (!x)
			return -ENOMEM;
		a->v = x;
	}
	return (a->v[a->n++] = strndup(base, l - 9)) ? 0 : -ENOMEM;
}

int bstore_list(struct bstore *s, char ***names, size_t *n)
{
	struct name_acc a = { 0 };
	int rc = bstore_keys(s, "backups", add_name, &a);
	if (rc == 0 && a.n > 1)
		qsort(a.v, a.n, sizeof *a.v, name_cmp);
	*names = a.v;
	*n = a.n;
	return rc;
}

void bstore_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
