/* inferref.c — the scalar reference llama and the tiny random models. */
#include "inferref.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "infer/gguf.h"
#include "infer/gguf_write.h"
#include "infer/kernels.h"
#include "xorshift.h"

void inferref_init(struct inferref *r, const struct llama_model *m, int n_ctx)
{
	r->m = m;
	r->n_ctx = n_ctx;
	r->kc = calloc((size_t)m->hp.n_layer * n_ctx * m->hp.dim, 4);
	r->vc = calloc((size_t)m->hp.n_layer * n_ctx * m->hp.dim, 4);
	assert_non_null(r->kc);
	assert_non_null(r->vc);
}

void inferref_free(struct inferref *r)
{
	free(r->kc);
	free(r->vc);
}

static void ref_matvec(const struct llama_wt *w, const float *x, float *y)
{
	float *row = malloc((size_t)w->cols * sizeof *row);

	for (int64_t r = 0; r < w->rows; r++) {
		double s = 0;

		kern_dequant_row(w->type, (int)w->cols, (const char *)w->data + r * w->row_bytes, row);
		for (int64_t i = 0; i < w->cols; i++)
			s += (double)row[i] * x[i];
		y[r] = (float)s;
	}
	free(row);
}

static void ref_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
	double ss = 0;

	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	ss = 1.0 / sqrt(ss / n + eps);
	for (int i = 0; i < n; i++)
		o[i] = (float)(w[i] * x[i] * ss);
}

static void ref_attention(struct inferref *r, int l, int pos, const float *q, float *o)
{
	const struct llama_hparams *hp = &r->m->hp;
	int hd = hp->head_dim, kvd = hp->n_head_kv * hd;
	float *att = calloc((size_t)pos + 1, 4);

	for (int h = 0; h < hp->n_head; h++) {
		int kh = h / (hp->n_head / hp->n_head_kv);
		double mx = -1e30, sum = 0;

		for (int t = 0; t <= pos; t++) {
			double s = 0;

			for (int i = 0; i < hd; i++)
				s += (double)q[h * hd + i] * r->kc[((size_t)l * r->n_ctx + t) * kvd + kh * hd + i];
			att[t] = (float)(s / sqrt(hd));
			mx = att[t] > mx ? att[t] : mx;
		}
		for (int t = 0; t <= pos; t++) {
			att[t] = (float)exp(att[t] - mx);
			sum += att[t];
		}
		for (int i = 0; i < hd; i++) {
			double s = 0;

			for (int t = 0; t <= pos; t++)
				s += att[t] / sum * r->vc[((size_t)l * r->n_ctx + t) * kvd + kh * hd + i];
			o[h * hd + i] = (float)s;
		}
	}
	free(att);
}

/* Rotates each head's pairs by pos x base^(-2i/hd) x scale / factor_i:
 * pairs (2i, 2i+1) for llama, (i, i + hd/2) for qwen2/qwen3 */
static void ref_rope(const struct llama_model *m, float *v, int n_heads, int pos)
{
	const struct llama_hparams *hp = &m->hp;
	int hd = hp->head_dim;

	for (int h = 0; h < n_heads; h++)
		for (int i = 0; i < hd / 2; i++) {
			double th = pos * pow(hp->rope_base, -2.0 * i / hd) * hp->rope_freq_scale /
				    (m->rope_freqs ? m->rope_freqs[i] : 1.0);
			int i0 = hp->arch == LLAMA_ARCH_LLAMA ? 2 * i : i, i1 = hp->arch == LLAMA_ARCH_LLAMA ? 2 * i + 1 : i + hd / 2;
			float c = (float)cos(th), s = (float)sin(th), a = v[h * hd + i0], b = v[h * hd + i1];

			v[h * hd + i0] = a * c - b * s;
			v[h * hd + i1] = a * s + b * c;
		}
}

