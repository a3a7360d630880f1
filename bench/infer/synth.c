/* synth.c — writes synthetic llama GGUF files: an SPM vocabulary of
 * n_vocab tokens (controls, 256 byte tokens, filler pieces) and random
 * weights scaled so that activations stay in range. */
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

struct fill_ctx {
	uint32_t type[1024];
	int64_t cols[1024];
	float scale[1024];
	bool norm[1024];
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(void *ctxv, size_t i, void *dst, size_t nbytes)
{
	struct fill_ctx *c = ctxv;
	int64_t cols = c->cols[i];
	size_t rb = ggml_row_size(c->type[i], cols), rows = nbytes / rb;
	float *row = malloc((size_t)cols * sizeof *row);
	uint64_t s = 0x9e3779b97f4a7c15ull ^ (i * 0x2545f4914f6cdd1dull);

	for (size_t r = 0; r < rows; r++) {
		for (int64_t k = 0; k < cols; k++) {
			uint64_t x = rng_next(&s);

			if (c->norm[i])
				row[k] = 1.0f;
			else /* uniform in [-scale, scale) */
				row[k] = c->scale[i] * ((float)(x >> 40) / 8388608.0f - 1.0f);
		}
		quant_row(c->type[i], (int)cols, row, (char *)dst + r * rb);
	}
	free(row);
}

allot_err synth_write(const char *path, const struct synth_shape *s, uint32_t type)
{
	/* Q4_K_M as llama.cpp writes it (here: every attn_v and ffn_down, not
	 * half of them): Q6_K for those and the output, Q4_K for the rest */
	uint32_t vd = type == SYNTH_Q4_K_M ? GGML_Q6_K : type, ot = vd;

	struct gguf_writer *w = gguf_writer_new();
	struct fill_ctx *fc = calloc(1, sizeof *fc);
	char **toks = calloc((size_t)s->n_vocab, sizeof *toks);
	float *scores = calloc((size_t)s->n_vocab, sizeof *scores);
	int32_t *types = calloc((size_t)s->n_vocab, sizeof *types);
	int hd = s->dim / s->n_head, kv = s->n_head_kv * hd;
	size_t nt = 0, want = 0;
	allot_err e;
	struct stat st;
	char tmp[512];

	if (type == SYNTH_Q4_K_M)
		type = GGML_Q4_K;
	if (!w || !fc || !toks || !scores || !types) {
		e = ALLOT_E_NOMEM;
		goto out;
	}
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
	gguf_writer_str(w, "general.architecture", "llama");
	gguf_writer_str(w, "general.name", s->name);
	gguf_writer_u32(w, "llama.context_length", (uint32_t)s->n_ctx);
	gguf_writer_u32(w, "llama.embedding_length", (uint32_t)s->dim);
	gguf_writer_u32(w, "llama.block_count", (uint32_t)s->n_layer);
	gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn);
	gguf_writer_u32(w, "llama.attention.head_count", (uint32_t)s->n_head);
	gguf_writer_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv);
	gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_writer_str(w, "tokenizer.ggml.model", "llama");
	gguf_writer_strs(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (size_t)s->n_vocab);
	gguf_writer_arr(w, "tokenizer.ggml.scores", GGUF_T_F32, scores, (size_t)s->n_vocab);
	gguf_writer_arr(w, "tokenizer.ggml.token_type", GGUF_T_I32, types, (size_t)s->n_vocab);
	gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
#define T(nm, c, r, ty, sc, isnorm) do { \
	int64_t ne[2] = {c, r}; \
	gguf_writer_tensor(w, nm, ty, r == 1 ? 1 : 2, ne, NULL); \
	fc->type[nt] = ty; fc->cols[nt] = c; fc->scale[nt] = sc; fc->norm[nt] = isnorm; \
	want += ggml_row_size(ty, c) * (size_t)(r); nt++; \
} while (0)
	T("token_embd.weight", s->dim, s->n_vocab, type, 1.0f, false);
	T("output_norm.weight", s->dim, 1, GGML_F32, 1.0f, true);
	T("output.weight", s->dim, s->n_vocab, ot, 1.0f / sqrtf((float)s->dim), false);
	for (int l = 0; l < s->n_layer; l++) {
		char nm[64];
		float sd = 1.0f / sqrtf((float)s->dim), sf = 1.0f / sqrtf((float)s->ffn);

#define L(suffix, c, r, ty, sc, isnorm) snprintf(nm, sizeof nm, "blk.%d." suffix ".weight", l); T(nm, c, r, ty, sc, isnorm)
		L("attn_norm", s->dim, 1, GGML_F32, 1.0f, true);
		L("attn_q", s->dim, s->dim, type, sd, false);
		L("attn_k", s->dim, kv, type, sd, false);
		L("attn_v", s->dim, kv, vd, sd, false);
		L("attn_output", s->dim, s->dim, type, sd, false);
		L("ffn_norm", s->dim, 1, GGML_F32, 1.0f, true);
		L("ffn_gate", s->dim, s->ffn, type, sd, false);
		L("ffn_up", s->dim, s->ffn, type, sd, false);
		L("ffn_down", s->ffn, s->dim, vd, sf, false);
#undef L
	}
#undef T
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
