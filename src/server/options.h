/* server/options.h: the command line. */
#ifndef INFERD_SERVER_OPTIONS_H
#define INFERD_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct options {
  const char *model_repository;
  const char *backend_directory;
  const char *host;
  int http_port;
  int metrics_port; /* -1: no metrics listener */
  int grpc_port;    /* -1: no gRPC listener */
  size_t grpc_max_message;
  int http_threads;
  unsigned busy_poll_us; /* the network threads' polling window at most; 0: never poll */
  size_t http_max_body;
  size_t http_max_header;
  unsigned http_max_connections;
  unsigned http_idle_timeout_ms;
  unsigned http_header_timeout_ms;
  unsigned http_body_timeout_ms;
  unsigned shutdown_timeout_ms;
  bool strict_readiness;
  int default_max_batch_size;
  int log_level;
  bool log_json;
} options;

/* Parses argv. Returns 0 to run, 1 when it printed help or the version (exit
 * 0), or -1 after printing an error (exit 2). */
int options_parse(options *o, int argc, char **argv);

#endif
