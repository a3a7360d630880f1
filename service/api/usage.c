/* usage.c — POST /v1/usage (provider), GET /v1/usage (institution own,
 * auditor, admin), GET /v1/providers/{id}/sequence. */
#include "api/api.h"
#include "api/usage_wire.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/csv.h"
#include "common/json.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "common/tz.h"
#include "ledger/ledger.h"
#include "ledger/ledgerlog.h"
#include "ledger/period.h"
#include "tlog/leaf.h"

/* Page size of GET /v1/usage. */
#define USAGE_PAGE_DEFAULT 100
#define USAGE_PAGE_MAX 1000
/* Gaps and repeats listed per page of GET /v1/providers/{id}/sequence:
 * the default is what the endpoint always listed; 1000 bounds the answer
 * (about 30 KB) whatever the sequence looks like. */
#define SEQ_PAGE_DEFAULT 100
#define SEQ_PAGE_MAX 1000

allot_err api_usage_submit(struct http_req *req, struct http_resp *resp)
{
	char msg[256];
	allot_err e = http_require_json(req, resp);
	if (e)
		return e;
	/* The answer is written straight into the response body. */
	e = usage_wire_ingest(api_app(req)->ledger, req->who->provider, req->body, req->body_len,
			      true, &resp->body, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg);
	resp->status = 200;
	resp->content_type = "application/json";
	return ALLOT_OK;
}

allot_err api_time_bound(const struct tz *z, const char *s, int64_t *us)
{
	size_t n = strlen(s);
	int64_t v, end;
	period_kind k;
	if (n == 10) { /* a date: only a day key has ten characters */
		if (period_key_parse(z, s, &k, &v, &end) || k != PERIOD_DAY)
			return ALLOT_E_INVALID;
	} else if (time_parse_rfc3339(s, n, &v)) {
		return ALLOT_E_INVALID;
	}
	*us = v;
	return ALLOT_OK;
}

/* Parses from/to (local date or RFC 3339) into a filter.  Dates are local
 * to the time zone of the charter in force (UTC before the first one). */
static allot_err time_range(struct http_req *req, struct http_resp *resp, int64_t *from,
			    int64_t *to)
{
	const char *f = http_query(req, "from"), *t = http_query(req, "to");
	*from = 0;
	*to = 0;
	if (!f && !t)
		return ALLOT_OK;
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	tz *z = NULL;
	char tzerr[TZ_ERR_MAX];
	allot_err e = tz_load(ac ? ac->c->timezone : "UTC", &z, tzerr);
	app_charter_put(app, ac);
	if (e)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "the charter's time zone: %s", tzerr);
	if (f && api_time_bound(z, f, from))
		e = http_error(resp, ALLOT_E_INVALID, "from must be a date (2026-12-01, local to the "
			       "charter's time zone %s) or an RFC 3339 time", tz_name(z));
	else if (t && api_time_bound(z, t, to))
		e = http_error(resp, ALLOT_E_INVALID, "to must be a date (2027-01-01, local to the "
			       "charter's time zone %s; not included) or an RFC 3339 time", tz_name(z));
	else if (f && t && *to <= *from)
		e = http_error(resp, ALLOT_E_INVALID, "to must be after from");
	tz_free(z);
	return e;
}

/* Common filters of /v1/usage and /v1/reports/usage; an institution key is
 * pinned to its own institution. */
/* *slot = v, unless the filter already names something else there. */
static bool key_agrees(const char **slot, const char *v)
{
	if (*slot && strcmp(*slot, v))
		return false;
	*slot = v;
	return true;
}

/* A qualified key as a filter: "inst/proj" (project, or member: the
 * project-level usage) or "inst/proj/member" (member) into its parts. */
static allot_err qualified_filter(struct http_resp *resp, const char *name, const char *v,
				  bool member, struct ledger_filter *f, struct api_filter_key *k)
{
	const char *a = strchr(v, '/'), *b = a ? strchr(a + 1, '/') : NULL;
	size_t li = a ? (size_t)(a - v) : 0, lp = a ? (b ? (size_t)(b - a - 1) : strlen(a + 1)) : 0;
	if (!a || li == 0 || li >= sizeof k->inst || lp == 0 || lp >= sizeof k->proj ||
	    (b && (!member || !b[1] || strchr(b + 1, '/') || strlen(b + 1) >= sizeof k->member)))
		return http_error(resp, ALLOT_E_INVALID, "%s must be an id or a report's key (%s)", name,
				  member ? "institution/project[/member]" : "institution/project");
	snprintf(k->inst, sizeof k->inst, "%.*s", (int)li, v);
	snprintf(k->proj, sizeof k->proj, "%.*s", (int)lp, a + 1);
	snprintf(k->member, sizeof k->member, "%s", b ? b + 1 : "");
	if (!key_agrees(&f->institution, k->inst) || !key_agrees(&f->project, k->proj) ||
	    (member && !key_agrees(&f->member, k->member)))
		return http_error(resp, ALLOT_E_INVALID, "%s \"%s\" disagrees with the other filters",
				  name, v);
	return ALLOT_OK;
}

