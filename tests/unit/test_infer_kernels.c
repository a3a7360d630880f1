/* test_infer_kernels.c — every SIMD kernel table against the scalar
 * reference on random data, for every weight type; conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "infer/gguf.h"
#include "infer/kernels.h"
#include "support/xorshift.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
	return xorshift_unit(&rng);
}

static void close_enough(float got, float want, float scale, const char *what, int n)
{
	/* sums of n products in another order: relative to the magnitude of
	 * the terms, not of the (possibly cancelling) result */
	if (fabsf(got - want) > 1e-5f * scale + 1e-6f)
		fail_msg("%s n=%d: %.9g vs scalar %.9g", what, n, got, want);
}

static void test_conversions(void **state)
{
	(void)state;
	static const float vals[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1e-5f, 5.96e-8f, 1e-9f, 3.14159f, 70000.0f};

	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		float r = kern_f16_to_f32(kern_f32_to_f16(vals[i]));

		if (fabsf(vals[i]) <= 65504.0f && fabsf(vals[i]) > 6.2e-5f)
			assert_true(fabsf(r - vals[i]) <= fabsf(vals[i]) * 1e-3f);
	}
	assert_true(isinf(kern_f16_to_f32(kern_f32_to_f16(70000.0f))));
	assert_true(kern_f16_to_f32(0x3c00) == 1.0f);
	assert_true(kern_f16_to_f32(0x0001) == 0x1p-24f);
	assert_int_equal(kern_f32_to_f16(1.0f), 0x3c00);
	assert_int_equal(kern_f32_to_f16(0x1p-24f), 0x0001);
	/* every f16 survives f16 -> f32 -> f16 */
	for (uint32_t h = 0; h < 0x10000; h++) {
		uint16_t back = kern_f32_to_f16(kern_f16_to_f32((uint16_t)h));

		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue; /* NaN payloads */
		if (back != h)
			fail_msg("f16 %04x -> %04x", h, back);
	}
	assert_true(kern_bf16_to_f32(kern_f32_to_bf16(1.5f)) == 1.5f);
	/* quantizers round trip within a step */
	{
		float x[64], y[64];
		uint8_t q8[68], q4[36];

		for (int i = 0; i < 64; i++)
			x[i] = frand();
		kern_quantize_q8_0(64, x, q8);
		kern_dequant_row(GGML_Q8_0, 64, q8, y);
		for (int i = 0; i < 64; i++)
			assert_true(fabsf(x[i] - y[i]) < 1.0f / 127 + 1e-3f);
		kern_quantize_q4_0(64, x, q4);
		kern_dequant_row(GGML_Q4_0, 64, q4, y);
		for (int i = 0; i < 64; i++)
			assert_true(fabsf(x[i] - y[i]) < 1.0f / 7.0f);
	}
}

