/* Conformance tests of the ONNX backend: the ONNX backend node tests
 * (/usr/share/libonnx-testdata/data/node/test_* from Debian's
 * libonnx-testdata: model.onnx plus test_data_set_N/{input,output}_K.pb)
 * for every operator the backend implements, and the models made by torch
 * in tests/data/onnx (make_models.py), all run through the backend table
 * (model_load, instance_create, execute) and compared with the expected
 * outputs. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "backends/onnx/onnx_backend.h"
#include "backends/onnx/onnx_ops.h"
#include "core/dtype.h"
#include "onnx/onnx.pb-c.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"
#define RTOL     1e-5
#define ATOL     1e-5

/* Cases whose operators are implemented but that use what the backend
 * deliberately does not support. Each says why. */
static const struct {
  const char *name;
  const char *why;
} excluded[] = {
    {"test_cast_FLOAT_to_STRING", "string tensors are not supported"},
    {"test_cast_STRING_to_FLOAT", "string tensors are not supported"},
    {"test_castlike_FLOAT_to_STRING_expanded", "string tensors are not supported"},
    {"test_castlike_STRING_to_FLOAT_expanded", "string tensors are not supported"},
    {"test_cast_FLOAT_to_BFLOAT16",
     "ONNX 1.12's expected data truncates; the spec and ONNX Runtime round to nearest even"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded",
     "the data's 'like' input is [1] where the model declares [3,4]"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded",
     "the data's 'like' input is [1] where the model declares [3,4]"},
    {"test_identity_opt", "optional types are not supported"},
    {"test_identity_sequence", "sequence types are not supported"},
};

/* ---- files -------------------------------------------------------------- */

/* snprintf that fails the test rather than cut a path short. */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t size, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(buf, size, f, ap);
  va_end(ap);
  assert_true(n >= 0 && (size_t)n < size);
}

static void *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* A TensorProto file decoded (data from aligned_alloc). */
static bool read_tensor(const char *path, onnx_tensor *t, char **name) {
  size_t len;
  void *bytes = read_all(path, &len);
  if (!bytes) return false;
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, bytes);
  free(bytes);
  if (!tp) return false;
  err e = {0};
  bool ok = onnx_tensor_decode(tp, NULL, t, &e) == 0;
  *name = strdup(tp->name ? tp->name : "");
  onnx__tensor_proto__free_unpacked(tp, NULL);
  return ok;
}

/* ---- executing ---------------------------------------------------------- */

/* inferd_exec with an allocator: a bump allocator over one buffer, reset
 * before each execute. */
typedef struct test_exec {
  inferd_exec x;
  unsigned char *mem;
  size_t used, cap;
} test_exec;

static void *bump_alloc(inferd_exec *x, size_t bytes) {
  test_exec *t = (test_exec *)x;
  size_t n = (bytes + 63) & ~(size_t)63;
  if (n > t->cap - t->used) return NULL;
  void *p = t->mem + t->used;
  t->used += n;
  return p;
}

static bool close_enough(double got, double want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= ATOL + RTOL * fabs(want);
}

static double element(const void *data, inferd_dtype t, int64_t i) {
  switch (t) {
  case INFERD_TYPE_FP32: return ((const float *)data)[i];
  case INFERD_TYPE_FP64: return ((const double *)data)[i];
  case INFERD_TYPE_FP16: return fp16_to_float(((const uint16_t *)data)[i]);
  case INFERD_TYPE_BF16: return bf16_to_float(((const uint16_t *)data)[i]);
  default: return 0;
  }
}

/* Compares an output with the expected tensor; a message in why when they
 * differ. */
static bool same(const inferd_tensor *got, const onnx_tensor *want, char *why, size_t size) {
  char a[96], b[96];
  shape_format(a, sizeof a, got->shape, got->ndim);
  shape_format(b, sizeof b, want->dims, want->ndim);
  if (got->dtype != want->dtype || strcmp(a, b) != 0) {
    snprintf(why, size, "output '%s' is %s %s; expected %s %s", got->name, dtype_name(got->dtype),
             a, dtype_name(want->dtype), b);
    return false;
  }
  size_t bytes = (size_t)want->count * dtype_size(want->dtype);
  if (got->byte_size != bytes) {
    snprintf(why, size, "output '%s' has %zu bytes; expected %zu", got->name, got->byte_size,
             bytes);
    return false;
  }
  bool floating = want->dtype == INFERD_TYPE_FP32 || want->dtype == INFERD_TYPE_FP64 ||
                  want->dtype == INFERD_TYPE_FP16 || want->dtype == INFERD_TYPE_BF16;
  for (int64_t i = 0; i < want->count; i++) {
    if (floating) {
      double g = element(got->data, want->dtype, i), w = element(want->data, want->dtype, i);
      if (!close_enough(g, w)) {
        snprintf(why, size, "output '%s'[%lld] = %.9g; expected %.9g", got->name, (long long)i, g,
                 w);
        return false;
      }
    } else {
      size_t es = dtype_size(want->dtype);
      if (memcmp((const char *)got->data + i * es, (const char *)want->data + i * es, es) != 0) {
        snprintf(why, size, "output '%s' differs at element %lld", got->name, (long long)i);
        return false;
      }
    }
  }
  return true;
}

