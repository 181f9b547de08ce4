/* backends/onnx/onnx_ops_cast.c: Cast and CastLike between the numeric
 * types, bool and the 16-bit floats.
 *
 * A cast goes through a wide intermediate a block at a time: int64 bits
 * between integer types (and bool), so that integer casts are exact and wrap
 * as in numpy; double when either side is a floating type. Floating values
 * that do not fit an integer type saturate (NaN gives 0) instead of the
 * undefined behaviour of a C conversion; ONNX leaves that case open. Casts
 * to and from strings are not supported. */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_ops.h"

#define BLOCK 256

static bool castable(inferd_dtype t) {
  return t == INFERD_TYPE_BOOL || onnx_dtype_is_int(t) || onnx_dtype_is_float(t) ||
         t == INFERD_TYPE_FP16 || t == INFERD_TYPE_BF16;
}

typedef struct cast_attr {
  inferd_dtype to;
} cast_attr;

/* Cast 1 named its target type by a STRING attribute: one of the names of
 * TensorProto.DataType. */
static int to_from_name(const Onnx__NodeProto *p, arena *a, int64_t *to, err *e) {
  static const char *const names[] = {
      [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT] = "FLOAT",
      [ONNX__TENSOR_PROTO__DATA_TYPE__UINT8] = "UINT8",
      [ONNX__TENSOR_PROTO__DATA_TYPE__INT8] = "INT8",
      [ONNX__TENSOR_PROTO__DATA_TYPE__UINT16] = "UINT16",
      [ONNX__TENSOR_PROTO__DATA_TYPE__INT16] = "INT16",
      [ONNX__TENSOR_PROTO__DATA_TYPE__INT32] = "INT32",
      [ONNX__TENSOR_PROTO__DATA_TYPE__INT64] = "INT64",
      [ONNX__TENSOR_PROTO__DATA_TYPE__STRING] = "STRING",
      [ONNX__TENSOR_PROTO__DATA_TYPE__BOOL] = "BOOL",
      [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16] = "FLOAT16",
      [ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE] = "DOUBLE",
      [ONNX__TENSOR_PROTO__DATA_TYPE__UINT32] = "UINT32",
      [ONNX__TENSOR_PROTO__DATA_TYPE__UINT64] = "UINT64",
      [ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16] = "BFLOAT16",
  };
  const char *name;
  int rc = onnx_attr_string(p, "to", "", a, &name, e);
  if (rc) return rc;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i] && strcmp(names[i], name) == 0) {
      *to = (int64_t)i;
      return 0;
    }
  return err_set(e, -EINVAL, "attribute to='%.32s' names no type", name);
}

static int cast_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  cast_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  if (!onnx_attr_find(p, "to")) return err_set(e, -EINVAL, "attribute 'to' is required");
  int64_t to;
  int rc = n->since < 6 ? to_from_name(p, a, &to, e) : onnx_attr_int(p, "to", 0, &to, e);
  if (rc) return rc;
  at->to = to >= 0 && to <= INT32_MAX ? onnx_dtype_from_proto((int32_t)to) : INFERD_TYPE_INVALID;
  if (!castable(at->to))
    return err_set(e, -ENOTSUP, "attribute to=%lld (%s) is not supported", (long long)to,
                   at->to == INFERD_TYPE_BYTES ? "STRING" : "an unknown type");
  return 0;
}

static int cast_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const cast_attr *at = n->attr;
  if (!castable(in[0]->dtype))
    return err_set(e, -ENOTSUP, "casting from %s is not supported", dtype_name(in[0]->dtype));
  onnx_tensor_like(out[0], in[0]);
  out[0]->dtype = at->to;
  return 0;
}

/* ---- through double ----------------------------------------------------- */

#define LOAD_F(T, CONV)                                                                            \
  static void load_f_##T(const void *src, double *d, int64_t n) {                                  \
    const T *s = src;                                                                              \
    for (int64_t i = 0; i < n; i++)                                                                \
      d[i] = (double)CONV(s[i]);                                                                   \
  }
