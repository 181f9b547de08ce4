/* Unit tests for proto/json: the parser's grammar, strings, limits and
 * messages, and exact number conversions (checked against strtod/strtof,
 * also on decimals next to the halfway points between floats). Every text is
 * parsed from a heap copy of exactly its length, so that AddressSanitizer
 * catches a read past the span. */
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
#include "proto/json.h"

static arena *A;
static err E;

static int setup(void **state) {
  A = arena_create(1 << 16);
  return A ? 0 : -1;
}

static int teardown(void **state) {
  arena_destroy(A);
  return 0;
}

/* The copy stays alive until the arena is reset (strings point into it). */
static char *copies[64];
static size_t n_copies;

static void reset(void) {
  arena_reset(A);
  for (size_t i = 0; i < n_copies; i++)
    free(copies[i]);
  n_copies = 0;
}

static int parse_n(const char *text, size_t len, int depth, const json_value **root) {
  if (n_copies == sizeof copies / sizeof copies[0]) reset();
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, text, len);
  copies[n_copies++] = copy;
  memset(&E, 0, sizeof E);
  return json_parse(A, copy, len, depth, root, &E);
}

static int parse(const char *text, const json_value **root) {
  return parse_n(text, strlen(text), 64, root);
}

static const json_value *ok(const char *text) {
  const json_value *r = NULL;
  int rc = parse(text, &r);
  if (rc) fail_msg("'%s' failed: %s", text, E.msg);
  return r;
}

static void fails(const char *text, const char *msg) {
  const json_value *r;
  int rc = parse(text, &r);
  if (rc != -EINVAL) fail_msg("'%s' gave %d, not -EINVAL", text, rc);
  if (!strstr(E.msg, msg)) fail_msg("'%s': message '%s' lacks '%s'", text, E.msg, msg);
}

/* ---- grammar ------------------------------------------------------------- */

static void values_and_structure(void **state) {
  const json_value *r =
      ok(" {\"a\": [1, -2.5e3, true, false, null, \"s\"], \"b\": {}, \"c\": []}\n");
  assert_int_equal(r->type, JSON_OBJECT);
  assert_int_equal(r->len, 3);
  assert_true(json_eq(&r->u.members[0].key, "a"));
  assert_true(json_eq(&r->u.members[2].key, "c"));
  const json_value *a = json_get(r, "a");
  assert_non_null(a);
  assert_int_equal(a->type, JSON_ARRAY);
  assert_int_equal(a->len, 6);
  assert_int_equal(a->u.items[0].type, JSON_NUMBER);
  assert_int_equal(a->u.items[1].flags, JSON_NUM_NEG | JSON_NUM_FRAC | JSON_NUM_EXP);
  assert_int_equal(a->u.items[2].type, JSON_BOOL);
  assert_int_equal(a->u.items[2].flags, 1);
  assert_int_equal(a->u.items[3].flags, 0);
  assert_int_equal(a->u.items[4].type, JSON_NULL);
  assert_true(json_eq(&a->u.items[5], "s"));
  assert_string_equal(json_type_name(&a->u.items[5]), "string");
  assert_int_equal(json_get(r, "b")->type, JSON_OBJECT);
  assert_int_equal(json_get(r, "b")->len, 0);
  assert_int_equal(json_get(r, "c")->len, 0);
  assert_null(json_get(r, "d"));
  assert_null(json_get(a, "a")); /* not an object */
  /* scalars at top level */
  assert_int_equal(ok("7")->type, JSON_NUMBER);
  assert_int_equal(ok("\"x\"")->type, JSON_STRING);
  assert_int_equal(ok(" null ")->type, JSON_NULL);
  /* duplicate keys are kept in order; json_get finds the first */
  r = ok("{\"k\":1,\"k\":2}");
  assert_int_equal(r->len, 2);
  int64_t v;
  assert_int_equal(json_number_i64(json_get(r, "k"), &v), 0);
  assert_int_equal(v, 1);
  reset();
}

