/* server/infer.c: the inference core shared by the front doors. */
#include "server/infer.h"

#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/validate.h"
#include "server/classify.h"
#include "server/server.h"

#define ARENA_FIRST (64 << 10)
#define ARENA_POOL  16

/* Arenas are reused per network thread: a call takes one and gives it back,
 * reset, when its answer has been written. */
static _Thread_local arena *arena_pool[ARENA_POOL];
static _Thread_local int arena_pool_n;

arena *infer_arena_take(void) {
  if (arena_pool_n) return arena_pool[--arena_pool_n];
  return arena_create(ARENA_FIRST);
}

void infer_arena_give(arena *a) {
  if (!a) return;
  arena_reset(a);
  if (arena_pool_n < ARENA_POOL)
    arena_pool[arena_pool_n++] = a;
  else
    arena_destroy(a);
}

void infer_thread_exit(void) {
  while (arena_pool_n)
    arena_destroy(arena_pool[--arena_pool_n]);
}

infer_call *infer_call_new(server *s, loop *l) {
  uint64_t now = clock_ns();
  arena *a = infer_arena_take();
  infer_call *c = a ? arena_calloc(a, 1, sizeof *c) : NULL;
  if (!c) {
    infer_arena_give(a);
    return NULL;
  }
  c->s = s;
  c->loop = l;
  c->arena = a;
  c->received_ns = now;
  c->req.arena = a;
  c->req.model_version = -1;
  return c;
}

int infer_call_model(infer_call *c, const char *name, int64_t version) {
  c->mv = repo_acquire(c->s->repo, name, version, &c->err);
  if (!c->mv) return c->err.code;
  atomic_fetch_add(&c->mv->stats.in_flight, 1);
  c->req.model_name = c->mv->model->name;
  c->req.model_version = version;
  return 0;
}

void infer_call_failed(infer_call *c) {
  if (c->mv) stat_add(&c->mv->stats.fail, clock_ns() - c->received_ns);
}

void infer_call_end(infer_call *c) {
  if (c->mv) {
    atomic_fetch_sub(&c->mv->stats.in_flight, 1);
    model_version_release(c->mv);
  }
  infer_arena_give(c->arena);
}

void infer_call_cancel(infer_call *c) { sched_cancel(&c->job); }

/* After the model ran, on the call's network thread: post-processing,
 * statistics, the front door. */
static void finish(void *arg) {
  infer_call *c = arg;
  sched_job *job = &c->job;
  c->status = job->status;
  if (c->status == 0) {
    c->status = classify_outputs(c->mv, &c->req, &job->res, &c->err);
  } else {
    c->err = job->err;
  }
  uint64_t ns = clock_ns() - c->received_ns;
  if (c->status == 0) {
    c->res = &job->res;
    stat_add(&c->mv->stats.success, ns);
    stats_observe_request(&c->mv->stats, ns);
  } else {
    stat_add(&c->mv->stats.fail, ns);
  }
  c->done(c);
}

/* A request that ran on a worker thread goes back to its network thread,
 * which is woken once for all the requests of a batch. */
static void job_done(sched_job *job) {
  infer_call *c = job->user;
  if (!job->async) {
    finish(c);
    return;
  }
  bool last = !job->more; /* read first: once posted, c belongs to its loop */
  c->back.fn = finish;
  c->back.arg = c;
  c->back.owned = false;
  loop_post_call_held(c->loop, &c->back);
  if (last) loop_wake_held();
}

/* The scheduling parameters of a request: `priority` (0: the model's
 * default level) and `timeout` in microseconds; sequence batching is not
 * supported, so its parameters are refused rather than ignored. */
static int schedule_params(infer_call *c) {
  const param_list *p = &c->req.params;
  int64_t v;
  const param *pr = param_find(p, "priority");
  if (pr) {
    if (!param_int(pr, &v) || v < 0)
      return err_set(&c->err, -EINVAL, "parameter 'priority' must be a whole number >= 0");
    c->job.priority = (uint64_t)v;
  }
  const param *to = param_find(p, "timeout");
  if (to) {
    if (!param_int(to, &v) || v < 0)
      return err_set(&c->err, -EINVAL,
                     "parameter 'timeout' must be a whole number of microseconds >= 0");
    c->job.timeout_us = (uint64_t)v;
  }
  static const char *const sequence[] = {"sequence_id", "sequence_start", "sequence_end"};
  for (size_t i = 0; i < 3; i++)
    if (param_find(p, sequence[i]))
      return err_set(&c->err, -EINVAL, "parameter '%s': model '%s' does not use sequence batching",
                     sequence[i], c->mv->model->name);
  return 0;
}

void infer_call_run(infer_call *c) {
  c->status = validate_request(c->mv->model->config, &c->req, &c->err);
  if (c->status == 0) c->status = schedule_params(c);
  if (c->status == 0 && c->deadline_ns && clock_ns() > c->deadline_ns)
    c->status = err_set(&c->err, -ETIMEDOUT, "the deadline passed before the request ran");
  if (c->status < 0) {
    infer_call_failed(c);
    c->done(c);
    return;
  }
  c->job.mv = c->mv;
  c->job.req = &c->req;
  c->job.received_ns = c->received_ns;
  c->job.deadline_ns = c->deadline_ns;
  c->job.done = job_done;
  c->job.user = c;
  sched_submit(&c->job);
}
