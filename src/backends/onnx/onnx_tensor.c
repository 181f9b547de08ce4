/* backends/onnx/onnx_tensor.c: ONNX data types and TensorProto decoding,
 * node attributes, and the shape arithmetic that operators share (axes,
 * numpy broadcasting, and the broadcasting walker of onnx_kernel.h with the
 * binary operators' run-by-run apply that rides on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; this backend copies it as it is"
#endif

/* ---- data types --------------------------------------------------------- */

/* TensorProto.DataType -> inferd_dtype, indexed by the ONNX number. */
static const inferd_dtype from_proto[] = {
    [ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED] = INFERD_TYPE_INVALID,
    [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT] = INFERD_TYPE_FP32,
    [ONNX__TENSOR_PROTO__DATA_TYPE__UINT8] = INFERD_TYPE_UINT8,
    [ONNX__TENSOR_PROTO__DATA_TYPE__INT8] = INFERD_TYPE_INT8,
    [ONNX__TENSOR_PROTO__DATA_TYPE__UINT16] = INFERD_TYPE_UINT16,
    [ONNX__TENSOR_PROTO__DATA_TYPE__INT16] = INFERD_TYPE_INT16,
    [ONNX__TENSOR_PROTO__DATA_TYPE__INT32] = INFERD_TYPE_INT32,
    [ONNX__TENSOR_PROTO__DATA_TYPE__INT64] = INFERD_TYPE_INT64,
    [ONNX__TENSOR_PROTO__DATA_TYPE__STRING] = INFERD_TYPE_BYTES,
    [ONNX__TENSOR_PROTO__DATA_TYPE__BOOL] = INFERD_TYPE_BOOL,
    [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16] = INFERD_TYPE_FP16,
    [ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE] = INFERD_TYPE_FP64,
    [ONNX__TENSOR_PROTO__DATA_TYPE__UINT32] = INFERD_TYPE_UINT32,
    [ONNX__TENSOR_PROTO__DATA_TYPE__UINT64] = INFERD_TYPE_UINT64,
    [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64] = INFERD_TYPE_INVALID,
    [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128] = INFERD_TYPE_INVALID,
    [ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16] = INFERD_TYPE_BF16,
};
_Static_assert(sizeof from_proto / sizeof from_proto[0] ==
                   ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 + 1,
               "from_proto must list every TensorProto.DataType of onnx.proto");

inferd_dtype onnx_dtype_from_proto(int32_t t) {
  if (t < 0 || (size_t)t >= sizeof from_proto / sizeof from_proto[0]) return INFERD_TYPE_INVALID;
  return from_proto[t];
}

int32_t onnx_dtype_to_proto(inferd_dtype t) {
  for (size_t i = 1; i < sizeof from_proto / sizeof from_proto[0]; i++)
    if (from_proto[i] == t && t != INFERD_TYPE_INVALID) return (int32_t)i;
  return ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED;
}

/* ---- tensors ------------------------------------------------------------ */

size_t onnx_tensor_bytes(const onnx_tensor *t) { return (size_t)t->count * dtype_size(t->dtype); }

void onnx_tensor_set_shape(onnx_tensor *out, int ndim, const int64_t *dims) {
  out->ndim = ndim;
  if (ndim > 0) memmove(out->dims, dims, (size_t)ndim * sizeof dims[0]);
  out->count = shape_elements(out->dims, ndim);
}

void onnx_tensor_like(onnx_tensor *out, const onnx_tensor *in) {
  out->dtype = in->dtype;
  onnx_tensor_set_shape(out, in->ndim, in->dims);
}

const char *onnx_shape_str(char buf[static 96], const onnx_tensor *t) {
  shape_format(buf, 96, t->dims, t->ndim);
  return buf;
}

int onnx_fixed_size(const onnx_tensor *t, err *e) {
  size_t es = dtype_size(t->dtype);
  if (es == 1 || es == 2 || es == 4 || es == 8) return 0;
  return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(t->dtype));
}

int onnx_not_known(const char *what, err *e) {
  return err_set(e, -ENOTSUP,
                 "the %s input must be known when the plan is built (a constant, computed from "
                 "shapes, or a small graph input)",
                 what);
}

int64_t onnx_dims_product(const int64_t *dims, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; i++)
    n *= dims[i];
  return n;
}

void onnx_strides(const int64_t *dims, int nd, int64_t *st) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

