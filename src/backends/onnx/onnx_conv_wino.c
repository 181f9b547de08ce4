/* backends/onnx/onnx_conv_wino.c: Winograd F(2x2, 3x3) convolution for
 * 3x3, stride-1, ungrouped FP32 convolutions on nChw8c tensors, AVX2+FMA.
 *
 * Why: on CPUs without AVX-512, oneDNN 2.6 has no Winograd kernel, and its
 * direct 3x3 kernels run a ResNet's convolutions at the speed of ONNX
 * Runtime's at best. F(2x2, 3x3) computes each 2x2 block of outputs from a
 * 4x4 block of inputs with 16 products per (input, output) channel pair
 * instead of 36, and the transforms involve only additions and halvings,
 * so the result stays within float rounding of the direct sum.
 *
 * How (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks"): the weights are transformed once at load, U = G g G^T, and
 * packed per transform position xi (16 of them) as [C][M] in column blocks
 * of 16. A run cuts the output into 2x2 tiles and works through them in
 * chunks: (1) each tile's 4x4 input patch, 8 channels to a vector, becomes
 * V = B^T d B, stored as 16 matrices [tiles][C]; (2) 16 matrix products
 * M_xi = V_xi U_xi by a 6x16 register-blocked kernel; (3) each tile's
 * outputs Y = A^T M A, plus the bias and the node's post-operations
 * (activations, residual sum), are written blocked. A chunk is sized so
 * that one V_xi stays in the L2 cache while the column blocks of U_xi
 * stream past it, and small enough that every intra-op thread gets one:
 * threads take whole chunks, each with scratch of its own, so that a run
 * is one parallel region (a join per phase costs much more than it saves
 * on a machine whose cores are shared). */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_conv_wino.h"

#define TARGET __attribute__((target("avx2,fma")))
#define ROWS   6 /* tiles per kernel call */

