/* Unit tests for proto/v2: decoding infer requests (JSON, binary, raw) of
 * every datatype, the errors of malformed requests (code and message), and
 * encoding responses. Bodies are decoded from heap copies of exactly their
 * length, so that AddressSanitizer catches a read past them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "core/dtype.h"
#include "proto/json.h"
#include "proto/v2.h"

static arena *A;
static err E;
static infer_request R;
static char *body; /* the last body decoded; lives until the next */

static int setup(void **state) {
  A = arena_create(1 << 16);
  return A ? 0 : -1;
}

static int teardown(void **state) {
  arena_destroy(A);
  free(body);
  body = NULL;
  return 0;
}

/* Decodes json followed by bin[0..bin_len); header_len as given (-2: the
 * JSON's length when there is binary data, else absent). The body starts at
 * an address aligned to 64 plus `shift`. */
static int decode_at(const char *json, const void *bin, size_t bin_len, int64_t header_len,
                     size_t shift) {
  size_t jl = strlen(json), len = jl + bin_len;
  free(body);
  char *mem = aligned_alloc(64, (shift + len + 63) / 64 * 64 + 64);
  assert_non_null(mem);
  /* keep the copy at exactly len bytes from its end for ASan: use a second
   * allocation when not shifting */
  if (shift == 0) {
    free(mem);
    mem = malloc(len ? len : 1);
    assert_non_null(mem);
    assert_int_equal((uintptr_t)mem % 16, 0);
  }
  body = mem;
  char *p = mem + shift;
  memcpy(p, json, jl);
  if (bin_len) memcpy(p + jl, bin, bin_len);
  if (header_len == -2) header_len = bin_len ? (int64_t)jl : -1;
  arena_reset(A);
  memset(&R, 0, sizeof R);
  R.arena = A;
  R.model_name = "m";
  R.model_version = -1;
  memset(&E, 0, sizeof E);
  return v2_decode_infer_request(p, len, header_len, &R, &E);
}

static int decode(const char *json) { return decode_at(json, NULL, 0, -1, 0); }

static void decode_ok(const char *json) {
  int rc = decode(json);
  if (rc) fail_msg("decode failed (%d): %s\n%s", rc, E.msg, json);
}

static void bad_bin(const char *json, const void *bin, size_t bin_len, int64_t header_len,
                    const char *msg) {
  int rc = decode_at(json, bin, bin_len, header_len, 0);
  if (rc != -EINVAL) fail_msg("expected -EINVAL, got %d for\n%s", rc, json);
  if (!strstr(E.msg, msg)) fail_msg("message '%s' lacks '%s'\n%s", E.msg, msg, json);
}

static void bad(const char *json, const char *msg) { bad_bin(json, NULL, 0, -1, msg); }

/* A one-input request of the given datatype, shape and data. */
static const char *one(const char *datatype, const char *shape, const char *data) {
  static char out[4096];
  snprintf(out, sizeof out,
           "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"%s\",\"shape\":%s,\"data\":%s}]}", datatype,
           shape, data);
  return out;
}

/* ---- valid JSON requests ------------------------------------------------- */

static void json_every_datatype(void **state) {
  decode_ok(one("FP32", "[1,4]", "[0.1,-2.5,NaN,-Infinity]"));
  infer_input *in = &R.inputs[0];
  assert_int_equal(R.n_inputs, 1);
  assert_string_equal(in->t.name, "x");
  assert_int_equal(in->t.dtype, INFERD_TYPE_FP32);
  assert_int_equal(in->t.ndim, 2);
  assert_int_equal(in->t.shape[1], 4);
  assert_int_equal(in->t.byte_size, 16);
  assert_int_equal((uintptr_t)in->t.data % 64, 0);
  assert_false(in->binary);
  float *f = in->t.data;
  assert_true(f[0] == 0.1f && f[1] == -2.5f && isnan(f[2]) && f[3] == -INFINITY);

  decode_ok(one("FP64", "[2]", "[0.1,1e308]"));
  double *d = R.inputs[0].t.data;
  assert_true(d[0] == 0.1 && d[1] == 1e308);
  assert_int_equal(R.inputs[0].t.byte_size, 16);

  decode_ok(one("BOOL", "[3]", "[true,false,true]"));
  assert_memory_equal(R.inputs[0].t.data, "\1\0\1", 3);

  decode_ok(one("INT8", "[2]", "[-128,127]"));
  assert_int_equal(((int8_t *)R.inputs[0].t.data)[0], -128);
  decode_ok(one("INT16", "[2]", "[-32768,32767]"));
  assert_int_equal(((int16_t *)R.inputs[0].t.data)[1], 32767);
  decode_ok(one("INT32", "[2]", "[-2147483648,2147483647]"));
  assert_int_equal(((int32_t *)R.inputs[0].t.data)[0], INT32_MIN);
  decode_ok(one("INT64", "[2]", "[-9223372036854775808,9223372036854775807]"));
  assert_true(((int64_t *)R.inputs[0].t.data)[0] == INT64_MIN);
  assert_int_equal(R.inputs[0].t.byte_size, 16);
  decode_ok(one("UINT8", "[2]", "[0,255]"));
  assert_int_equal(((uint8_t *)R.inputs[0].t.data)[1], 255);
  decode_ok(one("UINT16", "[1]", "[65535]"));
  assert_int_equal(((uint16_t *)R.inputs[0].t.data)[0], 65535);
  decode_ok(one("UINT32", "[1]", "[4294967295]"));
  assert_int_equal(((uint32_t *)R.inputs[0].t.data)[0], UINT32_MAX);
  decode_ok(one("UINT64", "[2]", "[0,18446744073709551615]"));
  assert_true(((uint64_t *)R.inputs[0].t.data)[1] == UINT64_MAX);

  decode_ok(one("BYTES", "[3]", "[\"ab\",\"\",\"\\u00e9\"]"));
  assert_int_equal(R.inputs[0].t.byte_size, 4 + 2 + 4 + 4 + 2);
  assert_memory_equal(R.inputs[0].t.data, "\2\0\0\0ab\0\0\0\0\2\0\0\0\xc3\xa9", 16);
}

