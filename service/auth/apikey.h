/* apikey.h — API keys: random 32-byte secrets shown once, stored as SHA-256.
 *
 * The secret's text form is "allot_" followed by 64 hex digits.  Lookups are
 * by hash; the stored hash is compared again in constant time, and an
 * unknown, malformed, wrong or revoked key all get the same answer.
 */
#ifndef ALLOT_AUTH_APIKEY_H
#define ALLOT_AUTH_APIKEY_H

#include <stdint.h>

#include "auth/principal.h"
#include "common/err.h"
#include "store/store.h"

#define APIKEY_PREFIX "allot_"
#define APIKEY_SECRET_LEN (6 + 64)
#define APIKEY_SECRET_MAX (APIKEY_SECRET_LEN + 1)

/* Random bytes in a key id: 64 bits, so ids do not collide in practice. */
#define APIKEY_ID_RANDOM_BYTES 8

/* A fresh id: prefix followed by 16 random hex digits.  Ids are public
 * (the audit log shows them), so an id never depends on its secret. */
allot_err apikey_random_id(const char *prefix, char id[STORE_ID_MAX]);
/* Fresh secret and its hash; a fresh id "key_<16 hex>". */
allot_err apikey_generate(char secret[APIKEY_SECRET_MAX], uint8_t hash[32],
			  char id[STORE_ID_MAX]);
void apikey_hash(const char *secret, size_t len, uint8_t hash[32]);
/* Resolves a bearer secret to a principal.  ALLOT_E_UNAUTHORIZED with the
 * one message "invalid API key" for every kind of failure. */
allot_err apikey_authenticate(struct store *st, const char *secret, size_t len,
			      struct principal *out);
/* SHA-256 of data as 64 lowercase hex digits + NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
