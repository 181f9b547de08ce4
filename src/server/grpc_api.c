/* server/grpc_api.c: the v2 protocol over gRPC (inference.GRPCInferenceService
 * and grpc.health.v1.Health): each HTTP/2 stream is one RPC; its messages
 * are unframed (proto/grpc_codec.h), unpacked with protobuf-c into the
 * request's arena, and answered with a message and the grpc-status
 * trailers, or Trailers-Only for an error.
 *
 * Inference goes through the same core as REST (server/infer.h). A unary
 * RPC takes exactly one message, handled when the client ends its side;
 * ModelStreamInfer handles each message as it completes and answers each
 * with a ModelStreamInferResponse (errors in error_message, the stream goes
 * on), in the order they finish. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/dtype.h"
#include "core/log.h"
#include "net/h2.h"
#include "proto/grpc_codec.h"
#include "proto/grpc_config.h"
#include "proto/health.pb-c.h"
#include "server/infer.h"
#include "server/server.h"

/* gRPC status codes. */
enum {
  GRPC_OK = 0,
  GRPC_CANCELLED = 1,
  GRPC_INVALID_ARGUMENT = 3,
  GRPC_DEADLINE_EXCEEDED = 4,
  GRPC_NOT_FOUND = 5,
  GRPC_RESOURCE_EXHAUSTED = 8,
  GRPC_UNIMPLEMENTED = 12,
  GRPC_INTERNAL = 13,
  GRPC_UNAVAILABLE = 14,
};

static int grpc_status_of(int code) {
  switch (code) {
  case 0: return GRPC_OK;
  case -EINVAL: return GRPC_INVALID_ARGUMENT;
  case -ENOENT: return GRPC_NOT_FOUND;
  case -EAGAIN: return GRPC_UNAVAILABLE;
  case -ENOTSUP: return GRPC_UNIMPLEMENTED;
  case -ETIMEDOUT: return GRPC_DEADLINE_EXCEEDED;
  case -E2BIG: return GRPC_RESOURCE_EXHAUSTED;
  case -ECANCELED: return GRPC_CANCELLED;
  default: return GRPC_INTERNAL;
  }
}

typedef enum method {
  M_SERVER_LIVE,
  M_SERVER_READY,
  M_MODEL_READY,
  M_SERVER_METADATA,
  M_MODEL_METADATA,
  M_MODEL_INFER,
  M_MODEL_STREAM_INFER,
  M_MODEL_CONFIG,
  M_MODEL_STATISTICS,
  M_REPOSITORY_INDEX,
  M_REPOSITORY_LOAD,
  M_REPOSITORY_UNLOAD,
  M_HEALTH_CHECK,
  M_COUNT
} method;

static const struct {
  const char *path;
  const ProtobufCMessageDescriptor *request;
} methods[M_COUNT] = {
    [M_SERVER_LIVE] = {"/inference.GRPCInferenceService/ServerLive",
                       &inference__server_live_request__descriptor},
    [M_SERVER_READY] = {"/inference.GRPCInferenceService/ServerReady",
                        &inference__server_ready_request__descriptor},
    [M_MODEL_READY] = {"/inference.GRPCInferenceService/ModelReady",
                       &inference__model_ready_request__descriptor},
    [M_SERVER_METADATA] = {"/inference.GRPCInferenceService/ServerMetadata",
                           &inference__server_metadata_request__descriptor},
    [M_MODEL_METADATA] = {"/inference.GRPCInferenceService/ModelMetadata",
                          &inference__model_metadata_request__descriptor},
    [M_MODEL_INFER] = {"/inference.GRPCInferenceService/ModelInfer",
                       &inference__model_infer_request__descriptor},
    [M_MODEL_STREAM_INFER] = {"/inference.GRPCInferenceService/ModelStreamInfer",
                              &inference__model_infer_request__descriptor},
    [M_MODEL_CONFIG] = {"/inference.GRPCInferenceService/ModelConfig",
                        &inference__model_config_request__descriptor},
    [M_MODEL_STATISTICS] = {"/inference.GRPCInferenceService/ModelStatistics",
                            &inference__model_statistics_request__descriptor},
    [M_REPOSITORY_INDEX] = {"/inference.GRPCInferenceService/RepositoryIndex",
                            &inference__repository_index_request__descriptor},
    [M_REPOSITORY_LOAD] = {"/inference.GRPCInferenceService/RepositoryModelLoad",
                           &inference__repository_model_load_request__descriptor},
    [M_REPOSITORY_UNLOAD] = {"/inference.GRPCInferenceService/RepositoryModelUnload",
                             &inference__repository_model_unload_request__descriptor},
    [M_HEALTH_CHECK] = {"/grpc.health.v1.Health/Check",
                        &grpc__health__v1__health_check_request__descriptor},
};

