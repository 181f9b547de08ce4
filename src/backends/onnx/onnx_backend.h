/* backends/onnx/onnx_backend.h: inferd's own ONNX backend ("onnx"): loads
 * an ONNX model (model.onnx unless the configuration names another file)
 * and runs it on the CPU with its own graph executor.
 *
 * Model configuration parameters:
 *   intra_op_threads  threads one execute may use (default 1), given to
 *                     oneDNN's primitives and matrix products; the other
 *                     kernels run on the calling thread.
 *   graph_optimization "all" (default): fusions (Conv with BatchNormalization,
 *                     activations and residual Adds; MatMul with its bias)
 *                     and channel-blocked layouts between CNN operators;
 *                     "none": the graph as written (to check a fusion). */
#ifndef INFERD_ONNX_BACKEND_H
#define INFERD_ONNX_BACKEND_H

#include "inferd/backend.h"

const inferd_backend *onnx_backend(void);

#endif
