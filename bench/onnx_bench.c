/* bench/onnx_bench.c: times inferd's ONNX executor in-process, without the
 * server around it: the model is loaded through the onnx backend's table
 * (model_load, instance_create) exactly as the server loads it, then one
 * fixed input is executed again and again, outputs allocated from an arena
 * reset after each execute as the server's per-request arena is.
 *
 *   onnx_bench --model PATH [--batch N] [--seq N] [--threads N]
 *              [--iterations N] [--warmup N] [--max-seconds S] [--vocab N]
 *              [--dump FILE]
 *
 * Prints one JSON line:
 *   {"runtime":"inferd","model":PATH,"batch":B,"seq":S,"threads":T,
 *    "warmup":W,"iterations":N,"load_ms":...,"first_ms":...,"p50_us":...,
 *    "p99_us":...,"mean_us":...,"min_us":...,"max_us":...}
 * load_ms is model_load + instance_create; first_ms the first execute (it
 * plans the input shapes); the percentiles (nearest rank) are over the N
 * timed executes after W warm-up ones. --max-seconds stops the timed loop
 * early once that much time has been spent in it (5 executes at least);
 * "iterations" says how many ran. On failure it prints
 *   {"runtime":"inferd",...,"stage":"load|instance|input|execute","error":"..."}
 * and exits 1. bench/onnx/ort_bench.js is the same program on ONNX Runtime.
 *
 * Inputs: every variable dimension of a model input is the batch size when
 * it is the first, --seq otherwise. The values come from a xorshift32 per
 * input (bench/onnx/ort_common.js makes the same): floats in [-1, 1),
 * integers in [0, vocab). --threads is the model parameter
 * intra_op_threads. --dump writes the first output's bytes (of the last
 * execute) to FILE, so that a driver can compare them with ONNX Runtime's. */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/onnx/onnx_backend.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/json_write.h"

#define ARENA_FIRST (64 << 10) /* as the server's request arenas */
#define MIN_TIMED   5

typedef struct options {
  const char *model;
  int batch, seq, threads, iterations, warmup, vocab;
  double max_seconds;
  const char *dump;
} options;

static options opt = {NULL, 1, 128, 1, 100, 5, 1000, 0, NULL};

/* The JSON line's first fields, shared by the answer and the error. */
static void put_head(buf *b) {
  buf_puts(b, "{\"runtime\":\"inferd\",\"model\":");
  json_put_cstr(b, opt.model ? opt.model : "");
  buf_printf(b, ",\"batch\":%d,\"seq\":%d,\"threads\":%d", opt.batch, opt.seq, opt.threads);
}

static void emit(buf *b) {
  buf_puts(b, "}\n");
  if (b->oom) {
    fputs("onnx_bench: out of memory\n", stderr);
    exit(1);
  }
  fwrite(b->data, 1, b->len, stdout);
  fflush(stdout);
  buf_free(b);
}

static void fail(const char *stage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *stage, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  buf b = {0};
  put_head(&b);
  buf_printf(&b, ",\"stage\":\"%s\",\"error\":", stage);
  json_put_cstr(&b, msg);
  emit(&b);
  exit(1);
}

static void usage(FILE *to) {
  fputs("usage: onnx_bench --model PATH [--batch N] [--seq N] [--threads N] [--iterations N]\n"
        "                  [--warmup N] [--max-seconds S] [--vocab N] [--dump FILE]\n",
        to);
}

static int int_arg(const char *name, const char *s, int min) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < min || v > 1000000000) {
    fprintf(stderr, "onnx_bench: --%s takes an integer of at least %d, not '%s'\n", name, min, s);
    exit(2);
  }
  return (int)v;
}

