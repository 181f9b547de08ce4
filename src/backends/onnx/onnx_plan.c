/* backends/onnx/onnx_plan.c: plans and the instances that run them.
 *
 * A plan fixes, for one signature of graph-input shapes, everything execute
 * would otherwise redo: every tensor's shape (inferred node by node from the
 * actual inputs, so dynamic dimensions are resolved), the values computable
 * from shapes alone (Shape and arithmetic on it, evaluated here and kept in
 * the plan), which nodes are mere views (Reshape, Flatten, Identity: no step
 * at all), and where each intermediate lives: an offset into one workspace,
 * shared by tensors whose lifetimes do not overlap. A graph output is
 * computed straight into the memory inferd allocates for it, unless it is a
 * constant, a graph input, or shares its memory with another output; those
 * are copied.
 *
 * Operators with per-plan state (onnx_op.plan: a oneDNN primitive made for
 * these shapes) get it made here and freed with the plan; the scratch
 * memory they ask for is one more interval of the workspace, alive during
 * their step only. A node that adds a residual into its result
 * (ONNX_POST_SUM) gets its output placed over that input's memory when the
 * input dies at that step, so that the sum happens in place.
 *
 * With INFERD_ONNX_PROFILE set in the environment, an instance times its
 * steps and, when it is freed, prints to stderr the time spent per
 * operator type (the op_type of fused nodes names the fusion), the way
 * ONNX Runtime's profiler is used to find where a model's time goes.
 *
 * An instance keeps the plans of the last ONNX_PLAN_CACHE signatures it met
 * and one workspace sized for the largest of them, so that execute, once a
 * signature has been seen, allocates nothing but the outputs inferd asks
 * for through exec->alloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "onnx_dnnl.h"
#include "onnx_graph.h"

#define ONNX_PLAN_CACHE 16
/* Largest output (bytes) of a node evaluated at planning time because its
 * inputs are known then; bigger results are left to run as steps. */
#define ONNX_PLAN_EVAL_MAX 65536
/* Most elements of a key input (one whose values decide shapes). */
#define ONNX_KEY_MAX 64

typedef struct onnx_step {
  const onnx_node *node;
  const onnx_tensor **in;
  onnx_tensor **out;
  onnx_plan_req req;   /* what node->op->plan made; zero when it has none */
  int64_t scratch_off; /* of req.scratch_bytes in the workspace; -1 when none */
  void *scratch;       /* bound into the workspace */
} onnx_step;

/* How a value's memory is found. */
enum kind {
  K_NONE = 0, /* not computed (a node that was pruned) */
  K_CONST,    /* model constant, or known at planning time: fixed data */
  K_INPUT,    /* a graph input: the request's memory */
  K_STEP,     /* produced by a step: workspace or an output buffer */
};

/* ws_off of a root that lives in an output buffer. */
#define WS_OUTPUT (-2)

typedef struct view_list {
  int n;
  int *v; /* values whose data is this memory */
} view_list;

struct onnx_plan {
  arena *arena;
  size_t n_inputs;
  int *ndim;                       /* key: per model input */
  int64_t (*shape)[ONNX_MAX_DIMS]; /* key */
  void **key_data;                 /* key: the data of key inputs (NULL for others) */
  size_t n_values;
  onnx_tensor *t;
  int *root;       /* the value whose memory v is (v itself unless a view) */
  int64_t *ws_off; /* per root: offset in the workspace; -1 elsewhere, WS_OUTPUT */
  size_t n_steps;
  onnx_step *steps;
  size_t ws_size;
  size_t state_bytes;   /* held by the steps' states */
  view_list *in_views;  /* per model input */
  bool *direct;         /* per graph output: computed in the output buffer */
  view_list *out_views; /* per graph output when direct */
};

/* ---- planning ----------------------------------------------------------- */

typedef struct interval {
  int v; /* the value, or -1 - step for a step's scratch */
  int64_t def, last;
  size_t size;
  size_t off;
} interval;

static int by_size(const void *a, const void *b) {
  const interval *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->def < y->def ? -1 : x->def > y->def;
}

