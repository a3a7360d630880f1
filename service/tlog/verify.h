/* verify.h — offline verification of an export against the signed
 * checkpoint it carries (what `allot log verify` runs; docs/TLOG.md).
 *
 * Two export shapes are accepted:
 *   log export   (GET /v1/log/export): {"checkpoint", "start", "end",
 *                 "entries": [{"leaf_index", "type", "entry", "proof"}],
 *                 ["consistency": {"from", "to", "proof"}]}
 *   usage export (GET /v1/usage?proofs=1): {"checkpoint", "records":
 *                 [{...record..., "leaf_index", "proof"}],
 *                 ["consistency": ...]}
 * For every entry the leaf is recomputed from the entry's fields
 * (tlog/leaf.h) and its inclusion proof checked against the checkpoint's
 * root; a log export must also hold every leaf of its range, in order, each
 * with its entry.  With an earlier checkpoint, the consistency proof in the
 * export must lead from it to the export's checkpoint.
 *
 * Thread-safety: reentrant.
 */
#ifndef ALLOT_TLOG_VERIFY_H
#define ALLOT_TLOG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "tlog/checkpoint.h"

struct tlog_verify_report {
	struct checkpoint cp;     /* the export's checkpoint, once opened */
	uint64_t checked;         /* entries whose inclusion was verified */
	bool log_export;          /* a log export (else a usage export) */
	bool complete;            /* a log export of every leaf [0, cp.size) */
	bool since_checked;       /* consistency with the earlier checkpoint */
	uint64_t since_size;
	char failure[768];        /* the first failure, naming the entry */
};

/* key: "ed25519:BASE64" (the key name is then the checkpoint's origin) or a
 * verifier key "name+id+base64".  since / since_len: an earlier signed
 * checkpoint of the same log, or NULL.  Returns ALLOT_OK when everything
 * verifies; ALLOT_E_UNPROCESSABLE with rep->failure naming the first entry
 * (or checkpoint) that does not; ALLOT_E_INVALID for a bad key or an
 * export of the wrong shape (also in rep->failure). */
allot_err tlog_verify_export(const json_t *export, const char *key, const char *since,
			     size_t since_len, struct tlog_verify_report *rep);

#endif
