/*
 * fuzz_http.c - split invariance of request framing (server/http.c).
 *
 * The input is fed to a fresh conn whole, then split in two at a position derived from
 * its first bytes, then (for short inputs) byte by byte. Each run renders its events
 * (requests with every field, 100-continue prompts, the final error and its status)
 * into a digest; all digests must be equal, or we abort. Small limits make the limit
 * paths reachable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"

struct digest {
	uint64_t h;
	unsigned n_events;
};

static void mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ull;
	d->h = (d->h ^ 0xff) * 1099511628211ull; /* field separator */
}

static void mix_int(struct digest *d, long v)
{
	mix(d, &v, sizeof(v));
}

static void mix_req(struct digest *d, const struct ts_http_request *r)
{
	mix(d, r->method, strlen(r->method));
	mix(d, r->target, r->target_len);
	mix(d, r->path, r->path_len);
	mix(d, r->query, r->query_len);
	for (size_t i = 0; i < r->n_headers; i++) {
		mix(d, r->headers[i].name, r->headers[i].name_len);
		mix(d, r->headers[i].value, r->headers[i].value_len);
	}
	if (r->body_len)
		mix(d, r->body, r->body_len);
	mix_int(d, (long)r->body_len);
	mix_int(d, r->http_minor * 8 + r->keep_alive * 4 + r->expect_continue * 2 + r->chunked);
}

/* Feeds data in pieces ending at cuts[0..n_cuts) and then len. */
static struct digest run(const uint8_t *data, size_t len, const size_t *cuts, size_t n_cuts)
{
	struct digest d = { 14695981039346656037ull, 0 };
	struct ts_http_limits lim = { .max_header_bytes = 1024,
				      .max_headers = 16,
				      .max_body_bytes = 4096,
				      .max_url_bytes = 256 };
	struct ts_http_conn *c;
	struct ts_http_request req;
	int rc = 0;
	size_t start = 0;
	if (ts_http_conn_new(&c, &lim) != 0)
		abort();
	ts_http_request_init(&req);
	for (size_t k = 0; k <= n_cuts && rc >= 0; k++) {
		size_t end = k < n_cuts ? cuts[k] : len;
		size_t off = start;
		for (;;) {
			size_t used;
			rc = ts_http_feed(c, (const char *)data + off, end - off, &used, &req);
			if (used > end - off)
				abort();
			off += used;
			if (rc == TS_HTTP_REQUEST) {
				d.n_events++;
				mix_int(&d, 1);
				mix_req(&d, &req);
				continue;
			}
			if (rc == TS_HTTP_CONTINUE) {
				d.n_events++;
				mix_int(&d, 2);
				continue;
			}
			if (rc < 0) {
				d.n_events++;
				mix_int(&d, rc);
				mix_int(&d, ts_http_conn_status(c));
			} else if (off != end) {
				abort(); /* NEED_MORE must consume everything */
			}
			break;
		}
		start = end;
	}
	ts_http_request_fini(&req);
	ts_http_conn_free(c);
	return d;
}

static void same(struct digest a, struct digest b)
{
	if (a.h != b.h || a.n_events != b.n_events)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest whole = run(data, size, NULL, 0);
	if (size > 0) {
		size_t cut = size > 1 ? ((size_t)data[0] << 8 | data[size - 1]) % (size + 1) : 1;
		same(whole, run(data, size, &cut, 1));
		size_t cuts3[3] = { size / 3, size / 2, size - 1 };
		same(whole, run(data, size, cuts3, 3));
	}
	if (size <= 2048) {
		size_t *cuts = malloc((size + 1) * sizeof(*cuts));
		if (!cuts)
			return 0;
		for (size_t i = 0; i < size; i++)
			cuts[i] = i + 1;
		same(whole, run(data, size, cuts, size));
		free(cuts);
	}
	return 0;
}
