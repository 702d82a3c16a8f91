/*
 * webconfig.h - the --web.config.file of tsdbd: the exporter-toolkit `web.yml` that
 * Prometheus, Alertmanager and node_exporter read (as of Prometheus 2.42), with the same
 * keys, defaults and refusals:
 *
 *   tls_server_config:
 *     cert_file: server.crt          # relative paths are relative to the file
 *     key_file: server.key
 *     client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default),
 *                                    # RequestClientCert, RequireAnyClientCert,
 *                                    # VerifyClientCertIfGiven
 *     client_ca_file: ca.crt
 *     min_version: TLS12             # TLS10..TLS13; default TLS12, max default TLS13
 *     max_version: TLS13
 *     cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]  # Go's names; TLS <= 1.2
 *     curve_preferences: [X25519, CurveP256]
 *     prefer_server_cipher_suites: true
 *   http_server_config:
 *     http2: true                    # accepted; tsdbd speaks HTTP/1.1
 *     headers:                       # added to every response; only these five
 *       Strict-Transport-Security: max-age=31536000
 *       X-Frame-Options: deny        # deny | sameorigin
 *       X-Content-Type-Options: nosniff
 *       X-XSS-Protection: 1; mode=block
 *       Content-Security-Policy: default-src 'self'
 *   basic_auth_users:
 *     alice: $2y$10$...              # bcrypt hashes ($2a$, $2b$, $2y$)
 *
 * Unknown keys, a wrong type, an unknown version, cipher, curve or client auth type, a
 * header outside the five or with a value they do not allow, a user whose hash is not
 * a bcrypt hash, client_ca_file with NoClientCert, and a TLS section without both
 * cert_file and key_file are refused with the line and the reason. TLS is on when any
 * TLS key is set (as the toolkit decides). Files are not read here (tls.c loads them).
 */
#ifndef TS_SERVER_WEBCONFIG_H
#define TS_SERVER_WEBCONFIG_H

#include <stddef.h>

enum ts_client_auth {
	TS_CLIENT_AUTH_NONE = 0,	/* NoClientCert */
	TS_CLIENT_AUTH_REQUEST,		/* RequestClientCert: asked, not checked */
	TS_CLIENT_AUTH_REQUIRE_ANY,	/* RequireAnyClientCert: required, not checked */
	TS_CLIENT_AUTH_VERIFY_IF_GIVEN, /* VerifyClientCertIfGiven */
	TS_CLIENT_AUTH_REQUIRE_VERIFY,	/* RequireAndVerifyClientCert */
};

struct ts_web_pair {
	char *name, *value;
};

/* Owned strings; release with ts_web_config_fini. */
struct ts_web_config {
	int tls;				     /* a TLS key is set: serve HTTPS */
	char *cert_file, *key_file, *client_ca_file; /* joined with the file's directory */
	enum ts_client_auth client_auth;
	int min_version, max_version; /* 10, 11, 12, 13 */
	char *ciphers;		      /* OpenSSL cipher list for TLS <= 1.2; NULL: default */
	char *curves;		      /* OpenSSL groups list; NULL: default */
	int prefer_server_ciphers;
	int http2;
	struct ts_web_pair *headers; /* response headers */
	size_t n_headers;
	struct ts_web_pair *users; /* name -> bcrypt hash */
	size_t n_users;
};

/*
 * Parses buf[0..len) (borrowed; untrusted). dir (may be NULL) is joined to relative
 * file names. Returns 0 with *out filled, TS_EINVALID with msg ("line N: why",
 * NUL-terminated) or -ENOMEM; *out is then empty.
 */
int ts_web_config_parse(const char *buf, size_t len, const char *dir, struct ts_web_config *out,
			char *msg, size_t msg_len);
/* Reads and parses the file at path (errors as above, and -errno with msg set). */
int ts_web_config_load(const char *path, struct ts_web_config *out, char *msg, size_t msg_len);
/* Releases and zeroes *c. Accepts NULL and a zeroed *c. */
void ts_web_config_fini(struct ts_web_config *c);

/* 1 if `hash` is a bcrypt hash the verifier accepts: $2a$, $2b$ or $2y$, a cost of 04 to
 * 31, 53 characters of salt and hash in bcrypt's base64. */
int ts_web_bcrypt_valid(const char *hash);

#endif
