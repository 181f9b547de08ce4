/* backends/onnx/onnx_model.c: from ONNX ModelProto bytes to the graph the
 * planner works on. Load-time work lives here: opset checks, operators
 * resolved through the registry and their attributes checked, values linked
 * by name, nodes put in topological order (a model may list them in any
 * order), constant subgraphs (initializers, Constant nodes, arithmetic on
 * them) evaluated once, then the rewrites of onnx_fuse.c and onnx_layout.c,
 * the operators' prepare hooks (weights packed, originals freed), and nodes
 * no wanted output needs dropped. The parse tree is freed before
 * onnx_model_parse returns: a loaded model holds only its graph, constants
 * and packed weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_graph.h"

/* The state of one load. */
typedef struct builder {
  onnx_model *m;
  size_t cap_values;
  int *slots; /* open addressing over value names: value index + 1, 0 empty */
  size_t n_slots;
  size_t n_domains;
  const char **domains; /* imported opsets: domain ("" for ai.onnx) */
  int *versions;        /* and version */
  size_t n_nodes;       /* every node of the graph, graph order */
  onnx_node *all;
} builder;

const char *onnx_node_label(char buf[static 200], const onnx_node *n) {
  snprintf(buf, 200, "node '%s' (%s%s%s, opset %d)", n->name, n->domain, *n->domain ? "." : "",
           n->op_type, n->opset);
  return buf;
}

/* ---- values by name ----------------------------------------------------- */

static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int value_find(const builder *b, const char *name) {
  if (!b->n_slots) return -1;
  size_t mask = b->n_slots - 1;
  for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
    int s = b->slots[i];
    if (!s) return -1;
    if (strcmp(b->m->values[s - 1].name, name) == 0) return s - 1;
  }
}

static void slot_put(builder *b, int v) {
  size_t mask = b->n_slots - 1;
  size_t i = name_hash(b->m->values[v].name) & mask;
  while (b->slots[i])
    i = (i + 1) & mask;
  b->slots[i] = v + 1;
}

/* Adds a value called name (which must be new) and returns its index, or
 * a negative error. */
static int value_new(builder *b, const char *name, err *e) {
  onnx_model *m = b->m;
  if (m->n_values == b->cap_values) {
    size_t cap = b->cap_values ? 2 * b->cap_values : 64;
    onnx_value *v = realloc(m->values, cap * sizeof *v);
    if (!v) return err_set(e, -ENOMEM, "out of memory");
    m->values = v;
    b->cap_values = cap;
  }
  if (2 * (m->n_values + 1) > b->n_slots) {
    size_t n = b->n_slots ? 2 * b->n_slots : 128;
    int *slots = calloc(n, sizeof *slots);
    if (!slots) return err_set(e, -ENOMEM, "out of memory");
    free(b->slots);
    b->slots = slots;
    b->n_slots = n;
    for (size_t i = 0; i < m->n_values; i++)
      slot_put(b, (int)i);
  }
  int v = (int)m->n_values++;
  onnx_value *val = &m->values[v];
  memset(val, 0, sizeof *val);
  val->name = arena_strdup(m->arena, name);
  if (!val->name) return err_set(e, -ENOMEM, "out of memory");
  val->t.ndim = -1;
  val->producer = -1;
  slot_put(b, v);
  return v;
}

/* What a name already stands for, for messages about clashes. */
static const char *value_role(const builder *b, int v) {
  const onnx_value *val = &b->m->values[v];
  if (val->is_input) return "a graph input";
  if (val->producer >= 0) return "another node's output";
  return "an initializer";
}

/* ---- model parts -------------------------------------------------------- */

