/* gate.c — the OpenAI-compatible gate's handlers: GET /v1/models[/{id}],
 * POST /v1/completions, POST /v1/chat/completions (stream or not),
 * GET /v1/quotas/me, and the helpers the gate's API modules share
 * (api/gate_int.h).  Bodies are checked by api/oai.c, run on the bundled
 * engine by api/gen.c or forwarded by api/proxy.c; admission and
 * settlement are in gate/gate.c. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api/gate_int.h"
#include "api/gen.h"
#include "api/logprobs.h"
#include "api/oai.h"
#include "api/proxy.h"
#include "common/json.h"
#include "common/money.h"
#include "common/timeutil.h"
#include "gate/gate.h"
#include "infer/engine.h"

/* ---- shared helpers (api/gate_int.h) ------------------------------------------ */

struct token_claims *gapi_claims(struct http_req *req)
{
	/* The principal of a member carries its claims right after it. */
	return (struct token_claims *)(req->who + 1);
}

void gapi_remaining_header(struct http_resp *resp, int64_t remaining, const char *level)
{
	char b[MONEY_FMT_MAX];
	http_add_header(resp, "X-Allot-Remaining", money_format(remaining > 0 ? remaining : 0, b));
	http_add_header(resp, "X-Allot-Remaining-Level", level);
}

/* The member's remaining now, for answers that reserved nothing. */
static void member_remaining_header(struct http_req *req, struct http_resp *resp)
{
	char lvl[16];
	int64_t rem = gate_remaining(api_app(req)->gate, gapi_claims(req), lvl);
	gapi_remaining_header(resp, rem, lvl);
}

void gapi_refusal_headers(struct http_resp *resp, allot_err e, int retry_after_s)
{
	if (e == ALLOT_E_RATE) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
		http_add_header(resp, "Retry-After", ra);
	}
}

allot_err gapi_with_remaining(struct http_req *req, struct http_resp *resp, allot_err e)
{
	for (size_t i = 0; i < resp->nheaders; i++)
		if (strcmp(resp->headers[i].name, "X-Allot-Remaining") == 0)
			return e;
	member_remaining_header(req, resp);
	return e;
}

void gapi_set_model(json_t *reply, const char *model)
{
	if (json_is_object(reply) && json_object_get(reply, "model"))
		json_object_set_new(reply, "model", json_string(model));
}

allot_err gapi_resolve(struct http_req *req, const char *model, bool *remote,
		       struct infer_engine **eng, struct oai_err *er)
{
	struct app *app = api_app(req);
	struct active_charter *ac = app_charter_get(app);
	const struct charter_model *cm = ac ? charter_model(ac->c, model) : NULL;
	bool allowed = cm && gate_model_allowed(ac->c, gapi_claims(req), model);
	*remote = allowed && cm->url;
	app_charter_put(app, ac);
	if (!allowed)
		return oai_fail(er, ALLOT_E_NOT_FOUND, "model_not_found", "model",
				"The model `%.64s` does not exist or this token may not use it", model);
	if (*remote)
		return ALLOT_OK;
	if (!(*eng = gate_engine(app->gate, model)))
		return oai_fail(er, ALLOT_E_UNAVAILABLE, NULL, "model",
				"model \"%.64s\" is not loaded on this gate", model);
	return ALLOT_OK;
}

/* ---- chat and completions answers ---------------------------------------------- */

static json_t *usage_json(int p, int c)
{
	return json_pack("{s:i,s:i,s:i}", "prompt_tokens", p, "completion_tokens", c,
			 "total_tokens", p + c);
}

static json_t *chunk_json(const struct gen_run *g, json_t *choice)
{
	bool chat = g->kind == OAI_CHAT;
	return json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", g->id, "object",
			 chat ? "chat.completion.chunk" : "text_completion", "created",
			 (json_int_t)g->created, "model", g->model, "choices", choice);
}

/* A choice's "logprobs": null unless the request asked for them. */
static json_t *logprobs_json(const struct gen_run *g, struct gen_seq *q,
			     const struct infer_logprob *lp, size_t n)
{
	if (!g->logprobs)
		return json_null();
	return g->kind == OAI_CHAT ? lp_chat(g->eng, lp, n)
				   : lp_completion(g->eng, lp, n, &q->text_offset);
}

static json_t *choice_json(const struct gen_run *g, const struct gen_seq *q, const char *text,
			   size_t len, json_t *logprobs, const char *finish)
{
	if (g->kind == OAI_CHAT) {
		json_t *delta = json_object();
		if (q->first)
			json_object_set_new(delta, "role", json_string("assistant"));
		if (text)
			json_object_set_new(delta, "content", json_stringn(text, len));
		return json_pack("{s:i,s:o,s:o,s:o}", "index", q->index, "delta", delta, "logprobs",
				 logprobs, "finish_reason", finish ? json_string(finish) : json_null());
	}
	return json_pack("{s:i,s:s%,s:o,s:o}", "index", q->index, "text", text ? text : "",
			 text ? len : 0, "logprobs", logprobs, "finish_reason",
			 finish ? json_string(finish) : json_null());
}

