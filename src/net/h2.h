/* net/h2.h: HTTP/2 streams as the protocols above them (gRPC) see them:
 * the request's headers, and the response: headers, body, trailers.
 *
 * Everything here runs on the stream's worker thread. Body data given to
 * h2_send is not copied: it is referenced until written to the socket, and
 * its done(arg) is called then (or when the stream dies first). A handler
 * that keeps a stream past on_close (its request is being computed) holds
 * it; sending on a closed stream does nothing but release the data. */
#ifndef INFERD_NET_H2_H
#define INFERD_NET_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/http_server.h"
#include "net/loop.h"

typedef struct h2_header {
  const char *name; /* lower case */
  const char *value;
} h2_header;

/* A request header's value (name in lower case), or NULL. Pseudo-headers
 * are there too (":path", ":method"). */
const char *h2_stream_header(const h2_stream *s, const char *name);
/* All request headers, for metadata: n and the i-th. */
size_t h2_stream_header_count(const h2_stream *s);
h2_header h2_stream_header_at(const h2_stream *s, size_t i);

void h2_stream_set_user(h2_stream *s, void *user);
void *h2_stream_user(const h2_stream *s);
loop *h2_stream_loop(const h2_stream *s);
/* The stream is over (reset by the client, or the connection closed). */
bool h2_stream_closed(const h2_stream *s);

void h2_stream_hold(h2_stream *s);
void h2_stream_release(h2_stream *s);

/* Sends the response headers (":status" is added: 200). With end_stream
 * they are the whole response (gRPC's Trailers-Only). */
int h2_respond(h2_stream *s, const h2_header *h, size_t n, bool end_stream);
/* Queues body bytes; done(arg) once they are written. */
int h2_send(h2_stream *s, const struct iovec *iov, size_t n, void (*done)(void *arg), void *arg);
/* Ends the response with trailers after the queued body. */
int h2_send_trailers(h2_stream *s, const h2_header *h, size_t n);
/* Ends the stream with RST_STREAM (an HTTP/2 error code). */
void h2_reset(h2_stream *s, uint32_t code);
/* Tells flow control that n body bytes were taken: the client may send
 * that much more. Body bytes not consumed stay counted against the stream's
 * and the connection's windows, which bounds what a client can make the
 * server buffer. */
void h2_consume(h2_stream *s, size_t n);

#endif
