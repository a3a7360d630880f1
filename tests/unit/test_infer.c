/* test_infer.c — the llama forward pass: stories260K against llama2.c's
 * reference text, against a plain scalar implementation written here, and
 * the quantized files; model loading errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "infer/backend.h"
#include "infer/gguf.h"
#include "infer/gguf_write.h"
#include "infer/kernels.h"
#include "infer/model.h"
#include "infer/tok.h"
#include "support/xorshift.h"

#define MODELS "../shared/models/"

static const char REFERENCE[] =
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
	"One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
	"Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
	"She said, \"I want to play with your ball, but I can't find it.\"\n"
	"Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
	"Lily didn't want to help her mom, so she";

static struct llama_model *load(const char *file)
{
	struct llama_model *m = NULL;
	char err[256];
	allot_err e = llama_load(file, &m, err, sizeof err);

	if (e == ALLOT_E_NOT_FOUND) {
		printf("skipped: %s absent\n", file);
		return NULL;
	}
	if (e != ALLOT_OK)
		fail_msg("%s: %s", file, err);
	return m;
}

/* Greedy decoding from BOS for n positions through the backend. */
static int greedy(const struct llama_model *m, int threads, int n, int32_t *out)
{
	struct infer_backend_params p = {.n_threads = threads, .n_slots = 1, .n_ctx = 256, .max_batch = 8};
	void *st;
	char err[256];
	float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
	int32_t tok = tok_bos(m->vocab), k = 0;

	assert_int_equal(infer_backend_cpu.load(m, &p, &st, err, sizeof err), ALLOT_OK);
	for (int pos = 0; pos < n; pos++) {
		int32_t slot = 0;
		uint8_t want = 1;
		struct infer_batch b = {1, &tok, &pos, &slot, &want};
		int best = 0;

		assert_int_equal(infer_backend_cpu.forward(st, &b, logits), ALLOT_OK);
		for (int i = 1; i < m->hp.n_vocab; i++)
			if (logits[i] > logits[best])
				best = i;
		if (best == tok_eos(m->vocab))
			break;
		out[k++] = tok = best;
	}
	infer_backend_cpu.free(st);
	free(logits);
	return k;
}

static void test_stories_reference(void **state)
{
	(void)state;
	static const char *const files[] = {MODELS "stories260K.gguf", MODELS "stories260K-f16.gguf"};

	for (size_t f = 0; f < 2; f++) {
		struct llama_model *m = load(files[f]);
		int32_t ids[256];
		int n;
		struct buf b = BUF_INIT;

		if (!m)
			return;
		n = greedy(m, 2, 200, ids);
		tok_decode(m->vocab, ids, (size_t)n, false, &b);
		if (strcmp(buf_str(&b), REFERENCE) != 0)
			fail_msg("%s: %d tokens give\n%s", files[f], n, buf_str(&b));
		printf("stories: %s reproduces the reference (%d tokens)\n", files[f], n);
		buf_release(&b);
		llama_free(m);
	}
}

static void test_stories_quantized(void **state)
{
	(void)state;
	static const char *const files[] = {MODELS "stories260K-q8_0.gguf", MODELS "stories260K-q4_0.gguf"};
	static const int same[] = {20, 8};
	struct llama_model *ref = load(MODELS "stories260K.gguf");
	int32_t want[256];
	int nw;

	if (!ref)
		return;
	nw = greedy(ref, 1, 200, want);
	for (size_t f = 0; f < 2; f++) {
		struct llama_model *m = load(files[f]);
		int32_t ids[256];
		int n, agree = 0;
		struct buf b = BUF_INIT;

		if (!m)
			continue;
		n = greedy(m, 2, 200, ids);
		while (agree < n && agree < nw && ids[agree] == want[agree])
			agree++;
		tok_decode(m->vocab, ids, (size_t)n, false, &b);
		printf("stories %s: first %d tokens as F32: \"%.60s...\"\n", files[f], agree, buf_str(&b));
		assert_true(agree >= same[f]);
		assert_true(strncmp(buf_str(&b), "Once upon a time", 16) == 0);
		buf_release(&b);
		llama_free(m);
	}
	llama_free(ref);
}

/* ---- a plain scalar llama, written from the equations ---------------------- */