static void fmt_delta(struct gen_run *g, struct gen_seq *q, const char *text, size_t len,
		      const struct infer_logprob *lp, size_t n_lp, struct buf *out)
{
	sse_append(out, NULL, chunk_json(g, choice_json(g, q, text, len,
							logprobs_json(g, q, lp, n_lp), NULL)));
}

static void fmt_end(struct gen_run *g, struct buf *out)
{
	for (size_t i = 0; i < g->nseq; i++) {
		struct gen_seq *q = &g->seq[i];
		if (q->err)
			sse_append(out, NULL, http_error_json(ALLOT_E_INTERNAL, NULL, NULL,
							      "generation failed"));
		else
			sse_append(out, NULL, chunk_json(g, choice_json(g, q, NULL, 0, json_null(),
									gen_finish(q))));
	}
	/* usage only when asked (OpenAI's include_usage shape: empty
	 * choices); the metering never depends on it */
	if (g->include_usage)
		sse_append(out, NULL, json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", g->id, "object",
						g->kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion",
						"created", (json_int_t)g->created, "model", g->model,
						"choices", "usage",
						usage_json(g->prompt_tokens, g->completion_tokens)));
	buf_puts(out, "data: [DONE]\n\n");
}

static const struct gen_format chat_format = {.delta = fmt_delta, .end = fmt_end};

static allot_err answer_sync(struct http_resp *resp, struct gen_run *g, struct oai_err *er)
{
	bool chat = g->kind == OAI_CHAT;
	json_t *choices = json_array();
	for (size_t i = 0; i < g->nseq; i++) {
		struct gen_seq *q = &g->seq[i];
		if (q->err) {
			json_decref(choices);
			return oai_fail(er, q->err == ALLOT_E_NOMEM ? q->err : ALLOT_E_INTERNAL, NULL,
					NULL, "generation failed");
		}
		size_t nlp;
		const struct infer_logprob *lp = gen_logprobs(q, &nlp);
		json_t *lpj = logprobs_json(g, q, lp, nlp);
		json_array_append_new(choices, chat
			? json_pack("{s:i,s:{s:s,s:s%,s:n},s:o,s:s}", "index", q->index, "message",
				    "role", "assistant", "content", q->res.text, q->res.text_len,
				    "refusal", "logprobs", lpj, "finish_reason", gen_finish(q))
			: json_pack("{s:i,s:s%,s:o,s:s}", "index", q->index, "text", q->res.text,
				    q->res.text_len, "logprobs", lpj, "finish_reason", gen_finish(q)));
	}
	gapi_remaining_header(resp, g->remaining, g->level);
	return http_json(resp, 200, json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", g->id, "object",
					      chat ? "chat.completion" : "text_completion", "created",
					      (json_int_t)g->created, "model", g->model, "choices",
					      choices, "usage",
					      usage_json(g->prompt_tokens, g->completion_tokens)));
}

/* The connection's socket, to notice a client that hangs up. */
static int client_fd(struct http_req *req)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

allot_err gapi_run_local(struct http_req *req, struct http_resp *resp, struct infer_engine *eng,
			 struct oai_req *r, const struct gen_format *fmt,
			 allot_err (*answer)(struct http_resp *, struct gen_run *, struct oai_err *),
			 struct oai_err *er)
{
	allot_err e;
	struct gen_run *g = NULL;
	int retry = 0;
	if ((e = oai_engine_features(eng, r, er)) || (e = oai_tokenize(eng, r, er)))
		return e;
	if ((e = gen_admit(api_app(req), gapi_claims(req), r, &g, &retry, er))) {
		gapi_refusal_headers(resp, e, retry);
		return e;
	}
	if (fmt->state_new) {
		g->fmt_free = fmt->state_free;
		if (!(g->fmt_state = fmt->state_new(r))) {
			gen_cancel(g);
			return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
		}
	}
	if (r->stream) {
		/* the stream owns g from here: what the header needs first */
		int64_t rem = g->remaining;
		char level[sizeof g->level];
		memcpy(level, g->level, sizeof level);
		if ((e = gen_run_stream(eng, r, g, fmt, resp, er)))
			return e;
		gapi_remaining_header(resp, rem, level);
		return ALLOT_OK;
	}
	/* A client that hangs up stops generation here too: each piece of text
	 * checks the connection (one poll(2), no wait). */
	gen_run_sync(eng, r, g, client_fd(req));
	e = answer(resp, g, er);
	gen_free(g);
	return e;
}

