/* Unit tests of the data-movement operators of the ONNX backend (the
 * families tensor, index, generate and resize): each operator called
 * through the registry as the planner calls it (init, infer, run) on
 * hand-computed cases: negative axes, clamped slices and negative steps,
 * the three pad modes, negative and out-of-range indices, Resize's
 * coordinate modes, attribute/input migrations across versions, and the
 * errors each refuses with. Transpose and Slice are also checked against
 * naive loops on every permutation and element size, since their fast
 * paths (merged axes, memcpy runs, tiles) are where bugs would hide. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/onnx/onnx_ops.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "onnx/onnx.pb-c.h"

#define D(...)   ((const int64_t[]){__VA_ARGS__})
#define F(...)   ((const float[]){__VA_ARGS__})
#define I64(...) ((const int64_t[]){__VA_ARGS__})
#define I32(...) ((const int32_t[]){__VA_ARGS__})
#define B(...)   ((const uint8_t[]){__VA_ARGS__})

#define FP32  INFERD_TYPE_FP32
#define INT64 INFERD_TYPE_INT64
#define INT32 INFERD_TYPE_INT32
#define BOOL  INFERD_TYPE_BOOL

/* ---- a node under test -------------------------------------------------- */

#define MAX_IO 8

typedef struct nt {
  arena *a;
  Onnx__NodeProto p;
  Onnx__AttributeProto *attrs[16];
  char *in_names[MAX_IO], *out_names[MAX_IO];
  onnx_node node;
  int in_idx[MAX_IO], out_idx[MAX_IO];
  const onnx_tensor *in[MAX_IO];
  onnx_tensor outs[MAX_IO];
  onnx_tensor *out[MAX_IO];
  err e;
} nt;

/* A node of op at opset with n_in inputs and n_out outputs (an input or
 * output listed in omit, a bit each, is left out: "" in the proto). */
static nt *nt_new_omit(const char *op, int opset, int n_in, int n_out, unsigned omit_in,
                       unsigned omit_out) {
  arena *a = arena_create(1 << 14);
  nt *t = arena_calloc(a, 1, sizeof *t);
  t->a = a;
  onnx__node_proto__init(&t->p);
  t->p.op_type = (char *)op;
  t->p.name = "n";
  t->p.attribute = t->attrs;
  t->p.n_input = (size_t)n_in;
  t->p.n_output = (size_t)n_out;
  t->p.input = t->in_names;
  t->p.output = t->out_names;
  for (int k = 0; k < MAX_IO; k++) {
    t->in_names[k] = (omit_in >> k & 1) ? "" : "in";
    t->out_names[k] = (omit_out >> k & 1) ? "" : "out";
    t->in_idx[k] = (omit_in >> k & 1) ? -1 : k;
    t->out_idx[k] = (omit_out >> k & 1) ? -1 : k;
  }
  onnx_node *n = &t->node;
  n->name = "n";
  n->op_type = op;
  n->domain = "";
  n->opset = opset;
  n->op = onnx_registry_find("", op, opset, &n->since);
  n->n_in = n_in;
  n->n_out = n_out;
  n->in = t->in_idx;
  n->out = t->out_idx;
  assert_non_null(n->op);
  return t;
}

static nt *nt_new(const char *op, int opset, int n_in, int n_out) {
  return nt_new_omit(op, opset, n_in, n_out, 0, 0);
}

static void nt_free(nt *t) { arena_destroy(t->a); }

static Onnx__AttributeProto *nt_attr(nt *t, const char *name, int type) {
  Onnx__AttributeProto *at = arena_calloc(t->a, 1, sizeof *at);
  onnx__attribute_proto__init(at);
  at->name = (char *)name;
  at->has_type = true;
  at->type = type;
  t->attrs[t->p.n_attribute++] = at;
  return at;
}

