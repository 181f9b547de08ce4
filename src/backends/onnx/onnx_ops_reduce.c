/* backends/onnx/onnx_ops_reduce.c: reductions: ReduceSum, ReduceMean,
 * ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
 * ReduceLogSum, ReduceLogSumExp (axes, keepdims, ReduceSum 13's axes input
 * and noop_with_empty_axes); ArgMax and ArgMin (select_last_index); TopK;
 * CumSum.
 *
 * A reduction first simplifies its input's shape: dimensions of size 1 do
 * not matter and neighbours that are both reduced or both kept merge, so
 * that most reductions become [outer, n, inner] with n reduced. Those run
 * a strip of up to STRIP output columns at a time, accumulating in a stack
 * array that the compiler vectorises along the columns; a float row
 * (inner = 1, ReduceMean over the hidden size of a transformer) is reduced
 * in several lanes at once instead. Other shapes (axes 0 and 2 of three)
 * walk the reduced elements of each output with an odometer.
 *
 * Accumulators are float for float and the 16-bit floats, double for
 * double, int64/uint64 for integers (wrapping, like numpy's sums in the
 * input's type). Over an empty set, sums give 0, products 1, ReduceMax
 * the type's lowest value (-inf) and ReduceMin its highest, ReduceMean
 * NaN (0 for integers), as opset 18 spells out. NaN propagates through
 * ReduceMax/ReduceMin (numpy's max); ArgMax/ArgMin and TopK rank NaN above
 * every number. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#define N_DTYPES (INFERD_TYPE_BF16 + 1)

#define ID(x) (x)

/* ---- Reduce* geometry --------------------------------------------------- */

enum rop { R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LSE };

/* A reduction's input, simplified: either [outer, n, inner] reducing n
 * (general false), or kept and reduced groups of dimensions with their
 * input strides, the output walking the kept ones in order. */
typedef struct rgeom {
  bool general;
  int64_t outer, n, inner;
  int nk, nr;
  int64_t kdim[ONNX_MAX_DIMS], kstride[ONNX_MAX_DIMS];
  int64_t rdim[ONNX_MAX_DIMS], rstride[ONNX_MAX_DIMS];
} rgeom;

static void rgeom_init(rgeom *g, const onnx_tensor *x, const bool *reduce) {
  int64_t stride[ONNX_MAX_DIMS], s = 1;
  for (int i = x->ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= x->dims[i];
  }
  /* groups: size, stride of its innermost dim, reduced */
  int ng = 0;
  int64_t gsize[ONNX_MAX_DIMS], gstride[ONNX_MAX_DIMS];
  bool gred[ONNX_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    if (x->dims[i] == 1) continue;
    if (ng > 0 && gred[ng - 1] == reduce[i]) {
      gsize[ng - 1] *= x->dims[i];
      gstride[ng - 1] = stride[i];
      continue;
    }
    gsize[ng] = x->dims[i];
    gstride[ng] = stride[i];
    gred[ng++] = reduce[i];
  }
  memset(g, 0, sizeof *g);
  g->outer = g->n = g->inner = 1;
  int first_r = -1, nr = 0;
  for (int k = 0; k < ng; k++)
    if (gred[k]) {
      nr++;
      if (first_r < 0) first_r = k;
    }
  if (nr <= 1) {
    for (int k = 0; k < ng; k++) {
      if (gred[k])
        g->n = gsize[k];
      else if (first_r < 0 || k < first_r)
        g->outer *= gsize[k];
      else
        g->inner *= gsize[k];
    }
    return;
  }
  g->general = true;
  for (int k = 0; k < ng; k++) {
    if (gred[k]) {
      g->rdim[g->nr] = gsize[k];
      g->rstride[g->nr++] = gstride[k];
    } else {
      g->kdim[g->nk] = gsize[k];
      g->kstride[g->nk++] = gstride[k];
    }
  }
  g->n = 1;
  for (int k = 0; k < g->nr; k++)
    g->n *= g->rdim[k];
}

/* ---- Reduce* kernels ---------------------------------------------------- */

/* Saturating conversions from double (NaN to 0): C leaves out-of-range
 * conversions undefined. */
static int64_t sat_i64(double d) {
  return d != d ? 0 : d <= -0x1p63 ? INT64_MIN : d >= 0x1p63 ? INT64_MAX : (int64_t)d;
}
static uint64_t sat_u64(double d) {
  return d != d || d <= 0 ? 0 : d >= 0x1p64 ? UINT64_MAX : (uint64_t)d;
}

/* log(sum e^(x - m)) + m with m the maximum, which a -inf or +inf maximum
 * would turn into NaN: those take m = 0 (giving -inf or +inf). */
static double lse_finish(double mx, double sum) {
  double m = isfinite(mx) ? mx : 0;
  return isnan(mx) ? mx : m + log(sum);
}
static double lse_shift(double mx) { return isfinite(mx) ? mx : 0; }

#define STRIP 64
#define LANES 8

/* Each type as M(name, storage T, accumulator A, load, store, lowest,
 * highest, ADD, MUL, ABS, from-double, mean). */
