/* kernels_kquant_avx512.c — AVX-512 VNNI dot products for the K-quants
 * (Q4_K, Q5_K, Q6_K rows against q8a activations), for the avx512 table.
 *
 * A 512-bit register holds two 32-value sub-blocks (K-quant sub-blocks of
 * 32 are exactly the activation blocks); one vpdpbusd gives their exact
 * integer partial sums in 4-value lanes, which are converted and
 * multiplied by a vector of per-lane scales (weight scale x sub-scale x
 * activation scale, spread over the lanes with one permute), so no
 * horizontal sum is needed before the end of the row.  The sums are those
 * of the scalar references in quants.c up to float rounding order.
 *
 * Each (row, token) pair is computed by the same instructions in the same
 * order whatever else a call computes: one row against a group of tokens
 * (dotn: each super-block unpacked once for the group) and a group of
 * rows against one token (dot4: the activation side of each super-block,
 * its gathered scales and block pairs, computed once for the rows; Q6_K
 * one row after the other) give the bits of the one-row, one-token
 * kernel. */
#include "infer/gguf.h"
#include "infer/quants.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
/* tokens per group of the multi-token kernel, rows of the multi-row one;
 * both are instantiated for constant counts so that their loops unroll and
 * the accumulators stay in registers */
#define KG 8
#define KR 4
#define INL __attribute__((always_inline))

/* The 8 activation scales (d) or scaled sums (ds) of one super-block:
 * struct q8a is 10 floats */
TGT INL static inline __m256 xgather(const float *p)
{
	return _mm256_i32gather_ps(p, _mm256_setr_epi32(0, 10, 20, 30, 40, 50, 60, 70), 4);
}

/* activation blocks a and b side by side */
TGT INL static inline __m512i xpair(const struct q8a *a, const struct q8a *b)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a->qs)),
				  _mm256_loadu_si256((const __m256i *)b->qs), 1);
}

/* ---- Q4_K, Q5_K ------------------------------------------------------------
 * The 64-byte halves of qs hold sub-blocks (0, 2) and (4, 6) in their low
 * nibbles, (1, 3) and (5, 7) in the high ones; bit s of qh[i] is bit 4 of
 * element i of sub-block s. */

/* pair k: sub-blocks PAT45[k][0] and PAT45[k][8] */
static const int32_t PAT45[4][16] = {
	{0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3},
	{4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6}, {5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7},
};

/* one super-block unpacked: sub-block scales and mins, the four pairs */
struct k45w { __m256 ws, wm; __m512i q[4]; };

TGT INL static inline void k45_unpack(const uint8_t *blk, bool q5, struct k45w *w)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
	/* qh shift per pair: sub-blocks (0,2) (1,3) (4,6) (5,7) */
	static const int16_t sh[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
	uint16_t dh, mh;
	uint32_t u[4];

	memcpy(&dh, blk, 2);
	memcpy(&mh, blk + 2, 2);
	quant_k_scales8(blk + 4, u);
	w->ws = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u))),
			      _mm256_set1_ps(_cvtsh_ss(dh)));
	w->wm = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 2)))),
			      _mm256_set1_ps(_cvtsh_ss(mh)));
	{
		const uint8_t *qs = blk + (q5 ? 48 : 16);
		__m512i w0 = _mm512_loadu_si512(qs), w1 = _mm512_loadu_si512(qs + 64);

		w->q[0] = _mm512_and_si512(w0, m4);
		w->q[1] = _mm512_and_si512(_mm512_srli_epi16(w0, 4), m4);
		w->q[2] = _mm512_and_si512(w1, m4);
		w->q[3] = _mm512_and_si512(_mm512_srli_epi16(w1, 4), m4);
	}
	if (q5) {
		__m256i h = _mm256_loadu_si256((const __m256i *)(blk + 16));
		__m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(h), h, 1);

		for (int k = 0; k < 4; k++) {
			__m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16(sh[k][0]), _mm256_set1_epi16(sh[k][1]), 1);

			w->q[k] = _mm512_or_si512(w->q[k],
						  _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, cnt), one), 4));
		}
	}
}

/* one super-block's activations (xb: its 8 blocks): scales, scaled sums,
 * the four pairs of blocks; shared by the rows of dotr_k45 */
struct k45x { __m256 d, ds; __m512i xp[4]; };

TGT INL static inline void k45_x(const struct q8a *xb, struct k45x *o)
{
	o->d = xgather(&xb->d);
	o->ds = xgather(&xb->ds);
	for (int k = 0; k < 4; k++)
		o->xp[k] = xpair(&xb[PAT45[k][0]], &xb[PAT45[k][8]]);
}

