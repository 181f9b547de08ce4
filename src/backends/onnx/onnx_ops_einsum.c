/* backends/onnx/onnx_ops_einsum.c: Einsum. */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_einsum[] = {
    {NULL, 0},
};
