/* model.c — loading and validating a llama-family model (llama, qwen2,
 * qwen3) from GGUF. */
#include "infer/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/gguf.h"
#include "infer/tok.h"

/* Bounds on hyper-parameters: far above any real llama, low enough that
 * sizes computed from them cannot overflow. */
#define LLAMA_MAX_DIM    65536
#define LLAMA_MAX_LAYERS 1024
#define LLAMA_MAX_HEADS  1024
#define LLAMA_MAX_CTX    (1 << 20)

void llama_free(struct llama_model *m)
{
	if (!m)
		return;
	tok_free(m->vocab);
	gguf_free(m->gguf);
	free(m->layers);
	free(m->chat_template);
	free(m);
}

static bool get_int(const struct gguf *g, const char *key, int lo, int hi, int *out,
		    bool required, char *err, size_t errlen)
{
	uint32_t v;

	if (!gguf_get_u32(g, key, &v)) {
		if (gguf_find_key(g, key) >= 0 || required) {
			snprintf(err, errlen, "%s is %s", key, required && gguf_find_key(g, key) < 0 ?
				 "missing" : "not an unsigned integer");
			return false;
		}
		return true;
	}
	if ((int64_t)v < lo || (int64_t)v > hi) {
		snprintf(err, errlen, "%s = %u is out of range [%d, %d]", key, v, lo, hi);
		return false;
	}
	*out = (int)v;
	return true;
}

/* Finds a tensor of exactly cols x rows (rows = 1 for vectors). */
static bool wt(const struct gguf *g, const char *name, int64_t cols, int64_t rows, bool f32_only,
	       struct llama_wt *w, char *err, size_t errlen)
{
	const struct gguf_tensor *t = gguf_find_tensor(g, name);

	if (!t) {
		snprintf(err, errlen, "tensor \"%s\" is missing", name);
		return false;
	}
	if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1) {
		snprintf(err, errlen, "tensor \"%s\" has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
			 name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
			 (long long)t->ne[3], (long long)cols, (long long)rows);
		return false;
	}
	if (f32_only && t->type != GGML_F32) {
		snprintf(err, errlen, "tensor \"%s\": type %s is not supported for norms (F32 only)",
			 name, ggml_type_name(t->type));
		return false;
	}
	w->data = t->data;
	w->type = t->type;
	w->cols = cols;
	w->rows = rows;
	w->row_bytes = ggml_row_size(t->type, cols);
	return true;
}

/* The architectures this engine runs, their metadata key prefixes. */
static const struct { const char *name; enum llama_arch arch; } ARCHS[] = {
	{"llama", LLAMA_ARCH_LLAMA}, {"qwen2", LLAMA_ARCH_QWEN2}, {"qwen3", LLAMA_ARCH_QWEN3},
};

/* <arch>.key as a float: absent leaves *out; present must be a number
 * in (lo, hi] */
static bool get_float(const struct gguf *g, const char *pre, const char *k, float lo, float hi, float *out,
		      char *err, size_t errlen)
{
	char key[96];

	snprintf(key, sizeof key, "%s.%s", pre, k);
	if (gguf_find_key(g, key) < 0)
		return true;
	if (!gguf_get_f32(g, key, out) || !(*out > lo) || !(*out <= hi)) {
		snprintf(err, errlen, "%s is not a number in (%g, %g]", key, lo, hi);
		return false;
	}
	return true;
}

