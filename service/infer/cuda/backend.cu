/* backend.cu — the CUDA backend (infer/backend_cuda.h, docs/CUDA.md): the
 * llama forward pass of backend_cpu.c on one GPU.
 *
 * Weights are uploaded once, as the file stores them (F32, F16, BF16,
 * Q8_0, Q4_0); the token embeddings stay in the host mapping (a row per
 * token is dequantized on the host and uploaded with the batch, as are the
 * RoPE tables, computed exactly as the CPU backend computes them).  Up to
 * CU_GEMM_MIN - 1 tokens a product runs the matrix-vector kernels (Q8_0 and
 * Q4_0 on int8 activation blocks, dp4a); from CU_GEMM_MIN tokens (prompt
 * chunks) the matrix is dequantized to F16 and multiplied by cuBLAS
 * (cublasGemmEx, F32 accumulation).  KV cache: F16, [slot][layer][kv
 * head][position][head_dim].  Logits (or hidden states) go back to the
 * host for the CPU sampler.  A state is used by one thread at a time; each
 * call selects its device first.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

extern "C" {
#include "infer/backend.h"
#include "infer/backend_cuda.h"
#include "infer/gguf.h"
#include "infer/kernels.h"
#include "infer/model.h"
}

#include "infer/cuda/cu_int.cuh"
#include "infer/cuda/kernels.cuh"

static unsigned blocks(size_t n, unsigned per)
{
	return (unsigned)((n + per - 1) / per);
}

/* ---- the product -------------------------------------------------------------- */

template <int T>
static void mv_float(const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	for (int t0 = 0; t0 < ntok; t0 += CU_MV_T) {
		int n = ntok - t0 < CU_MV_T ? ntok - t0 : CU_MV_T;

		cu_mv_float<T><<<blocks((size_t)w->rows, CU_MV_WARPS), 32 * CU_MV_WARPS>>>(
			w->d, w->rb, w->rows, w->cols, x + (size_t)t0 * xs, xs, n, y + (size_t)t0 * ys, ys);
	}
}

template <int T>
static void mv_quant(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	int nb = w->cols / CU_QK;

	cu_quant_q81<<<blocks((size_t)ntok * nb, 4), 128>>>(x, xs, nb, ntok, c->xq);
	for (int t0 = 0; t0 < ntok; t0 += CU_MV_T) {
		int n = ntok - t0 < CU_MV_T ? ntok - t0 : CU_MV_T;

		cu_mv_quant<T><<<blocks((size_t)w->rows, CU_MV_WARPS), 32 * CU_MV_WARPS>>>(
			w->d, w->rb, w->rows, w->cols, c->xq + (size_t)t0 * nb, nb, n, y + (size_t)t0 * ys, ys);
	}
}

static bool gemm(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	size_t ne = (size_t)w->rows * w->cols;
	const float one = 1.0f, zero = 0.0f;
	unsigned g = blocks(ne, 256);

	switch (w->type) {
	case GGML_F32: cu_dequant_f16<CU_F32><<<g, 256>>>(w->d, w->rb, w->rows, w->cols, c->wh); break;
	case GGML_F16: cu_dequant_f16<CU_F16><<<g, 256>>>(w->d, w->rb, w->rows, w->cols, c->wh); break;
	case GGML_BF16: cu_dequant_f16<CU_BF16><<<g, 256>>>(w->d, w->rb, w->rows, w->cols, c->wh); break;
	case GGML_Q8_0: cu_dequant_f16<CU_Q8_0><<<g, 256>>>(w->d, w->rb, w->rows, w->cols, c->wh); break;
	default: cu_dequant_f16<CU_Q4_0><<<g, 256>>>(w->d, w->rb, w->rows, w->cols, c->wh); break;
	}
	cu_to_f16<<<blocks((size_t)ntok * w->cols, 256), 256>>>(x, xs, w->cols, ntok, c->xh);
	/* column-major: W^T (cols x rows, ld cols) transposed times x (cols x
	 * ntok, ld cols) into y (rows x ntok, ld ys) */
	return cu_blas.gemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, ntok, w->cols, &one, c->wh, CUDA_R_16F,
			    w->cols, c->xh, CUDA_R_16F, w->cols, &zero, y, CUDA_R_32F, ys, CUBLAS_COMPUTE_32F,
			    CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
}

