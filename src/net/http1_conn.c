/* net/http1_conn.c: HTTP/1.1 connections: the read path that frames
 * requests (Content-Length, chunked, Expect: 100-continue, keep-alive,
 * pipelining), limits and timeouts, and the write path.
 *
 * A connection moves through these states:
 *
 *   IDLE --first byte--> HEAD --head parsed--> BODY --body complete-->
 *   HANDLING --http_respond--> WRITING --all written--> IDLE (or closed)
 *
 * and, after an error that ends the connection, LINGER: the write side shut,
 * the rest of the client's request read and dropped, then closed.
 *
 * with a deadline per state (idle, header, body, write). HANDLING has no
 * deadline: the scheduler owns a request's time once it is complete. While
 * a request is handled the connection is held (net_conn_hold), so that a
 * client leaving does not free what the handler works on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/json_write.h"
#include "net/conn.h"
#include "net/http_server.h"

#define READ_CHUNK 16384

enum conn_state { C_IDLE, C_HEAD, C_BODY, C_HANDLING, C_WRITING, C_LINGER };

/* After an error answered mid-request, the client may still be sending: the
 * connection reads and drops input this long before it closes, so that the
 * client reads the answer instead of a reset. */
#define LINGER_MS 2000

typedef struct conn {
  net_conn base; /* first: the worker's view */
  enum conn_state state;
  uint64_t deadline_ms;
  bool close_after; /* close once the response is written */
  bool held;        /* a handler has the request: net_conn_hold */
  bool linger;      /* ... after reading what the client still sends */
  bool reading;     /* LOOP_READ requested */
  bool in_process;  /* inside process(): no re-entry */

  /* read side */
  char *rbuf;
  size_t rlen, rcap;
  size_t head_scanned; /* http1_head_end progress */
  size_t head_len;     /* 0 until the head is parsed */
  size_t body_end;     /* Content-Length: head_len + length */
  http_chunked chunked;
  size_t chunk_in, chunk_out; /* chunked decoding positions in rbuf */
  size_t consumed;            /* bytes of rbuf the current request took */

  /* write side */
  char status_line[512];
  struct iovec wiov[8]; /* status+headers, extra headers, body; then blobs */
  struct iovec *iov;    /* points at wiov or a larger array */
  size_t iov_n, iov_i;
  struct iovec *iov_heap;
  size_t blobs_cap; /* room in req.blobs */

  http_request req;
} conn;

static void process(conn *c);
static void conn_close(conn *c);
static void respond_error(conn *c, int status, const char *msg);

/* ---- life ---------------------------------------------------------------- */

static void set_read(conn *c, bool on) {
  if (c->base.closed || c->reading == on) return;
  c->reading = on;
  unsigned ev = (on ? LOOP_READ : 0) | (c->state == C_WRITING ? LOOP_WRITE : 0);
  loop_watch_update(c->base.w->loop, &c->base.watch, ev);
}

static void set_deadline(conn *c, unsigned ms) { c->deadline_ms = net_deadline(&c->base, ms); }

static void conn_free(net_conn *nc) {
  conn *c = (conn *)nc;
  free(c->rbuf);
  buf_free(&c->req.out);
  buf_free(&c->req.headers);
  free(c->req.blobs);
  free(c->iov_heap);
  free(c);
}

static void conn_close(conn *c) { net_conn_close(&c->base); }

/* The socket is gone: a request being handled is cancelled (its handler
 * still answers, into the void); a response being written is released. */
static void on_close(net_conn *nc) {
  conn *c = (conn *)nc;
  if (c->state == C_HANDLING) {
    c->req.cancelled = true;
    if (c->req.on_cancel) c->req.on_cancel(&c->req, c->req.done_arg);
  } else if (c->state == C_WRITING && c->req.on_done) {
    c->req.on_done(&c->req, c->req.done_arg);
    c->req.on_done = NULL;
  }
}

static void on_drain(net_conn *nc) {
  conn *c = (conn *)nc;
  if (c->state == C_IDLE && c->rlen == 0) conn_close(c);
}

