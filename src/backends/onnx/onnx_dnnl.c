/* backends/onnx/onnx_dnnl.c: the oneDNN plumbing operators share (see
 * onnx_dnnl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_dnnl.h"

/* ---- threads ------------------------------------------------------------ */

/* Kernels of this backend share oneDNN's OpenMP thread team: a second pool
 * of threads would spin against OpenMP's between steps. The team is
 * reached through libgomp's entry points, found at run time (libgomp is
 * loaded as a dependency of libdnnl), as onnx_backend.c finds
 * omp_set_num_threads; without them the work runs on the calling thread. */
static void (*gomp_parallel)(void (*fn)(void *), void *data, unsigned threads, unsigned flags);
static int (*omp_thread_num)(void), (*omp_num_threads)(void);
static pthread_once_t gomp_once = PTHREAD_ONCE_INIT;

static void gomp_resolve(void) {
  void *p = dlsym(RTLD_DEFAULT, "GOMP_parallel"), *t = dlsym(RTLD_DEFAULT, "omp_get_thread_num"),
       *n = dlsym(RTLD_DEFAULT, "omp_get_num_threads");
  if (!p || !t || !n) return;
  memcpy(&omp_thread_num, &t, sizeof t);
  memcpy(&omp_num_threads, &n, sizeof n);
  memcpy(&gomp_parallel, &p, sizeof p);
}

typedef struct par_job {
  onnx_range_fn fn;
  void *arg;
  int64_t n;
} par_job;

/* Each member of the team takes its contiguous share of [0, n). */
static void par_body(void *p) {
  const par_job *j = p;
  int64_t t = omp_thread_num(), nt = omp_num_threads();
  int64_t b = j->n * t / nt, e = j->n * (t + 1) / nt;
  if (b < e) j->fn(j->arg, b, e, (int)t);
}

void onnx_parallel(int threads, int64_t n, onnx_range_fn fn, void *arg) {
  if (n <= 0) return;
  if (threads > n) threads = (int)n;
  if (threads > 1) pthread_once(&gomp_once, gomp_resolve);
  if (threads <= 1 || !gomp_parallel) {
    fn(arg, 0, n, 0);
    return;
  }
  par_job j = {fn, arg, n};
  gomp_parallel(par_body, &j, (unsigned)threads, 0);
}

/* ---- engine and streams ------------------------------------------------- */

/* One engine for the process: it is only a handle on the CPU, and every
 * primitive and memory object must name the same one to work together. It
 * lives until the process ends. */