static void check_table(const struct kern_ops *k)
{
	static const int sizes[] = {32, 64, 96, 160, 288, 2048, 5632};
	size_t cases = 0;

	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		int n = sizes[si];
		float *w = malloc((size_t)n * 4), *x = malloc((size_t)n * 4), scale = 0;
		uint16_t *h = malloc((size_t)n * 2), *bf = malloc((size_t)n * 2);
		void *q8 = malloc((size_t)n / QK * 34), *q4 = malloc((size_t)n / QK * 18);
		struct q8a *xa = malloc((size_t)n / QK * sizeof *xa), *xs = malloc((size_t)n / QK * sizeof *xs);

		for (int rep = 0; rep < 4; rep++) {
			for (int i = 0; i < n; i++) {
				w[i] = frand() * (rep == 3 ? 100.0f : 1.0f);
				x[i] = frand() * (rep == 2 ? 0.001f : 1.0f);
				h[i] = kern_f32_to_f16(w[i]);
				bf[i] = kern_f32_to_bf16(w[i]);
			}
			if (rep == 1)
				memset(x, 0, (size_t)n * 4); /* all-zero activations */
			scale = 0;
			for (int i = 0; i < n; i++)
				scale += fabsf(w[i] * x[i]);
			kern_quantize_q8_0(n, w, q8);
			kern_quantize_q4_0(n, w, q4);
			/* the activation quantizer must agree bit for bit */
			kern_scalar.quant_q8a(n, x, xs);
			k->quant_q8a(n, x, xa);
			for (int b = 0; b < n / QK; b++) {
				assert_memory_equal(xa[b].qs, xs[b].qs, QK);
				assert_true(xa[b].d == xs[b].d);
				assert_true(fabsf(xa[b].ds - xs[b].ds) <= 1e-6f * fabsf(xs[b].ds));
			}
			close_enough(k->dot_f32(n, w, x), kern_scalar.dot_f32(n, w, x), scale, "f32", n);
			close_enough(k->dot_f16(n, h, x), kern_scalar.dot_f16(n, h, x), scale, "f16", n);
			close_enough(k->dot_bf16(n, bf, x), kern_scalar.dot_bf16(n, bf, x), scale, "bf16", n);
			close_enough(k->dot_q8_0(n, q8, xs), kern_scalar.dot_q8_0(n, q8, xs), scale, "q8_0", n);
			close_enough(k->dot_q4_0(n, q4, xs), kern_scalar.dot_q4_0(n, q4, xs), scale, "q4_0", n);
			/* four rows at once (the same row four times here) */
			{
				size_t rb8 = (size_t)n / QK * 34, rb4 = (size_t)n / QK * 18;
				char *m8 = malloc(4 * rb8), *m4 = malloc(4 * rb4);
				float o[4];

				for (int r = 0; r < 4; r++) {
					for (int i = 0; i < n; i++)
						w[i] = frand();
					kern_quantize_q8_0(n, w, m8 + r * rb8);
					kern_quantize_q4_0(n, w, m4 + r * rb4);
				}
				k->dot4_q8_0(n, m8, rb8, xs, o);
				for (int r = 0; r < 4; r++)
					close_enough(o[r], kern_scalar.dot_q8_0(n, m8 + r * rb8, xs), scale + n, "dot4 q8_0", n);
				k->dot4_q4_0(n, m4, rb4, xs, o);
				for (int r = 0; r < 4; r++)
					close_enough(o[r], kern_scalar.dot_q4_0(n, m4 + r * rb4, xs), scale + n, "dot4 q4_0", n);
				free(m8);
				free(m4);
				cases += 8;
			}
			/* float rows of any length */
			close_enough(k->dot_f32(n - 7, w, x), kern_scalar.dot_f32(n - 7, w, x), scale, "f32 tail", n - 7);
			close_enough(k->dot_f16(n - 7, h, x), kern_scalar.dot_f16(n - 7, h, x), scale, "f16 tail", n - 7);
			close_enough(k->dot_bf16(n - 7, bf, x), kern_scalar.dot_bf16(n - 7, bf, x), scale, "bf16 tail", n - 7);
			cases += 8;
		}
		free(w); free(x); free(h); free(bf); free(q8); free(q4); free(xa); free(xs);
	}
	printf("kernels %s: %zu comparisons with scalar\n", k->name, cases);
}

static void check_attention(const struct kern_ops *k)
{
	static const int hds[] = {8, 32, 64, 72, 128};

	for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
		int hd = hds[hi], n = 37;
		float q[128], kb[128 * 16], sc[16], ref[16], a[37], v[37 * 200], out[128], want[128];

		for (int i = 0; i < hd; i++)
			q[i] = frand();
		for (int i = 0; i < hd * 16; i++)
			kb[i] = frand();
		for (int j = 0; j < 16; j++)
			sc[j] = ref[j] = frand();
		k->key_scores(hd, q, kb, sc);
		kern_scalar.key_scores(hd, q, kb, ref);
		for (int j = 0; j < 16; j++)
			close_enough(sc[j], ref[j], (float)hd, "key_scores", hd);
		for (int j = 0; j < n; j++)
			a[j] = frand() * frand();
		for (int i = 0; i < n * 200; i++)
			v[i] = frand();
		k->att_values(hd, n, a, 0.5f, v, 200, out);
		kern_scalar.att_values(hd, n, a, 0.5f, v, 200, want);
		for (int i = 0; i < hd; i++)
			close_enough(out[i], want[i], (float)n, "att_values", hd);
	}
}

