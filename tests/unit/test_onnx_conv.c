/* Unit tests of the ONNX backend's CNN operators: Conv and ConvTranspose
 * (pads, auto_pad, strides, dilations, groups and depthwise, 1-D to 3-D,
 * output_padding, output_shape), MaxPool and AveragePool (ceil_mode,
 * dilations, count_include_pad, Indices with both storage orders), the
 * global pools, BatchNormalization, InstanceNormalization and LRN, each
 * against values worked out by hand or a direct loop written here; then
 * the load-time work: a graph with Conv+BatchNormalization+Relu+Add and
 * the other fusable activations gives the same answer fused as unfused,
 * and tensors that cross between blocked and plain operators (graph
 * outputs, Flatten, pooling) are reordered where they must be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "onnx_test_run.h"

/* ---- reference loops ---------------------------------------------------- */

/* A convolution's geometry with up to 3 spatial dimensions (unused ones
 * of size 1, kernel 1, stride 1). */
typedef struct cgeom {
  int nsp;
  int64_t N, C, M, G;
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} cgeom;

static int64_t prod3(const int64_t *v) { return v[0] * v[1] * v[2]; }

/* y = conv(x, w) + b, directly. */
static void ref_conv(const cgeom *g, const float *x, const float *w, const float *b, float *y) {
  int64_t Cg = g->C / g->G, Mg = g->M / g->G, IS = prod3(g->in), OS = prod3(g->out),
          KS = prod3(g->k);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (int64_t o0 = 0; o0 < g->out[0]; o0++)
        for (int64_t o1 = 0; o1 < g->out[1]; o1++)
          for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
            double acc = b ? b[m] : 0;
            int64_t grp = m / Mg;
            for (int64_t c = 0; c < Cg; c++)
              for (int64_t k0 = 0; k0 < g->k[0]; k0++)
                for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                  for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                    int64_t i0 = o0 * g->s[0] - g->pb[0] + k0 * g->d[0];
                    int64_t i1 = o1 * g->s[1] - g->pb[1] + k1 * g->d[1];
                    int64_t i2 = o2 * g->s[2] - g->pb[2] + k2 * g->d[2];
                    if (i0 < 0 || i0 >= g->in[0] || i1 < 0 || i1 >= g->in[1] || i2 < 0 ||
                        i2 >= g->in[2])
                      continue;
                    double xv =
                        x[(n * g->C + grp * Cg + c) * IS + (i0 * g->in[1] + i1) * g->in[2] + i2];
                    double wv = w[(m * Cg + c) * KS + (k0 * g->k[1] + k1) * g->k[2] + k2];
                    acc += xv * wv;
                  }
            y[(n * g->M + m) * OS + (o0 * g->out[1] + o1) * g->out[2] + o2] = (float)acc;
          }
}

/* y = conv_transpose(x, w) + b: every input element scattered through the
 * kernel, W being [C, M/G, k...]. */
static void ref_deconv(const cgeom *g, const float *x, const float *w, const float *b, float *y) {
  int64_t Cg = g->C / g->G, Mg = g->M / g->G, IS = prod3(g->in), OS = prod3(g->out),
          KS = prod3(g->k);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (int64_t i = 0; i < OS; i++)
        y[(n * g->M + m) * OS + i] = b ? b[m] : 0;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t c = 0; c < g->C; c++)
      for (int64_t i0 = 0; i0 < g->in[0]; i0++)
        for (int64_t i1 = 0; i1 < g->in[1]; i1++)
          for (int64_t i2 = 0; i2 < g->in[2]; i2++) {
            float xv = x[(n * g->C + c) * IS + (i0 * g->in[1] + i1) * g->in[2] + i2];
            int64_t grp = c / Cg;
            for (int64_t mm = 0; mm < Mg; mm++)
              for (int64_t k0 = 0; k0 < g->k[0]; k0++)
                for (int64_t k1 = 0; k1 < g->k[1]; k1++)
                  for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                    int64_t o0 = i0 * g->s[0] + k0 * g->d[0] - g->pb[0];
                    int64_t o1 = i1 * g->s[1] + k1 * g->d[1] - g->pb[1];
                    int64_t o2 = i2 * g->s[2] + k2 * g->d[2] - g->pb[2];
                    if (o0 < 0 || o0 >= g->out[0] || o1 < 0 || o1 >= g->out[1] || o2 < 0 ||
                        o2 >= g->out[2])
                      continue;
                    float wv = w[(c * Mg + mm) * KS + (k0 * g->k[1] + k1) * g->k[2] + k2];
                    y[(n * g->M + grp * Mg + mm) * OS + (o0 * g->out[1] + o1) * g->out[2] + o2] +=
                        xv * wv;
                  }
          }
}

/* ---- Conv --------------------------------------------------------------- */

typedef struct conv_case {
  const char *what;
  int nsp;
  int64_t N, C, M, G;
  int64_t in[3], k[3], s[3], d[3], pads[6];
  const char *auto_pad; /* NULL: explicit pads */
  bool bias;
} conv_case;

