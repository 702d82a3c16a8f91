/*
 * tls.h - TLS for the server's connections, with OpenSSL over memory BIOs: the libuv
 * loop (net.c) reads and writes the socket, this layer turns ciphertext into plaintext
 * and back, so nothing here blocks or touches a socket. Loop thread only, except
 * ts_tls_ctx_new, which may run anywhere.
 *
 * A context is made from a web config (webconfig.h): certificate and key, client
 * certificate policy and CA file (or the system's CAs when verifying without one, as Go
 * does), protocol versions, TLS <= 1.2 cipher list, curves, server cipher preference.
 * A connection holds its context (reference counted by OpenSSL), so a reload that makes
 * a new context leaves open connections as they are.
 */
#ifndef TS_SERVER_TLS_H
#define TS_SERVER_TLS_H

#include <stddef.h>

#include "server/webconfig.h"

struct ts_tls_ctx;
struct ts_tls;

/* Loads c's certificate, key and client CAs. Returns 0, TS_EINVALID with msg (which file
 * and OpenSSL's reason), or -ENOMEM. */
int ts_tls_ctx_new(const struct ts_web_config *c, struct ts_tls_ctx **out, char *msg,
		   size_t msg_len);
void ts_tls_ctx_free(struct ts_tls_ctx *ctx);

/* A server-side session. Returns 0 or -ENOMEM. */
int ts_tls_new(struct ts_tls_ctx *ctx, struct ts_tls **out);
void ts_tls_free(struct ts_tls *t);

/* Receives ciphertext in[0..n): handshakes and decrypts, passing each piece of
 * plaintext to out(arg, p, len) (zero or more calls, in order; out may ask to stop by
 * returning non-zero). Returns 0; 1 when the peer closed the session (close_notify);
 * TS_EIO when the session failed (a bad handshake, a bad record: close the connection,
 * after sending what ts_tls_take_output holds, an alert). */
int ts_tls_feed(struct ts_tls *t, const void *in, size_t n,
		int (*out)(void *arg, const char *p, size_t len), void *arg);

/* Encrypts plaintext p[0..n) into the pending output. Returns 0, or TS_EIO. Only after
 * the handshake is done (the server writes only after it read a request). */
int ts_tls_write(struct ts_tls *t, const void *p, size_t n);

/* Adds a close_notify alert to the pending output. */
void ts_tls_shutdown(struct ts_tls *t);

/* Takes the pending ciphertext: *buf (ts_malloc'd, the caller's) and *n; *buf NULL when
 * there is none. Returns 0 or -ENOMEM. */
int ts_tls_take_output(struct ts_tls *t, char **buf, size_t *n);

#endif
