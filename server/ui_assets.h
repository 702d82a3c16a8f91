/*
 * ui_assets.h - the web UI's files (web/), compiled into tsdbd by cmake/embed.cmake so
 * the UI works offline, from the binary alone.
 */
#ifndef TS_SERVER_UI_ASSETS_H
#define TS_SERVER_UI_ASSETS_H

#include <stddef.h>

struct ts_ui_asset {
	const char *name; /* file name under web/, e.g. "app.js"; NULL ends the list */
	const unsigned char *data;
	size_t len;
};

extern const struct ts_ui_asset ts_ui_assets[];

#endif