/* An inference call of an RPC, in the call's own arena. */
typedef struct pending {
  struct pending *next, *prev;
  infer_call *call;
} pending;

/* One RPC: an HTTP/2 stream and what its messages are. */
typedef struct rpc {
  h2_stream *stream;
  server *s;
  method m;
  grpc_reader reader;
  bool gzip;
  uint64_t deadline_ns;  /* 0: none */
  int messages;          /* taken from the reader */
  int in_flight;         /* inference calls running */
  struct pending *calls; /* ... which, for cancelling them */
  bool client_done;      /* END_STREAM */
  bool headers_sent;
  bool finished; /* the final status is out */
  bool closed;   /* the stream is gone */
  bool busy;     /* inside a completion: not to be freed under it */
} rpc;

static const h2_header grpc_content = {"content-type", "application/grpc"};

/* ---- the end of an RPC ---------------------------------------------------------- */

/* Finished RPCs wait on a per-thread list for the next one, keeping a
 * reader buffer of up to SPARE_READER bytes, so that a call allocates
 * nothing here. An RPC lives and ends on its connection's thread; the list
 * goes with the thread. */
#define SPARES_MAX   256
#define SPARE_READER (64 << 10)
typedef struct spare_list {
  int n;
  rpc *items[SPARES_MAX];
} spare_list;
static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static void spares_free(void *arg) {
  spare_list *l = arg;
  for (int i = 0; i < l->n; i++) {
    grpc_reader_free(&l->items[i]->reader);
    free(l->items[i]);
  }
  free(l);
}

static void spares_key_make(void) { pthread_key_create(&spares_key, spares_free); }

static spare_list *spares(void) {
  pthread_once(&spares_once, spares_key_make);
  spare_list *l = pthread_getspecific(spares_key);
  if (!l && (l = calloc(1, sizeof *l)) && pthread_setspecific(spares_key, l) != 0) {
    free(l);
    l = NULL;
  }
  return l;
}

static rpc *rpc_new(void) {
  spare_list *l = spares();
  if (l && l->n) {
    rpc *r = l->items[--l->n];
    buf kept = r->reader.data;
    kept.len = 0;
    memset(r, 0, sizeof *r);
    r->reader.data = kept;
    return r;
  }
  return calloc(1, sizeof(rpc));
}

static void rpc_maybe_free(rpc *r) {
  if (!r->closed || r->in_flight || r->busy) return;
  h2_stream *s = r->stream;
  spare_list *l = spares();
  if (l && l->n < SPARES_MAX && r->reader.data.cap <= SPARE_READER && !r->reader.data.oom) {
    l->items[l->n++] = r;
  } else {
    grpc_reader_free(&r->reader);
    free(r);
  }
  h2_stream_release(s);
}

/* grpc-message is percent-encoded: bytes outside printable ASCII and '%'. */
static void percent_encode(const char *msg, char *out, size_t size) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p && n + 4 < size; p++) {
    if (*p < 0x20 || *p > 0x7e || *p == '%') {
      out[n++] = '%';
      out[n++] = hex[*p >> 4];
      out[n++] = hex[*p & 15];
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n] = 0;
}

/* Ends the RPC with a status: Trailers-Only when nothing was sent yet. */
static void finish(rpc *r, int code, const char *msg) {
  if (r->finished || r->closed) return;
  r->finished = true;
  char status[8], text[1200];
  snprintf(status, sizeof status, "%d", code);
  percent_encode(msg ? msg : "", text, sizeof text);
  h2_header h[3] = {grpc_content, {"grpc-status", status}, {"grpc-message", text}};
  size_t n = msg && msg[0] ? 3 : 2;
  if (!r->headers_sent) {
    r->headers_sent = true;
    h2_respond(r->stream, h, n, true);
  } else {
    h2_send_trailers(r->stream, h + 1, n - 1);
  }
}

static void fail(rpc *r, int code, const char *msg) { finish(r, grpc_status_of(code), msg); }

static void send_headers(rpc *r) {
  if (r->headers_sent) return;
  r->headers_sent = true;
  h2_respond(r->stream, &grpc_content, 1, false);
}

static void free_arena(void *arg) { infer_arena_give(arg); }

/* Answers a unary RPC with one message packed in arena a (which goes back
 * to the pool once written). */
static void reply(rpc *r, arena *a, const ProtobufCMessage *m) {
  struct iovec v;
  err e = {0};
  if (grpc_pack(a, m, &v, &e) < 0) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  send_headers(r);
  h2_send(r->stream, &v, 1, free_arena, a);
  finish(r, GRPC_OK, NULL);
}

/* ---- inference --------------------------------------------------------------------- */

