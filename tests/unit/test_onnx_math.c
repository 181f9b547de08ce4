/* Unit tests of the ONNX backend's math operators (onnx_ops_elementwise.c,
 * _unary, _activation, _logic, _softmax, _reduce, _layernorm, _loss,
 * _einsum, _cast) against hand-computed values, for the semantics that the
 * ONNX node tests leave unexercised or that are easy to get subtly wrong:
 * broadcasting patterns, integer wrap-around and division by zero, the
 * signs of Mod, Round's halves, NaN through Min/Max/ArgMax/TopK, TopK's
 * ties, reductions over no axes, several axes and empty sets, the losses'
 * ignore_index, Einsum's diagonals and ellipses, the accuracy of the
 * vectorised exp and erf, and the messages for what is not supported.
 *
 * Each test builds a one-node (or few-node) model with protobuf-c, loads
 * it through the backend table and executes it, as a request would. */
#include <float.h>
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
#include "backends/onnx/onnx_ops.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_test_model.h"

#define I32(...) ((const int32_t[]){__VA_ARGS__})
#define I64(...) ((const int64_t[]){__VA_ARGS__})

/* ---- building models (onnx_test_model.h) --------------------------------- */

/* An input or initializer typed by inferd's dtype (the builder takes
 * ONNX's). */
static void input_of(mb *b, const char *name, inferd_dtype t, int ndim, const int64_t *dims) {
  mb_input(b, name, onnx_dtype_to_proto(t), ndim, dims);
}

static void init_of(mb *b, const char *name, inferd_dtype t, int ndim, const int64_t *dims,
                    const void *data) {
  mb_init(b, name, onnx_dtype_to_proto(t), ndim, dims, data);
}

/* ---- loading and running ------------------------------------------------ */

/* Loads the model (b freed); returns model_load's or instance_create's
 * code (the message in md->err). */
static int load(mb *b, model *md) {
  size_t len;
  uint8_t *bytes = mb_pack(b, &len);
  mb_free(b);
  inferd_model_desc d = {.name = "t", .version = 1};
  int rc = mb_load_bytes(bytes, len, &d, md);
  free(bytes);
  return rc;
}

/* Expects loading b (given its output y0 here) to fail with code and a
 * message containing text. */
static void load_fails(mb *b, int code, const char *text) {
  mb_output(b, "y0", 0, -1, NULL);
  model md;
  int rc = load(b, &md);
  if (rc != code || !strstr(md.err, text))
    print_message("rc %d, message '%s'; expected %d and '%s'\n", rc, md.err, code, text);
  assert_int_equal(rc, code);
  assert_non_null(strstr(md.err, text));
  unload(&md);
}

/* The result of one execute: up to 4 outputs, called y0..y3 in models. */
typedef struct result {
  model md;
  test_exec t;
  int rc;
  inferd_tensor out[4];
} result;

/* Loads b (which must load), declares its outputs y0..y<n_out-1>, runs
 * the inputs through it. The caller checks r->rc and frees with done(). */
static void exec_model(mb *b, size_t n_in, const inferd_tensor *in, size_t n_out, result *r) {
  static const char *const names[4] = {"y0", "y1", "y2", "y3"};
  for (size_t j = 0; j < n_out; j++)
    mb_output(b, names[j], 0, -1, NULL);
  memset(r, 0, sizeof *r);
  int rc = load(b, &r->md);
  if (rc) print_message("load failed: %s\n", r->md.err);
  assert_int_equal(rc, 0);
  const inferd_tensor_desc *din, *dout;
  size_t ni, no;
  onnx_backend()->model_io(r->md.m, &ni, &din, &no, &dout);
  for (size_t j = 0; j < n_out; j++)
    r->out[j] = (inferd_tensor){.name = names[j], .dtype = dout[j].dtype};
  r->rc = run(&r->md, &r->t, n_in, in, n_out, r->out, NULL);
}

static void done(result *r) {
  run_done(&r->t);
  unload(&r->md);
}

/* Runs and requires success. */
static void exec_ok(mb *b, size_t n_in, const inferd_tensor *in, size_t n_out, result *r) {
  exec_model(b, n_in, in, n_out, r);
  if (r->rc) print_message("execute failed: %s\n", r->md.err);
  assert_int_equal(r->rc, 0);
}

static void expect_shape(const inferd_tensor *o, inferd_dtype t, int ndim, const int64_t *dims) {
  assert_int_equal(o->dtype, t);
  assert_int_equal(o->ndim, ndim);
  for (int i = 0; i < ndim; i++)
    assert_int_equal(o->shape[i], dims[i]);
}

/* Float results equal within a few ulp (NaN matches NaN, infinities and
 * signed zeros exactly). */
static bool close_f(double got, double want, double rtol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want) || want == 0) return got == want && signbit(got) == signbit(want);
  return fabs(got - want) <= rtol * fabs(want);
}

static void expect_f32(const inferd_tensor *o, int ndim, const int64_t *dims, const float *want) {
  expect_shape(o, INFERD_TYPE_FP32, ndim, dims);
  int64_t n = shape_elements(dims, ndim);
  for (int64_t i = 0; i < n; i++) {
    float g = ((const float *)o->data)[i];
    if (!close_f(g, want[i], 1e-6)) {
      print_message("element %lld: got %.9g, want %.9g\n", (long long)i, g, want[i]);
      fail();
    }
  }
}

static void expect_bytes(const inferd_tensor *o, inferd_dtype t, int ndim, const int64_t *dims,
                         const void *want) {
  expect_shape(o, t, ndim, dims);
  assert_memory_equal(o->data, want, (size_t)shape_elements(dims, ndim) * dtype_size(t));
}

/* A model of one node over inputs x0, x1, ... (declared like the given
 * tensors) into y0, y1, ...; the caller adds attributes to *node. */
static mb *one_node(int opset, const char *op, size_t n_in, const inferd_tensor *in, int n_out,
                    Onnx__NodeProto **node) {
  mb *b = mb_new(opset);
  char ins[64] = "", outs[64] = "";
  for (size_t k = 0; k < n_in; k++) {
    input_of(b, in[k].name, in[k].dtype, in[k].ndim, in[k].shape);
    snprintf(ins + strlen(ins), sizeof ins - strlen(ins), "%s%s", k ? "," : "", in[k].name);
  }
  for (int j = 0; j < n_out; j++)
    snprintf(outs + strlen(outs), sizeof outs - strlen(outs), "%sy%d", j ? "," : "", j);
  *node = mb_node(b, "n", op, ins, outs);
  return b;
}

/* ---- broadcasting ------------------------------------------------------- */