/* q, k, v biases (qwen2) and per-head norms (qwen3), then rope */
static void ref_qk(const struct llama_model *m, const struct llama_layer *L, int pos, float *q, float *k, float *v)
{
	const struct llama_hparams *hp = &m->hp;
	int hd = hp->head_dim, kvd = hp->n_head_kv * hd, qd = hp->n_head * hd;

	for (int i = 0; i < qd && L->bq.data; i++)
		q[i] += ((const float *)L->bq.data)[i];
	for (int i = 0; i < kvd && L->bk.data; i++)
		k[i] += ((const float *)L->bk.data)[i];
	for (int i = 0; i < kvd && L->bv.data; i++)
		v[i] += ((const float *)L->bv.data)[i];
	for (int h = 0; h < hp->n_head && L->q_norm.data; h++)
		ref_rmsnorm(q + h * hd, q + h * hd, L->q_norm.data, hd, hp->rms_eps);
	for (int h = 0; h < hp->n_head_kv && L->k_norm.data; h++)
		ref_rmsnorm(k + h * hd, k + h * hd, L->k_norm.data, hd, hp->rms_eps);
	ref_rope(m, q, hp->n_head, pos);
	ref_rope(m, k, hp->n_head_kv, pos);
}

void inferref_forward(struct inferref *r, int tok, int pos, float *logits)
{
	const struct llama_hparams *hp = &r->m->hp;
	int dim = hp->dim, hd = hp->head_dim, kvd = hp->n_head_kv * hd, qd = hp->n_head * hd;
	float *x = calloc((size_t)dim, 4), *xb = calloc((size_t)qd + dim, 4), *q = calloc((size_t)qd, 4);
	float *k = calloc((size_t)kvd, 4), *v = calloc((size_t)kvd, 4);
	float *o = calloc((size_t)qd, 4), *h1 = calloc((size_t)hp->ffn, 4), *h3 = calloc((size_t)hp->ffn, 4);

	kern_dequant_row(r->m->tok_embd.type, dim, (const char *)r->m->tok_embd.data + (size_t)tok * r->m->tok_embd.row_bytes, x);
	for (int l = 0; l < hp->n_layer; l++) {
		const struct llama_layer *L = &r->m->layers[l];

		ref_rmsnorm(xb, x, L->attn_norm.data, dim, hp->rms_eps);
		ref_matvec(&L->wq, xb, q);
		ref_matvec(&L->wk, xb, k);
		ref_matvec(&L->wv, xb, v);
		ref_qk(r->m, L, pos, q, k, v);
		memcpy(r->kc + ((size_t)l * r->n_ctx + pos) * kvd, k, (size_t)kvd * 4);
		memcpy(r->vc + ((size_t)l * r->n_ctx + pos) * kvd, v, (size_t)kvd * 4);
		ref_attention(r, l, pos, q, o);
		ref_matvec(&L->wo, o, xb);
		for (int i = 0; i < dim; i++)
			x[i] += xb[i];
		ref_rmsnorm(xb, x, L->ffn_norm.data, dim, hp->rms_eps);
		ref_matvec(&L->w_gate, xb, h1);
		ref_matvec(&L->w_up, xb, h3);
		for (int i = 0; i < hp->ffn; i++)
			h1[i] = (float)(h1[i] / (1.0 + exp(-h1[i])) * h3[i]);
		ref_matvec(&L->w_down, h1, xb);
		for (int i = 0; i < dim; i++)
			x[i] += xb[i];
	}
	ref_rmsnorm(xb, x, r->m->out_norm.data, dim, hp->rms_eps);
	ref_matvec(&r->m->output, xb, logits);
	free(x); free(xb); free(q); free(k); free(v); free(o); free(h1); free(h3);
}

/* One tensor of random values in [-scale, scale) (scale 0: all ones),
 * quantized by the writer */
#define TINY_VOCAB 260

static const char *omit_name; /* tiny_model_try's spec->omit, while it writes */

static void rand_tensor(struct gguf_writer *w, uint64_t *rng, const char *name, uint32_t type, int64_t cols,
			int64_t rows, float scale)
{
	float *v = malloc((size_t)(cols * rows) * sizeof *v);
	int64_t ne[2] = {cols, rows};

	assert_non_null(v);
	for (int64_t i = 0; i < cols * rows; i++)
		v[i] = scale == 0 ? 1.0f : xorshift_unit(rng) * scale;
	if (!omit_name || strcmp(name, omit_name) != 0)
		gguf_writer_tensor_quant(w, name, type, rows == 1 ? 1 : 2, ne, GGML_F32, v);
	free(v);
}