typedef struct infer_rpc {
  rpc *r;
  infer_call *call;
} infer_rpc;

static void end_call(void *arg) { infer_call_end(arg); }

static void track(rpc *r, infer_call *c) {
  pending *p = arena_calloc(c->arena, 1, sizeof *p);
  if (!p) return; /* not cancellable; it still runs and answers */
  p->call = c;
  p->next = r->calls;
  if (r->calls) r->calls->prev = p;
  r->calls = p;
}

static void untrack(rpc *r, infer_call *c) {
  for (pending *p = r->calls; p; p = p->next) {
    if (p->call != c) continue;
    if (p->prev)
      p->prev->next = p->next;
    else
      r->calls = p->next;
    if (p->next) p->next->prev = p->prev;
    return;
  }
}

/* A call's answer, on the network thread. Sending can close the stream
 * (and run on_close) before this returns, hence busy. */
static void infer_answered(infer_call *c) {
  rpc *r = c->user;
  r->busy = true;
  r->in_flight--;
  untrack(r, c);
  bool stream = r->m == M_MODEL_STREAM_INFER;
  err e = {0};
  int rc = c->status;
  if (rc == 0 && (r->closed || r->finished)) rc = -ECANCELED;
  struct iovec *iov = NULL;
  size_t n = 0, total = 0;
  if (rc == 0) {
    rc = stream ? grpc_encode_stream_response(c->arena, c->res, &iov, &n, &total, &e)
                : grpc_encode_infer_response(c->arena, c->res, &iov, &n, &total, &e);
  } else {
    e = c->err;
    if (rc == -ECANCELED && !e.msg[0]) err_set(&e, rc, "the call was cancelled");
  }
  if (rc == 0) {
    send_headers(r);
    h2_send(r->stream, iov, n, end_call, c);
    if (!stream) finish(r, GRPC_OK, NULL);
  } else if (stream && !r->closed && !r->finished) {
    /* A stream's error goes in error_message; the stream goes on. */
    Inference__ModelStreamInferResponse m = INFERENCE__MODEL_STREAM_INFER_RESPONSE__INIT;
    m.error_message = e.msg;
    struct iovec v;
    if (grpc_pack(c->arena, &m.base, &v, &e) == 0) {
      send_headers(r);
      h2_send(r->stream, &v, 1, end_call, c);
    } else {
      infer_call_end(c);
    }
  } else {
    fail(r, rc, e.msg);
    infer_call_end(c);
  }
  if (stream && r->client_done && !r->in_flight) finish(r, GRPC_OK, NULL);
  r->busy = false;
  rpc_maybe_free(r);
}

/* The caller's metadata (request headers that are not the protocol's own),
 * for the core. */
static int copy_metadata(rpc *r, infer_request *req) {
  size_t n = h2_stream_header_count(r->stream);
  req->metadata.items = arena_calloc(req->arena, n + 1, sizeof *req->metadata.items);
  if (!req->metadata.items) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    h2_header h = h2_stream_header_at(r->stream, i);
    if (h.name[0] == ':' || strncmp(h.name, "grpc-", 5) == 0 || strcmp(h.name, "te") == 0 ||
        strcmp(h.name, "content-type") == 0)
      continue;
    param *p = &req->metadata.items[req->metadata.n++];
    p->key = arena_strdup(req->arena, h.name);
    p->type = PARAM_STRING;
    p->v.s = arena_strdup(req->arena, h.value);
    if (!p->key || !p->v.s) return -ENOMEM;
  }
  return 0;
}

static void start_infer(rpc *r, const uint8_t *msg, size_t len, bool compressed) {
  infer_call *c = infer_call_new(r->s, h2_stream_loop(r->stream));
  if (!c) {
    fail(r, -ENOMEM, "out of memory");
    return;
  }
  c->done = infer_answered;
  c->user = r;
  r->in_flight++;
  track(r, c);
  err *e = &c->err;
  int rc = 0;
  if (compressed) rc = grpc_gunzip(c->arena, msg, len, r->reader.max_message, &msg, &len, e);
  ProtobufCAllocator alloc;
  grpc_arena_allocator(c->arena, &alloc);
  Inference__ModelInferRequest *m = NULL;
  if (rc == 0) {
    m = inference__model_infer_request__unpack(&alloc, len, msg);
    if (!m) rc = err_set(e, -EINVAL, "the ModelInferRequest message does not parse");
  }
  int64_t version = -1;
  if (rc == 0 && m->model_version[0] && !repo_parse_version(m->model_version, &version))
    rc = err_set(e, -EINVAL, "model_version '%.40s' is not a whole number", m->model_version);
  if (rc == 0) rc = infer_call_model(c, m->model_name, version);
  if (rc == 0 && copy_metadata(r, &c->req) < 0) rc = err_set(e, -ENOMEM, "out of memory");
  if (rc == 0) {
    rc = grpc_decode_infer_request(m, &c->req, e);
    if (rc < 0) infer_call_failed(c);
  }
  c->deadline_ns = r->deadline_ns;
  if (rc < 0) {
    c->status = rc;
    infer_answered(c);
    return;
  }
  infer_call_run(c);
}

