/* kernels_krepack_gfni.c — kernels_krepack_avx512.c compiled again with
 * GFNI: the Q6_K tiles (quant_avx512_mm4_kr_gfni), whose top two bits are
 * put in place with one GF(2) affine map per half instead of a shift, a
 * mask, a shift and a subtraction; the same bits.  See that file's head
 * for why it is a second object. */
#define KR_GFNI 1
#include "kernels_krepack_avx512.c"
