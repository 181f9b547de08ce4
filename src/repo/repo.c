/* repo/repo.c: scanning the repository, loading models and their versions
 * through their backend, completing configurations from the model file,
 * and the table that requests look models up in. */
#include "repo/repo.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/registry.h"
#include "core/clock.h"
#include "core/dtype.h"
#include "core/log.h"
#include "core/validate.h"
#include "sched/sched.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define LABELS_MAX_BYTES (16 << 20)

typedef struct entry {
  char *name;
  model *m; /* NULL: folder not loaded */
} entry;

struct repo {
  repo_options opt;
  char *root;
  pthread_rwlock_t lock;
  entry *entries; /* sorted by name */
  size_t n, cap;
  atomic_bool scanned;
  atomic_bool all_ready;     /* every loaded entry READY; kept by recount() */
  pthread_mutex_t load_lock; /* one load or unload at a time */
};

const char *model_state_name(model_state s) {
  switch (s) {
  case MODEL_LOADING: return "LOADING";
  case MODEL_READY: return "READY";
  case MODEL_UNAVAILABLE: return "UNAVAILABLE";
  case MODEL_UNLOADING: return "UNLOADING";
  }
  return "UNKNOWN";
}

bool repo_valid_name(const char *name) {
  if (!name[0] || name[0] == '.') return false;
  for (const char *p = name; *p; p++)
    if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) return false;
  return strlen(name) < 256;
}

/* ---- files ---------------------------------------------------------------- */

/* Reads a whole file up to max bytes; NULL with a message otherwise. */
static char *read_file(const char *path, size_t max, size_t *len, err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    err_set(e, -ENOENT, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  char *data = malloc(max + 1);
  size_t n = data ? fread(data, 1, max + 1, f) : 0;
  fclose(f);
  if (!data) {
    err_set(e, -ENOMEM, "out of memory reading %s", path);
    return NULL;
  }
  if (n > max) {
    free(data);
    err_set(e, -EINVAL, "%s is larger than %zu bytes", path, max);
    return NULL;
  }
  data[n] = 0;
  *len = n;
  return data;
}

/* dir/name into out (PATH_MAX bytes); false when it does not fit. */
static bool join(char *out, const char *dir, const char *name) {
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  return n > 0 && n < PATH_MAX;
}

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool repo_parse_version(const char *s, int64_t *v) {
  if (!*s || strlen(s) > 18) return false;
  int64_t x = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    x = x * 10 + (*s - '0');
  }
  *v = x;
  return true;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The numbered version folders of a model, ascending. */
static int list_versions(const char *dir, int64_t **out, size_t *n) {
  DIR *d = opendir(dir);
  if (!d) return -errno;
  size_t cap = 8, cnt = 0;
  int64_t *v = malloc(cap * sizeof *v);
  struct dirent *de;
  while (v && (de = readdir(d))) {
    int64_t ver;
    char path[PATH_MAX];
    if (!repo_parse_version(de->d_name, &ver)) continue;
    if (!join(path, dir, de->d_name)) continue;
    if (!is_dir(path)) continue;
    if (cnt == cap) {
      int64_t *nv = realloc(v, (cap *= 2) * sizeof *v);
      if (!nv) {
        free(v);
        v = NULL;
        break;
      }
      v = nv;
    }
    v[cnt++] = ver;
  }
  closedir(d);
  if (!v) return -ENOMEM;
  qsort(v, cnt, sizeof *v, cmp_i64);
  *out = v;
  *n = cnt;
  return 0;
}

/* Whether any version folder holds a file with the given suffix. */
static bool has_file_with_suffix(const char *dir, const int64_t *versions, size_t n,
                                 const char *suffix) {
  size_t sl = strlen(suffix);
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX];
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)versions[i]);
    if (!join(path, dir, num)) continue;
    DIR *d = opendir(path);
    if (!d) continue;
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d))) {
      size_t l = strlen(de->d_name);
      found = l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    if (found) return true;
  }
  return false;
}

/* ---- configuration ---------------------------------------------------------- */

/* The backend a configuration asks for: `backend`, else one implied by
 * `platform`, else one recognised from the files. */
