/* fuzz_token.c — libFuzzer target over the member-token verify path and the
 * other parsers of service/crypto and service/tlog that take untrusted
 * bytes.  The first input byte picks the surface (mod 5):
 *   0  token_verify() of the rest as a token string (header, base64url,
 *      footer JSON, key lookup, signature)
 *   1  the rest as claims, signed with the test key and verified, so the
 *      claims parser is reached through the full path
 *   2  token_claims_from_json() of the rest
 *   3  note_open() and checkpoint_open() of the rest as a signed checkpoint
 *   4  note_vkey_parse() and ed25519_pub_parse() of the rest
 * Invariants checked: anything accepted re-verifies identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ed25519.h"
#include "crypto/paseto.h"
#include "crypto/token_claims.h"
#include "tlog/checkpoint.h"
#include "tlog/note.h"

#define NOW (1796256000LL * US_PER_SEC)

static struct ed25519_keypair key;
static struct note_verifier logv;

static allot_err lookup(void *ctx, const char *kid, uint8_t pub[32])
{
	(void)ctx;
	if (strcmp(kid, "k1") != 0)
		return ALLOT_E_UNAUTHORIZED;
	memcpy(pub, key.pub, 32);
	return ALLOT_OK;
}

static void init(void)
{
	static int done;
	uint8_t seed[32];
	if (done)
		return;
	memset(seed, 0x42, sizeof seed);
	if (ed25519_from_seed(seed, &key) != ALLOT_OK ||
	    note_verifier_init(&logv, "allot.example.org/log", key.pub, NULL, 0) != ALLOT_OK)
		abort();
	done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token_verify_opts o = {"fuzz", NULL, lookup, NULL, NOW};
	struct token_claims c, c2;
	char msg[256], *tok = NULL;
	size_t len;

	init();
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0:
		if (token_verify(p, n, &o, &c, NULL, msg, sizeof msg) == ALLOT_OK &&
		    token_verify(p, n, &o, &c2, NULL, msg, sizeof msg) != ALLOT_OK)
			abort();
		break;
	case 1:
		if (paseto_v4_sign(&key, p, n, "{\"kid\":\"k1\"}", 12, "allot:fuzz", 10, &tok, &len) ==
		    ALLOT_OK) {
			if (token_verify(tok, len, &o, &c, NULL, msg, sizeof msg) == ALLOT_OK) {
				/* Accepted claims serialise and parse back to the same. */
				char *json = NULL;
				size_t jl;
				if (token_claims_to_json(&c, &json, &jl, NULL, 0) != ALLOT_OK ||
				    token_claims_from_json(json, jl, &c2, NULL, 0) != ALLOT_OK ||
				    memcmp(&c, &c2, sizeof c) != 0)
					abort();
				free(json);
			}
			free(tok);
		}
		break;
	case 2:
		(void)token_claims_from_json(p, n, &c, msg, sizeof msg);
		break;
	case 3: {
		struct checkpoint cp;
		size_t tl;
		(void)note_open(p, n, &logv, 1, &tl, msg, sizeof msg);
		(void)checkpoint_open(p, n, &logv, &cp, msg, sizeof msg);
		(void)checkpoint_parse(p, n, &cp, msg, sizeof msg);
		break;
	}
	case 4: {
		struct note_verifier v;
		uint8_t pub[32];
		(void)note_vkey_parse(p, n, &v, msg, sizeof msg);
		(void)ed25519_pub_parse(p, n, pub, msg, sizeof msg);
		break;
	}
	}
	return 0;
}