static int read_opsets(builder *b, const Onnx__ModelProto *mp, err *e) {
  b->domains = arena_calloc(b->m->arena, mp->n_opset_import + 1, sizeof *b->domains);
  b->versions = arena_calloc(b->m->arena, mp->n_opset_import + 1, sizeof *b->versions);
  if (!b->domains || !b->versions) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    const char *d = o->domain && strcmp(o->domain, "ai.onnx") != 0 ? o->domain : "";
    for (size_t j = 0; j < b->n_domains; j++)
      if (strcmp(b->domains[j], d) == 0)
        return err_set(e, -EINVAL, "the model imports opset domain '%s' twice", d);
    if (o->version < 1 || o->version > 1000)
      return err_set(e, -EINVAL, "the model imports domain '%s' at version %lld", d,
                     (long long)o->version);
    b->domains[b->n_domains] = d;
    b->versions[b->n_domains++] = (int)o->version;
    if (!*d) {
      if (o->version > ONNX_OPSET_MAX)
        return err_set(e, -ENOTSUP,
                       "the model imports ai.onnx opset %lld; this backend knows opsets up to %d",
                       (long long)o->version, ONNX_OPSET_MAX);
      b->m->opset = (int)o->version;
    }
  }
  if (!b->m->opset) return err_set(e, -EINVAL, "the model imports no ai.onnx opset");
  return 0;
}

static int read_initializers(builder *b, const Onnx__GraphProto *g, err *e) {
  if (g->n_sparse_initializer) return err_set(e, -ENOTSUP, "sparse initializers are not supported");
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *tp = g->initializer[i];
    if (!tp->name || !*tp->name) return err_set(e, -EINVAL, "initializer %zu has no name", i);
    if (value_find(b, tp->name) >= 0)
      return err_set(e, -EINVAL, "initializer '%s' is defined twice", tp->name);
    int v = value_new(b, tp->name, e);
    if (v < 0) return v;
    onnx_value *val = &b->m->values[v];
    int rc = onnx_tensor_decode(tp, NULL, &val->t, e);
    if (rc) return rc;
    val->is_const = val->owns_data = true;
    /* The parse tree's copy is not needed again: freeing it now keeps the
     * load's peak at about one copy of the weights fewer. */
    Onnx__TensorProto *w = g->initializer[i];
    if (w->has_raw_data && w->raw_data.data) {
      free(w->raw_data.data);
      w->raw_data.data = NULL;
      w->raw_data.len = 0;
      w->has_raw_data = false;
    }
  }
  return 0;
}

/* A ValueInfo's tensor type into dtype/ndim/dims (-1 for dim_param or an
 * unset dimension; ndim -1 when there is no shape). */
static int read_type(const Onnx__ValueInfoProto *vi, const char *what, inferd_tensor_desc *d,
                     err *e) {
  const char *name = vi->name;
  d->dtype = INFERD_TYPE_INVALID;
  d->ndim = -1;
  const Onnx__TypeProto *tp = vi->type;
  if (!tp) return 0;
  if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
    return err_set(e, -ENOTSUP,
                   "%s '%s' is not a tensor (sequences, maps and optionals are not "
                   "supported)",
                   what, name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type && tt->elem_type != 0) {
    d->dtype = onnx_dtype_from_proto(tt->elem_type);
    if (d->dtype == INFERD_TYPE_INVALID || d->dtype == INFERD_TYPE_BYTES)
      return err_set(e, -ENOTSUP, "%s '%s' has element type %d, which is not supported", what, name,
                     (int)tt->elem_type);
  }
  if (!tt->shape) return 0;
  if (tt->shape->n_dim > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "%s '%s' has %zu dimensions; at most %d are supported", what, name,
                   tt->shape->n_dim, ONNX_MAX_DIMS);
  d->ndim = (int)tt->shape->n_dim;
  for (int i = 0; i < d->ndim; i++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
    d->dims[i] = -1;
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
        dim->dim_value >= 0)
      d->dims[i] = dim->dim_value;
  }
  return 0;
}

