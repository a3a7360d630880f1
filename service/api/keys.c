/* keys.c — POST /v1/keys, DELETE /v1/keys/{id}, GET /v1/keys (admin). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/apikey.h"
#include "common/json.h"
#include "common/timeutil.h"

allot_err api_keys_create(struct http_req *req, struct http_resp *resp)
{
	static const char *const fields[] = {"role", "institution", "provider", "label", NULL};
	struct app *app = api_app(req);
	json_t *body = NULL;
	char msg[256];
	const char *role = NULL, *inst = NULL, *prov = NULL, *label = NULL;
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	if ((e = json_only_fields(body, fields, msg, sizeof msg)) ||
	    (e = json_get_str(body, "role", true, &role, msg, sizeof msg)) ||
	    (e = json_get_str(body, "institution", false, &inst, msg, sizeof msg)) ||
	    (e = json_get_str(body, "provider", false, &prov, msg, sizeof msg)) ||
	    (e = json_get_str(body, "label", false, &label, msg, sizeof msg)))
		goto bad;
	unsigned r = principal_role_parse(role);
	e = ALLOT_E_INVALID;
	if (!r) {
		snprintf(msg, sizeof msg, "role must be admin, auditor, institution or provider");
		goto bad;
	}
	if ((r == ROLE_INSTITUTION) != (inst != NULL)) {
		snprintf(msg, sizeof msg, "\"institution\" is required for, and only for, role institution");
		goto bad;
	}
	if ((r == ROLE_PROVIDER) != (prov != NULL)) {
		snprintf(msg, sizeof msg, "\"provider\" is required for, and only for, role provider");
		goto bad;
	}
	if (label && strlen(label) > 128) {
		snprintf(msg, sizeof msg, "label is longer than 128 bytes");
		goto bad;
	}
	struct active_charter *ac = app_charter_get(app);
	bool known = true;
	if (inst)
		known = ac && charter_institution(ac->c, inst);
	if (prov)
		known = ac && charter_provider(ac->c, prov);
	app_charter_put(app, ac);
	if (!known) {
		snprintf(msg, sizeof msg, "unknown %s \"%s\" in the active charter",
			 inst ? "institution" : "provider", inst ? inst : prov);
		e = ALLOT_E_NOT_FOUND;
		goto bad;
	}
	struct api_key k = {0};
	char secret[APIKEY_SECRET_MAX];
	if ((e = apikey_generate(secret, k.secret_sha256, k.id)))
		goto bad;
	snprintf(k.role, sizeof k.role, "%s", role);
	snprintf(k.institution, sizeof k.institution, "%s", inst ? inst : "");
	snprintf(k.provider, sizeof k.provider, "%s", prov ? prov : "");
	snprintf(k.label, sizeof k.label, "%s", label ? label : "");
	snprintf(k.created_by, sizeof k.created_by, "%s", api_actor(req));
	k.created_at = time_now_us();
	json_t *detail = json_pack("{s:s,s:s?,s:s?}", "role", role, "institution", inst,
				   "provider", prov);
	char *dtext = json_dump_sorted(detail);
	json_decref(detail);
	struct audit_entry a = {.at = k.created_at, .actor = api_actor(req),
				.action = "key.create", .target = k.id, .detail = dtext};
	e = store_key_insert(app->store, &k, &a);
	free(dtext);
	if (e) {
		OPENSSL_cleanse(secret, sizeof secret);
		json_decref(body);
		return http_error(resp, e, "could not store the key");
	}
	char ts[TIME_FMT_MAX];
	json_t *out = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s}", "id", k.id, "secret", secret,
				"role", role, "institution", inst, "provider", prov,
				"created_at", time_format_rfc3339(k.created_at, ts));
	OPENSSL_cleanse(secret, sizeof secret);
	json_decref(body);
	return http_json(resp, 201, out);
bad:
	json_decref(body);
	return http_error(resp, e, "%s", msg);
}

allot_err api_keys_revoke(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	const char *id = req->params[0];
	if (strcmp(id, api_actor(req)) == 0)
		return http_error(resp, ALLOT_E_CONFLICT,
				  "a key cannot revoke itself; use another admin key");
	int64_t now = time_now_us();
	struct audit_entry a = {.at = now, .actor = api_actor(req), .action = "key.revoke",
				.target = id};
	allot_err e = store_key_revoke(app->store, id, now, &a);
	if (e == ALLOT_E_NOT_FOUND)
		return http_error(resp, e, "no active key with id \"%.64s\"", id);
	if (e)
		return http_error(resp, e, "could not revoke the key");
	return http_json(resp, 200, json_pack("{s:s,s:b}", "id", id, "revoked", 1));
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* store_key_list's fn: one key as GET /v1/keys lists it (no secret hash;
 * the columns the store keeps NULL as null). */
static void key_add(void *ctx, const struct api_key *k)
{
	json_t *j = json_object();
	if (j) {
		json_object_set_new(j, "id", json_string(k->id));
		json_object_set_new(j, "role", json_string(k->role));
		json_object_set_new(j, "institution", str_or_null(k->institution));
		json_object_set_new(j, "provider", str_or_null(k->provider));
		json_object_set_new(j, "label", str_or_null(k->label));
		json_object_set_new(j, "created_at", json_integer(k->created_at));
		json_object_set_new(j, "created_by", json_string(k->created_by));
		json_object_set_new(j, "revoked_at", k->revoked_at ? json_integer(k->revoked_at)
								    : json_null());
	}
	json_array_append_new(ctx, j ? j : json_null());
}

allot_err api_keys_list(struct http_req *req, struct http_resp *resp)
{
	json_t *keys = json_array();
	if (!keys)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	allot_err e = store_key_list(api_app(req)->store, key_add, keys);
	if (e) {
		json_decref(keys);
		return http_error(resp, e, "could not list keys");
	}
	return http_json(resp, 200, json_pack("{s:o}", "keys", keys));
}
