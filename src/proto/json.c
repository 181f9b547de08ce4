/* proto/json.c: the JSON parser and number conversions of proto/json.h.
 *
 * One loop with an explicit stack of open containers. The values of open
 * containers pile up on a scratch stack (arena memory, doubled when full);
 * when a container closes, its values move into an array of exactly their
 * number, so that every value is copied once and a container's items are
 * contiguous. An object's scratch entries alternate key and value, which is
 * the layout of json_member. */
#include "proto/json.h"

#include "core/utf8.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(json_member) == 2 * sizeof(json_value), "member is a key and a value");
_Static_assert(offsetof(json_member, value) == sizeof(json_value), "member is a key and a value");

typedef struct frame {
  size_t base;    /* scratch index of the container's first item */
  bool is_object; /* else an array */
} frame;

typedef struct parser {
  const unsigned char *start, *p, *end;
  arena *a;
  err *e;
  json_value *scratch;
  size_t n, cap;
} parser;

/* ---- errors -------------------------------------------------------------- */

/* Records "invalid JSON at byte N: <what>" with N the offset of at. */
__attribute__((format(printf, 3, 4))) static int fail(parser *ps, const unsigned char *at,
                                                      const char *fmt, ...) {
  char what[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return err_set(ps->e, -EINVAL, "invalid JSON at byte %zu: %s", (size_t)(at - ps->start), what);
}

static int fail_oom(parser *ps) { return err_set(ps->e, -ENOMEM, "out of memory parsing JSON"); }

/* What was found where something else was expected, for messages. */
static void describe(parser *ps, const unsigned char *at, char *out, size_t size) {
  if (at >= ps->end)
    snprintf(out, size, "the end of the text");
  else if (*at >= 0x21 && *at < 0x7f)
    snprintf(out, size, "'%c'", *at);
  else
    snprintf(out, size, "byte 0x%02x", *at);
}

/* ---- scratch stack ------------------------------------------------------- */

static __attribute__((noinline)) int grow_scratch(parser *ps) {
  size_t cap = ps->cap ? ps->cap * 2 : 64;
  json_value *s = arena_alloc_aligned(ps->a, cap * sizeof *s, 16);
  if (!s) return fail_oom(ps);
  if (ps->n) memcpy(s, ps->scratch, ps->n * sizeof *s);
  ps->scratch = s;
  ps->cap = cap;
  return 0;
}

/* Moves the items of the container opened at f off the scratch stack, and
 * puts the container in their place: it is the next item of its parent. */
static int close_container(parser *ps, const frame *f) {
  size_t n = ps->n - f->base;
  void *items = NULL;
  if (n) {
    items = arena_alloc_aligned(ps->a, n * sizeof(json_value), 16);
    if (!items) return fail_oom(ps);
    memcpy(items, ps->scratch + f->base, n * sizeof(json_value));
  }
  json_value *out = &ps->scratch[f->base];
  ps->n = f->base + 1;
  out->flags = out->n_int = out->n_frac = 0;
  if (f->is_object) {
    out->type = JSON_OBJECT;
    out->len = (uint32_t)(n / 2);
    out->u.members = items;
  } else {
    out->type = JSON_ARRAY;
    out->len = (uint32_t)n;
    out->u.items = items;
  }
  return 0;
}

/* ---- strings ------------------------------------------------------------- */

/* What a byte is inside a string: 0 itself, 1 the closing quote, 2 an
 * escape, 3 a control character (not allowed), 4 the start of a UTF-8
 * sequence. */
static const unsigned char str_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static int hex4(const unsigned char *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/* The rest of a string that has an escape at q (s is just past the opening
 * quote). Finds the closing quote first, so that the unescaped copy gets one
 * allocation no longer than the escaped text, then unescapes and checks. */
static int string_escaped(parser *ps, const unsigned char *s, const unsigned char *q,
                          json_value *out) {
  const unsigned char *end = ps->end, *close = q;
  while (close < end && *close != '"') {
    if (*close == '\\') {
      if (end - close < 2) break;
      close += 2;
    } else {
      close++;
    }
  }
  if (close >= end || *close != '"') return fail(ps, s - 1, "unterminated string");
  unsigned char *buf = arena_alloc_aligned(ps->a, (size_t)(close - s), 1);
  if (!buf) return fail_oom(ps);
  memcpy(buf, s, (size_t)(q - s));
  unsigned char *o = buf + (q - s);
  while (q < close) {
    unsigned c = *q;
    switch (str_class[c]) {
    case 0: *o++ = *q++; continue;
    case 3: return fail(ps, q, "control character 0x%02x in string (must be escaped)", c);
    case 4: {
      size_t n = utf8_seq(q, (size_t)(close - q));
      if (!n) return fail(ps, q, "invalid UTF-8 in string");
      memcpy(o, q, n);
      o += n;
      q += n;
      continue;
    }
    default: break; /* a backslash: the closing quote is not before `close` */
    }
    const unsigned char *esc = q;
    c = q[1];
    q += 2;
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (close - q < 4 || hex4(q, &cp) < 0)
        return fail(ps, esc, "\\u must be followed by four hex digits");
      q += 4;
      if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(ps, esc, "lone low surrogate \\u%04X in string", (unsigned)cp);
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (close - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) < 0 || lo < 0xdc00 ||
            lo > 0xdfff)
          return fail(ps, esc, "lone high surrogate \\u%04X in string", (unsigned)cp);
        q += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      o += utf8_encode(o, cp);
      break;
    }
    default: {
      char what[32];
      describe(ps, esc + 1, what, sizeof what);
      return fail(ps, esc, "invalid escape: backslash followed by %s", what);
    }
    }
  }
  out->type = JSON_STRING;
  out->flags = out->n_int = out->n_frac = 0;
  out->len = (uint32_t)(o - buf);
  out->u.s = (const char *)buf;
  ps->p = close + 1;
  return 0;
}

