/*
 * test_http.c - request framing (server/http.c) at every split point, limits, request
 * smuggling shapes, allocation failures, and response heads.
 *
 * Every framing case runs through check(): the input is fed whole, split in two at
 * every position, and byte by byte; each run renders its events (requests, 100-continue
 * prompts, errors) into a transcript, and all transcripts must equal the expected one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/http.h"
#include "storage/err.h"
#include "storage/mem.h"

struct tx {
	char s[8192];
	size_t len;
};

static void tx_add(struct tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx_add(struct tx *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->s + t->len, sizeof(t->s) - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
	if (t->len >= sizeof(t->s))
		t->len = sizeof(t->s) - 1;
}

static void tx_req(struct tx *t, const struct ts_http_request *r)
{
	tx_add(t, "REQ %s %s path=%s query=%s v=1.%d ka=%d exp=%d ch=%d", r->method, r->target,
	       r->path, r->query, r->http_minor, r->keep_alive, r->expect_continue, r->chunked);
	assert_int_equal(strlen(r->path), r->path_len);
	assert_int_equal(strlen(r->query), r->query_len);
	assert_int_equal(strlen(r->target), r->target_len);
	for (size_t i = 0; i < r->n_headers; i++) {
		assert_int_equal(strlen(r->headers[i].name), r->headers[i].name_len);
		assert_int_equal(strlen(r->headers[i].value), r->headers[i].value_len);
		tx_add(t, " [%s=%s]", r->headers[i].name, r->headers[i].value);
	}
	tx_add(t, " body=%zu:", r->body_len);
	if (r->body_len) {
		assert_non_null(r->body);
		assert_int_equal(r->body[r->body_len], '\0');
		tx_add(t, "%.*s", (int)(r->body_len < 64 ? r->body_len : 64), r->body);
	}
	tx_add(t, "\n");
}

static const char *errname(int rc)
{
	switch (rc) {
	case TS_ECORRUPT: return "TS_ECORRUPT";
	case TS_ELIMIT: return "TS_ELIMIT";
	case TS_ECLOSED: return "TS_ECLOSED";
	case -ENOMEM: return "-ENOMEM";
	default: return "?";
	}
}

/* Feeds `in` in pieces of the given sizes (the last piece takes the rest). Stops at the
 * first error. Returns the last return code. */
static int run(struct tx *t, const char *in, size_t len, const size_t *cuts, size_t n_cuts,
	       const struct ts_http_limits *lim)
{
	struct ts_http_conn *c;
	struct ts_http_request req;
	int rc = 0;
	size_t start = 0;
	assert_int_equal(ts_http_conn_new(&c, lim), 0);
	ts_http_request_init(&req);
	t->len = 0;
	t->s[0] = '\0';
	for (size_t k = 0; k <= n_cuts && rc >= 0; k++) {
		size_t end = k < n_cuts ? cuts[k] : len;
		size_t off = start;
		for (;;) {
			size_t used = 99999;
			rc = ts_http_feed(c, in + off, end - off, &used, &req);
			assert_true(used <= end - off);
			off += used;
			if (rc == TS_HTTP_REQUEST) {
				tx_req(t, &req);
				continue;
			}
			if (rc == TS_HTTP_CONTINUE) {
				tx_add(t, "CONTINUE\n");
				continue;
			}
			if (rc < 0) {
				tx_add(t, "ERR %d %s\n", ts_http_conn_status(c), errname(rc));
				/* the error is sticky */
				size_t u2;
				assert_int_equal(
					ts_http_feed(c, "GET / HTTP/1.1\r\n\r\n", 18, &u2, &req),
					rc);
				assert_int_equal(u2, 0);
				break;
			}
			assert_int_equal(rc, TS_HTTP_NEED_MORE);
			assert_int_equal(off, end);
			break;
		}
		start = end;
	}
	ts_http_request_fini(&req);
	ts_http_conn_free(c);
	return rc;
}

