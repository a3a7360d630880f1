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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QK 32 /* elements per quantized block (Q8_0, Q4_0, q8a) */

/* ggml's weight blocks */
struct blk_q8_0 { uint16_t d; int8_t qs[QK]; };        /* 34 bytes */
struct blk_q4_0 { uint16_t d; uint8_t qs[QK / 2]; };   /* 18 bytes: element j low nibble, j+16 high */

/* An activation block: x[i] ~= d * qs[i]; ds = d * sum(qs) */
struct q8a { float d; float ds; int8_t qs[QK]; };

/* Repacked rows (for the AVX-512 tables): a row of n elements, n a
 * multiple of QR, as n / QR groups of four blocks, laid out so that 128-bit
 * lane j of a 512-bit load belongs to block j:
 *   Q4_0R group: qs[64] (block j's 16 nibble bytes in lane j), d[4] f16     72 bytes
 *   Q8_0R group: lo[64], hi[64] (block j's elements 0-15 and 16-31 plus 128,
 *                as unsigned bytes, in lane j), d[4] f16                     136 bytes
 * Same size as the original rows; made once at load time, never
 * dequantized.  Their activations: struct q8r per group. */
#define QR 128
#define GGML_Q4_0R 1002 /* internal type numbers, never in files */
#define GGML_Q8_0R 1008
/* the same group layout for Q5_0, Q4_1, Q5_1 and the K-quants
 * (infer/quants.h, quants_repack.c): the AVX-512 table's mm4_kr */
#define GGML_Q4_1R 1003
#define GGML_Q5_0R 1006
#define GGML_Q5_1R 1007
#define GGML_Q4_KR 1012
#define GGML_Q5_KR 1013
#define GGML_Q6_KR 1014

