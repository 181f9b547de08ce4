/* core/pbtxt.c: the protobuf text-format reader: a lexer over a byte span, a
 * recursive-descent parser building an arena tree, scalar conversions, and
 * the schema check. See pbtxt.h for the grammar accepted. */
#include "core/pbtxt.h"

#include "core/utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

int pbtxt_error_at(err *e, const char *source, pbtxt_pos pos, const char *fmt, ...) {
  if (!e) return -EINVAL;
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (source)
    return err_set(e, -EINVAL, "%s:%u:%u: %s", source, (unsigned)pos.line, (unsigned)pos.col, msg);
  return err_set(e, -EINVAL, "%u:%u: %s", (unsigned)pos.line, (unsigned)pos.col, msg);
}

static bool is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }
static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Appends s[0..n) to out[*len..size) for a message: quotes and backslashes
 * escaped, control bytes as \xNN, cut at max bytes with "...". */
static void put_visible(char *out, size_t size, size_t *len, const char *s, size_t n, size_t max) {
  for (size_t i = 0; i < n && *len + 5 < size; i++) {
    if (i == max) {
      *len += (size_t)snprintf(out + *len, size - *len, "...");
      return;
    }
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f)
      *len += (size_t)snprintf(out + *len, size - *len, "\\x%02x", c);
    else
      out[(*len)++] = (char)c;
  }
  out[*len] = 0;
}

/* ---- lexer ---------------------------------------------------------------- */

typedef enum tok_kind { T_EOF, T_IDENT, T_INT, T_FLOAT, T_STRING, T_PUNCT, T_BAD } tok_kind;

typedef struct token {
  tok_kind kind;
  const char *start; /* T_STRING: from the opening to the closing quote */
  size_t len;
  pbtxt_pos pos;
} token;

typedef struct parser {
  const char *p, *end;
  const char *line_start;
  uint32_t line;
  arena *a;
  const char *source;
  err *e;
  buf sbuf; /* decoded string bytes, reused */
  token peeked;
  bool has_peek;
} parser;

static pbtxt_pos here(const parser *P) {
  return (pbtxt_pos){P->line, (uint32_t)(P->p - P->line_start) + 1};
}

static int nomem(parser *P) {
  return err_set(P->e, -ENOMEM, "out of memory reading configuration");
}

static void skip_space(parser *P) {
  while (P->p < P->end) {
    char c = *P->p;
    if (c == '\n') {
      P->line++;
      P->line_start = ++P->p;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      P->p++;
    } else if (c == '#') {
      while (P->p < P->end && *P->p != '\n')
        P->p++;
    } else {
      break;
    }
  }
}

/* Classifies the characters of a number token as protobuf's tokenizer does:
 * hex and octal integers, decimal integers, and floats (a '.', an exponent or
 * an f suffix). Returns T_BAD for something that is not a number ("12ab",
 * "1.2.3", "09"). */
static tok_kind classify_number(const char *s, size_t n) {
  size_t i = 0;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (n == 2) return T_BAD;
    for (i = 2; i < n; i++)
      if (hex_value((unsigned char)s[i]) < 0) return T_BAD;
    return T_INT;
  }
  size_t int_digits = 0, frac_digits = 0;
  bool dot = false, exp = false, suffix = false;
  while (i < n && is_digit(s[i]))
    i++, int_digits++;
  if (i < n && s[i] == '.') {
    dot = true;
    i++;
    while (i < n && is_digit(s[i]))
      i++, frac_digits++;
  }
  if (int_digits == 0 && frac_digits == 0) return T_BAD;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    exp = true;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t exp_digits = 0;
    while (i < n && is_digit(s[i]))
      i++, exp_digits++;
    if (exp_digits == 0) return T_BAD;
  }
  if (i < n && (s[i] == 'f' || s[i] == 'F')) {
    suffix = true;
    i++;
  }
  if (i != n) return T_BAD;
  if (dot || exp || suffix) return T_FLOAT;
  if (int_digits > 1 && s[0] == '0')
    for (size_t k = 1; k < n; k++)
      if (s[k] > '7') return T_BAD;
  return T_INT;
}

/* Reads the next token into t. A string token is only delimited here (its
 * escapes are decoded when the parser takes its value), but it must close on
 * its own line, as in protobuf. */
