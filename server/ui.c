/*
 * ui.c - the web UI at / (web/: a query page with graph and table, a cardinality
 * explorer, a status page), served from the binary:
 *
 *   GET /          302 to /ui/
 *   GET /ui/       index.html
 *   GET /ui/<f>    the embedded file f (404 for anything else)
 *
 * The pages call the same Prometheus API as any client, so auth, TLS and tenants
 * apply to them as to everything else.
 */
#include "server/app.h"

#include <string.h>

#include "server/ui_assets.h"
#include "storage/mem.h"

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (dot && !strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (dot && !strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (dot && !strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	return "application/octet-stream";
}

static void h_root(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	ts_net_response_header(resp, "Location", "/ui/");
	ts_net_respond_text(resp, 302, "text/plain", "see /ui/\n");
}

static void h_ui(const struct ts_http_request *req, struct ts_net_response *resp, void *arg)
{
	(void)arg;
	const char *name = req->path + strlen("/ui/");
	size_t n = strlen(name);
	if (n == 0) {
		name = "index.html";
		n = strlen(name);
	}
	for (const struct ts_ui_asset *a = ts_ui_assets; a->name; a++) {
		if (strlen(a->name) != n || memcmp(a->name, name, n) != 0)
			continue;
		/* Small files, always revalidated: an upgraded tsdbd serves its own UI. */
		ts_net_response_header(resp, "Cache-Control", "no-cache");
		ts_net_response_header(resp, "X-Content-Type-Options", "nosniff");
		char *body = ts_malloc(a->len);
		if (!body || ts_net_response_header(resp, "Content-Type", content_type(a->name))) {
			ts_free(body);
			ts_net_respond(resp, 503, NULL, 0);
			return;
		}
		memcpy(body, a->data, a->len);
		ts_net_respond(resp, 200, body, a->len);
		return;
	}
	ts_net_respond_text(resp, 404, "text/plain", "not found\n");
}

int ts_ui_routes(struct ts_app *app)
{
	static const struct ts_net_route_def r[] = {
		{ "GET", "/", 0, h_root, "ui" },
		{ "GET", "/ui/", TS_NET_PREFIX, h_ui, "ui" },
	};
	return ts_net_routes(app->net, r, sizeof r / sizeof *r, app);
}