static int read_inputs(builder *b, const Onnx__GraphProto *g, err *e) {
  onnx_model *m = b->m;
  m->inputs = arena_calloc(m->arena, g->n_input + 1, sizeof *m->inputs);
  m->key_input = arena_calloc(m->arena, g->n_input + 1, sizeof *m->key_input);
  m->io_in = arena_calloc(m->arena, g->n_input + 1, sizeof *m->io_in);
  if (!m->inputs || !m->io_in || !m->key_input) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < g->n_input; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (!vi->name || !*vi->name) return err_set(e, -EINVAL, "graph input %zu has no name", i);
    int v = value_find(b, vi->name);
    if (v >= 0 && !m->values[v].is_input) continue; /* an initializer: a constant */
    if (v >= 0) return err_set(e, -EINVAL, "graph input '%s' is listed twice", vi->name);
    inferd_tensor_desc *d = &m->io_in[m->n_inputs];
    int rc = read_type(vi, "input", d, e);
    if (rc) return rc;
    if (d->dtype == INFERD_TYPE_INVALID)
      return err_set(e, -EINVAL, "input '%s' declares no element type", vi->name);
    if (d->ndim < 0) return err_set(e, -ENOTSUP, "input '%s' declares no shape", vi->name);
    v = value_new(b, vi->name, e);
    if (v < 0) return v;
    onnx_value *val = &m->values[v];
    val->is_input = true;
    val->t.dtype = d->dtype;
    onnx_tensor_set_shape(&val->t, d->ndim, d->dims);
    d->name = val->name;
    m->inputs[m->n_inputs++] = v;
  }
  return 0;
}

/* Resolves node i's operator, creates its outputs and reads its
 * attributes. Inputs are linked later: they may be produced by a node
 * listed after this one. */
static int read_node(builder *b, size_t i, const Onnx__NodeProto *p, err *e) {
  onnx_model *m = b->m;
  onnx_node *n = &b->all[i];
  char label[200], idx[32];
  snprintf(idx, sizeof idx, "#%zu", i);
  n->name = arena_strdup(m->arena, p->name && *p->name ? p->name : idx);
  n->op_type = arena_strdup(m->arena, p->op_type ? p->op_type : "");
  const char *dom = p->domain && strcmp(p->domain, "ai.onnx") != 0 ? p->domain : "";
  n->domain = arena_strdup(m->arena, dom);
  if (!n->name || !n->op_type || !n->domain) return err_set(e, -ENOMEM, "out of memory");
  n->opset = -1;
  for (size_t d = 0; d < b->n_domains; d++)
    if (strcmp(b->domains[d], dom) == 0) n->opset = b->versions[d];
  if (n->opset < 0)
    return err_set(e, -EINVAL, "node '%s' (%s) uses domain '%s', which the model does not import",
                   n->name, n->op_type, dom);
  n->op = onnx_registry_find(dom, n->op_type, n->opset, &n->since);
  if (!n->op) return err_set(e, -ENOTSUP, "%s is not supported", onnx_node_label(label, n));
  const onnx_op *op = n->op;
  if (p->n_input < op->min_inputs || p->n_input > op->max_inputs || p->n_output < op->min_outputs ||
      p->n_output > op->max_outputs)
    return err_set(e, -EINVAL, "%s has %zu inputs and %zu outputs; %s takes %d to %d and %d to %d",
                   onnx_node_label(label, n), p->n_input, p->n_output, op->name, op->min_inputs,
                   op->max_inputs, op->min_outputs, op->max_outputs);
  n->n_in = (int)p->n_input;
  n->n_out = (int)p->n_output;
  n->in = arena_calloc(m->arena, (size_t)n->n_in + 1, sizeof *n->in);
  n->out = arena_calloc(m->arena, (size_t)n->n_out + 1, sizeof *n->out);
  if (!n->in || !n->out) return err_set(e, -ENOMEM, "out of memory");
  for (int k = 0; k < n->n_out; k++) {
    const char *name = p->output[k];
    n->out[k] = -1;
    if (!*name) {
      if (k == 0) return err_set(e, -EINVAL, "%s has no output", onnx_node_label(label, n));
      continue;
    }
    int v = value_find(b, name);
    if (v >= 0)
      return err_set(e, -EINVAL, "%s produces '%s', which is already %s", onnx_node_label(label, n),
                     name, value_role(b, v));
    v = value_new(b, name, e);
    if (v < 0) return v;
    m->values[v].producer = (int)i;
    n->out[k] = v;
  }
  if (op->init) {
    int rc = op->init(n, p, m->arena, e);
    if (rc) {
      err_prefix(e, "%s: ", onnx_node_label(label, n));
      return rc;
    }
  }
  return 0;
}

