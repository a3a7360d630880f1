/* keyset.h — allotd's token signing keys, kept under --keys.
 *
 * Each key is a file KID.key (PKCS#8 PEM, mode 0600) in the directory
 * (created mode 0700 on first start, with a first key).  The newest key
 * signs; every key in the directory verifies, so after `allot keys rotate`
 * old tokens keep working until they expire.  A key id is
 * "k<unix seconds>-<8 hex>"; ids sort by creation time.
 */
#ifndef ALLOT_GATE_KEYSET_H
#define ALLOT_GATE_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "crypto/ed25519.h"
#include "crypto/paseto.h"

/* Keys kept in one directory. */
#define KEYSET_MAX 64

struct keyset;

/* The keys directory (--keys) holds the token keys and the transparency
 * log's key (ledger/ledgerlog.h); these three check and manage it as a whole.
 *
 * Prepares dir: creates it mode 0700 when missing; refuses (ALLOT_E_INVALID,
 * msg says to chmod 700) a directory that its group or others may access,
 * and anything that is not a directory. */
allot_err keyset_dir_prepare(const char *dir, char *msg, size_t msgsz);
/* Whether dir holds a key file ("NAME.key" at its top: the log key or a
 * token key).  OUT: *has; name, the first one found ("" when none). */
allot_err keyset_dir_has_keys(const char *dir, bool *has, char *name, size_t namesz, char *msg,
			      size_t msgsz);
/* Moves every "NAME.key" at dir's top into a new dir/retired-<UTC time>/
 * (mode 0700), so that no key of an earlier deployment signs or verifies
 * again while each stays available to check what it signed.
 * OUT: sub, the new directory's path. */
allot_err keyset_dir_retire(const char *dir, char *sub, size_t subsz, char *msg, size_t msgsz);

/* Loads dir (checked by keyset_dir_prepare), creating it and a first key
 * when empty. */
allot_err keyset_open(const char *dir, struct keyset **out, char *msg, size_t msgsz);
void keyset_free(struct keyset *ks);
/* Adds a new signing key (written to the directory first). OUT: kid. */
allot_err keyset_rotate(struct keyset *ks, char kid[PASETO_KID_MAX + 1], char *msg,
			size_t msgsz);
/* The current signing key; kp and kid are copied out (wipe kp after use). */
allot_err keyset_current(struct keyset *ks, struct ed25519_keypair *kp,
			 char kid[PASETO_KID_MAX + 1]);
/* paseto_key_fn over the set: kid -> public key, ALLOT_E_UNAUTHORIZED if unknown. */
allot_err keyset_lookup(void *ks, const char *kid, uint8_t pub[ED25519_PUB_LEN]);
/* {"keys":[{"kid","public":"ed25519:...","created","current"}]} */
json_t *keyset_public_json(struct keyset *ks);

#endif
