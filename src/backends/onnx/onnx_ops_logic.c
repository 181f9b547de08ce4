/* backends/onnx/onnx_ops_logic.c: comparisons and logic: Equal, Less,
 * Greater, LessOrEqual, GreaterOrEqual (numbers or bools to bool), And, Or,
 * Xor, Not (bools), BitShift (unsigned integers), Where (a bool selecting
 * between two tensors of any fixed-size type), and the predicates IsNaN
 * and IsInf. The binary and ternary ones broadcast like numpy.
 *
 * A BOOL element is a byte that a request may fill with anything: inputs
 * read it as "non-zero", outputs write 0 or 1. float16 and bfloat16 are
 * compared as the floats they convert to. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

#define N_DTYPES (INFERD_TYPE_BF16 + 1)
#define KERNEL   ONNX_VECTORIZE

/* ---- binary kernels ----------------------------------------------------- */

/* Each input type as M(..., name, storage T, compared as C, load). */
#define ID(x)   (x)
#define BOOL(x) ((x) != 0)
#define TYPES_NUM(M, ...)                                                                          \
  M(__VA_ARGS__, f32, float, float, ID)                                                            \
  M(__VA_ARGS__, f64, double, double, ID)                                                          \
  M(__VA_ARGS__, f16, uint16_t, float, fp16_to_float)                                              \
  M(__VA_ARGS__, bf16, uint16_t, float, bf16_to_float)                                             \
  M(__VA_ARGS__, i8, int8_t, int8_t, ID)                                                           \
  M(__VA_ARGS__, i16, int16_t, int16_t, ID)                                                        \
  M(__VA_ARGS__, i32, int32_t, int32_t, ID)                                                        \
  M(__VA_ARGS__, i64, int64_t, int64_t, ID)                                                        \
  M(__VA_ARGS__, u8, uint8_t, uint8_t, ID)                                                         \
  M(__VA_ARGS__, u16, uint16_t, uint16_t, ID)                                                      \
  M(__VA_ARGS__, u32, uint32_t, uint32_t, ID)                                                      \
  M(__VA_ARGS__, u64, uint64_t, uint64_t, ID)
#define TYPES_BOOL(M, ...) M(__VA_ARGS__, b8, uint8_t, uint8_t, BOOL)
#define TYPES_UINT(M, ...)                                                                         \
  M(__VA_ARGS__, u8, uint8_t, uint8_t, ID)                                                         \
  M(__VA_ARGS__, u16, uint16_t, uint16_t, ID)                                                      \
  M(__VA_ARGS__, u32, uint32_t, uint32_t, ID)                                                      \
  M(__VA_ARGS__, u64, uint64_t, uint64_t, ID)

#define TAB_NUM(OP)  ONNX_TAB_NUMERIC(ONNX_K3, OP)
#define TAB_UINT(OP) ONNX_TAB_UNSIGNED(ONNX_K3, OP)
#define TAB_BOOL(OP) [INFERD_TYPE_BOOL] = ONNX_K3(OP, b8)

/* Kernels whose output is OT: bool (uint8_t) for comparisons and logic,
 * the input's type for BitShift. */
#define BIN_KERNELS(OP, OT, EXPR, N, T, C, LD)                                                     \
  KERNEL static void OP##_##N##_vv(void *o_, const void *a_, const void *b_, int64_t n) {          \
    OT *restrict o = o_;                                                                           \
    const T *restrict a = a_, *restrict b = b_;                                                    \
    for (int64_t i = 0; i < n; i++) {                                                              \
      C x = LD(a[i]), y = LD(b[i]);                                                                \
      o[i] = (OT)(EXPR(x, y, T));                                                                  \
    }                                                                                              \
  }                                                                                                \
  KERNEL static void OP##_##N##_vs(void *o_, const void *a_, const void *b_, int64_t n) {          \
    OT *restrict o = o_;                                                                           \
    const T *restrict a = a_;                                                                      \
    C y = LD(*(const T *)b_);                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                              \
      C x = LD(a[i]);                                                                              \
      o[i] = (OT)(EXPR(x, y, T));                                                                  \
    }                                                                                              \
  }                                                                                                \
  KERNEL static void OP##_##N##_sv(void *o_, const void *a_, const void *b_, int64_t n) {          \
    OT *restrict o = o_;                                                                           \
    const T *restrict b = b_;                                                                      \
    C x = LD(*(const T *)a_);                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                              \
      C y = LD(b[i]);                                                                              \
      o[i] = (OT)(EXPR(x, y, T));                                                                  \
    }                                                                                              \
  }