static int lex(parser *P, token *t) {
  skip_space(P);
  t->pos = here(P);
  t->start = P->p;
  if (P->p == P->end) {
    t->kind = T_EOF;
    t->len = 0;
    return 0;
  }
  const char *s = P->p;
  unsigned char c = (unsigned char)*s;
  if (is_ident_start(c)) {
    while (P->p < P->end && is_ident_char((unsigned char)*P->p))
      P->p++;
    t->kind = T_IDENT;
  } else if (is_digit(c) || (c == '.' && P->end - s > 1 && is_digit(s[1]))) {
    bool hex = P->end - s > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    P->p++;
    while (P->p < P->end) {
      char d = *P->p;
      if (is_ident_char((unsigned char)d) || d == '.' ||
          ((d == '+' || d == '-') && !hex && (P->p[-1] == 'e' || P->p[-1] == 'E')))
        P->p++;
      else
        break;
    }
    t->kind = classify_number(s, (size_t)(P->p - s));
    if (t->kind == T_BAD) {
      char shown[64];
      size_t n = 0;
      put_visible(shown, sizeof shown, &n, s, (size_t)(P->p - s), 40);
      return pbtxt_error_at(P->e, P->source, t->pos, "invalid number '%s'", shown);
    }
  } else if (c == '"' || c == '\'') {
    const char *q = s + 1;
    while (q < P->end && *q != (char)c && *q != '\n') {
      if (*q == '\\' && q + 1 < P->end && q[1] != '\n') q++;
      q++;
    }
    if (q == P->end || *q != (char)c)
      return pbtxt_error_at(P->e, P->source, t->pos, "string not closed before the end of the %s",
                            q == P->end ? "input" : "line");
    P->p = q + 1;
    t->kind = T_STRING;
  } else if (c && strchr("{}<>[]:,;-", c)) {
    P->p++;
    t->kind = T_PUNCT;
  } else if (c >= 0x20 && c < 0x7f) {
    return pbtxt_error_at(P->e, P->source, t->pos, "unexpected character '%c'", c);
  } else {
    return pbtxt_error_at(P->e, P->source, t->pos, "unexpected byte 0x%02x", c);
  }
  t->len = (size_t)(P->p - s);
  return 0;
}

static int next(parser *P, token *t) {
  if (P->has_peek) {
    *t = P->peeked;
    P->has_peek = false;
    return 0;
  }
  return lex(P, t);
}

static int peek(parser *P, const token **t) {
  if (!P->has_peek) {
    int rc = lex(P, &P->peeked);
    if (rc) return rc;
    P->has_peek = true;
  }
  *t = &P->peeked;
  return 0;
}

static bool is_punct(const token *t, char c) { return t->kind == T_PUNCT && *t->start == c; }

/* "'}'", "'name'", "12", "\"text\"", "end of input": a token for messages. */
static const char *describe_token(const token *t, char *out, size_t size) {
  size_t n = 0;
  out[0] = 0;
  switch (t->kind) {
  case T_EOF: snprintf(out, size, "end of input"); break;
  case T_INT:
  case T_FLOAT:
  case T_STRING:
  case T_BAD: put_visible(out, size, &n, t->start, t->len, 40); break;
  case T_IDENT:
  case T_PUNCT:
    out[n++] = '\'';
    put_visible(out, size - 1, &n, t->start, t->len, 40);
    out[n++] = '\'';
    out[n] = 0;
    break;
  }
  return out;
}

static int expected(parser *P, const token *t, const char *what) {
  char got[80];
  return pbtxt_error_at(P->e, P->source, t->pos, "expected %s, got %s", what,
                        describe_token(t, got, sizeof got));
}

/* ---- strings -------------------------------------------------------------- */

static void put_utf8(buf *b, uint32_t cp) {
  unsigned char tmp[4];
  buf_append(b, tmp, utf8_encode(tmp, cp));
}

/* The byte that \c stands for, for the one-letter escapes; -1 otherwise. */
static int simple_escape(char c) {
  switch (c) {
  case 'a': return '\a';
  case 'b': return '\b';
  case 'f': return '\f';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  case 'v': return '\v';
  case '\\':
  case '\'':
  case '"':
  case '?': return c;
  default: return -1;
  }
}

/* Decodes the string token t (quotes included) onto P->sbuf: the C escapes
 * \a \b \f \n \r \t \v \\ \' \" \?, octal \NNN (up to 255), \xNN, and \uXXXX
 * / \UXXXXXXXX as UTF-8. */
