/* server/infer.h: the inference core that every front door (v2 REST, gRPC)
 * hands its decoded request to: the model reference, validation,
 * scheduling, post-processing (classification) and statistics.
 *
 * A front door makes a call (infer_call_new, on its network thread), sets
 * the model (infer_call_model), decodes into call->req, and starts it
 * (infer_call_run). The call's done callback runs on the same network
 * thread (a request that ran on an instance's worker thread comes back
 * through the loop) with call->status 0 and call->res filled, or an error in
 * call->err; the front door encodes and answers, and ends the call
 * (infer_call_end) once its answer no longer points into the call's memory.
 * A front door whose client leaves cancels the call (infer_call_cancel): a
 * call still queued is then answered without running. */
#ifndef INFERD_SERVER_INFER_H
#define INFERD_SERVER_INFER_H

#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/request.h"
#include "net/loop.h"
#include "repo/repo.h"
#include "sched/sched.h"

typedef struct server server;

typedef struct infer_call infer_call;
struct infer_call {
  server *s;
  loop *loop;   /* the front door's network thread */
  arena *arena; /* the request's memory: everything below lives in it */
  model_version *mv;
  infer_request req;
  infer_response *res; /* on success */
  int status;
  err err;
  uint64_t received_ns;
  uint64_t deadline_ns; /* 0: none (gRPC's grpc-timeout sets one) */
  bool cancelled;       /* the client went away: skip the work if not started */
  sched_job job;
  loop_call back; /* the way home from a worker thread */
  void (*done)(infer_call *c);
  void *user;
};

/* A call with its arena (NULL when out of memory), answered on loop l. */
infer_call *infer_call_new(server *s, loop *l);
/* Takes a reference on the model version to run (version -1: the default
 * one). -ENOENT / -EAGAIN / -EINVAL with a message. */
int infer_call_model(infer_call *c, const char *name, int64_t version);
/* Validates and runs the request; calls c->done exactly once. */
void infer_call_run(infer_call *c);
/* Any thread: the client has gone. */
void infer_call_cancel(infer_call *c);
/* Records a failure that happened before the run (a request that did not
 * decode) in the model's statistics. */
void infer_call_failed(infer_call *c);
/* Releases the model and the arena. */
void infer_call_end(infer_call *c);

/* Arenas of the network thread, reused from request to request. */
arena *infer_arena_take(void);
void infer_arena_give(arena *a);
/* Frees the thread's spare arenas; called as a network thread exits. */
void infer_thread_exit(void);

#endif
