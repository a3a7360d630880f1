/* daily.c — GET /v1/reports/daily: a level's charges per local day of the
 * charter's zone, in total or per institution, project or member under it,
 * from the ledger's 15-minute bucket totals (store_ledger_buckets) rather
 * than from its records, so that its cost is the number of buckets (at most
 * 96 a day per member), not the number of records: the dashboard's daily
 * chart of a period on a ledger of millions of records (docs/DASHBOARD.md).
 * Charges only: record counts and quantities are GET /v1/reports/usage's.
 * A store without the operation is answered from the records
 * (store_ledger_report), with the same figures. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "ledger/period.h"

/* A year and a day: bounded answers. */
#define DAILY_MAX_DAYS 367
#define DAILY_KEY_MAX (STORE_ID_MAX * 2 + STORE_MEMBER_MAX + 4)

struct daily_fold {
	const tz *z;
	json_t *days;  /* "2026-12-01" -> {group key -> charge (integer, micro)} */
	bool bad;      /* a sum out of range, or a bucket outside years 1..9999 */
	bool oom;
};

static void fold_add(struct daily_fold *d, int64_t bucket_us, const char *key, int64_t charge)
{
	char day[PERIOD_KEY_MAX];
	if (period_key(d->z, PERIOD_DAY, bucket_us, day)) {
		d->bad = true;
		return;
	}
	json_t *keys = json_object_get(d->days, day);
	if (!keys && (!(keys = json_object()) || json_object_set_new(d->days, day, keys))) {
		d->oom = true;
		return;
	}
	int64_t sum = json_integer_value(json_object_get(keys, key)); /* 0 when new */
	if (money_add(sum, charge, &sum))
		d->bad = true;
	else if (json_object_set_new(keys, key, json_integer(sum)))
		d->oom = true;
}

/* store_ledger_buckets' callback: the row's group key is qualified as a
 * report's ("epfl/climate", "epfl/climate/alice@epfl.ch"). */
static void fold_bucket(void *ctx, const struct ledger_bucket_row *r)
{
	char key[DAILY_KEY_MAX] = "";
	if (r->institution)
		snprintf(key, sizeof key, "%s%s%s%s%s", r->institution, r->project ? "/" : "",
			 r->project ? r->project : "", r->member && *r->member ? "/" : "",
			 r->member ? r->member : "");
	fold_add(ctx, r->bucket_us, key, r->charge);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys, sorted (NULL when out of memory or empty). */
static const char **sorted_keys(json_t *obj, size_t *n)
{
	*n = json_object_size(obj);
	const char **k = *n ? malloc(*n * sizeof *k) : NULL;
	if (!k)
		return NULL;
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
		k[i++] = key;
	qsort(k, *n, sizeof *k, cmp_str);
	return k;
}

/* rows [{day, [by: key,] charge}] by day, then key; *total their sum. */
static json_t *fold_rows(struct daily_fold *d, const char *by, int64_t *total)
{
	json_t *rows = json_array();
	size_t nd, nk;
	const char **days = sorted_keys(d->days, &nd);
	*total = 0;
	for (size_t i = 0; rows && days && i < nd; i++) {
		json_t *per = json_object_get(d->days, days[i]);
		const char **keys = sorted_keys(per, &nk);
		for (size_t j = 0; keys && j < nk; j++) {
			int64_t c = json_integer_value(json_object_get(per, keys[j]));
			json_t *r = json_pack("{s:s}", "day", days[i]);
			if (by && r)
				json_object_set_new(r, by, json_string(keys[j]));
			if (r)
				json_object_set_new(r, "charge", api_money_json(c));
			d->bad |= money_add(*total, c, total) != 0;
			d->oom |= !r || json_array_append_new(rows, r) != 0;
		}
		d->oom |= nk && !keys;
		free(keys);
	}
	d->oom |= !rows || (nd && !days);
	free(days);
	return rows;
}

/* Without store_ledger_buckets: the same sums from the records. */
static allot_err fold_from_records(struct app *app, const struct ledger_filter *f, const char *by,
				   struct daily_fold *d)
{
	const char *groups[1] = {by};
	json_t *rows = NULL;
	allot_err e = api_report_rows_json(app->store, f, groups, by ? 1 : 0, true, &rows);
	if (e)
		return e;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		const char *key = by ? json_string_value(json_object_get(r, by)) : "";
		fold_add(d, json_integer_value(json_object_get(r, "bucket_us")), key ? key : "",
			 json_integer_value(json_object_get(r, "charge")));
	}
	json_decref(rows);
	return ALLOT_OK;
}

