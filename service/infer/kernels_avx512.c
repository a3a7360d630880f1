/* kernels_avx512.c — AVX-512 (F, BW, VL, DQ) with VNNI kernels: two
 * quantized blocks per instruction, vpdpbusd for the integer dot products.
 * Compiled with target attributes, used only when the CPU has them. */
#include "infer/kernels.h"
#include "infer/quants.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

TGT static float b_dot_f32(int n, const float *w, const float *x)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	int i = 0;

	for (; i + 32 <= n; i += 32) {
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
		a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);

		a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

TGT static float b_dot_f16(int n, const uint16_t *w, const float *x)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	int i = 0;

	for (; i + 32 <= n; i += 32) {
		a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i))),
				     _mm512_loadu_ps(x + i), a0);
		a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16))),
				     _mm512_loadu_ps(x + i + 16), a1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);

		a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
				     _mm512_maskz_loadu_ps(m, x + i), a0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

TGT static inline __m512 bf16x16(__m256i h)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

TGT static float b_dot_bf16(int n, const uint16_t *w, const float *x)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	int i = 0;

	for (; i + 32 <= n; i += 32) {
		a0 = _mm512_fmadd_ps(bf16x16(_mm256_loadu_si256((const __m256i *)(w + i))),
				     _mm512_loadu_ps(x + i), a0);
		a1 = _mm512_fmadd_ps(bf16x16(_mm256_loadu_si256((const __m256i *)(w + i + 16))),
				     _mm512_loadu_ps(x + i + 16), a1);
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);

		a0 = _mm512_fmadd_ps(bf16x16(_mm256_maskz_loadu_epi16(m, w + i)),
				     _mm512_maskz_loadu_ps(m, x + i), a0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

TGT static inline __m512i join(__m256i lo, __m256i hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

TGT static inline __m512 scale2(float s0, float s1)
{
	return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

TGT static float b_dot_q8_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q8_0 *w = wv;
	const __m512i zero = _mm512_setzero_si512();
	__m512 acc = _mm512_setzero_ps();
	int nb = n / QK, b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i qw = join(_mm256_loadu_si256((const __m256i *)w[b].qs),
				  _mm256_loadu_si256((const __m256i *)w[b + 1].qs));
		__m512i qx = join(_mm256_loadu_si256((const __m256i *)x[b].qs),
				  _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
		__mmask64 neg = _mm512_movepi8_mask(qw);
		__m512i ax = _mm512_abs_epi8(qw);
		__m512i sy = _mm512_mask_sub_epi8(qx, neg, zero, qx);
		__m512i d = _mm512_dpbusd_epi32(zero, ax, sy);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
				      scale2(_cvtsh_ss(w[b].d) * x[b].d, _cvtsh_ss(w[b + 1].d) * x[b + 1].d), acc);
	}
	{
		float s = _mm512_reduce_add_ps(acc);

		for (; b < nb; b++) {
			__m256i qw = _mm256_loadu_si256((const __m256i *)w[b].qs);
			__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
			__m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qw),
							_mm256_sign_epi8(qx, qw));
			__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));

			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
			s += (float)_mm_cvtsi128_si32(s4) * _cvtsh_ss(w[b].d) * x[b].d;
		}
		return s;
	}
}

TGT static inline __m256i nibbles(const uint8_t *q)
{
	__m128i t = _mm_loadu_si128((const __m128i *)q);

	return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

TGT static float b_dot_q4_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_0 *w = wv;
	const __m512i zero = _mm512_setzero_si512();
	__m512 acc = _mm512_setzero_ps();
	float corr = 0;
	int nb = n / QK, b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i u = join(nibbles(w[b].qs), nibbles(w[b + 1].qs));
		__m512i qx = join(_mm256_loadu_si256((const __m256i *)x[b].qs),
				  _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
		__m512i d = _mm512_dpbusd_epi32(zero, u, qx);
		float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale2(d0 * x[b].d, d1 * x[b + 1].d), acc);
		corr += d0 * x[b].ds + d1 * x[b + 1].ds;
	}
	{
		float s = _mm512_reduce_add_ps(acc);

		for (; b < nb; b++) {
			__m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles(w[b].qs),
							_mm256_loadu_si256((const __m256i *)x[b].qs));
			__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
			float dw = _cvtsh_ss(w[b].d);

			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
			s += (float)_mm_cvtsi128_si32(s4) * dw * x[b].d;
			corr += dw * x[b].ds;
		}
		return s - 8.0f * corr;
	}
}

