/* backends/onnx/onnx_ops_index.c: operators driven by index tensors:
 * Gather, GatherElements, GatherND, Scatter (deprecated), ScatterElements,
 * ScatterND, OneHot, Compress, NonZero, Trilu, Unique and EyeLike.
 *
 * Indices are checked before they are used: one outside [-n, n) (outside
 * [0, n) for the versions before negative indices) fails the node with a
 * message naming the index, its position and the axis, never a read or
 * write out of bounds. Gather, the embedding lookup of transformer models,
 * copies each indexed row with one memcpy.
 *
 * Compress, NonZero and Unique have output shapes that depend on their
 * data, and OneHot's on its depth: those inputs are value_inputs, known
 * when the plan is built (constants, shapes, or small graph inputs that
 * become part of the plan's key). Unique sorts, and so needs scratch
 * memory for its permutation: it allocates it (it runs at load or
 * planning time, where its input is known). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

/* ---- shared pieces ------------------------------------------------------ */

static int index_type(const onnx_tensor *t, const char *what, err *e) {
  if (t->dtype == INFERD_TYPE_INT64 || t->dtype == INFERD_TYPE_INT32) return 0;
  return err_set(e, -EINVAL, "%s must be INT32 or INT64, not %s", what, dtype_name(t->dtype));
}

static inline int64_t index_at(const onnx_tensor *t, int64_t i) {
  return t->dtype == INFERD_TYPE_INT64 ? ((const int64_t *)t->data)[i]
                                       : ((const int32_t *)t->data)[i];
}

/* Makes index v (at position pos of the indices) non-negative for an axis
 * of size n, or fails. */
static int fix_index(int64_t *v, int64_t n, bool negative_ok, int64_t pos, int axis, err *e) {
  int64_t i = *v;
  if (i < 0 && negative_ok) i += n;
  if (i < 0 || i >= n)
    return err_set(e, -EINVAL,
                   "index %lld (indices[%lld]) is out of range for axis %d of size %lld",
                   (long long)*v, (long long)pos, axis, (long long)n);
  *v = i;
  return 0;
}

typedef struct axis_attr {
  int64_t axis;
} axis_attr;

static int axis_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  axis_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  return at ? onnx_attr_int(p, "axis", 0, &at->axis, e) : -ENOMEM;
}

/* ---- Gather ------------------------------------------------------------- */

static int gather_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_tensor *x = in[0], *ix = in[1];
  int axis, rc;
  if ((rc = onnx_fixed_size(x, e)) || (rc = index_type(ix, "indices", e)) ||
      (rc = onnx_axis(((const axis_attr *)n->attr)->axis, x->ndim, false, &axis, e)))
    return rc;
  int rank = x->ndim - 1 + ix->ndim;
  if (rank > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "the output would have %d dimensions; at most %d are supported",
                   rank, ONNX_MAX_DIMS);
  int64_t dims[ONNX_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < axis; d++)
    dims[k++] = x->dims[d];
  for (int d = 0; d < ix->ndim; d++)
    dims[k++] = ix->dims[d];
  for (int d = axis + 1; d < x->ndim; d++)
    dims[k++] = x->dims[d];
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], rank, dims);
  return 0;
}

/* out[o, j, :] = data[o, indices[j], :]: one memcpy per index and outer
 * row (for axis 0, an embedding lookup, one per token). */
#define GATHER_ROWS(T)                                                                             \
  do {                                                                                             \
    const T *ind = ix->data;                                                                       \
    for (int64_t o = 0; o < outer; o++)                                                            \
      for (int64_t j = 0; j < nidx; j++) {                                                         \
        int64_t i = ind[j];                                                                        \
        i += i < 0 ? dim : 0;                                                                      \
        memcpy(dst + ((size_t)o * nidx + j) * inner, src + ((size_t)o * dim + i) * inner, inner);  \
      }                                                                                            \
  } while (0)

static int gather_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *x = in[0], *ix = in[1];
  int64_t a = ((const axis_attr *)n->attr)->axis;
  int axis = (int)(a < 0 ? a + x->ndim : a), rc;
  int64_t dim = x->dims[axis], nidx = ix->count;
  for (int64_t j = 0; j < nidx; j++) {
    int64_t i = index_at(ix, j);
    if ((rc = fix_index(&i, dim, n->since >= 11, j, axis, e))) return rc;
  }
  size_t es = dtype_size(x->dtype);
  int64_t outer = onnx_dims_product(x->dims, 0, axis);
  size_t inner = (size_t)onnx_dims_product(x->dims, axis + 1, x->ndim) * es;
  char *dst = out[0]->data;
  const char *src = x->data;
  if (!out[0]->count) return 0;
  if (ix->dtype == INFERD_TYPE_INT64)
    GATHER_ROWS(int64_t);
  else
    GATHER_ROWS(int32_t);
  return 0;
}

static const onnx_op gather = {.name = "Gather",
                               .domain = "",
                               .min_inputs = 2,
                               .max_inputs = 2,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = axis_init,
                               .infer = gather_infer,
                               .run = gather_run};

/* ---- GatherElements, ScatterElements, Scatter --------------------------- */

/* Both walk the indices tensor; element c of it addresses the data
 * element at c with coordinate `axis` replaced by indices[c]. The indices
 * may be smaller than the data along the other axes, never larger. */
static int elements_check(const onnx_tensor *x, const onnx_tensor *ix, int axis, err *e) {
  char a[96], b[96];
  int rc = index_type(ix, "indices", e);
  if (rc) return rc;
  bool ok = ix->ndim == x->ndim;
  for (int d = 0; ok && d < x->ndim; d++)
    ok = d == axis || ix->dims[d] <= x->dims[d];
  if (!ok)
    return err_set(e, -EINVAL, "indices %s do not fit data %s along axis %d", onnx_shape_str(a, ix),
                   onnx_shape_str(b, x), axis);
  return 0;
}

