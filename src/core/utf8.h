/* core/utf8.h: UTF-8 checking and encoding, shared by every reader and
 * writer of text (JSON, config.pbtxt). Valid means shortest form, no
 * surrogates, nothing above U+10FFFF. */
#ifndef INFERD_CORE_UTF8_H
#define INFERD_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence at s (n >= 1 bytes available), or 0 when it
 * is not a valid encoding of a scalar value. */
size_t utf8_seq(const unsigned char *s, size_t n);

/* Whether s[0..n) is valid UTF-8. */
bool utf8_valid(const unsigned char *s, size_t n);

/* Writes code point cp (<= U+10FFFF, not a surrogate) to out, which has room
 * for 4 bytes; returns the bytes written. */
size_t utf8_encode(unsigned char *out, uint32_t cp);

#endif
