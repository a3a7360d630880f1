/* synth.h — synthetic llama-family models with random weights, for
 * benchmarks. */
#ifndef ALLOT_BENCH_INFER_SYNTH_H
#define ALLOT_BENCH_INFER_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

enum synth_arch { SYNTH_LLAMA, SYNTH_QWEN2 };

struct synth_shape {
	const char *name;
	int dim, n_layer, n_head, n_head_kv, ffn, n_vocab, n_ctx;
	/* zero: a Llama 2-style llama (rope base 10000, output.weight) */
	enum synth_arch arch;   /* qwen2: F32 q/k/v biases, neox rope */
	float rope_base;        /* 0: not written (10000) */
	bool tied;              /* no output.weight: token_embd is the output */
	bool rope_freqs;        /* Llama 3.1+'s rope_freqs.weight (factor 32, as Llama 3.2) */
	float rms_eps;          /* 0: 1e-5 */
};

/* Not ggml types: llama.cpp's mixes.  Q4_K_M: Q4_K, with Q6_K for the
 * output (the tied token_embd when there is no output.weight) and for
 * attn_v and ffn_down in the layers llama.cpp's use_more_bits() picks
 * (the first and last eighth, and every third between).  In every mix and
 * plain K-quant type a matrix whose rows are not a multiple of 256 takes
 * llama.cpp's fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), as
 * Qwen2.5-0.5B's 896-wide rows do. */
#define SYNTH_Q4_K_M 0x10000

/* Writes path (GGUF v3) unless a file of the expected size is already
 * there.  type: any type quant_row() writes (infer/quants.h), or
 * SYNTH_Q4_K_M, for the matrices and the embeddings; norms and biases are
 * F32.  Row lengths must be multiples of the block of the type each matrix
 * ends up with. */
allot_err synth_write(const char *path, const struct synth_shape *s, uint32_t type);

#endif
