/* tokenize.c — POST /v1/tokenize and POST /v1/detokenize: a bundled
 * model's tokenizer, for members (nothing is admitted or charged). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gate_int.h"
#include "api/oai.h"
#include "common/json.h"
#include "gate/gate.h"
#include "infer/engine.h"

static allot_err tok_engine(struct http_req *req, struct http_resp *resp, json_t *body,
			    struct infer_engine **eng)
{
	struct app *app = api_app(req);
	const char *model = NULL;
	char msg[256];
	allot_err e = json_get_str(body, "model", true, &model, msg, sizeof msg);
	if (e)
		return http_error(resp, e, "%s", msg);
	struct active_charter *ac = app_charter_get(app);
	bool ok = ac && gate_model_allowed(ac->c, gapi_claims(req), model);
	app_charter_put(app, ac);
	if (!ok || !(*eng = gate_engine(app->gate, model)))
		return http_error(resp, ALLOT_E_NOT_FOUND, "model \"%.64s\" is not available here", model);
	return ALLOT_OK;
}

static allot_err tokenize(struct http_req *req, struct http_resp *resp)
{
	static const char *const f[] = {"model", "text", "add_bos", NULL};
	json_t *body = NULL;
	char msg[256];
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	struct infer_engine *eng = NULL;
	const char *text = NULL;
	bool bos = true;
	if ((e = json_only_fields(body, f, msg, sizeof msg)) ||
	    (e = json_get_str(body, "text", true, &text, msg, sizeof msg)) ||
	    (e = json_get_bool(body, "add_bos", false, &bos, msg, sizeof msg))) {
		json_decref(body);
		return http_error(resp, e, "%s", msg);
	}
	if (json_string_length(json_object_get(body, "text")) > OAI_MAX_PROMPT_BYTES) {
		json_decref(body);
		return http_error(resp, ALLOT_E_TOO_LARGE, "text longer than %d bytes", OAI_MAX_PROMPT_BYTES);
	}
	if ((e = tok_engine(req, resp, body, &eng))) {
		json_decref(body);
		return e;
	}
	int32_t *ids = NULL;
	size_t n = 0;
	e = infer_tokenize(eng, text, json_string_length(json_object_get(body, "text")), bos, false, &ids, &n);
	json_decref(body);
	if (e)
		return http_error(resp, e, "could not tokenize");
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_integer(ids[i]));
	free(ids);
	return http_json(resp, 200, json_pack("{s:o,s:I}", "tokens", arr, "count", (json_int_t)n));
}

static allot_err detokenize(struct http_req *req, struct http_resp *resp)
{
	static const char *const f[] = {"model", "tokens", NULL};
	json_t *body = NULL;
	char msg[256];
	allot_err e = http_body_json(req, resp, &body);
	if (e)
		return e;
	struct infer_engine *eng = NULL;
	json_t *toks = json_object_get(body, "tokens");
	if ((e = json_only_fields(body, f, msg, sizeof msg)) || !json_is_array(toks) ||
	    json_array_size(toks) > 1000000) {
		json_decref(body);
		return http_error(resp, ALLOT_E_INVALID, "%s", e ? msg : "\"tokens\" must be an array of token ids");
	}
	if ((e = tok_engine(req, resp, body, &eng))) {
		json_decref(body);
		return e;
	}
	size_t n = json_array_size(toks);
	int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
	for (size_t i = 0; ids && i < n; i++) {
		json_t *v = json_array_get(toks, i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
			free(ids);
			json_decref(body);
			return http_error(resp, ALLOT_E_INVALID, "tokens[%zu] is not a token id", i);
		}
		ids[i] = (int32_t)json_integer_value(v);
	}
	json_decref(body);
	if (!ids)
		return http_error(resp, ALLOT_E_NOMEM, "out of memory");
	char *text = NULL;
	size_t len = 0;
	e = infer_detokenize(eng, ids, n, &text, &len);
	free(ids);
	if (e)
		return http_error(resp, e, "a token id is out of range for this model");
	json_t *j = json_pack("{s:s%}", "text", text, len);
	free(text);
	return http_json(resp, 200, j);
}

allot_err api_tokenize(struct http_req *req, struct http_resp *resp)
{
	return gapi_with_remaining(req, resp, tokenize(req, resp));
}

allot_err api_detokenize(struct http_req *req, struct http_resp *resp)
{
	return gapi_with_remaining(req, resp, detokenize(req, resp));
}
