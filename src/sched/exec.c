/* sched/exec.c: running one batch of requests on one instance: the inputs
 * in the model's order (with reshape), merged along the batch dimension
 * when the batch has several requests; the backend's execute; the outputs
 * checked and, for a merged batch, split back into each request's own
 * memory; the statistics of the execution.
 *
 * A batch of one request runs on the request's own tensors and its outputs
 * are allocated in the request's arena: no copy. A merged batch copies each
 * input into the instance's scratch arena and each output slice back. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/dtype.h"
#include "sched/sched_internal.h"

/* exec->alloc: memory from the arena in exec->host. */
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

int64_t sched_rows(const model_config *c, const infer_request *req) {
  if (c->max_batch_size <= 0 || req->n_inputs == 0) return 1;
  return req->inputs[0].t.shape[0];
}

/* The inputs in the model's order, with reshape applied. */
static int prepare_inputs(const model_config *c, const infer_request *req, inferd_tensor *in,
                          err *e) {
  int64_t rows = c->max_batch_size > 0 ? sched_rows(c, req) : -1;
  for (size_t i = 0; i < c->n_inputs; i++) {
    const config_tensor *ct = &c->inputs[i];
    const infer_input *ri = find_input(req, ct->name);
    in[i] = (inferd_tensor){.name = ct->name, .dtype = ct->dtype};
    if (!ri) continue; /* an optional input left out: data NULL */
    in[i] = ri->t;
    in[i].name = ct->name;
    if (ct->has_reshape) {
      int64_t elements = shape_elements(ri->t.shape, ri->t.ndim);
      if (ct->dtype == INFERD_TYPE_BYTES) elements = bytes_count(ri->t.data, ri->t.byte_size);
      if (reshape_to(ct->reshape_dims, ct->reshape_ndim, rows, elements, &in[i]) < 0)
        return err_set(e, -EINVAL, "input '%s' cannot be reshaped to the model's shape", ct->name);
    }
  }
  return 0;
}

/* Whether the client asked for output `name` (all, when it named none). */
static bool wanted_by(const infer_request *req, const char *name) {
  if (req->n_outputs == 0) return true;
  for (size_t i = 0; i < req->n_outputs; i++)
    if (strcmp(req->outputs[i].name, name) == 0) return true;
  return false;
}

/* Checks one output the backend produced against the configuration. */
static int check_output(const config_tensor *ct, const inferd_tensor *t, err *e) {
  if (!t->data && t->byte_size)
    return err_set(e, -EIO, "the backend produced no data for output '%s'", ct->name);
  if (t->dtype != ct->dtype)
    return err_set(e, -EIO, "the backend produced %s for output '%s', configured as %s",
                   dtype_name(t->dtype), ct->name, dtype_name(ct->dtype));
  if (t->ndim < 0 || t->ndim > INFERD_MAX_DIMS)
    return err_set(e, -EIO, "the backend produced a bad shape for output '%s'", ct->name);
  int64_t elements = shape_elements(t->shape, t->ndim);
  if (elements < 0)
    return err_set(e, -EIO, "the backend produced a bad shape for output '%s'", ct->name);
  if (t->dtype == INFERD_TYPE_BYTES) {
    if (bytes_count(t->data, t->byte_size) != elements)
      return err_set(e, -EIO, "output '%s': BYTES data does not hold %lld elements", ct->name,
                     (long long)elements);
  } else if ((uint64_t)elements * dtype_size(t->dtype) != t->byte_size) {
    return err_set(e, -EIO, "output '%s': %zu bytes for %lld elements of %s", ct->name,
                   t->byte_size, (long long)elements, dtype_name(t->dtype));
  }
  return 0;
}

/* Puts the outputs the request asked for (model order in `outs`, already
 * checked), in the order asked, into the response. */
static int collect_outputs(const model_config *c, const infer_request *req,
                           const inferd_tensor *outs, int64_t rows, infer_response *res, err *e) {
  size_t n = req->n_outputs ? req->n_outputs : c->n_outputs;
  res->outputs = arena_calloc(req->arena, n ? n : 1, sizeof *res->outputs);
  if (!res->outputs) return err_set(e, -ENOMEM, "out of memory");
  for (size_t k = 0; k < n; k++) {
    size_t i = 0;
    if (req->n_outputs)
      while (i < c->n_outputs && strcmp(c->outputs[i].name, req->outputs[k].name) != 0)
        i++;
    else
      i = k;
    const config_tensor *ct = &c->outputs[i];
    inferd_tensor t = outs[i];
    int64_t elements = t.dtype == INFERD_TYPE_BYTES ? bytes_count(t.data, t.byte_size)
                                                    : shape_elements(t.shape, t.ndim);
    if (ct->has_reshape &&
        reshape_to(ct->dims, ct->ndim, c->max_batch_size > 0 ? rows : -1, elements, &t) < 0)
      return err_set(e, -EIO, "output '%s' cannot be reshaped to its configured dims", ct->name);
    t.name = ct->name;
    const infer_output_spec *spec = req->n_outputs ? &req->outputs[k] : NULL;
    res->outputs[k].t = t;
    res->outputs[k].binary = spec && spec->binary >= 0 ? spec->binary == 1 : req->binary_output;
  }
  res->n_outputs = n;
  return 0;
}