static void json_nested_and_flat(void **state) {
  decode_ok(one("INT32", "[2,3]", "[[1,2,3],[4,5,6]]"));
  int32_t want[] = {1, 2, 3, 4, 5, 6};
  assert_memory_equal(R.inputs[0].t.data, want, sizeof want);
  decode_ok(one("INT32", "[2,3]", "[1,2,3,4,5,6]"));
  assert_memory_equal(R.inputs[0].t.data, want, sizeof want);
  decode_ok(one("INT32", "[1,2,3]", "[[[1,2,3],[4,5,6]]]"));
  assert_memory_equal(R.inputs[0].t.data, want, sizeof want);
  /* mixed runs flatten in order too */
  decode_ok(one("INT32", "[6]", "[1,[2,3],4,[[5]],6]"));
  assert_memory_equal(R.inputs[0].t.data, want, sizeof want);
  decode_ok(one("BYTES", "[2,1]", "[[\"a\"],[\"bc\"]]"));
  assert_memory_equal(R.inputs[0].t.data, "\1\0\0\0a\2\0\0\0bc", 11);
  /* a scalar: shape [] and one element, bare or in an array */
  decode_ok(one("FP32", "[]", "[2.5]"));
  assert_int_equal(R.inputs[0].t.ndim, 0);
  assert_true(*(float *)R.inputs[0].t.data == 2.5f);
  decode_ok(one("FP32", "[]", "7"));
  assert_true(*(float *)R.inputs[0].t.data == 7.0f);
  /* no elements */
  decode_ok(one("FP32", "[0,4]", "[]"));
  assert_int_equal(R.inputs[0].t.byte_size, 0);
  /* 32 levels of nesting are allowed */
  char data[128] = "", shape[128] = "[";
  for (int i = 0; i < 32; i++)
    strcat(data, "[");
  strcat(data, "1");
  for (int i = 0; i < 32; i++)
    strcat(data, "]");
  for (int i = 0; i < 8; i++)
    strcat(shape, i ? ",1" : "1");
  strcat(shape, "]");
  decode_ok(one("INT8", shape, data));
}

static void request_fields(void **state) {
  decode_ok("{\"id\":\"req-1\",\"unknown\":{\"deep\":[1,{}]},"
            "\"parameters\":{\"s\":\"v\",\"i\":-3,\"u\":18446744073709551615,\"d\":0.5,"
            "\"big\":1e400,\"b\":true,\"binary_data_output\":true,\"priority\":1},"
            "\"inputs\":[{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1],"
            "\"parameters\":{\"note\":\"n\"}},"
            "{\"name\":\"b\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[2]}],"
            "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":false,"
            "\"classification\":3}},{\"name\":\"z\"}]}");
  assert_string_equal(R.id, "req-1");
  assert_true(R.binary_output);
  assert_int_equal(R.params.n, 8);
  const param *p = param_find(&R.params, "s");
  assert_int_equal(p->type, PARAM_STRING);
  assert_string_equal(p->v.s, "v");
  p = param_find(&R.params, "i");
  assert_int_equal(p->type, PARAM_INT64);
  assert_int_equal(p->v.i, -3);
  p = param_find(&R.params, "u");
  assert_int_equal(p->type, PARAM_UINT64);
  assert_true(p->v.u == UINT64_MAX);
  p = param_find(&R.params, "d");
  assert_int_equal(p->type, PARAM_DOUBLE);
  assert_true(p->v.d == 0.5);
  assert_true(param_find(&R.params, "big")->v.d == INFINITY);
  assert_true(param_find(&R.params, "b")->v.b);
  assert_int_equal(param_find(&R.params, "priority")->v.i, 1);
  assert_int_equal(R.n_inputs, 2);
  assert_int_equal(R.inputs[0].params.n, 1);
  assert_string_equal(param_find(&R.inputs[0].params, "note")->v.s, "n");
  assert_int_equal(R.inputs[1].params.n, 0);
  assert_int_equal(R.n_outputs, 2);
  assert_string_equal(R.outputs[0].name, "y");
  assert_int_equal(R.outputs[0].binary, 0);
  assert_int_equal(R.outputs[0].classification, 3);
  assert_int_equal(R.outputs[0].params.n, 2);
  assert_string_equal(R.outputs[1].name, "z");
  assert_int_equal(R.outputs[1].binary, -1);
  assert_int_equal(R.outputs[1].classification, 0);

  /* empty id is no id; empty outputs means all */
  decode_ok("{\"id\":\"\",\"outputs\":[],\"inputs\":[{\"name\":\"a\",\"datatype\":\"FP32\","
            "\"shape\":[1],\"data\":[1]}]}");
  assert_null(R.id);
  assert_int_equal(R.n_outputs, 0);
  assert_false(R.binary_output);
}