/* A string at ps->p (the opening quote). Without escapes it is referenced in
 * place. */
static int parse_string(parser *ps, json_value *out) {
  const unsigned char *s = ps->p + 1, *q = s, *end = ps->end;
  for (;;) {
    while (q < end && !str_class[*q])
      q++;
    if (q == end) return fail(ps, s - 1, "unterminated string");
    switch (str_class[*q]) {
    case 1:
      out->type = JSON_STRING;
      out->flags = out->n_int = out->n_frac = 0;
      out->len = (uint32_t)(q - s);
      out->u.s = (const char *)s;
      ps->p = q + 1;
      return 0;
    case 2: return string_escaped(ps, s, q, out);
    case 3: return fail(ps, q, "control character 0x%02x in string (must be escaped)", *q);
    default: {
      size_t n = utf8_seq(q, (size_t)(end - q));
      if (!n) return fail(ps, q, "invalid UTF-8 in string");
      q += n;
    }
    }
  }
}

/* ---- numbers and literals ------------------------------------------------ */

static inline bool is_digit(unsigned c) { return c - '0' < 10; }

static inline bool is_digit_c(char c) { return (unsigned char)(c - '0') < 10; }

/* Whether the 8 bytes of w (little-endian) are all ASCII digits. */
static inline bool eight_digits(uint64_t w) {
  return (((w & UINT64_C(0xf0f0f0f0f0f0f0f0)) |
           (((w + UINT64_C(0x0606060606060606)) & UINT64_C(0xf0f0f0f0f0f0f0f0)) >> 4)) ==
          UINT64_C(0x3333333333333333));
}

/* The value of 8 ASCII digits loaded little-endian (first digit in the low
 * byte): pairs, then quads, then the whole, by multiply-and-shift. */
static inline uint64_t eight_digits_value(uint64_t w) {
  w -= UINT64_C(0x3030303030303030);
  w = (w * 10 + (w >> 8)) & UINT64_C(0x00ff00ff00ff00ff);        /* 4 pairs, 0..99 */
  w = (w * 100 + (w >> 16)) & UINT64_C(0x0000ffff0000ffff);      /* 2 quads */
  return (w * 10000 + (w >> 32)) & UINT64_C(0x00000000ffffffff); /* 0..99999999 */
}

