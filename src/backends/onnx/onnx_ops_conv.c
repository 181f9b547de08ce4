/* backends/onnx/onnx_ops_conv.c: convolutions (Conv, ConvTranspose) on
 * oneDNN's convolution and deconvolution primitives, 1-D to 3-D, FP32.
 *
 * Geometry follows the ONNX specification: explicit pads or auto_pad
 * (SAME_UPPER, SAME_LOWER, VALID), strides, dilations, groups (depthwise
 * included), and for ConvTranspose output_padding and output_shape. An
 * output_padding or an output_shape beyond what the kernel reaches becomes
 * a negative end padding, which oneDNN takes as extra output rows that
 * receive only the bias.
 *
 * Constant weights are reordered once at load (prepare) into the layout
 * the primitive wants for the node's layouts (onnx_layout.c), and the
 * ONNX-layout originals are dropped. A plan then makes the primitive for
 * its shapes (plan): if that primitive wants the weights in yet another
 * layout, the plan keeps its own reordered copy. Weights that are not
 * constant (a graph input) are reordered into scratch memory at every run.
 *
 * Fused post-operations (onnx_fuse.c) become the primitive's: activations
 * as eltwise post-ops, a residual Add as a sum post-op (the residual is
 * first placed in the output, in place when the planner could make it so).
 * A residual that broadcasts into the result (it is smaller) cannot be a
 * sum post-op; it then goes through a binary primitive after the
 * convolution, which applies the activations that followed the Add.
 *
 * 3x3 stride-1 ungrouped convolutions on blocked tensors run on this
 * backend's own Winograd kernel (onnx_conv_wino.c) where the CPU has AVX2
 * but not AVX-512: there oneDNN 2.6 has only direct kernels, which are
 * about ONNX Runtime's speed; Winograd F(2x2, 3x3) does 2.25 times fewer
 * multiplications. */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_conv_wino.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

#define MAX_SP 3 /* spatial dimensions oneDNN convolves */

typedef struct conv_attr {
  bool transpose;
  onnx_auto_pad auto_pad;
  int n_kernel, n_strides, n_dil, n_pads, n_out_pad, n_out_shape; /* -1: absent */
  int64_t kernel[MAX_SP], strides[MAX_SP], dil[MAX_SP], pads[2 * MAX_SP];
  int64_t out_pad[MAX_SP], out_shape[MAX_SP];
  int64_t group;
  /* What prepare made of constant weights: w in w_md's layout, and a copy
   * of the bias; NULL when the weights are read from the input. */
  void *w;
  dnnl_memory_desc_t w_md;
  float *bias;
  float *wino; /* or the weights transformed for onnx_wino_run */
} conv_attr;

/* ---- attributes and geometry -------------------------------------------- */

static int conv_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  conv_attr *at = arena_calloc(a, 1, sizeof *at);
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  at->transpose = strcmp(n->op_type, "ConvTranspose") == 0;
  const char *ap;
  int rc;
  if ((rc = onnx_attr_ints(p, "kernel_shape", at->kernel, MAX_SP, &at->n_kernel, e)) ||
      (rc = onnx_attr_ints(p, "strides", at->strides, MAX_SP, &at->n_strides, e)) ||
      (rc = onnx_attr_ints(p, "dilations", at->dil, MAX_SP, &at->n_dil, e)) ||
      (rc = onnx_attr_ints(p, "pads", at->pads, 2 * MAX_SP, &at->n_pads, e)) ||
      (rc = onnx_attr_int(p, "group", 1, &at->group, e)) ||
      (rc = onnx_attr_string(p, "auto_pad", "NOTSET", a, &ap, e)))
    return rc;
  if (at->transpose &&
      ((rc = onnx_attr_ints(p, "output_padding", at->out_pad, MAX_SP, &at->n_out_pad, e)) ||
       (rc = onnx_attr_ints(p, "output_shape", at->out_shape, MAX_SP, &at->n_out_shape, e))))
    return rc;
  if (!at->transpose) at->n_out_pad = at->n_out_shape = -1;
  if ((rc = onnx_auto_pad_parse(ap, &at->auto_pad, e))) return rc;
  if (at->group < 1)
    return err_set(e, -EINVAL, "group %lld must be positive", (long long)at->group);
  for (int i = 0; i < at->n_strides; i++)
    if (at->strides[i] < 1) return err_set(e, -EINVAL, "strides must be positive");
  for (int i = 0; i < at->n_dil; i++)
    if (at->dil[i] < 1) return err_set(e, -EINVAL, "dilations must be positive");
  for (int i = 0; i < at->n_pads; i++)
    if (at->pads[i] < 0) return err_set(e, -EINVAL, "pads must not be negative");
  for (int i = 0; i < at->n_out_pad; i++)
    if (at->out_pad[i] < 0) return err_set(e, -EINVAL, "output_padding must not be negative");
  n->attr = at;
  return 0;
}

