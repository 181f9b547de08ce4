/* Unit tests of the ONNX backend: each operator against hand-computed
 * values (broadcasting, attribute defaults, opset differences), load-time
 * errors (unsupported operators and attributes, malformed and truncated
 * files, cycles, missing inputs, configurations that do not fit), and the
 * executor (memory plan, outputs in place or copied, plan cache, shapes
 * computed from shapes). Models are built with onnx_test_model.h and
 * loaded through the backend table. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/onnx/onnx_backend.h"
#include "backends/onnx/onnx_graph.h"
#include "backends/onnx/onnx_ops.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_test_model.h"

/* ---- loading and running ------------------------------------------------ */

typedef struct cfg {
  int max_batch;
  size_t n_in, n_out;
  const inferd_tensor_desc *in, *out;
  size_t n_params;
  const inferd_param *params;
  const char *path; /* instead of the built bytes */
} cfg;

/* Loads bytes through model_load (from a temporary file) as c describes
 * the model, and makes an instance. Returns model_load's or
 * instance_create's code. */
static int load_bytes(const uint8_t *bytes, size_t len, const cfg *c, model *md) {
  cfg none = {0};
  if (!c) c = &none;
  inferd_model_desc d = {.name = "test",
                         .version = 1,
                         .model_path = c->path,
                         .max_batch_size = c->max_batch,
                         .n_inputs = c->n_in,
                         .inputs = c->in,
                         .n_outputs = c->n_out,
                         .outputs = c->out,
                         .n_params = c->n_params,
                         .params = c->params};
  return mb_load_bytes(bytes, len, &d, md);
}

static int load_mb(mb *b, const cfg *c, model *md) {
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  int rc = load_bytes(bytes, len, c, md);
  free(bytes);
  mb_free(b);
  return rc;
}

/* Loads and fails the test with the message when it does not load. */
static void must_load(mb *b, const cfg *c, model *md) {
  int rc = load_mb(b, c, md);
  if (rc) print_message("load failed: %s\n", md->err);
  assert_int_equal(rc, 0);
}

static void expect_f32(const inferd_tensor *o, int ndim, const int64_t *dims, const float *want) {
  assert_int_equal(o->dtype, INFERD_TYPE_FP32);
  assert_int_equal(o->ndim, ndim);
  for (int i = 0; i < ndim; i++)
    assert_int_equal(o->shape[i], dims[i]);
  int64_t n = shape_elements(dims, ndim);
  assert_int_equal(o->byte_size, (size_t)n * 4);
  for (int64_t i = 0; i < n; i++) {
    float g = ((const float *)o->data)[i];
    if (isnan(want[i])) {
      assert_true(isnan(g));
      continue;
    }
    if (!(fabsf(g - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i])))
      print_message("element %lld: got %.9g, want %.9g\n", (long long)i, g, want[i]);
    assert_true(fabsf(g - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i]));
  }
}

/* One node, one or two float inputs, one float output: the commonest test. */
static void run_f32(mb *b, size_t n_in, const inferd_tensor *in, int ndim, const int64_t *dims,
                    const float *want) {
  model md;
  must_load(b, NULL, &md);
  inferd_tensor out = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  int rc = run(&md, &t, n_in, in, 1, &out, NULL);
  if (rc) print_message("execute failed: %s\n", md.err);
  assert_int_equal(rc, 0);
  expect_f32(&out, ndim, dims, want);
  run_done(&t);
  unload(&md);
}

/* Expects load to fail with code and a message containing text. */
static void load_fails(mb *b, const cfg *c, int code, const char *text) {
  model md;
  int rc = load_mb(b, c, &md);
  if (rc != code || !strstr(md.err, text))
    print_message("rc %d, message '%s'; expected %d and '%s'\n", rc, md.err, code, text);
  assert_int_equal(rc, code);
  assert_non_null(strstr(md.err, text));
}

/* ---- registry ----------------------------------------------------------- */

static void registry_tables(void **state) {
  err e = {0};
  int rc = onnx_registry_check(&e);
  if (rc) print_message("%s\n", e.msg);
  assert_int_equal(rc, 0);
  int since = 0;
  assert_ptr_equal(onnx_registry_find("", "Softmax", 12, &since), &onnx_op_softmax);
  assert_int_equal(since, 11);
  onnx_registry_find("ai.onnx", "Softmax", 17, &since);
  assert_int_equal(since, 13);
  onnx_registry_find("", "Gemm", 10, &since);
  assert_int_equal(since, 9);
  assert_null(onnx_registry_find("", "Add", 6, &since));
  assert_null(onnx_registry_find("", "Gelu", 17, &since));
  assert_null(onnx_registry_find("com.microsoft", "Gemm", 13, &since));
  assert_true(onnx_registry_has("", "ArgMax"));
  assert_true(onnx_registry_has("", "Conv"));
  assert_false(onnx_registry_has("", "Loop")); /* control flow: no subgraphs */
}

/* ---- Gemm and MatMul ---------------------------------------------------- */

/* Y = 0.5 * op(A) op(B) + 2 * C in the obvious loops, for the grid test. */
static void gemm_ref(bool ta, bool tb, int M, int N, int K, const float *A, const float *B,
                     const float *C, int cm, int cn, float *Y) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      float s = 0;
      for (int k = 0; k < K; k++)
        s += (ta ? A[k * M + m] : A[m * K + k]) * (tb ? B[n * K + k] : B[k * N + n]);
      float c = C ? C[(cm > 1 ? m : 0) * cn + (cn > 1 ? n : 0)] : 0;
      Y[m * N + n] = 0.5f * s + 2.0f * c;
    }
}

static void gemm_by_hand(void **state) {
  /* [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] + [10,20] */
  mb *b = mb_new(13);
  mb_input(b, "a", T_FLOAT, 2, D(2, 3));
  mb_init(b, "w", T_FLOAT, 2, D(3, 2), F(1, 0, 0, 1, 1, 1));
  mb_init(b, "c", T_FLOAT, 1, D(2), F(10, 20));
  mb_node(b, "fc", "Gemm", "a,w,c", "y");
  mb_output(b, "y", T_FLOAT, 2, D(2, 2));
  inferd_tensor a = tin("a", INFERD_TYPE_FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
  run_f32(b, 1, &a, 2, D(2, 2), F(14, 25, 20, 31));

  /* transB (torch's Linear), no C, alpha 2 */
  b = mb_new(11);
  mb_input(b, "a", T_FLOAT, 2, D(1, 3));
  mb_init(b, "w", T_FLOAT, 2, D(2, 3), F(1, 1, 1, 1, 0, -1));
  Onnx__NodeProto *n = mb_node(b, "fc", "Gemm", "a,w", "y");
  attr_i(b, n, "transB", 1);
  attr_f(b, n, "alpha", 2);
  mb_output(b, "y", T_FLOAT, -1, NULL);
  a = tin("a", INFERD_TYPE_FP32, 2, D(1, 3), F(1, 2, 3));
  run_f32(b, 1, &a, 2, D(1, 2), F(12, -4));
}

static void gemm_grid(void **state) {
  enum { M = 3, N = 4, K = 5 };
  float A[M * K], B[K * N], C[M * N], Y[M * N];
  for (int i = 0; i < M * K; i++)
    A[i] = (float)(i % 7) - 3;
  for (int i = 0; i < K * N; i++)
    B[i] = (float)(i % 5) * 0.5f - 1;
  for (int i = 0; i < M * N; i++)
    C[i] = (float)i;
  /* C as: none, scalar, [N], [1,N], [M,1], [M,N] */
  const int c_nd[] = {-1, 0, 1, 2, 2, 2};
  const int64_t c_dims[][2] = {{0}, {0}, {N}, {1, N}, {M, 1}, {M, N}};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int c = 0; c < 6; c++) {
        mb *b = mb_new(13);
        mb_input(b, "a", T_FLOAT, 2, ta ? D(K, M) : D(M, K));
        mb_init(b, "w", T_FLOAT, 2, tb ? D(N, K) : D(K, N), B);
        int cm = 1, cn = 1;
        if (c_nd[c] >= 0) {
          if (c_nd[c] >= 1) cn = (int)c_dims[c][c_nd[c] - 1];
          if (c_nd[c] == 2) cm = (int)c_dims[c][0];
          mb_init(b, "c", T_FLOAT, c_nd[c], c_dims[c], C);
        }
        Onnx__NodeProto *n = mb_node(b, "fc", "Gemm", c_nd[c] >= 0 ? "a,w,c" : "a,w", "y");
        attr_i(b, n, "transA", ta);
        attr_i(b, n, "transB", tb);
        attr_f(b, n, "alpha", 0.5f);
        attr_f(b, n, "beta", 2.0f);
        mb_output(b, "y", T_FLOAT, 2, D(M, N));
        /* B is stored as given: as [K,N] or, transposed, [N,K] */
        gemm_ref(ta, tb, M, N, K, A, B, c_nd[c] >= 0 ? C : NULL, cm, cn, Y);
        inferd_tensor a = tin("a", INFERD_TYPE_FP32, 2, ta ? D(K, M) : D(M, K), A);
        run_f32(b, 1, &a, 2, D(M, N), Y);
      }
}

