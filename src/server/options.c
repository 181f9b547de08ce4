/* server/options.c: command-line options, their defaults and their help. */
#include "server/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static const char usage[] =
    "usage: inferd --model-repository DIR [options]\n"
    "\n"
    "Serves the models of a Triton-style model repository over the KServe v2\n"
    "(Open Inference) protocol.\n"
    "\n"
    "  --model-repository DIR       the repository: one folder per model (required)\n"
    "  --backend-directory DIR      where user backends live: DIR/NAME/libinferd_NAME.so\n"
    "  --host ADDR                  address to listen on (default 0.0.0.0)\n"
    "  --http-port N                v2 REST port (default 8000; 0 picks a free one)\n"
    "  --grpc-port N                gRPC port (default 8001; -1 disables)\n"
    "  --grpc-max-message BYTES     largest gRPC message (default 64 MiB)\n"
    "  --metrics-port N             Prometheus metrics port (default 8002; -1 disables)\n"
    "  --http-threads N             network threads (default: the number of CPUs)\n"
    "  --busy-poll-us N             a network thread polls up to this long for the\n"
    "                               next request before it sleeps, while requests come\n"
    "                               that close together: lower latency for a few\n"
    "                               clients (default 200; 0: never poll)\n"
    "  --http-max-body BYTES        largest request body (default 64 MiB; K, M, G suffixes)\n"
    "  --http-max-header BYTES      largest request head (default 64 KiB)\n"
    "  --http-max-connections N     open connections at most (default 10000)\n"
    "  --http-idle-timeout S        close keep-alive connections idle this long (default 60)\n"
    "  --http-header-timeout S      time to send the request head (default 10)\n"
    "  --http-body-timeout S        time to send the request body (default 60)\n"
    "  --shutdown-timeout S         on SIGTERM, wait this long for requests (default 30)\n"
    "  --strict-readiness BOOL      ready only when every model is (default true)\n"
    "  --default-max-batch-size N   max_batch_size for configs completed from the model\n"
    "                               file when it has a batch dimension (default 4)\n"
    "  --log-format text|json       (default text)\n"
    "  --log-level error|warn|info|verbose (default info)\n"
    "  --help, --version\n";

enum {
  OPT_REPO = 256,
  OPT_BACKEND_DIR,
  OPT_HOST,
  OPT_HTTP_PORT,
  OPT_METRICS_PORT,
  OPT_GRPC_PORT,
  OPT_GRPC_MAX_MESSAGE,
  OPT_THREADS,
  OPT_BUSY_POLL,
  OPT_MAX_BODY,
  OPT_MAX_HEADER,
  OPT_MAX_CONN,
  OPT_IDLE,
  OPT_HEADER_TIMEOUT,
  OPT_BODY_TIMEOUT,
  OPT_SHUTDOWN,
  OPT_STRICT,
  OPT_DEFAULT_BATCH,
  OPT_LOG_FORMAT,
  OPT_LOG_LEVEL,
  OPT_HELP,
  OPT_VERSION,
};

