/* gate_int.h — helpers the gate's API modules share (defined in
 * api/gate.c): the member's claims, the X-Allot-Remaining headers, and the
 * frame of a gated request (gapi_handle) that the generation, responses
 * and embeddings routes share. */
#ifndef ALLOT_API_GATE_INT_H
#define ALLOT_API_GATE_INT_H

#include "api/api.h"
#include "crypto/token_claims.h"

/* The claims of the member token that authenticated req. */
struct token_claims *gapi_claims(struct http_req *req);
/* X-Allot-Remaining (decimal credits, never negative) and its level. */
void gapi_remaining_header(struct http_resp *resp, int64_t remaining, const char *level);
/* A refused admission's headers: Retry-After for rate limits. */
void gapi_refusal_headers(struct http_resp *resp, allot_err e, int retry_after_s);
/* Adds X-Allot-Remaining when the answer has none yet (every answer of
 * the gate carries it: SPEC section 7); returns e. */
allot_err gapi_with_remaining(struct http_req *req, struct http_resp *resp, allot_err e);
/* The model's answer "model": the id the client asked for. */
void gapi_set_model(json_t *reply, const char *model);

/* The model a member asked for: allowed (404 model_not_found otherwise),
 * remote (*remote) or loaded on this gate (*eng; 503 otherwise). */
struct oai_err;
struct infer_engine;
allot_err gapi_resolve(struct http_req *req, const char *model, bool *remote,
		       struct infer_engine **eng, struct oai_err *er);
/* Runs r (checked, not yet tokenized) on the bundled engine: engine
 * features, tokens, admission of every sequence, then a stream written by
 * fmt or, when done, answer(resp, g, er).  On failure er says why (the
 * caller writes it). */
struct oai_req;
struct gen_run;
struct gen_format;
allot_err gapi_run_local(struct http_req *req, struct http_resp *resp, struct infer_engine *eng,
			 struct oai_req *r, const struct gen_format *fmt,
			 allot_err (*answer)(struct http_resp *, struct gen_run *, struct oai_err *),
			 struct oai_err *er);

/* A gated request of the OpenAI surface from its body to its answer
 * (gapi_handle): parse checks the body into r (zeroed; released by
 * gapi_handle whatever happens); the model is resolved (gapi_resolve); then
 * remote runs it for a model with `url:`, local for a bundled one (eng).
 * Each writes the answer, or returns an error with er saying why.  arg is
 * the caller's, passed to each. */
struct gapi_handler {
	allot_err (*parse)(const json_t *body, struct oai_req *r, void *arg, struct oai_err *er);
	allot_err (*remote)(struct http_req *req, struct http_resp *resp, const json_t *body,
			    struct oai_req *r, void *arg, struct oai_err *er);
	allot_err (*local)(struct http_req *req, struct http_resp *resp, struct infer_engine *eng,
			   struct oai_req *r, void *arg, struct oai_err *er);
};
/* Reads the body as JSON, runs h, answers a failure in OpenAI's shape
 * (oai_respond) and gives every answer X-Allot-Remaining
 * (gapi_with_remaining): the whole of a gate route's handler. */
allot_err gapi_handle(struct http_req *req, struct http_resp *resp, const struct gapi_handler *h,
		      void *arg);

#endif
