/* backends/onnx/onnx_ops_layernorm.c: LayerNormalization (opset 17: axis,
 * epsilon, stash_type, the optional Mean and InvStdDev outputs) and
 * MeanVarianceNormalization.
 *
 * LayerNormalization normalises each row of X seen as [outer, n], n the
 * product of the dimensions from `axis` on: y = (x - mean) / sqrt(var +
 * epsilon) * scale + bias, with the variance of the centred values (two
 * passes, which stays accurate where E[x^2] - E[x]^2 cancels). It runs on
 * the transformer's hot path, so a float row is reduced in several lanes
 * at once, which the compiler vectorises. Statistics are computed in float
 * for float, float16 and bfloat16 inputs and in double for double; Mean
 * and InvStdDev have the type stash_type names (float or double). Scale
 * and B broadcast to the normalised shape.
 *
 * MeanVarianceNormalization is (x - mean) / (sqrt(var) + 1e-9) over its
 * axes, as ONNX's function body defines it. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#define LANES 8
#define ID(x) (x)

/* ---- LayerNormalization ------------------------------------------------- */

/* Mean and the sum of squared deviations of a float row, in LANES partial
 * sums. */
ONNX_HOT static void stats_f32(const float *restrict x, int64_t n, float *mean, float *ssd) {
  float acc[LANES] = {0};
  int64_t tail = n - n % LANES, j;
  for (j = 0; j < tail; j += LANES)
    for (int k = 0; k < LANES; k++)
      acc[k] += x[j + k];
  for (; j < n; j++)
    acc[0] += x[j];
  float s = 0;
  for (int k = 0; k < LANES; k++)
    s += acc[k];
  float m = s / (float)n;
  for (int k = 0; k < LANES; k++)
    acc[k] = 0;
  for (j = 0; j < tail; j += LANES)
    for (int k = 0; k < LANES; k++)
      acc[k] += (x[j + k] - m) * (x[j + k] - m);
  for (; j < n; j++)
    acc[0] += (x[j] - m) * (x[j] - m);
  s = 0;
  for (int k = 0; k < LANES; k++)
    s += acc[k];
  *mean = m;
  *ssd = s;
}

/* y = (x - m) * inv * scale + bias over a float row whose scale and bias
 * are whole rows. */
ONNX_HOT static void apply_f32(const float *restrict x, float *restrict y, int64_t n, float m,
                               float inv, const float *restrict scale, const float *restrict bias) {
  if (bias)
    for (int64_t j = 0; j < n; j++)
      y[j] = (x[j] - m) * inv * scale[j] + bias[j];
  else
    for (int64_t j = 0; j < n; j++)
      y[j] = (x[j] - m) * inv * scale[j];
}

/* Where Scale or B is not a whole row: for element j of a row, the offset
 * of the value that broadcasts to it. */
typedef struct row_bcast {
  int nd;
  int64_t dims[ONNX_MAX_DIMS];   /* the normalised shape */
  int64_t stride[ONNX_MAX_DIMS]; /* the tensor's stride per dim, 0 where broadcast */
} row_bcast;

static void row_bcast_init(row_bcast *rb, const onnx_tensor *x, int axis, const onnx_tensor *t) {
  rb->nd = x->ndim - axis;
  int64_t s = 1;
  for (int i = rb->nd - 1; i >= 0; i--) {
    rb->dims[i] = x->dims[axis + i];
    int it = i - (rb->nd - t->ndim);
    int64_t d = it >= 0 ? t->dims[it] : 1;
    rb->stride[i] = d == 1 ? 0 : s;
    s *= d;
  }
}

static int64_t row_bcast_at(const row_bcast *rb, int64_t j) {
  int64_t off = 0;
  for (int i = rb->nd - 1; i >= 0; i--) {
    off += j % rb->dims[i] * rb->stride[i];
    j /= rb->dims[i];
  }
  return off;
}

typedef struct layernorm_attr {
  int64_t axis;
  float epsilon;
  inferd_dtype stash; /* FP32 or FP64 */
} layernorm_attr;