static void nt_int(nt *t, const char *name, int64_t v) {
  Onnx__AttributeProto *at = nt_attr(t, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  at->has_i = true;
  at->i = v;
}

static void nt_float(nt *t, const char *name, float v) {
  Onnx__AttributeProto *at = nt_attr(t, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  at->has_f = true;
  at->f = v;
}

static void nt_ints(nt *t, const char *name, size_t n, const int64_t *v) {
  Onnx__AttributeProto *at = nt_attr(t, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  at->n_ints = n;
  at->ints = (int64_t *)v;
}

static void nt_str(nt *t, const char *name, const char *s) {
  Onnx__AttributeProto *at = nt_attr(t, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  at->has_s = true;
  at->s.data = (uint8_t *)s;
  at->s.len = strlen(s);
}

/* A tensor whose data (copied) lives as long as the node. */
static onnx_tensor *tens(nt *t, inferd_dtype dt, int ndim, const int64_t *dims, const void *data) {
  onnx_tensor *x = arena_calloc(t->a, 1, sizeof *x);
  x->dtype = dt;
  onnx_tensor_set_shape(x, ndim, dims);
  size_t bytes = onnx_tensor_bytes(x);
  x->data = arena_alloc_aligned(t->a, bytes + 1, 64);
  if (bytes && data) memcpy(x->data, data, bytes);
  return x;
}

/* init (when the operator has one); the error code. */
static int nt_init(nt *t) {
  memset(&t->e, 0, sizeof t->e);
  return t->node.op->init ? t->node.op->init(&t->node, &t->p, t->a, &t->e) : 0;
}

/* infer, planned outputs, run: the error code (0 when it all worked). The
 * inputs are given in order, NULL for an omitted one. */
static int nt_run(nt *t, ...) {
  va_list ap;
  va_start(ap, t);
  for (int k = 0; k < t->node.n_in; k++)
    t->in[k] = va_arg(ap, const onnx_tensor *);
  va_end(ap);
  memset(&t->e, 0, sizeof t->e);
  for (int k = 0; k < t->node.n_out; k++) {
    memset(&t->outs[k], 0, sizeof t->outs[k]);
    t->out[k] = t->out_idx[k] >= 0 ? &t->outs[k] : NULL;
  }
  int rc = t->node.op->infer(&t->node, t->in, t->out, &t->e);
  if (rc) return rc;
  for (int k = 0; k < t->node.n_out; k++)
    if (t->out[k]) {
      size_t bytes = onnx_tensor_bytes(t->out[k]);
      t->out[k]->data = arena_alloc_aligned(t->a, bytes + 1, 64);
      memset(t->out[k]->data, 0xA5, bytes); /* garbage a kernel must overwrite */
    }
  return t->node.op->run(&t->node, t->in, t->out, &t->e);
}

static void expect_err(nt *t, int rc, const char *text) {
  if (rc == 0 || !strstr(t->e.msg, text))
    print_message("rc %d, message \"%s\"; expected one containing \"%s\"\n", rc, t->e.msg, text);
  assert_true(rc < 0);
  assert_non_null(strstr(t->e.msg, text));
}

static void expect_ok(nt *t, int rc) {
  if (rc) print_message("%s\n", t->e.msg);
  assert_int_equal(rc, 0);
}

static void expect_shape(const onnx_tensor *o, inferd_dtype dt, int ndim, const int64_t *dims) {
  assert_int_equal(o->dtype, dt);
  assert_int_equal(o->ndim, ndim);
  for (int i = 0; i < ndim; i++)
    assert_int_equal(o->dims[i], dims[i]);
}

static void expect_f32(const onnx_tensor *o, int ndim, const int64_t *dims, const float *want) {
  expect_shape(o, FP32, ndim, dims);
  for (int64_t i = 0; i < o->count; i++) {
    float g = ((const float *)o->data)[i];
    if (fabsf(g - want[i]) > 1e-5f * (1 + fabsf(want[i])))
      print_message("element %lld: %.9g, expected %.9g\n", (long long)i, g, want[i]);
    assert_true(fabsf(g - want[i]) <= 1e-5f * (1 + fabsf(want[i])));
  }
}

static void expect_i64(const onnx_tensor *o, int ndim, const int64_t *dims, const int64_t *want) {
  expect_shape(o, INT64, ndim, dims);
  for (int64_t i = 0; i < o->count; i++)
    assert_int_equal(((const int64_t *)o->data)[i], want[i]);
}

static void expect_i32(const onnx_tensor *o, int ndim, const int64_t *dims, const int32_t *want) {
  expect_shape(o, INT32, ndim, dims);
  for (int64_t i = 0; i < o->count; i++)
    assert_int_equal(((const int32_t *)o->data)[i], want[i]);
}

static void expect_u8(const onnx_tensor *o, inferd_dtype dt, int ndim, const int64_t *dims,
                      const uint8_t *want) {
  expect_shape(o, dt, ndim, dims);
  assert_memory_equal(o->data, want, (size_t)o->count);
}

/* 0, 1, 2, ... as floats. */
static float *iota(nt *t, int64_t n) {
  float *v = arena_alloc(t->a, (size_t)n * sizeof *v + 1);
  for (int64_t i = 0; i < n; i++)
    v[i] = (float)i;
  return v;
}

/* ---- Transpose ---------------------------------------------------------- */

/* Every permutation of a 4-D shape, for each element size, against a naive
 * index computation: exercises the merged, memcpy-run and tiled paths. */
static void transpose_all_permutations(void **state) {
  static const inferd_dtype types[] = {INFERD_TYPE_UINT8, INFERD_TYPE_FP16, FP32, INT64};
  const int64_t dims[4] = {2, 3, 4, 5};
  int perm[4];
  for (size_t ti = 0; ti < 4; ti++) {
    size_t es = dtype_size(types[ti]);
    for (int p = 0; p < 24; p++) {
      /* the p-th permutation of 0..3 */
      int pool[4] = {0, 1, 2, 3}, r = p, left = 4;
      for (int i = 0; i < 4; i++) {
        int f = 1;
        for (int k = 2; k < left; k++)
          f *= k;
        int j = r / f;
        r %= f;
        perm[i] = pool[j];
        memmove(pool + j, pool + j + 1, (size_t)(left - j - 1) * sizeof pool[0]);
        left--;
      }
      nt *t = nt_new("Transpose", 13, 1, 1);
      int64_t pv[4] = {perm[0], perm[1], perm[2], perm[3]};
      nt_ints(t, "perm", 4, pv);
      expect_ok(t, nt_init(t));
      unsigned char src[120 * 8];
      for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 7 + 3);
      onnx_tensor *x = tens(t, types[ti], 4, dims, src);
      expect_ok(t, nt_run(t, x));
      int64_t od[4] = {dims[perm[0]], dims[perm[1]], dims[perm[2]], dims[perm[3]]};
      expect_shape(t->out[0], types[ti], 4, od);
      int64_t ist[4] = {60, 20, 5, 1}, c[4];
      for (int64_t o = 0; o < 120; o++) {
        int64_t rest = o, off = 0;
        for (int d = 3; d >= 0; d--) {
          c[d] = rest % od[d];
          rest /= od[d];
        }
        for (int d = 0; d < 4; d++)
          off += c[d] * ist[perm[d]];
        assert_memory_equal((const char *)t->out[0]->data + o * (int64_t)es, src + off * es, es);
      }
      nt_free(t);
    }
  }
}

/* Random permutations of random 2- to 5-D shapes (sides up to 19, so that
 * whole 8 x 8 blocks and their remainders both occur) for every element
 * size, against naive indexing. */
static void transpose_random(void **state) {
  static const inferd_dtype types[] = {BOOL, INFERD_TYPE_BF16, INFERD_TYPE_INT32, INT64};
  static unsigned char src[4096 * 8];
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (unsigned char)(i * 31 + 7);
  uint32_t seed = 99;
  for (int iter = 0; iter < 300; iter++) {
    int r = 2 + iter % 4;
    inferd_dtype dt = types[(iter / 4) % 4];
    size_t es = dtype_size(dt);
    int64_t dims[5], count = 1, perm[5];
    for (int d = 0; d < r; d++) {
      seed = seed * 1103515245u + 12345u;
      dims[d] = 1 + (seed >> 16) % (r == 2 ? 19 : r == 3 ? 12 : 6);
      count *= dims[d];
      perm[d] = d;
    }
    for (int d = r - 1; d > 0; d--) { /* Fisher-Yates */
      seed = seed * 1103515245u + 12345u;
      int j = (int)((seed >> 16) % (uint32_t)(d + 1));
      int64_t tmp = perm[d];
      perm[d] = perm[j];
      perm[j] = tmp;
    }
    nt *t = nt_new("Transpose", 13, 1, 1);
    nt_ints(t, "perm", (size_t)r, perm);
    expect_ok(t, nt_init(t));
    expect_ok(t, nt_run(t, tens(t, dt, r, dims, src)));
    int64_t ist[5], od[5], c[5];
    for (int d = r - 1, st = 1; d >= 0; d--) {
      ist[d] = st;
      st *= (int)dims[d];
    }
    for (int d = 0; d < r; d++)
      od[d] = dims[perm[d]];
    for (int64_t o = 0; o < count; o++) {
      int64_t rest = o, off = 0;
      for (int d = r - 1; d >= 0; d--) {
        c[d] = rest % od[d];
        rest /= od[d];
      }
      for (int d = 0; d < r; d++)
        off += c[d] * ist[perm[d]];
      assert_memory_equal((const char *)t->out[0]->data + o * (int64_t)es, src + off * es, es);
    }
    nt_free(t);
  }
}

/* The attention reshape [B,S,H,D] -> [B,H,S,D] (memcpy runs of D), a
 * transpose whose sides are not multiples of the tile, size-1 axes, the
 * default reversal, and the errors. */
static void transpose_shapes(void **state) {
  nt *t = nt_new("Transpose", 13, 1, 1);
  nt_ints(t, "perm", 4, I64(0, 2, 1, 3));
  expect_ok(t, nt_init(t));
  const int64_t bshd[4] = {2, 7, 3, 8};
  onnx_tensor *x = tens(t, FP32, 4, bshd, iota(t, 2 * 7 * 3 * 8));
  expect_ok(t, nt_run(t, x));
  expect_shape(t->out[0], FP32, 4, D(2, 3, 7, 8));
  const float *o = t->out[0]->data;
  for (int b = 0; b < 2; b++)
    for (int h = 0; h < 3; h++)
      for (int s = 0; s < 7; s++)
        for (int d = 0; d < 8; d++)
          assert_true(o[((b * 3 + h) * 7 + s) * 8 + d] == (float)(((b * 7 + s) * 3 + h) * 8 + d));
  nt_free(t);

  t = nt_new("Transpose", 13, 1, 1);
  nt_ints(t, "perm", 3, I64(0, 2, 1));
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 3, D(2, 37, 53), iota(t, 2 * 37 * 53));
  expect_ok(t, nt_run(t, x));
  o = t->out[0]->data;
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 53; i++)
      for (int j = 0; j < 37; j++)
        assert_true(o[(b * 53 + i) * 37 + j] == (float)((b * 37 + j) * 53 + i));
  nt_free(t);

  /* 32-bit patterns that are NaNs as floats keep their bits (the AVX2
   * blocks move bits, never values) */
  t = nt_new("Transpose", 13, 1, 1);
  expect_ok(t, nt_init(t));
  uint32_t bits[17 * 19];
  for (uint32_t i = 0; i < 17 * 19; i++)
    bits[i] = 0x7f800001u + i * 2654435761u;
  expect_ok(t, nt_run(t, tens(t, INFERD_TYPE_UINT32, 2, D(17, 19), bits)));
  expect_shape(t->out[0], INFERD_TYPE_UINT32, 2, D(19, 17));
  for (int i = 0; i < 19; i++)
    for (int j = 0; j < 17; j++)
      assert_int_equal(((const uint32_t *)t->out[0]->data)[i * 17 + j], bits[j * 19 + i]);
  nt_free(t);

  t = nt_new("Transpose", 1, 1, 1); /* no perm: reversed; size-1 axes */
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 4, D(1, 2, 1, 3), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x));
  expect_f32(t->out[0], 4, D(3, 1, 2, 1), F(1, 4, 2, 5, 3, 6));
  nt_free(t);

  t = nt_new("Transpose", 13, 1, 1);
  nt_ints(t, "perm", 3, I64(0, 0, 1));
  expect_ok(t, nt_init(t));
  expect_err(t, nt_run(t, tens(t, FP32, 3, D(1, 1, 1), F(0))), "not a permutation");
  nt_free(t);
}

