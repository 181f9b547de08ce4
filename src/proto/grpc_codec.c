/* proto/grpc_codec.c: gRPC framing and the inference messages. */
#include "proto/grpc_codec.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/dtype.h"

/* ---- framing ---------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The length the message at the reader's start announces, checked. */
static int head_length(const grpc_reader *r, size_t *len, err *e) {
  const uint8_t *p = (const uint8_t *)r->data.data + r->start;
  if (p[0] > 1) return err_set(e, -EINVAL, "malformed gRPC message: compressed flag %u", p[0]);
  *len = be32(p + 1);
  if (*len > r->max_message)
    return err_set(e, -E2BIG, "message of %zu bytes is larger than the limit of %zu bytes", *len,
                   r->max_message);
  return 0;
}

int grpc_reader_feed(grpc_reader *r, const uint8_t *bytes, size_t len, err *e) {
  /* Consumed messages go before the buffer grows again. */
  if (r->start && r->start == r->data.len) {
    r->data.len = r->start = 0;
  } else if (r->start > (1 << 20) && r->start > r->data.len / 2) {
    memmove(r->data.data, r->data.data + r->start, r->data.len - r->start);
    r->data.len -= r->start;
    r->start = 0;
  }
  buf_append(&r->data, bytes, len);
  if (r->data.oom) return err_set(e, -ENOMEM, "out of memory reading a message");
  size_t mlen;
  if (r->data.len - r->start >= GRPC_PREFIX) return head_length(r, &mlen, e);
  return 0;
}

int grpc_reader_next(grpc_reader *r, const uint8_t **msg, size_t *len, bool *compressed) {
  size_t avail = r->data.len - r->start;
  if (avail < GRPC_PREFIX) return 0;
  size_t mlen;
  err e;
  if (head_length(r, &mlen, &e) < 0) return e.code;
  if (avail - GRPC_PREFIX < mlen) return 0;
  const uint8_t *p = (const uint8_t *)r->data.data + r->start;
  *compressed = p[0] == 1;
  *msg = p + GRPC_PREFIX;
  *len = mlen;
  r->start += GRPC_PREFIX + mlen;
  return 1;
}

bool grpc_reader_partial(const grpc_reader *r) { return r->data.len > r->start; }

void grpc_reader_free(grpc_reader *r) {
  buf_free(&r->data);
  r->start = 0;
}

int grpc_gunzip(arena *a, const uint8_t *in, size_t len, size_t max, const uint8_t **out,
                size_t *out_len, err *e) {
  z_stream zs = {0};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return err_set(e, -ENOMEM, "cannot start decompression");
  buf b = {0};
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (!buf_grow(&b, 64 << 10)) break;
    zs.next_out = (Bytef *)b.data + b.len;
    zs.avail_out = (uInt)(b.cap - b.len);
    rc = inflate(&zs, Z_NO_FLUSH);
    b.len = b.cap - zs.avail_out;
    if (b.len > max) {
      inflateEnd(&zs);
      buf_free(&b);
      return err_set(e, -E2BIG, "decompressed message is larger than the limit of %zu bytes", max);
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) break; /* truncated input */
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || zs.avail_in != 0) {
    buf_free(&b);
    return err_set(e, -EINVAL, "message is not valid gzip data");
  }
  uint8_t *copy = arena_alloc(a, b.len ? b.len : 1);
  if (copy) memcpy(copy, b.data, b.len);
  *out = copy;
  *out_len = b.len;
  buf_free(&b);
  return copy ? 0 : err_set(e, -ENOMEM, "out of memory");
}

static void *arena_pb_alloc(void *data, size_t size) { return arena_alloc(data, size ? size : 1); }
static void arena_pb_free(void *data, void *p) {}

void grpc_arena_allocator(arena *a, ProtobufCAllocator *out) {
  *out = (ProtobufCAllocator){.alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = a};
}

static void put_prefix(uint8_t *p, size_t len) {
  p[0] = 0;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
}

