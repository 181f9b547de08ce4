/* core/validate.c: checks a request against the model configuration. */
#include "core/validate.h"

#include <stdio.h>
#include <string.h>

#include "core/dtype.h"

/* "a, b, c": the names of a list of tensors, for messages. */
static void list_names(const config_tensor *t, size_t n, char *out, size_t size) {
  size_t len = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && len < size; i++) {
    int w = snprintf(out + len, size - len, "%s'%s'", i ? ", " : "", t[i].name);
    if (w < 0) break;
    len += (size_t)w;
  }
}

static const config_tensor *find(const config_tensor *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) return &t[i];
  return NULL;
}

/* The shape a configuration allows, for messages: [-1,64] with the batch. */
static void expected_shape(const config_tensor *ct, int max_batch, char *out, size_t size) {
  int64_t dims[INFERD_MAX_DIMS + 1];
  int n = 0;
  if (max_batch > 0) dims[n++] = -1;
  for (int i = 0; i < ct->ndim; i++)
    dims[n++] = ct->dims[i];
  shape_format(out, size, dims, n);
}

/* The shape error, with the shape that came and the one expected. */
static int shape_error(const model_config *c, const config_tensor *ct, const infer_input *in,
                       err *e) {
  char got[128], want[128];
  shape_format(got, sizeof got, in->t.shape, in->t.ndim);
  expected_shape(ct, c->max_batch_size, want, sizeof want);
  bool batch_missing = c->max_batch_size > 0 && in->t.ndim == ct->ndim;
  return err_set(e, -EINVAL, "input '%s' has shape %s, expected %s%s", in->t.name, got, want,
                 batch_missing ? " (the first dimension is the batch)" : "");
}

static int check_input(const model_config *c, const infer_input *in, int64_t *batch, err *e) {
  const config_tensor *ct = find(c->inputs, c->n_inputs, in->t.name);
  if (!ct) {
    char names[256];
    list_names(c->inputs, c->n_inputs, names, sizeof names);
    return err_set(e, -EINVAL, "unexpected input '%s' for model '%s'; its inputs are: %s",
                   in->t.name, c->name, names);
  }
  if (in->t.dtype != ct->dtype)
    return err_set(e, -EINVAL, "input '%s' has datatype %s, expected %s", in->t.name,
                   dtype_name(in->t.dtype), dtype_name(ct->dtype));
  int off = c->max_batch_size > 0 ? 1 : 0;
  if (in->t.ndim != ct->ndim + off) return shape_error(c, ct, in, e);
  if (off) {
    int64_t b = in->t.shape[0];
    if (b < 1 || b > c->max_batch_size)
      return err_set(e, -EINVAL, "input '%s' has batch size %lld, the model accepts 1 to %d",
                     in->t.name, (long long)b, c->max_batch_size);
    if (*batch >= 0 && *batch != b)
      return err_set(e, -EINVAL, "input '%s' has batch size %lld but another input has %lld",
                     in->t.name, (long long)b, (long long)*batch);
    *batch = b;
  }
  for (int i = 0; i < ct->ndim; i++)
    if (ct->dims[i] >= 0 && in->t.shape[i + off] != ct->dims[i]) return shape_error(c, ct, in, e);
  return 0;
}

int validate_request(const model_config *c, const infer_request *req, err *e) {
  int64_t batch = -1;
  for (size_t i = 0; i < req->n_inputs; i++) {
    int rc = check_input(c, &req->inputs[i], &batch, e);
    if (rc < 0) return rc;
  }
  for (size_t i = 0; i < c->n_inputs; i++) {
    if (c->inputs[i].optional) continue;
    bool present = false;
    for (size_t k = 0; k < req->n_inputs && !present; k++)
      present = strcmp(req->inputs[k].t.name, c->inputs[i].name) == 0;
    if (!present)
      return err_set(e, -EINVAL, "input '%s' is missing (model '%s' expects %zu input%s)",
                     c->inputs[i].name, c->name, c->n_inputs, c->n_inputs == 1 ? "" : "s");
  }
  for (size_t i = 0; i < req->n_outputs; i++) {
    const infer_output_spec *o = &req->outputs[i];
    const config_tensor *ct = find(c->outputs, c->n_outputs, o->name);
    if (!ct) {
      char names[256];
      list_names(c->outputs, c->n_outputs, names, sizeof names);
      return err_set(e, -EINVAL, "unknown output '%s' requested; model '%s' has: %s", o->name,
                     c->name, names);
    }
    if (o->classification > 0 && (ct->dtype == INFERD_TYPE_BYTES || ct->dtype == INFERD_TYPE_BOOL))
      return err_set(e, -EINVAL, "output '%s' is %s: classification needs a numeric output",
                     o->name, dtype_name(ct->dtype));
  }
  return 0;
}