static void large_array(void **state) {
  /* Enough items to grow the scratch stack several times, nested inside
   * objects so that closing copies the right runs. */
  buf b = {0};
  buf_puts(&b, "{\"x\":[");
  for (int i = 0; i < 100000; i++)
    buf_printf(&b, i ? ",%d" : "%d", i);
  buf_puts(&b, "],\"y\":[[1],[2,3]]}");
  const json_value *r;
  assert_int_equal(parse_n(b.data, b.len, 8, &r), 0);
  const json_value *x = json_get(r, "x");
  assert_int_equal(x->len, 100000);
  for (int i = 0; i < 100000; i += 997) {
    int64_t v;
    assert_int_equal(json_number_i64(&x->u.items[i], &v), 0);
    assert_int_equal(v, i);
  }
  const json_value *y = json_get(r, "y");
  assert_int_equal(y->len, 2);
  assert_int_equal(y->u.items[1].len, 2);
  buf_free(&b);
  reset();
}

static void grammar_errors(void **state) {
  fails("", "at byte 0: expected a value, got the end of the text");
  fails("   ", "at byte 3: expected a value");
  fails("[1,]", "at byte 3: expected a value, got ']'");
  fails("{\"a\":1,}", "at byte 7: expected a string key in object, got '}'");
  fails("{\"a\" 1}", "at byte 5: expected ':' after object key, got '1'");
  fails("{\"a\":1 \"b\":2}", "at byte 7: expected ',' or '}' after object member, got '\"'");
  fails("[1 2]", "at byte 3: expected ',' or ']' after array element, got '2'");
  fails("[1", "at byte 2: expected ',' or ']' after array element, got the end of the text");
  fails("{1:2}", "at byte 1: expected a string key in object, got '1'");
  fails("{\"a\":}", "at byte 5: expected a value, got '}'");
  fails("[1]x", "at byte 3: unexpected 'x' after the JSON value");
  fails("1 2", "at byte 2: unexpected '2' after the JSON value");
  fails("tru", "at byte 0: expected a value, got 't'");
  fails("nul", "expected a value, got 'n'");
  fails("True", "expected a value, got 'T'");
  fails("'a'", "expected a value, got '''");
  fails("[\x01]", "expected a value, got byte 0x01");
  fails("01", "at byte 0: number with a leading zero");
  fails("-", "at byte 1: expected a digit after '-'");
  fails("-a", "at byte 1: expected a digit after '-'");
  fails("+1", "expected a value, got '+'");
  fails(".5", "expected a value, got '.'");
  fails("1.", "at byte 2: expected a digit after '.' in number");
  fails("1.e5", "at byte 2: expected a digit after '.'");
  fails("1e", "at byte 2: expected a digit in the exponent");
  fails("1e+", "at byte 3: expected a digit in the exponent");
  fails("-NaN", "expected a digit after '-'");
  fails("Inf", "expected a value, got 'I'");
  fails("NaNa", "unexpected 'a' after the JSON value");
  reset();
}