/* Calls visit(i, k) for each element i of the indices with k its data
 * element; stops at the first error. */
typedef int (*elem_visit)(void *ctx, int64_t i, int64_t k, err *e);

static int elements_walk(const onnx_tensor *x, const onnx_tensor *ix, int axis, bool negative_ok,
                         elem_visit visit, void *ctx, err *e) {
  int r = ix->ndim, rc;
  int64_t xs[ONNX_MAX_DIMS], c[ONNX_MAX_DIMS] = {0}, base = 0, dim = x->dims[axis];
  onnx_strides(x->dims, r, xs);
  for (int64_t i = 0; i < ix->count; i++) {
    int64_t v = index_at(ix, i);
    if ((rc = fix_index(&v, dim, negative_ok, i, axis, e)) ||
        (rc = visit(ctx, i, base + v * xs[axis], e)))
      return rc;
    for (int d = r - 1; d >= 0; d--) { /* odometer; base skips the axis */
      if (d != axis) base += xs[d];
      if (++c[d] < ix->dims[d]) break;
      if (d != axis) base -= xs[d] * ix->dims[d];
      c[d] = 0;
    }
  }
  return 0;
}

typedef struct copy_ctx {
  char *dst;
  const char *src;
  size_t es;
  int reduction;
  inferd_dtype dtype;
} copy_ctx;

static int gather_elem(void *ctx, int64_t i, int64_t k, err *e) {
  copy_ctx *c = ctx;
  onnx_copy_elem(c->dst + (size_t)i * c->es, c->src + (size_t)k * c->es, c->es);
  return 0;
}

static int gather_elements_infer(const onnx_node *n, const onnx_tensor *const *in,
                                 onnx_tensor *const *out, err *e) {
  int axis, rc;
  if ((rc = onnx_fixed_size(in[0], e)) ||
      (rc = onnx_axis(((const axis_attr *)n->attr)->axis, in[0]->ndim, false, &axis, e)) ||
      (rc = elements_check(in[0], in[1], axis, e)))
    return rc;
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], in[1]->ndim, in[1]->dims);
  return 0;
}

static int gather_elements_run(const onnx_node *n, const onnx_tensor *const *in,
                               onnx_tensor *const *out, err *e) {
  int64_t a = ((const axis_attr *)n->attr)->axis;
  int axis = (int)(a < 0 ? a + in[0]->ndim : a);
  copy_ctx c = {out[0]->data, in[0]->data, dtype_size(in[0]->dtype), 0, in[0]->dtype};
  return elements_walk(in[0], in[1], axis, true, gather_elem, &c, e);
}

static const onnx_op gather_elements = {.name = "GatherElements",
                                        .domain = "",
                                        .min_inputs = 2,
                                        .max_inputs = 2,
                                        .min_outputs = 1,
                                        .max_outputs = 1,
                                        .init = axis_init,
                                        .infer = gather_elements_infer,
                                        .run = gather_elements_run};

enum { RED_NONE, RED_ADD, RED_MUL };
static const char *const reductions[] = {"none", "add", "mul"};

/* dst = dst (+ or *) src for one element; integers wrap (the arithmetic is
 * done in the unsigned type of the same width), bool adds as or and
 * multiplies as and, 16-bit floats go through float. */
#define RED_INT(T, U)                                                                              \
  do {                                                                                             \
    T x, y;                                                                                        \
    memcpy(&x, dst, sizeof x);                                                                     \
    memcpy(&y, src, sizeof y);                                                                     \
    x = (T)(red == RED_ADD ? (U)((U)x + (U)y) : (U)((U)x * (U)y));                                 \
    memcpy(dst, &x, sizeof x);                                                                     \
  } while (0)
#define RED_FLT(T)                                                                                 \
  do {                                                                                             \
    T x, y;                                                                                        \
    memcpy(&x, dst, sizeof x);                                                                     \
    memcpy(&y, src, sizeof y);                                                                     \
    x = red == RED_ADD ? x + y : x * y;                                                            \
    memcpy(dst, &x, sizeof x);                                                                     \
  } while (0)
static void reduce_into(inferd_dtype t, int red, char *dst, const char *src) {
  switch (t) {
  case INFERD_TYPE_FP32: RED_FLT(float); break;
  case INFERD_TYPE_FP64: RED_FLT(double); break;
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16: {
    uint16_t x, y;
    memcpy(&x, dst, 2);
    memcpy(&y, src, 2);
    bool h = t == INFERD_TYPE_FP16;
    float a = h ? fp16_to_float(x) : bf16_to_float(x), b = h ? fp16_to_float(y) : bf16_to_float(y);
    float r = red == RED_ADD ? a + b : a * b;
    x = h ? float_to_fp16(r) : float_to_bf16(r);
    memcpy(dst, &x, 2);
    break;
  }
  case INFERD_TYPE_BOOL: *(uint8_t *)dst = red == RED_ADD ? (*dst || *src) : (*dst && *src); break;
  case INFERD_TYPE_INT8: RED_INT(int8_t, uint32_t); break;
  case INFERD_TYPE_UINT8: RED_INT(uint8_t, uint32_t); break;
  case INFERD_TYPE_INT16: RED_INT(int16_t, uint32_t); break;
  case INFERD_TYPE_UINT16: RED_INT(uint16_t, uint32_t); break;
  case INFERD_TYPE_INT32: RED_INT(int32_t, uint32_t); break;
  case INFERD_TYPE_UINT32: RED_INT(uint32_t, uint32_t); break;
  case INFERD_TYPE_INT64: RED_INT(int64_t, uint64_t); break;
  case INFERD_TYPE_UINT64: RED_INT(uint64_t, uint64_t); break;
  default: break;
  }
}
#undef RED_INT
#undef RED_FLT

