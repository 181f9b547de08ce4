/* net/h2_conn.c: HTTP/2 connections (cleartext, prior knowledge), with
 * nghttp2 doing the framing, HPACK and flow control and inferd owning the
 * socket and the event loop.
 *
 * Reading: bytes from the socket go to nghttp2_session_mem_recv, whose
 * callbacks hand the request headers and body to the handler (gRPC).
 * Flow control is manual: body bytes count against the stream's and the
 * connection's windows until the handler consumes them (h2_consume), so a
 * client can never make the server hold more than the windows allow.
 *
 * Writing: nghttp2_session_send serialises frames into an output queue of
 * segments, written with writev. Control frames are copied (they are
 * small); response body bytes are not: each DATA frame becomes a 9-byte
 * header segment and segments that point into the handler's memory, which
 * it gets back (done callback) once they are written. When the queue holds
 * more than OUT_LIMIT unsent bytes the connection stops asking nghttp2 for
 * frames and stops reading. While answers not yet sent (queued, or waiting
 * for the client's flow-control window) pass OUT_LIMIT, new streams are
 * refused (REFUSED_STREAM, which gRPC clients see as UNAVAILABLE and may
 * retry): a client that does not read cannot make the server hold more,
 * and the connection still reads its WINDOW_UPDATEs. */
#include <errno.h>
#include <limits.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "net/conn.h"
#include "net/h2.h"

#define READ_CHUNK  (64 << 10)
#define OUT_LIMIT   (8 << 20)
#define MAX_STREAMS 256
#define MAX_HEADERS 64

typedef struct send_group send_group;
typedef struct h2c h2c;

/* A piece of the output queue: bytes copied into the connection's staging
 * buffer (ref NULL: at stage_off), or pointing into a send group's memory. */
typedef struct out_seg {
  const uint8_t *ref;
  size_t stage_off;
  size_t len, off; /* bytes, and those already written */
  send_group *group;
} out_seg;

/* The body bytes of one h2_send: handed to nghttp2 a frame at a time. */
struct send_group {
  send_group *next; /* the stream's pending list, or the connection's spares */
  struct iovec *iov;
  size_t n, i, off; /* the next byte to hand out: iov[i] + off */
  size_t unhanded;  /* bytes not yet in a frame */
  int segs;         /* queued segments pointing into it */
  void (*done)(void *arg);
  void *arg;
  struct iovec inline_iov[4];
};

struct h2_stream {
  int32_t id;
  h2c *c;
  h2_stream *next; /* the connection's streams, or its spares */
  int holds;
  bool closed;    /* on_close has been called */
  bool requested; /* on_request has been called */
  bool responded; /* response headers submitted */
  bool ending;    /* the body is complete */
  bool has_trailers;
  void *user;
  size_t unconsumed; /* body bytes received, not consumed */

  buf hbuf; /* request header names and values, NUL-terminated */
  size_t n_headers;
  size_t hoff[MAX_HEADERS][2];
  buf trailers; /* trailer names and values, NUL-terminated */
  size_t n_trailers;

  send_group *pending, *pending_tail;
  size_t pending_bytes;
};

struct h2c {
  net_conn base;
  nghttp2_session *session;
  h2_stream *streams;
  /* The output queue: segs[head_seg .. n_segs), copied bytes in stage.
   * Both are kept (emptied, not freed) between writes, and spent groups
   * and streams are kept for reuse: a request allocates nothing here once
   * the connection has warmed up. */
  out_seg *segs;
  size_t n_segs, cap_segs, head_seg;
  buf stage;
  size_t out_bytes;
  send_group *spare_groups;
  h2_stream *spare_streams;
  int n_spare_groups, n_spare_streams;
  size_t pending_bytes; /* response body queued in streams, not yet in frames */
  uint8_t *rbuf;
  bool reading, writing, in_io, goaway;
  uint64_t deadline_ms;
};

#define SPARES_MAX 64

static void pump(h2c *c);

