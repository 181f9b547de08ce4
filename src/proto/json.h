/* proto/json.h: a strict JSON (RFC 8259) parser that builds a read-only tree
 * in an arena.
 *
 * The tree lives as long as the arena, and strings may point into the parsed
 * text (those without escapes are not copied), so the text must live as long
 * too: for a request, both are the request's. Strings are spans, not
 * NUL-terminated; use json_strdup for a C string.
 *
 * Numbers are kept as their text and converted on demand, exactly: the same
 * text read as an int64, a uint64, a double or a float gives the correctly
 * rounded value of that type, or a range error. Besides RFC 8259, the tokens
 * NaN, Infinity and -Infinity are numbers (Python's json writes them).
 *
 * The parser never reads outside the span, keeps no recursion (an explicit
 * stack bounded by max_depth), and does a constant amount of work per byte. */
#ifndef INFERD_PROTO_JSON_H
#define INFERD_PROTO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"

typedef enum json_type {
  JSON_NULL = 0,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_type;

/* Flags of a JSON_NUMBER: what its text holds. */
#define JSON_NUM_NEG  0x01 /* a leading '-' */
#define JSON_NUM_FRAC 0x02 /* a '.' fraction */
#define JSON_NUM_EXP  0x04 /* an exponent */
#define JSON_NUM_NAN  0x08 /* the token NaN */
#define JSON_NUM_INF  0x10 /* Infinity or -Infinity */

typedef struct json_value json_value;
typedef struct json_member json_member;

/* A number's digit counts are recorded by the parser so that a conversion
 * does not look for the point again; they are 0 for any other value. */
struct json_value {
  uint8_t type;   /* json_type */
  uint8_t flags;  /* JSON_BOOL: the value (0 or 1); JSON_NUMBER: JSON_NUM_* */
  uint8_t n_int;  /* JSON_NUMBER: digits before the point (255: that many or more) */
  uint8_t n_frac; /* JSON_NUMBER: digits after the point (255: that many or more) */
  uint32_t len;   /* string: bytes; number: bytes of text; array: items; object: members */
  union {
    const char *s; /* string (unescaped) or number text */
    const json_value *items;
    const json_member *members; /* in the order of the text, duplicates kept */
  } u;
};

struct json_member {
  json_value key; /* a JSON_STRING */
  json_value value;
};

/* Parses text[0..len) into *root. max_depth bounds the nesting of arrays and
 * objects (1: no container inside the top-level one). On error returns
 * -EINVAL (-E2BIG for a text of 4 GiB or more, -ENOMEM when the arena is
 * exhausted) with a message that says what and where: "invalid JSON at byte
 * 17: expected ',' or '}' after object member". */
int json_parse(arena *a, const char *text, size_t len, int max_depth, const json_value **root,
               err *e);

/* The first member of object obj named key, or NULL (also when obj is not an
 * object). */
const json_value *json_get(const json_value *obj, const char *key);

/* Whether v is a string equal to lit. (Inline: with a literal, the length
 * is a constant.) */
static inline bool json_eq(const json_value *v, const char *lit) {
  size_t n = strlen(lit);
  return v->type == JSON_STRING && v->len == n && memcmp(v->u.s, lit, n) == 0;
}

/* "null", "bool", "number", "string", "array" or "object", for messages. */
const char *json_type_name(const json_value *v);

/* A NUL-terminated copy of string v in a; NULL when out of memory. */
char *json_strdup(arena *a, const json_value *v);

/* Integer value of number v: 0, -EINVAL when v is not an integer (not a
 * number, a fraction or exponent, NaN, Infinity), -ERANGE when it does not fit
 * ("18446744073709551616" for a uint64, "-1" for a uint64). *out is set only
 * on success. */
int json_number_i64(const json_value *v, int64_t *out);
int json_number_u64(const json_value *v, uint64_t *out);

/* The number v correctly rounded to a double or a float (overflow gives an
 * infinity, underflow zero, as strtod). v must be a JSON_NUMBER. */
double json_number_f64(const json_value *v);
float json_number_f32(const json_value *v);

#endif
