/* kernels_krepack_avx512.c — AVX-512 VNNI tiles of four rows times up to
 * eight tokens over Q4_K, Q5_K, Q6_K, Q5_0, Q4_1 and Q5_1 rows repacked at
 * load (quants_repack.c), against struct q8r activations: the scheme of the
 * Q4_0R/Q8_0R tiles (kernels_avx512.c, mm4r) with each type's scales.
 *
 * Per group of 128 values (four 32-value blocks, lane j = block j) and
 * row, the weights are unpacked once (lo: values 0-15 of each block, hi:
 * 16-31) and used for every token of the tile (up to 8, so a batch of 8
 * decoding tokens unpacks each weight once).
 *
 * Q5_0, Q4_1, Q5_1 (activations with a scale per 32 values): two vpdpbusd
 * give four partial sums of each block per row, the four rows' vectors
 * are summed and transposed into one (lane 4j + r: row r, block j, an
 * exact integer), converted once and scaled once:
 *   Q5_0       F = sum(q x) - 16 sum(x), acc += F x (d[j] x xd[j])
 *   Q4_1/Q5_1  acc += F x (d[j] x xd[j]) + m[j] x xds[j]
 *
 * K-quants (the activations' K fields: one scale kd per 256 values, so a
 * super-block's sub-scales apply in the integer domain): per row, block
 * and four values, an exact vpdpbusd sum that fits 16 bits (weights
 * 0..63 unsigned, activations -128..127); rows 0 and 2 (1 and 3) packed
 * side by side into words and multiplied by their sub-scales with one
 * vpdpwssd, accumulating over the super-block's two groups; the two
 * row-pair vectors merged (two blends, a shuffle, an add) into lane 4j + r
 * = row r, lane j's sub-blocks (kstep); the mins (Q4_K/Q5_K: mn x the
 * activations' 32-value sums) and Q6_K's offset (32 sc x their 16-value
 * sums) with one or two more vpdpwssd.  Then one conversion per
 * super-block, (row, token) and lane:
 *   Q4_K/Q5_K  acc += (W x d - M x dmin) x kd
 *   Q6_K       acc += (W - 32 M) x (d x kd)
 * quant_kr_dot (quants_repack.c) is the scalar definition, bit for bit.
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

enum { KQ4, KQ5, KQ6, KQ50, KQ41, KQ51 };

/* Q5_0, Q4_1, Q5_1: blocks of 32 with their own scales; per row and group
 * of 128 values: qs[64], Q5's fifth bits hb[16] at 64, then d[4] (and
 * m[4]) as f16 */
#define BLOCKWISE(kind) ((kind) >= KQ50)
#define GROUP_BYTES(kind) ((kind) == KQ50 ? 88 : (kind) == KQ41 ? 80 : 96)
#define D_OFF(kind) ((kind) == KQ41 ? 64 : 80)
#define M_OFF(kind) ((kind) == KQ41 ? 72 : 88)

/* one group of four rows, unpacked (Q5_0, Q4_1, Q5_1) */
struct kg {
	__m512i lo[4], hi[4];   /* unsigned */
	__m512 wd;              /* lane 4j + r: row r's scale for block j */
	__m512 wm;              /* Q4_1/Q5_1: row r's min for block j */
};

/* one super-block of four rows, unpacked (the K-quants) */
struct kk {
	__m512i lo[2][4], hi[2][4]; /* group h, row r: unsigned values */
	/* words 0-3 of lane j: row 0's (1's) sub-scale for the values of
	 * vpdpbusd lanes 0-3 of block j, words 4-7 row 2's (3's); Q4_K/Q5_K:
	 * [h], Q6_K: [2h] values 0-15, [2h + 1] 16-31 */
	__m512i s02[4], s13[4];
	/* words 2(4j + r) + e: Q4_K/Q5_K: row r's mn 2j + e; Q6_K: its
	 * sub-scales 2j + e (mn) and 8 + 2j + e (mn2) */
	__m512i mn, mn2;
	__m512 d, dm;               /* lane 4j + r: row r's d, dmin */
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
 * picking bits 2j, 2j + 1 (b0, b1) of the broadcast bytes to bits 4, 5;
 * byte 7 - i of a matrix is the row of output bit i.  Bits 0-3 stay zero. */
TGT static AI __m512i bits45_aff(const uint8_t *p)
{
	const __m512i a = _mm512_setr_epi64(0x01020000ll, 0x01020000ll, 0x04080000ll, 0x04080000ll,
					    0x10200000ll, 0x10200000ll, 0x40800000ll, 0x40800000ll);
	__m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));

	return _mm512_gf2p8affine_epi64_epi8(b, a, 0);
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

