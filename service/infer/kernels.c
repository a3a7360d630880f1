/* kernels.c — scalar reference kernels, conversions, and dispatch. */
#include "infer/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/gguf.h"
#include "infer/quants.h"

float kern_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		f = (float)man * 0x1p-24f;
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000u | (man << 13);
	else
		bits = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t kern_f32_to_f16(float f)
{
	uint32_t x, sign, mant;
	int32_t exp;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	exp = (int32_t)((x >> 23) & 0xff);
	mant = x & 0x7fffff;
	if (exp == 255)
		return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
	exp -= 112;
	if (exp >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (exp <= 0) {
		uint32_t m, shift, r, half;

		if (exp < -10)
			return (uint16_t)sign;
		m = mant | 0x800000;
		shift = (uint32_t)(14 - exp);
		r = m >> shift;
		half = 1u << (shift - 1);
		if ((m & ((1u << shift) - 1)) > half || ((m & ((1u << shift) - 1)) == half && (r & 1)))
			r++;
		return (uint16_t)(sign | r);
	}
	{
		uint32_t r = ((uint32_t)exp << 10) | (mant >> 13);
		uint32_t rest = mant & 0x1fff;

		if (rest > 0x1000 || (rest == 0x1000 && (r & 1)))
			r++; /* may carry into the exponent: still correct */
		return (uint16_t)(sign | r);
	}
}

float kern_bf16_to_f32(uint16_t h)
{
	uint32_t b = (uint32_t)h << 16;
	float f;

	memcpy(&f, &b, 4);
	return f;
}

uint16_t kern_f32_to_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((x >> 16) | 0x40);
	return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* ---- scalar reference ---------------------------------------------------- */

static float s_dot_f32(int n, const float *w, const float *x)
{
	float s = 0;

	for (int i = 0; i < n; i++)
		s += w[i] * x[i];
	return s;
}

static float s_dot_f16(int n, const uint16_t *w, const float *x)
{
	float s = 0;

	for (int i = 0; i < n; i++)
		s += kern_f16_to_f32(w[i]) * x[i];
	return s;
}

static float s_dot_bf16(int n, const uint16_t *w, const float *x)
{
	float s = 0;

	for (int i = 0; i < n; i++)
		s += kern_bf16_to_f32(w[i]) * x[i];
	return s;
}

static float s_dot_q8_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q8_0 *w = wv;
	float s = 0;

	for (int b = 0; b < n / QK; b++) {
		int32_t is = 0;

		for (int i = 0; i < QK; i++)
			is += w[b].qs[i] * x[b].qs[i];
		s += (float)is * kern_f16_to_f32(w[b].d) * x[b].d;
	}
	return s;
}

static float s_dot_q4_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_0 *w = wv;
	float s = 0;

	for (int b = 0; b < n / QK; b++) {
		int32_t is = 0;

		for (int i = 0; i < QK / 2; i++) {
			is += ((w[b].qs[i] & 0xf) - 8) * x[b].qs[i];
			is += ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + QK / 2];
		}
		s += (float)is * kern_f16_to_f32(w[b].d) * x[b].d;
	}
	return s;
}

static void s_dot4_q8_0(int n, const void *w, size_t rb, const struct q8a *x, float *out)
{
	for (int i = 0; i < 4; i++)
		out[i] = s_dot_q8_0(n, (const char *)w + i * rb, x);
}

static void s_dot4_q4_0(int n, const void *w, size_t rb, const struct q8a *x, float *out)
{
	for (int i = 0; i < 4; i++)
		out[i] = s_dot_q4_0(n, (const char *)w + i * rb, x);
}

static void s_key_scores(int hd, const float *q, const float *kb, float *sc)
{
	for (int i = 0; i < hd; i++)
		for (int j = 0; j < 16; j++)
			sc[j] += q[i] * kb[i * 16 + j];
}

static void s_att_values(int hd, int n, const float *a, float scale, const float *v, size_t stride, float *out)
{
	memset(out, 0, (size_t)hd * sizeof *out);
	for (int j = 0; j < n; j++) {
		float aj = a[j] * scale;

		for (int i = 0; i < hd; i++)
			out[i] += aj * v[(size_t)j * stride + i];
	}
}

static void s_quant_q8a(int n, const float *x, struct q8a *out)
{
	for (int b = 0; b < n / QK; b++) {
		float amax = 0, d, id;
		int sum = 0;

		for (int i = 0; i < QK; i++)
			amax = fmaxf(amax, fabsf(x[b * QK + i]));
		d = amax / 127.0f;
		id = d ? 1.0f / d : 0.0f;
		for (int i = 0; i < QK; i++) {
			int q = (int)nearbyintf(x[b * QK + i] * id);

			out[b].qs[i] = (int8_t)q;
			sum += q;
		}
		out[b].d = d;
		out[b].ds = d * (float)sum;
	}
}

static float s_softmax_exp(int n, float *a, float max)
{
	float sum = 0;

	for (int i = 0; i < n; i++) {
		a[i] = expf(a[i] - max);
		sum += a[i];
	}
	return sum;
}