#define F_ADD(a, b)    ((a) + (b))
#define F_MUL(a, b)    ((a) * (b))
#define F_ABS(v)       ((v) < 0 ? -(v) : (v))
#define S_ADD(a, b)    ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define S_MUL(a, b)    ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
#define S_ABS(v)       ((v) < 0 ? (int64_t)(0 - (uint64_t)(v)) : (v))
#define F_MEAN(a, n)   ((a) / (n))
#define I_MEAN(a, n)   ((n) ? (a) / (n) : 0)
#define FROM_D_F(d, A) ((A)(d))
#define FROM_D_S(d, A) sat_i64(d)
#define FROM_D_U(d, A) sat_u64(d)

#define REDUCE_TYPE(N, T, A, LD, ST, LOWEST, HIGHEST, ADD, MUL, ABS, FROM_D, MEAN)                 \
  /* acc[i] = op(acc[i], f(x[j*sj + i])) for j < n, i < w. */                                      \
  ONNX_KERNEL static void accum_##N(int op, A *restrict acc, const T *x, int64_t n, int64_t sj,    \
                                    int64_t w) {                                                   \
    switch (op) {                                                                                  \
    case R_SUM:                                                                                    \
    case R_MEAN:                                                                                   \
    case R_LOGSUM:                                                                                 \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++)                                                            \
          acc[i] = ADD(acc[i], (A)LD(x[j * sj + i]));                                              \
      break;                                                                                       \
    case R_SUMSQ:                                                                                  \
    case R_L2:                                                                                     \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          A v = (A)LD(x[j * sj + i]);                                                              \
          acc[i] = ADD(acc[i], MUL(v, v));                                                         \
        }                                                                                          \
      break;                                                                                       \
    case R_L1:                                                                                     \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          A v = (A)LD(x[j * sj + i]);                                                              \
          acc[i] = ADD(acc[i], ABS(v));                                                            \
        }                                                                                          \
      break;                                                                                       \
    case R_PROD:                                                                                   \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++)                                                            \
          acc[i] = MUL(acc[i], (A)LD(x[j * sj + i]));                                              \
      break;                                                                                       \
    case R_MAX:                                                                                    \
    case R_LSE:                                                                                    \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          A v = (A)LD(x[j * sj + i]);                                                              \
          acc[i] = v > acc[i] || v != v ? v : acc[i];                                              \
        }                                                                                          \
      break;                                                                                       \
    case R_MIN:                                                                                    \
      for (int64_t j = 0; j < n; j++)                                                              \
        for (int64_t i = 0; i < w; i++) {                                                          \
          A v = (A)LD(x[j * sj + i]);                                                              \
          acc[i] = v < acc[i] || v != v ? v : acc[i];                                              \
        }                                                                                          \
      break;                                                                                       \
    }                                                                                              \
  }                                                                                                \
  /* LogSumExp's second pass: sum[i] += e^(x - shift(mx[i])). */                                   \
  static void lse_##N(const A *mx, double *sum, const T *x, int64_t n, int64_t sj, int64_t w) {    \
    for (int64_t j = 0; j < n; j++)                                                                \
      for (int64_t i = 0; i < w; i++)                                                              \
        sum[i] += exp((double)LD(x[j * sj + i]) - lse_shift((double)mx[i]));                       \
  }                                                                                                \
  static A identity_##N(int op) {                                                                  \
    return op == R_PROD                 ? (A)1                                                     \
           : op == R_MAX || op == R_LSE ? (A)(LOWEST)                                              \
           : op == R_MIN                ? (A)(HIGHEST)                                             \
                                        : (A)0;                                                                   \
  }                                                                                                \
  static T finish_##N(int op, A acc, double sum, int64_t n) {                                      \
    switch (op) {                                                                                  \
    case R_MEAN: acc = MEAN(acc, (A)n); break;                                                     \
    case R_L2: acc = FROM_D(sqrt((double)acc), A); break;                                          \
    case R_LOGSUM: acc = FROM_D(log((double)acc), A); break;                                       \
    case R_LSE: acc = FROM_D(lse_finish((double)acc, sum), A); break;                              \
    default: break;                                                                                \
    }                                                                                              \
    return (T)ST(acc);                                                                             \
  }                                                                                                \
  /* [outer, n, inner], a strip of output columns at a time. */                                    \
  static void strips_##N(int op, const void *x_, void *y_, const rgeom *g) {                       \
    const T *x = x_;                                                                               \
    T *y = y_;                                                                                     \
    A acc[STRIP];                                                                                  \
    double sum[STRIP];                                                                             \
    for (int64_t o = 0; o < g->outer; o++)                                                         \
      for (int64_t i0 = 0; i0 < g->inner; i0 += STRIP) {                                           \
        int64_t w = g->inner - i0 < STRIP ? g->inner - i0 : STRIP;                                 \
        for (int64_t i = 0; i < w; i++) {                                                          \
          acc[i] = identity_##N(op);                                                               \
          sum[i] = 0;                                                                              \
        }                                                                                          \
        if (g->n) { /* an empty set leaves x alone */                                              \
          const T *xs = x + o * g->n * g->inner + i0;                                              \
          accum_##N(op, acc, xs, g->n, g->inner, w);                                               \
          if (op == R_LSE) lse_##N(acc, sum, xs, g->n, g->inner, w);                               \
        }                                                                                          \
        for (int64_t i = 0; i < w; i++)                                                            \
          y[o * g->inner + i0 + i] = finish_##N(op, acc[i], sum[i], g->n);                         \
      }                                                                                            \
  }                                                                                                \
  /* Any shape: for each output, an odometer over the reduced groups but                           \
   * the last, which accum walks. */                                                               \
  static void general_##N(int op, const void *x_, void *y_, const rgeom *g) {                      \
    const T *x = x_;                                                                               \
    T *y = y_;                                                                                     \
    int64_t kidx[ONNX_MAX_DIMS] = {0}, base = 0, out = 0;                                          \
    int last = g->nr - 1;                                                                          \
    int64_t outs = 1;                                                                              \
    for (int k = 0; k < g->nk; k++)                                                                \
      outs *= g->kdim[k];                                                                          \
    for (; out < outs; out++) {                                                                    \
      A acc = identity_##N(op);                                                                    \
      double sum = 0;                                                                              \
      for (int pass = 0; g->n && pass < (op == R_LSE ? 2 : 1); pass++) {                           \
        int64_t ridx[ONNX_MAX_DIMS] = {0}, roff = 0;                                               \
        for (;;) {                                                                                 \
          if (pass == 0)                                                                           \
            accum_##N(op, &acc, x + base + roff, g->rdim[last], g->rstride[last], 1);              \
          else                                                                                     \
            lse_##N(&acc, &sum, x + base + roff, g->rdim[last], g->rstride[last], 1);              \
          int d = last - 1;                                                                        \
          for (; d >= 0; d--) {                                                                    \
            roff += g->rstride[d];                                                                 \
            if (++ridx[d] < g->rdim[d]) break;                                                     \
            roff -= g->rstride[d] * g->rdim[d];                                                    \
            ridx[d] = 0;                                                                           \
          }                                                                                        \
          if (d < 0) break;                                                                        \
        }                                                                                          \
      }                                                                                            \
      y[out] = finish_##N(op, acc, sum, g->n);                                                     \
      for (int d = g->nk - 1; d >= 0; d--) {                                                       \
        base += g->kstride[d];                                                                     \
        if (++kidx[d] < g->kdim[d]) break;                                                         \
        base -= g->kstride[d] * g->kdim[d];                                                        \
        kidx[d] = 0;                                                                               \
      }                                                                                            \
    }                                                                                              \
  }

