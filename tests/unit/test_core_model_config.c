/* Unit tests for core/model_config: realistic Triton configurations read
 * field by field, Triton fields inferd skips, unknown fields and bad enums,
 * normalization, validation failures, and the JSON of the configuration
 * endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"
#include "core/log.h"
#include "core/model_config.h"

/* Parses text from an exact-size heap copy (freed before the config is used:
 * the config must not point into the text) and fails the test on error. */
static model_config *parse_ok(const char *text) {
  size_t n = strlen(text);
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, text, n);
  err e = {0};
  model_config *c = model_config_parse(copy, n, &e);
  free(copy);
  if (!c) fail_msg("parse failed: %s", e.msg);
  return c;
}

static void expect_parse_error(const char *text, const char *msg) {
  size_t n = strlen(text);
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, text, n);
  err e = {0};
  model_config *c = model_config_parse(copy, n, &e);
  free(copy);
  if (c || e.code != -EINVAL || strcmp(e.msg, msg) != 0)
    fail_msg("config:\n%s\n  got: %s (code %d)\n want: %s", text, c ? "success" : e.msg, e.code,
             msg);
}

static char *to_json(const model_config *c) {
  buf b = {0};
  model_config_to_json(c, &b);
  assert_false(b.oom);
  buf_putc(&b, 0);
  return b.data;
}

static void expect_json(const model_config *c, const char *want) {
  char *got = to_json(c);
  if (strcmp(got, want) != 0) fail_msg("JSON differs\n got: %s\nwant: %s", got, want);
  free(got);
}

static void expect_dims(const int64_t *dims, int ndim, const int64_t *want, int n) {
  assert_int_equal(ndim, n);
  for (int i = 0; i < n; i++)
    assert_int_equal(dims[i], want[i]);
}

/* ---- realistic configurations ---- */

static const char densenet[] = "name: \"densenet_onnx\"\n"
                               "platform: \"onnxruntime_onnx\"\n"
                               "max_batch_size : 0\n"
                               "input [\n"
                               "  {\n"
                               "    name: \"data_0\"\n"
                               "    data_type: TYPE_FP32\n"
                               "    format: FORMAT_NCHW\n"
                               "    dims: [ 3, 224, 224 ]\n"
                               "    reshape { shape: [ 1, 3, 224, 224 ] }\n"
                               "  }\n"
                               "]\n"
                               "output [\n"
                               "  {\n"
                               "    name: \"fc6_1\"\n"
                               "    data_type: TYPE_FP32\n"
                               "    dims: [ 1000 ]\n"
                               "    reshape { shape: [ 1, 1000, 1, 1 ] }\n"
                               "    label_filename: \"densenet_labels.txt\"\n"
                               "  }\n"
                               "]\n";

static void simple_onnx_model(void **state) {
  model_config *c = parse_ok(densenet);
  assert_string_equal(c->name, "densenet_onnx");
  assert_string_equal(c->platform, "onnxruntime_onnx");
  assert_null(c->backend);
  assert_null(c->default_model_filename);
  assert_int_equal(c->max_batch_size, 0);
  assert_int_equal(c->version_policy.kind, VERSION_POLICY_LATEST);
  assert_int_equal(c->version_policy.latest_num, 1);
  assert_int_equal(c->n_inputs, 1);
  const config_tensor *in = &c->inputs[0];
  assert_string_equal(in->name, "data_0");
  assert_int_equal(in->dtype, INFERD_TYPE_FP32);
  assert_int_equal(in->format, FORMAT_NCHW);
  expect_dims(in->dims, in->ndim, (int64_t[]){3, 224, 224}, 3);
  assert_true(in->has_reshape);
  expect_dims(in->reshape_dims, in->reshape_ndim, (int64_t[]){1, 3, 224, 224}, 4);
  assert_false(in->optional);
  assert_null(in->label_filename);
  assert_int_equal(c->n_outputs, 1);
  const config_tensor *out = &c->outputs[0];
  assert_string_equal(out->name, "fc6_1");
  expect_dims(out->dims, out->ndim, (int64_t[]){1000}, 1);
  expect_dims(out->reshape_dims, out->reshape_ndim, (int64_t[]){1, 1000, 1, 1}, 4);
  assert_string_equal(out->label_filename, "densenet_labels.txt");
  assert_int_equal(c->n_instance_groups, 0);
  assert_false(c->has_dynamic_batching);
  assert_int_equal(c->n_params, 0);
  assert_int_equal(c->n_warmups, 0);
  assert_int_equal(c->n_ensemble_steps, 0);

  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(c->n_instance_groups, 1);
  assert_string_equal(c->instance_groups[0].name, "densenet_onnx");
  assert_int_equal(c->instance_groups[0].kind, KIND_CPU);
  assert_int_equal(c->instance_groups[0].count, 1);
  assert_int_equal(model_config_check(c, &e), 0);
  expect_json(c,
              "{\"name\":\"densenet_onnx\",\"platform\":\"onnxruntime_onnx\",\"backend\":\"\","
              "\"version_policy\":{\"latest\":{\"num_versions\":1}},\"max_batch_size\":0,"
              "\"input\":[{\"name\":\"data_0\",\"data_type\":\"TYPE_FP32\",\"format\":"
              "\"FORMAT_NCHW\",\"dims\":[3,224,224],\"reshape\":{\"shape\":[1,3,224,224]},"
              "\"is_shape_tensor\":false,\"allow_ragged_batch\":false,\"optional\":false,"
              "\"is_non_linear_format_io\":false}],"
              "\"output\":[{\"name\":\"fc6_1\",\"data_type\":\"TYPE_FP32\",\"dims\":[1000],"
              "\"reshape\":{\"shape\":[1,1000,1,1]},\"label_filename\":\"densenet_labels.txt\","
              "\"is_shape_tensor\":false,\"is_non_linear_format_io\":false}],"
              "\"instance_group\":[{\"name\":\"densenet_onnx\",\"kind\":\"KIND_CPU\",\"count\":1,"
              "\"gpus\":[],\"secondary_devices\":[],\"profile\":[],\"passive\":false,"
              "\"host_policy\":\"\"}],"
              "\"default_model_filename\":\"\",\"parameters\":{},\"model_warmup\":[]}");
  model_config_free(c);
}

