/* bench/h2blast.c: a closed-loop HTTP/2 load generator for unary gRPC calls,
 * cheap enough on its one core that the server, not the client, is what a
 * run measures (h2load decodes every response's headers with nghttp2, as
 * costly per request as the server it loads).
 *
 *   h2blast [-c CONNS] [-m STREAMS] [-D SECONDS] [-W WARMUP] -d BODY
 *           [-H 'name: value']... HOST:PORT PATH
 *
 * Each of CONNS connections keeps STREAMS requests in flight: a POST of
 * PATH whose body is the file BODY (a gRPC length-prefixed message), sent
 * again as soon as an answer ends. The request's header block is encoded
 * once (HPACK literals, no dynamic table) and every request is the same
 * bytes. Answers are not HPACK-decoded: a stream that ends with DATA before
 * its trailers counts as answered; one that ends without DATA
 * (Trailers-Only, which gRPC uses for errors) or is reset counts as failed.
 * Check the answer itself once beforehand (bench/grpc_request.py).
 *
 * Prints one JSON line: requests answered and failed in the measured
 * SECONDS (after WARMUP), req/s, and latency percentiles in microseconds.
 * Exits 1 when the server cannot be reached or closes a connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define READ_SIZE   (256 << 10)
#define BIG_WINDOW  (1 << 30)

enum { F_DATA = 0, F_HEADERS = 1, F_RST = 3, F_SETTINGS = 4, F_PING = 6, F_GOAWAY = 7 };
enum { F_WINDOW = 8, F_CONTINUATION = 9 };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4, FL_PADDED = 8, FL_PRIORITY = 0x20 };

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    if (!(b->p = realloc(b->p, b->cap))) {
      perror("h2blast");
      exit(1);
    }
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void frame_head(bytes *b, size_t len, int type, int flags, uint32_t stream) {
  uint8_t h[9] = {(uint8_t)(len >> 16),    (uint8_t)(len >> 8),    (uint8_t)len,
                  (uint8_t)type,           (uint8_t)flags,         (uint8_t)(stream >> 24),
                  (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
  put(b, h, 9);
}

/* HPACK integer with an n-bit prefix whose high bits are `first`. */
static void hpack_int(bytes *b, uint8_t first, int n, size_t v) {
  size_t max = ((size_t)1 << n) - 1;
  uint8_t c;
  if (v < max) {
    c = (uint8_t)(first | v);
    put(b, &c, 1);
    return;
  }
  c = (uint8_t)(first | max);
  put(b, &c, 1);
  for (v -= max; v >= 128; v >>= 7) {
    c = (uint8_t)(v % 128 + 128);
    put(b, &c, 1);
  }
  c = (uint8_t)v;
  put(b, &c, 1);
}

