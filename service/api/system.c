/* system.c — liveness, readiness and metrics. */
#include "api/api.h"

#include "common/timeutil.h"
#include "gate/gate.h"

allot_err api_healthz(struct http_req *req, struct http_resp *resp)
{
	(void)req;
	return http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

allot_err api_readyz(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	bool store_ok = app->store && app->store->ops->schema_version(app->store) > 0;
	char models[512] = "no gate";
	if (app->gate)
		gate_engine_state(app->gate, models, sizeof models);
	json_t *j = json_pack("{s:s,s:b,s:o,s:s}", "status",
			      store_ok && ac ? "ready" : "not_ready", "store", store_ok,
			      "charter", ac ? json_integer(ac->row.version) : json_null(),
			      "models", models);
	int status = store_ok && ac ? 200 : 503;
	app_charter_put(app, ac);
	return http_json(resp, status, j);
}

allot_err api_metrics(struct http_req *req, struct http_resp *resp)
{
	http_metrics_render(http_req_server(req), &resp->body);
	resp->content_type = "text/plain; version=0.0.4";
	return ALLOT_OK;
}