/* Products by a constant matrix (packed at load) at sizes that leave
 * partial row blocks (M % 6), partial column panels (N % 16) and several
 * passes over K (K > 256), with a bias row and an activation fused:
 * Gemm (transB) + Relu, and MatMul + Add + Sigmoid. */
static void gemm_packed_sizes(void **state) {
  const int64_t Ms[] = {1, 7, 200}, Ks[] = {3, 300}, Ns[] = {5, 33};
  for (int im = 0; im < 3; im++)
    for (int ik = 0; ik < 2; ik++)
      for (int in = 0; in < 2; in++)
        for (int mm = 0; mm < 2; mm++) {
          int64_t M = Ms[im], K = Ks[ik], N = Ns[in];
          float *A = malloc((size_t)(M * K) * 4), *B = malloc((size_t)(K * N) * 4),
                *bias = malloc((size_t)N * 4), *Y = malloc((size_t)(M * N) * 4);
          for (int64_t i = 0; i < M * K; i++)
            A[i] = (float)((i * 7) % 13) / 13 - 0.5f;
          for (int64_t i = 0; i < K * N; i++) /* [N,K] for Gemm's transB, [K,N] for MatMul */
            B[i] = (float)((i * 5) % 11) / 11 - 0.5f;
          for (int64_t i = 0; i < N; i++)
            bias[i] = (float)i / 10 - 1;
          for (int64_t r = 0; r < M; r++)
            for (int64_t c = 0; c < N; c++) {
              double acc = bias[c];
              for (int64_t k = 0; k < K; k++)
                acc += (double)A[r * K + k] * (mm ? B[k * N + c] : B[c * K + k]);
              Y[r * N + c] = mm ? (float)(1 / (1 + exp(-acc))) : acc > 0 ? (float)acc : 0;
            }
          mb *b = mb_new(13);
          mb_input(b, "a", T_FLOAT, 2, D(M, K));
          mb_init(b, "bias", T_FLOAT, 1, D(N), bias);
          if (mm) {
            mb_init(b, "w", T_FLOAT, 2, D(K, N), B);
            mb_node(b, "mm", "MatMul", "a,w", "p");
            mb_node(b, "add", "Add", "p,bias", "q");
            mb_node(b, "act", "Sigmoid", "q", "y");
          } else {
            mb_init(b, "w", T_FLOAT, 2, D(N, K), B);
            attr_i(b, mb_node(b, "fc", "Gemm", "a,w,bias", "p"), "transB", 1);
            mb_node(b, "act", "Relu", "p", "y");
          }
          mb_output(b, "y", T_FLOAT, 2, D(M, N));
          inferd_tensor a = tin("a", INFERD_TYPE_FP32, 2, D(M, K), A);
          run_f32(b, 1, &a, 2, D(M, N), Y);
          free(A);
          free(B);
          free(bias);
          free(Y);
        }
}

static void matmul_shapes(void **state) {
  struct {
    int an, bn;
    int64_t ad[4], bd[4];
    int yn;
    int64_t yd[4];
  } cases[] = {
      {1, 1, {3}, {3}, 0, {0}},                         /* dot product */
      {1, 2, {3}, {3, 4}, 1, {4}},                      /* vector x matrix */
      {2, 1, {2, 3}, {3}, 1, {2}},                      /* matrix x vector */
      {2, 2, {2, 3}, {3, 4}, 2, {2, 4}},                /* plain */
      {3, 2, {2, 2, 3}, {3, 4}, 3, {2, 2, 4}},          /* stacked A, one B */
      {2, 3, {2, 3}, {2, 3, 4}, 3, {2, 2, 4}},          /* one A, stacked B */
      {4, 3, {2, 1, 2, 3}, {3, 3, 4}, 4, {2, 3, 2, 4}}, /* batch broadcast */
      {3, 1, {2, 2, 3}, {3}, 2, {2, 2}},                /* stacked A x vector */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    float A[64], B[64], Y[64];
    int64_t na = shape_elements(cases[c].ad, cases[c].an),
            nb = shape_elements(cases[c].bd, cases[c].bn);
    for (int i = 0; i < na; i++)
      A[i] = (float)((i * 7) % 11) - 5;
    for (int i = 0; i < nb; i++)
      B[i] = (float)((i * 5) % 9) * 0.25f;
    /* reference: numpy matmul by index arithmetic */
    int an = cases[c].an, bn = cases[c].bn;
    int64_t M = an >= 2 ? cases[c].ad[an - 2] : 1, K = cases[c].ad[an - 1];
    int64_t N = bn >= 2 ? cases[c].bd[bn - 1] : 1;
    int64_t yn = shape_elements(cases[c].yd, cases[c].yn);
    int64_t batch = yn / (M * N);
    int bnd = cases[c].yn - (an >= 2) - (bn >= 2); /* batch dims of Y */
    for (int64_t bi = 0; bi < batch; bi++) {
      /* batch index -> offsets in A and B (broadcast) */
      int64_t rem = bi, oa = 0, ob = 0, sa = 1, sb = 1;
      for (int d = bnd - 1; d >= 0; d--) {
        int64_t yd = cases[c].yd[d];
        int64_t idx = rem % yd;
        rem /= yd;
        int ia = d - (bnd - (an > 2 ? an - 2 : 0)), ib = d - (bnd - (bn > 2 ? bn - 2 : 0));
        int64_t da = ia >= 0 ? cases[c].ad[ia] : 1, db = ib >= 0 ? cases[c].bd[ib] : 1;
        oa += (da == 1 ? 0 : idx) * sa;
        ob += (db == 1 ? 0 : idx) * sb;
        sa *= da;
        sb *= db;
      }
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
          float s = 0;
          for (int64_t k = 0; k < K; k++)
            s += A[oa * M * K + m * K + k] * B[ob * K * N + k * N + n];
          Y[bi * M * N + m * N + n] = s;
        }
    }
    mb *b = mb_new(13);
    mb_input(b, "a", T_FLOAT, an, cases[c].ad);
    mb_input(b, "b", T_FLOAT, bn, cases[c].bd);
    mb_node(b, "mm", "MatMul", "a,b", "y");
    mb_output(b, "y", T_FLOAT, -1, NULL);
    inferd_tensor in[2] = {tin("a", INFERD_TYPE_FP32, an, cases[c].ad, A),
                           tin("b", INFERD_TYPE_FP32, bn, cases[c].bd, B)};
    run_f32(b, 2, in, cases[c].yn, cases[c].yd, Y);
  }
  /* FP64 goes through the plain loops */
  mb *b = mb_new(13);
  mb_input(b, "a", T_DOUBLE, 2, D(1, 2));
  mb_init(b, "w", T_DOUBLE, 2, D(2, 2), (const double[]){1, 2, 3, 4});
  mb_node(b, "mm", "MatMul", "a,w", "y");
  mb_output(b, "y", T_DOUBLE, 2, D(1, 2));
  model md;
  must_load(b, NULL, &md);
  inferd_tensor a = tin("a", INFERD_TYPE_FP64, 2, D(1, 2), (const double[]){1, 10});
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP64};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &a, 1, &y, NULL), 0);
  assert_true(((double *)y.data)[0] == 31 && ((double *)y.data)[1] == 42);
  run_done(&t);
  unload(&md);
  /* shapes that do not multiply fail at load, saying so */
  b = mb_new(13);
  mb_input(b, "a", T_FLOAT, 2, D(2, 3));
  mb_init(b, "w", T_FLOAT, 2, D(4, 2), F(0, 0, 0, 0, 0, 0, 0, 0));
  mb_node(b, "mm", "MatMul", "a,w", "y");
  mb_output(b, "y", T_FLOAT, -1, NULL);
  load_fails(b, NULL, -EINVAL, "node 'mm' (MatMul, opset 13): A [2,3] and B [4,2] do not multiply");
}