static void broadcasting(void **state) {
  /* [2,1] - [1,3]: the innermost run repeats a, walks b */
  inferd_tensor in[3] = {tin("a", INFERD_TYPE_FP32, 2, D(2, 1), F(10, 20)),
                         tin("b", INFERD_TYPE_FP32, 2, D(1, 3), F(1, 2, 3))};
  Onnx__NodeProto *n;
  result r;
  exec_ok(one_node(14, "Sub", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 3), F(9, 8, 7, 19, 18, 17));
  done(&r);

  /* Sum of [2,1], [2,1], [1,3]: the first pair repeats one value along
   * each output row; the third then accumulates a row into each */
  in[1] = tin("b", INFERD_TYPE_FP32, 2, D(2, 1), F(1, 2));
  in[2] = tin("c", INFERD_TYPE_FP32, 2, D(1, 3), F(100, 200, 300));
  exec_ok(one_node(13, "Sum", 3, in, 1, &n), 3, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 3), F(111, 211, 311, 122, 222, 322));
  done(&r);
  exec_ok(one_node(13, "Mean", 3, in, 1, &n), 3, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 3), F(37, 70.333333f, 103.666667f, 40.666667f, 74, 107.333333f));
  done(&r);

  /* Where over bool [3], float [2,1] and a float scalar */
  const uint8_t cond[3] = {1, 0, 7}; /* any non-zero byte is true */
  inferd_tensor w[3] = {tin("c", INFERD_TYPE_BOOL, 1, D(3), cond),
                        tin("x", INFERD_TYPE_FP32, 2, D(2, 1), F(1, 2)),
                        tin("y", INFERD_TYPE_FP32, 0, D(0), F(-1))};
  exec_ok(one_node(16, "Where", 3, w, 1, &n), 3, w, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 3), F(1, -1, 1, 2, -1, 2));
  done(&r);

  /* PRelu: the slope broadcasts to X, not the other way */
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(2, 2), F(-1, 2, -3, 4));
  in[1] = tin("s", INFERD_TYPE_FP32, 1, D(2), F(0.5f, 0.25f));
  exec_ok(one_node(16, "PRelu", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 2), F(-0.5f, 2, -1.5f, 4));
  done(&r);
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(2), F(-1, 2));
  in[1] = tin("s", INFERD_TYPE_FP32, 2, D(2, 2), F(1, 2, 3, 4));
  load_fails(one_node(16, "PRelu", 2, in, 1, &n), -EINVAL, "does not broadcast to X [2]");

  /* mismatched shapes */
  in[0] = tin("a", INFERD_TYPE_FP32, 1, D(3), F(1, 2, 3));
  in[1] = tin("b", INFERD_TYPE_FP32, 1, D(2), F(1, 2));
  load_fails(one_node(13, "Max", 2, in, 1, &n), -EINVAL, "shapes [3] and [2] do not broadcast");
}

/* ---- integers ----------------------------------------------------------- */

static void integer_wrap(void **state) {
  Onnx__NodeProto *n;
  result r;
  const int8_t a8[3] = {127, -128, 100}, b8[3] = {1, -1, 100};
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_INT8, 1, D(3), a8),
                         tin("b", INFERD_TYPE_INT8, 1, D(3), b8)};
  exec_ok(one_node(14, "Add", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){-128, 127, -56}));
  done(&r);
  exec_ok(one_node(14, "Mul", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){127, -128, 16}));
  done(&r);
  exec_ok(one_node(14, "Div", 2, in, 1, &n), 2, in, 1, &r); /* -128 / -1 wraps */
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){127, -128, 1}));
  done(&r);

  const int32_t m32[3] = {INT32_MIN, -5, 7};
  in[0] = tin("a", INFERD_TYPE_INT32, 1, D(3), m32);
  exec_ok(one_node(13, "Neg", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(3), I32(INT32_MIN, 5, -7));
  done(&r);
  exec_ok(one_node(13, "Abs", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(3), I32(INT32_MIN, 5, 7));
  done(&r);
  exec_ok(one_node(13, "Sign", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(3), I32(-1, -1, 1));
  done(&r);

  /* integer division and remainder by zero fail the request */
  in[0] = tin("a", INFERD_TYPE_INT32, 1, D(3), m32);
  in[1] = tin("b", INFERD_TYPE_INT32, 1, D(3), I32(1, 0, 1));
  exec_model(one_node(14, "Div", 2, in, 1, &n), 2, in, 1, &r);
  assert_int_not_equal(r.rc, 0);
  assert_non_null(strstr(r.md.err, "integer division by zero"));
  done(&r);
  exec_model(one_node(13, "Mod", 2, in, 1, &n), 2, in, 1, &r);
  assert_int_not_equal(r.rc, 0);
  assert_non_null(strstr(r.md.err, "integer remainder by zero"));
  done(&r);

  /* BitShift: shifting by the width or more gives 0 */
  const uint8_t x[4] = {1, 0x80, 0xff, 3}, s[4] = {7, 1, 8, 200};
  in[0] = tin("a", INFERD_TYPE_UINT8, 1, D(4), x);
  in[1] = tin("b", INFERD_TYPE_UINT8, 1, D(4), s);
  mb *b = one_node(11, "BitShift", 2, in, 1, &n);
  attr_s(b, n, "direction", "LEFT");
  exec_ok(b, 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_UINT8, 1, D(4), ((const uint8_t[]){0x80, 0, 0, 0}));
  done(&r);
  b = one_node(11, "BitShift", 2, in, 1, &n);
  attr_s(b, n, "direction", "RIGHT");
  exec_ok(b, 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_UINT8, 1, D(4), ((const uint8_t[]){0, 0x40, 0, 0}));
  done(&r);
}

/* ---- Mod ---------------------------------------------------------------- */

static void mod_signs(void **state) {
  Onnx__NodeProto *n;
  result r;
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_INT32, 1, D(5), I32(-7, 7, -7, 7, INT32_MIN)),
                         tin("b", INFERD_TYPE_INT32, 1, D(5), I32(3, -3, -3, 3, -1))};
  /* fmod=0: Python's %, the result takes the divisor's sign */
  exec_ok(one_node(13, "Mod", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(5), I32(2, -2, -1, 1, 0));
  done(&r);
  /* fmod=1: C's %, the dividend's sign */
  mb *b = one_node(13, "Mod", 2, in, 1, &n);
  attr_i(b, n, "fmod", 1);
  exec_ok(b, 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(5), I32(-1, 1, -1, 1, 0));
  done(&r);
  /* unsigned */
  const uint16_t ua[2] = {65535, 7}, ub[2] = {10, 7};
  in[0] = tin("a", INFERD_TYPE_UINT16, 1, D(2), ua);
  in[1] = tin("b", INFERD_TYPE_UINT16, 1, D(2), ub);
  exec_ok(one_node(13, "Mod", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_UINT16, 1, D(2), ((const uint16_t[]){5, 0}));
  done(&r);
  /* floats need fmod=1, which is C's fmod */
  in[0] = tin("a", INFERD_TYPE_FP32, 1, D(3), F(-7.5f, 7.5f, 5));
  in[1] = tin("b", INFERD_TYPE_FP32, 1, D(3), F(2, -2, INFINITY));
  b = one_node(13, "Mod", 2, in, 1, &n);
  attr_i(b, n, "fmod", 1);
  exec_ok(b, 2, in, 1, &r);
  expect_f32(&r.out[0], 1, D(3), F(-1.5f, 1.5f, 5));
  done(&r);
  load_fails(one_node(13, "Mod", 2, in, 1, &n), -EINVAL,
             "fmod=0 is not defined for type FP32 (floating types need fmod=1)");
}

/* ---- unary -------------------------------------------------------------- */

static void round_half_even(void **state) {
  Onnx__NodeProto *n;
  result r;
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 1, D(10),
                             F(0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, 2.6f, NAN, -0.0f))};
  exec_ok(one_node(11, "Round", 1, in, 1, &n), 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(10), F(0, 2, 2, -0.0f, -2, -2, 2, 3, NAN, -0.0f));
  done(&r);
  /* float16, computed in float: 2.5 -> 2, 3.5 -> 4 */
  uint16_t h[2] = {float_to_fp16(2.5f), float_to_fp16(3.5f)};
  in[0] = tin("x", INFERD_TYPE_FP16, 1, D(2), h);
  exec_ok(one_node(11, "Round", 1, in, 1, &n), 1, in, 1, &r);
  const uint16_t *y = r.out[0].data;
  assert_true(fp16_to_float(y[0]) == 2.0f && fp16_to_float(y[1]) == 4.0f);
  done(&r);
}

