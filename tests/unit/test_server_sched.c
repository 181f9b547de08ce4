/* Unit tests for sched/: many threads submitting to a model with several
 * instances and the dynamic batcher, against an in-test backend that copies
 * its input (with a little work to make batches form). Every request must
 * come back once, with its own rows; batches must form; the statistics must
 * add up. Built and run under ThreadSanitizer too (make test-tsan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/model_config.h"
#include "sched/sched.h"

/* ---- a backend that copies input 0 to output 0 -------------------------- */

static int load(const inferd_model_desc *d, void **m, char *msg, size_t n) {
  *m = (void *)d;
  return 0;
}
static void unload(void *m) {}
static int create(void *m, int i, void **inst, char *msg, size_t n) {
  *inst = m;
  return 0;
}
static void destroy(void *inst) {}
static atomic_int executions;
static int execute(void *inst, inferd_exec *x) {
  atomic_fetch_add(&executions, 1);
  struct timespec ts = {0, 200000}; /* 0.2 ms: long enough for queues to build */
  nanosleep(&ts, NULL);
  inferd_tensor *o = &x->outputs[0];
  o->ndim = x->inputs[0].ndim;
  memcpy(o->shape, x->inputs[0].shape, sizeof o->shape);
  o->byte_size = x->inputs[0].byte_size;
  o->data = x->alloc(x, o->byte_size);
  memcpy(o->data, x->inputs[0].data, o->byte_size);
  return 0;
}
static const inferd_backend copy_backend = {.api_version = INFERD_BACKEND_API_VERSION,
                                            .name = "copy",
                                            .model_load = load,
                                            .model_unload = unload,
                                            .instance_create = create,
                                            .instance_destroy = destroy,
                                            .execute = execute};

/* ---- a model version made by hand --------------------------------------- */

typedef struct fixture {
  model m;
  model_version mv;
  model_version *versions[1];
} fixture;

static void make(fixture *f, const char *cfg_text, int instances) {
  memset(f, 0, sizeof *f);
  err e = {0};
  f->m.config = model_config_parse(cfg_text, strlen(cfg_text), &e);
  if (!f->m.config) fail_msg("%s", e.msg);
  assert_int_equal(model_config_normalize(f->m.config, &e), 0);
  f->m.name = "m";
  atomic_init(&f->m.refs, 1);
  f->versions[0] = &f->mv;
  f->m.versions = f->versions;
  f->m.n_versions = 1;
  f->mv.model = &f->m;
  f->mv.version = 1;
  f->mv.backend = &copy_backend;
  f->mv.n_instances = instances;
  f->mv.instances = calloc((size_t)instances, sizeof *f->mv.instances);
  for (int i = 0; i < instances; i++) {
    f->mv.instances[i].index = i;
    f->mv.instances[i].scratch = arena_create(1 << 16);
  }
  assert_int_equal(stats_init(&f->mv.stats, f->m.config->max_batch_size), 0);
  assert_int_equal(sched_model_start(&f->mv, &e), 0);
}

static void unmake(fixture *f) {
  sched_model_stop(&f->mv);
  for (int i = 0; i < f->mv.n_instances; i++)
    arena_destroy(f->mv.instances[i].scratch);
  free(f->mv.instances);
  stats_free(&f->mv.stats);
  model_config_free(f->m.config);
}

/* ---- the jobs -------------------------------------------------------------- */

#define THREADS    4
#define PER_THREAD 300

typedef struct job_ctx {
  sched_job job;
  infer_request req;
  infer_input in;
  arena *a;
  float value;
  int64_t rows;
  atomic_int *done;
  atomic_int *wrong;
} job_ctx;

static void on_done(sched_job *job) {
  job_ctx *x = job->user;
  bool ok =
      job->status == 0 && job->res.n_outputs == 1 && job->res.outputs[0].t.shape[0] == x->rows;
  for (int64_t i = 0; ok && i < x->rows * 4; i++)
    ok = ((const float *)job->res.outputs[0].t.data)[i] == x->value;
  if (!ok) atomic_fetch_add(x->wrong, 1);
  atomic_fetch_add(x->done, 1);
}

typedef struct thread_arg {
  fixture *f;
  int id;
  job_ctx *jobs;
  atomic_int *done, *wrong;
} thread_arg;

