/* proto/v2_request.c: decoding v2 infer requests (JSON, JSON with binary
 * tensors, raw binary) into infer_request.
 *
 * Every rule of the protocol that a request can break is checked here, once,
 * with a message that names the input or field, says what was expected and
 * what came: the server answers these messages to clients as they are. JSON
 * numbers decode straight into the tensor's typed buffer, so a request's
 * data is converted once. */
#include "proto/v2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "proto/json.h"

typedef struct dec {
  infer_request *req;
  arena *a;
  err *e;
} dec;

/* ---- helpers ------------------------------------------------------------- */

/* A short quotation of a JSON value for messages: a number's text, a string
 * in quotes, or the type. */
static const char *quote(const json_value *v, char *out, size_t size) {
  switch (v->type) {
  case JSON_NUMBER:
    snprintf(out, size, "%.*s%s", v->len > 40 ? 40 : (int)v->len, v->u.s, v->len > 40 ? "..." : "");
    break;
  case JSON_STRING:
    snprintf(out, size, "string \"%.*s%s\"", v->len > 40 ? 40 : (int)v->len, v->u.s,
             v->len > 40 ? "..." : "");
    break;
  case JSON_BOOL: snprintf(out, size, "%s", v->flags ? "true" : "false"); break;
  default: snprintf(out, size, "%s", json_type_name(v)); break;
  }
  return out;
}

/* A NUL-terminated copy of string v, refusing embedded NULs (the copy is a C
 * string everywhere after this). */
static int cstr(dec *d, const json_value *v, const char **out, const char *what) {
  if (memchr(v->u.s, 0, v->len)) return err_set(d->e, -EINVAL, "%s contains a NUL character", what);
  char *s = json_strdup(d->a, v);
  if (!s) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  *out = s;
  return 0;
}

/* Whether names[0..n) repeat one; *dup is the index of the second of a pair.
 * An open-addressing table keeps it linear (a request may list many). */
static int find_duplicate(arena *a, const char *const *names, size_t n, size_t *dup) {
  if (n <= 8) {
    for (size_t i = 1; i < n; i++)
      for (size_t j = 0; j < i; j++)
        if (strcmp(names[i], names[j]) == 0) {
          *dup = i;
          return 1;
        }
    return 0;
  }
  size_t cap = 16;
  while (cap < 2 * n)
    cap *= 2;
  size_t *slots = arena_calloc(a, cap, sizeof *slots); /* index + 1; 0 is empty */
  if (!slots) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)names[i]; *p; p++)
      h = (h ^ *p) * 1099511628211ULL;
    for (size_t s = (size_t)h & (cap - 1);; s = (s + 1) & (cap - 1)) {
      if (!slots[s]) {
        slots[s] = i + 1;
        break;
      }
      if (strcmp(names[slots[s] - 1], names[i]) == 0) {
        *dup = i;
        return 1;
      }
    }
  }
  return 0;
}

/* ---- parameters ---------------------------------------------------------- */

/* A number parameter keeps the most exact type: an integer as int64 (uint64
 * above INT64_MAX), anything else, or an integer past uint64, as double. */
static void number_param(const json_value *v, param *p) {
  if (json_number_i64(v, &p->v.i) == 0) {
    p->type = PARAM_INT64;
  } else if (json_number_u64(v, &p->v.u) == 0) {
    p->type = PARAM_UINT64;
  } else {
    p->type = PARAM_DOUBLE;
    p->v.d = json_number_f64(v);
  }
}

/* Decodes a `parameters` object into l; ctx names its owner in messages
 * ("request", "input 'x'"). */