static int decode_string(parser *P, const token *t) {
  const char *s = t->start + 1;
  size_t n = t->len - 2;
  buf *b = &P->sbuf;
  for (size_t i = 0; i < n;) {
    size_t run = i;
    while (run < n && s[run] != '\\')
      run++;
    buf_append(b, s + i, run - i);
    i = run;
    if (i == n) break;
    pbtxt_pos at = {t->pos.line, t->pos.col + 1 + (uint32_t)i};
    char c = s[++i]; /* the lexer saw to it that a character follows */
    i++;
    int simple = simple_escape(c);
    if (simple >= 0) {
      buf_putc(b, (char)simple);
    } else if (c >= '0' && c <= '7') {
      unsigned v = (unsigned)(c - '0');
      for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
        v = v * 8 + (unsigned)(s[i++] - '0');
      if (v > 255) return pbtxt_error_at(P->e, P->source, at, "octal escape above \\377 in string");
      buf_putc(b, (char)v);
    } else if (c == 'x' || c == 'X') {
      int d0 = i < n ? hex_value((unsigned char)s[i]) : -1;
      if (d0 < 0) return pbtxt_error_at(P->e, P->source, at, "\\x needs a hex digit in string");
      unsigned v = (unsigned)d0;
      i++;
      if (i < n && hex_value((unsigned char)s[i]) >= 0)
        v = v * 16 + (unsigned)hex_value((unsigned char)s[i++]);
      buf_putc(b, (char)v);
    } else if (c == 'u' || c == 'U') {
      int digits = c == 'u' ? 4 : 8;
      uint32_t cp = 0;
      for (int k = 0; k < digits; k++) {
        int d = i < n ? hex_value((unsigned char)s[i]) : -1;
        if (d < 0)
          return pbtxt_error_at(P->e, P->source, at, "\\%c needs %d hex digits in string", c,
                                digits);
        cp = cp << 4 | (uint32_t)d;
        i++;
      }
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return pbtxt_error_at(P->e, P->source, at, "\\%c escape is not a Unicode scalar value", c);
      put_utf8(b, cp);
    } else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
      return pbtxt_error_at(P->e, P->source, at, "unknown escape '\\%c' in string", c);
    } else {
      return pbtxt_error_at(P->e, P->source, at, "unknown escape '\\' + byte 0x%02x in string",
                            (unsigned char)c);
    }
  }
  return b->oom ? nomem(P) : 0;
}

/* ---- parser --------------------------------------------------------------- */

static pbtxt_node *new_node(parser *P, const char *name, pbtxt_pos pos) {
  pbtxt_node *n = arena_calloc(P->a, 1, sizeof *n);
  if (!n) return NULL;
  n->name = name;
  n->pos = pos;
  n->field = -1;
  return n;
}

static int parse_body(parser *P, pbtxt_node *msg, int depth, char close);

/* The value of a message field: '{' ... '}' or '<' ... '>'. */
static int parse_message(parser *P, pbtxt_node *n, int depth) {
  token open;
  int rc = next(P, &open);
  if (rc) return rc;
  n->kind = PBTXT_MESSAGE;
  n->vpos = open.pos;
  if (depth + 1 > PBTXT_MAX_DEPTH)
    return pbtxt_error_at(P->e, P->source, open.pos, "messages nested more than %d deep",
                          PBTXT_MAX_DEPTH);
  return parse_body(P, n, depth + 1, *open.start == '{' ? '}' : '>');
}

/* A scalar value: [-] number or identifier, or one or more strings. */
static int parse_scalar(parser *P, pbtxt_node *n) {
  token t;
  int rc = next(P, &t);
  if (rc) return rc;
  n->vpos = t.pos;
  if (is_punct(&t, '-')) {
    n->negative = true;
    if ((rc = next(P, &t))) return rc;
    if (t.kind != T_INT && t.kind != T_FLOAT && t.kind != T_IDENT)
      return expected(P, &t, "a number after '-'");
  }
  if (t.kind == T_INT || t.kind == T_FLOAT || t.kind == T_IDENT) {
    n->kind = t.kind == T_INT ? PBTXT_INT : t.kind == T_FLOAT ? PBTXT_FLOAT : PBTXT_IDENT;
    n->text = arena_strndup(P->a, t.start, t.len);
    n->len = t.len;
    return n->text ? 0 : nomem(P);
  }
  if (t.kind != T_STRING) {
    char what[96];
    snprintf(what, sizeof what, "a value for '%s'", n->name);
    return expected(P, &t, what);
  }
  P->sbuf.len = 0;
  for (;;) {
    if ((rc = decode_string(P, &t))) return rc;
    const token *nt;
    if ((rc = peek(P, &nt))) return rc;
    if (nt->kind != T_STRING) break;
    next(P, &t);
  }
  n->kind = PBTXT_STRING;
  n->len = P->sbuf.len;
  n->text = arena_strndup(P->a, P->sbuf.len ? P->sbuf.data : "", P->sbuf.len);
  return n->text ? 0 : nomem(P);
}