static const char *backend_name(const model_config *c, const char *dir, const int64_t *versions,
                                size_t n, err *e) {
  if (c->backend && c->backend[0]) return c->backend;
  if (c->platform && c->platform[0]) {
    if (strcmp(c->platform, "onnxruntime_onnx") == 0) return "onnx";
    if (strcmp(c->platform, "ensemble") == 0) {
      err_set(e, -ENOTSUP, "ensemble models are not supported yet");
      return NULL;
    }
    err_set(e, -ENOTSUP, "platform '%s' is not supported (supported: onnxruntime_onnx)",
            c->platform);
    return NULL;
  }
  if (has_file_with_suffix(dir, versions, n, ".onnx")) return "onnx";
  err_set(e, -EINVAL,
          "the configuration names no backend or platform, and no model file was recognised");
  return NULL;
}

static model_config *read_config(const char *dir, const char *name, err *e) {
  char path[PATH_MAX];
  if (!join(path, dir, "config.pbtxt")) {
    err_set(e, -ENAMETOOLONG, "the model folder's path is too long");
    return NULL;
  }
  model_config *c;
  struct stat st;
  if (stat(path, &st) != 0) {
    c = model_config_new();
    if (!c) err_set(e, -ENOMEM, "out of memory");
  } else {
    size_t len;
    char *text = read_file(path, CONFIG_MAX_BYTES, &len, e);
    if (!text) return NULL;
    c = model_config_parse(text, len, e);
    free(text);
  }
  if (!c) return NULL;
  if (!c->name || !c->name[0]) {
    c->name = arena_strdup(c->arena, name);
  } else if (strcmp(c->name, name) != 0) {
    err_set(e, -EINVAL, "config.pbtxt names the model '%s' but its folder is '%s'", c->name, name);
    model_config_free(c);
    return NULL;
  }
  return c;
}

/* Fills the configuration's inputs and outputs from what the model file
 * declares, as Triton's auto-complete does: when every declared tensor has a
 * variable first dimension and the configuration sets no max_batch_size,
 * that dimension becomes the batch dimension (up to default_max_batch). */
static int complete_config(model_config *c, const inferd_backend *b, void *bm,
                           int default_max_batch, err *e) {
  size_t ni, no;
  const inferd_tensor_desc *in, *out;
  if (!b->model_io) return err_set(e, -EINVAL, "config.pbtxt lists no inputs or outputs");
  int rc = b->model_io(bm, &ni, &in, &no, &out);
  if (rc < 0)
    return err_set(e, rc, "the backend could not describe the model's inputs and outputs");
  bool batchable = ni + no > 0;
  for (size_t i = 0; i < ni + no && batchable; i++) {
    const inferd_tensor_desc *t = i < ni ? &in[i] : &out[i - ni];
    batchable = t->ndim >= 1 && t->dims[0] == -1;
  }
  if (c->max_batch_size == 0 && batchable) c->max_batch_size = default_max_batch;
  int strip = c->max_batch_size > 0 ? 1 : 0;
  if (strip && !batchable)
    return err_set(e, -EINVAL,
                   "max_batch_size is %d but the model's inputs and outputs do not all have a "
                   "variable first dimension",
                   c->max_batch_size);
  c->inputs = arena_calloc(c->arena, ni ? ni : 1, sizeof *c->inputs);
  c->outputs = arena_calloc(c->arena, no ? no : 1, sizeof *c->outputs);
  if (!c->inputs || !c->outputs) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < ni + no; i++) {
    const inferd_tensor_desc *t = i < ni ? &in[i] : &out[i - ni];
    config_tensor *ct = i < ni ? &c->inputs[i] : &c->outputs[i - ni];
    ct->name = arena_strdup(c->arena, t->name);
    ct->dtype = t->dtype;
    ct->ndim = t->ndim - strip;
    memcpy(ct->dims, t->dims + strip, (size_t)ct->ndim * sizeof ct->dims[0]);
  }
  c->n_inputs = ni;
  c->n_outputs = no;
  return 0;
}