/* ---- the other RPCs ------------------------------------------------------------------- */

static void server_metadata(rpc *r, arena *a) {
  static char *ext[] = {"binary_tensor_data",  "classification", "model_repository",
                        "model_configuration", "statistics",     "parameters"};
  Inference__ServerMetadataResponse m = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
  m.name = "inferd";
  m.version = INFERD_VERSION;
  m.n_extensions = sizeof ext / sizeof ext[0];
  m.extensions = ext;
  reply(r, a, &m.base);
}

/* The version a request names ("" for the default), or an error. */
static int version_of(const char *s, int64_t *v, err *e) {
  *v = -1;
  if (!s[0] || repo_parse_version(s, v)) return 0;
  return err_set(e, -EINVAL, "version '%.40s' is not a whole number", s);
}

static void model_ready(rpc *r, arena *a, const Inference__ModelReadyRequest *q) {
  Inference__ModelReadyResponse m = INFERENCE__MODEL_READY_RESPONSE__INIT;
  err e = {0};
  int64_t v;
  if (version_of(q->version, &v, &e) < 0) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  model_version *mv = repo_acquire(r->s->repo, q->name, v, &e);
  m.ready = mv != NULL;
  model_version_release(mv);
  reply(r, a, &m.base);
}

static Inference__ModelMetadataResponse__TensorMetadata **tensors(arena *a, const config_tensor *t,
                                                                  size_t n, int max_batch) {
  Inference__ModelMetadataResponse__TensorMetadata **out = arena_calloc(a, n + 1, sizeof *out);
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    Inference__ModelMetadataResponse__TensorMetadata init =
        INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT;
    out[i] = arena_alloc(a, sizeof *out[i]);
    int64_t *shape = arena_calloc(a, INFERD_MAX_DIMS + 1, sizeof *shape);
    if (!out[i] || !shape) return NULL;
    *out[i] = init;
    out[i]->name = (char *)t[i].name;
    out[i]->datatype = (char *)dtype_name(t[i].dtype);
    size_t k = 0;
    if (max_batch > 0) shape[k++] = -1;
    for (int d = 0; d < t[i].ndim; d++)
      shape[k++] = t[i].dims[d];
    out[i]->n_shape = k;
    out[i]->shape = shape;
  }
  return out;
}

static void model_metadata(rpc *r, arena *a, const Inference__ModelMetadataRequest *q) {
  err e = {0};
  int64_t v;
  model_version *mv = NULL;
  if (version_of(q->version, &v, &e) == 0) mv = repo_acquire(r->s->repo, q->name, v, &e);
  if (!mv) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  const model *md = mv->model;
  const model_config *c = md->config;
  Inference__ModelMetadataResponse m = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
  m.name = md->name;
  m.platform = (char *)(c->platform ? c->platform : c->backend ? c->backend : "");
  char **versions = arena_calloc(a, md->n_versions + 1, sizeof *versions);
  for (size_t i = 0; versions && i < md->n_versions; i++) {
    const model_version *x = md->versions[i];
    if (v >= 0 ? x != mv : atomic_load(&x->state) != MODEL_READY) continue;
    versions[m.n_versions] = arena_alloc(a, 24);
    if (versions[m.n_versions])
      snprintf(versions[m.n_versions++], 24, "%lld", (long long)x->version);
  }
  m.versions = versions;
  m.inputs = tensors(a, c->inputs, c->n_inputs, c->max_batch_size);
  m.n_inputs = c->n_inputs;
  m.outputs = tensors(a, c->outputs, c->n_outputs, c->max_batch_size);
  m.n_outputs = c->n_outputs;
  if (!versions || !m.inputs || !m.outputs) {
    fail(r, -ENOMEM, "out of memory");
    infer_arena_give(a);
  } else {
    reply(r, a, &m.base);
  }
  model_version_release(mv);
}

static void model_config_rpc(rpc *r, arena *a, const Inference__ModelConfigRequest *q) {
  err e = {0};
  int64_t v;
  model_version *mv = NULL;
  if (version_of(q->version, &v, &e) == 0) mv = repo_acquire(r->s->repo, q->name, v, &e);
  if (!mv) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  Inference__ModelConfigResponse m = INFERENCE__MODEL_CONFIG_RESPONSE__INIT;
  if (grpc_model_config(a, mv->model->config, &m.config) < 0) {
    fail(r, -ENOMEM, "out of memory");
    infer_arena_give(a);
  } else {
    reply(r, a, &m.base);
  }
  model_version_release(mv);
}

