/* embeddings.c — POST /v1/embeddings: input as a string, an array of
 * strings, token ids or arrays of them; encoding_format float or base64.
 * Metered as tokens_in (every input's tokens) at the model's rate: the
 * reservation is those tokens and one output token, the settlement the
 * tokens alone.  Bundled models need the engine's infer_embed (issue 14,
 * the sampling work in infer/); until this build has it they are refused
 * as unsupported.  Models with `url:` are forwarded (api/proxy.c). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gate_int.h"
#include "api/oai.h"
#include "api/proxy.h"
#include "common/b64.h"
#include "common/json.h"
#include "gate/gate.h"
#include "infer/engine.h"

/* Inputs per request. */
#define EMBED_MAX_INPUTS 256

struct embed_req {
	const json_t *in[EMBED_MAX_INPUTS];  /* a string or an array of token ids */
	size_t n;
	bool base64;
};

static allot_err parse_input(const json_t *b, struct embed_req *q, struct oai_req *r,
			     struct oai_err *er)
{
	json_t *in = json_object_get(b, "input");
	size_t total = 0;
	bool one = json_is_string(in) || (json_is_array(in) && json_is_integer(json_array_get(in, 0)));
	q->n = one ? 1 : json_array_size(in);
	if ((!one && !json_is_array(in)) || q->n == 0 || q->n > EMBED_MAX_INPUTS)
		return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
				"\"input\" must be a string, token ids, or an array of 1..%d of them",
				EMBED_MAX_INPUTS);
	for (size_t i = 0; i < q->n; i++) {
		const json_t *x = one ? in : json_array_get(in, i);
		size_t k = json_is_string(x) ? json_string_length(x) : json_array_size(x);
		if (json_is_array(x))
			for (size_t j = 0; j < k; j++) {
				json_t *v = json_array_get(x, j);
				if (!json_is_integer(v) || json_integer_value(v) < 0 ||
				    json_integer_value(v) > INT32_MAX)
					k = 0;
			}
		if ((!json_is_string(x) && !json_is_array(x)) || k == 0)
			return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
					"input[%zu] must be a non-empty string or token ids", i);
		q->in[i] = x;
		total += k;
	}
	if (total > OAI_MAX_PROMPT_BYTES)
		return oai_fail(er, ALLOT_E_TOO_LARGE, NULL, "input", "input longer than %d bytes",
				OAI_MAX_PROMPT_BYTES);
	/* for the remote path: one "prompt" bounded by its bytes */
	r->prompt_len[0] = total + 8 * q->n;
	return ALLOT_OK;
}