/* word indices (vpermt2w over rows 0-1 then 2-3, 16 words a row) */
static const int16_t k_s02[32] = {0, 0, 0, 0, 32, 32, 32, 32, 1, 1, 1, 1, 33, 33, 33, 33,
				  2, 2, 2, 2, 34, 34, 34, 34, 3, 3, 3, 3, 35, 35, 35, 35};
static const int16_t k6_s02[32] = {0, 0, 0, 0, 32, 32, 32, 32, 2, 2, 2, 2, 34, 34, 34, 34,
				   4, 4, 4, 4, 36, 36, 36, 36, 6, 6, 6, 6, 38, 38, 38, 38};
static const int16_t k_pair[32] = {0, 1, 16, 17, 32, 33, 48, 49, 2, 3, 18, 19, 34, 35, 50, 51,
				   4, 5, 20, 21, 36, 37, 52, 53, 6, 7, 22, 23, 38, 39, 54, 55};

/* 16 words of each of four rows (rows 0-1 in a, 2-3 in b, 16 words a
 * row) picked by the index vector base + off */
TGT static AI __m512i pick(__m512i a, __m512i b, const int16_t *base, int off)
{
	return _mm512_permutex2var_epi16(a, _mm512_add_epi16(_mm512_loadu_si512(base), _mm512_set1_epi16((short)off)),
					 b);
}

/* Q4_K/Q5_K super-block scales of four rows (struct kk).  p: the
 * super-block's last 16 bytes (d, dmin and the 12 scale bytes s, as in the
 * file) of four rows rb apart, row r's in 128-bit lane r.  In every lane
 * at once, ggml's 6-bit fields become the bytes [sc 0-7, mn 0-7]: sc j<4 =
 * s[j] & 63, mn j<4 = s[j+4] & 63; sc j>=4 = (s[j+4] & 15) | (s[j-4] >> 6)
 * << 4, mn j>=4 = s[j+4] >> 4 | (s[j] >> 6) << 4 (quant_k_scales8 per
 * row); then words, picked into place. */
TGT static AI void k45_scales(const uint8_t *p, size_t rb, struct kk *k)
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
	const __m512i rows = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p)), u, a, b;
	__m128i dd;
	__m256 dm;

	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + rb)), 1);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 2 * rb)), 2);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 3 * rb)), 3);
	u = _mm512_or_si512(_mm512_and_si512(_mm512_shuffle_epi8(q, ia), ma),
			    _mm512_or_si512(_mm512_and_si512(_mm512_shuffle_epi8(_mm512_srli_epi16(q, 4), ic),
							     _mm512_set1_epi8(15)),
					    _mm512_and_si512(_mm512_shuffle_epi8(_mm512_srli_epi16(q, 2), ib),
							     _mm512_set1_epi8(0x30))));
	a = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(u));
	b = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(u, 1));
	for (int h = 0; h < 2; h++) {
		k->s02[h] = pick(a, b, k_s02, 4 * h);
		k->s13[h] = pick(a, b, k_s02, 16 + 4 * h);
	}
	k->mn = pick(a, b, k_pair, 8);
	/* f16 d of rows 0-3, then dmin */
	dd = _mm_shuffle_epi8(_mm512_castsi512_si128(_mm512_permutexvar_epi32(rows, q)),
			      _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
	dm = _mm256_cvtph_ps(dd);
	k->d = _mm512_broadcast_f32x4(_mm256_castps256_ps128(dm));
	k->dm = _mm512_broadcast_f32x4(_mm256_extractf128_ps(dm, 1));
}

/* Q6_K super-block scales of four rows (struct kk): p the super-block's
 * 16 sub-scales (int8) then d (f16), of four rows rb apart */
TGT static AI void k6_scales(const uint8_t *p, size_t rb, struct kk *k)
{
	__m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p)), a, b;

	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + rb)), 1);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 2 * rb)), 2);
	q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(p + 3 * rb)), 3);
	a = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(q));
	b = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(q, 1));
	for (int i = 0; i < 4; i++) {
		/* [2h + e]: sub-scales 2(4h + j) + e */
		k->s02[i] = pick(a, b, k6_s02, 8 * (i / 2) + i % 2);
		k->s13[i] = pick(a, b, k6_s02, 16 + 8 * (i / 2) + i % 2);
	}
	k->mn = pick(a, b, k_pair, 0);
	k->mn2 = pick(a, b, k_pair, 8);
	k->d = rowvec(p + 16, rb);
}

