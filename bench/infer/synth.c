/* synth.c — writes synthetic llama-family GGUF files: an SPM vocabulary of
 * n_vocab tokens (controls, 256 byte tokens, filler pieces; the benchmark
 * never tokenizes, so Llama 3 and Qwen shapes get the same kind) and
 * random weights scaled so that activations stay in range. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "infer/gguf.h"
#include "infer/gguf_write.h"
#include "infer/kernels.h"
#include "infer/quants.h"

#define MAX_TENSORS 2048

enum fill_kind { FILL_RANDOM, FILL_ONES, FILL_ROPE };

struct fill_ctx {
	uint32_t type[MAX_TENSORS];
	int64_t cols[MAX_TENSORS];
	float scale[MAX_TENSORS];
	enum fill_kind kind[MAX_TENSORS];
	float rope_base;
};

/* what a matrix is, for the mixes */
enum role { R_EMBD, R_OUTPUT, R_Q, R_K, R_V, R_O, R_GATE, R_UP, R_DOWN, R_VEC };

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Llama 3.x's rope_freqs factors (factor 32, low/high frequency factors 1
 * and 4, original context 8192: Llama 3.2's), as the converter writes them */
static float rope_factor(int i, int hd, float base)
{
	const float factor = 32.0f, lf = 1.0f, hf = 4.0f, old_ctx = 8192.0f;
	float freq = 1.0f / powf(base, (float)(2 * i) / (float)hd), wavelen = 6.2831853f / freq;

	if (wavelen < old_ctx / hf)
		return 1.0f;
	if (wavelen > old_ctx / lf)
		return factor;
	{
		float smooth = (old_ctx / wavelen - lf) / (hf - lf);

		return 1.0f / ((1.0f - smooth) / factor + smooth);
	}
}

static void fill(void *ctxv, size_t i, void *dst, size_t nbytes)
{
	struct fill_ctx *c = ctxv;
	int64_t cols = c->cols[i];
	size_t rb = ggml_row_size(c->type[i], cols), rows = nbytes / rb;
	float *row = malloc((size_t)cols * sizeof *row);
	uint64_t s = 0x9e3779b97f4a7c15ull ^ (i * 0x2545f4914f6cdd1dull);

	if (!row)
		abort();
	for (size_t r = 0; r < rows; r++) {
		for (int64_t k = 0; k < cols; k++) {
			uint64_t x = rng_next(&s);

			if (c->kind[i] == FILL_ONES)
				row[k] = 1.0f;
			else if (c->kind[i] == FILL_ROPE)
				row[k] = rope_factor((int)k, (int)cols * 2, c->rope_base);
			else /* uniform in [-scale, scale) */
				row[k] = c->scale[i] * ((float)(x >> 40) / 8388608.0f - 1.0f);
		}
		quant_row(c->type[i], (int)cols, row, (char *)dst + r * rb);
	}
	free(row);
}

/* llama.cpp's use_more_bits(): the layers a _M mix gives more bits */
static bool more_bits(int l, int n)
{
	return l < n / 8 || l >= 7 * n / 8 || (l - n / 8) % 3 == 2;
}

/* the type a matrix of role r in layer l gets in a file of type ftype */
static uint32_t tensor_type(uint32_t ftype, const struct synth_shape *s, enum role r, int l, int64_t cols)
{
	uint32_t t = ftype;

	if (r == R_VEC)
		return GGML_F32;
	if (ftype == SYNTH_Q4_K_M) {
		t = GGML_Q4_K;
		if (r == R_OUTPUT || (r == R_EMBD && s->tied))
			t = GGML_Q6_K;
		else if ((r == R_V || r == R_DOWN) && more_bits(l, s->n_layer))
			t = GGML_Q6_K;
	}
	if (cols % QK_K) /* llama.cpp's fallback for rows K-quants cannot hold */
		t = t == GGML_Q4_K ? GGML_Q5_0 : t == GGML_Q5_K ? GGML_Q5_1 : t == GGML_Q6_K ? GGML_Q8_0 : t;
	return t;
}

static void vocab(struct gguf_writer *w, const struct synth_shape *s, char **toks, float *scores, int32_t *types)
{
	for (int i = 0; i < s->n_vocab; i++) {
		char b[32];

		if (i == 0) snprintf(b, sizeof b, "<unk>");
		else if (i == 1) snprintf(b, sizeof b, "<s>");
		else if (i == 2) snprintf(b, sizeof b, "</s>");
		else if (i < 3 + 256) snprintf(b, sizeof b, "<0x%02X>", i - 3);
		else snprintf(b, sizeof b, "\xe2\x96\x81t%d", i);
		toks[i] = strdup(b);
		scores[i] = -(float)i;
		types[i] = i < 3 ? (i == 0 ? 2 : 3) : i < 259 ? 6 : 1;
	}
	gguf_writer_str(w, "tokenizer.ggml.model", "llama");
	gguf_writer_strs(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (size_t)s->n_vocab);
	gguf_writer_arr(w, "tokenizer.ggml.scores", GGUF_T_F32, scores, (size_t)s->n_vocab);
	gguf_writer_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, (size_t)s->n_vocab);
	gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
}

