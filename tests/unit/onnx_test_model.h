/* tests/unit/onnx_test_model.h: what the ONNX executor's tests share:
 * building an ONNX ModelProto with protobuf-c (every part in one arena),
 * loading it through the backend table and executing it. Included by
 * test_onnx_ops.c, test_onnx_math.c, and through onnx_test_run.h by
 * test_onnx_conv.c and test_onnx_plan.c (each a program of its own).
 * Everything is static inline so that a test using part of it compiles
 * without warnings. */
#ifndef INFERD_TESTS_ONNX_TEST_MODEL_H
#define INFERD_TESTS_ONNX_TEST_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/onnx/onnx_backend.h"
#include "backends/onnx/onnx_graph.h"
#include "backends/onnx/onnx_ops.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "onnx/onnx.pb-c.h"

enum {
  T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
  T_DOUBLE = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE,
  T_INT32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
  T_INT64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
  T_INT8 = ONNX__TENSOR_PROTO__DATA_TYPE__INT8,
  T_UINT8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
  T_FP16 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
  T_BF16 = ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16,
  T_BOOL = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL,
  T_STRING = ONNX__TENSOR_PROTO__DATA_TYPE__STRING,
};

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const float[]){__VA_ARGS__})

/* ---- building ----------------------------------------------------------- */

/* A ModelProto under construction; everything in it lives in one arena. */
typedef struct mb {
  arena *a;
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto *opsets[4];
  Onnx__NodeProto *nodes[64];
  Onnx__TensorProto *inits[64];
  Onnx__ValueInfoProto *ins[16], *outs[16];
} mb;

/* A model importing the default domain at opset (none when 0) and, when
 * extra_domain is set, that domain at extra_version. */
static inline mb *mb_new_domain(int opset, const char *extra_domain, int extra_version) {
  arena *a = arena_create(1 << 16);
  mb *b = arena_calloc(a, 1, sizeof *b);
  b->a = a;
  onnx__model_proto__init(&b->model);
  onnx__graph_proto__init(&b->graph);
  b->model.has_ir_version = true;
  b->model.ir_version = 8;
  b->model.graph = &b->graph;
  b->graph.name = "g";
  b->model.opset_import = b->opsets;
  const char *domains[2] = {opset ? "" : NULL, extra_domain};
  const int versions[2] = {opset, extra_version};
  for (int i = 0; i < 2; i++) {
    if (!domains[i]) continue;
    Onnx__OperatorSetIdProto *o = arena_calloc(a, 1, sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = (char *)domains[i];
    o->has_version = true;
    o->version = versions[i];
    b->opsets[b->model.n_opset_import++] = o;
  }
  b->graph.node = b->nodes;
  b->graph.initializer = b->inits;
  b->graph.input = b->ins;
  b->graph.output = b->outs;
  return b;
}

static inline mb *mb_new(int opset) { return mb_new_domain(opset, NULL, 0); }

static inline void mb_free(mb *b) { arena_destroy(b->a); }

/* A tensor ValueInfo: type 0 leaves the type out, ndim < 0 the shape; a
 * dim of -1 is a dim_param "N". */
static inline Onnx__ValueInfoProto *mb_value_info(mb *b, const char *name, int type, int ndim,
                                                  const int64_t *dims) {
  Onnx__ValueInfoProto *vi = arena_calloc(b->a, 1, sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = arena_strdup(b->a, name);
  if (!type) return vi;
  Onnx__TypeProto *tp = arena_calloc(b->a, 1, sizeof *tp);
  Onnx__TypeProto__Tensor *tt = arena_calloc(b->a, 1, sizeof *tt);
  onnx__type_proto__init(tp);
  onnx__type_proto__tensor__init(tt);
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  tt->has_elem_type = true;
  tt->elem_type = type;
  vi->type = tp;
  if (ndim < 0) return vi;
  Onnx__TensorShapeProto *sp = arena_calloc(b->a, 1, sizeof *sp);
  onnx__tensor_shape_proto__init(sp);
  sp->n_dim = (size_t)ndim;
  sp->dim = arena_calloc(b->a, (size_t)ndim + 1, sizeof *sp->dim);
  for (int i = 0; i < ndim; i++) {
    Onnx__TensorShapeProto__Dimension *d = arena_calloc(b->a, 1, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] >= 0) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = "N";
    }
    sp->dim[i] = d;
  }
  tt->shape = sp;
  return vi;
}

