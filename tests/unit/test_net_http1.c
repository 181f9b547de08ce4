/* Unit tests for net/http1: the request-head parser and the chunked
 * decoder, valid and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/http1.h"

/* Finds the head's end, feeding the bytes one at a time as a slow client
 * would, and checks that the answer is the same as all at once. */
static size_t head_end_bytewise(const char *s) {
  size_t len = strlen(s), scanned = 0, end = 0;
  for (size_t i = 1; i <= len && !end; i++)
    end = http1_head_end(s, i, &scanned);
  size_t scanned2 = 0;
  assert_int_equal(end, http1_head_end(s, len, &scanned2));
  return end;
}

static int parse(const char *s, http_head *h, err *e) {
  size_t end = head_end_bytewise(s);
  assert_true(end > 0);
  return http1_parse_head(s, end, h, e);
}

static void expect_error(const char *s, int code, const char *needle) {
  http_head h;
  err e = {0};
  size_t scanned = 0;
  size_t end = http1_head_end(s, strlen(s), &scanned);
  assert_true(end > 0);
  int rc = http1_parse_head(s, end, &h, &e);
  assert_int_equal(rc, code);
  if (!strstr(e.msg, needle)) fail_msg("message '%s' lacks '%s' for %s", e.msg, needle, s);
}

static void simple_get(void **state) {
  http_head h;
  err e = {0};
  const char *req = "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(parse(req, &h, &e), 0);
  assert_int_equal(h.method, HTTP_GET);
  assert_int_equal(h.path_len, strlen("/v2/health/ready"));
  assert_memory_equal(h.path, "/v2/health/ready", h.path_len);
  assert_null(h.query);
  assert_int_equal(h.minor_version, 1);
  assert_int_equal(h.n_headers, 1);
  assert_int_equal(h.content_length, -1);
  assert_true(h.keep_alive);
  assert_false(h.chunked);
}

static void post_with_headers(void **state) {
  http_head h;
  err e = {0};
  const char *req = "POST /v2/models/m/infer?x=1 HTTP/1.1\r\n"
                    "Content-Length:  12 \r\n"
                    "Inference-Header-Content-Length: 10\r\n"
                    "Expect: 100-continue\r\n"
                    "Connection: keep-alive, Upgrade\r\n\r\nbody...";
  assert_int_equal(parse(req, &h, &e), 0);
  assert_int_equal(h.method, HTTP_POST);
  assert_int_equal(h.content_length, 12);
  assert_true(h.expect_continue);
  assert_int_equal(h.query_len, 3);
  assert_memory_equal(h.query, "x=1", 3);
  const http_header *ih = http1_find_header(&h, "inference-header-content-length");
  assert_non_null(ih);
  assert_int_equal(ih->value_len, 2);
  assert_memory_equal(ih->value, "10", 2);
  assert_null(http1_find_header(&h, "content-type"));
}

static void keep_alive_rules(void **state) {
  http_head h;
  err e = {0};
  assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h, &e), 0);
  assert_false(h.keep_alive);
  assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, &e), 0);
  assert_true(h.keep_alive);
  assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &h, &e), 0);
  assert_false(h.keep_alive);
}

static void lenient_line_ends(void **state) {
  http_head h;
  err e = {0};
  /* bare LF, and empty lines before the request line */
  assert_int_equal(parse("\r\n\r\nGET /a HTTP/1.1\nHost: y\n\n", &h, &e), 0);
  assert_int_equal(h.path_len, 2);
  assert_int_equal(h.n_headers, 1);
}

static void chunked_framing(void **state) {
  http_head h;
  err e = {0};
  assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &e), 0);
  assert_true(h.chunked);
  assert_int_equal(h.content_length, -1);
}

/* A head struct reused for the next request starts clean. */
static void reuse_resets_framing(void **state) {
  http_head h;
  err e = {0};
  assert_int_equal(
      parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", &h,
            &e),
      0);
  assert_true(h.chunked && h.expect_continue);
  assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n", &h, &e), 0);
  assert_false(h.chunked);
  assert_false(h.expect_continue);
  assert_int_equal(h.content_length, 2);
}

static void head_not_complete(void **state) {
  size_t scanned = 0;
  const char *s = "GET / HTTP/1.1\r\nHost: x\r\n";
  assert_int_equal(http1_head_end(s, strlen(s), &scanned), 0);
  assert_int_equal(scanned, strlen(s));
  scanned = 0;
  assert_int_equal(http1_head_end("\r\n\r\n", 4, &scanned), 0);
}

