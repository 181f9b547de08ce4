/* backends/onnx/onnx_ops_norm.c: normalisation over channels
 * (BatchNormalization, InstanceNormalization, LRN).
 *
 * BatchNormalization in inference normalises with its running statistics:
 * oneDNN's batch normalization primitive for FP32 (plain or channel-blocked;
 * a Conv before it usually has it folded into its weights by onnx_fuse.c),
 * a loop for FP64. training_mode=1 (opset 14 and later) is computed as the
 * specification says, with the batch's statistics and updated running
 * ones, so that such a graph gives its answer; the older training outputs
 * (saved mean and variance, opsets 1 to 9) are refused.
 *
 * InstanceNormalization is a two-pass loop per (batch, channel) plane.
 * LRN runs on oneDNN's across-channels LRN when its window is symmetric
 * (odd size, FP32); an even size puts the extra channel after (ONNX's
 * floor/ceil split), which oneDNN's window cannot, so that goes to a loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

/* ---- BatchNormalization ------------------------------------------------- */

typedef struct bn_attr {
  float epsilon, momentum;
  bool training;
} bn_attr;

static int bn_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  bn_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  int64_t spatial = 1, is_test = 0;
  int rc;
  if ((rc = onnx_attr_float(p, "epsilon", 1e-5f, &at->epsilon, e)) ||
      (rc = onnx_attr_float(p, "momentum", 0.9f, &at->momentum, e)) ||
      (rc = onnx_attr_int(p, "spatial", 1, &spatial, e)) ||
      (rc = onnx_attr_int(p, "is_test", 0, &is_test, e)) ||
      (rc = onnx_attr_bool(p, "training_mode", false, &at->training, e)))
    return rc;
  if (spatial != 1)
    return err_set(e, -ENOTSUP, "spatial=%lld (statistics per activation) is not supported",
                   (long long)spatial);
  int outs = 0;
  for (size_t k = 0; k < p->n_output; k++)
    outs += *p->output[k] != 0;
  if (n->since < 14 && outs > 1)
    return err_set(e, -ENOTSUP,
                   "training-mode outputs (mean, var, saved_mean, saved_var) are not supported; "
                   "export the model in inference mode");
  if (n->since >= 14 && !at->training && outs > 1)
    return err_set(e, -EINVAL, "running_mean and running_var are outputs only in training mode");
  n->attr = at;
  return 0;
}

bool onnx_batchnorm_inference(const onnx_node *n, float *epsilon) {
  const bn_attr *at = n->attr;
  if (n->op != &onnx_op_batchnorm || at->training) return false;
  *epsilon = at->epsilon;
  return true;
}

static int bn_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  const onnx_tensor *x = in[0];
  char s[96];
  if (x->dtype != INFERD_TYPE_FP32 && x->dtype != INFERD_TYPE_FP64)
    return err_set(e, -ENOTSUP, "X of type %s is not supported", dtype_name(x->dtype));
  if (x->ndim < 2) return err_set(e, -EINVAL, "X %s has no channels", onnx_shape_str(s, x));
  for (int k = 1; k < 5; k++)
    if (in[k]->dtype != x->dtype || in[k]->count != x->dims[1])
      return err_set(e, -EINVAL, "input %d is %s %s; X %s has %lld channels of %s", k,
                     dtype_name(in[k]->dtype), onnx_shape_str(s, in[k]), dtype_name(x->dtype),
                     (long long)x->dims[1], dtype_name(x->dtype));
  onnx_tensor_like(out[0], x);
  for (int j = 1; j < n->n_out; j++)
    if (out[j]) onnx_tensor_like(out[j], in[j + 2]);
  return 0;
}

/* Y = (X - mean) / sqrt(var + eps) * scale + B, per channel; statistics
 * from the batch when training (then the running ones are updated into
 * out[1] and out[2]). */
