/* backends/onnx/onnx_ops_conv.c: convolutions (Conv, ConvTranspose). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_conv[] = {
    {NULL, 0},
};
