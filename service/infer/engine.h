/* engine.h — the bundled inference engine: one model, many concurrent
 * generation requests sharing forward passes (continuous batching).
 *
 * Threads: infer_open() starts one engine thread (which drives the compute
 * thread pool).  Every function here may be called from any thread, except
 * that infer_close() must not race with calls on the same engine.
 * Requests are queued by infer_submit(); between forward passes the engine
 * admits queued requests into free sequence slots, feeds prompts in chunks
 * alongside the other sequences' decoding steps, and retires finished or
 * cancelled ones, so no request waits for another to end.
 *
 * Memory: results and token arrays returned here are from malloc() and
 * belong to the caller.  Request inputs (prompt, stop strings) are copied
 * by infer_submit().
 *
 * Streaming: on_text is called on the engine thread with each piece of
 * completion text, always whole UTF-8 characters (invalid bytes become
 * U+FFFD), with stop sequences held back until they cannot match; the
 * pieces concatenate to the final text.  Keep it quick (it delays every
 * sequence); return non-zero to cancel (e.g. the client went away).
 */
#ifndef ALLOT_INFER_ENGINE_H
#define ALLOT_INFER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "infer/chat.h"

struct infer_backend_ops;
struct infer_engine;
struct infer_job;

/* Context length used when the caller gives none: the model's, capped here
 * so that the per-sequence KV cache stays modest (4096 positions of a 1B
 * model: 184 MiB per sequence at most, touched only as used). */
#define INFER_DEFAULT_CTX 4096
/* Concurrent sequences by default. */
#define INFER_DEFAULT_SLOTS 8
/* Tokens per forward pass by default (prompt chunks + decoding steps). */
#define INFER_DEFAULT_BATCH 128
/* Stop sequences per request, and bytes per stop sequence. */
#define INFER_MAX_STOP 8
#define INFER_MAX_STOP_LEN 256

struct infer_params {
	int n_threads;      /* compute threads; <= 0: 1 */
	int n_slots;        /* concurrent sequences; <= 0: INFER_DEFAULT_SLOTS */
	int n_ctx;          /* positions per sequence (prompt + completion);
			     * <= 0: the model's, at most INFER_DEFAULT_CTX */
	int max_batch;      /* tokens per forward pass; <= 0: INFER_DEFAULT_BATCH */
	const struct infer_backend_ops *backend; /* NULL: the CPU backend */
	int device;         /* the backend's device index (CUDA: --device cuda:N) */
	bool vocab_only;    /* load the tokenizer and metadata only (fast; no
			     * weights read, no threads): infer_submit() then
			     * fails with ALLOT_E_UNAVAILABLE */
};

struct infer_info {
	const char *name;        /* general.name or the file's base name */
	const char *arch;        /* "llama", "qwen2", "qwen3" */
	const char *weight_type; /* the attention weights' type: "F32", "Q4_K", ... */
	const char *backend;     /* e.g. "cpu/avx512-vnni x2" */
	const char *chat_format; /* "chatml", "llama-2", "llama-3", "llama-3.1", "qwen3", "zephyr",
				  * "gemma", "mistral", "mistral-v3", "unsupported" (infer_chat
				  * refuses) */
	int n_ctx;               /* enforced context length */
	int n_ctx_train;         /* the model's own */
	int n_vocab;
	int n_slots;
	int32_t bos, eos;        /* -1 when absent */
	size_t weight_bytes;     /* weights read per forward pass */
	int n_embd;              /* embedding width (the model's dim) */
	bool embeddings;         /* infer_embed() works (the backend has embed) */
};

/* Loads the model at path.  On failure err (errlen bytes) says why, e.g.
 * `architecture "xyz" is not supported (llama, qwen2 and qwen3 are)`
 * (ALLOT_E_UNSUPPORTED). */
allot_err infer_open(const char *path, const struct infer_params *p,
		     struct infer_engine **out, char *err, size_t errlen);
/* Cancels every request, waits until each has been collected by
 * infer_wait(), stops the threads, frees everything. */
void infer_close(struct infer_engine *e);
/* Strings in info live as long as the engine. */
void infer_get_info(const struct infer_engine *e, struct infer_info *info);

/* text[0..len) to token ids: *ids from malloc() (NULL when *n == 0).
 * add_bos: put BOS first when the vocabulary asks for it
 * (tokenizer.ggml.add_bos_token: Qwen's say false; without the key,
 * SentencePiece and Llama 3 vocabularies do) and has one; parse_special:
 * recognise control-token texts such as "<|im_end|>". */
allot_err infer_tokenize(const struct infer_engine *e, const char *text, size_t len,
			 bool add_bos, bool parse_special, int32_t **ids, size_t *n);
/* Ids to text (NUL-terminated, from malloc(); UTF-8, invalid bytes as
 * U+FFFD; control tokens omitted).  An id out of range: ALLOT_E_INVALID. */