/* *have must be unset or equal to own; then it is own. */
static allot_err pin(struct http_resp *resp, const char *what, const char **have, const char *own)
{
	if (*have && strcmp(*have, own))
		return http_error(resp, ALLOT_E_FORBIDDEN, "this credential may only read %s \"%s\"",
				  what, own);
	*have = own;
	return ALLOT_OK;
}

/* GET /v1/me/usage: a provider key reads its own records only, a member
 * token the records of its own member (the dashboard's provider and member
 * pages, docs/DASHBOARD.md). */
static allot_err pin_own(struct http_req *req, struct http_resp *resp, struct ledger_filter *f)
{
	const struct principal *p = req->who;
	allot_err e = ALLOT_OK;
	if (p->role == ROLE_PROVIDER)
		e = pin(resp, "provider", &f->provider, p->provider);
	else if (p->role == ROLE_MEMBER && !(e = pin(resp, "institution", &f->institution, p->institution)) &&
		 !(e = pin(resp, "project", &f->project, p->project)))
		e = pin(resp, "member", &f->member, p->member);
	return e;
}

allot_err api_usage_filter(struct http_req *req, struct http_resp *resp,
			   struct ledger_filter *f, struct api_filter_keys *keys)
{
	memset(f, 0, sizeof *f);
	f->institution = http_query(req, "institution");
	const char *proj = http_query(req, "project"), *mem = http_query(req, "member");
	allot_err e;
	if (proj && strchr(proj, '/')) {
		if ((e = qualified_filter(resp, "project", proj, false, f, &keys->project)))
			return e;
	} else {
		f->project = proj;
	}
	if (mem && strchr(mem, '/')) {
		if ((e = qualified_filter(resp, "member", mem, true, f, &keys->member)))
			return e;
	} else {
		f->member = mem;
	}
	f->provider = http_query(req, "provider");
	f->resource = http_query(req, "resource");
	f->model = http_query(req, "model");
	f->kind = http_query(req, "kind");
	if (f->kind && strcmp(f->kind, "usage") && strcmp(f->kind, "adjustment") &&
	    strcmp(f->kind, "void"))
		return http_error(resp, ALLOT_E_INVALID, "kind must be usage, adjustment or void");
	if (req->who->role == ROLE_INSTITUTION) {
		if (f->institution && strcmp(f->institution, req->who->institution))
			return http_error(resp, ALLOT_E_FORBIDDEN,
					  "this credential may only read institution \"%s\"",
					  req->who->institution);
		f->institution = req->who->institution;
	} else if ((e = pin_own(req, resp, f))) {
		return e;
	}
	return time_range(req, resp, &f->from_us, &f->to_us);
}

/* A usage page as CSV: one header row, one row per record, the page's
 * signed checkpoint in X-Allot-Checkpoint (base64) and the cursor in
 * X-Allot-Next.  Integers and the decimal charge and rate are numeric
 * cells; every other cell is text, neutralised (common/csv.h). */
