/*
 * text.h - the lexing the text decoders share (lineproto.c, expfmt.c, jsonl.c, json.c,
 * params.c): positioned error messages, printable renderings of hostile bytes, hex
 * digits, the label arrays they fill, and the scratch buffer that receives unescaped
 * tokens.
 *
 * Invariants every user keeps, and these helpers assume:
 *   - input is a borrowed byte range, never NUL-terminated, never read past its end;
 *   - an error message is "line L col C: what" (or "line L: what" without a column),
 *     NUL-terminated, truncated to its buffer, in a buffer of the parser's own;
 *   - decoders allocate only to grow buffers they reuse from line to line, never per
 *     sample, and a failed growth leaves the old buffer in place (-ENOMEM).
 *
 * The scratch scheme (lineproto.c and expfmt.c): unescaped tokens of one entry are
 * written to a scratch buffer whose pointers are handed out, so it must not move while
 * the entry is decoded. When a token does not fit, the buffer is grown to hold the raw
 * bytes of the entry so far (unescaped text is never longer than raw text) and the
 * decoder starts the entry again (TS_TEXT_RESTART). An entry restarts at most
 * O(log size) times, and only while the buffer warms up.
 *
 * Pure functions; no shared state. Nothing here is part of the wire API's callers'
 * contract (server/ and tools/ use the decoders' own headers).
 */
#ifndef TS_WIRE_TEXT_H
#define TS_WIRE_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/types.h"

/* Returned by a decoder's internals after ts_text_scratch_grow: decode the entry again. */
#define TS_TEXT_RESTART 1

/* Writes "line L col C: " (col 0: "line L: ") and the printf-style message into
 * err[0..cap) (cap > 0), truncating, NUL-terminated. Returns TS_EINVALID, the code of
 * every syntax error, so a decoder can `return ts_text_verr(...)`. */
int ts_text_verr(char *err, size_t cap, uint64_t line, size_t col, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

/* "line L: out of memory" into err[0..cap). Returns -ENOMEM. */
int ts_text_oom(char *err, size_t cap, uint64_t line);

/* Renders up to `max` bytes of s[0..n) printably into dst[0..cap): printable ASCII as
 * is, every other byte and '"' and '\\' as \xHH; "..." when bytes were left out (by
 * `max` or for lack of room). NUL-terminated; returns the length written (0, and
 * nothing written, when cap < 8). No quotes are added. */
size_t ts_text_escape(char *dst, size_t cap, const char *s, size_t n, size_t max);

/* Value of one hex digit [0-9a-fA-F], or -1. */
static inline int ts_text_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Stores the label {name, value} (borrowed pointers) at (*arr)[n], growing *arr
 * (capacity *cap, with ts_grow) as needed; the caller then counts it. Returns 0,
 * -ENOMEM (*arr unchanged), or TS_ELIMIT when n is UINT32_MAX or a length does not
 * fit 32 bits (a series' label count and lengths are 32-bit). */
int ts_text_put_label(struct ts_label **arr, size_t *cap, size_t n, const char *name,
		      size_t name_len, const char *value, size_t value_len);

/* Grows the scratch buffer (*buf, *cap) to at least `need` bytes, and always by at
 * least double, for a restart (see above). Returns TS_TEXT_RESTART, or -ENOMEM with
 * the buffer unchanged. */
int ts_text_scratch_grow(char **buf, size_t *cap, size_t need);

#endif
