/* Unit tests for core/pbtxt: tokens, nesting, lists, escapes, comments,
 * conversions, malformed input with its line:column, and the schema check.
 * Every text is parsed from an exact-size heap copy that is freed before the
 * tree is used, so that ASan catches a read past the span or a node that
 * points into the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "core/arena.h"
#include "core/pbtxt.h"

static int parse_n(arena *a, const char *text, size_t n, pbtxt_node **root, err *e) {
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, text, n);
  memset(e, 0, sizeof *e);
  int rc = pbtxt_parse(a, copy, n, "t.pbtxt", root, e);
  free(copy);
  return rc;
}

static int parse(arena *a, const char *text, pbtxt_node **root, err *e) {
  return parse_n(a, text, strlen(text), root, e);
}

/* The i-th top-level field (0-based). */
static const pbtxt_node *nth(const pbtxt_node *msg, int i) {
  const pbtxt_node *n = msg->child;
  while (n && i--)
    n = n->next;
  assert_non_null(n);
  return n;
}

static size_t count_children(const pbtxt_node *msg) {
  size_t k = 0;
  for (const pbtxt_node *n = msg->child; n; n = n->next)
    k++;
  return k;
}

static void scalars_kinds_and_positions(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "name: \"resnet\"   # a comment: not { a field\n"
                     "max_batch_size: 8\n"
                     "  ratio : -1.5e3\n"
                     "flag: true kind: KIND_CPU\n"
                     "hex: 0x1F oct: 017 neg: - 42\n"
                     "f: 2.5f dot: .5 one: 1.\n";
  assert_int_equal(parse(a, text, &root, &e), 0);
  assert_int_equal(root->kind, PBTXT_MESSAGE);
  assert_null(root->name);
  assert_int_equal(count_children(root), 11);

  const pbtxt_node *n = nth(root, 0);
  assert_string_equal(n->name, "name");
  assert_int_equal(n->kind, PBTXT_STRING);
  assert_string_equal(n->text, "resnet");
  assert_int_equal(n->len, 6);
  assert_int_equal(n->pos.line, 1);
  assert_int_equal(n->pos.col, 1);
  assert_int_equal(n->vpos.line, 1);
  assert_int_equal(n->vpos.col, 7);
  assert_int_equal(n->field, -1);

  n = nth(root, 1);
  assert_int_equal(n->kind, PBTXT_INT);
  assert_string_equal(n->text, "8");
  assert_int_equal(n->pos.line, 2);

  n = nth(root, 2);
  assert_string_equal(n->name, "ratio");
  assert_int_equal(n->kind, PBTXT_FLOAT);
  assert_true(n->negative);
  assert_string_equal(n->text, "1.5e3");
  assert_int_equal(n->pos.line, 3);
  assert_int_equal(n->pos.col, 3);
  assert_int_equal(n->vpos.col, 11);
  double d;
  assert_int_equal(pbtxt_to_double(n, &d), 0);
  assert_true(d == -1500.0);

  n = nth(root, 3);
  assert_int_equal(n->kind, PBTXT_IDENT);
  bool b = false;
  assert_int_equal(pbtxt_to_bool(n, &b), 0);
  assert_true(b);
  n = nth(root, 4);
  assert_string_equal(n->name, "kind");
  assert_int_equal(n->kind, PBTXT_IDENT);
  assert_string_equal(n->text, "KIND_CPU");
  assert_int_equal(n->pos.line, 4);
  assert_int_equal(n->pos.col, 12);

  int64_t v;
  assert_int_equal(pbtxt_to_int64(nth(root, 5), &v), 0);
  assert_int_equal(v, 31);
  assert_int_equal(pbtxt_to_int64(nth(root, 6), &v), 0);
  assert_int_equal(v, 15);
  n = nth(root, 7);
  assert_true(n->negative);
  assert_int_equal(pbtxt_to_int64(n, &v), 0);
  assert_int_equal(v, -42);
  assert_int_equal(n->vpos.col, 25); /* where the '-' is */

  assert_int_equal(nth(root, 8)->kind, PBTXT_FLOAT);
  assert_int_equal(pbtxt_to_double(nth(root, 8), &d), 0);
  assert_true(d == 2.5);
  assert_int_equal(pbtxt_to_double(nth(root, 9), &d), 0);
  assert_true(d == 0.5);
  assert_int_equal(nth(root, 10)->kind, PBTXT_FLOAT);
  assert_int_equal(pbtxt_to_double(nth(root, 10), &d), 0);
  assert_true(d == 1.0);
  arena_destroy(a);
}

