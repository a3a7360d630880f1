/* kernels_krepack_avx512.c — AVX-512 VNNI tiles of four rows times up to
 * eight tokens over Q4_K, Q5_K, Q6_K, Q5_0, Q4_1 and Q5_1 rows repacked at
 * load (quants_repack.c), against struct q8r activations: the scheme of the
 * Q4_0R/Q8_0R tiles (kernels_avx512.c, mm4r) with each type's scales.
 *
 * Per group of 128 values (four 32-value blocks, lane j = block j) and
 * row, the weights are unpacked once (lo: values 0-15 of each block, hi:
 * 16-31) and used for every token of the tile (up to 8, so a batch of 8
 * decoding tokens unpacks each weight once): two vpdpbusd give four
 * partial sums of each block per row, the four rows' vectors are summed
 * and transposed into one (lane 4j + r: row r, block j, an exact integer),
 * converted once and scaled once:
 *
 *   Q4_K/Q5_K  acc += F x (d sc[j] x xd[j]) - dmin mn[j] x xds[j]
 *   Q6_K       F = sum(sc16 x (q - 32) x x), the 16-value sub-scales applied
 *              in the integer domain (q6_raw), acc += F x (d x xd[j])
 *   Q5_0       F = sum(q x) - 16 sum(x), acc += F x (d[j] x xd[j])
 *   Q4_1/Q5_1  acc += F x (d[j] x xd[j]) + m[j] x xds[j]
 *
 * A (row, token) pair is computed by the same instructions in the same
 * order whatever the number of tokens of the call, so a token's results do
 * not depend on its batch (decoding one token uses these tiles too). */
#include "infer/gguf.h"
#include "infer/quants.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* This file is compiled twice: as itself, and by kernels_krepack_gfni.c
 * with KR_GFNI defined, for CPUs with GFNI (all AVX-512 VNNI ones but
 * Cascade and Cooper Lake), where only the Q6_K tiles are built, their top
 * two bits put in place with one GF(2) affine map per half (bits45_aff).
 * A function's target cannot depend on the kind it is instantiated for,
 * and a GFNI instruction must not reach a CPU without it, hence two
 * objects; kern_avx512() picks quant_avx512_mm4_kr_gfni when it can. */
#ifdef KR_GFNI
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,gfni,avx2,fma,f16c")))
#else
#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#endif
#define AI __attribute__((always_inline)) inline
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* KQ6S: Q6_K in tiles of 1 or 2 tokens (see mmk_all) */
enum { KQ4, KQ5, KQ6, KQ6S, KQ50, KQ41, KQ51 };

/* Q5_0, Q4_1, Q5_1: blocks of 32 with their own scales; per row and group
 * of 128 values: qs[64], Q5's fifth bits hb[16] at 64, then d[4] (and
 * m[4]) as f16 */
#define BLOCKWISE(kind) ((kind) >= KQ50)
#define GROUP_BYTES(kind) ((kind) == KQ50 ? 88 : (kind) == KQ41 ? 80 : 96)
#define D_OFF(kind) ((kind) == KQ41 ? 64 : 80)
#define M_OFF(kind) ((kind) == KQ41 ? 72 : 88)

