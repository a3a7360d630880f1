/* digest.c — SHA-256 with the implementation fetched once (crypto/digest.h). */
#include "crypto/digest.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once for the process: EVP_sha256() is fetched again on every
 * EVP_Digest call, a large part of hashing a few hundred bytes. */
static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void digest_sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int hl = 32;
	pthread_once(&sha256_once, sha256_fetch);
	if (EVP_Digest(p, n, out, &hl, sha256_md ? sha256_md : EVP_sha256(), NULL) != 1)
		abort(); /* only when OpenSSL cannot allocate a context; a wrong hash is worse */
}