REDUCE_TYPE(f32, float, float, ID, ID, -INFINITY, INFINITY, F_ADD, F_MUL, F_ABS, FROM_D_F, F_MEAN)
REDUCE_TYPE(f64, double, double, ID, ID, -INFINITY, INFINITY, F_ADD, F_MUL, F_ABS, FROM_D_F, F_MEAN)
REDUCE_TYPE(f16, uint16_t, float, fp16_to_float, float_to_fp16, -INFINITY, INFINITY, F_ADD, F_MUL,
            F_ABS, FROM_D_F, F_MEAN)
REDUCE_TYPE(bf16, uint16_t, float, bf16_to_float, float_to_bf16, -INFINITY, INFINITY, F_ADD, F_MUL,
            F_ABS, FROM_D_F, F_MEAN)
REDUCE_TYPE(i8, int8_t, int64_t, ID, ID, INT8_MIN, INT8_MAX, S_ADD, S_MUL, S_ABS, FROM_D_S, I_MEAN)
REDUCE_TYPE(i16, int16_t, int64_t, ID, ID, INT16_MIN, INT16_MAX, S_ADD, S_MUL, S_ABS, FROM_D_S,
            I_MEAN)
REDUCE_TYPE(i32, int32_t, int64_t, ID, ID, INT32_MIN, INT32_MAX, S_ADD, S_MUL, S_ABS, FROM_D_S,
            I_MEAN)
REDUCE_TYPE(i64, int64_t, int64_t, ID, ID, INT64_MIN, INT64_MAX, S_ADD, S_MUL, S_ABS, FROM_D_S,
            I_MEAN)
REDUCE_TYPE(u8, uint8_t, uint64_t, ID, ID, 0, UINT8_MAX, F_ADD, F_MUL, ID, FROM_D_U, I_MEAN)
REDUCE_TYPE(u16, uint16_t, uint64_t, ID, ID, 0, UINT16_MAX, F_ADD, F_MUL, ID, FROM_D_U, I_MEAN)
REDUCE_TYPE(u32, uint32_t, uint64_t, ID, ID, 0, UINT32_MAX, F_ADD, F_MUL, ID, FROM_D_U, I_MEAN)
REDUCE_TYPE(u64, uint64_t, uint64_t, ID, ID, 0, UINT64_MAX, F_ADD, F_MUL, ID, FROM_D_U, I_MEAN)

/* A float row (inner = 1) of the hot reductions, in LANES partial results
 * that the compiler keeps in one or two vector registers. */
