/* sched/sched.c: the queue of a model version, its instance worker threads,
 * the dynamic batcher and the fast path (see sched.h for the contract).
 *
 * One mutex guards the queue; the worker threads wait on one condition
 * variable (with a timeout while a batch waits for its delay). An instance
 * is taken by an atomic flag, so that the fast path takes a free instance
 * without the queue's lock; a worker takes its own instance before it takes
 * jobs from the queue, and whoever frees an instance while jobs wait wakes
 * a worker. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "sched/sched_internal.h"

#define SCRATCH_FIRST (1 << 16)

typedef struct level {
  sched_job *head, *tail;
  size_t n;
  queue_policy policy;
} level;

typedef struct worker {
  sched_model *sm;
  instance *inst;
  pthread_t thread;
  bool started;
  sched_job **batch; /* room for max_batch jobs */
} worker;

struct sched_model {
  model_version *mv;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stopping;
  int n_levels; /* >= 1; level i holds priority i + 1 */
  int default_level;
  level *levels;
  sched_job *delayed, *delayed_tail; /* past their timeout, TIMEOUT_DELAY */
  atomic_size_t queued;
  int64_t queued_rows; /* rows of the queued jobs */
  int delay_waiters;   /* workers waiting for a forming batch's delay */
  bool batching;
  int max_batch; /* rows per batch */
  uint64_t delay_ns;
  const int64_t *preferred;
  size_t n_preferred;
  int n_workers;
  worker *workers;
};

/* ---- answers ----------------------------------------------------------------- */

static void answer(sched_job *job, int code, const char *msg) {
  if (code < 0) {
    job->status = code;
    err_set(&job->err, code, "%s", msg);
  }
  job->done(job);
}

/* ---- instances ------------------------------------------------------------------ */

static bool take(instance *inst) {
  bool expected = false;
  return atomic_compare_exchange_strong(&inst->busy, &expected, true);
}

/* Frees an instance; when jobs wait, a worker wakes to take it. */
static void give(sched_model *sm, instance *inst) {
  atomic_store(&inst->busy, false);
  if (atomic_load(&sm->queued)) {
    pthread_mutex_lock(&sm->lock);
    pthread_cond_broadcast(&sm->cond);
    pthread_mutex_unlock(&sm->lock);
  }
}

static void run_batch(sched_model *sm, instance *inst, sched_job **jobs, int n) {
  uint64_t t0 = clock_ns();
  sched_execute(sm->mv, inst, jobs, n);
  atomic_fetch_add_explicit(&inst->busy_ns, clock_ns() - t0, memory_order_relaxed);
}

/* ---- the queue ------------------------------------------------------------------ */

static void push(sched_job **head, sched_job **tail, sched_job *job) {
  job->next = NULL;
  if (*tail)
    (*tail)->next = job;
  else
    *head = job;
  *tail = job;
}

/* Whether two requests can share a batch: the same inputs present, with
 * the same shape apart from the batch dimension. */
static bool compatible(const model_config *c, const infer_request *a, const infer_request *b) {
  if (a->n_inputs != b->n_inputs) return false;
  for (size_t i = 0; i < a->n_inputs; i++) {
    const inferd_tensor *x = &a->inputs[i].t, *y = NULL;
    for (size_t k = 0; k < b->n_inputs && !y; k++)
      if (strcmp(b->inputs[k].t.name, x->name) == 0) y = &b->inputs[k].t;
    if (!y || x->ndim != y->ndim) return false;
    for (int d = 1; d < x->ndim; d++)
      if (x->shape[d] != y->shape[d]) return false;
  }
  (void)c;
  return true;
}

static bool preferred(const sched_model *sm, int64_t rows) {
  for (size_t i = 0; i < sm->n_preferred; i++)
    if (sm->preferred[i] == rows) return true;
  return false;
}

