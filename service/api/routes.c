/* routes.c — the route table (SPEC section 4) and authentication. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#include "auth/apikey.h"
#include "crypto/token_claims.h"
#include "gate/gate.h"
#include "gate/tokens.h"

#define STAFF (ROLE_ADMIN | ROLE_AUDITOR)

const struct http_route api_routes[] = {
	{"GET", "/healthz", ROLE_PUBLIC, api_healthz, NULL},
	{"GET", "/readyz", ROLE_PUBLIC, api_readyz, NULL},
	{"GET", "/metrics", ROLE_PUBLIC, api_metrics, NULL},
	{"GET", "/v1/webhooks/key", ROLE_PUBLIC, api_webhooks_key, NULL},
	{"GET", "/v1/charter", STAFF, api_charter_get, NULL},
	{"PUT", "/v1/charter", ROLE_ADMIN, api_charter_put, NULL},
	{"POST", "/v1/charter/validate", ROLE_ADMIN, api_charter_validate, NULL},
	{"GET", "/v1/charter/history", STAFF, api_charter_history, NULL},
	{"GET", "/v1/keys", ROLE_ADMIN, api_keys_list, NULL},
	{"POST", "/v1/keys", ROLE_ADMIN, api_keys_create, NULL},
	{"DELETE", "/v1/keys/{id}", ROLE_ADMIN, api_keys_revoke, NULL},
	{"GET", "/v1/audit", STAFF, api_audit_list, NULL},
	{"POST", "/v1/store/backup", ROLE_ADMIN, api_store_backup, NULL},
	{"POST", "/v1/usage", ROLE_PROVIDER, api_usage_submit, NULL},
	{"GET", "/v1/usage", STAFF | ROLE_INSTITUTION, api_usage_list, NULL},
	{"GET", "/v1/providers/{id}/sequence", STAFF | ROLE_PROVIDER, api_provider_sequence, NULL},
	{"GET", "/v1/providers/{id}/rejections", STAFF | ROLE_PROVIDER, api_provider_rejections, NULL},
	{"GET", "/v1/quotas/me", ROLE_MEMBER, api_quotas_me, NULL},
	{"GET", "/v1/quotas/{inst}", STAFF | ROLE_INSTITUTION, api_quota_get, NULL},
	{"GET", "/v1/quotas/{inst}/{proj}", STAFF | ROLE_INSTITUTION, api_quota_get, NULL},
	{"GET", "/v1/reports/usage", STAFF | ROLE_INSTITUTION, api_report_usage, NULL},
	{"GET", "/v1/reports/daily", STAFF | ROLE_INSTITUTION, api_report_daily, NULL},
	{"POST", "/v1/tokens", ROLE_ADMIN | ROLE_INSTITUTION, api_tokens_mint, NULL},
	{"POST", "/v1/tokens/revoke", ROLE_ADMIN | ROLE_INSTITUTION, api_tokens_revoke, NULL},
	{"GET", "/v1/keys/public", ROLE_PUBLIC, api_keys_public, NULL},
	{"POST", "/v1/keys/rotate", ROLE_ADMIN, api_keys_rotate, NULL},
	{"GET", "/v1/models", ROLE_MEMBER, api_models, NULL},
	{"GET", "/v1/models/{id}", ROLE_MEMBER, api_model_get, NULL},
	{"POST", "/v1/completions", ROLE_MEMBER, api_completions, NULL},
	{"POST", "/v1/chat/completions", ROLE_MEMBER, api_chat_completions, NULL},
	{"POST", "/v1/responses", ROLE_MEMBER, api_responses, NULL},
	{"POST", "/v1/embeddings", ROLE_MEMBER, api_embeddings, NULL},
	{"POST", "/v1/tokenize", ROLE_MEMBER, api_tokenize, NULL},
	{"POST", "/v1/detokenize", ROLE_MEMBER, api_detokenize, NULL},
	/* the transparency log (api/log.c, docs/TLOG.md) */
	{"GET", "/v1/log/key", ROLE_PUBLIC, api_log_key, NULL},
	{"GET", "/v1/log/checkpoint", STAFF | ROLE_INSTITUTION, api_log_checkpoint, NULL},
	{"GET", "/v1/log/proof/inclusion", STAFF | ROLE_INSTITUTION, api_log_inclusion, NULL},
	{"GET", "/v1/log/proof/consistency", STAFF | ROLE_INSTITUTION, api_log_consistency, NULL},
	{"GET", "/v1/log/entries", STAFF, api_log_entries, NULL},
	{"GET", "/v1/log/export", STAFF, api_log_export, NULL},
	/* the dashboard and the public page (api/web.c, api/public.c, docs/DASHBOARD.md) */
	{"GET", "/", ROLE_PUBLIC, api_web_index, NULL},
	{"GET", "/ui/{file}", ROLE_PUBLIC, api_web_file, "/ui"},
	{"GET", "/v1/me", STAFF | ROLE_INSTITUTION | ROLE_PROVIDER | ROLE_MEMBER, api_me, NULL},
	{"GET", "/v1/me/usage", ROLE_PROVIDER | ROLE_MEMBER, api_usage_list, NULL},
	{"GET", "/public", ROLE_PUBLIC, api_public, NULL},
	{"GET", "/public.json", ROLE_PUBLIC, api_public_json, NULL},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];

