/* backends/onnx/onnx_ops_loss.c: the classification losses
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (reduction none,
 * sum or mean; per-class weights; ignore_index; SoftmaxCrossEntropyLoss's
 * optional log_prob output).
 *
 * Both see their scores as [N, C, D] (D the product of the dimensions
 * after the class axis, 1 for [N, C]) and their targets as [N, D]. For
 * each (n, d) with target t: loss = -weight[t] * logp[n, t, d], where logp
 * is the input itself for NegativeLogLikelihoodLoss and the log-softmax of
 * the scores over C for SoftmaxCrossEntropyLoss; a target equal to
 * ignore_index contributes 0 with weight 0. "mean" divides the sum by the
 * sum of the weights applied (NaN when every target is ignored, 0/0). A
 * target outside [0, C) that is not ignored is an error at run time. Sums
 * are in double; the outputs take the scores' type. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

enum { RED_NONE, RED_SUM, RED_MEAN };

typedef struct loss_attr {
  int reduction;
  bool has_ignore;
  int64_t ignore;
} loss_attr;

static int loss_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  loss_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  const char *red;
  int rc = onnx_attr_string(p, "reduction", "mean", a, &red, e);
  if (rc) return rc;
  if (strcmp(red, "none") == 0)
    at->reduction = RED_NONE;
  else if (strcmp(red, "sum") == 0)
    at->reduction = RED_SUM;
  else if (strcmp(red, "mean") == 0)
    at->reduction = RED_MEAN;
  else
    return err_set(e, -EINVAL, "attribute reduction='%s' is not none, sum or mean", red);
  at->has_ignore = onnx_attr_find(p, "ignore_index") != NULL;
  return onnx_attr_int(p, "ignore_index", 0, &at->ignore, e);
}

/* Checks scores [N, C, d1..dk], targets [N, d1..dk] and weights [C], and
 * gives the loss its shape (the targets' for "none", a scalar otherwise). */
static int loss_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const loss_attr *at = n->attr;
  const onnx_tensor *x = in[0], *t = in[1], *w = n->n_in > 2 ? in[2] : NULL;
  char sx[96], st[96];
  if (!onnx_dtype_is_floating(x->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  if (t->dtype != INFERD_TYPE_INT32 && t->dtype != INFERD_TYPE_INT64)
    return err_set(e, -EINVAL, "the target has type %s; it must be INT32 or INT64",
                   dtype_name(t->dtype));
  bool ok = x->ndim >= 2 && t->ndim == x->ndim - 1 && t->dims[0] == x->dims[0];
  for (int i = 2; ok && i < x->ndim; i++)
    ok = t->dims[i - 1] == x->dims[i];
  if (!ok)
    return err_set(e, -EINVAL, "scores %s and target %s are not [N, C, d...] and [N, d...]",
                   onnx_shape_str(sx, x), onnx_shape_str(st, t));
  if (w && (w->dtype != x->dtype || w->ndim != 1 || w->dims[0] != x->dims[1]))
    return err_set(e, -EINVAL, "the weights must be a 1-D %s tensor of C=%lld values",
                   dtype_name(x->dtype), (long long)x->dims[1]);
  out[0]->dtype = x->dtype;
  if (at->reduction == RED_NONE)
    onnx_tensor_set_shape(out[0], t->ndim, t->dims);
  else
    onnx_tensor_set_shape(out[0], 0, NULL);
  if (n->n_out > 1 && out[1]) onnx_tensor_like(out[1], x);
  return 0;
}

/* log(sum_c e^(x[c] - m)) + m over the C scores of (n, d), which are D
 * apart; the log-probabilities go to lp when it is not NULL. */
static double log_sum_exp(const onnx_tensor *x, int64_t base, int64_t C, int64_t D, void *lp) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; c++) {
    double v = onnx_float_get(x->data, x->dtype, base + c * D);
    m = v > m || v != v ? v : m;
  }
  double shift = isfinite(m) ? m : 0;
  for (int64_t c = 0; c < C; c++)
    s += exp(onnx_float_get(x->data, x->dtype, base + c * D) - shift);
  double lse = isnan(m) ? m : shift + log(s);
  if (lp)
    for (int64_t c = 0; c < C; c++)
      onnx_float_put(lp, x->dtype, base + c * D,
                     onnx_float_get(x->data, x->dtype, base + c * D) - lse);
  return lse;
}

static int loss_compute(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        bool softmax, err *e) {
  const loss_attr *at = n->attr;
  const onnx_tensor *x = in[0], *t = in[1], *w = n->n_in > 2 ? in[2] : NULL;
  void *lp = softmax && n->n_out > 1 && out[1] ? out[1]->data : NULL;
  int64_t N = x->dims[0], C = x->dims[1], D = onnx_dims_product(x->dims, 2, x->ndim);
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < N; i++)
    for (int64_t d = 0; d < D; d++) {
      int64_t k = i * D + d, base = i * C * D + d;
      int64_t target = t->dtype == INFERD_TYPE_INT32 ? ((const int32_t *)t->data)[k]
                                                     : ((const int64_t *)t->data)[k];
      double lse = softmax ? log_sum_exp(x, base, C, D, lp) : 0, loss = 0, wt = 0;
      if (!at->has_ignore || target != at->ignore) {
        if (target < 0 || target >= C)
          return err_set(e, -EINVAL, "target %lld at element %lld is outside [0, %lld)",
                         (long long)target, (long long)k, (long long)C);
        wt = w ? onnx_float_get(w->data, w->dtype, target) : 1;
        loss = -wt * (onnx_float_get(x->data, x->dtype, base + target * D) - lse);
      }
      if (at->reduction == RED_NONE) onnx_float_put(out[0]->data, out[0]->dtype, k, loss);
      sum += loss;
      wsum += wt;
    }
  if (at->reduction == RED_SUM) onnx_float_put(out[0]->data, out[0]->dtype, 0, sum);
  if (at->reduction == RED_MEAN) onnx_float_put(out[0]->data, out[0]->dtype, 0, sum / wsum);
  return 0;
}

static int nll_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  return loss_compute(n, in, out, false, e);
}

static int sce_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  return loss_compute(n, in, out, true, e);
}

static const onnx_op op_nll = {.name = "NegativeLogLikelihoodLoss",
                               .domain = "",
                               .min_inputs = 2,
                               .max_inputs = 3,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = loss_init,
                               .infer = loss_infer,
                               .run = nll_run};
static const onnx_op op_sce = {.name = "SoftmaxCrossEntropyLoss",
                               .domain = "",
                               .min_inputs = 2,
                               .max_inputs = 3,
                               .min_outputs = 1,
                               .max_outputs = 2,
                               .init = loss_init,
                               .infer = loss_infer,
                               .run = sce_run};

/* 13 only widened the types (bfloat16). */
const onnx_op_row onnx_ops_loss[] = {
    {&op_nll, 12}, {&op_nll, 13}, {&op_sce, 12}, {&op_sce, 13}, {NULL, 0},
};