static void many_inputs_unique(void **state) {
  /* Enough names for the hash check; then one repeated far apart. */
  buf b = {0};
  buf_puts(&b, "{\"inputs\":[");
  for (int i = 0; i < 300; i++)
    buf_printf(&b, "%s{\"name\":\"in%d\",\"datatype\":\"UINT8\",\"shape\":[1],\"data\":[%d]}",
               i ? "," : "", i, i % 256);
  buf_puts(&b, "]}");
  buf_putc(&b, 0);
  decode_ok(b.data);
  assert_int_equal(R.n_inputs, 300);
  assert_string_equal(R.inputs[299].t.name, "in299");
  b.len -= 3;
  buf_puts(&b, ",{\"name\":\"in7\",\"datatype\":\"UINT8\",\"shape\":[1],\"data\":[1]}]}");
  buf_putc(&b, 0);
  bad(b.data, "input 'in7' appears twice");
  buf_free(&b);
}

/* ---- binary data --------------------------------------------------------- */

static void binary_every_datatype(void **state) {
  static const struct {
    const char *dtype;
    size_t size;
  } types[] = {{"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
               {"INT8", 1}, {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
               {"FP32", 4}, {"FP64", 8},  {"BF16", 2}};
  unsigned char blob[3 * 8];
  for (size_t i = 0; i < sizeof blob; i++)
    blob[i] = (unsigned char)(i * 7 + 1);
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    char json[256];
    size_t size = 3 * types[t].size;
    snprintf(json, sizeof json,
             "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"%s\",\"shape\":[3],"
             "\"parameters\":{\"binary_data_size\":%zu}}]}",
             types[t].dtype, size);
    /* a JSON header whose length is a multiple of 8: the blob is aligned */
    char padded[256];
    snprintf(padded, sizeof padded, "%-*s", (int)((strlen(json) + 7) / 8 * 8), json);
    int rc = decode_at(padded, blob, size, -2, 0);
    if (rc) fail_msg("%s: %s", types[t].dtype, E.msg);
    infer_input *in = &R.inputs[0];
    assert_true(in->binary);
    assert_int_equal(in->t.byte_size, size);
    assert_memory_equal(in->t.data, blob, size);
    assert_ptr_equal(in->t.data, body + strlen(padded)); /* zero copy */
    assert_int_equal(param_find(&in->params, "binary_data_size")->v.i, (int64_t)size);
    /* misaligned for any type wider than a byte: copied to aligned memory */
    rc = decode_at(padded, blob, size, (int64_t)strlen(padded), 1);
    assert_int_equal(rc, 0);
    in = &R.inputs[0];
    assert_memory_equal(in->t.data, blob, size);
    if (types[t].size > 1) {
      assert_true(in->t.data != (void *)(body + 1 + strlen(padded)));
      assert_int_equal((uintptr_t)in->t.data % types[t].size, 0);
    } else {
      assert_ptr_equal(in->t.data, body + 1 + strlen(padded));
    }
  }
  /* BYTES: a sequence of length-prefixed elements, referenced in place */
  const char bytes[] = "\3\0\0\0abc\0\0\0\0\1\0\0\0z";
  int rc = decode_at("{\"inputs\":[{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[3],"
                     "\"parameters\":{\"binary_data_size\":16}}]}",
                     bytes, 16, -2, 1);
  if (rc) fail_msg("%s", E.msg);
  assert_int_equal(R.inputs[0].t.byte_size, 16);
  assert_memory_equal(R.inputs[0].t.data, bytes, 16);
}

static void binary_mixed_with_json(void **state) {
  /* blobs follow in the order of the inputs that declare them */
  float a[2] = {1.5f, -2};
  int64_t c[1] = {42};
  unsigned char bin[16];
  memcpy(bin, a, 8);
  memcpy(bin + 8, c, 8);
  const char *json = "{\"inputs\":["
                     "{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[2],"
                     "\"parameters\":{\"binary_data_size\":8}},"
                     "{\"name\":\"b\",\"datatype\":\"INT32\",\"shape\":[1],\"data\":[7]},"
                     "{\"name\":\"c\",\"datatype\":\"INT64\",\"shape\":[1],"
                     "\"parameters\":{\"binary_data_size\":8}}],"
                     "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}";
  int rc = decode_at(json, bin, sizeof bin, -2, 0);
  if (rc) fail_msg("%s", E.msg);
  assert_memory_equal(R.inputs[0].t.data, a, 8);
  assert_false(R.inputs[1].binary);
  assert_int_equal(*(int32_t *)R.inputs[1].t.data, 7);
  assert_true(R.inputs[2].binary);
  assert_int_equal(*(int64_t *)R.inputs[2].t.data, 42);
  assert_int_equal(R.outputs[0].binary, 1);
  /* zero-size blob, declared even without the header */
  rc = decode_at("{\"inputs\":[{\"name\":\"e\",\"datatype\":\"FP32\",\"shape\":[0],"
                 "\"parameters\":{\"binary_data_size\":0}}]}",
                 NULL, 0, -1, 0);
  if (rc) fail_msg("%s", E.msg);
  assert_int_equal(R.inputs[0].t.byte_size, 0);
}

static void raw_requests(void **state) {
  float v[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[] = {-1, 3};
  arena_reset(A);
  memset(&R, 0, sizeof R);
  R.arena = A;
  assert_int_equal(
      v2_decode_raw_request((const char *)v, sizeof v, "in", INFERD_TYPE_FP32, shape, 2, &R, &E),
      0);
  assert_int_equal(R.n_inputs, 1);
  assert_string_equal(R.inputs[0].t.name, "in");
  assert_int_equal(R.inputs[0].t.shape[0], 2);
  assert_int_equal(R.inputs[0].t.shape[1], 3);
  assert_ptr_equal(R.inputs[0].t.data, v);
  assert_true(R.inputs[0].binary);

  int64_t fixed[] = {2, 3};
  assert_int_equal(
      v2_decode_raw_request((const char *)v, sizeof v, "in", INFERD_TYPE_FP32, fixed, 2, &R, &E),
      0);
  assert_int_equal(
      v2_decode_raw_request((const char *)v, 20, "in", INFERD_TYPE_FP32, fixed, 2, &R, &E),
      -EINVAL);
  assert_non_null(strstr(E.msg, "input 'in': body holds 5 elements but shape [2,3] needs 6"));
  assert_int_equal(
      v2_decode_raw_request((const char *)v, 22, "in", INFERD_TYPE_FP32, shape, 2, &R, &E),
      -EINVAL);
  assert_non_null(strstr(E.msg, "body of 22 bytes is not a whole number of FP32"));
  assert_int_equal(
      v2_decode_raw_request((const char *)v, 16, "in", INFERD_TYPE_FP32, shape, 2, &R, &E),
      -EINVAL);
  assert_non_null(strstr(E.msg, "4 elements do not fit shape [-1,3]"));
  int64_t two_wild[] = {-1, -1};
  assert_int_equal(
      v2_decode_raw_request((const char *)v, 24, "in", INFERD_TYPE_FP32, two_wild, 2, &R, &E),
      -EINVAL);
  assert_non_null(strstr(E.msg, "one -1"));
  /* BYTES: the count of elements sets the -1; misaligned is fine for bytes */
  const char bytes[] = "\1\0\0\0a\2\0\0\0bc";
  int64_t one_wild[] = {-1};
  assert_int_equal(v2_decode_raw_request(bytes, 11, "s", INFERD_TYPE_BYTES, one_wild, 1, &R, &E),
                   0);
  assert_int_equal(R.inputs[0].t.shape[0], 2);
  assert_int_equal(v2_decode_raw_request(bytes, 10, "s", INFERD_TYPE_BYTES, one_wild, 1, &R, &E),
                   -EINVAL);
  assert_non_null(strstr(E.msg, "not a whole sequence of length-prefixed elements"));
  /* misaligned numeric body: copied */
  char mis[1 + sizeof v];
  memcpy(mis + 1, v, sizeof v);
  assert_int_equal(
      v2_decode_raw_request(mis + 1, sizeof v, "in", INFERD_TYPE_FP32, shape, 2, &R, &E), 0);
  assert_int_equal((uintptr_t)R.inputs[0].t.data % 4, 0);
  assert_memory_equal(R.inputs[0].t.data, v, sizeof v);
}

/* ---- malformed requests -------------------------------------------------- */

#define IN(fields) "{\"inputs\":[{" fields "}]}"
#define X          "\"name\":\"x\","

static void malformed_json(void **state) {
  bad("not json", "invalid JSON at byte 0: expected a value");
  bad("{\"inputs\":[}", "invalid JSON at byte 11: expected a value, got '}'");
  bad("{\"inputs\":[]} x", "invalid JSON at byte 14: unexpected 'x' after the JSON value");
  bad("{\"inputs\":[{\"name\":\"x\\q\"}]}", "invalid escape");
  bad("{\"inputs\":[{\"name\":\"\xff\"}]}", "invalid UTF-8");
  bad("{\"inputs\"", "expected ':' after object key, got the end of the text");
  bad("[]", "the request must be a JSON object, got array");
  bad("\"inputs\"", "must be a JSON object, got string");
  bad("{}", "the request has no 'inputs'");
  bad("{\"inputs\":[],\"inputs\":[]}", "the request has key 'inputs' twice");
}

static void malformed_fields(void **state) {
  bad("{\"inputs\":{}}", "'inputs' must be an array, got object");
  bad("{\"inputs\":[]}", "'inputs' is empty");
  bad("{\"id\":5,\"inputs\":[]}", "'id' must be a string, got number");
  bad("{\"inputs\":[1]}", "input 0 must be an object, got number");
  bad(IN("\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]"), "input 0 has no 'name'");
  bad(IN("\"name\":3,\"shape\":[1]"), "input 0: 'name' must be a string, got number");
  bad(IN("\"name\":\"a\\u0000b\",\"shape\":[1]"), "input name contains a NUL character");
  bad(IN(X "\"name\":\"y\""), "input 0 has key 'name' twice");
  bad(IN(X "\"datatype\":\"FP32\",\"data\":[1]"), "input 'x' has no 'shape'");
  bad(IN(X "\"shape\":\"1\""), "input 'x': 'shape' must be an array of integers, got string");
  bad(IN(X "\"shape\":[2,-1]"),
      "input 'x': shape dimension 1 must be a non-negative integer, got -1");
  bad(IN(X "\"shape\":[1.5]"), "shape dimension 0 must be a non-negative integer, got 1.5");
  bad(IN(X "\"shape\":[\"2\"]"),
      "shape dimension 0 must be a non-negative integer, got string \"2\"");
  bad(IN(X "\"shape\":[1,1,1,1,1,1,1,1,1]"), "input 'x': shape has 9 dimensions, more than 8");
  bad(IN(X "\"shape\":[4294967296,4294967296,4294967296]"), "element count overflows");
  bad(IN(X "\"shape\":[1],\"data\":[1]"), "input 'x' has no 'datatype'");
  bad(IN(X "\"shape\":[1],\"datatype\":11"), "input 'x': 'datatype' must be a string, got number");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP8\""),
      "input 'x': datatype string \"FP8\" is not one of BOOL");
  bad(IN(X "\"shape\":[1],\"datatype\":\"fp32\""), "datatype string \"fp32\" is not one of");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP32\""),
      "input 'x' has neither 'data' nor parameter 'binary_data_size'");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
           "\"parameters\":{\"binary_data_size\":4}"),
      "input 'x' has both 'data' and parameter 'binary_data_size'");
  bad("{\"inputs\":[{" X "\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]},"
      "{" X "\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}",
      "input 'x' appears twice");
}