static const h2_handler *handler_of(const h2c *c) { return c->base.lis->handler; }
static void *ctx_of(const h2c *c) { return c->base.lis->ctx; }

/* ---- send groups ------------------------------------------------------------ */

static send_group *group_new(h2c *c) {
  send_group *g = c->spare_groups;
  if (g) {
    c->spare_groups = g->next;
    c->n_spare_groups--;
    memset(g, 0, sizeof *g);
    return g;
  }
  return calloc(1, sizeof *g);
}

static void group_maybe_done(h2c *c, send_group *g) {
  if (g->segs || g->unhanded) return;
  if (g->done) g->done(g->arg);
  if (g->iov != g->inline_iov) free(g->iov);
  if (c->n_spare_groups < SPARES_MAX) {
    g->next = c->spare_groups;
    c->spare_groups = g;
    c->n_spare_groups++;
  } else {
    free(g);
  }
}

/* Drops a stream's body not yet in frames (the stream is gone). */
static void drop_pending(h2_stream *s) {
  send_group *g = s->pending;
  s->pending = s->pending_tail = NULL;
  s->c->pending_bytes -= s->pending_bytes;
  s->pending_bytes = 0;
  while (g) {
    send_group *next = g->next;
    g->unhanded = 0;
    group_maybe_done(s->c, g);
    g = next;
  }
}

/* ---- the output queue -------------------------------------------------------- */

static out_seg *push_seg(h2c *c) {
  if (c->n_segs == c->cap_segs) {
    size_t cap = c->cap_segs ? 2 * c->cap_segs : 64;
    out_seg *p = realloc(c->segs, cap * sizeof *p);
    if (!p) return NULL;
    c->segs = p;
    c->cap_segs = cap;
  }
  out_seg *g = &c->segs[c->n_segs++];
  *g = (out_seg){0};
  return g;
}

static bool queue_copy(h2c *c, const uint8_t *data, size_t len) {
  out_seg *last = c->n_segs > c->head_seg ? &c->segs[c->n_segs - 1] : NULL;
  if (!last || last->ref || last->stage_off + last->len != c->stage.len) {
    if (!(last = push_seg(c))) return false;
    last->stage_off = c->stage.len;
  }
  buf_append(&c->stage, data, len);
  if (c->stage.oom) return false;
  last->len += len;
  c->out_bytes += len;
  return true;
}

static bool queue_ref(h2c *c, send_group *g, const uint8_t *data, size_t len) {
  out_seg *seg = push_seg(c);
  if (!seg) return false;
  seg->ref = data;
  seg->len = len;
  seg->group = g;
  g->segs++;
  c->out_bytes += len;
  return true;
}

/* A segment is out (or dropped): its group may be done. */
static void seg_done(h2c *c, out_seg *seg) {
  send_group *g = seg->group;
  if (g) {
    g->segs--;
    group_maybe_done(c, g);
  }
}

static bool queue_empty(const h2c *c) { return c->head_seg == c->n_segs; }

