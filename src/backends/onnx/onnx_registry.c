/* backends/onnx/onnx_registry.c: which operator implements which (domain,
 * op_type, version). Each family file lists its rows (onnx_ops.h); a row is
 * one ONNX version of an operator, from the oldest this backend runs to the
 * newest up to ONNX_OPSET_MAX, so that choosing the highest since_version
 * <= the model's opset finds exactly the version the model means. Versions
 * that differ only in types this backend does not run share one
 * implementation. See onnx_ops.h for the TEMPLATE of a new operator. */
#include <string.h>

#include "onnx_ops.h"

static const onnx_op_row *const families[] = {
    onnx_ops_activation,  onnx_ops_cast,   onnx_ops_conv,     onnx_ops_einsum,
    onnx_ops_elementwise, onnx_ops_gemm,   onnx_ops_generate, onnx_ops_index,
    onnx_ops_layernorm,   onnx_ops_logic,  onnx_ops_loss,     onnx_ops_norm,
    onnx_ops_pool,        onnx_ops_reduce, onnx_ops_resize,   onnx_ops_shape,
    onnx_ops_softmax,     onnx_ops_tensor, onnx_ops_unary,
};
#define N_FAMILIES (sizeof families / sizeof families[0])

void onnx_registry_each(void (*fn)(const onnx_op *op, int since, void *arg), void *arg) {
  for (size_t f = 0; f < N_FAMILIES; f++)
    for (const onnx_op_row *r = families[f]; r->op; r++)
      fn(r->op, r->since, arg);
}

/* "ai.onnx" and "" name the same domain. */
static const char *norm_domain(const char *d) { return d && strcmp(d, "ai.onnx") != 0 ? d : ""; }

const onnx_op *onnx_registry_find(const char *domain, const char *op_type, int opset, int *since) {
  domain = norm_domain(domain);
  const onnx_op *best = NULL;
  int best_since = 0;
  for (size_t f = 0; f < N_FAMILIES; f++) {
    for (const onnx_op_row *r = families[f]; r->op; r++) {
      if (r->since > opset || r->since <= best_since) continue;
      if (strcmp(r->op->name, op_type) != 0 || strcmp(r->op->domain, domain) != 0) continue;
      best = r->op;
      best_since = r->since;
    }
  }
  if (best && since) *since = best_since;
  return best;
}

bool onnx_registry_has(const char *domain, const char *op_type) {
  return onnx_registry_find(domain, op_type, ONNX_OPSET_MAX, NULL) != NULL;
}

typedef struct check_state {
  err *e;
  int rc;
} check_state;

/* Every row is sound and no (domain, name, since) is listed twice. */
static void check_row(const onnx_op *op, int since, void *arg) {
  check_state *st = arg;
  if (st->rc) return;
  if (!op->name || !op->domain || !op->infer || !op->run) {
    st->rc = err_set(st->e, -EINVAL, "an operator lacks a name, domain, infer or run");
    return;
  }
  if (op->min_inputs > op->max_inputs || op->min_outputs > op->max_outputs || op->min_outputs < 1) {
    st->rc = err_set(st->e, -EINVAL, "%s has inconsistent arities", op->name);
    return;
  }
  if (since < 1 || since > ONNX_OPSET_MAX) {
    st->rc = err_set(st->e, -EINVAL, "%s row %d is outside 1..%d", op->name, since, ONNX_OPSET_MAX);
    return;
  }
  int seen = 0;
  for (size_t f = 0; f < N_FAMILIES; f++)
    for (const onnx_op_row *r = families[f]; r->op; r++)
      seen += r->since == since && strcmp(r->op->name, op->name) == 0 &&
              strcmp(r->op->domain, op->domain) == 0;
  if (seen != 1) st->rc = err_set(st->e, -EINVAL, "%s version %d is listed twice", op->name, since);
}

int onnx_registry_check(err *e) {
  check_state st = {e, 0};
  onnx_registry_each(check_row, &st);
  return st.rc;
}