typedef struct loaded {
  void *model, *instance;
  size_t n_in, n_out;
  const inferd_tensor_desc *in, *out;
} loaded;

static int load(const char *path, int max_batch, loaded *l, char *why, size_t size) {
  const inferd_backend *b = onnx_backend();
  inferd_model_desc d = {
      .name = path, .version = 1, .model_path = path, .max_batch_size = max_batch};
  memset(l, 0, sizeof *l);
  int rc = b->model_load(&d, &l->model, why, size);
  if (rc) return rc;
  b->model_io(l->model, &l->n_in, &l->in, &l->n_out, &l->out);
  rc = b->instance_create(l->model, 0, &l->instance, why, size);
  if (rc) {
    b->model_unload(l->model);
    l->model = NULL;
  }
  return rc;
}

static void unload(loaded *l) {
  const inferd_backend *b = onnx_backend();
  if (l->instance) b->instance_destroy(l->instance);
  if (l->model) b->model_unload(l->model);
}

/* Runs one test_data_set folder on a loaded model. */
static bool run_set(loaded *l, const char *set, char *why, size_t size) {
  inferd_tensor in[16] = {{0}}, out[16] = {{0}};
  onnx_tensor ins[16], want[16];
  char *names[32] = {0};
  size_t n_in = 0, n_want = 0;
  bool ok = true;
  char path[1024];
  for (; n_in < 16; n_in++) {
    fmt(path, sizeof path, "%s/input_%zu.pb", set, n_in);
    struct stat st;
    if (stat(path, &st) != 0) break;
    if (!read_tensor(path, &ins[n_in], &names[n_in])) {
      fmt(why, size, "cannot read %.500s", path);
      ok = false;
      n_in++;
      goto done;
    }
  }
  for (; n_want < 16; n_want++) {
    fmt(path, sizeof path, "%s/output_%zu.pb", set, n_want);
    struct stat st;
    if (stat(path, &st) != 0) break;
    if (!read_tensor(path, &want[n_want], &names[16 + n_want])) {
      fmt(why, size, "cannot read %.500s", path);
      ok = false;
      n_want++;
      goto done;
    }
  }
  if (n_in != l->n_in || n_want != l->n_out) {
    snprintf(why, size, "%zu inputs and %zu outputs in the data; the model has %zu and %zu", n_in,
             n_want, l->n_in, l->n_out);
    ok = false;
    goto done;
  }
  /* numpy has no bfloat16: ONNX 1.12's data stores such tensors as UINT16. */
  for (size_t k = 0; k < n_in; k++)
    if (ins[k].dtype == INFERD_TYPE_UINT16 && l->in[k].dtype == INFERD_TYPE_BF16)
      ins[k].dtype = INFERD_TYPE_BF16;
  for (size_t j = 0; j < n_want; j++)
    if (want[j].dtype == INFERD_TYPE_UINT16 && l->out[j].dtype == INFERD_TYPE_BF16)
      want[j].dtype = INFERD_TYPE_BF16;
  for (size_t k = 0; k < n_in; k++) {
    in[k] = (inferd_tensor){.name = l->in[k].name,
                            .dtype = ins[k].dtype,
                            .ndim = ins[k].ndim,
                            .data = ins[k].data,
                            .byte_size = (size_t)ins[k].count * dtype_size(ins[k].dtype)};
    memcpy(in[k].shape, ins[k].dims, sizeof in[k].shape);
  }
  for (size_t j = 0; j < n_want; j++)
    out[j] = (inferd_tensor){.name = l->out[j].name, .dtype = l->out[j].dtype};
  static unsigned char mem[1 << 22] __attribute__((aligned(64)));
  char errbuf[512] = "";
  test_exec t = {.x = {.n_inputs = n_in,
                       .inputs = in,
                       .n_outputs = n_want,
                       .outputs = out,
                       .alloc = bump_alloc,
                       .error = errbuf,
                       .error_size = sizeof errbuf},
                 .mem = mem,
                 .cap = sizeof mem};
  int rc = onnx_backend()->execute(l->instance, &t.x);
  if (rc) {
    snprintf(why, size, "execute: %s", errbuf);
    ok = false;
    goto done;
  }
  for (size_t j = 0; j < n_want && ok; j++)
    ok = same(&out[j], &want[j], why, size);
done:
  for (size_t k = 0; k < n_in; k++)
    free(ins[k].data);
  for (size_t j = 0; j < n_want; j++)
    free(want[j].data);
  for (int i = 0; i < 32; i++)
    free(names[i]);
  return ok;
}

