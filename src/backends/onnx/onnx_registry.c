/* backends/onnx/onnx_registry.c: which operator implements which (domain,
 * op_type, version). `ops` is indexed by onnx_op_id; `registry` has one row
 * per ONNX version of each operator, from the oldest this backend runs to
 * the newest up to ONNX_OPSET_MAX, so that choosing the highest
 * since_version <= the model's opset finds exactly the version the model
 * means. Versions that differ only in types this backend does not run share
 * one implementation. See onnx_ops.h for the TEMPLATE of a new operator. */
#include <string.h>

#include "onnx_ops.h"

static const onnx_op *const ops[] = {
    [ONNX_OP_ADD] = &onnx_op_add,           [ONNX_OP_SUB] = &onnx_op_sub,
    [ONNX_OP_MUL] = &onnx_op_mul,           [ONNX_OP_DIV] = &onnx_op_div,
    [ONNX_OP_RELU] = &onnx_op_relu,         [ONNX_OP_SIGMOID] = &onnx_op_sigmoid,
    [ONNX_OP_TANH] = &onnx_op_tanh,         [ONNX_OP_GEMM] = &onnx_op_gemm,
    [ONNX_OP_MATMUL] = &onnx_op_matmul,     [ONNX_OP_SOFTMAX] = &onnx_op_softmax,
    [ONNX_OP_FLATTEN] = &onnx_op_flatten,   [ONNX_OP_RESHAPE] = &onnx_op_reshape,
    [ONNX_OP_IDENTITY] = &onnx_op_identity, [ONNX_OP_CONSTANT] = &onnx_op_constant,
    [ONNX_OP_CAST] = &onnx_op_cast,         [ONNX_OP_ARGMAX] = &onnx_op_argmax,
    [ONNX_OP_SHAPE] = &onnx_op_shape,
};
_Static_assert(sizeof ops / sizeof ops[0] == ONNX_OP_COUNT,
               "ops[] must have an entry for every onnx_op_id");

typedef struct onnx_op_row {
  onnx_op_id id;
  int since;
} onnx_op_row;

/* Opsets older than the first row of an operator are refused for it: 7 for
 * the arithmetic and Gemm (numpy broadcasting began there, as in ONNX
 * Runtime), 6 for the activations (the consumed_inputs era before). */
static const onnx_op_row registry[] = {
    {ONNX_OP_ADD, 7},       {ONNX_OP_ADD, 13},      {ONNX_OP_ADD, 14},      {ONNX_OP_SUB, 7},
    {ONNX_OP_SUB, 13},      {ONNX_OP_SUB, 14},      {ONNX_OP_MUL, 7},       {ONNX_OP_MUL, 13},
    {ONNX_OP_MUL, 14},      {ONNX_OP_DIV, 7},       {ONNX_OP_DIV, 13},      {ONNX_OP_DIV, 14},
    {ONNX_OP_RELU, 6},      {ONNX_OP_RELU, 13},     {ONNX_OP_RELU, 14},     {ONNX_OP_SIGMOID, 6},
    {ONNX_OP_SIGMOID, 13},  {ONNX_OP_TANH, 6},      {ONNX_OP_TANH, 13},     {ONNX_OP_GEMM, 7},
    {ONNX_OP_GEMM, 9},      {ONNX_OP_GEMM, 11},     {ONNX_OP_GEMM, 13},     {ONNX_OP_MATMUL, 1},
    {ONNX_OP_MATMUL, 9},    {ONNX_OP_MATMUL, 13},   {ONNX_OP_SOFTMAX, 1},   {ONNX_OP_SOFTMAX, 11},
    {ONNX_OP_SOFTMAX, 13},  {ONNX_OP_FLATTEN, 1},   {ONNX_OP_FLATTEN, 9},   {ONNX_OP_FLATTEN, 11},
    {ONNX_OP_FLATTEN, 13},  {ONNX_OP_RESHAPE, 5},   {ONNX_OP_RESHAPE, 13},  {ONNX_OP_RESHAPE, 14},
    {ONNX_OP_IDENTITY, 1},  {ONNX_OP_IDENTITY, 13}, {ONNX_OP_IDENTITY, 14}, {ONNX_OP_IDENTITY, 16},
    {ONNX_OP_CONSTANT, 1},  {ONNX_OP_CONSTANT, 9},  {ONNX_OP_CONSTANT, 11}, {ONNX_OP_CONSTANT, 12},
    {ONNX_OP_CONSTANT, 13}, {ONNX_OP_CAST, 6},      {ONNX_OP_CAST, 9},      {ONNX_OP_CAST, 13},
    {ONNX_OP_ARGMAX, 1},    {ONNX_OP_ARGMAX, 11},   {ONNX_OP_ARGMAX, 12},   {ONNX_OP_ARGMAX, 13},
    {ONNX_OP_SHAPE, 1},     {ONNX_OP_SHAPE, 13},    {ONNX_OP_SHAPE, 15},
};
#define N_ROWS (sizeof registry / sizeof registry[0])

/* "ai.onnx" and "" name the same domain. */
static const char *norm_domain(const char *d) { return d && strcmp(d, "ai.onnx") != 0 ? d : ""; }

const onnx_op *onnx_registry_find(const char *domain, const char *op_type, int opset, int *since) {
  domain = norm_domain(domain);
  const onnx_op *best = NULL;
  int best_since = 0;
  for (size_t i = 0; i < N_ROWS; i++) {
    const onnx_op *op = ops[registry[i].id];
    if (registry[i].since > opset || registry[i].since <= best_since) continue;
    if (strcmp(op->name, op_type) != 0 || strcmp(op->domain, domain) != 0) continue;
    best = op;
    best_since = registry[i].since;
  }
  if (best && since) *since = best_since;
  return best;
}

bool onnx_registry_has(const char *domain, const char *op_type) {
  return onnx_registry_find(domain, op_type, ONNX_OPSET_MAX, NULL) != NULL;
}

int onnx_registry_check(err *e) {
  for (int id = 0; id < ONNX_OP_COUNT; id++) {
    const onnx_op *op = ops[id];
    if (!op) return err_set(e, -EINVAL, "ops[%d] is missing", id);
    if ((int)op->id != id) return err_set(e, -EINVAL, "ops[%d] holds %s", id, op->name);
    if (!op->infer || !op->run) return err_set(e, -EINVAL, "%s lacks infer or run", op->name);
    if (op->min_inputs > op->max_inputs || op->min_outputs > op->max_outputs || op->min_outputs < 1)
      return err_set(e, -EINVAL, "%s has inconsistent arities", op->name);
    bool listed = false;
    for (size_t i = 0; i < N_ROWS; i++)
      listed |= registry[i].id == (onnx_op_id)id;
    if (!listed) return err_set(e, -EINVAL, "%s has no registry row", op->name);
  }
  for (size_t i = 0; i < N_ROWS; i++) {
    if (registry[i].since < 1 || registry[i].since > ONNX_OPSET_MAX)
      return err_set(e, -EINVAL, "%s row %d is outside 1..%d", ops[registry[i].id]->name,
                     registry[i].since, ONNX_OPSET_MAX);
    for (size_t j = 0; j < i; j++) {
      const onnx_op *a = ops[registry[i].id], *b = ops[registry[j].id];
      if (registry[i].since == registry[j].since && strcmp(a->name, b->name) == 0 &&
          strcmp(a->domain, b->domain) == 0)
        return err_set(e, -EINVAL, "%s version %d is listed twice", a->name, registry[i].since);
    }
  }
  return 0;
}
