/* ledgerlog.h — the daemon's side of the transparency log: the log signing
 * key, the latest signed checkpoint, and the export that `allot log verify`
 * checks offline (docs/TLOG.md).  The tree itself is kept by the store
 * (store/store.h, tlog_* operations).
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef ALLOT_LEDGER_LEDGERLOG_H
#define ALLOT_LEDGER_LEDGERLOG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "store/store.h"
#include "tlog/checkpoint.h"
#include "tlog/note.h"

/* The log key's file in the --keys directory (PEM, mode 0600). */
#define LEDGERLOG_KEY_FILE "log.key"
/* GET /v1/log/checkpoint signs at most once per this interval (and only
 * when the log grew): a signature costs ~0.2 ms, a polling client nothing. */
#define LEDGERLOG_SIGN_INTERVAL_US (5LL * 1000000)
/* Leaves per export: with its inclusion proof (~24 hashes at 10^7 leaves)
 * an exported leaf is ~2 KiB, so a page stays under ~200 MiB. */
#define LEDGERLOG_EXPORT_MAX 100000
/* Leaves read per store call while exporting. */
#define LEDGERLOG_EXPORT_CHUNK 1000
/* The export format's name, in its "format" field. */
#define LEDGERLOG_EXPORT_FORMAT "allot-log-export/1"

struct ledgerlog;

/* Reads (or creates, mode 0600) keys_dir/log.key; the origin and key name
 * is "allot/<deployment>".  OUT: *out (ledgerlog_free). */
allot_err ledgerlog_open(const char *keys_dir, const char *deployment, struct store *st,
			 struct ledgerlog **out, char *msg, size_t msgsz);
void ledgerlog_free(struct ledgerlog *l);

/* "allot/<deployment>". */
const char *ledgerlog_origin(const struct ledgerlog *l);
/* The verifier key text "allot/<deployment>+<key id>+<base64>". */
const char *ledgerlog_vkey(const struct ledgerlog *l);
/* "ed25519:BASE64" of the public key. */
const char *ledgerlog_pub(const struct ledgerlog *l);

/* The latest signed checkpoint.  fresh: of the log as it is now (exports);
 * otherwise the cached one unless the log grew and the cache is older than
 * LEDGERLOG_SIGN_INTERVAL_US (on a store shared by several nodes the head is
 * read every time, and a grown log signed at once).  OUT: *note (from
 * malloc(), NUL-terminated, caller frees) and *cp (may be NULL) on success
 * only. */
allot_err ledgerlog_checkpoint(struct ledgerlog *l, bool fresh, char **note,
			       struct checkpoint *cp, char *msg, size_t msgsz);

/* A checkpoint of another store's log (a backup of this deployment,
 * opened read-only), signed with this log's key: the signed tree head of
 * exactly what the copy holds.  OUT as ledgerlog_checkpoint. */
allot_err ledgerlog_checkpoint_of(struct ledgerlog *l, struct store *copy, char **note,
				  struct checkpoint *cp, char *msg, size_t msgsz);

/* The cached signed checkpoint's size and signing time (UTC µs; 0: none
 * signed yet), for /metrics. */
void ledgerlog_signed(struct ledgerlog *l, uint64_t *size, int64_t *signed_at);

/* Base64 of each proof hash, as a JSON array. */
json_t *ledgerlog_proof_json(const struct merkle_proof *p);

/* The export of leaves [start, end) (end 0: up to the checkpoint's size),
 * each with its entry in export form and its inclusion proof, under a
 * freshly signed checkpoint; since > 0 adds the consistency proof from the
 * tree of `since` leaves.  ALLOT_E_INVALID (msg says why) for a bad range.
 * OUT: *out (caller decrefs). */
allot_err ledgerlog_export(struct ledgerlog *l, uint64_t start, uint64_t end, uint64_t since,
			   json_t **out, char *msg, size_t msgsz);

/* ---- entries in export form (ledger/ledgerlog_entry.c) ----
 * The JSON of the store's typed rows that the API hands out and the log's
 * leaves are made of (tlog/leaf.h). */

/* A booked row in export form: the store's fields in its column order,
 * then "charge" and "rate" as exact decimals and "start", "end",
 * "received", "booked" as RFC 3339.  listed (GET /v1/usage): with "id"
 * first and "leaf_index" (null when < 0) after "canonical".  OUT: a new
 * reference; NULL when out of memory. */
json_t *ledgerlog_usage_json(const struct ledger_row *row, bool listed, int64_t leaf_index);
/* The entry a leaf logs in export form; NULL when it is gone. */
json_t *ledgerlog_entry_json(const struct tlog_entry_row *e);
/* A leaf as GET /v1/log/entries lists it ({"leaf_index", "type", "ref",
 * "data": its leaf bytes or null, "leaf_hash"}) or, with_entry, as an
 * export carries it before its proof ({"leaf_index", "type", "entry", and
 * "ref" and "name" when the entry is gone}). */
json_t *ledgerlog_leaf_json(const struct tlog_entry_row *e, bool with_entry);
/* The leaves [start, min(end, log size)) as an array of
 * ledgerlog_leaf_json.  OUT: *out (caller decrefs) on success only. */
allot_err ledgerlog_entries(struct store *st, uint64_t start, uint64_t end, bool with_entry,
			    json_t **out);

/* Adds "leaf_index" to each record of a GET /v1/usage page (rows with
 * "id"), and with proofs each record's "proof" against the checkpoint *cp
 * (which must be newer than the rows).  Rows without a leaf (logged before
 * the log existed) get "leaf_index": null. */
allot_err ledgerlog_annotate_usage(struct ledgerlog *l, json_t *rows, bool proofs,
				   const struct checkpoint *cp);

#endif
