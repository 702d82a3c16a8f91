/*
 * benchsend - replays pre-encoded HTTP request bodies against a server over keep-alive
 * connections and reports throughput and request latency. The load half of
 * tools/bench/ (the side-by-side benchmark against other time-series databases).
 *
 * Usage: benchsend --bodies FILE --target HOST:PORT --path PATH [--header "K: V"]...
 *                  [--conns N] [--max-seconds S] [--max-requests N] [--sink]
 *
 * The bodies file (written by tools/bench/gen.py), all integers little-endian:
 *
 *   offset  size  field
 *   0       8     magic "TSBENCH1"
 *   8       4     n_bodies
 *   12      4     n_shards
 *   16      ...   n_bodies records:  u32 shard | u32 n_samples | u32 len | len bytes
 *
 * Ordering rule: a shard holds a disjoint set of series and its bodies are in time order.
 * Connection i sends the bodies of shards s with s % conns == i, one request at a time, in
 * file order, so every series reaches the server in time order (as Prometheus' sharded
 * remote-write queue does). conns should divide n_shards evenly for balanced load.
 *
 * Bounded: stops after --max-seconds (default 600) or --max-requests (default all).
 * 503/429 and connection failures are retried up to 5 times with 100 ms back-off; any
 * other non-2xx answer counts as failed and the first one's body is reported.
 *
 * --sink runs an in-process HTTP server that reads each request and answers 204 at once,
 * and sends to it instead of --target: the sender's own ceiling in samples/s, to check
 * that the sender is not the bottleneck of a real measurement.
 *
 * Output: one JSON object on stdout (requests, ok, failed, retries, samples,
 * samples_ok, seconds, samples_per_s, lat_p50_ms, lat_p99_ms, lat_max_ms,
 * sender_cpu_s, truncated, first_error). Exit 0 if every request succeeded, 1 if some
 * failed, 2 on bad usage or I/O errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "storage/mem.h"

#define MAX_HEADERS 16
#define MAX_CONNS 256
#define MAX_RETRIES 5
#define RESP_CAP 65536

struct body {
	uint32_t shard, n_samples, len;
	const uint8_t *data;
};

struct opts {
	const char *bodies_path, *target, *path;
	const char *headers[MAX_HEADERS];
	int n_headers;
	unsigned conns;
	double max_seconds;
	uint64_t max_requests;
	int sink;
};

struct shared {
	const struct opts *o;
	struct body *bodies;
	uint32_t n_bodies;
	struct sockaddr_in addr;
	double t0;
	atomic_uint_fast64_t n_started;
	atomic_int stop;
	pthread_mutex_t err_mu;
	char first_error[512];
};

struct worker {
	struct shared *sh;
	unsigned idx;
	pthread_t th;
	double *lat_ms;
	uint64_t n_lat, n_ok, n_failed, n_retries, samples, samples_ok;
	int truncated;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int dial(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one HTTP/1.1 response; returns the status (0 on a broken connection) and sets
 * *close_after when the server will close. The body is kept in buf for error reports. */
