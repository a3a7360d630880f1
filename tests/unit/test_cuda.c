/* test_cuda.c — the CUDA backend (docs/CUDA.md) against the CPU: its
 * products for every weight type and both paths (matrix-vector kernels of
 * 1 and up to 8 tokens, the F16 cuBLAS path) on random inputs; stories260K's
 * greedy 200 tokens identical to the CPU backend's; the quantized files'
 * logits, and tiny random models in every K-quant and legacy type (and
 * qwen2/qwen3), within tolerance; a prompt batch, copy_seq; batched decode
 * of 8 sequences against the CPU and against the same steps one sequence
 * at a time; CUDA Graphs on against off, to the bit; a KV cache too large
 * refused.  Without CUDA in the build, or without a device, every case but
 * the first skips saying why; the first checks that loading then fails
 * cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "infer/backend.h"
#include "infer/backend_cuda.h"
#include "infer/gguf.h"
#include "infer/kernels.h"
#include "infer/model.h"
#include "infer/quants.h"
#include "infer/tok.h"
#include "common/buf.h"
#include "support/inferref.h"

#define MODELS "../shared/models/"
#define GREEDY 200

static struct llama_model *load(const char *file)
{
	struct llama_model *m = NULL;
	char err[256];
	allot_err e = llama_load(file, &m, err, sizeof err);

	if (e == ALLOT_E_NOT_FOUND) {
		printf("skipped: %s absent\n", file);
		skip();
	}
	if (e != ALLOT_OK)
		fail_msg("%s: %s", file, err);
	return m;
}

/* a skip, saying why, without CUDA in the build or without a device */
static void need_device(void)
{
	char why[200];

	if (!infer_cuda_built()) {
		printf("skipped: this build has no CUDA (nvcc not found, or make CUDA=0)\n");
		skip();
	}
	if (infer_cuda_devices(why, sizeof why) < 0) {
		printf("skipped: %s\n", why);
		skip();
	}
}

static uint32_t rng = 12345;