static int by_off(const void *a, const void *b) {
  const interval *x = *(const interval *const *)a, *y = *(const interval *const *)b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Places the intervals (lifetimes in steps, sizes in bytes) in one buffer
 * so that no two that are alive at once overlap, largest first, each at the
 * lowest offset that fits among those placed before it whose lifetimes
 * meet it ("greedy by size", as TensorFlow Lite's arena planner). Returns
 * the buffer size. */
static int place(interval *it, size_t n, size_t *total, err *e) {
  qsort(it, n, sizeof *it, by_size);
  interval **live = malloc((n + 1) * sizeof *live);
  if (!live) return err_set(e, -ENOMEM, "out of memory");
  size_t end = 0;
  for (size_t i = 0; i < n; i++) {
    size_t nl = 0;
    for (size_t j = 0; j < i; j++)
      if (it[j].def <= it[i].last && it[i].def <= it[j].last) live[nl++] = &it[j];
    qsort(live, nl, sizeof *live, by_off);
    size_t off = 0;
    for (size_t j = 0; j < nl; j++) {
      if (live[j]->off >= off + it[i].size) break; /* the gap before it fits */
      if (live[j]->off + live[j]->size > off) off = live[j]->off + live[j]->size;
    }
    it[i].off = off;
    if (off + it[i].size > end) end = off + it[i].size;
  }
  free(live);
  *total = end;
  return 0;
}

static int views_of(onnx_plan *p, int r, view_list *l, err *e) {
  int n = 0;
  for (size_t v = 0; v < p->n_values; v++)
    n += p->root[v] == r;
  l->v = arena_alloc(p->arena, (size_t)n * sizeof *l->v + 1);
  if (!l->v) return err_set(e, -ENOMEM, "out of memory");
  l->n = 0;
  for (size_t v = 0; v < p->n_values; v++)
    if (p->root[v] == r) l->v[l->n++] = (int)v;
  return 0;
}

/* Sets the inputs of the graph from shapes, checking them against what the
 * model declares. */
static int plan_inputs(onnx_plan *p, const onnx_model *m, const int *ndims,
                       const int64_t (*shapes)[ONNX_MAX_DIMS], const void *const *key_data,
                       enum kind *kind, err *e) {
  for (size_t k = 0; k < m->n_inputs; k++) {
    int v = m->inputs[k];
    const onnx_tensor *decl = &m->values[v].t;
    onnx_tensor *t = &p->t[v];
    bool ok = ndims[k] == decl->ndim;
    for (int d = 0; ok && d < ndims[k]; d++)
      ok = shapes[k][d] >= 0 && (decl->dims[d] < 0 || decl->dims[d] == shapes[k][d]);
    t->dtype = decl->dtype;
    onnx_tensor_set_shape(t, ndims[k], shapes[k]);
    if (!ok || t->count < 0) {
      char a[96], b[96];
      shape_format(a, sizeof a, shapes[k], ndims[k]);
      return err_set(e, -EINVAL, "input '%s' has shape %s; the model expects %s", m->values[v].name,
                     a, onnx_shape_str(b, decl));
    }
    p->ndim[k] = ndims[k];
    memcpy(p->shape[k], shapes[k], sizeof p->shape[k]);
    kind[v] = K_INPUT;
    if (!m->key_input[k] || !key_data) continue;
    /* Its values decide shapes: they become a constant of this plan. */
    size_t bytes = onnx_tensor_bytes(t);
    if (t->count > ONNX_KEY_MAX)
      return err_set(e, -EINVAL, "input '%s' decides shapes and may have at most %d elements",
                     m->values[v].name, ONNX_KEY_MAX);
    if (!(p->key_data[k] = t->data = arena_alloc_aligned(p->arena, bytes + 1, 64)))
      return err_set(e, -ENOMEM, "out of memory");
    if (bytes) memcpy(t->data, key_data[k], bytes);
    kind[v] = K_CONST;
  }
  return 0;
}

/* Infers node n's outputs; evaluates it now when its inputs are known (or
 * it reads only their shapes) and its results are small. Returns 1 when it
 * was evaluated, 0 when it must run as a step. */
static int plan_node(onnx_plan *p, const onnx_model *m, const onnx_node *n, const onnx_tensor **in,
                     onnx_tensor **out, enum kind *kind, err *e) {
  char label[200], shape[96];
  bool known = n->n_in > 0 || (n->op->flags & ONNX_OP_SHAPE_ONLY);
  for (int k = 0; k < n->n_in; k++) {
    int v = n->in[k];
    in[k] = v >= 0 ? &p->t[v] : NULL;
    if (v >= 0 && kind[v] != K_CONST && !(n->op->flags & ONNX_OP_SHAPE_ONLY)) known = false;
  }
  for (int k = 0; k < n->n_out; k++) {
    int v = n->out[k];
    out[k] = v >= 0 ? &p->t[v] : NULL;
    if (v >= 0) memset(out[k], 0, sizeof *out[k]);
  }
  int rc = n->op->infer(n, in, out, e);
  if (rc) {
    err_prefix(e, "%s: ", onnx_node_label(label, n));
    return rc;
  }
  size_t bytes = 0;
  for (int k = 0; k < n->n_out; k++) {
    if (!out[k]) continue;
    if (dtype_size(out[k]->dtype) == 0)
      return err_set(e, -ENOTSUP, "%s: output '%s' would be of type %s, which is not supported",
                     onnx_node_label(label, n), m->values[n->out[k]].name,
                     dtype_name(out[k]->dtype));
    if (out[k]->ndim < 0 || out[k]->ndim > ONNX_MAX_DIMS || out[k]->count < 0)
      return err_set(e, -EINVAL, "%s: inferred an invalid shape %s", onnx_node_label(label, n),
                     onnx_shape_str(shape, out[k]));
    bytes += onnx_tensor_bytes(out[k]);
  }
  if (!known || bytes > ONNX_PLAN_EVAL_MAX) return 0;
  for (int k = 0; k < n->n_out; k++)
    if (out[k] &&
        !(out[k]->data = arena_alloc_aligned(p->arena, onnx_tensor_bytes(out[k]) + 1, 64)))
      return err_set(e, -ENOMEM, "out of memory");
  rc = n->op->run(n, in, out, e);
  if (rc) {
    err_prefix(e, "%s: ", onnx_node_label(label, n));
    return rc;
  }
  for (int k = 0; k < n->n_out; k++)
    if (n->out[k] >= 0) kind[n->out[k]] = K_CONST;
  return 1;
}

/* A step that adds input k into its result (ONNX_POST_SUM) reads that
 * input only as the result's starting value: when the input's memory is a
 * workspace tensor that dies at this step, of the result's size, the
 * result takes it over and the step sums in place instead of copying. */
static void sum_in_place(onnx_plan *p, const onnx_step *st, int64_t s, const enum kind *kind,
                         int64_t *last) {
  const onnx_node *n = st->node;
  int k = -1;
  for (int i = 0; i < n->n_post; i++)
    if (n->post[i].kind == ONNX_POST_SUM) k = n->post[i].input;
  if (k < 0 || k >= n->n_in || n->in[k] < 0 || n->out[0] < 0) return;
  int r = p->root[n->in[k]], o = p->root[n->out[0]];
  if (r == o || kind[r] != K_STEP || kind[o] != K_STEP || last[r] != s) return;
  if (p->ws_off[r] == WS_OUTPUT || p->ws_off[o] == WS_OUTPUT) return;
  if (onnx_tensor_bytes(&p->t[r]) != onnx_tensor_bytes(&p->t[o])) return;
  for (int i = 0; i < n->n_in; i++) /* the input must not also be read as another operand */
    if (i != k && n->in[i] >= 0 && p->root[n->in[i]] == r) return;
  for (size_t v = 0; v < p->n_values; v++)
    if (p->root[v] == o) p->root[v] = r;
  last[r] = last[o];
}

static int plan_build(onnx_plan *p, const onnx_model *m, const int *ndims,
                      const int64_t (*shapes)[ONNX_MAX_DIMS], const void *const *key_data,
                      enum kind *kind, int64_t *def, int64_t *last, err *e) {
  size_t nv = m->n_values;
  arena *a = p->arena;
  p->n_values = nv;
  p->n_inputs = m->n_inputs;
  p->t = arena_calloc(a, nv + 1, sizeof *p->t);
  p->root = arena_calloc(a, nv + 1, sizeof *p->root);
  p->ws_off = arena_calloc(a, nv + 1, sizeof *p->ws_off);
  p->steps = arena_calloc(a, m->n_nodes + 1, sizeof *p->steps);
  p->ndim = arena_calloc(a, m->n_inputs + 1, sizeof *p->ndim);
  p->shape = arena_calloc(a, m->n_inputs + 1, sizeof *p->shape);
  p->key_data = arena_calloc(a, m->n_inputs + 1, sizeof *p->key_data);
  p->in_views = arena_calloc(a, m->n_inputs + 1, sizeof *p->in_views);
  p->direct = arena_calloc(a, m->n_outputs + 1, sizeof *p->direct);
  p->out_views = arena_calloc(a, m->n_outputs + 1, sizeof *p->out_views);
  if (!p->t || !p->root || !p->ws_off || !p->steps || !p->ndim || !p->shape || !p->key_data ||
      !p->in_views || !p->direct || !p->out_views)
    return err_set(e, -ENOMEM, "out of memory");
  for (size_t v = 0; v < nv; v++) {
    p->root[v] = (int)v;
    p->ws_off[v] = -1;
    def[v] = last[v] = -1;
    if (m->values[v].is_const) {
      p->t[v] = m->values[v].t;
      kind[v] = K_CONST;
    }
  }
  int rc = plan_inputs(p, m, ndims, shapes, key_data, kind, e);
  if (rc) return rc;

  /* Shapes, known values, views and steps, in topological order. */
  for (size_t i = 0; i < m->n_nodes; i++) {
    const onnx_node *n = &m->nodes[i];
    const onnx_tensor **in = arena_alloc(a, ((size_t)n->n_in + 1) * sizeof *in);
    onnx_tensor **out = arena_alloc(a, ((size_t)n->n_out + 1) * sizeof *out);
    if (!in || !out) return err_set(e, -ENOMEM, "out of memory");
    rc = plan_node(p, m, n, in, out, kind, e);
    if (rc < 0) return rc;
    if (rc == 1) continue;
    if ((n->op->flags & ONNX_OP_ALIAS) && n->in[0] >= 0) {
      int r = p->root[n->in[0]];
      p->root[n->out[0]] = r;
      kind[n->out[0]] = kind[r];
      if (kind[r] == K_CONST) p->t[n->out[0]].data = p->t[r].data;
      continue;
    }
    int64_t s = (int64_t)p->n_steps;
    onnx_step *st = &p->steps[p->n_steps++];
    *st = (onnx_step){.node = n, .in = in, .out = out, .scratch_off = -1};
    st->req.threads = m->threads;
    if (n->op->plan) {
      if ((rc = n->op->plan(n, in, (const onnx_tensor *const *)out, &st->req, e))) {
        char label[200];
        err_prefix(e, "%s: ", onnx_node_label(label, n));
        return rc;
      }
      p->state_bytes += st->req.state_bytes;
    }
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] >= 0) last[p->root[n->in[k]]] = s;
    for (int k = 0; k < n->n_out; k++)
      if (n->out[k] >= 0) {
        kind[n->out[k]] = K_STEP;
        def[n->out[k]] = last[n->out[k]] = s;
      }
  }

  /* Outputs: alive to the end; computed in place when the memory is a
   * step's and no other output has claimed it. */
  int64_t end = (int64_t)p->n_steps;
  for (size_t j = 0; j < m->n_outputs; j++) {
    int v = m->outputs[j];
    if (!m->values[v].is_output) continue;
    int r = p->root[v];
    if (kind[r] == K_NONE)
      return err_set(e, -EINVAL, "output '%s' is not computed", m->values[v].name);
    last[r] = end;
    if (kind[r] == K_STEP && p->ws_off[r] != WS_OUTPUT) {
      p->direct[j] = true;
      p->ws_off[r] = WS_OUTPUT;
      if ((rc = views_of(p, r, &p->out_views[j], e))) return rc;
    }
  }

  for (size_t s = 0; s < p->n_steps; s++)
    sum_in_place(p, &p->steps[s], (int64_t)s, kind, last);

  /* Workspace for every other step-made root, and the steps' scratch. */
  size_t n_it = p->n_steps;
  for (size_t v = 0; v < nv; v++)
    n_it += kind[v] == K_STEP && p->root[v] == (int)v;
  interval *it = calloc(n_it + 1, sizeof *it);
  if (!it) return err_set(e, -ENOMEM, "out of memory");
  n_it = 0;
  for (size_t v = 0; v < nv; v++)
    if (kind[v] == K_STEP && p->root[v] == (int)v && p->ws_off[v] != WS_OUTPUT)
      it[n_it++] =
          (interval){(int)v, def[v], last[v], (onnx_tensor_bytes(&p->t[v]) + 63) & ~(size_t)63, 0};
  for (size_t s = 0; s < p->n_steps; s++)
    if (p->steps[s].req.scratch_bytes)
      it[n_it++] = (interval){-1 - (int)s, (int64_t)s, (int64_t)s,
                              (p->steps[s].req.scratch_bytes + 63) & ~(size_t)63, 0};
  rc = place(it, n_it, &p->ws_size, e);
  for (size_t i = 0; i < n_it && !rc; i++) {
    if (it[i].v >= 0)
      p->ws_off[it[i].v] = (int64_t)it[i].off;
    else
      p->steps[-1 - it[i].v].scratch_off = (int64_t)it[i].off;
  }
  free(it);
  if (rc) return rc;

  for (size_t k = 0; k < m->n_inputs; k++)
    if ((rc = views_of(p, m->inputs[k], &p->in_views[k], e))) return rc;
  for (size_t v = 0; v < nv; v++) /* views of constants share their data now */
    if (kind[p->root[v]] == K_CONST) p->t[v].data = p->t[p->root[v]].data;
  return 0;
}