static int link_inputs(builder *b, const Onnx__GraphProto *g, err *e) {
  char label[200];
  for (size_t i = 0; i < b->n_nodes; i++) {
    onnx_node *n = &b->all[i];
    const Onnx__NodeProto *p = g->node[i];
    for (int k = 0; k < n->n_in; k++) {
      n->in[k] = -1;
      if (!*p->input[k]) {
        if (k < n->op->min_inputs)
          return err_set(e, -EINVAL, "%s: input %d is required", onnx_node_label(label, n), k);
        continue;
      }
      n->in[k] = value_find(b, p->input[k]);
      if (n->in[k] < 0)
        return err_set(e, -EINVAL,
                       "%s: input '%s' is not a graph input, an initializer or any node's output",
                       onnx_node_label(label, n), p->input[k]);
    }
  }
  return 0;
}

static int read_outputs(builder *b, const Onnx__GraphProto *g, err *e) {
  onnx_model *m = b->m;
  if (!g->n_output) return err_set(e, -EINVAL, "the graph has no outputs");
  m->outputs = arena_calloc(m->arena, g->n_output, sizeof *m->outputs);
  m->io_out = arena_calloc(m->arena, g->n_output, sizeof *m->io_out);
  if (!m->outputs || !m->io_out) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < g->n_output; i++) {
    const Onnx__ValueInfoProto *vi = g->output[i];
    int v = vi->name ? value_find(b, vi->name) : -1;
    if (v < 0)
      return err_set(e, -EINVAL, "graph output '%s' is not produced by any node",
                     vi->name ? vi->name : "");
    if (m->values[v].is_output)
      return err_set(e, -EINVAL, "graph output '%s' is listed twice", vi->name);
    inferd_tensor_desc *d = &m->io_out[i];
    int rc = read_type(vi, "output", d, e);
    if (rc) return rc;
    d->name = m->values[v].name;
    m->values[v].is_output = true;
    m->outputs[m->n_outputs++] = v;
  }
  return 0;
}

/* ---- order and folding -------------------------------------------------- */

/* Kahn's algorithm over the node list: order[] receives node indices so
 * that every node comes after the producers of its inputs. A node left over
 * sits on a cycle (or after one). */
