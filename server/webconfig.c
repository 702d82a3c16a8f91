/*
 * webconfig.c - the --web.config.file parser (webconfig.h), on libyaml's document
 * loader: the file is small and nested three levels, so a node tree is simpler than
 * events. Every mapping is walked against a table of the keys it may hold, so an
 * unknown key or a key given twice is an error as in the toolkit's strict decoding.
 */
#include "server/webconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "server/cfgfile.h"
#include "storage/err.h"
#include "storage/mem.h"

#define MAX_ENTRIES 10000 /* users, headers, ciphers: far above any real file */

struct ctx {
	yaml_document_t *doc;
	const char *dir;
	struct ts_web_config *c;
	char *msg;
	size_t msg_len;
};

static int fail(struct ctx *x, const yaml_node_t *n, const char *fmt, const char *a)
{
	if (x->msg && x->msg_len) {
		char why[300];
		snprintf(why, sizeof why, fmt, a ? a : "");
		if (n)
			snprintf(x->msg, x->msg_len, "line %zu: %s", (size_t)n->start_mark.line + 1,
				 why);
		else
			snprintf(x->msg, x->msg_len, "%s", why);
	}
	return TS_EINVALID;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A null value: `key:` with nothing, `~` or `null`. */
static int is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);
	return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || !strcmp(s, "~") || !strcasecmp(s, "null"));
}

static int get_string(struct ctx *x, const yaml_node_t *v, const char *key, char **out)
{
	const char *s = scalar(v);
	if (!s)
		return fail(x, v, "%s must be a string", key);
	if (is_null(v))
		s = "";
	if (strlen(s) != v->data.scalar.length)
		return fail(x, v, "%s holds a NUL byte", key);
	ts_free(*out);
	*out = ts_strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* A file name: joined with the config file's directory unless absolute (or empty). */
static int get_path(struct ctx *x, const yaml_node_t *v, const char *key, char **out)
{
	int rc = get_string(x, v, key, out);
	if (rc || !**out || (*out)[0] == '/' || !x->dir || !*x->dir)
		return rc;
	size_t n = strlen(x->dir) + strlen(*out) + 2;
	char *j = ts_malloc(n);
	if (!j)
		return -ENOMEM;
	snprintf(j, n, "%s/%s", x->dir, *out);
	ts_free(*out);
	*out = j;
	return 0;
}

static int get_bool(struct ctx *x, const yaml_node_t *v, const char *key, int *out)
{
	static const char *const t[] = { "true", "yes", "on", "y" };
	static const char *const f[] = { "false", "no", "off", "n" };
	const char *s = scalar(v);
	if (s)
		for (int i = 0; i < 4; i++) {
			if (!strcasecmp(s, t[i]))
				return *out = 1, 0;
			if (!strcasecmp(s, f[i]))
				return *out = 0, 0;
		}
	return fail(x, v, "%s must be true or false", key);
}

static int get_version(struct ctx *x, const yaml_node_t *v, const char *key, int *out)
{
	static const char *const names[] = { "TLS10", "TLS11", "TLS12", "TLS13" };
	const char *s = scalar(v);
	for (int i = 0; s && i < 4; i++)
		if (!strcmp(s, names[i]))
			return *out = 10 + i, 0;
	char why[200];
	snprintf(why, sizeof why, "%s: unknown TLS version \"%.64s\" (TLS10, TLS11, TLS12, TLS13)",
		 key, s ? s : "");
	return fail(x, v, "%s", why);
}

/* Go's cipher suite names (crypto/tls CipherSuites()) and OpenSSL's. The TLS 1.3 suites
 * have no OpenSSL name here: Go ignores them in this list too (TLS 1.3 suites are not
 * configurable there). */
static const struct {
	const char *go, *ossl;
} ciphers[] = {
	{ "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA" },
	{ "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA" },
	{ "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256" },
	{ "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384" },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ "TLS_AES_128_GCM_SHA256", NULL },
	{ "TLS_AES_256_GCM_SHA384", NULL },
	{ "TLS_CHACHA20_POLY1305_SHA256", NULL },
};

