/* backends/onnx/onnx_ops_generate.c: operators that make tensors from
 * shapes and scalars rather than from other tensors' elements:
 * ConstantOfShape, Range, Size, the window functions HannWindow,
 * HammingWindow and BlackmanWindow, and MelWeightMatrix.
 *
 * Their output shapes come from input values (the shape, the scalars of
 * Range, a window's size), which are value_inputs: known when the plan is
 * built, so that these nodes are usually evaluated then, once per plan,
 * and never run per request. Size reads only its input's shape. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

/* ---- shared pieces ------------------------------------------------------ */

static bool fixed(inferd_dtype t) {
  size_t es = dtype_size(t);
  return es == 1 || es == 2 || es == 4 || es == 8;
}

/* A known numeric scalar (or one-element tensor) as a double. */
static int known_scalar(const onnx_tensor *t, const char *what, double *v, err *e) {
  if (!onnx_dtype_is_numeric(t->dtype) || t->count != 1 || t->ndim > 1)
    return err_set(e, -EINVAL, "%s must be a numeric scalar", what);
  if (!t->data) return onnx_not_known(what, e);
  *v = onnx_load_double(t, 0);
  return 0;
}

/* The output_datatype attribute of the window and mel operators: a
 * numeric TensorProto.DataType, FLOAT by default. */
static int attr_out_type(const Onnx__NodeProto *p, inferd_dtype *out, err *e) {
  int64_t v;
  int rc = onnx_attr_int(p, "output_datatype", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &v, e);
  if (rc) return rc;
  *out = v == (int32_t)v ? onnx_dtype_from_proto((int32_t)v) : INFERD_TYPE_INVALID;
  if (!onnx_dtype_is_numeric(*out))
    return err_set(e, -ENOTSUP, "output_datatype %lld is not supported", (long long)v);
  return 0;
}

/* ---- ConstantOfShape ---------------------------------------------------- */

/* The value attribute: one element of any fixed-size type; a FLOAT 0 when
 * absent. */
static int cos_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  onnx_tensor *t = onnx_attr_new(n, a, sizeof *t, e);
  if (!t) return -ENOMEM;
  const Onnx__AttributeProto *at = onnx_attr_find(p, "value");
  if (!at) {
    t->dtype = INFERD_TYPE_FP32;
    t->count = 1;
    t->ndim = 1;
    t->dims[0] = 1;
    if (!(t->data = arena_calloc(a, 1, 8))) return err_set(e, -ENOMEM, "out of memory");
    return 0;
  }
  if (!at->t) return err_set(e, -EINVAL, "attribute 'value' must be a tensor");
  int rc = onnx_tensor_decode(at->t, a, t, e);
  if (rc) return rc;
  if (!fixed(t->dtype))
    return err_set(e, -ENOTSUP, "a value of type %s is not supported", dtype_name(t->dtype));
  if (t->count != 1) return err_set(e, -EINVAL, "attribute 'value' must hold one element");
  return 0;
}

static int cos_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const onnx_tensor *s = in[0];
  if (s->dtype != INFERD_TYPE_INT64 || s->ndim != 1)
    return err_set(e, -EINVAL, "the shape input must be a 1-D INT64 tensor");
  if (!s->data) return onnx_not_known("shape", e);
  if (s->count > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "a shape of %lld dimensions is not supported", (long long)s->count);
  const int64_t *d = s->data;
  for (int64_t i = 0; i < s->count; i++)
    if (d[i] < 0) return err_set(e, -EINVAL, "the shape has a negative dimension");
  out[0]->dtype = ((const onnx_tensor *)n->attr)->dtype;
  onnx_tensor_set_shape(out[0], (int)s->count, d);
  if (out[0]->count < 0) return err_set(e, -EINVAL, "the shape is too large");
  return 0;
}

static int cos_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const onnx_tensor *v = n->attr;
  size_t es = dtype_size(v->dtype);
  char *d = out[0]->data;
  for (int64_t i = 0; i < out[0]->count; i++)
    memcpy(d + (size_t)i * es, v->data, es);
  return 0;
}

