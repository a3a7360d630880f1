/* events.c — webhook events and their detection at booking time. */
#include "ledger/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/money.h"
#include "common/timeutil.h"

allot_err events_emit(struct store *st, const struct charter *c, unsigned ev,
		      const char *dedupe, json_t *data, int64_t now)
{
	allot_err e = ALLOT_OK;
	bool any = false;
	for (size_t i = 0; c && i < c->nwebhooks; i++)
		any |= (c->webhooks[i].events & ev) != 0;
	if (!any || !data) {
		json_decref(data);
		return data ? ALLOT_OK : ALLOT_E_NOMEM;
	}
	char ts[TIME_FMT_MAX];
	json_t *body = json_pack("{s:s,s:s,s:o}", "type", charter_event_name(ev), "timestamp",
				 time_format_rfc3339(now, ts), "data", data);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return ALLOT_E_NOMEM;
	for (size_t i = 0; i < c->nwebhooks && !e; i++) {
		const struct charter_webhook *w = &c->webhooks[i];
		if (!(w->events & ev))
			continue;
		struct outbox_event o = {.dedupe = dedupe, .body = text, .created_us = now,
					 .next_us = now};
		uint8_t rnd[16];
		if (RAND_bytes(rnd, sizeof rnd) != 1) {
			e = ALLOT_E_INTERNAL;
			break;
		}
		memcpy(o.id, "msg_", 4);
		hex_encode(rnd, sizeof rnd, o.id + 4);
		snprintf(o.url, sizeof o.url, "%s", w->url);
		snprintf(o.type, sizeof o.type, "%s", charter_event_name(ev));
		e = store_outbox_put(st, &o);
	}
	free(text);
	if (e)
		log_warnx("webhooks: the %s event %s could not be written to the outbox",
			  charter_event_name(ev), dedupe);
	return e;
}

/* used >= base * pct / 100, exactly (as the quota view says it). */
static bool crossed(int64_t used, int64_t base, int32_t pct)
{
	__int128 lhs = (__int128)used * 100, rhs = (__int128)base * pct;
	return base > 0 ? lhs >= rhs : used > 0;
}

static json_t *level_json(const struct charter *c, const struct quota_level *q, int64_t used,
			  int64_t limit, const char *record_id, const char *provider)
{
	char u[MONEY_FMT_MAX], l[MONEY_FMT_MAX], ps[TIME_FMT_MAX], pe[TIME_FMT_MAX];
	json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "charter", c->id,
			      "level", quota_kind_name(q->kind), "charter_version",
			      (json_int_t)c->version, "key", q->key, "used", money_format(used, u),
			      "limit", money_format(limit, l), "period_start",
			      time_format_rfc3339(q->period_start, ps), "period_end",
			      time_format_rfc3339(q->period_end, pe), "record_id", record_id);
	if (j) {
		if (q->lv.institution)
			json_object_set_new(j, "institution", json_string(q->lv.institution));
		if (q->lv.project)
			json_object_set_new(j, "project", json_string(q->lv.project));
		if (q->lv.member)
			json_object_set_new(j, "member", json_string(q->lv.member));
		json_object_set_new(j, "provider", json_string(provider));
	}
	return j;
}

allot_err events_level_booked(struct store *st, const struct charter *c,
			      const struct quota_level *q, int64_t before, int64_t charge,
			      int64_t limit, const char *record_id, const char *provider,
			      int64_t now)
{
	if (!c->nwebhooks || charge <= 0)
		return ALLOT_OK;
	int64_t after = money_add_sat(before, charge);
	allot_err e = ALLOT_OK;
	char dedupe[512];
	for (size_t i = 0; i < q->nalerts && !e; i++) {
		if (crossed(before, limit, q->alerts[i]) || !crossed(after, limit, q->alerts[i]))
			continue;
		snprintf(dedupe, sizeof dedupe, "alert:%s:%s:%lld:%d", quota_kind_name(q->kind),
			 q->key, (long long)q->period_start, q->alerts[i]);
		json_t *d = level_json(c, q, after, limit, record_id, provider);
		if (d)
			json_object_set_new(d, "threshold", json_integer(q->alerts[i]));
		e = events_emit(st, c, CHARTER_EV_ALERT, dedupe, d, now);
	}
	if (!e && before <= limit && after > limit) {
		snprintf(dedupe, sizeof dedupe, "overage:%s:%s:%lld", quota_kind_name(q->kind),
			 q->key, (long long)q->period_start);
		char o[MONEY_FMT_MAX];
		json_t *d = level_json(c, q, after, limit, record_id, provider);
		if (d)
			json_object_set_new(d, "overage", json_string(money_format(after - limit, o)));
		e = events_emit(st, c, CHARTER_EV_OVERAGE, dedupe, d, now);
	}
	return e;
}