static int layernorm_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  layernorm_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int64_t stash;
  int rc;
  if ((rc = onnx_attr_int(p, "axis", -1, &at->axis, e)) ||
      (rc = onnx_attr_float(p, "epsilon", 1e-5f, &at->epsilon, e)) ||
      (rc = onnx_attr_int(p, "stash_type", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &stash, e)))
    return rc;
  if (stash == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    at->stash = INFERD_TYPE_FP32;
  else if (stash == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    at->stash = INFERD_TYPE_FP64;
  else
    return err_set(e, -ENOTSUP, "attribute stash_type=%lld is not supported (FLOAT or DOUBLE)",
                   (long long)stash);
  return 0;
}

/* Whether t's shape broadcasts to x's dimensions from axis on. */
static bool broadcasts_to_row(const onnx_tensor *t, const onnx_tensor *x, int axis) {
  int nd = x->ndim - axis;
  if (t->ndim > nd) {
    for (int i = 0; i < t->ndim - nd; i++)
      if (t->dims[i] != 1) return false;
  }
  for (int i = 1; i <= nd && i <= t->ndim; i++) {
    int64_t d = t->dims[t->ndim - i];
    if (d != 1 && d != x->dims[x->ndim - i]) return false;
  }
  return true;
}

static int layernorm_infer(const onnx_node *n, const onnx_tensor *const *in,
                           onnx_tensor *const *out, err *e) {
  const layernorm_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  if (!onnx_dtype_is_floating(x->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  int axis;
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  for (int k = 1; k < 3 && k < n->n_in; k++) {
    if (!in[k]) continue;
    char sx[96], st[96];
    if (in[k]->dtype != x->dtype)
      return err_set(e, -EINVAL, "%s has type %s; X has %s", k == 1 ? "Scale" : "B",
                     dtype_name(in[k]->dtype), dtype_name(x->dtype));
    if (!broadcasts_to_row(in[k], x, axis))
      return err_set(e, -EINVAL, "%s %s does not broadcast to the normalised dimensions of X %s",
                     k == 1 ? "Scale" : "B", onnx_shape_str(st, in[k]), onnx_shape_str(sx, x));
  }
  onnx_tensor_like(out[0], x);
  int64_t dims[ONNX_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    dims[i] = i < axis ? x->dims[i] : 1;
  for (int k = 1; k < 3 && k < n->n_out; k++) {
    if (!out[k]) continue;
    out[k]->dtype = at->stash;
    onnx_tensor_set_shape(out[k], x->ndim, dims);
  }
  return 0;
}

/* Statistics of one row in double (every type but float's fast path). */
#define ROW_STATS(N, T, LD)                                                                        \
  static void stats_##N(const T *x, int64_t n, double *mean, double *ssd) {                        \
    double s = 0, q = 0;                                                                           \
    for (int64_t j = 0; j < n; j++)                                                                \
      s += LD(x[j]);                                                                               \
    double m = s / (double)n;                                                                      \
    for (int64_t j = 0; j < n; j++)                                                                \
      q += ((double)LD(x[j]) - m) * ((double)LD(x[j]) - m);                                        \
    *mean = m;                                                                                     \
    *ssd = q;                                                                                      \
  }
ROW_STATS(f64, double, ID)
ROW_STATS(f16, uint16_t, fp16_to_float)
ROW_STATS(bf16, uint16_t, bf16_to_float)

static int layernorm_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const layernorm_attr *at = n->attr;
  const onnx_tensor *x = in[0], *scale = in[1], *bias = n->n_in > 2 ? in[2] : NULL;
  onnx_tensor *mean_out = n->n_out > 1 ? out[1] : NULL, *inv_out = n->n_out > 2 ? out[2] : NULL;
  int axis;
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  int64_t outer = onnx_dims_product(x->dims, 0, axis),
          n_ = onnx_dims_product(x->dims, axis, x->ndim);
  inferd_dtype t = x->dtype;
  size_t es = dtype_size(t);
  bool whole = scale->count == n_ && (!bias || bias->count == n_);
  row_bcast sb, bb;
  row_bcast_init(&sb, x, axis, scale);
  if (bias) row_bcast_init(&bb, x, axis, bias);
  for (int64_t o = 0; o < outer; o++) {
    const char *xr = (const char *)x->data + (size_t)(o * n_) * es;
    char *yr = (char *)out[0]->data + (size_t)(o * n_) * es;
    double mean, ssd;
    if (n_ == 0) {
      mean = ssd = NAN;
    } else if (t == INFERD_TYPE_FP32) {
      float m, s;
      stats_f32((const float *)xr, n_, &m, &s);
      mean = m;
      ssd = s;
    } else if (t == INFERD_TYPE_FP64) {
      stats_f64((const double *)xr, n_, &mean, &ssd);
    } else if (t == INFERD_TYPE_FP16) {
      stats_f16((const uint16_t *)xr, n_, &mean, &ssd);
    } else {
      stats_bf16((const uint16_t *)xr, n_, &mean, &ssd);
    }
    double inv = 1 / sqrt(ssd / (double)n_ + at->epsilon);
    if (t == INFERD_TYPE_FP32 && at->stash == INFERD_TYPE_FP32) /* in float, as stash_type says */
      inv = 1 / sqrtf((float)ssd / (float)n_ + at->epsilon);
    if (mean_out) onnx_float_put(mean_out->data, at->stash, o, mean);
    if (inv_out) onnx_float_put(inv_out->data, at->stash, o, inv);
    if (t == INFERD_TYPE_FP32 && whole) {
      apply_f32((const float *)xr, (float *)yr, n_, (float)mean, (float)inv, scale->data,
                bias ? bias->data : NULL);
      continue;
    }
    for (int64_t j = 0; j < n_; j++) {
      double v = (onnx_float_get(xr, t, j) - mean) * inv *
                 onnx_float_get(scale->data, t, row_bcast_at(&sb, j));
      if (bias) v += onnx_float_get(bias->data, t, row_bcast_at(&bb, j));
      onnx_float_put(yr, t, j, v);
    }
  }
  return 0;
}

static const onnx_op op_layernorm = {.name = "LayerNormalization",
                                     .domain = "",
                                     .min_inputs = 2,
                                     .max_inputs = 3,
                                     .min_outputs = 1,
                                     .max_outputs = 3,
                                     .init = layernorm_init,
                                     .infer = layernorm_infer,
                                     .run = layernorm_run};

/* ---- MeanVarianceNormalization ------------------------------------------ */

typedef struct mvn_attr {
  size_t n_axes;
  int64_t axes_v[ONNX_MAX_DIMS]; /* negative ones resolved against the input's rank */
} mvn_attr;

static int mvn_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  mvn_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int n_axes;
  int rc = onnx_attr_ints(p, "axes", at->axes_v, ONNX_MAX_DIMS, &n_axes, e);
  if (rc) return rc;
  if (n_axes < 0) { /* the default: all but the channels */
    at->n_axes = 3;
    at->axes_v[0] = 0, at->axes_v[1] = 2, at->axes_v[2] = 3;
  } else {
    at->n_axes = (size_t)n_axes;
  }
  return 0;
}

static int mvn_mask(const mvn_attr *at, int rank, bool *reduce, err *e) {
  for (int i = 0; i < rank; i++)
    reduce[i] = false;
  for (size_t k = 0; k < at->n_axes; k++) {
    int axis;
    int rc = onnx_axis(at->axes_v[k], rank, false, &axis, e);
    if (rc) return rc;
    if (reduce[axis])
      return err_set(e, -EINVAL, "axis %lld is listed twice", (long long)at->axes_v[k]);
    reduce[axis] = true;
  }
  return 0;
}

static int mvn_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  if (!onnx_dtype_is_floating(in[0]->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  bool reduce[ONNX_MAX_DIMS];
  int rc = mvn_mask(n->attr, in[0]->ndim, reduce, e);
  if (rc) return rc;
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

/* For each combination of the kept dimensions (an odometer over them), the
 * normalised ones are walked three times (by another odometer): the mean,
 * the variance, the output. */
static int mvn_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const onnx_tensor *x = in[0];
  bool reduce[ONNX_MAX_DIMS];
  int rc = mvn_mask(n->attr, x->ndim, reduce, e);
  if (rc) return rc;
  if (x->count == 0) return 0;
  int64_t stride[ONNX_MAX_DIMS], s = 1;
  for (int i = x->ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= x->dims[i];
  }
  int nk = 0, nr = 0;
  int64_t kd[ONNX_MAX_DIMS], ks[ONNX_MAX_DIMS], rd[ONNX_MAX_DIMS], rs[ONNX_MAX_DIMS];
  int64_t outs = 1, cnt = 1;
  for (int i = 0; i < x->ndim; i++) {
    if (reduce[i]) {
      rd[nr] = x->dims[i];
      rs[nr++] = stride[i];
      cnt *= x->dims[i];
    } else {
      kd[nk] = x->dims[i];
      ks[nk++] = stride[i];
      outs *= x->dims[i];
    }
  }
  inferd_dtype t = x->dtype;
  int64_t kidx[ONNX_MAX_DIMS] = {0}, base = 0;
  for (int64_t o = 0; o < outs; o++) {
    double sum = 0, ssd = 0, mean = 0, den = 0;
    for (int pass = 0; pass < 3; pass++) {
      int64_t ridx[ONNX_MAX_DIMS] = {0}, off = base;
      for (int64_t r = 0; r < cnt; r++) {
        double v = onnx_float_get(x->data, t, off);
        if (pass == 0)
          sum += v;
        else if (pass == 1)
          ssd += (v - mean) * (v - mean);
        else
          onnx_float_put(out[0]->data, t, off, (v - mean) / den);
        for (int d = nr - 1; d >= 0; d--) {
          off += rs[d];
          if (++ridx[d] < rd[d]) break;
          off -= rs[d] * rd[d];
          ridx[d] = 0;
        }
      }
      if (pass == 0) mean = sum / (double)cnt;
      if (pass == 1) den = sqrt(ssd / (double)cnt) + 1e-9;
    }
    for (int d = nk - 1; d >= 0; d--) {
      base += ks[d];
      if (++kidx[d] < kd[d]) break;
      base -= ks[d] * kd[d];
      kidx[d] = 0;
    }
  }
  return 0;
}

static const onnx_op op_mvn = {.name = "MeanVarianceNormalization",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = mvn_init,
                               .infer = mvn_infer,
                               .run = mvn_run};

const onnx_op_row onnx_ops_layernorm[] = {
    {&op_layernorm, 17},
    {&op_mvn, 9},
    {&op_mvn, 13},
    {NULL, 0},
};