static int decode_params(dec *d, const json_value *obj, param_list *l, const char *ctx) {
  if (obj->type != JSON_OBJECT)
    return err_set(d->e, -EINVAL, "%s 'parameters' must be an object, got %s", ctx,
                   json_type_name(obj));
  l->n = 0;
  l->items = NULL;
  if (!obj->len) return 0;
  param *items = arena_alloc(d->a, obj->len * sizeof *items);
  const char **keys = arena_alloc(d->a, obj->len * sizeof *keys);
  if (!items || !keys) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  for (uint32_t i = 0; i < obj->len; i++) {
    const json_value *k = &obj->u.members[i].key, *v = &obj->u.members[i].value;
    param *p = &items[i];
    int rc = cstr(d, k, &p->key, "parameter name");
    if (rc < 0) return rc;
    keys[i] = p->key;
    if (strncmp(p->key, "triton_", 7) == 0)
      return err_set(d->e, -EINVAL, "%s parameter '%s': names starting 'triton_' are reserved", ctx,
                     p->key);
    switch (v->type) {
    case JSON_BOOL:
      p->type = PARAM_BOOL;
      p->v.b = v->flags;
      break;
    case JSON_NUMBER: number_param(v, p); break;
    case JSON_STRING:
      p->type = PARAM_STRING;
      if ((rc = cstr(d, v, &p->v.s, "parameter value")) < 0) return rc;
      break;
    default:
      return err_set(d->e, -EINVAL, "%s parameter '%s' must be a string, number or bool, got %s",
                     ctx, p->key, json_type_name(v));
    }
  }
  size_t dup;
  int rc = find_duplicate(d->a, keys, obj->len, &dup);
  if (rc < 0) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  if (rc) return err_set(d->e, -EINVAL, "%s has parameter '%s' twice", ctx, keys[dup]);
  l->n = obj->len;
  l->items = items;
  return 0;
}

/* ---- JSON tensor data ---------------------------------------------------- */

typedef struct conv {
  dec *d;
  infer_input *in;
  unsigned char *out; /* typed buffer, NULL while counting */
  size_t k;           /* elements converted */
  size_t bytes;       /* BYTES: serialized size so far */
} conv;

/* Leaves of data in row-major order; arrays deeper than V2_DATA_MAX_DEPTH
 * refused. (Recursion bounded by that depth.) */
static int count_leaves(conv *c, const json_value *v, int depth, size_t *n) {
  if (v->type != JSON_ARRAY) {
    (*n)++;
    return 0;
  }
  if (depth >= V2_DATA_MAX_DEPTH)
    return err_set(c->d->e, -EINVAL, "input '%s': 'data' is nested deeper than %d arrays",
                   c->in->t.name, V2_DATA_MAX_DEPTH);
  for (uint32_t i = 0; i < v->len; i++) {
    const json_value *it = &v->u.items[i];
    if (it->type == JSON_ARRAY) {
      int rc = count_leaves(c, it, depth + 1, n);
      if (rc < 0) return rc;
    } else {
      (*n)++;
    }
  }
  return 0;
}

static int bad_element(conv *c, size_t k, const char *expected, const json_value *v) {
  char q[64];
  return err_set(c->d->e, -EINVAL, "input '%s': expected %s for %s at element %zu, got %s",
                 c->in->t.name, expected, dtype_name(c->in->t.dtype), k, quote(v, q, sizeof q));
}

static int out_of_range(conv *c, size_t k, const json_value *v) {
  char q[64];
  return err_set(c->d->e, -EINVAL, "input '%s': value %s out of range for %s at element %zu",
                 c->in->t.name, quote(v, q, sizeof q), dtype_name(c->in->t.dtype), k);
}

/* An integer element within [lo, hi] (or any uint64 for UINT64). */
static int int_element(conv *c, const json_value *v, int64_t lo, int64_t hi, int64_t *out) {
  if (v->type != JSON_NUMBER) return bad_element(c, c->k, "an integer", v);
  int rc = json_number_i64(v, out);
  if (rc == -ERANGE || (rc == 0 && (*out < lo || *out > hi))) return out_of_range(c, c->k, v);
  if (rc < 0) return bad_element(c, c->k, "an integer", v);
  return 0;
}