static int topo_sort(builder *b, int *order, err *e) {
  onnx_model *m = b->m;
  size_t n = b->n_nodes, nv = m->n_values;
  int rc = 0;
  int *pending = calloc(n + 1, sizeof *pending);
  int *first = calloc(nv + 1, sizeof *first); /* consumers of value v: use[first[v]..first[v+1]) */
  size_t n_edges = 0;
  for (size_t i = 0; i < n; i++)
    n_edges += (size_t)b->all[i].n_in;
  int *use = calloc(n_edges + 1, sizeof *use);
  if (!pending || !first || !use) {
    rc = err_set(e, -ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < b->all[i].n_in; k++) {
      int v = b->all[i].in[k];
      if (v < 0) continue;
      first[v + 1]++;
      if (m->values[v].producer >= 0) pending[i]++;
    }
  for (size_t v = 0; v < nv; v++)
    first[v + 1] += first[v];
  int *fill = calloc(nv + 1, sizeof *fill);
  if (!fill) {
    rc = err_set(e, -ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < b->all[i].n_in; k++) {
      int v = b->all[i].in[k];
      if (v >= 0) use[first[v] + fill[v]++] = (int)i;
    }
  free(fill);
  size_t head = 0, tail = 0;
  for (size_t i = 0; i < n; i++)
    if (!pending[i]) order[tail++] = (int)i;
  while (head < tail) {
    const onnx_node *nd = &b->all[order[head++]];
    for (int k = 0; k < nd->n_out; k++) {
      int v = nd->out[k];
      if (v < 0) continue;
      for (int u = first[v]; u < first[v + 1]; u++)
        if (--pending[use[u]] == 0) order[tail++] = use[u];
    }
  }
  if (tail < n) {
    for (size_t i = 0; i < n; i++)
      if (pending[i]) {
        char label[200];
        rc = err_set(e, -EINVAL, "the graph has a cycle through %s",
                     onnx_node_label(label, &b->all[i]));
        break;
      }
  }
done:
  free(pending);
  free(first);
  free(use);
  return rc;
}

/* Runs a node whose inputs are all constants and makes its outputs
 * constants. */
static int fold(builder *b, const onnx_node *n, err *e) {
  onnx_model *m = b->m;
  const onnx_tensor *in[n->n_in + 1];
  onnx_tensor *out[n->n_out + 1];
  onnx_tensor outs[n->n_out + 1];
  char label[200], shape[96];
  for (int k = 0; k < n->n_in; k++)
    in[k] = n->in[k] >= 0 ? &m->values[n->in[k]].t : NULL;
  for (int k = 0; k < n->n_out; k++) {
    memset(&outs[k], 0, sizeof outs[k]);
    out[k] = n->out[k] >= 0 ? &outs[k] : NULL;
  }
  int rc = n->op->infer(n, in, out, e);
  for (int k = 0; k < n->n_out && !rc; k++) {
    if (!out[k]) continue;
    if (out[k]->count < 0 || dtype_size(out[k]->dtype) == 0)
      rc = err_set(e, -EINVAL, "output '%s' gets an invalid type or shape %s",
                   m->values[n->out[k]].name, onnx_shape_str(shape, out[k]));
    else if (!(out[k]->data = aligned_alloc(64, (onnx_tensor_bytes(out[k]) + 64) & ~(size_t)63)))
      rc = err_set(e, -ENOMEM, "out of memory");
  }
  if (!rc) rc = n->op->run(n, in, out, e);
  if (rc) {
    for (int k = 0; k < n->n_out; k++)
      if (out[k]) free(out[k]->data);
    err_prefix(e, "%s: ", onnx_node_label(label, n));
    return rc;
  }
  for (int k = 0; k < n->n_out; k++) {
    if (!out[k]) continue;
    onnx_value *val = &m->values[n->out[k]];
    val->t = *out[k];
    val->is_const = val->owns_data = true;
    val->producer = -1;
  }
  return 0;
}

static int build(builder *b, const Onnx__ModelProto *mp, onnx_optimize opt, err *e) {
  onnx_model *m = b->m;
  int rc = read_opsets(b, mp, e);
  if (rc) return rc;
  const Onnx__GraphProto *g = mp->graph;
  if (!g) return err_set(e, -EINVAL, "the model has no graph");
  if ((rc = read_initializers(b, g, e)) || (rc = read_inputs(b, g, e))) return rc;
  b->n_nodes = g->n_node;
  b->all = arena_calloc(m->arena, g->n_node + 1, sizeof *b->all);
  if (!b->all) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < g->n_node; i++)
    if ((rc = read_node(b, i, g->node[i], e))) return rc;
  if ((rc = link_inputs(b, g, e)) || (rc = read_outputs(b, g, e))) return rc;

  int *order = calloc(b->n_nodes + 1, sizeof *order);
  const Onnx__NodeProto **protos = calloc(b->n_nodes + 1, sizeof *protos);
  if (!order || !protos) {
    free(order);
    free(protos);
    return err_set(e, -ENOMEM, "out of memory");
  }
  rc = topo_sort(b, order, e);
  m->nodes = arena_calloc(m->arena, b->n_nodes + 1, sizeof *m->nodes);
  if (!rc && !m->nodes) rc = err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < b->n_nodes && !rc; i++) {
    const onnx_node *n = &b->all[order[i]];
    bool constant = true;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0 && !m->values[n->in[k]].is_const) constant = false;
    if (constant)
      rc = fold(b, n, e);
    else {
      protos[m->n_nodes] = g->node[order[i]];
      m->nodes[m->n_nodes++] = *n;
    }
  }
  free(order);
  if (!rc) {
    for (size_t i = 0; i < m->n_nodes; i++)
      for (int k = 0; k < m->nodes[i].n_out; k++)
        if (m->nodes[i].out[k] >= 0) m->values[m->nodes[i].out[k]].producer = (int)i;
    if (opt == ONNX_OPTIMIZE_ALL) rc = onnx_model_fuse(m, protos, e);
  }
  free(protos); /* the NodeProtos themselves go with the parse tree */
  if (rc) return rc;
  onnx_model_prune(m);
  if (opt == ONNX_OPTIMIZE_ALL && (rc = onnx_model_layout(m, e))) return rc;
  return onnx_model_prepare(m, e);
}