#define BN_LOOP(T)                                                                                 \
  static void bn_##T(const bn_attr *at, const onnx_tensor *const *in, onnx_tensor *const *out,     \
                     int n_out) {                                                                  \
    const onnx_tensor *x = in[0];                                                                  \
    int64_t N = x->dims[0], C = x->dims[1], S = onnx_dims_product(x->dims, 2, x->ndim);            \
    const T *X = x->data, *sc = in[1]->data, *B = in[2]->data, *rm = in[3]->data,                  \
            *rv = in[4]->data;                                                                     \
    T *Y = out[0]->data;                                                                           \
    for (int64_t c = 0; c < C; c++) {                                                              \
      double mean = rm[c], var = rv[c];                                                            \
      if (at->training) {                                                                          \
        double sum = 0, sq = 0, cnt = (double)(N * S);                                             \
        for (int64_t b = 0; b < N; b++)                                                            \
          for (int64_t i = 0; i < S; i++)                                                          \
            sum += X[(b * C + c) * S + i];                                                         \
        mean = cnt ? sum / cnt : 0;                                                                \
        for (int64_t b = 0; b < N; b++)                                                            \
          for (int64_t i = 0; i < S; i++) {                                                        \
            double d = X[(b * C + c) * S + i] - mean;                                              \
            sq += d * d;                                                                           \
          }                                                                                        \
        var = cnt ? sq / cnt : 0;                                                                  \
        if (n_out > 1 && out[1])                                                                   \
          ((T *)out[1]->data)[c] = (T)(rm[c] * at->momentum + mean * (1 - at->momentum));          \
        if (n_out > 2 && out[2])                                                                   \
          ((T *)out[2]->data)[c] = (T)(rv[c] * at->momentum + var * (1 - at->momentum));           \
      }                                                                                            \
      T a = (T)(sc[c] / sqrt(var + at->epsilon)), b = (T)(B[c] - mean * a);                        \
      for (int64_t bi = 0; bi < N; bi++) {                                                         \
        const T *xs = X + (bi * C + c) * S;                                                        \
        T *ys = Y + (bi * C + c) * S;                                                              \
        for (int64_t i = 0; i < S; i++)                                                            \
          ys[i] = xs[i] * a + b;                                                                   \
      }                                                                                            \
    }                                                                                              \
  }
BN_LOOP(float)
BN_LOOP(double)

/* oneDNN for FP32 inference; the loop (no state) otherwise. */
static int bn_plan(const onnx_node *n, const onnx_tensor *const *in, const onnx_tensor *const *out,
                   onnx_plan_req *req, err *e) {
  const bn_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  bool blocked = n->blocked & ONNX_BLOCKED_IN(0);
  if (at->training || x->dtype != INFERD_TYPE_FP32 || x->count == 0) return 0;
  int64_t dims[5] = {x->dims[0], x->dims[1], onnx_dims_product(x->dims, 2, x->ndim)};
  int nd = 3;
  if (x->ndim <= 5) { /* oneDNN's own shapes, for its spatial kernels */
    nd = x->ndim;
    memcpy(dims, x->dims, (size_t)nd * sizeof dims[0]);
  }
  dnnl_memory_desc_t md;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int rc = onnx_dnnl_md(&md, nd, dims, dnnl_f32, blocked, e);
  if (!rc) rc = onnx_dnnl_attr(&attr, NULL, 0, 0, e);
  if (rc) return rc;
  dnnl_batch_normalization_desc_t bd;
  dnnl_status_t s = dnnl_batch_normalization_forward_desc_init(
      &bd, dnnl_forward_inference, &md, at->epsilon,
      dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift);
  if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &bd, attr, onnx_dnnl_engine(), NULL);
  dnnl_primitive_attr_destroy(attr);
  if ((rc = onnx_dnnl_check(s, "batch normalization", e))) return rc;
  rc = onnx_dnnl_plan_prim(req, pd,
                           (const int[]){DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                                         DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DST},
                           6, e);
  dnnl_primitive_desc_destroy(pd);
  return rc;
}

static int bn_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                   onnx_tensor *const *out, err *e) {
  onnx_dnnl_prim *prim = ctx->state;
  if (prim) {
    void *h[6] = {in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data, out[0]->data};
    return onnx_dnnl_prim_exec(prim, ctx->stream, h, ctx->scratch, e);
  }
  if (in[0]->dtype == INFERD_TYPE_FP32)
    bn_float(n->attr, in, out, n->n_out);
  else
    bn_double(n->attr, in, out, n->n_out);
  return 0;
}

static int bn_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                  err *e) {
  return onnx_run_once(n, in, out, e);
}

/* Keeps a blocked input blocked (inference only). */
static unsigned bn_layouts(const onnx_node *n, const onnx_tensor *const *in, unsigned avail) {
  const bn_attr *at = n->attr;
  if (at->training || n->n_out > 1 || !(avail & ONNX_BLOCKED_IN(0))) return 0;
  return ONNX_BLOCKED_IN(0) | ONNX_BLOCKED_OUT(0);
}

