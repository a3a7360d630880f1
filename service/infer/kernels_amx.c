/* kernels_amx.c — AMX int8 tile products for prompt-sized batches over
 * repacked Q4_0/Q8_0 rows (Sapphire Rapids and later).
 *
 * A work item is a panel of 16 weight rows: its blocks are unpacked once
 * to signed bytes (A tiles, 16 x 32), then for every tile of 16 tokens and
 * every 32-value block one TDPBSSD gives the 16 x 16 integer products,
 * which are scaled by row scale x token scale and accumulated in sixteen
 * float vectors.  The blocks are software-pipelined over a ring of four
 * accumulator tiles (product, tile store and scaling of different blocks
 * overlap), the tile configuration is loaded once per thread, and the next
 * panel's weights are prefetched while this one computes.  Compiled with target attributes; used only when the CPU
 * has AMX and the kernel grants the tile state (arch_prctl).
 */
#include "infer/kernels.h"
#include "infer/gguf.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
	(defined(__clang__) || __GNUC__ >= 11)
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#define TGT __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,gfni,avx2,fma,f16c")))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

struct tilecfg {
	uint8_t palette, start_row;
	uint8_t reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* tiles: 0-3 accumulators (16 x 16 int32), a ring (see kern_amx_mm16); 4, 5
 * weights (16 rows x 32 bytes); 6, 7 activations (8 rows x 64 bytes: 32
 * values of 16 tokens, four consecutive values per token per row).
 * Narrow (batches of up to 8 tokens): accumulators 16 x 8 int32 and
 * activations 8 rows x 32 bytes (the first 8 tokens of the same layout),
 * so that the scaling work is that of 8 tokens, not 16. */
TGT static void config(bool narrow)
{
	struct tilecfg c;

	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int i = 0; i < 4; i++) {
		c.colsb[i] = narrow ? 32 : 64;
		c.rows[i] = 16;
	}
	for (int i = 4; i < 6; i++) {
		c.colsb[i] = 32;
		c.rows[i] = 16;
		c.colsb[i + 2] = narrow ? 32 : 64;
		c.rows[i + 2] = 8;
	}
	/* the compiler does not see ldtilecfg read c: keep the stores */
	__asm__ volatile("" : : "r"(&c) : "memory");
	_tile_loadconfig(&c);
}

static bool amx_ok, amx_bf16_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("gfni")) {
		unsigned a, b, c, d;

		/* CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8; then ask the
		 * kernel for the tile state */
		__asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
		amx_ok = ((d >> 24) & 3) == 3 &&
			 syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
		amx_bf16_ok = amx_ok && ((d >> 22) & 1);
	}
}

bool kern_amx_available(void)
{
	pthread_once(&amx_once, amx_probe);
	return amx_ok;
}

bool kern_amx_bf16_available(void)
{
	pthread_once(&amx_once, amx_probe);
	return amx_bf16_ok;
}

size_t kern_amx_xbytes(int n, int ntok)
{
	return (size_t)((ntok + 15) / 16) * (size_t)(n / QK) * sizeof(struct amx_xblk);
}

/* One whole 16-token tile T: for each block, row k of qs is dword k of
 * the 16 tokens' values, gathered (tokens from ntok on: zeros). */
TGT static void pack_tile(int n, const struct q8a *x, size_t xs, int ntok, int T, struct amx_xblk *out)
{
	int nb = n / QK, valid = ntok - T * 16 < 16 ? ntok - T * 16 : 16;
	__mmask16 m = (__mmask16)((1u << valid) - 1);
	const __m512i tok = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
					       _mm512_set1_epi32((int)(xs * sizeof(struct q8a))));
	const __m512i zero = _mm512_setzero_si512();

	for (int b = 0; b < nb; b++) {
		const struct q8a *xb = x + (size_t)T * 16 * xs + b;
		struct amx_xblk *o = &out[(size_t)T * nb + b];

		for (int k = 0; k < 8; k++)
			_mm512_store_si512(o->qs[k], _mm512_mask_i32gather_epi32(zero, m, tok, xb->qs + 4 * k, 1));
		_mm512_store_si512(o->d, _mm512_mask_i32gather_epi32(zero, m, tok, &xb->d, 1));
	}
}