/* Fills in the geometry the specification gives for c. */
static void conv_geometry(const conv_case *c, cgeom *g) {
  memset(g, 0, sizeof *g);
  g->nsp = c->nsp;
  g->N = c->N;
  g->C = c->C;
  g->M = c->M;
  g->G = c->G;
  for (int i = 0; i < 3; i++) {
    bool used = i < c->nsp;
    g->in[i] = used ? c->in[i] : 1;
    g->k[i] = used ? c->k[i] : 1;
    g->s[i] = used && c->s[i] ? c->s[i] : 1;
    g->d[i] = used && c->d[i] ? c->d[i] : 1;
    g->pb[i] = used ? c->pads[i] : 0;
    g->pe[i] = used ? c->pads[c->nsp + i] : 0;
    int64_t ext = (g->k[i] - 1) * g->d[i] + 1;
    if (used && c->auto_pad && strcmp(c->auto_pad, "VALID") == 0) g->pb[i] = g->pe[i] = 0;
    if (used && c->auto_pad && strncmp(c->auto_pad, "SAME", 4) == 0) {
      int64_t out = (g->in[i] + g->s[i] - 1) / g->s[i];
      int64_t total = (out - 1) * g->s[i] + ext - g->in[i];
      if (total < 0) total = 0;
      g->pb[i] = strcmp(c->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
      g->pe[i] = total - g->pb[i];
    }
    g->out[i] = (g->in[i] + g->pb[i] + g->pe[i] - ext) / g->s[i] + 1;
  }
}

/* Builds a one-Conv model for c with constant weights (or weights as a
 * second input when w_input), runs it and compares with ref_conv. */
static void check_conv(const conv_case *c, bool w_input) {
  cgeom g;
  conv_geometry(c, &g);
  int nd = c->nsp + 2;
  int64_t xd[5] = {g.N, g.C}, wd[5] = {g.M, g.C / g.G}, yd[5] = {g.N, g.M};
  for (int i = 0; i < c->nsp; i++) {
    xd[2 + i] = g.in[i];
    wd[2 + i] = g.k[i];
    yd[2 + i] = g.out[i];
  }
  int64_t nx = shape_elements(xd, nd), nw = shape_elements(wd, nd), ny = shape_elements(yd, nd);
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(g.M * sizeof *b),
        *want = malloc(ny * sizeof *want);
  fill(x, nx, 1);
  fill(w, nw, 2);
  fill(b, g.M, 3);
  ref_conv(&g, x, w, c->bias ? b : NULL, want);

  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, nd, xd);
  if (w_input)
    mb_input(m, "w", T_FLOAT, nd, wd);
  else
    mb_init(m, "w", T_FLOAT, nd, wd, w);
  if (c->bias) mb_init(m, "b", T_FLOAT, 1, &g.M, b);
  Onnx__NodeProto *n = mb_node(m, "conv", "Conv", c->bias ? "x,w,b" : "x,w", "y");
  int64_t s[3], d[3];
  for (int i = 0; i < c->nsp; i++) {
    s[i] = g.s[i];
    d[i] = g.d[i];
  }
  attr_ints(m, n, "strides", (size_t)c->nsp, s);
  attr_ints(m, n, "dilations", (size_t)c->nsp, d);
  attr_ints(m, n, "kernel_shape", (size_t)c->nsp, g.k);
  if (c->G > 1) attr_i(m, n, "group", c->G);
  if (c->auto_pad)
    attr_s(m, n, "auto_pad", c->auto_pad);
  else
    attr_ints(m, n, "pads", 2 * (size_t)c->nsp, c->pads);
  mb_output(m, "y", T_FLOAT, nd, yd);
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  inferd_tensor in[2] = {tin("x", INFERD_TYPE_FP32, nd, xd, x),
                         tin("w", INFERD_TYPE_FP32, nd, wd, w)};
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  int rc = run(&md, &t, w_input ? 2 : 1, in, 1, &y, NULL);
  if (rc) print_message("%s: %s\n", c->what, md.err);
  assert_int_equal(rc, 0);
  print_message("  conv %s%s\n", c->what, w_input ? " (weights as input)" : "");
  expect_f32(&y, nd, yd, want, 1e-4f);
  run_done(&t);
  unload(&md);
  free(x);
  free(w);
  free(b);
  free(want);
}

/* 1..9 convolved with a diagonal 2x2 kernel, plus a bias, by hand. */
static void conv_by_hand(void **state) {
  mb *m = mb_new(11);
  mb_input(m, "x", T_FLOAT, 4, D(1, 1, 3, 3));
  mb_init(m, "w", T_FLOAT, 4, D(1, 1, 2, 2), F(1, 0, 0, 1));
  mb_init(m, "b", T_FLOAT, 1, D(1), F(0.5f));
  mb_node(m, "c", "Conv", "x,w,b", "y");
  mb_output(m, "y", T_FLOAT, 4, D(1, 1, 2, 2));
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 4, D(1, 1, 3, 3), F(1, 2, 3, 4, 5, 6, 7, 8, 9));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  expect_f32(&y, 4, D(1, 1, 2, 2), F(6.5f, 8.5f, 12.5f, 14.5f), 1e-6f);
  run_done(&t);
  unload(&md);
}

