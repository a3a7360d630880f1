/* synth.h — synthetic llama models with random weights, for benchmarks. */
#ifndef ALLOT_BENCH_INFER_SYNTH_H
#define ALLOT_BENCH_INFER_SYNTH_H

#include <stdint.h>

#include "common/err.h"

struct synth_shape {
	const char *name;
	int dim, n_layer, n_head, n_head_kv, ffn, n_vocab, n_ctx;
};

/* Not a ggml type: llama.cpp's Q4_K_M mix (Q4_K; Q6_K for attn_v,
 * ffn_down and output.weight) */
#define SYNTH_Q4_K_M 0x10000

/* Writes path (GGUF v3) unless a file of the expected size is already
 * there.  type: any type quant_row() writes (infer/quants.h), or
 * SYNTH_Q4_K_M, for the matrices and the embeddings; norms are F32.  Row
 * lengths must be multiples of the type's block (256 for the K-quants). */
allot_err synth_write(const char *path, const struct synth_shape *s, uint32_t type);

#endif