/* Rope: rope.dimension_count, rope.freq_base, rope.scaling.* */
static allot_err rope_params(const struct gguf *g, const char *pre, struct llama_hparams *hp, char *err,
			     size_t errlen)
{
	char key[96];
	const char *st;
	size_t stl;

	hp->n_rot = hp->head_dim;
	snprintf(key, sizeof key, "%s.rope.dimension_count", pre);
	if (!get_int(g, key, 2, hp->head_dim, &hp->n_rot, false, err, errlen))
		return ALLOT_E_INVALID;
	if (hp->n_rot != hp->head_dim) {
		snprintf(err, errlen, "partial rotary embeddings (rope.dimension_count %d) are not supported", hp->n_rot);
		return ALLOT_E_UNSUPPORTED;
	}
	hp->rope_base = 10000.0f;
	if (!get_float(g, pre, "rope.freq_base", 1.0f, INFINITY, &hp->rope_base, err, errlen) ||
	    !isfinite(hp->rope_base)) {
		snprintf(err, errlen, "%s.rope.freq_base is not a number above 1", pre);
		return ALLOT_E_INVALID;
	}
	hp->rope_freq_scale = 1.0f;
	snprintf(key, sizeof key, "%s.rope.scaling.type", pre);
	if (gguf_find_key(g, key) >= 0) {
		if (!gguf_get_str(g, key, &st, &stl)) {
			snprintf(err, errlen, "%s is not a string", key);
			return ALLOT_E_INVALID;
		}
		if (stl == 6 && memcmp(st, "linear", 6) == 0) {
			float f = 1.0f;

			if (!get_float(g, pre, "rope.scaling.factor", 0.0f, 1024.0f, &f, err, errlen))
				return ALLOT_E_INVALID;
			hp->rope_freq_scale = 1.0f / f;
		} else if (!(stl == 4 && memcmp(st, "none", 4) == 0)) {
			snprintf(err, errlen, "rope scaling \"%.*s\" is not supported (none and linear are)",
				 (int)(stl > 32 ? 32 : stl), st);
			return ALLOT_E_UNSUPPORTED;
		}
	}
	return ALLOT_OK;
}

static allot_err hparams(const struct gguf *g, const char *pre, struct llama_hparams *hp, char *err,
			 size_t errlen)
{
	char key[96];
	bool explicit_hd;

#define INT(k, lo, hi, var, req) \
	snprintf(key, sizeof key, "%s." k, pre); \
	if (!get_int(g, key, lo, hi, &(var), req, err, errlen)) return ALLOT_E_INVALID
	INT("embedding_length", 1, LLAMA_MAX_DIM, hp->dim, true);
	INT("block_count", 1, LLAMA_MAX_LAYERS, hp->n_layer, true);
	INT("attention.head_count", 1, LLAMA_MAX_HEADS, hp->n_head, true);
	hp->n_head_kv = hp->n_head;
	INT("attention.head_count_kv", 1, LLAMA_MAX_HEADS, hp->n_head_kv, false);
	INT("feed_forward_length", 1, 4 * LLAMA_MAX_DIM, hp->ffn, true);
	hp->n_ctx_train = 2048;
	INT("context_length", 1, LLAMA_MAX_CTX, hp->n_ctx_train, false);
	{
		int kl = 0, vl = 0;

		INT("attention.key_length", 2, LLAMA_MAX_DIM, kl, false);
		INT("attention.value_length", 2, LLAMA_MAX_DIM, vl, false);
		if (kl && vl && kl != vl) {
			snprintf(err, errlen, "%s.attention.key_length %d != value_length %d is not supported", pre, kl, vl);
			return ALLOT_E_UNSUPPORTED;
		}
		hp->head_dim = kl ? kl : vl;
		explicit_hd = hp->head_dim != 0;
	}
#undef INT
	if ((!explicit_hd && hp->dim % hp->n_head) || hp->n_head % hp->n_head_kv) {
		snprintf(err, errlen, "embedding_length %d / head_count %d / head_count_kv %d do not divide",
			 hp->dim, hp->n_head, hp->n_head_kv);
		return ALLOT_E_INVALID;
	}
	if (!explicit_hd)
		hp->head_dim = hp->dim / hp->n_head;
	if (hp->head_dim % 2 || (int64_t)hp->head_dim * hp->n_head > LLAMA_MAX_DIM) {
		snprintf(err, errlen, "head dimension %d is odd or too large", hp->head_dim);
		return ALLOT_E_INVALID;
	}
	hp->rms_eps = 1e-5f;
	if (!get_float(g, pre, "attention.layer_norm_rms_epsilon", 0.0f, 1.0f, &hp->rms_eps, err, errlen))
		return ALLOT_E_INVALID;
	return rope_params(g, pre, hp, err, errlen);
}