/* The shape of one convolution: what infer computes and plans build on. */
typedef struct geom {
  int nsp;         /* spatial dimensions */
  int64_t N, C, M; /* batch, input and output channels */
  int64_t in[MAX_SP], k[MAX_SP], s[MAX_SP], d[MAX_SP], out[MAX_SP];
  int64_t pb[MAX_SP], pe[MAX_SP]; /* pads; pe may be negative for ConvTranspose */
} geom;

/* Checks the operands and works out the output's spatial size and the
 * padding at each end. x and w need their dims only. */
static int geometry(const conv_attr *at, const onnx_tensor *x, const onnx_tensor *w, geom *g,
                    err *e) {
  char sx[96], sw[96];
  memset(g, 0, sizeof *g);
  if (x->ndim < 3 || x->ndim > 2 + MAX_SP)
    return err_set(e, -ENOTSUP, "X %s: 1-D to 3-D convolutions are supported",
                   onnx_shape_str(sx, x));
  if (w->ndim != x->ndim)
    return err_set(e, -EINVAL, "W %s and X %s differ in rank", onnx_shape_str(sw, w),
                   onnx_shape_str(sx, x));
  g->nsp = x->ndim - 2;
  g->N = x->dims[0];
  g->C = x->dims[1];
  int64_t G = at->group;
  if (!at->transpose) {
    g->M = w->dims[0];
    if (w->dims[1] * G != g->C || g->M % G != 0)
      return err_set(e, -EINVAL, "X %s and W %s do not fit group %lld", onnx_shape_str(sx, x),
                     onnx_shape_str(sw, w), (long long)G);
  } else {
    g->M = w->dims[1] * G;
    if (w->dims[0] != g->C || g->C % G != 0)
      return err_set(e, -EINVAL, "X %s and W %s do not fit group %lld", onnx_shape_str(sx, x),
                     onnx_shape_str(sw, w), (long long)G);
  }
  int nsp = g->nsp;
  if ((at->n_kernel >= 0 && at->n_kernel != nsp) || (at->n_strides >= 0 && at->n_strides != nsp) ||
      (at->n_dil >= 0 && at->n_dil != nsp) || (at->n_pads >= 0 && at->n_pads != 2 * nsp) ||
      (at->n_out_pad >= 0 && at->n_out_pad != nsp) ||
      (at->n_out_shape >= 0 && at->n_out_shape != nsp && at->n_out_shape != nsp + 2))
    return err_set(e, -EINVAL, "attributes do not match the %d spatial dimensions of X %s", nsp,
                   onnx_shape_str(sx, x));
  for (int i = 0; i < nsp; i++) {
    g->in[i] = x->dims[2 + i];
    g->k[i] = w->dims[2 + i];
    if (at->n_kernel >= 0 && at->kernel[i] != g->k[i])
      return err_set(e, -EINVAL, "kernel_shape does not match W %s", onnx_shape_str(sw, w));
    g->s[i] = at->n_strides >= 0 ? at->strides[i] : 1;
    g->d[i] = at->n_dil >= 0 ? at->dil[i] : 1;
    int64_t ext = (g->k[i] - 1) * g->d[i] + 1; /* the kernel's reach */
    int64_t pb = at->n_pads >= 0 ? at->pads[i] : 0, pe = at->n_pads >= 0 ? at->pads[nsp + i] : 0;
    if (!at->transpose) {
      int64_t span = onnx_window_pads(at->auto_pad, g->in[i], g->s[i], ext, &pb, &pe);
      if (span < 0)
        return err_set(e, -EINVAL, "the kernel (reach %lld) is larger than padded X %s",
                       (long long)ext, onnx_shape_str(sx, x));
      g->out[i] = span / g->s[i] + 1;
    } else {
      int64_t op = at->n_out_pad >= 0 ? at->out_pad[i] : 0;
      int64_t full = g->s[i] * (g->in[i] - 1) + op + ext;
      if (at->n_out_shape >= 0 || at->auto_pad == ONNX_PAD_SAME_UPPER ||
          at->auto_pad == ONNX_PAD_SAME_LOWER) {
        int64_t out =
            at->n_out_shape >= 0 ? at->out_shape[at->n_out_shape - nsp + i] : g->in[i] * g->s[i];
        int64_t total = full - out;
        /* ONNX's rule: SAME_UPPER puts the odd padding at the end,
         * SAME_LOWER at the start; with output_shape alone, as ONNX
         * Runtime, at the end. An output larger than the kernel reaches
         * (total < 0) gets its extra rows at the end. */
        if (at->auto_pad == ONNX_PAD_SAME_LOWER) {
          pe = total / 2;
          pb = total - pe;
        } else {
          pb = total / 2;
          pe = total - pb;
        }
        if (pb < 0) {
          pe += pb;
          pb = 0;
        }
      } else if (at->auto_pad == ONNX_PAD_VALID) {
        pb = pe = 0;
      }
      g->out[i] = full - pb - pe;
      if (g->out[i] < 1)
        return err_set(e, -EINVAL, "the output would have size %lld in dimension %d",
                       (long long)g->out[i], i + 2);
      pe -= op; /* output_padding: rows past the kernel's reach (see above) */
    }
    g->pb[i] = pb;
    g->pe[i] = pe;
  }
  return 0;
}

