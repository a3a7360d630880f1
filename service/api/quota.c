/* quota.c — GET /v1/quotas/{institution}[/{project}]: every level's
 * allocation, rollover, used, reserved, remaining, period and alerts. */
#include "api/api.h"

#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "ledger/ledger.h"
#include "ledger/quota.h"

/* The one place the API turns quota amounts into JSON besides
 * quota_level_json (ledger/quota.c): GET /v1/quotas, /public.json and the
 * daily report write the same exact decimals. */
json_t *api_money_json(int64_t micro)
{
	char b[MONEY_FMT_MAX];
	return json_string(money_format(micro, b));
}

json_t *api_allocation_json(const struct charter_allocation *a)
{
	return json_pack("{s:o,s:s}", "credits", api_money_json(a->credits), "period",
			 charter_period_name(a->period));
}

static json_t *levels_json(const struct quota_level *lv, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, quota_level_json(&lv[i]));
	return a;
}

/* quota_reserved_fn over the gate's reservations. */
int64_t api_reserved(void *ctx, const char *key)
{
	struct app *app = ctx;
	if (app->store && store_has_budgets(app->store)) { /* every node's, from the database */
		int64_t r = 0;
		return store_budget_reserved(app->store, key, time_now_us(), &r) ? 0 : r;
	}
	return app->ledger ? reserve_amount(ledger_reserve(app->ledger), key) : 0;
}

json_t *api_quota_view(struct app *app, const struct charter *c, const char *inst,
		       const char *proj, const char *member, int64_t now, allot_err *err)
{
	struct quota_level lv[QUOTA_MAX_LEVELS];
	size_t n;
	*err = quota_levels(app->store, c, inst, proj, member, now, api_reserved, app, lv, &n);
	if (*err)
		return NULL;
	char ts[TIME_FMT_MAX];
	json_t *j = json_pack("{s:s,s:s?,s:s?,s:I,s:s,s:s,s:o}", "institution", inst, "project",
			      proj, "member", member, "charter_version", (json_int_t)c->version,
			      "unit", c->unit, "at", time_format_rfc3339(now, ts), "levels",
			      levels_json(lv, n));
	return j;
}

allot_err api_quota_get(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	const char *inst = req->params[0];
	const char *proj = req->nparams > 1 ? req->params[1] : NULL;
	allot_err e = api_scope_institution(req, resp, inst);
	if (e)
		return e;
	struct active_charter *ac = app_charter_get(app);
	if (!ac)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "no charter has been applied");
	int64_t now = time_now_us();
	json_t *j = api_quota_view(app, ac->c, inst, proj, NULL, now, &e);
	if (!j) {
		app_charter_put(app, ac);
		if (e == ALLOT_E_NOT_FOUND)
			return http_error(resp, e, proj ? "unknown project \"%s/%s\"" : "unknown institution \"%s\"%s",
					  inst, proj ? proj : "");
		return http_error(resp, e, "could not compute the quota");
	}
	const struct charter_institution *ci = charter_institution(ac->c, inst);
	json_t *children = json_array();
	if (!proj) {
		for (size_t i = 0; i < ci->nprojects; i++) {
			struct quota_level lv[QUOTA_MAX_LEVELS];
			size_t n;
			if (quota_levels(app->store, ac->c, inst, ci->projects[i].id, NULL, now,
					 api_reserved, app, lv, &n) == ALLOT_OK)
				json_array_append_new(children, quota_level_json(&lv[0]));
		}
		json_object_set_new(j, "projects", children);
	} else {
		const struct charter_project *cp = charter_project(ci, proj);
		if (cp->has_member_allocation)
			for (size_t i = 0; i < cp->nmembers; i++) {
				struct quota_level lv[QUOTA_MAX_LEVELS];
				size_t n;
				if (quota_levels(app->store, ac->c, inst, proj, cp->members[i], now,
						 api_reserved, app, lv, &n) == ALLOT_OK)
					json_array_append_new(children, quota_level_json(&lv[0]));
			}
		json_object_set_new(j, "members", children);
	}
	app_charter_put(app, ac);
	return http_json(resp, 200, j);
}
