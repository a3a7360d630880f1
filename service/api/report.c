/* report.c — GET /v1/reports/usage?from=&to=&group_by=&format=csv|json.
 * Sums of charges (exact decimals), net quantities and record counts per
 * group.  from/to dates, day and month are local to the charter's time zone
 * and follow the tiling of its periods (ledger/period.h), so a report over a
 * period equals that period's quota `used`.  project and member keys are
 * qualified by their institution (and project): "epfl/climate",
 * "epfl/climate/alice@epfl.ch".  See docs/LEDGER.md, "Reports". */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/csv.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "ledger/period.h"
#include "ledger/ledgerlog.h"

#define REPORT_MAX_GROUPS 8

/* have[field] += v, checked.  Returns nonzero on overflow (have unchanged). */
static int fold_add(json_t *have, const char *field, int64_t v)
{
	int64_t sum;
	if (money_add(json_integer_value(json_object_get(have, field)), v, &sum))
		return 1;
	json_object_set_new(have, field, json_integer(sum));
	return 0;
}


struct report_json {
	json_t *rows;
	const char *const *group_by;
	size_t ngroup;
	bool by_bucket;
};

static void report_json_row(void *ctx, const struct ledger_report_row *r)
{
	struct report_json *rj = ctx;
	json_t *o = json_object();
	for (size_t g = 0; g < rj->ngroup; g++)
		json_object_set_new(o, rj->group_by[g], json_string(r->group[g]));
	if (rj->by_bucket)
		json_object_set_new(o, "bucket_us", json_integer(r->bucket_us));
	json_object_set_new(o, "charge", json_integer(r->charge));
	json_object_set_new(o, "quantity", json_integer(r->quantity));
	json_object_set_new(o, "records", json_integer(r->records));
	json_array_append_new(rj->rows, o);
}

allot_err api_report_rows_json(struct store *st, const struct ledger_filter *f,
			       const char *const *group_by, size_t ngroup, bool by_bucket,
			       json_t **out)
{
	struct report_json rj = {json_array(), group_by, ngroup, by_bucket};
	if (!rj.rows)
		return ALLOT_E_NOMEM;
	allot_err e = store_ledger_report_rows(st, f, group_by, ngroup, by_bucket,
					       report_json_row, &rj);
	if (e) {
		json_decref(rj.rows);
		return e;
	}
	*out = rj.rows;
	return ALLOT_OK;
}

allot_err api_report_usage(struct http_req *req, struct http_resp *resp)
{
	static const char *const allowed[] = {"institution", "project", "member", "provider",
					      "resource", "model", "day", "month", NULL};
	struct app *app = api_app(req);
	struct ledger_filter f;
	struct api_filter_keys keys;
	allot_err e = api_usage_filter(req, resp, &f, &keys);
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
	e = api_report_rows_json(app->store, &f, sqlg, nsql, day || month, &rows);
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
	bool overflow = false;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		char dkey[PERIOD_KEY_MAX] = "", mkey[PERIOD_KEY_MAX] = "";
		if (z) {
			/* The day and month periods holding the bucket (15-minute
			 * buckets never straddle a local midnight: zone offsets
			 * and their changes are multiples of 15 minutes). */
			int64_t at = json_integer_value(json_object_get(r, "bucket_us"));
			if (period_key(z, PERIOD_DAY, at, dkey) || period_key(z, PERIOD_MONTH, at, mkey)) {
				snprintf(dkey, sizeof dkey, "?"); /* outside years 1..9999 */
				snprintf(mkey, sizeof mkey, "?");
			}
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
		if (money_add(tot_charge, charge, &tot_charge) ||
		    money_add(tot_records, recs, &tot_records))
			overflow = true;
		json_t *have = json_object_get(folded, buf_str(&key));
		if (have) {
			overflow |= fold_add(have, "charge", charge) || fold_add(have, "quantity", qty) ||
				    fold_add(have, "records", recs);
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
	if (overflow) {
		json_decref(folded);
		json_decref(order);
		return http_error(resp, ALLOT_E_INTERNAL, "a report sum is out of range");
	}
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
				csv_text(b, json_string_value(json_object_get(r, groups[g])));
				buf_putc(b, ',');
			}
			if (with_qty) { /* numbers: negative ones stay numbers */
				buf_put_int(b, json_integer_value(json_object_get(r, "quantity")));
				buf_putc(b, ',');
			}
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