static allot_err usage_csv(struct http_resp *resp, json_t *body)
{
	static const char *const cols[] = {
		"id", "leaf_index", "provider", "record_id", "seq", "kind", "adjustment",
		"supersedes", "institution", "project", "member", "resource", "class", "model",
		"quantity", "start", "end", "received", "booked", "late", "charter_version", "rate",
		"charge", "overage", "source", "sha256", NULL};
	struct buf *b = &resp->body;
	buf_reset(b);
	for (size_t k = 0; cols[k]; k++)
		buf_printf(b, "%s%s", k ? "," : "", cols[k]);
	buf_puts(b, "\r\n");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(body, "records"), i, r) {
		for (size_t k = 0; cols[k]; k++) {
			json_t *v = json_object_get(r, cols[k]);
			bool decimal = strcmp(cols[k], "charge") == 0 || strcmp(cols[k], "rate") == 0;
			if (k)
				buf_putc(b, ',');
			if (json_is_integer(v))
				buf_put_int(b, json_integer_value(v));
			else if (json_is_boolean(v))
				buf_puts(b, json_is_true(v) ? "true" : "false");
			else if (decimal)
				csv_number(b, json_string_value(v));
			else
				csv_text(b, json_string_value(v));
		}
		buf_puts(b, "\r\n");
	}
	const char *note = json_string_value(json_object_get(body, "checkpoint"));
	if (note && b64_encoded_len(strlen(note)) < 512) {
		char b64[512];
		b64[b64_encode(note, strlen(note), b64)] = '\0';
		http_add_header(resp, "X-Allot-Checkpoint", b64);
	}
	json_t *next = json_object_get(body, "next");
	if (json_is_integer(next)) {
		char n[32];
		snprintf(n, sizeof n, "%lld", (long long)json_integer_value(next));
		http_add_header(resp, "X-Allot-Next", n);
	}
	resp->status = 200;
	resp->content_type = "text/csv; charset=utf-8; header=present";
	return b->oom ? http_error(resp, ALLOT_E_NOMEM, "out of memory") : ALLOT_OK;
}

struct usage_page {
	json_t *rows;
	int64_t last;
};

/* A listed row in the form the log's leaves are made of (charge, rate,
 * times, flags converted: ledgerlog_usage_json). */
static void usage_row(void *ctx, const struct ledger_row *row, int64_t leaf_index)
{
	struct usage_page *pg = ctx;
	pg->last = row->row_id;
	json_array_append_new(pg->rows, ledgerlog_usage_json(row, true, leaf_index));
}

allot_err api_usage_list(struct http_req *req, struct http_resp *resp)
{
	struct ledger_filter f;
	struct api_filter_keys keys;
	allot_err e = api_usage_filter(req, resp, &f, &keys);
	if (e)
		return e;
	f.limit = USAGE_PAGE_DEFAULT;
	const char *a = http_query(req, "after"), *l = http_query(req, "limit");
	char *end;
	if (a) {
		f.after_id = strtoll(a, &end, 10);
		if (*end || f.after_id < 0)
			return http_error(resp, ALLOT_E_INVALID, "after must be a cursor from a previous page");
	}
	if (l) {
		f.limit = strtoll(l, &end, 10);
		if (*end || f.limit < 1 || f.limit > USAGE_PAGE_MAX)
			return http_error(resp, ALLOT_E_INVALID, "limit must be 1..%d", USAGE_PAGE_MAX);
	}
	struct usage_page pg = {.rows = json_array(), .last = 0};
	if ((e = store_ledger_list_q(api_app(req)->store, &f, usage_row, &pg))) {
		json_decref(pg.rows);
		return http_error(resp, e, "could not read the ledger");
	}
	json_t *rows = pg.rows;
	json_t *next = (int64_t)json_array_size(rows) == f.limit ? json_integer(pg.last)
								  : json_null();
	json_t *body = json_pack("{s:o,s:o}", "records", rows, "next", next);
	/* The transparency log: checkpoint, leaf indices, proofs=1 for proofs. */
	const char *pr = http_query(req, "proofs"), *fmt = http_query(req, "format");
	bool csv = fmt && strcmp(fmt, "csv") == 0;
	if (fmt && !csv && strcmp(fmt, "json") != 0) {
		json_decref(body);
		return http_error(resp, ALLOT_E_INVALID, "format must be csv or json");
	}
	if ((e = api_log_annotate(req, resp, body, rows, !csv && pr && strcmp(pr, "1") == 0))) {
		json_decref(body);
		return e;
	}
	if (csv) {
		e = usage_csv(resp, body);
		json_decref(body);
		return e;
	}
	return http_json(resp, 200, body);
}

json_t *api_seq_status_json(const char *provider, const struct ledger_seq_status *ss)
{
	json_t *gaps = json_array(), *reps = json_array();
	for (size_t i = 0; i < ss->ngaps; i++)
		json_array_append_new(gaps, json_pack("{s:I,s:I}", "from",
						      (json_int_t)ss->gaps[i].from, "to",
						      (json_int_t)ss->gaps[i].to));
	for (size_t i = 0; i < ss->nrepeats; i++)
		json_array_append_new(reps, json_integer(ss->repeats[i]));
	json_t *j = json_pack("{s:s}", "provider", provider);
	json_object_set_new(j, "records", json_integer(ss->records));
	json_object_set_new(j, "with_seq", json_integer(ss->with_seq));
	json_object_set_new(j, "min_seq", ss->with_seq ? json_integer(ss->min_seq) : json_null());
	json_object_set_new(j, "max_seq", ss->with_seq ? json_integer(ss->max_seq) : json_null());
	json_object_set_new(j, "gaps", gaps);
	json_object_set_new(j, "repeats", reps);
	json_object_set_new(j, "gap_count", json_integer(ss->gap_count));
	json_object_set_new(j, "missing", json_integer(ss->missing));
	json_object_set_new(j, "repeat_count", json_integer(ss->repeat_count));
	json_object_set_new(j, "next", ss->has_next ? json_integer(ss->next) : json_null());
	return j;
}