/* Four rows, two blocks per step.  Q4_0: sum((u - 8) x) = sum(u x) -
 * 8 sum(x); the 8 sum(x) lanes come from one extra vpdpbusd per block pair
 * shared by the four rows, so everything stays in vectors. */
TGT static void b_dot4_q4_0(int n, const void *wv, size_t rb, const struct q8a *x, float *out)
{
	const __m512i zero = _mm512_setzero_si512(), eight = _mm512_set1_epi8(8);
	__m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
	const char *w = wv;
	int nb = n / QK, b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i qx = join(_mm256_loadu_si256((const __m256i *)x[b].qs),
				  _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
		__m512i xs8 = _mm512_dpbusd_epi32(zero, eight, qx);
		float dx0 = x[b].d, dx1 = x[b + 1].d;

		for (int r = 0; r < 4; r++) {
			const struct blk_q4_0 *wb = (const struct blk_q4_0 *)(w + r * rb) + b;
			__m512i u = join(nibbles(wb[0].qs), nibbles(wb[1].qs));
			__m512i d = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, u, qx), xs8);

			acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
						 scale2(_cvtsh_ss(wb[0].d) * dx0, _cvtsh_ss(wb[1].d) * dx1), acc[r]);
		}
	}
	for (int r = 0; r < 4; r++) {
		out[r] = _mm512_reduce_add_ps(acc[r]);
		if (b < nb)
			out[r] += b_dot_q4_0(QK, (const struct blk_q4_0 *)(w + r * rb) + b, x + b);
	}
}

TGT static void b_dot4_q8_0(int n, const void *wv, size_t rb, const struct q8a *x, float *out)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
	const char *w = wv;
	int nb = n / QK, b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i qx = join(_mm256_loadu_si256((const __m256i *)x[b].qs),
				  _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
		float dx0 = x[b].d, dx1 = x[b + 1].d;

		for (int r = 0; r < 4; r++) {
			const struct blk_q8_0 *wb = (const struct blk_q8_0 *)(w + r * rb) + b;
			__m512i qw = join(_mm256_loadu_si256((const __m256i *)wb[0].qs),
					  _mm256_loadu_si256((const __m256i *)wb[1].qs));
			__m512i sy = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), zero, qx);
			__m512i d = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(qw), sy);

			acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
						 scale2(_cvtsh_ss(wb[0].d) * dx0, _cvtsh_ss(wb[1].d) * dx1), acc[r]);
		}
	}
	for (int r = 0; r < 4; r++) {
		out[r] = _mm512_reduce_add_ps(acc[r]);
		if (b < nb)
			out[r] += b_dot_q8_0(QK, (const struct blk_q8_0 *)(w + r * rb) + b, x + b);
	}
}

/* ---- repacked rows: 4 rows x TT tokens per call ----------------------------------- */

#define AI __attribute__((always_inline)) inline
/* the tile loops must be unrolled for the accumulators to live in registers */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 4")
#endif

/* Q4 (q8 = 0) or Q8 (q8 = 1) repacked tile.  The arithmetic is that of
 * the AMX tiles (kernels_amx.c), bit for bit, so that a token's results
 * do not depend on the size of its batch: per (row, token) the exact
 * integer dot product of each block, then, block after block in order,
 * acc = fma(dot, row scale x token scale, acc).  vpdpbusd leaves four
 * partial sums of block j in lanes 4j..4j+3 of each row's vector; four
 * rows' vectors are summed and transposed into F (lane 4j + r: row r,
 * block j, exact), and the blocks' 128-bit lanes are chained in order. */
