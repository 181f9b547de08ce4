/* core/model_config.c: Triton's ModelConfig for inferd: the schema of the
 * whole message (so that every field of a real Triton configuration is
 * checked, even those inferd skips), reading the applied fields into a
 * model_config, Triton's normalization and validation, and the JSON form of
 * the model-configuration endpoint.
 *
 * The schema tables follow common/protobuf/model_config.proto of
 * triton-inference-server: field names, types and enum values. Messages
 * inferd reads have an index enum, so that the reader switches on the field
 * index pbtxt_check stored in each node. */
#include "core/model_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/json_write.h"
#include "core/log.h"
#include "core/pbtxt.h"
#include "core/utf8.h"

#define SOURCE   "config.pbtxt"
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- schema --------------------------------------------------------------- */

/* clang-format off */
#define SCALAR(n, t)        {.name = n, .type = PBTXT_TYPE_##t}
#define REPEATED(n, t)      {.name = n, .type = PBTXT_TYPE_##t, .repeated = true}
#define ENUM(n, en)         {.name = n, .type = PBTXT_TYPE_ENUM, .enumeration = &en}
#define MESSAGE(n, m)       {.name = n, .type = PBTXT_TYPE_MESSAGE, .message = &m}
#define MESSAGES(n, m)      {.name = n, .type = PBTXT_TYPE_MESSAGE, .repeated = true, .message = &m}
#define ONEOF(n, t, g)      {.name = n, .type = PBTXT_TYPE_##t, .oneof = g}
#define ONEOF_MESSAGE(n, m) {.name = n, .type = PBTXT_TYPE_MESSAGE, .oneof = 1, .message = &m}
#define DEFINE_MESSAGE(var, proto_name, fields) \
  static const pbtxt_message var = {proto_name, fields, COUNT(fields)}
#define DEFINE_ENUM(var, names, example) static const pbtxt_enum var = {names, COUNT(names), example}
/* clang-format on */

static const char *const data_type_names[] = {
    "TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32",
    "TYPE_UINT64",  "TYPE_INT8", "TYPE_INT16", "TYPE_INT32",  "TYPE_INT64",
    "TYPE_FP16",    "TYPE_FP32", "TYPE_FP64",  "TYPE_STRING", "TYPE_BF16",
};
_Static_assert(COUNT(data_type_names) == INFERD_TYPE_BF16 + 1,
               "DataType names must follow inferd_dtype, whose numbers are Triton's");
DEFINE_ENUM(data_type_enum, data_type_names, "TYPE_FP32");

static const char *const format_names[] = {"FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW"};
DEFINE_ENUM(format_enum, format_names, "FORMAT_NCHW");
static const char *const kind_names[] = {"KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"};
DEFINE_ENUM(kind_enum, kind_names, "KIND_CPU");
static const char *const timeout_action_names[] = {"REJECT", "DELAY"};
DEFINE_ENUM(timeout_action_enum, timeout_action_names, "REJECT");
static const char *const secondary_kind_names[] = {"KIND_NVDLA"};
DEFINE_ENUM(secondary_kind_enum, secondary_kind_names, "KIND_NVDLA");
static const char *const batch_input_kind_names[] = {
    "BATCH_ELEMENT_COUNT",
    "BATCH_ACCUMULATED_ELEMENT_COUNT",
    "BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO",
    "BATCH_MAX_ELEMENT_COUNT_AS_SHAPE",
    "BATCH_ITEM_SHAPE",
    "BATCH_ITEM_SHAPE_FLATTEN",
};
DEFINE_ENUM(batch_input_kind_enum, batch_input_kind_names, "BATCH_ELEMENT_COUNT");
static const char *const batch_output_kind_names[] = {"BATCH_SCATTER_WITH_INPUT_SHAPE"};
DEFINE_ENUM(batch_output_kind_enum, batch_output_kind_names, "BATCH_SCATTER_WITH_INPUT_SHAPE");
static const char *const priority_names[] = {"PRIORITY_DEFAULT", "PRIORITY_MAX", "PRIORITY_MIN"};
DEFINE_ENUM(priority_enum, priority_names, "PRIORITY_DEFAULT");
static const char *const control_kind_names[] = {
    "CONTROL_SEQUENCE_START",
    "CONTROL_SEQUENCE_READY",
    "CONTROL_SEQUENCE_END",
    "CONTROL_SEQUENCE_CORRID",
};
DEFINE_ENUM(control_kind_enum, control_kind_names, "CONTROL_SEQUENCE_START");

/* Map entries: `key` is field 0 and `value` field 1 in every one of them. */
enum { MAP_KEY, MAP_VALUE };
static const pbtxt_field string_string_entry_fields[] = {SCALAR("key", STRING),
                                                         SCALAR("value", STRING)};
DEFINE_MESSAGE(string_string_entry, "map<string, string>", string_string_entry_fields);

/* Messages inferd accepts and skips. */

static const pbtxt_field resource_fields[] = {SCALAR("name", STRING), SCALAR("global", BOOL),
                                              SCALAR("count", UINT32)};
DEFINE_MESSAGE(resource_msg, "ModelRateLimiter.Resource", resource_fields);
static const pbtxt_field rate_limiter_fields[] = {MESSAGES("resources", resource_msg),
                                                  SCALAR("priority", UINT32)};
DEFINE_MESSAGE(rate_limiter_msg, "ModelRateLimiter", rate_limiter_fields);
static const pbtxt_field secondary_device_fields[] = {ENUM("kind", secondary_kind_enum),
                                                      SCALAR("device_id", INT64)};
DEFINE_MESSAGE(secondary_device_msg, "ModelInstanceGroup.SecondaryDevice", secondary_device_fields);

static const pbtxt_field batch_input_fields[] = {
    ENUM("kind", batch_input_kind_enum),
    REPEATED("target_name", STRING),
    ENUM("data_type", data_type_enum),
    REPEATED("source_input", STRING),
};
DEFINE_MESSAGE(batch_input_msg, "BatchInput", batch_input_fields);
static const pbtxt_field batch_output_fields[] = {
    REPEATED("target_name", STRING),
    ENUM("kind", batch_output_kind_enum),
    REPEATED("source_input", STRING),
};
DEFINE_MESSAGE(batch_output_msg, "BatchOutput", batch_output_fields);

static const pbtxt_field graph_fields[] = {SCALAR("level", INT32)};
DEFINE_MESSAGE(graph_msg, "ModelOptimizationPolicy.Graph", graph_fields);
static const pbtxt_field shape_fields[] = {REPEATED("dim", INT64)};
DEFINE_MESSAGE(shape_msg, "ModelOptimizationPolicy.Cuda.GraphSpec.Shape", shape_fields);
static const pbtxt_field string_shape_entry_fields[] = {SCALAR("key", STRING),
                                                        MESSAGE("value", shape_msg)};
DEFINE_MESSAGE(string_shape_entry, "map<string, Shape>", string_shape_entry_fields);
static const pbtxt_field lower_bound_fields[] = {SCALAR("batch_size", INT32),
                                                 MESSAGES("input", string_shape_entry)};
DEFINE_MESSAGE(lower_bound_msg, "ModelOptimizationPolicy.Cuda.GraphSpec.LowerBound",
               lower_bound_fields);
static const pbtxt_field graph_spec_fields[] = {
    SCALAR("batch_size", INT32),
    MESSAGES("input", string_shape_entry),
    MESSAGE("graph_lower_bound", lower_bound_msg),
};
DEFINE_MESSAGE(graph_spec_msg, "ModelOptimizationPolicy.Cuda.GraphSpec", graph_spec_fields);
static const pbtxt_field cuda_fields[] = {
    SCALAR("graphs", BOOL),
    SCALAR("busy_wait_events", BOOL),
    MESSAGES("graph_spec", graph_spec_msg),
    SCALAR("output_copy_stream", BOOL),
};
DEFINE_MESSAGE(cuda_msg, "ModelOptimizationPolicy.Cuda", cuda_fields);
static const pbtxt_field accelerator_fields[] = {SCALAR("name", STRING),
                                                 MESSAGES("parameters", string_string_entry)};
DEFINE_MESSAGE(accelerator_msg, "ModelOptimizationPolicy.ExecutionAccelerators.Accelerator",
               accelerator_fields);
static const pbtxt_field accelerators_fields[] = {
    MESSAGES("gpu_execution_accelerator", accelerator_msg),
    MESSAGES("cpu_execution_accelerator", accelerator_msg),
};
DEFINE_MESSAGE(accelerators_msg, "ModelOptimizationPolicy.ExecutionAccelerators",
               accelerators_fields);
static const pbtxt_field pinned_fields[] = {SCALAR("enable", BOOL)};
DEFINE_MESSAGE(pinned_msg, "ModelOptimizationPolicy.PinnedMemoryBuffer", pinned_fields);
static const pbtxt_field optimization_fields[] = {
    MESSAGE("graph", graph_msg),
    ENUM("priority", priority_enum),
    MESSAGE("cuda", cuda_msg),
    MESSAGE("execution_accelerators", accelerators_msg),
    MESSAGE("input_pinned_memory", pinned_msg),
    MESSAGE("output_pinned_memory", pinned_msg),
    SCALAR("gather_kernel_buffer_threshold", UINT32),
    SCALAR("eager_batching", BOOL),
};
DEFINE_MESSAGE(optimization_msg, "ModelOptimizationPolicy", optimization_fields);

static const pbtxt_field control_fields[] = {
    ENUM("kind", control_kind_enum),    REPEATED("int32_false_true", INT32),
    REPEATED("fp32_false_true", FLOAT), REPEATED("bool_false_true", BOOL),
    ENUM("data_type", data_type_enum),
};
DEFINE_MESSAGE(control_msg, "ModelSequenceBatching.Control", control_fields);
static const pbtxt_field control_input_fields[] = {SCALAR("name", STRING),
                                                   MESSAGES("control", control_msg)};
DEFINE_MESSAGE(control_input_msg, "ModelSequenceBatching.ControlInput", control_input_fields);
static const pbtxt_field initial_state_fields[] = {
    ENUM("data_type", data_type_enum), REPEATED("dims", INT64), ONEOF("zero_data", BOOL, 1),
    ONEOF("data_file", STRING, 1),     SCALAR("name", STRING),
};
DEFINE_MESSAGE(initial_state_msg, "ModelSequenceBatching.InitialState", initial_state_fields);
static const pbtxt_field state_fields[] = {
    SCALAR("input_name", STRING),
    SCALAR("output_name", STRING),
    ENUM("data_type", data_type_enum),
    REPEATED("dims", INT64),
    MESSAGES("initial_state", initial_state_msg),
    SCALAR("use_same_buffer_for_input_output", BOOL),
    SCALAR("use_growable_memory", BOOL),
};
DEFINE_MESSAGE(state_msg, "ModelSequenceBatching.State", state_fields);
static const pbtxt_field direct_fields[] = {SCALAR("max_queue_delay_microseconds", UINT64),
                                            SCALAR("minimum_slot_utilization", FLOAT)};
