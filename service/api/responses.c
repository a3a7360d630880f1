/* responses.c — POST /v1/responses, OpenAI's Responses API, on the
 * bundled engine: text input (a string or message items), instructions,
 * max_output_tokens, temperature and top_p, streamed or not, metered
 * exactly like a chat completion (it is one: api/gen.c).  Nothing is
 * stored: a response cannot be retrieved or continued later, so
 * previous_response_id is refused and "store" is answered false
 * (docs/GATE.md, "POST /v1/responses"). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gate_int.h"
#include "api/gen.h"
#include "api/oai.h"
#include "common/json.h"

/* ---- the request ---------------------------------------------------------------- */

static allot_err input_items(const json_t *in, struct oai_req *r, struct oai_err *er)
{
	size_t n = json_array_size(in);
	if (n == 0 || n > OAI_MAX_MESSAGES)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
				"\"input\" must be a string or an array of 1..%d items", OAI_MAX_MESSAGES);
	for (size_t i = 0; i < n; i++) {
		static const char *const f[] = {"type", "role", "content", "id", "status", NULL};
		json_t *it = json_array_get(in, i);
		const char *type = json_string_value(json_object_get(it, "type"));
		const char *role = json_string_value(json_object_get(it, "role"));
		char p[64];
		allot_err e;
		snprintf(p, sizeof p, "input[%zu]", i);
		if (!json_is_object(it))
			return oai_fail(er, ALLOT_E_INVALID, NULL, p, "%s must be an object", p);
		if (type && strcmp(type, "message"))
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", p,
					"%s: items of type \"%.32s\" are not supported (messages only)", p, type);
		if ((e = oai_only_fields(it, f, p, er)))
			return e;
		if (role && strcmp(role, "developer") == 0)
			role = "system";
		if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")))
			return oai_fail(er, ALLOT_E_INVALID, NULL, p,
					"%s: role must be system, developer, user or assistant", p);
		snprintf(p, sizeof p, "input[%zu].content", i);
		if ((e = oai_add_content(r, role, json_object_get(it, "content"), p, er)))
			return e;
	}
	return ALLOT_OK;
}

/* A field that may only hold a no-op value: null, false, "", [] or {}. */
static bool noop(const json_t *v)
{
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && json_string_length(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0);
}

static allot_err parse_request(const json_t *b, struct oai_req *r, struct oai_err *er)
{
	static const char *const f[] = {"model", "input", "instructions", "max_output_tokens",
		"temperature", "top_p", "top_k", "min_p", "seed", "stream", "store", "metadata",
		"user", "service_tier", "text", "tools", "tool_choice", "parallel_tool_calls",
		"previous_response_id", "reasoning", "truncation", "include", "background",
		"prompt_cache_key", "safety_identifier", NULL};
	static const char *const unsupported[] = {"previous_response_id", "reasoning", "include",
		"background", NULL};
	allot_err e;
	char msg[256];
	int64_t mt = -1;
	const char *instr = NULL, *trunc = NULL;
	oai_req_init(r, OAI_RESPONSES);
	if ((e = oai_only_fields(b, f, "", er)))
		return e;
	for (size_t i = 0; unsupported[i]; i++)
		if (!noop(json_object_get(b, unsupported[i])))
			return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", unsupported[i],
					"\"%s\" is not supported by this gate", unsupported[i]);
	if ((e = json_get_str(b, "model", true, &r->model, msg, sizeof msg)) ||
	    (e = json_get_int(b, "max_output_tokens", false, 1, 1 << 20, &mt, msg, sizeof msg)) ||
	    (e = json_get_str(b, "instructions", false, &instr, msg, sizeof msg)) ||
	    (e = json_get_str(b, "truncation", false, &trunc, msg, sizeof msg)))
		return oai_fail(er, e, NULL, NULL, "%s", msg);
	r->max_tokens = mt < 0 ? 0 : (int)mt;
	json_t *text = json_object_get(b, "text");
	if (text && !json_is_null(text) && !json_is_object(text))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "text", "\"text\" must be an object");
	if ((e = oai_parse_sampling(b, r, er)) || (e = oai_parse_tools(b, r, er)))
		return e;
	if (instr && (e = oai_add_message(r, "system", instr, strlen(instr), "instructions", er)))
		return e;
	json_t *in = json_object_get(b, "input");
	if (json_is_string(in))
		return oai_add_message(r, "user", json_string_value(in), json_string_length(in),
				       "input", er);
	if (!json_is_array(in))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
				"\"input\" must be a string or an array of message items");
	return input_items(in, r, er);
}

