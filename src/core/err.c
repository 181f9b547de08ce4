/* core/err.c: error messages and their HTTP statuses. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(err *e, int code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

void err_prefix(err *e, const char *fmt, ...) {
  if (!e) return;
  char prefix[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* Shift the old message right and put the prefix in front of it. */
  size_t plen = (size_t)n < sizeof e->msg - 1 ? (size_t)n : sizeof e->msg - 1;
  size_t olen = strnlen(e->msg, sizeof e->msg - 1);
  if (olen > sizeof e->msg - 1 - plen) olen = sizeof e->msg - 1 - plen;
  memmove(e->msg + plen, e->msg, olen);
  memcpy(e->msg, prefix, plen);
  e->msg[plen + olen] = 0;
}

int err_http_status(int code) {
  switch (code) {
  case 0: return 200;
  case -EINVAL: return 400;
  case -ENOENT: return 404;
  case -EAGAIN: return 503;
  case -ENOTSUP: return 501;
  case -E2BIG: return 413;
  case -ETIMEDOUT: return 504;
  default: return 500;
  }
}
