/* model.h — a llama-family model (architectures `llama`, `qwen2`, `qwen3`):
 * hyper-parameters and weight views into the mapped GGUF file, plus its
 * vocabulary.
 *
 * llama_load() validates the architecture, every hyper-parameter and the
 * shape and type of every tensor it will read, so the forward pass needs no
 * checks.  The model is immutable afterwards and may be shared by threads;
 * weights stay in the read-only mapping (never copied, never dequantized).
 */
#ifndef ALLOT_INFER_MODEL_H
#define ALLOT_INFER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct gguf;
struct tok_vocab;

/* A weight matrix: rows of `cols` elements of ggml type `type`. */
struct llama_wt {
	const void *data;       /* into the mapping */
	uint32_t type;
	int64_t cols, rows;
	size_t row_bytes;
};

struct llama_layer {
	struct llama_wt attn_norm;  /* [dim] F32 */
	struct llama_wt wq;         /* [n_head*head_dim rows][dim] */
	struct llama_wt wk, wv;     /* [n_head_kv*head_dim rows][dim] */
	struct llama_wt wo;         /* [dim rows][n_head*head_dim] */
	struct llama_wt ffn_norm;   /* [dim] F32 */
	struct llama_wt w_gate;     /* [ffn rows][dim] */
	struct llama_wt w_up;       /* [ffn rows][dim] */
	struct llama_wt w_down;     /* [dim rows][ffn] */
	/* optional (data NULL when absent), all F32 vectors: */
	struct llama_wt bq, bk, bv; /* attention biases [qdim], [kv_dim], [kv_dim] (qwen2) */
	struct llama_wt q_norm, k_norm; /* per-head RMSNorm of queries and keys [head_dim] (qwen3) */
};

enum llama_arch { LLAMA_ARCH_LLAMA, LLAMA_ARCH_QWEN2, LLAMA_ARCH_QWEN3 };

struct llama_hparams {
	int n_vocab;
	int dim;
	int n_layer;
	int n_head;
	int n_head_kv;
	int head_dim;           /* <arch>.attention.key_length, default dim / n_head */
	int n_rot;              /* rotated dimensions per head (= head_dim) */
	enum llama_arch arch;
	bool rope_neox;         /* rotate (x[i], x[i + head_dim / 2]) (qwen2, qwen3), not
				 * adjacent pairs (llama) */
	float rope_freq_scale;  /* 1 / rope.scaling.factor for "linear" scaling, else 1 */
	int ffn;
	int n_ctx_train;        /* llama.context_length */
	float rope_base;        /* llama.rope.freq_base, default 10000 */
	float rms_eps;          /* llama.attention.layer_norm_rms_epsilon, default 1e-5 */
};

struct llama_model {
	struct gguf *gguf;      /* owned */
	struct tok_vocab *vocab; /* owned */
	struct llama_hparams hp;
	struct llama_wt tok_embd;   /* [n_vocab rows][dim], any type */
	struct llama_wt out_norm;   /* [dim] F32 */
	struct llama_wt output;     /* [n_vocab rows][dim]; = tok_embd when tied */
	const float *rope_freqs;    /* rope_freqs.weight [head_dim / 2] F32 (Llama 3.1+):
				     * each pair's frequency is divided by its factor; or NULL */
	struct llama_layer *layers; /* [n_layer], from malloc() */
	char name[128];         /* general.name, else the file's base name */
	char *chat_template;    /* tokenizer.chat_template or NULL; from malloc() */
	uint32_t main_type;     /* type of the attention weights (for display) */
	size_t weight_bytes;    /* bytes read per token by a forward pass */
	bool file_mapped;       /* weights are in a read-only file mapping
				 * (llama_load), not a caller's buffer */
};

/* Opens path (mmap) and validates it. err: one line of errlen bytes. */
allot_err llama_load(const char *path, struct llama_model **out, char *err, size_t errlen);
/* The same over a parsed image; takes ownership of g (also on failure). */
allot_err llama_load_gguf(struct gguf *g, const char *name, struct llama_model **out,
			  char *err, size_t errlen);
void llama_free(struct llama_model *m);

#endif
