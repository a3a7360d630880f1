/* backend_cpu.c — the CPU backend: a batched llama forward pass over the
 * thread pool and the run-time chosen kernels.
 *
 * Matrix products are matrix-matrix: a chunk of weight rows is read once
 * and applied to every token of the batch while it sits in cache, so prompt
 * processing and batched decoding share each pass over the weights.  For
 * quantized weights the activations are quantized to 8-bit blocks once per
 * product.  KV cache, F32: keys in blocks of 16 positions per KV head
 * ([head_dim][16], so attention scores are 16-wide FMAs), values by KV
 * head, then position ([position][head_dim]: an attention item reads its
 * head's values as one sequential run).
 */
#include "infer/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "infer/backend_common.h"
#include "infer/gguf.h"
#include "infer/kernels.h"
#include "infer/model.h"
#include "infer/pool.h"
#include "infer/quants.h"

/* Weight rows per work item: small enough to balance two threads on the
 * smallest matrices, large enough that the atomic counter is not hot. */
#define MM_CHUNK 16
#define HUGE_PAGE ((size_t)2 << 20)
/* positions per key block */
#define KB 16

struct cpu {
	const struct llama_model *m;
	const struct kern_ops *k;
	struct pool *pool;
	int n_slots, n_ctx, max_batch, kv_dim, qdim, nthreads;
	float *kc;              /* [slot][layer][kv head][ctx / KB][head_dim][KB]: keys of KB
				 * positions side by side, so scores are 16-wide FMAs */
	float *vc;              /* [slot][layer][kv head][ctx][head_dim] */
	int ctx_pad;            /* n_ctx rounded up to KB */
	float *x, *xb, *xb2;    /* [max_batch][dim] (xb2: [max_batch][qdim]) */
	float *q, *kk, *vv;     /* [max_batch][qdim], [max_batch][kv_dim] x2 */
	float *hb, *hb2;        /* [max_batch][ffn] */
	struct q8a *xq;         /* [max_batch][max(dim, ffn, qdim) / QK] */
	size_t xq_stride;       /* blocks per token */
	struct q8r *xr;         /* [max_batch][max(dim, ffn, qdim) / QR] */
	size_t xr_stride;       /* groups per token */
	struct llama_layer *layers; /* [n_layer] the model's, repacked where the kernels want */
	struct llama_wt output;
	char *packed;           /* repacked matrices, one arena from aligned_alloc() */
	bool krepacked;         /* some of them Q5_0 or K-quant rows */
	bool amx;               /* AMX-INT8 tiles for batches of amx_min tokens or more */
	int amx_min;            /* AMX_MIN_DECODE, or ALLOT_AMX_MIN (A/B comparisons) */
	bool amx_bf16;          /* AMX-BF16 tiles for F16/BF16 weights, same batches */
	void *xbf;              /* split activations for them [kern_amx_bf16_xbytes(widest, max_batch)] */
	struct amx_xblk *xamx;  /* packed activations [max_batch / 16][widest / QK] */
	char *amx_scratch;      /* [nthreads][amx_scratch_size] */
	size_t amx_scratch_size;
	float *att;             /* [nthreads][n_ctx] */
	float *rcos, *rsin;     /* [max_batch][head_dim / 2] */
	char desc[64];
};

/* ---- matrix products ------------------------------------------------------ */

struct mm_out { const struct llama_wt *w; float *y; size_t ys; };

struct mm_ctx {
	struct cpu *c;
	const float *x;         /* [n_tok][xs] */
	size_t xs;
	const struct q8a *xq;   /* [n_tok][c->xq_stride] when quantized */
	int n_tok;
	const struct mm_out *out;
	int n_out;
	int chunks[4];          /* cumulative chunk counts per output */
	bool amx;               /* items are AMX panels */
	bool amxf;              /* items are AMX-BF16 panels (F16/BF16 weights) */
	int chunk;              /* rows per item */
};

static inline bool kquant(uint32_t t) { return t == GGML_Q4_K || t == GGML_Q5_K || t == GGML_Q6_K; }

/* repacked rows: their products take q8r activations */
static inline bool packed(uint32_t t) { return t == GGML_Q4_0R || t == GGML_Q8_0R || quant_is_krepacked(t); }

/* weights whose products take q8a activations */
static inline bool quantized(uint32_t t) { return t == GGML_Q8_0 || t == GGML_Q4_0 || quant_is_extra(t); }

