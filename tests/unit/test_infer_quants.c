/* test_infer_quants.c — Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: dequantization
 * against ggml's block definitions (written out here again from ggml's
 * loops, over raw bytes, independently of quants.c's structs), the
 * quantizers' round trip, and every kernel table's dot products against
 * the scalar references on random blocks, including random bytes with
 * edge scales (zero, subnormal, large, negative). */
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
#include "infer/gguf_write.h"
#include "infer/kernels.h"
#include "infer/quants.h"
#include "support/xorshift.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { return xorshift_unit(&rng); }
static uint8_t brand(void) { return (uint8_t)(xorshift64(&rng) >> 56); }

static const uint32_t TYPES[] = {GGML_Q4_1, GGML_Q5_0, GGML_Q5_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
enum { NTYPES = sizeof TYPES / sizeof TYPES[0] };

static float h2f(const uint8_t *p)
{
	uint16_t h;

	memcpy(&h, p, 2);
	return kern_f16_to_f32(h);
}

static void ref_scale_min(int j, const uint8_t *q, int *d, int *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
	}
}

/* One block of raw bytes to floats, following ggml's dequantize_row_* */
static void ref_block(uint32_t t, const uint8_t *b, float *y)
{
	switch (t) {
	case GGML_Q4_1: case GGML_Q5_0: case GGML_Q5_1: {
		float d = h2f(b), m = t == GGML_Q5_0 ? 0.0f : h2f(b + 2);
		uint32_t qh = 0;
		const uint8_t *qs = b + (t == GGML_Q4_1 ? 4 : t == GGML_Q5_0 ? 6 : 8);

		if (t != GGML_Q4_1)
			memcpy(&qh, b + (t == GGML_Q5_0 ? 2 : 4), 4);
		for (int j = 0; j < 16; j++) {
			int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
			int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;

			if (t == GGML_Q5_0) {
				y[j] = (float)(x0 - 16) * d;
				y[j + 16] = (float)(x1 - 16) * d;
			} else {
				y[j] = (float)x0 * d + m;
				y[j + 16] = (float)x1 * d + m;
			}
		}
		break;
	}
	case GGML_Q4_K: case GGML_Q5_K: {
		float d = h2f(b), min = h2f(b + 2);
		const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + (t == GGML_Q4_K ? 16 : 48);
		int is = 0, s, m;
		uint8_t u1 = 1, u2 = 2;

		for (int j = 0; j < 256; j += 64) {
			float d1, m1, d2, m2;

			ref_scale_min(is + 0, sc, &s, &m);
			d1 = d * (float)s;
			m1 = min * (float)m;
			ref_scale_min(is + 1, sc, &s, &m);
			d2 = d * (float)s;
			m2 = min * (float)m;
			for (int l = 0; l < 32; ++l)
				*y++ = d1 * (float)((ql[l] & 0xF) + (t == GGML_Q5_K && (qh[l] & u1) ? 16 : 0)) - m1;
			for (int l = 0; l < 32; ++l)
				*y++ = d2 * (float)((ql[l] >> 4) + (t == GGML_Q5_K && (qh[l] & u2) ? 16 : 0)) - m2;
			ql += 32;
			is += 2;
			u1 <<= 2;
			u2 <<= 2;
		}
		break;
	}
	case GGML_Q6_K: {
		const uint8_t *ql = b, *qh = b + 128;
		const int8_t *sc = (const int8_t *)(b + 192);
		float d = h2f(b + 208);

		for (int n = 0; n < 256; n += 128) {
			for (int l = 0; l < 32; ++l) {
				int is = l / 16;
				int q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
				int q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
				int q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;

				y[l + 0] = d * (float)sc[is + 0] * (float)q1;
				y[l + 32] = d * (float)sc[is + 2] * (float)q2;
				y[l + 64] = d * (float)sc[is + 4] * (float)q3;
				y[l + 96] = d * (float)sc[is + 6] * (float)q4;
			}
			y += 128;
			ql += 64;
			qh += 32;
			sc += 8;
		}
		break;
	}
	}
}

/* Random block bytes; the f16 scale fields set to `scale` (and the min
 * field of Q4_1/Q5_1/K to -scale / 2), so every bit of the quants and the
 * packed 6-bit scales is exercised */
static void rand_blocks(uint32_t t, int nblk, uint8_t *out, uint16_t scale)
{
	size_t bb = ggml_row_size(t, ggml_block_size(t));
	uint16_t mn = (uint16_t)(scale ^ 0x8000);

	for (int b = 0; b < nblk; b++) {
		uint8_t *p = out + (size_t)b * bb;

		for (size_t i = 0; i < bb; i++)
			p[i] = brand();
		if (t == GGML_Q6_K) {
			memcpy(p + 208, &scale, 2);
		} else {
			memcpy(p, &scale, 2);
			if (t != GGML_Q5_0)
				memcpy(p + 2, &mn, 2);
		}
	}
}