static float frand(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)(rng >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* largest |a - b| over n floats, and the largest |a| */
static double diff(const float *a, const float *b, size_t n, double *mag)
{
	double worst = 0;

	*mag = 0;
	for (size_t i = 0; i < n; i++) {
		worst = fmax(worst, fabs((double)a[i] - b[i]));
		*mag = fmax(*mag, fabs((double)a[i]));
	}
	return worst;
}

/* Without a device (or without CUDA) the backend's load fails with one
 * clear line, never a crash. */
static void test_cuda_load_without_device(void **state)
{
	struct llama_model *m;
	struct infer_backend_params p = {.n_slots = 1, .n_ctx = 64, .max_batch = 8};
	char why[200], err[256] = "";
	void *st = (void *)1;
	allot_err rc;

	(void)state;
	if (infer_cuda_built() && infer_cuda_devices(why, sizeof why) > 0) {
		printf("skipped: a CUDA device is present (the other cases test it)\n");
		skip();
	}
	m = load(MODELS "stories260K.gguf");
	rc = infer_backend_cuda.load(m, &p, &st, err, sizeof err);
	assert_int_not_equal(rc, ALLOT_OK);
	assert_null(st);
	if (infer_cuda_built())
		assert_non_null(strstr(err, "no CUDA device"));
	else
		assert_non_null(strstr(err, "built without CUDA"));
	llama_free(m);
}

/* W x for one weight type against the dequantized weights in double */
static void check_product(uint32_t type, int rows, int cols, int ntok)
{
	size_t rb = ggml_row_size(type, cols);
	char *w = malloc((size_t)rows * rb), err[256];
	float *wf = malloc((size_t)cols * sizeof(float)), *row = malloc((size_t)cols * sizeof(float));
	float *x = malloc((size_t)ntok * cols * sizeof(float)), *y = malloc((size_t)ntok * rows * sizeof(float));
	bool quant = type != GGML_F32 && type != GGML_F16 && type != GGML_BF16;
	/* quantized activations (int8 blocks) or F16 operands (cuBLAS) */
	double rel = quant || ntok >= 32 ? 2e-2 : 1e-4;
	allot_err rc;

	assert_non_null(w);
	for (int r = 0; r < rows; r++) {
		for (int i = 0; i < cols; i++)
			wf[i] = frand();
		assert_true(quant_row(type, cols, wf, w + (size_t)r * rb));
	}
	for (size_t i = 0; i < (size_t)ntok * cols; i++)
		x[i] = frand();
	rc = infer_cuda_test_matmul(0, type, rows, cols, w, rb, ntok, x, y, err, sizeof err);
	if (rc != ALLOT_OK)
		fail_msg("%s x%d: %s", ggml_type_name(type), ntok, err);
	for (int r = 0; r < rows; r++) {
		kern_dequant_row(type, cols, w + (size_t)r * rb, row);
		for (int t = 0; t < ntok; t++) {
			double ref = 0, mag = 0;

			for (int i = 0; i < cols; i++) {
				ref += (double)row[i] * x[(size_t)t * cols + i];
				mag += fabs((double)row[i] * x[(size_t)t * cols + i]);
			}
			if (fabs(y[(size_t)t * rows + r] - ref) > rel * mag + 1e-5)
				fail_msg("%s, %d tokens: row %d token %d: %g, expected %g", ggml_type_name(type), ntok,
					 r, t, (double)y[(size_t)t * rows + r], ref);
		}
	}
	free(w); free(wf); free(row); free(x); free(y);
}

static void test_cuda_products(void **state)
{
	static const uint32_t types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0, GGML_Q4_1,
					 GGML_Q5_0, GGML_Q5_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
	/* the one-token kernel, the 8-column one full and partly used, 8 + 3,
	 * and the cuBLAS path */
	static const int ntoks[] = {1, 2, 3, 5, 8, 11, 40};

	(void)state;
	need_device();
	/* rows of 5 super-blocks: 40 blocks of 32, more than a warp's lanes */
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		for (size_t j = 0; j < sizeof ntoks / sizeof ntoks[0]; j++)
			check_product(types[i], 67, 1280, ntoks[j]);
}

/* Greedy decoding from BOS through a backend; logits of every step kept
 * (lg [n][n_vocab]) when lg is not NULL.  With force, the tokens fed are
 * force's (teacher forcing) instead of the argmax. */
static int greedy(const struct infer_backend_ops *be, const struct llama_model *m, int n, int32_t *out,
		  const int32_t *force, float *lg)
{
	struct infer_backend_params p = {.n_threads = 1, .n_slots = 2, .n_ctx = 256, .max_batch = 64};
	void *st;
	char err[256];
	float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
	int32_t tok = tok_bos(m->vocab);
	int k = 0;

	if (be->load(m, &p, &st, err, sizeof err) != ALLOT_OK)
		fail_msg("%s: %s", be->name, err);
	for (int pos = 0; pos < n; pos++) {
		int32_t slot = 0;
		uint8_t want = 1;
		struct infer_batch b = {1, &tok, &pos, &slot, &want};
		int best = 0;

		assert_int_equal(be->forward(st, &b, logits), ALLOT_OK);
		if (lg)
			memcpy(lg + (size_t)pos * m->hp.n_vocab, logits, (size_t)m->hp.n_vocab * sizeof(float));
		for (int i = 1; i < m->hp.n_vocab; i++)
			if (logits[i] > logits[best])
				best = i;
		out[k++] = tok = force ? force[pos] : best;
	}
	be->free(st);
	free(logits);
	return k;
}

static void test_cuda_stories_greedy(void **state)
{
	struct llama_model *m;
	int32_t a[GREEDY], b[GREEDY];

	(void)state;
	need_device();
	m = load(MODELS "stories260K.gguf");
	assert_int_equal(greedy(&infer_backend_cpu, m, GREEDY, a, NULL, NULL), GREEDY);
	assert_int_equal(greedy(&infer_backend_cuda, m, GREEDY, b, NULL, NULL), GREEDY);
	for (int i = 0; i < GREEDY; i++)
		if (a[i] != b[i])
			fail_msg("token %d: cuda %d, cpu %d", i, b[i], a[i]);
	llama_free(m);
}

/* each weight type's file: 32 steps of the CPU's tokens, logits close */
static void test_cuda_quantized_logits(void **state)
{
	static const char *files[] = {"stories260K-f16.gguf", "stories260K-q8_0.gguf", "stories260K-q4_0.gguf"};
	enum { N = 32 };

	(void)state;
	need_device();
	for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
		char path[256];
		struct llama_model *m;
		int32_t a[N], b[N];
		float *la, *lb;
		size_t nv;
		double worst, range;

		snprintf(path, sizeof path, MODELS "%s", files[f]);
		m = load(path);
		nv = (size_t)m->hp.n_vocab;
		la = malloc(N * nv * sizeof(float));
		lb = malloc(N * nv * sizeof(float));
		greedy(&infer_backend_cpu, m, N, a, NULL, la);
		greedy(&infer_backend_cuda, m, N, b, a, lb);
		worst = diff(la, lb, N * nv, &range);
		printf("%s: largest logit difference %.4g (logits up to %.3g)\n", files[f], worst, range);
		if (worst > 0.02 * range)
			fail_msg("%s: logits differ by %g (range %g)", files[f], worst, range);
		free(la); free(lb);
		llama_free(m);
	}
}