ONNX_HOT static float row_f32(int op, const float *restrict x, int64_t n) {
  float acc[LANES];
  int64_t j = 0, tail = n - n % LANES;
  switch (op) {
  case R_MAX:
  case R_MIN:
    for (int k = 0; k < LANES; k++)
      acc[k] = op == R_MAX ? -INFINITY : INFINITY;
    if (op == R_MAX)
      for (; j < tail; j += LANES)
        for (int k = 0; k < LANES; k++) {
          float v = x[j + k];
          acc[k] = v > acc[k] || v != v ? v : acc[k];
        }
    else
      for (; j < tail; j += LANES)
        for (int k = 0; k < LANES; k++) {
          float v = x[j + k];
          acc[k] = v < acc[k] || v != v ? v : acc[k];
        }
    accum_f32(op, acc, x + j, n - j, 1, 1);
    for (int k = 1; k < LANES; k++)
      acc[0] =
          (op == R_MAX ? acc[k] > acc[0] : acc[k] < acc[0]) || acc[k] != acc[k] ? acc[k] : acc[0];
    return acc[0];
  default: /* sums */
    for (int k = 0; k < LANES; k++)
      acc[k] = 0;
    if (op == R_SUMSQ || op == R_L2)
      for (; j < tail; j += LANES)
        for (int k = 0; k < LANES; k++)
          acc[k] += x[j + k] * x[j + k];
    else if (op == R_L1)
      for (; j < tail; j += LANES)
        for (int k = 0; k < LANES; k++)
          acc[k] += x[j + k] < 0 ? -x[j + k] : x[j + k];
    else
      for (; j < tail; j += LANES)
        for (int k = 0; k < LANES; k++)
          acc[k] += x[j + k];
    accum_f32(op, acc, x + j, n - j, 1, 1);
    float s = 0;
    for (int k = 0; k < LANES; k++)
      s += acc[k];
    return s;
  }
}

typedef void (*reduce_fn)(int op, const void *x, void *y, const rgeom *g);
typedef struct reduce_kernels {
  reduce_fn strips, general;
} reduce_kernels;

/* A table row (ONNX_TAB_NUMERIC's ROW): both kernels of type N. */
#define RK(OP, N)                                                                                  \
  { strips_##N, general_##N }
static const reduce_kernels reduce_k[N_DTYPES] = {ONNX_TAB_NUMERIC(RK, reduce)};

/* ---- Reduce* ------------------------------------------------------------ */

typedef struct reduce_attr {
  int op;              /* enum rop */
  bool keepdims, noop; /* noop_with_empty_axes */
  bool axes_input;     /* ReduceSum from 13: axes is input 1 */
  size_t n_axes;
  int64_t axes[ONNX_MAX_DIMS]; /* the attribute */
} reduce_attr;

static int reduce_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  reduce_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  at->op = *(const int *)n->op->kernels;
  at->axes_input = n->op->max_inputs == 2;
  int rc;
  if ((rc = onnx_attr_bool(p, "keepdims", true, &at->keepdims, e))) return rc;
  if (at->axes_input) return onnx_attr_bool(p, "noop_with_empty_axes", false, &at->noop, e);
  int n_axes;
  if ((rc = onnx_attr_ints(p, "axes", at->axes, ONNX_MAX_DIMS, &n_axes, e))) return rc;
  at->n_axes = n_axes < 0 ? 0 : (size_t)n_axes;
  return 0;
}

/* Which dimensions of x the node reduces; *noop when none (an empty axes
 * list under noop_with_empty_axes). */
static int reduce_axes(const onnx_node *n, const onnx_tensor *const *in, bool *reduce, bool *noop,
                       err *e) {
  const reduce_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  const int64_t *axes = at->axes;
  int64_t n_axes = (int64_t)at->n_axes;
  if (at->axes_input && n->n_in > 1 && in[1]) {
    const onnx_tensor *t = in[1];
    if (t->dtype != INFERD_TYPE_INT64 || t->ndim != 1)
      return err_set(e, -EINVAL, "axes must be a 1-D INT64 tensor");
    if (!t->data)
      return err_set(e, -ENOTSUP,
                     "axes must be known before the node runs (a constant, computed from "
                     "shapes, or a small graph input)");
    axes = t->data;
    n_axes = t->count;
  }
  *noop = n_axes == 0 && at->noop;
  for (int i = 0; i < x->ndim; i++)
    reduce[i] = n_axes == 0 && !at->noop;
  for (int64_t k = 0; k < n_axes; k++) {
    int axis;
    int rc = onnx_axis(axes[k], x->ndim, false, &axis, e);
    if (rc) return rc;
    if (reduce[axis]) return err_set(e, -EINVAL, "axis %lld is listed twice", (long long)axes[k]);
    reduce[axis] = true;
  }
  return 0;
}

static int reduce_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const reduce_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  if (!onnx_dtype_is_numeric(x->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  bool reduce[ONNX_MAX_DIMS], noop;
  int rc = reduce_axes(n, in, reduce, &noop, e);
  if (rc) return rc;
  int64_t dims[ONNX_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++)
    if (!reduce[i])
      dims[nd++] = x->dims[i];
    else if (at->keepdims)
      dims[nd++] = 1;
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], nd, dims);
  return 0;
}

static bool row_op(int op) { return op != R_PROD && op != R_LSE; }

static int reduce_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const reduce_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  bool reduce[ONNX_MAX_DIMS], noop;
  int rc = reduce_axes(n, in, reduce, &noop, e);
  if (rc) return rc;
  if (noop) {
    if (x->count) memcpy(out[0]->data, x->data, onnx_tensor_bytes(x));
    return 0;
  }
  if (out[0]->count == 0) return 0;
  rgeom g;
  rgeom_init(&g, x, reduce);
  if (g.general) {
    reduce_k[x->dtype].general(at->op, x->data, out[0]->data, &g);
  } else if (x->dtype == INFERD_TYPE_FP32 && g.inner == 1 && row_op(at->op)) {
    const float *xs = x->data;
    float *y = out[0]->data;
    for (int64_t o = 0; o < g.outer; o++)
      y[o] = finish_f32(at->op, row_f32(at->op, xs + o * g.n, g.n), 0, g.n);
  } else {
    reduce_k[x->dtype].strips(at->op, x->data, out[0]->data, &g);
  }
  return 0;
}

