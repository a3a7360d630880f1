/* quota.h — the levels a charge touches and how much room each has.
 *
 * For a member of a project of an institution, the levels are: the member
 * (only when the project sets member_allocation), the project, the
 * institution and the pool (only when the charter sets pool; monthly).
 * Each level's figures are for the period containing `at` in the charter's
 * time zone:
 *   limit     = allocation + rollover (+ grace under soft overage)
 *   remaining = allocation + rollover − used − reserved   (may be negative)
 * The most restrictive level wins (quota_headroom).
 *
 * Bounds: allocation, rollover and grace are each at most 2 * MONEY_MAX;
 * used is a sum of ledger rows, which the store keeps within int64
 * (docs/LEDGER.md, "Bounds"), and reserved a checked sum of worst cases.
 * The figures derived from them saturate at INT64_MIN / INT64_MAX rather
 * than wrap: a saturated remaining still admits nothing it should not.
 */
#ifndef ALLOT_LEDGER_QUOTA_H
#define ALLOT_LEDGER_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "charter/charter.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/money.h"
#include "store/store.h"

#define QUOTA_MAX_LEVELS 4

enum quota_kind { QUOTA_MEMBER, QUOTA_PROJECT, QUOTA_INSTITUTION, QUOTA_POOL };

struct quota_level {
	enum quota_kind kind;
	char key[STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 8]; /* "inst/proj/member" */
	struct ledger_level lv;         /* points into the charter */
	const struct charter_allocation *alloc; /* NULL for the pool */
	int64_t allocation, rollover, used, reserved;
	int64_t grace;                  /* soft: extra admitted past the allocation */
	int64_t period_start, period_end;
	bool hard;
	const struct charter_limits *limits; /* NULL for member and pool */
	const int32_t *alerts;          /* institution only */
	size_t nalerts;
};

/* Reserved amount for a level key (the gate's reservations), or 0. */
typedef int64_t (*quota_reserved_fn)(void *ctx, const char *key);

/* Fills the levels for (inst, proj, member) at instant at.  proj and member
 * may be NULL (institution or project view).  Unknown ids: ALLOT_E_NOT_FOUND. */
allot_err quota_levels(struct store *st, const struct charter *c, const char *inst,
		       const char *proj, const char *member, int64_t at,
		       quota_reserved_fn reserved, void *rctx,
		       struct quota_level out[QUOTA_MAX_LEVELS], size_t *n);

/* The same levels with allocations, rollover and grace but no used sum
 * (0): what a budget row in the database starts from (gate/budget.c). */
allot_err quota_level_caps(struct store *st, const struct charter *c, const char *inst,
			   const char *proj, const char *member, int64_t at,
			   struct quota_level out[QUOTA_MAX_LEVELS], size_t *n);

/* The same levels with keys, periods and allocations only: no used or
 * rollover sums (no store access). */
allot_err quota_level_keys(const struct charter *c, const char *inst, const char *proj,
			   const char *member, int64_t at,
			   struct quota_level out[QUOTA_MAX_LEVELS], size_t *n);

static inline int64_t quota_remaining(const struct quota_level *q)
{
	return money_sub_sat(money_sub_sat(money_add_sat(q->allocation, q->rollover), q->used),
			     q->reserved);
}

/* What admission may still reserve at the level: remaining + grace. */
static inline int64_t quota_room(const struct quota_level *q)
{
	return money_add_sat(quota_remaining(q), q->grace);
}

/* The JSON view of one level (exact decimal strings). */
json_t *quota_level_json(const struct quota_level *q);
const char *quota_kind_name(enum quota_kind k);

#endif
