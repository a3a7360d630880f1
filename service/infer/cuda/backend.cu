/* backend.cu — the CUDA backend (infer/backend_cuda.h, docs/CUDA.md): the
 * llama forward pass of backend_cpu.c on one GPU.
 *
 * Weights are uploaded once, as the file stores them (F32, F16, BF16 and
 * every quantized type the CPU runs); the token embeddings stay in the
 * host mapping (a row per token is dequantized on the host and uploaded
 * with the batch, as are the RoPE tables: infer/backend_common.h, shared
 * with the CPU backend).  Up to CU_GEMM_MIN - 1 tokens a product runs the
 * matrix-vector kernels (quantized weights against int8 activation blocks,
 * dp4a; up to CU_MV_T tokens per pass over the matrix, so a batch of
 * decoding sequences reads the weights once; a kernel for one token and
 * one for 2..CU_MV_T); from CU_GEMM_MIN tokens
 * (prompt chunks) the matrix is dequantized to F16 and multiplied by
 * cuBLAS (cublasGemmEx, F32 accumulation).  KV cache: F16, [slot][layer][kv
 * head][position][head_dim]; attention per token over its own slot.
 * Everything runs on the state's stream; a decode step of n <= CU_MV_T
 * tokens that all want logits is captured once as a CUDA Graph per n and
 * replayed (positions, slots, embeddings and RoPE tables live in device
 * buffers at fixed addresses, so the graph stays valid).  Logits (or
 * hidden states) go back to the host for the CPU sampler.  A state is used
 * by one thread at a time; each call selects its device first.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "infer/backend.h"
#include "infer/backend_common.h"
#include "infer/backend_cuda.h"
#include "infer/gguf.h"
#include "infer/model.h"
}

#include "infer/cuda/cu_int.cuh"
#include "infer/cuda/cu_quant.cuh"
#include "infer/cuda/kernels.cuh"

static unsigned blocks(size_t n, unsigned per)
{
	return (unsigned)((n + per - 1) / per);
}

/* ---- the product -------------------------------------------------------------- */

template <int T, int NT>
static void mv_float_n(struct cu *c, const struct cu_wt *w, const float *x, int xs, int n, float *y, int ys)
{
	cu_mv_float<T, NT><<<blocks((size_t)w->rows, CU_MV_WARPS), 32 * CU_MV_WARPS, 0, c->st>>>(
		w->d, w->rb, w->rows, w->cols, x, xs, n, y, ys);
}

template <int T>
static void mv_float(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	for (int t0 = 0; t0 < ntok; t0 += CU_MV_T) {
		int n = ntok - t0 < CU_MV_T ? ntok - t0 : CU_MV_T;
		const float *xt = x + (size_t)t0 * xs;
		float *yt = y + (size_t)t0 * ys;

		if (n == 1)
			mv_float_n<T, 1>(c, w, xt, xs, n, yt, ys);
		else
			mv_float_n<T, CU_MV_T>(c, w, xt, xs, n, yt, ys);
	}
}

template <int T, int NT>
static void mv_quant_n(struct cu *c, const struct cu_wt *w, const cu_q81 *xq, int nb, int n, float *y, int ys)
{
	cu_mv_quant<T, NT><<<blocks((size_t)w->rows, CU_MV_WARPS), 32 * CU_MV_WARPS, 0, c->st>>>(
		w->d, w->rb, w->rows, nb, xq, nb, n, y, ys);
}

/* the activations quantized once, then the matrix read once per CU_MV_T
 * tokens */
template <int T>
static void mv_quant(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	int nb = w->cols / CU_QK;

	cu_quant_q81<<<blocks((size_t)ntok * nb, 4), 128, 0, c->st>>>(x, xs, nb, ntok, c->xq);
	for (int t0 = 0; t0 < ntok; t0 += CU_MV_T) {
		int n = ntok - t0 < CU_MV_T ? ntok - t0 : CU_MV_T;
		const cu_q81 *xq = c->xq + (size_t)t0 * nb;
		float *yt = y + (size_t)t0 * ys;

		if (n == 1)
			mv_quant_n<T, 1>(c, w, xq, nb, n, yt, ys);
		else
			mv_quant_n<T, CU_MV_T>(c, w, xq, nb, n, yt, ys);
	}
}

