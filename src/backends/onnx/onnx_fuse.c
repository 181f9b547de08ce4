/* backends/onnx/onnx_fuse.c: load-time fusions, as ONNX Runtime's graph
 * optimiser does them, so that a CNN's Conv -> BatchNormalization -> Relu
 * -> Add chain runs as one oneDNN primitive and a transformer's MatMul ->
 * Add (bias) as one product:
 *
 *   - Conv followed by BatchNormalization (inference) with constant
 *     weights: the normalisation is folded into the Conv's weights and bias
 *     (W' = W s, B' = (B - mean) s + beta, s = scale / sqrt(var + eps));
 *   - an activation (Relu, LeakyRelu, Clip, Sigmoid, Tanh, Elu, HardSigmoid,
 *     HardSwish) whose input is the only use of a node's result: appended
 *     to that node's post-operations when its operator takes them
 *     (onnx_op.post_ok);
 *   - an Add of such a result and another computed tensor: a residual sum
 *     (ONNX_POST_SUM; the other tensor becomes an input of the node);
 *   - MatMul by a constant matrix followed by an Add of a constant row:
 *     MatMul with a bias (onnx_op_matmul_bias);
 *   - layer normalisation as torch exports it before opset 17 (ReduceMean,
 *     Sub, Pow 2, ReduceMean, Add epsilon, Sqrt, Div, Mul scale, Add bias
 *     over the last axis): one LayerNormalization node, one pass over the
 *     rows instead of nine.
 *
 * A value that is a graph output is never folded away, and a result with
 * more than one reader is never fused into. The fused node takes the place
 * of the last node it absorbed, so that every input it gained (a residual)
 * is computed before it. The activations' attributes are read from their
 * NodeProtos: their operators belong to other families, whose parsed
 * attributes this file does not know. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_graph.h"

/* ---- applying post-operations in C -------------------------------------- */

#define POST_LOOPS(T, EXP, EXPM1, TANH)                                                            \
  ONNX_VECTORIZE static void clip_##T(T *y, int64_t n, T lo, T hi) {                               \
    for (int64_t i = 0; i < n; i++)                                                                \
      y[i] = y[i] < lo ? lo : y[i] > hi ? hi : y[i];                                               \
  }                                                                                                \
  ONNX_VECTORIZE static void leaky_##T(T *y, int64_t n, T a) {                                     \
    for (int64_t i = 0; i < n; i++)                                                                \
      y[i] = y[i] < 0 ? a * y[i] : y[i];                                                           \
  }                                                                                                \
  static void post_##T(const onnx_post_op *p, T *y, int64_t n) {                                   \
    switch (p->kind) {                                                                             \
    case ONNX_POST_RELU: clip_##T(y, n, 0, (T)INFINITY); break;                                    \
    case ONNX_POST_LEAKY_RELU: leaky_##T(y, n, (T)p->alpha); break;                                \
    case ONNX_POST_CLIP: clip_##T(y, n, (T)p->alpha, (T)p->beta); break;                           \
    case ONNX_POST_SIGMOID:                                                                        \
      for (int64_t i = 0; i < n; i++)                                                              \
        y[i] = 1 / (1 + EXP(-y[i]));                                                               \
      break;                                                                                       \
    case ONNX_POST_TANH:                                                                           \
      for (int64_t i = 0; i < n; i++)                                                              \
        y[i] = TANH(y[i]);                                                                         \
      break;                                                                                       \
    case ONNX_POST_ELU:                                                                            \
      for (int64_t i = 0; i < n; i++)                                                              \
        y[i] = y[i] < 0 ? (T)p->alpha * EXPM1(y[i]) : y[i];                                        \
      break;                                                                                       \
    case ONNX_POST_HARD_SIGMOID:                                                                   \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T v = (T)p->alpha * y[i] + (T)p->beta;                                                     \
        y[i] = v < 0 ? 0 : v > 1 ? 1 : v;                                                          \
      }                                                                                            \
      break;                                                                                       \
    case ONNX_POST_HARD_SWISH:                                                                     \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T v = y[i] / 6 + (T)0.5;                                                                   \
        y[i] *= v < 0 ? 0 : v > 1 ? 1 : v;                                                         \
      }                                                                                            \
      break;                                                                                       \
    case ONNX_POST_SUM: break; /* the kernel's own business */                                     \
    }                                                                                              \
  }
