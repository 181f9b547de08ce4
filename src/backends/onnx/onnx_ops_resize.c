/* backends/onnx/onnx_ops_resize.c: resampling: Resize (versions 10, 11,
 * 13), the deprecated Upsample (7, 9, 10), GridSample (16) and RoiAlign
 * (10, 16); the last two are described where they are defined.
 *
 * Every output element is a weighted sum of input elements: along each
 * axis an output coordinate maps to an input coordinate (the
 * coordinate_transformation_mode), which picks taps there: one for
 * nearest, two for linear, four for cubic, clamped to the edges (or, for
 * cubic with exclude_outside, dropped and the rest renormalised). The
 * N-D result is the product of the per-axis taps, so linear is bilinear,
 * trilinear, ... over every resized axis, as the operator defines it. The
 * output is made row by row: the innermost axis' taps are computed once
 * per chunk of columns for all rows, the other axes' only when their
 * index changes, and zero-weight taps are dropped, so an axis that is not
 * resized costs one tap.
 *
 * nearest moves elements (any type); linear and cubic compute in double
 * and store in the element type (integers rounded to nearest and
 * saturated).
 *
 * Versions: Resize-10 and Upsample map coordinates asymmetrically
 * (x / scale); for nearest, Upsample floors and Resize-10 floors when
 * enlarging and rounds up when shrinking, as ONNX Runtime does. Resize-11
 * and 13 take every mode of the specification; like ONNX's reference
 * implementation (which made the node tests' data), the length used by
 * align_corners and tf_crop_and_resize is input length x scale, which is
 * the output length exactly when sizes are given. Opset 18's antialias,
 * axes and keep_aspect_ratio_policy are beyond ONNX_OPSET_MAX and not
 * implemented. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "onnx_kernel.h"
#include "onnx_ops.h"

/* ---- attributes --------------------------------------------------------- */

enum { M_NEAREST, M_LINEAR, M_CUBIC };
static const char *const modes[] = {"nearest", "linear", "cubic"};

enum {
  C_HALF_PIXEL,
  C_PYTORCH_HALF_PIXEL,
  C_ALIGN_CORNERS,
  C_ASYMMETRIC,
  C_TF_HALF_PIXEL_FOR_NN,
  C_TF_CROP_AND_RESIZE
};
static const char *const coord_modes[] = {"half_pixel",           "pytorch_half_pixel",
                                          "align_corners",        "asymmetric",
                                          "tf_half_pixel_for_nn", "tf_crop_and_resize"};

/* N_FLOOR_UP_CEIL_DOWN: floor when enlarging, ceil when shrinking
 * (Resize-10). */
enum { N_ROUND_PREFER_FLOOR, N_ROUND_PREFER_CEIL, N_FLOOR, N_CEIL, N_FLOOR_UP_CEIL_DOWN };
static const char *const nearest_modes[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil"};

typedef struct resize_attr {
  int mode, coord, nearest;
  float cubic_a, extrapolation;
  bool exclude_outside;
  int roi_in, scales_in, sizes_in; /* input positions, -1 when the version has none */
  int n_scales;                    /* Upsample-7's scales attribute */
  float *scales;
} resize_attr;

static int resize_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  resize_attr *at = arena_calloc(a, 1, sizeof *at);
  int rc;
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  bool upsample = strcmp(n->op->name, "Upsample") == 0;
  at->roi_in = at->sizes_in = -1;
  at->scales_in = 1;
  at->coord = C_ASYMMETRIC;
  at->nearest = upsample ? N_FLOOR : N_FLOOR_UP_CEIL_DOWN;
  at->cubic_a = -0.75f;
  /* Resize-10 and Upsample know nearest and linear only */
  if ((rc = onnx_attr_enum(p, "mode", modes, upsample || n->since < 11 ? 2 : 3, M_NEAREST,
                           &at->mode, e)))
    return rc;
  if (upsample && n->since < 9) {
    const Onnx__AttributeProto *s = onnx_attr_find(p, "scales");
    if (!s || !s->n_floats) return err_set(e, -EINVAL, "attribute 'scales' is required");
    if (s->n_floats > ONNX_MAX_DIMS) return err_set(e, -EINVAL, "too many scales");
    at->n_scales = (int)s->n_floats;
    if (!(at->scales = arena_alloc(a, s->n_floats * sizeof *at->scales)))
      return err_set(e, -ENOMEM, "out of memory");
    memcpy(at->scales, s->floats, s->n_floats * sizeof *at->scales);
    at->scales_in = -1;
    if (p->n_input > 1) return err_set(e, -EINVAL, "Upsample-7 takes one input");
    return 0;
  }
  if (upsample || n->since < 11) {
    if (p->n_input != 2)
      return err_set(e, -EINVAL, "%s-%d takes X and scales", p->op_type, n->since);
    return 0;
  }
  at->roi_in = 1;
  at->scales_in = 2;
  at->sizes_in = 3;
  at->coord = C_HALF_PIXEL;
  at->nearest = N_ROUND_PREFER_FLOOR;
  int64_t excl;
  if ((rc = onnx_attr_enum(p, "coordinate_transformation_mode", coord_modes, 6, C_HALF_PIXEL,
                           &at->coord, e)) ||
      (rc = onnx_attr_enum(p, "nearest_mode", nearest_modes, 4, N_ROUND_PREFER_FLOOR, &at->nearest,
                           e)) ||
      (rc = onnx_attr_float(p, "cubic_coeff_a", -0.75f, &at->cubic_a, e)) ||
      (rc = onnx_attr_float(p, "extrapolation_value", 0.0f, &at->extrapolation, e)) ||
      (rc = onnx_attr_int(p, "exclude_outside", 0, &excl, e)))
    return rc;
  if (excl != 0 && excl != 1) return err_set(e, -EINVAL, "exclude_outside must be 0 or 1");
  at->exclude_outside = excl;
  if (n->since < 13 && p->n_input < 3)
    return err_set(e, -EINVAL, "Resize-11 takes X, roi and scales (and optionally sizes)");
  return 0;
}