static const char batching[] =
    "name: \"classifier\"\n"
    "backend: \"onnxruntime\"\n"
    "default_model_filename: \"classifier.onnx\"\n"
    "max_batch_size: 16\n"
    "version_policy: { specific { versions: [1, 3] } }\n"
    "input { name: \"x\" data_type: TYPE_FP16 dims: [ -1, 128 ] allow_ragged_batch: true }\n"
    "input { name: \"mask\" data_type: TYPE_BOOL dims: [-1] optional: true }\n"
    "output { name: \"logits\" data_type: TYPE_FP32 dims: [ 10 ] }\n"
    "instance_group [ { count: 2 kind: KIND_CPU },\n"
    "                 { name: \"gpu_group\" kind: KIND_GPU count: 1 gpus: [ 0, 1 ] } ]\n"
    "dynamic_batching {\n"
    "  preferred_batch_size: [ 4, 8 ]\n"
    "  max_queue_delay_microseconds: 100\n"
    "  priority_levels: 3\n"
    "  default_priority_level: 2\n"
    "  default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 5000\n"
    "                         allow_timeout_override: true max_queue_size: 64 }\n"
    "  priority_queue_policy {\n"
    "    key: 3\n"
    "    value: { timeout_action: REJECT default_timeout_microseconds: 100 max_queue_size: 8 }\n"
    "  }\n"
    "  priority_queue_policy [ { key: 1 value { max_queue_size: 2 } } ]\n"
    "}\n"
    "parameters { key: \"intra_op_thread_count\" value: { string_value: \"2\" } }\n"
    "parameters [ { key: \"execution_mode\" value: { string_value: \"0\" } },\n"
    "             { key: \"intra_op_thread_count\" value { string_value: \"4\" } } ]\n";

static void dynamic_batching_with_priorities(void **state) {
  model_config *c = parse_ok(batching);
  assert_string_equal(c->backend, "onnxruntime");
  assert_null(c->platform);
  assert_string_equal(c->default_model_filename, "classifier.onnx");
  assert_int_equal(c->max_batch_size, 16);
  assert_int_equal(c->version_policy.kind, VERSION_POLICY_SPECIFIC);
  assert_int_equal(c->version_policy.n_specific, 2);
  assert_int_equal(c->version_policy.specific[1], 3);
  assert_int_equal(c->n_inputs, 2);
  assert_true(c->inputs[0].allow_ragged_batch);
  expect_dims(c->inputs[0].dims, c->inputs[0].ndim, (int64_t[]){-1, 128}, 2);
  assert_int_equal(c->inputs[1].dtype, INFERD_TYPE_BOOL);
  assert_true(c->inputs[1].optional);
  assert_false(c->inputs[0].has_reshape);

  assert_int_equal(c->n_instance_groups, 2);
  assert_null(c->instance_groups[0].name);
  assert_int_equal(c->instance_groups[0].count, 2);
  assert_int_equal(c->instance_groups[0].kind, KIND_CPU);
  assert_string_equal(c->instance_groups[1].name, "gpu_group");
  assert_int_equal(c->instance_groups[1].kind, KIND_GPU);

  assert_true(c->has_dynamic_batching);
  const dynamic_batching *db = &c->dynamic_batching;
  assert_int_equal(db->n_preferred, 2);
  assert_int_equal(db->preferred_batch_size[0], 4);
  assert_int_equal(db->preferred_batch_size[1], 8);
  assert_int_equal(db->max_queue_delay_us, 100);
  assert_false(db->preserve_ordering);
  assert_int_equal(db->priority_levels, 3);
  assert_int_equal(db->default_priority_level, 2);
  assert_int_equal(db->default_queue_policy.timeout_action, TIMEOUT_DELAY);
  assert_int_equal(db->default_queue_policy.default_timeout_us, 5000);
  assert_true(db->default_queue_policy.allow_timeout_override);
  assert_int_equal(db->default_queue_policy.max_queue_size, 64);
  assert_int_equal(db->n_priority_policies, 2); /* sorted by level */
  assert_int_equal(db->priority_policies[0].level, 1);
  assert_int_equal(db->priority_policies[0].policy.max_queue_size, 2);
  assert_int_equal(db->priority_policies[0].policy.timeout_action, TIMEOUT_REJECT);
  assert_int_equal(db->priority_policies[1].level, 3);
  assert_int_equal(db->priority_policies[1].policy.default_timeout_us, 100);
  assert_int_equal(db->priority_policies[1].policy.max_queue_size, 8);

  assert_int_equal(c->n_params, 2); /* sorted; the key written twice keeps its last value */
  assert_string_equal(c->params[0].key, "execution_mode");
  assert_string_equal(c->params[1].key, "intra_op_thread_count");
  assert_string_equal(model_config_param(c, "intra_op_thread_count"), "4");
  assert_string_equal(model_config_param(c, "execution_mode"), "0");
  assert_null(model_config_param(c, "inter_op_thread_count"));

  err e = {0};
  log_configure(LOG_ERROR, false); /* the KIND_GPU warning */
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_string_equal(c->instance_groups[0].name, "classifier_0");
  assert_string_equal(c->instance_groups[1].name, "gpu_group");
  assert_int_equal(c->instance_groups[1].kind, KIND_CPU);
  assert_int_equal(c->dynamic_batching.n_preferred, 2);
  assert_int_equal(model_config_check(c, &e), 0);
  expect_json(c,
              "{\"name\":\"classifier\",\"platform\":\"\",\"backend\":\"onnxruntime\","
              "\"version_policy\":{\"specific\":{\"versions\":[1,3]}},\"max_batch_size\":16,"
              "\"input\":[{\"name\":\"x\",\"data_type\":\"TYPE_FP16\",\"format\":\"FORMAT_NONE\","
              "\"dims\":[-1,128],\"is_shape_tensor\":false,\"allow_ragged_batch\":true,"
              "\"optional\":false,\"is_non_linear_format_io\":false},"
              "{\"name\":\"mask\",\"data_type\":\"TYPE_BOOL\",\"format\":\"FORMAT_NONE\","
              "\"dims\":[-1],\"is_shape_tensor\":false,\"allow_ragged_batch\":false,"
              "\"optional\":true,\"is_non_linear_format_io\":false}],"
              "\"output\":[{\"name\":\"logits\",\"data_type\":\"TYPE_FP32\",\"dims\":[10],"
              "\"label_filename\":\"\",\"is_shape_tensor\":false,"
              "\"is_non_linear_format_io\":false}],"
              "\"dynamic_batching\":{\"preferred_batch_size\":[4,8],"
              "\"max_queue_delay_microseconds\":100,\"preserve_ordering\":false,"
              "\"priority_levels\":3,\"default_priority_level\":2,"
              "\"default_queue_policy\":{\"timeout_action\":\"DELAY\","
              "\"default_timeout_microseconds\":5000,\"allow_timeout_override\":true,"
              "\"max_queue_size\":64},"
              "\"priority_queue_policy\":{\"1\":{\"timeout_action\":\"REJECT\","
              "\"default_timeout_microseconds\":0,\"allow_timeout_override\":false,"
              "\"max_queue_size\":2},\"3\":{\"timeout_action\":\"REJECT\","
              "\"default_timeout_microseconds\":100,\"allow_timeout_override\":false,"
              "\"max_queue_size\":8}}},"
              "\"instance_group\":[{\"name\":\"classifier_0\",\"kind\":\"KIND_CPU\",\"count\":2,"
              "\"gpus\":[],\"secondary_devices\":[],\"profile\":[],\"passive\":false,"
              "\"host_policy\":\"\"},{\"name\":\"gpu_group\",\"kind\":\"KIND_CPU\",\"count\":1,"
              "\"gpus\":[],\"secondary_devices\":[],\"profile\":[],\"passive\":false,"
              "\"host_policy\":\"\"}],"
              "\"default_model_filename\":\"classifier.onnx\","
              "\"parameters\":{\"execution_mode\":{\"string_value\":\"0\"},"
              "\"intra_op_thread_count\":{\"string_value\":\"4\"}},\"model_warmup\":[]}");
  model_config_free(c);
}