static int read_response(int fd, char *buf, size_t cap, size_t *body_len, int *close_after)
{
	size_t have = 0;
	char *eoh = NULL;
	while (!eoh) {
		if (have + 1 >= cap)
			return 0;
		ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		have += (size_t)n;
		buf[have] = 0;
		eoh = strstr(buf, "\r\n\r\n");
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	size_t head_len = (size_t)(eoh - buf) + 4;
	long long clen = -1;
	int chunked = 0;
	*close_after = 0;
	for (char *line = strstr(buf, "\r\n") + 2; line < eoh; line = strstr(line, "\r\n") + 2) {
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtoll(line + 15, NULL, 10);
		else if (!strncasecmp(line, "Transfer-Encoding:", 18) && strstr(line, "chunked") &&
			 strstr(line, "chunked") < strstr(line, "\r\n"))
			chunked = 1;
		else if (!strncasecmp(line, "Connection:", 11) &&
			 strncasecmp(line + 11, " close", 6) == 0)
			*close_after = 1;
	}
	if (status == 204 || status == 304 || (status >= 100 && status < 200))
		clen = 0;
	if (chunked) {
		/* Error bodies only: read until the terminating chunk, keep what fits. */
		while (!strstr(buf + head_len, "\r\n0\r\n\r\n") &&
		       !(have - head_len >= 5 && !memcmp(buf + head_len, "0\r\n\r\n", 5))) {
			if (have + 1 >= cap) {
				*close_after = 1;
				break;
			}
			ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
			if (n <= 0)
				return 0;
			have += (size_t)n;
			buf[have] = 0;
		}
	} else if (clen < 0) {
		*close_after = 1;
	} else {
		size_t want = head_len + (size_t)clen;
		char sink[4096];
		while (have < want) {
			ssize_t n;
			if (have + 1 < cap)
				n = recv(fd, buf + have, cap - 1 - have, 0);
			else
				n = recv(fd, sink,
					 want - have < sizeof sink ? want - have : sizeof sink, 0);
			if (n <= 0)
				return 0;
			if (have + 1 < cap)
				buf[have + (size_t)n] = 0;
			have += (size_t)n;
		}
	}
	*body_len = have > head_len ? have - head_len : 0;
	memmove(buf, buf + head_len, *body_len < cap ? *body_len : cap - 1);
	buf[*body_len < cap ? *body_len : cap - 1] = 0;
	return status;
}

static void note_error(struct shared *sh, int status, const char *body)
{
	pthread_mutex_lock(&sh->err_mu);
	if (!sh->first_error[0]) {
		snprintf(sh->first_error, sizeof sh->first_error, "HTTP %d: %.300s", status, body);
		for (char *p = sh->first_error; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = ' ';
	}
	pthread_mutex_unlock(&sh->err_mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	const struct opts *o = sh->o;
	char head[2048], *resp = ts_malloc(RESP_CAP);
	int fd = -1;
	if (!resp)
		return NULL;
	for (uint32_t i = 0; i < sh->n_bodies; i++) {
		const struct body *b = &sh->bodies[i];
		if (b->shard % o->conns != w->idx)
			continue;
		if (atomic_load(&sh->stop) || now_s() - sh->t0 > o->max_seconds ||
		    atomic_fetch_add(&sh->n_started, 1) >= o->max_requests) {
			atomic_store(&sh->stop, 1);
			w->truncated = 1;
			break;
		}
		int hl = snprintf(head, sizeof head,
				  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: benchsend\r\n"
				  "Content-Length: %u\r\n",
				  o->path, o->target, b->len);
		for (int h = 0; h < o->n_headers && hl < (int)sizeof head; h++)
			hl += snprintf(head + hl, sizeof head - (size_t)hl, "%s\r\n",
				       o->headers[h]);
		hl += snprintf(head + hl, sizeof head - (size_t)hl, "\r\n");
		if (hl >= (int)sizeof head) {
			note_error(sh, 0, "request head too long");
			break;
		}
		double t_start = now_s();
		int status = 0, tries = 0;
		size_t blen = 0;
		for (;;) {
			int close_after = 0;
			if (fd < 0)
				fd = dial(&sh->addr);
			if (fd >= 0 && write_all(fd, head, (size_t)hl) == 0 &&
			    write_all(fd, b->data, b->len) == 0)
				status = read_response(fd, resp, RESP_CAP, &blen, &close_after);
			else
				status = 0;
			if (status == 0 || close_after) {
				if (fd >= 0)
					close(fd);
				fd = -1;
			}
			if ((status == 0 || status == 503 || status == 429) &&
			    tries < MAX_RETRIES) {
				tries++;
				w->n_retries++;
				usleep(100000);
				continue;
			}
			break;
		}
		w->lat_ms[w->n_lat++] = (now_s() - t_start) * 1e3;
		w->samples += b->n_samples;
		if (status >= 200 && status < 300) {
			w->n_ok++;
			w->samples_ok += b->n_samples;
		} else {
			w->n_failed++;
			note_error(sh, status, status ? resp : "connection failed");
		}
	}
	if (fd >= 0)
		close(fd);
	ts_free(resp);
	return NULL;
}

/* The --sink server: one thread per connection, answers 204 to every request. */
static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = ts_malloc(1 << 20);
	size_t have = 0;
	static const char ok[] = "HTTP/1.1 204 No Content\r\n\r\n";
	while (buf) {
		char *eoh;
		buf[have] = 0;
		while (!(eoh = strstr(buf, "\r\n\r\n"))) {
			if (have + 1 >= (1u << 20))
				goto out;
			ssize_t n = recv(fd, buf + have, (1u << 20) - 1 - have, 0);
			if (n <= 0)
				goto out;
			have += (size_t)n;
			buf[have] = 0;
		}
		size_t head_len = (size_t)(eoh - buf) + 4;
		const char *cl = strcasestr(buf, "Content-Length:");
		size_t clen = cl && cl < eoh ? (size_t)strtoull(cl + 15, NULL, 10) : 0;
		size_t want = head_len + clen;
		while (have < want) {
			size_t room = (1u << 20) - 1 - have;
			if (room == 0) {
				/* Body larger than the buffer: drop what we have read so far. */
				want -= have;
				have = 0;
				continue;
			}
			ssize_t n = recv(fd, buf + have, room, 0);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		if (write_all(fd, ok, sizeof ok - 1))
			goto out;
		memmove(buf, buf + want, have - want);
		have -= want;
	}
out:
	ts_free(buf);
	close(fd);
	return NULL;
}

static void *sink_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		pthread_t th;
		if (pthread_create(&th, NULL, sink_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
}

static int start_sink(struct sockaddr_in *addr)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return -1;
	memset(addr, 0, sizeof *addr);
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof *addr;
	if (bind(lfd, (struct sockaddr *)addr, sizeof *addr) || listen(lfd, 256) ||
	    getsockname(lfd, (struct sockaddr *)addr, &alen)) {
		close(lfd);
		return -1;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, sink_accept, (void *)(intptr_t)lfd)) {
		close(lfd);
		return -1;
	}
	pthread_detach(th);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Loads the whole file and indexes its records; *data is owned (ts_free). */
static int load_bodies(const char *path, uint8_t **data, struct body **bodies, uint32_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "benchsend: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = -1;
	uint8_t *buf = NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (size < 16 || !(buf = ts_malloc((size_t)size)) ||
	    fread(buf, 1, (size_t)size, f) != (size_t)size || memcmp(buf, "TSBENCH1", 8)) {
		fprintf(stderr, "benchsend: %s is not a bodies file\n", path);
		goto out;
	}
	uint32_t nb = rd32(buf + 8);
	struct body *b = ts_calloc(nb ? nb : 1, sizeof *b);
	if (!b)
		goto out;
	size_t off = 16;
	for (uint32_t i = 0; i < nb; i++) {
		if (off + 12 > (size_t)size || off + 12 + rd32(buf + off + 8) > (size_t)size) {
			fprintf(stderr, "benchsend: %s is truncated at record %u\n", path, i);
			ts_free(b);
			goto out;
		}
		b[i].shard = rd32(buf + off);
		b[i].n_samples = rd32(buf + off + 4);
		b[i].len = rd32(buf + off + 8);
		b[i].data = buf + off + 12;
		off += 12 + (size_t)b[i].len;
	}
	*bodies = b;
	*n = nb;
	*data = buf;
	buf = NULL;
	rc = 0;
out:
	ts_free(buf);
	fclose(f);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t i = (uint64_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static int usage(void)
{
	fputs("Usage: benchsend --bodies FILE --target HOST:PORT --path PATH [--header \"K: V\"]...\n"
	      "                 [--conns N] [--max-seconds S] [--max-requests N] [--sink]\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { .conns = 4,
			  .max_seconds = 600,
			  .max_requests = UINT64_MAX,
			  .path = "/api/v1/write",
			  .target = "127.0.0.1:9201" };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--sink")) {
			o.sink = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(a, "--bodies"))
			o.bodies_path = v;
		else if (!strcmp(a, "--target"))
			o.target = v;
		else if (!strcmp(a, "--path"))
			o.path = v;
		else if (!strcmp(a, "--header") && o.n_headers < MAX_HEADERS)
			o.headers[o.n_headers++] = v;
		else if (!strcmp(a, "--conns"))
			o.conns = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--max-seconds"))
			o.max_seconds = strtod(v, NULL);
		else if (!strcmp(a, "--max-requests"))
			o.max_requests = strtoull(v, NULL, 10);
		else
			return usage();
	}
	if (!o.bodies_path || o.conns == 0 || o.conns > MAX_CONNS || o.max_seconds <= 0)
		return usage();
	signal(SIGPIPE, SIG_IGN);

	static struct shared sh;
	sh.o = &o;
	pthread_mutex_init(&sh.err_mu, NULL);
	uint8_t *data = NULL;
	if (load_bodies(o.bodies_path, &data, &sh.bodies, &sh.n_bodies))
		return 2;
	if (o.sink) {
		if (start_sink(&sh.addr)) {
			fprintf(stderr, "benchsend: cannot start the sink: %s\n", strerror(errno));
			return 2;
		}
	} else {
		char host[64];
		const char *colon = strrchr(o.target, ':');
		if (!colon || (size_t)(colon - o.target) >= sizeof host)
			return usage();
		memcpy(host, o.target, (size_t)(colon - o.target));
		host[colon - o.target] = 0;
		sh.addr.sin_family = AF_INET;
		sh.addr.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sh.addr.sin_addr) != 1) {
			fprintf(stderr, "benchsend: --target must be an IPv4 address and port\n");
			return 2;
		}
	}

	struct worker *w = ts_calloc(o.conns, sizeof *w);
	if (!w)
		return 2;
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	sh.t0 = now_s();
	unsigned started = 0;
	for (unsigned i = 0; i < o.conns; i++) {
		w[i].sh = &sh;
		w[i].idx = i;
		w[i].lat_ms = ts_calloc(sh.n_bodies ? sh.n_bodies : 1, sizeof(double));
		if (!w[i].lat_ms || pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			break;
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	double secs = now_s() - sh.t0;
	getrusage(RUSAGE_SELF, &ru1);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
		     (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		     (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

	uint64_t n_lat = 0, ok = 0, failed = 0, retries = 0, samples = 0, samples_ok = 0;
	int truncated = started < o.conns;
	for (unsigned i = 0; i < started; i++) {
		n_lat += w[i].n_lat;
		ok += w[i].n_ok;
		failed += w[i].n_failed;
		retries += w[i].n_retries;
		samples += w[i].samples;
		samples_ok += w[i].samples_ok;
		truncated |= w[i].truncated;
	}
	double *lat = ts_calloc(n_lat ? n_lat : 1, sizeof(double));
	if (!lat)
		return 2;
	uint64_t k = 0;
	for (unsigned i = 0; i < started; i++) {
		memcpy(lat + k, w[i].lat_ms, w[i].n_lat * sizeof(double));
		k += w[i].n_lat;
	}
	qsort(lat, n_lat, sizeof(double), cmp_double);
	printf("{\"requests\": %" PRIu64 ", \"ok\": %" PRIu64 ", \"failed\": %" PRIu64
	       ", \"retries\": %" PRIu64 ", \"samples\": %" PRIu64 ", \"samples_ok\": %" PRIu64
	       ", \"seconds\": %.6f, \"samples_per_s\": %.1f, \"lat_p50_ms\": %.3f"
	       ", \"lat_p99_ms\": %.3f, \"lat_max_ms\": %.3f, \"sender_cpu_s\": %.3f"
	       ", \"conns\": %u, \"truncated\": %s, \"first_error\": \"%s\"}\n",
	       n_lat, ok, failed, retries, samples, samples_ok, secs,
	       secs > 0 ? (double)samples_ok / secs : 0.0, pct(lat, n_lat, 0.5),
	       pct(lat, n_lat, 0.99), n_lat ? lat[n_lat - 1] : 0.0, cpu, o.conns,
	       truncated ? "true" : "false", sh.first_error);
	for (unsigned i = 0; i < o.conns; i++)
		ts_free(w[i].lat_ms);
	ts_free(w);
	ts_free(lat);
	ts_free(sh.bodies);
	ts_free(data);
	return failed ? 1 : 0;
}