/* y[t] = W x[t] for ntok tokens (x [ntok][xs], y [ntok][ys]) */
bool cu_matmul(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	if (ntok >= c->gemm_min)
		return gemm(c, w, x, xs, ntok, y, ys);
	switch (w->type) {
	case GGML_F32: mv_float<CU_F32>(w, x, xs, ntok, y, ys); break;
	case GGML_F16: mv_float<CU_F16>(w, x, xs, ntok, y, ys); break;
	case GGML_BF16: mv_float<CU_BF16>(w, x, xs, ntok, y, ys); break;
	case GGML_Q8_0: mv_quant<CU_Q8_0>(c, w, x, xs, ntok, y, ys); break;
	default: mv_quant<CU_Q4_0>(c, w, x, xs, ntok, y, ys); break;
	}
	return true;
}

/* ---- the pass ------------------------------------------------------------------- */

/* the host's part of a chunk: embeddings, RoPE tables, positions, slots,
 * the rows that want output; uploaded.  Returns the number of those rows. */
static int stage(struct cu *c, const struct infer_batch *b, int t0, int n)
{
	const struct llama_model *m = c->m;
	const struct llama_hparams *hp = &m->hp;
	int dim = hp->dim, hd = hp->head_dim, k = 0;

	for (int t = 0; t < n; t++) {
		const struct llama_wt *e = &m->tok_embd;
		int p = b->pos[t0 + t];

		kern_dequant_row(e->type, dim, (const char *)e->data + (size_t)b->token[t0 + t] * e->row_bytes,
				 c->hx + (size_t)t * dim);
		for (int i = 0; i < hd / 2; i++) {
			/* as backend_cpu.c: base^(-2i/hd) times the linear scaling,
			 * over the pair's factor */
			float freq = hp->rope_freq_scale / powf(hp->rope_base, (float)(2 * i) / (float)hd);
			float v;

			if (m->rope_freqs)
				freq /= m->rope_freqs[i];
			v = (float)p * freq;
			c->hrc[(size_t)t * (hd / 2) + i] = cosf(v);
			c->hrs[(size_t)t * (hd / 2) + i] = sinf(v);
		}
		c->hpos[t] = p;
		c->hslot[t] = b->slot[t0 + t];
		if (b->want_logits[t0 + t])
			c->hidx[k++] = t;
	}
	cudaMemcpy(c->x, c->hx, (size_t)n * dim * sizeof(float), cudaMemcpyHostToDevice);
	cudaMemcpy(c->rc, c->hrc, (size_t)n * (hd / 2) * sizeof(float), cudaMemcpyHostToDevice);
	cudaMemcpy(c->rs, c->hrs, (size_t)n * (hd / 2) * sizeof(float), cudaMemcpyHostToDevice);
	cudaMemcpy(c->pos, c->hpos, (size_t)n * sizeof(int), cudaMemcpyHostToDevice);
	cudaMemcpy(c->slot, c->hslot, (size_t)n * sizeof(int), cudaMemcpyHostToDevice);
	cudaMemcpy(c->idx, c->hidx, (size_t)(k ? k : 1) * sizeof(int), cudaMemcpyHostToDevice);
	return k;
}

