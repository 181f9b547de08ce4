/* backends/onnx/onnx_ops_pool.c: pooling (MaxPool, AveragePool,
 * GlobalAveragePool, GlobalMaxPool).
 *
 * MaxPool and AveragePool run on oneDNN's pooling primitive for FP32 with
 * 1 to 3 spatial dimensions, plain or channel-blocked (onnx_layout.c).
 * ceil_mode becomes extra end padding, which oneDNN's max and
 * exclude-padding average ignore as ONNX does. What oneDNN cannot express
 * runs on a reference loop over plain tensors: MaxPool's Indices output
 * (flat indices into X, row- or column-major per storage_order),
 * count_include_pad with ceil_mode (ONNX counts the declared padding but
 * not the ceil's), integer and FP64 tensors, more spatial dimensions. The
 * choice that decides the layout is made from attributes alone, at load.
 *
 * The global pools reduce each channel's plane with plain loops: one pass
 * over memory, contiguous in both layouts. Their [N,C,1,1] result is the
 * same bytes blocked or plain, so they always call it plain. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

#define MAX_SP (ONNX_MAX_DIMS - 2)

typedef struct pool_attr {
  bool max;
  onnx_auto_pad auto_pad;
  int n_kernel, n_strides, n_dil, n_pads;
  int64_t kernel[MAX_SP], strides[MAX_SP], dil[MAX_SP], pads[2 * MAX_SP];
  bool ceil, include_pad, col_major;
} pool_attr;

/* ---- attributes and geometry -------------------------------------------- */

static int pool_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  pool_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  at->max = strcmp(n->op_type, "MaxPool") == 0;
  const char *ap;
  int64_t order = 0;
  int rc;
  if ((rc = onnx_attr_ints(p, "kernel_shape", at->kernel, MAX_SP, &at->n_kernel, e)) ||
      (rc = onnx_attr_ints(p, "strides", at->strides, MAX_SP, &at->n_strides, e)) ||
      (rc = onnx_attr_ints(p, "dilations", at->dil, MAX_SP, &at->n_dil, e)) ||
      (rc = onnx_attr_ints(p, "pads", at->pads, 2 * MAX_SP, &at->n_pads, e)) ||
      (rc = onnx_attr_bool(p, "ceil_mode", false, &at->ceil, e)) ||
      (rc = onnx_attr_bool(p, "count_include_pad", false, &at->include_pad, e)) ||
      (rc = onnx_attr_int(p, "storage_order", 0, &order, e)) ||
      (rc = onnx_attr_string(p, "auto_pad", "NOTSET", a, &ap, e)))
    return rc;
  if (at->n_kernel < 1) return err_set(e, -EINVAL, "kernel_shape is required");
  if (order != 0 && order != 1)
    return err_set(e, -EINVAL, "storage_order %lld is not 0 or 1", (long long)order);
  at->col_major = order == 1;
  if ((rc = onnx_auto_pad_parse(ap, &at->auto_pad, e))) return rc;
  if ((at->n_strides >= 0 && at->n_strides != at->n_kernel) ||
      (at->n_dil >= 0 && at->n_dil != at->n_kernel) ||
      (at->n_pads >= 0 && at->n_pads != 2 * at->n_kernel))
    return err_set(e, -EINVAL, "strides, dilations and pads do not match kernel_shape");
  for (int i = 0; i < at->n_kernel; i++)
    if (at->kernel[i] < 1 || (at->n_strides >= 0 && at->strides[i] < 1) ||
        (at->n_dil >= 0 && at->dil[i] < 1))
      return err_set(e, -EINVAL, "kernel_shape, strides and dilations must be positive");
  for (int i = 0; i < at->n_pads; i++)
    if (at->pads[i] < 0) return err_set(e, -EINVAL, "pads must not be negative");
  n->attr = at;
  return 0;
}

typedef struct pgeom {
  int nsp;
  int64_t N, C, S, OS; /* batch, channels, input and output plane sizes */
  int64_t in[MAX_SP], k[MAX_SP], s[MAX_SP], d[MAX_SP], out[MAX_SP];
  int64_t pb[MAX_SP], pe[MAX_SP]; /* declared padding */
  int64_t pe_ceil[MAX_SP];        /* end padding the output size implies (>= pe) */
} pgeom;