static void test_tables(void **state)
{
	(void)state;
	const struct kern_ops *t[2] = {kern_avx2(), kern_avx512()};

	check_table(&kern_scalar);
	for (int i = 0; i < 2; i++) {
		if (t[i]) {
			check_table(t[i]);
			check_attention(t[i]);
		}
		if (!t[i])
			printf("skipped: %s kernels (CPU lacks them)\n", i ? "avx512-vnni" : "avx2");
	}
	assert_non_null(kern_best());
}

/* SwiGLU of every table against the scalar one (expf): random values over
 * several magnitudes, the extremes, and lengths with a scalar tail */
/* Softmax numerators: every table against expf, odd lengths (masked
 * tails), scores far below the maximum (exp underflows to 0) */
static void test_softmax_exp(void **state)
{
	(void)state;
	const struct kern_ops *t[3] = {&kern_scalar, kern_avx2(), kern_avx512()};
	static const int lens[] = {1, 5, 16, 17, 33, 100, 257};
	float a[257], w[257];
	size_t cases = 0;

	for (int i = 0; i < 3; i++) {
		if (!t[i] || !t[i]->softmax_exp)
			continue;
		for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
			int n = lens[li];
			float max = -INFINITY, sum, want = 0;

			for (int j = 0; j < n; j++) {
				a[j] = frand() * (j % 7 == 3 ? 200.0f : 10.0f);
				max = a[j] > max ? a[j] : max;
			}
			for (int j = 0; j < n; j++) {
				w[j] = expf(a[j] - max);
				want += w[j];
			}
			sum = t[i]->softmax_exp(n, a, max);
			for (int j = 0; j < n; j++, cases++)
				/* (the vector exp clamps its argument at -87.3: below
				 * 1.2e-38 it does not follow expf to 0) */
				if (fabsf(a[j] - w[j]) > 4e-7f * w[j] + 2e-38f)
					fail_msg("softmax_exp %s: %.9g vs expf %.9g", t[i]->name, a[j], w[j]);
			assert_true(fabsf(sum - want) <= 1e-6f * want);
		}
	}
	printf("kernels softmax_exp: %zu values match expf\n", cases);
}

static void test_swiglu(void **state)
{
	(void)state;
	const struct kern_ops *t[3] = {&kern_scalar, kern_avx2(), kern_avx512()};
	static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 89.0f, -89.0f, 100.0f,
					-100.0f, 104.0f, -104.0f, 200.0f, -200.0f, 1e30f, -1e30f};
	enum { N = 1000 };
	float *h = malloc(N * sizeof *h), *u = malloc(N * sizeof *u), *hw = malloc(N * sizeof *hw);
	size_t cases = 0;

	for (int i = 0; i < 3; i++) {
		if (!t[i] || !t[i]->swiglu)
			continue;
		for (int rep = 0; rep < 40; rep++) {
			int n = rep % 4 == 3 ? N - rep : N;
			float mag = rep < 8 ? 1.0f : rep < 16 ? 10.0f : rep < 24 ? 40.0f : 120.0f;

			for (int j = 0; j < n; j++) {
				h[j] = frand() * mag;
				u[j] = frand() * 4.0f;
			}
			if (rep == 0)
				for (size_t j = 0; j < sizeof special / sizeof special[0]; j++) {
					h[j] = special[j];
					u[j] = 1.0f;
				}
			memcpy(hw, h, (size_t)n * sizeof *h);
			kern_scalar.swiglu(n, hw, u);
			t[i]->swiglu(n, h, u);
			for (int j = 0; j < n; j++) {
				/* a few ulp of the result; absolute 1e-8 where it underflows
				 * (the kernels clamp exp's argument, expf gives infinity) */
				if (!(fabsf(h[j] - hw[j]) <= 4e-7f * fabsf(hw[j]) + 1e-8f))
					fail_msg("swiglu %s: %.9g vs scalar %.9g", t[i]->name, h[j], hw[j]);
				cases++;
			}
		}
	}
	/* the AVX2 and AVX-512 versions are the same arithmetic: identical
	 * results (the batching and repacked-model tests rely on it) */
	if (t[1] && t[2]) {
		for (int j = 0; j < N; j++) {
			h[j] = frand() * (j % 3 ? 10.0f : 100.0f);
			u[j] = frand();
		}
		memcpy(hw, h, N * sizeof *h);
		t[1]->swiglu(N, hw, u);
		t[2]->swiglu(N, h, u);
		assert_memory_equal(h, hw, N * sizeof *h);
	}
	free(h); free(u); free(hw);
	printf("kernels swiglu: %zu values match scalar\n", cases);
}