static void parse_args(int argc, char **argv) {
  static const struct option longs[] = {
      {"model", required_argument, NULL, 'm'},
      {"batch", required_argument, NULL, 'b'},
      {"seq", required_argument, NULL, 's'},
      {"threads", required_argument, NULL, 't'},
      {"iterations", required_argument, NULL, 'n'},
      {"warmup", required_argument, NULL, 'w'},
      {"max-seconds", required_argument, NULL, 'x'},
      {"vocab", required_argument, NULL, 'v'},
      {"dump", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
    case 'm': opt.model = optarg; break;
    case 'b': opt.batch = int_arg("batch", optarg, 1); break;
    case 's': opt.seq = int_arg("seq", optarg, 1); break;
    case 't': opt.threads = int_arg("threads", optarg, 1); break;
    case 'n': opt.iterations = int_arg("iterations", optarg, 1); break;
    case 'w': opt.warmup = int_arg("warmup", optarg, 0); break;
    case 'v': opt.vocab = int_arg("vocab", optarg, 1); break;
    case 'd': opt.dump = optarg; break;
    case 'x': {
      char *end;
      opt.max_seconds = strtod(optarg, &end);
      if (end == optarg || *end || !(opt.max_seconds >= 0)) {
        fprintf(stderr, "onnx_bench: --max-seconds takes a number of seconds, not '%s'\n", optarg);
        exit(2);
      }
      break;
    }
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
  }
  if (!opt.model || !*opt.model || optind != argc) {
    usage(stderr);
    exit(2);
  }
}

/* ---- inputs ------------------------------------------------------------- */

/* The generator of bench/onnx/ort_common.js, value for value. */
static void generate(void *data, inferd_dtype t, size_t count, unsigned index) {
  uint32_t x = 2463534242u + index * 2654435761u;
  if (!x) x = 1;
  for (size_t i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    double f = (double)(x >> 8) / 16777216.0 * 2.0 - 1.0;
    switch (t) {
    case INFERD_TYPE_FP32: ((float *)data)[i] = (float)f; break;
    case INFERD_TYPE_FP64: ((double *)data)[i] = f; break;
    case INFERD_TYPE_INT32: ((int32_t *)data)[i] = (int32_t)(x % (uint32_t)opt.vocab); break;
    case INFERD_TYPE_INT64: ((int64_t *)data)[i] = (int64_t)(x % (uint32_t)opt.vocab); break;
    default: break;
    }
  }
}

/* The input tensors, shaped from the model's declared inputs. */
static inferd_tensor *make_inputs(size_t n, const inferd_tensor_desc *d) {
  inferd_tensor *in = calloc(n ? n : 1, sizeof *in);
  if (!in) fail("input", "out of memory");
  for (size_t i = 0; i < n; i++) {
    inferd_dtype t = d[i].dtype;
    if (t != INFERD_TYPE_FP32 && t != INFERD_TYPE_FP64 && t != INFERD_TYPE_INT32 &&
        t != INFERD_TYPE_INT64)
      fail("input", "input '%s' is %s: this benchmark makes FP32, FP64, INT32 and INT64 inputs",
           d[i].name, dtype_name(t));
    in[i].name = d[i].name;
    in[i].dtype = t;
    in[i].ndim = d[i].ndim;
    for (int k = 0; k < d[i].ndim; k++)
      in[i].shape[k] = d[i].dims[k] >= 0 ? d[i].dims[k] : k == 0 ? opt.batch : opt.seq;
    if (d[i].ndim == 0 || in[i].shape[0] != opt.batch) {
      char s[96];
      shape_format(s, sizeof s, d[i].dims, d[i].ndim);
      fail("input", "input '%s' %s has no batch dimension of %d", d[i].name, s, opt.batch);
    }
    int64_t count = shape_elements(in[i].shape, in[i].ndim);
    in[i].byte_size = (size_t)count * dtype_size(t);
    in[i].data = aligned_alloc(64, (in[i].byte_size + 63) / 64 * 64 + 64);
    if (count < 0 || !in[i].data) fail("input", "input '%s' is too large", d[i].name);
    generate(in[i].data, t, (size_t)count, (unsigned)i);
  }
  return in;
}

/* ---- running ------------------------------------------------------------ */

static void *exec_alloc(inferd_exec *exec, size_t bytes) {
  return arena_alloc_aligned(exec->host, bytes ? bytes : 1, 64);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least q of the samples at or
 * below it. */
static double percentile(const double *sorted, int n, double q) {
  int k = (int)ceil(q * n);
  return sorted[k < 1 ? 0 : k > n ? n - 1 : k - 1];
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  const inferd_backend *be = onnx_backend();

  char threads[16];
  snprintf(threads, sizeof threads, "%d", opt.threads);
  const inferd_param params[] = {{"intra_op_threads", threads}};
  const char *slash = strrchr(opt.model, '/');
  char *version_dir = slash ? strndup(opt.model, (size_t)(slash - opt.model)) : strdup(".");
  if (!version_dir) fail("load", "out of memory");
  const inferd_model_desc desc = {
      .name = "onnx_bench",
      .version = 1,
      .version_dir = version_dir,
      .model_path = opt.model,
      .max_batch_size = opt.batch,
      .n_params = 1,
      .params = params,
  };

  char err[1024] = "";
  void *model = NULL, *instance = NULL;
  uint64_t t0 = clock_ns();
  int rc = be->model_load(&desc, &model, err, sizeof err);
  if (rc) fail("load", "%s (%s)", err, strerror(-rc));
  rc = be->instance_create(model, 0, &instance, err, sizeof err);
  if (rc) fail("instance", "%s (%s)", err, strerror(-rc));
  double load_ms = (double)(clock_ns() - t0) / 1e6;

  size_t n_in, n_out;
  const inferd_tensor_desc *din, *dout;
  rc = be->model_io(model, &n_in, &din, &n_out, &dout);
  if (rc) fail("load", "model_io failed (%s)", strerror(-rc));
  inferd_tensor *inputs = make_inputs(n_in, din);
  inferd_tensor *outputs = calloc(n_out ? n_out : 1, sizeof *outputs);
  bool *wanted = calloc(n_out ? n_out : 1, sizeof *wanted);
  arena *a = arena_create(ARENA_FIRST);
  int total = opt.warmup + opt.iterations + 1;
  double *us = calloc((size_t)total, sizeof *us);
  if (!outputs || !wanted || !a || !us) fail("execute", "out of memory");

  char exec_err[1024];
  double first_ms = 0, timed_ns = 0;
  int timed = 0;
  for (int it = 0; it < total; it++) {
    for (size_t j = 0; j < n_out; j++) {
      memset(&outputs[j], 0, sizeof outputs[j]);
      outputs[j].name = dout[j].name;
      outputs[j].dtype = dout[j].dtype;
      wanted[j] = true;
    }
    inferd_exec exec = {
        .batch_size = opt.batch,
        .n_inputs = n_in,
        .inputs = inputs,
        .n_outputs = n_out,
        .outputs = outputs,
        .output_wanted = wanted,
        .alloc = exec_alloc,
        .host = a,
        .error = exec_err,
        .error_size = sizeof exec_err,
    };
    exec_err[0] = 0;
    uint64_t s = clock_ns();
    rc = be->execute(instance, &exec);
    uint64_t ns = clock_ns() - s;
    if (rc) fail("execute", "%s (%s)", exec_err, strerror(-rc));
    if (it == 0) {
      first_ms = (double)ns / 1e6;
    } else if (it > opt.warmup) {
      us[timed++] = (double)ns / 1e3;
      timed_ns += (double)ns;
      if (opt.max_seconds > 0 && timed >= MIN_TIMED && timed_ns / 1e9 >= opt.max_seconds) {
        it = total - 1; /* the last: its output is the one dumped */
      }
    }
    if (it == total - 1 && opt.dump && n_out > 0) {
      FILE *f = fopen(opt.dump, "wb");
      if (!f || fwrite(outputs[0].data, 1, outputs[0].byte_size, f) != outputs[0].byte_size ||
          fclose(f) != 0)
        fail("execute", "cannot write %s", opt.dump);
    }
    arena_reset(a);
  }

  double mean = timed_ns / 1e3 / timed;
  qsort(us, (size_t)timed, sizeof *us, cmp_double);
  buf b = {0};
  put_head(&b);
  buf_printf(&b,
             ",\"warmup\":%d,\"iterations\":%d,\"load_ms\":%.3f,\"first_ms\":%.3f,"
             "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f",
             opt.warmup, timed, load_ms, first_ms, percentile(us, timed, 0.50),
             percentile(us, timed, 0.99), mean, us[0], us[timed - 1]);
  emit(&b);

  be->instance_destroy(instance);
  be->model_unload(model);
  arena_destroy(a);
  for (size_t i = 0; i < n_in; i++)
    free(inputs[i].data);
  free(inputs);
  free(outputs);
  free(wanted);
  free(us);
  free(version_dir);
  return 0;
}
