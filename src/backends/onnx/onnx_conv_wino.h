/* backends/onnx/onnx_conv_wino.h: Winograd F(2x2, 3x3) convolution on
 * channel-blocked (nChw8c) FP32 tensors with AVX2 and FMA, for the 3x3
 * stride-1 convolutions that dominate ResNet-style networks (see
 * onnx_conv_wino.c). Used by onnx_ops_conv.c. */
#ifndef INFERD_ONNX_CONV_WINO_H
#define INFERD_ONNX_CONV_WINO_H

#include "onnx_ops.h"

/* Whether this CPU and a convolution of C to M channels can take it:
 * AVX2 and FMA, 8-channel blocks, C and M multiples of 8. */
bool onnx_wino_ok(int64_t C, int64_t M);

/* The weights W [M, C, 3, 3] transformed (U = G w G^T) and packed for the
 * kernel: 16 * C * M floats, 64-byte aligned, from aligned_alloc. */
float *onnx_wino_pack(const float *w, int64_t M, int64_t C);

typedef struct onnx_wino {
  int64_t N, C, M, H, W, OH, OW;
  int64_t pad_t, pad_l; /* the output is (H + pads - 2) x (W + pads - 2) */
  int64_t tiles;        /* per chunk (a multiple of 6) */
  int threads;
} onnx_wino;

/* Fills the geometry's chunking for that many threads and returns the
 * scratch bytes a run needs. A run must use the same g (threads
 * included). */
size_t onnx_wino_setup(onnx_wino *g, int threads);

/* y = conv(x, U) + bias, then post[0..sum_at), then (when sum_at <
 * n_post) + what y already holds, then post[sum_at + 1..n_post): the
 * order of node->post. x, y blocked [N][C/8][H][W][8]; bias may be NULL. */
void onnx_wino_run(const onnx_wino *g, const float *x, const float *u, const float *bias,
                   const onnx_post_op *post, int n_post, int sum_at, float *y, void *scratch);

#endif