static void mm_rows(struct mm_ctx *mc, const struct mm_out *o, int64_t r0, int64_t r1)
{
	const struct kern_ops *k = mc->c->k;
	const struct llama_wt *w = o->w;
	int n = (int)w->cols;

	if (mc->n_tok >= 2 && n % 16 == 0 && (r1 - r0) % 4 == 0) {
		void (*mm4)(int, const void *, size_t, const float *, size_t, int, float *, size_t) =
			w->type == GGML_F32 ? k->mm4_f32 : w->type == GGML_F16 ? k->mm4_f16 :
			w->type == GGML_BF16 ? k->mm4_bf16 : NULL;

		if (mm4) {
			for (int64_t r = r0; r < r1; r += 4)
				mm4(n, (const char *)w->data + (size_t)r * w->row_bytes, w->row_bytes, mc->x, mc->xs,
				    mc->n_tok, o->y + r, o->ys);
			return;
		}
	}
	if (mc->n_tok >= 2 && k->dotn_k && kquant(w->type)) {
		/* each row's super-blocks unpacked once for 4 tokens */
		for (int64_t r = r0; r < r1; r++)
			k->dotn_k(w->type, n, (const char *)w->data + (size_t)r * w->row_bytes, mc->xq,
				  mc->c->xq_stride, mc->n_tok, o->y + r, o->ys);
		return;
	}
	for (int t = 0; t < mc->n_tok; t++) {
		const float *x = mc->x + (size_t)t * mc->xs;
		const struct q8a *xq = mc->xq + (size_t)t * mc->c->xq_stride;
		float *y = o->y + (size_t)t * o->ys;
		const char *row = (const char *)w->data + (size_t)r0 * w->row_bytes;

		switch (w->type) {
		case GGML_F32:
			for (int64_t r = r0; r < r1; r++, row += w->row_bytes)
				y[r] = k->dot_f32(n, (const float *)row, x);
			break;
		case GGML_F16:
			for (int64_t r = r0; r < r1; r++, row += w->row_bytes)
				y[r] = k->dot_f16(n, (const uint16_t *)row, x);
			break;
		case GGML_BF16:
			for (int64_t r = r0; r < r1; r++, row += w->row_bytes)
				y[r] = k->dot_bf16(n, (const uint16_t *)row, x);
			break;
		case GGML_Q8_0: {
			int64_t r = r0;

			for (; r + 4 <= r1; r += 4, row += 4 * w->row_bytes)
				k->dot4_q8_0(n, row, w->row_bytes, xq, y + r);
			for (; r < r1; r++, row += w->row_bytes)
				y[r] = k->dot_q8_0(n, row, xq);
			break;
		}
		case GGML_Q4_0: {
			int64_t r = r0;

			for (; r + 4 <= r1; r += 4, row += 4 * w->row_bytes)
				k->dot4_q4_0(n, row, w->row_bytes, xq, y + r);
			for (; r < r1; r++, row += w->row_bytes)
				y[r] = k->dot_q4_0(n, row, xq);
			break;
		}
		default: {
			/* Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (the loader admits no
			 * other type); the K-quants four rows at a time */
			kern_dot_q_fn dot = kern_dot_q(k, w->type);
			int64_t r = r0;

			if (k->dot4_k && kquant(w->type))
				for (; r + 4 <= r1; r += 4, row += 4 * w->row_bytes)
					k->dot4_k(w->type, n, row, w->row_bytes, xq, y + r);
			for (; r < r1; r++, row += w->row_bytes)
				y[r] = dot(n, row, xq);
			break;
		}
		}
	}
}

/* repacked rows: four rows against all tokens at once (r1 - r0 % 4 == 0) */
static void mm_rows_packed(struct mm_ctx *mc, const struct mm_out *o, int64_t r0, int64_t r1)
{
	const struct kern_ops *k = mc->c->k;
	const struct llama_wt *w = o->w;

	for (int64_t r = r0; r < r1; r += 4) {
		const char *row = (const char *)w->data + (size_t)r * w->row_bytes;

		if (quant_is_krepacked(w->type))
			k->mm4_kr(w->type, (int)w->cols, row, w->row_bytes, mc->c->xr, mc->c->xr_stride, mc->n_tok,
				  o->y + r, o->ys);
		else if (w->type == GGML_Q4_0R)
			k->mm4_q4_0r((int)w->cols, row, w->row_bytes, mc->c->xr, mc->c->xr_stride, mc->n_tok,
				     o->y + r, o->ys);
		else
			k->mm4_q8_0r((int)w->cols, row, w->row_bytes, mc->c->xr, mc->c->xr_stride, mc->n_tok,
				     o->y + r, o->ys);
	}
}

