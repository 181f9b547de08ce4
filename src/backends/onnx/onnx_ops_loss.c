/* backends/onnx/onnx_ops_loss.c: losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_loss[] = {
    {NULL, 0},
};