#define INT_RUN(ctype, lo, hi)                                                                     \
  do {                                                                                             \
    ctype *o = (ctype *)c->out + c->k;                                                             \
    for (size_t i = 0; i < n; i++, c->k++) {                                                       \
      int64_t x;                                                                                   \
      int rc = int_element(c, &items[i], lo, hi, &x);                                              \
      if (rc < 0) return rc;                                                                       \
      o[i] = (ctype)x;                                                                             \
    }                                                                                              \
  } while (0)

/* Converts a run of n leaves into the typed buffer. For BYTES, a first pass
 * (out NULL) adds up the sizes. */
static int convert_run(conv *c, const json_value *items, size_t n) {
  switch (c->in->t.dtype) {
  case INFERD_TYPE_FP32: {
    float *o = (float *)c->out + c->k;
    for (size_t i = 0; i < n; i++) {
      if (items[i].type != JSON_NUMBER) return bad_element(c, c->k + i, "a number", &items[i]);
      o[i] = json_number_f32(&items[i]);
    }
    c->k += n;
    return 0;
  }
  case INFERD_TYPE_FP64: {
    double *o = (double *)c->out + c->k;
    for (size_t i = 0; i < n; i++) {
      if (items[i].type != JSON_NUMBER) return bad_element(c, c->k + i, "a number", &items[i]);
      o[i] = json_number_f64(&items[i]);
    }
    c->k += n;
    return 0;
  }
  case INFERD_TYPE_BOOL: {
    uint8_t *o = c->out + c->k;
    for (size_t i = 0; i < n; i++) {
      if (items[i].type != JSON_BOOL) return bad_element(c, c->k + i, "true or false", &items[i]);
      o[i] = items[i].flags;
    }
    c->k += n;
    return 0;
  }
  case INFERD_TYPE_INT8: INT_RUN(int8_t, INT8_MIN, INT8_MAX); return 0;
  case INFERD_TYPE_INT16: INT_RUN(int16_t, INT16_MIN, INT16_MAX); return 0;
  case INFERD_TYPE_INT32: INT_RUN(int32_t, INT32_MIN, INT32_MAX); return 0;
  case INFERD_TYPE_INT64: INT_RUN(int64_t, INT64_MIN, INT64_MAX); return 0;
  case INFERD_TYPE_UINT8: INT_RUN(uint8_t, 0, UINT8_MAX); return 0;
  case INFERD_TYPE_UINT16: INT_RUN(uint16_t, 0, UINT16_MAX); return 0;
  case INFERD_TYPE_UINT32: INT_RUN(uint32_t, 0, UINT32_MAX); return 0;
  case INFERD_TYPE_UINT64: {
    uint64_t *o = (uint64_t *)c->out + c->k;
    for (size_t i = 0; i < n; i++, c->k++) {
      const json_value *v = &items[i];
      if (v->type != JSON_NUMBER) return bad_element(c, c->k, "an integer", v);
      int rc = json_number_u64(v, &o[i]);
      if (rc == -ERANGE) return out_of_range(c, c->k, v);
      if (rc < 0) return bad_element(c, c->k, "an integer", v);
    }
    return 0;
  }
  case INFERD_TYPE_BYTES:
    for (size_t i = 0; i < n; i++, c->k++) {
      const json_value *v = &items[i];
      if (v->type != JSON_STRING) return bad_element(c, c->k, "a string", v);
      if (c->out) {
        uint32_t len = v->len;
        unsigned char *o = c->out + c->bytes;
        o[0] = (unsigned char)len;
        o[1] = (unsigned char)(len >> 8);
        o[2] = (unsigned char)(len >> 16);
        o[3] = (unsigned char)(len >> 24);
        memcpy(o + 4, v->u.s, len);
      }
      c->bytes += 4 + (size_t)v->len;
    }
    return 0;
  default: /* refused before */ return err_set(c->d->e, -EINVAL, "unexpected datatype");
  }
}

