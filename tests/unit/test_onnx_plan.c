/* Unit tests of the ONNX executor's load-time and planning work: which
 * fusions are applied (Conv with BatchNormalization, activations and
 * residual Adds; MatMul with a bias) and which must not be (a value read
 * twice or wanted as an output, an Add of a constant, statistics that are
 * not constant), weights dropped once packed, residual sums placed in
 * place only when the residual dies there, per-plan operator state freed
 * with its plan, and results that do not depend on the batch a sample
 * comes in. Graphs are built here with protobuf-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "backends/onnx/onnx_dnnl.h"
#include "onnx_test_run.h"

/* ---- helpers ------------------------------------------------------------ */

static int value_named(const onnx_model *m, const char *name) {
  for (size_t v = 0; v < m->n_values; v++)
    if (strcmp(m->values[v].name, name) == 0) return (int)v;
  fail_msg("no value '%s'", name);
  return -1;
}

/* The node producing value name, or NULL. */
static const onnx_node *producer(const onnx_model *m, const char *name) {
  int v = value_named(m, name);
  for (size_t i = 0; i < m->n_nodes; i++)
    for (int k = 0; k < m->nodes[i].n_out; k++)
      if (m->nodes[i].out[k] == v) return &m->nodes[i];
  return NULL;
}

static size_t count_op(const onnx_model *m, const char *op_type) {
  size_t n = 0;
  for (size_t i = 0; i < m->n_nodes; i++)
    n += strcmp(m->nodes[i].op_type, op_type) == 0;
  return n;
}

/* A Conv "name" (k x k, pads k/2) with constant weights and bias. */
static void conv_node(mb *m, const char *name, const char *in, const char *out, int64_t C,
                      int64_t M, int64_t k, uint32_t seed) {
  char w[64], b[64], ins[200];
  snprintf(w, sizeof w, "%s.w", name);
  snprintf(b, sizeof b, "%s.b", name);
  snprintf(ins, sizeof ins, "%s,%s,%s", in, w, b);
  int64_t nw = M * C * k * k;
  float *wd = malloc(nw * sizeof *wd), bd[64];
  fill(wd, nw, seed);
  fill(bd, M, seed + 1);
  mb_init(m, w, T_FLOAT, 4, D(M, C, k, k), wd);
  mb_init(m, b, T_FLOAT, 1, &M, bd);
  free(wd);
  Onnx__NodeProto *n = mb_node(m, name, "Conv", ins, out);
  attr_ints(m, n, "pads", 4, D(k / 2, k / 2, k / 2, k / 2));
}

/* BatchNormalization with constant statistics, or with the mean taken
 * from graph input "mean" when mean_input. */
static void bn_node(mb *m, const char *name, const char *in, const char *out, int64_t C,
                    bool mean_input) {
  float one[64], zero[64];
  for (int64_t i = 0; i < C; i++) {
    one[i] = 1.5f;
    zero[i] = 0.25f;
  }
  char s[64], b[64], mn[64], v[64], ins[300];
  snprintf(s, sizeof s, "%s.s", name);
  snprintf(b, sizeof b, "%s.b", name);
  snprintf(mn, sizeof mn, "%s.m", name);
  snprintf(v, sizeof v, "%s.v", name);
  mb_init(m, s, T_FLOAT, 1, &C, one);
  mb_init(m, b, T_FLOAT, 1, &C, zero);
  if (mean_input)
    mb_input(m, "mean", T_FLOAT, 1, &C);
  else
    mb_init(m, mn, T_FLOAT, 1, &C, zero);
  mb_init(m, v, T_FLOAT, 1, &C, one);
  snprintf(ins, sizeof ins, "%s,%s,%s,%s,%s", in, s, b, mean_input ? "mean" : mn, v);
  mb_node(m, name, "BatchNormalization", ins, out);
}

/* ---- fusions ------------------------------------------------------------ */