static const char warmup[] =
    "name: \"warm\"\n"
    "backend: \"onnxruntime\"\n"
    "max_batch_size: 8\n"
    "input [{ name: \"INPUT0\" data_type: TYPE_FP32 dims: [16] },\n"
    "       { name: \"INPUT1\" data_type: TYPE_STRING dims: [1] }]\n"
    "output [{ name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [16] }]\n"
    "dynamic_batching { }\n"
    "model_warmup [\n"
    "  {\n"
    "    name: \"zero sample\"\n"
    "    batch_size: 8\n"
    "    inputs { key: \"INPUT1\"\n"
    "             value: { data_type: TYPE_STRING dims: [1] input_data_file: \"raw_string\" } }\n"
    "    inputs { key: \"INPUT0\" value: { data_type: TYPE_FP32 dims: [16] zero_data: true } }\n"
    "  },\n"
    "  {\n"
    "    name: \"random sample\"\n"
    "    batch_size: 1\n"
    "    count: 5\n"
    "    inputs [ { key: \"INPUT0\" value: { data_type: TYPE_FP32 dims: 16 random_data: true } },\n"
    "             { key: \"INPUT1\" value: < data_type: TYPE_STRING dims: 1 zero_data: true > } ]\n"
    "  }\n"
    "]\n";

static void warmup_samples(void **state) {
  model_config *c = parse_ok(warmup);
  assert_int_equal(c->n_warmups, 2);
  const model_warmup *w = &c->warmups[0];
  assert_string_equal(w->name, "zero sample");
  assert_int_equal(w->batch_size, 8);
  assert_int_equal(w->count, 1);
  assert_int_equal(w->n_inputs, 2);
  assert_string_equal(w->inputs[0].name, "INPUT0"); /* sorted by input name */
  assert_int_equal(w->inputs[0].source, WARMUP_ZERO);
  assert_int_equal(w->inputs[0].dtype, INFERD_TYPE_FP32);
  expect_dims(w->inputs[0].dims, w->inputs[0].ndim, (int64_t[]){16}, 1);
  assert_string_equal(w->inputs[1].name, "INPUT1");
  assert_int_equal(w->inputs[1].source, WARMUP_FILE);
  assert_string_equal(w->inputs[1].input_data_file, "raw_string");
  assert_int_equal(w->inputs[1].dtype, INFERD_TYPE_BYTES);
  w = &c->warmups[1];
  assert_int_equal(w->count, 5);
  assert_int_equal(w->inputs[0].source, WARMUP_RANDOM);
  assert_int_equal(w->inputs[1].source, WARMUP_ZERO);

  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(c->dynamic_batching.n_preferred, 1); /* Triton's default: max_batch_size */
  assert_int_equal(c->dynamic_batching.preferred_batch_size[0], 8);
  assert_int_equal(model_config_check(c, &e), 0);
  char *json = to_json(c);
  const char *want =
      "\"model_warmup\":[{\"name\":\"zero sample\",\"batch_size\":8,\"inputs\":{"
      "\"INPUT0\":{\"data_type\":\"TYPE_FP32\",\"dims\":[16],\"zero_data\":true},"
      "\"INPUT1\":{\"data_type\":\"TYPE_STRING\",\"dims\":[1],\"input_data_file\":\"raw_string\"}},"
      "\"count\":1},{\"name\":\"random sample\",\"batch_size\":1,\"inputs\":{"
      "\"INPUT0\":{\"data_type\":\"TYPE_FP32\",\"dims\":[16],\"random_data\":true},"
      "\"INPUT1\":{\"data_type\":\"TYPE_STRING\",\"dims\":[1],\"zero_data\":true}},\"count\":5}]}";
  const char *at = strstr(json, "\"model_warmup\"");
  assert_non_null(at);
  assert_string_equal(at, want);
  assert_non_null(strstr(json, "\"dynamic_batching\":{\"preferred_batch_size\":[8],"
                               "\"max_queue_delay_microseconds\":0,"));
  free(json);
  model_config_free(c);
}

static const char ensemble[] =
    "name: \"ensemble_model\"\n"
    "platform: \"ensemble\"\n"
    "max_batch_size: 1\n"
    "input [ { name: \"IMAGE\" data_type: TYPE_UINT8 dims: [ -1 ] } ]\n"
    "output [ { name: \"CLASSIFICATION\" data_type: TYPE_FP32 dims: [ 1000 ] },\n"
    "         { name: \"SEGMENTATION\" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] } ]\n"
    "ensemble_scheduling {\n"
    "  step [\n"
    "    {\n"
    "      model_name: \"image_preprocess_model\"\n"
    "      model_version: 2\n"
    "      input_map { key: \"RAW_IMAGE\" value: \"IMAGE\" }\n"
    "      output_map { key: \"PREPROCESSED_OUTPUT\" value: \"preprocessed_image\" }\n"
    "    },\n"
    "    {\n"
    "      model_name: \"classification_model\"\n"
    "      model_version: -1\n"
    "      input_map { key: \"FORMATTED_IMAGE\" value: \"preprocessed_image\" }\n"
    "      output_map { key: \"CLASSIFICATION_OUTPUT\" value: \"CLASSIFICATION\" }\n"
    "    },\n"
    "    {\n"
    "      model_name: \"segmentation_model\"\n"
    "      input_map [ { key: \"FORMATTED_IMAGE\" value: \"preprocessed_image\" },\n"
    "                  { key: \"RAW\" value: \"IMAGE\" } ]\n"
    "      output_map { key: \"SEGMENTATION_OUTPUT\" value: \"SEGMENTATION\" }\n"
    "    }\n"
    "  ]\n"
    "}\n";

