/* charter.c — GET/PUT /v1/charter, POST /v1/charter/validate, history. */
#include "api/api.h"

#include <string.h>

#include "common/timeutil.h"

static const char *const yaml_types[] = {"application/yaml", "application/x-yaml",
					 "text/yaml", "text/x-yaml", "text/plain", NULL};

static allot_err need_yaml(struct http_req *req, struct http_resp *resp)
{
	if (!http_content_type_is(req, yaml_types))
		return http_error(resp, ALLOT_E_MEDIA_TYPE,
				  "Content-Type must be application/yaml");
	if (req->body_len > CHARTER_MAX_BYTES)
		return http_error(resp, ALLOT_E_TOO_LARGE, "charter larger than %d bytes",
				  CHARTER_MAX_BYTES);
	return ALLOT_OK;
}

static json_t *row_json(const struct charter_row *r)
{
	char a[TIME_FMT_MAX], e[TIME_FMT_MAX];
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "version", (json_int_t)r->version,
			 "charter", r->charter_id, "sha256", r->sha256, "author", r->author,
			 "applied_at", time_format_rfc3339(r->applied_at, a), "effective",
			 time_format_rfc3339(r->effective, e));
}

/* "in_force", "scheduled" (its `effective` is still to come) or
 * "superseded", for version v when version `in_force` governs now. */
static const char *version_status(int64_t v, int64_t in_force)
{
	return v == in_force ? "in_force" : v > in_force ? "scheduled" : "superseded";
}

/* The versions applied after the one in force (scheduled), as
 * [{"version","effective","sha256"}]. */
static json_t *scheduled_json(struct app *app, int64_t in_force)
{
	json_t *a = json_array();
	for (struct active_charter *n = app_charter_next(app, in_force), *next; n; n = next) {
		char e[TIME_FMT_MAX];
		json_array_append_new(a, json_pack("{s:I,s:s,s:s}", "version",
						   (json_int_t)n->row.version, "effective",
						   time_format_rfc3339(n->row.effective, e),
						   "sha256", n->row.sha256));
		next = app_charter_next(app, n->row.version);
		app_charter_put(app, n);
	}
	return a;
}

/* The charter in force now; the versions scheduled after it are listed. */
allot_err api_charter_get(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	if (!ac) {
		struct active_charter *l = app_charter_latest(app);
		app_charter_put(app, l);
		return http_error(resp, ALLOT_E_NOT_FOUND, l ? "no charter is in force yet (every "
				  "applied version is scheduled)" : "no charter has been applied");
	}
	const char *fmt = http_query(req, "format");
	allot_err e;
	if (fmt && strcmp(fmt, "yaml") == 0) {
		buf_append(&resp->body, ac->row.text, ac->row.text_len);
		resp->content_type = "application/yaml";
		e = ALLOT_OK;
	} else if (fmt && strcmp(fmt, "json") != 0) {
		e = http_error(resp, ALLOT_E_INVALID, "format must be json or yaml");
	} else {
		json_t *j = row_json(&ac->row);
		json_object_set_new(j, "charter", charter_to_json(ac->c));
		json_object_set_new(j, "status", json_string("in_force"));
		json_object_set_new(j, "scheduled", scheduled_json(app, ac->row.version));
		e = http_json(resp, 200, j);
	}
	app_charter_put(app, ac);
	return e;
}

allot_err api_charter_put(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	allot_err e = need_yaml(req, resp);
	if (e)
		return e;
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	char msg[256] = "";
	e = app_charter_apply(app, "charter.yaml", req->body, req->body_len, api_actor(req),
			      &errs, msg, sizeof msg);
	if (e == ALLOT_E_UNPROCESSABLE || (e == ALLOT_E_CONFLICT && errs.nerrors)) {
		api_error_lines(resp, e, msg, &errs);
		charter_errors_release(&errs);
		return e;
	}
	if (e) {
		charter_errors_release(&errs);
		return http_error(resp, e, "%s", msg[0] ? msg : "could not apply the charter");
	}
	struct active_charter *ac = app_charter_latest(app);
	struct active_charter *now = app_charter_get(app);
	json_t *j = row_json(&ac->row);
	json_object_set_new(j, "status", json_string(version_status(ac->row.version,
								    now ? now->row.version : 0)));
	app_charter_put(app, now);
	json_t *w = json_array();
	for (size_t i = 0; i < errs.nwarnings; i++)
		json_array_append_new(w, json_string(errs.warnings[i].text));
	json_object_set_new(j, "warnings", w);
	app_charter_put(app, ac);
	charter_errors_release(&errs);
	return http_json(resp, 200, j);
}

allot_err api_charter_validate(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	allot_err e = need_yaml(req, resp);
	if (e)
		return e;
	struct charter_errors errs = CHARTER_ERRORS_INIT;
	struct charter *c = NULL;
	/* A new version succeeds the newest applied one, scheduled or not. */
	struct active_charter *ac = app_charter_latest(app);
	e = charter_parse("charter.yaml", req->body, req->body_len, &c, &errs);
	if (e == ALLOT_OK)
		e = charter_check_successor(ac ? ac->c : NULL, c, &errs);
	if (e == ALLOT_E_NOMEM) {
		charter_free(c);
		app_charter_put(app, ac);
		charter_errors_release(&errs);
		return http_error(resp, e, "out of memory");
	}
	json_t *errors = json_array(), *warnings = json_array();
	for (size_t i = 0; i < errs.nerrors; i++)
		json_array_append_new(errors, json_string(errs.errors[i].text));
	for (size_t i = 0; i < errs.nwarnings; i++)
		json_array_append_new(warnings, json_string(errs.warnings[i].text));
	json_t *changes = c ? charter_diff(ac ? ac->c : NULL, c) : json_null();
	json_t *j = json_pack("{s:b,s:o,s:o,s:o}", "valid", errs.nerrors == 0, "errors", errors,
			      "warnings", warnings, "changes", changes ? changes : json_null());
	charter_free(c);
	app_charter_put(app, ac);
	charter_errors_release(&errs);
	return http_json(resp, 200, j);
}

struct history_page {
	json_t *rows;
	int64_t in_force;
};

/* store_charter_history's fn: one version as GET /v1/charter/history lists it. */
static void history_add(void *ctx, const struct charter_row *r)
{
	struct history_page *pg = ctx;
	char at[TIME_FMT_MAX], ef[TIME_FMT_MAX];
	json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "version", (json_int_t)r->version,
			      "sha256", r->sha256, "author", r->author, "applied_at",
			      time_format_rfc3339(r->applied_at, at), "effective",
			      time_format_rfc3339(r->effective, ef), "charter", r->charter_id,
			      "status", version_status(r->version, pg->in_force));
	json_array_append_new(pg->rows, j ? j : json_null());
}

allot_err api_charter_history(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct active_charter *now = app_charter_get(app);
	struct history_page pg = {.rows = json_array(), .in_force = now ? now->row.version : 0};
	app_charter_put(app, now);
	if (!pg.rows)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	allot_err e = store_charter_history(app->store, history_add, &pg);
	if (e) {
		json_decref(pg.rows);
		return http_error(resp, e, "could not read the charter history");
	}
	return http_json(resp, 200, json_pack("{s:o}", "charters", pg.rows));
}