static int pool_geometry(const pool_attr *at, const onnx_tensor *x, pgeom *g, err *e) {
  char sx[96];
  memset(g, 0, sizeof *g);
  g->nsp = x->ndim - 2;
  if (g->nsp != at->n_kernel)
    return err_set(e, -EINVAL, "X %s does not have the %d spatial dimensions of kernel_shape",
                   onnx_shape_str(sx, x), at->n_kernel);
  g->N = x->dims[0];
  g->C = x->dims[1];
  g->S = g->OS = 1;
  for (int i = 0; i < g->nsp; i++) {
    g->in[i] = x->dims[2 + i];
    g->k[i] = at->kernel[i];
    g->s[i] = at->n_strides >= 0 ? at->strides[i] : 1;
    g->d[i] = at->n_dil >= 0 ? at->dil[i] : 1;
    int64_t ext = (g->k[i] - 1) * g->d[i] + 1;
    int64_t pb = at->n_pads >= 0 ? at->pads[i] : 0, pe = at->n_pads >= 0 ? at->pads[g->nsp + i] : 0;
    int64_t span = onnx_window_pads(at->auto_pad, g->in[i], g->s[i], ext, &pb, &pe);
    if (span < 0)
      return err_set(e, -EINVAL, "the kernel (reach %lld) is larger than padded X %s",
                     (long long)ext, onnx_shape_str(sx, x));
    g->out[i] = (at->ceil ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]) + 1;
    g->pb[i] = pb;
    g->pe[i] = pe;
    g->pe_ceil[i] = (g->out[i] - 1) * g->s[i] + ext - g->in[i] - pb;
    g->S *= g->in[i];
    g->OS *= g->out[i];
  }
  return 0;
}

static bool pool_type_ok(const pool_attr *at, inferd_dtype t) {
  if (t == INFERD_TYPE_FP32 || t == INFERD_TYPE_FP64) return true;
  return at->max && (t == INFERD_TYPE_INT8 || t == INFERD_TYPE_UINT8);
}

static int pool_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const pool_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  if (!pool_type_ok(at, x->dtype))
    return err_set(e, -ENOTSUP, "X of type %s is not supported", dtype_name(x->dtype));
  pgeom g;
  int rc = pool_geometry(at, x, &g, e);
  if (rc) return rc;
  int64_t dims[ONNX_MAX_DIMS] = {g.N, g.C};
  memcpy(dims + 2, g.out, (size_t)g.nsp * sizeof dims[0]);
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], x->ndim, dims);
  if (n->n_out > 1 && out[1]) {
    out[1]->dtype = INFERD_TYPE_INT64;
    onnx_tensor_set_shape(out[1], x->ndim, dims);
  }
  return 0;
}

/* ---- the reference loop ------------------------------------------------- */

/* Pools one [S] plane into [OS] (and flat indices, base added). A window
 * with nothing inside gives the type's lowest value (max) or 0 (average). */
