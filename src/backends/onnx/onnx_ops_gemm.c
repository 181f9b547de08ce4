/* backends/onnx/onnx_ops_gemm.c: matrix products: Gemm (alpha, beta,
 * transA, transB, C broadcast to the result) and MatMul (numpy matmul: 1-D
 * operands, batch dimensions broadcast).
 *
 * MatMul by a constant matrix followed by an Add of a constant row becomes
 * one MatMul with a bias at load (onnx_fuse.c: onnx_op_matmul_bias), and an
 * activation after any of these products is applied to the result while
 * it is still in cache (node->post).
 *
 * A constant FP32 right-hand matrix (the weights of a Linear layer, which
 * is what a transformer spends its time on) is packed once at load into
 * panels of 16 columns and multiplied by this file's own register-blocked
 * AVX2 kernel, split over the intra-op threads: dnnl_sgemm repacks B at
 * every call, which for the row counts of a request (one sequence of 128
 * tokens) costs about as much as the arithmetic; ONNX Runtime packs once
 * too. Other FP32 products (both operands computed, as attention's) go to
 * oneDNN's dnnl_sgemm, which measured fastest here for them (faster than
 * OpenBLAS and than a cached matmul primitive). FP64 uses plain loops: no
 * library here offers a double GEMM that is worth a dependency for models
 * that rarely ask for it. */
#include <dnnl.h>
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_ops.h"

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, like dnnl_sgemm. */
static void dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                  int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
  for (int64_t m = 0; m < M; m++) {
    double *c = C + m * ldc;
    for (int64_t n = 0; n < N; n++)
      c[n] = beta == 0 ? 0 : beta * c[n];
    for (int64_t k = 0; k < K; k++) {
      double a = alpha * (ta ? A[k * lda + m] : A[m * lda + k]);
      if (tb)
        for (int64_t n = 0; n < N; n++)
          c[n] += a * B[n * ldb + k];
      else
        for (int64_t n = 0; n < N; n++)
          c[n] += a * B[k * ldb + n];
    }
  }
}

/* ---- small-M FP32 products --------------------------------------------- */

/* A request of one row through a fully connected layer (torch's Linear
 * exports as Gemm with transB) is M dot products of length K against the
 * rows of B: memory-bound, and short enough that a BLAS call's set-up costs
 * more than the arithmetic. These kernels do it directly with AVX2 + FMA
 * when the CPU has them. */
#define SMALL_M 4

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b,
                                                          int64_t k) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= k; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  s0 = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  float sum = _mm_cvtss_f32(h);
  for (; i < k; i++)
    sum = fmaf(a[i], b[i], sum);
  return sum;
}

/* C = alpha * A B^T + beta * C for M <= SMALL_M, A [M,K], B [N,K]. */
__attribute__((target("avx2,fma"))) static void
small_gemm_nt(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  for (int64_t m = 0; m < M; m++) {
    const float *a = A + m * lda;
    float *c = C + m * ldc;
    for (int64_t n = 0; n < N; n++) {
      float v = alpha * dot_avx2(a, B + n * ldb, K);
      c[n] = beta == 0 ? v : v + beta * c[n];
    }
  }
}