static void s_swiglu(int n, float *h, const float *u)
{
	for (int i = 0; i < n; i++) {
		float v = h[i];

		v *= 1.0f / (1.0f + expf(-v));
		h[i] = v * u[i];
	}
}

const struct kern_ops kern_scalar = {
	.name = "scalar",
	.dot_f32 = s_dot_f32,
	.dot_f16 = s_dot_f16,
	.dot_bf16 = s_dot_bf16,
	.dot_q8_0 = s_dot_q8_0,
	.dot_q4_0 = s_dot_q4_0,
	.dot4_q8_0 = s_dot4_q8_0,
	.dot4_q4_0 = s_dot4_q4_0,
	.dot_q4_1 = quant_dot_q4_1,
	.dot_q5_0 = quant_dot_q5_0,
	.dot_q5_1 = quant_dot_q5_1,
	.dot_q4_k = quant_dot_q4_k,
	.dot_q5_k = quant_dot_q5_k,
	.dot_q6_k = quant_dot_q6_k,
	.key_scores = s_key_scores,
	.att_values = s_att_values,
	.quant_q8a = s_quant_q8a,
	.swiglu = s_swiglu,
	.softmax_exp = s_softmax_exp,
};

/* ---- weight quantizers (ggml's reference algorithms) ---------------------- */

void kern_quantize_q8_0(int n, const float *x, void *outv)
{
	struct blk_q8_0 *out = outv;

	for (int b = 0; b < n / QK; b++) {
		float amax = 0, d, id;

		for (int i = 0; i < QK; i++)
			amax = fmaxf(amax, fabsf(x[b * QK + i]));
		d = amax / 127.0f;
		id = d ? 1.0f / d : 0.0f;
		out[b].d = kern_f32_to_f16(d);
		for (int i = 0; i < QK; i++)
			out[b].qs[i] = (int8_t)roundf(x[b * QK + i] * id);
	}
}

