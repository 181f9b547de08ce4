/* server/metrics.c: Prometheus text exposition on the metrics port: per
 * model version request counts, Triton-style cumulative durations, a
 * request-duration histogram, requests in flight, model memory, and the
 * process's memory. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "sched/sched.h"
#include "server/server.h"

typedef struct metric {
  const char *name;
  const char *type;
  const char *help;
} metric;

/* The per-version series, in the order they are written. */
enum {
  M_SUCCESS,
  M_FAILURE,
  M_COUNT,
  M_EXEC,
  M_REQUEST_US,
  M_QUEUE_US,
  M_INPUT_US,
  M_INFER_US,
  M_OUTPUT_US,
  M_IN_FLIGHT,
  M_MEMORY,
  M_QUEUE_SIZE,
  M_INSTANCE_BUSY,
  M_DURATION,
  M_BATCH,
  M_N
};

static const metric metrics[M_N] = {
    [M_SUCCESS] = {"inferd_inference_request_success_total", "counter",
                   "Successful inference requests"},
    [M_FAILURE] = {"inferd_inference_request_failure_total", "counter",
                   "Failed inference requests"},
    [M_COUNT] = {"inferd_inference_count_total", "counter",
                 "Inferences performed (a batch of n counts n)"},
    [M_EXEC] = {"inferd_inference_exec_count_total", "counter", "Backend executions (batches)"},
    [M_REQUEST_US] = {"inferd_inference_request_duration_us_total", "counter",
                      "Cumulative end-to-end time of successful requests, microseconds"},
    [M_QUEUE_US] = {"inferd_inference_queue_duration_us_total", "counter",
                    "Cumulative time requests waited for an instance, microseconds"},
    [M_INPUT_US] = {"inferd_inference_compute_input_duration_us_total", "counter",
                    "Cumulative time preparing inputs, microseconds"},
    [M_INFER_US] = {"inferd_inference_compute_infer_duration_us_total", "counter",
                    "Cumulative time executing the model, microseconds"},
    [M_OUTPUT_US] = {"inferd_inference_compute_output_duration_us_total", "counter",
                     "Cumulative time handling outputs, microseconds"},
    [M_IN_FLIGHT] = {"inferd_inference_requests_in_flight", "gauge",
                     "Inference requests being handled now"},
    [M_MEMORY] = {"inferd_model_memory_bytes", "gauge", "Memory held by the loaded model version"},
    [M_QUEUE_SIZE] = {"inferd_inference_queue_size", "gauge",
                      "Requests waiting in the model's queue"},
    [M_INSTANCE_BUSY] = {"inferd_instance_busy_seconds_total", "counter",
                         "Time each instance spent executing (utilisation: its rate)"},
    [M_DURATION] = {"inferd_inference_request_duration_seconds", "histogram",
                    "End-to-end duration of successful inference requests"},
    [M_BATCH] = {"inferd_inference_batch_size", "histogram",
                 "Requests (batch rows) per backend execution"},
};

/* Label values escape backslash, double quote and newline. */
static void put_label(buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"') {
      buf_putc(b, '\\');
      buf_putc(b, *v);
    } else if (*v == '\n') {
      buf_puts(b, "\\n");
    } else {
      buf_putc(b, *v);
    }
  }
}

static void put_labels(buf *b, const model_version *mv) {
  buf_puts(b, "{model=\"");
  put_label(b, mv->model->name);
  buf_puts(b, "\",version=\"");
  buf_put_i64(b, mv->version);
  buf_putc(b, '"');
}

static void put_sample(buf *b, int m, const model_version *mv, uint64_t v) {
  buf_puts(b, metrics[m].name);
  put_labels(b, mv);
  buf_puts(b, "} ");
  buf_put_u64(b, v);
  buf_putc(b, '\n');
}

static void put_histogram(buf *b, const model_version *mv) {
  const model_stats *s = &mv->stats;
  uint64_t cumulative = 0;
  for (int i = 0; i <= STATS_BUCKETS; i++) {
    cumulative += stat_load(&s->request_hist[i]);
    buf_puts(b, "inferd_inference_request_duration_seconds_bucket");
    put_labels(b, mv);
    if (i < STATS_BUCKETS)
      buf_printf(b, ",le=\"%g\"} ", stats_bucket_us[i] / 1e6);
    else
      buf_puts(b, ",le=\"+Inf\"} ");
    buf_put_u64(b, cumulative);
    buf_putc(b, '\n');
  }
  buf_puts(b, "inferd_inference_request_duration_seconds_sum");
  put_labels(b, mv);
  buf_printf(b, "} %.9f\n", (double)stat_load(&s->request_ns) / 1e9);
  buf_puts(b, "inferd_inference_request_duration_seconds_count");
  put_labels(b, mv);
  buf_puts(b, "} ");
  buf_put_u64(b, cumulative);
  buf_putc(b, '\n');
}