int grpc_pack(arena *a, const ProtobufCMessage *m, struct iovec *out, err *e) {
  size_t size = protobuf_c_message_get_packed_size(m);
  if (size > UINT32_MAX) return err_set(e, -E2BIG, "response is too large");
  uint8_t *p = arena_alloc(a, GRPC_PREFIX + size);
  if (!p) return err_set(e, -ENOMEM, "out of memory");
  put_prefix(p, size);
  protobuf_c_message_pack(m, p + GRPC_PREFIX);
  *out = (struct iovec){p, GRPC_PREFIX + size};
  return 0;
}

/* ---- parameters -------------------------------------------------------------------- */

/* InferParameter map entries (they share one layout) into a param_list. */
typedef struct pb_param_entry {
  ProtobufCMessage base;
  char *key;
  Inference__InferParameter *value;
} pb_param_entry;

_Static_assert(sizeof(pb_param_entry) == sizeof(Inference__ModelInferRequest__ParametersEntry),
               "parameter map entries share one layout");

static int decode_params(arena *a, pb_param_entry *const *entries, size_t n, param_list *out,
                         const char *where, err *e) {
  out->n = 0;
  out->items = n ? arena_calloc(a, n, sizeof *out->items) : NULL;
  if (n && !out->items) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const pb_param_entry *en = entries[i];
    if (strncmp(en->key, "triton_", 7) == 0)
      return err_set(e, -EINVAL, "%sparameter '%s' uses the reserved prefix 'triton_'", where,
                     en->key);
    param *p = &out->items[out->n++];
    p->key = en->key;
    const Inference__InferParameter *v = en->value;
    switch (v ? v->parameter_choice_case : INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE__NOT_SET) {
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM:
      p->type = PARAM_BOOL;
      p->v.b = v->bool_param;
      break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM:
      p->type = PARAM_INT64;
      p->v.i = v->int64_param;
      break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM:
      p->type = PARAM_STRING;
      p->v.s = v->string_param;
      break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM:
      p->type = PARAM_DOUBLE;
      p->v.d = v->double_param;
      break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM:
      p->type = PARAM_UINT64;
      p->v.u = v->uint64_param;
      break;
    default: return err_set(e, -EINVAL, "%sparameter '%s' has no value", where, en->key);
    }
  }
  return 0;
}

/* ---- inputs ------------------------------------------------------------------------ */

/* Typed contents into the tensor's data: the field that goes with the
 * datatype, its element count, and the narrowing conversions with range
 * checks. */