int onnx_plan_build(const onnx_model *m, const int *ndims, const int64_t (*shapes)[ONNX_MAX_DIMS],
                    const void *const *key_data, onnx_plan **out, err *e) {
  *out = NULL;
  onnx_plan *p = calloc(1, sizeof *p);
  enum kind *kind = calloc(m->n_values + 1, sizeof *kind);
  int64_t *def = calloc(m->n_values + 1, sizeof *def);
  int64_t *last = calloc(m->n_values + 1, sizeof *last);
  int rc;
  if (!p || !kind || !def || !last || !(p->arena = arena_create(16384)))
    rc = err_set(e, -ENOMEM, "out of memory");
  else
    rc = plan_build(p, m, ndims, shapes, key_data, kind, def, last, e);
  free(kind);
  free(def);
  free(last);
  if (rc) {
    onnx_plan_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void onnx_plan_free(onnx_plan *p) {
  if (!p) return;
  for (size_t s = 0; p->steps && s < p->n_steps; s++)
    if (p->steps[s].req.state) p->steps[s].node->op->plan_free(p->steps[s].req.state);
  if (p->arena) arena_destroy(p->arena);
  free(p);
}

size_t onnx_plan_workspace(const onnx_plan *p) { return p->ws_size; }

const onnx_tensor *onnx_plan_tensor(const onnx_plan *p, int v) { return &p->t[v]; }

/* Points every workspace tensor and scratch of p into ws. */
static void plan_bind(onnx_plan *p, unsigned char *ws) {
  for (size_t v = 0; v < p->n_values; v++) {
    int64_t off = p->ws_off[p->root[v]];
    if (off >= 0) p->t[v].data = ws + off;
  }
  for (size_t s = 0; s < p->n_steps; s++)
    p->steps[s].scratch = p->steps[s].scratch_off >= 0 ? ws + p->steps[s].scratch_off : NULL;
}

size_t onnx_plan_state_bytes(const onnx_plan *p) { return p->state_bytes; }

size_t onnx_plan_steps(const onnx_plan *p) { return p->n_steps; }

const onnx_node *onnx_plan_step_node(const onnx_plan *p, size_t s) { return p->steps[s].node; }

bool onnx_plan_shares(const onnx_plan *p, int v, int w) { return p->root[v] == p->root[w]; }

int onnx_run_once(const onnx_node *n, const onnx_tensor *const *in, onnx_tensor *const *out,
                  err *e) {
  onnx_plan_req req = {.threads = 1};
  onnx_step_ctx ctx = {.threads = 1};
  int rc = n->op->plan ? n->op->plan(n, in, (const onnx_tensor *const *)out, &req, e) : 0;
  if (rc) return rc;
  ctx.state = req.state;
  ctx.scratch_bytes = req.scratch_bytes;
  if (req.scratch_bytes &&
      !(ctx.scratch = aligned_alloc(64, (req.scratch_bytes + 63) & ~(size_t)63)))
    rc = err_set(e, -ENOMEM, "out of memory");
  if (!rc) rc = onnx_dnnl_stream_new(&ctx.stream, e);
  if (!rc) rc = n->op->run_step(n, &ctx, in, out, e);
  onnx_dnnl_stream_free(ctx.stream);
  free(ctx.scratch);
  if (req.state) n->op->plan_free(req.state);
  return rc;
}

/* ---- instances ---------------------------------------------------------- */

struct onnx_instance {
  onnx_model *m;
  unsigned char *ws;
  size_t ws_cap;
  size_t n_plans;
  onnx_plan *plans[ONNX_PLAN_CACHE];
  uint64_t used[ONNX_PLAN_CACHE];
  uint64_t clock;
  size_t last;                 /* the plan used last */
  size_t bytes;                /* counted in m->instance_bytes */
  bool counted;                /* in m->n_instances */
  const inferd_tensor **bound; /* per model input, during a run */
  void *stream;                /* oneDNN's, for the steps' primitives */
  double *prof;                /* INFERD_ONNX_PROFILE: seconds per model node */
  uint64_t prof_runs;
};

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints the profile: time per op_type, most first; with
 * INFERD_ONNX_PROFILE=nodes, then each node's in graph order. */
static void profile_print(const onnx_instance *in) {
  const onnx_model *m = in->m;
  size_t n = m->n_nodes, k = 0;
  const char **type = calloc(n + 1, sizeof *type);
  double *t = calloc(n + 1, sizeof *t), total = 0;
  int *count = calloc(n + 1, sizeof *count);
  if (!type || !t || !count) goto done;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < k && strcmp(type[j], m->nodes[i].op_type) != 0)
      j++;
    if (j == k) type[k++] = m->nodes[i].op_type;
    t[j] += in->prof[i];
    count[j]++;
    total += in->prof[i];
  }
  fprintf(stderr, "onnx profile: %llu runs, %.3f ms per run\n", (unsigned long long)in->prof_runs,
          in->prof_runs ? total * 1e3 / (double)in->prof_runs : 0);
  for (size_t done = 0; done < k; done++) {
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
      if (t[j] > t[best]) best = j;
    fprintf(stderr, "  %8.3f ms %5.1f%%  %3d x %s\n",
            in->prof_runs ? t[best] * 1e3 / (double)in->prof_runs : 0,
            total > 0 ? 100 * t[best] / total : 0, count[best], type[best]);
    t[best] = -1;
  }
  const char *how = getenv("INFERD_ONNX_PROFILE");
  if (how && strcmp(how, "nodes") == 0)
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, "  %8.3f ms  %s (%s)\n",
              in->prof_runs ? in->prof[i] * 1e3 / (double)in->prof_runs : 0, m->nodes[i].name,
              m->nodes[i].op_type);