/* An optional F32 vector: absent leaves w zeroed; required: must exist */
static bool vec(const struct gguf *g, const char *name, int64_t n, bool required, struct llama_wt *w, char *err,
		size_t errlen)
{
	memset(w, 0, sizeof *w);
	if (!required && !gguf_find_tensor(g, name))
		return true;
	return wt(g, name, n, 1, true, w, err, errlen);
}

static bool layer(const struct gguf *g, const struct llama_hparams *hp, int l, struct llama_layer *L, char *err,
		  size_t errlen)
{
	int kv = hp->n_head_kv * hp->head_dim, qd = hp->n_head * hp->head_dim;
	bool qwen2 = hp->arch == LLAMA_ARCH_QWEN2, qwen3 = hp->arch == LLAMA_ARCH_QWEN3;
	char key[96];

#define W(n, c, r, f32, field) \
	snprintf(key, sizeof key, "blk.%d." n ".weight", l); \
	if (!wt(g, key, c, r, f32, &L->field, err, errlen)) return false
#define V(n, len, req, field) \
	snprintf(key, sizeof key, "blk.%d." n, l); \
	if (!vec(g, key, len, req, &L->field, err, errlen)) return false
	W("attn_norm", hp->dim, 1, true, attn_norm);
	W("attn_q", hp->dim, qd, false, wq);
	W("attn_k", hp->dim, kv, false, wk);
	W("attn_v", hp->dim, kv, false, wv);
	W("attn_output", qd, hp->dim, false, wo);
	W("ffn_norm", hp->dim, 1, true, ffn_norm);
	W("ffn_gate", hp->dim, hp->ffn, false, w_gate);
	W("ffn_up", hp->dim, hp->ffn, false, w_up);
	W("ffn_down", hp->ffn, hp->dim, false, w_down);
	V("attn_q.bias", qd, qwen2, bq);
	V("attn_k.bias", kv, qwen2, bk);
	V("attn_v.bias", kv, qwen2, bv);
	V("attn_q_norm.weight", hp->head_dim, qwen3, q_norm);
	V("attn_k_norm.weight", hp->head_dim, qwen3, k_norm);
#undef W
#undef V
	return true;
}