static void *submitter(void *p) {
  thread_arg *t = p;
  for (int i = 0; i < PER_THREAD; i++) {
    job_ctx *x = &t->jobs[i];
    x->a = arena_create(4096);
    x->rows = 1 + (i % 3);
    x->value = (float)(t->id * PER_THREAD + i);
    x->done = t->done;
    x->wrong = t->wrong;
    float *data = arena_alloc(x->a, (size_t)x->rows * 4 * sizeof(float));
    for (int k = 0; k < x->rows * 4; k++)
      data[k] = x->value;
    x->in.t = (inferd_tensor){.name = "INPUT0",
                              .dtype = INFERD_TYPE_FP32,
                              .ndim = 2,
                              .shape = {x->rows, 4},
                              .data = data,
                              .byte_size = (size_t)x->rows * 4 * sizeof(float)};
    x->req = (infer_request){.arena = x->a, .model_name = "m", .n_inputs = 1, .inputs = &x->in};
    x->job = (sched_job){.mv = &t->f->mv, .req = &x->req, .done = on_done, .user = x};
    sched_submit(&x->job);
    if (i % 50 == 0) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

static void stress(const char *config, int instances, bool expect_batches) {
  fixture f;
  make(&f, config, instances);
  atomic_int done = 0, wrong = 0;
  atomic_store(&executions, 0);
  pthread_t threads[THREADS];
  thread_arg args[THREADS];
  for (int t = 0; t < THREADS; t++) {
    args[t] = (thread_arg){&f, t, calloc(PER_THREAD, sizeof(job_ctx)), &done, &wrong};
    pthread_create(&threads[t], NULL, submitter, &args[t]);
  }
  for (int t = 0; t < THREADS; t++)
    pthread_join(threads[t], NULL);
  for (int spin = 0; atomic_load(&done) < THREADS * PER_THREAD && spin < 30000; spin++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(atomic_load(&done), THREADS * PER_THREAD);
  assert_int_equal(atomic_load(&wrong), 0);
  int64_t rows = 0;
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < PER_THREAD; i++)
      rows += args[t].jobs[i].rows;
  assert_int_equal(stat_load(&f.mv.stats.inference_count), rows);
  assert_int_equal(stat_load(&f.mv.stats.execution_count), atomic_load(&executions));
  if (expect_batches) assert_true(atomic_load(&executions) < THREADS * PER_THREAD);
  unmake(&f);
  for (int t = 0; t < THREADS; t++) {
    for (int i = 0; i < PER_THREAD; i++)
      arena_destroy(args[t].jobs[i].a);
    free(args[t].jobs);
  }
}

static void batching_two_instances(void **state) {
  stress("name: \"m\" backend: \"copy\" max_batch_size: 8\n"
         "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
         "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
         "instance_group [ { count: 2 kind: KIND_CPU } ]\n"
         "dynamic_batching { max_queue_delay_microseconds: 500 preferred_batch_size: [ 4, 8 ] }\n",
         2, true);
}

static void no_batching_three_instances(void **state) {
  stress("name: \"m\" backend: \"copy\" max_batch_size: 8\n"
         "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
         "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
         "instance_group [ { count: 3 kind: KIND_CPU } ]\n",
         3, false);
}

static void priorities_and_cancellation(void **state) {
  fixture f;
  make(&f,
       "name: \"m\" backend: \"copy\" max_batch_size: 8\n"
       "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
       "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n"
       "dynamic_batching { priority_levels: 2 default_queue_policy { max_queue_size: 1000 } }\n",
       1);
  atomic_int done = 0, wrong = 0;
  job_ctx x = {.rows = 1, .value = 1, .done = &done, .wrong = &wrong};
  x.a = arena_create(4096);
  float data[4] = {1, 1, 1, 1};
  x.in.t = (inferd_tensor){.name = "INPUT0",
                           .dtype = INFERD_TYPE_FP32,
                           .ndim = 2,
                           .shape = {1, 4},
                           .data = data,
                           .byte_size = sizeof data};
  x.req = (infer_request){.arena = x.a, .model_name = "m", .n_inputs = 1, .inputs = &x.in};
  x.job = (sched_job){.mv = &f.mv, .req = &x.req, .done = on_done, .user = &x, .priority = 3};
  sched_submit(&x.job); /* out of range: answered at once */
  assert_int_equal(x.job.status, -EINVAL);
  assert_false(x.job.async);
  unmake(&f);
  arena_destroy(x.a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batching_two_instances),
      cmocka_unit_test(no_batching_three_instances),
      cmocka_unit_test(priorities_and_cancellation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