/* one (row, token) pair's products for one super-block */
TGT INL static inline void k45_acc(const struct k45w *w, const struct k45x *x, __m512 *acc, __m256 *macc)
{
	__m256 p = _mm256_mul_ps(w->ws, x->d);

	*macc = _mm256_fmadd_ps(w->wm, x->ds, *macc);
	for (int k = 0; k < 4; k++) {
		__m512i d32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->q[k], x->xp[k]);

		*acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
				       _mm512_permutexvar_ps(_mm512_loadu_si512(PAT45[k]), _mm512_castps256_ps512(p)),
				       *acc);
	}
}

/* the same, the activations read directly (one token per super-block:
 * nothing to share; the same operations in the same order) */
TGT INL static inline void k45_acc1(const struct k45w *w, const struct q8a *xb, __m512 *acc, __m256 *macc)
{
	__m256 p = _mm256_mul_ps(w->ws, xgather(&xb->d));

	*macc = _mm256_fmadd_ps(w->wm, xgather(&xb->ds), *macc);
	for (int k = 0; k < 4; k++) {
		__m512i d32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->q[k],
						  xpair(&xb[PAT45[k][0]], &xb[PAT45[k][8]]));

		*acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32),
				       _mm512_permutexvar_ps(_mm512_loadu_si512(PAT45[k]), _mm512_castps256_ps512(p)),
				       *acc);
	}
}

TGT INL static inline float k45_sum(__m512 acc, __m256 macc)
{
	return _mm512_reduce_add_ps(acc) - _mm512_reduce_add_ps(_mm512_insertf32x8(_mm512_setzero_ps(), macc, 0));
}

/* one row (super-blocks bb bytes apart) against ntok (1..KG) activation
 * rows xs blocks apart into y[t * ys] */
TGT INL static inline void dotn_k45(int n, const uint8_t *base, size_t bb, bool q5, const struct q8a *x, size_t xs,
				    int ntok, float *y, size_t ys)
{
	__m512 acc[KG];
	__m256 macc[KG];

#pragma GCC unroll 8
	for (int t = 0; t < ntok; t++) {
		acc[t] = _mm512_setzero_ps();
		macc[t] = _mm256_setzero_ps();
	}
	for (int b = 0; b < n / QK_K; b++) {
		struct k45w w;

		k45_unpack(base + (size_t)b * bb, q5, &w);
#pragma GCC unroll 8
		for (int t = 0; t < ntok; t++)
			k45_acc1(&w, x + (size_t)t * xs + 8 * b, &acc[t], &macc[t]);
	}
#pragma GCC unroll 8
	for (int t = 0; t < ntok; t++)
		y[(size_t)t * ys] = k45_sum(acc[t], macc[t]);
}

/* nrow (1..KR) rows rb bytes apart against one activation row into out[r] */
TGT INL static inline void dotr_k45(int n, const uint8_t *base, size_t rb, size_t bb, bool q5, const struct q8a *x,
				    int nrow, float *out)
{
	__m512 acc[KR];
	__m256 macc[KR];

#pragma GCC unroll 4
	for (int r = 0; r < nrow; r++) {
		acc[r] = _mm512_setzero_ps();
		macc[r] = _mm256_setzero_ps();
	}
	for (int b = 0; b < n / QK_K; b++) {
		struct k45x xv;

		/* the next group of rows' super-block b, on its way from memory
		 * (decoding streams the matrices) */
		for (size_t o = 0; o < (size_t)nrow * rb; o += rb)
			for (size_t l = 0; l < bb; l += 64)
				_mm_prefetch((const char *)base + (size_t)nrow * rb + o + (size_t)b * bb + l, _MM_HINT_T0);
		k45_x(x + 8 * b, &xv);
#pragma GCC unroll 4
		for (int r = 0; r < nrow; r++) {
			struct k45w w;

			k45_unpack(base + (size_t)r * rb + (size_t)b * bb, q5, &w);
			k45_acc(&w, &xv, &acc[r], &macc[r]);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < nrow; r++)
		out[r] = k45_sum(acc[r], macc[r]);
}

/* ---- Q6_K ------------------------------------------------------------------
 * The 64 bytes ql[64h..] hold sub-blocks (4h, 4h + 1) in their low nibbles
 * and (4h + 2, 4h + 3) in the high ones, with 2-bit pairs 0, 1, 2, 3 of
 * qh[32h..]; scales per 16 values, so per 4-lane group of vpdpbusd. */

struct q6w { __m512i u[4]; __m512 s[4]; };

TGT INL static inline void q6_unpack(const struct blk_q6_k *w, struct q6w *o)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x03);
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)w->scales))),
				  _mm512_set1_ps(_cvtsh_ss(w->d)));

	for (int h = 0; h < 2; h++) {
		__m512i ql = _mm512_loadu_si512(w->ql + 64 * h);
		__m256i h8 = _mm256_loadu_si256((const __m256i *)(w->qh + 32 * h));
		__m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(h8), h8, 1);

		for (int k = 0; k < 2; k++) {
			int pi = 2 * h + k; /* sub-blocks 2 pi, 2 pi + 1 */
			__m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * k)),
							 _mm256_set1_epi16((short)(4 * k + 2)), 1);
			__m512i lo = k ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4) : _mm512_and_si512(ql, m4);

			o->u[pi] = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, cnt), m3), 4));
			/* lane L: scale 4 pi + L / 4 */
			o->s[pi] = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(4 * pi), _mm512_srli_epi32(lane, 2)),
							 sc);
		}
	}
}