/* ---- per-axis geometry -------------------------------------------------- */

/* Along one axis: input and output lengths, the scale, the length the
 * coordinate modes divide by, and the region of interest. */
typedef struct axis_geo {
  int64_t in, out;
  double scale, len, roi_lo, roi_hi;
} axis_geo;

/* The geometry of every axis from scales or sizes (exactly one given, the
 * other absent or empty) and roi. roi is read only when present with data
 * (at run; it does not change shapes). */
static int geometry(const onnx_node *n, const onnx_tensor *const *in, axis_geo *g, err *e) {
  const resize_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  int r = x->ndim;
  const onnx_tensor *sc = at->scales_in >= 0 && at->scales_in < n->n_in ? in[at->scales_in] : NULL;
  const onnx_tensor *sz = at->sizes_in >= 0 && at->sizes_in < n->n_in ? in[at->sizes_in] : NULL;
  const onnx_tensor *roi = at->roi_in >= 0 && at->roi_in < n->n_in ? in[at->roi_in] : NULL;
  if (sc && sc->count == 0) sc = NULL;
  if (sz && sz->count == 0) sz = NULL;
  if (roi && roi->count == 0) roi = NULL;
  bool upsample = strcmp(n->op->name, "Upsample") == 0;
  if (at->scales_in < 0) { /* Upsample-7 */
    if (at->n_scales != r)
      return err_set(e, -EINVAL, "%d scales for an input of rank %d", at->n_scales, r);
  } else if (!!sc == !!sz) {
    return err_set(e, -EINVAL, "exactly one of scales and sizes must be given");
  }
  if (sc) {
    if (!onnx_dtype_is_floating(sc->dtype) || sc->ndim != 1 || sc->count != r)
      return err_set(e, -EINVAL, "scales must be %d floating-point values", r);
    if (!sc->data) return onnx_not_known("scales", e);
  }
  if (sz) {
    if (sz->dtype != INFERD_TYPE_INT64 || sz->ndim != 1 || sz->count != r)
      return err_set(e, -EINVAL, "sizes must be %d INT64 values", r);
    if (!sz->data) return onnx_not_known("sizes", e);
  }
  if (roi && (!onnx_dtype_is_floating(roi->dtype) || roi->count != 2 * r))
    return err_set(e, -EINVAL, "roi must be %d floating-point values", 2 * r);
  for (int d = 0; d < r; d++) {
    axis_geo *a = &g[d];
    a->in = x->dims[d];
    a->roi_lo = 0;
    a->roi_hi = 1;
    if (roi && roi->data) {
      a->roi_lo = onnx_float_get(roi->data, roi->dtype, d);
      a->roi_hi = onnx_float_get(roi->data, roi->dtype, r + d);
    }
    if (sz) {
      a->out = ((const int64_t *)sz->data)[d];
      if (a->out < 0) return err_set(e, -EINVAL, "sizes has a negative size");
      if (a->in == 0 && a->out > 0)
        return err_set(e, -EINVAL, "cannot resize the empty axis %d to %lld", d, (long long)a->out);
      a->scale = a->in ? (double)a->out / (double)a->in : 1;
      a->len = a->scale * (double)a->in;
      continue;
    }
    float s = sc ? (float)onnx_float_get(sc->data, sc->dtype, d) : at->scales[d];
    if (!(s > 0 && s < 1e6))
      return err_set(e, -EINVAL, "scale %g (axis %d) must be positive", (double)s, d);
    if (upsample && s < 1)
      return err_set(e, -EINVAL, "Upsample's scales must be at least 1; axis %d has %g", d,
                     (double)s);
    double out_len = floor((double)s * (double)a->in);
    if (out_len > (double)INT32_MAX * 64)
      return err_set(e, -EINVAL, "scale %g makes axis %d too long", (double)s, d);
    a->scale = s;
    a->out = (int64_t)out_len;
    a->len = (double)(s * (float)a->in); /* in float, as the reference computes it */
  }
  return 0;
}

