/* backends/onnx/onnx_ops_softmax.c: Softmax, LogSoftmax and Hardmax, in
 * both of their ONNX meanings: before opset 13 the input is flattened to
 * 2-D at `axis` (default 1) and each row of the result is normalised; from
 * 13 on, the values along `axis` (default -1) are. Both reduce to blocks of
 * [n, inner] normalised along n: inner = 1 before 13.
 *
 * Softmax over the last axis of attention scores ([B,H,S,S]) is on the
 * transformer's hot path: rows are reduced in several lanes at once (a
 * vectorised max and sum without -ffast-math) and float's e^x is computed
 * by the branch-free polynomial of onnx_kernel.h, which the compiler
 * vectorises; libm's expf is not. float16 and bfloat16 are computed in
 * float. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#define EXP_F(x) onnx_exp_f(x)
#define EXP_D(x) exp(x)

/* ---- kernels ------------------------------------------------------------ */

enum { SOFTMAX, LOG_SOFTMAX, HARDMAX };

#define LANES 8  /* partial maxima and sums of a row */
#define STRIP 64 /* columns of a block normalised together */

/* One row of n values (inner = 1): y = e^(x-m) / sum, or for LogSoftmax
 * y = (x - m) - log(sum), m the row's maximum. A NaN makes the row NaN. */
#define ROW_KERNEL(T, EXP)                                                                         \
  ONNX_HOT static void row_##T(const T *restrict x, T *restrict y, int64_t n, bool log_) {         \
    T mx[LANES], sum[LANES];                                                                       \
    for (int k = 0; k < LANES; k++) {                                                              \
      mx[k] = x[0];                                                                                \
      sum[k] = 0;                                                                                  \
    }                                                                                              \
    int64_t j = 0;                                                                                 \
    for (; j + LANES <= n; j += LANES)                                                             \
      for (int k = 0; k < LANES; k++)                                                              \
        mx[k] = x[j + k] > mx[k] ? x[j + k] : mx[k];                                               \
    T m = mx[0];                                                                                   \
    for (int k = 1; k < LANES; k++)                                                                \
      m = mx[k] > m ? mx[k] : m;                                                                   \
    for (; j < n; j++)                                                                             \
      m = x[j] > m ? x[j] : m;                                                                     \
    int64_t tail = n - n % LANES;                                                                  \
    if (log_) {                                                                                    \
      for (j = 0; j < tail; j += LANES)                                                            \
        for (int k = 0; k < LANES; k++)                                                            \
          sum[k] += EXP(x[j + k] - m);                                                             \
      for (; j < n; j++)                                                                           \
        sum[0] += EXP(x[j] - m);                                                                   \
    } else {                                                                                       \
      for (j = 0; j < tail; j += LANES)                                                            \
        for (int k = 0; k < LANES; k++) {                                                          \
          T v = EXP(x[j + k] - m);                                                                 \
          y[j + k] = v;                                                                            \
          sum[k] += v;                                                                             \
        }                                                                                          \
      for (; j < n; j++)                                                                           \
        sum[0] += y[j] = EXP(x[j] - m);                                                            \
    }                                                                                              \
    T s = 0;                                                                                       \
    for (int k = 0; k < LANES; k++)                                                                \
      s += sum[k];                                                                                 \
    if (log_) {                                                                                    \
      T ls = log(s);                                                                               \
      for (j = 0; j < n; j++)                                                                      \
        y[j] = (x[j] - m) - ls;                                                                    \
    } else {                                                                                       \
      T r = 1 / s;                                                                                 \
      for (j = 0; j < n; j++)                                                                      \
        y[j] *= r;                                                                                 \
    }                                                                                              \
  }

/* A block x[j*inner + i] normalised along j for every i, a strip of STRIP
 * columns at a time so that the maxima and sums stay on the stack. */
