/* api.h — the HTTP API's handlers (one file per resource) and the helpers
 * they share.  The route table is in api/routes.c. */
#ifndef ALLOT_API_API_H
#define ALLOT_API_API_H

#include <stdbool.h>

#include "auth/principal.h"
#include "daemon/app.h"
#include "http/server.h"

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

allot_err api_authenticate(struct http_req *req, char *msg, size_t msgsz);
void api_principal_free(struct principal *who);

static inline struct app *api_app(struct http_req *req) { return req->app; }

/* {"error":{"message","type","code","param","errors":[...lines],"warnings":[...]}} */
allot_err api_error_lines(struct http_resp *resp, allot_err err, const char *msg,
			  const struct charter_errors *errs);
/* An institution key may only see its own institution: ALLOT_OK when who may
 * read institution inst (admin and auditor may read all). */
allot_err api_scope_institution(struct http_req *req, struct http_resp *resp,
				const char *inst);
/* Audit actor for the request: the API key id. */
const char *api_actor(const struct http_req *req);

/* A from/to bound of a listing or report (api/usage.c): a date
 * ("2026-12-01") is the local midnight that starts that day in zone z, the
 * boundary periods and quotas use (period_key_parse of a day key); anything
 * else must be an RFC 3339 instant.  OUT: *us on ALLOT_OK only.
 * Errors: ALLOT_E_INVALID. */
struct tz;
allot_err api_time_bound(const struct tz *z, const char *s, int64_t *us);
/* The filters shared by GET /v1/usage and GET /v1/reports/usage (api/usage.c):
 * answers 4xx itself on bad input; an institution key is pinned to its own.
 * project and member also take a report's qualified keys ("epfl/climate",
 * "epfl/climate/alice@epfl.ch"), whose parts are kept in *keys (the
 * caller's, alive as long as f). */
struct ledger_filter;
struct api_filter_key {
	char inst[STORE_ID_MAX], proj[STORE_ID_MAX], member[STORE_MEMBER_MAX];
};
struct api_filter_keys {
	struct api_filter_key project, member;
};
allot_err api_usage_filter(struct http_req *req, struct http_resp *resp,
			   struct ledger_filter *f, struct api_filter_keys *keys);

/* GET /v1/providers/{id}/sequence's answer from the store's status
 * (api/usage.c): {"provider", "records", "with_seq", "min_seq", "max_seq",
 * "gaps": [{"from","to"}], "repeats", "gap_count", "missing",
 * "repeat_count", "next"} (null min/max without seqs, null next on the last
 * page).  OUT: a new reference. */
struct ledger_seq_status;
json_t *api_seq_status_json(const char *provider, const struct ledger_seq_status *ss);
/* The store's report rows (store_ledger_report_rows) as a JSON array of
 * objects: the group_by columns by name, "bucket_us" when by_bucket,
 * "charge" (micro), "quantity", "records" (api/report.c).  OUT: *out
 * (caller decrefs) on success only. */
allot_err api_report_rows_json(struct store *st, const struct ledger_filter *f,
			       const char *const *group_by, size_t ngroup, bool by_bucket,
			       json_t **out);