static void ensemble_pipeline(void **state) {
  model_config *c = parse_ok(ensemble);
  assert_string_equal(c->platform, "ensemble");
  assert_int_equal(c->n_ensemble_steps, 3);
  const ensemble_step *s = &c->ensemble_steps[0];
  assert_string_equal(s->model_name, "image_preprocess_model");
  assert_int_equal(s->model_version, 2);
  assert_int_equal(s->n_input_map, 1);
  assert_string_equal(s->input_map[0].key, "RAW_IMAGE");
  assert_string_equal(s->input_map[0].value, "IMAGE");
  assert_string_equal(s->output_map[0].key, "PREPROCESSED_OUTPUT");
  assert_string_equal(s->output_map[0].value, "preprocessed_image");
  assert_int_equal(c->ensemble_steps[1].model_version, -1);
  s = &c->ensemble_steps[2];
  assert_int_equal(s->model_version, -1); /* not given: latest */
  assert_int_equal(s->n_input_map, 2);
  assert_string_equal(s->input_map[0].key, "FORMATTED_IMAGE");
  assert_string_equal(s->input_map[1].key, "RAW");

  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(c->n_instance_groups, 0); /* none for an ensemble */
  assert_int_equal(model_config_check(c, &e), 0);
  char *json = to_json(c);
  const char *want =
      "\"ensemble_scheduling\":{\"step\":[{\"model_name\":\"image_preprocess_model\","
      "\"model_version\":2,\"input_map\":{\"RAW_IMAGE\":\"IMAGE\"},"
      "\"output_map\":{\"PREPROCESSED_OUTPUT\":\"preprocessed_image\"}},"
      "{\"model_name\":\"classification_model\",\"model_version\":-1,"
      "\"input_map\":{\"FORMATTED_IMAGE\":\"preprocessed_image\"},"
      "\"output_map\":{\"CLASSIFICATION_OUTPUT\":\"CLASSIFICATION\"}},"
      "{\"model_name\":\"segmentation_model\",\"model_version\":-1,"
      "\"input_map\":{\"FORMATTED_IMAGE\":\"preprocessed_image\",\"RAW\":\"IMAGE\"},"
      "\"output_map\":{\"SEGMENTATION_OUTPUT\":\"SEGMENTATION\"}}]},"
      "\"instance_group\":[],\"default_model_filename\":\"\",\"parameters\":{},"
      "\"model_warmup\":[]}";
  const char *at = strstr(json, "\"ensemble_scheduling\"");
  assert_non_null(at);
  assert_string_equal(at, want);
  free(json);
  model_config_free(c);
}

/* Fields of Triton's ModelConfig that inferd does not apply still load, and
 * are checked against Triton's schema all the same. */
static const char skipped_fields[] =
    "name: \"skips\"\n"
    "backend: \"onnxruntime\"\n"
    "runtime: \"libtriton_onnxruntime.so\"\n"
    "max_batch_size: 4\n"
    "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ 8 ] is_non_linear_format_io: false } ]\n"
    "output [ { name: \"y\" data_type: TYPE_FP32 dims: [ 8 ] } ]\n"
    "batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: \"N\" data_type: TYPE_INT32\n"
    "                source_input: \"x\" } ]\n"
    "batch_output [ { target_name: \"y\" kind: BATCH_SCATTER_WITH_INPUT_SHAPE\n"
    "                 source_input: \"x\" } ]\n"
    "optimization {\n"
    "  graph { level: 1 }\n"
    "  priority: PRIORITY_MAX\n"
    "  execution_accelerators {\n"
    "    gpu_execution_accelerator : [ {\n"
    "      name : \"tensorrt\"\n"
    "      parameters { key: \"precision_mode\" value: \"FP16\" }\n"
    "      parameters { key: \"max_workspace_size_bytes\" value: \"1073741824\" }\n"
    "    } ]\n"
    "    cpu_execution_accelerator : [ { name : \"openvino\" } ]\n"
    "  }\n"
    "  cuda { graphs: true busy_wait_events: false output_copy_stream: true\n"
    "    graph_spec [ { batch_size: 4 input { key: \"x\" value { dim: [ 4, 8 ] } }\n"
    "      graph_lower_bound { batch_size: 1 input { key: \"x\" value: { dim: [1, 8] } } } } ] }\n"
    "  input_pinned_memory { enable: false }\n"
    "  output_pinned_memory { enable: true }\n"
    "  gather_kernel_buffer_threshold: 8\n"
    "  eager_batching: true\n"
    "}\n"
    "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ]\n"
    "  rate_limiter { resources [ { name: \"R1\" count: 2 global: true } ] priority: 2 }\n"
    "  host_policy: \"policy_0\" passive: false profile: [\"0\"]\n"
    "  secondary_devices [ { kind: KIND_NVDLA device_id: 0 } ] } ]\n"
    "model_transaction_policy { decoupled: false }\n"
    "response_cache { enable: true }\n"
    "model_repository_agents { agents [ { name: \"checksum\"\n"
    "  parameters { key: \"MD5:model.onnx\" value: \"abc\" } } ] }\n"
    "metric_tags { key: \"team\" value: \"vision\" }\n"
    "cc_model_filenames { key: \"7.5\" value: \"model_75.onnx\" }\n"
    "model_operations { op_library_filename: \"libcustom.so\" }\n"
    "model_metrics { metric_control [ {\n"
    "  metric_identifier { family: \"nv_inference_first_response_histogram_ms\" }\n"
    "  histogram_options { buckets: [ -5.0, 0, 3.5, 1e3 ] } } ] }\n";

static const char sequence_model[] =
    "name: \"stateful\"\n"
    "backend: \"onnxruntime\"\n"
    "max_batch_size: 2\n"
    "input [ { name: \"x\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
    "output [ { name: \"y\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
    "sequence_batching {\n"
    "  max_sequence_idle_microseconds: 5000000\n"
    "  oldest { max_candidate_sequences: 4 preferred_batch_size: [ 2 ]\n"
    "           max_queue_delay_microseconds: 100 preserve_ordering: true }\n"
    "  control_input [\n"
    "    { name: \"START\" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] "
    "},\n"
    "    { name: \"READY\" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] "
    "},\n"
    "    { name: \"END\" control [ { kind: CONTROL_SEQUENCE_END bool_false_true: [ false, true ] } "
    "] },\n"
    "    { name: \"CORRID\" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] "
    "}\n"
    "  ]\n"
    "  state [ { input_name: \"INPUT_STATE\" output_name: \"OUTPUT_STATE\" data_type: TYPE_INT32\n"
    "            dims: [ -1 ] use_same_buffer_for_input_output: true\n"
    "            initial_state: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true\n"
    "                             name: \"initial state\" } } ]\n"
    "  iterative_sequence: false\n"
    "}\n";

