/* proto/v2_response.c: encoding v2 infer responses: the JSON header, with
 * outputs written as flat `data` arrays or announced by binary_data_size and
 * sent as blobs after it, and the {"error": ...} body of a failed call. */
#include "proto/v2.h"

#include <string.h>

#include "core/dtype.h"
#include "core/json_write.h"

/* ---- values -------------------------------------------------------------- */

static void put_params(buf *b, const param_list *l) {
  buf_putc(b, '{');
  for (size_t i = 0; i < l->n; i++) {
    const param *p = &l->items[i];
    if (i) buf_putc(b, ',');
    json_put_cstr(b, p->key);
    buf_putc(b, ':');
    switch (p->type) {
    case PARAM_BOOL: buf_puts(b, p->v.b ? "true" : "false"); break;
    case PARAM_INT64: buf_put_i64(b, p->v.i); break;
    case PARAM_UINT64: buf_put_u64(b, p->v.u); break;
    case PARAM_DOUBLE: json_put_f64(b, p->v.d); break;
    case PARAM_STRING: json_put_cstr(b, p->v.s ? p->v.s : ""); break;
    }
  }
  buf_putc(b, '}');
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Checks that an output's data matches its type and shape: the backend
 * filled it, so a mismatch is an internal error, not the client's. */
static int check_output(const inferd_tensor *t, int64_t *elements, err *e) {
  if (t->ndim < 0 || t->ndim > INFERD_MAX_DIMS)
    return err_set(e, -EIO, "output '%s' has %d dimensions", t->name, t->ndim);
  *elements = shape_elements(t->shape, t->ndim);
  if (*elements < 0) return err_set(e, -EIO, "output '%s' has an invalid shape", t->name);
  if (t->dtype == INFERD_TYPE_BYTES) {
    if (bytes_count(t->data, t->byte_size) != *elements)
      return err_set(e, -EIO, "output '%s': BYTES data does not hold %lld elements", t->name,
                     (long long)*elements);
    return 0;
  }
  size_t es = dtype_size(t->dtype);
  if (!es) return err_set(e, -EIO, "output '%s' has an invalid datatype", t->name);
  if ((uint64_t)*elements > SIZE_MAX / es || (size_t)*elements * es != t->byte_size)
    return err_set(e, -EIO, "output '%s' has %zu bytes of data, not %lld elements of %s", t->name,
                   t->byte_size, (long long)*elements, dtype_name(t->dtype));
  return 0;
}

/* Writes the elements of t as a flat JSON array. Typed reads go through
 * memcpy: a backend's buffer need not be aligned. */
static int put_data(buf *b, const inferd_tensor *t, size_t n, err *e) {
  const unsigned char *p = t->data;
  buf_putc(b, '[');
  switch (t->dtype) {
  case INFERD_TYPE_FP32:
    for (size_t i = 0; i < n; i++) {
      float v;
      memcpy(&v, p + 4 * i, 4);
      if (i) buf_putc(b, ',');
      json_put_f32(b, v);
    }
    break;
  case INFERD_TYPE_FP64:
    for (size_t i = 0; i < n; i++) {
      double v;
      memcpy(&v, p + 8 * i, 8);
      if (i) buf_putc(b, ',');
      json_put_f64(b, v);
    }
    break;
  case INFERD_TYPE_FP16:
  case INFERD_TYPE_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      if (i) buf_putc(b, ',');
      json_put_f32(b, t->dtype == INFERD_TYPE_FP16 ? fp16_to_float(h) : bf16_to_float(h));
    }
    break;
  case INFERD_TYPE_BOOL:
    for (size_t i = 0; i < n; i++) {
      if (i) buf_putc(b, ',');
      if (p[i])
        buf_append(b, "true", 4);
      else
        buf_append(b, "false", 5);
    }
    break;
#define INT_CASE(dt, ctype, put)                                                                   \
  case dt:                                                                                         \
    for (size_t i = 0; i < n; i++) {                                                               \
      ctype v;                                                                                     \
      memcpy(&v, p + sizeof v * i, sizeof v);                                                      \
      if (i) buf_putc(b, ',');                                                                     \
      put(b, v);                                                                                   \
    }                                                                                              \
    break;
    INT_CASE(INFERD_TYPE_INT8, int8_t, buf_put_i64)
    INT_CASE(INFERD_TYPE_INT16, int16_t, buf_put_i64)
    INT_CASE(INFERD_TYPE_INT32, int32_t, buf_put_i64)
    INT_CASE(INFERD_TYPE_INT64, int64_t, buf_put_i64)
    INT_CASE(INFERD_TYPE_UINT8, uint8_t, buf_put_u64)
    INT_CASE(INFERD_TYPE_UINT16, uint16_t, buf_put_u64)
    INT_CASE(INFERD_TYPE_UINT32, uint32_t, buf_put_u64)
    INT_CASE(INFERD_TYPE_UINT64, uint64_t, buf_put_u64)
#undef INT_CASE
  case INFERD_TYPE_BYTES: {
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t len = le32(p + off);
      if (i) buf_putc(b, ',');
      if (!json_put_string(b, (const char *)p + off + 4, len))
        return err_set(e, -EINVAL,
                       "output '%s' element %zu is not UTF-8; request it with binary_data", t->name,
                       i);
      off += 4 + (size_t)len;
    }
    break;
  }
  default: return err_set(e, -EIO, "output '%s' has an invalid datatype", t->name);
  }
  buf_putc(b, ']');
  return 0;
}

