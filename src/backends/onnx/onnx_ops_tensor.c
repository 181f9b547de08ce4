/* backends/onnx/onnx_ops_tensor.c: operators that move data without
 * computing on it: Transpose, Squeeze, Unsqueeze, Concat, Split, Slice,
 * Expand, Tile, Pad, DepthToSpace, SpaceToDepth, ReverseSequence and
 * Dropout (inference: the identity).
 *
 * Every kernel here works on element sizes, never element types, so each
 * operator takes every fixed-size type (bool, the integers, float16 and
 * bfloat16 bits, float, double). Two copy engines do the work:
 *
 *   nd_copy       copies a strided view (a slice, a broadcast, a tile, a
 *                 region of a pad or a concat): dimensions of size 1 are
 *                 dropped, neighbours that both sides walk contiguously are
 *                 merged, and the innermost run is one memcpy when it is
 *                 contiguous on both sides;
 *   transpose_nd  the same canonical form for a permutation; when the
 *                 innermost axis stays innermost it is nd_copy with
 *                 memcpy runs (the attention reshapes [B,S,H,D] <->
 *                 [B,H,S,D]), otherwise a tiled 2-D transpose of the two
 *                 innermost axes so that reads and writes both stay in
 *                 cache.
 *
 * Inputs that decide the output's shape (axes, split, starts/ends, pads,
 * repeats, the target shape of Expand) are the operators' value_inputs:
 * the planner supplies their data when it infers shapes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

/* ---- attributes and known inputs ---------------------------------------- */

/* An INTS attribute: n values, or n = -1 when the attribute is absent. */
typedef struct ints {
  int n;
  int64_t *v;
} ints;

/* Reads the INTS attribute called name into out (copied into a, which
 * outlives the node proto). */
