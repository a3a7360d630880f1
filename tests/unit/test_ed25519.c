/* test_ed25519.c — Ed25519: RFC 8032 section 7.1 known answers, all
 * Wycheproof cases (../shared/vectors), public-key text form, PEM and
 * private-key files (mode and atomic write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/b64.h"
#include "crypto/ed25519.h"

static const char *shared_dir(void)
{
	const char *d = getenv("ALLOT_SHARED");
	return d && *d ? d : "../shared";
}

static void unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
	assert_int_equal(hex_decode(s, strlen(s), out, cap, n), ALLOT_OK);
}

/* RFC 8032 section 7.1, TEST 1, 2, 3 and SHA(abc). */
static const struct { const char *seed, *pub, *msg, *sig; } rfc8032[] = {
	{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	 "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	 "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	{"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
	 "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
	 "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	 "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

static void test_rfc8032(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rfc8032 / sizeof rfc8032[0]; i++) {
		uint8_t seed[32], pub[32], msg[64], sig[64], got[64];
		size_t n, mlen;
		struct ed25519_keypair kp;

		unhex(rfc8032[i].seed, seed, sizeof seed, &n);
		unhex(rfc8032[i].pub, pub, sizeof pub, &n);
		unhex(rfc8032[i].msg, msg, sizeof msg, &mlen);
		unhex(rfc8032[i].sig, sig, sizeof sig, &n);
		assert_int_equal(ed25519_from_seed(seed, &kp), ALLOT_OK);
		assert_memory_equal(kp.pub, pub, 32);
		assert_int_equal(ed25519_sign(&kp, msg, mlen, got), ALLOT_OK);
		assert_memory_equal(got, sig, 64);
		assert_int_equal(ed25519_verify(pub, msg, mlen, sig, 64), ALLOT_OK);
		/* Any flipped bit in the signature, the message or the key fails. */
		for (size_t bit = 0; bit < 64 * 8; bit += 7) {
			got[bit / 8] ^= (uint8_t)(1u << bit % 8);
			assert_int_equal(ed25519_verify(pub, msg, mlen, got, 64), ALLOT_E_UNAUTHORIZED);
			got[bit / 8] ^= (uint8_t)(1u << bit % 8);
		}
		if (mlen) {
			msg[0] ^= 1;
			assert_int_equal(ed25519_verify(pub, msg, mlen, sig, 64), ALLOT_E_UNAUTHORIZED);
			msg[0] ^= 1;
		}
		pub[5] ^= 0x10;
		assert_int_equal(ed25519_verify(pub, msg, mlen, sig, 64), ALLOT_E_UNAUTHORIZED);
		assert_int_equal(ed25519_verify(kp.pub, msg, mlen, sig, 63), ALLOT_E_UNAUTHORIZED);
		assert_int_equal(ed25519_verify(kp.pub, msg, mlen, sig, 0), ALLOT_E_UNAUTHORIZED);
		ed25519_keypair_wipe(&kp);
		for (size_t k = 0; k < sizeof kp.seed; k++)
			assert_int_equal(kp.seed[k], 0);
	}
	printf("ed25519: %zu RFC 8032 section 7.1 known answers OK\n",
	       sizeof rfc8032 / sizeof rfc8032[0]);
}

static void test_wycheproof(void **state)
{
	(void)state;
	char path[512];
	json_error_t jerr;
	json_t *root, *groups, *g;
	size_t gi, valid = 0, invalid = 0, total = 0;

	snprintf(path, sizeof path, "%s/vectors/wycheproof/ed25519_test.json", shared_dir());
	root = json_load_file(path, 0, &jerr);
	if (!root) {
		printf("ed25519: SKIP wycheproof: %s not readable (%s)\n", path, jerr.text);
		skip();
	}
	groups = json_object_get(root, "testGroups");
	assert_true(json_is_array(groups));
	json_array_foreach(groups, gi, g) {
		uint8_t pub[32];
		size_t n, ti;
		json_t *t, *tests = json_object_get(g, "tests");
		const char *pk = json_string_value(json_object_get(json_object_get(g, "publicKey"), "pk"));

		assert_non_null(pk);
		unhex(pk, pub, sizeof pub, &n);
		assert_int_equal(n, 32);
		json_array_foreach(tests, ti, t) {
			const char *m = json_string_value(json_object_get(t, "msg"));
			const char *s = json_string_value(json_object_get(t, "sig"));
			const char *res = json_string_value(json_object_get(t, "result"));
			size_t mlen = strlen(m) / 2, slen = strlen(s) / 2;
			uint8_t *msg = malloc(mlen + 1), *sig = malloc(slen + 1);
			allot_err e;

			assert_non_null(msg);
			assert_non_null(sig);
			unhex(m, msg, mlen, &mlen);
			unhex(s, sig, slen, &slen);
			e = ed25519_verify(pub, msg, mlen, sig, slen);
			if (strcmp(res, "valid") == 0) {
				if (e != ALLOT_OK)
					fail_msg("wycheproof tcId %lld: valid signature rejected",
						 (long long)json_integer_value(json_object_get(t, "tcId")));
				valid++;
			} else {
				assert_string_equal(res, "invalid");
				if (e != ALLOT_E_UNAUTHORIZED)
					fail_msg("wycheproof tcId %lld: invalid signature accepted",
						 (long long)json_integer_value(json_object_get(t, "tcId")));
				invalid++;
			}
			total++;
			free(msg);
			free(sig);
		}
	}
	json_decref(root);
	printf("ed25519: wycheproof %zu cases as expected (%zu valid, %zu invalid)\n", total, valid,
	       invalid);
	assert_int_equal(total, 151);
}

static void test_pub_text(void **state)
{
	(void)state;
	struct ed25519_keypair kp;
	char txt[ED25519_PUB_TEXT_MAX], msg[128];
	uint8_t pub[32];

	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	ed25519_pub_format(kp.pub, txt);
	assert_int_equal(strlen(txt), 52);
	assert_int_equal(ed25519_pub_parse(txt, strlen(txt), pub, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(pub, kp.pub, 32);

	static const char *bad[] = {
		"", "ed25519:", "ED25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* unpadded */
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", /* 33 bytes */
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",  /* 31 bytes */
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",   /* trailing bits */
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ",
		"ed25519: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-=",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		assert_int_equal(ed25519_pub_parse(bad[i], strlen(bad[i]), pub, msg, sizeof msg),
				 ALLOT_E_INVALID);
		assert_true(msg[0] != '\0');
	}
	assert_int_equal(ed25519_pub_parse("ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 52,
					   pub, NULL, 0), ALLOT_OK);
	ed25519_keypair_wipe(&kp);
}

static void test_pem(void **state)
{
	(void)state;
	/* The PKCS#8 PEM of RFC 8032 TEST 1 as `openssl pkey` prints it. */
	struct ed25519_keypair kp, back;
	char pem[ED25519_PEM_MAX], msg[160];
	uint8_t seed[32];
	size_t n, len;

	unhex(rfc8032[0].seed, seed, sizeof seed, &n);
	assert_int_equal(ed25519_from_seed(seed, &kp), ALLOT_OK);
	assert_int_equal(ed25519_private_to_pem(&kp, pem, &len), ALLOT_OK);
	assert_int_equal(strlen(pem), len);
	assert_string_equal(pem, "-----BEGIN PRIVATE KEY-----\n"
				 "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
				 "-----END PRIVATE KEY-----\n");
	assert_int_equal(ed25519_private_from_pem(pem, len, &back, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&back, &kp, sizeof kp);

	static const char *bad[] = {
		"",
		"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v\n-----END PRIVATE KEY-----\n",
		/* a P-256 key (not Ed25519) */
		("-----BEGIN PRIVATE KEY-----\n"
		 "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjwEerLPAvq1mQAxi\n"
		 "c9sTjKV7Ex39Jfdiu4c4LxiygaihRANCAASSoqMudNZdiFAKPgtTrhv4lilk0rqW\n"
		 "KjuBBFkFVmEC+rsKkYVEWbGqURZdakCO0x/co4cK2OX+38FXu/Iaf6vK\n"
		 "-----END PRIVATE KEY-----\n"),
		("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
		 "-----END PUBLIC KEY-----\n"),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		assert_int_equal(ed25519_private_from_pem(bad[i], strlen(bad[i]), &back, msg, sizeof msg),
				 ALLOT_E_INVALID);
		assert_true(msg[0] != '\0');
		if (i == 2)
			assert_non_null(strstr(msg, "not an Ed25519 key"));
	}
	ed25519_keypair_wipe(&kp);
	ed25519_keypair_wipe(&back);
}

static void test_key_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/allot-ed25519-XXXXXX", path[256], tmp[300], msg[256];
	struct ed25519_keypair kp, back;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/signing.key", dir);
	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	assert_int_equal(ed25519_private_write(path, &kp, 0, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(ed25519_private_read(path, &back, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&back, &kp, sizeof kp);
	/* No temporary file is left behind. */
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);

	/* Existing file: refused without overwrite, replaced with it. */
	assert_int_equal(ed25519_private_write(path, &kp, 0, msg, sizeof msg), ALLOT_E_CONFLICT);
	assert_int_equal(ed25519_keygen(&back), ALLOT_OK);
	assert_int_equal(ed25519_private_write(path, &back, 1, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(ed25519_private_read(path, &kp, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&back, &kp, sizeof kp);

	/* Group- or world-accessible files are refused with a clear reason. */
	static const mode_t modes[] = {0640, 0604, 0660, 0644, 0602, 0610};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		msg[0] = '\0';
		assert_int_equal(ed25519_private_read(path, &kp, msg, sizeof msg), ALLOT_E_FORBIDDEN);
		assert_non_null(strstr(msg, "group or others"));
	}
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(ed25519_private_read(path, &kp, msg, sizeof msg), ALLOT_OK);
	/* A symbolic link is followed; the target's mode is what counts. */
	snprintf(tmp, sizeof tmp, "%s/link.key", dir);
	assert_int_equal(symlink(path, tmp), 0);
	assert_int_equal(ed25519_private_read(tmp, &kp, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(ed25519_private_read(tmp, &kp, msg, sizeof msg), ALLOT_E_FORBIDDEN);
	assert_int_equal(chmod(path, 0400), 0);
	unlink(tmp);

	/* Missing file, directory, garbage content. */
	snprintf(tmp, sizeof tmp, "%s/missing.key", dir);
	assert_int_equal(ed25519_private_read(tmp, &kp, msg, sizeof msg), ALLOT_E_IO);
	assert_non_null(strstr(msg, "missing.key"));
	assert_int_equal(ed25519_private_read(dir, &kp, msg, sizeof msg), ALLOT_E_FORBIDDEN);
	snprintf(tmp, sizeof tmp, "%s/garbage.key", dir);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(chmod(tmp, 0600), 0);
	assert_int_equal(ed25519_private_read(tmp, &kp, msg, sizeof msg), ALLOT_E_INVALID);
	assert_non_null(strstr(msg, "garbage.key"));
	/* Writing into a missing directory fails cleanly. */
	snprintf(tmp, sizeof tmp, "%s/nodir/x.key", dir);
	assert_int_equal(ed25519_private_write(tmp, &kp, 0, msg, sizeof msg), ALLOT_E_IO);

	unlink(path);
	snprintf(tmp, sizeof tmp, "%s/garbage.key", dir);
	unlink(tmp);
	assert_int_equal(rmdir(dir), 0);
	ed25519_keypair_wipe(&kp);
	ed25519_keypair_wipe(&back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8032),
		cmocka_unit_test(test_wycheproof),
		cmocka_unit_test(test_pub_text),
		cmocka_unit_test(test_pem),
		cmocka_unit_test(test_key_files),
	};
	return cmocka_run_group_tests_name("ed25519", tests, NULL, NULL);
}