done:
  free(type);
  free(t);
  free(count);
}

static void account(onnx_instance *in) {
  size_t bytes = in->ws_cap;
  for (size_t i = 0; i < in->n_plans; i++)
    bytes += arena_used(in->plans[i]->arena) + in->plans[i]->state_bytes;
  atomic_fetch_add(&in->m->instance_bytes, bytes);
  atomic_fetch_sub(&in->m->instance_bytes, in->bytes);
  in->bytes = bytes;
}

/* Grows the workspace to at least size and re-points every plan into it. */
static int reserve(onnx_instance *in, size_t size, err *e) {
  if (size <= in->ws_cap && in->ws) return 0;
  size_t cap = (size + 63) & ~(size_t)63;
  unsigned char *ws = aligned_alloc(64, cap ? cap : 64);
  if (!ws) return err_set(e, -ENOMEM, "out of memory for a %zu-byte workspace", cap);
  free(in->ws);
  in->ws = ws;
  in->ws_cap = cap;
  for (size_t i = 0; i < in->n_plans; i++)
    plan_bind(in->plans[i], ws);
  return 0;
}

int onnx_instance_new(onnx_model *m, onnx_instance **out, err *e) {
  onnx_instance *in = calloc(1, sizeof *in);
  if (!in || !(in->bound = calloc(m->n_inputs + 1, sizeof *in->bound))) {
    free(in);
    return err_set(e, -ENOMEM, "out of memory");
  }
  in->m = m;
  if (getenv("INFERD_ONNX_PROFILE")) in->prof = calloc(m->n_nodes + 1, sizeof *in->prof);
  int rc = onnx_dnnl_stream_new(&in->stream, e);
  if (!rc) rc = reserve(in, m->instance_estimate, e);
  if (rc) {
    onnx_instance_free(in);
    return rc;
  }
  atomic_fetch_add(&m->n_instances, 1);
  in->counted = true;
  account(in);
  *out = in;
  return 0;
}