static int attr_ints(const Onnx__NodeProto *p, const char *name, arena *a, ints *out, err *e) {
  const Onnx__AttributeProto *at = onnx_attr_find(p, name);
  out->n = -1;
  out->v = NULL;
  if (!at) return 0;
  if (at->has_type && at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
    return err_set(e, -EINVAL, "attribute '%s' must be a list of INTS", name);
  if (at->n_ints > 4096)
    return err_set(e, -ENOTSUP, "attribute '%s' has %zu values; at most 4096 are supported", name,
                   at->n_ints);
  out->v = arena_alloc(a, (at->n_ints + 1) * sizeof *out->v);
  if (!out->v) return err_set(e, -ENOMEM, "out of memory");
  if (at->n_ints) memcpy(out->v, at->ints, at->n_ints * sizeof *out->v);
  out->n = (int)at->n_ints;
  return 0;
}

/* Reads a known INT32 or INT64 tensor (a scalar or a 1-D list of at most
 * max values) into v. */
static int known_ints(const onnx_tensor *t, const char *what, int64_t *v, int max, int *n, err *e) {
  if (!t) return err_set(e, -EINVAL, "the %s input is missing", what);
  if (t->dtype != INFERD_TYPE_INT64 && t->dtype != INFERD_TYPE_INT32)
    return err_set(e, -EINVAL, "the %s input must be INT32 or INT64, not %s", what,
                   dtype_name(t->dtype));
  if (t->ndim > 1) return err_set(e, -EINVAL, "the %s input must be 1-D", what);
  if (!t->data) return onnx_not_known(what, e);
  if (t->count > max)
    return err_set(e, -EINVAL, "the %s input has %lld values; at most %d are allowed", what,
                   (long long)t->count, max);
  for (int64_t i = 0; i < t->count; i++)
    v[i] = t->dtype == INFERD_TYPE_INT64 ? ((const int64_t *)t->data)[i]
                                         : ((const int32_t *)t->data)[i];
  *n = (int)t->count;
  return 0;
}

/* Makes each of the n axes non-negative for rank and refuses repeats. */
static int norm_axes(int64_t *axes, int n, int rank, err *e) {
  for (int i = 0; i < n; i++) {
    int a;
    int rc = onnx_axis(axes[i], rank, false, &a, e);
    if (rc) return rc;
    axes[i] = a;
    for (int j = 0; j < i; j++)
      if (axes[j] == a) return err_set(e, -EINVAL, "axis %d is listed twice", a);
  }
  return 0;
}

/* ---- copy engines ------------------------------------------------------- */

#define COPY_MAX_DIMS (2 * ONNX_MAX_DIMS)

/* n elements from src (byte stride ss, 0 to repeat one element) to dst
 * (byte stride ds). */
#define LINE(T)                                                                                    \
  for (int64_t i = 0; i < n; i++)                                                                  \
    memcpy(dst + i * ds, src + i * ss, sizeof(T));
static void copy_line(char *dst, int64_t ds, const char *src, int64_t ss, int64_t n, size_t es) {
  switch (es) {
  case 1: LINE(uint8_t) break;
  case 2: LINE(uint16_t) break;
  case 4: LINE(uint32_t) break;
  default: LINE(uint64_t) break;
  }
}
#undef LINE

/* Copies a strided view of shape dims[0..nd): element i of dimension d is
 * ds[d] bytes after element i-1 in dst and ss[d] bytes in src (negative
 * for a reversed slice, 0 for a broadcast). See the file comment. */
static void nd_copy(char *dst, const int64_t *ds, const char *src, const int64_t *ss,
                    const int64_t *dims, int nd, size_t es) {
  int64_t n[COPY_MAX_DIMS], a[COPY_MAX_DIMS], b[COPY_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < nd; i++) {
    if (dims[i] == 0) return;
    if (dims[i] == 1) continue;
    if (k > 0 && a[k - 1] == ds[i] * dims[i] && b[k - 1] == ss[i] * dims[i]) {
      n[k - 1] *= dims[i];
      a[k - 1] = ds[i];
      b[k - 1] = ss[i];
      continue;
    }
    n[k] = dims[i];
    a[k] = ds[i];
    b[k] = ss[i];
    k++;
  }
  if (k == 0) {
    memcpy(dst, src, es);
    return;
  }
  int in = k - 1;
  bool run = a[in] == (int64_t)es && b[in] == (int64_t)es;
  size_t run_bytes = (size_t)n[in] * es;
  int64_t rows = 1, idx[COPY_MAX_DIMS] = {0}, od = 0, os = 0;
  for (int d = 0; d < in; d++)
    rows *= n[d];
  for (int64_t r = 0; r < rows; r++) {
    if (run)
      memcpy(dst + od, src + os, run_bytes);
    else
      copy_line(dst + od, a[in], src + os, b[in], n[in], es);
    for (int d = in - 1; d >= 0; d--) { /* odometer over the outer dimensions */
      od += a[d];
      os += b[d];
      if (++idx[d] < n[d]) break;
      od -= a[d] * n[d];
      os -= b[d] * n[d];
      idx[d] = 0;
    }
  }
}

/* The canonical form of a permutation: size-1 axes dropped and axes that
 * stay neighbours merged. Writes the merged input dims and the permutation
 * over them; returns their count. */
static int perm_canon(int nd, const int64_t *dims, const int *perm, int64_t *cd, int *cp) {
  int map[ONNX_MAX_DIMS], k = 0;
  int64_t d1[ONNX_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    map[i] = dims[i] == 1 ? -1 : k;
    if (dims[i] != 1) d1[k++] = dims[i];
  }
  int p1[ONNX_MAX_DIMS], m = 0;
  for (int i = 0; i < nd; i++)
    if (map[perm[i]] >= 0) p1[m++] = map[perm[i]];
  /* groups of output-order axes that are consecutive in the input */
  int g_first[ONNX_MAX_DIMS], g_last[ONNX_MAX_DIMS], ng = 0;
  for (int i = 0; i < m; i++) {
    if (ng && p1[i] == g_last[ng - 1] + 1) {
      g_last[ng - 1] = p1[i];
      continue;
    }
    g_first[ng] = g_last[ng] = p1[i];
    ng++;
  }
  for (int g = 0; g < ng; g++) {
    int rank = 0;
    for (int h = 0; h < ng; h++)
      rank += g_first[h] < g_first[g];
    cp[g] = rank;
    cd[rank] = onnx_dims_product(d1, g_first[g], g_last[g] + 1);
  }
  return ng;
}

/* Tiles of 8 x 8 elements: 8 rows at the large stride of a transpose stay
 * within an 8-way cache set (16 rows of a 4 KiB stride would evict one
 * another). */
#define TILE 8
/* out[a*oa + b] = in[a + b*ib] for a in [a0, a1), b in [b0, b1). */
#define TILE_COPY(T)                                                                               \
  for (int64_t a = a0; a < a1; a++)                                                                \
    for (int64_t b = b0; b < b1; b++)                                                              \
      memcpy(out + (a * oa + b) * (int64_t)sizeof(T), in + (a + b * ib) * (int64_t)sizeof(T),      \
             sizeof(T));
static void block_copy(char *out, int64_t oa, const char *in, int64_t ib, int64_t a0, int64_t a1,
                       int64_t b0, int64_t b1, size_t es) {
  switch (es) {
  case 1: TILE_COPY(uint8_t) break;
  case 2: TILE_COPY(uint16_t) break;
  case 4: TILE_COPY(uint32_t) break;
  default: TILE_COPY(uint64_t) break;
  }
}
#undef TILE_COPY

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 32-bit elements, 8 x 8 at a time in AVX2 registers: 8 row loads, the
 * classic unpack / shuffle / permute transpose, 8 row stores. The bits are
 * only moved, so any 32-bit type (float, int32) goes through. Returns how
 * far along a and b whole blocks reached; block_copy does the rest. */
__attribute__((target("avx2"))) static void tile_avx2_32(char *out, int64_t oa, const char *in,
                                                         int64_t ib, int64_t na, int64_t nb,
                                                         int64_t *a_end, int64_t *b_end) {
  const float *src = (const float *)in;
  float *dst = (float *)out;
  int64_t na8 = na & ~(int64_t)7, nb8 = nb & ~(int64_t)7;
  /* 16 x 16 groups of four blocks: every cache line read or written is
   * used whole (16 floats) before the group moves on */
  for (int64_t ag = 0; ag < na8; ag += 16)
    for (int64_t bg = 0; bg < nb8; bg += 16)
      for (int64_t a0 = ag; a0 < na8 && a0 < ag + 16; a0 += 8)
        for (int64_t b0 = bg; b0 < nb8 && b0 < bg + 16; b0 += 8) {
          const float *s = src + a0 + b0 * ib;
          __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ib);
          __m256 r2 = _mm256_loadu_ps(s + 2 * ib), r3 = _mm256_loadu_ps(s + 3 * ib);
          __m256 r4 = _mm256_loadu_ps(s + 4 * ib), r5 = _mm256_loadu_ps(s + 5 * ib);
          __m256 r6 = _mm256_loadu_ps(s + 6 * ib), r7 = _mm256_loadu_ps(s + 7 * ib);
          __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
          __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
          __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
          __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
          __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
          __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
          __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
          __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
          __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
          __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
          __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
          __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
          float *d = dst + a0 * oa + b0;
          _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
          _mm256_storeu_ps(d + oa, _mm256_permute2f128_ps(u1, u5, 0x20));
          _mm256_storeu_ps(d + 2 * oa, _mm256_permute2f128_ps(u2, u6, 0x20));
          _mm256_storeu_ps(d + 3 * oa, _mm256_permute2f128_ps(u3, u7, 0x20));
          _mm256_storeu_ps(d + 4 * oa, _mm256_permute2f128_ps(u0, u4, 0x31));
          _mm256_storeu_ps(d + 5 * oa, _mm256_permute2f128_ps(u1, u5, 0x31));
          _mm256_storeu_ps(d + 6 * oa, _mm256_permute2f128_ps(u2, u6, 0x31));
          _mm256_storeu_ps(d + 7 * oa, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
  *a_end = na8;
  *b_end = nb8;
}

static bool have_avx2(void) {
  static int have = -1;
  if (have < 0) have = __builtin_cpu_supports("avx2");
  return have;
}
#endif

/* out[a*oa + b] = in[a + b*ib] over an na x nb block (input rows are b,
 * output rows a), in tiles so that the rows read and the rows written both
 * stay in cache. */
static void tile_2d(char *out, int64_t oa, const char *in, int64_t ib, int64_t na, int64_t nb,
                    size_t es) {
  int64_t a_end = 0, b_end = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (es == 4 && na >= 8 && nb >= 8 && have_avx2())
    tile_avx2_32(out, oa, in, ib, na, nb, &a_end, &b_end);
#endif
  /* what whole AVX2 blocks did not cover: b beyond b_end, then a beyond a_end */
  for (int64_t b0 = b_end; b0 < nb; b0 += TILE)
    for (int64_t a0 = 0; a0 < na; a0 += TILE)
      block_copy(out, oa, in, ib, a0, a0 + TILE < na ? a0 + TILE : na, b0,
                 b0 + TILE < nb ? b0 + TILE : nb, es);
  for (int64_t b0 = 0; b0 < b_end; b0 += TILE)
    for (int64_t a0 = a_end; a0 < na; a0 += TILE)
      block_copy(out, oa, in, ib, a0, a0 + TILE < na ? a0 + TILE : na, b0,
                 b0 + TILE < b_end ? b0 + TILE : b_end, es);
}

/* out = in with its axes permuted: output axis i is input axis perm[i]. */
static void transpose_nd(char *out, const char *in, size_t es, int nd, const int64_t *dims,
                         const int *perm) {
  int64_t cd[ONNX_MAX_DIMS], ist[ONNX_MAX_DIMS];
  int cp[ONNX_MAX_DIMS];
  int k = perm_canon(nd, dims, perm, cd, cp);
  int64_t count = onnx_dims_product(dims, 0, nd);
  if (count == 0) return;
  if (k <= 1) {
    memcpy(out, in, (size_t)count * es);
    return;
  }
  onnx_strides(cd, k, ist);
  int64_t od[ONNX_MAX_DIMS], ost[ONNX_MAX_DIMS], src[ONNX_MAX_DIMS], dst[ONNX_MAX_DIMS];
  for (int i = 0; i < k; i++)
    od[i] = cd[cp[i]];
  onnx_strides(od, k, ost);
  for (int i = 0; i < k; i++) {
    src[i] = ist[cp[i]] * (int64_t)es;
    dst[i] = ost[i] * (int64_t)es;
  }
  if (cp[k - 1] == k - 1) { /* the innermost axis stays: memcpy runs */
    nd_copy(out, dst, in, src, od, k, es);
    return;
  }
  /* A: the input's innermost axis (at output position qa); B: the output's
   * innermost axis. Tile A x B for every index of the other axes. */
  int qa = 0;
  while (cp[qa] != k - 1)
    qa++;
  int64_t na = od[qa], nb = od[k - 1], oa = ost[qa], ib = ist[cp[k - 1]];
  int64_t n[ONNX_MAX_DIMS], so[ONNX_MAX_DIMS], sd[ONNX_MAX_DIMS], idx[ONNX_MAX_DIMS] = {0};
  int m = 0;
  for (int i = 0; i < k - 1; i++)
    if (i != qa) {
      n[m] = od[i];
      so[m] = ist[cp[i]];
      sd[m] = ost[i];
      m++;
    }
  int64_t blocks = onnx_dims_product(n, 0, m), io = 0, oo = 0;
  for (int64_t r = 0; r < blocks; r++) {
    tile_2d(out + oo * (int64_t)es, oa, in + io * (int64_t)es, ib, na, nb, es);
    for (int d = m - 1; d >= 0; d--) {
      io += so[d];
      oo += sd[d];
      if (++idx[d] < n[d]) break;
      io -= so[d] * n[d];
      oo -= sd[d] * n[d];
      idx[d] = 0;
    }
  }
}

/* The run of the views (Squeeze, Unsqueeze, inference Dropout): a copy
 * only when the planner could not share memory (folding at load). */
static int view_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  if (out[0]->data != in[0]->data && onnx_tensor_bytes(out[0]))
    memcpy(out[0]->data, in[0]->data, onnx_tensor_bytes(out[0]));
  return 0;
}

/* ---- Transpose ---------------------------------------------------------- */

typedef struct transpose_attr {
  ints perm;
} transpose_attr;

static int transpose_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  transpose_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  return at ? attr_ints(p, "perm", a, &at->perm, e) : -ENOMEM;
}

