/* server/classify.c: top-k classification of numeric outputs. */
#include "server/classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"

/* Element i of a numeric tensor, as a double. */
static double value_at(const inferd_tensor *t, int64_t i) {
  const void *p = t->data;
  switch (t->dtype) {
  case INFERD_TYPE_UINT8: return ((const uint8_t *)p)[i];
  case INFERD_TYPE_UINT16: return ((const uint16_t *)p)[i];
  case INFERD_TYPE_UINT32: return ((const uint32_t *)p)[i];
  case INFERD_TYPE_UINT64: return (double)((const uint64_t *)p)[i];
  case INFERD_TYPE_INT8: return ((const int8_t *)p)[i];
  case INFERD_TYPE_INT16: return ((const int16_t *)p)[i];
  case INFERD_TYPE_INT32: return ((const int32_t *)p)[i];
  case INFERD_TYPE_INT64: return (double)((const int64_t *)p)[i];
  case INFERD_TYPE_FP16: return fp16_to_float(((const uint16_t *)p)[i]);
  case INFERD_TYPE_BF16: return bf16_to_float(((const uint16_t *)p)[i]);
  case INFERD_TYPE_FP32: return ((const float *)p)[i];
  case INFERD_TYPE_FP64: return ((const double *)p)[i];
  default: return 0;
  }
}

typedef struct scored {
  double value;
  int64_t index;
} scored;

/* Largest value first; equal values by index, so the answer is stable. */
static int by_value_desc(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->value != y->value) return x->value < y->value ? 1 : -1;
  return (x->index > y->index) - (x->index < y->index);
}

static int classify(const model_version *mv, size_t out_index, int64_t k, arena *a, infer_output *o,
                    err *e) {
  const inferd_tensor *t = &o->t;
  int64_t elements = shape_elements(t->shape, t->ndim);
  bool batched = mv->model->config->max_batch_size > 0 && t->ndim >= 1;
  int64_t rows = batched ? t->shape[0] : 1;
  int64_t per_row = rows ? elements / rows : 0;
  if (k > per_row) k = per_row;
  char **labels = mv->labels ? mv->labels[out_index] : NULL;
  size_t n_labels = mv->n_labels ? mv->n_labels[out_index] : 0;

  scored *s = malloc((size_t)(per_row ? per_row : 1) * sizeof *s);
  buf b = {0};
  if (!s) return err_set(e, -ENOMEM, "out of memory");
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t i = 0; i < per_row; i++)
      s[i] = (scored){value_at(t, r * per_row + i), i};
    qsort(s, (size_t)per_row, sizeof *s, by_value_desc);
    for (int64_t i = 0; i < k; i++) {
      char text[512];
      int n;
      if (labels && (size_t)s[i].index < n_labels)
        n = snprintf(text, sizeof text, "%f:%lld:%s", s[i].value, (long long)s[i].index,
                     labels[s[i].index]);
      else
        n = snprintf(text, sizeof text, "%f:%lld", s[i].value, (long long)s[i].index);
      if (n < 0) n = 0;
      if ((size_t)n >= sizeof text) n = sizeof text - 1;
      uint32_t len = (uint32_t)n;
      unsigned char le[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};
      buf_append(&b, le, 4);
      buf_append(&b, text, (size_t)n);
    }
  }
  free(s);
  if (b.oom) {
    buf_free(&b);
    return err_set(e, -ENOMEM, "out of memory");
  }
  void *data = arena_alloc(a, b.len ? b.len : 1);
  if (!data) {
    buf_free(&b);
    return err_set(e, -ENOMEM, "out of memory");
  }
  memcpy(data, b.data, b.len);
  o->t.data = data;
  o->t.byte_size = b.len;
  buf_free(&b);
  o->t.dtype = INFERD_TYPE_BYTES;
  o->t.ndim = 0;
  if (batched) o->t.shape[o->t.ndim++] = rows;
  o->t.shape[o->t.ndim++] = k;
  return 0;
}

int classify_outputs(const model_version *mv, const infer_request *req, infer_response *res,
                     err *e) {
  const model_config *c = mv->model->config;
  for (size_t i = 0; i < req->n_outputs; i++) {
    int64_t k = req->outputs[i].classification;
    if (k <= 0) continue;
    infer_output *o = NULL;
    for (size_t j = 0; j < res->n_outputs && !o; j++)
      if (strcmp(res->outputs[j].t.name, req->outputs[i].name) == 0) o = &res->outputs[j];
    size_t idx = 0;
    while (idx < c->n_outputs && strcmp(c->outputs[idx].name, req->outputs[i].name) != 0)
      idx++;
    if (!o || idx == c->n_outputs) continue;
    int rc = classify(mv, idx, k, req->arena, o, e);
    if (rc < 0) return rc;
  }
  return 0;
}