static void malformed_data(void **state) {
  bad(one("FP32", "[2,2]", "[1,2,3]"), "input 'x': 'data' has 3 elements but shape [2,2] needs 4");
  bad(one("FP32", "[2,2]", "[[1,2],[3,4],[5]]"), "'data' has 5 elements but shape [2,2] needs 4");
  bad(one("FP32", "[1]", "[]"), "'data' has 0 elements but shape [1] needs 1");
  bad(one("UINT8", "[4]", "[1,2,3,300]"),
      "input 'x': value 300 out of range for UINT8 at element 3");
  bad(one("UINT8", "[2]", "[0,-1]"), "value -1 out of range for UINT8 at element 1");
  bad(one("INT8", "[1]", "[-129]"), "value -129 out of range for INT8 at element 0");
  bad(one("INT16", "[1]", "[32768]"), "value 32768 out of range for INT16");
  bad(one("UINT32", "[1]", "[4294967296]"), "value 4294967296 out of range for UINT32");
  bad(one("INT64", "[1]", "[9223372036854775808]"), "out of range for INT64 at element 0");
  bad(one("UINT64", "[1]", "[18446744073709551616]"),
      "value 18446744073709551616 out of range for UINT64");
  bad(one("INT32", "[2]", "[1,1.5]"), "expected an integer for INT32 at element 1, got 1.5");
  bad(one("INT32", "[1]", "[1e2]"), "expected an integer for INT32 at element 0, got 1e2");
  bad(one("INT64", "[2]", "[1,\"a\"]"),
      "expected an integer for INT64 at element 1, got string \"a\"");
  bad(one("UINT64", "[1]", "[NaN]"), "expected an integer for UINT64 at element 0, got NaN");
  bad(one("BOOL", "[2]", "[true,1]"), "expected true or false for BOOL at element 1, got 1");
  bad(one("FP32", "[3]", "[1,2,\"3\"]"),
      "expected a number for FP32 at element 2, got string \"3\"");
  bad(one("FP64", "[1]", "[null]"), "expected a number for FP64 at element 0, got null");
  bad(one("FP32", "[2]", "[[1],{}]"), "expected a number for FP32 at element 1, got object");
  bad(one("FP16", "[1]", "[1]"), "input 'x': FP16 data must be sent as binary (binary_data_size)");
  bad(one("BF16", "[1]", "[1]"), "BF16 data must be sent as binary");
  bad(one("BYTES", "[2]", "[\"a\",7]"), "expected a string for BYTES at element 1, got 7");
  char deep[128] = "";
  for (int i = 0; i < 33; i++)
    strcat(deep, "[");
  strcat(deep, "1");
  for (int i = 0; i < 33; i++)
    strcat(deep, "]");
  bad(one("FP32", "[1]", deep), "input 'x': 'data' is nested deeper than 32 arrays");
}

