/* tokcache.h — a bounded cache of verified member tokens, so that a token
 * presented again costs one SHA-256 and a table probe instead of a signature
 * check and a JSON parse.
 *
 * Key: SHA-256 of the token string (the token itself is not kept).  Value:
 * its verified claims.  An entry is served only while the claims' time
 * window admits the caller's clock (token_claims_check_time: nbf/exp with
 * the 60 s skew), and dropped once exp + skew has passed.  Revocation is NOT
 * the cache's business: the gate checks jti/member revocation after every
 * lookup, hit or miss, as SPEC orders (signature, claims, revocation).
 *
 * One cache belongs to one verifier configuration (deployment, issuer,
 * keyset): tokens verified under other settings must not be put in it.
 * Call tokcache_clear() when a verification key is withdrawn (not merely
 * rotated: rotated keys keep verifying until their tokens expire).
 *
 * Structure: set-associative, TOKCACHE_WAYS entries per set, sets a power of
 * two; a full set evicts an expired entry if it has one, else its least
 * recently used.  Memory is allocated once (about sizeof(struct
 * token_claims) + 48 bytes per entry, ~2.9 KiB).
 *
 * Thread-safety: every function except tokcache_new/tokcache_free may be
 * called from any number of threads at once (striped mutexes, one stripe
 * per group of sets).
 */
#ifndef ALLOT_CRYPTO_TOKCACHE_H
#define ALLOT_CRYPTO_TOKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/token_claims.h"

/* Entries per set: 8 keeps eviction close to true LRU at a probe cost of
 * eight 32-byte compares. */
#define TOKCACHE_WAYS 8
/* Largest capacity accepted (~2.9 GiB of entries): a guard against typos. */
#define TOKCACHE_CAPACITY_MAX (1u << 20)

struct tokcache;

struct tokcache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	size_t capacity; /* entries, after rounding up */
};

/* A cache for at least `capacity` tokens (rounded up to a power-of-two
 * number of sets of TOKCACHE_WAYS).  NULL when out of memory or capacity is
 * 0 or above TOKCACHE_CAPACITY_MAX.  Free with tokcache_free(). */
struct tokcache *tokcache_new(size_t capacity);
void tokcache_free(struct tokcache *c);

/* Looks token[0..n) up.  On a hit whose claims admit now_us, copies them to
 * *out and returns true.  A hit that has expired is removed; a hit not yet
 * valid (nbf) is kept but not served.  Returns false otherwise. */
bool tokcache_get(struct tokcache *c, const char *token, size_t n, int64_t now_us,
		  struct token_claims *out);
/* Remembers the verified claims of token[0..n) (replacing an entry for the
 * same token); now_us tells which entries of a full set have expired and
 * may go first.  Only claims that token_verify() returned belong here. */
void tokcache_put(struct tokcache *c, const char *token, size_t n, const struct token_claims *cl,
		  int64_t now_us);
/* Forgets token[0..n); true when it was cached. */
bool tokcache_remove(struct tokcache *c, const char *token, size_t n);
/* Forgets everything. */
void tokcache_clear(struct tokcache *c);
void tokcache_get_stats(struct tokcache *c, struct tokcache_stats *st);

/* token_verify() through the cache: a hit skips the signature and claim
 * parsing (the time window is still checked against o->now_us); a miss
 * verifies and, on success, caches.  kid is reported on a miss only ("" on
 * a hit) and may be NULL.  Returns as token_verify(). */
allot_err tokcache_verify(struct tokcache *c, const char *token, size_t n,
			  const struct token_verify_opts *o, struct token_claims *out,
			  char kid[PASETO_KID_MAX + 1], char *msg, size_t msgcap);

#endif
