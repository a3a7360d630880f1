/* backend_common.h — what the CPU backend (backend_cpu.c) and the CUDA
 * backend (cuda/) share of the model's description: the seven matrices of
 * a layer in one order, the widest activation row, the checks of a batch
 * and of a copy_seq call, and the host's part of a pass (each token's
 * embedding row and its RoPE angles).  One place, so that the two
 * backends cannot drift apart in what they accept or how they rotate. */
#ifndef ALLOT_INFER_BACKEND_COMMON_H
#define ALLOT_INFER_BACKEND_COMMON_H

#include <stdbool.h>

#include "infer/backend.h"
#include "infer/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the matrices of a layer: wq, wk, wv, wo, w_gate, w_up, w_down */
#define BK_LAYER_MATS 7
const struct llama_wt *bk_layer_mat(const struct llama_layer *L, int i);
/* floats in the widest activation row a product reads: max(dim, ffn,
 * n_head * head_dim) */
int bk_widest(const struct llama_hparams *hp);
/* Every token of b within the vocabulary, positions below n_ctx, slots
 * below n_slots. */
bool bk_batch_ok(const struct llama_hparams *hp, const struct infer_batch *b, int n_slots, int n_ctx);
/* copy_seq's arguments within the state's slots and positions */
bool bk_copy_ok(int src, int dst, int n_pos, int n_slots, int n_ctx);
/* Tokens t0..t0+n-1 of b: embedding rows into x [n][dim] (dequantized from
 * the mapping), and each token's RoPE cosines and sines into rcos, rsin
 * [n][head_dim / 2]: base^(-2i/hd) times the linear scaling, over the
 * pair's factor (rope_freqs, Llama 3.1+). */
void bk_stage(const struct llama_model *m, const struct infer_batch *b, int t0, int n, float *x, float *rcos,
	      float *rsin);

#ifdef __cplusplus
}
#endif

#endif
