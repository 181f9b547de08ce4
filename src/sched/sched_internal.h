/* sched/sched_internal.h: what the scheduler's files share (sched.c runs
 * queues and instance threads; exec.c runs a batch on an instance). */
#ifndef INFERD_SCHED_INTERNAL_H
#define INFERD_SCHED_INTERNAL_H

#include "sched/sched.h"

/* Rows of a request along the batch dimension (1 without batching). */
int64_t sched_rows(const model_config *c, const infer_request *req);

/* Runs jobs[0..n) as one batch on inst (which the caller has taken): sets
 * each job's status, err and res, and records the statistics. */
void sched_execute(model_version *mv, instance *inst, sched_job **jobs, int n);

#endif
