/* net/http1.c: HTTP/1.1 request-head parser and chunked decoder (RFC 9112). */
#include "net/http1.h"

#include <string.h>
#include <strings.h>

/* ---- character classes ---------------------------------------------------- */

/* tchar of RFC 9110: the characters of a token (method, header name). */
static bool is_tchar(unsigned char c) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c && memchr(extra, c, sizeof extra - 1) != NULL;
}

/* A byte allowed in a field value: visible, space, tab, or obs-text. */
static bool is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static bool equals_nocase(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* ---- head ----------------------------------------------------------------- */

size_t http1_head_end(const char *buf, size_t len, size_t *scanned) {
  size_t i = *scanned;
  /* Empty lines before the request line are skipped (RFC 9112 2.2), so they
   * must not count as the blank line that ends the head. */
  size_t start = 0;
  while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
    start++;
  if (i < start) i = start;
  while (i < len) {
    const char *nl = memchr(buf + i, '\n', len - i);
    if (!nl) break;
    size_t p = (size_t)(nl - buf);
    /* The line ending at p is empty when the byte before it (after an
     * optional CR) is the previous line's LF. */
    if (p > start && buf[p - 1] == '\n') return p + 1;
    if (p > start + 1 && buf[p - 1] == '\r' && buf[p - 2] == '\n') return p + 1;
    i = p + 1;
  }
  *scanned = len;
  return 0;
}

/* Reads one line of buf[*pos..end), returning its start and length without
 * the CRLF or LF; false when there is no full line. */
static bool next_line(const char *buf, size_t end, size_t *pos, const char **line, size_t *n) {
  const char *nl = memchr(buf + *pos, '\n', end - *pos);
  if (!nl) return false;
  size_t stop = (size_t)(nl - buf);
  *line = buf + *pos;
  *n = stop - *pos;
  if (*n && (*line)[*n - 1] == '\r') (*n)--;
  *pos = stop + 1;
  return true;
}

static http_method method_of(const char *s, size_t n) {
  static const struct {
    const char *name;
    http_method m;
  } methods[] = {{"GET", HTTP_GET}, {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
                 {"PUT", HTTP_PUT}, {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS}};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strlen(methods[i].name) == n && memcmp(methods[i].name, s, n) == 0) return methods[i].m;
  return HTTP_OTHER;
}

static int parse_request_line(const char *line, size_t n, http_head *h, err *e) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)line[i]))
    i++;
  if (i == 0 || i == n || line[i] != ' ')
    return err_set(e, -EINVAL, "malformed request line: bad method");
  h->method_str = line;
  h->method_len = i;
  h->method = method_of(line, i);

  size_t t = ++i;
  while (i < n && line[i] != ' ') {
    unsigned char c = (unsigned char)line[i];
    if (c <= 0x20 || c >= 0x7f)
      return err_set(e, -EINVAL, "malformed request line: bad character in the target");
    i++;
  }
  if (i == t || i == n) return err_set(e, -EINVAL, "malformed request line: no target");
  const char *target = line + t;
  size_t tlen = i - t;
  const char *q = memchr(target, '?', tlen);
  h->path = target;
  h->path_len = q ? (size_t)(q - target) : tlen;
  h->query = q ? q + 1 : NULL;
  h->query_len = q ? tlen - h->path_len - 1 : 0;

  const char *v = line + i + 1;
  size_t vlen = n - i - 1;
  if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9')
    return err_set(e, -EINVAL, "malformed request line: bad HTTP version");
  if (v[5] != '1') return err_set(e, -ENOTSUP, "HTTP version %.8s is not supported", v);
  h->minor_version = v[7] - '0';
  return 0;
}

/* Content-Length: one or more equal decimal values (a list repeated by a
 * proxy is allowed if every value is the same). */
static int parse_content_length(const char *s, size_t n, http_head *h, err *e) {
  size_t i = 0;
  while (i < n) {
    int64_t v = 0;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (v > (INT64_MAX - 9) / 10) return err_set(e, -EINVAL, "Content-Length is too large");
      v = v * 10 + (s[i] - '0');
      i++;
      digits++;
    }
    if (!digits) return err_set(e, -EINVAL, "Content-Length is not a number");
    if (h->content_length >= 0 && h->content_length != v)
      return err_set(e, -EINVAL, "conflicting Content-Length values");
    h->content_length = v;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
      i++;
    if (i < n) {
      if (s[i] != ',') return err_set(e, -EINVAL, "Content-Length is not a number");
      i++;
      while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    }
  }
  return 0;
}