/* The index into node->in of the residual, or -1, and where the
 * post-operations split around it. */
static int sum_input(const onnx_node *n, int *sum_at) {
  *sum_at = n->n_post;
  for (int i = 0; i < n->n_post; i++)
    if (n->post[i].kind == ONNX_POST_SUM) {
      *sum_at = i;
      return n->post[i].input;
    }
  return -1;
}

static int conv_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const conv_attr *at = n->attr;
  const onnx_tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
  char s[96];
  if (x->dtype != INFERD_TYPE_FP32 || w->dtype != INFERD_TYPE_FP32)
    return err_set(e, -ENOTSUP, "X is %s and W %s; only FP32 is supported", dtype_name(x->dtype),
                   dtype_name(w->dtype));
  geom g;
  int rc = geometry(at, x, w, &g, e);
  if (rc) return rc;
  if (b && (b->dtype != INFERD_TYPE_FP32 || b->ndim != 1 || b->dims[0] != g.M))
    return err_set(e, -EINVAL, "B %s must be [%lld] FP32", onnx_shape_str(s, b), (long long)g.M);
  int64_t dims[2 + MAX_SP] = {g.N, g.M};
  memcpy(dims + 2, g.out, (size_t)g.nsp * sizeof dims[0]);
  out[0]->dtype = INFERD_TYPE_FP32;
  onnx_tensor_set_shape(out[0], g.nsp + 2, dims);
  int at_sum, k = sum_input(n, &at_sum);
  if (k >= 0) { /* the residual must fit in the result */
    onnx_tensor bc;
    if (in[k]->dtype != INFERD_TYPE_FP32 || onnx_broadcast_shape(out[0], in[k], &bc, e) ||
        bc.ndim != out[0]->ndim || memcmp(bc.dims, out[0]->dims, sizeof(int64_t) * bc.ndim) != 0) {
      char s2[96];
      return err_set(e, -EINVAL, "the added %s %s does not broadcast to the result %s",
                     dtype_name(in[k]->dtype), onnx_shape_str(s, in[k]),
                     onnx_shape_str(s2, out[0]));
    }
  }
  return 0;
}

/* ---- oneDNN descriptors ------------------------------------------------- */

/* The weights as the ONNX tensor lays them out, in oneDNN's logical order:
 * (O, I, k...) or (G, O/G, I/G, k...). Conv's W is [M, C/G, k...]: that
 * order exactly. ConvTranspose's W is [C, M/G, k...]: input channels first,
 * described with strides. */
