/* b64.h — base64 (RFC 4648 section 4, padded), strict base64url without
 * padding (RFC 4648 section 5, as PASETO uses it) and lowercase hex.
 *
 * Decoders are strict: no whitespace, no characters outside the alphabet,
 * padding exactly where RFC 4648 puts it (base64) or none at all (base64url),
 * and the unused trailing bits of the last character must be zero, so every
 * byte string has exactly one accepted encoding.
 *
 * All functions are pure and thread-safe; none allocates.
 */
#ifndef ALLOT_COMMON_B64_H
#define ALLOT_COMMON_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Encoded length (without the NUL) of n bytes. */
size_t b64_encoded_len(size_t n);      /* padded:   4 * ceil(n / 3) */
size_t b64url_encoded_len(size_t n);   /* unpadded: ceil(4 * n / 3) */
/* Upper bound of the decoded length of n characters (both alphabets). */
size_t b64_decoded_max(size_t n);

/* Encode n bytes of in into out, which must hold *_encoded_len(n) + 1 bytes;
 * out is NUL-terminated.  Returns the encoded length. */
size_t b64_encode(const void *in, size_t n, char *out);
size_t b64url_encode(const void *in, size_t n, char *out);

/* Decode n characters of in into out (capacity cap bytes).
 * Returns ALLOT_OK, ALLOT_E_INVALID (not canonical encoding in the alphabet)
 * or ALLOT_E_TOO_LARGE (cap too small).  OUT: *outlen on success only;
 * out may be partly written on failure. */
allot_err b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);
allot_err b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* Lowercase hex; out must hold 2 * n + 1 bytes; NUL-terminated. */
void hex_encode(const void *in, size_t n, char *out);
/* Decodes n hex characters (either case) into out (capacity cap).
 * Returns ALLOT_OK, ALLOT_E_INVALID (odd length, non-hex character) or
 * ALLOT_E_TOO_LARGE (n / 2 > cap).  OUT: *outlen on success only. */
allot_err hex_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* v in base 64 over the alphabet "-0-9A-Z_a-z" (ASCII order, so equal
 * widths compare as the numbers do; the characters of base64url), at least
 * width digits ('-', the zero digit, in front; width 1..11).  out must
 * hold 12 bytes; NUL-terminated.  Returns the length. */
size_t b64sort_u64(uint64_t v, int width, char *out);

#endif