DEFINE_MESSAGE(direct_msg, "ModelSequenceBatching.StrategyDirect", direct_fields);
static const pbtxt_field oldest_fields[] = {
    SCALAR("max_candidate_sequences", INT32),
    REPEATED("preferred_batch_size", INT32),
    SCALAR("max_queue_delay_microseconds", UINT64),
    SCALAR("preserve_ordering", BOOL),
};
DEFINE_MESSAGE(oldest_msg, "ModelSequenceBatching.StrategyOldest", oldest_fields);
static const pbtxt_field sequence_batching_fields[] = {
    ONEOF_MESSAGE("direct", direct_msg),
    ONEOF_MESSAGE("oldest", oldest_msg),
    SCALAR("max_sequence_idle_microseconds", UINT64),
    MESSAGES("control_input", control_input_msg),
    MESSAGES("state", state_msg),
    SCALAR("iterative_sequence", BOOL),
};
DEFINE_MESSAGE(sequence_batching_msg, "ModelSequenceBatching", sequence_batching_fields);

static const pbtxt_field operations_fields[] = {REPEATED("op_library_filename", STRING)};
DEFINE_MESSAGE(operations_msg, "ModelOperations", operations_fields);
static const pbtxt_field transaction_fields[] = {SCALAR("decoupled", BOOL)};
DEFINE_MESSAGE(transaction_msg, "ModelTransactionPolicy", transaction_fields);
static const pbtxt_field agent_fields[] = {SCALAR("name", STRING),
                                           MESSAGES("parameters", string_string_entry)};
DEFINE_MESSAGE(agent_msg, "ModelRepositoryAgents.Agent", agent_fields);
static const pbtxt_field agents_fields[] = {MESSAGES("agents", agent_msg)};
DEFINE_MESSAGE(agents_msg, "ModelRepositoryAgents", agents_fields);
static const pbtxt_field response_cache_fields[] = {SCALAR("enable", BOOL)};
DEFINE_MESSAGE(response_cache_msg, "ModelResponseCache", response_cache_fields);
static const pbtxt_field metric_identifier_fields[] = {SCALAR("family", STRING)};
DEFINE_MESSAGE(metric_identifier_msg, "ModelMetrics.MetricControl.MetricIdentifier",
               metric_identifier_fields);
static const pbtxt_field histogram_fields[] = {REPEATED("buckets", DOUBLE)};
DEFINE_MESSAGE(histogram_msg, "ModelMetrics.MetricControl.HistogramOptions", histogram_fields);
static const pbtxt_field metric_control_fields[] = {
    MESSAGE("metric_identifier", metric_identifier_msg),
    ONEOF_MESSAGE("histogram_options", histogram_msg),
};
DEFINE_MESSAGE(metric_control_msg, "ModelMetrics.MetricControl", metric_control_fields);
static const pbtxt_field metrics_fields[] = {MESSAGES("metric_control", metric_control_msg)};
DEFINE_MESSAGE(metrics_msg, "ModelMetrics", metrics_fields);

/* Messages inferd reads. */

static const pbtxt_field latest_fields[] = {SCALAR("num_versions", UINT32)};
DEFINE_MESSAGE(latest_msg, "ModelVersionPolicy.Latest", latest_fields);
static const pbtxt_field all_fields[1] = {{0}};
static const pbtxt_message all_msg = {"ModelVersionPolicy.All", all_fields, 0};
static const pbtxt_field specific_fields[] = {REPEATED("versions", INT64)};
DEFINE_MESSAGE(specific_msg, "ModelVersionPolicy.Specific", specific_fields);
enum { VP_LATEST, VP_ALL, VP_SPECIFIC, VP_N };
static const pbtxt_field version_policy_fields[] = {
    [VP_LATEST] = ONEOF_MESSAGE("latest", latest_msg),
    [VP_ALL] = ONEOF_MESSAGE("all", all_msg),
    [VP_SPECIFIC] = ONEOF_MESSAGE("specific", specific_msg),
};
_Static_assert(COUNT(version_policy_fields) == VP_N, "version_policy fields");
DEFINE_MESSAGE(version_policy_msg, "ModelVersionPolicy", version_policy_fields);

static const pbtxt_field reshape_fields[] = {REPEATED("shape", INT64)};
DEFINE_MESSAGE(reshape_msg, "ModelTensorReshape", reshape_fields);

enum {
  IN_NAME,
  IN_DATA_TYPE,
  IN_FORMAT,
  IN_DIMS,
  IN_RESHAPE,
  IN_IS_SHAPE_TENSOR,
  IN_ALLOW_RAGGED_BATCH,
  IN_OPTIONAL,
  IN_IS_NON_LINEAR_FORMAT_IO,
  IN_N
};
static const pbtxt_field input_fields[] = {
    [IN_NAME] = SCALAR("name", STRING),
    [IN_DATA_TYPE] = ENUM("data_type", data_type_enum),
    [IN_FORMAT] = ENUM("format", format_enum),
    [IN_DIMS] = REPEATED("dims", INT64),
    [IN_RESHAPE] = MESSAGE("reshape", reshape_msg),
    [IN_IS_SHAPE_TENSOR] = SCALAR("is_shape_tensor", BOOL),
    [IN_ALLOW_RAGGED_BATCH] = SCALAR("allow_ragged_batch", BOOL),
    [IN_OPTIONAL] = SCALAR("optional", BOOL),
    [IN_IS_NON_LINEAR_FORMAT_IO] = SCALAR("is_non_linear_format_io", BOOL),
};
_Static_assert(COUNT(input_fields) == IN_N, "input fields");
DEFINE_MESSAGE(input_msg, "ModelInput", input_fields);

enum {
  OUT_NAME,
  OUT_DATA_TYPE,
  OUT_DIMS,
  OUT_RESHAPE,
  OUT_LABEL_FILENAME,
  OUT_IS_SHAPE_TENSOR,
  OUT_IS_NON_LINEAR_FORMAT_IO,
  OUT_N
};
static const pbtxt_field output_fields[] = {
    [OUT_NAME] = SCALAR("name", STRING),
    [OUT_DATA_TYPE] = ENUM("data_type", data_type_enum),
    [OUT_DIMS] = REPEATED("dims", INT64),
    [OUT_RESHAPE] = MESSAGE("reshape", reshape_msg),
    [OUT_LABEL_FILENAME] = SCALAR("label_filename", STRING),
    [OUT_IS_SHAPE_TENSOR] = SCALAR("is_shape_tensor", BOOL),
    [OUT_IS_NON_LINEAR_FORMAT_IO] = SCALAR("is_non_linear_format_io", BOOL),
};
_Static_assert(COUNT(output_fields) == OUT_N, "output fields");
DEFINE_MESSAGE(output_msg, "ModelOutput", output_fields);

enum {
  IG_NAME,
  IG_KIND,
  IG_COUNT,
  IG_RATE_LIMITER,
  IG_GPUS,
  IG_SECONDARY_DEVICES,
  IG_PROFILE,
  IG_PASSIVE,
  IG_HOST_POLICY,
  IG_N
};
static const pbtxt_field instance_group_fields[] = {
    [IG_NAME] = SCALAR("name", STRING),
    [IG_KIND] = ENUM("kind", kind_enum),
    [IG_COUNT] = SCALAR("count", INT32),
    [IG_RATE_LIMITER] = MESSAGE("rate_limiter", rate_limiter_msg),
    [IG_GPUS] = REPEATED("gpus", INT32),
    [IG_SECONDARY_DEVICES] = MESSAGES("secondary_devices", secondary_device_msg),
    [IG_PROFILE] = REPEATED("profile", STRING),
    [IG_PASSIVE] = SCALAR("passive", BOOL),
    [IG_HOST_POLICY] = SCALAR("host_policy", STRING),
};
_Static_assert(COUNT(instance_group_fields) == IG_N, "instance_group fields");
DEFINE_MESSAGE(instance_group_msg, "ModelInstanceGroup", instance_group_fields);

enum { QP_TIMEOUT_ACTION, QP_DEFAULT_TIMEOUT, QP_ALLOW_OVERRIDE, QP_MAX_QUEUE_SIZE, QP_N };
static const pbtxt_field queue_policy_fields[] = {
    [QP_TIMEOUT_ACTION] = ENUM("timeout_action", timeout_action_enum),
    [QP_DEFAULT_TIMEOUT] = SCALAR("default_timeout_microseconds", UINT64),
    [QP_ALLOW_OVERRIDE] = SCALAR("allow_timeout_override", BOOL),
    [QP_MAX_QUEUE_SIZE] = SCALAR("max_queue_size", UINT32),
};
_Static_assert(COUNT(queue_policy_fields) == QP_N, "queue policy fields");
DEFINE_MESSAGE(queue_policy_msg, "ModelQueuePolicy", queue_policy_fields);
static const pbtxt_field priority_entry_fields[] = {
    [MAP_KEY] = SCALAR("key", UINT64),
    [MAP_VALUE] = MESSAGE("value", queue_policy_msg),
};
DEFINE_MESSAGE(priority_entry, "map<uint64, ModelQueuePolicy>", priority_entry_fields);

enum {
  DB_PREFERRED_BATCH_SIZE,
  DB_MAX_QUEUE_DELAY,
  DB_PRESERVE_ORDERING,
  DB_PRIORITY_LEVELS,
  DB_DEFAULT_PRIORITY_LEVEL,
  DB_DEFAULT_QUEUE_POLICY,
  DB_PRIORITY_QUEUE_POLICY,
  DB_N
};
static const pbtxt_field dynamic_batching_fields[] = {
    [DB_PREFERRED_BATCH_SIZE] = REPEATED("preferred_batch_size", INT32),
    [DB_MAX_QUEUE_DELAY] = SCALAR("max_queue_delay_microseconds", UINT64),
    [DB_PRESERVE_ORDERING] = SCALAR("preserve_ordering", BOOL),
    [DB_PRIORITY_LEVELS] = SCALAR("priority_levels", UINT64),
    [DB_DEFAULT_PRIORITY_LEVEL] = SCALAR("default_priority_level", UINT64),
    [DB_DEFAULT_QUEUE_POLICY] = MESSAGE("default_queue_policy", queue_policy_msg),
    [DB_PRIORITY_QUEUE_POLICY] = MESSAGES("priority_queue_policy", priority_entry),
};
_Static_assert(COUNT(dynamic_batching_fields) == DB_N, "dynamic_batching fields");
DEFINE_MESSAGE(dynamic_batching_msg, "ModelDynamicBatching", dynamic_batching_fields);