/* The input coordinate of output index x along an axis; false when it
 * falls outside the crop of tf_crop_and_resize (the output is then the
 * extrapolation value). */
static bool source_coord(int coord, const axis_geo *a, int64_t x, double *out) {
  double xo, xr = (double)x, in = (double)a->in;
  switch (coord) {
  case C_HALF_PIXEL: xo = (xr + 0.5) / a->scale - 0.5; break;
  case C_PYTORCH_HALF_PIXEL: xo = a->out > 1 ? (xr + 0.5) / a->scale - 0.5 : 0; break;
  case C_ALIGN_CORNERS: xo = a->len == 1 ? 0 : xr * (in - 1) / (a->len - 1); break;
  case C_TF_HALF_PIXEL_FOR_NN: xo = (xr + 0.5) / a->scale; break;
  case C_TF_CROP_AND_RESIZE:
    xo = a->len == 1 ? (a->roi_hi - a->roi_lo) * (in - 1) / 2
                     : xr * (a->roi_hi - a->roi_lo) * (in - 1) / (a->len - 1);
    xo += a->roi_lo * (in - 1);
    if (!(xo >= 0 && xo <= in - 1)) return false; /* NaN too */
    break;
  default: xo = xr / a->scale; break;
  }
  *out = xo;
  return true;
}

/* ---- taps --------------------------------------------------------------- */

/* The input elements (indices and weights) one output index reads along
 * one axis. */
typedef struct taps {
  int n;
  bool outside; /* tf_crop_and_resize: extrapolate */
  int64_t idx[4];
  double w[4];
} taps;

static double cubic_w(double x, double A) { /* Keys' kernel, |x| in [0, 2) */
  x = fabs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

static void axis_taps(const resize_attr *at, const axis_geo *a, int64_t x, taps *t) {
  double xo;
  t->n = 0;
  t->outside = !source_coord(at->coord, a, x, &xo);
  if (t->outside) return;
  double fl = floor(xo), r = xo - fl;
  int64_t x0 = (int64_t)fl;
  if (at->mode == M_NEAREST) {
    int64_t i = x0;
    if (r > 0) {
      switch (at->nearest) {
      case N_ROUND_PREFER_FLOOR: i = r <= 0.5 ? x0 : x0 + 1; break;
      case N_ROUND_PREFER_CEIL: i = r < 0.5 ? x0 : x0 + 1; break;
      case N_CEIL: i = x0 + 1; break;
      case N_FLOOR_UP_CEIL_DOWN: i = a->scale < 1 ? x0 + 1 : x0; break;
      default: break; /* floor */
      }
    }
    t->n = 1;
    t->idx[0] = clamp_index(i, a->in);
    t->w[0] = 1;
    return;
  }
  int64_t first = at->mode == M_LINEAR ? x0 : x0 - 1;
  int count = at->mode == M_LINEAR ? 2 : 4;
  double w[4], sum = 0;
  if (at->mode == M_LINEAR) {
    w[0] = 1 - r;
    w[1] = r;
  } else {
    for (int k = 0; k < 4; k++)
      w[k] = cubic_w(r + 1 - k, at->cubic_a);
  }
  for (int k = 0; k < count; k++) {
    int64_t i = first + k;
    if (at->exclude_outside && (i < 0 || i >= a->in)) w[k] = 0;
    sum += w[k];
  }
  for (int k = 0; k < count; k++) {
    if (w[k] == 0) continue;
    t->idx[t->n] = clamp_index(first + k, a->in);
    t->w[t->n] = at->exclude_outside ? w[k] / sum : w[k];
    t->n++;
  }
}

/* ---- Resize / Upsample -------------------------------------------------- */

static int resize_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                        err *e) {
  const resize_attr *at = n->attr;
  const onnx_tensor *x = in[0];
  axis_geo g[ONNX_MAX_DIMS];
  size_t es = dtype_size(x->dtype);
  if (!(es == 1 || es == 2 || es == 4 || es == 8))
    return err_set(e, -ENOTSUP, "type %s is not supported", dtype_name(x->dtype));
  if (at->mode != M_NEAREST && x->dtype == INFERD_TYPE_BOOL)
    return err_set(e, -ENOTSUP, "%s interpolation of BOOL is not supported", modes[at->mode]);
  int rc = geometry(n, in, g, e);
  if (rc) return rc;
  int64_t dims[ONNX_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++)
    dims[d] = g[d].out;
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], x->ndim, dims);
  return 0;
}