#define BLOCK_KERNEL(T, EXP)                                                                       \
  ONNX_KERNEL static void block_##T(const T *x, T *y, int64_t n, int64_t inner, bool log_) {       \
    T mx[STRIP], sum[STRIP];                                                                       \
    for (int64_t i0 = 0; i0 < inner; i0 += STRIP) {                                                \
      int64_t w = inner - i0 < STRIP ? inner - i0 : STRIP;                                         \
      const T *xs = x + i0;                                                                        \
      T *ys = y + i0;                                                                              \
      for (int64_t i = 0; i < w; i++) {                                                            \
        mx[i] = xs[i];                                                                             \
        sum[i] = 0;                                                                                \
      }                                                                                            \
      for (int64_t j = 1; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++)                                                            \
          mx[i] = xs[j * inner + i] > mx[i] ? xs[j * inner + i] : mx[i];                           \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          T v = EXP(xs[j * inner + i] - mx[i]);                                                    \
          if (!log_) ys[j * inner + i] = v;                                                        \
          sum[i] += v;                                                                             \
        }                                                                                          \
      if (log_) {                                                                                  \
        for (int64_t i = 0; i < w; i++)                                                            \
          sum[i] = log(sum[i]);                                                                    \
        for (int64_t j = 0; j < n; j++)                                                            \
          for (int64_t i = 0; i < w; i++)                                                          \
            ys[j * inner + i] = (xs[j * inner + i] - mx[i]) - sum[i];                              \
      } else {                                                                                     \
        for (int64_t i = 0; i < w; i++)                                                            \
          sum[i] = 1 / sum[i];                                                                     \
        for (int64_t j = 0; j < n; j++)                                                            \
          for (int64_t i = 0; i < w; i++)                                                          \
            ys[j * inner + i] *= sum[i];                                                           \
      }                                                                                            \
    }                                                                                              \
  }

/* Hardmax: 1 at the first maximum along j, 0 elsewhere. A NaN counts as
 * larger than any number (numpy's argmax). */
#define HARDMAX_KERNEL(T)                                                                          \
  static void hardmax_##T(const T *x, T *y, int64_t n, int64_t inner) {                            \
    for (int64_t i = 0; i < inner; i++) {                                                          \
      int64_t best = 0;                                                                            \
      for (int64_t j = 1; j < n; j++) {                                                            \
        T v = x[j * inner + i], b = x[best * inner + i];                                           \
        if (b == b && (v > b || v != v)) best = j;                                                 \
      }                                                                                            \
      for (int64_t j = 0; j < n; j++)                                                              \
        y[j * inner + i] = j == best;                                                              \
    }                                                                                              \
  }

ROW_KERNEL(float, EXP_F)
ROW_KERNEL(double, EXP_D)
BLOCK_KERNEL(float, EXP_F)
BLOCK_KERNEL(double, EXP_D)
HARDMAX_KERNEL(float)
HARDMAX_KERNEL(double)

/* float16 and bfloat16: in float, a strip of columns at a time (a row is a
 * strip of one), reading x three times rather than storing rounded
 * intermediates: the maxima, the sums, then the outputs. */
#define HALF_KERNEL(N, LD, ST)                                                                     \
  static void half_##N(const uint16_t *x, uint16_t *y, int64_t n, int64_t inner, int kind) {       \
    float mx[STRIP], sum[STRIP];                                                                   \
    for (int64_t i0 = 0; i0 < inner; i0 += STRIP) {                                                \
      int64_t w = inner - i0 < STRIP ? inner - i0 : STRIP;                                         \
      const uint16_t *xs = x + i0;                                                                 \
      uint16_t *ys = y + i0;                                                                       \
      int64_t best[STRIP];                                                                         \
      for (int64_t i = 0; i < w; i++) {                                                            \
        mx[i] = LD(xs[i]);                                                                         \
        sum[i] = 0;                                                                                \
        best[i] = 0;                                                                               \
      }                                                                                            \
      for (int64_t j = 1; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          float v = LD(xs[j * inner + i]);                                                         \
          if (mx[i] == mx[i] && (v > mx[i] || v != v)) {                                           \
            mx[i] = v;                                                                             \
            best[i] = j;                                                                           \
          }                                                                                        \
        }                                                                                          \
      if (kind == HARDMAX) {                                                                       \
        for (int64_t j = 0; j < n; j++)                                                            \
          for (int64_t i = 0; i < w; i++)                                                          \
            ys[j * inner + i] = ST(j == best[i] ? 1.0f : 0.0f);                                    \
        continue;                                                                                  \
      }                                                                                            \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++)                                                            \
          sum[i] += expf(LD(xs[j * inner + i]) - mx[i]);                                           \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          float d = LD(xs[j * inner + i]) - mx[i];                                                 \
          ys[j * inner + i] = ST(kind == LOG_SOFTMAX ? d - logf(sum[i]) : expf(d) / sum[i]);       \
        }                                                                                          \
    }                                                                                              \
  }
