/* kernels_quants_avx2.c — AVX2 dot products for Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K and Q6_K rows against q8a activations (the avx2 and avx512 tables
 * use them).  Per 32-value block the integer dot product is exact
 * (vpmaddubsw of unsigned weights, or |w| and sign-moved activations, then
 * vpmaddwd), and is scaled in float like the scalar references in quants.c;
 * the sums differ from those only in float rounding order. */
#include "infer/quants.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float hsum8(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);

	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

/* 16 nibble bytes -> 32 values 0..15: element j low nibble, j + 16 high */
TGT static inline __m256i nibbles32(const uint8_t *qs)
{
	__m128i t = _mm_loadu_si128((const __m128i *)qs);

	return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* bit i of the 32 bits at p -> byte i = 0x10 when set, else 0 */
TGT static inline __m256i bits32_x10(const uint8_t *p)
{
	uint32_t h;
	__m256i v;

	memcpy(&h, p, 4);
	v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
				_mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
	v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
	return _mm256_and_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

/* sum of u[i] * x[i] (u unsigned, at most 63), as 8 int32 partial sums */
TGT static inline __m256i udot(__m256i u, const int8_t *x)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)x)),
				 _mm256_set1_epi16(1));
}

TGT float quant_avx2_dot_q4_1(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_1 *w = wv;
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK; b++) {
		__m256i d32 = udot(nibbles32(w[b].qs), x[b].qs);

		acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_set1_ps(_cvtsh_ss(w[b].d) * x[b].d), acc);
		corr += _cvtsh_ss(w[b].m) * x[b].ds;
	}
	return hsum8(acc) + corr;
}

TGT float quant_avx2_dot_q5_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_0 *w = wv;
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK; b++) {
		__m256i u = _mm256_or_si256(nibbles32(w[b].qs), bits32_x10(w[b].qh));
		float dw = _cvtsh_ss(w[b].d);

		acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(u, x[b].qs)), _mm256_set1_ps(dw * x[b].d), acc);
		corr += dw * x[b].ds;
	}
	return hsum8(acc) - 16.0f * corr;
}

TGT float quant_avx2_dot_q5_1(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_1 *w = wv;
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK; b++) {
		__m256i u = _mm256_or_si256(nibbles32(w[b].qs), bits32_x10(w[b].qh));

		acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(u, x[b].qs)),
				      _mm256_set1_ps(_cvtsh_ss(w[b].d) * x[b].d), acc);
		corr += _cvtsh_ss(w[b].m) * x[b].ds;
	}
	return hsum8(acc) + corr;
}

/* One Q4_K/Q5_K super-block against x[0..8) (qh NULL for Q4_K) */
TGT static inline __m256 k45_block(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, float d,
				   float dmin, const struct q8a *x, __m256 acc, float *corr)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f), x10 = _mm256_set1_epi8(0x10);
	__m256i hb = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
	uint32_t sm[4];
	uint8_t scm[16];

	quant_k_scales8(scales, sm);
	memcpy(scm, sm, 16);

	for (int c = 0; c < 4; c++) {
		__m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
		__m256i u[2] = {_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4)};

		for (int k = 0; k < 2; k++) {
			int s = 2 * c + k, sc = scm[s], mn = scm[8 + s];

			if (qh) {
				__m256i bit = _mm256_set1_epi8((char)(1 << s));

				u[k] = _mm256_or_si256(u[k], _mm256_and_si256(
					_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit), x10));
			}
			acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(u[k], x[s].qs)),
					      _mm256_set1_ps(d * (float)sc * x[s].d), acc);
			*corr += dmin * (float)mn * x[s].ds;
		}
	}
	return acc;
}

TGT float quant_avx2_dot_q4_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_k *w = wv;
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK_K; b++)
		acc = k45_block(w[b].scales, w[b].qs, NULL, _cvtsh_ss(w[b].d), _cvtsh_ss(w[b].dmin), x + 8 * b, acc,
				&corr);
	return hsum8(acc) - corr;
}

TGT float quant_avx2_dot_q5_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_k *w = wv;
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK_K; b++)
		acc = k45_block(w[b].scales, w[b].qs, w[b].qh, _cvtsh_ss(w[b].d), _cvtsh_ss(w[b].dmin), x + 8 * b,
				acc, &corr);
	return hsum8(acc) - corr;
}

/* Q6_K: per half of 128 values, sub-block k (32 values) takes low (k even)
 * or high nibbles of ql[32 * (k % 2)..] and bits 2k, 2k + 1 of qh; its two
 * 16-value halves are scaled by scales[2 * sub-block] and [+ 1] in the
 * integer domain (vpmaddwd), so each 32-value block gets one float scale. */
TGT float quant_avx2_dot_q6_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q6_k *w = wv;
	const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x03), b32 = _mm256_set1_epi8(32);
	__m256 acc = _mm256_setzero_ps();

	for (int b = 0; b < n / QK_K; b++) {
		float d = _cvtsh_ss(w[b].d);

		for (int h = 0; h < 2; h++) {
			__m256i ql0 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h));
			__m256i ql1 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h + 32));
			__m256i qh = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * h));
			__m256i lo[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
					 _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
					 _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};

			for (int k = 0; k < 4; k++) {
				int g = 4 * h + k; /* the 32-value block within the super-block */
				const struct q8a *xb = &x[8 * b + g];
				__m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m3), 4);
				__m256i q = _mm256_sub_epi8(_mm256_or_si256(lo[k], hi), b32);
				__m256i xq = _mm256_loadu_si256((const __m256i *)xb->qs);
				__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
				__m256i sc = _mm256_set_m128i(_mm_set1_epi16(w[b].scales[2 * g + 1]),
							      _mm_set1_epi16(w[b].scales[2 * g]));

				acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, sc)),
						      _mm256_set1_ps(d * xb->d), acc);
			}
		}
	}
	return hsum8(acc);
}

#endif