static void malformed_parameters(void **state) {
  bad("{\"parameters\":[],\"inputs\":[]}", "request 'parameters' must be an object, got array");
  bad("{\"parameters\":{\"p\":{}},\"inputs\":[]}",
      "request parameter 'p' must be a string, number or bool, got object");
  bad("{\"parameters\":{\"p\":null},\"inputs\":[]}", "must be a string, number or bool, got null");
  bad("{\"parameters\":{\"triton_x\":1},\"inputs\":[]}",
      "request parameter 'triton_x': names starting 'triton_' are reserved");
  bad("{\"parameters\":{\"a\":1,\"a\":2},\"inputs\":[]}", "request has parameter 'a' twice");
  bad("{\"parameters\":{\"binary_data_output\":\"yes\"},\"inputs\":[]}",
      "request parameter 'binary_data_output' must be a bool");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],\"parameters\":{\"p\":[1]}"),
      "input 'x' parameter 'p' must be a string, number or bool, got array");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":-4}"),
      "input 'x': parameter 'binary_data_size' must be a non-negative integer");
  bad(IN(X "\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":\"4\"}"),
      "parameter 'binary_data_size' must be a non-negative integer");
}

static void malformed_outputs(void **state) {
  const char *in = "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]";
  char json[512];
  snprintf(json, sizeof json, "{%s,\"outputs\":{}}", in);
  bad(json, "'outputs' must be an array, got object");
  snprintf(json, sizeof json, "{%s,\"outputs\":[\"y\"]}", in);
  bad(json, "output 0 must be an object, got string");
  snprintf(json, sizeof json, "{%s,\"outputs\":[{\"parameters\":{}}]}", in);
  bad(json, "output 0 has no 'name'");
  snprintf(json, sizeof json, "{%s,\"outputs\":[{\"name\":[]}]}", in);
  bad(json, "output 0: 'name' must be a string, got array");
  snprintf(json, sizeof json, "{%s,\"outputs\":[{\"name\":\"y\"},{\"name\":\"y\"}]}", in);
  bad(json, "output 'y' appears twice");
  snprintf(json, sizeof json,
           "{%s,\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":1}}]}", in);
  bad(json, "output 'y': parameter 'binary_data' must be a bool");
  snprintf(json, sizeof json,
           "{%s,\"outputs\":[{\"name\":\"y\",\"parameters\":{\"classification\":0}}]}", in);
  bad(json, "output 'y': parameter 'classification' must be a positive integer");
  snprintf(json, sizeof json,
           "{%s,\"outputs\":[{\"name\":\"y\",\"parameters\":{\"classification\":2.5}}]}", in);
  bad(json, "parameter 'classification' must be a positive integer");
  snprintf(json, sizeof json, "{%s,\"outputs\":[{\"name\":\"y\",\"parameters\":7}]}", in);
  bad(json, "output 'y' 'parameters' must be an object, got number");
}

