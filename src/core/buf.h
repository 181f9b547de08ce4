/* core/buf.h: a growable byte buffer for building responses.
 *
 * A failed allocation does not return an error from every append: it sets the
 * sticky `oom` flag and later appends do nothing, so that a writer checks
 * once, at the end. */
#ifndef INFERD_CORE_BUF_H
#define INFERD_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
  bool oom;
} buf;

/* Makes room for `extra` more bytes; false (and oom set) when it cannot. */
bool buf_grow(buf *b, size_t extra);
void buf_free(buf *b);

static inline void buf_append(buf *b, const void *p, size_t n) {
  if (b->cap - b->len < n && !buf_grow(b, n)) return;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void buf_putc(buf *b, char c) {
  if (b->len == b->cap && !buf_grow(b, 1)) return;
  b->data[b->len++] = c;
}

static inline void buf_puts(buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Decimal integers, without printf. */
void buf_put_i64(buf *b, long long v);
void buf_put_u64(buf *b, unsigned long long v);

#endif