/* Every fusion the pass knows, in one graph. */
static void fusions_applied(void **state) {
  mb *m = mb_new(14);
  mb_input(m, "x", T_FLOAT, 4, D(-1, 8, 6, 6));
  conv_node(m, "c1", "x", "c1", 8, 8, 3, 1);
  bn_node(m, "bn1", "c1", "b1", 8, false);
  mb_node(m, "r1", "Relu", "b1", "r1");
  conv_node(m, "c2", "r1", "c2", 8, 8, 3, 2);
  mb_node(m, "add", "Add", "x,c2", "a2"); /* the residual first */
  mb_init(m, "lo", T_FLOAT, 0, NULL, F(0));
  mb_init(m, "hi", T_FLOAT, 0, NULL, F(6));
  mb_node(m, "clip", "Clip", "a2,lo,hi", "r2");
  conv_node(m, "c3", "r2", "c3", 8, 8, 1, 3);
  mb_node(m, "hs", "HardSwish", "c3", "r3");
  mb_node(m, "gap", "GlobalAveragePool", "r3", "g");
  attr_i(m, mb_node(m, "flat", "Flatten", "g", "f"), "axis", 1);
  float w[8 * 4];
  fill(w, 32, 4);
  mb_init(m, "w", T_FLOAT, 2, D(8, 4), w);
  mb_init(m, "bias", T_FLOAT, 1, D(4), F(1, 2, 3, 4));
  mb_node(m, "mm", "MatMul", "f,w", "mm");
  mb_node(m, "mmb", "Add", "mm,bias", "mmb");
  mb_node(m, "sig", "Sigmoid", "mmb", "y");
  mb_output(m, "y", T_FLOAT, 2, D(-1, 4));
  onnx_model *om = mb_parse(m, ONNX_OPTIMIZE_ALL);
  assert_string_equal(producer(om, "r1")->op_type, "Conv+BatchNormalization+Relu");
  assert_string_equal(producer(om, "r2")->op_type, "Conv+Add+Clip");
  assert_string_equal(producer(om, "r3")->op_type, "Conv+HardSwish");
  const onnx_node *mm = producer(om, "y");
  assert_string_equal(mm->op_type, "MatMul+Add+Sigmoid");
  assert_ptr_equal(mm->op, &onnx_op_matmul_bias);
  assert_int_equal(mm->n_post, 1);
  assert_int_equal(mm->post[0].kind, ONNX_POST_SIGMOID);
  const onnx_node *c2 = producer(om, "r2");
  assert_int_equal(c2->n_post, 2);
  assert_int_equal(c2->post[0].kind, ONNX_POST_SUM);
  /* the residual is x, or x reordered for the blocked Conv */
  int res = c2->in[c2->post[0].input], x = value_named(om, "x");
  const onnx_node *rp = producer(om, om->values[res].name);
  assert_true(res == x || (rp && rp->op == &onnx_op_to_blocked && rp->in[0] == x));
  assert_int_equal(c2->post[1].kind, ONNX_POST_CLIP);
  assert_true(c2->post[1].alpha == 0 && c2->post[1].beta == 6);
  assert_int_equal(om->n_fused, 7);
  assert_int_equal(count_op(om, "Relu") + count_op(om, "Add") + count_op(om, "BatchNormalization"),
                   0);
  onnx_model_free(om);
}

