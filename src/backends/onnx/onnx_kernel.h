/* backends/onnx/onnx_kernel.h: what several operator families' kernels
 * share inside their loops, static inline so that it costs them nothing:
 * the attributes that vectorised kernels carry, float's fast e^x, the
 * numpy broadcasting walker (its set-up, once per run, is in
 * onnx_tensor.c), and loading and storing one element of a tensor by its
 * type. (What operators share outside their loops, attributes and shapes,
 * is in onnx_ops.h.) */
#ifndef INFERD_ONNX_KERNEL_H
#define INFERD_ONNX_KERNEL_H

#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_ops.h"

/* ---- kernel attributes --------------------------------------------------- */

/* Kernels are vectorised (as ONNX_VECTORIZE asks) without trapping math,
 * so that selects like x < lo ? 0 : y may compute both sides (inferd never
 * reads floating-point exception flags). The float kernels of the
 * transformer's hot path (ONNX_HOT) also get an AVX2 clone beside the
 * baseline SSE2 one, chosen when the library loads: not under
 * ThreadSanitizer, whose instrumented clone resolvers would run before its
 * runtime is up. */
#if defined(__GNUC__) && !defined(__clang__)
#define ONNX_KERNEL                                                                                \
  __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")))
#else
#define ONNX_KERNEL
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define ONNX_HOT __attribute__((target_clones("avx2", "default"))) ONNX_KERNEL
#else
#define ONNX_HOT ONNX_KERNEL
#endif

/* Helpers of vectorised loops must be inlined into them, whatever the
 * optimize attributes of the two say. */
#define ONNX_INLINE static inline __attribute__((always_inline))

/* ---- type lists ------------------------------------------------------------ */

/* Instantiate a kernel macro M once per element type, as M(..., name,
 * storage T, compute type C, wrapping type W, load, store, attribute):
 * values load from T into C, integer arithmetic is done in the unsigned W
 * so that it wraps, and results store back into T. f32 kernels get
 * ONNX_HOT; F64 is the attribute of the f64 ones (ONNX_HOT where double
 * also matters, ONNX_KERNEL otherwise). */
#define ONNX_ID(x) (x)
#define ONNX_TYPES_FLOAT(F64, M, ...)                                                              \
  M(__VA_ARGS__, f32, float, float, float, ONNX_ID, ONNX_ID, ONNX_HOT)                             \
  M(__VA_ARGS__, f64, double, double, double, ONNX_ID, ONNX_ID, F64)                               \
  M(__VA_ARGS__, f16, uint16_t, float, float, fp16_to_float, float_to_fp16, ONNX_KERNEL)           \
  M(__VA_ARGS__, bf16, uint16_t, float, float, bf16_to_float, float_to_bf16, ONNX_KERNEL)