static inline void mb_input(mb *b, const char *name, int type, int ndim, const int64_t *dims) {
  b->ins[b->graph.n_input++] = mb_value_info(b, name, type, ndim, dims);
}

static inline void mb_output(mb *b, const char *name, int type, int ndim, const int64_t *dims) {
  b->outs[b->graph.n_output++] = mb_value_info(b, name, type, ndim, dims);
}

/* Bytes per element of an ONNX tensor type (4 for one inferd lacks). */
static inline size_t proto_size(int type) {
  inferd_dtype t = onnx_dtype_from_proto(type);
  return t == INFERD_TYPE_INVALID ? 4 : dtype_size(t);
}

/* A tensor with raw_data. */
static inline Onnx__TensorProto *mb_tensor(mb *b, const char *name, int type, int ndim,
                                           const int64_t *dims, const void *data) {
  Onnx__TensorProto *t = arena_calloc(b->a, 1, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = arena_strdup(b->a, name);
  t->has_data_type = true;
  t->data_type = type;
  t->n_dims = (size_t)ndim;
  t->dims = arena_calloc(b->a, (size_t)ndim + 1, sizeof *t->dims);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= t->dims[i] = dims[i];
  t->has_raw_data = true;
  t->raw_data.len = (size_t)n * proto_size(type);
  t->raw_data.data = arena_alloc(b->a, t->raw_data.len + 1);
  if (t->raw_data.len) memcpy(t->raw_data.data, data, t->raw_data.len);
  return t;
}

/* An initializer with raw data. */
static inline void mb_init(mb *b, const char *name, int type, int ndim, const int64_t *dims,
                           const void *data) {
  b->inits[b->graph.n_initializer++] = mb_tensor(b, name, type, ndim, dims, data);
}

/* A node (name NULL: none); ins and outs are comma-separated names ("" for
 * an omitted one). */
static inline Onnx__NodeProto *mb_node(mb *b, const char *name, const char *op, const char *ins,
                                       const char *outs) {
  Onnx__NodeProto *n = arena_calloc(b->a, 1, sizeof *n);
  onnx__node_proto__init(n);
  n->name = name ? arena_strdup(b->a, name) : NULL;
  n->op_type = arena_strdup(b->a, op);
  const char *lists[2] = {ins, outs};
  for (int l = 0; l < 2; l++) {
    const char *csv = lists[l];
    size_t cnt = *csv ? 1 : 0;
    for (const char *p = csv; *p; p++)
      cnt += *p == ',';
    char **v = arena_calloc(b->a, cnt + 1, sizeof *v);
    const char *p = csv;
    for (size_t i = 0; i < cnt; i++) {
      size_t len = strcspn(p, ",");
      v[i] = arena_strndup(b->a, p, len);
      p += len + (p[len] == ',');
    }
    if (l == 0) {
      n->n_input = cnt;
      n->input = v;
    } else {
      n->n_output = cnt;
      n->output = v;
    }
  }
  n->attribute = arena_calloc(b->a, 16, sizeof *n->attribute);
  b->nodes[b->graph.n_node++] = n;
  return n;
}

static inline Onnx__AttributeProto *mb_attr(mb *b, Onnx__NodeProto *n, const char *name,
                                            Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *at = arena_calloc(b->a, 1, sizeof *at);
  onnx__attribute_proto__init(at);
  at->name = arena_strdup(b->a, name);
  at->has_type = true;
  at->type = type;
  n->attribute[n->n_attribute++] = at;
  return at;
}

static inline void attr_i(mb *b, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  at->has_i = true;
  at->i = v;
}

static inline void attr_f(mb *b, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  at->has_f = true;
  at->f = v;
}

/* An INTS attribute of count values (none when count is 0). */
static inline void attr_ints(mb *b, Onnx__NodeProto *n, const char *name, size_t count,
                             const int64_t *v) {
  if (!count) return;
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  at->n_ints = count;
  at->ints = arena_calloc(b->a, count, sizeof *at->ints);
  memcpy(at->ints, v, count * sizeof *v);
}

static inline void attr_floats(mb *b, Onnx__NodeProto *n, const char *name, size_t count,
                               const float *v) {
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
  at->n_floats = count;
  at->floats = (float *)v;
}

static inline void attr_s(mb *b, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  at->has_s = true;
  at->s.len = strlen(v);
  at->s.data = (uint8_t *)arena_strdup(b->a, v);
}

static inline void attr_t(mb *b, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t) {
  Onnx__AttributeProto *at = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  at->t = t;
}

static inline uint8_t *mb_pack(mb *b, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&b->model);
  uint8_t *buf = malloc(*len + 1);
  onnx__model_proto__pack(&b->model, buf);
  return buf;
}