/* one group of four rows, unpacked */
struct kg {
	__m512i lo[4], hi[4];   /* KQ6: q - 32, signed; the others unsigned */
	__m512 wd;              /* lane 4j + r: row r's scale for block j */
	__m512 wm;              /* Q4_K/Q5_K: dmin x row r's min for block j; Q4_1/Q5_1: row r's min */
	__m512i sc[4];          /* KQ6: row r's sub-scales as int16, see q6_raw; KQ6S: those of
				 * values 0-15 of block j in lanes 4j..4j+3, as int32 */
	__m512i sc2[4];         /* KQ6S: those of values 16-31 */
	__m512i corr;           /* KQ6: q6_raw of a zero activation */
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

#ifdef KR_GFNI
/* bits45 for Q6_K with one GF(2) affine map per byte, lane j's matrix
 * picking bits 2j, 2j + 1 (b0, b1) of the broadcast bytes; byte 7 - i of a
 * matrix is the row of output bit i.  Unsigned (KQ6S): b0, b1 to bits 4,
 * 5.  Signed (KQ6: the top nibble of q - 32 = nibble + 16 (b - 2), so that
 * no subtraction follows): b0 to bit 4 and not b1 to bits 5-7, the "not"
 * by the constant 0xe0 xored into every byte.  Bits 0-3 stay zero. */
TGT static AI __m512i bits45_aff(const uint8_t *p, bool sgn)
{
	const __m512i a = sgn ? _mm512_setr_epi64(0x01020202ll, 0x01020202ll, 0x04080808ll, 0x04080808ll,
						  0x10202020ll, 0x10202020ll, 0x40808080ll, 0x40808080ll)
			      : _mm512_setr_epi64(0x01020000ll, 0x01020000ll, 0x04080000ll, 0x04080000ll,
						  0x10200000ll, 0x10200000ll, 0x40800000ll, 0x40800000ll);
	__m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));

	return sgn ? _mm512_gf2p8affine_epi64_epi8(b, a, 0xe0) : _mm512_gf2p8affine_epi64_epi8(b, a, 0);
}
#endif

/* the f16 at p of each of four rows rb apart, as lanes 4j + r (any j) */
TGT static AI __m512 rowvec(const uint8_t *p, size_t rb)
{
	uint16_t h[4];

	for (int r = 0; r < 4; r++)
		memcpy(&h[r], p + (size_t)r * rb, 2);
	return _mm512_broadcast_f32x4(_mm_setr_ps(_cvtsh_ss(h[0]), _cvtsh_ss(h[1]), _cvtsh_ss(h[2]), _cvtsh_ss(h[3])));
}

/* the four f16 at p of each of four rows rb apart (one per block), as
 * lanes 4j + r: row r's value for block j */
TGT static AI __m512 blockvec(const uint8_t *p, size_t rb)
{
	/* row r's four in lanes 4r..4r+3, then lane 4j + r */
	const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m256i h = _mm256_set_m128i(
		_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p + 2 * rb)),
				   _mm_loadl_epi64((const __m128i *)(p + 3 * rb))),
		_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)p), _mm_loadl_epi64((const __m128i *)(p + rb))));

	return _mm512_permutexvar_ps(tr, _mm512_cvtph_ps(h));
}

/* Q4_K/Q5_K super-block scales of four rows: wd[h], wm[h] for its groups.
 * p: the super-block's last 16 bytes (d, dmin and the 12 scale bytes s,
 * as in the file) of four rows rb apart, row r's in 128-bit lane r.  In
 * every lane at once, ggml's 6-bit fields become the bytes [sc 0-7, mn
 * 0-7]: sc j<4 = s[j] & 63, mn j<4 = s[j+4] & 63; sc j>=4 = (s[j+4] & 15)
 * | (s[j-4] >> 6) << 4, mn j>=4 = s[j+4] >> 4 | (s[j] >> 6) << 4
 * (quant_k_scales8 per row, as the scalar code did); then dwords
 * transposed so that lane h of the result holds sc 4h..4h+3 (h 2, 3: mn)
 * of the four rows, and bytes 4r + j to 4j + r.  The same floats as
 * before (exact small integers times d or dmin). */