#define ONNX_TYPES_SIGNED(M, ...)                                                                  \
  M(__VA_ARGS__, i8, int8_t, int8_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                      \
  M(__VA_ARGS__, i16, int16_t, int16_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                   \
  M(__VA_ARGS__, i32, int32_t, int32_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                   \
  M(__VA_ARGS__, i64, int64_t, int64_t, uint64_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)
#define ONNX_TYPES_UNSIGNED(M, ...)                                                                \
  M(__VA_ARGS__, u8, uint8_t, uint8_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                    \
  M(__VA_ARGS__, u16, uint16_t, uint16_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                 \
  M(__VA_ARGS__, u32, uint32_t, uint32_t, uint32_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)                 \
  M(__VA_ARGS__, u64, uint64_t, uint64_t, uint64_t, ONNX_ID, ONNX_ID, ONNX_KERNEL)

/* Dispatch-table rows for the same lists, [INFERD_TYPE_x] = ROW(OP, name):
 * ONNX_K1 names the kernel OP_name, ONNX_K3 a binary operator's three
 * (onnx_bin_kernels). */
#define ONNX_K1(OP, N) OP##_##N
#define ONNX_K3(OP, N)                                                                             \
  { OP##_##N##_vv, OP##_##N##_vs, OP##_##N##_sv }
#define ONNX_TAB_FLOAT(ROW, OP)                                                                    \
  [INFERD_TYPE_FP32] = ROW(OP, f32), [INFERD_TYPE_FP64] = ROW(OP, f64),                            \
  [INFERD_TYPE_FP16] = ROW(OP, f16), [INFERD_TYPE_BF16] = ROW(OP, bf16)
#define ONNX_TAB_SIGNED(ROW, OP)                                                                   \
  [INFERD_TYPE_INT8] = ROW(OP, i8), [INFERD_TYPE_INT16] = ROW(OP, i16),                            \
  [INFERD_TYPE_INT32] = ROW(OP, i32), [INFERD_TYPE_INT64] = ROW(OP, i64)
#define ONNX_TAB_UNSIGNED(ROW, OP)                                                                 \
  [INFERD_TYPE_UINT8] = ROW(OP, u8), [INFERD_TYPE_UINT16] = ROW(OP, u16),                          \
  [INFERD_TYPE_UINT32] = ROW(OP, u32), [INFERD_TYPE_UINT64] = ROW(OP, u64)
#define ONNX_TAB_NUMERIC(ROW, OP)                                                                  \
  ONNX_TAB_FLOAT(ROW, OP), ONNX_TAB_SIGNED(ROW, OP), ONNX_TAB_UNSIGNED(ROW, OP)

/* ---- float functions ------------------------------------------------------ */

/* e^x for float, vectorisable (libm's expf is not), within a few ulp: x = n
 * ln2 + r with n = round(x / ln2) and |r| <= ln2/2; e^r from Cephes'
 * degree-6 polynomial; 2^n built in the exponent bits, in two halves (k >>
 * 1 is an arithmetic shift in GCC and Clang) so that n down to -152
 * (subnormal results) and up to 128 both fit. x is clamped to [-105, 89],
 * where the result has already rounded to 0 or overflowed to inf, so
 * nothing needs selecting afterwards; NaN passes through. The rounding uses
 * the 1.5 * 2^23 trick, so no float becomes an integer by conversion (which
 * would be undefined for NaN). Exp and Softmax use it. */
ONNX_INLINE float onnx_exp_f(float x) {
  float xc = x > 89.0f ? 89.0f : x; /* e^89 overflows to inf below, as it must */
  xc = xc < -105.0f ? -105.0f : xc; /* e^-105 rounds to 0 below, as it must */
  float t = xc * 1.44269504088896341f + 12582912.0f;
  float nf = t - 12582912.0f;
  float r = xc - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  uint32_t tb;
  memcpy(&tb, &t, sizeof tb);
  int32_t k = (int32_t)(tb - 0x4B400000u); /* n, from the low bits of t */
  int32_t k1 = k >> 1, k2 = k - k1;        /* each within [-76, 64] */
  uint32_t b1 = ((uint32_t)k1 + 127u) << 23, b2 = ((uint32_t)k2 + 127u) << 23;
  float s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return p * s1 * s2;
}

/* ---- broadcasting ---------------------------------------------------------- */

/* An output walked as runs of its innermost dimension, for operators of up
 * to ONNX_BCAST_MAX_IN broadcast inputs (the arithmetic of
 * onnx_ops_elementwise.c, the comparisons and Where of onnx_ops_logic.c):
 * dims of size 1 dropped, neighbours merged where every input steps through
 * them alike, so that [N,64] + [64] is N runs of 64 and [N,64] + [N,64] one
 * run. Strides are in elements, 0 along a broadcast dimension; along the
 * innermost dimension they are therefore 0 or 1. onnx_bcast_init
 * (onnx_tensor.c) sets one up for in[0..nin) and output o. */
#define ONNX_BCAST_MAX_IN 3
typedef struct onnx_bcast {
  int nd, nin;
  int64_t n[ONNX_MAX_DIMS];
  int64_t s[ONNX_BCAST_MAX_IN][ONNX_MAX_DIMS];
} onnx_bcast;

void onnx_bcast_init(onnx_bcast *bc, int nin, const onnx_tensor *const *in, const onnx_tensor *o);

/* Steps the odometer over the outer dimensions (all but the innermost),
 * moving the input offsets with it. */
static inline void onnx_bcast_next(const onnx_bcast *bc, int64_t *idx, int64_t *off) {
  for (int d = bc->nd - 2; d >= 0; d--) {
    for (int k = 0; k < bc->nin; k++)
      off[k] += bc->s[k][d];
    if (++idx[d] < bc->n[d]) return;
    for (int k = 0; k < bc->nin; k++)
      off[k] -= bc->s[k][d] * bc->n[d];
    idx[d] = 0;
  }
}

/* A binary operator's kernels for one type: a contiguous run of n outputs
 * from both inputs contiguous (vv), a contiguous and b one repeated value
 * (vs), or the reverse (sv). */
typedef void (*onnx_bin_fn)(void *o, const void *a, const void *b, int64_t n);
typedef struct onnx_bin_kernels {
  onnx_bin_fn vv, vs, sv;
} onnx_bin_kernels;

/* o = op(a, b), a and b broadcast to o's shape (which may be larger than
 * their broadcast when a variadic operator has more inputs), run by run
 * (onnx_tensor.c). */
void onnx_binary_apply(const onnx_bin_kernels *k, const onnx_tensor *a, const onnx_tensor *b,
                       onnx_tensor *o);

/* ---- elements by type ------------------------------------------------------ */

/* Element i of floating data of type t (FP32, FP64, FP16 or BF16) as a
 * double, and storing one: for the kernels that compute the 16-bit floats
 * (or every type) one element at a time in double. */
static inline double onnx_float_get(const void *p, inferd_dtype t, int64_t i) {
  switch (t) {
  case INFERD_TYPE_FP32: return ((const float *)p)[i];
  case INFERD_TYPE_FP64: return ((const double *)p)[i];
  case INFERD_TYPE_FP16: return fp16_to_float(((const uint16_t *)p)[i]);
  default: return bf16_to_float(((const uint16_t *)p)[i]);
  }
}
static inline void onnx_float_put(void *p, inferd_dtype t, int64_t i, double v) {
  switch (t) {
  case INFERD_TYPE_FP32: ((float *)p)[i] = (float)v; break;
  case INFERD_TYPE_FP64: ((double *)p)[i] = v; break;
  case INFERD_TYPE_FP16: ((uint16_t *)p)[i] = float_to_fp16((float)v); break;
  default: ((uint16_t *)p)[i] = float_to_bf16((float)v); break;
  }
}

/* Element i of a numeric (or BOOL) tensor as a double; 0 for other
 * types. */
static inline double onnx_load_double(const onnx_tensor *t, int64_t i) {
  const void *p = t->data;
  switch (t->dtype) {
  case INFERD_TYPE_FP32: return ((const float *)p)[i];
  case INFERD_TYPE_FP64: return ((const double *)p)[i];
  case INFERD_TYPE_FP16: return fp16_to_float(((const uint16_t *)p)[i]);
  case INFERD_TYPE_BF16: return bf16_to_float(((const uint16_t *)p)[i]);
  case INFERD_TYPE_BOOL:
  case INFERD_TYPE_UINT8: return ((const uint8_t *)p)[i];
  case INFERD_TYPE_INT8: return ((const int8_t *)p)[i];
  case INFERD_TYPE_INT16: return ((const int16_t *)p)[i];
  case INFERD_TYPE_UINT16: return ((const uint16_t *)p)[i];
  case INFERD_TYPE_INT32: return ((const int32_t *)p)[i];
  case INFERD_TYPE_UINT32: return ((const uint32_t *)p)[i];
  case INFERD_TYPE_INT64: return (double)((const int64_t *)p)[i];
  case INFERD_TYPE_UINT64: return (double)((const uint64_t *)p)[i];
  default: return 0;
  }
}

/* v clamped into [lo, hi] (NaN to 0), so that converting it to an
 * integer type is defined. */
static inline double onnx_sat(double v, double lo, double hi) {
  return v != v ? 0 : v < lo ? lo : v > hi ? hi : v;
}

/* Stores v as element i of data of type t: integers truncate toward zero
 * and saturate, BOOL is v != 0; other types are left alone. */
static inline void onnx_store_double(inferd_dtype t, void *data, int64_t i, double v) {
  switch (t) {
  case INFERD_TYPE_FP32: ((float *)data)[i] = (float)v; break;
  case INFERD_TYPE_FP64: ((double *)data)[i] = v; break;
  case INFERD_TYPE_FP16: ((uint16_t *)data)[i] = float_to_fp16((float)v); break;
  case INFERD_TYPE_BF16: ((uint16_t *)data)[i] = float_to_bf16((float)v); break;
  case INFERD_TYPE_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  case INFERD_TYPE_INT8: ((int8_t *)data)[i] = (int8_t)onnx_sat(v, INT8_MIN, INT8_MAX); break;
  case INFERD_TYPE_UINT8: ((uint8_t *)data)[i] = (uint8_t)onnx_sat(v, 0, UINT8_MAX); break;
  case INFERD_TYPE_INT16: ((int16_t *)data)[i] = (int16_t)onnx_sat(v, INT16_MIN, INT16_MAX); break;
  case INFERD_TYPE_UINT16: ((uint16_t *)data)[i] = (uint16_t)onnx_sat(v, 0, UINT16_MAX); break;
  case INFERD_TYPE_INT32: ((int32_t *)data)[i] = (int32_t)onnx_sat(v, INT32_MIN, INT32_MAX); break;
  case INFERD_TYPE_UINT32: ((uint32_t *)data)[i] = (uint32_t)onnx_sat(v, 0, UINT32_MAX); break;
  case INFERD_TYPE_INT64:
    ((int64_t *)data)[i] = (int64_t)onnx_sat(v, -0x1p63, 0x1p63 - 1024);
    break;
  case INFERD_TYPE_UINT64: ((uint64_t *)data)[i] = (uint64_t)onnx_sat(v, 0, 0x1p64 - 2048); break;
  default: break;
  }
}

/* Copies one element of es bytes (1, 2, 4 or 8), with a fixed-size copy
 * the compiler turns into one move. */
static inline void onnx_copy_elem(char *dst, const char *src, size_t es) {
  switch (es) {
  case 1: memcpy(dst, src, 1); break;
  case 2: memcpy(dst, src, 2); break;
  case 4: memcpy(dst, src, 4); break;
  default: memcpy(dst, src, 8); break;
  }
}

#endif
