/* net/conn.h: what the protocol connections (http1_conn.c, h2_conn.c) share
 * with the worker that accepts them (http_server.c). Internal to net/.
 *
 * A connection embeds a net_conn. The worker keeps every open connection on
 * a list, calls the protocol's on_tick every tick (timeouts) and on_drain
 * when the server stops, and counts connections against the cap. A
 * connection closes its socket with net_conn_close; its memory goes once
 * nothing holds it (net_conn_hold/release: a handler working on one of its
 * requests on another thread), after the current batch of events. */
#ifndef INFERD_NET_CONN_H
#define INFERD_NET_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/http_server.h"
#include "net/loop.h"

#define NET_MAX_LISTENERS 4
#define NET_TICK_MS       100

typedef struct net_conn net_conn;
typedef struct net_listener net_listener;

typedef struct conn_ops {
  void (*on_event)(net_conn *c, unsigned revents);
  /* Deadlines: called every tick while the connection is open. */
  void (*on_tick)(net_conn *c, uint64_t now_ms);
  /* The server stops: finish what is in flight, close when idle. */
  void (*on_drain)(net_conn *c);
  /* The socket was closed: cancel what is in flight. */
  void (*on_close)(net_conn *c);
  /* Frees the connection (closed, nothing holds it). */
  void (*free)(net_conn *c);
} conn_ops;

struct net_listener {
  loop_watch watch;
  http_worker *w;
  /* Makes the protocol's connection for an accepted socket, or NULL. */
  net_conn *(*accept)(net_listener *lis, int fd);
  const void *handler; /* the protocol's handler */
  void *ctx;
};

struct net_conn {
  loop_watch watch;
  http_worker *w;
  net_listener *lis;
  const conn_ops *ops;
  net_conn *prev, *next; /* the worker's open connections */
  bool closed;
  int holds;
};

struct http_server {
  http_server_config cfg;
  atomic_uint connections;
};

struct http_worker {
  http_server *s;
  loop *loop;
  net_listener listeners[NET_MAX_LISTENERS];
  int n_listeners;
  net_conn *conns;
  unsigned n_conns;
  unsigned n_held; /* closed, still held */
  bool draining;
  void (*drained)(void *arg);
  void *drained_arg;
};

/* Registers c (socket fd, watched for reading) with the worker. */
int net_conn_start(net_conn *c, net_listener *lis, const conn_ops *ops, int fd);
/* Closes the socket now (once); frees later. */
void net_conn_close(net_conn *c);
void net_conn_hold(net_conn *c);
void net_conn_release(net_conn *c);

/* Deadline helper: now + ms on the worker's clock. */
uint64_t net_deadline(const net_conn *c, unsigned ms);

/* The accept functions of each protocol. */
net_conn *http1_accept(net_listener *lis, int fd);
net_conn *h2_accept(net_listener *lis, int fd);

#endif