/* The permutation for rank: the attribute, checked, or the reversal. */
static int transpose_perm(const transpose_attr *at, int rank, int *perm, err *e) {
  if (at->perm.n < 0) {
    for (int i = 0; i < rank; i++)
      perm[i] = rank - 1 - i;
    return 0;
  }
  if (at->perm.n != rank)
    return err_set(e, -EINVAL, "perm has %d values for an input of rank %d", at->perm.n, rank);
  unsigned seen = 0;
  for (int i = 0; i < rank; i++) {
    int64_t p = at->perm.v[i];
    if (p < 0 || p >= rank || (seen >> p & 1))
      return err_set(e, -EINVAL, "perm is not a permutation of 0..%d", rank - 1);
    seen |= 1u << p;
    perm[i] = (int)p;
  }
  return 0;
}

static int transpose_infer(const onnx_node *n, const onnx_tensor *const *in,
                           onnx_tensor *const *out, err *e) {
  int perm[ONNX_MAX_DIMS], rc;
  if ((rc = onnx_fixed_size(in[0], e)) || (rc = transpose_perm(n->attr, in[0]->ndim, perm, e)))
    return rc;
  int64_t dims[ONNX_MAX_DIMS];
  for (int i = 0; i < in[0]->ndim; i++)
    dims[i] = in[0]->dims[perm[i]];
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], in[0]->ndim, dims);
  return 0;
}

static int transpose_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  int perm[ONNX_MAX_DIMS];
  int rc = transpose_perm(n->attr, in[0]->ndim, perm, e);
  if (rc) return rc;
  transpose_nd(out[0]->data, in[0]->data, dtype_size(in[0]->dtype), in[0]->ndim, in[0]->dims, perm);
  return 0;
}

static const onnx_op transpose = {.name = "Transpose",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = transpose_init,
                                  .infer = transpose_infer,
                                  .run = transpose_run};

/* ---- Squeeze, Unsqueeze ------------------------------------------------- */

/* Both take axes as an attribute up to version 11 and as input 1 from 13. */
typedef struct axes_attr {
  ints axes;
} axes_attr;

static int axes_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  axes_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  if (!at) return -ENOMEM;
  int rc = attr_ints(p, "axes", a, &at->axes, e);
  if (rc) return rc;
  if (n->since >= 13 && at->axes.n >= 0)
    return err_set(e, -EINVAL, "axes is an input from opset 13, not an attribute");
  if (n->since < 13 && p->n_input > 1)
    return err_set(e, -EINVAL, "axes is an attribute before opset 13, not an input");
  return 0;
}

/* The axes of node n (attribute or input 1): *count = -1 when none given. */
static int axes_get(const onnx_node *n, const onnx_tensor *const *in, int64_t *axes, int *count,
                    err *e) {
  const axes_attr *at = n->attr;
  *count = -1;
  if (n->since < 13) {
    if (at->axes.n > ONNX_MAX_DIMS)
      return err_set(e, -EINVAL, "axes has %d values; at most %d are supported", at->axes.n,
                     ONNX_MAX_DIMS);
    if (at->axes.n >= 0) memcpy(axes, at->axes.v, (size_t)at->axes.n * sizeof *axes);
    *count = at->axes.n;
    return 0;
  }
  if (n->n_in < 2 || !in[1]) return 0;
  return known_ints(in[1], "axes", axes, ONNX_MAX_DIMS, count, e);
}

static int squeeze_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  const onnx_tensor *x = in[0];
  int64_t axes[ONNX_MAX_DIMS];
  int na, rc;
  if ((rc = axes_get(n, in, axes, &na, e)) || (na > 0 && (rc = norm_axes(axes, na, x->ndim, e))))
    return rc;
  bool drop[ONNX_MAX_DIMS] = {false};
  for (int i = 0; i < x->ndim; i++)
    drop[i] = na < 0 && x->dims[i] == 1;
  for (int i = 0; i < na; i++) {
    if (x->dims[axes[i]] != 1) {
      char s[96];
      return err_set(e, -EINVAL, "cannot squeeze axis %lld of %s: its size is not 1",
                     (long long)axes[i], onnx_shape_str(s, x));
    }
    drop[axes[i]] = true;
  }
  int64_t dims[ONNX_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < x->ndim; i++)
    if (!drop[i]) dims[k++] = x->dims[i];
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], k, dims);
  return 0;
}

static int unsqueeze_infer(const onnx_node *n, const onnx_tensor *const *in,
                           onnx_tensor *const *out, err *e) {
  const onnx_tensor *x = in[0];
  int64_t axes[ONNX_MAX_DIMS];
  int na, rc;
  if ((rc = axes_get(n, in, axes, &na, e))) return rc;
  if (na < 0) return err_set(e, -EINVAL, "axes are required");
  int rank = x->ndim + na;
  if (rank > ONNX_MAX_DIMS)
    return err_set(e, -ENOTSUP, "the output would have %d dimensions; at most %d are supported",
                   rank, ONNX_MAX_DIMS);
  if ((rc = norm_axes(axes, na, rank, e))) return rc;
  bool added[ONNX_MAX_DIMS] = {false};
  for (int i = 0; i < na; i++)
    added[axes[i]] = true;
  int64_t dims[ONNX_MAX_DIMS];
  for (int i = 0, k = 0; i < rank; i++)
    dims[i] = added[i] ? 1 : x->dims[k++];
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], rank, dims);
  return 0;
}

static const onnx_op squeeze = {.name = "Squeeze",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 2,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .flags = ONNX_OP_ALIAS,
                                .init = axes_init,
                                .infer = squeeze_infer,
                                .run = view_run,
                                .value_inputs = 1u << 1};
static const onnx_op unsqueeze = {.name = "Unsqueeze",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = 2,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .flags = ONNX_OP_ALIAS,
                                  .init = axes_init,
                                  .infer = unsqueeze_infer,
                                  .run = view_run,
                                  .value_inputs = 1u << 1};

/* ---- Concat ------------------------------------------------------------- */

