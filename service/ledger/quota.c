/* quota.c — allocation, rollover, used, reserved and remaining per level. */
#include "ledger/quota.h"

#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "ledger/period.h"
#include "common/tz.h"

const char *quota_kind_name(enum quota_kind k)
{
	static const char *const n[] = {"member", "project", "institution", "pool"};
	return n[k];
}

static period_kind to_period(enum charter_period p)
{
	switch (p) {
	case CHARTER_PERIOD_DAY: return PERIOD_DAY;
	case CHARTER_PERIOD_WEEK: return PERIOD_WEEK;
	case CHARTER_PERIOD_MONTH: return PERIOD_MONTH;
	case CHARTER_PERIOD_QUARTER: return PERIOD_QUARTER;
	case CHARTER_PERIOD_YEAR: return PERIOD_YEAR;
	case CHARTER_PERIOD_TOTAL: return PERIOD_TOTAL;
	}
	return PERIOD_MONTH;
}

/* A level's period bounds and allocation; with a store, the sums it needs
 * are added to rq[*nrq] (its period's used with with_used, the previous
 * period's with a rollover): at[0] and at[1] their indexes, or -1. */
static allot_err level_plan(bool st, bool with_used, const tz *z, period_kind pk,
			    int64_t credits, int64_t rollover_ppm, int64_t at, int64_t effective,
			    struct quota_level *q, struct ledger_sum_req *rq, size_t *nrq, int at_[2])
{
	at_[0] = at_[1] = -1;
	allot_err e = period_bounds(z, pk, at, &q->period_start, &q->period_end);
	if (e)
		return e;
	q->allocation = credits;
	if (!st)
		return ALLOT_OK; /* keys and periods only */
	if (with_used) {
		rq[*nrq] = (struct ledger_sum_req){q->lv, q->period_start, q->period_end, 0};
		at_[0] = (int)(*nrq)++;
	}
	q->rollover = 0;
	int64_t ps, pe;
	/* Nothing carries over from a period that ended before the ledger
	 * began (the first charter's effective). */
	if (rollover_ppm > 0 && pk != PERIOD_TOTAL && period_prev(z, pk, at, &ps, &pe) == ALLOT_OK &&
	    pe > effective) {
		rq[*nrq] = (struct ledger_sum_req){q->lv, ps, pe, 0};
		at_[1] = (int)(*nrq)++;
	}
	return ALLOT_OK;
}

allot_err quota_level_keys(const struct charter *c, const char *inst, const char *proj,
			   const char *member, int64_t at,
			   struct quota_level out[QUOTA_MAX_LEVELS], size_t *n)
{
	return quota_levels(NULL, c, inst, proj, member, at, NULL, NULL, out, n);
}

static allot_err levels_fill(struct store *st, bool with_used, const struct charter *c,
			    const char *inst_id, const char *proj_id, const char *member,
			    int64_t at, quota_reserved_fn reserved, void *rctx,
			    struct quota_level out[QUOTA_MAX_LEVELS], size_t *n);

/* st NULL: keys, periods and allocations only. */
allot_err quota_levels(struct store *st, const struct charter *c, const char *inst_id,
		       const char *proj_id, const char *member, int64_t at,
		       quota_reserved_fn reserved, void *rctx,
		       struct quota_level out[QUOTA_MAX_LEVELS], size_t *n)
{
	return levels_fill(st, true, c, inst_id, proj_id, member, at, reserved, rctx, out, n);
}

allot_err quota_level_caps(struct store *st, const struct charter *c, const char *inst,
			   const char *proj, const char *member, int64_t at,
			   struct quota_level out[QUOTA_MAX_LEVELS], size_t *n)
{
	return levels_fill(st, false, c, inst, proj, member, at, NULL, NULL, out, n);
}