/* Nothing is fused that must not be. */
static void fusions_not_applied(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(1, 8, 4, 4));
  /* c1's result is a graph output: its Relu stays */
  conv_node(m, "c1", "x", "c1", 8, 8, 1, 1);
  mb_node(m, "r1", "Relu", "c1", "r1");
  /* c2's result has two readers */
  conv_node(m, "c2", "x", "c2", 8, 8, 1, 2);
  mb_node(m, "r2", "Relu", "c2", "r2");
  mb_node(m, "s2", "Sigmoid", "c2", "s2");
  /* c3 plus a constant is not a residual sum */
  conv_node(m, "c3", "x", "c3", 8, 8, 1, 3);
  float k[8 * 4 * 4];
  fill(k, 128, 5);
  mb_init(m, "k", T_FLOAT, 4, D(1, 8, 4, 4), k);
  mb_node(m, "a3", "Add", "c3,k", "a3");
  /* c4 + c4 is not a residual either */
  conv_node(m, "c4", "x", "c4", 8, 8, 1, 4);
  mb_node(m, "a4", "Add", "c4,c4", "a4");
  /* statistics from an input are not folded */
  conv_node(m, "c5", "x", "c5", 8, 8, 1, 5);
  bn_node(m, "bn5", "c5", "b5", 8, true);
  /* a Clip bound from an input is not fused */
  mb_input(m, "lo", T_FLOAT, 0, NULL);
  conv_node(m, "c6", "x", "c6", 8, 8, 1, 6);
  mb_node(m, "clip6", "Clip", "c6,lo", "r6");
  /* MatMul by an input matrix takes no bias */
  mb_input(m, "w", T_FLOAT, 2, D(4, 3));
  mb_input(m, "v", T_FLOAT, 2, D(2, 4));
  mb_node(m, "mm", "MatMul", "v,w", "mm");
  mb_init(m, "bias", T_FLOAT, 1, D(3), F(1, 2, 3));
  mb_node(m, "mmb", "Add", "mm,bias", "mmb");
  const char *outs[] = {"c1", "r1", "r2", "s2", "a3", "a4", "b5", "r6", "mmb"};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
    mb_output(m, outs[i], T_FLOAT, -1, NULL);
  onnx_model *om = mb_parse(m, ONNX_OPTIMIZE_ALL);
  assert_int_equal(om->n_fused, 0);
  assert_int_equal(count_op(om, "Conv"), 6);
  assert_int_equal(count_op(om, "Relu"), 2);
  assert_int_equal(count_op(om, "Add"), 3);
  assert_int_equal(count_op(om, "BatchNormalization"), 1);
  assert_int_equal(count_op(om, "Clip"), 1);
  assert_int_equal(count_op(om, "MatMul"), 1);
  onnx_model_free(om);
  /* and nothing at all when asked */
  m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(1, 8, 4, 4));
  conv_node(m, "c1", "x", "c1", 8, 8, 1, 1);
  mb_node(m, "r1", "Relu", "c1", "y");
  mb_output(m, "y", T_FLOAT, 4, D(1, 8, 4, 4));
  om = mb_parse(m, ONNX_OPTIMIZE_NONE);
  assert_int_equal(om->n_fused + om->n_reorders, 0);
  assert_int_equal(om->n_nodes, 2);
  for (size_t i = 0; i < om->n_nodes; i++)
    assert_int_equal(om->nodes[i].blocked, 0);
  onnx_model_free(om);
}

/* Layer normalisation as torch exports it before opset 17, over axis
 * `axis` of x [2,5,8]. */
static mb *layernorm_model(int64_t axis) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 3, D(2, 5, 8));
  float g[8], b[8];
  fill(g, 8, 1);
  fill(b, 8, 2);
  mb_init(m, "gamma", T_FLOAT, 1, D(8), g);
  mb_init(m, "beta", T_FLOAT, 1, D(8), b);
  mb_init(m, "two", T_FLOAT, 0, NULL, F(2));
  mb_init(m, "eps", T_FLOAT, 0, NULL, F(1e-5f));
  attr_ints(m, mb_node(m, "mean", "ReduceMean", "x", "mean"), "axes", 1, &axis);
  mb_node(m, "sub", "Sub", "x,mean", "d");
  mb_node(m, "pow", "Pow", "d,two", "sq");
  attr_ints(m, mb_node(m, "var", "ReduceMean", "sq", "var"), "axes", 1, &axis);
  mb_node(m, "add", "Add", "var,eps", "ve");
  mb_node(m, "sqrt", "Sqrt", "ve", "sd");
  mb_node(m, "div", "Div", "d,sd", "n");
  mb_node(m, "mul", "Mul", "n,gamma", "s");
  mb_node(m, "addb", "Add", "s,beta", "y");
  mb_output(m, "y", T_FLOAT, 3, D(2, 5, 8));
  return m;
}

/* The nine nodes become one LayerNormalization (when the registry has
 * it), with the same answer; over another axis they stay as they are. */
