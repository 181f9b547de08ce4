/* backends/onnx/onnx_ops.h: what an operator implementation sees, and the
 * registry that finds one for a node.
 *
 * An operator is a table of three functions (onnx_op): `init` reads and
 * checks the node's attributes once at load, `infer` gives the outputs' type
 * and shape from the inputs' (once per input-shape signature, when a plan is
 * built), `run` computes. Kernels never allocate: their outputs' memory is
 * planned before they run. The registry (onnx_registry.c) maps (domain,
 * op_type, since_version) to an onnx_op_id; a node gets the entry with the
 * highest since_version <= the model's opset for its domain.
 *
 * TEMPLATE: adding an operator, say Elu, to the family file it belongs to
 * (onnx_ops_activation.c here):
 *
 *   1. In the family file write
 *        typedef struct { float alpha; } elu_attr;
 *        static int elu_init(onnx_node *n, const Onnx__NodeProto *p, arena *a, err *e)
 *          { ...onnx_attr_float(p, "alpha", 1.0f, &at->alpha, e)...; n->attr = at; }
 *        static int elu_infer(const onnx_node *n, const onnx_tensor *const *in,
 *                             onnx_tensor *const *out, err *e)
 *          { check in[0]->dtype; onnx_tensor_like(out[0], in[0]); return 0; }
 *        static int elu_run(const onnx_node *n, const onnx_tensor *const *in,
 *                           onnx_tensor *const *out, err *e)
 *          { loop over in[0]->count elements; return 0; }
 *        static const onnx_op elu = {.name = "Elu", .domain = "",
 *            .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
 *            .init = elu_init, .infer = elu_infer, .run = elu_run};
 *      (.flags for views and Shape-like operators, .value_inputs for inputs
 *      whose data decides the output shape).
 *   2. Add one row per ONNX version of the operator to the family's table,
 *      `{&elu, 6}`: every version from the oldest supported one to the newest
 *      the build knows (ONNX_OPSET_MAX), so that "highest <= the model's
 *      opset" always lands on the version the model means. A version whose
 *      semantics differ gets its own onnx_op or branches on node->since.
 *   3. Test it by hand in the family's tests/unit/test_onnx_<family>.c; the
 *      ONNX node tests (tests/unit/test_onnx_nodes.c) run every case whose
 *      operators the registry has, and fail when one of them fails.
 * A new family is a new onnx_ops_<family>.c with its table, declared below
 * and listed in onnx_registry.c.
 *
 * OPTIONAL HOOKS (all NULL / 0 by default; see "optional operator hooks"
 * below), for operators that gain from work done once:
 *   - prepare/release: at load, with the constant inputs' data; pack
 *     weights, count them in node->prepared_bytes, set node->dropped bits so
 *     the originals are freed (onnx_ops_conv.c, onnx_ops_gemm.c);
 *   - plan/plan_free/run_step: per-plan state (a oneDNN primitive for these
 *     shapes), scratch memory from the workspace, the stream and the
 *     intra-op thread count at run (run then just calls onnx_run_once);
 *     run_step alone (no plan) is how a kernel gets onnx_step_ctx.threads
 *     for onnx_parallel;
 *   - layouts: take and give channel-blocked tensors (onnx_layout.c);
 *   - post_ok: activations and residual sums that onnx_fuse.c may fold into
 *     the node (node->post), which run must then apply.
 */
#ifndef INFERD_ONNX_OPS_H
#define INFERD_ONNX_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "inferd/backend.h"
#include "onnx/onnx.pb-c.h"

#define ONNX_MAX_DIMS INFERD_MAX_DIMS

/* The newest ai.onnx opset whose operator versions the registry lists (that
 * of ONNX 1.12). A model importing a newer one is refused: an operator may
 * have changed there in a way the registry cannot know. */
#define ONNX_OPSET_MAX 17

/* A tensor as a kernel sees it: dense, row-major. data is NULL while a plan
 * is being built unless the value is known then (a constant, or computed
 * from shapes alone). */
typedef struct onnx_tensor {
  inferd_dtype dtype;
  int ndim;
  int64_t dims[ONNX_MAX_DIMS];
  int64_t count; /* elements: the product of dims */
  void *data;
} onnx_tensor;

typedef struct onnx_node onnx_node;

enum {
  /* Output 0 holds input 0's bytes under another shape (Reshape, Flatten,
   * Identity). The planner makes it a view of the input's memory and drops
   * the step; run is only called when a copy is needed (folding at load). */
  ONNX_OP_ALIAS = 1u << 0,
  /* The outputs depend on the inputs' shapes, never their data (Shape):
   * evaluated when a plan is built, whatever the inputs. */
  ONNX_OP_SHAPE_ONLY = 1u << 1,
};