static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_make(void) {
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

dnnl_engine_t onnx_dnnl_engine(void) {
  pthread_once(&engine_once, engine_make);
  return engine;
}

int onnx_dnnl_check(dnnl_status_t st, const char *what, err *e) {
  if (st == dnnl_success) return 0;
  if (st == dnnl_out_of_memory) return err_set(e, -ENOMEM, "%s: out of memory", what);
  if (st == dnnl_unimplemented)
    return err_set(e, -ENOTSUP, "%s: oneDNN has no implementation for this case", what);
  return err_set(e, -EINVAL, "%s: oneDNN status %d", what, (int)st);
}

int onnx_dnnl_stream_new(void **stream, err *e) {
  dnnl_engine_t eng = onnx_dnnl_engine();
  if (!eng) return err_set(e, -EIO, "oneDNN could not make a CPU engine");
  dnnl_stream_t s;
  int rc = onnx_dnnl_check(dnnl_stream_create(&s, eng, dnnl_stream_default_flags), "stream", e);
  if (rc) return rc;
  *stream = s;
  return 0;
}

void onnx_dnnl_stream_free(void *stream) {
  if (stream) dnnl_stream_destroy(stream);
}

void onnx_dnnl_cache_clear(void) {
  int cap = 0;
  if (dnnl_get_primitive_cache_capacity(&cap) != dnnl_success || cap <= 0) return;
  dnnl_set_primitive_cache_capacity(0);
  dnnl_set_primitive_cache_capacity(cap);
}

/* ---- descriptors -------------------------------------------------------- */

dnnl_data_type_t onnx_dnnl_dtype(inferd_dtype t) {
  switch (t) {
  case INFERD_TYPE_FP32: return dnnl_f32;
  case INFERD_TYPE_BF16: return dnnl_bf16;
  case INFERD_TYPE_FP16: return dnnl_f16;
  case INFERD_TYPE_INT32: return dnnl_s32;
  case INFERD_TYPE_INT8: return dnnl_s8;
  case INFERD_TYPE_UINT8: return dnnl_u8;
  default: return dnnl_data_type_undef;
  }
}

int onnx_dnnl_md(dnnl_memory_desc_t *md, int nd, const int64_t *dims, dnnl_data_type_t dt,
                 bool blocked, err *e) {
  static const dnnl_format_tag_t plain[] = {dnnl_a,    dnnl_a,     dnnl_ab,    dnnl_abc,
                                            dnnl_abcd, dnnl_abcde, dnnl_abcdef};
  if (nd < 1 || nd > 6) return err_set(e, -ENOTSUP, "oneDNN takes tensors of 1 to 6 dimensions");
  dnnl_dims_t d;
  for (int i = 0; i < nd; i++)
    d[i] = dims[i];
  dnnl_format_tag_t tag = plain[nd];
  if (blocked) {
    if (nd != 4) return err_set(e, -EINVAL, "only 4-D tensors are kept channel-blocked");
    tag = onnx_block_size() == 16 ? dnnl_nChw16c : dnnl_nChw8c;
  }
  return onnx_dnnl_check(dnnl_memory_desc_init_by_tag(md, nd, d, dt, tag), "memory descriptor", e);
}

/* ---- attributes --------------------------------------------------------- */

/* One elementwise post-operation as oneDNN's (algorithm, alpha, beta)
 * list; HardSigmoid takes two (a linear function, then a clip). */
static int post_eltwise(dnnl_post_ops_t po, const onnx_post_op *p, err *e) {
  dnnl_status_t st;
  switch (p->kind) {
  case ONNX_POST_RELU: st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_relu, 0, 0); break;
  case ONNX_POST_LEAKY_RELU:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_relu, p->alpha, 0);
    break;
  case ONNX_POST_CLIP:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_clip_v2, p->alpha, p->beta);
    break;
  case ONNX_POST_SIGMOID:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_logistic, 0, 0);
    break;
  case ONNX_POST_TANH: st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_tanh, 0, 0); break;
  case ONNX_POST_ELU:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_elu, p->alpha, 0);
    break;
  case ONNX_POST_HARD_SIGMOID:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_linear, p->alpha, p->beta);
    if (st == dnnl_success) st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_clip_v2, 0, 1);
    break;
  case ONNX_POST_HARD_SWISH:
    st = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_hardswish, 0, 0);
    break;
  case ONNX_POST_SUM: st = dnnl_post_ops_append_sum(po, 1.0f); break;
  default: return err_set(e, -EINVAL, "unknown post-operation %d", (int)p->kind);
  }
  return onnx_dnnl_check(st, "post-operation", e);
}

int onnx_dnnl_attr(dnnl_primitive_attr_t *attr, const onnx_post_op *post, int from, int to,
                   err *e) {
  dnnl_post_ops_t po = NULL;
  int rc = onnx_dnnl_check(dnnl_primitive_attr_create(attr), "attribute", e);
  if (rc) return rc;
  rc = onnx_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user),
                       "scratchpad mode", e);
  if (!rc && to > from) rc = onnx_dnnl_check(dnnl_post_ops_create(&po), "post-operations", e);
  for (int i = from; i < to && !rc; i++)
    rc = post_eltwise(po, &post[i], e);
  if (!rc && po) rc = onnx_dnnl_check(dnnl_primitive_attr_set_post_ops(*attr, po), "post-ops", e);
  if (po) dnnl_post_ops_destroy(po);
  if (rc) {
    dnnl_primitive_attr_destroy(*attr);
    *attr = NULL;
  }
  return rc;
}

/* ---- primitives --------------------------------------------------------- */

const dnnl_memory_desc_t *onnx_dnnl_arg_md(const_dnnl_primitive_desc_t pd, int kind) {
  return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kind);
}

const char *onnx_dnnl_impl(const_dnnl_primitive_desc_t pd) {
  const char *s = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
    return "?";
  return s;
}

/* Primitives made and not yet destroyed, for tests that check plans free
 * their state. */
static atomic_int live;

int onnx_dnnl_prims_live(void) { return atomic_load(&live); }