static const uint16_t EDGE_SCALES[] = {0x3c00 /* 1 */, 0x0000, 0x0001 /* smallest subnormal */, 0x7bff /* 65504 */,
				       0xb800 /* -0.5 */, 0x1400 /* ~0.001 */};

static void test_dequant_layouts(void **state)
{
	(void)state;
	size_t cases = 0;

	for (int ti = 0; ti < NTYPES; ti++) {
		uint32_t t = TYPES[ti];
		int bs = (int)ggml_block_size(t), nblk = 8, n = bs * nblk;
		size_t bb = ggml_row_size(t, bs);
		uint8_t *raw = malloc(bb * (size_t)nblk);
		float *got = malloc((size_t)n * 4), *want = malloc((size_t)n * 4), *via = malloc((size_t)n * 4);

		for (size_t e = 0; e < sizeof EDGE_SCALES / sizeof EDGE_SCALES[0]; e++)
			for (int rep = 0; rep < 20; rep++) {
				rand_blocks(t, nblk, raw, EDGE_SCALES[e]);
				quant_dequant_row(t, n, raw, got);
				kern_dequant_row(t, n, raw, via);
				for (int b = 0; b < nblk; b++)
					ref_block(t, raw + (size_t)b * bb, want + (size_t)b * bs);
				for (int i = 0; i < n; i++) {
					/* the same products; a compiler may fuse
					 * one multiply-add differently */
					if (fabsf(got[i] - want[i]) > 1e-6f * fabsf(want[i]) + 1e-30f)
						fail_msg("%s element %d (scale %04x): %.9g, ggml's definition %.9g",
							 ggml_type_name(t), i, EDGE_SCALES[e], got[i], want[i]);
					assert_true(got[i] == via[i] || (isnan(got[i]) && isnan(via[i])));
				}
				cases++;
			}
		free(raw); free(got); free(want); free(via);
	}
	printf("dequantization: %zu random rows of 8 blocks per ggml's layouts\n", cases);
}

/* The row shapes that exercise the quantizers' edge cases */
static void fill_row(int kind, int n, float *x)
{
	for (int i = 0; i < n; i++) {
		switch (kind) {
		case 0: x[i] = frand(); break;                       /* [-1, 1) */
		case 1: x[i] = 0.0f; break;                          /* all zero */
		case 2: x[i] = 0.25f; break;                         /* constant */
		case 3: x[i] = frand() * 1000.0f; break;             /* large */
		case 4: x[i] = frand() * 1e-4f; break;               /* small */
		case 5: x[i] = fabsf(frand()) + 0.5f; break;         /* all positive */
		case 6: x[i] = -fabsf(frand()) - 0.5f; break;        /* all negative */
		default: x[i] = i % 97 == 3 ? 50.0f : frand() * 0.1f; /* outliers */
		}
	}
}

/* Root-mean-square error of the round trip relative to the row's RMS: the
 * bounds follow the bits per weight (a uniform quantizer's RMS error is
 * step / sqrt(12); 4-bit steps over a block's range are 2/15 of a [-1, 1)
 * block, so 0.04 of its 0.58 RMS: 0.07; 5 bits half that; Q6_K's 6 bits
 * with int8 sub-scales a quarter) with room for the K-quants' rounded
 * 6-bit sub-scales, and for outlier rows (one value 500x the others owns
 * its block's step) */
static void test_quantize_roundtrip(void **state)
{
	(void)state;
	static const double bound[NTYPES] = {0.10, 0.10, 0.05, 0.12, 0.07, 0.05};
	enum { N = 1024 };
	float x[N], y[N];
	uint8_t q[N * 2];

	for (int ti = 0; ti < NTYPES; ti++) {
		double worst = 0;

		for (int kind = 0; kind < 8; kind++) {
			double se = 0, sx = 0, rel;

			fill_row(kind, N, x);
			assert_true(quant_row(TYPES[ti], N, x, q));
			quant_dequant_row(TYPES[ti], N, q, y);
			for (int i = 0; i < N; i++) {
				assert_true(isfinite(y[i]));
				se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
				sx += (double)x[i] * x[i];
			}
			if (kind == 1) {
				assert_true(se == 0); /* zeros stay exactly zero */
				continue;
			}
			rel = sqrt(se / sx);
			if (TYPES[ti] == GGML_Q6_K && kind == 4) {
				/* Q6_K's f16 super-scale d times int8 sub-scales
				 * cannot reach values under about 2^-24 x 128 x 32
				 * = 2.4e-4 (ggml's quantizer zeroes them too):
				 * only nothing may grow */
				assert_true(rel <= 1.0);
				continue;
			}
			if (rel > (kind == 7 ? 4 : 1) * bound[ti])
				fail_msg("%s row kind %d: relative RMS error %.4f > %.4f", ggml_type_name(TYPES[ti]), kind, rel,
					 bound[ti]);
			if (kind != 7 && rel > worst)
				worst = rel;
		}
		printf("%s quantizer: relative RMS error up to %.4f (bound %.2f)\n", ggml_type_name(TYPES[ti]), worst,
		       bound[ti]);
		/* a row that is not a multiple of the block is refused */
		assert_false(quant_row(TYPES[ti], ggml_block_size(TYPES[ti]) == 32 ? 48 : 288, x, q));
	}
	assert_false(quant_row(11 /* Q3_K */, 256, x, q));
}