static void strings(void **state) {
  const char *in = "\"plain\"";
  const json_value *r = ok(in);
  assert_int_equal(r->len, 5);
  /* without escapes the string points into the text */
  assert_ptr_equal(r->u.s, copies[n_copies - 1] + 1);

  r = ok("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"");
  assert_int_equal(r->len, 14);
  assert_memory_equal(r->u.s, "q\" b\\ s/ \b\f\n\r\t", 14);

  r = ok("\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"");
  assert_int_equal(r->len, 1 + 2 + 3 + 4);
  assert_memory_equal(r->u.s, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10);

  r = ok("\"a\\u0000b\"");
  assert_int_equal(r->len, 3);
  assert_memory_equal(r->u.s, "a\0b", 3);
  char *dup = json_strdup(A, r);
  assert_string_equal(dup, "a");

  /* raw UTF-8 of every length, and DEL, pass */
  r = ok("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"");
  assert_int_equal(r->len, 10);
  reset();
}

static void string_errors(void **state) {
  fails("\"abc", "at byte 0: unterminated string");
  fails("\"abc\\\"", "at byte 0: unterminated string");
  fails("\"a\\", "at byte 0: unterminated string");
  fails("\"a\nb\"", "at byte 2: control character 0x0a in string");
  fails("\"\x1f\"", "control character 0x1f");
  fails("\"\\x41\"", "at byte 1: invalid escape: backslash followed by 'x'");
  fails("\"\\u12\"", "\\u must be followed by four hex digits");
  fails("\"\\u12G4\"", "\\u must be followed by four hex digits");
  fails("\"\\ud800\"", "at byte 1: lone high surrogate \\uD800");
  fails("\"\\ud800\\u0041\"", "lone high surrogate \\uD800");
  fails("\"\\udc00\"", "lone low surrogate \\uDC00");
  fails("\"x\\ude00\\ud83d\"", "at byte 2: lone low surrogate");
  fails("\"\x80\"", "at byte 1: invalid UTF-8 in string");
  fails("\"\xc0\xaf\"", "invalid UTF-8");
  fails("\"\xe0\x80\xaf\"", "invalid UTF-8");
  fails("\"\xed\xa0\x80\"", "invalid UTF-8"); /* an encoded surrogate */
  fails("\"\xf4\x90\x80\x80\"", "invalid UTF-8");
  fails("\"ab\xe2\x82\"", "at byte 3: invalid UTF-8");
  fails("\"\\n\xff\"", "at byte 3: invalid UTF-8"); /* also after an escape */
  fails("\"\\n\x01\"", "control character 0x01");
  reset();
}

static void depth_limit(void **state) {
  const json_value *r;
  assert_int_equal(parse_n("[[1]]", 5, 2, &r), 0);
  assert_int_equal(parse_n("[[[1]]]", 7, 2, &r), -EINVAL);
  assert_non_null(strstr(E.msg, "at byte 2: nesting deeper than 2"));
  assert_int_equal(parse_n("{\"a\":{\"b\":{}}}", 14, 2, &r), -EINVAL);
  /* a million brackets: an error, without recursion */
  size_t n = 1000000;
  char *deep = malloc(n);
  memset(deep, '[', n);
  assert_int_equal(parse_n(deep, n, 64, &r), -EINVAL);
  assert_non_null(strstr(E.msg, "nesting deeper than 64"));
  free(deep);
  reset();
}

static void span_is_respected(void **state) {
  /* The span ends before the text's natural end: what lies past it is never
   * read (the copy has exactly len bytes). */
  const json_value *r;
  assert_int_equal(parse_n("[1,2]", 4, 8, &r), -EINVAL);
  assert_int_equal(parse_n("\"abc\"", 4, 8, &r), -EINVAL);
  assert_int_equal(parse_n("true", 3, 8, &r), -EINVAL);
  assert_int_equal(parse_n("-Infinity", 5, 8, &r), -EINVAL);
  assert_int_equal(parse_n("\"\\u00e9\"", 6, 8, &r), -EINVAL);
  assert_int_equal(parse_n("\"\xe2\x82\xac\"", 3, 8, &r), -EINVAL);
  assert_int_equal(parse_n("12345", 3, 8, &r), 0);
  int64_t v;
  assert_int_equal(json_number_i64(r, &v), 0);
  assert_int_equal(v, 123);
  assert_int_equal(parse_n("1.5e10", 4, 8, &r), -EINVAL);
  assert_int_equal(parse_n("1.5e10", 3, 8, &r), 0);
  assert_true(json_number_f64(r) == 1.5);
  reset();
}

/* ---- numbers ------------------------------------------------------------- */

static void integers(void **state) {
  int64_t i;
  uint64_t u;
  assert_int_equal(json_number_i64(ok("9223372036854775807"), &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(json_number_i64(ok("-9223372036854775808"), &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(json_number_i64(ok("9223372036854775808"), &i), -ERANGE);
  assert_int_equal(json_number_i64(ok("-9223372036854775809"), &i), -ERANGE);
  assert_int_equal(json_number_u64(ok("18446744073709551615"), &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(json_number_u64(ok("18446744073709551616"), &u), -ERANGE);
  assert_int_equal(json_number_u64(ok("99999999999999999999999"), &u), -ERANGE);
  assert_int_equal(json_number_u64(ok("-1"), &u), -ERANGE);
  assert_int_equal(json_number_u64(ok("-0"), &u), 0);
  assert_true(u == 0);
  assert_int_equal(json_number_i64(ok("0"), &i), 0);
  assert_int_equal(json_number_i64(ok("1.0"), &i), -EINVAL);
  assert_int_equal(json_number_i64(ok("1e3"), &i), -EINVAL);
  assert_int_equal(json_number_i64(ok("NaN"), &i), -EINVAL);
  assert_int_equal(json_number_u64(ok("Infinity"), &u), -EINVAL);
  assert_int_equal(json_number_i64(ok("\"1\""), &i), -EINVAL);
  reset();
}

static void special_tokens(void **state) {
  assert_true(isnan(json_number_f64(ok("NaN"))));
  assert_true(isnan(json_number_f32(ok("NaN"))));
  assert_true(json_number_f64(ok("Infinity")) == INFINITY);
  assert_true(json_number_f32(ok("-Infinity")) == -INFINITY);
  const json_value *r = ok("[NaN,-Infinity,Infinity]");
  assert_int_equal(r->u.items[1].flags, JSON_NUM_NEG | JSON_NUM_INF);
  double z = json_number_f64(ok("-0.0"));
  assert_true(z == 0 && signbit(z));
  assert_true(signbit(json_number_f32(ok("-0"))));
  assert_true(json_number_f64(ok("1e400")) == INFINITY);
  assert_true(json_number_f64(ok("-1e400")) == -INFINITY);
  assert_true(json_number_f64(ok("1e-400")) == 0);
  assert_true(json_number_f32(ok("1e39")) == INFINITY);
  assert_true(json_number_f32(ok("1e-50")) == 0);
  reset();
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Parses s as a number and compares both conversions with libc's. */
static void check_number(const char *s) {
  const json_value *r;
  int rc = parse_n(s, strlen(s), 4, &r);
  if (rc) fail_msg("'%s' does not parse: %s", s, E.msg);
  double d = json_number_f64(r), dref = strtod(s, NULL);
  float f = json_number_f32(r), fref = strtof(s, NULL);
  if (memcmp(&d, &dref, 8)) fail_msg("%s: f64 %a, strtod %a", s, d, dref);
  if (memcmp(&f, &fref, 4)) fail_msg("%s: f32 %a, strtof %a", s, f, fref);
  if (n_copies > 60) reset();
}

static void random_decimals(void **state) {
  char s[96];
  for (int i = 0; i < 300000; i++) {
    int digits = 1 + (int)(next_random() % 24);
    int point = (int)(next_random() % (unsigned)(digits + 1));
    int n = 0;
    if (next_random() & 1) s[n++] = '-';
    for (int k = 0; k < digits; k++) {
      if (k == point && k > 0) s[n++] = '.';
      char c = (char)('0' + next_random() % 10);
      if (k == 0 && c == '0' && digits > 1 && point != 1) c = '1'; /* no leading zero */
      s[n++] = c;
    }
    if (next_random() % 3) {
      int range = (i % 4 == 0) ? 700 : 60; /* mostly the common range, also the extremes */
      n += snprintf(s + n, sizeof s - (size_t)n, "e%d", (int)(next_random() % range) - range / 2);
    }
    s[n] = 0;
    check_number(s);
  }
  reset();
}

/* Decimals at, just below and just above the halfway point between two
 * adjacent floats or doubles: where one rounding too many goes wrong. */
static void halfway_points(void **state) {
  char s[1200];
  for (int i = 0; i < 20000; i++) {
    uint32_t u = (uint32_t)next_random() & 0x7f7fffff;
    float f;
    memcpy(&f, &u, 4);
    double mid = ((double)f + (double)nextafterf(f, INFINITY)) / 2; /* exact */
    for (int digits = 9; digits <= 20; digits++) {
      snprintf(s, sizeof s, "%.*e", digits - 1, mid);
      check_number(s);
    }
    snprintf(s, sizeof s, "%.60e", mid); /* exactly the midpoint */
    check_number(s);
  }
  for (int i = 0; i < 20000; i++) {
    uint64_t u = next_random() & 0x7fefffffffffffffULL;
    double d;
    memcpy(&d, &u, 8);
    long double mid = ((long double)d + (long double)nextafter(d, INFINITY)) / 2;
    for (int digits = 16; digits <= 20; digits++) {
      snprintf(s, sizeof s, "%.*Le", digits - 1, mid);
      check_number(s);
    }
  }
  /* The double nearest a float midpoint is the midpoint itself: the f32
   * path must see that and not round twice. */
  check_number("1.00000005960464477539062");  /* 1 + 2^-24: exactly halfway */
  check_number("1.000000059604644775390625"); /* exact */
  check_number("1.0000000596046447753906251");
  check_number("1.0000000596046447753906249");
  check_number("9007199254740993");
  check_number("9007199254740993.0000000001");
  check_number("2.2250738585072011e-308");
  check_number("2.2250738585072012e-308");
  check_number("4.9406564584124654e-324");
  check_number("2.4703282292062328e-324");
  check_number("1.7976931348623158e308");
  check_number("3.4028235677973366e38");
  check_number("1.4012984643248170e-45");
  check_number("0.000000000000000000000000000000000000000000000000000000000001");
  reset();
}

static void long_numbers(void **state) {
  /* More digits than any buffer on the stack: strtod on a heap copy. */
  buf b = {0};
  buf_puts(&b, "0.");
  for (int i = 0; i < 1000; i++)
    buf_putc(&b, (char)('0' + i % 10));
  buf_puts(&b, "e-3");
  buf_putc(&b, 0);
  check_number(b.data);
  b.len = 0;
  buf_puts(&b, "1");
  for (int i = 0; i < 400; i++)
    buf_putc(&b, '0');
  buf_putc(&b, 0);
  check_number(b.data); /* 1e400 */
  buf_free(&b);
  reset();
}

/* Whatever json_write writes, the parser reads back to the same value. */
static void writer_round_trip(void **state) {
  buf b = {0};
  for (int i = 0; i < 200000; i++) {
    uint64_t bits = next_random();
    float f;
    uint32_t u = (uint32_t)bits;
    memcpy(&f, &u, 4);
    double d;
    memcpy(&d, &bits, 8);
    b.len = 0;
    json_put_f32(&b, f);
    const json_value *r;
    assert_int_equal(parse_n(b.data, b.len, 4, &r), 0);
    float f2 = json_number_f32(r);
    if (!isnan(f) && memcmp(&f, &f2, 4)) fail_msg("%a -> %.*s -> %a", f, (int)b.len, b.data, f2);
    b.len = 0;
    json_put_f64(&b, d);
    assert_int_equal(parse_n(b.data, b.len, 4, &r), 0);
    double d2 = json_number_f64(r);
    if (!isnan(d) && memcmp(&d, &d2, 8)) fail_msg("%a -> %.*s -> %a", d, (int)b.len, b.data, d2);
    if (n_copies > 60) reset();
  }
  buf_free(&b);
  reset();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(values_and_structure), cmocka_unit_test(large_array),
      cmocka_unit_test(grammar_errors),       cmocka_unit_test(strings),
      cmocka_unit_test(string_errors),        cmocka_unit_test(depth_limit),
      cmocka_unit_test(span_is_respected),    cmocka_unit_test(integers),
      cmocka_unit_test(special_tokens),       cmocka_unit_test(random_decimals),
      cmocka_unit_test(halfway_points),       cmocka_unit_test(long_numbers),
      cmocka_unit_test(writer_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