static const pbtxt_field parameter_fields[] = {SCALAR("string_value", STRING)};
DEFINE_MESSAGE(parameter_msg, "ModelParameter", parameter_fields);
static const pbtxt_field parameter_entry_fields[] = {
    [MAP_KEY] = SCALAR("key", STRING),
    [MAP_VALUE] = MESSAGE("value", parameter_msg),
};
DEFINE_MESSAGE(parameter_entry, "map<string, ModelParameter>", parameter_entry_fields);

enum { WI_DATA_TYPE, WI_DIMS, WI_ZERO_DATA, WI_RANDOM_DATA, WI_INPUT_DATA_FILE, WI_N };
static const pbtxt_field warmup_input_fields[] = {
    [WI_DATA_TYPE] = ENUM("data_type", data_type_enum),
    [WI_DIMS] = REPEATED("dims", INT64),
    [WI_ZERO_DATA] = ONEOF("zero_data", BOOL, 1),
    [WI_RANDOM_DATA] = ONEOF("random_data", BOOL, 1),
    [WI_INPUT_DATA_FILE] = ONEOF("input_data_file", STRING, 1),
};
_Static_assert(COUNT(warmup_input_fields) == WI_N, "warmup input fields");
DEFINE_MESSAGE(warmup_input_msg, "ModelWarmup.Input", warmup_input_fields);
static const pbtxt_field warmup_input_entry_fields[] = {
    [MAP_KEY] = SCALAR("key", STRING),
    [MAP_VALUE] = MESSAGE("value", warmup_input_msg),
};
DEFINE_MESSAGE(warmup_input_entry, "map<string, ModelWarmup.Input>", warmup_input_entry_fields);
enum { WU_NAME, WU_BATCH_SIZE, WU_INPUTS, WU_COUNT, WU_N };
static const pbtxt_field warmup_fields[] = {
    [WU_NAME] = SCALAR("name", STRING),
    [WU_BATCH_SIZE] = SCALAR("batch_size", UINT32),
    [WU_INPUTS] = MESSAGES("inputs", warmup_input_entry),
    [WU_COUNT] = SCALAR("count", UINT32),
};
_Static_assert(COUNT(warmup_fields) == WU_N, "warmup fields");
DEFINE_MESSAGE(warmup_msg, "ModelWarmup", warmup_fields);

enum { ST_MODEL_NAME, ST_MODEL_VERSION, ST_INPUT_MAP, ST_OUTPUT_MAP, ST_MODEL_NAMESPACE, ST_N };
static const pbtxt_field step_fields[] = {
    [ST_MODEL_NAME] = SCALAR("model_name", STRING),
    [ST_MODEL_VERSION] = SCALAR("model_version", INT64),
    [ST_INPUT_MAP] = MESSAGES("input_map", string_string_entry),
    [ST_OUTPUT_MAP] = MESSAGES("output_map", string_string_entry),
    [ST_MODEL_NAMESPACE] = SCALAR("model_namespace", STRING),
};
_Static_assert(COUNT(step_fields) == ST_N, "ensemble step fields");
DEFINE_MESSAGE(step_msg, "ModelEnsembling.Step", step_fields);
enum { EN_STEP, EN_MAX_INFLIGHT_RESPONSES, EN_N };
static const pbtxt_field ensemble_fields[] = {
    [EN_STEP] = MESSAGES("step", step_msg),
    [EN_MAX_INFLIGHT_RESPONSES] = SCALAR("max_inflight_responses", UINT32),
};
_Static_assert(COUNT(ensemble_fields) == EN_N, "ensemble fields");
DEFINE_MESSAGE(ensemble_msg, "ModelEnsembling", ensemble_fields);

enum {
  MC_NAME,
  MC_PLATFORM,
  MC_BACKEND,
  MC_RUNTIME,
  MC_VERSION_POLICY,
  MC_MAX_BATCH_SIZE,
  MC_INPUT,
  MC_OUTPUT,
  MC_BATCH_INPUT,
  MC_BATCH_OUTPUT,
  MC_OPTIMIZATION,
  MC_DYNAMIC_BATCHING,
  MC_SEQUENCE_BATCHING,
  MC_ENSEMBLE_SCHEDULING,
  MC_INSTANCE_GROUP,
  MC_DEFAULT_MODEL_FILENAME,
  MC_CC_MODEL_FILENAMES,
  MC_METRIC_TAGS,
  MC_PARAMETERS,
  MC_MODEL_WARMUP,
  MC_MODEL_OPERATIONS,
  MC_MODEL_TRANSACTION_POLICY,
  MC_MODEL_REPOSITORY_AGENTS,
  MC_RESPONSE_CACHE,
  MC_MODEL_METRICS,
  MC_N
};
static const pbtxt_field model_config_fields[] = {
    [MC_NAME] = SCALAR("name", STRING),
    [MC_PLATFORM] = SCALAR("platform", STRING),
    [MC_BACKEND] = SCALAR("backend", STRING),
    [MC_RUNTIME] = SCALAR("runtime", STRING),
    [MC_VERSION_POLICY] = MESSAGE("version_policy", version_policy_msg),
    [MC_MAX_BATCH_SIZE] = SCALAR("max_batch_size", INT32),
    [MC_INPUT] = MESSAGES("input", input_msg),
    [MC_OUTPUT] = MESSAGES("output", output_msg),
    [MC_BATCH_INPUT] = MESSAGES("batch_input", batch_input_msg),
    [MC_BATCH_OUTPUT] = MESSAGES("batch_output", batch_output_msg),
    [MC_OPTIMIZATION] = MESSAGE("optimization", optimization_msg),
    [MC_DYNAMIC_BATCHING] = ONEOF_MESSAGE("dynamic_batching", dynamic_batching_msg),
    [MC_SEQUENCE_BATCHING] = ONEOF_MESSAGE("sequence_batching", sequence_batching_msg),
    [MC_ENSEMBLE_SCHEDULING] = ONEOF_MESSAGE("ensemble_scheduling", ensemble_msg),
    [MC_INSTANCE_GROUP] = MESSAGES("instance_group", instance_group_msg),
    [MC_DEFAULT_MODEL_FILENAME] = SCALAR("default_model_filename", STRING),
    [MC_CC_MODEL_FILENAMES] = MESSAGES("cc_model_filenames", string_string_entry),
    [MC_METRIC_TAGS] = MESSAGES("metric_tags", string_string_entry),
    [MC_PARAMETERS] = MESSAGES("parameters", parameter_entry),
    [MC_MODEL_WARMUP] = MESSAGES("model_warmup", warmup_msg),
    [MC_MODEL_OPERATIONS] = MESSAGE("model_operations", operations_msg),
    [MC_MODEL_TRANSACTION_POLICY] = MESSAGE("model_transaction_policy", transaction_msg),
    [MC_MODEL_REPOSITORY_AGENTS] = MESSAGE("model_repository_agents", agents_msg),
    [MC_RESPONSE_CACHE] = MESSAGE("response_cache", response_cache_msg),
    [MC_MODEL_METRICS] = MESSAGE("model_metrics", metrics_msg),
};
_Static_assert(COUNT(model_config_fields) == MC_N, "ModelConfig fields");
DEFINE_MESSAGE(model_config_msg, "ModelConfig", model_config_fields);

/* ---- reading the tree ----------------------------------------------------- */

typedef struct reader {
  model_config *c;
  err *e;
} reader;

static int nomem(reader *R) {
  return err_set(R->e, -ENOMEM, "out of memory reading configuration");
}

/* A copy of a string node in the configuration's arena. Strings go into C
 * APIs, file paths and JSON answers, so NUL bytes and invalid UTF-8 are
 * refused here, where the position is still known. */
static int get_string(reader *R, const pbtxt_node *n, const char *what, const char **out) {
  if (memchr(n->text, 0, n->len))
    return pbtxt_error_at(R->e, SOURCE, n->vpos, "%s contains a NUL byte", what);
  if (!utf8_valid((const unsigned char *)n->text, n->len))
    return pbtxt_error_at(R->e, SOURCE, n->vpos, "%s is not valid UTF-8", what);
  *out = arena_strndup(R->c->arena, n->text, n->len);
  return *out ? 0 : nomem(R);
}

/* Values pbtxt_check has already vetted for kind and range. */
static int64_t get_i64(const pbtxt_node *n) {
  int64_t v = 0;
  pbtxt_to_int64(n, &v);
  return v;
}

static uint64_t get_u64(const pbtxt_node *n) {
  uint64_t v = 0;
  pbtxt_to_uint64(n, &v);
  return v;
}

static bool get_bool(const pbtxt_node *n) {
  bool v = false;
  pbtxt_to_bool(n, &v);
  return v;
}

static size_t count_field(const pbtxt_node *msg, int field) {
  size_t n = 0;
  for (const pbtxt_node *k = msg->child; k; k = k->next)
    n += k->field == field;
  return n;
}

/* Room for n elements in the configuration's arena; NULL (and no error) for
 * n == 0. */
static int alloc_array(reader *R, size_t n, size_t size, void *out) {
  void *p = NULL;
  if (n && !(p = arena_calloc(R->c->arena, n, size))) return nomem(R);
  memcpy(out, &p, sizeof p);
  return 0;
}

/* The repeated int64 field of msg into dims[INFERD_MAX_DIMS]. */
static int get_dims(reader *R, const pbtxt_node *msg, int field, const char *what, int64_t *dims,
                    int *ndim) {
  *ndim = 0;
  for (const pbtxt_node *n = msg->child; n; n = n->next) {
    if (n->field != field) continue;
    if (*ndim == INFERD_MAX_DIMS)
      return pbtxt_error_at(R->e, SOURCE, n->vpos, "%s has more than %d dimensions", what,
                            INFERD_MAX_DIMS);
    dims[(*ndim)++] = get_i64(n);
  }
  return 0;
}

/* Logs, once per field of a message, that a Triton field is not applied. */
static void skipped(const pbtxt_node *n, const char *where, uint64_t *logged) {
  if (*logged & (1ull << n->field)) return;
  *logged |= 1ull << n->field;
  log_info(SOURCE ":%u:%u: %s%s%s is accepted but not applied by inferd", (unsigned)n->pos.line,
           (unsigned)n->pos.col, where ? where : "", where ? "." : "", n->name);
}

