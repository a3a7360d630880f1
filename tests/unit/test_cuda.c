/* test_cuda.c — the CUDA backend (docs/CUDA.md) against the CPU: its
 * products for every weight type and both paths (matrix-vector kernels,
 * the F16 cuBLAS path) on random inputs; stories260K's greedy 200 tokens
 * identical to the CPU backend's; the quantized files' logits within
 * tolerance; a prompt batch, copy_seq, and a KV cache too large refused.
 * Without CUDA in the build, or without a device, every case but the first
 * skips saying why; the first checks that loading then fails cleanly. */
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
	bool quant = type == GGML_Q8_0 || type == GGML_Q4_0;
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
		quant_dequant_row(type, cols, w + (size_t)r * rb, row);
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
	static const uint32_t types[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0};
	static const int ntoks[] = {1, 3, 8, 11, 40};

	(void)state;
	need_device();
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		for (size_t j = 0; j < sizeof ntoks / sizeof ntoks[0]; j++)
			check_product(types[i], 67, 256, ntoks[j]);
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
		double worst = 0, range = 0;

		snprintf(path, sizeof path, MODELS "%s", files[f]);
		m = load(path);
		nv = (size_t)m->hp.n_vocab;
		la = malloc(N * nv * sizeof(float));
		lb = malloc(N * nv * sizeof(float));
		greedy(&infer_backend_cpu, m, N, a, NULL, la);
		greedy(&infer_backend_cuda, m, N, b, a, lb);
		for (size_t i = 0; i < N * nv; i++) {
			worst = fmax(worst, fabs((double)la[i] - lb[i]));
			range = fmax(range, fabs((double)la[i]));
		}
		printf("%s: largest logit difference %.4g (logits up to %.3g)\n", files[f], worst, range);
		if (worst > 0.02 * range)
			fail_msg("%s: logits differ by %g (range %g)", files[f], worst, range);
		free(la); free(lb);
		llama_free(m);
	}
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
	double worst = 0, range = 0;

	(void)state;
	need_device();
	m = load(MODELS "stories260K.gguf");
	a = malloc((size_t)m->hp.n_vocab * sizeof(float));
	b = malloc((size_t)m->hp.n_vocab * sizeof(float));
	run_prompt(&infer_backend_cpu, m, a);
	run_prompt(&infer_backend_cuda, m, b);
	for (int i = 0; i < m->hp.n_vocab; i++) {
		worst = fmax(worst, fabs((double)a[i] - b[i]));
		range = fmax(range, fabs((double)a[i]));
	}
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
		cmocka_unit_test(test_cuda_kv_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