static void malformed_binary(void **state) {
  const char *fp32x4 = IN(X "\"shape\":[4],\"datatype\":\"FP32\","
                            "\"parameters\":{\"binary_data_size\":16}");
  unsigned char blob[128] = {0};
  size_t jl = strlen(fp32x4);
  bad_bin(fp32x4, blob, 16, (int64_t)jl + 17, "Inference-Header-Content-Length");
  bad_bin(fp32x4, blob, 16, (int64_t)jl + 17, "is larger than the body");
  bad_bin(fp32x4, blob, 16, -5, "Inference-Header-Content-Length -5 is negative");
  bad_bin(fp32x4, blob, 16, 0, "the JSON header is empty");
  bad_bin(fp32x4, blob, 20, -2, "binary data is 20 bytes but inputs declare 16");
  bad_bin(fp32x4, blob, 12, -2, "binary data is 12 bytes but inputs declare 16");
  bad_bin(fp32x4, NULL, 0, -1,
          "binary data is 0 bytes but inputs declare 16 (no Inference-Header-Content-Length");
  /* the header length cuts the JSON short */
  bad_bin(fp32x4, blob, 16, (int64_t)jl - 1, "invalid JSON at byte");
  /* more binary than any input declares */
  bad_bin(one("FP32", "[1]", "[1]"), blob, 8, -2, "binary data is 8 bytes but inputs declare 0");
  bad_bin(IN(X "\"shape\":[4],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":12}"),
          blob, 12, -2, "input 'x': binary_data_size is 12 bytes but shape [4] of FP32 needs 16");
  bad_bin(IN(X "\"shape\":[3],\"datatype\":\"FP16\",\"parameters\":{\"binary_data_size\":8}"), blob,
          8, -2, "binary_data_size is 8 bytes but shape [3] of FP16 needs 6");
  /* BYTES: a length that runs past the blob, and a wrong count */
  const char lying[] = "\5\0\0\0abc";
  bad_bin(IN(X "\"shape\":[1],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":7}"),
          lying, 7, -2, "BYTES binary data of 7 bytes is not a whole sequence");
  const char one_el[] = "\3\0\0\0abc";
  bad_bin(IN(X "\"shape\":[2],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":7}"),
          one_el, 7, -2, "BYTES binary data holds 1 elements but shape [2] needs 2");
  /* declared sizes that overflow when added */
  bad_bin("{\"inputs\":[{\"name\":\"a\",\"shape\":[1],\"datatype\":\"UINT8\","
          "\"parameters\":{\"binary_data_size\":9223372036854775807}},"
          "{\"name\":\"b\",\"shape\":[1],\"datatype\":\"UINT8\","
          "\"parameters\":{\"binary_data_size\":9223372036854775807}},"
          "{\"name\":\"c\",\"shape\":[1],\"datatype\":\"UINT8\","
          "\"parameters\":{\"binary_data_size\":9223372036854775807}}]}",
          blob, 2, -2, "inputs declare more than");
}

