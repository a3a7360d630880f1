/* budget.h — admission against budgets kept by the store itself
 * (store_ops.budget_*: PostgreSQL, several allotd nodes on one database;
 * docs/POSTGRES.md, "Budgets in the database").  The SQLite store keeps
 * today's in-memory path (gate/gate.c, ledger/reserve.c).
 *
 *   gbudget_admit: the levels' caps from the charter in force (allocation
 *                  + rollover, + grace under soft; the token's
 *                  max_credits), their concurrency and rate limits, and
 *                  the worst case, in one round trip (store_budget_reserve);
 *                  a refusal after which expired reservations were
 *                  released is tried once more.
 * The reservation is settled by the booking's transaction (ledger_settle
 * with budget_id) or released by gate_cancel.
 */
#ifndef ALLOT_GATE_BUDGET_H
#define ALLOT_GATE_BUDGET_H

#include <stdint.h>

#include "crypto/token_claims.h"
#include "gate/glease.h"
#include "ledger/quota.h"

/* When any node may release a reservation whose node never settled it:
 * the longest request (an upstream's timeout, gate/upstream.h) and a
 * minute for the nodes' clocks. */
#define GBUDGET_TTL_US ((600LL + 60) * 1000000)

/* What an admission decided. */
struct gbudget_result {
	int64_t remaining;        /* most restrictive level, after reserving */
	char remaining_level[16];
	/* The refusing level: a quota kind, or -1 for the token. */
	int refused_kind;
	int retry_after_s;        /* ALLOT_E_RATE */
};

/* Reserves worst for the request (prompt_tokens + max_tokens tokens) of
 * claims c under charter ch, as reservation id.  ALLOT_OK: held.
 * ALLOT_E_QUOTA / ALLOT_E_RATE / ALLOT_E_INVALID with msg naming the level
 * (the same messages as the in-memory path); a store failure: its error
 * (ALLOT_E_UNAVAILABLE when the database cannot be reached: fail closed).
 * With L (a node's leases, gate/glease.h): admitted from them in memory
 * when every level has one with room (*u says which; then nothing is in
 * the database's reservations), else by tier A, which L counts. */
allot_err gbudget_admit(struct store *st, struct glease *L, const struct charter *ch,
			const struct token_claims *c, const char *id, int prompt_tokens,
			int max_tokens, int64_t worst, int64_t now, struct glease_use *u,
			struct gbudget_result *out, char *msg, size_t msgsz);

/* quota_reserved_fn over the store's budgets (ctx: the store), now. */
int64_t gbudget_reserved(void *ctx, const char *key);

#endif
