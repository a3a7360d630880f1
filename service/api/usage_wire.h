/* usage_wire.h — the POST /v1/usage wire format (SPEC section 6): the body
 * {"records":[...]} parsed into ledger items, and the answer
 * {"summary":{...},"results":[...]} written from them.  The ledger
 * (ledger/ledger.h) books the items in place and knows no JSON of the
 * batch; one record's own JSON (its schema and canonical bytes, what the
 * provider signs) stays with the record (ledger/record.h).
 *
 * The hot path allocates one item array per batch (no copy per record):
 * the parser fills the items, ledger_ingest answers them in place, the
 * answer is written from them straight into the response body. */
#ifndef ALLOT_API_USAGE_WIRE_H
#define ALLOT_API_USAGE_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "ledger/ledger.h"

/* A parsed batch: items[0..n) from malloc; usage_batch_release. */
struct usage_batch {
	struct ledger_item *items;
	size_t n;
};

/* Parses a POST /v1/usage body: an object whose only field is "records",
 * an array of 1..LEDGER_BATCH_MAX record objects.  text: read the body
 * without building a JSON tree first (record_parse_text); a body that is
 * not plain JSON in that sense (escapes, non-ASCII, nesting, floats, other
 * top-level fields, a repeated key, too many records) goes through jansson,
 * as every body does when text is false: the batch and the errors are the
 * same either way.  A record that does not parse is an item with
 * LEDGER_OUT_REJECTED and the reason; a body that does not parse, has
 * another field or no such array is ALLOT_E_INVALID with msg (b empty).
 * OUT: *b; release it with usage_batch_release in every case. */
allot_err usage_wire_parse(const char *body, size_t len, bool text, struct usage_batch *b,
			   char *msg, size_t msgsz);

/* The jansson path's second half: records, a JSON array of record objects
 * (benchmarks and tests that hold records as JSON use it too).  Errors and
 * OUT as usage_wire_parse. */
allot_err usage_wire_parse_records(const json_t *records, struct usage_batch *b, char *msg,
				   size_t msgsz);

/* Releases the records and the array; b is empty after.  NULL: nothing. */
void usage_batch_release(struct usage_batch *b);

/* The answer for a batch ledger_ingest booked, appended to out:
 * {"summary":{"accepted":N,"duplicate":N,"conflict":N,"rejected":N},
 *  "results":[{"record_id":..,"status":..,...} per item, in order]} and a
 * newline, compact, byte for byte what jansson's json_dumps writes for it.
 * ALLOT_E_NOMEM when out ran out of memory. */
allot_err usage_wire_answer(struct buf *out, const struct usage_batch *b);

/* POST /v1/usage from body to answer: usage_wire_parse, ledger_ingest
 * (provider: the submitting key's), usage_wire_answer into out (reset
 * first).  Errors with msg, as those report them. */
allot_err usage_wire_ingest(struct ledger *led, const char *provider, const char *body,
			    size_t len, bool text, struct buf *out, char *msg, size_t msgsz);

#endif
