/* system.c — liveness, readiness, metrics and the webhook signing key. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "common/metrics.h"
#include "common/timeutil.h"
#include "daemon/webhooks.h"
#include "gate/engines.h"
#include "gate/gate.h"
#include "gate/settleq.h"
#include "ledger/ledgerlog.h"

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
	bool models_ok = true;
	json_t *states = NULL;
	if (app->gate) {
		gate_engine_state(app->gate, models, sizeof models);
		settleq_stats(gate_settleq(app->gate), &sq);
		models_ok = engines_all_ready(gate_engines(app->gate));
		states = engines_json(gate_engines(app->gate));
	}
	/* Settlements waiting in the retry queue: served, not yet booked (the
	 * store is failing); not ready until they are.  Nor while a bundled
	 * model of the charter in force is loading or failed to load. */
	bool ready = store_ok && ac && sq.queued == 0 && models_ok;
	json_t *j = json_pack("{s:s,s:b,s:o,s:s,s:I}", "status", ready ? "ready" : "not_ready",
			      "store", store_ok,
			      "charter", ac ? json_integer(ac->row.version) : json_null(),
			      "models", models, "settlements_queued", (json_int_t)sq.queued);
	if (j && states)
		json_object_set_new(j, "model_states", states);
	else
		json_decref(states);
	if (j && !models_ok)
		json_object_set_new(j, "reason", json_string("a bundled model of the charter in "
							     "force is not loaded (model_states)"));
	if (j && sq.queued)
		json_object_set_new(j, "reason",
				    json_sprintf("%llu settlement%s could not be booked yet and "
						 "wait in the retry queue",
						 (unsigned long long)sq.queued,
						 sq.queued == 1 ? "" : "s"));
	app_charter_put(app, ac);
	return http_json(resp, ready ? 200 : 503, j);
}

/* The transparency log: its size and its latest signed checkpoint's. */
static void metrics_tlog(struct app *app, struct buf *out)
{
	uint64_t size = 0, cp_size = 0;
	int64_t signed_at = 0;
	uint8_t root[32];
	if (!app->store || store_tlog_head(app->store, &size, root) != ALLOT_OK)
		return;
	if (app->log)
		ledgerlog_signed(app->log, &cp_size, &signed_at);
	buf_printf(out, "# HELP allot_tlog_leaves Leaves in the transparency log.\n"
			"# TYPE allot_tlog_leaves gauge\n"
			"allot_tlog_leaves %llu\n"
			"# HELP allot_tlog_checkpoint_leaves Leaves covered by the latest signed "
			"checkpoint.\n"
			"# TYPE allot_tlog_checkpoint_leaves gauge\n"
			"allot_tlog_checkpoint_leaves %llu\n",
		   (unsigned long long)size, (unsigned long long)cp_size);
	if (signed_at) {
		int64_t age = time_now_us() - signed_at;
		buf_printf(out, "# HELP allot_tlog_checkpoint_age_seconds Time since the latest "
				"checkpoint was signed (absent: none signed since start).\n"
				"# TYPE allot_tlog_checkpoint_age_seconds gauge\n"
				"allot_tlog_checkpoint_age_seconds %lld.%06lld\n",
			   (long long)(age > 0 ? age : 0) / 1000000,
			   (long long)(age > 0 ? age : 0) % 1000000);
	}
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
		struct glease_stats ls;
		if (gate_leases(app->gate)) {
			glease_stats(gate_leases(app->gate), &ls);
			buf_printf(&resp->body,
				   "# HELP allot_gate_leases_held Leases of busy levels this node "
				   "holds now (PostgreSQL).\n"
				   "# TYPE allot_gate_leases_held gauge\n"
				   "allot_gate_leases_held %llu\n"
				   "# HELP allot_gate_admission_paths_total Admissions by where they "
				   "were decided: from this node's leases (no database round trip) "
				   "or in the database (one round trip).\n"
				   "# TYPE allot_gate_admission_paths_total counter\n"
				   "allot_gate_admission_paths_total{path=\"lease\"} %llu\n"
				   "allot_gate_admission_paths_total{path=\"database\"} %llu\n",
				   (unsigned long long)ls.held, (unsigned long long)ls.admitted,
				   (unsigned long long)ls.db);
		}
	}
	metrics_render(&resp->body);
	metrics_tlog(app, &resp->body);
	resp->content_type = "text/plain; version=0.0.4";
	return ALLOT_OK;
}

/* GET /v1/webhooks/key: the public key that signs webhook messages
 * (docs/WEBHOOKS.md), as allot writes keys and as Standard Webhooks does. */
allot_err api_webhooks_key(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	if (!app->webhooks)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "webhooks are not running");
	const char *pub = webhooks_pub(app->webhooks);
	char whpk[ED25519_PUB_TEXT_MAX + 8];
	snprintf(whpk, sizeof whpk, "whpk_%s", pub + strlen("ed25519:"));
	return http_json(resp, 200, json_pack("{s:s,s:s,s:s,s:s}", "key", pub, "algorithm",
					      "ed25519", "signature_version", "v1a",
					      "standard_webhooks_key", whpk));
}
