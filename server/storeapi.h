/*
 * storeapi.h - the Thanos StoreAPI (--grpc-listen): Info, Series, LabelNames and
 * LabelValues over gRPC (grpc.h), answering from app->db with the external labels of
 * --external-label (extlabels.h).
 */
#ifndef TS_SERVER_STOREAPI_H
#define TS_SERVER_STOREAPI_H

#include <stddef.h>

#include "server/app.h"
#include "server/grpc.h"

/* Serves the StoreAPI on listen with n_workers handler threads; app (and its db) must
 * outlive the server (stop it with ts_grpc_stop before closing the db). *port receives
 * the bound port. Returns as ts_grpc_start. */
int ts_storeapi_start(struct ts_app *app, const char *listen, unsigned n_workers,
		      struct ts_grpc_server **out, int *port, char *msg, size_t msg_len);

#endif
