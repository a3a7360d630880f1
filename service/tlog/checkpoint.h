/* checkpoint.h — C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint):
 * the body a transparency log signs, and its signed-note form.
 *
 *   <origin>\n
 *   <tree size, decimal, no leading zeros>\n
 *   <root hash, base64 (padded)>\n
 *   [<extension line>\n ...]
 *
 * allot signs checkpoints with the log key whose note key name is the
 * origin (as the spec recommends), so a verifier knows which key and which
 * log it expects.
 *
 * Thread-safety: reentrant, no shared state.
 */
#ifndef ALLOT_TLOG_CHECKPOINT_H
#define ALLOT_TLOG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/ed25519.h"
#include "tlog/merkle.h"
#include "tlog/note.h"

struct checkpoint {
	char origin[NOTE_NAME_MAX + 1];    /* also the signing key's name */
	uint64_t size;                     /* leaves in the tree */
	uint8_t root[MERKLE_HASH_LEN];     /* RFC 9162 root of those leaves */
	size_t n_ext;                      /* extension lines seen (parse) */
};

/* The body text (no extension lines).  ALLOT_E_INVALID for a bad origin.
 * OUT: *text (from malloc(), NUL-terminated, caller frees), *len. */
allot_err checkpoint_format(const struct checkpoint *c, char **text, size_t *len, char *msg,
			    size_t msgcap);
/* Parses a body (the text of a note, ending in "\n").  Extension lines are
 * counted and otherwise ignored.  ALLOT_E_UNPROCESSABLE on any deviation.
 * OUT: *c on success only. */
allot_err checkpoint_parse(const char *text, size_t n, struct checkpoint *c, char *msg,
			   size_t msgcap);
/* Formats c and signs it as a note by kp under the name c->origin.
 * OUT: *note (from malloc(), caller frees), *len. */
allot_err checkpoint_sign(const struct checkpoint *c, const struct ed25519_keypair *kp,
			  char **note, size_t *len, char *msg, size_t msgcap);
/* Verifies a signed checkpoint with the log's verifier v and parses it; the
 * origin must equal v->name.  OUT: *c on success only. */
allot_err checkpoint_open(const char *note, size_t n, const struct note_verifier *v,
			  struct checkpoint *c, char *msg, size_t msgcap);

#endif
