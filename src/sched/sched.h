/* sched/sched.h: runs requests on a model's instances: a queue per model
 * version with priority levels and queue policies (size, timeouts),
 * instance worker threads, Triton's dynamic batcher, and a fast path.
 *
 * A job is one request for one model version. sched_submit answers it by
 * calling job->done exactly once:
 *   - at once, on the caller's thread, when it is refused (queue full, bad
 *     priority) or when the fast path ran it: a quick model (its executions
 *     average under 100 µs) without dynamic batching, whose instance is
 *     free and queue empty, runs the request on the caller's thread, with no
 *     thread hop;
 *   - otherwise later, from an instance's worker thread (job->async is then
 *     true): queued requests run in priority order, then arrival order,
 *     batched along the batch dimension when the model has dynamic_batching.
 * A queued request whose deadline passes (request parameter `timeout`, the
 * queue policy's default timeout, or gRPC's grpc-timeout) or whose client
 * left (sched_cancel) is answered without running (-ETIMEDOUT, -ECANCELED);
 * with timeout_action DELAY an expired request runs after all others. */
#ifndef INFERD_SCHED_SCHED_H
#define INFERD_SCHED_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/request.h"
#include "repo/repo.h"

typedef struct sched_job sched_job;
struct sched_job {
  /* set by the caller */
  model_version *mv;  /* the caller's reference */
  infer_request *req; /* validated against mv's configuration */
  uint64_t received_ns;
  uint64_t deadline_ns; /* 0: none */
  uint64_t timeout_us;  /* the request's `timeout` parameter; 0: none */
  uint64_t priority;    /* the request's `priority` parameter; 0: the default level */
  bool quiet;           /* not counted in the statistics (model warmup) */
  void (*done)(sched_job *job);
  void *user;

  /* set by the scheduler */
  infer_response res; /* on success: the outputs asked for */
  int status;         /* 0 or a negative errno, with err */
  err err;
  bool async; /* done runs on a worker thread */
  bool more;  /* done runs next for another job of the same batch, on this thread */

  atomic_bool cancelled; /* the client left: set through sched_cancel */

  /* the scheduler's own */
  sched_job *next;
  uint64_t enqueued_ns;
  int64_t rows;
  int level;
  bool expired; /* TIMEOUT_DELAY: past its timeout, runs last */
};

/* Creates the version's queue and starts one worker thread per instance;
 * call once its instances exist. */
int sched_model_start(model_version *mv, err *e);
/* Answers what is still queued with -EAGAIN and joins the threads. */
void sched_model_stop(model_version *mv);

void sched_submit(sched_job *job);
/* Any thread: the job's client has gone. */
void sched_cancel(sched_job *job);

/* Runs one request now on a free instance (waiting for one), outside the
 * queue; for model warmup. */
int sched_run_now(model_version *mv, infer_request *req, infer_response *res, err *e);

/* Requests waiting in the version's queue now. */
size_t sched_queued(const model_version *mv);

#endif