/* ---- maps ----------------------------------------------------------------- */

/* A stable merge sort (qsort is not stable), so that among entries with one
 * key the one written last stays last. */
static int stable_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  if (n < 2) return 0;
  char *a = base;
  char *tmp = malloc(n * size);
  if (!tmp) return -ENOMEM;
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n;
      size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (cmp(a + j * size, a + i * size) < 0)
          memcpy(tmp + k++ * size, a + j++ * size, size);
        else
          memcpy(tmp + k++ * size, a + i++ * size, size);
      }
      memcpy(tmp + k * size, a + i * size, (mid - i) * size);
      k += mid - i;
      memcpy(tmp + k * size, a + j * size, (hi - j) * size);
    }
    memcpy(a, tmp, n * size);
  }
  free(tmp);
  return 0;
}

/* Sorts a map's entries by key and keeps, for each key, the entry written
 * last (protobuf's rule for a key given twice). Returns the new count, or
 * (size_t)-1 when out of memory. */
static size_t map_finish(void *base, size_t n, size_t size,
                         int (*cmp)(const void *, const void *)) {
  if (stable_sort(base, n, size, cmp)) return (size_t)-1;
  char *a = base;
  size_t out = 0;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && cmp(a + i * size, a + (i + 1) * size) == 0) continue;
    if (out != i) memcpy(a + out * size, a + i * size, size);
    out++;
  }
  return out;
}

static int cmp_map_entry(const void *x, const void *y) {
  return strcmp(((const map_entry *)x)->key, ((const map_entry *)y)->key);
}
static int cmp_param(const void *x, const void *y) {
  return strcmp(((const config_param *)x)->key, ((const config_param *)y)->key);
}
static int cmp_warmup_input(const void *x, const void *y) {
  return strcmp(((const warmup_input *)x)->name, ((const warmup_input *)y)->name);
}
static int cmp_priority(const void *x, const void *y) {
  uint64_t a = ((const priority_queue_policy *)x)->level;
  uint64_t b = ((const priority_queue_policy *)y)->level;
  return (a > b) - (a < b);
}

static int finish_map(reader *R, void *base, size_t *n, size_t size,
                      int (*cmp)(const void *, const void *)) {
  size_t k = map_finish(base, *n, size, cmp);
  if (k == (size_t)-1) return nomem(R);
  *n = k;
  return 0;
}

/* A map<string, string> field (input_map, output_map) of msg. */
static int read_string_map(reader *R, const pbtxt_node *msg, int field, const char *what,
                           map_entry **out, size_t *n_out) {
  size_t n = count_field(msg, field), i = 0;
  int rc = alloc_array(R, n, sizeof **out, out);
  if (rc) return rc;
  for (const pbtxt_node *e = msg->child; e; e = e->next) {
    if (e->field != field) continue;
    map_entry *m = &(*out)[i++];
    m->key = m->value = "";
    for (const pbtxt_node *k = e->child; k; k = k->next) {
      if ((rc = get_string(R, k, what, k->field == MAP_KEY ? &m->key : &m->value))) return rc;
    }
  }
  *n_out = n;
  return finish_map(R, *out, n_out, sizeof **out, cmp_map_entry);
}

/* ---- the fields ----------------------------------------------------------- */

static int read_reshape(reader *R, const pbtxt_node *n, const char *what, config_tensor *t) {
  t->has_reshape = true;
  return get_dims(R, n, 0, what, t->reshape_dims, &t->reshape_ndim);
}

static int read_input(reader *R, const pbtxt_node *msg, config_tensor *t) {
  int rc = 0;
  t->name = "";
  for (const pbtxt_node *n = msg->child; n && !rc; n = n->next) {
    switch (n->field) {
    case IN_NAME: rc = get_string(R, n, "input.name", &t->name); break;
    case IN_DATA_TYPE: t->dtype = (inferd_dtype)pbtxt_enum_value(n, &data_type_enum); break;
    case IN_FORMAT: t->format = (tensor_format)pbtxt_enum_value(n, &format_enum); break;
    case IN_RESHAPE: rc = read_reshape(R, n, "input.reshape.shape", t); break;
    case IN_IS_SHAPE_TENSOR: t->is_shape_tensor = get_bool(n); break;
    case IN_ALLOW_RAGGED_BATCH: t->allow_ragged_batch = get_bool(n); break;
    case IN_OPTIONAL: t->optional = get_bool(n); break;
    case IN_IS_NON_LINEAR_FORMAT_IO: t->is_non_linear_format_io = get_bool(n); break;
    }
  }
  return rc ? rc : get_dims(R, msg, IN_DIMS, "input.dims", t->dims, &t->ndim);
}

static int read_output(reader *R, const pbtxt_node *msg, config_tensor *t) {
  int rc = 0;
  t->name = "";
  for (const pbtxt_node *n = msg->child; n && !rc; n = n->next) {
    switch (n->field) {
    case OUT_NAME: rc = get_string(R, n, "output.name", &t->name); break;
    case OUT_DATA_TYPE: t->dtype = (inferd_dtype)pbtxt_enum_value(n, &data_type_enum); break;
    case OUT_RESHAPE: rc = read_reshape(R, n, "output.reshape.shape", t); break;
    case OUT_LABEL_FILENAME:
      rc = get_string(R, n, "output.label_filename", &t->label_filename);
      break;
    case OUT_IS_SHAPE_TENSOR: t->is_shape_tensor = get_bool(n); break;
    case OUT_IS_NON_LINEAR_FORMAT_IO: t->is_non_linear_format_io = get_bool(n); break;
    }
  }
  return rc ? rc : get_dims(R, msg, OUT_DIMS, "output.dims", t->dims, &t->ndim);
}

static int read_tensors(reader *R, const pbtxt_node *root, bool inputs) {
  model_config *c = R->c;
  int field = inputs ? MC_INPUT : MC_OUTPUT;
  size_t n = count_field(root, field), i = 0;
  config_tensor **arr = inputs ? &c->inputs : &c->outputs;
  int rc = alloc_array(R, n, sizeof **arr, arr);
  if (rc) return rc;
  for (const pbtxt_node *k = root->child; k && !rc; k = k->next)
    if (k->field == field)
      rc = inputs ? read_input(R, k, &(*arr)[i++]) : read_output(R, k, &(*arr)[i++]);
  *(inputs ? &c->n_inputs : &c->n_outputs) = n;
  return rc;
}

/* An empty version_policy {} keeps the default, latest 1. */
static int read_version_policy(reader *R, const pbtxt_node *msg) {
  version_policy *vp = &R->c->version_policy;
  for (const pbtxt_node *n = msg->child; n; n = n->next) {
    switch (n->field) {
    case VP_LATEST:
      vp->kind = VERSION_POLICY_LATEST;
      vp->latest_num = 0;
      for (const pbtxt_node *k = n->child; k; k = k->next)
        vp->latest_num = (uint32_t)get_u64(k);
      break;
    case VP_ALL: vp->kind = VERSION_POLICY_ALL; break;
    case VP_SPECIFIC: {
      vp->kind = VERSION_POLICY_SPECIFIC;
      size_t count = count_field(n, 0), i = 0;
      int rc = alloc_array(R, count, sizeof *vp->specific, &vp->specific);
      if (rc) return rc;
      for (const pbtxt_node *k = n->child; k; k = k->next)
        vp->specific[i++] = get_i64(k);
      vp->n_specific = count;
      break;
    }
    }
  }
  return 0;
}

static int read_instance_groups(reader *R, const pbtxt_node *root) {
  model_config *c = R->c;
  size_t n = count_field(root, MC_INSTANCE_GROUP), i = 0;
  int rc = alloc_array(R, n, sizeof *c->instance_groups, &c->instance_groups);
  if (rc) return rc;
  uint64_t logged = 0;
  for (const pbtxt_node *g = root->child; g; g = g->next) {
    if (g->field != MC_INSTANCE_GROUP) continue;
    instance_group *ig = &c->instance_groups[i++];
    ig->count = 1;
    for (const pbtxt_node *k = g->child; k; k = k->next) {
      switch (k->field) {
      case IG_NAME:
        if ((rc = get_string(R, k, "instance_group.name", &ig->name))) return rc;
        break;
      case IG_KIND: ig->kind = (instance_kind)pbtxt_enum_value(k, &kind_enum); break;
      case IG_COUNT: ig->count = (int)get_i64(k); break;
      default: skipped(k, "instance_group", &logged); break;
      }
    }
  }
  c->n_instance_groups = n;
  return 0;
}

static void read_queue_policy(const pbtxt_node *msg, queue_policy *q) {
  for (const pbtxt_node *n = msg->child; n; n = n->next) {
    switch (n->field) {
    case QP_TIMEOUT_ACTION:
      q->timeout_action = (timeout_action)pbtxt_enum_value(n, &timeout_action_enum);
      break;
    case QP_DEFAULT_TIMEOUT: q->default_timeout_us = get_u64(n); break;
    case QP_ALLOW_OVERRIDE: q->allow_timeout_override = get_bool(n); break;
    case QP_MAX_QUEUE_SIZE: q->max_queue_size = (uint32_t)get_u64(n); break;
    }
  }
}

static int read_dynamic_batching(reader *R, const pbtxt_node *msg) {
  dynamic_batching *db = &R->c->dynamic_batching;
  R->c->has_dynamic_batching = true;
  size_t n_pref = count_field(msg, DB_PREFERRED_BATCH_SIZE), i_pref = 0;
  size_t n_prio = count_field(msg, DB_PRIORITY_QUEUE_POLICY), i_prio = 0;
  int rc = alloc_array(R, n_pref, sizeof *db->preferred_batch_size, &db->preferred_batch_size);
  if (!rc) rc = alloc_array(R, n_prio, sizeof *db->priority_policies, &db->priority_policies);
  if (rc) return rc;
  for (const pbtxt_node *n = msg->child; n; n = n->next) {
    switch (n->field) {
    case DB_PREFERRED_BATCH_SIZE: db->preferred_batch_size[i_pref++] = get_i64(n); break;
    case DB_MAX_QUEUE_DELAY: db->max_queue_delay_us = get_u64(n); break;
    case DB_PRESERVE_ORDERING: db->preserve_ordering = get_bool(n); break;
    case DB_PRIORITY_LEVELS: db->priority_levels = get_u64(n); break;
    case DB_DEFAULT_PRIORITY_LEVEL: db->default_priority_level = get_u64(n); break;
    case DB_DEFAULT_QUEUE_POLICY: read_queue_policy(n, &db->default_queue_policy); break;
    case DB_PRIORITY_QUEUE_POLICY: {
      priority_queue_policy *p = &db->priority_policies[i_prio++];
      for (const pbtxt_node *k = n->child; k; k = k->next) {
        if (k->field == MAP_KEY)
          p->level = get_u64(k);
        else
          read_queue_policy(k, &p->policy);
      }
      break;
    }
    }
  }
  db->n_preferred = n_pref;
  db->n_priority_policies = n_prio;
  return finish_map(R, db->priority_policies, &db->n_priority_policies,
                    sizeof *db->priority_policies, cmp_priority);
}