TGT static AI void mm4r(int q8, int TT, int n, const uint8_t *w, size_t rb, const struct q8r *x,
			size_t xs, float *y, size_t ys)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
	/* lane 4j + r takes lane 4r + j */
	const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	const size_t gb = q8 ? 136 : 72, so = q8 ? 128 : 64;
	/* the prefetch distance in rows: about the same bytes for both types */
	const size_t pf = q8 ? 4 : 8;
	__m128 acc[4];
	int ng = n / QR;

	UNROLL for (int t = 0; t < 4; t++)
		acc[t] = _mm_setzero_ps();
	for (int g = 0; g < ng; g++) {
		__m512i lo[4], hi[4];
		__m512 wd;

		UNROLL for (int r = 0; r < 4; r++) {
			const uint8_t *wg = w + r * rb + (size_t)g * gb;

			/* rows ahead, while these compute: about 9 KiB for
			 * 2048-wide rows (memory latency times one thread's share
			 * of the bandwidth, with room); rows are too short for the
			 * hardware prefetcher to lock on before they end */
			_mm_prefetch((const char *)wg + pf * rb, _MM_HINT_T0);
			_mm_prefetch((const char *)wg + pf * rb + 64, _MM_HINT_T0);
			if (q8)
				_mm_prefetch((const char *)wg + pf * rb + 128, _MM_HINT_T0);
			if (q8) {
				lo[r] = _mm512_loadu_si512(wg);
				hi[r] = _mm512_loadu_si512(wg + 64);
			} else {
				__m512i v = _mm512_loadu_si512(wg);

				lo[r] = _mm512_and_si512(v, m4);
				hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
			}
		}
		{
			/* row r's four scales in lanes 4r..4r+3, then lane 4j + r */
			const uint8_t *sc = w + (size_t)g * gb + so;
			__m256i h = _mm256_set_m128i(
				_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(sc + 2 * rb)),
						   _mm_loadl_epi64((const __m128i *)(sc + 3 * rb))),
				_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)sc),
						   _mm_loadl_epi64((const __m128i *)(sc + rb))));

			wd = _mm512_permutexvar_ps(tr, _mm512_cvtph_ps(h));
		}
		UNROLL for (int t = 0; t < TT; t++) {
			const struct q8r *xg = x + (size_t)t * xs + g;
			__m512i xl = _mm512_loadu_si512(xg->lo), xh = _mm512_loadu_si512(xg->hi);
			__m512i s = _mm512_loadu_si512(xg->s8), d[4], a, b, s01, s23;
			__m512 f, sc;

			if (q8)
				s = _mm512_slli_epi32(s, 4);
			UNROLL for (int r = 0; r < 4; r++)
				d[r] = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo[r], xl), hi[r], xh), s);
			a = _mm512_unpacklo_epi32(d[0], d[1]);
			b = _mm512_unpackhi_epi32(d[0], d[1]);
			s01 = _mm512_add_epi32(a, b);
			a = _mm512_unpacklo_epi32(d[2], d[3]);
			b = _mm512_unpackhi_epi32(d[2], d[3]);
			s23 = _mm512_add_epi32(a, b);
			f = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23),
								_mm512_unpackhi_epi64(s01, s23)));
			sc = _mm512_mul_ps(wd, _mm512_loadu_ps(xg->d));
			acc[t] = _mm_fmadd_ps(_mm512_castps512_ps128(f), _mm512_castps512_ps128(sc), acc[t]);
			acc[t] = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 1), _mm512_extractf32x4_ps(sc, 1), acc[t]);
			acc[t] = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 2), _mm512_extractf32x4_ps(sc, 2), acc[t]);
			acc[t] = _mm_fmadd_ps(_mm512_extractf32x4_ps(f, 3), _mm512_extractf32x4_ps(sc, 3), acc[t]);
		}
	}
	UNROLL for (int t = 0; t < TT; t++)
		_mm_storeu_ps(y + (size_t)t * ys, acc[t]);
}