/* Stores v as element i of p: as onnx_store_double, except that integers
 * round to nearest (interpolated samples) and BOOL is left as it is. */
static void store_elem(inferd_dtype t, void *p, int64_t i, double v) {
  if (t == INFERD_TYPE_BOOL) return;
  onnx_store_double(t, p, i, onnx_dtype_is_floating(t) ? v : nearbyint(v));
}

/* Inner-axis outputs whose taps are computed once and reused by every
 * row, and outer tap combinations summed per batch: both bound the stack
 * a call uses (kernels do not allocate). */
#define RCHUNK 128
#define RCOMBO 64

/* acc[j] += the sum over the nc outer combinations (offset off[c], weight
 * w[c]) of the inner taps it[j] of x. */
#define ACCUMULATE(T)                                                                              \
  do {                                                                                             \
    const T *p = x->data;                                                                          \
    for (int j = 0; j < m; j++) {                                                                  \
      const taps *tj = &it[j];                                                                     \
      double v = 0;                                                                                \
      for (int c = 0; c < nc; c++) {                                                               \
        const T *row = p + off[c];                                                                 \
        double s = 0;                                                                              \
        for (int k = 0; k < tj->n; k++)                                                            \
          s += tj->w[k] * (double)row[tj->idx[k]];                                                 \
        v += w[c] * s;                                                                             \
      }                                                                                            \
      acc[j] += v;                                                                                 \
    }                                                                                              \
  } while (0)
static void accumulate(const onnx_tensor *x, const int64_t *off, const double *w, int nc,
                       const taps *it, int m, double *acc) {
  switch (x->dtype) {
  case INFERD_TYPE_FP32: ACCUMULATE(float); break;
  case INFERD_TYPE_FP64: ACCUMULATE(double); break;
  default:
    for (int j = 0; j < m; j++)
      for (int c = 0; c < nc; c++)
        for (int k = 0; k < it[j].n; k++)
          acc[j] += w[c] * it[j].w[k] * onnx_load_double(x, off[c] + it[j].idx[k]);
    break;
  }
}
#undef ACCUMULATE

/* m outputs of one row (dst): the outer axes' taps t[0..q) are the row's,
 * the inner axis' it[0..m) the chunk's. */
static void resize_row(const resize_attr *at, const onnx_tensor *x, const taps *t, int q,
                       const int64_t *st, const taps *it, int m, char *dst, const char *extrap) {
  size_t es = dtype_size(x->dtype);
  bool outside = false, empty = false;
  for (int d = 0; d < q; d++) {
    outside |= t[d].outside;
    empty |= t[d].n == 0; /* every tap weighed 0 */
  }
  if (at->mode == M_NEAREST) {
    int64_t base = 0;
    for (int d = 0; d < q; d++)
      base += t[d].idx[0] * st[d];
    for (int j = 0; j < m; j++)
      memcpy(dst + (size_t)j * es,
             outside || it[j].outside ? extrap
                                      : (const char *)x->data + (size_t)(base + it[j].idx[0]) * es,
             es);
    return;
  }
  double acc[RCHUNK] = {0};
  int64_t off[RCOMBO];
  double w[RCOMBO];
  int nc = 0, k[ONNX_MAX_DIMS] = {0};
  while (!outside && !empty) { /* every combination of the outer taps */
    off[nc] = 0;
    w[nc] = 1;
    for (int d = 0; d < q; d++) {
      off[nc] += t[d].idx[k[d]] * st[d];
      w[nc] *= t[d].w[k[d]];
    }
    nc++;
    int d = q - 1;
    while (d >= 0 && ++k[d] == t[d].n)
      k[d--] = 0;
    if (nc == RCOMBO || d < 0) {
      accumulate(x, off, w, nc, it, m, acc);
      nc = 0;
    }
    if (d < 0) break;
  }
  for (int j = 0; j < m; j++) {
    if (outside || it[j].outside)
      memcpy(dst + (size_t)j * es, extrap, es);
    else
      store_elem(x->dtype, dst, j, acc[j]);
  }
}