/* ---- optional operator hooks ---------------------------------------------
 *
 * Everything below is optional: an operator that sets none of it behaves as
 * before (run is called with plain row-major tensors). The hooks serve
 * operators that gain from work done once rather than per request: weights
 * reordered at load (prepare), a oneDNN primitive created once per plan
 * (plan, run_step, plan_free), and activations kept in a channel-blocked
 * layout between such operators (layouts). */

/* What onnx_op.plan hands the planner (and the one thing it is told). */
typedef struct onnx_plan_req {
  void *state;          /* given back to run_step; freed with plan_free */
  size_t scratch_bytes; /* temporary memory run_step needs, from the workspace */
  size_t state_bytes;   /* memory state holds, for model_memory */
  int threads;          /* in: the intra-op threads run_step will get */
} onnx_plan_req;

/* What a step of a plan hands run_step. */
typedef struct onnx_step_ctx {
  void *state;          /* what plan made for this node and these shapes */
  void *scratch;        /* scratch_bytes of it, 64-byte aligned; NULL when 0 */
  size_t scratch_bytes; /* as asked */
  void *stream;         /* the running instance's dnnl_stream_t */
  int threads;          /* intra-op threads the model may use */
} onnx_step_ctx;

/* Channel-blocked activations: a 4-D [N,C,H,W] float tensor stored as
 * [N][C/B][H][W][B], B = onnx_block_size() (8 with AVX2, 16 with AVX-512;
 * oneDNN's nChw8c / nChw16c), so that convolutions and pooling run on
 * their fast kernels without reordering each time. Only tensors whose C is
 * a multiple of B are blocked, so a blocked tensor has the same dims and
 * byte size as its plain form; only its element order differs. The layout
 * pass (onnx_layout.c) decides at load which values are blocked, and
 * inserts reorders wherever an operator needs the other form, so that
 * operators without a layouts hook, graph outputs and graph inputs always
 * see plain tensors. node->blocked says what the pass chose. */
#define ONNX_BLOCKED_IN(k)  (1u << (k))        /* input k arrives blocked (k < 16) */
#define ONNX_BLOCKED_OUT(j) (1u << (16 + (j))) /* output j is written blocked */

/* Elementwise functions and the residual sum that graph rewrites
 * (onnx_fuse.c) fold into the operator producing their input: node->post
 * lists them in the order they apply to that operator's result. */
typedef enum onnx_post_kind {
  ONNX_POST_RELU = 1,
  ONNX_POST_LEAKY_RELU, /* alpha */
  ONNX_POST_CLIP,       /* alpha = min, beta = max */
  ONNX_POST_SIGMOID,
  ONNX_POST_TANH,
  ONNX_POST_ELU,          /* alpha */
  ONNX_POST_HARD_SIGMOID, /* max(0, min(1, alpha x + beta)) */
  ONNX_POST_HARD_SWISH,   /* x * max(0, min(1, x/6 + 1/2)) */
  ONNX_POST_SUM,          /* + the node's input `input` (same shape as the result) */
} onnx_post_kind;

typedef struct onnx_post_op {
  onnx_post_kind kind;
  float alpha, beta;
  int input; /* ONNX_POST_SUM: index into node->in */
} onnx_post_op;

#define ONNX_MAX_POST 4