/* ---- statistics ---------------------------------------------------------------------- */

static Inference__StatisticDuration *duration(arena *a, const stat_duration *d) {
  Inference__StatisticDuration *p = arena_alloc(a, sizeof *p);
  if (!p) return NULL;
  Inference__StatisticDuration init = INFERENCE__STATISTIC_DURATION__INIT;
  *p = init;
  p->count = stat_load(&d->count);
  p->ns = stat_load(&d->ns);
  return p;
}

static Inference__ModelStatistics *version_stats(arena *a, const model_version *mv) {
  const model_stats *s = &mv->stats;
  Inference__ModelStatistics *m = arena_alloc(a, sizeof *m);
  Inference__InferStatistics *is = arena_alloc(a, sizeof *is);
  Inference__MemoryUsage *mem = arena_alloc(a, sizeof *mem);
  Inference__MemoryUsage **mems = arena_alloc(a, sizeof *mems);
  char *version = arena_alloc(a, 24);
  Inference__InferBatchStatistics **bs = arena_calloc(a, (size_t)s->max_batch + 2, sizeof *bs);
  static const stat_duration zero;
  if (!m || !is || !mem || !mems || !version || !bs) return NULL;
  Inference__ModelStatistics minit = INFERENCE__MODEL_STATISTICS__INIT;
  Inference__InferStatistics iinit = INFERENCE__INFER_STATISTICS__INIT;
  Inference__MemoryUsage meminit = INFERENCE__MEMORY_USAGE__INIT;
  *m = minit;
  *is = iinit;
  *mem = meminit;
  snprintf(version, 24, "%lld", (long long)mv->version);
  m->name = mv->model->name;
  m->version = version;
  m->last_inference = stat_load(&s->last_inference_ms);
  m->inference_count = stat_load(&s->inference_count);
  m->execution_count = stat_load(&s->execution_count);
  if (!(is->success = duration(a, &s->success)) || !(is->fail = duration(a, &s->fail)) ||
      !(is->queue = duration(a, &s->queue)) ||
      !(is->compute_input = duration(a, &s->compute_input)) ||
      !(is->compute_infer = duration(a, &s->compute_infer)) ||
      !(is->compute_output = duration(a, &s->compute_output)) ||
      !(is->cache_hit = duration(a, &zero)) || !(is->cache_miss = duration(a, &zero)))
    return NULL;
  m->inference_stats = is;
  for (int i = 0; s->batch && i <= s->max_batch; i++) {
    const batch_stats *b = &s->batch[i];
    if (!stat_load(&b->compute_infer.count)) continue;
    Inference__InferBatchStatistics *x = arena_alloc(a, sizeof *x);
    if (!x) return NULL;
    Inference__InferBatchStatistics binit = INFERENCE__INFER_BATCH_STATISTICS__INIT;
    *x = binit;
    x->batch_size = (uint64_t)(i ? i : 1);
    if (!(x->compute_input = duration(a, &b->compute_input)) ||
        !(x->compute_infer = duration(a, &b->compute_infer)) ||
        !(x->compute_output = duration(a, &b->compute_output)))
      return NULL;
    bs[m->n_batch_stats++] = x;
  }
  m->batch_stats = bs;
  mem->type = "CPU";
  mem->byte_size = mv->memory_bytes;
  mems[0] = mem;
  m->n_memory_usage = 1;
  m->memory_usage = mems;
  return m;
}

typedef struct stats_walk {
  arena *a;
  Inference__ModelStatisticsResponse *resp;
  size_t cap;
  const char *name;
  int64_t version;
  bool oom;
} stats_walk;

/* The arena array of pointers items (n of them, room for *cap) with room
 * for one more: items itself, or a copy twice as large; NULL when out of
 * memory. For the repeated message fields of the answers below. */
static void *room_for_one_more(arena *a, void *items, size_t n, size_t *cap) {
  if (n < *cap) return items;
  size_t c = *cap ? *cap * 2 : 16;
  void **p = arena_calloc(a, c, sizeof *p);
  if (!p) return NULL;
  if (n) memcpy(p, items, n * sizeof *p);
  *cap = c;
  return p;
}

static void add_stats(stats_walk *w, const model_version *mv) {
  Inference__ModelStatistics **p =
      room_for_one_more(w->a, w->resp->model_stats, w->resp->n_model_stats, &w->cap);
  if (!p) {
    w->oom = true;
    return;
  }
  w->resp->model_stats = p;
  Inference__ModelStatistics *m = version_stats(w->a, mv);
  if (!m)
    w->oom = true;
  else
    w->resp->model_stats[w->resp->n_model_stats++] = m;
}

