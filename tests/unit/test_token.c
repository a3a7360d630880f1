/* test_token.c — allot member tokens: claims (strict JSON), mint, verify
 * with a keyset, deployment binding, time window and skew boundaries, key
 * rotation, and the refusal of everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/ed25519.h"
#include "crypto/paseto.h"
#include "crypto/token_claims.h"

#define T0 (1796256000LL * US_PER_SEC) /* 2026-12-03T00:00:00Z */
#define HOUR (3600LL * US_PER_SEC)
#define SEC US_PER_SEC

/* A keyset of two keys: "k0" (rotated out of signing, still verifying) and
 * "k1" (current). */
struct keyset {
	struct ed25519_keypair k0, k1, stranger;
};

static allot_err ks_lookup(void *ctx, const char *kid, uint8_t pub[32])
{
	struct keyset *ks = ctx;
	if (strcmp(kid, "k0") == 0)
		memcpy(pub, ks->k0.pub, 32);
	else if (strcmp(kid, "k1") == 0)
		memcpy(pub, ks->k1.pub, 32);
	else
		return ALLOT_E_UNAUTHORIZED;
	return ALLOT_OK;
}

static int setup(void **state)
{
	struct keyset *ks = calloc(1, sizeof *ks);
	if (!ks || ed25519_keygen(&ks->k0) || ed25519_keygen(&ks->k1) ||
	    ed25519_keygen(&ks->stranger))
		return -1;
	*state = ks;
	return 0;
}

static int teardown(void **state)
{
	struct keyset *ks = *state;
	ed25519_keypair_wipe(&ks->k0);
	ed25519_keypair_wipe(&ks->k1);
	ed25519_keypair_wipe(&ks->stranger);
	free(ks);
	return 0;
}

static struct token_claims base_claims(void)
{
	struct token_claims c;
	memset(&c, 0, sizeof c);
	strcpy(c.iss, "allotd.example.org");
	strcpy(c.sub, "alice@epfl.ch");
	strcpy(c.inst, "epfl");
	strcpy(c.proj, "climate");
	strcpy(c.jti, "tok_8f3a2b");
	c.n_models = 2;
	strcpy(c.models[0], "llama-3.1-8b");
	strcpy(c.models[1], "qwen2.5-7b");
	c.has_max_credits = true;
	c.max_credits = 12500000; /* 12.5 */
	c.iat = T0;
	c.nbf = T0;
	c.exp = T0 + HOUR;
	return c;
}

static struct token_verify_opts opts(struct keyset *ks, int64_t now)
{
	struct token_verify_opts o = {"prod-eu", NULL, ks_lookup, ks, now};
	return o;
}

static char *mint(struct ed25519_keypair *kp, const char *kid, const char *dep,
		  const struct token_claims *c)
{
	char *tok = NULL, msg[200];
	size_t len;
	if (token_mint(kp, kid, dep, c, &tok, &len, msg, sizeof msg) != ALLOT_OK)
		fail_msg("mint: %s", msg);
	assert_int_equal(strlen(tok), len);
	return tok;
}

/* Signs an arbitrary payload and footer with allot's framing. */
static char *sign_raw(struct ed25519_keypair *kp, const char *payload, const char *footer,
		      const char *implicit)
{
	char *tok = NULL;
	size_t len;
	assert_int_equal(paseto_v4_sign(kp, payload, strlen(payload), footer, strlen(footer),
					implicit, strlen(implicit), &tok, &len), ALLOT_OK);
	return tok;
}

static allot_err verify_at(struct keyset *ks, const char *tok, int64_t now, char *msg, size_t cap)
{
	struct token_verify_opts o = opts(ks, now);
	struct token_claims c;
	return token_verify(tok, strlen(tok), &o, &c, NULL, msg, cap);
}