static void hparams(struct gguf_writer *w, const struct synth_shape *s)
{
	const char *a = s->arch == SYNTH_QWEN2 ? "qwen2" : "llama";
	char k[96];

#define U(key, v) snprintf(k, sizeof k, "%s." key, a); gguf_writer_u32(w, k, (uint32_t)(v))
	gguf_writer_str(w, "general.architecture", a);
	gguf_writer_str(w, "general.name", s->name);
	U("context_length", s->n_ctx);
	U("embedding_length", s->dim);
	U("block_count", s->n_layer);
	U("feed_forward_length", s->ffn);
	U("attention.head_count", s->n_head);
	U("attention.head_count_kv", s->n_head_kv);
#undef U
	snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", a);
	gguf_writer_f32(w, k, s->rms_eps > 0 ? s->rms_eps : 1e-5f);
	if (s->rope_base > 0) {
		snprintf(k, sizeof k, "%s.rope.freq_base", a);
		gguf_writer_f32(w, k, s->rope_base);
	}
}

/* every tensor declared (data from fill()); returns the bytes of tensor data */
static size_t tensors(struct gguf_writer *w, const struct synth_shape *s, uint32_t ftype, struct fill_ctx *fc)
{
	int hd = s->dim / s->n_head, kv = s->n_head_kv * hd;
	float sd = 1.0f / sqrtf((float)s->dim), sf = 1.0f / sqrtf((float)s->ffn);
	size_t nt = 0, want = 0;

#define T(nm, c, r, role, l, sc, kd) do { \
	int64_t ne[2] = {c, r}; \
	uint32_t ty = tensor_type(ftype, s, role, l, c); \
	gguf_writer_tensor(w, nm, ty, r == 1 ? 1 : 2, ne, NULL); \
	fc->type[nt] = ty; fc->cols[nt] = c; fc->scale[nt] = sc; fc->kind[nt] = kd; \
	want += ggml_row_size(ty, c) * (size_t)(r); nt++; \
} while (0)
	T("token_embd.weight", s->dim, s->n_vocab, R_EMBD, 0, 1.0f, FILL_RANDOM);
	T("output_norm.weight", s->dim, 1, R_VEC, 0, 1.0f, FILL_ONES);
	if (!s->tied)
		T("output.weight", s->dim, s->n_vocab, R_OUTPUT, 0, sd, FILL_RANDOM);
	if (s->rope_freqs)
		T("rope_freqs.weight", hd / 2, 1, R_VEC, 0, 1.0f, FILL_ROPE);
	for (int l = 0; l < s->n_layer; l++) {
		char nm[64];

#define L(suffix, c, r, role, sc, kd) snprintf(nm, sizeof nm, "blk.%d." suffix, l); T(nm, c, r, role, l, sc, kd)
		L("attn_norm.weight", s->dim, 1, R_VEC, 1.0f, FILL_ONES);
		L("attn_q.weight", s->dim, s->dim, R_Q, sd, FILL_RANDOM);
		L("attn_k.weight", s->dim, kv, R_K, sd, FILL_RANDOM);
		L("attn_v.weight", s->dim, kv, R_V, sd, FILL_RANDOM);
		if (s->arch == SYNTH_QWEN2) {
			L("attn_q.bias", s->dim, 1, R_VEC, 0.1f, FILL_RANDOM);
			L("attn_k.bias", kv, 1, R_VEC, 0.1f, FILL_RANDOM);
			L("attn_v.bias", kv, 1, R_VEC, 0.1f, FILL_RANDOM);
		}
		L("attn_output.weight", s->dim, s->dim, R_O, sd, FILL_RANDOM);
		L("ffn_norm.weight", s->dim, 1, R_VEC, 1.0f, FILL_ONES);
		L("ffn_gate.weight", s->dim, s->ffn, R_GATE, sd, FILL_RANDOM);
		L("ffn_up.weight", s->dim, s->ffn, R_UP, sd, FILL_RANDOM);
		L("ffn_down.weight", s->ffn, s->dim, R_DOWN, sf, FILL_RANDOM);
#undef L
	}
#undef T
	return want;
}

allot_err synth_write(const char *path, const struct synth_shape *s, uint32_t type)
{
	struct gguf_writer *w = gguf_writer_new();
	struct fill_ctx *fc = calloc(1, sizeof *fc);
	char **toks = calloc((size_t)s->n_vocab, sizeof *toks);
	float *scores = calloc((size_t)s->n_vocab, sizeof *scores);
	int32_t *types = calloc((size_t)s->n_vocab, sizeof *types);
	size_t want;
	allot_err e;
	struct stat st;
	char tmp[512];

	if (!w || !fc || !toks || !scores || !types || (size_t)s->n_layer * 16 + 8 > MAX_TENSORS) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
	fc->rope_base = s->rope_base > 0 ? s->rope_base : 10000.0f;
	hparams(w, s);
	vocab(w, s, toks, scores, types);
	want = tensors(w, s, type, fc);
	/* an existing file at least as large as the tensor data is reused */
	if (stat(path, &st) == 0 && (size_t)st.st_size > want && (size_t)st.st_size < want + (64u << 20)) {
		e = ALLOT_OK;
		goto out;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	e = gguf_writer_to_file(w, tmp, fill, fc);
	if (e == ALLOT_OK && rename(tmp, path) != 0)
		e = ALLOT_E_IO;
out:
	if (toks)
		for (int i = 0; i < s->n_vocab; i++)
			free(toks[i]);
	free(toks);
	free(scores);
	free(types);
	free(fc);
	gguf_writer_free(w);
	return e;
}
