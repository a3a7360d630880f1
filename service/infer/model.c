/* model.c — loading and validating a llama model from GGUF. */
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

allot_err llama_load_gguf(struct gguf *g, const char *name, struct llama_model **out,
			  char *err, size_t errlen)
{
	struct llama_model *m;
	struct llama_hparams *hp;
	const char *arch, *s;
	size_t alen, slen;
	allot_err e = ALLOT_E_INVALID;
	char key[96];

	m = calloc(1, sizeof *m);
	if (!m) {
		gguf_free(g);
		snprintf(err, errlen, "out of memory");
		return ALLOT_E_NOMEM;
	}
	m->gguf = g;
	hp = &m->hp;
	if (!gguf_get_str(g, "general.architecture", &arch, &alen)) {
		snprintf(err, errlen, "general.architecture is missing");
		goto fail;
	}
	if (alen != 5 || memcmp(arch, "llama", 5) != 0) {
		snprintf(err, errlen, "architecture \"%.*s\" is not supported", (int)(alen > 64 ? 64 : alen), arch);
		e = ALLOT_E_UNSUPPORTED;
		goto fail;
	}
#define INT(k, lo, hi, field, req) \
	if (!get_int(g, "llama." k, lo, hi, &hp->field, req, err, errlen)) goto fail
	INT("embedding_length", 1, LLAMA_MAX_DIM, dim, true);
	INT("block_count", 1, LLAMA_MAX_LAYERS, n_layer, true);
	INT("attention.head_count", 1, LLAMA_MAX_HEADS, n_head, true);
	hp->n_head_kv = hp->n_head;
	INT("attention.head_count_kv", 1, LLAMA_MAX_HEADS, n_head_kv, false);
	INT("feed_forward_length", 1, 4 * LLAMA_MAX_DIM, ffn, true);
	hp->n_ctx_train = 2048;
	INT("context_length", 1, LLAMA_MAX_CTX, n_ctx_train, false);
#undef INT
	if (hp->dim % hp->n_head || hp->n_head % hp->n_head_kv) {
		snprintf(err, errlen, "embedding_length %d / head_count %d / head_count_kv %d do not divide",
			 hp->dim, hp->n_head, hp->n_head_kv);
		goto fail;
	}
	hp->head_dim = hp->dim / hp->n_head;
	if (hp->head_dim % 2) {
		snprintf(err, errlen, "head dimension %d is odd", hp->head_dim);
		goto fail;
	}
	hp->n_rot = hp->head_dim;
	if (!get_int(g, "llama.rope.dimension_count", 2, hp->head_dim, &hp->n_rot, false, err, errlen))
		goto fail;
	if (hp->n_rot != hp->head_dim) {
		snprintf(err, errlen, "partial rotary embeddings (rope.dimension_count %d) are not supported", hp->n_rot);
		e = ALLOT_E_UNSUPPORTED;
		goto fail;
	}
	hp->rope_base = 10000.0f;
	if (gguf_find_key(g, "llama.rope.freq_base") >= 0 &&
	    (!gguf_get_f32(g, "llama.rope.freq_base", &hp->rope_base) || !(hp->rope_base > 1.0f) ||
	     !isfinite(hp->rope_base))) {
		snprintf(err, errlen, "llama.rope.freq_base is not a number above 1");
		goto fail;
	}
	hp->rms_eps = 1e-5f;
	if (gguf_find_key(g, "llama.attention.layer_norm_rms_epsilon") >= 0 &&
	    (!gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps) ||
	     !(hp->rms_eps > 0.0f) || hp->rms_eps > 1.0f)) {
		snprintf(err, errlen, "llama.attention.layer_norm_rms_epsilon is not in (0, 1]");
		goto fail;
	}
	if (gguf_find_key(g, "llama.rope.scaling.type") >= 0) {
		const char *st;
		size_t stl;

		if (gguf_get_str(g, "llama.rope.scaling.type", &st, &stl) &&
		    !(stl == 4 && memcmp(st, "none", 4) == 0)) {
			snprintf(err, errlen, "rope scaling \"%.*s\" is not supported", (int)(stl > 32 ? 32 : stl), st);
			e = ALLOT_E_UNSUPPORTED;
			goto fail;
		}
	}
	e = tok_load(g, &m->vocab, err, errlen);
	if (e != ALLOT_OK)
		goto fail;
	e = ALLOT_E_INVALID;
	hp->n_vocab = tok_n_vocab(m->vocab);
	{
		int kv = hp->n_head_kv * hp->head_dim, qd = hp->n_head * hp->head_dim;

		if (!wt(g, "token_embd.weight", hp->dim, hp->n_vocab, false, &m->tok_embd, err, errlen) ||
		    !wt(g, "output_norm.weight", hp->dim, 1, true, &m->out_norm, err, errlen))
			goto fail;
		if (gguf_find_tensor(g, "output.weight")) {
			if (!wt(g, "output.weight", hp->dim, hp->n_vocab, false, &m->output, err, errlen))
				goto fail;
		} else {
			m->output = m->tok_embd; /* tied */
		}
		m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
		if (!m->layers) {
			e = ALLOT_E_NOMEM;
			goto fail;
		}
		for (int l = 0; l < hp->n_layer; l++) {
			struct llama_layer *L = &m->layers[l];
#define W(n, c, r, f32, field) \
	snprintf(key, sizeof key, "blk.%d." n ".weight", l); \
	if (!wt(g, key, c, r, f32, &L->field, err, errlen)) goto fail
			W("attn_norm", hp->dim, 1, true, attn_norm);
			W("attn_q", hp->dim, qd, false, wq);
			W("attn_k", hp->dim, kv, false, wk);
			W("attn_v", hp->dim, kv, false, wv);
			W("attn_output", qd, hp->dim, false, wo);
			W("ffn_norm", hp->dim, 1, true, ffn_norm);
			W("ffn_gate", hp->dim, hp->ffn, false, w_gate);
			W("ffn_up", hp->dim, hp->ffn, false, w_up);
			W("ffn_down", hp->ffn, hp->dim, false, w_down);
#undef W
			m->weight_bytes += L->wq.row_bytes * (size_t)L->wq.rows + L->wk.row_bytes * (size_t)L->wk.rows +
				L->wv.row_bytes * (size_t)L->wv.rows + L->wo.row_bytes * (size_t)L->wo.rows +
				L->w_gate.row_bytes * (size_t)L->w_gate.rows + L->w_up.row_bytes * (size_t)L->w_up.rows +
				L->w_down.row_bytes * (size_t)L->w_down.rows;
		}
		m->weight_bytes += m->output.row_bytes * (size_t)m->output.rows;
		m->main_type = m->layers[0].wq.type;
	}
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