static void stats_of(const char *name, model *md, void *arg) {
  stats_walk *w = arg;
  if (!md || (w->name && strcmp(w->name, name) != 0)) return;
  for (size_t i = 0; i < md->n_versions; i++) {
    const model_version *mv = md->versions[i];
    if (atomic_load(&mv->state) != MODEL_READY) continue;
    if (w->version >= 0 && mv->version != w->version) continue;
    add_stats(w, mv);
  }
}

static void model_statistics(rpc *r, arena *a, const Inference__ModelStatisticsRequest *q) {
  err e = {0};
  int64_t v;
  Inference__ModelStatisticsResponse m = INFERENCE__MODEL_STATISTICS_RESPONSE__INIT;
  stats_walk w = {a, &m, 0, q->name[0] ? q->name : NULL, -1, false};
  if (version_of(q->version, &v, &e) < 0) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  w.version = v;
  if (w.name) {
    /* A named model must exist and be available, as over REST. */
    model_version *mv = repo_acquire(r->s->repo, w.name, v, &e);
    if (!mv) {
      fail(r, e.code, e.msg);
      infer_arena_give(a);
      return;
    }
    model_version_release(mv);
  }
  repo_each(r->s->repo, false, stats_of, &w);
  if (w.oom) {
    fail(r, -ENOMEM, "out of memory");
    infer_arena_give(a);
    return;
  }
  reply(r, a, &m.base);
}

/* ---- model repository ------------------------------------------------------------------ */

typedef struct index_walk {
  arena *a;
  Inference__RepositoryIndexResponse *resp;
  size_t cap;
  bool ready_only;
  bool oom;
} index_walk;

static void index_add(index_walk *w, const char *name, int64_t version, const char *state,
                      const char *reason) {
  Inference__RepositoryIndexResponse__ModelIndex **p =
      room_for_one_more(w->a, w->resp->models, w->resp->n_models, &w->cap);
  if (!p) {
    w->oom = true;
    return;
  }
  w->resp->models = p;
  Inference__RepositoryIndexResponse__ModelIndex *x = arena_alloc(w->a, sizeof *x);
  char *v = arena_alloc(w->a, 24);
  char *n = arena_strdup(w->a, name), *rs = arena_strdup(w->a, reason);
  if (!x || !v || !n || !rs) {
    w->oom = true;
    return;
  }
  Inference__RepositoryIndexResponse__ModelIndex init =
      INFERENCE__REPOSITORY_INDEX_RESPONSE__MODEL_INDEX__INIT;
  *x = init;
  v[0] = 0;
  if (version >= 0) snprintf(v, 24, "%lld", (long long)version);
  x->name = n;
  x->version = v;
  x->state = (char *)state;
  x->reason = rs;
  w->resp->models[w->resp->n_models++] = x;
}

static void index_of(const char *name, model *md, void *arg) {
  index_walk *w = arg;
  if (!md) {
    if (!w->ready_only) index_add(w, name, -1, "UNAVAILABLE", "unloaded");
    return;
  }
  if (md->n_versions == 0 && !w->ready_only)
    index_add(w, name, -1, model_state_name(md->state), md->reason);
  for (size_t i = 0; i < md->n_versions; i++) {
    const model_version *mv = md->versions[i];
    model_state st = atomic_load(&mv->state);
    if (w->ready_only && st != MODEL_READY) continue;
    index_add(w, name, mv->version, model_state_name(st), st == MODEL_READY ? "" : mv->reason);
  }
}

static void repository_index(rpc *r, arena *a, const Inference__RepositoryIndexRequest *q) {
  Inference__RepositoryIndexResponse m = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
  index_walk w = {a, &m, 0, q->ready, false};
  repo_each(r->s->repo, true, index_of, &w);
  if (w.oom) {
    fail(r, -ENOMEM, "out of memory");
    infer_arena_give(a);
    return;
  }
  reply(r, a, &m.base);
}

static void repository_control(rpc *r, arena *a, const char *name, size_t n_params,
                               Inference__RepositoryModelLoadRequest__ParametersEntry **params,
                               bool load) {
  err e = {0};
  int rc = 0;
  for (size_t i = 0; i < n_params && load; i++)
    if (strcmp(params[i]->key, "config") == 0)
      rc = err_set(&e, -ENOTSUP, "loading with a 'config' parameter is not supported yet");
  if (rc == 0 && !repo_valid_name(name))
    rc = err_set(&e, -EINVAL, "invalid model name '%.200s'", name);
  if (rc == 0)
    rc = load ? repo_load_model(r->s->repo, name, &e) : repo_unload_model(r->s->repo, name, &e);
  if (rc < 0) {
    fail(r, rc, e.msg);
    infer_arena_give(a);
    return;
  }
  if (load) {
    Inference__RepositoryModelLoadResponse m = INFERENCE__REPOSITORY_MODEL_LOAD_RESPONSE__INIT;
    reply(r, a, &m.base);
  } else {
    Inference__RepositoryModelUnloadResponse m = INFERENCE__REPOSITORY_MODEL_UNLOAD_RESPONSE__INIT;
    reply(r, a, &m.base);
  }
}