void kern_amx_pack_x_range(int n, const struct q8a *x, size_t xs, int ntok, int t0, int t1,
			   struct amx_xblk *out)
{
	int nb = n / QK;

	/* whole tiles: gathered (when the tile state is there, so are the
	 * instructions) */
	if (t0 % 16 == 0 && t1 == t0 + 16 && t0 < ntok && kern_amx_available()) {
		pack_tile(n, x, xs, ntok, t0 / 16, out);
		return;
	}
	for (int t = t0; t < t1; t++) {
		int T = t / 16, j = t % 16;

		for (int b = 0; b < nb; b++) {
			struct amx_xblk *o = &out[(size_t)T * nb + b];
			uint32_t v[8];

			if (t < ntok) {
				const struct q8a *q = &x[(size_t)t * xs + b];

				memcpy(v, q->qs, 32);
				o->d[j] = q->d;
			} else {
				memset(v, 0, sizeof v);
				o->d[j] = 0;
			}
			for (int k = 0; k < 8; k++)
				memcpy(&o->qs[k][j * 4], &v[k], 4);
		}
	}
}

void kern_amx_pack_x(int n, const struct q8a *x, size_t xs, int ntok, struct amx_xblk *out)
{
	kern_amx_pack_x_range(n, x, xs, ntok, 0, (ntok + 15) / 16 * 16, out);
}

/* Groups [g0, g1) of the 16 rows of a panel to signed bytes in element
 * order (row r at a + r * as; A tiles are read from it with a stride of
 * as) and their block scales, block-major (d[b * 16 + r], b counted from
 * the row's start).  Q4_0 nibbles become n - 8 with
 * one GF(2) affine transform each (bits 0-2 kept, bits 3-7 = NOT bit 3);
 * the scales of 16 rows are gathered per group, two blocks per gather. */
TGT static void unpack_panel(uint32_t type, int g0, int g1, const uint8_t *w, size_t rb, int8_t *a, size_t as,
			     float *d)
{
	/* affine matrices: byte 7 - i is the row of output bit i */
	const __m512i alo = _mm512_set1_epi64(0x0102040808080808ll);
	const __m512i ahi = _mm512_set1_epi64(0x1020408080808080ll);
	const __m512i bias = _mm512_set1_epi8((char)0x80);
	/* 128-bit lanes: [lo0 hi0 lo1 hi1] and [lo2 hi2 lo3 hi3] */
	const __m512i p0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
	const __m512i p1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
	const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
						_mm512_set1_epi32((int)rb));
	const size_t gb = type == GGML_Q4_0R ? 72 : 136, so = gb - 8;

	for (int g = g0; g < g1; g++) {
		const uint8_t *wg = w + (size_t)g * gb;
		int8_t *ag = a + (size_t)(g - g0) * QR;

		for (int r = 0; r < 16; r++) {
			__m512i lo, hi;

			if (type == GGML_Q4_0R) {
				__m512i v = _mm512_loadu_si512(wg + (size_t)r * rb);

				lo = _mm512_gf2p8affine_epi64_epi8(v, alo, 0xf8);
				hi = _mm512_gf2p8affine_epi64_epi8(v, ahi, 0xf8);
			} else {
				lo = _mm512_xor_si512(_mm512_loadu_si512(wg + (size_t)r * rb), bias);
				hi = _mm512_xor_si512(_mm512_loadu_si512(wg + (size_t)r * rb + 64), bias);
			}
			_mm512_storeu_si512(ag + (size_t)r * as, _mm512_permutex2var_epi64(lo, p0, hi));
			_mm512_storeu_si512(ag + (size_t)r * as + 64, _mm512_permutex2var_epi64(lo, p1, hi));
		}
		{
			/* dword r of s01: row r's scales of blocks 0 and 1 */
			__m512i s01 = _mm512_i32gather_epi32(rows, wg + so, 1);
			__m512i s23 = _mm512_i32gather_epi32(rows, wg + so + 4, 1);
			float *dg = d + (size_t)g * 64;

			_mm512_storeu_ps(dg, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(s01)));
			_mm512_storeu_ps(dg + 16, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(s01, 16))));
			_mm512_storeu_ps(dg + 32, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(s23)));
			_mm512_storeu_ps(dg + 48, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(s23, 16))));
		}
	}
}