/* Walks data in row-major order, converting each run of leaves. */
static int convert_leaves(conv *c, const json_value *v) {
  if (v->type != JSON_ARRAY) return convert_run(c, v, 1);
  uint32_t i = 0;
  while (i < v->len) {
    uint32_t j = i;
    while (j < v->len && v->u.items[j].type != JSON_ARRAY)
      j++;
    if (j > i) {
      int rc = convert_run(c, v->u.items + i, j - i);
      if (rc < 0) return rc;
    }
    if (j < v->len) {
      int rc = convert_leaves(c, &v->u.items[j]);
      if (rc < 0) return rc;
      j++;
    }
    i = j;
  }
  return 0;
}

static int decode_json_data(dec *d, infer_input *in, const json_value *data, int64_t elements) {
  inferd_tensor *t = &in->t;
  if (t->dtype == INFERD_TYPE_FP16 || t->dtype == INFERD_TYPE_BF16)
    return err_set(d->e, -EINVAL, "input '%s': %s data must be sent as binary (binary_data_size)",
                   t->name, dtype_name(t->dtype));
  conv c = {.d = d, .in = in};
  size_t n = 0;
  int rc = count_leaves(&c, data, 0, &n);
  if (rc < 0) return rc;
  if ((int64_t)n != elements) {
    char shape[128];
    shape_format(shape, sizeof shape, t->shape, t->ndim);
    return err_set(d->e, -EINVAL, "input '%s': 'data' has %zu elements but shape %s needs %lld",
                   t->name, n, shape, (long long)elements);
  }
  size_t size;
  if (t->dtype == INFERD_TYPE_BYTES) {
    if ((rc = convert_leaves(&c, data)) < 0) return rc; /* sizes and type checks */
    size = c.bytes;
    c.k = 0;
    c.bytes = 0;
  } else {
    size = n * dtype_size(t->dtype);
  }
  c.out = arena_alloc_aligned(d->a, size, 64);
  if (!c.out) return err_set(d->e, -ENOMEM, "out of memory for input '%s'", t->name);
  if ((rc = convert_leaves(&c, data)) < 0) return rc;
  t->data = c.out;
  t->byte_size = size;
  return 0;
}

/* ---- inputs and outputs -------------------------------------------------- */

/* Decodes input i (everything but binary data, which comes after all the
 * inputs); *binary_size is its binary_data_size or -1. */
