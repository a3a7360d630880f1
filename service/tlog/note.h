/* note.h — C2SP signed notes (https://c2sp.org/signed-note) with Ed25519.
 *
 *   signed note = text "\n" signature-line...
 *   text        = UTF-8 lines, each ending in "\n"; no other control chars
 *   signature   = "\u2014 " name " " base64(key id (4 bytes, big endian) || sig) "\n"
 *   key id      = SHA-256(name "\n" 0x01 pubkey)[0..4)      (0x01 = Ed25519)
 *   sig         = Ed25519 over the text (every byte up to and including its
 *                 final newline)
 *   verifier key (vkey) text form = name "+" hex(key id) "+" base64(0x01 pubkey)
 *
 * Key names: 1..NOTE_NAME_MAX printable ASCII bytes, no space and no '+'
 * (C2SP forbids Unicode spaces and '+'; ASCII is our stricter choice), e.g.
 * "allot.example.org/log".
 *
 * Thread-safety: reentrant, no shared state.  Parsers take buffers, not
 * paths (fuzzable).
 */
#ifndef ALLOT_TLOG_NOTE_H
#define ALLOT_TLOG_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/ed25519.h"

#define NOTE_NAME_MAX 255
/* Largest signed note accepted: a checkpoint is ~150 bytes plus ~100 per
 * signature; 64 KiB leaves room for many co-signatures and extensions. */
#define NOTE_MAX 65536
/* Signatures per note, at most (as the Go reference implementation). */
#define NOTE_SIGS_MAX 100
/* name "+" 8 hex "+" 44 base64 + NUL */
#define NOTE_VKEY_MAX (NOTE_NAME_MAX + 1 + 8 + 1 + 44 + 1)
/* The signature-type byte of Ed25519 keys. */
#define NOTE_ALG_ED25519 0x01

struct note_verifier {
	char name[NOTE_NAME_MAX + 1];
	uint32_t key_id;
	uint8_t pub[ED25519_PUB_LEN];
};

/* Checks a key name.  ALLOT_OK or ALLOT_E_INVALID. */
allot_err note_name_check(const char *name, size_t n, char *msg, size_t msgcap);
/* The signed-note key id of (name, Ed25519 pub). */
uint32_t note_key_id(const char *name, const uint8_t pub[ED25519_PUB_LEN]);
/* Fills *v for name and pub (computing the key id).  OUT: *v on success. */
allot_err note_verifier_init(struct note_verifier *v, const char *name,
			     const uint8_t pub[ED25519_PUB_LEN], char *msg, size_t msgcap);
/* The vkey text of v into out (NUL-terminated); returns out. */
char *note_vkey_format(const struct note_verifier *v, char out[NOTE_VKEY_MAX]);
/* Parses a vkey: name check, 8 lowercase-or-uppercase hex digits, padded
 * base64 of 33 bytes starting with 0x01, and the key id must match the one
 * computed from name and key.  OUT: *v on success only. */
allot_err note_vkey_parse(const char *s, size_t n, struct note_verifier *v, char *msg,
			  size_t msgcap);

/* Checks note text: non-empty, valid UTF-8, ends with "\n", no control
 * characters but "\n", no empty line ("\n\n" would end the text early). */
allot_err note_text_check(const char *text, size_t n, char *msg, size_t msgcap);
/* Signs text (note_text_check'ed) as name with kp.  OUT: *note (from
 * malloc(), NUL-terminated, caller frees) and *len on success only. */
allot_err note_sign(const char *text, size_t n, const char *name,
		    const struct ed25519_keypair *kp, char **note, size_t *len, char *msg,
		    size_t msgcap);
/* Verifies a signed note against the known verifiers vs[0..nv).  Succeeds
 * when at least one signature is from a known verifier (same name and key
 * id) and every such signature verifies; signatures of unknown keys are
 * ignored, as the spec requires.  Fails (ALLOT_E_UNPROCESSABLE, reason in
 * msg) on a malformed note, a bad signature by a known key, or no known
 * signature.  OUT: *text_len, the length of the signed text (which is
 * note[0..*text_len)), on success only. */
allot_err note_open(const char *note, size_t n, const struct note_verifier *vs, size_t nv,
		    size_t *text_len, char *msg, size_t msgcap);

#endif