static inline uint64_t load64(const char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}

/* Accumulates the digits of [p, end) (all digits) into m. */
static inline uint64_t add_digits(uint64_t m, const char *p, const char *end) {
  while (end - p >= 8) {
    m = m * 100000000 + eight_digits_value(load64(p));
    p += 8;
  }
  for (; p < end; p++)
    m = m * 10 + (uint64_t)(*p - '0');
  return m;
}

/* Past the run of digits at q. */
static inline const unsigned char *skip_digits(const unsigned char *q, const unsigned char *end) {
  for (int i = 0; i < 4; i++, q++) /* short numbers are the usual */
    if (q == end || !is_digit(*q)) return q;
  while (end - q >= 8 && eight_digits(load64((const char *)q)))
    q += 8;
  while (q < end && is_digit(*q))
    q++;
  return q;
}

/* The end of the number at q, or NULL when its grammar is wrong (then
 * parse_number says how). The hot path of a parse: inline, in registers. */
static inline uint8_t clamp255(ptrdiff_t n) { return n > 255 ? 255 : (uint8_t)n; }

static inline const unsigned char *scan_number(const unsigned char *q, const unsigned char *end,
                                               json_value *v) {
  uint8_t f = 0;
  const unsigned char *start = q;
  if (*q == '-') {
    f = JSON_NUM_NEG;
    q++;
    if (q == end || !is_digit(*q)) return NULL; /* also -Infinity: the slow path */
  }
  const unsigned char *digits = q;
  if (*q == '0') {
    q++;
    if (q < end && is_digit(*q)) return NULL;
  } else {
    q = skip_digits(q + 1, end);
  }
  v->n_int = clamp255(q - digits);
  v->n_frac = 0;
  if (q < end && *q == '.') {
    q++;
    if (q == end || !is_digit(*q)) return NULL;
    digits = q;
    q = skip_digits(q + 1, end);
    v->n_frac = clamp255(q - digits);
    f |= JSON_NUM_FRAC;
  }
  if (q < end && (*q | 0x20) == 'e') {
    q++;
    if (q < end && (*q == '+' || *q == '-')) q++;
    if (q == end || !is_digit(*q)) return NULL;
    q = skip_digits(q + 1, end);
    f |= JSON_NUM_EXP;
  }
  v->type = JSON_NUMBER;
  v->flags = f;
  v->len = (uint32_t)(q - start);
  v->u.s = (const char *)start;
  return q;
}

/* Checks the grammar of a number at ps->p and records its text. */
static int parse_number(parser *ps, json_value *out) {
  const unsigned char *s = ps->p, *q = s, *end = ps->end;
  uint8_t flags = 0;
  if (*q == '-') {
    flags |= JSON_NUM_NEG;
    q++;
    if (end - q >= 8 && memcmp(q, "Infinity", 8) == 0) {
      q += 8;
      flags |= JSON_NUM_INF;
      goto done;
    }
  }
  if (q == end || !is_digit(*q)) return fail(ps, q, "expected a digit after '-'");
  if (*q == '0') {
    q++;
    if (q < end && is_digit(*q)) return fail(ps, s, "number with a leading zero");
  } else {
    q = skip_digits(q, end);
  }
  if (q < end && *q == '.') {
    q++;
    if (q == end || !is_digit(*q)) return fail(ps, q, "expected a digit after '.' in number");
    q = skip_digits(q, end);
    flags |= JSON_NUM_FRAC;
  }
  if (q < end && (*q | 0x20) == 'e') {
    q++;
    if (q < end && (*q == '+' || *q == '-')) q++;
    if (q == end || !is_digit(*q)) return fail(ps, q, "expected a digit in the exponent");
    while (q < end && is_digit(*q))
      q++;
    flags |= JSON_NUM_EXP;
  }
done:
  out->type = JSON_NUMBER;
  out->flags = flags;
  out->n_int = out->n_frac = 0; /* only -Infinity comes this way */
  out->len = (uint32_t)(q - s);
  out->u.s = (const char *)s;
  ps->p = q;
  return 0;
}

