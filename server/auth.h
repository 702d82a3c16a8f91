/*
 * auth.h - HTTP basic authentication against the bcrypt hashes of --web.config.file's
 * basic_auth_users, with the exporter-toolkit's semantics (Prometheus 2.42):
 *   - no or malformed credentials, an unknown user or a wrong password: not
 *     authenticated (the caller answers 401 with `WWW-Authenticate: Basic`);
 *   - an unknown user is checked against a fixed dummy hash, so a wrong user name costs
 *     the same bcrypt time as a wrong password;
 *   - verified answers are cached so that a scraper's every request does not pay
 *     bcrypt. The cache key is a SHA-256 over a per-process random key, the user, the
 *     stored hash and the password, compared in constant time: a hit needs the same
 *     user, the same password and the same stored hash (Prometheus' CVE-2022-46146 was
 *     a cache key that left one of these out), and a reload (new hashes) starts a new
 *     cache.
 * Thread-safe; bcrypt runs on the caller's thread (a worker, never the loop).
 */
#ifndef TS_SERVER_AUTH_H
#define TS_SERVER_AUTH_H

#include <stddef.h>

#include "server/webconfig.h"

#define TS_AUTH_MAX_FIELD 1024 /* user and password, each, in bytes */

/*
 * Parses an Authorization header value: "Basic " (scheme in any case) and the standard
 * base64 (with padding) of "user:password", split at the first ':'. user and pass get
 * NUL-terminated copies (capacity TS_AUTH_MAX_FIELD + 1 each). Returns 0, or TS_EINVALID
 * (another scheme, bad base64, no ':', a field too long or holding NUL).
 */
int ts_auth_parse_basic(const char *v, size_t len, char *user, char *pass);

struct ts_auth;

/* The users of c (copied: c may go). *out is NULL when c has no users (no auth).
 * Returns 0 or -ENOMEM. */
int ts_auth_new(const struct ts_web_config *c, struct ts_auth **out);
void ts_auth_free(struct ts_auth *a);

/* 1 if the Authorization header value authz[0..len) (may be NULL) names a user of a
 * with the right password, else 0. */
int ts_auth_check(struct ts_auth *a, const char *authz, size_t len);

#endif