/* Writes the queue; false when the socket is closed (error). */
static bool flush(h2c *c) {
  while (!queue_empty(c)) {
    struct iovec iov[64];
    int n = 0;
    for (size_t i = c->head_seg; i < c->n_segs && n < 64; i++) {
      const out_seg *g = &c->segs[i];
      const uint8_t *base = g->ref ? g->ref : (const uint8_t *)c->stage.data + g->stage_off;
      iov[n++] = (struct iovec){(void *)(base + g->off), g->len - g->off};
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(c->base.watch.fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return false;
    }
    size_t left = (size_t)w;
    c->out_bytes -= left;
    while (left && !queue_empty(c)) {
      out_seg *g = &c->segs[c->head_seg];
      size_t rest = g->len - g->off;
      if (left < rest) {
        g->off += left;
        left = 0;
      } else {
        left -= rest;
        c->head_seg++;
        seg_done(c, g);
      }
    }
  }
  if (queue_empty(c)) { /* everything out: the queue starts over */
    c->head_seg = c->n_segs = 0;
    c->stage.len = 0;
  }
  return true;
}

/* ---- nghttp2 callbacks: sending ------------------------------------------------- */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user) {
  h2c *c = user;
  if (c->out_bytes > OUT_LIMIT) return NGHTTP2_ERR_WOULDBLOCK;
  return queue_copy(c, data, length) ? (ssize_t)length : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* A DATA frame: its header copied, its payload referenced. */
static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user) {
  h2c *c = user;
  h2_stream *s = source->ptr;
  if (c->out_bytes > OUT_LIMIT) return NGHTTP2_ERR_WOULDBLOCK;
  if (!queue_copy(c, framehd, 9)) return NGHTTP2_ERR_CALLBACK_FAILURE;
  while (length) {
    send_group *g = s->pending;
    if (!g) return NGHTTP2_ERR_CALLBACK_FAILURE;
    struct iovec *v = &g->iov[g->i];
    size_t take = v->iov_len - g->off;
    if (take > length) take = length;
    if (take && !queue_ref(c, g, (const uint8_t *)v->iov_base + g->off, take))
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    g->off += take;
    g->unhanded -= take;
    s->pending_bytes -= take;
    c->pending_bytes -= take;
    length -= take;
    if (g->off == v->iov_len) {
      g->i++;
      g->off = 0;
    }
    if (g->unhanded == 0) {
      s->pending = g->next;
      if (!s->pending) s->pending_tail = NULL;
      group_maybe_done(c, g);
    }
  }
  return 0;
}

static void submit_trailers(h2_stream *s) {
  nghttp2_nv nv[MAX_HEADERS];
  size_t n = 0;
  const char *p = s->trailers.data;
  for (size_t i = 0; i < s->n_trailers && n < MAX_HEADERS; i++) {
    const char *name = p;
    p += strlen(p) + 1;
    const char *value = p;
    p += strlen(p) + 1;
    nv[n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                           NGHTTP2_NV_FLAG_NONE};
  }
  nghttp2_submit_trailer(s->c->session, s->id, nv, n);
}

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *unused,
                            size_t length, uint32_t *flags, nghttp2_data_source *source,
                            void *user) {
  h2_stream *s = source->ptr;
  size_t n = s->pending_bytes < length ? s->pending_bytes : length;
  if (n) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == s->pending_bytes && s->ending) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->has_trailers) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      submit_trailers(s);
    }
    return (ssize_t)n;
  }
  return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

/* ---- nghttp2 callbacks: receiving ------------------------------------------------ */

