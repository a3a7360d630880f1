/* report.c — GET /v1/reports/usage?from=&to=&group_by=&format=csv|json.
 * Sums of charges (exact decimals), quantities and record counts per group;
 * day and month are local dates in the charter's time zone. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "common/b64.h"
#include "tlog/ledgerlog.h"

#define REPORT_MAX_GROUPS 8

allot_err api_usage_filter(struct http_req *req, struct http_resp *resp,
			   struct ledger_filter *f);


allot_err api_report_usage(struct http_req *req, struct http_resp *resp)
{
	static const char *const allowed[] = {"institution", "project", "member", "provider",
					      "resource", "model", "day", "month", NULL};
	struct app *app = api_app(req);
	struct ledger_filter f;
	allot_err e = api_usage_filter(req, resp, &f);
	if (e)
		return e;
	const char *fmt = http_query(req, "format");
	bool csv = fmt && strcmp(fmt, "csv") == 0;
	if (fmt && !csv && strcmp(fmt, "json") != 0)
		return http_error(resp, ALLOT_E_INVALID, "format must be csv or json");
	/* group_by: comma-separated, each at most once. */
	const char *gb = http_query(req, "group_by");
	char gbuf[256] = "";
	const char *groups[REPORT_MAX_GROUPS], *sqlg[REPORT_MAX_GROUPS];
	size_t ng = 0, nsql = 0;
	bool day = false, month = false;
	if (gb && *gb) {
		if (strlen(gb) >= sizeof gbuf)
			return http_error(resp, ALLOT_E_INVALID, "group_by is too long");
		strcpy(gbuf, gb);
		for (char *save = NULL, *t = strtok_r(gbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			bool ok = false;
			for (size_t i = 0; allowed[i]; i++)
				ok |= strcmp(t, allowed[i]) == 0;
			for (size_t i = 0; i < ng; i++)
				if (strcmp(groups[i], t) == 0)
					ok = false;
			if (!ok || ng == REPORT_MAX_GROUPS)
				return http_error(resp, ALLOT_E_INVALID,
						  "group_by takes institution, project, member, provider, "
						  "resource, model, day, month, each at most once (got \"%s\")", t);
			groups[ng++] = t;
			if (strcmp(t, "day") == 0)
				day = true;
			else if (strcmp(t, "month") == 0)
				month = true;
			else
				sqlg[nsql++] = t;
		}
	}
	json_t *rows = NULL;
	e = app->store->ops->ledger_report(app->store, &f, sqlg, nsql, day || month, &rows);
	if (e)
		return http_error(resp, e, "could not aggregate the ledger");
	/* Fold buckets into local days/months, keyed by the group values. */
	struct active_charter *ac = app_charter_get(app);
	tz *z = NULL;
	char tzerr[TZ_ERR_MAX];
	if ((day || month) && (!ac || tz_load(ac->c->timezone, &z, tzerr))) {
		app_charter_put(app, ac);
		json_decref(rows);
		return http_error(resp, ALLOT_E_UNAVAILABLE, "no charter time zone for day/month grouping");
	}
	app_charter_put(app, ac);
	json_t *folded = json_object(), *order = json_array();
	int64_t tot_charge = 0, tot_records = 0;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		char dkey[16] = "", mkey[16] = "";
		if (z) {
			tz_civil cv;
			tz_to_local(z, json_integer_value(json_object_get(r, "bucket_us")), &cv);
			snprintf(dkey, sizeof dkey, "%04d-%02d-%02d", (int)cv.year, cv.month, cv.day);
			snprintf(mkey, sizeof mkey, "%04d-%02d", (int)cv.year, cv.month);
		}
		struct buf key = BUF_INIT;
		json_t *out = json_object();
		for (size_t g = 0; g < ng; g++) {
			const char *v = strcmp(groups[g], "day") == 0     ? dkey
					: strcmp(groups[g], "month") == 0 ? mkey
					: json_string_value(json_object_get(r, groups[g]));
			buf_printf(&key, "%s\x1f", v ? v : "");
			json_object_set_new(out, groups[g], json_string(v ? v : ""));
		}
		int64_t charge = json_integer_value(json_object_get(r, "charge"));
		int64_t qty = json_integer_value(json_object_get(r, "quantity"));
		int64_t recs = json_integer_value(json_object_get(r, "records"));
		tot_charge += charge;
		tot_records += recs;
		json_t *have = json_object_get(folded, buf_str(&key));
		if (have) {
			json_object_set_new(have, "charge", json_integer(json_integer_value(json_object_get(have, "charge")) + charge));
			json_object_set_new(have, "quantity", json_integer(json_integer_value(json_object_get(have, "quantity")) + qty));
			json_object_set_new(have, "records", json_integer(json_integer_value(json_object_get(have, "records")) + recs));
			json_decref(out);
		} else {
			json_object_set_new(out, "charge", json_integer(charge));
			json_object_set_new(out, "quantity", json_integer(qty));
			json_object_set_new(out, "records", json_integer(recs));
			json_object_set_new(folded, buf_str(&key), out);
			json_array_append(order, out);
		}
		buf_release(&key);
	}
	tz_free(z);
	json_decref(rows);
	bool with_qty = false;
	for (size_t g = 0; g < ng; g++)
		with_qty |= strcmp(groups[g], "resource") == 0;
	char mb[MONEY_FMT_MAX];
	if (csv) {
		struct buf *b = &resp->body;
		for (size_t g = 0; g < ng; g++)
			buf_printf(b, "%s,", groups[g]);
		buf_puts(b, with_qty ? "quantity,charge,records\r\n" : "charge,records\r\n");
		json_array_foreach(order, i, r) {
			for (size_t g = 0; g < ng; g++) {
				api_csv_field(b, json_string_value(json_object_get(r, groups[g])));
				buf_putc(b, ',');
			}
			if (with_qty)
				buf_printf(b, "%lld,", (long long)json_integer_value(json_object_get(r, "quantity")));
			buf_printf(b, "%s,%lld\r\n",
				   money_format(json_integer_value(json_object_get(r, "charge")), mb),
				   (long long)json_integer_value(json_object_get(r, "records")));
		}
		json_decref(folded);
		json_decref(order);
		/* CSV has no place for it in the body: the signed checkpoint the
		 * report was computed under travels base64-encoded in a header. */
		char *note = NULL, lmsg[256] = "";
		struct checkpoint cp;
		if (ledgerlog_checkpoint(app->log, true, &note, &cp, lmsg, sizeof lmsg) == ALLOT_OK) {
			size_t nl = strlen(note);
			char b64[512], size[32];
			if (b64_encoded_len(nl) < sizeof b64) {
				b64[b64_encode(note, nl, b64)] = '\0';
				http_add_header(resp, "X-Allot-Checkpoint", b64);
				snprintf(size, sizeof size, "%llu", (unsigned long long)cp.size);
				http_add_header(resp, "X-Allot-Log-Size", size);
			}
			free(note);
		}
		resp->status = 200;
		resp->content_type = "text/csv; charset=utf-8; header=present";
		return ALLOT_OK;
	}
	json_array_foreach(order, i, r) {
		json_object_set_new(r, "charge", json_string(money_format(
			json_integer_value(json_object_get(r, "charge")), mb)));
		if (!with_qty)
			json_object_del(r, "quantity");
	}
	json_t *gbj = json_array();
	for (size_t g = 0; g < ng; g++)
		json_array_append_new(gbj, json_string(groups[g]));
	char fs[TIME_FMT_MAX], ts[TIME_FMT_MAX];
	json_t *j = json_pack("{s:o,s:o,s:o,s:o,s:{s:s,s:I}}", "from",
			      f.from_us ? json_string(time_format_rfc3339(f.from_us, fs)) : json_null(),
			      "to", f.to_us ? json_string(time_format_rfc3339(f.to_us, ts)) : json_null(),
			      "group_by", gbj, "rows", order, "total", "charge",
			      money_format(tot_charge, mb), "records", (json_int_t)tot_records);
	json_decref(folded);
	/* The transparency log's checkpoint over the ledger reported on. */
	if ((e = api_log_annotate(req, resp, j, NULL, false))) {
		json_decref(j);
		return e;
	}
	return http_json(resp, 200, j);
}