typedef struct scatter_attr {
  int64_t axis;
  int reduction;
} scatter_attr;

/* ScatterElements-16 and ScatterND-16 take a reduction; earlier versions
 * and Scatter only replace. */
static int scatter_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  scatter_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_int(p, "axis", 0, &at->axis, e))) return rc;
  if (n->since < 16 && onnx_attr_find(p, "reduction"))
    return err_set(e, -EINVAL, "attribute 'reduction' needs opset 16");
  return onnx_attr_enum(p, "reduction", reductions, 3, RED_NONE, &at->reduction, e);
}

static int scatter_elem(void *ctx, int64_t i, int64_t k, err *e) {
  copy_ctx *c = ctx;
  if (c->reduction == RED_NONE)
    onnx_copy_elem(c->dst + (size_t)k * c->es, c->src + (size_t)i * c->es, c->es);
  else
    reduce_into(c->dtype, c->reduction, c->dst + (size_t)k * c->es, c->src + (size_t)i * c->es);
  return 0;
}

static int scatter_elements_infer(const onnx_node *n, const onnx_tensor *const *in,
                                  onnx_tensor *const *out, err *e) {
  const onnx_tensor *x = in[0], *ix = in[1], *u = in[2];
  char a[96], b[96];
  int axis, rc;
  if ((rc = onnx_fixed_size(x, e)) ||
      (rc = onnx_axis(((const scatter_attr *)n->attr)->axis, x->ndim, false, &axis, e)) ||
      (rc = elements_check(x, ix, axis, e)))
    return rc;
  bool ok = u->dtype == x->dtype && u->ndim == ix->ndim;
  for (int d = 0; ok && d < ix->ndim; d++)
    ok = u->dims[d] == ix->dims[d];
  if (!ok)
    return err_set(e, -EINVAL, "updates are %s %s; they must be %s shaped like the indices %s",
                   dtype_name(u->dtype), onnx_shape_str(a, u), dtype_name(x->dtype),
                   onnx_shape_str(b, ix));
  onnx_tensor_like(out[0], x);
  return 0;
}

static int scatter_elements_run(const onnx_node *n, const onnx_tensor *const *in,
                                onnx_tensor *const *out, err *e) {
  const scatter_attr *at = n->attr;
  int axis = (int)(at->axis < 0 ? at->axis + in[0]->ndim : at->axis);
  if (out[0]->data != in[0]->data && onnx_tensor_bytes(out[0]))
    memcpy(out[0]->data, in[0]->data, onnx_tensor_bytes(out[0]));
  copy_ctx c = {out[0]->data, in[2]->data, dtype_size(in[0]->dtype), at->reduction, in[0]->dtype};
  /* Scatter-9 predates negative indices */
  bool negative_ok = !(strcmp(n->op->name, "Scatter") == 0 && n->since < 11);
  return elements_walk(in[0], in[1], axis, negative_ok, scatter_elem, &c, e);
}

static const onnx_op scatter_elements = {.name = "ScatterElements",
                                         .domain = "",
                                         .min_inputs = 3,
                                         .max_inputs = 3,
                                         .min_outputs = 1,
                                         .max_outputs = 1,
                                         .init = scatter_init,
                                         .infer = scatter_elements_infer,
                                         .run = scatter_elements_run};
static const onnx_op scatter = {.name = "Scatter",
                                .domain = "",
                                .min_inputs = 3,
                                .max_inputs = 3,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .init = scatter_init,
                                .infer = scatter_elements_infer,
                                .run = scatter_elements_run};

/* ---- GatherND, ScatterND ------------------------------------------------ */

typedef struct gathernd_attr {
  int64_t batch_dims;
} gathernd_attr;

static int gathernd_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  gathernd_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_int(p, "batch_dims", 0, &at->batch_dims, e))) return rc;
  if (at->batch_dims < 0) return err_set(e, -EINVAL, "batch_dims must not be negative");
  return 0;
}

static int gathernd_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  const onnx_tensor *x = in[0], *ix = in[1];
  int64_t b = ((const gathernd_attr *)n->attr)->batch_dims;
  char sa[96], sb[96];
  int rc;
  if ((rc = onnx_fixed_size(x, e)) || (rc = index_type(ix, "indices", e))) return rc;
  int r = x->ndim, q = ix->ndim;
  if (r < 1 || q < 1) return err_set(e, -EINVAL, "data and indices must have rank >= 1");
  if (b >= q || b >= r)
    return err_set(e, -EINVAL, "batch_dims %lld must be below both ranks (%d, %d)", (long long)b, r,
                   q);
  int64_t k = ix->dims[q - 1];
  if (k < 1 || k > r - b)
    return err_set(e, -EINVAL, "the indices' last dimension %lld must be in [1, %lld]",
                   (long long)k, (long long)(r - b));
  for (int d = 0; d < b; d++)
    if (x->dims[d] != ix->dims[d])
      return err_set(e, -EINVAL, "the batch dimensions of data %s and indices %s differ",
                     onnx_shape_str(sa, x), onnx_shape_str(sb, ix));
  int64_t dims[2 * ONNX_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < q - 1; d++)
    dims[nd++] = ix->dims[d];
  for (int d = (int)(b + k); d < r; d++)
    dims[nd++] = x->dims[d];
  if (nd > ONNX_MAX_DIMS) return err_set(e, -ENOTSUP, "the output would have %d dimensions", nd);
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], nd, dims);
  return 0;
}