static void skipped_triton_fields_load(void **state) {
  log_configure(LOG_ERROR, false);
  model_config *c = parse_ok(skipped_fields);
  assert_string_equal(c->name, "skips");
  assert_int_equal(c->max_batch_size, 4);
  assert_int_equal(c->n_inputs, 1);
  assert_int_equal(c->n_outputs, 1);
  assert_int_equal(c->n_instance_groups, 1);
  assert_int_equal(c->instance_groups[0].kind, KIND_GPU);
  assert_int_equal(c->n_params, 0); /* accelerator and agent parameters are not model parameters */
  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(model_config_check(c, &e), 0);
  char *json = to_json(c);
  assert_null(strstr(json, "optimization"));
  assert_null(strstr(json, "tensorrt"));
  free(json);
  model_config_free(c);

  c = parse_ok(sequence_model);
  assert_false(c->has_dynamic_batching);
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(model_config_check(c, &e), 0);
  model_config_free(c);

  /* The parts of ensemble_scheduling inferd does not apply. */
  c = parse_ok("name: \"e\" platform: \"ensemble\"\n"
               "input { name: \"IN\" data_type: TYPE_FP32 dims: [4] }\n"
               "output { name: \"OUT\" data_type: TYPE_FP32 dims: [4] }\n"
               "ensemble_scheduling { max_inflight_responses: 16 step { model_name: \"a\"\n"
               "  model_namespace: \"ns\" input_map { key: \"x\" value: \"IN\" }\n"
               "  output_map { key: \"y\" value: \"OUT\" } } }");
  assert_int_equal(c->n_ensemble_steps, 1);
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_int_equal(model_config_check(c, &e), 0);
  model_config_free(c);

  /* A config written with every field inferd skips in the forms the text
   * format allows: colons on messages, angle brackets, separators. */
  c = parse_ok("name: 'forms'; backend: 'onnxruntime',\n"
               "optimization: < graph: { level: -1 }; priority: 2 >\n"
               "response_cache: {}\n");
  model_config_free(c);
}

static void defaults_of_a_new_config(void **state) {
  model_config *c = model_config_new();
  assert_non_null(c);
  assert_null(c->name);
  assert_int_equal(c->max_batch_size, 0);
  assert_int_equal(c->version_policy.kind, VERSION_POLICY_LATEST);
  assert_int_equal(c->version_policy.latest_num, 1);
  expect_json(c, "{\"name\":\"\",\"platform\":\"\",\"backend\":\"\",\"version_policy\":{\"latest\":"
                 "{\"num_versions\":1}},\"max_batch_size\":0,\"input\":[],\"output\":[],"
                 "\"instance_group\":[],\"default_model_filename\":\"\",\"parameters\":{},"
                 "\"model_warmup\":[]}");
  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), -EINVAL);
  assert_string_equal(e.msg, "model configuration has no name to normalize with");
  assert_int_equal(model_config_check(c, &e), -EINVAL);
  assert_string_equal(e.msg, "name must not be empty");
  assert_null(model_config_param(c, "x"));
  model_config_free(c);

  /* An empty file is a valid configuration: the defaults. */
  c = parse_ok("");
  expect_json(c, "{\"name\":\"\",\"platform\":\"\",\"backend\":\"\",\"version_policy\":{\"latest\":"
                 "{\"num_versions\":1}},\"max_batch_size\":0,\"input\":[],\"output\":[],"
                 "\"instance_group\":[],\"default_model_filename\":\"\",\"parameters\":{},"
                 "\"model_warmup\":[]}");
  model_config_free(c);

  c = parse_ok("name: \"all\" version_policy { all {} } instance_group { kind: KIND_AUTO }\n"
               "instance_group { kind: KIND_MODEL name: \"m\" count: 3 }");
  assert_int_equal(c->version_policy.kind, VERSION_POLICY_ALL);
  assert_int_equal(c->instance_groups[0].count, 1);
  assert_int_equal(model_config_normalize(c, &e), 0);
  assert_string_equal(c->instance_groups[0].name, "all_0");
  assert_int_equal(c->instance_groups[0].kind, KIND_CPU);
  assert_int_equal(c->instance_groups[1].kind, KIND_MODEL);
  assert_int_equal(c->instance_groups[1].count, 3);
  char *json = to_json(c);
  assert_non_null(strstr(json, "\"version_policy\":{\"all\":{}}"));
  assert_non_null(strstr(json, "{\"name\":\"m\",\"kind\":\"KIND_MODEL\",\"count\":3,"));
  free(json);
  model_config_free(c);
}

/* Strings end up in JSON answers and C APIs: escapes are decoded, and JSON
 * escaping is applied on the way out. */
static void strings_round_trip_to_json(void **state) {
  model_config *c = parse_ok("name: \"q\\\"uote\\\\d \\u00e9\" backend: 'x'\n"
                             "parameters { key: \"tab\\there\" value { string_value: '\\n' } }");
  assert_string_equal(c->name, "q\"uote\\d \xc3\xa9");
  assert_string_equal(model_config_param(c, "tab\there"), "\n");
  char *json = to_json(c);
  assert_non_null(strstr(json, "{\"name\":\"q\\\"uote\\\\d \xc3\xa9\","));
  assert_non_null(strstr(json, "\"parameters\":{\"tab\\there\":{\"string_value\":\"\\n\"}}"));
  free(json);
  model_config_free(c);
}

/* ---- refusals at parse time ---- */