/* The vectorised float exp and erf against double precision over a grid
 * that covers overflow, underflow into subnormals, and the tails. */
static void exp_erf_accuracy(void **state) {
  enum { N = 20001 };
  static float x[N];
  for (int i = 0; i < N; i++)
    x[i] = -110.0f + 210.0f * (float)i / (N - 1);
  x[0] = -INFINITY;
  x[1] = INFINITY;
  x[2] = NAN;
  x[3] = 88.7f;
  x[4] = 88.73f;
  x[5] = -87.5f; /* a subnormal result */
  Onnx__NodeProto *n;
  result r;
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 1, D(N), x)};
  exec_ok(one_node(13, "Exp", 1, in, 1, &n), 1, in, 1, &r);
  const float *y = r.out[0].data;
  double worst = 0;
  for (int i = 0; i < N; i++) {
    double want = exp((double)x[i]);
    if (isnan(want) || isinf(want) || want == 0 || (float)want > FLT_MAX) {
      assert_true(isnan(want) ? isnan(y[i]) : (double)y[i] == (double)(float)want);
      continue;
    }
    double tol = want < FLT_MIN ? 2e-45 : 4e-7 * want; /* subnormals: within one step */
    double d = fabs(y[i] - want);
    if (d > tol) print_message("exp(%.9g) = %.9g, want %.9g\n", x[i], y[i], want);
    assert_true(d <= tol);
    if (want >= FLT_MIN && d / want > worst) worst = d / want;
  }
  print_message("exp: worst relative error %.3g\n", worst);
  done(&r);

  for (int i = 0; i < N; i++)
    x[i] = -6.0f + 12.0f * (float)i / (N - 1);
  exec_ok(one_node(13, "Erf", 1, in, 1, &n), 1, in, 1, &r);
  y = r.out[0].data;
  for (int i = 0; i < N; i++)
    assert_true(fabs(y[i] - erf((double)x[i])) <= 5e-7);
  done(&r);
}

static void unary_types(void **state) {
  Onnx__NodeProto *n;
  result r;
  /* Sqrt through SSE: -0 stays -0, negatives give NaN, odd lengths */
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 1, D(7), F(4, 2, -0.0f, -1, INFINITY, 0, 9))};
  exec_ok(one_node(13, "Sqrt", 1, in, 1, &n), 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(7), F(2, 1.41421356f, -0.0f, NAN, INFINITY, 0, 3));
  done(&r);
  in[0] = tin("x", INFERD_TYPE_INT32, 1, D(1), I32(1));
  load_fails(one_node(13, "Exp", 1, in, 1, &n), -ENOTSUP,
             "node 'n' (Exp, opset 13): type INT32 is not supported");
  load_fails(one_node(13, "Reciprocal", 1, in, 1, &n), -ENOTSUP, "type INT32 is not supported");
  const uint8_t bools[3] = {0, 1, 2};
  in[0] = tin("x", INFERD_TYPE_BOOL, 1, D(3), bools);
  exec_ok(one_node(1, "Not", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(3), ((const uint8_t[]){1, 0, 0}));
  done(&r);
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(1), F(1));
  load_fails(one_node(1, "Not", 1, in, 1, &n), -ENOTSUP, "type FP32 is not supported (BOOL only)");
  /* IsInf with detect_negative=0 */
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(4), F(INFINITY, -INFINITY, NAN, 1));
  mb *b = one_node(10, "IsInf", 1, in, 1, &n);
  attr_i(b, n, "detect_negative", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(4), ((const uint8_t[]){1, 0, 0, 0}));
  done(&r);
  exec_ok(one_node(13, "IsNaN", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(4), ((const uint8_t[]){0, 0, 1, 0}));
  done(&r);
}

/* ---- Pow ---------------------------------------------------------------- */