static void on_tick(net_conn *nc, uint64_t now) {
  conn *c = (conn *)nc;
  if (c->state == C_HANDLING || now < c->deadline_ms) return;
  switch (c->state) {
  case C_IDLE: conn_close(c); break;
  case C_HEAD: respond_error(c, 408, "timed out waiting for the request headers"); break;
  case C_BODY: respond_error(c, 408, "timed out waiting for the request body"); break;
  case C_WRITING: conn_close(c); break;
  case C_LINGER: conn_close(c); break;
  case C_HANDLING: break;
  }
}

/* ---- write ----------------------------------------------------------------- */

/* Writes what is pending; true when everything is out. Closes the
 * connection on a write error. */
static bool flush(conn *c) {
  while (c->iov_i < c->iov_n) {
    int cnt = (int)(c->iov_n - c->iov_i);
    if (cnt > 1024) cnt = 1024;
    struct msghdr msg = {.msg_iov = c->iov + c->iov_i, .msg_iovlen = (size_t)cnt};
    ssize_t n = sendmsg(c->base.watch.fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return false;
      conn_close(c);
      return false;
    }
    size_t left = (size_t)n;
    while (left && c->iov_i < c->iov_n) {
      struct iovec *v = &c->iov[c->iov_i];
      if (left >= v->iov_len) {
        left -= v->iov_len;
        c->iov_i++;
      } else {
        v->iov_base = (char *)v->iov_base + left;
        v->iov_len -= left;
        left = 0;
      }
    }
  }
  return true;
}

/* The request is answered: release it, drop its bytes from the buffer, and
 * go on with the next request (pipelining) or wait for one. */
static void finish_request(conn *c) {
  if (c->req.on_done) {
    c->req.on_done(&c->req, c->req.done_arg);
    c->req.on_done = NULL;
  }
  if (c->base.closed) return;
  if (c->close_after && c->linger) {
    shutdown(c->base.watch.fd, SHUT_WR);
    c->state = C_LINGER;
    c->rlen = c->consumed = 0;
    set_deadline(c, LINGER_MS);
    set_read(c, true);
    return;
  }
  if (c->close_after) {
    conn_close(c);
    return;
  }
  size_t rest = c->rlen - c->consumed;
  if (rest) memmove(c->rbuf, c->rbuf + c->consumed, rest);
  c->rlen = rest;
  c->consumed = 0;
  c->head_len = 0;
  c->head_scanned = 0;
  /* A large body's buffer goes back; the next request starts small. */
  if (c->rcap > 4 * READ_CHUNK && c->rlen <= READ_CHUNK) {
    char *small = realloc(c->rbuf, READ_CHUNK);
    if (small) {
      c->rbuf = small;
      c->rcap = READ_CHUNK;
    }
  }
  c->state = C_IDLE;
  set_deadline(c, c->base.w->s->cfg.idle_timeout_ms);
  if (c->base.w->draining && c->rlen == 0) {
    conn_close(c);
    return;
  }
  set_read(c, true);
  if (!c->in_process && c->rlen) process(c);
}

/* The response head is written without printf: it is on every request's
 * path. Lines longer than the room are cut (content types are short). */
static void put(conn *c, size_t *len, const char *s, size_t n) {
  size_t room = sizeof c->status_line - *len;
  if (n > room) n = room;
  memcpy(c->status_line + *len, s, n);
  *len += n;
}

static void put_str(conn *c, size_t *len, const char *s) { put(c, len, s, strlen(s)); }

static void put_uint(conn *c, size_t *len, size_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  put(c, len, tmp + i, sizeof tmp - i);
}

