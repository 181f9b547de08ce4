/* net/loop.c: epoll event loop with a tick, deferred calls and a
 * cross-thread queue woken through an eventfd. */
#include "net/loop.h"

#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef loop_call call;

struct loop {
  int epfd;
  bool stop;
  uint64_t now_ms;

  unsigned tick_ms;
  uint64_t next_tick_ms;
  void (*tick_fn)(loop *l, void *arg);
  void *tick_arg;

  /* polling before sleeping (wait_events): for poll_ns after the loop went
   * idle, a window that adapts between 0 and busy_poll_ns */
  uint64_t busy_poll_ns;
  uint64_t poll_ns;

  /* deferred calls, run after each batch (loop thread only) */
  call *deferred;

  /* posted calls from other threads */
  loop_watch wake;
  pthread_mutex_t post_lock;
  call *posted_head, *posted_tail;
  bool wake_pending; /* an eventfd write is outstanding; under post_lock */
};

static void update_now(loop *l) { l->now_ms = clock_ns() / 1000000u; }

uint64_t loop_now_ms(const loop *l) { return l->now_ms; }

static uint32_t to_epoll(unsigned events) {
  return (events & LOOP_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & LOOP_WRITE ? EPOLLOUT : 0);
}

int loop_watch_start(loop *l, loop_watch *w, int fd, unsigned events, loop_watch_fn *fn) {
  w->fd = fd;
  w->events = events;
  w->fn = fn;
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = w};
  return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int loop_watch_update(loop *l, loop_watch *w, unsigned events) {
  if (w->events == events) return 0;
  w->events = events;
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = w};
  return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void loop_watch_stop(loop *l, loop_watch *w) {
  if (w->fd >= 0) epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

/* ---- cross-thread queue ------------------------------------------------- */

static void run_calls(call *c) {
  while (c) {
    call *next = c->next;
    bool owned = c->owned;
    c->fn(c->arg);
    if (owned) free(c);
    c = next;
  }
}

static void on_wake(loop *l, loop_watch *w, unsigned revents) {
  uint64_t n;
  ssize_t r = read(w->fd, &n, sizeof n);
  (void)r;
  pthread_mutex_lock(&l->post_lock);
  call *c = l->posted_head;
  l->posted_head = l->posted_tail = NULL;
  l->wake_pending = false;
  pthread_mutex_unlock(&l->post_lock);
  run_calls(c);
}

int loop_post(loop *l, void (*fn)(void *arg), void *arg) {
  call *c = malloc(sizeof *c);
  if (!c) return -ENOMEM;
  c->fn = fn;
  c->arg = arg;
  c->owned = true;
  loop_post_call(l, c);
  return 0;
}

/* Queues c; whether the loop needs waking (no wake-up is outstanding). */
static bool enqueue_call(loop *l, call *c) {
  c->next = NULL;
  pthread_mutex_lock(&l->post_lock);
  if (l->posted_tail)
    l->posted_tail->next = c;
  else
    l->posted_head = c;
  l->posted_tail = c;
  bool wake = !l->wake_pending;
  l->wake_pending = true;
  pthread_mutex_unlock(&l->post_lock);
  return wake;
}

static void wake(loop *l) {
  uint64_t one = 1;
  ssize_t r = write(l->wake.fd, &one, sizeof one);
  (void)r;
}

void loop_post_call(loop *l, loop_call *c) {
  if (enqueue_call(l, c)) wake(l);
}

/* The loops this thread owes a wake-up (loop_post_call_held). */
#define MAX_HELD 16
static _Thread_local loop *held[MAX_HELD];
static _Thread_local int n_held;

void loop_post_call_held(loop *l, loop_call *c) {
  if (!enqueue_call(l, c)) return; /* a wake-up is already due */
  if (n_held == MAX_HELD) {
    wake(l);
    return;
  }
  held[n_held++] = l;
}

void loop_wake_held(void) {
  for (int i = 0; i < n_held; i++)
    wake(held[i]);
  n_held = 0;
}

static void set_stop(void *arg) { ((loop *)arg)->stop = true; }

void loop_stop(loop *l) {
  if (loop_post(l, set_stop, l) < 0) l->stop = true; /* the loop wakes at its next tick */
}

/* ---- life ---------------------------------------------------------------- */

loop *loop_create(void) {
  loop *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (l->epfd < 0 || efd < 0) goto fail;
  pthread_mutex_init(&l->post_lock, NULL);
  if (loop_watch_start(l, &l->wake, efd, LOOP_READ, on_wake) < 0) goto fail;
  update_now(l);
  return l;
fail:
  if (l->epfd >= 0) close(l->epfd);
  if (efd >= 0) close(efd);
  free(l);
  return NULL;
}

void loop_destroy(loop *l) {
  if (!l) return;
  run_calls(l->deferred);
  run_calls(l->posted_head);
  close(l->wake.fd);
  close(l->epfd);
  pthread_mutex_destroy(&l->post_lock);
  free(l);
}

void loop_set_tick(loop *l, unsigned interval_ms, void (*fn)(loop *l, void *arg), void *arg) {
  l->tick_ms = interval_ms;
  l->tick_fn = fn;
  l->tick_arg = arg;
  l->next_tick_ms = l->now_ms + interval_ms;
}

void loop_set_busy_poll(loop *l, unsigned us) {
  l->busy_poll_ns = (uint64_t)us * 1000u;
  l->poll_ns = 0;
}

/* The window's first size when it grows from 0. */
#define POLL_START_NS 10000u

/* Widens the polling window after a sleep of slept_ns that ended with an
 * event within busy_poll_ns (polling would have caught it without the
 * wake-up); narrows it after a longer one (polling would have been spent
 * for nothing). KVM's halt polling adapts its window the same way. */
static void adapt_poll(loop *l, uint64_t slept_ns, bool event) {
  if (event && slept_ns <= l->busy_poll_ns) {
    uint64_t w = l->poll_ns ? l->poll_ns * 2 : POLL_START_NS;
    l->poll_ns = w < l->busy_poll_ns ? w : l->busy_poll_ns;
  } else if (slept_ns > l->busy_poll_ns) {
    l->poll_ns = l->poll_ns / 2 >= POLL_START_NS ? l->poll_ns / 2 : 0;
  }
}

/* The next events, like epoll_wait with timeout_ms. Once the loop is idle
 * it first asks without sleeping, for up to poll_ns, yielding the CPU to
 * any other thread of its core between asks: a thread woken from sleep by a
 * packet pays the scheduler's wake-up (tens of microseconds on a virtual
 * machine); one that polls does not. While requests come closer together
 * than busy_poll_ns, the window grows to it; while they do not, it shrinks
 * to 0 and the loop costs nothing while idle. */
static int wait_events(loop *l, struct epoll_event *events, int timeout_ms) {
  if (!l->busy_poll_ns) return epoll_wait(l->epfd, events, MAX_EVENTS, timeout_ms);
  uint64_t idle_since = clock_ns(), now = idle_since;
  while (now - idle_since < l->poll_ns) {
    int n = epoll_wait(l->epfd, events, MAX_EVENTS, 0);
    if (n != 0) return n;
    if (timeout_ms == 0) return 0;
    sched_yield();
    now = clock_ns();
  }
  int n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout_ms);
  adapt_poll(l, clock_ns() - idle_since, n > 0);
  return n;
}