static const int k_sum = R_SUM, k_mean = R_MEAN, k_prod = R_PROD, k_max = R_MAX, k_min = R_MIN,
                 k_l1 = R_L1, k_l2 = R_L2, k_sumsq = R_SUMSQ, k_logsum = R_LOGSUM, k_lse = R_LSE;

#define REDUCE_OP(VAR, NAME, K, MAX_IN, VALUES)                                                    \
  static const onnx_op VAR = {.kernels = &K,                                                       \
                              .name = NAME,                                                        \
                              .domain = "",                                                        \
                              .min_inputs = 1,                                                     \
                              .max_inputs = MAX_IN,                                                \
                              .min_outputs = 1,                                                    \
                              .max_outputs = 1,                                                    \
                              .value_inputs = VALUES,                                              \
                              .init = reduce_init,                                                 \
                              .infer = reduce_infer,                                               \
                              .run = reduce_run};
REDUCE_OP(op_reduce_sum, "ReduceSum", k_sum, 1, 0)
REDUCE_OP(op_reduce_sum13, "ReduceSum", k_sum, 2, 1u << 1)
REDUCE_OP(op_reduce_mean, "ReduceMean", k_mean, 1, 0)
REDUCE_OP(op_reduce_prod, "ReduceProd", k_prod, 1, 0)
REDUCE_OP(op_reduce_max, "ReduceMax", k_max, 1, 0)
REDUCE_OP(op_reduce_min, "ReduceMin", k_min, 1, 0)
REDUCE_OP(op_reduce_l1, "ReduceL1", k_l1, 1, 0)
REDUCE_OP(op_reduce_l2, "ReduceL2", k_l2, 1, 0)
REDUCE_OP(op_reduce_sum_square, "ReduceSumSquare", k_sumsq, 1, 0)
REDUCE_OP(op_reduce_log_sum, "ReduceLogSum", k_logsum, 1, 0)
REDUCE_OP(op_reduce_log_sum_exp, "ReduceLogSumExp", k_lse, 1, 0)

/* ---- ArgMax, ArgMin ----------------------------------------------------- */

typedef struct arg_attr {
  int64_t axis;
  bool keepdims;
  bool last; /* select_last_index */
} arg_attr;

static int arg_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  arg_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int rc;
  if ((rc = onnx_attr_int(p, "axis", 0, &at->axis, e)) ||
      (rc = onnx_attr_bool(p, "keepdims", true, &at->keepdims, e)) ||
      (rc = onnx_attr_bool(p, "select_last_index", false, &at->last, e)))
    return rc;
  return 0;
}

typedef void (*arg_fn)(const void *x, int64_t *y, int64_t outer, int64_t n, int64_t inner,
                       bool last, bool min);

/* The first (or last) index of the largest (or smallest) value along n; a
 * NaN wins over every number, the first NaN (or last) over the others. */
#define ARG_KERNEL(N, T, C, LD)                                                                    \
  static void arg_##N(const void *x_, int64_t *y, int64_t outer, int64_t n, int64_t inner,         \
                      bool last, bool min) {                                                       \
    const T *x = x_;                                                                               \
    for (int64_t o = 0; o < outer; o++)                                                            \
      for (int64_t i = 0; i < inner; i++) {                                                        \
        const T *p = x + o * n * inner + i;                                                        \
        C best = LD(p[0]);                                                                         \
        int64_t at = 0;                                                                            \
        for (int64_t j = 1; j < n; j++) {                                                          \
          C v = LD(p[j * inner]);                                                                  \
          bool take = best != best ? last && v != v                                                \
                                   : v != v || (min ? v < best : v > best) || (last && v == best); \
          if (take) {                                                                              \
            best = v;                                                                              \
            at = j;                                                                                \
          }                                                                                        \
        }                                                                                          \
        y[o * inner + i] = at;                                                                     \
      }                                                                                            \
  }
ARG_KERNEL(f32, float, float, ID)
ARG_KERNEL(f64, double, double, ID)
ARG_KERNEL(f16, uint16_t, float, fp16_to_float)
ARG_KERNEL(bf16, uint16_t, float, bf16_to_float)
ARG_KERNEL(i8, int8_t, int8_t, ID)
ARG_KERNEL(i16, int16_t, int16_t, ID)
ARG_KERNEL(i32, int32_t, int32_t, ID)
ARG_KERNEL(i64, int64_t, int64_t, ID)
ARG_KERNEL(u8, uint8_t, uint8_t, ID)
ARG_KERNEL(u16, uint16_t, uint16_t, ID)
ARG_KERNEL(u32, uint32_t, uint32_t, ID)
ARG_KERNEL(u64, uint64_t, uint64_t, ID)

static const arg_fn arg_k[N_DTYPES] = {ONNX_TAB_NUMERIC(ONNX_K1, arg)};

static int arg_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const arg_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis;
  if (!arg_k[x->dtype])
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

static int arg_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const arg_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis;
  int rc = onnx_axis(at->axis, x->ndim, false, &axis, e);
  if (rc) return rc;
  arg_k[x->dtype](x->data, out[0]->data, onnx_dims_product(x->dims, 0, axis), x->dims[axis],
                  onnx_dims_product(x->dims, axis + 1, x->ndim), at->last,
                  n->op != &onnx_op_argmax);
  return 0;
}

