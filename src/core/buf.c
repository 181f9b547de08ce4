/* core/buf.c: growable byte buffer. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool buf_grow(buf *b, size_t extra) {
  if (b->oom) return false;
  if (b->cap - b->len >= extra) return true;
  size_t need = b->len + extra;
  if (need < b->len) goto fail;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > ((size_t)-1) / 2) goto fail;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) goto fail;
  b->data = p;
  b->cap = cap;
  return true;
fail:
  b->oom = true;
  return false;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = false;
}

void buf_printf(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    buf_append(b, small, (size_t)n);
    return;
  }
  if (!buf_grow(b, (size_t)n + 1)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void buf_put_u64(buf *b, unsigned long long v) {
  char tmp[24];
  int i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

void buf_put_i64(buf *b, long long v) {
  if (v < 0) {
    buf_putc(b, '-');
    buf_put_u64(b, 0ULL - (unsigned long long)v);
  } else {
    buf_put_u64(b, (unsigned long long)v);
  }
}
