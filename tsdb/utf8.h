/*
 * utf8.h - strict UTF-8 validation and encoding: label values, metadata, and every decoder of text
 * from the network use this one validator.
 *
 * "Valid" means exactly what RFC 3629 and Go's utf8.Valid accept: no overlong forms,
 * no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray continuation bytes,
 * no truncated sequences. NUL bytes are valid (they are U+0000); callers that forbid
 * them say so themselves.
 */
#ifndef TS_TSDB_UTF8_H
#define TS_TSDB_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Longest encoding ts_utf8_encode() writes. */
#define TS_UTF8_MAX 4

/* Non-zero when s[0..len) is valid UTF-8. Reads exactly len bytes (s need not be
 * NUL-terminated; s may be NULL when len is 0). ASCII runs are checked 8 bytes at a
 * time. Thread-safe, allocates nothing. */
int ts_utf8_valid(const void *s, size_t len);

/* Writes the UTF-8 encoding of code point cp to dst (room for TS_UTF8_MAX bytes) and
 * returns its length, or 0 when cp is a surrogate or above U+10FFFF. */
size_t ts_utf8_encode(char *dst, uint32_t cp);

#endif