const onnx_op onnx_op_argmax = {.name = "ArgMax",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .init = arg_init,
                                .infer = arg_infer,
                                .run = arg_run};
static const onnx_op op_argmin = {.name = "ArgMin",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = arg_init,
                                  .infer = arg_infer,
                                  .run = arg_run};

/* ---- TopK --------------------------------------------------------------- */

/* The K largest (or smallest) values along an axis, best first, with
 * their indices; equal values in index order, NaN above every number. Each
 * slice keeps its K best so far in a heap that lives in the two outputs
 * themselves (worst at the root, elements `inner` apart), then sorts it in
 * place: O(n log K) and no memory beyond the outputs. sorted=0 allows any
 * order; this one is sorted as well. */
typedef struct topk_attr {
  int64_t axis, k; /* k: the attribute of TopK 1 */
  bool largest, sorted;
} topk_attr;

static int topk_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  topk_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int rc;
  if ((rc = onnx_attr_int(p, "axis", -1, &at->axis, e)) ||
      (rc = onnx_attr_bool(p, "largest", true, &at->largest, e)) ||
      (rc = onnx_attr_bool(p, "sorted", true, &at->sorted, e)))
    return rc;
  if (n->since < 10) {
    if (!onnx_attr_find(p, "k")) return err_set(e, -EINVAL, "attribute 'k' is required");
    if ((rc = onnx_attr_int(p, "k", 0, &at->k, e))) return rc;
  }
  if (n->since < 11 && (!at->largest || !at->sorted))
    return err_set(e, -EINVAL, "attributes largest and sorted came with opset 11");
  return 0;
}

/* K: the attribute, or input 1 (a 1-element INT64 tensor). */
static int topk_k(const onnx_node *n, const onnx_tensor *const *in, int64_t *k, err *e) {
  const topk_attr *at = n->attr;
  if (n->since < 10) {
    *k = at->k;
  } else {
    const onnx_tensor *t = in[1];
    if (t->dtype != INFERD_TYPE_INT64 || t->count != 1 || t->ndim > 1)
      return err_set(e, -EINVAL, "K must be a 1-element INT64 tensor");
    if (!t->data)
      return err_set(e, -ENOTSUP,
                     "K must be known before the node runs (a constant, computed from shapes, "
                     "or a small graph input)");
    *k = *(const int64_t *)t->data;
  }
  return 0;
}

static int topk_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const topk_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  if (!onnx_dtype_is_numeric(x->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  int axis;
  int64_t k = 0;
  int rc;
  if ((rc = onnx_axis(at->axis, x->ndim, false, &axis, e)) || (rc = topk_k(n, in, &k, e)))
    return rc;
  if (k < 0 || k > x->dims[axis])
    return err_set(e, -EINVAL, "K=%lld is outside [0, %lld], the axis' size", (long long)k,
                   (long long)x->dims[axis]);
  int64_t dims[ONNX_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  dims[axis] = k;
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], x->ndim, dims);
  if (n->n_out > 1 && out[1]) {
    out[1]->dtype = INFERD_TYPE_INT64;
    onnx_tensor_set_shape(out[1], x->ndim, dims);
  }
  return 0;
}

/* TopK's kernel for one type: better(a, b) ranks value a at index ia
 * before value b at index ib. */