static const struct {
	const char *go, *ossl;
} curves[] = {
	{ "CurveP256", "P-256" },
	{ "CurveP384", "P-384" },
	{ "CurveP521", "P-521" },
	{ "X25519", "X25519" },
};

/* A sequence of names mapped through `tab` into a ':'-joined OpenSSL list. */
static int get_list(struct ctx *x, const yaml_node_t *v, const char *key, int is_cipher, char **out)
{
	if (is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(x, v, "%s must be a list", key);
	size_t cap = 1, n = 0;
	char *list = NULL;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		const yaml_node_t *e = yaml_document_get_node(x->doc, *it);
		const char *s = scalar(e);
		const char *o = NULL;
		int found = 0;
		size_t nt = is_cipher ? sizeof ciphers / sizeof ciphers[0]
				      : sizeof curves / sizeof curves[0];
		for (size_t i = 0; s && i < nt; i++)
			if (!strcmp(s, is_cipher ? ciphers[i].go : curves[i].go)) {
				o = is_cipher ? ciphers[i].ossl : curves[i].ossl;
				found = 1;
			}
		if (!found) {
			ts_free(list);
			char why[200];
			snprintf(why, sizeof why, "unknown %s \"%.80s\"",
				 is_cipher ? "cipher" : "curve", s ? s : "(not a string)");
			return fail(x, e, "%s", why);
		}
		if (!o)
			continue;
		size_t ol = strlen(o);
		if (ts_grow((void **)&list, &cap, n + ol + 2, 1)) {
			ts_free(list);
			return -ENOMEM;
		}
		if (n)
			list[n++] = ':';
		memcpy(list + n, o, ol + 1);
		n += ol;
	}
	ts_free(*out);
	*out = list;
	return 0;
}

int ts_web_bcrypt_valid(const char *h)
{
	static const char b64[] =
		"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	if (!h || strlen(h) != 60 || h[0] != '$' || h[1] != '2' ||
	    (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$')
		return 0;
	if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9')
		return 0;
	int cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31)
		return 0;
	for (int i = 7; i < 60; i++)
		if (!strchr(b64, h[i]) || !h[i])
			return 0;
	return 1;
}

/* Walks mapping m: for each key, fn(x, key, value) (1 = unknown key). */
typedef int (*entry_fn)(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v);