#define POOL_PLANE(T, LOWEST)                                                                      \
  static void pool_plane_##T(const pool_attr *at, const pgeom *g, const T *x, T *y, int64_t *idx,  \
                             int64_t base) {                                                       \
    int nsp = g->nsp;                                                                              \
    int64_t o[MAX_SP] = {0};                                                                       \
    for (int64_t oi = 0; oi < g->OS; oi++) {                                                       \
      int64_t start[MAX_SP], kk[MAX_SP] = {0}, kn = 1;                                             \
      int64_t cnt = 1; /* what count_include_pad counts */                                         \
      for (int i = 0; i < nsp; i++) {                                                              \
        start[i] = o[i] * g->s[i] - g->pb[i];                                                      \
        kn *= g->k[i];                                                                             \
        int64_t lo = start[i], hi = start[i] + (g->k[i] - 1) * g->d[i] + 1;                        \
        if (hi > g->in[i] + g->pe[i]) hi = g->in[i] + g->pe[i];                                    \
        cnt *= hi > lo ? hi - lo : 0;                                                              \
      }                                                                                            \
      double acc = 0;                                                                              \
      T best = LOWEST;                                                                             \
      int64_t best_i = -1, inside = 0;                                                             \
      for (int64_t ki = 0; ki < kn; ki++) {                                                        \
        int64_t off = 0, col = 0, colstride = 1;                                                   \
        bool ok = true;                                                                            \
        for (int i = 0; i < nsp; i++) {                                                            \
          int64_t pos = start[i] + kk[i] * g->d[i];                                                \
          ok = ok && pos >= 0 && pos < g->in[i];                                                   \
          off = off * g->in[i] + pos;                                                              \
        }                                                                                          \
        for (int i = 0; ok && i < nsp; i++) {                                                      \
          col += (start[i] + kk[i] * g->d[i]) * colstride;                                         \
          colstride *= g->in[i];                                                                   \
        }                                                                                          \
        if (ok) {                                                                                  \
          T v = x[off];                                                                            \
          inside++;                                                                                \
          acc += (double)v;                                                                        \
          if (best_i < 0 || v > best) {                                                            \
            best = v;                                                                              \
            best_i = at->col_major ? col : off;                                                    \
          }                                                                                        \
        }                                                                                          \
        for (int i = nsp - 1; i >= 0; i--) {                                                       \
          if (++kk[i] < g->k[i]) break;                                                            \
          kk[i] = 0;                                                                               \
        }                                                                                          \
      }                                                                                            \
      if (at->max) {                                                                               \
        y[oi] = best;                                                                              \
        if (idx) idx[oi] = base + (best_i < 0 ? 0 : best_i);                                       \
      } else {                                                                                     \
        int64_t div = at->include_pad ? cnt : inside;                                              \
        y[oi] = div ? (T)(acc / (double)div) : (T)0;                                               \
      }                                                                                            \
      for (int i = nsp - 1; i >= 0; i--) {                                                         \
        if (++o[i] < g->out[i]) break;                                                             \
        o[i] = 0;                                                                                  \
      }                                                                                            \
    }                                                                                              \
  }
POOL_PLANE(float, -FLT_MAX)
POOL_PLANE(double, -DBL_MAX)
POOL_PLANE(int8_t, INT8_MIN)
POOL_PLANE(uint8_t, 0)

static void pool_ref(const pool_attr *at, const pgeom *g, const onnx_tensor *x, onnx_tensor *y,
                     onnx_tensor *idx) {
  size_t es = dtype_size(x->dtype);
  for (int64_t p = 0; p < g->N * g->C; p++) {
    const char *xs = (const char *)x->data + (size_t)(p * g->S) * es;
    char *ys = (char *)y->data + (size_t)(p * g->OS) * es;
    int64_t *is = idx ? (int64_t *)idx->data + p * g->OS : NULL;
    switch (x->dtype) {
    case INFERD_TYPE_FP32:
      pool_plane_float(at, g, (const float *)xs, (float *)ys, is, p * g->S);
      break;
    case INFERD_TYPE_FP64:
      pool_plane_double(at, g, (const double *)xs, (double *)ys, is, p * g->S);
      break;
    case INFERD_TYPE_INT8:
      pool_plane_int8_t(at, g, (const int8_t *)xs, (int8_t *)ys, is, p * g->S);
      break;
    default: pool_plane_uint8_t(at, g, (const uint8_t *)xs, (uint8_t *)ys, is, p * g->S); break;
    }
  }
}

/* ---- oneDNN ------------------------------------------------------------- */

/* Whether attributes alone allow oneDNN: not the Indices output, not
 * count_include_pad with ceil_mode, at most 3 spatial dimensions. */
static bool dnnl_ok(const onnx_node *n) {
  const pool_attr *at = n->attr;
  bool indices = n->n_out > 1 && n->out[1] >= 0;
  return !indices && !(at->include_pad && at->ceil) && at->n_kernel <= 3;
}

