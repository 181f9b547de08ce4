/* core/err.h: an error code with a message, carried from where a problem is
 * found to where it is answered.
 *
 * Codes are negative errno values, as everywhere in inferd: -EINVAL for a bad
 * request (400), -ENOENT for something that does not exist (404), -EAGAIN
 * for "not now" (503), -ENOTSUP for something not implemented (501), -E2BIG
 * for a payload over a limit (413); anything else is an internal error (500). */
#ifndef INFERD_CORE_ERR_H
#define INFERD_CORE_ERR_H

#include <errno.h>
#include <stddef.h>

#define ERR_MSG_MAX 512

typedef struct err {
  int code; /* 0 or a negative errno */
  char msg[ERR_MSG_MAX];
} err;

/* Records code and a printf-style message in e (which may be NULL) and
 * returns code, so that callers can write `return err_set(e, -EINVAL, ...)`. */
int err_set(err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in e with more context ("input 'x': ..."). */
void err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The HTTP status that answers code. */
int err_http_status(int code);

#endif
