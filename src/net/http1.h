/* net/http1.h: HTTP/1.1 request parsing: the request head (request line and
 * header fields) and chunked transfer coding. Pure functions over bytes, no
 * I/O, so that they are unit-tested and fuzzed on their own.
 *
 * The head parser is strict where leniency lets requests be smuggled
 * (Content-Length with Transfer-Encoding, duplicate Content-Length with other
 * values, bad characters in names, obs-fold) and lenient where clients
 * differ harmlessly (bare LF line ends, leading empty lines). */
#ifndef INFERD_NET_HTTP1_H
#define INFERD_NET_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define HTTP_MAX_HEADERS 64

typedef enum http_method {
  HTTP_OTHER = 0,
  HTTP_GET,
  HTTP_HEAD,
  HTTP_POST,
  HTTP_PUT,
  HTTP_DELETE,
  HTTP_OPTIONS,
} http_method;

typedef struct http_header {
  const char *name;
  size_t name_len;
  const char *value; /* without surrounding spaces */
  size_t value_len;
} http_header;

/* A parsed head. Every pointer points into the buffer that was parsed. */
typedef struct http_head {
  http_method method;
  const char *method_str;
  size_t method_len;
  const char *path; /* request-target up to '?' */
  size_t path_len;
  const char *query; /* after '?', or NULL */
  size_t query_len;
  int minor_version; /* HTTP/1.x */
  size_t n_headers;
  http_header headers[HTTP_MAX_HEADERS];

  /* What the framing headers say. */
  int64_t content_length; /* -1 when absent */
  bool chunked;           /* Transfer-Encoding: chunked */
  bool keep_alive;        /* after this request */
  bool expect_continue;   /* Expect: 100-continue */
} http_head;

/* Finds the end of a head in buf[0..len): returns the head's length
 * (including the blank line) or 0 when it is not complete yet. `*scanned`
 * carries where the previous call stopped, so that a head arriving a byte at
 * a time is scanned once; start it at 0. */
size_t http1_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses a complete head of `len` bytes (as found by http1_head_end).
 * Returns 0, or -EINVAL for a malformed request (400), -ENOTSUP for a
 * transfer coding or HTTP version it does not speak (501/505 are reported
 * as 400/501 by the caller), with a message in e. */
int http1_parse_head(const char *buf, size_t len, http_head *h, err *e);

/* The value of the first header named `name` (case-insensitive), or NULL. */
const http_header *http1_find_header(const http_head *h, const char *name);

/* Chunked transfer coding, decoded in place: the payload is moved down to
 * the front of the body so that the body ends up contiguous. */
typedef struct http_chunked {
  int state;
  uint64_t remaining; /* payload bytes left in the current chunk */
  size_t line_len;    /* bytes of the current size/trailer line */
} http_chunked;

/* Decodes buf[*in..len) into buf[*out..), advancing *in and *out (the
 * payload never overtakes the input, so one buffer serves both). Returns 1
 * when the last chunk and the trailers have been read (*in is then the end
 * of the message), 0 when more input is needed, or -EINVAL with a message. */
int http1_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *in, size_t *out, err *e);

/* The reason phrase of a status code ("Not Found"). */
const char *http1_reason(int status);

#endif
