/*
 * s3.c - S3 requests of the backup store (s3.h): HEAD, PUT, GET, DELETE of one object
 * and ListObjectsV2 pages, each one libcurl easy request signed with SigV4
 * (CURLOPT_AWS_SIGV4). Errors: 404 is TS_ENOTFOUND; any other failure TS_EIO, with the
 * status and S3's error code printed on stderr.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "storage/err.h"

struct s3 {
	CURL *h;
	char *base;   /* URL of the bucket, no trailing slash */
	char *prefix; /* key prefix, "" or ending in '/' */
	char sigv4[128];
	char userpwd[512];
	char token_hdr[2100];
};

static int g_init;

void s3_close(struct s3 *s)
{
	if (!s)
		return;
	if (s->h)
		curl_easy_cleanup(s->h);
	free(s->base);
	free(s->prefix);
	free(s);
}

int s3_open(const char *dest, const char *endpoint, struct s3 **out, char *why, size_t why_len)
{
	const char *b = dest + 5, *slash = strchr(b, '/');
	size_t bl = slash ? (size_t)(slash - b) : strlen(b);
	const char *key = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (!region || !*region)
		region = "us-east-1";
	if (bl == 0 || bl > 63) {
		snprintf(why, why_len, "%s: no bucket name (s3://bucket/prefix)", dest);
		return TS_EINVALID;
	}
	if (!key || !*key || !secret || !*secret) {
		snprintf(why, why_len, "S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
		return TS_EINVALID;
	}
	if (endpoint && strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)) {
		snprintf(why, why_len, "--s3-endpoint wants an http:// or https:// URL");
		return TS_EINVALID;
	}
	if (!g_init) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			snprintf(why, why_len, "libcurl did not start");
			return TS_EIO;
		}
		g_init = 1;
	}
	struct s3 *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	size_t cap = (endpoint ? strlen(endpoint) : 64) + bl + strlen(region) + 64;
	s->base = malloc(cap);
	const char *pre = slash ? slash + 1 : "";
	size_t pl = strlen(pre);
	s->prefix = malloc(pl + 2);
	s->h = curl_easy_init();
	if (!s->base || !s->prefix || !s->h) {
		s3_close(s);
		return -ENOMEM;
	}
	if (endpoint) {
		size_t el = strlen(endpoint);
		while (el && endpoint[el - 1] == '/')
			el--;
		snprintf(s->base, cap, "%.*s/%.*s", (int)el, endpoint, (int)bl, b);
	} else {
		snprintf(s->base, cap, "https://%.*s.s3.%s.amazonaws.com", (int)bl, b, region);
	}
	memcpy(s->prefix, pre, pl + 1);
	if (pl && pre[pl - 1] != '/')
		strcat(s->prefix, "/");
	snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", region);
	snprintf(s->userpwd, sizeof s->userpwd, "%s:%s", key, secret);
	const char *tok = getenv("AWS_SESSION_TOKEN");
	if (tok && *tok)
		snprintf(s->token_hdr, sizeof s->token_hdr, "x-amz-security-token: %s", tok);
	*out = s;
	return 0;
}

struct body {
	char *p;
	size_t n, max;
	int over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (b->n + n > b->max) {
		b->over = 1;
		return 0;
	}
	char *x = realloc(b->p, b->n + n + 1);
	if (!x)
		return 0;
	b->p = x;
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* Percent-encodes a key for a URL path (keeps '/'). */
static void enc_key(const char *k, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *k && o + 4 < cap; k++) {
		unsigned char c = (unsigned char)*k;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
}

/* One request. method "HEAD", "GET", "PUT", "DELETE"; url complete; up/up_len the PUT
 * body; resp receives the body (may be NULL). Returns the HTTP status, or <0. */
static long request(struct s3 *s, const char *method, const char *url, const void *up,
		    size_t up_len, struct body *resp)
{
	CURL *h = s->h;
	curl_easy_reset(h);
	struct curl_slist *hdr = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (s->token_hdr[0])
		hdr = curl_slist_append(hdr, s->token_hdr);
	struct body sink = { .max = 1u << 20 };
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, s->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp ? resp : &sink);
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, up);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up_len);
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	if (cc != CURLE_OK && !(resp && resp->over)) {
		fprintf(stderr, "tsdbctl: S3 %s %s: %s\n", method, url, curl_easy_strerror(cc));
		free(sink.p);
		return -1;
	}
	if (status >= 300 && status != 404) {
		const char *code = sink.p ? strstr(sink.p, "<Code>") : NULL;
		if (!code && resp && resp->p)
			code = strstr(resp->p, "<Code>");
		fprintf(stderr, "tsdbctl: S3 %s %s: HTTP %ld %.60s\n", method, url, status,
			code ? code + 6 : "");
	}
	free(sink.p);
	return status;
}

