/* backend.h — the compute backend interface: load a model's weights onto a
 * device, run a batched forward pass, free.  The CPU backend
 * (backend_cpu.c) fills it; a CUDA backend fills the same const vtable.
 *
 * A batch holds tokens of several sequences ("slots").  Each slot has its
 * own KV cache of n_ctx positions; a token at position p of slot s attends
 * to positions 0..p of s.  Within a batch, the tokens of a slot must have
 * consecutive positions continuing from what the slot already holds (or
 * restarting at 0, which forgets the slot's history).  forward() writes one
 * row of n_vocab logits per token whose want_logits flag is set, in batch
 * order.  A backend state is used by one thread at a time.
 *
 * Issue 14 added two optional operations (NULL when a backend lacks them):
 * embed (the final hidden states instead of logits; the engine's
 * infer_embed() and infer_info.embeddings depend on it) and copy_seq (a
 * slot's KV cache copied to another, so that n > 1 sequences share one
 * prompt prefill; without it each sequence processes the prompt itself).
 *
 * The gate does not call this interface: it uses infer/engine.h
 * (struct infer_request: n, presence_penalty, frequency_penalty,
 * logit_bias, logprobs/top_logprobs, format/json_schema, on_chunk;
 * struct infer_result.choices[] with per-token struct infer_logprob;
 * infer_token_bytes(), infer_schema_check(), infer_embed(),
 * infer_info.n_embd/.embeddings).
 */
#ifndef ALLOT_INFER_BACKEND_H
#define ALLOT_INFER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct llama_model;

struct infer_batch {
	int n_tokens;
	const int32_t *token;        /* [n_tokens] token ids (< n_vocab) */
	const int32_t *pos;          /* [n_tokens] positions (< n_ctx) */
	const int32_t *slot;         /* [n_tokens] sequence slots (< n_slots) */
	const uint8_t *want_logits;  /* [n_tokens] */
};

struct infer_backend_params {
	int n_threads;   /* compute threads (CPU) */
	int n_slots;     /* concurrent sequences */
	int n_ctx;       /* positions per sequence */
	int max_batch;   /* most tokens per forward() call */
	int device;      /* accelerator index (CUDA: cuda:N); the CPU ignores it */
};

struct infer_backend_ops {
	const char *name;
	allot_err (*load)(const struct llama_model *m, const struct infer_backend_params *p,
			  void **state, char *err, size_t errlen);
	allot_err (*forward)(void *state, const struct infer_batch *b, float *logits);
	/* Optional (NULL: no embeddings).  As forward(), but writes, for each
	 * token whose want_logits flag is set, one row of the model's dim
	 * floats: its final hidden state after the output norm (what the
	 * output matrix would multiply), in batch order.  The KV cache is
	 * written as by forward(). */
	allot_err (*embed)(void *state, const struct infer_batch *b, float *hidden);
	/* Optional (NULL: not supported).  Copies positions 0..n_pos-1 of
	 * slot src's KV cache to slot dst (dst's other positions are
	 * undefined until written). */
	allot_err (*copy_seq)(void *state, int src, int dst, int n_pos);
	/* name of the kernels in use, for logs and benchmarks */
	const char *(*describe)(void *state);
	void (*free)(void *state);
};

extern const struct infer_backend_ops infer_backend_cpu;
/* infer_backend_cuda: infer/backend_cuda.h */

#endif
