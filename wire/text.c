/*
 * text.c - the lexing helpers the text decoders share (see text.h for the scratch
 * scheme and the message format).
 *
 * Invariants: every helper writes only inside the buffer it is given (bounded by its
 * capacity, NUL-terminated when it writes text) and leaves a caller's array as it was
 * when growing it fails.
 */
#include "wire/text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"

int ts_text_verr(char *err, size_t cap, uint64_t line, size_t col, const char *fmt, va_list ap)
{
	int w = col ? snprintf(err, cap, "line %llu col %zu: ", (unsigned long long)line, col)
		    : snprintf(err, cap, "line %llu: ", (unsigned long long)line);
	if (w < 0)
		w = 0;
	if ((size_t)w < cap)
		vsnprintf(err + w, cap - (size_t)w, fmt, ap);
	return TS_EINVALID;
}

int ts_text_oom(char *err, size_t cap, uint64_t line)
{
	snprintf(err, cap, "line %llu: out of memory", (unsigned long long)line);
	return -ENOMEM;
}

size_t ts_text_escape(char *dst, size_t cap, const char *s, size_t n, size_t max)
{
	if (cap < 8)
		return 0;
	size_t o = 0, i = 0;
	/* Each byte takes at most 4 ("\xHH"); keep room for "..." and the NUL after it. */
	for (; i < n && i < max && cap - o >= 8; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			dst[o++] = (char)c;
		} else {
			snprintf(dst + o, cap - o, "\\x%02x", c);
			o += 4;
		}
	}
	if (i < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return o;
}

int ts_text_put_label(struct ts_label **arr, size_t *cap, size_t n, const char *name,
		      size_t name_len, const char *value, size_t value_len)
{
	if (n >= UINT32_MAX || name_len > UINT32_MAX || value_len > UINT32_MAX)
		return TS_ELIMIT;
	if (ts_grow((void **)arr, cap, n + 1, sizeof **arr) != 0)
		return -ENOMEM;
	(*arr)[n] = (struct ts_label){ .name = name,
				       .value = value,
				       .name_len = (uint32_t)name_len,
				       .value_len = (uint32_t)value_len };
	return 0;
}

int ts_text_scratch_grow(char **buf, size_t *cap, size_t need)
{
	/* A restart must make progress: the buffer always grows. */
	if (need <= *cap)
		need = *cap + 1;
	return ts_grow((void **)buf, cap, need, 1) == 0 ? TS_TEXT_RESTART : -ENOMEM;
}