static void mm_item(void *ctx, int ci, int thread)
{
	struct mm_ctx *mc = ctx;
	int j = 0;
	int64_t r0, r1;

	while (ci >= mc->chunks[j])
		j++;
	r0 = (int64_t)(ci - (j ? mc->chunks[j - 1] : 0)) * mc->chunk;
	r1 = r0 + mc->chunk;
	if (r1 > mc->out[j].w->rows)
		r1 = mc->out[j].w->rows;
	if (mc->amxf)
		kern_amx_bf16_mm(mc->out[j].w->type, (int)mc->out[j].w->cols,
				 (const char *)mc->out[j].w->data + (size_t)r0 * mc->out[j].w->row_bytes,
				 mc->out[j].w->row_bytes, (int)(r1 - r0), mc->c->xbf, mc->n_tok, mc->out[j].y + r0,
				 mc->out[j].ys, mc->c->amx_scratch + (size_t)thread * mc->c->amx_scratch_size);
	else if (mc->amx)
		kern_amx_mm16(mc->out[j].w->type, (int)mc->out[j].w->cols,
			      (const char *)mc->out[j].w->data + (size_t)r0 * mc->out[j].w->row_bytes,
			      mc->out[j].w->row_bytes, mc->c->xamx, mc->n_tok, mc->out[j].y + r0, mc->out[j].ys,
			      mc->c->amx_scratch + (size_t)thread * mc->c->amx_scratch_size);
	else if (packed(mc->out[j].w->type))
		mm_rows_packed(mc, &mc->out[j], r0, r1);
	else
		mm_rows(mc, &mc->out[j], r0, r1);
}

/* Activations of 16 tokens (one AMX token tile: no cache line is shared
 * with another item) quantized and packed for the product */
struct prep_ctx { struct mm_ctx *mc; int cols; bool q, qr; };

static void prep_item(void *ctx, int item, int thread)
{
	struct prep_ctx *pc = ctx;
	struct mm_ctx *mc = pc->mc;
	struct cpu *c = mc->c;
	int t0 = item * 16, t1 = t0 + 16, n = mc->n_tok;

	(void)thread;
	for (int t = t0; t < t1 && t < n; t++) {
		if (pc->q || pc->qr)
			c->k->quant_q8a(pc->cols, mc->x + (size_t)t * mc->xs, c->xq + (size_t)t * c->xq_stride);
		if (pc->qr && !mc->amx)
			(c->k->to_q8r ? c->k->to_q8r : kern_q8a_to_q8r)(pc->cols, c->xq + (size_t)t * c->xq_stride,
									c->xr + (size_t)t * c->xr_stride);
	}
	if (mc->amx)
		kern_amx_pack_x_range(pc->cols, c->xq, c->xq_stride, n, t0, t1, c->xamx);
	if (mc->amxf)
		kern_amx_bf16_pack_x_range(pc->cols, mc->x, mc->xs, n, t0, t1, c->xbf);
}

/* One decoding token's activations quantized (and repacked for the VNNI
 * tiles) */
static void quant_item(void *ctx, int t, int thread)
{
	struct prep_ctx *pc = ctx;
	struct mm_ctx *mc = pc->mc;
	struct cpu *c = mc->c;

	(void)thread;
	c->k->quant_q8a(pc->cols, mc->x + (size_t)t * mc->xs, c->xq + (size_t)t * c->xq_stride);
	if (pc->qr && !mc->amx)
		(c->k->to_q8r ? c->k->to_q8r : kern_q8a_to_q8r)(pc->cols, c->xq + (size_t)t * c->xq_stride,
								c->xr + (size_t)t * c->xr_stride);
}

