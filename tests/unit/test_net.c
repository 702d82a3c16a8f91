/*
 * test_net.c - the libuv server (server/net.c) over loopback with plain sockets.
 *
 * Each test starts a ts_net_server on 127.0.0.1, port 0, in its own thread, with a test
 * router: /echo answers with method, path, query and body; /slow sleeps 200 ms first;
 * /stream sends three pieces. Clients are blocking sockets with a 5 s receive timeout,
 * so a hang fails the test instead of stalling ctest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/net.h"
#include "storage/err.h"
#include "storage/mem.h"

static void echo(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)arg;
	size_t n = strlen(req->method) + req->path_len + req->query_len + req->body_len + 8;
	char *b = ts_malloc(n);
	assert_non_null(b);
	int len = snprintf(b, n, "%s %s?%s|", req->method, req->path, req->query);
	memcpy(b + len, req->body ? req->body : "", req->body_len);
	assert_int_equal(ts_net_response_header(resp, "Content-Type", "text/plain"), 0);
	assert_int_equal(ts_net_response_header(resp, "Bad\r\n", "x"), TS_EINVALID);
	ts_net_respond(resp, 200, b, (size_t)len + req->body_len);
}

static void slow(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	ts_net_respond_text(resp, 200, "text/plain", "slow");
}

static void stream(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	assert_int_equal(ts_net_stream_begin(resp, 200), 0);
	for (int i = 0; i < 20; i++) {
		char *p = ts_malloc(16);
		assert_non_null(p);
		int n = snprintf(p, 16, "piece%02d;", i);
		assert_int_equal(ts_net_stream_write(resp, p, (size_t)n), 0);
	}
	ts_net_stream_end(resp);
}

/* /big?N answers N bytes of a pattern that encodes each byte's offset. */
static char big_byte(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

static void big(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)arg;
	size_t n = strtoul(req->query, NULL, 10);
	char *b = ts_malloc(n ? n : 1);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = big_byte(i);
	ts_net_respond(resp, 200, b, n);
}

struct srv {
	struct ts_net_server *s;
	pthread_t th;
	int port;
};

static void *run_thread(void *arg)
{
	struct srv *v = arg;
	ts_net_run(v->s);
	return NULL;
}

static void start(struct srv *v, struct ts_net_config *cfg)
{
	cfg->listen = "127.0.0.1:0";
	assert_int_equal(ts_net_open(&v->s, cfg), 0);
	assert_int_equal(ts_net_route(v->s, NULL, "/echo", TS_NET_PREFIX, echo, NULL, "echo"), 0);
	assert_int_equal(ts_net_route(v->s, "GET", "/slow", 0, slow, NULL, "slow"), 0);
	assert_int_equal(ts_net_route(v->s, "GET", "/stream", 0, stream, NULL, NULL), 0);
	assert_int_equal(ts_net_route(v->s, "GET", "/big", 0, big, NULL, NULL), 0);
	v->port = ts_net_port(v->s);
	assert_true(v->port > 0);
	assert_int_equal(pthread_create(&v->th, NULL, run_thread, v), 0);
}

static void stop(struct srv *v)
{
	ts_net_request_shutdown(v->s);
	assert_int_equal(pthread_join(v->th, NULL), 0);
	ts_net_close(v->s);
}