static bool server_ready(const server *s) {
  return !atomic_load(&s->stopping) && repo_ready(s->repo);
}

static void health_check(rpc *r, arena *a, const Grpc__Health__V1__HealthCheckRequest *q) {
  if (q->service[0] && strcmp(q->service, "inference.GRPCInferenceService") != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "unknown service '%.200s'", q->service);
    finish(r, GRPC_NOT_FOUND, msg);
    infer_arena_give(a);
    return;
  }
  Grpc__Health__V1__HealthCheckResponse m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  m.status = server_ready(r->s)
                 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                 : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  reply(r, a, &m.base);
}

/* A unary RPC other than inference: unpack and answer at once. */
static void unary(rpc *r, const uint8_t *msg, size_t len, bool compressed) {
  arena *a = infer_arena_take();
  if (!a) {
    fail(r, -ENOMEM, "out of memory");
    return;
  }
  err e = {0};
  if (compressed && grpc_gunzip(a, msg, len, r->reader.max_message, &msg, &len, &e) < 0) {
    fail(r, e.code, e.msg);
    infer_arena_give(a);
    return;
  }
  ProtobufCAllocator alloc;
  grpc_arena_allocator(a, &alloc);
  ProtobufCMessage *q = protobuf_c_message_unpack(methods[r->m].request, &alloc, len, msg);
  if (!q) {
    char text[200];
    snprintf(text, sizeof text, "the %s message does not parse", methods[r->m].request->short_name);
    finish(r, GRPC_INVALID_ARGUMENT, text);
    infer_arena_give(a);
    return;
  }
  switch (r->m) {
  case M_SERVER_LIVE: {
    Inference__ServerLiveResponse m = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    m.live = 1;
    reply(r, a, &m.base);
    break;
  }
  case M_SERVER_READY: {
    Inference__ServerReadyResponse m = INFERENCE__SERVER_READY_RESPONSE__INIT;
    m.ready = server_ready(r->s);
    reply(r, a, &m.base);
    break;
  }
  case M_MODEL_READY: model_ready(r, a, (void *)q); break;
  case M_SERVER_METADATA: server_metadata(r, a); break;
  case M_MODEL_METADATA: model_metadata(r, a, (void *)q); break;
  case M_MODEL_CONFIG: model_config_rpc(r, a, (void *)q); break;
  case M_MODEL_STATISTICS: model_statistics(r, a, (void *)q); break;
  case M_REPOSITORY_INDEX: repository_index(r, a, (void *)q); break;
  case M_REPOSITORY_LOAD: {
    const Inference__RepositoryModelLoadRequest *l = (void *)q;
    repository_control(r, a, l->model_name, l->n_parameters, l->parameters, true);
    break;
  }
  case M_REPOSITORY_UNLOAD: {
    const Inference__RepositoryModelUnloadRequest *u = (void *)q;
    repository_control(r, a, u->model_name, u->n_parameters,
                       (Inference__RepositoryModelLoadRequest__ParametersEntry **)u->parameters,
                       false);
    break;
  }
  case M_HEALTH_CHECK: health_check(r, a, (void *)q); break;
  default: infer_arena_give(a); break;
  }
}

/* ---- the stream callbacks -------------------------------------------------------------- */

