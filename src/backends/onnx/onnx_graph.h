/* backends/onnx/onnx_graph.h: the ONNX backend's executor: a model as a
 * graph of values and nodes (onnx_model.c), plans that fix shapes and memory
 * for one input-shape signature (onnx_plan.c), and instances that run them
 * (onnx_plan.c, driven by onnx_backend.c).
 *
 * Load-time graph work, in order: constants folded (onnx_model.c),
 * fusions (onnx_fuse.c: Conv+BatchNormalization folded into the
 * weights, activations and residual sums into the producing Conv, bias
 * Adds into MatMul), blocked layouts chosen and reorders inserted
 * (onnx_layout.c), then each operator's prepare hook (weights packed for
 * their kernels, the originals freed).
 *
 * Lifetimes: a model owns its values, nodes and constant data, and is
 * read-only once loaded, so instances on different threads share it. An
 * instance owns a workspace (one buffer for every intermediate tensor) and
 * a small cache of plans, one per input-shape signature seen; execute
 * allocates only when it meets a signature it has not planned. */
#ifndef INFERD_ONNX_GRAPH_H
#define INFERD_ONNX_GRAPH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "inferd/backend.h"
#include "onnx_ops.h"

/* A named tensor of the graph: a graph input, an initializer or folded
 * constant, or a node's output. */
typedef struct onnx_value {
  const char *name;
  /* Declared or known type and shape: dims are -1 where unknown, ndim -1
   * when the rank is unknown (an intermediate not yet inferred). data is
   * set for constants. */
  onnx_tensor t;
  bool is_const;
  bool owns_data; /* data came from aligned_alloc (initializers, folds) */
  bool is_input;  /* a graph input that is not an initializer */
  bool is_output; /* a graph output that inferd asks for */
  int producer;   /* index into the load-time node list, or -1 */
} onnx_value;

typedef struct onnx_model {
  arena *arena; /* names, nodes, attributes */
  int opset;    /* of ai.onnx */
  size_t n_values;
  onnx_value *values;
  size_t n_nodes; /* to run, in topological order, constants folded */
  onnx_node *nodes;
  size_t n_inputs; /* graph inputs that are not initializers, graph order */
  int *inputs;
  size_t n_outputs; /* graph outputs, graph order */
  int *outputs;
  /* Per model input: its values decide shapes (it reaches an operator's
   * value_inputs), so they are part of a plan's key. */
  bool *key_input;
  bool has_key_inputs;

  /* What inferd passes, in its order: exec input i is model input
   * exec_in[i], exec output j is graph output exec_out[j]. */
  size_t n_exec_in, n_exec_out;
  int *exec_in, *exec_out;

  /* model_io's answer: graph inputs and outputs, batch included. */
  inferd_tensor_desc *io_in, *io_out;

  int threads;                  /* intra_op_threads */
  size_t weight_bytes;          /* constant data held, prepared (packed) weights included */
  int n_fused;                  /* nodes folded into others by onnx_fuse.c */
  int n_reorders;               /* reorder nodes onnx_layout.c inserted */
  size_t instance_estimate;     /* one instance's workspace at the largest batch */
  atomic_size_t instance_bytes; /* what live instances hold */
  atomic_int n_instances;
} onnx_model;

/* ---- loading (onnx_model.c) --------------------------------------------- */

/* How much load-time graph work to do (model parameter graph_optimization). */
typedef enum onnx_optimize {
  ONNX_OPTIMIZE_ALL = 0, /* fusions and blocked layouts (the default) */
  ONNX_OPTIMIZE_NONE,    /* the graph as written: for debugging and for tests */
} onnx_optimize;

/* Parses an ONNX ModelProto and builds the graph: opset checks, operators
 * resolved and their attributes read, nodes in topological order,
 * constants folded, then (ONNX_OPTIMIZE_ALL) fusions and layouts, then the
 * prepare hooks. Every graph output is marked wanted. */