static void pow_types(void **state) {
  Onnx__NodeProto *n;
  result r;
  /* the scalar exponents done without pow(), as pow() defines them */
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_FP32, 1, D(5), F(-0.0f, -INFINITY, 4, 3, -2)),
                         tin("b", INFERD_TYPE_FP32, 0, D(0), F(0.5f))};
  exec_ok(one_node(15, "Pow", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 1, D(5), F(0, INFINITY, 2, 1.73205081f, NAN));
  done(&r);
  in[1] = tin("b", INFERD_TYPE_FP32, 0, D(0), F(2));
  exec_ok(one_node(15, "Pow", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 1, D(5), F(0, INFINITY, 16, 9, 4));
  done(&r);
  /* integers to integer powers wrap; negative powers truncate to 0 but
   * for 1 and -1 */
  inferd_tensor ii[2] = {tin("a", INFERD_TYPE_INT32, 1, D(5), I32(2, 3, -1, 1, 5)),
                         tin("b", INFERD_TYPE_INT64, 1, D(5), I64(31, 40, -3, -7, -1))};
  exec_ok(one_node(15, "Pow", 2, ii, 1, &n), 2, ii, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(5),
               I32(INT32_MIN, (int32_t)(uint32_t)12157665459056928801ull, -1, 1, 0));
  done(&r);
  /* an integer base to a float power: truncated, saturated, NaN to 0 */
  ii[1] = tin("b", INFERD_TYPE_FP32, 1, D(5), F(0.5f, 40, 0.5f, 2, -1));
  exec_ok(one_node(15, "Pow", 2, ii, 1, &n), 2, ii, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(5), I32(1, INT32_MAX, 0, 1, 0));
  done(&r);
  in[0] = tin("a", INFERD_TYPE_BOOL, 1, D(1), (const uint8_t[]){1});
  load_fails(one_node(15, "Pow", 2, in, 1, &n), -ENOTSUP, "type BOOL is not supported");
}

/* ---- Min, Max, NaN ------------------------------------------------------ */

static void nan_handling(void **state) {
  Onnx__NodeProto *n;
  result r;
  inferd_tensor in[2] = {tin("a", INFERD_TYPE_FP32, 1, D(4), F(NAN, 1, 5, -0.0f)),
                         tin("b", INFERD_TYPE_FP32, 1, D(4), F(2, NAN, 3, 1))};
  exec_ok(one_node(13, "Max", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 1, D(4), F(NAN, NAN, 5, 1));
  done(&r);
  exec_ok(one_node(13, "Min", 2, in, 1, &n), 2, in, 1, &r);
  expect_f32(&r.out[0], 1, D(4), F(NAN, NAN, 3, -0.0f));
  done(&r);
  /* Clip keeps NaN; min > max gives max; integers and omitted bounds */
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(4), F(NAN, -5, 5, 0.5f));
  mb *b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 1, D(4));
  init_of(b, "lo", INFERD_TYPE_FP32, 0, D(0), F(0));
  init_of(b, "hi", INFERD_TYPE_FP32, 0, D(0), F(1));
  mb_node(b, "n", "Clip", "x,lo,hi", "y0");
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(4), F(NAN, 0, 1, 0.5f));
  done(&r);
  const int8_t x8[3] = {-128, 0, 127};
  in[0] = tin("x", INFERD_TYPE_INT8, 1, D(3), x8);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_INT8, 1, D(3));
  init_of(b, "hi", INFERD_TYPE_INT8, 0, D(0), (const int8_t[]){-100});
  init_of(b, "lo", INFERD_TYPE_INT8, 0, D(0), (const int8_t[]){10});
  mb_node(b, "n", "Clip", "x,lo,hi", "y0"); /* min 10 > max -100: all -100 */
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){-100, -100, -100}));
  done(&r);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_INT8, 1, D(3));
  init_of(b, "hi", INFERD_TYPE_INT8, 0, D(0), (const int8_t[]){5});
  mb_node(b, "n", "Clip", "x,,hi", "y0");
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){-128, 0, 5}));
  done(&r);
  /* Clip 6: attributes */
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(3), F(-2, 0.25f, 2));
  b = one_node(6, "Clip", 1, in, 1, &n);
  attr_f(b, n, "min", -1);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(3), F(-1, 0.25f, 2));
  done(&r);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 1, D(3));
  init_of(b, "lo", INFERD_TYPE_FP32, 1, D(2), F(0, 1));
  mb_node(b, "n", "Clip", "x,lo", "y0");
  load_fails(b, -EINVAL, "min must be a scalar; it has 2 elements");

  /* ArgMax / ArgMin: a NaN wins; ties go to the first or, with
   * select_last_index, the last */
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(2, 4), F(1, NAN, 3, NAN, 2, 5, 5, 1));
  b = one_node(13, "ArgMax", 1, in, 1, &n);
  attr_i(b, n, "axis", 1);
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT64, 2, D(2, 1), I64(1, 1));
  done(&r);
  b = one_node(13, "ArgMax", 1, in, 1, &n);
  attr_i(b, n, "axis", 1);
  attr_i(b, n, "select_last_index", 1);
  attr_i(b, n, "keepdims", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT64, 1, D(2), I64(3, 2));
  done(&r);
  b = one_node(13, "ArgMin", 1, in, 1, &n);
  attr_i(b, n, "axis", -1);
  attr_i(b, n, "select_last_index", 1);
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT64, 2, D(2, 1), I64(3, 3));
  done(&r);
}

/* ---- TopK --------------------------------------------------------------- */

static void topk(void **state) {
  Onnx__NodeProto *n;
  result r;
  inferd_tensor in[1] = {
      tin("x", INFERD_TYPE_FP32, 2, D(2, 6), F(3, 1, 3, 2, 3, NAN, /* */ 5, 5, 4, 5, 6, 4))};
  mb *b = mb_new(11);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 6));
  init_of(b, "k", INFERD_TYPE_INT64, 1, D(1), I64(4));
  mb_node(b, "n", "TopK", "x,k", "y0,y1");
  exec_ok(b, 1, in, 2, &r);
  /* NaN above every number; equal values in index order */
  expect_f32(&r.out[0], 2, D(2, 4), F(NAN, 3, 3, 3, 6, 5, 5, 5));
  expect_bytes(&r.out[1], INFERD_TYPE_INT64, 2, D(2, 4), I64(5, 0, 2, 4, 4, 0, 1, 3));
  done(&r);
  b = mb_new(11);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 6));
  init_of(b, "k", INFERD_TYPE_INT64, 1, D(1), I64(3));
  n = mb_node(b, "n", "TopK", "x,k", "y0,y1");
  attr_i(b, n, "largest", 0);
  exec_ok(b, 1, in, 2, &r);
  expect_f32(&r.out[0], 2, D(2, 3), F(1, 2, 3, 4, 4, 5));
  expect_bytes(&r.out[1], INFERD_TYPE_INT64, 2, D(2, 3), I64(1, 3, 0, 2, 5, 0));
  done(&r);
  /* along axis 0 (columns `inner` apart), int32 */
  const int32_t x[6] = {1, 9, 3, 7, 5, 3};
  in[0] = tin("x", INFERD_TYPE_INT32, 2, D(3, 2), x);
  b = mb_new(11);
  input_of(b, "x", INFERD_TYPE_INT32, 2, D(3, 2));
  init_of(b, "k", INFERD_TYPE_INT64, 1, D(1), I64(2));
  n = mb_node(b, "n", "TopK", "x,k", "y0,y1");
  attr_i(b, n, "axis", 0);
  exec_ok(b, 1, in, 2, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 2, D(2, 2), I32(5, 9, 3, 7));
  expect_bytes(&r.out[1], INFERD_TYPE_INT64, 2, D(2, 2), I64(2, 0, 1, 1));
  done(&r);
  b = mb_new(11);
  input_of(b, "x", INFERD_TYPE_INT32, 2, D(3, 2));
  init_of(b, "k", INFERD_TYPE_INT64, 1, D(1), I64(4));
  n = mb_node(b, "n", "TopK", "x,k", "y0,y1");
  attr_i(b, n, "axis", 0);
  load_fails(b, -EINVAL, "K=4 is outside [0, 3], the axis' size");
}

/* ---- reductions --------------------------------------------------------- */

