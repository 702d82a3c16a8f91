/*
 * http.c - HTTP/1.1 request framing on top of http-parser 2.9, and response heads.
 *
 * http-parser tokenises; this file decides what we accept. The rules are listed in
 * http.h. How they are enforced, and why it stays split-invariant:
 *
 * - Bytes are handed to http-parser in slices. In the head (request line + headers),
 *   in trailers and on chunk-size lines, a slice ends after each LF, and our own
 *   per-byte scanner (scan_head, scan_chunk_line) looks at every byte first. The
 *   scanner enforces what http-parser does not: head byte and header-line limits,
 *   request-target length, obs-fold, chunk-line grammar. When the scanner refuses byte
 *   k, http-parser still gets bytes before k first, so whichever rule trips at the
 *   earliest byte wins, whatever the split. In the body a slice is the rest of the
 *   input and http-parser runs alone.
 * - Every check that would otherwise depend on when http-parser delivers a data
 *   callback (it calls on_url/on_header_* at delimiters or at the end of a slice) lives
 *   in the scanner or in on_headers_complete, which fire at fixed bytes.
 * - Chunk data is sliced to the announced chunk size, so the CRLF after it and the
 *   next chunk-size line go through the scanner (Debian's http-parser is built without
 *   HTTP_PARSER_STRICT and would take any two bytes there).
 * - http-parser is paused in on_message_complete (one request per feed) and in
 *   on_headers_complete when the caller must send 100 Continue. A pause inside
 *   on_headers_complete leaves the final LF unconsumed (http-parser re-executes it in
 *   s_headers_done), so that one byte is re-fed raw, past the scanner (raw_next).
 * - What http-parser 2.9.4 (non-strict, as Debian builds it) already rejects: Content-Length together with
 *   Transfer-Encoding (HPE_UNEXPECTED_CONTENT_LENGTH, before on_headers_complete), any
 *   second Content-Length, non-digits and overflow in Content-Length and chunk sizes,
 *   unknown methods, control characters in header values. It does not stop parsing
 *   after "Connection: close" when non-strict: PH_DONE does.
 *
 * Request storage: one growable buffer (ts__store) holds the target, then each header
 * as name NUL value NUL, then NUL-terminated copies of path and query. While parsing,
 * header slots hold offsets (the buffer moves when it grows); they become pointers
 * when the request completes and ownership moves to the caller's struct.
 */
#include "server/http.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "storage/err.h"
#include "storage/mem.h"

#define CHUNK_LINE_MAX 4096 /* chunk size + extensions; clients send a few bytes */

enum phase { PH_HEAD, PH_CHUNK_LINE, PH_BODY, PH_TRAILER, PH_DONE };
enum event { EV_NONE, EV_REQUEST, EV_CONTINUE };
enum rline { RL_METHOD, RL_SP, RL_URL, RL_PROTO, RL_REST, RL_DONE };
enum cline { CS_START, CS_SIZE, CS_BWS, CS_EXT, CS_CR, CS_DATA_END };

/* While parsing, a header slot holds offsets into ts__store; at completion pointers. */
union hslot {
	struct ts_http_header h;
	struct {
		size_t name_off, value_off, name_len, value_len;
	} o;
};
_Static_assert(sizeof(union hslot) == sizeof(struct ts_http_header), "slot layout");

struct ts_http_conn {
	http_parser p;
	struct ts_http_limits lim;
	enum phase phase;
	enum event event;
	int err;    /* sticky error, 0 while healthy */
	int status; /* HTTP status that goes with err */
	int raw_next;
	/* head / trailer scanner */
	size_t head_bytes, n_lines, url_bytes;
	int started, line_start, prev_cr, in_name;
	size_t proto_i;
	enum rline rl;
	/* chunk-line scanner */
	enum cline cs;
	size_t cl_bytes;
	uint64_t chunk_left; /* data bytes of the current chunk not yet sliced */
	/* request in progress */
	struct ts_http_request cur;
	size_t url_len;
	int in_field, hdr_open;
	uint64_t body_total, content_length;
	size_t path_off, query_off; /* into ts__store, set at headers complete */
};