POST_LOOPS(float, expf, expm1f, tanhf)
POST_LOOPS(double, exp, expm1, tanh)

void onnx_post_apply(const onnx_post_op *post, int n_post, int from, inferd_dtype t, void *y,
                     int64_t n) {
  for (int k = from; k < n_post; k++)
    if (t == INFERD_TYPE_FP64)
      post_double(&post[k], y, n);
    else
      post_float(&post[k], y, n);
}

/* ---- recognising activations -------------------------------------------- */

/* The float attribute name of p, def when absent; false when it is there
 * with another type (then the node is left alone). */
static bool attr_f(const Onnx__NodeProto *p, const char *name, float def, float *out) {
  err e;
  return onnx_attr_float(p, name, def, out, &e) == 0;
}

/* A scalar FP32 constant input k of n (absent: def). */
static bool const_scalar(const onnx_model *m, const onnx_node *n, int k, float def, float *out) {
  if (k >= n->n_in || n->in[k] < 0) {
    *out = def;
    return true;
  }
  const onnx_value *v = &m->values[n->in[k]];
  if (!v->is_const || !v->t.data || v->t.dtype != INFERD_TYPE_FP32 || v->t.count != 1) return false;
  *out = *(const float *)v->t.data;
  return true;
}

/* Whether node c (reading the fused result as its input 0) is an
 * activation, and which. */
static bool activation(const onnx_model *m, const onnx_node *c, const Onnx__NodeProto *p,
                       onnx_post_op *out) {
  if (*c->domain || c->n_out != 1 || c->n_in < 1) return false;
  const char *t = c->op_type;
  memset(out, 0, sizeof *out);
  if (c->n_in > 1 && strcmp(t, "Clip") != 0) return false;
  if (strcmp(t, "Relu") == 0) {
    out->kind = ONNX_POST_RELU;
  } else if (strcmp(t, "LeakyRelu") == 0) {
    out->kind = ONNX_POST_LEAKY_RELU;
    return attr_f(p, "alpha", 0.01f, &out->alpha);
  } else if (strcmp(t, "Clip") == 0) {
    out->kind = ONNX_POST_CLIP;
    if (c->since < 11)
      return attr_f(p, "min", -FLT_MAX, &out->alpha) && attr_f(p, "max", FLT_MAX, &out->beta);
    return const_scalar(m, c, 1, -INFINITY, &out->alpha) &&
           const_scalar(m, c, 2, INFINITY, &out->beta);
  } else if (strcmp(t, "Sigmoid") == 0) {
    out->kind = ONNX_POST_SIGMOID;
  } else if (strcmp(t, "Tanh") == 0) {
    out->kind = ONNX_POST_TANH;
  } else if (strcmp(t, "Elu") == 0) {
    out->kind = ONNX_POST_ELU;
    return attr_f(p, "alpha", 1.0f, &out->alpha);
  } else if (strcmp(t, "HardSigmoid") == 0) {
    out->kind = ONNX_POST_HARD_SIGMOID;
    return attr_f(p, "alpha", 0.2f, &out->alpha) && attr_f(p, "beta", 0.5f, &out->beta);
  } else if (strcmp(t, "HardSwish") == 0) {
    out->kind = ONNX_POST_HARD_SWISH;
  } else {
    return false;
  }
  return true;
}

/* ---- the pass ----------------------------------------------------------- */

typedef struct fuser {
  onnx_model *m;
  onnx_node *nodes; /* a working copy of m->nodes; op NULL once absorbed */
  const Onnx__NodeProto **protos;
  size_t cap;   /* values the arrays below hold (folding adds values) */
  int *readers; /* per value: input slots of live nodes that read it */
  int *reader;  /* per value: the node reading it, when readers == 1 */
  bool *output; /* per value: a graph output */
} fuser;

static int count_readers(fuser *f, err *e) {
  onnx_model *m = f->m;
  if (m->n_values > f->cap) {
    size_t cap = m->n_values + 64;
    int *r1 = realloc(f->readers, cap * sizeof *r1);
    if (r1) f->readers = r1;
    int *r2 = realloc(f->reader, cap * sizeof *r2);
    if (r2) f->reader = r2;
    bool *o = realloc(f->output, cap * sizeof *o);
    if (o) f->output = o;
    if (!r1 || !r2 || !o) return err_set(e, -ENOMEM, "out of memory");
    memset(f->output + f->cap, 0, (cap - f->cap) * sizeof *o);
    f->cap = cap;
  }
  memset(f->readers, 0, m->n_values * sizeof *f->readers);
  for (size_t i = 0; i < m->n_nodes; i++) {
    const onnx_node *n = &f->nodes[i];
    if (!n->op) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0) {
        f->readers[n->in[k]]++;
        f->reader[n->in[k]] = (int)i;
      }
  }
  return 0;
}

