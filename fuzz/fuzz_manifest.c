/*
 * Fuzz target: the backup manifest parser of tsdbctl restore and backup list/prune
 * (tools/tsdbctl/bstore.c, compiled in here: it lives in the tsdbctl program).
 * Properties: nothing crashes or leaks; a parsed manifest's paths are relative without
 * "..", its chunk sizes add up to each file's size and none exceeds BSTORE_CHUNK.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tsdbctl/bstore.c"

/* bstore.c's object reader needs it; the parser does not. */
char *ctl_read_file(const char *path, size_t max, size_t *len)
{
	(void)path;
	(void)max;
	(void)len;
	errno = ENOENT;
	return NULL;
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
