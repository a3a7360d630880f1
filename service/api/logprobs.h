/* logprobs.h — OpenAI's logprobs objects from the bundled engine's
 * per-token log probabilities (api/logprobs.c).  In a build whose engine
 * has no logprobs (api/oai.h, OAI_ENGINE_FEATURES) they are never asked
 * for, and these answer null. */
#ifndef ALLOT_API_LOGPROBS_H
#define ALLOT_API_LOGPROBS_H

#include <stddef.h>

#include <jansson.h>

struct infer_engine;
struct infer_logprob;

/* Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}. */
json_t *lp_chat(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n);
/* Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"};
 * offsets count from *text_offset, which moves past these tokens. */
json_t *lp_completion(const struct infer_engine *eng, const struct infer_logprob *lp, size_t n,
		      size_t *text_offset);

#endif