/* ---- the answer ------------------------------------------------------------------- */

struct rstate {
	struct buf text;         /* the output so far */
	int seq;                 /* sequence_number of the next event */
	double temperature, top_p;
	int max_output_tokens;
};

static void rstate_free(void *p)
{
	struct rstate *st = p;
	if (st)
		buf_release(&st->text);
	free(st);
}

static json_t *message_json(const struct gen_run *g, const char *status, const char *text,
			    size_t len)
{
	char id[80];
	snprintf(id, sizeof id, "msg_%s", g->id);
	json_t *content = json_array();
	if (text)
		json_array_append_new(content, json_pack("{s:s,s:s%,s:[],s:[]}", "type", "output_text",
							 "text", text, len, "annotations", "logprobs"));
	return json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", "message", "id", id, "status", status,
			 "role", "assistant", "content", content);
}

/* The response object; q NULL: in progress (no output, no usage). */
static json_t *response_json(const struct gen_run *g, const struct rstate *st,
			     const struct gen_seq *q, const char *text, size_t len)
{
	bool done = q != NULL, cut = done && strcmp(gen_finish(q), "length") == 0;
	const char *status = !done ? "in_progress" : cut ? "incomplete" : "completed";
	json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:n,s:n,s:n,s:f,s:f,s:s,s:[],s:b,s:b,s:{s:{s:s}},s:s,s:{}}",
			      "id", g->id, "object", "response", "created_at", (json_int_t)g->created,
			      "status", status, "model", g->model, "error", "instructions",
			      "previous_response_id", "temperature", st->temperature, "top_p", st->top_p,
			      "tool_choice", "none", "tools", "parallel_tool_calls", 0, "store", 0,
			      "text", "format", "type", "text", "truncation", "disabled", "metadata");
	json_object_set_new(j, "max_output_tokens", st->max_output_tokens > 0
			    ? json_integer(st->max_output_tokens) : json_null());
	json_object_set_new(j, "incomplete_details", cut ? json_pack("{s:s}", "reason", "max_output_tokens")
							 : json_null());
	json_t *out = json_array();
	if (done)
		json_array_append_new(out, message_json(g, cut ? "incomplete" : "completed", text, len));
	json_object_set_new(j, "output", out);
	if (done)
		json_object_set_new(j, "usage", json_pack("{s:i,s:{s:i},s:i,s:{s:i},s:i}", "input_tokens",
			g->prompt_tokens, "input_tokens_details", "cached_tokens", 0, "output_tokens",
			g->completion_tokens, "output_tokens_details", "reasoning_tokens", 0,
			"total_tokens", g->prompt_tokens + g->completion_tokens));
	else
		json_object_set_new(j, "usage", json_null());
	return j;
}

static void event(struct gen_run *g, struct buf *out, const char *type, json_t *j)
{
	struct rstate *st = g->fmt_state;
	json_object_set_new(j, "type", json_string(type));
	json_object_set_new(j, "sequence_number", json_integer(st->seq++));
	sse_append(out, type, j);
}

static void ev_start(struct gen_run *g, struct buf *out)
{
	struct rstate *st = g->fmt_state;
	char id[80];
	snprintf(id, sizeof id, "msg_%s", g->id);
	event(g, out, "response.created", json_pack("{s:o}", "response", response_json(g, st, NULL, NULL, 0)));
	event(g, out, "response.in_progress", json_pack("{s:o}", "response", response_json(g, st, NULL, NULL, 0)));
	event(g, out, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", 0, "item",
							       message_json(g, "in_progress", NULL, 0)));
	event(g, out, "response.content_part.added",
	      json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[],s:[]}}", "item_id", id, "output_index", 0,
			"content_index", 0, "part", "type", "output_text", "text", "", "annotations",
			"logprobs"));
}