/* ---- loading and running through the backend ---------------------------- */

typedef struct model {
  void *m, *inst;
  char err[512];
} model;

/* Loads bytes as d describes them, through the backend's model_load (from
 * a temporary file, unless d->model_path is set), and makes an instance.
 * Returns model_load's or instance_create's code, the message in md->err. */
static inline int mb_load_bytes(const uint8_t *bytes, size_t len, inferd_model_desc *d, model *md) {
  memset(md, 0, sizeof *md);
  char path[] = "/tmp/inferd_onnx_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, bytes, len), (ssize_t)len);
  close(fd);
  if (!d->model_path) d->model_path = path;
  const inferd_backend *be = onnx_backend();
  int rc = be->model_load(d, &md->m, md->err, sizeof md->err);
  unlink(path);
  if (rc) {
    md->m = NULL;
    return rc;
  }
  rc = be->instance_create(md->m, 0, &md->inst, md->err, sizeof md->err);
  if (rc) {
    be->model_unload(md->m);
    md->m = NULL;
  }
  return rc;
}

static inline void unload(model *md) {
  if (md->inst) onnx_backend()->instance_destroy(md->inst);
  if (md->m) onnx_backend()->model_unload(md->m);
  md->inst = md->m = NULL;
}

typedef struct test_exec {
  inferd_exec x;
  void *ptrs[16];
  int n;
} test_exec;

/* Output memory for execute (at least 64 bytes, so that an empty output
 * gets a pointer too), freed by run_done. */
static inline void *test_alloc(inferd_exec *x, size_t bytes) {
  test_exec *t = (test_exec *)x;
  if (t->n == 16) return NULL;
  return t->ptrs[t->n++] = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
}

/* An input for execute. */
static inline inferd_tensor tin(const char *name, inferd_dtype t, int ndim, const int64_t *dims,
                                const void *data) {
  inferd_tensor x = {.name = name, .dtype = t, .ndim = ndim, .data = (void *)data};
  if (ndim) memcpy(x.shape, dims, (size_t)ndim * sizeof dims[0]);
  x.byte_size = (size_t)shape_elements(dims, ndim) * dtype_size(t);
  return x;
}

/* Executes; outputs (named and typed by the caller) get their data from
 * test_alloc, freed by run_done. wanted may be NULL: all of them. */
static inline int run(model *md, test_exec *t, size_t n_in, const inferd_tensor *in, size_t n_out,
                      inferd_tensor *out, const bool *wanted) {
  memset(t, 0, sizeof *t);
  t->x = (inferd_exec){.n_inputs = n_in,
                       .inputs = in,
                       .n_outputs = n_out,
                       .outputs = out,
                       .output_wanted = wanted,
                       .alloc = test_alloc,
                       .error = md->err,
                       .error_size = sizeof md->err};
  return onnx_backend()->execute(md->inst, &t->x);
}

static inline void run_done(test_exec *t) {
  for (int i = 0; i < t->n; i++)
    free(t->ptrs[i]);
  t->n = 0;
}

#endif
