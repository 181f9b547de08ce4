/* backends/onnx/onnx_ops_tensor.c: moving data around (Transpose, Concat, Split, Slice, Squeeze,
 * Unsqueeze, Expand, Tile, Pad, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_tensor[] = {
    {NULL, 0},
};
