/* quants.h — the ggml weight types beyond Q4_0/Q8_0: Q4_1, Q5_0, Q5_1
 * (blocks of 32) and the K-quants Q4_K, Q5_K, Q6_K (super-blocks of 256):
 * their block layouts exactly as GGUF files store them, dequantization,
 * the scalar reference dot products against struct q8a activations (the
 * kernel tables' `dot_q4_1` ... `dot_q6_k` are checked against these), and
 * quantizers for the GGUF writer.
 *
 * Layouts (little-endian, f16 scales):
 *   Q4_1  d, m, qs[16]            x = d * q + m, q 0..15 (element j: low
 *                                 nibble of qs[j], j + 16: high nibble)
 *   Q5_0  d, qh[4], qs[16]        x = d * (q - 16), q = nibble | bit j of qh << 4
 *   Q5_1  d, m, qh[4], qs[16]     x = d * q + m, q as Q5_0's
 *   Q4_K  d, dmin, scales[12], qs[128]: 8 sub-blocks of 32 with 6-bit scale
 *         sc and min mn: x = d * sc * q - dmin * mn; 64-value chunk c holds
 *         sub-block 2c in the low nibbles of qs[32c..32c+32), 2c+1 in the high
 *   Q5_K  d, dmin, scales[12], qh[32], qs[128]: Q4_K plus bit s of qh[i] as
 *         bit 4 of element i of sub-block s
 *   Q6_K  ql[128], qh[64], scales[16] (int8), d: 16 sub-blocks of 16,
 *         x = d * scales[e / 16] * (q - 32), q 0..63 (see quants.c)
 */
#ifndef ALLOT_INFER_QUANTS_H
#define ALLOT_INFER_QUANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "infer/kernels.h"

#define QK_K 256 /* elements per K-quant super-block */

struct blk_q4_1 { uint16_t d, m; uint8_t qs[16]; };
struct blk_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct blk_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct blk_q4_k { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct blk_q5_k { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct blk_q6_k { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };

/* Whether `type` is one of this module's types. */
bool quant_is_extra(uint32_t type);
/* Sub-block j's (0..7) 6-bit scale and min of a Q4_K/Q5_K block. */
void quant_k_scale_min(int j, const uint8_t *scales, int *sc, int *mn);
/* The same for all 8 at once, as bytes: sc[0..8) in the first two words,
 * mn[0..8) in the last two (for the SIMD kernels) */
static inline void quant_k_scales8(const uint8_t *scales, uint32_t u[4])
{
	const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
	uint32_t a[3];

	memcpy(a, scales, 12);
	u[0] = a[0] & m6;
	u[1] = (a[2] & m4) | (((a[0] >> 6) & m2) << 4);
	u[2] = a[1] & m6;
	u[3] = ((a[2] >> 4) & m4) | (((a[1] >> 6) & m2) << 4);
}
/* A row of n elements (a multiple of the block size) to floats. */
void quant_dequant_row(uint32_t type, int n, const void *row, float *out);
/* Floats to a row of any supported weight type (F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K); false when the type is not
 * one of these or n is not a multiple of its block size.  Q4_0, Q4_1, Q5_0,
 * Q5_1 and Q8_0 are ggml's reference quantizers; the K-quants take each
 * sub-block's range (min/max, or the largest magnitude for Q6_K) and
 * quantize the sub-block scales against the super-block's largest (not
 * ggml's iterative search for the best scale: valid blocks, slightly
 * larger error). */
bool quant_row(uint32_t type, int n, const float *x, void *out);

/* Scalar reference dot products of one row against q8a activations. */
float quant_dot_q4_1(int n, const void *w, const struct q8a *x);
float quant_dot_q5_0(int n, const void *w, const struct q8a *x);
float quant_dot_q5_1(int n, const void *w, const struct q8a *x);
float quant_dot_q4_k(int n, const void *w, const struct q8a *x);
float quant_dot_q5_k(int n, const void *w, const struct q8a *x);
float quant_dot_q6_k(int n, const void *w, const struct q8a *x);

/* The AVX2 versions (kernels_quants_avx2.c), for the avx2 and avx512
 * tables; callable only when the CPU has AVX2, FMA and F16C. */
float quant_avx2_dot_q4_1(int n, const void *w, const struct q8a *x);
float quant_avx2_dot_q5_0(int n, const void *w, const struct q8a *x);
float quant_avx2_dot_q5_1(int n, const void *w, const struct q8a *x);
float quant_avx2_dot_q4_k(int n, const void *w, const struct q8a *x);
float quant_avx2_dot_q5_k(int n, const void *w, const struct q8a *x);
float quant_avx2_dot_q6_k(int n, const void *w, const struct q8a *x);

/* The AVX-512 VNNI K-quant versions (kernels_kquant_avx512.c), for the
 * avx512 table. */
float quant_avx512_dot_q4_k(int n, const void *w, const struct q8a *x);
float quant_avx512_dot_q5_k(int n, const void *w, const struct q8a *x);
float quant_avx512_dot_q6_k(int n, const void *w, const struct q8a *x);
void quant_avx512_dotn_k(uint32_t type, int n, const void *w, const struct q8a *x, size_t xs, int ntok,
			 float *y, size_t ys);
void quant_avx512_dot4_k(uint32_t type, int n, const void *w, size_t row_bytes, const struct q8a *x, float *out);

/* Rows rearranged for the VNNI tiles (quants_repack.c; the same size as
 * the file's rows): the internal type for Q4_K, Q5_K, Q6_K, Q5_0, Q4_1,
 * Q5_1 (0 for any other), whether a type is one of those internal ones,
 * the bytes of a repacked row (0 when n does not allow it: a multiple of
 * 256 for the K-quants, of QR for the others), and one row repacked. */
uint32_t quant_repacked_type(uint32_t type);
bool quant_is_krepacked(uint32_t type);
size_t quant_repack_row_size(uint32_t type, int n);
void quant_repack_row(uint32_t type, int n, const void *src, void *dst);
/* The AVX-512 VNNI tiles over them (kernels_krepack_avx512.c), the avx512
 * table's mm4_kr: four rows (row_bytes apart) times ntok activation rows
 * (x_stride groups apart) into y[t * y_stride + r]. */
void quant_avx512_mm4_kr(uint32_t type, int n, const void *w, size_t row_bytes, const struct q8r *x,
			 size_t x_stride, int ntok, float *y, size_t y_stride);
/* kern_q8r_k (the same bytes), for the avx512 table's to_q8r */
void quant_avx512_q8r_k(int n, struct q8r *r);
/* The scalar reference of the K-quant tiles (Q4_K, Q5_K, Q6_K rows as in
 * the file, n a multiple of 256, x as kern_q8a_to_q8r makes it): the exact
 * integers and float operations of the tiles (kernels_krepack_avx512.c),
 * so the same bits. */
float quant_kr_dot(uint32_t type, int n, const void *w, const struct q8r *x);
/* The same with GFNI (kernels_krepack_gfni.c; the same bits): the avx512
 * table's mm4_kr on CPUs that have it. */
void quant_avx512_mm4_kr_gfni(uint32_t type, int n, const void *w, size_t row_bytes, const struct q8r *x,
			      size_t x_stride, int ntok, float *y, size_t y_stride);

#endif
