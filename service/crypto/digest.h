/* digest.h — SHA-256 of a byte string, the implementation fetched once per
 * process (records' canonical bytes, log leaves).
 *
 * Thread-safety: reentrant.
 */
#ifndef ALLOT_CRYPTO_DIGEST_H
#define ALLOT_CRYPTO_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of p[0..n).  Aborts only when OpenSSL cannot allocate a context
 * (a wrong hash is worse). */
void digest_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