static int read_parameters(reader *R, const pbtxt_node *root) {
  model_config *c = R->c;
  size_t n = count_field(root, MC_PARAMETERS), i = 0;
  int rc = alloc_array(R, n, sizeof *c->params, &c->params);
  if (rc) return rc;
  for (const pbtxt_node *e = root->child; e; e = e->next) {
    if (e->field != MC_PARAMETERS) continue;
    config_param *p = &c->params[i++];
    p->key = p->value = "";
    for (const pbtxt_node *k = e->child; k; k = k->next) {
      if (k->field == MAP_KEY) {
        rc = get_string(R, k, "parameters.key", &p->key);
      } else {
        for (const pbtxt_node *v = k->child; v && !rc; v = v->next)
          rc = get_string(R, v, "parameters.value.string_value", &p->value);
      }
      if (rc) return rc;
    }
  }
  c->n_params = n;
  return finish_map(R, c->params, &c->n_params, sizeof *c->params, cmp_param);
}

/* One entry of model_warmup.inputs: the source of the data is a oneof that
 * must be set, since Triton cannot make up data without one. */
static int read_warmup_input(reader *R, const pbtxt_node *entry, warmup_input *wi) {
  const pbtxt_node *value = NULL;
  int rc;
  wi->name = "";
  for (const pbtxt_node *k = entry->child; k; k = k->next) {
    if (k->field == MAP_KEY) {
      if ((rc = get_string(R, k, "model_warmup.inputs.key", &wi->name))) return rc;
    } else {
      value = k;
    }
  }
  bool source = false;
  for (const pbtxt_node *k = value ? value->child : NULL; k; k = k->next) {
    switch (k->field) {
    case WI_DATA_TYPE: wi->dtype = (inferd_dtype)pbtxt_enum_value(k, &data_type_enum); break;
    case WI_ZERO_DATA:
      wi->source = WARMUP_ZERO;
      source = true;
      break;
    case WI_RANDOM_DATA:
      wi->source = WARMUP_RANDOM;
      source = true;
      break;
    case WI_INPUT_DATA_FILE:
      wi->source = WARMUP_FILE;
      source = true;
      if ((rc =
               get_string(R, k, "model_warmup.inputs.value.input_data_file", &wi->input_data_file)))
        return rc;
      break;
    }
  }
  if (!source)
    return pbtxt_error_at(R->e, SOURCE, value ? value->vpos : entry->vpos,
                          "model_warmup.inputs.value must set zero_data, random_data or "
                          "input_data_file");
  return get_dims(R, value, WI_DIMS, "model_warmup.inputs.value.dims", wi->dims, &wi->ndim);
}

static int read_warmups(reader *R, const pbtxt_node *root) {
  model_config *c = R->c;
  size_t n = count_field(root, MC_MODEL_WARMUP), i = 0;
  int rc = alloc_array(R, n, sizeof *c->warmups, &c->warmups);
  if (rc) return rc;
  for (const pbtxt_node *w = root->child; w; w = w->next) {
    if (w->field != MC_MODEL_WARMUP) continue;
    model_warmup *mw = &c->warmups[i++];
    mw->name = "";
    mw->count = 1;
    size_t n_in = count_field(w, WU_INPUTS), i_in = 0;
    if ((rc = alloc_array(R, n_in, sizeof *mw->inputs, &mw->inputs))) return rc;
    for (const pbtxt_node *k = w->child; k; k = k->next) {
      switch (k->field) {
      case WU_NAME: rc = get_string(R, k, "model_warmup.name", &mw->name); break;
      case WU_BATCH_SIZE: mw->batch_size = (uint32_t)get_u64(k); break;
      case WU_COUNT: mw->count = get_u64(k) ? (uint32_t)get_u64(k) : 1; break;
      case WU_INPUTS: rc = read_warmup_input(R, k, &mw->inputs[i_in++]); break;
      }
      if (rc) return rc;
    }
    mw->n_inputs = n_in;
    if ((rc = finish_map(R, mw->inputs, &mw->n_inputs, sizeof *mw->inputs, cmp_warmup_input)))
      return rc;
  }
  c->n_warmups = n;
  return 0;
}

static int read_ensemble(reader *R, const pbtxt_node *msg) {
  model_config *c = R->c;
  size_t n = count_field(msg, EN_STEP), i = 0;
  int rc = alloc_array(R, n, sizeof *c->ensemble_steps, &c->ensemble_steps);
  if (rc) return rc;
  uint64_t logged = 0, logged_step = 0;
  for (const pbtxt_node *s = msg->child; s; s = s->next) {
    if (s->field != EN_STEP) {
      skipped(s, "ensemble_scheduling", &logged);
      continue;
    }
    ensemble_step *st = &c->ensemble_steps[i++];
    st->model_name = "";
    st->model_version = -1;
    for (const pbtxt_node *k = s->child; k && !rc; k = k->next) {
      switch (k->field) {
      case ST_MODEL_NAME:
        rc = get_string(R, k, "ensemble_scheduling.step.model_name", &st->model_name);
        break;
      case ST_MODEL_VERSION: st->model_version = get_i64(k); break;
      case ST_MODEL_NAMESPACE: skipped(k, "ensemble_scheduling.step", &logged_step); break;
      }
    }
    if (!rc)
      rc = read_string_map(R, s, ST_INPUT_MAP, "ensemble_scheduling.step.input_map", &st->input_map,
                           &st->n_input_map);
    if (!rc)
      rc = read_string_map(R, s, ST_OUTPUT_MAP, "ensemble_scheduling.step.output_map",
                           &st->output_map, &st->n_output_map);
    if (rc) return rc;
  }
  c->n_ensemble_steps = n;
  return 0;
}

static int read_config(reader *R, const pbtxt_node *root) {
  model_config *c = R->c;
  int rc = read_tensors(R, root, true);
  if (!rc) rc = read_tensors(R, root, false);
  if (!rc) rc = read_instance_groups(R, root);
  if (!rc) rc = read_parameters(R, root);
  if (!rc) rc = read_warmups(R, root);
  uint64_t logged = 0;
  for (const pbtxt_node *n = root->child; n && !rc; n = n->next) {
    switch (n->field) {
    case MC_NAME: rc = get_string(R, n, "name", &c->name); break;
    case MC_PLATFORM: rc = get_string(R, n, "platform", &c->platform); break;
    case MC_BACKEND: rc = get_string(R, n, "backend", &c->backend); break;
    case MC_VERSION_POLICY: rc = read_version_policy(R, n); break;
    case MC_MAX_BATCH_SIZE: c->max_batch_size = (int)get_i64(n); break;
    case MC_DYNAMIC_BATCHING: rc = read_dynamic_batching(R, n); break;
    case MC_ENSEMBLE_SCHEDULING: rc = read_ensemble(R, n); break;
    case MC_DEFAULT_MODEL_FILENAME:
      rc = get_string(R, n, "default_model_filename", &c->default_model_filename);
      break;
    case MC_INPUT:
    case MC_OUTPUT:
    case MC_INSTANCE_GROUP:
    case MC_PARAMETERS:
    case MC_MODEL_WARMUP: break; /* read above, all entries at once */
    default: skipped(n, NULL, &logged); break;
    }
  }
  return rc;
}

/* ---- life ----------------------------------------------------------------- */

model_config *model_config_new(void) {
  arena *a = arena_create(4096);
  if (!a) return NULL;
  model_config *c = arena_calloc(a, 1, sizeof *c);
  if (!c) {
    arena_destroy(a);
    return NULL;
  }
  c->arena = a;
  c->version_policy.kind = VERSION_POLICY_LATEST;
  c->version_policy.latest_num = 1;
  return c;
}

void model_config_free(model_config *c) {
  if (c) arena_destroy(c->arena);
}

model_config *model_config_parse(const char *text, size_t len, err *e) {
  model_config *c = model_config_new();
  /* The tree lives in an arena of its own, dropped once read. */
  arena *tree = arena_create(len < 4096 ? 4096 : len < (1u << 20) ? len * 4 : 4u << 20);
  if (!c || !tree) {
    err_set(e, -ENOMEM, "out of memory reading configuration");
    goto fail;
  }
  pbtxt_node *root;
  if (pbtxt_parse(tree, text, len, SOURCE, &root, e)) goto fail;
  if (pbtxt_check(root, &model_config_msg, SOURCE, e)) goto fail;
  reader R = {c, e};
  if (read_config(&R, root)) goto fail;
  arena_destroy(tree);
  return c;
fail:
  arena_destroy(tree);
  model_config_free(c);
  return NULL;
}

const char *model_config_param(const model_config *c, const char *key) {
  config_param probe = {.key = key};
  const config_param *p =
      c->n_params ? bsearch(&probe, c->params, c->n_params, sizeof *c->params, cmp_param) : NULL;
  return p ? p->value : NULL;
}

/* ---- normalization -------------------------------------------------------- */

static bool is_ensemble(const model_config *c) {
  return c->n_ensemble_steps > 0 || (c->platform && strcmp(c->platform, "ensemble") == 0);
}

