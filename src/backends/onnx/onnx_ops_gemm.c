/* backends/onnx/onnx_ops_gemm.c: matrix products: Gemm (alpha, beta,
 * transA, transB, C broadcast to the result) and MatMul (numpy matmul: 1-D
 * operands, batch dimensions broadcast).
 *
 * FP32 products go to oneDNN's dnnl_sgemm, which measured fastest here for
 * the shapes that matter to serving (batch-1 GEMVs through batch-64 GEMMs;
 * faster than OpenBLAS and than a cached matmul primitive). FP64 uses plain
 * loops: no library here offers a double GEMM that is worth a dependency for
 * models that rarely ask for it. */
#include <dnnl.h>
#include <immintrin.h>
#include <math.h>
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

static int gemm_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  const gemm_attr *at = n->attr;
  const onnx_tensor *A = in[0], *B = in[1], *C = n->n_in > 2 ? in[2] : NULL;
  onnx_tensor *Y = out[0];
  int64_t M = Y->dims[0], N = Y->dims[1], K = A->dims[!at->ta];
  float beta = 0; /* for the product: 1 when Y already holds beta * C */
  if (C && at->beta != 0 && M && N) {
    int64_t cm = C->ndim == 2 ? C->dims[0] : 1, cn = C->ndim ? C->dims[C->ndim - 1] : 1;
    if (Y->dtype == INFERD_TYPE_FP32)
      fill_float(Y->data, C->data, M, N, cm, cn, at->beta);
    else
      fill_double(Y->data, C->data, M, N, cm, cn, at->beta);
    beta = 1;
  }
  return gemm(Y->dtype, at->ta, at->tb, M, N, K, at->alpha, A->data, at->ta ? M : K, B->data,
              at->tb ? K : N, beta, Y->data, N, e);
}

const onnx_op onnx_op_gemm = {.name = "Gemm",
                              .domain = "",
                              .min_inputs = 2,
                              .max_inputs = 3,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = gemm_init,
                              .infer = gemm_infer,
                              .run = gemm_run};

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

static int matmul_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *A = in[0], *B = in[1];
  onnx_tensor *Y = out[0];
  mm_shape s;
  int rc = mm_shape_of(A, B, &s, e);
  if (rc) return rc;
  size_t es = dtype_size(Y->dtype);
  int64_t M = s.M, N = s.N, K = s.K;
  int64_t ldb = B->ndim >= 2 ? N : 1;
  /* B one matrix, A not broadcast: the stack of A is one tall matrix. */
  if (s.bb.count == 1 && s.ba.count == s.bo.count)
    return gemm(Y->dtype, false, false, s.ba.count * M, N, K, 1.0f, A->data, K, B->data, ldb, 0,
                Y->data, N, e);
  /* Otherwise one product per batch index, operands found by broadcast
   * strides (in matrices) walked like an odometer. */
  int nd = s.bo.ndim;
  int64_t sa[ONNX_MAX_DIMS], sb[ONNX_MAX_DIMS], idx[ONNX_MAX_DIMS] = {0};
  int64_t stride_a = 1, stride_b = 1;
  for (int i = nd - 1; i >= 0; i--) {
    int ia = i - (nd - s.ba.ndim), ib = i - (nd - s.bb.ndim);
    int64_t da = ia >= 0 ? s.ba.dims[ia] : 1, db = ib >= 0 ? s.bb.dims[ib] : 1;
    sa[i] = da == 1 ? 0 : stride_a;
    sb[i] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  const char *pa = A->data, *pb = B->data;
  char *py = Y->data;
  int64_t oa = 0, ob = 0;
  for (int64_t bi = 0; bi < s.bo.count; bi++) {
    rc = gemm(Y->dtype, false, false, M, N, K, 1.0f, pa + (size_t)(oa * M * K) * es, K,
              pb + (size_t)(ob * K * N) * es, ldb, 0, py + (size_t)(bi * M * N) * es, N, e);
    if (rc) return rc;
    for (int d = nd - 1; d >= 0; d--) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < s.bo.dims[d]) break;
      oa -= sa[d] * s.bo.dims[d];
      ob -= sb[d] * s.bo.dims[d];
      idx[d] = 0;
    }
  }
  return 0;
}

const onnx_op onnx_op_matmul = {.name = "MatMul",
                                .domain = "",
                                .min_inputs = 2,
                                .max_inputs = 2,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .infer = matmul_infer,
                                .run = matmul_run};

const onnx_op_row onnx_ops_gemm[] = {
    {&onnx_op_gemm, 7},   {&onnx_op_gemm, 9},   {&onnx_op_gemm, 11},   {&onnx_op_gemm, 13},
    {&onnx_op_matmul, 1}, {&onnx_op_matmul, 9}, {&onnx_op_matmul, 13}, {NULL, 0},
};
