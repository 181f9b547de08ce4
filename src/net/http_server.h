/* net/http_server.h: HTTP/1.1 server connections on an event loop: accept,
 * read and frame requests (Content-Length, chunked, Expect: 100-continue,
 * keep-alive, pipelining), enforce limits and timeouts, write responses.
 *
 * One http_worker per network thread owns that thread's listeners and
 * connections; the http_server they share holds the limits and the
 * connection count. A request goes to the handler of the listener that
 * accepted it, on the worker's thread. The handler answers at once with
 * http_respond, or later, from the same thread (another thread hands the
 * answer over with loop_post). One request per connection is handled at a
 * time; pipelined requests wait in the buffer in order. */
#ifndef INFERD_NET_HTTP_SERVER_H
#define INFERD_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/http1.h"
#include "net/loop.h"

typedef struct http_server_config {
  size_t h2_max_message;      /* HTTP/2: largest request body per stream */
  size_t max_head;            /* bytes of request line + headers; over: 431 */
  size_t max_body;            /* bytes of body; over: 413 */
  unsigned idle_timeout_ms;   /* keep-alive connection without a request */
  unsigned header_timeout_ms; /* first byte to end of head; over: 408 */
  unsigned body_timeout_ms;   /* end of head to end of body; over: 408 */
  unsigned write_timeout_ms;  /* a response not taken by the client */
  unsigned max_connections;   /* over: 503 and close */
} http_server_config;

typedef struct http_server http_server;
typedef struct http_worker http_worker;
typedef struct http_request http_request;

typedef void http_handler_fn(http_request *req, void *ctx);

struct http_request {
  http_head head;
  char *body; /* the whole body, decoded, in the connection's buffer */
  size_t body_len;
  loop *loop;

  /* The response, filled by the handler before http_respond. */
  int status;               /* default 200 */
  const char *content_type; /* NULL: none */
  buf out;                  /* body, kept between requests of a connection */
  buf headers;              /* extra header lines, each ending in \r\n */
  size_t n_blobs;           /* buffers written after `out`, not copied */
  struct iovec *blobs;

  /* Called once the response is written or the connection died, to release
   * what the response points to. */
  void (*on_done)(http_request *req, void *arg);
  void *done_arg;

  /* The client closed the connection while the request was handled; the
   * handler may give up, and must still call http_respond. on_cancel (when
   * set) hears of it at once, with done_arg. */
  bool cancelled;
  void (*on_cancel)(http_request *req, void *arg);
};

http_server *http_server_create(const http_server_config *cfg);
void http_server_destroy(http_server *s);

http_worker *http_worker_create(http_server *s, loop *l);
/* Closes every connection and listener at once (after a drain, nothing is
 * left to close). */
void http_worker_destroy(http_worker *w);

/* Listens on host:port (SO_REUSEPORT, so that each worker listens on the
 * same port); port 0 picks a free one. Returns the bound port or a negative
 * errno. */
int http_worker_listen(http_worker *w, const char *host, int port, http_handler_fn *handler,
                       void *ctx, err *e);

/* ---- HTTP/2 ---------------------------------------------------------------- */

/* One HTTP/2 stream: a request and its response (net/h2.h has the rest). */
typedef struct h2_stream h2_stream;

/* What a protocol over HTTP/2 (gRPC) is told about its streams, on the
 * worker's thread. */
typedef struct h2_handler {
  /* The request's headers are complete. */
  void (*on_request)(h2_stream *s, void *ctx);
  /* Request body bytes, in order. */
  void (*on_data)(h2_stream *s, const uint8_t *data, size_t len, void *ctx);
  /* The client has sent all it will (END_STREAM). */
  void (*on_end)(h2_stream *s, void *ctx);
  /* The stream is over (answered, reset, or the connection is gone):
   * nothing more is sent on it. The stream's memory stays while the
   * handler holds it (h2_stream_hold). */
  void (*on_close)(h2_stream *s, void *ctx);
} h2_handler;

/* Listens for HTTP/2 with prior knowledge (how gRPC clients connect). */
int http_worker_listen_h2(http_worker *w, const char *host, int port, const h2_handler *handler,
                          void *ctx, err *e);

/* The limits the worker's server was made with. */
const http_server_config *http_worker_config(const http_worker *w);
bool http_worker_draining(const http_worker *w);

/* Graceful stop (on the worker's thread): closes the listeners and idle
 * connections, lets requests in flight finish and answer with
 * `Connection: close`, and calls drained(arg) when no connection is left. */
void http_worker_drain(http_worker *w, void (*drained)(void *arg), void *arg);

/* Connections open on this worker. */
unsigned http_worker_connections(const http_worker *w);

/* Sends req's response. Loop thread only. */
void http_respond(http_request *req);

/* Sets status and a JSON body {"error": msg}. */
void http_set_error(http_request *req, int status, const char *msg);

/* Adds "Name: value\r\n" to the response headers. */
void http_add_header(http_request *req, const char *name, const char *value);

/* Makes room for n blobs; false when out of memory. */
bool http_reserve_blobs(http_request *req, size_t n);

#endif
