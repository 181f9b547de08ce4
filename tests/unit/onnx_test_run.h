/* tests/unit/onnx_test_run.h: what test_onnx_conv.c and test_onnx_plan.c
 * share beyond building a model (onnx_test_model.h): parsing it into a
 * graph, loading it through the backend table with model parameters,
 * running it, and comparing float outputs. Static inline, as its
 * companion. */
#ifndef INFERD_TESTS_ONNX_TEST_RUN_H
#define INFERD_TESTS_ONNX_TEST_RUN_H

#include "onnx_test_model.h"

/* The model parsed straight into a graph (no backend), b freed. */
static inline onnx_model *mb_parse(mb *b, onnx_optimize opt) {
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  mb_free(b);
  onnx_model *m = NULL;
  err e = {0};
  int rc = onnx_model_parse_opt(bytes, len, opt, &m, &e);
  free(bytes);
  if (rc) print_message("parse failed: %s\n", e.msg);
  assert_int_equal(rc, 0);
  return m;
}

/* ---- loading and running through the backend ---------------------------- */

typedef struct model {
  void *m, *inst;
  char err[512];
} model;

/* Loads the packed model (b is kept: the same bytes may be loaded again)
 * with optimisation "all" or "none" and max_batch_size 0. */
static inline int load_opt(mb *b, const char *optimize, const char *threads, model *md) {
  memset(md, 0, sizeof *md);
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  char path[] = "/tmp/inferd_onnx_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, bytes, len), (ssize_t)len);
  close(fd);
  free(bytes);
  inferd_param params[2] = {{"graph_optimization", optimize}, {"intra_op_threads", threads}};
  inferd_model_desc d = {
      .name = "test", .version = 1, .model_path = path, .n_params = 2, .params = params};
  const inferd_backend *be = onnx_backend();
  int rc = be->model_load(&d, &md->m, md->err, sizeof md->err);
  unlink(path);
  if (rc) {
    md->m = NULL;
    return rc;
  }
  rc = be->instance_create(md->m, 0, &md->inst, md->err, sizeof md->err);
  if (rc) {
    be->model_unload(md->m);
    md->m = NULL;
  }
  return rc;
}

static inline void must_load_opt(mb *b, const char *optimize, model *md) {
  int rc = load_opt(b, optimize, "1", md);
  if (rc) print_message("load (%s) failed: %s\n", optimize, md->err);
  assert_int_equal(rc, 0);
}

static inline void unload(model *md) {
  if (md->inst) onnx_backend()->instance_destroy(md->inst);
  if (md->m) onnx_backend()->model_unload(md->m);
  md->inst = md->m = NULL;
}

typedef struct test_exec {
  inferd_exec x;
  void *ptrs[16];
  int n;
} test_exec;

static inline void *test_alloc(inferd_exec *x, size_t bytes) {
  test_exec *t = (test_exec *)x;
  if (t->n == 16) return NULL;
  return t->ptrs[t->n++] = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

static inline inferd_tensor tin(const char *name, int ndim, const int64_t *dims,
                                const float *data) {
  inferd_tensor x = {.name = name, .dtype = INFERD_TYPE_FP32, .ndim = ndim, .data = (void *)data};
  memcpy(x.shape, dims, (size_t)ndim * sizeof dims[0]);
  x.byte_size = (size_t)shape_elements(dims, ndim) * sizeof(float);
  return x;
}

/* Executes; outputs get their data from test_alloc, freed by run_done. */
static inline int run(model *md, test_exec *t, size_t n_in, const inferd_tensor *in, size_t n_out,
                      inferd_tensor *out) {
  memset(t, 0, sizeof *t);
  t->x = (inferd_exec){.n_inputs = n_in,
                       .inputs = in,
                       .n_outputs = n_out,
                       .outputs = out,
                       .alloc = test_alloc,
                       .error = md->err,
                       .error_size = sizeof md->err};
  return onnx_backend()->execute(md->inst, &t->x);
}

static inline void run_done(test_exec *t) {
  for (int i = 0; i < t->n; i++)
    free(t->ptrs[i]);
  t->n = 0;
}

/* Whether got is want within tol (absolute plus relative). */
static inline bool close_f32(const float *got, const float *want, int64_t n, float tol) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabsf(got[i] - want[i]) <= tol + tol * fabsf(want[i]))) {
      print_message("element %lld: got %.9g, want %.9g\n", (long long)i, got[i], want[i]);
      return false;
    }
  return true;
}

/* Checks an output's shape and values. */
static inline void expect_f32(const inferd_tensor *o, int ndim, const int64_t *dims,
                              const float *want, float tol) {
  assert_int_equal(o->dtype, INFERD_TYPE_FP32);
  assert_int_equal(o->ndim, ndim);
  for (int i = 0; i < ndim; i++)
    assert_int_equal(o->shape[i], dims[i]);
  int64_t n = shape_elements(dims, ndim);
  assert_int_equal(o->byte_size, (size_t)n * sizeof(float));
  assert_true(close_f32(o->data, want, n, tol));
}

/* Deterministic values in [-1, 1). */
static inline void fill(float *v, int64_t n, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    v[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
  }
}

#endif