TGT static AI void k45_scales(const uint8_t *p, size_t rb, __m512 wd[2], __m512 wm[2])
{
	/* in lane bytes: d 0-1, dmin 2-3, s[k] at 4 + k; -1: zero */
	const __m512i ia = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11,
								-1, -1, -1, -1));
	const __m512i ic = _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
								12, 13, 14, 15));
	const __m512i ib = _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1,
								8, 9, 10, 11));
	const __m512i ma = _mm512_broadcast_i32x4(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63,
								0, 0, 0, 0));
	const __m512i tr = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
	const __m512i rows = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p)), u;
	__m128i dd;
	__m256 dm;
	__m512 d, m;

	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + rb)), 1);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 2 * rb)), 2);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 3 * rb)), 3);
	u = _mm512_or_si512(_mm512_and_si512(_mm512_shuffle_epi8(q, ia), ma),
			    _mm512_or_si512(_mm512_and_si512(_mm512_shuffle_epi8(_mm512_srli_epi16(q, 4), ic),
							     _mm512_set1_epi8(15)),
					    _mm512_and_si512(_mm512_shuffle_epi8(_mm512_srli_epi16(q, 2), ib),
							     _mm512_set1_epi8(0x30))));
	u = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(rows, u), tr);
	/* f16 d of rows 0-3, then dmin */
	dd = _mm_shuffle_epi8(_mm512_castsi512_si128(_mm512_permutexvar_epi32(rows, q)),
			      _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
	dm = _mm256_cvtph_ps(dd);
	d = _mm512_broadcast_f32x4(_mm256_castps256_ps128(dm));
	m = _mm512_broadcast_f32x4(_mm256_extractf128_ps(dm, 1));
	wd[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(u))), d);
	wd[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(u, 1))), d);
	wm[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(u, 2))), m);
	wm[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(u, 3))), m);
}

/* Q6_K: per (row r, block j) in lane 4j + r, sum(sc x w x u) over the
 * block's 32 values, w = q - 32 the signed weights (lo, hi), sc the
 * sub-scale of each half, u the activation bytes as unsigned (ul: values
 * 0-15 of each block, uh: 16-31).  Each vpdpbusd lane (four values) fits
 * an int16 (|w| <= 32, u <= 255: at most 32640), so the two halves' lanes
 * are packed side by side (lo's in words 0-3 of each 128-bit lane, hi's in
 * 4-7) and multiplied by their sub-scales with one vpdpwssd: no vpmulld,
 * and one transposition for both halves.  Exact. */
TGT static AI __m512i q6_raw(const struct kg *k, __m512i ul, __m512i uh)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i d[4];

	UNROLL for (int r = 0; r < 4; r++)
		d[r] = _mm512_dpwssd_epi32(zero, _mm512_packs_epi32(_mm512_dpbusd_epi32(zero, ul, k->lo[r]),
								  _mm512_dpbusd_epi32(zero, uh, k->hi[r])), k->sc[r]);
	return transpose_sum(d);
}

/* group g's bytes (and, for Q6_K, sub-scales; for the blockwise types,
 * scales) of four rows */
TGT static AI void unpack(int kind, const uint8_t *w, size_t rb, int g, struct kg *k)
{
	/* Q6_K: 16-bit word i of 128-bit lane j takes sub-scale 2j + (i >= 4) */
	static const int16_t q6_sc_idx[32] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
					      4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7};
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const size_t sbb = kind == KQ4 ? 144 : kind == KQ5 ? 176 : 210;
	const __m128i pl = _mm_setr_epi8(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
	const __m128i ph = _mm_setr_epi8(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
	const int h = g % 2;

	UNROLL for (int r = 0; r < 4; r++) {
		const uint8_t *b = BLOCKWISE(kind) ? w + (size_t)r * rb + (size_t)g * GROUP_BYTES(kind)
						   : w + (size_t)r * rb + (size_t)(g / 2) * sbb;
		const uint8_t *qs = BLOCKWISE(kind) ? b : b + 64 * h;
		__m512i v = _mm512_loadu_si512(qs);

		k->lo[r] = _mm512_and_si512(v, m4);
		k->hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		if (kind == KQ5 || kind == KQ50 || kind == KQ51) {
			const uint8_t *hb = BLOCKWISE(kind) ? b + 64 : b + 128 + 16 * h;

			k->lo[r] = _mm512_or_si512(k->lo[r], bit4(hb));
			k->hi[r] = _mm512_or_si512(k->hi[r], bit4(hb + 8));
		} else if (kind == KQ6) {
			/* block j's sub-scales 8h + 2j (values 0-15) and 8h + 2j + 1 */
			const __m512i c32 = _mm512_set1_epi8(32);
			__m128i sc = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(b + 192 + 8 * h)));

#ifdef KR_GFNI
			/* (v & 15) | bits, in one ternary-logic operation */
			(void)c32;
			k->lo[r] = _mm512_ternarylogic_epi32(v, m4, bits45_aff(b + 128 + 32 * h, true), 0xea);
			k->hi[r] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m4,
							     bits45_aff(b + 128 + 32 * h + 16, true), 0xea);
#else
			k->lo[r] = _mm512_sub_epi8(_mm512_or_si512(k->lo[r], bits45(b + 128 + 32 * h)), c32);
			k->hi[r] = _mm512_sub_epi8(_mm512_or_si512(k->hi[r], bits45(b + 128 + 32 * h + 16)), c32);
#endif
			/* (the indices stay in the low 128 bits) */
			k->sc[r] = _mm512_permutexvar_epi16(_mm512_loadu_si512(q6_sc_idx), _mm512_castsi128_si512(sc));
		} else if (kind == KQ6S) {
			__m128i sc = _mm_loadl_epi64((const __m128i *)(b + 192 + 8 * h));

#ifdef KR_GFNI
			k->lo[r] = _mm512_ternarylogic_epi32(v, m4, bits45_aff(b + 128 + 32 * h, false), 0xea);
			k->hi[r] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m4,
							     bits45_aff(b + 128 + 32 * h + 16, false), 0xea);