#define TOPK_KERNEL(N, T, C, LD)                                                                   \
  static bool better_##N(T a, int64_t ia, T b, int64_t ib, bool largest) {                         \
    C x = LD(a), y = LD(b);                                                                        \
    bool xn = x != x, yn = y != y;                                                                 \
    if (xn || yn) return xn && yn ? ia < ib : largest ? xn : yn;                                   \
    if (x != y) return largest ? x > y : x < y;                                                    \
    return ia < ib;                                                                                \
  }                                                                                                \
  /* Moves element p of the heap (v, id; m elements, stride s) down to                             \
   * where its children are better than it. */                                                     \
  static void sift_##N(T *v, int64_t *id, int64_t p, int64_t m, int64_t s, bool largest) {         \
    for (;;) {                                                                                     \
      int64_t c = 2 * p + 1;                                                                       \
      if (c >= m) return;                                                                          \
      if (c + 1 < m && better_##N(v[c * s], id[c * s], v[(c + 1) * s], id[(c + 1) * s], largest))  \
        c++; /* the worse child */                                                                 \
      if (!better_##N(v[p * s], id[p * s], v[c * s], id[c * s], largest)) return;                  \
      T tv = v[p * s];                                                                             \
      int64_t ti = id[p * s];                                                                      \
      v[p * s] = v[c * s];                                                                         \
      id[p * s] = id[c * s];                                                                       \
      v[c * s] = tv;                                                                               \
      id[c * s] = ti;                                                                              \
      p = c;                                                                                       \
    }                                                                                              \
  }                                                                                                \
  static void topk_##N(const void *x_, void *v_, int64_t *id, int64_t outer, int64_t n,            \
                       int64_t inner, int64_t k, bool largest) {                                   \
    const T *x = x_;                                                                               \
    T *vals = v_;                                                                                  \
    for (int64_t o = 0; o < outer; o++)                                                            \
      for (int64_t i = 0; i < inner; i++) {                                                        \
        const T *xs = x + o * n * inner + i;                                                       \
        T *v = vals + o * k * inner + i;                                                           \
        int64_t *ix = id + o * k * inner + i;                                                      \
        for (int64_t j = 0; j < k; j++) {                                                          \
          v[j * inner] = xs[j * inner];                                                            \
          ix[j * inner] = j;                                                                       \
        }                                                                                          \
        for (int64_t p = k / 2; p-- > 0;)                                                          \
          sift_##N(v, ix, p, k, inner, largest);                                                   \
        for (int64_t j = k; j < n; j++) {                                                          \
          if (!better_##N(xs[j * inner], j, v[0], ix[0], largest)) continue;                       \
          v[0] = xs[j * inner];                                                                    \
          ix[0] = j;                                                                               \
          sift_##N(v, ix, 0, k, inner, largest);                                                   \
        }                                                                                          \
        for (int64_t m = k; m > 1; m--) { /* the worst to the end, best first */                   \
          T tv = v[0];                                                                             \
          int64_t ti = ix[0];                                                                      \
          v[0] = v[(m - 1) * inner];                                                               \
          ix[0] = ix[(m - 1) * inner];                                                             \
          v[(m - 1) * inner] = tv;                                                                 \
          ix[(m - 1) * inner] = ti;                                                                \
          sift_##N(v, ix, 0, m - 1, inner, largest);                                               \
        }                                                                                          \
      }                                                                                            \
  }
TOPK_KERNEL(f32, float, float, ID)
TOPK_KERNEL(f64, double, double, ID)
TOPK_KERNEL(f16, uint16_t, float, fp16_to_float)
TOPK_KERNEL(bf16, uint16_t, float, bf16_to_float)
TOPK_KERNEL(i8, int8_t, int8_t, ID)
TOPK_KERNEL(i16, int16_t, int16_t, ID)
TOPK_KERNEL(i32, int32_t, int32_t, ID)
TOPK_KERNEL(i64, int64_t, int64_t, ID)
TOPK_KERNEL(u8, uint8_t, uint8_t, ID)
TOPK_KERNEL(u16, uint16_t, uint16_t, ID)
TOPK_KERNEL(u32, uint32_t, uint32_t, ID)
TOPK_KERNEL(u64, uint64_t, uint64_t, ID)

typedef void (*topk_fn)(const void *x, void *v, int64_t *id, int64_t outer, int64_t n,
                        int64_t inner, int64_t k, bool largest);
static const topk_fn topk_k_[N_DTYPES] = {ONNX_TAB_NUMERIC(ONNX_K1, topk)};

/* Indices go to output 1, or to the values' memory's twin when output 1
 * is omitted: the heap needs somewhere to keep them. */
static int topk_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  const topk_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis;
  int64_t k = 0;
  int rc;
  if ((rc = onnx_axis(at->axis, x->ndim, false, &axis, e)) || (rc = topk_k(n, in, &k, e)))
    return rc;
  if (k == 0 || out[0]->count == 0) return 0;
  if (n->n_out < 2 || !out[1])
    return err_set(e, -ENOTSUP, "TopK without its Indices output is not supported");
  topk_k_[x->dtype](x->data, out[0]->data, out[1]->data, onnx_dims_product(x->dims, 0, axis),
                    x->dims[axis], onnx_dims_product(x->dims, axis + 1, x->ndim), k, at->largest);
  return 0;
}

static const onnx_op op_topk1 = {.name = "TopK",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 2,
                                 .max_outputs = 2,
                                 .init = topk_init,
                                 .infer = topk_infer,
                                 .run = topk_run};
static const onnx_op op_topk10 = {.name = "TopK",
                                  .domain = "",
                                  .min_inputs = 2,
                                  .max_inputs = 2,
                                  .min_outputs = 2,
                                  .max_outputs = 2,
                                  .value_inputs = 1u << 1,
                                  .init = topk_init,
                                  .infer = topk_infer,
                                  .run = topk_run};

/* ---- CumSum ------------------------------------------------------------- */

typedef struct cumsum_attr {
  bool exclusive, reverse;
} cumsum_attr;

static int cumsum_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  cumsum_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int rc;
  if ((rc = onnx_attr_bool(p, "exclusive", false, &at->exclusive, e)) ||
      (rc = onnx_attr_bool(p, "reverse", false, &at->reverse, e)))
    return rc;
  return 0;
}

