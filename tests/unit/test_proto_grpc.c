/* Unit tests for proto/grpc_codec: message framing, gzip, and the
 * ModelInferRequest / ModelInferResponse conversions, with malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "proto/grpc_codec.h"

static void framing_across_feeds(void **state) {
  grpc_reader r = {.max_message = 100};
  err e = {0};
  const uint8_t two[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'z'};
  /* a byte at a time: messages appear exactly when complete */
  int seen = 0;
  for (size_t i = 0; i < sizeof two; i++) {
    assert_int_equal(grpc_reader_feed(&r, two + i, 1, &e), 0);
    const uint8_t *m;
    size_t len;
    bool comp;
    while (grpc_reader_next(&r, &m, &len, &comp) > 0) {
      if (seen == 0) {
        assert_int_equal(len, 3);
        assert_memory_equal(m, "abc", 3);
      } else if (seen == 1) {
        assert_int_equal(len, 0);
      } else {
        assert_int_equal(len, 1);
        assert_true(comp);
      }
      seen++;
    }
  }
  assert_int_equal(seen, 3);
  assert_false(grpc_reader_partial(&r));
  grpc_reader_free(&r);
}

static void framing_errors(void **state) {
  grpc_reader r = {.max_message = 10};
  err e = {0};
  const uint8_t big[] = {0, 0, 0, 0, 11};
  assert_int_equal(grpc_reader_feed(&r, big, sizeof big, &e), -E2BIG);
  assert_non_null(strstr(e.msg, "larger than the limit of 10"));
  grpc_reader_free(&r);
  grpc_reader r2 = {.max_message = 10};
  const uint8_t flag[] = {2, 0, 0, 0, 1, 'x'};
  assert_int_equal(grpc_reader_feed(&r2, flag, sizeof flag, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "compressed flag 2"));
  grpc_reader_free(&r2);
  grpc_reader r3 = {.max_message = 10};
  const uint8_t partial[] = {0, 0, 0, 0, 5, 'a'};
  assert_int_equal(grpc_reader_feed(&r3, partial, sizeof partial, &e), 0);
  const uint8_t *m;
  size_t len;
  bool comp;
  assert_int_equal(grpc_reader_next(&r3, &m, &len, &comp), 0);
  assert_true(grpc_reader_partial(&r3));
  grpc_reader_free(&r3);
}

static void gunzip(void **state) {
  arena *a = arena_create(4096);
  const char text[] = "hello hello hello hello";
  uint8_t packed[128];
  z_stream zs = {0};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = (Bytef *)text;
  zs.avail_in = sizeof text;
  zs.next_out = packed;
  zs.avail_out = sizeof packed;
  deflate(&zs, Z_FINISH);
  size_t plen = sizeof packed - zs.avail_out;
  deflateEnd(&zs);
  const uint8_t *out;
  size_t olen;
  err e = {0};
  assert_int_equal(grpc_gunzip(a, packed, plen, 1000, &out, &olen, &e), 0);
  assert_int_equal(olen, sizeof text);
  assert_memory_equal(out, text, sizeof text);
  assert_int_equal(grpc_gunzip(a, packed, plen, 10, &out, &olen, &e), -E2BIG);
  assert_int_equal(grpc_gunzip(a, packed, plen - 4, 1000, &out, &olen, &e), -EINVAL);
  assert_int_equal(grpc_gunzip(a, (const uint8_t *)"nope", 4, 1000, &out, &olen, &e), -EINVAL);
  arena_destroy(a);
}

/* ---- requests ------------------------------------------------------------ */

typedef struct fixture {
  arena *a;
  Inference__ModelInferRequest m;
  Inference__ModelInferRequest__InferInputTensor in[2], *inp[2];
  Inference__InferTensorContents contents[2];
  int64_t shape[2][2];
  ProtobufCBinaryData raw[2];
  infer_request req;
  err e;
} fixture;

