/* audit.c — GET /v1/audit?after=ID&limit=N (admin, auditor). */
#include "api/api.h"

#include <stdlib.h>

#include "common/timeutil.h"

/* Page size bounds for the audit listing. */
#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	if (!s || !*s)
		return false;
	long long v = strtoll(s, &end, 10);
	if (*end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

allot_err api_audit_list(struct http_req *req, struct http_resp *resp)
{
	int64_t after = 0, limit = AUDIT_PAGE_DEFAULT;
	const char *a = http_query(req, "after"), *l = http_query(req, "limit");
	if (a && !parse_i64(a, 0, INT64_MAX, &after))
		return http_error(resp, ALLOT_E_INVALID, "after must be a non-negative integer");
	if (l && !parse_i64(l, 1, AUDIT_PAGE_MAX, &limit))
		return http_error(resp, ALLOT_E_INVALID, "limit must be 1..%d", AUDIT_PAGE_MAX);
	json_t *entries = NULL;
	allot_err e = store_audit_list(api_app(req)->store, after, limit, &entries);
	if (e)
		return http_error(resp, e, "could not read the audit log");
	size_t n = json_array_size(entries), i;
	json_t *row;
	json_array_foreach(entries, i, row) {
		char ts[TIME_FMT_MAX];
		json_int_t at = json_integer_value(json_object_get(row, "at"));
		json_object_set_new(row, "at", json_string(time_format_rfc3339(at, ts)));
	}
	json_t *next = json_null();
	if ((int64_t)n == limit)
		next = json_incref(json_object_get(json_array_get(entries, n - 1), "id"));
	return http_json(resp, 200, json_pack("{s:o,s:o}", "entries", entries, "next", next));
}