static int walk(struct ctx *x, const yaml_node_t *m, const char *what, entry_fn fn)
{
	if (is_null(m))
		return 0;
	if (m->type != YAML_MAPPING_NODE)
		return fail(x, m, "%s must be a mapping", what);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *ks = scalar(k);
		if (!ks || !v)
			return fail(x, k, "%s: keys must be strings", what);
		for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
			const char *qs = scalar(yaml_document_get_node(x->doc, q->key));
			if (qs && !strcmp(qs, ks))
				return fail(x, k, "key \"%.100s\" given twice", ks);
		}
		if (p - m->data.mapping.pairs.start >= MAX_ENTRIES)
			return fail(x, k, "%s has too many entries", what);
		int rc = fn(x, ks, k, v);
		if (rc == 1) {
			char why[250];
			snprintf(why, sizeof why, "field %.100s not found in %s", ks, what);
			return fail(x, k, "%s", why);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int tls_entry(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	struct ts_web_config *c = x->c;
	(void)k;
	if (!strcmp(key, "cert_file"))
		return get_path(x, v, key, &c->cert_file);
	if (!strcmp(key, "key_file"))
		return get_path(x, v, key, &c->key_file);
	if (!strcmp(key, "client_ca_file"))
		return get_path(x, v, key, &c->client_ca_file);
	if (!strcmp(key, "client_auth_type")) {
		static const char *const names[] = { "NoClientCert", "RequestClientCert",
						     "RequireAnyClientCert",
						     "VerifyClientCertIfGiven",
						     "RequireAndVerifyClientCert" };
		const char *s = scalar(v);
		if (s && (!*s || is_null(v)))
			return c->client_auth = TS_CLIENT_AUTH_NONE, 0;
		for (int i = 0; s && i < 5; i++)
			if (!strcmp(s, names[i]))
				return c->client_auth = (enum ts_client_auth)i, 0;
		if (s && !strcmp(s, "RequireClientCert")) /* the toolkit's old name */
			return c->client_auth = TS_CLIENT_AUTH_REQUIRE_ANY, 0;
		return fail(x, v, "invalid ClientAuth: %.80s", s ? s : "(not a string)");
	}
	if (!strcmp(key, "min_version"))
		return get_version(x, v, key, &c->min_version);
	if (!strcmp(key, "max_version"))
		return get_version(x, v, key, &c->max_version);
	if (!strcmp(key, "cipher_suites"))
		return get_list(x, v, key, 1, &c->ciphers);
	if (!strcmp(key, "curve_preferences"))
		return get_list(x, v, key, 0, &c->curves);
	if (!strcmp(key, "prefer_server_cipher_suites"))
		return get_bool(x, v, key, &c->prefer_server_ciphers);
	return 1;
}

static int add_pair(struct ts_web_pair **v, size_t *n, const char *a, const char *b)
{
	size_t cap = *n;
	if (ts_grow((void **)v, &cap, *n + 1, sizeof **v))
		return -ENOMEM;
	struct ts_web_pair p = { ts_strdup(a), ts_strdup(b) };
	if (!p.name || !p.value) {
		ts_free(p.name);
		ts_free(p.value);
		return -ENOMEM;
	}
	(*v)[(*n)++] = p;
	return 0;
}

static int header_entry(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	/* The toolkit allows these five, two of them with fixed values. */
	static const struct {
		const char *name, *allowed[2];
	} hdrs[] = {
		{ "Strict-Transport-Security", { NULL, NULL } },
		{ "X-Content-Type-Options", { "nosniff", NULL } },
		{ "X-Frame-Options", { "deny", "sameorigin" } },
		{ "X-XSS-Protection", { NULL, NULL } },
		{ "Content-Security-Policy", { NULL, NULL } },
	};
	const char *s = scalar(v);
	if (!s || is_null(v))
		return fail(x, v, "header %.100s needs a string value", key);
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		if (strcmp(key, hdrs[i].name))
			continue;
		if (hdrs[i].allowed[0] && strcmp(s, hdrs[i].allowed[0]) &&
		    (!hdrs[i].allowed[1] || strcmp(s, hdrs[i].allowed[1]))) {
			char why[250];
			snprintf(why, sizeof why,
				 "invalid value for %s: \"%.64s\" (expected %s%s%s)", key, s,
				 hdrs[i].allowed[0], hdrs[i].allowed[1] ? " or " : "",
				 hdrs[i].allowed[1] ? hdrs[i].allowed[1] : "");
			return fail(x, v, "%s", why);
		}
		if (strpbrk(s, "\r\n") || strlen(s) != v->data.scalar.length)
			return fail(x, v, "header %.100s: the value holds a line break", key);
		return add_pair(&x->c->headers, &x->c->n_headers, key, s);
	}
	return fail(x, k, "HTTP header \"%.100s\" can not be configured", key);
}

static int http_entry(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	(void)k;
	if (!strcmp(key, "http2"))
		return get_bool(x, v, key, &x->c->http2);
	if (!strcmp(key, "headers"))
		return walk(x, v, "headers", header_entry);
	return 1;
}

static int user_entry(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	const char *h = scalar(v);
	if (!*key || strchr(key, ':') || strlen(key) != k->data.scalar.length)
		return fail(x, k, "user name \"%.100s\" is empty or holds ':' or NUL", key);
	if (!h || !ts_web_bcrypt_valid(h))
		return fail(x, v,
			    "the password of user %.100s is not a bcrypt hash "
			    "($2a$, $2b$ or $2y$, cost 04-31)",
			    key);
	return add_pair(&x->c->users, &x->c->n_users, key, h);
}