static void make(fixture *f) {
  Inference__ModelInferRequest m = INFERENCE__MODEL_INFER_REQUEST__INIT;
  Inference__ModelInferRequest__InferInputTensor t =
      INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
  Inference__InferTensorContents c = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
  f->a = arena_create(4096);
  f->m = m;
  for (int i = 0; i < 2; i++) {
    f->in[i] = t;
    f->contents[i] = c;
    f->inp[i] = &f->in[i];
    f->in[i].shape = f->shape[i];
  }
  f->m.inputs = f->inp;
  memset(&f->req, 0, sizeof f->req);
  f->req.arena = f->a;
  memset(&f->e, 0, sizeof f->e);
}

static int decode(fixture *f) { return grpc_decode_infer_request(&f->m, &f->req, &f->e); }

static void expect_error(fixture *f, const char *needle) {
  assert_int_equal(decode(f), -EINVAL);
  if (!strstr(f->e.msg, needle)) fail_msg("message '%s' lacks '%s'", f->e.msg, needle);
  arena_destroy(f->a);
}

static void typed_and_raw_inputs(void **state) {
  fixture f;
  make(&f);
  int32_t vals[3] = {1, -2, 3};
  f.in[0].name = "a";
  f.in[0].datatype = "INT8";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 3;
  f.contents[0].n_int_contents = 3;
  f.contents[0].int_contents = vals;
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  f.m.id = "req";
  assert_int_equal(decode(&f), 0);
  assert_string_equal(f.req.id, "req");
  const int8_t *d = f.req.inputs[0].t.data;
  assert_int_equal(d[1], -2);
  assert_int_equal(f.req.inputs[0].t.byte_size, 3);
  arena_destroy(f.a);

  make(&f);
  float fl[2] = {1.5f, 2.5f};
  f.in[0].name = "x";
  f.in[0].datatype = "FP32";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 2;
  f.raw[0] = (ProtobufCBinaryData){sizeof fl, (uint8_t *)fl};
  f.m.n_raw_input_contents = 1;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 1;
  assert_int_equal(decode(&f), 0);
  assert_ptr_equal(f.req.inputs[0].t.data, fl); /* referenced, not copied */
  assert_true(f.req.inputs[0].binary);
  arena_destroy(f.a);
}

static void malformed_requests(void **state) {
  fixture f;
  int32_t big[1] = {300};
  float fl[2] = {0};

  make(&f);
  expect_error(&f, "no inputs");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "INT9";
  f.m.n_inputs = 1;
  expect_error(&f, "INT9");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "INT8";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 1;
  f.contents[0].n_int_contents = 1;
  f.contents[0].int_contents = big;
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  expect_error(&f, "300");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 3;
  f.contents[0].n_fp32_contents = 2;
  f.contents[0].fp32_contents = fl;
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  expect_error(&f, "has 2 values but the shape holds 3");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 1;
  f.contents[0].n_int_contents = 1;
  f.contents[0].int_contents = big;
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  expect_error(&f, "fp32_contents only");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP16";
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  expect_error(&f, "raw_input_contents");

  make(&f);
  f.in[0].name = f.in[1].name = "a";
  f.in[0].datatype = f.in[1].datatype = "FP32";
  f.in[0].n_shape = f.in[1].n_shape = 1; /* [0]: no elements, no bytes */
  f.shape[0][0] = f.shape[1][0] = 0;
  f.raw[0] = f.raw[1] = (ProtobufCBinaryData){0, NULL};
  f.m.n_raw_input_contents = 2;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 2;
  expect_error(&f, "given twice");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 2;
  f.raw[0] = (ProtobufCBinaryData){7, (uint8_t *)fl};
  f.m.n_raw_input_contents = 1;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 1;
  expect_error(&f, "7 bytes");

  make(&f);
  f.in[0].name = "s";
  f.in[0].datatype = "BYTES";
  f.in[0].n_shape = 1;
  f.shape[0][0] = 1;
  f.raw[0] = (ProtobufCBinaryData){6, (uint8_t *)"\x09\0\0\0ab"};
  f.m.n_raw_input_contents = 1;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 1;
  expect_error(&f, "4-byte lengths");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[1].name = "b";
  f.in[1].datatype = "FP32";
  f.raw[0] = (ProtobufCBinaryData){0, NULL};
  f.m.n_raw_input_contents = 1;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 2;
  expect_error(&f, "2 inputs but 1 raw_input_contents");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[0].contents = &f.contents[0];
  f.raw[0] = (ProtobufCBinaryData){0, NULL};
  f.m.n_raw_input_contents = 1;
  f.m.raw_input_contents = f.raw;
  f.m.n_inputs = 1;
  expect_error(&f, "cannot be mixed");

  make(&f);
  f.in[0].name = "a";
  f.in[0].datatype = "FP32";
  f.in[0].n_shape = 1;
  f.shape[0][0] = -1;
  f.in[0].contents = &f.contents[0];
  f.m.n_inputs = 1;
  expect_error(&f, "negative");
}

