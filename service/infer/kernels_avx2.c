/* kernels_avx2.c — AVX2/FMA/F16C kernels (x86-64; compiled for any CPU with
 * target attributes, used only when the CPU has them). */
#include "infer/kernels.h"
#include "infer/quants.h"

#include <math.h>

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

TGT static float a_dot_f32(int n, const float *w, const float *x)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	int i = 0;
	float s;

	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
	s = hsum8(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += w[i] * x[i];
	return s;
}

TGT static float a_dot_f16(int n, const uint16_t *w, const float *x)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	int i = 0;
	float s;

	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
				     _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
				     _mm256_loadu_ps(x + i + 8), a1);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
				     _mm256_loadu_ps(x + i), a0);
	s = hsum8(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += _cvtsh_ss(w[i]) * x[i];
	return s;
}

TGT static inline __m256 bf16x8(const uint16_t *p)
{
	__m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));

	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

TGT static float a_dot_bf16(int n, const uint16_t *w, const float *x)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	int i = 0;
	float s;

	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
	s = hsum8(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += kern_bf16_to_f32(w[i]) * x[i];
	return s;
}

TGT static float a_dot_q8_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q8_0 *w = wv;
	const __m256i ones = _mm256_set1_epi16(1);
	__m256 acc = _mm256_setzero_ps();

	for (int b = 0; b < n / QK; b++) {
		__m256i qw = _mm256_loadu_si256((const __m256i *)w[b].qs);
		__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
		__m256i ax = _mm256_sign_epi8(qw, qw), sy = _mm256_sign_epi8(qx, qw);
		__m256i d32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);

		acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_set1_ps(_cvtsh_ss(w[b].d) * x[b].d), acc);
	}
	return hsum8(acc);
}

TGT static float a_dot_q4_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_0 *w = wv;
	const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	float corr = 0;

	for (int b = 0; b < n / QK; b++) {
		__m128i t = _mm_loadu_si128((const __m128i *)w[b].qs);
		__m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
		__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
		__m256i d32 = _mm256_madd_epi16(_mm256_maddubs_epi16(u, qx), ones);
		float dw = _cvtsh_ss(w[b].d);

		acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_set1_ps(dw * x[b].d), acc);
		corr += dw * x[b].ds;
	}
	return hsum8(acc) - 8.0f * corr;
}

/* four rows at once: the activation block is loaded once, four
 * independent accumulators keep the loads in flight */
TGT static void a_dot4_q8_0(int n, const void *wv, size_t rb, const struct q8a *x, float *out)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};

	for (int b = 0; b < n / QK; b++) {
		__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);

		for (int r = 0; r < 4; r++) {
			const struct blk_q8_0 *w = (const struct blk_q8_0 *)((const char *)wv + r * rb) + b;
			__m256i qw = _mm256_loadu_si256((const __m256i *)w->qs);
			__m256i d32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(qw, qw),
									      _mm256_sign_epi8(qx, qw)), ones);

			acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_set1_ps(_cvtsh_ss(w->d) * x[b].d), acc[r]);
		}
	}
	for (int r = 0; r < 4; r++)
		out[r] = hsum8(acc[r]);
}

TGT static void a_dot4_q4_0(int n, const void *wv, size_t rb, const struct q8a *x, float *out)
{
	const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
	__m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
	__m256 corr = _mm256_setzero_ps(); /* lanes 0..3: sum of dw * ds per row */

	for (int b = 0; b < n / QK; b++) {
		__m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
		float dw[4];

		for (int r = 0; r < 4; r++) {
			const struct blk_q4_0 *w = (const struct blk_q4_0 *)((const char *)wv + r * rb) + b;
			__m128i t = _mm_loadu_si128((const __m128i *)w->qs);
			__m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
			__m256i d32 = _mm256_madd_epi16(_mm256_maddubs_epi16(u, qx), ones);

			dw[r] = _cvtsh_ss(w->d);
			acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_set1_ps(dw[r] * x[b].d), acc[r]);
		}
		corr = _mm256_fmadd_ps(_mm256_setr_ps(dw[0], dw[1], dw[2], dw[3], 0, 0, 0, 0),
				       _mm256_set1_ps(x[b].ds), corr);
	}
	{
		float c[8];

		_mm256_storeu_ps(c, corr);
		for (int r = 0; r < 4; r++)
			out[r] = hsum8(acc[r]) - 8.0f * c[r];
	}
}

