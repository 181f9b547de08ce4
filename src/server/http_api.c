/* server/http_api.c: the v2 REST API: routing a path to its endpoint, and
 * the endpoints: health, server and model metadata, model configuration,
 * inference, statistics, and the model repository extension.
 *
 * Inference runs: decode (proto) -> validate -> schedule (sched) ->
 * classify -> encode (proto) -> respond. The request's memory is an arena
 * that lives until the response has been written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/dtype.h"
#include "core/json_write.h"
#include "core/log.h"
#include "proto/json.h"
#include "proto/v2.h"
#include "sched/sched.h"
#include "server/infer.h"
#include "server/server.h"

#define MAX_SEGMENTS 10

/* ---- small helpers -------------------------------------------------------- */

static void respond_error(http_request *req, int code, const char *msg) {
  http_set_error(req, err_http_status(code), msg);
  http_respond(req);
}

static void respond_json(http_request *req, int status) {
  req->status = status;
  req->content_type = "application/json";
  http_respond(req);
}

static void respond_empty(http_request *req, int status) {
  req->status = status;
  http_respond(req);
}

/* A path split into segments, each percent-decoded. */
typedef struct route {
  int n;
  char *seg[MAX_SEGMENTS];
  char storage[2048];
} route;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* false when the path is too long, has too many segments, or a bad escape. */
static bool split_path(const char *path, size_t len, route *r) {
  r->n = 0;
  if (len == 0 || path[0] != '/' || len >= sizeof r->storage) return false;
  size_t o = 0, i = 1;
  while (i <= len) {
    if (r->n == MAX_SEGMENTS) return false;
    r->seg[r->n++] = r->storage + o;
    while (i < len && path[i] != '/') {
      char c = path[i];
      if (c == '%') {
        int h = i + 2 < len ? hexval(path[i + 1]) : -1, l = h >= 0 ? hexval(path[i + 2]) : -1;
        if (l < 0) return false;
        c = (char)(h * 16 + l);
        if (c == 0) return false;
        i += 2;
      }
      r->storage[o++] = c;
      i++;
    }
    r->storage[o++] = 0;
    i++;
  }
  /* a trailing slash leaves an empty last segment: ignore it */
  if (r->n > 1 && r->seg[r->n - 1][0] == 0) r->n--;
  return true;
}

static void put_key(buf *b, const char *key) {
  json_put_cstr(b, key);
  buf_putc(b, ':');
}

static void put_version_string(buf *b, int64_t v) {
  buf_putc(b, '"');
  buf_put_i64(b, v);
  buf_putc(b, '"');
}

/* ---- health and metadata ---------------------------------------------------- */

static void server_metadata(http_request *req) {
  buf *b = &req->out;
  buf_puts(b, "{\"name\":\"inferd\",\"version\":\"" INFERD_VERSION "\",\"extensions\":["
              "\"binary_tensor_data\",\"classification\",\"model_repository\","
              "\"model_configuration\",\"statistics\",\"parameters\"]}");
  respond_json(req, 200);
}

static void put_tensors(buf *b, const config_tensor *t, size_t n, int max_batch) {
  buf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) buf_putc(b, ',');
    buf_puts(b, "{\"name\":");
    json_put_cstr(b, t[i].name);
    buf_puts(b, ",\"datatype\":\"");
    buf_puts(b, dtype_name(t[i].dtype));
    buf_puts(b, "\",\"shape\":[");
    int k = 0;
    if (max_batch > 0) {
      buf_puts(b, "-1");
      k++;
    }
    for (int d = 0; d < t[i].ndim; d++, k++) {
      if (k) buf_putc(b, ',');
      buf_put_i64(b, t[i].dims[d]);
    }
    buf_puts(b, "]}");
  }
  buf_putc(b, ']');
}

static void model_metadata(http_request *req, model_version *mv, bool one_version) {
  const model *m = mv->model;
  const model_config *c = m->config;
  buf *b = &req->out;
  buf_puts(b, "{\"name\":");
  json_put_cstr(b, m->name);
  buf_puts(b, ",\"versions\":[");
  if (one_version) {
    put_version_string(b, mv->version);
  } else {
    bool first = true;
    for (size_t i = 0; i < m->n_versions; i++) {
      if (atomic_load(&m->versions[i]->state) != MODEL_READY) continue;
      if (!first) buf_putc(b, ',');
      first = false;
      put_version_string(b, m->versions[i]->version);
    }
  }
  buf_puts(b, "],\"platform\":");
  json_put_cstr(b, c->platform ? c->platform : c->backend ? c->backend : "");
  buf_puts(b, ",\"inputs\":");
  put_tensors(b, c->inputs, c->n_inputs, c->max_batch_size);
  buf_puts(b, ",\"outputs\":");
  put_tensors(b, c->outputs, c->n_outputs, c->max_batch_size);
  buf_putc(b, '}');
  respond_json(req, 200);
}

