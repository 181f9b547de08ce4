/* backends/onnx/onnx_ops_pool.c: pooling (MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool).
 */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_pool[] = {
    {NULL, 0},
};