/* Reads the CPU model the runtime filled in at start: cheap enough per call. */
static bool have_avx2_fma(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* ---- FP32 products by a packed constant matrix ------------------------- */

#define PANEL 16  /* columns of B per panel: two AVX2 vectors */
#define ROWS  6   /* rows of A per kernel call: 12 accumulators */
#define KC    256 /* depth per pass: a panel's slice (16 KB) stays in L1 */
#define MC    192 /* rows per pass: their slice of A (192 KB) stays in L2 */

typedef struct packed_b {
  float *p; /* [ceil(N / PANEL)][K][PANEL], zero-padded past N */
  int64_t K, N;
  size_t bytes;
} packed_b;

/* Bytes of B [K,N] packed. */
static size_t packed_bytes(int64_t K, int64_t N) {
  return (size_t)((N + PANEL - 1) / PANEL * K * PANEL) * sizeof(float);
}

/* Packs B [K,N] (or B^T when trans: B is then [N,K]) into panels at p
 * (packed_bytes of room, 32-byte aligned). */
static void pack_b_into(const float *B, int64_t K, int64_t N, bool trans, float *p) {
  int64_t np = (N + PANEL - 1) / PANEL;
  for (int64_t q = 0; q < np; q++)
    for (int64_t k = 0; k < K; k++) {
      float *dst = p + (q * K + k) * PANEL;
      int64_t n0 = q * PANEL, w = N - n0 < PANEL ? N - n0 : PANEL;
      if (!trans && w == PANEL) {
        memcpy(dst, B + k * N + n0, PANEL * sizeof *dst);
        continue;
      }
      for (int64_t j = 0; j < PANEL; j++)
        dst[j] = j >= w ? 0 : trans ? B[(n0 + j) * K + k] : B[k * N + n0 + j];
    }
}

/* Packs B into memory of its own (prepare). */
static int pack_b(const float *B, int64_t K, int64_t N, bool trans, packed_b *pb) {
  pb->K = K;
  pb->N = N;
  pb->bytes = packed_bytes(K, N);
  if (!(pb->p = aligned_alloc(64, (pb->bytes + 63) & ~(size_t)63))) return -ENOMEM;
  pack_b_into(B, K, N, trans, pb->p);
  return 0;
}

/* What the last pass over K adds to a result: a bias (the panel's 16
 * columns of it) and activations. */
typedef struct epilogue {
  const float *bias;
  const onnx_post_op *post;
  int n_post;
} epilogue;

/* C[R,16] (ncols of it stored) = alpha * A[R,kb] P[kb,16] (+ C when acc),
 * for R = 1..6 rows of A lda apart. Twelve named accumulators (those of
 * rows past R are dead code for the compiler) keep everything in the 16
 * AVX2 registers; an array of them would be spilled. */
#define ACC(i)                                                                                     \
  if (rows > i) {                                                                                  \
    __m256 x = _mm256_broadcast_ss(a##i + k);                                                      \
    c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                                                     \
    c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                                                     \
  }
#define STORE(i)                                                                                   \
  if (rows > i) store_row(c + i * ldc, c##i##0, c##i##1, ncols, alpha, acc, ep);
/* Row pointers of their own (past R they are never read) keep the
 * addressing of the six broadcasts to base + k. */
#define KERNEL(R)                                                                                  \
  __attribute__((target("avx2,fma"))) static void kernel_##R(                                      \
      const float *a, int64_t lda, const float *b, int64_t kb, float *c, int64_t ldc, int ncols,   \
      float alpha, bool acc, const epilogue *ep) {                                                 \
    enum { rows = R };                                                                             \
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda,   \
                *a5 = a + 5 * lda;                                                                 \
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,       \
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;                       \
    for (int64_t k = 0; k < kb; k++, b += PANEL) {                                                 \
      __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);                                   \
      ACC(0) ACC(1) ACC(2) ACC(3) ACC(4) ACC(5)                                                    \
    }                                                                                              \
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)                                          \
  }

/* post-operations on 8 values: the common ones in registers, the rest
 * through onnx_post_apply. */
__attribute__((target("avx2,fma"))) static __m256 post_vec(__m256 v, const onnx_post_op *post,
                                                           int n_post) {
  for (int k = 0; k < n_post; k++) {
    const onnx_post_op *p = &post[k];
    if (p->kind == ONNX_POST_RELU) {
      v = _mm256_max_ps(v, _mm256_setzero_ps());
    } else if (p->kind == ONNX_POST_CLIP) {
      v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(p->alpha)), _mm256_set1_ps(p->beta));
    } else {
      float t[8];
      _mm256_storeu_ps(t, v);
      onnx_post_apply(p, 1, 0, INFERD_TYPE_FP32, t, 8);
      v = _mm256_loadu_ps(t);
    }
  }
  return v;
}