/* Appends "+what" to n's op_type, for messages and tests. */
static int rename_node(onnx_model *m, onnx_node *n, const char *what, err *e) {
  size_t a = strlen(n->op_type), b = strlen(what);
  char *s = arena_alloc(m->arena, a + b + 2);
  if (!s) return err_set(e, -ENOMEM, "out of memory");
  memcpy(s, n->op_type, a);
  s[a] = '+';
  memcpy(s + a + 1, what, b + 1);
  n->op_type = s;
  return 0;
}

/* Gives n room for one more input (arena arrays do not grow in place). */
static int add_input(onnx_model *m, onnx_node *n, int v, err *e) {
  int *in = arena_calloc(m->arena, (size_t)n->n_in + 2, sizeof *in);
  if (!in) return err_set(e, -ENOMEM, "out of memory");
  memcpy(in, n->in, (size_t)n->n_in * sizeof *in);
  in[n->n_in++] = v;
  n->in = in;
  return 0;
}

static int add_post(onnx_model *m, onnx_node *n, const onnx_post_op *p, err *e) {
  onnx_post_op *post = arena_calloc(m->arena, (size_t)n->n_post + 1, sizeof *post);
  if (!post) return err_set(e, -ENOMEM, "out of memory");
  if (n->n_post) memcpy(post, n->post, (size_t)n->n_post * sizeof *post);
  post[n->n_post++] = *p;
  n->post = post;
  return 0;
}

/* A new FP32 constant shaped like t (data uninitialised). t is taken by
 * value: adding a value may move m->values, where it may live. */
static int new_const(onnx_model *m, const char *base, const char *suffix, onnx_tensor t, err *e) {
  int v = onnx_model_add_value(m, base, suffix, e);
  if (v < 0) return v;
  onnx_value *val = &m->values[v];
  onnx_tensor_like(&val->t, &t);
  val->t.data = aligned_alloc(64, (onnx_tensor_bytes(&t) + 64) & ~(size_t)63);
  if (!val->t.data) return err_set(e, -ENOMEM, "out of memory");
  val->is_const = val->owns_data = true;
  return v;
}

/* Conv (n) -> BatchNormalization (c): new weights and bias for n. */
static int fold_bn(fuser *f, onnx_node *n, const onnx_node *c, bool *done, err *e) {
  onnx_model *m = f->m;
  *done = false;
  float eps;
  if (!onnx_batchnorm_inference(c, &eps) || c->n_in != 5 || n->n_post) return 0;
  const onnx_value *w = &m->values[n->in[1]];
  const onnx_value *b = n->n_in > 2 && n->in[2] >= 0 ? &m->values[n->in[2]] : NULL;
  if (!w->is_const || !w->t.data || w->t.dtype != INFERD_TYPE_FP32 || w->t.ndim < 3) return 0;
  if (b && (!b->is_const || !b->t.data || b->t.dtype != INFERD_TYPE_FP32)) return 0;
  int64_t M = w->t.dims[0];
  const float *bn[4];
  for (int k = 0; k < 4; k++) {
    const onnx_value *p = &m->values[c->in[k + 1]];
    if (!p->is_const || !p->t.data || p->t.dtype != INFERD_TYPE_FP32 || p->t.count != M) return 0;
    bn[k] = p->t.data;
  }
  if (b && b->t.count != M) return 0;
  onnx_tensor bias_shape = {.dtype = INFERD_TYPE_FP32};
  onnx_tensor_set_shape(&bias_shape, 1, &M);
  int vw = new_const(m, n->name, "#W_bn", w->t, e);
  if (vw < 0) return vw;
  int vb = new_const(m, n->name, "#B_bn", bias_shape, e);
  if (vb < 0) return vb;
  /* m->values may have moved */
  w = &m->values[n->in[1]];
  b = n->n_in > 2 && n->in[2] >= 0 ? &m->values[n->in[2]] : NULL;
  const float *W = w->t.data, *B = b ? b->t.data : NULL;
  float *W2 = m->values[vw].t.data, *B2 = m->values[vb].t.data;
  int64_t per = w->t.count / (M ? M : 1);
  for (int64_t o = 0; o < M; o++) {
    float s = bn[0][o] / sqrtf(bn[3][o] + eps);
    for (int64_t i = 0; i < per; i++)
      W2[o * per + i] = W[o * per + i] * s;
    B2[o] = ((B ? B[o] : 0) - bn[2][o]) * s + bn[1][o];
  }
  if (n->n_in < 3) {
    int rc = add_input(m, n, vb, e);
    if (rc) return rc;
  } else {
    n->in[2] = vb;
  }
  n->in[1] = vw;
  *done = true;
  return 0;
}