typedef struct onnx_op {
  const char *domain; /* "" for ai.onnx */
  const char *name;   /* op_type */
  uint8_t min_inputs, max_inputs, min_outputs, max_outputs;
  unsigned flags;
  /* Optional. Reads the node's attributes into node->attr (allocated from
   * a, which lives as long as the model) and refuses values the kernel does
   * not support. */
  int (*init)(onnx_node *node, const Onnx__NodeProto *proto, arena *a, err *e);
  /* Sets every present output's dtype, ndim and dims from the inputs (in[i]
   * is NULL for an omitted optional input; out[i] NULL for an omitted
   * output). An input's data is there when it is known at planning time. */
  int (*infer)(const onnx_node *node, const onnx_tensor *const *in, onnx_tensor *const *out,
               err *e);
  /* Computes the outputs into their planned memory. Fails only on what the
   * data alone can show (an integer division by zero). */
  int (*run)(const onnx_node *node, const onnx_tensor *const *in, onnx_tensor *const *out, err *e);
  /* Bit i set: infer needs input i's data, not only its shape (Reshape's
   * shape). Such an input must be known when planning: a constant, computed
   * from shapes, or a graph input whose values then join the plan's key. */
  unsigned value_inputs;
  /* Optional: what run needs to tell operators that share it apart (Add,
   * Sub, Mul and Div share one run and differ by their kernel tables). */
  const void *kernels;

  /* Optional, once at load, after constants are folded and graphs
   * rewritten: in[k] is the value as the model knows it (data set for a
   * constant; declared dims, -1 where unknown, for others). May keep
   * transformed copies of constant inputs (weights reordered for a
   * kernel) in node->attr, count them in node->prepared_bytes and set bit k
   * of node->dropped for each constant input k it will not read again: the
   * model frees a constant no other node reads. run and run_step then get
   * such an input with its shape but data NULL. */
  int (*prepare)(onnx_node *node, const onnx_tensor *const *in, err *e);
  /* Optional: frees what prepare kept (model unload, or the node pruned). */
  void (*release)(onnx_node *node);
  /* Optional, once per plan for a node that runs as a step: in and out have
   * their planned shapes (data as run would see it only for constants).
   * Fills req; the planner gives req->state and scratch to run_step. */
  int (*plan)(const onnx_node *node, const onnx_tensor *const *in, const onnx_tensor *const *out,
              onnx_plan_req *req, err *e);
  /* Optional: frees a plan's state (req->state, never NULL here). */
  void (*plan_free)(void *state);
  /* Optional: run with the plan's state; steps call it instead of run when
   * set. run stays required: folding and planning-time evaluation call it
   * (onnx_run_once does plan + run_step + plan_free for such operators). */
  int (*run_step)(const onnx_node *node, const onnx_step_ctx *ctx, const onnx_tensor *const *in,
                  onnx_tensor *const *out, err *e);
  /* Optional, for the layout pass: given in (as for prepare), the inputs
   * that are available blocked and the outputs some reader would take
   * blocked (avail: ONNX_BLOCKED_IN and _OUT bits), the ONNX_BLOCKED_IN
   * bits of the inputs the node wants blocked (the pass reorders the
   * others' way) and the ONNX_BLOCKED_OUT bits of the outputs it will
   * write blocked. */
  unsigned (*layouts)(const onnx_node *node, const onnx_tensor *const *in, unsigned avail);
  /* Optional: post-operations (ONNX_POST_* bit (1u << kind)) that the node
   * can apply itself, for the fusion pass. */
  unsigned post_ok;
} onnx_op;

/* One row of the registry: op implements version `since` of its operator
 * (and every later version up to the next row of the same operator). */
typedef struct onnx_op_row {
  const onnx_op *op;
  int since;
} onnx_op_row;

struct onnx_node {
  const char *name;    /* the node's name, or "#<index>" when it has none */
  const char *op_type; /* as in the model */
  const char *domain;  /* "" for ai.onnx */
  int opset;           /* the model's opset for the domain */
  int since;           /* since_version of the registry entry chosen */
  const onnx_op *op;
  int n_in, n_out;
  int *in, *out; /* value indices; -1 for an omitted optional one */
  void *attr;    /* what op->init parsed; NULL when nothing */
  /* Set by load-time passes; 0 / NULL for a node they leave alone. */
  unsigned blocked;      /* ONNX_BLOCKED_IN / _OUT bits (onnx_layout.c) */
  int n_post;            /* post-operations fused into this node (onnx_fuse.c) */
  onnx_post_op *post;    /* n_post of them, in order */
  unsigned dropped;      /* bit k: prepare will not read constant input k again */
  size_t prepared_bytes; /* what prepare keeps */
  bool prepared;         /* prepare ran (release is due) */
};

/* ---- registry (onnx_registry.c) ----------------------------------------- */

/* The operator for op_type of domain ("" or "ai.onnx") under opset, storing
 * the version chosen in *since; NULL when none is implemented. */
const onnx_op *onnx_registry_find(const char *domain, const char *op_type, int opset, int *since);
/* Whether any version of op_type is implemented. */
bool onnx_registry_has(const char *domain, const char *op_type);
/* Checks the tables against each other: every onnx_op_id has an onnx_op
 * carrying that id, every op has registry rows, rows are unique. */
int onnx_registry_check(err *e);

/* Each family file (onnx_ops_<family>.c) lists its rows in a table ending
 * with {NULL, 0}; onnx_registry.c joins the families. */