/* clang-format off */
static const conv_case conv_cases[] = {
    {"2-D, pads 1", 2, 1, 2, 3, 1, {5, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"strides, asymmetric pads", 2, 2, 3, 4, 1, {7, 5}, {3, 2}, {2, 1}, {1, 1}, {1, 0, 2, 1}, NULL, true},
    {"dilations", 2, 1, 2, 2, 1, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL, false},
    {"group 2", 2, 1, 4, 6, 2, {6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"depthwise, blocked", 2, 2, 8, 8, 8, {10, 10}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"1-D", 1, 1, 3, 2, 1, {11}, {3}, {2}, {1}, {1, 1}, NULL, true},
    {"3-D", 3, 1, 2, 3, 1, {4, 5, 6}, {2, 3, 3}, {1, 2, 1}, {1, 1, 1}, {0, 1, 1, 1, 0, 1}, NULL, true},
    {"SAME_UPPER", 2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", true},
    {"SAME_LOWER", 2, 1, 2, 3, 1, {7, 8}, {3, 4}, {2, 2}, {1, 1}, {0}, "SAME_LOWER", true},
    {"VALID", 2, 1, 2, 3, 1, {7, 8}, {3, 3}, {2, 3}, {1, 1}, {0}, "VALID", false},
    {"blocked 16->16", 2, 2, 16, 16, 1, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"plain 3 -> blocked 16", 2, 1, 3, 16, 1, {20, 20}, {7, 7}, {2, 2}, {1, 1}, {3, 3, 3, 3}, NULL, true},
    {"1x1, blocked", 2, 1, 16, 32, 1, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, true},
    {"group 2 of 8->16, blocked", 2, 1, 16, 32, 2, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    /* 3x3 stride 1 from 32 channels: the Winograd kernel where it runs */
    {"3x3, 32->48, odd output", 2, 2, 32, 48, 1, {9, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 0, 1, 2}, NULL, true},
    {"3x3, 40->40 (an 8-wide column block), no pads", 2, 1, 40, 40, 1, {5, 6}, {3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, false},
    {"3x3, 64->64, many tiles", 2, 3, 64, 64, 1, {30, 29}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, true},
    {"3x3, 256->16, pads 2", 2, 1, 256, 16, 1, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {2, 2, 2, 2}, NULL, true},
};
/* clang-format on */

static void conv_attributes(void **state) {
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
    check_conv(&conv_cases[i], false);
  check_conv(&conv_cases[1], true); /* weights reordered at every run */
  check_conv(&conv_cases[4], true);
}

/* ---- ConvTranspose ------------------------------------------------------ */

typedef struct deconv_case {
  const char *what;
  int nsp;
  int64_t N, C, M, G;
  int64_t in[3], k[3], s[3], d[3], pads[6], out_pad[3], out_shape[3];
  const char *auto_pad;
} deconv_case;

/* The specification's output size and pads for c. */
static void deconv_geometry(const deconv_case *c, cgeom *g) {
  memset(g, 0, sizeof *g);
  g->nsp = c->nsp;
  g->N = c->N;
  g->C = c->C;
  g->M = c->M;
  g->G = c->G;
  for (int i = 0; i < 3; i++) {
    bool used = i < c->nsp;
    g->in[i] = used ? c->in[i] : 1;
    g->k[i] = used ? c->k[i] : 1;
    g->s[i] = used && c->s[i] ? c->s[i] : 1;
    g->d[i] = used && c->d[i] ? c->d[i] : 1;
    int64_t op = used ? c->out_pad[i] : 0, ext = (g->k[i] - 1) * g->d[i] + 1;
    int64_t full = g->s[i] * (g->in[i] - 1) + op + ext;
    g->pb[i] = used ? c->pads[i] : 0;
    g->pe[i] = used ? c->pads[c->nsp + i] : 0;
    if (used && (c->out_shape[0] || c->auto_pad)) {
      int64_t out = c->out_shape[0] ? c->out_shape[i] : g->in[i] * g->s[i];
      int64_t total = full - out;
      bool lower = c->auto_pad && strcmp(c->auto_pad, "SAME_LOWER") == 0;
      g->pe[i] = lower ? total / 2 : total - total / 2;
      g->pb[i] = total - g->pe[i];
      if (g->pb[i] < 0) { /* the extra rows go at the end */
        g->pe[i] += g->pb[i];
        g->pb[i] = 0;
      }
    }
    g->out[i] = full - g->pb[i] - g->pe[i];
  }
}

static void check_deconv(const deconv_case *c) {
  cgeom g;
  deconv_geometry(c, &g);
  int nd = c->nsp + 2;
  int64_t xd[5] = {g.N, g.C}, wd[5] = {g.C, g.M / g.G}, yd[5] = {g.N, g.M};
  for (int i = 0; i < c->nsp; i++) {
    xd[2 + i] = g.in[i];
    wd[2 + i] = g.k[i];
    yd[2 + i] = g.out[i];
  }
  int64_t nx = shape_elements(xd, nd), nw = shape_elements(wd, nd), ny = shape_elements(yd, nd);
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(g.M * sizeof *b),
        *want = malloc(ny * sizeof *want);
  fill(x, nx, 4);
  fill(w, nw, 5);
  fill(b, g.M, 6);
  ref_deconv(&g, x, w, b, want);

  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, nd, xd);
  mb_init(m, "w", T_FLOAT, nd, wd, w);
  mb_init(m, "b", T_FLOAT, 1, &g.M, b);
  Onnx__NodeProto *n = mb_node(m, "deconv", "ConvTranspose", "x,w,b", "y");
  int64_t s[3], d[3];
  for (int i = 0; i < c->nsp; i++) {
    s[i] = g.s[i];
    d[i] = g.d[i];
  }
  attr_ints(m, n, "strides", (size_t)c->nsp, s);
  attr_ints(m, n, "dilations", (size_t)c->nsp, d);
  if (c->G > 1) attr_i(m, n, "group", c->G);
  if (c->auto_pad) attr_s(m, n, "auto_pad", c->auto_pad);
  if (!c->auto_pad && !c->out_shape[0]) attr_ints(m, n, "pads", 2 * (size_t)c->nsp, c->pads);
  if (c->out_pad[0] || (c->nsp > 1 && c->out_pad[1]))
    attr_ints(m, n, "output_padding", (size_t)c->nsp, c->out_pad);
  if (c->out_shape[0]) attr_ints(m, n, "output_shape", (size_t)c->nsp, c->out_shape);
  mb_output(m, "y", T_FLOAT, nd, yd);
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, nd, xd, x);
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  int rc = run(&md, &t, 1, &in, 1, &y, NULL);
  if (rc) print_message("%s: %s\n", c->what, md.err);
  assert_int_equal(rc, 0);
  print_message("  conv_transpose %s\n", c->what);
  expect_f32(&y, nd, yd, want, 1e-4f);
  run_done(&t);
  unload(&md);
  free(x);
  free(w);
  free(b);
  free(want);
}

/* A 2x2 kernel of ones at stride 2 copies each input into a 2x2 block. */
static void conv_transpose_by_hand(void **state) {
  mb *m = mb_new(11);
  mb_input(m, "x", T_FLOAT, 4, D(1, 1, 2, 2));
  mb_init(m, "w", T_FLOAT, 4, D(1, 1, 2, 2), F(1, 1, 1, 1));
  Onnx__NodeProto *n = mb_node(m, "t", "ConvTranspose", "x,w", "y");
  attr_ints(m, n, "strides", 2, D(2, 2));
  mb_output(m, "y", T_FLOAT, 4, D(1, 1, 4, 4));
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 4, D(1, 1, 2, 2), F(1, 2, 3, 4));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  expect_f32(&y, 4, D(1, 1, 4, 4), F(1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4), 0);
  run_done(&t);
  unload(&md);
}

/* clang-format off */
static const deconv_case deconv_cases[] = {
    {"basic", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {0}, {0}, {0}, NULL},
    {"strides and pads", 2, 2, 2, 3, 1, {3, 4}, {3, 3}, {3, 2}, {1, 1}, {1, 2, 1, 0}, {0}, {0}, NULL},
    {"output_padding", 2, 1, 2, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {0}, NULL},
    {"output_shape beyond the kernel", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0}, {0}, {10, 8}, NULL},
    {"output_shape within", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0}, {0}, {8, 6}, NULL},
    {"group 2", 2, 1, 4, 6, 2, {4, 3}, {2, 3}, {1, 2}, {1, 1}, {0, 1, 0, 1}, {0}, {0}, NULL},
    {"dilations", 2, 1, 2, 2, 1, {3, 3}, {2, 2}, {1, 1}, {2, 2}, {0}, {0}, {0}, NULL},
    {"SAME_UPPER", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {0}, "SAME_UPPER"},
    {"SAME_LOWER", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {0}, "SAME_LOWER"},
    {"1-D", 1, 1, 2, 3, 1, {5}, {3}, {2}, {1}, {1, 0}, {1}, {0}, NULL},
    {"3-D", 3, 1, 2, 2, 1, {2, 3, 3}, {2, 2, 2}, {2, 1, 2}, {1, 1, 1}, {0, 1, 0, 0, 0, 1}, {0}, {0}, NULL},
};
/* clang-format on */

