/*
 * mem.h - the only way this project allocates heap memory.
 *
 * Every allocation goes through ts_malloc/ts_calloc/ts_realloc/ts_strdup so tests can
 * make allocation number N fail (ts_mem_fail_at) and check that every caller handles
 * NULL: the library never aborts on out-of-memory, it returns -ENOMEM.
 * ts_free(NULL) is a no-op. Thread-safe.
 */
#ifndef TS_STORAGE_MEM_H
#define TS_STORAGE_MEM_H

#include <stddef.h>

void *ts_malloc(size_t size);
void *ts_calloc(size_t n, size_t size); /* NULL on overflow of n*size too */
void *ts_realloc(void *p, size_t size); /* on failure p is untouched and still owned */
char *ts_strdup(const char *s);
char *ts_strndup(const char *s, size_t n);
void ts_free(void *p);

/* Grows the array *arr (elements of `elem` bytes, capacity *cap elements) to hold at
 * least `need`, doubling from 16 so repeated growth costs a logarithmic number of
 * reallocations. On -ENOMEM (also on size overflow) *arr and *cap are unchanged. */
int ts_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Fault injection for tests: from now on, the n-th allocation (1-based) and, when
 * `sticky`, every one after it returns NULL. n == 0 disarms. */
void ts_mem_fail_at(unsigned long n, int sticky);
/* Number of allocations attempted since the last ts_mem_fail_at(). */
unsigned long ts_mem_count(void);
/* Non-zero once an injected failure has fired since the last ts_mem_fail_at(). */
int ts_mem_failed(void);

#endif