static const onnx_op constant_of_shape = {.name = "ConstantOfShape",
                                          .domain = "",
                                          .min_inputs = 1,
                                          .max_inputs = 1,
                                          .min_outputs = 1,
                                          .max_outputs = 1,
                                          .init = cos_init,
                                          .infer = cos_infer,
                                          .run = cos_run,
                                          .value_inputs = 1u << 0};

/* ---- Range -------------------------------------------------------------- */

/* Ranges longer than this are refused rather than planned. */
#define RANGE_MAX ((int64_t)1 << 32)

static int64_t int_at(const onnx_tensor *t) {
  switch (t->dtype) {
  case INFERD_TYPE_INT16: return *(const int16_t *)t->data;
  case INFERD_TYPE_INT32: return *(const int32_t *)t->data;
  default: return *(const int64_t *)t->data;
  }
}

/* ceil((limit - start) / delta), at least 0, computed without overflow:
 * in unsigned arithmetic for the integer types, in double for the
 * floating ones (as numpy's arange does). */
static int range_count(const onnx_tensor *const *in, int64_t *count, err *e) {
  inferd_dtype t = in[0]->dtype;
  for (int i = 0; i < 3; i++) {
    if (in[i]->dtype != t || in[i]->count != 1 || in[i]->ndim > 1)
      return err_set(e, -EINVAL, "start, limit and delta must be scalars of one type");
    if (!in[i]->data) return onnx_not_known(i == 0 ? "start" : i == 1 ? "limit" : "delta", e);
  }
  double n;
  if (onnx_dtype_is_float(t)) {
    double s = t == INFERD_TYPE_FP32 ? *(const float *)in[0]->data : *(const double *)in[0]->data;
    double l = t == INFERD_TYPE_FP32 ? *(const float *)in[1]->data : *(const double *)in[1]->data;
    double d = t == INFERD_TYPE_FP32 ? *(const float *)in[2]->data : *(const double *)in[2]->data;
    if (d == 0 || isnan(d) || isnan(s) || isnan(l))
      return err_set(e, -EINVAL, "delta must be non-zero and the values numbers");
    n = ceil((l - s) / d);
  } else if (t == INFERD_TYPE_INT16 || t == INFERD_TYPE_INT32 || t == INFERD_TYPE_INT64) {
    int64_t s = int_at(in[0]), l = int_at(in[1]), d = int_at(in[2]);
    if (d == 0) return err_set(e, -EINVAL, "delta must not be 0");
    if ((d > 0 && l <= s) || (d < 0 && l >= s)) {
      *count = 0;
      return 0;
    }
    uint64_t span = d > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
    uint64_t step = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
    n = (double)(span / step + (span % step != 0));
  } else {
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(t));
  }
  if (!(n < (double)RANGE_MAX))
    return err_set(e, -EINVAL, "the range has %g elements; at most %lld are supported", n,
                   (long long)RANGE_MAX);
  *count = n > 0 ? (int64_t)n : 0;
  return 0;
}

static int range_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  int64_t count;
  int rc = range_count(in, &count, e);
  if (rc) return rc;
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], 1, &count);
  return 0;
}

/* output[i] = start + i * delta, in the type's own arithmetic (integers
 * wrap, as they do in numpy). */
static int range_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  int64_t count = out[0]->count;
  void *o = out[0]->data;
  switch (in[0]->dtype) {
  case INFERD_TYPE_FP32: {
    float s = *(const float *)in[0]->data, d = *(const float *)in[2]->data;
    for (int64_t i = 0; i < count; i++)
      ((float *)o)[i] = s + (float)i * d;
    break;
  }
  case INFERD_TYPE_FP64: {
    double s = *(const double *)in[0]->data, d = *(const double *)in[2]->data;
    for (int64_t i = 0; i < count; i++)
      ((double *)o)[i] = s + (double)i * d;
    break;
  }
  default: {
    uint64_t s = (uint64_t)int_at(in[0]), d = (uint64_t)int_at(in[2]);
    for (int64_t i = 0; i < count; i++) {
      uint64_t v = s + (uint64_t)i * d;
      if (in[0]->dtype == INFERD_TYPE_INT16)
        ((int16_t *)o)[i] = (int16_t)v;
      else if (in[0]->dtype == INFERD_TYPE_INT32)
        ((int32_t *)o)[i] = (int32_t)v;
      else
        ((int64_t *)o)[i] = (int64_t)v;
    }
    break;
  }
  }
  return 0;
}

