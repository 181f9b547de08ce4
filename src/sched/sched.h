/* sched/sched.h: runs requests on a model's instances.
 *
 * A job is one request for one model version. sched_submit runs it on a free
 * instance and calls job->done exactly once, on the thread that finished
 * it, which may be the caller's own thread before sched_submit returns (a
 * free instance runs the request at once, without a thread hop). */
#ifndef INFERD_SCHED_SCHED_H
#define INFERD_SCHED_SCHED_H

#include <stdint.h>

#include "core/err.h"
#include "core/request.h"
#include "repo/repo.h"

typedef struct sched_job sched_job;
struct sched_job {
  model_version *mv;  /* the caller's reference */
  infer_request *req; /* validated against mv's configuration */
  infer_response res; /* filled on success: the outputs asked for */
  int status;         /* 0 or a negative errno, with err */
  err err;
  uint64_t received_ns; /* when the request arrived, for statistics */
  uint64_t deadline_ns; /* 0: none; past it the request is not run (-ETIMEDOUT) */
  void (*done)(sched_job *job);
  void *user;
};

void sched_submit(sched_job *job);

#endif