/* acc[r] += C[r] * (row scale x token scales) for one block: cb its 16 x
 * 16 integer products, x its activations, pd its 16 row scales */
TGT static inline __attribute__((always_inline)) void accumulate(const int32_t *cb, const struct amx_xblk *x,
								 const float *pd, __m512 *acc)
{
	__m512 xd = _mm512_loadu_ps(x->d);

	UNROLL for (int r = 0; r < 16; r++)
		acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cb + 16 * r)),
					 _mm512_mul_ps(_mm512_set1_ps(pd[r]), xd), acc[r]);
}

/* The same for a narrow tile: cb holds 16 rows x 8 tokens, vector i rows
 * 2i and 2i + 1; acc[i] likewise. */
TGT static inline __attribute__((always_inline)) void accumulate8(const int32_t *cb, const struct amx_xblk *x,
								  const float *pd, __m512 *acc)
{
	__m512 xd = _mm512_broadcast_f32x8(_mm256_loadu_ps(x->d));
	__m512 rd = _mm512_loadu_ps(pd);

	UNROLL for (int i = 0; i < 8; i++) {
		const __m512i pair = _mm512_setr_epi32(2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i,
						       2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1,
						       2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1);

		acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cb + 16 * i)),
					 _mm512_mul_ps(_mm512_permutexvar_ps(pair, rd), xd), acc[i]);
	}
}

/* The tile configuration is loaded once per thread and kept (only these
 * kernels use tiles): which one is loaded (0 none, 1 int8, 2 bf16, 3 int8
 * narrow). */
static _Thread_local int tiles_configured;

/* Block b's integer products into accumulator tile C (A and B: the weight
 * and activation tiles to load) */
#define ISSUE(b, C, A, B)                                       \
	do {                                                    \
		_tile_zero(C);                                  \
		_tile_loadd(A, pa + (size_t)(b) * 32, st);      \
		_tile_loadd(B, xt[b].qs, 64);                   \
		_tile_dpbssd(C, A, B);                          \
	} while (0)

/* Up to 8 tokens: the narrow tiles, the same pipeline as kern_amx_mm16's
 * loop below (cb tiles 16 x 8).  The panel is unpacked NARROW_CG groups
 * ahead of the tiles, into two alternating buffers (16 x 512 bytes each,
 * in L1 with the tiles that read them) instead of whole: with 8 tokens
 * the unpacking is most of the work, and a whole unpacked panel (16 x n
 * bytes) does not stay in L1. */
