/* sched/sched.c: picking an instance, calling the backend's execute, and
 * turning what it produced into the response's outputs. */
#include "sched/sched.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/dtype.h"

/* exec->alloc: output memory lives in the request's arena. */
static void *exec_alloc(inferd_exec *exec, size_t bytes) {
  return arena_alloc_aligned(exec->host, bytes ? bytes : 1, 64);
}

/* Resolves a -1 in dims from an element count: the shape becomes
 * [batch] + dims with the unknown dimension filled in. */
static int reshape_to(const int64_t *dims, int ndim, int64_t batch, int64_t elements,
                      inferd_tensor *t) {
  int n = 0, unknown = -1;
  int64_t known = 1;
  if (batch >= 0) {
    t->shape[n++] = batch;
    known = batch;
  }
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0) {
      if (unknown >= 0) return -EINVAL;
      unknown = n;
      t->shape[n++] = 1;
    } else {
      t->shape[n++] = dims[i];
      known *= dims[i];
    }
  }
  if (unknown >= 0) {
    if (known == 0 || elements % known) return -EINVAL;
    t->shape[unknown] = elements / known;
  } else if (known != elements) {
    return -EINVAL;
  }
  t->ndim = n;
  return 0;
}

static const infer_input *find_input(const infer_request *req, const char *name) {
  for (size_t i = 0; i < req->n_inputs; i++)
    if (strcmp(req->inputs[i].t.name, name) == 0) return &req->inputs[i];
  return NULL;
}

/* The inputs in the model's order, with reshape applied. */
static int prepare_inputs(const model_config *c, const infer_request *req, inferd_tensor *in,
                          int64_t *batch, err *e) {
  *batch = -1;
  for (size_t i = 0; i < c->n_inputs; i++) {
    const config_tensor *ct = &c->inputs[i];
    const infer_input *ri = find_input(req, ct->name);
    in[i] = (inferd_tensor){.name = ct->name, .dtype = ct->dtype};
    if (!ri) continue; /* an optional input left out: data NULL */
    in[i] = ri->t;
    in[i].name = ct->name;
    if (c->max_batch_size > 0) *batch = ri->t.shape[0];
    if (ct->has_reshape) {
      int64_t elements = shape_elements(ri->t.shape, ri->t.ndim);
      if (ct->dtype == INFERD_TYPE_BYTES) elements = bytes_count(ri->t.data, ri->t.byte_size);
      if (reshape_to(ct->reshape_dims, ct->reshape_ndim, c->max_batch_size > 0 ? *batch : -1,
                     elements, &in[i]) < 0)
        return err_set(e, -EINVAL, "input '%s' cannot be reshaped to the model's shape", ct->name);
    }
  }
  return 0;
}

/* Whether the client asked for output `name` (all, when it named none). */
static const infer_output_spec *wanted_spec(const infer_request *req, const char *name) {
  for (size_t i = 0; i < req->n_outputs; i++)
    if (strcmp(req->outputs[i].name, name) == 0) return &req->outputs[i];
  return NULL;
}

/* Checks what the backend produced and puts the outputs asked for, in the
 * order asked (or the model's order), into the response. */
static int collect_outputs(const model_config *c, const infer_request *req, const inferd_exec *x,
                           int64_t batch, infer_response *res, err *e) {
  size_t n = req->n_outputs ? req->n_outputs : c->n_outputs;
  res->outputs = arena_calloc(req->arena, n ? n : 1, sizeof *res->outputs);
  if (!res->outputs) return err_set(e, -ENOMEM, "out of memory");
  for (size_t k = 0; k < n; k++) {
    size_t i = 0;
    if (req->n_outputs) {
      while (i < c->n_outputs && strcmp(c->outputs[i].name, req->outputs[k].name) != 0)
        i++;
    } else {
      i = k;
    }
    const config_tensor *ct = &c->outputs[i];
    inferd_tensor t = x->outputs[i];
    if (!t.data && t.byte_size)
      return err_set(e, -EIO, "the backend produced no data for output '%s'", ct->name);
    if (t.dtype != ct->dtype)
      return err_set(e, -EIO, "the backend produced %s for output '%s', configured as %s",
                     dtype_name(t.dtype), ct->name, dtype_name(ct->dtype));
    if (t.ndim < 0 || t.ndim > INFERD_MAX_DIMS)
      return err_set(e, -EIO, "the backend produced a bad shape for output '%s'", ct->name);
    int64_t elements = shape_elements(t.shape, t.ndim);
    if (elements < 0)
      return err_set(e, -EIO, "the backend produced a bad shape for output '%s'", ct->name);
    if (t.dtype == INFERD_TYPE_BYTES) {
      if (bytes_count(t.data, t.byte_size) != elements)
        return err_set(e, -EIO, "output '%s': BYTES data does not hold %lld elements", ct->name,
                       (long long)elements);
    } else if ((uint64_t)elements * dtype_size(t.dtype) != t.byte_size) {
      return err_set(e, -EIO, "output '%s': %zu bytes for %lld elements of %s", ct->name,
                     t.byte_size, (long long)elements, dtype_name(t.dtype));
    }
    if (ct->has_reshape &&
        reshape_to(ct->dims, ct->ndim, c->max_batch_size > 0 ? batch : -1, elements, &t) < 0)
      return err_set(e, -EIO, "output '%s' cannot be reshaped to its configured dims", ct->name);
    t.name = ct->name;
    const infer_output_spec *spec = req->n_outputs ? &req->outputs[k] : NULL;
    res->outputs[k].t = t;
    res->outputs[k].binary = spec && spec->binary >= 0 ? spec->binary == 1 : req->binary_output;
  }
  res->n_outputs = n;
  return 0;
}