/* The tensor descriptions a backend sees: reshape dims when the
 * configuration has them, else dims. */
static inferd_tensor_desc *make_descs(const config_tensor *t, size_t n) {
  inferd_tensor_desc *d = calloc(n ? n : 1, sizeof *d);
  if (!d) return NULL;
  for (size_t i = 0; i < n; i++) {
    d[i].name = t[i].name;
    d[i].dtype = t[i].dtype;
    d[i].ndim = t[i].has_reshape ? t[i].reshape_ndim : t[i].ndim;
    memcpy(d[i].dims, t[i].has_reshape ? t[i].reshape_dims : t[i].dims,
           (size_t)d[i].ndim * sizeof d[i].dims[0]);
  }
  return d;
}

static int fill_desc(model_version *mv, const model_config *c) {
  inferd_model_desc *d = &mv->desc;
  free((void *)d->inputs);
  free((void *)d->outputs);
  d->max_batch_size = c->max_batch_size;
  d->n_inputs = c->n_inputs;
  d->inputs = make_descs(c->inputs, c->n_inputs);
  d->n_outputs = c->n_outputs;
  d->outputs = make_descs(c->outputs, c->n_outputs);
  return d->inputs && d->outputs ? 0 : -ENOMEM;
}

/* Reads label files: one label per line, for the classification extension. */
static int load_labels(model_version *mv, const model *m, err *e) {
  const model_config *c = m->config;
  mv->labels = calloc(c->n_outputs ? c->n_outputs : 1, sizeof *mv->labels);
  mv->n_labels = calloc(c->n_outputs ? c->n_outputs : 1, sizeof *mv->n_labels);
  if (!mv->labels || !mv->n_labels) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_outputs; i++) {
    const char *file = c->outputs[i].label_filename;
    if (!file || !file[0]) continue;
    if (strchr(file, '/') || strcmp(file, "..") == 0)
      return err_set(e, -EINVAL, "label_filename '%s' must be a file in the model folder", file);
    char path[PATH_MAX];
    if (!join(path, m->dir, file)) return err_set(e, -ENAMETOOLONG, "label file path is too long");
    size_t len;
    char *text = read_file(path, LABELS_MAX_BYTES, &len, e);
    if (!text) return e->code;
    size_t lines = 0;
    for (size_t k = 0; k < len; k++)
      lines += text[k] == '\n';
    char **labels = calloc(lines + 2, sizeof *labels);
    if (!labels) {
      free(text);
      return err_set(e, -ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
      nl = memchr(p, '\n', (size_t)(text + len - p));
      if (!nl) nl = text + len;
      size_t l = (size_t)(nl - p);
      if (l && p[l - 1] == '\r') l--;
      labels[n++] = strndup(p, l);
    }
    free(text);
    mv->labels[i] = labels;
    mv->n_labels[i] = n;
  }
  return 0;
}

/* ---- versions ------------------------------------------------------------------ */

static void version_free(model_version *mv) {
  if (!mv) return;
  sched_model_stop(mv);
  for (int i = 0; i < mv->n_instances; i++) {
    if (mv->instances[i].state) mv->backend->instance_destroy(mv->instances[i].state);
    arena_destroy(mv->instances[i].scratch);
  }
  free(mv->instances);
  if (mv->backend_model) mv->backend->model_unload(mv->backend_model);
  if (mv->labels) {
    for (size_t i = 0; i < mv->model->config->n_outputs; i++) {
      if (!mv->labels[i]) continue;
      for (size_t k = 0; k < mv->n_labels[i]; k++)
        free(mv->labels[i][k]);
      free(mv->labels[i]);
    }
  }
  free(mv->labels);
  free(mv->n_labels);
  free((void *)mv->desc.inputs);
  free((void *)mv->desc.outputs);
  free((void *)mv->desc.params);
  free((void *)mv->desc.model_path);
  stats_free(&mv->stats);
  free(mv->dir);
  free(mv);
}

/* Instances of all groups (normalized: there is at least one group). */
static int instance_count(const model_config *c) {
  int n = 0;
  for (size_t i = 0; i < c->n_instance_groups; i++)
    n += c->instance_groups[i].count;
  return n > 0 ? n : 1;
}