struct ref {
	const struct llama_model *m;
	float *kc, *vc; /* [layer][pos][kv_dim] */
	int n_ctx;
};

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

static void ref_forward(struct ref *r, int tok, int pos, float *logits)
{
	const struct llama_hparams *hp = &r->m->hp;
	int dim = hp->dim, hd = hp->head_dim, kvd = hp->n_head_kv * hd, qd = hp->n_head * hd;
	float *x = calloc((size_t)dim, 4), *xb = calloc((size_t)qd + dim, 4), *q = calloc((size_t)qd, 4);
	float *k = calloc((size_t)kvd, 4), *v = calloc((size_t)kvd, 4), *att = calloc((size_t)pos + 1, 4);
	float *o = calloc((size_t)qd, 4), *h1 = calloc((size_t)hp->ffn, 4), *h3 = calloc((size_t)hp->ffn, 4);

	kern_dequant_row(r->m->tok_embd.type, dim, (const char *)r->m->tok_embd.data + (size_t)tok * r->m->tok_embd.row_bytes, x);
	for (int l = 0; l < hp->n_layer; l++) {
		const struct llama_layer *L = &r->m->layers[l];

		ref_rmsnorm(xb, x, L->attn_norm.data, dim, hp->rms_eps);
		ref_matvec(&L->wq, xb, q);
		ref_matvec(&L->wk, xb, k);
		ref_matvec(&L->wv, xb, v);
		for (int i = 0; i < qd; i += 2) {
			int j = i % hd;
			double th = pos * pow(hp->rope_base, -(double)j / hd);
			float c = (float)cos(th), s = (float)sin(th), a, b;

			a = q[i]; b = q[i + 1];
			q[i] = a * c - b * s; q[i + 1] = a * s + b * c;
			if (i < kvd) {
				a = k[i]; b = k[i + 1];
				k[i] = a * c - b * s; k[i + 1] = a * s + b * c;
			}
		}
		memcpy(r->kc + ((size_t)l * r->n_ctx + pos) * kvd, k, (size_t)kvd * 4);
		memcpy(r->vc + ((size_t)l * r->n_ctx + pos) * kvd, v, (size_t)kvd * 4);
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
	free(x); free(xb); free(q); free(k); free(v); free(att); free(o); free(h1); free(h3);
}

/* Optimized logits (batched prompt, then single steps) vs the reference. */
/* The forward pass of `file` over a 16-token prompt in chunks of max_batch
 * against ref_forward: F32 in chunks of 5 (the 4-row tiles), F16 in one
 * chunk of 16 (with AMX-BF16, its split-bf16 tiles) */
static void against_scalar(const char *file, int max_batch)
{
	struct llama_model *m = load(file);
	static const int32_t toks[] = {1, 403, 407, 261, 378, 29, 302, 362, 261, 1000 % 512, 42, 7, 300, 301, 302, 303};
	enum { N = sizeof toks / sizeof toks[0] };
	struct infer_backend_params p = {.n_threads = 2, .n_slots = 2, .n_ctx = 64, .max_batch = max_batch};
	struct ref r;
	void *st;
	char err[256];
	float *lo, *lr;
	int32_t pos[N], slot[N];
	uint8_t want[N];
	double maxdiff = 0;

	if (!m)
		return;
	r.m = m;
	r.n_ctx = 64;
	r.kc = calloc((size_t)m->hp.n_layer * 64 * m->hp.dim, 4);
	r.vc = calloc((size_t)m->hp.n_layer * 64 * m->hp.dim, 4);
	lo = malloc((size_t)N * m->hp.n_vocab * 4);
	lr = malloc((size_t)m->hp.n_vocab * 4);
	assert_int_equal(infer_backend_cpu.load(m, &p, &st, err, sizeof err), ALLOT_OK);
	for (int i = 0; i < N; i++) {
		pos[i] = i;
		slot[i] = 1;
		want[i] = 1;
	}
	{
		/* the whole prompt in one batch (split internally into chunks of 5) */
		struct infer_batch b = {N, toks, pos, slot, want};

		assert_int_equal(infer_backend_cpu.forward(st, &b, lo), ALLOT_OK);
	}
	for (int i = 0; i < N; i++) {
		ref_forward(&r, toks[i], i, lr);
		for (int v = 0; v < m->hp.n_vocab; v++) {
			double d = fabs((double)lo[(size_t)i * m->hp.n_vocab + v] - lr[v]);

			if (d > maxdiff)
				maxdiff = d;
		}
	}
	printf("forward vs scalar reference (%s, batches of %d): max |logit diff| %.3g over %d positions (%s)\n",
	       file, max_batch, maxdiff, N, infer_backend_cpu.describe(st));
	assert_true(maxdiff < 1e-4);
	/* bad batches are refused */
	{
		int32_t bad = m->hp.n_vocab, p0 = 0, s0 = 0;
		uint8_t w = 1;
		struct infer_batch b = {1, &bad, &p0, &s0, &w};

		assert_int_equal(infer_backend_cpu.forward(st, &b, lo), ALLOT_E_INVALID);
		bad = 1;
		p0 = 64;
		assert_int_equal(infer_backend_cpu.forward(st, &b, lo), ALLOT_E_INVALID);
	}
	infer_backend_cpu.free(st);
	free(lo); free(lr); free(r.kc); free(r.vc);
	llama_free(m);
}

static void test_against_scalar(void **state)
{
	(void)state;
	against_scalar(MODELS "stories260K.gguf", 5);
	against_scalar(MODELS "stories260K-f16.gguf", 16);
}

/* A small random model (dim 128, so the repacked layouts apply) built in
 * memory: the repacked AVX-512 path, the plain AVX2 path and the scalar
 * reference must agree. */
static uint64_t trng = 0x1234567;
static float trand(void)
{
	return xorshift_unit(&trng);
}

static void *rand_tensor(uint32_t type, int64_t cols, int64_t rows, float scale)
{
	size_t rb = ggml_row_size(type, cols);
	char *d = malloc(rb * (size_t)rows);
	float *row = malloc((size_t)cols * sizeof *row);

	for (int64_t r = 0; r < rows; r++) {
		for (int64_t i = 0; i < cols; i++)
			row[i] = type == GGML_F32 && scale == 0 ? 1.0f : trand() * scale;
		if (type == GGML_Q4_0)
			kern_quantize_q4_0((int)cols, row, d + r * rb);
		else if (type == GGML_Q8_0)
			kern_quantize_q8_0((int)cols, row, d + r * rb);
		else
			memcpy(d + r * rb, row, rb);
	}
	free(row);
	return d;
}

static struct llama_model *tiny_model(uint32_t type, bool tied, struct buf *img, void **bufs, int *nb)
{
	enum { DIM = 128, L = 2, H = 4, KV = 2, FF = 256, V = 260 };
	struct gguf_writer *w = gguf_writer_new();
	const char *toks[V];
	char names[V][8];
	struct gguf *g;
	struct llama_model *m;
	char err[256];

	for (int i = 0; i < V; i++) {
		if (i < 3)
			toks[i] = (const char *[]){"<unk>", "<s>", "</s>"}[i];
		else if (i < 259)
			snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3), toks[i] = names[i];
		else
			toks[i] = "\xe2\x96\x81\x61";
	}
	gguf_writer_str(w, "general.architecture", "llama");
	gguf_writer_u32(w, "llama.context_length", 64);
	gguf_writer_u32(w, "llama.embedding_length", DIM);
	gguf_writer_u32(w, "llama.block_count", L);
	gguf_writer_u32(w, "llama.feed_forward_length", FF);
	gguf_writer_u32(w, "llama.attention.head_count", H);
	gguf_writer_u32(w, "llama.attention.head_count_kv", KV);
	gguf_writer_str(w, "tokenizer.ggml.model", "llama");
	gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, V);
	*nb = 0;
