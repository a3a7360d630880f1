/* kernels.cuh — the CUDA backend's device kernels (docs/CUDA.md).  Kept
 * simple: one warp per weight row for matrix-vector products (up to
 * CU_MV_T tokens per launch, int8 dp4a dot products against Q8_1-style
 * activation blocks for Q8_0/Q4_0 weights), one block per row for norms,
 * one block per (token, head) for attention over the F16 KV cache. */
#ifndef ALLOT_INFER_CUDA_KERNELS_CUH
#define ALLOT_INFER_CUDA_KERNELS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>

#include "infer/cuda/cu_types.cuh"

__device__ __forceinline__ float cu_warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float cu_warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

/* block-wide sum or max (blockDim.x a multiple of 32, at most 1024) */
__device__ __forceinline__ float cu_block_reduce(float v, bool is_max)
{
	__shared__ float part[32];
	int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;

	v = is_max ? cu_warp_max(v) : cu_warp_sum(v);
	__syncthreads();
	if (lane == 0)
		part[w] = v;
	__syncthreads();
	v = lane < nw ? part[lane] : (is_max ? -INFINITY : 0.0f);
	return is_max ? cu_warp_max(v) : cu_warp_sum(v);
}

__device__ __forceinline__ float cu_f16(const uint8_t *p)
{
	return __half2float(*(const __half *)p);
}

/* 4 bytes at a 2-byte aligned address (the 18- and 34-byte blocks) */
__device__ __forceinline__ int cu_ld4(const uint8_t *p)
{
	const uint16_t *h = (const uint16_t *)p;

	return (int)((uint32_t)h[0] | ((uint32_t)h[1] << 16));
}

template <int T> __device__ __forceinline__ float cu_wf(const uint8_t *row, int i)
{
	if (T == CU_F32)
		return ((const float *)row)[i];
	if (T == CU_F16)
		return __half2float(((const __half *)row)[i]);
	if (T == CU_BF16)
		return __bfloat162float(((const __nv_bfloat16 *)row)[i]);
	if (T == CU_Q8_0) {
		const uint8_t *b = row + (size_t)(i / CU_QK) * 34;

		return cu_f16(b) * (float)(int8_t)b[2 + i % CU_QK];
	}
	/* Q4_0: element j low nibble of qs[j], j + 16 high */
	{
		const uint8_t *b = row + (size_t)(i / CU_QK) * 18;
		int j = i % CU_QK;
		int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);

		return cu_f16(b) * (float)(q - 8);
	}
}

/* y[t][r] = W[r] . x[t] for float weights: a warp per row */
template <int T>
__global__ void cu_mv_float(const uint8_t *w, size_t rb, int rows, int cols, const float *x, int xs,
			    int ntok, float *y, int ys)
{
	int r = blockIdx.x * CU_MV_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
	float acc[CU_MV_T];
	const uint8_t *row;

	if (r >= rows)
		return;
	row = w + (size_t)r * rb;
#pragma unroll
	for (int t = 0; t < CU_MV_T; t++)
		acc[t] = 0;
	for (int i = lane; i < cols; i += 32) {
		float v = cu_wf<T>(row, i);

#pragma unroll
		for (int t = 0; t < CU_MV_T; t++)
			if (t < ntok)
				acc[t] += v * x[(size_t)t * xs + i];
	}
#pragma unroll
	for (int t = 0; t < CU_MV_T; t++) {
		float s = cu_warp_sum(acc[t]);

		if (t < ntok && lane == 0)
			y[(size_t)t * ys + r] = s;
	}
}

/* the same for Q8_0 / Q4_0 weights against quantized activations (xq:
 * xqs blocks per token): int8 dot products with dp4a */
template <int T>
__global__ void cu_mv_quant(const uint8_t *w, size_t rb, int rows, int cols, const cu_q81 *xq, int xqs,
			    int ntok, float *y, int ys)
{
	int r = blockIdx.x * CU_MV_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32, nb = cols / CU_QK;
	float acc[CU_MV_T];
	const uint8_t *row;

	if (r >= rows)
		return;
	row = w + (size_t)r * rb;
#pragma unroll
	for (int t = 0; t < CU_MV_T; t++)
		acc[t] = 0;
	for (int b = lane; b < nb; b += 32) {
		int wi[8];
		float d;

		if (T == CU_Q8_0) {
			const uint8_t *blk = row + (size_t)b * 34;

			d = cu_f16(blk);
#pragma unroll
			for (int k = 0; k < 8; k++)
				wi[k] = cu_ld4(blk + 2 + 4 * k);
		} else {
			const uint8_t *blk = row + (size_t)b * 18;

			d = cu_f16(blk);
#pragma unroll
			for (int k = 0; k < 4; k++) {
				int v = cu_ld4(blk + 2 + 4 * k);

				wi[k] = v & 0x0f0f0f0f;
				wi[4 + k] = (v >> 4) & 0x0f0f0f0f;
			}
		}
#pragma unroll
		for (int t = 0; t < CU_MV_T; t++) {
			if (t < ntok) {
				const cu_q81 *xb = xq + (size_t)t * xqs + b;
				const int *xi = (const int *)xb->qs;
				int s = 0;

#pragma unroll
				for (int k = 0; k < 8; k++)
					s = __dp4a(wi[k], xi[k], s);
				/* Q4_0 stores q + 8: subtract 8 * sum(x) */
				acc[t] += T == CU_Q8_0 ? d * xb->d * (float)s : d * (xb->d * (float)s - 8.0f * xb->s);
			}
		}
	}
#pragma unroll
	for (int t = 0; t < CU_MV_T; t++) {
		float s = cu_warp_sum(acc[t]);

		if (t < ntok && lane == 0)
			y[(size_t)t * ys + r] = s;
	}
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

/* rows*cols weights of type T to F16 (the cuBLAS path): a thread per element */
template <int T>
__global__ void cu_dequant_f16(const uint8_t *w, size_t rb, int rows, int cols, __half *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)rows * cols)
		return;
	out[i] = __float2half(cu_wf<T>(w + (i / cols) * rb, (int)(i % cols)));
}

