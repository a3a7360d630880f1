/* proxy.h — gated requests to models with `url:` (api/proxy.c): admitted
 * with a bound on the prompt's tokens, forwarded (gate/upstream.c),
 * settled from the upstream's usage, answered with the client's model id;
 * a stream's usage chunk reaches the client only when it asked for it. */
#ifndef ALLOT_API_PROXY_H
#define ALLOT_API_PROXY_H

#include "api/oai.h"

/* path: "/completions", "/chat/completions" or "/embeddings"; body is
 * forwarded with max_tokens set to what was reserved (not for embeddings,
 * whose reservation is the prompt bound alone). */
allot_err proxy_forward(struct http_req *req, struct http_resp *resp, const json_t *body,
			const struct oai_req *r, const char *path, struct oai_err *er);

#endif
