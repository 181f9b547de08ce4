/* net/loop.h: the event loop, one per network thread: epoll readiness for
 * file descriptors, a periodic tick for timeouts, and a queue through which
 * other threads hand work to the loop's thread.
 *
 * Contract: every callback runs on the loop's own thread. Objects watched by
 * the loop are freed by their owner in the owner's close path, and the owner
 * defers the free to loop_defer so that an event later in the same batch
 * never reaches freed memory. */
#ifndef INFERD_NET_LOOP_H
#define INFERD_NET_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loop loop;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

/* A file descriptor the loop watches. Embed it in the owning object and use
 * container_of in the callback. `revents` holds LOOP_READ, LOOP_WRITE, and
 * LOOP_ERROR for hang-ups and errors. */
enum { LOOP_ERROR = 4 };
typedef struct loop_watch loop_watch;
typedef void loop_watch_fn(loop *l, loop_watch *w, unsigned revents);
struct loop_watch {
  int fd;
  unsigned events; /* what the loop is asked for now */
  loop_watch_fn *fn;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

loop *loop_create(void);
void loop_destroy(loop *l);

/* Once idle, the loop polls for the next event before it sleeps in
 * epoll_wait, yielding the CPU to other threads between polls, for a window
 * that adapts to the gaps between events: up to `us` microseconds while
 * events come closer together than that, none while they do not (0, the
 * loop's default: it never polls). */
void loop_set_busy_poll(loop *l, unsigned us);

/* Starts, changes or stops watching w->fd for `events`. */
int loop_watch_start(loop *l, loop_watch *w, int fd, unsigned events, loop_watch_fn *fn);
int loop_watch_update(loop *l, loop_watch *w, unsigned events);
void loop_watch_stop(loop *l, loop_watch *w);

/* Calls fn(arg) every interval_ms (roughly; from the loop's thread). */
void loop_set_tick(loop *l, unsigned interval_ms, void (*fn)(loop *l, void *arg), void *arg);

/* Runs fn(arg) on the loop's thread after the current batch of events, and
 * before the loop waits again: the place to free what a callback closed. */
void loop_defer(loop *l, void (*fn)(void *arg), void *arg);

/* Thread-safe: runs fn(arg) on the loop's thread soon. Returns -ENOMEM when
 * it cannot queue (then fn is never called). */
int loop_post(loop *l, void (*fn)(void *arg), void *arg);

/* The same without allocating: the caller provides the node, which must
 * stay valid until fn has run. Cannot fail. */
typedef struct loop_call {
  struct loop_call *next;
  void (*fn)(void *arg);
  void *arg;
  bool owned; /* freed after the call (loop_post's own nodes) */
} loop_call;
void loop_post_call(loop *l, loop_call *c);

/* The same, but the loop is only woken when this thread calls
 * loop_wake_held: a thread that answers a burst (a batch's requests) wakes
 * each loop once, not once per answer, so that a loop sharing its core does
 * not preempt the poster after the first. */
void loop_post_call_held(loop *l, loop_call *c);
void loop_wake_held(void);

/* Runs until loop_stop. */
void loop_run(loop *l);
/* Thread-safe. */
void loop_stop(loop *l);

/* Milliseconds on the monotonic clock, as of the loop's last wake-up. */
uint64_t loop_now_ms(const loop *l);

#endif