static int decode_input(dec *d, const json_value *v, size_t i, infer_input *in,
                        int64_t *binary_size) {
  if (v->type != JSON_OBJECT)
    return err_set(d->e, -EINVAL, "input %zu must be an object, got %s", i, json_type_name(v));
  const json_value *name = NULL, *shape = NULL, *datatype = NULL, *params = NULL, *data = NULL;
  for (uint32_t m = 0; m < v->len; m++) {
    const json_value *k = &v->u.members[m].key, **slot = NULL;
    if (json_eq(k, "name"))
      slot = &name;
    else if (json_eq(k, "shape"))
      slot = &shape;
    else if (json_eq(k, "datatype"))
      slot = &datatype;
    else if (json_eq(k, "parameters"))
      slot = &params;
    else if (json_eq(k, "data"))
      slot = &data;
    if (!slot) continue;
    if (*slot)
      return err_set(d->e, -EINVAL, "input %zu has key '%.*s' twice", i, (int)k->len, k->u.s);
    *slot = &v->u.members[m].value;
  }
  if (!name) return err_set(d->e, -EINVAL, "input %zu has no 'name'", i);
  if (name->type != JSON_STRING)
    return err_set(d->e, -EINVAL, "input %zu: 'name' must be a string, got %s", i,
                   json_type_name(name));
  int rc = cstr(d, name, &in->t.name, "input name");
  if (rc < 0) return rc;
  inferd_tensor *t = &in->t;

  if (!shape) return err_set(d->e, -EINVAL, "input '%s' has no 'shape'", t->name);
  if (shape->type != JSON_ARRAY)
    return err_set(d->e, -EINVAL, "input '%s': 'shape' must be an array of integers, got %s",
                   t->name, json_type_name(shape));
  if (shape->len > INFERD_MAX_DIMS)
    return err_set(d->e, -EINVAL, "input '%s': shape has %u dimensions, more than %d", t->name,
                   shape->len, INFERD_MAX_DIMS);
  t->ndim = (int)shape->len;
  for (uint32_t k = 0; k < shape->len; k++) {
    const json_value *dim = &shape->u.items[k];
    if (dim->type != JSON_NUMBER || json_number_i64(dim, &t->shape[k]) < 0 || t->shape[k] < 0) {
      char q[64];
      return err_set(d->e, -EINVAL,
                     "input '%s': shape dimension %u must be a non-negative integer, got %s",
                     t->name, k, quote(dim, q, sizeof q));
    }
  }
  int64_t elements = shape_elements(t->shape, t->ndim);
  if (elements < 0)
    return err_set(d->e, -EINVAL, "input '%s': the shape's element count overflows", t->name);

  if (!datatype) return err_set(d->e, -EINVAL, "input '%s' has no 'datatype'", t->name);
  if (datatype->type != JSON_STRING)
    return err_set(d->e, -EINVAL, "input '%s': 'datatype' must be a string, got %s", t->name,
                   json_type_name(datatype));
  t->dtype = dtype_from_name(datatype->u.s, datatype->len);
  if (t->dtype == INFERD_TYPE_INVALID) {
    char q[64];
    return err_set(d->e, -EINVAL,
                   "input '%s': datatype %s is not one of BOOL, UINT8, UINT16, UINT32, UINT64, "
                   "INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES",
                   t->name, quote(datatype, q, sizeof q));
  }

  if (params) {
    char ctx[300];
    snprintf(ctx, sizeof ctx, "input '%s'", t->name);
    if ((rc = decode_params(d, params, &in->params, ctx)) < 0) return rc;
  }
  const param *bds = param_find(&in->params, "binary_data_size");
  *binary_size = -1;
  if (bds) {
    if (!param_int(bds, binary_size) || bds->type == PARAM_DOUBLE || *binary_size < 0)
      return err_set(d->e, -EINVAL,
                     "input '%s': parameter 'binary_data_size' must be a non-negative integer",
                     t->name);
    if (data)
      return err_set(d->e, -EINVAL,
                     "input '%s' has both 'data' and parameter 'binary_data_size': send one",
                     t->name);
    in->binary = true;
    return 0;
  }
  if (!data)
    return err_set(d->e, -EINVAL, "input '%s' has neither 'data' nor parameter 'binary_data_size'",
                   t->name);
  return decode_json_data(d, in, data, elements);
}

/* Alignment a typed view of dtype needs. BYTES is read byte by byte. */
static size_t dtype_align(inferd_dtype t) {
  size_t s = dtype_size(t);
  return s ? s : 1;
}

/* Points t at a blob: in place when aligned for its type, else an aligned
 * copy (a misaligned typed access is undefined behaviour). */
static int attach_blob(dec *d, inferd_tensor *t, const char *blob, size_t size) {
  if (((uintptr_t)blob & (dtype_align(t->dtype) - 1)) == 0) {
    t->data = (void *)(uintptr_t)blob;
  } else {
    void *copy = arena_alloc_aligned(d->a, size, 64);
    if (!copy) return err_set(d->e, -ENOMEM, "out of memory for input '%s'", t->name);
    memcpy(copy, blob, size);
    t->data = copy;
  }
  t->byte_size = size;
  return 0;
}

/* Checks that a blob holds exactly the tensor's elements. */
static int check_blob(dec *d, const inferd_tensor *t, const char *blob, size_t size) {
  int64_t elements = shape_elements(t->shape, t->ndim);
  char shape[128];
  if (t->dtype == INFERD_TYPE_BYTES) {
    int64_t n = bytes_count(blob, size);
    if (n < 0)
      return err_set(d->e, -EINVAL,
                     "input '%s': BYTES binary data of %zu bytes is not a whole sequence of "
                     "length-prefixed elements",
                     t->name, size);
    if (n != elements) {
      shape_format(shape, sizeof shape, t->shape, t->ndim);
      return err_set(d->e, -EINVAL,
                     "input '%s': BYTES binary data holds %lld elements but shape %s needs %lld",
                     t->name, (long long)n, shape, (long long)elements);
    }
    return 0;
  }
  size_t es = dtype_size(t->dtype);
  if ((uint64_t)elements > SIZE_MAX / es || (size_t)elements * es != size) {
    shape_format(shape, sizeof shape, t->shape, t->ndim);
    return err_set(
        d->e, -EINVAL, "input '%s': binary_data_size is %zu bytes but shape %s of %s needs %llu",
        t->name, size, shape, dtype_name(t->dtype), (unsigned long long)((uint64_t)elements * es));
  }
  return 0;
}

