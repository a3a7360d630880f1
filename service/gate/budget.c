/* budget.c — admission against the store's budgets (gate/budget.h). */
#include "gate/budget.h"

#include <stdio.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "gate/gate.h"

/* The request's levels in rank order (pool, institution, project, member,
 * then the token), from lv (member first, as quota_levels gives them). */
static void req_levels(const struct token_claims *c, const struct quota_level *lv, size_t n,
		       struct store_budget_req *rq)
{
	rq->n = 0;
	for (size_t k = n; k-- > 0;) {
		struct store_budget_level *b = &rq->lv[rq->n++];
		memset(b, 0, sizeof *b);
		snprintf(b->level, sizeof b->level, "%s", lv[k].key);
		b->period_start = lv[k].period_start;
		b->period_end = lv[k].period_end;
		b->cap = quota_room(&lv[k]); /* used and reserved 0: allocation + rollover + grace */
		const struct charter_limits *l = lv[k].limits;
		b->concurrent = l ? l->concurrent_requests : STORE_BUDGET_NO_LIMIT;
		b->requests_per_minute = l ? l->requests_per_minute : STORE_BUDGET_NO_LIMIT;
		b->tokens_per_minute = l ? l->tokens_per_minute : STORE_BUDGET_NO_LIMIT;
	}
	if (c->has_max_credits) {
		struct store_budget_level *b = &rq->lv[rq->n++];
		memset(b, 0, sizeof *b);
		snprintf(b->level, sizeof b->level, "token:%s", c->jti);
		b->period_start = INT64_MIN;
		b->period_end = INT64_MAX;
		b->cap = c->max_credits;
		b->concurrent = b->requests_per_minute = b->tokens_per_minute = STORE_BUDGET_NO_LIMIT;
	}
}

/* The refusal's message (as gate/gate.c's in-memory path words it). */
static allot_err refusal(const struct store_budget_req *rq, const struct quota_level *lv,
			 size_t n, int64_t worst, int64_t now, struct gbudget_result *out,
			 char *msg, size_t msgsz)
{
	size_t i = rq->refused;
	const struct store_budget_level *b = &rq->lv[i];
	bool token = i >= n;
	const struct quota_level *q = token ? NULL : &lv[n - 1 - i];
	out->refused_kind = token ? -1 : (int)q->kind;
	const char *kind = token ? "token" : quota_kind_name(q->kind);
	const char *key = token ? b->level : q->kind == QUOTA_POOL ? "pool" : q->key;
	const char *lkey = token ? b->level : q->key; /* as the rate messages name it */
	char w[MONEY_FMT_MAX], r[MONEY_FMT_MAX];
	int64_t room = money_sub_sat(money_sub_sat(b->allocation, b->settled), b->reserved);
	switch (rq->why) {
	case STORE_BUDGET_CONCURRENCY:
		snprintf(msg, msgsz, "%s %s: %lld concurrent requests already running", kind, lkey,
			 (long long)b->concurrent);
		out->retry_after_s = 1;
		return ALLOT_E_RATE;
	case STORE_BUDGET_REQUESTS:
	case STORE_BUDGET_TOKENS:
		snprintf(msg, msgsz, "%s %s: %lld %s per minute reached", kind, lkey,
			 (long long)(rq->why == STORE_BUDGET_REQUESTS ? b->requests_per_minute
								      : b->tokens_per_minute),
			 rq->why == STORE_BUDGET_REQUESTS ? "requests" : "tokens");
		out->retry_after_s =
			(int)((rq->window_us + GATE_RATE_WINDOW_US - now + 999999) / 1000000);
		return ALLOT_E_RATE;
	default:
		break;
	}
	if (token)
		snprintf(msg, msgsz, "quota exhausted at the token level: this request may "
			 "cost up to %s, %s of the token's max_credits remains",
			 money_format(worst, w), money_format(room > 0 ? room : 0, r));
	else
		snprintf(msg, msgsz, "quota exhausted at the %s level (%s): this request may cost "
			 "up to %s, %s remains", kind, key, money_format(worst, w),
			 money_format(room > 0 ? room : 0, r));
	return ALLOT_E_QUOTA;
}