/* ---- elementwise -------------------------------------------------------- */

static void binary_case(const char *op, int an, const int64_t *ad, const float *a, int bn,
                        const int64_t *bd, const float *bv, int yn, const int64_t *yd,
                        const float *want) {
  mb *b = mb_new(14);
  mb_input(b, "a", T_FLOAT, an, ad);
  mb_input(b, "b", T_FLOAT, bn, bd);
  mb_node(b, "n", op, "a,b", "y");
  mb_output(b, "y", T_FLOAT, -1, NULL);
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_FP32, an, ad, a),
                         tin("b", INFERD_TYPE_FP32, bn, bd, bv)};
  run_f32(b, 2, in, yn, yd, want);
}

static void arithmetic_broadcast(void **state) {
  binary_case("Add", 2, D(2, 3), F(1, 2, 3, 4, 5, 6), 1, D(3), F(10, 20, 30), 2, D(2, 3),
              F(11, 22, 33, 14, 25, 36));
  binary_case("Sub", 2, D(2, 1), F(1, 2), 2, D(1, 3), F(1, 2, 3), 2, D(2, 3),
              F(0, -1, -2, 1, 0, -1));
  binary_case("Mul", 0, D(0), F(3), 2, D(2, 2), F(1, 2, 3, 4), 2, D(2, 2), F(3, 6, 9, 12));
  binary_case("Div", 2, D(2, 2), F(1, 2, 3, 4), 0, D(0), F(2), 2, D(2, 2), F(0.5f, 1, 1.5f, 2));
  /* [2,3,2] + [3,1]: the middle dimension varies for b, the last not */
  binary_case("Add", 3, D(2, 3, 2), F(0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1), 2, D(3, 1),
              F(10, 20, 30), 3, D(2, 3, 2), F(10, 10, 20, 20, 30, 30, 11, 11, 21, 21, 31, 31));
  /* [2,1,3] * [1,2,1] -> [2,2,3] */
  binary_case("Mul", 3, D(2, 1, 3), F(1, 2, 3, 4, 5, 6), 3, D(1, 2, 1), F(1, -1), 3, D(2, 2, 3),
              F(1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6));
  /* both sides broadcast at once: [3,1] - [1,2] */
  binary_case("Sub", 2, D(3, 1), F(1, 2, 3), 2, D(1, 2), F(0, 1), 2, D(3, 2), F(1, 0, 2, 1, 3, 2));

  /* shapes that do not broadcast fail at load */
  mb *b = mb_new(14);
  mb_input(b, "a", T_FLOAT, 2, D(2, 3));
  mb_input(b, "b", T_FLOAT, 1, D(4));
  mb_node(b, "add", "Add", "a,b", "y");
  mb_output(b, "y", T_FLOAT, -1, NULL);
  load_fails(b, NULL, -EINVAL, "shapes [2,3] and [4] do not broadcast");
  /* types must match */
  b = mb_new(14);
  mb_input(b, "a", T_FLOAT, 1, D(2));
  mb_input(b, "b", T_INT64, 1, D(2));
  mb_node(b, "add", "Add", "a,b", "y");
  mb_output(b, "y", T_FLOAT, -1, NULL);
  load_fails(b, NULL, -EINVAL, "inputs have types FP32 and INT64");
}

static void integer_arithmetic(void **state) {
  mb *b = mb_new(14);
  mb_input(b, "a", T_INT32, 1, D(4));
  mb_input(b, "b", T_INT32, 1, D(4));
  mb_node(b, "d", "Div", "a,b", "q");
  mb_node(b, "s", "Add", "a,b", "s");
  mb_output(b, "q", T_INT32, 1, D(4));
  mb_output(b, "s", T_INT32, 1, D(4));
  model md;
  must_load(b, NULL, &md);
  int32_t av[4] = {-7, 7, INT32_MAX, INT32_MIN}, bv[4] = {2, -2, 1, -1};
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_INT32, 1, D(4), av),
                         tin("b", INFERD_TYPE_INT32, 1, D(4), bv)};
  inferd_tensor out[2] = {{.name = "q", .dtype = INFERD_TYPE_INT32},
                          {.name = "s", .dtype = INFERD_TYPE_INT32}};
  test_exec t;
  assert_int_equal(run(&md, &t, 2, in, 2, out, NULL), 0);
  const int32_t *q = out[0].data, *s = out[1].data;
  /* division truncates; MIN / -1 and MAX + 1 wrap */
  assert_int_equal(q[0], -3);
  assert_int_equal(q[1], -3);
  assert_int_equal(q[2], INT32_MAX);
  assert_int_equal(q[3], INT32_MIN);
  assert_int_equal(s[0], -5);
  assert_int_equal(s[2], INT32_MIN);
  assert_int_equal(s[3], INT32_MAX);
  run_done(&t);
  bv[1] = 0; /* division by zero is an error of the request */
  assert_int_equal(run(&md, &t, 2, in, 2, out, NULL), -EINVAL);
  assert_non_null(strstr(md.err, "node 'd' (Div, opset 14): integer division by zero"));
  run_done(&t);
  unload(&md);

  b = mb_new(14);
  mb_input(b, "a", T_UINT8, 1, D(3));
  mb_init(b, "k", T_UINT8, 0, D(0), (const uint8_t[]){200});
  mb_node(b, "m", "Mul", "a,k", "y");
  mb_output(b, "y", T_UINT8, 1, D(3));
  must_load(b, NULL, &md);
  uint8_t u[3] = {1, 2, 3};
  inferd_tensor x = tin("a", INFERD_TYPE_UINT8, 1, D(3), u);
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_UINT8};
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  assert_memory_equal(y.data, ((const uint8_t[]){200, 144, 88}), 3); /* mod 256 */
  run_done(&t);
  unload(&md);
}