extern const onnx_op_row onnx_ops_activation[], onnx_ops_cast[], onnx_ops_conv[], onnx_ops_einsum[],
    onnx_ops_elementwise[], onnx_ops_gemm[], onnx_ops_generate[], onnx_ops_index[],
    onnx_ops_layernorm[], onnx_ops_logic[], onnx_ops_loss[], onnx_ops_norm[], onnx_ops_pool[],
    onnx_ops_reduce[], onnx_ops_resize[], onnx_ops_shape[], onnx_ops_softmax[], onnx_ops_tensor[],
    onnx_ops_unary[];

/* Operators that graph rewrites and the planner recognise by address. */
extern const onnx_op onnx_op_add, onnx_op_sub, onnx_op_mul, onnx_op_div;
extern const onnx_op onnx_op_relu, onnx_op_sigmoid, onnx_op_tanh;
extern const onnx_op onnx_op_gemm, onnx_op_matmul;
extern const onnx_op onnx_op_softmax;
extern const onnx_op onnx_op_flatten, onnx_op_reshape, onnx_op_identity, onnx_op_constant;
extern const onnx_op onnx_op_shape;
extern const onnx_op onnx_op_cast;
extern const onnx_op onnx_op_argmax;

extern const onnx_op onnx_op_conv, onnx_op_conv_transpose, onnx_op_batchnorm;
/* Operators no model names, which load-time passes insert: reorders between
 * plain and blocked layouts (onnx_layout.c), MatMul with a bias folded in
 * (onnx_ops_gemm.c). */
extern const onnx_op onnx_op_to_blocked, onnx_op_to_plain, onnx_op_matmul_bias;

/* Calls fn for every registry row (the support table of docs/ONNX_SUPPORT.md
 * is written from it). */
void onnx_registry_each(void (*fn)(const onnx_op *op, int since, void *arg), void *arg);

/* ---- helpers for the optional hooks -------------------------------------- */

/* (onnx_plan.c) Runs node once outside a plan: plan, run_step with scratch from the heap
 * and a stream of its own, plan_free. What run is for an operator that has
 * run_step (constant folding, planning-time evaluation). */
int onnx_run_once(const onnx_node *node, const onnx_tensor *const *in, onnx_tensor *const *out,
                  err *e);
/* (onnx_dnnl.c) Runs fn over [0, n) split into at most `threads`
 * contiguous ranges, one per thread of oneDNN's OpenMP team (thread is the
 * member's index, below threads), and returns when all are done; on the
 * calling thread alone when threads is 1. For kernels' loops: pass
 * onnx_step_ctx.threads. */
typedef void (*onnx_range_fn)(void *arg, int64_t begin, int64_t end, int thread);
void onnx_parallel(int threads, int64_t n, onnx_range_fn fn, void *arg);
/* (onnx_layout.c) The channel block of blocked layouts on this CPU (8 or
 * 16). */
int onnx_block_size(void);
/* (onnx_fuse.c) Applies post[from..n_post) (elementwise functions, no SUM)
 * in place to n values of type t (FP32 or FP64): for kernels that do not
 * fuse them themselves. */
void onnx_post_apply(const onnx_post_op *post, int n_post, int from, inferd_dtype t, void *y,
                     int64_t n);

/* ---- attributes (onnx_tensor.c) ----------------------------------------- */

/* The attribute called name, or NULL. */
const Onnx__AttributeProto *onnx_attr_find(const Onnx__NodeProto *p, const char *name);
/* The value of an INT/FLOAT attribute, def when it is absent; an error when
 * it has another type. */
int onnx_attr_int(const Onnx__NodeProto *p, const char *name, int64_t def, int64_t *out, err *e);
int onnx_attr_float(const Onnx__NodeProto *p, const char *name, float def, float *out, err *e);
/* An INT attribute that must be 0 or 1. */
int onnx_attr_bool(const Onnx__NodeProto *p, const char *name, bool def, bool *out, err *e);
/* An INTS attribute into out[0..max): *n receives its length (-1 when it
 * is absent, out untouched); more than max values is an error. */
int onnx_attr_ints(const Onnx__NodeProto *p, const char *name, int64_t *out, int max, int *n,
                   err *e);
/* A STRING attribute as a NUL-terminated copy in a (def when absent). */
int onnx_attr_string(const Onnx__NodeProto *p, const char *name, const char *def, arena *a,
                     const char **out, err *e);
/* auto_pad of Conv, ConvTranspose and the pooling operators. */
typedef enum onnx_auto_pad {
  ONNX_PAD_NOTSET,
  ONNX_PAD_SAME_UPPER,
  ONNX_PAD_SAME_LOWER,
  ONNX_PAD_VALID
} onnx_auto_pad;
/* auto_pad's value (the attribute's string) as the enum; an error naming
 * the choices when it is none of them. */