bool onnx_wino_ok(int64_t C, int64_t M) {
  return onnx_block_size() == 8 && C % 8 == 0 && M % 8 == 0 && C > 0 && M > 0 &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* ---- weights ------------------------------------------------------------ */

/* Where U[xi][c][m] lives: column blocks of 16 (the last may be 8), each
 * [C][width] contiguous. */
static size_t u_index(int64_t xi, int64_t c, int64_t m, int64_t C, int64_t M) {
  int64_t m0 = m / 16 * 16, wb = M - m0 < 16 ? M - m0 : 16;
  return (size_t)(xi * C * M + m0 * C + c * wb + (m - m0));
}

float *onnx_wino_pack(const float *w, int64_t M, int64_t C) {
  size_t n = (size_t)(16 * C * M);
  float *u = aligned_alloc(64, (n * sizeof *u + 63) & ~(size_t)63);
  if (!u) return NULL;
  for (int64_t m = 0; m < M; m++)
    for (int64_t c = 0; c < C; c++) {
      const float *g = w + (m * C + c) * 9;
      double t[4][3], r[4][4];
      for (int j = 0; j < 3; j++) { /* G g */
        double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
        t[0][j] = g0;
        t[1][j] = (g0 + g1 + g2) / 2;
        t[2][j] = (g0 - g1 + g2) / 2;
        t[3][j] = g2;
      }
      for (int i = 0; i < 4; i++) { /* (G g) G^T */
        r[i][0] = t[i][0];
        r[i][1] = (t[i][0] + t[i][1] + t[i][2]) / 2;
        r[i][2] = (t[i][0] - t[i][1] + t[i][2]) / 2;
        r[i][3] = t[i][2];
      }
      for (int xi = 0; xi < 16; xi++)
        u[u_index(xi, c, m, C, M)] = (float)r[xi / 4][xi % 4];
    }
  return u;
}

/* ---- geometry ----------------------------------------------------------- */

size_t onnx_wino_setup(onnx_wino *g, int threads) {
  int64_t th = (g->OH + 1) / 2, tw = (g->OW + 1) / 2, T = g->N * th * tw;
  g->threads = threads < 1 ? 1 : threads;
  int64_t tc = 65536 / g->C; /* floats of one V_xi within ~256 KB */
  if (tc > 512) tc = 512;
  int64_t share = (T + g->threads - 1) / g->threads; /* a chunk for every thread */
  if (tc > share) tc = share;
  tc = (tc + ROWS - 1) / ROWS * ROWS;
  g->tiles = tc;
  return (size_t)g->threads * (size_t)(16 * tc * (g->C + g->M)) * sizeof(float);
}

/* ---- phase 1: input transform ------------------------------------------- */

typedef struct job {
  const onnx_wino *g;
  const float *x, *u, *bias;
  const onnx_post_op *post;
  int n_post, sum_at;
  float *y, *V, *Mx; /* this chunk's scratch */
  int64_t t0, nt;    /* the chunk: first tile, tiles in it */
} job;

TARGET static void input_tiles(const job *j, int64_t b, int64_t e) {
  const onnx_wino *g = j->g;
  int64_t TH = (g->OH + 1) / 2, TW = (g->OW + 1) / 2, CB = g->C / 8, tc = g->tiles;
  for (int64_t t = b; t < e; t++) {
    float *v = j->V + t * g->C;
    if (t >= j->nt) { /* padding rows of the last kernel call */
      for (int xi = 0; xi < 16; xi++)
        memset(v + xi * tc * g->C, 0, (size_t)g->C * sizeof(float));
      continue;
    }
    int64_t gt = j->t0 + t, n = gt / (TH * TW), r = gt % (TH * TW);
    int64_t ih0 = r / TW * 2 - g->pad_t, iw0 = r % TW * 2 - g->pad_l;
    bool inside = ih0 >= 0 && ih0 + 4 <= g->H && iw0 >= 0 && iw0 + 4 <= g->W;
    for (int64_t cb = 0; cb < CB; cb++) {
      const float *base = j->x + (n * CB + cb) * g->H * g->W * 8;
      __m256 d[4][4];
      for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) {
          int64_t ih = ih0 + i, iw = iw0 + k;
          d[i][k] = inside || (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W)
                        ? _mm256_loadu_ps(base + (ih * g->W + iw) * 8)
                        : _mm256_setzero_ps();
        }
      __m256 s[4][4];
      for (int k = 0; k < 4; k++) { /* B^T d */
        s[0][k] = _mm256_sub_ps(d[0][k], d[2][k]);
        s[1][k] = _mm256_add_ps(d[1][k], d[2][k]);
        s[2][k] = _mm256_sub_ps(d[2][k], d[1][k]);
        s[3][k] = _mm256_sub_ps(d[1][k], d[3][k]);
      }
      float *o = v + cb * 8;
      for (int i = 0; i < 4; i++) { /* (B^T d) B */
        __m256 w0 = _mm256_sub_ps(s[i][0], s[i][2]), w1 = _mm256_add_ps(s[i][1], s[i][2]),
               w2 = _mm256_sub_ps(s[i][2], s[i][1]), w3 = _mm256_sub_ps(s[i][1], s[i][3]);
        _mm256_storeu_ps(o + (i * 4 + 0) * tc * g->C, w0);
        _mm256_storeu_ps(o + (i * 4 + 1) * tc * g->C, w1);
        _mm256_storeu_ps(o + (i * 4 + 2) * tc * g->C, w2);
        _mm256_storeu_ps(o + (i * 4 + 3) * tc * g->C, w3);
      }
    }
  }
}

/* ---- phase 2: the products ---------------------------------------------- */