struct q8r {
	int8_t lo[64];   /* block j's x[0..15] in lane j */
	int8_t hi[64];   /* block j's x[16..31] in lane j */
	int32_t s8[16];  /* 8 x the sum of the 8 bytes of lo/hi feeding each int32 lane */
	float d[16];     /* block j's scale in lanes 4j..4j+3 */
	float ds[16];    /* block j's ds (d x the sum of its values) in lanes 4j..4j+3 */
	/* For the K-quant tiles (quants.h, kern_q8r_k): the values of the
	 * group's super-block (groups 2s and 2s + 1; a last odd group alone)
	 * requantized to one scale kd, the largest of its blocks' d:
	 * k = rint(q x (d / kd)), in lo/hi's layout; the sums of the
	 * super-block's requantized values as int16 pairs, int32 lane 4j + r
	 * (any r) holding: ks32 the 32-value block sums (2j, 2j + 1), ks16a
	 * the 16-value sums (2j, 2j + 1), ks16b (8 + 2j, 9 + 2j).  The
	 * super-block's fields are the same in both its groups. */
	int8_t klo[64], khi[64];
	int16_t ks32[32], ks16a[32], ks16b[32];
	float kd;
	char pad_[60];
};

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
	/* The other quantized types (infer/quants.h), one row against q8a
	 * activations (n a multiple of the type's block) */
	float (*dot_q4_1)(int n, const void *w, const struct q8a *x);
	float (*dot_q5_0)(int n, const void *w, const struct q8a *x);
	float (*dot_q5_1)(int n, const void *w, const struct q8a *x);
	float (*dot_q4_k)(int n, const void *w, const struct q8a *x);
	float (*dot_q5_k)(int n, const void *w, const struct q8a *x);
	float (*dot_q6_k)(int n, const void *w, const struct q8a *x);
	/* Q4_K, Q5_K, Q6_K: one row against ntok activation rows (xs blocks
	 * apart) into y[t * ys], the weights unpacked once per group of up to 8
	 * tokens; each token the same bits as dot_q*_k.  NULL: use those. */
	void (*dotn_k)(uint32_t type, int n, const void *w, const struct q8a *x, size_t xs, int ntok, float *y,
		       size_t ys);
	/* Q4_K, Q5_K, Q6_K: four consecutive rows (row_bytes apart) against
	 * one activation row, out[i] = dot(row i, x), each the same bits as
	 * dot_q*_k (the decode hot path).  NULL: use those. */
	void (*dot4_k)(uint32_t type, int n, const void *w, size_t row_bytes, const struct q8a *x, float *out);
	/* Attention.  sc[0..16) += q . k for the 16 positions of a key block
	 * laid out [hd][16]; out[0..hd) = scale * sum_j a[j] * v[j * stride + ..]. */
	void (*key_scores)(int hd, const float *q, const float *kb, float *sc);
	void (*att_values)(int hd, int n, const float *a, float scale, const float *v, size_t stride, float *out);
	/* n a multiple of QK */
	void (*quant_q8a)(int n, const float *x, struct q8a *out);
	/* SwiGLU: h[i] = silu(h[i]) * u[i] = h[i] / (1 + exp(-h[i])) * u[i];
	 * NULL: use kern_scalar's */
	void (*swiglu)(int n, float *h, const float *u);
	/* Softmax numerators: a[i] = exp(a[i] - max), returns their sum (the
	 * SIMD tables: the vector exp of swiglu); NULL: use kern_scalar's */
	float (*softmax_exp)(int n, float *a, float max);
	/* Repacked rows, NULL when the table has none: four rows (row_bytes
	 * apart) times ntok activation rows (x_stride groups apart), written
	 * to y[t * y_stride + r]. */
	void (*mm4_q4_0r)(int n, const void *w, size_t row_bytes, const struct q8r *x, size_t x_stride,
			  int ntok, float *y, size_t y_stride);
	void (*mm4_q8_0r)(int n, const void *w, size_t row_bytes, const struct q8r *x, size_t x_stride,
			  int ntok, float *y, size_t y_stride);
	/* Rows repacked by quant_repack_row (type GGML_Q5_0R, GGML_Q4_1R,
	 * GGML_Q5_1R, GGML_Q4_KR, GGML_Q5_KR or GGML_Q6_KR), as mm4_q4_0r; each (row, token) result
	 * the same bits whatever ntok.  NULL when the table has none. */
	void (*mm4_kr)(uint32_t type, int n, const void *w, size_t row_bytes, const struct q8r *x,
		       size_t x_stride, int ntok, float *y, size_t y_stride);
	/* kern_q8a_to_q8r (the same bytes), NULL: use that */
	void (*to_q8r)(int n, const struct q8a *a, struct q8r *r);
	/* Float-type rows (n % 16 == 0), NULL when absent: four rows times
	 * ntok float activation rows (x_stride floats apart). */
	void (*mm4_f32)(int n, const void *w, size_t row_bytes, const float *x, size_t x_stride,
			int ntok, float *y, size_t y_stride);
	void (*mm4_f16)(int n, const void *w, size_t row_bytes, const float *x, size_t x_stride,
			int ntok, float *y, size_t y_stride);
	void (*mm4_bf16)(int n, const void *w, size_t row_bytes, const float *x, size_t x_stride,
			 int ntok, float *y, size_t y_stride);
};

/* AMX tile products (kernels_amx.c) over repacked rows, in panels of 16
 * rows: for batches of >= AMX_MIN_TOKENS tokens (prompt chunks: the
 * activations are then packed on the pool), and from AMX_MIN_DECODE
 * tokens for Q4_0/Q8_0 (batched decoding: up to 8 tokens use narrow
 * tiles, 16 x 8, so the scaling is that of 8 tokens). */
#define AMX_MIN_TOKENS 16
#define AMX_MIN_DECODE 5
/* Activations of 16 tokens for one 32-value block, in the TDPBUSD layout. */
struct amx_xblk {
	int8_t qs[8][64];  /* qs[k / 4][token * 4 + k % 4] */
	float d[16];       /* token scales (0 for padding) */
};
/* Whether the CPU has AMX-INT8 and the kernel granted the tile state. */
bool kern_amx_available(void);
/* Bytes of packed activations for ntok rows of n values. */
size_t kern_amx_xbytes(int n, int ntok);
/* x: ntok rows of n / QK blocks, xs blocks apart. */
void kern_amx_pack_x(int n, const struct q8a *x, size_t xs, int ntok, struct amx_xblk *out);
/* The same for token columns [t0, t1) only (t1 up to ntok rounded up to
 * 16: columns from ntok on are zeroed): disjoint ranges may be packed by
 * different threads. */