/* Takes a free instance, or waits for one in turn. */
static instance *take_instance(model_version *mv) {
  for (int i = 0; i < mv->n_instances; i++)
    if (pthread_mutex_trylock(&mv->instances[i].lock) == 0) return &mv->instances[i];
  unsigned k = atomic_fetch_add(&mv->next_instance, 1) % (unsigned)mv->n_instances;
  pthread_mutex_lock(&mv->instances[k].lock);
  return &mv->instances[k];
}

static int run(sched_job *job) {
  model_version *mv = job->mv;
  const model_config *c = mv->model->config;
  infer_request *req = job->req;
  err *e = &job->err;
  model_stats *st = &mv->stats;

  uint64_t t0 = clock_ns();
  inferd_tensor *in = arena_calloc(req->arena, c->n_inputs ? c->n_inputs : 1, sizeof *in);
  inferd_tensor *out = arena_calloc(req->arena, c->n_outputs ? c->n_outputs : 1, sizeof *out);
  bool *wanted = arena_calloc(req->arena, c->n_outputs ? c->n_outputs : 1, sizeof *wanted);
  if (!in || !out || !wanted) return err_set(e, -ENOMEM, "out of memory");
  int64_t batch;
  int rc = prepare_inputs(c, req, in, &batch, e);
  if (rc < 0) return rc;
  for (size_t i = 0; i < c->n_outputs; i++) {
    out[i] = (inferd_tensor){.name = c->outputs[i].name, .dtype = c->outputs[i].dtype};
    wanted[i] = req->n_outputs == 0 || wanted_spec(req, c->outputs[i].name);
  }
  char msg[ERR_MSG_MAX] = "";
  inferd_exec x = {
      .batch_size = c->max_batch_size > 0 ? (int)batch : 0,
      .n_inputs = c->n_inputs,
      .inputs = in,
      .n_outputs = c->n_outputs,
      .outputs = out,
      .output_wanted = wanted,
      .alloc = exec_alloc,
      .host = req->arena,
      .error = msg,
      .error_size = sizeof msg,
  };

  uint64_t t1 = clock_ns();
  instance *inst = take_instance(mv);
  uint64_t t2 = clock_ns();
  if (job->deadline_ns && t2 > job->deadline_ns) {
    pthread_mutex_unlock(&inst->lock);
    return err_set(e, -ETIMEDOUT, "the deadline passed while the request waited for an instance");
  }
  rc = mv->backend->execute(inst->state, &x);
  pthread_mutex_unlock(&inst->lock);
  uint64_t t3 = clock_ns();
  atomic_fetch_add_explicit(&st->execution_count, 1, memory_order_relaxed);
  if (rc < 0) return err_set(e, rc, "%s", msg[0] ? msg : "the backend failed to execute");

  rc = collect_outputs(c, req, &x, batch, &job->res, e);
  if (rc < 0) return rc;
  uint64_t t4 = clock_ns();

  stat_add(&st->queue, t2 - t1);
  stat_add(&st->compute_input, t1 - t0);
  stat_add(&st->compute_infer, t3 - t2);
  stat_add(&st->compute_output, t4 - t3);
  int b = c->max_batch_size > 0 && batch >= 0 && batch <= st->max_batch ? (int)batch : 0;
  stat_add(&st->batch[b].compute_input, t1 - t0);
  stat_add(&st->batch[b].compute_infer, t3 - t2);
  stat_add(&st->batch[b].compute_output, t4 - t3);
  atomic_fetch_add_explicit(&st->inference_count, (uint64_t)(batch > 0 ? batch : 1),
                            memory_order_relaxed);
  atomic_store_explicit(&st->last_inference_ms, wall_ms(), memory_order_relaxed);
  return 0;
}

void sched_submit(sched_job *job) {
  job->res = (infer_response){
      .model_name = job->mv->model->name,
      .model_version = job->mv->version,
      .id = job->req->id,
  };
  job->status = run(job);
  job->done(job);
}