static int root_entry(struct ctx *x, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	(void)k;
	if (!strcmp(key, "tls_server_config"))
		return walk(x, v, "tls_server_config", tls_entry);
	if (!strcmp(key, "http_server_config"))
		return walk(x, v, "http_server_config", http_entry);
	if (!strcmp(key, "basic_auth_users"))
		return walk(x, v, "basic_auth_users", user_entry);
	return 1;
}

void ts_web_config_fini(struct ts_web_config *c)
{
	if (!c)
		return;
	ts_free(c->cert_file);
	ts_free(c->key_file);
	ts_free(c->client_ca_file);
	ts_free(c->ciphers);
	ts_free(c->curves);
	for (size_t i = 0; i < c->n_headers; i++) {
		ts_free(c->headers[i].name);
		ts_free(c->headers[i].value);
	}
	ts_free(c->headers);
	for (size_t i = 0; i < c->n_users; i++) {
		ts_free(c->users[i].name);
		ts_free(c->users[i].value);
	}
	ts_free(c->users);
	memset(c, 0, sizeof *c);
}

int ts_web_config_parse(const char *buf, size_t len, const char *dir, struct ts_web_config *out,
			char *msg, size_t msg_len)
{
	memset(out, 0, sizeof *out);
	out->min_version = 12;
	out->max_version = 13;
	out->prefer_server_ciphers = 1;
	out->http2 = 1;
	if (msg && msg_len)
		msg[0] = 0;
	yaml_parser_t p;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &doc)) {
		int rc = p.error == YAML_MEMORY_ERROR ? -ENOMEM : TS_EINVALID;
		if (msg)
			snprintf(msg, msg_len, "line %zu: %s", (size_t)p.problem_mark.line + 1,
				 p.problem ? p.problem : "not YAML");
		yaml_parser_delete(&p);
		return rc;
	}
	struct ctx x = { &doc, dir, out, msg, msg_len };
	const yaml_node_t *root = yaml_document_get_root_node(&doc);
	int rc = root ? walk(&x, root, "the file", root_entry) : 0;
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	if (rc == 0) {
		/* What the toolkit checks once the keys are read. */
		struct ts_web_config *c = out;
		c->tls = (c->cert_file && *c->cert_file) || (c->key_file && *c->key_file) ||
			 (c->client_ca_file && *c->client_ca_file) ||
			 c->client_auth != TS_CLIENT_AUTH_NONE;
		if (c->tls && (!c->cert_file || !*c->cert_file))
			rc = fail(&x, NULL, "tls_server_config: missing cert_file", NULL);
		else if (c->tls && (!c->key_file || !*c->key_file))
			rc = fail(&x, NULL, "tls_server_config: missing key_file", NULL);
		else if (c->client_ca_file && *c->client_ca_file &&
			 c->client_auth == TS_CLIENT_AUTH_NONE)
			rc = fail(&x, NULL,
				  "tls_server_config: client CA's have been configured without a "
				  "Client Auth Policy",
				  NULL);
		else if (c->min_version > c->max_version)
			rc = fail(&x, NULL, "tls_server_config: min_version is above max_version",
				  NULL);
	}
	if (rc)
		ts_web_config_fini(out);
	return rc;
}

int ts_web_config_load(const char *path, struct ts_web_config *out, char *msg, size_t msg_len)
{
	memset(out, 0, sizeof *out);
	char *buf;
	size_t n;
	int rc = ts_cfgfile_read(path, &buf, &n, msg, msg_len);
	if (rc)
		return rc;
	/* Relative file names are relative to the file's directory. */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		dir[0] = 0;
	char m[400] = "";
	rc = ts_web_config_parse(buf, n, dir, out, m, sizeof m);
	ts_free(buf);
	if (rc)
		snprintf(msg, msg_len, "%s: %s", path, m);
	return rc;
}