__global__ void cu_to_f16(const float *x, int xs, int cols, int ntok, __half *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i >= (size_t)ntok * cols)
		return;
	out[i] = __float2half(x[(i / cols) * xs + i % cols]);
}

/* o[r] = w * x[idx ? idx[r] : r] / rms, rows of n (o may be x when idx is NULL) */
__global__ void cu_rmsnorm(float *o, const float *x, const int *idx, const float *w, int n, float eps)
{
	int r = blockIdx.x;
	const float *xr = x + (size_t)(idx ? idx[r] : r) * n;
	float *orow = o + (size_t)r * n, ss = 0;

	for (int i = threadIdx.x; i < n; i += blockDim.x)
		ss += xr[i] * xr[i];
	ss = cu_block_reduce(ss, false);
	ss = 1.0f / sqrtf(ss / (float)n + eps);
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		orow[i] = w[i] * (ss * xr[i]);
}

/* pairs rotated by the host's tables cs/sn [ntok][hd/2]; v [ntok][stride],
 * nh heads of hd per token */
__global__ void cu_rope(float *v, int ntok, int nh, int hd, int stride, const float *cs, const float *sn,
			int neox)
{
	int half = hd / 2;
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	int t, h, k, i0, i1;
	float a, b, c, s;
	float *p;

	if (i >= (size_t)ntok * nh * half)
		return;
	t = (int)(i / ((size_t)nh * half));
	h = (int)(i / half % nh);
	k = (int)(i % half);
	p = v + (size_t)t * stride + (size_t)h * hd;
	i0 = neox ? k : 2 * k;
	i1 = neox ? k + half : 2 * k + 1;
	c = cs[(size_t)t * half + k];
	s = sn[(size_t)t * half + k];
	a = p[i0];
	b = p[i1];
	p[i0] = a * c - b * s;
	p[i1] = a * s + b * c;
}

__global__ void cu_add_bias(float *y, const float *b, int ntok, int len)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < (size_t)ntok * len)
		y[i] += b[i % len];
}

__global__ void cu_add(float *x, const float *y, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		x[i] += y[i];
}

__global__ void cu_swiglu(float *h, const float *u, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n) {
		float v = h[i];

		v *= 1.0f / (1.0f + expf(-v));
		h[i] = v * u[i];
	}
}

/* keys and values of ntok tokens into the F16 cache
 * [slot][layer][kv head][ctx][hd] */
__global__ void cu_kv_store(__half *kc, __half *vc, const float *k, const float *v, const int *slot,
			    const int *pos, int ntok, int layer, int n_layer, int nkv, int hd, int n_ctx)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	int kvd = nkv * hd, t, h, e;
	size_t at;

	if (i >= (size_t)ntok * kvd)
		return;
	t = (int)(i / kvd);
	h = (int)(i % kvd) / hd;
	e = (int)(i % hd);
	at = ((((size_t)slot[t] * n_layer + layer) * nkv + h) * n_ctx + pos[t]) * hd + e;
	kc[at] = __float2half(k[i]);
	vc[at] = __float2half(v[i]);
}

/* a block per (token, query head): scores over positions 0..pos into att
 * (n_ctx floats per block), softmax, values; q [ntok][n_head * hd] */
__global__ void cu_attention(const float *q, const __half *kc, const __half *vc, const int *slot,
			     const int *pos, int layer, int n_layer, int n_head, int nkv, int hd, int n_ctx,
			     float *att_all, float *out)
{
	extern __shared__ float qs[];
	int t = blockIdx.x / n_head, h = blockIdx.x % n_head, kvh = h / (n_head / nkv);
	int p = pos[t];
	size_t base = (((size_t)slot[t] * n_layer + layer) * nkv + kvh) * n_ctx * hd;
	const __half *kb = kc + base, *vb = vc + base;
	float *att = att_all + (size_t)blockIdx.x * n_ctx, scale = rsqrtf((float)hd), mx = -INFINITY, sum = 0;

	for (int i = threadIdx.x; i < hd; i += blockDim.x)
		qs[i] = q[(size_t)t * n_head * hd + (size_t)h * hd + i];
	__syncthreads();
	for (int j = threadIdx.x; j <= p; j += blockDim.x) {
		const __half *kr = kb + (size_t)j * hd;
		float s = 0;

		for (int i = 0; i < hd; i++)
			s += qs[i] * __half2float(kr[i]);
		s *= scale;
		att[j] = s;
		mx = fmaxf(mx, s);
	}
	mx = cu_block_reduce(mx, true);
	for (int j = threadIdx.x; j <= p; j += blockDim.x) {
		float e = expf(att[j] - mx);

		att[j] = e;
		sum += e;
	}
	sum = cu_block_reduce(sum, false);
	__syncthreads();
	for (int i = threadIdx.x; i < hd; i += blockDim.x) {
		float acc = 0;

		for (int j = 0; j <= p; j++)
			acc += att[j] * __half2float(vb[(size_t)j * hd + i]);
		out[(size_t)t * n_head * hd + (size_t)h * hd + i] = acc / sum;
	}
}

#endif
