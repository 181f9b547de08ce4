/* Unit tests for core/arena, core/buf, core/dtype and core/err. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/dtype.h"
#include "core/err.h"

static void arena_alignment_and_growth(void **state) {
  arena *a = arena_create(256);
  assert_non_null(a);
  for (int i = 0; i < 1000; i++) {
    char *p = arena_alloc(a, (size_t)(i % 37) + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, (size_t)(i % 37) + 1);
  }
  void *big = arena_alloc_aligned(a, 1 << 20, 64);
  assert_non_null(big);
  assert_int_equal((uintptr_t)big % 64, 0);
  memset(big, 1, 1 << 20);
  arena_reset(a);
  assert_int_equal(arena_used(a), 0);
  assert_string_equal(arena_strdup(a, "model"), "model");
  arena_destroy(a);
}

static void buf_appends_and_numbers(void **state) {
  buf b = {0};
  buf_puts(&b, "x=");
  buf_put_i64(&b, -9223372036854775807LL - 1);
  buf_putc(&b, ' ');
  buf_put_u64(&b, 18446744073709551615ULL);
  buf_printf(&b, " %s", "end");
  assert_false(b.oom);
  assert_int_equal(b.len, strlen("x=-9223372036854775808 18446744073709551615 end"));
  assert_memory_equal(b.data, "x=-9223372036854775808 18446744073709551615 end", b.len);
  buf_free(&b);
}

static void dtype_names_round_trip(void **state) {
  for (int t = INFERD_TYPE_BOOL; t <= INFERD_TYPE_BF16; t++) {
    const char *n = dtype_name((inferd_dtype)t);
    assert_int_equal(dtype_from_name(n, strlen(n)), t);
    const char *c = dtype_config_name((inferd_dtype)t);
    assert_int_equal(dtype_from_config_name(c, strlen(c)), t);
  }
  assert_int_equal(dtype_from_name("FP3", 3), INFERD_TYPE_INVALID);
  assert_int_equal(dtype_from_config_name("TYPE_STRING", 11), INFERD_TYPE_BYTES);
  assert_int_equal(dtype_size(INFERD_TYPE_FP64), 8);
  assert_int_equal(dtype_size(INFERD_TYPE_BYTES), 0);
}

static void shapes(void **state) {
  int64_t s[] = {2, 3, 4};
  assert_int_equal(shape_elements(s, 3), 24);
  assert_int_equal(shape_elements(s, 0), 1);
  int64_t neg[] = {2, -1};
  assert_int_equal(shape_elements(neg, 2), -1);
  int64_t huge[] = {INT64_MAX / 2, 3};
  assert_int_equal(shape_elements(huge, 2), -1);
  char out[64];
  shape_format(out, sizeof out, s, 3);
  assert_string_equal(out, "[2,3,4]");
}

static void half_precision(void **state) {
  assert_int_equal(float_to_fp16(1.0f), 0x3c00);
  assert_int_equal(float_to_fp16(-2.0f), 0xc000);
  assert_int_equal(float_to_fp16(65504.0f), 0x7bff);
  assert_int_equal(float_to_fp16(1e6f), 0x7c00);
  assert_int_equal(float_to_fp16(5.9604645e-8f), 0x0001); /* smallest subnormal */
  assert_true(fp16_to_float(0x3555) > 0.333f && fp16_to_float(0x3555) < 0.334f);
  for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half survives a round trip */
    assert_int_equal(float_to_fp16(fp16_to_float((uint16_t)h)), h);
  assert_int_equal(float_to_bf16(1.0f), 0x3f80);
  assert_true(bf16_to_float(0x4049) > 3.14f && bf16_to_float(0x4049) < 3.15f);
}

static void bytes_elements(void **state) {
  const unsigned char ok[] = {2, 0, 0, 0, 'h', 'i', 0, 0, 0, 0};
  assert_int_equal(bytes_count(ok, sizeof ok), 2);
  assert_int_equal(bytes_count(ok, 5), -1);
  assert_int_equal(bytes_count(ok, 3), -1);
  assert_int_equal(bytes_count(ok, 0), 0);
}

static void err_messages(void **state) {
  err e = {0};
  assert_int_equal(err_set(&e, -EINVAL, "bad %s", "shape"), -EINVAL);
  err_prefix(&e, "input '%s': ", "x");
  assert_string_equal(e.msg, "input 'x': bad shape");
  assert_int_equal(err_http_status(-EINVAL), 400);
  assert_int_equal(err_http_status(-ENOENT), 404);
  assert_int_equal(err_http_status(-EAGAIN), 503);
  assert_int_equal(err_http_status(-ENOMEM), 500);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(arena_alignment_and_growth),
      cmocka_unit_test(buf_appends_and_numbers),
      cmocka_unit_test(dtype_names_round_trip),
      cmocka_unit_test(shapes),
      cmocka_unit_test(half_precision),
      cmocka_unit_test(bytes_elements),
      cmocka_unit_test(err_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