void onnx_instance_free(onnx_instance *in) {
  if (!in) return;
  if (in->prof) profile_print(in);
  free(in->prof);
  for (size_t i = 0; i < in->n_plans; i++)
    onnx_plan_free(in->plans[i]);
  atomic_fetch_sub(&in->m->instance_bytes, in->bytes);
  if (in->counted) atomic_fetch_sub(&in->m->n_instances, 1);
  free(in->ws);
  free(in->bound);
  onnx_dnnl_stream_free(in->stream);
  free(in);
}

const onnx_model *onnx_instance_model(const onnx_instance *in) { return in->m; }

static bool plan_matches(const onnx_plan *p, const inferd_tensor *const *bound) {
  for (size_t k = 0; k < p->n_inputs; k++) {
    if (bound[k]->ndim != p->ndim[k]) return false;
    for (int d = 0; d < p->ndim[k]; d++)
      if (bound[k]->shape[d] != p->shape[k][d]) return false;
    if (p->key_data[k] && memcmp(p->key_data[k], bound[k]->data, bound[k]->byte_size) != 0)
      return false;
  }
  return true;
}

/* The plan for the bound inputs' shapes: the cached one, or a new one that
 * replaces the least recently used. */
static int plan_for(onnx_instance *in, onnx_plan **out, err *e) {
  onnx_model *m = in->m;
  in->clock++;
  if (in->n_plans && plan_matches(in->plans[in->last], in->bound)) {
    in->used[in->last] = in->clock;
    *out = in->plans[in->last];
    return 0;
  }
  for (size_t i = 0; i < in->n_plans; i++)
    if (plan_matches(in->plans[i], in->bound)) {
      in->last = i;
      in->used[i] = in->clock;
      *out = in->plans[i];
      return 0;
    }
  int ndims[m->n_inputs + 1];
  const void *key_data[m->n_inputs + 1];
  int64_t(*shapes)[ONNX_MAX_DIMS] = calloc(m->n_inputs + 1, sizeof *shapes);
  if (!shapes) return err_set(e, -ENOMEM, "out of memory");
  for (size_t k = 0; k < m->n_inputs; k++) {
    ndims[k] = in->bound[k]->ndim;
    memcpy(shapes[k], in->bound[k]->shape, sizeof shapes[k]);
    key_data[k] = in->bound[k]->data;
  }
  onnx_plan *p = NULL;
  int rc = onnx_plan_build(m, ndims, (const int64_t(*)[ONNX_MAX_DIMS])shapes, key_data, &p, e);
  free(shapes);
  if (rc) return rc;
  if ((rc = reserve(in, p->ws_size, e))) {
    onnx_plan_free(p);
    return rc;
  }
  plan_bind(p, in->ws);
  size_t slot = in->n_plans;
  if (slot == ONNX_PLAN_CACHE) {
    slot = 0;
    for (size_t i = 1; i < ONNX_PLAN_CACHE; i++)
      if (in->used[i] < in->used[slot]) slot = i;
    onnx_plan_free(in->plans[slot]);
  } else {
    in->n_plans++;
  }
  in->plans[slot] = p;
  in->used[slot] = in->clock;
  in->last = slot;
  account(in);
  *out = p;
  return 0;
}