static void model_config_endpoint(http_request *req, model_version *mv) {
  model_config_to_json(mv->model->config, &req->out);
  respond_json(req, 200);
}

/* ---- statistics ---------------------------------------------------------------- */

static void put_duration(buf *b, const char *key, const stat_duration *d) {
  put_key(b, key);
  buf_puts(b, "{\"count\":");
  buf_put_u64(b, stat_load(&d->count));
  buf_puts(b, ",\"ns\":");
  buf_put_u64(b, stat_load(&d->ns));
  buf_putc(b, '}');
}

static void put_version_stats(buf *b, const model *m, const model_version *mv) {
  const model_stats *s = &mv->stats;
  buf_puts(b, "{\"name\":");
  json_put_cstr(b, m->name);
  buf_puts(b, ",\"version\":");
  put_version_string(b, mv->version);
  buf_puts(b, ",\"last_inference\":");
  buf_put_u64(b, stat_load(&s->last_inference_ms));
  buf_puts(b, ",\"inference_count\":");
  buf_put_u64(b, stat_load(&s->inference_count));
  buf_puts(b, ",\"execution_count\":");
  buf_put_u64(b, stat_load(&s->execution_count));
  buf_puts(b, ",\"inference_stats\":{");
  put_duration(b, "success", &s->success);
  buf_putc(b, ',');
  put_duration(b, "fail", &s->fail);
  buf_putc(b, ',');
  put_duration(b, "queue", &s->queue);
  buf_putc(b, ',');
  put_duration(b, "compute_input", &s->compute_input);
  buf_putc(b, ',');
  put_duration(b, "compute_infer", &s->compute_infer);
  buf_putc(b, ',');
  put_duration(b, "compute_output", &s->compute_output);
  buf_puts(b, ",\"cache_hit\":{\"count\":0,\"ns\":0},\"cache_miss\":{\"count\":0,\"ns\":0}}");
  buf_puts(b, ",\"batch_stats\":[");
  bool first = true;
  for (int i = 0; s->batch && i <= s->max_batch; i++) {
    const batch_stats *bs = &s->batch[i];
    if (!stat_load(&bs->compute_infer.count)) continue;
    if (!first) buf_putc(b, ',');
    first = false;
    buf_puts(b, "{\"batch_size\":");
    buf_put_i64(b, i ? i : 1);
    buf_putc(b, ',');
    put_duration(b, "compute_input", &bs->compute_input);
    buf_putc(b, ',');
    put_duration(b, "compute_infer", &bs->compute_infer);
    buf_putc(b, ',');
    put_duration(b, "compute_output", &bs->compute_output);
    buf_putc(b, '}');
  }
  buf_puts(b, "],\"memory_usage\":[{\"type\":\"CPU\",\"id\":0,\"byte_size\":");
  buf_put_u64(b, mv->memory_bytes);
  buf_puts(b, "}]}");
}

typedef struct stats_walk {
  buf *b;
  bool first;
} stats_walk;

static void stats_of_model(const char *name, model *m, void *arg) {
  stats_walk *w = arg;
  if (!m) return;
  for (size_t i = 0; i < m->n_versions; i++) {
    if (atomic_load(&m->versions[i]->state) != MODEL_READY) continue;
    if (!w->first) buf_putc(w->b, ',');
    w->first = false;
    put_version_stats(w->b, m, m->versions[i]);
  }
}

static void all_stats(http_request *req, server *s) {
  stats_walk w = {&req->out, true};
  buf_puts(&req->out, "{\"model_stats\":[");
  repo_each(s->repo, false, stats_of_model, &w);
  buf_puts(&req->out, "]}");
  respond_json(req, 200);
}