/* The next job in scheduling order after `job` (NULL: the first). */
static sched_job *next_in_order(sched_model *sm, sched_job *job, int *lv) {
  if (job && job->next) return job->next;
  if (!job)
    *lv = 0;
  else if (*lv < sm->n_levels)
    (*lv)++;
  for (; *lv < sm->n_levels; (*lv)++)
    if (sm->levels[*lv].head) return sm->levels[*lv].head;
  if (*lv == sm->n_levels) {
    (*lv)++;
    return sm->delayed; /* the expired ones run last */
  }
  return NULL;
}

/* Removes job from whichever list holds it. */
static void unlink_job(sched_model *sm, sched_job *job) {
  sched_job **head, **tail;
  if (job->expired) {
    head = &sm->delayed;
    tail = &sm->delayed_tail;
  } else {
    level *l = &sm->levels[job->level];
    head = &l->head;
    tail = &l->tail;
    l->n--;
  }
  sched_job *prev = NULL;
  for (sched_job *j = *head; j; prev = j, j = j->next) {
    if (j != job) continue;
    if (prev)
      prev->next = j->next;
    else
      *head = j->next;
    if (*tail == j) *tail = prev;
    break;
  }
  job->next = NULL;
  sm->queued_rows -= job->rows;
  atomic_fetch_sub(&sm->queued, 1);
}

/* Takes out the jobs that must not run: cancelled, or past a deadline
 * (those of a TIMEOUT_DELAY queue move to the back instead). */
static sched_job *purge(sched_model *sm, uint64_t now) {
  sched_job *dropped = NULL;
  for (int lv = 0; lv < sm->n_levels; lv++) {
    for (sched_job *j = sm->levels[lv].head, *next; j; j = next) {
      next = j->next;
      bool hard = j->deadline_ns && now > j->deadline_ns;
      bool soft = j->timeout_us && now > j->enqueued_ns + j->timeout_us * 1000;
      if (!atomic_load(&j->cancelled) && !hard && !soft) continue;
      unlink_job(sm, j);
      if (!hard && soft && !atomic_load(&j->cancelled) &&
          sm->levels[lv].policy.timeout_action == TIMEOUT_DELAY) {
        j->expired = true;
        push(&sm->delayed, &sm->delayed_tail, j);
        sm->queued_rows += j->rows;
        atomic_fetch_add(&sm->queued, 1);
        continue;
      }
      j->next = dropped;
      dropped = j;
    }
  }
  for (sched_job *j = sm->delayed, *next; j; j = next) {
    next = j->next;
    if (!atomic_load(&j->cancelled) && !(j->deadline_ns && now > j->deadline_ns)) continue;
    unlink_job(sm, j);
    j->next = dropped;
    dropped = j;
  }
  return dropped;
}

static void answer_dropped(sched_job *dropped) {
  while (dropped) {
    sched_job *j = dropped;
    dropped = j->next;
    j->async = true;
    if (atomic_load(&j->cancelled))
      answer(j, -ECANCELED, "the client went away before the request ran");
    else
      answer(j, -ETIMEDOUT, "the request timed out in the queue before it ran");
  }
}

/* Forms the next batch (Triton's dynamic batcher): the first job in order,
 * then those after it that fit (rows up to max_batch, compatible shapes).
 * It runs now when it is full, when there is no delay, when the first job
 * has waited the delay, or when it has a preferred size and nothing more
 * could join; otherwise *wait_until says when to look again. */