static void layernorm_fused(void **state) {
  if (!onnx_registry_has("", "LayerNormalization")) skip();
  onnx_model *om = mb_parse(layernorm_model(-1), ONNX_OPTIMIZE_ALL);
  assert_int_equal(om->n_nodes, 1);
  assert_string_equal(om->nodes[0].op_type, "LayerNormalization");
  assert_int_equal(om->n_fused, 8);
  onnx_model_free(om);
  om = mb_parse(layernorm_model(1), ONNX_OPTIMIZE_ALL);
  assert_int_equal(om->n_fused, 0);
  assert_int_equal(count_op(om, "ReduceMean"), 2);
  onnx_model_free(om);
  mb *m = layernorm_model(-1);
  model fused, plain;
  must_load_opt(m, "all", &fused);
  must_load_opt(m, "none", &plain);
  mb_free(m);
  float x[80];
  fill(x, 80, 3);
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, 3, D(2, 5, 8), x);
  inferd_tensor ya = {.name = "y", .dtype = INFERD_TYPE_FP32}, yb = ya;
  test_exec ta, tb;
  assert_int_equal(run(&fused, &ta, 1, &in, 1, &ya, NULL), 0);
  assert_int_equal(run(&plain, &tb, 1, &in, 1, &yb, NULL), 0);
  assert_true(close_f32(ya.data, yb.data, 80, 1e-5f));
  run_done(&ta);
  run_done(&tb);
  unload(&fused);
  unload(&plain);
}

/* MatMul (3-D activations) + bias + Relu fused gives the unfused answer. */
static void matmul_bias_values(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 3, D(-1, 5, 6));
  float w[6 * 7], b[7];
  fill(w, 42, 1);
  fill(b, 7, 2);
  mb_init(m, "w", T_FLOAT, 2, D(6, 7), w);
  mb_init(m, "b", T_FLOAT, 1, D(7), b);
  mb_node(m, "mm", "MatMul", "x,w", "mm");
  mb_node(m, "add", "Add", "b,mm", "a"); /* the bias first */
  mb_node(m, "r", "Relu", "a", "y");
  mb_output(m, "y", T_FLOAT, 3, D(-1, 5, 7));
  model fused, plain;
  must_load_opt(m, "all", &fused);
  must_load_opt(m, "none", &plain);
  mb_free(m);
  float x[3 * 30], want[3 * 35];
  fill(x, 90, 3);
  for (int r = 0; r < 15; r++)
    for (int c = 0; c < 7; c++) {
      double s = b[c];
      for (int k = 0; k < 6; k++)
        s += (double)x[r * 6 + k] * w[k * 7 + c];
      want[r * 7 + c] = s > 0 ? (float)s : 0;
    }
  for (int i = 0; i < 2; i++) {
    model *md = i ? &plain : &fused;
    inferd_tensor in = tin("x", INFERD_TYPE_FP32, 3, D(3, 5, 6), x);
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(md, &t, 1, &in, 1, &y, NULL), 0);
    expect_f32(&y, 3, D(3, 5, 7), want, 1e-5f);
    run_done(&t);
  }
  unload(&fused);
  unload(&plain);
}

/* ---- memory ------------------------------------------------------------- */

/* Packed weights replace the originals, unless another node reads them. */
static void weights_dropped(void **state) {
  for (int shared = 0; shared < 2; shared++) {
    mb *m = mb_new(13);
    mb_input(m, "x", T_FLOAT, 4, D(1, 8, 4, 4));
    conv_node(m, "c", "x", "y", 8, 8, 3, 1);
    mb_output(m, "y", T_FLOAT, 4, D(1, 8, 4, 4));
    if (shared) { /* the weights also feed a Mul */
      mb_input(m, "z", T_FLOAT, 4, D(8, 8, 3, 3));
      mb_node(m, "mul", "Mul", "c.w,z", "wz");
      mb_output(m, "wz", T_FLOAT, 4, D(8, 8, 3, 3));
    }
    onnx_model *om = mb_parse(m, ONNX_OPTIMIZE_ALL);
    const onnx_value *w = &om->values[value_named(om, "c.w")];
    const onnx_node *c = NULL; /* y itself may be a reorder of the Conv's result */
    for (size_t i = 0; i < om->n_nodes; i++)
      if (om->nodes[i].op == &onnx_op_conv) c = &om->nodes[i];
    assert_non_null(c);
    assert_true(c->prepared);
    assert_true(c->prepared_bytes >= 8 * 8 * 9 * sizeof(float));
    if (shared) {
      assert_non_null(w->t.data);
      assert_int_equal(om->weight_bytes, c->prepared_bytes + 8 * 8 * 9 * sizeof(float));
    } else {
      assert_null(w->t.data);
      assert_null(om->values[value_named(om, "c.b")].t.data);
      assert_int_equal(om->weight_bytes, c->prepared_bytes);
    }
    onnx_model_free(om);
  }
}

