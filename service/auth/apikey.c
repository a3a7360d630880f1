/* apikey.c — API key generation, hashing and authentication. */
#include "auth/apikey.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t h[32];
	unsigned int hl = 32;
	EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL);
	hex(h, 32, out);
}

void apikey_hash(const char *secret, size_t len, uint8_t hash[32])
{
	unsigned int hl = 32;
	EVP_Digest(secret, len, hash, &hl, EVP_sha256(), NULL);
}

allot_err apikey_random_id(const char *prefix, char id[STORE_ID_MAX])
{
	uint8_t rid[APIKEY_ID_RANDOM_BYTES];
	size_t pl = strlen(prefix);
	if (pl + 2 * sizeof rid >= STORE_ID_MAX)
		return ALLOT_E_INVALID;
	if (RAND_bytes(rid, sizeof rid) != 1)
		return ALLOT_E_INTERNAL;
	memcpy(id, prefix, pl);
	hex(rid, sizeof rid, id + pl);
	return ALLOT_OK;
}

allot_err apikey_generate(char secret[APIKEY_SECRET_MAX], uint8_t hash[32],
			  char id[STORE_ID_MAX])
{
	uint8_t raw[32];
	allot_err e = apikey_random_id("key_", id);
	if (e)
		return e;
	if (RAND_bytes(raw, sizeof raw) != 1)
		return ALLOT_E_INTERNAL;
	memcpy(secret, APIKEY_PREFIX, 6);
	hex(raw, sizeof raw, secret + 6);
	OPENSSL_cleanse(raw, sizeof raw);
	apikey_hash(secret, APIKEY_SECRET_LEN, hash);
	return ALLOT_OK;
}

allot_err apikey_authenticate(struct store *st, const char *secret, size_t len,
			      struct principal *out)
{
	uint8_t h[32];
	struct api_key k;
	apikey_hash(secret, len, h);
	allot_err e = store_key_find_by_hash(st, h, &k);
	if (e == ALLOT_E_NOT_FOUND || (e == ALLOT_OK && k.revoked_at != 0) ||
	    (e == ALLOT_OK && CRYPTO_memcmp(h, k.secret_sha256, 32) != 0))
		return ALLOT_E_UNAUTHORIZED;
	if (e)
		return e;
	memset(out, 0, sizeof *out);
	out->role = principal_role_parse(k.role);
	if (!out->role)
		return ALLOT_E_UNAUTHORIZED;
	snprintf(out->key_id, sizeof out->key_id, "%s", k.id);
	snprintf(out->institution, sizeof out->institution, "%s", k.institution);
	snprintf(out->provider, sizeof out->provider, "%s", k.provider);
	out->max_credits = -1;
	return ALLOT_OK;
}
