/* backends/onnx/onnx_ops_index.c: indexing (Gather, GatherElements, GatherND, Scatter*, OneHot,
 * Compress, NonZero, Trilu, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_index[] = {
    {NULL, 0},
};
