/* sched/stats.h: per model-version counters and durations, cumulative since
 * load, updated lock-free by whichever thread ran the request. They feed the
 * statistics extension and the Prometheus metrics. */
#ifndef INFERD_SCHED_STATS_H
#define INFERD_SCHED_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct stat_duration {
  atomic_uint_fast64_t count;
  atomic_uint_fast64_t ns;
} stat_duration;

/* Request-duration histogram buckets, in microseconds (Prometheus `le`). */
#define STATS_BUCKETS 14
extern const double stats_bucket_us[STATS_BUCKETS];

typedef struct batch_stats {
  stat_duration compute_input, compute_infer, compute_output;
} batch_stats;

typedef struct model_stats {
  atomic_uint_fast64_t inference_count;   /* requests (batch rows) answered */
  atomic_uint_fast64_t execution_count;   /* backend executions */
  atomic_uint_fast64_t last_inference_ms; /* wall clock, ms since the epoch */
  atomic_int in_flight;
  stat_duration success, fail, queue, compute_input, compute_infer, compute_output;
  atomic_uint_fast64_t request_hist[STATS_BUCKETS + 1]; /* last: +Inf */
  atomic_uint_fast64_t request_ns;                      /* sum for the histogram */
  int max_batch;      /* batch_stats has max_batch + 1 entries, by batch size */
  batch_stats *batch; /* index 0 serves models without batching */
} model_stats;

static inline void stat_add(stat_duration *d, uint64_t ns) {
  atomic_fetch_add_explicit(&d->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&d->ns, ns, memory_order_relaxed);
}

static inline uint64_t stat_load(const atomic_uint_fast64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* Allocates the per-batch-size table; -ENOMEM on failure. */
int stats_init(model_stats *s, int max_batch);
void stats_free(model_stats *s);
/* Records a finished request of `ns` nanoseconds in the histogram. */
void stats_observe_request(model_stats *s, uint64_t ns);

#endif
