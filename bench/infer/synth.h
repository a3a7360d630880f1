/* synth.h — synthetic llama models with random weights, for benchmarks. */
#ifndef ALLOT_BENCH_INFER_SYNTH_H
#define ALLOT_BENCH_INFER_SYNTH_H

#include <stdint.h>

#include "common/err.h"

struct synth_shape {
	const char *name;
	int dim, n_layer, n_head, n_head_kv, ffn, n_vocab, n_ctx;
};

/* Writes path (GGUF v3) unless a file of the expected size is already
 * there.  type: GGML_F16, GGML_Q8_0 or GGML_Q4_0 for the matrices and the
 * embeddings; norms are F32. */
allot_err synth_write(const char *path, const struct synth_shape *s, uint32_t type);

#endif