static int pick(sched_model *sm, uint64_t now, sched_job **out, uint64_t *wait_until) {
  int lv;
  sched_job *first = next_in_order(sm, NULL, &lv);
  *wait_until = 0;
  if (!first) return 0;
  if (!sm->batching) {
    unlink_job(sm, first);
    out[0] = first;
    return 1;
  }
  const model_config *c = sm->mv->model->config;
  int n = 0;
  int64_t rows = 0;
  bool more = false;
  int jlv = lv;
  for (sched_job *j = first; j; j = next_in_order(sm, j, &jlv)) {
    if (n == sm->max_batch || rows + j->rows > sm->max_batch ||
        !compatible(c, first->req, j->req)) {
      more = true;
      break;
    }
    out[n++] = j;
    rows += j->rows;
  }
  bool full = rows >= sm->max_batch;
  bool waited = now >= first->enqueued_ns + sm->delay_ns;
  bool ready =
      full || sm->delay_ns == 0 || waited || (preferred(sm, rows) && !more) || first->expired;
  if (!ready) {
    *wait_until = first->enqueued_ns + sm->delay_ns;
    return 0;
  }
  for (int i = 0; i < n; i++)
    unlink_job(sm, out[i]);
  return n;
}

static void timed_wait(sched_model *sm, uint64_t until_ns) {
  struct timespec now_mono, ts;
  clock_gettime(CLOCK_MONOTONIC, &now_mono);
  uint64_t now = (uint64_t)now_mono.tv_sec * 1000000000u + (uint64_t)now_mono.tv_nsec;
  uint64_t wait = until_ns > now ? until_ns - now : 0;
  clock_gettime(CLOCK_REALTIME, &ts); /* the condition variable's clock */
  uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + wait;
  ts.tv_sec = (time_t)(t / 1000000000u);
  ts.tv_nsec = (long)(t % 1000000000u);
  pthread_cond_timedwait(&sm->cond, &sm->lock, &ts);
}

/* An instance's worker: takes batches from the queue and runs them. */
static void *work(void *arg) {
  worker *w = arg;
  sched_model *sm = w->sm;
  /* A batch's delay is timed in microseconds; the default timer slack
   * (50 µs) would stretch a 100 µs delay by half. */
  prctl(PR_SET_TIMERSLACK, 1000UL);
  pthread_mutex_lock(&sm->lock);
  while (!sm->stopping) {
    uint64_t now = clock_ns();
    sched_job *dropped = purge(sm, now);
    if (dropped) {
      pthread_mutex_unlock(&sm->lock);
      answer_dropped(dropped);
      pthread_mutex_lock(&sm->lock);
      continue;
    }
    if (atomic_load(&sm->queued) == 0 || !take(w->inst)) {
      pthread_cond_wait(&sm->cond, &sm->lock);
      continue;
    }
    uint64_t until;
    int n = pick(sm, now, w->batch, &until);
    if (n == 0) {
      atomic_store(&w->inst->busy, false);
      if (until) {
        sm->delay_waiters++;
        timed_wait(sm, until);
        sm->delay_waiters--;
      } else
        pthread_cond_wait(&sm->cond, &sm->lock);
      continue;
    }
    pthread_mutex_unlock(&sm->lock);
    for (int i = 0; i < n; i++)
      w->batch[i]->async = true;
    run_batch(sm, w->inst, w->batch, n);
    give(sm, w->inst);
    for (int i = 0; i < n; i++) {
      w->batch[i]->more = i + 1 < n;
      w->batch[i]->done(w->batch[i]);
    }
    pthread_mutex_lock(&sm->lock);
  }
  pthread_mutex_unlock(&sm->lock);
  return NULL;
}

/* ---- the model ------------------------------------------------------------------- */