static void strings_escapes_and_concatenation(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "a: 'it''s' \"\\\"q\\\"\" 'x'\n"
                     "b: \"\\n\\t\\r\\\\\\'\\a\\b\\f\\v\\?\"\n"
                     "c: \"\\101\\x42\\x4a\\0z\\7\"\n"
                     "d: \"\\u00e9\\U0001F600\\u20AC\"\n"
                     "e: \"\"\n"
                     "f: \"caf\xc3\xa9 # not a comment\"\n";
  assert_int_equal(parse(a, text, &root, &e), 0);
  const pbtxt_node *n = nth(root, 0);
  assert_int_equal(n->kind, PBTXT_STRING);
  assert_int_equal(n->len, 7);
  assert_memory_equal(n->text, "its\"q\"x", 7);
  n = nth(root, 1);
  assert_int_equal(n->len, 10);
  assert_memory_equal(n->text, "\n\t\r\\'\a\b\f\v?", 10);
  n = nth(root, 2);
  assert_int_equal(n->len, 6);
  assert_memory_equal(n->text, "ABJ\0z\7", 6);
  n = nth(root, 3);
  assert_int_equal(n->len, 2 + 4 + 3);
  assert_memory_equal(n->text, "\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac", 9);
  n = nth(root, 4);
  assert_int_equal(n->len, 0);
  assert_string_equal(n->text, "");
  n = nth(root, 5);
  assert_string_equal(n->text, "caf\xc3\xa9 # not a comment");
  arena_destroy(a);
}

static void nesting_forms(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "outer {\n"
                     "  angle < x: 1 >\n"
                     "  colon: { y: 2; z: 3, }\n"
                     "  empty {}\n"
                     "}\n";
  assert_int_equal(parse(a, text, &root, &e), 0);
  assert_int_equal(count_children(root), 1);
  const pbtxt_node *outer = nth(root, 0);
  assert_int_equal(outer->kind, PBTXT_MESSAGE);
  assert_int_equal(outer->vpos.col, 7);
  assert_int_equal(count_children(outer), 3);
  const pbtxt_node *angle = nth(outer, 0);
  assert_string_equal(angle->name, "angle");
  assert_int_equal(angle->kind, PBTXT_MESSAGE);
  assert_string_equal(nth(angle, 0)->name, "x");
  const pbtxt_node *colon = nth(outer, 1);
  assert_int_equal(count_children(colon), 2);
  assert_string_equal(nth(colon, 1)->text, "3");
  assert_int_equal(nth(colon, 1)->pos.line, 3);
  assert_int_equal(nth(colon, 1)->pos.col, 18);
  const pbtxt_node *empty = nth(outer, 2);
  assert_int_equal(empty->kind, PBTXT_MESSAGE);
  assert_null(empty->child);
  arena_destroy(a);
}