#define E_EQ(x, y, T)  ((x) == (y))
#define E_LT(x, y, T)  ((x) < (y))
#define E_GT(x, y, T)  ((x) > (y))
#define E_LE(x, y, T)  ((x) <= (y))
#define E_GE(x, y, T)  ((x) >= (y))
#define E_AND(x, y, T) ((x) & (y))
#define E_OR(x, y, T)  ((x) | (y))
#define E_XOR(x, y, T) ((x) ^ (y))
/* Shifting by the type's width or more gives 0 (C leaves it undefined).
 * Narrow types shift as int, which holds 65535 << 15. */
#define E_SHL(x, y, T) ((uint64_t)(y) >= 8 * sizeof(T) ? 0 : (T)(x) << (y))
#define E_SHR(x, y, T) ((uint64_t)(y) >= 8 * sizeof(T) ? 0 : (T)(x) >> (y))

TYPES_NUM(BIN_KERNELS, eq, uint8_t, E_EQ)
TYPES_BOOL(BIN_KERNELS, eq, uint8_t, E_EQ)
TYPES_NUM(BIN_KERNELS, lt, uint8_t, E_LT)
TYPES_NUM(BIN_KERNELS, gt, uint8_t, E_GT)
TYPES_NUM(BIN_KERNELS, le, uint8_t, E_LE)
TYPES_NUM(BIN_KERNELS, ge, uint8_t, E_GE)
TYPES_BOOL(BIN_KERNELS, and, uint8_t, E_AND)
TYPES_BOOL(BIN_KERNELS, or, uint8_t, E_OR)
TYPES_BOOL(BIN_KERNELS, xor, uint8_t, E_XOR)
#define SHIFT_KERNELS(OP, EXPR, N, T, C, LD) BIN_KERNELS(OP, T, EXPR, N, T, C, LD)
TYPES_UINT(SHIFT_KERNELS, shl, E_SHL)
TYPES_UINT(SHIFT_KERNELS, shr, E_SHR)

static const onnx_bin_kernels eq_k[N_DTYPES] = {TAB_NUM(eq), TAB_BOOL(eq)};
static const onnx_bin_kernels lt_k[N_DTYPES] = {TAB_NUM(lt)};
static const onnx_bin_kernels gt_k[N_DTYPES] = {TAB_NUM(gt)};
static const onnx_bin_kernels le_k[N_DTYPES] = {TAB_NUM(le)};
static const onnx_bin_kernels ge_k[N_DTYPES] = {TAB_NUM(ge)};
static const onnx_bin_kernels and_k[N_DTYPES] = {TAB_BOOL(and)};
static const onnx_bin_kernels or_k[N_DTYPES] = {TAB_BOOL(or)};
static const onnx_bin_kernels xor_k[N_DTYPES] = {TAB_BOOL(xor)};
static const onnx_bin_kernels shl_k[N_DTYPES] = {TAB_UINT(shl)};
static const onnx_bin_kernels shr_k[N_DTYPES] = {TAB_UINT(shr)};

/* Comparisons and logic give BOOL. */
static int binary_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_bin_kernels *k = n->op->kernels;
  if (in[0]->dtype != in[1]->dtype)
    return err_set(e, -EINVAL, "inputs have types %s and %s; they must match",
                   dtype_name(in[0]->dtype), dtype_name(in[1]->dtype));
  if (!k[in[0]->dtype].vv)
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  out[0]->dtype = INFERD_TYPE_BOOL;
  return onnx_broadcast_shape(in[0], in[1], out[0], e);
}

static int binary_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_bin_kernels *k = n->op->kernels;
  onnx_binary_apply(&k[in[0]->dtype], in[0], in[1], out[0]);
  return 0;
}

#define BINARY_OP(VAR, NAME, K)                                                                    \
  static const onnx_op VAR = {.kernels = K,                                                        \
                              .name = NAME,                                                        \
                              .domain = "",                                                        \
                              .min_inputs = 2,                                                     \
                              .max_inputs = 2,                                                     \
                              .min_outputs = 1,                                                    \
                              .max_outputs = 1,                                                    \
                              .infer = binary_infer,                                               \
                              .run = binary_run};
BINARY_OP(op_equal, "Equal", eq_k)
BINARY_OP(op_less, "Less", lt_k)
BINARY_OP(op_greater, "Greater", gt_k)
BINARY_OP(op_less_equal, "LessOrEqual", le_k)
BINARY_OP(op_greater_equal, "GreaterOrEqual", ge_k)
BINARY_OP(op_and, "And", and_k)
BINARY_OP(op_or, "Or", or_k)
BINARY_OP(op_xor, "Xor", xor_k)

/* ---- BitShift ----------------------------------------------------------- */

typedef struct bitshift_attr {
  const onnx_bin_kernels *k; /* shl_k or shr_k */
} bitshift_attr;