static const onnx_op range = {.name = "Range",
                              .domain = "",
                              .min_inputs = 3,
                              .max_inputs = 3,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .infer = range_infer,
                              .run = range_run,
                              .value_inputs = 7u};

/* ---- Size --------------------------------------------------------------- */

static int size_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  out[0]->dtype = INFERD_TYPE_INT64;
  onnx_tensor_set_shape(out[0], 0, NULL);
  return 0;
}

static int size_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  *(int64_t *)out[0]->data = in[0]->count;
  return 0;
}

static const onnx_op size_op = {.name = "Size",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .flags = ONNX_OP_SHAPE_ONLY,
                                .infer = size_infer,
                                .run = size_run};

/* ---- HannWindow, HammingWindow, BlackmanWindow -------------------------- */

/* w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N the size when
 * periodic and the size - 1 when symmetric. */
typedef struct window_coeffs {
  double a0, a1, a2;
} window_coeffs;

static const window_coeffs hann_c = {0.5, 0.5, 0};
static const window_coeffs hamming_c = {25.0 / 46.0, 21.0 / 46.0, 0};
static const window_coeffs blackman_c = {0.42, 0.5, 0.08};

typedef struct window_attr {
  inferd_dtype dtype;
  bool periodic;
} window_attr;

static int window_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  window_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = attr_out_type(p, &at->dtype, e)) ||
      (rc = onnx_attr_bool(p, "periodic", true, &at->periodic, e)))
    return rc;
  return 0;
}

static int window_size(const onnx_tensor *t, int64_t *size, err *e) {
  double v = 0;
  int rc;
  if (t->dtype != INFERD_TYPE_INT32 && t->dtype != INFERD_TYPE_INT64)
    return err_set(e, -EINVAL, "size must be an INT32 or INT64 scalar");
  if ((rc = known_scalar(t, "size", &v, e))) return rc;
  if (v < 0 || v > (double)RANGE_MAX) return err_set(e, -EINVAL, "size %g is out of range", v);
  *size = (int64_t)v;
  return 0;
}

static int window_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  int64_t size;
  int rc = window_size(in[0], &size, e);
  if (rc) return rc;
  out[0]->dtype = ((const window_attr *)n->attr)->dtype;
  onnx_tensor_set_shape(out[0], 1, &size);
  return 0;
}

static int window_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const window_attr *at = n->attr;
  const window_coeffs *c = n->op->kernels;
  int64_t size = out[0]->count, N = at->periodic ? size : size - 1;
  for (int64_t i = 0; i < size; i++) {
    double x = N > 0 ? 2 * M_PI * (double)i / (double)N : 0; /* one sample: w = a0 - a1 + a2 */
    onnx_store_double(out[0]->dtype, out[0]->data, i, c->a0 - c->a1 * cos(x) + c->a2 * cos(2 * x));
  }
  return 0;
}

#define WINDOW_OP(VAR, NAME, COEFFS)                                                               \
  static const onnx_op VAR = {.name = NAME,                                                        \
                              .domain = "",                                                        \
                              .min_inputs = 1,                                                     \
                              .max_inputs = 1,                                                     \
                              .min_outputs = 1,                                                    \
                              .max_outputs = 1,                                                    \
                              .init = window_init,                                                 \
                              .infer = window_infer,                                               \
                              .run = window_run,                                                   \
                              .value_inputs = 1u << 0,                                             \
                              .kernels = &COEFFS};
WINDOW_OP(hann_window, "HannWindow", hann_c)
WINDOW_OP(hamming_window, "HammingWindow", hamming_c)
WINDOW_OP(blackman_window, "BlackmanWindow", blackman_c)

/* ---- MelWeightMatrix ---------------------------------------------------- */

/* More mel bins than this are refused (the filter edges live on the
 * stack). */
#define MEL_BINS_MAX 1024

typedef struct mel_attr {
  inferd_dtype dtype;
} mel_attr;

static int mel_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  mel_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  return at ? attr_out_type(p, &at->dtype, e) : -ENOMEM;
}