int onnx_axis(int64_t axis, int rank, bool end_ok, int *out, err *e) {
  int64_t hi = end_ok ? rank : rank - 1;
  if (axis < -(int64_t)rank || axis > hi)
    return err_set(e, -EINVAL, "axis %lld is out of range for rank %d", (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return 0;
}

int onnx_broadcast_shape(const onnx_tensor *a, const onnx_tensor *b, onnx_tensor *out, err *e) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t dims[ONNX_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[96], sb[96];
      return err_set(e, -EINVAL, "shapes %s and %s do not broadcast", onnx_shape_str(sa, a),
                     onnx_shape_str(sb, b));
    }
    dims[i] = da == 1 ? db : da;
  }
  onnx_tensor_set_shape(out, nd, dims);
  return 0;
}

/* Strides of each input along each output dimension (0 where it
 * broadcasts), then the output's dims of size 1 dropped and neighbours
 * merged where every input steps through them alike (onnx_kernel.h). */
void onnx_bcast_init(onnx_bcast *bc, int nin, const onnx_tensor *const *in, const onnx_tensor *o) {
  int64_t s[ONNX_BCAST_MAX_IN][ONNX_MAX_DIMS], stride[ONNX_BCAST_MAX_IN];
  for (int k = 0; k < nin; k++)
    stride[k] = 1;
  for (int i = o->ndim - 1; i >= 0; i--)
    for (int k = 0; k < nin; k++) {
      int ik = i - (o->ndim - in[k]->ndim);
      int64_t d = ik >= 0 ? in[k]->dims[ik] : 1;
      s[k][i] = d == 1 ? 0 : stride[k];
      stride[k] *= d;
    }
  bc->nd = 0;
  bc->nin = nin;
  for (int i = 0; i < o->ndim; i++) {
    if (o->dims[i] == 1) continue;
    int j = bc->nd - 1;
    bool merge = j >= 0;
    for (int k = 0; k < nin && merge; k++)
      merge = bc->s[k][j] == s[k][i] * o->dims[i];
    if (!merge) j = bc->nd++;
    bc->n[j] = merge ? bc->n[j] * o->dims[i] : o->dims[i];
    for (int k = 0; k < nin; k++)
      bc->s[k][j] = s[k][i];
  }
  if (bc->nd == 0) { /* a single element */
    bc->nd = 1;
    bc->n[0] = 1;
    for (int k = 0; k < nin; k++)
      bc->s[k][0] = 1;
  }
}

/* Copies the first element of a run of n elements of es bytes over the
 * rest of it. */
static void fill_run(char *p, size_t es, int64_t n) {
  for (int64_t i = 1; i < n; i++)
    memcpy(p + (size_t)i * es, p, es);
}

void onnx_binary_apply(const onnx_bin_kernels *k, const onnx_tensor *a, const onnx_tensor *b,
                       onnx_tensor *o) {
  if (o->count == 0) return;
  if (a->count == o->count && b->count == o->count) {
    k->vv(o->data, a->data, b->data, o->count);
    return;
  }
  if (a->count == o->count && b->count == 1) {
    k->vs(o->data, a->data, b->data, o->count);
    return;
  }
  if (a->count == 1 && b->count == o->count) {
    k->sv(o->data, a->data, b->data, o->count);
    return;
  }
  size_t ea = dtype_size(a->dtype), eb = dtype_size(b->dtype), eo = dtype_size(o->dtype);
  const onnx_tensor *in[2] = {a, b};
  onnx_bcast bc;
  onnx_bcast_init(&bc, 2, in, o);
  int last = bc.nd - 1;
  int64_t run = bc.n[last];
  bool va = bc.s[0][last] != 0, vb = bc.s[1][last] != 0;
  int64_t idx[ONNX_MAX_DIMS] = {0}, off[ONNX_BCAST_MAX_IN] = {0};
  for (int64_t done = 0; done < o->count; done += run) {
    char *po = (char *)o->data + (size_t)done * eo;
    const char *pa = (const char *)a->data + (size_t)off[0] * ea;
    const char *pb = (const char *)b->data + (size_t)off[1] * eb;
    if (va && vb)
      k->vv(po, pa, pb, run);
    else if (va)
      k->vs(po, pa, pb, run);
    else if (vb)
      k->sv(po, pa, pb, run);
    else {
      k->vv(po, pa, pb, 1);
      fill_run(po, eo, run);
    }
    onnx_bcast_next(&bc, idx, off);
  }
}

/* Room for n bytes (at least one, so that data is never NULL), 64-byte
 * aligned, from a or the heap. */