void ts_http_limits_default(struct ts_http_limits *l)
{
	l->max_header_bytes = TS_HTTP_DEFAULT_MAX_HEADER_BYTES;
	l->max_headers = TS_HTTP_DEFAULT_MAX_HEADERS;
	l->max_body_bytes = TS_HTTP_DEFAULT_MAX_BODY_BYTES;
	l->max_url_bytes = TS_HTTP_DEFAULT_MAX_URL_BYTES;
}

void ts_http_request_init(struct ts_http_request *req)
{
	memset(req, 0, sizeof(*req));
}

void ts_http_request_fini(struct ts_http_request *req)
{
	if (!req)
		return;
	ts_free(req->ts__store);
	ts_free(req->headers);
	ts_free(req->body);
	ts_http_request_init(req);
}

const char *ts_http_request_header(const struct ts_http_request *req, const char *name,
				   size_t *value_len)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct ts_http_header *h = &req->headers[i];
		if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
			if (value_len)
				*value_len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

/* ---- errors ------------------------------------------------------------------- */

/* Records the first error only: later ones are consequences. Returns -1 so callbacks
 * can `return fail(...)` and make http-parser stop. */
static int fail(struct ts_http_conn *c, int err, int status)
{
	if (!c->err) {
		c->err = err;
		c->status = status;
		c->phase = PH_DONE;
	}
	return -1;
}

static void fail_from_parser(struct ts_http_conn *c)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
	switch (e) {
	case HPE_HEADER_OVERFLOW: fail(c, TS_ELIMIT, 431); break;
	case HPE_INVALID_TRANSFER_ENCODING: fail(c, TS_ECORRUPT, 501); break;
	case HPE_CLOSED_CONNECTION: fail(c, TS_ECLOSED, 0); break;
	default: /* HPE_CB_* land here only if a callback forgot to record why */
		fail(c, TS_ECORRUPT, 400);
		break;
	}
}

/* ---- request storage ---------------------------------------------------------- */

static int store_put(struct ts_http_conn *c, const char *data, size_t len)
{
	struct ts_http_request *r = &c->cur;
	size_t need = r->ts__store_len + len + 1;
	if (ts_grow((void **)&r->ts__store, &r->ts__store_cap, need < 512 ? 512 : need, 1) != 0)
		return fail(c, -ENOMEM, 500);
	memcpy(r->ts__store + r->ts__store_len, data, len);
	r->ts__store_len += len;
	return 0;
}

static union hslot *slot(struct ts_http_conn *c, size_t i)
{
	return (union hslot *)(void *)&c->cur.headers[i];
}

static int slot_new(struct ts_http_conn *c)
{
	struct ts_http_request *r = &c->cur;
	if (ts_grow((void **)&r->headers, &r->ts__slots_cap, r->n_headers + 1,
		    sizeof(union hslot)) != 0)
		return fail(c, -ENOMEM, 500);
	union hslot *s = slot(c, r->n_headers);
	s->o.name_off = r->ts__store_len;
	s->o.name_len = 0;
	s->o.value_off = 0;
	s->o.value_len = 0;
	return 0;
}

/* Closes the open header: NUL after the name if no value came, trailing blanks off
 * the value (http-parser strips only leading ones), NUL after the value. */
static int header_close(struct ts_http_conn *c)
{
	struct ts_http_request *r = &c->cur;
	union hslot *s = slot(c, r->n_headers);
	if (c->in_field) {
		if (store_put(c, "", 1))
			return -1;
		s->o.value_off = r->ts__store_len;
		c->in_field = 0;
	}
	while (s->o.value_len > 0) {
		char ch = r->ts__store[s->o.value_off + s->o.value_len - 1];
		if (ch != ' ' && ch != '\t')
			break;
		s->o.value_len--;
	}
	r->ts__store_len = s->o.value_off + s->o.value_len;
	if (store_put(c, "", 1))
		return -1;
	r->n_headers++;
	c->hdr_open = 0;
	return 0;
}