/* Runs a test folder: every test_data_set_N in it. */
static bool run_case(const char *dir, char *why, size_t size) {
  char path[1024];
  fmt(path, sizeof path, "%s/model.onnx", dir);
  loaded l;
  if (load(path, 0, &l, why, size)) return false;
  bool ok = true;
  for (int s = 0; ok; s++) {
    fmt(path, sizeof path, "%s/test_data_set_%d", dir, s);
    struct stat st;
    if (stat(path, &st) != 0) {
      if (s == 0) {
        snprintf(why, size, "no test_data_set_0");
        ok = false;
      }
      break;
    }
    ok = run_set(&l, path, why, size);
  }
  unload(&l);
  return ok;
}

/* Whether every node of the model is of an operator the registry has (at
 * any version: an unsupported version then fails the case, visibly). The
 * op types seen go to ops (comma separated). */
static bool implemented(const char *dir, char *ops, size_t size) {
  char path[1024];
  fmt(path, sizeof path, "%s/model.onnx", dir);
  size_t len;
  void *bytes = read_all(path, &len);
  if (!bytes) return false;
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
  free(bytes);
  if (!mp) return false;
  bool all = mp->graph != NULL;
  ops[0] = 0;
  for (size_t i = 0; all && i < mp->graph->n_node; i++) {
    const Onnx__NodeProto *n = mp->graph->node[i];
    all = onnx_registry_has(n->domain ? n->domain : "", n->op_type);
    if (strlen(ops) + strlen(n->op_type) + 2 < size) {
      strcat(ops, ",");
      strcat(ops, n->op_type);
    }
  }
  onnx__model_proto__free_unpacked(mp, NULL);
  return all;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* ---- tests -------------------------------------------------------------- */

/* The operator names of the registry, each with the passing cases that use
 * it. */
typedef struct op_tally {
  int n;
  const char *names[512];
  int passes[512];
} op_tally;

static void tally_op(const onnx_op *op, int since, void *arg) {
  op_tally *t = arg;
  for (int k = 0; k < t->n; k++)
    if (strcmp(t->names[k], op->name) == 0) return;
  if (t->n < 512) t->names[t->n++] = op->name;
}

/* Credits every operator named in ops (",A,B,...") with a pass. */
static void credit(op_tally *t, const char *ops) {
  for (int k = 0; k < t->n; k++) {
    size_t len = strlen(t->names[k]);
    for (const char *p = strstr(ops, t->names[k]); p; p = strstr(p + 1, t->names[k]))
      if (p[-1] == ',' && (p[len] == ',' || p[len] == 0)) {
        t->passes[k]++;
        break;
      }
  }
}

static void node_tests(void **state) {
  struct dirent **list;
  int n = scandir(NODE_DIR, &list, NULL, by_name);
  if (n < 0) {
    print_message("%s is absent (install libonnx-testdata): skipped\n", NODE_DIR);
    skip();
  }
  static op_tally tally;
  memset(&tally, 0, sizeof tally);
  onnx_registry_each(tally_op, &tally);
  int selected = 0, passed = 0, skipped = 0;
  char failures[16384] = "";
  for (int i = 0; i < n; i++) {
    const char *name = list[i]->d_name;
    char dir[1024], ops[512], why[600] = "";
    fmt(dir, sizeof dir, "%s/%s", NODE_DIR, name);
    if (strncmp(name, "test_", 5) != 0 || !implemented(dir, ops, sizeof ops)) continue;
    bool skip_it = false;
    for (size_t x = 0; x < sizeof excluded / sizeof excluded[0]; x++)
      if (strcmp(excluded[x].name, name) == 0) {
        print_message("  excluded %s: %s\n", name, excluded[x].why);
        skip_it = true;
      }
    if (skip_it) {
      skipped++;
      continue;
    }
    selected++;
    if (run_case(dir, why, sizeof why)) {
      passed++;
      credit(&tally, ops);
    } else {
      size_t len = strlen(failures);
      snprintf(failures + len, sizeof failures - len, "  FAIL %s (%s): %s\n", name, ops + 1, why);
    }
  }
  for (int i = 0; i < n; i++)
    free(list[i]);
  free(list);
  print_message("ONNX node tests: %d of %d selected cases passed (%d excluded)\n", passed, selected,
                skipped);
  if (failures[0]) print_message("%s", failures);
  /* Every operator the backend has must be covered by at least one case. */
  int uncovered = 0;
  for (int k = 0; k < tally.n; k++) {
    print_message("  %-12s %d\n", tally.names[k], tally.passes[k]);
    if (!tally.passes[k]) {
      print_message("no passing node test for %s\n", tally.names[k]);
      uncovered++;
    }
  }
  assert_int_equal(uncovered, 0);
  assert_int_equal(passed, selected);
}

/* The torch-made models of tests/data/onnx. */
static void torch_models(void **state) {
  static const char *const models[] = {"mlp", "mlp_opset9", "mlp_tanh"};
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    char dir[1024], why[600] = "";
    fmt(dir, sizeof dir, "%s/onnx/%s", TEST_DATA_DIR, models[i]);
    bool ok = run_case(dir, why, sizeof why);
    if (!ok) print_message("%s: %s\n", models[i], why);
    assert_true(ok);
  }
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The digits MLP under a batching configuration: one sample at a time must
 * give the rows of the batch-5 result, and execute at batch 1 and 64 is
 * timed (printed, not asserted: the machine is shared). */
static void mlp_batches(void **state) {
  char path[1024], why[600] = "";
  fmt(path, sizeof path, "%s/onnx/mlp/model.onnx", TEST_DATA_DIR);
  loaded l;
  int rc = load(path, 64, &l, why, sizeof why);
  if (rc) print_message("%s\n", why);
  assert_int_equal(rc, 0);
  assert_int_equal(l.n_in, 1);
  assert_int_equal(l.n_out, 2);
  assert_int_equal(l.in[0].ndim, 4);
  assert_int_equal(l.in[0].dims[0], -1);
  assert_int_equal(l.out[1].dtype, INFERD_TYPE_INT64);

  onnx_tensor x, probs;
  char *n1, *n2;
  fmt(path, sizeof path, "%s/onnx/mlp/test_data_set_0/input_0.pb", TEST_DATA_DIR);
  assert_true(read_tensor(path, &x, &n1));
  fmt(path, sizeof path, "%s/onnx/mlp/test_data_set_0/output_0.pb", TEST_DATA_DIR);
  assert_true(read_tensor(path, &probs, &n2));

  static unsigned char mem[1 << 20] __attribute__((aligned(64)));
  static float batch[64 * 64];
  inferd_tensor in = {.name = "x", .dtype = INFERD_TYPE_FP32, .ndim = 4, .shape = {1, 1, 8, 8}};
  inferd_tensor out[2] = {{.name = "probs", .dtype = INFERD_TYPE_FP32},
                          {.name = "label", .dtype = INFERD_TYPE_INT64}};
  char errbuf[512] = "";
  test_exec t = {.x = {.batch_size = 1,
                       .n_inputs = 1,
                       .inputs = &in,
                       .n_outputs = 2,
                       .outputs = out,
                       .alloc = bump_alloc,
                       .error = errbuf,
                       .error_size = sizeof errbuf},
                 .mem = mem,
                 .cap = sizeof mem};
  for (int s = 0; s < 5; s++) {
    in.data = (float *)x.data + s * 64;
    in.byte_size = 64 * sizeof(float);
    t.used = 0;
    assert_int_equal(onnx_backend()->execute(l.instance, &t.x), 0);
    assert_int_equal(out[0].ndim, 2);
    assert_int_equal(out[0].shape[0], 1);
    assert_int_equal(out[0].shape[1], 10);
    assert_int_equal(out[1].ndim, 1);
    const float *p = out[0].data;
    int best = 0;
    for (int c = 0; c < 10; c++) {
      assert_true(close_enough(p[c], ((const float *)probs.data)[s * 10 + c]));
      if (p[c] > p[best]) best = c;
    }
    assert_int_equal(*(const int64_t *)out[1].data, best);
  }

  for (int b = 0; b < 64 * 64; b++)
    batch[b] = ((const float *)x.data)[b % (5 * 64)];
  const int sizes[2] = {1, 64}, iters[2] = {200000, 20000};
  for (int k = 0; k < 2; k++) {
    in.shape[0] = sizes[k];
    in.data = batch;
    in.byte_size = (size_t)sizes[k] * 64 * sizeof(float);
    t.x.batch_size = sizes[k];
    for (int i = 0; i < 100; i++) { /* warm: plan, JIT kernels, caches */
      t.used = 0;
      assert_int_equal(onnx_backend()->execute(l.instance, &t.x), 0);
    }
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
      double t0 = now_us();
      for (int i = 0; i < iters[k] / 5; i++) {
        t.used = 0;
        onnx_backend()->execute(l.instance, &t.x);
      }
      double us = (now_us() - t0) / (iters[k] / 5);
      if (us < best) best = us;
    }
    print_message("mlp 64->64->10 (+softmax, argmax) batch %d: %.2f us per execute\n", sizes[k],
                  best);
    assert_int_equal(out[0].shape[0], sizes[k]);
  }
  free(x.data);
  free(probs.data);
  free(n1);
  free(n2);
  unload(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(node_tests),
      cmocka_unit_test(torch_models),
      cmocka_unit_test(mlp_batches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
