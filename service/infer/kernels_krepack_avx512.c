/* kernels_krepack_avx512.c — AVX-512 VNNI tiles of four rows times up to
 * four tokens over Q4_K, Q5_K, Q6_K and Q5_0 rows repacked at load
 * (quants_repack.c), against struct q8r activations: the scheme of the
 * Q4_0R/Q8_0R tiles (kernels_avx512.c, mm4r) with each type's scales.
 *
 * Per group of 128 values (four 32-value blocks, lane j = block j) and
 * row, the weights are unpacked once to unsigned bytes (lo: values 0-15
 * of each block, hi: 16-31) and used for every token of the tile: two
 * vpdpbusd give four partial sums of each block per row, the four rows'
 * vectors are summed and transposed into one (lane 4j + r: row r, block
 * j, an exact integer), converted once and scaled once:
 *
 *   Q4_K/Q5_K  acc += F x (d sc[j] x xd[j]) - dmin mn[j] x xds[j]
 *   Q6_K       F is already sum(sc16 x (q - 32) x x) (the 16-value
 *              sub-scales applied on the int32 partial sums, as int32),
 *              acc += F x (d x xd[j])
 *   Q5_0       F = sum(q x) - 16 sum(x), acc += F x (d[j] x xd[j])
 *
 * A (row, token) pair is computed by the same instructions in the same
 * order whatever the number of tokens of the call, so a token's results do
 * not depend on its batch (decoding one token uses these tiles too). */
#include "infer/gguf.h"
#include "infer/quants.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline)) inline
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 4")
#endif

enum { KQ4, KQ5, KQ6, KQ50 };

/* one group of four rows, unpacked */
struct kg {
	__m512i lo[4], hi[4];
	__m512 wd;              /* lane 4j + r: row r's scale for block j */
	__m512 wm;              /* Q4_K/Q5_K: row r's min for block j */
	__m512i slo[4], shi[4]; /* Q6_K: row r's sub-scales of block j's halves, lanes 4j..4j+3 */
};

/* d[r]: row r's four partial sums of block j in lanes 4j..4j+3; the
 * result: lane 4j + r the whole sum, exact */
TGT static AI __m512i transpose_sum(const __m512i d[4])
{
	__m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[0], d[1]), _mm512_unpackhi_epi32(d[0], d[1]));
	__m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2], d[3]), _mm512_unpackhi_epi32(d[2], d[3]));

	return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

/* bit 4 from a 64-bit mask (bit 16j + i: byte i of lane j) */
TGT static AI __m512i bit4(const uint8_t *p)
{
	uint64_t m;

	memcpy(&m, p, 8);
	return _mm512_maskz_mov_epi8(_cvtu64_mask64(m), _mm512_set1_epi8(0x10));
}

/* bits 4-5 from 16 bytes whose bits 2j, 2j + 1 belong to lane j */
TGT static AI __m512i bits45(const uint8_t *p)
{
	/* 16-bit shift counts 2j in lane j */
	const __m512i cnt = _mm512_inserti64x4(
		_mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(2), _mm_set1_epi16(0))),
		_mm256_set_m128i(_mm_set1_epi16(6), _mm_set1_epi16(4)), 1);
	__m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));

	b = _mm512_and_si512(_mm512_srlv_epi16(b, cnt), _mm512_set1_epi8(3));
	return _mm512_slli_epi16(b, 4);
}

/* bytes 4r + j of four words w[r] to lanes 4j + r as floats */
TGT static AI __m512 scales16(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3)
{
	const __m128i tr = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m128i s = _mm_shuffle_epi8(_mm_setr_epi32((int)w0, (int)w1, (int)w2, (int)w3), tr);

	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(s));
}

/* the f16 at p of each of four rows rb apart, as lanes 4j + r (any j) */
TGT static AI __m512 rowvec(const uint8_t *p, size_t rb)
{
	uint16_t h[4];

	for (int r = 0; r < 4; r++)
		memcpy(&h[r], p + (size_t)r * rb, 2);
	return _mm512_broadcast_f32x4(_mm_setr_ps(_cvtsh_ss(h[0]), _cvtsh_ss(h[1]), _cvtsh_ss(h[2]), _cvtsh_ss(h[3])));
}