typedef struct axis_attr {
  int64_t axis;
} axis_attr;

static int concat_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  axis_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  if (!at) return -ENOMEM;
  if (n->since >= 4 && !onnx_attr_find(p, "axis"))
    return err_set(e, -EINVAL, "attribute 'axis' is required");
  return onnx_attr_int(p, "axis", 1, &at->axis, e); /* Concat-1 defaults to 1 */
}

static int concat_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const axis_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int axis, rc;
  if ((rc = onnx_fixed_size(x, e)) || (rc = onnx_axis(at->axis, x->ndim, false, &axis, e)))
    return rc;
  int64_t dims[ONNX_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  for (int i = 1; i < n->n_in; i++) {
    const onnx_tensor *y = in[i];
    if (!y) return err_set(e, -EINVAL, "input %d is missing", i);
    bool ok = y->dtype == x->dtype && y->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++)
      ok = d == axis || y->dims[d] == x->dims[d];
    if (!ok) {
      char a[96], b[96];
      return err_set(e, -EINVAL, "input %d is %s %s; it cannot join %s %s on axis %d", i,
                     dtype_name(y->dtype), onnx_shape_str(a, y), dtype_name(x->dtype),
                     onnx_shape_str(b, x), axis);
    }
    dims[axis] += y->dims[axis];
  }
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], x->ndim, dims);
  return 0;
}

/* Each input is a block of `outer` rows written at its offset within the
 * output's rows. */
static int concat_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *o = out[0];
  int64_t a = ((const axis_attr *)n->attr)->axis;
  int axis = (int)(a < 0 ? a + o->ndim : a);
  size_t es = dtype_size(o->dtype);
  int64_t outer = onnx_dims_product(o->dims, 0, axis);
  size_t inner = (size_t)onnx_dims_product(o->dims, axis + 1, o->ndim) * es;
  size_t row = (size_t)o->dims[axis] * inner, off = 0;
  for (int i = 0; i < n->n_in; i++) {
    size_t chunk = (size_t)in[i]->dims[axis] * inner;
    const char *src = in[i]->data;
    char *dst = (char *)o->data + off;
    if (chunk)
      for (int64_t r = 0; r < outer; r++)
        memcpy(dst + (size_t)r * row, src + (size_t)r * chunk, chunk);
    off += chunk;
  }
  return 0;
}

static const onnx_op concat = {.name = "Concat",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 255,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = concat_init,
                               .infer = concat_infer,
                               .run = concat_run};

/* ---- Split -------------------------------------------------------------- */

typedef struct split_attr {
  int64_t axis;
  ints split;
} split_attr;

static int split_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  split_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_int(p, "axis", 0, &at->axis, e)) ||
      (rc = attr_ints(p, "split", a, &at->split, e)))
    return rc;
  if (n->since >= 13 && at->split.n >= 0)
    return err_set(e, -EINVAL, "split is an input from opset 13, not an attribute");
  if (n->since >= 2 && n->since < 13 && p->n_input > 1)
    return err_set(e, -EINVAL, "split is an attribute in opsets 2 to 12, not an input");
  return 0;
}

/* The sizes of the n->n_out parts along axis of x: the split attribute or
 * input, or equal parts. */
static int split_sizes(const onnx_node *n, const onnx_tensor *const *in, int axis, int64_t *sizes,
                       err *e) {
  const split_attr *at = n->attr;
  int64_t dim = in[0]->dims[axis], sum = 0;
  int count = -1, rc;
  if (at->split.n >= 0) {
    count = at->split.n;
    if (count == n->n_out) memcpy(sizes, at->split.v, (size_t)count * sizeof *sizes);
  } else if (n->n_in > 1 && in[1]) {
    int64_t tmp[256];
    if ((rc = known_ints(in[1], "split", tmp, 255, &count, e))) return rc;
    if (count == n->n_out) memcpy(sizes, tmp, (size_t)count * sizeof *sizes);
  }
  if (count < 0) {
    if (dim % n->n_out)
      return err_set(e, -EINVAL, "axis %d of size %lld does not split into %d equal parts", axis,
                     (long long)dim, n->n_out);
    for (int i = 0; i < n->n_out; i++)
      sizes[i] = dim / n->n_out;
    return 0;
  }
  if (count != n->n_out)
    return err_set(e, -EINVAL, "split has %d sizes for %d outputs", count, n->n_out);
  for (int i = 0; i < count; i++) {
    if (sizes[i] < 0) return err_set(e, -EINVAL, "split has a negative size");
    sum += sizes[i];
  }
  if (sum != dim)
    return err_set(e, -EINVAL, "split sizes add up to %lld; axis %d has %lld", (long long)sum, axis,
                   (long long)dim);
  return 0;
}

static int split_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  const split_attr *at = n->attr;
  int axis, rc;
  int64_t sizes[256];
  if ((rc = onnx_fixed_size(in[0], e)) ||
      (rc = onnx_axis(at->axis, in[0]->ndim, false, &axis, e)) ||
      (rc = split_sizes(n, in, axis, sizes, e)))
    return rc;
  for (int i = 0; i < n->n_out; i++) {
    if (!out[i]) continue;
    onnx_tensor_like(out[i], in[0]);
    out[i]->dims[axis] = sizes[i];
    onnx_tensor_set_shape(out[i], in[0]->ndim, out[i]->dims);
  }
  return 0;
}

static int split_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const onnx_tensor *x = in[0];
  int axis = (int)(((const split_attr *)n->attr)->axis);
  if (axis < 0) axis += x->ndim;
  int64_t sizes[256];
  int rc = split_sizes(n, in, axis, sizes, e);
  if (rc) return rc;
  size_t es = dtype_size(x->dtype);
  int64_t outer = onnx_dims_product(x->dims, 0, axis);
  size_t inner = (size_t)onnx_dims_product(x->dims, axis + 1, x->ndim) * es;
  size_t row = (size_t)x->dims[axis] * inner, off = 0;
  for (int i = 0; i < n->n_out; i++) {
    size_t chunk = (size_t)sizes[i] * inner;
    if (out[i] && chunk)
      for (int64_t r = 0; r < outer; r++)
        memcpy((char *)out[i]->data + (size_t)r * chunk, (const char *)x->data + r * row + off,
               chunk);
    off += chunk;
  }
  return 0;
}

static const onnx_op split = {.name = "Split",
                              .domain = "",
                              .min_inputs = 1,
                              .max_inputs = 2,
                              .min_outputs = 1,
                              .max_outputs = 255,
                              .init = split_init,
                              .infer = split_infer,
                              .run = split_run,
                              .value_inputs = 1u << 1};

/* ---- Slice -------------------------------------------------------------- */

typedef struct slice_attr {
  ints starts, ends, axes; /* Slice-1 */
} slice_attr;

static int slice_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  slice_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if (n->since >= 10) {
    if (p->n_input < 3)
      return err_set(e, -EINVAL, "Slice-%d takes starts and ends as inputs", n->since);
    return 0;
  }
  if ((rc = attr_ints(p, "starts", a, &at->starts, e)) ||
      (rc = attr_ints(p, "ends", a, &at->ends, e)) || (rc = attr_ints(p, "axes", a, &at->axes, e)))
    return rc;
  if (at->starts.n < 0 || at->ends.n < 0)
    return err_set(e, -EINVAL, "attributes 'starts' and 'ends' are required");
  if (p->n_input > 1) return err_set(e, -EINVAL, "Slice-1 takes one input");
  return 0;
}