/* ---- Squeeze, Unsqueeze, Concat, Split ---------------------------------- */

static void squeeze_unsqueeze(void **state) {
  nt *t = nt_new("Squeeze", 13, 2, 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 4, D(1, 3, 1, 2), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(-2))));
  expect_f32(t->out[0], 3, D(1, 3, 2), F(1, 2, 3, 4, 5, 6));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(1))), "its size is not 1");
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(4))), "out of range");
  nt_free(t);

  t = nt_new("Squeeze", 11, 1, 1); /* no axes: every 1 goes */
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 4, D(1, 3, 1, 2), F(1, 2, 3, 4, 5, 6))));
  expect_shape(t->out[0], FP32, 2, D(3, 2));
  nt_free(t);

  t = nt_new("Squeeze", 13, 2, 1); /* axes are an input from 13 */
  nt_ints(t, "axes", 1, I64(0));
  expect_err(t, nt_init(t), "input from opset 13");
  nt_free(t);

  t = nt_new("Unsqueeze", 13, 2, 1);
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(-1, 0))));
  expect_shape(t->out[0], FP32, 4, D(1, 2, 3, 1));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(1, -3))), "listed twice");
  onnx_tensor unknown = {.dtype = INT64, .ndim = 1, .dims = {1}, .count = 1};
  expect_err(t, nt_run(t, x, &unknown), "must be known when the plan is built");
  nt_free(t);

  t = nt_new("Unsqueeze", 11, 1, 1);
  nt_ints(t, "axes", 2, I64(1, 3));
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6))));
  expect_shape(t->out[0], FP32, 4, D(2, 1, 3, 1));
  nt_free(t);
}

static void concat_split(void **state) {
  nt *t = nt_new("Concat", 13, 3, 1);
  nt_int(t, "axis", -1);
  expect_ok(t, nt_init(t));
  onnx_tensor *a = tens(t, INT32, 2, D(2, 1), I32(1, 2));
  onnx_tensor *b = tens(t, INT32, 2, D(2, 2), I32(3, 4, 5, 6));
  onnx_tensor *c = tens(t, INT32, 2, D(2, 0), NULL);
  expect_ok(t, nt_run(t, a, b, c));
  expect_i32(t->out[0], 2, D(2, 3), I32(1, 3, 4, 2, 5, 6));
  expect_err(t, nt_run(t, a, tens(t, INT32, 2, D(3, 2), I32(0, 0, 0, 0, 0, 0)), c), "cannot join");
  nt_free(t);

  t = nt_new("Concat", 13, 1, 1);
  expect_err(t, nt_init(t), "'axis' is required");
  nt_free(t);

  /* Split-13: sizes as an input, including a part of 0 */
  t = nt_new("Split", 13, 2, 3);
  nt_int(t, "axis", -1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(2, 4), F(1, 2, 3, 4, 5, 6, 7, 8));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(3), I64(1, 0, 3))));
  expect_f32(t->out[0], 2, D(2, 1), F(1, 5));
  expect_shape(t->out[1], FP32, 2, D(2, 0));
  expect_f32(t->out[2], 2, D(2, 3), F(2, 3, 4, 6, 7, 8));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(3), I64(1, 1, 1))), "add up to 3");
  nt_free(t);

  /* Split-11: equal parts, or the split attribute */
  t = nt_new("Split", 11, 1, 2);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 1, D(4), F(1, 2, 3, 4))));
  expect_f32(t->out[0], 1, D(2), F(1, 2));
  expect_f32(t->out[1], 1, D(2), F(3, 4));
  expect_err(t, nt_run(t, tens(t, FP32, 1, D(3), F(1, 2, 3))), "2 equal parts");
  nt_free(t);

  t = nt_new("Split", 2, 1, 2);
  nt_ints(t, "split", 2, I64(3, 1));
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 1, D(4), F(1, 2, 3, 4))));
  expect_f32(t->out[0], 1, D(3), F(1, 2, 3));
  expect_f32(t->out[1], 1, D(1), F(4));
  nt_free(t);
}

/* ---- Slice -------------------------------------------------------------- */

/* Slice-13 of x with the given starts/ends/axes/steps (n each; axes or
 * steps NULL to omit). */
static nt *slice13(const onnx_tensor *x, int n, const int64_t *starts, const int64_t *ends,
                   const int64_t *axes, const int64_t *steps, int *rc) {
  unsigned omit = (axes ? 0u : 1u << 3) | (steps ? 0u : 1u << 4);
  nt *t = nt_new_omit("Slice", 13, 5, 1, omit, 0);
  expect_ok(t, nt_init(t));
  onnx_tensor *xs = tens(t, x->dtype, x->ndim, x->dims, x->data);
  *rc = nt_run(t, xs, tens(t, INT64, 1, D(n), starts), tens(t, INT64, 1, D(n), ends),
               axes ? tens(t, INT64, 1, D(n), axes) : NULL,
               steps ? tens(t, INT64, 1, D(n), steps) : NULL);
  return t;
}

static void slice_clamps_and_steps(void **state) {
  float v[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  onnx_tensor x = {.dtype = FP32, .ndim = 1, .dims = {10}, .count = 10, .data = v};
  int rc;
  nt *t = slice13(&x, 1, I64(2), I64(1000), NULL, NULL, &rc); /* end clamped */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8), F(2, 3, 4, 5, 6, 7, 8, 9));
  nt_free(t);
  t = slice13(&x, 1, I64(-1), I64(INT64_MIN), I64(0), I64(-3), &rc); /* back to the start */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(4), F(9, 6, 3, 0));
  nt_free(t);
  t = slice13(&x, 1, I64(100), I64(-100), I64(-1), I64(-4), &rc); /* start clamped to 9 */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(3), F(9, 5, 1));
  nt_free(t);
  t = slice13(&x, 1, I64(-3), I64(-1), NULL, NULL, &rc); /* negative start and end */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(2), F(7, 8));
  nt_free(t);
  t = slice13(&x, 1, I64(5), I64(2), NULL, NULL, &rc); /* empty */
  expect_ok(t, rc);
  expect_shape(t->out[0], FP32, 1, D(0));
  nt_free(t);
  t = slice13(&x, 1, I64(0), I64(5), NULL, I64(0), &rc);
  expect_err(t, rc, "a step of 0");
  nt_free(t);

  /* 2-D, the inner axis reversed and the outer one strided; int32 starts */
  float m[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  onnx_tensor x2 = {.dtype = FP32, .ndim = 2, .dims = {3, 4}, .count = 12, .data = m};
  t = nt_new("Slice", 13, 5, 1);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, x2.dims, m), tens(t, INT32, 1, D(2), I32(0, -1)),
                      tens(t, INT32, 1, D(2), I32(3, 0)), tens(t, INT32, 1, D(2), I32(0, 1)),
                      tens(t, INT32, 1, D(2), I32(2, -2))));
  expect_f32(t->out[0], 2, D(2, 2), F(3, 1, 11, 9));
  nt_free(t);
  t = slice13(&x2, 2, I64(0, 0), I64(5, 5), I64(0, -2), NULL, &rc);
  expect_err(t, rc, "listed twice");
  nt_free(t);

  /* Slice-1: attributes */
  t = nt_new("Slice", 1, 1, 1);
  nt_ints(t, "starts", 1, I64(1));
  nt_ints(t, "ends", 1, I64(-1));
  nt_ints(t, "axes", 1, I64(1));
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, x2.dims, m)));
  expect_f32(t->out[0], 2, D(3, 2), F(1, 2, 5, 6, 9, 10));
  nt_free(t);
}