static int weights_md_onnx(const conv_attr *at, const geom *g, dnnl_memory_desc_t *md, err *e) {
  int64_t G = at->group, O = g->M / G, I = g->C / G, K = 1;
  for (int i = 0; i < g->nsp; i++)
    K *= g->k[i];
  dnnl_dims_t dims, strides;
  int nd = 0, ks = 0;
  if (G > 1) dims[nd++] = G;
  dims[nd++] = O;
  dims[nd++] = I;
  ks = nd;
  for (int i = 0; i < g->nsp; i++)
    dims[nd++] = g->k[i];
  int64_t st = 1;
  for (int i = nd - 1; i >= ks; i--) {
    strides[i] = st;
    st *= dims[i];
  }
  if (!at->transpose) { /* O, I */
    strides[ks - 1] = K;
    strides[ks - 2] = I * K;
  } else { /* I, O */
    strides[ks - 2] = K;
    strides[ks - 1] = O * K;
  }
  if (G > 1) strides[0] = O * I * K;
  return onnx_dnnl_check(dnnl_memory_desc_init_by_strides(md, nd, dims, dnnl_f32, strides),
                         "weights descriptor", e);
}

/* The same logical weights with format "any", for the primitive to choose. */
static int weights_md_any(const conv_attr *at, const geom *g, dnnl_memory_desc_t *md, err *e) {
  int64_t G = at->group;
  dnnl_dims_t dims;
  int nd = 0;
  if (G > 1) dims[nd++] = G;
  dims[nd++] = g->M / G;
  dims[nd++] = g->C / G;
  for (int i = 0; i < g->nsp; i++)
    dims[nd++] = g->k[i];
  return onnx_dnnl_check(dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, dnnl_format_tag_any),
                         "weights descriptor", e);
}

/* A primitive descriptor for the convolution g with post[from..to) fused,
 * weights as wmd (NULL: "any"), src and dst blocked as the node says. */
static int make_pd(const onnx_node *n, const geom *g, const dnnl_memory_desc_t *wmd, bool bias,
                   int from, int to, dnnl_primitive_desc_t *pd, err *e) {
  const conv_attr *at = n->attr;
  dnnl_memory_desc_t src, dst, w, b;
  int64_t sd[2 + MAX_SP] = {g->N, g->C}, dd[2 + MAX_SP] = {g->N, g->M};
  memcpy(sd + 2, g->in, (size_t)g->nsp * sizeof sd[0]);
  memcpy(dd + 2, g->out, (size_t)g->nsp * sizeof dd[0]);
  dnnl_dims_t strides, dil, pl, pr;
  for (int i = 0; i < g->nsp; i++) {
    strides[i] = g->s[i];
    dil[i] = g->d[i] - 1; /* oneDNN counts the gaps */
    pl[i] = g->pb[i];
    pr[i] = g->pe[i];
  }
  dnnl_primitive_attr_t attr = NULL;
  int rc = onnx_dnnl_md(&src, g->nsp + 2, sd, dnnl_f32, n->blocked & ONNX_BLOCKED_IN(0), e);
  if (!rc) rc = onnx_dnnl_md(&dst, g->nsp + 2, dd, dnnl_f32, n->blocked & ONNX_BLOCKED_OUT(0), e);
  if (!rc) {
    if (wmd)
      w = *wmd;
    else
      rc = weights_md_any(at, g, &w, e);
  }
  if (!rc && bias) rc = onnx_dnnl_md(&b, 1, &g->M, dnnl_f32, false, e);
  if (!rc) rc = onnx_dnnl_attr(&attr, n->post, from, to, e);
  if (rc) return rc;
  dnnl_status_t st;
  if (!at->transpose) {
    dnnl_convolution_desc_t cd;
    st = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                    dnnl_convolution_direct, &src, &w,
                                                    bias ? &b : NULL, &dst, strides, dil, pl, pr);
    if (st == dnnl_success)
      st = dnnl_primitive_desc_create(pd, &cd, attr, onnx_dnnl_engine(), NULL);
  } else {
    dnnl_deconvolution_desc_t dd2;
    st = dnnl_dilated_deconvolution_forward_desc_init(&dd2, dnnl_forward_inference,
                                                      dnnl_deconvolution_direct, &src, &w,
                                                      bias ? &b : NULL, &dst, strides, dil, pl, pr);
    if (st == dnnl_success)
      st = dnnl_primitive_desc_create(pd, &dd2, attr, onnx_dnnl_engine(), NULL);
  }
  dnnl_primitive_attr_destroy(attr);
  return onnx_dnnl_check(st, at->transpose ? "deconvolution" : "convolution", e);
}

/* ---- load: weights packed once ------------------------------------------ */

/* A stand-in X for choosing the weights' layout when X's own shape is not
 * declared: batch 1, spatial size large enough for the kernel. The layout
 * oneDNN picks depends on the channels, kernel and layouts, not on these. */
