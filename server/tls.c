/*
 * tls.c - OpenSSL sessions over memory BIOs (tls.h).
 */
#include "server/tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "storage/err.h"
#include "storage/mem.h"

struct ts_tls_ctx {
	SSL_CTX *ctx;
};

struct ts_tls {
	SSL *ssl;
	BIO *in, *out; /* owned by ssl */
};

static int ossl_fail(char *msg, size_t msg_len, const char *what, const char *file)
{
	char why[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, why, sizeof why);
	ERR_clear_error();
	snprintf(msg, msg_len, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
		 why[0] ? why : "failed");
	return TS_EINVALID;
}

static int version_of(int v)
{
	switch (v) {
	case 10: return TLS1_VERSION;
	case 11: return TLS1_1_VERSION;
	case 12: return TLS1_2_VERSION;
	default: return TLS1_3_VERSION;
	}
}

/* Client certificates that are asked for but not checked (RequestClientCert,
 * RequireAnyClientCert): any chain is accepted. */
static int accept_any(int preverify, X509_STORE_CTX *x)
{
	(void)preverify;
	(void)x;
	return 1;
}

int ts_tls_ctx_new(const struct ts_web_config *c, struct ts_tls_ctx **out, char *msg,
		   size_t msg_len)
{
	*out = NULL;
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	int rc = 0;
	SSL_CTX_set_min_proto_version(ctx, version_of(c->min_version));
	SSL_CTX_set_max_proto_version(ctx, version_of(c->max_version));
	/* Renegotiation is a client-driven CPU sink nobody needs here. */
	SSL_CTX_set_options(
		ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
			     (c->prefer_server_ciphers ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1)
		rc = ossl_fail(msg, msg_len, "cannot load cert_file", c->cert_file);
	else if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1)
		rc = ossl_fail(msg, msg_len, "cannot load key_file", c->key_file);
	else if (SSL_CTX_check_private_key(ctx) != 1)
		rc = ossl_fail(msg, msg_len, "key_file does not match cert_file", c->key_file);
	else if (c->ciphers && *c->ciphers && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1)
		rc = ossl_fail(msg, msg_len, "cipher_suites", NULL);
	else if (c->curves && *c->curves && SSL_CTX_set1_groups_list(ctx, c->curves) != 1)
		rc = ossl_fail(msg, msg_len, "curve_preferences", NULL);
	if (rc == 0 && c->client_auth != TS_CLIENT_AUTH_NONE) {
		int verify = c->client_auth >= TS_CLIENT_AUTH_VERIFY_IF_GIVEN;
		if (c->client_ca_file && *c->client_ca_file) {
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->client_ca_file);
			if (!names ||
			    SSL_CTX_load_verify_locations(ctx, c->client_ca_file, NULL) != 1) {
				sk_X509_NAME_pop_free(names, X509_NAME_free);
				rc = ossl_fail(msg, msg_len, "cannot load client_ca_file",
					       c->client_ca_file);
			} else {
				SSL_CTX_set_client_CA_list(ctx, names);
			}
		} else if (verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
			rc = ossl_fail(msg, msg_len, "cannot load the system's CAs", NULL);
		}
		int mode = SSL_VERIFY_PEER;
		if (c->client_auth == TS_CLIENT_AUTH_REQUIRE_ANY ||
		    c->client_auth == TS_CLIENT_AUTH_REQUIRE_VERIFY)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, verify ? NULL : accept_any);
	}
	if (rc) {
		SSL_CTX_free(ctx);
		return rc;
	}
	struct ts_tls_ctx *t = ts_malloc(sizeof *t);
	if (!t) {
		SSL_CTX_free(ctx);
		return -ENOMEM;
	}
	t->ctx = ctx;
	*out = t;
	return 0;
}

void ts_tls_ctx_free(struct ts_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ctx);
	ts_free(ctx);
}

int ts_tls_new(struct ts_tls_ctx *ctx, struct ts_tls **out)
{
	*out = NULL;
	struct ts_tls *t = ts_calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(ctx->ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		SSL_free(t->ssl);
		BIO_free(t->in);
		BIO_free(t->out);
		ts_free(t);
		return -ENOMEM;
	}
	/* An empty memory BIO reads as "retry later", not as end of file. */
	BIO_set_mem_eof_return(t->in, -1);
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	SSL_set_accept_state(t->ssl);
	*out = t;
	return 0;
}

void ts_tls_free(struct ts_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* frees the BIOs too */
	ts_free(t);
}

int ts_tls_feed(struct ts_tls *t, const void *in, size_t n,
		int (*out)(void *arg, const char *p, size_t len), void *arg)
{
	if (n && BIO_write(t->in, in, (int)n) != (int)n)
		return TS_EIO;
	char buf[16384];
	for (;;) {
		ERR_clear_error();
		int r = SSL_read(t->ssl, buf, sizeof buf);
		if (r > 0) {
			if (out(arg, buf, (size_t)r))
				return 0;
			continue;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		ERR_clear_error();
		return e == SSL_ERROR_ZERO_RETURN ? 1 : TS_EIO;
	}
}

int ts_tls_write(struct ts_tls *t, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
		ERR_clear_error();
		int w = SSL_write(t->ssl, s, chunk);
		if (w <= 0) {
			ERR_clear_error();
			return TS_EIO;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

void ts_tls_shutdown(struct ts_tls *t)
{
	ERR_clear_error();
	if (SSL_is_init_finished(t->ssl))
		SSL_shutdown(t->ssl);
	ERR_clear_error();
}

int ts_tls_take_output(struct ts_tls *t, char **buf, size_t *n)
{
	*buf = NULL;
	*n = 0;
	size_t pending = BIO_ctrl_pending(t->out);
	if (!pending)
		return 0;
	char *b = ts_malloc(pending);
	if (!b)
		return -ENOMEM;
	size_t got = 0;
	while (got < pending) { /* BIO_read takes an int: read past 2 GiB in pieces */
		size_t want = pending - got < INT_MAX ? pending - got : INT_MAX;
		int r = BIO_read(t->out, b + got, (int)want);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (!got) {
		ts_free(b);
		return 0;
	}
	*buf = b;
	*n = got;
	return 0;
}