static void unknown_fields_and_bad_values(void **state) {
  expect_parse_error("name: \"m\"\ninput {\n  name: \"x\"\n    dimz: [1]\n}",
                     "config.pbtxt:4:5: unknown field 'dimz' in input (did you mean 'dims'?)");
  expect_parse_error("max_batch: 8", "config.pbtxt:1:1: unknown field 'max_batch'");
  expect_parse_error("dynamic_batching { max_queue_delay_ms: 100 }",
                     "config.pbtxt:1:20: unknown field 'max_queue_delay_ms' in dynamic_batching");
  expect_parse_error("instance_group { count: 1 devices: 2 }",
                     "config.pbtxt:1:27: unknown field 'devices' in instance_group");
  expect_parse_error(
      "optimization { execution_accelerators {\n"
      "  gpu_execution_accelerators [ { name: \"tensorrt\" } ] } }",
      "config.pbtxt:2:3: unknown field 'gpu_execution_accelerators' in "
      "optimization.execution_accelerators (did you mean 'gpu_execution_accelerator'?)");
  expect_parse_error("parameters { key: \"a\" value { string_valu: \"b\" } }",
                     "config.pbtxt:1:31: unknown field 'string_valu' in parameters.value (did you "
                     "mean 'string_value'?)");
  expect_parse_error("parameters { key: \"a\" value: \"b\" }",
                     "config.pbtxt:1:30: parameters.value must be a message { ... }, got \"b\"");
  expect_parse_error("input { name: \"x\" data_type: \"FP32\" }",
                     "config.pbtxt:1:30: input.data_type must be an enum like TYPE_FP32, got "
                     "\"FP32\"");
  expect_parse_error("input {\n  data_type: FP32 }",
                     "config.pbtxt:2:14: unknown input.data_type FP32; expected one of "
                     "TYPE_INVALID, TYPE_BOOL, TYPE_UINT8, TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, "
                     "TYPE_INT8, TYPE_INT16, TYPE_INT32, TYPE_INT64, TYPE_FP16, TYPE_FP32, "
                     "TYPE_FP64, TYPE_STRING, TYPE_BF16");
  expect_parse_error("input { format: NCHW }",
                     "config.pbtxt:1:17: unknown input.format NCHW; expected one of FORMAT_NONE, "
                     "FORMAT_NHWC, FORMAT_NCHW");
  expect_parse_error("instance_group [ { kind: KIND_TPU } ]",
                     "config.pbtxt:1:26: unknown instance_group.kind KIND_TPU; expected one of "
                     "KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL");
  expect_parse_error("dynamic_batching { default_queue_policy { timeout_action: DROP } }",
                     "config.pbtxt:1:59: unknown dynamic_batching.default_queue_policy."
                     "timeout_action DROP; expected one of REJECT, DELAY");
  expect_parse_error("max_batch_size: \"8\"",
                     "config.pbtxt:1:17: max_batch_size must be an integer, got \"8\"");
  expect_parse_error("max_batch_size: 8\nmax_batch_size: 4",
                     "config.pbtxt:2:1: max_batch_size is set twice (first at 1:1)");
  expect_parse_error("input { dims: [1, 2.0] }",
                     "config.pbtxt:1:19: input.dims must be an integer, got 2.0");
  expect_parse_error("dynamic_batching {}\nsequence_batching {}",
                     "config.pbtxt:2:1: sequence_batching cannot be set together with "
                     "dynamic_batching (at 1:1); they are alternatives");
  expect_parse_error("version_policy { latest { num_versions: 2 } all {} }",
                     "config.pbtxt:1:45: version_policy.all cannot be set together with "
                     "version_policy.latest (at 1:18); they are alternatives");
  expect_parse_error("version_policy { latest { num_versions: -1 } }",
                     "config.pbtxt:1:41: version_policy.latest.num_versions must be between 0 and "
                     "4294967295, got -1");
  expect_parse_error("name: [\"a\", \"b\"]", "config.pbtxt:1:1: name is not repeated; it cannot "
                                             "take a list");
  expect_parse_error("input { dims: [1,2,3,4,5,6,7,8,9] }",
                     "config.pbtxt:1:32: input.dims has more than 8 dimensions");
  expect_parse_error("name: \"bad\\xff\"", "config.pbtxt:1:7: name is not valid UTF-8");
  expect_parse_error("name: \"a\\0b\"", "config.pbtxt:1:7: name contains a NUL byte");
  expect_parse_error("backend: \"\\xc0\\x80\"", "config.pbtxt:1:10: backend is not valid UTF-8");
  expect_parse_error("output { label_filename: \"\\xed\\xa0\\x80\" }",
                     "config.pbtxt:1:26: output.label_filename is not valid UTF-8");
  expect_parse_error("platform: \"\\xf4\\x90\\x80\\x80\"",
                     "config.pbtxt:1:11: platform is not valid UTF-8");
  expect_parse_error("parameters { key: \"\\xe2\\x82\" }",
                     "config.pbtxt:1:19: parameters.key is not valid UTF-8");
  expect_parse_error("model_warmup { inputs { key: \"x\" value { data_type: TYPE_FP32 } } }",
                     "config.pbtxt:1:40: model_warmup.inputs.value must set zero_data, "
                     "random_data or input_data_file");
  expect_parse_error("model_warmup { inputs { key: \"x\" } }",
                     "config.pbtxt:1:23: model_warmup.inputs.value must set zero_data, "
                     "random_data or input_data_file");
  expect_parse_error("model_warmup { inputs { key: \"x\" value { zero_data: true random_data: "
                     "true } } }",
                     "config.pbtxt:1:58: model_warmup.inputs.value.random_data cannot be set "
                     "together with model_warmup.inputs.value.zero_data (at 1:42); they are "
                     "alternatives");
  expect_parse_error("instance_group { count: 3000000000 }",
                     "config.pbtxt:1:25: instance_group.count must be between -2147483648 and "
                     "2147483647, got 3000000000");
  expect_parse_error("name: \"m\"\ninput {", "config.pbtxt:2:8: expected '}' to close 'input' "
                                             "opened at 2:7, got end of input");
}

/* ---- model_config_check ---- */

/* Parses base + extra, normalizes (when named), and expects check to refuse
 * with msg. */
static void expect_check_error(const char *text, const char *msg) {
  model_config *c = parse_ok(text);
  err e = {0};
  if (c->name && *c->name) assert_int_equal(model_config_normalize(c, &e), 0);
  int rc = model_config_check(c, &e);
  if (rc != -EINVAL || strcmp(e.msg, msg) != 0)
    fail_msg("config:\n%s\n  got: %s (%d)\n want: %s", text, rc ? e.msg : "success", rc, msg);
  model_config_free(c);
}

static void expect_check_ok(const char *text) {
  model_config *c = parse_ok(text);
  err e = {0};
  assert_int_equal(model_config_normalize(c, &e), 0);
  if (model_config_check(c, &e)) fail_msg("config:\n%s\n  refused: %s", text, e.msg);
  model_config_free(c);
}

#define BASE "name: \"m\" backend: \"onnxruntime\" "
#define IO                                                                                         \
  "input { name: \"x\" data_type: TYPE_FP32 dims: [4] } output { name: \"y\" data_type: "          \
  "TYPE_FP32 dims: [4] } "