#else
			k->lo[r] = _mm512_or_si512(k->lo[r], bits45(b + 128 + 32 * h));
			k->hi[r] = _mm512_or_si512(k->hi[r], bits45(b + 128 + 32 * h + 16));
#endif
			k->sc[r] = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, pl));
			k->sc2[r] = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, ph));
		}
	}
	if (kind == KQ6) {
		const __m512i c80 = _mm512_set1_epi8((char)0x80);

		k->corr = q6_raw(k, c80, c80);
	}
	if (BLOCKWISE(kind)) {
		const uint8_t *p = w + (size_t)g * GROUP_BYTES(kind);

		k->wd = blockvec(p + D_OFF(kind), rb);
		if (kind != KQ50)
			k->wm = blockvec(p + M_OFF(kind), rb);
	}
}

/* one token's products for one group, added to acc */
TGT static AI __m512 step(int kind, const struct kg *k, const struct q8r *xg, __m512 acc)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i xl = _mm512_loadu_si512(xg->lo), xh = _mm512_loadu_si512(xg->hi), f;
	__m512 xd = _mm512_loadu_ps(xg->d);

	if (kind == KQ6) {
		/* u = x + 128: sum(sc w x) = q6_raw(u) - 128 sum(sc w) */
		const __m512i c80 = _mm512_set1_epi8((char)0x80);

		f = _mm512_sub_epi32(q6_raw(k, _mm512_xor_si512(xl, c80), _mm512_xor_si512(xh, c80)), k->corr);
	} else if (kind == KQ6S) {
		/* sum(sc (q - 32) x), per half: sc x (sum(q x) - 32 sum(x)) */
		const __m512i c32 = _mm512_set1_epi8(32);
		__m512i sl = _mm512_dpbusd_epi32(zero, c32, xl), sh = _mm512_dpbusd_epi32(zero, c32, xh), d[4];

		UNROLL for (int r = 0; r < 4; r++)
			d[r] = _mm512_add_epi32(
				_mm512_mullo_epi32(_mm512_sub_epi32(_mm512_dpbusd_epi32(zero, k->lo[r], xl), sl), k->sc[r]),
				_mm512_mullo_epi32(_mm512_sub_epi32(_mm512_dpbusd_epi32(zero, k->hi[r], xh), sh), k->sc2[r]));
		f = transpose_sum(d);
	} else {
		__m512i d[4], s16 = kind == KQ50 ? _mm512_slli_epi32(_mm512_loadu_si512(xg->s8), 1) : zero;

		UNROLL for (int r = 0; r < 4; r++) {
			d[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, k->lo[r], xl), k->hi[r], xh);
			if (kind == KQ50)
				d[r] = _mm512_sub_epi32(d[r], s16);
		}
		f = transpose_sum(d);
	}
	acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(f), _mm512_mul_ps(k->wd, xd), acc);
	if (kind == KQ4 || kind == KQ5)
		acc = _mm512_fnmadd_ps(k->wm, _mm512_loadu_ps(xg->ds), acc);
	else if (kind == KQ41 || kind == KQ51)
		acc = _mm512_fmadd_ps(k->wm, _mm512_loadu_ps(xg->ds), acc);
	return acc;
}