/* y_j[t] = W_j x[t] for each output j (all W_j share the input width). */
static void matmul(struct cpu *c, const float *x, size_t xs, int n_tok,
		   const struct mm_out *out, int n_out)
{
	struct mm_ctx mc = {.c = c, .x = x, .xs = xs, .xq = c->xq, .n_tok = n_tok,
			    .out = out, .n_out = n_out};
	bool q = false, qr = false;
	int acc = 0, cols = (int)out[0].w->cols;

	/* AMX-INT8 from AMX_MIN_DECODE tokens (narrow tiles up to 8), so that
	 * batched decoding reads each weight once and multiplies on the tiles */
	mc.amx = c->amx && n_tok >= c->amx_min;
	mc.amxf = c->amx_bf16 && n_tok >= AMX_MIN_TOKENS && cols % QK == 0;
	for (int j = 0; j < n_out; j++)
		if ((out[j].w->type != GGML_F16 && out[j].w->type != GGML_BF16) || out[j].w->rows % 16)
			mc.amxf = false;
	mc.chunk = mc.amxf ? AMX_BF16_ROWS : MM_CHUNK;
	for (int j = 0; j < n_out; j++) {
		acc += (int)((out[j].w->rows + mc.chunk - 1) / mc.chunk);
		mc.chunks[j] = acc;
		q |= quantized(out[j].w->type);
		qr |= packed(out[j].w->type);
		if ((out[j].w->type != GGML_Q4_0R && out[j].w->type != GGML_Q8_0R) || out[j].w->rows % 16)
			mc.amx = false;
	}
	if (n_tok >= AMX_MIN_TOKENS) {
		/* prompt-sized: on the pool too, a token tile per item */
		struct prep_ctx pc = {.mc = &mc, .cols = cols, .q = q, .qr = qr};

		pool_run(c->pool, prep_item, &pc, (n_tok + 15) / 16);
		pool_run(c->pool, mm_item, &mc, acc);
		return;
	}
	if ((q || qr) && n_tok > 1) {
		/* a batch of decoding tokens: quantized on the pool, a token per
		 * item (then packed for the tiles) */
		struct prep_ctx pc = {.mc = &mc, .cols = cols, .q = q, .qr = qr};

		pool_run(c->pool, quant_item, &pc, n_tok);
	} else if (q || qr) {
		c->k->quant_q8a(cols, x, c->xq);
		if (qr && !mc.amx)
			(c->k->to_q8r ? c->k->to_q8r : kern_q8a_to_q8r)(cols, c->xq, c->xr);
	}
	if (mc.amxf)
		kern_amx_bf16_pack_x(cols, x, xs, n_tok, c->xbf);
	if (mc.amx)
		kern_amx_pack_x(cols, c->xq, c->xq_stride, n_tok, c->xamx);
	/* decoding is memory-bound: each thread streams its own contiguous
	 * part of the matrices */
	pool_run_split(c->pool, mm_item, &mc, acc);
}

/* ---- element-wise ---------------------------------------------------------- */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
	/* 16 partial sums: vectorized, and not one chain of n dependent adds
	 * (it ran at every layer on one thread while the others waited) */
	float part[16] = {0}, ss = 0;
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++)
			part[k] += x[i + k] * x[i + k];
	for (; i < n; i++)
		part[i % 16] += x[i] * x[i];
	for (int k = 0; k < 16; k++)
		ss += part[k];
	ss /= (float)n;
	ss += eps;
	ss = 1.0f / sqrtf(ss);
	for (i = 0; i < n; i++)
		o[i] = w[i] * (ss * x[i]);
}

/* pair i rotated by its angle (cs, sn): adjacent pairs (x[2i], x[2i+1])
 * (llama, whose GGUF q/k rows are permuted for this), or (x[i],
 * x[i + hd/2]) (neox: qwen2, qwen3) */
static void rope(float *v, int n_heads, int hd, const float *cs, const float *sn, bool neox)
{
	int half = hd / 2;

	for (int h = 0; h < n_heads; h++) {
		float *p = v + h * hd;

		for (int i = 0; i < half; i++) {
			int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
			float a = p[i0], b = p[i1];

			p[i0] = a * cs[i] - b * sn[i];
			p[i1] = a * sn[i] + b * cs[i];
		}
	}
}

/* ---- attention ------------------------------------------------------------- */

struct att_ctx {
	struct cpu *c;
	const struct infer_batch *b;
	int t0, layer;
};

/* one (token, head) pair */
static void att_head(const struct att_ctx *ac, int t, int h, int thread)
{
	struct cpu *c = ac->c;
	const struct llama_hparams *hp = &c->m->hp;
	int hd = hp->head_dim, grp = hp->n_head / hp->n_head_kv;
	float *att = c->att + (size_t)thread * c->n_ctx, scale = 1.0f / sqrtf((float)hd);
	int kvh = h / grp;
	int s = ac->b->slot[ac->t0 + t], p = ac->b->pos[ac->t0 + t];
	float *q = c->q + (size_t)t * c->qdim + (size_t)h * hd;
	size_t vb = (((size_t)s * hp->n_layer + ac->layer) * hp->n_head_kv + kvh) * c->n_ctx * hd;
	const float *kbase = c->kc + (((size_t)s * hp->n_layer + ac->layer) * hp->n_head_kv + kvh) *
		(size_t)c->ctx_pad * hd;
	const float *vbase = c->vc + vb;
	float *out, max = -INFINITY, sum;

	/* this head's query normed (qwen3) and rotated here, on the pool, not
	 * serially before */
	if (c->layers[ac->layer].q_norm.data)
		rmsnorm(q, q, c->layers[ac->layer].q_norm.data, hd, hp->rms_eps);
	rope(q, 1, hd, c->rcos + (size_t)t * (hd / 2), c->rsin + (size_t)t * (hd / 2), hp->rope_neox);
	for (int j0 = 0; j0 <= p; j0 += KB) {
		const float *kb = kbase + (size_t)j0 * hd;
		float sc[KB] = {0};

		c->k->key_scores(hd, q, kb, sc);
		for (int j = j0; j <= p && j < j0 + KB; j++) {
			att[j] = sc[j - j0] * scale;
			if (att[j] > max)
				max = att[j];
		}
	}
	sum = (c->k->softmax_exp ? c->k->softmax_exp : kern_scalar.softmax_exp)(p + 1, att, max);
	out = c->xb2 + (size_t)t * c->qdim + (size_t)h * hd;
	c->k->att_values(hd, p + 1, att, 1.0f / sum, vbase, (size_t)hd, out);
}