static struct ts_net_config cfg_default(void)
{
	struct ts_net_config cfg;
	ts_net_config_default(&cfg);
	cfg.n_workers = 2;
	return cfg;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one response (Content-Length or chunked) into buf and NUL-terminates it.
 * Returns its length, 0 at a clean EOF before any byte. Reads no further than the
 * response's end, so pipelined responses are read one by one. */
static int head_request; /* the next response answers a HEAD: no body follows */

static size_t read_response(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	while (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
		assert_true(len + 1 < cap);
		ssize_t n = recv(fd, buf + len, 1, 0);
		if (n == 0 && len == 0)
			return 0;
		assert_true(n == 1);
		len++;
	}
	buf[len] = '\0';
	const char *cl = strstr(buf, "Content-Length: ");
	if (cl) {
		size_t want = strtoul(cl + 16, NULL, 10);
		if (head_request)
			want = 0;
		head_request = 0;
		while (want > 0) {
			ssize_t n = recv(fd, buf + len, want, 0);
			assert_true(n > 0);
			len += (size_t)n;
			want -= (size_t)n;
		}
	} else if (strstr(buf, "Transfer-Encoding: chunked")) {
		while (len < 5 || memcmp(buf + len - 5, "0\r\n\r\n", 5) != 0) {
			assert_true(len + 1 < cap);
			ssize_t n = recv(fd, buf + len, 1, 0);
			assert_true(n == 1);
			len++;
		}
	}
	buf[len] = '\0';
	return len;
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");
	return p ? p + 4 : "";
}

/* 1 when the peer closed (EOF or reset) within the receive timeout. */
static int closed_by_peer(int fd)
{
	char b[256];
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		if (n < 0)
			return 0;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char rb[65536];

static void test_keep_alive_reuse(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	send_str(fd, "GET /echo/a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(rb, "Connection: keep-alive\r\n"));
	assert_non_null(strstr(rb, "Date: "));
	assert_non_null(strstr(rb, "Content-Type: text/plain\r\n"));
	assert_string_equal(body_of(rb), "GET /echo/a?x=1|");
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "POST /echo?|hello");
	/* HEAD gets the head only */
	send_str(fd, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	head_request = 1;
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "Content-Length: 12\r\n"));
	assert_string_equal(body_of(rb), "");
	/* no route, wrong method */
	send_str(fd, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 404 Not Found\r\n"));
	send_str(fd, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 405 "));
	/* Connection: close is honoured */
	send_str(fd, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "Connection: close\r\n"));
	assert_true(closed_by_peer(fd));
	close(fd);

	struct ts_net_stats st;
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.conns_accepted, 1);
	struct ts_net_route_stats rs;
	assert_int_equal(ts_net_route_count(v.s), 5);
	assert_int_equal(ts_net_route_stats(v.s, 0, &rs), 0);
	assert_string_equal(rs.name, "echo");
	assert_int_equal(rs.by_status[200], 4);
	assert_int_equal(rs.count, 4);
	assert_int_equal(ts_net_route_stats(v.s, 4, &rs), 0);
	assert_int_equal(rs.by_status[404], 1);
	assert_int_equal(rs.by_status[405], 1);
	assert_int_equal(ts_net_route_stats(v.s, 5, &rs), TS_EINVALID);
	stop(&v);
}

static void test_pipelining_order(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	send_str(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
		     "POST /echo/2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3\r\nabc\r\n0\r\n\r\n"
		     "GET /echo/3 HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "slow");
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "POST /echo/2?|abc");
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "GET /echo/3?|");
	close(fd);
	stop(&v);
}

/* Reads a /big?N response whole (head, then exactly N body bytes) and checks it. */
static void read_big(int fd, size_t n)
{
	char head[1024];
	size_t len = 0;
	while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
		assert_true(len + 1 < sizeof head);
		assert_int_equal(recv(fd, head + len, 1, 0), 1);
		len++;
	}
	head[len] = '\0';
	assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
	char want[64];
	snprintf(want, sizeof want, "Content-Length: %zu\r\n", n);
	assert_non_null(strstr(head, want));
	char *body = malloc(n + 1);
	assert_non_null(body);
	size_t got = 0;
	while (got < n) {
		ssize_t k = recv(fd, body + got, n - got, 0);
		assert_true(k > 0);
		got += (size_t)k;
	}
	for (size_t i = 0; i < n; i++)
		if (body[i] != big_byte(i))
			fail_msg("byte %zu of %zu differs", i, n);
	free(body);
}

/* Small answers leave from the worker (exchange.c direct_write), larger ones from the
 * loop. A client that reads late, through a small receive window, makes the worker's
 * send short: the rest must follow from the loop, in order, before the next answer. */
static void test_direct_and_partial_writes(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct srv v;
	start(&v, &cfg);
	static const size_t sizes[] = { 0, 1, 1000, 200000, 262144, 262145, 700000, 5 };
	for (int slow = 0; slow < 2; slow++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		if (slow) {
			int rcv = 4096; /* before connect: the window stays small */
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
		}
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)v.port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		/* one at a time, then all pipelined in one send */
		char req[4096];
		size_t off = 0;
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			char one[128];
			int n = snprintf(one, sizeof one,
					 "GET /big?%zu HTTP/1.1\r\nHost: t\r\n\r\n", sizes[i]);
			send_str(fd, one);
			if (slow) {
				struct timespec ts = { 0, 20 * 1000 *
								  1000 }; /* let the send fill up */
				nanosleep(&ts, NULL);
			}
			read_big(fd, sizes[i]);
			memcpy(req + off, one, (size_t)n);
			off += (size_t)n;
		}
		req[off] = '\0';
		send_str(fd, req);
		if (slow) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
			read_big(fd, sizes[i]);
		if (slow) {
			/* more than the socket buffers hold, unread for a while: sends go short */
			static const char one[] = "GET /big?200003 HTTP/1.1\r\nHost: t\r\n\r\n";
			for (int i = 0; i < 24; i++)
				send_str(fd, one);
			struct timespec ts = { 0, 300 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			for (int i = 0; i < 24; i++)
				read_big(fd, 200003);
		}
		close(fd);
	}
	stop(&v);
}

