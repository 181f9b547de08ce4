/* fuzz/fuzz_v2_binary.c: libFuzzer driver for v2 requests with binary tensor
 * data, and for raw binary requests.
 *
 * The first two bytes of the input choose the Inference-Header-Content-Length
 * (0xffff: absent; anything else taken modulo the body's length plus two, so
 * that lengths past the body are tried too); the rest is the body. What
 * decodes is encoded back and checked by the oracle of fuzz_v2_json.c. The
 * body is also decoded as a raw request of a datatype chosen by the first
 * byte, with a derived dimension. */
#define FUZZ_V2_NO_ENTRY
#include "fuzz_v2_json.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  unsigned sel = (unsigned)data[0] | (unsigned)data[1] << 8;
  /* a copy of exactly the body's size, so the body ends where ASan looks */
  size_t len = size - 2;
  char *body = malloc(len ? len : 1);
  CHECK(body);
  memcpy(body, data + 2, len);
  int64_t header_len = sel == 0xffff ? -1 : (int64_t)(sel % (len + 2));

  arena *a = fuzz_arena();
  infer_request req = {.arena = a, .model_name = "m", .model_version = 1};
  err e = {0};
  int rc = v2_decode_infer_request(body, len, header_len, &req, &e);
  if (rc == 0) {
    CHECK(header_len != 0);
    for (size_t i = 0; i < req.n_inputs; i++) {
      const inferd_tensor *t = &req.inputs[i].t;
      size_t es = dtype_size(t->dtype);
      if (es > 1) CHECK((uintptr_t)t->data % es == 0); /* aligned for its type */
      if (req.inputs[i].binary && t->dtype == INFERD_TYPE_BYTES)
        CHECK(bytes_count(t->data, t->byte_size) == shape_elements(t->shape, t->ndim));
    }
    reencode(&req, a);
  } else {
    check_error(rc, &e);
  }

  arena_reset(a);
  infer_request raw = {.arena = a, .model_name = "m", .model_version = 1};
  inferd_dtype dtype = (inferd_dtype)(1 + data[0] % INFERD_TYPE_BF16);
  int64_t shape[2] = {data[1] % 4, -1};
  rc = v2_decode_raw_request(body, len, "in", dtype, shape, 2, &raw, &e);
  if (rc == 0) {
    const inferd_tensor *t = &raw.inputs[0].t;
    CHECK(raw.n_inputs == 1 && t->byte_size == len);
    size_t es = dtype_size(dtype);
    if (es)
      CHECK((uintptr_t)t->data % es == 0 &&
            t->shape[0] * t->shape[1] * (int64_t)es == (int64_t)len);
    reencode(&raw, a);
  } else {
    check_error(rc, &e);
  }
  free(body);
  return 0;
}
