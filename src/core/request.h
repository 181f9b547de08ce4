/* core/request.h: the inference request and response as the core sees them.
 *
 * Every front door (v2 JSON or binary over HTTP, gRPC, an in-process pipeline
 * step) decodes into an infer_request and encodes from an infer_response.
 * Everything a request points to lives in its arena or in the connection's
 * receive buffer (binary tensors are referenced, not copied), and dies with
 * the request. */
#ifndef INFERD_CORE_REQUEST_H
#define INFERD_CORE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "inferd/backend.h"

/* ---- parameters ---------------------------------------------------------- */

typedef enum param_type {
  PARAM_BOOL,
  PARAM_INT64,
  PARAM_UINT64,
  PARAM_DOUBLE,
  PARAM_STRING,
} param_type;

typedef struct param {
  const char *key;
  param_type type;
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
  } v;
} param;

typedef struct param_list {
  size_t n;
  param *items;
} param_list;

/* The parameter named key, or NULL. */
const param *param_find(const param_list *l, const char *key);
/* The value of an integer parameter (int64, uint64 or a double without a
 * fraction) in *out; false when the parameter is absent or not an integer. */
bool param_int(const param *p, int64_t *out);

/* ---- request ------------------------------------------------------------- */

typedef struct infer_input {
  inferd_tensor t; /* name, dtype, shape, data, byte_size */
  param_list params;
  bool binary; /* data came as a binary blob, not JSON */
} infer_input;

/* An output the client asked for by name. */
typedef struct infer_output_spec {
  const char *name;
  param_list params;
  int binary;             /* -1: not said (the request's default), 0, 1 */
  int64_t classification; /* top-k as labelled strings; 0: plain output */
} infer_output_spec;

typedef struct infer_request {
  arena *arena;
  const char *model_name;
  int64_t model_version; /* -1: the version the policy makes default */
  const char *id;        /* NULL when absent or empty */
  param_list params;
  size_t n_inputs;
  infer_input *inputs;
  size_t n_outputs; /* 0: every output of the model */
  infer_output_spec *outputs;
  bool binary_output;  /* default for outputs: request parameter binary_data_output */
  param_list metadata; /* the caller's headers (gRPC metadata), as strings */
} infer_request;

/* ---- response ------------------------------------------------------------ */

typedef struct infer_output {
  inferd_tensor t;
  bool binary; /* sent as a binary blob after the JSON header */
} infer_output;

typedef struct infer_response {
  const char *model_name;
  int64_t model_version;
  const char *id;
  param_list params;
  size_t n_outputs;
  infer_output *outputs;
} infer_response;

#endif
