/* kernels_amx.c — AMX int8 tile products for prompt-sized batches over
 * repacked Q4_0/Q8_0 rows (Sapphire Rapids and later).
 *
 * A work item is a panel of 16 weight rows: its blocks are unpacked once
 * to signed bytes (A tiles, 16 x 32), then for every tile of 16 tokens and
 * every 32-value block one TDPBSSD gives the 16 x 16 integer products,
 * which are scaled by row scale x token scale and accumulated in sixteen
 * float vectors.  Blocks are processed in
 * pairs on two accumulator tiles so that the tile unit overlaps with the
 * vector work.  Compiled with target attributes; used only when the CPU
 * has AMX and the kernel grants the tile state (arch_prctl).
 */
#include "infer/kernels.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
	(defined(__clang__) || __GNUC__ >= 11)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TGT __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

struct tilecfg {
	uint8_t palette, start_row;
	uint8_t reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* tiles: 0-3 accumulators (16 x 16 int32), two pairs used alternately so
 * that one pair's products overlap the vector work on the other's; 4, 5
 * weights (16 rows x 32 bytes); 6, 7 activations (8 rows x 64 bytes: 32
 * values of 16 tokens, four consecutive values per token per row) */
TGT static void config(void)
{
	struct tilecfg c;

	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int i = 0; i < 4; i++) {
		c.colsb[i] = 64;
		c.rows[i] = 16;
	}
	for (int i = 4; i < 6; i++) {
		c.colsb[i] = 32;
		c.rows[i] = 16;
		c.colsb[i + 2] = 64;
		c.rows[i + 2] = 8;
	}
	_tile_loadconfig(&c);
}

bool kern_amx_available(void)
{
	static int state; /* 0 unknown, 1 yes, -1 no */

	if (state == 0) {
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		    syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) {
			unsigned a, b, c, d;

			/* CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8 */
			__asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
			state = ((d >> 24) & 3) == 3 ? 1 : -1;
		} else {
			state = -1;
		}
	}
	return state > 0;
}

size_t kern_amx_xbytes(int n, int ntok)
{
	return (size_t)((ntok + 15) / 16) * (size_t)(n / QK) * sizeof(struct amx_xblk);
}

void kern_amx_pack_x(int n, const struct q8a *x, size_t xs, int ntok, struct amx_xblk *out)
{
	int nb = n / QK, tiles = (ntok + 15) / 16;

	for (int T = 0; T < tiles; T++)
		for (int b = 0; b < nb; b++) {
			struct amx_xblk *o = &out[(size_t)T * nb + b];
			int used = ntok - T * 16 < 16 ? ntok - T * 16 : 16;

			if (used < 16)
				memset(o, 0, sizeof *o);
			for (int j = 0; j < used; j++) {
				const struct q8a *q = &x[(size_t)(T * 16 + j) * xs + b];
				uint32_t v[8];

				memcpy(v, q->qs, 32);
				for (int k = 0; k < 8; k++)
					memcpy(&o->qs[k][j * 4], &v[k], 4);
				o->d[j] = q->d;
			}
		}
}

/* 16 rows of block b to A[16][32] signed bytes and their 16 scales */
TGT static void unpack(uint32_t type, const uint8_t *w, size_t rb, int b, int8_t *a, float *d)
{
	int g = b / 4, j = b % 4;
	const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8), bias = _mm_set1_epi8((char)0x80);

	for (int r = 0; r < 16; r++) {
		const uint8_t *row = w + (size_t)r * rb;
		uint16_t h;

		if (type == GGML_Q4_0R) {
			__m128i t = _mm_loadu_si128((const __m128i *)(row + (size_t)g * 72 + 16 * j));

			_mm_storeu_si128((__m128i *)(a + 32 * r), _mm_sub_epi8(_mm_and_si128(t, m4), eight));
			_mm_storeu_si128((__m128i *)(a + 32 * r + 16),
					 _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(t, 4), m4), eight));
			memcpy(&h, row + (size_t)g * 72 + 64 + 2 * j, 2);
		} else {
			__m128i lo = _mm_loadu_si128((const __m128i *)(row + (size_t)g * 136 + 16 * j));
			__m128i hi = _mm_loadu_si128((const __m128i *)(row + (size_t)g * 136 + 64 + 16 * j));

			_mm_storeu_si128((__m128i *)(a + 32 * r), _mm_xor_si128(lo, bias));
			_mm_storeu_si128((__m128i *)(a + 32 * r + 16), _mm_xor_si128(hi, bias));
			memcpy(&h, row + (size_t)g * 136 + 128 + 2 * j, 2);
		}
		d[r] = _cvtsh_ss(h);
	}
}