allot_err infer_detokenize(const struct infer_engine *e, const int32_t *ids, size_t n,
			   char **text, size_t *len);
/* Messages to prompt tokens with the model's chat format (see chat.h; a
 * template it does not recognise: ALLOT_E_UNSUPPORTED);
 * *text (may be NULL) receives the rendered prompt. */
allot_err infer_chat(const struct infer_engine *e, const struct chat_msg *msgs, size_t n,
		     char **text, int32_t **ids, size_t *n_ids);

/* Most sequences per request (n), logit_bias entries, top_logprobs. */
#define INFER_MAX_N 16
#define INFER_MAX_BIAS 1024
#define INFER_MAX_TOP_LOGPROBS 20

/* One logit_bias entry: bias in [-100, 100] added to the token's logit
 * before anything else; -100 bans the token outright (logit -inf). */
struct infer_bias {
	int32_t id;
	float bias;
};

/* response_format.  TEXT: unconstrained.  JSON_OBJECT: the completion is
 * one JSON object (RFC 8259) that parses.  JSON_SCHEMA: one JSON value
 * that matches json_schema (the subset infer_schema_check() accepts).
 * Both are enforced by constrained sampling: a token is only chosen if the
 * bytes so far plus its bytes are a prefix of a valid document, the end of
 * sequence is forced once the document is complete, and when the token
 * budget (max_tokens, or the context) runs low only tokens that close the
 * document are allowed.  A document that cannot be completed within the
 * budget (max_tokens smaller than the shortest valid document) ends with
 * finish_reason "length" and is not valid JSON. */
enum infer_format {
	INFER_FMT_TEXT = 0,
	INFER_FMT_JSON_OBJECT = 1,
	INFER_FMT_JSON_SCHEMA = 2,
};

/* One alternative of a token's top_logprobs. */
struct infer_top_logprob {
	int32_t id;              /* its bytes: infer_token_bytes() */
	float logprob;
};

/* One generated token's log probability (natural log). */
struct infer_logprob {
	int32_t id;              /* the token chosen; bytes: infer_token_bytes() */
	float logprob;
	int n_top;               /* = request.top_logprobs (fewer if n_vocab is) */
	struct infer_top_logprob top[INFER_MAX_TOP_LOGPROBS]; /* most likely first */
};

/* One streamed piece of one sequence (on_chunk): text (whole UTF-8
 * characters, stop sequences held back, as on_text) and the logprobs of
 * the tokens sampled since this sequence's previous chunk (only with
 * request.logprobs; the end-of-sequence token's included).  Either may be
 * empty; a sequence's texts concatenate to its choice's text.  Pointers
 * are valid during the call only. */
struct infer_chunk {
	int index;               /* the sequence, 0 .. n-1 */
	const char *text;
	size_t len;
	const struct infer_logprob *lp;
	size_t n_lp;
};

struct infer_request {
	const int32_t *prompt;   /* >= 1 token, fewer than n_ctx */
	size_t n_prompt;
	int max_tokens;          /* <= 0: until the context is full (per sequence) */
	float temperature;       /* <= 0: greedy */
	int top_k;               /* <= 0: off */
	float top_p;             /* <= 0 or >= 1: off */
	float min_p;             /* <= 0: off */
	int64_t seed;            /* < 0: from the clock */
	const char *const *stop; /* up to INFER_MAX_STOP strings */
	size_t n_stop;
	/* may be NULL; with n > 1 it sees sequence 0 only (use on_chunk) */
	int (*on_text)(void *ctx, const char *text, size_t len);
	void *ctx;
	/* ---- issue 14 (all zero: the behaviour above) ---- */
	/* Sequences for this prompt, 0 or 1: one; at most INFER_MAX_N and at
	 * most the engine's n_slots (else ALLOT_E_INVALID).  The prompt is
	 * processed once and its KV cache copied to the other sequences.
	 * Sequence i is seeded from seed and i (sequence 0 exactly as with
	 * n = 1), so a seed still fixes every sequence. */
	int n;
	/* OpenAI penalties over the tokens generated so far by the same
	 * sequence (not the prompt), in [-2, 2]: logit[t] -= frequency_penalty
	 * x count[t] + presence_penalty x (count[t] > 0). */
	float presence_penalty;
	float frequency_penalty;
	const struct infer_bias *logit_bias; /* [n_logit_bias], ids < n_vocab */
	size_t n_logit_bias;                 /* at most INFER_MAX_BIAS */
	/* Per generated token: its logprob and, with top_logprobs > 0 (at most
	 * INFER_MAX_TOP_LOGPROBS), that many most likely alternatives.  The
	 * distribution is log-softmax of the logits after logit_bias and the
	 * penalties, before temperature, top-k/top-p/min-p and the JSON mask
	 * (the model's distribution for this request; see docs/INFER.md). */
	bool logprobs;
	int top_logprobs;
	enum infer_format format;
	const char *json_schema;  /* FMT_JSON_SCHEMA: the schema's JSON text
				   * (copied); check it first with
				   * infer_schema_check() for a message */
	size_t json_schema_len;
	/* Streaming with several sequences and/or logprobs: when set, called
	 * instead of on_text (see struct infer_chunk); return non-zero to
	 * cancel the whole request. */
	int (*on_chunk)(void *ctx, const struct infer_chunk *c);
};

