/* tokens.c — POST /v1/tokens, POST /v1/tokens/revoke, GET /v1/keys/public,
 * POST /v1/keys/rotate. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "gate/gate.h"
#include "gate/tokens.h"

/* The institution a request acts for: an institution key acts for its own
 * (naming another is forbidden: "an institution key <what>"); staff must
 * name one. */
static allot_err scope_institution(const struct http_req *req, const char **inst, const char *what,
				   char *msg, size_t msgsz)
{
	if (req->who->role == ROLE_INSTITUTION) {
		if (*inst && strcmp(*inst, req->who->institution)) {
			snprintf(msg, msgsz, "an institution key %s", what);
			return ALLOT_E_FORBIDDEN;
		}
		*inst = req->who->institution;
	} else if (!*inst) {
		snprintf(msg, msgsz, "missing field \"institution\"");
		return ALLOT_E_INVALID;
	}
	return ALLOT_OK;
}

allot_err api_tokens_mint(struct http_req *req, struct http_resp *resp)
{
	static const char *const fields[] = {"institution", "project", "member", "ttl", "models",
					     "max_credits", NULL};
	struct app *app = api_app(req);
	json_t *body = NULL;
	char msg[256];
	const char *inst = NULL, *proj = NULL, *member = NULL, *maxc = NULL;
	int64_t ttl = TOKEN_TTL_DEFAULT_US / US_PER_SEC;
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	struct active_charter *ac = NULL;
	if ((e = json_only_fields(body, fields, msg, sizeof msg)) ||
	    (e = json_get_str(body, "institution", false, &inst, msg, sizeof msg)) ||
	    (e = json_get_str(body, "project", true, &proj, msg, sizeof msg)) ||
	    (e = json_get_str(body, "member", true, &member, msg, sizeof msg)) ||
	    (e = json_get_str(body, "max_credits", false, &maxc, msg, sizeof msg)) ||
	    (e = json_get_int(body, "ttl", false, 60, TOKEN_TTL_MAX_US / US_PER_SEC, &ttl, msg,
			      sizeof msg)))
		goto bad;
	if ((e = scope_institution(req, &inst, "mints tokens for its own institution only", msg,
				   sizeof msg)))
		goto bad;
	int64_t now = time_now_us();
	/* The charter in force, or else the first scheduled one that makes
	 * member a member: its token is not valid before that charter's
	 * `effective` (SPEC section 2). */
	ac = app_charter_in_force(app, now);
	const struct charter_institution *ci = ac ? charter_institution(ac->c, inst) : NULL;
	const struct charter_project *cp = ci ? charter_project(ci, proj) : NULL;
	int64_t valid_from = now;
	while (!cp || !charter_member(cp, member)) {
		struct active_charter *next = app_charter_next(app, ac ? ac->row.version : 0);
		app_charter_put(app, ac);
		if (!(ac = next)) {
			e = ALLOT_E_NOT_FOUND;
			snprintf(msg, sizeof msg, "%s is not a member of %s/%s in the charter in "
				 "force nor in a scheduled one", member, inst, proj);
			goto bad;
		}
		ci = charter_institution(ac->c, inst);
		cp = ci ? charter_project(ci, proj) : NULL;
		valid_from = ac->c->effective_us > now ? ac->c->effective_us : now;
	}
	struct token_claims c = {0};
	snprintf(c.inst, sizeof c.inst, "%s", inst);
	snprintf(c.proj, sizeof c.proj, "%s", proj);
	snprintf(c.sub, sizeof c.sub, "%s", member);
	json_t *models = json_object_get(body, "models");
	if (models && !json_is_null(models)) {
		size_t i;
		json_t *m;
		if (!json_is_array(models) || json_array_size(models) == 0 ||
		    json_array_size(models) > TOKEN_MODELS_MAX) {
			e = ALLOT_E_INVALID;
			snprintf(msg, sizeof msg, "\"models\" must be an array of 1..%d model ids", TOKEN_MODELS_MAX);
			goto bad;
		}
		json_array_foreach(models, i, m) {
			const char *id = json_string_value(m);
			if (!id || !charter_model(ac->c, id) ||
			    !charter_institution_allows_model(ac->c, ci, id)) {
				e = ALLOT_E_INVALID;
				snprintf(msg, sizeof msg, "model %s is not available to institution %s",
					 id ? id : "(not a string)", inst);
				goto bad;
			}
			snprintf(c.models[c.n_models++], sizeof c.models[0], "%s", id);
		}
	}
	if (maxc) {
		if (money_parse(maxc, strlen(maxc), &c.max_credits) != MONEY_OK || c.max_credits <= 0) {
			e = ALLOT_E_INVALID;
			snprintf(msg, sizeof msg, "\"max_credits\" must be a positive decimal string with at most 6 fractional digits");
			goto bad;
		}
		c.has_max_credits = true;
	}
	app_charter_put(app, ac);
	ac = NULL;
	c.iat = now;
	c.nbf = valid_from;
	c.exp = valid_from + ttl * US_PER_SEC;
	if (c.exp - c.iat > TOKEN_TTL_MAX_US) {
		char ts[TIME_FMT_MAX];
		e = ALLOT_E_INVALID;
		snprintf(msg, sizeof msg, "%s becomes a member of %s/%s only at %s (a scheduled "
			 "charter); a token may not expire more than 30 days after it is minted: "
			 "mint it later or with a shorter ttl", member, inst, proj,
			 time_format_rfc3339(valid_from, ts));
		goto bad;
	}
	char *token = NULL;
	e = tokens_mint(gate_tokens(app->gate), app->store, &c, api_actor(req), &token, msg, sizeof msg);
	if (e)
		goto bad;
	char ts[TIME_FMT_MAX];
	char nb[TIME_FMT_MAX];
	json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "token", token, "jti", c.jti,
				"institution", c.inst, "project", c.proj, "member", c.sub,
				"not_before", time_format_rfc3339(c.nbf, nb),
				"expires_at", time_format_rfc3339(c.exp, ts));
	free(token);
	json_decref(body);
	return http_json(resp, 201, out);