/* one (row, token) pair's products for one super-block (as k45_acc1) */
TGT INL static inline void q6_acc1(const struct q6w *w, const struct q8a *xb, __m512 *acc)
{
	const __m512i c32 = _mm512_set1_epi8(32);
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m512 xd = _mm512_castps256_ps512(xgather(&xb->d));

	for (int pi = 0; pi < 4; pi++) {
		__m512i xq = xpair(&xb[2 * pi], &xb[2 * pi + 1]);
		__m512i d32 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w->u[pi], xq),
					       _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, xq));
		__m512 xl = _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(2 * pi), _mm512_srli_epi32(lane, 3)),
						  xd);

		*acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), _mm512_mul_ps(w->s[pi], xl), *acc);
	}
}

/* as dotn_k45 */
TGT INL static inline void dotn_q6k(int n, const struct blk_q6_k *w, const struct q8a *x, size_t xs, int ntok, float *y,
				    size_t ys, const char *pf)
{
	__m512 acc[KG];

#pragma GCC unroll 8
	for (int t = 0; t < ntok; t++)
		acc[t] = _mm512_setzero_ps();
	for (int b = 0; b < n / QK_K; b++) {
		struct q6w u;

		if (pf) /* a row to come's super-block b */
			for (int l = 0; l < (int)sizeof(struct blk_q6_k); l += 64)
				_mm_prefetch(pf + (size_t)b * sizeof(struct blk_q6_k) + l, _MM_HINT_T0);
		q6_unpack(&w[b], &u);
#pragma GCC unroll 8
		for (int t = 0; t < ntok; t++)
			q6_acc1(&u, x + (size_t)t * xs + 8 * b, &acc[t]);
	}
#pragma GCC unroll 8
	for (int t = 0; t < ntok; t++)
		y[(size_t)t * ys] = _mm512_reduce_add_ps(acc[t]);
}

/* ---- the table's entries ---------------------------------------------------- */

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

	dotn_q6k(n, w, x, 0, 1, &y, 0, NULL);
	return y;
}

/* one group of c (8, 4, 2 or 1) tokens */
#define GROUP(c) do { \
	if (type == GGML_Q6_K) \
		dotn_q6k(n, w, xg, xs, c, yg, ys, NULL); \
	else \
		dotn_k45(n, w, bb, type == GGML_Q5_K, xg, xs, c, yg, ys); \
	t0 += c; \
} while (0)

TGT void quant_avx512_dotn_k(uint32_t type, int n, const void *w, const struct q8a *x, size_t xs, int ntok,
			     float *y, size_t ys)
{
	size_t bb = type == GGML_Q4_K ? sizeof(struct blk_q4_k) : sizeof(struct blk_q5_k);

	for (int t0 = 0; t0 < ntok;) {
		const struct q8a *xg = x + (size_t)t0 * xs;
		float *yg = y + (size_t)t0 * ys;
		int left = ntok - t0;

		if (left >= 8)
			GROUP(8);
		else if (left >= 4)
			GROUP(4);
		else if (left >= 2)
			GROUP(2);
		else
			GROUP(1);
	}
}
#undef GROUP

TGT void quant_avx512_dot4_k(uint32_t type, int n, const void *w, size_t rb, const struct q8a *x, float *out)
{
	if (type == GGML_Q6_K) /* four rows side by side streamed at half the rate from memory: one at a time */
		for (int r = 0; r < KR; r++)
			dotn_q6k(n, (const struct blk_q6_k *)((const uint8_t *)w + (size_t)r * rb), x, 0, 1, out + r, 0,
				 (const char *)w + (size_t)(r + KR) * rb);
	else if (type == GGML_Q5_K)
		dotr_k45(n, w, rb, sizeof(struct blk_q5_k), true, x, KR, out);
	else
		dotr_k45(n, w, rb, sizeof(struct blk_q4_k), false, x, KR, out);
}

#endif