static void check_refusals(void **state) {
  expect_check_error("backend: \"onnxruntime\"", "name must not be empty");
  expect_check_error(BASE "max_batch_size: -1", "max_batch_size must be >= 0, got -1");
  expect_check_error("name: \"m\"", "platform or backend must be set");
  expect_check_error(BASE "version_policy { latest {} }",
                     "version_policy.latest.num_versions must be >= 1");
  expect_check_error(BASE "version_policy { specific {} }",
                     "version_policy.specific.versions must list a version");
  expect_check_error(BASE "version_policy { specific { versions: [1, -2] } }",
                     "version_policy.specific.versions must be >= 0, got -2");
  expect_check_error(BASE "input { data_type: TYPE_FP32 dims: [1] }",
                     "input[0].name must not be empty");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [1] }\n"
                          "input { name: \"z\" data_type: TYPE_FP32 dims: [1] }\n"
                          "input { name: \"x\" data_type: TYPE_INT8 dims: [1] }",
                     "input 'x' is listed twice");
  expect_check_error(BASE IO "output { name: \"y\" data_type: TYPE_FP32 dims: [4] }",
                     "output 'y' is listed twice");
  expect_check_error(BASE "input { name: \"x\" dims: [1] }", "input 'x': data_type must be set");
  expect_check_error(BASE "output { name: \"y\" data_type: TYPE_INVALID dims: [1] }",
                     "output 'y': data_type must be set");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 }",
                     "input 'x': dims must be given");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [2, 0] }",
                     "input 'x': dims[1] must be >= 1, or -1 for a variable size; got 0");
  expect_check_error(BASE "output { name: \"y\" data_type: TYPE_FP32 dims: [-2] }",
                     "output 'y': dims[0] must be >= 1, or -1 for a variable size; got -2");
  expect_check_error(BASE "max_batch_size: 4 input { name: \"x\" data_type: TYPE_FP32\n"
                          "dims: [1,1,1,1,1,1,1,1] }",
                     "input 'x': dims has 8 dimensions plus the batch dimension; at most 8 are "
                     "supported");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [2, 3]\n"
                          "reshape { shape: [5] } }",
                     "input 'x': reshape [5] does not hold the same elements as dims [2,3]");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [2, -1]\n"
                          "reshape { shape: [-1, 2] } }",
                     "input 'x': reshape [-1,2] does not hold the same elements as dims [2,-1]");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [2, -1]\n"
                          "reshape { shape: [2] } }",
                     "input 'x': reshape [2] does not hold the same elements as dims [2,-1]");
  expect_check_error(BASE "output { name: \"y\" data_type: TYPE_FP32 dims: [4]\n"
                          "reshape { shape: [2, 0] } }",
                     "output 'y': reshape.shape[1] must be >= 1, or -1 for a variable size; got 0");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [1] reshape {} }",
                     "input 'x': reshape cannot be empty when max_batch_size is 0 (scalar tensors "
                     "are not supported)");
  expect_check_error(BASE "max_batch_size: 2\n"
                          "input { name: \"x\" data_type: TYPE_FP32 dims: [2] reshape {} }",
                     "input 'x': reshape [] does not hold the same elements as dims [2]");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [3, 9]\n"
                          "format: FORMAT_NCHW }",
                     "input 'x': format FORMAT_NCHW needs 3 dims, got 2");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_INT64 dims: [1]\n"
                          "is_shape_tensor: true }",
                     "input 'x': is_shape_tensor is only supported by TensorRT");
  expect_check_error(BASE "output { name: \"y\" data_type: TYPE_INT64 dims: [1]\n"
                          "is_shape_tensor: true }",
                     "output 'y': is_shape_tensor is only supported by TensorRT");
  expect_check_error(BASE "input { name: \"x\" data_type: TYPE_FP32\n"
                          "dims: [9223372036854775807, 2] reshape { shape: [-1] } }",
                     "input 'x': reshape [-1] does not hold the same elements as dims "
                     "[9223372036854775807,2]");
  expect_check_error(BASE "output { name: \"y\" data_type: TYPE_INT64 dims: [1]\n"
                          "is_non_linear_format_io: true }",
                     "output 'y': is_non_linear_format_io is only supported by TensorRT");
  expect_check_error(BASE "instance_group [{ count: 2 }, { count: 0 }]",
                     "instance_group[1].count must be >= 1, got 0");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { preferred_batch_size: [4, 16] }",
                     "dynamic_batching.preferred_batch_size must be in 1..max_batch_size (8), got "
                     "16");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { preferred_batch_size: 0 }",
                     "dynamic_batching.preferred_batch_size must be in 1..max_batch_size (8), got "
                     "0");
  expect_check_error(BASE "dynamic_batching { preferred_batch_size: 4 }",
                     "dynamic_batching.preferred_batch_size must be in 1..max_batch_size (0), got "
                     "4");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { priority_levels: 2 }",
                     "dynamic_batching.default_priority_level must be in 1..priority_levels (2), "
                     "got 0");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { priority_levels: 2\n"
                          "default_priority_level: 3 }",
                     "dynamic_batching.default_priority_level must be in 1..priority_levels (2), "
                     "got 3");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { priority_levels: 2\n"
                          "default_priority_level: 1 priority_queue_policy { key: 5 value {} } }",
                     "dynamic_batching.priority_queue_policy key must be in 1..priority_levels "
                     "(2), got 5");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { priority_levels: 2\n"
                          "default_priority_level: 1 preserve_ordering: true }",
                     "dynamic_batching.priority_levels must be at most 1 when preserve_ordering "
                     "is true");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { preserve_ordering: true\n"
                          "default_queue_policy { timeout_action: DELAY\n"
                          "default_timeout_microseconds: 10 } }",
                     "dynamic_batching.default_queue_policy: timeout_action DELAY cannot be used "
                     "with preserve_ordering");
  expect_check_error(BASE "max_batch_size: 8 dynamic_batching { preserve_ordering: true\n"
                          "priority_queue_policy { key: 1 value { timeout_action: DELAY\n"
                          "default_timeout_microseconds: 10 } } }",
                     "dynamic_batching.priority_queue_policy: timeout_action DELAY cannot be used "
                     "with preserve_ordering");
  expect_check_error(BASE IO "model_warmup { name: \"w\" }",
                     "model_warmup 'w': batch_size must be >= 1");
  expect_check_error(BASE IO "model_warmup { name: \"w\" batch_size: 2 }",
                     "model_warmup 'w': batch_size must be 1 when max_batch_size is 0, got 2");
  expect_check_error(BASE IO "max_batch_size: 4 model_warmup { name: \"w\" batch_size: 5 }",
                     "model_warmup 'w': batch_size must be at most max_batch_size (4), got 5");
  expect_check_error(BASE IO "model_warmup { name: \"w\" batch_size: 1\n"
                             "inputs { key: \"x\" value { dims: [4] zero_data: true } } }",
                     "model_warmup 'w' input 'x': data_type must be set");
  expect_check_error(BASE IO "model_warmup { name: \"w\" batch_size: 1\n"
                             "inputs { key: \"x\" value { data_type: TYPE_FP32 dims: [-1]\n"
                             "random_data: true } } }",
                     "model_warmup 'w' input 'x': dims[0] must be >= 0 (warmup shapes are fixed), "
                     "got -1");
  expect_check_error(BASE IO "model_warmup { name: \"w\" batch_size: 1\n"
                             "inputs { value { data_type: TYPE_FP32 zero_data: true } } }",
                     "model_warmup 'w': an input has no name");
}

#define ENSEMBLE_IO                                                                                \
  "name: \"e\" platform: \"ensemble\"\n"                                                           \
  "input { name: \"IN\" data_type: TYPE_FP32 dims: [4] }\n"                                        \
  "output { name: \"OUT\" data_type: TYPE_FP32 dims: [4] }\n"
#define STEP(model, in_key, in_val, out_key, out_val)                                              \
  "step { model_name: \"" model "\" input_map { key: \"" in_key "\" value: \"" in_val "\" }"       \
  " output_map { key: \"" out_key "\" value: \"" out_val "\" } }\n"