/* All tokens in tiles of 4, then 2, then 1; q8: 0 Q4_0, 1 Q8_0 rows. */
TGT static AI void mm4r_all(int q8, int n, const void *w, size_t rb, const struct q8r *x,
			    size_t xs, int ntok, float *y, size_t ys)
{
	int t = 0;

	for (; t + 4 <= ntok; t += 4)
		mm4r(q8, 4, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t + 2 <= ntok; t += 2)
		mm4r(q8, 2, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t < ntok; t++)
		mm4r(q8, 1, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
}

TGT static void b_mm4_q4_0r(int n, const void *w, size_t rb, const struct q8r *x, size_t xs,
			    int ntok, float *y, size_t ys)
{
	mm4r_all(0, n, w, rb, x, xs, ntok, y, ys);
}

TGT static void b_mm4_q8_0r(int n, const void *w, size_t rb, const struct q8r *x, size_t xs,
			    int ntok, float *y, size_t ys)
{
	mm4r_all(1, n, w, rb, x, xs, ntok, y, ys);
}

/* ---- float-type rows: 4 rows x TT tokens ----------------------------------------- */

/* kind: 0 f32, 1 f16, 2 bf16 */
TGT static AI __m512 wload(int kind, const uint8_t *row, int i)
{
	if (kind == 0)
		return _mm512_loadu_ps((const float *)row + i);
	if (kind == 1)
		return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
	return bf16x16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
}

TGT static AI void mm4f(int kind, int TT, int n, const uint8_t *w, size_t rb, const float *x, size_t xs,
			float *y, size_t ys)
{
	__m512 acc[4][4];

	UNROLL for (int r = 0; r < 4; r++)
		UNROLL for (int t = 0; t < 4; t++)
			acc[r][t] = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__m512 wr[4];

		UNROLL for (int r = 0; r < 4; r++)
			wr[r] = wload(kind, w + r * rb, i);
		UNROLL for (int t = 0; t < TT; t++) {
			__m512 xv = _mm512_loadu_ps(x + (size_t)t * xs + i);

			UNROLL for (int r = 0; r < 4; r++)
				acc[r][t] = _mm512_fmadd_ps(wr[r], xv, acc[r][t]);
		}
	}
	UNROLL for (int t = 0; t < TT; t++)
		UNROLL for (int r = 0; r < 4; r++)
			y[(size_t)t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define MM4F(name, kind) \
TGT static void name(int n, const void *w, size_t rb, const float *x, size_t xs, int ntok, float *y, size_t ys) \
{ \
	int t = 0; \
	for (; t + 4 <= ntok; t += 4) \
		mm4f(kind, 4, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys); \
	for (; t + 2 <= ntok; t += 2) \
		mm4f(kind, 2, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys); \
	for (; t < ntok; t++) \
		mm4f(kind, 1, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys); \
}
MM4F(b_mm4_f32, 0)
MM4F(b_mm4_f16, 1)
MM4F(b_mm4_bf16, 2)

TGT static void b_key_scores(int hd, const float *q, const float *kb, float *sc)
{
	__m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_setzero_ps();
	int i = 0;

	for (; i + 2 <= hd; i += 2) {
		s0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_loadu_ps(kb + i * 16), s0);
		s1 = _mm512_fmadd_ps(_mm512_set1_ps(q[i + 1]), _mm512_loadu_ps(kb + (i + 1) * 16), s1);
	}
	for (; i < hd; i++)
		s0 = _mm512_fmadd_ps(_mm512_set1_ps(q[i]), _mm512_loadu_ps(kb + i * 16), s0);
	_mm512_storeu_ps(sc, _mm512_add_ps(s0, s1));
}

TGT static void b_att_values(int hd, int n, const float *a, float scale, const float *v, size_t stride, float *out)
{
	int i = 0;

	for (; i + 16 <= hd; i += 16) {
		__m512 acc = _mm512_setzero_ps();

		for (int j = 0; j < n; j++)
			acc = _mm512_fmadd_ps(_mm512_set1_ps(a[j] * scale), _mm512_loadu_ps(v + (size_t)j * stride + i), acc);
		_mm512_storeu_ps(out + i, acc);
	}
	for (; i < hd; i++) {
		float acc = 0;

		for (int j = 0; j < n; j++)
			acc += a[j] * scale * v[(size_t)j * stride + i];
		out[i] = acc;
	}
}

/* exp(x) for 16 lanes, x clamped to [-87.3, 88.3] (2^n stays a normal
 * float): x = n ln2 + r (|r| <= ln2 / 2, ln2 in two parts), exp(r) by
 * Cephes' degree-7 polynomial, times 2^n built from its exponent bits;
 * within 2 ulp of expf there.  kernels_avx2.c's a_exp8 is the same
 * arithmetic on 8 lanes, so both tables give identical SwiGLU results. */
TGT static inline __m512 exp16(__m512 x)
{
	__m512 n, r, p;

	x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3f)), _mm512_set1_ps(-87.3f));
	n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
				 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(
		_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23)));
}

TGT static void b_swiglu(int n, float *h, const float *u)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	int i = 0;

	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_loadu_ps(h + i);
		__m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));

		_mm512_storeu_ps(h + i, _mm512_mul_ps(_mm512_div_ps(v, _mm512_add_ps(one, e)),
						      _mm512_loadu_ps(u + i)));
	}
	if (i < n)
		kern_avx2()->swiglu(n - i, h + i, u + i);
}