int model_config_normalize(model_config *c, err *e) {
  if (!c->name || !*c->name)
    return err_set(e, -EINVAL, "model configuration has no name to normalize with");
  if (!is_ensemble(c) && c->n_instance_groups == 0) {
    instance_group *g = arena_calloc(c->arena, 1, sizeof *g);
    if (!g) return err_set(e, -ENOMEM, "out of memory");
    g->name = c->name; /* Triton names the default group after the model */
    g->kind = KIND_CPU;
    g->count = 1;
    c->instance_groups = g;
    c->n_instance_groups = 1;
  }
  for (size_t i = 0; i < c->n_instance_groups; i++) {
    instance_group *g = &c->instance_groups[i];
    if (!g->name || !*g->name) {
      size_t n = strlen(c->name) + 24;
      char *name = arena_alloc(c->arena, n);
      if (!name) return err_set(e, -ENOMEM, "out of memory");
      snprintf(name, n, "%s_%zu", c->name, i);
      g->name = name;
    }
    if (g->kind == KIND_GPU)
      log_warn("model '%s': instance group '%s' asks for KIND_GPU; inferd runs it on the CPU",
               c->name, g->name);
    if (g->kind == KIND_GPU || g->kind == KIND_AUTO) g->kind = KIND_CPU;
  }
  dynamic_batching *db = &c->dynamic_batching;
  if (c->has_dynamic_batching && db->n_preferred == 0 && c->max_batch_size > 0) {
    db->preferred_batch_size = arena_alloc(c->arena, sizeof *db->preferred_batch_size);
    if (!db->preferred_batch_size) return err_set(e, -ENOMEM, "out of memory");
    db->preferred_batch_size[0] = c->max_batch_size;
    db->n_preferred = 1;
  }
  return 0;
}

/* ---- validation ----------------------------------------------------------- */

static int cmp_cstr(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The first name used twice among n tensors, or NULL (sorting: no n^2). */
static int duplicate_name(const config_tensor *t, size_t n, const char **dup) {
  *dup = NULL;
  if (n < 2) return 0;
  const char **names = malloc(n * sizeof *names);
  if (!names) return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    names[i] = t[i].name;
  qsort(names, n, sizeof *names, cmp_cstr);
  for (size_t i = 1; i < n && !*dup; i++)
    if (strcmp(names[i - 1], names[i]) == 0) *dup = names[i];
  free(names);
  return 0;
}

/* The products of the runs of fixed dimensions between -1s: [2,4,-1,6] is
 * {8, 6}. false when a product overflows. */
static bool fixed_runs(const int64_t *d, int nd, int64_t *runs, int *nruns) {
  int64_t p = 1;
  *nruns = 0;
  for (int i = 0; i < nd; i++) {
    if (d[i] == -1) {
      runs[(*nruns)++] = p;
      p = 1;
    } else {
      if (d[i] > 0 && p > INT64_MAX / d[i]) return false;
      p *= d[i];
    }
  }
  runs[(*nruns)++] = p;
  return true;
}

static int check_dims(const char *what, const char *name, const char *field, const int64_t *d,
                      int nd, int batch, err *e) {
  if (nd + batch > INFERD_MAX_DIMS)
    return err_set(e, -EINVAL, "%s '%s': %s has %d dimensions%s; at most %d are supported", what,
                   name, field, nd, batch ? " plus the batch dimension" : "", INFERD_MAX_DIMS);
  for (int i = 0; i < nd; i++)
    if (d[i] < 1 && d[i] != -1)
      return err_set(e, -EINVAL,
                     "%s '%s': %s[%d] must be >= 1, or -1 for a variable size; got %lld", what,
                     name, field, i, (long long)d[i]);
  return 0;
}

/* A tensor as Triton's ValidateIOShape sees it: dims given and in range, and
 * a reshape with as many elements as dims. With variable dimensions, the runs
 * of fixed dimensions between the -1s must match one for one ([2,4,-1,6] may
 * become [8,-1,1,6]); an empty reshape (a scalar) needs dims of one element. */
static int check_tensor(const model_config *c, const config_tensor *t, bool input, err *e) {
  const char *what = input ? "input" : "output";
  int batch = c->max_batch_size > 0;
  if (t->dtype == INFERD_TYPE_INVALID)
    return err_set(e, -EINVAL, "%s '%s': data_type must be set", what, t->name);
  if (t->ndim == 0) return err_set(e, -EINVAL, "%s '%s': dims must be given", what, t->name);
  int rc = check_dims(what, t->name, "dims", t->dims, t->ndim, batch, e);
  if (rc) return rc;
  if (t->has_reshape) {
    if (t->reshape_ndim == 0 && !batch)
      return err_set(e, -EINVAL,
                     "%s '%s': reshape cannot be empty when max_batch_size is 0 (scalar tensors "
                     "are not supported)",
                     what, t->name);
    if ((rc = check_dims(what, t->name, "reshape.shape", t->reshape_dims, t->reshape_ndim, batch,
                         e)))
      return rc;
    int64_t a[INFERD_MAX_DIMS + 1], b[INFERD_MAX_DIMS + 1];
    int na, nb;
    bool same;
    if (t->reshape_ndim == 0)
      same = shape_elements(t->dims, t->ndim) == 1;
    else if (!fixed_runs(t->dims, t->ndim, a, &na) ||
             !fixed_runs(t->reshape_dims, t->reshape_ndim, b, &nb))
      same = false;
    else
      same = na == nb && memcmp(a, b, (size_t)na * sizeof a[0]) == 0;
    if (!same) {
      char ds[160], rs[160];
      shape_format(ds, sizeof ds, t->dims, t->ndim);
      shape_format(rs, sizeof rs, t->reshape_dims, t->reshape_ndim);
      return err_set(e, -EINVAL, "%s '%s': reshape %s does not hold the same elements as dims %s",
                     what, t->name, rs, ds);
    }
  }
  if (input && (t->format == FORMAT_NHWC || t->format == FORMAT_NCHW) && t->ndim != 3)
    return err_set(e, -EINVAL, "input '%s': format %s needs 3 dims, got %d", t->name,
                   format_names[t->format], t->ndim);
  if (t->is_shape_tensor)
    return err_set(e, -EINVAL, "%s '%s': is_shape_tensor is only supported by TensorRT", what,
                   t->name);
  if (t->is_non_linear_format_io)
    return err_set(e, -EINVAL, "%s '%s': is_non_linear_format_io is only supported by TensorRT",
                   what, t->name);
  return 0;
}

static int check_tensors(const model_config *c, bool input, err *e) {
  const config_tensor *ts = input ? c->inputs : c->outputs;
  size_t n = input ? c->n_inputs : c->n_outputs;
  const char *what = input ? "input" : "output";
  for (size_t i = 0; i < n; i++) {
    if (!ts[i].name || !*ts[i].name)
      return err_set(e, -EINVAL, "%s[%zu].name must not be empty", what, i);
    int rc = check_tensor(c, &ts[i], input, e);
    if (rc) return rc;
  }
  const char *dup;
  if (duplicate_name(ts, n, &dup)) return err_set(e, -ENOMEM, "out of memory");
  if (dup) return err_set(e, -EINVAL, "%s '%s' is listed twice", what, dup);
  return 0;
}

static int check_queue_policy(const queue_policy *q, const char *what, bool preserve_ordering,
                              err *e) {
  if (preserve_ordering && q->timeout_action == TIMEOUT_DELAY && q->default_timeout_us != 0)
    return err_set(e, -EINVAL,
                   "dynamic_batching.%s: timeout_action DELAY cannot be used with "
                   "preserve_ordering",
                   what);
  return 0;
}

static int check_dynamic_batching(const model_config *c, err *e) {
  const dynamic_batching *db = &c->dynamic_batching;
  for (size_t i = 0; i < db->n_preferred; i++) {
    int64_t s = db->preferred_batch_size[i];
    if (s <= 0 || s > c->max_batch_size)
      return err_set(e, -EINVAL,
                     "dynamic_batching.preferred_batch_size must be in 1..max_batch_size (%d), "
                     "got %lld",
                     c->max_batch_size, (long long)s);
  }
  if (db->priority_levels != 0) {
    if (db->default_priority_level == 0 || db->default_priority_level > db->priority_levels)
      return err_set(e, -EINVAL,
                     "dynamic_batching.default_priority_level must be in 1..priority_levels "
                     "(%llu), got %llu",
                     (unsigned long long)db->priority_levels,
                     (unsigned long long)db->default_priority_level);
    for (size_t i = 0; i < db->n_priority_policies; i++) {
      uint64_t l = db->priority_policies[i].level;
      if (l == 0 || l > db->priority_levels)
        return err_set(e, -EINVAL,
                       "dynamic_batching.priority_queue_policy key must be in 1..priority_levels "
                       "(%llu), got %llu",
                       (unsigned long long)db->priority_levels, (unsigned long long)l);
    }
  }
  if (db->preserve_ordering && db->priority_levels > 1)
    return err_set(e, -EINVAL,
                   "dynamic_batching.priority_levels must be at most 1 when preserve_ordering is "
                   "true");
  int rc = check_queue_policy(&db->default_queue_policy, "default_queue_policy",
                              db->preserve_ordering, e);
  for (size_t i = 0; i < db->n_priority_policies && !rc; i++)
    rc = check_queue_policy(&db->priority_policies[i].policy, "priority_queue_policy",
                            db->preserve_ordering, e);
  return rc;
}

static int check_warmups(const model_config *c, err *e) {
  for (size_t i = 0; i < c->n_warmups; i++) {
    const model_warmup *w = &c->warmups[i];
    if (w->batch_size < 1)
      return err_set(e, -EINVAL, "model_warmup '%s': batch_size must be >= 1", w->name);
    if (c->max_batch_size == 0 && w->batch_size != 1)
      return err_set(e, -EINVAL,
                     "model_warmup '%s': batch_size must be 1 when max_batch_size is 0, got %u",
                     w->name, (unsigned)w->batch_size);
    if (c->max_batch_size > 0 && w->batch_size > (uint32_t)c->max_batch_size)
      return err_set(e, -EINVAL,
                     "model_warmup '%s': batch_size must be at most max_batch_size (%d), got %u",
                     w->name, c->max_batch_size, (unsigned)w->batch_size);
    for (size_t k = 0; k < w->n_inputs; k++) {
      const warmup_input *in = &w->inputs[k];
      if (!*in->name)
        return err_set(e, -EINVAL, "model_warmup '%s': an input has no name", w->name);
      if (in->dtype == INFERD_TYPE_INVALID)
        return err_set(e, -EINVAL, "model_warmup '%s' input '%s': data_type must be set", w->name,
                       in->name);
      for (int d = 0; d < in->ndim; d++)
        if (in->dims[d] < 0)
          return err_set(e, -EINVAL,
                         "model_warmup '%s' input '%s': dims[%d] must be >= 0 (warmup shapes are "
                         "fixed), got %lld",
                         w->name, in->name, d, (long long)in->dims[d]);
    }
  }
  return 0;
}

/* ---- ensemble data flow ---- */

/* The ensemble's tensors by number: every name of the ensemble's inputs and
 * outputs and of the steps' maps, sorted, so that a name's number is found by
 * binary search. */
typedef struct flow {
  const char **names;
  size_t n;
  int *producer;   /* the step writing each tensor, -1 for none */
  bool *is_input;  /* an input of the ensemble */
  bool *is_output; /* an output of the ensemble */
  size_t *n_consumers;
} flow;

static size_t flow_id(const flow *f, const char *name) {
  const char **p = bsearch(&name, f->names, f->n, sizeof *f->names, cmp_cstr);
  return (size_t)(p - f->names);
}

static void flow_free(flow *f) {
  free(f->names);
  free(f->producer);
  free(f->is_input);
  free(f->is_output);
  free(f->n_consumers);
}

static int flow_build(const model_config *c, flow *f, err *e) {
  size_t total = c->n_inputs + c->n_outputs;
  for (size_t s = 0; s < c->n_ensemble_steps; s++)
    total += c->ensemble_steps[s].n_input_map + c->ensemble_steps[s].n_output_map;
  f->names = malloc((total ? total : 1) * sizeof *f->names);
  if (!f->names) return err_set(e, -ENOMEM, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < c->n_inputs; i++)
    f->names[k++] = c->inputs[i].name;
  for (size_t i = 0; i < c->n_outputs; i++)
    f->names[k++] = c->outputs[i].name;
  for (size_t s = 0; s < c->n_ensemble_steps; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    for (size_t i = 0; i < st->n_input_map; i++)
      f->names[k++] = st->input_map[i].value;
    for (size_t i = 0; i < st->n_output_map; i++)
      f->names[k++] = st->output_map[i].value;
  }
  qsort(f->names, total, sizeof *f->names, cmp_cstr);
  f->n = 0;
  for (size_t i = 0; i < total; i++)
    if (f->n == 0 || strcmp(f->names[f->n - 1], f->names[i]) != 0) f->names[f->n++] = f->names[i];
  size_t n = f->n ? f->n : 1;
  f->producer = malloc(n * sizeof *f->producer);
  f->is_input = calloc(n, sizeof *f->is_input);
  f->is_output = calloc(n, sizeof *f->is_output);
  f->n_consumers = calloc(n, sizeof *f->n_consumers);
  if (!f->producer || !f->is_input || !f->is_output || !f->n_consumers)
    return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < f->n; i++)
    f->producer[i] = -1;
  for (size_t i = 0; i < c->n_inputs; i++)
    f->is_input[flow_id(f, c->inputs[i].name)] = true;
  for (size_t i = 0; i < c->n_outputs; i++)
    f->is_output[flow_id(f, c->outputs[i].name)] = true;
  return 0;
}