static void unary_case(const char *op, int opset, size_t n, const float *x, const float *want) {
  mb *b = mb_new(opset);
  mb_input(b, "x", T_FLOAT, 1, D((int64_t)n));
  mb_node(b, "u", op, "x", "y");
  mb_output(b, "y", T_FLOAT, 1, D((int64_t)n));
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, 1, D((int64_t)n), x);
  run_f32(b, 1, &in, 1, D((int64_t)n), want);
}

static void activations(void **state) {
  unary_case("Relu", 6, 4, F(-2, 0, 3, NAN), F(0, 0, 3, NAN));
  unary_case("Sigmoid", 13, 5, F(0, 1, -1, 100, -100),
             F(0.5f, 0.7310585786f, 0.2689414214f, 1, 3.720076e-44f));
  unary_case("Tanh", 13, 4, F(0, 0.5f, -0.5f, 20), F(0, 0.4621171573f, -0.4621171573f, 1));
  /* Relu on integers (opset 14) */
  mb *b = mb_new(14);
  mb_input(b, "x", T_INT8, 1, D(3));
  mb_node(b, "r", "Relu", "x", "y");
  mb_output(b, "y", T_INT8, 1, D(3));
  model md;
  must_load(b, NULL, &md);
  int8_t v[3] = {-128, 0, 127};
  inferd_tensor x = tin("x", INFERD_TYPE_INT8, 1, D(3), v),
                y = {.name = "y", .dtype = INFERD_TYPE_INT8};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  assert_memory_equal(y.data, ((const int8_t[]){0, 0, 127}), 3);
  run_done(&t);
  unload(&md);
  /* Sigmoid has no integer kernel: refused at load */
  b = mb_new(13);
  mb_input(b, "x", T_INT32, 1, D(3));
  mb_node(b, "s", "Sigmoid", "x", "y");
  mb_output(b, "y", T_INT32, 1, D(3));
  load_fails(b, NULL, -ENOTSUP, "node 's' (Sigmoid, opset 13): type INT32 is not supported");
}

/* ---- Softmax ------------------------------------------------------------ */

static void softmax_case(int opset, int64_t axis, bool set_axis, const float *want) {
  mb *b = mb_new(opset);
  mb_input(b, "x", T_FLOAT, 3, D(2, 2, 2));
  Onnx__NodeProto *n = mb_node(b, "sm", "Softmax", "x", "y");
  if (set_axis) attr_i(b, n, "axis", axis);
  mb_output(b, "y", T_FLOAT, 3, D(2, 2, 2));
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 3, D(2, 2, 2), F(0, 0, 0, 0, 1, 2, 3, 4));
  run_f32(b, 1, &x, 3, D(2, 2, 2), want);
}

static void softmax_opsets(void **state) {
  /* exp(k)/sum for [0,0,0,0] and [1,2,3,4] */
  const float e4 = expf(1) + expf(2) + expf(3) + expf(4);
  const float q1 = expf(1) / e4, q2 = expf(2) / e4, q3 = expf(3) / e4, q4 = expf(4) / e4;
  const float s = 1 / (1 + expf(1)), t = 1 / (1 + expf(2)); /* pairs differing by 1 and 2 */
  /* opset 11, default axis 1: each [2,2] block flattened is one row */
  softmax_case(11, 0, false, F(0.25f, 0.25f, 0.25f, 0.25f, q1, q2, q3, q4));
  softmax_case(11, 1, true, F(0.25f, 0.25f, 0.25f, 0.25f, q1, q2, q3, q4));
  /* opset 11, axis 2: rows of 2 */
  softmax_case(11, 2, true, F(0.5f, 0.5f, 0.5f, 0.5f, s, 1 - s, s, 1 - s));
  /* opset 13, default axis -1: along the last dimension */
  softmax_case(13, 0, false, F(0.5f, 0.5f, 0.5f, 0.5f, s, 1 - s, s, 1 - s));
  /* opset 13, axis 1: along the middle dimension, pairs (1,3) and (2,4) */
  softmax_case(13, 1, true, F(0.5f, 0.5f, 0.5f, 0.5f, t, t, 1 - t, 1 - t));
  /* opset 13, axis 0: across the two blocks */
  softmax_case(13, 0, true,
               F(1 / (1 + expf(1)), 1 / (1 + expf(2)), 1 / (1 + expf(3)), 1 / (1 + expf(4)),
                 1 - 1 / (1 + expf(1)), 1 - 1 / (1 + expf(2)), 1 - 1 / (1 + expf(3)),
                 1 - 1 / (1 + expf(4))));
  /* a bad axis and an axis of the wrong attribute type */
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(2, 2));
  attr_i(b, mb_node(b, "sm", "Softmax", "x", "y"), "axis", 2);
  mb_output(b, "y", T_FLOAT, 2, D(2, 2));
  load_fails(b, NULL, -EINVAL, "axis 2 is out of range for rank 2");
  b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(2, 2));
  attr_f(b, mb_node(b, "sm", "Softmax", "x", "y"), "axis", 1.0f);
  mb_output(b, "y", T_FLOAT, 2, D(2, 2));
  load_fails(b, NULL, -EINVAL, "node 'sm' (Softmax, opset 13): attribute 'axis' must be an INT");
}

/* ---- shapes ------------------------------------------------------------- */

static const float iota24[24] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