static void conv_transpose_attributes(void **state) {
  for (size_t i = 0; i < sizeof deconv_cases / sizeof deconv_cases[0]; i++)
    check_deconv(&deconv_cases[i]);
}

/* ---- pooling ------------------------------------------------------------ */

/* One pooling node on x [1,1,h,w]: the output, with Indices when asked. */
typedef struct pool_spec {
  const char *op;
  int64_t k[2], s[2], d[2], pads[4];
  bool ceil, include_pad, indices, col_major;
  const char *auto_pad;
} pool_spec;

static void run_pool(const pool_spec *p, int64_t h, int64_t w, const float *x, int64_t oh,
                     int64_t ow, const float *want, const int64_t *want_idx) {
  mb *m = mb_new(12);
  mb_input(m, "x", T_FLOAT, 4, D(1, 1, h, w));
  Onnx__NodeProto *n = mb_node(m, "p", p->op, "x", p->indices ? "y,i" : "y");
  attr_ints(m, n, "kernel_shape", 2, p->k);
  if (p->s[0]) attr_ints(m, n, "strides", 2, p->s);
  if (p->d[0]) attr_ints(m, n, "dilations", 2, p->d);
  if (p->pads[0] || p->pads[1] || p->pads[2] || p->pads[3]) attr_ints(m, n, "pads", 4, p->pads);
  if (p->ceil) attr_i(m, n, "ceil_mode", 1);
  if (p->include_pad) attr_i(m, n, "count_include_pad", 1);
  if (p->col_major) attr_i(m, n, "storage_order", 1);
  if (p->auto_pad) attr_s(m, n, "auto_pad", p->auto_pad);
  mb_output(m, "y", T_FLOAT, 4, D(1, 1, oh, ow));
  if (p->indices) {
    Onnx__ValueInfoProto *vi = mb_value_info(m, "i", T_FLOAT, 4, D(1, 1, oh, ow));
    vi->type->tensor_type->elem_type = T_INT64;
    m->outs[m->graph.n_output++] = vi;
  }
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, 4, D(1, 1, h, w), x);
  inferd_tensor y[2] = {{.name = "y", .dtype = INFERD_TYPE_FP32},
                        {.name = "i", .dtype = INFERD_TYPE_INT64}};
  test_exec t;
  int rc = run(&md, &t, 1, &in, p->indices ? 2 : 1, y, NULL);
  if (rc) print_message("%s\n", md.err);
  assert_int_equal(rc, 0);
  expect_f32(&y[0], 4, D(1, 1, oh, ow), want, 1e-6f);
  if (p->indices) {
    assert_int_equal(y[1].dtype, INFERD_TYPE_INT64);
    assert_memory_equal(y[1].data, want_idx, (size_t)(oh * ow) * sizeof(int64_t));
  }
  run_done(&t);
  unload(&md);
}

