/*
 * auth.c - basic authentication (auth.h): libcrypt's bcrypt (crypt_rn), OpenSSL's
 * SHA-256, RAND_bytes and CRYPTO_memcmp.
 */
#include "server/auth.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "storage/err.h"
#include "storage/mem.h"

#define CACHE_SLOTS 1024

/* A bcrypt hash (cost 10) of a password nobody knows: what an unknown user is checked
 * against, so that the time spent does not tell whether the user exists. */
static const char dummy_hash[] = "$2b$10$jN8ZWz7f33f2uDjklxT.xugMglgUVFuOVDJYoBHnanAcbW60F8Yda";

struct slot {
	uint8_t key[32];
	int used, ok;
};

struct ts_auth {
	struct ts_web_pair *users;
	size_t n_users;
	uint8_t secret[32];
	pthread_mutex_t mu;
	struct slot cache[CACHE_SLOTS];
};

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int ts_auth_parse_basic(const char *v, size_t len, char *user, char *pass)
{
	user[0] = pass[0] = 0;
	if (!v || len < 6 || strncasecmp(v, "Basic ", 6))
		return TS_EINVALID;
	const unsigned char *s = (const unsigned char *)v + 6;
	size_t n = len - 6;
	/* Standard base64 with padding, as Go's StdEncoding takes it. */
	if (n % 4 || n / 4 * 3 > 2 * TS_AUTH_MAX_FIELD + 1)
		return TS_EINVALID;
	char dec[2 * TS_AUTH_MAX_FIELD + 4];
	size_t d = 0;
	for (size_t i = 0; i < n; i += 4) {
		int a = b64_val(s[i]), b = b64_val(s[i + 1]);
		int last = i + 4 == n;
		int c = s[i + 2] == '=' && last ? -2 : b64_val(s[i + 2]);
		int e = s[i + 3] == '=' && last ? -2 : b64_val(s[i + 3]);
		if (a < 0 || b < 0 || c == -1 || e == -1 || (c == -2 && e != -2))
			return TS_EINVALID;
		dec[d++] = (char)(a << 2 | b >> 4);
		if (c >= 0)
			dec[d++] = (char)((b & 15) << 4 | c >> 2);
		if (e >= 0)
			dec[d++] = (char)((c & 3) << 6 | e);
	}
	char *colon = memchr(dec, ':', d);
	if (!colon || memchr(dec, 0, d))
		return TS_EINVALID;
	size_t ul = (size_t)(colon - dec), pl = d - ul - 1;
	if (ul > TS_AUTH_MAX_FIELD || pl > TS_AUTH_MAX_FIELD)
		return TS_EINVALID;
	memcpy(user, dec, ul);
	user[ul] = 0;
	memcpy(pass, colon + 1, pl);
	pass[pl] = 0;
	return 0;
}

int ts_auth_new(const struct ts_web_config *c, struct ts_auth **out)
{
	*out = NULL;
	if (!c || !c->n_users)
		return 0;
	struct ts_auth *a = ts_calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->users = ts_calloc(c->n_users, sizeof *a->users);
	if (!a->users) {
		ts_free(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n_users; i++) {
		a->users[i].name = ts_strdup(c->users[i].name);
		a->users[i].value = ts_strdup(c->users[i].value);
		a->n_users++;
		if (!a->users[i].name || !a->users[i].value) {
			ts_auth_free(a);
			return -ENOMEM;
		}
	}
	if (RAND_bytes(a->secret, sizeof a->secret) != 1) {
		ts_auth_free(a);
		return -ENOMEM;
	}
	pthread_mutex_init(&a->mu, NULL);
	*out = a;
	return 0;
}

void ts_auth_free(struct ts_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_users; i++) {
		ts_free(a->users[i].name);
		ts_free(a->users[i].value);
	}
	ts_free(a->users);
	OPENSSL_cleanse(a, sizeof *a);
	ts_free(a);
}

/* SHA-256(secret, user, 0, hash, 0, pass): the cache key. */
static int cache_key(const struct ts_auth *a, const char *user, const char *hash, const char *pass,
		     uint8_t out[32])
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned n = 0;
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(m, a->secret, sizeof a->secret) &&
		 EVP_DigestUpdate(m, user, strlen(user) + 1) &&
		 EVP_DigestUpdate(m, hash, strlen(hash) + 1) &&
		 EVP_DigestUpdate(m, pass, strlen(pass)) && EVP_DigestFinal_ex(m, out, &n) &&
		 n == 32;
	EVP_MD_CTX_free(m);
	return ok ? 0 : -ENOMEM;
}

/* 1 if pass matches the bcrypt hash. */
static int bcrypt_ok(const char *pass, const char *hash)
{
	size_t hl = strlen(hash);
	if (hl < 60)
		return 0; /* an empty or short hash never authenticates */
	struct crypt_data *cd = ts_calloc(1, sizeof *cd);
	if (!cd)
		return 0;
	const char *r = crypt_rn(pass, hash, cd, (int)sizeof *cd);
	int ok = r && r[0] == '$' && strlen(r) == hl && CRYPTO_memcmp(r, hash, hl) == 0;
	OPENSSL_cleanse(cd, sizeof *cd);
	ts_free(cd);
	return ok;
}

int ts_auth_check(struct ts_auth *a, const char *authz, size_t len)
{
	if (!a)
		return 1;
	char user[TS_AUTH_MAX_FIELD + 1], pass[TS_AUTH_MAX_FIELD + 1];
	if (ts_auth_parse_basic(authz, len, user, pass))
		return 0;
	const char *hash = NULL;
	for (size_t i = 0; i < a->n_users; i++)
		if (!strcmp(a->users[i].name, user))
			hash = a->users[i].value;
	int known = hash != NULL;
	if (!known)
		hash = dummy_hash;
	uint8_t key[32];
	int ok = -1;
	if (cache_key(a, user, hash, pass, key) == 0) {
		struct slot *s = &a->cache[(key[0] | key[1] << 8) % CACHE_SLOTS];
		pthread_mutex_lock(&a->mu);
		if (s->used && CRYPTO_memcmp(s->key, key, 32) == 0)
			ok = s->ok;
		pthread_mutex_unlock(&a->mu);
		if (ok < 0) {
			ok = bcrypt_ok(pass, hash) && known;
			pthread_mutex_lock(&a->mu);
			memcpy(s->key, key, 32);
			s->used = 1;
			s->ok = ok;
			pthread_mutex_unlock(&a->mu);
		}
	} else {
		ok = bcrypt_ok(pass, hash) && known;
	}
	OPENSSL_cleanse(pass, sizeof pass);
	return ok == 1;
}