void http_respond(http_request *req) {
  conn *c = container_of(req, conn, req);
  if (c->held) {
    c->held = false;
    if (c->base.closed) {
      /* The client left while its request was handled. */
      c->state = C_IDLE;
      if (req->on_done) req->on_done(req, req->done_arg);
      req->on_done = NULL;
      net_conn_release(&c->base);
      return;
    }
    net_conn_release(&c->base);
  }
  if (req->out.oom || req->headers.oom) {
    buf_free(&req->out);
    buf_free(&req->headers);
    req->n_blobs = 0;
    req->status = 500;
    req->content_type = "application/json";
    buf_puts(&req->out, "{\"error\":\"out of memory writing the response\"}");
  }
  if (!req->head.keep_alive || c->base.w->draining) c->close_after = true;

  size_t body = req->out.len;
  for (size_t i = 0; i < req->n_blobs; i++)
    body += req->blobs[i].iov_len;

  size_t len = 0;
  int status = req->status ? req->status : 200;
  put(c, &len, "HTTP/1.1 ", 9);
  put_uint(c, &len, (size_t)status);
  put(c, &len, " ", 1);
  put_str(c, &len, http1_reason(status));
  if (req->content_type) {
    put(c, &len, "\r\nContent-Type: ", 16);
    put_str(c, &len, req->content_type);
  }
  put(c, &len, "\r\nContent-Length: ", 18);
  put_uint(c, &len, body);
  put(c, &len, "\r\n", 2);
  if (c->close_after)
    put(c, &len, "Connection: close\r\n", 19);
  else if (req->head.minor_version == 0)
    put(c, &len, "Connection: keep-alive\r\n", 24);

  size_t n = 0;
  struct iovec *iov = c->wiov;
  bool head_only = req->head.method == HTTP_HEAD;
  size_t need = 4 + (head_only ? 0 : req->n_blobs); /* status, headers, CRLF, body */
  if (need > sizeof c->wiov / sizeof c->wiov[0]) {
    struct iovec *big = realloc(c->iov_heap, need * sizeof *big);
    if (big) {
      c->iov_heap = big;
      iov = big;
    } else {
      conn_close(c);
      http_respond(req); /* now on the closed path */
      return;
    }
  }
  iov[n++] = (struct iovec){c->status_line, len};
  if (req->headers.len) iov[n++] = (struct iovec){req->headers.data, req->headers.len};
  iov[n++] = (struct iovec){"\r\n", 2};
  if (!head_only) {
    if (req->out.len) iov[n++] = (struct iovec){req->out.data, req->out.len};
    for (size_t i = 0; i < req->n_blobs; i++)
      if (req->blobs[i].iov_len) iov[n++] = req->blobs[i];
  }
  c->iov = iov;
  c->iov_n = n;
  c->iov_i = 0;
  c->state = C_WRITING;
  if (flush(c)) {
    finish_request(c);
  } else if (!c->base.closed) {
    set_deadline(c, c->base.w->s->cfg.write_timeout_ms);
    loop_watch_update(c->base.w->loop, &c->base.watch, LOOP_WRITE | (c->reading ? LOOP_READ : 0));
  }
}

void http_set_error(http_request *req, int status, const char *msg) {
  req->status = status;
  req->content_type = "application/json";
  req->out.len = 0;
  req->n_blobs = 0;
  buf_puts(&req->out, "{\"error\":");
  json_put_cstr(&req->out, msg);
  buf_putc(&req->out, '}');
}

void http_add_header(http_request *req, const char *name, const char *value) {
  buf_puts(&req->headers, name);
  buf_append(&req->headers, ": ", 2);
  buf_puts(&req->headers, value);
  buf_append(&req->headers, "\r\n", 2);
}

bool http_reserve_blobs(http_request *req, size_t n) {
  conn *c = container_of(req, conn, req);
  if (n <= c->blobs_cap) return true;
  struct iovec *b = realloc(req->blobs, n * sizeof *b);
  if (!b) return false;
  req->blobs = b;
  c->blobs_cap = n;
  return true;
}

/* An error found by the framing itself (bad head, too large, timed out): the
 * connection cannot be trusted to be in step any more, so it closes after. */