/* group h (0, 1) of super-block sb's bytes of four rows (the K-quants):
 * unsigned values 0..15, 0..31 or 0..63 */
TGT static AI void unpack_k(int kind, const uint8_t *w, size_t rb, int sb, int h, struct kk *k)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const size_t sbb = kind == KQ4 ? 144 : kind == KQ5 ? 176 : 210;

	UNROLL for (int r = 0; r < 4; r++) {
		const uint8_t *b = w + (size_t)r * rb + (size_t)sb * sbb;
		__m512i v = _mm512_loadu_si512(b + 64 * h);

		k->lo[h][r] = _mm512_and_si512(v, m4);
		k->hi[h][r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		if (kind == KQ5) {
			const uint8_t *hb = b + 128 + 16 * h;

			k->lo[h][r] = _mm512_or_si512(k->lo[h][r], bit4(hb));
			k->hi[h][r] = _mm512_or_si512(k->hi[h][r], bit4(hb + 8));
		} else if (kind == KQ6) {
#ifdef KR_GFNI
			/* (v & 15) | bits, in one ternary-logic operation */
			k->lo[h][r] = _mm512_ternarylogic_epi32(v, m4, bits45_aff(b + 128 + 32 * h), 0xea);
			k->hi[h][r] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m4,
								bits45_aff(b + 128 + 32 * h + 16), 0xea);
#else
			k->lo[h][r] = _mm512_or_si512(k->lo[h][r], bits45(b + 128 + 32 * h));
			k->hi[h][r] = _mm512_or_si512(k->hi[h][r], bits45(b + 128 + 32 * h + 16));
#endif
		}
	}
}

/* group g's bytes and scales of four rows (Q5_0, Q4_1, Q5_1) */
TGT static AI void unpack(int kind, const uint8_t *w, size_t rb, int g, struct kg *k)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const uint8_t *p = w + (size_t)g * GROUP_BYTES(kind);

	UNROLL for (int r = 0; r < 4; r++) {
		const uint8_t *b = p + (size_t)r * rb;
		__m512i v = _mm512_loadu_si512(b);

		k->lo[r] = _mm512_and_si512(v, m4);
		k->hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		if (kind == KQ50 || kind == KQ51) {
			k->lo[r] = _mm512_or_si512(k->lo[r], bit4(b + 64));
			k->hi[r] = _mm512_or_si512(k->hi[r], bit4(b + 72));
		}
	}
	k->wd = blockvec(p + D_OFF(kind), rb);
	if (kind != KQ50)
		k->wm = blockvec(p + M_OFF(kind), rb);
}

/* one token's products for one group, added to acc (Q5_0, Q4_1, Q5_1) */
TGT static AI __m512 step(int kind, const struct kg *k, const struct q8r *xg, __m512 acc)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i xl = _mm512_loadu_si512(xg->lo), xh = _mm512_loadu_si512(xg->hi), f, d[4];
	__m512i s16 = kind == KQ50 ? _mm512_slli_epi32(_mm512_loadu_si512(xg->s8), 1) : zero;
	__m512 xd = _mm512_loadu_ps(xg->d);

	UNROLL for (int r = 0; r < 4; r++) {
		d[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, k->lo[r], xl), k->hi[r], xh);
		if (kind == KQ50)
			d[r] = _mm512_sub_epi32(d[r], s16);
	}
	f = transpose_sum(d);
	acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(f), _mm512_mul_ps(k->wd, xd), acc);
	if (kind == KQ41 || kind == KQ51)
		acc = _mm512_fmadd_ps(k->wm, _mm512_loadu_ps(xg->ds), acc);
	return acc;
}

/* v02 (v13): row 0 (1) in dwords 0-1 of every lane, row 2 (3) in 2-3; the
 * result: lane 4j + r = row r's two dwords of lane j added */
TGT static AI __m512i merge_rows(__m512i v02, __m512i v13)
{
	__m512i a = _mm512_mask_blend_epi32(0xaaaa, v02, v13), b = _mm512_mask_blend_epi32(0x5555, v02, v13);

	return _mm512_add_epi32(a, _mm512_shuffle_epi32(b, _MM_PERM_CDAB));
}

/* one token's products for one super-block (x: its first group), added
 * to acc (the K-quants) */