template <int T>
static void dequant_q(struct cu *c, const struct cu_wt *w)
{
	size_t nb = (size_t)w->cols / CU_QK;

	cu_dequant_q<T><<<blocks((size_t)w->rows * nb, 256), 256, 0, c->st>>>(w->d, w->rb, w->rows, (int)nb, c->wh);
}

template <int T>
static void dequant_f(struct cu *c, const struct cu_wt *w)
{
	cu_dequant_f16<T><<<blocks((size_t)w->rows * w->cols, 256), 256, 0, c->st>>>(w->d, w->rb, w->rows, w->cols,
										  c->wh);
}

static bool gemm(struct cu *c, const struct cu_wt *w, const float *x, int xs, int ntok, float *y, int ys)
{
	const float one = 1.0f, zero = 0.0f;

	switch (w->type) {
	case GGML_F32: dequant_f<CU_F32>(c, w); break;
	case GGML_F16: dequant_f<CU_F16>(c, w); break;
	case GGML_BF16: dequant_f<CU_BF16>(c, w); break;
	case GGML_Q8_0: dequant_q<CU_Q8_0>(c, w); break;
	case GGML_Q4_0: dequant_q<CU_Q4_0>(c, w); break;
	case GGML_Q4_1: dequant_q<CU_Q4_1>(c, w); break;
	case GGML_Q5_0: dequant_q<CU_Q5_0>(c, w); break;
	case GGML_Q5_1: dequant_q<CU_Q5_1>(c, w); break;
	case GGML_Q4_K: dequant_q<CU_Q4_K>(c, w); break;
	case GGML_Q5_K: dequant_q<CU_Q5_K>(c, w); break;
	default: dequant_q<CU_Q6_K>(c, w); break;
	}
	cu_to_f16<<<blocks((size_t)ntok * w->cols, 256), 256, 0, c->st>>>(x, xs, w->cols, ntok, c->xh);
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
	case GGML_F32: mv_float<CU_F32>(c, w, x, xs, ntok, y, ys); break;
	case GGML_F16: mv_float<CU_F16>(c, w, x, xs, ntok, y, ys); break;
	case GGML_BF16: mv_float<CU_BF16>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q8_0: mv_quant<CU_Q8_0>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q4_0: mv_quant<CU_Q4_0>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q4_1: mv_quant<CU_Q4_1>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q5_0: mv_quant<CU_Q5_0>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q5_1: mv_quant<CU_Q5_1>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q4_K: mv_quant<CU_Q4_K>(c, w, x, xs, ntok, y, ys); break;
	case GGML_Q5_K: mv_quant<CU_Q5_K>(c, w, x, xs, ntok, y, ys); break;
	default: mv_quant<CU_Q6_K>(c, w, x, xs, ntok, y, ys); break;
	}
	return true;
}

/* ---- the pass ------------------------------------------------------------------- */

/* the host's part of a chunk: embeddings, RoPE tables, positions, slots,
 * the rows that want output; uploaded on the stream.  Returns the number
 * of those rows. */
static int stage(struct cu *c, const struct infer_batch *b, int t0, int n)
{
	int dim = c->m->hp.dim, hd2 = c->m->hp.head_dim / 2, k = 0;

	bk_stage(c->m, b, t0, n, c->hx, c->hrc, c->hrs);
	for (int t = 0; t < n; t++) {
		c->hpos[t] = b->pos[t0 + t];
		c->hslot[t] = b->slot[t0 + t];
		if (b->want_logits[t0 + t])
			c->hidx[k++] = t;
	}
	cudaMemcpyAsync(c->x, c->hx, (size_t)n * dim * sizeof(float), cudaMemcpyHostToDevice, c->st);
	cudaMemcpyAsync(c->rc, c->hrc, (size_t)n * hd2 * sizeof(float), cudaMemcpyHostToDevice, c->st);
	cudaMemcpyAsync(c->rs, c->hrs, (size_t)n * hd2 * sizeof(float), cudaMemcpyHostToDevice, c->st);
	cudaMemcpyAsync(c->pos, c->hpos, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->st);
	cudaMemcpyAsync(c->slot, c->hslot, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->st);
	cudaMemcpyAsync(c->idx, c->hidx, (size_t)(k ? k : 1) * sizeof(int), cudaMemcpyHostToDevice, c->st);
	return k;
}