/* ---- warmup ------------------------------------------------------------------ */

/* Fills n bytes of a warmup input: zeros, random values, or the contents of
 * the model's warmup/<file> (repeated for the batch). */
static int warmup_data(const model *m, const warmup_input *wi, const model_warmup *w, arena *a,
                       size_t bytes, void **out, err *e) {
  unsigned char *p = arena_calloc(a, bytes ? bytes : 1, 1);
  if (!p) return err_set(e, -ENOMEM, "out of memory");
  *out = p;
  if (wi->source == WARMUP_RANDOM && wi->dtype != INFERD_TYPE_BYTES) {
    /* random values in [0, 1) for floats, random bytes otherwise */
    uint64_t x = 0x9e3779b97f4a7c15u;
    size_t es = dtype_size(wi->dtype);
    for (size_t i = 0; i + es <= bytes; i += es) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      if (wi->dtype == INFERD_TYPE_FP32) {
        float f = (float)(x >> 40) / (float)(1u << 24);
        memcpy(p + i, &f, 4);
      } else if (wi->dtype == INFERD_TYPE_FP64) {
        double d = (double)(x >> 11) / 9007199254740992.0;
        memcpy(p + i, &d, 8);
      } else {
        memcpy(p + i, &x, es);
      }
    }
  } else if (wi->source == WARMUP_FILE) {
    char dir[PATH_MAX], path[PATH_MAX];
    if (!join(dir, m->dir, "warmup") || !join(path, dir, wi->input_data_file))
      return err_set(e, -ENAMETOOLONG, "warmup file path is too long");
    size_t len;
    char *data = read_file(path, bytes, &len, e);
    if (!data) return e->code;
    size_t per = bytes / (w->batch_size ? w->batch_size : 1);
    if (len != per) {
      free(data);
      return err_set(e, -EINVAL, "warmup file %s has %zu bytes, the input needs %zu", path, len,
                     per);
    }
    for (size_t off = 0; off + per <= bytes; off += per)
      memcpy(p + off, data, per);
    free(data);
  }
  return 0;
}

/* Runs the configuration's warmup samples (count times each) before the
 * version is ready, so that its first requests do not pay for first-time
 * work (plans, caches). */
static int warmup(model_version *mv, err *e) {
  const model_config *c = mv->model->config;
  for (size_t w = 0; w < c->n_warmups; w++) {
    const model_warmup *wu = &c->warmups[w];
    arena *a = arena_create(1 << 16);
    if (!a) return err_set(e, -ENOMEM, "out of memory");
    infer_request req = {.arena = a, .model_name = mv->model->name, .model_version = mv->version};
    req.inputs = arena_calloc(a, wu->n_inputs + 1, sizeof *req.inputs);
    int rc = req.inputs ? 0 : err_set(e, -ENOMEM, "out of memory");
    uint32_t batch = wu->batch_size ? wu->batch_size : 1;
    for (size_t i = 0; rc == 0 && i < wu->n_inputs; i++) {
      const warmup_input *wi = &wu->inputs[i];
      inferd_tensor *t = &req.inputs[req.n_inputs++].t;
      t->name = wi->name;
      t->dtype = wi->dtype;
      if (c->max_batch_size > 0) t->shape[t->ndim++] = batch;
      for (int d = 0; d < wi->ndim && t->ndim < INFERD_MAX_DIMS; d++)
        t->shape[t->ndim++] = wi->dims[d];
      int64_t count = shape_elements(t->shape, t->ndim);
      if (count < 0) {
        rc = err_set(e, -EINVAL, "warmup input '%s' has a bad shape", wi->name);
        break;
      }
      /* BYTES: empty strings, each a 4-byte zero length */
      size_t bytes = (size_t)count * (wi->dtype == INFERD_TYPE_BYTES ? 4 : dtype_size(wi->dtype));
      t->byte_size = bytes;
      rc = warmup_data(mv->model, wi, wu, a, bytes, &t->data, e);
    }
    if (rc == 0) rc = validate_request(c, &req, e);
    for (uint32_t k = 0; rc == 0 && k < (wu->count ? wu->count : 1); k++) {
      infer_response res;
      rc = sched_run_now(mv, &req, &res, e);
    }
    arena_destroy(a);
    if (rc < 0) {
      err_prefix(e, "warmup '%s': ", wu->name ? wu->name : "");
      return rc;
    }
  }
  return 0;
}