static void malformed_heads(void **state) {
  expect_error("GET  / HTTP/1.1\r\n\r\n", -EINVAL, "target");
  expect_error("G(T / HTTP/1.1\r\n\r\n", -EINVAL, "method");
  expect_error("GET /\x01 HTTP/1.1\r\n\r\n", -EINVAL, "target");
  expect_error("GET / HTTP/1.1 \r\n\r\n", -EINVAL, "version");
  expect_error("GET / HTTX/1.1\r\n\r\n", -EINVAL, "version");
  expect_error("GET / HTTP/2.0\r\n\r\n", -ENOTSUP, "not supported");
  expect_error("GET /\r\n\r\n", -EINVAL, "target");
  expect_error("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", -EINVAL, "header");
  expect_error("GET / HTTP/1.1\r\n: empty name\r\n\r\n", -EINVAL, "header");
  expect_error("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", -EINVAL, "header");
  expect_error("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -EINVAL, "folded");
  expect_error("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -EINVAL, "control");
  expect_error("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", -EINVAL, "Content-Length");
  expect_error("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -EINVAL, "Content-Length");
  expect_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", -EINVAL,
               "too large");
  expect_error("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", -EINVAL,
               "conflicting");
  expect_error("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", -EINVAL, "conflicting");
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", -ENOTSUP, "chunked");
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", -ENOTSUP,
               "chunked");
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
               -EINVAL, "both");
  expect_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -EINVAL, "HTTP/1.0");
}

static void repeated_equal_content_length(void **state) {
  http_head h;
  err e = {0};
  assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n", &h, &e), 0);
  assert_int_equal(h.content_length, 7);
}

static void too_many_headers(void **state) {
  char req[8192] = "GET / HTTP/1.1\r\n";
  for (int i = 0; i <= HTTP_MAX_HEADERS; i++) {
    char line[32];
    snprintf(line, sizeof line, "H%d: v\r\n", i);
    strcat(req, line);
  }
  strcat(req, "\r\n");
  expect_error(req, -E2BIG, "too many");
}

/* Decodes a chunked body fed in pieces of `step` bytes. */
static int decode_in_steps(const char *body, size_t step, char *out, size_t *out_len, err *e) {
  char work[1024];
  size_t len = strlen(body);
  assert_true(len < sizeof work);
  http_chunked c = {0};
  size_t in = 0, o = 0, have = 0;
  int rc = 0;
  while (rc == 0 && have < len) {
    size_t add = len - have < step ? len - have : step;
    memcpy(work + have, body + have, add);
    have += add;
    rc = http1_chunked_decode(&c, work, have, &in, &o, e);
    if (rc == 0) {
      /* as the server does: keep the undecoded tail right after the payload */
      memmove(work + o, work + in, have - in);
      size_t shift = in - o;
      have -= shift;
      len -= shift;
      body += shift;
      in = o;
    }
  }
  memcpy(out, work, o);
  *out_len = o;
  return rc;
}

static void chunked_decoding(void **state) {
  const char *body =
      "4\r\nWiki\r\n5;name=val\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step = 1; step <= strlen(body); step++) {
    char out[256];
    size_t n;
    err e = {0};
    assert_int_equal(decode_in_steps(body, step, out, &n, &e), 1);
    assert_int_equal(n, strlen("Wikipedia in\r\n\r\nchunks."));
    assert_memory_equal(out, "Wikipedia in\r\n\r\nchunks.", n);
  }
}

static void chunked_stops_at_message_end(void **state) {
  char buf[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  http_chunked c = {0};
  size_t in = 0, out = 0;
  err e = {0};
  assert_int_equal(http1_chunked_decode(&c, buf, strlen(buf), &in, &out, &e), 1);
  assert_int_equal(out, 3);
  assert_memory_equal(buf + in, "GET", 3);
}

static void chunked_malformed(void **state) {
  const char *bad[] = {
      "x\r\n",                 /* not hex */
      "\r\n",                  /* empty size */
      "4\r\nWikiX\r\n",        /* data longer than size */
      "4\r\nWiki\rX",          /* CR without LF */
      "1234567890abcdef0\r\n", /* size too large */
      "4;\x01\r\n",            /* control in extension */
      "0\r\n\rX",              /* bad end */
      "4\rX",                  /* bad size line */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char work[64];
    strcpy(work, bad[i]);
    http_chunked c = {0};
    size_t in = 0, out = 0;
    err e = {0};
    int rc = http1_chunked_decode(&c, work, strlen(work), &in, &out, &e);
    if (rc != -EINVAL) fail_msg("case %zu: rc %d", i, rc);
    assert_true(strlen(e.msg) > 0);
  }
}

static void reasons(void **state) {
  assert_string_equal(http1_reason(200), "OK");
  assert_string_equal(http1_reason(431), "Request Header Fields Too Large");
  assert_string_equal(http1_reason(999), "Unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(simple_get),
      cmocka_unit_test(post_with_headers),
      cmocka_unit_test(keep_alive_rules),
      cmocka_unit_test(lenient_line_ends),
      cmocka_unit_test(chunked_framing),
      cmocka_unit_test(head_not_complete),
      cmocka_unit_test(malformed_heads),
      cmocka_unit_test(repeated_equal_content_length),
      cmocka_unit_test(too_many_headers),
      cmocka_unit_test(chunked_decoding),
      cmocka_unit_test(chunked_stops_at_message_end),
      cmocka_unit_test(chunked_malformed),
      cmocka_unit_test(reasons),
      cmocka_unit_test(reuse_resets_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