/* One row of a kernel's result: alpha times it, plus what is there when
 * acc; then, in the last pass over K (ep set), the bias and the
 * activations; ncols of the 16 stored. */
__attribute__((target("avx2,fma"))) static inline void
store_row(float *row, __m256 s0, __m256 s1, int ncols, float alpha, bool acc, const epilogue *ep) {
  __m256 al = _mm256_set1_ps(alpha);
  __m256 v0 = _mm256_mul_ps(s0, al), v1 = _mm256_mul_ps(s1, al);
  if (ncols == PANEL) {
    if (acc) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
    }
    if (ep) {
      if (ep->bias) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ep->bias));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ep->bias + 8));
      }
      v0 = post_vec(v0, ep->post, ep->n_post);
      v1 = post_vec(v1, ep->post, ep->n_post);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    return;
  }
  float t[PANEL];
  _mm256_storeu_ps(t, v0);
  _mm256_storeu_ps(t + 8, v1);
  for (int j = 0; j < ncols; j++) {
    t[j] = acc ? row[j] + t[j] : t[j];
    if (ep && ep->bias) t[j] += ep->bias[j];
  }
  if (ep) onnx_post_apply(ep->post, ep->n_post, 0, INFERD_TYPE_FP32, t, ncols);
  memcpy(row, t, (size_t)ncols * sizeof *t);
}

KERNEL(1)
KERNEL(2)
KERNEL(3)
KERNEL(4)
KERNEL(5)
KERNEL(6)

typedef void (*kernel_fn)(const float *, int64_t, const float *, int64_t, float *, int64_t, int,
                          float, bool, const epilogue *);
static const kernel_fn kernels[ROWS + 1] = {NULL,     kernel_1, kernel_2, kernel_3,
                                            kernel_4, kernel_5, kernel_6};

typedef struct packed_job {
  int64_t M;
  const float *A;
  int64_t lda;
  const packed_b *pb;
  float alpha;
  float *C;
  int64_t ldc;
  bool acc;    /* C holds what the product adds to */
  epilogue ep; /* bias is the whole row of N here */
} packed_job;

/* Panels [p0, p1) of the product, blocked for the caches. */
static void packed_panels(void *arg, int64_t p0, int64_t p1, int thread) {
  const packed_job *j = arg;
  int64_t K = j->pb->K, N = j->pb->N;
  for (int64_t m0 = 0; m0 < j->M; m0 += MC) {
    int64_t mb = j->M - m0 < MC ? j->M - m0 : MC;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kb = K - k0 < KC ? K - k0 : KC;
      bool acc = j->acc || k0 > 0, last = k0 + kb == K;
      for (int64_t p = p0; p < p1; p++) {
        const float *b = j->pb->p + (p * K + k0) * PANEL;
        int ncols = (int)(N - p * PANEL < PANEL ? N - p * PANEL : PANEL);
        epilogue ep = j->ep;
        if (ep.bias) ep.bias += p * PANEL;
        bool any = ep.bias || ep.n_post;
        for (int64_t r = 0; r < mb; r += ROWS) {
          int64_t rows = mb - r < ROWS ? mb - r : ROWS;
          const float *a = j->A + (m0 + r) * j->lda + k0;
          kernels[rows](a, j->lda, b, kb, j->C + (m0 + r) * j->ldc + p * PANEL, j->ldc, ncols,
                        j->alpha, acc, last && any ? &ep : NULL);
        }
      }
    }
  }
  (void)thread;
}

/* C = post(alpha * A pb (+ C when acc) + bias), A [M,K] rows lda apart,
 * bias a row of N or NULL. */
