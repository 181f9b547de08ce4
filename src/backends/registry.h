/* backends/registry.h: finds the backend a model names: a built-in one, or
 * a user's shared library loaded with dlopen from the backend directory
 * (<dir>/<name>/libinferd_<name>.so or <dir>/libinferd_<name>.so), whose
 * entry point must return a table of INFERD_BACKEND_API_VERSION. */
#ifndef INFERD_BACKENDS_REGISTRY_H
#define INFERD_BACKENDS_REGISTRY_H

#include "core/err.h"
#include "inferd/backend.h"

/* Where user backends are looked for (NULL: built-in backends only). */
void backend_registry_init(const char *backend_dir);
/* Unloads the shared libraries (after every model is unloaded). */
void backend_registry_shutdown(void);

/* The backend called `name` ("onnxruntime" is the built-in "onnx"), loaded
 * on first use; NULL with a message when there is none. Thread-safe. */
const inferd_backend *backend_find(const char *name, err *e);

#endif
