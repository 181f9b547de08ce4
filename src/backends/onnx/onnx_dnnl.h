/* backends/onnx/onnx_dnnl.h: what the operators built on oneDNN share: the
 * one CPU engine, streams, memory descriptors for inferd's tensors (plain
 * or channel-blocked), fused post-operations, and a primitive bundled with
 * the memory objects of its arguments so that a step only swaps data
 * pointers before it executes.
 *
 * Every primitive made here uses a user scratchpad: what oneDNN would
 * otherwise allocate per execution comes from the plan's workspace
 * (onnx_plan_req.scratch_bytes), so that a request allocates nothing. */
#ifndef INFERD_ONNX_DNNL_H
#define INFERD_ONNX_DNNL_H

#include <dnnl.h>

#include "onnx_ops.h"

/* The process's CPU engine, created on first use; NULL when oneDNN cannot
 * make one. */
dnnl_engine_t onnx_dnnl_engine(void);

/* 0 for dnnl_success, else an error "<what>: oneDNN status N". */
int onnx_dnnl_check(dnnl_status_t st, const char *what, err *e);

/* oneDNN's type for t; dnnl_data_type_undef for those it lacks. */
dnnl_data_type_t onnx_dnnl_dtype(inferd_dtype t);

/* A descriptor for nd dims of type dt: plain row-major, or when blocked
 * (4-D only) channel-blocked by onnx_block_size(). */
int onnx_dnnl_md(dnnl_memory_desc_t *md, int nd, const int64_t *dims, dnnl_data_type_t dt,
                 bool blocked, err *e);

/* A primitive attribute with a user scratchpad and post[from..to) as
 * post-operations (SUM included); *attr is destroyed by the caller. */
int onnx_dnnl_attr(dnnl_primitive_attr_t *attr, const onnx_post_op *post, int from, int to, err *e);

/* A primitive and one memory object per argument it takes (data handles
 * set before each execution). */
#define ONNX_DNNL_MAX_ARGS 8
typedef struct onnx_dnnl_prim {
  dnnl_primitive_t prim;
  int n_args;
  dnnl_exec_arg_t args[ONNX_DNNL_MAX_ARGS + 1]; /* + the scratchpad */
  bool has_scratch;
  size_t scratch_bytes;
} onnx_dnnl_prim;

/* Makes the primitive of pd with memory objects for the n execution
 * arguments kinds[] (DNNL_ARG_SRC, ...), their descriptors as pd wants
 * them. Takes nothing from pd: the caller destroys it. */
int onnx_dnnl_prim_init(onnx_dnnl_prim *p, const_dnnl_primitive_desc_t pd, const int *kinds, int n,
                        err *e);
/* Runs it on stream with handles[i] for kinds[i] and scratch (at least
 * scratch_bytes). */
int onnx_dnnl_prim_exec(onnx_dnnl_prim *p, void *stream, void *const *handles, void *scratch,
                        err *e);
void onnx_dnnl_prim_destroy(onnx_dnnl_prim *p);
/* A plan whose state is one primitive: makes it from pd (the caller still
 * destroys pd) with the n execution arguments kinds[] and sets req's state
 * and scratch; onnx_dnnl_plan_prim_free is the operator's plan_free. A step
 * passes ctx->state to onnx_dnnl_prim_exec. */
int onnx_dnnl_plan_prim(onnx_plan_req *req, const_dnnl_primitive_desc_t pd, const int *kinds, int n,
                        err *e);
void onnx_dnnl_plan_prim_free(void *state);
/* Primitives initialised and not yet destroyed (for tests). */
int onnx_dnnl_prims_live(void);

/* The descriptor pd wants for execution argument kind. */
const dnnl_memory_desc_t *onnx_dnnl_arg_md(const_dnnl_primitive_desc_t pd, int kind);
/* The name of the implementation pd chose ("jit:avx2", "ref:any", ...). */
const char *onnx_dnnl_impl(const_dnnl_primitive_desc_t pd);

/* Copies src (described by from) into dst (described by to) with a reorder
 * primitive made for the occasion: for load-time work only. */
int onnx_dnnl_reorder_once(const dnnl_memory_desc_t *from, const void *src,
                           const dnnl_memory_desc_t *to, void *dst, err *e);

/* Empties oneDNN's process-wide cache of primitives (it keeps up to 1024
 * kernels made for plans, to make the next plan of the same shapes
 * faster): after a model is unloaded, what it made is not needed. */
void onnx_dnnl_cache_clear(void);

/* A stream on the engine, for an instance or a one-off run. */
int onnx_dnnl_stream_new(void **stream, err *e);
void onnx_dnnl_stream_free(void *stream);

#endif
