/* Unit tests for core/validate: requests checked against a model
 * configuration, and the messages that name what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/model_config.h"
#include "core/validate.h"

static const char config_text[] = "name: \"m\"\n"
                                  "backend: \"onnx\"\n"
                                  "max_batch_size: 8\n"
                                  "input [ { name: \"a\" data_type: TYPE_FP32 dims: [ 4, -1 ] },\n"
                                  "        { name: \"b\" data_type: TYPE_INT64 dims: [ 1 ] },\n"
                                  "        { name: \"c\" data_type: TYPE_FP32 dims: [ 2 ] "
                                  "optional: true } ]\n"
                                  "output [ { name: \"y\" data_type: TYPE_FP32 dims: [ 3 ] },\n"
                                  "         { name: \"s\" data_type: TYPE_STRING dims: [ 1 ] } ]\n";

static int setup(void **state) {
  err e = {0};
  model_config *c = model_config_parse(config_text, sizeof config_text - 1, &e);
  if (!c) fail_msg("%s", e.msg);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  model_config_free(*state);
  return 0;
}

/* A request with inputs a [2,4,5] FP32 and b [2,1] INT64. */
typedef struct fixture {
  infer_input in[4];
  infer_output_spec out[2];
  infer_request req;
} fixture;

static void make_request(fixture *f) {
  memset(f, 0, sizeof *f);
  f->in[0].t =
      (inferd_tensor){.name = "a", .dtype = INFERD_TYPE_FP32, .ndim = 3, .shape = {2, 4, 5}};
  f->in[1].t = (inferd_tensor){.name = "b", .dtype = INFERD_TYPE_INT64, .ndim = 2, .shape = {2, 1}};
  f->req.inputs = f->in;
  f->req.n_inputs = 2;
  f->req.outputs = f->out;
}

static void expect(const model_config *c, const infer_request *req, const char *needle) {
  err e = {0};
  int rc = validate_request(c, req, &e);
  if (!needle) {
    if (rc != 0) fail_msg("unexpected error: %s", e.msg);
    return;
  }
  assert_int_equal(rc, -EINVAL);
  if (!strstr(e.msg, needle)) fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void valid_requests(void **state) {
  fixture f;
  make_request(&f);
  expect(*state, &f.req, NULL);
  f.in[2].t = (inferd_tensor){.name = "c", .dtype = INFERD_TYPE_FP32, .ndim = 2, .shape = {2, 2}};
  f.req.n_inputs = 3;
  expect(*state, &f.req, NULL);
  f.out[0].name = "y";
  f.out[0].classification = 2;
  f.req.n_outputs = 1;
  expect(*state, &f.req, NULL);
}

static void input_errors(void **state) {
  fixture f;
  make_request(&f);
  f.in[0].t.name = "z";
  expect(*state, &f.req, "unexpected input 'z' for model 'm'; its inputs are: 'a', 'b', 'c'");

  make_request(&f);
  f.req.n_inputs = 1;
  expect(*state, &f.req, "input 'b' is missing");

  make_request(&f);
  f.in[1].t.dtype = INFERD_TYPE_INT32;
  expect(*state, &f.req, "input 'b' has datatype INT32, expected INT64");

  make_request(&f);
  f.in[0].t.shape[1] = 3;
  expect(*state, &f.req, "input 'a' has shape [2,3,5], expected [-1,4,-1]");

  make_request(&f);
  f.in[0].t.ndim = 2;
  expect(*state, &f.req, "(the first dimension is the batch)");

  make_request(&f);
  f.in[0].t.shape[0] = f.in[1].t.shape[0] = 9;
  expect(*state, &f.req, "batch size 9, the model accepts 1 to 8");

  make_request(&f);
  f.in[0].t.shape[0] = f.in[1].t.shape[0] = 0;
  expect(*state, &f.req, "batch size 0");

  make_request(&f);
  f.in[1].t.shape[0] = 3;
  expect(*state, &f.req, "input 'b' has batch size 3 but another input has 2");
}

static void output_errors(void **state) {
  fixture f;
  make_request(&f);
  f.out[0].name = "probs";
  f.req.n_outputs = 1;
  expect(*state, &f.req, "unknown output 'probs' requested; model 'm' has: 'y', 's'");

  make_request(&f);
  f.out[0].name = "s";
  f.out[0].classification = 1;
  f.req.n_outputs = 1;
  expect(*state, &f.req, "output 's' is BYTES: classification needs a numeric output");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_requests),
      cmocka_unit_test(input_errors),
      cmocka_unit_test(output_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