static int pool_plan(const onnx_node *n, const onnx_tensor *const *in,
                     const onnx_tensor *const *out, onnx_plan_req *req, err *e) {
  const pool_attr *at = n->attr;
  bool blocked = n->blocked & ONNX_BLOCKED_IN(0);
  if (in[0]->dtype != INFERD_TYPE_FP32 || !dnnl_ok(n) || out[0]->count == 0) {
    if (blocked) return err_set(e, -EINVAL, "a blocked input needs oneDNN's pooling");
    return 0; /* the reference loop: no state */
  }
  pgeom g;
  int rc = pool_geometry(at, in[0], &g, e);
  if (rc) return rc;
  dnnl_memory_desc_t src, dst;
  dnnl_dims_t k, s, d, pl, pr;
  for (int i = 0; i < g.nsp; i++) {
    k[i] = g.k[i];
    s[i] = g.s[i];
    d[i] = g.d[i] - 1;
    pl[i] = g.pb[i];
    pr[i] = g.pe_ceil[i];
  }
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  if ((rc = onnx_dnnl_md(&src, in[0]->ndim, in[0]->dims, dnnl_f32, blocked, e)) ||
      (rc = onnx_dnnl_md(&dst, out[0]->ndim, out[0]->dims, dnnl_f32, blocked, e)) ||
      (rc = onnx_dnnl_attr(&attr, NULL, 0, 0, e)))
    return rc;
  dnnl_alg_kind_t alg = at->max           ? dnnl_pooling_max
                        : at->include_pad ? dnnl_pooling_avg_include_padding
                                          : dnnl_pooling_avg_exclude_padding;
  dnnl_pooling_v2_desc_t pdsc;
  dnnl_status_t stt = dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &src,
                                                        &dst, s, k, d, pl, pr);
  if (stt == dnnl_success)
    stt = dnnl_primitive_desc_create(&pd, &pdsc, attr, onnx_dnnl_engine(), NULL);
  dnnl_primitive_attr_destroy(attr);
  if (stt != dnnl_success) {
    if (blocked) return onnx_dnnl_check(stt, "pooling", e);
    return 0; /* padding oneDNN refuses: the reference loop */
  }
  rc = onnx_dnnl_plan_prim(req, pd, (const int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, e);
  dnnl_primitive_desc_destroy(pd);
  return rc;
}

static int pool_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                     onnx_tensor *const *out, err *e) {
  onnx_dnnl_prim *prim = ctx->state;
  if (prim) {
    void *h[2] = {in[0]->data, out[0]->data};
    return onnx_dnnl_prim_exec(prim, ctx->stream, h, ctx->scratch, e);
  }
  pgeom g;
  int rc = pool_geometry(n->attr, in[0], &g, e);
  if (rc) return rc;
  pool_ref(n->attr, &g, in[0], out[0], n->n_out > 1 ? out[1] : NULL);
  return 0;
}

static int pool_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  return onnx_run_once(n, in, out, e);
}

/* Blocked in, blocked out, when the input comes blocked and oneDNN runs
 * it: pooling the blocked tensor and reordering the smaller result (if a
 * reader needs it plain) beats reordering first. */
static unsigned pool_layouts(const onnx_node *n, const onnx_tensor *const *in, unsigned avail) {
  const pool_attr *at = n->attr;
  if (!(avail & ONNX_BLOCKED_IN(0)) || at->n_kernel != 2 || !dnnl_ok(n)) return 0;
  return ONNX_BLOCKED_IN(0) | ONNX_BLOCKED_OUT(0);
}

/* ---- global pools ------------------------------------------------------- */

static int global_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  char s[96];
  if (in[0]->dtype != INFERD_TYPE_FP32 && in[0]->dtype != INFERD_TYPE_FP64)
    return err_set(e, -ENOTSUP, "X of type %s is not supported", dtype_name(in[0]->dtype));
  if (in[0]->ndim < 3)
    return err_set(e, -EINVAL, "X %s needs spatial dimensions", onnx_shape_str(s, in[0]));
  int64_t dims[ONNX_MAX_DIMS];
  for (int i = 0; i < in[0]->ndim; i++)
    dims[i] = i < 2 ? in[0]->dims[i] : 1;
  out[0]->dtype = in[0]->dtype;
  onnx_tensor_set_shape(out[0], in[0]->ndim, dims);
  return 0;
}