/* Where a slice starts along each axis, its step and how many elements it
 * takes, with starts and ends clamped as the operator defines: into
 * [0, dim] for a positive step, [-1, dim-1] for a negative one. */
typedef struct slice_plan {
  int64_t start[ONNX_MAX_DIMS], step[ONNX_MAX_DIMS], count[ONNX_MAX_DIMS];
} slice_plan;

static int slice_make(const onnx_node *n, const onnx_tensor *const *in, slice_plan *sp, err *e) {
  const slice_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int r = x->ndim, ns, ne, na, nst, rc;
  int64_t starts[ONNX_MAX_DIMS], ends[ONNX_MAX_DIMS], axes[ONNX_MAX_DIMS], steps[ONNX_MAX_DIMS];
  if (n->since < 10) {
    ns = at->starts.n;
    ne = at->ends.n;
    na = at->axes.n;
    if (ns > r || ne > r || na > r)
      return err_set(e, -EINVAL, "more starts, ends or axes than the input's %d dimensions", r);
    memcpy(starts, at->starts.v, (size_t)ns * sizeof *starts);
    memcpy(ends, at->ends.v, (size_t)ne * sizeof *ends);
    if (na >= 0) memcpy(axes, at->axes.v, (size_t)na * sizeof *axes);
    nst = -1;
  } else {
    if ((rc = known_ints(in[1], "starts", starts, ONNX_MAX_DIMS, &ns, e)) ||
        (rc = known_ints(in[2], "ends", ends, ONNX_MAX_DIMS, &ne, e)))
      return rc;
    na = nst = -1;
    if (n->n_in > 3 && in[3] && (rc = known_ints(in[3], "axes", axes, ONNX_MAX_DIMS, &na, e)))
      return rc;
    if (n->n_in > 4 && in[4] && (rc = known_ints(in[4], "steps", steps, ONNX_MAX_DIMS, &nst, e)))
      return rc;
  }
  if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
    return err_set(e, -EINVAL, "starts, ends, axes and steps must have the same length");
  if (na < 0)
    for (int i = 0; i < ns; i++)
      axes[i] = i;
  if (ns > r) return err_set(e, -EINVAL, "%d starts for an input of rank %d", ns, r);
  if ((rc = norm_axes(axes, ns, r, e))) return rc;
  for (int d = 0; d < r; d++) {
    sp->start[d] = 0;
    sp->step[d] = 1;
    sp->count[d] = x->dims[d];
  }
  for (int i = 0; i < ns; i++) {
    int d = (int)axes[i];
    int64_t dim = x->dims[d], step = nst >= 0 ? steps[i] : 1, s = starts[i], t = ends[i];
    if (step == 0) return err_set(e, -EINVAL, "a step of 0 (axis %d)", d);
    if (s < 0) s = s < -dim ? -1 : s + dim; /* -1: below every index */
    if (t < 0) t = t < -dim ? -1 : t + dim;
    if (step > 0) {
      s = s < 0 ? 0 : s > dim ? dim : s;
      t = t < 0 ? 0 : t > dim ? dim : t;
    } else { /* start into [0, dim-1] (-1 when the axis is empty), end into [-1, dim-1] */
      s = s < 0 ? 0 : s;
      s = s > dim - 1 ? dim - 1 : s;
      t = t < -1 ? -1 : t > dim - 1 ? dim - 1 : t;
    }
    int64_t count = 0;
    if (step > 0 && t > s) count = (t - s + step - 1) / step;
    if (step < 0 && s > t) count = (s - t + (-step) - 1) / -step;
    sp->start[d] = count ? s : 0;
    sp->step[d] = step;
    sp->count[d] = count;
  }
  return 0;
}

static int slice_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  slice_plan sp;
  int rc;
  if ((rc = onnx_fixed_size(in[0], e)) || (rc = slice_make(n, in, &sp, e))) return rc;
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], in[0]->ndim, sp.count);
  return 0;
}

static int slice_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const onnx_tensor *x = in[0];
  slice_plan sp;
  int rc = slice_make(n, in, &sp, e);
  if (rc) return rc;
  if (out[0]->count == 0) return 0;
  size_t es = dtype_size(x->dtype);
  int64_t ist[ONNX_MAX_DIMS], ost[ONNX_MAX_DIMS], ss[ONNX_MAX_DIMS], ds[ONNX_MAX_DIMS], base = 0;
  onnx_strides(x->dims, x->ndim, ist);
  onnx_strides(sp.count, x->ndim, ost);
  for (int d = 0; d < x->ndim; d++) {
    base += sp.start[d] * ist[d];
    ss[d] = sp.step[d] * ist[d] * (int64_t)es;
    ds[d] = ost[d] * (int64_t)es;
  }
  nd_copy(out[0]->data, ds, (const char *)x->data + base * (int64_t)es, ss, sp.count, x->ndim, es);
  return 0;
}

static const onnx_op slice = {.name = "Slice",
                              .domain = "",
                              .min_inputs = 1,
                              .max_inputs = 5,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = slice_init,
                              .infer = slice_infer,
                              .run = slice_run,
                              .value_inputs = 0x1eu};

/* ---- Expand ------------------------------------------------------------- */

static int expand_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  onnx_tensor want = {.dtype = INFERD_TYPE_INT64};
  int nd, rc;
  if ((rc = onnx_fixed_size(in[0], e))) return rc;
  if (in[1]->dtype != INFERD_TYPE_INT64 || in[1]->ndim != 1)
    return err_set(e, -EINVAL, "the shape input must be a 1-D INT64 tensor");
  if ((rc = known_ints(in[1], "shape", want.dims, ONNX_MAX_DIMS, &nd, e))) return rc;
  for (int i = 0; i < nd; i++)
    if (want.dims[i] < 0) return err_set(e, -EINVAL, "the shape has a negative dimension");
  onnx_tensor_set_shape(&want, nd, want.dims);
  out[0]->dtype = in[0]->dtype;
  return onnx_broadcast_shape(in[0], &want, out[0], e);
}

static int expand_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *x = in[0], *o = out[0];
  size_t es = dtype_size(x->dtype);
  int64_t ist[ONNX_MAX_DIMS], ost[ONNX_MAX_DIMS], ss[ONNX_MAX_DIMS], ds[ONNX_MAX_DIMS];
  onnx_strides(x->dims, x->ndim, ist);
  onnx_strides(o->dims, o->ndim, ost);
  for (int d = 0; d < o->ndim; d++) {
    int xd = d - (o->ndim - x->ndim);
    ss[d] = xd >= 0 && x->dims[xd] != 1 ? ist[xd] * (int64_t)es : 0;
    ds[d] = ost[d] * (int64_t)es;
  }
  if (o->count) nd_copy(o->data, ds, x->data, ss, o->dims, o->ndim, es);
  return 0;
}

static const onnx_op expand = {.name = "Expand",
                               .domain = "",
                               .min_inputs = 2,
                               .max_inputs = 2,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .infer = expand_infer,
                               .run = expand_run,
                               .value_inputs = 1u << 1};

/* ---- Tile --------------------------------------------------------------- */

/* The repetitions per axis: input 1 from version 6; Tile-1 repeats one
 * axis (input 2) a number of times (input 1). */
