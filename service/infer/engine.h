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
	bool vocab_only;    /* load the tokenizer and metadata only (fast; no
			     * weights read, no threads): infer_submit() then
			     * fails with ALLOT_E_UNAVAILABLE */
};

struct infer_info {
	const char *name;        /* general.name or the file's base name */
	const char *arch;        /* "llama", "qwen2", "qwen3" */
	const char *weight_type; /* the attention weights' type: "F32", "Q4_K", ... */
	const char *backend;     /* e.g. "cpu/avx512-vnni x2" */
	const char *chat_format; /* "chatml", "llama-2", "llama-3", "zephyr", "gemma", "mistral",
				  * "unsupported" (infer_chat refuses) */
	int n_ctx;               /* enforced context length */
	int n_ctx_train;         /* the model's own */
	int n_vocab;
	int n_slots;
	int32_t bos, eos;        /* -1 when absent */
	size_t weight_bytes;     /* weights read per forward pass */
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

struct infer_request {
	const int32_t *prompt;   /* >= 1 token, fewer than n_ctx */
	size_t n_prompt;
	int max_tokens;          /* <= 0: until the context is full */
	float temperature;       /* <= 0: greedy */
	int top_k;               /* <= 0: off */
	float top_p;             /* <= 0 or >= 1: off */
	float min_p;             /* <= 0: off */
	int64_t seed;            /* < 0: from the clock */
	const char *const *stop; /* up to INFER_MAX_STOP strings */
	size_t n_stop;
	int (*on_text)(void *ctx, const char *text, size_t len); /* may be NULL */
	void *ctx;
};

struct infer_result {
	char *text;              /* NUL-terminated, from malloc() */
	size_t text_len;
	int prompt_tokens;
	int completion_tokens;   /* tokens sampled (computed), incl. EOS/stop */
	const char *finish_reason; /* "stop", "length", "cancelled" (static) */
};

/* Queues a request.  *job is owned by the caller until infer_wait().
 * ALLOT_E_INVALID: bad parameters; ALLOT_E_TOO_LARGE: the prompt does not
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

/* `allotd --model FILE (--prompt TEXT | --tokenize TEXT) [...]`; see
 * docs/INFER.md.  Returns the exit status. */
int infer_cli(int argc, char **argv);

#endif
