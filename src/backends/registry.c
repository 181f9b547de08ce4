/* backends/registry.c: built-in backends and dlopen'ed ones, by name. */
#include "backends/registry.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/onnx/onnx_backend.h"
#include "core/log.h"

#define MAX_LOADED 64

typedef struct loaded {
  char name[64];
  void *handle;
  const inferd_backend *table;
} loaded;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *backend_dir;
static loaded libs[MAX_LOADED];
static int n_libs;

void backend_registry_init(const char *dir) {
  free(backend_dir);
  backend_dir = dir ? strdup(dir) : NULL;
}

void backend_registry_shutdown(void) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < n_libs; i++)
    dlclose(libs[i].handle);
  n_libs = 0;
  pthread_mutex_unlock(&lock);
  free(backend_dir);
  backend_dir = NULL;
}

/* A backend name is a plain identifier: it becomes part of a file path. */
static bool valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= sizeof libs[0].name) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

static const inferd_backend *load_library(const char *name, err *e) {
  if (!backend_dir) {
    err_set(e, -ENOENT, "no backend named '%s' (built-in: onnx; no --backend-directory given)",
            name);
    return NULL;
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s/libinferd_%s.so", backend_dir, name, name);
  if (access(path, F_OK) != 0) snprintf(path, sizeof path, "%s/libinferd_%s.so", backend_dir, name);
  if (access(path, F_OK) != 0) {
    err_set(e, -ENOENT, "no backend named '%s': neither %s/%s/libinferd_%s.so nor %s exists", name,
            backend_dir, name, name, path);
    return NULL;
  }
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    err_set(e, -EINVAL, "backend '%s': %s", name, dlerror());
    return NULL;
  }
  inferd_backend_entry_fn entry;
  *(void **)&entry = dlsym(h, INFERD_BACKEND_ENTRY_SYMBOL);
  const inferd_backend *t = entry ? entry() : NULL;
  if (!t) {
    err_set(e, -EINVAL, "backend '%s': %s does not export %s", name, path,
            INFERD_BACKEND_ENTRY_SYMBOL);
  } else if (t->api_version != INFERD_BACKEND_API_VERSION) {
    err_set(e, -EINVAL, "backend '%s': API version %u, this server speaks %d", name, t->api_version,
            INFERD_BACKEND_API_VERSION);
    t = NULL;
  } else if (!t->model_load || !t->model_unload || !t->instance_create || !t->instance_destroy ||
             !t->execute) {
    err_set(e, -EINVAL, "backend '%s': its table lacks a required function", name);
    t = NULL;
  }
  if (!t) {
    dlclose(h);
    return NULL;
  }
  if (n_libs == MAX_LOADED) {
    dlclose(h);
    err_set(e, -ENOSPC, "too many backend libraries");
    return NULL;
  }
  loaded *l = &libs[n_libs++];
  snprintf(l->name, sizeof l->name, "%s", name);
  l->handle = h;
  l->table = t;
  log_info("loaded backend '%s' from %s", name, path);
  return t;
}

const inferd_backend *backend_find(const char *name, err *e) {
  if (strcmp(name, "onnx") == 0 || strcmp(name, "onnxruntime") == 0) return onnx_backend();
  if (!valid_name(name)) {
    err_set(e, -EINVAL, "invalid backend name '%s'", name);
    return NULL;
  }
  pthread_mutex_lock(&lock);
  const inferd_backend *t = NULL;
  for (int i = 0; i < n_libs && !t; i++)
    if (strcmp(libs[i].name, name) == 0) t = libs[i].table;
  if (!t) t = load_library(name, e);
  pthread_mutex_unlock(&lock);
  return t;
}
