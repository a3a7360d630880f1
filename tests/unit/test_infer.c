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
#include "support/inferref.h"

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
		/* ../shared is not beside the checkout: a skip, never a pass */
		printf("skipped: %s absent\n", file);
		skip();
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
	struct inferref r;
	void *st;
	char err[256];
	float *lo, *lr;
	int32_t pos[N], slot[N];
	uint8_t want[N];
	double maxdiff = 0;

	if (!m)
		return;
	inferref_init(&r, m, 64);
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
		inferref_forward(&r, toks[i], i, lr);
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
	free(lo); free(lr);
	inferref_free(&r);
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
		int n = 30; /* passes of 20, 8 and 2 tokens */
		struct tiny_spec spec = {.dim = 128, .ffn = 256, .type = types[ti], .tied = ti == 2, .seed = 0x1234567 + ti};
		struct llama_model *m = tiny_model_build(&spec, &img);
		size_t nv = (size_t)m->hp.n_vocab;
		float *a = malloc(n * nv * 4), *b = malloc(n * nv * 4), *r = malloc(nv * 4), *b2 = malloc(n * nv * 4);
		double dab = 0, dref = 0, mag = 0;
		char da[64], db[64];
		struct inferref rf;

		inferref_init(&rf, m, 64);

		run_logits(m, "avx2", b, n, db, false);
		/* one token at a time: the same bits as in the batches (the
		 * VNNI and AMX tiles share their arithmetic) */
		run_logits(m, NULL, a, n, da, true);
		memcpy(b2, a, n * nv * 4);
		run_logits(m, NULL, a, n, da, false);
		assert_memory_equal(a, b2, n * nv * 4);
		for (int i = 0; i < n; i++) {
			inferref_forward(&rf, (i * 37 + 5) % m->hp.n_vocab, i, r);
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
		free(a); free(b); free(b2); free(r);
		inferref_free(&rf);
		llama_free(m);
		buf_release(&img);
	}
}

/* Whether a model has K-quant matrices: the avx512 table's tiles take
 * their activations with one scale per 256 values (kern_q8r_k), the other
 * tables with one per 32, so the tables differ by that rounding too (as
 * llama.cpp's Q8_K against Q8_0): between tables, 3e-2 x (mag + 1) for
 * them (0.085 at most here, logits up to 4.2), 1e-2 for the others. */
static bool has_kquant(const struct tiny_spec *s)
{
	const uint32_t t[4] = {s->type, s->embd_type, s->out_type, s->v_down_type};

	for (int i = 0; i < 4; i++)
		if (t[i] == GGML_Q4_K || t[i] == GGML_Q5_K || t[i] == GGML_Q6_K)
			return true;
	return false;
}

/* A model in each new weight type, and mixes as llama.cpp writes them,
 * against the same model in F32 (the same float weights before
 * quantization) and against the scalar reference on its own (dequantized)
 * weights; the best, avx2 and scalar kernel tables against each other. */