TGT static AI __m512 kstep(int kind, const struct kk *k, const struct q8r *x, __m512 acc)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i v02 = zero, v13 = zero, w, m;

	UNROLL for (int h = 0; h < 2; h++) {
		__m512i xl = _mm512_loadu_si512(x[h].klo), xh = _mm512_loadu_si512(x[h].khi), p[4];

		if (kind == KQ6) {
			/* 16-value sub-blocks: values 0-15 and 16-31 of a block apart */
			__m512i q[4];

			UNROLL for (int r = 0; r < 4; r++) {
				p[r] = _mm512_dpbusd_epi32(zero, k->lo[h][r], xl);
				q[r] = _mm512_dpbusd_epi32(zero, k->hi[h][r], xh);
			}
			v02 = _mm512_dpwssd_epi32(v02, _mm512_packs_epi32(p[0], p[2]), k->s02[2 * h]);
			v13 = _mm512_dpwssd_epi32(v13, _mm512_packs_epi32(p[1], p[3]), k->s13[2 * h]);
			v02 = _mm512_dpwssd_epi32(v02, _mm512_packs_epi32(q[0], q[2]), k->s02[2 * h + 1]);
			v13 = _mm512_dpwssd_epi32(v13, _mm512_packs_epi32(q[1], q[3]), k->s13[2 * h + 1]);
		} else {
			UNROLL for (int r = 0; r < 4; r++)
				p[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, k->lo[h][r], xl), k->hi[h][r], xh);
			v02 = _mm512_dpwssd_epi32(v02, _mm512_packs_epi32(p[0], p[2]), k->s02[h]);
			v13 = _mm512_dpwssd_epi32(v13, _mm512_packs_epi32(p[1], p[3]), k->s13[h]);
		}
	}
	w = merge_rows(v02, v13);
	if (kind == KQ6) {
		m = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(zero, k->mn, _mm512_loadu_si512(x->ks16a)), k->mn2,
					_mm512_loadu_si512(x->ks16b));
		w = _mm512_sub_epi32(w, _mm512_slli_epi32(m, 5));
		return _mm512_fmadd_ps(_mm512_cvtepi32_ps(w), _mm512_mul_ps(k->d, _mm512_set1_ps(x->kd)), acc);
	}
	m = _mm512_dpwssd_epi32(zero, k->mn, _mm512_loadu_si512(x->ks32));
	return _mm512_fmadd_ps(_mm512_fmsub_ps(_mm512_cvtepi32_ps(w), k->d,
					       _mm512_mul_ps(_mm512_cvtepi32_ps(m), k->dm)),
			       _mm512_set1_ps(x->kd), acc);
}

/* rows ahead, while these compute (rows are too short for the hardware
 * prefetcher to lock on before they end): group g's bytes of four rows */
TGT static AI void prefetch(int kind, const uint8_t *w, size_t rb, int g)
{
	const size_t pf = kind == KQ4 || kind == KQ41 ? 8 : 6;
	const size_t gb = kind == KQ4 ? 72 : kind == KQ5 ? 88 : kind == KQ6 ? 105 : GROUP_BYTES(kind);

	for (int r = 0; r < 4; r++) {
		const char *p = (const char *)w + (pf + (size_t)r) * rb + (size_t)g * gb;

		_mm_prefetch(p, _MM_HINT_T0);
		_mm_prefetch(p + 64, _MM_HINT_T0);
	}
}

