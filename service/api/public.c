/* public.c — GET /public and /public.json (SPEC section 4, docs/DASHBOARD.md):
 * the commons' public page, with no sign-in, for a charter that says
 * `public: true` (404 otherwise).  What it shows is aggregate only: per
 * institution and local month (the last PUBLIC_MONTHS), charges and record
 * counts; the pool's monthly allocation and this month's use; the rates;
 * and the latest signed checkpoint of the transparency log with its key, so
 * anyone can check what they are shown against what auditors verify. */
#include "api/api.h"

#include <string.h>

#include "api/web_assets.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "ledger/ledgerlog.h"
#include "ledger/period.h"

/* A year of months: enough for a trend, small enough to stay a page. */
#define PUBLIC_MONTHS 12

static json_t *rates_json(const struct charter *c)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < c->nrates; i++) {
		const struct charter_rate *r = &c->rates[i];
		json_array_append_new(a, json_pack("{s:s,s:s?,s:s?,s:o}", "resource", r->resource,
						   "model", r->model, "class", r->cls, "credits",
						   api_money_json(r->credits)));
	}
	return a;
}

/* Fills usage[inst] = [{month, charge, records}] (months ascending) and
 * *pool_used, this month's charges of every institution. */
static allot_err usage_by_month(struct app *app, const tz *z, int64_t now, json_t *insts,
				int64_t *pool_used, char this_month[PERIOD_KEY_MAX])
{
	int64_t start, end;
	allot_err e = period_bounds(z, PERIOD_MONTH, now, &start, &end);
	if (e || (e = period_key(z, PERIOD_MONTH, now, this_month)))
		return e;
	for (int i = 1; i < PUBLIC_MONTHS; i++)
		if ((e = period_prev(z, PERIOD_MONTH, start, &start, &end)))
			return e;
	struct ledger_filter f = {.from_us = start};
	static const char *const groups[] = {"institution"};
	json_t *rows = NULL;
	if ((e = api_report_rows_json(app->store, &f, groups, 1, true, &rows)))
		return e;
	json_t *sums = json_object(); /* "inst\x1fmonth" -> {month, charge, records} */
	size_t i;
	json_t *r;
	*pool_used = 0;
	json_array_foreach(rows, i, r) {
		char mkey[PERIOD_KEY_MAX];
		int64_t at = json_integer_value(json_object_get(r, "bucket_us"));
		if (period_key(z, PERIOD_MONTH, at, mkey))
			continue;
		const char *inst = json_string_value(json_object_get(r, "institution"));
		json_t *list = inst ? json_object_get(insts, inst) : NULL;
		if (!list)
			continue; /* an institution the charter no longer names */
		int64_t charge = json_integer_value(json_object_get(r, "charge"));
		int64_t recs = json_integer_value(json_object_get(r, "records"));
		if (strcmp(mkey, this_month) == 0)
			*pool_used = money_add_sat(*pool_used, charge);
		char key[2 * PERIOD_KEY_MAX + 64];
		snprintf(key, sizeof key, "%.60s\x1f%s", inst, mkey);
		json_t *have = json_object_get(sums, key);
		if (!have) {
			have = json_pack("{s:s,s:I,s:I}", "month", mkey, "charge", (json_int_t)0,
					 "records", (json_int_t)0);
			json_object_set_new(sums, key, have);
			json_array_append(list, have);
		}
		json_object_set_new(have, "charge", json_integer(money_add_sat(
			json_integer_value(json_object_get(have, "charge")), charge)));
		json_object_set_new(have, "records", json_integer(
			json_integer_value(json_object_get(have, "records")) + recs));
	}
	json_decref(rows);
	json_decref(sums);
	/* months ascending, charges as exact decimals */
	const char *k;
	json_t *list;
	json_object_foreach(insts, k, list) {
		size_t n = json_array_size(list);
		for (size_t a = 1; a < n; a++) /* insertion sort: at most 12 */
			for (size_t b = a; b > 0; b--) {
				json_t *x = json_array_get(list, b - 1), *y = json_array_get(list, b);
				if (strcmp(json_string_value(json_object_get(x, "month")),
					   json_string_value(json_object_get(y, "month"))) <= 0)
					break;
				json_incref(x);
				json_array_set(list, b - 1, y);
				json_array_set_new(list, b, x);
			}
		json_array_foreach(list, i, r)
			json_object_set_new(r, "charge",
					    api_money_json(json_integer_value(json_object_get(r, "charge"))));
	}
	return ALLOT_OK;
}

