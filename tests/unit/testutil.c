/*
 * testutil.c - helpers shared by the unit tests; see testutil.h. Errors that end a test
 * go through cmocka's fail_msg(), so the report names the helper's caller by its message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/mem.h"
#include "wire/snappy_io.h"
#include "testutil.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

uint64_t tu_seed(const char *who, uint64_t dflt)
{
	const char *e = getenv("TS_SEED");
	uint64_t seed = e && *e ? strtoull(e, NULL, 0) : dflt;
	print_message("%s: seed %" PRIu64 " (set TS_SEED to repeat)\n", who, seed);
	fflush(stdout);
	return seed;
}

uint64_t tu_mix64(uint64_t z)
{
	z += GOLDEN_GAMMA;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = tu_mix64(*state);
	*state += GOLDEN_GAMMA;
	return z;
}

char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *b = NULL;
	long n;
	int err = EIO;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		err = errno;
		goto out;
	}
	b = malloc((size_t)n + 1);
	if (!b) {
		err = ENOMEM;
		goto out;
	}
	if (fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
		goto out;
	}
	b[n] = '\0';
	*len = (size_t)n;
out:
	fclose(f);
	if (!b)
		errno = err;
	return b;
}

void tu_data_path(char *out, size_t cap, const char *rel)
{
	const char *data = getenv("TS_TESTDATA"), *src = getenv("TS_SRCDIR");
	int n;
	if (data && *data)
		n = snprintf(out, cap, "%s/%s", data, rel);
	else if (src && *src)
		n = snprintf(out, cap, "%s/tests/data/%s", src, rel);
	else
		n = snprintf(out, cap, "tests/data/%s", rel);
	if (n < 0 || (size_t)n >= cap)
		fail_msg("test data path of %s does not fit in %zu bytes", rel, cap);
}

char *tu_load_data(const char *rel, size_t *len)
{
	char path[4096];
	tu_data_path(path, sizeof path, rel);
	char *b = tu_read_file(path, len);
	if (!b)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	return b;
}

uint8_t *tu_load_snappy(const char *rel, size_t limit_bytes, size_t *len)
{
	size_t clen, cap = 0;
	char *c = tu_load_data(rel, &clen);
	uint8_t *d = NULL;
	int rc = ts_snappy_decompress((const uint8_t *)c, clen, limit_bytes, &d, &cap, len);
	free(c);
	if (rc != 0) {
		ts_free(d);
		fail_msg("%s: snappy block does not decompress (%d)", rel, rc);
	}
	uint8_t *exact = tu_memdup(d, *len);
	ts_free(d);
	return exact;
}

void *tu_memdup(const void *p, size_t len)
{
	void *d = malloc(len ? len : 1);
	if (!d)
		fail_msg("out of memory copying %zu bytes", len);
	if (len)
		memcpy(d, p, len);
	return d;
}

void tu_mkdtemp(char *out, size_t cap, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(out, cap, "%s/%sXXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (n < 0 || (size_t)n >= cap)
		fail_msg("temporary directory name for %s does not fit in %zu bytes", prefix, cap);
	if (!mkdtemp(out))
		fail_msg("mkdtemp %s: %s", out, strerror(errno));
}

static int rm_first_err;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && rm_first_err == 0)
		rm_first_err = -errno;
	return 0;
}

int tu_rmtree(const char *dir)
{
	rm_first_err = 0;
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return errno == ENOENT ? 0 : -errno;
	return rm_first_err;
}

int tu_hex_eq(const char *hex, const void *p, size_t n)
{
	const uint8_t *b = p;
	if (!strcmp(hex, "-"))
		return n == 0;
	if (strlen(hex) != 2 * n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || b[i] != v)
			return 0;
	}
	return 1;
}

int tu_utf8_valid_ref(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		uint32_t cp;
		size_t k;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i - 1 < k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

uint64_t tu_bits(double v)
{
	uint64_t b;
	memcpy(&b, &v, sizeof b);
	return b;
}

double tu_f64(uint64_t b)
{
	double v;
	memcpy(&v, &b, sizeof v);
	return v;
}