/* repacked rows (4 rows x several tokens) against the scalar dot on the
 * original rows */
static void test_repacked(void **state)
{
	(void)state;
	static const int sizes[] = {128, 256, 768, 2048};
	const struct kern_ops *tabs[2] = {kern_avx512(), kern_avx2()};
	size_t cases = 0;

	for (int ti = 0; ti < 2; ti++) {
		const struct kern_ops *k = tabs[ti];

		if (!k || !k->mm4_q4_0r)
			continue;
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int n = sizes[si];
			enum { R = 8, T = 7 };
			size_t r4 = (size_t)n / QK * 18, r8 = (size_t)n / QK * 34;
			char *w4 = malloc(R * r4), *w8 = malloc(R * r8);
			char *p4 = malloc(R * kern_repack_row_size(GGML_Q4_0, n));
			char *p8 = malloc(R * kern_repack_row_size(GGML_Q8_0, n));
			float *w = malloc((size_t)n * 4), *x = malloc((size_t)n * 4), y[T * R];
			struct q8a *xa = malloc((size_t)T * n / QK * sizeof *xa);
			struct q8r *xr = malloc((size_t)T * n / QR * sizeof *xr);

			assert_int_equal(kern_repack_row_size(GGML_Q4_0, n), r4);
			assert_int_equal(kern_repack_row_size(GGML_Q8_0, n), r8);
			for (int r = 0; r < R; r++) {
				for (int i = 0; i < n; i++)
					w[i] = frand() * (r + 1);
				kern_quantize_q4_0(n, w, w4 + r * r4);
				kern_quantize_q8_0(n, w, w8 + r * r8);
				kern_repack_row(GGML_Q4_0, n, w4 + r * r4, p4 + r * r4);
				kern_repack_row(GGML_Q8_0, n, w8 + r * r8, p8 + r * r8);
			}
			for (int t = 0; t < T; t++) {
				for (int i = 0; i < n; i++)
					x[i] = frand() * (t == 3 ? 0.0f : 1.0f);
				kern_scalar.quant_q8a(n, x, xa + (size_t)t * n / QK);
				kern_q8a_to_q8r(n, xa + (size_t)t * n / QK, xr + (size_t)t * n / QR);
				if (k->to_q8r) {
					/* the table's conversion: the same bytes */
					struct q8r *xv = malloc((size_t)n / QR * sizeof *xv);

					k->to_q8r(n, xa + (size_t)t * n / QK, xv);
					assert_memory_equal(xv, xr + (size_t)t * n / QR, (size_t)n / QR * sizeof *xv);
					free(xv);
				}
			}
			for (int q = 0; q < 2; q++) {
				for (int ntok = 1; ntok <= T; ntok++) {
					for (int r0 = 0; r0 < R; r0 += 4) {
						if (q)
							k->mm4_q8_0r(n, p8 + r0 * r8, r8, xr, (size_t)n / QR, ntok, y + r0, R);
						else
							k->mm4_q4_0r(n, p4 + r0 * r4, r4, xr, (size_t)n / QR, ntok, y + r0, R);
					}
					for (int t = 0; t < ntok; t++)
						for (int r = 0; r < R; r++) {
							const struct q8a *xt = xa + (size_t)t * n / QK;
							float want = q ? kern_scalar.dot_q8_0(n, w8 + r * r8, xt)
								       : kern_scalar.dot_q4_0(n, w4 + r * r4, xt);

							close_enough(y[t * R + r], want, (float)n * (r + 1) * 0.5f,
								     q ? "mm4 q8_0r" : "mm4 q4_0r", n);
							cases++;
						}
				}
			}
			free(w4); free(w8); free(p4); free(p8); free(w); free(x); free(xa); free(xr);
		}
		printf("kernels %s: %zu repacked results match scalar\n", k->name, cases);
	}
	if (!cases)
		printf("skipped: no repacking kernels on this CPU\n");
}