int sched_model_start(model_version *mv, err *e) {
  const model_config *c = mv->model->config;
  sched_model *sm = calloc(1, sizeof *sm);
  if (!sm) return err_set(e, -ENOMEM, "out of memory");
  sm->mv = mv;
  pthread_mutex_init(&sm->lock, NULL);
  pthread_cond_init(&sm->cond, NULL);
  atomic_init(&sm->queued, 0);
  const dynamic_batching *db = &c->dynamic_batching;
  sm->batching = c->has_dynamic_batching && c->max_batch_size > 0;
  sm->max_batch = c->max_batch_size > 0 ? c->max_batch_size : 1;
  sm->delay_ns = c->has_dynamic_batching ? db->max_queue_delay_us * 1000 : 0;
  sm->preferred = db->preferred_batch_size;
  sm->n_preferred = db->n_preferred;
  sm->n_levels = c->has_dynamic_batching && db->priority_levels > 1 ? (int)db->priority_levels : 1;
  sm->default_level = c->has_dynamic_batching && db->default_priority_level > 0
                          ? (int)db->default_priority_level - 1
                          : 0;
  if (sm->default_level >= sm->n_levels) sm->default_level = sm->n_levels - 1;
  sm->levels = calloc((size_t)sm->n_levels, sizeof *sm->levels);
  sm->workers = calloc((size_t)mv->n_instances, sizeof *sm->workers);
  mv->sched = sm;
  if (!sm->levels || !sm->workers) return err_set(e, -ENOMEM, "out of memory");
  for (int i = 0; i < sm->n_levels; i++) {
    if (c->has_dynamic_batching) sm->levels[i].policy = db->default_queue_policy;
    for (size_t k = 0; k < db->n_priority_policies; k++)
      if (db->priority_policies[k].level == (uint64_t)i + 1)
        sm->levels[i].policy = db->priority_policies[k].policy;
  }
  for (int i = 0; i < mv->n_instances; i++) {
    worker *w = &sm->workers[i];
    w->sm = sm;
    w->inst = &mv->instances[i];
    w->batch = calloc((size_t)sm->max_batch, sizeof *w->batch);
    if (!w->batch) return err_set(e, -ENOMEM, "out of memory");
    int rc = pthread_create(&w->thread, NULL, work, w);
    if (rc) return err_set(e, -rc, "cannot start the worker thread of instance %d", i);
    w->started = true;
    sm->n_workers = i + 1;
  }
  return 0;
}

void sched_model_stop(model_version *mv) {
  sched_model *sm = mv->sched;
  if (!sm) return;
  pthread_mutex_lock(&sm->lock);
  sm->stopping = true;
  pthread_cond_broadcast(&sm->cond);
  pthread_mutex_unlock(&sm->lock);
  for (int i = 0; i < sm->n_workers; i++)
    if (sm->workers[i].started) pthread_join(sm->workers[i].thread, NULL);
  /* Nothing normally waits here: queued requests hold the model. */
  int lv;
  sched_job *j;
  while ((j = next_in_order(sm, NULL, &lv))) {
    unlink_job(sm, j);
    j->async = true;
    answer(j, -EAGAIN, "the model was unloaded before the request ran");
  }
  for (int i = 0; sm->workers && i < mv->n_instances; i++)
    free(sm->workers[i].batch);
  free(sm->workers);
  free(sm->levels);
  pthread_cond_destroy(&sm->cond);
  pthread_mutex_destroy(&sm->lock);
  free(sm);
  mv->sched = NULL;
}

size_t sched_queued(const model_version *mv) {
  return mv->sched ? atomic_load(&mv->sched->queued) : 0;
}

/* ---- submitting ---------------------------------------------------------------- */

/* The fast path runs a request on the network thread that received it, which
 * serves no other connection meanwhile: it is for models known to be quick
 * (their executions so far average under INLINE_NS), where a thread hop
 * would cost more than the execution. A slow model's requests, and a new
 * model's first ones, go through the queue and the instance threads. */
#define INLINE_NS 100000

static bool fast(const model_version *mv) {
  const stat_duration *d = &mv->stats.compute_infer;
  uint64_t n = stat_load(&d->count);
  return n > 0 && stat_load(&d->ns) / n < INLINE_NS;
}

void sched_cancel(sched_job *job) { atomic_store(&job->cancelled, true); }

/* Whether a job just queued only joins a batch that a worker is already
 * waiting to run when its delay ends, without filling it: waking that worker
 * would only have it wait again. (With preferred sizes it is woken: the job
 * may complete one.) */