static const struct option long_options[] = {
    {"model-repository", required_argument, NULL, OPT_REPO},
    {"model-store", required_argument, NULL, OPT_REPO},
    {"backend-directory", required_argument, NULL, OPT_BACKEND_DIR},
    {"host", required_argument, NULL, OPT_HOST},
    {"http-port", required_argument, NULL, OPT_HTTP_PORT},
    {"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
    {"grpc-port", required_argument, NULL, OPT_GRPC_PORT},
    {"grpc-max-message", required_argument, NULL, OPT_GRPC_MAX_MESSAGE},
    {"http-threads", required_argument, NULL, OPT_THREADS},
    {"busy-poll-us", required_argument, NULL, OPT_BUSY_POLL},
    {"http-thread-count", required_argument, NULL, OPT_THREADS},
    {"http-max-body", required_argument, NULL, OPT_MAX_BODY},
    {"http-max-header", required_argument, NULL, OPT_MAX_HEADER},
    {"http-max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"http-idle-timeout", required_argument, NULL, OPT_IDLE},
    {"http-header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"http-body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"strict-readiness", required_argument, NULL, OPT_STRICT},
    {"default-max-batch-size", required_argument, NULL, OPT_DEFAULT_BATCH},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* An integer in [min, max], or a message and false. */
static bool int_arg(const char *name, const char *s, long long min, long long max, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "inferd: --%s expects a whole number from %lld to %lld, got '%s'\n", name, min,
            max, s);
    return false;
  }
  *out = v;
  return true;
}

/* A byte count with an optional K, M or G (binary) suffix. */
static bool size_arg(const char *name, const char *s, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10;
  else if (*end == 'M' || *end == 'm')
    shift = 20;
  else if (*end == 'G' || *end == 'g')
    shift = 30;
  if (shift) end++;
  if (errno || end == s || *end || s[0] == '-' || v == 0 || v > (1ULL << 40) >> shift) {
    fprintf(stderr, "inferd: --%s expects a size like 1048576, 512K or 64M, got '%s'\n", name, s);
    return false;
  }
  *out = (size_t)(v << shift);
  return true;
}

static bool bool_arg(const char *name, const char *s, bool *out) {
  if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes"))
    *out = true;
  else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no"))
    *out = false;
  else {
    fprintf(stderr, "inferd: --%s expects true or false, got '%s'\n", name, s);
    return false;
  }
  return true;
}

int options_parse(options *o, int argc, char **argv) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  *o = (options){
      .host = "0.0.0.0",
      .http_port = 8000,
      .metrics_port = 8002,
      .grpc_port = 8001,
      .grpc_max_message = 64u << 20,
      .http_threads = cpus > 0 ? (int)cpus : 1,
      .http_max_body = 64u << 20,
      .http_max_header = 64u << 10,
      .http_max_connections = 10000,
      .http_idle_timeout_ms = 60000,
      .http_header_timeout_ms = 10000,
      .http_body_timeout_ms = 60000,
      .shutdown_timeout_ms = 30000,
      .busy_poll_us = 200,
      .strict_readiness = true,
      .default_max_batch_size = 4,
      .log_level = LOG_INFO,
  };
  optind = 1;
  int c;
  long long v;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    const char *name = "";
    for (const struct option *lo = long_options; lo->name; lo++)
      if (lo->val == c) name = lo->name;
    switch (c) {
    case OPT_REPO: o->model_repository = optarg; break;
    case OPT_BACKEND_DIR: o->backend_directory = optarg; break;
    case OPT_HOST: o->host = optarg; break;
    case OPT_HTTP_PORT:
      if (!int_arg(name, optarg, 0, 65535, &v)) return -1;
      o->http_port = (int)v;
      break;
    case OPT_METRICS_PORT:
      if (!int_arg(name, optarg, -1, 65535, &v)) return -1;
      o->metrics_port = (int)v;
      break;
    case OPT_GRPC_PORT:
      if (!int_arg(name, optarg, -1, 65535, &v)) return -1;
      o->grpc_port = (int)v;
      break;
    case OPT_GRPC_MAX_MESSAGE:
      if (!size_arg(name, optarg, &o->grpc_max_message)) return -1;
      break;
    case OPT_THREADS:
      if (!int_arg(name, optarg, 1, 256, &v)) return -1;
      o->http_threads = (int)v;
      break;
    case OPT_MAX_BODY:
      if (!size_arg(name, optarg, &o->http_max_body)) return -1;
      break;
    case OPT_MAX_HEADER:
      if (!size_arg(name, optarg, &o->http_max_header)) return -1;
      break;
    case OPT_BUSY_POLL:
      if (!int_arg(name, optarg, 0, 1000000, &v)) return -1;
      o->busy_poll_us = (unsigned)v;
      break;
    case OPT_MAX_CONN:
      if (!int_arg(name, optarg, 1, 1000000, &v)) return -1;
      o->http_max_connections = (unsigned)v;
      break;
    case OPT_IDLE:
    case OPT_HEADER_TIMEOUT:
    case OPT_BODY_TIMEOUT:
    case OPT_SHUTDOWN: {
      char *end;
      double s = strtod(optarg, &end);
      if (end == optarg || *end || !(s > 0) || s > 86400) {
        fprintf(stderr, "inferd: --%s expects seconds (0 < S <= 86400), got '%s'\n", name, optarg);
        return -1;
      }
      unsigned ms = (unsigned)(s * 1000);
      if (c == OPT_IDLE)
        o->http_idle_timeout_ms = ms;
      else if (c == OPT_HEADER_TIMEOUT)
        o->http_header_timeout_ms = ms;
      else if (c == OPT_BODY_TIMEOUT)
        o->http_body_timeout_ms = ms;
      else
        o->shutdown_timeout_ms = ms;
      break;
    }
    case OPT_STRICT:
      if (!bool_arg(name, optarg, &o->strict_readiness)) return -1;
      break;
    case OPT_DEFAULT_BATCH:
      if (!int_arg(name, optarg, 0, 1 << 20, &v)) return -1;
      o->default_max_batch_size = (int)v;
      break;
    case OPT_LOG_FORMAT:
      if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
        fprintf(stderr, "inferd: --log-format is text or json, got '%s'\n", optarg);
        return -1;
      }
      o->log_json = strcmp(optarg, "json") == 0;
      break;
    case OPT_LOG_LEVEL:
      o->log_level = log_level_from_name(optarg);
      if (o->log_level < 0) {
        fprintf(stderr, "inferd: --log-level is error, warn, info or verbose, got '%s'\n", optarg);
        return -1;
      }
      break;
    case OPT_HELP: fputs(usage, stdout); return 1;
    case OPT_VERSION: printf("inferd %s\n", INFERD_VERSION); return 1;
    default: fputs(usage, stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "inferd: unexpected argument '%s'\n%s", argv[optind], usage);
    return -1;
  }
  if (!o->model_repository) {
    fprintf(stderr, "inferd: --model-repository is required\n%s", usage);
    return -1;
  }
  return 0;
}