static int cumsum_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  if (!onnx_dtype_is_numeric(in[0]->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  const onnx_tensor *t = in[1];
  if ((t->dtype != INFERD_TYPE_INT32 && t->dtype != INFERD_TYPE_INT64) || t->count != 1 ||
      t->ndim > 1)
    return err_set(e, -EINVAL, "axis must be a 1-element INT32 or INT64 tensor");
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

/* y along n: the running sum (exclusive: of the elements before), walking
 * n forwards or backwards; rows of `inner` columns at a time. Sums are in
 * the element's type (wrapping for integers, as numpy's cumsum). */
#define CUMSUM_KERNEL(N, T, C, LD, ST, ADD)                                                        \
  ONNX_KERNEL static void cumsum_##N(const void *x_, void *y_, int64_t outer, int64_t n,           \
                                     int64_t inner, bool exclusive, bool reverse) {                \
    const T *x = x_;                                                                               \
    T *y = y_;                                                                                     \
    for (int64_t o = 0; o < outer; o++) {                                                          \
      const T *xb = x + o * n * inner;                                                             \
      T *yb = y + o * n * inner;                                                                   \
      for (int64_t s = 0; s < n; s++) {                                                            \
        int64_t j = reverse ? n - 1 - s : s, prev = reverse ? j + 1 : j - 1;                       \
        T *yr = yb + j * inner;                                                                    \
        const T *xr = xb + (exclusive ? prev : j) * inner;                                         \
        const T *yp = yb + prev * inner;                                                           \
        if (s == 0) {                                                                              \
          for (int64_t i = 0; i < inner; i++)                                                      \
            yr[i] = exclusive ? ST((C)0) : xb[j * inner + i];                                      \
        } else {                                                                                   \
          for (int64_t i = 0; i < inner; i++)                                                      \
            yr[i] = ST((C)ADD(LD(yp[i]), LD(xr[i])));                                              \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
#define W_ADD32(a, b) ((uint32_t)(a) + (uint32_t)(b))
#define W_ADD64(a, b) ((uint64_t)(a) + (uint64_t)(b))
CUMSUM_KERNEL(f32, float, float, ID, ID, F_ADD)
CUMSUM_KERNEL(f64, double, double, ID, ID, F_ADD)
CUMSUM_KERNEL(f16, uint16_t, float, fp16_to_float, float_to_fp16, F_ADD)
CUMSUM_KERNEL(bf16, uint16_t, float, bf16_to_float, float_to_bf16, F_ADD)
CUMSUM_KERNEL(i8, int8_t, int8_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(i16, int16_t, int16_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(i32, int32_t, int32_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(i64, int64_t, int64_t, ID, ID, W_ADD64)
CUMSUM_KERNEL(u8, uint8_t, uint8_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(u16, uint16_t, uint16_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(u32, uint32_t, uint32_t, ID, ID, W_ADD32)
CUMSUM_KERNEL(u64, uint64_t, uint64_t, ID, ID, W_ADD64)

typedef void (*cumsum_fn)(const void *x, void *y, int64_t outer, int64_t n, int64_t inner,
                          bool exclusive, bool reverse);
static const cumsum_fn cumsum_k[N_DTYPES] = {ONNX_TAB_NUMERIC(ONNX_K1, cumsum)};

static int cumsum_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const cumsum_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int64_t a = in[1]->dtype == INFERD_TYPE_INT32 ? *(const int32_t *)in[1]->data
                                                : *(const int64_t *)in[1]->data;
  int axis;
  int rc = onnx_axis(a, x->ndim, false, &axis, e);
  if (rc) return rc;
  if (x->count == 0) return 0;
  cumsum_k[x->dtype](x->data, out[0]->data, onnx_dims_product(x->dims, 0, axis), x->dims[axis],
                     onnx_dims_product(x->dims, axis + 1, x->ndim), at->exclusive, at->reverse);
  return 0;
}

static const onnx_op op_cumsum = {.name = "CumSum",
                                  .domain = "",
                                  .min_inputs = 2,
                                  .max_inputs = 2,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = cumsum_init,
                                  .infer = cumsum_infer,
                                  .run = cumsum_run};

/* Reduce* before 11 refused negative axes, which accepting is a superset
 * of; 12 and 13 widened the types, and ReduceSum 13 took axes as an input.
 * TopK 1 took k as an attribute, 10 as an input, 11 added largest and
 * sorted. */
const onnx_op_row onnx_ops_reduce[] = {
    {&op_reduce_sum, 1},
    {&op_reduce_sum, 11},
    {&op_reduce_sum13, 13},
    {&op_reduce_mean, 1},
    {&op_reduce_mean, 11},
    {&op_reduce_mean, 13},
    {&op_reduce_prod, 1},
    {&op_reduce_prod, 11},
    {&op_reduce_prod, 13},
    {&op_reduce_max, 1},
    {&op_reduce_max, 11},
    {&op_reduce_max, 12},
    {&op_reduce_max, 13},
    {&op_reduce_min, 1},
    {&op_reduce_min, 11},
    {&op_reduce_min, 12},
    {&op_reduce_min, 13},
    {&op_reduce_l1, 1},
    {&op_reduce_l1, 11},
    {&op_reduce_l1, 13},
    {&op_reduce_l2, 1},
    {&op_reduce_l2, 11},
    {&op_reduce_l2, 13},
    {&op_reduce_sum_square, 1},
    {&op_reduce_sum_square, 11},
    {&op_reduce_sum_square, 13},
    {&op_reduce_log_sum, 1},
    {&op_reduce_log_sum, 11},
    {&op_reduce_log_sum, 13},
    {&op_reduce_log_sum_exp, 1},
    {&op_reduce_log_sum_exp, 11},
    {&op_reduce_log_sum_exp, 13},
    {&onnx_op_argmax, 1},
    {&onnx_op_argmax, 11},
    {&onnx_op_argmax, 12},
    {&onnx_op_argmax, 13},
    {&op_argmin, 1},
    {&op_argmin, 11},
    {&op_argmin, 12},
    {&op_argmin, 13},
    {&op_topk1, 1},
    {&op_topk10, 10},
    {&op_topk10, 11},
    {&op_cumsum, 11},
    {&op_cumsum, 14},
    {NULL, 0},
};