static void gemm_packed(int64_t M, const float *A, int64_t lda, const packed_b *pb, float alpha,
                        float *C, int64_t ldc, bool acc, const float *bias,
                        const onnx_post_op *post, int n_post, int threads) {
  if (M == 0 || pb->N == 0) return;
  if (pb->K == 0) {
    for (int64_t m = 0; m < M; m++) {
      float *row = C + m * ldc;
      for (int64_t n = 0; n < pb->N; n++)
        row[n] = (acc ? row[n] : 0) + (bias ? bias[n] : 0);
      onnx_post_apply(post, n_post, 0, INFERD_TYPE_FP32, row, pb->N);
    }
    return;
  }
  packed_job j = {M, A, lda, pb, alpha, C, ldc, acc, {bias, post, n_post}};
  onnx_parallel(threads, (pb->N + PANEL - 1) / PANEL, packed_panels, &j);
}

/* Whether the CPU runs the packed kernel. */
static bool packed_ok(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* One product in the tensors' type. Handles the empty cases that BLAS
 * interfaces refuse: nothing to write, or K = 0 (C = beta * C). */
static int gemm(inferd_dtype t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                const void *A, int64_t lda, const void *B, int64_t ldb, float beta, void *C,
                int64_t ldc, err *e) {
  if (M == 0 || N == 0) return 0;
  if (K == 0) {
    for (int64_t m = 0; m < M; m++)
      if (t == INFERD_TYPE_FP32) {
        float *c = (float *)C + m * ldc;
        for (int64_t n = 0; n < N; n++)
          c[n] = beta == 0 ? 0 : beta * c[n];
      } else {
        double *c = (double *)C + m * ldc;
        for (int64_t n = 0; n < N; n++)
          c[n] = beta == 0 ? 0 : beta * c[n];
      }
    return 0;
  }
  if (t == INFERD_TYPE_FP64) {
    dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
  }
  if (M <= SMALL_M && tb && !ta && have_avx2_fma()) {
    small_gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
  }
  dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (st != dnnl_success)
    return err_set(e, -EIO, "oneDNN sgemm failed (status %d) for M=%lld N=%lld K=%lld", (int)st,
                   (long long)M, (long long)N, (long long)K);
  return 0;
}

static int check_types(const onnx_tensor *a, const onnx_tensor *b, err *e) {
  if (a->dtype != b->dtype)
    return err_set(e, -EINVAL, "inputs have types %s and %s; they must match", dtype_name(a->dtype),
                   dtype_name(b->dtype));
  if (!onnx_dtype_is_float(a->dtype))
    return err_set(e, -ENOTSUP, "type %s is not supported (FP32 and FP64 are)",
                   dtype_name(a->dtype));
  return 0;
}

/* ---- Gemm --------------------------------------------------------------- */

typedef struct gemm_attr {
  float alpha, beta;
  bool ta, tb;
  packed_b pb; /* B packed by prepare (pb.p NULL when not) */
} gemm_attr;

static int gemm_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  gemm_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  int rc;
  if ((rc = onnx_attr_float(p, "alpha", 1.0f, &at->alpha, e)) ||
      (rc = onnx_attr_float(p, "beta", 1.0f, &at->beta, e)) ||
      (rc = onnx_attr_bool(p, "transA", false, &at->ta, e)) ||
      (rc = onnx_attr_bool(p, "transB", false, &at->tb, e)))
    return rc;
  n->attr = at;
  return 0;
}

static int gemm_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const gemm_attr *at = n->attr;
  const onnx_tensor *A = in[0], *B = in[1], *C = n->n_in > 2 ? in[2] : NULL;
  char sa[96], sb[96];
  int rc = check_types(A, B, e);
  if (rc) return rc;
  if (A->ndim != 2 || B->ndim != 2)
    return err_set(e, -EINVAL, "A %s and B %s must be matrices", onnx_shape_str(sa, A),
                   onnx_shape_str(sb, B));
  int64_t M = A->dims[at->ta], K = A->dims[!at->ta];
  int64_t KB = B->dims[at->tb], N = B->dims[!at->tb];
  if (K != KB)
    return err_set(e, -EINVAL, "A %s%s and B %s%s do not multiply", onnx_shape_str(sa, A),
                   at->ta ? " (transposed)" : "", onnx_shape_str(sb, B),
                   at->tb ? " (transposed)" : "");
  if (C) {
    if (C->dtype != A->dtype)
      return err_set(e, -EINVAL, "C has type %s; A and B have %s", dtype_name(C->dtype),
                     dtype_name(A->dtype));
    bool ok = C->ndim <= 2;
    if (C->ndim == 2)
      ok = (C->dims[0] == M || C->dims[0] == 1) && (C->dims[1] == N || C->dims[1] == 1);
    if (C->ndim == 1) ok = C->dims[0] == N || C->dims[0] == 1;
    if (!ok)
      return err_set(e, -EINVAL, "C %s does not broadcast to the result [%lld,%lld]",
                     onnx_shape_str(sa, C), (long long)M, (long long)N);
  }
  out[0]->dtype = A->dtype;
  onnx_tensor_set_shape(out[0], 2, (int64_t[]){M, N});
  return 0;
}

