/* fuzz/fuzz_grpc.c: libFuzzer driver for the gRPC decoding path: the bytes
 * of an HTTP/2 request body split into gRPC messages (fed in two pieces),
 * each decompressed when flagged, unpacked as a ModelInferRequest and turned
 * into an infer_request; what decodes is encoded back as a response (its
 * inputs as outputs), which must unpack again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/grpc_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  arena *a = arena_create(1 << 16);
  if (!a) return 0;
  grpc_reader r = {.max_message = 1 << 20};
  err e = {0};
  size_t half = size / 2;
  int rc = grpc_reader_feed(&r, data, half, &e);
  if (rc == 0) rc = grpc_reader_feed(&r, data + half, size - half, &e);
  const uint8_t *msg;
  size_t len;
  bool compressed;
  while (rc == 0 && grpc_reader_next(&r, &msg, &len, &compressed) > 0) {
    if (compressed && grpc_gunzip(a, msg, len, 1 << 20, &msg, &len, &e) < 0) continue;
    ProtobufCAllocator alloc;
    grpc_arena_allocator(a, &alloc);
    Inference__ModelInferRequest *m = inference__model_infer_request__unpack(&alloc, len, msg);
    if (!m) continue;
    infer_request req = {.arena = a};
    if (grpc_decode_infer_request(m, &req, &e) < 0) {
      if (!e.msg[0]) abort(); /* every error says why */
      continue;
    }
    infer_output *outs = arena_calloc(a, req.n_inputs + 1, sizeof *outs);
    if (!outs) break;
    for (size_t i = 0; i < req.n_inputs; i++)
      outs[i].t = req.inputs[i].t;
    infer_response res = {.model_name = "m",
                          .model_version = 1,
                          .id = req.id,
                          .n_outputs = req.n_inputs,
                          .outputs = outs};
    struct iovec *iov;
    size_t n, total;
    if (grpc_encode_infer_response(a, &res, &iov, &n, &total, &e) < 0) continue;
    uint8_t *flat = malloc(total);
    if (!flat) break;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
      memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
      off += iov[i].iov_len;
    }
    if (off != total) abort();
    Inference__ModelInferResponse *back =
        inference__model_infer_response__unpack(NULL, total - GRPC_PREFIX, flat + GRPC_PREFIX);
    if (!back || back->n_raw_output_contents != req.n_inputs) abort();
    inference__model_infer_response__free_unpacked(back, NULL);
    free(flat);
  }
  grpc_reader_free(&r);
  arena_destroy(a);
  return 0;
}