static h2_stream *stream_of(h2c *c, int32_t id) {
  return nghttp2_session_get_stream_user_data(c->session, id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
  h2c *c = user;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  h2_stream *s = c->spare_streams;
  if (s) {
    /* a spare keeps its buffers: emptied, not freed */
    c->spare_streams = s->next;
    c->n_spare_streams--;
    buf hbuf = s->hbuf, trailers = s->trailers;
    memset(s, 0, sizeof *s);
    s->hbuf = hbuf;
    s->trailers = trailers;
    s->hbuf.len = s->trailers.len = 0;
  } else if (!(s = calloc(1, sizeof *s))) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  s->id = frame->hd.stream_id;
  s->c = c;
  s->holds = 1; /* the connection's, until the stream closes */
  s->next = c->streams;
  c->streams = s;
  net_conn_hold(&c->base);
  nghttp2_session_set_stream_user_data(session, s->id, s);
  return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user) {
  h2c *c = user;
  h2_stream *s = stream_of(c, frame->hd.stream_id);
  if (!s || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers: ignored */
  if (s->n_headers == MAX_HEADERS) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->hoff[s->n_headers][0] = s->hbuf.len;
  buf_append(&s->hbuf, name, namelen);
  buf_putc(&s->hbuf, 0);
  s->hoff[s->n_headers][1] = s->hbuf.len;
  buf_append(&s->hbuf, value, valuelen);
  buf_putc(&s->hbuf, 0);
  if (s->hbuf.oom) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->n_headers++;
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
  h2c *c = user;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  h2_stream *s = stream_of(c, frame->hd.stream_id);
  if (!s || s->closed) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (c->out_bytes + c->pending_bytes > OUT_LIMIT) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    s->requested = true;
    handler_of(c)->on_request(s, ctx_of(c));
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM && s->requested && !s->closed)
    handler_of(c)->on_end(s, ctx_of(c));
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user) {
  h2c *c = user;
  h2_stream *s = stream_of(c, stream_id);
  if (!s || s->closed || !s->requested) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  s->unconsumed += len;
  handler_of(c)->on_data(s, data, len, ctx_of(c));
  return 0;
}

static void stream_free(h2_stream *s) {
  h2c *c = s->c;
  for (h2_stream **p = &c->streams; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  if (c->n_spare_streams < SPARES_MAX && !c->base.closed) {
    s->next = c->spare_streams;
    c->spare_streams = s;
    c->n_spare_streams++;
  } else {
    buf_free(&s->hbuf);
    buf_free(&s->trailers);
    free(s);
  }
  net_conn_release(&c->base);
}

/* The stream is over: the handler hears of it once, and the stream's unsent
 * body and unconsumed window go back. */
static void stream_closed(h2_stream *s) {
  if (s->closed) return;
  s->closed = true;
  h2c *c = s->c;
  if (c->session) {
    nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
    if (s->unconsumed) nghttp2_session_consume_connection(c->session, s->unconsumed);
  }
  s->unconsumed = 0;
  drop_pending(s);
  if (s->requested) handler_of(c)->on_close(s, ctx_of(c));
  h2_stream_release(s);
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user) {
  h2_stream *s = stream_of(user, stream_id);
  if (s) stream_closed(s);
  return 0;
}

/* ---- the stream API ------------------------------------------------------------- */

const char *h2_stream_header(const h2_stream *s, const char *name) {
  for (size_t i = 0; i < s->n_headers; i++)
    if (strcmp(s->hbuf.data + s->hoff[i][0], name) == 0) return s->hbuf.data + s->hoff[i][1];
  return NULL;
}

size_t h2_stream_header_count(const h2_stream *s) { return s->n_headers; }

h2_header h2_stream_header_at(const h2_stream *s, size_t i) {
  return (h2_header){s->hbuf.data + s->hoff[i][0], s->hbuf.data + s->hoff[i][1]};
}

void h2_stream_set_user(h2_stream *s, void *user) { s->user = user; }
void *h2_stream_user(const h2_stream *s) { return s->user; }
loop *h2_stream_loop(const h2_stream *s) { return s->c->base.w->loop; }
bool h2_stream_closed(const h2_stream *s) { return s->closed; }

void h2_stream_hold(h2_stream *s) { s->holds++; }

void h2_stream_release(h2_stream *s) {
  if (--s->holds == 0) stream_free(s);
}

/* After an API call from outside the connection's own I/O: send now. */
static void kick(h2c *c) {
  if (!c->in_io && !c->base.closed) pump(c);
}

int h2_respond(h2_stream *s, const h2_header *h, size_t n, bool end_stream) {
  if (s->closed) return -ECANCELED;
  if (s->responded) return -EINVAL;
  nghttp2_nv nv[MAX_HEADERS + 1];
  size_t k = 0;
  nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE};
  for (size_t i = 0; i < n && k < MAX_HEADERS + 1; i++)
    nv[k++] = (nghttp2_nv){(uint8_t *)h[i].name, (uint8_t *)h[i].value, strlen(h[i].name),
                           strlen(h[i].value), NGHTTP2_NV_FLAG_NONE};
  nghttp2_data_provider prd = {.source.ptr = s, .read_callback = on_read_body};
  int rv = nghttp2_submit_response(s->c->session, s->id, nv, k, end_stream ? NULL : &prd);
  if (rv != 0) return -EIO;
  s->responded = true;
  if (end_stream) s->ending = true;
  kick(s->c);
  return 0;
}

int h2_send(h2_stream *s, const struct iovec *iov, size_t n, void (*done)(void *arg), void *arg) {
  if (s->closed || s->ending || !s->responded) {
    if (done) done(arg);
    return s->closed ? -ECANCELED : -EINVAL;
  }
  send_group *g = group_new(s->c);
  if (!g) {
    if (done) done(arg);
    return -ENOMEM;
  }
  g->iov = n <= 4 ? g->inline_iov : malloc(n * sizeof *g->iov);
  if (!g->iov) {
    free(g);
    if (done) done(arg);
    return -ENOMEM;
  }
  memcpy(g->iov, iov, n * sizeof *iov);
  g->n = n;
  for (size_t i = 0; i < n; i++)
    g->unhanded += iov[i].iov_len;
  g->done = done;
  g->arg = arg;
  if (g->unhanded == 0) {
    group_maybe_done(s->c, g);
    return 0;
  }
  if (s->pending_tail)
    s->pending_tail->next = g;
  else
    s->pending = g;
  s->pending_tail = g;
  s->pending_bytes += g->unhanded;
  s->c->pending_bytes += g->unhanded;
  nghttp2_session_resume_data(s->c->session, s->id);
  kick(s->c);
  return 0;
}

int h2_send_trailers(h2_stream *s, const h2_header *h, size_t n) {
  if (s->closed) return -ECANCELED;
  if (s->ending || !s->responded) return -EINVAL;
  for (size_t i = 0; i < n && i < MAX_HEADERS; i++) {
    buf_puts(&s->trailers, h[i].name);
    buf_putc(&s->trailers, 0);
    buf_puts(&s->trailers, h[i].value);
    buf_putc(&s->trailers, 0);
  }
  if (s->trailers.oom) return -ENOMEM;
  s->n_trailers = n < MAX_HEADERS ? n : MAX_HEADERS;
  s->has_trailers = n > 0;
  s->ending = true;
  nghttp2_session_resume_data(s->c->session, s->id);
  kick(s->c);
  return 0;
}

void h2_reset(h2_stream *s, uint32_t code) {
  if (s->closed) return;
  nghttp2_submit_rst_stream(s->c->session, NGHTTP2_FLAG_NONE, s->id, code);
  kick(s->c);
}

void h2_consume(h2_stream *s, size_t n) {
  if (n > s->unconsumed) n = s->unconsumed;
  s->unconsumed -= n;
  if (s->closed || !s->c->session || !n) return;
  nghttp2_session_consume(s->c->session, s->id, n);
  kick(s->c);
}

/* ---- connection I/O -------------------------------------------------------------- */

/* Reading pauses while more than OUT_LIMIT waits for the socket. */
static void set_events(h2c *c) {
  bool read = c->out_bytes <= OUT_LIMIT;
  bool write = !queue_empty(c);
  if (read == c->reading && write == c->writing) return;
  c->reading = read;
  c->writing = write;
  loop_watch_update(c->base.w->loop, &c->base.watch,
                    (read ? LOOP_READ : 0) | (write ? LOOP_WRITE : 0));
}

/* Frames out of nghttp2 into the queue, the queue to the socket, until
 * either runs dry or the client stops taking them. Closes the connection
 * when the session is over. */
static void pump(h2c *c) {
  c->in_io = true;
  for (;;) {
    if (nghttp2_session_send(c->session) != 0) {
      net_conn_close(&c->base);
      return;
    }
    if (!flush(c)) {
      net_conn_close(&c->base);
      return;
    }
    /* More frames may be waiting behind a full queue that has now drained. */
    if (!queue_empty(c) || c->out_bytes > OUT_LIMIT || !nghttp2_session_want_write(c->session))
      break;
  }
  c->in_io = false;
  if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
      queue_empty(c)) {
    net_conn_close(&c->base);
    return;
  }
  set_events(c);
  c->deadline_ms = net_deadline(&c->base, c->base.w->s->cfg.idle_timeout_ms);
}