static const float grid[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const float shuffled[] = {5, 1, 9, 3, 2, 8, 4, 7, 6};

static void maxpool_by_hand(void **state) {
  /* ceil_mode: 4x4, kernel 3, stride 2 -> 2x2, the last windows cut short */
  run_pool(
      &(pool_spec){.op = "MaxPool", .k = {3, 3}, .s = {2, 2}, .d = {0}, .pads = {0}, .ceil = true},
      4, 4, grid, 2, 2, F(11, 12, 15, 16), NULL);
  /* floor: one window */
  run_pool(&(pool_spec){.op = "MaxPool", .k = {3, 3}, .s = {2, 2}}, 4, 4, grid, 1, 1, F(11), NULL);
  /* dilations 2: kernel 2 reaches 3 */
  run_pool(&(pool_spec){.op = "MaxPool", .k = {2, 2}, .s = {1, 1}, .d = {2, 2}}, 4, 4, grid, 2, 2,
           F(11, 12, 15, 16), NULL);
  /* pads: the corners see the padding, never pick it */
  run_pool(&(pool_spec){.op = "MaxPool", .k = {2, 2}, .s = {2, 2}, .d = {0}, .pads = {1, 1, 1, 1}},
           3, 3, shuffled, 2, 2, F(5, 9, 4, 8), NULL);
  /* Indices, row-major then column-major */
  run_pool(&(pool_spec){.op = "MaxPool", .k = {2, 2}, .s = {1, 1}, .indices = true}, 3, 3, shuffled,
           2, 2, F(5, 9, 7, 8), D(0, 2, 7, 5));
  run_pool(
      &(pool_spec){.op = "MaxPool", .k = {2, 2}, .s = {1, 1}, .indices = true, .col_major = true},
      3, 3, shuffled, 2, 2, F(5, 9, 7, 8), D(0, 6, 5, 7));
  /* SAME_UPPER on 3x3 with kernel 2: pads at the end */
  run_pool(&(pool_spec){.op = "MaxPool", .k = {2, 2}, .s = {1, 1}, .auto_pad = "SAME_UPPER"}, 3, 3,
           shuffled, 3, 3, F(5, 9, 9, 7, 8, 8, 7, 7, 6), NULL);
}

static void avgpool_by_hand(void **state) {
  /* pads 1, stride 2 on 3x3: count_include_pad divides by 4, else by what is inside */
  run_pool(
      &(pool_spec){.op = "AveragePool", .k = {2, 2}, .s = {2, 2}, .d = {0}, .pads = {1, 1, 1, 1}},
      3, 3, shuffled, 2, 2, F(5, 5, 3.5f, 5.75f), NULL);
  run_pool(&(pool_spec){.op = "AveragePool",
                        .k = {2, 2},
                        .s = {2, 2},
                        .d = {0},
                        .pads = {1, 1, 1, 1},
                        .include_pad = true},
           3, 3, shuffled, 2, 2, F(1.25f, 2.5f, 1.75f, 5.75f), NULL);
  /* ceil_mode: the cut-short windows average what they hold */
  run_pool(&(pool_spec){.op = "AveragePool", .k = {3, 3}, .s = {2, 2}, .ceil = true}, 4, 4, grid, 2,
           2, F(6, 7.5f, 12, 13.5f), NULL);
  /* ceil_mode with count_include_pad: the declared padding counts, the
   * ceil's does not (pads 1 at the start only; the last row and column of
   * windows reach one past the input) */
  run_pool(&(pool_spec){.op = "AveragePool",
                        .k = {2, 2},
                        .s = {2, 2},
                        .d = {0},
                        .pads = {1, 1, 0, 0},
                        .ceil = true,
                        .include_pad = true},
           4, 4, grid, 3, 3, F(0.25f, 1.25f, 2, 3.5f, 8.5f, 10, 6.5f, 14.5f, 16), NULL);
}

/* GlobalAveragePool and GlobalMaxPool of two channels. */
static void global_pools(void **state) {
  for (int max = 0; max < 2; max++) {
    mb *m = mb_new(13);
    mb_input(m, "x", T_FLOAT, 4, D(1, 2, 2, 2));
    mb_node(m, "g", max ? "GlobalMaxPool" : "GlobalAveragePool", "x", "y");
    mb_output(m, "y", T_FLOAT, 4, D(1, 2, 1, 1));
    model md;
    must_load_opt(m, "all", &md);
    mb_free(m);
    inferd_tensor x = tin("x", INFERD_TYPE_FP32, 4, D(1, 2, 2, 2), F(1, 2, 3, 6, -1, -2, -3, -4));
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
    expect_f32(&y, 4, D(1, 2, 1, 1), max ? F(6, -1) : F(3, -2.5f), 1e-6f);
    run_done(&t);
    unload(&md);
  }
}

/* ---- normalisation ------------------------------------------------------ */

static void batchnorm_by_hand(void **state) {
  mb *m = mb_new(15);
  mb_input(m, "x", T_FLOAT, 4, D(1, 2, 1, 2));
  mb_init(m, "s", T_FLOAT, 1, D(2), F(2, 1));
  mb_init(m, "b", T_FLOAT, 1, D(2), F(1, 0));
  mb_init(m, "mean", T_FLOAT, 1, D(2), F(0.5f, -1));
  mb_init(m, "var", T_FLOAT, 1, D(2), F(3, 0));
  Onnx__NodeProto *n = mb_node(m, "bn", "BatchNormalization", "x,s,b,mean,var", "y");
  attr_f(m, n, "epsilon", 1.0f);
  mb_output(m, "y", T_FLOAT, 4, D(1, 2, 1, 2));
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  /* channel 0: (x - 0.5) / 2 * 2 + 1; channel 1: x + 1 */
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 4, D(1, 2, 1, 2), F(0.5f, 2.5f, 1, -3));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  expect_f32(&y, 4, D(1, 2, 1, 2), F(1, 3, 2, -2), 1e-6f);
  run_done(&t);
  unload(&md);
}