static void flatten_reshape(void **state) {
  const int64_t axes[] = {0, 2, -1, 3};
  const int64_t want[][2] = {{1, 24}, {6, 4}, {6, 4}, {24, 1}};
  for (int i = 0; i < 4; i++) {
    mb *b = mb_new(13);
    mb_input(b, "x", T_FLOAT, 3, D(2, 3, 4));
    attr_i(b, mb_node(b, "f", "Flatten", "x", "y"), "axis", axes[i]);
    mb_output(b, "y", T_FLOAT, -1, NULL);
    inferd_tensor x = tin("x", INFERD_TYPE_FP32, 3, D(2, 3, 4), iota24);
    run_f32(b, 1, &x, 2, want[i], iota24);
  }
  /* Reshape: 0 copies a dimension, -1 takes the rest; with allowzero a 0
   * is a 0 */
  struct {
    int n;
    int64_t shape[4];
    bool allowzero;
    int yn;
    int64_t yd[4];
  } ok[] = {
      {2, {0, -1}, false, 2, {2, 12}},
      {3, {-1, 2, 2}, false, 3, {6, 2, 2}},
      {4, {0, 0, 2, 2}, false, 4, {2, 3, 2, 2}},
      {1, {24}, true, 1, {24}},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    mb *b = mb_new(14);
    mb_input(b, "x", T_FLOAT, 3, D(2, 3, 4));
    mb_init(b, "s", T_INT64, 1, D(ok[i].n), ok[i].shape);
    attr_i(b, mb_node(b, "r", "Reshape", "x,s", "y"), "allowzero", ok[i].allowzero);
    mb_output(b, "y", T_FLOAT, -1, NULL);
    inferd_tensor x = tin("x", INFERD_TYPE_FP32, 3, D(2, 3, 4), iota24);
    run_f32(b, 1, &x, ok[i].yn, ok[i].yd, iota24);
  }
  struct {
    int n;
    int64_t shape[3];
    bool allowzero;
    const char *msg;
  } bad[] = {
      {2, {-1, -1}, false, "more than one -1"},
      {2, {5, -1}, false, "cannot reshape [2,3,4] (24 elements) with a -1 dimension"},
      {2, {0, -1}, true, "with allowzero the shape cannot hold both 0 and -1"},
      {2, {4, 4}, false, "cannot reshape [2,3,4] to [4,4]"},
      {1, {-2}, false, "has a dimension -2"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mb *b = mb_new(14);
    mb_input(b, "x", T_FLOAT, 3, D(2, 3, 4));
    mb_init(b, "s", T_INT64, 1, D(bad[i].n), bad[i].shape);
    attr_i(b, mb_node(b, "r", "Reshape", "x,s", "y"), "allowzero", bad[i].allowzero);
    mb_output(b, "y", T_FLOAT, -1, NULL);
    load_fails(b, NULL, -EINVAL, bad[i].msg);
  }
}

/* Reshape(x, Shape(z)): the target shape follows z's dynamic first
 * dimension; it is computed when each plan is built. */
static void shape_arithmetic(void **state) {
  mb *b = mb_new(15);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 6));
  mb_input(b, "z", T_FLOAT, 3, D(-1, 3, 2));
  mb_node(b, "sh", "Shape", "z", "s");
  mb_node(b, "r", "Reshape", "x,s", "r");
  mb_node(b, "add", "Add", "r,z", "y");
  Onnx__NodeProto *n = mb_node(b, "sh2", "Shape", "z", "tail");
  attr_i(b, n, "start", -2);
  mb_output(b, "y", T_FLOAT, 3, D(-1, 3, 2));
  mb_output(b, "tail", T_INT64, 1, D(2));
  cfg c = {.max_batch = 8};
  model md;
  must_load(b, &c, &md);
  for (int64_t batch = 1; batch <= 4; batch++) {
    float zero[24] = {0};
    inferd_tensor in[2] = {tin("x", INFERD_TYPE_FP32, 2, D(batch, 6), iota24),
                           tin("z", INFERD_TYPE_FP32, 3, D(batch, 3, 2), zero)};
    inferd_tensor out[2] = {{.name = "y", .dtype = INFERD_TYPE_FP32},
                            {.name = "tail", .dtype = INFERD_TYPE_INT64}};
    test_exec t;
    assert_int_equal(run(&md, &t, 2, in, 2, out, NULL), 0);
    expect_f32(&out[0], 3, D(batch, 3, 2), iota24);
    assert_int_equal(out[1].ndim, 1);
    assert_int_equal(out[1].shape[0], 2);
    assert_memory_equal(out[1].data, D(3, 2), 16);
    run_done(&t);
  }
  unload(&md);
}

static void constant_identity(void **state) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(3));
  attr_floats(b, mb_node(b, "k", "Constant", "", "k"), "value_floats", 3, F(1, 2, 3));
  Onnx__NodeProto *n = mb_node(b, "k2", "Constant", "", "k2");
  attr_t(b, n, "value", mb_tensor(b, "", T_FLOAT, 0, D(0), F(10)));
  mb_node(b, "kk", "Mul", "k,k2", "kk"); /* folded at load */
  mb_node(b, "i", "Identity", "x", "xi");
  mb_node(b, "add", "Add", "xi,kk", "y");
  mb_output(b, "y", T_FLOAT, 1, D(3));
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 1, D(3), F(0.5f, 0.25f, 0));
  run_f32(b, 1, &x, 1, D(3), F(10.5f, 20.25f, 30));
  /* a Constant's value must be one supported attribute */
  b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(1));
  n = mb_node(b, "k", "Constant", "", "k");
  mb_attr(b, n, "value_strings", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
  mb_node(b, "add", "Add", "x,k", "y");
  mb_output(b, "y", T_FLOAT, 1, D(1));
  load_fails(b, NULL, -ENOTSUP,
             "node 'k' (Constant, opset 13): attribute 'value_strings' is not supported");
}

/* ---- Cast --------------------------------------------------------------- */

static void cast_values(void **state) {
  /* float -> int32 saturates, NaN -> 0; float -> fp16/bf16 round to
   * nearest even; -> bool is != 0 */
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(6));
  attr_i(b, mb_node(b, "c1", "Cast", "x", "i"), "to", T_INT32);
  attr_i(b, mb_node(b, "c2", "Cast", "x", "h"), "to", T_FP16);
  attr_i(b, mb_node(b, "c3", "Cast", "x", "bf"), "to", T_BF16);
  attr_i(b, mb_node(b, "c4", "Cast", "x", "b"), "to", T_BOOL);
  mb_output(b, "i", T_INT32, 1, D(6));
  mb_output(b, "h", T_FP16, 1, D(6));
  mb_output(b, "bf", T_BF16, 1, D(6));
  mb_output(b, "b", T_BOOL, 1, D(6));
  model md;
  must_load(b, NULL, &md);
  /* 1 + 2^-11 + 2^-12 is above the fp16 halfway point; 1 + 2^-8 + 2^-9
   * above bf16's */
  float v[6] = {1.7f, -1.7f, 3e9f, NAN, 1.0f + 0x1p-11f + 0x1p-12f, 1.0f + 0x1p-8f + 0x1p-9f};
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 1, D(6), v);
  inferd_tensor out[4] = {{.name = "i", .dtype = INFERD_TYPE_INT32},
                          {.name = "h", .dtype = INFERD_TYPE_FP16},
                          {.name = "bf", .dtype = INFERD_TYPE_BF16},
                          {.name = "b", .dtype = INFERD_TYPE_BOOL}};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 4, out, NULL), 0);
  const int32_t *i = out[0].data;
  assert_int_equal(i[0], 1);
  assert_int_equal(i[1], -1);
  assert_int_equal(i[2], INT32_MAX);
  assert_int_equal(i[3], 0);
  const uint16_t *h = out[1].data, *bf = out[2].data;
  assert_true(fp16_to_float(h[0]) == 1.7001953125f);
  assert_true(fp16_to_float(h[4]) == 1.0f + 0x1p-10f);
  assert_true(bf16_to_float(bf[5]) == 1.0f + 0x1p-7f);
  assert_memory_equal(out[3].data, ((const uint8_t[]){1, 1, 1, 1, 1, 1}), 6);
  run_done(&t);
  unload(&md);

  /* int64 -> int8 wraps; double -> fp16 rounds once (not through float) */
  b = mb_new(13);
  mb_input(b, "x", T_INT64, 1, D(3));
  mb_input(b, "d", T_DOUBLE, 1, D(1));
  attr_i(b, mb_node(b, "c1", "Cast", "x", "y"), "to", T_INT8);
  attr_i(b, mb_node(b, "c2", "Cast", "d", "h"), "to", T_FP16);
  mb_output(b, "y", T_INT8, 1, D(3));
  mb_output(b, "h", T_FP16, 1, D(1));
  must_load(b, NULL, &md);
  int64_t w[3] = {300, -129, 5};
  double d = 1.0 + 0x1p-11 + 0x1p-40; /* via float it would tie and round down to 1 */
  inferd_tensor in[2] = {tin("x", INFERD_TYPE_INT64, 1, D(3), w),
                         tin("d", INFERD_TYPE_FP64, 1, D(1), &d)};
  inferd_tensor o2[2] = {{.name = "y", .dtype = INFERD_TYPE_INT8},
                         {.name = "h", .dtype = INFERD_TYPE_FP16}};
  assert_int_equal(run(&md, &t, 2, in, 2, o2, NULL), 0);
  assert_memory_equal(o2[0].data, ((const int8_t[]){44, 127, 5}), 3);
  assert_true(fp16_to_float(*(const uint16_t *)o2[1].data) == 1.0f + 0x1p-10f);
  run_done(&t);
  unload(&md);

  /* strings are refused */
  b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(1));
  attr_i(b, mb_node(b, "c", "Cast", "x", "y"), "to", T_STRING);
  mb_output(b, "y", T_STRING, 1, D(1));
  load_fails(b, NULL, -ENOTSUP,
             "node 'c' (Cast, opset 13): attribute to=8 (STRING) is not supported");
}