static int tile_repeats(const onnx_node *n, const onnx_tensor *const *in, int64_t *rep, err *e) {
  int r = in[0]->ndim, cnt, rc;
  if (n->since < 6) { /* tiles and axis are scalars of the input's (float) type */
    int ax;
    if (n->n_in < 3 || !in[2]) return err_set(e, -EINVAL, "Tile-1 takes tiles and axis inputs");
    if (!in[1]->data || !in[2]->data) return onnx_not_known("tiles and axis", e);
    if (in[1]->count != 1 || in[2]->count != 1)
      return err_set(e, -EINVAL, "tiles and axis must be scalars");
    double tiles = onnx_load_double(in[1], 0), axis = onnx_load_double(in[2], 0);
    if (!(tiles >= 0 && tiles < 1e15) || axis != floor(axis) || fabs(axis) > ONNX_MAX_DIMS)
      return err_set(e, -EINVAL, "tiles %g or axis %g is out of range", tiles, axis);
    if ((rc = onnx_axis((int64_t)axis, r, false, &ax, e))) return rc;
    for (int d = 0; d < r; d++)
      rep[d] = d == ax ? (int64_t)tiles : 1;
  } else {
    if (in[1]->dtype != INFERD_TYPE_INT64)
      return err_set(e, -EINVAL, "the repeats input must be INT64");
    if ((rc = known_ints(in[1], "repeats", rep, ONNX_MAX_DIMS, &cnt, e))) return rc;
    if (cnt != r)
      return err_set(e, -EINVAL, "repeats has %d values for an input of rank %d", cnt, r);
  }
  for (int d = 0; d < r; d++)
    if (rep[d] < 0) return err_set(e, -EINVAL, "a negative repeat count (axis %d)", d);
  return 0;
}

static int tile_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  int64_t rep[ONNX_MAX_DIMS], dims[ONNX_MAX_DIMS];
  int rc;
  if ((rc = onnx_fixed_size(in[0], e)) || (rc = tile_repeats(n, in, rep, e))) return rc;
  for (int d = 0; d < in[0]->ndim; d++) {
    if (rep[d] && in[0]->dims[d] > INT64_MAX / rep[d])
      return err_set(e, -EINVAL, "the tiled shape overflows");
    dims[d] = in[0]->dims[d] * rep[d];
  }
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], in[0]->ndim, dims);
  return 0;
}

/* The output seen as [rep0, d0, rep1, d1, ...]: the source steps 0 along
 * each rep axis, so nd_copy repeats whole rows by memcpy. */
static int tile_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  const onnx_tensor *x = in[0], *o = out[0];
  int64_t rep[ONNX_MAX_DIMS], ist[ONNX_MAX_DIMS], ost[ONNX_MAX_DIMS];
  int64_t dims[COPY_MAX_DIMS], ss[COPY_MAX_DIMS], ds[COPY_MAX_DIMS];
  int rc = tile_repeats(n, in, rep, e);
  if (rc) return rc;
  if (!o->count) return 0;
  size_t es = dtype_size(x->dtype);
  onnx_strides(x->dims, x->ndim, ist);
  onnx_strides(o->dims, o->ndim, ost);
  for (int d = 0; d < x->ndim; d++) {
    dims[2 * d] = rep[d];
    ss[2 * d] = 0;
    ds[2 * d] = x->dims[d] * ost[d] * (int64_t)es;
    dims[2 * d + 1] = x->dims[d];
    ss[2 * d + 1] = ist[d] * (int64_t)es;
    ds[2 * d + 1] = ost[d] * (int64_t)es;
  }
  nd_copy(o->data, ds, x->data, ss, dims, 2 * x->ndim, es);
  return 0;
}

static const onnx_op tile = {.name = "Tile",
                             .domain = "",
                             .min_inputs = 2,
                             .max_inputs = 3,
                             .min_outputs = 1,
                             .max_outputs = 1,
                             .infer = tile_infer,
                             .run = tile_run,
                             .value_inputs = (1u << 1) | (1u << 2)};

/* ---- Pad ---------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };
static const char *const pad_modes[] = {"constant", "reflect", "edge"};

typedef struct pad_attr {
  int mode;
  float value; /* Pad-1 and 2 */
  ints pads;   /* Pad-1 ("paddings") and 2 */
} pad_attr;

static int pad_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  pad_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_enum(p, "mode", pad_modes, 3, PAD_CONSTANT, &at->mode, e))) return rc;
  if (n->since >= 11) {
    if (p->n_input < 2) return err_set(e, -EINVAL, "Pad-%d takes pads as an input", n->since);
    return 0;
  }
  if (p->n_input > 1) return err_set(e, -EINVAL, "Pad-%d takes one input", n->since);
  if ((rc = onnx_attr_float(p, "value", 0.0f, &at->value, e)) ||
      (rc = attr_ints(p, n->since < 2 ? "paddings" : "pads", a, &at->pads, e)))
    return rc;
  if (at->pads.n < 0) return err_set(e, -EINVAL, "attribute 'pads' is required");
  return 0;
}

/* Pads before (b[d]) and after each axis; negative ones crop. */
static int pad_amounts(const onnx_node *n, const onnx_tensor *const *in, int64_t *b, int64_t *a,
                       err *e) {
  const pad_attr *at = n->attr;
  int r = in[0]->ndim, cnt, rc;
  int64_t v[2 * ONNX_MAX_DIMS];
  if (n->since < 11) {
    cnt = at->pads.n;
    if (cnt == 2 * r) memcpy(v, at->pads.v, (size_t)cnt * sizeof *v);
  } else {
    if (in[1]->dtype != INFERD_TYPE_INT64)
      return err_set(e, -EINVAL, "the pads input must be INT64");
    if ((rc = known_ints(in[1], "pads", v, 2 * ONNX_MAX_DIMS, &cnt, e))) return rc;
  }
  if (cnt != 2 * r)
    return err_set(e, -EINVAL, "pads has %d values for an input of rank %d", cnt, r);
  for (int d = 0; d < r; d++) {
    b[d] = v[d];
    a[d] = v[r + d];
  }
  return 0;
}

static int pad_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const pad_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int64_t b[ONNX_MAX_DIMS], a[ONNX_MAX_DIMS], dims[ONNX_MAX_DIMS];
  int rc;
  if ((rc = onnx_fixed_size(x, e)) || (rc = pad_amounts(n, in, b, a, e))) return rc;
  for (int d = 0; d < x->ndim; d++) {
    dims[d] = x->dims[d] + b[d] + a[d];
    if (dims[d] < 0)
      return err_set(e, -EINVAL, "pads crop axis %d of size %lld below zero", d,
                     (long long)x->dims[d]);
    if (at->mode != PAD_CONSTANT && x->dims[d] == 0 && dims[d] > 0)
      return err_set(e, -EINVAL, "%s padding of axis %d, which is empty", pad_modes[at->mode], d);
  }
  if (n->since >= 11 && n->n_in > 2 && in[2] && (in[2]->dtype != x->dtype || in[2]->count != 1))
    return err_set(e, -EINVAL, "constant_value must be one %s", dtype_name(x->dtype));
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], x->ndim, dims);
  return 0;
}

/* The source index for index i (in input coordinates) of an axis of size
 * n under reflect or edge padding; numpy's rules, for pads wider than the
 * axis too. */
