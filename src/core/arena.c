/* core/arena.c: chunked bump allocator. Large requests get a chunk of their
 * own so that the next small allocations still fill the current one. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t size; /* usable bytes after the header */
  size_t used;
  _Alignas(64) unsigned char data[];
} chunk;

struct arena {
  chunk *head; /* current chunk; the list ends with the first one */
  chunk *first;
  size_t first_size;
  size_t used;
};

static chunk *chunk_new(size_t size) {
  chunk *c = malloc(sizeof *c + size);
  if (!c) return NULL;
  c->next = NULL;
  c->size = size;
  c->used = 0;
  return c;
}

arena *arena_create(size_t first) {
  arena *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  if (first < 256) first = 256;
  a->first = a->head = chunk_new(first);
  if (!a->first) {
    free(a);
    return NULL;
  }
  a->first_size = first;
  return a;
}

void arena_destroy(arena *a) {
  if (!a) return;
  arena_reset(a);
  free(a->first);
  free(a);
}

void arena_reset(arena *a) {
  chunk *c = a->head;
  while (c != a->first) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = a->first;
  a->first->used = 0;
  a->used = 0;
}

void *arena_alloc_aligned(arena *a, size_t n, size_t align) {
  chunk *c = a->head;
  uintptr_t base = (uintptr_t)c->data;
  size_t off = ((base + c->used + align - 1) & ~(uintptr_t)(align - 1)) - base;
  if (off > c->size || n > c->size - off) {
    /* A new chunk: at least twice the last one, and big enough for n. */
    size_t size = c->size * 2;
    if (size < n + align) size = n + align;
    if (size < n) return NULL; /* overflow */
    chunk *nc = chunk_new(size);
    if (!nc) return NULL;
    nc->next = a->head;
    a->head = c = nc;
    base = (uintptr_t)c->data;
    off = ((base + align - 1) & ~(uintptr_t)(align - 1)) - base;
  }
  c->used = off + n;
  a->used += n;
  return c->data + off;
}

void *arena_alloc(arena *a, size_t n) { return arena_alloc_aligned(a, n, 16); }

void *arena_calloc(arena *a, size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = arena_alloc(a, count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
  char *p = arena_alloc_aligned(a, n + 1, 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

size_t arena_used(const arena *a) { return a->used; }