/* A request that no wait can admit (more tokens than a level's tokens per
 * minute): a bad request, as on the in-memory path. */
static allot_err too_many_tokens(const struct quota_level *lv, size_t n, int64_t tokens,
				 struct gbudget_result *out, char *msg, size_t msgsz)
{
	for (size_t i = 0; i < n; i++) {
		const struct charter_limits *l = lv[i].limits;
		if (l && l->tokens_per_minute != CHARTER_UNSET && tokens > l->tokens_per_minute) {
			out->refused_kind = (int)lv[i].kind;
			snprintf(msg, msgsz, "this request may use %lld tokens, more than %s %s's "
				 "%lld tokens per minute", (long long)tokens,
				 quota_kind_name(lv[i].kind), lv[i].key,
				 (long long)l->tokens_per_minute);
			return ALLOT_E_INVALID;
		}
	}
	return ALLOT_OK;
}

allot_err gbudget_admit(struct store *st, struct glease *L, const struct charter *ch,
			const struct token_claims *c, const char *id, int prompt_tokens,
			int max_tokens, int64_t worst, int64_t now, struct glease_use *u,
			struct gbudget_result *out, char *msg, size_t msgsz)
{
	memset(out, 0, sizeof *out);
	memset(u, 0, sizeof *u);
	out->refused_kind = QUOTA_POOL;
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n = 0;
	allot_err e = quota_level_caps(st, ch, c->inst, c->proj, c->sub, now, lv, &n);
	if (e) {
		snprintf(msg, msgsz, "could not read the quota");
		return e;
	}
	int64_t tokens = (int64_t)prompt_tokens + max_tokens;
	if ((e = too_many_tokens(lv, n, tokens, out, msg, msgsz)))
		return e;
	struct store_budget_req rq;
	memset(&rq, 0, sizeof rq);
	rq.id = id;
	rq.amount = worst;
	rq.tokens = tokens;
	rq.charter_version = ch->version;
	rq.now_us = now;
	rq.expires_us = now + GBUDGET_TTL_US;
	rq.window_us = now - now % GATE_RATE_WINDOW_US;
	req_levels(c, lv, n, &rq);
	size_t at = 0;
	if (glease_admit(L, &rq, now, u, &out->remaining, &at)) { /* no round trip */
		snprintf(out->remaining_level, sizeof out->remaining_level, "%s",
			 at >= n ? "token" : quota_kind_name(lv[n - 1 - at].kind));
		return ALLOT_OK;
	}
	for (int attempt = 0;; attempt++) {
		if ((e = store_budget_reserve(st, &rq))) {
			snprintf(msg, msgsz, "the budgets could not be read: %s", st->errmsg);
			return e;
		}
		if (rq.why == STORE_BUDGET_OK)
			break;
		/* Reservations of a node that died hold room until they expire,
		 * leases until expiry + the longest request: release what may
		 * go and try once more. */
		int64_t released = 0, returned = 0;
		if (attempt > 0 ||
		    (rq.why != STORE_BUDGET_QUOTA && rq.why != STORE_BUDGET_CONCURRENCY) ||
		    store_budget_sweep(st, now, true, &released) ||
		    (rq.why == STORE_BUDGET_QUOTA && store_has_leases(st) &&
		     store_lease_sweep(st, now, glease_grace_us(), &returned)) ||
		    released + returned == 0)
			return refusal(&rq, lv, n, worst, now, out, msg, msgsz);
	}
	glease_note(L, &rq, now);
	out->remaining = INT64_MAX;
	for (size_t i = 0; i < rq.n; i++) {
		const struct store_budget_level *b = &rq.lv[i];
		int64_t room = money_sub_sat(money_sub_sat(b->allocation, b->settled), b->reserved);
		if (room < out->remaining) {
			out->remaining = room;
			snprintf(out->remaining_level, sizeof out->remaining_level, "%s",
				 i >= n ? "token" : quota_kind_name(lv[n - 1 - i].kind));
		}
	}
	return ALLOT_OK;
}

int64_t gbudget_reserved(void *ctx, const char *key)
{
	int64_t r = 0;
	if (store_budget_reserved(ctx, key, time_now_us(), &r))
		return 0;
	return r;
}