HALF_KERNEL(f16, fp16_to_float, float_to_fp16)
HALF_KERNEL(bf16, bf16_to_float, float_to_bf16)

/* ---- operators ---------------------------------------------------------- */

typedef struct softmax_attr {
  int64_t axis;
} softmax_attr;

static int softmax_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  softmax_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  int rc = onnx_attr_int(p, "axis", n->since < 13 ? 1 : -1, &at->axis, e);
  n->attr = at;
  return rc;
}

static int softmax_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const softmax_attr *at = n->attr;
  int axis;
  inferd_dtype t = in[0]->dtype;
  if (!onnx_dtype_is_float(t) && t != INFERD_TYPE_FP16 && t != INFERD_TYPE_BF16)
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(t));
  int rc = onnx_axis(at->axis, in[0]->ndim, false, &axis, e);
  if (rc) return rc;
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

static int softmax_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const softmax_attr *at = n->attr;
  int kind = *(const int *)n->op->kernels;
  const onnx_tensor *x = in[0];
  int axis;
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  int64_t outer = onnx_dims_product(x->dims, 0, axis), len, inner;
  if (n->since < 13) {
    len = onnx_dims_product(x->dims, axis, x->ndim);
    inner = 1;
  } else {
    len = x->dims[axis];
    inner = onnx_dims_product(x->dims, axis + 1, x->ndim);
  }
  if (len == 0 || inner == 0) return 0;
  int64_t block = len * inner;
  size_t es = dtype_size(x->dtype);
  bool f32 = x->dtype == INFERD_TYPE_FP32, lg = kind == LOG_SOFTMAX;
  for (int64_t o = 0; o < outer; o++) {
    const void *xb = (const char *)x->data + (size_t)(o * block) * es;
    void *yb = (char *)out[0]->data + (size_t)(o * block) * es;
    if (x->dtype == INFERD_TYPE_FP16) {
      half_f16(xb, yb, len, inner, kind);
    } else if (x->dtype == INFERD_TYPE_BF16) {
      half_bf16(xb, yb, len, inner, kind);
    } else if (kind == HARDMAX) {
      if (f32)
        hardmax_float(xb, yb, len, inner);
      else
        hardmax_double(xb, yb, len, inner);
    } else if (inner == 1) {
      if (f32)
        row_float(xb, yb, len, lg);
      else
        row_double(xb, yb, len, lg);
    } else {
      if (f32)
        block_float(xb, yb, len, inner, lg);
      else
        block_double(xb, yb, len, inner, lg);
    }
  }
  return 0;
}

static const int kind_softmax = SOFTMAX, kind_log_softmax = LOG_SOFTMAX, kind_hardmax = HARDMAX;

const onnx_op onnx_op_softmax = {.kernels = &kind_softmax,
                                 .name = "Softmax",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = softmax_init,
                                 .infer = softmax_infer,
                                 .run = softmax_run};
static const onnx_op op_log_softmax = {.kernels = &kind_log_softmax,
                                       .name = "LogSoftmax",
                                       .domain = "",
                                       .min_inputs = 1,
                                       .max_inputs = 1,
                                       .min_outputs = 1,
                                       .max_outputs = 1,
                                       .init = softmax_init,
                                       .infer = softmax_infer,
                                       .run = softmax_run};
static const onnx_op op_hardmax = {.kernels = &kind_hardmax,
                                   .name = "Hardmax",
                                   .domain = "",
                                   .min_inputs = 1,
                                   .max_inputs = 1,
                                   .min_outputs = 1,
                                   .max_outputs = 1,
                                   .init = softmax_init,
                                   .infer = softmax_infer,
                                   .run = softmax_run};

const onnx_op_row onnx_ops_softmax[] = {
    {&onnx_op_softmax, 1},  {&onnx_op_softmax, 11},
    {&onnx_op_softmax, 13}, {&op_log_softmax, 1},
    {&op_log_softmax, 11},  {&op_log_softmax, 13},
    {&op_hardmax, 1},       {&op_hardmax, 11},
    {&op_hardmax, 13},      {NULL, 0},
};