#define NARROW_CG 4
TGT static void mm16_narrow(uint32_t type, int n, const uint8_t *w, size_t rb, const struct amx_xblk *xt,
			    int ntok, float *y, size_t ys, int8_t *pa, float *pd)
{
	int nb = n / QK, ng = n / QR;
	/* one chunk (the whole panel) for short rows: the scratch holds 16 x n */
	int cg = ng >= 2 * NARROW_CG ? NARROW_CG : ng;
	const long st = (long)cg * QR;
	const char *next = (const char *)w + 16 * rb;  /* the next panel, prefetched */
	size_t pf_step = (16 * rb / (size_t)nb + 63) / 64 * 64;
	int32_t cb[4][128] __attribute__((aligned(64)));
	__m512 acc[8];
	float out[8][16] __attribute__((aligned(64)));
	const int8_t *ca = pa;                          /* the current chunk */

	if (tiles_configured != 3) {
		config(true);
		tiles_configured = 3;
	}
	UNROLL for (int i = 0; i < 8; i++)
		acc[i] = _mm512_setzero_ps();
#define ISSUE8(b, C, A, B)                                                              \
	do {                                                                            \
		_tile_zero(C);                                                          \
		_tile_loadd(A, ca + (size_t)((b) % (4 * cg)) * 32, st);                 \
		_tile_loadd(B, xt[b].qs, 64);                                           \
		_tile_dpbssd(C, A, B);                                                  \
	} while (0)
	/* the first chunk now; then, at each step (a group of four blocks),
	 * the group cg steps ahead, into the other buffer: the tiles never
	 * read bytes still in the store buffer (tile loads do not forward
	 * from it), and the unpacking overlaps the tile products */
	unpack_panel(type, 0, cg, w, rb, pa, (size_t)st, pd);
	__asm__ volatile("" ::: "memory"); /* tileloadd reads memory unseen */
	for (int b = 0; b < nb; b += 4) {
		int gn = b / 4 + cg;

		if (b % (4 * cg) == 0)
			ca = pa + (size_t)((b / 4 / cg) & 1) * 16 * (size_t)st;
		for (size_t o = (size_t)b * pf_step; o < (size_t)(b + 4) * pf_step && o < 16 * rb; o += 64)
			_mm_prefetch(next + o, _MM_HINT_T1);
		ISSUE8(b, 0, 4, 6);
		if (b > 0) {
			_tile_stored(2, cb[2], 32);
			accumulate8(cb[0], &xt[b - 4], pd + (size_t)(b - 4) * 16, acc);
		}
		ISSUE8(b + 1, 1, 5, 7);
		if (b > 0) {
			_tile_stored(3, cb[3], 32);
			accumulate8(cb[1], &xt[b - 3], pd + (size_t)(b - 3) * 16, acc);
		}
		ISSUE8(b + 2, 2, 4, 6);
		_tile_stored(0, cb[0], 32);
		if (b > 0)
			accumulate8(cb[2], &xt[b - 2], pd + (size_t)(b - 2) * 16, acc);
		ISSUE8(b + 3, 3, 5, 7);
		_tile_stored(1, cb[1], 32);
		if (b > 0)
			accumulate8(cb[3], &xt[b - 1], pd + (size_t)(b - 1) * 16, acc);
		if (gn < ng) {
			unpack_panel(type, gn, gn + 1, w, rb, pa + (size_t)((gn / cg) & 1) * 16 * (size_t)st +
				     (size_t)(gn % cg) * QR, (size_t)st, pd);
			__asm__ volatile("" ::: "memory");
		}
	}
#undef ISSUE8
	_tile_stored(2, cb[2], 32);
	accumulate8(cb[0], &xt[nb - 4], pd + (size_t)(nb - 4) * 16, acc);
	_tile_stored(3, cb[3], 32);
	accumulate8(cb[1], &xt[nb - 3], pd + (size_t)(nb - 3) * 16, acc);
	accumulate8(cb[2], &xt[nb - 2], pd + (size_t)(nb - 2) * 16, acc);
	accumulate8(cb[3], &xt[nb - 1], pd + (size_t)(nb - 1) * 16, acc);
	UNROLL for (int i = 0; i < 8; i++)
		_mm512_store_ps(out[i], acc[i]);
	for (int t = 0; t < ntok; t++)
		for (int r = 0; r < 16; r++)
			y[(size_t)t * ys + r] = out[r / 2][(r % 2) * 8 + t];
}

