/* identity: the smallest useful inferd backend, and the one to copy.
 *
 * Every output is a copy of the input at the same position: OUTPUT i gets
 * INPUT i's data type, shape and bytes. It works for every data type (BYTES,
 * FP16 and BF16 included) because it never looks inside the data. Tests use
 * it to check what the server does around a backend: request decoding,
 * response encoding, batching, timeouts, concurrency.
 *
 * The model configuration lists inputs and outputs in pairs with equal data
 * types; a model folder needs no file besides config.pbtxt. One optional
 * parameter:
 *
 *   parameters { key: "delay_ms" value: { string_value: "50" } }
 *
 * makes every execute sleep that long first, to stand in for a slow model.
 *
 * Inputs may be `optional: true`; a request that leaves one out must then
 * not ask for its output (by naming the outputs it wants), or it fails with
 * -EINVAL, which inferd answers with 400.
 *
 * Built by CMake as build/backends/identity/libinferd_identity.so; inferd
 * finds it under --backend-directory when a configuration says
 * `backend: "identity"`. Only inferd_backend_entry is exported; the rest is
 * static. The ABI is include/inferd/backend.h. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* nanosleep, under -std=c11 */
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/backend.h"

/* The longest delay_ms accepted: ten minutes is a slow model; more is a typo. */
#define IDENTITY_MAX_DELAY_MS 600000L

/* Everything the backend keeps for a model. It has no weights, so this
 * struct is all of its memory. Instances share it: execute only reads it. */
typedef struct identity_model {
  char name[128]; /* for error messages */
  long delay_ms;
} identity_model;

/* Writes a printf-style message into a backend error buffer and returns
 * code, so that a failure reads `return fail(err, size, -EINVAL, ...)`. */
static int fail(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t err_size, int code, const char *fmt, ...) {
  if (err && err_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* ---- model ---------------------------------------------------------------- */

/* The value of the configuration parameter key, or NULL. */
static const char *param(const inferd_model_desc *desc, const char *key) {
  for (size_t i = 0; i < desc->n_params; i++)
    if (strcmp(desc->params[i].key, key) == 0) return desc->params[i].value;
  return NULL;
}

/* Checks once, at load, that the configuration pairs up inputs and outputs,
 * so that a wrong configuration fails to load instead of failing every
 * request; then reads delay_ms. */
static int identity_model_load(const inferd_model_desc *desc, void **model, char *err,
                               size_t err_size) {
  if (desc->n_inputs == 0)
    return fail(err, err_size, -EINVAL,
                "identity: model '%s' lists no inputs; list them and their outputs in "
                "config.pbtxt",
                desc->name);
  if (desc->n_inputs != desc->n_outputs)
    return fail(err, err_size, -EINVAL,
                "identity: model '%s' has %zu inputs but %zu outputs; they must pair up",
                desc->name, desc->n_inputs, desc->n_outputs);
  for (size_t i = 0; i < desc->n_inputs; i++)
    if (desc->inputs[i].dtype != desc->outputs[i].dtype)
      return fail(err, err_size, -EINVAL,
                  "identity: input '%s' and output '%s' (number %zu) have different data types",
                  desc->inputs[i].name, desc->outputs[i].name, i);

  long delay_ms = 0;
  const char *delay = param(desc, "delay_ms");
  if (delay) {
    char *end;
    errno = 0;
    delay_ms = strtol(delay, &end, 10);
    if (errno || end == delay || *end != '\0' || delay_ms < 0 || delay_ms > IDENTITY_MAX_DELAY_MS)
      return fail(err, err_size, -EINVAL,
                  "identity: parameter delay_ms is '%s'; want milliseconds, 0 to %ld", delay,
                  IDENTITY_MAX_DELAY_MS);
  }

  identity_model *m = calloc(1, sizeof *m);
  if (!m) return fail(err, err_size, -ENOMEM, "identity: out of memory");
  snprintf(m->name, sizeof m->name, "%s", desc->name);
  m->delay_ms = delay_ms;
  *model = m;
  return 0;
}

static size_t identity_model_memory(void *model) {
  (void)model;
  return sizeof(identity_model);
}

static void identity_model_unload(void *model) { free(model); }

/* ---- instances ------------------------------------------------------------ */

/* An instance needs no state of its own, so it is the model itself. A backend
 * with per-instance state (scratch buffers, a session) allocates it here. */
static int identity_instance_create(void *model, int index, void **instance, char *err,
                                    size_t err_size) {
  (void)index;
  (void)err;
  (void)err_size;
  *instance = model;
  return 0;
}

static void identity_instance_destroy(void *instance) { (void)instance; }

/* ---- execute -------------------------------------------------------------- */

/* Sleeps ms milliseconds, resuming after signals. */
static void sleep_ms(long ms) {
  struct timespec left = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

/* An optional input the request left out. inferd passes it zero-filled: no
 * data and no dimensions (a real tensor has ndim >= 1, or is a scalar with
 * bytes). */
static int input_absent(const inferd_tensor *t) {
  return t->data == NULL && t->byte_size == 0 && t->ndim == 0;
}

static int identity_execute(void *instance, inferd_exec *exec) {
  const identity_model *m = instance;
  char *err = exec->error;
  size_t err_size = exec->error_size;

  if (exec->n_inputs != exec->n_outputs)
    return fail(err, err_size, -EINVAL, "identity: model '%s' got %zu inputs for %zu outputs",
                m->name, exec->n_inputs, exec->n_outputs);

  if (m->delay_ms > 0) sleep_ms(m->delay_ms);

  for (size_t i = 0; i < exec->n_outputs; i++) {
    const inferd_tensor *in = &exec->inputs[i];
    inferd_tensor *out = &exec->outputs[i];
    if (!exec->output_wanted[i]) continue;
    if (input_absent(in))
      return fail(err, err_size, -EINVAL,
                  "identity: output '%s' was asked for but its input '%s' was not given", out->name,
                  in->name ? in->name : "?");
    if (in->dtype != out->dtype)
      return fail(err, err_size, -EINVAL,
                  "identity: input '%s' and output '%s' have different data types", in->name,
                  out->name);

    /* The output's memory comes from inferd and lives until the response is
     * written. alloc(0) may legally return NULL, so ask for at least a byte. */
    void *data = exec->alloc(exec, in->byte_size ? in->byte_size : 1);
    if (!data) return fail(err, err_size, -ENOMEM, "identity: out of memory");
    if (in->byte_size) memcpy(data, in->data, in->byte_size);

    out->ndim = in->ndim;
    memcpy(out->shape, in->shape, sizeof out->shape);
    out->data = data;
    out->byte_size = in->byte_size;
  }
  return 0;
}

/* ---- entry ---------------------------------------------------------------- */

static const inferd_backend identity_backend = {
    .api_version = INFERD_BACKEND_API_VERSION,
    .name = "identity",
    .model_load = identity_model_load,
    .model_io = NULL, /* the configuration always lists the tensors */
    .model_memory = identity_model_memory,
    .model_unload = identity_model_unload,
    .instance_create = identity_instance_create,
    .instance_destroy = identity_instance_destroy,
    .execute = identity_execute,
};

/* The one symbol inferd looks up after dlopen. */
__attribute__((visibility("default"))) const inferd_backend *inferd_backend_entry(void) {
  return &identity_backend;
}