void loop_defer(loop *l, void (*fn)(void *arg), void *arg) {
  call *c = malloc(sizeof *c);
  if (!c) {
    /* Without memory to defer, the safe choice is to leak rather than free
     * under a pending event. */
    return;
  }
  c->fn = fn;
  c->arg = arg;
  c->owned = true;
  c->next = l->deferred;
  l->deferred = c;
}

void loop_run(loop *l) {
  struct epoll_event events[MAX_EVENTS];
  while (!l->stop) {
    int timeout = -1;
    if (l->tick_fn) timeout = l->next_tick_ms > l->now_ms ? (int)(l->next_tick_ms - l->now_ms) : 0;
    int n = wait_events(l, events, timeout);
    update_now(l);
    for (int i = 0; i < n; i++) {
      loop_watch *w = events[i].data.ptr;
      uint32_t e = events[i].events;
      unsigned revents = (e & (EPOLLIN | EPOLLRDHUP) ? LOOP_READ : 0) |
                         (e & EPOLLOUT ? LOOP_WRITE : 0) |
                         (e & (EPOLLERR | EPOLLHUP) ? LOOP_ERROR : 0);
      w->fn(l, w, revents);
    }
    if (l->deferred) {
      call *c = l->deferred;
      l->deferred = NULL;
      run_calls(c);
    }
    if (l->tick_fn && l->now_ms >= l->next_tick_ms) {
      l->next_tick_ms = l->now_ms + l->tick_ms;
      l->tick_fn(l, l->tick_arg);
    }
  }
}
