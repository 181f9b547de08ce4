/* core/request.c: helpers on requests and their parameters. */
#include "core/request.h"

#include <math.h>
#include <string.h>

const param *param_find(const param_list *l, const char *key) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].key, key) == 0) return &l->items[i];
  return NULL;
}

bool param_int(const param *p, int64_t *out) {
  if (!p) return false;
  switch (p->type) {
  case PARAM_INT64: *out = p->v.i; return true;
  case PARAM_UINT64:
    if (p->v.u > INT64_MAX) return false;
    *out = (int64_t)p->v.u;
    return true;
  case PARAM_DOUBLE:
    if (p->v.d != floor(p->v.d) || fabs(p->v.d) > 9.0e18) return false;
    *out = (int64_t)p->v.d;
    return true;
  default: return false;
  }
}
