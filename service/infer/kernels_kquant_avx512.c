/* kernels_kquant_avx512.c — AVX-512 VNNI dot products for the K-quants
 * (Q4_K, Q5_K, Q6_K rows against q8a activations), for the avx512 table.
 *
 * A 512-bit register holds two 32-value sub-blocks (K-quant sub-blocks of
 * 32 are exactly the activation blocks); one vpdpbusd gives their exact
 * integer partial sums in 4-value lanes, which are converted and
 * multiplied by a vector of per-lane scales (weight scale x sub-scale x
 * activation scale, spread over the lanes with one permute), so no
 * horizontal sum is needed before the end of the row.  The sums are those
 * of the scalar references in quants.c up to float rounding order. */
#include "infer/gguf.h"
#include "infer/quants.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

/* The 8 activation scales (d) or scaled sums (ds) of one super-block:
 * struct q8a is 10 floats */
TGT static inline __m256 xgather(const float *p)
{
	return _mm256_i32gather_ps(p, _mm256_setr_epi32(0, 10, 20, 30, 40, 50, 60, 70), 4);
}

/* activation blocks a and b side by side */
TGT static inline __m512i xpair(const struct q8a *a, const struct q8a *b)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a->qs)),
				  _mm256_loadu_si256((const __m256i *)b->qs), 1);
}

/* Q4_K and Q5_K: the 64-byte halves of qs hold sub-blocks (0, 2) and
 * (4, 6) in their low nibbles, (1, 3) and (5, 7) in the high ones; bit s
 * of qh[i] is bit 4 of element i of sub-block s.  One row against ntok
 * (1..4) activation rows xs blocks apart, each super-block's weights
 * unpacked once for all of them; every token's arithmetic is the same
 * whatever ntok (the same bits as alone). */
TGT static inline void dotn_k45(int n, const uint8_t *base, size_t bb, bool q5, const struct q8a *x, size_t xs,
				int ntok, float *y, size_t ys)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
	static const int32_t pat[4][16] = {
		{0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3},
		{4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6}, {5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7},
	};
	/* qh shift per pair: sub-blocks (0,2) (1,3) (4,6) (5,7) */
	static const int16_t sh[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
	__m512 acc[4];
	__m256 macc[4];

	for (int t = 0; t < ntok; t++) {
		acc[t] = _mm512_setzero_ps();
		macc[t] = _mm256_setzero_ps();
	}
	for (int b = 0; b < n / QK_K; b++) {
		const uint8_t *blk = base + (size_t)b * bb;
		uint16_t dh, mh;
		uint32_t u[4];
		__m256 ws, wm;
		__m512i q[4];

		memcpy(&dh, blk, 2);
		memcpy(&mh, blk + 2, 2);
		quant_k_scales8(blk + 4, u);
		ws = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u))),
				   _mm256_set1_ps(_cvtsh_ss(dh)));
		wm = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 2)))),
				   _mm256_set1_ps(_cvtsh_ss(mh)));
		{
			const uint8_t *qs = blk + (q5 ? 48 : 16);
			__m512i w0 = _mm512_loadu_si512(qs), w1 = _mm512_loadu_si512(qs + 64);

			q[0] = _mm512_and_si512(w0, m4);
			q[1] = _mm512_and_si512(_mm512_srli_epi16(w0, 4), m4);
			q[2] = _mm512_and_si512(w1, m4);
			q[3] = _mm512_and_si512(_mm512_srli_epi16(w1, 4), m4);
		}
		if (q5) {
			__m256i h = _mm256_loadu_si256((const __m256i *)(blk + 16));
			__m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(h), h, 1);

			for (int k = 0; k < 4; k++) {
				__m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16(sh[k][0]), _mm256_set1_epi16(sh[k][1]), 1);

				q[k] = _mm512_or_si512(q[k], _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, cnt), one), 4));
			}
		}
		for (int t = 0; t < ntok; t++) {
			const struct q8a *xb = x + (size_t)t * xs + 8 * b;
			__m256 p = _mm256_mul_ps(ws, xgather(&xb->d));

			macc[t] = _mm256_fmadd_ps(wm, xgather(&xb->ds), macc[t]);
			for (int k = 0; k < 4; k++) {
				/* pair k: sub-blocks pat[k][0] and pat[k][8] */
				__m512i d32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[k],
								  xpair(&xb[pat[k][0]], &xb[pat[k][8]]));

				acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
							 _mm512_permutexvar_ps(_mm512_loadu_si512(pat[k]),
									       _mm512_castps256_ps512(p)),
							 acc[t]);
			}
		}
	}
	for (int t = 0; t < ntok; t++)
		y[(size_t)t * ys] = _mm512_reduce_add_ps(acc[t]) -
				    _mm512_reduce_add_ps(_mm512_insertf32x8(_mm512_setzero_ps(), macc[t], 0));
}