int onnx_model_parse(const void *bytes, size_t len, onnx_model **out, err *e) {
  return onnx_model_parse_opt(bytes, len, ONNX_OPTIMIZE_ALL, out, e);
}

int onnx_model_parse_opt(const void *bytes, size_t len, onnx_optimize opt, onnx_model **out,
                         err *e) {
  *out = NULL;
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
  if (!mp) return err_set(e, -EINVAL, "not an ONNX model: the bytes do not parse as a ModelProto");
  onnx_model *m = calloc(1, sizeof *m);
  builder b = {.m = m};
  int rc = 0;
  if (!m || !(m->arena = arena_create(64 * 1024)))
    rc = err_set(e, -ENOMEM, "out of memory");
  else
    rc = build(&b, mp, opt, e);
  free(b.slots);
  onnx__model_proto__free_unpacked(mp, NULL);
  if (rc) {
    onnx_model_free(m);
    return rc;
  }
  m->threads = 1;
  *out = m;
  return 0;
}

/* Finds the key inputs: walks back from the inputs whose data operators
 * need when planning, through every input of the nodes computing them but
 * only the shape of what Shape-like nodes read. */
static void find_key_inputs(onnx_model *m) {
  bool *data = calloc(m->n_values + 1, sizeof *data);
  if (!data) return; /* planning will say which input it lacks */
  for (size_t i = 0; i < m->n_nodes; i++)
    for (int k = 0; k < m->nodes[i].n_in && k < 32; k++)
      if ((m->nodes[i].op->value_inputs >> k & 1) && m->nodes[i].in[k] >= 0)
        data[m->nodes[i].in[k]] = true;
  for (size_t i = m->n_nodes; i-- > 0;) {
    const onnx_node *n = &m->nodes[i];
    bool any = false;
    for (int k = 0; k < n->n_out; k++)
      any |= n->out[k] >= 0 && data[n->out[k]];
    if (!any || (n->op->flags & ONNX_OP_SHAPE_ONLY)) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0) data[n->in[k]] = true;
  }
  m->has_key_inputs = false;
  for (size_t k = 0; k < m->n_inputs && m->key_input; k++) {
    m->key_input[k] = data[m->inputs[k]];
    m->has_key_inputs |= m->key_input[k];
  }
  free(data);
}

/* Frees what a node's prepare hook kept. */
static void release(onnx_node *n) {
  if (n->prepared && n->op && n->op->release) n->op->release(n);
  n->prepared = false;
}

/* Constant data still held plus what prepare hooks keep. */
static void count_weights(onnx_model *m) {
  m->weight_bytes = 0;
  for (size_t v = 0; v < m->n_values; v++)
    if (m->values[v].is_const && m->values[v].t.data)
      m->weight_bytes += onnx_tensor_bytes(&m->values[v].t);
  for (size_t i = 0; i < m->n_nodes; i++)
    if (m->nodes[i].prepared) m->weight_bytes += m->nodes[i].prepared_bytes;
}

void onnx_model_prune(onnx_model *m) {
  bool *needed = calloc(m->n_values + 1, sizeof *needed);
  if (!needed) { /* pruning only saves work; the graph is correct without it */
    find_key_inputs(m);
    return;
  }
  for (size_t v = 0; v < m->n_values; v++)
    needed[v] = m->values[v].is_output;
  size_t live = 0;
  for (size_t i = m->n_nodes; i-- > 0;) {
    const onnx_node *n = &m->nodes[i];
    bool any = false;
    for (int k = 0; k < n->n_out; k++)
      any |= n->out[k] >= 0 && needed[n->out[k]];
    if (!any) {
      for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0) m->values[n->out[k]].producer = -1;
      release(&m->nodes[i]);
      m->nodes[i].op = NULL; /* dropped */
      continue;
    }
    live++;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0) needed[n->in[k]] = true;
  }
  size_t j = 0;
  for (size_t i = 0; i < m->n_nodes; i++)
    if (m->nodes[i].op) m->nodes[j++] = m->nodes[i];
  m->n_nodes = live;
  for (size_t i = 0; i < m->n_nodes; i++)
    for (int k = 0; k < m->nodes[i].n_out; k++)
      if (m->nodes[i].out[k] >= 0) m->values[m->nodes[i].out[k]].producer = (int)i;
  for (size_t v = 0; v < m->n_values; v++) {
    onnx_value *val = &m->values[v];
    if (val->is_const && !needed[v] && val->owns_data) {
      free(val->t.data);
      val->t.data = NULL;
      val->owns_data = false;
    }
  }
  free(needed);
  count_weights(m);
  find_key_inputs(m);
}