/* Tiny random models (tests/unit/support/inferref) in each type the CPU
 * runs beyond the stories files, mixes as llama.cpp writes them, and the
 * qwen2 (attention biases, neox RoPE) and qwen3 (q/k norms) shapes: 24
 * steps teacher-forced with the CPU's greedy tokens.  Bound: the largest
 * logit difference within 3% of (largest logit + 1).  Both backends
 * quantize the activations to the same int8 blocks, so they differ by
 * float rounding and the odd activation that rounds the other way (the
 * CPU's own kernel tables differ by up to 1% here, test_infer); a wrong
 * layout, scale or min moves the logits by their whole range. */
static void test_cuda_tiny_models(void **state)
{
	static const struct { const char *what; struct tiny_spec s; } cases[] = {
		{"Q4_K_M mix", {.type = GGML_Q4_K, .v_down_type = GGML_Q6_K, .out_type = GGML_Q6_K}},
		{"Q4_K", {.type = GGML_Q4_K}},
		{"Q5_K", {.type = GGML_Q5_K}},
		{"Q6_K", {.type = GGML_Q6_K}},
		{"Q5_0, Q8_0 attn_v and ffn_down", {.type = GGML_Q5_0, .v_down_type = GGML_Q8_0}},
		{"Q4_1", {.type = GGML_Q4_1}},
		{"Q5_1", {.type = GGML_Q5_1}},
		{"Q5_K, tied Q6_K embeddings", {.type = GGML_Q5_K, .embd_type = GGML_Q6_K, .tied = true}},
		{"qwen2 Q4_K", {.type = GGML_Q4_K, .arch = "qwen2"}},
		{"qwen3 Q6_K", {.type = GGML_Q6_K, .arch = "qwen3"}},
		{"qwen3 BF16", {.type = GGML_BF16, .arch = "qwen3"}},
	};
	enum { N = 24 };

	(void)state;
	need_device();
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		struct tiny_spec sp = cases[ci].s;
		struct buf img = BUF_INIT;
		struct llama_model *m;
		int32_t a[N], b[N];
		float *la, *lb;
		double worst, mag;
		size_t nv;

		sp.dim = 256; /* the K-quants' rows are multiples of 256 */
		sp.ffn = 512;
		sp.seed = 0xc0da + ci;
		m = tiny_model_build(&sp, &img);
		nv = (size_t)m->hp.n_vocab;
		la = malloc(N * nv * sizeof(float));
		lb = malloc(N * nv * sizeof(float));
		greedy(&infer_backend_cpu, m, N, a, NULL, la);
		greedy(&infer_backend_cuda, m, N, b, a, lb);
		worst = diff(la, lb, N * nv, &mag);
		printf("tiny %s: largest logit difference %.4g (logits up to %.3g)\n", cases[ci].what, worst, mag);
		if (worst > 0.03 * (mag + 1))
			fail_msg("tiny %s: logits differ by %g (up to %g)", cases[ci].what, worst, mag);
		free(la); free(lb);
		llama_free(m);
		buf_release(&img);
	}
}

/* ---- batched decode and CUDA Graphs ---------------------------------------------- */

enum { SEQS = 8, STEPS = 10 };

/* Eight sequences: prompts of 2 + s tokens for slot s in one batch (44
 * tokens of mixed slots: the cuBLAS path, 8 rows of output), then STEPS
 * decode steps of one token per sequence, as one batch of 8 or, with
 * one_by_one, as 8 batches of 1.  out: [1 + STEPS][SEQS][n_vocab] (the
 * prompts' last logits, then each step's).  *launches: the steps the CUDA
 * state ran as graphs. */
