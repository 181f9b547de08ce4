/* backends/onnx/onnx_ops_generate.c: tensors made from nothing or from shapes (ConstantOfShape,
 * Range, EyeLike, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_generate[] = {
    {NULL, 0},
};