/* One field after its name: `: scalar`, `[:] {..}`, `[:] <..>`, `[:] [..]`.
 * Appends one node, or one per list element, at *tail. */
static int parse_field(parser *P, const token *name_tok, pbtxt_node ***tail, int depth) {
  const char *name = arena_strndup(P->a, name_tok->start, name_tok->len);
  if (!name) return nomem(P);
  const token *t;
  int rc = peek(P, &t);
  if (rc) return rc;
  bool colon = false;
  if (is_punct(t, ':')) {
    token skip;
    next(P, &skip);
    colon = true;
    if ((rc = peek(P, &t))) return rc;
  }
  if (is_punct(t, '[')) {
    token open;
    next(P, &open);
    if ((rc = peek(P, &t))) return rc;
    if (is_punct(t, ']')) {
      next(P, &open);
      return 0;
    }
    for (;;) {
      pbtxt_node *n = new_node(P, name, name_tok->pos);
      if (!n) return nomem(P);
      n->in_list = true;
      if ((rc = peek(P, &t))) return rc;
      if (is_punct(t, '{') || is_punct(t, '<')) {
        rc = parse_message(P, n, depth);
      } else if (!colon) {
        char what[160];
        snprintf(what, sizeof what,
                 "'{' in the list of '%s' (a list of values needs ':' after the name)", name);
        return expected(P, t, what);
      } else {
        rc = parse_scalar(P, n);
      }
      if (rc) return rc;
      **tail = n;
      *tail = &n->next;
      token sep;
      if ((rc = next(P, &sep))) return rc;
      if (is_punct(&sep, ']')) return 0;
      if (!is_punct(&sep, ',')) {
        char what[96];
        snprintf(what, sizeof what, "',' or ']' in the list of '%s'", name);
        return expected(P, &sep, what);
      }
    }
  }
  pbtxt_node *n = new_node(P, name, name_tok->pos);
  if (!n) return nomem(P);
  if (is_punct(t, '{') || is_punct(t, '<')) {
    rc = parse_message(P, n, depth);
  } else if (colon) {
    rc = parse_scalar(P, n);
  } else {
    char what[96];
    snprintf(what, sizeof what, "':' or '{' after '%s'", name);
    return expected(P, t, what);
  }
  if (rc) return rc;
  **tail = n;
  *tail = &n->next;
  return 0;
}

/* The fields of a message up to close ('}' or '>'), or of the top level up to
 * the end of the input (close 0). */
static int parse_body(parser *P, pbtxt_node *msg, int depth, char close) {
  pbtxt_node **tail = &msg->child;
  for (;;) {
    token t;
    int rc = next(P, &t);
    if (rc) return rc;
    if (t.kind == T_EOF && !close) return 0;
    if (close && is_punct(&t, close)) return 0;
    if (t.kind != T_IDENT) {
      if (t.kind == T_EOF)
        return pbtxt_error_at(P->e, P->source, t.pos,
                              "expected '%c' to close '%s' opened at %u:%u, got end of input",
                              close, msg->name, (unsigned)msg->vpos.line, (unsigned)msg->vpos.col);
      char what[64] = "a field name";
      if (close) snprintf(what, sizeof what, "a field name or '%c'", close);
      return expected(P, &t, what);
    }
    if ((rc = parse_field(P, &t, &tail, depth))) return rc;
    const token *sep;
    if ((rc = peek(P, &sep))) return rc;
    if (is_punct(sep, ',') || is_punct(sep, ';')) next(P, &t);
  }
}