/* Byte offset of element `index` of BYTES data. */
static size_t bytes_offset(const unsigned char *p, int64_t index) {
  size_t off = 0;
  for (int64_t i = 0; i < index; i++) {
    uint32_t len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                   (uint32_t)p[off + 3] << 24;
    off += 4 + len;
  }
  return off;
}

/* Rows [row, row + rows) of a batched tensor whose first dimension is
 * `total`, copied into arena a. */
static int slice_rows(const inferd_tensor *t, int64_t total, int64_t row, int64_t rows, arena *a,
                      inferd_tensor *out, err *e) {
  if (t->ndim < 1 || t->shape[0] != total)
    return err_set(e, -EIO, "output '%s' does not have the batch of %lld as first dimension",
                   t->name, (long long)total);
  *out = *t;
  out->shape[0] = rows;
  size_t start, end;
  if (t->dtype == INFERD_TYPE_BYTES) {
    int64_t per_row = total ? bytes_count(t->data, t->byte_size) / total : 0;
    start = bytes_offset(t->data, row * per_row);
    end = start + bytes_offset((const unsigned char *)t->data + start, rows * per_row);
  } else {
    size_t row_bytes = total ? t->byte_size / (size_t)total : 0;
    start = (size_t)row * row_bytes;
    end = start + (size_t)rows * row_bytes;
  }
  void *p = arena_alloc_aligned(a, end - start ? end - start : 1, 64);
  if (!p) return err_set(e, -ENOMEM, "out of memory");
  if (end > start) memcpy(p, (const char *)t->data + start, end - start);
  out->data = p;
  out->byte_size = end - start;
  return 0;
}

/* Concatenates the jobs' inputs along the batch dimension into arena a. */
static int merge_inputs(const model_config *c, sched_job **jobs, int n, inferd_tensor **per_job,
                        int64_t total, arena *a, inferd_tensor *merged, err *e) {
  for (size_t i = 0; i < c->n_inputs; i++) {
    merged[i] = per_job[0][i];
    if (!merged[i].data && !merged[i].byte_size) continue; /* optional, absent in all */
    size_t bytes = 0;
    for (int j = 0; j < n; j++)
      bytes += per_job[j][i].byte_size;
    unsigned char *p = arena_alloc_aligned(a, bytes ? bytes : 1, 64);
    if (!p) return err_set(e, -ENOMEM, "out of memory merging a batch");
    size_t off = 0;
    for (int j = 0; j < n; j++) {
      if (per_job[j][i].byte_size) memcpy(p + off, per_job[j][i].data, per_job[j][i].byte_size);
      off += per_job[j][i].byte_size;
    }
    merged[i].data = p;
    merged[i].byte_size = bytes;
    merged[i].shape[0] = total;
  }
  (void)jobs;
  return 0;
}

static void record(model_version *mv, sched_job **jobs, int n, int64_t total, uint64_t t0,
                   uint64_t t1, uint64_t t2, uint64_t t3) {
  model_stats *st = &mv->stats;
  if (jobs[0]->quiet) return;
  atomic_fetch_add_explicit(&st->execution_count, 1, memory_order_relaxed);
  int b = mv->model->config->max_batch_size > 0 && total <= st->max_batch ? (int)total : 0;
  stat_add(&st->batch[b].compute_input, t1 - t0);
  stat_add(&st->batch[b].compute_infer, t2 - t1);
  stat_add(&st->batch[b].compute_output, t3 - t2);
  for (int j = 0; j < n; j++) {
    if (jobs[j]->status < 0) continue;
    stat_add(&st->queue, jobs[j]->enqueued_ns ? t0 - jobs[j]->enqueued_ns : 0);
    stat_add(&st->compute_input, t1 - t0);
    stat_add(&st->compute_infer, t2 - t1);
    stat_add(&st->compute_output, t3 - t2);
    atomic_fetch_add_explicit(&st->inference_count, (uint64_t)jobs[j]->rows, memory_order_relaxed);
  }
  atomic_store_explicit(&st->last_inference_ms, wall_ms(), memory_order_relaxed);
}

