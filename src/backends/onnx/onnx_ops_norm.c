/* backends/onnx/onnx_ops_norm.c: normalisation over channels (BatchNormalization,
 * InstanceNormalization, LRN). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_norm[] = {
    {NULL, 0},
};