/* ---- rewriting ---------------------------------------------------------- */

int onnx_model_add_value(onnx_model *m, const char *base, const char *suffix, err *e) {
  char name[512];
  for (int i = 0;; i++) {
    if (i)
      snprintf(name, sizeof name, "%s%s%d", base, suffix, i);
    else
      snprintf(name, sizeof name, "%s%s", base, suffix);
    bool taken = false;
    for (size_t v = 0; v < m->n_values && !taken; v++)
      taken = strcmp(m->values[v].name, name) == 0;
    if (!taken) break;
  }
  onnx_value *vals = realloc(m->values, (m->n_values + 1) * sizeof *vals);
  if (!vals) return err_set(e, -ENOMEM, "out of memory");
  m->values = vals;
  onnx_value *val = &m->values[m->n_values];
  memset(val, 0, sizeof *val);
  if (!(val->name = arena_strdup(m->arena, name))) return err_set(e, -ENOMEM, "out of memory");
  val->t.ndim = -1;
  val->producer = -1;
  return (int)m->n_values++;
}

int onnx_model_set_nodes(onnx_model *m, const onnx_node *nodes, size_t n, err *e) {
  onnx_node *copy = arena_calloc(m->arena, n + 1, sizeof *copy);
  if (!copy) return err_set(e, -ENOMEM, "out of memory");
  memcpy(copy, nodes, n * sizeof *copy);
  m->nodes = copy;
  m->n_nodes = n;
  for (size_t v = 0; v < m->n_values; v++)
    m->values[v].producer = -1;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < copy[i].n_out; k++)
      if (copy[i].out[k] >= 0) m->values[copy[i].out[k]].producer = (int)i;
  return 0;
}

/* Whether v is one of the graph's outputs, wanted or not. */
static bool graph_output(const onnx_model *m, int v) {
  for (size_t j = 0; j < m->n_outputs; j++)
    if (m->outputs[j] == v) return true;
  return false;
}

int onnx_model_prepare(onnx_model *m, err *e) {
  char label[200];
  for (size_t i = 0; i < m->n_nodes; i++) {
    onnx_node *n = &m->nodes[i];
    if (!n->op->prepare || n->prepared) continue;
    const onnx_tensor *in[n->n_in + 1];
    for (int k = 0; k < n->n_in; k++)
      in[k] = n->in[k] >= 0 ? &m->values[n->in[k]].t : NULL;
    int rc = n->op->prepare(n, in, e);
    if (rc) {
      err_prefix(e, "%s: ", onnx_node_label(label, n));
      return rc;
    }
    n->prepared = true;
  }
  /* A constant every reader of which has dropped it is not needed. */
  int *readers = calloc(m->n_values + 1, sizeof *readers);
  if (!readers) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < m->n_nodes; i++) {
    const onnx_node *n = &m->nodes[i];
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0 && !(k < 32 && (n->dropped >> k & 1))) readers[n->in[k]]++;
  }
  for (size_t v = 0; v < m->n_values; v++) {
    onnx_value *val = &m->values[v];
    if (val->is_const && val->owns_data && !readers[v] && !graph_output(m, (int)v)) {
      free(val->t.data);
      val->t.data = NULL;
      val->owns_data = false;
    }
  }
  free(readers);
  count_weights(m);
  return 0;
}

void onnx_model_free(onnx_model *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_nodes; i++)
    release(&m->nodes[i]);
  for (size_t v = 0; v < m->n_values; v++)
    if (m->values[v].owns_data) free(m->values[v].t.data);
  free(m->values);
  if (m->arena) arena_destroy(m->arena);
  free(m);
}