/* float-type 4-row tiles against the scalar dots */
static void test_float_tiles(void **state)
{
	(void)state;
	const struct kern_ops *k = kern_avx512();
	static const int sizes[] = {16, 64, 768};
	size_t cases = 0;

	if (!k || !k->mm4_f16) {
		printf("skipped: no float tiles on this CPU\n");
		return;
	}
	for (size_t si = 0; si < 3; si++) {
		int n = sizes[si];
		enum { R = 8, T = 7 };
		float *w = malloc((size_t)R * n * 4), *x = malloc((size_t)T * n * 4), y[T * R], scale;
		uint16_t *h = malloc((size_t)R * n * 2), *bf = malloc((size_t)R * n * 2);

		for (int i = 0; i < R * n; i++) {
			w[i] = frand();
			h[i] = kern_f32_to_f16(w[i]);
			bf[i] = kern_f32_to_bf16(w[i]);
		}
		for (int i = 0; i < T * n; i++)
			x[i] = frand();
		for (int kind = 0; kind < 3; kind++)
			for (int ntok = 1; ntok <= T; ntok++) {
				for (int r0 = 0; r0 < R; r0 += 4) {
					if (kind == 0)
						k->mm4_f32(n, w + r0 * n, (size_t)n * 4, x, (size_t)n, ntok, y + r0, R);
					else if (kind == 1)
						k->mm4_f16(n, h + r0 * n, (size_t)n * 2, x, (size_t)n, ntok, y + r0, R);
					else
						k->mm4_bf16(n, bf + r0 * n, (size_t)n * 2, x, (size_t)n, ntok, y + r0, R);
				}
				for (int t = 0; t < ntok; t++)
					for (int r = 0; r < R; r++) {
						const float *xt = x + (size_t)t * n;
						float want = kind == 0 ? kern_scalar.dot_f32(n, w + r * n, xt)
							   : kind == 1 ? kern_scalar.dot_f16(n, h + r * n, xt)
							   : kern_scalar.dot_bf16(n, bf + r * n, xt);

						scale = 0;
						for (int i = 0; i < n; i++)
							scale += fabsf(w[r * n + i] * xt[i]);
						close_enough(y[t * R + r], want, scale, "mm4 float", n);
						cases++;
					}
			}
		free(w); free(x); free(h); free(bf);
	}
	printf("kernels %s: %zu float tile results match scalar\n", k->name, cases);
}

