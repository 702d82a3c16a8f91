/*
 * http.h - HTTP/1.1 request framing for one connection, and response serialisation.
 *
 * Pure code: no libuv, no sockets, no clock (the caller passes the time), so it can be
 * unit-tested at every split point and fuzzed. http-parser does the tokenising; its
 * types never leave http.c.
 *
 * A struct ts_http_conn is fed the bytes of one connection in arrival order, in pieces
 * of any size. It yields complete requests one at a time, in order (pipelining): each
 * ts_http_feed() stops right after the first event and says how many bytes it consumed;
 * the caller feeds the rest again. Whatever the split of the byte stream, the sequence
 * of events (requests, 100-continue prompts, errors) is the same.
 *
 * Framing policy (what we add on top of http-parser 2.9, see http.c for why):
 * - A framing error is final: the conn answers with ts_http_conn_status() and every
 *   later feed fails the same way; the caller sends that status with
 *   "Connection: close" (when the status is not 0) and closes.
 * - Content-Length together with Transfer-Encoding: 400. Two Content-Length headers:
 *   400 even when identical (http-parser rejects every duplicate; we keep that).
 * - Transfer-Encoding must be exactly one header whose value is "chunked" (case-
 *   insensitive, surrounding blanks ignored): otherwise 501; in an HTTP/1.0 request 400.
 * - obs-fold (a header line starting with SP or HT), blanks before the colon, control
 *   characters and bare LF inside chunk extensions, a blank in the chunk size: 400.
 * - HTTP/1.1 requests need exactly one Host header (400); HTTP/1.0 may have none.
 * - Bare LF as a line end in the head is accepted, as http-parser accepts it.
 * - Unknown methods (http-parser's list) and CONNECT: 400 and 501. Version not 1.x: 505.
 * - Limits, each with its status: head bytes 431, header count 431, request-target
 *   bytes 414, transfer body bytes 413 (from Content-Length before any body byte is
 *   read; cumulative over chunk sizes, checked at each chunk header). Trailers are
 *   parsed under the same head limits and then dropped.
 * - Expect: 100-continue on HTTP/1.1 with a body to come yields TS_HTTP_CONTINUE once
 *   the head is accepted; any other Expect value is 417 (final).
 */
#ifndef TS_SERVER_HTTP_H
#define TS_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct ts_http_limits {
	size_t max_header_bytes; /* request line + headers (and, separately, trailers); 64 KiB */
	size_t max_headers;	 /* header lines; 100 */
	uint64_t max_body_bytes; /* transfer body (chunk data, not framing); 32 MiB */
	size_t max_url_bytes;	 /* request-target; 16 KiB */
};

#define TS_HTTP_DEFAULT_MAX_HEADER_BYTES (64u * 1024)
#define TS_HTTP_DEFAULT_MAX_HEADERS 100u
#define TS_HTTP_DEFAULT_MAX_BODY_BYTES (32u * 1024 * 1024)
#define TS_HTTP_DEFAULT_MAX_URL_BYTES (16u * 1024)
/* http-parser's own compiled-in head limit; max_header_bytes is clamped below it. */
#define TS_HTTP_MAX_HEADER_BYTES_CAP (80u * 1024 - 1)

/* Fills *l with the defaults above. */
void ts_http_limits_default(struct ts_http_limits *l);

struct ts_http_header {
	const char *name;  /* as sent (case kept), NUL-terminated */
	const char *value; /* surrounding blanks removed, NUL-terminated */
	size_t name_len;
	size_t value_len;
};

/*
 * One complete request. Caller-owned struct: ts_http_request_init() it, pass it to
 * ts_http_feed(), and ts_http_request_fini() it when done (also to reuse it). Every
 * pointer below points into storage the struct owns; all strings are NUL-terminated.
 */
struct ts_http_request {
	const char *method; /* static string ("GET", "POST", ...) */
	const char *target; /* raw request-target as sent */
	const char *path;   /* target up to '?' or '#', not percent-decoded; "*" for OPTIONS * */
	const char *query;  /* raw query without '?', "" when absent */
	size_t target_len, path_len, query_len;
	struct ts_http_header *headers; /* in arrival order */
	size_t n_headers;
	char *body; /* de-chunked body + a NUL not counted in body_len; NULL if empty */
	size_t body_len;
	int http_minor;	     /* 0 or 1 (major is always 1) */
	int keep_alive;	     /* 1 when the connection may carry another request */
	int expect_continue; /* client sent Expect: 100-continue */
	int chunked;	     /* the body came chunked */
	/* private */
	char *ts__store;
	size_t ts__store_len, ts__store_cap, ts__body_cap, ts__slots_cap;
};

