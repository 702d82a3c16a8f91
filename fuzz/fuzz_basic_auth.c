/*
 * Fuzz target: the Authorization header parser of basic auth (server/auth.c,
 * ts_auth_parse_basic): "Basic " and standard base64 of "user:password".
 * Properties: nothing crashes or reads past the input; a parsed value gives
 * NUL-terminated fields of at most TS_AUTH_MAX_FIELD bytes, the user without ':', and
 * "user:password" encoded again parses to the same two fields (the input itself may be
 * a non-canonical spelling: unused bits of the last character are ignored, as Go's
 * decoder ignores them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/auth.h"

static size_t b64(const char *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = (char *)fz_memdup(data, size);
	if (!v)
		return 0;
	char user[TS_AUTH_MAX_FIELD + 1], pass[TS_AUTH_MAX_FIELD + 1];
	if (ts_auth_parse_basic(v, size, user, pass) == 0) {
		size_t ul = strnlen(user, sizeof user), pl = strnlen(pass, sizeof pass);
		fz_check(ul <= TS_AUTH_MAX_FIELD && pl <= TS_AUTH_MAX_FIELD && !strchr(user, ':'));
		char raw[2 * TS_AUTH_MAX_FIELD + 2], enc[4 * TS_AUTH_MAX_FIELD + 16];
		memcpy(raw, user, ul);
		raw[ul] = ':';
		memcpy(raw + ul + 1, pass, pl);
		memcpy(enc, "Basic ", 6);
		size_t el = 6 + b64(raw, ul + pl + 1, enc + 6);
		char u2[TS_AUTH_MAX_FIELD + 1], p2[TS_AUTH_MAX_FIELD + 1];
		fz_check(ts_auth_parse_basic(enc, el, u2, p2) == 0 && !strcmp(u2, user) &&
			 !strcmp(p2, pass));
	}
	free(v);
	return 0;
}
