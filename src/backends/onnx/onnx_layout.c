/* backends/onnx/onnx_layout.c: channel-blocked activations between the
 * operators that run faster on them (onnx_ops.h: ONNX_BLOCKED_IN/OUT), as
 * ONNX Runtime's NCHWc transformer does: a Conv whose output channels
 * divide into blocks writes its result blocked, pooling and normalisation
 * keep the layout they are given, and a reorder is inserted only where an
 * operator without a layouts hook (or a graph output) needs the plain form,
 * or where an operator wants blocked what arrives plain. Each value gets at
 * most one reorder per direction, shared by all its readers.
 *
 * The pass runs once at load, on the graph after fusion: which tensors are
 * blocked does not depend on shapes, because only operators that know
 * their channel count from constant weights (Conv) start a blocked chain,
 * and blocked tensors always have whole blocks of channels. */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

int onnx_block_size(void) {
  static int block;
  if (!block) block = __builtin_cpu_supports("avx512f") ? 16 : 8;
  return block;
}

/* ---- the reorder operators ---------------------------------------------- */

static int reorder_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  char s[96];
  if (in[0]->dtype != INFERD_TYPE_FP32 || in[0]->ndim != 4 ||
      in[0]->dims[1] % onnx_block_size() != 0)
    return err_set(e, -EINVAL, "%s %s cannot be channel-blocked by %d", dtype_name(in[0]->dtype),
                   onnx_shape_str(s, in[0]), onnx_block_size());
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

static int reorder_plan(const onnx_node *n, const onnx_tensor *const *in,
                        const onnx_tensor *const *out, onnx_plan_req *req, err *e) {
  bool to_blocked = n->op == &onnx_op_to_blocked;
  dnnl_memory_desc_t from, to;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int rc = onnx_dnnl_md(&from, 4, in[0]->dims, dnnl_f32, !to_blocked, e);
  if (!rc) rc = onnx_dnnl_md(&to, 4, in[0]->dims, dnnl_f32, to_blocked, e);
  if (!rc) rc = onnx_dnnl_attr(&attr, NULL, 0, 0, e);
  if (!rc)
    rc = onnx_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, &from, onnx_dnnl_engine(), &to,
                                                            onnx_dnnl_engine(), attr),
                         "reorder", e);
  if (!rc) rc = onnx_dnnl_plan_prim(req, pd, (const int[]){DNNL_ARG_FROM, DNNL_ARG_TO}, 2, e);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return rc;
}

static int reorder_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                        onnx_tensor *const *out, err *e) {
  void *h[2] = {in[0]->data, out[0]->data};
  return onnx_dnnl_prim_exec(ctx->state, ctx->stream, h, ctx->scratch, e);
}

static int reorder_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  return onnx_run_once(n, in, out, e);
}

const onnx_op onnx_op_to_blocked = {.name = "ToBlocked",
                                    .domain = "inferd",
                                    .min_inputs = 1,
                                    .max_inputs = 1,
                                    .min_outputs = 1,
                                    .max_outputs = 1,
                                    .infer = reorder_infer,
                                    .run = reorder_run,
                                    .plan = reorder_plan,
                                    .plan_free = onnx_dnnl_plan_prim_free,
                                    .run_step = reorder_step};

const onnx_op onnx_op_to_plain = {.name = "ToPlain",
                                  .domain = "inferd",
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .infer = reorder_infer,
                                  .run = reorder_run,
                                  .plan = reorder_plan,
                                  .plan_free = onnx_dnnl_plan_prim_free,
                                  .run_step = reorder_step};

/* ---- the pass ----------------------------------------------------------- */

typedef struct layout {
  onnx_model *m;
  int *plain_of;   /* per value: its plain version, -1 none yet */
  int *blocked_of; /* per value: its blocked version, -1 none yet */
  onnx_node *out;  /* the new node list */
  size_t n_out, cap;
} layout;

static int emit(layout *l, const onnx_node *n, err *e) {
  if (l->n_out == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    onnx_node *p = realloc(l->out, cap * sizeof *p);
    if (!p) return err_set(e, -ENOMEM, "out of memory");
    l->out = p;
    l->cap = cap;
  }
  l->out[l->n_out++] = *n;
  return 0;
}

/* Emits a reorder of value from into a new value (or into `to` when
 * to >= 0) and returns the value it writes. */
static int emit_reorder(layout *l, int from, int to, bool to_blocked, err *e) {
  onnx_model *m = l->m;
  if (to < 0) {
    to = onnx_model_add_value(m, m->values[from].name, to_blocked ? "#blocked" : "#plain", e);
    if (to < 0) return to;
  }
  onnx_node n = {0};
  n.op = to_blocked ? &onnx_op_to_blocked : &onnx_op_to_plain;
  n.op_type = n.op->name;
  n.domain = n.op->domain;
  n.name = m->values[to].name;
  n.n_in = n.n_out = 1;
  n.in = arena_alloc(m->arena, sizeof *n.in);
  n.out = arena_alloc(m->arena, sizeof *n.out);
  if (!n.in || !n.out) return err_set(e, -ENOMEM, "out of memory");
  n.in[0] = from;
  n.out[0] = to;
  n.blocked = to_blocked ? ONNX_BLOCKED_OUT(0) : ONNX_BLOCKED_IN(0);
  m->n_reorders++;
  int rc = emit(l, &n, e);
  return rc ? rc : to;
}

/* The tensors a node's layouts hook sees. */
static void hook_inputs(const onnx_model *m, const onnx_node *n, const onnx_tensor **in) {
  for (int k = 0; k < n->n_in; k++)
    in[k] = n->in[k] >= 0 ? &m->values[n->in[k]].t : NULL;
}