static void respond_error(conn *c, int status, const char *msg) {
  http_request *req = &c->req;
  c->close_after = true;
  c->linger = true;
  c->consumed = c->rlen;
  if (!c->head_len) memset(&req->head, 0, sizeof req->head);
  req->head.keep_alive = false;
  req->head.method = HTTP_OTHER;
  req->headers.len = 0;
  req->on_done = NULL;
  http_set_error(req, status, msg);
  http_respond(req);
}

/* ---- read ------------------------------------------------------------------- */

static int status_of(int code) {
  switch (code) {
  case -E2BIG: return 431;
  case -ENOTSUP: return 501;
  default: return 400;
  }
}

/* Starts the handler on a complete request. */
static void dispatch(conn *c, char *body, size_t body_len) {
  http_request *req = &c->req;
  req->body = body;
  req->body_len = body_len;
  req->status = 200;
  req->content_type = NULL;
  req->out.len = 0;
  req->headers.len = 0;
  req->n_blobs = 0;
  req->on_done = NULL;
  req->on_cancel = NULL;
  req->done_arg = NULL;
  req->cancelled = false;
  c->state = C_HANDLING;
  net_conn_hold(&c->base); /* released when the request is answered */
  c->held = true;
  http_handler_fn *handler = (http_handler_fn *)c->base.lis->handler;
  handler(req, c->base.lis->ctx);
}

/* Frames as many requests as the buffer holds. */
static void process(conn *c) {
  const http_server_config *cfg = &c->base.w->s->cfg;
  c->in_process = true;
  while (!c->base.closed && (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY)) {
    http_request *req = &c->req;
    if (c->state == C_IDLE) {
      if (c->rlen == 0) break;
      c->state = C_HEAD;
      set_deadline(c, cfg->header_timeout_ms);
    }
    if (c->state == C_HEAD) {
      size_t end = http1_head_end(c->rbuf, c->rlen, &c->head_scanned);
      if (!end) {
        if (c->rlen > cfg->max_head) respond_error(c, 431, "request headers are too large");
        break;
      }
      if (end > cfg->max_head) {
        respond_error(c, 431, "request headers are too large");
        break;
      }
      err e = {0};
      int rc = http1_parse_head(c->rbuf, end, &req->head, &e);
      if (rc < 0) {
        c->head_len = 0;
        respond_error(c, status_of(rc), e.msg);
        break;
      }
      c->head_len = end;
      if (req->head.content_length > 0 && (size_t)req->head.content_length > cfg->max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body of %lld bytes is over the limit of %zu bytes",
                 (long long)req->head.content_length, cfg->max_body);
        respond_error(c, 413, msg);
        break;
      }
      c->state = C_BODY;
      set_deadline(c, cfg->body_timeout_ms);
      if (req->head.chunked) {
        memset(&c->chunked, 0, sizeof c->chunked);
        c->chunk_in = c->chunk_out = end;
      } else {
        c->body_end = end + (size_t)(req->head.content_length > 0 ? req->head.content_length : 0);
      }
      bool body_pending = req->head.chunked ? true : c->rlen < c->body_end;
      if (req->head.expect_continue && body_pending) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t r = send(c->base.watch.fd, cont, sizeof cont - 1, MSG_NOSIGNAL);
        (void)r; /* a client that cannot take 25 bytes will time out */
      }
    }
    /* C_BODY */
    if (req->head.chunked) {
      err e = {0};
      int rc = http1_chunked_decode(&c->chunked, c->rbuf, c->rlen, &c->chunk_in, &c->chunk_out, &e);
      if (c->chunk_out - c->head_len > cfg->max_body) {
        respond_error(c, 413, "chunked request body is over the size limit");
        break;
      }
      if (rc < 0) {
        respond_error(c, 400, e.msg);
        break;
      }
      if (rc == 0) {
        /* Decoded bytes are final; keep only the undecoded tail after them. */
        size_t tail = c->rlen - c->chunk_in;
        memmove(c->rbuf + c->chunk_out, c->rbuf + c->chunk_in, tail);
        c->rlen = c->chunk_out + tail;
        c->chunk_in = c->chunk_out;
        break;
      }
      /* The message ends at chunk_in; pipelined bytes follow it. Move them
       * next to the decoded body. */
      size_t tail = c->rlen - c->chunk_in;
      memmove(c->rbuf + c->chunk_out, c->rbuf + c->chunk_in, tail);
      c->rlen = c->chunk_out + tail;
      c->consumed = c->chunk_out;
      dispatch(c, c->rbuf + c->head_len, c->chunk_out - c->head_len);
    } else {
      if (c->rlen < c->body_end) break;
      c->consumed = c->body_end;
      dispatch(c, c->rbuf + c->head_len, c->body_end - c->head_len);
    }
  }
  c->in_process = false;
}