/* AMX panels of 16 repacked rows against the scalar dot */
static void test_amx(void **state)
{
	(void)state;
	static const int sizes[] = {128, 256, 768, 1152};
	static const int ntoks[] = {1, 5, 7, 8, 16, 17, 33};
	size_t cases = 0, exact = 0;

	if (!kern_amx_available()) {
		printf("skipped: AMX not available\n");
		return;
	}
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		int n = sizes[si], nb = n / QK;
		enum { R = 32, T = 33 };
		size_t r4 = (size_t)nb * 18, r8 = (size_t)nb * 34;
		char *w4 = malloc(R * r4), *w8 = malloc(R * r8), *p4 = malloc(R * r4), *p8 = malloc(R * r8);
		float *w = malloc((size_t)n * 4), *x = malloc((size_t)n * 4), *y = malloc((size_t)T * R * 4);
		struct q8a *xa = malloc((size_t)T * nb * sizeof *xa);
		struct amx_xblk *xb = aligned_alloc(64, kern_amx_xbytes(n, T) + 64);
		void *scratch = malloc((size_t)nb * 576);
		const struct kern_ops *vn = kern_avx512();
		struct q8r *xr = malloc((size_t)T * (n / QR + 1) * sizeof *xr);
		float *yv = malloc((size_t)T * R * 4);

		for (int r = 0; r < R; r++) {
			for (int i = 0; i < n; i++)
				w[i] = frand() * (r % 5 + 1);
			kern_quantize_q4_0(n, w, w4 + r * r4);
			kern_quantize_q8_0(n, w, w8 + r * r8);
			kern_repack_row(GGML_Q4_0, n, w4 + r * r4, p4 + r * r4);
			kern_repack_row(GGML_Q8_0, n, w8 + r * r8, p8 + r * r8);
		}
		for (int t = 0; t < T; t++) {
			for (int i = 0; i < n; i++)
				x[i] = frand() * (t == 7 ? 0.0f : 1.0f);
			kern_scalar.quant_q8a(n, x, xa + (size_t)t * nb);
			if (n % QR == 0)
				kern_q8a_to_q8r(n, xa + (size_t)t * nb, xr + (size_t)t * (n / QR));
		}
		for (size_t ni = 0; ni < sizeof ntoks / sizeof ntoks[0]; ni++) {
			int ntok = ntoks[ni];

			kern_amx_pack_x(n, xa, (size_t)nb, ntok, xb);
			/* packed a token tile at a time (as the backend's threads do),
			 * over a dirty buffer: the same bytes */
			{
				size_t bytes = kern_amx_xbytes(n, ntok);
				struct amx_xblk *xc = aligned_alloc(64, bytes + 64);

				memset(xc, 0x5a, bytes);
				for (int t0 = 0; t0 < ntok; t0 += 16)
					kern_amx_pack_x_range(n, xa, (size_t)nb, ntok, t0, t0 + 16, xc);
				assert_memory_equal(xc, xb, bytes);
				free(xc);
			}
			for (int q = 0; q < 2; q++) {
				for (int r0 = 0; r0 < R; r0 += 16)
					kern_amx_mm16(q ? GGML_Q8_0R : GGML_Q4_0R, n, (q ? p8 + r0 * r8 : p4 + r0 * r4),
						      q ? r8 : r4, xb, ntok, y + r0, R, scratch);
				for (int t = 0; t < ntok; t++)
					for (int r = 0; r < R; r++) {
						const struct q8a *xt = xa + (size_t)t * nb;
						float want = q ? kern_scalar.dot_q8_0(n, w8 + r * r8, xt)
							       : kern_scalar.dot_q4_0(n, w4 + r * r4, xt);

						close_enough(y[t * R + r], want, (float)n * (r % 5 + 1) * 0.5f,
							     q ? "amx q8_0r" : "amx q4_0r", n);
						cases++;
					}
				/* the VNNI tiles: the same arithmetic, bit for bit (a
				 * token's results do not depend on its batch's size) */
				if (vn && n % QR == 0) {
					for (int r0 = 0; r0 < R; r0 += 4)
						(q ? vn->mm4_q8_0r : vn->mm4_q4_0r)(n, (q ? p8 + r0 * r8 : p4 + r0 * r4),
										   q ? r8 : r4, xr, (size_t)n / QR, ntok,
										   yv + r0, R);
					assert_memory_equal(yv, y, (size_t)ntok * R * sizeof *y);
					exact++;
				}
			}
		}
		free(w4); free(w8); free(p4); free(p8); free(w); free(x); free(y); free(xa); free(xb); free(scratch);
		free(xr); free(yv);
	}
	printf("kernels amx: %zu tile results match scalar; %zu tiles equal to the VNNI tiles bit for bit\n",
	       cases, exact);
}

