/* core/dtype.h: element types: sizes, protocol and configuration names, the
 * half-precision conversions, and shape arithmetic. */
#ifndef INFERD_CORE_DTYPE_H
#define INFERD_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/backend.h"

/* Bytes per element; 0 for BYTES (variable) and INVALID. */
size_t dtype_size(inferd_dtype t);
/* Protocol name ("FP32", "BYTES"); "INVALID" for anything else. */
const char *dtype_name(inferd_dtype t);
/* Configuration name ("TYPE_FP32", "TYPE_STRING"). */
const char *dtype_config_name(inferd_dtype t);
/* INFERD_TYPE_INVALID when s[0..n) names no type. */
inferd_dtype dtype_from_name(const char *s, size_t n);
inferd_dtype dtype_from_config_name(const char *s, size_t n);

/* Product of the dimensions; -1 when a dimension is negative or the product
 * overflows int64. A scalar (ndim 0) has one element. */
int64_t shape_elements(const int64_t *shape, int ndim);
/* "[1,64]" into out (always NUL-terminated). */
void shape_format(char *out, size_t size, const int64_t *shape, int ndim);

float fp16_to_float(uint16_t h);
uint16_t float_to_fp16(float f);
float bf16_to_float(uint16_t h);
uint16_t float_to_bf16(float f);

/* Walks a BYTES tensor's data: the elements are 4-byte little-endian lengths
 * each followed by that many bytes. Returns the number of elements, or -1
 * when the data is not a whole sequence of them. */
int64_t bytes_count(const void *data, size_t size);

#endif