/* Random slices of a 3-D tensor against naive indexing, for every element
 * size (the merged and memcpy-run paths of the copy engine). */
static void slice_against_naive(void **state) {
  static const inferd_dtype types[] = {BOOL, INFERD_TYPE_INT16, FP32, INFERD_TYPE_FP64};
  uint32_t seed = 12345;
  for (int iter = 0; iter < 400; iter++) {
    inferd_dtype dt = types[iter % 4];
    size_t es = dtype_size(dt);
    int64_t dims[3] = {1 + iter % 5, 1 + (iter / 5) % 6, 1 + (iter / 30) % 7};
    int64_t st[3], en[3], sp[3];
    for (int d = 0; d < 3; d++) {
      seed = seed * 1103515245u + 12345u;
      st[d] = (int64_t)(seed >> 8) % (2 * dims[d] + 3) - dims[d] - 1;
      seed = seed * 1103515245u + 12345u;
      en[d] = (int64_t)(seed >> 8) % (2 * dims[d] + 3) - dims[d] - 1;
      seed = seed * 1103515245u + 12345u;
      sp[d] = (int64_t)(seed >> 8) % 5 - 2;
      if (sp[d] == 0) sp[d] = 1;
    }
    unsigned char src[210 * 8];
    for (size_t i = 0; i < sizeof src; i++)
      src[i] = (unsigned char)(i * 13 + iter);
    onnx_tensor x = {.dtype = dt, .ndim = 3, .count = dims[0] * dims[1] * dims[2], .data = src};
    memcpy(x.dims, dims, sizeof dims);
    int rc;
    nt *t = slice13(&x, 3, st, en, I64(0, 1, 2), sp, &rc);
    expect_ok(t, rc);
    /* the indices each axis takes: Python's slice rules, except that with a
     * negative step a start before the axis clamps to 0 (ONNX's rule) */
    int64_t idx[3][8], cnt[3];
    for (int d = 0; d < 3; d++) {
      int64_t n = dims[d], s = st[d] < 0 ? st[d] + n : st[d], e = en[d] < 0 ? en[d] + n : en[d];
      cnt[d] = 0;
      if (sp[d] > 0) {
        s = s < 0 ? 0 : s > n ? n : s;
        e = e < 0 ? 0 : e > n ? n : e;
        for (int64_t i = s; i < e; i += sp[d])
          idx[d][cnt[d]++] = i;
      } else {
        s = s < 0 ? 0 : s > n - 1 ? n - 1 : s;
        e = e < -1 ? -1 : e > n - 1 ? n - 1 : e;
        for (int64_t i = s; i > e; i += sp[d])
          idx[d][cnt[d]++] = i;
      }
    }
    expect_shape(t->out[0], dt, 3, cnt);
    int64_t o = 0;
    for (int64_t a = 0; a < cnt[0]; a++)
      for (int64_t b = 0; b < cnt[1]; b++)
        for (int64_t c = 0; c < cnt[2]; c++, o++) {
          int64_t off = (idx[0][a] * dims[1] + idx[1][b]) * dims[2] + idx[2][c];
          assert_memory_equal((const char *)t->out[0]->data + o * (int64_t)es, src + off * es, es);
        }
    nt_free(t);
  }
}

/* ---- Expand, Tile, Pad -------------------------------------------------- */

static void expand_tile(void **state) {
  nt *t = nt_new("Expand", 13, 2, 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(3, 1), F(1, 2, 3));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(3), I64(2, 1, 2))));
  expect_f32(t->out[0], 3, D(2, 3, 2), F(1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(2, 2))), "do not broadcast");
  nt_free(t);

  t = nt_new("Tile", 13, 2, 1);
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 2, D(2, 2), F(1, 2, 3, 4));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(2, 3))));
  expect_f32(t->out[0], 2, D(4, 6),
             F(1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(0, 1))));
  expect_shape(t->out[0], FP32, 2, D(0, 2));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(1, -1))), "negative repeat");
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(1))), "1 values for an input of rank 2");
  nt_free(t);
}

static nt *pad13(const char *mode, const onnx_tensor *x, const int64_t *pads, const float *value,
                 int *rc) {
  nt *t = nt_new_omit("Pad", 13, 3, 1, value ? 0 : 1u << 2, 0);
  if (mode) nt_str(t, "mode", mode);
  expect_ok(t, nt_init(t));
  *rc =
      nt_run(t, tens(t, x->dtype, x->ndim, x->dims, x->data),
             tens(t, INT64, 1, D(2 * x->ndim), pads), value ? tens(t, FP32, 0, NULL, value) : NULL);
  return t;
}

static void pad_modes(void **state) {
  float v[6] = {1, 2, 3, 4, 5, 6};
  onnx_tensor x = {.dtype = FP32, .ndim = 2, .dims = {2, 3}, .count = 6, .data = v};
  int rc;
  nt *t = pad13("reflect", &x, I64(0, 2, 0, 1), NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 2, D(2, 6), F(3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5));
  nt_free(t);
  t = pad13("edge", &x, I64(0, 2, 0, 1), NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 2, D(2, 6), F(1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6));
  nt_free(t);
  t = pad13(NULL, &x, I64(1, 2, 0, 1), F(9), &rc); /* constant, the default mode */
  expect_ok(t, rc);
  expect_f32(t->out[0], 2, D(3, 6), F(9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9));
  nt_free(t);
  t = pad13("reflect", &x, I64(1, 0, 2, 0), NULL, &rc); /* outer axis, wider than the axis */
  expect_ok(t, rc);
  expect_f32(t->out[0], 2, D(5, 3), F(4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6));
  nt_free(t);
  t = pad13("constant", &x, I64(0, -1, 0, 0), NULL, &rc); /* negative: crops */
  expect_ok(t, rc);
  expect_f32(t->out[0], 2, D(2, 2), F(2, 3, 5, 6));
  nt_free(t);
  t = pad13("edge", &x, I64(0, -4, 0, 0), NULL, &rc);
  expect_err(t, rc, "below zero");
  nt_free(t);
  t = nt_new("Pad", 13, 2, 1);
  nt_str(t, "mode", "wrap");
  expect_err(t, nt_init(t), "mode='wrap' is not supported");
  nt_free(t);

  /* a reflection many times wider than the axis, as numpy pads */
  float r3[3] = {1, 2, 3};
  onnx_tensor x3 = {.dtype = FP32, .ndim = 1, .dims = {3}, .count = 3, .data = r3};
  t = pad13("reflect", &x3, I64(4, 5), NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(12), F(1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2));
  nt_free(t);

  /* Pad-2: pads and value as attributes; int32 data */
  t = nt_new("Pad", 2, 1, 1);
  nt_ints(t, "pads", 2, I64(1, 1));
  nt_float(t, "value", -7);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT32, 1, D(2), I32(5, 6))));
  expect_i32(t->out[0], 1, D(4), I32(-7, 5, 6, -7));
  nt_free(t);
}