/* Runs the steps in data-flow order (Kahn's algorithm: a step runs once all
 * the tensors it reads are ready); returns the first step that never runs, or
 * -1 when all do. */
static int flow_stuck_step(const model_config *c, const flow *f, err *e, int *stuck) {
  size_t ns = c->n_ensemble_steps, edges = 0;
  for (size_t s = 0; s < ns; s++)
    edges += c->ensemble_steps[s].n_input_map;
  size_t *start = calloc(f->n + 1, sizeof *start);                   /* consumers of tensor t: */
  size_t *consumer = malloc((edges ? edges : 1) * sizeof *consumer); /* consumer[start[t]..] */
  size_t *pending = malloc((ns ? ns : 1) * sizeof *pending);
  size_t *queue = malloc((f->n ? f->n : 1) * sizeof *queue);
  bool *ready = calloc(f->n ? f->n : 1, sizeof *ready);
  int rc = 0;
  if (!start || !consumer || !pending || !queue || !ready) {
    rc = err_set(e, -ENOMEM, "out of memory");
    goto out;
  }
  for (size_t s = 0; s < ns; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    pending[s] = st->n_input_map;
    for (size_t i = 0; i < st->n_input_map; i++)
      start[flow_id(f, st->input_map[i].value) + 1]++;
  }
  for (size_t t = 0; t < f->n; t++)
    start[t + 1] += start[t];
  size_t *fill = queue; /* borrowed as the fill cursor before the queue is used */
  for (size_t t = 0; t < f->n; t++)
    fill[t] = start[t];
  for (size_t s = 0; s < ns; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    for (size_t i = 0; i < st->n_input_map; i++)
      consumer[fill[flow_id(f, st->input_map[i].value)]++] = s;
  }
  size_t head = 0, tail = 0;
  for (size_t t = 0; t < f->n; t++)
    if (f->is_input[t]) {
      ready[t] = true;
      queue[tail++] = t;
    }
  while (head < tail) {
    size_t t = queue[head++];
    for (size_t k = start[t]; k < start[t + 1]; k++) {
      size_t s = consumer[k];
      if (--pending[s]) continue;
      const ensemble_step *st = &c->ensemble_steps[s];
      for (size_t i = 0; i < st->n_output_map; i++) {
        size_t u = flow_id(f, st->output_map[i].value);
        if (!ready[u]) {
          ready[u] = true;
          queue[tail++] = u;
        }
      }
    }
  }
  *stuck = -1;
  for (size_t s = 0; s < ns && *stuck < 0; s++)
    if (pending[s]) *stuck = (int)s;
out:
  free(start);
  free(consumer);
  free(pending);
  free(queue);
  free(ready);
  return rc;
}

/* The ensemble checks of Triton's ValidateEnsembleSchedulingConfig: each
 * step names a model and maps inputs and outputs; each tensor a step reads is
 * an ensemble input or written by a step; no tensor is written twice; the
 * steps can run in some order; every ensemble output is written and every
 * ensemble input and step output is read. */
static int check_ensemble(const model_config *c, err *e) {
  if (c->n_ensemble_steps == 0)
    return err_set(e, -EINVAL, "platform 'ensemble' needs ensemble_scheduling with steps");
  if (!c->platform || strcmp(c->platform, "ensemble") != 0)
    return err_set(e, -EINVAL, "ensemble_scheduling needs platform 'ensemble'");
  if (c->backend && *c->backend)
    return err_set(e, -EINVAL, "an ensemble must not set backend (got '%s')", c->backend);
  if (c->n_instance_groups)
    return err_set(e, -EINVAL, "instance_group must not be set for an ensemble");
  if (c->n_warmups) return err_set(e, -EINVAL, "model_warmup must not be set for an ensemble");
  for (size_t s = 0; s < c->n_ensemble_steps; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    if (!*st->model_name)
      return err_set(e, -EINVAL, "ensemble_scheduling.step[%zu].model_name must not be empty", s);
    if (st->n_input_map == 0 || st->n_output_map == 0)
      return err_set(e, -EINVAL, "ensemble_scheduling.step[%zu] (model '%s'): %s must not be empty",
                     s, st->model_name, st->n_input_map == 0 ? "input_map" : "output_map");
  }
  flow f = {0};
  int rc = flow_build(c, &f, e);
  for (size_t s = 0; s < c->n_ensemble_steps && !rc; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    for (size_t i = 0; i < st->n_output_map && !rc; i++) {
      size_t t = flow_id(&f, st->output_map[i].value);
      if (f.is_input[t])
        rc = err_set(e, -EINVAL,
                     "ensemble_scheduling.step[%zu] (model '%s') writes '%s', an input of the "
                     "ensemble",
                     s, st->model_name, f.names[t]);
      else if (f.producer[t] >= 0)
        rc = err_set(e, -EINVAL, "ensemble tensor '%s' is written by both step %d and step %zu",
                     f.names[t], f.producer[t], s);
      f.producer[t] = (int)s;
    }
  }
  for (size_t s = 0; s < c->n_ensemble_steps && !rc; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    for (size_t i = 0; i < st->n_input_map && !rc; i++) {
      size_t t = flow_id(&f, st->input_map[i].value);
      f.n_consumers[t]++;
      if (!f.is_input[t] && f.producer[t] < 0)
        rc = err_set(e, -EINVAL,
                     "ensemble_scheduling.step[%zu] (model '%s') reads '%s' into '%s', but '%s' is "
                     "neither an ensemble input nor written by a step",
                     s, st->model_name, f.names[t], st->input_map[i].key, f.names[t]);
    }
  }
  int stuck = -1;
  if (!rc) rc = flow_stuck_step(c, &f, e, &stuck);
  if (!rc && stuck >= 0)
    rc = err_set(e, -EINVAL,
                 "ensemble_scheduling.step[%d] (model '%s') can never run: its inputs depend on "
                 "its own outputs through a cycle",
                 stuck, c->ensemble_steps[stuck].model_name);
  for (size_t t = 0; t < f.n && !rc; t++) {
    if (f.is_output[t]) {
      if (!f.is_input[t] && f.producer[t] < 0)
        rc = err_set(e, -EINVAL, "ensemble output '%s' is not written by any step", f.names[t]);
    } else if (f.n_consumers[t] == 0) {
      if (f.is_input[t])
        rc = err_set(e, -EINVAL, "ensemble input '%s' is not read by any step", f.names[t]);
      else
        rc = err_set(e, -EINVAL,
                     "ensemble tensor '%s' written by step %d is neither read by a step nor an "
                     "ensemble output",
                     f.names[t], f.producer[t]);
    }
  }
  flow_free(&f);
  return rc;
}

int model_config_check(const model_config *c, err *e) {
  if (!c->name || !*c->name) return err_set(e, -EINVAL, "name must not be empty");
  if (c->max_batch_size < 0)
    return err_set(e, -EINVAL, "max_batch_size must be >= 0, got %d", c->max_batch_size);
  bool ensemble = is_ensemble(c);
  if (!ensemble && !(c->backend && *c->backend) && !(c->platform && *c->platform))
    return err_set(e, -EINVAL, "platform or backend must be set");
  const version_policy *vp = &c->version_policy;
  if (vp->kind == VERSION_POLICY_LATEST && vp->latest_num < 1)
    return err_set(e, -EINVAL, "version_policy.latest.num_versions must be >= 1");
  if (vp->kind == VERSION_POLICY_SPECIFIC) {
    if (vp->n_specific == 0)
      return err_set(e, -EINVAL, "version_policy.specific.versions must list a version");
    for (size_t i = 0; i < vp->n_specific; i++)
      if (vp->specific[i] < 0)
        return err_set(e, -EINVAL, "version_policy.specific.versions must be >= 0, got %lld",
                       (long long)vp->specific[i]);
  }
  int rc = check_tensors(c, true, e);
  if (!rc) rc = check_tensors(c, false, e);
  if (rc) return rc;
  for (size_t i = 0; i < c->n_instance_groups; i++)
    if (c->instance_groups[i].count < 1)
      return err_set(e, -EINVAL, "instance_group[%zu].count must be >= 1, got %d", i,
                     c->instance_groups[i].count);
  if (c->has_dynamic_batching && (rc = check_dynamic_batching(c, e))) return rc;
  if ((rc = check_warmups(c, e))) return rc;
  if (ensemble) return check_ensemble(c, e);
  return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

/* The name of value v of en; the first name for a value another layer set
 * out of range. */
static const char *enum_name(const pbtxt_enum *en, int v) {
  return v >= 0 && v < en->n ? en->names[v] : en->names[0];
}

static void put_key(buf *b, const char *key) {
  buf_putc(b, '"');
  buf_puts(b, key);
  buf_puts(b, "\":");
}

static void put_str(buf *b, const char *s) { json_put_cstr(b, s ? s : ""); }

static void put_bool(buf *b, bool v) { buf_puts(b, v ? "true" : "false"); }

static void put_i64s(buf *b, const int64_t *v, size_t n) {
  buf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) buf_putc(b, ',');
    buf_put_i64(b, v[i]);
  }
  buf_putc(b, ']');
}

