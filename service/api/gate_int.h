/* gate_int.h — helpers the gate's API modules share (defined in
 * api/gate.c): the member's claims and the X-Allot-Remaining headers. */
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

#endif
