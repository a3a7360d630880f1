/* token_claims.h — allot member tokens (SPEC section 5): the claims, their
 * strict JSON form, time checks, and mint / verify on top of PASETO
 * v4.public.
 *
 *   footer             {"kid":"<key id>"}   (exactly this form)
 *   implicit assertion "allot:<deployment>"
 *   payload            {"iss","aud":"allot-gate","sub","inst","proj",
 *                       "models"?,"max_credits"?,"iat","nbf","exp","jti"}
 *
 * Times are RFC 3339 strings in the token (as PASETO recommends) and int64
 * UTC microseconds here.  Amounts are exact decimal strings in the token and
 * int64 micro-credits here (common/money.h).
 *
 * Verification order: PASETO signature (with the key the caller's keyset
 * holds for the footer's kid) first, then the claims' form, then the claims'
 * times against the caller's clock.  Revocation (jti, member) is the
 * caller's third step.  Every failure is ALLOT_E_UNAUTHORIZED (or the key
 * lookup's own error) with the precise reason in msg, for logs; callers
 * should answer all of them alike.
 *
 * Thread-safety: reentrant; no shared state.  struct token_claims is plain
 * data (fixed arrays, no pointers): copy it freely, nothing to free.
 */
#ifndef ALLOT_CRYPTO_TOKEN_CLAIMS_H
#define ALLOT_CRYPTO_TOKEN_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "crypto/ed25519.h"
#include "crypto/paseto.h"

#define TOKEN_AUD "allot-gate"
#define TOKEN_IMPLICIT_PREFIX "allot:"
/* Clock skew tolerated between minting and verifying hosts (SPEC: 60 s). */
#define TOKEN_SKEW_US (60 * US_PER_SEC)
/* Longest lifetime exp - iat (SPEC: at most 30 days). */
#define TOKEN_TTL_MAX_US (30LL * 86400 * US_PER_SEC)
/* Lifetime when the minting request names none (SPEC: 1 h). */
#define TOKEN_TTL_DEFAULT_US (3600 * US_PER_SEC)

/* Field limits.  Ids (institution, project, jti) are short slugs; a member is
 * usually an e-mail address (at most 254 bytes, RFC 5321); model names such
 * as "meta-llama/Llama-3.1-8B-Instruct" fit 128 bytes; a token scoped to
 * more than 16 models should rather omit "models". */
#define TOKEN_ID_MAX 64
#define TOKEN_ISS_MAX 128
#define TOKEN_SUB_MAX 254
#define TOKEN_MODEL_MAX 128
#define TOKEN_MODELS_MAX 16
/* Deployment names: 1..64 of [A-Za-z0-9._-]. */
#define TOKEN_DEPLOYMENT_MAX 64

struct token_claims {
	char iss[TOKEN_ISS_MAX + 1];   /* issuer (the minting allotd) */
	char sub[TOKEN_SUB_MAX + 1];   /* member */
	char inst[TOKEN_ID_MAX + 1];   /* institution */
	char proj[TOKEN_ID_MAX + 1];   /* project */
	char jti[TOKEN_ID_MAX + 1];    /* token id, [A-Za-z0-9_-] */
	size_t n_models;               /* 0: no "models" claim (no subset) */
	char models[TOKEN_MODELS_MAX][TOKEN_MODEL_MAX + 1];
	bool has_max_credits;          /* "max_credits" present */
	int64_t max_credits;           /* micro-credits, > 0 */
	int64_t iat, nbf, exp;         /* UTC microseconds */
};

/* Checks the claims' form without a clock: every string non-empty, within
 * its limit and free of control characters; jti's alphabet; models unique;
 * max_credits > 0 and <= MONEY_MAX; iat <= nbf < exp and exp - iat <=
 * TOKEN_TTL_MAX_US.  Returns ALLOT_OK or ALLOT_E_UNAUTHORIZED (reason in
 * msg). */
allot_err token_claims_validate(const struct token_claims *c, char *msg, size_t msgcap);

/* The claims' JSON payload (fixed key order, compact).  Validates first
 * (ALLOT_E_INVALID then).  OUT: *json (from malloc(), NUL-terminated, caller
 * frees) and *len on success only. */
allot_err token_claims_to_json(const struct token_claims *c, char **json, size_t *len, char *msg,
			       size_t msgcap);

/* Parses a payload strictly: a JSON object with exactly the known claims
 * (unknown, duplicate, missing required or wrongly typed claims are
 * refused; null is a wrong type), aud == "allot-gate", times in RFC 3339,
 * max_credits a decimal string, then token_claims_validate().
 * OUT: *c on success only. */
allot_err token_claims_from_json(const void *json, size_t n, struct token_claims *c, char *msg,
				 size_t msgcap);

/* Checks the claims against now (UTC µs) with TOKEN_SKEW_US of tolerance:
 * refused when iat > now + skew (issued in the future), nbf > now + skew
 * (not yet valid) or exp + skew < now (expired).  Exactly 60 s past exp or
 * before nbf is still accepted; 61 s is not. */
allot_err token_claims_check_time(const struct token_claims *c, int64_t now_us, char *msg,
				  size_t msgcap);

/* Validates a deployment name: 1..TOKEN_DEPLOYMENT_MAX of [A-Za-z0-9._-]. */
allot_err token_deployment_check(const char *deployment, char *msg, size_t msgcap);

/* Mints a token for c with kp, whose key id kid (1..PASETO_KID_MAX of
 * [A-Za-z0-9._-]) goes in the footer, bound to deployment.  Errors:
 * ALLOT_E_INVALID (claims, kid or deployment), ALLOT_E_NOMEM, ...
 * OUT: *token (from malloc(), NUL-terminated, caller frees), *len. */
allot_err token_mint(const struct ed25519_keypair *kp, const char *kid, const char *deployment,
		     const struct token_claims *c, char **token, size_t *len, char *msg,
		     size_t msgcap);

struct token_verify_opts {
	const char *deployment;  /* this allotd's deployment name */
	const char *issuer;      /* required iss, or NULL to accept any */
	paseto_key_fn lookup;    /* the keyset: kid -> public key */
	void *lookup_ctx;
	int64_t now_us;          /* the caller's clock (tests control it) */
};

/* Verifies token[0..n): signature (paseto_v4_verify with the implicit
 * assertion "allot:" deployment; a token without a kid never reaches the
 * lookup), footer form, claims (token_claims_from_json), issuer, then
 * times.  OUT: *c and, if kid is not NULL, the key id, on success only. */
allot_err token_verify(const char *token, size_t n, const struct token_verify_opts *o,
		       struct token_claims *c, char kid[PASETO_KID_MAX + 1], char *msg,
		       size_t msgcap);

#endif
