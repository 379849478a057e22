/* hex — hexadecimal digits to bytes and back, for the places where bytes
 * travel as text (ACL password hashes, forward-link tokens, RESP inline
 * escapes). Pure, no allocation. */
#ifndef COHORT_HEX_H
#define COHORT_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit, or -1; uppercase digits count only when
 * upper is true. */
int hex_digit(char c, bool upper);
/* Exactly 2 * size digits into size bytes; false (out partly written) on a
 * wrong length or a non-digit. */
bool hex_decode(const char *hex, size_t hex_size, bool upper, uint8_t *out,
                size_t size);
/* size bytes as 2 * size lowercase digits and a NUL (out holds
 * 2 * size + 1). */
void hex_encode(const uint8_t *bytes, size_t size, char *out);

#endif