static void *tensor_alloc(arena *a, size_t n) {
  if (n == 0) n = 1;
  if (a) return arena_alloc_aligned(a, n, 64);
  return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

/* Copies n values of a repeated proto field, each narrowed to the element
 * type (int32_data holds int8..uint16, bool and the 16-bit floats). */
#define NARROW(T, src)                                                                             \
  do {                                                                                             \
    T *d = t->data;                                                                                \
    for (size_t i = 0; i < n; i++)                                                                 \
      d[i] = (T)(src)[i];                                                                          \
  } while (0)

int onnx_tensor_decode(const Onnx__TensorProto *tp, arena *a, onnx_tensor *t, err *e) {
  const char *name = tp->name ? tp->name : "";
  memset(t, 0, sizeof *t);
  t->dtype = onnx_dtype_from_proto(tp->data_type);
  if (t->dtype == INFERD_TYPE_INVALID)
    return err_set(e, -ENOTSUP, "tensor '%s': data type %d is not supported", name,
                   (int)tp->data_type);
  if (tp->n_dims > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "tensor '%s' has %zu dimensions; at most %d are supported", name,
                   tp->n_dims, ONNX_MAX_DIMS);
  for (size_t i = 0; i < tp->n_dims; i++) {
    if (tp->dims[i] < 0) return err_set(e, -EINVAL, "tensor '%s' has a negative dimension", name);
    t->dims[i] = tp->dims[i];
  }
  t->ndim = (int)tp->n_dims;
  t->count = shape_elements(t->dims, t->ndim);
  if (t->count < 0) return err_set(e, -EINVAL, "tensor '%s' is too large", name);
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return err_set(e, -ENOTSUP, "tensor '%s' keeps its data in an external file (not supported)",
                   name);
  if (tp->segment) return err_set(e, -ENOTSUP, "tensor '%s' is segmented (not supported)", name);
  size_t n = (size_t)t->count;

  if (t->dtype == INFERD_TYPE_BYTES) {
    if (tp->n_string_data != n)
      return err_set(e, -EINVAL, "tensor '%s' has %zu strings for %zu elements", name,
                     tp->n_string_data, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
      total += 4 + tp->string_data[i].len;
    unsigned char *p = tensor_alloc(a, total);
    if (!p) return err_set(e, -ENOMEM, "out of memory");
    t->data = p;
    for (size_t i = 0; i < n; i++) {
      uint32_t len = (uint32_t)tp->string_data[i].len;
      memcpy(p, &len, 4);
      if (len) memcpy(p + 4, tp->string_data[i].data, len);
      p += 4 + len;
    }
    return 0;
  }

  size_t esize = dtype_size(t->dtype);
  size_t bytes = n * esize;
  size_t have; /* values present in the field that holds them */
  switch (t->dtype) {
  case INFERD_TYPE_FP32: have = tp->n_float_data; break;
  case INFERD_TYPE_FP64: have = tp->n_double_data; break;
  case INFERD_TYPE_INT64: have = tp->n_int64_data; break;
  case INFERD_TYPE_UINT32:
  case INFERD_TYPE_UINT64: have = tp->n_uint64_data; break;
  default: have = tp->n_int32_data; break;
  }
  if (tp->has_raw_data) {
    if (tp->raw_data.len != bytes)
      return err_set(e, -EINVAL, "tensor '%s' has %zu bytes of raw data for %zu elements of %s",
                     name, tp->raw_data.len, n, dtype_name(t->dtype));
  } else if (have != n) {
    return err_set(e, -EINVAL, "tensor '%s' has %zu values for %zu elements", name, have, n);
  }
  t->data = tensor_alloc(a, bytes);
  if (!t->data) return err_set(e, -ENOMEM, "out of memory for tensor '%s'", name);
  if (tp->has_raw_data) {
    if (bytes) memcpy(t->data, tp->raw_data.data, bytes);
    return 0;
  }
  if (!bytes) return 0; /* an empty tensor: its typed field may be NULL */
  switch (t->dtype) {
  case INFERD_TYPE_FP32: memcpy(t->data, tp->float_data, bytes); break;
  case INFERD_TYPE_FP64: memcpy(t->data, tp->double_data, bytes); break;
  case INFERD_TYPE_INT64: memcpy(t->data, tp->int64_data, bytes); break;
  case INFERD_TYPE_INT32: memcpy(t->data, tp->int32_data, bytes); break;
  case INFERD_TYPE_UINT64: memcpy(t->data, tp->uint64_data, bytes); break;
  case INFERD_TYPE_UINT32: NARROW(uint32_t, tp->uint64_data); break;
  case INFERD_TYPE_INT8: NARROW(int8_t, tp->int32_data); break;
  case INFERD_TYPE_INT16: NARROW(int16_t, tp->int32_data); break;
  case INFERD_TYPE_UINT8: NARROW(uint8_t, tp->int32_data); break;
  case INFERD_TYPE_BOOL: NARROW(uint8_t, tp->int32_data); break;
  case INFERD_TYPE_UINT16:
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16: NARROW(uint16_t, tp->int32_data); break;
  default: break;
  }
  return 0;
}

/* ---- attributes --------------------------------------------------------- */

const Onnx__AttributeProto *onnx_attr_find(const Onnx__NodeProto *p, const char *name) {
  for (size_t i = 0; i < p->n_attribute; i++)
    if (p->attribute[i]->name && strcmp(p->attribute[i]->name, name) == 0) return p->attribute[i];
  return NULL;
}

/* An attribute's type: the declared one, or for IR versions that did not
 * declare it, the field that is set. */
static int attr_type(const Onnx__AttributeProto *at) {
  if (at->has_type) return at->type;
  if (at->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  if (at->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

int onnx_attr_int(const Onnx__NodeProto *p, const char *name, int64_t def, int64_t *out, err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  if (!at) {
    *out = def;
    return 0;
  }
  if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
    return err_set(e, -EINVAL, "attribute '%s' must be an INT", name);
  *out = at->i;
  return 0;
}

int onnx_attr_float(const Onnx__NodeProto *p, const char *name, float def, float *out, err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  if (!at) {
    *out = def;
    return 0;
  }
  if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
    return err_set(e, -EINVAL, "attribute '%s' must be a FLOAT", name);
  *out = at->f;
  return 0;
}

int onnx_attr_bool(const Onnx__NodeProto *p, const char *name, bool def, bool *out, err *e) {
  int64_t v = 0;
  int rc = onnx_attr_int(p, name, def, &v, e);
  if (rc) return rc;
  if (v != 0 && v != 1)
    return err_set(e, -ENOTSUP, "attribute %s=%lld is not supported (0 or 1)", name, (long long)v);
  *out = v != 0;
  return 0;
}

int onnx_attr_ints(const Onnx__NodeProto *p, const char *name, int64_t *out, int max, int *n,
                   err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  *n = -1;
  if (!at) return 0;
  if (at->has_type && at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
    return err_set(e, -EINVAL, "attribute '%s' must be INTS", name);
  if (at->n_ints > (size_t)max)
    return err_set(e, -ENOTSUP, "attribute '%s' has %zu values; at most %d are supported", name,
                   at->n_ints, max);
  for (size_t i = 0; i < at->n_ints; i++)
    out[i] = at->ints[i];
  *n = (int)at->n_ints;
  return 0;
}

int onnx_attr_string(const Onnx__NodeProto *p, const char *name, const char *def, arena *a,
                     const char **out, err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  if (!at) {
    *out = def;
    return 0;
  }
  if (at->has_type ? at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING : !at->has_s)
    return err_set(e, -EINVAL, "attribute '%s' must be a STRING", name);
  char *s = arena_strndup(a, at->has_s ? (const char *)at->s.data : "", at->has_s ? at->s.len : 0);
  if (!s) return err_set(e, -ENOMEM, "out of memory");
  *out = s;
  return 0;
}

int onnx_auto_pad_parse(const char *s, onnx_auto_pad *out, err *e) {
  static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = (onnx_auto_pad)i;
      return 0;
    }
  return err_set(e, -EINVAL, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", s);
}

int64_t onnx_window_pads(onnx_auto_pad ap, int64_t in, int64_t s, int64_t ext, int64_t *pb,
                         int64_t *pe) {
  if (ap == ONNX_PAD_VALID) *pb = *pe = 0;
  if (ap == ONNX_PAD_SAME_UPPER || ap == ONNX_PAD_SAME_LOWER) {
    int64_t out = (in + s - 1) / s;
    int64_t total = (out - 1) * s + ext - in;
    if (total < 0) total = 0;
    *pb = ap == ONNX_PAD_SAME_UPPER ? total / 2 : total - total / 2;
    *pe = total - *pb;
  }
  return in + *pb + *pe - ext;
}

void *onnx_attr_new(onnx_node *n, arena *a, size_t size, err *e) {
  void *at = arena_calloc(a, 1, size);
  if (!at) err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  return at;
}

int onnx_attr_enum(const Onnx__NodeProto *p, const char *name, const char *const *names, int n,
                   int def, int *out, err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  *out = def;
  if (!at) return 0;
  if ((at->has_type && at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) || !at->has_s)
    return err_set(e, -EINVAL, "attribute '%s' must be a STRING", name);
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == at->s.len && memcmp(names[i], at->s.data, at->s.len) == 0) {
      *out = i;
      return 0;
    }
  char choices[200] = "";
  for (int i = 0; i < n; i++) {
    size_t l = strlen(choices);
    snprintf(choices + l, sizeof choices - l, "%s%s", i ? ", " : "", names[i]);
  }
  return err_set(e, -ENOTSUP, "attribute %s='%.*s' is not supported (%s)", name,
                 (int)(at->s.len > 40 ? 40 : at->s.len), (const char *)at->s.data, choices);
}