/* ---- http-parser callbacks ---------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct ts_http_conn *c = p->data;
	c->url_len += len;
	return store_put(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct ts_http_conn *c = p->data;
	if (c->phase == PH_TRAILER)
		return 0; /* trailers are bounded by the scanner and dropped */
	if (!c->in_field) {
		if (c->hdr_open && header_close(c))
			return -1;
		if (c->cur.n_headers == 0 && store_put(c, "", 1)) /* NUL after the target */
			return -1;
		if (slot_new(c))
			return -1;
		c->in_field = 1;
		c->hdr_open = 1;
	}
	slot(c, c->cur.n_headers)->o.name_len += len;
	return store_put(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct ts_http_conn *c = p->data;
	if (c->phase == PH_TRAILER)
		return 0;
	union hslot *s = slot(c, c->cur.n_headers);
	if (c->in_field) {
		if (store_put(c, "", 1))
			return -1;
		s = slot(c, c->cur.n_headers);
		s->o.value_off = c->cur.ts__store_len;
		c->in_field = 0;
	}
	s->o.value_len += len;
	return store_put(c, at, len);
}

static int ieq(const char *a, size_t a_len, const char *b)
{
	return a_len == strlen(b) && strncasecmp(a, b, a_len) == 0;
}

/* Header value by name while slots still hold offsets. */
static const char *hdr_find(struct ts_http_conn *c, const char *name, size_t *len, size_t *count)
{
	const char *found = NULL;
	*count = 0;
	for (size_t i = 0; i < c->cur.n_headers; i++) {
		union hslot *s = slot(c, i);
		if (ieq(c->cur.ts__store + s->o.name_off, s->o.name_len, name)) {
			if (!found) {
				found = c->cur.ts__store + s->o.value_off;
				*len = s->o.value_len;
			}
			(*count)++;
		}
	}
	return found;
}

/* Splits the target into path and query (appended to the store as C strings). */
static int split_target(struct ts_http_conn *c, size_t *path_off, size_t *query_off)
{
	const char *t = c->cur.ts__store;
	size_t n = c->url_len;
	size_t ps = 0, pl = 0, qs = 0, ql = 0;
	if (n > 0 && t[0] == '/') {
		while (pl < n && t[pl] != '?' && t[pl] != '#')
			pl++;
		if (pl < n && t[pl] == '?') {
			qs = pl + 1;
			while (qs + ql < n && t[qs + ql] != '#')
				ql++;
		}
	} else if (n == 1 && t[0] == '*' && c->p.method == HTTP_OPTIONS) {
		pl = 1;
	} else {
		struct http_parser_url u;
		http_parser_url_init(&u);
		if (n < 7 || http_parser_parse_url(t, n, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST)))
			return fail(c, TS_ECORRUPT, 400);
		if (u.field_set & (1 << UF_PATH)) {
			ps = u.field_data[UF_PATH].off;
			pl = u.field_data[UF_PATH].len;
		}
		if (u.field_set & (1 << UF_QUERY)) {
			qs = u.field_data[UF_QUERY].off;
			ql = u.field_data[UF_QUERY].len;
		}
	}
	/* Copy through a bounded local step: store_put may move the store under t. */
	*path_off = c->cur.ts__store_len;
	for (size_t i = 0; i < pl; i++) {
		char ch = c->cur.ts__store[ps + i];
		if (store_put(c, &ch, 1))
			return -1;
	}
	if (pl == 0 && store_put(c, "/", 1))
		return -1;
	if (store_put(c, "", 1))
		return -1;
	*query_off = c->cur.ts__store_len;
	for (size_t i = 0; i < ql; i++) {
		char ch = c->cur.ts__store[qs + i];
		if (store_put(c, &ch, 1))
			return -1;
	}
	return store_put(c, "", 1);
}