static int decode_output(dec *d, const json_value *v, size_t i, infer_output_spec *o) {
  if (v->type != JSON_OBJECT)
    return err_set(d->e, -EINVAL, "output %zu must be an object, got %s", i, json_type_name(v));
  const json_value *name = NULL, *params = NULL;
  for (uint32_t m = 0; m < v->len; m++) {
    const json_value *k = &v->u.members[m].key, **slot = NULL;
    if (json_eq(k, "name"))
      slot = &name;
    else if (json_eq(k, "parameters"))
      slot = &params;
    if (!slot) continue;
    if (*slot)
      return err_set(d->e, -EINVAL, "output %zu has key '%.*s' twice", i, (int)k->len, k->u.s);
    *slot = &v->u.members[m].value;
  }
  if (!name) return err_set(d->e, -EINVAL, "output %zu has no 'name'", i);
  if (name->type != JSON_STRING)
    return err_set(d->e, -EINVAL, "output %zu: 'name' must be a string, got %s", i,
                   json_type_name(name));
  int rc = cstr(d, name, &o->name, "output name");
  if (rc < 0) return rc;
  o->binary = -1;
  o->classification = 0;
  if (!params) return 0;
  char ctx[300];
  snprintf(ctx, sizeof ctx, "output '%s'", o->name);
  if ((rc = decode_params(d, params, &o->params, ctx)) < 0) return rc;
  const param *p = param_find(&o->params, "binary_data");
  if (p) {
    if (p->type != PARAM_BOOL)
      return err_set(d->e, -EINVAL, "output '%s': parameter 'binary_data' must be a bool", o->name);
    o->binary = p->v.b;
  }
  p = param_find(&o->params, "classification");
  if (p) {
    if (p->type != PARAM_INT64 || p->v.i <= 0)
      return err_set(d->e, -EINVAL,
                     "output '%s': parameter 'classification' must be a positive integer", o->name);
    o->classification = p->v.i;
  }
  return 0;
}

/* ---- the request --------------------------------------------------------- */

static int decode_inputs(dec *d, const json_value *inputs, const char *bin, size_t bin_len,
                         bool has_header) {
  infer_request *req = d->req;
  if (inputs->type != JSON_ARRAY)
    return err_set(d->e, -EINVAL, "'inputs' must be an array, got %s", json_type_name(inputs));
  if (!inputs->len) return err_set(d->e, -EINVAL, "'inputs' is empty: a request needs an input");
  size_t n = inputs->len;
  req->inputs = arena_calloc(d->a, n, sizeof *req->inputs);
  int64_t *sizes = arena_alloc(d->a, n * sizeof *sizes);
  const char **names = arena_alloc(d->a, n * sizeof *names);
  if (!req->inputs || !sizes || !names)
    return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  req->n_inputs = n;
  uint64_t declared = 0;
  bool overflow = false;
  for (size_t i = 0; i < n; i++) {
    int rc = decode_input(d, &inputs->u.items[i], i, &req->inputs[i], &sizes[i]);
    if (rc < 0) return rc;
    names[i] = req->inputs[i].t.name;
    if (sizes[i] >= 0) {
      if (declared + (uint64_t)sizes[i] < declared) overflow = true;
      declared += (uint64_t)sizes[i];
    }
  }
  size_t dup;
  int rc = find_duplicate(d->a, names, n, &dup);
  if (rc < 0) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  if (rc) return err_set(d->e, -EINVAL, "input '%s' appears twice", names[dup]);

  if (overflow || declared != bin_len)
    return err_set(d->e, -EINVAL, "binary data is %zu bytes but inputs declare %s%llu%s", bin_len,
                   overflow ? "more than " : "",
                   (unsigned long long)(overflow ? UINT64_MAX : declared),
                   has_header ? "" : " (no Inference-Header-Content-Length: the body is JSON)");
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    if (sizes[i] < 0) continue;
    inferd_tensor *t = &req->inputs[i].t;
    size_t size = (size_t)sizes[i];
    if ((rc = check_blob(d, t, bin + off, size)) < 0) return rc;
    if ((rc = attach_blob(d, t, bin + off, size)) < 0) return rc;
    off += size;
  }
  return 0;
}

