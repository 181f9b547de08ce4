/* core/json_write.h: writing JSON into a buf: strings with escaping, and
 * numbers in their shortest form that reads back to the same value. Every
 * layer that answers in JSON (protocol, configuration, metadata) uses these. */
#ifndef INFERD_CORE_JSON_WRITE_H
#define INFERD_CORE_JSON_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Writes s[0..n) as a quoted JSON string. Returns false (writing nothing)
 * when s is not valid UTF-8. */
bool json_put_string(buf *b, const char *s, size_t n);
/* The same for a NUL-terminated string known to be UTF-8 (names, messages);
 * invalid bytes are replaced by U+FFFD. */
void json_put_cstr(buf *b, const char *s);

/* Shortest decimal that reads back as the same float (0.1f -> 0.1). NaN and
 * infinities as the tokens NaN, Infinity, -Infinity (as Python's json). */
void json_put_f32(buf *b, float v);
void json_put_f64(buf *b, double v);

#endif