allot_err gapi_handle(struct http_req *req, struct http_resp *resp, const struct gapi_handler *h,
		      void *arg)
{
	json_t *body = NULL;
	struct oai_req *r = calloc(1, sizeof *r);
	struct oai_err er = {0};
	bool remote = false;
	struct infer_engine *eng = NULL;
	allot_err e = http_body_json(req, resp, &body);
	if (e || !r) {
		free(r);
		json_decref(body);
		return gapi_with_remaining(req, resp, e ? e : http_error(resp, ALLOT_E_NOMEM,
									  "out of memory"));
	}
	if (!(e = h->parse(body, r, arg, &er)) && !(e = gapi_resolve(req, r->model, &remote, &eng, &er)))
		e = remote ? h->remote(req, resp, body, r, arg, &er)
			   : h->local(req, resp, eng, r, arg, &er);
	if (e)
		oai_respond(resp, &er);
	oai_req_release(r);
	free(r);
	json_decref(body);
	return gapi_with_remaining(req, resp, e);
}

/* arg: the enum oai_kind of the route. */
static allot_err generate_parse(const json_t *body, struct oai_req *r, void *arg,
				struct oai_err *er)
{
	return oai_parse(body, *(const enum oai_kind *)arg, r, er);
}

static allot_err generate_remote(struct http_req *req, struct http_resp *resp, const json_t *body,
				 struct oai_req *r, void *arg, struct oai_err *er)
{
	(void)arg;
	return proxy_forward(req, resp, body, r, r->kind == OAI_CHAT ? "/chat/completions"
								      : "/completions", er);
}

static allot_err generate_local(struct http_req *req, struct http_resp *resp,
				struct infer_engine *eng, struct oai_req *r, void *arg,
				struct oai_err *er)
{
	(void)arg;
	return gapi_run_local(req, resp, eng, r, &chat_format, answer_sync, er);
}

static const struct gapi_handler generate = {
	.parse = generate_parse, .remote = generate_remote, .local = generate_local};

allot_err api_completions(struct http_req *req, struct http_resp *resp)
{
	enum oai_kind kind = OAI_COMPLETIONS;
	return gapi_handle(req, resp, &generate, &kind);
}

allot_err api_chat_completions(struct http_req *req, struct http_resp *resp)
{
	enum oai_kind kind = OAI_CHAT;
	return gapi_handle(req, resp, &generate, &kind);
}

/* ---- models and quotas ------------------------------------------------------------ */

/* A model as OpenAI lists it, with its state on this gate ("ready",
 * "loading" or "failed" for a bundled model; docs/GATE.md). */
static json_t *model_json(struct gate *g, const struct charter *c, const struct charter_model *m)
{
	return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", m->id, "object", "model", "created",
			 (json_int_t)(c->effective_us / US_PER_SEC), "owned_by", m->provider_id,
			 "status", m->file ? gate_model_status(g, m->id) : "ready");
}

allot_err api_models(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct token_claims *cl = gapi_claims(req);
	struct active_charter *ac = app_charter_get(app);
	json_t *data = json_array();
	for (size_t i = 0; ac && i < ac->c->nmodels; i++) {
		const struct charter_model *m = &ac->c->models[i];
		if (gate_model_allowed(ac->c, cl, m->id))
			json_array_append_new(data, model_json(app->gate, ac->c, m));
	}
	app_charter_put(app, ac);
	member_remaining_header(req, resp);
	return http_json(resp, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

allot_err api_model_get(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	const char *id = req->params[0];
	struct active_charter *ac = app_charter_get(app);
	const struct charter_model *m = ac ? charter_model(ac->c, id) : NULL;
	json_t *j = m && gate_model_allowed(ac->c, gapi_claims(req), id)
			    ? model_json(app->gate, ac->c, m)
			    : NULL;
	app_charter_put(app, ac);
	member_remaining_header(req, resp);
	if (!j)
		return http_error_ex(resp, ALLOT_E_NOT_FOUND, "model_not_found", "model",
				     "The model `%.64s` does not exist or this token may not use it", id);
	return http_json(resp, 200, j);
}

allot_err api_quotas_me(struct http_req *req, struct http_resp *resp)
{
	struct app *app = api_app(req);
	struct token_claims *cl = gapi_claims(req);
	struct active_charter *ac = app_charter_get(app);
	if (!ac)
		return http_error(resp, ALLOT_E_UNAVAILABLE, "no charter has been applied");
	allot_err e;
	json_t *j = api_quota_view(app, ac->c, cl->inst, cl->proj, cl->sub, time_now_us(), &e);
	app_charter_put(app, ac);
	if (!j)
		return http_error(resp, e == ALLOT_E_NOT_FOUND ? ALLOT_E_FORBIDDEN : e,
				  "this token's member is not in the active charter");
	json_t *tok = json_pack("{s:s}", "jti", cl->jti);
	if (cl->has_max_credits) {
		int64_t spent = 0;
		char b[MONEY_FMT_MAX];
		if ((e = gate_token_spent(app->gate, cl->jti, &spent))) {
			json_decref(tok);
			json_decref(j);
			return http_error(resp, e, "could not read the token's spending");
		}
		json_object_set_new(tok, "max_credits", json_string(money_format(cl->max_credits, b)));
		json_object_set_new(tok, "spent", json_string(money_format(spent, b)));
	}
	json_object_set_new(j, "token", tok);
	member_remaining_header(req, resp);
	return http_json(resp, 200, j);
}