/* kern_q8a_to_q8r: a group of four blocks per step */
TGT static void b_to_q8r(int n, const struct q8a *a, struct q8r *r)
{
	const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();

	for (int g = 0; g < n / QR; g++, r++, a += 4) {
		__m512i lo = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)a[0].qs));
		__m512i hi = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(a[0].qs + 16)));
		__m512 d = _mm512_castps128_ps512(_mm_set1_ps(a[0].d));
		__m512 ds = _mm512_castps128_ps512(_mm_set1_ps(a[0].ds));

		lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)a[1].qs), 1);
		lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)a[2].qs), 2);
		lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)a[3].qs), 3);
		hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(a[1].qs + 16)), 1);
		hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(a[2].qs + 16)), 2);
		hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(a[3].qs + 16)), 3);
		d = _mm512_insertf32x4(d, _mm_set1_ps(a[1].d), 1);
		d = _mm512_insertf32x4(d, _mm_set1_ps(a[2].d), 2);
		d = _mm512_insertf32x4(d, _mm_set1_ps(a[3].d), 3);
		ds = _mm512_insertf32x4(ds, _mm_set1_ps(a[1].ds), 1);
		ds = _mm512_insertf32x4(ds, _mm_set1_ps(a[2].ds), 2);
		ds = _mm512_insertf32x4(ds, _mm_set1_ps(a[3].ds), 3);
		_mm512_storeu_si512(r->lo, lo);
		_mm512_storeu_si512(r->hi, hi);
		_mm512_storeu_si512(r->s8, _mm512_slli_epi32(
			_mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, ones, lo), ones, hi), 3));
		_mm512_storeu_ps(r->d, d);
		_mm512_storeu_ps(r->ds, ds);
	}
	quant_avx512_q8r_k(n, r - n / QR);
}

TGT static float b_softmax_exp(int n, float *a, float max)
{
	__m512 m = _mm512_set1_ps(max), sum = _mm512_setzero_ps();
	int i = 0;

	for (; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, a + i), m));

		_mm512_mask_storeu_ps(a + i, k, e);
		sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
	}
	return _mm512_reduce_add_ps(sum);
}

static const struct kern_ops *avx2_quant; /* set once, before ops is handed out */
static const struct kern_ops *avx512_ops;
static struct kern_ops ops_gfni;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void b_quant_q8a(int n, const float *x, struct q8a *out)
{
	avx2_quant->quant_q8a(n, x, out);
}

static const struct kern_ops ops = {
	.name = "avx512-vnni",
	.dot_f32 = b_dot_f32,
	.dot_f16 = b_dot_f16,
	.dot_bf16 = b_dot_bf16,
	.dot_q8_0 = b_dot_q8_0,
	.dot_q4_0 = b_dot_q4_0,
	.dot4_q8_0 = b_dot4_q8_0,
	.dot4_q4_0 = b_dot4_q4_0,
	.dot_q4_1 = quant_avx2_dot_q4_1,
	.dot_q5_0 = quant_avx2_dot_q5_0,
	.dot_q5_1 = quant_avx2_dot_q5_1,
	.dot_q4_k = quant_avx512_dot_q4_k,
	.dot_q5_k = quant_avx512_dot_q5_k,
	.dot_q6_k = quant_avx512_dot_q6_k,
	.dotn_k = quant_avx512_dotn_k,
	.dot4_k = quant_avx512_dot4_k,
	.key_scores = b_key_scores,
	.att_values = b_att_values,
	.quant_q8a = b_quant_q8a,
	.swiglu = b_swiglu,
	.softmax_exp = b_softmax_exp,
	.mm4_q4_0r = b_mm4_q4_0r,
	.mm4_q8_0r = b_mm4_q8_0r,
	.to_q8r = b_to_q8r,
	.mm4_kr = quant_avx512_mm4_kr,
	.mm4_f32 = b_mm4_f32,
	.mm4_f16 = b_mm4_f16,
	.mm4_bf16 = b_mm4_bf16,
};

static void probe(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vnni") && kern_avx2()) {
		avx2_quant = kern_avx2();
		avx512_ops = &ops;
		if (__builtin_cpu_supports("gfni") && !getenv("ALLOT_NO_GFNI")) {
			/* the Q6_K tiles with GFNI (kernels_krepack_gfni.c) */
			ops_gfni = ops;
			ops_gfni.mm4_kr = quant_avx512_mm4_kr_gfni;
			avx512_ops = &ops_gfni;
		}
	}
}

const struct kern_ops *kern_avx512(void)
{
	pthread_once(&once, probe);
	return avx512_ops;
}

#else
const struct kern_ops *kern_avx512(void) { return NULL; }
#endif