static void stand_in(const onnx_tensor *x, const onnx_tensor *w, const conv_attr *at,
                     onnx_tensor *out) {
  memset(out, 0, sizeof *out);
  out->dtype = INFERD_TYPE_FP32;
  int64_t dims[2 + MAX_SP];
  dims[0] = 1;
  dims[1] = at->transpose ? w->dims[0] : w->dims[1] * at->group;
  for (int i = 2; i < w->ndim; i++) {
    int64_t k = w->dims[i], d = at->n_dil >= 0 ? at->dil[i - 2] : 1;
    int64_t want = (k - 1) * d + 1 + 16;
    dims[i] = x->ndim == w->ndim && x->dims[i] > 0 ? x->dims[i] : want;
  }
  onnx_tensor_set_shape(out, w->ndim, dims);
}

/* Whether the node runs on the Winograd kernel: 3x3, stride 1, no
 * dilation, one group, blocked in and out (so 8-channel blocks), constant
 * weights, enough input channels for its products to pay (below 32,
 * oneDNN's direct kernel is as fast), and not too many weights: the
 * transformed ones take 16/9 the memory, and for the largest layers (a
 * ResNet's 512 x 512) the gain is smallest while the extra memory is
 * most (37 of ResNet-18's 47 MB would become 65 MB). */
#define WINO_MAX_WEIGHTS (256 * 256)

static bool wino_fits(const onnx_node *n, const geom *g) {
  const conv_attr *at = n->attr;
  if (at->transpose || at->group != 1 || g->nsp != 2 || g->C < 32) return false;
  if (g->C * g->M > WINO_MAX_WEIGHTS) return false;
  if ((n->blocked & (ONNX_BLOCKED_IN(0) | ONNX_BLOCKED_OUT(0))) !=
      (ONNX_BLOCKED_IN(0) | ONNX_BLOCKED_OUT(0)))
    return false;
  for (int i = 0; i < 2; i++)
    if (g->k[i] != 3 || g->s[i] != 1 || g->d[i] != 1) return false;
  if (getenv("INFERD_ONNX_NO_WINOGRAD")) return false;
  return onnx_wino_ok(g->C, g->M);
}

/* Keeps a copy of the bias (the original is dropped with the weights). */
static int keep_bias(conv_attr *at, const onnx_tensor *b, int64_t M, err *e) {
  size_t bb = (size_t)M * sizeof(float);
  if (!(at->bias = aligned_alloc(64, (bb + 63) & ~(size_t)63)))
    return err_set(e, -ENOMEM, "out of memory");
  memcpy(at->bias, b->data, bb);
  return 0;
}

static int conv_prepare(onnx_node *n, const onnx_tensor *const *in, err *e) {
  conv_attr *at = n->attr;
  const onnx_tensor *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
  if (!w->data || w->dtype != INFERD_TYPE_FP32 || (b && (!b->data || b->dtype != INFERD_TYPE_FP32)))
    return 0; /* weights from a graph input: reordered at every run */
  if (w->ndim < 3 || w->ndim > 2 + MAX_SP) return 0; /* infer will say */
  onnx_tensor x;
  stand_in(in[0], w, at, &x);
  geom g;
  err ignore;
  if (geometry(at, &x, w, &g, &ignore)) return 0;
  if (wino_fits(n, &g)) {
    if (!(at->wino = onnx_wino_pack(w->data, g.M, g.C)))
      return err_set(e, -ENOMEM, "out of memory");
    if (b && keep_bias(at, b, g.M, e)) {
      free(at->wino);
      at->wino = NULL;
      return -ENOMEM;
    }
    n->dropped |= 1u << 1 | (b ? 1u << 2 : 0);
    n->prepared_bytes = (size_t)(16 * g.C * g.M) * sizeof(float) + (b ? (size_t)g.M * 4 : 0);
    return 0;
  }
  dnnl_memory_desc_t from;
  dnnl_primitive_desc_t pd = NULL;
  int rc = weights_md_onnx(at, &g, &from, e);
  if (rc) return rc;
  if (make_pd(n, &g, NULL, b != NULL, 0, n->n_post, &pd, &ignore)) {
    /* The fused form has no implementation for these stand-in shapes; the
     * plan will find out with the real ones. */
    return 0;
  }
  at->w_md = *onnx_dnnl_arg_md(pd, DNNL_ARG_WEIGHTS);
  dnnl_primitive_desc_destroy(pd);
  size_t bytes = dnnl_memory_desc_get_size(&at->w_md);
  at->w = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!at->w) return err_set(e, -ENOMEM, "out of memory");
  rc = onnx_dnnl_reorder_once(&from, w->data, &at->w_md, at->w, e);
  if (!rc && b) rc = keep_bias(at, b, g.M, e);
  if (rc) {
    free(at->w);
    free(at->bias);
    at->w = at->bias = NULL;
    return rc;
  }
  n->dropped |= 1u << 1 | (b ? 1u << 2 : 0);
  n->prepared_bytes = bytes + (b ? (size_t)g.M * sizeof(float) : 0);
  return 0;
}