/* ---- encoding ------------------------------------------------------------ */

static void encode_json_outputs(void **state) {
  float f32[3] = {0.1f, -2.0f, 1e-7f};
  int64_t i64[2] = {-5, 9007199254740993LL};
  uint8_t b8[2] = {1, 0};
  uint16_t f16[2] = {float_to_fp16(1.5f), float_to_fp16(-0.25f)};
  uint16_t bf16[1] = {float_to_bf16(3.0f)};
  double f64[1] = {0.1};
  uint64_t u64[1] = {UINT64_MAX};
  int8_t i8[2] = {-128, 127};
  const char bytes[] = "\2\0\0\0hi\0\0\0\0\3\0\0\0\"\\\n";
  infer_output o[] = {
      {.t = {.name = "f",
             .dtype = INFERD_TYPE_FP32,
             .ndim = 2,
             .shape = {1, 3},
             .data = f32,
             .byte_size = 12}},
      {.t = {.name = "i",
             .dtype = INFERD_TYPE_INT64,
             .ndim = 1,
             .shape = {2},
             .data = i64,
             .byte_size = 16}},
      {.t = {.name = "b",
             .dtype = INFERD_TYPE_BOOL,
             .ndim = 1,
             .shape = {2},
             .data = b8,
             .byte_size = 2}},
      {.t = {.name = "h",
             .dtype = INFERD_TYPE_FP16,
             .ndim = 1,
             .shape = {2},
             .data = f16,
             .byte_size = 4}},
      {.t = {.name = "g",
             .dtype = INFERD_TYPE_BF16,
             .ndim = 1,
             .shape = {1},
             .data = bf16,
             .byte_size = 2}},
      {.t = {.name = "d", .dtype = INFERD_TYPE_FP64, .ndim = 0, .data = f64, .byte_size = 8}},
      {.t = {.name = "u",
             .dtype = INFERD_TYPE_UINT64,
             .ndim = 1,
             .shape = {1},
             .data = u64,
             .byte_size = 8}},
      {.t = {.name = "c",
             .dtype = INFERD_TYPE_INT8,
             .ndim = 1,
             .shape = {2},
             .data = i8,
             .byte_size = 2}},
      {.t = {.name = "s",
             .dtype = INFERD_TYPE_BYTES,
             .ndim = 1,
             .shape = {3},
             .data = (void *)bytes,
             .byte_size = 17}},
  };
  param params[] = {{.key = "k", .type = PARAM_STRING, .v.s = "v"},
                    {.key = "n", .type = PARAM_INT64, .v.i = -1},
                    {.key = "t", .type = PARAM_BOOL, .v.b = true},
                    {.key = "x", .type = PARAM_DOUBLE, .v.d = 0.5},
                    {.key = "y", .type = PARAM_UINT64, .v.u = 7}};
  infer_response r = {.model_name = "net",
                      .model_version = 3,
                      .id = "abc",
                      .params = {5, params},
                      .n_outputs = sizeof o / sizeof o[0],
                      .outputs = o};
  buf b = {0};
  v2_blob blobs[9];
  size_t nb = 99;
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), 0);
  assert_int_equal(nb, 0);
  buf_putc(&b, 0);
  assert_string_equal(
      b.data,
      "{\"model_name\":\"net\",\"model_version\":\"3\",\"id\":\"abc\","
      "\"parameters\":{\"k\":\"v\",\"n\":-1,\"t\":true,\"x\":0.5,\"y\":7},\"outputs\":["
      "{\"name\":\"f\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[0.1,-2,1e-7]},"
      "{\"name\":\"i\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[-5,9007199254740993]},"
      "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]},"
      "{\"name\":\"h\",\"datatype\":\"FP16\",\"shape\":[2],\"data\":[1.5,-0.25]},"
      "{\"name\":\"g\",\"datatype\":\"BF16\",\"shape\":[1],\"data\":[3]},"
      "{\"name\":\"d\",\"datatype\":\"FP64\",\"shape\":[],\"data\":[0.1]},"
      "{\"name\":\"u\",\"datatype\":\"UINT64\",\"shape\":[1],\"data\":[18446744073709551615]},"
      "{\"name\":\"c\",\"datatype\":\"INT8\",\"shape\":[2],\"data\":[-128,127]},"
      "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[3],\"data\":[\"hi\",\"\",\"\\\"\\\\\\n\"]}"
      "]}");
  /* and it is JSON */
  const json_value *root;
  arena_reset(A);
  assert_int_equal(json_parse(A, b.data, b.len - 1, 16, &root, &E), 0);
  buf_free(&b);
}