/* Every job of the batch fails with the same error. */
static void fail_all(sched_job **jobs, int n, const err *e) {
  for (int j = 0; j < n; j++) {
    jobs[j]->status = e->code;
    jobs[j]->err = *e;
  }
}

void sched_execute(model_version *mv, instance *inst, sched_job **jobs, int n) {
  const model_config *c = mv->model->config;
  size_t ni = c->n_inputs ? c->n_inputs : 1, no = c->n_outputs ? c->n_outputs : 1;
  uint64_t t0 = clock_ns();
  err e = {0};
  arena *scratch = inst->scratch;
  arena_reset(scratch);
  inferd_tensor **per_job = arena_calloc(scratch, (size_t)n, sizeof *per_job);
  inferd_tensor *in = arena_calloc(scratch, ni, sizeof *in);
  inferd_tensor *out = arena_calloc(scratch, no, sizeof *out);
  bool *wanted = arena_calloc(scratch, no, sizeof *wanted);
  if (!per_job || !in || !out || !wanted) {
    err_set(&e, -ENOMEM, "out of memory");
    fail_all(jobs, n, &e);
    return;
  }
  int64_t total = 0;
  for (int j = 0; j < n; j++) {
    jobs[j]->status = 0;
    total += jobs[j]->rows;
    per_job[j] = arena_calloc(scratch, ni, sizeof **per_job);
    if (!per_job[j] || prepare_inputs(c, jobs[j]->req, per_job[j], &jobs[j]->err) < 0) {
      if (!per_job[j]) err_set(&jobs[j]->err, -ENOMEM, "out of memory");
      fail_all(jobs, n, &jobs[j]->err);
      return;
    }
  }
  if (n == 1) {
    memcpy(in, per_job[0], ni * sizeof *in);
  } else if (merge_inputs(c, jobs, n, per_job, total, scratch, in, &e) < 0) {
    fail_all(jobs, n, &e);
    return;
  }
  for (size_t i = 0; i < c->n_outputs; i++) {
    out[i] = (inferd_tensor){.name = c->outputs[i].name, .dtype = c->outputs[i].dtype};
    for (int j = 0; j < n && !wanted[i]; j++)
      wanted[i] = wanted_by(jobs[j]->req, out[i].name);
  }
  char msg[ERR_MSG_MAX] = "";
  inferd_exec x = {
      .batch_size = c->max_batch_size > 0 ? (int)total : 0,
      .n_inputs = c->n_inputs,
      .inputs = in,
      .n_outputs = c->n_outputs,
      .outputs = out,
      .output_wanted = wanted,
      .alloc = exec_alloc,
      .host = n == 1 ? jobs[0]->req->arena : scratch, /* one request: its own memory */
      .error = msg,
      .error_size = sizeof msg,
  };
  uint64_t t1 = clock_ns();
  int rc = mv->backend->execute(inst->state, &x);
  uint64_t t2 = clock_ns();
  if (rc < 0) {
    err_set(&e, rc, "%s", msg[0] ? msg : "the backend failed to execute");
    fail_all(jobs, n, &e);
    record(mv, jobs, n, total, t0, t1, t2, t2);
    return;
  }
  for (size_t i = 0; i < c->n_outputs; i++) {
    if (wanted[i] && check_output(&c->outputs[i], &out[i], &e) < 0) {
      fail_all(jobs, n, &e);
      record(mv, jobs, n, total, t0, t1, t2, clock_ns());
      return;
    }
  }
  int64_t row = 0;
  for (int j = 0; j < n; j++) {
    sched_job *job = jobs[j];
    inferd_tensor *mine = out;
    if (n > 1) {
      mine = arena_calloc(job->req->arena, no, sizeof *mine);
      if (!mine) job->status = err_set(&job->err, -ENOMEM, "out of memory");
      for (size_t i = 0; mine && i < c->n_outputs && job->status == 0; i++) {
        if (!wanted_by(job->req, out[i].name)) continue;
        job->status =
            slice_rows(&out[i], total, row, job->rows, job->req->arena, &mine[i], &job->err);
      }
    }
    if (job->status == 0)
      job->status = collect_outputs(c, job->req, mine, job->rows, &job->res, &job->err);
    row += job->rows;
  }
  record(mv, jobs, n, total, t0, t1, t2, clock_ns());
}