/* handlers */
allot_err api_healthz(struct http_req *req, struct http_resp *resp);
allot_err api_readyz(struct http_req *req, struct http_resp *resp);
allot_err api_metrics(struct http_req *req, struct http_resp *resp);
allot_err api_webhooks_key(struct http_req *req, struct http_resp *resp);
allot_err api_keys_create(struct http_req *req, struct http_resp *resp);
allot_err api_keys_revoke(struct http_req *req, struct http_resp *resp);
allot_err api_keys_list(struct http_req *req, struct http_resp *resp);
allot_err api_charter_get(struct http_req *req, struct http_resp *resp);
allot_err api_charter_put(struct http_req *req, struct http_resp *resp);
allot_err api_charter_validate(struct http_req *req, struct http_resp *resp);
allot_err api_charter_history(struct http_req *req, struct http_resp *resp);
allot_err api_audit_list(struct http_req *req, struct http_resp *resp);
allot_err api_usage_submit(struct http_req *req, struct http_resp *resp);
allot_err api_usage_list(struct http_req *req, struct http_resp *resp);
allot_err api_provider_sequence(struct http_req *req, struct http_resp *resp);
allot_err api_provider_rejections(struct http_req *req, struct http_resp *resp);
allot_err api_quota_get(struct http_req *req, struct http_resp *resp);
allot_err api_report_usage(struct http_req *req, struct http_resp *resp);
int64_t api_reserved(void *ctx, const char *key);
/* The quota levels of (inst, proj, member) at now, with the gate's
 * reservations, as GET /v1/quotas answers them; NULL with *err on failure. */
json_t *api_quota_view(struct app *app, const struct charter *c, const char *inst,
		       const char *proj, const char *member, int64_t now, allot_err *err);
allot_err api_tokens_mint(struct http_req *req, struct http_resp *resp);
allot_err api_tokens_revoke(struct http_req *req, struct http_resp *resp);
allot_err api_keys_public(struct http_req *req, struct http_resp *resp);
allot_err api_keys_rotate(struct http_req *req, struct http_resp *resp);
allot_err api_models(struct http_req *req, struct http_resp *resp);
allot_err api_model_get(struct http_req *req, struct http_resp *resp);
allot_err api_completions(struct http_req *req, struct http_resp *resp);
allot_err api_chat_completions(struct http_req *req, struct http_resp *resp);
allot_err api_responses(struct http_req *req, struct http_resp *resp);
allot_err api_embeddings(struct http_req *req, struct http_resp *resp);
allot_err api_quotas_me(struct http_req *req, struct http_resp *resp);
allot_err api_tokenize(struct http_req *req, struct http_resp *resp);
allot_err api_detokenize(struct http_req *req, struct http_resp *resp);

/* the transparency log (api/log.c) */
allot_err api_log_key(struct http_req *req, struct http_resp *resp);
allot_err api_store_backup(struct http_req *req, struct http_resp *resp); /* api/store.c */
allot_err api_log_checkpoint(struct http_req *req, struct http_resp *resp);
allot_err api_log_inclusion(struct http_req *req, struct http_resp *resp);
allot_err api_log_consistency(struct http_req *req, struct http_resp *resp);
allot_err api_log_entries(struct http_req *req, struct http_resp *resp);
allot_err api_log_export(struct http_req *req, struct http_resp *resp);
/* Adds a freshly signed "checkpoint" and "log_size" to an export body, and
 * to each of rows (GET /v1/usage records, may be NULL) its "leaf_index"
 * (and with proofs its inclusion "proof"; "since" adds a consistency proof).
 * On failure the error response is written. */
allot_err api_log_annotate(struct http_req *req, struct http_resp *resp, json_t *body,
			   json_t *rows, bool proofs);

/* the dashboard (api/web.c) and the public page (api/public.c) */
allot_err api_web_index(struct http_req *req, struct http_resp *resp);
allot_err api_web_file(struct http_req *req, struct http_resp *resp);
allot_err api_me(struct http_req *req, struct http_resp *resp);
allot_err api_public(struct http_req *req, struct http_resp *resp);
allot_err api_public_json(struct http_req *req, struct http_resp *resp);
/* GET /v1/reports/daily (api/daily.c): charges per local day from the
 * ledger's bucket totals. */
allot_err api_report_daily(struct http_req *req, struct http_resp *resp);
/* Quota figures as the API writes them (api/quota.c): an amount as an exact
 * decimal string, and an allocation as {"credits", "period"}. */
json_t *api_money_json(int64_t micro);
struct charter_allocation;
json_t *api_allocation_json(const struct charter_allocation *a);

#endif
