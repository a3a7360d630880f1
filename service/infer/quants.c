/* quants.c — Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: unpacking, dequantization,
 * scalar reference dot products and quantizers (layouts in quants.h). */
#include "infer/quants.h"

#include <math.h>
#include <string.h>

#include "infer/gguf.h"

_Static_assert(sizeof(struct blk_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(struct blk_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(struct blk_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(struct blk_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(struct blk_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(struct blk_q6_k) == 210, "Q6_K block");

bool quant_is_extra(uint32_t t)
{
	return t == GGML_Q4_1 || t == GGML_Q5_0 || t == GGML_Q5_1 || t == GGML_Q4_K || t == GGML_Q5_K ||
	       t == GGML_Q6_K;
}

/* ---- unpacking: every type to integer values, one block at a time -------- */

void quant_k_scale_min(int j, const uint8_t *q, int *sc, int *mn)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*mn = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
		*mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

/* 32 values q (0..15 or 0..31) of a Q4_1/Q5_0/Q5_1 block; qh NULL for Q4_1 */
static void unpack32(const uint8_t *qs, const uint8_t *qh, uint8_t *q)
{
	uint32_t h = 0;

	if (qh)
		memcpy(&h, qh, 4);
	for (int j = 0; j < 16; j++) {
		q[j] = (uint8_t)((qs[j] & 0xf) | (((h >> j) & 1) << 4));
		q[j + 16] = (uint8_t)((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
	}
}

/* 256 values (0..15, or 0..31 with qh) and the 8 scales and mins of a
 * Q4_K/Q5_K block */
static void unpack_k45(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, uint8_t *q, int *sc, int *mn)
{
	for (int s = 0; s < 8; s++) {
		const uint8_t *p = qs + 32 * (s / 2);

		quant_k_scale_min(s, scales, &sc[s], &mn[s]);
		for (int i = 0; i < 32; i++) {
			int v = s % 2 ? p[i] >> 4 : p[i] & 0xf;

			if (qh)
				v |= ((qh[i] >> s) & 1) << 4;
			q[32 * s + i] = (uint8_t)v;
		}
	}
}

/* 256 values q - 32 (-32..31) of a Q6_K block */
static void unpack_q6k(const struct blk_q6_k *b, int8_t *q)
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		int8_t *o = q + 128 * h;

		for (int l = 0; l < 32; l++) {
			o[l] = (int8_t)(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
			o[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
			o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
			o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
		}
	}
}

void quant_dequant_row(uint32_t type, int n, const void *row, float *out)
{
	uint8_t q[QK_K];
	int sc[8], mn[8];

	switch (type) {
	case GGML_Q4_1: case GGML_Q5_1: case GGML_Q5_0:
		for (int b = 0; b < n / QK; b++, out += QK) {
			float d, m = 0;
			int off = 0;

			if (type == GGML_Q4_1) {
				const struct blk_q4_1 *w = (const struct blk_q4_1 *)row + b;

				unpack32(w->qs, NULL, q);
				d = kern_f16_to_f32(w->d);
				m = kern_f16_to_f32(w->m);
			} else if (type == GGML_Q5_1) {
				const struct blk_q5_1 *w = (const struct blk_q5_1 *)row + b;

				unpack32(w->qs, w->qh, q);
				d = kern_f16_to_f32(w->d);
				m = kern_f16_to_f32(w->m);
			} else {
				const struct blk_q5_0 *w = (const struct blk_q5_0 *)row + b;

				unpack32(w->qs, w->qh, q);
				d = kern_f16_to_f32(w->d);
				off = 16;
			}
			for (int i = 0; i < QK; i++)
				out[i] = d * (float)(q[i] - off) + m;
		}
		break;
	case GGML_Q4_K: case GGML_Q5_K:
		for (int b = 0; b < n / QK_K; b++, out += QK_K) {
			float d, dmin;

			if (type == GGML_Q4_K) {
				const struct blk_q4_k *w = (const struct blk_q4_k *)row + b;

				unpack_k45(w->scales, w->qs, NULL, q, sc, mn);
				d = kern_f16_to_f32(w->d);
				dmin = kern_f16_to_f32(w->dmin);
			} else {
				const struct blk_q5_k *w = (const struct blk_q5_k *)row + b;

				unpack_k45(w->scales, w->qs, w->qh, q, sc, mn);
				d = kern_f16_to_f32(w->d);
				dmin = kern_f16_to_f32(w->dmin);
			}
			for (int i = 0; i < QK_K; i++)
				out[i] = d * (float)sc[i / 32] * q[i] - dmin * (float)mn[i / 32];
		}
		break;
	case GGML_Q6_K:
		for (int b = 0; b < n / QK_K; b++, out += QK_K) {
			const struct blk_q6_k *w = (const struct blk_q6_k *)row + b;
			int8_t v[QK_K];
			float d = kern_f16_to_f32(w->d);

			unpack_q6k(w, v);
			for (int i = 0; i < QK_K; i++)
				out[i] = d * (float)w->scales[i / 16] * (float)v[i];
		}
		break;
	default:
		memset(out, 0, (size_t)n * sizeof *out);
	}
}

/* ---- scalar reference dot products ------------------------------------------ */

static int32_t idot32(const uint8_t *q, const int8_t *x)
{
	int32_t s = 0;

	for (int i = 0; i < QK; i++)
		s += q[i] * x[i];
	return s;
}

float quant_dot_q4_1(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_1 *w = wv;
	uint8_t q[QK];
	float s = 0;

	for (int b = 0; b < n / QK; b++) {
		unpack32(w[b].qs, NULL, q);
		s += (float)idot32(q, x[b].qs) * kern_f16_to_f32(w[b].d) * x[b].d + kern_f16_to_f32(w[b].m) * x[b].ds;
	}
	return s;
}

float quant_dot_q5_0(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_0 *w = wv;
	uint8_t q[QK];
	float s = 0;

	for (int b = 0; b < n / QK; b++) {
		int32_t is = 0;

		unpack32(w[b].qs, w[b].qh, q);
		for (int i = 0; i < QK; i++)
			is += (q[i] - 16) * x[b].qs[i];
		s += (float)is * kern_f16_to_f32(w[b].d) * x[b].d;
	}
	return s;
}

float quant_dot_q5_1(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_1 *w = wv;
	uint8_t q[QK];
	float s = 0;

	for (int b = 0; b < n / QK; b++) {
		unpack32(w[b].qs, w[b].qh, q);
		s += (float)idot32(q, x[b].qs) * kern_f16_to_f32(w[b].d) * x[b].d + kern_f16_to_f32(w[b].m) * x[b].ds;
	}
	return s;
}

/* sub-block s of a K block against activation block x[s]:
 * d * sc * xd * sum(q * xq) - dmin * mn * xd * sum(xq) */
static float dot_k45(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, float d, float dmin,
		     const struct q8a *x)
{
	uint8_t q[QK_K];
	int sc[8], mn[8];
	float s = 0;

	unpack_k45(scales, qs, qh, q, sc, mn);
	for (int j = 0; j < 8; j++)
		s += d * (float)sc[j] * x[j].d * (float)idot32(q + 32 * j, x[j].qs) - dmin * (float)mn[j] * x[j].ds;
	return s;
}

float quant_dot_q4_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q4_k *w = wv;
	float s = 0;

	for (int b = 0; b < n / QK_K; b++)
		s += dot_k45(w[b].scales, w[b].qs, NULL, kern_f16_to_f32(w[b].d), kern_f16_to_f32(w[b].dmin),
			     x + 8 * b);
	return s;
}

float quant_dot_q5_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q5_k *w = wv;
	float s = 0;

	for (int b = 0; b < n / QK_K; b++)
		s += dot_k45(w[b].scales, w[b].qs, w[b].qh, kern_f16_to_f32(w[b].d), kern_f16_to_f32(w[b].dmin),
			     x + 8 * b);
	return s;
}

float quant_dot_q6_k(int n, const void *wv, const struct q8a *x)
{
	const struct blk_q6_k *w = wv;
	int8_t q[QK_K];
	float s = 0;

	for (int b = 0; b < n / QK_K; b++) {
		float d = kern_f16_to_f32(w[b].d);

		unpack_q6k(&w[b], q);
		for (int j = 0; j < 8; j++) {
			const struct q8a *xb = &x[8 * b + j];
			int32_t is = 0;

			for (int i = 0; i < QK; i++)
				is += w[b].scales[2 * j + i / 16] * q[32 * j + i] * xb->qs[i];
			s += d * xb->d * (float)is;
		}
	}
	return s;
}

/* ---- quantizers ---------------------------------------------------------------- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Q4_1 / Q5_1 (ggml's reference): min and step over the block */
static void quant_x_1(int n, const float *x, void *out, bool five)
{
	int nmax = five ? 31 : 15;

	for (int b = 0; b < n / QK; b++, x += QK) {
		float mn = x[0], mx = x[0], d, id;
		uint8_t q[QK], qs[16];
		uint32_t qh = 0;

		for (int i = 1; i < QK; i++) {
			mn = fminf(mn, x[i]);
			mx = fmaxf(mx, x[i]);
		}
		d = (mx - mn) / (float)nmax;
		id = d ? 1.0f / d : 0.0f;
		for (int i = 0; i < QK; i++)
			q[i] = (uint8_t)clampi((int)((x[i] - mn) * id + 0.5f), 0, nmax);
		for (int j = 0; j < 16; j++) {
			qs[j] = (uint8_t)((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4));
			qh |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
		}
		if (five) {
			struct blk_q5_1 *o = (struct blk_q5_1 *)out + b;

			o->d = kern_f32_to_f16(d);
			o->m = kern_f32_to_f16(mn);
			memcpy(o->qh, &qh, 4);
			memcpy(o->qs, qs, 16);
		} else {
			struct blk_q4_1 *o = (struct blk_q4_1 *)out + b;

			o->d = kern_f32_to_f16(d);
			o->m = kern_f32_to_f16(mn);
			memcpy(o->qs, qs, 16);
		}
	}
}

/* Q5_0 (ggml's reference): the largest magnitude maps to -16 */
static void quant_q5_0(int n, const float *x, struct blk_q5_0 *out)
{
	for (int b = 0; b < n / QK; b++, x += QK) {
		float amax = 0, max = 0, d, id;
		uint32_t qh = 0;

		for (int i = 0; i < QK; i++)
			if (fabsf(x[i]) > amax) {
				amax = fabsf(x[i]);
				max = x[i];
			}
		d = max / -16.0f;
		id = d ? 1.0f / d : 0.0f;
		out[b].d = kern_f32_to_f16(d);
		for (int j = 0; j < 16; j++) {
			int q0 = clampi((int)(x[j] * id + 16.5f), 0, 31), q1 = clampi((int)(x[j + 16] * id + 16.5f), 0, 31);

			out[b].qs[j] = (uint8_t)((q0 & 0xf) | ((q1 & 0xf) << 4));
			qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
		}
		memcpy(out[b].qh, &qh, 4);
	}
}

/* Q4_K / Q5_K: each sub-block's range [min(0, lo), hi] in nmax steps; the
 * steps and mins quantized to 6 bits against the largest ones; the values
 * quantized again with the stored (rounded) scales. */
static void quant_k45(const float *x, int nmax, uint16_t *dd, uint16_t *dmin, uint8_t *scales, uint8_t *qs,
		      uint8_t *qh)
{
	float step[8], mins[8], smax = 0, mmax = 0, d, dm;
	int ls[8], lm[8];
	uint8_t q[QK_K];

	for (int s = 0; s < 8; s++) {
		float lo = 0, hi = x[32 * s];

		for (int i = 0; i < 32; i++) {
			lo = fminf(lo, x[32 * s + i]);
			hi = fmaxf(hi, x[32 * s + i]);
		}
		step[s] = (hi - lo) / (float)nmax;
		mins[s] = -lo;
		smax = fmaxf(smax, step[s]);
		mmax = fmaxf(mmax, mins[s]);
	}
	*dd = kern_f32_to_f16(smax / 63.0f);
	*dmin = kern_f32_to_f16(mmax / 63.0f);
	d = kern_f16_to_f32(*dd);
	dm = kern_f16_to_f32(*dmin);
	memset(scales, 0, 12);
	for (int s = 0; s < 8; s++) {
		ls[s] = d > 0 ? clampi((int)nearbyintf(step[s] / d), 0, 63) : 0;
		lm[s] = dm > 0 ? clampi((int)nearbyintf(mins[s] / dm), 0, 63) : 0;
		if (s < 4) {
			scales[s] |= (uint8_t)ls[s];
			scales[s + 4] |= (uint8_t)lm[s];
		} else {
			scales[s + 4] = (uint8_t)((ls[s] & 0xf) | ((lm[s] & 0xf) << 4));
			scales[s - 4] |= (uint8_t)((ls[s] >> 4) << 6);
			scales[s] |= (uint8_t)((lm[s] >> 4) << 6);
		}
	}
	for (int s = 0; s < 8; s++) {
		float sd = d * (float)ls[s], sm = dm * (float)lm[s];

		for (int i = 0; i < 32; i++)
			q[32 * s + i] = (uint8_t)(sd > 0 ? clampi((int)nearbyintf((x[32 * s + i] + sm) / sd), 0, nmax) : 0);
	}
	if (qh)
		memset(qh, 0, 32);
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < 32; i++) {
			int a = q[64 * c + i], b = q[64 * c + 32 + i];

			qs[32 * c + i] = (uint8_t)((a & 0xf) | ((b & 0xf) << 4));
			if (qh)
				qh[i] |= (uint8_t)(((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1)));
		}
}

/* Q6_K: each 16-value sub-block's largest magnitude maps to -32; the
 * scales to int8 with the largest mapping to -128 (as ggml) */
static void quant_q6k(const float *x, struct blk_q6_k *o)
{
	float sc[16], smax = 0, iscale, d;
	uint8_t L[QK_K];

	for (int s = 0; s < 16; s++) {
		float amax = 0, max = 0;

		for (int i = 0; i < 16; i++)
			if (fabsf(x[16 * s + i]) > amax) {
				amax = fabsf(x[16 * s + i]);
				max = x[16 * s + i];
			}
		sc[s] = max / -32.0f;
		if (fabsf(sc[s]) > fabsf(smax))
			smax = sc[s];
	}
	iscale = smax != 0 ? -128.0f / smax : 0.0f;
	o->d = kern_f32_to_f16(iscale != 0 ? 1.0f / iscale : 0.0f);
	d = kern_f16_to_f32(o->d);
	for (int s = 0; s < 16; s++) {
		float sd;

		o->scales[s] = (int8_t)clampi((int)nearbyintf(iscale * sc[s]), -128, 127);
		sd = d * (float)o->scales[s];
		for (int i = 0; i < 16; i++)
			L[16 * s + i] = (uint8_t)(sd != 0 ? clampi((int)nearbyintf(x[16 * s + i] / sd), -32, 31) + 32 : 32);
	}
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++) {
			const uint8_t *p = L + 128 * h;

			o->ql[64 * h + l] = (uint8_t)((p[l] & 0xf) | ((p[l + 64] & 0xf) << 4));
			o->ql[64 * h + l + 32] = (uint8_t)((p[l + 32] & 0xf) | ((p[l + 96] & 0xf) << 4));
			o->qh[32 * h + l] = (uint8_t)((p[l] >> 4) | ((p[l + 32] >> 4) << 2) | ((p[l + 64] >> 4) << 4) |
						      ((p[l + 96] >> 4) << 6));
		}
}

bool quant_row(uint32_t type, int n, const float *x, void *out)
{
	int64_t bs = ggml_block_size(type);

	if (bs == 0 || n < 0 || n % bs)
		return false;
	switch (type) {
	case GGML_F32: memcpy(out, x, (size_t)n * 4); break;
	case GGML_F16:
		for (int i = 0; i < n; i++)
			((uint16_t *)out)[i] = kern_f32_to_f16(x[i]);
		break;
	case GGML_BF16:
		for (int i = 0; i < n; i++)
			((uint16_t *)out)[i] = kern_f32_to_bf16(x[i]);
		break;
	case GGML_Q8_0: kern_quantize_q8_0(n, x, out); break;
	case GGML_Q4_0: kern_quantize_q4_0(n, x, out); break;
	case GGML_Q4_1: quant_x_1(n, x, out, false); break;
	case GGML_Q5_1: quant_x_1(n, x, out, true); break;
	case GGML_Q5_0: quant_q5_0(n, x, out); break;
	case GGML_Q4_K:
		for (int b = 0; b < n / QK_K; b++) {
			struct blk_q4_k *o = (struct blk_q4_k *)out + b;

			quant_k45(x + b * QK_K, 15, &o->d, &o->dmin, o->scales, o->qs, NULL);
		}
		break;
	case GGML_Q5_K:
		for (int b = 0; b < n / QK_K; b++) {
			struct blk_q5_k *o = (struct blk_q5_k *)out + b;

			quant_k45(x + b * QK_K, 31, &o->d, &o->dmin, o->scales, o->qs, o->qh);
		}
		break;
	case GGML_Q6_K:
		for (int b = 0; b < n / QK_K; b++)
			quant_q6k(x + b * QK_K, (struct blk_q6_k *)out + b);
		break;
	default:
		return false;
	}
	return true;
}
