/*
 * Unit tests of --web.config.file parsing (server/webconfig.c) and basic auth
 * (server/auth.c): a table of good and bad files with the reason each bad one gives,
 * relative paths joined with the file's directory, defaults; the Authorization header
 * parser on good and malformed values; ts_auth_check with hashes made here by libcrypt
 * (right and wrong passwords, unknown users, cached answers, a reload's new hash).
 */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/auth.h"
#include "server/webconfig.h"
#include "storage/err.h"

/* A bcrypt hash of pw made here (cost 4: fast). */
static void make_hash(const char *pw, char out[128])
{
	char salt[64];
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof salt));
	struct crypt_data cd;
	memset(&cd, 0, sizeof cd);
	const char *h = crypt_rn(pw, salt, &cd, sizeof cd);
	assert_non_null(h);
	snprintf(out, 128, "%s", h);
}

static int parse(const char *text, struct ts_web_config *c, char *msg)
{
	return ts_web_config_parse(text, strlen(text), "/etc/tsdbd", c, msg, 300);
}

static void test_good_files(void **state)
{
	(void)state;
	char h[128], text[2048], msg[300];
	make_hash("pw", h);
	struct ts_web_config c;
	/* empty file: nothing on, the toolkit's defaults */
	assert_int_equal(parse("", &c, msg), 0);
	assert_int_equal(c.tls, 0);
	assert_int_equal(c.n_users, 0);
	assert_int_equal(c.min_version, 12);
	assert_int_equal(c.max_version, 13);
	assert_int_equal(c.http2, 1);
	ts_web_config_fini(&c);
	snprintf(
		text, sizeof text,
		"tls_server_config:\n"
		"  cert_file: server.crt\n"
		"  key_file: /abs/server.key\n"
		"  client_auth_type: RequireAndVerifyClientCert\n"
		"  client_ca_file: ca/ca.crt\n"
		"  min_version: TLS13\n"
		"  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
		"  curve_preferences: [X25519, CurveP256]\n"
		"  prefer_server_cipher_suites: false\n"
		"http_server_config:\n"
		"  http2: false\n"
		"  headers:\n"
		"    X-Frame-Options: sameorigin\n"
		"    Strict-Transport-Security: max-age=31536000\n"
		"basic_auth_users:\n"
		"  alice: %s\n"
		"  'bob smith': \"%s\"\n",
		h, h);
	assert_int_equal(parse(text, &c, msg), 0);
	assert_int_equal(c.tls, 1);
	assert_string_equal(c.cert_file, "/etc/tsdbd/server.crt");
	assert_string_equal(c.key_file, "/abs/server.key");
	assert_string_equal(c.client_ca_file, "/etc/tsdbd/ca/ca.crt");
	assert_int_equal(c.client_auth, TS_CLIENT_AUTH_REQUIRE_VERIFY);
	assert_int_equal(c.min_version, 13);
	assert_string_equal(c.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
	assert_string_equal(c.curves, "X25519:P-256");
	assert_int_equal(c.prefer_server_ciphers, 0);
	assert_int_equal(c.http2, 0);
	assert_int_equal(c.n_headers, 2);
	assert_string_equal(c.headers[0].name, "X-Frame-Options");
	assert_string_equal(c.headers[0].value, "sameorigin");
	assert_int_equal(c.n_users, 2);
	assert_string_equal(c.users[1].name, "bob smith");
	assert_string_equal(c.users[1].value, h);
	ts_web_config_fini(&c);
	/* users alone: basic auth over plain HTTP */
	snprintf(text, sizeof text, "basic_auth_users:\n  alice: %s\n", h);
	assert_int_equal(parse(text, &c, msg), 0);
	assert_int_equal(c.tls, 0);
	assert_int_equal(c.n_users, 1);
	ts_web_config_fini(&c);
}

static void test_bad_files(void **state)
{
	(void)state;
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "nope: 1\n", "field nope not found in the file" },
		{ "tls_server_config:\n  cert_file: a\n", "missing key_file" },
		{ "tls_server_config:\n  key_file: a\n", "missing cert_file" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
		  "without a Client Auth Policy" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n",
		  "invalid ClientAuth: Maybe" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
		  "unknown TLS version" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
		  "  max_version: TLS12\n",
		  "min_version is above max_version" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [RC4]\n",
		  "unknown cipher \"RC4\"" },
		{ "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [P1]\n",
		  "unknown curve \"P1\"" },
		{ "tls_server_config:\n  cert_file: a\n  cert_file: b\n", "given twice" },
		{ "tls_server_config:\n  cert_file: [a]\n", "cert_file must be a string" },
		{ "tls_server_config: 3\n", "tls_server_config must be a mapping" },
		{ "http_server_config:\n  headers:\n    Server: x\n",
		  "HTTP header \"Server\" can not be configured" },
		{ "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
		  "invalid value for X-Frame-Options" },
		{ "http_server_config:\n  headers:\n    X-Content-Type-Options: x\n",
		  "invalid value for X-Content-Type-Options" },
		{ "http_server_config:\n  http2: maybe\n", "http2 must be true or false" },
		{ "basic_auth_users:\n  alice: secret\n", "is not a bcrypt hash" },
		{ "basic_auth_users:\n  alice: ''\n", "is not a bcrypt hash" },
		{ "basic_auth_users:\n  alice:\n", "is not a bcrypt hash" },
		{ "basic_auth_users:\n  'a:b': "
		  "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234\n",
		  "holds ':'" },
		{ "basic_auth_users: [alice]\n", "basic_auth_users must be a mapping" },
		{ "a: [\n", "line" },
		{ "- 1\n", "the file must be a mapping" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ts_web_config c;
		char msg[300];
		int rc = parse(bad[i].text, &c, msg);
		if (rc != TS_EINVALID || !strstr(msg, bad[i].why))
			fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, msg,
				 bad[i].why);
		assert_int_equal(c.n_users, 0); /* nothing left behind */
	}
}