int onnx_auto_pad_parse(const char *s, onnx_auto_pad *out, err *e);
/* One spatial axis of a sliding window (Conv, pooling) of reach ext
 * ((kernel - 1) * dilation + 1) and stride s over an input of extent in:
 * *pb and *pe come in as the explicit pads and leave as those auto_pad
 * asks for (VALID: none; SAME_*: an output of ceil(in / s), the odd pad at
 * the end for SAME_UPPER, at the beginning for SAME_LOWER). Returns
 * in + pb + pe - ext, negative when the window does not fit. */
int64_t onnx_window_pads(onnx_auto_pad ap, int64_t in, int64_t s, int64_t ext, int64_t *pb,
                         int64_t *pe);
/* The STRING attribute called name as an index into names (n of them);
 * def when the attribute is absent, an error naming the choices when it is
 * none of them. */
int onnx_attr_enum(const Onnx__NodeProto *p, const char *name, const char *const *names, int n,
                   int def, int *out, err *e);
/* Zeroed room for a node's attributes (size bytes from a), set as
 * node->attr; NULL, with e set, when out of memory. */
void *onnx_attr_new(onnx_node *n, arena *a, size_t size, err *e);

/* ---- tensors (onnx_tensor.c) -------------------------------------------- */

/* inferd's type for a TensorProto.DataType; INVALID for those it lacks. */
inferd_dtype onnx_dtype_from_proto(int32_t t);
int32_t onnx_dtype_to_proto(inferd_dtype t);
/* Decodes a TensorProto (raw_data or the typed fields) into t, its data
 * allocated 64-byte aligned from a, or with aligned_alloc when a is NULL
 * (free() it). BYTES elements are stored as the protocol's length-prefixed
 * strings. */
int onnx_tensor_decode(const Onnx__TensorProto *tp, arena *a, onnx_tensor *t, err *e);

/* Bytes of t's data (count * element size). */
size_t onnx_tensor_bytes(const onnx_tensor *t);
/* Gives out in's dtype and shape. */
void onnx_tensor_like(onnx_tensor *out, const onnx_tensor *in);
/* Sets out's shape (and count). */
void onnx_tensor_set_shape(onnx_tensor *out, int ndim, const int64_t *dims);
/* "[2,3]" for messages. */
const char *onnx_shape_str(char buf[static 96], const onnx_tensor *t);

/* Checks axis in [-rank, rank) (or [-rank, rank] when end_ok) and makes it
 * non-negative. */
int onnx_axis(int64_t axis, int rank, bool end_ok, int *out, err *e);
/* The numpy broadcast of a's and b's shapes into out's (dtype untouched). */
int onnx_broadcast_shape(const onnx_tensor *a, const onnx_tensor *b, onnx_tensor *out, err *e);
/* Product of dims[from..to). */
int64_t onnx_dims_product(const int64_t *dims, int from, int to);
/* Row-major strides of dims[0..nd), in elements. */
void onnx_strides(const int64_t *dims, int nd, int64_t *st);
/* Kernels that move elements of 1, 2, 4 or 8 bytes accept every type the
 * planner places (strings have no fixed size and never reach a kernel):
 * an error for t's type otherwise. */
int onnx_fixed_size(const onnx_tensor *t, err *e);
/* The error of a value input whose data is not known when the plan is
 * built; what names the input. */
int onnx_not_known(const char *what, err *e);

/* Types that kernels loop over. */
static inline bool onnx_dtype_is_float(inferd_dtype t) {
  return t == INFERD_TYPE_FP32 || t == INFERD_TYPE_FP64;
}
static inline bool onnx_dtype_is_int(inferd_dtype t) {
  return (t >= INFERD_TYPE_UINT8 && t <= INFERD_TYPE_INT64);
}
/* Any floating type: float, double, float16 and bfloat16. */
static inline bool onnx_dtype_is_floating(inferd_dtype t) {
  return onnx_dtype_is_float(t) || t == INFERD_TYPE_FP16 || t == INFERD_TYPE_BF16;
}
/* The integers and every floating type (not BOOL, not strings). */
static inline bool onnx_dtype_is_numeric(inferd_dtype t) {
  return onnx_dtype_is_int(t) || onnx_dtype_is_floating(t);
}

/* GCC at -O2 vectorises only loops whose trip count it knows; kernels'
 * loops run over sizes known at run time, so they ask for the dynamic cost
 * model. */
#if defined(__GNUC__) && !defined(__clang__)
#define ONNX_VECTORIZE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define ONNX_VECTORIZE
#endif

#endif
