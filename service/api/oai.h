/* oai.h — OpenAI request bodies of the gate (api/oai.c): the fields of
 * POST /v1/completions, /v1/chat/completions and /v1/responses checked and
 * collected into one struct oai_req, before anything is admitted or booked,
 * and the errors in OpenAI's shape with the `param` at fault.
 *
 * Shared by the gate's API modules: api/gate.c (handlers), api/gen.c
 * (bundled engine), api/proxy.c (remote models), api/responses.c.
 */
#ifndef ALLOT_API_OAI_H
#define ALLOT_API_OAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "http/server.h"
#include "infer/engine.h"

/* Longest prompt text accepted (bytes, all prompts or messages together);
 * the context length bounds tokens. */
#define OAI_MAX_PROMPT_BYTES (1024 * 1024)
/* Messages per chat request. */
#define OAI_MAX_MESSAGES 256
/* Content parts per message. */
#define OAI_MAX_PARTS 64
/* The bundled engine takes penalties, logit_bias, logprobs and JSON
 * formats (infer/engine.h of issue 14 defines INFER_MAX_N with them); a
 * build whose engine lacks them refuses them as unsupported. */
#ifdef INFER_MAX_N
#define OAI_ENGINE_FEATURES 1
#endif

/* Sequences one request may ask for (prompts x n): each is its own engine
 * sequence and reservation; the engine's default slot count. */
#define OAI_MAX_SEQS INFER_DEFAULT_SLOTS

/* An error for the client: OpenAI's code (NULL: err_code(e)) and param. */
struct oai_err {
	allot_err e;
	const char *code;    /* static */
	char param[64];
	char msg[512];
};

/* Fills er and returns e. */
allot_err oai_fail(struct oai_err *er, allot_err e, const char *code, const char *param,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Writes er as the response (http_error_ex); returns er->e. */
allot_err oai_respond(struct http_resp *resp, const struct oai_err *er);

enum oai_kind { OAI_COMPLETIONS, OAI_CHAT, OAI_RESPONSES };

struct oai_req {
	enum oai_kind kind;
	const char *model;          /* borrowed from the body */
	bool stream, include_usage;
	int max_tokens;             /* 0: the default */
	int n;                      /* choices per prompt, 1..OAI_MAX_SEQS */
	double temperature, top_p, min_p;
	int64_t top_k, seed;
	const char *stop[INFER_MAX_STOP];
	size_t nstop;
	/* Engine features: checked here, refused (unsupported) by
	 * oai_engine_features while the bundled engine lacks them. */
	double presence_penalty, frequency_penalty;
	const json_t *logit_bias;      /* a non-empty object, or NULL */
	int logprobs;                  /* -1 none; chat: 0 (true); completions: 0..5 */
	int top_logprobs;              /* -1 none */
	const json_t *response_format; /* json_object / json_schema, or NULL */
#ifdef OAI_ENGINE_FEATURES
	/* the engine's forms, made by oai_engine_features (from malloc()) */
	struct infer_bias *bias;
	size_t nbias;
	char *schema;                  /* json_schema's schema as JSON text */
#endif
	/* completions: the prompts (a string or an array of them) */
	size_t nprompts;
	const char *prompt[OAI_MAX_SEQS];
	size_t prompt_len[OAI_MAX_SEQS];
	const json_t *prompt_ids[OAI_MAX_SEQS]; /* a prompt of token ids, or NULL */
	/* chat and responses: the messages; content from malloc() (owned) */
	size_t nmsgs;
	struct chat_msg msgs[OAI_MAX_MESSAGES];
	char *owned[OAI_MAX_MESSAGES];
	/* after oai_tokenize: each prompt's tokens (from malloc()) */
	int32_t *ids[OAI_MAX_SEQS];
	size_t nids[OAI_MAX_SEQS];
};

/* r as an empty request of kind: the defaults (temperature 1, n 1, ...). */
void oai_req_init(struct oai_req *r, enum oai_kind kind);
/* The first key of obj not in allowed (NULL-terminated) is an unknown
 * field, its param "where.key" (where "" at the top). */
allot_err oai_only_fields(const json_t *obj, const char *const allowed[], const char *where,
			  struct oai_err *er);
/* tools, tool_choice, functions, function_call and response_format
 * (responses: text.format): the no-op values pass, tool use is refused as
 * unsupported, a JSON format is kept in r->response_format. */
allot_err oai_parse_tools(const json_t *b, struct oai_req *r, struct oai_err *er);
/* Parses a completions (kind OAI_COMPLETIONS) or chat body into r
 * (zeroed here; release with oai_req_release even on failure). */
allot_err oai_parse(const json_t *body, enum oai_kind kind, struct oai_req *r,
		    struct oai_err *er);
void oai_req_release(struct oai_req *r);

/* The sampling fields shared with /v1/responses (temperature, top_p,
 * seed, ...; names as given): */
allot_err oai_parse_sampling(const json_t *b, struct oai_req *r, struct oai_err *er);
/* Appends one message; content is copied.  Errors name param. */
allot_err oai_add_message(struct oai_req *r, const char *role, const char *content,
			  size_t len, const char *param, struct oai_err *er);
/* A message's content: a string, null (assistant only) or an array of
 * parts ({"type":"text"|"input_text"|"output_text","text"}), concatenated;
 * an image or other part is refused as unsupported with its param. */
allot_err oai_add_content(struct oai_req *r, const char *role, const json_t *content,
			  const char *param, struct oai_err *er);

/* The engine features r asks for, checked against eng (logit_bias ids in
 * the vocabulary, the schema in the subset constrained sampling supports)
 * and put in the engine's forms; without OAI_ENGINE_FEATURES each is
 * refused as unsupported naming its param (docs/GATE.md, "Engine
 * features"). */
allot_err oai_engine_features(struct infer_engine *eng, struct oai_req *r, struct oai_err *er);

/* Tokenizes the prompts (completions) or renders the chat with eng and
 * checks each fits the context (413 context_length_exceeded). */
allot_err oai_tokenize(struct infer_engine *eng, struct oai_req *r, struct oai_err *er);

/* Sequences the request runs: prompts x n (chat: n). */
size_t oai_nseqs(const struct oai_req *r);

/* An upper bound on one prompt's tokens without the model's tokenizer
 * (remote models): no tokenizer emits more tokens than bytes, plus room for
 * BOS and each message's template tokens. */
int oai_prompt_bound(const struct oai_req *r);

#endif