static int on_headers_complete(http_parser *p)
{
	struct ts_http_conn *c = p->data;
	struct ts_http_request *r = &c->cur;
	const char *v;
	size_t vlen = 0, count;

	if (c->hdr_open && header_close(c))
		return -1;
	if (r->n_headers == 0 && store_put(c, "", 1)) /* NUL after the target */
		return -1;
	if (p->http_major != 1)
		return fail(c, TS_ECORRUPT, 505);
	if (p->method == HTTP_CONNECT)
		return fail(c, TS_ECORRUPT, 501);
	r->http_minor = p->http_minor;

	hdr_find(c, "host", &vlen, &count);
	if (count > 1 || (count == 0 && p->http_minor >= 1))
		return fail(c, TS_ECORRUPT, 400);

	v = hdr_find(c, "transfer-encoding", &vlen, &count);
	if (count > 0) {
		if (p->http_minor == 0 || count > 1)
			return fail(c, TS_ECORRUPT, 400);
		if (!ieq(v, vlen, "chunked"))
			return fail(c, TS_ECORRUPT, 501);
		if (!(p->flags & F_CHUNKED))
			return fail(c, TS_ECORRUPT, 400);
		r->chunked = 1;
	}

	v = hdr_find(c, "expect", &vlen, &count);
	if (count > 0) {
		if (count > 1 || !ieq(v, vlen, "100-continue"))
			return fail(c, TS_ELIMIT, 417);
		r->expect_continue = p->http_minor >= 1; /* HTTP/1.0 clients do not wait */
	}

	c->content_length = 0;
	if (!r->chunked && (p->flags & F_CONTENTLENGTH)) {
		c->content_length = p->content_length;
		if (c->content_length > c->lim.max_body_bytes)
			return fail(c, TS_ELIMIT, 413);
	}

	if (split_target(c, &c->path_off, &c->query_off))
		return -1;
	r->target_len = c->url_len;
	r->path_len = c->query_off - c->path_off - 1;
	r->query_len = r->ts__store_len - c->query_off - 1;
	c->body_total = 0;

	if (c->content_length > 0) {
		/* Exact size up front: Content-Length is already within the limit. */
		r->body = ts_malloc((size_t)c->content_length + 1);
		if (!r->body)
			return fail(c, -ENOMEM, 500);
		r->ts__body_cap = (size_t)c->content_length + 1;
	}
	c->phase = r->chunked ? PH_CHUNK_LINE : PH_BODY;
	c->cs = CS_START;
	c->cl_bytes = 0;
	if (r->expect_continue && (r->chunked || c->content_length > 0)) {
		c->event = EV_CONTINUE;
		c->raw_next = 1;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct ts_http_conn *c = p->data;
	struct ts_http_request *r = &c->cur;
	if (r->body_len + len + 1 > r->ts__body_cap) {
		/* Only chunked bodies grow; chunk headers keep the total within the limit.
		 * Not ts_grow: the last step is clamped to the limit instead of doubling. */
		size_t need = r->body_len + len + 1;
		size_t cap = r->ts__body_cap ? r->ts__body_cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > c->lim.max_body_bytes + 1 && need <= c->lim.max_body_bytes + 1)
			cap = (size_t)c->lim.max_body_bytes + 1;
		char *b = ts_realloc(r->body, cap);
		if (!b)
			return fail(c, -ENOMEM, 500);
		r->body = b;
		r->ts__body_cap = cap;
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	return 0;
}

static void scan_reset_head(struct ts_http_conn *c, int trailer)
{
	c->head_bytes = 0;
	c->n_lines = 0;
	c->url_bytes = 0;
	c->started = trailer;
	c->line_start = trailer;
	c->prev_cr = 0;
	c->in_name = 0;
	c->proto_i = 0;
	c->rl = trailer ? RL_DONE : RL_METHOD;
}

static int on_chunk_header(http_parser *p)
{
	struct ts_http_conn *c = p->data;
	uint64_t size = p->content_length;
	if (size == 0) {
		c->phase = PH_TRAILER;
		scan_reset_head(c, 1);
		return 0;
	}
	if (size > c->lim.max_body_bytes - c->body_total)
		return fail(c, TS_ELIMIT, 413);
	c->body_total += size;
	c->chunk_left = size;
	c->phase = PH_BODY;
	return 0;
}

static int on_chunk_complete(http_parser *p)
{
	struct ts_http_conn *c = p->data;
	if (c->phase != PH_CHUNK_LINE)
		return 0; /* end of trailers: on_message_complete follows */
	c->cs = CS_START;
	c->cl_bytes = 0;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct ts_http_conn *c = p->data;
	struct ts_http_request *r = &c->cur;
	for (size_t i = 0; i < r->n_headers; i++) {
		union hslot *s = slot(c, i);
		size_t no = s->o.name_off, nl = s->o.name_len;
		size_t vo = s->o.value_off, vl = s->o.value_len;
		s->h.name = r->ts__store + no;
		s->h.value = r->ts__store + vo;
		s->h.name_len = nl;
		s->h.value_len = vl;
	}
	r->method = http_method_str((enum http_method)p->method);
	r->target = r->ts__store;
	r->path = r->ts__store + c->path_off;
	r->query = r->ts__store + c->query_off;
	if (r->body)
		r->body[r->body_len] = '\0';
	r->keep_alive = http_should_keep_alive(p);
	c->event = EV_REQUEST;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_complete = on_chunk_complete,
};

/* ---- scanners ----------------------------------------------------------------- */

static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* One byte of the head or of trailers. Returns 0 or the status that refuses it.
 * Debian builds http-parser without HTTP_PARSER_STRICT, so it lets through blanks in
 * header names, any "HTTP/" spelling, CR followed by anything at line ends, and tabs
 * in the target; those are refused here. */
static int scan_head(struct ts_http_conn *c, unsigned char b, int *err)
{
	*err = TS_ELIMIT;
	if (c->head_bytes >= c->lim.max_header_bytes)
		return 431;
	c->head_bytes++;
	*err = TS_ECORRUPT;
	if (c->prev_cr && b != '\n')
		return 400;
	c->prev_cr = b == '\r';
	if (!c->started) {
		if (b == '\r' || b == '\n')
			return 0; /* empty lines before a request are allowed (RFC 9112 2.2) */
		c->started = 1;
	} else if (c->line_start) {
		c->line_start = 0;
		if (b == ' ' || b == '\t')
			return 400; /* obs-fold, or blanks before a field name */
		if (b != '\r' && b != '\n') {
			if (c->n_lines >= c->lim.max_headers) {
				*err = TS_ELIMIT;
				return 431;
			}
			c->n_lines++;
			c->in_name = 1;
		}
	}
	if (c->in_name) {
		if (b == ':')
			c->in_name = 0;
		else if (!is_tchar(b))
			return 400;
	}
	switch (c->rl) {
	case RL_METHOD:
		if (b == ' ')
			c->rl = RL_SP;
		else if (!is_tchar(b))
			return 400;
		break;
	case RL_SP:
		if (b == ' ')
			break;
		c->rl = RL_URL;
		/* fall through */
	case RL_URL:
		if (b == ' ') {
			c->rl = RL_PROTO;
			break;
		}
		if (b == '\r' || b == '\n') {
			c->rl = RL_REST; /* HTTP/0.9 shape: http-parser reports version 0.9 */
			break;
		}
		if (b < 0x21 || b == 0x7f)
			return 400;
		if (c->url_bytes >= c->lim.max_url_bytes) {
			*err = TS_ELIMIT;
			return 414;
		}
		c->url_bytes++;
		break;
	case RL_PROTO:
		if (b != (unsigned char)"HTTP/"[c->proto_i])
			return 400;
		if (++c->proto_i == 5)
			c->rl = RL_REST;
		break;
	case RL_REST:
	case RL_DONE: break;
	}
	if (b == '\n') {
		if (c->in_name)
			return 400; /* a header line without a colon */
		c->line_start = 1;
		c->rl = RL_DONE;
	}
	return 0;
}

/* One byte of a chunk-size line: hex [BWS ";" ext] CRLF, ext = VCHAR / SP / HT /
 * obs-text. Stricter than http-parser, which skips anything up to CR after ';' or SP. */
static int scan_chunk_line(struct ts_http_conn *c, unsigned char b, int *err)
{
	*err = TS_ECORRUPT;
	if (++c->cl_bytes > CHUNK_LINE_MAX)
		return 400;
	int hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
	switch (c->cs) {
	case CS_START:
		if (!hex)
			return 400;
		c->cs = CS_SIZE;
		return 0;
	case CS_SIZE:
		if (hex)
			return 0;
		if (b == '\r')
			c->cs = CS_CR;
		else if (b == ';')
			c->cs = CS_EXT;
		else if (b == ' ' || b == '\t')
			c->cs = CS_BWS;
		else
			return 400;
		return 0;
	case CS_BWS:
		if (b == ';')
			c->cs = CS_EXT;
		else if (b != ' ' && b != '\t')
			return 400;
		return 0;
	case CS_EXT:
		if (b == '\r')
			c->cs = CS_CR;
		else if ((b < 0x20 && b != '\t') || b == 0x7f)
			return 400;
		return 0;
	case CS_CR: return b == '\n' ? 0 : 400;
	case CS_DATA_END: /* http-parser (non-strict) takes any two bytes after chunk data */
		if (b != '\r')
			return 400;
		c->cs = CS_CR;
		return 0;
	}
	return 400;
}

/* ---- feeding ------------------------------------------------------------------ */

int ts_http_conn_new(struct ts_http_conn **out, const struct ts_http_limits *limits)
{
	struct ts_http_conn *c = ts_calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (limits)
		c->lim = *limits;
	else
		ts_http_limits_default(&c->lim);
	if (c->lim.max_header_bytes > TS_HTTP_MAX_HEADER_BYTES_CAP)
		c->lim.max_header_bytes = TS_HTTP_MAX_HEADER_BYTES_CAP;
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	ts_http_request_init(&c->cur);
	scan_reset_head(c, 0);
	c->phase = PH_HEAD;
	*out = c;
	return 0;
}

void ts_http_conn_free(struct ts_http_conn *c)
{
	if (!c)
		return;
	ts_http_request_fini(&c->cur);
	ts_free(c);
}

int ts_http_conn_status(const struct ts_http_conn *c)
{
	return c->status;
}

int ts_http_conn_phase(const struct ts_http_conn *c)
{
	switch (c->phase) {
	case PH_HEAD: return c->started ? TS_HTTP_PHASE_HEAD : TS_HTTP_PHASE_IDLE;
	case PH_DONE: return TS_HTTP_PHASE_DONE;
	default: return TS_HTTP_PHASE_BODY;
	}
}

uint64_t ts_http_conn_content_length(const struct ts_http_conn *c)
{
	return c->phase == PH_BODY && !c->cur.chunked ? c->content_length : 0;
}

/* Length of the next slice starting at buf: up to and including an LF in scanned
 * phases (stopping before a refused byte, which sets *refused), else everything. */
static size_t next_slice(struct ts_http_conn *c, const unsigned char *buf, size_t len, int *refused,
			 int *err)
{
	*refused = 0;
	if (c->raw_next) {
		c->raw_next = 0;
		return 1;
	}
	if (c->phase == PH_BODY) {
		if (!c->cur.chunked)
			return len;
		/* Chunk data is sliced exactly, so the CRLF after it goes through the scanner. */
		size_t n = len < c->chunk_left ? len : (size_t)c->chunk_left;
		c->chunk_left -= n;
		if (c->chunk_left == 0) {
			c->phase = PH_CHUNK_LINE;
			c->cs = CS_DATA_END;
			c->cl_bytes = 0;
		}
		return n;
	}
	for (size_t i = 0; i < len; i++) {
		int st = c->phase == PH_CHUNK_LINE ? scan_chunk_line(c, buf[i], err)
						   : scan_head(c, buf[i], err);
		if (st) {
			*refused = st;
			return i;
		}
		if (buf[i] == '\n')
			return i + 1;
	}
	return len;
}

int ts_http_feed(struct ts_http_conn *c, const char *buf, size_t len, size_t *consumed,
		 struct ts_http_request *out)
{
	size_t pos = 0;
	*consumed = 0;
	if (c->err)
		return c->err;
	if (c->phase == PH_DONE) {
		if (len == 0)
			return TS_HTTP_NEED_MORE;
		fail(c, TS_ECLOSED, 0);
		return c->err;
	}
	while (pos < len) {
		int refused, serr = 0;
		size_t n = next_slice(c, (const unsigned char *)buf + pos, len - pos, &refused,
				      &serr);
		size_t used = n > 0 ? http_parser_execute(&c->p, &settings, buf + pos, n) : 0;
		enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
		pos += used;
		if (e == HPE_PAUSED) {
			enum event ev = c->event;
			http_parser_pause(&c->p, 0);
			c->event = EV_NONE;
			if (ev == EV_REQUEST) {
				ts_http_request_fini(out);
				*out = c->cur;
				ts_http_request_init(&c->cur);
				c->url_len = 0;
				c->in_field = c->hdr_open = 0;
				scan_reset_head(c, 0);
				c->phase = out->keep_alive ? PH_HEAD : PH_DONE;
				*consumed = pos;
				return TS_HTTP_REQUEST;
			}
			if (ev == EV_CONTINUE) {
				*consumed = pos;
				return TS_HTTP_CONTINUE;
			}
			continue;
		}
		if (e != HPE_OK || c->err) {
			if (!c->err)
				fail_from_parser(c);
			*consumed = pos;
			return c->err;
		}
		if (refused) {
			fail(c, serr, refused);
			*consumed = pos;
			return c->err;
		}
	}
	*consumed = pos;
	return TS_HTTP_NEED_MORE;
}

/* ---- responses ---------------------------------------------------------------- */

const char *ts_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Appends to a bounded buffer, always counting what would have been written. */
struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n <= o->cap)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static int header_ok(const struct ts_http_header *h)
{
	static const char *const reserved[] = { "content-length", "date", "connection",
						"transfer-encoding" };
	if (h->name_len == 0)
		return 0;
	for (size_t i = 0; i < h->name_len; i++)
		if (!is_tchar((unsigned char)h->name[i]))
			return 0;
	for (size_t i = 0; i < h->value_len; i++) {
		unsigned char ch = (unsigned char)h->value[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (ieq(h->name, h->name_len, reserved[i]))
			return 0;
	return 1;
}

int ts_http_write_head(const struct ts_http_response_head *h, char *buf, size_t cap,
		       size_t *len_out)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct out o = { buf, cap, 0 };
	char line[128];
	struct tm tm;
	time_t t = (time_t)h->date_s;

	*len_out = 0;
	if (h->status < 100 || h->status > 599)
		return TS_EINVALID;
	for (size_t i = 0; i < h->n_headers; i++)
		if (!header_ok(&h->headers[i]))
			return TS_EINVALID;
	if (!gmtime_r(&t, &tm))
		return TS_EINVALID;

	snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", h->status, ts_http_reason(h->status));
	puts_(&o, line);
	snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	puts_(&o, line);
	if (h->chunked) {
		puts_(&o, "Transfer-Encoding: chunked\r\n");
	} else if (!h->close_delimited) {
		snprintf(line, sizeof(line), "Content-Length: %llu\r\n",
			 (unsigned long long)h->content_length);
		puts_(&o, line);
	}
	puts_(&o, h->keep_alive && !h->close_delimited ? "Connection: keep-alive\r\n"
						       : "Connection: close\r\n");
	for (size_t i = 0; i < h->n_headers; i++) {
		put(&o, h->headers[i].name, h->headers[i].name_len);
		put(&o, ": ", 2);
		put(&o, h->headers[i].value, h->headers[i].value_len);
		put(&o, "\r\n", 2);
	}
	put(&o, "\r\n", 2);
	*len_out = o.len;
	return o.len <= cap ? 0 : TS_EFULL;
}

size_t ts_http_chunk_prefix(char *buf, size_t data_len)
{
	int n = snprintf(buf, TS_HTTP_CHUNK_PREFIX_MAX, "%zx\r\n", data_len);
	return n > 0 ? (size_t)n : 0;
}