static void test_quant_models(void **state)
{
	(void)state;
	/* Bounds on the RMS of (logits - F32 logits) relative to the RMS of
	 * the F32 logits.  Weight quantization noise of relative RMS e (the
	 * round trips of test_infer_quants: 4-bit 0.06-0.09, 5-bit 0.03,
	 * Q6_K 0.015) enters each of the products along the residual path of
	 * this 2-layer model independently; the logits moved by 2-3 e here
	 * (0.16, 0.08, 0.04), and the bounds are about twice that: 4-bit
	 * 0.35, 5-bit 0.15, 6-bit 0.08, mixes per their coarsest type.  A
	 * wrong layout, scale or min moves them by their whole RMS (1.0). */
	static const struct { const char *what; struct tiny_spec s; double bound; } cases[] = {
		{"Q4_1", {.type = GGML_Q4_1}, 0.35},
		{"Q5_0", {.type = GGML_Q5_0}, 0.15},
		{"Q5_1", {.type = GGML_Q5_1}, 0.15},
		{"Q4_K", {.type = GGML_Q4_K}, 0.35},
		{"Q5_K", {.type = GGML_Q5_K}, 0.15},
		{"Q6_K", {.type = GGML_Q6_K}, 0.08},
		{"Q4_0 with a Q6_K output (llama-quantize Q4_0)", {.type = GGML_Q4_0, .out_type = GGML_Q6_K}, 0.35},
		{"Q4_K_M mix (Q6_K attn_v, ffn_down, output)",
		 {.type = GGML_Q4_K, .v_down_type = GGML_Q6_K, .out_type = GGML_Q6_K}, 0.35},
		{"Q5_K, tied Q6_K embeddings", {.type = GGML_Q5_K, .embd_type = GGML_Q6_K, .tied = true}, 0.15},
		{"Q5_0 with Q8_0 attn_v, ffn_down", {.type = GGML_Q5_0, .v_down_type = GGML_Q8_0}, 0.15},
	};
	enum { N = 30 };

	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct tiny_spec sp = cases[ci].s, fs = {.dim = 256, .ffn = 512, .type = GGML_F32, .tied = sp.tied,
							 .seed = 0xabcdef};
		struct buf img = BUF_INIT, fimg = BUF_INIT;
		struct llama_model *m, *mf;
		struct inferref rf;
		float *a, *b, *c, *f, *r;
		double dab = 0, dac = 0, dref = 0, mag = 0, se = 0, sf = 0;
		char da[64], db[64], dc[64], dfs[64];
		size_t nv;

		sp.dim = 256; /* the K-quants' rows are multiples of 256 */
		sp.ffn = 512;
		sp.seed = fs.seed;
		m = tiny_model_build(&sp, &img);
		mf = tiny_model_build(&fs, &fimg);
		nv = (size_t)m->hp.n_vocab;
		a = malloc(N * nv * 4); b = malloc(N * nv * 4); c = malloc(N * nv * 4); f = malloc(N * nv * 4);
		r = malloc(nv * 4);
		run_logits(m, NULL, a, N, da, false);
		run_logits(m, "avx2", b, N, db, false);
		run_logits(mf, NULL, f, N, dfs, false);
		/* one token per pass: the same bits as the batches (every
		 * kernel's arithmetic per token is independent of the batch) */
		run_logits(m, NULL, c, N, dc, true);
		assert_memory_equal(a, c, N * nv * 4);
		run_logits(m, "scalar", c, N, dc, false);
		inferref_init(&rf, m, 64);
		for (int i = 0; i < N; i++) {
			inferref_forward(&rf, (i * 37 + 5) % m->hp.n_vocab, i, r);
			for (size_t v = 0; v < nv; v++) {
				dab = fmax(dab, fabs(a[i * nv + v] - b[i * nv + v]));
				dac = fmax(dac, fabs(a[i * nv + v] - c[i * nv + v]));
				dref = fmax(dref, fabs(a[i * nv + v] - r[v]));
				mag = fmax(mag, fabs(r[v]));
				se += ((double)a[i * nv + v] - f[i * nv + v]) * ((double)a[i * nv + v] - f[i * nv + v]);
				sf += (double)f[i * nv + v] * f[i * nv + v];
			}
		}
		printf("tiny %s: [%s] vs [%s] %.2g, vs [%s] %.2g; vs scalar reference %.2g (logits up to %.2g); "
		       "vs F32 relative RMS %.4f (bound %.2f)\n", cases[ci].what, da, db, dab, dc, dac, dref, mag,
		       sqrt(se / sf), cases[ci].bound);
		/* as test_repacked_model: 8-bit activations, rounding steps */
		assert_true(dab < (has_kquant(&sp) ? 3e-2 : 1e-2) * (mag + 1));
		assert_true(dac < (has_kquant(&sp) ? 3e-2 : 1e-2) * (mag + 1));
		assert_true(dref < 0.05 * (mag + 1));
		assert_true(sqrt(se / sf) < cases[ci].bound);
		assert_true(sp.tied ? m->output.data == m->tok_embd.data : m->output.data != m->tok_embd.data);
		free(a); free(b); free(c); free(f); free(r);
		inferref_free(&rf);
		llama_free(m);
		llama_free(mf);
		buf_release(&img);
		buf_release(&fimg);
	}
}

/* Each architecture's features on a small random model against the
 * scalar reference (written from the equations in support/inferref.c):
 * F32 weights, so the two agree to float rounding (bound 1e-4 as for
 * stories260K); quantized ones within the 8-bit-activation bound of
 * test_repacked_model.  Rope modes, biases, norms, frequency factors and
 * scaling each move the logits by far more than the bound when wrong. */