/* A residual that dies at the Conv adding it is summed in place (as a
 * ResNet block's input). One read later, or read by that Conv as its
 * source too, is copied first (and its readers see it unchanged). */
static void sum_in_place(void **state) {
  for (int variant = 0; variant < 3; variant++) {
    mb *m = mb_new(13);
    mb_input(m, "x", T_FLOAT, 4, D(1, 8, 5, 5));
    conv_node(m, "c0", "x", "a", 8, 8, 3, 1);
    if (variant == 2) { /* s = conv(a) + a */
      conv_node(m, "c2", "a", "b", 8, 8, 3, 3);
    } else { /* s = conv(conv(a)) + a */
      conv_node(m, "c1", "a", "h", 8, 8, 3, 2);
      conv_node(m, "c2", "h", "b", 8, 8, 3, 3);
    }
    mb_node(m, "add", "Add", "b,a", "s");
    if (variant == 1) {
      mb_node(m, "sum", "Add", "s,a", "s2");
      mb_node(m, "gap", "GlobalAveragePool", "s2", "y");
    } else {
      mb_node(m, "gap", "GlobalAveragePool", "s", "y");
    }
    mb_output(m, "y", T_FLOAT, 4, D(1, 8, 1, 1));
    size_t len;
    uint8_t *bytes = mb_pack(m, &len);
    model fused, plain;
    must_load_opt(m, "all", &fused);
    must_load_opt(m, "none", &plain);
    mb_free(m);
    onnx_model *om;
    err e = {0};
    assert_int_equal(onnx_model_parse(bytes, len, &om, &e), 0);
    free(bytes);
    int ndim = 4;
    int64_t shape[1][ONNX_MAX_DIMS] = {{1, 8, 5, 5}};
    onnx_plan *p;
    assert_int_equal(
        onnx_plan_build(om, &ndim, (const int64_t(*)[ONNX_MAX_DIMS])shape, NULL, &p, &e), 0);
    assert_string_equal(producer(om, "s")->op_type, "Conv+Add");
    assert_int_equal(onnx_plan_shares(p, value_named(om, "a"), value_named(om, "s")), variant == 0);
    onnx_plan_free(p);
    onnx_model_free(om);
    float x[200];
    fill(x, 200, 9);
    inferd_tensor in = tin("x", INFERD_TYPE_FP32, 4, D(1, 8, 5, 5), x);
    inferd_tensor ya = {.name = "y", .dtype = INFERD_TYPE_FP32}, yb = ya;
    test_exec ta, tb;
    assert_int_equal(run(&fused, &ta, 1, &in, 1, &ya, NULL), 0);
    assert_int_equal(run(&plain, &tb, 1, &in, 1, &yb, NULL), 0);
    assert_true(close_f32(ya.data, yb.data, 8, 1e-5f));
    run_done(&ta);
    run_done(&tb);
    unload(&fused);
    unload(&plain);
  }
}

/* Plans make oneDNN primitives and free every one with the plan; the
 * instance's plans are freed with it; model_memory counts their state. */