/* Loads one version: the backend's model, the configuration completed from
 * it when needed (first version only), instances, labels. */
static int version_load(repo *r, model *m, model_version *mv, const inferd_backend *b, err *e) {
  model_config *c = m->config;
  mv->backend = b;
  inferd_model_desc *d = &mv->desc;
  d->name = m->name;
  d->version = mv->version;
  d->version_dir = mv->dir;
  const char *file = c->default_model_filename;
  if (!file && b->name && strcmp(b->name, "onnx") == 0) file = "model.onnx";
  if (file) {
    if (strchr(file, '/'))
      return err_set(e, -EINVAL, "default_model_filename '%s' must be a file name", file);
    char path[PATH_MAX];
    if (!join(path, mv->dir, file)) return err_set(e, -ENAMETOOLONG, "model file path is too long");
    d->model_path = strdup(path);
  }
  d->n_params = c->n_params;
  inferd_param *params = calloc(c->n_params ? c->n_params : 1, sizeof *params);
  if (!params) return err_set(e, -ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_params; i++)
    params[i] = (inferd_param){c->params[i].key, c->params[i].value};
  d->params = params;
  if (fill_desc(mv, c) < 0) return err_set(e, -ENOMEM, "out of memory");

  char msg[ERR_MSG_MAX] = "";
  int rc = b->model_load(d, &mv->backend_model, msg, sizeof msg);
  if (rc < 0) return err_set(e, rc, "%s", msg[0] ? msg : "the backend could not load the model");
  if (c->n_inputs == 0 && c->n_outputs == 0) {
    /* The first version to load completes the configuration. */
    rc = complete_config(c, b, mv->backend_model, r->opt.default_max_batch, e);
    if (rc == 0) rc = model_config_normalize(c, e);
    if (rc == 0) rc = model_config_check(c, e);
    if (rc < 0) return rc;
    if (fill_desc(mv, c) < 0) return err_set(e, -ENOMEM, "out of memory");
  }

  int n = instance_count(c);
  mv->instances = calloc((size_t)n, sizeof *mv->instances);
  if (!mv->instances) return err_set(e, -ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    mv->instances[i].index = i;
    mv->instances[i].scratch = arena_create(1 << 16);
    mv->n_instances = i + 1;
    if (!mv->instances[i].scratch) return err_set(e, -ENOMEM, "out of memory");
    msg[0] = 0;
    rc = b->instance_create(mv->backend_model, i, &mv->instances[i].state, msg, sizeof msg);
    if (rc < 0) return err_set(e, rc, "instance %d: %s", i, msg[0] ? msg : "could not be created");
  }
  rc = load_labels(mv, m, e);
  if (rc < 0) return rc;
  if (stats_init(&mv->stats, c->max_batch_size) < 0) return err_set(e, -ENOMEM, "out of memory");
  rc = sched_model_start(mv, e);
  if (rc < 0) return rc;
  rc = warmup(mv, e);
  if (rc < 0) return rc;
  mv->memory_bytes = b->model_memory ? b->model_memory(mv->backend_model) : 0;
  return 0;
}

/* ---- models ------------------------------------------------------------------- */

static void model_free(model *m) {
  for (size_t i = 0; i < m->n_versions; i++)
    version_free(m->versions[i]);
  free(m->versions);
  model_config_free(m->config);
  free(m->name);
  free(m->dir);
  free(m);
}

void model_release(model *m) {
  if (m && atomic_fetch_sub(&m->refs, 1) == 1) model_free(m);
}

void model_version_release(model_version *mv) {
  if (mv) model_release(mv->model);
}