/* The element offset, within one batch of data, of the slice that index
 * tuple t (k values) addresses; dims and strides from the first indexed
 * axis (batch_dims) on. */
static int nd_offset(const onnx_tensor *ix, int64_t t, int64_t k, const int64_t *dims,
                     const int64_t *st, int first_axis, int64_t *off, err *e) {
  int64_t o = 0;
  for (int64_t j = 0; j < k; j++) {
    int64_t v = index_at(ix, t * k + j);
    int rc = fix_index(&v, dims[j], true, t * k + j, first_axis + (int)j, e);
    if (rc) return rc;
    o += v * st[j];
  }
  *off = o;
  return 0;
}

static int gathernd_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_tensor *x = in[0], *ix = in[1];
  int b = (int)((const gathernd_attr *)n->attr)->batch_dims, r = x->ndim, q = ix->ndim;
  int64_t k = ix->dims[q - 1], xs[ONNX_MAX_DIMS];
  onnx_strides(x->dims, r, xs);
  size_t es = dtype_size(x->dtype);
  int64_t nbatch = onnx_dims_product(x->dims, 0, b);
  int64_t block = onnx_dims_product(x->dims, b, r);
  int64_t per = onnx_dims_product(ix->dims, b, q - 1);
  size_t slice = (size_t)onnx_dims_product(x->dims, b + (int)k, r) * es;
  char *dst = out[0]->data;
  for (int64_t bt = 0; bt < nbatch; bt++)
    for (int64_t i = 0; i < per; i++) {
      int64_t off;
      int rc = nd_offset(ix, bt * per + i, k, x->dims + b, xs + b, b, &off, e);
      if (rc) return rc;
      if (slice)
        memcpy(dst + (size_t)(bt * per + i) * slice,
               (const char *)x->data + (size_t)(bt * block + off) * es, slice);
    }
  return 0;
}

static const onnx_op gathernd = {.name = "GatherND",
                                 .domain = "",
                                 .min_inputs = 2,
                                 .max_inputs = 2,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = gathernd_init,
                                 .infer = gathernd_infer,
                                 .run = gathernd_run};

static int scatternd_infer(const onnx_node *n, const onnx_tensor *const *in,
                           onnx_tensor *const *out, err *e) {
  const onnx_tensor *x = in[0], *ix = in[1], *u = in[2];
  char sa[96], sb[96], sc[96];
  int rc;
  if ((rc = onnx_fixed_size(x, e)) || (rc = index_type(ix, "indices", e))) return rc;
  int r = x->ndim, q = ix->ndim;
  if (r < 1 || q < 1) return err_set(e, -EINVAL, "data and indices must have rank >= 1");
  int64_t k = ix->dims[q - 1];
  if (k > r)
    return err_set(e, -EINVAL, "the indices' last dimension %lld exceeds the data's rank %d",
                   (long long)k, r);
  bool ok = u->dtype == x->dtype && u->ndim == q - 1 + r - k;
  for (int d = 0; ok && d < q - 1; d++)
    ok = u->dims[d] == ix->dims[d];
  for (int d = (int)k; ok && d < r; d++)
    ok = u->dims[q - 1 + d - k] == x->dims[d];
  if (!ok)
    return err_set(e, -EINVAL, "updates %s %s do not match data %s %s and indices %s",
                   dtype_name(u->dtype), onnx_shape_str(sa, u), dtype_name(x->dtype),
                   onnx_shape_str(sb, x), onnx_shape_str(sc, ix));
  onnx_tensor_like(out[0], x);
  return 0;
}

static int scatternd_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const scatter_attr *at = n->attr;
  const onnx_tensor *x = in[0], *ix = in[1], *u = in[2];
  int r = x->ndim, q = ix->ndim;
  int64_t k = ix->dims[q - 1], xs[ONNX_MAX_DIMS];
  onnx_strides(x->dims, r, xs);
  size_t es = dtype_size(x->dtype);
  if (out[0]->data != x->data && onnx_tensor_bytes(out[0]))
    memcpy(out[0]->data, x->data, onnx_tensor_bytes(out[0]));
  int64_t nupd = onnx_dims_product(ix->dims, 0, q - 1);
  int64_t slice = onnx_dims_product(x->dims, (int)k, r);
  char *dst = out[0]->data;
  const char *src = u->data;
  for (int64_t t = 0; t < nupd; t++) {
    int64_t off;
    int rc = nd_offset(ix, t, k, x->dims, xs, 0, &off, e);
    if (rc) return rc;
    char *d = dst + (size_t)off * es;
    const char *s = src + (size_t)(t * slice) * es;
    if (at->reduction == RED_NONE) {
      if (slice) memcpy(d, s, (size_t)slice * es);
    } else {
      for (int64_t i = 0; i < slice; i++)
        reduce_into(x->dtype, at->reduction, d + (size_t)i * es, s + (size_t)i * es);
    }
  }
  return 0;
}

static const onnx_op scatternd = {.name = "ScatterND",
                                  .domain = "",
                                  .min_inputs = 3,
                                  .max_inputs = 3,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = scatter_init,
                                  .infer = scatternd_infer,
                                  .run = scatternd_run};

/* ---- OneHot ------------------------------------------------------------- */

typedef struct onehot_attr {
  int64_t axis;
} onehot_attr;

static int onehot_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  onehot_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  return at ? onnx_attr_int(p, "axis", -1, &at->axis, e) : -ENOMEM;
}