/* One sequence's outcome. */
struct infer_choice {
	char *text;              /* NUL-terminated, from malloc() */
	size_t text_len;
	int completion_tokens;   /* tokens sampled (computed), incl. EOS/stop */
	const char *finish_reason; /* "stop", "length", "cancelled" (static) */
	struct infer_logprob *logprobs; /* [n_logprobs] one per token sampled,
					 * NULL without request.logprobs */
	size_t n_logprobs;
};

struct infer_result {
	/* sequence 0 (the same pointers as choices[0]: do not free them) */
	char *text;
	size_t text_len;
	int prompt_tokens;       /* counted once, however many sequences */
	int completion_tokens;   /* the sum over all sequences (usage) */
	const char *finish_reason; /* sequence 0's */
	int n_choices;           /* = max(request.n, 1) */
	struct infer_choice *choices; /* [n_choices], in index order */
};

/* Queues a request.  *job is owned by the caller until infer_wait().
 * ALLOT_E_INVALID: bad parameters (also: n out of range, a penalty outside
 * [-2, 2], a logit_bias id out of range or bias outside [-100, 100],
 * top_logprobs outside 0..20, an unknown format, a json_schema that
 * infer_schema_check() refuses); ALLOT_E_TOO_LARGE: the prompt does not
 * leave room for one token in the context; ALLOT_E_UNAVAILABLE: the engine
 * is closing or was opened vocab_only. */
allot_err infer_submit(struct infer_engine *e, const struct infer_request *r,
		       struct infer_job **job);
/* Asks the job to stop (any thread); it ends within one forward pass with
 * finish_reason "cancelled" and the tokens generated so far. */
void infer_cancel(struct infer_job *job);
/* Blocks until the job ends, fills *res, and frees the job. */
allot_err infer_wait(struct infer_job *job, struct infer_result *res);
/* infer_submit + infer_wait. */
allot_err infer_generate(struct infer_engine *e, const struct infer_request *r,
			 struct infer_result *res);
void infer_result_release(struct infer_result *res);

/* The bytes token id stands for (what it adds to the text; "" for control
 * tokens; may be part of a UTF-8 character), for logprobs' token/bytes.
 * Valid as long as the engine; NULL for an id out of range. */
const char *infer_token_bytes(const struct infer_engine *e, int32_t id, size_t *len);

/* Whether schema[0..len) is a JSON schema that constrained sampling
 * supports: {"type": "object", "properties": {...}, "required": [...],
 * "additionalProperties": false (the default; true is refused)},
 * {"type": "array", "items": S}, "string", "number", "integer",
 * "boolean", "null", {"enum": [scalars]}, {"const": scalar}, nested; the
 * annotations "title", "description", "$schema" and "default" ignored.
 * Keys are generated in the order of "properties" (optional ones may be
 * left out).  ALLOT_E_INVALID (not JSON, or not a schema) or
 * ALLOT_E_UNSUPPORTED (a keyword outside the subset), with msg naming the
 * keyword and its path, e.g. `"anyOf" is not supported (at
 * properties.a)`. */
allot_err infer_schema_check(const char *schema, size_t len, char *msg, size_t msgsz);

/* Embeddings: one vector per input, the mean over the input's tokens of
 * the final hidden state (after the output norm), L2-normalised.  inputs[i]
 * holds n_tokens[i] >= 1 token ids (at most n_ctx; add BOS yourself if
 * wanted); *out (from malloc()) receives n_inputs x info.n_embd floats,
 * input i at out[i * n_embd].  Runs on the engine thread between
 * generation steps; every input is processed as its own sequence in
 * chunks that do not depend on the other inputs, so a text's vector is
 * bit-identical alone or in any batch.  ALLOT_E_INVALID: empty input or
 * id out of range; ALLOT_E_TOO_LARGE: an input longer than n_ctx;
 * ALLOT_E_UNSUPPORTED: the backend has no embed (info.embeddings false);
 * ALLOT_E_UNAVAILABLE: closing or vocab_only. */
allot_err infer_embed(struct infer_engine *e, const int32_t *const *inputs,
		      const size_t *n_tokens, size_t n_inputs, float **out);

/* `allotd --model FILE (--prompt TEXT | --tokenize TEXT) [...]`; see
 * docs/INFER.md.  Returns the exit status. */
int infer_cli(int argc, char **argv);

#endif