/* Whether some reader of value v (in the original list, after node i)
 * would take it blocked. */
static bool wanted_blocked(const onnx_model *m, const onnx_node *nodes, size_t n_nodes, size_t i,
                           int v) {
  for (size_t j = i + 1; j < n_nodes; j++) {
    const onnx_node *c = &nodes[j];
    if (!c->op->layouts) continue;
    unsigned slots = 0;
    for (int k = 0; k < c->n_in && k < 16; k++)
      if (c->in[k] == v) slots |= ONNX_BLOCKED_IN(k);
    if (!slots) continue;
    const onnx_tensor *in[c->n_in + 1];
    hook_inputs(m, c, in);
    /* As if the reader's own results were wanted blocked: a guess that
     * costs at worst a reorder, never a wrong answer. */
    if (c->op->layouts(c, in, slots | 0xffff0000u) & slots) return true;
  }
  return false;
}

static bool is_graph_output(const onnx_model *m, int v) {
  for (size_t j = 0; j < m->n_outputs; j++)
    if (m->outputs[j] == v) return true;
  return false;
}

/* Places node i: reorders of its inputs first, then the node, with its
 * inputs pointing at the versions it wants. */
static int place_node(layout *l, const onnx_node *nodes, size_t n_nodes, size_t i, err *e) {
  onnx_model *m = l->m;
  onnx_node n = nodes[i];
  unsigned avail = 0, want = 0;
  for (int k = 0; k < n.n_in && k < 16; k++)
    if (n.in[k] >= 0 && l->blocked_of[n.in[k]] >= 0) avail |= ONNX_BLOCKED_IN(k);
  if (n.op->layouts) {
    const onnx_tensor *in[n.n_in + 1];
    hook_inputs(m, &n, in);
    for (int j = 0; j < n.n_out && j < 16; j++)
      if (n.out[j] >= 0 && wanted_blocked(m, nodes, n_nodes, i, n.out[j]))
        avail |= ONNX_BLOCKED_OUT(j);
    want = n.op->layouts(&n, in, avail);
  }
  int *in = arena_calloc(m->arena, (size_t)n.n_in + 1, sizeof *in);
  if (!in) return err_set(e, -ENOMEM, "out of memory");
  for (int k = 0; k < n.n_in; k++) {
    int v = n.in[k];
    in[k] = v;
    if (v < 0) continue;
    bool b = k < 16 && (want & ONNX_BLOCKED_IN(k));
    int *have = b ? l->blocked_of : l->plain_of, *other = b ? l->plain_of : l->blocked_of;
    if (have[v] < 0) {
      int r = emit_reorder(l, other[v], -1, b, e);
      if (r < 0) return r;
      have[v] = r;
    }
    in[k] = have[v];
  }
  n.in = in;
  n.blocked = want;
  int *out = arena_calloc(m->arena, (size_t)n.n_out + 1, sizeof *out);
  if (!out) return err_set(e, -ENOMEM, "out of memory");
  memcpy(out, n.out, (size_t)n.n_out * sizeof *out);
  n.out = out;
  int to_plain[16], n_to_plain = 0;
  for (int j = 0; j < n.n_out; j++) {
    int v = out[j];
    if (v < 0) continue;
    if (!(j < 16 && (want & ONNX_BLOCKED_OUT(j)))) {
      l->plain_of[v] = v;
      continue;
    }
    if (!is_graph_output(m, v)) {
      l->blocked_of[v] = v;
      l->plain_of[v] = -1;
      continue;
    }
    /* A graph output keeps its name and plain form: the node writes a new
     * blocked value, reordered into the output right after. */
    int vb = onnx_model_add_value(m, m->values[v].name, "#blocked", e);
    if (vb < 0) return vb;
    out[j] = vb;
    l->blocked_of[v] = vb;
    l->plain_of[v] = v;
    to_plain[n_to_plain++] = j;
  }
  int rc = emit(l, &n, e);
  for (int t = 0; t < n_to_plain && !rc; t++) {
    int v = nodes[i].out[to_plain[t]];
    int r = emit_reorder(l, l->blocked_of[v], v, false, e);
    if (r < 0) rc = r;
  }
  return rc;
}

int onnx_model_layout(onnx_model *m, err *e) {
  bool any = false;
  for (size_t i = 0; i < m->n_nodes && !any; i++)
    any = m->nodes[i].op->layouts != NULL;
  if (!any) return 0;
  layout l = {.m = m};
  int rc = 0;
  /* Values added by the pass (reorder outputs) are only looked up through
   * these maps by original value, so sizing them now is enough. */
  l.plain_of = malloc((m->n_values + 1) * sizeof *l.plain_of);
  l.blocked_of = malloc((m->n_values + 1) * sizeof *l.blocked_of);
  onnx_node *nodes = malloc((m->n_nodes + 1) * sizeof *nodes);
  if (!l.plain_of || !l.blocked_of || !nodes) {
    rc = err_set(e, -ENOMEM, "out of memory");
    goto done;
  }
  memcpy(nodes, m->nodes, m->n_nodes * sizeof *nodes);
  for (size_t v = 0; v < m->n_values; v++) {
    l.plain_of[v] = (int)v; /* inputs and constants are plain */
    l.blocked_of[v] = -1;
  }
  for (size_t i = 0; i < m->n_nodes && !rc; i++)
    rc = place_node(&l, nodes, m->n_nodes, i, e);
  if (!rc) rc = onnx_model_set_nodes(m, l.out, l.n_out, e);
done:
  free(l.plain_of);
  free(l.blocked_of);
  free(l.out);
  free(nodes);
  return rc;
}