static int64_t pad_map(int mode, int64_t i, int64_t n) {
  if (mode == PAD_EDGE || n == 1) return i < 0 ? 0 : i >= n ? n - 1 : i;
  int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

/* Row by row over the output's outer axes: a row whose source lies in a
 * constant pad is filled; otherwise its middle is one memcpy from the
 * mapped source row and its ends are filled or mapped element by
 * element. */
static int pad_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const pad_attr *at = n->attr;
  const onnx_tensor *x = in[0], *o = out[0];
  int64_t b[ONNX_MAX_DIMS], a[ONNX_MAX_DIMS], ist[ONNX_MAX_DIMS];
  int rc = pad_amounts(n, in, b, a, e);
  if (rc) return rc;
  size_t es = dtype_size(x->dtype);
  char value[8] = {0};
  if (n->since < 11)
    onnx_store_double(x->dtype, value, 0, at->value);
  else if (n->n_in > 2 && in[2])
    memcpy(value, in[2]->data, es);
  if (!o->count) return 0;
  if (o->ndim == 0) {
    memcpy(o->data, x->data, es);
    return 0;
  }
  int r = o->ndim, in_ax = r - 1;
  onnx_strides(x->dims, r, ist);
  int64_t len = o->dims[in_ax], nx = x->dims[in_ax], bb = b[in_ax];
  int64_t lo = bb < 0 ? 0 : bb > len ? len : bb;
  int64_t hi = bb + nx < 0 ? 0 : bb + nx > len ? len : bb + nx;
  int64_t rows = onnx_dims_product(o->dims, 0, in_ax), idx[ONNX_MAX_DIMS] = {0};
  char *dst = o->data;
  const char *src = x->data;
  for (int64_t row = 0; row < rows; row++, dst += (size_t)len * es) {
    int64_t off = 0;
    bool fill = false;
    for (int d = 0; d < in_ax && !fill; d++) {
      int64_t s = idx[d] - b[d];
      if (s < 0 || s >= x->dims[d]) {
        if (at->mode == PAD_CONSTANT)
          fill = true;
        else
          s = pad_map(at->mode, s, x->dims[d]);
      }
      off += s * ist[d];
    }
    for (int d = in_ax - 1; d >= 0; d--) {
      if (++idx[d] < o->dims[d]) break;
      idx[d] = 0;
    }
    if (fill) {
      for (int64_t i = 0; i < len; i++)
        onnx_copy_elem(dst + i * es, value, es);
      continue;
    }
    const char *s = src + (size_t)off * es;
    if (hi > lo) memcpy(dst + lo * es, s + (lo - bb) * es, (size_t)(hi - lo) * es);
    for (int64_t i = 0; i < len; i++) {
      if (i == lo) i = hi > lo ? hi : lo;
      if (i >= len) break;
      if (at->mode == PAD_CONSTANT)
        onnx_copy_elem(dst + i * es, value, es);
      else
        onnx_copy_elem(dst + i * es, s + pad_map(at->mode, i - bb, nx) * es, es);
    }
  }
  return 0;
}

static const onnx_op pad = {.name = "Pad",
                            .domain = "",
                            .min_inputs = 1,
                            .max_inputs = 3,
                            .min_outputs = 1,
                            .max_outputs = 1,
                            .init = pad_init,
                            .infer = pad_infer,
                            .run = pad_run,
                            .value_inputs = 1u << 1};

/* ---- DepthToSpace, SpaceToDepth ----------------------------------------- */

/* Both are a reshape to 6-D, a transpose and a reshape back; the transpose
 * is transpose_nd over the 6-D view. */
typedef struct d2s_attr {
  int64_t blocksize;
  int mode; /* 0 DCR, 1 CRD */
} d2s_attr;

static const char *const d2s_modes[] = {"DCR", "CRD"};

static int d2s_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  d2s_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if (!onnx_attr_find(p, "blocksize"))
    return err_set(e, -EINVAL, "attribute 'blocksize' is required");
  if ((rc = onnx_attr_int(p, "blocksize", 0, &at->blocksize, e))) return rc;
  if (at->blocksize < 1 || at->blocksize > 65536)
    return err_set(e, -EINVAL, "blocksize %lld is out of range", (long long)at->blocksize);
  if (!n->op->kernels && n->since >= 11) /* DepthToSpace */
    return onnx_attr_enum(p, "mode", d2s_modes, 2, 0, &at->mode, e);
  return 0;
}

static int d2s_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const d2s_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int64_t bs = at->blocksize;
  int rc = onnx_fixed_size(x, e);
  if (rc) return rc;
  if (x->ndim != 4) return err_set(e, -EINVAL, "the input must be 4-D [N,C,H,W]");
  int64_t d[4] = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
  if (n->op->kernels) { /* SpaceToDepth */
    if (d[2] % bs || d[3] % bs)
      return err_set(e, -EINVAL, "H and W (%lld, %lld) must be multiples of blocksize %lld",
                     (long long)d[2], (long long)d[3], (long long)bs);
    d[1] *= bs * bs;
    d[2] /= bs;
    d[3] /= bs;
  } else {
    if (d[1] % (bs * bs))
      return err_set(e, -EINVAL, "C (%lld) must be a multiple of blocksize^2 (%lld)",
                     (long long)d[1], (long long)(bs * bs));
    d[1] /= bs * bs;
    d[2] *= bs;
    d[3] *= bs;
  }
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], 4, d);
  return 0;
}

static int d2s_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const d2s_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int64_t bs = at->blocksize, N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
  int64_t dims[6];
  int perm[6];
  if (n->op->kernels) { /* [N,C,H/b,b,W/b,b] -> [N,b,b,C,H/b,W/b] */
    int64_t d[6] = {N, C, H / bs, bs, W / bs, bs};
    int p[6] = {0, 3, 5, 1, 2, 4};
    memcpy(dims, d, sizeof d);
    memcpy(perm, p, sizeof p);
  } else if (at->mode == 0) { /* DCR: [N,b,b,C/b²,H,W] -> [N,C/b²,H,b,W,b] */
    int64_t d[6] = {N, bs, bs, C / (bs * bs), H, W};
    int p[6] = {0, 3, 4, 1, 5, 2};
    memcpy(dims, d, sizeof d);
    memcpy(perm, p, sizeof p);
  } else { /* CRD: [N,C/b²,b,b,H,W] -> [N,C/b²,H,b,W,b] */
    int64_t d[6] = {N, C / (bs * bs), bs, bs, H, W};
    int p[6] = {0, 1, 4, 2, 5, 3};
    memcpy(dims, d, sizeof d);
    memcpy(perm, p, sizeof p);
  }
  transpose_nd(out[0]->data, x->data, dtype_size(x->dtype), 6, dims, perm);
  return 0;
}

static const onnx_op depth_to_space = {.name = "DepthToSpace",
                                       .domain = "",
                                       .min_inputs = 1,
                                       .max_inputs = 1,
                                       .min_outputs = 1,
                                       .max_outputs = 1,
                                       .init = d2s_init,
                                       .infer = d2s_infer,
                                       .run = d2s_run};
static const int space_to_depth_tag = 1; /* kernels != NULL: SpaceToDepth */
static const onnx_op space_to_depth = {.name = "SpaceToDepth",
                                       .domain = "",
                                       .min_inputs = 1,
                                       .max_inputs = 1,
                                       .min_outputs = 1,
                                       .max_outputs = 1,
                                       .init = d2s_init,
                                       .infer = d2s_infer,
                                       .run = d2s_run,
                                       .kernels = &space_to_depth_tag};

/* ---- ReverseSequence ---------------------------------------------------- */

typedef struct revseq_attr {
  int64_t batch_axis, time_axis;
} revseq_attr;

static int revseq_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  revseq_attr *at = onnx_attr_new(n, a, sizeof *at, e);
  int rc;
  if (!at) return -ENOMEM;
  if ((rc = onnx_attr_int(p, "batch_axis", 1, &at->batch_axis, e)) ||
      (rc = onnx_attr_int(p, "time_axis", 0, &at->time_axis, e)))
    return rc;
  if (!((at->batch_axis == 0 && at->time_axis == 1) || (at->batch_axis == 1 && at->time_axis == 0)))
    return err_set(e, -EINVAL, "batch_axis and time_axis must be 0 and 1 in some order");
  return 0;
}

