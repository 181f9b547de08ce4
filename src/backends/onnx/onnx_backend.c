/* backends/onnx/onnx_backend.c: the "onnx" backend table: reading the model
 * file, matching the model to its configuration (names, types, shapes, the
 * batch dimension), checking the graph once at load with trial plans (which
 * also complete undeclared output shapes and size the workspace), and the
 * thread setting around execute. */
#include <dlfcn.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/log.h"
#include "onnx_backend.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

#define DEFAULT_MODEL_FILE "model.onnx"
#define MAX_THREADS        1024

/* ---- threads ------------------------------------------------------------ */

/* oneDNN here is built on OpenMP and sizes each parallel region by the
 * calling thread's omp_get_max_threads(), which defaults to every core.
 * Each execute sets the calling thread's value to the model's
 * intra_op_threads. libgomp is loaded as a dependency of libdnnl; it is
 * found at run time so that the backend does not link OpenMP itself. */
static void (*omp_set_threads)(int);
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;

static void omp_resolve(void) {
  void *sym = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  memcpy(&omp_set_threads, &sym, sizeof sym);
}

static void set_threads(int n) {
  pthread_once(&omp_once, omp_resolve);
  if (omp_set_threads) omp_set_threads(n);
}

/* graph_optimization: "all" (the default) or "none". */
static int read_optimize(const inferd_model_desc *d, onnx_optimize *out, err *e) {
  *out = ONNX_OPTIMIZE_ALL;
  for (size_t i = 0; i < d->n_params; i++) {
    if (strcmp(d->params[i].key, "graph_optimization") != 0) continue;
    const char *s = d->params[i].value ? d->params[i].value : "";
    if (strcmp(s, "all") == 0)
      *out = ONNX_OPTIMIZE_ALL;
    else if (strcmp(s, "none") == 0)
      *out = ONNX_OPTIMIZE_NONE;
    else
      return err_set(e, -EINVAL, "parameter graph_optimization='%s' must be 'all' or 'none'", s);
  }
  return 0;
}

static int read_threads(const inferd_model_desc *d, int *out, err *e) {
  *out = 1;
  for (size_t i = 0; i < d->n_params; i++) {
    if (strcmp(d->params[i].key, "intra_op_threads") != 0) continue;
    const char *s = d->params[i].value ? d->params[i].value : "";
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > MAX_THREADS)
      return err_set(e, -EINVAL, "parameter intra_op_threads='%s' must be an integer from 1 to %d",
                     s, MAX_THREADS);
    *out = (int)v;
  }
  return 0;
}

/* ---- the model file ----------------------------------------------------- */

/* desc->model_path, or model.onnx in the version folder when that is what
 * the path names (or there is none). */
static char *model_path(const inferd_model_desc *d) {
  const char *p = d->model_path;
  struct stat st;
  if (p && !(stat(p, &st) == 0 && S_ISDIR(st.st_mode))) return strdup(p);
  const char *dir = p ? p : d->version_dir ? d->version_dir : ".";
  char *out;
  if (asprintf(&out, "%s/%s", dir, DEFAULT_MODEL_FILE) < 0) return NULL;
  return out;
}

static int parse_file(const char *path, onnx_optimize opt, onnx_model **m, err *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return err_set(e, errno == ENOENT ? -ENOENT : -EIO, "cannot open '%s': %s", path,
                   strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return err_set(e, -EINVAL, "'%s' is not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return err_set(e, -EINVAL, "'%s' is empty", path);
  }
  void *bytes = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (bytes == MAP_FAILED) return err_set(e, -EIO, "cannot map '%s': %s", path, strerror(errno));
  /* The file's pages are only read once, in order. */
  madvise(bytes, (size_t)st.st_size, MADV_SEQUENTIAL);
  int rc = onnx_model_parse_opt(bytes, (size_t)st.st_size, opt, m, e);
  munmap(bytes, (size_t)st.st_size);
  return rc;
}

/* ---- matching the configuration ----------------------------------------- */

static void describe(char *out, size_t size, const inferd_tensor_desc *d, size_t n) {
  size_t len = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && len < size; i++) {
    char dims[96] = "[?]";
    if (d[i].ndim >= 0) shape_format(dims, sizeof dims, d[i].dims, d[i].ndim);
    len += (size_t)snprintf(out + len, size - len, "%s%s %s %s", i ? ", " : "", d[i].name,
                            dtype_name(d[i].dtype), dims);
  }
}

