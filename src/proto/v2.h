/* proto/v2.h: the KServe v2 (Open Inference Protocol) inference request and
 * response over HTTP, in JSON and with the binary tensor data extension
 * (see PROTOCOL.md sections 1 and 2).
 *
 * Decoding fills an infer_request whose every pointer is into the request's
 * arena or into the body itself: binary tensors are referenced in place when
 * their address suits their element type, so the body must live as long as
 * the request. Encoding writes the JSON of a response and lists the binary
 * blobs that follow it, pointing into the output tensors (no copy). */
#ifndef INFERD_PROTO_V2_H
#define INFERD_PROTO_V2_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/request.h"

/* Deepest nesting of an input's `data` arrays. */
#define V2_DATA_MAX_DEPTH 32
/* Deepest nesting of a request's JSON: the request object, `inputs`, an input
 * and its data arrays, with room to spare for keys the decoder ignores. */
#define V2_JSON_MAX_DEPTH 64

/* Decodes an infer request body. header_len is the value of the
 * Inference-Header-Content-Length header, or -1 when absent (the whole body
 * is then JSON); the binary blobs of inputs with parameter binary_data_size
 * follow the JSON header in the order of those inputs. The caller has set
 * req->arena, req->model_name and req->model_version; this fills the rest.
 * Returns 0, -EINVAL with a message naming the input or field, what was
 * expected and what came, or -ENOMEM. */
int v2_decode_infer_request(const char *body, size_t body_len, int64_t header_len,
                            infer_request *req, err *e);

/* Decodes a raw binary request (Inference-Header-Content-Length: 0): the
 * body is the blob of the model's one input, named input_name, of type dtype
 * and shape shape[0..ndim), where one dimension may be -1 and is then derived
 * from the body's size. */
int v2_decode_raw_request(const char *body, size_t body_len, const char *input_name,
                          inferd_dtype dtype, const int64_t *shape, int ndim, infer_request *req,
                          err *e);

/* A binary blob of a response, sent after the JSON. */
typedef struct v2_blob {
  const void *data;
  size_t size;
} v2_blob;

/* Appends the JSON of response r to json and lists in blobs (room for
 * r->n_outputs) the blobs of the outputs marked binary, in output order, with
 * their number in *n_blobs. Outputs in JSON are written flat; FP16 and BF16
 * as numbers, BYTES as strings. Returns 0; -EINVAL when a BYTES element to
 * write in JSON is not UTF-8 (the client should ask for binary data); -EIO
 * when an output's data does not match its type and shape; -ENOMEM. On error
 * json is left as it was. */
int v2_encode_infer_response(const infer_response *r, buf *json, v2_blob *blobs, size_t *n_blobs,
                             err *e);

/* Appends {"error":"<msg>"}. */
void v2_error_json(buf *out, const char *msg);

#endif