static void on_event(net_conn *nc, unsigned revents) {
  h2c *c = (h2c *)nc;
  if (revents & (LOOP_READ | LOOP_ERROR) && c->reading) {
    ssize_t n = recv(c->base.watch.fd, c->rbuf, READ_CHUNK, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      net_conn_close(&c->base);
      return;
    }
    if (n > 0) {
      c->in_io = true;
      ssize_t rv = nghttp2_session_mem_recv(c->session, c->rbuf, (size_t)n);
      c->in_io = false;
      if (rv < 0) {
        log_verbose("HTTP/2 connection error: %s", nghttp2_strerror((int)rv));
        /* nghttp2 has queued a GOAWAY for protocol errors: send it, then close. */
        nghttp2_session_send(c->session);
        flush(c);
        net_conn_close(&c->base);
        return;
      }
    }
  }
  if (c->base.closed) return;
  pump(c);
}

static void on_tick(net_conn *nc, uint64_t now) {
  h2c *c = (h2c *)nc;
  if (now < c->deadline_ms) return;
  /* Idle past the timeout with nothing in flight, or a client that takes
   * nothing for that long: the connection goes. */
  if (!c->streams || !queue_empty(c)) net_conn_close(&c->base);
}

static void on_drain(net_conn *nc) {
  h2c *c = (h2c *)nc;
  if (c->goaway) return;
  c->goaway = true;
  nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, NULL,
                        0);
  pump(c);
}