static void model_stats_endpoint(http_request *req, model_version *mv, bool one_version) {
  buf *b = &req->out;
  buf_puts(b, "{\"model_stats\":[");
  if (one_version) {
    put_version_stats(b, mv->model, mv);
  } else {
    stats_walk w = {b, true};
    stats_of_model(mv->model->name, mv->model, &w);
  }
  buf_puts(b, "]}");
  respond_json(req, 200);
}

/* ---- inference ------------------------------------------------------------------- */

static void infer_release(http_request *http, void *arg) { infer_call_end(arg); }
static void infer_cancel(http_request *http, void *arg) { infer_call_cancel(arg); }

/* After the model ran: encode and answer. */
static void infer_done(infer_call *c) {
  http_request *http = c->user;
  err e = {0};
  int rc = c->status;
  if (rc < 0) {
    respond_error(http, rc, c->err.msg);
    return;
  }
  size_t n_blobs = 0;
  v2_blob *blobs = NULL;
  if (!http_reserve_blobs(http, c->res->n_outputs) ||
      !(blobs = arena_alloc(c->arena, (c->res->n_outputs + 1) * sizeof *blobs)))
    rc = err_set(&e, -ENOMEM, "out of memory");
  if (rc == 0) rc = v2_encode_infer_response(c->res, &http->out, blobs, &n_blobs, &e);
  if (rc < 0) {
    respond_error(http, rc, e.msg);
    return;
  }
  for (size_t i = 0; i < n_blobs; i++)
    http->blobs[i] = (struct iovec){(void *)blobs[i].data, blobs[i].size};
  http->n_blobs = n_blobs;
  if (n_blobs) {
    buf_puts(&http->headers, "Inference-Header-Content-Length: ");
    buf_put_u64(&http->headers, http->out.len);
    buf_append(&http->headers, "\r\n", 2);
    http->content_type = "application/octet-stream";
  } else {
    http->content_type = "application/json";
  }
  http->status = 200;
  http_respond(http);
}

/* Inference-Header-Content-Length as a number: -1 when absent, -2 when not
 * a number. */
static int64_t header_length(const http_head *h) {
  const http_header *hd = http1_find_header(h, "inference-header-content-length");
  if (!hd) return -1;
  if (hd->value_len == 0 || hd->value_len > 18) return -2;
  int64_t v = 0;
  for (size_t i = 0; i < hd->value_len; i++) {
    char c = hd->value[i];
    if (c < '0' || c > '9') return -2;
    v = v * 10 + (c - '0');
  }
  return v;
}

/* The raw binary request carries the one input's blob and nothing else:
 * its shape comes from the configuration, batch 1. */
static int decode_raw(const model_config *c, http_request *http, infer_request *req, err *e) {
  if (c->n_inputs != 1)
    return err_set(e, -EINVAL,
                   "a raw binary request (Inference-Header-Content-Length: 0) needs a model with "
                   "exactly one input; model '%s' has %zu",
                   c->name, c->n_inputs);
  const config_tensor *ct = &c->inputs[0];
  int64_t shape[INFERD_MAX_DIMS + 1];
  int n = 0;
  if (c->max_batch_size > 0) shape[n++] = 1;
  for (int i = 0; i < ct->ndim; i++)
    shape[n++] = ct->dims[i];
  return v2_decode_raw_request(http->body, http->body_len, ct->name, ct->dtype, shape, n, req, e);
}

static void infer(http_request *http, server *s, const char *name, int64_t version) {
  const http_header *enc = http1_find_header(&http->head, "content-encoding");
  if (enc && !(enc->value_len == 8 && strncmp(enc->value, "identity", 8) == 0)) {
    char msg[128];
    snprintf(msg, sizeof msg, "Content-Encoding '%.*s' is not supported",
             (int)(enc->value_len < 32 ? enc->value_len : 32), enc->value);
    http_set_error(http, 415, msg);
    http_respond(http);
    return;
  }
  infer_call *c = infer_call_new(s, http->loop);
  if (!c) {
    respond_error(http, -ENOMEM, "out of memory");
    return;
  }
  http->on_done = infer_release;
  http->on_cancel = infer_cancel;
  http->done_arg = c;
  c->done = infer_done;
  c->user = http;
  if (infer_call_model(c, name, version) < 0) {
    respond_error(http, c->err.code, c->err.msg);
    return;
  }
  const model_config *cfg = c->mv->model->config;
  int64_t hlen = header_length(&http->head);
  int rc;
  if (hlen == -2)
    rc = err_set(&c->err, -EINVAL, "Inference-Header-Content-Length is not a number");
  else if (hlen == 0 && http->body_len > 0)
    rc = decode_raw(cfg, http, &c->req, &c->err);
  else
    rc = v2_decode_infer_request(http->body, http->body_len, hlen, &c->req, &c->err);
  if (rc < 0) {
    infer_call_failed(c);
    respond_error(http, rc, c->err.msg);
    return;
  }
  infer_call_run(c);
}