int pbtxt_parse(arena *a, const char *text, size_t len, const char *source, pbtxt_node **root,
                err *e) {
  *root = NULL;
  if (len >= UINT32_MAX) return err_set(e, -E2BIG, "configuration text over 4 GiB");
  parser P = {.p = text,
              .end = text + len,
              .line_start = text,
              .line = 1,
              .a = a,
              .source = source,
              .e = e};
  pbtxt_node *r = new_node(&P, NULL, (pbtxt_pos){1, 1});
  if (!r) return nomem(&P);
  r->kind = PBTXT_MESSAGE;
  r->vpos = r->pos;
  int rc = parse_body(&P, r, 0, 0);
  buf_free(&P.sbuf);
  if (rc) return rc;
  *root = r;
  return 0;
}

/* ---- conversions ---------------------------------------------------------- */

/* The magnitude of an integer token (decimal, 0x hex, 0 octal). */
static int int_magnitude(const pbtxt_node *n, uint64_t *out) {
  if (n->kind != PBTXT_INT) return -EINVAL;
  const char *s = n->text;
  size_t len = n->len, i = 0;
  unsigned base = 10;
  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  } else if (len > 1 && s[0] == '0') {
    base = 8;
    i = 1;
  }
  uint64_t v = 0;
  for (; i < len; i++) {
    unsigned d = (unsigned)hex_value((unsigned char)s[i]);
    if (v > (UINT64_MAX - d) / base) return -ERANGE;
    v = v * base + d;
  }
  *out = v;
  return 0;
}

int pbtxt_to_int64(const pbtxt_node *n, int64_t *out) {
  uint64_t m;
  int rc = int_magnitude(n, &m);
  if (rc) return rc;
  if (n->negative) {
    if (m > (uint64_t)INT64_MAX + 1) return -ERANGE;
    *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
  } else {
    if (m > (uint64_t)INT64_MAX) return -ERANGE;
    *out = (int64_t)m;
  }
  return 0;
}

int pbtxt_to_uint64(const pbtxt_node *n, uint64_t *out) {
  uint64_t m;
  int rc = int_magnitude(n, &m);
  if (rc) return rc;
  if (n->negative) return -ERANGE;
  *out = m;
  return 0;
}

int pbtxt_to_double(const pbtxt_node *n, double *out) {
  double v;
  if (n->kind == PBTXT_INT && n->len > 1 && n->text[0] == '0') {
    uint64_t m; /* hex or octal */
    if (int_magnitude(n, &m)) return -ERANGE;
    v = (double)m;
  } else if (n->kind == PBTXT_INT || n->kind == PBTXT_FLOAT) {
    v = strtod(n->text, NULL); /* the lexer checked the form; an f suffix stops it */
  } else if (n->kind == PBTXT_IDENT) {
    if (strcasecmp(n->text, "inf") == 0 || strcasecmp(n->text, "infinity") == 0)
      v = INFINITY;
    else if (strcasecmp(n->text, "nan") == 0)
      v = NAN;
    else
      return -EINVAL;
  } else {
    return -EINVAL;
  }
  *out = n->negative ? -v : v;
  return 0;
}

int pbtxt_to_bool(const pbtxt_node *n, bool *out) {
  if (n->negative) return -EINVAL;
  if (n->kind == PBTXT_IDENT) {
    if (!strcmp(n->text, "true") || !strcmp(n->text, "True") || !strcmp(n->text, "t")) {
      *out = true;
      return 0;
    }
    if (!strcmp(n->text, "false") || !strcmp(n->text, "False") || !strcmp(n->text, "f")) {
      *out = false;
      return 0;
    }
    return -EINVAL;
  }
  uint64_t m;
  if (int_magnitude(n, &m) || m > 1) return -EINVAL;
  *out = m == 1;
  return 0;
}

const char *pbtxt_describe(const pbtxt_node *n, char *out, size_t size) {
  size_t len = 0;
  if (size == 0) return out;
  out[0] = 0;
  if (size < 8) return out;
  switch (n->kind) {
  case PBTXT_MESSAGE: snprintf(out, size, "a message { ... }"); break;
  case PBTXT_STRING:
    out[len++] = '"';
    put_visible(out, size - 1, &len, n->text, n->len, 40);
    out[len++] = '"';
    out[len] = 0;
    break;
  default:
    if (n->negative) out[len++] = '-';
    put_visible(out, size, &len, n->text, n->len, 40);
    break;
  }
  return out;
}