static void reductions(void **state) {
  Onnx__NodeProto *n;
  result r;
  float x[24];
  for (int i = 0; i < 24; i++)
    x[i] = (float)i;
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 3, D(2, 3, 4), x)};
  /* axes 0 and 2 of three: the general walk */
  mb *b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 3, D(2, 3, 4));
  init_of(b, "axes", INFERD_TYPE_INT64, 1, D(2), I64(0, -1));
  n = mb_node(b, "n", "ReduceSum", "x,axes", "y0");
  attr_i(b, n, "keepdims", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(3), F(60, 92, 124));
  done(&r);
  b = one_node(11, "ReduceLogSumExp", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(0, 2));
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(1, 3, 1), F(15.4401958f, 19.4401958f, 23.4401958f));
  done(&r);
  b = one_node(11, "ReduceMax", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(2, 0));
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(1, 3, 1), F(15, 19, 23));
  done(&r);
  /* no axes: everything; ReduceSum 13 with an empty axes input and
   * noop_with_empty_axes: nothing */
  exec_ok(one_node(11, "ReduceMean", 1, in, 1, &n), 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(1, 1, 1), F(11.5f));
  done(&r);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 3, D(2, 3, 4));
  init_of(b, "axes", INFERD_TYPE_INT64, 1, D(0), I64(0));
  n = mb_node(b, "n", "ReduceSum", "x,axes", "y0");
  attr_i(b, n, "noop_with_empty_axes", 1);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(2, 3, 4), x);
  done(&r);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 3, D(2, 3, 4));
  init_of(b, "axes", INFERD_TYPE_INT64, 1, D(0), I64(0));
  mb_node(b, "n", "ReduceSum", "x,axes", "y0");
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(1, 1, 1), F(276));
  done(&r);
  /* a row not a multiple of the lanes; the middle axis (strips) */
  b = one_node(11, "ReduceL2", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(1, 2));
  attr_i(b, n, "keepdims", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(2), F(22.4944438f, 61.7899668f));
  done(&r);
  b = one_node(11, "ReduceProd", 1, in, 1, &n);
  attr_ints(b, n, "axes", 1, I64(1));
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 3, D(2, 1, 4), F(0, 45, 120, 231, 3840, 4641, 5544, 6555));
  done(&r);
  /* empty sets: 0, 1, the lowest value, NaN */
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(0, 3), x);
  static const struct {
    const char *op;
    float want;
  } empty[] = {{"ReduceSum", 0},
               {"ReduceProd", 1},
               {"ReduceMax", -INFINITY},
               {"ReduceMin", INFINITY},
               {"ReduceMean", NAN},
               {"ReduceSumSquare", 0},
               {"ReduceLogSum", -INFINITY},
               {"ReduceLogSumExp", -INFINITY}};
  for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
    b = one_node(11, empty[i].op, 1, in, 1, &n);
    attr_ints(b, n, "axes", 1, I64(0));
    exec_ok(b, 1, in, 1, &r);
    expect_f32(&r.out[0], 2, D(1, 3), (const float[]){empty[i].want, empty[i].want, empty[i].want});
    done(&r);
  }
  /* an empty set through the general walk: axes 0 and 2 of [2,3,0] */
  in[0] = tin("x", INFERD_TYPE_FP32, 3, D(2, 3, 0), x);
  b = one_node(11, "ReduceMax", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(0, 2));
  attr_i(b, n, "keepdims", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(3), F(-INFINITY, -INFINITY, -INFINITY));
  done(&r);
  /* integers: the sum wraps in the type; the mean divides it */
  const int8_t x8[4] = {100, 100, -7, 0};
  in[0] = tin("x", INFERD_TYPE_INT8, 1, D(4), x8);
  exec_ok(one_node(13, "ReduceSum", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(1), ((const int8_t[]){-63}));
  done(&r);
  exec_ok(one_node(13, "ReduceMean", 1, in, 1, &n), 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(1), ((const int8_t[]){48}));
  done(&r);
  /* NaN propagates through ReduceMax of a long row (the lane path) */
  float row[19];
  for (int i = 0; i < 19; i++)
    row[i] = (float)i;
  row[11] = NAN;
  in[0] = tin("x", INFERD_TYPE_FP32, 1, D(19), row);
  exec_ok(one_node(13, "ReduceMax", 1, in, 1, &n), 1, in, 1, &r);
  expect_f32(&r.out[0], 1, D(1), F(NAN));
  done(&r);
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(2, 3), x);
  b = one_node(11, "ReduceSum", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(1, -1));
  load_fails(b, -EINVAL, "axis -1 is listed twice");
  b = one_node(11, "ReduceSum", 1, in, 1, &n);
  attr_ints(b, n, "axes", 1, I64(2));
  load_fails(b, -EINVAL, "axis 2 is out of range for rank 2");
}

static void cumsum(void **state) {
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6))};
  static const struct {
    int exclusive, reverse;
    int32_t axis;
    float want[6];
  } cases[] = {
      {0, 0, 1, {1, 3, 6, 4, 9, 15}},  {1, 0, 1, {0, 1, 3, 0, 4, 9}},
      {0, 1, 1, {6, 5, 3, 15, 11, 6}}, {1, 1, -1, {5, 3, 0, 11, 6, 0}},
      {1, 1, 0, {4, 5, 6, 0, 0, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mb *b = mb_new(14);
    input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 3));
    init_of(b, "axis", INFERD_TYPE_INT32, 0, D(0), &cases[i].axis);
    Onnx__NodeProto *n = mb_node(b, "n", "CumSum", "x,axis", "y0");
    attr_i(b, n, "exclusive", cases[i].exclusive);
    attr_i(b, n, "reverse", cases[i].reverse);
    result r;
    exec_ok(b, 1, in, 1, &r);
    expect_f32(&r.out[0], 2, D(2, 3), cases[i].want);
    done(&r);
  }
}

/* ---- Softmax, LogSoftmax, Hardmax --------------------------------------- */

/* Rows (lengths not multiples of the lanes) and blocks wider than a strip,
 * against double precision. */