/* A literal header field without indexing, new name, no Huffman. */
static void hpack_literal(bytes *b, const char *name, const char *value) {
  hpack_int(b, 0x00, 4, 0);
  hpack_int(b, 0x00, 7, strlen(name));
  put(b, name, strlen(name));
  hpack_int(b, 0x00, 7, strlen(value));
  put(b, value, strlen(value));
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- the run --------------------------------------------------------------- */

typedef struct stream {
  uint32_t id; /* 0: free */
  uint64_t start_ns;
  bool data;       /* a DATA frame came */
  bool end_header; /* END_STREAM seen on a HEADERS whose block continues */
} stream;

typedef struct conn {
  int fd;
  uint32_t next_id;
  int64_t send_window; /* the connection's, for our DATA */
  int64_t unacked;     /* DATA bytes received and not yet given back */
  stream *streams;
  int in_flight, want;
  bytes out, in;
} conn;

static struct {
  bytes header_block; /* HPACK, the same for every request */
  bytes body;
  uint64_t measure_from, measure_until;
  uint64_t ok, failed;
  uint32_t *lat_us;
  size_t n_lat, cap_lat;
} run;

static void record(uint64_t start, bool ok) {
  uint64_t t = now_ns();
  if (start < run.measure_from || t > run.measure_until) return;
  if (!ok) {
    run.failed++;
    return;
  }
  run.ok++;
  if (run.n_lat == run.cap_lat) {
    run.cap_lat = run.cap_lat ? run.cap_lat * 2 : 1 << 16;
    if (!(run.lat_us = realloc(run.lat_us, run.cap_lat * sizeof *run.lat_us))) exit(1);
  }
  run.lat_us[run.n_lat++] = (uint32_t)((t - start) / 1000);
}

static void start_request(conn *c) {
  if (c->send_window < (int64_t)run.body.len) return; /* wait for WINDOW_UPDATE */
  stream *s = NULL;
  for (int i = 0; i < c->want && !s; i++)
    if (!c->streams[i].id) s = &c->streams[i];
  if (!s) return;
  uint32_t id = c->next_id;
  c->next_id += 2;
  *s = (stream){.id = id, .start_ns = now_ns()};
  frame_head(&c->out, run.header_block.len, F_HEADERS, FL_END_HEADERS, id);
  put(&c->out, run.header_block.p, run.header_block.len);
  size_t off = 0;
  do { /* DATA frames of at most 16 KiB, the default frame size */
    size_t n = run.body.len - off > 16384 ? 16384 : run.body.len - off;
    frame_head(&c->out, n, F_DATA, off + n == run.body.len ? FL_END_STREAM : 0, id);
    put(&c->out, run.body.p + off, n);
    off += n;
  } while (off < run.body.len);
  c->send_window -= (int64_t)run.body.len;
  c->in_flight++;
}

static stream *find(conn *c, uint32_t id) {
  for (int i = 0; i < c->want; i++)
    if (c->streams[i].id == id) return &c->streams[i];
  return NULL;
}

static void end_stream(conn *c, stream *s, bool ok) {
  record(s->start_ns, ok);
  s->id = 0;
  c->in_flight--;
}

static void give_back(conn *c, size_t n) {
  c->unacked += (int64_t)n;
  if (c->unacked < (1 << 20)) return;
  uint8_t inc[4] = {(uint8_t)(c->unacked >> 24), (uint8_t)(c->unacked >> 16),
                    (uint8_t)(c->unacked >> 8), (uint8_t)c->unacked};
  frame_head(&c->out, 4, F_WINDOW, 0, 0);
  put(&c->out, inc, 4);
  c->unacked = 0;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One frame from the server; false when the connection must end. */
static bool on_frame(conn *c, int type, int flags, uint32_t id, const uint8_t *p, size_t len) {
  stream *s = id ? find(c, id) : NULL;
  switch (type) {
  case F_DATA:
    give_back(c, len); /* streams have a 1 GiB window: only the connection's is given back */
    if (s && len > (flags & FL_PADDED ? 1u : 0u)) s->data = true;
    if (s && (flags & FL_END_STREAM)) end_stream(c, s, s->data);
    break;
  case F_HEADERS:
  case F_CONTINUATION:
    if (!s) break;
    if (type == F_HEADERS && (flags & FL_END_STREAM)) s->end_header = true;
    if ((flags & FL_END_HEADERS) && s->end_header) end_stream(c, s, s->data);
    break;
  case F_RST:
    if (s) end_stream(c, s, false);
    break;
  case F_SETTINGS:
    if (!(flags & FL_ACK)) frame_head(&c->out, 0, F_SETTINGS, FL_ACK, 0);
    break;
  case F_PING:
    if (!(flags & FL_ACK) && len == 8) {
      frame_head(&c->out, 8, F_PING, FL_ACK, 0);
      put(&c->out, p, 8);
    }
    break;
  case F_WINDOW:
    if (!id && len == 4) c->send_window += be32(p) & 0x7fffffff;
    break;
  case F_GOAWAY: fprintf(stderr, "h2blast: the server sent GOAWAY\n"); return false;
  default: break;
  }
  return true;
}

/* Parses whole frames from c->in; false when the connection must end. */
static bool on_input(conn *c) {
  size_t off = 0;
  while (c->in.len - off >= 9) {
    const uint8_t *h = c->in.p + off;
    size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    if (c->in.len - off < 9 + len) break;
    if (!on_frame(c, h[3], h[4], be32(h + 5) & 0x7fffffff, h + 9, len)) return false;
    off += 9 + len;
  }
  memmove(c->in.p, c->in.p + off, c->in.len - off);
  c->in.len -= off;
  return true;
}

static bool flush(conn *c) {
  size_t off = 0;
  while (off < c->out.len) {
    ssize_t n = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (n <= 0) return false;
    off += (size_t)n;
  }
  memmove(c->out.p, c->out.p + off, c->out.len - off);
  c->out.len -= off;
  return true;
}

static int dial(const char *host, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) return -1;
  int fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void open_conn(conn *c, const char *host, const char *port, int streams) {
  *c = (conn){.next_id = 1, .send_window = 65535, .want = streams};
  if ((c->fd = dial(host, port)) < 0) {
    fprintf(stderr, "h2blast: cannot connect to %s:%s\n", host, port);
    exit(1);
  }
  if (!(c->streams = calloc((size_t)streams, sizeof *c->streams))) exit(1);
  put(&c->out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
  /* SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1 GiB; then a 1 GiB
   * connection window. */
  uint8_t settings[12] = {0, 2, 0, 0, 0, 0, 0, 4, BIG_WINDOW >> 24, 0, 0, 0};
  frame_head(&c->out, sizeof settings, F_SETTINGS, 0, 0);
  put(&c->out, settings, sizeof settings);
  uint32_t inc = BIG_WINDOW - 65535;
  uint8_t w[4] = {(uint8_t)(inc >> 24), (uint8_t)(inc >> 16), (uint8_t)(inc >> 8), (uint8_t)inc};
  frame_head(&c->out, 4, F_WINDOW, 0, 0);
  put(&c->out, w, 4);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t percentile(double q) {
  if (!run.n_lat) return 0;
  size_t i = (size_t)(q * (double)(run.n_lat - 1) + 0.5);
  return run.lat_us[i];
}

static void usage(void) {
  fprintf(stderr, "usage: h2blast [-c CONNS] [-m STREAMS] [-D SECONDS] [-W WARMUP] -d BODY\n"
                  "               [-H 'name: value']... HOST:PORT PATH\n");
  exit(2);
}

int main(int argc, char **argv) {
  int conns = 1, streams = 1;
  double seconds = 10, warmup = 1;
  const char *body_path = NULL, *headers[MAX_HEADERS];
  int n_headers = 0, opt;
  while ((opt = getopt(argc, argv, "c:m:D:W:d:H:")) != -1) {
    switch (opt) {
    case 'c': conns = atoi(optarg); break;
    case 'm': streams = atoi(optarg); break;
    case 'D': seconds = atof(optarg); break;
    case 'W': warmup = atof(optarg); break;
    case 'd': body_path = optarg; break;
    case 'H':
      if (n_headers == MAX_HEADERS) usage();
      headers[n_headers++] = optarg;
      break;
    default: usage();
    }
  }
  if (argc - optind != 2 || !body_path || conns < 1 || streams < 1 || seconds <= 0) usage();
  char host[256];
  const char *colon = strrchr(argv[optind], ':'), *path = argv[optind + 1];
  if (!colon || (size_t)(colon - argv[optind]) >= sizeof host) usage();
  memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
  host[colon - argv[optind]] = 0;

  FILE *f = fopen(body_path, "rb");
  if (!f) {
    perror(body_path);
    return 1;
  }
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    put(&run.body, chunk, n);
  fclose(f);

  hpack_literal(&run.header_block, ":method", "POST");
  hpack_literal(&run.header_block, ":scheme", "http");
  hpack_literal(&run.header_block, ":path", path);
  hpack_literal(&run.header_block, ":authority", argv[optind]);
  for (int i = 0; i < n_headers; i++) {
    char name[256];
    const char *sep = strchr(headers[i], ':');
    if (!sep || sep == headers[i] || (size_t)(sep - headers[i]) >= sizeof name) usage();
    memcpy(name, headers[i], (size_t)(sep - headers[i]));
    name[sep - headers[i]] = 0;
    for (char *p = name; *p; p++)
      if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    sep++;
    while (*sep == ' ')
      sep++;
    hpack_literal(&run.header_block, name, sep);
  }

  uint64_t t0 = now_ns();
  run.measure_from = t0 + (uint64_t)(warmup * 1e9);
  run.measure_until = run.measure_from + (uint64_t)(seconds * 1e9);
  int ep = epoll_create1(0);
  conn *cs = calloc((size_t)conns, sizeof *cs);
  if (ep < 0 || !cs) return 1;
  for (int i = 0; i < conns; i++) {
    open_conn(&cs[i], host, colon + 1, streams);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    while (cs[i].in_flight < streams && cs[i].send_window >= (int64_t)run.body.len)
      start_request(&cs[i]);
    if (!flush(&cs[i])) return 1;
  }

  struct epoll_event evs[64];
  uint8_t *rbuf = malloc(READ_SIZE);
  while (now_ns() < run.measure_until) {
    int k = epoll_wait(ep, evs, 64, 100);
    for (int e = 0; e < k; e++) {
      conn *c = evs[e].data.ptr;
      ssize_t got;
      while ((got = recv(c->fd, rbuf, READ_SIZE, 0)) > 0) {
        put(&c->in, rbuf, (size_t)got);
        if (got < READ_SIZE) break;
      }
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        fprintf(stderr, "h2blast: the server closed a connection\n");
        return 1;
      }
      if (!on_input(c)) return 1;
      while (c->in_flight < c->want) {
        int before = c->in_flight;
        start_request(c);
        if (c->in_flight == before) break;
      }
      if (!flush(c)) return 1;
    }
  }
  qsort(run.lat_us, run.n_lat, sizeof *run.lat_us, cmp_u32);
  printf("{\"connections\": %d, \"streams\": %d, \"seconds\": %.1f, \"answered\": %llu, "
         "\"failed\": %llu, \"rps\": %.0f, \"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u}\n",
         conns, streams, seconds, (unsigned long long)run.ok, (unsigned long long)run.failed,
         (double)run.ok / seconds, percentile(0.5), percentile(0.9), percentile(0.99));
  return 0;
}
