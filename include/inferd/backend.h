/* inferd/backend.h: the one C interface between inferd and every backend.
 *
 * Built-in backends (onnx) and a user's shared library loaded with dlopen from
 * --backend-directory implement the same table of functions. A shared library
 * exports one symbol, `inferd_backend_entry`, returning a pointer to a static
 * `inferd_backend` whose `api_version` is INFERD_BACKEND_API_VERSION. inferd
 * refuses a table with another version.
 *
 * Lifetime:
 *   model_load      once per model version, on the loading thread;
 *   instance_create once per instance (instance_group count), after model_load;
 *   execute         many times, never concurrently on one instance, possibly
 *                   concurrently on different instances of the same model;
 *   instance_destroy / model_unload when the model is unloaded, after every
 *                   execute in flight has returned.
 *
 * Errors are negative errno values: -EINVAL (the request is wrong, HTTP 400),
 * -ENOENT (404), -EAGAIN (503), -ENOTSUP (501); anything else is 500. A
 * function that fails writes a message into the buffer it was given.
 *
 * The interface is plain data plus function pointers: a backend never calls
 * back into inferd's symbols, so it links against nothing of inferd's. */
#ifndef INFERD_BACKEND_H
#define INFERD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define INFERD_BACKEND_API_VERSION  1
#define INFERD_BACKEND_ENTRY_SYMBOL "inferd_backend_entry"

/* Most dimensions a tensor may have, the batch dimension included. */
#define INFERD_MAX_DIMS 8

/* Element types. The numbers are those of Triton's DataType enum (and of the
 * gRPC protocol), so that they convert without a table. */
typedef enum inferd_dtype {
  INFERD_TYPE_INVALID = 0,
  INFERD_TYPE_BOOL = 1,
  INFERD_TYPE_UINT8 = 2,
  INFERD_TYPE_UINT16 = 3,
  INFERD_TYPE_UINT32 = 4,
  INFERD_TYPE_UINT64 = 5,
  INFERD_TYPE_INT8 = 6,
  INFERD_TYPE_INT16 = 7,
  INFERD_TYPE_INT32 = 8,
  INFERD_TYPE_INT64 = 9,
  INFERD_TYPE_FP16 = 10,
  INFERD_TYPE_FP32 = 11,
  INFERD_TYPE_FP64 = 12,
  INFERD_TYPE_BYTES = 13, /* config TYPE_STRING */
  INFERD_TYPE_BF16 = 14,
} inferd_dtype;

/* The declared form of a model input or output. `dims` excludes the batch
 * dimension when the model's max_batch_size > 0; -1 marks a variable
 * dimension. */
typedef struct inferd_tensor_desc {
  const char *name;
  inferd_dtype dtype;
  int ndim;
  int64_t dims[INFERD_MAX_DIMS];
} inferd_tensor_desc;

/* A tensor with data. Numeric data is little-endian, row-major, without
 * padding; BOOL is one byte per element. BYTES data is the elements one after
 * the other, each a 4-byte little-endian length followed by its bytes (the
 * protocol's binary encoding), and `byte_size` is that whole length. */
typedef struct inferd_tensor {
  const char *name;
  inferd_dtype dtype;
  int ndim;
  int64_t shape[INFERD_MAX_DIMS];
  void *data;
  size_t byte_size;
} inferd_tensor;

/* A `parameters { key: "..." value: { string_value: "..." } }` entry of the
 * model configuration. */
typedef struct inferd_param {
  const char *key;
  const char *value;
} inferd_param;

/* What a backend is told about the model it loads. Inputs and outputs are as
 * the model sees them (after any `reshape` of the configuration); they are
 * empty when the configuration does not list them, and the backend then
 * reports them through model_io. Everything here outlives the model. */
typedef struct inferd_model_desc {
  const char *name;
  int64_t version;
  const char *version_dir; /* the numbered version folder */
  const char *model_path;  /* version_dir + default_model_filename */
  int max_batch_size;      /* 0: requests carry no batch dimension */
  size_t n_inputs;
  const inferd_tensor_desc *inputs;
  size_t n_outputs;
  const inferd_tensor_desc *outputs;
  size_t n_params;
  const inferd_param *params;
} inferd_model_desc;

/* One call of execute: a request, or several requests that inferd merged
 * along the batch dimension.
 *
 * inferd sets: batch_size (0 when the model has no batch dimension),
 * inputs (in the order of the model's inputs, shapes include the batch
 * dimension; an `optional` input the request left out has data NULL,
 * ndim 0 and byte_size 0), outputs[i].name and .dtype (in the order of the
 * model's outputs), output_wanted, alloc.
 * The backend sets for every wanted output: ndim, shape, data (from alloc, or
 * memory the model owns for its whole life), byte_size. */
typedef struct inferd_exec {
  int batch_size;
  size_t n_inputs;
  const inferd_tensor *inputs;
  size_t n_outputs;
  inferd_tensor *outputs;
  const bool *output_wanted;
  /* Memory that lives until the response has been written; 64-byte aligned.
   * NULL when out of memory. */
  void *(*alloc)(struct inferd_exec *exec, size_t bytes);
  void *host; /* inferd's own; a backend leaves it alone */
  char *error;
  size_t error_size;
} inferd_exec;

typedef struct inferd_backend {
  uint32_t api_version; /* INFERD_BACKEND_API_VERSION */
  const char *name;     /* the `backend:` name of the model configuration */

  /* Loads the model of `desc`. On success stores the backend's model state
   * in *model and returns 0. */
  int (*model_load)(const inferd_model_desc *desc, void **model, char *err, size_t err_size);

  /* Optional. Reports the inputs and outputs the model file declares (batch
   * dimension included, -1 where variable), so that a configuration without
   * them can be completed. The arrays belong to the model. */
  int (*model_io)(void *model, size_t *n_inputs, const inferd_tensor_desc **inputs,
                  size_t *n_outputs, const inferd_tensor_desc **outputs);

  /* Bytes of memory the model holds (weights and per-instance state). */
  size_t (*model_memory)(void *model);

  void (*model_unload)(void *model);

  int (*instance_create)(void *model, int index, void **instance, char *err, size_t err_size);
  void (*instance_destroy)(void *instance);

  /* Runs one batch on one instance. Returns 0, or a negative errno with a
   * message in exec->error. */
  int (*execute)(void *instance, inferd_exec *exec);
} inferd_backend;

typedef const inferd_backend *(*inferd_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
