/* Unit tests for core/json_write: string escaping and UTF-8 checking, and
 * shortest round-trip floats and doubles (checked against strtof/strtod and
 * against the shortest "%.Ng" that reads back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "core/json_write.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* The buffer's text as a C string (tests keep it short). */
static const char *text(buf *b) {
  static char out[4096];
  assert_true(b->len < sizeof out);
  memcpy(out, b->data, b->len);
  out[b->len] = 0;
  return out;
}

/* ---- strings ------------------------------------------------------------- */

static void escapes(void **state) {
  buf b = {0};
  assert_true(json_put_string(&b, "a\"b\\c/d\n\r\t\b\f", 12));
  assert_string_equal(text(&b), "\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\"");
  b.len = 0;
  assert_true(json_put_string(&b, "\x01\x1f\x7f", 3));
  assert_string_equal(text(&b), "\"\\u0001\\u001f\x7f\"");
  b.len = 0;
  assert_true(json_put_string(&b, "nul\0in", 6));
  assert_string_equal(text(&b), "\"nul\\u0000in\"");
  b.len = 0;
  /* 2, 3 and 4-byte sequences pass through untouched */
  assert_true(json_put_string(&b, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
  assert_string_equal(text(&b), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  b.len = 0;
  assert_true(json_put_string(&b, "", 0));
  assert_string_equal(text(&b), "\"\"");
  buf_free(&b);
}

static void long_string_with_many_escapes(void **state) {
  /* Every byte an escape: the buffer must grow as it goes. */
  char in[3000];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (char)(i % 2 ? '\n' : 1);
  buf b = {0};
  assert_true(json_put_string(&b, in, sizeof in));
  assert_false(b.oom);
  assert_int_equal(b.len, 2 + 1500 * 2 + 1500 * 6);
  assert_memory_equal(b.data, "\"\\u0001\\n\\u0001", 15);
  assert_int_equal(b.data[b.len - 1], '"');
  buf_free(&b);
}

static void invalid_utf8_refused(void **state) {
  static const char *bad[] = {
      "\x80",             /* lone continuation */
      "\xc0\x80",         /* overlong NUL */
      "\xc1\xbf",         /* overlong */
      "\xe0\x80\x80",     /* overlong 3-byte */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf0\x80\x80\x80", /* overlong 4-byte */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xf5\x80\x80\x80", /* invalid lead */
      "\xe2\x82",         /* truncated */
      "ok\xff",           /* 0xff never appears */
  };
  buf b = {0};
  buf_puts(&b, "prefix");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_false(json_put_string(&b, bad[i], strlen(bad[i])));
    assert_int_equal(b.len, 6); /* nothing written */
  }
  buf_free(&b);
}

static void cstr_replaces_invalid_bytes(void **state) {
  buf b = {0};
  json_put_cstr(&b, "a\xff"
                    "b\xe2\x82");
  assert_string_equal(text(&b), "\"a\xef\xbf\xbd"
                                "b\xef\xbf\xbd\xef\xbf\xbd\"");
  b.len = 0;
  json_put_cstr(&b, "model \"x\"");
  assert_string_equal(text(&b), "\"model \\\"x\\\"\"");
  buf_free(&b);
}

static void oom_writes_nothing(void **state) {
  buf b = {0};
  b.oom = true;
  json_put_f32(&b, 1.5f);
  json_put_f64(&b, 2.5);
  json_put_cstr(&b, "x");
  assert_true(json_put_string(&b, "x", 1));
  assert_false(json_put_string(&b, "\xff", 1));
  assert_int_equal(b.len, 0);
}

/* ---- numbers ------------------------------------------------------------- */

static const char *f32s(float v) {
  static buf b;
  b.len = 0;
  json_put_f32(&b, v);
  return text(&b);
}

static const char *f64s(double v) {
  static buf b;
  b.len = 0;
  json_put_f64(&b, v);
  return text(&b);
}

/* Significant digits of a decimal string (leading and trailing zeros of the
 * digit string aside). */
static int sig_digits(const char *s) {
  char d[64];
  int n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9') d[n++] = *s;
  int a = 0, z = n;
  while (a < n && d[a] == '0')
    a++;
  while (z > a && d[z - 1] == '0')
    z--;
  return z - a;
}

static void check_f32(float v, bool shortest) {
  const char *s = f32s(v);
  float back = strtof(s, NULL);
  if (memcmp(&back, &v, 4) != 0) fail_msg("%a written as %s reads back as %a", v, s, back);
  if (!shortest) return;
  char ref[64];
  int p;
  for (p = 1; p < 9; p++) {
    snprintf(ref, sizeof ref, "%.*g", p, v);
    if (strtof(ref, NULL) == v) break;
  }
  if (sig_digits(s) > p) fail_msg("%a written as %s, longer than %.*g", v, s, p, v);
}

static void check_f64(double v, bool shortest) {
  const char *s = f64s(v);
  double back = strtod(s, NULL);
  if (memcmp(&back, &v, 8) != 0) fail_msg("%a written as %s reads back as %a", v, s, back);
  if (!shortest) return;
  char ref[64];
  int p;
  for (p = 1; p < 17; p++) {
    snprintf(ref, sizeof ref, "%.*g", p, v);
    if (strtod(ref, NULL) == v) break;
  }
  if (sig_digits(s) > p) fail_msg("%a written as %s, longer than %.*g", v, s, p, v);
}

static void float_edge_cases(void **state) {
  assert_string_equal(f32s(0.1f), "0.1");
  assert_string_equal(f32s(0.3f), "0.3");
  assert_string_equal(f32s(1.0f), "1");
  assert_string_equal(f32s(-2.5f), "-2.5");
  assert_string_equal(f32s(100.0f), "100");
  assert_string_equal(f32s(0.0f), "0");
  assert_string_equal(f32s(-0.0f), "-0");
  assert_string_equal(f32s(FLT_MAX), "3.4028235e+38");
  assert_string_equal(f32s(-FLT_MAX), "-3.4028235e+38");
  assert_string_equal(f32s(FLT_MIN), "1.1754944e-38");
  assert_string_equal(f32s(FLT_TRUE_MIN), "1e-45");
  assert_string_equal(f32s(16777216.0f), "16777216");
  assert_string_equal(f32s(1e10f), "10000000000");
  assert_string_equal(f32s(1e16f), "1e+16");
  assert_string_equal(f32s(1e-4f), "0.0001");
  assert_string_equal(f32s(1e-5f), "1e-5");
  assert_string_equal(f32s(123456.7f), "123456.7");
  assert_string_equal(f32s(NAN), "NaN");
  assert_string_equal(f32s(INFINITY), "Infinity");
  assert_string_equal(f32s(-INFINITY), "-Infinity");
  /* every power of ten a float can hold is one digit */
  for (int e = -45; e <= 38; e++) {
    char lit[16];
    snprintf(lit, sizeof lit, "1e%d", e);
    float v = strtof(lit, NULL);
    assert_int_equal(sig_digits(f32s(v)), 1);
    check_f32(v, true);
  }
  /* around the subnormal boundary and the binade edges */
  float edges[] = {FLT_MIN,
                   nextafterf(FLT_MIN, 0),
                   nextafterf(FLT_MIN, 1),
                   FLT_TRUE_MIN * 3,
                   nextafterf(FLT_MAX, 0),
                   8388608.0f,
                   8388607.5f,
                   0.5f,
                   2.0f,
                   1.0f / 3};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    check_f32(edges[i], true);
    check_f32(-edges[i], true);
  }
}

static void float_random_round_trip(void **state) {
  for (int i = 0; i < 2000000; i++) {
    uint32_t u = (uint32_t)next_random();
    float v;
    memcpy(&v, &u, 4);
    if (!isfinite(v)) continue;
    check_f32(v, i % 8 == 0);
  }
}

static void float_every_subnormal(void **state) {
  for (uint32_t u = 1; u < 0x800000; u++) {
    float v;
    memcpy(&v, &u, 4);
    check_f32(v, u % 64 == 0 || u < 4096);
  }
}

static void double_edge_cases(void **state) {
  assert_string_equal(f64s(0.1), "0.1");
  assert_string_equal(f64s(0.1 + 0.2), "0.30000000000000004");
  assert_string_equal(f64s(1e22), "1e+22");
  assert_string_equal(f64s(1e23), "1e+23");
  assert_string_equal(f64s(1e15), "1000000000000000");
  assert_string_equal(f64s(1e16), "1e+16");
  assert_string_equal(f64s(-0.0), "-0");
  assert_string_equal(f64s(DBL_MAX), "1.7976931348623157e+308");
  assert_string_equal(f64s(DBL_MIN), "2.2250738585072014e-308");
  assert_string_equal(f64s(DBL_TRUE_MIN), "5e-324");
  assert_string_equal(f64s(9007199254740993.0), "9007199254740992");
  assert_string_equal(f64s(123.456), "123.456");
  assert_string_equal(f64s(-1.5e-7), "-1.5e-7");
  assert_string_equal(f64s(NAN), "NaN");
  assert_string_equal(f64s(-INFINITY), "-Infinity");
  for (int e = -323; e <= 308; e++) {
    char lit[16];
    snprintf(lit, sizeof lit, "1e%d", e);
    double v = strtod(lit, NULL);
    assert_int_equal(sig_digits(f64s(v)), 1);
    check_f64(v, true);
  }
  double edges[] = {DBL_MIN,
                    nextafter(DBL_MIN, 0),
                    nextafter(DBL_MIN, 1),
                    DBL_TRUE_MIN * 2,
                    DBL_TRUE_MIN * 3,
                    nextafter(DBL_MAX, 0),
                    4503599627370496.0,
                    4503599627370495.5,
                    1.0 / 3,
                    2.0 / 3,
                    5e-324 * 1000};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    check_f64(edges[i], true);
    check_f64(-edges[i], true);
  }
}

static void double_random_round_trip(void **state) {
  for (int i = 0; i < 1000000; i++) {
    uint64_t u = next_random();
    double v;
    memcpy(&v, &u, 8);
    if (!isfinite(v)) continue;
    check_f64(v, i % 8 == 0);
  }
  /* doubles with few digits, the usual case for data: must come back short */
  for (int i = 0; i < 200000; i++) {
    char lit[32];
    snprintf(lit, sizeof lit, "%llue%d", (unsigned long long)(next_random() % 1000000),
             (int)(next_random() % 40) - 20);
    double v = strtod(lit, NULL);
    check_f64(v, true);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(escapes),
      cmocka_unit_test(long_string_with_many_escapes),
      cmocka_unit_test(invalid_utf8_refused),
      cmocka_unit_test(cstr_replaces_invalid_bytes),
      cmocka_unit_test(oom_writes_nothing),
      cmocka_unit_test(float_edge_cases),
      cmocka_unit_test(float_random_round_trip),
      cmocka_unit_test(float_every_subnormal),
      cmocka_unit_test(double_edge_cases),
      cmocka_unit_test(double_random_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