int pbtxt_enum_value(const pbtxt_node *n, const pbtxt_enum *en) {
  if (n->kind == PBTXT_IDENT && !n->negative) {
    for (int i = 0; i < en->n; i++)
      if (strcmp(en->names[i], n->text) == 0) return i;
    return -1;
  }
  int64_t v;
  if (n->kind == PBTXT_INT && pbtxt_to_int64(n, &v) == 0 && v >= 0 && v < en->n) return (int)v;
  return -1;
}

/* ---- schema check --------------------------------------------------------- */

/* The fields above a node, innermost last: "dynamic_batching.default_queue_policy". */
typedef struct path {
  const struct path *up;
  const char *name;
} path;

static void path_format(const path *p, const char *last, char *out, size_t size) {
  const char *seg[PBTXT_MAX_DEPTH + 2];
  int n = 0;
  if (last) seg[n++] = last;
  for (; p && n < (int)(sizeof seg / sizeof seg[0]); p = p->up)
    seg[n++] = p->name;
  size_t len = 0;
  out[0] = 0;
  for (int i = n - 1; i >= 0 && len < size; i--)
    len += (size_t)snprintf(out + len, size - len, i == n - 1 ? "%s" : ".%s", seg[i]);
}

/* Levenshtein distance, for "did you mean"; large for long names. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 64;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static const char *type_what(const pbtxt_field *f, char *out, size_t size) {
  switch (f->type) {
  case PBTXT_TYPE_STRING: return "a string in quotes";
  case PBTXT_TYPE_BOOL: return "true or false";
  case PBTXT_TYPE_INT32:
  case PBTXT_TYPE_INT64: return "an integer";
  case PBTXT_TYPE_UINT32:
  case PBTXT_TYPE_UINT64: return "a non-negative integer";
  case PBTXT_TYPE_FLOAT:
  case PBTXT_TYPE_DOUBLE: return "a number";
  case PBTXT_TYPE_ENUM: snprintf(out, size, "an enum like %s", f->enumeration->example); return out;
  case PBTXT_TYPE_MESSAGE: return "a message { ... }";
  }
  return "?";
}

typedef struct checker {
  const char *source;
  err *e;
} checker;

/* "input.data_type must be an enum like TYPE_FP32, got \"FP32\"". */
static int wrong_value(checker *C, const pbtxt_node *n, const pbtxt_field *f, const path *p) {
  char where[256], what[96], got[96];
  path_format(p, n->name, where, sizeof where);
  return pbtxt_error_at(C->e, C->source, n->vpos, "%s must be %s, got %s", where,
                        type_what(f, what, sizeof what), pbtxt_describe(n, got, sizeof got));
}

static int out_of_range(checker *C, const pbtxt_node *n, const path *p, const char *range) {
  char where[256], got[96];
  path_format(p, n->name, where, sizeof where);
  return pbtxt_error_at(C->e, C->source, n->vpos, "%s must be %s, got %s", where, range,
                        pbtxt_describe(n, got, sizeof got));
}

static int check_message(checker *C, pbtxt_node *msg, const pbtxt_message *m, const path *p);