/* Matches exec's inputs to the model's: by position when the names agree
 * (always, from inferd), else by name. */
static int bind_inputs(onnx_instance *in, const inferd_exec *x, err *e) {
  onnx_model *m = in->m;
  if (x->n_inputs != m->n_exec_in)
    return err_set(e, -EINVAL, "%zu inputs given; the model takes %zu", x->n_inputs, m->n_exec_in);
  memset(in->bound, 0, m->n_inputs * sizeof *in->bound);
  for (size_t i = 0; i < x->n_inputs; i++) {
    const inferd_tensor *t = &x->inputs[i];
    int k = m->exec_in[i];
    if (t->name && strcmp(t->name, m->values[m->inputs[k]].name) != 0) {
      k = -1;
      for (size_t j = 0; j < m->n_inputs; j++)
        if (strcmp(t->name, m->values[m->inputs[j]].name) == 0) k = (int)j;
      if (k < 0) return err_set(e, -EINVAL, "unexpected input '%s'", t->name);
    }
    const onnx_value *val = &m->values[m->inputs[k]];
    if (in->bound[k]) return err_set(e, -EINVAL, "input '%s' is given twice", val->name);
    if (t->dtype != val->t.dtype)
      return err_set(e, -EINVAL, "input '%s' has type %s; the model expects %s", val->name,
                     dtype_name(t->dtype), dtype_name(val->t.dtype));
    int64_t count =
        t->ndim >= 0 && t->ndim <= ONNX_MAX_DIMS ? shape_elements(t->shape, t->ndim) : -1;
    if (count < 0 || (size_t)count * dtype_size(t->dtype) != t->byte_size || (count && !t->data))
      return err_set(e, -EINVAL, "input '%s' has %zu bytes, which does not match its shape",
                     val->name, t->byte_size);
    in->bound[k] = t;
  }
  for (size_t k = 0; k < m->n_inputs; k++)
    if (!in->bound[k])
      return err_set(e, -EINVAL, "input '%s' is missing", m->values[m->inputs[k]].name);
  return 0;
}