static allot_err parse(const json_t *b, struct embed_req *q, struct oai_req *r, struct oai_err *er)
{
	static const char *const f[] = {"model", "input", "encoding_format", "dimensions", "user", NULL};
	allot_err e;
	char msg[256];
	const char *fmt = NULL, *user = NULL;
	oai_req_init(r, OAI_COMPLETIONS);
	if ((e = oai_only_fields(b, f, "", er)))
		return e;
	if ((e = json_get_str(b, "model", true, &r->model, msg, sizeof msg)))
		return oai_fail(er, e, NULL, "model", "%s", msg);
	if ((e = json_get_str(b, "encoding_format", false, &fmt, msg, sizeof msg)) ||
	    (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64")))
		return oai_fail(er, ALLOT_E_INVALID, NULL, "encoding_format",
				"encoding_format must be float or base64");
	if ((e = json_get_str(b, "user", false, &user, msg, sizeof msg)))
		return oai_fail(er, e, NULL, "user", "%s", msg);
	json_t *dim = json_object_get(b, "dimensions");
	if (dim && !json_is_null(dim))
		return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "dimensions",
				"dimensions is not supported: vectors have the model's width");
	q->base64 = fmt && strcmp(fmt, "base64") == 0;
	return parse_input(b, q, r, er);
}

#ifdef INFER_MAX_N /* the engine has infer_embed (infer/engine.h, issue 14) */

static json_t *vector_json(const float *v, int dim, bool base64)
{
	if (base64) {
		/* little-endian float32, as OpenAI's base64 encoding */
		size_t n = (size_t)dim * sizeof(float);
		char *s = malloc(b64_encoded_len(n) + 1);
		unsigned char *raw = malloc(n);
		json_t *j = NULL;
		if (s && raw) {
			for (int i = 0; i < dim; i++) {
				uint32_t u;
				memcpy(&u, &v[i], 4);
				for (int k = 0; k < 4; k++)
					raw[i * 4 + k] = (unsigned char)(u >> (8 * k));
			}
			b64_encode(raw, n, s);
			j = json_string(s);
		}
		free(s);
		free(raw);
		return j;
	}
	json_t *a = json_array();
	for (int i = 0; i < dim; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

static allot_err tokenize_inputs(struct infer_engine *eng, const struct embed_req *q,
				 int32_t **ids, size_t *nids, size_t *total, struct oai_err *er)
{
	struct infer_info info;
	infer_get_info(eng, &info);
	*total = 0;
	for (size_t i = 0; i < q->n; i++) {
		const json_t *x = q->in[i];
		if (json_is_string(x)) {
			if (infer_tokenize(eng, json_string_value(x), json_string_length(x), true, false,
					   &ids[i], &nids[i]) || nids[i] == 0)
				return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
						"input[%zu] could not be tokenized", i);
		} else {
			nids[i] = json_array_size(x);
			if (!(ids[i] = malloc(nids[i] * sizeof *ids[i])))
				return oai_fail(er, ALLOT_E_NOMEM, NULL, NULL, "out of memory");
			for (size_t j = 0; j < nids[i]; j++) {
				json_int_t v = json_integer_value(json_array_get(x, j));
				if (v >= info.n_vocab)
					return oai_fail(er, ALLOT_E_INVALID, NULL, "input",
							"token id %lld is out of range for this model", (long long)v);
				ids[i][j] = (int32_t)v;
			}
		}
		if (nids[i] > (size_t)info.n_ctx)
			return oai_fail(er, ALLOT_E_TOO_LARGE, "context_length_exceeded", "input",
					"This model's maximum context length is %d tokens. However, "
					"input[%zu] has %zu tokens.", info.n_ctx, i, nids[i]);
		*total += nids[i];
	}
	return ALLOT_OK;
}

static allot_err embed_local(struct http_req *req, struct http_resp *resp, struct infer_engine *eng,
			     const struct embed_req *q, const char *model, struct oai_err *er)
{
	struct app *app = api_app(req);
	struct infer_info info;
	int32_t *ids[EMBED_MAX_INPUTS] = {0};
	size_t nids[EMBED_MAX_INPUTS] = {0}, total = 0;
	float *vec = NULL;
	struct gate_ticket t;
	int retry = 0;
	char msg[512];
	allot_err e;
	infer_get_info(eng, &info);
	if (!info.embeddings) {
		e = oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "model",
			     "this model's backend computes no embeddings");
		goto out;
	}
	if ((e = tokenize_inputs(eng, q, ids, nids, &total, er)))
		goto out;
	if ((e = gate_admit(app->gate, gapi_claims(req), model, (int)total, 1, &t, &retry, msg,
			    sizeof msg))) {
		gapi_refusal_headers(resp, e, retry);
		oai_fail(er, e, NULL, NULL, "%s", msg);
		goto out;
	}
	if ((e = infer_embed(eng, (const int32_t *const *)ids, nids, q->n, &vec))) {
		gate_cancel(app->gate, &t); /* nothing computed */
		oai_fail(er, e, NULL, "input", "the embeddings could not be computed");
		goto out;
	}
	int64_t charge = 0;
	gate_settle(app->gate, &t, (int)total, 0, &charge);
	json_t *data = json_array();
	for (size_t i = 0; i < q->n; i++)
		json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index",
			(int)i, "embedding", vector_json(vec + i * (size_t)info.n_embd, info.n_embd, q->base64)));
	gapi_remaining_header(resp, t.remaining, t.remaining_level);
	e = http_json(resp, 200, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data,
					   "model", model, "usage", "prompt_tokens", (json_int_t)total,
					   "total_tokens", (json_int_t)total));
out:
	for (size_t i = 0; i < q->n; i++)
		free(ids[i]);
	free(vec);
	return e;
}

#else

static allot_err embed_local(struct http_req *req, struct http_resp *resp, struct infer_engine *eng,
			     const struct embed_req *q, const char *model, struct oai_err *er)
{
	(void)req, (void)resp, (void)eng, (void)q, (void)model;
	return oai_fail(er, ALLOT_E_UNSUPPORTED, "unsupported", "model",
			"embeddings of the gate's bundled models need an engine with infer_embed, "
			"which this build lacks");
}

#endif

/* arg: the struct embed_req the body's inputs go to. */
static allot_err embeddings_parse(const json_t *body, struct oai_req *r, void *arg,
				  struct oai_err *er)
{
	return parse(body, arg, r, er);
}

static allot_err embeddings_remote(struct http_req *req, struct http_resp *resp,
				   const json_t *body, struct oai_req *r, void *arg,
				   struct oai_err *er)
{
	(void)arg;
	return proxy_forward(req, resp, body, r, "/embeddings", er);
}

static allot_err embeddings_local(struct http_req *req, struct http_resp *resp,
				  struct infer_engine *eng, struct oai_req *r, void *arg,
				  struct oai_err *er)
{
	return embed_local(req, resp, eng, arg, r->model, er);
}

static const struct gapi_handler embeddings = {
	.parse = embeddings_parse, .remote = embeddings_remote, .local = embeddings_local};

allot_err api_embeddings(struct http_req *req, struct http_resp *resp)
{
	/* the inputs of a request (2 KiB and more): not on the stack */
	struct embed_req *q = calloc(1, sizeof *q);
	if (!q)
		return gapi_with_remaining(req, resp, http_error(resp, ALLOT_E_NOMEM, "out of memory"));
	allot_err e = gapi_handle(req, resp, &embeddings, q);
	free(q);
	return e;
}