static void check_lim(const char *in, size_t len, const char *expect,
		      const struct ts_http_limits *lim)
{
	static struct tx whole, part;
	run(&whole, in, len, NULL, 0, lim);
	if (strcmp(whole.s, expect) != 0) {
		print_error("input:\n%.*s\nexpected:\n%s\ngot:\n%s\n", (int)len, in, expect,
			    whole.s);
		fail();
	}
	/* Every split point of inputs up to 4 KiB; for the big limit cases, a stride plus
     * the first and last 100 positions, which keeps ASan runs short. */
	size_t stride = len <= 4096 ? 1 : len / 256;
	for (size_t cut = 0; cut <= len; cut += (cut < 100 || cut + 100 >= len) ? 1 : stride) {
		run(&part, in, len, &cut, 1, lim);
		if (strcmp(whole.s, part.s) != 0) {
			print_error("split at %zu:\n%s\nvs whole:\n%s\n", cut, part.s, whole.s);
			fail();
		}
	}
	if (len <= 4096) {
		size_t *cuts = malloc((len + 1) * sizeof(*cuts));
		assert_non_null(cuts);
		for (size_t i = 0; i < len; i++)
			cuts[i] = i + 1;
		run(&part, in, len, cuts, len, lim);
		free(cuts);
		if (strcmp(whole.s, part.s) != 0) {
			print_error("byte by byte:\n%s\nvs whole:\n%s\n", part.s, whole.s);
			fail();
		}
	}
}

#define check(in, expect) check_lim(in, sizeof(in) - 1, expect, NULL)

/* ---- request shapes ----------------------------------------------------------- */

