/* proto/grpc_codec.h: the v2 protocol over gRPC, below the RPC layer:
 * gRPC's length-prefixed message framing (with gzip message compression),
 * protobuf-c messages allocated in a request's arena, and the conversion of
 * ModelInferRequest / ModelInferResponse to and from the core's
 * infer_request / infer_response. */
#ifndef INFERD_PROTO_GRPC_CODEC_H
#define INFERD_PROTO_GRPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <protobuf-c/protobuf-c.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/request.h"
#include "proto/inference.pb-c.h"

/* ---- framing ---------------------------------------------------------------- */

/* The 5-byte prefix of a gRPC message: compressed flag, big-endian length. */
#define GRPC_PREFIX 5

/* Splits an incoming byte stream into messages. */
typedef struct grpc_reader {
  buf data;           /* bytes not yet returned */
  size_t start;       /* where the next message begins in data */
  size_t max_message; /* larger messages are refused (-E2BIG) */
} grpc_reader;

/* Appends bytes; -E2BIG when a message announces more than max_message. */
int grpc_reader_feed(grpc_reader *r, const uint8_t *bytes, size_t len, err *e);
/* The next complete message, or 0 when there is none yet. Points into the
 * reader's buffer, valid until the next feed. */
int grpc_reader_next(grpc_reader *r, const uint8_t **msg, size_t *len, bool *compressed);
/* Whether bytes of an incomplete message are waiting. */
bool grpc_reader_partial(const grpc_reader *r);
void grpc_reader_free(grpc_reader *r);

/* Decompresses a gzip-compressed message into arena memory, refusing one
 * that inflates past max. */
int grpc_gunzip(arena *a, const uint8_t *in, size_t len, size_t max, const uint8_t **out,
                size_t *out_len, err *e);

/* A protobuf-c allocator handing out the arena's memory (free is a no-op:
 * everything goes with the arena). */
void grpc_arena_allocator(arena *a, ProtobufCAllocator *out);

/* Packs a message behind a gRPC prefix into arena memory. */
int grpc_pack(arena *a, const ProtobufCMessage *m, struct iovec *out, err *e);

/* ---- inference ----------------------------------------------------------------- */

/* Fills req (arena set) from an unpacked ModelInferRequest: model name and
 * version, id, parameters, inputs from typed contents or raw_input_contents
 * (referenced in place), requested outputs with their classification. */
int grpc_decode_infer_request(const Inference__ModelInferRequest *m, infer_request *req, err *e);

/* A ModelInferResponse as gRPC message bytes: the prefix and the packed
 * header fields in iov[0], then for each output its raw_output_contents
 * field, a small tag-and-length piece followed by the tensor's own memory
 * (not copied). *n iovecs, *total bytes in all. */
int grpc_encode_infer_response(arena *a, const infer_response *r, struct iovec **iov, size_t *n,
                               size_t *total, err *e);

/* The stream variant: ModelStreamInferResponse{infer_response} framed the
 * same way. */
int grpc_encode_stream_response(arena *a, const infer_response *r, struct iovec **iov, size_t *n,
                                size_t *total, err *e);

#endif