/* Y = f * C, C broadcast over [M,N]: a scalar, a row [N] (a bias: the
 * usual case), a column [M,1] or the whole matrix. */
#define FILL_C(T)                                                                                  \
  ONNX_VECTORIZE static void fill_##T(T *restrict y, const T *restrict c, int64_t M, int64_t N,    \
                                      int64_t cm, int64_t cn, T f) {                               \
    for (int64_t m = 0; m < M; m++) {                                                              \
      T *restrict row = y + m * N;                                                                 \
      const T *restrict src = c + (cm > 1 ? m * cn : 0);                                           \
      if (cn > 1)                                                                                  \
        for (int64_t k = 0; k < N; k++)                                                            \
          row[k] = f * src[k];                                                                     \
      else                                                                                         \
        for (int64_t k = 0; k < N; k++)                                                            \
          row[k] = f * src[0];                                                                     \
    }                                                                                              \
  }
FILL_C(float)
FILL_C(double)

static int gemm_compute(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        int threads, err *e) {
  const gemm_attr *at = n->attr;
  const onnx_tensor *A = in[0], *B = in[1], *C = n->n_in > 2 ? in[2] : NULL;
  onnx_tensor *Y = out[0];
  int64_t M = Y->dims[0], N = Y->dims[1], K = A->dims[!at->ta];
  int64_t cm = C && C->ndim == 2 ? C->dims[0] : 1, cn = C && C->ndim ? C->dims[C->ndim - 1] : 1;
  if (at->pb.p && C && at->beta == 1 && cm == 1 && cn == N && N > 1) {
    /* a bias row: added as the packed kernel stores */
    gemm_packed(M, A->data, K, &at->pb, at->alpha, Y->data, N, false, C->data, n->post, n->n_post,
                threads);
    return 0;
  }
  float beta = 0; /* for the product: 1 when Y already holds beta * C */
  if (C && at->beta != 0 && M && N) {
    if (Y->dtype == INFERD_TYPE_FP32)
      fill_float(Y->data, C->data, M, N, cm, cn, at->beta);
    else
      fill_double(Y->data, C->data, M, N, cm, cn, at->beta);
    beta = 1;
  }
  if (at->pb.p) {
    gemm_packed(M, A->data, K, &at->pb, at->alpha, Y->data, N, beta != 0, NULL, n->post, n->n_post,
                threads);
    return 0;
  }
  int rc = gemm(Y->dtype, at->ta, at->tb, M, N, K, at->alpha, A->data, at->ta ? M : K, B->data,
                at->tb ? K : N, beta, Y->data, N, e);
  if (!rc && n->n_post) onnx_post_apply(n->post, n->n_post, 0, Y->dtype, Y->data, Y->count);
  return rc;
}

static int gemm_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  return gemm_compute(n, in, out, 1, e);
}

static int gemm_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                     onnx_tensor *const *out, err *e) {
  return gemm_compute(n, in, out, ctx->threads, e);
}

