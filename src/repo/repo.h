/* repo/repo.h: the model repository: one folder per model, numbered version
 * folders inside, an optional config.pbtxt; which versions load (the version
 * policy), their lifecycle (loading, ready, unavailable with a reason,
 * unloading) and the references that keep a version alive while requests
 * use it.
 *
 * Threads: lookups (repo_acquire, repo_get_model) run on every network
 * thread under a read lock; loads and unloads swap a model's entry under the
 * write lock. References are counted on the model: a model and all its
 * versions are freed when the last request that holds one ends, never under
 * it. */
#ifndef INFERD_REPO_REPO_H
#define INFERD_REPO_REPO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/model_config.h"
#include "inferd/backend.h"
#include "sched/stats.h"

typedef enum model_state {
  MODEL_LOADING = 0,
  MODEL_READY,
  MODEL_UNAVAILABLE,
  MODEL_UNLOADING,
} model_state;

/* "LOADING", "READY", "UNAVAILABLE", "UNLOADING" (the protocol's names). */
const char *model_state_name(model_state s);

typedef struct model model;

typedef struct sched_model sched_model;

/* A model instance: the backend's state, run by one thread at a time (its
 * own worker thread, or a network thread taking the fast path). */
typedef struct instance {
  void *state; /* the backend's */
  int index;
  atomic_bool busy;             /* taken for an execution */
  arena *scratch;               /* batch memory of the one executing it */
  atomic_uint_fast64_t busy_ns; /* time spent executing, for utilisation */
} instance;

typedef struct model_version {
  model *model; /* holds a reference on it */
  int64_t version;
  char *dir;
  _Atomic model_state state;
  char reason[ERR_MSG_MAX]; /* why UNAVAILABLE */

  const inferd_backend *backend;
  void *backend_model;
  inferd_model_desc desc;
  int n_instances;
  instance *instances;
  sched_model *sched; /* queues and worker threads (sched/sched.h) */
  size_t memory_bytes;

  /* labels[i]: lines of output i's label_filename (NULL when it has none) */
  char ***labels;
  size_t *n_labels;

  model_stats stats;
} model_version;

struct model {
  char *name;
  char *dir;
  model_config *config;     /* NULL when config.pbtxt could not be read */
  model_state state;        /* UNAVAILABLE when no version could load */
  char reason[ERR_MSG_MAX]; /* why */
  size_t n_versions;        /* versions the policy chose, ascending */
  model_version **versions;
  atomic_int refs;
};

typedef struct repo_options {
  const char *root;
  bool strict_readiness; /* server ready only when every model is */
  int default_max_batch; /* for configs completed from the model file */
} repo_options;

typedef struct repo repo;

repo *repo_create(const repo_options *opt);
/* Unloads everything and waits for no one: call after the servers stopped. */
void repo_destroy(repo *r);

/* Scans the root and loads every model folder. A model that fails is kept
 * as UNAVAILABLE with its reason; the others load regardless. */
void repo_load_all(repo *r);

/* (Re)loads one model folder, replacing the loaded one when it succeeds.
 * -ENOENT when there is no such folder, -EINVAL for a bad name, or the
 * load's error (the model is then UNAVAILABLE). */
int repo_load_model(repo *r, const char *name, err *e);
/* Unloads a model: it stops taking requests now and is freed when the
 * requests in flight finish. */
int repo_unload_model(repo *r, const char *name, err *e);

/* A READY version to run a request on (version -1: the highest ready one),
 * with a reference the caller gives back with model_version_release.
 * -ENOENT: no such model or version; -EAGAIN: not available (reason in e). */
model_version *repo_acquire(repo *r, const char *name, int64_t version, err *e);
void model_version_release(model_version *mv);

/* The model entry with a reference (even when unavailable), or NULL. */
model *repo_get_model(repo *r, const char *name);
void model_release(model *m);

/* Calls fn for each model folder in name order, under the read lock (fn
 * must not call back into the repository); m is NULL for a folder that is
 * not loaded. With rescan, folders added to the root since are listed too. */
void repo_each(repo *r, bool rescan, void (*fn)(const char *name, model *m, void *arg), void *arg);

/* All models loaded (strict) or the repository scanned (not strict). */
bool repo_ready(repo *r);

/* A version as folders and URLs write it: decimal digits that fit an int64
 * (at most 18 of them). */
bool repo_parse_version(const char *s, int64_t *v);

/* A model name must be a single path component: not empty, no '/', not
 * "." or "..", no leading '.', no control characters. */
bool repo_valid_name(const char *name);

#endif
