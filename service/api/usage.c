/* usage.c — POST /v1/usage (provider), GET /v1/usage (institution own,
 * auditor, admin), GET /v1/providers/{id}/sequence. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/b64.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "ledger/ledger.h"
#include "tlog/leaf.h"

/* Page size of GET /v1/usage. */
#define USAGE_PAGE_DEFAULT 100
#define USAGE_PAGE_MAX 1000

allot_err api_usage_submit(struct http_req *req, struct http_resp *resp)
{
	char msg[256];
	allot_err e = http_require_json(req, resp);
	if (e)
		return e;
	/* The answer is written straight into the response body. */
	e = ledger_ingest_body(api_app(req), req->who->provider, req->body,
					 req->body_len, true, &resp->body, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg);
	resp->status = 200;
	resp->content_type = "application/json";
	return ALLOT_OK;
}

/* Parses from/to (date or RFC 3339) into a filter. */
allot_err api_time_range(struct http_req *req, struct http_resp *resp, int64_t *from,
			 int64_t *to)
{
	const char *f = http_query(req, "from"), *t = http_query(req, "to");
	*from = 0;
	*to = 0;
	if (f && time_parse_date_or_time(f, strlen(f), from))
		return http_error(resp, ALLOT_E_INVALID, "from must be a date (2026-12-01) or an RFC 3339 time");
	if (t && time_parse_date_or_time(t, strlen(t), to))
		return http_error(resp, ALLOT_E_INVALID, "to must be a date (2026-12-31) or an RFC 3339 time");
	if (*from && *to && *to <= *from)
		return http_error(resp, ALLOT_E_INVALID, "to must be after from");
	return ALLOT_OK;
}

/* Common filters of /v1/usage and /v1/reports/usage; an institution key is
 * pinned to its own institution. */
allot_err api_usage_filter(struct http_req *req, struct http_resp *resp,
			   struct ledger_filter *f)
{
	memset(f, 0, sizeof *f);
	f->institution = http_query(req, "institution");
	f->project = http_query(req, "project");
	f->member = http_query(req, "member");
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
	}
	return api_time_range(req, resp, &f->from_us, &f->to_us);
}

/* RFC 4180 field: quoted when it holds a comma, quote or line break. */
void api_csv_field(struct buf *b, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

/* A usage page as CSV: one header row, one row per record, the page's
 * signed checkpoint in X-Allot-Checkpoint (base64) and the cursor in
 * X-Allot-Next. */
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
			char num[32];
			const char *s = "";
			if (json_is_string(v))
				s = json_string_value(v);
			else if (json_is_integer(v))
				s = (snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), num);
			else if (json_is_boolean(v))
				s = json_is_true(v) ? "true" : "false";
			if (k)
				buf_putc(b, ',');
			api_csv_field(b, s);
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

allot_err api_usage_list(struct http_req *req, struct http_resp *resp)
{
	struct ledger_filter f;
	allot_err e = api_usage_filter(req, resp, &f);
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
	json_t *rows = NULL;
	if ((e = store_ledger_list_q(api_app(req)->store, &f, &rows)))
		return http_error(resp, e, "could not read the ledger");
	size_t i;
	json_t *r;
	int64_t last = 0;
	json_array_foreach(rows, i, r) {
		last = json_integer_value(json_object_get(r, "id"));
		/* charge, rate, times, flags: the form the log's leaves are made of */
		tlog_usage_export_form(r);
	}
	json_t *next = (int64_t)json_array_size(rows) == f.limit ? json_integer(last) : json_null();
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

allot_err api_provider_sequence(struct http_req *req, struct http_resp *resp)
{
	const char *id = req->params[0];
	if (req->who->role == ROLE_PROVIDER && strcmp(req->who->provider, id))
		return http_error(resp, ALLOT_E_FORBIDDEN,
				  "this credential may only read provider \"%s\"", req->who->provider);
	json_t *j = NULL;
	allot_err e = api_app(req)->store->ops->ledger_seq_status(api_app(req)->store, id, &j);
	if (e)
		return http_error(resp, e, "could not read the ledger");
	return http_json(resp, 200, j);
}