#define PLAIN(x) (x)
LOAD_F(float, PLAIN)
LOAD_F(double, PLAIN)
LOAD_F(int8_t, PLAIN)
LOAD_F(int16_t, PLAIN)
LOAD_F(int32_t, PLAIN)
LOAD_F(int64_t, PLAIN)
LOAD_F(uint8_t, PLAIN)
LOAD_F(uint16_t, PLAIN)
LOAD_F(uint32_t, PLAIN)
LOAD_F(uint64_t, PLAIN)
/* BOOL is a byte that a request may fill with anything: read as a byte. */
static void load_f_bool(const void *src, double *d, int64_t n) {
  const uint8_t *s = src;
  for (int64_t i = 0; i < n; i++)
    d[i] = s[i] != 0;
}
static void load_f_fp16(const void *src, double *d, int64_t n) {
  const uint16_t *s = src;
  for (int64_t i = 0; i < n; i++)
    d[i] = fp16_to_float(s[i]);
}
static void load_f_bf16(const void *src, double *d, int64_t n) {
  const uint16_t *s = src;
  for (int64_t i = 0; i < n; i++)
    d[i] = bf16_to_float(s[i]);
}

/* Saturating, NaN -> 0. lo and hi are the type's limits as doubles; hi may
 * have rounded up to the next power of two, hence >=. */
#define STORE_I(T, LO, HI)                                                                         \
  static void store_f_##T(const double *s, void *dst, int64_t n) {                                 \
    T *d = dst;                                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                              \
      double x = s[i];                                                                             \
      d[i] = x != x ? 0 : x <= (double)(LO) ? (LO) : x >= (double)(HI) ? (HI) : (T)x;              \
    }                                                                                              \
  }
STORE_I(int8_t, INT8_MIN, INT8_MAX)
STORE_I(int16_t, INT16_MIN, INT16_MAX)
STORE_I(int32_t, INT32_MIN, INT32_MAX)
STORE_I(int64_t, INT64_MIN, INT64_MAX)
STORE_I(uint8_t, 0, UINT8_MAX)
STORE_I(uint16_t, 0, UINT16_MAX)
STORE_I(uint32_t, 0, UINT32_MAX)
STORE_I(uint64_t, 0, UINT64_MAX)
static void store_f_bool(const double *s, void *dst, int64_t n) {
  uint8_t *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = s[i] != 0;
}
static void store_f_float(const double *s, void *dst, int64_t n) {
  float *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = (float)s[i];
}
static void store_f_double(const double *s, void *dst, int64_t n) {
  memcpy(dst, s, (size_t)n * sizeof *s);
}

/* x as a float rounded to odd (truncated, its last bit set when inexact):
 * rounding that to a narrower format gives the correctly rounded result,
 * which rounding x to nearest float first would not always. */
static float round_to_odd(double x) {
  float f = (float)x;
  if (isnan(x) || (double)f == x) return f;
  if (fabs((double)f) > fabs(x)) f = nextafterf(f, 0.0f);
  uint32_t u;
  memcpy(&u, &f, 4);
  u |= 1;
  memcpy(&f, &u, 4);
  return f;
}
static void store_f_fp16(const double *s, void *dst, int64_t n) {
  uint16_t *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = float_to_fp16(round_to_odd(s[i]));
}
static void store_f_bf16(const double *s, void *dst, int64_t n) {
  uint16_t *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = float_to_bf16(round_to_odd(s[i]));
}

typedef void (*load_f_fn)(const void *, double *, int64_t);
typedef void (*store_f_fn)(const double *, void *, int64_t);
#define N_DTYPES (INFERD_TYPE_BF16 + 1)
#define BY_TYPE(P)                                                                                 \
  {                                                                                                \
    [INFERD_TYPE_BOOL] = P##bool, [INFERD_TYPE_UINT8] = P##uint8_t,                                \
    [INFERD_TYPE_UINT16] = P##uint16_t, [INFERD_TYPE_UINT32] = P##uint32_t,                        \
    [INFERD_TYPE_UINT64] = P##uint64_t, [INFERD_TYPE_INT8] = P##int8_t,                            \
    [INFERD_TYPE_INT16] = P##int16_t, [INFERD_TYPE_INT32] = P##int32_t,                            \
    [INFERD_TYPE_INT64] = P##int64_t, [INFERD_TYPE_FP16] = P##fp16, [INFERD_TYPE_FP32] = P##float, \
    [INFERD_TYPE_FP64] = P##double, [INFERD_TYPE_BF16] = P##bf16,                                  \
  }
static const load_f_fn load_f[N_DTYPES] = BY_TYPE(load_f_);
static const store_f_fn store_f[N_DTYPES] = BY_TYPE(store_f_);

/* ---- between integers --------------------------------------------------- */

#define LOAD_I(T)                                                                                  \
  static void load_i_##T(const void *src, uint64_t *d, int64_t n) {                                \
    const T *s = src;                                                                              \
    for (int64_t i = 0; i < n; i++)                                                                \
      d[i] = (uint64_t)(int64_t)s[i];                                                              \
  }
