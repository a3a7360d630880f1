/* ledger.h — metering usage records into the append-only ledger.
 *
 * ledger_ingest checks and prices a batch of provider records (parsed by
 * the caller: the POST /v1/usage wire format is api/usage_wire.c's) and
 * writes the accepted ones in one transaction (group commit: one fsync per
 * batch); it returns only after that commit.  Each record's outcome:
 *   accepted  — priced and stored (charge, charter version, overage, late)
 *   duplicate — same provider and record_id with the same canonical bytes:
 *               the original outcome, nothing written
 *   conflict  — same provider and record_id, different content
 *   rejected  — with a reason; nothing written for it
 * The gate's settlements go through ledger_settle, the same pricing path.
 */
#ifndef ALLOT_LEDGER_LEDGER_H
#define ALLOT_LEDGER_LEDGER_H

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

/* What became of one record of a batch. */
enum ledger_outcome {
	LEDGER_OUT_ACCEPTED,
	LEDGER_OUT_DUPLICATE,
	LEDGER_OUT_CONFLICT,
	LEDGER_OUT_REJECTED,
	LEDGER_OUT_ERROR, /* the store failed: the whole batch is not stored */
};

/* "accepted", "duplicate", "conflict", "rejected", "error". */
const char *ledger_outcome_name(enum ledger_outcome o);

/* One record of a provider batch, filled by the caller's parser and
 * answered in place (no copy is made of it). */
struct ledger_item {
	/* The parsed record (record_parse, record_parse_text); the caller
	 * releases it (record_release) whatever ledger_ingest returns. */
	struct usage_record r;
	/* OUT: for accepted and duplicate, the booked row (charge, charter
	 * version, overage, late); row.rec points at r. */
	struct ledger_row row;
	/* IN: LEDGER_OUT_ACCEPTED to be judged, LEDGER_OUT_REJECTED when the
	 * parser refused it already (reason says why).  OUT: the outcome. */
	enum ledger_outcome o;
	/* OUT: why, for rejected and conflict (IN for a parser's refusal). */
	char reason[LEDGER_REASON_MAX];
};

/* Verifies (provider: the submitting key's; each record's signature with
 * that provider's keys), prices and books items[0..n), n in
 * 1..LEDGER_BATCH_MAX, in one group transaction committed with an fsync
 * before returning (an acknowledged batch survives power loss).  OUT: each
 * item's o, row and reason.  ALLOT_E_INVALID (n out of range),
 * ALLOT_E_UNAVAILABLE (no charter applied yet), ALLOT_E_NOMEM or
 * ALLOT_E_STORE (nothing of the batch stored), with msg. */
allot_err ledger_ingest(struct ledger *led, const char *provider, struct ledger_item *items,
			size_t n, char *msg, size_t msgsz);

/* The outcomes of items[0..n) counted (rejected counts errors too). */
void ledger_count(const struct ledger_item *items, size_t n, struct ledger_counts *c);

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
	/* The leases (store_ops.lease_settle) the request was admitted from:
	 * the booked charge is settled under each in the same transaction. */
	const struct store_lease_ref *leases;
	size_t nleases;
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