/* grpc-timeout: up to 8 digits and a unit (H, M, S, m, u, n). */
static bool parse_timeout(const char *v, uint64_t *ns) {
  uint64_t n = 0;
  size_t digits = 0;
  while (*v >= '0' && *v <= '9' && digits < 9) {
    n = n * 10 + (uint64_t)(*v++ - '0');
    digits++;
  }
  if (!digits || digits > 8 || !v[0] || v[1]) return false;
  static const struct {
    char unit;
    uint64_t ns;
  } units[] = {{'H', 3600000000000ull}, {'M', 60000000000ull}, {'S', 1000000000ull},
               {'m', 1000000ull},       {'u', 1000ull},        {'n', 1ull}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (units[i].unit == v[0]) {
      *ns = n * units[i].ns;
      return true;
    }
  return false;
}

static void on_request(h2_stream *s, void *ctx) {
  server *srv = ctx;
  rpc *r = rpc_new();
  if (!r) {
    h2_reset(s, 2 /* INTERNAL_ERROR */);
    return;
  }
  r->stream = s;
  r->s = srv;
  r->m = M_COUNT;
  r->reader.max_message = srv->opt->grpc_max_message;
  h2_stream_hold(s);
  h2_stream_set_user(s, r);
  const char *path = h2_stream_header(s, ":path");
  const char *verb = h2_stream_header(s, ":method");
  const char *type = h2_stream_header(s, "content-type");
  const char *enc = h2_stream_header(s, "grpc-encoding");
  const char *timeout = h2_stream_header(s, "grpc-timeout");
  if (!verb || strcmp(verb, "POST") != 0 || !type || strncmp(type, "application/grpc", 16) != 0) {
    finish(r, GRPC_INVALID_ARGUMENT, "gRPC requests are POSTs of content-type application/grpc");
    return;
  }
  for (int i = 0; i < M_COUNT && path; i++)
    if (strcmp(path, methods[i].path) == 0) r->m = (method)i;
  if (r->m == M_COUNT) {
    char msg[300];
    snprintf(msg, sizeof msg, "unknown method %.200s", path ? path : "(none)");
    finish(r, GRPC_UNIMPLEMENTED, msg);
    return;
  }
  if (enc && strcmp(enc, "identity") != 0) {
    if (strcmp(enc, "gzip") != 0) {
      char msg[200];
      snprintf(msg, sizeof msg, "message encoding '%.60s' is not supported (identity, gzip)", enc);
      finish(r, GRPC_UNIMPLEMENTED, msg);
      return;
    }
    r->gzip = true;
  }
  uint64_t ns;
  if (timeout) {
    if (!parse_timeout(timeout, &ns)) {
      finish(r, GRPC_INVALID_ARGUMENT, "malformed grpc-timeout");
      return;
    }
    r->deadline_ns = clock_ns() + ns;
  }
}

/* Hands complete messages on: a stream's at once, a unary's when it ends. */
static void take_messages(rpc *r) {
  const uint8_t *msg;
  size_t len;
  bool compressed;
  int rc = 0;
  while (!r->finished && (rc = grpc_reader_next(&r->reader, &msg, &len, &compressed)) > 0) {
    h2_consume(r->stream, GRPC_PREFIX + len);
    if (compressed && !r->gzip) {
      finish(r, GRPC_INTERNAL, "compressed message without a grpc-encoding");
      return;
    }
    r->messages++;
    if (r->m == M_MODEL_STREAM_INFER) {
      start_infer(r, msg, len, compressed);
    } else if (r->messages > 1) {
      finish(r, GRPC_UNIMPLEMENTED, "a unary RPC takes one request message");
    } else if (r->m == M_MODEL_INFER) {
      start_infer(r, msg, len, compressed);
    } else {
      unary(r, msg, len, compressed);
    }
  }
  if (rc < 0) {
    char text[200];
    snprintf(text, sizeof text, "message larger than the limit of %zu bytes",
             r->reader.max_message);
    finish(r, rc == -E2BIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL, text);
  }
}

static void on_data(h2_stream *s, const uint8_t *data, size_t len, void *ctx) {
  rpc *r = h2_stream_user(s);
  if (!r || r->finished) {
    h2_consume(s, len);
    return;
  }
  err e = {0};
  if (grpc_reader_feed(&r->reader, data, len, &e) < 0) {
    h2_consume(s, len);
    finish(r, grpc_status_of(e.code), e.msg);
    return;
  }
  /* A unary request waits for the end of the stream; a stream's messages
   * run as they arrive. */
  if (r->m == M_MODEL_STREAM_INFER) take_messages(r);
}

static void on_end(h2_stream *s, void *ctx) {
  rpc *r = h2_stream_user(s);
  if (!r || r->finished) return;
  r->client_done = true;
  take_messages(r);
  if (r->finished) return;
  if (grpc_reader_partial(&r->reader)) {
    finish(r, GRPC_INTERNAL, "the request ends inside a message");
  } else if (r->m == M_MODEL_STREAM_INFER) {
    if (!r->in_flight) finish(r, GRPC_OK, NULL);
  } else if (r->messages == 0) {
    finish(r, GRPC_UNIMPLEMENTED, "a unary RPC takes one request message");
  }
}

static void on_close(h2_stream *s, void *ctx) {
  rpc *r = h2_stream_user(s);
  if (!r) return;
  r->closed = true;
  for (pending *p = r->calls; p; p = p->next)
    infer_call_cancel(p->call);
  rpc_maybe_free(r);
}

const h2_handler grpc_handler = {
    .on_request = on_request,
    .on_data = on_data,
    .on_end = on_end,
    .on_close = on_close,
};