/* Checks one configured tensor against the model's (batch dimension
 * prepended to the configuration's dims when the model batches). */
static int fit(const char *what, const inferd_tensor_desc *cfg, const inferd_tensor_desc *mod,
               int max_batch, err *e) {
  int batch = max_batch > 0;
  char cs[96], ms[96];
  int64_t dims[ONNX_MAX_DIMS + 1];
  int nd = cfg->ndim + batch;
  if (cfg->ndim < 0 || nd > ONNX_MAX_DIMS)
    return err_set(e, -EINVAL, "%s '%s' has %d dimensions", what, cfg->name, cfg->ndim);
  if (batch) dims[0] = -1;
  memcpy(dims + batch, cfg->dims, (size_t)cfg->ndim * sizeof dims[0]);
  shape_format(cs, sizeof cs, dims, nd);
  shape_format(ms, sizeof ms, mod->dims, mod->ndim > 0 ? mod->ndim : 0);
  if (cfg->dtype != mod->dtype)
    return err_set(e, -EINVAL, "%s '%s': the configuration says %s but the model has %s", what,
                   cfg->name, dtype_name(cfg->dtype), dtype_name(mod->dtype));
  bool ok = nd == mod->ndim;
  for (int i = 0; ok && i < nd; i++)
    ok = dims[i] < 0 || mod->dims[i] < 0 || dims[i] == mod->dims[i];
  if (!ok)
    return err_set(e, -EINVAL,
                   "%s '%s': the configuration's shape %s%s does not fit the model's %s", what,
                   cfg->name, cs, batch ? " (batch included)" : "", ms);
  if (batch && mod->dims[0] >= 0 && !(mod->dims[0] == 1 && max_batch == 1))
    return err_set(e, -EINVAL,
                   "%s '%s': the model's first dimension is fixed at %lld, so it cannot take "
                   "batches of up to %d (make it dynamic, or set max_batch_size: 0)",
                   what, cfg->name, (long long)mod->dims[0], max_batch);
  return 0;
}

static int find_desc(const inferd_tensor_desc *d, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(d[i].name, name) == 0) return (int)i;
  return -1;
}

/* Maps inferd's inputs (the configuration's order, or the model's when the
 * configuration lists none) to the graph's, checking names, types and
 * shapes; shapes[k] receives the model input's dims with what the
 * configuration fixes filled in. */
static int bind_inputs(onnx_model *m, const inferd_model_desc *d, int64_t (*shapes)[ONNX_MAX_DIMS],
                       err *e) {
  char list[400];
  describe(list, sizeof list, m->io_in, m->n_inputs);
  m->n_exec_in = d->n_inputs ? d->n_inputs : m->n_inputs;
  m->exec_in = arena_calloc(m->arena, m->n_exec_in + 1, sizeof *m->exec_in);
  if (!m->exec_in) return err_set(e, -ENOMEM, "out of memory");
  for (size_t k = 0; k < m->n_inputs; k++)
    memcpy(shapes[k], m->io_in[k].dims, sizeof shapes[k]);
  if (!d->n_inputs) {
    for (size_t k = 0; k < m->n_inputs; k++) {
      m->exec_in[k] = (int)k;
      if (d->max_batch_size > 0) {
        inferd_tensor_desc cfg = m->io_in[k];
        cfg.ndim = cfg.ndim > 0 ? cfg.ndim - 1 : 0;
        memmove(cfg.dims, m->io_in[k].dims + 1, (size_t)cfg.ndim * sizeof cfg.dims[0]);
        int rc = fit("input", &cfg, &m->io_in[k], d->max_batch_size, e);
        if (rc) return rc;
      }
    }
    return 0;
  }
  bool *seen = calloc(m->n_inputs + 1, 1);
  if (!seen) return err_set(e, -ENOMEM, "out of memory");
  int rc = 0;
  for (size_t i = 0; i < d->n_inputs && !rc; i++) {
    int k = find_desc(m->io_in, m->n_inputs, d->inputs[i].name);
    if (k < 0)
      rc = err_set(e, -EINVAL, "configuration input '%s' is not an input of the model; it has: %s",
                   d->inputs[i].name, list);
    else if (seen[k])
      rc = err_set(e, -EINVAL, "configuration input '%s' is listed twice", d->inputs[i].name);
    else if (!(rc = fit("input", &d->inputs[i], &m->io_in[k], d->max_batch_size, e))) {
      seen[k] = true;
      m->exec_in[i] = k;
      int batch = d->max_batch_size > 0;
      for (int j = 0; j < d->inputs[i].ndim; j++)
        if (shapes[k][j + batch] < 0) shapes[k][j + batch] = d->inputs[i].dims[j];
    }
  }
  for (size_t k = 0; k < m->n_inputs && !rc; k++)
    if (!seen[k])
      rc = err_set(e, -EINVAL, "model input '%s' is missing from the configuration; it has: %s",
                   m->io_in[k].name, list);
  free(seen);
  return rc;
}