/* Calls fn for each comma-separated element of a header value, trimmed. */
static void each_token(const char *s, size_t n, void (*fn)(const char *, size_t, void *),
                       void *ctx) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
      i++;
    size_t start = i;
    while (i < n && s[i] != ',')
      i++;
    size_t end = i;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
      end--;
    if (end > start) fn(s + start, end - start, ctx);
  }
}

typedef struct te_state {
  int codings;
  bool last_chunked;
} te_state;

static void on_te(const char *s, size_t n, void *ctx) {
  te_state *st = ctx;
  st->codings++;
  st->last_chunked = equals_nocase(s, n, "chunked");
}

typedef struct conn_state {
  bool close, keep_alive;
} conn_state;

static void on_connection(const char *s, size_t n, void *ctx) {
  conn_state *st = ctx;
  if (equals_nocase(s, n, "close")) st->close = true;
  if (equals_nocase(s, n, "keep-alive")) st->keep_alive = true;
}

int http1_parse_head(const char *buf, size_t len, http_head *h, err *e) {
  /* Everything but the header array, which n_headers bounds. */
  memset(h, 0, offsetof(http_head, headers));
  h->content_length = -1;
  h->chunked = h->keep_alive = h->expect_continue = false;
  size_t pos = 0;
  while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
    pos++;

  const char *line;
  size_t n;
  if (!next_line(buf, len, &pos, &line, &n))
    return err_set(e, -EINVAL, "malformed request: no request line");
  int rc = parse_request_line(line, n, h, e);
  if (rc < 0) return rc;

  te_state te = {0};
  conn_state conn = {0};
  bool has_te = false;
  while (next_line(buf, len, &pos, &line, &n) && n > 0) {
    if (line[0] == ' ' || line[0] == '\t')
      return err_set(e, -EINVAL, "malformed header: folded lines are not allowed");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i]))
      i++;
    if (i == 0 || i == n || line[i] != ':')
      return err_set(e, -EINVAL, "malformed header line: '%.*s'", (int)(n < 40 ? n : 40), line);
    size_t name_len = i++;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
      i++;
    size_t end = n;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
      end--;
    for (size_t k = i; k < end; k++)
      if (!is_value_char((unsigned char)line[k]))
        return err_set(e, -EINVAL, "malformed header: control character in '%.*s'", (int)name_len,
                       line);
    if (h->n_headers == HTTP_MAX_HEADERS)
      return err_set(e, -E2BIG, "too many header fields (more than %d)", HTTP_MAX_HEADERS);
    http_header *hd = &h->headers[h->n_headers++];
    hd->name = line;
    hd->name_len = name_len;
    hd->value = line + i;
    hd->value_len = end - i;

    if (equals_nocase(hd->name, name_len, "content-length")) {
      rc = parse_content_length(hd->value, hd->value_len, h, e);
      if (rc < 0) return rc;
    } else if (equals_nocase(hd->name, name_len, "transfer-encoding")) {
      has_te = true;
      each_token(hd->value, hd->value_len, on_te, &te);
    } else if (equals_nocase(hd->name, name_len, "connection")) {
      each_token(hd->value, hd->value_len, on_connection, &conn);
    } else if (equals_nocase(hd->name, name_len, "expect")) {
      if (equals_nocase(hd->value, hd->value_len, "100-continue")) h->expect_continue = true;
    }
  }

  if (has_te) {
    if (h->minor_version == 0)
      return err_set(e, -EINVAL, "Transfer-Encoding is not allowed in HTTP/1.0");
    if (h->content_length >= 0)
      return err_set(e, -EINVAL, "both Content-Length and Transfer-Encoding are present");
    if (te.codings != 1 || !te.last_chunked)
      return err_set(e, -ENOTSUP, "only Transfer-Encoding: chunked is supported");
    h->chunked = true;
  }
  h->keep_alive = h->minor_version >= 1 ? !conn.close : conn.keep_alive && !conn.close;
  return 0;
}

const http_header *http1_find_header(const http_head *h, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < h->n_headers; i++)
    if (h->headers[i].name_len == n && strncasecmp(h->headers[i].name, name, n) == 0)
      return &h->headers[i];
  return NULL;
}