/* The multi-token K-quant kernel: 1 to 9 tokens (groups of 8, 4, 2, 1),
 * each exactly the single-token dot product's bits */
static void check_dotn(const struct kern_ops *k)
{
	static const uint32_t kt[] = {GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
	enum { NB = 3, N = NB * 256, XS = N / QK + 3 /* a stride wider than the row */ };
	size_t cases = 0;

	for (size_t ti = 0; ti < 3; ti++) {
		uint8_t w[NB * 210];
		float xf[N], y[9 * 5], want;
		struct q8a *x = malloc(9 * XS * sizeof *x);

		assert_non_null(x);
		for (int rep = 0; rep < 4; rep++) {
			if (rep % 2)
				rand_blocks(kt[ti], NB, w, EDGE_SCALES[rep]);
			else {
				fill_row(rep, N, xf);
				assert_true(quant_row(kt[ti], N, xf, w));
			}
			for (int t = 0; t < 9; t++) {
				for (int i = 0; i < N; i++)
					xf[i] = frand() * (t == 3 ? 0.0f : 1.0f);
				kern_scalar.quant_q8a(N, xf, x + t * XS);
			}
			for (int nt = 1; nt <= 9; nt++) {
				memset(y, 0, sizeof y);
				k->dotn_k(kt[ti], N, w, x, XS, nt, y, 5);
				for (int t = 0; t < nt; t++) {
					want = kern_dot_q(k, kt[ti])(N, w, x + t * XS);
					if (memcmp(&y[t * 5], &want, sizeof want) != 0)
						fail_msg("%s dotn %s: token %d of %d: %.9g, alone %.9g", k->name,
							 ggml_type_name(kt[ti]), t, nt, y[t * 5], want);
				}
				cases++;
			}
		}
		free(x);
	}
	printf("%s: the multi-token K-quant kernel = the dot products bit for bit (%zu cases)\n", k->name, cases);
}

/* The four-row K-quant kernel: rows a stride wider than the row apart,
 * random and edge-scale blocks, each exactly the one-row dot product's
 * bits */
static void check_dot4(const struct kern_ops *k)
{
	static const uint32_t kt[] = {GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
	enum { NB = 3, N = NB * 256, RB = NB * 210 + 24 /* wider than any row */ };
	size_t cases = 0;

	for (size_t ti = 0; ti < 3; ti++) {
		static uint8_t w[4 * RB];
		float xf[N], y[4], want;
		struct q8a x[N / QK];

		for (int rep = 0; rep < 6; rep++) {
			for (int r = 0; r < 4; r++) {
				if ((rep + r) % 2)
					rand_blocks(kt[ti], NB, w + r * RB, EDGE_SCALES[(rep + r) % 5]);
				else {
					fill_row(rep + r, N, xf);
					assert_true(quant_row(kt[ti], N, xf, w + r * RB));
				}
			}
			for (int i = 0; i < N; i++)
				xf[i] = frand() * (rep == 3 ? 0.0f : 1.0f);
			kern_scalar.quant_q8a(N, xf, x);
			k->dot4_k(kt[ti], N, w, RB, x, y);
			for (int r = 0; r < 4; r++) {
				want = kern_dot_q(k, kt[ti])(N, w + r * RB, x);
				if (memcmp(&y[r], &want, sizeof want) != 0)
					fail_msg("%s dot4 %s rep %d: row %d: %.9g, alone %.9g", k->name, ggml_type_name(kt[ti]),
						 rep, r, y[r], want);
				cases++;
			}
		}
	}
	printf("%s: the four-row K-quant kernel = the dot products bit for bit (%zu rows)\n", k->name, cases);
}

/* dot(type) of every table against the scalar reference, and the scalar
 * reference against the double-precision sum of dequantized weights times
 * dequantized activations (ties the dot products to the layouts) */
static void check_dots(const struct kern_ops *k)
{
	static const int nblk[] = {1, 2, 3, 8, 11};
	size_t cases = 0;

	for (int ti = 0; ti < NTYPES; ti++) {
		uint32_t t = TYPES[ti];
		kern_dot_q_fn f = kern_dot_q(k, t), ref = kern_dot_q(&kern_scalar, t);

		assert_non_null(f);
		for (size_t ni = 0; ni < sizeof nblk / sizeof nblk[0]; ni++) {
			int bs = (int)ggml_block_size(t), n = bs * nblk[ni];
			size_t rb = ggml_row_size(t, n);
			uint8_t *w = malloc(rb);
			float *wf = malloc((size_t)n * 4), *xf = malloc((size_t)n * 4);
			struct q8a *xa = malloc((size_t)n / QK * sizeof *xa);

			for (int rep = 0; rep < 2 * (int)(sizeof EDGE_SCALES / sizeof EDGE_SCALES[0]); rep++) {
				double exact = 0, mag = 0;
				float got, want;

				if (rep % 2)
					rand_blocks(t, nblk[ni], w, EDGE_SCALES[rep / 2]);
				else {
					fill_row(rep / 2 % 8, n, wf);
					assert_true(quant_row(t, n, wf, w));
				}
				for (int i = 0; i < n; i++)
					xf[i] = rep == 4 ? 0.0f : frand() * (rep == 6 ? 1e-3f : 1.0f);
				kern_scalar.quant_q8a(n, xf, xa);
				kern_dequant_row(t, n, w, wf);
				for (int i = 0; i < n; i++) {
					double xv = (double)xa[i / QK].d * xa[i / QK].qs[i % QK];

					exact += (double)wf[i] * xv;
					mag += fabs((double)wf[i] * xv);
				}
				want = ref(n, w, xa);
				got = f(n, w, xa);
				if (!(fabs(want - exact) <= 1e-5 * mag + 1e-30))
					fail_msg("scalar %s n=%d rep %d: %.9g, exact %.9g", ggml_type_name(t), n, rep, want,
						 exact);
				if (!(fabs(got - want) <= 1e-5 * mag + 1e-30))
					fail_msg("%s %s n=%d rep %d: %.9g vs scalar %.9g", k->name, ggml_type_name(t), n, rep,
						 got, want);
				cases++;
			}
			free(w); free(wf); free(xf); free(xa);
		}
	}
	printf("%s: %zu dot products of the six types match\n", k->name, cases);
	if (k->dotn_k)
		check_dotn(k);
	if (k->dot4_k)
		check_dot4(k);
}

static void test_dots_scalar(void **state)
{
	(void)state;
	check_dots(&kern_scalar);
}

static void test_dots_avx2(void **state)
{
	(void)state;
	if (!kern_avx2()) {
		printf("no AVX2/FMA on this CPU: the avx2 table is not tested\n");
		skip();
	}
	check_dots(kern_avx2());
}

static void test_dots_avx512(void **state)
{
	(void)state;
	if (!kern_avx512()) {
		printf("no AVX-512 VNNI on this CPU: the avx512 table is not tested\n");
		skip();
	}
	check_dots(kern_avx512());
}

/* The AVX-512 VNNI tiles over rows repacked at load (mm4_kr): Q5_0, Q4_1,
 * Q5_1, Q4_K, Q5_K and Q6_K rows of random bytes with edge scales and of
 * quantized rows, repacked (the same size), four rows at a time against 1
 * to 9 tokens (tiles of 8, 4, 2 and 1), each result against the scalar
 * dot product on the file's row (the K-quants, whose tiles take the
 * activations requantized to one scale per 256 values: within the bound
 * of that rounding, half a step kd per value times |w|, and the same bits
 * as their scalar definition quant_kr_dot);
 * and each token's results the same bits as that token's alone (a token's
 * logits must not depend on its batch) */
static void check_repacked(const struct kern_ops *k, uint32_t t, int n, size_t *cases)
{
	enum { R = 8, T = 9 };
	int nb = n / QK;
	size_t rb = ggml_row_size(t, n), xs = (size_t)n / QR + 1; /* a stride wider than the row */
	uint8_t *w = malloc(R * rb), *p = malloc(R * rb);
	float *wf = malloc((size_t)n * 4), *xf = malloc((size_t)n * 4);
	float y[T * R], y1[R], want[T][R], mag[T][R], exact[T][R];
	bool kq = ggml_block_size(t) == QK_K;
	struct q8a *xa = malloc((size_t)T * nb * sizeof *xa);
	struct q8r *xr = malloc((size_t)T * xs * sizeof *xr), *xv = malloc(xs * sizeof *xv);
	uint32_t rt = quant_repacked_type(t);

	assert_true(w && p && wf && xf && xa && xr && xv && rt);
	assert_int_equal(kern_repack_row_size(t, n), rb);
	for (int rep = 0; rep < 6; rep++) {
		for (int r = 0; r < R; r++) {
			if ((rep + r) % 2)
				rand_blocks(t, n / (int)ggml_block_size(t), w + r * rb, EDGE_SCALES[(rep + r) % 6]);
			else {
				fill_row((rep + r) % 8, n, wf);
				assert_true(quant_row(t, n, wf, w + r * rb));
			}
			kern_repack_row(t, n, w + r * rb, p + r * rb);
		}
		for (int tok = 0; tok < T; tok++) {
			for (int i = 0; i < n; i++)
				xf[i] = tok == 3 ? 0.0f : frand() * (tok == 5 ? 1e-3f : 1.0f);
			kern_scalar.quant_q8a(n, xf, xa + tok * nb);
			kern_q8a_to_q8r(n, xa + tok * nb, xr + tok * xs);
			if (k->to_q8r) {
				/* the table's conversion: the same bytes, ds included */
				k->to_q8r(n, xa + tok * nb, xv);
				assert_memory_equal(xv, xr + tok * xs, (size_t)n / QR * sizeof *xv);
			}
		}
		for (int r = 0; r < R; r++) {
			kern_dequant_row(t, n, w + r * rb, wf);
			for (int tok = 0; tok < T; tok++) {
				const struct q8a *xt = xa + tok * nb;
				double m = 0;

				for (int i = 0; i < n; i++) {
					m += fabs((double)wf[i] * xt[i / QK].d * xt[i / QK].qs[i % QK]);
					if (kq)
						m += 1e5 * 0.5 * fabs((double)wf[i]) * xr[tok * xs + i / QR].kd;
				}
				mag[tok][r] = (float)m;
				want[tok][r] = kern_dot_q(&kern_scalar, t)(n, w + r * rb, xt);
				if (kq)
					exact[tok][r] = quant_kr_dot(t, n, w + r * rb, xr + tok * xs);
			}
		}
		for (int ntok = 1; ntok <= T; ntok++) {
			for (int r0 = 0; r0 < R; r0 += 4)
				k->mm4_kr(rt, n, p + r0 * rb, rb, xr, xs, ntok, y + r0, R);
			for (int tok = 0; tok < ntok; tok++) {
				for (int r0 = 0; r0 < R; r0 += 4)
					k->mm4_kr(rt, n, p + r0 * rb, rb, xr + tok * xs, xs, 1, y1 + r0, R);
				for (int r = 0; r < R; r++) {
					float got = y[tok * R + r];

					if (!(fabs(got - want[tok][r]) <= 1e-5 * mag[tok][r] + 1e-30))
						fail_msg("%s repacked %s n=%d rep %d: row %d token %d of %d: %.9g, scalar %.9g",
							 k->name, ggml_type_name(t), n, rep, r, tok, ntok, got, want[tok][r]);
					if (kq && memcmp(&got, &exact[tok][r], sizeof got) != 0)
						fail_msg("%s repacked %s n=%d rep %d: row %d token %d of %d: %.9g, "
							 "quant_kr_dot %.9g", k->name, ggml_type_name(t), n, rep, r, tok,
							 ntok, got, exact[tok][r]);
					if (memcmp(&got, &y1[r], sizeof got) != 0)
						fail_msg("%s repacked %s n=%d: token %d of %d: %.9g, alone %.9g", k->name,
							 ggml_type_name(t), n, tok, ntok, got, y1[r]);
					(*cases)++;
				}
			}
		}
	}
	free(w); free(p); free(wf); free(xf); free(xa); free(xr); free(xv);
}

static void test_repacked_k(void **state)
{
	(void)state;
	static const uint32_t kt[] = {GGML_Q5_0, GGML_Q4_1, GGML_Q5_1, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K};
	static const int sizes[] = {128, 256, 768, 896, 2048};
	const struct kern_ops *k = kern_avx512();
	size_t cases = 0;

	if (!k || !k->mm4_kr) {
		printf("no AVX-512 VNNI on this CPU: the repacked VNNI tiles are not tested\n");
		skip();
	}
	for (size_t ti = 0; ti < sizeof kt / sizeof kt[0]; ti++)
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			if (ggml_block_size(kt[ti]) == QK_K && sizes[si] % QK_K) {
				/* not repackable: the kernels keep the file's rows */
				assert_int_equal(quant_repack_row_size(kt[ti], sizes[si]), 0);
				continue;
			}
			check_repacked(k, kt[ti], sizes[si], &cases);
		}
	/* what is not repacked */
	assert_int_equal(quant_repack_row_size(GGML_Q5_0, 96), 0);
	assert_int_equal(quant_repack_row_size(GGML_Q4_1, 160), 0);
	assert_int_equal(quant_repack_row_size(GGML_Q5_1, 32), 0);
	assert_int_equal(quant_repack_row_size(GGML_Q4_K, 128), 0);
	assert_int_equal(quant_repacked_type(GGML_Q8_0), 0);
	assert_int_equal(quant_repacked_type(GGML_F16), 0);
	printf("%s: %zu repacked Q5_0/Q4_1/Q5_1/K-quant tile results match scalar, each = its token alone\n", k->name,
	       cases);
}

/* With GFNI the avx512 table's Q6_K tiles are a second build
 * (kernels_krepack_gfni.c: the top two bits put in place by an affine map):
 * the tiles without it must still be right on CPUs that lack GFNI, and both
 * give the same bits (the same exact integer per block) */
static void test_repacked_q6k_gfni(void **state)
{
	(void)state;
	enum { N = 2048, R = 8, T = 9 };
	const struct kern_ops *k = kern_avx512();
	struct kern_ops base;
	size_t rb = ggml_row_size(GGML_Q6_K, N), xs = N / QR, cases = 0;
	uint8_t *w = malloc(R * rb), *p = malloc(R * rb);
	float *xf = malloc(N * sizeof *xf), y[T * R], yb[T * R];
	struct q8a *xa = malloc((size_t)T * (N / QK) * sizeof *xa);
	struct q8r *xr = malloc((size_t)T * xs * sizeof *xr);

	assert_true(w && p && xf && xa && xr);
	if (!k || !k->mm4_kr || k->mm4_kr != quant_avx512_mm4_kr_gfni) {
		printf("no AVX-512 VNNI with GFNI (or ALLOT_NO_GFNI is set): one Q6_K tile build only\n");
		free(w); free(p); free(xf); free(xa); free(xr);
		skip();
	}
	/* the tiles without GFNI, through the whole check of the others */
	base = *k;
	base.mm4_kr = quant_avx512_mm4_kr;
	check_repacked(&base, GGML_Q6_K, 256, &cases);
	check_repacked(&base, GGML_Q6_K, 2048, &cases);
	for (int rep = 0; rep < 4; rep++) {
		for (int r = 0; r < R; r++) {
			if ((rep + r) % 2)
				rand_blocks(GGML_Q6_K, N / QK_K, w + r * rb, EDGE_SCALES[(rep + r) % 6]);
			else {
				fill_row((rep + r) % 8, N, xf);
				assert_true(quant_row(GGML_Q6_K, N, xf, w + r * rb));
			}
			kern_repack_row(GGML_Q6_K, N, w + r * rb, p + r * rb);
		}
		for (int t = 0; t < T; t++) {
			for (int i = 0; i < N; i++)
				xf[i] = frand();
			kern_scalar.quant_q8a(N, xf, xa + t * (N / QK));
			kern_q8a_to_q8r(N, xa + t * (N / QK), xr + t * xs);
		}
		for (int ntok = 1; ntok <= T; ntok++) {
			for (int r0 = 0; r0 < R; r0 += 4) {
				quant_avx512_mm4_kr_gfni(GGML_Q6_KR, N, p + r0 * rb, rb, xr, xs, ntok, y + r0, R);
				quant_avx512_mm4_kr(GGML_Q6_KR, N, p + r0 * rb, rb, xr, xs, ntok, yb + r0, R);
			}
			if (memcmp(y, yb, (size_t)ntok * R * sizeof *y) != 0)
				fail_msg("Q6_K tiles with and without GFNI differ (%d tokens, rep %d)", ntok, rep);
			cases += (size_t)ntok * R;
		}
	}
	printf("Q6_K tiles without GFNI = scalar, with GFNI = without, bit for bit: %zu results\n", cases);
	free(w); free(p); free(xf); free(xa); free(xr);
}

/* Q6_K's tiles apply the 16-value sub-scales in the integer domain after
 * packing each 4-value partial sum (signed weights q - 32 times the
 * activation bytes plus 128) into 16 bits: at the extremes of every field
 * (q 0 and 63, sub-scales -128 and 127, activations -128 and 127: 2^24 per
 * 32-value block) the results must be the exact sum (int64, here) but for
 * the float rounding of adding the blocks' exact sums: a 16-bit overflow
 * anywhere would be off by far more */
static void test_repacked_q6k_extremes(void **state)
{
	(void)state;
	enum { N = 512, NB = N / QK, T = 9 };
	const struct kern_ops *k = kern_avx512();
	size_t rb = ggml_row_size(GGML_Q6_K, N), xs = N / QR, cases = 0;
	struct blk_q6_k w[4][N / QK_K];
	uint8_t p[4 * sizeof w[0]];
	int qv[4][N / QK_K], sv[4][N / QK_K];
	struct q8a xa[T][NB];
	struct q8r xr[T][N / QR];
	float y[T * 4];

	if (!k || !k->mm4_kr) {
		printf("no AVX-512 VNNI on this CPU: the repacked Q6_K tiles are not tested\n");
		skip();
	}
	assert_int_equal(rb, sizeof w[0]);
	for (int r = 0; r < 4; r++) {
		for (int b = 0; b < N / QK_K; b++) {
			/* row r: every q 0 or 63, every sub-scale -128 or 127 (the
			 * second super-block the other way round) */
			int q = (r + b) % 2 ? 63 : 0, hi = q >> 4;

			qv[r][b] = q;
			sv[r][b] = (r / 2 + b) % 2 ? 127 : -128;
			memset(w[r][b].ql, (q & 0xf) | (q & 0xf) << 4, sizeof w[r][b].ql);
			memset(w[r][b].qh, hi | hi << 2 | hi << 4 | hi << 6, sizeof w[r][b].qh);
			memset(w[r][b].scales, sv[r][b], sizeof w[r][b].scales);
			w[r][b].d = 0x3c00;
		}
		kern_repack_row(GGML_Q6_K, N, w[r], p + r * rb);
	}
	for (int t = 0; t < T; t++) {
		for (int b = 0; b < NB; b++) {
			/* tokens alternate -128 and 127 (one block of token 4 mixed) */
			int8_t x = (t + (b > NB / 2)) % 2 ? 127 : -128;

			xa[t][b].d = 1.0f;
			memset(xa[t][b].qs, x, QK);
			if (t == 4 && b == 3)
				for (int i = 0; i < QK; i += 3)
					xa[t][b].qs[i] = (int8_t)(i % 2 ? 127 : -128);
			xa[t][b].ds = 0;
			for (int i = 0; i < QK; i++)
				xa[t][b].ds += xa[t][b].qs[i];
		}
		kern_q8a_to_q8r(N, xa[t], xr[t]);
	}
	for (int ntok = 1; ntok <= T; ntok++) {
		k->mm4_kr(GGML_Q6_KR, N, p, rb, xr[0], xs, ntok, y, 4);
		for (int t = 0; t < ntok; t++)
			for (int r = 0; r < 4; r++) {
				int64_t exact = 0;
				float scalar = quant_dot_q6_k(N, w[r], xa[t]);

				for (int i = 0; i < N; i++)
					exact += (int64_t)sv[r][i / QK_K] * (qv[r][i / QK_K] - 32) * xa[t][i / QK].qs[i % QK];
				if (!(fabs(y[t * 4 + r] - (double)exact) <= 4e-6 * fabs((double)exact)) ||
				    !(fabs(scalar - (double)exact) <= 4e-6 * fabs((double)exact)))
					fail_msg("Q6_K extremes: row %d token %d of %d: %.9g, scalar %.9g, exact %lld", r, t,
						 ntok, y[t * 4 + r], scalar, (long long)exact);
				cases++;
			}
	}
	printf("%s: %zu Q6_K tile results at the extremes = the exact sums\n", k->name, cases);
}

/* The K fields of the repacked activations (kern_q8r_k), by hand: a
 * super-block's values requantized to its largest block scale, rint(q x (d
 * / kd)) with ties to even, their 32- and 16-value sums in the pair
 * layout; a last odd group is a super-block alone; and the AVX-512
 * conversion gives the same bytes */
static void test_q8r_kfields(void **state)
{
	(void)state;
	enum { N = 384 }; /* a super-block and a group alone */
	static const float d[12] = {2, 1, 0.5f, 0, 4, 4, 1, 2, 3, 0.75f, 0, 1.5f};
	struct q8a xa[N / QK];
	struct q8r xr[N / QR], xv[N / QR];
	const struct kern_ops *k = kern_avx512();

	for (int b = 0; b < N / QK; b++) {
		xa[b].d = d[b];
		xa[b].ds = 0;
		for (int i = 0; i < QK; i++)
			xa[b].qs[i] = (int8_t)(i % 2 ? 3 + 2 * (i / 2) : -(3 + 2 * (i / 2)));
	}
	kern_q8a_to_q8r(N, xa, xr);
	/* super-block 0: kd 4; block 1 (d 1, f 0.25): q 3 -> 0.75 -> 1, q 5 -> 1.25 -> 1,
	 * q -7 -> -1.75 -> -2; block 0 (f 0.5): q 3 -> 1.5 -> 2, q 5 -> 2.5 -> 2 (ties to even),
	 * q -7 -> -3.5 -> -4; block 4 (f 1) unchanged; block 3 (d 0) zero */
	assert_true(xr[0].kd == 4.0f && xr[1].kd == 4.0f && xr[2].kd == 3.0f);
	assert_int_equal(xr[0].klo[16 * 1 + 1], 1);
	assert_int_equal(xr[0].klo[16 * 1 + 3], 1);
	assert_int_equal(xr[0].klo[16 * 1 + 4], -2);
	assert_int_equal(xr[0].klo[1], 2);
	assert_int_equal(xr[0].klo[3], 2);
	assert_int_equal(xr[0].klo[4], -4);
	assert_int_equal(xr[1].khi[5], xa[4].qs[21]);
	for (int i = 0; i < 16; i++)
		assert_true(xr[0].klo[48 + i] == 0 && xr[0].khi[48 + i] == 0);
	for (int g = 0; g < 3; g++) {
		/* the super-block's 32- and 16-value sums (a missing group: 0) */
		int sb = g / 2, s32[8] = {0}, s16[16] = {0};

		for (int b = 0; b < 8; b++)
			for (int i = 0; i < QK && 2 * sb + b / 4 < 3; i++) {
				const struct q8r *q = &xr[2 * sb + b / 4];
				int v = i < 16 ? q->klo[16 * (b % 4) + i] : q->khi[16 * (b % 4) + i - 16];

				s32[b] += v;
				s16[2 * b + i / 16] += v;
			}
		for (int l = 0; l < 16; l++)
			for (int e = 0; e < 2; e++) {
				assert_int_equal(xr[g].ks32[2 * l + e], s32[2 * (l / 4) + e]);
				assert_int_equal(xr[g].ks16a[2 * l + e], s16[2 * (l / 4) + e]);
				assert_int_equal(xr[g].ks16b[2 * l + e], s16[8 + 2 * (l / 4) + e]);
			}
	}
	if (!k || !k->to_q8r) {
		printf("no AVX-512 on this CPU: its activation conversion is not compared\n");
		return;
	}
	k->to_q8r(N, xa, xv);
	assert_memory_equal(xv, xr, sizeof xr);
	/* a NaN scale (activations gone wrong): still the same bytes */
	xa[2].d = NAN;
	kern_q8a_to_q8r(N, xa, xr);
	k->to_q8r(N, xa, xv);
	assert_memory_equal(xv, xr, sizeof xr);
	printf("the K fields of the repacked activations: by hand, and the AVX-512 conversion the same bytes\n");
}

/* The writer quantizes F32 and F16 sources, and refuses what it cannot */
static void test_writer_quant(void **state)
{
	(void)state;
	enum { C = 256, R = 3 };
	float x[C * R];
	uint16_t h[C * R];

	for (int i = 0; i < C * R; i++) {
		x[i] = frand();
		h[i] = kern_f32_to_f16(x[i]);
	}
	for (int ti = 0; ti < NTYPES; ti++) {
		struct gguf_writer *w = gguf_writer_new();
		struct buf img = BUF_INIT;
		struct gguf *g;
		const struct gguf_tensor *a, *b;
		char err[GGUF_ERR_MAX];
		int64_t ne[2] = {C, R};
		uint8_t q[R * 210];

		gguf_writer_tensor_quant(w, "a", TYPES[ti], 2, ne, GGML_F32, x);
		gguf_writer_tensor_quant(w, "b", TYPES[ti], 2, ne, GGML_F16, h);
		assert_int_equal(gguf_writer_to_buf(w, &img), ALLOT_OK);
		gguf_writer_free(w);
		assert_int_equal(gguf_parse(img.data, img.len, &g, err, sizeof err), ALLOT_OK);
		a = gguf_find_tensor(g, "a");
		b = gguf_find_tensor(g, "b");
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(a->type, TYPES[ti]);
		for (int r = 0; r < R; r++)
			assert_true(quant_row(TYPES[ti], C, x + r * C, q + r * ggml_row_size(TYPES[ti], C)));
		assert_memory_equal(a->data, q, R * ggml_row_size(TYPES[ti], C));
		assert_int_equal(b->nbytes, a->nbytes);
		gguf_free(g);
		buf_release(&img);
	}
	{
		struct gguf_writer *w = gguf_writer_new();
		struct buf img = BUF_INIT;
		int64_t ne[2] = {C - 32, 1};

		gguf_writer_tensor_quant(w, "k", GGML_Q4_K, 2, ne, GGML_F32, x); /* 224: not a multiple of 256 */
		assert_int_equal(gguf_writer_to_buf(w, &img), ALLOT_E_INVALID);
		gguf_writer_free(w);
		buf_release(&img);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dequant_layouts),
		cmocka_unit_test(test_quantize_roundtrip),
		cmocka_unit_test(test_dots_scalar),
		cmocka_unit_test(test_dots_avx2),
		cmocka_unit_test(test_dots_avx512),
		cmocka_unit_test(test_repacked_k),
		cmocka_unit_test(test_repacked_q6k_extremes),
		cmocka_unit_test(test_repacked_q6k_gfni),
		cmocka_unit_test(test_q8r_kfields),
		cmocka_unit_test(test_writer_quant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