const onnx_op onnx_op_batchnorm = {.name = "BatchNormalization",
                                   .domain = "",
                                   .min_inputs = 5,
                                   .max_inputs = 5,
                                   .min_outputs = 1,
                                   .max_outputs = 5,
                                   .init = bn_init,
                                   .infer = bn_infer,
                                   .run = bn_run,
                                   .plan = bn_plan,
                                   .plan_free = onnx_dnnl_plan_prim_free,
                                   .run_step = bn_step,
                                   .layouts = bn_layouts};

/* ---- InstanceNormalization ---------------------------------------------- */

typedef struct in_attr {
  float epsilon;
} in_attr;

static int inorm_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  in_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  int rc = onnx_attr_float(p, "epsilon", 1e-5f, &at->epsilon, e);
  if (rc) return rc;
  n->attr = at;
  return 0;
}

static int inorm_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const onnx_tensor *x = in[0];
  char s[96];
  if (x->dtype != INFERD_TYPE_FP32 && x->dtype != INFERD_TYPE_FP64)
    return err_set(e, -ENOTSUP, "X of type %s is not supported", dtype_name(x->dtype));
  if (x->ndim < 3)
    return err_set(e, -EINVAL, "X %s needs spatial dimensions", onnx_shape_str(s, x));
  for (int k = 1; k < 3; k++)
    if (in[k]->dtype != x->dtype || in[k]->count != x->dims[1])
      return err_set(e, -EINVAL, "input %d is %s %s; X has %lld channels", k,
                     dtype_name(in[k]->dtype), onnx_shape_str(s, in[k]), (long long)x->dims[1]);
  onnx_tensor_like(out[0], x);
  return 0;
}

#define INORM_LOOP(T)                                                                              \
  ONNX_VECTORIZE static void inorm_##T(const T *restrict X, const T *sc, const T *B,               \
                                       T *restrict Y, int64_t N, int64_t C, int64_t S,             \
                                       double eps) {                                               \
    for (int64_t p = 0; p < N * C; p++) {                                                          \
      const T *x = X + p * S;                                                                      \
      T *y = Y + p * S;                                                                            \
      int64_t c = p % C;                                                                           \
      double sum = 0, sq = 0;                                                                      \
      for (int64_t i = 0; i < S; i++)                                                              \
        sum += x[i];                                                                               \
      double mean = sum / (double)S;                                                               \
      for (int64_t i = 0; i < S; i++)                                                              \
        sq += (x[i] - mean) * (x[i] - mean);                                                       \
      T a = (T)(sc[c] / sqrt(sq / (double)S + eps)), b = (T)(B[c] - mean * a);                     \
      for (int64_t i = 0; i < S; i++)                                                              \
        y[i] = x[i] * a + b;                                                                       \
    }                                                                                              \
  }
INORM_LOOP(float)
INORM_LOOP(double)

static int inorm_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const in_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int64_t N = x->dims[0], C = x->dims[1], S = onnx_dims_product(x->dims, 2, x->ndim);
  if (S == 0) return 0;
  if (x->dtype == INFERD_TYPE_FP32)
    inorm_float(x->data, in[1]->data, in[2]->data, out[0]->data, N, C, S, at->epsilon);
  else
    inorm_double(x->data, in[1]->data, in[2]->data, out[0]->data, N, C, S, at->epsilon);
  return 0;
}

static const onnx_op inorm = {.name = "InstanceNormalization",
                              .domain = "",
                              .min_inputs = 3,
                              .max_inputs = 3,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = inorm_init,
                              .infer = inorm_infer,
                              .run = inorm_run};

/* ---- LRN ---------------------------------------------------------------- */

typedef struct lrn_attr {
  float alpha, beta, bias;
  int64_t size;
} lrn_attr;

static int lrn_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  lrn_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  int rc;
  if ((rc = onnx_attr_float(p, "alpha", 1e-4f, &at->alpha, e)) ||
      (rc = onnx_attr_float(p, "beta", 0.75f, &at->beta, e)) ||
      (rc = onnx_attr_float(p, "bias", 1.0f, &at->bias, e)) ||
      (rc = onnx_attr_int(p, "size", 0, &at->size, e)))
    return rc;
  if (at->size < 1) return err_set(e, -EINVAL, "size must be given and positive");
  n->attr = at;
  return 0;
}

