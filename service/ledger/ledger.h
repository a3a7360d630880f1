/* ledger.h — metering usage records into the append-only ledger.
 *
 * ledger_ingest checks and prices a batch of provider records and writes the
 * accepted ones in one transaction (group commit: one fsync per batch);
 * the response is sent only after that commit.  Each record's outcome:
 *   accepted  — priced and stored (charge, charter version, overage, late)
 *   duplicate — same provider and record_id with the same canonical bytes:
 *               the original outcome, nothing written
 *   conflict  — same provider and record_id, different content
 *   rejected  — with a reason; nothing written for it
 * The gate's settlements go through ledger_settle, the same pricing path.
 */
#ifndef ALLOT_LEDGER_LEDGER_H
#define ALLOT_LEDGER_LEDGER_H

#include <jansson.h>

#include "common/buf.h"
#include "ledger/chist.h"
#include "ledger/record.h"
#include "ledger/reserve.h"
#include "store/store.h"

/* The ledger of one store: its charter history (ledger/chist.h), the
 * gate's in-flight reservations (ledger/reserve.h) and the group commit
 * every booking goes through.  Created by app_open (daemon/app.c). */
struct ledger;

/* st: not owned (outlives the ledger).  ALLOT_E_NOMEM or ALLOT_OK. */
allot_err ledger_open(struct store *st, struct ledger **out);
/* NULL: nothing. */
void ledger_free(struct ledger *led);
struct store *ledger_store(struct ledger *led);
struct chist *ledger_charters(struct ledger *led);
struct reserve_table *ledger_reserve(struct ledger *led);

/* Writers waiting in the group-commit queue (not the leader's group):
 * for tests that line up a group deterministically. */
size_t ledger_group_queued(struct ledger *led);

/* Records per POST /v1/usage batch. */
#define LEDGER_BATCH_MAX 10000

struct ledger_counts {
	size_t accepted, duplicate, conflict, rejected;
};

/* records: a JSON array.  provider: the submitting key's provider.
 * OUT: *outcomes (array, one per record, in order).  Committed with an
 * fsync before returning (an acknowledged batch survives power loss). */
allot_err ledger_ingest(struct ledger *led, const char *provider, const json_t *records,
			json_t **outcomes, struct ledger_counts *counts, char *msg,
			size_t msgsz);

/* The same for a POST /v1/usage body ({"records":[...]}, any text): the
 * answer the API sends ({"summary":{...},"results":[...]} and a newline)
 * is written into out (reset first).  Errors as json_parse,
 * json_only_fields and ledger_ingest report them, with msg.  text: read
 * plain bodies without building a JSON tree (see record_parse_text); false
 * forces the jansson path (the answer is the same byte for byte; tests). */
allot_err ledger_ingest_body(struct ledger *led, const char *provider, const char *body,
			     size_t len, bool text, struct buf *out, char *msg, size_t msgsz);

/* How a gate settlement is booked (ledger_settle). */
struct ledger_settle_opts {
	/* The charter version the request was admitted under: it prices and
	 * checks the records (SPEC section 2: a request is admitted and
	 * settled under one version).  NULL: the one in force at `end`. */
	const struct charter *charter;
	/* Non-zero: the booked charges stay out of the quota sums until
	 * store_ops.ledger_release(hold). */
	uint64_t hold;
	/* A retry from the gate's queue (gate/settleq.c): an earlier attempt
	 * may have been booked, so an identical record already there counts
	 * as booked (a duplicate) instead of failing. */
	bool retry;
	/* Non-zero: this settle_queue row is deleted in the same transaction
	 * as the records are booked (exactly once). */
	int64_t queue_id;
	/* Non-NULL: the reservation in the store's budgets (store_ops.budget_*)
	 * settled at the booked charge in the same transaction. */
	const char *budget_id;
};

/* Books records produced by allotd itself (the gate's settlements): no
 * signature, the provider is the model's; n records in one transaction (all
 * or none); canonical bytes are built here.  OUT: *charge, their total.
 * Durability: committed to the write-ahead log before returning (a crash
 * of the process loses nothing); on disk within the store's flush interval
 * unless a provider batch shares the group (then fsynced before return). */
allot_err ledger_settle(struct ledger *led, const struct ledger_settle_opts *o,
			struct usage_record *recs, size_t n, int64_t *charge, char *reason,
			size_t reasonsz);
/* ledger_settle with default options. */
allot_err ledger_settle_many(struct ledger *led, struct usage_record *recs, size_t n,
			     int64_t *charge, char *reason, size_t reasonsz);

#endif