static void softmax_shapes(void **state) {
  static const int64_t shapes[][3] = {{3, 37, 1}, {2, 5, 70}, {1, 1, 3}};
  static float x[2 * 5 * 70];
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t outer = shapes[s][0], len = shapes[s][1], inner = shapes[s][2];
    for (int64_t i = 0; i < outer * len * inner; i++)
      x[i] = (float)((i * 7919) % 1000) / 37.0f - 10.0f;
    for (int lg = 0; lg < 2; lg++) {
      inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 3, D(outer, len, inner), x)};
      Onnx__NodeProto *n;
      mb *b = one_node(13, lg ? "LogSoftmax" : "Softmax", 1, in, 1, &n);
      attr_i(b, n, "axis", 1);
      result r;
      exec_ok(b, 1, in, 1, &r);
      const float *y = r.out[0].data;
      for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
          double m = -INFINITY, sum = 0;
          for (int64_t j = 0; j < len; j++)
            m = fmax(m, x[(o * len + j) * inner + i]);
          for (int64_t j = 0; j < len; j++)
            sum += exp(x[(o * len + j) * inner + i] - m);
          for (int64_t j = 0; j < len; j++) {
            double v = x[(o * len + j) * inner + i] - m;
            double want = lg ? v - log(sum) : exp(v) / sum;
            assert_true(fabs(y[(o * len + j) * inner + i] - want) <= 1e-6 + 2e-6 * fabs(want));
          }
        }
      done(&r);
    }
  }
  /* float16, computed in float: along axis 0 of [3,2] */
  uint16_t h[6];
  const float hv[6] = {1, -1, 2, 0, 3, 65504};
  for (int i = 0; i < 6; i++)
    h[i] = float_to_fp16(hv[i]);
  for (int kind = 0; kind < 3; kind++) {
    static const char *const ops[3] = {"Softmax", "LogSoftmax", "Hardmax"};
    inferd_tensor hin[1] = {tin("x", INFERD_TYPE_FP16, 2, D(3, 2), h)};
    Onnx__NodeProto *n;
    mb *b = one_node(13, ops[kind], 1, hin, 1, &n);
    attr_i(b, n, "axis", 0);
    result r;
    exec_ok(b, 1, hin, 1, &r);
    expect_shape(&r.out[0], INFERD_TYPE_FP16, 2, D(3, 2));
    double s0 = exp(1.0) + exp(2.0) + exp(3.0);
    const double want[3][6] = {
        {exp(1.0) / s0, 0, exp(2.0) / s0, 0, exp(3.0) / s0, 1},
        {1 - log(s0), -65505, 2 - log(s0), -65504, 3 - log(s0), 0},
        {0, 0, 0, 0, 1, 1},
    };
    const uint16_t *y = r.out[0].data;
    for (int i = 0; i < 6; i++) {
      double g = fp16_to_float(y[i]), w = want[kind][i];
      if (!(fabs(g - w) <= 1e-3 * fabs(w) + 1e-4))
        print_message("%s[%d] = %g, want %g\n", ops[kind], i, g, w);
      assert_true(fabs(g - w) <= 1e-3 * fabs(w) + 1e-4);
    }
    done(&r);
  }
  /* LogSoftmax keeps its precision on large inputs */
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 2, D(1, 3), F(10000, 10001, 10002))};
  Onnx__NodeProto *n;
  result r;
  exec_ok(one_node(13, "LogSoftmax", 1, in, 1, &n), 1, in, 1, &r);
  expect_f32(&r.out[0], 2, D(1, 3), F(-2.40760596f, -1.40760596f, -0.40760596f));
  done(&r);
  /* Hardmax: opset 13 along the axis, opset 11 over the flattened rows */
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(2, 2), F(1, 3, 3, 2));
  mb *b = one_node(13, "Hardmax", 1, in, 1, &n);
  attr_i(b, n, "axis", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 2), F(0, 1, 1, 0));
  done(&r);
  b = one_node(11, "Hardmax", 1, in, 1, &n);
  attr_i(b, n, "axis", 0);
  exec_ok(b, 1, in, 1, &r);
  expect_f32(&r.out[0], 2, D(2, 2), F(0, 1, 0, 0));
  done(&r);
}

/* ---- LayerNormalization, MeanVarianceNormalization ---------------------- */

static void layernorm(void **state) {
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 2, D(2, 3), F(1, 2, 3, 2, 4, 12))};
  mb *b = mb_new(17);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 3));
  init_of(b, "s", INFERD_TYPE_FP32, 1, D(3), F(1, 2, 3));
  init_of(b, "b", INFERD_TYPE_FP32, 1, D(1), F(10));
  Onnx__NodeProto *n = mb_node(b, "n", "LayerNormalization", "x,s,b", "y0,y1,y2");
  attr_f(b, n, "epsilon", 0);
  result r;
  exec_ok(b, 1, in, 3, &r);
  /* row 1: mean 2, var 2/3; row 2: mean 6, var 56/3 */
  double i1 = 1 / sqrt(2.0 / 3), i2 = 1 / sqrt(56.0 / 3);
  expect_f32(&r.out[0], 2, D(2, 3),
             F((float)(10 - i1), 10, (float)(10 + 3 * i1), (float)(10 - 4 * i2),
               (float)(10 - 4 * i2), (float)(10 + 18 * i2)));
  expect_f32(&r.out[1], 2, D(2, 1), F(2, 6));
  expect_f32(&r.out[2], 2, D(2, 1), F((float)i1, (float)i2));
  done(&r);
  /* axis 0 over everything; double; no bias */
  const double xd[4] = {1, 3, 5, 7};
  in[0] = tin("x", INFERD_TYPE_FP64, 2, D(2, 2), xd);
  b = mb_new(17);
  input_of(b, "x", INFERD_TYPE_FP64, 2, D(2, 2));
  init_of(b, "s", INFERD_TYPE_FP64, 2, D(1, 2), ((const double[]){1, -1}));
  n = mb_node(b, "n", "LayerNormalization", "x,s", "y0");
  attr_i(b, n, "axis", 0);
  attr_f(b, n, "epsilon", 0);
  exec_ok(b, 1, in, 1, &r);
  double inv = 1 / sqrt(5.0);
  const double *y = r.out[0].data;
  const double want[4] = {-3 * inv, 1 * inv, 1 * inv, -3 * inv};
  for (int i = 0; i < 4; i++)
    assert_true(fabs(y[i] - want[i]) < 1e-12);
  done(&r);
  b = mb_new(17);
  input_of(b, "x", INFERD_TYPE_FP64, 2, D(2, 2));
  init_of(b, "s", INFERD_TYPE_FP64, 1, D(3), ((const double[]){1, 1, 1}));
  mb_node(b, "n", "LayerNormalization", "x,s", "y0");
  load_fails(b, -EINVAL, "Scale [3] does not broadcast to the normalised dimensions of X [2,2]");
  b = mb_new(17);
  input_of(b, "x", INFERD_TYPE_FP64, 2, D(2, 2));
  init_of(b, "s", INFERD_TYPE_FP64, 1, D(2), ((const double[]){1, 1}));
  n = mb_node(b, "n", "LayerNormalization", "x,s", "y0");
  attr_i(b, n, "stash_type", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16);
  load_fails(b, -ENOTSUP, "attribute stash_type=10 is not supported (FLOAT or DOUBLE)");

  /* MVN over axes 0 and 2 of [2,1,2]: (x - mean) / (std + 1e-9) */
  in[0] = tin("x", INFERD_TYPE_FP32, 3, D(2, 1, 2), F(1, 2, 3, 6));
  b = one_node(13, "MeanVarianceNormalization", 1, in, 1, &n);
  attr_ints(b, n, "axes", 2, I64(0, 2));
  exec_ok(b, 1, in, 1, &r);
  double sd = sqrt(3.5); /* mean 3, deviations -2, -1, 0, 3 */
  expect_f32(&r.out[0], 3, D(2, 1, 2), F((float)(-2 / sd), (float)(-1 / sd), 0, (float)(3 / sd)));
  done(&r);
}

/* ---- losses ------------------------------------------------------------- */

