/* server/main.c: inferd's entry point: options, logging, the network
 * threads (one event loop each), the model repository, and the graceful
 * stop on SIGTERM or SIGINT: stop accepting, finish the requests in flight,
 * exit 0. A second signal stops at once. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/registry.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/http_server.h"
#include "net/loop.h"
#include "server/infer.h"
#include "server/options.h"
#include "server/server.h"

typedef struct net_thread {
  pthread_t thread;
  loop *loop;
  http_worker *worker;
  atomic_bool stopped;
} net_thread;

static void *run_loop(void *arg) {
  net_thread *t = arg;
  loop_run(t->loop);
  infer_thread_exit();
  atomic_store(&t->stopped, true);
  return NULL;
}

static void on_drained(void *arg) {
  net_thread *t = arg;
  loop_stop(t->loop);
}

/* Runs on each loop's own thread: starts its graceful stop. */
static void begin_drain(void *arg) {
  net_thread *t = arg;
  http_worker_drain(t->worker, on_drained, t);
}

static int start_listeners(net_thread *threads, const options *o, server *s) {
  err e = {0};
  int port = o->http_port;
  for (int i = 0; i < o->http_threads; i++) {
    /* The first bind picks the port when asked for 0; the others share it. */
    int bound = http_worker_listen(threads[i].worker, o->host, port, api_handle, s, &e);
    if (bound < 0) {
      log_error("%s", e.msg);
      return -1;
    }
    port = bound;
  }
  log_info("HTTP service on %s:%d (%d thread%s)", o->host, port, o->http_threads,
           o->http_threads == 1 ? "" : "s");
  if (o->grpc_port >= 0) {
    port = o->grpc_port;
    for (int i = 0; i < o->http_threads; i++) {
      int bound = http_worker_listen_h2(threads[i].worker, o->host, port, &grpc_handler, s, &e);
      if (bound < 0) {
        log_error("%s", e.msg);
        return -1;
      }
      port = bound;
    }
    log_info("gRPC service on %s:%d", o->host, port);
  }
  if (o->metrics_port >= 0) {
    int bound =
        http_worker_listen(threads[0].worker, o->host, o->metrics_port, metrics_handle, s, &e);
    if (bound < 0) {
      log_error("%s", e.msg);
      return -1;
    }
    log_info("metrics on %s:%d/metrics", o->host, bound);
  }
  return 0;
}

/* Waits for every loop to stop, at most timeout_ms; a further signal cuts
 * the wait short. Returns true when all stopped. */
static bool wait_stopped(net_thread *threads, int n, unsigned timeout_ms, const sigset_t *sigs) {
  uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * 1000000u;
  struct timespec tick = {0, 50 * 1000000};
  for (;;) {
    bool all = true;
    for (int i = 0; i < n; i++)
      all &= atomic_load(&threads[i].stopped);
    if (all) return true;
    if (clock_ns() > deadline) {
      log_warn("requests still in flight after the shutdown timeout; exiting");
      return false;
    }
    if (sigtimedwait(sigs, NULL, &tick) > 0) {
      log_warn("second signal: exiting without waiting for requests in flight");
      return false;
    }
  }
}

/* glibc raises its mmap and trim thresholds each time a large block is
 * freed, after which freed model memory stays in the heap: a thread arena's
 * top is never given back, not even by malloc_trim. Fixed thresholds keep
 * large blocks (weights, workspaces) in their own mappings, returned to the
 * system when a model unloads. A user's GLIBC_TUNABLES or MALLOC_*_
 * settings win. */
static void malloc_configure(void) {
#ifdef __GLIBC__
  const char *t = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") ||
      (t && strstr(t, "threshold")))
    return;
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
}

int main(int argc, char **argv) {
  malloc_configure();
  options o;
  int rc = options_parse(&o, argc, argv);
  if (rc != 0) return rc > 0 ? 0 : 2;
  log_configure(o.log_level, o.log_json);

  /* Signals: SIGPIPE ignored (writes report EPIPE); SIGTERM and SIGINT
   * blocked in every thread and taken by sigwait below. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  backend_registry_init(o.backend_directory);
  repo_options ro = {.root = o.model_repository,
                     .strict_readiness = o.strict_readiness,
                     .default_max_batch = o.default_max_batch_size};
  server s = {.opt = &o, .repo = repo_create(&ro)};
  http_server_config hc = {
      .max_head = o.http_max_header,
      .max_body = o.http_max_body,
      .idle_timeout_ms = o.http_idle_timeout_ms,
      .header_timeout_ms = o.http_header_timeout_ms,
      .body_timeout_ms = o.http_body_timeout_ms,
      .write_timeout_ms = o.http_body_timeout_ms,
      .max_connections = o.http_max_connections,
      .h2_max_message = o.grpc_max_message + 5,
  };
  http_server *hs = http_server_create(&hc);
  net_thread *threads = calloc((size_t)o.http_threads, sizeof *threads);
  if (!s.repo || !hs || !threads) {
    log_error("out of memory");
    return 1;
  }
  for (int i = 0; i < o.http_threads; i++) {
    threads[i].loop = loop_create();
    if (threads[i].loop) loop_set_busy_poll(threads[i].loop, o.busy_poll_us);
    threads[i].worker = threads[i].loop ? http_worker_create(hs, threads[i].loop) : NULL;
    if (!threads[i].worker) {
      log_error("cannot create the event loops");
      return 1;
    }
  }
  if (start_listeners(threads, &o, &s) < 0) return 1;
  for (int i = 0; i < o.http_threads; i++)
    pthread_create(&threads[i].thread, NULL, run_loop, &threads[i]);

  log_info("inferd %s: loading models from %s", INFERD_VERSION, o.model_repository);
  repo_load_all(s.repo);
  log_info("server is %s", repo_ready(s.repo) ? "ready" : "not ready: some models are unavailable");

  int sig;
  sigwait(&sigs, &sig);
  log_info("%s: stopping (finishing requests in flight)", strsignal(sig));
  atomic_store(&s.stopping, true);
  for (int i = 0; i < o.http_threads; i++)
    loop_post(threads[i].loop, begin_drain, &threads[i]);
  if (!wait_stopped(threads, o.http_threads, o.shutdown_timeout_ms, &sigs)) _exit(0);

  for (int i = 0; i < o.http_threads; i++) {
    pthread_join(threads[i].thread, NULL);
    http_worker_destroy(threads[i].worker);
    loop_destroy(threads[i].loop);
  }
  free(threads);
  http_server_destroy(hs);
  repo_destroy(s.repo);
  backend_registry_shutdown();
  log_info("stopped");
  return 0;
}
