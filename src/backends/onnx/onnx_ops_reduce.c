/* backends/onnx/onnx_ops_reduce.c: reductions along an axis. ArgMax for
 * now (axis, keepdims, select_last_index); the Reduce* family joins it.
 * A reduction sees its input as [outer, n, inner] and reduces n. */
#include "core/dtype.h"
#include "onnx_ops.h"

typedef struct reduce_attr {
  int64_t axis;
  bool keepdims;
  bool last; /* select_last_index */
} reduce_attr;

static int argmax_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  reduce_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int rc;
  if ((rc = onnx_attr_int(p, "axis", 0, &at->axis, e)) ||
      (rc = onnx_attr_bool(p, "keepdims", true, &at->keepdims, e)) ||
      (rc = onnx_attr_bool(p, "select_last_index", false, &at->last, e)))
    return rc;
  return 0;
}

#define N_DTYPES (INFERD_TYPE_BF16 + 1)

typedef void (*argmax_fn)(const void *x, int64_t *y, int64_t outer, int64_t n, int64_t inner,
                          bool last);

/* The first (or last) index of the largest value along n. */
#define ARGMAX(T)                                                                                  \
  static void argmax_##T(const void *x_, int64_t *y, int64_t outer, int64_t n, int64_t inner,      \
                         bool last) {                                                              \
    const T *x = x_;                                                                               \
    for (int64_t o = 0; o < outer; o++)                                                            \
      for (int64_t i = 0; i < inner; i++) {                                                        \
        const T *p = x + o * n * inner + i;                                                        \
        T best = p[0];                                                                             \
        int64_t at = 0;                                                                            \
        for (int64_t j = 1; j < n; j++) {                                                          \
          T v = p[j * inner];                                                                      \
          if (v > best || (last && v == best)) {                                                   \
            best = v;                                                                              \
            at = j;                                                                                \
          }                                                                                        \
        }                                                                                          \
        y[o * inner + i] = at;                                                                     \
      }                                                                                            \
  }
ARGMAX(float)
ARGMAX(double)
ARGMAX(int8_t)
ARGMAX(int16_t)
ARGMAX(int32_t)
ARGMAX(int64_t)
ARGMAX(uint8_t)
ARGMAX(uint16_t)
ARGMAX(uint32_t)
ARGMAX(uint64_t)

static const argmax_fn argmax_k[N_DTYPES] = {
    [INFERD_TYPE_FP32] = argmax_float,      [INFERD_TYPE_FP64] = argmax_double,
    [INFERD_TYPE_INT8] = argmax_int8_t,     [INFERD_TYPE_INT16] = argmax_int16_t,
    [INFERD_TYPE_INT32] = argmax_int32_t,   [INFERD_TYPE_INT64] = argmax_int64_t,
    [INFERD_TYPE_UINT8] = argmax_uint8_t,   [INFERD_TYPE_UINT16] = argmax_uint16_t,
    [INFERD_TYPE_UINT32] = argmax_uint32_t, [INFERD_TYPE_UINT64] = argmax_uint64_t,
};

static int argmax_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const reduce_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis;
  if (!argmax_k[x->dtype])
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  if (x->dims[axis] == 0) return err_set(e, -EINVAL, "the axis to reduce is empty");
  int64_t dims[ONNX_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != axis)
      dims[nd++] = x->dims[i];
    else if (at->keepdims)
      dims[nd++] = 1;
  out[0]->dtype = INFERD_TYPE_INT64;
  onnx_tensor_set_shape(out[0], nd, dims);
  return 0;
}

static int argmax_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const reduce_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis;
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  argmax_k[x->dtype](x->data, out[0]->data, onnx_dims_product(x->dims, 0, axis), x->dims[axis],
                     onnx_dims_product(x->dims, axis + 1, x->ndim), at->last);
  return 0;
}

const onnx_op onnx_op_argmax = {.name = "ArgMax",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .init = argmax_init,
                                .infer = argmax_infer,
                                .run = argmax_run};

const onnx_op_row onnx_ops_reduce[] = {
    {&onnx_op_argmax, 1},
    {&onnx_op_argmax, 11},
    {&onnx_op_argmax, 12},
    {&onnx_op_argmax, 13},
    {NULL, 0},
};