/* ---- chunked --------------------------------------------------------------- */

enum {
  C_SIZE = 0,   /* hex digits of a chunk size */
  C_EXT,        /* chunk extension, up to the line end */
  C_SIZE_LF,    /* LF after the size line's CR */
  C_DATA,       /* chunk payload */
  C_DATA_CR,    /* CRLF after the payload */
  C_DATA_LF,    /* LF after the payload's CR */
  C_TRAILER,    /* start of a trailer line, or the final CRLF */
  C_TRAILER_IN, /* inside a trailer field */
  C_END_LF,     /* LF of the final CRLF */
};

#define CHUNK_LINE_MAX 4096

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int http1_chunked_decode(http_chunked *c, char *buf, size_t len, size_t *in, size_t *out, err *e) {
  size_t i = *in, o = *out;
  int rc = 0;
  while (i < len) {
    char ch = buf[i];
    switch (c->state) {
    case C_SIZE: {
      int v = hex_value(ch);
      if (v >= 0) {
        if (c->line_len >= 15) {
          rc = err_set(e, -EINVAL, "chunk size is too large");
          goto done;
        }
        c->remaining = c->remaining << 4 | (uint64_t)v;
        c->line_len++;
        i++;
        break;
      }
      if (c->line_len == 0) {
        rc = err_set(e, -EINVAL, "malformed chunk size");
        goto done;
      }
      if (ch == ';' || ch == ' ' || ch == '\t') {
        c->state = C_EXT;
        i++;
      } else if (ch == '\r') {
        c->state = C_SIZE_LF;
        i++;
      } else if (ch == '\n') {
        i++;
        goto size_line_done;
      } else {
        rc = err_set(e, -EINVAL, "malformed chunk size");
        goto done;
      }
      break;
    }
    case C_EXT:
      if (++c->line_len > CHUNK_LINE_MAX) {
        rc = err_set(e, -EINVAL, "chunk extension is too long");
        goto done;
      }
      i++;
      if (ch == '\r')
        c->state = C_SIZE_LF;
      else if (ch == '\n')
        goto size_line_done;
      else if ((unsigned char)ch < 0x20 && ch != '\t') {
        rc = err_set(e, -EINVAL, "malformed chunk extension");
        goto done;
      }
      break;
    case C_SIZE_LF:
      if (ch != '\n') {
        rc = err_set(e, -EINVAL, "malformed chunk size line");
        goto done;
      }
      i++;
    size_line_done:
      c->line_len = 0;
      c->state = c->remaining ? C_DATA : C_TRAILER;
      break;
    case C_DATA: {
      size_t avail = len - i;
      size_t take = c->remaining < avail ? (size_t)c->remaining : avail;
      if (o != i) memmove(buf + o, buf + i, take);
      o += take;
      i += take;
      c->remaining -= take;
      if (c->remaining == 0) c->state = C_DATA_CR;
      break;
    }
    case C_DATA_CR:
      i++;
      if (ch == '\r')
        c->state = C_DATA_LF;
      else if (ch == '\n')
        c->state = C_SIZE;
      else {
        rc = err_set(e, -EINVAL, "chunk data is longer than its size");
        goto done;
      }
      break;
    case C_DATA_LF:
      if (ch != '\n') {
        rc = err_set(e, -EINVAL, "chunk data is longer than its size");
        goto done;
      }
      i++;
      c->state = C_SIZE;
      break;
    case C_TRAILER:
      i++;
      if (ch == '\r')
        c->state = C_END_LF;
      else if (ch == '\n') {
        rc = 1;
        goto done;
      } else {
        c->state = C_TRAILER_IN;
        c->line_len = 1;
      }
      break;
    case C_TRAILER_IN:
      i++;
      if (++c->line_len > CHUNK_LINE_MAX) {
        rc = err_set(e, -EINVAL, "trailer field is too long");
        goto done;
      }
      if (ch == '\n') c->state = C_TRAILER;
      break;
    case C_END_LF:
      if (ch != '\n') {
        rc = err_set(e, -EINVAL, "malformed end of chunked body");
        goto done;
      }
      i++;
      rc = 1;
      goto done;
    }
  }
done:
  *in = i;
  *out = o;
  return rc;
}

/* ---- statuses -------------------------------------------------------------- */

const char *http1_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}
