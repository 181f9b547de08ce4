/* fuzz/fuzz_onnx.c: libFuzzer driver for the ONNX model loader: the bytes
 * as a model file (protobuf parse, graph checks, operator attributes,
 * constant folding, fusions, layouts), and, for a model that loads, a plan
 * for its declared input shapes (a variable dimension taken as 1 or 2). Bad
 * models must fail with a message, never crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "backends/onnx/onnx_graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  onnx_model *m = NULL;
  err e = {0};
  if (onnx_model_parse(data, size, &m, &e) != 0) {
    if (!e.msg[0]) abort(); /* every refusal says why */
    return 0;
  }
  onnx_model_prune(m);
  size_t n = m->n_inputs;
  int *ndims = calloc(n + 1, sizeof *ndims);
  int64_t(*shapes)[ONNX_MAX_DIMS] = calloc(n + 1, sizeof *shapes);
  if (ndims && shapes) {
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
      const onnx_tensor *t = &m->values[m->inputs[i]].t;
      ok = t->ndim >= 0 && t->ndim <= ONNX_MAX_DIMS;
      ndims[i] = ok ? t->ndim : 0;
      for (int d = 0; ok && d < t->ndim; d++) {
        int64_t v = t->dims[d] < 0 ? 1 + (int64_t)(size % 2) : t->dims[d];
        ok = v <= 4096; /* keep the fuzzer's memory small */
        shapes[i][d] = v;
      }
    }
    onnx_plan *p = NULL;
    if (ok && onnx_plan_build(m, ndims, (const int64_t(*)[ONNX_MAX_DIMS])shapes, NULL, &p, &e) == 0)
      onnx_plan_free(p);
  }
  free(ndims);
  free(shapes);
  onnx_model_free(m);
  return 0;
}