int onnx_dnnl_prim_init(onnx_dnnl_prim *p, const_dnnl_primitive_desc_t pd, const int *kinds, int n,
                        err *e) {
  memset(p, 0, sizeof *p);
  if (n > ONNX_DNNL_MAX_ARGS) return err_set(e, -EINVAL, "too many primitive arguments");
  dnnl_engine_t eng = onnx_dnnl_engine();
  int rc = onnx_dnnl_check(dnnl_primitive_create(&p->prim, pd), "primitive", e);
  if (!rc) atomic_fetch_add(&live, 1);
  for (int i = 0; i < n && !rc; i++) {
    const dnnl_memory_desc_t *md = onnx_dnnl_arg_md(pd, kinds[i]);
    if (!md) {
      rc = err_set(e, -EINVAL, "the primitive takes no argument %d", kinds[i]);
      break;
    }
    p->args[i].arg = kinds[i];
    rc = onnx_dnnl_check(dnnl_memory_create(&p->args[i].memory, md, eng, DNNL_MEMORY_NONE),
                         "memory object", e);
    if (!rc) p->n_args = i + 1;
  }
  const dnnl_memory_desc_t *sp = rc ? NULL : onnx_dnnl_arg_md(pd, DNNL_ARG_SCRATCHPAD);
  if (sp && (p->scratch_bytes = dnnl_memory_desc_get_size(sp)) > 0) {
    dnnl_exec_arg_t *a = &p->args[p->n_args];
    a->arg = DNNL_ARG_SCRATCHPAD;
    rc =
        onnx_dnnl_check(dnnl_memory_create(&a->memory, sp, eng, DNNL_MEMORY_NONE), "scratchpad", e);
    p->has_scratch = !rc;
  }
  if (rc) onnx_dnnl_prim_destroy(p);
  return rc;
}

int onnx_dnnl_plan_prim(onnx_plan_req *req, const_dnnl_primitive_desc_t pd, const int *kinds, int n,
                        err *e) {
  onnx_dnnl_prim *p = calloc(1, sizeof *p);
  if (!p) return err_set(e, -ENOMEM, "out of memory");
  int rc = onnx_dnnl_prim_init(p, pd, kinds, n, e);
  if (rc) {
    free(p);
    return rc;
  }
  req->state = p;
  req->scratch_bytes = p->scratch_bytes;
  req->state_bytes = sizeof *p;
  return 0;
}

void onnx_dnnl_plan_prim_free(void *state) {
  onnx_dnnl_prim_destroy(state);
  free(state);
}

int onnx_dnnl_prim_exec(onnx_dnnl_prim *p, void *stream, void *const *handles, void *scratch,
                        err *e) {
  for (int i = 0; i < p->n_args; i++)
    dnnl_memory_set_data_handle(p->args[i].memory, handles[i]);
  int n = p->n_args;
  if (p->has_scratch) {
    dnnl_memory_set_data_handle(p->args[n].memory, scratch);
    n++;
  }
  return onnx_dnnl_check(dnnl_primitive_execute(p->prim, stream, n, p->args), "execute", e);
}

void onnx_dnnl_prim_destroy(onnx_dnnl_prim *p) {
  for (int i = 0; i < p->n_args + p->has_scratch; i++)
    dnnl_memory_destroy(p->args[i].memory);
  if (p->prim) {
    dnnl_primitive_destroy(p->prim);
    atomic_fetch_sub(&live, 1);
  }
  memset(p, 0, sizeof *p);
}

int onnx_dnnl_reorder_once(const dnnl_memory_desc_t *from, const void *src,
                           const dnnl_memory_desc_t *to, void *dst, err *e) {
  dnnl_engine_t eng = onnx_dnnl_engine();
  if (!eng) return err_set(e, -EIO, "oneDNN could not make a CPU engine");
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t ms = NULL, md = NULL;
  void *stream = NULL;
  int rc = onnx_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL),
                           "reorder", e);
  if (!rc) rc = onnx_dnnl_check(dnnl_primitive_create(&prim, pd), "reorder", e);
  if (!rc) rc = onnx_dnnl_check(dnnl_memory_create(&ms, from, eng, (void *)src), "memory", e);
  if (!rc) rc = onnx_dnnl_check(dnnl_memory_create(&md, to, eng, dst), "memory", e);
  if (!rc) rc = onnx_dnnl_stream_new(&stream, e);
  if (!rc) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    rc = onnx_dnnl_check(dnnl_primitive_execute(prim, stream, 2, args), "reorder", e);
  }
  if (stream) {
    dnnl_stream_wait(stream);
    onnx_dnnl_stream_free(stream);
  }
  if (ms) dnnl_memory_destroy(ms);
  if (md) dnnl_memory_destroy(md);
  if (prim) dnnl_primitive_destroy(prim);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return rc;
}
