/* test_paseto.c — PASETO v4.public: the paseto-standard vectors
 * (../shared/vectors/paseto/v4.json), PAE, every single-bit flip and every
 * truncation of a valid token, malformed tokens and footers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/b64.h"
#include "crypto/ed25519.h"
#include "crypto/paseto.h"

static const char *shared_dir(void)
{
	const char *d = getenv("ALLOT_SHARED");
	return d && *d ? d : "../shared";
}

/* A one-key keyset.  want_kid NULL: any kid (or none) maps to the key. */
struct keyset1 {
	uint8_t pub[32];
	const char *want_kid;
	int calls;
	char seen_kid[PASETO_KID_MAX + 1];
};

static allot_err lookup1(void *ctx, const char *kid, uint8_t pub[32])
{
	struct keyset1 *k = ctx;
	k->calls++;
	snprintf(k->seen_kid, sizeof k->seen_kid, "%s", kid ? kid : "");
	if (k->want_kid && (!kid || strcmp(kid, k->want_kid) != 0))
		return ALLOT_E_UNAUTHORIZED;
	memcpy(pub, k->pub, 32);
	return ALLOT_OK;
}

static void test_pae(void **state)
{
	(void)state;
	/* The PAE examples of the PASETO specification (Common.md). */
	uint8_t out[64];
	const void *none[1] = {NULL};
	size_t zero[1] = {0};
	assert_int_equal(paseto_pae(none, zero, 0, out, sizeof out), 8);
	assert_memory_equal(out, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
	const void *e1[1] = {""};
	assert_int_equal(paseto_pae(e1, zero, 1, out, sizeof out), 16);
	assert_memory_equal(out, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			    16);
	const void *t[1] = {"test"};
	size_t four[1] = {4};
	assert_int_equal(paseto_pae(t, four, 1, out, sizeof out), 20);
	assert_memory_equal(out, "\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test",
			    20);
	assert_int_equal(paseto_pae(t, four, 1, out, 19), 0);
}

static json_t *load_vectors(void)
{
	char path[512];
	json_error_t jerr;
	json_t *root;

	snprintf(path, sizeof path, "%s/vectors/paseto/v4.json", shared_dir());
	root = json_load_file(path, 0, &jerr);
	if (!root)
		printf("paseto: SKIP vectors: %s not readable (%s)\n", path, jerr.text);
	return root;
}

static void unhex(const char *s, uint8_t *out, size_t want)
{
	size_t n;
	assert_non_null(s);
	assert_int_equal(hex_decode(s, strlen(s), out, want, &n), ALLOT_OK);
	assert_int_equal(n, want);
}

static const char *str(json_t *t, const char *k)
{
	return json_string_value(json_object_get(t, k));
}

static void test_vectors(void **state)
{
	(void)state;
	json_t *root = load_vectors(), *tests, *t;
	size_t i, ok = 0, rejected = 0;
	uint8_t spub[32] = {0};
	int have_spub = 0;

	if (!root)
		skip();
	tests = json_object_get(root, "tests");
	assert_true(json_is_array(tests));
	json_array_foreach(tests, i, t) {
		const char *name = str(t, "name"), *tok = str(t, "token");
		const char *imp = str(t, "implicit-assertion");
		if (strncmp(name, "4-S-", 4) != 0)
			continue;
		struct ed25519_keypair kp, pemkp;
		struct keyset1 ks = {0};
		struct paseto_verified v = {0};
		char msg[200] = "", *again = NULL;
		size_t len;
		uint8_t seed[32], sk[64];
		const char *pem = str(t, "secret-key-pem"), *foot = str(t, "footer");

		unhex(str(t, "secret-key-seed"), seed, 32);
		unhex(str(t, "secret-key"), sk, 64);
		unhex(str(t, "public-key"), ks.pub, 32);
		assert_int_equal(ed25519_from_seed(seed, &kp), ALLOT_OK);
		assert_memory_equal(kp.pub, ks.pub, 32);
		assert_memory_equal(sk + 32, ks.pub, 32); /* secret-key = seed || pub */
		assert_int_equal(ed25519_private_from_pem(pem, strlen(pem), &pemkp, msg, sizeof msg),
				 ALLOT_OK);
		assert_memory_equal(&pemkp, &kp, sizeof kp);
		memcpy(spub, ks.pub, 32);
		have_spub = 1;

		if (paseto_v4_verify(tok, strlen(tok), imp, strlen(imp), lookup1, &ks, &v, msg,
				     sizeof msg) != ALLOT_OK)
			fail_msg("%s: %s", name, msg);
		assert_int_equal(v.payload_len, strlen(str(t, "payload")));
		assert_memory_equal(v.payload, str(t, "payload"), v.payload_len);
		assert_string_equal(v.footer, foot);
		if (*foot)
			assert_string_equal(ks.seen_kid, v.kid);
		assert_int_equal(paseto_v4_sign(&kp, v.payload, v.payload_len, foot, strlen(foot), imp,
						strlen(imp), &again, &len), ALLOT_OK);
		assert_int_equal(len, strlen(tok));
		assert_string_equal(again, tok);
		/* The same token with another implicit assertion fails. */
		paseto_verified_release(&v);
		assert_int_equal(paseto_v4_verify(tok, strlen(tok), "x", 1, lookup1, &ks, &v, NULL, 0),
				 ALLOT_E_UNAUTHORIZED);
		free(again);
		ed25519_keypair_wipe(&kp);
		ed25519_keypair_wipe(&pemkp);
		ok++;
	}
	assert_true(have_spub);
	json_array_foreach(tests, i, t) {
		const char *name = str(t, "name"), *tok = str(t, "token");
		const char *imp = str(t, "implicit-assertion");
		struct keyset1 ks = {0};
		struct paseto_verified v = {0};
		char msg[200] = "";

		/* 4-F must fail; 4-E are v4.local, which a v4.public verifier
		 * must refuse as well. */
		if (strncmp(name, "4-F-", 4) != 0 && strncmp(name, "4-E-", 4) != 0)
			continue;
		if (name[2] == 'F')
			assert_true(json_is_true(json_object_get(t, "expect-fail")));
		if (str(t, "public-key"))
			unhex(str(t, "public-key"), ks.pub, 32);
		else
			memcpy(ks.pub, spub, 32);
		if (paseto_v4_verify(tok, strlen(tok), imp ? imp : "", imp ? strlen(imp) : 0, lookup1,
				     &ks, &v, msg, sizeof msg) == ALLOT_OK)
			fail_msg("%s: expect-fail vector accepted", name);
		assert_true(msg[0] != '\0');
		rejected++;
	}
	json_decref(root);
	printf("paseto: %zu 4-S vectors verified and re-signed identically; %zu 4-F and 4-E "
	       "(v4.local) vectors rejected\n", ok, rejected);
	assert_int_equal(ok, 3);
	assert_int_equal(rejected, 5 + 9);
}

/* A token with footer and implicit assertion, for the mutation tests. */
static char *make_token(struct ed25519_keypair *kp, struct keyset1 *ks, size_t *len)
{
	char *tok = NULL;
	const char *payload = "{\"sub\":\"alice@epfl.ch\",\"exp\":\"2030-01-01T00:00:00Z\"}";
	const char *foot = "{\"kid\":\"k1\"}";

	assert_int_equal(ed25519_keygen(kp), ALLOT_OK);
	memcpy(ks->pub, kp->pub, 32);
	ks->want_kid = "k1";
	assert_int_equal(paseto_v4_sign(kp, payload, strlen(payload), foot, strlen(foot), "allot:t",
					7, &tok, len), ALLOT_OK);
	return tok;
}

static void test_bit_flips_and_truncations(void **state)
{
	(void)state;
	struct ed25519_keypair kp;
	struct keyset1 ks = {0};
	struct paseto_verified v = {0};
	size_t len, flips = 0, truncs = 0;
	char *tok = make_token(&kp, &ks, &len), *m = malloc(len + 1);

	assert_non_null(m);
	assert_int_equal(paseto_v4_verify(tok, len, "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_OK);
	paseto_verified_release(&v);
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(m, tok, len + 1);
			m[i] ^= (char)(1 << b);
			if (paseto_v4_verify(m, len, "allot:t", 7, lookup1, &ks, &v, NULL, 0) == ALLOT_OK)
				fail_msg("bit %d of byte %zu flipped: accepted", b, i);
			flips++;
		}
	}
	for (size_t n = 0; n < len; n++) {
		if (paseto_v4_verify(tok, n, "allot:t", 7, lookup1, &ks, &v, NULL, 0) == ALLOT_OK)
			fail_msg("truncation to %zu bytes accepted", n);
		truncs++;
	}
	printf("paseto: %zu single-bit flips and %zu truncations of a %zu-byte token rejected\n",
	       flips, truncs, len);
	free(m);
	free(tok);
	ed25519_keypair_wipe(&kp);
}

static void test_malformed(void **state)
{
	(void)state;
	struct ed25519_keypair kp;
	struct keyset1 ks = {0};
	struct paseto_verified v = {0};
	size_t len;
	char *tok = make_token(&kp, &ks, &len), buf[PASETO_TOKEN_MAX + 64], msg[200];
	char *dot = strrchr(tok, '.');

	/* Wrong key, unknown kid (lookup refuses), wrong implicit assertion. */
	struct keyset1 other = ks;
	other.pub[0] ^= 1;
	assert_int_equal(paseto_v4_verify(tok, len, "allot:t", 7, lookup1, &other, &v, msg,
					  sizeof msg), ALLOT_E_UNAUTHORIZED);
	other = ks;
	other.want_kid = "k2";
	assert_int_equal(paseto_v4_verify(tok, len, "allot:t", 7, lookup1, &other, &v, msg,
					  sizeof msg), ALLOT_E_UNAUTHORIZED);
	assert_non_null(strstr(msg, "k1"));
	assert_int_equal(paseto_v4_verify(tok, len, "allot:u", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	assert_int_equal(paseto_v4_verify(tok, len, "", 0, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);

	/* Footer removed, doubled, empty, extra part. */
	assert_int_equal(paseto_v4_verify(tok, (size_t)(dot - tok), "allot:t", 7, lookup1, &ks, &v,
					  NULL, 0), ALLOT_E_UNAUTHORIZED);
	snprintf(buf, sizeof buf, "%s%s", tok, dot);
	assert_int_equal(paseto_v4_verify(buf, strlen(buf), "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	snprintf(buf, sizeof buf, "%.*s.", (int)(dot - tok), tok);
	assert_int_equal(paseto_v4_verify(buf, strlen(buf), "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);

	/* Header variants, a JWS, padding, whitespace. */
	static const char *bad[] = {
		"", "v4.public.", "v4.public", "v4.local.AAAA", "v3.public.AAAA", "V4.PUBLIC.AAAA",
		("eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9."
		 "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"),
		"Bearer v4.public.AAAA",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(paseto_v4_verify(bad[i], strlen(bad[i]), "allot:t", 7, lookup1, &ks, &v,
						  NULL, 0), ALLOT_E_UNAUTHORIZED);
	snprintf(buf, sizeof buf, "%.*s=%s", (int)(dot - tok), tok, dot);
	assert_int_equal(paseto_v4_verify(buf, strlen(buf), "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	snprintf(buf, sizeof buf, " %s", tok);
	assert_int_equal(paseto_v4_verify(buf, strlen(buf), "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	snprintf(buf, sizeof buf, "%s\n", tok);
	assert_int_equal(paseto_v4_verify(buf, strlen(buf), "allot:t", 7, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	/* Standard-alphabet base64 instead of base64url. */
	memcpy(buf, tok, len + 1);
	int swapped = 0;
	for (size_t i = 10; i < len; i++) {
		if (buf[i] == '-' || buf[i] == '_') {
			buf[i] = buf[i] == '-' ? '+' : '/';
			swapped = 1;
		}
	}
	if (swapped)
		assert_int_equal(paseto_v4_verify(buf, len, "allot:t", 7, lookup1, &ks, &v, NULL, 0),
				 ALLOT_E_UNAUTHORIZED);
	/* Over-long token. */
	memset(buf, 'A', sizeof buf);
	memcpy(buf, "v4.public.", 10);
	assert_int_equal(paseto_v4_verify(buf, PASETO_TOKEN_MAX + 4, "allot:t", 7, lookup1, &ks, &v,
					  msg, sizeof msg), ALLOT_E_UNAUTHORIZED);
	/* Payload shorter than a signature. */
	assert_int_equal(paseto_v4_verify("v4.public.AAAA", 14, "", 0, lookup1, &ks, &v, NULL, 0),
			 ALLOT_E_UNAUTHORIZED);
	assert_int_equal(v.payload, NULL);
	free(tok);

	/* Footers: signed properly, but not a JSON object, or a bad kid. */
	static const char *feet[] = {
		"k1", "[\"kid\"]", "{\"kid\":1}", "{\"kid\":\"\"}", "{\"kid\":\"a b\"}",
		"{\"kid\":\"k1\",\"kid\":\"k2\"}", "{\"kid\":\"k1\"", "{\"kid\":\"k\\u0000\"}",
	};
	ks.want_kid = NULL;
	for (size_t i = 0; i < sizeof feet / sizeof feet[0]; i++) {
		assert_int_equal(paseto_v4_sign(&kp, "{}", 2, feet[i], strlen(feet[i]), NULL, 0, &tok,
						&len), ALLOT_OK);
		ks.calls = 0;
		if (paseto_v4_verify(tok, len, NULL, 0, lookup1, &ks, &v, msg, sizeof msg) == ALLOT_OK)
			fail_msg("footer %s accepted", feet[i]);
		assert_int_equal(ks.calls, 0); /* refused before any key lookup */
		free(tok);
	}
	/* A footer over the bound is refused before decoding. */
	char big[PASETO_FOOTER_MAX + 32];
	snprintf(big, sizeof big, "{\"kid\":\"k1\",\"x\":\"%0*d\"}", PASETO_FOOTER_MAX, 0);
	assert_int_equal(paseto_v4_sign(&kp, "{}", 2, big, strlen(big), NULL, 0, &tok, &len),
			 ALLOT_OK);
	assert_int_equal(paseto_v4_verify(tok, len, NULL, 0, lookup1, &ks, &v, msg, sizeof msg),
			 ALLOT_E_UNAUTHORIZED);
	free(tok);
	/* No footer: the lookup gets NULL. */
	assert_int_equal(paseto_v4_sign(&kp, "{}", 2, NULL, 0, NULL, 0, &tok, &len), ALLOT_OK);
	assert_int_equal(paseto_v4_verify(tok, len, NULL, 0, lookup1, &ks, &v, NULL, 0), ALLOT_OK);
	assert_string_equal(ks.seen_kid, "");
	assert_string_equal(v.kid, "");
	assert_string_equal(v.footer, "");
	paseto_verified_release(&v);
	paseto_verified_release(&v); /* idempotent */
	free(tok);
	/* Oversized payload cannot be signed. */
	static char huge[PASETO_TOKEN_MAX];
	memset(huge, 'x', sizeof huge);
	assert_int_equal(paseto_v4_sign(&kp, huge, sizeof huge, NULL, 0, NULL, 0, &tok, &len),
			 ALLOT_E_TOO_LARGE);
	ed25519_keypair_wipe(&kp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pae),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_bit_flips_and_truncations),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests_name("paseto", tests, NULL, NULL);
}