/* Q4_K/Q5_K super-block scales of four rows: wd[h], wm[h] for its groups */
TGT static AI void k45_scales(const uint8_t *p, size_t rb, __m512 wd[2], __m512 wm[2])
{
	uint32_t u[4][4];
	__m512 d = rowvec(p, rb), m = rowvec(p + 2, rb);

	for (int r = 0; r < 4; r++)
		quant_k_scales8(p + (size_t)r * rb + 4, u[r]);
	for (int h = 0; h < 2; h++) {
		wd[h] = _mm512_mul_ps(scales16(u[0][h], u[1][h], u[2][h], u[3][h]), d);
		wm[h] = _mm512_mul_ps(scales16(u[0][2 + h], u[1][2 + h], u[2][2 + h], u[3][2 + h]), m);
	}
}

/* group g's bytes (and, for Q6_K, sub-scales) of four rows */
TGT static AI void unpack(int kind, const uint8_t *w, size_t rb, int g, struct kg *k)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const size_t sbb = kind == KQ4 ? 144 : kind == KQ5 ? 176 : 210;
	const int h = g % 2;

	UNROLL for (int r = 0; r < 4; r++) {
		const uint8_t *b = kind == KQ50 ? w + (size_t)r * rb + (size_t)g * 88
						: w + (size_t)r * rb + (size_t)(g / 2) * sbb;
		const uint8_t *qs = kind == KQ50 ? b : b + 64 * h;
		__m512i v = _mm512_loadu_si512(qs);

		k->lo[r] = _mm512_and_si512(v, m4);
		k->hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		if (kind == KQ5 || kind == KQ50) {
			const uint8_t *hb = kind == KQ50 ? b + 64 : b + 128 + 16 * h;

			k->lo[r] = _mm512_or_si512(k->lo[r], bit4(hb));
			k->hi[r] = _mm512_or_si512(k->hi[r], bit4(hb + 8));
		} else if (kind == KQ6) {
			/* block j's sub-scales 8h + 2j (values 0-15) and 8h + 2j + 1 */
			const __m128i pl = _mm_setr_epi8(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
			const __m128i ph = _mm_setr_epi8(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
			__m128i sc = _mm_loadl_epi64((const __m128i *)(b + 192 + 8 * h));

			k->lo[r] = _mm512_or_si512(k->lo[r], bits45(b + 128 + 32 * h));
			k->hi[r] = _mm512_or_si512(k->hi[r], bits45(b + 128 + 32 * h + 16));
			k->slo[r] = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, pl));
			k->shi[r] = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, ph));
		}
	}
	if (kind == KQ50) {
		/* row r's four block scales in lanes 4r..4r+3, then lane 4j + r */
		const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
		const uint8_t *sc = w + (size_t)g * 88 + 80;
		__m256i hv = _mm256_set_m128i(
			_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(sc + 2 * rb)),
					   _mm_loadl_epi64((const __m128i *)(sc + 3 * rb))),
			_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)sc),
					   _mm_loadl_epi64((const __m128i *)(sc + rb))));

		k->wd = _mm512_permutexvar_ps(tr, _mm512_cvtph_ps(hv));
	}
}

/* one token's products for one group, added to acc */
TGT static AI __m512 step(int kind, const struct kg *k, const struct q8r *xg, __m512 acc)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i xl = _mm512_loadu_si512(xg->lo), xh = _mm512_loadu_si512(xg->hi), d[4];
	__m512 xd = _mm512_loadu_ps(xg->d);

	if (kind == KQ6) {
		/* sum((q - 32) x) = sum(q x) - 32 sum(x), per half */
		const __m512i c32 = _mm512_set1_epi8(32);
		__m512i sl = _mm512_dpbusd_epi32(zero, c32, xl), sh = _mm512_dpbusd_epi32(zero, c32, xh);

		UNROLL for (int r = 0; r < 4; r++)
			d[r] = _mm512_add_epi32(
				_mm512_mullo_epi32(_mm512_sub_epi32(_mm512_dpbusd_epi32(zero, k->lo[r], xl), sl), k->slo[r]),
				_mm512_mullo_epi32(_mm512_sub_epi32(_mm512_dpbusd_epi32(zero, k->hi[r], xh), sh), k->shi[r]));
	} else {
		__m512i s16 = kind == KQ50 ? _mm512_slli_epi32(_mm512_loadu_si512(xg->s8), 1) : zero;

		UNROLL for (int r = 0; r < 4; r++) {
			d[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, k->lo[r], xl), k->hi[r], xh);
			if (kind == KQ50)
				d[r] = _mm512_sub_epi32(d[r], s16);
		}
	}
	acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(transpose_sum(d)), _mm512_mul_ps(k->wd, xd), acc);
	if (kind == KQ4 || kind == KQ5)
		acc = _mm512_fnmadd_ps(k->wm, _mm512_loadu_ps(xg->ds), acc);
	return acc;
}