static bool attention_block(struct cu *c, const struct cu_layer *L, int l, int n)
{
	const struct llama_hparams *hp = &c->m->hp;
	int dim = hp->dim, hd = hp->head_dim;
	bool ok = true;

	cu_rmsnorm<<<n, 256>>>(c->xb, c->x, NULL, L->attn_norm, dim, hp->rms_eps);
	ok &= cu_matmul(c, &L->wq, c->xb, dim, n, c->q, c->qdim);
	ok &= cu_matmul(c, &L->wk, c->xb, dim, n, c->k, c->kv_dim);
	ok &= cu_matmul(c, &L->wv, c->xb, dim, n, c->v, c->kv_dim);
	/* attention biases (qwen2), each optional */
	if (L->bq)
		cu_add_bias<<<blocks((size_t)n * c->qdim, 256), 256>>>(c->q, L->bq, n, c->qdim);
	if (L->bk)
		cu_add_bias<<<blocks((size_t)n * c->kv_dim, 256), 256>>>(c->k, L->bk, n, c->kv_dim);
	if (L->bv)
		cu_add_bias<<<blocks((size_t)n * c->kv_dim, 256), 256>>>(c->v, L->bv, n, c->kv_dim);
	if (L->qn)
		cu_rmsnorm<<<n * hp->n_head, 128>>>(c->q, c->q, NULL, L->qn, hd, hp->rms_eps);
	if (L->kn)
		cu_rmsnorm<<<n * hp->n_head_kv, 128>>>(c->k, c->k, NULL, L->kn, hd, hp->rms_eps);
	cu_rope<<<blocks((size_t)n * hp->n_head * (hd / 2), 256), 256>>>(c->q, n, hp->n_head, hd, c->qdim, c->rc,
									c->rs, hp->rope_neox);
	cu_rope<<<blocks((size_t)n * hp->n_head_kv * (hd / 2), 256), 256>>>(c->k, n, hp->n_head_kv, hd, c->kv_dim,
									   c->rc, c->rs, hp->rope_neox);
	cu_kv_store<<<blocks((size_t)n * c->kv_dim, 256), 256>>>(c->kc, c->vc, c->k, c->v, c->slot, c->pos, n, l,
								 hp->n_layer, hp->n_head_kv, hd, c->n_ctx);
	cu_attention<<<n * hp->n_head, 128, (size_t)hd * sizeof(float)>>>(
		c->q, c->kc, c->vc, c->slot, c->pos, l, hp->n_layer, hp->n_head, hp->n_head_kv, hd, c->n_ctx, c->att,
		c->xb2);
	ok &= cu_matmul(c, &L->wo, c->xb2, c->qdim, n, c->xb, dim);
	cu_add<<<blocks((size_t)n * dim, 256), 256>>>(c->x, c->xb, (size_t)n * dim);
	return ok;
}

static bool ffn_block(struct cu *c, const struct cu_layer *L, int n)
{
	const struct llama_hparams *hp = &c->m->hp;
	int dim = hp->dim, ffn = hp->ffn;
	bool ok = true;

	cu_rmsnorm<<<n, 256>>>(c->xb, c->x, NULL, L->ffn_norm, dim, hp->rms_eps);
	ok &= cu_matmul(c, &L->wg, c->xb, dim, n, c->hb, ffn);
	ok &= cu_matmul(c, &L->wu, c->xb, dim, n, c->hb2, ffn);
	cu_swiglu<<<blocks((size_t)n * ffn, 256), 256>>>(c->hb, c->hb2, (size_t)n * ffn);
	ok &= cu_matmul(c, &L->wd, c->hb, ffn, n, c->xb, dim);
	cu_add<<<blocks((size_t)n * dim, 256), 256>>>(c->x, c->xb, (size_t)n * dim);
	return ok;
}