static int decode_outputs(dec *d, const json_value *outputs) {
  infer_request *req = d->req;
  if (outputs->type != JSON_ARRAY)
    return err_set(d->e, -EINVAL, "'outputs' must be an array, got %s", json_type_name(outputs));
  size_t n = outputs->len;
  if (!n) return 0;
  req->outputs = arena_calloc(d->a, n, sizeof *req->outputs);
  const char **names = arena_alloc(d->a, n * sizeof *names);
  if (!req->outputs || !names) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  req->n_outputs = n;
  for (size_t i = 0; i < n; i++) {
    int rc = decode_output(d, &outputs->u.items[i], i, &req->outputs[i]);
    if (rc < 0) return rc;
    names[i] = req->outputs[i].name;
  }
  size_t dup;
  int rc = find_duplicate(d->a, names, n, &dup);
  if (rc < 0) return err_set(d->e, -ENOMEM, "out of memory decoding the request");
  if (rc) return err_set(d->e, -EINVAL, "output '%s' appears twice", names[dup]);
  return 0;
}

int v2_decode_infer_request(const char *body, size_t body_len, int64_t header_len,
                            infer_request *req, err *e) {
  dec d = {.req = req, .a = req->arena, .e = e};
  req->id = NULL;
  req->params = (param_list){0};
  req->n_inputs = 0;
  req->inputs = NULL;
  req->n_outputs = 0;
  req->outputs = NULL;
  req->binary_output = false;

  if (header_len < -1)
    return err_set(e, -EINVAL, "Inference-Header-Content-Length %lld is negative",
                   (long long)header_len);
  if (header_len == 0)
    return err_set(e, -EINVAL,
                   "Inference-Header-Content-Length is 0: the JSON header is empty (a raw binary "
                   "request has no JSON)");
  if (header_len > 0 && (uint64_t)header_len > body_len)
    return err_set(e, -EINVAL,
                   "Inference-Header-Content-Length %lld is larger than the body (%zu bytes)",
                   (long long)header_len, body_len);
  size_t json_len = header_len < 0 ? body_len : (size_t)header_len;

  const json_value *root;
  int rc = json_parse(d.a, body, json_len, V2_JSON_MAX_DEPTH, &root, e);
  if (rc < 0) return rc;
  if (root->type != JSON_OBJECT)
    return err_set(e, -EINVAL, "the request must be a JSON object, got %s", json_type_name(root));

  const json_value *id = NULL, *params = NULL, *inputs = NULL, *outputs = NULL;
  for (uint32_t m = 0; m < root->len; m++) {
    const json_value *k = &root->u.members[m].key, **slot = NULL;
    if (json_eq(k, "id"))
      slot = &id;
    else if (json_eq(k, "parameters"))
      slot = &params;
    else if (json_eq(k, "inputs"))
      slot = &inputs;
    else if (json_eq(k, "outputs"))
      slot = &outputs;
    if (!slot) continue; /* unknown keys are ignored, as Triton does */
    if (*slot) return err_set(e, -EINVAL, "the request has key '%.*s' twice", (int)k->len, k->u.s);
    *slot = &root->u.members[m].value;
  }

  if (id) {
    if (id->type != JSON_STRING)
      return err_set(e, -EINVAL, "'id' must be a string, got %s", json_type_name(id));
    if (id->len && (rc = cstr(&d, id, &req->id, "'id'")) < 0) return rc;
  }
  if (params) {
    if ((rc = decode_params(&d, params, &req->params, "request")) < 0) return rc;
    const param *p = param_find(&req->params, "binary_data_output");
    if (p) {
      if (p->type != PARAM_BOOL)
        return err_set(e, -EINVAL, "request parameter 'binary_data_output' must be a bool");
      req->binary_output = p->v.b;
    }
  }
  if (!inputs) return err_set(e, -EINVAL, "the request has no 'inputs'");
  if ((rc = decode_inputs(&d, inputs, body + json_len, body_len - json_len, header_len >= 0)) < 0)
    return rc;
  if (outputs && (rc = decode_outputs(&d, outputs)) < 0) return rc;
  return 0;
}

