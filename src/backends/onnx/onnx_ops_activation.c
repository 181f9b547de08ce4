/* backends/onnx/onnx_ops_activation.c: activation functions (LeakyRelu, Elu, Selu, HardSigmoid,
 * HardSwish, Gelu, Softplus, Clip, PRelu, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_activation[] = {
    {NULL, 0},
};
