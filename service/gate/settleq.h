/* settleq.h — the gate's durable retry queue (SPEC section 2, "Every
 * admitted charge is bookable").
 *
 * A gated request is served before its usage is booked.  When the booking
 * fails (disk full, an I/O error, any store fault), the settlement is not
 * dropped: it is queued here, in memory and in the store's settle_queue
 * table (fsynced), and a background thread retries it with backoff until
 * the ledger takes it.  The records keep the ids, times and charter
 * version of the first attempt, and the queue row is deleted in the same
 * transaction as they are booked, so a settlement is booked exactly once,
 * even across a crash (a restarted allotd books what it finds queued
 * before it serves).  Until then the expected charge stays reserved at
 * every level of the request, so admission never counts it as room.
 * The queue's size and counters are in /metrics; /readyz is not ready
 * while anything waits.
 */
#ifndef ALLOT_GATE_SETTLEQ_H
#define ALLOT_GATE_SETTLEQ_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/record.h"
#include "store/settle_types.h"

struct ledger;
struct settleq;

/* Called under the admission lock when a queued settlement of a token with
 * max_credits is booked (the gate adds the charge to the token's sum). */
typedef void (*settleq_booked_fn)(void *ctx, const char *jti, int64_t charge);

/* Loads the settlements a previous process left queued and tries each once
 * (synchronously, before anything is admitted), then starts the retry
 * thread. */
allot_err settleq_open(struct ledger *led, settleq_booked_fn booked, void *ctx,
		       struct settleq **out, char *msg, size_t msgsz);
/* Stops the thread; what is still queued stays in the table. */
void settleq_close(struct settleq *q);

/* The gate's records of a settlement: tokens_in and tokens_out (each only
 * when non-zero), ids "<record_base>-in" / "-out".  Returns how many. */
size_t settleq_records(const struct settle_pending *p, struct usage_record recs[2]);

/* Queues a settlement whose booking failed.  keys/nkeys: the request's
 * level keys (and token key); held: what stays reserved at each of them
 * until it is booked (the caller has added it with reserve_hold_locked);
 * jti: the token's id when it has max_credits, else NULL.  Stores it
 * (fsynced); when even that fails it is kept in memory and stored or
 * booked by a later try. */
void settleq_add(struct settleq *q, const struct settle_pending *p, const char *const *keys,
		 size_t nkeys, int64_t held, const char *jti);

struct settleq_stats {
	uint64_t queued;        /* settlements waiting now */
	uint64_t unstored;      /* of them, not yet in the table (memory only) */
	uint64_t failures;      /* settlements queued since start */
	uint64_t booked;        /* queued settlements booked since start */
	uint64_t attempts;      /* retry attempts since start */
};
void settleq_stats(struct settleq *q, struct settleq_stats *out);

/* The wait between retry rounds: min_ms after a round that booked
 * something (or a new failure), doubling up to max_ms while nothing can be
 * booked (defaults 50 ms and 5 s). */
void settleq_set_backoff(struct settleq *q, int min_ms, int max_ms);

/* Tries every queued settlement once now; returns how many still wait. */
size_t settleq_retry_now(struct settleq *q);

#endif
