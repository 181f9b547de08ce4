/* fuzz/fuzz_v2_json.c: libFuzzer driver for the v2 JSON request decoder and
 * the response encoder.
 *
 * The input is a whole JSON-only body (no Inference-Header-Content-Length).
 * Whatever decodes is encoded back as a response, its inputs as outputs
 * (every other one as a binary blob), and the oracle checks that the JSON
 * written parses and that every number read back equals the tensor's value,
 * bit for bit. The body is libFuzzer's own buffer of exactly its size, so a
 * read past it is caught by AddressSanitizer. fuzz_v2_binary.c includes this
 * file for the oracle, with FUZZ_V2_NO_ENTRY set. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "proto/json.h"
#include "proto/v2.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* The JSON value of element k of t equals the tensor's element. */
static void check_element(const inferd_tensor *t, const json_value *v, size_t k) {
  const unsigned char *p = t->data;
  switch (t->dtype) {
  case INFERD_TYPE_FP32: {
    float want, got = json_number_f32(v);
    memcpy(&want, p + 4 * k, 4);
    CHECK(v->type == JSON_NUMBER);
    CHECK(isnan(want) ? isnan(got) : memcmp(&want, &got, 4) == 0);
    break;
  }
  case INFERD_TYPE_FP64: {
    double want, got = json_number_f64(v);
    memcpy(&want, p + 8 * k, 8);
    CHECK(v->type == JSON_NUMBER);
    CHECK(isnan(want) ? isnan(got) : memcmp(&want, &got, 8) == 0);
    break;
  }
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16: {
    uint16_t h;
    memcpy(&h, p + 2 * k, 2);
    float want = t->dtype == INFERD_TYPE_FP16 ? fp16_to_float(h) : bf16_to_float(h);
    float got = json_number_f32(v);
    CHECK(isnan(want) ? isnan(got) : memcmp(&want, &got, 4) == 0);
    break;
  }
  case INFERD_TYPE_BOOL: CHECK(v->type == JSON_BOOL && v->flags == (p[k] != 0)); break;
  case INFERD_TYPE_UINT64: {
    uint64_t want, got;
    memcpy(&want, p + 8 * k, 8);
    CHECK(json_number_u64(v, &got) == 0 && got == want);
    break;
  }
  case INFERD_TYPE_BYTES: CHECK(v->type == JSON_STRING); break;
  default: {
    int64_t got, want;
    CHECK(json_number_i64(v, &got) == 0);
    switch (t->dtype) {
    case INFERD_TYPE_INT8: want = ((const int8_t *)p)[k]; break;
    case INFERD_TYPE_UINT8: want = p[k]; break;
    case INFERD_TYPE_INT16: {
      int16_t x;
      memcpy(&x, p + 2 * k, 2);
      want = x;
      break;
    }
    case INFERD_TYPE_UINT16: {
      uint16_t x;
      memcpy(&x, p + 2 * k, 2);
      want = x;
      break;
    }
    case INFERD_TYPE_INT32: {
      int32_t x;
      memcpy(&x, p + 4 * k, 4);
      want = x;
      break;
    }
    case INFERD_TYPE_UINT32: {
      uint32_t x;
      memcpy(&x, p + 4 * k, 4);
      want = x;
      break;
    }
    default: memcpy(&want, p + 8 * k, 8); break; /* INT64 */
    }
    CHECK(got == want);
  }
  }
}

/* Encodes the decoded request's inputs as a response and checks it. */
static void reencode(const infer_request *req, arena *a) {
  infer_output *outs = arena_calloc(a, req->n_inputs, sizeof *outs);
  v2_blob *blobs = arena_calloc(a, req->n_inputs, sizeof *blobs);
  CHECK(outs && blobs);
  for (size_t i = 0; i < req->n_inputs; i++) {
    outs[i].t = req->inputs[i].t;
    outs[i].binary = i % 2 == 1;
  }
  infer_response r = {.model_name = req->model_name,
                      .model_version = req->model_version,
                      .id = req->id,
                      .params = req->params,
                      .n_outputs = req->n_inputs,
                      .outputs = outs};
  buf json = {0};
  size_t n_blobs;
  err e;
  int rc = v2_encode_infer_response(&r, &json, blobs, &n_blobs, &e);
  if (rc == -EINVAL) { /* only a BYTES element that is not UTF-8, sent as JSON */
    bool has_bytes = false;
    for (size_t i = 0; i < req->n_inputs; i += 2)
      has_bytes |= req->inputs[i].t.dtype == INFERD_TYPE_BYTES;
    CHECK(has_bytes && strstr(e.msg, "is not UTF-8"));
    CHECK(json.len == 0);
    buf_free(&json);
    return;
  }
  CHECK(rc == 0);
  CHECK(n_blobs == req->n_inputs / 2);
  const json_value *root;
  CHECK(json_parse(a, json.data, json.len, 8, &root, &e) == 0);
  const json_value *outputs = json_get(root, "outputs");
  CHECK(outputs && outputs->type == JSON_ARRAY && outputs->len == req->n_inputs);
  for (size_t i = 0; i < req->n_inputs; i++) {
    const inferd_tensor *t = &req->inputs[i].t;
    const json_value *o = &outputs->u.items[i];
    const json_value *name = json_get(o, "name");
    CHECK(name && name->len == strlen(t->name) && memcmp(name->u.s, t->name, name->len) == 0);
    const json_value *shape = json_get(o, "shape");
    CHECK(shape && shape->len == (uint32_t)t->ndim);
    if (i % 2) {
      const json_value *size = json_get(json_get(o, "parameters"), "binary_data_size");
      uint64_t n;
      CHECK(size && json_number_u64(size, &n) == 0 && n == t->byte_size);
      CHECK(blobs[i / 2].data == t->data && blobs[i / 2].size == t->byte_size);
      continue;
    }
    const json_value *data = json_get(o, "data");
    int64_t elements = shape_elements(t->shape, t->ndim);
    CHECK(data && data->type == JSON_ARRAY && (int64_t)data->len == elements);
    for (uint32_t k = 0; k < data->len; k++)
      check_element(t, &data->u.items[k], k);
  }
  buf_free(&json);
}

/* A decode error is a bad request with a message, or out of memory. */
static void check_error(int rc, const err *e) {
  CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -E2BIG);
  CHECK(e->code == rc && e->msg[0]);
}

static arena *fuzz_arena(void) {
  static arena *a;
  if (!a) a = arena_create(1 << 16);
  CHECK(a);
  arena_reset(a);
  return a;
}

#ifndef FUZZ_V2_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  arena *a = fuzz_arena();
  infer_request req = {.arena = a, .model_name = "m", .model_version = 1};
  err e = {0};
  int rc = v2_decode_infer_request((const char *)data, size, -1, &req, &e);
  if (rc == 0)
    reencode(&req, a);
  else
    check_error(rc, &e);
  return 0;
}
#endif
