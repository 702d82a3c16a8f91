/*
 * mem.c - allocation wrappers with a fault-injection counter. The counter costs one
 * relaxed atomic increment per allocation; hot paths allocate rarely by design.
 */
#include "storage/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong n_allocs;
static atomic_ulong fail_at;
static atomic_int fail_sticky;
static atomic_int fired;

static int should_fail(void)
{
	unsigned long n = atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed) + 1;
	unsigned long f = atomic_load_explicit(&fail_at, memory_order_relaxed);
	if (f == 0)
		return 0;
	if (n == f || (n > f && atomic_load_explicit(&fail_sticky, memory_order_relaxed))) {
		atomic_store(&fired, 1);
		return 1;
	}
	return 0;
}

void ts_mem_fail_at(unsigned long n, int sticky)
{
	atomic_store(&n_allocs, 0);
	atomic_store(&fired, 0);
	atomic_store(&fail_sticky, sticky);
	atomic_store(&fail_at, n);
}

unsigned long ts_mem_count(void)
{
	return atomic_load(&n_allocs);
}
int ts_mem_failed(void)
{
	return atomic_load(&fired);
}

void *ts_malloc(size_t size)
{
	if (should_fail())
		return NULL;
	return malloc(size ? size : 1);
}

void *ts_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *ts_realloc(void *p, size_t size)
{
	if (should_fail())
		return NULL;
	return realloc(p, size ? size : 1);
}

int ts_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (elem && n > SIZE_MAX / elem)
		return -ENOMEM;
	void *p = ts_realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

char *ts_strndup(const char *s, size_t n)
{
	char *d = ts_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *ts_strdup(const char *s)
{
	return ts_strndup(s, strlen(s));
}

void ts_free(void *p)
{
	free(p);
}