static void test_mint_verify(void **state)
{
	struct keyset *ks = *state;
	struct token_claims c = base_claims(), got;
	struct token_verify_opts o = opts(ks, T0);
	char kid[PASETO_KID_MAX + 1], msg[200];
	char *tok = mint(&ks->k1, "k1", "prod-eu", &c);

	assert_int_equal(strncmp(tok, "v4.public.", 10), 0);
	assert_int_equal(token_verify(tok, strlen(tok), &o, &got, kid, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&got, &c, sizeof c);
	assert_string_equal(kid, "k1");
	/* Issuer pinned: same issuer passes, another fails. */
	o.issuer = "allotd.example.org";
	assert_int_equal(token_verify(tok, strlen(tok), &o, &got, NULL, NULL, 0), ALLOT_OK);
	o.issuer = "allotd.other.org";
	assert_int_equal(token_verify(tok, strlen(tok), &o, &got, NULL, msg, sizeof msg),
			 ALLOT_E_UNAUTHORIZED);
	assert_non_null(strstr(msg, "issuer"));
	free(tok);

	/* Optional claims absent. */
	c.n_models = 0;
	memset(c.models, 0, sizeof c.models);
	c.has_max_credits = false;
	c.max_credits = 0;
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	o.issuer = NULL;
	assert_int_equal(token_verify(tok, strlen(tok), &o, &got, NULL, NULL, 0), ALLOT_OK);
	assert_memory_equal(&got, &c, sizeof c);
	free(tok);

	/* Key rotation: a token signed by the older key still verifies. */
	c = base_claims();
	tok = mint(&ks->k0, "k0", "prod-eu", &c);
	assert_int_equal(token_verify(tok, strlen(tok), &o, &got, kid, NULL, 0), ALLOT_OK);
	assert_string_equal(kid, "k0");
	free(tok);
}

static void test_refusals(void **state)
{
	struct keyset *ks = *state;
	struct token_claims c = base_claims();
	char msg[200];
	char *tok;

	/* Another deployment's token. */
	tok = mint(&ks->k1, "k1", "prod-us", &c);
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
	assert_non_null(strstr(msg, "signature"));
	free(tok);
	/* Unknown kid; a known kid whose key did not sign it. */
	tok = mint(&ks->stranger, "k9", "prod-eu", &c);
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
	assert_non_null(strstr(msg, "k9"));
	free(tok);
	tok = mint(&ks->stranger, "k1", "prod-eu", &c);
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
	free(tok);
	/* JWS / JWT-looking tokens. */
	static const char *jws[] = {
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZUBlcGZsLmNoIn0.c2lnbmF0dXJl",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZUBlcGZsLmNoIn0.",
	};
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(verify_at(ks, jws[i], T0, NULL, 0), ALLOT_E_UNAUTHORIZED);

	/* Footer forms other than exactly {"kid":"k1"}, properly signed. */
	char *json = NULL;
	size_t jl;
	assert_int_equal(token_claims_to_json(&c, &json, &jl, NULL, 0), ALLOT_OK);
	static const char *feet[] = {"{\"kid\":\"k1\",\"x\":1}", "{ \"kid\": \"k1\" }", ""};
	for (size_t i = 0; i < 3; i++) {
		tok = sign_raw(&ks->k1, json, feet[i], "allot:prod-eu");
		assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
		free(tok);
	}
	/* The exact form passes (control for the loop above). */
	tok = sign_raw(&ks->k1, json, "{\"kid\":\"k1\"}", "allot:prod-eu");
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_OK);
	free(tok);
	free(json);

	/* Every single-bit flip and every truncation. */
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	size_t len = strlen(tok), flips = 0;
	char *m = malloc(len + 1);
	assert_non_null(m);
	struct token_verify_opts o = opts(ks, T0);
	struct token_claims got;
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(m, tok, len + 1);
			m[i] ^= (char)(1 << b);
			if (token_verify(m, len, &o, &got, NULL, NULL, 0) == ALLOT_OK)
				fail_msg("flip of bit %d in byte %zu accepted", b, i);
			flips++;
		}
	}
	for (size_t n = 0; n < len; n++)
		assert_int_equal(token_verify(tok, n, &o, &got, NULL, NULL, 0), ALLOT_E_UNAUTHORIZED);
	printf("token: %zu bit flips and %zu truncations of a %zu-byte allot token rejected\n", flips,
	       len, len);
	free(m);
	free(tok);
}