static void decode_run(const struct infer_backend_ops *be, const struct llama_model *m, bool one_by_one,
		       float *out, long *launches, char *desc)
{
	struct infer_backend_params p = {.n_threads = 1, .n_slots = SEQS, .n_ctx = 64, .max_batch = 64};
	int32_t tok[64], pos[64], slot[64];
	uint8_t want[64];
	size_t nv = (size_t)m->hp.n_vocab;
	char err[256];
	int n = 0;
	void *st;

	if (be->load(m, &p, &st, err, sizeof err) != ALLOT_OK)
		fail_msg("%s: %s", be->name, err);
	for (int s = 0; s < SEQS; s++)
		for (int i = 0; i < 2 + s; i++, n++) {
			tok[n] = (s * 31 + i * 7 + 3) % (int)nv;
			pos[n] = i;
			slot[n] = s;
			want[n] = i == 1 + s;
		}
	{
		struct infer_batch b = {n, tok, pos, slot, want};

		assert_int_equal(be->forward(st, &b, out), ALLOT_OK);
	}
	for (int k = 0; k < STEPS; k++) {
		float *o = out + (size_t)(1 + k) * SEQS * nv;

		for (int s = 0; s < SEQS; s++) {
			tok[s] = (s * 13 + k * 5 + 1) % (int)nv;
			pos[s] = 2 + s + k;
			slot[s] = s;
			want[s] = 1;
		}
		if (one_by_one) {
			for (int s = 0; s < SEQS; s++) {
				struct infer_batch b = {1, tok + s, pos + s, slot + s, want + s};

				assert_int_equal(be->forward(st, &b, o + (size_t)s * nv), ALLOT_OK);
			}
		} else {
			struct infer_batch b = {SEQS, tok, pos, slot, want};

			assert_int_equal(be->forward(st, &b, o), ALLOT_OK);
		}
	}
	*launches = be == &infer_backend_cuda ? infer_cuda_graph_launches(st) : 0;
	snprintf(desc, 128, "%s", be->describe(st));
	be->free(st);
}

/* Batched decode: 8 sequences at different positions in one batch against
 * the CPU doing the same (within 3% of (largest logit + 1), as the tiny
 * models), and against the CUDA backend taking the same steps one
 * sequence at a time (the same kernels but for how many tokens a launch
 * carries: within 0.1%).  A token that attended to another slot's cache,
 * or a product that mixed the tokens' columns, moves the logits by their
 * whole range. */
static void test_cuda_batched_decode(void **state)
{
	struct tiny_spec sp = {.dim = 256, .ffn = 512, .type = GGML_Q4_K, .v_down_type = GGML_Q6_K,
			       .out_type = GGML_Q6_K, .seed = 0xba7c4};
	struct buf img = BUF_INIT;
	struct llama_model *m;
	size_t n;
	float *cpu, *gb, *g1;
	double d, mag;
	long launches;
	char desc[128];

	(void)state;
	need_device();
	m = tiny_model_build(&sp, &img);
	n = (size_t)(1 + STEPS) * SEQS * m->hp.n_vocab;
	cpu = malloc(n * sizeof(float));
	gb = malloc(n * sizeof(float));
	g1 = malloc(n * sizeof(float));
	decode_run(&infer_backend_cpu, m, false, cpu, &launches, desc);
	decode_run(&infer_backend_cuda, m, false, gb, &launches, desc);
	d = diff(cpu, gb, n, &mag);
	printf("batched decode of %d sequences [%s]: largest difference from the CPU %.4g (logits up to %.3g)\n",
	       SEQS, desc, d, mag);
	if (d > 0.03 * (mag + 1))
		fail_msg("batched decode: cuda differs from the cpu by %g (logits up to %g)", d, mag);
	decode_run(&infer_backend_cuda, m, true, g1, &launches, desc);
	d = diff(g1, gb, n, &mag);
	printf("the same steps one sequence at a time: largest difference %.4g\n", d);
	if (d > 1e-3 * (mag + 1))
		fail_msg("batched decode: batch of %d differs from one at a time by %g (logits up to %g)", SEQS, d,
			 mag);
	free(cpu); free(gb); free(g1);
	llama_free(m);
	buf_release(&img);
}

/* CUDA Graphs (docs/CUDA.md): the steps with graphs on give the same bits
 * as with ALLOT_CUDA_GRAPHS=0 (the same kernels, replayed), batched and
 * one at a time, and every decode step was a replay (STEPS batched steps,
 * STEPS * SEQS single ones; the prompt batch is not a decode step); off,
 * none was.  A graph that kept a stale position, slot or embedding would
 * give other logits. */