static int lrn_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  char s[96];
  if (in[0]->dtype != INFERD_TYPE_FP32 && in[0]->dtype != INFERD_TYPE_FP64)
    return err_set(e, -ENOTSUP, "X of type %s is not supported", dtype_name(in[0]->dtype));
  if (in[0]->ndim < 2) return err_set(e, -EINVAL, "X %s has no channels", onnx_shape_str(s, in[0]));
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

/* y = x / (bias + alpha / size * sum of x^2 over channels
 * [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta */
#define LRN_LOOP(T)                                                                                \
  static void lrn_##T(const lrn_attr *at, const T *X, T *Y, int64_t N, int64_t C, int64_t S) {     \
    int64_t lo = (at->size - 1) / 2, hi = at->size - 1 - lo;                                       \
    for (int64_t b = 0; b < N; b++)                                                                \
      for (int64_t c = 0; c < C; c++) {                                                            \
        int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi > C - 1 ? C - 1 : c + hi;                \
        for (int64_t i = 0; i < S; i++) {                                                          \
          double sq = 0;                                                                           \
          for (int64_t k = c0; k <= c1; k++) {                                                     \
            double v = X[(b * C + k) * S + i];                                                     \
            sq += v * v;                                                                           \
          }                                                                                        \
          Y[(b * C + c) * S + i] =                                                                 \
              (T)(X[(b * C + c) * S + i] /                                                         \
                  pow(at->bias + at->alpha / (double)at->size * sq, at->beta));                    \
        }                                                                                          \
      }                                                                                            \
  }
LRN_LOOP(float)
LRN_LOOP(double)

static int lrn_plan(const onnx_node *n, const onnx_tensor *const *in, const onnx_tensor *const *out,
                    onnx_plan_req *req, err *e) {
  const lrn_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  if (x->dtype != INFERD_TYPE_FP32 || at->size % 2 == 0 || x->ndim > 5 || x->count == 0) return 0;
  dnnl_memory_desc_t md;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int rc = onnx_dnnl_md(&md, x->ndim, x->dims, dnnl_f32, false, e);
  if (!rc) rc = onnx_dnnl_attr(&attr, NULL, 0, 0, e);
  if (rc) return rc;
  dnnl_lrn_desc_t ld;
  dnnl_status_t s =
      dnnl_lrn_forward_desc_init(&ld, dnnl_forward_inference, dnnl_lrn_across_channels, &md,
                                 at->size, at->alpha, at->beta, at->bias);
  if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &ld, attr, onnx_dnnl_engine(), NULL);
  dnnl_primitive_attr_destroy(attr);
  if (s != dnnl_success) return 0; /* the loop */
  rc = onnx_dnnl_plan_prim(req, pd, (const int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, e);
  dnnl_primitive_desc_destroy(pd);
  return rc;
}

static int lrn_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                    onnx_tensor *const *out, err *e) {
  onnx_dnnl_prim *prim = ctx->state;
  if (prim) {
    void *h[2] = {in[0]->data, out[0]->data};
    return onnx_dnnl_prim_exec(prim, ctx->stream, h, ctx->scratch, e);
  }
  const onnx_tensor *x = in[0];
  int64_t N = x->dims[0], C = x->dims[1], S = onnx_dims_product(x->dims, 2, x->ndim);
  if (x->dtype == INFERD_TYPE_FP32)
    lrn_float(n->attr, x->data, out[0]->data, N, C, S);
  else
    lrn_double(n->attr, x->data, out[0]->data, N, C, S);
  return 0;
}

static int lrn_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  return onnx_run_once(n, in, out, e);
}

static const onnx_op lrn = {.name = "LRN",
                            .domain = "",
                            .min_inputs = 1,
                            .max_inputs = 1,
                            .min_outputs = 1,
                            .max_outputs = 1,
                            .init = lrn_init,
                            .infer = lrn_infer,
                            .run = lrn_run,
                            .plan = lrn_plan,
                            .plan_free = onnx_dnnl_plan_prim_free,
                            .run_step = lrn_step};

const onnx_op_row onnx_ops_norm[] = {
    {&onnx_op_batchnorm, 1},
    {&onnx_op_batchnorm, 6},
    {&onnx_op_batchnorm, 7},
    {&onnx_op_batchnorm, 9},
    {&onnx_op_batchnorm, 14},
    {&onnx_op_batchnorm, 15},
    {&inorm, 1},
    {&inorm, 6},
    {&lrn, 1},
    {&lrn, 13},
    {NULL, 0},
};