/* Executions by batch size, as a histogram over powers of two. */
static void put_batch_histogram(buf *b, const model_version *mv) {
  const model_stats *s = &mv->stats;
  uint64_t cumulative = 0, rows = 0;
  int top = s->max_batch > 0 ? s->max_batch : 1;
  for (int le = 1;; le *= 2) {
    for (int k = le / 2 + 1; k <= le && k <= top; k++) {
      uint64_t n = stat_load(&s->batch[s->max_batch > 0 ? k : 0].compute_infer.count);
      cumulative += n;
      rows += n * (uint64_t)k;
    }
    buf_puts(b, "inferd_inference_batch_size_bucket");
    put_labels(b, mv);
    buf_printf(b, ",le=\"%d\"} ", le);
    buf_put_u64(b, cumulative);
    buf_putc(b, '\n');
    if (le >= top) break;
  }
  buf_puts(b, "inferd_inference_batch_size_bucket");
  put_labels(b, mv);
  buf_puts(b, ",le=\"+Inf\"} ");
  buf_put_u64(b, cumulative);
  buf_puts(b, "\ninferd_inference_batch_size_sum");
  put_labels(b, mv);
  buf_puts(b, "} ");
  buf_put_u64(b, rows);
  buf_puts(b, "\ninferd_inference_batch_size_count");
  put_labels(b, mv);
  buf_puts(b, "} ");
  buf_put_u64(b, cumulative);
  buf_putc(b, '\n');
}

static void put_instances(buf *b, const model_version *mv) {
  for (int i = 0; i < mv->n_instances; i++) {
    buf_puts(b, "inferd_instance_busy_seconds_total");
    put_labels(b, mv);
    buf_printf(b, ",instance=\"%d\"} %.6f\n", i,
               (double)stat_load(&mv->instances[i].busy_ns) / 1e9);
  }
}

static void put_version(buf *b, int m, const model_version *mv) {
  const model_stats *s = &mv->stats;
  switch (m) {
  case M_SUCCESS: put_sample(b, m, mv, stat_load(&s->success.count)); break;
  case M_FAILURE: put_sample(b, m, mv, stat_load(&s->fail.count)); break;
  case M_COUNT: put_sample(b, m, mv, stat_load(&s->inference_count)); break;
  case M_EXEC: put_sample(b, m, mv, stat_load(&s->execution_count)); break;
  case M_REQUEST_US: put_sample(b, m, mv, stat_load(&s->success.ns) / 1000); break;
  case M_QUEUE_US: put_sample(b, m, mv, stat_load(&s->queue.ns) / 1000); break;
  case M_INPUT_US: put_sample(b, m, mv, stat_load(&s->compute_input.ns) / 1000); break;
  case M_INFER_US: put_sample(b, m, mv, stat_load(&s->compute_infer.ns) / 1000); break;
  case M_OUTPUT_US: put_sample(b, m, mv, stat_load(&s->compute_output.ns) / 1000); break;
  case M_IN_FLIGHT: {
    int n = atomic_load(&s->in_flight);
    put_sample(b, m, mv, n > 0 ? (uint64_t)n : 0);
    break;
  }
  case M_MEMORY: put_sample(b, m, mv, mv->memory_bytes); break;
  case M_QUEUE_SIZE: put_sample(b, m, mv, sched_queued(mv)); break;
  case M_INSTANCE_BUSY: put_instances(b, mv); break;
  case M_DURATION: put_histogram(b, mv); break;
  case M_BATCH: put_batch_histogram(b, mv); break;
  }
}

typedef struct walk {
  buf *b;
  int metric;
} walk;

static void each_version(const char *name, model *m, void *arg) {
  walk *w = arg;
  if (!m) return;
  for (size_t i = 0; i < m->n_versions; i++)
    if (atomic_load(&m->versions[i]->state) == MODEL_READY)
      put_version(w->b, w->metric, m->versions[i]);
}

/* Resident and virtual size from /proc/self/statm. */
static void put_process(buf *b) {
  unsigned long long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%llu %llu", &size, &resident) != 2) size = resident = 0;
    fclose(f);
  }
  unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
  buf_puts(b, "# HELP inferd_process_resident_memory_bytes Resident memory of the server\n"
              "# TYPE inferd_process_resident_memory_bytes gauge\n"
              "inferd_process_resident_memory_bytes ");
  buf_put_u64(b, resident * page);
  buf_puts(b, "\n# HELP inferd_process_virtual_memory_bytes Virtual memory of the server\n"
              "# TYPE inferd_process_virtual_memory_bytes gauge\n"
              "inferd_process_virtual_memory_bytes ");
  buf_put_u64(b, size * page);
  buf_putc(b, '\n');
}

void metrics_handle(http_request *req, void *ctx) {
  server *s = ctx;
  if (!(req->head.path_len == 8 && memcmp(req->head.path, "/metrics", 8) == 0)) {
    http_set_error(req, 404, "Not Found");
    http_respond(req);
    return;
  }
  if (req->head.method != HTTP_GET && req->head.method != HTTP_HEAD) {
    http_set_error(req, 405, "Method Not Allowed");
    http_respond(req);
    return;
  }
  buf *b = &req->out;
  for (int m = 0; m < M_N; m++) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help, metrics[m].name,
               metrics[m].type);
    walk w = {b, m};
    repo_each(s->repo, false, each_version, &w);
  }
  put_process(b);
  req->content_type = "text/plain; version=0.0.4; charset=utf-8";
  http_respond(req);
}