static void ensemble_refusals(void **state) {
  expect_check_ok(ENSEMBLE_IO "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "T")
                      STEP("b", "x", "T", "y", "OUT") "}");
  expect_check_error(ENSEMBLE_IO, "platform 'ensemble' needs ensemble_scheduling with steps");
  expect_check_error("name: \"e\" backend: \"onnxruntime\"\n"
                     "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}",
                     "ensemble_scheduling needs platform 'ensemble'");
  expect_check_error(ENSEMBLE_IO "backend: \"onnxruntime\"\n"
                                 "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}",
                     "an ensemble must not set backend (got 'onnxruntime')");
  expect_check_error(ENSEMBLE_IO "instance_group { count: 1 }\n"
                                 "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}",
                     "instance_group must not be set for an ensemble");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling { step { input_map { key: \"x\" value: "
                                 "\"IN\" } output_map { key: \"y\" value: \"OUT\" } } }",
                     "ensemble_scheduling.step[0].model_name must not be empty");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling { step { model_name: \"a\"\n"
                                 "output_map { key: \"y\" value: \"OUT\" } } }",
                     "ensemble_scheduling.step[0] (model 'a'): input_map must not be empty");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT")
                         STEP("b", "x", "IN", "y", "OUT") "}",
                     "ensemble tensor 'OUT' is written by both step 0 and step 1");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "IN") "}",
                     "ensemble_scheduling.step[0] (model 'a') writes 'IN', an input of the "
                     "ensemble");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "T")
                         STEP("b", "x", "Tt", "y", "OUT") "}",
                     "ensemble_scheduling.step[1] (model 'b') reads 'Tt' into 'x', but 'Tt' is "
                     "neither an ensemble input nor written by a step");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "T") "}",
                     "ensemble output 'OUT' is not written by any step");
  expect_check_error(ENSEMBLE_IO "input { name: \"EXTRA\" data_type: TYPE_FP32 dims: [1] }\n"
                                 "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}",
                     "ensemble input 'EXTRA' is not read by any step");
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n"
                                 "step { model_name: \"a\" input_map { key: \"x\" value: \"IN\" }\n"
                                 "  output_map [ { key: \"y\" value: \"OUT\" },\n"
                                 "               { key: \"z\" value: \"LEFTOVER\" } ] } }",
                     "ensemble tensor 'LEFTOVER' written by step 0 is neither read by a step nor "
                     "an ensemble output");
  /* a reads IN and U (written by b); b reads T (written by a): neither runs */
  expect_check_error(ENSEMBLE_IO "ensemble_scheduling {\n"
                                 "step { model_name: \"a\" input_map [ { key: \"x\" value: \"IN\" "
                                 "}, { key: \"u\" value: \"U\" } ]\n"
                                 "  output_map { key: \"y\" value: \"T\" } }\n"
                                 "step { model_name: \"b\" input_map { key: \"t\" value: \"T\" }\n"
                                 "  output_map [ { key: \"u\" value: \"U\" }, { key: \"o\" value: "
                                 "\"OUT\" } ] } }",
                     "ensemble_scheduling.step[0] (model 'a') can never run: its inputs depend "
                     "on its own outputs through a cycle");
  expect_check_error(ENSEMBLE_IO "model_warmup { name: \"w\" batch_size: 1 }\n"
                                 "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}",
                     "model_warmup must not be set for an ensemble");
}

static void check_accepts_edge_cases(void **state) {
  /* Triton's reshape rule: the runs of fixed dims between -1s match */
  expect_check_ok(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [2, 4, -1, 6]\n"
                       "reshape { shape: [8, -1, 1, 6] } }");
  /* a scalar seen as [1] by the client, when the model batches */
  expect_check_ok(BASE "max_batch_size: 8 input { name: \"x\" data_type: TYPE_FP32 dims: [1]\n"
                       "reshape {} }");
  expect_check_ok(BASE "max_batch_size: 0 input { name: \"x\" data_type: TYPE_FP32\n"
                       "dims: [1,1,1,1,1,1,1,1] }");
  expect_check_ok(BASE "input { name: \"x\" data_type: TYPE_STRING dims: [-1]\n"
                       "format: FORMAT_NONE optional: true } version_policy { latest { "
                       "num_versions: 3 } }");
  expect_check_ok(BASE "max_batch_size: 4 dynamic_batching { priority_levels: 1\n"
                       "default_priority_level: 1 preserve_ordering: true\n"
                       "default_queue_policy { timeout_action: DELAY } }");
  /* the same name for an input and an output is allowed, as in Triton */
  expect_check_ok(BASE "input { name: \"x\" data_type: TYPE_FP32 dims: [4] }\n"
                       "output { name: \"x\" data_type: TYPE_FP32 dims: [4] }");
  /* an ensemble input passed straight through as an output */
  expect_check_ok(ENSEMBLE_IO "output { name: \"IN\" data_type: TYPE_FP32 dims: [4] }\n"
                              "ensemble_scheduling {\n" STEP("a", "x", "IN", "y", "OUT") "}");
}

/* Many map entries with repeated keys: sorted, one per key, last wins, and
 * lookups by binary search find each. */
static void maps_keep_the_last_value(void **state) {
  buf b = {0};
  buf_puts(&b, "name: \"m\"\n");
  for (int round = 0; round < 3; round++)
    for (int k = 999; k >= 0; k--)
      buf_printf(&b, "parameters { key: \"k%04d\" value { string_value: \"%d-%d\" } }\n", k, k,
                 round);
  buf_puts(&b, "dynamic_batching {");
  for (int round = 0; round < 2; round++)
    for (int k = 1; k <= 50; k++)
      buf_printf(&b, " priority_queue_policy { key: %d value { max_queue_size: %d } }", k,
                 100 * round + k);
  buf_puts(&b, " }\n");
  buf_putc(&b, 0);
  model_config *c = parse_ok(b.data);
  buf_free(&b);
  assert_int_equal(c->n_params, 1000);
  for (int k = 0; k < 1000; k++) {
    char key[16], want[16];
    snprintf(key, sizeof key, "k%04d", k);
    snprintf(want, sizeof want, "%d-2", k);
    assert_string_equal(c->params[k].key, key);
    assert_string_equal(model_config_param(c, key), want);
  }
  assert_int_equal(c->dynamic_batching.n_priority_policies, 50);
  for (int k = 0; k < 50; k++) {
    assert_int_equal(c->dynamic_batching.priority_policies[k].level, k + 1);
    assert_int_equal(c->dynamic_batching.priority_policies[k].policy.max_queue_size, 100 + k + 1);
  }
  model_config_free(c);
}

int main(void) {
  log_configure(LOG_ERROR, false);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(simple_onnx_model),
      cmocka_unit_test(dynamic_batching_with_priorities),
      cmocka_unit_test(warmup_samples),
      cmocka_unit_test(ensemble_pipeline),
      cmocka_unit_test(skipped_triton_fields_load),
      cmocka_unit_test(defaults_of_a_new_config),
      cmocka_unit_test(strings_round_trip_to_json),
      cmocka_unit_test(unknown_fields_and_bad_values),
      cmocka_unit_test(check_refusals),
      cmocka_unit_test(ensemble_refusals),
      cmocka_unit_test(check_accepts_edge_cases),
      cmocka_unit_test(maps_keep_the_last_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