/* ---- ArgMax ------------------------------------------------------------- */

static void argmax_case(int64_t axis, int keepdims, int last, int yn, const int64_t *yd,
                        const int64_t *want) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(2, 3));
  Onnx__NodeProto *n = mb_node(b, "am", "ArgMax", "x", "y");
  attr_i(b, n, "axis", axis);
  if (keepdims >= 0) attr_i(b, n, "keepdims", keepdims);
  if (last >= 0) attr_i(b, n, "select_last_index", last);
  mb_output(b, "y", T_INT64, -1, NULL);
  model md;
  must_load(b, NULL, &md);
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 2, D(2, 3), F(1, 5, 5, 7, 2, 7));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_INT64};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  assert_int_equal(y.ndim, yn);
  for (int i = 0; i < yn; i++)
    assert_int_equal(y.shape[i], yd[i]);
  assert_memory_equal(y.data, want, (size_t)shape_elements(yd, yn) * 8);
  run_done(&t);
  unload(&md);
}

static void argmax(void **state) {
  argmax_case(1, -1, -1, 2, D(2, 1), D(1, 0));  /* keepdims defaults to 1; first of ties */
  argmax_case(1, 0, 1, 1, D(2), D(2, 2));       /* last of ties */
  argmax_case(-1, 0, 0, 1, D(2), D(1, 0));      /* negative axis */
  argmax_case(0, 1, 0, 2, D(1, 3), D(1, 0, 1)); /* along the first */
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(2, 3));
  attr_i(b, mb_node(b, "am", "ArgMax", "x", "y"), "keepdims", 2);
  mb_output(b, "y", T_INT64, -1, NULL);
  load_fails(b, NULL, -ENOTSUP, "attribute keepdims=2 is not supported (0 or 1)");
}

/* ---- load errors -------------------------------------------------------- */

/* An auto_pad that is none of ONNX's four values is refused, by Conv and
 * by the pooling operators alike, and names the choices. */
static void auto_pad_refused(void **state) {
  (void)state;
  static const char *const ops[] = {"Conv", "MaxPool", "AveragePool"};
  for (size_t i = 0; i < 3; i++) {
    mb *b = mb_new(13);
    mb_input(b, "x", T_FLOAT, 4, D(1, 1, 4, 4));
    bool conv = i == 0;
    if (conv) mb_init(b, "w", T_FLOAT, 4, D(1, 1, 2, 2), F(1, 1, 1, 1));
    Onnx__NodeProto *n = mb_node(b, "p", ops[i], conv ? "x,w" : "x", "y");
    attr_ints(b, n, "kernel_shape", 2, D(2, 2));
    attr_s(b, n, "auto_pad", "SAME");
    mb_output(b, "y", T_FLOAT, -1, NULL);
    load_fails(b, NULL, -EINVAL, "auto_pad 'SAME' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  }
}

static mb *relu_model(int opset) {
  mb *b = mb_new(opset);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 4));
  mb_node(b, "r", "Relu", "x", "y");
  mb_output(b, "y", T_FLOAT, 2, D(-1, 4));
  return b;
}

static void unsupported(void **state) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(1, 4));
  mb_node(b, "fc3", "Gelu", "x", "y");
  mb_output(b, "y", T_FLOAT, 2, D(1, 4));
  load_fails(b, NULL, -ENOTSUP, "node 'fc3' (Gelu, opset 13) is not supported");

  b = mb_new(6); /* Add before numpy broadcasting */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "", "Add", "x,x", "y");
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -ENOTSUP, "node '#0' (Add, opset 6) is not supported");

  b = mb_new_domain(13, "com.microsoft", 1);
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "g", "FusedGemm", "x", "y")->domain = "com.microsoft";
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -ENOTSUP, "node 'g' (com.microsoft.FusedGemm, opset 1) is not supported");

  load_fails(relu_model(18), NULL, -ENOTSUP,
             "ai.onnx opset 18; this backend knows opsets up to 17");
  load_fails(relu_model(0), NULL, -EINVAL, "the model imports no ai.onnx opset");

  b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(2, 2));
  attr_i(b, mb_node(b, "fc", "Gemm", "x,x", "y"), "transA", 2);
  mb_output(b, "y", T_FLOAT, 2, D(2, 2));
  load_fails(b, NULL, -ENOTSUP, "node 'fc' (Gemm, opset 13): attribute transA=2 is not supported");

  b = mb_new(13); /* wrong arity */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "r", "Relu", "x,x", "y");
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -EINVAL,
             "node 'r' (Relu, opset 13) has 2 inputs and 1 outputs; Relu takes 1 to 1");

  b = mb_new(13); /* sequences are not tensors */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  b->ins[0]->type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
  b->ins[0]->type->sequence_type = NULL;
  mb_node(b, "r", "Relu", "x", "y");
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -ENOTSUP, "input 'x' is not a tensor");
}

static void malformed_files(void **state) {
  model md;
  /* bytes that are not a protobuf */
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34, 0x56, 0x78, 0x9a};
  assert_int_equal(load_bytes(junk, sizeof junk, NULL, &md), -EINVAL);
  assert_non_null(strstr(md.err, "not an ONNX model"));
  /* a protobuf that is not a model (a string field) */
  const uint8_t text[] = "\x12\x05hello";
  assert_int_equal(load_bytes(text, sizeof text - 1, NULL, &md), -EINVAL);
  /* an empty file, a missing one */
  assert_int_equal(load_bytes(junk, 0, NULL, &md), -EINVAL);
  assert_non_null(strstr(md.err, "is empty"));
  cfg c = {.path = "/nonexistent/model.onnx"};
  assert_int_equal(load_bytes(junk, 1, &c, &md), -ENOENT);
  assert_non_null(strstr(md.err, "cannot open '/nonexistent/model.onnx'"));

  /* every truncation of a valid model fails cleanly: protobuf-c refuses a
   * cut field, and a cut at a field boundary loses the opset import (the
   * last field written) */
  mb *b = relu_model(13);
  mb_init(b, "unused", T_FLOAT, 1, D(4), F(1, 2, 3, 4));
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  mb_free(b);
  assert_int_equal(load_bytes(bytes, len, NULL, &md), 0);
  unload(&md);
  for (size_t cut = 1; cut < len; cut++) {
    int rc = load_bytes(bytes, cut, NULL, &md);
    if (rc == 0) print_message("a model cut at %zu of %zu bytes loaded\n", cut, len);
    assert_true(rc < 0);
  }
  free(bytes);
}