static void losses(void **state) {
  /* scores [N=3, C=2]; targets 1, ignored (-1), 0; weights 2 and 3 */
  const float lp[6] = {-0.5f, -1.5f, -2, -3, -0.25f, -4};
  const int64_t t[3] = {1, -1, 0};
  inferd_tensor in[2] = {tin("x", INFERD_TYPE_FP32, 2, D(3, 2), lp),
                         tin("t", INFERD_TYPE_INT64, 1, D(3), t)};
  static const struct {
    const char *reduction;
    int ndim;
    float want[3];
  } cases[] = {
      {"none", 1, {4.5f, 0, 0.5f}},
      {"sum", 0, {5}},
      {"mean", 0, {1}}, /* 5 / (3 + 2): the ignored target weighs nothing */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mb *b = mb_new(13);
    input_of(b, "x", INFERD_TYPE_FP32, 2, D(3, 2));
    input_of(b, "t", INFERD_TYPE_INT64, 1, D(3));
    init_of(b, "w", INFERD_TYPE_FP32, 1, D(2), F(2, 3));
    Onnx__NodeProto *n = mb_node(b, "n", "NegativeLogLikelihoodLoss", "x,t,w", "y0");
    attr_s(b, n, "reduction", cases[i].reduction);
    attr_i(b, n, "ignore_index", -1);
    result r;
    exec_ok(b, 2, in, 1, &r);
    expect_f32(&r.out[0], cases[i].ndim, D(3), cases[i].want);
    done(&r);
  }
  /* every target ignored: mean is 0/0 */
  const int64_t all[3] = {-1, -1, -1};
  in[1] = tin("t", INFERD_TYPE_INT64, 1, D(3), all);
  mb *b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(3, 2));
  input_of(b, "t", INFERD_TYPE_INT64, 1, D(3));
  Onnx__NodeProto *n = mb_node(b, "n", "NegativeLogLikelihoodLoss", "x,t", "y0");
  attr_i(b, n, "ignore_index", -1);
  result r;
  exec_ok(b, 2, in, 1, &r);
  expect_f32(&r.out[0], 0, D(0), F(NAN));
  done(&r);
  /* a target outside [0, C) fails the request */
  const int64_t bad[3] = {0, 2, 1};
  in[1] = tin("t", INFERD_TYPE_INT64, 1, D(3), bad);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(3, 2));
  input_of(b, "t", INFERD_TYPE_INT64, 1, D(3));
  mb_node(b, "n", "NegativeLogLikelihoodLoss", "x,t", "y0");
  exec_model(b, 2, in, 1, &r);
  assert_int_not_equal(r.rc, 0);
  assert_non_null(strstr(r.md.err, "target 2 at element 1 is outside [0, 2)"));
  done(&r);
  /* SoftmaxCrossEntropyLoss with its log_prob output */
  const float sc[4] = {0, 0, 1, 3};
  const int32_t lab[2] = {1, 0};
  in[0] = tin("x", INFERD_TYPE_FP32, 2, D(2, 2), sc);
  in[1] = tin("t", INFERD_TYPE_INT32, 1, D(2), lab);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 2));
  input_of(b, "t", INFERD_TYPE_INT32, 1, D(2));
  n = mb_node(b, "n", "SoftmaxCrossEntropyLoss", "x,t", "y0,y1");
  attr_s(b, n, "reduction", "sum");
  exec_ok(b, 2, in, 2, &r);
  double l2 = log1p(exp(-2.0)); /* -log(e^3 / (e + e^3)) = log(1 + e^-2) */
  expect_f32(&r.out[0], 0, D(0), F((float)(log(2.0) + 2 + l2)));
  expect_f32(&r.out[1], 2, D(2, 2),
             F((float)-log(2.0), (float)-log(2.0), (float)(-2 - l2), (float)-l2));
  done(&r);
  b = mb_new(13);
  input_of(b, "x", INFERD_TYPE_FP32, 2, D(2, 2));
  input_of(b, "t", INFERD_TYPE_INT32, 1, D(2));
  n = mb_node(b, "n", "SoftmaxCrossEntropyLoss", "x,t", "y0");
  attr_s(b, n, "reduction", "average");
  load_fails(b, -EINVAL, "attribute reduction='average' is not none, sum or mean");
}

/* ---- Einsum ------------------------------------------------------------- */

static void einsum_case(const char *eq, size_t n_in, const inferd_tensor *in, int ndim,
                        const int64_t *dims, const float *want) {
  Onnx__NodeProto *n;
  mb *b = one_node(12, "Einsum", n_in, in, 1, &n);
  attr_s(b, n, "equation", eq);
  result r;
  exec_ok(b, n_in, in, 1, &r);
  expect_f32(&r.out[0], ndim, dims, want);
  done(&r);
}

static void einsum(void **state) {
  inferd_tensor m[2] = {tin("a", INFERD_TYPE_FP32, 2, D(2, 2), F(1, 2, 3, 4)),
                        tin("b", INFERD_TYPE_FP32, 2, D(2, 2), F(5, 6, 7, 8))};
  einsum_case("ii", 1, m, 0, D(0), F(5));             /* implicit: the trace */
  einsum_case("ii->i", 1, m, 1, D(2), F(1, 4));       /* the diagonal */
  einsum_case("ba", 1, m, 2, D(2, 2), F(1, 3, 2, 4)); /* implicit order: a, b */
  einsum_case("ij,jk", 2, m, 2, D(2, 2), F(19, 22, 43, 50));
  einsum_case("ij,kj->ik", 2, m, 2, D(2, 2), F(17, 23, 39, 53));
  einsum_case("ij,ij->", 2, m, 0, D(0), F(70));
  /* three operands: an outer product */
  inferd_tensor v[3] = {tin("a", INFERD_TYPE_FP32, 1, D(2), F(1, 2)),
                        tin("b", INFERD_TYPE_FP32, 1, D(2), F(3, 4)),
                        tin("c", INFERD_TYPE_FP32, 1, D(1), F(10))};
  einsum_case("i,j,k->kji", 3, v, 3, D(1, 2, 2), F(30, 60, 40, 80));
  /* ellipses broadcast: [2,1,2] and [3,2] against "...j" */
  inferd_tensor e[2] = {tin("a", INFERD_TYPE_FP32, 3, D(2, 1, 2), F(1, 2, 3, 4)),
                        tin("b", INFERD_TYPE_FP32, 2, D(3, 2), F(1, 0, 0, 1, 1, 1))};
  einsum_case("...j,...j->...", 2, e, 2, D(2, 3), F(1, 2, 3, 3, 4, 7));
  Onnx__NodeProto *n;
  mb *b = one_node(12, "Einsum", 2, m, 1, &n);
  attr_s(b, n, "equation", "ij,jk->iz");
  load_fails(b, -EINVAL, "has a label no input has");
  b = one_node(12, "Einsum", 2, m, 1, &n);
  attr_s(b, n, "equation", "ij->i");
  load_fails(b, -EINVAL, "has 1 terms for 2 inputs");
  b = one_node(12, "Einsum", 2, m, 1, &n);
  attr_s(b, n, "equation", "ijk,jk->i");
  load_fails(b, -EINVAL, "input 0 has rank 2; its term has 3 labels");
}

