/* backends/onnx/onnx_ops_logic.c: comparisons and logic (Equal, Less, Greater, Not, And, Or, Xor,
 * Where, BitShift, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_logic[] = {
    {NULL, 0},
};
