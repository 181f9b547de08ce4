/* server/infer.c: the inference core shared by the front doors. */
#include "server/infer.h"

#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "server/classify.h"
#include "server/server.h"
#include "server/validate.h"

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

infer_call *infer_call_new(server *s) {
  uint64_t now = clock_ns();
  arena *a = infer_arena_take();
  infer_call *c = a ? arena_calloc(a, 1, sizeof *c) : NULL;
  if (!c) {
    infer_arena_give(a);
    return NULL;
  }
  c->s = s;
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

/* After the model ran: post-processing, statistics, the front door. */
static void job_done(sched_job *job) {
  infer_call *c = job->user;
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

void infer_call_run(infer_call *c) {
  c->status = validate_request(c->mv->model->config, &c->req, &c->err);
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