static int decode_contents(arena *a, const Inference__InferTensorContents *c, inferd_tensor *t,
                           int64_t count, err *e) {
  const char *field = NULL;
  size_t n = 0;
  size_t esize = dtype_size(t->dtype);
  void *data = NULL;
#define TAKE(fname, arr)                                                                           \
  do {                                                                                             \
    field = fname;                                                                                 \
    n = c->n_##arr;                                                                                \
  } while (0)
  switch (t->dtype) {
  case INFERD_TYPE_BOOL: TAKE("bool_contents", bool_contents); break;
  case INFERD_TYPE_INT8:
  case INFERD_TYPE_INT16:
  case INFERD_TYPE_INT32: TAKE("int_contents", int_contents); break;
  case INFERD_TYPE_INT64: TAKE("int64_contents", int64_contents); break;
  case INFERD_TYPE_UINT8:
  case INFERD_TYPE_UINT16:
  case INFERD_TYPE_UINT32: TAKE("uint_contents", uint_contents); break;
  case INFERD_TYPE_UINT64: TAKE("uint64_contents", uint64_contents); break;
  case INFERD_TYPE_FP32: TAKE("fp32_contents", fp32_contents); break;
  case INFERD_TYPE_FP64: TAKE("fp64_contents", fp64_contents); break;
  case INFERD_TYPE_BYTES: TAKE("bytes_contents", bytes_contents); break;
  default:
    return err_set(e, -EINVAL, "%s has no typed contents; send it in raw_input_contents",
                   dtype_name(t->dtype));
  }
#undef TAKE
  size_t total = c->n_bool_contents + c->n_int_contents + c->n_int64_contents + c->n_uint_contents +
                 c->n_uint64_contents + c->n_fp32_contents + c->n_fp64_contents +
                 c->n_bytes_contents;
  if (total != n)
    return err_set(e, -EINVAL, "a %s input takes its values in %s only", dtype_name(t->dtype),
                   field);
  if ((int64_t)n != count)
    return err_set(e, -EINVAL, "%s has %zu values but the shape holds %lld", field, n,
                   (long long)count);
  if (t->dtype == INFERD_TYPE_BYTES) {
    size_t size = 0;
    for (size_t i = 0; i < n; i++)
      size += 4 + c->bytes_contents[i].len;
    uint8_t *p = arena_alloc(a, size ? size : 1);
    if (!p) return err_set(e, -ENOMEM, "out of memory");
    t->data = p;
    t->byte_size = size;
    for (size_t i = 0; i < n; i++) {
      uint32_t len = (uint32_t)c->bytes_contents[i].len;
      p[0] = (uint8_t)len;
      p[1] = (uint8_t)(len >> 8);
      p[2] = (uint8_t)(len >> 16);
      p[3] = (uint8_t)(len >> 24);
      if (len) memcpy(p + 4, c->bytes_contents[i].data, len);
      p += 4 + len;
    }
    return 0;
  }
  t->byte_size = n * esize;
  /* Types whose protobuf array already is the tensor: referenced. */
  switch (t->dtype) {
  case INFERD_TYPE_INT32: data = c->int_contents; break;
  case INFERD_TYPE_INT64: data = c->int64_contents; break;
  case INFERD_TYPE_UINT32: data = c->uint_contents; break;
  case INFERD_TYPE_UINT64: data = c->uint64_contents; break;
  case INFERD_TYPE_FP32: data = c->fp32_contents; break;
  case INFERD_TYPE_FP64: data = c->fp64_contents; break;
  default: break;
  }
  if (data || n == 0) {
    t->data = data ? data : arena_alloc(a, 1);
    return t->data ? 0 : err_set(e, -ENOMEM, "out of memory");
  }
  uint8_t *out = arena_alloc(a, n * esize);
  if (!out) return err_set(e, -ENOMEM, "out of memory");
  t->data = out;
  for (size_t i = 0; i < n; i++) {
    switch (t->dtype) {
    case INFERD_TYPE_BOOL: out[i] = c->bool_contents[i] != 0; break;
    case INFERD_TYPE_INT8:
    case INFERD_TYPE_INT16: {
      int32_t v = c->int_contents[i];
      int32_t lo = t->dtype == INFERD_TYPE_INT8 ? INT8_MIN : INT16_MIN;
      int32_t hi = t->dtype == INFERD_TYPE_INT8 ? INT8_MAX : INT16_MAX;
      if (v < lo || v > hi)
        return err_set(e, -EINVAL, "value %d at element %zu is out of range for %s", v, i,
                       dtype_name(t->dtype));
      if (t->dtype == INFERD_TYPE_INT8)
        ((int8_t *)out)[i] = (int8_t)v;
      else
        ((int16_t *)out)[i] = (int16_t)v;
      break;
    }
    case INFERD_TYPE_UINT8:
    case INFERD_TYPE_UINT16: {
      uint32_t v = c->uint_contents[i];
      uint32_t hi = t->dtype == INFERD_TYPE_UINT8 ? UINT8_MAX : UINT16_MAX;
      if (v > hi)
        return err_set(e, -EINVAL, "value %u at element %zu is out of range for %s", v, i,
                       dtype_name(t->dtype));
      if (t->dtype == INFERD_TYPE_UINT8)
        out[i] = (uint8_t)v;
      else
        ((uint16_t *)out)[i] = (uint16_t)v;
      break;
    }
    default: break;
    }
  }
  return 0;
}

/* A raw blob as the tensor's data, checked against the shape. */
static int decode_raw(const ProtobufCBinaryData *raw, inferd_tensor *t, int64_t count, err *e) {
  if (t->dtype == INFERD_TYPE_BYTES) {
    int64_t n = bytes_count(raw->data, raw->len);
    if (n < 0)
      return err_set(e, -EINVAL,
                     "raw BYTES data is not a sequence of 4-byte lengths and their bytes");
    if (n != count)
      return err_set(e, -EINVAL, "raw BYTES data holds %lld elements but the shape holds %lld",
                     (long long)n, (long long)count);
  } else if ((uint64_t)count * dtype_size(t->dtype) != raw->len) {
    return err_set(e, -EINVAL, "raw data has %zu bytes but shape and %s need %llu", raw->len,
                   dtype_name(t->dtype),
                   (unsigned long long)((uint64_t)count * dtype_size(t->dtype)));
  }
  t->data = raw->data;
  t->byte_size = raw->len;
  return 0;
}

