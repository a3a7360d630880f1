/* paseto.h — PASETO v4.public (Ed25519) tokens: sign and verify.
 *
 *   token = "v4.public." b64url(m || sig) [ "." b64url(footer) ]
 *   sig   = Ed25519(sk, PAE("v4.public.", m, footer, implicit))
 *
 * PAE is the PASETO pre-authentication encoding (LE64 piece count, then
 * LE64 length and bytes of each piece).  Base64url is strict (no padding,
 * canonical trailing bits).  The payload is returned as bytes: this module
 * never looks inside it, so no claim can be read before the signature has
 * verified (claims are token_claims.h's business).
 *
 * Key selection: the verifier never takes a key from the token.  The footer,
 * when present, must be a JSON object (at most PASETO_FOOTER_MAX bytes); its
 * "kid" string, if any, is passed to the caller's lookup callback, which
 * answers with a public key from the caller's own keyset (or an error).
 *
 * Thread-safety: reentrant; the lookup callback is called on the calling
 * thread, once per verification.
 */
#ifndef ALLOT_CRYPTO_PASETO_H
#define ALLOT_CRYPTO_PASETO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/ed25519.h"

/* Longest token accepted: it travels in an Authorization header, which HTTP
 * servers commonly cap at 8 KiB. */
#define PASETO_TOKEN_MAX 8192
/* Longest footer: {"kid":"..."} needs about 100 bytes; PASETO advises
 * bounding footer size before any JSON parsing. */
#define PASETO_FOOTER_MAX 512
/* Longest key id accepted in a footer. */
#define PASETO_KID_MAX 128

/* Looks up the public key for kid (NULL when the token has no footer or the
 * footer has no "kid").  Writes the key into pub and returns ALLOT_OK, or
 * returns an error (ALLOT_E_UNAUTHORIZED for an unknown kid) which the
 * verification returns unchanged. */
typedef allot_err (*paseto_key_fn)(void *ctx, const char *kid, uint8_t pub[ED25519_PUB_LEN]);

/* Signs payload with kp.  footer and implicit may be empty (NULL, 0).
 * OUT: *token (NUL-terminated, from malloc(), caller frees) and *len on
 * success only.  Errors: ALLOT_E_TOO_LARGE (token over PASETO_TOKEN_MAX),
 * ALLOT_E_NOMEM, ALLOT_E_INTERNAL. */
allot_err paseto_v4_sign(const struct ed25519_keypair *kp, const void *payload, size_t plen,
			 const void *footer, size_t flen, const void *implicit, size_t ilen,
			 char **token, size_t *len);

struct paseto_verified {
	uint8_t *payload;   /* from malloc(), NUL-terminated; the signed message */
	size_t payload_len;
	char *footer;       /* from malloc(), NUL-terminated ("" when none) */
	size_t footer_len;
	char kid[PASETO_KID_MAX + 1]; /* "" when the footer has no kid */
};

/* Verifies token[0..n) with the implicit assertion implicit[0..ilen) and the
 * key lookup's answer.  Checks, in order: size, header "v4.public.", strict
 * base64url, footer bound and JSON form, key lookup, Ed25519 signature.
 * Returns ALLOT_OK, ALLOT_E_UNAUTHORIZED (malformed, wrong header, bad
 * signature — the caller answers all of them alike), the lookup's error, or
 * ALLOT_E_NOMEM.  msg (may be NULL) gets the precise reason, for logs.
 * OUT: *out on success only; release with paseto_verified_release(). */
allot_err paseto_v4_verify(const char *token, size_t n, const void *implicit, size_t ilen,
			   paseto_key_fn lookup, void *ctx, struct paseto_verified *out, char *msg,
			   size_t msgcap);
/* Frees what a successful verification returned; safe on a zeroed struct. */
void paseto_verified_release(struct paseto_verified *v);

/* PAE(pieces) into out (capacity cap).  Returns the encoded length, or 0
 * when out is too small (the encoding is never shorter than 8 bytes). */
size_t paseto_pae(const void *const pieces[], const size_t lens[], size_t count, uint8_t *out,
		  size_t cap);

#endif