/* AMX-BF16 items (16 and 64 rows) of F16 / BF16 rows against the scalar float dots */
static void test_amx_bf16(void **state)
{
	(void)state;
	/* 2080: more than one chunk of BF_KC (32) blocks */
	static const int sizes[] = {32, 96, 768, 2080};
	static const int ntoks[] = {1, 5, 16, 17, 33, 64, 70};
	size_t cases = 0;

	if (!kern_amx_bf16_available()) {
		printf("skipped: AMX-BF16 not available\n");
		return;
	}
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		int n = sizes[si];
		enum { R = 80, T = 70 };
		float *w = malloc((size_t)R * n * 4), *x = malloc((size_t)T * n * 4), *y = malloc((size_t)T * R * 4);
		uint16_t *h = malloc((size_t)R * n * 2), *bf = malloc((size_t)R * n * 2);
		void *xb = aligned_alloc(64, (kern_amx_bf16_xbytes(n, T) + 63) / 64 * 64);
		void *scratch = aligned_alloc(64, kern_amx_bf16_scratch());

		for (int i = 0; i < R * n; i++) {
			w[i] = frand() * (float)(i % 7 + 1);
			h[i] = kern_f32_to_f16(w[i]);
			bf[i] = kern_f32_to_bf16(w[i]);
		}
		for (int i = 0; i < T * n; i++)
			x[i] = frand() * (i % 5 == 0 ? 1e-3f : 3.0f);
		for (size_t ni = 0; ni < sizeof ntoks / sizeof ntoks[0]; ni++) {
			int ntok = ntoks[ni];

			kern_amx_bf16_pack_x(n, x, (size_t)n, ntok, xb);
			{
				size_t bytes = kern_amx_bf16_xbytes(n, ntok);
				void *xc = aligned_alloc(64, (bytes + 63) / 64 * 64);

				memset(xc, 0x5a, bytes);
				for (int t0 = 0; t0 < ntok; t0 += 16)
					kern_amx_bf16_pack_x_range(n, x, (size_t)n, ntok, t0, t0 + 16, xc);
				assert_memory_equal(xc, xb, bytes);
				free(xc);
			}
			for (int kind = 0; kind < 2; kind++) {
				/* items of 16 and of 80 - 16 rows */
				kern_amx_bf16_mm(kind ? GGML_BF16 : GGML_F16, n, kind ? bf : h, (size_t)n * 2, 16, xb,
						 ntok, y, R, scratch);
				kern_amx_bf16_mm(kind ? GGML_BF16 : GGML_F16, n, (kind ? bf : h) + (size_t)16 * n,
						 (size_t)n * 2, R - 16, xb, ntok, y + 16, R, scratch);
				for (int t = 0; t < ntok; t++)
					for (int r = 0; r < R; r++) {
						const float *xt = x + (size_t)t * n;
						const uint16_t *row = (kind ? bf : h) + (size_t)r * n;
						float want = kind ? kern_scalar.dot_bf16(n, row, xt)
								  : kern_scalar.dot_f16(n, row, xt);
						float scale = 0;

						for (int i = 0; i < n; i++)
							scale += fabsf((kind ? kern_bf16_to_f32(row[i]) : kern_f16_to_f32(row[i])) * xt[i]);
						close_enough(y[t * R + r], want, scale, kind ? "amx bf16" : "amx f16", n);
						cases++;
					}
			}
		}
		free(w); free(x); free(y); free(h); free(bf); free(xb); free(scratch);
	}
	printf("kernels amx-bf16: %zu F16/BF16 tile results match scalar\n", cases);
}

/* the quantized dot approximates the float dot */
static void test_quantized_accuracy(void **state)
{
	(void)state;
	enum { N = 1024 };
	float w[N], x[N], ref = 0, got;
	uint8_t q8[N / QK * 34], q4[N / QK * 18];
	struct q8a xa[N / QK];
	const struct kern_ops *k = kern_best();

	for (int i = 0; i < N; i++) {
		w[i] = frand();
		x[i] = frand();
		ref += w[i] * x[i];
	}
	kern_quantize_q8_0(N, w, q8);
	kern_quantize_q4_0(N, w, q4);
	k->quant_q8a(N, x, xa);
	got = k->dot_q8_0(N, q8, xa);
	assert_true(fabsf(got - ref) < 0.05f * sqrtf(N) / 8);
	got = k->dot_q4_0(N, q4, xa);
	assert_true(fabsf(got - ref) < 0.2f * sqrtf(N));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_swiglu),
		cmocka_unit_test(test_softmax_exp),
		cmocka_unit_test(test_repacked),
		cmocka_unit_test(test_amx),
		cmocka_unit_test(test_amx_bf16),
		cmocka_unit_test(test_float_tiles),
		cmocka_unit_test(test_quantized_accuracy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