static void norm_tensor(struct gguf_writer *w, uint64_t *rng, const char *name, int64_t n)
{
	float v[1024];

	assert_true(n <= 1024);
	for (int64_t i = 0; i < n; i++)
		v[i] = 1.0f + 0.5f * xorshift_unit(rng);
	if (!omit_name || strcmp(name, omit_name) != 0)
		gguf_writer_tensor_quant(w, name, GGML_F32, 1, &n, GGML_F32, v);
}

/* The vocabulary: 260 tokens, SentencePiece (<unk>, <s>, </s>, 256 byte
 * tokens, one piece) or byte-level BPE (GPT-2's printable stand-ins of
 * the 256 bytes, BOS, EOS, two merged pieces) */
static void write_vocab(struct gguf_writer *w, const struct tiny_spec *s)
{
	enum { V = TINY_VOCAB };
	const char *toks[V];
	char names[V][8];
	bool gpt2 = s->gpt2;
	int gap = 0;

	for (int i = 0; i < V; i++) {
		if (gpt2) {
			/* byte-level: GPT-2's printable stand-in of each byte, then
			 * BOS, EOS and a merge */
			static const char *const sp[] = {"<|bos|>", "<|eos|>", "\xc4\xa0t", "ab"};
			uint32_t cp = (i >= '!' && i <= '~') || (i >= 0xa1 && i <= 0xac) || (i >= 0xae && i <= 0xff) ?
				(uint32_t)i : 256 + (uint32_t)gap++;

			if (i >= 256) {
				toks[i] = sp[i - 256];
				continue;
			}
			names[i][0] = (char)(cp < 0x80 ? cp : 0xc0 | (cp >> 6));
			names[i][1] = (char)(cp < 0x80 ? 0 : 0x80 | (cp & 0x3f));
			names[i][2] = 0;
			toks[i] = names[i];
		} else if (i < 3)
			toks[i] = (const char *[]){"<unk>", "<s>", "</s>"}[i];
		else if (i < 259)
			snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3), toks[i] = names[i];
		else
			toks[i] = "\xe2\x96\x81\x61";
	}
	gguf_writer_str(w, "tokenizer.ggml.model", gpt2 ? "gpt2" : "llama");
	gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, V);
	if (gpt2) {
		static const char *const merges[] = {"\xc4\xa0 t", "a b"};
		int32_t types[V];

		for (int i = 0; i < V; i++)
			types[i] = i == 256 || i == 257 ? 3 : 1; /* control, normal */
		gguf_writer_strs(w, "tokenizer.ggml.merges", merges, NULL, 2);
		gguf_writer_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, V);
		gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 256);
		gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 257);
	} else {
		gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
		gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
	}
	if (s->pre)
		gguf_writer_str(w, "tokenizer.ggml.pre", s->pre);
	if (s->add_bos)
		gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos > 0);
}