/* Training-mode outputs of the old form are refused with a reason. */
static void batchnorm_training_refused(void **state) {
  mb *m = mb_new(9);
  mb_input(m, "x", T_FLOAT, 4, D(1, 2, 1, 2));
  for (int k = 0; k < 4; k++) {
    char name[8];
    snprintf(name, sizeof name, "p%d", k);
    mb_init(m, name, T_FLOAT, 1, D(2), F(1, 1));
  }
  mb_node(m, "bn", "BatchNormalization", "x,p0,p1,p2,p3", "y,rm,rv");
  mb_output(m, "y", T_FLOAT, 4, D(1, 2, 1, 2));
  model md;
  assert_int_equal(load_opt(m, "all", "1", &md), -ENOTSUP);
  mb_free(m);
  assert_non_null(strstr(md.err, "training-mode outputs"));
}

static void instancenorm_by_hand(void **state) {
  mb *m = mb_new(6);
  mb_input(m, "x", T_FLOAT, 3, D(1, 2, 4));
  mb_init(m, "s", T_FLOAT, 1, D(2), F(1, 2));
  mb_init(m, "b", T_FLOAT, 1, D(2), F(0, 1));
  Onnx__NodeProto *n = mb_node(m, "in", "InstanceNormalization", "x,s,b", "y");
  attr_f(m, n, "epsilon", 0);
  mb_output(m, "y", T_FLOAT, 3, D(1, 2, 4));
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  /* each plane has mean 2.5 (or 5) and variance 1.25 (or 5) */
  inferd_tensor x = tin("x", INFERD_TYPE_FP32, 3, D(1, 2, 4), F(1, 2, 3, 4, 2, 4, 6, 8));
  inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec t;
  assert_int_equal(run(&md, &t, 1, &x, 1, &y, NULL), 0);
  float r = 1 / sqrtf(1.25f);
  expect_f32(&y, 3, D(1, 2, 4),
             F(-1.5f * r, -0.5f * r, 0.5f * r, 1.5f * r, 1 - 3 * r, 1 - r, 1 + r, 1 + 3 * r),
             1e-5f);
  run_done(&t);
  unload(&md);
}

/* LRN of odd size (oneDNN) and even size (the loop) against the formula. */
static void lrn_sizes(void **state) {
  const int64_t C = 6, S = 5;
  float x[6 * 5], want[6 * 5];
  fill(x, C * S, 7);
  for (int64_t size = 2; size <= 5; size++) {
    float alpha = 0.3f, beta = 0.6f, bias = 1.5f;
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < S; i++) {
        double sq = 0;
        for (int64_t k = c - lo; k <= c + hi; k++)
          if (k >= 0 && k < C) sq += (double)x[k * S + i] * x[k * S + i];
        want[c * S + i] = (float)(x[c * S + i] / pow(bias + alpha / size * sq, beta));
      }
    mb *m = mb_new(13);
    mb_input(m, "x", T_FLOAT, 3, D(1, C, S));
    Onnx__NodeProto *n = mb_node(m, "lrn", "LRN", "x", "y");
    attr_i(m, n, "size", size);
    attr_f(m, n, "alpha", alpha);
    attr_f(m, n, "beta", beta);
    attr_f(m, n, "bias", bias);
    mb_output(m, "y", T_FLOAT, 3, D(1, C, S));
    model md;
    must_load_opt(m, "all", &md);
    mb_free(m);
    inferd_tensor in = tin("x", INFERD_TYPE_FP32, 3, D(1, C, S), x);
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(&md, &t, 1, &in, 1, &y, NULL), 0);
    expect_f32(&y, 3, D(1, C, S), want, 1e-5f);
    run_done(&t);
    unload(&md);
  }
}

/* ---- fusion and layouts ------------------------------------------------- */

/* Adds a Conv node "name" from `in` to `out` with random weights (and
 * bias), kernel k, pads k/2, group g. */
static void conv_node(mb *m, const char *name, const char *in, const char *out, int64_t C,
                      int64_t M, int64_t k, int64_t g, uint32_t seed) {
  char w[64], b[64], ins[200];
  snprintf(w, sizeof w, "%s.w", name);
  snprintf(b, sizeof b, "%s.b", name);
  snprintf(ins, sizeof ins, "%s,%s,%s", in, w, b);
  int64_t nw = M * (C / g) * k * k;
  float *wd = malloc(nw * sizeof *wd), bd[64];
  fill(wd, nw, seed);
  fill(bd, M, seed + 100);
  for (int64_t i = 0; i < nw; i++)
    wd[i] *= 0.5f;
  mb_init(m, w, T_FLOAT, 4, D(M, C / g, k, k), wd);
  mb_init(m, b, T_FLOAT, 1, &M, bd);
  free(wd);
  Onnx__NodeProto *n = mb_node(m, name, "Conv", ins, out);
  attr_ints(m, n, "kernel_shape", 2, D(k, k));
  attr_ints(m, n, "pads", 4, D(k / 2, k / 2, k / 2, k / 2));
  if (g > 1) attr_i(m, n, "group", g);
}

