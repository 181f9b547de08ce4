/* fuzz/fuzz_http.c: libFuzzer driver for the HTTP/1.1 request parser: finds
 * the head (all at once and in uneven pieces, which must agree), parses it,
 * and decodes a chunked body when the head asks for one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);

  size_t scanned = 0;
  size_t end = http1_head_end(buf, size, &scanned);
  /* The same bytes arriving in pieces of growing size. */
  size_t scanned2 = 0, end2 = 0, have = 0, step = 1;
  while (!end2 && have < size) {
    have = have + step < size ? have + step : size;
    end2 = http1_head_end(buf, have, &scanned2);
    step = step * 2 + 1;
  }
  if (end != end2) abort();

  http_head h;
  err e = {0};
  if (end && http1_parse_head(buf, end, &h, &e) == 0) {
    if (h.path_len > end || h.n_headers > HTTP_MAX_HEADERS) abort();
    (void)http1_find_header(&h, "content-length");
    if (h.chunked) {
      http_chunked c = {0};
      size_t in = end, out = end;
      int rc = http1_chunked_decode(&c, buf, size, &in, &out, &e);
      if (out > in || in > size || (rc < 0 && !e.msg[0])) abort();
    }
  } else if (end && !e.msg[0]) {
    abort(); /* every error carries a message */
  }
  free(buf);
  return 0;
}