/* one (token, KV head) pair: the query heads that share the KV head, one
 * after the other while its keys and values are in cache */
static void att_item(void *ctx, int task, int thread)
{
	const struct att_ctx *ac = ctx;
	const struct llama_hparams *hp = &ac->c->m->hp;
	int grp = hp->n_head / hp->n_head_kv, t = task / hp->n_head_kv, kvh = task % hp->n_head_kv;

	for (int h = kvh * grp; h < (kvh + 1) * grp; h++)
		att_head(ac, t, h, thread);
}

/* hb = silu(hb) * hb2 for one token (a pool item) */
static void swiglu_item(void *ctx, int t, int thread)
{
	struct cpu *c = ctx;
	size_t ffn = (size_t)c->m->hp.ffn;
	float *h = c->hb + (size_t)t * ffn;
	const float *u = c->hb2 + (size_t)t * ffn;

	(void)thread;
	(c->k->swiglu ? c->k->swiglu : kern_scalar.swiglu)((int)ffn, h, u);
}

/* ---- the pass ---------------------------------------------------------------- */

/* y[t] += bias for n rows of len floats; no bias: nothing */
static void add_bias(float *y, int n, int len, const float *bias)
{
	if (!bias)
		return;
	for (int t = 0; t < n; t++)
		for (int i = 0; i < len; i++)
			y[(size_t)t * len + i] += bias[i];
}

/* out: logits (n_vocab per wanted token) or, with hidden, the final
 * hidden states after the output norm (dim per wanted token). */
static void forward_chunk(struct cpu *c, const struct infer_batch *b, int t0, int n, float *out,
			  int *n_out, bool hidden)
{
	const struct llama_model *m = c->m;
	const struct llama_hparams *hp = &m->hp;
	int dim = hp->dim, hd = hp->head_dim, ffn = hp->ffn;

	bk_stage(m, b, t0, n, c->x, c->rcos, c->rsin);
	for (int l = 0; l < hp->n_layer; l++) {
		const struct llama_layer *L = &c->layers[l];
		struct mm_out qkv[3] = {{&L->wq, c->q, (size_t)c->qdim}, {&L->wk, c->kk, (size_t)c->kv_dim},
					{&L->wv, c->vv, (size_t)c->kv_dim}};
		struct mm_out o1 = {&L->wo, c->xb, (size_t)dim};
		struct mm_out gu[2] = {{&L->w_gate, c->hb, (size_t)ffn}, {&L->w_up, c->hb2, (size_t)ffn}};
		struct mm_out dn = {&L->w_down, c->xb, (size_t)dim};
		struct att_ctx ac = {.c = c, .b = b, .t0 = t0, .layer = l};

		for (int t = 0; t < n; t++)
			rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm.data, dim, hp->rms_eps);
		matmul(c, c->xb, (size_t)dim, n, qkv, 3);
		/* attention biases (qwen2) */
		add_bias(c->q, n, c->qdim, L->bq.data);
		add_bias(c->kk, n, c->kv_dim, L->bk.data);
		add_bias(c->vv, n, c->kv_dim, L->bv.data);
		for (int t = 0; t < n; t++) {
			const float *cs = c->rcos + (size_t)t * (hd / 2), *sn = c->rsin + (size_t)t * (hd / 2);

			/* (the queries are normed and rotated by their attention
			 * items) */
			if (L->k_norm.data)
				for (int h = 0; h < hp->n_head_kv; h++) {
					float *kh = c->kk + (size_t)t * c->kv_dim + (size_t)h * hd;

					rmsnorm(kh, kh, L->k_norm.data, hd, hp->rms_eps);
				}
			rope(c->kk + (size_t)t * c->kv_dim, hp->n_head_kv, hd, cs, sn, hp->rope_neox);
			for (int h = 0; h < hp->n_head_kv; h++) {
				float *kb = c->kc + (((size_t)b->slot[t0 + t] * hp->n_layer + l) * hp->n_head_kv + h) *
					(size_t)c->ctx_pad * hd + (size_t)(b->pos[t0 + t] / KB) * KB * hd +
					b->pos[t0 + t] % KB;
				const float *kv = c->kk + (size_t)t * c->kv_dim + (size_t)h * hd;

				for (int i = 0; i < hd; i++)
					kb[(size_t)i * KB] = kv[i];
				memcpy(c->vc + ((((size_t)b->slot[t0 + t] * hp->n_layer + l) * hp->n_head_kv + h) *
						c->n_ctx + (size_t)b->pos[t0 + t]) * hd,
				       c->vv + (size_t)t * c->kv_dim + (size_t)h * hd, (size_t)hd * sizeof(float));
			}
		}
		pool_run(c->pool, att_item, &ac, n * hp->n_head_kv);
		matmul(c, c->xb2, (size_t)c->qdim, n, &o1, 1);
		for (size_t i = 0; i < (size_t)n * dim; i++)
			c->x[i] += c->xb[i];
		for (int t = 0; t < n; t++)
			rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm.data, dim, hp->rms_eps);
		matmul(c, c->xb, (size_t)dim, n, gu, 2);
		pool_run(c->pool, swiglu_item, c, n);
		matmul(c, c->hb, (size_t)ffn, n, &dn, 1);
		for (size_t i = 0; i < (size_t)n * dim; i++)
			c->x[i] += c->xb[i];
	}
	/* logits for the tokens that want them */
	{
		int k = 0;

		for (int t = 0; t < n; t++)
			if (b->want_logits[t0 + t])
				rmsnorm(c->xb + (size_t)k++ * dim, c->x + (size_t)t * dim, m->out_norm.data, dim, hp->rms_eps);
		if (k && hidden) {
			memcpy(out + (size_t)*n_out * dim, c->xb, (size_t)k * dim * sizeof *out);
			*n_out += k;
		} else if (k) {
			struct mm_out o = {&c->output, out + (size_t)*n_out * hp->n_vocab, (size_t)hp->n_vocab};

			matmul(c, c->xb, (size_t)dim, k, &o, 1);
			*n_out += k;
		}
	}
}

