/* cu_quant.cuh — the CUDA backend's weight products (docs/CUDA.md): every
 * quantized type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) unpacked
 * a 32-element block at a time into int8 lanes for dp4a, the
 * matrix-vector kernels (a warp per weight row, NT tokens per launch so
 * that a batch of decoding sequences reads each row once; NT is 1 or
 * CU_MV_T, the predicated columns of a smaller batch cost no memory
 * traffic), the activation
 * quantizer, and the dequantization to F16 for the cuBLAS path.
 *
 * The block layouts are infer/quants.h's (GGUF's).  A block is described
 * by struct cu_w32: q[0..3] hold elements 0..15 (four per int, element 4k
 * in the low byte of q[k]), q[4..7] elements 16..31, and the value of
 * element e is (e < 16 ? d0 : d1) * q[e] + m.  Against an activation block
 * (x[e] ~ xd * xq[e], xs = xd * sum(xq)) the dot product is then
 * xd * (d0 * dot(q[0..3], xq[0..15]) + d1 * dot(q[4..7], xq[16..31])) +
 * m * xs. */
#ifndef ALLOT_INFER_CUDA_CU_QUANT_CUH
#define ALLOT_INFER_CUDA_CU_QUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "infer/cuda/cu_types.cuh"
#include "infer/cuda/kernels.cuh"

struct cu_w32 { int q[8]; float d0, d1, m; };

/* 4 bytes at a 2-byte aligned address (blocks of 18, 22, 34, 210 bytes) */
__device__ __forceinline__ int cu_ld4(const uint8_t *p)
{
	const uint16_t *h = (const uint16_t *)p;

	return (int)((uint32_t)h[0] | ((uint32_t)h[1] << 16));
}

/* bits 0..3 of b to bit 4 of bytes 0..3 (the fifth bit of Q5 values) */
__device__ __forceinline__ int cu_spread4(uint32_t b)
{
	return (int)(((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25));
}

/* Q4_0/Q4_1/Q5_0/Q5_1's 32 values: element j (< 16) the low nibble of
 * qs[j], j + 16 its high nibble; with qh, bit j of qh is bit 4 of element j */
__device__ __forceinline__ void cu_nibbles32(const uint8_t *qs, const uint8_t *qh, int *q)
{
	uint32_t h = qh ? (uint32_t)cu_ld4(qh) : 0;

#pragma unroll
	for (int k = 0; k < 4; k++) {
		int v = cu_ld4(qs + 4 * k);

		q[k] = v & 0x0f0f0f0f;
		q[4 + k] = (v >> 4) & 0x0f0f0f0f;
		if (qh) {
			q[k] |= cu_spread4(h >> (4 * k));
			q[4 + k] |= cu_spread4(h >> (16 + 4 * k));
		}
	}
}

/* sub-block j's (0..7) 6-bit scale and min of a Q4_K/Q5_K block (as
 * quant_k_scale_min) */
__device__ __forceinline__ void cu_k_scale_min(int j, const uint8_t *s, int *sc, int *mn)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*mn = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
		*mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
	}
}

