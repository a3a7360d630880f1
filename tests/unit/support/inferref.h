/* inferref.h — shared by the inference tests: a plain scalar llama forward
 * pass written from the equations (double-precision sums over dequantized
 * weights), and small random llama models built in memory with any weight
 * type per tensor (the GGUF writer's quantizer). */
#ifndef ALLOT_TESTS_INFERREF_H
#define ALLOT_TESTS_INFERREF_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "infer/model.h"

struct inferref {
	const struct llama_model *m;
	float *kc, *vc; /* [layer][pos][kv_dim] */
	int n_ctx;
};

/* The reference state for positions 0..n_ctx-1 of one sequence. */
void inferref_init(struct inferref *r, const struct llama_model *m, int n_ctx);
void inferref_free(struct inferref *r);
/* Logits of token tok at position pos (positions fed in order from 0). */
void inferref_forward(struct inferref *r, int tok, int pos, float *logits);

/* A random model: 2 layers, 4 heads, 2 KV heads, vocabulary of 260 (the
 * 256 byte tokens of a SentencePiece vocabulary, or a byte-level BPE
 * one), context 64.  The float
 * weights depend only on `seed` and the shape, so models of different
 * types with the same seed quantize the same values. */
struct tiny_spec {
	int dim, ffn;           /* dim a multiple of 8 */
	uint32_t type;          /* every matrix unless overridden below */
	uint32_t embd_type;     /* token_embd.weight; 0: `type` */
	uint32_t out_type;      /* output.weight; 0: `type` */
	uint32_t v_down_type;   /* attn_v and ffn_down (as Q4_K_M does); 0: `type` */
	bool tied;              /* no output.weight */
	uint64_t seed;
	const char *arch;       /* "llama" (NULL), "qwen2" (QKV biases), "qwen3" (QK norms) */
	int head_dim;           /* 0: dim / 4; else written as attention.key_length */
	float rope_base;        /* 0: the default */
	const char *rope_scaling; /* rope.scaling.type, or NULL */
	float rope_factor;      /* non-zero: rope.scaling.factor */
	bool rope_freqs;        /* a rope_freqs.weight tensor (factors 1..8) */
	int value_length;       /* > 0: attention.value_length */
	const char *omit;       /* a tensor left out (load errors) */
	bool gpt2;              /* a byte-level BPE vocabulary (256 bytes, BOS 256, EOS
				 * 257, two merges) instead of SentencePiece's */
	const char *pre;        /* tokenizer.ggml.pre, or NULL */
	int add_bos;            /* tokenizer.ggml.add_bos_token: 1 true, -1 false, 0 absent */
};
/* The model over img (which must outlive it); fails the test on error. */
struct llama_model *tiny_model_build(const struct tiny_spec *s, struct buf *img);
/* The same, returning llama_load_gguf's result (img must be released by
 * the caller either way). */
allot_err tiny_model_try(const struct tiny_spec *s, struct buf *img, struct llama_model **out, char *err,
			 size_t errlen);

#endif