static allot_err run_batch(void *state, const struct infer_batch *b, float *out, bool hidden)
{
	struct cpu *c = state;
	int n_out = 0;

	if (!bk_batch_ok(&c->m->hp, b, c->n_slots, c->n_ctx))
		return ALLOT_E_INVALID;
	for (int t0 = 0; t0 < b->n_tokens; t0 += c->max_batch) {
		int n = b->n_tokens - t0 < c->max_batch ? b->n_tokens - t0 : c->max_batch;

		forward_chunk(c, b, t0, n, out, &n_out, hidden);
	}
	return ALLOT_OK;
}

static allot_err cpu_forward(void *state, const struct infer_batch *b, float *logits)
{
	return run_batch(state, b, logits, false);
}

static allot_err cpu_embed(void *state, const struct infer_batch *b, float *hidden)
{
	return run_batch(state, b, hidden, true);
}

static allot_err cpu_copy_seq(void *state, int src, int dst, int n_pos)
{
	struct cpu *c = state;
	const struct llama_hparams *hp = &c->m->hp;
	int hd = hp->head_dim;
	size_t kblocks = (size_t)(n_pos + KB - 1) / KB;

	if (!bk_copy_ok(src, dst, n_pos, c->n_slots, c->n_ctx))
		return ALLOT_E_INVALID;
	if (src == dst)
		return ALLOT_OK;
	for (int l = 0; l < hp->n_layer; l++)
		for (int h = 0; h < hp->n_head_kv; h++) {
			size_t ks = (((size_t)src * hp->n_layer + l) * hp->n_head_kv + h) * c->ctx_pad * hd;
			size_t kd = (((size_t)dst * hp->n_layer + l) * hp->n_head_kv + h) * c->ctx_pad * hd;
			size_t vs = (((size_t)src * hp->n_layer + l) * hp->n_head_kv + h) * c->n_ctx * hd;
			size_t vd = (((size_t)dst * hp->n_layer + l) * hp->n_head_kv + h) * c->n_ctx * hd;

			memcpy(c->kc + kd, c->kc + ks, kblocks * KB * hd * sizeof(float));
			memcpy(c->vc + vd, c->vc + vs, (size_t)n_pos * hd * sizeof(float));
		}
	return ALLOT_OK;
}

static void cpu_free(void *state)
{
	struct cpu *c = state;

	if (!c)
		return;
	pool_free(c->pool);
	free(c->kc); free(c->vc);
	free(c->x); free(c->xb); free(c->xb2);
	free(c->q); free(c->kk); free(c->vv);
	free(c->hb); free(c->hb2);
	free(c->xq); free(c->xr); free(c->att);
	free(c->packed);
	free(c->layers);
	free(c->xamx);
	free(c->xbf);
	free(c->amx_scratch);
	free(c->rcos); free(c->rsin);
	free(c);
}