/* The socket is gone: every open stream ends now. */
static void on_close(net_conn *nc) {
  h2c *c = (h2c *)nc;
  for (h2_stream *s = c->streams; s;) {
    if (s->closed) {
      s = s->next;
      continue;
    }
    s->holds++; /* so that stream_closed's release cannot free it here */
    stream_closed(s);
    h2_stream *next = s->next;
    h2_stream_release(s);
    s = next;
  }
  nghttp2_session_del(c->session);
  c->session = NULL;
  while (!queue_empty(c))
    seg_done(c, &c->segs[c->head_seg++]);
  c->head_seg = c->n_segs = 0;
  c->out_bytes = 0;
}

static void conn_free(net_conn *nc) {
  h2c *c = (h2c *)nc;
  while (c->spare_streams) {
    h2_stream *s = c->spare_streams;
    c->spare_streams = s->next;
    buf_free(&s->hbuf);
    buf_free(&s->trailers);
    free(s);
  }
  while (c->spare_groups) {
    send_group *g = c->spare_groups;
    c->spare_groups = g->next;
    free(g);
  }
  free(c->segs);
  buf_free(&c->stage);
  free(c->rbuf);
  free(c);
}

static const conn_ops h2_ops = {
    .on_event = on_event,
    .on_tick = on_tick,
    .on_drain = on_drain,
    .on_close = on_close,
    .free = conn_free,
};

net_conn *h2_accept(net_listener *lis, int fd) {
  h2c *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->rbuf = malloc(READ_CHUNK);
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt;
  if (!c->rbuf || nghttp2_session_callbacks_new(&cb) != 0) {
    free(c->rbuf);
    free(c);
    return NULL;
  }
  nghttp2_session_callbacks_set_send_callback(cb, on_send);
  nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = nghttp2_session_server_new2(&c->session, cb, c, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    free(c->rbuf);
    free(c);
    return NULL;
  }
  /* Windows as large as a message, so that one stream's message fits; the
   * connection's, two messages, which bounds what one client can make the
   * server buffer before it processes anything. */
  size_t max = lis->w->s->cfg.h2_max_message;
  int32_t stream_window = max + 1024 < INT32_MAX ? (int32_t)(max + 1024) : INT32_MAX;
  int32_t conn_window = 2 * max + 2048 < INT32_MAX ? (int32_t)(2 * max + 2048) : INT32_MAX;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 20},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, conn_window);
  if (net_conn_start(&c->base, lis, &h2_ops, fd) < 0) {
    nghttp2_session_del(c->session);
    free(c->rbuf);
    free(c);
    return NULL;
  }
  c->reading = true;
  pump(c); /* our SETTINGS */
  return &c->base;
}