static void put_tensor(buf *b, const config_tensor *t, bool input) {
  buf_putc(b, '{');
  put_key(b, "name");
  put_str(b, t->name);
  buf_putc(b, ',');
  put_key(b, "data_type");
  put_str(b, enum_name(&data_type_enum, (int)t->dtype));
  if (input) {
    buf_putc(b, ',');
    put_key(b, "format");
    put_str(b, enum_name(&format_enum, (int)t->format));
  }
  buf_putc(b, ',');
  put_key(b, "dims");
  put_i64s(b, t->dims, (size_t)t->ndim);
  if (t->has_reshape) {
    buf_puts(b, ",\"reshape\":{\"shape\":");
    put_i64s(b, t->reshape_dims, (size_t)t->reshape_ndim);
    buf_putc(b, '}');
  }
  if (!input) {
    buf_putc(b, ',');
    put_key(b, "label_filename");
    put_str(b, t->label_filename);
  }
  buf_putc(b, ',');
  put_key(b, "is_shape_tensor");
  put_bool(b, t->is_shape_tensor);
  if (input) {
    buf_putc(b, ',');
    put_key(b, "allow_ragged_batch");
    put_bool(b, t->allow_ragged_batch);
    buf_putc(b, ',');
    put_key(b, "optional");
    put_bool(b, t->optional);
  }
  buf_putc(b, ',');
  put_key(b, "is_non_linear_format_io");
  put_bool(b, t->is_non_linear_format_io);
  buf_putc(b, '}');
}

static void put_queue_policy(buf *b, const queue_policy *q) {
  buf_putc(b, '{');
  put_key(b, "timeout_action");
  put_str(b, enum_name(&timeout_action_enum, (int)q->timeout_action));
  buf_putc(b, ',');
  put_key(b, "default_timeout_microseconds");
  buf_put_u64(b, q->default_timeout_us);
  buf_putc(b, ',');
  put_key(b, "allow_timeout_override");
  put_bool(b, q->allow_timeout_override);
  buf_putc(b, ',');
  put_key(b, "max_queue_size");
  buf_put_u64(b, q->max_queue_size);
  buf_putc(b, '}');
}

static void put_dynamic_batching(buf *b, const dynamic_batching *db) {
  buf_putc(b, '{');
  put_key(b, "preferred_batch_size");
  put_i64s(b, db->preferred_batch_size, db->n_preferred);
  buf_putc(b, ',');
  put_key(b, "max_queue_delay_microseconds");
  buf_put_u64(b, db->max_queue_delay_us);
  buf_putc(b, ',');
  put_key(b, "preserve_ordering");
  put_bool(b, db->preserve_ordering);
  buf_putc(b, ',');
  put_key(b, "priority_levels");
  buf_put_u64(b, db->priority_levels);
  buf_putc(b, ',');
  put_key(b, "default_priority_level");
  buf_put_u64(b, db->default_priority_level);
  buf_putc(b, ',');
  put_key(b, "default_queue_policy");
  put_queue_policy(b, &db->default_queue_policy);
  buf_putc(b, ',');
  put_key(b, "priority_queue_policy");
  buf_putc(b, '{');
  for (size_t i = 0; i < db->n_priority_policies; i++) {
    if (i) buf_putc(b, ',');
    buf_putc(b, '"'); /* JSON keys are strings, as in Triton's answer */
    buf_put_u64(b, db->priority_policies[i].level);
    buf_puts(b, "\":");
    put_queue_policy(b, &db->priority_policies[i].policy);
  }
  buf_puts(b, "}}");
}

static void put_string_map(buf *b, const map_entry *m, size_t n) {
  buf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) buf_putc(b, ',');
    put_str(b, m[i].key);
    buf_putc(b, ':');
    put_str(b, m[i].value);
  }
  buf_putc(b, '}');
}

static void put_ensemble(buf *b, const model_config *c) {
  buf_puts(b, "{\"step\":[");
  for (size_t s = 0; s < c->n_ensemble_steps; s++) {
    const ensemble_step *st = &c->ensemble_steps[s];
    if (s) buf_putc(b, ',');
    buf_putc(b, '{');
    put_key(b, "model_name");
    put_str(b, st->model_name);
    buf_putc(b, ',');
    put_key(b, "model_version");
    buf_put_i64(b, st->model_version);
    buf_putc(b, ',');
    put_key(b, "input_map");
    put_string_map(b, st->input_map, st->n_input_map);
    buf_putc(b, ',');
    put_key(b, "output_map");
    put_string_map(b, st->output_map, st->n_output_map);
    buf_putc(b, '}');
  }
  buf_puts(b, "]}");
}

static void put_instance_group(buf *b, const instance_group *g) {
  buf_putc(b, '{');
  put_key(b, "name");
  put_str(b, g->name);
  buf_putc(b, ',');
  put_key(b, "kind");
  put_str(b, enum_name(&kind_enum, (int)g->kind));
  buf_putc(b, ',');
  put_key(b, "count");
  buf_put_i64(b, g->count);
  /* What inferd does with the fields it does not apply. */
  buf_puts(b, ",\"gpus\":[],\"secondary_devices\":[],\"profile\":[],\"passive\":false,"
              "\"host_policy\":\"\"}");
}

static void put_warmup(buf *b, const model_warmup *w) {
  buf_putc(b, '{');
  put_key(b, "name");
  put_str(b, w->name);
  buf_putc(b, ',');
  put_key(b, "batch_size");
  buf_put_u64(b, w->batch_size);
  buf_putc(b, ',');
  put_key(b, "inputs");
  buf_putc(b, '{');
  for (size_t i = 0; i < w->n_inputs; i++) {
    const warmup_input *in = &w->inputs[i];
    if (i) buf_putc(b, ',');
    put_str(b, in->name);
    buf_puts(b, ":{");
    put_key(b, "data_type");
    put_str(b, enum_name(&data_type_enum, (int)in->dtype));
    buf_putc(b, ',');
    put_key(b, "dims");
    put_i64s(b, in->dims, (size_t)in->ndim);
    buf_putc(b, ',');
    switch (in->source) {
    case WARMUP_ZERO: buf_puts(b, "\"zero_data\":true"); break;
    case WARMUP_RANDOM: buf_puts(b, "\"random_data\":true"); break;
    case WARMUP_FILE:
      put_key(b, "input_data_file");
      put_str(b, in->input_data_file);
      break;
    }
    buf_putc(b, '}');
  }
  buf_puts(b, "},");
  put_key(b, "count");
  buf_put_u64(b, w->count);
  buf_putc(b, '}');
}

/* Fields in the order of model_config.proto, as protobuf's JSON printer
 * writes them; primitive fields always, messages only when set. */
void model_config_to_json(const model_config *c, buf *out) {
  buf_putc(out, '{');
  put_key(out, "name");
  put_str(out, c->name);
  buf_putc(out, ',');
  put_key(out, "platform");
  put_str(out, c->platform);
  buf_putc(out, ',');
  put_key(out, "backend");
  put_str(out, c->backend);
  buf_putc(out, ',');
  put_key(out, "version_policy");
  const version_policy *vp = &c->version_policy;
  switch (vp->kind) {
  case VERSION_POLICY_LATEST:
    buf_puts(out, "{\"latest\":{\"num_versions\":");
    buf_put_u64(out, vp->latest_num);
    buf_puts(out, "}}");
    break;
  case VERSION_POLICY_ALL: buf_puts(out, "{\"all\":{}}"); break;
  case VERSION_POLICY_SPECIFIC:
    buf_puts(out, "{\"specific\":{\"versions\":");
    put_i64s(out, vp->specific, vp->n_specific);
    buf_puts(out, "}}");
    break;
  }
  buf_putc(out, ',');
  put_key(out, "max_batch_size");
  buf_put_i64(out, c->max_batch_size);
  buf_putc(out, ',');
  put_key(out, "input");
  buf_putc(out, '[');
  for (size_t i = 0; i < c->n_inputs; i++) {
    if (i) buf_putc(out, ',');
    put_tensor(out, &c->inputs[i], true);
  }
  buf_puts(out, "],");
  put_key(out, "output");
  buf_putc(out, '[');
  for (size_t i = 0; i < c->n_outputs; i++) {
    if (i) buf_putc(out, ',');
    put_tensor(out, &c->outputs[i], false);
  }
  buf_putc(out, ']');
  if (c->has_dynamic_batching) {
    buf_putc(out, ',');
    put_key(out, "dynamic_batching");
    put_dynamic_batching(out, &c->dynamic_batching);
  }
  if (c->n_ensemble_steps) {
    buf_putc(out, ',');
    put_key(out, "ensemble_scheduling");
    put_ensemble(out, c);
  }
  buf_putc(out, ',');
  put_key(out, "instance_group");
  buf_putc(out, '[');
  for (size_t i = 0; i < c->n_instance_groups; i++) {
    if (i) buf_putc(out, ',');
    put_instance_group(out, &c->instance_groups[i]);
  }
  buf_puts(out, "],");
  put_key(out, "default_model_filename");
  put_str(out, c->default_model_filename);
  buf_putc(out, ',');
  put_key(out, "parameters");
  buf_putc(out, '{');
  for (size_t i = 0; i < c->n_params; i++) {
    if (i) buf_putc(out, ',');
    put_str(out, c->params[i].key);
    buf_puts(out, ":{\"string_value\":");
    put_str(out, c->params[i].value);
    buf_putc(out, '}');
  }
  buf_puts(out, "},");
  put_key(out, "model_warmup");
  buf_putc(out, '[');
  for (size_t i = 0; i < c->n_warmups; i++) {
    if (i) buf_putc(out, ',');
    put_warmup(out, &c->warmups[i]);
  }
  buf_puts(out, "]}");
}