static int decode_input(arena *a, const Inference__ModelInferRequest__InferInputTensor *in,
                        const ProtobufCBinaryData *raw, infer_input *out, err *e) {
  inferd_tensor *t = &out->t;
  t->name = in->name;
  t->dtype = dtype_from_name(in->datatype, strlen(in->datatype));
  if (t->dtype == INFERD_TYPE_INVALID)
    return err_set(e, -EINVAL, "datatype '%.40s' is not a protocol datatype", in->datatype);
  if (in->n_shape > INFERD_MAX_DIMS)
    return err_set(e, -EINVAL, "shape has %zu dimensions, at most %d are supported", in->n_shape,
                   INFERD_MAX_DIMS);
  t->ndim = (int)in->n_shape;
  for (size_t d = 0; d < in->n_shape; d++) {
    if (in->shape[d] < 0) return err_set(e, -EINVAL, "shape has a negative dimension");
    t->shape[d] = in->shape[d];
  }
  int64_t count = shape_elements(t->shape, t->ndim);
  if (count < 0) return err_set(e, -EINVAL, "shape is too large");
  int rc = decode_params(a, (pb_param_entry *const *)in->parameters, in->n_parameters, &out->params,
                         "", e);
  if (rc < 0) return rc;
  out->binary = raw != NULL;
  if (raw) return decode_raw(raw, t, count, e);
  if (!in->contents)
    return err_set(e, -EINVAL, "has no contents and the request has no raw_input_contents");
  return decode_contents(a, in->contents, t, count, e);
}

int grpc_decode_infer_request(const Inference__ModelInferRequest *m, infer_request *req, err *e) {
  arena *a = req->arena;
  req->id = m->id && m->id[0] ? m->id : NULL;
  int rc = decode_params(a, (pb_param_entry *const *)m->parameters, m->n_parameters, &req->params,
                         "request ", e);
  if (rc < 0) return rc;
  if (m->n_inputs == 0) return err_set(e, -EINVAL, "the request has no inputs");
  if (m->n_raw_input_contents && m->n_raw_input_contents != m->n_inputs)
    return err_set(e, -EINVAL,
                   "the request has %zu inputs but %zu raw_input_contents: with raw contents "
                   "every input needs one",
                   m->n_inputs, m->n_raw_input_contents);
  req->inputs = arena_calloc(a, m->n_inputs, sizeof *req->inputs);
  if (!req->inputs) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < m->n_inputs; i++) {
    const Inference__ModelInferRequest__InferInputTensor *in = m->inputs[i];
    for (size_t k = 0; k < i; k++)
      if (strcmp(m->inputs[k]->name, in->name) == 0)
        return err_set(e, -EINVAL, "input '%s' is given twice", in->name);
    if (m->n_raw_input_contents && in->contents)
      return err_set(e, -EINVAL,
                     "input '%s' has typed contents while the request uses raw_input_contents; "
                     "they cannot be mixed",
                     in->name);
    rc = decode_input(a, in, m->n_raw_input_contents ? &m->raw_input_contents[i] : NULL,
                      &req->inputs[i], e);
    if (rc < 0) {
      err_prefix(e, "input '%s': ", in->name);
      return rc;
    }
    req->n_inputs++;
  }
  if (m->n_outputs) {
    req->outputs = arena_calloc(a, m->n_outputs, sizeof *req->outputs);
    if (!req->outputs) return err_set(e, -ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < m->n_outputs; i++) {
    const Inference__ModelInferRequest__InferRequestedOutputTensor *o = m->outputs[i];
    infer_output_spec *spec = &req->outputs[i];
    for (size_t k = 0; k < i; k++)
      if (strcmp(m->outputs[k]->name, o->name) == 0)
        return err_set(e, -EINVAL, "output '%s' is requested twice", o->name);
    spec->name = o->name;
    spec->binary = 1;
    char where[300];
    snprintf(where, sizeof where, "output '%.200s': ", o->name);
    rc = decode_params(a, (pb_param_entry *const *)o->parameters, o->n_parameters, &spec->params,
                       where, e);
    if (rc < 0) return rc;
    const param *cls = param_find(&spec->params, "classification");
    if (cls && (!param_int(cls, &spec->classification) || spec->classification < 1))
      return err_set(e, -EINVAL, "%sclassification must be a positive integer", where);
    req->n_outputs++;
  }
  req->binary_output = true;
  return 0;
}