/* A constant FP32 B is packed (A not transposed: the kernel reads A's rows). */
static int gemm_prepare(onnx_node *n, const onnx_tensor *const *in, err *e) {
  gemm_attr *at = n->attr;
  const onnx_tensor *B = in[1];
  if (at->ta || !B->data || B->dtype != INFERD_TYPE_FP32 || B->ndim != 2 || B->count == 0 ||
      !packed_ok())
    return 0;
  int64_t K = B->dims[at->tb], N = B->dims[!at->tb];
  if (pack_b(B->data, K, N, at->tb, &at->pb)) return err_set(e, -ENOMEM, "out of memory");
  n->dropped |= 1u << 1;
  n->prepared_bytes = at->pb.bytes;
  return 0;
}

static void gemm_release(onnx_node *n) {
  gemm_attr *at = n->attr;
  free(at->pb.p);
  at->pb.p = NULL;
}

#define POST_ACT                                                                                   \
  (1u << ONNX_POST_RELU | 1u << ONNX_POST_LEAKY_RELU | 1u << ONNX_POST_CLIP |                      \
   1u << ONNX_POST_SIGMOID | 1u << ONNX_POST_TANH | 1u << ONNX_POST_ELU |                          \
   1u << ONNX_POST_HARD_SIGMOID | 1u << ONNX_POST_HARD_SWISH)

const onnx_op onnx_op_gemm = {.name = "Gemm",
                              .domain = "",
                              .min_inputs = 2,
                              .max_inputs = 3,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = gemm_init,
                              .infer = gemm_infer,
                              .run = gemm_run,
                              .prepare = gemm_prepare,
                              .release = gemm_release,
                              .run_step = gemm_step,
                              .post_ok = POST_ACT};

/* ---- MatMul ------------------------------------------------------------- */

/* The operands as stacks of matrices: a 1-D A is one row [1,K], a 1-D B
 * one column [K,1]; batch dimensions are all but the last two. */
typedef struct mm_shape {
  int64_t M, N, K;
  onnx_tensor ba, bb, bo; /* batch shapes (dtype unused) */
} mm_shape;

static int mm_shape_of(const onnx_tensor *A, const onnx_tensor *B, mm_shape *s, err *e) {
  char sa[96], sb[96];
  if (A->ndim < 1 || B->ndim < 1)
    return err_set(e, -EINVAL, "operands must have at least one dimension");
  s->M = A->ndim >= 2 ? A->dims[A->ndim - 2] : 1;
  s->K = A->dims[A->ndim - 1];
  int64_t KB = B->ndim >= 2 ? B->dims[B->ndim - 2] : B->dims[0];
  s->N = B->ndim >= 2 ? B->dims[B->ndim - 1] : 1;
  if (s->K != KB)
    return err_set(e, -EINVAL, "A %s and B %s do not multiply", onnx_shape_str(sa, A),
                   onnx_shape_str(sb, B));
  memset(&s->ba, 0, sizeof s->ba);
  memset(&s->bb, 0, sizeof s->bb);
  onnx_tensor_set_shape(&s->ba, A->ndim > 2 ? A->ndim - 2 : 0, A->dims);
  onnx_tensor_set_shape(&s->bb, B->ndim > 2 ? B->ndim - 2 : 0, B->dims);
  int rc = onnx_broadcast_shape(&s->ba, &s->bb, &s->bo, e);
  if (rc) {
    err_prefix(e, "batch dimensions of A %s and B %s: ", onnx_shape_str(sa, A),
               onnx_shape_str(sb, B));
    return rc;
  }
  return 0;
}

static int matmul_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  mm_shape s;
  int rc = check_types(in[0], in[1], e);
  if (rc || (rc = mm_shape_of(in[0], in[1], &s, e))) return rc;
  int64_t dims[ONNX_MAX_DIMS + 2];
  int nd = s.bo.ndim;
  memcpy(dims, s.bo.dims, (size_t)nd * sizeof dims[0]);
  if (in[0]->ndim >= 2) dims[nd++] = s.M;
  if (in[1]->ndim >= 2) dims[nd++] = s.N;
  if (nd > ONNX_MAX_DIMS) return err_set(e, -ENOTSUP, "the result would have %d dimensions", nd);
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], nd, dims);
  return 0;
}