/* Maps inferd's outputs to graph outputs by name (the configuration may
 * list a subset) and marks only those wanted, so that pruning drops what
 * only the others need. Types and shapes are checked once inferred. */
static int bind_outputs(onnx_model *m, const inferd_model_desc *d, err *e) {
  char list[400];
  m->n_exec_out = d->n_outputs ? d->n_outputs : m->n_outputs;
  m->exec_out = arena_calloc(m->arena, m->n_exec_out + 1, sizeof *m->exec_out);
  if (!m->exec_out) return err_set(e, -ENOMEM, "out of memory");
  if (!d->n_outputs) {
    for (size_t j = 0; j < m->n_outputs; j++)
      m->exec_out[j] = (int)j;
    return 0;
  }
  for (size_t j = 0; j < m->n_outputs; j++)
    m->values[m->outputs[j]].is_output = false;
  for (size_t i = 0; i < d->n_outputs; i++) {
    int g = find_desc(m->io_out, m->n_outputs, d->outputs[i].name);
    if (g < 0) {
      describe(list, sizeof list, m->io_out, m->n_outputs);
      return err_set(e, -EINVAL,
                     "configuration output '%s' is not an output of the model; it has: %s",
                     d->outputs[i].name, list);
    }
    if (m->values[m->outputs[g]].is_output)
      return err_set(e, -EINVAL, "configuration output '%s' is listed twice", d->outputs[i].name);
    m->values[m->outputs[g]].is_output = true;
    m->exec_out[i] = g;
  }
  return 0;
}

/* ---- trial plans -------------------------------------------------------- */

/* Plans the model with its variable dimensions set: the first to batch when
 * the model batches, the others to dyn. *guessed tells whether any was. */
static int trial(const onnx_model *m, const inferd_model_desc *d,
                 const int64_t (*shapes)[ONNX_MAX_DIMS], int64_t dyn, int64_t batch, onnx_plan **p,
                 bool *guessed, err *e) {
  int ndims[m->n_inputs + 1];
  int64_t(*s)[ONNX_MAX_DIMS] = calloc(m->n_inputs + 1, sizeof *s);
  if (!s) return err_set(e, -ENOMEM, "out of memory");
  *guessed = false;
  for (size_t k = 0; k < m->n_inputs; k++) {
    ndims[k] = m->io_in[k].ndim;
    for (int i = 0; i < ndims[k]; i++) {
      s[k][i] = shapes[k][i];
      if (s[k][i] >= 0) continue;
      s[k][i] = i == 0 && d->max_batch_size > 0 ? batch : dyn;
      *guessed = true;
    }
  }
  int rc = onnx_plan_build(m, ndims, (const int64_t(*)[ONNX_MAX_DIMS])s, NULL, p, e);
  free(s);
  return rc;
}

