/* core/model_config.h: a model's configuration, the subset of Triton's
 * ModelConfig that inferd applies, as read from config.pbtxt (see
 * core/pbtxt.h), completed from the model file, and rendered back as JSON
 * for the model-configuration endpoint.
 *
 * A model_config owns all its memory (one arena); model_config_free
 * releases it. Fields that inferd parses but does not act on yet are kept so
 * that they can be shown and used by later layers.
 *
 * The life of a configuration, as in Triton:
 *   model_config_parse      config.pbtxt as written (or model_config_new when
 *                           there is no file);
 *   (the repository layer)  completes it: the name from the model's folder
 *                           when the file has none, backend, inputs and
 *                           outputs from the model file;
 *   model_config_normalize  fills what Triton fills before validating;
 *   model_config_check      refuses what cannot be served.
 * All strings are valid UTF-8 without NUL bytes. Maps (parameters,
 * priority_queue_policy, warmup inputs, ensemble input_map / output_map) are
 * sorted by key, one entry per key: the last one written wins. */
#ifndef INFERD_CORE_MODEL_CONFIG_H
#define INFERD_CORE_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "inferd/backend.h"

typedef enum tensor_format {
  FORMAT_NONE = 0,
  FORMAT_NHWC = 1,
  FORMAT_NCHW = 2,
} tensor_format;

/* An input or an output. dims exclude the batch dimension when
 * max_batch_size > 0; -1 is a variable dimension. */
typedef struct config_tensor {
  const char *name;
  inferd_dtype dtype;
  int ndim;
  int64_t dims[INFERD_MAX_DIMS];
  bool has_reshape; /* the model sees reshape_dims instead of dims */
  int reshape_ndim;
  int64_t reshape_dims[INFERD_MAX_DIMS];
  tensor_format format;         /* inputs */
  bool optional;                /* inputs: may be left out of a request */
  bool allow_ragged_batch;      /* inputs: batch requests whose shapes differ */
  const char *label_filename;   /* outputs: labels for classification */
  bool is_shape_tensor;         /* TensorRT only: model_config_check refuses it */
  bool is_non_linear_format_io; /* TensorRT only: model_config_check refuses it */
} config_tensor;

typedef enum version_policy_kind {
  VERSION_POLICY_LATEST = 0, /* the default: latest { num_versions: 1 } */
  VERSION_POLICY_ALL,
  VERSION_POLICY_SPECIFIC,
} version_policy_kind;

typedef struct version_policy {
  version_policy_kind kind;
  uint32_t latest_num; /* LATEST */
  size_t n_specific;   /* SPECIFIC */
  int64_t *specific;
} version_policy;

typedef enum instance_kind {
  KIND_AUTO = 0,
  KIND_GPU = 1,
  KIND_CPU = 2,
  KIND_MODEL = 3,
} instance_kind;

/* Parsing keeps the groups as written (none when the file has none), count 1
 * when not given; model_config_normalize adds the default group and resolves
 * names and kinds. The other fields of Triton's ModelInstanceGroup (gpus,
 * secondary_devices, rate_limiter, host_policy, passive, profile) are
 * accepted and not applied. */
typedef struct instance_group {
  const char *name; /* NULL until normalized when not given */
  int count;        /* 1 when not given */
  instance_kind kind;
} instance_group;

typedef enum timeout_action {
  TIMEOUT_REJECT = 0,
  TIMEOUT_DELAY = 1,
} timeout_action;

typedef struct queue_policy {
  timeout_action timeout_action;
  uint64_t default_timeout_us;
  bool allow_timeout_override;
  uint32_t max_queue_size; /* 0: unbounded */
} queue_policy;

typedef struct priority_queue_policy {
  uint64_t level;
  queue_policy policy;
} priority_queue_policy;

typedef struct dynamic_batching {
  size_t n_preferred;
  int64_t *preferred_batch_size;
  uint64_t max_queue_delay_us;
  bool preserve_ordering;
  uint64_t priority_levels;
  uint64_t default_priority_level;
  queue_policy default_queue_policy;
  size_t n_priority_policies;
  priority_queue_policy *priority_policies;
} dynamic_batching;

typedef struct config_param {
  const char *key;
  const char *value; /* parameters { key: "k" value: { string_value: "v" } } */
} config_param;