/* ---- activations and casts ---------------------------------------------- */

static void activations(void **state) {
  static const struct {
    const char *op;
    int opset;
    const char *attr;
    float value;
    float want[5];
  } cases[] = {
      {"LeakyRelu", 16, "alpha", 0.5f, {-1, -0.5f, 0, 1, 2}},
      {"Elu", 6, NULL, 0, {-0.864664717f, -0.632120559f, 0, 1, 2}},
      {"Celu", 12, "alpha", 2, {-1.26424112f, -0.786938681f, 0, 1, 2}},
      {"HardSigmoid", 6, NULL, 0, {0.1f, 0.3f, 0.5f, 0.7f, 0.9f}},
      {"HardSwish", 14, NULL, 0, {-0.333333343f, -0.333333343f, 0, 0.666666687f, 1.66666675f}},
      {"Softsign", 1, NULL, 0, {-0.666666687f, -0.5f, 0, 0.5f, 0.666666687f}},
      {"Softplus",
       1,
       NULL,
       0,
       {0.126928011f, 0.313261688f, 0.693147181f, 1.31326163f, 2.12692801f}},
      {"ThresholdedRelu", 10, "alpha", 1, {0, 0, 0, 0, 2}},
      {"Shrink", 9, "lambd", 1, {-2, 0, 0, 0, 2}},
  };
  inferd_tensor in[1] = {tin("x", INFERD_TYPE_FP32, 1, D(5), F(-2, -1, 0, 1, 2))};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Onnx__NodeProto *n;
    mb *b = one_node(cases[i].opset, cases[i].op, 1, in, 1, &n);
    if (cases[i].attr) attr_f(b, n, cases[i].attr, cases[i].value);
    result r;
    exec_ok(b, 1, in, 1, &r);
    expect_f32(&r.out[0], 1, D(5), cases[i].want);
    done(&r);
  }
  /* Shrink on integers: through double, saturating */
  const int8_t x8[3] = {-128, 3, 127};
  in[0] = tin("x", INFERD_TYPE_INT8, 1, D(3), x8);
  Onnx__NodeProto *n;
  mb *b = one_node(9, "Shrink", 1, in, 1, &n);
  attr_f(b, n, "bias", -10);
  attr_f(b, n, "lambd", 1);
  result r;
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT8, 1, D(3), ((const int8_t[]){-128, 13, 127}));
  done(&r);
  in[0] = tin("x", INFERD_TYPE_INT32, 1, D(1), I32(1));
  load_fails(one_node(16, "LeakyRelu", 1, in, 1, &n), -ENOTSUP, "type INT32 is not supported");
}

static void casts(void **state) {
  /* Cast 1 names the type by a string; floats saturate into integers */
  inferd_tensor in[2] = {tin("x", INFERD_TYPE_FP32, 1, D(4), F(1e10f, -1e10f, NAN, -2.7f))};
  Onnx__NodeProto *n;
  mb *b = one_node(1, "Cast", 1, in, 1, &n);
  attr_s(b, n, "to", "INT32");
  result r;
  exec_ok(b, 1, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_INT32, 1, D(4), I32(INT32_MAX, INT32_MIN, 0, -2));
  done(&r);
  b = one_node(1, "Cast", 1, in, 1, &n);
  attr_s(b, n, "to", "FLOAT128");
  load_fails(b, -EINVAL, "attribute to='FLOAT128' names no type");
  /* CastLike takes the second input's type */
  in[1] = tin("like", INFERD_TYPE_UINT8, 1, D(1), (const uint8_t[]){0});
  exec_ok(one_node(15, "CastLike", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_UINT8, 1, D(4), ((const uint8_t[]){255, 0, 0, 0}));
  done(&r);
  /* comparisons of float16 go through float; bools compare as bools */
  const uint16_t h[2] = {float_to_fp16(1.5f), float_to_fp16(-2)};
  const uint16_t k[2] = {float_to_fp16(1.5f), float_to_fp16(3)};
  in[0] = tin("a", INFERD_TYPE_FP16, 1, D(2), h);
  in[1] = tin("b", INFERD_TYPE_FP16, 1, D(2), k);
  exec_ok(one_node(16, "LessOrEqual", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(2), ((const uint8_t[]){1, 1}));
  done(&r);
  const uint8_t p[3] = {0, 1, 9}, q[3] = {0, 2, 0};
  in[0] = tin("a", INFERD_TYPE_BOOL, 1, D(3), p);
  in[1] = tin("b", INFERD_TYPE_BOOL, 1, D(3), q);
  exec_ok(one_node(13, "Equal", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(3), ((const uint8_t[]){1, 1, 0}));
  done(&r);
  exec_ok(one_node(7, "Xor", 2, in, 1, &n), 2, in, 1, &r);
  expect_bytes(&r.out[0], INFERD_TYPE_BOOL, 1, D(3), ((const uint8_t[]){0, 0, 1}));
  done(&r);
  in[0] = tin("a", INFERD_TYPE_INT32, 1, D(1), I32(1));
  in[1] = tin("b", INFERD_TYPE_INT32, 1, D(1), I32(1));
  load_fails(one_node(7, "And", 2, in, 1, &n), -ENOTSUP, "type INT32 is not supported");
  b = one_node(11, "BitShift", 2, in, 1, &n);
  attr_s(b, n, "direction", "LEFT");
  load_fails(b, -ENOTSUP, "type INT32 is not supported (unsigned integers only)");
  b = one_node(11, "BitShift", 2, in, 1, &n);
  attr_s(b, n, "direction", "UP");
  load_fails(b, -EINVAL, "attribute direction='UP' is not LEFT or RIGHT");
  const uint8_t c[1] = {1};
  inferd_tensor w[3] = {tin("c", INFERD_TYPE_UINT8, 1, D(1), c),
                        tin("x", INFERD_TYPE_FP32, 1, D(1), F(1)),
                        tin("y", INFERD_TYPE_FP32, 1, D(1), F(2))};
  load_fails(one_node(16, "Where", 3, w, 1, &n), -EINVAL,
             "the condition has type UINT8; it must be BOOL");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(broadcasting),
      cmocka_unit_test(integer_wrap),
      cmocka_unit_test(mod_signs),
      cmocka_unit_test(round_half_even),
      cmocka_unit_test(exp_erf_accuracy),
      cmocka_unit_test(unary_types),
      cmocka_unit_test(pow_types),
      cmocka_unit_test(nan_handling),
      cmocka_unit_test(topk),
      cmocka_unit_test(reductions),
      cmocka_unit_test(cumsum),
      cmocka_unit_test(softmax_shapes),
      cmocka_unit_test(layernorm),
      cmocka_unit_test(losses),
      cmocka_unit_test(einsum),
      cmocka_unit_test(activations),
      cmocka_unit_test(casts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