TGT void kern_amx_mm16(uint32_t type, int n, const void *wv, size_t rb, const struct amx_xblk *x,
		       int ntok, float *y, size_t ys, void *scratch)
{
	const uint8_t *w = wv;
	int nb = n / QK, tiles = (ntok + 15) / 16;
	int8_t *pa = scratch;                          /* [16][n] */
	float *pd = (float *)(pa + (size_t)16 * n);     /* [nb][16] */
	const long st = n;
	const char *next = (const char *)w + 16 * rb;  /* the next panel, prefetched */
	size_t pf_step = (16 * rb / (size_t)nb + 63) / 64 * 64;
	int32_t cb[4][256] __attribute__((aligned(64)));

	if (ntok <= 8) {
		mm16_narrow(type, n, w, rb, x, ntok, y, ys, pa, pd);
		return;
	}
	unpack_panel(type, 0, n / QR, w, rb, pa, (size_t)n, pd);
	/* tileloadd reads memory without telling the compiler */
	__asm__ volatile("" ::: "memory");
	if (tiles_configured != 1) {
		config(false);
		tiles_configured = 1;
	}
	/* Software pipeline over the blocks, four accumulator tiles in a
	 * ring: block b's product is issued at step b, its tile stored at
	 * step b + 2 and the stored integers scaled and accumulated at step
	 * b + 4, so neither the tile unit nor the stores are waited for.
	 * nb is a multiple of 4 (n % QR == 0). */
	for (int T = 0; T < tiles; T++) {
		const struct amx_xblk *xt = x + (size_t)T * nb;
		__m512 acc[16];
		float out[16][16] __attribute__((aligned(64)));

		UNROLL for (int r = 0; r < 16; r++)
			acc[r] = _mm512_setzero_ps();
		for (int b = 0; b < nb; b += 4) {
			if (T == 0)
				for (size_t o = (size_t)b * pf_step; o < (size_t)(b + 4) * pf_step && o < 16 * rb; o += 64)
					_mm_prefetch(next + o, _MM_HINT_T1);
			ISSUE(b, 0, 4, 6);
			if (b > 0) {
				_tile_stored(2, cb[2], 64);
				accumulate(cb[0], &xt[b - 4], pd + (size_t)(b - 4) * 16, acc);
			}
			ISSUE(b + 1, 1, 5, 7);
			if (b > 0) {
				_tile_stored(3, cb[3], 64);
				accumulate(cb[1], &xt[b - 3], pd + (size_t)(b - 3) * 16, acc);
			}
			ISSUE(b + 2, 2, 4, 6);
			_tile_stored(0, cb[0], 64);
			if (b > 0)
				accumulate(cb[2], &xt[b - 2], pd + (size_t)(b - 2) * 16, acc);
			ISSUE(b + 3, 3, 5, 7);
			_tile_stored(1, cb[1], 64);
			if (b > 0)
				accumulate(cb[3], &xt[b - 1], pd + (size_t)(b - 1) * 16, acc);
		}
		_tile_stored(2, cb[2], 64);
		accumulate(cb[0], &xt[nb - 4], pd + (size_t)(nb - 4) * 16, acc);
		_tile_stored(3, cb[3], 64);
		accumulate(cb[1], &xt[nb - 3], pd + (size_t)(nb - 3) * 16, acc);
		accumulate(cb[2], &xt[nb - 2], pd + (size_t)(nb - 2) * 16, acc);
		accumulate(cb[3], &xt[nb - 1], pd + (size_t)(nb - 1) * 16, acc);
		UNROLL for (int r = 0; r < 16; r++)
			_mm512_store_ps(out[r], acc[r]);
		for (int t = 0; t < 16 && T * 16 + t < ntok; t++)
			for (int r = 0; r < 16; r++)
				y[(size_t)(T * 16 + t) * ys + r] = out[r][t];
	}
}

/* ---- F16 / BF16 rows on the BF16 tiles ------------------------------------ */

/* blocks per chunk of the activations kept in L2 */
#define BF_KC 32
#define TGTB __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

/* all eight tiles 16 rows x 64 bytes: 0-3 accumulators (16 rows x 16
 * tokens, f32), 4-5 weights (16 rows x 32 bf16: high and low parts), 6-7
 * activations (16 pairs x 16 tokens x 2 bf16) */
TGTB static void config_bf16(void)
{
	struct tilecfg c;

	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int i = 0; i < 8; i++) {
		c.colsb[i] = 64;
		c.rows[i] = 16;
	}
	/* the compiler does not see ldtilecfg read c: keep the stores */
	__asm__ volatile("" : : "r"(&c) : "memory");
	_tile_loadconfig(&c);
}

/* f32 to bf16, round to nearest even (finite values) */
TGTB static inline __m256i bf16_rne(__m512 f)
{
	__m512i b = _mm512_castps_si512(f);

	b = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
						 _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))));
	return _mm512_cvtepi32_epi16(_mm512_srli_epi32(b, 16));
}

TGTB static inline __m512 bf16_f32(__m256i h)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

size_t kern_amx_bf16_xbytes(int n, int ntok)
{
	return 3 * (size_t)((ntok + 15) / 16) * (size_t)(n / QK) * 1024;
}

TGTB void kern_amx_bf16_pack_x_range(int n, const float *x, size_t xs, int ntok, int t0, int t1, void *outv)
{
	int nb = n / QK, tiles = (ntok + 15) / 16;
	uint32_t *out = outv;   /* [plane][tile][block][16 pairs][16 tokens] bf16 pairs */
	size_t plane = (size_t)tiles * nb * 256;

	for (int tt = t0; tt < t1; tt++) {
		int T = tt / 16, t = tt % 16;

		for (int b = 0; b < nb; b++) {
			uint32_t *o = out + ((size_t)T * nb + b) * 256;
			uint32_t part[3][16];

			if (tt < ntok) {
				const float *xr = x + (size_t)tt * xs + b * QK;

				for (int h = 0; h < 2; h++) {
					__m512 v = _mm512_loadu_ps(xr + 16 * h);

					for (int k = 0; k < 3; k++) {
						__m256i p = bf16_rne(v);

						_mm256_storeu_si256((__m256i *)part[k] + h, p);
						v = _mm512_sub_ps(v, bf16_f32(p));
					}
				}
			} else {
				memset(part, 0, sizeof part);
			}
			for (int k = 0; k < 3; k++)
				for (int j = 0; j < 16; j++)
					o[k * plane + (size_t)j * 16 + t] = part[k][j];
		}
	}
}