static bool attention_block(struct cu *c, const struct cu_layer *L, int l, int n)
{
	const struct llama_hparams *hp = &c->m->hp;
	int dim = hp->dim, hd = hp->head_dim;
	bool ok = true;

	cu_rmsnorm<<<n, 256, 0, c->st>>>(c->xb, c->x, NULL, L->attn_norm, dim, hp->rms_eps);
	ok &= cu_matmul(c, &L->wq, c->xb, dim, n, c->q, c->qdim);
	ok &= cu_matmul(c, &L->wk, c->xb, dim, n, c->k, c->kv_dim);
	ok &= cu_matmul(c, &L->wv, c->xb, dim, n, c->v, c->kv_dim);
	/* attention biases (qwen2), each optional */
	if (L->bq)
		cu_add_bias<<<blocks((size_t)n * c->qdim, 256), 256, 0, c->st>>>(c->q, L->bq, n, c->qdim);
	if (L->bk)
		cu_add_bias<<<blocks((size_t)n * c->kv_dim, 256), 256, 0, c->st>>>(c->k, L->bk, n, c->kv_dim);
	if (L->bv)
		cu_add_bias<<<blocks((size_t)n * c->kv_dim, 256), 256, 0, c->st>>>(c->v, L->bv, n, c->kv_dim);
	if (L->qn)
		cu_rmsnorm<<<n * hp->n_head, 128, 0, c->st>>>(c->q, c->q, NULL, L->qn, hd, hp->rms_eps);
	if (L->kn)
		cu_rmsnorm<<<n * hp->n_head_kv, 128, 0, c->st>>>(c->k, c->k, NULL, L->kn, hd, hp->rms_eps);
	cu_rope<<<blocks((size_t)n * hp->n_head * (hd / 2), 256), 256, 0, c->st>>>(c->q, n, hp->n_head, hd, c->qdim,
										    c->rc, c->rs, hp->rope_neox);
	cu_rope<<<blocks((size_t)n * hp->n_head_kv * (hd / 2), 256), 256, 0, c->st>>>(
		c->k, n, hp->n_head_kv, hd, c->kv_dim, c->rc, c->rs, hp->rope_neox);
	cu_kv_store<<<blocks((size_t)n * c->kv_dim, 256), 256, 0, c->st>>>(
		c->kc, c->vc, c->k, c->v, c->slot, c->pos, n, l, hp->n_layer, hp->n_head_kv, hd, c->n_ctx);
	cu_attention<<<n * hp->n_head, 128, (size_t)hd * sizeof(float), c->st>>>(
		c->q, c->kc, c->vc, c->slot, c->pos, l, hp->n_layer, hp->n_head, hp->n_head_kv, hd, c->n_ctx, c->att,
		c->xb2);
	ok &= cu_matmul(c, &L->wo, c->xb2, c->qdim, n, c->xb, dim);
	cu_add<<<blocks((size_t)n * dim, 256), 256, 0, c->st>>>(c->x, c->xb, (size_t)n * dim);
	return ok;
}

static bool ffn_block(struct cu *c, const struct cu_layer *L, int n)
{
	const struct llama_hparams *hp = &c->m->hp;
	int dim = hp->dim, ffn = hp->ffn;
	bool ok = true;

	cu_rmsnorm<<<n, 256, 0, c->st>>>(c->xb, c->x, NULL, L->ffn_norm, dim, hp->rms_eps);
	ok &= cu_matmul(c, &L->wg, c->xb, dim, n, c->hb, ffn);
	ok &= cu_matmul(c, &L->wu, c->xb, dim, n, c->hb2, ffn);
	cu_swiglu<<<blocks((size_t)n * ffn, 256), 256, 0, c->st>>>(c->hb, c->hb2, (size_t)n * ffn);
	ok &= cu_matmul(c, &L->wd, c->hb, ffn, n, c->xb, dim);
	cu_add<<<blocks((size_t)n * dim, 256), 256, 0, c->st>>>(c->x, c->xb, (size_t)n * dim);
	return ok;
}

/* the layers and the output of a chunk of n tokens of which k want output
 * (their rows in c->idx): logits into c->res, or with hidden the normed
 * hidden states into c->xb.  Only launches on the stream (a graph capture
 * records them). */
