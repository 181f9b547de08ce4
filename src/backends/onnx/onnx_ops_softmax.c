/* backends/onnx/onnx_ops_softmax.c: Softmax, in both of its ONNX meanings:
 * before opset 13 the input is flattened to 2-D at `axis` (default 1) and
 * each row of the result is normalised; from 13 on, the values along `axis`
 * (default -1) are. Both reduce to blocks of [n, inner] normalised along n:
 * inner = 1 before 13. */
#include <math.h>

#include "core/dtype.h"
#include "onnx_ops.h"

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
  if (!onnx_dtype_is_float(in[0]->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  int rc = onnx_axis(at->axis, in[0]->ndim, false, &axis, e);
  if (rc) return rc;
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

/* Normalises x[j*inner + i] along j for every i of a block, a strip of
 * STRIP columns at a time so that the maxima and sums stay in registers or
 * on the stack; inner = 1 is a plain row. */
#define STRIP 64
#define SOFTMAX_BLOCK(T, EXP)                                                                      \
  ONNX_VECTORIZE static void softmax_##T(const T *x, T *y, int64_t n, int64_t inner) {             \
    T mx[STRIP], sum[STRIP];                                                                       \
    if (inner == 1) {                                                                              \
      T m = x[0], s = 0;                                                                           \
      for (int64_t j = 1; j < n; j++)                                                              \
        m = x[j] > m ? x[j] : m;                                                                   \
      for (int64_t j = 0; j < n; j++)                                                              \
        s += y[j] = EXP(x[j] - m);                                                                 \
      s = 1 / s;                                                                                   \
      for (int64_t j = 0; j < n; j++)                                                              \
        y[j] *= s;                                                                                 \
      return;                                                                                      \
    }                                                                                              \
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
          ys[j * inner + i] = v;                                                                   \
          sum[i] += v;                                                                             \
        }                                                                                          \
      for (int64_t i = 0; i < w; i++)                                                              \
        sum[i] = 1 / sum[i];                                                                       \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++)                                                            \
          ys[j * inner + i] *= sum[i];                                                             \
    }                                                                                              \
  }
SOFTMAX_BLOCK(float, expf)
SOFTMAX_BLOCK(double, exp)

static int softmax_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const softmax_attr *at = n->attr;
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
  for (int64_t o = 0; o < outer; o++) {
    if (x->dtype == INFERD_TYPE_FP32)
      softmax_float((const float *)x->data + o * block, (float *)out[0]->data + o * block, len,
                    inner);
    else
      softmax_double((const double *)x->data + o * block, (double *)out[0]->data + o * block, len,
                     inner);
  }
  return 0;
}

const onnx_op onnx_op_softmax = {.name = "Softmax",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = softmax_init,
                                 .infer = softmax_infer,
                                 .run = softmax_run};

const onnx_op_row onnx_ops_softmax[] = {
    {&onnx_op_softmax, 1},
    {&onnx_op_softmax, 11},
    {&onnx_op_softmax, 13},
    {NULL, 0},
};