/* The output in chunks of RCHUNK along the innermost axis, row by row
 * over the outer axes, whose taps change only when their index does. */
static int resize_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const resize_attr *at = n->attr;
  const onnx_tensor *x = in[0], *o = out[0];
  axis_geo g[ONNX_MAX_DIMS];
  int rc = geometry(n, in, g, e);
  if (rc) return rc;
  if (!o->count) return 0;
  int r = x->ndim, q = r - 1;
  size_t es = dtype_size(x->dtype);
  if (r == 0) {
    memcpy(o->data, x->data, es);
    return 0;
  }
  int64_t st[ONNX_MAX_DIMS], s = 1;
  for (int d = r - 1; d >= 0; d--) {
    st[d] = s;
    s *= x->dims[d];
  }
  char extrap[8] = {0};
  store_elem(x->dtype, extrap, 0, at->extrapolation);
  int64_t width = o->dims[q], rows = o->count / width;
  taps it[RCHUNK], t[ONNX_MAX_DIMS];
  for (int64_t j0 = 0; j0 < width; j0 += RCHUNK) {
    int m = width - j0 < RCHUNK ? (int)(width - j0) : RCHUNK;
    for (int j = 0; j < m; j++)
      axis_taps(at, &g[q], j0 + j, &it[j]);
    int64_t c[ONNX_MAX_DIMS] = {0};
    for (int d = 0; d < q; d++)
      axis_taps(at, &g[d], 0, &t[d]);
    for (int64_t row = 0; row < rows; row++) {
      resize_row(at, x, t, q, st, it, m, (char *)o->data + (size_t)(row * width + j0) * es, extrap);
      for (int d = q - 1; d >= 0; d--) { /* next row; new taps where the index changed */
        if (++c[d] < o->dims[d]) {
          axis_taps(at, &g[d], c[d], &t[d]);
          break;
        }
        c[d] = 0;
        axis_taps(at, &g[d], 0, &t[d]);
      }
    }
  }
  return 0;
}

static const onnx_op resize10 = {.name = "Resize",
                                 .domain = "",
                                 .min_inputs = 2,
                                 .max_inputs = 2,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = resize_init,
                                 .infer = resize_infer,
                                 .run = resize_run,
                                 .value_inputs = 1u << 1};
static const onnx_op resize = {.name = "Resize",
                               .domain = "",
                               .min_inputs = 1,
                               .max_inputs = 4,
                               .min_outputs = 1,
                               .max_outputs = 1,
                               .init = resize_init,
                               .infer = resize_infer,
                               .run = resize_run,
                               .value_inputs = (1u << 2) | (1u << 3)};
static const onnx_op upsample7 = {.name = "Upsample",
                                  .domain = "",
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = resize_init,
                                  .infer = resize_infer,
                                  .run = resize_run};
static const onnx_op upsample = {.name = "Upsample",
                                 .domain = "",
                                 .min_inputs = 2,
                                 .max_inputs = 2,
                                 .min_outputs = 1,
                                 .max_outputs = 1,
                                 .init = resize_init,
                                 .infer = resize_infer,
                                 .run = resize_run,
                                 .value_inputs = 1u << 1};

/* ---- GridSample --------------------------------------------------------- */

/* GridSample-16 samples a 4-D [N,C,H,W] input at the normalised (x, y) in
 * [-1, 1] of a [N,Ho,Wo,2] grid, as PyTorch's grid_sample does (the
 * operator's definition follows it): coordinates unnormalised with or
 * without align_corners, padding "zeros" (taps outside read 0), "border"
 * (coordinates clipped) or "reflection" (coordinates reflected off the
 * edges), nearest rounding half to even, bilinear over 4 taps, bicubic
 * over 16 with A = -0.75 and the padding applied to each tap. */
enum { G_BILINEAR, G_NEAREST, G_BICUBIC };
static const char *const grid_modes[] = {"bilinear", "nearest", "bicubic"};
enum { P_ZEROS, P_BORDER, P_REFLECTION };
static const char *const padding_modes[] = {"zeros", "border", "reflection"};

typedef struct grid_attr {
  int mode, padding;
  bool align_corners;
} grid_attr;

static int grid_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  grid_attr *at = arena_calloc(a, 1, sizeof *at);
  int64_t align;
  int rc;
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  if ((rc = onnx_attr_enum(p, "mode", grid_modes, 3, G_BILINEAR, &at->mode, e)) ||
      (rc = onnx_attr_enum(p, "padding_mode", padding_modes, 3, P_ZEROS, &at->padding, e)) ||
      (rc = onnx_attr_int(p, "align_corners", 0, &align, e)))
    return rc;
  if (align != 0 && align != 1) return err_set(e, -EINVAL, "align_corners must be 0 or 1");
  at->align_corners = align;
  return 0;
}