/* The mel bins and the spectrogram's bins: [dft_length/2 + 1, bins]. */
static int mel_dims(const onnx_tensor *const *in, int64_t *bins, int64_t *spec, err *e) {
  double nb = 0, dft = 0;
  int rc;
  if ((rc = known_scalar(in[0], "num_mel_bins", &nb, e)) ||
      (rc = known_scalar(in[1], "dft_length", &dft, e)))
    return rc;
  if (!(nb >= 1 && nb <= MEL_BINS_MAX && dft >= 1 && dft <= (double)RANGE_MAX))
    return err_set(e, -EINVAL, "num_mel_bins %g or dft_length %g is out of range", nb, dft);
  *bins = (int64_t)nb;
  *spec = (int64_t)dft / 2 + 1;
  return 0;
}

static int mel_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  int64_t dims[2];
  int rc = mel_dims(in, &dims[1], &dims[0], e);
  if (rc) return rc;
  out[0]->dtype = ((const mel_attr *)n->attr)->dtype;
  onnx_tensor_set_shape(out[0], 2, dims);
  return 0;
}

/* Triangular filters between mel-spaced frequencies, each mapped to a
 * spectrogram bin as floor((dft_length + 1) * hz / sample_rate); the mel
 * edges are computed in float, as the operator's definition does. */
static int mel_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  int64_t bins = 0, spec = 0;
  double dft = 0, rate = 0, lo_hz = 0, hi_hz = 0;
  int rc;
  if ((rc = mel_dims(in, &bins, &spec, e)) || (rc = known_scalar(in[1], "dft_length", &dft, e)) ||
      (rc = known_scalar(in[2], "sample_rate", &rate, e)) ||
      (rc = known_scalar(in[3], "lower_edge_hertz", &lo_hz, e)) ||
      (rc = known_scalar(in[4], "upper_edge_hertz", &hi_hz, e)))
    return rc;
  if (!(rate > 0)) return err_set(e, -EINVAL, "sample_rate must be positive");
  float lo_mel = 2595.0f * log10f(1.0f + (float)lo_hz / 700.0f);
  float hi_mel = 2595.0f * log10f(1.0f + (float)hi_hz / 700.0f);
  float step = (hi_mel - lo_mel) / (float)(bins + 2);
  int64_t f[MEL_BINS_MAX + 2];
  for (int64_t i = 0; i < bins + 2; i++) {
    double hz = 700.0 * (pow(10.0, ((double)i * step + lo_mel) / 2595.0) - 1.0);
    double b = floor(((int64_t)dft + 1) * hz / rate);
    if (!(b >= 0 && b < (double)spec))
      return err_set(e, -EINVAL, "mel edge %lld falls on bin %g, outside the %lld bins",
                     (long long)i, b, (long long)spec);
    f[i] = (int64_t)b;
  }
  inferd_dtype t = out[0]->dtype;
  void *o = out[0]->data;
  for (int64_t i = 0; i < out[0]->count; i++)
    onnx_store_double(t, o, i, 0);
  for (int64_t m = 0; m < bins; m++) {
    int64_t left = f[m], center = f[m + 1], right = f[m + 2];
    if (center == left)
      onnx_store_double(t, o, center * bins + m, 1);
    else
      for (int64_t j = left; j <= center; j++)
        onnx_store_double(t, o, j * bins + m, (double)(j - left) / (double)(center - left));
    for (int64_t j = center; j < right; j++)
      onnx_store_double(t, o, j * bins + m, (double)(right - j) / (double)(right - center));
  }
  return 0;
}

static const onnx_op mel_weight_matrix = {.name = "MelWeightMatrix",
                                          .domain = "",
                                          .min_inputs = 5,
                                          .max_inputs = 5,
                                          .min_outputs = 1,
                                          .max_outputs = 1,
                                          .init = mel_init,
                                          .infer = mel_infer,
                                          .run = mel_run,
                                          .value_inputs = 3u};

/* ---- registry rows ------------------------------------------------------ */

/* One line per operator, its versions in order. */
/* clang-format off */
const onnx_op_row onnx_ops_generate[] = {
    {&constant_of_shape, 9},
    {&range, 11},
    {&size_op, 1}, {&size_op, 13},
    {&hann_window, 17},
    {&hamming_window, 17},
    {&blackman_window, 17},
    {&mel_weight_matrix, 17},
    {NULL, 0},
};
/* clang-format on */