/* BatchNormalization "name" with random positive variance. */
static void bn_node(mb *m, const char *name, const char *in, const char *out, int64_t C,
                    uint32_t seed) {
  const char *parts[4] = {"s", "b", "m", "v"};
  char names[4][64], ins[300];
  float v[64];
  for (int k = 0; k < 4; k++) {
    snprintf(names[k], sizeof names[k], "%s.%s", name, parts[k]);
    fill(v, C, seed + (uint32_t)k);
    if (k == 3)
      for (int64_t i = 0; i < C; i++)
        v[i] = v[i] * v[i] + 0.5f;
    mb_init(m, names[k], T_FLOAT, 1, &C, v);
  }
  snprintf(ins, sizeof ins, "%s,%s,%s,%s,%s", in, names[0], names[1], names[2], names[3]);
  attr_f(m, mb_node(m, name, "BatchNormalization", ins, out), "epsilon", 1e-3f);
}

/* A small ResNet/MobileNet-like graph: Conv+BN+Relu, Conv+BN+Add(skip from a
 * 1x1 Conv)+Relu, Conv+Clip (ReLU6), depthwise Conv+LeakyRelu,
 * Conv+HardSwish, Conv+Sigmoid, a residual that broadcasts (a pooled
 * branch), MaxPool, GlobalAveragePool, Flatten, MatMul+Add (bias)+Relu. */
static mb *cnn_model(void) {
  mb *m = mb_new(14); /* HardSwish */
  mb_input(m, "x", T_FLOAT, 4, D(-1, 8, 10, 10));
  conv_node(m, "c1", "x", "c1", 8, 16, 3, 1, 10);
  bn_node(m, "bn1", "c1", "b1", 16, 20);
  mb_node(m, "r1", "Relu", "b1", "r1");
  conv_node(m, "c2", "r1", "c2", 16, 16, 3, 1, 30);
  bn_node(m, "bn2", "c2", "b2", 16, 40);
  conv_node(m, "skip", "x", "skip", 8, 16, 1, 1, 50);
  mb_node(m, "add", "Add", "b2,skip", "a2");
  mb_node(m, "r2", "Relu", "a2", "r2");
  conv_node(m, "c3", "r2", "c3", 16, 8, 3, 1, 60);
  mb_init(m, "lo", T_FLOAT, 0, NULL, F(0));
  mb_init(m, "hi", T_FLOAT, 0, NULL, F(6));
  mb_node(m, "clip", "Clip", "c3,lo,hi", "r3");
  conv_node(m, "dw", "r3", "dw", 8, 8, 3, 8, 70);
  attr_f(m, mb_node(m, "lrelu", "LeakyRelu", "dw", "r4"), "alpha", 0.1f);
  conv_node(m, "c5", "r4", "c5", 8, 16, 3, 1, 80);
  mb_node(m, "hs", "HardSwish", "c5", "r5");
  conv_node(m, "c6", "r5", "c6", 16, 16, 1, 1, 90);
  mb_node(m, "sig", "Sigmoid", "c6", "r6");
  mb_node(m, "gp", "GlobalAveragePool", "r5", "pooled");
  conv_node(m, "c7", "r6", "c7", 16, 16, 3, 1, 95);
  mb_node(m, "addb", "Add", "c7,pooled", "r7");
  Onnx__NodeProto *mp = mb_node(m, "mp", "MaxPool", "r7", "p7");
  attr_ints(m, mp, "kernel_shape", 2, D(2, 2));
  attr_ints(m, mp, "strides", 2, D(2, 2));
  mb_node(m, "gap", "GlobalAveragePool", "p7", "g7");
  attr_i(m, mb_node(m, "flat", "Flatten", "g7", "f7"), "axis", 1);
  float wf[16 * 10], bf[10];
  fill(wf, 160, 99);
  fill(bf, 10, 98);
  mb_init(m, "wf", T_FLOAT, 2, D(16, 10), wf);
  mb_init(m, "bf", T_FLOAT, 1, D(10), bf);
  mb_node(m, "fc", "MatMul", "f7,wf", "fc");
  mb_node(m, "fcb", "Add", "fc,bf", "fcb");
  mb_node(m, "fcr", "Relu", "fcb", "y");
  mb_output(m, "y", T_FLOAT, 2, D(-1, 10));
  return m;
}

/* Runs x through both models and compares. */
static void same_answers(model *a, model *b, const char *const *outs, size_t n_out, int ndim,
                         const int64_t *xd, const float *x) {
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, ndim, xd, x);
  inferd_tensor ya[4], yb[4];
  for (size_t j = 0; j < n_out; j++)
    ya[j] = yb[j] = (inferd_tensor){.name = outs[j], .dtype = INFERD_TYPE_FP32};
  test_exec ta, tb;
  int rc = run(a, &ta, 1, &in, n_out, ya, NULL);
  if (rc) print_message("%s\n", a->err);
  assert_int_equal(rc, 0);
  rc = run(b, &tb, 1, &in, n_out, yb, NULL);
  if (rc) print_message("%s\n", b->err);
  assert_int_equal(rc, 0);
  for (size_t j = 0; j < n_out; j++) {
    assert_int_equal(ya[j].ndim, yb[j].ndim);
    assert_memory_equal(ya[j].shape, yb[j].shape, (size_t)ya[j].ndim * sizeof ya[j].shape[0]);
    assert_int_equal(ya[j].byte_size, yb[j].byte_size);
    assert_true(
        close_f32(ya[j].data, yb[j].data, (int64_t)(ya[j].byte_size / sizeof(float)), 1e-5f));
  }
  run_done(&ta);
  run_done(&tb);
}