static int grid_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                      err *e) {
  const onnx_tensor *x = in[0], *g = in[1];
  char sa[96], sb[96];
  if (!onnx_dtype_is_floating(x->dtype) || !onnx_dtype_is_floating(g->dtype))
    return err_set(e, -ENOTSUP, "X and grid must be floating-point; they are %s and %s",
                   dtype_name(x->dtype), dtype_name(g->dtype));
  if (x->ndim != 4 || g->ndim != 4 || g->dims[3] != 2 || g->dims[0] != x->dims[0])
    return err_set(e, -EINVAL, "X %s and grid %s must be [N,C,H,W] and [N,Ho,Wo,2]",
                   onnx_shape_str(sa, x), onnx_shape_str(sb, g));
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], 4, (int64_t[]){x->dims[0], x->dims[1], g->dims[1], g->dims[2]});
  return 0;
}

/* PyTorch's reflect_coordinates: in reflected into [lo2/2, hi2/2]. */
static double reflect(double in, double lo2, double hi2) {
  if (lo2 == hi2) return 0;
  double lo = lo2 / 2, span = (hi2 - lo2) / 2;
  in = fabs(in - lo);
  double extra = fmod(in, span), flips = floor(in / span);
  return fmod(flips, 2) == 0 ? extra + lo : span - extra + lo;
}

/* The padding's treatment of a source coordinate along an axis of size n. */
static double pad_coord(const grid_attr *at, double c, int64_t n) {
  if (at->padding == P_BORDER) return c < 0 ? 0 : c > n - 1 ? (double)(n - 1) : c;
  if (at->padding == P_REFLECTION) {
    c = at->align_corners ? reflect(c, 0, 2.0 * (double)(n - 1))
                          : reflect(c, -1, 2.0 * (double)n - 1);
    return c < 0 ? 0 : c > n - 1 ? (double)(n - 1) : c;
  }
  return c;
}

/* c, or -4 (every tap outside: 0) when c is far outside [0, n) or NaN, so
 * that a grid of any values converts to indices safely. */
static double in_reach(double c, int64_t n) { return c > -4 && c < (double)n + 4 ? c : -4; }

/* Element (y, x) of one H x W plane; 0 outside. */
static double plane_at(const onnx_tensor *t, int64_t base, int64_t H, int64_t W, int64_t y,
                       int64_t x) {
  if (y < 0 || y >= H || x < 0 || x >= W) return 0;
  return onnx_load_double(t, base + y * W + x);
}

static int grid_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                    err *e) {
  const grid_attr *at = n->attr;
  const onnx_tensor *x = in[0], *g = in[1];
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
  int64_t Ho = g->dims[1], Wo = g->dims[2];
  for (int64_t b = 0; b < N; b++)
    for (int64_t i = 0; i < Ho * Wo; i++) {
      int64_t gi = (b * Ho * Wo + i) * 2;
      double gx = onnx_load_double(g, gi), gy = onnx_load_double(g, gi + 1);
      /* unnormalised: with align_corners -1 and 1 are the corner pixels'
       * centres, without they are the corners' outer edges */
      double ux =
          at->align_corners ? (gx + 1) / 2 * (double)(W - 1) : ((gx + 1) * (double)W - 1) / 2;
      double uy =
          at->align_corners ? (gy + 1) / 2 * (double)(H - 1) : ((gy + 1) * (double)H - 1) / 2;
      for (int64_t c = 0; c < C; c++) {
        int64_t base = (b * C + c) * H * W;
        double v = 0;
        if (at->mode == G_BICUBIC) {
          double fx = floor(ux), fy = floor(uy), cx[4], cy[4];
          for (int k = 0; k < 4; k++) {
            cx[k] = cubic_w(ux - fx + 1 - k, -0.75);
            cy[k] = cubic_w(uy - fy + 1 - k, -0.75);
          }
          for (int r = 0; r < 4; r++)
            for (int k = 0; k < 4; k++) {
              double px = in_reach(pad_coord(at, fx - 1 + k, W), W);
              double py = in_reach(pad_coord(at, fy - 1 + r, H), H);
              /* the taps are whole numbers; PyTorch truncates them */
              v += cy[r] * cx[k] * plane_at(x, base, H, W, (int64_t)py, (int64_t)px);
            }
        } else {
          double px = in_reach(pad_coord(at, ux, W), W), py = in_reach(pad_coord(at, uy, H), H);
          if (at->mode == G_NEAREST) {
            v = plane_at(x, base, H, W, (int64_t)nearbyint(py), (int64_t)nearbyint(px));
          } else {
            double fx = floor(px), fy = floor(py), lx = px - fx, ly = py - fy;
            int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
            v = (1 - ly) * ((1 - lx) * plane_at(x, base, H, W, y0, x0) +
                            lx * plane_at(x, base, H, W, y0, x0 + 1)) +
                ly * ((1 - lx) * plane_at(x, base, H, W, y0 + 1, x0) +
                      lx * plane_at(x, base, H, W, y0 + 1, x0 + 1));
          }
        }
        store_elem(out[0]->dtype, out[0]->data, (b * C + c) * Ho * Wo + i, v);
      }
    }
  return 0;
}

