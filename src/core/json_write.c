/* core/json_write.c: JSON string escaping and shortest round-trip numbers. */
#include "core/json_write.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Length of the UTF-8 sequence starting at s (at most n bytes), or 0 when it
 * is not a valid, shortest-form sequence of a scalar value. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

static const char hex[] = "0123456789abcdef";

/* Appends s as a JSON string; invalid UTF-8 is either refused (strict) or
 * replaced by U+FFFD. */
static bool put_string(buf *b, const unsigned char *s, size_t n, bool strict) {
  size_t start = b->len;
  buf_putc(b, '"');
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
      run++;
    buf_append(b, s + i, run - i);
    i = run;
    if (i == n) break;
    unsigned c = s[i];
    if (c >= 0x80) {
      size_t len = utf8_seq(s + i, n - i);
      if (len == 0) {
        if (strict) {
          b->len = start;
          return false;
        }
        buf_append(b, "\xef\xbf\xbd", 3);
        i++;
      } else {
        buf_append(b, s + i, len);
        i += len;
      }
      continue;
    }
    i++;
    switch (c) {
    case '"': buf_append(b, "\\\"", 2); break;
    case '\\': buf_append(b, "\\\\", 2); break;
    case '\n': buf_append(b, "\\n", 2); break;
    case '\r': buf_append(b, "\\r", 2); break;
    case '\t': buf_append(b, "\\t", 2); break;
    case '\b': buf_append(b, "\\b", 2); break;
    case '\f': buf_append(b, "\\f", 2); break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_append(b, u, 6);
    }
    }
  }
  buf_putc(b, '"');
  return true;
}

bool json_put_string(buf *b, const char *s, size_t n) {
  return put_string(b, (const unsigned char *)s, n, true);
}

void json_put_cstr(buf *b, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = 0;
  while (u[n])
    n++;
  put_string(b, u, n, false);
}

static bool put_special(buf *b, double v) {
  if (isnan(v)) {
    buf_append(b, "NaN", 3);
    return true;
  }
  if (isinf(v)) {
    if (v < 0)
      buf_append(b, "-Infinity", 9);
    else
      buf_append(b, "Infinity", 8);
    return true;
  }
  return false;
}

void json_put_f32(buf *b, float v) {
  if (put_special(b, v)) return;
  if (v == (float)(int32_t)v && fabsf(v) < 1e7f) {
    buf_put_i64(b, (int32_t)v);
    return;
  }
  char tmp[32];
  int n = 0;
  for (int prec = 6; prec <= 9; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
    if (strtof(tmp, NULL) == v) break;
  }
  buf_append(b, tmp, (size_t)n);
}

void json_put_f64(buf *b, double v) {
  if (put_special(b, v)) return;
  if (v == (double)(int64_t)v && fabs(v) < 1e15) {
    buf_put_i64(b, (int64_t)v);
    return;
  }
  char tmp[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v) break;
  }
  buf_append(b, tmp, (size_t)n);
}