allot_err tiny_model_try(const struct tiny_spec *s, struct buf *img, struct llama_model **out, char *err,
			 size_t errlen)
{
	enum { L = 2, H = 4, KV = 2, V = TINY_VOCAB };
	struct gguf_writer *w = gguf_writer_new();
	char nm[64];
	uint64_t rng = s->seed ? s->seed : 0x1234567;
	uint32_t et = s->embd_type ? s->embd_type : s->type, ot = s->out_type ? s->out_type : s->type;
	uint32_t vd = s->v_down_type ? s->v_down_type : s->type;
	const char *arch = s->arch ? s->arch : "llama";
	int hd = s->head_dim ? s->head_dim : s->dim / H;
	bool qwen2 = strcmp(arch, "qwen2") == 0, qwen3 = strcmp(arch, "qwen3") == 0;
	struct gguf *g;

	gguf_writer_str(w, "general.architecture", arch);
#define KEY(k) (snprintf(nm, sizeof nm, "%s." k, arch), nm)
	gguf_writer_u32(w, KEY("context_length"), 64);
	gguf_writer_u32(w, KEY("embedding_length"), (uint32_t)s->dim);
	gguf_writer_u32(w, KEY("block_count"), L);
	gguf_writer_u32(w, KEY("feed_forward_length"), (uint32_t)s->ffn);
	gguf_writer_u32(w, KEY("attention.head_count"), H);
	gguf_writer_u32(w, KEY("attention.head_count_kv"), KV);
	if (s->head_dim)
		gguf_writer_u32(w, KEY("attention.key_length"), (uint32_t)hd);
	if (s->rope_base > 0)
		gguf_writer_f32(w, KEY("rope.freq_base"), s->rope_base);
	if (s->rope_scaling)
		gguf_writer_str(w, KEY("rope.scaling.type"), s->rope_scaling);
	if (s->rope_factor != 0)
		gguf_writer_f32(w, KEY("rope.scaling.factor"), s->rope_factor);
	if (s->value_length)
		gguf_writer_u32(w, KEY("attention.value_length"), (uint32_t)s->value_length);
#undef KEY
	write_vocab(w, s);
	omit_name = s->omit;
	rand_tensor(w, &rng, "token_embd.weight", et, s->dim, V, 1.0f);
	rand_tensor(w, &rng, "output_norm.weight", GGML_F32, s->dim, 1, 0.0f);
	if (!s->tied)
		rand_tensor(w, &rng, "output.weight", ot, s->dim, V, 0.1f);
	if (s->rope_freqs) {
		/* factors 1 to 8 across the pairs, as Llama 3.1's */
		float f[512];
		int64_t ne = hd / 2;

		for (int i = 0; i < hd / 2; i++)
			f[i] = 1.0f + 7.0f * (float)i / (float)(hd / 2);
		gguf_writer_tensor_quant(w, "rope_freqs.weight", GGML_F32, 1, &ne, GGML_F32, f);
	}
	for (int l = 0; l < L; l++) {
#define LT(suffix, ty, c, r, sc) snprintf(nm, sizeof nm, "blk.%d." suffix ".weight", l); \
	rand_tensor(w, &rng, nm, ty, c, r, sc)
		LT("attn_norm", GGML_F32, s->dim, 1, 0.0f);
		LT("attn_q", s->type, s->dim, H * hd, 0.1f);
		LT("attn_k", s->type, s->dim, KV * hd, 0.1f);
		LT("attn_v", vd, s->dim, KV * hd, 0.1f);
		LT("attn_output", s->type, H * hd, s->dim, 0.1f);
		if (qwen2) {
#define BT(suffix, len) snprintf(nm, sizeof nm, "blk.%d." suffix, l); rand_tensor(w, &rng, nm, GGML_F32, len, 1, 0.5f)
			BT("attn_q.bias", H * hd);
			BT("attn_k.bias", KV * hd);
			BT("attn_v.bias", KV * hd);
#undef BT
		}
		if (qwen3) {
			/* norm weights in [0.5, 1.5) */
			snprintf(nm, sizeof nm, "blk.%d.attn_q_norm.weight", l);
			norm_tensor(w, &rng, nm, hd);
			snprintf(nm, sizeof nm, "blk.%d.attn_k_norm.weight", l);
			norm_tensor(w, &rng, nm, hd);
		}
		LT("ffn_norm", GGML_F32, s->dim, 1, 0.0f);
		LT("ffn_gate", s->type, s->dim, s->ffn, 0.1f);
		LT("ffn_up", s->type, s->dim, s->ffn, 0.1f);
		LT("ffn_down", vd, s->ffn, s->dim, 0.07f);
#undef LT
	}
	omit_name = NULL;
	assert_int_equal(gguf_writer_to_buf(w, img), ALLOT_OK);
	gguf_writer_free(w);
	assert_int_equal(gguf_parse(img->data, img->len, &g, err, errlen), ALLOT_OK);
	return llama_load_gguf(g, "tiny", out, err, errlen);
}

struct llama_model *tiny_model_build(const struct tiny_spec *s, struct buf *img)
{
	struct llama_model *m = NULL;
	char err[256];

	if (tiny_model_try(s, img, &m, err, sizeof err) != ALLOT_OK)
		fail_msg("%s", err);
	return m;
}