static bool pass(struct cu *c, int n, int k, bool hidden)
{
	const struct llama_hparams *hp = &c->m->hp;
	bool ok = true;

	for (int l = 0; l < hp->n_layer; l++) {
		ok &= attention_block(c, &c->L[l], l, n);
		ok &= ffn_block(c, &c->L[l], n);
	}
	if (k) {
		cu_rmsnorm<<<k, 256, 0, c->st>>>(c->xb, c->x, c->idx, c->out_norm, hp->dim, hp->rms_eps);
		if (!hidden)
			ok &= cu_matmul(c, &c->out, c->xb, hp->dim, k, c->res, hp->n_vocab);
	}
	return ok;
}

/* A decode step of n tokens that all want logits, through the graph
 * captured for n (captured now if it is the first); without graphs (off,
 * or a capture that failed, which turns them off) the launches as they
 * are.  The products stay on the matrix-vector kernels (n < gemm_min), so
 * no cuBLAS call is captured. */
static bool pass_graph(struct cu *c, int n)
{
	if (c->graphs && !c->graph[n]) {
		cudaGraph_t g = NULL;
		cudaGraphExec_t ex = NULL;
		bool ok = cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal) == cudaSuccess;

		if (ok) {
			bool launched = pass(c, n, n, false);

			ok = cudaStreamEndCapture(c->st, &g) == cudaSuccess && launched && g &&
			     cudaGraphInstantiate(&ex, g, 0) == cudaSuccess;
		}
		if (g)
			cudaGraphDestroy(g);
		if (ok) {
			c->graph[n] = ex;
		} else {
			/* a capture the driver refused: no graphs for this state
			 * (the error is cleared; the launches run as they are) */
			(void)cudaGetLastError();
			c->graphs = false;
			snprintf(c->desc + strlen(c->desc), sizeof c->desc - strlen(c->desc), " (capture failed)");
		}
	}
	if (!c->graphs)
		return pass(c, n, n, false);
	c->graph_launches++;
	return cudaGraphLaunch(c->graph[n], c->st) == cudaSuccess;
}

/* out: n_vocab logits per wanted token, or with hidden dim floats */
static allot_err forward_chunk(struct cu *c, const struct infer_batch *b, int t0, int n, float *out,
			       int *n_out, bool hidden)
{
	const struct llama_hparams *hp = &c->m->hp;
	int k = stage(c, b, t0, n);
	bool ok;

	if (!hidden && k == n && n <= CU_MV_T && n < c->gemm_min)
		ok = pass_graph(c, n);
	else
		ok = pass(c, n, k, hidden);
	if (k) {
		size_t row = hidden ? (size_t)hp->dim : (size_t)hp->n_vocab;

		if (cudaMemcpyAsync(out + (size_t)*n_out * row, hidden ? c->xb : c->res, (size_t)k * row * sizeof(float),
				    cudaMemcpyDeviceToHost, c->st) != cudaSuccess)
			ok = false;
		*n_out += k;
	}
	if (!ok || cudaStreamSynchronize(c->st) != cudaSuccess || cudaGetLastError() != cudaSuccess) {
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
	if (!bk_batch_ok(&c->m->hp, b, c->n_slots, c->n_ctx))
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

	if (!bk_copy_ok(src, dst, n_pos, c->n_slots, c->n_ctx))
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

			if (cudaMemcpyAsync(c->kc + d, c->kc + s, bytes, cudaMemcpyDeviceToDevice, c->st) != cudaSuccess ||
			    cudaMemcpyAsync(c->vc + d, c->vc + s, bytes, cudaMemcpyDeviceToDevice, c->st) != cudaSuccess)
				return ALLOT_E_INTERNAL;
		}
	return cudaStreamSynchronize(c->st) == cudaSuccess ? ALLOT_OK : ALLOT_E_INTERNAL;
}

static const char *cu_describe(void *state)
{
	return ((struct cu *)state)->desc;
}

extern "C" long infer_cuda_graph_launches(void *state)
{
	return state ? ((struct cu *)state)->graph_launches : 0;
}

const struct infer_backend_ops infer_backend_cuda = {
	"cuda", cu_load, cu_forward, cu_embed, cu_copy_seq, cu_describe, cu_free,
};