static int bitshift_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  bitshift_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  const char *dir;
  int rc = onnx_attr_string(p, "direction", NULL, a, &dir, e);
  if (rc) return rc;
  if (!dir) return err_set(e, -EINVAL, "attribute 'direction' is required");
  if (strcmp(dir, "LEFT") == 0)
    at->k = shl_k;
  else if (strcmp(dir, "RIGHT") == 0)
    at->k = shr_k;
  else
    return err_set(e, -EINVAL, "attribute direction='%s' is not LEFT or RIGHT", dir);
  return 0;
}

static int bitshift_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  const onnx_bin_kernels *k = ((const bitshift_attr *)n->attr)->k;
  if (in[0]->dtype != in[1]->dtype)
    return err_set(e, -EINVAL, "inputs have types %s and %s; they must match",
                   dtype_name(in[0]->dtype), dtype_name(in[1]->dtype));
  if (!k[in[0]->dtype].vv)
    return err_set(e, -ENOTSUP, "type %s is not supported (unsigned integers only)",
                   dtype_name(in[0]->dtype));
  out[0]->dtype = in[0]->dtype;
  return onnx_broadcast_shape(in[0], in[1], out[0], e);
}

static int bitshift_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const onnx_bin_kernels *k = ((const bitshift_attr *)n->attr)->k;
  onnx_binary_apply(&k[in[0]->dtype], in[0], in[1], out[0]);
  return 0;
}

static const onnx_op op_bitshift = {.name = "BitShift",
                                    .domain = "",
                                    .min_inputs = 2,
                                    .max_inputs = 2,
                                    .min_outputs = 1,
                                    .max_outputs = 1,
                                    .init = bitshift_init,
                                    .infer = bitshift_infer,
                                    .run = bitshift_run};

/* ---- Not ---------------------------------------------------------------- */

static int not_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  if (in[0]->dtype != INFERD_TYPE_BOOL)
    return err_set(e, -ENOTSUP, "type %s is not supported (BOOL only)", dtype_name(in[0]->dtype));
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

KERNEL static int not_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  const uint8_t *restrict x = in[0]->data;
  uint8_t *restrict y = out[0]->data;
  for (int64_t i = 0; i < in[0]->count; i++)
    y[i] = x[i] == 0;
  return 0;
}

static const onnx_op op_not = {.name = "Not",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 1,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .infer = not_infer,
                               .run = not_run};

/* ---- IsNaN, IsInf ------------------------------------------------------- */

typedef struct isinf_attr {
  bool pos, neg; /* detect_positive, detect_negative */
} isinf_attr;

static int isinf_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  isinf_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  int rc;
  if ((rc = onnx_attr_bool(p, "detect_positive", true, &at->pos, e)) ||
      (rc = onnx_attr_bool(p, "detect_negative", true, &at->neg, e)))
    return rc;
  return 0;
}

static int predicate_infer(const onnx_node *n, const onnx_tensor *const *in,
                           onnx_tensor *const *out, err *e) {
  if (!onnx_dtype_is_floating(in[0]->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[0]->dtype));
  out[0]->dtype = INFERD_TYPE_BOOL;
  onnx_tensor_set_shape(out[0], in[0]->ndim, in[0]->dims);
  return 0;
}

/* What IsNaN and IsInf test, on a value converted to double (exactly). */
typedef struct predicate {
  bool nan, pos, neg;
} predicate;

#define PREDICATE(N, T, LD)                                                                        \
  KERNEL static void predicate_##N(const T *restrict x, uint8_t *restrict y, int64_t n,            \
                                   predicate p) {                                                  \
    for (int64_t i = 0; i < n; i++) {                                                              \
      double v = LD(x[i]);                                                                         \
      y[i] = (p.nan && v != v) || (p.pos && v == INFINITY) || (p.neg && v == -INFINITY);           \
    }                                                                                              \
  }
PREDICATE(f32, float, ID)
PREDICATE(f64, double, ID)
PREDICATE(f16, uint16_t, fp16_to_float)
PREDICATE(bf16, uint16_t, bf16_to_float)

static void predicate_apply(const onnx_tensor *x, uint8_t *y, predicate p) {
  switch (x->dtype) {
  case INFERD_TYPE_FP32: predicate_f32(x->data, y, x->count, p); break;
  case INFERD_TYPE_FP64: predicate_f64(x->data, y, x->count, p); break;
  case INFERD_TYPE_FP16: predicate_f16(x->data, y, x->count, p); break;
  default: predicate_bf16(x->data, y, x->count, p); break;
  }
}

static int isnan_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  predicate_apply(in[0], out[0]->data, (predicate){.nan = true});
  return 0;
}

static int isinf_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const isinf_attr *at = n->attr;
  predicate_apply(in[0], out[0]->data, (predicate){.pos = at->pos, .neg = at->neg});
  return 0;
}