/* The depth: a known numeric scalar (or one-element tensor), truncated. */
static int onehot_depth(const onnx_tensor *d, int64_t *out, err *e) {
  if (!onnx_dtype_is_numeric(d->dtype) || d->count != 1 || d->ndim > 1)
    return err_set(e, -EINVAL, "depth must be a numeric scalar");
  if (!d->data) return onnx_not_known("depth", e);
  double v = onnx_load_double(d, 0);
  if (!(v >= 1 && v <= 1e12)) return err_set(e, -EINVAL, "depth %g is out of range", v);
  *out = (int64_t)v;
  return 0;
}

static int onehot_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_tensor *ix = in[0], *v = in[2];
  int64_t depth;
  int axis, rc;
  if (!onnx_dtype_is_numeric(ix->dtype)) return err_set(e, -EINVAL, "indices must be numeric");
  if ((rc = onnx_fixed_size(v, e)) || (rc = onehot_depth(in[1], &depth, e))) return rc;
  if (v->count != 2) return err_set(e, -EINVAL, "values must hold two elements (off, on)");
  if (ix->ndim + 1 > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "the output would have %d dimensions", ix->ndim + 1);
  if ((rc = onnx_axis(((const onehot_attr *)n->attr)->axis, ix->ndim + 1, false, &axis, e)))
    return rc;
  int64_t dims[ONNX_MAX_DIMS];
  for (int d = 0, k = 0; d <= ix->ndim; d++)
    dims[d] = d == axis ? depth : ix->dims[k++];
  out[0]->dtype = v->dtype;
  onnx_tensor_set_shape(out[0], ix->ndim + 1, dims);
  return 0;
}

/* Every element off, then on at (outer, index, inner) for each index in
 * [-depth, depth); indices outside leave their row off. */
static int onehot_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *ix = in[0], *o = out[0];
  int64_t a = ((const onehot_attr *)n->attr)->axis, depth;
  int axis = (int)(a < 0 ? a + o->ndim : a), rc;
  if ((rc = onehot_depth(in[1], &depth, e))) return rc;
  size_t es = dtype_size(o->dtype);
  const char *off = in[2]->data, *on = (const char *)in[2]->data + es;
  char *dst = o->data;
  for (int64_t i = 0; i < o->count; i++)
    onnx_copy_elem(dst + (size_t)i * es, off, es);
  int64_t inner = onnx_dims_product(ix->dims, axis, ix->ndim);
  for (int64_t i = 0; i < ix->count; i++) {
    double v = onnx_load_double(ix, i);
    if (!(v > -(double)depth - 1 && v < (double)depth)) continue;
    int64_t k = (int64_t)v;
    if (k < 0) k += depth;
    if (k < 0 || k >= depth) continue;
    int64_t outer = i / inner, rest = i % inner;
    onnx_copy_elem(dst + (size_t)((outer * depth + k) * inner + rest) * es, on, es);
  }
  return 0;
}

static const onnx_op onehot = {.name = "OneHot",
                               .domain = "",
                               .min_inputs = 3,
                               .max_inputs = 3,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = onehot_init,
                               .infer = onehot_infer,
                               .run = onehot_run,
                               .value_inputs = 1u << 1};

/* ---- Compress ----------------------------------------------------------- */

typedef struct compress_attr {
  bool has_axis;
  int64_t axis;
} compress_attr;

static int compress_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  compress_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  if (!at) return -ENOMEM;
  at->has_axis = onnx_attr_find(p, "axis") != NULL;
  return onnx_attr_int(p, "axis", 0, &at->axis, e);
}

/* The axis compressed (-1: the flattened input), its length, and how
 * many of its entries the condition keeps. */
static int compress_plan(const onnx_node *n, const onnx_tensor *const *in, int *axis, int64_t *dim,
                         int64_t *kept, err *e) {
  const compress_attr *at = n->attr;
  const onnx_tensor *x = in[0], *c = in[1];
  int rc;
  if (c->dtype != INFERD_TYPE_BOOL || c->ndim != 1)
    return err_set(e, -EINVAL, "condition must be a 1-D BOOL tensor");
  if (!c->data) return onnx_not_known("condition", e);
  *axis = -1;
  *dim = x->count;
  if (at->has_axis) {
    if ((rc = onnx_axis(at->axis, x->ndim, false, axis, e))) return rc;
    *dim = x->dims[*axis];
  }
  const uint8_t *cond = c->data;
  *kept = 0;
  for (int64_t i = 0; i < c->count; i++) {
    if (!cond[i]) continue;
    if (i >= *dim)
      return err_set(e, -EINVAL, "condition[%lld] is true beyond the axis' %lld entries",
                     (long long)i, (long long)*dim);
    ++*kept;
  }
  return 0;
}

static int compress_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  int axis, rc;
  int64_t dim = 0, kept = 0;
  if ((rc = onnx_fixed_size(in[0], e)) || (rc = compress_plan(n, in, &axis, &dim, &kept, e)))
    return rc;
  out[0]->dtype = in[0]->dtype;
  if (axis < 0) {
    onnx_tensor_set_shape(out[0], 1, &kept);
    return 0;
  }
  onnx_tensor_set_shape(out[0], in[0]->ndim, in[0]->dims);
  out[0]->dims[axis] = kept;
  onnx_tensor_set_shape(out[0], in[0]->ndim, out[0]->dims);
  return 0;
}