/* The provider of /v1/providers/{id}/... and the page asked for: `after`
 * (default after_default) and `limit` (default SEQ_PAGE_DEFAULT). */
static allot_err provider_page(struct http_req *req, struct http_resp *resp, const char *what,
			       int64_t after_default, int64_t *after, int64_t *limit)
{
	const char *id = req->params[0];
	if (req->who->role == ROLE_PROVIDER && strcmp(req->who->provider, id))
		return http_error(resp, ALLOT_E_FORBIDDEN,
				  "this credential may only read provider \"%s\"", req->who->provider);
	const char *a = http_query(req, "after"), *l = http_query(req, "limit");
	char *end;
	*after = after_default;
	*limit = SEQ_PAGE_DEFAULT;
	if (a) {
		*after = strtoll(a, &end, 10);
		if (!*a || *end || *after < 0 || *after == LLONG_MAX)
			return http_error(resp, ALLOT_E_INVALID, "after must be a %s (0 or more)", what);
	}
	if (l) {
		*limit = strtoll(l, &end, 10);
		if (!*l || *end || *limit < 1 || *limit > SEQ_PAGE_MAX)
			return http_error(resp, ALLOT_E_INVALID, "limit must be 1..%d", SEQ_PAGE_MAX);
	}
	return ALLOT_OK;
}

allot_err api_provider_sequence(struct http_req *req, struct http_resp *resp)
{
	const char *id = req->params[0];
	/* Bounded pages: at most `limit` gaps and repeats above `after`; the
	 * answer's "next" is the following page's `after`. */
	int64_t after, limit;
	allot_err pe = provider_page(req, resp, "seq number", -1, &after, &limit);
	if (pe)
		return pe;
	struct ledger_seq_status ss;
	struct store *st = api_app(req)->store;
	allot_err e = store_ledger_seq_status(st, id, after, (int)limit, &ss);
	if (e)
		return http_error(resp, e, "could not read the ledger");
	json_t *j = api_seq_status_json(id, &ss);
	ledger_seq_status_release(&ss);
	return http_json(resp, 200, j);
}

struct rejections_page {
	json_t *list;
	int64_t last;
};

static void rejection_json(void *ctx, const struct ledger_rejection *r)
{
	struct rejections_page *pg = ctx;
	char at[TIME_FMT_MAX], hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", r->sha256[i]);
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)r->id, "record_id",
			      r->record_id, "reason", r->reason, "received",
			      time_format_rfc3339(r->received_us, at), "sha256", hex);
	json_object_set_new(o, "seq", r->has_seq ? json_integer(r->seq) : json_null());
	json_array_append_new(pg->list, o);
	pg->last = r->id;
}

/* GET /v1/providers/{id}/rejections: the provider's records the ledger
 * refused, kept for good (docs/LEDGER.md, "Rejections are final"), in the
 * order they came, `limit` a page; "next" is the following page's `after`. */
allot_err api_provider_rejections(struct http_req *req, struct http_resp *resp)
{
	int64_t after, limit;
	allot_err e = provider_page(req, resp, "rejection id", 0, &after, &limit);
	if (e)
		return e;
	struct rejections_page pg = {.list = json_array(), .last = 0};
	struct store *st = api_app(req)->store;
	e = store_reject_list(st, req->params[0], after, limit + 1, rejection_json, &pg);
	if (e) {
		json_decref(pg.list);
		return http_error(resp, e, "could not read the ledger");
	}
	json_t *next = json_null();
	if (json_array_size(pg.list) > (size_t)limit) {
		json_array_remove(pg.list, (size_t)limit);
		json_t *last = json_array_get(pg.list, (size_t)limit - 1);
		next = json_integer(json_integer_value(json_object_get(last, "id")));
	}
	return http_json(resp, 200, json_pack("{s:s,s:o,s:o}", "provider", req->params[0],
					      "rejections", pg.list, "next", next));
}
