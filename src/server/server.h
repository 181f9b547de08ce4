/* server/server.h: what the endpoints share: the repository and the
 * options the server was started with. */
#ifndef INFERD_SERVER_SERVER_H
#define INFERD_SERVER_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "net/http_server.h"
#include "repo/repo.h"
#include "server/options.h"

typedef struct server {
  const options *opt;
  repo *repo;
  atomic_bool stopping; /* draining: not ready any more */
} server;

/* The v2 REST API (HTTP port). ctx is the server. */
void api_handle(http_request *req, void *ctx);

/* The v2 protocol over gRPC (HTTP/2 port); ctx is the server. */
extern const h2_handler grpc_handler;

/* Prometheus metrics (metrics port). ctx is the server. */
void metrics_handle(http_request *req, void *ctx);

#endif