static int compress_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_tensor *x = in[0];
  int axis, rc;
  int64_t dim = 0, kept = 0;
  if ((rc = compress_plan(n, in, &axis, &dim, &kept, e))) return rc;
  size_t es = dtype_size(x->dtype);
  int64_t outer = axis < 0 ? 1 : onnx_dims_product(x->dims, 0, axis);
  size_t inner = (axis < 0 ? 1 : (size_t)onnx_dims_product(x->dims, axis + 1, x->ndim)) * es;
  const uint8_t *cond = in[1]->data;
  int64_t m = in[1]->count < dim ? in[1]->count : dim;
  char *dst = out[0]->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < m; i++)
      if (cond[i]) {
        memcpy(dst, (const char *)x->data + (size_t)(o * dim + i) * inner, inner);
        dst += inner;
      }
  return 0;
}

static const onnx_op compress = {.name = "Compress",
                                 .domain = "",
                                 .min_inputs = 2,
                                 .max_inputs = 2,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = compress_init,
                                 .infer = compress_infer,
                                 .run = compress_run,
                                 .value_inputs = 1u << 1};

/* ---- NonZero ------------------------------------------------------------ */

/* Whether element i is not zero: -0.0 is zero, NaN is not. */
static bool nonzero_at(const onnx_tensor *t, int64_t i) {
  const char *p = (const char *)t->data + (size_t)i * dtype_size(t->dtype);
  switch (t->dtype) {
  case INFERD_TYPE_FP32: {
    float f;
    memcpy(&f, p, 4);
    return f != 0;
  }
  case INFERD_TYPE_FP64: {
    double f;
    memcpy(&f, p, 8);
    return f != 0;
  }
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16: {
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & 0x7fff) != 0;
  }
  default:
    for (size_t b = 0; b < dtype_size(t->dtype); b++)
      if (p[b]) return true;
    return false;
  }
}

static int nonzero_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  int rc = onnx_fixed_size(in[0], e);
  if (rc) return rc;
  if (!in[0]->data) return onnx_not_known("input", e);
  int64_t nnz = 0;
  for (int64_t i = 0; i < in[0]->count; i++)
    nnz += nonzero_at(in[0], i);
  out[0]->dtype = INFERD_TYPE_INT64;
  /* a scalar is treated as a 1-D tensor of one element, as numpy does */
  onnx_tensor_set_shape(out[0], 2, (int64_t[]){in[0]->ndim ? in[0]->ndim : 1, nnz});
  return 0;
}

static int nonzero_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const onnx_tensor *x = in[0];
  int64_t nnz = out[0]->dims[1], c[ONNX_MAX_DIMS] = {0}, k = 0;
  int64_t *o = out[0]->data;
  for (int64_t i = 0; i < x->count; i++) {
    if (nonzero_at(x, i)) {
      if (k == nnz)
        return err_set(e, -EINVAL, "the input differs from the one the plan was made for");
      for (int d = 0; d < x->ndim; d++)
        o[d * nnz + k] = c[d];
      if (x->ndim == 0) o[k] = 0;
      k++;
    }
    for (int d = x->ndim - 1; d >= 0; d--) {
      if (++c[d] < x->dims[d]) break;
      c[d] = 0;
    }
  }
  return 0;
}

static const onnx_op nonzero = {.name = "NonZero",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .infer = nonzero_infer,
                                .run = nonzero_run,
                                .value_inputs = 1u << 0};

/* ---- Trilu -------------------------------------------------------------- */

typedef struct trilu_attr {
  bool upper;
} trilu_attr;

static int trilu_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  trilu_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  return at ? onnx_attr_bool(p, "upper", true, &at->upper, e) : -ENOMEM;
}

static int trilu_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  int rc = onnx_fixed_size(in[0], e);
  if (rc) return rc;
  if (in[0]->ndim < 2) return err_set(e, -EINVAL, "the input must have at least 2 dimensions");
  if (n->n_in > 1 && in[1] && (in[1]->dtype != INFERD_TYPE_INT64 || in[1]->count != 1))
    return err_set(e, -EINVAL, "k must be an INT64 scalar");
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

/* Row i of each matrix keeps columns j with j - i >= k (upper) or
 * j - i <= k (lower): one copied run and one zeroed run per row. */
static int trilu_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const onnx_tensor *x = in[0];
  bool upper = ((const trilu_attr *)n->attr)->upper;
  int64_t rows = x->dims[x->ndim - 2], cols = x->dims[x->ndim - 1];
  int64_t k = n->n_in > 1 && in[1] ? *(const int64_t *)in[1]->data : 0;
  int64_t lim = rows + cols + 1; /* beyond this k changes nothing */
  k = k < -lim ? -lim : k > lim ? lim : k;
  size_t es = dtype_size(x->dtype);
  int64_t mats = onnx_dims_product(x->dims, 0, x->ndim - 2);
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < rows; i++) {
      size_t row = (size_t)((m * rows + i) * cols) * es;
      char *d = (char *)out[0]->data + row;
      const char *s = (const char *)x->data + row;
      int64_t j = upper ? i + k : i + k + 1; /* first kept (upper) or first zeroed (lower) */
      j = j < 0 ? 0 : j > cols ? cols : j;
      if (upper) {
        memset(d, 0, (size_t)j * es);
        memcpy(d + j * es, s + j * es, (size_t)(cols - j) * es);
      } else {
        memcpy(d, s, (size_t)j * es);
        memset(d + j * es, 0, (size_t)(cols - j) * es);
      }
    }
  return 0;
}

static const onnx_op trilu = {.name = "Trilu",
                              .domain = "",
                              .min_inputs = 1,
                              .max_inputs = 2,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = trilu_init,
                              .infer = trilu_infer,
                              .run = trilu_run};

/* ---- Unique ------------------------------------------------------------- */

typedef struct unique_attr {
  bool has_axis, sorted;
  int64_t axis;
} unique_attr;