static void obj_url(struct s3 *s, const char *key, char *out, size_t cap)
{
	char k[2048], full[2048];
	snprintf(full, sizeof full, "%s%s", s->prefix, key);
	enc_key(full, k, sizeof k);
	snprintf(out, cap, "%s/%s", s->base, k);
}

int s3_exists(struct s3 *s, const char *key)
{
	char url[4096];
	obj_url(s, key, url, sizeof url);
	long st = request(s, "HEAD", url, NULL, 0, NULL);
	return st == 200 ? 1 : st == 404 ? 0 : TS_EIO;
}

int s3_put(struct s3 *s, const char *key, const void *p, size_t len)
{
	char url[4096];
	obj_url(s, key, url, sizeof url);
	long st = request(s, "PUT", url, p, len, NULL);
	return st == 200 ? 0 : TS_EIO;
}

int s3_get(struct s3 *s, const char *key, size_t max, char **out, size_t *len)
{
	char url[4096];
	obj_url(s, key, url, sizeof url);
	struct body b = { .max = max };
	long st = request(s, "GET", url, NULL, 0, &b);
	if (st != 200 || b.over) {
		free(b.p);
		return st == 404 ? TS_ENOTFOUND : b.over ? -EFBIG : TS_EIO;
	}
	if (!b.p && !(b.p = calloc(1, 1)))
		return -ENOMEM;
	*out = b.p;
	*len = b.n;
	return 0;
}

int s3_del(struct s3 *s, const char *key)
{
	char url[4096];
	obj_url(s, key, url, sizeof url);
	long st = request(s, "DELETE", url, NULL, 0, NULL);
	return st == 204 || st == 200 || st == 404 ? 0 : TS_EIO;
}

/* The text of the next <tag>...</tag> from *p, XML entities decoded, into out. */
static int xml_next(const char **p, const char *tag, char *out, size_t cap)
{
	char open[64], close[64];
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	const char *a = strstr(*p, open);
	if (!a)
		return 0;
	a += strlen(open);
	const char *e = strstr(a, close);
	if (!e)
		return 0;
	size_t o = 0;
	for (const char *c = a; c < e && o + 1 < cap;) {
		static const struct {
			const char *ent;
			char ch;
		} ents[] = { { "&amp;", '&' },
			     { "&lt;", '<' },
			     { "&gt;", '>' },
			     { "&quot;", '"' },
			     { "&apos;", '\'' } };
		int done = 0;
		for (size_t i = 0; i < 5 && !done; i++)
			if (!strncmp(c, ents[i].ent, strlen(ents[i].ent))) {
				out[o++] = ents[i].ch;
				c += strlen(ents[i].ent);
				done = 1;
			}
		if (!done)
			out[o++] = *c++;
	}
	out[o] = 0;
	*p = e + strlen(close);
	return 1;
}

int s3_keys(struct s3 *s, const char *prefix, s3_key_fn fn, void *arg)
{
	char pre[1024], epre[3072], token[2048] = "", etok[6144], url[12288];
	snprintf(pre, sizeof pre, "%s%s/", s->prefix, prefix);
	int rc = 0;
	for (;;) {
		char *e = curl_easy_escape(s->h, pre, 0);
		snprintf(epre, sizeof epre, "%s", e ? e : "");
		curl_free(e);
		etok[0] = 0;
		if (token[0]) {
			e = curl_easy_escape(s->h, token, 0);
			snprintf(etok, sizeof etok, "&continuation-token=%s", e ? e : "");
			curl_free(e);
		}
		snprintf(url, sizeof url, "%s?list-type=2&prefix=%s%s", s->base, epre, etok);
		struct body b = { .max = 64u << 20 };
		long st = request(s, "GET", url, NULL, 0, &b);
		if (st != 200 || !b.p) {
			free(b.p);
			return TS_EIO;
		}
		const char *p = b.p;
		char key[2048];
		size_t pl = strlen(s->prefix);
		while (rc == 0 && xml_next(&p, "Key", key, sizeof key))
			if (!strncmp(key, s->prefix, pl))
				rc = fn(arg, key + pl);
		p = b.p;
		int more = strstr(b.p, "<IsTruncated>true</IsTruncated>") != NULL &&
			   xml_next(&p, "NextContinuationToken", token, sizeof token);
		free(b.p);
		if (rc || !more)
			break;
	}
	return rc;
}