/* ---- the response -------------------------------------------------------- */

int v2_encode_infer_response(const infer_response *r, buf *json, v2_blob *blobs, size_t *n_blobs,
                             err *e) {
  size_t start = json->len;
  *n_blobs = 0;
  buf_append(json, "{\"model_name\":", 14);
  json_put_cstr(json, r->model_name ? r->model_name : "");
  buf_append(json, ",\"model_version\":\"", 18);
  buf_put_i64(json, r->model_version);
  buf_putc(json, '"');
  if (r->id) {
    buf_append(json, ",\"id\":", 6);
    json_put_cstr(json, r->id);
  }
  if (r->params.n) {
    buf_append(json, ",\"parameters\":", 14);
    put_params(json, &r->params);
  }
  buf_append(json, ",\"outputs\":[", 12);
  int rc = 0;
  for (size_t i = 0; i < r->n_outputs; i++) {
    const infer_output *o = &r->outputs[i];
    const inferd_tensor *t = &o->t;
    int64_t elements = 0;
    if ((rc = check_output(t, &elements, e)) < 0) goto fail;
    if (i) buf_putc(json, ',');
    buf_append(json, "{\"name\":", 8);
    json_put_cstr(json, t->name ? t->name : "");
    buf_append(json, ",\"datatype\":\"", 13);
    buf_puts(json, dtype_name(t->dtype));
    buf_append(json, "\",\"shape\":[", 11);
    for (int d = 0; d < t->ndim; d++) {
      if (d) buf_putc(json, ',');
      buf_put_i64(json, t->shape[d]);
    }
    buf_putc(json, ']');
    if (o->binary) {
      buf_append(json, ",\"parameters\":{\"binary_data_size\":", 34);
      buf_put_u64(json, t->byte_size);
      buf_append(json, "}}", 2);
      blobs[*n_blobs].data = t->data;
      blobs[*n_blobs].size = t->byte_size;
      (*n_blobs)++;
    } else {
      buf_append(json, ",\"data\":", 8);
      if ((rc = put_data(json, t, (size_t)elements, e)) < 0) goto fail;
      buf_putc(json, '}');
    }
  }
  buf_append(json, "]}", 2);
  if (!json->oom) return 0;
  rc = err_set(e, -ENOMEM, "out of memory encoding the response");
fail:
  json->len = start;
  *n_blobs = 0;
  return rc;
}

void v2_error_json(buf *out, const char *msg) {
  buf_append(out, "{\"error\":", 9);
  json_put_cstr(out, msg);
  buf_putc(out, '}');
}