TGT static inline void accumulate(const int32_t *cb, const struct amx_xblk *x, const float *wd, __m512 *acc)
{
	__m512 xd = _mm512_loadu_ps(x->d);

	for (int r = 0; r < 16; r++)
		acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(cb + 16 * r)),
					 _mm512_mul_ps(_mm512_set1_ps(wd[r]), xd), acc[r]);
}

TGT void kern_amx_mm16(uint32_t type, int n, const void *wv, size_t rb, const struct amx_xblk *x,
		       int ntok, float *y, size_t ys, void *scratch)
{
	const uint8_t *w = wv;
	int nb = n / QK, tiles = (ntok + 15) / 16;
	int8_t *pa = scratch;                          /* [nb][16][32] */
	float *pd = (float *)(pa + (size_t)nb * 512);   /* [nb][16] */
	int32_t cb[4][256] __attribute__((aligned(64)));

	for (int b = 0; b < nb; b++)
		unpack(type, w, rb, b, pa + (size_t)b * 512, pd + 16 * b);
	/* tileloadd reads memory without telling the compiler */
	__asm__ volatile("" ::: "memory");
	config();
	for (int T = 0; T < tiles; T++) {
		const struct amx_xblk *xt = x + (size_t)T * nb;
		__m512 acc[16];
		float out[16][16] __attribute__((aligned(64)));
		int b = 0;

		for (int r = 0; r < 16; r++)
			acc[r] = _mm512_setzero_ps();
		/* four blocks per step: products of blocks b, b+1 on tiles 0, 1
		 * and b+2, b+3 on tiles 2, 3, each pair scaled while the other
		 * pair's products run */
		for (; b + 4 <= nb; b += 4) {
			_tile_zero(0);
			_tile_zero(1);
			_tile_loadd(4, pa + (size_t)b * 512, 32);
			_tile_loadd(6, xt[b].qs, 64);
			_tile_dpbssd(0, 4, 6);
			_tile_loadd(5, pa + (size_t)(b + 1) * 512, 32);
			_tile_loadd(7, xt[b + 1].qs, 64);
			_tile_dpbssd(1, 5, 7);
			if (b > 0) {
				accumulate(cb[2], &xt[b - 2], pd + 16 * (b - 2), acc);
				accumulate(cb[3], &xt[b - 1], pd + 16 * (b - 1), acc);
			}
			_tile_stored(0, cb[0], 64);
			_tile_stored(1, cb[1], 64);
			_tile_zero(2);
			_tile_zero(3);
			_tile_loadd(4, pa + (size_t)(b + 2) * 512, 32);
			_tile_loadd(6, xt[b + 2].qs, 64);
			_tile_dpbssd(2, 4, 6);
			_tile_loadd(5, pa + (size_t)(b + 3) * 512, 32);
			_tile_loadd(7, xt[b + 3].qs, 64);
			_tile_dpbssd(3, 5, 7);
			accumulate(cb[0], &xt[b], pd + 16 * b, acc);
			accumulate(cb[1], &xt[b + 1], pd + 16 * (b + 1), acc);
			_tile_stored(2, cb[2], 64);
			_tile_stored(3, cb[3], 64);
		}
		if (b > 0) {
			accumulate(cb[2], &xt[b - 2], pd + 16 * (b - 2), acc);
			accumulate(cb[3], &xt[b - 1], pd + 16 * (b - 1), acc);
		}
		for (; b < nb; b++) {
			_tile_zero(0);
			_tile_loadd(4, pa + (size_t)b * 512, 32);
			_tile_loadd(6, xt[b].qs, 64);
			_tile_dpbssd(0, 4, 6);
			_tile_stored(0, cb[0], 64);
			accumulate(cb[0], &xt[b], pd + 16 * b, acc);
		}
		for (int r = 0; r < 16; r++)
			_mm512_store_ps(out[r], acc[r]);
		for (int t = 0; t < 16 && T * 16 + t < ntok; t++)
			for (int r = 0; r < 16; r++)
				y[(size_t)(T * 16 + t) * ys + r] = out[r][t];
	}
	_tile_release();
}

#else
bool kern_amx_available(void) { return false; }
size_t kern_amx_xbytes(int n, int ntok) { (void)n; (void)ntok; return 0; }
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
