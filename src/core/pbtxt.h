/* core/pbtxt.h: the protobuf text format (config.pbtxt), read into a generic
 * tree and checked against a description of the message it should hold.
 *
 * pbtxt_parse knows the syntax only: fields `name: value`, `name { ... }`,
 * `name: { ... }`, `name < ... >`, lists `name: [1, 2]` and
 * `name [ {..}, {..} ]`, identifiers (enum names, true, inf), integers
 * (decimal, 0x hex, 0 octal, with a leading '-'), floats (1.5, .5, 1e-3,
 * 2.5f), strings in "..." or '...' with C escapes (adjacent strings are one
 * string), `#` comments, and an optional `,` or `;` after each field.
 *
 * A list is shorthand for writing the field several times, so the tree holds
 * one node per element and `dims: [1, 2]` reads exactly like `dims: 1 dims:
 * 2` (the nodes are flagged in_list). An empty list leaves no node.
 *
 * pbtxt_check then walks the tree with a pbtxt_message table: it refuses
 * unknown fields, values of the wrong kind or out of range, unknown enum
 * names, a singular field written twice, two members of one oneof, and lists
 * on singular fields; it records in every node the index of its field, so
 * that a reader can switch on it.
 *
 * The parser reads only the bytes it is given (no NUL needed), runs in time
 * linear in the input, nests at most PBTXT_MAX_DEPTH messages deep, and
 * reports errors as "source:line:column: what was expected, got what". */
#ifndef INFERD_CORE_PBTXT_H
#define INFERD_CORE_PBTXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

/* Messages nested deeper than this are refused (Triton's deepest is 7). */
#define PBTXT_MAX_DEPTH 32
/* Most fields one pbtxt_message may describe. */
#define PBTXT_MAX_FIELDS 64

/* 1-based; columns count bytes. */
typedef struct pbtxt_pos {
  uint32_t line;
  uint32_t col;
} pbtxt_pos;

typedef enum pbtxt_kind {
  PBTXT_MESSAGE, /* { ... } or < ... >: the fields are in child */
  PBTXT_IDENT,   /* an identifier: an enum name, true, false, inf, nan */
  PBTXT_INT,     /* an integer as written: 12, 0x1f, 017 */
  PBTXT_FLOAT,   /* a number with '.', an exponent or an f suffix */
  PBTXT_STRING,  /* a string, escapes decoded, adjacent strings joined */
} pbtxt_kind;

typedef struct pbtxt_node {
  const char *name; /* the field name; NULL for the root */
  pbtxt_kind kind;
  bool negative; /* a '-' came before the number or identifier */
  bool in_list;  /* written as an element of [ ... ] */
  /* Scalars: the token's text (without the '-'), or the decoded bytes of a
   * string. NUL-terminated; a string may hold NUL bytes, so use len. */
  const char *text;
  size_t len;
  pbtxt_pos pos;            /* where the field name is */
  pbtxt_pos vpos;           /* where the value starts */
  struct pbtxt_node *child; /* MESSAGE: its first field */
  struct pbtxt_node *next;  /* the next field of the enclosing message */
  int field;                /* set by pbtxt_check: index in the message's fields; -1 before */
} pbtxt_node;

/* Parses text[0..len) into a tree allocated from a; *root is a MESSAGE node
 * holding the top-level fields. source names the text in error messages
 * ("config.pbtxt"; NULL for none). Returns 0, -EINVAL for a syntax error,
 * -E2BIG for text over 4 GiB, -ENOMEM. */
int pbtxt_parse(arena *a, const char *text, size_t len, const char *source, pbtxt_node **root,
                err *e);

/* ---- conversions ---------------------------------------------------------- */

/* Each returns 0, -EINVAL when the node is not of a kind that converts, or
 * -ERANGE when the value does not fit. */
int pbtxt_to_int64(const pbtxt_node *n, int64_t *out);
int pbtxt_to_uint64(const pbtxt_node *n, uint64_t *out);
/* Integers, floats, and inf / infinity / nan in any case. */
int pbtxt_to_double(const pbtxt_node *n, double *out);
/* true / True / t / 1 and false / False / f / 0, as protobuf reads them. */
int pbtxt_to_bool(const pbtxt_node *n, bool *out);

/* The value as written, for messages: "\"FP32\"", "-12", "TYPE_FP32", "a
 * message { ... }"; long values are cut short with "...". Returns out. */
const char *pbtxt_describe(const pbtxt_node *n, char *out, size_t size);

/* err_set with "source:line:col: " in front of the message (source may be
 * NULL). Returns -EINVAL. */
int pbtxt_error_at(err *e, const char *source, pbtxt_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- schemas -------------------------------------------------------------- */

typedef enum pbtxt_type {
  PBTXT_TYPE_STRING,
  PBTXT_TYPE_BOOL,
  PBTXT_TYPE_INT32,
  PBTXT_TYPE_INT64,
  PBTXT_TYPE_UINT32,
  PBTXT_TYPE_UINT64,
  PBTXT_TYPE_FLOAT,
  PBTXT_TYPE_DOUBLE,
  PBTXT_TYPE_ENUM,
  PBTXT_TYPE_MESSAGE,
} pbtxt_type;

/* An enum whose values are 0 .. n-1; names[v] names value v. */
typedef struct pbtxt_enum {
  const char *const *names;
  int n;
  const char *example; /* for messages: "must be an enum like TYPE_FP32" */
} pbtxt_enum;

struct pbtxt_message;

typedef struct pbtxt_field {
  const char *name;
  pbtxt_type type;
  bool repeated;
  uint8_t oneof;                       /* the members of one oneof share a number > 0 */
  const struct pbtxt_message *message; /* PBTXT_TYPE_MESSAGE */
  const pbtxt_enum *enumeration;       /* PBTXT_TYPE_ENUM */
} pbtxt_field;

/* A protobuf message. A map<K, V> field is a repeated message of an entry
 * type with the fields `key` and `value`, as the text format writes it. */
typedef struct pbtxt_message {
  const char *name;
  const pbtxt_field *fields;
  int n_fields; /* at most PBTXT_MAX_FIELDS */
} pbtxt_message;

/* Checks the tree under root against schema and sets every node's field.
 * Returns 0 or -EINVAL with a message naming the place and the field by its
 * path ("config.pbtxt:3:5: unknown field 'dimz' in input"). */
int pbtxt_check(pbtxt_node *root, const pbtxt_message *schema, const char *source, err *e);

/* The value of an enum node (by name, or by number as protobuf allows), or -1
 * when it names no value of en. */
int pbtxt_enum_value(const pbtxt_node *n, const pbtxt_enum *en);

#endif