static void response_round_trip(void **state) {
  arena *a = arena_create(4096);
  float data[3] = {1, 2, 3};
  infer_output out = {.t = {.name = "y",
                            .dtype = INFERD_TYPE_FP32,
                            .ndim = 1,
                            .shape = {3},
                            .data = data,
                            .byte_size = sizeof data}};
  infer_response r = {
      .model_name = "m", .model_version = 4, .id = "q", .n_outputs = 1, .outputs = &out};
  struct iovec *iov;
  size_t n, total;
  err e = {0};
  for (int stream = 0; stream < 2; stream++) {
    int rc = stream ? grpc_encode_stream_response(a, &r, &iov, &n, &total, &e)
                    : grpc_encode_infer_response(a, &r, &iov, &n, &total, &e);
    assert_int_equal(rc, 0);
    uint8_t flat[512];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
      memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
      off += iov[i].iov_len;
    }
    assert_int_equal(off, total);
    assert_int_equal(flat[0], 0);
    uint32_t len = (uint32_t)flat[1] << 24 | flat[2] << 16 | flat[3] << 8 | flat[4];
    assert_int_equal(len, total - GRPC_PREFIX);
    const Inference__ModelInferResponse *m;
    Inference__ModelStreamInferResponse *s = NULL;
    Inference__ModelInferResponse *plain = NULL;
    if (stream) {
      s = inference__model_stream_infer_response__unpack(NULL, len, flat + 5);
      assert_non_null(s);
      m = s->infer_response;
    } else {
      plain = inference__model_infer_response__unpack(NULL, len, flat + 5);
      m = plain;
    }
    assert_non_null(m);
    assert_string_equal(m->model_name, "m");
    assert_string_equal(m->model_version, "4");
    assert_string_equal(m->id, "q");
    assert_int_equal(m->n_outputs, 1);
    assert_string_equal(m->outputs[0]->datatype, "FP32");
    assert_int_equal(m->outputs[0]->shape[0], 3);
    assert_int_equal(m->n_raw_output_contents, 1);
    assert_memory_equal(m->raw_output_contents[0].data, data, sizeof data);
    /* the tensor is referenced, not copied */
    bool referenced = false;
    for (size_t i = 0; i < n; i++)
      referenced |= iov[i].iov_base == (void *)data;
    assert_true(referenced);
    if (s) inference__model_stream_infer_response__free_unpacked(s, NULL);
    if (plain) inference__model_infer_response__free_unpacked(plain, NULL);
  }
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(framing_across_feeds),
      cmocka_unit_test(framing_errors),
      cmocka_unit_test(gunzip),
      cmocka_unit_test(typed_and_raw_inputs),
      cmocka_unit_test(malformed_requests),
      cmocka_unit_test(response_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
