/* system.c — liveness, readiness and metrics. */
#include "api/api.h"

#include "common/timeutil.h"
#include "gate/gate.h"
#include "gate/settleq.h"

allot_err api_healthz(struct http_req *req, struct http_resp *resp)
{
	(void)req;
	return http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

allot_err api_readyz(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	bool store_ok = app->store && store_schema_version(app->store) > 0;
	char models[512] = "no gate";
	struct settleq_stats sq = {0};
	if (app->gate) {
		gate_engine_state(app->gate, models, sizeof models);
		settleq_stats(gate_settleq(app->gate), &sq);
	}
	/* Settlements waiting in the retry queue: served, not yet booked (the
	 * store is failing); not ready until they are. */
	bool ready = store_ok && ac && sq.queued == 0;
	json_t *j = json_pack("{s:s,s:b,s:o,s:s,s:I}", "status", ready ? "ready" : "not_ready",
			      "store", store_ok,
			      "charter", ac ? json_integer(ac->row.version) : json_null(),
			      "models", models, "settlements_queued", (json_int_t)sq.queued);
	if (j && sq.queued)
		json_object_set_new(j, "reason",
				    json_sprintf("%llu settlement%s could not be booked yet and "
						 "wait in the retry queue",
						 (unsigned long long)sq.queued,
						 sq.queued == 1 ? "" : "s"));
	app_charter_put(app, ac);
	return http_json(resp, ready ? 200 : 503, j);
}

allot_err api_metrics(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	http_metrics_render(http_req_server(req), &resp->body);
	if (app->gate) {
		struct settleq_stats sq;
		settleq_stats(gate_settleq(app->gate), &sq);
		buf_printf(&resp->body,
			   "# HELP allot_settlements_queued Gate settlements served but not yet "
			   "booked, waiting in the retry queue.\n"
			   "# TYPE allot_settlements_queued gauge\n"
			   "allot_settlements_queued %llu\n"
			   "# HELP allot_settlements_queued_unstored Of them, those only in memory "
			   "(the retry queue table could not be written either).\n"
			   "# TYPE allot_settlements_queued_unstored gauge\n"
			   "allot_settlements_queued_unstored %llu\n"
			   "# HELP allot_settlement_failures_total Gate settlements whose booking "
			   "failed and that were queued for retry.\n"
			   "# TYPE allot_settlement_failures_total counter\n"
			   "allot_settlement_failures_total %llu\n"
			   "# HELP allot_settlement_retries_total Retry attempts of queued "
			   "settlements.\n"
			   "# TYPE allot_settlement_retries_total counter\n"
			   "allot_settlement_retries_total %llu\n"
			   "# HELP allot_settlement_retried_booked_total Queued settlements booked by "
			   "a retry.\n"
			   "# TYPE allot_settlement_retried_booked_total counter\n"
			   "allot_settlement_retried_booked_total %llu\n",
			   (unsigned long long)sq.queued, (unsigned long long)sq.unstored,
			   (unsigned long long)sq.failures, (unsigned long long)sq.attempts,
			   (unsigned long long)sq.booked);
	}
	resp->content_type = "text/plain; version=0.0.4";
	return ALLOT_OK;
}