static void conv_release(onnx_node *n) {
  conv_attr *at = n->attr;
  free(at->w);
  free(at->bias);
  free(at->wino);
  at->w = at->bias = at->wino = NULL;
}

/* ---- plans -------------------------------------------------------------- */

typedef struct conv_state {
  onnx_dnnl_prim conv;     /* SRC, WEIGHTS, DST [, BIAS] */
  onnx_dnnl_prim wreorder; /* FROM, TO: weights from the input, each run */
  onnx_dnnl_prim binary;   /* SRC_0, SRC_1, DST: a residual that broadcasts */
  void *w;                 /* the plan's own copy of the weights, or NULL */
  onnx_wino wino;          /* the Winograd kernel's geometry, when at->wino */
  bool bias, w_runtime, sum_fast, sum_slow;
  int sum_input;
  size_t w_bytes; /* of the weights in scratch (w_runtime) */
  size_t out_bytes;
} conv_state;

static void conv_plan_free(void *state) {
  conv_state *st = state;
  onnx_dnnl_prim_destroy(&st->conv);
  onnx_dnnl_prim_destroy(&st->wreorder);
  onnx_dnnl_prim_destroy(&st->binary);
  free(st->w);
  free(st);
}

/* The binary primitive adding a broadcast residual, with the activations
 * that followed the Add. */
static int plan_binary(const onnx_node *n, conv_state *st, const onnx_tensor *res,
                       const onnx_tensor *out, int at_sum, err *e) {
  dnnl_memory_desc_t a, b;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int64_t rd[ONNX_MAX_DIMS];
  for (int i = 0; i < out->ndim; i++) /* the residual's dims right-aligned */
    rd[i] = i < out->ndim - res->ndim ? 1 : res->dims[i - (out->ndim - res->ndim)];
  bool blocked = n->blocked & ONNX_BLOCKED_OUT(0);
  int rc = onnx_dnnl_md(&a, out->ndim, out->dims, dnnl_f32, blocked, e);
  if (!rc)
    rc = onnx_dnnl_md(&b, out->ndim, rd, dnnl_f32,
                      (n->blocked & ONNX_BLOCKED_IN(st->sum_input)) && rd[1] == out->dims[1], e);
  if (!rc) rc = onnx_dnnl_attr(&attr, n->post, at_sum + 1, n->n_post, e);
  if (rc) return rc;
  dnnl_binary_desc_t bd;
  dnnl_status_t s = dnnl_binary_desc_init(&bd, dnnl_binary_add, &a, &b, &a);
  if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &bd, attr, onnx_dnnl_engine(), NULL);
  dnnl_primitive_attr_destroy(attr);
  rc = onnx_dnnl_check(s, "residual add", e);
  if (!rc)
    rc = onnx_dnnl_prim_init(&st->binary, pd,
                             (const int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}, 3, e);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return rc;
}

