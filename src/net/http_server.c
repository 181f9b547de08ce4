/* net/http_server.c: the worker that owns a network thread's listeners and
 * connections, whatever their protocol: accepting (with the connection cap),
 * the tick that drives timeouts, closing and freeing connections, and the
 * graceful drain. The protocols live in http1_conn.c and h2_conn.c. */
#include "net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/conn.h"

#define ACCEPT_BATCH 64

/* ---- server and worker ---------------------------------------------------- */

http_server *http_server_create(const http_server_config *cfg) {
  http_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cfg = *cfg;
  atomic_init(&s->connections, 0);
  return s;
}

void http_server_destroy(http_server *s) { free(s); }

const http_server_config *http_worker_config(const http_worker *w) { return &w->s->cfg; }

static void on_tick(loop *l, void *arg) {
  http_worker *w = arg;
  uint64_t now = loop_now_ms(l);
  for (net_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    c->ops->on_tick(c, now);
  }
}

http_worker *http_worker_create(http_server *s, loop *l) {
  http_worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->s = s;
  w->loop = l;
  loop_set_tick(l, NET_TICK_MS, on_tick, w);
  return w;
}

unsigned http_worker_connections(const http_worker *w) { return w->n_conns; }

static void close_listeners(http_worker *w) {
  for (int i = 0; i < w->n_listeners; i++) {
    loop_watch_stop(w->loop, &w->listeners[i].watch);
    close(w->listeners[i].watch.fd);
  }
  w->n_listeners = 0;
}

void http_worker_destroy(http_worker *w) {
  if (!w) return;
  close_listeners(w);
  while (w->conns) {
    net_conn *c = w->conns;
    c->holds = 0; /* at exit nothing can answer any more */
    net_conn_close(c);
  }
  free(w);
}

/* ---- connections ---------------------------------------------------------- */

static void on_conn_event(loop *l, loop_watch *watch, unsigned revents) {
  net_conn *c = container_of(watch, net_conn, watch);
  if (!c->closed) c->ops->on_event(c, revents);
}

uint64_t net_deadline(const net_conn *c, unsigned ms) { return loop_now_ms(c->w->loop) + ms; }

int net_conn_start(net_conn *c, net_listener *lis, const conn_ops *ops, int fd) {
  http_worker *w = lis->w;
  c->w = w;
  c->lis = lis;
  c->ops = ops;
  int rc = loop_watch_start(w->loop, &c->watch, fd, LOOP_READ, on_conn_event);
  if (rc < 0) return rc;
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->n_conns++;
  return 0;
}

static void check_drained(http_worker *w) {
  if (w->draining && w->n_conns == 0 && w->n_held == 0 && w->drained) {
    void (*fn)(void *) = w->drained;
    w->drained = NULL;
    fn(w->drained_arg);
  }
}

static void conn_free(void *arg) {
  net_conn *c = arg;
  c->ops->free(c);
}

void net_conn_close(net_conn *c) {
  if (c->closed) return;
  c->closed = true;
  http_worker *w = c->w;
  loop_watch_stop(w->loop, &c->watch);
  close(c->watch.fd);
  c->watch.fd = -1;
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  w->n_conns--;
  atomic_fetch_sub(&w->s->connections, 1);
  c->ops->on_close(c);
  if (c->holds > 0)
    w->n_held++;
  else
    loop_defer(w->loop, conn_free, c);
  check_drained(w);
}

void net_conn_hold(net_conn *c) { c->holds++; }

void net_conn_release(net_conn *c) {
  if (--c->holds > 0 || !c->closed) return;
  http_worker *w = c->w;
  w->n_held--;
  loop_defer(w->loop, conn_free, c);
  check_drained(w);
}

/* ---- accept ---------------------------------------------------------------- */

static void on_accept(loop *l, loop_watch *watch, unsigned revents) {
  net_listener *lis = container_of(watch, net_listener, watch);
  http_worker *w = lis->w;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int fd = accept4(watch->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        log_warn("accept: %s", strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (atomic_fetch_add(&w->s->connections, 1) >= w->s->cfg.max_connections) {
      /* An HTTP/1.1 answer; an HTTP/2 client sees the connection close. */
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                 "application/json\r\nContent-Length: 36\r\nConnection: "
                                 "close\r\n\r\n{\"error\":\"too many open connections\"}";
      if (lis->accept == http1_accept) {
        ssize_t r = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
        (void)r;
      }
      close(fd);
      atomic_fetch_sub(&w->s->connections, 1);
      continue;
    }
    if (!lis->accept(lis, fd)) {
      close(fd);
      atomic_fetch_sub(&w->s->connections, 1);
    }
  }
}

static int listen_on(http_worker *w, const char *host, int port,
                     net_conn *(*accept_fn)(net_listener *, int), const void *handler, void *ctx,
                     err *e) {
  if (w->n_listeners == NET_MAX_LISTENERS) return err_set(e, -ENOSPC, "too many listeners");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
    return err_set(e, -EINVAL, "bad listen address '%s'", host);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return err_set(e, -errno, "socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1024) < 0) {
    int rc = -errno;
    close(fd);
    return err_set(e, rc, "listen on %s:%d: %s", host, port, strerror(-rc));
  }
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &len);
  net_listener *lis = &w->listeners[w->n_listeners];
  lis->w = w;
  lis->accept = accept_fn;
  lis->handler = handler;
  lis->ctx = ctx;
  int rc = loop_watch_start(w->loop, &lis->watch, fd, LOOP_READ, on_accept);
  if (rc < 0) {
    close(fd);
    return err_set(e, rc, "epoll: %s", strerror(-rc));
  }
  w->n_listeners++;
  return ntohs(addr.sin_port);
}

int http_worker_listen(http_worker *w, const char *host, int port, http_handler_fn *handler,
                       void *ctx, err *e) {
  return listen_on(w, host, port, http1_accept, (const void *)handler, ctx, e);
}

int http_worker_listen_h2(http_worker *w, const char *host, int port, const h2_handler *handler,
                          void *ctx, err *e) {
  return listen_on(w, host, port, h2_accept, handler, ctx, e);
}

/* ---- drain ------------------------------------------------------------------ */

void http_worker_drain(http_worker *w, void (*drained)(void *arg), void *arg) {
  w->draining = true;
  w->drained = drained;
  w->drained_arg = arg;
  close_listeners(w);
  for (net_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    c->ops->on_drain(c);
  }
  check_drained(w);
}

bool http_worker_draining(const http_worker *w) { return w->draining; }
