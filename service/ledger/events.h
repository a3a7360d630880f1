/* events.h — webhook events (SPEC section 4, docs/WEBHOOKS.md): built as
 * JSON, one outbox row per webhook of the charter that subscribes to the
 * event's type, written through the store (inside the transaction open on
 * the calling thread, if any: the ledger's, so an event commits with the
 * booking that caused it).  Delivery is daemon/webhooks.c. */
#ifndef ALLOT_LEDGER_EVENTS_H
#define ALLOT_LEDGER_EVENTS_H

#include <stdint.h>

#include <jansson.h>

#include "charter/charter.h"
#include "common/err.h"
#include "ledger/quota.h"
#include "store/store.h"

/* Writes event ev (CHARTER_EV_*) with data (stolen) for every webhook of c
 * that subscribes to it, once per (dedupe, url).  No subscriber: nothing. */
allot_err events_emit(struct store *st, const struct charter *c, unsigned ev,
		      const char *dedupe, json_t *data, int64_t now);

/* A booking of charge at a level moved its use from before to before +
 * charge (limit: allocation + rollover).  Emits `alert` for each of the
 * level's thresholds crossed (once per level, period and threshold) and
 * `overage` when it went past limit (once per level and period). */
allot_err events_level_booked(struct store *st, const struct charter *c,
			      const struct quota_level *q, int64_t before, int64_t charge,
			      int64_t limit, const char *record_id, const char *provider,
			      int64_t now);

#endif