static void test_get_query(void **state)
{
	(void)state;
	check("GET /api/v1/query?query=up&time=1 HTTP/1.1\r\nHost: x\r\nAccept:  */* \r\n\r\n",
	      "REQ GET /api/v1/query?query=up&time=1 path=/api/v1/query query=query=up&time=1 "
	      "v=1.1 ka=1 exp=0 ch=0 [Host=x] [Accept=*/*] body=0:\n");
	check("GET /a?b#frag HTTP/1.1\r\nHost: x\r\nEmpty:\r\n\r\n",
	      "REQ GET /a?b#frag path=/a query=b v=1.1 ka=1 exp=0 ch=0 [Host=x] [Empty=] body=0:\n");
	check("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	      "REQ OPTIONS * path=* query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n");
	check("GET http://h:80/p/q?z=1 HTTP/1.1\r\nHost: h\r\n\r\n",
	      "REQ GET http://h:80/p/q?z=1 path=/p/q query=z=1 v=1.1 ka=1 exp=0 ch=0 [Host=h] "
	      "body=0:\n");
	check("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
	      "REQ GET http://h path=/ query= v=1.1 ka=1 exp=0 ch=0 [Host=h] body=0:\n");
	/* empty lines before a request are skipped (RFC 9112 2.2) */
	check("\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
	      "REQ HEAD / path=/ query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n");
}

static void test_post_content_length(void **state)
{
	(void)state;
	check("POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
	      "REQ POST /write path=/write query= v=1.1 ka=1 exp=0 ch=0 [Host=x] "
	      "[Content-Length=11] body=11:hello world\n");
	check("POST /w HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n",
	      "REQ POST /w path=/w query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [content-length=0] "
	      "body=0:\n");
}

static void test_chunked(void **state)
{
	(void)state;
	check("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "5;name=val;x=\"q d\"\r\nhello\r\n6 ; e\r\n world\r\nA\r\n0123456789\r\n"
	      "0;last\r\nX-Trailer: t\r\nY: y\r\n\r\n",
	      "REQ POST /c path=/c query= v=1.1 ka=1 exp=0 ch=1 [Host=x] "
	      "[Transfer-Encoding=chunked] body=21:hello world0123456789\n");
	check("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n0\r\n\r\n",
	      "REQ POST /c path=/c query= v=1.1 ka=1 exp=0 ch=1 [Host=x] "
	      "[Transfer-Encoding=Chunked] body=0:\n");
}

static void test_pipelined(void **state)
{
	(void)state;
	check("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
	      "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	      "POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
	      "GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	      "REQ GET /1 path=/1 query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n"
	      "REQ POST /2 path=/2 query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [Content-Length=3] "
	      "body=3:abc\n"
	      "REQ POST /3 path=/3 query= v=1.1 ka=1 exp=0 ch=1 [Host=x] "
	      "[Transfer-Encoding=chunked] body=2:de\n"
	      "REQ GET /4 path=/4 query= v=1.1 ka=0 exp=0 ch=0 [Host=x] [Connection=close] "
	      "body=0:\n");
}

static void test_expect_continue(void **state)
{
	(void)state;
	check("POST /w HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
	      "CONTINUE\nREQ POST /w path=/w query= v=1.1 ka=1 exp=1 ch=0 [Host=x] "
	      "[Expect=100-continue] [Content-Length=2] body=2:ok\n");
	check("POST /w HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked"
	      "\r\n\r\n1\r\nz\r\n0\r\n\r\n",
	      "CONTINUE\nREQ POST /w path=/w query= v=1.1 ka=1 exp=1 ch=1 [Host=x] "
	      "[Expect=100-Continue] [Transfer-Encoding=chunked] body=1:z\n");
	/* no body announced: nothing to wait for */
	check("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	      "REQ GET / path=/ query= v=1.1 ka=1 exp=1 ch=0 [Host=x] [Expect=100-continue] "
	      "body=0:\n");
	/* HTTP/1.0 clients do not wait for 100 */
	check("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nq",
	      "REQ POST / path=/ query= v=1.0 ka=0 exp=0 ch=0 [Expect=100-continue] "
	      "[Content-Length=1] body=1:q\n");
	check("POST /w HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 2\r\n\r\nok",
	      "ERR 417 TS_ELIMIT\n");
	/* too large: answered without reading the body */
	check("POST /w HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999999"
	      "\r\n\r\n",
	      "ERR 413 TS_ELIMIT\n");
}

static void test_keep_alive(void **state)
{
	(void)state;
	check("GET / HTTP/1.0\r\n\r\n", "REQ GET / path=/ query= v=1.0 ka=0 exp=0 ch=0 body=0:\n");
	check("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
	      "REQ GET / path=/ query= v=1.0 ka=1 exp=0 ch=0 [Connection=keep-alive] body=0:\n"
	      "REQ GET /b path=/b query= v=1.0 ka=0 exp=0 ch=0 body=0:\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
	      "REQ GET / path=/ query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [Connection=keep-alive] "
	      "body=0:\n");
	/* nothing is parsed after a request that closes the connection */
	check("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
	      "REQ GET / path=/ query= v=1.1 ka=0 exp=0 ch=0 [Host=x] [Connection=close] body=0:\n"
	      "ERR 0 TS_ECLOSED\n");
	check("GET / HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
	      "REQ GET / path=/ query= v=1.0 ka=0 exp=0 ch=0 body=0:\nERR 0 TS_ECLOSED\n");
}

/* ---- limits ------------------------------------------------------------------- */

static char big[200000];

static size_t build(const char *prefix, char fill, size_t n, const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(suffix);
	assert_true(a + n + b < sizeof(big));
	memcpy(big, prefix, a);
	memset(big + a, fill, n);
	memcpy(big + a + n, suffix, b);
	return a + n + b;
}

static void test_limits(void **state)
{
	(void)state;
	struct ts_http_limits lim;
	ts_http_limits_default(&lim);
	lim.max_header_bytes = 256;
	lim.max_headers = 3;
	lim.max_body_bytes = 10;
	lim.max_url_bytes = 32;
	size_t n;

	/* URL: exactly at the limit passes, one more byte is 414 */
	n = build("GET /", 'u', 31, " HTTP/1.1\r\nHost: x\r\n\r\n");
	check_lim(big, n,
		  "REQ GET /uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu path=/uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu "
		  "query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n",
		  &lim);
	n = build("GET /", 'u', 32, " HTTP/1.1\r\nHost: x\r\n\r\n");
	check_lim(big, n, "ERR 414 TS_ELIMIT\n", &lim);
	/* 414 wins even when the long target also contains a bad byte further on */
	n = build("GET /", 'u', 40, "\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
	check_lim(big, n, "ERR 414 TS_ELIMIT\n", &lim);

	/* header count */
	check_lim("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n",
		  sizeof("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n") - 1,
		  "REQ GET / path=/ query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [A=1] [B=2] body=0:\n",
		  &lim);
	check_lim("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
		  sizeof("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n") - 1,
		  "ERR 431 TS_ELIMIT\n", &lim);

	/* head bytes: 256 in total passes, 257 is 431 */
	n = build("GET / HTTP/1.1\r\nHost: x\r\nA: ", 'a', 256 - 28 - 4, "\r\n\r\n");
	assert_int_equal(n, 256);
	struct tx t;
	run(&t, big, n, NULL, 0, &lim);
	assert_memory_equal(t.s, "REQ GET", 7);
	n = build("GET / HTTP/1.1\r\nHost: x\r\nA: ", 'a', 256 - 28 - 3, "\r\n\r\n");
	check_lim(big, n, "ERR 431 TS_ELIMIT\n", &lim);

	/* body: Content-Length checked before any body byte */
	check_lim("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
		  sizeof("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789") - 1,
		  "REQ POST / path=/ query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [Content-Length=10] "
		  "body=10:0123456789\n",
		  &lim);
	check_lim("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n",
		  sizeof("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n") - 1,
		  "ERR 413 TS_ELIMIT\n", &lim);
	/* chunked: cumulative, at the chunk header */
	check_lim("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
		  sizeof("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n") -
			  1,
		  "REQ POST / path=/ query= v=1.1 ka=1 exp=0 ch=1 [Host=x] "
		  "[Transfer-Encoding=chunked] body=10:0123456789\n",
		  &lim);
	check_lim("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "5\r\n01234\r\n6\r\n",
		  sizeof("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "5\r\n01234\r\n6\r\n") -
			  1,
		  "ERR 413 TS_ELIMIT\n", &lim);
	/* trailers obey the header limits too */
	check_lim("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
		  sizeof("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n") -
			  1,
		  "ERR 431 TS_ELIMIT\n", &lim);
}

static void test_default_limits(void **state)
{
	(void)state;
	size_t n;
	/* 16 KiB target passes, one more is 414 */
	n = build("GET /", 'u', 16 * 1024 - 1, " HTTP/1.1\r\nHost: x\r\n\r\n");
	struct tx t;
	run(&t, big, n, NULL, 0, NULL);
	assert_memory_equal(t.s, "REQ GET", 7);
	n = build("GET /", 'u', 16 * 1024, " HTTP/1.1\r\nHost: x\r\n\r\n");
	check_lim(big, n, "ERR 414 TS_ELIMIT\n", NULL);
	/* 64 KiB head */
	n = build("GET / HTTP/1.1\r\nHost: x\r\nA: ", 'a', 70000, "\r\n\r\n");
	check_lim(big, n, "ERR 431 TS_ELIMIT\n", NULL);
	/* 101 headers */
	size_t len = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 100; i++)
		len += (size_t)sprintf(big + len, "H%d: v\r\n", i);
	len += (size_t)sprintf(big + len, "\r\n");
	check_lim(big, len, "ERR 431 TS_ELIMIT\n", NULL);
	/* 32 MiB body */
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 33554433\r\n\r\n",
	      "ERR 413 TS_ELIMIT\n");
}

/* ---- smuggling and malformed -------------------------------------------------- */

static void test_smuggling(void **state)
{
	(void)state;
	/* CL + TE, both orders */
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
	      "\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
	      "\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n"
	      "\r\nabcd",
	      "ERR 400 TS_ECORRUPT\n");
	/* duplicate Content-Length, different or identical */
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	/* Transfer-Encoding other than exactly chunked */
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
	      "ERR 501 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	      "ERR 501 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	      "ERR 501 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
	      "ERR 501 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	/* obs-fold and whitespace tricks */
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\n Host: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
	      "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX-A\"B: 1\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	/* CR must be followed by LF everywhere in the head */
	check("GET / HTTP/1.1\r\nHost: x\r\n\rX", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\rHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: x\r\nX:\r \r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	/* chunk lines */
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "3;a\nb\r\nabc\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\rXabc\r\n0\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\rX",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	check("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "ffffffffffffffffff\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	/* Host rules */
	check("GET / HTTP/1.1\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	/* after an error nothing else is parsed, even a valid pipelined request */
	check("GET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	      "ERR 400 TS_ECORRUPT\n");
	/* a request before the bad one is still delivered */
	check("GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n",
	      "REQ GET /ok path=/ok query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n"
	      "ERR 400 TS_ECORRUPT\n");
}

static void test_method_version(void **state)
{
	(void)state;
	check("FOO / HTTP/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("get / HTTP/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "ERR 505 TS_ECORRUPT\n");
	check("GET / HTTP/0.9\r\n\r\n", "ERR 505 TS_ECORRUPT\n");
	check("GET / HTTP/1.10\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / HTTX/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET / ICE/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET /\r\n\r\n", "ERR 505 TS_ECORRUPT\n");
	check("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", "ERR 501 TS_ECORRUPT\n");
	check("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
	check("GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", "ERR 400 TS_ECORRUPT\n");
}

static void test_bare_lf(void **state)
{
	(void)state;
	/* http-parser accepts LF alone as a line end in the head; so do we, consistently */
	check("GET /lf HTTP/1.1\nHost: x\n\n",
	      "REQ GET /lf path=/lf query= v=1.1 ka=1 exp=0 ch=0 [Host=x] body=0:\n");
	check("POST /lf HTTP/1.1\nHost: x\nContent-Length: 2\n\nabGET /2 HTTP/1.1\r\nHost: y\r\n\r\n",
	      "REQ POST /lf path=/lf query= v=1.1 ka=1 exp=0 ch=0 [Host=x] [Content-Length=2] "
	      "body=2:ab\n"
	      "REQ GET /2 path=/2 query= v=1.1 ka=1 exp=0 ch=0 [Host=y] body=0:\n");
	/* but bare LF in header continuation position is still obs-fold */
	check("GET / HTTP/1.1\nHost: x\n y\n\n", "ERR 400 TS_ECORRUPT\n");
}

static void test_header_lookup(void **state)
{
	(void)state;
	static const char in[] =
		"GET / HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: t1\r\nx-scope-orgid: t2\r\n\r\n";
	struct ts_http_conn *c;
	struct ts_http_request r;
	size_t used, len;
	ts_http_request_init(&r);
	assert_int_equal(ts_http_conn_new(&c, NULL), 0);
	assert_int_equal(ts_http_conn_phase(c), TS_HTTP_PHASE_IDLE);
	assert_int_equal(ts_http_feed(c, in, 5, &used, &r), TS_HTTP_NEED_MORE);
	assert_int_equal(ts_http_conn_phase(c), TS_HTTP_PHASE_HEAD);
	assert_int_equal(ts_http_feed(c, in + 5, sizeof(in) - 6, &used, &r), TS_HTTP_REQUEST);
	assert_int_equal(ts_http_conn_phase(c), TS_HTTP_PHASE_IDLE);
	assert_string_equal(ts_http_request_header(&r, "X-SCOPE-ORGID", &len), "t1");
	assert_int_equal(len, 2);
	assert_null(ts_http_request_header(&r, "x-scope", NULL));
	ts_http_request_fini(&r);
	ts_http_request_fini(&r); /* fini is idempotent */
	ts_http_conn_free(c);
	ts_http_conn_free(NULL);
}

/* Every allocation of a chunked pipelined exchange fails in turn: the conn reports
 * -ENOMEM with status 500 and leaks nothing (ASan), or the result is unchanged. */
static void test_alloc_failure(void **state)
{
	(void)state;
	static const char in[] =
		"POST /a?q=1 HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
		"G: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\nK: 11\r\nL: 12\r\nM: 13\r\nN: 14\r\nO: 15\r\nP: 16\r\n"
		"Q: 17\r\nTransfer-Encoding: chunked\r\n\r\n"
		"1000\r\n" /* 4096 bytes follow */;
	static char buf[sizeof(in) + 4096 + 64];
	size_t len = sizeof(in) - 1;
	memcpy(buf, in, len);
	memset(buf + len, 'z', 4096);
	len += 4096;
	memcpy(buf + len,
	       "\r\n3\r\nabc\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nHost: y\r\nContent-Length: 1\r\n\r\n!",
	       64);
	len += strlen(buf + len);
	struct tx good, t;
	run(&good, buf, len, NULL, 0, NULL);
	assert_memory_equal(good.s, "REQ POST /a?q=1", 15);
	int failures = 0;
	for (unsigned long n = 1; n < 64; n++) {
		ts_mem_fail_at(n, 0);
		/* the conn itself is allocation 1: run() asserts it succeeds, so skip it */
		if (n == 1) {
			struct ts_http_conn *c;
			assert_int_equal(ts_http_conn_new(&c, NULL), -ENOMEM);
			assert_null(c);
			continue;
		}
		run(&t, buf, len, NULL, 0, NULL);
		int fired = ts_mem_failed();
		ts_mem_fail_at(0, 0);
		if (!fired) {
			assert_string_equal(t.s, good.s);
			break;
		}
		failures++;
		assert_non_null(strstr(t.s, "ERR 500 -ENOMEM"));
	}
	ts_mem_fail_at(0, 0);
	assert_true(failures >= 4);
}

/* ---- responses ---------------------------------------------------------------- */

static void test_write_head(void **state)
{
	(void)state;
	struct ts_http_header hs[] = { { "Content-Type", "text/plain", 12, 10 } };
	struct ts_http_response_head h = { .status = 200,
					   .headers = hs,
					   .n_headers = 1,
					   .content_length = 5,
					   .keep_alive = 1,
					   .date_s = 784111777 };
	char buf[512];
	size_t len;
	static const char want[] = "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
				   "Content-Length: 5\r\nConnection: keep-alive\r\n"
				   "Content-Type: text/plain\r\n\r\n";
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(buf, want, len);
	assert_int_equal(ts_http_write_head(&h, NULL, 0, &len), TS_EFULL);
	assert_int_equal(len, sizeof(want) - 1);
	assert_int_equal(ts_http_write_head(&h, buf, len - 1, &len), TS_EFULL);

	h.chunked = 1;
	h.keep_alive = 0;
	h.status = 413;
	h.n_headers = 0;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), 0);
	buf[len] = '\0';
	assert_string_equal(buf, "HTTP/1.1 413 Content Too Large\r\nDate: Sun, 06 Nov 1994 "
				 "08:49:37 GMT\r\nTransfer-Encoding: chunked\r\nConnection: close"
				 "\r\n\r\n");
	h.chunked = 0;
	h.close_delimited = 1;
	h.keep_alive = 1;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), 0);
	buf[len] = '\0';
	assert_null(strstr(buf, "Content-Length"));
	assert_non_null(strstr(buf, "Connection: close"));

	struct ts_http_header bad[] = { { "X", "a\r\nInjected: 1", 1, 15 } };
	h.headers = bad;
	h.n_headers = 1;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), TS_EINVALID);
	struct ts_http_header bad2[] = { { "Content-Length", "1", 14, 1 } };
	h.headers = bad2;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), TS_EINVALID);
	struct ts_http_header bad3[] = { { "Bad Name", "1", 8, 1 } };
	h.headers = bad3;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), TS_EINVALID);
	h.n_headers = 0;
	h.status = 99;
	assert_int_equal(ts_http_write_head(&h, buf, sizeof(buf), &len), TS_EINVALID);

	assert_int_equal(ts_http_chunk_prefix(buf, 0x1a2b), 6);
	assert_memory_equal(buf, "1a2b\r\n", 6);
	assert_string_equal(ts_http_reason(404), "Not Found");
	assert_string_equal(ts_http_reason(299), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_query),	cmocka_unit_test(test_post_content_length),
		cmocka_unit_test(test_chunked),		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_expect_continue), cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_limits),		cmocka_unit_test(test_default_limits),
		cmocka_unit_test(test_smuggling),	cmocka_unit_test(test_method_version),
		cmocka_unit_test(test_bare_lf),		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_alloc_failure),	cmocka_unit_test(test_write_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
