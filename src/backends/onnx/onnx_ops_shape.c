/* backends/onnx/onnx_ops_shape.c: operators about shapes rather than
 * values: the views Flatten, Reshape and Identity (the planner makes their
 * output share the input's memory; run copies only when asked to), Constant
 * (always folded at load), and Shape (evaluated when a plan is built, which
 * is what lets Reshape follow a dynamic batch dimension). */
#include <string.h>

#include "core/dtype.h"
#include "onnx_ops.h"

/* The run of every view: a copy when the planner could not share memory
 * (constant folding at load). */
static int copy_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  if (out[0]->data != in[0]->data && onnx_tensor_bytes(out[0]))
    memcpy(out[0]->data, in[0]->data, onnx_tensor_bytes(out[0]));
  return 0;
}

/* ---- Identity ----------------------------------------------------------- */

static int identity_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

const onnx_op onnx_op_identity = {.name = "Identity",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .flags = ONNX_OP_ALIAS,
                                  .infer = identity_infer,
                                  .run = copy_run};

/* ---- Flatten ------------------------------------------------------------ */

typedef struct axis_attr {
  int64_t axis;
} axis_attr;

static int flatten_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  axis_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  return onnx_attr_int(p, "axis", 1, &at->axis, e);
}

static int flatten_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const axis_attr *at = n->attr;
  int axis;
  int rc = onnx_axis(at->axis, in[0]->ndim, true, &axis, e);
  if (rc) return rc;
  int64_t dims[2] = {onnx_dims_product(in[0]->dims, 0, axis),
                     onnx_dims_product(in[0]->dims, axis, in[0]->ndim)};
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], 2, dims);
  return 0;
}

const onnx_op onnx_op_flatten = {.name = "Flatten",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .flags = ONNX_OP_ALIAS,
                                 .init = flatten_init,
                                 .infer = flatten_infer,
                                 .run = copy_run};

/* ---- Reshape ------------------------------------------------------------ */

typedef struct reshape_attr {
  bool allowzero;
} reshape_attr;

static int reshape_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  reshape_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  return onnx_attr_bool(p, "allowzero", false, &at->allowzero, e);
}

/* The target shape: 0 copies the input's dimension (a literal 0 under
 * allowzero), one -1 takes what is left. */
static int reshape_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const reshape_attr *at = n->attr;
  const onnx_tensor *x = in[0], *s = in[1];
  char sx[96];
  if (s->dtype != INFERD_TYPE_INT64 || s->ndim != 1)
    return err_set(e, -EINVAL, "the shape input must be a 1-D INT64 tensor");
  if (!s->data)
    return err_set(e, -ENOTSUP,
                   "the shape input must be known before the node runs (a constant, "
                   "computed from shapes, or a small graph input)");
  if (s->count > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "a shape of %lld dimensions is not supported", (long long)s->count);
  const int64_t *want = s->data;
  int64_t dims[ONNX_MAX_DIMS], known = 1;
  int infer_at = -1;
  bool zero = false;
  for (int i = 0; i < (int)s->count; i++) {
    int64_t d = want[i];
    if (d == 0 && !at->allowzero) {
      if (i >= x->ndim)
        return err_set(e, -EINVAL,
                       "dimension %d is 0 (copy) but the input %s has no such dimension", i,
                       onnx_shape_str(sx, x));
      d = x->dims[i];
    } else if (d == -1) {
      if (infer_at >= 0) return err_set(e, -EINVAL, "the shape has more than one -1");
      infer_at = i;
      dims[i] = 1;
      continue;
    } else if (d < 0) {
      return err_set(e, -EINVAL, "the shape has a dimension %lld", (long long)d);
    }
    zero |= want[i] == 0;
    dims[i] = d;
    known *= d;
  }
  if (infer_at >= 0) {
    if (at->allowzero && zero)
      return err_set(e, -EINVAL, "with allowzero the shape cannot hold both 0 and -1");
    if (known == 0 || x->count % known)
      return err_set(e, -EINVAL, "cannot reshape %s (%lld elements) with a -1 dimension",
                     onnx_shape_str(sx, x), (long long)x->count);
    dims[infer_at] = x->count / known;
    known *= dims[infer_at];
  }
  if (known != x->count) {
    char so[96];
    onnx_tensor t = {.ndim = (int)s->count};
    memcpy(t.dims, dims, (size_t)s->count * sizeof dims[0]);
    return err_set(e, -EINVAL, "cannot reshape %s to %s", onnx_shape_str(sx, x),
                   onnx_shape_str(so, &t));
  }
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], (int)s->count, dims);
  return 0;
}

const onnx_op onnx_op_reshape = {.name = "Reshape",
                                 .domain = "",
                                 .min_inputs = 2,
                                 .max_inputs = 2,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .flags = ONNX_OP_ALIAS,
                                 .init = reshape_init,
                                 .infer = reshape_infer,
                                 .run = copy_run,
                                 .value_inputs = 1u << 1};

/* ---- Shape -------------------------------------------------------------- */

typedef struct shape_attr {
  int64_t start, end;
  bool has_end;
} shape_attr;

