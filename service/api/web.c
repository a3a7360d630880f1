/* web.c — the dashboard (SPEC sections 4 and 8, docs/DASHBOARD.md): the
 * static files of service/web/, embedded at build time, served at `/` and
 * `/ui/{file}` with a strict Content-Security-Policy, and GET /v1/me, which
 * tells the page whose credential it holds. */
#include "api/api.h"

#include <string.h>

#include "api/web_assets.h"

/* No inline script or style, nothing from another origin, never framed. */
#define WEB_CSP                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "    \
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

const struct web_asset *web_asset_find(const char *name)
{
	for (size_t i = 0; i < web_nassets; i++)
		if (strcmp(web_assets[i].name, name) == 0)
			return &web_assets[i];
	return NULL;
}

/* Does If-None-Match (a list, or "*") name etag?  Weak forms match too
 * (RFC 9110 13.1.2: If-None-Match uses the weak comparison). */
static bool etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	size_t el = strlen(etag);
	for (const char *p = inm; *p;) {
		p += strspn(p, " \t,");
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

void web_security_headers(struct http_resp *resp)
{
	http_add_header(resp, "Content-Security-Policy", WEB_CSP);
	http_add_header(resp, "X-Frame-Options", "DENY");
	http_add_header(resp, "Referrer-Policy", "no-referrer");
	http_add_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	http_add_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

allot_err web_send_asset(struct http_req *req, struct http_resp *resp, const struct web_asset *a)
{
	web_security_headers(resp);
	/* No hashed file names (no build step): every file is revalidated,
	 * which costs a 304 of no body when it did not change. */
	http_add_header(resp, "Cache-Control", "no-cache");
	http_add_header(resp, "ETag", a->etag);
	resp->content_type = a->content_type;
	if (etag_matches(http_header(req, "If-None-Match"), a->etag)) {
		resp->status = 304;
		return ALLOT_OK;
	}
	resp->status = 200;
	buf_append(&resp->body, a->data, a->size); /* libmicrohttpd drops it for HEAD */
	return resp->body.oom ? ALLOT_E_NOMEM : ALLOT_OK;
}

allot_err api_web_index(struct http_req *req, struct http_resp *resp)
{
	const struct web_asset *a = web_asset_find("index.html");
	if (!a)
		return http_error(resp, ALLOT_E_NOT_FOUND, "this allotd was built without its dashboard");
	return web_send_asset(req, resp, a);
}

allot_err api_web_file(struct http_req *req, struct http_resp *resp)
{
	const char *name = req->params[0];
	const struct web_asset *a = web_asset_find(name);
	if (!a)
		return http_error(resp, ALLOT_E_NOT_FOUND, "no such dashboard file: %.64s", name);
	return web_send_asset(req, resp, a);
}

allot_err api_me(struct http_req *req, struct http_resp *resp)
{
	const struct principal *p = req->who;
	json_t *j = json_pack("{s:s,s:s}", "role", principal_role_name(p->role), "id", p->key_id);
	if (!j)
		return ALLOT_E_NOMEM;
	if (p->institution[0])
		json_object_set_new(j, "institution", json_string(p->institution));
	if (p->provider[0])
		json_object_set_new(j, "provider", json_string(p->provider));
	if (p->role == ROLE_MEMBER) {
		json_object_set_new(j, "project", json_string(p->project));
		json_object_set_new(j, "member", json_string(p->member));
	}
	/* the zone that dates, periods and reports use: the page shows dates in it */
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	if (ac) {
		json_object_set_new(j, "timezone", json_string(ac->c->timezone));
		json_object_set_new(j, "unit", json_string(ac->c->unit));
	}
	app_charter_put(app, ac);
	return http_json(resp, 200, j);
}