static bool joins_forming_batch(const sched_model *sm) {
  return sm->delay_waiters > 0 && sm->n_preferred == 0 && sm->queued_rows < sm->max_batch;
}

void sched_submit(sched_job *job) {
  model_version *mv = job->mv;
  sched_model *sm = mv->sched;
  job->res = (infer_response){
      .model_name = mv->model->name,
      .model_version = mv->version,
      .id = job->req->id,
  };
  job->status = 0;
  job->async = false;
  job->more = false;
  job->expired = false;
  job->enqueued_ns = 0;
  job->rows = sched_rows(mv->model->config, job->req);
  if (sm->n_levels > 1 && job->priority > (uint64_t)sm->n_levels) {
    char msg[160];
    snprintf(msg, sizeof msg, "priority %llu is out of range: model '%s' has levels 1 to %d",
             (unsigned long long)job->priority, mv->model->name, sm->n_levels);
    answer(job, -EINVAL, msg);
    return;
  }
  job->level = sm->n_levels > 1 && job->priority ? (int)job->priority - 1 : sm->default_level;
  const queue_policy *policy = &sm->levels[job->level].policy;
  /* The queue's default timeout; a request may only shorten it, and only
   * when the policy allows. */
  if (policy->default_timeout_us && !(job->timeout_us && policy->allow_timeout_override &&
                                      job->timeout_us < policy->default_timeout_us))
    job->timeout_us = policy->default_timeout_us;

  if (!sm->batching && atomic_load(&sm->queued) == 0 && fast(mv)) {
    for (int i = 0; i < mv->n_instances; i++) {
      instance *inst = &mv->instances[i];
      if (!take(inst)) continue;
      /* the fast path: a free instance, no queue, no thread hop */
      if (job->deadline_ns && clock_ns() > job->deadline_ns) {
        give(sm, inst);
        answer(job, -ETIMEDOUT, "the deadline passed before the request ran");
        return;
      }
      run_batch(sm, inst, &job, 1);
      give(sm, inst);
      job->done(job);
      return;
    }
  }

  pthread_mutex_lock(&sm->lock);
  if (sm->stopping) {
    pthread_mutex_unlock(&sm->lock);
    answer(job, -EAGAIN, "the model is being unloaded");
    return;
  }
  level *l = &sm->levels[job->level];
  if (l->policy.max_queue_size && l->n >= l->policy.max_queue_size) {
    pthread_mutex_unlock(&sm->lock);
    char msg[200];
    snprintf(msg, sizeof msg, "the queue of model '%s' is full (max_queue_size %u)",
             mv->model->name, l->policy.max_queue_size);
    answer(job, -EAGAIN, msg);
    return;
  }
  job->enqueued_ns = clock_ns();
  push(&l->head, &l->tail, job);
  l->n++;
  sm->queued_rows += job->rows;
  atomic_fetch_add(&sm->queued, 1);
  if (!joins_forming_batch(sm)) pthread_cond_signal(&sm->cond);
  pthread_mutex_unlock(&sm->lock);
}

int sched_run_now(model_version *mv, infer_request *req, infer_response *res, err *e) {
  instance *inst = NULL;
  while (!inst) {
    for (int i = 0; i < mv->n_instances && !inst; i++)
      if (take(&mv->instances[i])) inst = &mv->instances[i];
    if (!inst) sched_yield();
  }
  sched_job job = {.mv = mv, .req = req, .received_ns = clock_ns(), .quiet = true};
  job.res = (infer_response){.model_name = mv->model->name, .model_version = mv->version};
  job.rows = sched_rows(mv->model->config, req);
  sched_job *jobs[1] = {&job};
  run_batch(mv->sched, inst, jobs, 1);
  give(mv->sched, inst);
  *res = job.res;
  if (job.status < 0) *e = job.err;
  return job.status;
}