/* numpy's reflection of index i into [0, n), bouncing as often as needed. */
static int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

/* Random pads (negative ones crop) of random 1- to 3-D int16 tensors in
 * every mode, against a naive loop over the output. */
static void pad_against_naive(void **state) {
  static const char *const modes[] = {"constant", "reflect", "edge"};
  uint32_t seed = 777;
  int done = 0;
  for (int iter = 0; done < 300; iter++) {
    int r = 1 + iter % 3, mode = (iter / 3) % 3;
    int64_t dims[3], pads[6], od[3];
    bool ok = true;
    for (int d = 0; d < r; d++) {
      seed = seed * 1103515245u + 12345u;
      dims[d] = 1 + (seed >> 16) % 4;
    }
    for (int k = 0; k < 2 * r; k++) {
      seed = seed * 1103515245u + 12345u;
      pads[k] = (int64_t)((seed >> 16) % 9) - 2;
    }
    for (int d = 0; d < r; d++) {
      od[d] = dims[d] + pads[d] + pads[r + d];
      ok &= od[d] >= 0;
    }
    if (!ok) continue;
    int16_t src[64];
    for (int i = 0; i < 64; i++)
      src[i] = (int16_t)(i * 37 + 1);
    onnx_tensor x = {.dtype = INFERD_TYPE_INT16, .ndim = r, .data = src};
    onnx_tensor_set_shape(&x, r, dims);
    nt *t = nt_new("Pad", 11, 3, 1);
    nt_str(t, "mode", modes[mode]);
    expect_ok(t, nt_init(t));
    expect_ok(t, nt_run(t, tens(t, x.dtype, r, dims, src), tens(t, INT64, 1, D(2 * r), pads),
                        tens(t, INFERD_TYPE_INT16, 0, NULL, (const int16_t[]){-5})));
    expect_shape(t->out[0], INFERD_TYPE_INT16, r, od);
    const int16_t *o = t->out[0]->data;
    for (int64_t i = 0; i < t->out[0]->count; i++) {
      int64_t rest = i, off = 0, stride = 1;
      bool outside = false;
      for (int d = r - 1; d >= 0; d--) {
        int64_t s = rest % od[d] - pads[d];
        rest /= od[d];
        if (s < 0 || s >= dims[d]) {
          outside = true;
          s = mode == 2 ? (s < 0 ? 0 : dims[d] - 1) : reflect_index(s, dims[d]);
        }
        off += s * stride;
        stride *= dims[d];
      }
      assert_int_equal(o[i], mode == 0 && outside ? -5 : src[off]);
    }
    nt_free(t);
    done++;
  }
}

/* ---- DepthToSpace, SpaceToDepth, ReverseSequence, Dropout --------------- */

static void depth_space(void **state) {
  nt *t = nt_new("DepthToSpace", 13, 1, 1);
  nt_int(t, "blocksize", 2);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 4, D(1, 8, 1, 1), F(0, 1, 2, 3, 4, 5, 6, 7));
  expect_ok(t, nt_run(t, x));
  expect_f32(t->out[0], 4, D(1, 2, 2, 2), F(0, 2, 4, 6, 1, 3, 5, 7)); /* DCR */
  nt_free(t);

  t = nt_new("DepthToSpace", 13, 1, 1);
  nt_int(t, "blocksize", 2);
  nt_str(t, "mode", "CRD");
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 4, D(1, 8, 1, 1), F(0, 1, 2, 3, 4, 5, 6, 7));
  expect_ok(t, nt_run(t, x));
  expect_f32(t->out[0], 4, D(1, 2, 2, 2), F(0, 1, 2, 3, 4, 5, 6, 7));
  expect_err(t, nt_run(t, tens(t, FP32, 4, D(1, 6, 1, 1), F(0, 1, 2, 3, 4, 5))),
             "multiple of blocksize^2");
  nt_free(t);

  /* SpaceToDepth undoes DCR */
  t = nt_new("SpaceToDepth", 13, 1, 1);
  nt_int(t, "blocksize", 2);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 4, D(1, 2, 2, 2), F(0, 2, 4, 6, 1, 3, 5, 7))));
  expect_f32(t->out[0], 4, D(1, 8, 1, 1), F(0, 1, 2, 3, 4, 5, 6, 7));
  nt_free(t);
}

static void reverse_sequence_dropout(void **state) {
  nt *t = nt_new("ReverseSequence", 10, 2, 1);
  nt_int(t, "batch_axis", 0);
  nt_int(t, "time_axis", 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(2, 3))));
  expect_f32(t->out[0], 2, D(2, 3), F(2, 1, 3, 6, 5, 4));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(4, 0))), "outside [0, 3]");
  nt_free(t);

  /* inference: identity, mask all true; training with ratio 0 too */
  t = nt_new("Dropout", 13, 3, 2);
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 1, D(3), F(1, 2, 3));
  expect_ok(t, nt_run(t, x, tens(t, FP32, 0, NULL, F(0.5f)), tens(t, BOOL, 0, NULL, B(0))));
  expect_f32(t->out[0], 1, D(3), F(1, 2, 3));
  expect_u8(t->out[1], BOOL, 1, D(3), B(1, 1, 1));
  expect_ok(t, nt_run(t, x, tens(t, FP32, 0, NULL, F(0)), tens(t, BOOL, 0, NULL, B(1))));
  expect_f32(t->out[0], 1, D(3), F(1, 2, 3));
  expect_err(t, nt_run(t, x, tens(t, FP32, 0, NULL, F(0.5f)), tens(t, BOOL, 0, NULL, B(1))),
             "drops at random");
  nt_free(t);

  /* without mask or training_mode it becomes a view */
  t = nt_new("Dropout", 13, 1, 1);
  expect_ok(t, nt_init(t));
  assert_true(t->node.op->flags & ONNX_OP_ALIAS);
  nt_free(t);

  /* Dropout-7's mask has the input's type */
  t = nt_new("Dropout", 7, 1, 2);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 1, D(2), F(4, 5))));
  expect_f32(t->out[1], 1, D(2), F(1, 1));
  nt_free(t);

  t = nt_new("Dropout", 6, 1, 1); /* is_test defaults to 0: training */
  expect_err(t, nt_init(t), "is_test=0");
  nt_free(t);
}

/* ---- Gather family ------------------------------------------------------ */

static void gather(void **state) {
  nt *t = nt_new("Gather", 13, 2, 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(3, 2), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 2, D(2, 2), I64(-1, 0, 1, -3))));
  expect_f32(t->out[0], 3, D(2, 2, 2), F(5, 6, 1, 2, 3, 4, 1, 2));
  expect_ok(t, nt_run(t, x, tens(t, INT32, 0, NULL, I32(2)))); /* a scalar index */
  expect_f32(t->out[0], 1, D(2), F(5, 6));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(2), I64(0, 3))),
             "index 3 (indices[1]) is out of range for axis 0 of size 3");
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(-4))), "index -4");
  nt_free(t);

  t = nt_new("Gather", 13, 2, 1);
  nt_int(t, "axis", -1);
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 2, D(3, 2), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(3), I64(1, 1, 0))));
  expect_f32(t->out[0], 2, D(3, 3), F(2, 2, 1, 4, 4, 3, 6, 6, 5));
  nt_free(t);

  t = nt_new("Gather", 1, 2, 1); /* before opset 11 negative indices are out of range */
  expect_ok(t, nt_init(t));
  expect_err(t, nt_run(t, tens(t, FP32, 1, D(2), F(1, 2)), tens(t, INT64, 1, D(1), I64(-1))),
             "out of range");
  nt_free(t);
}