/* the sums of acc[0..TT) over lanes 4j + r (any j) to y[t * ys + r] */
TGT static AI void store4(int TT, const __m512 *acc, float *y, size_t ys)
{
	UNROLL for (int t = 0; t < TT; t++) {
		/* (lanes j 0 + 2) + (1 + 3) */
		__m256 s = _mm256_add_ps(_mm512_castps512_ps256(acc[t]), _mm512_extractf32x8_ps(acc[t], 1));

		_mm_storeu_ps(y + (size_t)t * ys, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
	}
}

/* four rows x TT tokens (TT <= 8), the K-quants: a super-block a step */
TGT static AI void mmkk(int kind, int TT, int n, const uint8_t *w, size_t rb, const struct q8r *x, size_t xs,
			float *y, size_t ys)
{
	__m512 acc[8];

	UNROLL for (int t = 0; t < TT; t++)
		acc[t] = _mm512_setzero_ps();
	for (int sb = 0; sb < n / QK_K; sb++) {
		struct kk k;

		prefetch(kind, w, rb, 2 * sb);
		prefetch(kind, w, rb, 2 * sb + 1);
		if (kind == KQ6)
			k6_scales(w + (size_t)sb * 210 + 192, rb, &k);
		else
			k45_scales(w + (size_t)sb * (kind == KQ4 ? 144 : 176) + (kind == KQ4 ? 128 : 160), rb, &k);
		unpack_k(kind, w, rb, sb, 0, &k);
		unpack_k(kind, w, rb, sb, 1, &k);
		UNROLL for (int t = 0; t < TT; t++)
			acc[t] = kstep(kind, &k, x + (size_t)t * xs + 2 * sb, acc[t]);
	}
	store4(TT, acc, y, ys);
}

/* four rows x TT tokens (TT <= 8), Q5_0, Q4_1, Q5_1 */
TGT static AI void mmk(int kind, int TT, int n, const uint8_t *w, size_t rb, const struct q8r *x, size_t xs,
		       float *y, size_t ys)
{
	__m512 acc[8];

	UNROLL for (int t = 0; t < TT; t++)
		acc[t] = _mm512_setzero_ps();
	for (int g = 0; g < n / QR; g++) {
		struct kg k;

		prefetch(kind, w, rb, g);
		unpack(kind, w, rb, g, &k);
		UNROLL for (int t = 0; t < TT; t++)
			acc[t] = step(kind, &k, x + (size_t)t * xs + g, acc[t]);
	}
	store4(TT, acc, y, ys);
}

/* All tokens in tiles of 8, then 4, 2, 1 (TT a constant in each call) */
#define TILES(f)                                                                                     \
	do {                                                                                         \
		int t = 0;                                                                           \
		for (; t + 8 <= ntok; t += 8)                                                        \
			f(kind, 8, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);        \
		for (; t + 4 <= ntok; t += 4)                                                        \
			f(kind, 4, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);        \
		for (; t + 2 <= ntok; t += 2)                                                        \
			f(kind, 2, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);        \
		for (; t < ntok; t++)                                                                \
			f(kind, 1, n, w, rb, x + (size_t)t * xs, xs, y + (size_t)t * ys, ys);        \
	} while (0)

TGT static AI void mmk_all(int kind, int n, const void *w, size_t rb, const struct q8r *x, size_t xs, int ntok,
			   float *y, size_t ys)
{
	if (BLOCKWISE(kind))
		TILES(mmk);
	else
		TILES(mmkk);
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

/* kern_q8r_k's super-block (groups q[0..gn)), its operations vectorized */
TGT static void q8r_k_sb(struct q8r *q, int gn)
{
	float kd = kern_q8r_k_scale(q, gn); /* as the scalar code, NaN scales too */
	int s32[8], s16[16];

	for (int h = 0; h < gn; h++)
		for (int j = 0; j < 4; j++) {
			__m512 f = _mm512_set1_ps(kd > 0 ? q[h].d[4 * j] / kd : 0.0f);
			__m512i a = _mm512_cvtps_epi32(_mm512_mul_ps(f, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				_mm_loadu_si128((const __m128i *)(q[h].lo + 16 * j))))));
			__m512i b = _mm512_cvtps_epi32(_mm512_mul_ps(f, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
				_mm_loadu_si128((const __m128i *)(q[h].hi + 16 * j))))));

			_mm_storeu_si128((__m128i *)(q[h].klo + 16 * j), _mm512_cvtsepi32_epi8(a));
			_mm_storeu_si128((__m128i *)(q[h].khi + 16 * j), _mm512_cvtsepi32_epi8(b));
			/* the sums of what was stored (saturated) */
			a = _mm512_cvtepi8_epi32(_mm512_cvtsepi32_epi8(a));
			b = _mm512_cvtepi8_epi32(_mm512_cvtsepi32_epi8(b));
			s16[2 * (4 * h + j)] = _mm512_reduce_add_epi32(a);
			s16[2 * (4 * h + j) + 1] = _mm512_reduce_add_epi32(b);
			s32[4 * h + j] = s16[2 * (4 * h + j)] + s16[2 * (4 * h + j) + 1];
		}
	for (int i = 8 * gn; i < 16; i++)
		s16[i] = 0;
	for (int i = 4 * gn; i < 8; i++)
		s32[i] = 0;
	kern_q8r_k_put(q, gn, kd, s32, s16);
}

void quant_avx512_q8r_k(int n, struct q8r *r)
{
	int ng = n / QR;

	for (int g = 0; g < ng; g += 2)
		q8r_k_sb(r + g, g + 1 < ng ? 2 : 1);
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