/* true, false, null, NaN, Infinity: the word must be there whole. */
static int parse_word(parser *ps, json_value *out) {
  static const struct {
    const char *word;
    size_t len;
    json_type type;
    uint8_t flags;
  } words[] = {
      {"true", 4, JSON_BOOL, 1},
      {"false", 5, JSON_BOOL, 0},
      {"null", 4, JSON_NULL, 0},
      {"NaN", 3, JSON_NUMBER, JSON_NUM_NAN},
      {"Infinity", 8, JSON_NUMBER, JSON_NUM_INF},
  };
  size_t avail = (size_t)(ps->end - ps->p);
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (words[i].word[0] != *ps->p) continue;
    if (avail < words[i].len || memcmp(ps->p, words[i].word, words[i].len) != 0) break;
    out->type = (uint8_t)words[i].type;
    out->flags = words[i].flags;
    out->n_int = out->n_frac = 0;
    out->len = words[i].type == JSON_NUMBER ? (uint32_t)words[i].len : 0;
    out->u.s = (const char *)ps->p;
    ps->p += words[i].len;
    return 0;
  }
  char what[32];
  describe(ps, ps->p, what, sizeof what);
  return fail(ps, ps->p, "expected a value, got %s", what);
}

/* ---- the parser ---------------------------------------------------------- */

static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end) {
  if (p<end && * p> ' ') return p;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/* Values are parsed straight into their scratch slot: building one on the
 * stack and copying it as a whole stalls on store forwarding. */
int json_parse(arena *a, const char *text, size_t len, int max_depth, const json_value **root,
               err *e) {
  if (len > UINT32_MAX)
    return err_set(e, -E2BIG, "JSON text of %zu bytes is over the 4 GiB limit", len);
  if (max_depth < 1) max_depth = 1;
  if ((size_t)max_depth > len) max_depth = len ? (int)len : 1; /* no deeper text exists */
  parser ps = {.start = (const unsigned char *)text,
               .p = (const unsigned char *)text,
               .end = (const unsigned char *)text + len,
               .a = a,
               .e = e};
  frame *frames = arena_alloc(a, (size_t)max_depth * sizeof *frames);
  if (!frames) return fail_oom(&ps);
  int depth = 0, rc;
  char what[32];

value:
  ps.p = skip_ws(ps.p, ps.end);
  if (ps.p == ps.end) return fail(&ps, ps.p, "expected a value, got the end of the text");
  if (ps.n == ps.cap && (rc = grow_scratch(&ps)) < 0) return rc;
  switch (*ps.p) {
  case '{':
  case '[': {
    if (depth == max_depth) return fail(&ps, ps.p, "nesting deeper than %d", max_depth);
    bool is_object = *ps.p == '{';
    frame *f = &frames[depth++];
    f->base = ps.n;
    f->is_object = is_object;
    ps.p = skip_ws(ps.p + 1, ps.end);
    if (ps.p < ps.end && *ps.p == (is_object ? '}' : ']')) {
      ps.p++;
      if ((rc = close_container(&ps, f)) < 0) return rc;
      depth--;
      goto complete;
    }
    if (is_object) goto key;
    goto value;
  }
  case '"': rc = parse_string(&ps, &ps.scratch[ps.n]); break;
  case '-':
    if (ps.end - ps.p > 1 && ps.p[1] == 'I') {
      rc = parse_number(&ps, &ps.scratch[ps.n]); /* -Infinity */
      break;
    }
    /* fall through */
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9': {
    const unsigned char *q = scan_number(ps.p, ps.end, &ps.scratch[ps.n]);
    if (!q) return parse_number(&ps, &ps.scratch[ps.n]); /* the error */
    ps.p = q;
    rc = 0;
    break;
  }
  default: rc = parse_word(&ps, &ps.scratch[ps.n]); break;
  }
  if (rc < 0) return rc;
  ps.n++;

complete: /* the last item on the scratch stack is a whole value */
  if (depth == 0) {
    ps.p = skip_ws(ps.p, ps.end);
    if (ps.p != ps.end) {
      describe(&ps, ps.p, what, sizeof what);
      return fail(&ps, ps.p, "unexpected %s after the JSON value", what);
    }
    json_value *r = arena_alloc(a, sizeof *r);
    if (!r) return fail_oom(&ps);
    *r = ps.scratch[0];
    *root = r;
    return 0;
  }
  {
    frame *f = &frames[depth - 1];
    ps.p = skip_ws(ps.p, ps.end);
    if (ps.p < ps.end && *ps.p == ',') {
      ps.p++;
      if (f->is_object) goto key;
      goto value;
    }
    if (ps.p < ps.end && *ps.p == (f->is_object ? '}' : ']')) {
      ps.p++;
      if ((rc = close_container(&ps, f)) < 0) return rc;
      depth--;
      goto complete;
    }
    describe(&ps, ps.p, what, sizeof what);
    if (f->is_object)
      return fail(&ps, ps.p, "expected ',' or '}' after object member, got %s", what);
    return fail(&ps, ps.p, "expected ',' or ']' after array element, got %s", what);
  }

key:
  ps.p = skip_ws(ps.p, ps.end);
  if (ps.p == ps.end || *ps.p != '"') {
    describe(&ps, ps.p, what, sizeof what);
    return fail(&ps, ps.p, "expected a string key in object, got %s", what);
  }
  if (ps.n == ps.cap && (rc = grow_scratch(&ps)) < 0) return rc;
  if ((rc = parse_string(&ps, &ps.scratch[ps.n])) < 0) return rc;
  ps.n++;
  ps.p = skip_ws(ps.p, ps.end);
  if (ps.p == ps.end || *ps.p != ':') {
    describe(&ps, ps.p, what, sizeof what);
    return fail(&ps, ps.p, "expected ':' after object key, got %s", what);
  }
  ps.p++;
  goto value;
}