static void gather_scatter_elements(void **state) {
  nt *t = nt_new("GatherElements", 13, 2, 1);
  nt_int(t, "axis", 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 2, D(2, 2), I64(2, -3, 1, 1))));
  expect_f32(t->out[0], 2, D(2, 2), F(3, 1, 5, 5));
  expect_err(t, nt_run(t, x, tens(t, INT64, 2, D(3, 1), I64(0, 0, 0))), "do not fit");
  expect_err(t, nt_run(t, x, tens(t, INT64, 2, D(1, 1), I64(3))), "index 3");
  nt_free(t);

  /* ScatterElements-16 with duplicate indices: add accumulates, mul too */
  t = nt_new("ScatterElements", 16, 3, 1);
  nt_int(t, "axis", 1);
  nt_str(t, "reduction", "add");
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 2, D(1, 4), F(1, 2, 3, 4));
  onnx_tensor *ix = tens(t, INT64, 2, D(1, 3), I64(1, -3, 3));
  expect_ok(t, nt_run(t, x, ix, tens(t, FP32, 2, D(1, 3), F(10, 20, 30))));
  expect_f32(t->out[0], 2, D(1, 4), F(1, 32, 3, 34));
  nt_free(t);

  t = nt_new("ScatterElements", 16, 3, 1);
  nt_str(t, "reduction", "mul");
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT32, 1, D(3), I32(2, 3, 4)), tens(t, INT64, 1, D(2), I64(0, 0)),
                      tens(t, INT32, 1, D(2), I32(5, 7))));
  expect_i32(t->out[0], 1, D(3), I32(70, 3, 4));
  nt_free(t);

  t = nt_new("ScatterElements", 13, 3, 1); /* reduction needs 16 */
  nt_str(t, "reduction", "add");
  expect_err(t, nt_init(t), "needs opset 16");
  nt_free(t);

  t = nt_new("Scatter", 9, 3, 1); /* deprecated Scatter-9: no negative indices */
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 1, D(3), F(0, 0, 0));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(2)), tens(t, FP32, 1, D(1), F(5))));
  expect_f32(t->out[0], 1, D(3), F(0, 0, 5));
  expect_err(t, nt_run(t, x, tens(t, INT64, 1, D(1), I64(-1)), tens(t, FP32, 1, D(1), F(5))),
             "out of range");
  nt_free(t);
}

static void gather_scatter_nd(void **state) {
  nt *t = nt_new("GatherND", 13, 2, 1);
  nt_int(t, "batch_dims", 1);
  expect_ok(t, nt_init(t));
  /* data [2,2,2]; per batch, index rows of its 2x2 matrix */
  onnx_tensor *x = tens(t, INT32, 3, D(2, 2, 2), I32(0, 1, 2, 3, 4, 5, 6, 7));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 2, D(2, 1), I64(1, -2))));
  expect_i32(t->out[0], 2, D(2, 2), I32(2, 3, 4, 5));
  expect_err(t, nt_run(t, x, tens(t, INT64, 2, D(2, 1), I64(1, 2))), "index 2");
  nt_free(t);

  t = nt_new("GatherND", 13, 2, 1);
  expect_ok(t, nt_init(t));
  x = tens(t, INT32, 2, D(2, 2), I32(0, 1, 2, 3));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 2, D(2, 2), I64(0, 0, 1, 1))));
  expect_i32(t->out[0], 1, D(2), I32(0, 3));
  nt_free(t);

  t = nt_new("ScatterND", 16, 3, 1);
  nt_str(t, "reduction", "mul");
  expect_ok(t, nt_init(t));
  x = tens(t, FP32, 2, D(2, 2), F(1, 2, 3, 4));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 2, D(2, 1), I64(1, 1)),
                      tens(t, FP32, 2, D(2, 2), F(2, 3, 4, 5))));
  expect_f32(t->out[0], 2, D(2, 2), F(1, 2, 24, 60));
  expect_err(t,
             nt_run(t, x, tens(t, INT64, 2, D(1, 1), I64(0)), tens(t, FP32, 1, D(3), F(1, 2, 3))),
             "do not match");
  nt_free(t);
}

/* ---- OneHot, Compress, NonZero, Trilu, Unique, EyeLike ------------------ */

static void onehot_compress_nonzero(void **state) {
  nt *t = nt_new("OneHot", 11, 3, 1);
  nt_int(t, "axis", 0);
  expect_ok(t, nt_init(t));
  /* -1 is depth-1; 5 lies outside [-3, 3): an all-off column */
  expect_ok(t, nt_run(t, tens(t, INT64, 1, D(3), I64(-1, 5, 0)), tens(t, FP32, 0, NULL, F(3)),
                      tens(t, INT32, 1, D(2), I32(0, 7))));
  expect_i32(t->out[0], 2, D(3, 3), I32(0, 0, 7, 0, 0, 0, 7, 0, 0));
  nt_free(t);

  t = nt_new("Compress", 11, 2, 1);
  nt_int(t, "axis", -1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(2, 3), F(1, 2, 3, 4, 5, 6));
  expect_ok(t, nt_run(t, x, tens(t, BOOL, 1, D(2), B(0, 1))));
  expect_f32(t->out[0], 2, D(2, 1), F(2, 5));
  expect_err(t, nt_run(t, x, tens(t, BOOL, 1, D(4), B(0, 0, 0, 1))), "beyond the axis");
  nt_free(t);

  t = nt_new("NonZero", 13, 1, 1);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, D(2, 2), F(1, -0.0f, NAN, 0))));
  expect_i64(t->out[0], 2, D(2, 2), I64(0, 1, 0, 0));
  nt_free(t);
}

static void trilu_unique_eyelike(void **state) {
  nt *t = nt_new("Trilu", 14, 2, 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, INT64, 2, D(3, 3), I64(1, 2, 3, 4, 5, 6, 7, 8, 9));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 0, NULL, I64(-1))));
  expect_i64(t->out[0], 2, D(3, 3), I64(1, 2, 3, 4, 5, 6, 0, 8, 9));
  expect_ok(t, nt_run(t, x, tens(t, INT64, 0, NULL, I64(INT64_MIN)))); /* keeps everything */
  expect_i64(t->out[0], 2, D(3, 3), I64(1, 2, 3, 4, 5, 6, 7, 8, 9));
  nt_free(t);
  t = nt_new_omit("Trilu", 14, 2, 1, 1u << 1, 0);
  nt_int(t, "upper", 0);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT64, 2, D(2, 3), I64(1, 2, 3, 4, 5, 6)), NULL));
  expect_i64(t->out[0], 2, D(2, 3), I64(1, 0, 0, 4, 5, 0));
  nt_free(t);

  /* Unique, unsorted: order of first occurrence */
  t = nt_new("Unique", 11, 1, 4);
  nt_int(t, "sorted", 0);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 1, D(6), F(2, 1, 1, 3, 4, 3))));
  expect_f32(t->out[0], 1, D(4), F(2, 1, 3, 4));
  expect_i64(t->out[1], 1, D(4), I64(0, 1, 3, 4));
  expect_i64(t->out[2], 1, D(6), I64(0, 1, 1, 2, 3, 2));
  expect_i64(t->out[3], 1, D(4), I64(1, 2, 2, 1));
  nt_free(t);

  /* sorted rows (axis -2 of [3,2]) */
  t = nt_new("Unique", 11, 1, 4);
  nt_int(t, "axis", -2);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT64, 2, D(3, 2), I64(2, 1, 0, 5, 2, 1))));
  expect_i64(t->out[0], 2, D(2, 2), I64(0, 5, 2, 1));
  expect_i64(t->out[1], 1, D(2), I64(1, 0));
  expect_i64(t->out[2], 1, D(3), I64(1, 0, 1));
  expect_i64(t->out[3], 1, D(2), I64(1, 2));
  nt_free(t);

  t = nt_new("EyeLike", 9, 1, 1);
  nt_int(t, "k", -1);
  nt_int(t, "dtype", ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
  expect_ok(t, nt_init(t));
  onnx_tensor shape_only = {.dtype = FP32, .ndim = 2, .dims = {3, 2}, .count = 6};
  expect_ok(t, nt_run(t, &shape_only)); /* reads the shape only */
  expect_i32(t->out[0], 2, D(3, 2), I32(0, 0, 1, 0, 0, 1));
  nt_free(t);
}