#define T(name, ty, c, r, sc) do { \
	int64_t ne[2] = {c, r}; \
	bufs[*nb] = rand_tensor(ty, c, r, sc); \
	gguf_writer_tensor(w, name, ty, r == 1 ? 1 : 2, ne, bufs[*nb]); \
	(*nb)++; \
} while (0)
	T("token_embd.weight", type, DIM, V, 1.0f);
	T("output_norm.weight", GGML_F32, DIM, 1, 0.0f);
	if (!tied)
		T("output.weight", type, DIM, V, 0.1f);
	for (int l = 0; l < L; l++) {
		char nm[64];

#define LT(suffix, ty, c, r, sc) snprintf(nm, sizeof nm, "blk.%d." suffix ".weight", l); T(nm, ty, c, r, sc)
		LT("attn_norm", GGML_F32, DIM, 1, 0.0f);
		LT("attn_q", type, DIM, DIM, 0.1f);
		LT("attn_k", type, DIM, KV * DIM / H, 0.1f);
		LT("attn_v", type, DIM, KV * DIM / H, 0.1f);
		LT("attn_output", type, DIM, DIM, 0.1f);
		LT("ffn_norm", GGML_F32, DIM, 1, 0.0f);
		LT("ffn_gate", type, DIM, FF, 0.1f);
		LT("ffn_up", type, DIM, FF, 0.1f);
		LT("ffn_down", type, FF, DIM, 0.07f);
#undef LT
	}