/* Q6_K: the 64 bytes ql[64h..] hold sub-blocks (4h, 4h + 1) in their low
 * nibbles and (4h + 2, 4h + 3) in the high ones, with 2-bit pairs 0, 1, 2,
 * 3 of qh[32h..]; scales per 16 values, so per 4-lane group of vpdpbusd.
 * ntok (1..4) tokens as dotn_k45. */
TGT static inline void dotn_q6k(int n, const struct blk_q6_k *w, const struct q8a *x, size_t xs, int ntok, float *y,
				size_t ys)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x03), c32 = _mm512_set1_epi8(32);
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m512 acc[4];

	for (int t = 0; t < ntok; t++)
		acc[t] = _mm512_setzero_ps();
	for (int b = 0; b < n / QK_K; b++) {
		__m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)w[b].scales))),
					  _mm512_set1_ps(_cvtsh_ss(w[b].d)));
		__m512i u[4];
		__m512 s[4];

		for (int h = 0; h < 2; h++) {
			__m512i ql = _mm512_loadu_si512(w[b].ql + 64 * h);
			__m256i h8 = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * h));
			__m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(h8), h8, 1);

			for (int k = 0; k < 2; k++) {
				int pi = 2 * h + k; /* sub-blocks 2 pi, 2 pi + 1 */
				__m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * k)),
								 _mm256_set1_epi16((short)(4 * k + 2)), 1);
				__m512i lo = k ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4) : _mm512_and_si512(ql, m4);

				u[pi] = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, cnt), m3), 4));
				/* lane L: scale 4 pi + L / 4 */
				s[pi] = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(4 * pi), _mm512_srli_epi32(lane, 2)),
							      sc);
			}
		}
		for (int t = 0; t < ntok; t++) {
			const struct q8a *xb = x + (size_t)t * xs + 8 * b;
			__m512 xd = _mm512_castps256_ps512(xgather(&xb->d));

			for (int pi = 0; pi < 4; pi++) {
				__m512i xq = xpair(&xb[2 * pi], &xb[2 * pi + 1]);
				__m512i d32 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u[pi], xq),
							       _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, xq));
				/* lane L: activation block 2 pi + L / 8 */
				__m512 xl = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(2 * pi),
										   _mm512_srli_epi32(lane, 3)), xd);

				acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), _mm512_mul_ps(s[pi], xl), acc[t]);
			}
		}
	}
	for (int t = 0; t < ntok; t++)
		y[(size_t)t * ys] = _mm512_reduce_add_ps(acc[t]);
}

TGT float quant_avx512_dot_q4_k(int n, const void *w, const struct q8a *x)
{
	float y;

	dotn_k45(n, w, sizeof(struct blk_q4_k), false, x, 0, 1, &y, 0);
	return y;
}

TGT float quant_avx512_dot_q5_k(int n, const void *w, const struct q8a *x)
{
	float y;

	dotn_k45(n, w, sizeof(struct blk_q5_k), true, x, 0, 1, &y, 0);
	return y;
}

TGT float quant_avx512_dot_q6_k(int n, const void *w, const struct q8a *x)
{
	float y;

	dotn_q6k(n, w, x, 0, 1, &y, 0);
	return y;
}

TGT void quant_avx512_dotn_k(uint32_t type, int n, const void *w, const struct q8a *x, size_t xs, int ntok,
			     float *y, size_t ys)
{
	for (int t0 = 0; t0 < ntok; t0 += 4) {
		int c = ntok - t0 < 4 ? ntok - t0 : 4;

		if (type == GGML_Q6_K)
			dotn_q6k(n, w, x + (size_t)t0 * xs, xs, c, y + (size_t)t0 * ys, ys);
		else
			dotn_k45(n, w, type == GGML_Q4_K ? sizeof(struct blk_q4_k) : sizeof(struct blk_q5_k),
				 type == GGML_Q5_K, x + (size_t)t0 * xs, xs, c, y + (size_t)t0 * ys, ys);
	}
}

#endif