/* Bytes w takes repacked (64-aligned), 0 when the kernels keep it as is. */
static size_t repack_size(const struct cpu *c, const struct llama_wt *w)
{
	/* Q5_0 and the K-quants: ALLOT_NO_KREPACK=1 keeps them as they are
	 * (A/B comparisons) */
	bool k = quant_repacked_type(w->type) && c->k->mm4_kr && !getenv("ALLOT_NO_KREPACK");

	if (!k && (!c->k->mm4_q4_0r || (w->type != GGML_Q4_0 && w->type != GGML_Q8_0)))
		return 0;
	if (w->cols % QR || w->rows % 4 || !kern_repack_row_size(w->type, (int)w->cols))
		return 0;
	return (kern_repack_row_size(w->type, (int)w->cols) * (size_t)w->rows + 63) / 64 * 64;
}

/* Points w at its repacked copy at arena + *off. */
static void repack(struct cpu *c, struct llama_wt *w, char *arena, size_t *off)
{
	size_t bytes = repack_size(c, w), rb;
	char *buf;

	if (!bytes)
		return;
	rb = kern_repack_row_size(w->type, (int)w->cols);
	buf = arena + *off;
	*off += bytes;
	for (int64_t r = 0; r < w->rows; r++)
		kern_repack_row(w->type, (int)w->cols, (const char *)w->data + (size_t)r * w->row_bytes,
				buf + (size_t)r * rb);
	/* the file's copy is not read again: let its pages go (they come back
	 * from the file if anything does read them) */
	if (c->m->file_mapped && w->data != c->m->tok_embd.data) {
		uintptr_t lo = ((uintptr_t)w->data + 4095) & ~(uintptr_t)4095;
		uintptr_t hi = ((uintptr_t)w->data + w->row_bytes * (size_t)w->rows) & ~(uintptr_t)4095;

		if (hi > lo)
			madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	w->data = buf;
	w->row_bytes = rb;
	c->krepacked |= quant_repacked_type(w->type) != 0;
	w->type = w->type == GGML_Q4_0 ? GGML_Q4_0R : w->type == GGML_Q8_0 ? GGML_Q8_0R : quant_repacked_type(w->type);
}

/* All matrices the kernels want repacked, in one 2 MiB-aligned arena with
 * huge pages advised (streaming the weights then does not walk page tables
 * every 4 KiB). */
static bool repack_all(struct cpu *c)
{
	const struct llama_hparams *hp = &c->m->hp;
	size_t total = repack_size(c, &c->output), off = 0;
	char *arena;

	for (int l = 0; l < hp->n_layer; l++) {
		const struct llama_layer *L = &c->layers[l];

		total += repack_size(c, &L->wq) + repack_size(c, &L->wk) + repack_size(c, &L->wv) +
			 repack_size(c, &L->wo) + repack_size(c, &L->w_gate) + repack_size(c, &L->w_up) +
			 repack_size(c, &L->w_down);
	}
	if (!total)
		return true;
	total = (total + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	arena = aligned_alloc(HUGE_PAGE, total);
	if (!arena)
		return false;
	madvise(arena, total, MADV_HUGEPAGE);
	c->packed = arena;
	repack(c, &c->output, arena, &off);
	for (int l = 0; l < hp->n_layer; l++) {
		struct llama_layer *L = &c->layers[l];

		repack(c, &L->wq, arena, &off);
		repack(c, &L->wk, arena, &off);
		repack(c, &L->wv, arena, &off);
		repack(c, &L->wo, arena, &off);
		repack(c, &L->w_gate, arena, &off);
		repack(c, &L->w_up, arena, &off);
		repack(c, &L->w_down, arena, &off);
	}
	return true;
}

static allot_err cpu_load(const struct llama_model *m, const struct infer_backend_params *p,
			  void **state, char *err, size_t errlen)
{
	const struct llama_hparams *hp = &m->hp;
	struct cpu *c = calloc(1, sizeof *c);
	size_t B, kvn;
	int widest;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	c->m = m;
	c->k = kern_best();
	c->n_slots = p->n_slots > 0 ? p->n_slots : 1;
	c->n_ctx = p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train;
	c->max_batch = p->max_batch > 0 ? p->max_batch : 64;
	c->nthreads = p->n_threads > 0 ? p->n_threads : 1;
	c->kv_dim = hp->n_head_kv * hp->head_dim;
	c->qdim = hp->n_head * hp->head_dim;
	B = (size_t)c->max_batch;
	widest = bk_widest(hp);
	c->xq_stride = (size_t)(widest + QK - 1) / QK;
	c->ctx_pad = (c->n_ctx + KB - 1) / KB * KB;
	kvn = (size_t)c->n_slots * hp->n_layer * c->ctx_pad * c->kv_dim;
	/* calloc of this size maps zero pages lazily: memory is used as
	 * positions are filled */
	c->kc = calloc(kvn, sizeof(float));
	c->vc = calloc(kvn, sizeof(float));
	c->x = malloc(B * hp->dim * sizeof(float));
	c->xb = malloc(B * (size_t)(hp->dim > c->qdim ? hp->dim : c->qdim) * sizeof(float));
	c->xb2 = malloc(B * c->qdim * sizeof(float));
	c->q = malloc(B * c->qdim * sizeof(float));
	c->kk = malloc(B * c->kv_dim * sizeof(float));
	c->vv = malloc(B * c->kv_dim * sizeof(float));
	c->hb = malloc(B * hp->ffn * sizeof(float));
	c->hb2 = malloc(B * hp->ffn * sizeof(float));
	c->xq = malloc(B * c->xq_stride * sizeof(struct q8a));
	c->xr_stride = (size_t)(widest + QR - 1) / QR;
	c->xr = aligned_alloc(64, B * c->xr_stride * sizeof(struct q8r));
	c->layers = malloc((size_t)hp->n_layer * sizeof *c->layers);
	c->att = malloc((size_t)c->nthreads * c->n_ctx * sizeof(float));
	c->rcos = malloc(B * (hp->head_dim / 2) * sizeof(float));
	c->rsin = malloc(B * (hp->head_dim / 2) * sizeof(float));
	c->pool = pool_new(c->nthreads);
	if (!c->kc || !c->vc || !c->x || !c->xb || !c->xb2 || !c->q || !c->kk || !c->vv || !c->hb ||
	    !c->hb2 || !c->xq || !c->xr || !c->layers || !c->att || !c->rcos || !c->rsin ||
	    !c->pool) {
		cpu_free(c);
		snprintf(err, errlen, "out of memory for %d sequences of %d positions", c->n_slots, c->n_ctx);
		return ALLOT_E_NOMEM;
	}
	if (c->k->mm4_q4_0r && kern_amx_available() && !getenv("ALLOT_NO_AMX")) {
		const char *am = getenv("ALLOT_AMX_MIN");

		c->amx = true;
		c->amx_min = am && atoi(am) > 0 ? atoi(am) : AMX_MIN_DECODE;
		if (c->amx_min > AMX_MIN_TOKENS)
			c->amx_min = AMX_MIN_TOKENS;
		c->amx_bf16 = kern_amx_bf16_available();
		/* per thread: the int8 panels' unpacked rows or the bf16 items' */
		c->amx_scratch_size = (size_t)(widest / QK) * 576;
		if (c->amx_bf16 && c->amx_scratch_size < kern_amx_bf16_scratch())
			c->amx_scratch_size = kern_amx_bf16_scratch();
		c->amx_scratch_size = (c->amx_scratch_size + 63) / 64 * 64;
		c->xamx = aligned_alloc(64, (kern_amx_xbytes(widest, c->max_batch) + 63) / 64 * 64);
		c->amx_scratch = aligned_alloc(64, (size_t)c->nthreads * c->amx_scratch_size);
		if (c->amx_bf16)
			c->xbf = aligned_alloc(64, (kern_amx_bf16_xbytes(widest, c->max_batch) + 63) / 64 * 64);
		if (!c->xamx || !c->amx_scratch || (c->amx_bf16 && !c->xbf)) {
			cpu_free(c);
			snprintf(err, errlen, "out of memory");
			return ALLOT_E_NOMEM;
		}
	}
	memcpy(c->layers, m->layers, (size_t)hp->n_layer * sizeof *c->layers);
	c->output = m->output;
	if (!repack_all(c)) {
		cpu_free(c);
		snprintf(err, errlen, "out of memory repacking the weights");
		return ALLOT_E_NOMEM;
	}
	snprintf(c->desc, sizeof c->desc, "cpu/%s%s%s x%d%s", c->k->name, c->amx ? "+amx" : "",
		 c->amx_bf16 ? "+bf16" : "", c->nthreads,
		 c->packed ? (c->krepacked ? " repacked+k" : " repacked") : "");
	*state = c;
	return ALLOT_OK;
}

static const char *cpu_describe(void *state)
{
	return ((struct cpu *)state)->desc;
}

const struct infer_backend_ops infer_backend_cpu = {
	.name = "cpu",
	.load = cpu_load,
	.forward = cpu_forward,
	.embed = cpu_embed,
	.copy_seq = cpu_copy_seq,
	.describe = cpu_describe,
	.free = cpu_free,
};