static allot_err tensors(const struct gguf *g, struct llama_model *m, char *err, size_t errlen)
{
	const struct llama_hparams *hp = &m->hp;

	if (!wt(g, "token_embd.weight", hp->dim, hp->n_vocab, false, &m->tok_embd, err, errlen) ||
	    !wt(g, "output_norm.weight", hp->dim, 1, true, &m->out_norm, err, errlen))
		return ALLOT_E_INVALID;
	if (gguf_find_tensor(g, "output.weight")) {
		if (!wt(g, "output.weight", hp->dim, hp->n_vocab, false, &m->output, err, errlen))
			return ALLOT_E_INVALID;
	} else {
		m->output = m->tok_embd; /* tied */
	}
	if (gguf_find_tensor(g, "rope_freqs.weight")) {
		struct llama_wt f;

		if (!wt(g, "rope_freqs.weight", hp->head_dim / 2, 1, true, &f, err, errlen))
			return ALLOT_E_INVALID;
		for (int i = 0; i < hp->head_dim / 2; i++)
			if (!(((const float *)f.data)[i] > 0) || !isfinite(((const float *)f.data)[i])) {
				snprintf(err, errlen, "rope_freqs.weight[%d] is not a positive number", i);
				return ALLOT_E_INVALID;
			}
		m->rope_freqs = f.data;
	}
	m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
	if (!m->layers) {
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	for (int l = 0; l < hp->n_layer; l++) {
		const struct llama_layer *L = &m->layers[l];

		if (!layer(g, hp, l, &m->layers[l], err, errlen))
			return ALLOT_E_INVALID;
		m->weight_bytes += L->wq.row_bytes * (size_t)L->wq.rows + L->wk.row_bytes * (size_t)L->wk.rows +
			L->wv.row_bytes * (size_t)L->wv.rows + L->wo.row_bytes * (size_t)L->wo.rows +
			L->w_gate.row_bytes * (size_t)L->w_gate.rows + L->w_up.row_bytes * (size_t)L->w_up.rows +
			L->w_down.row_bytes * (size_t)L->w_down.rows;
	}
	m->weight_bytes += m->output.row_bytes * (size_t)m->output.rows;
	m->main_type = m->layers[0].wq.type;
	return ALLOT_OK;
}

allot_err llama_load_gguf(struct gguf *g, const char *name, struct llama_model **out,
			  char *err, size_t errlen)
{
	struct llama_model *m;
	const char *arch, *s, *pre = NULL;
	size_t alen, slen;
	allot_err e = ALLOT_E_INVALID;

	m = calloc(1, sizeof *m);
	if (!m) {
		gguf_free(g);
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	m->gguf = g;
	if (!gguf_get_str(g, "general.architecture", &arch, &alen)) {
		snprintf(err, errlen, "general.architecture is missing");
		goto fail;
	}
	for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
		if (alen == strlen(ARCHS[i].name) && memcmp(arch, ARCHS[i].name, alen) == 0) {
			pre = ARCHS[i].name;
			m->hp.arch = ARCHS[i].arch;
		}
	if (!pre) {
		snprintf(err, errlen, "architecture \"%.*s\" is not supported (llama, qwen2 and qwen3 are)",
			 (int)(alen > 64 ? 64 : alen), arch);
		e = ALLOT_E_UNSUPPORTED;
		goto fail;
	}
	m->hp.rope_neox = m->hp.arch != LLAMA_ARCH_LLAMA;
	e = hparams(g, pre, &m->hp, err, errlen);
	if (e != ALLOT_OK)
		goto fail;
	e = tok_load(g, &m->vocab, err, errlen);
	if (e != ALLOT_OK)
		goto fail;
	m->hp.n_vocab = tok_n_vocab(m->vocab);
	e = tensors(g, m, err, errlen);
	if (e != ALLOT_OK)
		goto fail;
	if (gguf_get_str(g, "general.name", &s, &slen) && slen > 0)
		snprintf(m->name, sizeof m->name, "%.*s", (int)(slen < sizeof m->name ? slen : sizeof m->name - 1), s);
	else
		snprintf(m->name, sizeof m->name, "%s", name ? name : "model");
	if (gguf_get_str(g, "tokenizer.chat_template", &s, &slen)) {
		m->chat_template = malloc(slen + 1);
		if (!m->chat_template) {
			e = ALLOT_E_NOMEM;
			goto fail;
		}
		memcpy(m->chat_template, s, slen);
		m->chat_template[slen] = 0;
	}
	*out = m;
	return ALLOT_OK;
fail:
	llama_free(m);
	return e;
}

allot_err llama_load(const char *path, struct llama_model **out, char *err, size_t errlen)
{
	struct gguf *g;
	allot_err e = gguf_open(path, &g, err, errlen);
	const char *base = strrchr(path, '/');
	char name[128];

	if (e != ALLOT_OK)
		return e;
	snprintf(name, sizeof name, "%s", base ? base + 1 : path);
	if (strlen(name) > 5 && strcmp(name + strlen(name) - 5, ".gguf") == 0)
		name[strlen(name) - 5] = 0;
	e = llama_load_gguf(g, name, out, err, errlen);
	if (e == ALLOT_OK)
		(*out)->file_mapped = true;
	return e;
}