/* ---- access -------------------------------------------------------------- */

const json_value *json_get(const json_value *obj, const char *key) {
  if (obj->type != JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (uint32_t i = 0; i < obj->len; i++) {
    const json_value *k = &obj->u.members[i].key;
    if (k->len == n && memcmp(k->u.s, key, n) == 0) return &obj->u.members[i].value;
  }
  return NULL;
}

const char *json_type_name(const json_value *v) {
  static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
  return v->type <= JSON_OBJECT ? names[v->type] : "invalid";
}

char *json_strdup(arena *a, const json_value *v) { return arena_strndup(a, v->u.s, v->len); }

/* ---- integers ------------------------------------------------------------ */

/* The magnitude of an integer number, or -ERANGE past 2^64 - 1. */
static int magnitude(const json_value *v, uint64_t *out) {
  if (v->type != JSON_NUMBER ||
      (v->flags & (JSON_NUM_FRAC | JSON_NUM_EXP | JSON_NUM_NAN | JSON_NUM_INF)))
    return -EINVAL;
  const char *p = v->u.s, *end = p + v->len;
  if (*p == '-') p++;
  uint64_t m = 0;
  for (; p < end; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (m > (UINT64_MAX - d) / 10) return -ERANGE;
    m = m * 10 + d;
  }
  *out = m;
  return 0;
}

int json_number_u64(const json_value *v, uint64_t *out) {
  uint64_t m;
  int rc = magnitude(v, &m);
  if (rc < 0) return rc;
  if ((v->flags & JSON_NUM_NEG) && m) return -ERANGE;
  *out = m;
  return 0;
}

int json_number_i64(const json_value *v, int64_t *out) {
  uint64_t m;
  int rc = magnitude(v, &m);
  if (rc < 0) return rc;
  if (v->flags & JSON_NUM_NEG) {
    if (m > (uint64_t)INT64_MAX + 1) return -ERANGE;
    *out = (int64_t)(0 - m);
  } else {
    if (m > INT64_MAX) return -ERANGE;
    *out = (int64_t)m;
  }
  return 0;
}

/* ---- floating point ------------------------------------------------------ */

/* The text as m * 10^e with at most 19 significant digits in m; false when it
 * has more (m and e are then not the value). The grammar was checked when
 * parsing, so the text is -?digits(.digits)?([eE][+-]?digits)?. */
static inline __attribute__((always_inline)) bool decimal_parts(const json_value *v, uint64_t *mant,
                                                                int64_t *exp10) {
  const char *p = v->u.s, *end = p + v->len;
  if (*p == '-') p++;
  const char *int_start = p, *int_end = p + v->n_int;
  const char *frac_start = int_end + (v->n_frac ? 1 : 0), *frac_end = frac_start + v->n_frac;
  if (v->n_int == 255 || v->n_frac == 255) { /* longer than the counts hold: find the parts */
    while (p < end && is_digit_c(*p))
      p++;
    int_end = frac_start = frac_end = p;
    if (p < end && *p == '.') {
      frac_start = ++p;
      while (p < end && is_digit_c(*p))
        p++;
      frac_end = p;
    }
  }
  int64_t e = 0;
  if (v->flags & JSON_NUM_EXP) {
    p = frac_end + 1;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    int64_t x = 0;
    for (; p < end; p++)
      if (x < 100000) x = x * 10 + (*p - '0'); /* far past any double */
    e = neg ? -x : x;
  }
  size_t n_int = (size_t)(int_end - int_start), n_frac = (size_t)(frac_end - frac_start);
  if (n_int + n_frac <= 19) {
    *mant = add_digits(add_digits(0, int_start, int_end), frac_start, frac_end);
    *exp10 = e - (int64_t)n_frac;
    return true;
  }
  /* Long: skip leading zeros, keep 19 significant digits. */
  uint64_t m = 0;
  int digits = 0;
  bool exact = true;
  for (p = int_start; p < int_end; p++) {
    if (digits < 19) {
      m = m * 10 + (uint64_t)(*p - '0');
      digits += m != 0;
    } else {
      e++;
      if (*p != '0') exact = false;
    }
  }
  for (p = frac_start; p < frac_end; p++) {
    if (digits < 19) {
      m = m * 10 + (uint64_t)(*p - '0');
      digits += m != 0;
      e--;
    } else if (*p != '0') {
      exact = false;
    }
  }
  *mant = m;
  *exp10 = e;
  return exact;
}

/* The C locale for strtod: numbers must not depend on the process's locale. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* strtod/strtof on a NUL-terminated copy of the number's text: the slow,
 * always-right path. */
static double slow_f64(const json_value *v, float *as_float) {
  char small[128];
  char *copy = v->len < sizeof small ? small : malloc((size_t)v->len + 1);
  if (!copy) return NAN;
  memcpy(copy, v->u.s, v->len);
  copy[v->len] = 0;
  pthread_once(&c_locale_once, c_locale_init);
  double d = 0;
  if (as_float)
    *as_float = c_locale ? strtof_l(copy, NULL, c_locale) : strtof(copy, NULL);
  else
    d = c_locale ? strtod_l(copy, NULL, c_locale) : strtod(copy, NULL);
  if (copy != small) free(copy);
  return d;
}

static const double pow10_f64[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if LDBL_MANT_DIG == 64
/* 10^0 .. 10^27, exact in the 64-bit significand of x87 long double. */
static const long double pow10_ld[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                       1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                       1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                       1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
#endif

/* Fast correctly rounded m * 10^e as a double, or false when it cannot tell.
 *
 * Clinger's path: m and 10^e both exact doubles, so one rounding. Else, with
 * x87 long double, m (below 2^64) and 10^e (|e| <= 27) are exact in 64 bits
 * and x = m * 10^e is one rounding to 64 bits; rounding x to 53 bits is then
 * right unless x is exactly halfway between two doubles (a midpoint is a
 * 64-bit number, so none can lie between the exact value and x). */
static bool fast_f64(uint64_t m, int64_t e, double *out) {
#if FLT_EVAL_METHOD == 0
  if (m <= (UINT64_C(1) << 53) && e >= -22 && e <= 22) {
    double d = (double)m;
    *out = e < 0 ? d / pow10_f64[-e] : d * pow10_f64[e];
    return true;
  }
#endif
#if LDBL_MANT_DIG == 64
  if (e >= -27 && e <= 27) {
    long double x = (long double)m;
    x = e < 0 ? x / pow10_ld[-e] : x * pow10_ld[e];
    if (!(x >= (long double)DBL_MIN && x <= (long double)DBL_MAX)) return false;
    uint64_t sig;
    memcpy(&sig, &x, 8); /* the explicit 64-bit significand */
    if ((sig & 0x7ff) == 0x400) return false;
    *out = (double)x;
    return true;
  }
#endif
  return false;
}

double json_number_f64(const json_value *v) {
  bool neg = v->flags & JSON_NUM_NEG;
  if (v->flags & JSON_NUM_NAN) return NAN;
  if (v->flags & JSON_NUM_INF) return neg ? -INFINITY : INFINITY;
  uint64_t m;
  int64_t e;
  if (decimal_parts(v, &m, &e)) {
    double d;
    if (m == 0) return neg ? -0.0 : 0.0;
    if (fast_f64(m, e, &d)) return neg ? -d : d;
  }
  return slow_f64(v, NULL);
}

/* Fast correctly rounded m * 10^e as a float, or false when it cannot tell.
 *
 * When m < 2^24 and |e| <= 10 both are exact floats: one rounding. Else the
 * double d = m * 10^e (at most three roundings, so within 4 units of the
 * last of its 53 bits) rounds to the right float unless it is within that
 * distance of a float midpoint, which its 29 bits below the float's 24 show;
 * results in the subnormal or overflow range are left to strtof. */
static bool fast_f32(uint64_t m, int64_t e, float *out) {
#if FLT_EVAL_METHOD == 0
  static const float pow10_f32[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                    1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
  if (m <= (UINT64_C(1) << 24) && e >= -10 && e <= 10) {
    float f = (float)m;
    *out = e < 0 ? f / pow10_f32[-e] : f * pow10_f32[e];
    return true;
  }
  if (e < -44 || e > 44) return false;
  double d = (double)m;
  if (e < -22) {
    d = d / pow10_f64[22] / pow10_f64[-e - 22];
  } else if (e < 0) {
    d /= pow10_f64[-e];
  } else if (e <= 22) {
    d *= pow10_f64[e];
  } else {
    d = d * pow10_f64[22] * pow10_f64[e - 22];
  }
  if (!(d >= FLT_MIN && d <= FLT_MAX)) return false;
  uint64_t bits;
  memcpy(&bits, &d, 8);
  uint64_t low = bits & ((UINT64_C(1) << 29) - 1), half = UINT64_C(1) << 28;
  if (low + 8 >= half && low <= half + 8) return false;
  *out = (float)d;
  return true;
#else
  (void)m, (void)e, (void)out;
  return false;
#endif
}

float json_number_f32(const json_value *v) {
  bool neg = v->flags & JSON_NUM_NEG;
  if (v->flags & JSON_NUM_NAN) return NAN;
  if (v->flags & JSON_NUM_INF) return neg ? -INFINITY : INFINITY;
  uint64_t m;
  int64_t e;
  if (decimal_parts(v, &m, &e)) {
    float f;
    if (m == 0) return neg ? -0.0f : 0.0f;
    if (fast_f32(m, e, &f)) return neg ? -f : f;
  }
  float f = 0;
  slow_f64(v, &f);
  return f;
}
