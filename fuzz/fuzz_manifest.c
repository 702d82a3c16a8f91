/*
 * Fuzz target: the backup manifest parser of tsdbctl restore and backup list/prune
 * (tools/tsdbctl/bstore.c, compiled in here: it lives in the tsdbctl program).
 * Properties: nothing crashes or leaks; a parsed manifest's paths are relative without
 * "..", its chunk sizes add up to each file's size and none exceeds BSTORE_CHUNK.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tsdbctl/bstore.c"

/* What bstore.c's store calls; the parser needs none of it. */
char *ctl_read_file(const char *path, size_t max, size_t *len)
{
	(void)path;
	(void)max;
	(void)len;
	errno = ENOENT;
	return NULL;
}
int ctl_join(char *out, size_t cap, const char *a, const char *b)
{
	return snprintf(out, cap, "%s/%s", a, b) >= (int)cap ? -ENAMETOOLONG : 0;
}
int s3_open(const char *dest, const char *endpoint, struct s3 **out, char *why, size_t why_len)
{
	(void)dest, (void)endpoint, (void)out, (void)why, (void)why_len;
	return -ENOSYS;
}
void s3_close(struct s3 *s)
{
	(void)s;
}
int s3_exists(struct s3 *s, const char *key)
{
	(void)s, (void)key;
	return -ENOSYS;
}
int s3_put(struct s3 *s, const char *key, const void *p, size_t len)
{
	(void)s, (void)key, (void)p, (void)len;
	return -ENOSYS;
}
int s3_get(struct s3 *s, const char *key, size_t max, char **out, size_t *len)
{
	(void)s, (void)key, (void)max, (void)out, (void)len;
	return -ENOSYS;
}
int s3_del(struct s3 *s, const char *key)
{
	(void)s, (void)key;
	return -ENOSYS;
}
int s3_keys(struct s3 *s, const char *prefix, s3_key_fn fn, void *arg)
{
	(void)s, (void)prefix, (void)fn, (void)arg;
	return -ENOSYS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bstore_manifest m;
	char why[256];
	if (bstore_manifest_parse((const char *)data, size, &m, why, sizeof why) != 0)
		return 0;
	for (size_t i = 0; i < m.n_files; i++) {
		const struct bstore_file *f = &m.files[i];
		if (f->path[0] == '/' || strstr(f->path, ".."))
			abort();
		uint64_t sum = 0;
		for (size_t k = 0; k < f->n_chunks; k++) {
			if (f->chunks[k].len > BSTORE_CHUNK || strlen(f->chunks[k].hash) != 32)
				abort();
			sum += f->chunks[k].len;
		}
		if (sum != f->size)
			abort();
	}
	bstore_manifest_free(&m);
	return 0;
}