static void state_freed(void **state) {
  int base = onnx_dnnl_prims_live();
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(-1, 8, 6, 6));
  conv_node(m, "c1", "x", "c1", 8, 16, 3, 1);
  Onnx__NodeProto *mp = mb_node(m, "mp", "MaxPool", "c1", "p");
  attr_ints(m, mp, "kernel_shape", 2, D(2, 2));
  mb_output(m, "p", T_FLOAT, 4, D(-1, 16, 5, 5));
  size_t len;
  uint8_t *bytes = mb_pack(m, &len);
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  assert_int_equal(onnx_dnnl_prims_live(), base); /* the load's trial plans are gone */
  size_t before = onnx_backend()->model_memory(md.m);
  static float x[4 * 8 * 36];
  fill(x, 4 * 288, 1);
  for (int64_t batch = 1; batch <= 4; batch++) {
    inferd_tensor in = tin("x", INFERD_TYPE_FP32, 4, D(batch, 8, 6, 6), x);
    inferd_tensor y = {.name = "p", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(&md, &t, 1, &in, 1, &y, NULL), 0);
    run_done(&t);
  }
  /* four plans, each with a reorder (x), the conv, the pool, a reorder (p) */
  assert_int_equal(onnx_dnnl_prims_live(), base + 4 * (onnx_block_size() == 8 ? 4 : 3));
  assert_true(onnx_backend()->model_memory(md.m) > before);
  unload(&md);
  assert_int_equal(onnx_dnnl_prims_live(), base);

  /* and a plan on its own */
  onnx_model *om;
  err e = {0};
  assert_int_equal(onnx_model_parse(bytes, len, &om, &e), 0);
  free(bytes);
  int ndim = 4;
  int64_t shape[1][ONNX_MAX_DIMS] = {{2, 8, 6, 6}};
  onnx_plan *p;
  assert_int_equal(onnx_plan_build(om, &ndim, (const int64_t(*)[ONNX_MAX_DIMS])shape, NULL, &p, &e),
                   0);
  assert_true(onnx_plan_state_bytes(p) > 0);
  assert_true(onnx_dnnl_prims_live() > base);
  onnx_plan_free(p);
  assert_int_equal(onnx_dnnl_prims_live(), base);
  onnx_model_free(om);
}

/* A sample's answer does not depend on the batch it comes in (plans per
 * batch size, blocked layouts, summed residuals). */
static void batch_independent(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(-1, 3, 9, 9));
  conv_node(m, "c1", "x", "a", 3, 16, 3, 1);
  mb_node(m, "r1", "Relu", "a", "r");
  conv_node(m, "c2", "r", "b", 16, 16, 3, 2);
  mb_node(m, "add", "Add", "b,r", "s");
  Onnx__NodeProto *mp = mb_node(m, "mp", "MaxPool", "s", "y");
  attr_ints(m, mp, "kernel_shape", 2, D(3, 3));
  attr_ints(m, mp, "strides", 2, D(2, 2));
  mb_output(m, "y", T_FLOAT, 4, D(-1, 16, 4, 4));
  model md;
  must_load_opt(m, "all", &md);
  mb_free(m);
  static float x[5 * 3 * 81];
  fill(x, 5 * 243, 2);
  inferd_tensor in = tin("x", INFERD_TYPE_FP32, 4, D(5, 3, 9, 9), x);
  inferd_tensor all = {.name = "y", .dtype = INFERD_TYPE_FP32};
  test_exec ta;
  assert_int_equal(run(&md, &ta, 1, &in, 1, &all, NULL), 0);
  for (int s = 0; s < 5; s++) {
    inferd_tensor one = tin("x", INFERD_TYPE_FP32, 4, D(1, 3, 9, 9), x + s * 243);
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(&md, &t, 1, &one, 1, &y, NULL), 0);
    expect_f32(&y, 4, D(1, 16, 4, 4), (const float *)all.data + s * 256, 1e-5f);
    run_done(&t);
  }
  run_done(&ta);
  unload(&md);
}

/* Two intra-op threads give the one-thread answers: the Winograd kernel's
 * chunks, the packed products' panels and oneDNN's primitives split over
 * the threads. */