/* ---- repository extension ------------------------------------------------------------ */

typedef struct index_walk {
  buf *b;
  bool first;
  bool ready_only;
} index_walk;

static void index_entry(index_walk *w, const char *name, const char *version, const char *state,
                        const char *reason) {
  if (!w->first) buf_putc(w->b, ',');
  w->first = false;
  buf_puts(w->b, "{\"name\":");
  json_put_cstr(w->b, name);
  if (version) {
    buf_puts(w->b, ",\"version\":");
    json_put_cstr(w->b, version);
  }
  buf_puts(w->b, ",\"state\":");
  json_put_cstr(w->b, state);
  buf_puts(w->b, ",\"reason\":");
  json_put_cstr(w->b, reason);
  buf_putc(w->b, '}');
}

static void index_of_model(const char *name, model *m, void *arg) {
  index_walk *w = arg;
  if (!m) {
    if (!w->ready_only) index_entry(w, name, NULL, "UNAVAILABLE", "unloaded");
    return;
  }
  if (m->n_versions == 0) {
    if (!w->ready_only) index_entry(w, name, NULL, model_state_name(m->state), m->reason);
    return;
  }
  for (size_t i = 0; i < m->n_versions; i++) {
    const model_version *mv = m->versions[i];
    model_state st = atomic_load(&mv->state);
    if (w->ready_only && st != MODEL_READY) continue;
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)mv->version);
    index_entry(w, name, v, model_state_name(st), st == MODEL_READY ? "" : mv->reason);
  }
}

static void repository_index(http_request *req, server *s) {
  bool ready_only = false;
  if (req->body_len) {
    arena *a = infer_arena_take();
    err e = {0};
    const json_value *v = NULL;
    if (!a)
      err_set(&e, -ENOMEM, "out of memory");
    else if (json_parse(a, req->body, req->body_len, 8, &v, &e) == 0) {
      const json_value *ready = json_get(v, "ready");
      if (v->type != JSON_OBJECT)
        err_set(&e, -EINVAL, "the index request must be a JSON object");
      else if (ready && ready->type != JSON_BOOL)
        err_set(&e, -EINVAL, "'ready' must be true or false");
      else
        ready_only = ready && ready->flags;
    }
    infer_arena_give(a);
    if (e.code) {
      respond_error(req, e.code, e.msg);
      return;
    }
  }
  index_walk w = {&req->out, true, ready_only};
  buf_putc(&req->out, '[');
  repo_each(s->repo, true, index_of_model, &w);
  buf_putc(&req->out, ']');
  respond_json(req, 200);
}

/* Load and unload take an optional JSON body with "parameters"; a config
 * override is not supported yet and is refused rather than ignored. */
static int check_control_body(http_request *req, bool load, err *e) {
  if (!req->body_len) return 0;
  arena *a = infer_arena_take();
  if (!a) return err_set(e, -ENOMEM, "out of memory");
  const json_value *v = NULL;
  int rc = json_parse(a, req->body, req->body_len, 16, &v, e);
  const json_value *p = rc == 0 ? json_get(v, "parameters") : NULL;
  if (rc < 0)
    ; /* e says why */
  else if (v->type != JSON_OBJECT)
    rc = err_set(e, -EINVAL, "the request body must be a JSON object");
  else if (p && p->type != JSON_OBJECT)
    rc = err_set(e, -EINVAL, "'parameters' must be an object");
  else if (p && load && json_get(p, "config"))
    rc = err_set(e, -ENOTSUP, "loading with a 'config' parameter is not supported yet");
  infer_arena_give(a);
  return rc;
}

static void repository_control(http_request *req, server *s, const char *name, bool load) {
  err e = {0};
  int rc = check_control_body(req, load, &e);
  if (rc == 0)
    rc = load ? repo_load_model(s->repo, name, &e) : repo_unload_model(s->repo, name, &e);
  if (rc < 0) {
    respond_error(req, rc, e.msg);
    return;
  }
  respond_empty(req, 200);
}