/* ---- raw binary ---------------------------------------------------------- */

int v2_decode_raw_request(const char *body, size_t body_len, const char *input_name,
                          inferd_dtype dtype, const int64_t *shape, int ndim, infer_request *req,
                          err *e) {
  dec d = {.req = req, .a = req->arena, .e = e};
  req->id = NULL;
  req->params = (param_list){0};
  req->n_outputs = 0;
  req->outputs = NULL;
  req->binary_output = false;
  req->n_inputs = 0;
  if (dtype_size(dtype) == 0 && dtype != INFERD_TYPE_BYTES)
    return err_set(e, -EINVAL, "input '%s': invalid datatype for a raw binary request", input_name);
  if (ndim < 0 || ndim > INFERD_MAX_DIMS)
    return err_set(e, -EINVAL, "input '%s': shape has %d dimensions, more than %d", input_name,
                   ndim, INFERD_MAX_DIMS);
  infer_input *in = arena_calloc(d.a, 1, sizeof *in);
  char *name = arena_strdup(d.a, input_name);
  if (!in || !name) return err_set(e, -ENOMEM, "out of memory decoding the request");
  inferd_tensor *t = &in->t;
  t->name = name;
  t->dtype = dtype;
  t->ndim = ndim;
  int wild = -1;
  int64_t known = 1; /* product of the other dimensions */
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    if (shape[i] == -1 && wild < 0) {
      wild = i;
      continue;
    }
    if (shape[i] < 0)
      return err_set(e, -EINVAL,
                     "input '%s': shape may hold one -1 and otherwise non-negative dimensions",
                     input_name);
    if (shape[i] && known > INT64_MAX / shape[i])
      return err_set(e, -EINVAL, "input '%s': the shape's element count overflows", input_name);
    known *= shape[i];
  }
  int64_t count;
  if (dtype == INFERD_TYPE_BYTES) {
    count = bytes_count(body, body_len);
    if (count < 0)
      return err_set(e, -EINVAL,
                     "input '%s': BYTES body of %zu bytes is not a whole sequence of "
                     "length-prefixed elements",
                     input_name, body_len);
  } else {
    size_t es = dtype_size(dtype);
    if (body_len % es)
      return err_set(e, -EINVAL, "input '%s': body of %zu bytes is not a whole number of %s",
                     input_name, body_len, dtype_name(dtype));
    count = (int64_t)(body_len / es);
  }
  char shp[128];
  if (wild >= 0) {
    if (known == 0 ? count != 0 : count % known != 0) {
      shape_format(shp, sizeof shp, shape, ndim);
      return err_set(e, -EINVAL, "input '%s': %lld elements do not fit shape %s", input_name,
                     (long long)count, shp);
    }
    t->shape[wild] = known ? count / known : 0;
  } else if (count != known) {
    shape_format(shp, sizeof shp, shape, ndim);
    return err_set(e, -EINVAL, "input '%s': body holds %lld elements but shape %s needs %lld",
                   input_name, (long long)count, shp, (long long)known);
  }
  int rc = attach_blob(&d, t, body, body_len);
  if (rc < 0) return rc;
  in->binary = true;
  req->inputs = in;
  req->n_inputs = 1;
  return 0;
}
