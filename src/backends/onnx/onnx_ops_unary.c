/* backends/onnx/onnx_ops_unary.c: elementwise math (Exp, Log, Sqrt, Pow, Neg, Abs, Floor, Ceil,
 * Round, trigonometry, ...). */
#include "onnx_ops.h"

const onnx_op_row onnx_ops_unary[] = {
    {NULL, 0},
};