/* MatMul (n) by a constant matrix -> Add (c) of a constant row: n becomes
 * a MatMul with bias. */
static int fold_bias(fuser *f, onnx_node *n, const onnx_node *c, int other, bool *done, err *e) {
  onnx_model *m = f->m;
  *done = false;
  const onnx_value *bv = &m->values[n->in[1]], *cv = &m->values[other];
  if (!bv->is_const || bv->t.ndim != 2 || bv->t.dtype != INFERD_TYPE_FP32) return 0;
  if (!cv->is_const || cv->t.dtype != INFERD_TYPE_FP32 || cv->t.ndim < 1 || cv->t.ndim > 2 ||
      cv->t.dims[cv->t.ndim - 1] != bv->t.dims[1] || cv->t.count != bv->t.dims[1])
    return 0;
  int rc = add_input(m, n, other, e);
  if (rc) return rc;
  n->op = &onnx_op_matmul_bias;
  *done = true;
  return 0;
}

/* ---- layer normalisation ------------------------------------------------ */

/* The one live node reading value v as input slot k (any slot when k <
 * 0), or -1 when v has another number of readers. */
static int only_reader(const fuser *f, int v, int k) {
  if (v < 0 || f->output[v] || f->readers[v] != 1) return -1;
  int j = f->reader[v];
  const onnx_node *c = &f->nodes[j];
  if (k >= 0 && (k >= c->n_in || c->in[k] != v)) return -1;
  return j;
}

/* Whether node j is ai.onnx op_type with n_in inputs and one output. */
static bool is_op(const fuser *f, int j, const char *op_type, int n_in) {
  if (j < 0) return false;
  const onnx_node *c = &f->nodes[j];
  return c->op && !*c->domain && c->n_in == n_in && c->n_out == 1 && c->out[0] >= 0 &&
         strcmp(c->op_type, op_type) == 0;
}

/* ReduceMean over the last axis keeping it, before opset 18 (axes an
 * attribute). */
static bool mean_last(const fuser *f, int j) {
  if (!is_op(f, j, "ReduceMean", 1) || f->nodes[j].since >= 18) return false;
  int64_t axes[2], keep = 1;
  int n;
  err e;
  if (onnx_attr_ints(f->protos[j], "axes", axes, 2, &n, &e) || n != 1 || axes[0] != -1)
    return false;
  return onnx_attr_int(f->protos[j], "keepdims", 1, &keep, &e) == 0 && keep == 1;
}

/* The other input of binary node j, when `one` is one of its two. */
static int other_input(const onnx_node *c, int one) {
  if (c->in[0] == one) return c->in[1];
  if (c->in[1] == one) return c->in[0];
  return -2;
}

/* A constant FP32 vector for scale or bias: 1-D. */
static bool const_row(const onnx_model *m, int v) {
  return v >= 0 && m->values[v].is_const && m->values[v].t.data &&
         m->values[v].t.dtype == INFERD_TYPE_FP32 && m->values[v].t.ndim == 1;
}

/* Matches the pattern at the ReduceMean in slot i (see the top of the
 * file); on a match the nine nodes become one LayerNormalization in the
 * slot of the last. */