static const onnx_op grid_sample = {.name = "GridSample",
                                    .domain = "",
                                    .min_inputs = 2,
                                    .max_inputs = 2,
                                    .min_outputs = 1,
                                    .max_outputs = 1,
                                    .init = grid_init,
                                    .infer = grid_infer,
                                    .run = grid_run};

/* ---- RoiAlign ----------------------------------------------------------- */

/* RoiAlign-10 and 16 (Mask R-CNN's pooling): each region of interest, in
 * input coordinates times spatial_scale, is cut into output_height x
 * output_width bins; each bin averages (or takes the max of) a grid of
 * bilinear samples, sampling_ratio per side or ceil(bin size) when 0.
 * Version 10 and "output_half_pixel" use the region as given (at least
 * one pixel wide); "half_pixel" (16's default) shifts it by half a pixel.
 * The sampling rules (samples beyond one pixel outside read 0, clamping
 * at the far edge, max over the four weighted taps) are those of ONNX
 * Runtime, whose results the node tests hold. */
typedef struct roi_attr {
  bool max, half_pixel;
  int64_t out_h, out_w, sampling;
  float scale;
} roi_attr;

static const char *const roi_modes[] = {"avg", "max"};
static const char *const roi_coords[] = {"half_pixel", "output_half_pixel"};

static int roi_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e) {
  roi_attr *at = arena_calloc(a, 1, sizeof *at);
  int mode, coord, rc;
  if (!at) return err_set(e, -ENOMEM, "out of memory");
  n->attr = at;
  if ((rc = onnx_attr_enum(p, "mode", roi_modes, 2, 0, &mode, e)) ||
      (rc = onnx_attr_enum(p, "coordinate_transformation_mode", roi_coords, 2,
                           n->since >= 16 ? 0 : 1, &coord, e)) ||
      (rc = onnx_attr_int(p, "output_height", 1, &at->out_h, e)) ||
      (rc = onnx_attr_int(p, "output_width", 1, &at->out_w, e)) ||
      (rc = onnx_attr_int(p, "sampling_ratio", 0, &at->sampling, e)) ||
      (rc = onnx_attr_float(p, "spatial_scale", 1.0f, &at->scale, e)))
    return rc;
  if (n->since < 16 && onnx_attr_find(p, "coordinate_transformation_mode"))
    return err_set(e, -EINVAL, "coordinate_transformation_mode needs opset 16");
  if (at->out_h < 1 || at->out_w < 1 || at->out_h > 65536 || at->out_w > 65536 || at->sampling < 0)
    return err_set(e, -EINVAL, "output_height, output_width or sampling_ratio is out of range");
  at->max = mode == 1;
  at->half_pixel = coord == 0;
  return 0;
}

static int roi_infer(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                     err *e) {
  const roi_attr *at = n->attr;
  const onnx_tensor *x = in[0], *r = in[1], *bi = in[2];
  if (!onnx_dtype_is_floating(x->dtype) || r->dtype != x->dtype)
    return err_set(e, -ENOTSUP, "X and rois must be of one floating-point type");
  if (x->ndim != 4) return err_set(e, -EINVAL, "X must be 4-D [N,C,H,W]");
  if (r->ndim != 2 || r->dims[1] != 4) return err_set(e, -EINVAL, "rois must be [num_rois, 4]");
  if (bi->dtype != INFERD_TYPE_INT64 || bi->ndim != 1 || bi->dims[0] != r->dims[0])
    return err_set(e, -EINVAL, "batch_indices must be INT64 [%lld]", (long long)r->dims[0]);
  out[0]->dtype = x->dtype;
  onnx_tensor_set_shape(out[0], 4, (int64_t[]){r->dims[0], x->dims[1], at->out_h, at->out_w});
  return 0;
}

/* One bilinear sample at (y, x) of a plane, as ONNX Runtime's RoiAlign
 * takes it: the four weighted taps, or none when (y, x) lies more than a
 * pixel outside. */