static allot_err public_body(struct http_req *req, struct http_resp *resp,
			     const struct charter *c, json_t **out)
{
	struct app *app = api_app(req);
	tz *z = NULL;
	char why[TZ_ERR_MAX];
	if (tz_load(c->timezone, &z, why))
		return http_error(resp, ALLOT_E_UNAVAILABLE, "the charter's time zone: %s", why);
	json_t *usage = json_object(), *insts = json_array();
	for (size_t i = 0; i < c->ninstitutions; i++)
		json_object_set_new(usage, c->institutions[i].id, json_array());
	int64_t now = time_now_us(), pool_used = 0;
	char month[PERIOD_KEY_MAX];
	allot_err e = usage_by_month(app, z, now, usage, &pool_used, month);
	tz_free(z);
	if (e) {
		json_decref(usage);
		json_decref(insts);
		return http_error(resp, e, "could not aggregate the ledger");
	}
	for (size_t i = 0; i < c->ninstitutions; i++) {
		const struct charter_institution *in = &c->institutions[i];
		json_array_append_new(insts, json_pack(
			"{s:s,s:s,s:o,s:O}", "id", in->id, "name", in->name, "allocation",
			api_allocation_json(&in->allocation), "usage", json_object_get(usage, in->id)));
	}
	json_decref(usage);
	char *note = NULL, msg[256];
	if (!app->log || ledgerlog_checkpoint(app->log, false, &note, NULL, msg, sizeof msg))
		note = NULL; /* shown as null: the page says there is none */
	char at[TIME_FMT_MAX];
	json_t *j = json_pack(
		"{s:s,s:s,s:I,s:s,s:s,s:s,s:{s:s,s:o,s:o},s:o,s:o,s:s?,s:{s:s,s:s,s:s},s:s}",
		"charter", c->id, "title", c->title ? c->title : "", "version", (json_int_t)c->version,
		"unit", c->unit, "timezone", c->timezone, "at", time_format_rfc3339(now, at), "pool",
		"month", month, "allocation", c->has_pool ? api_money_json(c->pool) : json_null(), "used",
		api_money_json(pool_used), "institutions", insts, "rates", rates_json(c), "checkpoint", note,
		"log_key", "origin", app->log ? ledgerlog_origin(app->log) : "", "vkey",
		app->log ? ledgerlog_vkey(app->log) : "", "key", app->log ? ledgerlog_pub(app->log) : "",
		"verify",
		"\"checkpoint\" is a C2SP signed note (Ed25519) by the log key above: any signed-note "
		"verifier checks it with that key.  Keep it in a file: a later export verified with "
		"`allot log verify EXPORT --key <key> --since <that file>` must be consistent with it, "
		"so what this page published cannot be rewritten later without the check failing.");
	free(note);
	if (!j)
		return ALLOT_E_NOMEM;
	*out = j;
	return ALLOT_OK;
}

/* Does Accept ask for JSON before HTML? */
static bool wants_json(const struct http_req *req)
{
	const char *a = http_header(req, "Accept");
	if (!a)
		return false;
	const char *j = strstr(a, "application/json"), *h = strstr(a, "text/html");
	return j && (!h || j < h);
}

static allot_err public_serve(struct http_req *req, struct http_resp *resp, bool json)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	if (!ac || !ac->c->is_public) {
		app_charter_put(app, ac);
		return http_error(resp, ALLOT_E_NOT_FOUND,
				  "this commons publishes nothing (its charter does not say public: true)");
	}
	allot_err e;
	if (json) {
		json_t *body = NULL;
		if (!(e = public_body(req, resp, ac->c, &body))) {
			web_security_headers(resp);
			e = http_json(resp, 200, body);
		}
	} else {
		const struct web_asset *a = web_asset_find("public.html");
		e = a ? web_send_asset(req, resp, a)
		      : http_error(resp, ALLOT_E_NOT_FOUND, "this allotd was built without its public page");
	}
	app_charter_put(app, ac);
	return e;
}

allot_err api_public(struct http_req *req, struct http_resp *resp)
{
	return public_serve(req, resp, wants_json(req));
}

allot_err api_public_json(struct http_req *req, struct http_resp *resp)
{
	return public_serve(req, resp, true);
}