static int fuse_layernorm(fuser *f, size_t i, err *e) {
  onnx_model *m = f->m;
  const onnx_node *r1 = &f->nodes[i];
  if (!mean_last(f, (int)i)) return 0;
  int x = r1->in[0];
  int sub = only_reader(f, r1->out[0], 1);
  if (!is_op(f, sub, "Sub", 2) || f->nodes[sub].in[0] != x) return 0;
  int d = f->nodes[sub].out[0];
  if (d < 0 || f->output[d] || f->readers[d] != 2) return 0;
  int pw = -1, dv = -1; /* d's two readers: Pow(d, 2) and Div(d, sqrt) */
  for (size_t j = 0; j < m->n_nodes; j++) {
    const onnx_node *c = &f->nodes[j];
    if (!c->op || c->n_in < 1 || c->in[0] != d) continue;
    if (is_op(f, (int)j, "Pow", 2)) pw = (int)j;
    if (is_op(f, (int)j, "Div", 2)) dv = (int)j;
  }
  float two, eps;
  if (pw < 0 || dv < 0 || !const_scalar(m, &f->nodes[pw], 1, 0, &two) || two != 2) return 0;
  int r2 = only_reader(f, f->nodes[pw].out[0], 0);
  if (!mean_last(f, r2)) return 0;
  int add = only_reader(f, f->nodes[r2].out[0], -1);
  if (!is_op(f, add, "Add", 2)) return 0;
  int ev = other_input(&f->nodes[add], f->nodes[r2].out[0]);
  const onnx_node evn = {.in = &ev, .n_in = 1};
  if (ev < 0 || !const_scalar(m, &evn, 0, 0, &eps)) return 0;
  int sq = only_reader(f, f->nodes[add].out[0], 0);
  if (!is_op(f, sq, "Sqrt", 1) || only_reader(f, f->nodes[sq].out[0], 1) != dv) return 0;
  int mul = only_reader(f, f->nodes[dv].out[0], -1);
  if (!is_op(f, mul, "Mul", 2)) return 0;
  int scale = other_input(&f->nodes[mul], f->nodes[dv].out[0]);
  int bias_add = only_reader(f, f->nodes[mul].out[0], -1);
  if (!const_row(m, scale) || !is_op(f, bias_add, "Add", 2)) return 0;
  int bias = other_input(&f->nodes[bias_add], f->nodes[mul].out[0]);
  if (!const_row(m, bias)) return 0;
  int since = 0;
  const onnx_op *ln = onnx_registry_find("", "LayerNormalization", ONNX_OPSET_MAX, &since);
  if (!ln) return 0;

  /* The node, its attributes read by the operator's own init. */
  onnx_node n = {0};
  n.name = r1->name;
  n.op_type = "LayerNormalization";
  n.domain = "";
  n.opset = ONNX_OPSET_MAX;
  n.since = since;
  n.op = ln;
  n.n_in = 3;
  n.n_out = 1;
  n.in = arena_calloc(m->arena, 4, sizeof *n.in);
  n.out = arena_calloc(m->arena, 2, sizeof *n.out);
  if (!n.in || !n.out) return err_set(e, -ENOMEM, "out of memory");
  n.in[0] = x;
  n.in[1] = scale;
  n.in[2] = bias;
  n.out[0] = f->nodes[bias_add].out[0];
  Onnx__AttributeProto axis = ONNX__ATTRIBUTE_PROTO__INIT, epsilon = ONNX__ATTRIBUTE_PROTO__INIT;
  axis.name = "axis";
  axis.has_type = axis.has_i = true;
  axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  axis.i = -1;
  epsilon.name = "epsilon";
  epsilon.has_type = epsilon.has_f = true;
  epsilon.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  epsilon.f = eps;
  Onnx__AttributeProto *attrs[2] = {&axis, &epsilon};
  Onnx__NodeProto proto = ONNX__NODE_PROTO__INIT;
  proto.op_type = "LayerNormalization";
  proto.n_attribute = 2;
  proto.attribute = attrs;
  if (ln->init) {
    err ignore;
    if (ln->init(&n, &proto, m->arena, &ignore)) return 0; /* leave the graph as it is */
  }
  int gone[] = {(int)i, sub, pw, r2, add, sq, dv, mul};
  for (size_t k = 0; k < sizeof gone / sizeof gone[0]; k++)
    f->nodes[gone[k]].op = NULL;
  f->nodes[bias_add] = n;
  f->protos[bias_add] = NULL;
  m->n_fused += 8;
  return count_readers(f, e);
}

/* Absorbs into the node at slot i whatever follows it, moving it to the
 * slot of the last node absorbed. */