/* Room to read into: the whole expected message when its size is known
 * (up to the limits, and with a little more so that a client closing or
 * pipelining is seen), else at least a quarter chunk. While a request is handled its
 * body lives in the buffer, which must not move: then only the room left
 * is used. */
static bool make_room(conn *c) {
  const http_server_config *cfg = &c->base.w->s->cfg;
  if (c->state == C_HANDLING || c->state == C_WRITING) return c->rlen < c->rcap;
  size_t want = c->rlen + READ_CHUNK / 4; /* some room to read into */
  if (c->state == C_BODY && !c->req.head.chunked && c->body_end + READ_CHUNK / 4 > want)
    want = c->body_end + READ_CHUNK / 4;
  size_t limit = cfg->max_head + cfg->max_body + READ_CHUNK;
  if (want > limit) want = limit;
  if (want <= c->rcap) return c->rlen < c->rcap;
  size_t cap = c->rcap ? c->rcap : READ_CHUNK;
  while (cap < want)
    cap *= 2;
  if (cap > limit) cap = limit;
  char *p = realloc(c->rbuf, cap);
  if (!p) return false;
  bool moved = p != c->rbuf;
  c->rbuf = p;
  c->rcap = cap;
  if (moved && c->state == C_BODY) {
    /* The parsed head points into the buffer: parse it again where it is
     * now (same bytes, so it cannot fail). */
    err e;
    http1_parse_head(c->rbuf, c->head_len, &c->req.head, &e);
  }
  return c->rlen < c->rcap;
}

static void on_readable(conn *c) {
  if (c->state == C_LINGER) {
    char sink[READ_CHUNK];
    ssize_t n = recv(c->base.watch.fd, sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) conn_close(c);
    return;
  }
  if (!make_room(c)) {
    /* Full: a handled request with pipelined data behind it waits; anything
     * else is over the limits, which process() has answered already. */
    set_read(c, false);
    return;
  }
  ssize_t n = recv(c->base.watch.fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
  if (n == 0) {
    conn_close(c);
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) conn_close(c);
    return;
  }
  c->rlen += (size_t)n;
  if (c->state == C_HANDLING || c->state == C_WRITING) return; /* kept for later */
  process(c);
}

static void on_event(net_conn *nc, unsigned revents) {
  conn *c = (conn *)nc;
  if (revents & LOOP_WRITE && c->state == C_WRITING) {
    if (flush(c)) {
      loop_watch_update(c->base.w->loop, &c->base.watch, c->reading ? LOOP_READ : 0);
      finish_request(c);
    }
    if (c->base.closed) return;
  }
  if (revents & (LOOP_READ | LOOP_ERROR)) on_readable(c);
}

static const conn_ops http1_ops = {
    .on_event = on_event,
    .on_tick = on_tick,
    .on_drain = on_drain,
    .on_close = on_close,
    .free = conn_free,
};

net_conn *http1_accept(net_listener *lis, int fd) {
  conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->state = C_IDLE;
  c->reading = true;
  c->req.loop = lis->w->loop;
  c->iov = c->wiov;
  if (net_conn_start(&c->base, lis, &http1_ops, fd) < 0) {
    free(c);
    return NULL;
  }
  set_deadline(c, lis->w->s->cfg.idle_timeout_ms);
  return &c->base;
}
