/* kernels.h — the numeric kernels of the CPU backend, one table per
 * instruction set, chosen once at run time.
 *
 * Dot products take one weight row in its stored type and one activation
 * row: float for F32/F16/BF16 weights, 8-bit blocks (struct q8a) for the
 * quantized types, so quantized matrices are never dequantized.  Every SIMD
 * table is checked against kern_scalar by tests/unit/test_infer_kernels.c.
 * All functions are pure and thread-safe.
 */
#ifndef ALLOT_INFER_KERNELS_H
#define ALLOT_INFER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define QK 32 /* elements per quantized block (Q8_0, Q4_0, q8a) */

/* ggml's weight blocks */
struct blk_q8_0 { uint16_t d; int8_t qs[QK]; };        /* 34 bytes */
struct blk_q4_0 { uint16_t d; uint8_t qs[QK / 2]; };   /* 18 bytes: element j low nibble, j+16 high */

/* An activation block: x[i] ~= d * qs[i]; ds = d * sum(qs) */
struct q8a { float d; float ds; int8_t qs[QK]; };

struct kern_ops {
	const char *name;
	float (*dot_f32)(int n, const float *w, const float *x);
	float (*dot_f16)(int n, const uint16_t *w, const float *x);
	float (*dot_bf16)(int n, const uint16_t *w, const float *x);
	float (*dot_q8_0)(int n, const void *w, const struct q8a *x);
	float (*dot_q4_0)(int n, const void *w, const struct q8a *x);
	/* four consecutive rows (row_bytes apart) against one activation row:
	 * out[i] = dot(row i, x); the decode hot path */
	void (*dot4_q8_0)(int n, const void *w, size_t row_bytes, const struct q8a *x, float *out);
	void (*dot4_q4_0)(int n, const void *w, size_t row_bytes, const struct q8a *x, float *out);
	/* n a multiple of QK */
	void (*quant_q8a)(int n, const float *x, struct q8a *out);
};

extern const struct kern_ops kern_scalar;
/* NULL when this build or CPU lacks them */
const struct kern_ops *kern_avx2(void);
const struct kern_ops *kern_avx512(void);
/* The best table for this CPU; ALLOT_KERNELS=scalar|avx2|avx512 in the
 * environment overrides (when supported). */
const struct kern_ops *kern_best(void);

float kern_f16_to_f32(uint16_t h);
uint16_t kern_f32_to_f16(float f);       /* round to nearest even */
float kern_bf16_to_f32(uint16_t h);
uint16_t kern_f32_to_bf16(float f);      /* round to nearest even */

/* Row conversions (ggml's quantizers for weights; n a multiple of QK). */
void kern_quantize_q8_0(int n, const float *x, void *out);
void kern_quantize_q4_0(int n, const float *x, void *out);
/* A row of n elements of ggml type `type` to floats. */
void kern_dequant_row(uint32_t type, int n, const void *row, float *out);

#endif