/* rows ahead, while these compute (rows are too short for the hardware
 * prefetcher to lock on before they end): group g's bytes of four rows */
TGT static AI void prefetch(int kind, const uint8_t *w, size_t rb, int g)
{
	const size_t pf = kind == KQ4 || kind == KQ41 ? 8 : 6;
	const size_t gb = kind == KQ4 ? 72 : kind == KQ5 ? 88 : kind == KQ6 || kind == KQ6S ? 105 : GROUP_BYTES(kind);

	for (int r = 0; r < 4; r++) {
		const char *p = (const char *)w + (pf + (size_t)r) * rb + (size_t)g * gb;

		_mm_prefetch(p, _MM_HINT_T0);
		_mm_prefetch(p + 64, _MM_HINT_T0);
	}
}

/* four rows x TT tokens (TT <= 8) */
TGT static AI void mmk(int kind, int TT, int n, const uint8_t *w, size_t rb, const struct q8r *x, size_t xs,
		       float *y, size_t ys)
{
	__m512 acc[8];
	int ng = n / QR;

	UNROLL for (int t = 0; t < TT; t++)
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
		if (kind == KQ6 || kind == KQ6S)
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

/* All tokens in tiles of 8, then 4, 2, 1.  Q6_K's tiles of 1 and 2 tokens
 * take the step of KQ6S: its unpacking, not shared by enough tokens, is
 * cheaper than KQ6's (no correction term), its step dearer (a vpmulld per
 * half, row and token); both compute the same exact integer per (row,
 * block), so the same bits. */
TGT static AI void mmk_all(int kind, int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok,
			   float *y, size_t ys)
{
	int t = 0;

	for (; t + 8 <= ntok; t += 8)
		mmk(kind, 8, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t + 4 <= ntok; t += 4)
		mmk(kind, 4, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t + 2 <= ntok; t += 2)
		mmk(kind == KQ6 ? KQ6S : kind, 2, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
	for (; t < ntok; t++)
		mmk(kind == KQ6 ? KQ6S : kind, 1, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);
}

#ifdef KR_GFNI
TGT static void mm_q6k_gfni(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
			    size_t ys)
{
	mmk_all(KQ6, n, w, rb, x, xs, ntok, y, ys);
}

/* Q6_K's rows here; the other types as without GFNI */
void quant_avx512_mm4_kr_gfni(uint32_t type, int n, const void *w, size_t rb, const struct q8r *x, size_t xs,
			      int ntok, float *y, size_t ys)
{
	if (type == GGML_Q6_KR)
		mm_q6k_gfni(n, w, rb, x, xs, ntok, y, ys);
	else
		quant_avx512_mm4_kr(type, n, w, rb, x, xs, ntok, y, ys);
}
#else
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

TGT static void mm_q41(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ41, n, w, rb, x, xs, ntok, y, ys);
}

TGT static void mm_q51(int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok, float *y,
		       size_t ys)
{
	mmk_all(KQ51, n, w, rb, x, xs, ntok, y, ys);
}

void quant_avx512_mm4_kr(uint32_t type, int n, const void *w, size_t rb, const struct q8r *x, size_t xs,
			 int ntok, float *y, size_t ys)
{
	switch (type) {
	case GGML_Q4_KR: mm_q4k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q5_KR: mm_q5k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q6_KR: mm_q6k(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q5_0R: mm_q50(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q4_1R: mm_q41(n, w, rb, x, xs, ntok, y, ys); break;
	case GGML_Q5_1R: mm_q51(n, w, rb, x, xs, ntok, y, ys); break;
	default: break;
	}
}

#endif /* KR_GFNI */
#endif