#undef T
	assert_int_equal(gguf_writer_to_buf(w, img), ALLOT_OK);
	gguf_writer_free(w);
	assert_int_equal(gguf_parse(img->data, img->len, &g, err, sizeof err), ALLOT_OK);
	if (llama_load_gguf(g, "tiny", &m, err, sizeof err) != ALLOT_OK)
		fail_msg("%s", err);
	return m;
}

static void run_logits(const struct llama_model *m, const char *kernels, float *out, int n, char *desc,
		       bool one_by_one)
{
	struct infer_backend_params p = {.n_threads = 2, .n_slots = 2, .n_ctx = 64, .max_batch = 20};
	int32_t tok[32], pos[32], slot[32];
	uint8_t want[32];
	void *st;
	char err[256];

	if (kernels)
		setenv("ALLOT_KERNELS", kernels, 1);
	else
		unsetenv("ALLOT_KERNELS");
	assert_int_equal(infer_backend_cpu.load(m, &p, &st, err, sizeof err), ALLOT_OK);
	unsetenv("ALLOT_KERNELS");
	for (int i = 0; i < n; i++) {
		tok[i] = (i * 37 + 5) % m->hp.n_vocab;
		pos[i] = i;
		slot[i] = 1;
		want[i] = 1;
	}
	/* passes of 20 (AMX tiles of 16 + 4), 8 (narrow AMX tiles) and 2
	 * (VNNI) tokens, or one token per pass (VNNI) */
	for (int t0 = 0, k = 0; t0 < n; k++) {
		static const int step[] = {20, 8, 2};
		int c = one_by_one ? 1 : n - t0 < step[k % 3] ? n - t0 : step[k % 3];
		struct infer_batch b = {c, tok + t0, pos + t0, slot + t0, want + t0};

		assert_int_equal(infer_backend_cpu.forward(st, &b, out + (size_t)t0 * m->hp.n_vocab), ALLOT_OK);
		t0 += c;
	}
	snprintf(desc, 64, "%s", infer_backend_cpu.describe(st));
	infer_backend_cpu.free(st);
}

