/* quants_repack.c — Q4_K, Q5_K, Q6_K, Q5_0, Q4_1 and Q5_1 rows rearranged at load for
 * the AVX-512 VNNI tiles (kernels_krepack_avx512.c), the same size as the
 * file's rows, nothing dequantized.
 *
 * The tiles take activations as struct q8r groups (four 32-value blocks,
 * lane j of a 512-bit vector holding block j: its values 0-15 in `lo`,
 * 16-31 in `hi`), so the weights are laid out the same way: for every
 * group of 128 values, 64 bytes whose 128-bit lane j holds block j's
 * values i (low nibble) and 16 + i (high nibble) in byte i.  A K-quant
 * sub-block of 32 values is exactly one such block.  Layouts (per
 * super-block of 256 values for the K-quants, per group for the others):
 *
 *   Q4_KR  qs[2][64], d, dmin, scales[12] (as the file)            144 bytes
 *   Q5_KR  qs[2][64], hb[2][2] u64, d, dmin, scales[12]            176 bytes
 *          hb[h][0] bit 16j + i: bit 4 of value i of block 4h + j,
 *          hb[h][1] the same for value 16 + i
 *   Q6_KR  ql[2][64] (the low 4 bits), qh[2][2][16], scales[16], d 210 bytes
 *          qh[h][0][i] bits 2j, 2j + 1: the top 2 bits of value i of
 *          block 4h + j; qh[h][1][i] of value 16 + i
 *   Q5_0R  qs[64], hb[2] u64 (as Q5_KR's), d[4]                     88 bytes
 *   Q4_1R  qs[64], d[4], m[4]                                       80 bytes
 *   Q5_1R  qs[64], hb[2] u64, d[4], m[4]                            96 bytes
 */
#include "infer/quants.h"

#include <math.h>
#include <string.h>

#include "infer/gguf.h"

uint32_t quant_repacked_type(uint32_t type)
{
	switch (type) {
	case GGML_Q4_K: return GGML_Q4_KR;
	case GGML_Q5_K: return GGML_Q5_KR;
	case GGML_Q6_K: return GGML_Q6_KR;
	case GGML_Q5_0: return GGML_Q5_0R;
	case GGML_Q4_1: return GGML_Q4_1R;
	case GGML_Q5_1: return GGML_Q5_1R;
	default: return 0;
	}
}

bool quant_is_krepacked(uint32_t type)
{
	return type == GGML_Q4_KR || type == GGML_Q5_KR || type == GGML_Q6_KR || type == GGML_Q5_0R ||
	       type == GGML_Q4_1R || type == GGML_Q5_1R;
}

size_t quant_repack_row_size(uint32_t type, int n)
{
	if (n <= 0 || n % QR)
		return 0;
	switch (type) {
	case GGML_Q4_K: return n % QK_K ? 0 : (size_t)(n / QK_K) * sizeof(struct blk_q4_k);
	case GGML_Q5_K: return n % QK_K ? 0 : (size_t)(n / QK_K) * sizeof(struct blk_q5_k);
	case GGML_Q6_K: return n % QK_K ? 0 : (size_t)(n / QK_K) * sizeof(struct blk_q6_k);
	case GGML_Q5_0: return (size_t)(n / QR) * 4 * sizeof(struct blk_q5_0);
	case GGML_Q4_1: return (size_t)(n / QR) * 4 * sizeof(struct blk_q4_1);
	case GGML_Q5_1: return (size_t)(n / QR) * 4 * sizeof(struct blk_q5_1);
	default: return 0;
	}
}

/* value i (0..255) of a Q6_K block, 0..63 (as quants.c's unpack_q6k) */
static int q6_val(const struct blk_q6_k *b, int e)
{
	int h = e / 128, k = e % 128 / 32, i = e % 32;
	const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
	int lo = k == 0 ? ql[i] & 0xf : k == 1 ? ql[i + 32] & 0xf : k == 2 ? ql[i] >> 4 : ql[i + 32] >> 4;

	return lo | ((qh[i] >> (2 * k)) & 3) << 4;
}

/* value i (0..31) of sub-block s of a Q4_K/Q5_K block (qh NULL: Q4_K) */
static int k45_val(const uint8_t *qs, const uint8_t *qh, int s, int i)
{
	int v = (qs[32 * (s / 2) + i] >> (4 * (s % 2))) & 0xf;

	if (qh)
		v |= ((qh[i] >> s) & 1) << 4;
	return v;
}