ONNX_VECTORIZE static void gap_blocked(const float *restrict x, float *restrict y, int64_t N,
                                       int64_t C, int64_t S, int B, bool max) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t cb = 0; cb < C / B; cb++) {
      const float *p = x + (n * C + cb * B) * S;
      float acc[16];
      for (int j = 0; j < B; j++)
        acc[j] = max ? -INFINITY : 0;
      for (int64_t s = 0; s < S; s++)
        for (int j = 0; j < B; j++)
          acc[j] = max ? fmaxf(acc[j], p[s * B + j]) : acc[j] + p[s * B + j];
      for (int j = 0; j < B; j++)
        y[n * C + cb * B + j] = max ? acc[j] : acc[j] / (float)S;
    }
}

#define GLOBAL_PLANES(T)                                                                           \
  ONNX_VECTORIZE static void global_##T(const T *restrict x, T *restrict y, int64_t P, int64_t S,  \
                                        bool max) {                                                \
    for (int64_t p = 0; p < P; p++) {                                                              \
      const T *q = x + p * S;                                                                      \
      T acc = max ? -INFINITY : 0;                                                                 \
      if (max)                                                                                     \
        for (int64_t s = 0; s < S; s++)                                                            \
          acc = q[s] > acc ? q[s] : acc;                                                           \
      else                                                                                         \
        for (int64_t s = 0; s < S; s++)                                                            \
          acc += q[s];                                                                             \
      y[p] = max ? acc : acc / (T)S;                                                               \
    }                                                                                              \
  }
GLOBAL_PLANES(float)
GLOBAL_PLANES(double)

static int global_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *x = in[0];
  bool max = strcmp(n->op->name, "GlobalMaxPool") == 0;
  int64_t N = x->dims[0], C = x->dims[1], S = onnx_dims_product(x->dims, 2, x->ndim);
  if (S == 0 && !max) return err_set(e, -EINVAL, "X has no elements to average");
  if (n->blocked & ONNX_BLOCKED_IN(0))
    gap_blocked(x->data, out[0]->data, N, C, S, onnx_block_size(), max);
  else if (x->dtype == INFERD_TYPE_FP32)
    global_float(x->data, out[0]->data, N * C, S, max);
  else
    global_double(x->data, out[0]->data, N * C, S, max);
  return 0;
}

/* Takes a blocked input as it comes; writes plain (the same bytes). */
static unsigned global_layouts(const onnx_node *n, const onnx_tensor *const *in, unsigned avail) {
  return avail & ONNX_BLOCKED_IN(0);
}

/* ---- tables ------------------------------------------------------------- */

static const onnx_op maxpool = {.name = "MaxPool",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 2,
                                .init = pool_init,
                                .infer = pool_infer,
                                .run = pool_run,
                                .plan = pool_plan,
                                .plan_free = onnx_dnnl_plan_prim_free,
                                .run_step = pool_step,
                                .layouts = pool_layouts};

static const onnx_op avgpool = {.name = "AveragePool",
                                .domain = "",
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .init = pool_init,
                                .infer = pool_infer,
                                .run = pool_run,
                                .plan = pool_plan,
                                .plan_free = onnx_dnnl_plan_prim_free,
                                .run_step = pool_step,
                                .layouts = pool_layouts};

static const onnx_op gap = {.name = "GlobalAveragePool",
                            .domain = "",
                            .min_inputs = 1,
                            .max_inputs = 1,
                            .min_outputs = 1,
                            .max_outputs = 1,
                            .infer = global_infer,
                            .run = global_run,
                            .layouts = global_layouts};

static const onnx_op gmp = {.name = "GlobalMaxPool",
                            .domain = "",
                            .min_inputs = 1,
                            .max_inputs = 1,
                            .min_outputs = 1,
                            .max_outputs = 1,
                            .infer = global_infer,
                            .run = global_run,
                            .layouts = global_layouts};

const onnx_op_row onnx_ops_pool[] = {
    {&maxpool, 1}, {&maxpool, 8},  {&maxpool, 10}, {&maxpool, 11}, {&maxpool, 12}, {&avgpool, 1},
    {&avgpool, 7}, {&avgpool, 10}, {&avgpool, 11}, {&gap, 1},      {&gmp, 1},      {NULL, 0},
};