/* out: n_vocab logits per wanted token, or with hidden dim floats */
static allot_err forward_chunk(struct cu *c, const struct infer_batch *b, int t0, int n, float *out,
			       int *n_out, bool hidden)
{
	const struct llama_hparams *hp = &c->m->hp;
	int k = stage(c, b, t0, n);
	bool ok = true;

	for (int l = 0; l < hp->n_layer; l++) {
		ok &= attention_block(c, &c->L[l], l, n);
		ok &= ffn_block(c, &c->L[l], n);
	}
	if (k) {
		size_t row = hidden ? (size_t)hp->dim : (size_t)hp->n_vocab;

		cu_rmsnorm<<<k, 256>>>(c->xb, c->x, c->idx, c->out_norm, hp->dim, hp->rms_eps);
		if (!hidden)
			ok &= cu_matmul(c, &c->out, c->xb, hp->dim, k, c->res, hp->n_vocab);
		if (cudaMemcpy(out + (size_t)*n_out * row, hidden ? c->xb : c->res, (size_t)k * row * sizeof(float),
			       cudaMemcpyDeviceToHost) != cudaSuccess)
			ok = false;
		*n_out += k;
	}
	if (!ok || cudaDeviceSynchronize() != cudaSuccess || cudaGetLastError() != cudaSuccess) {
		c->failed = true;
		return ALLOT_E_INTERNAL;
	}
	return ALLOT_OK;
}

static allot_err run_batch(void *state, const struct infer_batch *b, float *out, bool hidden)
{
	struct cu *c = (struct cu *)state;
	int n_out = 0;

	if (c->failed || cudaSetDevice(c->dev) != cudaSuccess)
		return ALLOT_E_INTERNAL;
	for (int t = 0; t < b->n_tokens; t++)
		if (b->token[t] < 0 || b->token[t] >= c->m->hp.n_vocab || b->pos[t] < 0 ||
		    b->pos[t] >= c->n_ctx || b->slot[t] < 0 || b->slot[t] >= c->n_slots)
			return ALLOT_E_INVALID;
	for (int t0 = 0; t0 < b->n_tokens; t0 += c->max_batch) {
		int n = b->n_tokens - t0 < c->max_batch ? b->n_tokens - t0 : c->max_batch;
		allot_err rc = forward_chunk(c, b, t0, n, out, &n_out, hidden);

		if (rc != ALLOT_OK)
			return rc;
	}
	return ALLOT_OK;
}

static allot_err cu_forward(void *state, const struct infer_batch *b, float *logits)
{
	return run_batch(state, b, logits, false);
}

static allot_err cu_embed(void *state, const struct infer_batch *b, float *hidden)
{
	return run_batch(state, b, hidden, true);
}

static allot_err cu_copy_seq(void *state, int src, int dst, int n_pos)
{
	struct cu *c = (struct cu *)state;
	const struct llama_hparams *hp = &c->m->hp;
	int hd = hp->head_dim;

	if (src < 0 || src >= c->n_slots || dst < 0 || dst >= c->n_slots || n_pos < 0 || n_pos > c->n_ctx)
		return ALLOT_E_INVALID;
	if (src == dst || n_pos == 0)
		return ALLOT_OK;
	if (c->failed || cudaSetDevice(c->dev) != cudaSuccess)
		return ALLOT_E_INTERNAL;
	for (int l = 0; l < hp->n_layer; l++)
		for (int h = 0; h < hp->n_head_kv; h++) {
			size_t s = (((size_t)src * hp->n_layer + l) * hp->n_head_kv + h) * c->n_ctx * hd;
			size_t d = (((size_t)dst * hp->n_layer + l) * hp->n_head_kv + h) * c->n_ctx * hd;
			size_t bytes = (size_t)n_pos * hd * sizeof(__half);

			if (cudaMemcpy(c->kc + d, c->kc + s, bytes, cudaMemcpyDeviceToDevice) != cudaSuccess ||
			    cudaMemcpy(c->vc + d, c->vc + s, bytes, cudaMemcpyDeviceToDevice) != cudaSuccess)
				return ALLOT_E_INTERNAL;
		}
	return ALLOT_OK;
}

static const char *cu_describe(void *state)
{
	return ((struct cu *)state)->desc;
}

const struct infer_backend_ops infer_backend_cuda = {
	"cuda", cu_load, cu_forward, cu_embed, cu_copy_seq, cu_describe, cu_free,
};
