/* audit.c — GET /v1/audit?after=ID&limit=N (admin, auditor). */
#include "api/api.h"

#include <stdlib.h>

#include "tlog/leaf.h"

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

struct audit_page {
	json_t *entries;
	int64_t n, last_id;
};

/* store_audit_list's fn: the entry in its export form (tlog/leaf.h), "at"
 * in RFC 3339, nulls for the columns the store keeps NULL. */
static void audit_add(void *ctx, int64_t id, const struct audit_entry *a)
{
	struct audit_page *pg = ctx;
	json_t *j = tlog_audit_export_json(id, a->at, a->actor, a->action, a->target,
					   a->before_sha256, a->after_sha256, a->detail);
	json_array_append_new(pg->entries, j ? j : json_null());
	pg->n++;
	pg->last_id = id;
}

allot_err api_audit_list(struct http_req *req, struct http_resp *resp)
{
	int64_t after = 0, limit = AUDIT_PAGE_DEFAULT;
	const char *a = http_query(req, "after"), *l = http_query(req, "limit");
	if (a && !parse_i64(a, 0, INT64_MAX, &after))
		return http_error(resp, ALLOT_E_INVALID, "after must be a non-negative integer");
	if (l && !parse_i64(l, 1, AUDIT_PAGE_MAX, &limit))
		return http_error(resp, ALLOT_E_INVALID, "limit must be 1..%d", AUDIT_PAGE_MAX);
	struct audit_page pg = {.entries = json_array()};
	if (!pg.entries)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	allot_err e = store_audit_list(api_app(req)->store, after, limit, audit_add, &pg);
	if (e) {
		json_decref(pg.entries);
		return http_error(resp, e, "could not read the audit log");
	}
	json_t *next = pg.n == limit ? json_integer(pg.last_id) : json_null();
	return http_json(resp, 200, json_pack("{s:o,s:o}", "entries", pg.entries, "next", next));
}