/* ---- outputs --------------------------------------------------------------------- */

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* The ModelInferResponse without its raw contents, packed after `lead`
 * bytes of room; the raw_output_contents fields follow as pieces. */
static int encode(arena *a, const infer_response *r, bool stream, struct iovec **iov_out,
                  size_t *n_out, size_t *total_out, err *e) {
  Inference__ModelInferResponse m = INFERENCE__MODEL_INFER_RESPONSE__INIT;
  char version[24];
  snprintf(version, sizeof version, "%lld", (long long)r->model_version);
  m.model_name = (char *)r->model_name;
  m.model_version = version;
  m.id = (char *)(r->id ? r->id : "");
  Inference__ModelInferResponse__InferOutputTensor *outs =
      arena_calloc(a, r->n_outputs + 1, sizeof *outs);
  Inference__ModelInferResponse__InferOutputTensor **ptrs =
      arena_calloc(a, r->n_outputs + 1, sizeof *ptrs);
  struct iovec *iov = arena_calloc(a, 2 * r->n_outputs + 1, sizeof *iov);
  uint8_t *tags = arena_alloc(a, 11 * (r->n_outputs + 1));
  if (!outs || !ptrs || !iov || !tags) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < r->n_outputs; i++) {
    const inferd_tensor *t = &r->outputs[i].t;
    Inference__ModelInferResponse__InferOutputTensor init =
        INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
    outs[i] = init;
    outs[i].name = (char *)t->name;
    outs[i].datatype = (char *)dtype_name(t->dtype);
    outs[i].n_shape = (size_t)t->ndim;
    outs[i].shape = (int64_t *)t->shape;
    ptrs[i] = &outs[i];
  }
  m.n_outputs = r->n_outputs;
  m.outputs = ptrs;

  size_t inner = protobuf_c_message_get_packed_size(&m.base);
  size_t n = 1;
  uint8_t *tag = tags;
  for (size_t i = 0; i < r->n_outputs; i++) {
    size_t len = r->outputs[i].t.byte_size;
    size_t k = 0;
    tag[k++] = 0x32; /* field 6, length-delimited */
    k += put_varint(tag + k, len);
    iov[n++] = (struct iovec){tag, k};
    if (len) iov[n++] = (struct iovec){r->outputs[i].t.data, len};
    inner += k + len;
    tag += k;
  }
  /* ModelStreamInferResponse wraps it as field 2 (infer_response). */
  size_t outer = stream ? 1 + varint_size(inner) + inner : inner;
  if (outer > UINT32_MAX) return err_set(e, -E2BIG, "response of %zu bytes is too large", outer);
  size_t lead = GRPC_PREFIX + (stream ? 1 + varint_size(inner) : 0);
  size_t head = protobuf_c_message_get_packed_size(&m.base);
  uint8_t *p = arena_alloc(a, lead + head);
  if (!p) return err_set(e, -ENOMEM, "out of memory");
  put_prefix(p, outer);
  if (stream) {
    p[GRPC_PREFIX] = 0x12;
    put_varint(p + GRPC_PREFIX + 1, inner);
  }
  protobuf_c_message_pack(&m.base, p + lead);
  iov[0] = (struct iovec){p, lead + head};
  *iov_out = iov;
  *n_out = n;
  *total_out = GRPC_PREFIX + outer;
  return 0;
}

int grpc_encode_infer_response(arena *a, const infer_response *r, struct iovec **iov, size_t *n,
                               size_t *total, err *e) {
  return encode(a, r, false, iov, n, total, e);
}

int grpc_encode_stream_response(arena *a, const infer_response *r, struct iovec **iov, size_t *n,
                                size_t *total, err *e) {
  return encode(a, r, true, iov, n, total, e);
}