void kern_amx_bf16_pack_x(int n, const float *x, size_t xs, int ntok, void *out)
{
	kern_amx_bf16_pack_x_range(n, x, xs, ntok, 0, (ntok + 15) / 16 * 16, out);
}

size_t kern_amx_bf16_scratch(void)
{
	return (size_t)4 * 4 * 256 * sizeof(float) + (size_t)2 * 16 * BF_KC * QK * sizeof(uint16_t);
}

/* one (weight part, activation part) product into accumulator C for
 * token tile T of block b */
#define BF_DP(C, A, B, T, plane)                                                                  \
	do {                                                                                      \
		_tile_loadd(B, xb + ((size_t)(plane) * planes + ((size_t)(g * 4 + (T)) * nb + b) * 256), 64); \
		_tile_dpbf16ps(C, A, B);                                                          \
	} while (0)
#define BF_TILE(C, T)                                      \
	do {                                               \
		BF_DP(C, 4, 6, T, 0);                      \
		if (lo)                                    \
			_tile_dpbf16ps(C, 5, 6);           \
		BF_DP(C, 4, 7, T, 1);                      \
		if (lo)                                    \
			_tile_dpbf16ps(C, 5, 7);           \
		BF_DP(C, 4, 6, T, 2);                      \
	} while (0)
#define BF_C(op, C, p) op(C, cacc + ((size_t)(p) * 4 + (C)) * 256, 64)

