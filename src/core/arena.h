/* core/arena.h: memory by lifetime. An arena hands out pieces of a few large
 * chunks and frees them all at once: one per request, reset when the response
 * is written. */
#ifndef INFERD_CORE_ARENA_H
#define INFERD_CORE_ARENA_H

#include <stddef.h>

typedef struct arena arena;

/* An arena whose first chunk holds `first` bytes (later chunks grow). */
arena *arena_create(size_t first);
void arena_destroy(arena *a);

/* Frees everything allocated, keeping the first chunk for reuse. */
void arena_reset(arena *a);

/* n bytes, 16-byte aligned, or NULL when out of memory. */
void *arena_alloc(arena *a, size_t n);
/* n bytes aligned to align (a power of two up to 4096). */
void *arena_alloc_aligned(arena *a, size_t n, size_t align);
/* n zeroed bytes. */
void *arena_calloc(arena *a, size_t count, size_t size);
/* A NUL-terminated copy of s[0..n). */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);

/* Bytes handed out since creation or the last reset. */
size_t arena_used(const arena *a);

#endif