static int unique_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  unique_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  at->has_axis = onnx_attr_find(p, "axis") != NULL;
  if ((rc = onnx_attr_int(p, "axis", 0, &at->axis, e)) ||
      (rc = onnx_attr_bool(p, "sorted", true, &at->sorted, e)))
    return rc;
  return 0;
}

/* Compares elements a and b of t numerically; NaNs equal one another and
 * sort after every number, as numpy's unique does. */
static int elem_cmp(const onnx_tensor *t, int64_t a, int64_t b) {
  switch (t->dtype) {
  case INFERD_TYPE_FP32:
  case INFERD_TYPE_FP64:
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16: {
    double x = onnx_load_double(t, a), y = onnx_load_double(t, b);
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x > y) - (x < y);
  }
  case INFERD_TYPE_UINT64: {
    uint64_t x = ((const uint64_t *)t->data)[a], y = ((const uint64_t *)t->data)[b];
    return (x > y) - (x < y);
  }
  case INFERD_TYPE_INT64: {
    int64_t x = ((const int64_t *)t->data)[a], y = ((const int64_t *)t->data)[b];
    return (x > y) - (x < y);
  }
  default: { /* every other integer is exact in a double */
    double x = onnx_load_double(t, a), y = onnx_load_double(t, b);
    return (x > y) - (x < y);
  }
  }
}

/* The input seen as dim slices of outer x inner elements each (the
 * flattened input: count slices of one element). */
typedef struct unique_view {
  const onnx_tensor *x;
  int64_t dim, outer, inner;
} unique_view;

static int slice_cmp(const unique_view *v, int64_t a, int64_t b) {
  for (int64_t o = 0; o < v->outer; o++)
    for (int64_t i = 0; i < v->inner; i++) {
      int c = elem_cmp(v->x, (o * v->dim + a) * v->inner + i, (o * v->dim + b) * v->inner + i);
      if (c) return c;
    }
  return 0;
}

/* Stable merge sort of idx[0..n) by slice value (tmp: n more). Stability
 * puts each group's first occurrence first. */
static void merge_sort(const unique_view *v, int64_t *idx, int64_t *tmp, int64_t n) {
  for (int64_t w = 1; w < n; w *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * w) {
      int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        tmp[k++] = slice_cmp(v, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
      while (i < mid)
        tmp[k++] = idx[i++];
      while (j < hi)
        tmp[k++] = idx[j++];
    }
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
  }
}

/* The groups of equal slices, in output order: first[g] the first
 * occurrence, count[g] how many, and group_of[i] the output position of
 * slice i. Returns the number of groups, or a negative error. The scratch
 * (6 x dim) is allocated here: see the file comment. */
typedef struct unique_result {
  int64_t n, *first, *count, *group_of, *mem;
} unique_result;

static int unique_compute(const onnx_node *n, const onnx_tensor *x, unique_result *u, err *e) {
  const unique_attr *at = n->attr;
  unique_view v = {x, x->count, 1, 1};
  int axis, rc;
  if (at->has_axis) {
    if ((rc = onnx_axis(at->axis, x->ndim, false, &axis, e))) return rc;
    v.dim = x->dims[axis];
    v.outer = onnx_dims_product(x->dims, 0, axis);
    v.inner = onnx_dims_product(x->dims, axis + 1, x->ndim);
  }
  int64_t m = v.dim;
  int64_t *mem = malloc(((size_t)m * 6 + 1) * sizeof *mem);
  if (!mem) return err_set(e, -ENOMEM, "out of memory for Unique's %lld slices", (long long)m);
  int64_t *order = mem, *tmp = mem + m, *gid = mem + 2 * m, *first = mem + 3 * m,
          *count = mem + 4 * m, *pos = mem + 5 * m;
  for (int64_t i = 0; i < m; i++)
    order[i] = i;
  merge_sort(&v, order, tmp, m);
  int64_t g = 0;
  for (int64_t s = 0; s < m; s++) {
    if (s == 0 || slice_cmp(&v, order[s - 1], order[s]) != 0) {
      first[g] = order[s];
      count[g] = 0;
      g++;
    }
    gid[order[s]] = g - 1;
    count[g - 1]++;
  }
  if (at->sorted) {
    for (int64_t i = 0; i < g; i++)
      pos[i] = i;
  } else { /* groups in the order of their first occurrence */
    int64_t next = 0;
    for (int64_t i = 0; i < m; i++)
      if (first[gid[i]] == i) pos[gid[i]] = next++;
  }
  /* reorder first and count by output position; tmp and order are free */
  for (int64_t i = 0; i < g; i++) {
    tmp[pos[i]] = first[i];
    order[pos[i]] = count[i];
  }
  memcpy(first, tmp, (size_t)g * sizeof *first);
  memcpy(count, order, (size_t)g * sizeof *count);
  for (int64_t i = 0; i < m; i++)
    gid[i] = pos[gid[i]];
  *u = (unique_result){g, first, count, gid, mem};
  return 0;
}

static int unique_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const unique_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  unique_result u;
  int rc = onnx_fixed_size(x, e);
  if (rc) return rc;
  if (!x->data) return onnx_not_known("input", e);
  if ((rc = unique_compute(n, x, &u, e))) return rc;
  free(u.mem);
  if (at->has_axis) {
    int axis = (int)(at->axis < 0 ? at->axis + x->ndim : at->axis);
    onnx_tensor_like(out[0], x);
    out[0]->dims[axis] = u.n;
    onnx_tensor_set_shape(out[0], x->ndim, out[0]->dims);
  } else {
    out[0]->dtype = x->dtype;
    onnx_tensor_set_shape(out[0], 1, &u.n);
  }
  int64_t m = at->has_axis ? x->dims[at->axis < 0 ? at->axis + x->ndim : at->axis] : x->count;
  for (int k = 1; k < n->n_out; k++) {
    if (!out[k]) continue;
    out[k]->dtype = INFERD_TYPE_INT64;
    onnx_tensor_set_shape(out[k], 1, k == 2 ? &m : &u.n);
  }
  return 0;
}