int onnx_model_parse_opt(const void *bytes, size_t len, onnx_optimize opt, onnx_model **out,
                         err *e);
/* onnx_model_parse_opt with ONNX_OPTIMIZE_ALL. */
int onnx_model_parse(const void *bytes, size_t len, onnx_model **out, err *e);
/* Drops nodes and constants that no wanted output (value.is_output)
 * depends on, and finds the key inputs. */
void onnx_model_prune(onnx_model *m);
/* A new value named after base with suffix (made unique), no producer:
 * its index, or a negative error. For load-time passes. */
int onnx_model_add_value(onnx_model *m, const char *base, const char *suffix, err *e);
/* Replaces m->nodes with n nodes (copied into the model's arena) and
 * recomputes every value's producer. */
int onnx_model_set_nodes(onnx_model *m, const onnx_node *nodes, size_t n, err *e);

/* (onnx_fuse.c) Folds BatchNormalization into the Conv before it and
 * activations, residual Adds and biases into the nodes that can apply
 * them (onnx_op.post_ok). protos[i] is the NodeProto of m->nodes[i], for
 * the attributes of the nodes folded away. Values that are graph outputs
 * are never folded away. */
int onnx_model_fuse(onnx_model *m, const Onnx__NodeProto *const *protos, err *e);
/* (onnx_ops_norm.c) Whether BatchNormalization node n normalises with its
 * running statistics (inference), and its epsilon. */
bool onnx_batchnorm_inference(const onnx_node *n, float *epsilon);
/* (onnx_layout.c) Chooses which values are kept channel-blocked (operators
 * with a layouts hook) and inserts the reorders that keep every other
 * operator, and every graph output, on plain tensors. */
int onnx_model_layout(onnx_model *m, err *e);
/* (onnx_model.c) Runs each node's prepare hook and frees the constants no
 * node reads any more. */
int onnx_model_prepare(onnx_model *m, err *e);
void onnx_model_free(onnx_model *m);
/* "node 'fc1' (Gemm, opset 13)" for messages. */
const char *onnx_node_label(char buf[static 200], const onnx_node *n);

/* ---- plans (onnx_plan.c) ------------------------------------------------ */

typedef struct onnx_plan onnx_plan;

/* Plans the graph for graph-input shapes shapes[k] (ndims[k] dims each, in
 * model-input order) and the data of the key inputs (key_data[k]; key_data
 * NULL when not known, which fails the nodes that need it): infers every
 * shape, evaluates what depends on shapes alone, and places every
 * intermediate in a workspace by liveness. */
int onnx_plan_build(const onnx_model *m, const int *ndims, const int64_t (*shapes)[ONNX_MAX_DIMS],
                    const void *const *key_data, onnx_plan **out, err *e);
void onnx_plan_free(onnx_plan *p);
/* Workspace bytes the plan needs. */
size_t onnx_plan_workspace(const onnx_plan *p);
/* The planned tensor of value v (type and shape). */
const onnx_tensor *onnx_plan_tensor(const onnx_plan *p, int v);
/* Bytes the steps' per-plan states hold (oneDNN primitives and the like). */
size_t onnx_plan_state_bytes(const onnx_plan *p);
/* The steps the plan runs, and the node of step s. */
size_t onnx_plan_steps(const onnx_plan *p);
const onnx_node *onnx_plan_step_node(const onnx_plan *p, size_t s);
/* Whether values v and w live in the same memory (views, sums in place). */
bool onnx_plan_shares(const onnx_plan *p, int v, int w);

/* ---- instances (onnx_plan.c) -------------------------------------------- */

typedef struct onnx_instance onnx_instance;

int onnx_instance_new(onnx_model *m, onnx_instance **out, err *e);
void onnx_instance_free(onnx_instance *in);
const onnx_model *onnx_instance_model(const onnx_instance *in);
/* Runs exec on the instance (see inferd_exec). */
int onnx_instance_run(onnx_instance *in, inferd_exec *exec, err *e);

#endif