static void test_time_window(void **state)
{
	struct keyset *ks = *state;
	struct token_claims c = base_claims();
	char msg[200];
	char *tok;

	c.nbf = T0 + HOUR;
	c.exp = T0 + 2 * HOUR;
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	static const struct { int64_t now; allot_err want; const char *why; } cases[] = {
		{T0 + HOUR - 61 * SEC, ALLOT_E_UNAUTHORIZED, "not valid before"},
		{T0 + HOUR - 60 * SEC, ALLOT_OK, NULL},
		{T0 + HOUR, ALLOT_OK, NULL},
		{T0 + 2 * HOUR, ALLOT_OK, NULL},
		{T0 + 2 * HOUR + 60 * SEC, ALLOT_OK, NULL},
		{T0 + 2 * HOUR + 60 * SEC + 1, ALLOT_E_UNAUTHORIZED, "expired"},
		{T0 + 2 * HOUR + 61 * SEC, ALLOT_E_UNAUTHORIZED, "expired"},
		{T0 + 400 * HOUR, ALLOT_E_UNAUTHORIZED, "expired"},
		{T0 - 61 * SEC, ALLOT_E_UNAUTHORIZED, "future"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		msg[0] = '\0';
		allot_err e = verify_at(ks, tok, cases[i].now, msg, sizeof msg);
		if (e != cases[i].want)
			fail_msg("case %zu: got %d (%s)", i, e, msg);
		if (cases[i].why)
			assert_non_null(strstr(msg, cases[i].why));
	}
	free(tok);

	/* iat in the future beyond the skew, with nbf == iat. */
	c = base_claims();
	c.iat = c.nbf = T0 + 61 * SEC;
	c.exp = T0 + HOUR;
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
	assert_int_equal(verify_at(ks, tok, T0 + SEC, msg, sizeof msg), ALLOT_OK);
	free(tok);

	/* Lifetime: exactly 30 days passes, a microsecond more is refused at
	 * minting and at verification. */
	c = base_claims();
	c.exp = c.iat + TOKEN_TTL_MAX_US;
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	assert_int_equal(verify_at(ks, tok, T0, msg, sizeof msg), ALLOT_OK);
	free(tok);
	c.exp += 1;
	char *out = NULL;
	size_t len;
	assert_int_equal(token_mint(&ks->k1, "k1", "prod-eu", &c, &out, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_null(out);
}

/* Payloads signed with the right key, footer and implicit assertion, that
 * the claims layer must refuse, each with the reason it must give. */
static void test_claims_strict(void **state)
{
	struct keyset *ks = *state;
#define TIMES "\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T01:00:00Z\""
#define BASE "\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"alice\",\"inst\":\"epfl\",\"proj\":\"climate\",\"jti\":\"t1\""
	static const struct { const char *payload, *why; } bad[] = {
		{"{" BASE "," TIMES ",\"foo\":1}", "unknown field"},
		{"{" BASE "," TIMES ",\"iss\":\"j\"}", "duplicate"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"inst\":\"epfl\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "sub is missing"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"a\",\"inst\":\"epfl\",\"proj\":\"c\"," TIMES "}", "jti is missing"},
		{"{" BASE ",\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-03T00:00:00Z\"}", "exp is missing"},
		{"{\"iss\":\"i\",\"aud\":\"other\",\"sub\":\"a\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "aud"},
		{"{\"iss\":\"i\",\"aud\":[\"allot-gate\"],\"sub\":\"a\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "aud must be a string"},
		{"{\"iss\":\"i\",\"sub\":\"a\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "aud is missing"},
		{"{" BASE ",\"iat\":1796256000,\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T01:00:00Z\"}", "iat must be a string"},
		{"{" BASE ",\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":null}", "exp must be a string"},
		{"{" BASE ",\"iat\":\"2026-12-03\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T01:00:00Z\"}", "RFC 3339"},
		{"{" BASE ",\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-02T23:59:59Z\",\"exp\":\"2026-12-03T01:00:00Z\"}", "nbf is before iat"},
		{"{" BASE ",\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T00:00:00Z\"}", "exp is not after nbf"},
		{"{" BASE ",\"iat\":\"2026-12-03T00:00:00Z\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2027-01-02T00:00:01Z\"}", "30 days"},
		{"{" BASE "," TIMES ",\"models\":\"m1\"}", "models must be a non-empty array"},
		{"{" BASE "," TIMES ",\"models\":[]}", "models must be a non-empty array"},
		{"{" BASE "," TIMES ",\"models\":[1]}", "models[0]"},
		{"{" BASE "," TIMES ",\"models\":[\"m1\",\"m1\"]}", "twice"},
		{"{" BASE "," TIMES ",\"models\":[\"\"]}", "models[0]"},
		{"{" BASE "," TIMES ",\"models\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}", "more than 16"},
		{"{" BASE "," TIMES ",\"max_credits\":12.5}", "max_credits must be a string"},
		{"{" BASE "," TIMES ",\"max_credits\":\"abc\"}", "max_credits"},
		{"{" BASE "," TIMES ",\"max_credits\":\"-1\"}", "positive"},
		{"{" BASE "," TIMES ",\"max_credits\":\"0\"}", "positive"},
		{"{" BASE "," TIMES ",\"max_credits\":\"1.0000001\"}", "max_credits"},
		{"{" BASE "," TIMES ",\"max_credits\":\"1e3\"}", "max_credits"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "sub must have"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"a\\u0001\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\"," TIMES "}", "control"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"a\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t 1\"," TIMES "}", "jti"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"a\",\"inst\":\"e\",\"proj\":\"c\",\"jti\":\"t1\\u0000\"," TIMES "}", "NUL"},
		{"{\"iss\":\"i\",\"aud\":\"allot-gate\",\"sub\":\"a\",\"inst\":\"e\",\"proj\":7,\"jti\":\"t1\"," TIMES "}", "proj must be a string"},
		{"[" BASE "]", "claims"},
		{"", "claims"},
		{"{" BASE "," TIMES "", "claims"},
	};
	char msg[300];
	size_t n = 0;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *tok = sign_raw(&ks->k1, bad[i].payload, "{\"kid\":\"k1\"}", "allot:prod-eu");
		msg[0] = '\0';
		if (verify_at(ks, tok, T0, msg, sizeof msg) != ALLOT_E_UNAUTHORIZED)
			fail_msg("payload %zu accepted: %s", i, bad[i].payload);
		if (!strstr(msg, bad[i].why))
			fail_msg("payload %zu: reason \"%s\" lacks \"%s\"", i, msg, bad[i].why);
		free(tok);
		n++;
	}
	/* Accepted: minimal claims, time offsets, a whole-number amount. */
	static const char *good[] = {
		"{" BASE "," TIMES "}",
		"{" BASE ",\"iat\":\"2026-12-03T01:00:00+01:00\",\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T01:00:00Z\",\"max_credits\":\"3\",\"models\":[\"m\"]}",
	};
	for (size_t i = 0; i < 2; i++) {
		char *tok = sign_raw(&ks->k1, good[i], "{\"kid\":\"k1\"}", "allot:prod-eu");
		if (verify_at(ks, tok, T0, msg, sizeof msg) != ALLOT_OK)
			fail_msg("good payload %zu refused: %s", i, msg);
		free(tok);
	}
	printf("token: %zu malformed claim sets refused with the right reason\n", n);
}

static void test_json_roundtrip_and_mint_misuse(void **state)
{
	struct keyset *ks = *state;
	struct token_claims c = base_claims(), back;
	char *json = NULL, *tok = NULL, msg[200];
	size_t len;

	assert_int_equal(token_claims_to_json(&c, &json, &len, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(json,
			    "{\"iss\":\"allotd.example.org\",\"aud\":\"allot-gate\",\"sub\":\"alice@epfl.ch\","
			    "\"inst\":\"epfl\",\"proj\":\"climate\",\"models\":[\"llama-3.1-8b\",\"qwen2.5-7b\"],"
			    "\"max_credits\":\"12.5\",\"iat\":\"2026-12-03T00:00:00Z\","
			    "\"nbf\":\"2026-12-03T00:00:00Z\",\"exp\":\"2026-12-03T01:00:00Z\","
			    "\"jti\":\"tok_8f3a2b\"}");
	assert_int_equal(token_claims_from_json(json, len, &back, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&back, &c, sizeof c);
	free(json);

	static const char *bad_kid[] = {"", "a b", "k\"1", "k/1"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(token_mint(&ks->k1, bad_kid[i], "prod-eu", &c, &tok, &len, msg,
					    sizeof msg), ALLOT_E_INVALID);
	static const char *bad_dep[] = {"", "prod eu", "prod/eu", "allot:x",
		"a-very-long-deployment-name-that-goes-on-and-on-beyond-sixty-four-chars"};
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(token_mint(&ks->k1, "k1", bad_dep[i], &c, &tok, &len, msg, sizeof msg),
				 ALLOT_E_INVALID);
	c.n_models = 2;
	strcpy(c.models[1], c.models[0]);
	assert_int_equal(token_mint(&ks->k1, "k1", "prod-eu", &c, &tok, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	c = base_claims();
	c.max_credits = 0;
	assert_int_equal(token_mint(&ks->k1, "k1", "prod-eu", &c, &tok, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	c = base_claims();
	c.jti[0] = '\0';
	assert_int_equal(token_mint(&ks->k1, "k1", "prod-eu", &c, &tok, &len, msg, sizeof msg),
			 ALLOT_E_INVALID);
	assert_null(tok);
	/* A verifier with a bad deployment name is a programming error. */
	struct token_verify_opts o = opts(ks, T0);
	o.deployment = "";
	c = base_claims();
	tok = mint(&ks->k1, "k1", "prod-eu", &c);
	assert_int_equal(token_verify(tok, strlen(tok), &o, &back, NULL, NULL, 0), ALLOT_E_INTERNAL);
	free(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_verify),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_time_window),
		cmocka_unit_test(test_claims_strict),
		cmocka_unit_test(test_json_roundtrip_and_mint_misuse),
	};
	return cmocka_run_group_tests_name("token", tests, setup, teardown);
}