int onnx_instance_run(onnx_instance *in, inferd_exec *x, err *e) {
  onnx_model *m = in->m;
  onnx_plan *p = NULL;
  int rc = bind_inputs(in, x, e);
  if (rc || (rc = plan_for(in, &p, e))) return rc;

  for (size_t k = 0; k < m->n_inputs; k++) {
    const view_list *l = &p->in_views[k];
    for (int i = 0; i < l->n && !p->key_data[k]; i++)
      p->t[l->v[i]].data = in->bound[k]->data;
  }
  if (x->n_outputs != m->n_exec_out)
    return err_set(e, -EINVAL, "%zu outputs given; the model has %zu", x->n_outputs, m->n_exec_out);
  for (size_t j = 0; j < x->n_outputs; j++) {
    int g = m->exec_out[j];
    const onnx_tensor *t = &p->t[m->outputs[g]];
    inferd_tensor *o = &x->outputs[j];
    size_t bytes = onnx_tensor_bytes(t);
    o->ndim = t->ndim;
    memcpy(o->shape, t->dims, (size_t)t->ndim * sizeof t->dims[0]);
    o->byte_size = bytes;
    o->data = NULL;
    if (bytes && !(o->data = x->alloc(x, bytes)))
      return err_set(e, -ENOMEM, "out of memory for output '%s' (%zu bytes)", o->name, bytes);
    if (p->direct[g]) {
      const view_list *l = &p->out_views[g];
      for (int i = 0; i < l->n; i++)
        p->t[l->v[i]].data = o->data;
    }
  }

  if (in->prof) in->prof_runs++;
  for (size_t s = 0; s < p->n_steps; s++) {
    const onnx_step *st = &p->steps[s];
    const onnx_node *n = st->node;
    double t0 = in->prof ? seconds() : 0;
    if (n->op->run_step) {
      onnx_step_ctx ctx = {.state = st->req.state,
                           .scratch = st->scratch,
                           .scratch_bytes = st->req.scratch_bytes,
                           .stream = in->stream,
                           .threads = m->threads};
      rc = n->op->run_step(n, &ctx, st->in, st->out, e);
    } else {
      rc = n->op->run(n, st->in, st->out, e);
    }
    if (in->prof) in->prof[n - m->nodes] += seconds() - t0;
    if (rc) {
      char label[200];
      err_prefix(e, "%s: ", onnx_node_label(label, st->node));
      return rc;
    }
  }

  for (size_t j = 0; j < x->n_outputs; j++) {
    int g = m->exec_out[j];
    inferd_tensor *o = &x->outputs[j];
    if (!p->direct[g] && o->byte_size && (!x->output_wanted || x->output_wanted[j]))
      memcpy(o->data, p->t[m->outputs[g]].data, o->byte_size);
  }
  return 0;
}