static void graph_errors(void **state) {
  /* a cycle: a = Add(x, b), b = Relu(a) */
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "A", "Add", "x,b", "a");
  mb_node(b, "B", "Relu", "a", "b");
  mb_output(b, "b", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -EINVAL, "the graph has a cycle through node 'A' (Add, opset 13)");

  b = mb_new(13); /* an input nobody makes */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "r", "Relu", "nope", "y");
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -EINVAL,
             "node 'r' (Relu, opset 13): input 'nope' is not a graph input, an initializer or "
             "any node's output");

  b = mb_new(13); /* two producers */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "r1", "Relu", "x", "y");
  mb_node(b, "r2", "Relu", "x", "y");
  mb_output(b, "y", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -EINVAL,
             "node 'r2' (Relu, opset 13) produces 'y', which is already another node's output");

  b = mb_new(13); /* an output nobody makes */
  mb_input(b, "x", T_FLOAT, 1, D(4));
  mb_node(b, "r", "Relu", "x", "y");
  mb_output(b, "z", T_FLOAT, 1, D(4));
  load_fails(b, NULL, -EINVAL, "graph output 'z' is not produced by any node");

  /* nodes listed out of order are sorted */
  b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 1, D(2));
  mb_node(b, "last", "Mul", "b,b", "y");
  mb_node(b, "first", "Sub", "x,x", "a");
  mb_node(b, "mid", "Add", "a,x", "b");
  mb_output(b, "y", T_FLOAT, 1, D(2));
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 1, D(2), F(3, -2));
  run_f32(b, 1, &x, 1, D(2), F(9, 4));
}

/* ---- configuration ------------------------------------------------------ */

static mb *two_outputs(void) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 4));
  mb_init(b, "w", T_FLOAT, 2, D(4, 2), F(1, 0, 0, 1, 1, 0, 0, 1));
  mb_node(b, "mm", "MatMul", "x,w", "y");
  mb_node(b, "s", "Sigmoid", "x", "z");
  mb_output(b, "y", T_FLOAT, -1, NULL); /* no shape declared: inferred */
  mb_output(b, "z", T_FLOAT, 2, D(-1, 4));
  return b;
}

static void configuration(void **state) {
  inferd_tensor_desc good_in = {.name = "x", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {4}};
  inferd_tensor_desc y_out = {.name = "y", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {2}};
  model md;

  /* model_io: -1 for dim_param; y's shape inferred with a variable batch */
  must_load(two_outputs(), NULL, &md);
  size_t ni, no;
  const inferd_tensor_desc *in, *out;
  assert_int_equal(onnx_backend()->model_io(md.m, &ni, &in, &no, &out), 0);
  assert_int_equal(ni, 1);
  assert_int_equal(no, 2);
  assert_string_equal(in[0].name, "x");
  assert_int_equal(in[0].ndim, 2);
  assert_int_equal(in[0].dims[0], -1);
  assert_int_equal(in[0].dims[1], 4);
  assert_string_equal(out[0].name, "y");
  assert_int_equal(out[0].dtype, INFERD_TYPE_FP32);
  assert_int_equal(out[0].ndim, 2);
  assert_int_equal(out[0].dims[0], -1);
  assert_int_equal(out[0].dims[1], 2);
  /* weights (w packed into one panel of 16 columns), then the plan an
   * execute makes */
  size_t weights = 4 * 16 * sizeof(float);
  assert_int_equal(onnx_backend()->model_memory(md.m), weights);
  inferd_tensor x1 = tin("x", INFERD_TYPE_FP32, 2, D(1, 4), F(1, 2, 3, 4));
  inferd_tensor o1[2] = {{.name = "y", .dtype = INFERD_TYPE_FP32},
                         {.name = "z", .dtype = INFERD_TYPE_FP32}};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x1, 2, o1, NULL), 0);
  run_done(&t);
  assert_true(onnx_backend()->model_memory(md.m) > weights);
  unload(&md);

  /* a configuration listing one output: only it is computed and returned */
  cfg c = {.max_batch = 4, .n_in = 1, .in = &good_in, .n_out = 1, .out = &y_out};
  must_load(two_outputs(), &c, &md);
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 2, D(2, 4), F(1, 2, 3, 4, 5, 6, 7, 8));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  expect_f32(&y, 2, D(2, 2), F(4, 6, 12, 14));
  run_done(&t);
  unload(&md);

  struct {
    inferd_tensor_desc in;
    int max_batch;
    const char *msg;
  } bad[] = {
      {{.name = "q", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {4}},
       4,
       "configuration input 'q' is not an input of the model; it has: x FP32 [-1,4]"},
      {{.name = "x", .dtype = INFERD_TYPE_FP16, .ndim = 1, .dims = {4}},
       4,
       "input 'x': the configuration says FP16 but the model has FP32"},
      {{.name = "x", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {5}},
       4,
       "input 'x': the configuration's shape [-1,5] (batch included) does not fit the model's "
       "[-1,4]"},
      {{.name = "x", .dtype = INFERD_TYPE_FP32, .ndim = 2, .dims = {-1, 4}}, 0, ""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cfg ci = {.max_batch = bad[i].max_batch, .n_in = 1, .in = &bad[i].in};
    if (*bad[i].msg) {
      load_fails(two_outputs(), &ci, -EINVAL, bad[i].msg);
    } else {
      must_load(two_outputs(), &ci, &md); /* no batching: dims include the batch */
      unload(&md);
    }
  }
  inferd_tensor_desc z_bad = {.name = "z", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {3}};
  cfg co = {.max_batch = 4, .n_out = 1, .out = &z_bad};
  load_fails(two_outputs(), &co, -EINVAL, "output 'z': the configuration's shape [-1,3]");
  inferd_tensor_desc w_bad = {.name = "w", .dtype = INFERD_TYPE_FP32, .ndim = 1, .dims = {2}};
  co.out = &w_bad;
  load_fails(two_outputs(), &co, -EINVAL,
             "configuration output 'w' is not an output of the model; it has: y FP32 [?], z FP32 "
             "[-1,4]");

  /* a fixed first dimension cannot batch */
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(1, 4));
  mb_node(b, "r", "Relu", "x", "y");
  mb_output(b, "y", T_FLOAT, 2, D(1, 4));
  cfg cb = {.max_batch = 8};
  load_fails(b, &cb, -EINVAL,
             "first dimension is fixed at 1, so it cannot take batches of up to 8");

  /* intra_op_threads */
  inferd_param p = {"intra_op_threads", "two"};
  cfg cp = {.n_params = 1, .params = &p};
  load_fails(relu_model(13), &cp, -EINVAL, "intra_op_threads='two' must be an integer from 1");
  p.value = "2"; /* oneDNN may use two threads: the product is the same */
  must_load(two_outputs(), &cp, &md);
  static float big[256 * 4];
  for (int i = 0; i < 256 * 4; i++)
    big[i] = (float)(i % 13);
  x = tin("x", INFERD_TYPE_FP32, 2, D(256, 4), big);
  inferd_tensor o2[2] = {{.name = "y", .dtype = INFERD_TYPE_FP32},
                         {.name = "z", .dtype = INFERD_TYPE_FP32}};
  assert_int_equal(run(&md, &t, 1, &x, 2, o2, NULL), 0);
  for (int r = 0; r < 256; r++) {
    const float *row = (const float *)o2[0].data + r * 2;
    assert_true(row[0] == big[r * 4] + big[r * 4 + 2] && row[1] == big[r * 4 + 1] + big[r * 4 + 3]);
  }
  run_done(&t);
  unload(&md);
}

/* ---- executor ----------------------------------------------------------- */

/* Six Relus in a row on [1,256]: the five intermediates need two buffers
 * between them, the last one is the output (written in place). */