static int check_value(checker *C, pbtxt_node *n, const pbtxt_field *f, const path *p) {
  if (f->type == PBTXT_TYPE_MESSAGE) {
    if (n->kind != PBTXT_MESSAGE) return wrong_value(C, n, f, p);
    path sub = {p, n->name};
    return check_message(C, n, f->message, &sub);
  }
  if (n->kind == PBTXT_MESSAGE) return wrong_value(C, n, f, p);
  int64_t i;
  uint64_t u;
  double d;
  bool b;
  int rc;
  switch (f->type) {
  case PBTXT_TYPE_STRING:
    if (n->kind != PBTXT_STRING) return wrong_value(C, n, f, p);
    return 0;
  case PBTXT_TYPE_BOOL:
    if (pbtxt_to_bool(n, &b)) return wrong_value(C, n, f, p);
    return 0;
  case PBTXT_TYPE_INT32:
    if ((rc = pbtxt_to_int64(n, &i)) == -EINVAL) return wrong_value(C, n, f, p);
    if (rc || i < INT32_MIN || i > INT32_MAX)
      return out_of_range(C, n, p, "between -2147483648 and 2147483647");
    return 0;
  case PBTXT_TYPE_INT64:
    if ((rc = pbtxt_to_int64(n, &i)) == -EINVAL) return wrong_value(C, n, f, p);
    if (rc) return out_of_range(C, n, p, "between -9223372036854775808 and 9223372036854775807");
    return 0;
  case PBTXT_TYPE_UINT32:
  case PBTXT_TYPE_UINT64:
    if ((rc = pbtxt_to_uint64(n, &u)) == -EINVAL) return wrong_value(C, n, f, p);
    if (f->type == PBTXT_TYPE_UINT32 && (rc || u > UINT32_MAX))
      return out_of_range(C, n, p, "between 0 and 4294967295");
    if (rc) return out_of_range(C, n, p, "between 0 and 18446744073709551615");
    return 0;
  case PBTXT_TYPE_FLOAT:
  case PBTXT_TYPE_DOUBLE:
    if (pbtxt_to_double(n, &d)) return wrong_value(C, n, f, p);
    return 0;
  case PBTXT_TYPE_ENUM: {
    if (pbtxt_enum_value(n, f->enumeration) >= 0) return 0;
    if (n->kind != PBTXT_IDENT && n->kind != PBTXT_INT) return wrong_value(C, n, f, p);
    char where[256], names[320], got[96];
    size_t len = 0;
    names[0] = 0;
    for (int k = 0; k < f->enumeration->n && len < sizeof names; k++)
      len += (size_t)snprintf(names + len, sizeof names - len, k ? ", %s" : "%s",
                              f->enumeration->names[k]);
    path_format(p, n->name, where, sizeof where);
    return pbtxt_error_at(C->e, C->source, n->vpos, "unknown %s %s; expected one of %s", where,
                          pbtxt_describe(n, got, sizeof got), names);
  }
  case PBTXT_TYPE_MESSAGE: break;
  }
  return 0;
}

/* Checks the fields of one message: each known, singular ones once, one
 * member per oneof, and each value (recursively). */
static int check_message(checker *C, pbtxt_node *msg, const pbtxt_message *m, const path *p) {
  const pbtxt_node *first[PBTXT_MAX_FIELDS] = {0};
  char where[256];
  if (m->n_fields > PBTXT_MAX_FIELDS)
    return err_set(C->e, -EINVAL, "schema %s has more than %d fields", m->name, PBTXT_MAX_FIELDS);
  for (pbtxt_node *n = msg->child; n; n = n->next) {
    int f = -1;
    for (int k = 0; k < m->n_fields; k++)
      if (strcmp(m->fields[k].name, n->name) == 0) {
        f = k;
        break;
      }
    if (f < 0) {
      const char *best = NULL;
      size_t best_d = 3;
      for (int k = 0; k < m->n_fields; k++) {
        size_t d = edit_distance(n->name, m->fields[k].name);
        if (d < best_d && d < strlen(n->name)) {
          best_d = d;
          best = m->fields[k].name;
        }
      }
      char hint[96] = "";
      if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
      if (p) path_format(p, NULL, where, sizeof where);
      return pbtxt_error_at(C->e, C->source, n->pos, "unknown field '%s'%s%s%s", n->name,
                            p ? " in " : "", p ? where : "", hint);
    }
    const pbtxt_field *fd = &m->fields[f];
    n->field = f;
    if (!fd->repeated) {
      if (n->in_list) {
        path_format(p, n->name, where, sizeof where);
        return pbtxt_error_at(C->e, C->source, n->pos, "%s is not repeated; it cannot take a list",
                              where);
      }
      if (first[f]) {
        path_format(p, n->name, where, sizeof where);
        return pbtxt_error_at(C->e, C->source, n->pos, "%s is set twice (first at %u:%u)", where,
                              (unsigned)first[f]->pos.line, (unsigned)first[f]->pos.col);
      }
    }
    if (fd->oneof)
      for (int k = 0; k < m->n_fields; k++)
        if (k != f && m->fields[k].oneof == fd->oneof && first[k]) {
          char other[256];
          path_format(p, n->name, where, sizeof where);
          path_format(p, m->fields[k].name, other, sizeof other);
          return pbtxt_error_at(C->e, C->source, n->pos,
                                "%s cannot be set together with %s (at %u:%u); they are "
                                "alternatives",
                                where, other, (unsigned)first[k]->pos.line,
                                (unsigned)first[k]->pos.col);
        }
    if (!first[f]) first[f] = n;
    int rc = check_value(C, n, fd, p);
    if (rc) return rc;
  }
  return 0;
}

int pbtxt_check(pbtxt_node *root, const pbtxt_message *schema, const char *source, err *e) {
  checker C = {source, e};
  return check_message(&C, root, schema, NULL);
}