/* One group of four 32-value blocks: v[j][i] the values (0..63) of block
 * j; the low nibbles into qs[64], bit 4 into hb[2] (when hb), bits 4-5
 * into q6[2][16] (when q6). */
static void put_group(const uint8_t v[4][32], uint8_t *qs, uint8_t *hb, uint8_t *q6)
{
	uint64_t m[2] = {0, 0};

	if (q6)
		memset(q6, 0, 32);
	for (int j = 0; j < 4; j++)
		for (int i = 0; i < 16; i++) {
			uint8_t a = v[j][i], b = v[j][i + 16];

			qs[16 * j + i] = (uint8_t)((a & 0xf) | (b & 0xf) << 4);
			m[0] |= (uint64_t)((a >> 4) & 1) << (16 * j + i);
			m[1] |= (uint64_t)((b >> 4) & 1) << (16 * j + i);
			if (q6) {
				q6[i] |= (uint8_t)(((a >> 4) & 3) << (2 * j));
				q6[16 + i] |= (uint8_t)(((b >> 4) & 3) << (2 * j));
			}
		}
	if (hb)
		memcpy(hb, m, 16);
}

/* Q5_0, Q4_1, Q5_1: per group of four blocks, qs[64], the fifth bits
 * hb[16] (Q5), the four d, the four m (Q4_1, Q5_1) */
static void repack_blockwise(uint32_t type, int n, const uint8_t *src, uint8_t *o)
{
	const bool five = type != GGML_Q4_1, mins = type != GGML_Q5_0;
	const size_t bb = type == GGML_Q5_0 ? sizeof(struct blk_q5_0) : type == GGML_Q4_1 ? sizeof(struct blk_q4_1)
											 : sizeof(struct blk_q5_1);
	/* offsets in a block: qh (Q5), qs; in a group: d[4], m[4] */
	const size_t qho = type == GGML_Q5_0 ? 2 : 4, qso = type == GGML_Q5_0 ? 6 : type == GGML_Q4_1 ? 4 : 8;
	const size_t doff = type == GGML_Q4_1 ? 64 : 80, moff = doff + 8;
	uint8_t v[4][32];

	for (int g = 0; g < n / QR; g++, o += 4 * bb) {
		for (int j = 0; j < 4; j++) {
			const uint8_t *b = src + (size_t)(4 * g + j) * bb;
			uint32_t qh = 0;

			if (five)
				memcpy(&qh, b + qho, 4);
			for (int i = 0; i < 16; i++) {
				v[j][i] = (uint8_t)((b[qso + i] & 0xf) | ((qh >> i) & 1) << 4);
				v[j][i + 16] = (uint8_t)((b[qso + i] >> 4) | ((qh >> (i + 16)) & 1) << 4);
			}
			memcpy(o + doff + 2 * j, b, 2);
			if (mins)
				memcpy(o + moff + 2 * j, b + 2, 2);
		}
		put_group((const uint8_t (*)[32])v, o, five ? o + 64 : NULL, NULL);
	}
}

void quant_repack_row(uint32_t type, int n, const void *src, void *dst)
{
	uint8_t *o = dst, v[4][32];

	if (type == GGML_Q5_0 || type == GGML_Q4_1 || type == GGML_Q5_1) {
		repack_blockwise(type, n, src, o);
		return;
	}
	for (int sb = 0; sb < n / QK_K; sb++) {
		if (type == GGML_Q6_K) {
			const struct blk_q6_k *b = (const struct blk_q6_k *)src + sb;

			for (int h = 0; h < 2; h++) {
				for (int j = 0; j < 4; j++)
					for (int i = 0; i < 32; i++)
						v[j][i] = (uint8_t)q6_val(b, 128 * h + 32 * j + i);
				put_group((const uint8_t (*)[32])v, o + 64 * h, NULL, o + 128 + 32 * h);
			}
			memcpy(o + 192, b->scales, 16);
			memcpy(o + 208, &b->d, 2);
			o += sizeof *b;
		} else {
			bool q5 = type == GGML_Q5_K;
			const uint8_t *blk = (const uint8_t *)src + (size_t)sb * (q5 ? 176 : 144);
			const uint8_t *qs = blk + (q5 ? 48 : 16), *qh = q5 ? blk + 16 : NULL;

			for (int h = 0; h < 2; h++) {
				for (int j = 0; j < 4; j++)
					for (int i = 0; i < 32; i++)
						v[j][i] = (uint8_t)k45_val(qs, qh, 4 * h + j, i);
				put_group((const uint8_t (*)[32])v, o + 64 * h, q5 ? o + 128 + 16 * h : NULL, NULL);
			}
			/* d, dmin and the 12 scale bytes as they are */
			memcpy(o + (q5 ? 160 : 128), blk, 16);
			o += q5 ? 176 : 144;
		}
	}
}