#define STORE_W(T)                                                                                 \
  static void store_i_##T(const uint64_t *s, void *dst, int64_t n) {                               \
    T *d = dst;                                                                                    \
    for (int64_t i = 0; i < n; i++)                                                                \
      d[i] = (T)s[i];                                                                              \
  }
#define INT_TYPES(M)                                                                               \
  M(int8_t) M(int16_t) M(int32_t) M(int64_t) M(uint8_t) M(uint16_t) M(uint32_t) M(uint64_t)
INT_TYPES(LOAD_I)
INT_TYPES(STORE_W)
static void load_i_bool(const void *src, uint64_t *d, int64_t n) {
  const uint8_t *s = src;
  for (int64_t i = 0; i < n; i++)
    d[i] = s[i] != 0;
}
static void store_i_bool(const uint64_t *s, void *dst, int64_t n) {
  uint8_t *d = dst;
  for (int64_t i = 0; i < n; i++)
    d[i] = s[i] != 0;
}

typedef void (*load_i_fn)(const void *, uint64_t *, int64_t);
typedef void (*store_i_fn)(const uint64_t *, void *, int64_t);
#define BY_INT_TYPE(P)                                                                             \
  {                                                                                                \
    [INFERD_TYPE_BOOL] = P##bool, [INFERD_TYPE_UINT8] = P##uint8_t,                                \
    [INFERD_TYPE_UINT16] = P##uint16_t, [INFERD_TYPE_UINT32] = P##uint32_t,                        \
    [INFERD_TYPE_UINT64] = P##uint64_t, [INFERD_TYPE_INT8] = P##int8_t,                            \
    [INFERD_TYPE_INT16] = P##int16_t, [INFERD_TYPE_INT32] = P##int32_t,                            \
    [INFERD_TYPE_INT64] = P##int64_t,                                                              \
  }
static const load_i_fn load_i[N_DTYPES] = BY_INT_TYPE(load_i_);
static const store_i_fn store_i[N_DTYPES] = BY_INT_TYPE(store_i_);

static int cast_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  inferd_dtype from = in[0]->dtype, to = out[0]->dtype;
  size_t fs = dtype_size(from), ts = dtype_size(to);
  const char *src = in[0]->data;
  char *dst = out[0]->data;
  int64_t count = in[0]->count;
  if (from == to) {
    if (count) memcpy(dst, src, (size_t)count * fs);
    return 0;
  }
  if (load_i[from] && store_i[to]) {
    uint64_t buf[BLOCK];
    for (int64_t i = 0; i < count; i += BLOCK) {
      int64_t k = count - i < BLOCK ? count - i : BLOCK;
      load_i[from](src + (size_t)i * fs, buf, k);
      store_i[to](buf, dst + (size_t)i * ts, k);
    }
    return 0;
  }
  double buf[BLOCK];
  for (int64_t i = 0; i < count; i += BLOCK) {
    int64_t k = count - i < BLOCK ? count - i : BLOCK;
    load_f[from](src + (size_t)i * fs, buf, k);
    store_f[to](buf, dst + (size_t)i * ts, k);
  }
  return 0;
}

const onnx_op onnx_op_cast = {.name = "Cast",
                              .domain = "",
                              .min_inputs = 1,
                              .max_inputs = 1,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = cast_init,
                              .infer = cast_infer,
                              .run = cast_run};

/* ---- CastLike ----------------------------------------------------------- */

/* Cast to the type of the second input, whose values are not read. */
static int castlike_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          err *e) {
  if (!castable(in[0]->dtype))
    return err_set(e, -ENOTSUP, "casting from %s is not supported", dtype_name(in[0]->dtype));
  if (!castable(in[1]->dtype))
    return err_set(e, -ENOTSUP, "casting to %s is not supported", dtype_name(in[1]->dtype));
  onnx_tensor_like(out[0], in[0]);
  out[0]->dtype = in[1]->dtype;
  return 0;
}

static const onnx_op op_castlike = {.name = "CastLike",
                                    .domain = "",
                                    .min_inputs = 2,
                                    .max_inputs = 2,
                                    .min_outputs = 1,
                                    .max_outputs = 1,
                                    .infer = castlike_infer,
                                    .run = cast_run};

/* Cast 1 named the type by a string; 9 and 13 widened the types. */
const onnx_op_row onnx_ops_cast[] = {
    {&onnx_op_cast, 1},  {&onnx_op_cast, 6}, {&onnx_op_cast, 9},
    {&onnx_op_cast, 13}, {&op_castlike, 15}, {NULL, 0},
};
