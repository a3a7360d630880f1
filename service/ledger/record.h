/* record.h — one usage record (SPEC section 6): schema, canonical bytes,
 * signature.
 *
 * Canonical bytes (what a provider signs, what the ledger and the
 * transparency log hash): the record as a JSON object without "sig" and
 * without null-valued fields, keys sorted by byte order, no whitespace,
 * integers in plain decimal, strings as raw UTF-8 escaping only '"' and '\'.
 * Control characters are not allowed in any field, so this is exactly
 * Python's json.dumps(r, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False).  See docs/LEDGER.md for a worked example.
 */
#ifndef ALLOT_LEDGER_RECORD_H
#define ALLOT_LEDGER_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/ids.h"

/* Quantities are integers 1..10^12 units (seconds, tokens): a million GPUs
 * for ten days in GPU-seconds is under 10^12, and quantity × rate stays far
 * inside int64 for any rate the charter can hold. */
#define RECORD_QUANTITY_MAX 1000000000000LL
#define RECORD_ID_MAX 129      /* record ids: 1..128 bytes */
/* Usage may end at most this far in the future (clock skew between hosts). */
#define RECORD_FUTURE_SKEW_US (5LL * 60 * 1000000)

enum record_kind { RECORD_USAGE, RECORD_ADJUSTMENT, RECORD_VOID };
enum record_adjustment { ADJ_NONE, ADJ_CREDIT, ADJ_REFUND, ADJ_DEBIT };

struct usage_record {
	char record_id[RECORD_ID_MAX];
	char provider[STORE_ID_MAX];
	bool has_seq;
	int64_t seq;
	char institution[STORE_ID_MAX];
	char project[STORE_ID_MAX];
	char member[STORE_MEMBER_MAX];      /* "" when null */
	char resource[STORE_ID_MAX];
	char cls[STORE_ID_MAX];             /* "" when null */
	char model[STORE_ID_MAX];           /* "" when null */
	int64_t quantity;
	int64_t start_us, end_us;
	enum record_kind kind;
	enum record_adjustment adjustment;
	char supersedes[RECORD_ID_MAX];     /* "" when null */
	uint8_t sig[64];
	bool has_sig;
	char *canonical;                    /* from malloc(); record_release */
	size_t canonical_len;
	uint8_t sha256[32];
};

/* Parses and schema-checks one record object.  On failure returns
 * ALLOT_E_INVALID and a reason naming the field.  require_sig: a provider
 * record must carry "sig"; the gate's own settlements do not.  OUT: *r;
 * release with record_release() in every case. */
allot_err record_parse(const json_t *obj, bool require_sig, struct usage_record *r,
		       char *reason, size_t reasonsz);
void record_release(struct usage_record *r);

/* The same from the record's JSON text: *text points at its '{' inside a
 * larger document ending at end.  When the object is plain JSON (keys and
 * values without escapes, only printable ASCII in strings, values strings,
 * integers of up to 18 digits, true, false or null, no key twice) the
 * result is exactly record_parse's on jansson's parse of that text, *plain
 * is true and *text points past the object.  Otherwise *plain is false,
 * *text is unchanged and r holds nothing: parse the document with jansson.
 * Release r with record_release() in every case. */
allot_err record_parse_text(const char **text, const char *end, bool require_sig,
			    struct usage_record *r, bool *plain, char *reason, size_t reasonsz);

/* Canonical bytes of obj (any JSON object) as defined above, written
 * directly (byte for byte what jansson's json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) writes for obj without "sig" and nulls); caller frees. */
char *record_canonical(const json_t *obj, size_t *len);

/* SHA-256 of p[0..n) (the implementation fetched once per process). */
void record_sha256(const void *p, size_t n, uint8_t out[32]);

/* Verifies r->sig over r->canonical with pub (32 bytes). */
bool record_sig_ok(const struct usage_record *r, const uint8_t pub[32]);

const char *record_kind_name(enum record_kind k);
const char *record_adjustment_name(enum record_adjustment a);

/* The record as JSON with the canonical field names (no sig). */
json_t *record_to_json(const struct usage_record *r);

/* Canonical bytes and SHA-256 of a record built in-process (the gate's
 * settlements): the same bytes as record_canonical(record_to_json(r)),
 * written directly.  Replaces r->canonical; ALLOT_E_NOMEM when out of
 * memory. */
allot_err record_seal(struct usage_record *r);

#endif