/* block b (32 elements) of a row of type T */
template <int T> __device__ __forceinline__ void cu_load32(const uint8_t *row, int b, cu_w32 &w)
{
	if (T == CU_Q8_0) {
		const uint8_t *p = row + (size_t)b * 34;

		w.d0 = w.d1 = cu_f16(p);
		w.m = 0;
#pragma unroll
		for (int k = 0; k < 8; k++)
			w.q[k] = cu_ld4(p + 2 + 4 * k);
	} else if (T == CU_Q4_0) {
		const uint8_t *p = row + (size_t)b * 18;

		w.d0 = w.d1 = cu_f16(p);
		w.m = -8.0f * w.d0;
		cu_nibbles32(p + 2, NULL, w.q);
	} else if (T == CU_Q4_1) {
		const uint8_t *p = row + (size_t)b * 20;

		w.d0 = w.d1 = cu_f16(p);
		w.m = cu_f16(p + 2);
		cu_nibbles32(p + 4, NULL, w.q);
	} else if (T == CU_Q5_0) {
		const uint8_t *p = row + (size_t)b * 22;

		w.d0 = w.d1 = cu_f16(p);
		w.m = -16.0f * w.d0;
		cu_nibbles32(p + 6, p + 2, w.q);
	} else if (T == CU_Q5_1) {
		const uint8_t *p = row + (size_t)b * 24;

		w.d0 = w.d1 = cu_f16(p);
		w.m = cu_f16(p + 2);
		cu_nibbles32(p + 8, p + 4, w.q);
	} else if (T == CU_Q4_K || T == CU_Q5_K) {
		/* d, dmin, scales[12], (Q5_K: qh[32],) qs[128]: sub-block j in
		 * the low (j even) or high nibbles of qs[32 (j / 2) ..] */
		const uint8_t *p = row + (size_t)(b / 8) * (T == CU_Q4_K ? 144 : 176);
		const uint8_t *qs = p + (T == CU_Q4_K ? 16 : 48) + 32 * ((b % 8) / 2);
		int j = b % 8, sh = 4 * (j & 1), sc, mn;

		cu_k_scale_min(j, p + 4, &sc, &mn);
		w.d0 = w.d1 = cu_f16(p) * (float)sc;
		w.m = -cu_f16(p + 2) * (float)mn;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			w.q[k] = (cu_ld4(qs + 4 * k) >> sh) & 0x0f0f0f0f;
			if (T == CU_Q5_K)
				w.q[k] |= ((cu_ld4(p + 16 + 4 * k) >> j) & 0x01010101) << 4;
		}
	} else {
		/* Q6_K: ql[128], qh[64], scales[16] (int8), d.  32-element
		 * group g of half h: low 4 bits from ql[64h + 32 (g & 1) + l]
		 * (high nibble for g >= 2), top 2 bits at 2g of qh[32h + l];
		 * minus 32; sub-blocks of 16 with their own scales */
		const uint8_t *p = row + (size_t)(b / 8) * 210;
		int j = b % 8, h = j / 4, g = j % 4, ns = 4 * (g >> 1);
		const uint8_t *ql = p + 64 * h + 32 * (g & 1), *qh = p + 128 + 32 * h;
		float d = cu_f16(p + 208);

		w.d0 = d * (float)(int8_t)p[192 + 2 * j];
		w.d1 = d * (float)(int8_t)p[192 + 2 * j + 1];
		w.m = 0;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			int lo = (cu_ld4(ql + 4 * k) >> ns) & 0x0f0f0f0f;
			int hi = ((cu_ld4(qh + 4 * k) >> (2 * g)) & 0x03030303) << 4;

			w.q[k] = (int)__vsub4((unsigned)(lo | hi), 0x20202020u);
		}
	}
}

/* a warp's NT sums to y[t * ys] (the real ntok of them) */
template <int NT> __device__ __forceinline__ void cu_mv_store(const float *acc, int ntok, int lane, float *y, int ys)
{
#pragma unroll
	for (int t = 0; t < NT; t++) {
		float s = cu_warp_sum(acc[t]);

		if (t < ntok && lane == 0)
			y[(size_t)t * ys] = s;
	}
}

/* y[t][r] = W[r] . x[t] for float weights: a warp per row, NT tokens
 * (ntok <= NT of them real) */