/* What the holder of a refused member token is told (only the one who
 * presents it learns this): expired, not yet valid and revoked are reported
 * only for a token whose signature verified; a token signed for another
 * deployment (another issuer, or a key this one does not have) says so;
 * anything else is "invalid". */
static void token_refusal(const char *why, const char *deployment, char *msg, size_t msgsz)
{
	if (strncmp(why, "token expired", 13) == 0)
		snprintf(msg, msgsz, "%s: ask your institution for a new token", why);
	else if (strncmp(why, "token not valid before", 22) == 0 ||
		 strncmp(why, "token issued in the future", 26) == 0)
		snprintf(msg, msgsz, "token not yet valid (%s)", why);
	else if (strcmp(why, "token revoked") == 0)
		snprintf(msg, msgsz, "token revoked: ask your institution for a new token");
	else if (strncmp(why, "no verification key", 19) == 0 ||
		 strcmp(why, "token issued by another issuer") == 0)
		snprintf(msg, msgsz, "token not issued by this deployment (%s), or by a signing "
			 "key it no longer has", deployment ? deployment : "local");
	else
		snprintf(msg, msgsz, "invalid token");
}

allot_err api_authenticate(struct http_req *req, char *msg, size_t msgsz)
{
	const char *h = http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		snprintf(msg, msgsz, "missing credential: send Authorization: Bearer <key>");
		return ALLOT_E_UNAUTHORIZED;
	}
	const char *cred = h + 7;
	while (*cred == ' ')
		cred++;
	/* A member's principal is followed by its token claims (api/gate.c). */
	struct principal *p = calloc(1, sizeof *p + sizeof(struct token_claims));
	if (!p)
		return ALLOT_E_NOMEM;
	struct app *app = api_app(req);
	if (strncmp(cred, "v4.public.", 10) == 0 && app->gate) {
		struct token_claims *c = (struct token_claims *)(p + 1);
		char why[256];
		if (tokens_verify(gate_tokens(app->gate), cred, strlen(cred), c, why, sizeof why)) {
			free(p);
			log_debug("token refused: %s", why);
			token_refusal(why, app->cfg.deployment, msg, msgsz);
			return ALLOT_E_UNAUTHORIZED;
		}
		p->role = ROLE_MEMBER;
		snprintf(p->key_id, sizeof p->key_id, "%s", c->jti);
		snprintf(p->institution, sizeof p->institution, "%s", c->inst);
		snprintf(p->project, sizeof p->project, "%s", c->proj);
		snprintf(p->member, sizeof p->member, "%s", c->sub);
		p->max_credits = c->has_max_credits ? c->max_credits : -1;
		req->who = p;
		return ALLOT_OK;
	}
	allot_err e = apikey_authenticate(app->store, cred, strlen(cred), p);
	if (e) {
		free(p);
		snprintf(msg, msgsz, e == ALLOT_E_UNAUTHORIZED ? "invalid credential"
							       : "credential check failed");
		return e;
	}
	req->who = p;
	return ALLOT_OK;
}

_Static_assert(ROLE_PUBLIC == HTTP_ROUTE_PUBLIC, "a public route is public to the server");

void api_principal_free(struct principal *who) { free(who); }

const char *api_actor(const struct http_req *req)
{
	return req->who ? req->who->key_id : "anonymous";
}

allot_err api_scope_institution(struct http_req *req, struct http_resp *resp,
				const char *inst)
{
	const struct principal *p = req->who;
	if (principal_reads_institution(p, inst))
		return ALLOT_OK;
	return http_error(resp, ALLOT_E_FORBIDDEN,
			  "this credential may only read institution \"%s\"", p->institution);
}

allot_err api_error_lines(struct http_resp *resp, allot_err err, const char *msg,
			  const struct charter_errors *errs)
{
	json_t *lines = json_array(), *warns = json_array();
	for (size_t i = 0; errs && i < errs->nerrors; i++)
		json_array_append_new(lines, json_string(errs->errors[i].text));
	for (size_t i = 0; errs && i < errs->nwarnings; i++)
		json_array_append_new(warns, json_string(errs->warnings[i].text));
	json_t *j = http_error_json(err, NULL, NULL, msg);
	json_t *eo = json_object_get(j, "error");
	json_object_set_new(eo, "errors", lines);
	json_object_set_new(eo, "warnings", warns);
	http_json(resp, err_http_status(err), j);
	resp->err = err;
	return err;
}