static void lists_are_repeated_fields(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "dims: [ 3, -1,\n 224 ]\n"
                     "dims: 5\n"
                     "input [ { name: \"a\" }, < name: 'b' > ]\n"
                     "output: [ { name: \"c\" } ]\n"
                     "none: []\n"
                     "last: 1\n";
  assert_int_equal(parse(a, text, &root, &e), 0);
  assert_int_equal(count_children(root), 8);
  int64_t want[] = {3, -1, 224, 5};
  for (int i = 0; i < 4; i++) {
    const pbtxt_node *n = nth(root, i);
    assert_string_equal(n->name, "dims");
    int64_t v;
    assert_int_equal(pbtxt_to_int64(n, &v), 0);
    assert_int_equal(v, want[i]);
    assert_int_equal(n->in_list, i < 3);
  }
  assert_int_equal(nth(root, 1)->vpos.col, 12);
  assert_int_equal(nth(root, 2)->vpos.line, 2);
  assert_int_equal(nth(root, 2)->vpos.col, 2);
  assert_ptr_equal(nth(root, 0)->name, nth(root, 1)->name); /* one copy of the name */
  assert_string_equal(nth(root, 4)->name, "input");
  assert_int_equal(nth(root, 4)->kind, PBTXT_MESSAGE);
  assert_true(nth(root, 4)->in_list);
  assert_string_equal(nth(nth(root, 5), 0)->text, "b");
  assert_string_equal(nth(root, 6)->name, "output");
  assert_string_equal(nth(root, 7)->name, "last"); /* the empty list left nothing */
  arena_destroy(a);
}

static void comments_and_separators(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "# leading comment\n"
                     "a: 1, b: 2; c: 3 # trailing\n"
                     "#\n"
                     "d { e: 4 }, f < g: 5 >;\n"
                     "# no newline at the end";
  assert_int_equal(parse(a, text, &root, &e), 0);
  assert_int_equal(count_children(root), 5);
  assert_string_equal(nth(root, 3)->name, "d");
  assert_int_equal(nth(root, 3)->pos.line, 4);
  assert_string_equal(nth(root, 4)->name, "f");

  assert_int_equal(parse(a, "", &root, &e), 0);
  assert_null(root->child);
  assert_int_equal(parse(a, "  # only a comment", &root, &e), 0);
  assert_null(root->child);
  arena_destroy(a);
}

static void depth_limit(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  char text[8 * (PBTXT_MAX_DEPTH + 2)];
  for (int depth = PBTXT_MAX_DEPTH; depth <= PBTXT_MAX_DEPTH + 1; depth++) {
    size_t n = 0;
    for (int i = 0; i < depth; i++)
      n += (size_t)sprintf(text + n, "a{");
    for (int i = 0; i < depth; i++)
      text[n++] = '}';
    text[n] = 0;
    int rc = parse(a, text, &root, &e);
    if (depth == PBTXT_MAX_DEPTH) {
      assert_int_equal(rc, 0);
    } else {
      assert_int_equal(rc, -EINVAL);
      char want[96];
      snprintf(want, sizeof want, "t.pbtxt:1:%d: messages nested more than %d deep",
               2 * PBTXT_MAX_DEPTH + 2, PBTXT_MAX_DEPTH);
      assert_string_equal(e.msg, want);
    }
  }
  arena_destroy(a);
}