static void memory_plan(void **state) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 256));
  const char *names[] = {"x", "a", "b", "c", "d", "e", "y"};
  for (int i = 0; i < 6; i++) {
    char ins[8], outs[8];
    snprintf(ins, sizeof ins, "%s", names[i]);
    snprintf(outs, sizeof outs, "%s", names[i + 1]);
    mb_node(b, NULL, i % 2 ? "Relu" : "Tanh", ins, outs);
  }
  mb_output(b, "y", T_FLOAT, 2, D(-1, 256));
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  mb_free(b);
  onnx_model *m;
  err e = {0};
  assert_int_equal(onnx_model_parse(bytes, len, &m, &e), 0);
  free(bytes);
  onnx_plan *p;
  for (int64_t batch = 1; batch <= 3; batch++) {
    int ndim = 2;
    int64_t shape[1][ONNX_MAX_DIMS] = {{batch, 256}};
    assert_int_equal(
        onnx_plan_build(m, &ndim, (const int64_t(*)[ONNX_MAX_DIMS])shape, NULL, &p, &e), 0);
    assert_int_equal(onnx_plan_workspace(p), 2 * (size_t)batch * 256 * sizeof(float));
    onnx_plan_free(p);
  }
  /* a shape the model does not declare */
  int ndim = 2;
  int64_t shape[1][ONNX_MAX_DIMS] = {{1, 255}};
  assert_int_equal(onnx_plan_build(m, &ndim, (const int64_t(*)[ONNX_MAX_DIMS])shape, NULL, &p, &e),
                   -EINVAL);
  assert_string_equal(e.msg, "input 'x' has shape [1,255]; the model expects [-1,256]");
  onnx_model_free(m);
}

/* Outputs that cannot be computed in place: a graph input, a constant, and
 * two outputs sharing one tensor's memory; one output not wanted. */
static void output_placement(void **state) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 2));
  mb_init(b, "k", T_FLOAT, 1, D(2), F(7, 8));
  mb_node(b, "id", "Identity", "x", "same");
  mb_node(b, "idk", "Identity", "k", "konst");
  mb_node(b, "r", "Relu", "x", "r");
  mb_node(b, "f", "Flatten", "r", "flat");
  mb_output(b, "same", T_FLOAT, 2, D(-1, 2));
  mb_output(b, "konst", T_FLOAT, 1, D(2));
  mb_output(b, "r", T_FLOAT, 2, D(-1, 2));
  mb_output(b, "flat", T_FLOAT, 2, D(-1, 2));
  cfg c = {.max_batch = 2};
  model md;
  must_load(b, &c, &md);
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 2, D(2, 2), F(-1, 2, 3, -4));
  inferd_tensor out[4] = {{.name = "same", .dtype = INFERD_TYPE_FP32},
                          {.name = "konst", .dtype = INFERD_TYPE_FP32},
                          {.name = "r", .dtype = INFERD_TYPE_FP32},
                          {.name = "flat", .dtype = INFERD_TYPE_FP32}};
  bool wanted[4] = {true, true, true, false};
  test_exec t;
  for (int round = 0; round < 2; round++) { /* the second from the plan cache */
    assert_int_equal(run(&md, &t, 1, &x, 4, out, wanted), 0);
    expect_f32(&out[0], 2, D(2, 2), F(-1, 2, 3, -4));
    assert_true(out[0].data != x.data);
    expect_f32(&out[1], 1, D(2), F(7, 8));
    expect_f32(&out[2], 2, D(2, 2), F(0, 2, 3, 0));
    assert_int_equal(out[3].ndim, 2);
    run_done(&t);
  }
  wanted[3] = true;
  assert_int_equal(run(&md, &t, 1, &x, 4, out, wanted), 0);
  expect_f32(&out[3], 2, D(2, 2), F(0, 2, 3, 0));
  run_done(&t);
  unload(&md);
}

/* More shapes than the plan cache holds, then the first again. */
static void plan_cache(void **state) {
  mb *b = mb_new(13);
  mb_input(b, "x", T_FLOAT, 2, D(-1, 3));
  mb_init(b, "w", T_FLOAT, 2, D(3, 2), F(1, 0, 0, 1, 1, 1));
  mb_init(b, "c", T_FLOAT, 1, D(2), F(0.5f, -0.5f));
  mb_node(b, "fc", "Gemm", "x,w,c", "h");
  mb_node(b, "sm", "Softmax", "h", "y");
  mb_output(b, "y", T_FLOAT, 2, D(-1, 2));
  cfg c = {.max_batch = 64};
  model md;
  must_load(b, &c, &md);
  static float xs[64 * 3], want[64 * 2];
  for (int i = 0; i < 64; i++) {
    xs[i * 3] = (float)i * 0.1f;
    xs[i * 3 + 1] = 1;
    xs[i * 3 + 2] = -(float)i * 0.05f;
    float h0 = xs[i * 3] + xs[i * 3 + 2] + 0.5f, h1 = xs[i * 3 + 1] + xs[i * 3 + 2] - 0.5f;
    want[i * 2] = 1 / (1 + expf(h1 - h0));
    want[i * 2 + 1] = 1 - want[i * 2];
  }
  const int64_t order[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 64, 4, 6, 7, 9, 10, 11, 12, 1, 64, 2};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    inferd_tensor x = tin("x", INFERD_TYPE_FP32, 2, D(order[i], 3), xs);
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
    expect_f32(&y, 2, D(order[i], 2), want);
    run_done(&t);
  }
  size_t mem = onnx_backend()->model_memory(md.m);
  assert_true(mem >= (6 + 2) * sizeof(float) + 64 * 2 * sizeof(float));
  unload(&md);
}

static void request_errors(void **state) {
  model md;
  cfg c = {.max_batch = 4};
  must_load(relu_model(13), &c, &md);
  float v[8] = {0};
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  inferd_tensor x = tin("x", INFERD_TYPE_FP64, 2, D(1, 4), v);
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), -EINVAL);
  assert_string_equal(md.err, "input 'x' has type FP64; the model expects FP32");
  x = tin("x", INFERD_TYPE_FP32, 2, D(1, 5), v);
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), -EINVAL);
  assert_string_equal(md.err, "input 'x' has shape [1,5]; the model expects [-1,4]");
  x = tin("x", INFERD_TYPE_FP32, 2, D(1, 4), v);
  x.byte_size = 12;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), -EINVAL);
  assert_non_null(strstr(md.err, "does not match its shape"));
  x = tin("nope", INFERD_TYPE_FP32, 2, D(1, 4), v);
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), -EINVAL);
  assert_string_equal(md.err, "unexpected input 'nope'");
  x = tin("x", INFERD_TYPE_FP32, 2, D(2, 4), v); /* and a good one still works */
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  run_done(&t);
  unload(&md);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(registry_tables),    cmocka_unit_test(gemm_by_hand),
      cmocka_unit_test(gemm_grid),          cmocka_unit_test(gemm_packed_sizes),
      cmocka_unit_test(matmul_shapes),      cmocka_unit_test(arithmetic_broadcast),
      cmocka_unit_test(integer_arithmetic), cmocka_unit_test(activations),
      cmocka_unit_test(softmax_opsets),     cmocka_unit_test(flatten_reshape),
      cmocka_unit_test(shape_arithmetic),   cmocka_unit_test(constant_identity),
      cmocka_unit_test(cast_values),        cmocka_unit_test(argmax),
      cmocka_unit_test(auto_pad_refused),   cmocka_unit_test(unsupported),
      cmocka_unit_test(malformed_files),    cmocka_unit_test(graph_errors),
      cmocka_unit_test(configuration),      cmocka_unit_test(memory_plan),
      cmocka_unit_test(output_placement),   cmocka_unit_test(plan_cache),
      cmocka_unit_test(request_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