/* Completes the outputs' declared types and shapes from trial plans (t1
 * with variable dimensions 1, t2 with 2: a dimension that differs is
 * variable) and checks the declared ones against what the graph computes. */
static int complete_outputs(onnx_model *m, const onnx_plan *t1, const onnx_plan *t2, err *e) {
  for (size_t j = 0; j < m->n_outputs; j++) {
    int v = m->outputs[j];
    if (!m->values[v].is_output) continue;
    inferd_tensor_desc *o = &m->io_out[j];
    const onnx_tensor *a = t1 ? onnx_plan_tensor(t1, v) : NULL;
    if (a && o->dtype != INFERD_TYPE_INVALID && o->dtype != a->dtype)
      return err_set(e, -EINVAL, "output '%s' is declared %s but the graph computes %s", o->name,
                     dtype_name(o->dtype), dtype_name(a->dtype));
    if (a && o->ndim >= 0 && o->ndim != a->ndim)
      return err_set(e, -EINVAL, "output '%s' is declared with %d dimensions but has %d", o->name,
                     o->ndim, a->ndim);
    if (o->dtype != INFERD_TYPE_INVALID && o->ndim >= 0) continue;
    if (!a)
      return err_set(e, -EINVAL,
                     "output '%s' declares no type or shape and the graph's could not be "
                     "inferred; list it in the configuration",
                     o->name);
    o->dtype = a->dtype;
    if (o->ndim < 0) {
      const onnx_tensor *b = t2 ? onnx_plan_tensor(t2, v) : NULL;
      o->ndim = a->ndim;
      for (int i = 0; i < a->ndim; i++)
        o->dims[i] = b && b->ndim == a->ndim && b->dims[i] == a->dims[i] ? a->dims[i] : -1;
    }
  }
  return 0;
}

static int check_outputs(const onnx_model *m, const inferd_model_desc *d, err *e) {
  for (size_t i = 0; i < d->n_outputs; i++) {
    int rc = fit("output", &d->outputs[i], &m->io_out[m->exec_out[i]], d->max_batch_size, e);
    if (rc) return rc;
  }
  return 0;
}

/* Plans the model once at load: a graph that cannot run fails here rather
 * than on the first request. With variable dimensions guessed as 1 (or key
 * inputs, whose values are unknown), a shape error may be the guess's
 * fault, so it is only logged; a type error never is. The workspace at the
 * largest batch becomes each instance's first. */
static int check_graph(onnx_model *m, const inferd_model_desc *d,
                       const int64_t (*shapes)[ONNX_MAX_DIMS], err *e) {
  onnx_plan *t1 = NULL, *t2 = NULL, *tmax = NULL;
  bool guessed, unused;
  err e1 = {0}, e2 = {0};
  int rc = trial(m, d, shapes, 1, 1, &t1, &guessed, &e1);
  guessed |= m->has_key_inputs; /* their values are not known either */
  if (rc == -ENOMEM || (rc && ((rc == -ENOTSUP && !m->has_key_inputs) || !guessed))) {
    *e = e1;
    return rc;
  }
  if (rc && m->has_key_inputs)
    log_verbose("onnx: model '%s' has inputs that decide shapes; checked when they come: %s",
                d->name ? d->name : "", e1.msg);
  else if (rc)
    log_warn("onnx: model '%s' could not be checked with its variable dimensions set to 1: %s",
             d->name ? d->name : "", e1.msg);
  bool need_shapes = false;
  for (size_t j = 0; j < m->n_outputs; j++)
    need_shapes |= m->io_out[j].ndim < 0;
  if (t1 && need_shapes && guessed) trial(m, d, shapes, 2, 2, &t2, &unused, &e2);
  rc = complete_outputs(m, t1, guessed ? t2 : t1, e);
  if (!rc && t1) {
    m->instance_estimate = onnx_plan_workspace(t1);
    if (d->max_batch_size > 1 && !trial(m, d, shapes, 1, d->max_batch_size, &tmax, &unused, &e2))
      m->instance_estimate = onnx_plan_workspace(tmax);
  }
  onnx_plan_free(t1);
  onnx_plan_free(t2);
  onnx_plan_free(tmax);
  return rc;
}