static int fuse_from(fuser *f, size_t i, err *e) {
  onnx_model *m = f->m;
  for (;;) {
    onnx_node *n = &f->nodes[i];
    int v = n->out[0];
    if (v < 0 || f->output[v] || f->readers[v] != 1) return 0;
    for (int k = 1; k < n->n_out; k++)
      if (n->out[k] >= 0) return 0;
    size_t j = (size_t)f->reader[v];
    onnx_node *c = &f->nodes[j];
    if (j <= i || !c->op || c->n_out < 1 || c->out[0] < 0) return 0;
    for (int k = 1; k < c->n_out; k++)
      if (c->out[k] >= 0) return 0;
    bool done = false;
    const char *what = c->op_type;
    onnx_post_op post;
    int rc = 0;
    if (n->op == &onnx_op_conv && c->op == &onnx_op_batchnorm && c->in[0] == v) {
      rc = fold_bn(f, n, c, &done, e);
    } else if (n->op == &onnx_op_matmul && c->op == &onnx_op_add && !n->n_post) {
      int other = c->in[0] == v ? c->in[1] : c->in[0];
      if (other >= 0 && other != v) rc = fold_bias(f, n, c, other, &done, e);
    } else if (c->op == &onnx_op_add && (n->op->post_ok >> ONNX_POST_SUM & 1)) {
      int other = c->in[0] == v ? c->in[1] : c->in[0];
      bool has_sum = false;
      for (int k = 0; k < n->n_post; k++)
        has_sum |= n->post[k].kind == ONNX_POST_SUM;
      if (other >= 0 && other != v && !m->values[other].is_const && !has_sum &&
          n->n_post < ONNX_MAX_POST) {
        /* Omitted optional inputs are filled in first, so that the
         * residual never takes the place of one (a Conv's bias). */
        while (!rc && n->n_in < n->op->max_inputs)
          rc = add_input(m, n, -1, e);
        post = (onnx_post_op){.kind = ONNX_POST_SUM, .input = n->n_in};
        if (!rc && !(rc = add_input(m, n, other, e))) rc = add_post(m, n, &post, e);
        done = !rc;
      }
    } else if (c->in[0] == v && n->n_post < ONNX_MAX_POST &&
               activation(m, c, f->protos[j], &post) && (n->op->post_ok >> post.kind & 1)) {
      rc = add_post(m, n, &post, e);
      done = !rc;
    }
    if (rc) return rc;
    if (!done) return 0;
    if ((rc = rename_node(m, n, what, e))) return rc;
    n->out[0] = c->out[0];
    /* n moves into c's slot: whatever n gained is computed before it. */
    f->nodes[j] = *n;
    f->protos[j] = f->protos[i];
    f->nodes[i].op = NULL;
    m->n_fused++;
    if ((rc = count_readers(f, e))) return rc;
    i = j;
  }
}

int onnx_model_fuse(onnx_model *m, const Onnx__NodeProto *const *protos, err *e) {
  fuser f = {.m = m};
  int rc = 0;
  f.nodes = malloc((m->n_nodes + 1) * sizeof *f.nodes);
  f.protos = malloc((m->n_nodes + 1) * sizeof *f.protos);
  if (!f.nodes || !f.protos) {
    rc = err_set(e, -ENOMEM, "out of memory");
    goto done;
  }
  memcpy(f.nodes, m->nodes, m->n_nodes * sizeof *f.nodes);
  memcpy(f.protos, protos, m->n_nodes * sizeof *f.protos);
  if ((rc = count_readers(&f, e))) goto done;
  for (size_t j = 0; j < m->n_outputs; j++)
    f.output[m->outputs[j]] = true;
  for (size_t i = 0; i < m->n_nodes && !rc; i++)
    if (f.nodes[i].op && strcmp(f.nodes[i].op_type, "ReduceMean") == 0)
      rc = fuse_layernorm(&f, i, e);
  for (size_t i = 0; i < m->n_nodes && !rc; i++)
    if (f.nodes[i].op) rc = fuse_from(&f, i, e);
  if (!rc && m->n_fused) {
    size_t n = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
      if (f.nodes[i].op) f.nodes[n++] = f.nodes[i];
    rc = onnx_model_set_nodes(m, f.nodes, n, e);
  }
done:
  free(f.nodes);
  free(f.protos);
  free(f.readers);
  free(f.reader);
  free(f.output);
  return rc;
}
