/* cu_types.cuh — constants and the activation block shared by the CUDA
 * backend's host code and its kernels (kernels.cuh, cu_quant.cuh). */
#ifndef ALLOT_INFER_CUDA_CU_TYPES_CUH
#define ALLOT_INFER_CUDA_CU_TYPES_CUH

#include <stdint.h>

#define CU_QK 32        /* elements per quantized activation block */
#define CU_QKK 256      /* elements per K-quant super-block */
#define CU_MV_T 8       /* most tokens per matrix-vector launch (each launch
			 * reads the matrix once for all of them) */
#define CU_MV_WARPS 4   /* rows (warps) per matrix-vector block */

/* GGML type numbers (infer/gguf.h) */
enum {
	CU_F32 = 0, CU_F16 = 1, CU_Q4_0 = 2, CU_Q4_1 = 3, CU_Q5_0 = 6, CU_Q5_1 = 7, CU_Q8_0 = 8,
	CU_Q4_K = 12, CU_Q5_K = 13, CU_Q6_K = 14, CU_BF16 = 30
};

/* quantized activations: x[i] ~ d * qs[i]; s = d * sum(qs) */
struct cu_q81 { float d, s; int8_t qs[CU_QK]; };

#endif