void kern_amx_pack_x_range(int n, const struct q8a *x, size_t xs, int ntok, int t0, int t1,
			   struct amx_xblk *out);
/* 16 repacked rows (type GGML_Q4_0R or GGML_Q8_0R) times ntok packed
 * activation rows into y[t * ys + r]; scratch: n / QK * 576 bytes (16 x n
 * unpacked bytes and 16 x n / QK scales). */
void kern_amx_mm16(uint32_t type, int n, const void *w, size_t rb, const struct amx_xblk *x,
		   int ntok, float *y, size_t ys, void *scratch);

/* AMX-BF16 products for F16/BF16 rows (n % QK == 0), prompt-sized
 * batches.  Weights are split exactly into two bf16 parts (one for BF16),
 * activations into three (24 significant bits), and the five (three)
 * significant part products accumulate in f32 tiles: about F32 accuracy.
 * Whether the CPU has AMX-BF16 (and the tile state was granted): */
bool kern_amx_bf16_available(void);
/* Bytes of split activations for ntok rows of n values. */
size_t kern_amx_bf16_xbytes(int n, int ntok);
/* x: ntok float rows, xs floats apart; out: 64-byte aligned. */
void kern_amx_bf16_pack_x(int n, const float *x, size_t xs, int ntok, void *out);
/* The same for token columns [t0, t1) (as kern_amx_pack_x_range). */
void kern_amx_bf16_pack_x_range(int n, const float *x, size_t xs, int ntok, int t0, int t1, void *out);
/* rows (a multiple of 16, at most AMX_BF16_ROWS) of type GGML_F16 or
 * GGML_BF16, rb bytes apart, times ntok packed activation rows into
 * y[t * ys + r]; scratch: kern_amx_bf16_scratch() bytes, 64-aligned. */
#define AMX_BF16_ROWS 64
size_t kern_amx_bf16_scratch(void);
void kern_amx_bf16_mm(uint32_t type, int n, const void *w, size_t rb, int rows, const void *x, int ntok,
		      float *y, size_t ys, void *scratch);

/* Bytes of a repacked row (type GGML_Q4_0 or GGML_Q8_0, n % QR == 0; or
 * Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K: quant_repack_row_size); 0: not
 * repackable. */
size_t kern_repack_row_size(uint32_t type, int n);
/* One row of ggml type `type` into the repacked layout. */
void kern_repack_row(uint32_t type, int n, const void *src, void *dst);
/* Activation blocks to the repacked activation layout (n % QR == 0),
 * the K fields included (kern_q8r_k). */
void kern_q8a_to_q8r(int n, const struct q8a *a, struct q8r *r);
/* The K fields of n / QR groups whose lo, hi and d are filled. */
void kern_q8r_k(int n, struct q8r *r);
/* Its parts shared by the scalar and AVX-512 versions: the super-block's
 * scale (the largest block scale of groups q[0..gn)), and kd with the
 * sums of 32 (s32) and 16 values (s16) spread into the groups' K fields. */
float kern_q8r_k_scale(const struct q8r *q, int gn);
void kern_q8r_k_put(struct q8r *q, int gn, float kd, const int s32[8], const int s16[16]);

extern const struct kern_ops kern_scalar;
/* NULL when this build or CPU lacks them */
const struct kern_ops *kern_avx2(void);
const struct kern_ops *kern_avx512(void);
/* The table's dot product for quantized type `type` (Q8_0, Q4_0 and the
 * types of infer/quants.h), NULL for any other type. */
typedef float (*kern_dot_q_fn)(int n, const void *w, const struct q8a *x);
kern_dot_q_fn kern_dot_q(const struct kern_ops *k, uint32_t type);
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
/* A row of n elements of ggml type `type` (any the engine computes
 * with) to floats. */
void kern_dequant_row(uint32_t type, int n, const void *row, float *out);

#endif