/* ---- routing ---------------------------------------------------------------------- */

static bool method_is(http_request *req, http_method m) {
  if (req->head.method == m || (m == HTTP_GET && req->head.method == HTTP_HEAD)) return true;
  http_set_error(req, 405, "Method Not Allowed");
  http_respond(req);
  return false;
}

static void not_found(http_request *req) {
  http_set_error(req, 404, "Not Found");
  http_respond(req);
}

/* /v2/models/{name}[/versions/{v}][/ready|/config|/infer|/stats] */
static void model_route(http_request *req, server *s, route *r) {
  const char *name = r->seg[2];
  if (!repo_valid_name(name)) {
    char msg[300];
    snprintf(msg, sizeof msg, "invalid model name '%.200s'", name);
    http_set_error(req, 400, msg);
    http_respond(req);
    return;
  }
  int64_t version = -1;
  int i = 3;
  if (r->n > i && strcmp(r->seg[i], "versions") == 0) {
    if (r->n == i + 1 || !repo_parse_version(r->seg[i + 1], &version)) {
      if (r->n == i + 1) return not_found(req);
      http_set_error(req, 400, "the model version must be a whole number");
      http_respond(req);
      return;
    }
    i += 2;
  }
  const char *action = r->n > i ? r->seg[i] : "";
  if (r->n > i + 1) return not_found(req);
  if (strcmp(action, "infer") == 0) {
    if (method_is(req, HTTP_POST)) infer(req, s, name, version);
    return;
  }
  bool known = !action[0] || !strcmp(action, "ready") || !strcmp(action, "config") ||
               !strcmp(action, "stats");
  if (!known) return not_found(req);
  if (!method_is(req, HTTP_GET)) return;
  err e = {0};
  model_version *mv = repo_acquire(s->repo, name, version, &e);
  if (strcmp(action, "ready") == 0) {
    if (mv)
      respond_empty(req, 200);
    else {
      http_set_error(req, 400, e.msg);
      http_respond(req);
    }
  } else if (!mv) {
    respond_error(req, e.code, e.msg);
  } else if (!action[0]) {
    model_metadata(req, mv, version >= 0);
  } else if (strcmp(action, "config") == 0) {
    model_config_endpoint(req, mv);
  } else {
    model_stats_endpoint(req, mv, version >= 0);
  }
  model_version_release(mv);
}

void api_handle(http_request *req, void *ctx) {
  server *s = ctx;
  route r;
  if (!split_path(req->head.path, req->head.path_len, &r)) {
    http_set_error(req, 400, "malformed request path");
    http_respond(req);
    return;
  }
  if (r.n < 1 || strcmp(r.seg[0], "v2") != 0) return not_found(req);
  if (r.n == 1) {
    if (method_is(req, HTTP_GET)) server_metadata(req);
    return;
  }
  const char *area = r.seg[1];
  if (strcmp(area, "health") == 0 && r.n == 3) {
    bool live = strcmp(r.seg[2], "live") == 0, ready = strcmp(r.seg[2], "ready") == 0;
    if (!live && !ready) return not_found(req);
    if (!method_is(req, HTTP_GET)) return;
    bool ok = live || (!atomic_load(&s->stopping) && repo_ready(s->repo));
    respond_empty(req, ok ? 200 : 400);
    return;
  }
  if (strcmp(area, "models") == 0 && r.n >= 3) {
    if (r.n == 3 && strcmp(r.seg[2], "stats") == 0) {
      if (method_is(req, HTTP_GET)) all_stats(req, s);
      return;
    }
    model_route(req, s, &r);
    return;
  }
  if (strcmp(area, "repository") == 0) {
    if (r.n == 3 && strcmp(r.seg[2], "index") == 0) {
      if (method_is(req, HTTP_POST)) repository_index(req, s);
      return;
    }
    if (r.n == 5 && strcmp(r.seg[2], "models") == 0 &&
        (strcmp(r.seg[4], "load") == 0 || strcmp(r.seg[4], "unload") == 0)) {
      if (!method_is(req, HTTP_POST)) return;
      if (!repo_valid_name(r.seg[3])) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid model name '%.200s'", r.seg[3]);
        http_set_error(req, 400, msg);
        http_respond(req);
        return;
      }
      repository_control(req, s, r.seg[3], strcmp(r.seg[4], "load") == 0);
      return;
    }
  }
  not_found(req);
}
