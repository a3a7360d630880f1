/* ed25519.h — Ed25519 (RFC 8032, pure) through OpenSSL 3 EVP: key pairs,
 * signing, verification, the public-key text form and private-key files.
 *
 * Key material is plain bytes: a public key is 32 bytes, a private key is
 * its 32-byte seed (RFC 8032 "private key").  struct ed25519_keypair holds a
 * secret; wipe it with ed25519_keypair_wipe() when done.
 *
 * Public text form:    "ed25519:" base64(raw 32-byte public key), padded.
 * Private-key file:    PEM "PRIVATE KEY" (PKCS#8, RFC 8410), the format of
 *                      `openssl genpkey -algorithm ed25519`; written mode
 *                      0600 and atomically (temp file, fsync, rename);
 *                      refused on read when group or others may read it.
 *
 * Thread-safety: every function is reentrant (no shared state besides
 * OpenSSL's own, which is thread-safe).  Errors: every call returns an
 * allot_err and, where it takes (msg, msgcap), a reason in msg (may be NULL).
 */
#ifndef ALLOT_CRYPTO_ED25519_H
#define ALLOT_CRYPTO_ED25519_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define ED25519_PUB_LEN 32
#define ED25519_SEED_LEN 32
#define ED25519_SIG_LEN 64
/* "ed25519:" + 44 base64 characters + NUL. */
#define ED25519_PUB_TEXT_MAX 53
/* A PKCS#8 Ed25519 PEM is 119 bytes; room for CRLF line ends. */
#define ED25519_PEM_MAX 160

struct ed25519_keypair {
	uint8_t pub[ED25519_PUB_LEN];   /* public key */
	uint8_t seed[ED25519_SEED_LEN]; /* secret: the RFC 8032 private key */
};

/* Fresh key pair from the OpenSSL CSPRNG.  OUT: *kp on success only. */
allot_err ed25519_keygen(struct ed25519_keypair *kp);
/* Derives the public key of seed.  OUT: *kp on success only. */
allot_err ed25519_from_seed(const uint8_t seed[ED25519_SEED_LEN], struct ed25519_keypair *kp);
/* Overwrites the whole key pair with zeros (OPENSSL_cleanse). */
void ed25519_keypair_wipe(struct ed25519_keypair *kp);

/* Signs msg[0..n) (one-shot EdDSA, no pre-hash).  OUT: sig on success. */
allot_err ed25519_sign(const struct ed25519_keypair *kp, const void *msg, size_t n,
		       uint8_t sig[ED25519_SIG_LEN]);
/* Verifies sig (siglen bytes; anything but 64 is rejected) over msg with pub.
 * Returns ALLOT_OK, ALLOT_E_UNAUTHORIZED for a signature that does not
 * verify (including malformed and non-canonical ones), or ALLOT_E_NOMEM /
 * ALLOT_E_INTERNAL when OpenSSL fails. */
allot_err ed25519_verify(const uint8_t pub[ED25519_PUB_LEN], const void *msg, size_t n,
			 const uint8_t *sig, size_t siglen);

/* A public key parsed once for many verifications (a provider's key over a
 * batch of records): saves building the key object on every call.  A
 * verifier may be used by several threads at once; free it after them. */
struct ed25519_verifier;
allot_err ed25519_verifier_new(const uint8_t pub[ED25519_PUB_LEN], struct ed25519_verifier **out);
void ed25519_verifier_free(struct ed25519_verifier *v);
/* As ed25519_verify, with the verifier's key. */
allot_err ed25519_verifier_check(const struct ed25519_verifier *v, const void *msg, size_t n,
				 const uint8_t *sig, size_t siglen);

/* "ed25519:BASE64" into out; returns out. */
char *ed25519_pub_format(const uint8_t pub[ED25519_PUB_LEN], char out[ED25519_PUB_TEXT_MAX]);
/* Parses the text form (exactly; no surrounding spaces).  Returns ALLOT_OK
 * or ALLOT_E_INVALID.  OUT: pub on success only. */
allot_err ed25519_pub_parse(const char *s, size_t n, uint8_t pub[ED25519_PUB_LEN], char *msg,
			    size_t msgcap);

/* PKCS#8 PEM of kp into out (NUL-terminated); *len gets its length.  The
 * caller wipes out when done (it holds the secret). */
allot_err ed25519_private_to_pem(const struct ed25519_keypair *kp, char out[ED25519_PEM_MAX],
				 size_t *len);
/* Parses a PKCS#8 Ed25519 PEM of n bytes (unencrypted).  OUT: *kp on success
 * only.  Returns ALLOT_OK or ALLOT_E_INVALID. */
allot_err ed25519_private_from_pem(const char *pem, size_t n, struct ed25519_keypair *kp,
				   char *msg, size_t msgcap);

/* Writes kp to path as PEM, mode 0600: a temporary file in the same
 * directory, fsync, rename over path, fsync of the directory.  Refuses to
 * replace an existing file unless overwrite is non-zero.  Returns ALLOT_OK,
 * ALLOT_E_CONFLICT (exists) or ALLOT_E_IO. */
allot_err ed25519_private_write(const char *path, const struct ed25519_keypair *kp, int overwrite,
				char *msg, size_t msgcap);
/* Reads a private-key file.  Refuses (ALLOT_E_FORBIDDEN) a file that is not
 * a regular file or that group or others may read or write; ALLOT_E_IO when
 * it cannot be read, ALLOT_E_INVALID when it is not an Ed25519 PEM key.
 * OUT: *kp on success only. */
allot_err ed25519_private_read(const char *path, struct ed25519_keypair *kp, char *msg,
			       size_t msgcap);

#endif