/* ---- generate ----------------------------------------------------------- */

static void generate(void **state) {
  nt *t = nt_new("Range", 11, 3, 1);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT32, 0, NULL, I32(10)), tens(t, INT32, 0, NULL, I32(4)),
                      tens(t, INT32, 0, NULL, I32(-3))));
  expect_i32(t->out[0], 1, D(2), I32(10, 7));
  expect_ok(t, nt_run(t, tens(t, FP32, 0, NULL, F(1)), tens(t, FP32, 0, NULL, F(2)),
                      tens(t, FP32, 0, NULL, F(0.25f))));
  expect_f32(t->out[0], 1, D(4), F(1, 1.25f, 1.5f, 1.75f));
  expect_ok(t, nt_run(t, tens(t, INT64, 0, NULL, I64(INT64_MIN)),
                      tens(t, INT64, 0, NULL, I64(INT64_MIN + 5)),
                      tens(t, INT64, 0, NULL, I64(2)))); /* no overflow in the count */
  expect_i64(t->out[0], 1, D(3), I64(INT64_MIN, INT64_MIN + 2, INT64_MIN + 4));
  expect_ok(t, nt_run(t, tens(t, INT32, 0, NULL, I32(1)), tens(t, INT32, 0, NULL, I32(4)),
                      tens(t, INT32, 0, NULL, I32(-1))));
  expect_shape(t->out[0], INT32, 1, D(0));
  expect_err(t,
             nt_run(t, tens(t, INT32, 0, NULL, I32(1)), tens(t, INT32, 0, NULL, I32(4)),
                    tens(t, INT32, 0, NULL, I32(0))),
             "delta must not be 0");
  nt_free(t);

  t = nt_new("ConstantOfShape", 9, 1, 1);
  expect_ok(t, nt_init(t)); /* no value: float 0 */
  expect_ok(t, nt_run(t, tens(t, INT64, 1, D(2), I64(2, 1))));
  expect_f32(t->out[0], 2, D(2, 1), F(0, 0));
  expect_err(t, nt_run(t, tens(t, INT64, 1, D(1), I64(-2))), "negative dimension");
  nt_free(t);

  t = nt_new("Size", 13, 1, 1);
  expect_ok(t, nt_init(t));
  onnx_tensor shape_only = {.dtype = FP32, .ndim = 3, .dims = {2, 3, 4}, .count = 24};
  expect_ok(t, nt_run(t, &shape_only));
  expect_i64(t->out[0], 0, NULL, I64(24));
  nt_free(t);

  t = nt_new("HannWindow", 17, 1, 1);
  nt_int(t, "periodic", 0);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, INT64, 0, NULL, I64(5))));
  expect_f32(t->out[0], 1, D(5), F(0, 0.5f, 1, 0.5f, 0));
  nt_free(t);
}

/* ---- Resize ------------------------------------------------------------- */

/* Resize-13 of the 1-D [1,2,3,4] with scales or sizes (one of them NULL),
 * attributes set by the caller through setup. */
static nt *resize1d(const char *mode, const char *coord, const char *nearest, float scale,
                    int64_t size, const float *roi, int *rc) {
  unsigned omit = (roi ? 0 : 1u << 1) | (scale > 0 ? 1u << 3 : 1u << 2);
  nt *t = nt_new_omit("Resize", 13, 4, 1, omit, 0);
  if (mode) nt_str(t, "mode", mode);
  if (coord) nt_str(t, "coordinate_transformation_mode", coord);
  if (nearest) nt_str(t, "nearest_mode", nearest);
  nt_float(t, "extrapolation_value", 9);
  expect_ok(t, nt_init(t));
  *rc = nt_run(t, tens(t, FP32, 1, D(4), F(1, 2, 3, 4)), roi ? tens(t, FP32, 1, D(2), roi) : NULL,
               scale > 0 ? tens(t, FP32, 1, D(1), &scale) : NULL,
               scale > 0 ? NULL : tens(t, INT64, 1, D(1), &size));
  return t;
}

static void resize_coordinate_modes(void **state) {
  int rc;
  nt *t = resize1d("linear", NULL, NULL, 2, 0, NULL, &rc); /* half_pixel */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8), F(1, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f, 4));
  nt_free(t);
  t = resize1d("linear", "align_corners", NULL, 0, 7, NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(7), F(1, 1.5f, 2, 2.5f, 3, 3.5f, 4));
  nt_free(t);
  t = resize1d("linear", "asymmetric", NULL, 2, 0, NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8), F(1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4));
  nt_free(t);
  t = resize1d("nearest", "asymmetric", "round_prefer_ceil", 2, 0, NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8), F(1, 2, 2, 3, 3, 4, 4, 4));
  nt_free(t);
  t = resize1d("nearest", "asymmetric", NULL, 2, 0, NULL, &rc); /* round_prefer_floor */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8), F(1, 1, 2, 2, 3, 3, 4, 4));
  nt_free(t);
  t = resize1d("nearest", "tf_half_pixel_for_nn", "floor", 0, 2, NULL, &rc); /* (x+.5)*2 */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(2), F(2, 4));
  nt_free(t);
  t = resize1d("linear", "pytorch_half_pixel", NULL, 0, 1, NULL, &rc); /* one output: x = 0 */
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(1), F(1));
  nt_free(t);
  t = resize1d("linear", "tf_crop_and_resize", NULL, 0, 3, F(0.5f, 1.5f), &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(3), F(2.5f, 4, 9)); /* the last lies outside: extrapolated */
  nt_free(t);
  /* cubic, A = -0.75 (values from ONNX's reference implementation) */
  t = resize1d("cubic", NULL, NULL, 2, 0, NULL, &rc);
  expect_ok(t, rc);
  expect_f32(t->out[0], 1, D(8),
             F(0.89453125f, 1.19140625f, 1.66796875f, 2.296875f, 2.703125f, 3.33203125f,
               3.80859375f, 4.10546875f));
  nt_free(t);
  t = resize1d("linear", NULL, NULL, 0, 0, NULL, &rc); /* sizes of 0 elements */
  expect_ok(t, rc);
  expect_shape(t->out[0], FP32, 1, D(0));
  nt_free(t);

  t = nt_new("Resize", 13, 4, 1); /* both scales and sizes */
  expect_ok(t, nt_init(t));
  expect_err(t,
             nt_run(t, tens(t, FP32, 1, D(2), F(1, 2)), tens(t, FP32, 1, D(0), NULL),
                    tens(t, FP32, 1, D(1), F(2)), tens(t, INT64, 1, D(1), I64(4))),
             "exactly one of scales and sizes");
  nt_free(t);
  t = nt_new("Resize", 13, 3, 1);
  nt_str(t, "coordinate_transformation_mode", "half_pixel_symmetric");
  expect_err(t, nt_init(t), "is not supported");
  nt_free(t);
}