static int shape_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  shape_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  at->has_end = onnx_attr_find(p, "end") != NULL;
  int rc;
  if ((rc = onnx_attr_int(p, "start", 0, &at->start, e)) ||
      (rc = onnx_attr_int(p, "end", 0, &at->end, e)))
    return rc;
  return 0;
}

/* The slice [start, end) of the dimensions, clamped as in Shape-15 (before
 * 15 there are no attributes and the slice is everything). */
static void shape_range(const shape_attr *at, int rank, int *from, int *to) {
  int64_t s = at->start, t = at->has_end ? at->end : rank;
  if (s < 0) s += rank;
  if (t < 0) t += rank;
  s = s < 0 ? 0 : s > rank ? rank : s;
  t = t < 0 ? 0 : t > rank ? rank : t;
  *from = (int)s;
  *to = (int)(t > s ? t : s);
}

static int shape_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  int from, to;
  shape_range(n->attr, in[0]->ndim, &from, &to);
  out[0]->dtype = INFERD_TYPE_INT64;
  onnx_tensor_set_shape(out[0], 1, (int64_t[]){to - from});
  return 0;
}

static int shape_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  int from, to;
  shape_range(n->attr, in[0]->ndim, &from, &to);
  if (to > from) memcpy(out[0]->data, in[0]->dims + from, (size_t)(to - from) * sizeof(int64_t));
  return 0;
}

const onnx_op onnx_op_shape = {.name = "Shape",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .flags = ONNX_OP_SHAPE_ONLY,
                               .init = shape_init,
                               .infer = shape_infer,
                               .run = shape_run};

/* ---- Constant ----------------------------------------------------------- */

/* The value of a Constant node, from whichever attribute holds it. */
static int constant_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  onnx_tensor *t = arena_calloc(a, 1, sizeof *t);
  if (!t) return err_set(e, -ENOMEM, "out of memory");
  n->attr = t;
  if (p->n_attribute != 1)
    return err_set(e, -EINVAL, "a Constant needs exactly one attribute; it has %zu",
                   p->n_attribute);
  const Onnx__AttributeProto *at = p->attribute[0];
  const char *name = at->name ? at->name : "";
  if (strcmp(name, "value") == 0) {
    if (!at->t) return err_set(e, -EINVAL, "attribute 'value' holds no tensor");
    int rc = onnx_tensor_decode(at->t, a, t, e);
    if (rc) return rc;
    if (t->dtype == INFERD_TYPE_BYTES)
      return err_set(e, -ENOTSUP, "string constants are not supported");
    return 0;
  }
  size_t count;
  if (strcmp(name, "value_float") == 0 || strcmp(name, "value_int") == 0) {
    t->ndim = 0;
    count = 1;
  } else if (strcmp(name, "value_floats") == 0 || strcmp(name, "value_ints") == 0) {
    count = name[6] == 'f' ? at->n_floats : at->n_ints;
    t->ndim = 1;
    t->dims[0] = (int64_t)count;
  } else {
    return err_set(e, -ENOTSUP, "attribute '%s' is not supported", name);
  }
  t->count = (int64_t)count;
  bool is_float = name[6] == 'f';
  t->dtype = is_float ? INFERD_TYPE_FP32 : INFERD_TYPE_INT64;
  size_t es = is_float ? sizeof(float) : sizeof(int64_t);
  if (!(t->data = arena_alloc_aligned(a, count * es + 1, 64)))
    return err_set(e, -ENOMEM, "out of memory");
  if (t->ndim == 0 && is_float)
    memcpy(t->data, &at->f, es);
  else if (t->ndim == 0)
    memcpy(t->data, &at->i, es);
  else if (count)
    memcpy(t->data, is_float ? (const void *)at->floats : (const void *)at->ints, count * es);
  return 0;
}

static int constant_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  onnx_tensor_like(out[0], n->attr);
  return 0;
}

static int constant_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_tensor *t = n->attr;
  if (onnx_tensor_bytes(t)) memcpy(out[0]->data, t->data, onnx_tensor_bytes(t));
  return 0;
}

const onnx_op onnx_op_constant = {.name = "Constant",
                                  .domain = "",
                                  .min_inputs = 0,
                                  .max_inputs = 0,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = constant_init,
                                  .infer = constant_infer,
                                  .run = constant_run};

const onnx_op_row onnx_ops_shape[] = {
    {&onnx_op_flatten, 1},   {&onnx_op_flatten, 9},
    {&onnx_op_flatten, 11},  {&onnx_op_flatten, 13},
    {&onnx_op_reshape, 5},   {&onnx_op_reshape, 13},
    {&onnx_op_reshape, 14},  {&onnx_op_identity, 1},
    {&onnx_op_identity, 13}, {&onnx_op_identity, 14},
    {&onnx_op_identity, 16}, {&onnx_op_constant, 1},
    {&onnx_op_constant, 9},  {&onnx_op_constant, 11},
    {&onnx_op_constant, 12}, {&onnx_op_constant, 13},
    {&onnx_op_shape, 1},     {&onnx_op_shape, 13},
    {&onnx_op_shape, 15},    {NULL, 0},
};