TGTB void kern_amx_bf16_mm(uint32_t type, int n, const void *wv, size_t rb, int rows, const void *xv,
			   int ntok, float *y, size_t ys, void *scratch)
{
	const uint8_t *w = wv;
	const uint32_t *xb = xv;
	int nb = n / QK, tiles = (ntok + 15) / 16, panels = rows / 16;
	size_t planes = (size_t)tiles * nb * 256;
	float *cacc = scratch;                                   /* [panel][token tile][16][16] */
	uint16_t *hi = (uint16_t *)(cacc + 4 * 4 * 256);         /* [16][BF_KC * QK] */
	uint16_t *lo = type == GGML_F16 ? hi + (size_t)16 * BF_KC * QK : NULL;
	const long st = (long)BF_KC * QK * 2;

	if (tiles_configured != 2) {
		config_bf16();
		tiles_configured = 2;
	}
	for (int g = 0; g * 4 < tiles; g++) {
		int nt = tiles - g * 4 < 4 ? tiles - g * 4 : 4;

		/* blocks in chunks of BF_KC: the chunk's activations (3 x nt
		 * x BF_KC KiB) stay in L2 while every panel of the item uses
		 * them; the accumulators go to memory between chunks */
		for (int k0 = 0; k0 < nb; k0 += BF_KC) {
			int k1 = k0 + BF_KC < nb ? k0 + BF_KC : nb;

			for (int p = 0; p < panels; p++) {
				/* this panel's chunk as bf16: w = hi + lo exactly (an
				 * f16 has 11 significant bits, a bf16 8; f16
				 * subnormals are normal in f32); BF16 rows are their
				 * own high part */
				for (int r = 0; r < 16; r++) {
					const uint16_t *src = (const uint16_t *)(w + (size_t)(p * 16 + r) * rb) + (size_t)k0 * QK;
					uint16_t *h = hi + (size_t)r * BF_KC * QK, *l = lo ? lo + (size_t)r * BF_KC * QK : NULL;

					for (int i = 0; i < (k1 - k0) * QK; i += 16) {
						__m256i v = _mm256_loadu_si256((const __m256i *)(src + i));

						if (l) {
							/* hi: the f32's top 16 bits (truncated);
							 * lo = w - hi has at most 3 significant
							 * bits, so its top 16 bits are all of it */
							__m512 f = _mm512_cvtph_ps(v);
							__m512i fb = _mm512_castps_si512(f);
							__m512 fl = _mm512_sub_ps(f, _mm512_castsi512_ps(_mm512_and_si512(
								fb, _mm512_set1_epi32((int)0xffff0000u))));

							_mm256_storeu_si256((__m256i *)(h + i),
									    _mm512_cvtepi32_epi16(_mm512_srli_epi32(fb, 16)));
							_mm256_storeu_si256((__m256i *)(l + i),
									    _mm512_cvtepi32_epi16(_mm512_srli_epi32(
										    _mm512_castps_si512(fl), 16)));
						} else {
							_mm256_storeu_si256((__m256i *)(h + i), v);
						}
					}
				}
				__asm__ volatile("" ::: "memory");
				if (k0 == 0) {
					_tile_zero(0);
					_tile_zero(1);
					_tile_zero(2);
					_tile_zero(3);
				} else {
					BF_C(_tile_loadd, 0, p);
					BF_C(_tile_loadd, 1, p);
					BF_C(_tile_loadd, 2, p);
					BF_C(_tile_loadd, 3, p);
				}
				for (int b = k0; b < k1; b++) {
					_tile_loadd(4, hi + (size_t)(b - k0) * QK, st);
					if (lo)
						_tile_loadd(5, lo + (size_t)(b - k0) * QK, st);
					BF_TILE(0, 0);
					if (nt > 1)
						BF_TILE(1, 1);
					if (nt > 2)
						BF_TILE(2, 2);
					if (nt > 3)
						BF_TILE(3, 3);
				}
				BF_C(_tile_stored, 0, p);
				BF_C(_tile_stored, 1, p);
				BF_C(_tile_stored, 2, p);
				BF_C(_tile_stored, 3, p);
				__asm__ volatile("" ::: "memory");
			}
		}
		for (int p = 0; p < panels; p++)
			for (int T = 0; T < nt; T++) {
				const float *o = cacc + ((size_t)p * 4 + T) * 256;
				int t0 = (g * 4 + T) * 16;

				for (int t = 0; t < 16 && t0 + t < ntok; t++)
					for (int r = 0; r < 16; r++)
						y[(size_t)(t0 + t) * ys + p * 16 + r] = o[r * 16 + t];
			}
	}
}

#else
bool kern_amx_available(void) { return false; }
bool kern_amx_bf16_available(void) { return false; }
size_t kern_amx_bf16_xbytes(int n, int ntok) { (void)n; (void)ntok; return 0; }
void kern_amx_bf16_pack_x_range(int n, const float *x, size_t xs, int ntok, int t0, int t1, void *out)
{
	(void)n; (void)x; (void)xs; (void)ntok; (void)t0; (void)t1; (void)out;
}
void kern_amx_bf16_pack_x(int n, const float *x, size_t xs, int ntok, void *out)
{
	(void)n; (void)x; (void)xs; (void)ntok; (void)out;
}
size_t kern_amx_bf16_scratch(void) { return 0; }
void kern_amx_bf16_mm(uint32_t type, int n, const void *w, size_t rb, int rows, const void *x, int ntok,
		      float *y, size_t ys, void *scratch)
{
	(void)type; (void)n; (void)w; (void)rb; (void)rows; (void)x; (void)ntok; (void)y; (void)ys; (void)scratch;
}
size_t kern_amx_xbytes(int n, int ntok) { (void)n; (void)ntok; return 0; }
void kern_amx_pack_x_range(int n, const struct q8a *x, size_t xs, int ntok, int t0, int t1,
			   struct amx_xblk *out)
{
	(void)n; (void)x; (void)xs; (void)ntok; (void)t0; (void)t1; (void)out;
}
void kern_amx_pack_x(int n, const struct q8a *x, size_t xs, int ntok, struct amx_xblk *out)
{
	(void)n; (void)x; (void)xs; (void)ntok; (void)out;
}
void kern_amx_mm16(uint32_t type, int n, const void *w, size_t rb, const struct amx_xblk *x,
		   int ntok, float *y, size_t ys, void *scratch)
{
	(void)type; (void)n; (void)w; (void)rb; (void)x; (void)ntok; (void)y; (void)ys; (void)scratch;
}
#endif