static void test_repacked_model(void **state)
{
	(void)state;
	static const uint32_t types[] = {GGML_Q4_0, GGML_Q8_0, GGML_Q8_0};

	for (size_t ti = 0; ti < 3; ti++) {
		struct buf img = BUF_INIT;
		void *bufs[64];
		int nb, n = 30; /* passes of 20, 8 and 2 tokens */
		struct llama_model *m = tiny_model(types[ti], ti == 2, &img, bufs, &nb);
		size_t nv = (size_t)m->hp.n_vocab;
		float *a = malloc(n * nv * 4), *b = malloc(n * nv * 4), *r = malloc(nv * 4), *b2 = malloc(n * nv * 4);
		double dab = 0, dref = 0, mag = 0;
		char da[64], db[64];
		struct ref rf = {m, calloc((size_t)m->hp.n_layer * 64 * m->hp.dim, 4),
				 calloc((size_t)m->hp.n_layer * 64 * m->hp.dim, 4), 64};

		run_logits(m, "avx2", b, n, db, false);
		/* one token at a time: the same bits as in the batches (the
		 * VNNI and AMX tiles share their arithmetic) */
		run_logits(m, NULL, a, n, da, true);
		memcpy(b2, a, n * nv * 4);
		run_logits(m, NULL, a, n, da, false);
		assert_memory_equal(a, b2, n * nv * 4);
		for (int i = 0; i < n; i++) {
			ref_forward(&rf, (i * 37 + 5) % m->hp.n_vocab, i, r);
			for (size_t v = 0; v < nv; v++) {
				dab = fmax(dab, fabs(a[i * nv + v] - b[i * nv + v]));
				dref = fmax(dref, fabs(a[i * nv + v] - r[v]));
				mag = fmax(mag, fabs(r[v]));
			}
		}
		printf("tiny %s model%s: [%s] vs [%s] max diff %.2g; vs float reference %.2g (logits up to %.2g)\n",
		       ggml_type_name(types[ti]), ti == 2 ? " (tied output)" : "", da, db, dab, dref, mag);
		assert_true(ti == 2 ? m->output.data == m->tok_embd.data : m->output.data != m->tok_embd.data);
		/* the kernels differ in float rounding only, but a hidden value
		 * that lands next to a rounding boundary of the 8-bit activations
		 * rounds the other way, and in a model this small one such step
		 * moves the logits by up to about 0.5% of their range (a wrong
		 * row or scale moves them by their whole range) */
		assert_true(dab < 1e-2 * (mag + 1));
		assert_true(dref < 0.05 * (mag + 1)); /* 8-bit activations */
		free(a); free(b); free(b2); free(r); free(rf.kc); free(rf.vc);
		llama_free(m);
		for (int i = 0; i < nb; i++)
			free(bufs[i]);
		buf_release(&img);
	}
}

static void test_load_errors(void **state)
{
	(void)state;
	struct gguf_writer *w = gguf_writer_new();
	struct buf b = BUF_INIT;
	struct gguf *g;
	struct llama_model *m;
	char err[256];

	gguf_writer_str(w, "general.architecture", "xyz");
	assert_int_equal(gguf_writer_to_buf(w, &b), ALLOT_OK);
	assert_int_equal(gguf_parse(b.data, b.len, &g, err, sizeof err), ALLOT_OK);
	assert_int_equal(llama_load_gguf(g, "x", &m, err, sizeof err), ALLOT_E_UNSUPPORTED);
	assert_string_equal(err, "architecture \"xyz\" is not supported");
	gguf_writer_free(w);
	buf_release(&b);

	w = gguf_writer_new();
	gguf_writer_str(w, "general.architecture", "llama");
	gguf_writer_u32(w, "llama.embedding_length", 64);
	gguf_writer_u32(w, "llama.block_count", 1);
	gguf_writer_u32(w, "llama.attention.head_count", 6);
	gguf_writer_u32(w, "llama.feed_forward_length", 8);
	assert_int_equal(gguf_writer_to_buf(w, &b), ALLOT_OK);
	assert_int_equal(gguf_parse(b.data, b.len, &g, err, sizeof err), ALLOT_OK);
	assert_int_equal(llama_load_gguf(g, "x", &m, err, sizeof err), ALLOT_E_INVALID);
	assert_non_null(strstr(err, "do not divide"));
	gguf_writer_free(w);
	buf_release(&b);

	w = gguf_writer_new();
	gguf_writer_str(w, "general.architecture", "llama");
	gguf_writer_u32(w, "llama.embedding_length", 64);
	gguf_writer_u32(w, "llama.block_count", 1);
	gguf_writer_u32(w, "llama.attention.head_count", 8);
	gguf_writer_u32(w, "llama.feed_forward_length", 8);
	gguf_writer_str(w, "tokenizer.ggml.model", "llama");
	{
		const char *toks[3] = {"<unk>", "<s>", "</s>"};

		gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, 3);
	}
	assert_int_equal(gguf_writer_to_buf(w, &b), ALLOT_OK);
	assert_int_equal(gguf_parse(b.data, b.len, &g, err, sizeof err), ALLOT_OK);
	assert_int_equal(llama_load_gguf(g, "x", &m, err, sizeof err), ALLOT_E_INVALID);
	assert_string_equal(err, "tensor \"token_embd.weight\" is missing");
	gguf_writer_free(w);
	buf_release(&b);

	assert_int_equal(llama_load("/nonexistent.gguf", &m, err, sizeof err), ALLOT_E_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stories_reference),
		cmocka_unit_test(test_stories_quantized),
		cmocka_unit_test(test_against_scalar),
		cmocka_unit_test(test_repacked_model),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