static int conv_plan(const onnx_node *n, const onnx_tensor *const *in,
                     const onnx_tensor *const *out, onnx_plan_req *req, err *e) {
  const conv_attr *at = n->attr;
  geom g;
  int rc = geometry(at, in[0], in[1], &g, e);
  if (rc) return rc;
  conv_state *st = calloc(1, sizeof *st);
  if (!st) return err_set(e, -ENOMEM, "out of memory");
  int at_sum;
  st->sum_input = sum_input(n, &at_sum);
  st->bias = at->w ? at->bias != NULL : (n->n_in > 2 && in[2] != NULL);
  if (st->sum_input >= 0) {
    const onnx_tensor *r = in[st->sum_input];
    st->sum_fast = r->ndim == out[0]->ndim && r->count == out[0]->count;
    st->sum_slow = !st->sum_fast;
  }
  st->out_bytes = onnx_tensor_bytes(out[0]);
  int to = st->sum_slow ? at_sum : n->n_post;
  if (at->wino) {
    st->wino = (onnx_wino){.N = g.N,
                           .C = g.C,
                           .M = g.M,
                           .H = g.in[0],
                           .W = g.in[1],
                           .OH = g.out[0],
                           .OW = g.out[1],
                           .pad_t = g.pb[0],
                           .pad_l = g.pb[1]};
    size_t sp = onnx_wino_setup(&st->wino, req->threads);
    if (st->sum_slow && (rc = plan_binary(n, st, in[st->sum_input], out[0], at_sum, e))) {
      conv_plan_free(st);
      return rc;
    }
    if (st->binary.scratch_bytes > sp) sp = st->binary.scratch_bytes;
    req->state = st;
    req->scratch_bytes = sp;
    req->state_bytes = sizeof *st;
    return 0;
  }
  dnnl_primitive_desc_t pd = NULL;
  rc = make_pd(n, &g, NULL, st->bias, 0, to, &pd, e);
  const dnnl_memory_desc_t *want = rc ? NULL : onnx_dnnl_arg_md(pd, DNNL_ARG_WEIGHTS);
  size_t w_scratch = 0;
  if (!rc && at->w && !dnnl_memory_desc_equal(want, &at->w_md)) {
    /* The packed layout does not suit this plan's primitive: a copy. */
    size_t bytes = dnnl_memory_desc_get_size(want);
    if (!(st->w = aligned_alloc(64, (bytes + 63) & ~(size_t)63)))
      rc = err_set(e, -ENOMEM, "out of memory");
    else
      rc = onnx_dnnl_reorder_once(&at->w_md, at->w, want, st->w, e);
    req->state_bytes += bytes;
  } else if (!rc && !at->w) {
    /* Weights from the input, in ONNX's layout, reordered each run. */
    dnnl_memory_desc_t from;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    st->w_runtime = true;
    st->w_bytes = (dnnl_memory_desc_get_size(want) + 63) & ~(size_t)63;
    w_scratch = st->w_bytes;
    rc = weights_md_onnx(at, &g, &from, e);
    if (!rc) rc = onnx_dnnl_attr(&attr, NULL, 0, 0, e);
    if (!rc)
      rc = onnx_dnnl_check(dnnl_reorder_primitive_desc_create(&rpd, &from, onnx_dnnl_engine(), want,
                                                              onnx_dnnl_engine(), attr),
                           "weights reorder", e);
    if (!rc)
      rc = onnx_dnnl_prim_init(&st->wreorder, rpd, (const int[]){DNNL_ARG_FROM, DNNL_ARG_TO}, 2, e);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
  }
  int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
  if (!rc) rc = onnx_dnnl_prim_init(&st->conv, pd, kinds, st->bias ? 4 : 3, e);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (!rc && st->sum_slow) rc = plan_binary(n, st, in[st->sum_input], out[0], at_sum, e);
  if (rc) {
    conv_plan_free(st);
    return rc;
  }
  size_t sp = st->conv.scratch_bytes;
  if (st->wreorder.scratch_bytes > sp) sp = st->wreorder.scratch_bytes;
  if (st->binary.scratch_bytes > sp) sp = st->binary.scratch_bytes;
  req->state = st;
  req->scratch_bytes = w_scratch + sp;
  req->state_bytes += sizeof *st;
  return 0;
}

static int conv_step(const onnx_node *n, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                     onnx_tensor *const *out, err *e) {
  const conv_attr *at = n->attr;
  conv_state *st = ctx->state;
  if (out[0]->count == 0) return 0;
  unsigned char *scratch = ctx->scratch, *sp = scratch ? scratch + st->w_bytes : NULL;
  const void *w = st->w ? st->w : at->w;
  int rc;
  if (st->w_runtime) {
    void *h[2] = {in[1]->data, scratch};
    if ((rc = onnx_dnnl_prim_exec(&st->wreorder, ctx->stream, h, sp, e))) return rc;
    w = scratch;
  }
  if (st->sum_fast && out[0]->data != in[st->sum_input]->data)
    memcpy(out[0]->data, in[st->sum_input]->data, st->out_bytes);
  if (at->wino) {
    int at_sum;
    sum_input(n, &at_sum);
    onnx_wino_run(&st->wino, in[0]->data, at->wino, at->bias, n->post,
                  st->sum_slow ? at_sum : n->n_post, at_sum, out[0]->data, scratch);
    if (!st->sum_slow) return 0;
    void *hb[3] = {out[0]->data, in[st->sum_input]->data, out[0]->data};
    return onnx_dnnl_prim_exec(&st->binary, ctx->stream, hb, scratch, e);
  }
  const void *bias = at->w ? at->bias : st->bias ? in[2]->data : NULL;
  void *h[4] = {in[0]->data, (void *)w, out[0]->data, (void *)bias};
  if ((rc = onnx_dnnl_prim_exec(&st->conv, ctx->stream, h, sp, e))) return rc;
  if (st->sum_slow) {
    void *hb[3] = {out[0]->data, in[st->sum_input]->data, out[0]->data};
    rc = onnx_dnnl_prim_exec(&st->binary, ctx->stream, hb, sp, e);
  }
  return rc;
}