static void test_bcrypt_valid(void **state)
{
	(void)state;
	char h[128];
	make_hash("x", h);
	assert_true(ts_web_bcrypt_valid(h));
	h[2] = 'y';
	assert_true(ts_web_bcrypt_valid(h));
	h[2] = 'x';
	assert_false(ts_web_bcrypt_valid(h));
	assert_false(ts_web_bcrypt_valid(""));
	assert_false(ts_web_bcrypt_valid(
		"$2b$03$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"));
	assert_false(
		ts_web_bcrypt_valid("$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ0123"));
}

static void test_parse_basic(void **state)
{
	(void)state;
	char u[TS_AUTH_MAX_FIELD + 1], p[TS_AUTH_MAX_FIELD + 1];
	const char *v = "Basic YWxpY2U6czNjcjp0"; /* alice:s3cr:t */
	assert_int_equal(ts_auth_parse_basic(v, strlen(v), u, p), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "s3cr:t");
	v = "basic Ym9iOg=="; /* bob: (empty password), scheme in another case */
	assert_int_equal(ts_auth_parse_basic(v, strlen(v), u, p), 0);
	assert_string_equal(u, "bob");
	assert_string_equal(p, "");
	static const char *const bad[] = {
		"",
		"Basic",
		"Basic ",
		"Bearer YWxpY2U6eA==",
		"Basic YWxpY2U",
		"Basic YWxpY2U6eA",
		"Basic YW=pY2U6",
		"Basic !!!!",
		"Basic YWJjZA==", /* "abcd": no ':' */
		"Basic YQBiOmM=", /* "a\0b:c": NUL */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (ts_auth_parse_basic(bad[i], strlen(bad[i]), u, p) != TS_EINVALID)
			fail_msg("\"%s\" parsed", bad[i]);
}

static int check(struct ts_auth *a, const char *user, const char *pw)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char raw[256], hdr[512] = "Basic ";
	int n = snprintf(raw, sizeof raw, "%s:%s", user, pw);
	size_t o = 6;
	for (int i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)raw[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)raw[i + 2];
		hdr[o++] = b64[v >> 18 & 63];
		hdr[o++] = b64[v >> 12 & 63];
		hdr[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		hdr[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	hdr[o] = 0;
	return ts_auth_check(a, hdr, o);
}

static void test_check(void **state)
{
	(void)state;
	char h1[128], h2[128];
	make_hash("right", h1);
	make_hash("other", h2);
	struct ts_web_pair users[2] = { { "alice", h1 }, { "bob", h2 } };
	struct ts_web_config c = { .users = users, .n_users = 2 };
	struct ts_auth *a;
	assert_int_equal(ts_auth_new(&c, &a), 0);
	assert_non_null(a);
	for (int round = 0; round < 2; round++) { /* the second round answers from cache */
		assert_true(check(a, "alice", "right"));
		assert_false(check(a, "alice", "wrong"));
		assert_false(check(a, "alice", "other")); /* bob's password */
		assert_true(check(a, "bob", "other"));
		assert_false(check(a, "carol", "right")); /* unknown user */
		assert_false(check(a, "alice", ""));
		assert_false(check(a, "alice", h1)); /* the hash itself */
	}
	assert_false(ts_auth_check(a, NULL, 0));
	assert_false(ts_auth_check(a, "Basic", 5));
	ts_auth_free(a);
	/* A reload with a new hash: the old password no longer works. */
	users[0].value = h2;
	assert_int_equal(ts_auth_new(&c, &a), 0);
	assert_false(check(a, "alice", "right"));
	assert_true(check(a, "alice", "other"));
	ts_auth_free(a);
	/* No users: no auth. */
	struct ts_web_config none = { 0 };
	assert_int_equal(ts_auth_new(&none, &a), 0);
	assert_null(a);
	assert_true(ts_auth_check(NULL, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_files),   cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_bcrypt_valid), cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