typedef struct roi_sample {
  int64_t pos[4];
  double w[4];
  bool none;
} roi_sample;

static void roi_sample_at(double y, double x, int64_t H, int64_t W, roi_sample *s) {
  s->none = !(y >= -1.0 && y <= (double)H && x >= -1.0 && x <= (double)W); /* NaN too */
  if (s->none) return;
  y = y <= 0 ? 0 : y;
  x = x <= 0 ? 0 : x;
  int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
  if (y0 >= H - 1) {
    y0 = y1 = H - 1;
    y = (double)y0;
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= W - 1) {
    x0 = x1 = W - 1;
    x = (double)x0;
  } else {
    x1 = x0 + 1;
  }
  double ly = y - (double)y0, lx = x - (double)x0, hy = 1 - ly, hx = 1 - lx;
  s->pos[0] = y0 * W + x0;
  s->pos[1] = y0 * W + x1;
  s->pos[2] = y1 * W + x0;
  s->pos[3] = y1 * W + x1;
  s->w[0] = hy * hx;
  s->w[1] = hy * lx;
  s->w[2] = ly * hx;
  s->w[3] = ly * lx;
}

static int roi_run(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                   err *e) {
  const roi_attr *at = n->attr;
  const onnx_tensor *x = in[0], *r = in[1];
  const int64_t *bi = in[2]->data;
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
  double off = at->half_pixel ? 0.5 : 0;
  for (int64_t k = 0; k < r->dims[0]; k++) {
    if (bi[k] < 0 || bi[k] >= N)
      return err_set(e, -EINVAL, "batch_indices[%lld] = %lld is outside [0, %lld)", (long long)k,
                     (long long)bi[k], (long long)N);
    double x0 = onnx_load_double(r, k * 4) * at->scale - off;
    double y0 = onnx_load_double(r, k * 4 + 1) * at->scale - off;
    double x1 = onnx_load_double(r, k * 4 + 2) * at->scale - off;
    double y1 = onnx_load_double(r, k * 4 + 3) * at->scale - off;
    double rw = x1 - x0, rh = y1 - y0;
    if (!at->half_pixel) {
      rw = rw > 1 ? rw : 1;
      rh = rh > 1 ? rh : 1;
    }
    double bh = rh / (double)at->out_h, bw = rw / (double)at->out_w;
    double gh_d = at->sampling ? (double)at->sampling : ceil(rh / (double)at->out_h);
    double gw_d = at->sampling ? (double)at->sampling : ceil(rw / (double)at->out_w);
    if (!(gh_d <= 4096 && gw_d <= 4096)) /* NaN too */
      return err_set(e, -EINVAL, "region %lld needs a %g x %g sampling grid", (long long)k, gh_d,
                     gw_d);
    int64_t gh = gh_d > 0 ? (int64_t)gh_d : 0, gw = gw_d > 0 ? (int64_t)gw_d : 0;
    double count = gh * gw > 0 ? (double)(gh * gw) : 1;
    for (int64_t c = 0; c < C; c++) {
      int64_t base = (bi[k] * C + c) * H * W;
      for (int64_t ph = 0; ph < at->out_h; ph++)
        for (int64_t pw = 0; pw < at->out_w; pw++) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; iy++)
            for (int64_t ix = 0; ix < gw; ix++) {
              roi_sample s;
              roi_sample_at(y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh,
                            x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw, H, W, &s);
              double t[4] = {0, 0, 0, 0};
              for (int q = 0; q < 4 && !s.none; q++)
                t[q] = s.w[q] * onnx_load_double(x, base + s.pos[q]);
              if (!at->max) {
                acc += t[0] + t[1] + t[2] + t[3];
                continue;
              }
              for (int q = 0; q < 4; q++)
                if (first || t[q] > acc) {
                  acc = t[q];
                  first = false;
                }
            }
          store_elem(out[0]->dtype, out[0]->data, ((k * C + c) * at->out_h + ph) * at->out_w + pw,
                     at->max ? acc : acc / count);
        }
    }
  }
  return 0;
}

static const onnx_op roi_align = {.name = "RoiAlign",
                                  .domain = "",
                                  .min_inputs = 3,
                                  .max_inputs = 3,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .init = roi_init,
                                  .infer = roi_infer,
                                  .run = roi_run};

/* One line per operator, its versions in order. */
/* clang-format off */
const onnx_op_row onnx_ops_resize[] = {
    {&resize10, 10},
    {&resize, 11}, {&resize, 13},
    {&upsample7, 7},
    {&upsample, 9}, {&upsample, 10},
    {&grid_sample, 16},
    {&roi_align, 10}, {&roi_align, 16},
    {NULL, 0},
};
/* clang-format on */