/* The query's checks beyond api_usage_filter's; *by NULL for the level's
 * total.  Answers 400 itself. */
static allot_err daily_args(struct http_req *req, struct http_resp *resp,
			    const struct ledger_filter *f, const char **by,
			    enum ledger_bucket_by *group)
{
	static const char *const names[] = {"institution", "project", "member"};
	if (f->provider || f->resource || f->model || f->kind)
		return http_error(resp, ALLOT_E_INVALID,
				  "GET /v1/reports/daily takes institution, project, member, from, to "
				  "and by; the bucket totals are not split by provider, resource, model "
				  "or kind (GET /v1/reports/usage is)");
	if (!http_query(req, "from") || !http_query(req, "to"))
		return http_error(resp, ALLOT_E_INVALID, "from and to are required (local dates)");
	if (f->from_us % LEDGER_BUCKET_US || f->to_us % LEDGER_BUCKET_US)
		return http_error(resp, ALLOT_E_INVALID,
				  "from and to must fall on 15-minute boundaries (dates always do)");
	if (f->to_us - f->from_us > DAILY_MAX_DAYS * 25LL * 3600 * US_PER_SEC)
		return http_error(resp, ALLOT_E_INVALID, "from and to may be at most %d days apart",
				  DAILY_MAX_DAYS);
	if ((f->project && !f->institution) || (f->member && !f->project))
		return http_error(resp, ALLOT_E_INVALID, "project needs institution and member needs "
				  "project (or a qualified key: epfl/climate)");
	const char *b = http_query(req, "by");
	*by = NULL;
	*group = LEDGER_BY_LEVEL;
	for (size_t i = 0; b && *b && i < 3; i++)
		if (strcmp(b, names[i]) == 0) {
			*by = names[i];
			*group = (enum ledger_bucket_by)(LEDGER_BY_INSTITUTION + i);
		}
	if (b && *b && !*by)
		return http_error(resp, ALLOT_E_INVALID, "by takes institution, project or member");
	return ALLOT_OK;
}

allot_err api_report_daily(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct ledger_filter f;
	struct api_filter_keys keys;
	const char *by = NULL;
	enum ledger_bucket_by group = LEDGER_BY_LEVEL;
	allot_err e = api_usage_filter(req, resp, &f, &keys);
	if (e || (e = daily_args(req, resp, &f, &by, &group)))
		return e;
	struct active_charter *ac = app_charter_get(app);
	tz *z = NULL;
	char tzerr[TZ_ERR_MAX];
	e = tz_load(ac ? ac->c->timezone : "UTC", &z, tzerr);
	app_charter_put(app, ac);
	if (e)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "the charter's time zone: %s", tzerr);
	struct daily_fold d = {.z = z, .days = json_object()};
	struct ledger_level lv = {f.institution, f.project, f.member};
	e = d.days ? store_ledger_buckets(app->store, &lv, f.from_us, f.to_us, group, fold_bucket, &d)
		   : ALLOT_E_NOMEM;
	if (e == ALLOT_E_UNSUPPORTED) {
		json_object_clear(d.days);
		e = fold_from_records(app, &f, by, &d);
	}
	int64_t total = 0;
	json_t *rows = e ? NULL : fold_rows(&d, by, &total);
	json_decref(d.days);
	char fs[TIME_FMT_MAX], ts[TIME_FMT_MAX];
	json_t *j = NULL;
	if (!e && !d.bad && !d.oom) /* "o" takes rows, also when packing fails */
		j = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:o,s:{s:o}}", "from",
			      time_format_rfc3339(f.from_us, fs), "to",
			      time_format_rfc3339(f.to_us, ts), "timezone", tz_name(z),
			      "institution", f.institution, "project", f.project, "member",
			      f.member, "by", by, "rows", rows, "total", "charge",
			      api_money_json(total));
	else
		json_decref(rows);
	tz_free(z);
	if (e)
		return http_error(resp, e, "could not read the ledger's buckets");
	if (!j)
		return http_error(resp, d.bad ? ALLOT_E_INTERNAL : ALLOT_E_NOMEM,
				  d.bad ? "a daily sum is out of range" : "out of memory");
	return http_json(resp, 200, j);
}