template <int T, int NT>
__global__ void cu_mv_float(const uint8_t *w, size_t rb, int rows, int cols, const float *x, int xs,
			    int ntok, float *y, int ys)
{
	int r = blockIdx.x * CU_MV_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
	float acc[NT];
	const uint8_t *row;

	if (r >= rows)
		return;
	row = w + (size_t)r * rb;
#pragma unroll
	for (int t = 0; t < NT; t++)
		acc[t] = 0;
	for (int i = lane; i < cols; i += 32) {
		float v = cu_wf<T>(row, i);

#pragma unroll
		for (int t = 0; t < NT; t++)
			if (t < ntok)
				acc[t] += v * x[(size_t)t * xs + i];
	}
	cu_mv_store<NT>(acc, ntok, lane, y + r, ys);
}

/* the same for quantized weights against quantized activations (xq: xqs
 * blocks per token, nb blocks per row): a lane per 32-element block, int8
 * dot products with dp4a; each block unpacked once for the NT tokens */
template <int T, int NT>
__global__ void cu_mv_quant(const uint8_t *w, size_t rb, int rows, int nb, const cu_q81 *xq, int xqs,
			    int ntok, float *y, int ys)
{
	int r = blockIdx.x * CU_MV_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
	float acc[NT];
	const uint8_t *row;

	if (r >= rows)
		return;
	row = w + (size_t)r * rb;
#pragma unroll
	for (int t = 0; t < NT; t++)
		acc[t] = 0;
	for (int b = lane; b < nb; b += 32) {
		cu_w32 q;

		cu_load32<T>(row, b, q);
#pragma unroll
		for (int t = 0; t < NT; t++) {
			if (t < ntok) {
				const cu_q81 *xb = xq + (size_t)t * xqs + b;
				const int *xi = (const int *)xb->qs;
				int s0 = 0, s1 = 0;

#pragma unroll
				for (int k = 0; k < 4; k++) {
					s0 = __dp4a(q.q[k], xi[k], s0);
					s1 = __dp4a(q.q[4 + k], xi[4 + k], s1);
				}
				acc[t] += xb->d * (q.d0 * (float)s0 + q.d1 * (float)s1) + q.m * xb->s;
			}
		}
	}
	cu_mv_store<NT>(acc, ntok, lane, y + r, ys);
}

/* x [ntok][xs] -> nb blocks per token: a warp per block */
__global__ void cu_quant_q81(const float *x, int xs, int nb, int ntok, cu_q81 *out)
{
	int g = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
	int t = g / nb, b = g % nb;
	float v, amax, d, id;
	int q;

	if (t >= ntok)
		return;
	v = x[(size_t)t * xs + (size_t)b * CU_QK + lane];
	amax = cu_warp_max(fabsf(v));
	d = amax / 127.0f;
	id = d != 0.0f ? 1.0f / d : 0.0f;
	q = (int)nearbyintf(v * id);
	out[(size_t)t * nb + b].qs[lane] = (int8_t)q;
	q = (int)cu_warp_sum((float)q);
	if (lane == 0) {
		out[(size_t)t * nb + b].d = d;
		out[(size_t)t * nb + b].s = d * (float)q;
	}
}

/* rows*cols float weights of type T to F16 (the cuBLAS path): a thread
 * per element */
template <int T>
__global__ void cu_dequant_f16(const uint8_t *w, size_t rb, int rows, int cols, __half *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)rows * cols)
		return;
	out[i] = __float2half(cu_wf<T>(w + (i / cols) * rb, (int)(i % cols)));
}

/* quantized weights of type T (rows of nb blocks) to F16: a thread per
 * 32-element block */
template <int T>
__global__ void cu_dequant_q(const uint8_t *w, size_t rb, int rows, int nb, __half *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	__half *o;
	cu_w32 q;

	if (i >= (size_t)rows * nb)
		return;
	cu_load32<T>(w + (i / nb) * rb, (int)(i % nb), q);
	o = out + i * CU_QK;
#pragma unroll
	for (int e = 0; e < CU_QK; e++) {
		int v = (int)(int8_t)(q.q[e / 4] >> (8 * (e % 4)));

		o[e] = __float2half((e < 16 ? q.d0 : q.d1) * (float)v + q.m);
	}
}

#endif