void kern_quantize_q4_0(int n, const float *x, void *outv)
{
	struct blk_q4_0 *out = outv;

	for (int b = 0; b < n / QK; b++) {
		float amax = 0, max = 0, d, id;

		for (int i = 0; i < QK; i++) {
			float v = x[b * QK + i];

			if (fabsf(v) > amax) {
				amax = fabsf(v);
				max = v;
			}
		}
		d = max / -8.0f;
		id = d ? 1.0f / d : 0.0f;
		out[b].d = kern_f32_to_f16(d);
		for (int i = 0; i < QK / 2; i++) {
			int q0 = (int)(x[b * QK + i] * id + 8.5f);
			int q1 = (int)(x[b * QK + QK / 2 + i] * id + 8.5f);

			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			out[b].qs[i] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

void kern_dequant_row(uint32_t type, int n, const void *row, float *out)
{
	switch (type) {
	case GGML_F32:
		memcpy(out, row, (size_t)n * 4);
		break;
	case GGML_F16: {
		const uint16_t *h = row;

		for (int i = 0; i < n; i++)
			out[i] = kern_f16_to_f32(h[i]);
		break;
	}
	case GGML_BF16: {
		const uint16_t *h = row;

		for (int i = 0; i < n; i++)
			out[i] = kern_bf16_to_f32(h[i]);
		break;
	}
	case GGML_Q8_0: {
		const struct blk_q8_0 *w = row;

		for (int b = 0; b < n / QK; b++)
			for (int i = 0; i < QK; i++)
				out[b * QK + i] = kern_f16_to_f32(w[b].d) * w[b].qs[i];
		break;
	}
	case GGML_Q4_0: {
		const struct blk_q4_0 *w = row;

		for (int b = 0; b < n / QK; b++) {
			float d = kern_f16_to_f32(w[b].d);

			for (int i = 0; i < QK / 2; i++) {
				out[b * QK + i] = d * ((w[b].qs[i] & 0xf) - 8);
				out[b * QK + i + QK / 2] = d * ((w[b].qs[i] >> 4) - 8);
			}
		}
		break;
	}
	default:
		quant_dequant_row(type, n, row, out);
	}
}

kern_dot_q_fn kern_dot_q(const struct kern_ops *k, uint32_t type)
{
	switch (type) {
	case GGML_Q8_0: return k->dot_q8_0;
	case GGML_Q4_0: return k->dot_q4_0;
	case GGML_Q4_1: return k->dot_q4_1;
	case GGML_Q5_0: return k->dot_q5_0;
	case GGML_Q5_1: return k->dot_q5_1;
	case GGML_Q4_K: return k->dot_q4_k;
	case GGML_Q5_K: return k->dot_q5_k;
	case GGML_Q6_K: return k->dot_q6_k;
	default: return NULL;
	}
}

/* ---- repacking ---------------------------------------------------------------- */

size_t kern_repack_row_size(uint32_t type, int n)
{
	if (quant_repacked_type(type))
		return quant_repack_row_size(type, n);
	if (n % QR)
		return 0;
	return (size_t)(n / QR) * (type == GGML_Q4_0 ? 72 : type == GGML_Q8_0 ? 136 : 0);
}

void kern_repack_row(uint32_t type, int n, const void *src, void *dst)
{
	uint8_t *o = dst;

	if (quant_repacked_type(type)) {
		quant_repack_row(type, n, src, dst);
		return;
	}
	for (int g = 0; g < n / QR; g++) {
		if (type == GGML_Q4_0) {
			const struct blk_q4_0 *b = (const struct blk_q4_0 *)src + 4 * g;

			for (int j = 0; j < 4; j++) {
				memcpy(o + 16 * j, b[j].qs, 16);
				memcpy(o + 64 + 2 * j, &b[j].d, 2);
			}
			o += 72;
		} else {
			const struct blk_q8_0 *b = (const struct blk_q8_0 *)src + 4 * g;

			for (int j = 0; j < 4; j++) {
				for (int i = 0; i < 16; i++) {
					o[16 * j + i] = (uint8_t)(b[j].qs[i] + 128);
					o[64 + 16 * j + i] = (uint8_t)(b[j].qs[16 + i] + 128);
				}
				memcpy(o + 128 + 2 * j, &b[j].d, 2);
			}
			o += 136;
		}
	}
}

void kern_q8a_to_q8r(int n, const struct q8a *a, struct q8r *r)
{
	for (int g = 0; g < n / QR; g++, r++) {
		for (int j = 0; j < 4; j++) {
			const struct q8a *b = &a[4 * g + j];

			memcpy(r->lo + 16 * j, b->qs, 16);
			memcpy(r->hi + 16 * j, b->qs + 16, 16);
			for (int k = 0; k < 4; k++) {
				int32_t sum = 0;

				for (int i = 0; i < 4; i++)
					sum += r->lo[16 * j + 4 * k + i] + r->hi[16 * j + 4 * k + i];
				r->s8[4 * j + k] = 8 * sum;
				r->d[4 * j + k] = b->d;
				r->ds[4 * j + k] = b->ds;
			}
		}
	}
	kern_q8r_k(n, r - n / QR);
}

float kern_q8r_k_scale(const struct q8r *q, int gn)
{
	float kd = 0;

	for (int h = 0; h < gn; h++)
		for (int j = 0; j < 4; j++)
			kd = q[h].d[4 * j] > kd ? q[h].d[4 * j] : kd;
	return kd;
}

void kern_q8r_k_put(struct q8r *q, int gn, float kd, const int s32[8], const int s16[16])
{
	for (int h = 0; h < gn; h++) {
		q[h].kd = kd;
		for (int l = 0; l < 16; l++)
			for (int e = 0; e < 2; e++) {
				q[h].ks32[2 * l + e] = (int16_t)s32[2 * (l / 4) + e];
				q[h].ks16a[2 * l + e] = (int16_t)s16[2 * (l / 4) + e];
				q[h].ks16b[2 * l + e] = (int16_t)s16[8 + 2 * (l / 4) + e];
			}
		memset(q[h].pad_, 0, sizeof q[h].pad_);
	}
}

/* rint(v) as vcvtps2dq then a saturating pack to int8 give it: NaN and
 * from 2^31 on -128 (the "integer indefinite"), else clamped to int8 */
static int8_t q8r_round(float v)
{
	float r = nearbyintf(v);

	if (!(r > -128.0f) || r >= 2147483648.0f)
		return -128;
	if (r >= 127.0f)
		return 127;
	return (int8_t)r;
}

/* The K fields of one super-block (groups q[0..gn)): every value
 * requantized to the largest block scale kd as rint(q x (d / kd)) (one
 * float division per block, one product per value, rounded to nearest
 * even: the AVX-512 version's exact operations), and the sums */
static void q8r_k_sb(struct q8r *q, int gn)
{
	float kd = kern_q8r_k_scale(q, gn);
	int s32[8] = {0}, s16[16] = {0};

	for (int h = 0; h < gn; h++)
		for (int j = 0; j < 4; j++) {
			float f = kd > 0 ? q[h].d[4 * j] / kd : 0.0f;

			for (int i = 0; i < 16; i++) {
				int a = q8r_round(f * (float)q[h].lo[16 * j + i]);
				int b = q8r_round(f * (float)q[h].hi[16 * j + i]);

				q[h].klo[16 * j + i] = (int8_t)a;
				q[h].khi[16 * j + i] = (int8_t)b;
				s32[4 * h + j] += a + b;
				s16[2 * (4 * h + j)] += a;
				s16[2 * (4 * h + j) + 1] += b;
			}
		}
	kern_q8r_k_put(q, gn, kd, s32, s16);
}

void kern_q8r_k(int n, struct q8r *r)
{
	int ng = n / QR;

	for (int g = 0; g < ng; g += 2)
		q8r_k_sb(r + g, g + 1 < ng ? 2 : 1);
}

const struct kern_ops *kern_best(void)
{
	const char *want = getenv("ALLOT_KERNELS");
	const struct kern_ops *a512 = kern_avx512(), *a2 = kern_avx2();

	if (want && strcmp(want, "scalar") == 0)
		return &kern_scalar;
	if (want && strcmp(want, "avx2") == 0 && a2)
		return a2;
	if (a512)
		return a512;
	if (a2)
		return a2;
	return &kern_scalar;
}