static void conversions(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "a: 9223372036854775807 b: -9223372036854775808 c: 9223372036854775808\n"
                     "d: -9223372036854775809 e: 18446744073709551615 f: 18446744073709551616\n"
                     "g: -1 h: -0x10 i: inf j: -Infinity k: nan l: True m: f n: 0 o: 1 p: 2\n"
                     "q: \"1\" r: yes s: 1.5 t: 0xffffffffffffffff u: 010\n";
  assert_int_equal(parse(a, text, &root, &e), 0);
  int64_t i;
  uint64_t u;
  double d;
  bool b;
  assert_int_equal(pbtxt_to_int64(nth(root, 0), &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(pbtxt_to_int64(nth(root, 1), &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(pbtxt_to_int64(nth(root, 2), &i), -ERANGE);
  assert_int_equal(pbtxt_to_uint64(nth(root, 2), &u), 0);
  assert_true(u == 9223372036854775808ull);
  assert_int_equal(pbtxt_to_int64(nth(root, 3), &i), -ERANGE);
  assert_int_equal(pbtxt_to_uint64(nth(root, 4), &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(pbtxt_to_uint64(nth(root, 5), &u), -ERANGE);
  assert_int_equal(pbtxt_to_uint64(nth(root, 6), &u), -ERANGE);
  assert_int_equal(pbtxt_to_int64(nth(root, 7), &i), 0);
  assert_int_equal(i, -16);
  assert_int_equal(pbtxt_to_double(nth(root, 8), &d), 0);
  assert_true(isinf(d) && d > 0);
  assert_int_equal(pbtxt_to_double(nth(root, 9), &d), 0);
  assert_true(isinf(d) && d < 0);
  assert_int_equal(pbtxt_to_double(nth(root, 10), &d), 0);
  assert_true(isnan(d));
  assert_int_equal(pbtxt_to_int64(nth(root, 8), &i), -EINVAL);
  assert_int_equal(pbtxt_to_bool(nth(root, 11), &b), 0);
  assert_true(b);
  assert_int_equal(pbtxt_to_bool(nth(root, 12), &b), 0);
  assert_false(b);
  assert_int_equal(pbtxt_to_bool(nth(root, 13), &b), 0);
  assert_false(b);
  assert_int_equal(pbtxt_to_bool(nth(root, 14), &b), 0);
  assert_true(b);
  assert_int_equal(pbtxt_to_bool(nth(root, 15), &b), -EINVAL);
  assert_int_equal(pbtxt_to_bool(nth(root, 16), &b), -EINVAL); /* a string is not a bool */
  assert_int_equal(pbtxt_to_int64(nth(root, 16), &i), -EINVAL);
  assert_int_equal(pbtxt_to_bool(nth(root, 17), &b), -EINVAL);
  assert_int_equal(pbtxt_to_int64(nth(root, 18), &i), -EINVAL); /* 1.5 is not an integer */
  assert_int_equal(pbtxt_to_double(nth(root, 0), &d), 0);
  assert_true(d == 9223372036854775807.0);
  assert_int_equal(pbtxt_to_uint64(nth(root, 19), &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(pbtxt_to_double(nth(root, 19), &d), 0);
  assert_true(d == 18446744073709551615.0);
  assert_int_equal(pbtxt_to_int64(nth(root, 20), &i), 0);
  assert_int_equal(i, 8);

  char out[64];
  assert_string_equal(pbtxt_describe(nth(root, 16), out, sizeof out), "\"1\"");
  assert_string_equal(pbtxt_describe(nth(root, 7), out, sizeof out), "-0x10");
  assert_string_equal(pbtxt_describe(root, out, sizeof out), "a message { ... }");
  arena_destroy(a);
}

static void messages_without_a_source_name(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e = {0};
  assert_int_equal(pbtxt_parse(a, "a: 1\n  }", 9, NULL, &root, &e), -EINVAL);
  assert_string_equal(e.msg, "2:3: expected a field name, got '}'");
  assert_int_equal(pbtxt_parse(a, "a: [1, 2]", 9, NULL, &root, &e), 0);
  arena_destroy(a);
}

static void describe_cuts_long_values(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  assert_int_equal(
      parse(a, "s: \"0123456789012345678901234567890123456789XYZ\\n\\x01\"", &root, &e), 0);
  char out[96];
  assert_string_equal(pbtxt_describe(nth(root, 0), out, sizeof out),
                      "\"0123456789012345678901234567890123456789...\"");
  assert_int_equal(parse(a, "s: \"a\\nb\\x01\"", &root, &e), 0);
  assert_string_equal(pbtxt_describe(nth(root, 0), out, sizeof out), "\"a\\x0ab\\x01\"");
  assert_string_equal(pbtxt_describe(nth(root, 0), out, 8), "\"a\"");
  arena_destroy(a);
}

typedef struct bad_case {
  const char *text;
  size_t len; /* 0: strlen(text) */
  const char *msg;
} bad_case;

static const bad_case bad_syntax[] = {
    {"name: \"abc", 0, "t.pbtxt:1:7: string not closed before the end of the input"},
    {"name: \"abc\ndef\"", 0, "t.pbtxt:1:7: string not closed before the end of the line"},
    {"name: 'abc\\", 0, "t.pbtxt:1:7: string not closed before the end of the input"},
    {"name: \"abc\\\ndef\"", 0, "t.pbtxt:1:7: string not closed before the end of the line"},
    {"a { b: 1", 0, "t.pbtxt:1:9: expected '}' to close 'a' opened at 1:3, got end of input"},
    {"a: {\n", 0, "t.pbtxt:2:1: expected '}' to close 'a' opened at 1:4, got end of input"},
    {"a: 1 }", 0, "t.pbtxt:1:6: expected a field name, got '}'"},
    {"a 1", 0, "t.pbtxt:1:3: expected ':' or '{' after 'a', got 1"},
    {"a: 1 b", 0, "t.pbtxt:1:7: expected ':' or '{' after 'b', got end of input"},
    {"a: }", 0, "t.pbtxt:1:4: expected a value for 'a', got '}'"},
    {"a:: 1", 0, "t.pbtxt:1:3: expected a value for 'a', got ':'"},
    {"a: [1, 2", 0, "t.pbtxt:1:9: expected ',' or ']' in the list of 'a', got end of input"},
    {"a: [1 2]", 0, "t.pbtxt:1:7: expected ',' or ']' in the list of 'a', got 2"},
    {"a: [1,]", 0, "t.pbtxt:1:7: expected a value for 'a', got ']'"},
    {"a [1]", 0,
     "t.pbtxt:1:4: expected '{' in the list of 'a' (a list of values needs ':' after the name), "
     "got 1"},
    {"a: 12ab", 0, "t.pbtxt:1:4: invalid number '12ab'"},
    {"a: 09", 0, "t.pbtxt:1:4: invalid number '09'"},
    {"a: 1.2.3", 0, "t.pbtxt:1:4: invalid number '1.2.3'"},
    {"a: 0x", 0, "t.pbtxt:1:4: invalid number '0x'"},
    {"a: 0x1g", 0, "t.pbtxt:1:4: invalid number '0x1g'"},
    {"a: 1e", 0, "t.pbtxt:1:4: invalid number '1e'"},
    {"a: 1e+", 0, "t.pbtxt:1:4: invalid number '1e+'"},
    {"a: \"\\q\"", 0, "t.pbtxt:1:5: unknown escape '\\q' in string"},
    {"a: \"ok\\x\"", 0, "t.pbtxt:1:7: \\x needs a hex digit in string"},
    {"a: \"\\400\"", 0, "t.pbtxt:1:5: octal escape above \\377 in string"},
    {"a: \"\\u12\"", 0, "t.pbtxt:1:5: \\u needs 4 hex digits in string"},
    {"a: \"x\\\x01\"", 0, "t.pbtxt:1:6: unknown escape '\\' + byte 0x01 in string"},
    {"a: \"\\ud800\"", 0, "t.pbtxt:1:5: \\u escape is not a Unicode scalar value"},
    {"a: \"\\U00110000\"", 0, "t.pbtxt:1:5: \\U escape is not a Unicode scalar value"},
    {"a: -\"x\"", 0, "t.pbtxt:1:5: expected a number after '-', got \"x\""},
    {"a: - {", 0, "t.pbtxt:1:6: expected a number after '-', got '{'"},
    {"a: 1\n  @b: 2", 0, "t.pbtxt:2:3: unexpected character '@'"},
    {"a: 1\n\x01", 0, "t.pbtxt:2:1: unexpected byte 0x01"},
    {"a: 1\0b: 2", 9, "t.pbtxt:1:5: unexpected byte 0x00"},
    {"a: \xc3\xa9", 0, "t.pbtxt:1:4: unexpected byte 0xc3"},
    {"a { b < c: 1 } }", 0, "t.pbtxt:1:14: expected a field name or '>', got '}'"},
    {"a < b: 1 }", 0, "t.pbtxt:1:10: expected a field name or '>', got '}'"},
    {"[ext.field]: 1", 0, "t.pbtxt:1:1: expected a field name, got '['"},
    {"\"str\": 1", 0, "t.pbtxt:1:1: expected a field name, got \"str\""},
    {"a: \"x\" 'y", 0, "t.pbtxt:1:8: string not closed before the end of the input"},
    {"a: 1,, b: 2", 0, "t.pbtxt:1:6: expected a field name, got ','"},
    {"1: 2", 0, "t.pbtxt:1:1: expected a field name, got 1"},
};

static void malformed_input_names_line_and_column(void **state) {
  arena *a = arena_create(1024);
  for (size_t i = 0; i < sizeof bad_syntax / sizeof bad_syntax[0]; i++) {
    const bad_case *c = &bad_syntax[i];
    pbtxt_node *root = (pbtxt_node *)1;
    err e;
    int rc = parse_n(a, c->text, c->len ? c->len : strlen(c->text), &root, &e);
    if (rc != -EINVAL || strcmp(e.msg, c->msg) != 0)
      fail_msg("case %zu: %s\n  got rc %d: %s\n  want: %s", i, c->text, rc, e.msg, c->msg);
    assert_null(root);
  }
  arena_destroy(a);
}

/* ---- schema check ---- */

static const char *const color_names[] = {"RED", "GREEN", "BLUE"};
static const pbtxt_enum color_enum = {color_names, 3, "GREEN"};
static const pbtxt_field inner_fields[] = {
    {.name = "v", .type = PBTXT_TYPE_INT32},
    {.name = "vs", .type = PBTXT_TYPE_INT64, .repeated = true},
};
static const pbtxt_message inner_msg = {"Inner", inner_fields, 2};
enum {
  F_NAME,
  F_COUNT,
  F_BIG,
  F_U32,
  F_U64,
  F_RATIO,
  F_ON,
  F_COLOR,
  F_TAGS,
  F_INNER,
  F_INNERS,
  F_A,
  F_B
};
static const pbtxt_field top_fields[] = {
    [F_NAME] = {.name = "name", .type = PBTXT_TYPE_STRING},
    [F_COUNT] = {.name = "count", .type = PBTXT_TYPE_INT32},
    [F_BIG] = {.name = "big", .type = PBTXT_TYPE_INT64},
    [F_U32] = {.name = "u32", .type = PBTXT_TYPE_UINT32},
    [F_U64] = {.name = "u64", .type = PBTXT_TYPE_UINT64},
    [F_RATIO] = {.name = "ratio", .type = PBTXT_TYPE_FLOAT},
    [F_ON] = {.name = "on", .type = PBTXT_TYPE_BOOL},
    [F_COLOR] = {.name = "color", .type = PBTXT_TYPE_ENUM, .enumeration = &color_enum},
    [F_TAGS] = {.name = "tags", .type = PBTXT_TYPE_STRING, .repeated = true},
    [F_INNER] = {.name = "inner", .type = PBTXT_TYPE_MESSAGE, .message = &inner_msg},
    [F_INNERS] = {.name = "inners",
                  .type = PBTXT_TYPE_MESSAGE,
                  .repeated = true,
                  .message = &inner_msg},
    [F_A] = {.name = "a", .type = PBTXT_TYPE_MESSAGE, .oneof = 1, .message = &inner_msg},
    [F_B] = {.name = "b", .type = PBTXT_TYPE_STRING, .oneof = 1},
};
static const pbtxt_message top_msg = {"Top", top_fields, 13};

static int check_text(arena *a, const char *text, pbtxt_node **root, err *e) {
  int rc = parse(a, text, root, e);
  if (rc) fail_msg("parse failed: %s", e->msg);
  return pbtxt_check(*root, &top_msg, "t.pbtxt", e);
}

static void schema_accepts_and_indexes(void **state) {
  arena *a = arena_create(1024);
  pbtxt_node *root;
  err e;
  const char *text = "name: \"x\" count: -2147483648 big: -9223372036854775808 u32: 4294967295\n"
                     "u64: 18446744073709551615 ratio: -inf on: 1 color: BLUE\n"
                     "tags: [\"p\", 'q'] tags: \"r\" inner { v: 2147483647 vs: [1, -1] }\n"
                     "inners [{v: 1}, {v: 2}] inners {} b: \"choice\"\n";
  assert_int_equal(check_text(a, text, &root, &e), 0);
  int want[] = {F_NAME, F_COUNT, F_BIG,  F_U32,   F_U64,    F_RATIO,  F_ON,     F_COLOR,
                F_TAGS, F_TAGS,  F_TAGS, F_INNER, F_INNERS, F_INNERS, F_INNERS, F_B};
  size_t i = 0;
  for (const pbtxt_node *n = root->child; n; n = n->next, i++)
    assert_int_equal(n->field, want[i]);
  assert_int_equal(i, sizeof want / sizeof want[0]);
  const pbtxt_node *inner = nth(root, 11);
  assert_int_equal(nth(inner, 0)->field, 0);
  assert_int_equal(nth(inner, 2)->field, 1);
  assert_int_equal(pbtxt_enum_value(nth(root, 7), &color_enum), 2);

  /* enums by number, as protobuf allows */
  assert_int_equal(check_text(a, "color: 1", &root, &e), 0);
  assert_int_equal(pbtxt_enum_value(nth(root, 0), &color_enum), 1);
  arena_destroy(a);
}

static const bad_case bad_schema[] = {
    {"nam: \"x\"", 0, "t.pbtxt:1:1: unknown field 'nam' (did you mean 'name'?)"},
    {"inner { v: 1\n  w: 2 }", 0, "t.pbtxt:2:3: unknown field 'w' in inner"},
    {"inner { zzzzz: 2 }", 0, "t.pbtxt:1:9: unknown field 'zzzzz' in inner"},
    {"inners { inner: 1 }", 0, "t.pbtxt:1:10: unknown field 'inner' in inners"},
    {"count: 1\ncount: 2", 0, "t.pbtxt:2:1: count is set twice (first at 1:1)"},
    {"inner {}\ninner {}", 0, "t.pbtxt:2:1: inner is set twice (first at 1:1)"},
    {"name: [\"a\"]", 0, "t.pbtxt:1:1: name is not repeated; it cannot take a list"},
    {"a { v: 1 }\nb: \"x\"", 0,
     "t.pbtxt:2:1: b cannot be set together with a (at 1:1); they are alternatives"},
    {"color: \"RED\"", 0, "t.pbtxt:1:8: color must be an enum like GREEN, got \"RED\""},
    {"color: PURPLE", 0, "t.pbtxt:1:8: unknown color PURPLE; expected one of RED, GREEN, BLUE"},
    {"color: 3", 0, "t.pbtxt:1:8: unknown color 3; expected one of RED, GREEN, BLUE"},
    {"color: -RED", 0, "t.pbtxt:1:8: unknown color -RED; expected one of RED, GREEN, BLUE"},
    {"color: 1.0", 0, "t.pbtxt:1:8: color must be an enum like GREEN, got 1.0"},
    {"count: 2147483648", 0,
     "t.pbtxt:1:8: count must be between -2147483648 and 2147483647, got 2147483648"},
    {"count: 1.5", 0, "t.pbtxt:1:8: count must be an integer, got 1.5"},
    {"count: \"3\"", 0, "t.pbtxt:1:8: count must be an integer, got \"3\""},
    {"big: 9223372036854775808", 0,
     "t.pbtxt:1:6: big must be between -9223372036854775808 and 9223372036854775807, got "
     "9223372036854775808"},
    {"u32: -1", 0, "t.pbtxt:1:6: u32 must be between 0 and 4294967295, got -1"},
    {"u32: 4294967296", 0, "t.pbtxt:1:6: u32 must be between 0 and 4294967295, got 4294967296"},
    {"u64: -5", 0, "t.pbtxt:1:6: u64 must be between 0 and 18446744073709551615, got -5"},
    {"ratio: fast", 0, "t.pbtxt:1:8: ratio must be a number, got fast"},
    {"on: yes", 0, "t.pbtxt:1:5: on must be true or false, got yes"},
    {"on: 2", 0, "t.pbtxt:1:5: on must be true or false, got 2"},
    {"name: foo", 0, "t.pbtxt:1:7: name must be a string in quotes, got foo"},
    {"name { }", 0, "t.pbtxt:1:6: name must be a string in quotes, got a message { ... }"},
    {"inner: 5", 0, "t.pbtxt:1:8: inner must be a message { ... }, got 5"},
    {"inners [ {v: 1}, {v: \"2\"} ]", 0, "t.pbtxt:1:22: inners.v must be an integer, got \"2\""},
    {"inner { vs: [1, 2.5] }", 0, "t.pbtxt:1:17: inner.vs must be an integer, got 2.5"},
};

static void schema_refusals(void **state) {
  arena *a = arena_create(1024);
  for (size_t i = 0; i < sizeof bad_schema / sizeof bad_schema[0]; i++) {
    pbtxt_node *root;
    err e;
    int rc = check_text(a, bad_schema[i].text, &root, &e);
    if (rc != -EINVAL || strcmp(e.msg, bad_schema[i].msg) != 0)
      fail_msg("case %zu: %s\n  got rc %d: %s\n  want: %s", i, bad_schema[i].text, rc, e.msg,
               bad_schema[i].msg);
  }
  arena_destroy(a);
}

/* Big inputs of each shape that a quadratic step would make slow: one long
 * list, many fields, a long run of adjacent strings. The ctest timeout turns
 * quadratic time into a failure; the counts check that nothing was lost. */
static void large_inputs_parse_in_linear_time(void **state) {
  const size_t n = 200000;
  char *text = malloc(n * 16 + 64);
  assert_non_null(text);
  arena *a = arena_create(1 << 20);
  pbtxt_node *root;
  err e;

  size_t len = (size_t)sprintf(text, "dims: [");
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, i ? ",%zu" : "%zu", i);
  len += (size_t)sprintf(text + len, "]");
  assert_int_equal(parse_n(a, text, len, &root, &e), 0);
  assert_int_equal(count_children(root), n);

  len = 0;
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, "f%zu { x: 1 }\n", i % 10);
  arena_reset(a);
  assert_int_equal(parse_n(a, text, len, &root, &e), 0);
  assert_int_equal(count_children(root), n);
  assert_int_equal(nth(root, (int)n - 1)->pos.line, n);

  len = (size_t)sprintf(text, "s: ");
  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, "'ab\\n' ");
  arena_reset(a);
  assert_int_equal(parse_n(a, text, len, &root, &e), 0);
  assert_int_equal(nth(root, 0)->len, 3 * n);

  free(text);
  arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scalars_kinds_and_positions),
      cmocka_unit_test(strings_escapes_and_concatenation),
      cmocka_unit_test(nesting_forms),
      cmocka_unit_test(lists_are_repeated_fields),
      cmocka_unit_test(comments_and_separators),
      cmocka_unit_test(depth_limit),
      cmocka_unit_test(conversions),
      cmocka_unit_test(describe_cuts_long_values),
      cmocka_unit_test(messages_without_a_source_name),
      cmocka_unit_test(malformed_input_names_line_and_column),
      cmocka_unit_test(schema_accepts_and_indexes),
      cmocka_unit_test(schema_refusals),
      cmocka_unit_test(large_inputs_parse_in_linear_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