static void ev_delta(struct gen_run *g, struct gen_seq *q, const char *text, size_t len,
		     const struct infer_logprob *lp, size_t n_lp, struct buf *out)
{
	struct rstate *st = g->fmt_state;
	char id[80];
	(void)q, (void)lp, (void)n_lp;
	if (!len)
		return;
	snprintf(id, sizeof id, "msg_%s", g->id);
	buf_append(&st->text, text, len);
	event(g, out, "response.output_text.delta",
	      json_pack("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", id, "output_index", 0, "content_index",
			0, "delta", text, len, "logprobs"));
}

static void ev_end(struct gen_run *g, struct buf *out)
{
	struct rstate *st = g->fmt_state;
	struct gen_seq *q = &g->seq[0];
	const char *t = st->text.data ? st->text.data : "";
	size_t n = st->text.len;
	char id[80];
	snprintf(id, sizeof id, "msg_%s", g->id);
	if (q->err) {
		json_t *r = response_json(g, st, NULL, NULL, 0);
		json_object_set_new(r, "status", json_string("failed"));
		json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code", "server_error", "message",
							  "generation failed"));
		event(g, out, "response.failed", json_pack("{s:o}", "response", r));
		return;
	}
	const char *st_item = strcmp(gen_finish(q), "length") == 0 ? "incomplete" : "completed";
	event(g, out, "response.output_text.done", json_pack("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", id,
		"output_index", 0, "content_index", 0, "text", t, n, "logprobs"));
	event(g, out, "response.content_part.done", json_pack("{s:s,s:i,s:i,s:{s:s,s:s%,s:[],s:[]}}",
		"item_id", id, "output_index", 0, "content_index", 0, "part", "type", "output_text",
		"text", t, n, "annotations", "logprobs"));
	event(g, out, "response.output_item.done", json_pack("{s:i,s:o}", "output_index", 0, "item",
		message_json(g, st_item, t, n)));
	event(g, out, "response.completed", json_pack("{s:o}", "response", response_json(g, st, q, t, n)));
}

static void *rstate_new(const struct oai_req *r)
{
	struct rstate *st = calloc(1, sizeof *st);
	if (st) {
		st->temperature = r->temperature;
		st->top_p = r->top_p;
		st->max_output_tokens = r->max_tokens;
	}
	return st;
}

static const struct gen_format responses_format = {
	.state_new = rstate_new, .state_free = rstate_free,
	.start = ev_start, .delta = ev_delta, .end = ev_end};

static allot_err answer_sync(struct http_resp *resp, struct gen_run *g, struct oai_err *er)
{
	struct gen_seq *q = &g->seq[0];
	if (q->err)
		return oai_fail(er, ALLOT_E_INTERNAL, NULL, NULL, "generation failed");
	gapi_remaining_header(resp, g->remaining, g->level);
	return http_json(resp, 200, response_json(g, g->fmt_state, q, q->res.text, q->res.text_len));
}

static allot_err responses_parse(const json_t *body, struct oai_req *r, void *arg,
				 struct oai_err *er)
{
	(void)arg;
	return parse_request(body, r, er);
}

static allot_err responses_remote(struct http_req *req, struct http_resp *resp,
				  const json_t *body, struct oai_req *r, void *arg,
				  struct oai_err *er)
{
	(void)req, (void)resp, (void)body, (void)arg;
	return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "model",
			"/v1/responses serves the gate's bundled models; use "
			"/v1/chat/completions for \"%.64s\"", r->model);
}

static allot_err responses_local(struct http_req *req, struct http_resp *resp,
				 struct infer_engine *eng, struct oai_req *r, void *arg,
				 struct oai_err *er)
{
	(void)arg;
	return gapi_run_local(req, resp, eng, r, &responses_format, answer_sync, er);
}

static const struct gapi_handler responses = {
	.parse = responses_parse, .remote = responses_remote, .local = responses_local};

allot_err api_responses(struct http_req *req, struct http_resp *resp)
{
	return gapi_handle(req, resp, &responses, NULL);
}
