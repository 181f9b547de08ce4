/* core/dtype.c: element types. */
#include "core/dtype.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  const char *config;
  size_t size;
} types[] = {
    [INFERD_TYPE_INVALID] = {"INVALID", "TYPE_INVALID", 0},
    [INFERD_TYPE_BOOL] = {"BOOL", "TYPE_BOOL", 1},
    [INFERD_TYPE_UINT8] = {"UINT8", "TYPE_UINT8", 1},
    [INFERD_TYPE_UINT16] = {"UINT16", "TYPE_UINT16", 2},
    [INFERD_TYPE_UINT32] = {"UINT32", "TYPE_UINT32", 4},
    [INFERD_TYPE_UINT64] = {"UINT64", "TYPE_UINT64", 8},
    [INFERD_TYPE_INT8] = {"INT8", "TYPE_INT8", 1},
    [INFERD_TYPE_INT16] = {"INT16", "TYPE_INT16", 2},
    [INFERD_TYPE_INT32] = {"INT32", "TYPE_INT32", 4},
    [INFERD_TYPE_INT64] = {"INT64", "TYPE_INT64", 8},
    [INFERD_TYPE_FP16] = {"FP16", "TYPE_FP16", 2},
    [INFERD_TYPE_FP32] = {"FP32", "TYPE_FP32", 4},
    [INFERD_TYPE_FP64] = {"FP64", "TYPE_FP64", 8},
    [INFERD_TYPE_BYTES] = {"BYTES", "TYPE_STRING", 0},
    [INFERD_TYPE_BF16] = {"BF16", "TYPE_BF16", 2},
};
#define NTYPES (sizeof types / sizeof types[0])
_Static_assert(NTYPES == INFERD_TYPE_BF16 + 1, "dtype table must list every inferd_dtype");

static bool valid(inferd_dtype t) { return (unsigned)t < NTYPES; }

size_t dtype_size(inferd_dtype t) { return valid(t) ? types[t].size : 0; }
const char *dtype_name(inferd_dtype t) { return valid(t) ? types[t].name : "INVALID"; }
const char *dtype_config_name(inferd_dtype t) {
  return valid(t) ? types[t].config : "TYPE_INVALID";
}

inferd_dtype dtype_from_name(const char *s, size_t n) {
  for (size_t i = 1; i < NTYPES; i++)
    if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0) return (inferd_dtype)i;
  return INFERD_TYPE_INVALID;
}

inferd_dtype dtype_from_config_name(const char *s, size_t n) {
  for (size_t i = 1; i < NTYPES; i++)
    if (strlen(types[i].config) == n && memcmp(types[i].config, s, n) == 0) return (inferd_dtype)i;
  return INFERD_TYPE_INVALID;
}

int64_t shape_elements(const int64_t *shape, int ndim) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] && n > INT64_MAX / shape[i]) return -1;
    n *= shape[i];
  }
  return n;
}

void shape_format(char *out, size_t size, const int64_t *shape, int ndim) {
  size_t len = 0;
  if (size == 0) return;
  out[0] = 0;
  len += (size_t)snprintf(out, size, "[");
  for (int i = 0; i < ndim && len < size; i++)
    len += (size_t)snprintf(out + len, size - len, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (len < size) snprintf(out + len, size - len, "]");
}

/* ---- half precision ------------------------------------------------------ */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float fp16_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (man << 13)); /* inf, nan */
  if (exp == 0) {
    /* zero or subnormal: man * 2^-24 */
    float v = (float)man * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even, as IEEE conversion does. */
uint16_t float_to_fp16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t exp = (u >> 23) & 0xff;
  uint32_t man = u & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t half = 1u << (shift - 1);
    uint32_t rounded = man >> shift;
    uint32_t rest = man & ((1u << shift) - 1);
    if (rest > half || (rest == half && (rounded & 1))) rounded++;
    return (uint16_t)(sign | rounded);
  }
  uint32_t rounded = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (rounded & 1)))
    rounded++; /* may carry into exp: still right */
  return (uint16_t)(sign | rounded);
}

float bf16_to_float(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t float_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

int64_t bytes_count(const void *data, size_t size) {
  const unsigned char *p = data;
  size_t off = 0;
  int64_t n = 0;
  while (off < size) {
    if (size - off < 4) return -1;
    uint32_t len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                   (uint32_t)p[off + 3] << 24;
    off += 4;
    if (len > size - off) return -1;
    off += len;
    n++;
  }
  return n;
}