/* ---- the table ---------------------------------------------------------- */

static int load(const inferd_model_desc *d, onnx_model **out, err *e) {
  int threads;
  onnx_optimize opt;
  int rc = read_threads(d, &threads, e);
  if (!rc) rc = read_optimize(d, &opt, e);
  if (rc) return rc;
  set_threads(threads); /* folding constants may multiply matrices */
  char *path = model_path(d);
  if (!path) return err_set(e, -ENOMEM, "out of memory");
  onnx_model *m;
  rc = parse_file(path, opt, &m, e);
  free(path);
  if (rc) return rc;
  m->threads = threads;
  int64_t(*shapes)[ONNX_MAX_DIMS] = calloc(m->n_inputs + 1, sizeof *shapes);
  if (!shapes) rc = err_set(e, -ENOMEM, "out of memory");
  if (!rc) rc = bind_inputs(m, d, shapes, e);
  if (!rc) rc = bind_outputs(m, d, e);
  if (!rc) {
    onnx_model_prune(m);
    rc = check_graph(m, d, (const int64_t(*)[ONNX_MAX_DIMS])shapes, e);
  }
  if (!rc) rc = check_outputs(m, d, e);
  free(shapes);
  if (rc) {
    onnx_model_free(m);
    return rc;
  }
#ifdef __GLIBC__
  /* Loading freed the parse tree and the weights that were packed: glibc
   * keeps much of that in its heap (its mmap threshold rises as large
   * blocks are freed) unless asked to give it back. */
  malloc_trim(0);
#endif
  *out = m;
  return 0;
}

static void copy_error(char *buf, size_t size, const err *e) {
  if (size) snprintf(buf, size, "%s", e->msg);
}

static int model_load(const inferd_model_desc *desc, void **model, char *errbuf, size_t err_size) {
  err e = {0};
  onnx_model *m = NULL;
  int rc = load(desc, &m, &e);
  if (rc) {
    copy_error(errbuf, err_size, &e);
    return rc;
  }
  *model = m;
  return 0;
}

static int model_io(void *model, size_t *n_inputs, const inferd_tensor_desc **inputs,
                    size_t *n_outputs, const inferd_tensor_desc **outputs) {
  const onnx_model *m = model;
  *n_inputs = m->n_inputs;
  *inputs = m->io_in;
  *n_outputs = m->n_outputs;
  *outputs = m->io_out;
  return 0;
}

static size_t model_memory(void *model) {
  onnx_model *m = model;
  size_t live = atomic_load(&m->instance_bytes);
  return m->weight_bytes + (atomic_load(&m->n_instances) ? live : m->instance_estimate);
}

/* Weights are many large blocks that glibc may keep in its heap after
 * they are freed; trimming gives them back to the system, so that
 * unloading a model lowers the process's memory. */
static void model_unload(void *model) {
  onnx_model_free(model);
  onnx_dnnl_cache_clear();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

static int instance_create(void *model, int index, void **instance, char *errbuf, size_t err_size) {
  err e = {0};
  onnx_instance *in;
  int rc = onnx_instance_new(model, &in, &e);
  if (rc) {
    copy_error(errbuf, err_size, &e);
    return rc;
  }
  *instance = in;
  return 0;
}

static void instance_destroy(void *instance) { onnx_instance_free(instance); }

static int execute(void *instance, inferd_exec *exec) {
  onnx_instance *in = instance;
  err e = {0};
  set_threads(onnx_instance_model(in)->threads);
  int rc = onnx_instance_run(in, exec, &e);
  if (rc) copy_error(exec->error, exec->error_size, &e);
  return rc;
}

static const inferd_backend table = {
    .api_version = INFERD_BACKEND_API_VERSION,
    .name = "onnx",
    .model_load = model_load,
    .model_io = model_io,
    .model_memory = model_memory,
    .model_unload = model_unload,
    .instance_create = instance_create,
    .instance_destroy = instance_destroy,
    .execute = execute,
};

const inferd_backend *onnx_backend(void) { return &table; }