static void threads_agree(void **state) {
  mb *m = mb_new(13);
  mb_input(m, "x", T_FLOAT, 4, D(-1, 32, 12, 12));
  conv_node(m, "c1", "x", "a", 32, 32, 3, 1);
  mb_node(m, "r1", "Relu", "a", "r");
  conv_node(m, "c2", "r", "b", 32, 32, 3, 2);
  mb_node(m, "add", "Add", "b,x", "s");
  mb_node(m, "gap", "GlobalAveragePool", "s", "g");
  attr_i(m, mb_node(m, "flat", "Flatten", "g", "f"), "axis", 1);
  float w[32 * 40], bias[40];
  fill(w, 32 * 40, 3);
  fill(bias, 40, 4);
  mb_init(m, "w", T_FLOAT, 2, D(32, 40), w);
  mb_init(m, "bias", T_FLOAT, 1, D(40), bias);
  mb_node(m, "mm", "MatMul", "f,w", "p");
  mb_node(m, "mmb", "Add", "p,bias", "y");
  mb_output(m, "y", T_FLOAT, 2, D(-1, 40));
  model one, two;
  assert_int_equal(load_opt(m, "all", "1", &one), 0);
  assert_int_equal(load_opt(m, "all", "2", &two), 0);
  mb_free(m);
  static float x[5 * 32 * 144];
  fill(x, 5 * 32 * 144, 5);
  for (int64_t batch = 1; batch <= 5; batch += 4) {
    inferd_tensor in = tin("x", INFERD_TYPE_FP32, 4, D(batch, 32, 12, 12), x);
    inferd_tensor ya = {.name = "y", .dtype = INFERD_TYPE_FP32}, yb = ya;
    test_exec ta, tb;
    assert_int_equal(run(&one, &ta, 1, &in, 1, &ya, NULL), 0);
    assert_int_equal(run(&two, &tb, 1, &in, 1, &yb, NULL), 0);
    assert_int_equal(ya.byte_size, yb.byte_size);
    assert_true(close_f32(ya.data, yb.data, batch * 40, 1e-5f));
    run_done(&ta);
    run_done(&tb);
  }
  unload(&one);
  unload(&two);
}

/* Products of two computed operands (attention's), batch dimensions
 * broadcast, against a direct loop, with 1 and 2 threads. */
static void attention_products(void **state) {
  enum { H = 3, M = 7, K = 20, N = 33 };
  mb *m = mb_new(13);
  mb_input(m, "a", T_FLOAT, 4, D(2, H, M, K));
  mb_input(m, "b", T_FLOAT, 4, D(2, 1, K, N)); /* broadcast over the heads */
  mb_node(m, "mm", "MatMul", "a,b", "y");
  mb_output(m, "y", T_FLOAT, 4, D(2, H, M, N));
  model one, two;
  assert_int_equal(load_opt(m, "all", "1", &one), 0);
  assert_int_equal(load_opt(m, "all", "2", &two), 0);
  mb_free(m);
  static float a[2 * H * M * K], b[2 * K * N], want[2 * H * M * N];
  fill(a, 2 * H * M * K, 6);
  fill(b, 2 * K * N, 7);
  for (int n = 0; n < 2; n++)
    for (int h = 0; h < H; h++)
      for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
          double acc = 0;
          for (int k = 0; k < K; k++)
            acc += (double)a[((n * H + h) * M + r) * K + k] * b[(n * K + k) * N + c];
          want[((n * H + h) * M + r) * N + c] = (float)acc;
        }
  for (int i = 0; i < 2; i++) {
    model *md = i ? &two : &one;
    inferd_tensor in[2] = {tin("a", INFERD_TYPE_FP32, 4, D(2, H, M, K), a),
                           tin("b", INFERD_TYPE_FP32, 4, D(2, 1, K, N), b)};
    inferd_tensor y = {.name = "y", .dtype = INFERD_TYPE_FP32};
    test_exec t;
    assert_int_equal(run(md, &t, 2, in, 1, &y, NULL), 0);
    expect_f32(&y, 4, D(2, H, M, N), want, 1e-5f);
    run_done(&t);
  }
  unload(&one);
  unload(&two);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fusions_applied),    cmocka_unit_test(fusions_not_applied),
      cmocka_unit_test(matmul_bias_values), cmocka_unit_test(layernorm_fused),
      cmocka_unit_test(weights_dropped),    cmocka_unit_test(sum_in_place),
      cmocka_unit_test(state_freed),        cmocka_unit_test(batch_independent),
      cmocka_unit_test(threads_agree),      cmocka_unit_test(attention_products),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
