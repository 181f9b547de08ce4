/* sched/stats.c: statistics tables. */
#include "sched/stats.h"

#include <errno.h>
#include <stdlib.h>

const double stats_bucket_us[STATS_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

int stats_init(model_stats *s, int max_batch) {
  s->max_batch = max_batch;
  s->batch = calloc((size_t)max_batch + 1, sizeof *s->batch);
  return s->batch ? 0 : -ENOMEM;
}

void stats_free(model_stats *s) {
  free(s->batch);
  s->batch = NULL;
}

void stats_observe_request(model_stats *s, uint64_t ns) {
  double us = (double)ns / 1000.0;
  int i = 0;
  while (i < STATS_BUCKETS && us > stats_bucket_us[i])
    i++;
  atomic_fetch_add_explicit(&s->request_hist[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->request_ns, ns, memory_order_relaxed);
}
