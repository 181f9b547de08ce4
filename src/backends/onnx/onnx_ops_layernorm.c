/* backends/onnx/onnx_ops_layernorm.c: LayerNormalization and MeanVarianceNormalization. */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_layernorm[] = {
    {NULL, 0},
};