typedef enum warmup_source {
  WARMUP_ZERO = 0,
  WARMUP_RANDOM,
  WARMUP_FILE,
} warmup_source;

typedef struct warmup_input {
  const char *name;
  inferd_dtype dtype;
  int ndim;
  int64_t dims[INFERD_MAX_DIMS];
  warmup_source source;
  const char *input_data_file; /* WARMUP_FILE */
} warmup_input;

typedef struct model_warmup {
  const char *name;
  uint32_t batch_size;
  uint32_t count; /* runs: 1 when not given or 0, as Triton reads 0 */
  size_t n_inputs;
  warmup_input *inputs;
} model_warmup;

typedef struct map_entry {
  const char *key;
  const char *value;
} map_entry;

/* One step of ensemble_scheduling: input_map maps the step model's input
 * name (key) to an ensemble tensor name (value); output_map maps the step
 * model's output name to an ensemble tensor name. */
typedef struct ensemble_step {
  const char *model_name;
  int64_t model_version; /* -1: latest; -1 also when not given */
  size_t n_input_map;
  map_entry *input_map;
  size_t n_output_map;
  map_entry *output_map;
} ensemble_step;

typedef struct model_config {
  arena *arena; /* owns every string and array below */
  const char *name;
  const char *platform; /* "onnxruntime_onnx", "ensemble", ... ; NULL if unset */
  const char *backend;  /* "onnx", "onnxruntime", a user backend; NULL if unset */
  int max_batch_size;
  version_policy version_policy;
  size_t n_inputs;
  config_tensor *inputs;
  size_t n_outputs;
  config_tensor *outputs;
  size_t n_instance_groups;
  instance_group *instance_groups;
  const char *default_model_filename; /* NULL: the backend's default */
  bool has_dynamic_batching;
  dynamic_batching dynamic_batching;
  size_t n_params;
  config_param *params;
  size_t n_warmups;
  model_warmup *warmups;
  size_t n_ensemble_steps; /* > 0 when ensemble_scheduling is present */
  ensemble_step *ensemble_steps;
} model_config;

/* A config with Triton's defaults and nothing else (max_batch_size 0,
 * version_policy latest 1, no inputs, outputs or instance groups); NULL when
 * out of memory. */
model_config *model_config_new(void);
void model_config_free(model_config *c);

/* Parses config.pbtxt text. On error returns NULL with a message naming the
 * line, column and problem ("config.pbtxt:3:5: unknown field 'dimz' in
 * input") and e->code -EINVAL (-ENOMEM when out of memory). Fields of
 * Triton's ModelConfig that inferd does not apply are accepted and ignored
 * (with a log line at info level); anything else is an error. */
model_config *model_config_parse(const char *text, size_t len, err *e);

/* Fills in what Triton fills in before it validates, once the name is known
 * and the configuration is complete (max_batch_size included):
 *   - no instance_group (and not an ensemble): one group named after the
 *     model, KIND_CPU, count 1;
 *   - a group without a name: "<model>_<index>";
 *   - KIND_AUTO and KIND_GPU become KIND_CPU (inferd runs on the CPU; a
 *     KIND_GPU group is logged as a warning);
 *   - dynamic_batching without preferred_batch_size: [max_batch_size] when
 *     max_batch_size > 0.
 * Returns 0, -EINVAL when c has no name, -ENOMEM. */
int model_config_normalize(model_config *c, err *e);

/* Checks what parsing alone cannot, as Triton's validation does: names
 * present and unique, data types set, dims present, each >= 1 or -1, at
 * most INFERD_MAX_DIMS with the batch dimension, reshape element counts
 * equal to those of dims, max_batch_size >= 0, preferred batch sizes in
 * 1..max_batch_size, priority levels in range, instance counts >= 1, the
 * version policy, warmup samples, and the ensemble's data flow (every step
 * input produced, every output written, no tensor written twice or left
 * unused). Run it on a completed, normalized configuration. Returns 0,
 * -EINVAL with a message naming the field, -ENOMEM. */
int model_config_check(const model_config *c, err *e);

/* The configuration as the model-configuration endpoint answers it: the
 * JSON form of Triton's ModelConfig (proto field names, enums as names,
 * int64 as numbers, defaults included). */
void model_config_to_json(const model_config *c, buf *out);

/* The value of parameter key, or NULL (a binary search: params are sorted). */
const char *model_config_param(const model_config *c, const char *key);

#endif