TGT static void a_key_scores(int hd, const float *q, const float *kb, float *sc)
{
	__m256 s0 = _mm256_loadu_ps(sc), s1 = _mm256_loadu_ps(sc + 8);

	for (int i = 0; i < hd; i++) {
		__m256 qi = _mm256_broadcast_ss(q + i);

		s0 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kb + i * 16), s0);
		s1 = _mm256_fmadd_ps(qi, _mm256_loadu_ps(kb + i * 16 + 8), s1);
	}
	_mm256_storeu_ps(sc, s0);
	_mm256_storeu_ps(sc + 8, s1);
}

TGT static void a_att_values(int hd, int n, const float *a, float scale, const float *v, size_t stride, float *out)
{
	int i = 0;

	for (; i + 8 <= hd; i += 8) {
		__m256 acc = _mm256_setzero_ps();

		for (int j = 0; j < n; j++)
			acc = _mm256_fmadd_ps(_mm256_set1_ps(a[j] * scale), _mm256_loadu_ps(v + (size_t)j * stride + i), acc);
		_mm256_storeu_ps(out + i, acc);
	}
	for (; i < hd; i++) {
		float acc = 0;

		for (int j = 0; j < n; j++)
			acc += a[j] * scale * v[(size_t)j * stride + i];
		out[i] = acc;
	}
}

TGT static void a_quant_q8a(int n, const float *x, struct q8a *out)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);

	for (int b = 0; b < n / QK; b++) {
		const float *p = x + b * QK;
		__m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
		__m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
		__m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
					 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
		__m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
		float amax, d, id;
		__m256 mul;
		__m256i i0, i1, i2, i3, s;

		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		amax = _mm_cvtss_f32(m4);
		d = amax / 127.0f;
		id = d ? 1.0f / d : 0.0f;
		mul = _mm256_set1_ps(id);
		i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, mul));
		i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, mul));
		i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, mul));
		i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, mul));
		s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
		{
			__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));

			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
			out[b].ds = d * (float)_mm_cvtsi128_si32(s4);
		}
		i0 = _mm256_packs_epi32(i0, i1);
		i2 = _mm256_packs_epi32(i2, i3);
		i0 = _mm256_packs_epi16(i0, i2);
		i0 = _mm256_permutevar8x32_epi32(i0, perm);
		_mm256_storeu_si256((__m256i *)out[b].qs, i0);
		out[b].d = d;
	}
}

/* exp(x) for 8 lanes: kernels_avx512.c's exp16, the same arithmetic */
TGT static inline __m256 a_exp8(__m256 x)
{
	__m256 n, r, p;

	x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
	n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
			    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(
		_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)));
}

/* SwiGLU, 8 lanes at a time; the tail (n % 8) in scalar code */
TGT static void a_swiglu(int n, float *h, const float *u)
{
	const __m256 one = _mm256_set1_ps(1.0f);
	int i = 0;

	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(h + i);
		__m256 e = a_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));

		_mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)),
						      _mm256_loadu_ps(u + i)));
	}
	if (i < n)
		kern_scalar.swiglu(n - i, h + i, u + i);
}

static const struct kern_ops ops = {
	.name = "avx2",
	.dot_f32 = a_dot_f32,
	.dot_f16 = a_dot_f16,
	.dot_bf16 = a_dot_bf16,
	.dot_q8_0 = a_dot_q8_0,
	.dot_q4_0 = a_dot_q4_0,
	.dot4_q8_0 = a_dot4_q8_0,
	.dot4_q4_0 = a_dot4_q4_0,
	.dot_q4_1 = quant_avx2_dot_q4_1,
	.dot_q5_0 = quant_avx2_dot_q5_0,
	.dot_q5_1 = quant_avx2_dot_q5_1,
	.dot_q4_k = quant_avx2_dot_q4_k,
	.dot_q5_k = quant_avx2_dot_q5_k,
	.dot_q6_k = quant_avx2_dot_q6_k,
	.key_scores = a_key_scores,
	.att_values = a_att_values,
	.quant_q8a = a_quant_q8a,
	.swiglu = a_swiglu,
};

const struct kern_ops *kern_avx2(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return &ops;
	return NULL;
}

#else
const struct kern_ops *kern_avx2(void) { return NULL; }
#endif