bad:
	app_charter_put(app, ac);
	json_decref(body);
	return http_error(resp, e, "%s", msg);
}

/* Revoking by member: the member must be one of the institution's (a member
 * of one of its projects in the charter in force), or the revocation would
 * match no token and answer `revoked` for nothing.  An institution key naming
 * someone else's member is refused (403), staff naming an unknown one get 404.
 * A member the charter no longer lists needs no revocation: the gate admits
 * members of the charter in force only. */
static allot_err revoke_member_check(struct http_req *req, const char *inst, const char *member,
				     char *msg, size_t msgsz)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	const struct charter_institution *ci = ac ? charter_institution(ac->c, inst) : NULL;
	bool found = false;
	for (size_t i = 0; ci && i < ci->nprojects && !found; i++)
		found = charter_member(&ci->projects[i], member) != NULL;
	app_charter_put(app, ac);
	if (found)
		return ALLOT_OK;
	if (req->who->role == ROLE_INSTITUTION) {
		snprintf(msg, msgsz, "\"%.128s\" is not a member of institution \"%s\": an institution "
			 "key revokes its own members' tokens only", member, inst);
		return ALLOT_E_FORBIDDEN;
	}
	snprintf(msg, msgsz, "\"%.128s\" is not a member of institution \"%.64s\"", member, inst);
	return ALLOT_E_NOT_FOUND;
}

allot_err api_tokens_revoke(struct http_req *req, struct http_resp *resp)
{
	static const char *const fields[] = {"jti", "institution", "member", NULL};
	struct app *app = api_app(req);
	json_t *body = NULL;
	char msg[256];
	const char *jti = NULL, *inst = NULL, *member = NULL;
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	if ((e = json_only_fields(body, fields, msg, sizeof msg)) ||
	    (e = json_get_str(body, "jti", false, &jti, msg, sizeof msg)) ||
	    (e = json_get_str(body, "institution", false, &inst, msg, sizeof msg)) ||
	    (e = json_get_str(body, "member", false, &member, msg, sizeof msg)))
		goto bad;
	if (!jti == !member) {
		e = ALLOT_E_INVALID;
		snprintf(msg, sizeof msg, "give either \"jti\" or \"member\"");
		goto bad;
	}
	struct token_revocation r = {0};
	r.revoked_at = time_now_us();
	snprintf(r.revoked_by, sizeof r.revoked_by, "%s", api_actor(req));
	if (jti) {
		if (strlen(jti) >= sizeof r.jti) {
			e = ALLOT_E_INVALID;
			snprintf(msg, sizeof msg, "jti too long");
			goto bad;
		}
		/* An institution may revoke only tokens of its own members; a jti
		 * it does not know is refused the same way as another's. */
		struct token_row tr;
		e = store_token_find(app->store, jti, &tr);
		if (e == ALLOT_E_NOT_FOUND ||
		    (e == ALLOT_OK && req->who->role == ROLE_INSTITUTION &&
		     strcmp(tr.institution, req->who->institution))) {
			e = ALLOT_E_NOT_FOUND;
			snprintf(msg, sizeof msg, "no token with jti \"%.64s\" was minted for this institution", jti);
			goto bad;
		}
		if (e) {
			snprintf(msg, sizeof msg, "could not read the token log");
			goto bad;
		}
		snprintf(r.jti, sizeof r.jti, "%s", jti);
	} else {
		if ((e = scope_institution(req, &inst, "revokes its own members' tokens only", msg,
					   sizeof msg)) ||
		    (e = revoke_member_check(req, inst, member, msg, sizeof msg)))
			goto bad;
		snprintf(r.institution, sizeof r.institution, "%s", inst);
		snprintf(r.member, sizeof r.member, "%s", member);
		r.before_us = r.revoked_at + 1;
	}
	if ((e = tokens_revoke(gate_tokens(app->gate), app->store, &r, api_actor(req)))) {
		snprintf(msg, sizeof msg, "could not store the revocation");
		goto bad;
	}
	/* jti and member point into body: build the answer before freeing it. */
	char ts[TIME_FMT_MAX];
	json_t *out = json_pack("{s:b,s:s?,s:s?,s:s}", "revoked", 1, "jti", jti, "member", member,
				"at", time_format_rfc3339(r.revoked_at, ts));
	json_decref(body);
	return http_json(resp, 200, out);
bad:
	json_decref(body);
	return http_error(resp, e, "%s", msg);
}

allot_err api_keys_public(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	json_t *j = keyset_public_json(tokens_keyset(gate_tokens(app->gate)));
	json_object_set_new(j, "deployment", json_string(app->cfg.deployment));
	json_object_set_new(j, "implicit_assertion", json_sprintf("allot:%s", app->cfg.deployment));
	return http_json(resp, 200, j);
}

allot_err api_keys_rotate(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	char kid[PASETO_KID_MAX + 1], msg[256] = "";
	allot_err e = keyset_rotate(tokens_keyset(gate_tokens(app->gate)), kid, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg[0] ? msg : "could not create a key");
	struct audit_entry a = {.at = time_now_us(), .actor = api_actor(req),
				.action = "signing-key.rotate", .target = kid};
	store_audit_append(app->store, &a);
	return http_json(resp, 201, json_pack("{s:s}", "kid", kid));
}