static void fused_equals_unfused(void **state) {
  mb *m = cnn_model();
  model fused, plain;
  must_load_opt(m, "all", &fused);
  must_load_opt(m, "none", &plain);
  mb_free(m);
  static float x[3 * 8 * 10 * 10];
  fill(x, 3 * 800, 11);
  const char *outs[] = {"y"};
  for (int64_t batch = 1; batch <= 3; batch += 2)
    same_answers(&fused, &plain, outs, 1, 4, D(batch, 8, 10, 10), x);
  unload(&fused);
  unload(&plain);
}

/* The Winograd kernel with fused post-operations (BatchNormalization,
 * Relu, residual sums in place and broadcast, LeakyRelu, Sigmoid) against
 * the graph as written, and against oneDNN's direct kernel. */
static void winograd_fused(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(-1, 32, 9, 11));
  conv_node(m, "c1", "x", "c1", 32, 32, 3, 1, 1);
  bn_node(m, "bn1", "c1", "b1", 32, 2);
  mb_node(m, "r1", "Relu", "b1", "r1");
  conv_node(m, "c2", "r1", "c2", 32, 32, 3, 1, 3);
  mb_node(m, "add", "Add", "x,c2", "a2");
  attr_f(m, mb_node(m, "lr", "LeakyRelu", "a2", "r2"), "alpha", 0.2f);
  mb_node(m, "gap", "GlobalAveragePool", "r2", "g");
  conv_node(m, "c3", "r2", "c3", 32, 40, 3, 1, 4);
  mb_node(m, "sig", "Sigmoid", "c3", "s3");
  conv_node(m, "c4", "s3", "c4", 40, 32, 3, 1, 5);
  mb_node(m, "addg", "Add", "c4,g", "a4"); /* g [N,32,1,1] broadcasts */
  mb_node(m, "r4", "Relu", "a4", "y");
  mb_output(m, "y", T_FLOAT, 4, D(-1, 32, 9, 11));
  model fused, plain, direct;
  must_load_opt(m, "all", &fused);
  must_load_opt(m, "none", &plain);
  setenv("INFERD_ONNX_NO_WINOGRAD", "1", 1);
  must_load_opt(m, "all", &direct);
  unsetenv("INFERD_ONNX_NO_WINOGRAD");
  mb_free(m);
  static float x[2 * 32 * 99];
  fill(x, 2 * 32 * 99, 13);
  const char *outs[] = {"y"};
  same_answers(&fused, &plain, outs, 1, 4, D(2, 32, 9, 11), x);
  same_answers(&fused, &direct, outs, 1, 4, D(2, 32, 9, 11), x);
  unload(&fused);
  unload(&plain);
  unload(&direct);
}

/* A blocked Conv result read by a graph output (its own name), by Flatten
 * (plain only), by MaxPool (stays blocked, then a graph output) and by a
 * second Conv whose result is a graph output too. */
static void layout_boundaries(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(2, 8, 6, 6));
  conv_node(m, "c1", "x", "c", 8, 16, 3, 1, 1);
  attr_i(m, mb_node(m, "flat", "Flatten", "c", "f"), "axis", 1);
  Onnx__NodeProto *mp = mb_node(m, "mp", "MaxPool", "c", "p");
  attr_ints(m, mp, "kernel_shape", 2, D(2, 2));
  attr_ints(m, mp, "strides", 2, D(2, 2));
  conv_node(m, "c2", "c", "c2", 16, 8, 1, 1, 2);
  mb_output(m, "c", T_FLOAT, 4, D(2, 16, 6, 6));
  mb_output(m, "f", T_FLOAT, 2, D(2, 16 * 36));
  mb_output(m, "p", T_FLOAT, 4, D(2, 16, 3, 3));
  mb_output(m, "c2", T_FLOAT, 4, D(2, 8, 6, 6));
  model fused, plain;
  must_load_opt(m, "all", &fused);
  must_load_opt(m, "none", &plain);
  mb_free(m);
  /* c and c2 are written blocked and, being graph outputs, reordered into
   * their plain selves (Flatten reads plain c); p, pooled blocked, too;
   * with blocks of 8, x (8 channels) is reordered for c1, and c2 (8
   * channels) is blocked; with blocks of 16 neither is */
  const onnx_model *om = fused.m;
  assert_int_equal(om->n_reorders, onnx_block_size() == 8 ? 4 : 2);
  static float x[2 * 8 * 36];
  fill(x, 2 * 8 * 36, 12);
  const char *outs[] = {"c", "f", "p", "c2"};
  same_answers(&fused, &plain, outs, 4, 4, D(2, 8, 6, 6), x);
  unload(&fused);
  unload(&plain);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(conv_by_hand),
      cmocka_unit_test(conv_attributes),
      cmocka_unit_test(conv_transpose_by_hand),
      cmocka_unit_test(conv_transpose_attributes),
      cmocka_unit_test(maxpool_by_hand),
      cmocka_unit_test(avgpool_by_hand),
      cmocka_unit_test(global_pools),
      cmocka_unit_test(batchnorm_by_hand),
      cmocka_unit_test(batchnorm_training_refused),
      cmocka_unit_test(instancenorm_by_hand),
      cmocka_unit_test(lrn_sizes),
      cmocka_unit_test(fused_equals_unfused),
      cmocka_unit_test(winograd_fused),
      cmocka_unit_test(layout_boundaries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
