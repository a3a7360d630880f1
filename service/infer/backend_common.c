/* backend_common.c — the model-description code the CPU and CUDA backends
 * share (infer/backend_common.h). */
#include "infer/backend_common.h"

#include <math.h>

#include "infer/kernels.h"

const struct llama_wt *bk_layer_mat(const struct llama_layer *L, int i)
{
	const struct llama_wt *w[BK_LAYER_MATS] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
						   &L->w_down};

	return w[i];
}

int bk_widest(const struct llama_hparams *hp)
{
	int w = hp->dim > hp->ffn ? hp->dim : hp->ffn, qdim = hp->n_head * hp->head_dim;

	return w > qdim ? w : qdim;
}

bool bk_batch_ok(const struct llama_hparams *hp, const struct infer_batch *b, int n_slots, int n_ctx)
{
	for (int t = 0; t < b->n_tokens; t++)
		if (b->token[t] < 0 || b->token[t] >= hp->n_vocab || b->pos[t] < 0 || b->pos[t] >= n_ctx ||
		    b->slot[t] < 0 || b->slot[t] >= n_slots)
			return false;
	return true;
}

bool bk_copy_ok(int src, int dst, int n_pos, int n_slots, int n_ctx)
{
	return src >= 0 && src < n_slots && dst >= 0 && dst < n_slots && n_pos >= 0 && n_pos <= n_ctx;
}

void bk_stage(const struct llama_model *m, const struct infer_batch *b, int t0, int n, float *x, float *rcos,
	      float *rsin)
{
	const struct llama_hparams *hp = &m->hp;
	const struct llama_wt *e = &m->tok_embd;
	int dim = hp->dim, hd = hp->head_dim;

	for (int t = 0; t < n; t++) {
		int p = b->pos[t0 + t];

		kern_dequant_row(e->type, dim, (const char *)e->data + (size_t)b->token[t0 + t] * e->row_bytes,
				 x + (size_t)t * dim);
		for (int i = 0; i < hd / 2; i++) {
			float freq = hp->rope_freq_scale / powf(hp->rope_base, (float)(2 * i) / (float)hd);
			float v;

			if (m->rope_freqs)
				freq /= m->rope_freqs[i];
			v = (float)p * freq;
			rcos[(size_t)t * (hd / 2) + i] = cosf(v);
			rsin[(size_t)t * (hd / 2) + i] = sinf(v);
		}
	}
}
