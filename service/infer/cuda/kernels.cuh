/* kernels.cuh — the CUDA backend's element-wise and attention kernels
 * (docs/CUDA.md), and the reductions the products share (cu_quant.cuh
 * has the products): one block per row for norms, one block per (token,
 * head) for attention over the F16 KV cache. */
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

template <int T> __device__ __forceinline__ float cu_wf(const uint8_t *row, int i)
{
	if (T == CU_F32)
		return ((const float *)row)[i];
	if (T == CU_F16)
		return __half2float(((const __half *)row)[i]);
	return __bfloat162float(((const __nv_bfloat16 *)row)[i]);
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