static void encode_binary_outputs(void **state) {
  float f32[2] = {1, 2};
  const char bytes[] = "\1\0\0\0\xff";
  infer_output o[] = {
      {.t = {.name = "a",
             .dtype = INFERD_TYPE_FP32,
             .ndim = 1,
             .shape = {2},
             .data = f32,
             .byte_size = 8},
       .binary = true},
      {.t = {.name = "j",
             .dtype = INFERD_TYPE_FP32,
             .ndim = 1,
             .shape = {2},
             .data = f32,
             .byte_size = 8}},
      {.t = {.name = "s",
             .dtype = INFERD_TYPE_BYTES,
             .ndim = 1,
             .shape = {1},
             .data = (void *)bytes,
             .byte_size = 5},
       .binary = true},
  };
  infer_response r = {.model_name = "m", .model_version = 1, .n_outputs = 3, .outputs = o};
  buf b = {0};
  v2_blob blobs[3];
  size_t nb;
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), 0);
  buf_putc(&b, 0);
  assert_string_equal(b.data, "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":["
                              "{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[2],"
                              "\"parameters\":{\"binary_data_size\":8}},"
                              "{\"name\":\"j\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,2]},"
                              "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],"
                              "\"parameters\":{\"binary_data_size\":5}}]}");
  assert_int_equal(nb, 2);
  assert_ptr_equal(blobs[0].data, f32);
  assert_int_equal(blobs[0].size, 8);
  assert_ptr_equal(blobs[1].data, bytes);
  assert_int_equal(blobs[1].size, 5);
  buf_free(&b);
}

static void encode_errors(void **state) {
  const char bytes[] = "\1\0\0\0a\2\0\0\0\xc3\x28";
  infer_output o = {.t = {.name = "x",
                          .dtype = INFERD_TYPE_BYTES,
                          .ndim = 1,
                          .shape = {2},
                          .data = (void *)bytes,
                          .byte_size = 11}};
  infer_response r = {.model_name = "m", .model_version = 1, .n_outputs = 1, .outputs = &o};
  buf b = {0};
  buf_puts(&b, "keep");
  v2_blob blobs[1];
  size_t nb;
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), -EINVAL);
  assert_non_null(strstr(E.msg, "output 'x' element 1 is not UTF-8; request it with binary_data"));
  assert_int_equal(b.len, 4); /* left as it was */
  o.binary = true;            /* as binary it is fine */
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), 0);
  assert_int_equal(nb, 1);
  b.len = 4;
  o.t.byte_size = 10; /* the backend's data does not match */
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), -EIO);
  float f[2] = {0};
  o.t = (inferd_tensor){
      .name = "f", .dtype = INFERD_TYPE_FP32, .ndim = 1, .shape = {3}, .data = f, .byte_size = 8};
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), -EIO);
  assert_non_null(strstr(E.msg, "output 'f' has 8 bytes of data, not 3 elements of FP32"));
  assert_int_equal(b.len, 4);
  buf_free(&b);
}

static void error_json(void **state) {
  buf b = {0};
  v2_error_json(&b, "input 'x': bad \"thing\"\n");
  buf_putc(&b, 0);
  assert_string_equal(b.data, "{\"error\":\"input 'x': bad \\\"thing\\\"\\n\"}");
  buf_free(&b);
}

/* Decoded inputs encode back to the same values. */
static void round_trip(void **state) {
  decode_ok("{\"inputs\":[{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[2,2],"
            "\"data\":[[0.1,0.2],[1e-30,3.4028235e38]]},"
            "{\"name\":\"b\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"\\ud83d\\ude00\"]},"
            "{\"name\":\"c\",\"datatype\":\"INT16\",\"shape\":[2],\"data\":[-7,7]}]}");
  infer_output o[3];
  for (int i = 0; i < 3; i++)
    o[i] = (infer_output){.t = R.inputs[i].t};
  infer_response r = {.model_name = "m", .model_version = 1, .n_outputs = 3, .outputs = o};
  buf b = {0};
  v2_blob blobs[3];
  size_t nb;
  assert_int_equal(v2_encode_infer_response(&r, &b, blobs, &nb, &E), 0);
  buf_putc(&b, 0);
  assert_non_null(strstr(b.data, "\"data\":[0.1,0.2,1e-30,3.4028235e+38]"));
  assert_non_null(strstr(b.data, "\"data\":[\"\xf0\x9f\x98\x80\"]"));
  assert_non_null(strstr(b.data, "\"data\":[-7,7]"));
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_every_datatype),
      cmocka_unit_test(json_nested_and_flat),
      cmocka_unit_test(request_fields),
      cmocka_unit_test(many_inputs_unique),
      cmocka_unit_test(binary_every_datatype),
      cmocka_unit_test(binary_mixed_with_json),
      cmocka_unit_test(raw_requests),
      cmocka_unit_test(malformed_json),
      cmocka_unit_test(malformed_fields),
      cmocka_unit_test(malformed_data),
      cmocka_unit_test(malformed_parameters),
      cmocka_unit_test(malformed_outputs),
      cmocka_unit_test(malformed_binary),
      cmocka_unit_test(encode_json_outputs),
      cmocka_unit_test(encode_binary_outputs),
      cmocka_unit_test(encode_errors),
      cmocka_unit_test(error_json),
      cmocka_unit_test(round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