/* Which version folders the policy loads. */
static size_t select_versions(const model_config *c, const char *name, int64_t *v, size_t n) {
  const version_policy *p = &c->version_policy;
  if (p->kind == VERSION_POLICY_ALL) return n;
  if (p->kind == VERSION_POLICY_LATEST) {
    size_t keep = p->latest_num ? p->latest_num : 1;
    if (keep >= n) return n;
    memmove(v, v + n - keep, keep * sizeof *v);
    return keep;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool wanted = false;
    for (size_t j = 0; j < p->n_specific; j++)
      wanted |= p->specific[j] == v[i];
    if (wanted) v[k++] = v[i];
  }
  for (size_t j = 0; j < p->n_specific; j++) {
    bool found = false;
    for (size_t i = 0; i < k; i++)
      found |= v[i] == p->specific[j];
    if (!found)
      log_warn("model '%s': version_policy names version %lld, which has no folder", name,
               (long long)p->specific[j]);
  }
  return k;
}

static void set_unavailable(model *m, const err *e) {
  m->state = MODEL_UNAVAILABLE;
  snprintf(m->reason, sizeof m->reason, "%s", e->msg);
  log_error("model '%s' is unavailable: %s", m->name, e->msg);
}

/* Builds a model from its folder. Never NULL unless out of memory: a model
 * that cannot load comes back UNAVAILABLE with its reason. */
static model *model_build(repo *r, const char *name) {
  model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  atomic_init(&m->refs, 1);
  m->name = strdup(name);
  m->state = MODEL_LOADING;
  err e = {0};
  int64_t *versions = NULL;
  size_t nv = 0;
  char dir[PATH_MAX];
  if (!join(dir, r->root, name)) {
    err_set(&e, -ENAMETOOLONG, "the model folder's path is too long");
    goto fail;
  }
  m->dir = strdup(dir);

  m->config = read_config(dir, name, &e);
  if (!m->config) goto fail;
  if (list_versions(dir, &versions, &nv) < 0) {
    err_set(&e, -EIO, "cannot read the model folder %s", dir);
    goto fail;
  }
  const char *bname = backend_name(m->config, dir, versions, nv, &e);
  if (!bname) goto fail;
  const inferd_backend *b = backend_find(bname, &e);
  if (!b) goto fail;
  if (!m->config->backend) m->config->backend = arena_strdup(m->config->arena, bname);
  if (!m->config->platform && strcmp(bname, "onnx") == 0) m->config->platform = "onnxruntime_onnx";

  /* A configuration that lists its inputs and outputs is checked before any
   * model file is read; one completed from the file, after its first load. */
  if (m->config->n_inputs || m->config->n_outputs) {
    if (model_config_normalize(m->config, &e) < 0 || model_config_check(m->config, &e) < 0)
      goto fail;
  }
  nv = select_versions(m->config, name, versions, nv);
  if (nv == 0) {
    err_set(&e, -ENOENT, "no version folder to load (numbered folders inside %s)", dir);
    goto fail;
  }
  m->versions = calloc(nv, sizeof *m->versions);
  if (!m->versions) goto oom;
  size_t ready = 0;
  for (size_t i = 0; i < nv; i++) {
    model_version *mv = calloc(1, sizeof *mv);
    if (!mv) goto oom;
    m->versions[m->n_versions++] = mv;
    mv->model = m;
    mv->version = versions[i];
    char vdir[PATH_MAX];
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)versions[i]);
    if (!join(vdir, dir, num)) goto oom;
    mv->dir = strdup(vdir);
    err ve = {0};
    uint64_t t0 = clock_ns();
    if (version_load(r, m, mv, b, &ve) < 0) {
      atomic_store(&mv->state, MODEL_UNAVAILABLE);
      snprintf(mv->reason, sizeof mv->reason, "%s", ve.msg);
      log_error("model '%s' version %lld is unavailable: %s", name, (long long)mv->version, ve.msg);
      e = ve;
      continue;
    }
    atomic_store(&mv->state, MODEL_READY);
    ready++;
    log_info("model '%s' version %lld is ready (backend %s, %d instance%s, %.1f ms, %zu bytes)",
             name, (long long)mv->version, bname, mv->n_instances, mv->n_instances == 1 ? "" : "s",
             (double)(clock_ns() - t0) / 1e6, mv->memory_bytes);
  }
  free(versions);
  if (ready == 0)
    set_unavailable(m, &e);
  else
    m->state = MODEL_READY;
  return m;