/* out[6][16] = v[6][C] u[C][16] (v rows ldv apart, out rows ldo apart). */
TARGET static void kernel_6x16(const float *v, int64_t ldv, const float *u, int64_t C, float *out,
                               int64_t ldo) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0,
         e0 = a0, e1 = a0, f0 = a0, f1 = a0;
  const float *v0 = v, *v1 = v + ldv, *v2 = v + 2 * ldv, *v3 = v + 3 * ldv, *v4 = v + 4 * ldv,
              *v5 = v + 5 * ldv;
  for (int64_t c = 0; c < C; c++) {
    __m256 u0 = _mm256_load_ps(u + c * 16), u1 = _mm256_load_ps(u + c * 16 + 8), x;
    x = _mm256_broadcast_ss(v0 + c);
    a0 = _mm256_fmadd_ps(x, u0, a0);
    a1 = _mm256_fmadd_ps(x, u1, a1);
    x = _mm256_broadcast_ss(v1 + c);
    b0 = _mm256_fmadd_ps(x, u0, b0);
    b1 = _mm256_fmadd_ps(x, u1, b1);
    x = _mm256_broadcast_ss(v2 + c);
    c0 = _mm256_fmadd_ps(x, u0, c0);
    c1 = _mm256_fmadd_ps(x, u1, c1);
    x = _mm256_broadcast_ss(v3 + c);
    d0 = _mm256_fmadd_ps(x, u0, d0);
    d1 = _mm256_fmadd_ps(x, u1, d1);
    x = _mm256_broadcast_ss(v4 + c);
    e0 = _mm256_fmadd_ps(x, u0, e0);
    e1 = _mm256_fmadd_ps(x, u1, e1);
    x = _mm256_broadcast_ss(v5 + c);
    f0 = _mm256_fmadd_ps(x, u0, f0);
    f1 = _mm256_fmadd_ps(x, u1, f1);
  }
  _mm256_storeu_ps(out, a0);
  _mm256_storeu_ps(out + 8, a1);
  _mm256_storeu_ps(out + ldo, b0);
  _mm256_storeu_ps(out + ldo + 8, b1);
  _mm256_storeu_ps(out + 2 * ldo, c0);
  _mm256_storeu_ps(out + 2 * ldo + 8, c1);
  _mm256_storeu_ps(out + 3 * ldo, d0);
  _mm256_storeu_ps(out + 3 * ldo + 8, d1);
  _mm256_storeu_ps(out + 4 * ldo, e0);
  _mm256_storeu_ps(out + 4 * ldo + 8, e1);
  _mm256_storeu_ps(out + 5 * ldo, f0);
  _mm256_storeu_ps(out + 5 * ldo + 8, f1);
}

/* The same for a last column block of 8. */
TARGET static void kernel_6x8(const float *v, int64_t ldv, const float *u, int64_t C, float *out,
                              int64_t ldo) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a, e = a, f = a;
  for (int64_t k = 0; k < C; k++) {
    __m256 u0 = _mm256_load_ps(u + k * 8);
    a = _mm256_fmadd_ps(_mm256_broadcast_ss(v + k), u0, a);
    b = _mm256_fmadd_ps(_mm256_broadcast_ss(v + ldv + k), u0, b);
    c = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 2 * ldv + k), u0, c);
    d = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 3 * ldv + k), u0, d);
    e = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 4 * ldv + k), u0, e);
    f = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 5 * ldv + k), u0, f);
  }
  _mm256_storeu_ps(out, a);
  _mm256_storeu_ps(out + ldo, b);
  _mm256_storeu_ps(out + 2 * ldo, c);
  _mm256_storeu_ps(out + 3 * ldo, d);
  _mm256_storeu_ps(out + 4 * ldo, e);
  _mm256_storeu_ps(out + 5 * ldo, f);
}

/* Items [b, e) of the (xi, column block) pairs. */
TARGET static void products(const job *j, int64_t b, int64_t e) {
  const onnx_wino *g = j->g;
  int64_t C = g->C, M = g->M, tc = g->tiles, nb = (M + 15) / 16;
  int64_t rows = (j->nt + ROWS - 1) / ROWS * ROWS;
  for (int64_t it = b; it < e; it++) {
    int64_t xi = it / nb, m0 = it % nb * 16, wb = M - m0 < 16 ? M - m0 : 16;
    const float *u = j->u + xi * C * M + m0 * C, *v = j->V + xi * tc * C;
    float *out = j->Mx + xi * tc * M + m0;
    for (int64_t r = 0; r < rows; r += ROWS) {
      if (wb == 16)
        kernel_6x16(v + r * C, C, u, C, out + r * M, M);
      else
        kernel_6x8(v + r * C, C, u, C, out + r * M, M);
    }
  }
}

/* ---- phase 3: output transform ------------------------------------------ */

/* post[from..to) on 8 values: the common ones in registers, the rest
 * through onnx_post_apply. */
TARGET static __m256 post_range(__m256 v, const onnx_post_op *post, int from, int to) {
  for (int k = from; k < to; k++) {
    const onnx_post_op *p = &post[k];
    switch (p->kind) {
    case ONNX_POST_RELU: v = _mm256_max_ps(v, _mm256_setzero_ps()); break;
    case ONNX_POST_CLIP:
      v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(p->alpha)), _mm256_set1_ps(p->beta));
      break;
    case ONNX_POST_LEAKY_RELU: {
      __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
      v = _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(p->alpha)), neg);
      break;
    }
    default: {
      float tmp[8];
      _mm256_storeu_ps(tmp, v);
      onnx_post_apply(p, 1, 0, INFERD_TYPE_FP32, tmp, 8);
      v = _mm256_loadu_ps(tmp);
    }
    }
  }
  return v;
}

