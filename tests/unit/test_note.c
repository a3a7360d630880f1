/* test_note.c — C2SP signed notes and tlog checkpoints: the Go sumdb/note
 * reference note reproduced byte for byte, tampering, unknown and wrong
 * keys, malformed notes and checkpoints, and a checkpoint + proof round
 * trip over a Merkle tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/b64.h"
#include "tlog/checkpoint.h"
#include "tlog/merkle.h"
#include "tlog/note.h"

/* golang.org/x/mod/sumdb/note: the documented example. */
#define GO_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz" /* 0x01 || seed */
#define GO_TEXT "If you think cryptography is the answer to your problem,\n" \
		"then you don't know what your problem is.\n"
#define GO_SIGLINE "\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
#define GO_NOTE GO_TEXT "\n" GO_SIGLINE

static void go_key(struct ed25519_keypair *kp)
{
	uint8_t raw[40];
	size_t n;
	assert_int_equal(b64_decode(GO_SKEY_B64, strlen(GO_SKEY_B64), raw, sizeof raw, &n), ALLOT_OK);
	assert_int_equal(n, 33);
	assert_int_equal(raw[0], 1);
	assert_int_equal(ed25519_from_seed(raw + 1, kp), ALLOT_OK);
}

static void test_go_reference(void **state)
{
	(void)state;
	struct note_verifier v;
	struct ed25519_keypair kp;
	char vk[NOTE_VKEY_MAX], msg[200], *note = NULL;
	size_t len, tl = 0;

	assert_int_equal(note_vkey_parse(GO_VKEY, strlen(GO_VKEY), &v, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(v.name, "PeterNeumann");
	assert_int_equal(v.key_id, 0xc74f20a3u);
	assert_string_equal(note_vkey_format(&v, vk), GO_VKEY);
	go_key(&kp);
	assert_memory_equal(kp.pub, v.pub, 32);
	assert_int_equal(note_key_id("PeterNeumann", kp.pub), 0xc74f20a3u);
	assert_int_equal(note_sign(GO_TEXT, strlen(GO_TEXT), "PeterNeumann", &kp, &note, &len, msg,
				   sizeof msg), ALLOT_OK);
	assert_string_equal(note, GO_NOTE);
	assert_int_equal(len, strlen(GO_NOTE));
	free(note);
	assert_int_equal(note_open(GO_NOTE, strlen(GO_NOTE), &v, 1, &tl, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(tl, strlen(GO_TEXT));
	ed25519_keypair_wipe(&kp);
	printf("note: Go sumdb/note reference note reproduced and verified\n");
}

static void test_tamper_and_keys(void **state)
{
	(void)state;
	struct note_verifier peter, other, forged, list[2];
	struct ed25519_keypair kp, kp2;
	char buf[1024], msg[200], *note2 = NULL;
	size_t tl, len, n = strlen(GO_NOTE), flips = 0;

	assert_int_equal(note_vkey_parse(GO_VKEY, strlen(GO_VKEY), &peter, NULL, 0), ALLOT_OK);
	/* Every single-bit flip of the text and of the signature line. */
	for (size_t i = 0; i < n; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(buf, GO_NOTE, n + 1);
			buf[i] ^= (char)(1 << b);
			if (note_open(buf, n, &peter, 1, &tl, NULL, 0) == ALLOT_OK)
				fail_msg("flip of bit %d in byte %zu accepted", b, i);
			flips++;
		}
	}
	/* Same key under another name, another key under the same name. */
	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	assert_int_equal(note_verifier_init(&other, "PeterNeumann2", peter.pub, NULL, 0), ALLOT_OK);
	assert_int_equal(note_open(GO_NOTE, n, &other, 1, &tl, msg, sizeof msg), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(msg, "no signature by a known key"));
	assert_int_equal(note_verifier_init(&other, "PeterNeumann", kp.pub, NULL, 0), ALLOT_OK);
	assert_int_equal(note_open(GO_NOTE, n, &other, 1, &tl, msg, sizeof msg), ALLOT_E_UNPROCESSABLE);
	/* A verifier claiming Peter's name and key id with another key. */
	forged = peter;
	memcpy(forged.pub, kp.pub, 32);
	assert_int_equal(note_open(GO_NOTE, n, &forged, 1, &tl, msg, sizeof msg),
			 ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(msg, "invalid signature"));
	assert_int_equal(note_open(GO_NOTE, n, NULL, 0, &tl, msg, sizeof msg), ALLOT_E_UNPROCESSABLE);

	/* Unknown signatures are ignored: a second signer on the same text. */
	assert_int_equal(ed25519_keygen(&kp2), ALLOT_OK);
	assert_int_equal(note_sign(GO_TEXT, strlen(GO_TEXT), "witness.example/w1", &kp2, &note2, &len,
				   NULL, 0), ALLOT_OK);
	snprintf(buf, sizeof buf, "%s%s", note2, GO_SIGLINE);
	assert_int_equal(note_open(buf, strlen(buf), &peter, 1, &tl, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(tl, strlen(GO_TEXT));
	assert_int_equal(note_verifier_init(&list[0], "witness.example/w1", kp2.pub, NULL, 0),
			 ALLOT_OK);
	list[1] = peter;
	assert_int_equal(note_open(buf, strlen(buf), list, 2, &tl, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(note_open(buf, strlen(buf), list, 1, &tl, msg, sizeof msg), ALLOT_OK);
	free(note2);
	ed25519_keypair_wipe(&kp);
	ed25519_keypair_wipe(&kp2);
	printf("note: %zu single-bit flips of the reference note rejected\n", flips);
}

static void test_malformed_notes(void **state)
{
	(void)state;
	struct note_verifier v;
	char msg[200];
	size_t tl;
	static const char *bad[] = {
		GO_TEXT GO_SIGLINE,                                  /* no blank line */
		GO_TEXT "\n",                                        /* no signatures */
		GO_TEXT "\n\n" GO_SIGLINE,                           /* empty line in text */
		GO_TEXT "\n-- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		GO_TEXT "\n\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
		GO_TEXT "\n\xE2\x80\x94 PeterNeumann  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		GO_TEXT "\n\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n",
		GO_TEXT "\n\xE2\x80\x94 PeterNeumann x08go/Y=\n",
		GO_TEXT "\n\xE2\x80\x94 Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
		GO_TEXT "\n" GO_SIGLINE "\n",
		GO_TEXT "\n" GO_SIGLINE "trailing",
		"\n\n" GO_SIGLINE,
		"text without newline\n" GO_SIGLINE,
		"tab\there\n\n" GO_SIGLINE,
		"bad utf8 \xC3\x28\n\n" GO_SIGLINE,
		"overlong \xC0\xAF\n\n" GO_SIGLINE,
		"cr\r\n\n" GO_SIGLINE,
		"",
	};
	assert_int_equal(note_vkey_parse(GO_VKEY, strlen(GO_VKEY), &v, NULL, 0), ALLOT_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		if (note_open(bad[i], strlen(bad[i]), &v, 1, &tl, msg, sizeof msg) == ALLOT_OK)
			fail_msg("malformed note %zu accepted", i);
		assert_true(msg[0] != '\0');
	}
	/* Too many signature lines. */
	size_t cap = strlen(GO_NOTE) + (NOTE_SIGS_MAX + 1) * strlen(GO_SIGLINE) + 1;
	char *many = malloc(cap);
	assert_non_null(many);
	strcpy(many, GO_NOTE);
	for (int i = 0; i < NOTE_SIGS_MAX; i++)
		strcat(many, GO_SIGLINE);
	assert_int_equal(note_open(many, strlen(many), &v, 1, &tl, msg, sizeof msg),
			 ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(msg, "signatures"));
	free(many);
	/* Signing refuses text that could not be opened again. */
	struct ed25519_keypair kp;
	char *note = NULL;
	size_t len;
	go_key(&kp);
	static const char *bad_text[] = {"", "no newline", "a\n\nb\n", "\n", "nul\x01\n"};
	for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++)
		assert_int_equal(note_sign(bad_text[i], strlen(bad_text[i]), "n", &kp, &note, &len, NULL,
					   0), ALLOT_E_INVALID);
	static const char *bad_name[] = {"", "a b", "a+b", "caf\xC3\xA9", "a\nb"};
	for (size_t i = 0; i < sizeof bad_name / sizeof bad_name[0]; i++)
		assert_int_equal(note_sign(GO_TEXT, strlen(GO_TEXT), bad_name[i], &kp, &note, &len, NULL,
					   0), ALLOT_E_INVALID);
	assert_null(note);
	ed25519_keypair_wipe(&kp);
}

static void test_vkeys(void **state)
{
	(void)state;
	struct note_verifier v;
	char msg[200];
	static const char *bad[] = {
		"", "PeterNeumann", "PeterNeumann+c74f20a3",
		"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  /* id mismatch */
		"PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",   /* short id */
		"PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  /* non-hex */
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",   /* short b64 */
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ", /* space */
		"Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a3+AhpjZQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  /* type 2 */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		if (note_vkey_parse(bad[i], strlen(bad[i]), &v, msg, sizeof msg) == ALLOT_OK)
			fail_msg("vkey %zu accepted", i);
		assert_true(msg[0] != '\0');
	}
	/* Uppercase hex is tolerated on input; output is lowercase. */
	const char *up = "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
	char out[NOTE_VKEY_MAX];
	assert_int_equal(note_vkey_parse(up, strlen(up), &v, NULL, 0), ALLOT_OK);
	assert_string_equal(note_vkey_format(&v, out), GO_VKEY);
	/* A fresh key round-trips. */
	struct ed25519_keypair kp;
	struct note_verifier w, back;
	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	assert_int_equal(note_verifier_init(&w, "allot.example.org/log", kp.pub, NULL, 0), ALLOT_OK);
	note_vkey_format(&w, out);
	assert_int_equal(note_vkey_parse(out, strlen(out), &back, msg, sizeof msg), ALLOT_OK);
	assert_memory_equal(&back, &w, sizeof w);
	assert_int_equal(note_verifier_init(&w, "bad name", kp.pub, msg, sizeof msg),
			 ALLOT_E_INVALID);
	ed25519_keypair_wipe(&kp);
}

static void test_checkpoint_parse(void **state)
{
	(void)state;
	struct checkpoint c;
	char msg[200], *text = NULL;
	size_t len;
	/* The example of the C2SP tlog-checkpoint specification. */
	const char *ex = "example.com/behind-the-sofa\n20852163\n"
			 "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

	assert_int_equal(checkpoint_parse(ex, strlen(ex), &c, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(c.origin, "example.com/behind-the-sofa");
	assert_int_equal(c.size, 20852163);
	assert_int_equal(c.n_ext, 0);
	assert_int_equal(checkpoint_format(&c, &text, &len, msg, sizeof msg), ALLOT_OK);
	assert_string_equal(text, ex);
	free(text);
	const char *ext = "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextra one\nextra two\n";
	assert_int_equal(checkpoint_parse(ext, strlen(ext), &c, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(c.size, 0);
	assert_int_equal(c.n_ext, 2);
	const char *max = "log\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
	assert_int_equal(checkpoint_parse(max, strlen(max), &c, msg, sizeof msg), ALLOT_OK);
	assert_true(c.size == UINT64_MAX);

#define R "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	static const char *bad[] = {
		"", "log\n", "log\n5\n", "log\n5\n" R, "\n5\n" R "\n", "log x\n5\n" R "\n",
		"log\n05\n" R "\n", "log\n-5\n" R "\n", "log\n+5\n" R "\n", "log\n5 \n" R "\n",
		"log\n\n" R "\n", "log\n18446744073709551616\n" R "\n",
		"log\n99999999999999999999\n" R "\n", "log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF==\n",
		"log\n5\n47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\n", "log\n5\nAAAA\n",
		"log\r\n5\n" R "\n", "log\n5\n" R "\n\nextension\n", "log\n0x5\n" R "\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		if (checkpoint_parse(bad[i], strlen(bad[i]), &c, msg, sizeof msg) == ALLOT_OK)
			fail_msg("checkpoint %zu accepted: %s", i, bad[i]);
		assert_true(msg[0] != '\0');
	}
	struct checkpoint badorigin = {"has space", 1, {0}, 0};
	assert_int_equal(checkpoint_format(&badorigin, &text, &len, NULL, 0), ALLOT_E_INVALID);
}

static void test_signed_checkpoints_and_proofs(void **state)
{
	(void)state;
	struct merkle_memstore st = MERKLE_MEMSTORE_INIT;
	struct merkle_tree t;
	struct ed25519_keypair kp, kp2;
	struct note_verifier v, v2;
	struct checkpoint c50, c100, o50, o100;
	struct merkle_proof pr;
	char *n50 = NULL, *n100 = NULL, msg[200], buf[1024];
	size_t l50, l100;
	uint8_t leaf[32];

	assert_int_equal(ed25519_keygen(&kp), ALLOT_OK);
	assert_int_equal(note_verifier_init(&v, "allot.example.org/log", kp.pub, NULL, 0), ALLOT_OK);
	merkle_tree_init(&t);
	memset(&c50, 0, sizeof c50);
	strcpy(c50.origin, "allot.example.org/log");
	c100 = c50;
	for (int i = 0; i < 100; i++) {
		char rec[32];
		int n = snprintf(rec, sizeof rec, "record %d", i);
		merkle_leaf_hash(rec, (size_t)n, leaf);
		assert_int_equal(merkle_tree_append(&t, leaf, merkle_memstore_put, &st), ALLOT_OK);
		if (t.size == 50) {
			c50.size = 50;
			merkle_tree_root(&t, c50.root);
		}
	}
	c100.size = 100;
	merkle_tree_root(&t, c100.root);
	assert_int_equal(checkpoint_sign(&c50, &kp, &n50, &l50, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(checkpoint_sign(&c100, &kp, &n100, &l100, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(checkpoint_open(n50, l50, &v, &o50, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(checkpoint_open(n100, l100, &v, &o100, msg, sizeof msg), ALLOT_OK);
	assert_int_equal(o50.size, 50);
	assert_memory_equal(o100.root, c100.root, 32);

	/* The auditor's checks, from the opened checkpoints only. */
	assert_int_equal(merkle_prove_consistency(o50.size, o100.size, merkle_memstore_get, &st, &pr),
			 ALLOT_OK);
	assert_int_equal(merkle_verify_consistency(o50.size, o100.size, o50.root, o100.root,
						   (const uint8_t(*)[32])pr.h, pr.n, msg, sizeof msg),
			 ALLOT_OK);
	merkle_leaf_hash("record 42", 9, leaf);
	assert_int_equal(merkle_prove_inclusion(42, o100.size, merkle_memstore_get, &st, &pr),
			 ALLOT_OK);
	assert_int_equal(merkle_verify_inclusion(42, o100.size, leaf, (const uint8_t(*)[32])pr.h,
						 pr.n, o100.root, msg, sizeof msg), ALLOT_OK);
	merkle_leaf_hash("record 42 altered", 17, leaf);
	assert_int_equal(merkle_verify_inclusion(42, o100.size, leaf, (const uint8_t(*)[32])pr.h,
						 pr.n, o100.root, NULL, 0), ALLOT_E_UNPROCESSABLE);

	/* A changed size line breaks the signature. */
	memcpy(buf, n100, l100 + 1);
	char *p = strstr(buf, "\n100\n");
	assert_non_null(p);
	p[3] = '1'; /* "101" */
	assert_int_equal(checkpoint_open(buf, l100, &v, &o100, msg, sizeof msg),
			 ALLOT_E_UNPROCESSABLE);
	/* Another log's key, and a note whose origin is not its signer's name. */
	assert_int_equal(ed25519_keygen(&kp2), ALLOT_OK);
	assert_int_equal(note_verifier_init(&v2, "allot.example.org/log", kp2.pub, NULL, 0), ALLOT_OK);
	assert_int_equal(checkpoint_open(n100, l100, &v2, &o100, msg, sizeof msg),
			 ALLOT_E_UNPROCESSABLE);
	char *text = NULL, *odd = NULL;
	size_t tl, ol;
	struct checkpoint other = c100;
	strcpy(other.origin, "another.example.org/log");
	assert_int_equal(checkpoint_format(&other, &text, &tl, NULL, 0), ALLOT_OK);
	assert_int_equal(note_sign(text, tl, "allot.example.org/log", &kp, &odd, &ol, NULL, 0),
			 ALLOT_OK);
	assert_int_equal(checkpoint_open(odd, ol, &v, &o100, msg, sizeof msg), ALLOT_E_UNPROCESSABLE);
	assert_non_null(strstr(msg, "origin"));
	free(text);
	free(odd);
	free(n50);
	free(n100);
	ed25519_keypair_wipe(&kp);
	ed25519_keypair_wipe(&kp2);
	merkle_memstore_release(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_reference),
		cmocka_unit_test(test_tamper_and_keys),
		cmocka_unit_test(test_malformed_notes),
		cmocka_unit_test(test_vkeys),
		cmocka_unit_test(test_checkpoint_parse),
		cmocka_unit_test(test_signed_checkpoints_and_proofs),
	};
	return cmocka_run_group_tests_name("note", tests, NULL, NULL);
}