static void test_streaming(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	send_str(fd,
		 "GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	size_t n = read_response(fd, rb, sizeof(rb));
	assert_true(n > 0);
	assert_non_null(strstr(rb, "Transfer-Encoding: chunked\r\n"));
	assert_null(strstr(rb, "Content-Length"));
	const char *b = body_of(rb);
	assert_memory_equal(b, "8\r\npiece00;\r\n8\r\npiece01;\r\n", 26);
	assert_non_null(strstr(b, "8\r\npiece19;\r\n0\r\n\r\n"));
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "GET /echo?|");
	close(fd);
	/* HTTP/1.0: close-delimited */
	fd = connect_to(v.port);
	send_str(fd, "GET /stream HTTP/1.0\r\n\r\n");
	size_t len = 0;
	for (;;) {
		ssize_t r = recv(fd, rb + len, sizeof(rb) - 1 - len, 0);
		assert_true(r >= 0);
		if (r == 0)
			break;
		len += (size_t)r;
	}
	rb[len] = '\0';
	assert_non_null(strstr(rb, "Connection: close\r\n"));
	assert_null(strstr(rb, "chunked"));
	assert_non_null(strstr(rb, "\r\n\r\npiece00;piece01;"));
	close(fd);
	stop(&v);
}

static void test_slowloris(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	cfg.header_timeout_ms = 300;
	struct srv v;
	start(&v, &cfg);
	int slowfd = connect_to(v.port);
	uint64_t t0 = now_ms();
	static const char req[] =
		"GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
	int served = 0, closed = 0;
	for (size_t i = 0; i < sizeof(req) - 1 && !closed; i++) {
		if (send(slowfd, req + i, 1, MSG_NOSIGNAL) != 1) {
			closed = 1;
			break;
		}
		/* another client is served normally meanwhile */
		if (i == 2) {
			int fd = connect_to(v.port);
			send_str(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
			read_response(fd, rb, sizeof(rb));
			served = strstr(rb, "200 OK") != NULL;
			close(fd);
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (now_ms() - t0 > 2000)
			break;
	}
	assert_true(served);
	/* the slow client got a 408 and a close at about the header timeout */
	size_t n = read_response(slowfd, rb, sizeof(rb));
	assert_true(n > 0);
	assert_non_null(strstr(rb, "HTTP/1.1 408 "));
	assert_true(closed_by_peer(slowfd));
	uint64_t dt = now_ms() - t0;
	assert_true(dt >= 250 && dt < 1500);
	close(slowfd);
	struct ts_net_stats st;
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.timeouts_header, 1);
	/* a connection that sends nothing is closed at the header timeout too */
	int idle = connect_to(v.port);
	t0 = now_ms();
	assert_true(closed_by_peer(idle));
	assert_true(now_ms() - t0 < 1500);
	close(idle);
	stop(&v);
}

static void test_idle_and_body_timeout(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	cfg.idle_timeout_ms = 200;
	cfg.body_timeout_ms = 200;
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	send_str(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	uint64_t t0 = now_ms();
	assert_true(closed_by_peer(fd));
	assert_true(now_ms() - t0 < 1500);
	close(fd);
	fd = connect_to(v.port);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 408 "));
	close(fd);
	struct ts_net_stats st;
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.timeouts_idle, 1);
	assert_int_equal(st.timeouts_body, 1);
	stop(&v);
}

/* At the limit, an idle keep-alive connection (or a silent or slow one) is closed to admit
 * a new client; only when every connection is busy does the newcomer get 503 with
 * Retry-After. */
static void test_max_conns(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	cfg.max_conns = 2;
	struct srv v;
	start(&v, &cfg);
	int a = connect_to(v.port), b = connect_to(v.port);
	send_str(a, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(a, rb, sizeof(rb));
	struct timespec gap = { 0, 20 * 1000 * 1000 };
	nanosleep(&gap, NULL);
	send_str(b, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(b, rb, sizeof(rb));
	/* Both idle: the one idle longest (a) makes room for c. */
	int c = connect_to(v.port);
	send_str(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(c, rb, sizeof(rb));
	assert_non_null(strstr(rb, "200 OK"));
	assert_true(closed_by_peer(a));
	close(a);
	struct ts_net_stats st;
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.conns_shed, 1);
	assert_int_equal(st.conns_rejected, 0);
	/* b and c busy receiving bodies: nothing to shed, so d is refused. */
	send_str(b, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
	send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
	nanosleep(&gap, NULL);
	int d = connect_to(v.port);
	read_response(d, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 503 "));
	assert_non_null(strstr(rb, "Retry-After: 1"));
	assert_true(closed_by_peer(d));
	close(d);
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.conns_rejected, 1);
	assert_int_equal(st.conns_open, 2);
	/* The bodies complete and are answered. */
	send_str(b, "defghij");
	read_response(b, rb, sizeof(rb));
	assert_non_null(strstr(rb, "200 OK"));
	send_str(c, "defghij");
	read_response(c, rb, sizeof(rb));
	assert_non_null(strstr(rb, "200 OK"));
	close(b);
	close(c);
	stop(&v);
}

static void test_body_too_large(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	cfg.limits.max_body_bytes = 1024;
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	/* answered from the head alone: the body is never sent */
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 413 "));
	assert_non_null(strstr(rb, "Connection: close\r\n"));
	assert_true(closed_by_peer(fd));
	close(fd);
	/* malformed framing: 400 and close, the smuggled request is not answered */
	fd = connect_to(v.port);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
		     "chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 400 "));
	assert_true(closed_by_peer(fd));
	assert_null(strstr(rb, "smuggled"));
	close(fd);
	struct ts_net_stats st;
	ts_net_stats_get(v.s, &st);
	assert_int_equal(st.bad_requests, 2);
	stop(&v);
}

static void test_expect_continue(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	cfg.limits.max_body_bytes = 1024;
	struct srv v;
	start(&v, &cfg);
	int fd = connect_to(v.port);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		     "Content-Length: 4\r\n\r\n");
	size_t n = read_response(fd, rb, sizeof(rb));
	assert_int_equal(n, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
	assert_string_equal(rb, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(fd, "data");
	read_response(fd, rb, sizeof(rb));
	assert_string_equal(body_of(rb), "POST /echo?|data");
	/* too large: 413 instead of 100 */
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		     "Content-Length: 4096\r\n\r\n");
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 413 "));
	close(fd);
	stop(&v);
}

static void test_graceful_shutdown(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct srv v;
	start(&v, &cfg);
	int idle = connect_to(v.port);
	int fd = connect_to(v.port);
	send_str(idle, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
	read_response(idle, rb, sizeof(rb));
	send_str(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	uint64_t t0 = now_ms();
	ts_net_request_shutdown(v.s);
	/* the idle keep-alive connection is closed at once */
	assert_true(closed_by_peer(idle));
	/* the in-flight request completes, with Connection: close */
	read_response(fd, rb, sizeof(rb));
	assert_non_null(strstr(rb, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(rb, "Connection: close\r\n"));
	assert_string_equal(body_of(rb), "slow");
	assert_true(closed_by_peer(fd));
	close(fd); /* the server drains until the client closes (or a linger ends) */
	assert_int_equal(pthread_join(v.th, NULL), 0);
	assert_true(now_ms() - t0 < 2000);
	/* no longer listening */
	int s2 = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)v.port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(s2, (struct sockaddr *)&a, sizeof(a)), 0);
	close(s2);
	close(idle);
	ts_net_close(v.s);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct ts_net_config cfg = cfg_default();
	struct ts_net_server *s;
	const char *bad[] = {
		NULL,	   "",		"127.0.0.1",	"127.0.0.1:",	 "127.0.0.1:70000",
		"[::1:80", "nohost:80", "1.2.3.4.5:80", "[127.0.0.1]:80"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.listen = bad[i];
		assert_int_equal(ts_net_open(&s, &cfg), TS_EINVALID);
		assert_null(s);
	}
	/* port in use: -EADDRINUSE from libuv's UV_EADDRINUSE */
	struct srv v;
	start(&v, &cfg);
	char spec[32];
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", v.port);
	cfg.listen = spec;
	assert_int_equal(ts_net_open(&s, &cfg), -EADDRINUSE);
	stop(&v);
	/* IPv6 literal and the any-address form, when the host has IPv6 */
	cfg.listen = "[::1]:0";
	if (ts_net_open(&s, &cfg) == 0) {
		assert_true(ts_net_port(s) > 0);
		ts_net_close(s);
	}
	cfg.listen = ":0";
	assert_int_equal(ts_net_open(&s, &cfg), 0);
	assert_true(ts_net_port(s) > 0);
	assert_int_equal(ts_net_route(s, "GET", "relative", 0, echo, NULL, NULL), TS_EINVALID);
	ts_net_close(s); /* never ran */
	ts_net_close(NULL);
	assert_int_equal(ts_net_err_from_uv(-4095 /* UV_EOF */), TS_ECLOSED);
	assert_int_equal(ts_net_err_from_uv(-ECONNRESET), -ECONNRESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_alive_reuse),
		cmocka_unit_test(test_pipelining_order),
		cmocka_unit_test(test_direct_and_partial_writes),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_idle_and_body_timeout),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_body_too_large),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_graceful_shutdown),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