static int conv_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  return onnx_run_once(n, in, out, e);
}

/* ---- layouts ------------------------------------------------------------ */

/* Blocked wherever the blocked kernels take it, as ONNX Runtime does: even
 * for a reader that needs the result plain, a blocked convolution and a
 * reorder beat oneDNN's plain (im2col) one. That is: output channels in
 * whole blocks, and per group either whole blocks or depthwise. The input
 * is blocked too unless it has fewer channels than a block (an image's
 * first convolution reads it plain and writes blocked); a residual comes
 * in the result's layout. */
static unsigned conv_layouts(const onnx_node *n, const onnx_tensor *const *in, unsigned avail) {
  const conv_attr *at = n->attr;
  const onnx_tensor *w = in[1];
  int64_t B = onnx_block_size(), G = at->group;
  if (at->transpose || w->ndim != 4 || w->dtype != INFERD_TYPE_FP32) return 0;
  for (int i = 0; i < 4; i++)
    if (w->dims[i] < 1) return 0;
  int64_t M = w->dims[0], Cg = w->dims[1], C = Cg * G, Mg = M / G;
  bool groups_ok = G == 1 || (Cg == 1 && Mg == 1) || (Cg % B == 0 && Mg % B == 0);
  if (M % B != 0 || !groups_ok) return 0;
  unsigned want = ONNX_BLOCKED_OUT(0);
  if (C % B == 0)
    want |= ONNX_BLOCKED_IN(0);
  else if (!(G == 1 && C < B))
    return 0;
  int at_sum, k = sum_input(n, &at_sum);
  if (k >= 0 && k < 16) want |= ONNX_BLOCKED_IN(k);
  return want;
}

/* ---- tables ------------------------------------------------------------- */

#define POST_ACT                                                                                   \
  (1u << ONNX_POST_RELU | 1u << ONNX_POST_LEAKY_RELU | 1u << ONNX_POST_CLIP |                      \
   1u << ONNX_POST_SIGMOID | 1u << ONNX_POST_TANH | 1u << ONNX_POST_ELU |                          \
   1u << ONNX_POST_HARD_SIGMOID | 1u << ONNX_POST_HARD_SWISH)

const onnx_op onnx_op_conv = {.name = "Conv",
                              .domain = "",
                              .min_inputs = 2,
                              .max_inputs = 3,
                              .min_outputs = 1,
                              .max_outputs = 1,
                              .init = conv_init,
                              .infer = conv_infer,
                              .run = conv_run,
                              .prepare = conv_prepare,
                              .release = conv_release,
                              .plan = conv_plan,
                              .plan_free = conv_plan_free,
                              .run_step = conv_step,
                              .layouts = conv_layouts,
                              .post_ok = POST_ACT | 1u << ONNX_POST_SUM};

const onnx_op onnx_op_conv_transpose = {.name = "ConvTranspose",
                                        .domain = "",
                                        .min_inputs = 2,
                                        .max_inputs = 3,
                                        .min_outputs = 1,
                                        .max_outputs = 1,
                                        .init = conv_init,
                                        .infer = conv_infer,
                                        .run = conv_run,
                                        .prepare = conv_prepare,
                                        .release = conv_release,
                                        .plan = conv_plan,
                                        .plan_free = conv_plan_free,
                                        .run_step = conv_step,
                                        .post_ok = POST_ACT};

const onnx_op_row onnx_ops_conv[] = {
    {&onnx_op_conv, 1},
    {&onnx_op_conv, 11},
    {&onnx_op_conv_transpose, 1},
    {&onnx_op_conv_transpose, 11},
    {NULL, 0},
};