static int unique_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const unique_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  unique_result u;
  int rc = unique_compute(n, x, &u, e);
  if (rc) return rc;
  size_t es = dtype_size(x->dtype);
  int64_t dim = x->count, outer = 1, inner = 1, planned = out[0]->dims[0];
  if (at->has_axis) {
    int axis = (int)(at->axis < 0 ? at->axis + x->ndim : at->axis);
    dim = x->dims[axis];
    outer = onnx_dims_product(x->dims, 0, axis);
    inner = onnx_dims_product(x->dims, axis + 1, x->ndim);
    planned = out[0]->dims[axis];
  }
  if (u.n != planned) { /* the outputs were sized for other data */
    free(u.mem);
    return err_set(e, -EINVAL, "the input differs from the one the plan was made for");
  }
  size_t run = (size_t)inner * es;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t g = 0; g < u.n; g++)
      memcpy((char *)out[0]->data + (size_t)(o * u.n + g) * run,
             (const char *)x->data + (size_t)(o * dim + u.first[g]) * run, run);
  if (n->n_out > 1 && out[1]) memcpy(out[1]->data, u.first, (size_t)u.n * sizeof(int64_t));
  if (n->n_out > 2 && out[2]) memcpy(out[2]->data, u.group_of, (size_t)dim * sizeof(int64_t));
  if (n->n_out > 3 && out[3]) memcpy(out[3]->data, u.count, (size_t)u.n * sizeof(int64_t));
  free(u.mem);
  return 0;
}

static const onnx_op unique = {.name = "Unique",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .min_outputs = 1,
                               .max_outputs = 4,
                               .init = unique_init,
                               .infer = unique_infer,
                               .run = unique_run,
                               .value_inputs = 1u << 0};

/* ---- EyeLike ------------------------------------------------------------ */

typedef struct eyelike_attr {
  inferd_dtype dtype; /* INVALID: the input's */
  int64_t k;
} eyelike_attr;

static int eyelike_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  eyelike_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int64_t dt;
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_int(p, "k", 0, &at->k, e)) || (rc = onnx_attr_int(p, "dtype", 0, &dt, e)))
    return rc;
  at->dtype = INFERD_TYPE_INVALID;
  if (onnx_attr_find(p, "dtype")) {
    at->dtype = onnx_dtype_from_proto((int32_t)dt);
    size_t es = dtype_size(at->dtype);
    if (!(es == 1 || es == 2 || es == 4 || es == 8) || dt != (int32_t)dt)
      return err_set(e, -ENOTSUP, "dtype %lld is not supported", (long long)dt);
  }
  return 0;
}

static int eyelike_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const eyelike_attr *at = n->attr;
  if (in[0]->ndim != 2) return err_set(e, -EINVAL, "the input must be 2-D");
  onnx_tensor_like(out[0], in[0]);
  if (at->dtype != INFERD_TYPE_INVALID) out[0]->dtype = at->dtype;
  return onnx_fixed_size(out[0], e);
}

/* Zeros with ones on the k-th diagonal. Reads only the input's shape. */
static int eyelike_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const onnx_tensor *o = out[0];
  int64_t k = ((const eyelike_attr *)n->attr)->k, rows = o->dims[0], cols = o->dims[1];
  size_t es = dtype_size(o->dtype);
  char one[8] = {0};
  switch (o->dtype) {
  case INFERD_TYPE_FP32: memcpy(one, &(float){1}, 4); break;
  case INFERD_TYPE_FP64: memcpy(one, &(double){1}, 8); break;
  case INFERD_TYPE_FP16: memcpy(one, &(uint16_t){0x3c00}, 2); break;
  case INFERD_TYPE_BF16: memcpy(one, &(uint16_t){0x3f80}, 2); break;
  default: one[0] = 1; break; /* integers and bool, little-endian */
  }
  if (onnx_tensor_bytes(o)) memset(o->data, 0, onnx_tensor_bytes(o));
  for (int64_t i = 0; i < rows; i++) {
    if (k > cols || k < -rows) break;
    int64_t j = i + k;
    if (j >= 0 && j < cols) onnx_copy_elem((char *)o->data + (size_t)(i * cols + j) * es, one, es);
  }
  return 0;
}

static const onnx_op eyelike = {.name = "EyeLike",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .flags = ONNX_OP_SHAPE_ONLY,
                                .init = eyelike_init,
                                .infer = eyelike_infer,
                                .run = eyelike_run};

/* ---- registry rows ------------------------------------------------------ */

/* One line per operator, its versions in order. */
/* clang-format off */
const onnx_op_row onnx_ops_index[] = {
    {&gather, 1}, {&gather, 11}, {&gather, 13},
    {&gather_elements, 11}, {&gather_elements, 13},
    {&gathernd, 11}, {&gathernd, 12}, {&gathernd, 13},
    {&scatter, 9}, {&scatter, 11},
    {&scatter_elements, 11}, {&scatter_elements, 13}, {&scatter_elements, 16},
    {&scatternd, 11}, {&scatternd, 13}, {&scatternd, 16},
    {&onehot, 9}, {&onehot, 11},
    {&compress, 9}, {&compress, 11},
    {&nonzero, 9}, {&nonzero, 13},
    {&trilu, 14},
    {&unique, 11},
    {&eyelike, 9},
    {NULL, 0},
};
/* clang-format on */