static void test_cuda_graphs(void **state)
{
	struct tiny_spec sp = {.dim = 256, .ffn = 512, .type = GGML_Q4_0, .out_type = GGML_Q6_K, .seed = 0x9a9f};
	struct buf img = BUF_INIT;
	struct llama_model *m;
	size_t n;
	float *on, *off;
	long lon, loff;
	char desc[128];

	(void)state;
	need_device();
	m = tiny_model_build(&sp, &img);
	n = (size_t)(1 + STEPS) * SEQS * m->hp.n_vocab;
	on = malloc(n * sizeof(float));
	off = malloc(n * sizeof(float));
	for (int one = 0; one < 2; one++) {
		unsetenv("ALLOT_CUDA_GRAPHS");
		decode_run(&infer_backend_cuda, m, one, on, &lon, desc);
		assert_non_null(strstr(desc, "graphs on"));
		setenv("ALLOT_CUDA_GRAPHS", "0", 1);
		decode_run(&infer_backend_cuda, m, one, off, &loff, desc);
		unsetenv("ALLOT_CUDA_GRAPHS");
		assert_non_null(strstr(desc, "graphs off"));
		printf("%s: %ld steps replayed as graphs (off: %ld)\n", one ? "one at a time" : "batched", lon, loff);
		assert_int_equal(lon, one ? STEPS * SEQS : STEPS);
		assert_int_equal(loff, 0);
		assert_memory_equal(on, off, n * sizeof(float));
	}
	free(on); free(off);
	llama_free(m);
	buf_release(&img);
}

/* a 40-token prompt in one batch (the cuBLAS path), copied to slot 1 and
 * continued there: the last logits close to the CPU's */
static void run_prompt(const struct infer_backend_ops *be, const struct llama_model *m, float *out)
{
	enum { P = 40 };
	struct infer_backend_params p = {.n_threads = 1, .n_slots = 2, .n_ctx = 128, .max_batch = 64};
	int32_t tok[P], pos[P], slot[P], t1, p1 = P, s1 = 1;
	uint8_t want[P] = {0}, w1 = 1;
	float *scratch = malloc((size_t)m->hp.n_vocab * sizeof(float));
	char err[256];
	void *st;

	for (int i = 0; i < P; i++) {
		tok[i] = (i * 37 + 5) % m->hp.n_vocab;
		pos[i] = i;
		slot[i] = 0;
	}
	want[P - 1] = 1;
	if (be->load(m, &p, &st, err, sizeof err) != ALLOT_OK)
		fail_msg("%s: %s", be->name, err);
	struct infer_batch b = {P, tok, pos, slot, want};
	assert_int_equal(be->forward(st, &b, scratch), ALLOT_OK);
	assert_int_equal(be->copy_seq(st, 0, 1, P), ALLOT_OK);
	t1 = 7;
	struct infer_batch b1 = {1, &t1, &p1, &s1, &w1};
	assert_int_equal(be->forward(st, &b1, out), ALLOT_OK);
	be->free(st);
	free(scratch);
}

static void test_cuda_prompt_and_copy(void **state)
{
	struct llama_model *m;
	float *a, *b;
	double worst, range;

	(void)state;
	need_device();
	m = load(MODELS "stories260K.gguf");
	a = malloc((size_t)m->hp.n_vocab * sizeof(float));
	b = malloc((size_t)m->hp.n_vocab * sizeof(float));
	run_prompt(&infer_backend_cpu, m, a);
	run_prompt(&infer_backend_cuda, m, b);
	worst = diff(a, b, (size_t)m->hp.n_vocab, &range);
	printf("prompt of 40 + copy_seq: largest logit difference %.4g (logits up to %.3g)\n", worst, range);
	assert_true(worst <= 0.02 * range);
	free(a); free(b);
	llama_free(m);
}

/* a KV cache beyond the device's memory: refused with the figures */
static void test_cuda_kv_too_large(void **state)
{
	struct llama_model *m;
	struct infer_backend_params p = {.n_slots = 1 << 20, .n_ctx = 512, .max_batch = 8};
	char err[512] = "";
	void *st = (void *)1;

	(void)state;
	need_device();
	m = load(MODELS "stories260K.gguf");
	assert_int_equal(infer_backend_cuda.load(m, &p, &st, err, sizeof err), ALLOT_E_NOMEM);
	assert_null(st);
	assert_non_null(strstr(err, "MiB are free"));
	llama_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cuda_load_without_device),
		cmocka_unit_test(test_cuda_products),
		cmocka_unit_test(test_cuda_stories_greedy),
		cmocka_unit_test(test_cuda_quantized_logits),
		cmocka_unit_test(test_cuda_prompt_and_copy),
		cmocka_unit_test(test_cuda_tiny_models),
		cmocka_unit_test(test_cuda_batched_decode),
		cmocka_unit_test(test_cuda_graphs),
		cmocka_unit_test(test_cuda_kv_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