/* Where batch index bi's operands start, in matrices, under numpy
 * broadcasting of the batch dimensions. */
static void batch_offsets(const mm_shape *s, int64_t bi, int64_t *oa, int64_t *ob) {
  int nd = s->bo.ndim;
  int64_t sa = 1, sb = 1;
  *oa = *ob = 0;
  for (int i = nd - 1; i >= 0; i--) {
    int ia = i - (nd - s->ba.ndim), ib = i - (nd - s->bb.ndim);
    int64_t da = ia >= 0 ? s->ba.dims[ia] : 1, db = ib >= 0 ? s->bb.dims[ib] : 1;
    int64_t x = bi % s->bo.dims[i];
    bi /= s->bo.dims[i];
    if (da != 1) *oa += x * sa;
    if (db != 1) *ob += x * sb;
    sa *= da;
    sb *= db;
  }
}

typedef struct batch_job {
  const mm_shape *s;
  const char *A, *B;
  char *Y;
  inferd_dtype t;
  int64_t ldb;
  float beta;
  atomic_int failed; /* set by the first range that fails, which fills rc and e */
  int rc;
  err *e;
} batch_job;

/* The products of batch indices [b0, b1). */
static void batch_products(void *arg, int64_t b0, int64_t b1, int thread) {
  batch_job *j = arg;
  const mm_shape *s = j->s;
  size_t es = dtype_size(j->t);
  for (int64_t bi = b0; bi < b1; bi++) {
    int64_t oa, ob;
    batch_offsets(s, bi, &oa, &ob);
    err e = {0};
    int rc =
        gemm(j->t, false, false, s->M, s->N, s->K, 1.0f, j->A + (size_t)(oa * s->M * s->K) * es,
             s->K, j->B + (size_t)(ob * s->K * s->N) * es, j->ldb, j->beta,
             j->Y + (size_t)(bi * s->M * s->N) * es, s->N, &e);
    if (rc) {
      if (atomic_exchange(&j->failed, 1) == 0) {
        j->rc = rc;
        *j->e = e;
      }
      return;
    }
  }
}

/* Y = post(A B (+ bias, a row of N added to every row of Y)); B packed by
 * prepare when packed is not NULL. Products of two computed operands
 * (attention's) go to dnnl_sgemm, one per batch index: packing B for the
 * kernel at every call measured slower there. */
static int matmul_product(const onnx_tensor *A, const onnx_tensor *B, const onnx_tensor *bias,
                          const packed_b *packed, const onnx_node *n, onnx_tensor *Y, int threads,
                          err *e) {
  mm_shape s;
  int rc = mm_shape_of(A, B, &s, e);
  if (rc) return rc;
  int64_t M = s.M, N = s.N, K = s.K;
  int64_t ldb = B->ndim >= 2 ? N : 1;
  if (packed) { /* B is one matrix: A's stack is one tall matrix */
    gemm_packed(s.ba.count * M, A->data, K, packed, 1.0f, Y->data, N, false,
                bias ? bias->data : NULL, n->post, n->n_post, threads);
    return 0;
  }
  float beta = 0;
  if (bias && N && Y->count) {
    if (Y->dtype == INFERD_TYPE_FP32)
      fill_float(Y->data, bias->data, Y->count / N, N, 1, N, 1.0f);
    else
      fill_double(Y->data, bias->data, Y->count / N, N, 1, N, 1.0);
    beta = 1;
  }
  /* B one matrix, A not broadcast: the stack of A is one tall matrix. */
  if (s.bb.count == 1 && s.ba.count == s.bo.count)
    return gemm(Y->dtype, false, false, s.ba.count * M, N, K, 1.0f, A->data, K, B->data, ldb, beta,
                Y->data, N, e);
  /* Otherwise one product per batch index (attention's heads), split over
   * the threads: one parallel region for all of them rather than one per
   * small product inside oneDNN (which runs single-threaded when called
   * from a parallel region). */
  batch_job j = {.s = &s,
                 .A = A->data,
                 .B = B->data,
                 .Y = Y->data,
                 .t = Y->dtype,
                 .ldb = ldb,
                 .beta = beta,
                 .e = e};
  atomic_init(&j.failed, 0);
  onnx_parallel(threads, s.bo.count, batch_products, &j);
  return j.rc;
}