/* Zeroes req (no allocation). Cannot fail. */
void ts_http_request_init(struct ts_http_request *req);
/* Frees what the request owns and re-initialises it. Accepts an initialised empty one. */
void ts_http_request_fini(struct ts_http_request *req);
/* First header whose name equals `name` ignoring ASCII case; NULL if none. The result is
 * borrowed from req. *value_len (may be NULL) gets its length. */
const char *ts_http_request_header(const struct ts_http_request *req, const char *name,
				   size_t *value_len);

struct ts_http_conn; /* opaque */

/* Events returned by ts_http_feed() (errors are negative). */
#define TS_HTTP_NEED_MORE 0 /* every byte consumed; feed more when it arrives */
#define TS_HTTP_REQUEST 1   /* a complete request was moved into *out */
#define TS_HTTP_CONTINUE 2  /* head accepted, body announced, client expects "100 Continue" */

/* Phases (ts_http_conn_phase) for the caller's timeouts. */
#define TS_HTTP_PHASE_IDLE 0 /* no byte of the next request yet */
#define TS_HTTP_PHASE_HEAD 1 /* inside a request line / headers */
#define TS_HTTP_PHASE_BODY 2 /* inside a body, chunk framing or trailers */
#define TS_HTTP_PHASE_DONE 3 /* closed after an error or a final (non keep-alive) request */

/* Allocates a conn. `limits` is copied (NULL = defaults). Returns 0, -ENOMEM. */
int ts_http_conn_new(struct ts_http_conn **out, const struct ts_http_limits *limits);
/* Frees c and the request it was parsing. Accepts NULL. */
void ts_http_conn_free(struct ts_http_conn *c);

/*
 * Feeds up to `len` bytes. Stops after the first event; *consumed (always set) tells how
 * many bytes were used, the caller re-feeds the rest (buf + *consumed).
 * `out` must be an initialised request; on TS_HTTP_REQUEST its previous content is
 * released and replaced by the new request (ownership of the storage moves to it).
 * Returns TS_HTTP_NEED_MORE, TS_HTTP_REQUEST, TS_HTTP_CONTINUE, or an error, after which
 * the conn is dead (same error on every later call):
 *   TS_ECORRUPT  malformed or smuggling-shaped framing (status 400, 501 or 505)
 *   TS_ELIMIT    a limit was exceeded (status 413, 414 or 431) or Expect unsupported (417)
 *   -ENOMEM      allocation failed (status 500)
 *   TS_ECLOSED   bytes after a request that ended the connection (status 0: send nothing)
 */
int ts_http_feed(struct ts_http_conn *c, const char *buf, size_t len, size_t *consumed,
		 struct ts_http_request *out);
/* Status code to answer after a failed feed; 0 when nothing should be sent. */
int ts_http_conn_status(const struct ts_http_conn *c);
/* One of TS_HTTP_PHASE_*. */
int ts_http_conn_phase(const struct ts_http_conn *c);
/* Announced transfer body bytes of the request being read (Content-Length), or 0. */
uint64_t ts_http_conn_content_length(const struct ts_http_conn *c);

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise); a
 * static string. */
const char *ts_http_reason(int status);

/* Response head. Content-Length, Date and Connection are always written by us (and
 * Transfer-Encoding when chunked): `headers` must not contain them. */
struct ts_http_response_head {
	int status;			      /* 100 ... 599 */
	const struct ts_http_header *headers; /* extra headers, borrowed */
	size_t n_headers;
	uint64_t content_length; /* ignored when chunked or close_delimited */
	int chunked;		 /* Transfer-Encoding: chunked, no Content-Length */
	int close_delimited;	 /* HTTP/1.0 streaming: neither, body ends at close */
	int keep_alive;		 /* Connection: keep-alive, else close */
	int64_t date_s;		 /* Unix seconds for the Date header */
};

/*
 * Serialises the head into buf[0..cap). *len_out (always set) is the full length needed.
 * Returns 0, TS_EFULL when cap is too small (nothing usable written), TS_EINVALID for a
 * bad status, a header name that is not a token, a value with CR/LF/NUL/controls, or a
 * reserved header. Pass cap 0 to size a buffer.
 */
int ts_http_write_head(const struct ts_http_response_head *h, char *buf, size_t cap,
		       size_t *len_out);
/* Chunk framing for streaming responses. ts_http_chunk_prefix writes "<hex>\r\n" (at
 * most TS_HTTP_CHUNK_PREFIX_MAX bytes) and returns its length; a chunk is prefix, data,
 * TS_HTTP_CHUNK_SUFFIX; the body ends with TS_HTTP_CHUNK_LAST. Never write a 0 prefix
 * for data: an empty piece would end the body. */
#define TS_HTTP_CHUNK_PREFIX_MAX 18
#define TS_HTTP_CHUNK_SUFFIX "\r\n"
#define TS_HTTP_CHUNK_LAST "0\r\n\r\n"
size_t ts_http_chunk_prefix(char *buf, size_t data_len);

#endif