static allot_err levels_fill(struct store *st, bool with_used, const struct charter *c,
			    const char *inst_id, const char *proj_id, const char *member,
			    int64_t at, quota_reserved_fn reserved, void *rctx,
			    struct quota_level out[QUOTA_MAX_LEVELS], size_t *n)
{
	const struct charter_institution *inst = charter_institution(c, inst_id);
	const struct charter_project *proj = NULL;
	if (!inst)
		return ALLOT_E_NOT_FOUND;
	if (proj_id && !(proj = charter_project(inst, proj_id)))
		return ALLOT_E_NOT_FOUND;
	if (member && (!proj || !charter_member(proj, member)))
		return ALLOT_E_NOT_FOUND;
	char err[TZ_ERR_MAX];
	tz *z = NULL;
	allot_err e = tz_load(c->timezone, &z, err);
	if (e)
		return e;
	bool hard = inst->overage.mode == CHARTER_OVERAGE_HARD;
	int64_t ledger_start = c->ledger_start_us ? c->ledger_start_us : c->effective_us;
	size_t k = 0;
	memset(out, 0, sizeof *out * QUOTA_MAX_LEVELS);
	if (member && proj->has_member_allocation) {
		struct quota_level *q = &out[k++];
		q->kind = QUOTA_MEMBER;
		q->lv = (struct ledger_level){inst->id, proj->id, charter_member(proj, member)};
		q->alloc = &proj->member_allocation;
		snprintf(q->key, sizeof q->key, "%s/%s/%s", inst->id, proj->id, member);
	}
	if (proj) {
		struct quota_level *q = &out[k++];
		q->kind = QUOTA_PROJECT;
		q->lv = (struct ledger_level){inst->id, proj->id, NULL};
		q->alloc = &proj->allocation;
		q->limits = &proj->limits;
		snprintf(q->key, sizeof q->key, "%s/%s", inst->id, proj->id);
	}
	struct quota_level *qi = &out[k++];
	qi->kind = QUOTA_INSTITUTION;
	qi->lv = (struct ledger_level){inst->id, NULL, NULL};
	qi->alloc = &inst->allocation;
	qi->limits = &inst->limits;
	qi->alerts = inst->alerts;
	qi->nalerts = inst->nalerts;
	snprintf(qi->key, sizeof qi->key, "%s", inst->id);
	if (c->has_pool) {
		struct quota_level *q = &out[k++];
		q->kind = QUOTA_POOL;
		q->lv = (struct ledger_level){NULL, NULL, NULL};
		snprintf(q->key, sizeof q->key, "*");
	}
	/* Every level's sums asked at once (one round trip on PostgreSQL). */
	struct ledger_sum_req rq[2 * QUOTA_MAX_LEVELS];
	size_t nrq = 0;
	int idx[QUOTA_MAX_LEVELS][2];
	for (size_t i = 0; i < k && !e; i++) {
		struct quota_level *q = &out[i];
		if (q->alloc)
			e = level_plan(st != NULL, with_used, z, to_period(q->alloc->period),
				       q->alloc->credits, q->alloc->rollover_ppm, at, ledger_start, q,
				       rq, &nrq, idx[i]);
		else
			e = level_plan(st != NULL, with_used, z, PERIOD_MONTH, c->pool, 0, at,
				       ledger_start, q, rq, &nrq, idx[i]);
	}
	if (!e && nrq)
		e = store_ledger_sums(st, rq, nrq);
	for (size_t i = 0; i < k && !e; i++) {
		struct quota_level *q = &out[i];
		if (idx[i][0] >= 0)
			q->used = rq[idx[i][0]].sum;
		if (idx[i][1] >= 0)
			period_rollover(q->allocation, q->alloc ? q->alloc->rollover_ppm : 0,
					rq[idx[i][1]].sum, &q->rollover);
		q->hard = q->kind == QUOTA_POOL ? true : hard;
		if (!q->hard)
			q->grace = money_scale_floor(money_add_sat(q->allocation, q->rollover),
						     inst->overage.grace_ppm, CHARTER_PPM);
		q->reserved = reserved ? reserved(rctx, q->key) : 0;
	}
	tz_free(z);
	if (e)
		return e;
	*n = k;
	return ALLOT_OK;
}

static json_t *money_json(int64_t v)
{
	char b[MONEY_FMT_MAX];
	return json_string(money_format(v, b));
}

json_t *quota_level_json(const struct quota_level *q)
{
	char ps[TIME_FMT_MAX], pe[TIME_FMT_MAX];
	json_t *j = json_object();
	json_object_set_new(j, "level", json_string(quota_kind_name(q->kind)));
	json_object_set_new(j, "id", json_string(q->kind == QUOTA_POOL ? "pool" : q->key));
	json_object_set_new(j, "allocation", money_json(q->allocation));
	json_object_set_new(j, "rollover", money_json(q->rollover));
	json_object_set_new(j, "used", money_json(q->used));
	json_object_set_new(j, "reserved", money_json(q->reserved));
	json_object_set_new(j, "remaining", money_json(quota_remaining(q)));
	json_object_set_new(j, "overage_mode", json_string(q->hard ? "hard" : "soft"));
	if (!q->hard)
		json_object_set_new(j, "grace", money_json(q->grace));
	int64_t over = money_sub_sat(q->used, money_add_sat(q->allocation, q->rollover));
	json_object_set_new(j, "overage", money_json(over > 0 ? over : 0));
	json_object_set_new(j, "period", json_string(q->alloc ? charter_period_name(q->alloc->period) : "month"));
	if (q->alloc && q->alloc->period == CHARTER_PERIOD_TOTAL) {
		json_object_set_new(j, "period_start", json_null());
		json_object_set_new(j, "period_end", json_null());
	} else {
		json_object_set_new(j, "period_start", json_string(time_format_rfc3339(q->period_start, ps)));
		json_object_set_new(j, "period_end", json_string(time_format_rfc3339(q->period_end, pe)));
	}
	if (q->alerts) {
		json_t *crossed = json_array();
		int64_t base = money_add_sat(q->allocation, q->rollover);
		for (size_t i = 0; i < q->nalerts; i++) {
			/* used >= base * pct / 100, exactly */
			__int128 lhs = (__int128)q->used * 100, rhs = (__int128)base * q->alerts[i];
			if (base > 0 ? lhs >= rhs : q->used > 0)
				json_array_append_new(crossed, json_integer(q->alerts[i]));
		}
		json_object_set_new(j, "alerts_crossed", crossed);
	}
	if (q->limits) {
		json_t *l = json_object();
		const struct charter_limits *lm = q->limits;
		if (lm->requests_per_minute != CHARTER_UNSET)
			json_object_set_new(l, "requests_per_minute", json_integer(lm->requests_per_minute));
		if (lm->tokens_per_minute != CHARTER_UNSET)
			json_object_set_new(l, "tokens_per_minute", json_integer(lm->tokens_per_minute));
		if (lm->max_tokens_per_request != CHARTER_UNSET)
			json_object_set_new(l, "max_tokens_per_request", json_integer(lm->max_tokens_per_request));
		if (lm->concurrent_requests != CHARTER_UNSET)
			json_object_set_new(l, "concurrent_requests", json_integer(lm->concurrent_requests));
		json_object_set_new(j, "limits", l);
	}
	return j;
}
