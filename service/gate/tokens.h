/* tokens.h — member tokens: minting, verification with a cache, revocation.
 *
 * Verification order (SPEC section 5): signature, then claims, then
 * revocation.  A verified token is cached by its SHA-256 until it expires,
 * so a repeated token costs no signature check; revocation is checked on
 * every use, from an in-memory set loaded from the store at start-up,
 * updated in the same call that stores a new revocation, and merged with
 * the store's again by tokens_refresh (several nodes on one database:
 * daemon/nodesync.h).
 */
#ifndef ALLOT_GATE_TOKENS_H
#define ALLOT_GATE_TOKENS_H

#include <stdbool.h>

#include "common/err.h"
#include "crypto/token_claims.h"
#include "gate/keyset.h"
#include "store/store.h"

/* Verified tokens remembered (each ~1 KiB). */
#define TOKENS_CACHE_CAPACITY 65536

struct gate_tokens;

allot_err tokens_open(struct store *st, const char *keys_dir, const char *deployment,
		      struct gate_tokens **out, char *msg, size_t msgsz);
void tokens_free(struct gate_tokens *t);
struct keyset *tokens_keyset(struct gate_tokens *t);

/* Signs c (iss, iat, jti are filled here) and logs it with its audit entry.
 * OUT: *token (malloc) on success. */
allot_err tokens_mint(struct gate_tokens *t, struct store *st, struct token_claims *c,
		      const char *actor, char **token, char *msg, size_t msgsz);
/* Verifies and checks revocation.  Every failure is ALLOT_E_UNAUTHORIZED
 * (reason in msg for logs). */
allot_err tokens_verify(struct gate_tokens *t, const char *token, size_t n,
			struct token_claims *c, char *msg, size_t msgsz);
/* Parses without trusting: signature and claims checked, expiry ignored is
 * NOT offered; inspect = verify, reporting the reason. */
allot_err tokens_revoke(struct gate_tokens *t, struct store *st,
			const struct token_revocation *r, const char *actor);

/* Reads every stored revocation (no lock held during the read) and adds
 * those not yet in the in-memory sets: the ones another node on the same
 * database made.  Revocations are never removed.  On an error the sets are
 * unchanged. */
allot_err tokens_refresh(struct gate_tokens *t, struct store *st);
/* The same at now_us (a monotonic clock) with the window's overlap
 * (gate/revwin.h): only the rows past the window's watermark are read, so
 * a refresh reads the revocations stored since the oldest id still
 * missing (at most overlap_us old), not the whole table.  tokens_refresh:
 * now, REVWIN_OVERLAP_US. */
allot_err tokens_refresh_at(struct gate_tokens *t, struct store *st, int64_t now_us,
			    int64_t overlap_us);
/* The revocation rows read since open, and the id the next refresh reads after. */
void tokens_refresh_stats(struct gate_tokens *t, uint64_t *rows_read, int64_t *after_id);

#endif