oom:
  err_set(&e, -ENOMEM, "out of memory");
fail:
  free(versions);
  set_unavailable(m, &e);
  return m;
}

/* ---- the table ------------------------------------------------------------------ */

repo *repo_create(const repo_options *opt) {
  repo *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->opt = *opt;
  r->root = strdup(opt->root);
  atomic_init(&r->all_ready, true);
  pthread_rwlock_init(&r->lock, NULL);
  pthread_mutex_init(&r->load_lock, NULL);
  return r;
}

void repo_destroy(repo *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    model_release(r->entries[i].m);
    free(r->entries[i].name);
  }
  free(r->entries);
  free(r->root);
  pthread_rwlock_destroy(&r->lock);
  pthread_mutex_destroy(&r->load_lock);
  free(r);
}

/* Binary search; returns the index of name or where it would go. */
static size_t find(const repo *r, const char *name, bool *found) {
  size_t lo = 0, hi = r->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(r->entries[mid].name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

/* The entry for name, added when missing. Write lock held. */
static entry *entry_for(repo *r, const char *name) {
  bool found;
  size_t i = find(r, name, &found);
  if (found) return &r->entries[i];
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    entry *ne = realloc(r->entries, cap * sizeof *ne);
    if (!ne) return NULL;
    r->entries = ne;
    r->cap = cap;
  }
  char *copy = strdup(name);
  if (!copy) return NULL;
  memmove(&r->entries[i + 1], &r->entries[i], (r->n - i) * sizeof *r->entries);
  r->entries[i] = (entry){copy, NULL};
  r->n++;
  return &r->entries[i];
}

/* Adds an entry (not loaded) for every model folder not in the table. */
static void scan_folders(repo *r) {
  DIR *d = opendir(r->root);
  if (!d) {
    log_error("cannot read the model repository %s: %s", r->root, strerror(errno));
    return;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    char path[PATH_MAX];
    if (!repo_valid_name(de->d_name)) continue;
    if (!join(path, r->root, de->d_name)) continue;
    if (!is_dir(path)) continue;
    pthread_rwlock_wrlock(&r->lock);
    entry_for(r, de->d_name);
    pthread_rwlock_unlock(&r->lock);
  }
  closedir(d);
}

/* Recomputes all_ready after the table changed. Write lock held. */
static void recount(repo *r) {
  bool ready = true;
  for (size_t i = 0; i < r->n && ready; i++)
    ready = !r->entries[i].m || r->entries[i].m->state == MODEL_READY;
  atomic_store(&r->all_ready, ready);
}

/* Puts m in the table in place of what was there, which is released. */
static int publish(repo *r, const char *name, model *m) {
  pthread_rwlock_wrlock(&r->lock);
  entry *en = entry_for(r, name);
  model *old = NULL;
  if (en) {
    old = en->m;
    en->m = m;
  }
  recount(r);
  pthread_rwlock_unlock(&r->lock);
  if (!en) {
    model_release(m);
    return -ENOMEM;
  }
  if (old) {
    for (size_t i = 0; i < old->n_versions; i++)
      atomic_store(&old->versions[i]->state, MODEL_UNLOADING);
    model_release(old);
  }
  return 0;
}

void repo_load_all(repo *r) {
  scan_folders(r);
  pthread_rwlock_rdlock(&r->lock);
  size_t n = r->n;
  char **names = calloc(n ? n : 1, sizeof *names);
  for (size_t i = 0; names && i < n; i++)
    names[i] = strdup(r->entries[i].name);
  pthread_rwlock_unlock(&r->lock);
  for (size_t i = 0; names && i < n; i++) {
    err e = {0};
    repo_load_model(r, names[i], &e);
    free(names[i]);
  }
  free(names);
  atomic_store(&r->scanned, true);
}

int repo_load_model(repo *r, const char *name, err *e) {
  if (!repo_valid_name(name)) return err_set(e, -EINVAL, "invalid model name '%s'", name);
  char path[PATH_MAX];
  if (!join(path, r->root, name)) return err_set(e, -ENAMETOOLONG, "model name is too long");
  if (!is_dir(path))
    return err_set(e, -ENOENT, "no model folder '%s' in the repository %s", name, r->root);
  pthread_mutex_lock(&r->load_lock);
  model *m = model_build(r, name);
  int rc;
  if (!m) {
    rc = err_set(e, -ENOMEM, "out of memory loading '%s'", name);
  } else {
    rc = m->state == MODEL_READY ? 0
                                 : err_set(e, -EINVAL, "failed to load '%s': %s", name, m->reason);
    int prc = publish(r, name, m);
    if (prc < 0 && rc == 0) rc = err_set(e, prc, "out of memory");
  }
  pthread_mutex_unlock(&r->load_lock);
  return rc;
}

int repo_unload_model(repo *r, const char *name, err *e) {
  if (!repo_valid_name(name)) return err_set(e, -EINVAL, "invalid model name '%s'", name);
  pthread_mutex_lock(&r->load_lock);
  pthread_rwlock_wrlock(&r->lock);
  bool found;
  size_t i = find(r, name, &found);
  model *old = found ? r->entries[i].m : NULL;
  if (found) r->entries[i].m = NULL;
  recount(r);
  pthread_rwlock_unlock(&r->lock);
  pthread_mutex_unlock(&r->load_lock);
  if (!found) return err_set(e, -ENOENT, "unknown model '%s'", name);
  if (old) {
    for (size_t k = 0; k < old->n_versions; k++)
      atomic_store(&old->versions[k]->state, MODEL_UNLOADING);
    log_info("model '%s' unloaded", name);
    model_release(old);
  }
  return 0;
}

model *repo_get_model(repo *r, const char *name) {
  pthread_rwlock_rdlock(&r->lock);
  bool found;
  size_t i = find(r, name, &found);
  model *m = found ? r->entries[i].m : NULL;
  if (m) atomic_fetch_add(&m->refs, 1);
  pthread_rwlock_unlock(&r->lock);
  return m;
}

model_version *repo_acquire(repo *r, const char *name, int64_t version, err *e) {
  pthread_rwlock_rdlock(&r->lock);
  bool found;
  size_t i = find(r, name, &found);
  model *m = found ? r->entries[i].m : NULL;
  model_version *mv = NULL;
  if (!found) {
    err_set(e, -ENOENT, "unknown model '%s'", name);
  } else if (!m) {
    err_set(e, -EAGAIN, "model '%s' is not loaded", name);
  } else if (version < 0) {
    for (size_t k = m->n_versions; k-- > 0 && !mv;)
      if (atomic_load(&m->versions[k]->state) == MODEL_READY) mv = m->versions[k];
    if (!mv) err_set(e, -EAGAIN, "model '%s' is unavailable: %s", name, m->reason);
  } else {
    model_version *v = NULL;
    for (size_t k = 0; k < m->n_versions && !v; k++)
      if (m->versions[k]->version == version) v = m->versions[k];
    if (!v)
      err_set(e, -ENOENT, "model '%s' has no version %lld", name, (long long)version);
    else if (atomic_load(&v->state) != MODEL_READY)
      err_set(e, -EAGAIN, "model '%s' version %lld is unavailable: %s", name, (long long)version,
              v->reason);
    else
      mv = v;
  }
  if (mv) atomic_fetch_add(&m->refs, 1);
  pthread_rwlock_unlock(&r->lock);
  return mv;
}

void repo_each(repo *r, bool rescan, void (*fn)(const char *name, model *m, void *arg), void *arg) {
  if (rescan) scan_folders(r);
  pthread_rwlock_rdlock(&r->lock);
  for (size_t i = 0; i < r->n; i++)
    fn(r->entries[i].name, r->entries[i].m, arg);
  pthread_rwlock_unlock(&r->lock);
}

bool repo_ready(repo *r) {
  if (!atomic_load(&r->scanned)) return false;
  return !r->opt.strict_readiness || atomic_load(&r->all_ready);
}