static void test_architectures(void **state)
{
	(void)state;
	static const struct { const char *what; struct tiny_spec s; } cases[] = {
		{"llama, Llama 3 rope (base 500000, rope_freqs), tied",
		 {.type = GGML_F32, .rope_base = 500000.0f, .rope_freqs = true, .tied = true}},
		{"llama, linear rope scaling x4", {.type = GGML_F32, .rope_scaling = "linear", .rope_factor = 4.0f}},
		{"qwen2 (QKV biases, neox rope, base 1e6), tied",
		 {.type = GGML_F32, .arch = "qwen2", .rope_base = 1e6f, .tied = true}},
		{"qwen3 (QK norms, head_dim 64 > dim / heads)",
		 {.type = GGML_F32, .arch = "qwen3", .head_dim = 64, .rope_base = 1e6f}},
		{"qwen2 Q8_0", {.type = GGML_Q8_0, .arch = "qwen2", .dim = 128}},
		{"qwen3 Q4_K, Q6_K output", {.type = GGML_Q4_K, .out_type = GGML_Q6_K, .arch = "qwen3", .dim = 256}},
		{"llama Q5_K with rope_freqs", {.type = GGML_Q5_K, .rope_freqs = true, .dim = 256}},
	};
	enum { N = 30 };

	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct tiny_spec sp = cases[ci].s;
		struct buf img = BUF_INIT;
		struct llama_model *m;
		struct inferref rf;
		float *a, *c, *r;
		double dref = 0, dsc = 0, mag = 0;
		char da[64], dc[64];
		size_t nv;
		bool exact = sp.type == GGML_F32;

		if (!sp.dim)
			sp.dim = 128;
		sp.ffn = 2 * sp.dim;
		sp.seed = 0x5eed + ci;
		m = tiny_model_build(&sp, &img);
		nv = (size_t)m->hp.n_vocab;
		a = malloc(N * nv * 4); c = malloc(N * nv * 4); r = malloc(nv * 4);
		run_logits(m, NULL, a, N, da, false);
		run_logits(m, "scalar", c, N, dc, true);
		inferref_init(&rf, m, 64);
		for (int i = 0; i < N; i++) {
			inferref_forward(&rf, (i * 37 + 5) % m->hp.n_vocab, i, r);
			for (size_t v = 0; v < nv; v++) {
				dref = fmax(dref, fabs(a[i * nv + v] - r[v]));
				dsc = fmax(dsc, fabs(a[i * nv + v] - c[i * nv + v]));
				mag = fmax(mag, fabs(r[v]));
			}
		}
		printf("%s: [%s] vs scalar reference %.2g, vs [%s] one token per pass %.2g (logits up to %.2g)\n",
		       cases[ci].what, da, dref, dc, dsc, mag);
		assert_true(dref < (exact ? 1e-4 : 0.05 * (mag + 1)));
		assert_true(dsc < (exact ? 1e-4 : (has_kquant(&sp) ? 3e-2 : 1e-2) * (mag + 1)));
		assert_true(m->rope_freqs ? sp.rope_freqs : !sp.rope_freqs);
		assert_true(sp.tied ? m->output.data == m->tok_embd.data : m->output.data != m->tok_embd.data);
		free(a); free(c); free(r);
		inferref_free(&rf);
		llama_free(m);
		buf_release(&img);
	}
}

/* What each architecture needs is refused, by name, when missing or
 * unsupported; nothing is loaded */
static void test_architecture_errors(void **state)
{
	(void)state;
	static const struct { struct tiny_spec s; allot_err want; const char *msg; } cases[] = {
		{{.arch = "qwen2", .omit = "blk.1.attn_k.bias"}, ALLOT_E_INVALID, "tensor \"blk.1.attn_k.bias\" is missing"},
		{{.arch = "qwen3", .omit = "blk.0.attn_q_norm.weight"}, ALLOT_E_INVALID,
		 "tensor \"blk.0.attn_q_norm.weight\" is missing"},
		{{.arch = "qwen3", .omit = "blk.1.attn_k_norm.weight"}, ALLOT_E_INVALID,
		 "tensor \"blk.1.attn_k_norm.weight\" is missing"},
		{{.rope_scaling = "yarn", .rope_factor = 4.0f}, ALLOT_E_UNSUPPORTED,
		 "rope scaling \"yarn\" is not supported (none and linear are)"},
		{{.rope_scaling = "linear", .rope_factor = -1.0f}, ALLOT_E_INVALID, "rope.scaling.factor is not a number"},
		{{.arch = "qwen3", .head_dim = 64, .value_length = 32}, ALLOT_E_UNSUPPORTED,
		 "qwen3.attention.key_length 64 != value_length 32 is not supported"},
		{{.omit = "output_norm.weight"}, ALLOT_E_INVALID, "tensor \"output_norm.weight\" is missing"},
	};

	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct tiny_spec sp = cases[ci].s;
		struct buf img = BUF_INIT;
		struct llama_model *m = NULL;
		char err[256] = "";

		sp.dim = 128;
		sp.ffn = 256;
		sp.type = GGML_F32;
		if (tiny_model_try(&sp, &img, &m, err, sizeof err) != cases[ci].want || !strstr(err, cases[ci].msg))
			fail_msg("case %zu: got \"%s\", want \"%s\"", ci, err, cases[ci].msg);
		assert_null(m);
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
	assert_string_equal(err, "architecture \"xyz\" is not supported (llama, qwen2 and qwen3 are)");
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
		cmocka_unit_test(test_quant_models),
		cmocka_unit_test(test_architectures),
		cmocka_unit_test(test_architecture_errors),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
