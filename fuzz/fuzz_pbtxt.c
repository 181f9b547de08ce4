/* fuzz/fuzz_pbtxt.c: libFuzzer driver for core/pbtxt and core/model_config.
 *
 * Each input is read twice: as a bare pbtxt tree, every scalar put through
 * each conversion and pbtxt_describe; and as config.pbtxt, which on success
 * is normalized, checked and rendered as JSON. The driver traps when an
 * error comes back without a message, or when the JSON is not well-formed
 * (a small strict checker below), so that a bad escape or a missing comma is
 * a finding, not only a crash. Seeds: fuzz/corpus/fuzz_pbtxt/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/model_config.h"
#include "core/pbtxt.h"

/* ---- a strict JSON well-formedness check ---- */

typedef struct cursor {
  const char *p, *end;
} cursor;

static int json_value(cursor *c, int depth);

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
    c->p++;
}

static int json_string(cursor *c) {
  if (c->p == c->end || *c->p != '"') return -1;
  for (c->p++; c->p < c->end; c->p++) {
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '"') {
      c->p++;
      return 0;
    }
    if (ch < 0x20) return -1;
    if (ch == '\\') {
      if (++c->p == c->end) return -1;
      if (*c->p == 'u') {
        for (int i = 0; i < 4; i++) {
          if (++c->p == c->end) return -1;
          char h = *c->p;
          if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
            return -1;
        }
      } else if (!strchr("\"\\/bfnrt", *c->p) || !*c->p) {
        return -1;
      }
    }
  }
  return -1;
}

static int json_number(cursor *c) {
  if (c->p < c->end && *c->p == '-') c->p++;
  if (c->p == c->end || *c->p < '0' || *c->p > '9') return -1;
  if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return -1;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
    c->p++;
  return 0;
}

static int json_literal(cursor *c, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return -1;
  c->p += n;
  return 0;
}

static int json_value(cursor *c, int depth) {
  if (depth > 64) return -1;
  skip_ws(c);
  if (c->p == c->end) return -1;
  char open = *c->p;
  if (open == '{' || open == '[') {
    char close = open == '{' ? '}' : ']';
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
      c->p++;
      return 0;
    }
    for (;;) {
      if (open == '{') {
        skip_ws(c);
        if (json_string(c)) return -1;
        skip_ws(c);
        if (c->p == c->end || *c->p++ != ':') return -1;
      }
      if (json_value(c, depth + 1)) return -1;
      skip_ws(c);
      if (c->p == c->end) return -1;
      if (*c->p == close) {
        c->p++;
        return 0;
      }
      if (*c->p++ != ',') return -1;
    }
  }
  if (open == '"') return json_string(c);
  if (open == 't') return json_literal(c, "true");
  if (open == 'f') return json_literal(c, "false");
  return json_number(c);
}

static bool json_well_formed(const char *s, size_t n) {
  cursor c = {s, s + n};
  if (json_value(&c, 0)) return false;
  skip_ws(&c);
  return c.p == c.end;
}

/* ---- the tree ---- */

static void visit(const pbtxt_node *n) {
  char out[96];
  int64_t i;
  uint64_t u;
  double d;
  bool b;
  for (; n; n = n->next) {
    pbtxt_describe(n, out, sizeof out);
    if (!memchr(out, 0, sizeof out)) __builtin_trap();
    if (n->kind == PBTXT_MESSAGE) {
      visit(n->child);
      continue;
    }
    pbtxt_to_int64(n, &i);
    pbtxt_to_uint64(n, &u);
    pbtxt_to_double(n, &d);
    pbtxt_to_bool(n, &b);
    if (n->text[n->len] != 0) __builtin_trap();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_configure(LOG_ERROR, false);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  err e = {0};

  arena *a = arena_create(4096);
  if (!a) return 0;
  pbtxt_node *root;
  if (pbtxt_parse(a, text, size, "fuzz", &root, &e) == 0)
    visit(root);
  else if (e.code == 0 || e.msg[0] == 0)
    __builtin_trap();
  arena_destroy(a);

  memset(&e, 0, sizeof e);
  model_config *c = model_config_parse(text, size, &e);
  if (!c) {
    if (e.code == 0 || e.msg[0] == 0) __builtin_trap();
    return 0;
  }
  if (!c->name || !*c->name) c->name = "fuzz";
  if (model_config_normalize(c, &e) == 0 && model_config_check(c, &e) != 0 && e.msg[0] == 0)
    __builtin_trap();
  for (size_t i = 0; i < c->n_params; i++)
    if (model_config_param(c, c->params[i].key) == NULL) __builtin_trap();
  buf b = {0};
  model_config_to_json(c, &b);
  if (!b.oom && !json_well_formed(b.data, b.len)) __builtin_trap();
  buf_free(&b);
  model_config_free(c);
  return 0;
}