static const onnx_op op_isnan = {.name = "IsNaN",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .infer = predicate_infer,
                                 .run = isnan_run};
static const onnx_op op_isinf = {.name = "IsInf",
                                 .domain = "",
                                 .min_inputs = 1,
                                 .max_inputs = 1,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = isinf_init,
                                 .infer = predicate_infer,
                                 .run = isinf_run};

/* ---- Where -------------------------------------------------------------- */

static int where_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  if (in[0]->dtype != INFERD_TYPE_BOOL)
    return err_set(e, -EINVAL, "the condition has type %s; it must be BOOL",
                   dtype_name(in[0]->dtype));
  if (in[1]->dtype != in[2]->dtype)
    return err_set(e, -EINVAL, "X and Y have types %s and %s; they must match",
                   dtype_name(in[1]->dtype), dtype_name(in[2]->dtype));
  if (dtype_size(in[1]->dtype) == 0)
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(in[1]->dtype));
  onnx_tensor shape;
  int rc;
  if ((rc = onnx_broadcast_shape(in[0], in[1], &shape, e)) ||
      (rc = onnx_broadcast_shape(&shape, in[2], &shape, e)))
    return rc;
  out[0]->dtype = in[1]->dtype;
  onnx_tensor_set_shape(out[0], shape.ndim, shape.dims);
  return 0;
}

/* A run of n selections; sc, sx, sy are 0 (one repeated value) or 1. Where
 * copies bytes, so one kernel per element size serves every type. */
#define WHERE(T)                                                                                   \
  KERNEL static void where_##T(T *restrict o, const uint8_t *restrict c, const T *restrict x,      \
                               const T *restrict y, int64_t n, int64_t sc, int64_t sx,             \
                               int64_t sy) {                                                       \
    if (sc && sx && sy)                                                                            \
      for (int64_t i = 0; i < n; i++)                                                              \
        o[i] = c[i] ? x[i] : y[i];                                                                 \
    else                                                                                           \
      for (int64_t i = 0; i < n; i++)                                                              \
        o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                                                  \
  }
WHERE(uint8_t)
WHERE(uint16_t)
WHERE(uint32_t)
WHERE(uint64_t)

static int where_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  onnx_tensor *o = out[0];
  if (o->count == 0) return 0;
  size_t es = dtype_size(o->dtype);
  onnx_bcast bc;
  onnx_bcast_init(&bc, 3, in, o);
  int last = bc.nd - 1;
  int64_t run = bc.n[last], sc = bc.s[0][last], sx = bc.s[1][last], sy = bc.s[2][last];
  int64_t idx[ONNX_MAX_DIMS] = {0}, off[ONNX_BCAST_MAX_IN] = {0};
  for (int64_t done = 0; done < o->count; done += run) {
    const uint8_t *c = (const uint8_t *)in[0]->data + off[0];
    const char *x = (const char *)in[1]->data + (size_t)off[1] * es;
    const char *y = (const char *)in[2]->data + (size_t)off[2] * es;
    char *po = (char *)o->data + (size_t)done * es;
    switch (es) {
    case 1: where_uint8_t((void *)po, c, (const void *)x, (const void *)y, run, sc, sx, sy); break;
    case 2: where_uint16_t((void *)po, c, (const void *)x, (const void *)y, run, sc, sx, sy); break;
    case 4: where_uint32_t((void *)po, c, (const void *)x, (const void *)y, run, sc, sx, sy); break;
    default: where_uint64_t((void *)po, c, (const void *)x, (const void *)y, run, sc, sx, sy);
    }
    onnx_bcast_next(&bc, idx, off);
  }
  return 0;
}

static const onnx_op op_where = {.name = "Where",
                                 .domain = "",
                                 .min_inputs = 3,
                                 .max_inputs = 3,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .infer = where_infer,
                                 .run = where_run};

/* Equal, Less and Greater before 7 (and And/Or/Xor before 7) broadcast by
 * an `axis` attribute and are not listed; later versions only widened the
 * types. */
const onnx_op_row onnx_ops_logic[] = {
    {&op_equal, 7},
    {&op_equal, 11},
    {&op_equal, 13},
    {&op_less, 7},
    {&op_less, 9},
    {&op_less, 13},
    {&op_greater, 7},
    {&op_greater, 9},
    {&op_greater, 13},
    {&op_less_equal, 12},
    {&op_less_equal, 16},
    {&op_greater_equal, 12},
    {&op_greater_equal, 16},
    {&op_and, 7},
    {&op_or, 7},
    {&op_xor, 7},
    {&op_not, 1},
    {&op_bitshift, 11},
    {&op_isnan, 9},
    {&op_isnan, 13},
    {&op_isinf, 10},
    {&op_where, 9},
    {&op_where, 16},
    {NULL, 0},
};