/* The K-quant tiles' result, in their order (kernels_krepack_avx512.c):
 * per super-block and lane j (0..3) of the tiles' vectors, an exact
 * integer over the sub-blocks that lane holds (j and 4 + j for Q4_K/Q5_K,
 * each scaled by its 6-bit sc; the 16-value sub-blocks 2j, 2j + 1, 8 + 2j,
 * 9 + 2j for Q6_K, (q - 32) x by its sub-scale), likewise the mins
 * (sub-blocks 2j, 2j + 1, each mn times the block's activation sum), then
 * Q4_K/Q5_K: acc_j += (W_j d - M_j dmin) kd, Q6_K: acc_j += Z_j (d kd),
 * each product fused as the tiles' FMAs; the result (acc_0 + acc_2) +
 * (acc_1 + acc_3). */
float quant_kr_dot(uint32_t type, int n, const void *w, const struct q8r *x)
{
	float acc[4] = {0, 0, 0, 0};

	for (int sb = 0; sb < n / QK_K; sb++) {
		const struct q8r *xg = x + 2 * sb;
		float kd = xg->kd;
		int64_t v[8] = {0};    /* per 32 (Q6_K: 16 in v16) values, sum q x */
		int64_t v16[16] = {0};

		if (type == GGML_Q6_K) {
			const struct blk_q6_k *b = (const struct blk_q6_k *)w + sb;
			float d = kern_f16_to_f32(b->d);

			for (int e = 0; e < QK_K; e++) {
				int s = e / 32, i = e % 32;
				int xv = i < 16 ? xg[s / 4].klo[16 * (s % 4) + i] : xg[s / 4].khi[16 * (s % 4) + i - 16];

				v16[e / 16] += (int64_t)q6_val(b, e) * xv;
			}
			for (int j = 0; j < 4; j++) {
				int64_t z = 0;

				for (int k = 0; k < 4; k++) {
					int s = k < 2 ? 2 * j + k : 8 + 2 * j + k - 2;
					int x16 = k < 2 ? xg->ks16a[2 * (4 * j) + k] : xg->ks16b[2 * (4 * j) + k - 2];

					z += (int64_t)b->scales[s] * (v16[s] - 32 * (int64_t)x16);
				}
				acc[j] = fmaf((float)(int32_t)z, d * kd, acc[j]);
			}
		} else {
			bool q5 = type == GGML_Q5_K;
			const uint8_t *blk = (const uint8_t *)w + (size_t)sb * (q5 ? 176 : 144);
			const uint8_t *qs = blk + (q5 ? 48 : 16), *qh = q5 ? blk + 16 : NULL;
			uint16_t hd, hm;
			int sc[8], mn[8];

			memcpy(&hd, blk, 2);
			memcpy(&hm, blk + 2, 2);
			for (int s = 0; s < 8; s++) {
				quant_k_scale_min(s, blk + 4, &sc[s], &mn[s]);
				for (int i = 0; i < 32; i++)
					v[s] += (int64_t)k45_val(qs, qh, s, i) *
						(i < 16 ? xg[s / 4].klo[16 * (s % 4) + i] : xg[s / 4].khi[16 * (s % 4) + i - 16]);
			}
			for (int j = 0; j < 4; j++) {
				int64_t wj = sc[j] * v[j] + sc[4 + j] * v[4 + j];
				int64_t mj = (int64_t)mn[2 * j] * xg->ks32[2 * (4 * j)] +
					     (int64_t)mn[2 * j + 1] * xg->ks32[2 * (4 * j) + 1];
				float m = (float)(int32_t)mj * kern_f16_to_f32(hm);

				acc[j] = fmaf(fmaf((float)(int32_t)wj, kern_f16_to_f32(hd), -m), kd, acc[j]);
			}
		}
	}
	return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}
