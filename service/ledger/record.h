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
#include "store/ledger_types.h"

/* struct usage_record and its limits are in store/ledger_types.h (the row
 * the store keeps); this module reads, checks and seals it. */

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

/* The record as JSON with the canonical field names (no sig). */
json_t *record_to_json(const struct usage_record *r);

/* Canonical bytes and SHA-256 of a record built in-process (the gate's
 * settlements): the same bytes as record_canonical(record_to_json(r)),
 * written directly.  Replaces r->canonical; ALLOT_E_NOMEM when out of
 * memory. */
allot_err record_seal(struct usage_record *r);

#endif