static int revseq_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const revseq_attr *at = n->attr;
  int rc = onnx_fixed_size(in[0], e);
  if (rc) return rc;
  if (in[0]->ndim < 2) return err_set(e, -EINVAL, "the input must have at least 2 dimensions");
  if (in[1]->dtype != INFERD_TYPE_INT64 || in[1]->ndim != 1 ||
      in[1]->dims[0] != in[0]->dims[at->batch_axis])
    return err_set(e, -EINVAL, "sequence_lens must be INT64 [%lld]",
                   (long long)in[0]->dims[at->batch_axis]);
  onnx_tensor_like(out[0], in[0]);
  return 0;
}

static int revseq_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const revseq_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  const int64_t *lens = in[1]->data;
  size_t es = dtype_size(x->dtype);
  size_t inner = (size_t)onnx_dims_product(x->dims, 2, x->ndim) * es;
  int64_t nb = x->dims[at->batch_axis], nt = x->dims[at->time_axis];
  /* the byte offset of (t, b) */
  size_t st = at->time_axis == 0 ? (size_t)nb * inner : inner;
  size_t sb = at->time_axis == 0 ? inner : (size_t)nt * inner;
  for (int64_t b = 0; b < nb; b++) {
    int64_t len = lens[b];
    if (len < 0 || len > nt)
      return err_set(e, -EINVAL, "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                     (long long)len, (long long)nt);
    for (int64_t t = 0; t < nt; t++) {
      int64_t s = t < len ? len - 1 - t : t;
      memcpy((char *)out[0]->data + b * sb + t * st, (const char *)x->data + b * sb + s * st,
             inner);
    }
  }
  return 0;
}

static const onnx_op reverse_sequence = {.name = "ReverseSequence",
                                         .domain = "",
                                         .min_inputs = 2,
                                         .max_inputs = 2,
                                         .min_outputs = 1,
                                         .max_outputs = 1,
                                         .init = revseq_init,
                                         .infer = revseq_infer,
                                         .run = revseq_run};

/* ---- Dropout ------------------------------------------------------------ */

/* In inference Dropout is the identity and its mask all true (ones of the
 * input's type before version 10). Training mode is random and refused:
 * is_test=0 before version 7, a training_mode input that is true with a
 * ratio other than 0 from version 12. A node with neither a mask output
 * nor a training_mode input is made a view (dropout_view), which the
 * planner removes like Identity; the registry lists the general form. */

static int dropout_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e);

/* Fails when the node is asked to drop at random (as far as its known
 * inputs tell). */
static int dropout_training(const onnx_node *n, const onnx_tensor *const *in, err *e) {
  if (n->n_in < 3 || !in[2] || !in[2]->data || !*(const uint8_t *)in[2]->data) return 0;
  bool has_ratio = n->n_in > 1 && in[1];
  if (has_ratio && !in[1]->data) return 0; /* decided when it runs */
  double ratio = has_ratio ? onnx_load_double(in[1], 0) : 0.5;
  if (ratio == 0) return 0;
  return err_set(e, -ENOTSUP,
                 "training-mode Dropout (ratio %g) drops at random; inference does not run it",
                 ratio);
}

static int dropout_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                         err *e) {
  int rc = onnx_fixed_size(in[0], e);
  if (rc) return rc;
  onnx_tensor_like(out[0], in[0]);
  if (n->n_out > 1 && out[1]) {
    onnx_tensor_like(out[1], in[0]);
    if (n->since >= 10) out[1]->dtype = INFERD_TYPE_BOOL;
  }
  if (n->n_in > 1 && in[1]) {
    inferd_dtype t = in[1]->dtype;
    if (in[1]->count != 1 ||
        !(onnx_dtype_is_float(t) || t == INFERD_TYPE_FP16 || t == INFERD_TYPE_BF16))
      return err_set(e, -EINVAL, "ratio must be a floating-point scalar");
  }
  if (n->n_in > 2 && in[2] && (in[2]->dtype != INFERD_TYPE_BOOL || in[2]->count != 1))
    return err_set(e, -EINVAL, "training_mode must be a BOOL scalar");
  return dropout_training(n, in, e); /* refused at load when the inputs are constants */
}

static int dropout_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                       err *e) {
  int rc = dropout_training(n, in, e);
  if (rc) return rc;
  view_run(n, in, out, e);
  if (n->n_out > 1 && out[1]) {
    const onnx_tensor *m = out[1];
    size_t es = dtype_size(m->dtype);
    char one[8];
    onnx_store_double(m->dtype, one, 0, 1.0);
    for (int64_t i = 0; i < m->count; i++)
      onnx_copy_elem((char *)m->data + (size_t)i * es, one, es);
  }
  return 0;
}

static const onnx_op dropout = {.name = "Dropout",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 3,
                                .min_outputs = 1,
                                .max_outputs = 2,
                                .init = dropout_init,
                                .infer = dropout_infer,
                                .run = dropout_run};
static const onnx_op dropout_view = {.name = "Dropout",
                                     .domain = "",
                                     .min_inputs = 1,
                                     .max_inputs = 3,
                                     .min_outputs = 1,
                                     .max_outputs = 2,
                                     .flags = ONNX_OP_ALIAS,
                                     .init = dropout_init,
                                     .infer = dropout_infer,
                                     .run = view_run};

static int dropout_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  if (n->since < 7) {
    bool is_test;
    int rc = onnx_attr_bool(p, "is_test", false, &is_test, e);
    if (rc) return rc;
    if (!is_test)
      return err_set(e, -ENOTSUP,
                     "Dropout-%d with is_test=0 drops at random (training); set is_test=1",
                     n->since);
  }
  if (n->since < 12 && p->n_input > 1)
    return err_set(e, -EINVAL, "Dropout-%d takes one input", n->since);
  bool mask = n->n_out > 1 && n->out[1] >= 0;
  bool training = p->n_input > 2 && *p->input[2];
  if (!mask && !training) n->op = &dropout_view;
  return 0;
}

/* ---- registry rows ------------------------------------------------------ */

/* One line per operator, its versions in order. */
/* clang-format off */
const onnx_op_row onnx_ops_tensor[] = {
    {&transpose, 1}, {&transpose, 13},
    {&squeeze, 1}, {&squeeze, 11}, {&squeeze, 13},
    {&unsqueeze, 1}, {&unsqueeze, 11}, {&unsqueeze, 13},
    {&concat, 1}, {&concat, 4}, {&concat, 11}, {&concat, 13},
    {&split, 1}, {&split, 2}, {&split, 11}, {&split, 13},
    {&slice, 1}, {&slice, 10}, {&slice, 11}, {&slice, 13},
    {&expand, 8}, {&expand, 13},
    {&tile, 1}, {&tile, 6}, {&tile, 13},
    {&pad, 1}, {&pad, 2}, {&pad, 11}, {&pad, 13},
    {&depth_to_space, 1}, {&depth_to_space, 11}, {&depth_to_space, 13},
    {&space_to_depth, 1}, {&space_to_depth, 13},
    {&reverse_sequence, 10},
    {&dropout, 1}, {&dropout, 6}, {&dropout, 7}, {&dropout, 10}, {&dropout, 12}, {&dropout, 13},
    {NULL, 0},
};
/* clang-format on */