/* rows ahead, while these compute (rows are too short for the hardware
 * prefetcher to lock on before they end): group g's bytes of four rows */
TGT static AI void prefetch(int kind, const uint8_t *w, size_t rb, int g)
{
	const size_t pf = kind == KQ4 ? 8 : 6;
	const size_t gb = kind == KQ4 ? 72 : kind == KQ5 ? 88 : kind == KQ6 ? 105 : 88;

	for (int r = 0; r < 4; r++) {
		const char *p = (const char *)w + (pf + (size_t)r) * rb + (size_t)g * gb;

		_mm_prefetch(p, _MM_HINT_T0);
		_mm_prefetch(p + 64, _MM_HINT_T0);
	}
}

/* four rows x TT tokens */
TGT static AI void mmk(int kind, int TT, int n, const uint8_t *w, size_t rb, const struct q8r *x, size_t xs,
		       float *y, size_t ys)
{
	__m512 acc[4];
	int ng = n / QR;

	UNROLL for (int t = 0; t < 4; t++)
		acc[t] = _mm512_setzero_ps();
	for (int g = 0; g < ng; g++) {
		struct kg k;

		if (g % 2 == 0 && (kind == KQ4 || kind == KQ5)) {
			__m512 wd[2], wm[2];
			const uint8_t *p = w + (size_t)(g / 2) * (kind == KQ4 ? 144 : 176) + (kind == KQ4 ? 128 : 160);

			k45_scales(p, rb, wd, wm);
			/* both groups of the super-block, the scales decoded once */
			prefetch(kind, w, rb, g);
			prefetch(kind, w, rb, g + 1);
			for (int h = 0; h < 2; h++) {
				unpack(kind, w, rb, g + h, &k);
				k.wd = wd[h];
				k.wm = wm[h];
				UNROLL for (int t = 0; t < TT; t++)
					acc[t] = step(kind, &k, x + (size_t)t * xs + g + h, acc[t]);
			}
			g++;
			continue;
		}
		prefetch(kind, w, rb, g);
		unpack(kind, w, rb, g, &k);
		if (kind == KQ6)
			k.wd = rowvec(w + (size_t)(g / 2) * 210 + 208, rb);
		UNROLL for (int t = 0; t < TT; t++)
			acc[t] = step(kind, &k, x + (size_t)t * xs + g, acc[t]);
	}
	UNROLL for (int t = 0; t < TT; t++) {
		/* lane 4j + r summed over j */
		__m256 s = _mm256_add_ps(_mm512_castps512_ps256(acc[t]), _mm512_extractf32x8_ps(acc[t], 1));

		_mm_storeu_ps(y + (size_t)t * ys, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
	}
}

/* all tokens in tiles of 4, then 2, then 1 */
TGT static AI void mmk_all(int kind, int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok,
			   float *y, size_t ys)
{
	int t = 0;

	for (; t + 4 <= ntok; t += 4)
		mmk(kind, 4, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t + 2 <= ntok; t += 2)
		mmk(kind, 2, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t < ntok; t++)
		mmk(kind, 1, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
}

TGT static void mm_q4k(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ4, n, w, rb, x, xs, ntok, y, ys);
}

TGT static void mm_q5k(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ5, n, w, rb, x, xs, ntok, y, ys);
}

TGT static void mm_q6k(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ6, n, w, rb, x, xs, ntok, y, ys);
}

TGT static void mm_q50(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ50, n, w, rb, x, xs, ntok, y, ys);
}

void quant_avx512_mm4_kr(uint32_t type, int n, const void *w, size_t rb, const struct q8r *x, size_t xs,
			 int ntok, float *y, size_t ys)
{
	switch (type) {
	case GGML_Q4_KR: mm_q4k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q5_KR: mm_q5k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q6_KR: mm_q6k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q5_0R: mm_q50(n, w, rb, x, xs, ntok, y, ys); break;
	default: break;
	}
}

#endif
