/* backends/onnx/onnx_kernel.h: what several operator families' kernels
 * share inside their loops, kept static inline so that it costs them
 * nothing: the attributes that vectorised kernels carry, float's fast e^x
 * and the numpy broadcasting walker. (What operators share outside their loops, attributes
 * and shapes, is in onnx_ops.h.) */
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
 * baseline SSE2 one, chosen when the library loads. */
#if defined(__GNUC__) && !defined(__clang__)
#define ONNX_KERNEL                                                                                \
  __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")))
#else
#define ONNX_KERNEL
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ONNX_HOT __attribute__((target_clones("avx2", "default"))) ONNX_KERNEL
#else
#define ONNX_HOT ONNX_KERNEL
#endif

/* Helpers of vectorised loops must be inlined into them, whatever the
 * optimize attributes of the two say. */
#define ONNX_INLINE static inline __attribute__((always_inline))

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

#endif
