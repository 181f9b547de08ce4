/* tests/unit/onnx_test_run.h: what test_onnx_conv.c and test_onnx_plan.c
 * share beyond onnx_test_model.h: parsing a model into a graph, loading it
 * with model parameters, and comparing float outputs. Static inline, as
 * its companion. */
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

/* ---- loading with model parameters, comparing ------------------------- */

/* Loads the packed model (b is kept: the same bytes may be loaded again)
 * with optimisation "all" or "none" and max_batch_size 0. */
static inline int load_opt(mb *b, const char *optimize, const char *threads, model *md) {
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  inferd_param params[2] = {{"graph_optimization", optimize}, {"intra_op_threads", threads}};
  inferd_model_desc d = {.name = "test", .version = 1, .n_params = 2, .params = params};
  int rc = mb_load_bytes(bytes, len, &d, md);
  free(bytes);
  return rc;
}

static inline void must_load_opt(mb *b, const char *optimize, model *md) {
  int rc = load_opt(b, optimize, "1", md);
  if (rc) print_message("load (%s) failed: %s\n", optimize, md->err);
  assert_int_equal(rc, 0);
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