/* Bilinear over two axes with align_corners, on uint8 (rounded), and the
 * deprecated Upsample. */
static void resize_2d_upsample(void **state) {
  nt *t = nt_new_omit("Resize", 13, 4, 1, (1u << 1) | (1u << 2), 0);
  nt_str(t, "mode", "linear");
  nt_str(t, "coordinate_transformation_mode", "align_corners");
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, D(2, 2), F(1, 2, 3, 4)), NULL, NULL,
                      tens(t, INT64, 1, D(2), I64(3, 3))));
  expect_f32(t->out[0], 2, D(3, 3), F(1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4));
  expect_ok(t, nt_run(t, tens(t, INFERD_TYPE_UINT8, 1, D(2), B(0, 255)), NULL, NULL,
                      tens(t, INT64, 1, D(1), I64(3))));
  expect_u8(t->out[0], INFERD_TYPE_UINT8, 1, D(3), B(0, 128, 255));
  nt_free(t);

  t = nt_new("Upsample", 9, 2, 1); /* nearest, floor of x / scale */
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 2, D(1, 2), F(1, 2));
  expect_ok(t, nt_run(t, x, tens(t, FP32, 1, D(2), F(1, 3))));
  expect_f32(t->out[0], 2, D(1, 6), F(1, 1, 1, 2, 2, 2));
  expect_err(t, nt_run(t, x, tens(t, FP32, 1, D(2), F(1, 0.5f))), "at least 1");
  nt_free(t);
}

/* Shapes that cross the kernel's batching: a row longer than its column
 * chunk (a ramp, which linear align_corners reproduces exactly) and a 5-D
 * cubic resize whose outer tap combinations fill several batches or part
 * of one (a constant, which every cubic tap set reproduces). */
static void resize_large(void **state) {
  nt *t = nt_new_omit("Resize", 13, 4, 1, (1u << 1) | (1u << 2), 0);
  nt_str(t, "mode", "linear");
  nt_str(t, "coordinate_transformation_mode", "align_corners");
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 2, D(2, 100), iota(t, 200)), NULL, NULL,
                      tens(t, INT64, 1, D(2), I64(3, 300))));
  expect_shape(t->out[0], FP32, 2, D(3, 300));
  const float *o = t->out[0]->data;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 300; j++) {
      double want = i * 0.5 * 100 + j * 99.0 / 299.0;
      assert_true(fabs(o[i * 300 + j] - want) < 1e-3);
    }
  nt_free(t);

  /* asymmetric x / 2: whole positions have one tap, the others four, so
   * rows have 1 to 256 combinations: full batches and partial ones */
  t = nt_new_omit("Resize", 13, 4, 1, (1u << 1) | (1u << 3), 0);
  nt_str(t, "mode", "cubic");
  nt_str(t, "coordinate_transformation_mode", "asymmetric");
  expect_ok(t, nt_init(t));
  float ones[3 * 3 * 3 * 3 * 3];
  for (int i = 0; i < 243; i++)
    ones[i] = 7;
  expect_ok(t, nt_run(t, tens(t, FP32, 5, D(3, 3, 3, 3, 3), ones), NULL,
                      tens(t, FP32, 1, D(5), F(2, 2, 2, 2, 2)), NULL));
  expect_shape(t->out[0], FP32, 5, D(6, 6, 6, 6, 6));
  for (int64_t i = 0; i < t->out[0]->count; i++)
    assert_true(fabsf(((const float *)t->out[0]->data)[i] - 7) < 1e-4f);
  nt_free(t);
}

/* GridSample on [[1,2],[3,4]] with align_corners: the centre, two
 * corners, and a point beyond the right edge under each padding mode. */
static void grid_sample_roi_align(void **state) {
  static const char *const pads[] = {"zeros", "border", "reflection"};
  static const float want[3][4] = {{2.5f, 1, 2, 0}, {2.5f, 1, 2, 3}, {2.5f, 1, 2, 2}};
  for (int m = 0; m < 3; m++) {
    nt *t = nt_new("GridSample", 16, 2, 1);
    nt_int(t, "align_corners", 1);
    nt_str(t, "padding_mode", pads[m]);
    expect_ok(t, nt_init(t));
    expect_ok(t, nt_run(t, tens(t, FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4)),
                        tens(t, FP32, 4, D(1, 1, 4, 2), F(0, 0, -1, -1, 1, -1, 3, 0))));
    expect_f32(t->out[0], 4, D(1, 1, 1, 4), want[m]);
    nt_free(t);
  }
  nt *t = nt_new("GridSample", 16, 2, 1);
  nt_str(t, "mode", "nearest"); /* (0.25, 0.25) of a 2x2 is pixel (0, 0) without align_corners */
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4)),
                      tens(t, FP32, 4, D(1, 1, 2, 2), F(-0.25f, -0.25f, 0.6f, 0.6f))));
  expect_f32(t->out[0], 4, D(1, 1, 1, 2), F(1, 4));
  expect_err(t,
             nt_run(t, tens(t, FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4)),
                    tens(t, FP32, 4, D(2, 1, 1, 2), F(0, 0, 0, 0))),
             "must be [N,C,H,W] and [N,Ho,Wo,2]");
  nt_free(t);

  /* RoiAlign: the region (0,0)-(1,1) as one bin of one sample: at (0.5,
   * 0.5) as given (version 10), at (0, 0) shifted by half a pixel (16) */
  t = nt_new("RoiAlign", 10, 3, 1);
  nt_int(t, "sampling_ratio", 1);
  expect_ok(t, nt_init(t));
  onnx_tensor *x = tens(t, FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4));
  onnx_tensor *rois = tens(t, FP32, 2, D(1, 4), F(0, 0, 1, 1));
  expect_ok(t, nt_run(t, x, rois, tens(t, INT64, 1, D(1), I64(0))));
  expect_f32(t->out[0], 4, D(1, 1, 1, 1), F(2.5f));
  expect_err(t, nt_run(t, x, rois, tens(t, INT64, 1, D(1), I64(1))), "outside [0, 1)");
  nt_free(t);
  t = nt_new("RoiAlign", 16, 3, 1);
  nt_int(t, "sampling_ratio", 1);
  expect_ok(t, nt_init(t));
  expect_ok(t, nt_run(t, tens(t, FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4)),
                      tens(t, FP32, 2, D(1, 4), F(0, 0, 1, 1)), tens(t, INT64, 1, D(1), I64(0))));
  expect_f32(t->out[0], 4, D(1, 1, 1, 1), F(1));
  nt_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(transpose_all_permutations),
      cmocka_unit_test(transpose_random),
      cmocka_unit_test(transpose_shapes),
      cmocka_unit_test(squeeze_unsqueeze),
      cmocka_unit_test(concat_split),
      cmocka_unit_test(slice_clamps_and_steps),
      cmocka_unit_test(slice_against_naive),
      cmocka_unit_test(expand_tile),
      cmocka_unit_test(pad_modes),
      cmocka_unit_test(pad_against_naive),
      cmocka_unit_test(depth_space),
      cmocka_unit_test(reverse_sequence_dropout),
      cmocka_unit_test(gather),
      cmocka_unit_test(gather_scatter_elements),
      cmocka_unit_test(gather_scatter_nd),
      cmocka_unit_test(onehot_compress_nonzero),
      cmocka_unit_test(trilu_unique_eyelike),
      cmocka_unit_test(generate),
      cmocka_unit_test(resize_coordinate_modes),
      cmocka_unit_test(resize_2d_upsample),
      cmocka_unit_test(resize_large),
      cmocka_unit_test(grid_sample_roi_align),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