TARGET static void output_tiles(const job *j, int64_t b, int64_t e) {
  const onnx_wino *g = j->g;
  int64_t TH = (g->OH + 1) / 2, TW = (g->OW + 1) / 2, MB = g->M / 8, tc = g->tiles;
  int64_t plane = g->OH * g->OW;
  bool sum = j->sum_at < j->n_post;
  for (int64_t t = b; t < e; t++) {
    int64_t gt = j->t0 + t, n = gt / (TH * TW), r = gt % (TH * TW);
    int64_t oh0 = r / TW * 2, ow0 = r % TW * 2;
    int nh = oh0 + 1 < g->OH ? 2 : 1, nw = ow0 + 1 < g->OW ? 2 : 1;
    for (int64_t mb = 0; mb < MB; mb++) {
      const float *m = j->Mx + t * g->M + mb * 8;
      __m256 s0[4], s1[4];
      for (int k = 0; k < 4; k++) { /* A^T M */
        __m256 m0 = _mm256_loadu_ps(m + (0 * 4 + k) * tc * g->M),
               m1 = _mm256_loadu_ps(m + (1 * 4 + k) * tc * g->M),
               m2 = _mm256_loadu_ps(m + (2 * 4 + k) * tc * g->M),
               m3 = _mm256_loadu_ps(m + (3 * 4 + k) * tc * g->M);
        s0[k] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s1[k] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      __m256 o[2][2]; /* (A^T M) A */
      o[0][0] = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]);
      o[0][1] = _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]);
      o[1][0] = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]);
      o[1][1] = _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]);
      __m256 bias = j->bias ? _mm256_loadu_ps(j->bias + mb * 8) : _mm256_setzero_ps();
      float *y = j->y + ((n * MB + mb) * plane + oh0 * g->OW + ow0) * 8;
      for (int a = 0; a < nh; a++)
        for (int c = 0; c < nw; c++) {
          float *dst = y + (a * g->OW + c) * 8;
          __m256 v = post_range(_mm256_add_ps(o[a][c], bias), j->post, 0, j->sum_at);
          if (sum) {
            v = _mm256_add_ps(v, _mm256_loadu_ps(dst));
            v = post_range(v, j->post, j->sum_at + 1, j->n_post);
          }
          _mm256_storeu_ps(dst, v);
        }
    }
  }
}

/* ---- a run -------------------------------------------------------------- */

typedef struct run_job {
  job base; /* everything but the chunk and its scratch */
  unsigned char *scratch;
  size_t per_thread;
  int64_t T;
} run_job;

/* Chunks [c0, c1) on one thread, in its own scratch. */
static void chunks(void *arg, int64_t c0, int64_t c1, int thread) {
  const run_job *r = arg;
  const onnx_wino *g = r->base.g;
  int64_t tc = g->tiles;
  job j = r->base;
  j.V = (float *)(r->scratch + (size_t)thread * r->per_thread);
  j.Mx = j.V + 16 * tc * g->C;
  for (int64_t c = c0; c < c1; c++) {
    j.t0 = c * tc;
    j.nt = r->T - j.t0 < tc ? r->T - j.t0 : tc;
    int64_t rows = (j.nt + ROWS - 1) / ROWS * ROWS;
    input_tiles(&j, 0, rows);
    products(&j, 0, 16 * ((g->M + 15) / 16));
    output_tiles(&j, 0, j.nt);
  }
}

void onnx_wino_run(const onnx_wino *g, const float *x, const float *u, const float *bias,
                   const onnx_post_op *post, int n_post, int sum_at, float *y, void *scratch) {
  int64_t T = g->N * ((g->OH + 1) / 2) * ((g->OW + 1) / 2), tc = g->tiles;
  run_job r = {.base = {.g = g,
                        .x = x,
                        .u = u,
                        .bias = bias,
                        .post = post,
                        .n_post = n_post,
                        .sum_at = sum_at < n_post ? sum_at : n_post,
                        .y = y},
               .scratch = scratch,
               .per_thread = (size_t)(16 * tc * (g->C + g->M)) * sizeof(float),
               .T = T};
  onnx_parallel(g->threads, (T + tc - 1) / tc, chunks, &r);
}