/* MatMul and MatMul with a bias; their attr is the packed B (prepare),
 * NULL when B is not packed. */
static int matmul_compute(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                          int threads, err *e) {
  const onnx_tensor *bias = n->op == &onnx_op_matmul_bias ? in[2] : NULL;
  int rc = matmul_product(in[0], in[1], bias, n->attr, n, out[0], threads, e);
  if (!rc && n->n_post && !n->attr) /* the packed kernel applied them */
    onnx_post_apply(n->post, n->n_post, 0, out[0]->dtype, out[0]->data, out[0]->count);
  return rc;
}

static int matmul_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  return matmul_compute(n, in, out, 1, e);
}

static int matmul_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                       onnx_tensor *const *out, err *e) {
  return matmul_compute(n, in, out, ctx->threads, e);
}

/* A constant FP32 matrix B is packed into a packed_b of the node's own. */
static int matmul_prepare(onnx_node *n, const onnx_tensor *const *in, err *e) {
  const onnx_tensor *B = in[1];
  if (!B->data || B->dtype != INFERD_TYPE_FP32 || B->ndim != 2 || B->count == 0 || !packed_ok())
    return 0;
  packed_b *pb = calloc(1, sizeof *pb);
  if (!pb || pack_b(B->data, B->dims[0], B->dims[1], false, pb)) {
    free(pb);
    return err_set(e, -ENOMEM, "out of memory");
  }
  n->attr = pb;
  n->dropped |= 1u << 1;
  n->prepared_bytes = pb->bytes;
  return 0;
}

static void matmul_release(onnx_node *n) {
  packed_b *pb = n->attr;
  if (pb) free(pb->p);
  free(pb);
  n->attr = NULL;
}

const onnx_op onnx_op_matmul = {.name = "MatMul",
                                .domain = "",
                                .min_inputs = 2,
                                .max_inputs = 2,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .infer = matmul_infer,
                                .run = matmul_run,
                                .prepare = matmul_prepare,
                                .release = matmul_release,
                                .run_step = matmul_step,
                                .post_ok = POST_ACT};

/* ---- MatMul with a bias (made by onnx_fuse.c) --------------------------- */

static int matmul_bias_infer(const onnx_node *n, const onnx_tensor *const *in,
                             onnx_tensor *const *out, err *e) {
  int rc = matmul_infer(n, in, out, e);
  if (rc) return rc;
  const onnx_tensor *b = in[2];
  int64_t N = in[1]->ndim >= 2 ? in[1]->dims[in[1]->ndim - 1] : 1;
  char s[96];
  if (in[1]->ndim != 2 || b->dtype != in[0]->dtype || b->count != N)
    return err_set(e, -EINVAL, "bias %s %s is not a row of the result's %lld columns",
                   dtype_name(b->dtype), onnx_shape_str(s, b), (long long)N);
  return 0;
}

const onnx_op onnx_op_matmul_bias = {.name = "MatMulBias",
                                     .domain = "inferd",
                                     .min_inputs = 3,
                                     .max_inputs = 3,
                                     .min_outputs = 1,
                                     .max_outputs = 1,
                                     .infer = matmul_bias_infer,
                                     .run = matmul_run,
                                     .prepare = matmul_prepare,
                                     .release = matmul_release,
                                     .run_step = matmul_step,
                                     .post_ok = POST_ACT};

const onnx_op_row onnx_ops_gemm[] = {
    {&onnx_op_gemm, 7},   {&onnx_op_gemm, 9},   {&onnx_op_gemm, 11},   {&onnx_op_gemm, 13},
    {&onnx_op_matmul, 1}, {&onnx_op_matmul, 9}, {&onnx_op_matmul, 13}, {NULL, 0},
};
